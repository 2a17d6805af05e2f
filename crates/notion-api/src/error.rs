//! `NotionError`: one error type for every client call, classified for retry and routing.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The body Notion sends with every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// HTTP status repeated in the body.
    pub status: u16,
    /// Machine-readable code, e.g. `object_not_found`, `rate_limited`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Notion's request id, quote it to Notion support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extra context (e.g. `rate_limit_reason`, retry guidance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_data: Option<serde_json::Value>,
}

/// What kind of failure an error is; drives retries and job routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 429 `rate_limited` or 529 `service_overload`: wait for `Retry-After`.
    RateLimited,
    /// 500/502/503/504 and other server-side failures.
    Transient,
    /// 404: deleted, or not shared with the integration.
    NotFound,
    /// 401: the token is invalid or revoked.
    Unauthorized,
    /// 403: the integration lacks a capability or access.
    Forbidden,
    /// 400 and other client errors; also requests rejected before sending.
    Validation,
    /// 409: a data collision; safe to retry with fresh data.
    Conflict,
    /// A 2xx body that does not match the model.
    Decode,
    /// Connection or protocol failure before a response arrived.
    Transport,
    /// No answer within the per-request timeout.
    Timeout,
}

impl ErrorClass {
    /// Stable lowercase label (for logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Transient => "transient",
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Validation => "validation",
            Self::Conflict => "conflict",
            Self::Decode => "decode",
            Self::Transport => "transport",
            Self::Timeout => "timeout",
        }
    }

    /// The class for an HTTP error status.
    pub fn from_status(status: u16) -> Self {
        match status {
            429 | 529 => Self::RateLimited,
            404 => Self::NotFound,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            409 => Self::Conflict,
            408 => Self::Timeout,
            500..=599 => Self::Transient,
            _ => Self::Validation,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a Notion call. Never contains the token.
///
/// `Display`: `notion 404 object_not_found: <message> (request_id …)` for
/// answers from Notion, `notion <class>: <detail>` otherwise.
pub struct NotionError {
    inner: Box<Repr>,
}

struct Repr {
    class: ErrorClass,
    status: Option<u16>,
    code: Option<String>,
    message: String,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    additional_data: Option<serde_json::Value>,
    source: Option<Source>,
}

impl NotionError {
    /// An error built from Notion's answer (status + parsed error body, if any).
    pub fn from_response(
        status: u16,
        body: Option<ErrorBody>,
        retry_after: Option<Duration>,
    ) -> Self {
        let (code, message, request_id, additional_data) = match body {
            Some(b) => (Some(b.code), b.message, b.request_id, b.additional_data),
            None => (None, String::from("no error body"), None, None),
        };
        Self {
            inner: Box::new(Repr {
                class: ErrorClass::from_status(status),
                status: Some(status),
                code,
                message,
                request_id,
                retry_after,
                additional_data,
                source: None,
            }),
        }
    }

    /// A request rejected before it was sent (bad filter, bad config …).
    pub fn validation(message: impl Into<String>) -> Self {
        Self::local(ErrorClass::Validation, message)
    }

    /// A 2xx body that does not match the model.
    pub fn decode(message: impl Into<String>, source: serde_json::Error) -> Self {
        let mut e = Self::local(ErrorClass::Decode, message);
        e.inner.source = Some(Box::new(source));
        e
    }

    /// A 2xx answer that breaks the protocol (e.g. a pagination cursor that
    /// does not advance).
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::local(ErrorClass::Decode, message)
    }

    /// A transport failure (connect, TLS, protocol, body read).
    pub fn transport(message: impl Into<String>, source: Option<Source>) -> Self {
        let mut e = Self::local(ErrorClass::Transport, message);
        e.inner.source = source;
        e
    }

    /// No answer within `after`.
    pub fn timeout(after: Duration) -> Self {
        Self::local(
            ErrorClass::Timeout,
            format!("no response within {} ms", after.as_millis()),
        )
    }

    fn local(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Repr {
                class,
                status: None,
                code: None,
                message: message.into(),
                request_id: None,
                retry_after: None,
                additional_data: None,
                source: None,
            }),
        }
    }

    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        self.inner.class
    }

    /// Whether trying again later may succeed (rate limits, server errors,
    /// timeouts, transport failures, conflicts). A job queue uses this to
    /// choose between retry and dead-letter.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.inner.class,
            ErrorClass::RateLimited
                | ErrorClass::Transient
                | ErrorClass::Transport
                | ErrorClass::Timeout
                | ErrorClass::Conflict
        )
    }

    /// HTTP status, when Notion answered.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// Notion's error code, e.g. `object_not_found`.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// Notion's request id.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// How long Notion asked us to wait (429/529).
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// `additional_data` of Notion's error body.
    pub fn additional_data(&self) -> Option<&serde_json::Value> {
        self.inner.additional_data.as_ref()
    }
}

impl fmt::Display for NotionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.inner;
        match e.status {
            Some(status) => {
                write!(f, "notion {status}")?;
                if let Some(code) = &e.code {
                    write!(f, " {code}")?;
                }
                write!(f, ": {}", e.message)?;
            }
            None => write!(f, "notion {}: {}", e.class, e.message)?,
        }
        if let Some(id) = &e.request_id {
            write!(f, " (request_id {id})")?;
        }
        if let Some(d) = e.retry_after {
            write!(f, " (retry after {} ms)", d.as_millis())?;
        }
        Ok(())
    }
}

impl fmt::Debug for NotionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.inner;
        f.debug_struct("NotionError")
            .field("class", &e.class)
            .field("status", &e.status)
            .field("code", &e.code)
            .field("message", &e.message)
            .field("request_id", &e.request_id)
            .field("retry_after", &e.retry_after)
            .field("source", &e.source)
            .finish()
    }
}

impl std::error::Error for NotionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_code_and_request_id() {
        let e = NotionError::from_response(
            404,
            Some(ErrorBody {
                status: 404,
                code: "object_not_found".into(),
                message: "Could not find page".into(),
                request_id: Some("abc".into()),
                additional_data: None,
            }),
            None,
        );
        assert_eq!(
            e.to_string(),
            "notion 404 object_not_found: Could not find page (request_id abc)"
        );
        assert_eq!(e.class(), ErrorClass::NotFound);
        assert!(!e.is_retryable());
    }

    #[test]
    fn classes_by_status() {
        for (s, c, r) in [
            (429, ErrorClass::RateLimited, true),
            (529, ErrorClass::RateLimited, true),
            (500, ErrorClass::Transient, true),
            (503, ErrorClass::Transient, true),
            (401, ErrorClass::Unauthorized, false),
            (403, ErrorClass::Forbidden, false),
            (400, ErrorClass::Validation, false),
            (409, ErrorClass::Conflict, true),
        ] {
            let e = NotionError::from_response(s, None, None);
            assert_eq!(e.class(), c, "{s}");
            assert_eq!(e.is_retryable(), r, "{s}");
        }
    }
}
