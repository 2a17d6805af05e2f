//! JSON shaped like Notion's 2025-09-03 responses (see the recorded fixtures).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::clock::{iso_offset, iso_z};
use crate::model::{
    Block, BlockKind, DataSource, Database, PageRecord, PageSnapshot, PropKind, PropSchema,
    PropValue, Segment, User, UserKind, World, plain_text,
};

pub(crate) fn partial_user(id: &str) -> Value {
    json!({"object": "user", "id": id})
}

pub(crate) fn user(u: &User) -> Value {
    match &u.kind {
        UserKind::Person { email } => json!({
            "object": "user",
            "id": u.id,
            "name": u.name,
            "avatar_url": null,
            "type": "person",
            "person": {"email": email},
        }),
        UserKind::Bot => json!({
            "object": "user",
            "id": u.id,
            "name": u.name,
            "avatar_url": null,
            "type": "bot",
            "bot": {},
        }),
    }
}

/// `GET /v1/users/me`: the integration's bot user, owned by the workspace.
pub(crate) fn bot_me(w: &World) -> Value {
    json!({
        "object": "user",
        "id": w.bot.id,
        "name": w.bot.name,
        "avatar_url": null,
        "type": "bot",
        "bot": {
            "owner": {"type": "workspace", "workspace": true},
            "workspace_name": w.workspace_name,
            "workspace_id": w.workspace_id,
            // A paid workspace's limit (5 GiB; free workspaces get 5 MiB).
            "workspace_limits": {"max_file_upload_size_in_bytes": 5_368_709_120_u64},
        },
    })
}

pub(crate) fn rich_text(segments: &[Segment]) -> Value {
    Value::Array(
        segments
            .iter()
            .map(|s| {
                json!({
                    "type": "text",
                    "text": {
                        "content": s.text,
                        "link": s.link.as_ref().map(|url| json!({"url": url})),
                    },
                    "annotations": {
                        "bold": s.bold,
                        "italic": s.italic,
                        "strikethrough": s.strikethrough,
                        "underline": s.underline,
                        "code": s.code,
                        "color": s.color,
                    },
                    "plain_text": s.text,
                    "href": s.link,
                })
            })
            .collect(),
    )
}

