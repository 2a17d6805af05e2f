//! Block objects in requests: the `children` of `POST /v1/pages` and of an append, and the
//! body of a block update, parsed into the model with Notion's validation errors. Only the
//! block types the model has are accepted; any other type is refused by name.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::model::{Block, BlockKind, Segment, World};
use crate::values::parse_rich_text;

/// At most this many blocks in one `children` array (Notion's limit).
pub(crate) const MAX_CHILDREN: usize = 100;
/// A request may nest two levels of children below its top-level blocks.
const MAX_DEPTH: usize = 3;
/// The block types the simulator models, as request type keys.
const TYPES: [&str; 12] = [
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "to_do",
    "toggle",
    "quote",
    "callout",
    "code",
    "divider",
];

fn fail(path: &str, expected: &str, got: &Value) -> ApiError {
    let shown: String = got.to_string().chars().take(60).collect();
    ApiError::validation(format!(
        "body failed validation: {path} should be {expected}, instead was `{shown}`."
    ))
}

fn undefined(path: &str) -> ApiError {
    ApiError::validation(format!(
        "body failed validation: {path} should be defined, instead was `undefined`."
    ))
}

/// The block's type: its `type` field, or else the one type key it carries.
fn type_of<'a>(obj: &'a Map<String, Value>, path: &str) -> Result<&'a str, ApiError> {
    let named = match obj.get("type") {
        None => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(v) => return Err(fail(&format!("{path}.type"), "a string", v)),
    };
    let keyed = obj
        .keys()
        .map(String::as_str)
        .find(|k| *k != "type" && *k != "object");
    let t = named
        .or(keyed)
        .ok_or_else(|| undefined(&format!("{path}.type")))?;
    if !TYPES.contains(&t) {
        return Err(ApiError::validation(format!(
            "body failed validation: {path}.{t} is not a block type the simulator models (it models {}).",
            TYPES.join(", ")
        )));
    }
    Ok(t)
}

/// The model kind for a type key and its content object.
fn kind_of(t: &str, content: &Map<String, Value>, path: &str) -> Result<BlockKind, ApiError> {
    Ok(match t {
        "paragraph" => BlockKind::Paragraph,
        "heading_1" => BlockKind::Heading1,
        "heading_2" => BlockKind::Heading2,
        "heading_3" => BlockKind::Heading3,
        "bulleted_list_item" => BlockKind::Bulleted,
        "numbered_list_item" => BlockKind::Numbered,
        "to_do" => BlockKind::ToDo {
            checked: checked(content, path)?.unwrap_or(false),
        },
        "toggle" => BlockKind::Toggle,
        "quote" => BlockKind::Quote,
        "callout" => BlockKind::Callout,
        "code" => BlockKind::Code {
            language: language(content, path)?
                .ok_or_else(|| undefined(&format!("{path}.language")))?,
        },
        _ => BlockKind::Divider,
    })
}

fn checked(content: &Map<String, Value>, path: &str) -> Result<Option<bool>, ApiError> {
    match content.get("checked") {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(fail(&format!("{path}.checked"), "a boolean", v)),
    }
}

fn language(content: &Map<String, Value>, path: &str) -> Result<Option<String>, ApiError> {
    match content.get("language") {
        None => Ok(None),
        Some(Value::String(l)) => Ok(Some(l.clone())),
        Some(v) => Err(fail(&format!("{path}.language"), "a string", v)),
    }
}

/// The type object of a block (`{"paragraph": {…}}`); `{}` when absent for a divider.
fn content_of<'a>(
    obj: &'a Map<String, Value>,
    t: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match obj.get(t) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(fail(&format!("{path}.{t}"), "an object", v)),
    }
}

/// Parses a `children` array into new blocks (fresh ids, created now by `author`).
pub(crate) fn parse_children(
    w: &mut World,
    v: &Value,
    path: &str,
    at: DateTime<Utc>,
    author: &str,
) -> Result<Vec<Block>, ApiError> {
    children_at(w, v, path, 1, at, author)
}

