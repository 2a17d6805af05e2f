//! Block handlers: retrieve, update and delete one block (`/v1/blocks/{id}`), list and append
//! children (`/v1/blocks/{id}/children`). A page id works where Notion accepts one (a page
//! is a block): children of its body, append to it, trash it with `DELETE`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::Value;

use crate::block_edit::{Position, find_block};
use crate::error::ApiError;
use crate::model::{Block, World, normalize_id};
use crate::mutate::PageEdit;
use crate::respond::{
    St, archived, body_object, ok, parse_body, parse_path_id, query_pairs, reject_unknown,
    shared_page,
};

/// `GET /v1/blocks/{id}`: a block of a shared page (also one in the trash), with its parent
/// (page or block); a page id answers the page as a `child_page` block.
pub(crate) async fn get_block(State(s): St, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "block_id")?;
    let w = crate::lock(&s.world);
    if w.pages.contains_key(&id) {
        let page = shared_page(&w, &id)?;
        return Ok(ok(crate::render::page_as_block(&w, page)));
    }
    let at = find_block(&w, &id).ok_or_else(|| ApiError::not_found("block", &id))?;
    Ok(ok(crate::render::block(
        at.block,
        at.page_id,
        at.parent,
        at.in_trash,
    )))
}

/// A page body or a block's children among shared pages: (children, page id, parent
/// block, in trash).
fn children_of<'a>(w: &'a World, id: &str) -> Option<(&'a [Block], String, Option<String>, bool)> {
    if let Some(page) = w.pages.get(id) {
        if !page.shared {
            return None;
        }
        let snap = page.latest();
        return Some((snap.body.as_slice(), page.id.clone(), None, snap.in_trash));
    }
    let at = find_block(w, id)?;
    Some((
        at.block.children.as_slice(),
        at.page_id.to_owned(),
        Some(at.block.id.clone()),
        at.in_trash,
    ))
}

pub(crate) async fn block_children(
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

/// Where `PATCH /v1/blocks/{id}/children` inserts: `position` (`end`, `start`,
/// `after_block`) or the older `after` (a block id).
fn position(obj: &serde_json::Map<String, Value>) -> Result<Position, ApiError> {
    let bad = |v: &Value| {
        ApiError::validation(format!(
            "body failed validation: body.position should be one of `{{type: \"end\"}}`, `{{type: \"start\"}}`, `{{type: \"after_block\", after_block: {{id}}}}`, instead was `{v}`."
        ))
    };
    let after_id = |raw: &str| {
        normalize_id(raw).ok_or_else(|| {
            ApiError::validation(format!(
                "body failed validation: body.after should be a valid uuid, instead was `\"{raw}\"`."
            ))
        })
    };
    match (obj.get("position"), obj.get("after")) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "body failed validation: body.after and body.position cannot both be given.",
        )),
        (None, None) | (Some(Value::Null), _) | (_, Some(Value::Null)) => Ok(Position::End),
        (None, Some(Value::String(raw))) => Ok(Position::After(after_id(raw)?)),
        (None, Some(v)) => Err(ApiError::validation(format!(
            "body failed validation: body.after should be a string, instead was `{v}`."
        ))),
        (Some(p), None) => match p.get("type").and_then(Value::as_str) {
            Some("end") => Ok(Position::End),
            Some("start") => Ok(Position::Start),
            Some("after_block") => p
                .pointer("/after_block/id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(p))
                .and_then(|raw| after_id(raw).map(Position::After)),
            _ => Err(bad(p)),
        },
    }
}

