//! Paginated list responses (`object: "list"`), with the query's completeness.

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
    /// Sent by data source queries whose result was cut short: a query returns at most
    /// 10,000 results, then `has_more` is false and this says `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_status: Option<RequestStatus>,
}

/// Whether a query's whole result was returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStatus {
    /// `"incomplete"` when capped (other values: complete).
    #[serde(rename = "type")]
    pub kind: String,
    /// Why, e.g. `"query_result_limit_reached"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
}

impl<T> ListResponse<T> {
    /// The query reached Notion's per-query result limit: rows past this page exist but
    /// this query (its cursors) will not return them; a new query must.
    pub fn is_incomplete(&self) -> bool {
        self.request_status
            .as_ref()
            .is_some_and(|s| s.kind == "incomplete")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_query_says_so() {
        let capped: ListResponse<u8> = serde_json::from_str(
            r#"{"object":"list","results":[],"next_cursor":null,"has_more":false,
                "request_status":{"type":"incomplete","incomplete_reason":"query_result_limit_reached"}}"#,
        )
        .unwrap();
        assert!(capped.is_incomplete());
        let whole: ListResponse<u8> =
            serde_json::from_str(r#"{"results":[],"next_cursor":null,"has_more":false}"#).unwrap();
        assert!(!whole.is_incomplete());
    }
}
