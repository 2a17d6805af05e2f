//! The `/v1` middleware: auth, `Notion-Version`, forced errors, rate limits, faults, the
//! request log, the `Date` header, and the per-version shaping of answers.
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::time::Instant;

use crate::clock::http_date;
use crate::error::ApiError;
use crate::limits::FaultDecision;
use crate::respond::St;
use crate::shared::Shared;
use crate::types::RequestRecord;

/// The versions the simulator models (and so accepts): 2025-09-03 (data sources) and
/// 2026-03-11, where pages and blocks carry `in_trash` only (`archived` is gone). An
/// older version would need pre-data-source shapes: it is refused with Notion's error.
pub(crate) const VERSIONS: [&str; 2] = ["2025-09-03", "2026-03-11"];

/// From this version on, `archived` is no longer sent beside `in_trash`.
const IN_TRASH_ONLY_FROM: &str = "2026-03-11";

/// What the log needs to know about a request, captured before it is answered.
struct ReqInfo {
    method: Method,
    path: String,
    route: String,
    at: chrono::DateTime<chrono::Utc>,
    version: Option<String>,
    started: Instant,
}

fn record(s: &Shared, info: ReqInfo, status: u16, integration: Option<usize>) {
    crate::lock(&s.log).push(RequestRecord {
        integration,
        method: info.method.to_string(),
        path: info.path,
        route: info.route,
        status,
        at: info.at,
        notion_version: info.version,
        latency: info.started.elapsed(),
        elapsed: info.started.saturating_duration_since(s.started),
    });
}

/// A response whose body fails immediately: the client sees the connection drop.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "notion-sim: connection dropped on purpose",
        ))
    });
    Response::new(Body::from_stream(stream))
}

#[tracing::instrument(skip_all, fields(http.method = %req.method(), http.path = %req.uri().path()))]
pub(crate) async fn api_middleware(State(s): St, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sim") {
        return next.run(req).await;
    }
    let info = ReqInfo {
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned()),
        at: s.clock.now(),
        version: req
            .headers()
            .get("notion-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        started: Instant::now(),
    };
    let integration = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| s.integration_of(t));
    let mut response = match gate(&s, integration, &info).await {
        Gate::Answer(r) => r,
        Gate::Drop => {
            record(&s, info, 0, integration);
            return dropped_connection();
        }
        Gate::Proceed => shape_for_version(next.run(req).await, info.version.as_deref()).await,
    };
    if let Ok(v) = HeaderValue::from_str(&http_date(s.clock.now())) {
        response.headers_mut().insert(header::DATE, v);
    }
    let status = response.status().as_u16();
    record(&s, info, status, integration);
    response
}

/// Shapes a JSON answer for the request's version: from [`IN_TRASH_ONLY_FROM`] on,
/// objects that carry `in_trash` lose the `archived` alias.
async fn shape_for_version(response: Response, version: Option<&str>) -> Response {
    if version.is_none_or(|v| v < IN_TRASH_ONLY_FROM) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return dropped_connection();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    drop_archived_alias(&mut value);
    let mut response = Response::from_parts(parts, Body::from(value.to_string()));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

fn drop_archived_alias(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("in_trash") {
                m.remove("archived");
            }
            m.values_mut().for_each(drop_archived_alias);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_archived_alias),
        _ => {}
    }
}

enum Gate {
    Proceed,
    Answer(Response),
    Drop,
}

/// Everything that happens before a handler runs, in Notion's order.
async fn gate(s: &Shared, integration: Option<usize>, info: &ReqInfo) -> Gate {
    let version = info.version.as_deref();
    let Some(integration) = integration else {
        return Gate::Answer(ApiError::unauthorized().into_response());
    };
    match version {
        None => {
            return Gate::Answer(
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "missing_version",
                    "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
                )
                .into_response(),
            );
        }
        Some(v) if !VERSIONS.contains(&v) => {
            return Gate::Answer(
                ApiError::validation(format!(
                    "Notion-Version header failed validation: Notion-Version header should be one of {}, instead was `\"{v}\"`.",
                    VERSIONS.join(", ")
                ))
                .into_response(),
            );
        }
        Some(_) => {}
    }
    let decision = {
        let mut limits = crate::lock(&s.limits);
        if let Some(e) = limits.take_refusal(info.method.as_str(), &info.route) {
            return Gate::Answer(e.into_response());
        }
        if let Some(e) = limits.take_forced(integration) {
            return Gate::Answer(e.into_response());
        }
        if let Err(e) = limits.admit(integration, Instant::now()) {
            return Gate::Answer(e.into_response());
        }
        limits.roll_faults()
    };
    match decision {
        FaultDecision::Drop => Gate::Drop,
        FaultDecision::Error(e) => Gate::Answer(e.into_response()),
        FaultDecision::Proceed { hang, latency } => {
            let wait = hang.unwrap_or_default() + latency;
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = s.cancel.cancelled() => return Gate::Drop,
                }
            }
            Gate::Proceed
        }
    }
}