/// JSON numbers as JavaScript writes them: whole values without a fraction.
fn number(n: f64) -> Value {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    if n.fract() == 0.0 && n.abs() <= SAFE {
        // Whole and within ±2^53, so the conversion is exact.
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn option_json(schema: &PropSchema, option_id: &str) -> Value {
    match schema.option_by_id(option_id) {
        Some(o) => json!({"id": o.id, "name": o.name, "color": o.color}),
        None => Value::Null,
    }
}

pub(crate) fn property_value(w: &World, schema: &PropSchema, value: &PropValue) -> Value {
    let inner = match value {
        PropValue::Title(t) | PropValue::RichText(t) => rich_text(t),
        PropValue::Number(n) => n.map_or(Value::Null, number),
        PropValue::Select(o) | PropValue::Status(o) => o
            .as_deref()
            .map_or(Value::Null, |id| option_json(schema, id)),
        PropValue::MultiSelect(ids) => Value::Array(
            ids.iter()
                .map(|id| option_json(schema, id))
                .filter(|v| !v.is_null())
                .collect(),
        ),
        PropValue::Date(d) => match d {
            None => Value::Null,
            Some(d) => json!({
                "start": d.start.render(),
                "end": d.end.map(|e| e.render()),
                "time_zone": d.time_zone,
            }),
        },
        PropValue::People(ids) => Value::Array(
            ids.iter()
                .map(|id| w.user(id).map_or_else(|| partial_user(id), user))
                .collect(),
        ),
        PropValue::Checkbox(b) => json!(b),
    };
    let type_name = schema.kind.type_name();
    let mut m = Map::new();
    m.insert("id".to_owned(), json!(schema.id));
    m.insert("type".to_owned(), json!(type_name));
    m.insert(type_name.to_owned(), inner);
    Value::Object(m)
}

/// `https://app.notion.com/p/<Title-slug>-<id without dashes>`, like the fixtures.
pub(crate) fn page_url(title: &str, id: &str) -> String {
    let compact: String = id.chars().filter(|c| *c != '-').collect();
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("https://app.notion.com/p/{compact}")
    } else {
        format!("https://app.notion.com/p/{slug}-{compact}")
    }
}

/// Whether `key` (as given in `filter_properties`) selects `schema`.
fn selects(key: &str, schema: &PropSchema) -> bool {
    key == schema.id || key == schema.name || percent_decode(&schema.id) == key
}

pub(crate) fn properties(
    w: &World,
    ds: &DataSource,
    snap: &PageSnapshot,
    only: Option<&[String]>,
) -> Value {
    let mut props = Map::new();
    for schema in &ds.props {
        if let Some(keys) = only
            && !keys.iter().any(|k| selects(k, schema))
        {
            continue;
        }
        let value = snap
            .props
            .get(&schema.id)
            .cloned()
            .unwrap_or_else(|| schema.kind.empty_value());
        props.insert(schema.name.clone(), property_value(w, schema, &value));
    }
    Value::Object(props)
}

pub(crate) fn page_title(ds: &DataSource, snap: &PageSnapshot) -> String {
    match snap.props.get(&ds.title_prop().id) {
        Some(PropValue::Title(t)) => plain_text(t),
        _ => String::new(),
    }
}

pub(crate) fn page(
    w: &World,
    page: &PageRecord,
    snap: &PageSnapshot,
    only: Option<&[String]>,
) -> Value {
    let Some(ds) = w.data_source(&page.data_source_id) else {
        return Value::Null;
    };
    json!({
        "object": "page",
        "id": page.id,
        "created_time": iso_z(page.created_time),
        "last_edited_time": iso_z(snap.last_edited_time),
        "created_by": partial_user(&page.created_by),
        "last_edited_by": partial_user(&snap.last_edited_by),
        "cover": snap.cover,
        "icon": snap.icon,
        "parent": {
            "type": "data_source_id",
            "data_source_id": ds.id,
            "database_id": ds.database_id,
        },
        "in_trash": snap.in_trash,
        "is_archived": false,
        "is_locked": snap.is_locked,
        "properties": properties(w, ds, snap, only),
        "url": page_url(&page_title(ds, snap), &page.id),
        "public_url": null,
        "archived": snap.in_trash,
    })
}

/// A page addressed as a block (`GET`/`PATCH`/`DELETE /v1/blocks/{page_id}`): a
/// `child_page` block.
pub(crate) fn page_as_block(w: &World, page: &PageRecord) -> Value {
    let snap = page.latest();
    let Some(ds) = w.data_source(&page.data_source_id) else {
        return Value::Null;
    };
    json!({
        "object": "block",
        "id": page.id,
        "parent": {
            "type": "data_source_id",
            "data_source_id": ds.id,
            "database_id": ds.database_id,
        },
        "created_time": iso_z(page.created_time),
        "last_edited_time": iso_z(snap.last_edited_time),
        "created_by": partial_user(&page.created_by),
        "last_edited_by": partial_user(&snap.last_edited_by),
        "has_children": !snap.body.is_empty(),
        "in_trash": snap.in_trash,
        "type": "child_page",
        "child_page": {"title": page_title(ds, snap)},
        "archived": snap.in_trash,
    })
}

/// The serialized page object, cached per version and schema generation.
pub(crate) fn page_text(w: &World, page_rec: &PageRecord, snap: &PageSnapshot) -> Arc<str> {
    if let Some(text) = snap.rendered.get(w.schema_gen) {
        return text;
    }
    let text: Arc<str> = page(w, page_rec, snap, None).to_string().into();
    snap.rendered.set(w.schema_gen, Arc::clone(&text));
    text
}

/// Appends `"request_id"` to a serialized, non-empty JSON object.
pub(crate) fn with_request_id(object: &str) -> String {
    let body = object.trim_end().strip_suffix('}').unwrap_or(object);
    format!("{body},\"request_id\":\"{}\"}}", uuid::Uuid::new_v4())
}

/// Notion's list envelope around already serialized results.
pub(crate) fn list_text(
    results: &[Arc<str>],
    next_cursor: Option<&str>,
    kind: &str,
    incomplete: bool,
) -> String {
    let mut out = String::with_capacity(results.iter().map(|r| r.len() + 1).sum::<usize>() + 256);
    out.push_str("{\"object\":\"list\",\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("],\"next_cursor\":");
    out.push_str(&json!(next_cursor).to_string());
    if incomplete {
        out.push_str(
            ",\"request_status\":{\"type\":\"incomplete\",\"incomplete_reason\":\"query_result_limit_reached\"}",
        );
    }
    out.push_str(&format!(
        ",\"has_more\":{},\"type\":{},{}:{{}},\"request_id\":\"{}\"}}",
        next_cursor.is_some(),
        json!(kind),
        json!(kind),
        uuid::Uuid::new_v4()
    ));
    out
}

