//! Page objects (data source rows and plain pages).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient;
use super::parent::Parent;
use super::property::{PageProperties, PropertyValue};
use super::rich_text::plain_text;
use super::user::PartialUser;
use crate::NotionId;

fn page_object() -> String {
    String::from("page")
}

/// A Notion page. `properties` keeps the raw JSON Notion returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Always `page`.
    #[serde(default = "page_object")]
    pub object: String,
    /// The page id.
    pub id: NotionId,
    /// Creation time (Notion truncates it to the minute).
    pub created_time: DateTime<Utc>,
    /// Last edit time (truncated to the minute).
    pub last_edited_time: DateTime<Utc>,
    /// Creator; `None` when absent or odd (unused by the daemon).
    #[serde(
        default,
        deserialize_with = "lenient::or_none::<_, _, lenient::PageCreatedBy>"
    )]
    pub created_by: Option<PartialUser>,
    /// Last editor; `None` when absent or odd (unused by the daemon).
    #[serde(
        default,
        deserialize_with = "lenient::or_none::<_, _, lenient::PageLastEditedBy>"
    )]
    pub last_edited_by: Option<PartialUser>,
    /// Where the page lives.
    pub parent: Parent,
    /// In the trash.
    #[serde(default)]
    pub in_trash: bool,
    /// Deprecated alias of `in_trash`, still sent.
    #[serde(default)]
    pub archived: bool,
    /// Locked against edits in the UI.
    #[serde(default)]
    pub is_locked: bool,
    /// Notion URL.
    #[serde(default)]
    pub url: String,
    /// Public URL, if published.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Icon object, as sent.
    #[serde(default)]
    pub icon: Option<Value>,
    /// Cover object, as sent.
    #[serde(default)]
    pub cover: Option<Value>,
    /// Property values by name.
    pub properties: PageProperties,
}

impl Page {
    /// Plain text of the title-typed property (empty if none).
    pub fn title(&self) -> String {
        self.properties
            .iter()
            .find_map(|(_, v)| match v {
                PropertyValue::Title { title, .. } => Some(plain_text(title)),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The value of the property called `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyValue> {
        self.properties.get(name)
    }

    /// The data source this page is a row of.
    pub fn data_source_id(&self) -> Option<NotionId> {
        self.parent.data_source_id()
    }

    /// Exactly what Notion returned for `properties`.
    pub fn raw_properties(&self) -> &Value {
        self.properties.raw()
    }

    /// Trashed, by either flag.
    pub fn is_trashed(&self) -> bool {
        self.in_trash || self.archived
    }
}
