//! `/_sim/*`: JSON control endpoints mirroring `SimHandle` (no token, not logged, not limited).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::{Faults, RateLimit, WebhookConfig};
use crate::error::SimError;
use crate::handle::SimHandle;
use crate::shared::Shared;
use crate::types::{BodyEdit, NewTask};

type St = State<Arc<Shared>>;

/// Control-API failure: `{"error": message}` with 400 (404 for unknown pages).
struct CtlError(StatusCode, String);

impl From<SimError> for CtlError {
    fn from(e: SimError) -> Self {
        let status = match e {
            SimError::PageNotFound(_) => StatusCode::NOT_FOUND,
            SimError::Handshake { .. } => StatusCode::BAD_GATEWAY,
            _ => StatusCode::BAD_REQUEST,
        };
        CtlError(status, e.to_string())
    }
}

impl IntoResponse for CtlError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

type CtlResult = Result<Response, CtlError>;

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, CtlError> {
    serde_json::from_slice(body).map_err(|e| CtlError(StatusCode::BAD_REQUEST, e.to_string()))
}

fn done() -> CtlResult {
    Ok(axum::Json(json!({})).into_response())
}

fn reply(v: impl serde::Serialize) -> CtlResult {
    Ok(axum::Json(v).into_response())
}

fn handle(s: &Arc<Shared>) -> SimHandle {
    SimHandle {
        inner: Arc::clone(s),
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/info", get(info))
        .route("/_sim/pages", get(list_pages).post(create_page))
        .route("/_sim/pages/{id}", get(one_page).patch(patch_page))
        .route("/_sim/pages/{id}/body", post(edit_body))
        .route("/_sim/pages/{id}/{action}", post(page_action))
        .route("/_sim/schema/rename", post(rename))
        .route("/_sim/schema/remove_property", post(remove_property))
        .route("/_sim/schema/status_options", post(add_option))
        .route(
            "/_sim/schema/status_options/{name}",
            axum::routing::delete(remove_option),
        )
        .route("/_sim/clock", get(clock).post(set_clock))
        .route("/_sim/faults", post(faults))
        .route("/_sim/force_errors", post(force_errors))
        .route("/_sim/rate_limit", post(rate_limit))
        .route("/_sim/workspace_limit", post(workspace_limit))
        .route("/_sim/visibility", post(visibility))
        .route("/_sim/markdown", post(markdown))
        .route("/_sim/silent", post(silent))
        .route("/_sim/random_edits", post(random_edits))
        .route("/_sim/webhooks/subscribe", post(subscribe))
        .route("/_sim/webhooks/config", post(webhook_config))
        .route("/_sim/webhooks/stats", get(webhook_stats))
        .route("/_sim/webhooks/idle", post(webhooks_idle))
        .route("/_sim/log", get(log).delete(clear_log))
        .route("/_sim/stats", get(stats))
}

async fn info(State(s): St) -> CtlResult {
    let h = handle(&s);
    reply(json!({
        "listen": h.addr().to_string(),
        "base_url": h.base_url(),
        "database_id": h.database_id(),
        "data_source_id": h.data_source_id(),
        "other_data_source_id": h.other_data_source_id(),
        "other_page_ids": h.other_page_ids(),
        "bot_user_id": h.bot_user_id(),
        "person_user_id": h.person_user_id(),
        "now": h.now(),
    }))
}

async fn list_pages(State(s): St) -> CtlResult {
    reply(handle(&s).pages())
}

async fn one_page(State(s): St, Path(id): Path<String>) -> CtlResult {
    match handle(&s).page(&id) {
        Some(p) => reply(p),
        None => Err(SimError::PageNotFound(id).into()),
    }
}

async fn create_page(State(s): St, body: Bytes) -> CtlResult {
    let task: NewTask = parse(&body)?;
    let id = handle(&s).try_create_task(task)?;
    reply(json!({"id": id}))
}

#[derive(Deserialize)]
struct PropertiesBody {
    properties: serde_json::Map<String, Value>,
}

async fn patch_page(State(s): St, Path(id): Path<String>, body: Bytes) -> CtlResult {
    let b: PropertiesBody = parse(&body)?;
    let h = handle(&s);
    for (name, value) in b.properties {
        h.set_property(&id, &name, value)?;
    }
    done()
}

async fn edit_body(State(s): St, Path(id): Path<String>, body: Bytes) -> CtlResult {
    let edit: BodyEdit = parse(&body)?;
    handle(&s).edit_body(&id, edit)?;
    done()
}

async fn page_action(State(s): St, Path((id, action)): Path<(String, String)>) -> CtlResult {
    let h = handle(&s);
    match action.as_str() {
        "trash" => h.trash(&id)?,
        "restore" => h.restore(&id)?,
        "unshare" => h.unshare(&id)?,
        "share" => h.share(&id)?,
        other => {
            return Err(CtlError(
                StatusCode::NOT_FOUND,
                format!("unknown page action {other:?}"),
            ));
        }
    }
    done()
}

#[derive(Deserialize)]
struct Rename {
    old: String,
    new: String,
}

async fn rename(State(s): St, body: Bytes) -> CtlResult {
    let r: Rename = parse(&body)?;
    handle(&s).rename_property(&r.old, &r.new)?;
    done()
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

async fn remove_property(State(s): St, body: Bytes) -> CtlResult {
    let n: Named = parse(&body)?;
    handle(&s).remove_property(&n.name)?;
    done()
}

#[derive(Deserialize)]
struct NewOption {
    name: String,
    group: String,
}

async fn add_option(State(s): St, body: Bytes) -> CtlResult {
    let o: NewOption = parse(&body)?;
    handle(&s).add_status_option(&o.name, &o.group)?;
    done()
}

async fn remove_option(State(s): St, Path(name): Path<String>) -> CtlResult {
    handle(&s).remove_status_option(&name)?;
    done()
}

async fn clock(State(s): St) -> CtlResult {
    reply(json!({"now": handle(&s).now()}))
}

#[derive(Deserialize)]
struct ClockBody {
    now: Option<chrono::DateTime<chrono::Utc>>,
    advance_ms: Option<u64>,
}

async fn set_clock(State(s): St, body: Bytes) -> CtlResult {
    let c: ClockBody = parse(&body)?;
    let h = handle(&s);
    if let Some(t) = c.now {
        h.set_now(t);
    }
    if let Some(ms) = c.advance_ms {
        h.advance(Duration::from_millis(ms));
    }
    reply(json!({"now": h.now()}))
}

async fn faults(State(s): St, body: Bytes) -> CtlResult {
    let f: Faults = parse(&body)?;
    handle(&s).set_faults(f);
    done()
}

#[derive(Deserialize)]
struct ForceBody {
    status: u16,
    count: u32,
    retry_after: Option<u32>,
}

async fn force_errors(State(s): St, body: Bytes) -> CtlResult {
    let f: ForceBody = parse(&body)?;
    handle(&s).force_errors(f.status, f.count, f.retry_after);
    done()
}

async fn rate_limit(State(s): St, body: Bytes) -> CtlResult {
    let r: Option<RateLimit> = parse(&body)?;
    handle(&s).set_rate_limit(r);
    done()
}

async fn workspace_limit(State(s): St, body: Bytes) -> CtlResult {
    let r: Option<RateLimit> = parse(&body)?;
    handle(&s).set_workspace_limit(r);
    done()
}

#[derive(Deserialize)]
struct Visibility {
    delay_ms: u64,
}

async fn visibility(State(s): St, body: Bytes) -> CtlResult {
    let v: Visibility = parse(&body)?;
    handle(&s).set_visibility_delay(Duration::from_millis(v.delay_ms));
    done()
}

#[derive(Deserialize)]
struct Markdown {
    enabled: bool,
    block_limit: usize,
}

async fn markdown(State(s): St, body: Bytes) -> CtlResult {
    let m: Markdown = parse(&body)?;
    handle(&s).set_markdown_endpoint(m.enabled, m.block_limit);
    done()
}

#[derive(Deserialize)]
struct Silent {
    silent: bool,
}

async fn silent(State(s): St, body: Bytes) -> CtlResult {
    let b: Silent = parse(&body)?;
    handle(&s).set_silent(b.silent);
    done()
}

#[derive(Deserialize)]
struct RandomEdits {
    seed: u64,
    n: usize,
}

async fn random_edits(State(s): St, body: Bytes) -> CtlResult {
    let r: RandomEdits = parse(&body)?;
    reply(json!({"touched": handle(&s).random_edits(r.seed, r.n)}))
}

#[derive(Deserialize)]
struct Subscribe {
    url: String,
    verification_token: Option<String>,
}

async fn subscribe(State(s): St, body: Bytes) -> CtlResult {
    let b: Subscribe = parse(&body)?;
    let h = handle(&s);
    let token = match b.verification_token {
        Some(t) => h.subscribe_with_token(&b.url, &t).await?,
        None => h.subscribe(&b.url).await?,
    };
    reply(json!({"verification_token": token}))
}

async fn webhook_config(State(s): St, body: Bytes) -> CtlResult {
    let c: WebhookConfig = parse(&body)?;
    handle(&s).set_webhook_config(c);
    done()
}

async fn webhook_stats(State(s): St) -> CtlResult {
    reply(handle(&s).webhook_stats())
}

async fn webhooks_idle(State(s): St) -> CtlResult {
    handle(&s).webhooks_idle().await;
    reply(handle(&s).webhook_stats())
}

async fn log(State(s): St) -> CtlResult {
    reply(handle(&s).request_log())
}

async fn clear_log(State(s): St) -> CtlResult {
    handle(&s).clear_request_log();
    done()
}

async fn stats(State(s): St) -> CtlResult {
    let h = handle(&s);
    reply(json!({
        "routes": h.route_counts(),
        "webhooks": h.webhook_stats(),
    }))
}
