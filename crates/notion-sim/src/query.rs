//! `POST /v1/data_sources/{id}/query`: filter parsing and evaluation, sorts, keyset cursors.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::model::{
    CursorState, DataSource, DatePoint, PageRecord, PageSnapshot, PropKind, PropSchema, PropValue,
    SortValue, World, normalize_id, plain_text,
};

/// Notion allows compound filters nested two levels deep.
const MAX_DEPTH: usize = 2;

#[derive(Debug, Clone)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Prop { prop_id: String, cond: Cond },
    Timestamp { created: bool, cond: DateCond },
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Text(TextOp),
    Number(NumOp),
    Checkbox { equals: bool },
    Select(SelOp),
    Multi(MultiOp),
    People(MultiOp),
    Date(DateCond),
}

#[derive(Debug, Clone)]
pub(crate) enum TextOp {
    Equals(String),
    DoesNotEqual(String),
    Contains(String),
    DoesNotContain(String),
    StartsWith(String),
    EndsWith(String),
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone)]
pub(crate) enum NumOp {
    Equals(f64),
    DoesNotEqual(f64),
    GreaterThan(f64),
    LessThan(f64),
    GreaterOrEqual(f64),
    LessOrEqual(f64),
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone)]
pub(crate) enum SelOp {
    Equals(String),
    DoesNotEqual(String),
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone)]
pub(crate) enum MultiOp {
    Contains(String),
    DoesNotContain(String),
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone)]
pub(crate) enum DateCond {
    Equals(DatePoint),
    Before(DatePoint),
    After(DatePoint),
    OnOrBefore(DatePoint),
    OnOrAfter(DatePoint),
    IsEmpty,
    IsNotEmpty,
    /// Relative conditions (`past_week`, `next_month`, …) as an inclusive instant range.
    Within(DatePoint, DatePoint),
}

#[derive(Debug, Clone)]
pub(crate) enum SortKey {
    Prop(String),
    CreatedTime,
    LastEditedTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub filter: Option<Filter>,
    pub sorts: Vec<Sort>,
    pub start_cursor: Option<String>,
    pub page_size: usize,
    pub fingerprint: String,
}

fn describe(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.chars().take(60).collect()
}

fn bad(path: &str, expectation: &str, v: &Value) -> ApiError {
    ApiError::validation(format!(
        "body failed validation: {path} should be {expectation}, instead was `{}`.",
        describe(v)
    ))
}

/// Parses and validates a query body against the data source schema.
pub(crate) fn parse(body: &Value, ds: &DataSource, now: DateTime<Utc>) -> Result<Query, ApiError> {
    let empty = Map::new();
    let obj = match body {
        Value::Null => &empty,
        Value::Object(o) => o,
        other => return Err(bad("body", "an object", other)),
    };
    const KNOWN: [&str; 8] = [
        "filter",
        "sorts",
        "start_cursor",
        "page_size",
        "archived",
        "in_trash",
        "result_type",
        "filter_properties",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(&format!("body.{k}"), "not present", &obj[k]));
    }
    let page_size = match obj.get("page_size") {
        None | Some(Value::Null) => 100,
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| bad("body.page_size", "a number", v))?;
            if n < 1 {
                return Err(ApiError::validation(format!(
                    "body failed validation: body.page_size should be ≥ `1`, instead was `{n}`."
                )));
            }
            if n > 100 {
                return Err(ApiError::validation(format!(
                    "body failed validation: body.page_size should be ≤ `100`, instead was `{n}`."
                )));
            }
            usize::try_from(n).unwrap_or(100)
        }
    };
    let start_cursor = match obj.get("start_cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => return Err(bad("body.start_cursor", "a string", v)),
    };
    let filter = match obj.get("filter") {
        None | Some(Value::Null) => None,
        Some(f) => Some(parse_filter(f, ds, "body.filter", 0, now)?),
    };
    let sorts = match obj.get("sorts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| parse_sort(s, ds, &format!("body.sorts[{i}]")))
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(bad("body.sorts", "an array", v)),
    };
    let fingerprint = format!(
        "{}|{}",
        obj.get("filter").map(describe_full).unwrap_or_default(),
        obj.get("sorts").map(describe_full).unwrap_or_default()
    );
    Ok(Query {
        filter,
        sorts,
        start_cursor,
        page_size,
        fingerprint,
    })
}

