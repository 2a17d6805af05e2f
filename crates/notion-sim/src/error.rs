//! Errors: `SimError` for the Rust/control API, `ApiError` for Notion-shaped HTTP error bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Failure of a mutation or webhook operation requested through [`crate::SimHandle`].
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No page with this id exists (in any data source).
    #[error("no page with id {0}")]
    PageNotFound(String),
    /// The data source has no property with this name (or id).
    #[error("no property named {0:?}")]
    UnknownProperty(String),
    /// The property has no option with this name.
    #[error("property {property:?} has no option {option:?}")]
    UnknownOption {
        /// Property name.
        property: String,
        /// Option name that was asked for.
        option: String,
    },
    /// The status property has no group with this name.
    #[error("status property has no group {0:?}")]
    UnknownGroup(String),
    /// The new name is already used by another property or option.
    #[error("name {0:?} is already in use")]
    NameTaken(String),
    /// A property value or edit was rejected, with Notion's validation message.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// A body edit referred to a block index that does not exist or has no text.
    #[error("no text block at index {0}")]
    BadBlockIndex(usize),
    /// The webhook verification handshake could not be delivered.
    #[error("webhook handshake to {url} failed: {reason}")]
    Handshake {
        /// Target URL.
        url: String,
        /// Status or transport error.
        reason: String,
    },
}

/// A Notion error response: `{object: "error", status, code, message, request_id}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u32>,
    pub additional_data: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            additional_data: None,
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", message)
    }

    pub(crate) fn invalid_url() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_url",
            "Invalid request URL.",
        )
    }

    pub(crate) fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Error parsing JSON body.",
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "API token is invalid.",
        )
    }

    /// Notion's 404 for anything missing or not shared with the integration.
    pub(crate) fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "object_not_found",
            format!(
                "Could not find {kind} with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
            ),
        )
    }

    /// The error Notion answers with `status` (used by forced errors and fault injection).
    pub(crate) fn for_status(status: u16, retry_after: Option<u32>) -> Self {
        let (code, message) = match status {
            400 => ("validation_error", "Simulated validation error."),
            401 => ("unauthorized", "API token is invalid."),
            403 => (
                "restricted_resource",
                "API token does not have access to this resource.",
            ),
            404 => ("object_not_found", "Could not find object."),
            409 => (
                "conflict_error",
                "Conflict occurred while saving. Please try again.",
            ),
            429 => (
                "rate_limited",
                "You have been rate limited. Please try again in a few minutes.",
            ),
            500 => ("internal_server_error", "Unexpected error occurred."),
            502 => ("bad_gateway", "Bad gateway."),
            503 => (
                "service_unavailable",
                "Notion is unavailable, please try again later.",
            ),
            504 => (
                "gateway_timeout",
                "Notion timed out while attempting to complete this request. Please try again later.",
            ),
            529 => (
                "service_overload",
                "Notion is overloaded. Please retry after the time in the Retry-After header.",
            ),
            _ => ("internal_server_error", "Unexpected error occurred."),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = match status.as_u16() {
            429 | 529 => Some(retry_after.unwrap_or(1).max(1)),
            _ => retry_after,
        };
        Self {
            status,
            code,
            message: message.to_owned(),
            retry_after,
            additional_data: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Notion's edge answers 502 with an HTML page, not a JSON error body.
        if self.status == StatusCode::BAD_GATEWAY {
            let mut res = (
                self.status,
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
            )
                .into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            return res;
        }
        let mut body = json!({
            "object": "error",
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "request_id": uuid::Uuid::new_v4().to_string(),
        });
        if let (Some(extra), Some(obj)) = (self.additional_data, body.as_object_mut()) {
            obj.insert("additional_data".to_owned(), extra);
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
