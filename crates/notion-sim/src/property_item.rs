//! `GET /v1/pages/{id}/properties/{property_id}`: one property of a page as Notion's
//! property item: a single `property_item` object, or for the list types (title,
//! rich_text, people, relation) a paginated list of one item per element, with an offset
//! cursor.

use serde_json::{Value, json};

use crate::error::ApiError;

/// Property types Notion answers as a paginated list of items.
const LISTED: &[&str] = &["title", "rich_text", "people", "relation"];

/// The property `property_id` (as in the page's `properties[*].id`, encoded or decoded)
/// of a rendered page, paginated by `page_size` and `start_cursor` where it is a list.
pub(crate) fn property_item(
    page: &Value,
    property_id: &str,
    page_size: usize,
    start_cursor: Option<&str>,
) -> Result<Value, ApiError> {
    let prop = page["properties"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find(|p| {
            p["id"].as_str().is_some_and(|id| {
                id == property_id || crate::render::percent_decode(id) == property_id
            })
        })
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "object_not_found",
                format!("Could not find property with name or id: {property_id}"),
            )
        })?;
    let id = prop["id"].clone();
    let kind = prop["type"].as_str().unwrap_or_default().to_owned();
    if !LISTED.contains(&kind.as_str()) {
        return Ok(json!({
            "object": "property_item",
            "id": id,
            "type": kind,
            kind.clone(): prop[&kind],
        }));
    }
    let items: Vec<Value> = prop[&kind].as_array().cloned().unwrap_or_default();
    let start = match start_cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                ApiError::validation(format!("start_cursor provided is invalid: {c}"))
            })?,
    };
    let end = (start + page_size).min(items.len());
    let results: Vec<Value> = items[start..end]
        .iter()
        .map(|item| json!({"object": "property_item", "id": id, "type": kind, kind.clone(): item}))
        .collect();
    let next = (end < items.len()).then(|| end.to_string());
    Ok(json!({
        "object": "list",
        "results": results,
        "next_cursor": next,
        "has_more": next.is_some(),
        "type": "property_item",
        "property_item": {"id": id, "next_url": null, "type": kind, kind.clone(): {}},
    }))
}