fn title_rich_text(title: &str) -> Value {
    rich_text(&[Segment::plain(title)])
}

fn property_schema(p: &PropSchema) -> Value {
    let config = match &p.kind {
        PropKind::Title
        | PropKind::RichText
        | PropKind::Date
        | PropKind::People
        | PropKind::Checkbox => json!({}),
        PropKind::Number => json!({"format": "number"}),
        PropKind::Select(options) | PropKind::MultiSelect(options) => json!({
            "options": options
                .iter()
                .map(|o| json!({"id": o.id, "name": o.name, "color": o.color, "description": null}))
                .collect::<Vec<_>>(),
        }),
        PropKind::Status { options, groups } => json!({
            "options": options
                .iter()
                .map(|o| json!({"id": o.id, "name": o.name, "color": o.color, "description": null}))
                .collect::<Vec<_>>(),
            "groups": groups
                .iter()
                .map(|g| json!({"id": g.id, "name": g.name, "color": g.color, "option_ids": g.option_ids}))
                .collect::<Vec<_>>(),
        }),
    };
    let type_name = p.kind.type_name();
    let mut m = Map::new();
    m.insert("id".to_owned(), json!(p.id));
    m.insert("name".to_owned(), json!(p.name));
    m.insert("description".to_owned(), Value::Null);
    m.insert("type".to_owned(), json!(type_name));
    m.insert(type_name.to_owned(), config);
    Value::Object(m)
}

pub(crate) fn data_source(w: &World, ds: &DataSource) -> Value {
    let props: Map<String, Value> = ds
        .props
        .iter()
        .map(|p| (p.name.clone(), property_schema(p)))
        .collect();
    let compact: String = ds.database_id.chars().filter(|c| *c != '-').collect();
    json!({
        "object": "data_source",
        "id": ds.id,
        "cover": null,
        "icon": {"type": "emoji", "emoji": ds.emoji},
        "created_time": iso_z(ds.created_time),
        "created_by": partial_user(&ds.created_by),
        "last_edited_by": partial_user(&ds.last_edited_by),
        "last_edited_time": iso_z(ds.last_edited_time),
        "title": title_rich_text(&ds.title),
        "description": [],
        "is_inline": false,
        "properties": props,
        "parent": {"type": "database_id", "database_id": ds.database_id},
        "database_parent": {"type": "page_id", "page_id": w.home_page_id},
        "url": format!("https://app.notion.com/p/{compact}"),
        "public_url": null,
        "in_trash": false,
        "archived": false,
    })
}

