//! Everything that can go wrong on the webhook path, with exactly one HTTP status and
//! one metric outcome each (4xx bodies say what was wrong; 5xx bodies carry no internals).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use notion_api::SignatureError;
use serde_json::json;
use sync_store::StoreError;

/// Everything that can go wrong on the webhook path, with exactly one status each.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("request body not received within {seconds} s")]
    BodyTimeout { seconds: u64 },
    #[error("could not read the request body")]
    Body,
    #[error("missing X-Notion-Signature header")]
    MissingSignature,
    #[error("invalid X-Notion-Signature: {0}")]
    BadSignature(SignatureError),
    #[error("webhook secret not configured: set {var} (see `notion-sync webhook tokens`)")]
    NoSecret { var: String },
    #[error(
        "no integration is called that: post to /webhooks/notion/<integration> for a configured integration"
    )]
    UnknownIntegration,
    #[error("malformed webhook body: {0}")]
    Malformed(String),
    #[error(
        "event timestamp {timestamp} is older than the replay window ({hours} h, from store.event_retention_days): refused as a replay"
    )]
    Replay { timestamp: String, hours: i64 },
    #[error(
        "a webhook secret is configured, so handshakes are refused (set server.accept_handshakes = true to receive a new subscription's token)"
    )]
    HandshakeClosed,
    #[error("too many verification handshakes; try again later")]
    TooManyHandshakes,
    #[error("shutting down")]
    ShuttingDown,
    #[error("storage unavailable")]
    Store(#[source] StoreError),
}

impl WebhookError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            WebhookError::Body | WebhookError::Malformed(_) | WebhookError::Replay { .. } => {
                StatusCode::BAD_REQUEST
            }
            WebhookError::HandshakeClosed => StatusCode::FORBIDDEN,
            WebhookError::TooManyHandshakes => StatusCode::TOO_MANY_REQUESTS,
            WebhookError::MissingSignature
            | WebhookError::BadSignature(_)
            | WebhookError::NoSecret { .. } => StatusCode::UNAUTHORIZED,
            WebhookError::UnknownIntegration => StatusCode::NOT_FOUND,
            WebhookError::ShuttingDown | WebhookError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `outcome` label of `webhook_deliveries_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            WebhookError::TooLarge { .. } => "too_large",
            WebhookError::BodyTimeout { .. } => "body_timeout",
            WebhookError::Body => "bad_body",
            WebhookError::MissingSignature => "missing_signature",
            WebhookError::BadSignature(_) => "bad_signature",
            WebhookError::NoSecret { .. } => "no_secret",
            WebhookError::UnknownIntegration => "unknown_integration",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::Replay { .. } => "replay",
            WebhookError::HandshakeClosed => "handshake_closed",
            WebhookError::TooManyHandshakes => "handshake_limited",
            WebhookError::ShuttingDown => "shutting_down",
            WebhookError::Store(_) => "store_unavailable",
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        // 5xx bodies never carry internals; 4xx say what was wrong with the request.
        let message = match &self {
            WebhookError::Store(_) => "storage unavailable, retry later".to_owned(),
            other => other.to_string(),
        };
        (self.status_code(), axum::Json(json!({ "error": message }))).into_response()
    }
}
