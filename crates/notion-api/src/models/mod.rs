//! Serde models for Notion-Version 2025-09-03 objects, field names as in Notion's JSON.

mod block;
mod lenient;
mod list;
mod page;
mod parent;
mod property;
mod rich_text;
mod schema;
mod user;

pub use block::{Block, BlockContent, BlockNode};
pub use list::{ListResponse, RequestStatus};
pub use page::Page;
pub use parent::Parent;
pub use property::{
    DateParseError, DateValue, FileRef, FormulaValue, NotionDate, PageProperties, PropertyValue,
    RollupResult, RollupValue, SelectOption, UniqueIdValue, VerificationValue,
};
pub use rich_text::{Annotations, RichText, RichTextContent, plain_text};
pub use schema::{DataSource, DataSourceRef, Database, PropertyKind, PropertySchema, StatusGroup};
pub use user::{PartialUser, User, UserKind};
