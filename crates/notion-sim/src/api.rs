//! The Notion-shaped HTTP API under `/v1`, its middleware (auth, version, forced errors, rate
//! limits, faults, request log, `Date` header) and the router that also mounts `/_sim`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::clock::http_date;
use crate::error::ApiError;
use crate::limits::FaultDecision;
use crate::model::{Block, normalize_id};
use crate::mutate::PageEdit;
use crate::shared::Shared;
use crate::types::RequestRecord;

type St = State<Arc<Shared>>;

/// The versions the simulator models (and so accepts): 2025-09-03 (data sources) and
/// 2026-03-11, where pages and blocks carry `in_trash` only (`archived` is gone). An
/// older version would need pre-data-source shapes: it is refused with Notion's error.
const VERSIONS: [&str; 2] = ["2025-09-03", "2026-03-11"];
/// From this version on, `archived` is no longer sent beside `in_trash`.
const IN_TRASH_ONLY_FROM: &str = "2026-03-11";

/// The Notion API routes (`/v1/*`); every unmatched path is Notion's `invalid_request_url`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/users/me", get(users_me).fallback(invalid_url))
        .route("/v1/users", get(list_users).fallback(invalid_url))
        .route("/v1/users/{id}", get(get_user).fallback(invalid_url))
        .route("/v1/blocks/{id}", get(get_block).fallback(invalid_url))
        .route(
            "/v1/comments",
            get(list_comments)
                .post(create_comment)
                .fallback(invalid_url),
        )
        .route(
            "/v1/search",
            axum::routing::post(search).fallback(invalid_url),
        )
        .route(
            "/v1/databases/{id}",
            get(get_database).fallback(invalid_url),
        )
        .route(
            "/v1/data_sources/{id}",
            get(get_data_source).fallback(invalid_url),
        )
        .route(
            "/v1/data_sources/{id}/query",
            axum::routing::post(query_data_source).fallback(invalid_url),
        )
        .route(
            "/v1/pages/{id}",
            get(get_page).patch(patch_page).fallback(invalid_url),
        )
        .route(
            "/v1/pages/{id}/properties/{property_id}",
            get(get_property_item).fallback(invalid_url),
        )
        .route(
            "/v1/pages/{id}/markdown",
            get(get_markdown).fallback(invalid_url),
        )
        .route(
            "/v1/blocks/{id}/children",
            get(block_children).fallback(invalid_url),
        )
        .fallback(invalid_url)
}

async fn invalid_url() -> ApiError {
    ApiError::invalid_url()
}

/// Adds `request_id` to a JSON object and answers 200.
fn ok(mut v: Value) -> Response {
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "request_id".to_owned(),
            json!(uuid::Uuid::new_v4().to_string()),
        );
    }
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// A 200 with an already serialized JSON body.
fn ok_text(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn parse_path_id(raw: &str, what: &str) -> Result<String, ApiError> {
    normalize_id(raw).ok_or_else(|| {
        ApiError::validation(format!(
            "path failed validation: path.{what} should be a valid uuid, instead was `\"{raw}\"`."
        ))
    })
}

/// `(key, value)` pairs of a raw query string, percent-decoded.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                crate::render::percent_decode(k),
                crate::render::percent_decode(v),
            )
        })
        .collect()
}

