//! Data sources (schema: property types, options, status groups) and databases.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::parent::Parent;
use super::property::SelectOption;
use super::rich_text::{RichText, plain_text};
use crate::NotionId;

/// A status group (`To-do`, `In progress`, `Complete`) and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusGroup {
    /// Group id.
    pub id: String,
    /// Group name.
    pub name: String,
    /// Colour name.
    #[serde(default)]
    pub color: Option<String>,
    /// Ids of the options in this group.
    #[serde(default)]
    pub option_ids: Vec<String>,
}

/// The type of a data source property, with the configuration this crate uses.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum PropertyKind {
    Title,
    RichText,
    Number,
    Select {
        options: Vec<SelectOption>,
    },
    MultiSelect {
        options: Vec<SelectOption>,
    },
    Status {
        options: Vec<SelectOption>,
        groups: Vec<StatusGroup>,
    },
    Date,
    People,
    Files,
    Checkbox,
    Url,
    Email,
    PhoneNumber,
    Formula,
    Relation,
    Rollup,
    CreatedTime,
    CreatedBy,
    LastEditedTime,
    LastEditedBy,
    UniqueId,
    Verification,
    Button,
    /// A type this crate does not know; the `type` string.
    Unknown(String),
}

impl PropertyKind {
    /// The `type` string.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Title => "title",
            Self::RichText => "rich_text",
            Self::Number => "number",
            Self::Select { .. } => "select",
            Self::MultiSelect { .. } => "multi_select",
            Self::Status { .. } => "status",
            Self::Date => "date",
            Self::People => "people",
            Self::Files => "files",
            Self::Checkbox => "checkbox",
            Self::Url => "url",
            Self::Email => "email",
            Self::PhoneNumber => "phone_number",
            Self::Formula => "formula",
            Self::Relation => "relation",
            Self::Rollup => "rollup",
            Self::CreatedTime => "created_time",
            Self::CreatedBy => "created_by",
            Self::LastEditedTime => "last_edited_time",
            Self::LastEditedBy => "last_edited_by",
            Self::UniqueId => "unique_id",
            Self::Verification => "verification",
            Self::Button => "button",
            Self::Unknown(t) => t,
        }
    }

    /// Options of a select, multi-select or status property.
    pub fn options(&self) -> &[SelectOption] {
        match self {
            Self::Select { options }
            | Self::MultiSelect { options }
            | Self::Status { options, .. } => options,
            _ => &[],
        }
    }

    /// Status groups (empty for other types).
    pub fn groups(&self) -> &[StatusGroup] {
        match self {
            Self::Status { groups, .. } => groups,
            _ => &[],
        }
    }
}

/// One property of a data source schema.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertySchema {
    /// Property id (stable across renames).
    pub id: String,
    /// Property name.
    pub name: String,
    /// Type and configuration.
    pub kind: PropertyKind,
}

impl PropertySchema {
    /// The group a status option belongs to (by option name).
    pub fn status_group_of(&self, option_name: &str) -> Option<&StatusGroup> {
        let option = self.kind.options().iter().find(|o| o.name == option_name)?;
        let id = option.id.as_deref()?;
        self.kind
            .groups()
            .iter()
            .find(|g| g.option_ids.iter().any(|o| o == id))
    }
}

#[derive(Deserialize)]
struct OptionsWire {
    #[serde(default)]
    options: Vec<SelectOption>,
    #[serde(default)]
    groups: Vec<StatusGroup>,
}