/// `PATCH /v1/blocks/{id}/children`: appends up to 100 blocks (two levels of nesting) to a
/// page or block; answers the new top-level blocks.
pub(crate) async fn append_children(
    State(s): St,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "block_id")?;
    let obj = body_object(&parse_body(&body)?)?;
    reject_unknown(&obj, &["children", "after", "position"])?;
    let children = obj.get("children").cloned().ok_or_else(|| {
        ApiError::validation(
            "body failed validation: body.children should be defined, instead was `undefined`.",
        )
    })?;
    let position = position(&obj)?;
    {
        let w = crate::lock(&s.world);
        let (_, _, parent, in_trash) =
            children_of(&w, &id).ok_or_else(|| ApiError::not_found("block", &id))?;
        if in_trash {
            return Err(archived());
        }
        if let Some(b) = parent.and_then(|p| find_block(&w, &p))
            && matches!(
                b.block.kind,
                crate::model::BlockKind::Divider | crate::model::BlockKind::Code { .. }
            )
        {
            return Err(ApiError::validation(format!(
                "Block type {} does not support children.",
                b.block.kind.type_name()
            )));
        }
    }
    let appended = s.mutate(s.bot(), false, |w, ctx| {
        let at = crate::clock::floor_minute(ctx.now);
        match crate::block_json::parse_children(w, &children, "body.children", at, &ctx.author.id) {
            Ok(new) => {
                let (added, events) = w.append_blocks(ctx, &id, new, position)?;
                Ok((Ok(added), events))
            }
            Err(e) => Ok((Err(e), Vec::new())),
        }
    });
    let (added, page_id, parent) = appended.map_err(|e| ApiError::validation(e.to_string()))??;
    let results = added
        .iter()
        .map(|b| crate::render::block(b, &page_id, parent.as_deref(), false))
        .collect();
    Ok(ok(crate::render::list(results, None, "block")))
}

/// `PATCH /v1/blocks/{id}`: new content for the block's own type, `in_trash`/`archived` to
/// trash or restore it; on a page id, trashes or restores the page.
pub(crate) async fn update_block(
    State(s): St,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "block_id")?;
    let body = parse_body(&body)?;
    if crate::lock(&s.world).pages.contains_key(&id) {
        let obj = body_object(&body)?;
        reject_unknown(&obj, &["in_trash", "archived"])?;
        let in_trash = crate::respond::trash_flag(&obj)?;
        return trash_page(&s, &id, in_trash);
    }
    let (update, trashed) = {
        let w = crate::lock(&s.world);
        let at = find_block(&w, &id).ok_or_else(|| ApiError::not_found("block", &id))?;
        let update = crate::block_json::parse_update(&body, &at.block.kind)?;
        let trashed = w.trashed_blocks.contains_key(&id);
        if at.in_trash && (update.edits_content() || update.in_trash != Some(false) || !trashed) {
            return Err(archived());
        }
        (update, trashed)
    };
    s.mutate(s.bot(), false, |w, ctx| {
        let mut events = Vec::new();
        if trashed {
            events.extend(w.restore_block(ctx, &id)?);
        }
        if update.edits_content() {
            events.extend(w.update_block(ctx, &id, &update)?);
        }
        if update.in_trash == Some(true) {
            events.extend(w.trash_block(ctx, &id)?);
        }
        Ok(((), events))
    })
    .map_err(|e| ApiError::validation(e.to_string()))?;
    rendered_block(&s, &id)
}

/// `DELETE /v1/blocks/{id}`: moves a block (or a page) to the trash; answers it with
/// `in_trash: true`.
pub(crate) async fn delete_block(
    State(s): St,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "block_id")?;
    if crate::lock(&s.world).pages.contains_key(&id) {
        return trash_page(&s, &id, Some(true));
    }
    {
        let w = crate::lock(&s.world);
        let at = find_block(&w, &id).ok_or_else(|| ApiError::not_found("block", &id))?;
        if at.in_trash {
            return Err(archived());
        }
    }
    s.mutate(s.bot(), false, |w, ctx| Ok(((), w.trash_block(ctx, &id)?)))
        .map_err(|e| ApiError::validation(e.to_string()))?;
    rendered_block(&s, &id)
}

/// Trashes or restores a page addressed as a block; answers it as a `child_page` block.
fn trash_page(
    s: &crate::shared::Shared,
    id: &str,
    in_trash: Option<bool>,
) -> Result<Response, ApiError> {
    shared_page(&crate::lock(&s.world), id)?;
    let edit = PageEdit {
        in_trash,
        ..PageEdit::default()
    };
    s.mutate(s.bot(), false, |w, ctx| {
        Ok(((), w.edit_page(ctx, id, edit)?))
    })
    .map_err(|e| ApiError::validation(e.to_string()))?;
    let w = crate::lock(&s.world);
    let page = shared_page(&w, id)?;
    Ok(ok(crate::render::page_as_block(&w, page)))
}

fn rendered_block(s: &crate::shared::Shared, id: &str) -> Result<Response, ApiError> {
    let w = crate::lock(&s.world);
    let at = find_block(&w, id).ok_or_else(|| ApiError::not_found("block", id))?;
    Ok(ok(crate::render::block(
        at.block,
        at.page_id,
        at.parent,
        at.in_trash,
    )))
}
