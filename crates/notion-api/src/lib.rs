#![doc = include_str!("../README.md")]

mod client;
mod error;

mod markdown;
pub mod models;
mod pacer;
pub mod query;
mod shared_budget;
pub mod webhook;
mod workspace;

pub use client::{
    ClientConfig, ClientStats, DEFAULT_BASE_URL, DEFAULT_RETRY_AFTER, Dated, MARKDOWN_VERSION,
    MAX_RETRY_AFTER, NOTION_VERSION, NotionClient, backoff_delay, parse_http_date,
};
pub use error::{ErrorBody, ErrorClass, NotionError};
pub use markdown::{PageMarkdown, render_markdown, render_rich_text};
pub use models::{
    Annotations, Block, BlockContent, BlockNode, DataSource, DataSourceRef, Database, DateValue,
    FileRef, FormulaValue, ListResponse, NotionDate, Page, PageProperties, Parent, PartialUser,
    PropertyKind, PropertySchema, PropertyValue, RequestStatus, RichText, RichTextContent,
    RollupResult, RollupValue, SelectOption, StatusGroup, UniqueIdValue, User, UserKind,
    VerificationValue,
};
pub use notion_id::{IdError, NotionId};
pub use pacer::{Lane, Pacer, PacerConfig, PacerSnapshot};
pub use query::{
    DateFilterBuilder, Direction, Filter, QueryRequest, Sort, StatusFilterBuilder,
    TextFilterBuilder,
};
pub use shared_budget::{BudgetFuture, SharedBudget};
pub use webhook::{
    Author, EntityRef, EventData, EventParseError, EventType, Signature, SignatureError,
    WebhookBody, WebhookEvent, sign, verify_signature,
};
pub use workspace::{Workspace, is_workspace_limit};
