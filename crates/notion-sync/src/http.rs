//! The HTTP surface: `POST /webhooks/notion/{integration}` (and `/webhooks/notion` for
//! a daemon with one integration), `GET /healthz`, `GET /metrics`. The webhook path
//! bounds the body (size, time), verifies with that integration's secret, parses,
//! refuses replays, finds the event's source and commits; it never calls Notion. Every
//! metric label comes from a fixed set (integration names from the configuration).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use notion_api::WebhookBody;
use secrecy::ExposeSecret;
use serde_json::json;
use sync_engine::Routed;
use sync_store::IngestOutcome;

use crate::config::secret_var;
use crate::state::{AppState, Endpoint};
use crate::webhook_error::WebhookError;
use crate::{handshake, health};

/// The routes, also the only values of the `route` metric label (besides "unmatched").
const WEBHOOK: &str = "/webhooks/notion";
const WEBHOOK_NAMED: &str = "/webhooks/notion/{integration}";
const HEALTHZ: &str = "/healthz";
const METRICS: &str = "/metrics";

/// Builds the router with its request metrics (the webhook handler bounds its own body).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(WEBHOOK, post(webhook))
        .route(WEBHOOK_NAMED, post(webhook_named))
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
            WEBHOOK_NAMED => WEBHOOK_NAMED,
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

/// `POST /webhooks/notion`: the one integration's endpoint, when there is one.
async fn webhook(State(app): State<AppState>, req: Request) -> Response {
    deliver(&app, None, req).await
}

/// `POST /webhooks/notion/{integration}`.
async fn webhook_named(
    State(app): State<AppState>,
    Path(integration): Path<String>,
    req: Request,
) -> Response {
    deliver(&app, Some(&integration), req).await
}

/// Bound the body → verify on raw bytes with the integration's secret → parse → refuse
/// replays → find the source → one durable commit.
#[tracing::instrument(skip_all, fields(webhook.integration, webhook.event_id, webhook.type))]
async fn deliver(app: &AppState, integration: Option<&str>, req: Request) -> Response {
    let started = Instant::now();
    let (label, (event_type, result)) = match app.endpoint(integration) {
        Some(endpoint) => {
            tracing::Span::current().record("webhook.integration", endpoint.integration.as_str());
            (
                endpoint.integration.clone(),
                handle_webhook(app, endpoint, req).await,
            )
        }
        None => (
            "unknown".to_owned(),
            ("unknown", Err(WebhookError::UnknownIntegration)),
        ),
    };
    let outcome = match &result {
        Ok(o) => *o,
        Err(e) => e.outcome(),
    };
    metrics::counter!("webhook_deliveries_total", "type" => event_type, "outcome" => outcome, "integration" => label)
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
    endpoint: &Endpoint,
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
                    record_token(app, endpoint, &verification_token, &origin).await,
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
    let Some(secret) = endpoint.secret.get() else {
        let var = secret_var("NOTION_WEBHOOK_SECRET", &endpoint.integration);
        app.logs.no_secret.warn(|suppressed| {
            tracing::error!(
                suppressed,
                "signed webhook received but {var} is not set: 401 (Notion will retry); run `notion-sync webhook tokens`"
            );
        });
        return (UNKNOWN, Err(WebhookError::NoSecret { var }));
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
                record_token(app, endpoint, &verification_token, &origin).await,
            );
        }
        Err(e) => return (UNKNOWN, Err(WebhookError::Malformed(e.to_string()))),
    };
    let event_type = event.event_type.label();
    let span = tracing::Span::current();
    span.record("webhook.event_id", event.id.as_str());
    span.record("webhook.type", event.event_type.as_str());
    (event_type, commit(app, endpoint, &event).await)
}

/// Refuses a replay by timestamp, then records the event and its jobs in one commit.
async fn commit(
    app: &AppState,
    endpoint: &Endpoint,
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
    let routed = app.sources.route(&endpoint.integration, event).await;
    let (engine, incoming, claimed) = match routed {
        Ok(Routed::To(engine, incoming)) => (engine, incoming, true),
        Ok(Routed::Unclaimed(incoming)) => (app.engine.clone(), incoming, false),
        Err(e) => return Err(store_failed(app, e)),
    };
    let has_jobs = !incoming.jobs.is_empty();
    let result = engine.store().ingest(incoming).await;
    match result {
        Ok(IngestOutcome::Inserted) => {
            if has_jobs {
                engine.wake_workers();
            }
            tracing::debug!(
                attempt = event.attempt_number,
                source = engine.name(),
                "webhook event recorded"
            );
            Ok(match (claimed, has_jobs) {
                (false, _) => {
                    metrics::counter!("webhook_unclaimed_total", "integration" => endpoint.integration.clone())
                        .increment(1);
                    "unclaimed"
                }
                (true, true) => "queued",
                (true, false) => "recorded",
            })
        }
        Ok(IngestOutcome::Duplicate) => Ok("duplicate"),
        Err(e) => Err(store_failed(app, e)),
    }
}

/// The store did not take the event: health reports it, Notion retries on the 503.
fn store_failed(app: &AppState, e: sync_store::StoreError) -> WebhookError {
    app.engine
        .status()
        .record_store_write_failure(e.to_string());
    tracing::error!(error = %e, error.chain = ?e, "webhook event not recorded: 503 (Notion retries)");
    WebhookError::Store(e)
}

async fn record_token(
    app: &AppState,
    endpoint: &Endpoint,
    token: &str,
    origin: &sync_store::TokenOrigin,
) -> Result<&'static str, WebhookError> {
    app.handshakes
        .record(
            endpoint.secret.is_set(),
            app.engine.store(),
            &endpoint.integration,
            token,
            origin,
        )
        .await
}

/// `GET /metrics`: refreshes the queue and mirror gauges, then renders.
async fn metrics_text(State(app): State<AppState>) -> Response {
    health::refresh_gauges(&app.sources).await;
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