fn children_at(
    w: &mut World,
    v: &Value,
    path: &str,
    depth: usize,
    at: DateTime<Utc>,
    author: &str,
) -> Result<Vec<Block>, ApiError> {
    let items = v.as_array().ok_or_else(|| fail(path, "an array", v))?;
    if items.len() > MAX_CHILDREN {
        return Err(ApiError::validation(format!(
            "body failed validation: {path}.length should be ≤ `{MAX_CHILDREN}`, instead was `{}`.",
            items.len()
        )));
    }
    if depth > MAX_DEPTH {
        return Err(ApiError::validation(format!(
            "body failed validation: {path} nests children more than two levels below the blocks of the request."
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| block_at(w, item, &format!("{path}[{i}]"), depth, at, author))
        .collect()
}

fn block_at(
    w: &mut World,
    v: &Value,
    path: &str,
    depth: usize,
    at: DateTime<Utc>,
    author: &str,
) -> Result<Block, ApiError> {
    let obj = v.as_object().ok_or_else(|| fail(path, "an object", v))?;
    let t = type_of(obj, path)?;
    let cpath = format!("{path}.{t}");
    let empty = Map::new();
    let content = match content_of(obj, t, path)? {
        Some(c) => c,
        None if t == "divider" => &empty,
        None => return Err(undefined(&cpath)),
    };
    let kind = kind_of(t, content, &cpath)?;
    let text = match content.get("rich_text") {
        Some(rt) if kind.has_text() => parse_rich_text(rt, &format!("{cpath}.rich_text"))?,
        None if kind.has_text() => return Err(undefined(&format!("{cpath}.rich_text"))),
        _ => Vec::new(),
    };
    let children = match content.get("children") {
        None => Vec::new(),
        Some(_) if matches!(kind, BlockKind::Divider | BlockKind::Code { .. }) => {
            return Err(ApiError::validation(format!(
                "body failed validation: {cpath}.children is not allowed: a {t} block has no children."
            )));
        }
        Some(c) => children_at(w, c, &format!("{cpath}.children"), depth + 1, at, author)?,
    };
    Ok(Block {
        id: w.new_id(),
        kind,
        text,
        children,
        created_time: at,
        last_edited_time: at,
        created_by: author.to_owned(),
        last_edited_by: author.to_owned(),
    })
}

/// What `PATCH /v1/blocks/{id}` asks: new content for the block's own type, and/or a
/// trash flag.
#[derive(Debug, Default)]
pub(crate) struct BlockUpdate {
    pub text: Option<Vec<Segment>>,
    pub checked: Option<bool>,
    pub language: Option<String>,
    pub in_trash: Option<bool>,
}

impl BlockUpdate {
    /// Whether the update changes content (not only the trash flag).
    pub(crate) fn edits_content(&self) -> bool {
        self.text.is_some() || self.checked.is_some() || self.language.is_some()
    }
}

/// Parses an update body against the block's current type (a block's type cannot change).
pub(crate) fn parse_update(body: &Value, current: &BlockKind) -> Result<BlockUpdate, ApiError> {
    let obj = match body {
        Value::Object(o) => o,
        Value::Null => return Ok(BlockUpdate::default()),
        v => return Err(fail("body", "an object", v)),
    };
    let mut update = BlockUpdate {
        in_trash: crate::respond::trash_flag(obj)?,
        ..BlockUpdate::default()
    };
    let own = current.type_name();
    for (k, v) in obj {
        if matches!(k.as_str(), "in_trash" | "archived" | "type") {
            continue;
        }
        if k != own {
            return Err(ApiError::validation(format!(
                "body failed validation: body.{k} should be not present, instead was `{}`: the block is a {own} block.",
                v.to_string().chars().take(60).collect::<String>()
            )));
        }
        let content = v
            .as_object()
            .ok_or_else(|| fail(&format!("body.{k}"), "an object", v))?;
        if let Some(rt) = content.get("rich_text") {
            update.text = Some(parse_rich_text(rt, &format!("body.{k}.rich_text"))?);
        }
        update.checked = checked(content, &format!("body.{k}"))?;
        update.language = language(content, &format!("body.{k}"))?;
    }
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn world() -> World {
        crate::generate::workspace(7, 3, 0, chrono::Utc::now())
    }

    #[test]
    fn children_parse_with_nesting_and_notion_errors() {
        let mut w = world();
        let at = chrono::Utc::now();
        let v = json!([
            {"object": "block", "type": "bulleted_list_item", "bulleted_list_item": {
                "rich_text": [{"type": "text", "text": {"content": "one"}}],
                "children": [{"to_do": {"rich_text": [], "checked": true}}]
            }},
            {"divider": {}},
            {"type": "code", "code": {"rich_text": [{"text": {"content": "fn main() {}"}}], "language": "rust"}}
        ]);
        let blocks = parse_children(&mut w, &v, "body.children", at, "u").unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            blocks[0].children[0].kind,
            BlockKind::ToDo { checked: true }
        );
        assert_eq!(
            blocks[2].kind,
            BlockKind::Code {
                language: "rust".into()
            }
        );

        let too_many = Value::Array(vec![json!({"divider": {}}); 101]);
        let e = parse_children(&mut w, &too_many, "body.children", at, "u").unwrap_err();
        assert!(
            e.message.contains("length should be ≤ `100`"),
            "{}",
            e.message
        );
        let image = json!([{"image": {"external": {"url": "https://x"}}}]);
        let e = parse_children(&mut w, &image, "body.children", at, "u").unwrap_err();
        assert!(
            e.message.contains("body.children[0].image"),
            "{}",
            e.message
        );
        let no_text = json!([{"paragraph": {}}]);
        let e = parse_children(&mut w, &no_text, "body.children", at, "u").unwrap_err();
        assert!(
            e.message
                .contains("body.children[0].paragraph.rich_text should be defined"),
            "{}",
            e.message
        );
        let leaf = json!({"paragraph": {"rich_text": []}});
        let deep = json!([{"toggle": {"rich_text": [], "children": [{"toggle": {"rich_text": [], "children": [{"toggle": {"rich_text": [], "children": [leaf]}}]}}]}}]);
        let e = parse_children(&mut w, &deep, "body.children", at, "u").unwrap_err();
        assert!(e.message.contains("two levels"), "{}", e.message);
    }

    #[test]
    fn an_update_keeps_the_type() {
        let body = json!({"to_do": {"checked": true}});
        let u = parse_update(&body, &BlockKind::ToDo { checked: false }).unwrap();
        assert_eq!(u.checked, Some(true));
        assert!(u.text.is_none());
        let e = parse_update(&body, &BlockKind::Paragraph).unwrap_err();
        assert!(e.message.contains("paragraph block"), "{}", e.message);
        let trash = parse_update(&json!({"archived": true}), &BlockKind::Paragraph).unwrap();
        assert_eq!(trash.in_trash, Some(true));
        assert!(!trash.edits_content());
    }
}
