//! Comments: `GET /v1/comments?block_id=…` (the un-resolved comments of a page or block,
//! oldest first, paginated by id) and `POST /v1/comments` (a new discussion on a page, or
//! a reply in an existing discussion), made by the integration's bot. Comments are text
//! only (rich text `text` items); nothing here emits webhooks.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::{Comment, Segment, World, normalize_id};

fn validation(path: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::validation(format!(
        "body failed validation: body.{path} should be {expected}, instead was `{got}`."
    ))
}

/// The comment as Notion renders it.
pub(crate) fn render(c: &Comment) -> Value {
    json!({
        "object": "comment",
        "id": c.id,
        "parent": {"type": c.parent_kind, c.parent_kind: c.parent_id},
        "discussion_id": c.discussion_id,
        "created_time": crate::clock::iso_z(c.created_time),
        "last_edited_time": crate::clock::iso_z(c.created_time),
        "created_by": {"object": "user", "id": c.created_by},
        "rich_text": crate::render::rich_text(&c.rich_text),
    })
}

/// Whether `id` names a shared page or a block of one.
fn on_shared_page(w: &World, id: &str) -> Option<&'static str> {
    if w.pages.get(id).is_some_and(|p| p.shared) {
        return Some("page_id");
    }
    w.block_index
        .get(id)
        .and_then(|pid| w.pages.get(pid))
        .filter(|p| p.shared)
        .map(|_| "block_id")
}

/// The comments of `block_id` (a page or block), oldest first.
pub(crate) fn list<'a>(w: &'a World, block_id: &str) -> Result<Vec<&'a Comment>, ApiError> {
    let id = normalize_id(block_id).ok_or_else(|| {
        ApiError::validation(format!(
            "query failed validation: query.block_id should be a valid uuid, instead was `\"{block_id}\"`."
        ))
    })?;
    if on_shared_page(w, &id).is_none() {
        return Err(ApiError::not_found("block", &id));
    }
    Ok(w.comments.iter().filter(|c| c.parent_id == id).collect())
}

/// The text of a comment body's `rich_text`: `text` items only.
fn segments(body: &Value) -> Result<Vec<Segment>, ApiError> {
    let Some(items) = body.get("rich_text").and_then(Value::as_array) else {
        return Err(validation(
            "rich_text",
            "an array",
            body.get("rich_text").unwrap_or(&Value::Null),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.get("text")
                .and_then(|t| t.get("content"))
                .and_then(Value::as_str)
                .map(Segment::plain)
                .ok_or_else(|| {
                    validation(&format!("rich_text[{i}].text.content"), "a string", item)
                })
        })
        .collect()
}

/// Creates a comment from a `POST /v1/comments` body: `parent.page_id` opens a discussion,
/// `discussion_id` replies in one.
pub(crate) fn create(w: &mut World, body: &Value, now: DateTime<Utc>) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(validation("", "an object", body));
    }
    let rich_text = segments(body)?;
    let (parent_id, parent_kind, discussion_id) = match (
        body.get("parent").and_then(|p| p.get("page_id")),
        body.get("discussion_id"),
    ) {
        (Some(page), None) => {
            let raw = page.as_str().unwrap_or_default();
            let id = normalize_id(raw)
                .ok_or_else(|| validation("parent.page_id", "a valid uuid", page))?;
            if !w.pages.get(&id).is_some_and(|p| p.shared) {
                return Err(ApiError::not_found("page", &id));
            }
            let discussion = w.new_id();
            (id, "page_id", discussion)
        }
        (None, Some(d)) => {
            let raw = d.as_str().unwrap_or_default();
            let id =
                normalize_id(raw).ok_or_else(|| validation("discussion_id", "a valid uuid", d))?;
            let first = w
                .comments
                .iter()
                .find(|c| c.discussion_id == id)
                .ok_or_else(|| ApiError::not_found("discussion", &id))?;
            (first.parent_id.clone(), first.parent_kind, id)
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "body failed validation: body.parent should not be present when body.discussion_id is.",
            ));
        }
        (None, None) => {
            return Err(ApiError::validation(
                "body failed validation: body.parent should be defined, instead was `undefined`.",
            ));
        }
    };
    let comment = Comment {
        id: w.new_id(),
        parent_id,
        parent_kind,
        discussion_id,
        created_time: crate::clock::floor_minute(now),
        created_by: w.bot.id.clone(),
        rich_text,
    };
    let out = render(&comment);
    w.comments.push(comment);
    Ok(out)
}