fn filter_properties(raw: Option<&str>) -> Option<Vec<String>> {
    let keys: Vec<String> = query_pairs(raw)
        .into_iter()
        .filter(|(k, _)| k == "filter_properties" || k == "filter_properties[]")
        .map(|(_, v)| v)
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// What the log needs to know about a request, captured before it is answered.
struct ReqInfo {
    method: Method,
    path: String,
    route: String,
    at: chrono::DateTime<chrono::Utc>,
    version: Option<String>,
    started: Instant,
}

fn record(s: &Shared, info: ReqInfo, status: u16) {
    crate::lock(&s.log).push(RequestRecord {
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
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == s.token);
    let mut response = match gate(&s, authorized, info.version.as_deref()).await {
        Gate::Answer(r) => r,
        Gate::Drop => {
            record(&s, info, 0);
            return dropped_connection();
        }
        Gate::Proceed => shape_for_version(next.run(req).await, info.version.as_deref()).await,
    };
    if let Ok(v) = HeaderValue::from_str(&http_date(s.clock.now())) {
        response.headers_mut().insert(header::DATE, v);
    }
    let status = response.status().as_u16();
    record(&s, info, status);
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
async fn gate(s: &Shared, authorized: bool, version: Option<&str>) -> Gate {
    if !authorized {
        return Gate::Answer(ApiError::unauthorized().into_response());
    }
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
        if let Some(e) = limits.take_forced() {
            return Gate::Answer(e.into_response());
        }
        if let Err(e) = limits.admit(Instant::now()) {
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

async fn users_me(State(s): St) -> Response {
    let w = crate::lock(&s.world);
    ok(crate::render::bot_me(&w))
}

/// `GET /v1/users`: every person of the workspace, then the bot; cursor = a user id.
async fn list_users(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let (page_size, start_cursor) = crate::paging::page_params(&query_pairs(q.as_deref()))?;
    let w = crate::lock(&s.world);
    let users: Vec<&crate::model::User> = w.people.iter().chain(std::iter::once(&w.bot)).collect();
    let (page, next) =
        crate::paging::window(&users, page_size, start_cursor.as_deref(), |u| &u.id)?;
    let results = page.iter().map(|u| crate::render::user(u)).collect();
    Ok(ok(crate::render::list(results, next, "user")))
}

/// `GET /v1/users/{id}`.
async fn get_user(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "user_id")?;
    let w = crate::lock(&s.world);
    let user = w
        .user(&id)
        .ok_or_else(|| ApiError::not_found("user", &id))?;
    Ok(ok(crate::render::user(user)))
}

/// `GET /v1/blocks/{id}`: a block of a shared page, with its parent (page or block).
async fn get_block(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "block_id")?;
    let w = crate::lock(&s.world);
    let page = w
        .block_index
        .get(&id)
        .and_then(|pid| w.pages.get(pid))
        .filter(|p| p.shared)
        .ok_or_else(|| ApiError::not_found("block", &id))?;
    let snap = page.latest();
    let (block, parent) =
        Block::find(&snap.body, &id, None).ok_or_else(|| ApiError::not_found("block", &id))?;
    Ok(ok(crate::render::block(
        block,
        &page.id,
        parent,
        snap.in_trash,
    )))
}

/// `POST /v1/search` (`search.rs`).
/// `GET /v1/comments?block_id=…`: a page or block's comments, paginated.
async fn list_comments(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let (page_size, start_cursor) = crate::paging::page_params(&pairs)?;
    let block_id = pairs
        .iter()
        .find(|(k, _)| k == "block_id")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            ApiError::validation(
                "query failed validation: query.block_id should be defined, instead was `undefined`.",
            )
        })?;
    let w = crate::lock(&s.world);
    let comments = crate::comments::list(&w, block_id)?;
    let (page, next) =
        crate::paging::window(&comments, page_size, start_cursor.as_deref(), |c| &c.id)?;
    let results = page.iter().map(|c| crate::comments::render(c)).collect();
    Ok(ok(crate::render::list(results, next, "comment")))
}

/// `POST /v1/comments`: a new discussion on a page, or a reply in one.
async fn create_comment(State(s): St, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let now = s.clock.now();
    let mut w = crate::lock(&s.world);
    Ok(ok(crate::comments::create(&mut w, &body, now)?))
}

async fn search(State(s): St, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let w = crate::lock(&s.world);
    Ok(ok(crate::search::search(&w, &body)?))
}

async fn get_database(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "database_id")?;
    let w = crate::lock(&s.world);
    let db = w
        .database(&id)
        .ok_or_else(|| ApiError::not_found("database", &id))?;
    Ok(ok(crate::render::database(&w, db)))
}

