//! Public data types of the Rust and `/_sim` control APIs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A block to put in a page body. JSON form (control API) is externally tagged, snake_case:
/// `{"paragraph": "text"}`, `{"bulleted": ["text", [children]]}`, `{"to_do": ["text", true]}`,
/// `{"code": {"language": "rust", "text": "…"}}`, `"divider"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimBlock {
    /// `paragraph`
    Paragraph(String),
    /// `heading_1`
    #[serde(rename = "heading_1")]
    Heading1(String),
    /// `heading_2`
    #[serde(rename = "heading_2")]
    Heading2(String),
    /// `heading_3`
    #[serde(rename = "heading_3")]
    Heading3(String),
    /// `bulleted_list_item` with nested children
    Bulleted(String, Vec<SimBlock>),
    /// `numbered_list_item` with nested children
    Numbered(String, Vec<SimBlock>),
    /// `to_do` with its checked state
    ToDo(String, bool),
    /// `toggle` with nested children
    Toggle(String, Vec<SimBlock>),
    /// `quote`
    Quote(String),
    /// `callout`
    Callout(String),
    /// `code` with Notion's language name (`"plain text"`, `"rust"`, …)
    Code {
        /// Notion language name.
        language: String,
        /// The code; may span lines.
        text: String,
    },
    /// `divider`
    Divider,
}

/// An edit of a page body (emits `page.content_updated`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEdit {
    /// Appends a paragraph at the end of the body.
    AppendParagraph(String),
    /// Replaces the text of the top-level block at `index` (kept: id and type).
    ReplaceParagraph {
        /// Index among the top-level blocks.
        index: usize,
        /// New plain text.
        text: String,
    },
    /// Replaces the whole body with new blocks (new ids).
    Replace(Vec<SimBlock>),
}

/// A task to create in the Tasks data source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewTask {
    /// Title (`Name`).
    pub title: String,
    /// Status option name; `None` means `To Do`.
    pub status: Option<String>,
    /// `Due Date` start: `YYYY-MM-DD` or an RFC 3339 date-time.
    pub due: Option<String>,
    /// Page body.
    pub body: Vec<SimBlock>,
    /// When true, this creation emits no webhook.
    pub silent: bool,
}

/// A page as the simulator holds it now (latest version, not the query-visible one).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimPage {
    /// Dashed lowercase UUID.
    pub id: String,
    /// Data source the page belongs to.
    pub data_source_id: String,
    /// Plain-text title.
    pub title: String,
    /// Status option name, if any.
    pub status: Option<String>,
    /// `Due Date` start as Notion renders it, if any.
    pub due: Option<String>,
    /// Minute-truncated creation time.
    pub created_time: DateTime<Utc>,
    /// Minute-truncated last edit time.
    pub last_edited_time: DateTime<Utc>,
    /// In the trash.
    pub in_trash: bool,
    /// Still shared with the integration (see [`crate::SimHandle::unshare`]).
    pub shared: bool,
    /// Body rendered with the project's Markdown spec.
    pub markdown: String,
    /// `properties` exactly as `GET /v1/pages/{id}` renders them.
    pub properties: serde_json::Value,
}

/// One API request as the simulator saw it. Durations serialize as milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRecord {
    /// The integration whose token it carried (0: the main one), `None` if none matched.
    pub integration: Option<usize>,
    /// HTTP method.
    pub method: String,
    /// Request path (no query string).
    pub path: String,
    /// Route template such as `/v1/pages/{id}`; `unmatched` for unknown URLs.
    pub route: String,
    /// Response status; 0 when the connection was dropped on purpose.
    pub status: u16,
    /// Sim-clock time the request arrived.
    pub at: DateTime<Utc>,
    /// `Notion-Version` header, if sent.
    pub notion_version: Option<String>,
    /// Time spent answering (including injected latency and hangs).
    #[serde(with = "crate::config::duration_ms", rename = "latency_ms")]
    pub latency: Duration,
    /// Real (tokio) time since the simulator started, when the request arrived.
    #[serde(with = "crate::config::duration_ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
}
