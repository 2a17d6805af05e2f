//! The HTTP surface: `POST /webhooks/notion`, `GET /healthz`, `GET /metrics`.
//! The webhook path bounds the body (size, time), verifies, parses, refuses replays
//! and commits; it never calls Notion. Every metric label comes from a fixed set.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use notion_api::WebhookBody;
use secrecy::ExposeSecret;
use serde_json::json;
use sync_store::IngestOutcome;

use crate::state::AppState;
use crate::webhook_error::WebhookError;
use crate::{handshake, health};

/// The routes, also the only values of the `route` metric label (besides "unmatched").
const WEBHOOK: &str = "/webhooks/notion";
const HEALTHZ: &str = "/healthz";
const METRICS: &str = "/metrics";

/// Builds the router with its request metrics (the webhook handler bounds its own body).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(WEBHOOK, post(webhook))
        .route(HEALTHZ, get(health::healthz))
        .route(METRICS, get(metrics_text))
        .layer(middleware::from_fn(track_http))
        .with_state(state)
}

/// The `method` label: the standard methods by name, anything invented as "other".
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

async fn track_http(req: Request, next: Next) -> Response {
    // Route templates are a fixed set (the router's); anything else is "unmatched".
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| match p.as_str() {
            WEBHOOK => WEBHOOK,
            HEALTHZ => HEALTHZ,
            METRICS => METRICS,
            _ => "unmatched",
        });
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route, "method" => method, "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `POST /webhooks/notion`: bound the body → verify on raw bytes → parse → refuse
/// replays → one durable commit.
#[tracing::instrument(skip_all, fields(webhook.event_id, webhook.type))]
async fn webhook(State(app): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let (event_type, result) = handle_webhook(&app, req).await;
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

/// Reads the body within `server.max_body_bytes` and `server.body_timeout_seconds`:
/// a declared `Content-Length` over the limit is refused before reading anything.
async fn read_body(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, WebhookError> {
    let limit = app.max_body_bytes;
    let too_large = |declared: Option<u64>| {
        app.logs.too_large.warn(|suppressed| {
            tracing::warn!(content_length = ?declared, limit, suppressed, "webhook body over the size limit: 413");
        });
        WebhookError::TooLarge { limit }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(declared));
    }
    let read = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(app.body_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                Err(too_large(declared))
            } else {
                Err(WebhookError::Body)
            }
        }
        Err(_) => {
            let seconds = app.body_timeout.as_secs();
            app.logs.body_timeout.warn(|suppressed| {
                tracing::warn!(
                    seconds,
                    suppressed,
                    "webhook body not received in time: 408"
                );
            });
            Err(WebhookError::BodyTimeout { seconds })
        }
    }
}

async fn handle_webhook(
    app: &AppState,
    req: Request,
) -> (&'static str, Result<&'static str, WebhookError>) {
    const UNKNOWN: &str = "unknown";
    if !app.accepting.load(Ordering::Acquire) {
        return (UNKNOWN, Err(WebhookError::ShuttingDown));
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = match read_body(app, &headers, body).await {
        Ok(b) => b,
        Err(e) => return (UNKNOWN, Err(e)),
    };
    let signature = headers
        .get("x-notion-signature")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let Some(signature) = signature else {
        // Only the verification handshake arrives unsigned (Notion has no key yet).
        return match WebhookBody::parse(&body) {
            Ok(WebhookBody::Verification { verification_token }) => {
                let origin = handshake::origin(peer, &headers);
                (
                    UNKNOWN,
                    record_token(app, &verification_token, &origin).await,
                )
            }
            _ => {
                app.logs.unsigned.warn(|suppressed| {
                    tracing::warn!(
                        bytes = body.len(),
                        suppressed,
                        "webhook without X-Notion-Signature rejected: 401"
                    );
                });
                (UNKNOWN, Err(WebhookError::MissingSignature))
            }
        };
    };
    let Some(secret) = app.webhook_secret.get() else {
        app.logs.no_secret.warn(|suppressed| {
            tracing::error!(
                suppressed,
                "signed webhook received but NOTION_WEBHOOK_SECRET is not set: 401 (Notion will retry); run `notion-sync webhook tokens`"
            );
        });
        return (UNKNOWN, Err(WebhookError::NoSecret));
    };
    if let Err(e) =
        notion_api::verify_signature(secret.expose_secret().as_bytes(), &body, Some(signature))
    {
        app.logs.bad_signature.warn(|suppressed| {
            tracing::warn!(reason = %e, bytes = body.len(), suppressed, "webhook signature rejected: 401");
        });
        return (UNKNOWN, Err(WebhookError::BadSignature(e)));
    }
    let event = match WebhookBody::parse(&body) {
        Ok(WebhookBody::Event(event)) => event,
        Ok(WebhookBody::Verification { verification_token }) => {
            let origin = handshake::origin(peer, &headers);
            return (
                UNKNOWN,
                record_token(app, &verification_token, &origin).await,
            );
        }
        Err(e) => return (UNKNOWN, Err(WebhookError::Malformed(e.to_string()))),
    };
    let event_type = event.event_type.label();
    let span = tracing::Span::current();
    span.record("webhook.event_id", event.id.as_str());
    span.record("webhook.type", event.event_type.as_str());
    (event_type, commit(app, &event).await)
}

/// Refuses a replay by timestamp, then records the event and its jobs in one commit.
async fn commit(
    app: &AppState,
    event: &notion_api::WebhookEvent,
) -> Result<&'static str, WebhookError> {
    if event.timestamp < app.engine.now() - app.replay_window {
        let timestamp = event
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        app.logs.replay.warn(|suppressed| {
            tracing::warn!(%timestamp, suppressed, "signed event older than the replay window: 400");
        });
        let hours = app.replay_window.num_hours();
        return Err(WebhookError::Replay { timestamp, hours });
    }
    let incoming = app.engine.accept(event);
    let has_jobs = !incoming.jobs.is_empty();
    let result = app.engine.store().ingest(incoming).await;
    match result {
        Ok(IngestOutcome::Inserted) => {
            if has_jobs {
                app.engine.wake_workers();
            }
            tracing::debug!(attempt = event.attempt_number, "webhook event recorded");
            Ok(if has_jobs { "queued" } else { "recorded" })
        }
        Ok(IngestOutcome::Duplicate) => Ok("duplicate"),
        Err(e) => {
            app.engine
                .status()
                .record_store_write_failure(e.to_string());
            tracing::error!(error = %e, error.chain = ?e, "webhook event not recorded: 503 (Notion retries)");
            Err(WebhookError::Store(e))
        }
    }
}

async fn record_token(
    app: &AppState,
    token: &str,
    origin: &sync_store::TokenOrigin,
) -> Result<&'static str, WebhookError> {
    app.handshakes
        .record(
            app.webhook_secret.is_set(),
            app.engine.store(),
            token,
            origin,
        )
        .await
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
    use super::*;

    #[test]
    fn invented_methods_are_labelled_other() {
        assert_eq!(method_label(&Method::POST), "POST");
        let invented = Method::from_bytes("X".repeat(60_000).as_bytes()).unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
