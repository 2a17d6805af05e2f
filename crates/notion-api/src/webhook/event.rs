//! Webhook bodies: the verification handshake and the event envelope (pure parsing, no I/O).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NotionId;

macro_rules! event_types {
    ($($variant:ident => $s:literal,)*) => {
        /// A webhook event type. Unknown (future) types are kept as `Unknown`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum EventType {
            $($variant,)*
            Unknown(String),
        }

        impl EventType {
            /// Every documented event type.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// Notion's dotted name, e.g. `page.properties_updated`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $s,)*
                    Self::Unknown(s) => s,
                }
            }

            /// A metric label from a fixed set: the dotted name, or "unknown" for a type
            /// not in [`EventType::ALL`] (so senders cannot invent label values).
            pub fn label(&self) -> &'static str {
                match self {
                    $(Self::$variant => $s,)*
                    Self::Unknown(_) => "unknown",
                }
            }

            /// Parses a dotted name; never fails.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

event_types! {
    PageCreated => "page.created",
    PagePropertiesUpdated => "page.properties_updated",
    PageContentUpdated => "page.content_updated",
    PageMoved => "page.moved",
    PageDeleted => "page.deleted",
    PageUndeleted => "page.undeleted",
    PageLocked => "page.locked",
    PageUnlocked => "page.unlocked",
    PageTranscriptDeleted => "page.transcript_deleted",
    DataSourceCreated => "data_source.created",
    DataSourceContentUpdated => "data_source.content_updated",
    DataSourceSchemaUpdated => "data_source.schema_updated",
    DataSourceMoved => "data_source.moved",
    DataSourceDeleted => "data_source.deleted",
    DataSourceUndeleted => "data_source.undeleted",
    DatabaseCreated => "database.created",
    DatabaseContentUpdated => "database.content_updated",
    DatabaseSchemaUpdated => "database.schema_updated",
    DatabaseMoved => "database.moved",
    DatabaseDeleted => "database.deleted",
    DatabaseUndeleted => "database.undeleted",
    CommentCreated => "comment.created",
    CommentUpdated => "comment.updated",
    CommentDeleted => "comment.deleted",
    FileUploadCreated => "file_upload.created",
    FileUploadCompleted => "file_upload.completed",
    FileUploadExpired => "file_upload.expired",
    FileUploadUploadFailed => "file_upload.upload_failed",
}

impl EventType {
    /// Whether this is a `page.*` event.
    pub fn is_page_event(&self) -> bool {
        self.as_str().starts_with("page.")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EventType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event type string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventType, E> {
                Ok(EventType::parse(v))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// `{id, type}`: the entity an event is about, or its parent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// Entity id.
    pub id: NotionId,
    /// `page`, `block`, `data_source`, `database`, `comment`, `space` …
    #[serde(rename = "type")]
    pub kind: String,
    /// A `database` parent's data source (API version 2025-09-03 adds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source_id: Option<NotionId>,
}

impl EntityRef {
    /// The data source this parent is or names, if it says.
    pub fn data_source(&self) -> Option<NotionId> {
        match self.kind.as_str() {
            "data_source" => Some(self.id),
            _ => self.data_source_id,
        }
    }
}

/// `{id, type}`: who caused an event, or who can access it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    /// User or bot id.
    pub id: NotionId,
    /// `person`, `bot` or `agent`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Event-specific data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// The entity's parent.
    #[serde(default)]
    pub parent: Option<EntityRef>,
    /// Blocks that changed (content events).
    #[serde(default)]
    pub updated_blocks: Vec<EntityRef>,
    /// Ids of properties that changed (`page.properties_updated` sends ids,
    /// `*.schema_updated` sends `{id, name, action}` objects; both become ids).
    #[serde(default, deserialize_with = "property_ids")]
    pub updated_properties: Vec<String>,
    /// The page a comment belongs to (comment events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_id: Option<NotionId>,
}

fn property_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Id(String),
        Object { id: String },
    }
    let items = Option::<Vec<Item>>::deserialize(d)?.unwrap_or_default();
    Ok(items
        .into_iter()
        .map(|i| match i {
            Item::Id(s) | Item::Object { id: s } => s,
        })
        .collect())
}

/// A webhook event envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// Event id; deduplicate on it (deliveries are retried).
    pub id: String,
    /// When the event happened.
    pub timestamp: DateTime<Utc>,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// What the event is about.
    pub entity: EntityRef,
    /// Event-specific data.
    pub data: EventData,
    /// Who caused it (more than one for aggregated events).
    pub authors: Vec<Author>,
    /// Delivery attempt, 1–8.
    pub attempt_number: u32,
    /// API version of the subscription, when sent.
    pub api_version: Option<String>,
    /// Bots and users with access (public integrations only).
    pub accessible_by: Vec<Author>,
    /// Workspace id.
    pub workspace_id: Option<String>,
    /// Workspace name.
    pub workspace_name: Option<String>,
    /// Subscription id.
    pub subscription_id: Option<String>,
    /// Integration id.
    pub integration_id: Option<String>,
}