async fn get_data_source(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "data_source_id")?;
    let w = crate::lock(&s.world);
    let ds = w
        .data_source(&id)
        .ok_or_else(|| ApiError::not_found("data source", &id))?;
    Ok(ok(crate::render::data_source(&w, ds)))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|_| ApiError::invalid_json())
}

async fn query_data_source(
    State(s): St,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "data_source_id")?;
    let body = parse_body(&body)?;
    let only = filter_properties(q.as_deref()).or_else(|| {
        body.get("filter_properties")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
    });
    let now = s.clock.now();
    let delay = s.visibility_delay();
    let mut w = crate::lock(&s.world);
    let ds = w
        .data_source(&id)
        .ok_or_else(|| ApiError::not_found("data source", &id))?;
    let query = crate::query::parse(&body, ds, now)?;
    let (results, next) =
        crate::query::run(&mut w, &id, &query, only.as_deref(), Instant::now(), delay)?;
    Ok(ok_text(crate::render::list_text(
        &results,
        next.as_deref(),
        "page_or_data_source",
    )))
}

async fn get_page(
    State(s): St,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "page_id")?;
    let only = filter_properties(q.as_deref());
    let w = crate::lock(&s.world);
    let page = shared_page(&w, &id)?;
    Ok(match only {
        None => ok_text(crate::render::with_request_id(&crate::render::page_text(
            &w,
            page,
            page.latest(),
        ))),
        Some(keys) => ok(crate::render::page(&w, page, page.latest(), Some(&keys))),
    })
}

/// `GET /v1/pages/{id}/properties/{property_id}`: one property item, or a list of them.
async fn get_property_item(
    State(s): St,
    Path((raw, property_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "page_id")?;
    let (page_size, start_cursor) = crate::paging::page_params(&query_pairs(q.as_deref()))?;
    let w = crate::lock(&s.world);
    let page = shared_page(&w, &id)?;
    let rendered = crate::render::page(&w, page, page.latest(), None);
    Ok(ok(crate::property_item::property_item(
        &rendered,
        &property_id,
        page_size,
        start_cursor.as_deref(),
    )?))
}

/// A page shared with the integration, or Notion's 404.
fn shared_page<'a>(
    w: &'a crate::model::World,
    id: &str,
) -> Result<&'a crate::model::PageRecord, ApiError> {
    w.pages
        .get(id)
        .filter(|p| p.shared)
        .ok_or_else(|| ApiError::not_found("page", id))
}

async fn patch_page(
    State(s): St,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "page_id")?;
    let body = parse_body(&body)?;
    let obj = match &body {
        Value::Object(o) => o.clone(),
        Value::Null => serde_json::Map::new(),
        _ => {
            return Err(ApiError::validation(
                "body failed validation: body should be an object.",
            ));
        }
    };
    const KNOWN: [&str; 6] = [
        "properties",
        "in_trash",
        "archived",
        "icon",
        "cover",
        "is_locked",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::validation(format!(
            "body failed validation: body.{k} should be not present, instead was `{}`.",
            obj[k]
        )));
    }
    let flag = |k: &str| -> Result<Option<bool>, ApiError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(ApiError::validation(format!(
                "body failed validation: body.{k} should be a boolean, instead was `{v}`."
            ))),
        }
    };
    let in_trash = match (flag("in_trash")?, flag("archived")?) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::validation(
                "body failed validation: body.in_trash and body.archived must agree.",
            ));
        }
        (a, b) => a.or(b),
    };
    let is_locked = flag("is_locked")?;

    let parsed = {
        let w = crate::lock(&s.world);
        let page = shared_page(&w, &id)?;
        let ds = w
            .data_source(&page.data_source_id)
            .ok_or_else(|| ApiError::not_found("page", &id))?;
        let mut parsed = Vec::new();
        match obj.get("properties") {
            None | Some(Value::Null) => {}
            Some(Value::Object(props)) => {
                for (key, v) in props {
                    parsed.push(crate::values::parse_update(&w, ds, key, v)?);
                }
            }
            Some(v) => {
                return Err(ApiError::validation(format!(
                    "body failed validation: body.properties should be an object, instead was `{v}`."
                )));
            }
        }
        let editing = !parsed.is_empty()
            || obj.contains_key("icon")
            || obj.contains_key("cover")
            || is_locked.is_some();
        if page.latest().in_trash && in_trash != Some(false) && editing {
            return Err(ApiError::validation(
                "Can't edit block that is archived. You must unarchive the block before editing.",
            ));
        }
        (parsed, page.data_source_id.clone())
    };
    let (parsed, ds_id) = parsed;
    let icon = obj.get("icon").cloned();
    let cover = obj.get("cover").cloned();
    s.mutate(s.bot(), false, |w, ctx| {
        let props = parsed
            .into_iter()
            .map(|(prop_id, p)| {
                let v = crate::values::apply(w, &ds_id, &prop_id, p);
                (prop_id, v)
            })
            .collect();
        let events = w.edit_page(
            ctx,
            &id,
            PageEdit {
                props,
                in_trash,
                icon,
                cover,
                is_locked,
            },
        )?;
        Ok(((), events))
    })
    .map_err(|e| ApiError::validation(e.to_string()))?;
    let w = crate::lock(&s.world);
    let page = w
        .pages
        .get(&id)
        .ok_or_else(|| ApiError::not_found("page", &id))?;
    Ok(ok(crate::render::page(&w, page, page.latest(), None)))
}

