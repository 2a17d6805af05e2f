//! Paginated list responses (`object: "list"`).

use serde::{Deserialize, Serialize};

/// One page of a paginated list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListResponse<T> {
    /// The items.
    pub results: Vec<T>,
    /// Cursor for the next page, when `has_more`.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// Whether more pages follow.
    #[serde(default)]
    pub has_more: bool,
}
