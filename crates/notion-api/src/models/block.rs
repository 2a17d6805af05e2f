//! Blocks: common text blocks typed, everything else `Unknown` with its raw JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::lenient;
use super::parent::Parent;
use super::rich_text::RichText;
use super::user::PartialUser;
use crate::NotionId;

/// The type-specific content of a block.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum BlockContent {
    Paragraph {
        rich_text: Vec<RichText>,
        color: Option<String>,
    },
    Heading1 {
        rich_text: Vec<RichText>,
        color: Option<String>,
        is_toggleable: bool,
    },
    Heading2 {
        rich_text: Vec<RichText>,
        color: Option<String>,
        is_toggleable: bool,
    },
    Heading3 {
        rich_text: Vec<RichText>,
        color: Option<String>,
        is_toggleable: bool,
    },
    BulletedListItem {
        rich_text: Vec<RichText>,
        color: Option<String>,
    },
    NumberedListItem {
        rich_text: Vec<RichText>,
        color: Option<String>,
    },
    ToDo {
        rich_text: Vec<RichText>,
        checked: bool,
        color: Option<String>,
    },
    Toggle {
        rich_text: Vec<RichText>,
        color: Option<String>,
    },
    Quote {
        rich_text: Vec<RichText>,
        color: Option<String>,
    },
    Callout {
        rich_text: Vec<RichText>,
        icon: Option<Value>,
        color: Option<String>,
    },
    Code {
        rich_text: Vec<RichText>,
        language: String,
        caption: Vec<RichText>,
    },
    Divider,
    ChildPage {
        title: String,
    },
    ChildDatabase {
        title: String,
    },
    /// Any other block type; `raw` is its type-specific object.
    Unknown {
        block_type: String,
        raw: Value,
    },
}

#[derive(Deserialize)]
struct TextWire {
    #[serde(default)]
    rich_text: Vec<RichText>,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    is_toggleable: bool,
    #[serde(default)]
    checked: bool,
    #[serde(default)]
    icon: Option<Value>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    caption: Vec<RichText>,
}

#[derive(Deserialize)]
struct TitleWire {
    #[serde(default)]
    title: String,
}

