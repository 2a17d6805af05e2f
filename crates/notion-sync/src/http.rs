//! The HTTP surface: `POST /webhooks/notion`, `GET /healthz`, `GET /metrics`.
//! The webhook path verifies, parses and commits; it never calls Notion.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use notion_api::{SignatureError, WebhookBody};
use secrecy::ExposeSecret;
use serde_json::json;
use sync_store::{IngestOutcome, StoreError};

use crate::health;
use crate::state::AppState;

/// Everything that can go wrong on the webhook path, with exactly one status each.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("could not read the request body")]
    Body,
    #[error("missing X-Notion-Signature header")]
    MissingSignature,
    #[error("invalid X-Notion-Signature: {0}")]
    BadSignature(SignatureError),
    #[error(
        "webhook secret not configured: set NOTION_WEBHOOK_SECRET (see `notion-sync webhook tokens`)"
    )]
    NoSecret,
    #[error("malformed webhook body: {0}")]
    Malformed(String),
    #[error("shutting down")]
    ShuttingDown,
    #[error("storage unavailable")]
    Store(#[source] StoreError),
}

impl WebhookError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Body | WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::MissingSignature
            | WebhookError::BadSignature(_)
            | WebhookError::NoSecret => StatusCode::UNAUTHORIZED,
            WebhookError::ShuttingDown | WebhookError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            WebhookError::TooLarge { .. } => "too_large",
            WebhookError::Body => "bad_body",
            WebhookError::MissingSignature => "missing_signature",
            WebhookError::BadSignature(_) => "bad_signature",
            WebhookError::NoSecret => "no_secret",
            WebhookError::Malformed(_) => "malformed",
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

/// Builds the router with its body limit and request metrics.
pub fn router(state: AppState) -> Router {
    let limit = usize::try_from(state.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/webhooks/notion",
            post(webhook).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics_text))
        .layer(middleware::from_fn(track_http))
        .with_state(state)
}

async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `POST /webhooks/notion`: limit → verify on raw bytes → parse → one durable commit.
#[tracing::instrument(skip_all, fields(webhook.event_id, webhook.type))]
async fn webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let (event_type, result) = handle_webhook(&app, &headers, body).await;
    let outcome = match &result {
        Ok(o) => *o,
        Err(e) => e.outcome(),
    };
    metrics::counter!("webhook_deliveries_total", "type" => event_type, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("webhook_ack_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(outcome) => (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "outcome": outcome })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle_webhook(
    app: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (String, Result<&'static str, WebhookError>) {
    let unknown = || "unknown".to_owned();
    if !app.accepting.load(Ordering::Acquire) {
        return (unknown(), Err(WebhookError::ShuttingDown));
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let content_length = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            tracing::warn!(?content_length, "webhook body over the size limit: 413");
            return (
                unknown(),
                Err(WebhookError::TooLarge {
                    limit: app.max_body_bytes,
                }),
            );
        }
        Err(_) => return (unknown(), Err(WebhookError::Body)),
    };
    let signature = headers
        .get("x-notion-signature")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let Some(signature) = signature else {
        // Only the verification handshake arrives unsigned (Notion has no key yet).
        return match WebhookBody::parse(&body) {
            Ok(WebhookBody::Verification { verification_token }) => {
                (unknown(), record_token(app, &verification_token).await)
            }
            _ => {
                tracing::warn!(
                    bytes = body.len(),
                    "webhook without X-Notion-Signature rejected: 401"
                );
                (unknown(), Err(WebhookError::MissingSignature))
            }
        };
    };
    let Some(secret) = app.webhook_secret.get() else {
        tracing::error!(
            "signed webhook received but NOTION_WEBHOOK_SECRET is not set: 401 (Notion will retry); run `notion-sync webhook tokens`"
        );
        return (unknown(), Err(WebhookError::NoSecret));
    };
    if let Err(e) =
        notion_api::verify_signature(secret.expose_secret().as_bytes(), &body, Some(signature))
    {
        tracing::warn!(reason = %e, bytes = body.len(), "webhook signature rejected: 401");
        return (unknown(), Err(WebhookError::BadSignature(e)));
    }
    let event = match WebhookBody::parse(&body) {
        Ok(WebhookBody::Event(event)) => event,
        Ok(WebhookBody::Verification { verification_token }) => {
            return (unknown(), record_token(app, &verification_token).await);
        }
        Err(e) => return (unknown(), Err(WebhookError::Malformed(e.to_string()))),
    };
    let event_type = event.event_type.as_str().to_owned();
    let span = tracing::Span::current();
    span.record("webhook.event_id", event.id.as_str());
    span.record("webhook.type", event_type.as_str());
    let incoming = app.engine.accept(&event);
    let has_jobs = !incoming.jobs.is_empty();
    let result = app.engine.store().ingest(incoming).await;
    if let Err(e) = &result {
        app.engine
            .status()
            .record_store_write_failure(e.to_string());
    }
    match result {
        Ok(IngestOutcome::Inserted) => {
            if has_jobs {
                app.engine.wake_workers();
            }
            tracing::debug!(attempt = event.attempt_number, "webhook event recorded");
            (event_type, Ok(if has_jobs { "queued" } else { "recorded" }))
        }
        Ok(IngestOutcome::Duplicate) => (event_type, Ok("duplicate")),
        Err(e) => {
            tracing::error!(error = %e, error.chain = ?e, "webhook event not recorded: 503 (Notion retries)");
            (event_type, Err(WebhookError::Store(e)))
        }
    }
}

/// Whether a string looks like Notion's verification tokens (`secret_` and a few dozen
/// letters and digits): anyone can send an unsigned handshake, so anything else is refused.
fn is_verification_token(token: &str) -> bool {
    token.strip_prefix("secret_").is_some_and(|rest| {
        (16..=128).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

async fn record_token(app: &AppState, token: &str) -> Result<&'static str, WebhookError> {
    if !is_verification_token(token) {
        tracing::warn!(
            bytes = token.len(),
            "unsigned handshake with something that is not a verification token: 400"
        );
        return Err(WebhookError::Malformed(
            "verification_token is not a Notion verification token".into(),
        ));
    }
    app.engine
        .store()
        .record_verification_token(token)
        .await
        .map_err(WebhookError::Store)?;
    tracing::warn!(
        "Notion sent a webhook verification token: run `notion-sync webhook tokens` to see it, paste it into Notion's webhook settings, and set NOTION_WEBHOOK_SECRET to it"
    );
    Ok("verification_token_stored")
}

/// `GET /metrics`: refreshes the queue and mirror gauges, then renders.
async fn metrics_text(State(app): State<AppState>) -> Response {
    health::refresh_gauges(&app.engine).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn verification_token_shape() {
        let check = |t: &str, ok: bool| assert_eq!(super::is_verification_token(t), ok, "{t:?}");
        check("secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl", true);
        check("secret_short", false);
        check("tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl", false);
        check("secret_with spaces and more text here", false);
        check(&format!("secret_{}", "a".repeat(200)), false);
    }
}
