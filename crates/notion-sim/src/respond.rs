//! What every `/v1` handler shares: the 200 answers (with `request_id`), path-id, query-string
//! and body parsing with Notion's validation errors, and the shared-page lookup.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::normalize_id;
use crate::shared::Shared;

pub(crate) type St = State<Arc<Shared>>;

/// Adds `request_id` to a JSON object and answers 200.
pub(crate) fn ok(mut v: Value) -> Response {
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "request_id".to_owned(),
            json!(uuid::Uuid::new_v4().to_string()),
        );
    }
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// A 200 with an already serialized JSON body.
pub(crate) fn ok_text(body: String) -> Response {
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

pub(crate) fn parse_path_id(raw: &str, what: &str) -> Result<String, ApiError> {
    normalize_id(raw).ok_or_else(|| {
        ApiError::validation(format!(
            "path failed validation: path.{what} should be a valid uuid, instead was `\"{raw}\"`."
        ))
    })
}

/// `(key, value)` pairs of a raw query string, percent-decoded.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
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

pub(crate) fn filter_properties(raw: Option<&str>) -> Option<Vec<String>> {
    let keys: Vec<String> = query_pairs(raw)
        .into_iter()
        .filter(|(k, _)| k == "filter_properties" || k == "filter_properties[]")
        .map(|(_, v)| v)
        .collect();
    (!keys.is_empty()).then_some(keys)
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|_| ApiError::invalid_json())
}

/// A page shared with the integration, or Notion's 404.
pub(crate) fn shared_page<'a>(
    w: &'a crate::model::World,
    id: &str,
) -> Result<&'a crate::model::PageRecord, ApiError> {
    w.pages
        .get(id)
        .filter(|p| p.shared)
        .ok_or_else(|| ApiError::not_found("page", id))
}

/// A request body that must be an object (an empty body counts as `{}`).
pub(crate) fn body_object(body: &Value) -> Result<serde_json::Map<String, Value>, ApiError> {
    match body {
        Value::Object(o) => Ok(o.clone()),
        Value::Null => Ok(serde_json::Map::new()),
        _ => Err(ApiError::validation(
            "body failed validation: body should be an object.",
        )),
    }
}

/// Refuses the first key not in `known`, as Notion does.
pub(crate) fn reject_unknown(
    obj: &serde_json::Map<String, Value>,
    known: &[&str],
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::validation(format!(
            "body failed validation: body.{k} should be not present, instead was `{}`.",
            obj[k]
        ))),
        None => Ok(()),
    }
}

/// An optional boolean field.
pub(crate) fn flag(
    obj: &serde_json::Map<String, Value>,
    k: &str,
) -> Result<Option<bool>, ApiError> {
    match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::validation(format!(
            "body failed validation: body.{k} should be a boolean, instead was `{v}`."
        ))),
    }
}

/// `in_trash`, or its older name `archived`; both given must agree.
pub(crate) fn trash_flag(obj: &serde_json::Map<String, Value>) -> Result<Option<bool>, ApiError> {
    match (flag(obj, "in_trash")?, flag(obj, "archived")?) {
        (Some(a), Some(b)) if a != b => Err(ApiError::validation(
            "body failed validation: body.in_trash and body.archived must agree.",
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// Notion's answer to an edit of something in the trash.
pub(crate) fn archived() -> ApiError {
    ApiError::validation(
        "Can't edit block that is archived. You must unarchive the block before editing.",
    )
}