impl BlockContent {
    /// The block `type` string.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Paragraph { .. } => "paragraph",
            Self::Heading1 { .. } => "heading_1",
            Self::Heading2 { .. } => "heading_2",
            Self::Heading3 { .. } => "heading_3",
            Self::BulletedListItem { .. } => "bulleted_list_item",
            Self::NumberedListItem { .. } => "numbered_list_item",
            Self::ToDo { .. } => "to_do",
            Self::Toggle { .. } => "toggle",
            Self::Quote { .. } => "quote",
            Self::Callout { .. } => "callout",
            Self::Code { .. } => "code",
            Self::Divider => "divider",
            Self::ChildPage { .. } => "child_page",
            Self::ChildDatabase { .. } => "child_database",
            Self::Unknown { block_type, .. } => block_type,
        }
    }

    /// The block's rich text, for text-bearing blocks.
    pub fn rich_text(&self) -> Option<&[RichText]> {
        match self {
            Self::Paragraph { rich_text, .. }
            | Self::Heading1 { rich_text, .. }
            | Self::Heading2 { rich_text, .. }
            | Self::Heading3 { rich_text, .. }
            | Self::BulletedListItem { rich_text, .. }
            | Self::NumberedListItem { rich_text, .. }
            | Self::ToDo { rich_text, .. }
            | Self::Toggle { rich_text, .. }
            | Self::Quote { rich_text, .. }
            | Self::Callout { rich_text, .. }
            | Self::Code { rich_text, .. } => Some(rich_text),
            _ => None,
        }
    }

    /// Builds the content from a block type and its type-specific object.
    pub fn from_parts(block_type: &str, payload: Value) -> Result<Self, String> {
        let text = |p: Value| -> Result<TextWire, String> {
            let p = if p.is_null() { json!({}) } else { p };
            serde_json::from_value(p).map_err(|e| format!("`{block_type}` block: {e}"))
        };
        let title = |p: Value| -> Result<String, String> {
            let p = if p.is_null() { json!({}) } else { p };
            serde_json::from_value::<TitleWire>(p)
                .map(|t| t.title)
                .map_err(|e| format!("`{block_type}` block: {e}"))
        };
        Ok(match block_type {
            "paragraph" => {
                let t = text(payload)?;
                Self::Paragraph {
                    rich_text: t.rich_text,
                    color: t.color,
                }
            }
            "heading_1" | "heading_2" | "heading_3" => {
                let t = text(payload)?;
                let (rich_text, color, is_toggleable) = (t.rich_text, t.color, t.is_toggleable);
                match block_type {
                    "heading_1" => Self::Heading1 {
                        rich_text,
                        color,
                        is_toggleable,
                    },
                    "heading_2" => Self::Heading2 {
                        rich_text,
                        color,
                        is_toggleable,
                    },
                    _ => Self::Heading3 {
                        rich_text,
                        color,
                        is_toggleable,
                    },
                }
            }
            "bulleted_list_item" => {
                let t = text(payload)?;
                Self::BulletedListItem {
                    rich_text: t.rich_text,
                    color: t.color,
                }
            }
            "numbered_list_item" => {
                let t = text(payload)?;
                Self::NumberedListItem {
                    rich_text: t.rich_text,
                    color: t.color,
                }
            }
            "to_do" => {
                let t = text(payload)?;
                Self::ToDo {
                    rich_text: t.rich_text,
                    checked: t.checked,
                    color: t.color,
                }
            }
            "toggle" => {
                let t = text(payload)?;
                Self::Toggle {
                    rich_text: t.rich_text,
                    color: t.color,
                }
            }
            "quote" => {
                let t = text(payload)?;
                Self::Quote {
                    rich_text: t.rich_text,
                    color: t.color,
                }
            }
            "callout" => {
                let t = text(payload)?;
                Self::Callout {
                    rich_text: t.rich_text,
                    icon: t.icon,
                    color: t.color,
                }
            }
            "code" => {
                let t = text(payload)?;
                Self::Code {
                    rich_text: t.rich_text,
                    language: t.language.unwrap_or_default(),
                    caption: t.caption,
                }
            }
            "divider" => Self::Divider,
            "child_page" => Self::ChildPage {
                title: title(payload)?,
            },
            "child_database" => Self::ChildDatabase {
                title: title(payload)?,
            },
            other => Self::Unknown {
                block_type: other.to_owned(),
                raw: payload,
            },
        })
    }

    /// The type-specific object as JSON.
    pub fn payload(&self) -> Value {
        match self {
            Self::Paragraph { rich_text, color }
            | Self::BulletedListItem { rich_text, color }
            | Self::NumberedListItem { rich_text, color }
            | Self::Toggle { rich_text, color }
            | Self::Quote { rich_text, color } => json!({ "rich_text": rich_text, "color": color }),
            Self::Heading1 {
                rich_text,
                color,
                is_toggleable,
            }
            | Self::Heading2 {
                rich_text,
                color,
                is_toggleable,
            }
            | Self::Heading3 {
                rich_text,
                color,
                is_toggleable,
            } => {
                json!({ "rich_text": rich_text, "color": color, "is_toggleable": is_toggleable })
            }
            Self::ToDo {
                rich_text,
                checked,
                color,
            } => {
                json!({ "rich_text": rich_text, "checked": checked, "color": color })
            }
            Self::Callout {
                rich_text,
                icon,
                color,
            } => {
                json!({ "rich_text": rich_text, "icon": icon, "color": color })
            }
            Self::Code {
                rich_text,
                language,
                caption,
            } => {
                json!({ "rich_text": rich_text, "language": language, "caption": caption })
            }
            Self::Divider => json!({}),
            Self::ChildPage { title } | Self::ChildDatabase { title } => json!({ "title": title }),
            Self::Unknown { raw, .. } => raw.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for BlockContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let kind = map
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| D::Error::missing_field("type"))?
            .to_owned();
        let payload = map.remove(&kind).unwrap_or(Value::Null);
        Self::from_parts(&kind, payload).map_err(D::Error::custom)
    }
}

impl Serialize for BlockContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(Some(2))?;
        m.serialize_entry("type", self.type_name())?;
        m.serialize_entry(self.type_name(), &self.payload())?;
        m.end()
    }
}

/// A block object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Block id.
    pub id: NotionId,
    /// Parent (page or block); `None` when absent or odd (unused by the daemon).
    #[serde(
        default,
        deserialize_with = "lenient::or_none::<_, _, lenient::BlockParent>"
    )]
    pub parent: Option<Parent>,
    /// Creation time (truncated to the minute).
    #[serde(
        default,
        deserialize_with = "lenient::or_none::<_, _, lenient::BlockCreatedTime>"
    )]
    pub created_time: Option<DateTime<Utc>>,
    /// Last edit time (truncated to the minute).
    pub last_edited_time: DateTime<Utc>,
    /// Creator.
    #[serde(
        default,
        deserialize_with = "lenient::or_none::<_, _, lenient::BlockCreatedBy>"
    )]
    pub created_by: Option<PartialUser>,
    /// Last editor.
    #[serde(
        default,
        deserialize_with = "lenient::or_none::<_, _, lenient::BlockLastEditedBy>"
    )]
    pub last_edited_by: Option<PartialUser>,
    /// Whether the block has nested children (fetch them separately).
    #[serde(default)]
    pub has_children: bool,
    /// In the trash.
    #[serde(default)]
    pub in_trash: bool,
    /// Deprecated alias of `in_trash`.
    #[serde(default)]
    pub archived: bool,
    /// Type and type-specific content.
    #[serde(flatten)]
    pub content: BlockContent,
}

/// A block with its (fetched) children.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockNode {
    /// The block.
    pub block: Block,
    /// Its children, in order; empty when it has none or they were not fetched.
    pub children: Vec<BlockNode>,
}

impl BlockNode {
    /// A node without children.
    pub fn leaf(block: Block) -> Self {
        Self {
            block,
            children: Vec::new(),
        }
    }
}