pub(crate) fn database(w: &World, db: &Database) -> Value {
    let compact: String = db.id.chars().filter(|c| *c != '-').collect();
    let ds_name = w
        .data_source(&db.data_source_id)
        .map_or_else(|| db.title.clone(), |d| d.title.clone());
    json!({
        "object": "database",
        "id": db.id,
        "title": title_rich_text(&db.title),
        "description": [],
        "parent": {"type": "page_id", "page_id": w.home_page_id},
        "is_inline": false,
        "in_trash": false,
        "is_locked": false,
        "created_time": iso_offset(db.created_time),
        "last_edited_time": iso_offset(db.last_edited_time),
        "data_sources": [{"id": db.data_source_id, "name": ds_name}],
        "icon": null,
        "cover": null,
        "url": format!("https://app.notion.com/p/{compact}"),
        "public_url": null,
        "archived": false,
    })
}

pub(crate) fn block(b: &Block, page_id: &str, parent_block: Option<&str>, in_trash: bool) -> Value {
    let parent = match parent_block {
        Some(id) => json!({"type": "block_id", "block_id": id}),
        None => json!({"type": "page_id", "page_id": page_id}),
    };
    let text = rich_text(&b.text);
    let content = match &b.kind {
        BlockKind::Paragraph
        | BlockKind::Bulleted
        | BlockKind::Numbered
        | BlockKind::Toggle
        | BlockKind::Quote => json!({"rich_text": text, "color": "default"}),
        BlockKind::Heading1 | BlockKind::Heading2 | BlockKind::Heading3 => {
            json!({"rich_text": text, "is_toggleable": false, "color": "default"})
        }
        BlockKind::ToDo { checked } => {
            json!({"rich_text": text, "checked": checked, "color": "default"})
        }
        BlockKind::Callout => json!({
            "rich_text": text,
            "icon": {"type": "emoji", "emoji": "\u{1f4a1}"},
            "color": "gray_background",
        }),
        BlockKind::Code { language } => {
            json!({"caption": [], "rich_text": text, "language": language})
        }
        BlockKind::Divider => json!({}),
    };
    let type_name = b.kind.type_name();
    let mut m = Map::new();
    m.insert("object".to_owned(), json!("block"));
    m.insert("id".to_owned(), json!(b.id));
    m.insert("parent".to_owned(), parent);
    m.insert("created_time".to_owned(), json!(iso_z(b.created_time)));
    m.insert(
        "last_edited_time".to_owned(),
        json!(iso_z(b.last_edited_time)),
    );
    m.insert("created_by".to_owned(), partial_user(&b.created_by));
    m.insert("last_edited_by".to_owned(), partial_user(&b.last_edited_by));
    m.insert("has_children".to_owned(), json!(!b.children.is_empty()));
    m.insert("in_trash".to_owned(), json!(in_trash));
    m.insert("type".to_owned(), json!(type_name));
    m.insert(type_name.to_owned(), content);
    m.insert("archived".to_owned(), json!(in_trash));
    Value::Object(m)
}

/// Notion's paginated list envelope.
pub(crate) fn list(results: Vec<Value>, next_cursor: Option<String>, kind: &str) -> Value {
    let mut m = Map::new();
    m.insert("object".to_owned(), json!("list"));
    m.insert("has_more".to_owned(), json!(next_cursor.is_some()));
    m.insert("results".to_owned(), Value::Array(results));
    m.insert("next_cursor".to_owned(), json!(next_cursor));
    m.insert("type".to_owned(), json!(kind));
    m.insert(kind.to_owned(), json!({}));
    Value::Object(m)
}

/// Minimal `%XX` decoder for query strings and Notion's url-encoded property ids.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_fixture_slug_rule() {
        assert_eq!(
            page_url(
                "Test 2026-07-04 11:08:14.736683",
                "393abc1e-edcd-81f5-ae94-ec2d55fe98ed"
            ),
            "https://app.notion.com/p/Test-2026-07-04-11-08-14-736683-393abc1eedcd81f5ae94ec2d55fe98ed"
        );
        assert_eq!(
            page_url("", "393abc1e-edcd-81f5-ae94-ec2d55fe98ed"),
            "https://app.notion.com/p/393abc1eedcd81f5ae94ec2d55fe98ed"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%3AbEt"), ":bEt");
        assert_eq!(percent_decode("%253AbEt"), "%3AbEt");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