fn describe_full(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse_sort(v: &Value, ds: &DataSource, path: &str) -> Result<Sort, ApiError> {
    let obj = v.as_object().ok_or_else(|| bad(path, "an object", v))?;
    let descending = match obj.get("direction").and_then(Value::as_str) {
        Some("ascending") => false,
        Some("descending") => true,
        _ => {
            return Err(bad(
                &format!("{path}.direction"),
                "`\"ascending\"` or `\"descending\"`",
                obj.get("direction").unwrap_or(&Value::Null),
            ));
        }
    };
    let key = if let Some(p) = obj.get("property") {
        let name = p
            .as_str()
            .ok_or_else(|| bad(&format!("{path}.property"), "a string", p))?;
        let schema = ds.prop(name).ok_or_else(|| {
            ApiError::validation(format!(
                "Could not find sort property with name or id: {name}"
            ))
        })?;
        SortKey::Prop(schema.id.clone())
    } else if let Some(t) = obj.get("timestamp") {
        match t.as_str() {
            Some("created_time") => SortKey::CreatedTime,
            Some("last_edited_time") => SortKey::LastEditedTime,
            _ => {
                return Err(bad(
                    &format!("{path}.timestamp"),
                    "`\"created_time\"` or `\"last_edited_time\"`",
                    t,
                ));
            }
        }
    } else {
        return Err(bad(&format!("{path}.property"), "defined", &Value::Null));
    };
    Ok(Sort { key, descending })
}

fn parse_filter(
    v: &Value,
    ds: &DataSource,
    path: &str,
    depth: usize,
    now: DateTime<Utc>,
) -> Result<Filter, ApiError> {
    let obj = v.as_object().ok_or_else(|| bad(path, "an object", v))?;
    for (op, is_and) in [("and", true), ("or", false)] {
        let Some(items) = obj.get(op) else { continue };
        if depth >= MAX_DEPTH {
            return Err(ApiError::validation(format!(
                "body failed validation: {path}.{op} exceeds the maximum filter nesting depth. Compound filters can be nested at most {MAX_DEPTH} levels deep."
            )));
        }
        if obj.len() != 1 {
            return Err(ApiError::validation(format!(
                "body failed validation: {path} should have exactly one of `and`, `or`, `property`, `timestamp`."
            )));
        }
        let items = items
            .as_array()
            .ok_or_else(|| bad(&format!("{path}.{op}"), "an array", items))?;
        let parsed = items
            .iter()
            .enumerate()
            .map(|(i, f)| parse_filter(f, ds, &format!("{path}.{op}[{i}]"), depth + 1, now))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if is_and {
            Filter::And(parsed)
        } else {
            Filter::Or(parsed)
        });
    }
    if let Some(t) = obj.get("timestamp") {
        let created = match t.as_str() {
            Some("created_time") => true,
            Some("last_edited_time") => false,
            _ => {
                return Err(bad(
                    &format!("{path}.timestamp"),
                    "`\"created_time\"` or `\"last_edited_time\"`",
                    t,
                ));
            }
        };
        let key = if created {
            "created_time"
        } else {
            "last_edited_time"
        };
        let cond_v = obj
            .get(key)
            .ok_or_else(|| bad(&format!("{path}.{key}"), "defined", &Value::Null))?;
        let cond = parse_date_cond(cond_v, &format!("{path}.{key}"), now)?;
        return Ok(Filter::Timestamp { created, cond });
    }
    let Some(p) = obj.get("property") else {
        return Err(bad(&format!("{path}.property"), "defined", &Value::Null));
    };
    let name = p
        .as_str()
        .ok_or_else(|| bad(&format!("{path}.property"), "a string", p))?;
    let schema = ds.prop(name).ok_or_else(|| {
        ApiError::validation(format!("Could not find property with name or id: {name}"))
    })?;
    let type_keys: Vec<&String> = obj.keys().filter(|k| k.as_str() != "property").collect();
    let [given] = type_keys.as_slice() else {
        return Err(ApiError::validation(format!(
            "body failed validation: {path} should have exactly one filter type key besides `property`."
        )));
    };
    let actual = schema.kind.type_name();
    let compatible = given.as_str() == actual
        || (matches!(schema.kind, PropKind::Title | PropKind::RichText)
            && matches!(given.as_str(), "title" | "rich_text"));
    if !compatible {
        return Err(ApiError::validation(format!(
            "body failed validation: {path}.{given} does not match the type of property \"{}\" ({actual}).",
            schema.name
        )));
    }
    let cpath = format!("{path}.{given}");
    let cond = parse_cond(&obj[given.as_str()], schema, &cpath, now)?;
    Ok(Filter::Prop {
        prop_id: schema.id.clone(),
        cond,
    })
}

