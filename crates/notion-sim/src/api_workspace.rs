//! Workspace-level handlers: users, search, comments, databases, data sources and their
//! query.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::Value;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::respond::{St, filter_properties, ok, ok_text, parse_body, parse_path_id, query_pairs};

pub(crate) async fn users_me(State(s): St) -> Response {
    let w = crate::lock(&s.world);
    ok(crate::render::bot_me(&w))
}

/// `GET /v1/users`: every person of the workspace, then the bot; cursor = a user id.
pub(crate) async fn list_users(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let (page_size, start_cursor) = crate::paging::page_params(&query_pairs(q.as_deref()))?;
    let w = crate::lock(&s.world);
    let users: Vec<&crate::model::User> = w.people.iter().chain(std::iter::once(&w.bot)).collect();
    let (page, next) =
        crate::paging::window(&users, page_size, start_cursor.as_deref(), |u| &u.id)?;
    let results = page.iter().map(|u| crate::render::user(u)).collect();
    Ok(ok(crate::render::list(results, next, "user")))
}

/// `GET /v1/users/{id}`.
pub(crate) async fn get_user(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "user_id")?;
    let w = crate::lock(&s.world);
    let user = w
        .user(&id)
        .ok_or_else(|| ApiError::not_found("user", &id))?;
    Ok(ok(crate::render::user(user)))
}

/// `POST /v1/search` (`search.rs`).
/// `GET /v1/comments?block_id=…`: a page or block's comments, paginated.
pub(crate) async fn list_comments(
    State(s): St,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
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
pub(crate) async fn create_comment(State(s): St, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let now = s.clock.now();
    let mut w = crate::lock(&s.world);
    Ok(ok(crate::comments::create(&mut w, &body, now)?))
}

pub(crate) async fn search(State(s): St, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let w = crate::lock(&s.world);
    Ok(ok(crate::search::search(&w, &body)?))
}

pub(crate) async fn get_database(
    State(s): St,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "database_id")?;
    let w = crate::lock(&s.world);
    let db = w
        .database(&id)
        .ok_or_else(|| ApiError::not_found("database", &id))?;
    Ok(ok(crate::render::database(&w, db)))
}

pub(crate) async fn get_data_source(
    State(s): St,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "data_source_id")?;
    let w = crate::lock(&s.world);
    let ds = w
        .data_source(&id)
        .ok_or_else(|| ApiError::not_found("data source", &id))?;
    Ok(ok(crate::render::data_source(&w, ds)))
}

pub(crate) async fn query_data_source(
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
    let limit = crate::lock(&s.settings).query_result_limit;
    let mut w = crate::lock(&s.world);
    let ds = w
        .data_source(&id)
        .ok_or_else(|| ApiError::not_found("data source", &id))?;
    let query = crate::query::parse(&body, ds, now)?;
    let page = crate::query::run(
        &mut w,
        &id,
        &query,
        only.as_deref(),
        Instant::now(),
        delay,
        limit,
    )?;
    Ok(ok_text(crate::render::list_text(
        &page.results,
        page.next_cursor.as_deref(),
        "page_or_data_source",
        page.incomplete,
    )))
}
