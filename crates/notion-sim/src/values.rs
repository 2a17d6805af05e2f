//! Parsing property values as Notion's "update page" accepts them, with Notion's validation.

use serde_json::Value;

use crate::error::ApiError;
use crate::model::{
    DataSource, DatePoint, DateValue, PropKind, PropValue, Segment, SelectOption, World,
};

/// Notion's limit on one rich text `content`.
const MAX_TEXT: usize = 2000;

/// A parsed update; select/multi-select names that do not exist yet are created on apply,
/// as Notion does for integrations.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Ready(PropValue),
    Select(Option<String>),
    MultiSelect(Vec<String>),
}

fn fail(path: &str, expectation: &str, got: &Value) -> ApiError {
    let shown = serde_json::to_string(got).unwrap_or_default();
    let shown: String = shown.chars().take(60).collect();
    ApiError::validation(format!(
        "body failed validation: {path} should be {expectation}, instead was `{shown}`."
    ))
}

/// Notion's answer when a property value has none of the expected type keys.
fn fix_one(path: &str) -> ApiError {
    const TYPES: [&str; 14] = [
        "title",
        "rich_text",
        "number",
        "url",
        "select",
        "multi_select",
        "people",
        "email",
        "phone_number",
        "date",
        "checkbox",
        "relation",
        "files",
        "status",
    ];
    let lines: Vec<String> = TYPES
        .iter()
        .map(|t| format!("{path}.{t} should be defined, instead was `undefined`."))
        .collect();
    ApiError::validation(format!(
        "body failed validation. Fix one:\n{}",
        lines.join("\n")
    ))
}

/// Parses a request rich text array (`[{"text": {"content", "link"}, "annotations"}]`).
pub(crate) fn parse_rich_text(v: &Value, path: &str) -> Result<Vec<Segment>, ApiError> {
    let items = v.as_array().ok_or_else(|| fail(path, "an array", v))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        let obj = item
            .as_object()
            .ok_or_else(|| fail(&ipath, "an object", item))?;
        if let Some(t) = obj.get("type").and_then(Value::as_str)
            && t != "text"
        {
            return Err(ApiError::validation(format!(
                "body failed validation: {ipath}.type `{t}` is not supported by the simulator; use `text`."
            )));
        }
        let text = obj
            .get("text")
            .ok_or_else(|| fail(&format!("{ipath}.text"), "defined", &Value::Null))?;
        let content = text
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| fail(&format!("{ipath}.text.content"), "a string", text))?;
        if content.chars().count() > MAX_TEXT {
            return Err(ApiError::validation(format!(
                "body failed validation: {ipath}.text.content.length should be ≤ `{MAX_TEXT}`, instead was `{}`.",
                content.chars().count()
            )));
        }
        let mut seg = Segment::plain(content);
        match text.get("link") {
            None | Some(Value::Null) => {}
            Some(link) => {
                let url = link
                    .get("url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(&format!("{ipath}.text.link.url"), "a string", link))?;
                seg.link = Some(url.to_owned());
            }
        }
        if let Some(a) = obj.get("annotations").and_then(Value::as_object) {
            let flag = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
            seg.bold = flag("bold");
            seg.italic = flag("italic");
            seg.strikethrough = flag("strikethrough");
            seg.underline = flag("underline");
            seg.code = flag("code");
            if let Some(c) = a.get("color").and_then(Value::as_str) {
                seg.color = c.to_owned();
            }
        }
        out.push(seg);
    }
    Ok(out)
}

fn parse_date(v: &Value, path: &str) -> Result<Option<DateValue>, ApiError> {
    if v.is_null() {
        return Ok(None);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| fail(path, "an object or `null`", v))?;
    let point = |key: &str| -> Result<Option<DatePoint>, ApiError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => DatePoint::parse(s).map(Some).ok_or_else(|| {
                ApiError::validation(format!(
                    "body failed validation: {path}.{key} should be a valid ISO 8601 date string, instead was `\"{s}\"`."
                ))
            }),
            Some(other) => Err(fail(&format!("{path}.{key}"), "a string", other)),
        }
    };
    let start =
        point("start")?.ok_or_else(|| fail(&format!("{path}.start"), "defined", &Value::Null))?;
    let end = point("end")?;
    let time_zone = obj
        .get("time_zone")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Some(DateValue {
        start,
        end,
        time_zone,
    }))
}

fn option_name(v: &Value, path: &str, options: &[SelectOption]) -> Result<String, ApiError> {
    if let Some(name) = v.get("name").and_then(Value::as_str) {
        return Ok(name.to_owned());
    }
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        return options
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.name.clone())
            .ok_or_else(|| {
                ApiError::validation(format!("Invalid select option id `{id}` at {path}."))
            });
    }
    Err(fail(&format!("{path}.name"), "defined", v))
}

