//! `POST /v1/search`: shared pages and data sources whose title contains `query`
//! (case-insensitive; empty matches all), optionally only one `filter.value` kind,
//! sorted by `last_edited_time` (descending unless asked), paginated by an offset cursor.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::{PropValue, World, plain_text};

/// One search hit before rendering.
enum Hit<'a> {
    Page(&'a crate::model::PageRecord),
    DataSource(&'a crate::model::DataSource),
}

fn validation(path: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::validation(format!(
        "body failed validation: body.{path} should be {expected}, instead was `{got}`."
    ))
}

/// The answer to a search `body` (already parsed JSON; `null` is an empty body).
pub(crate) fn search(w: &World, body: &Value) -> Result<Value, ApiError> {
    let empty = json!({});
    let body = if body.is_null() { &empty } else { body };
    let Some(obj) = body.as_object() else {
        return Err(validation("", "an object", body));
    };
    let query = match obj.get("query") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(q)) => q.to_lowercase(),
        Some(other) => return Err(validation("query", "a string", other)),
    };
    let only = match obj.get("filter") {
        None | Some(Value::Null) => None,
        Some(f) => match f.get("value").and_then(Value::as_str) {
            Some(v @ ("page" | "data_source")) if f.get("property") == Some(&json!("object")) => {
                Some(v)
            }
            _ => {
                return Err(validation(
                    "filter.value",
                    "`\"page\"` or `\"data_source\"`",
                    f.get("value").unwrap_or(&Value::Null),
                ));
            }
        },
    };
    let ascending = match obj.get("sort") {
        None | Some(Value::Null) => false,
        Some(s) => match (
            s.get("timestamp").and_then(Value::as_str),
            s.get("direction").and_then(Value::as_str),
        ) {
            (Some("last_edited_time"), Some(d @ ("ascending" | "descending"))) => d == "ascending",
            _ => {
                return Err(validation(
                    "sort.direction",
                    "`\"ascending\"` or `\"descending\"`",
                    s.get("direction").unwrap_or(&Value::Null),
                ));
            }
        },
    };
    let page_size = match obj.get("page_size") {
        None | Some(Value::Null) => 100,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => return Err(validation("page_size", "an integer from 1 to 100", v)),
        },
    };
    let start = match obj.get("start_cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => c
            .parse::<usize>()
            .map_err(|_| ApiError::validation(format!("start_cursor provided is invalid: {c}")))?,
        Some(other) => return Err(validation("start_cursor", "a string", other)),
    };

    let mut hits: Vec<(chrono::DateTime<chrono::Utc>, &str, Hit<'_>)> = Vec::new();
    if only != Some("page") {
        for ds in &w.data_sources {
            if ds.title.to_lowercase().contains(&query) {
                hits.push((ds.last_edited_time, &ds.id, Hit::DataSource(ds)));
            }
        }
    }
    if only != Some("data_source") {
        for page in w.pages.values().filter(|p| p.shared) {
            let snap = page.latest();
            if snap.in_trash {
                continue;
            }
            let title = w
                .data_source(&page.data_source_id)
                .and_then(|ds| snap.props.get(&ds.title_prop().id))
                .map(|v| match v {
                    PropValue::Title(segments) => plain_text(segments),
                    _ => String::new(),
                })
                .unwrap_or_default();
            if title.to_lowercase().contains(&query) {
                hits.push((snap.last_edited_time, &page.id, Hit::Page(page)));
            }
        }
    }
    hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    if !ascending {
        hits.reverse();
    }
    let end = (start + page_size).min(hits.len());
    let results = hits
        .get(start.min(hits.len())..end)
        .unwrap_or_default()
        .iter()
        .map(|(_, _, hit)| match hit {
            Hit::Page(p) => crate::render::page(w, p, p.latest(), None),
            Hit::DataSource(ds) => crate::render::data_source(w, ds),
        })
        .collect();
    let next = (end < hits.len()).then(|| end.to_string());
    Ok(crate::render::list(results, next, "page_or_data_source"))
}