impl<'de> Deserialize<'de> for PropertySchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let str_field = |map: &Map<String, Value>, k: &str| -> Result<String, D::Error> {
            map.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| D::Error::custom(format!("property schema: missing field `{k}`")))
        };
        let id = str_field(&map, "id")?;
        let name = str_field(&map, "name")?;
        let kind_name = str_field(&map, "type")?;
        let config = map.remove(&kind_name).unwrap_or(Value::Null);
        let options = |config: Value| -> Result<OptionsWire, D::Error> {
            if config.is_null() {
                return Ok(OptionsWire {
                    options: Vec::new(),
                    groups: Vec::new(),
                });
            }
            serde_json::from_value(config)
                .map_err(|e| D::Error::custom(format!("property schema {name:?}: {e}")))
        };
        let kind = match kind_name.as_str() {
            "title" => PropertyKind::Title,
            "rich_text" => PropertyKind::RichText,
            "number" => PropertyKind::Number,
            "select" => PropertyKind::Select {
                options: options(config)?.options,
            },
            "multi_select" => PropertyKind::MultiSelect {
                options: options(config)?.options,
            },
            "status" => {
                let o = options(config)?;
                PropertyKind::Status {
                    options: o.options,
                    groups: o.groups,
                }
            }
            "date" => PropertyKind::Date,
            "people" => PropertyKind::People,
            "files" => PropertyKind::Files,
            "checkbox" => PropertyKind::Checkbox,
            "url" => PropertyKind::Url,
            "email" => PropertyKind::Email,
            "phone_number" => PropertyKind::PhoneNumber,
            "formula" => PropertyKind::Formula,
            "relation" => PropertyKind::Relation,
            "rollup" => PropertyKind::Rollup,
            "created_time" => PropertyKind::CreatedTime,
            "created_by" => PropertyKind::CreatedBy,
            "last_edited_time" => PropertyKind::LastEditedTime,
            "last_edited_by" => PropertyKind::LastEditedBy,
            "unique_id" => PropertyKind::UniqueId,
            "verification" => PropertyKind::Verification,
            "button" => PropertyKind::Button,
            _ => PropertyKind::Unknown(kind_name),
        };
        Ok(Self { id, name, kind })
    }
}

impl Serialize for PropertySchema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.kind.type_name();
        let config = match &self.kind {
            PropertyKind::Select { options } | PropertyKind::MultiSelect { options } => {
                json!({ "options": options })
            }
            PropertyKind::Status { options, groups } => {
                json!({ "options": options, "groups": groups })
            }
            _ => json!({}),
        };
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(t));
        m.insert(t.to_owned(), config);
        Value::Object(m).serialize(serializer)
    }
}

/// A data source (the 2025-09-03 "table"): its schema and where it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    /// The data source id (what queries target).
    pub id: NotionId,
    /// Title.
    #[serde(default)]
    pub title: Vec<RichText>,
    /// Description.
    #[serde(default)]
    pub description: Vec<RichText>,
    /// Schema, by property name.
    pub properties: BTreeMap<String, PropertySchema>,
    /// Its database (`database_id` parent).
    pub parent: Parent,
    /// The database's own parent.
    #[serde(default)]
    pub database_parent: Option<Parent>,
    /// Creation time.
    #[serde(default)]
    pub created_time: Option<DateTime<Utc>>,
    /// Last edit time.
    #[serde(default)]
    pub last_edited_time: Option<DateTime<Utc>>,
    /// In the trash.
    #[serde(default)]
    pub in_trash: bool,
    /// Deprecated alias of `in_trash`.
    #[serde(default)]
    pub archived: bool,
    /// Inline in a page.
    #[serde(default)]
    pub is_inline: bool,
    /// Notion URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Public URL.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl DataSource {
    /// The schema of the property called `name`.
    pub fn property(&self, name: &str) -> Option<&PropertySchema> {
        self.properties.get(name)
    }

    /// The schema of the property whose id is `id`.
    pub fn property_by_id(&self, id: &str) -> Option<&PropertySchema> {
        self.properties.values().find(|p| p.id == id)
    }

    /// Plain-text title.
    pub fn title_text(&self) -> String {
        plain_text(&self.title)
    }

    /// The database this data source belongs to.
    pub fn database_id(&self) -> Option<NotionId> {
        self.parent.database_id()
    }
}

/// A reference to one of a database's data sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSourceRef {
    /// Data source id.
    pub id: NotionId,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A database (2025-09-03): a container of data sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    /// Database id.
    pub id: NotionId,
    /// Its data sources.
    #[serde(default)]
    pub data_sources: Vec<DataSourceRef>,
    /// Title.
    #[serde(default)]
    pub title: Vec<RichText>,
    /// Description.
    #[serde(default)]
    pub description: Vec<RichText>,
    /// Where it lives.
    pub parent: Parent,
    /// Inline in a page.
    #[serde(default)]
    pub is_inline: bool,
    /// In the trash.
    #[serde(default)]
    pub in_trash: bool,
    /// Deprecated alias of `in_trash`.
    #[serde(default)]
    pub archived: bool,
    /// Creation time (databases keep milliseconds).
    #[serde(default)]
    pub created_time: Option<DateTime<Utc>>,
    /// Last edit time.
    #[serde(default)]
    pub last_edited_time: Option<DateTime<Utc>>,
    /// Notion URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Public URL.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl Database {
    /// Plain-text title.
    pub fn title_text(&self) -> String {
        plain_text(&self.title)
    }
}