/// Parses one entry of a PATCH `properties` object. `key` is the property name or id.
pub(crate) fn parse_update(
    w: &World,
    ds: &DataSource,
    key: &str,
    v: &Value,
) -> Result<(String, Parsed), ApiError> {
    let schema = ds
        .prop(key)
        .ok_or_else(|| ApiError::validation(format!("{key} is not a property that exists.")))?;
    let type_name = schema.kind.type_name();
    let path = format!("body.properties.{key}");
    let obj = v.as_object().ok_or_else(|| fail(&path, "an object", v))?;
    let Some(inner) = obj.get(type_name) else {
        return Err(fix_one(&path));
    };
    let ipath = format!("{path}.{type_name}");
    let parsed = match &schema.kind {
        PropKind::Title => Parsed::Ready(PropValue::Title(parse_rich_text(inner, &ipath)?)),
        PropKind::RichText => Parsed::Ready(PropValue::RichText(parse_rich_text(inner, &ipath)?)),
        PropKind::Number => match inner {
            Value::Null => Parsed::Ready(PropValue::Number(None)),
            Value::Number(n) => Parsed::Ready(PropValue::Number(n.as_f64())),
            other => return Err(fail(&ipath, "a number or `null`", other)),
        },
        PropKind::Checkbox => match inner {
            Value::Bool(b) => Parsed::Ready(PropValue::Checkbox(*b)),
            other => return Err(fail(&ipath, "a boolean", other)),
        },
        PropKind::Date => Parsed::Ready(PropValue::Date(parse_date(inner, &ipath)?)),
        PropKind::Select(options) => match inner {
            Value::Null => Parsed::Select(None),
            Value::Object(_) => Parsed::Select(Some(option_name(inner, &ipath, options)?)),
            other => return Err(fail(&ipath, "an object or `null`", other)),
        },
        PropKind::MultiSelect(options) => {
            let items = inner
                .as_array()
                .ok_or_else(|| fail(&ipath, "an array", inner))?;
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                names.push(option_name(item, &format!("{ipath}[{i}]"), options)?);
            }
            Parsed::MultiSelect(names)
        }
        PropKind::Status { options, .. } => match inner {
            Value::Null => Parsed::Ready(PropValue::Status(None)),
            Value::Object(o) => {
                let found = if let Some(name) = o.get("name").and_then(Value::as_str) {
                    options.iter().find(|opt| opt.name == name).ok_or_else(|| {
                        ApiError::validation(format!(
                            "Invalid status option. Status option \"{name}\" does not exist for property \"{}\".",
                            schema.name
                        ))
                    })?
                } else if let Some(id) = o.get("id").and_then(Value::as_str) {
                    options.iter().find(|opt| opt.id == id).ok_or_else(|| {
                        ApiError::validation(format!(
                            "Invalid status option. Status option with id \"{id}\" does not exist for property \"{}\".",
                            schema.name
                        ))
                    })?
                } else {
                    return Err(fail(&format!("{ipath}.name"), "defined", inner));
                };
                Parsed::Ready(PropValue::Status(Some(found.id.clone())))
            }
            other => return Err(fail(&ipath, "an object or `null`", other)),
        },
        PropKind::People => {
            let items = inner
                .as_array()
                .ok_or_else(|| fail(&ipath, "an array", inner))?;
            let mut ids = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let id = item
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(&format!("{ipath}[{i}].id"), "defined", item))?;
                let id = crate::model::normalize_id(id)
                    .ok_or_else(|| fail(&format!("{ipath}[{i}].id"), "a valid uuid", item))?;
                if w.user(&id).is_none() {
                    return Err(ApiError::validation(format!(
                        "Could not find user with ID: {id}."
                    )));
                }
                ids.push(id);
            }
            Parsed::Ready(PropValue::People(ids))
        }
    };
    Ok((schema.id.clone(), parsed))
}

const COLORS: [&str; 9] = [
    "default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink",
];

/// Resolves a parsed value to a stored one, creating missing select options.
pub(crate) fn apply(w: &mut World, ds_id: &str, prop_id: &str, parsed: Parsed) -> PropValue {
    let resolve = |w: &mut World, name: String| -> String {
        let existing = w
            .data_source(ds_id)
            .and_then(|d| d.prop_by_id(prop_id))
            .and_then(|p| p.option_by_name(&name))
            .map(|o| o.id.clone());
        if let Some(id) = existing {
            return id;
        }
        let id = w.new_id();
        let color = COLORS[w.rng_index(COLORS.len())].to_owned();
        w.schema_gen += 1;
        if let Some(p) = w.data_source_mut(ds_id).and_then(|d| d.prop_mut(prop_id)) {
            match &mut p.kind {
                PropKind::Select(o) | PropKind::MultiSelect(o) => o.push(SelectOption {
                    id: id.clone(),
                    name,
                    color,
                }),
                _ => {}
            }
        }
        id
    };
    match parsed {
        Parsed::Ready(v) => v,
        Parsed::Select(name) => PropValue::Select(name.map(|n| resolve(w, n))),
        Parsed::MultiSelect(names) => {
            let mut ids: Vec<String> = Vec::new();
            for n in names {
                let id = resolve(w, n);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            PropValue::MultiSelect(ids)
        }
    }
}