/// Finds a page body or a block's children among shared pages.
fn children_of<'a>(
    w: &'a crate::model::World,
    id: &str,
) -> Option<(&'a [Block], String, Option<String>, bool)> {
    if let Some(page) = w.pages.get(id) {
        if !page.shared {
            return None;
        }
        let snap = page.latest();
        return Some((snap.body.as_slice(), page.id.clone(), None, snap.in_trash));
    }
    let page_id = w.block_index.get(id)?;
    let page = w.pages.get(page_id).filter(|p| p.shared)?;
    let snap = page.latest();
    let (block, _) = Block::find(&snap.body, id, None)?;
    Some((
        block.children.as_slice(),
        page.id.clone(),
        Some(block.id.clone()),
        snap.in_trash,
    ))
}

async fn block_children(
    State(s): St,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "block_id")?;
    let (page_size, start_cursor) = crate::paging::page_params(&query_pairs(q.as_deref()))?;
    let w = crate::lock(&s.world);
    let (blocks, page_id, parent, in_trash) =
        children_of(&w, &id).ok_or_else(|| ApiError::not_found("block", &id))?;
    let (page, next) =
        crate::paging::window(blocks, page_size, start_cursor.as_deref(), |b| &b.id)?;
    let results = page
        .iter()
        .map(|b| crate::render::block(b, &page_id, parent.as_deref(), in_trash))
        .collect();
    Ok(ok(crate::render::list(results, next, "block")))
}

async fn get_markdown(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let (enabled, limit) = {
        let st = crate::lock(&s.settings);
        (st.markdown_enabled, st.markdown_block_limit)
    };
    if !enabled {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "object_not_found",
            "The page markdown endpoint is not available.",
        ));
    }
    let id = parse_path_id(&raw, "page_id")?;
    let w = crate::lock(&s.world);
    let rendered = if let Some(page) = w.pages.get(&id).filter(|p| p.shared) {
        crate::markdown::render_limited(&page.latest().body, limit)
    } else {
        let block = w
            .block_index
            .get(&id)
            .and_then(|pid| w.pages.get(pid))
            .filter(|p| p.shared)
            .and_then(|p| Block::find(&p.latest().body, &id, None).map(|(b, _)| b.clone()))
            .ok_or_else(|| ApiError::not_found("page", &id))?;
        crate::markdown::render_limited(std::slice::from_ref(&block), limit)
    };
    Ok(ok(json!({
        "object": "page_markdown",
        "id": id,
        "markdown": rendered.markdown,
        "truncated": rendered.truncated,
        "unknown_block_ids": rendered.unknown_block_ids,
    })))
}