impl WebhookEvent {
    /// Whether every author is one of `bots` (e.g. our own integration's bot
    /// user): such events echo our own writes.
    pub fn only_authored_by(&self, bots: &[NotionId]) -> bool {
        !self.authors.is_empty() && self.authors.iter().all(|a| bots.contains(&a.id))
    }
}

/// A webhook request body: the one-time verification handshake, or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // parsed once per delivery and consumed; boxing buys nothing
pub enum WebhookBody {
    /// `{"verification_token": "secret_…"}`, sent unsigned when a subscription is created.
    Verification {
        /// The token to use as the HMAC key once confirmed.
        verification_token: String,
    },
    /// An event.
    Event(WebhookEvent),
}

/// Why a webhook body could not be parsed. `Display` is a short reason,
/// e.g. ``missing field `entity` `` or `invalid JSON at line 1 column 5`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct EventParseError {
    reason: String,
}

impl EventParseError {
    /// The short reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    fn missing(field: &str) -> Self {
        Self {
            reason: format!("missing field `{field}`"),
        }
    }

    fn from_json(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let reason = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                format!("invalid JSON at line {} column {}", e.line(), e.column())
            }
            Category::Data => {
                let full = e.to_string();
                match full.rfind(" at line ") {
                    Some(i) => full[..i].to_owned(),
                    None => full,
                }
            }
        };
        Self { reason }
    }
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    verification_token: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(rename = "type", default)]
    event_type: Option<EventType>,
    #[serde(default)]
    entity: Option<EntityRef>,
    #[serde(default)]
    data: Option<EventData>,
    #[serde(default)]
    authors: Option<Vec<Author>>,
    #[serde(default)]
    attempt_number: Option<u32>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    accessible_by: Option<Vec<Author>>,
    #[serde(default)]
    workspace_id: Option<String>,
    #[serde(default)]
    workspace_name: Option<String>,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    integration_id: Option<String>,
}

impl WebhookBody {
    /// Parses a raw body. Requires `id`, `timestamp`, `type` and `entity`
    /// for events; unknown event types parse as [`EventType::Unknown`].
    pub fn parse(body: &[u8]) -> Result<WebhookBody, EventParseError> {
        let w: Wire = serde_json::from_slice(body).map_err(|e| EventParseError::from_json(&e))?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(EventParseError {
                reason: "expected a JSON object".to_owned(),
            });
        }
        if w.id.is_none()
            && w.event_type.is_none()
            && let Some(token) = w.verification_token
        {
            return Ok(WebhookBody::Verification {
                verification_token: token,
            });
        }
        let id = w.id.ok_or_else(|| EventParseError::missing("id"))?;
        let event_type = w
            .event_type
            .ok_or_else(|| EventParseError::missing("type"))?;
        let entity = w.entity.ok_or_else(|| EventParseError::missing("entity"))?;
        let timestamp = w
            .timestamp
            .ok_or_else(|| EventParseError::missing("timestamp"))?;
        Ok(WebhookBody::Event(WebhookEvent {
            id,
            timestamp,
            event_type,
            entity,
            data: w.data.unwrap_or_default(),
            authors: w.authors.unwrap_or_default(),
            attempt_number: w.attempt_number.unwrap_or(1),
            api_version: w.api_version,
            accessible_by: w.accessible_by.unwrap_or_default(),
            workspace_id: w.workspace_id,
            workspace_name: w.workspace_name,
            subscription_id: w.subscription_id,
            integration_id: w.integration_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_strings_round_trip() {
        for t in EventType::ALL {
            assert_eq!(&EventType::parse(t.as_str()), t);
            assert_eq!(t.to_string().parse::<EventType>().unwrap(), *t);
        }
        assert_eq!(
            EventType::parse("view.created"),
            EventType::Unknown("view.created".into())
        );
        assert!(EventType::PageLocked.is_page_event());
    }

    #[test]
    fn short_reasons() {
        let e = WebhookBody::parse(b"{\"id\":").unwrap_err();
        assert!(
            e.to_string().starts_with("invalid JSON at line 1 column"),
            "{e}"
        );
        let e = WebhookBody::parse(
            br#"{"id":"x","timestamp":"2024-12-05T23:55:34.285Z","type":"page.created"}"#,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "missing field `entity`");
        let e = WebhookBody::parse(
            br#"{"id":"x","type":"page.created","entity":{"id":"nope","type":"page"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid Notion id"), "{e}");
        assert!(!e.to_string().contains(" at line "));
        let e = WebhookBody::parse(b"[]").unwrap_err();
        assert_eq!(e.to_string(), "expected a JSON object");
    }
}
