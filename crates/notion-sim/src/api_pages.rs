//! Page handlers: `GET`/`PATCH /v1/pages/{id}`, `POST /v1/pages`, the property item and
//! the markdown endpoint.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::Block;
use crate::model::normalize_id;
use crate::mutate::{NewPage, PageEdit};
use crate::respond::{
    St, archived, body_object, filter_properties, flag, ok, ok_text, parse_body, parse_path_id,
    query_pairs, reject_unknown, shared_page, trash_flag,
};
use crate::values::Parsed;

pub(crate) async fn get_page(
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
pub(crate) async fn get_property_item(
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

/// Parses `properties` of a page body against the data source's schema.
fn parse_properties(
    w: &crate::model::World,
    ds: &crate::model::DataSource,
    props: Option<&Value>,
) -> Result<Vec<(String, Parsed)>, ApiError> {
    match props {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(props)) => props
            .iter()
            .map(|(key, v)| crate::values::parse_update(w, ds, key, v))
            .collect(),
        Some(v) => Err(ApiError::validation(format!(
            "body failed validation: body.properties should be an object, instead was `{v}`."
        ))),
    }
}

/// Turns parsed property values into model values (creating new select options).
fn apply_properties(
    w: &mut crate::model::World,
    ds_id: &str,
    parsed: Vec<(String, Parsed)>,
) -> Vec<(String, crate::model::PropValue)> {
    parsed
        .into_iter()
        .map(|(prop_id, p)| {
            let v = crate::values::apply(w, ds_id, &prop_id, p);
            (prop_id, v)
        })
        .collect()
}

pub(crate) async fn patch_page(
    State(s): St,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = parse_path_id(&raw, "page_id")?;
    let obj = body_object(&parse_body(&body)?)?;
    reject_unknown(
        &obj,
        &[
            "properties",
            "in_trash",
            "archived",
            "icon",
            "cover",
            "is_locked",
        ],
    )?;
    let in_trash = trash_flag(&obj)?;
    let is_locked = flag(&obj, "is_locked")?;
    let (parsed, ds_id) = {
        let w = crate::lock(&s.world);
        let page = shared_page(&w, &id)?;
        let ds = w
            .data_source(&page.data_source_id)
            .ok_or_else(|| ApiError::not_found("page", &id))?;
        let parsed = parse_properties(&w, ds, obj.get("properties"))?;
        let editing = !parsed.is_empty()
            || obj.contains_key("icon")
            || obj.contains_key("cover")
            || is_locked.is_some();
        if page.latest().in_trash && in_trash != Some(false) && editing {
            return Err(archived());
        }
        (parsed, page.data_source_id.clone())
    };
    let icon = obj.get("icon").cloned();
    let cover = obj.get("cover").cloned();
    s.mutate(s.bot(), false, |w, ctx| {
        let props = apply_properties(w, &ds_id, parsed);
        let edit = PageEdit {
            props,
            in_trash,
            icon,
            cover,
            is_locked,
        };
        Ok(((), w.edit_page(ctx, &id, edit)?))
    })
    .map_err(|e| ApiError::validation(e.to_string()))?;
    let w = crate::lock(&s.world);
    let page = shared_page(&w, &id)?;
    Ok(ok(crate::render::page(&w, page, page.latest(), None)))
}

/// The data source a new page goes into: `parent.data_source_id`, or `parent.database_id`
/// (a database with one data source, as every simulated database has).
fn parent_data_source(w: &crate::model::World, parent: Option<&Value>) -> Result<String, ApiError> {
    let parent = parent.ok_or_else(|| {
        ApiError::validation(
            "body failed validation: body.parent should be defined, instead was `undefined`.",
        )
    })?;
    let id_of = |k: &str| parent.get(k).and_then(Value::as_str);
    let id = |raw: &str, k: &str| {
        normalize_id(raw).ok_or_else(|| {
            ApiError::validation(format!(
                "body failed validation: body.parent.{k} should be a valid uuid, instead was `\"{raw}\"`."
            ))
        })
    };
    if let Some(raw) = id_of("data_source_id") {
        let ds = id(raw, "data_source_id")?;
        return w
            .data_source(&ds)
            .map(|d| d.id.clone())
            .ok_or_else(|| ApiError::not_found("data source", &ds));
    }
    if let Some(raw) = id_of("database_id") {
        let db = id(raw, "database_id")?;
        return w
            .database(&db)
            .map(|d| d.data_source_id.clone())
            .ok_or_else(|| ApiError::not_found("database", &db));
    }
    if id_of("page_id").is_some() || id_of("workspace").is_some() {
        return Err(ApiError::validation(
            "body failed validation: body.parent: notion-sim models pages in data sources only; \
             use parent.data_source_id or parent.database_id.",
        ));
    }
    Err(ApiError::validation(format!(
        "body failed validation: body.parent should have data_source_id, database_id or page_id, instead was `{parent}`."
    )))
}

/// `POST /v1/pages`: a new page in a data source, with properties, icon, cover and
/// `children` blocks, made by the bot.
pub(crate) async fn create_page(State(s): St, body: Bytes) -> Result<Response, ApiError> {
    let obj = body_object(&parse_body(&body)?)?;
    const UNMODELLED: [&str; 5] = ["content", "markdown", "template", "position", "allow_async"];
    if let Some(k) = UNMODELLED.iter().find(|k| obj.contains_key(**k)) {
        return Err(ApiError::validation(format!(
            "body failed validation: body.{k} is not modelled by notion-sim; create the page from properties and children."
        )));
    }
    reject_unknown(&obj, &["parent", "properties", "icon", "cover", "children"])?;
    let (ds_id, parsed) = {
        let w = crate::lock(&s.world);
        let ds_id = parent_data_source(&w, obj.get("parent"))?;
        let ds = w
            .data_source(&ds_id)
            .ok_or_else(|| ApiError::not_found("data source", &ds_id))?;
        (
            ds_id.clone(),
            parse_properties(&w, ds, obj.get("properties"))?,
        )
    };
    let children = obj.get("children").cloned();
    let icon = obj.get("icon").cloned().unwrap_or(Value::Null);
    let cover = obj.get("cover").cloned().unwrap_or(Value::Null);
    let created = s.mutate(s.bot(), false, |w, ctx| {
        let at = crate::clock::floor_minute(ctx.now);
        let body = match &children {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(c) => crate::block_json::parse_children(w, c, "body.children", at, &ctx.author.id),
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => return Ok((Err(e), Vec::new())),
        };
        let props = apply_properties(w, &ds_id, parsed);
        let new = NewPage {
            props,
            body,
            icon,
            cover,
        };
        let (id, events) = w.insert_page(ctx, &ds_id, new)?;
        Ok((Ok(id), events))
    });
    let id = created.map_err(|e| ApiError::validation(e.to_string()))??;
    let w = crate::lock(&s.world);
    let page = shared_page(&w, &id)?;
    Ok(ok(crate::render::page(&w, page, page.latest(), None)))
}

pub(crate) async fn get_markdown(
    State(s): St,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
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