/// Splits `{op: value}` into its single operator and value.
fn single_op<'a>(v: &'a Value, path: &str) -> Result<(&'a str, &'a Value), ApiError> {
    let obj = v.as_object().ok_or_else(|| bad(path, "an object", v))?;
    let mut it = obj.iter();
    match (it.next(), it.next()) {
        (Some((k, val)), None) => Ok((k.as_str(), val)),
        _ => Err(ApiError::validation(format!(
            "body failed validation: {path} should have exactly one filter condition."
        ))),
    }
}

fn unsupported(path: &str, op: &str) -> ApiError {
    ApiError::validation(format!(
        "body failed validation: {path}.{op} is not a supported filter condition."
    ))
}

fn want_true(v: &Value, path: &str) -> Result<(), ApiError> {
    if v == &Value::Bool(true) {
        Ok(())
    } else {
        Err(bad(path, "`true`", v))
    }
}

fn want_str(v: &Value, path: &str) -> Result<String, ApiError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(path, "a string", v))
}

fn parse_cond(
    v: &Value,
    schema: &PropSchema,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Cond, ApiError> {
    if matches!(schema.kind, PropKind::Date) {
        return Ok(Cond::Date(parse_date_cond(v, path, now)?));
    }
    let (op, val) = single_op(v, path)?;
    let opath = format!("{path}.{op}");
    Ok(match &schema.kind {
        PropKind::Title | PropKind::RichText => Cond::Text(match op {
            "equals" => TextOp::Equals(want_str(val, &opath)?),
            "does_not_equal" => TextOp::DoesNotEqual(want_str(val, &opath)?),
            "contains" => TextOp::Contains(want_str(val, &opath)?),
            "does_not_contain" => TextOp::DoesNotContain(want_str(val, &opath)?),
            "starts_with" => TextOp::StartsWith(want_str(val, &opath)?),
            "ends_with" => TextOp::EndsWith(want_str(val, &opath)?),
            "is_empty" => want_true(val, &opath).map(|()| TextOp::IsEmpty)?,
            "is_not_empty" => want_true(val, &opath).map(|()| TextOp::IsNotEmpty)?,
            _ => return Err(unsupported(path, op)),
        }),
        PropKind::Number => {
            let num = || val.as_f64().ok_or_else(|| bad(&opath, "a number", val));
            Cond::Number(match op {
                "equals" => NumOp::Equals(num()?),
                "does_not_equal" => NumOp::DoesNotEqual(num()?),
                "greater_than" => NumOp::GreaterThan(num()?),
                "less_than" => NumOp::LessThan(num()?),
                "greater_than_or_equal_to" => NumOp::GreaterOrEqual(num()?),
                "less_than_or_equal_to" => NumOp::LessOrEqual(num()?),
                "is_empty" => want_true(val, &opath).map(|()| NumOp::IsEmpty)?,
                "is_not_empty" => want_true(val, &opath).map(|()| NumOp::IsNotEmpty)?,
                _ => return Err(unsupported(path, op)),
            })
        }
        PropKind::Checkbox => {
            let b = val.as_bool().ok_or_else(|| bad(&opath, "a boolean", val))?;
            match op {
                "equals" => Cond::Checkbox { equals: b },
                "does_not_equal" => Cond::Checkbox { equals: !b },
                _ => return Err(unsupported(path, op)),
            }
        }
        PropKind::Select(_) | PropKind::Status { .. } => Cond::Select(match op {
            "equals" => SelOp::Equals(want_str(val, &opath)?),
            "does_not_equal" => SelOp::DoesNotEqual(want_str(val, &opath)?),
            "is_empty" => want_true(val, &opath).map(|()| SelOp::IsEmpty)?,
            "is_not_empty" => want_true(val, &opath).map(|()| SelOp::IsNotEmpty)?,
            _ => return Err(unsupported(path, op)),
        }),
        PropKind::MultiSelect(_) => Cond::Multi(parse_multi(op, val, path, &opath, false)?),
        PropKind::People => Cond::People(parse_multi(op, val, path, &opath, true)?),
        PropKind::Date => return Err(unsupported(path, op)),
    })
}

fn parse_multi(
    op: &str,
    val: &Value,
    path: &str,
    opath: &str,
    ids: bool,
) -> Result<MultiOp, ApiError> {
    let item = || -> Result<String, ApiError> {
        let s = want_str(val, opath)?;
        if ids {
            normalize_id(&s).ok_or_else(|| bad(opath, "a valid uuid", val))
        } else {
            Ok(s)
        }
    };
    Ok(match op {
        "contains" => MultiOp::Contains(item()?),
        "does_not_contain" => MultiOp::DoesNotContain(item()?),
        "is_empty" => want_true(val, opath).map(|()| MultiOp::IsEmpty)?,
        "is_not_empty" => want_true(val, opath).map(|()| MultiOp::IsNotEmpty)?,
        _ => return Err(unsupported(path, op)),
    })
}

fn at(t: DateTime<Utc>) -> DatePoint {
    DatePoint::DateTime(t.fixed_offset())
}

fn parse_date_cond(v: &Value, path: &str, now: DateTime<Utc>) -> Result<DateCond, ApiError> {
    let (op, val) = single_op(v, path)?;
    let opath = format!("{path}.{op}");
    let point = || -> Result<DatePoint, ApiError> {
        let s = want_str(val, &opath)?;
        DatePoint::parse(&s).ok_or_else(|| {
            ApiError::validation(format!(
                "body failed validation: {opath} should be a valid ISO 8601 date string, instead was `\"{s}\"`."
            ))
        })
    };
    let relative = |from: DateTime<Utc>, to: DateTime<Utc>| -> Result<DateCond, ApiError> {
        if val.as_object().is_some_and(Map::is_empty) {
            Ok(DateCond::Within(at(from), at(to)))
        } else {
            Err(bad(&opath, "an empty object", val))
        }
    };
    let day = TimeDelta::days(1);
    Ok(match op {
        "equals" => DateCond::Equals(point()?),
        "before" => DateCond::Before(point()?),
        "after" => DateCond::After(point()?),
        "on_or_before" => DateCond::OnOrBefore(point()?),
        "on_or_after" => DateCond::OnOrAfter(point()?),
        "is_empty" => want_true(val, &opath).map(|()| DateCond::IsEmpty)?,
        "is_not_empty" => want_true(val, &opath).map(|()| DateCond::IsNotEmpty)?,
        "past_week" => relative(now - day * 7, now)?,
        "past_month" => relative(now - day * 30, now)?,
        "past_year" => relative(now - day * 365, now)?,
        "next_week" => relative(now, now + day * 7)?,
        "next_month" => relative(now, now + day * 30)?,
        "next_year" => relative(now, now + day * 365)?,
        "this_week" => {
            let monday =
                now.date_naive() - TimeDelta::days(i64::from(now.weekday().num_days_from_monday()));
            let start = monday
                .and_hms_opt(0, 0, 0)
                .map(|d| d.and_utc())
                .unwrap_or(now);
            relative(start, start + day * 7 - TimeDelta::milliseconds(1))?
        }
        _ => return Err(unsupported(path, op)),
    })
}

fn eval_date(cond: &DateCond, value: Option<&DatePoint>) -> bool {
    match (cond, value) {
        (DateCond::IsEmpty, v) => v.is_none(),
        (DateCond::IsNotEmpty, v) => v.is_some(),
        (_, None) => false,
        (DateCond::Equals(f), Some(v)) => v.compare(f) == Ordering::Equal,
        (DateCond::Before(f), Some(v)) => v.compare(f) == Ordering::Less,
        (DateCond::After(f), Some(v)) => v.compare(f) == Ordering::Greater,
        (DateCond::OnOrBefore(f), Some(v)) => v.compare(f) != Ordering::Greater,
        (DateCond::OnOrAfter(f), Some(v)) => v.compare(f) != Ordering::Less,
        (DateCond::Within(a, b), Some(v)) => {
            v.instant() >= a.instant() && v.instant() <= b.instant()
        }
    }
}

fn eval_multi(op: &MultiOp, values: &[String]) -> bool {
    match op {
        MultiOp::Contains(x) => values.iter().any(|v| v == x),
        MultiOp::DoesNotContain(x) => !values.iter().any(|v| v == x),
        MultiOp::IsEmpty => values.is_empty(),
        MultiOp::IsNotEmpty => !values.is_empty(),
    }
}

fn option_name(schema: &PropSchema, id: Option<&String>) -> Option<String> {
    id.and_then(|id| schema.option_by_id(id))
        .map(|o| o.name.clone())
}

pub(crate) fn matches(f: &Filter, ds: &DataSource, page: &PageRecord, snap: &PageSnapshot) -> bool {
    match f {
        Filter::And(items) => items.iter().all(|f| matches(f, ds, page, snap)),
        Filter::Or(items) => items.iter().any(|f| matches(f, ds, page, snap)),
        Filter::Timestamp { created, cond } => {
            let t = if *created {
                page.created_time
            } else {
                snap.last_edited_time
            };
            eval_date(cond, Some(&at(t)))
        }
        Filter::Prop { prop_id, cond } => {
            let Some(schema) = ds.prop_by_id(prop_id) else {
                return false;
            };
            let empty = schema.kind.empty_value();
            let value = snap.props.get(prop_id).unwrap_or(&empty);
            eval_prop(cond, schema, value)
        }
    }
}

fn eval_prop(cond: &Cond, schema: &PropSchema, value: &PropValue) -> bool {
    match (cond, value) {
        (Cond::Text(op), PropValue::Title(t) | PropValue::RichText(t)) => {
            let text = plain_text(t);
            let lower = text.to_lowercase();
            match op {
                TextOp::Equals(x) => &text == x,
                TextOp::DoesNotEqual(x) => &text != x,
                TextOp::Contains(x) => lower.contains(&x.to_lowercase()),
                TextOp::DoesNotContain(x) => !lower.contains(&x.to_lowercase()),
                TextOp::StartsWith(x) => lower.starts_with(&x.to_lowercase()),
                TextOp::EndsWith(x) => lower.ends_with(&x.to_lowercase()),
                TextOp::IsEmpty => text.is_empty(),
                TextOp::IsNotEmpty => !text.is_empty(),
            }
        }
        (Cond::Number(op), PropValue::Number(n)) => match (op, n) {
            (NumOp::IsEmpty, n) => n.is_none(),
            (NumOp::IsNotEmpty, n) => n.is_some(),
            (NumOp::DoesNotEqual(_), None) => true,
            (_, None) => false,
            (NumOp::Equals(x), Some(n)) => n == x,
            (NumOp::DoesNotEqual(x), Some(n)) => n != x,
            (NumOp::GreaterThan(x), Some(n)) => n > x,
            (NumOp::LessThan(x), Some(n)) => n < x,
            (NumOp::GreaterOrEqual(x), Some(n)) => n >= x,
            (NumOp::LessOrEqual(x), Some(n)) => n <= x,
        },
        (Cond::Checkbox { equals }, PropValue::Checkbox(b)) => b == equals,
        (Cond::Select(op), PropValue::Select(id) | PropValue::Status(id)) => {
            let name = option_name(schema, id.as_ref());
            match op {
                SelOp::Equals(x) => name.as_deref() == Some(x.as_str()),
                SelOp::DoesNotEqual(x) => name.as_deref() != Some(x.as_str()),
                SelOp::IsEmpty => name.is_none(),
                SelOp::IsNotEmpty => name.is_some(),
            }
        }
        (Cond::Multi(op), PropValue::MultiSelect(ids)) => {
            let names: Vec<String> = ids
                .iter()
                .filter_map(|id| option_name(schema, Some(id)))
                .collect();
            eval_multi(op, &names)
        }
        (Cond::People(op), PropValue::People(ids)) => eval_multi(op, ids),
        (Cond::Date(cond), PropValue::Date(d)) => eval_date(cond, d.as_ref().map(|d| &d.start)),
        _ => false,
    }
}

fn sort_value(
    key: &SortKey,
    ds: &DataSource,
    page: &PageRecord,
    snap: &PageSnapshot,
    w: &World,
) -> SortValue {
    match key {
        SortKey::CreatedTime => SortValue::Date(at(page.created_time)),
        SortKey::LastEditedTime => SortValue::Date(at(snap.last_edited_time)),
        SortKey::Prop(id) => {
            let Some(schema) = ds.prop_by_id(id) else {
                return SortValue::Missing;
            };
            let rank = |oid: &String| schema.kind.options().iter().position(|o| &o.id == oid);
            match snap.props.get(id) {
                None => SortValue::Missing,
                Some(PropValue::Title(t) | PropValue::RichText(t)) => {
                    let s = plain_text(t);
                    if s.is_empty() {
                        SortValue::Missing
                    } else {
                        SortValue::Text(s.to_lowercase())
                    }
                }
                Some(PropValue::Number(n)) => n.map_or(SortValue::Missing, SortValue::Num),
                Some(PropValue::Checkbox(b)) => SortValue::Bool(*b),
                Some(PropValue::Select(o) | PropValue::Status(o)) => o
                    .as_ref()
                    .and_then(rank)
                    .map_or(SortValue::Missing, SortValue::Rank),
                Some(PropValue::MultiSelect(ids)) => ids
                    .iter()
                    .find_map(rank)
                    .map_or(SortValue::Missing, SortValue::Rank),
                Some(PropValue::Date(d)) => d
                    .as_ref()
                    .map_or(SortValue::Missing, |d| SortValue::Date(d.start)),
                Some(PropValue::People(ids)) => ids
                    .first()
                    .and_then(|id| w.user(id))
                    .map_or(SortValue::Missing, |u| {
                        SortValue::Text(u.name.to_lowercase())
                    }),
            }
        }
    }
}

/// Total order of rows: the sorts (empty values last in either direction), then creation order.
fn compare(sorts: &[Sort], a: (&[SortValue], u64), b: (&[SortValue], u64)) -> Ordering {
    for (i, s) in sorts.iter().enumerate() {
        let (x, y) = (&a.0[i], &b.0[i]);
        let ord = match (x, y) {
            (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
            (SortValue::Missing, _) => Ordering::Greater,
            (_, SortValue::Missing) => Ordering::Less,
            _ if s.descending => y.cmp_present(x),
            _ => x.cmp_present(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.1.cmp(&b.1)
}

/// Runs a parsed query as of `now - delay` and renders one page of results.
pub(crate) fn run(
    w: &mut World,
    ds_id: &str,
    q: &Query,
    only: Option<&[String]>,
    now: Instant,
    delay: Duration,
    limit: usize,
) -> Result<QueryPage, ApiError> {
    let (results, next_key, returned, incomplete) = {
        let world: &World = w;
        let Some(ds) = world.data_source(ds_id) else {
            return Err(ApiError::not_found("data source", ds_id));
        };
        let mut rows: Vec<(Vec<SortValue>, &PageRecord, &PageSnapshot)> = world
            .pages_of(ds_id)
            .into_iter()
            .filter(|p| p.shared)
            .filter_map(|p| p.visible(now, delay).map(|s| (p, s.as_ref())))
            .filter(|(_, s)| !s.in_trash)
            .filter(|(p, s)| q.filter.as_ref().is_none_or(|f| matches(f, ds, p, s)))
            .map(|(p, s)| {
                let key = q
                    .sorts
                    .iter()
                    .map(|so| sort_value(&so.key, ds, p, s, world))
                    .collect();
                (key, p, s)
            })
            .collect();
        rows.sort_by(|a, b| compare(&q.sorts, (&a.0, a.1.seq), (&b.0, b.1.seq)));
        let (start, returned) = match &q.start_cursor {
            None => (0, 0),
            Some(c) => {
                let state = world
                    .cursors
                    .get(c)
                    .filter(|s| s.data_source_id == ds_id && s.fingerprint == q.fingerprint)
                    .ok_or_else(|| {
                        ApiError::validation(format!("start_cursor provided is invalid: {c}"))
                    })?;
                let start = rows
                    .iter()
                    .position(|r| {
                        compare(&q.sorts, (&r.0, r.1.seq), (&state.key, state.seq))
                            != Ordering::Less
                    })
                    .unwrap_or(rows.len());
                (start, state.returned)
            }
        };
        let allowed = limit.saturating_sub(returned);
        let end = (start + q.page_size.min(allowed)).min(rows.len());
        // The limit cuts the query short: no cursor past it, and the answer says so.
        let incomplete = end < rows.len() && end - start == allowed;
        let results: Vec<Arc<str>> = rows[start..end]
            .iter()
            .map(|(_, p, s)| match only {
                None => crate::render::page_text(world, p, s),
                Some(keys) => crate::render::page(world, p, s, Some(keys))
                    .to_string()
                    .into(),
            })
            .collect();
        let next_key = (!incomplete)
            .then(|| rows.get(end).map(|(k, p, _)| (k.clone(), p.seq)))
            .flatten();
        let returned = returned + (end - start);
        (results, next_key, returned, incomplete)
    };
    let next_cursor = next_key.map(|(key, seq)| {
        w.store_cursor(CursorState {
            data_source_id: ds_id.to_owned(),
            fingerprint: q.fingerprint.clone(),
            key,
            seq,
            returned,
        })
    });
    Ok(QueryPage {
        results,
        next_cursor,
        incomplete,
    })
}

/// One page of a query's answer.
pub(crate) struct QueryPage {
    pub results: Vec<Arc<str>>,
    pub next_cursor: Option<String>,
    /// The per-query result limit was reached on this page.
    pub incomplete: bool,
}
