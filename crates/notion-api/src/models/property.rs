//! Page property values (every documented type, plus `Unknown`) and the value types they use.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::rich_text::{RichText, plain_text};
use super::user::User;
use crate::NotionId;

/// Writes a number the way Notion (JavaScript) does: integral values
/// without a fraction (`3`, not `3.0`).
pub(crate) fn serialize_number<S: Serializer>(n: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            s.serialize_i64(*v as i64)
        }
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

struct Num<'a>(&'a Option<f64>);

impl Serialize for Num<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_number(self.0, s)
    }
}

/// A select, multi-select or status option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    /// Option id (absent in some request shapes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Option name, what users see.
    pub name: String,
    /// Colour name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A date or date-time as Notion writes it: `2025-01-31` or
/// `2025-01-31T09:00:00.000+02:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotionDate {
    /// A calendar date without time.
    Date(NaiveDate),
    /// A point in time with its offset.
    DateTime(DateTime<FixedOffset>),
}

/// Why a string is not a Notion date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Notion date {0:?}: expected YYYY-MM-DD or an ISO 8601 date-time")]
pub struct DateParseError(String);

impl NotionDate {
    /// Parses `YYYY-MM-DD`, RFC 3339, or an offset-less date-time (taken as UTC).
    pub fn parse(s: &str) -> Result<Self, DateParseError> {
        let s = s.trim();
        if s.len() == 10 {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Self::Date)
                .map_err(|_| DateParseError(s.to_owned()));
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Self::DateTime(dt));
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
            .map(|n| Self::DateTime(n.and_utc().fixed_offset()))
            .map_err(|_| DateParseError(s.to_owned()))
    }

    /// The calendar date (for date-times: in their own offset).
    pub fn date_naive(&self) -> NaiveDate {
        match self {
            Self::Date(d) => *d,
            Self::DateTime(dt) => dt.date_naive(),
        }
    }

    /// The instant, for date-times.
    pub fn to_utc(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Date(_) => None,
            Self::DateTime(dt) => Some(dt.with_timezone(&Utc)),
        }
    }

    /// Whether this is a date without time.
    pub fn is_date_only(&self) -> bool {
        matches!(self, Self::Date(_))
    }
}

impl fmt::Display for NotionDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Self::DateTime(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, false)),
        }
    }
}

impl FromStr for NotionDate {
    type Err = DateParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<NaiveDate> for NotionDate {
    fn from(d: NaiveDate) -> Self {
        Self::Date(d)
    }
}

impl From<DateTime<Utc>> for NotionDate {
    fn from(d: DateTime<Utc>) -> Self {
        Self::DateTime(d.fixed_offset())
    }
}

impl From<DateTime<FixedOffset>> for NotionDate {
    fn from(d: DateTime<FixedOffset>) -> Self {
        Self::DateTime(d)
    }
}

impl Serialize for NotionDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NotionDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The value of a date property: a start, an optional end, an optional time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateValue {
    /// Start (the date for single dates).
    pub start: NotionDate,
    /// End, for ranges.
    #[serde(default)]
    pub end: Option<NotionDate>,
    /// IANA time zone the user picked, if any.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A file reference in a files property.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    /// File name.
    pub name: Option<String>,
    /// `file` (hosted by Notion), `external`, `file_upload` …
    pub kind: String,
    /// URL (for hosted files it expires at `expiry_time`).
    pub url: Option<String>,
    /// Expiry of a Notion-hosted URL.
    pub expiry_time: Option<DateTime<Utc>>,
    /// The type-specific object as sent.
    pub raw: Value,
}

impl<'de> Deserialize<'de> for FileRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let kind = map
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let raw = map.get(&kind).cloned().unwrap_or(Value::Null);
        Ok(Self {
            name: map.get("name").and_then(Value::as_str).map(str::to_owned),
            url: raw.get("url").and_then(Value::as_str).map(str::to_owned),
            expiry_time: raw
                .get("expiry_time")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc)),
            kind,
            raw,
        })
    }
}

impl Serialize for FileRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        if let Some(n) = &self.name {
            m.serialize_entry("name", n)?;
        }
        m.serialize_entry("type", &self.kind)?;
        m.serialize_entry(&self.kind, &self.raw)?;
        m.end()
    }
}

/// The computed value of a formula property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FormulaValue {
    /// A string result.
    String {
        /// The value.
        string: Option<String>,
    },
    /// A number result.
    Number {
        /// The value.
        #[serde(serialize_with = "serialize_number")]
        number: Option<f64>,
    },
    /// A boolean result.
    Boolean {
        /// The value.
        boolean: Option<bool>,
    },
    /// A date result.
    Date {
        /// The value.
        date: Option<DateValue>,
    },
}

/// The computed value of a rollup property.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupValue {
    /// The rollup function (`sum`, `count`, `show_original` …).
    pub function: Option<String>,
    /// The result.
    pub result: RollupResult,
}

/// A rollup result by type.
#[derive(Debug, Clone, PartialEq)]
pub enum RollupResult {
    /// `number`.
    Number(Option<f64>),
    /// `date`.
    Date(Option<DateValue>),
    /// `array`: property-value-shaped items, as sent.
    Array(Vec<Value>),
    /// `incomplete`, `unsupported` or a newer type, as sent.
    Other {
        /// The `type` string.
        kind: String,
        /// The type-specific value.
        raw: Value,
    },
}

impl<'de> Deserialize<'de> for RollupValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let kind = map
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let function = map
            .get("function")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let payload = map.remove(&kind).unwrap_or(Value::Null);
        let result = match kind.as_str() {
            "number" => {
                RollupResult::Number(serde_json::from_value(payload).map_err(D::Error::custom)?)
            }
            "date" => {
                RollupResult::Date(serde_json::from_value(payload).map_err(D::Error::custom)?)
            }
            "array" => {
                RollupResult::Array(serde_json::from_value(payload).map_err(D::Error::custom)?)
            }
            _ => RollupResult::Other { kind, raw: payload },
        };
        Ok(Self { function, result })
    }
}

impl Serialize for RollupValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(Some(3))?;
        match &self.result {
            RollupResult::Number(n) => {
                m.serialize_entry("type", "number")?;
                m.serialize_entry("number", &Num(n))?;
            }
            RollupResult::Date(d) => {
                m.serialize_entry("type", "date")?;
                m.serialize_entry("date", d)?;
            }
            RollupResult::Array(a) => {
                m.serialize_entry("type", "array")?;
                m.serialize_entry("array", a)?;
            }
            RollupResult::Other { kind, raw } => {
                m.serialize_entry("type", kind)?;
                m.serialize_entry(kind, raw)?;
            }
        }
        m.serialize_entry("function", &self.function)?;
        m.end()
    }
}

/// A unique id value, e.g. `TASK-42`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueIdValue {
    /// The number.
    pub number: Option<i64>,
    /// The prefix, if the property has one.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl fmt::Display for UniqueIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.prefix, self.number) {
            (Some(p), Some(n)) => write!(f, "{p}-{n}"),
            (None, Some(n)) => write!(f, "{n}"),
            (Some(p), None) => f.write_str(p),
            (None, None) => Ok(()),
        }
    }
}

/// A verification (wiki page) value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationValue {
    /// `verified`, `unverified` …
    pub state: String,
    /// Who verified it.
    #[serde(default)]
    pub verified_by: Option<User>,
    /// Verification validity.
    #[serde(default)]
    pub date: Option<DateValue>,
}

/// One page property value. Every type Notion documents is typed; others
/// (and future types) are kept as `Unknown` with their raw JSON.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum PropertyValue {
    Title {
        id: String,
        title: Vec<RichText>,
    },
    RichText {
        id: String,
        rich_text: Vec<RichText>,
    },
    Number {
        id: String,
        number: Option<f64>,
    },
    Select {
        id: String,
        select: Option<SelectOption>,
    },
    MultiSelect {
        id: String,
        multi_select: Vec<SelectOption>,
    },
    Status {
        id: String,
        status: Option<SelectOption>,
    },
    Date {
        id: String,
        date: Option<DateValue>,
    },
    People {
        id: String,
        people: Vec<User>,
    },
    Files {
        id: String,
        files: Vec<FileRef>,
    },
    Checkbox {
        id: String,
        checkbox: bool,
    },
    Url {
        id: String,
        url: Option<String>,
    },
    Email {
        id: String,
        email: Option<String>,
    },
    PhoneNumber {
        id: String,
        phone_number: Option<String>,
    },
    Formula {
        id: String,
        formula: FormulaValue,
    },
    /// `has_more` is true when Notion truncated the list (over 25 relations).
    Relation {
        id: String,
        relation: Vec<NotionId>,
        has_more: bool,
    },
    Rollup {
        id: String,
        rollup: RollupValue,
    },
    CreatedTime {
        id: String,
        created_time: DateTime<Utc>,
    },
    CreatedBy {
        id: String,
        created_by: User,
    },
    LastEditedTime {
        id: String,
        last_edited_time: DateTime<Utc>,
    },
    LastEditedBy {
        id: String,
        last_edited_by: User,
    },
    UniqueId {
        id: String,
        unique_id: UniqueIdValue,
    },
    Verification {
        id: String,
        verification: Option<VerificationValue>,
    },
    Button {
        id: String,
    },
    /// A type this crate does not model; the whole property object as sent.
    Unknown {
        raw: Value,
    },
}

#[derive(Deserialize, Serialize)]
struct RelationRef {
    id: NotionId,
}

fn payload<T: serde::de::DeserializeOwned>(kind: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("`{kind}` property value: {e}"))
}

impl PropertyValue {
    /// Parses one property value object (`{"id", "type", "<type>": …}`).
    pub fn from_json(value: Value) -> Result<Self, String> {
        let Value::Object(mut map) = value else {
            return Err("property value: expected an object".to_owned());
        };
        let Some(kind) = map.get("type").and_then(Value::as_str).map(str::to_owned) else {
            return Ok(Self::Unknown {
                raw: Value::Object(map),
            });
        };
        let id = map
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let take = |map: &mut Map<String, Value>| map.remove(&kind).unwrap_or(Value::Null);
        let k = kind.as_str();
        Ok(match k {
            "title" => Self::Title {
                title: payload(k, take(&mut map))?,
                id,
            },
            "rich_text" => Self::RichText {
                rich_text: payload(k, take(&mut map))?,
                id,
            },
            "number" => Self::Number {
                number: payload(k, take(&mut map))?,
                id,
            },
            "select" => Self::Select {
                select: payload(k, take(&mut map))?,
                id,
            },
            "multi_select" => Self::MultiSelect {
                multi_select: payload(k, take(&mut map))?,
                id,
            },
            "status" => Self::Status {
                status: payload(k, take(&mut map))?,
                id,
            },
            "date" => Self::Date {
                date: payload(k, take(&mut map))?,
                id,
            },
            "people" => Self::People {
                people: payload(k, take(&mut map))?,
                id,
            },
            "files" => Self::Files {
                files: payload(k, take(&mut map))?,
                id,
            },
            "checkbox" => Self::Checkbox {
                checkbox: payload(k, take(&mut map))?,
                id,
            },
            "url" => Self::Url {
                url: payload(k, take(&mut map))?,
                id,
            },
            "email" => Self::Email {
                email: payload(k, take(&mut map))?,
                id,
            },
            "phone_number" => Self::PhoneNumber {
                phone_number: payload(k, take(&mut map))?,
                id,
            },
            "formula" => Self::Formula {
                formula: payload(k, take(&mut map))?,
                id,
            },
            "relation" => {
                let refs: Vec<RelationRef> = payload(k, take(&mut map))?;
                Self::Relation {
                    relation: refs.into_iter().map(|r| r.id).collect(),
                    has_more: map
                        .get("has_more")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    id,
                }
            }
            "rollup" => Self::Rollup {
                rollup: payload(k, take(&mut map))?,
                id,
            },
            "created_time" => Self::CreatedTime {
                created_time: payload(k, take(&mut map))?,
                id,
            },
            "created_by" => Self::CreatedBy {
                created_by: payload(k, take(&mut map))?,
                id,
            },
            "last_edited_time" => Self::LastEditedTime {
                last_edited_time: payload(k, take(&mut map))?,
                id,
            },
            "last_edited_by" => Self::LastEditedBy {
                last_edited_by: payload(k, take(&mut map))?,
                id,
            },
            "unique_id" => Self::UniqueId {
                unique_id: payload(k, take(&mut map))?,
                id,
            },
            "verification" => Self::Verification {
                verification: payload(k, take(&mut map))?,
                id,
            },
            "button" => Self::Button { id },
            _ => Self::Unknown {
                raw: Value::Object(map),
            },
        })
    }

    /// The property id (`title`, `%3AUPp` …), if present.
    pub fn id(&self) -> Option<&str> {
        let id = match self {
            Self::Title { id, .. }
            | Self::RichText { id, .. }
            | Self::Number { id, .. }
            | Self::Select { id, .. }
            | Self::MultiSelect { id, .. }
            | Self::Status { id, .. }
            | Self::Date { id, .. }
            | Self::People { id, .. }
            | Self::Files { id, .. }
            | Self::Checkbox { id, .. }
            | Self::Url { id, .. }
            | Self::Email { id, .. }
            | Self::PhoneNumber { id, .. }
            | Self::Formula { id, .. }
            | Self::Relation { id, .. }
            | Self::Rollup { id, .. }
            | Self::CreatedTime { id, .. }
            | Self::CreatedBy { id, .. }
            | Self::LastEditedTime { id, .. }
            | Self::LastEditedBy { id, .. }
            | Self::UniqueId { id, .. }
            | Self::Verification { id, .. }
            | Self::Button { id } => id.as_str(),
            Self::Unknown { raw } => return raw.get("id").and_then(Value::as_str),
        };
        (!id.is_empty()).then_some(id)
    }

    /// The `type` string.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Title { .. } => "title",
            Self::RichText { .. } => "rich_text",
            Self::Number { .. } => "number",
            Self::Select { .. } => "select",
            Self::MultiSelect { .. } => "multi_select",
            Self::Status { .. } => "status",
            Self::Date { .. } => "date",
            Self::People { .. } => "people",
            Self::Files { .. } => "files",
            Self::Checkbox { .. } => "checkbox",
            Self::Url { .. } => "url",
            Self::Email { .. } => "email",
            Self::PhoneNumber { .. } => "phone_number",
            Self::Formula { .. } => "formula",
            Self::Relation { .. } => "relation",
            Self::Rollup { .. } => "rollup",
            Self::CreatedTime { .. } => "created_time",
            Self::CreatedBy { .. } => "created_by",
            Self::LastEditedTime { .. } => "last_edited_time",
            Self::LastEditedBy { .. } => "last_edited_by",
            Self::UniqueId { .. } => "unique_id",
            Self::Verification { .. } => "verification",
            Self::Button { .. } => "button",
            Self::Unknown { raw } => raw.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The chosen option name of a status **or** select property.
    pub fn status_name(&self) -> Option<&str> {
        match self {
            Self::Status {
                status: Some(o), ..
            }
            | Self::Select {
                select: Some(o), ..
            } => Some(&o.name),
            _ => None,
        }
    }

    /// The value of a date property (or of a date formula).
    pub fn date(&self) -> Option<&DateValue> {
        match self {
            Self::Date { date, .. } => date.as_ref(),
            Self::Formula {
                formula: FormulaValue::Date { date },
                ..
            } => date.as_ref(),
            _ => None,
        }
    }

    /// A plain-text rendering for text-like values: title and rich text
    /// (concatenated `plain_text`), url, email, phone, select/status name,
    /// multi-select names joined by `, `, number, checkbox, date start,
    /// unique id (`PREFIX-n`), string/number/boolean formulas. `None` for
    /// empty values and for types without a natural text form.
    pub fn plain_text(&self) -> Option<String> {
        match self {
            Self::Title { title: t, .. } | Self::RichText { rich_text: t, .. } => {
                Some(plain_text(t))
            }
            Self::Url { url: s, .. }
            | Self::Email { email: s, .. }
            | Self::PhoneNumber {
                phone_number: s, ..
            } => s.clone(),
            Self::Select { select: o, .. } | Self::Status { status: o, .. } => {
                o.as_ref().map(|o| o.name.clone())
            }
            Self::MultiSelect { multi_select, .. } => Some(
                multi_select
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Self::Number { number, .. } => number.map(|n| n.to_string()),
            Self::Checkbox { checkbox, .. } => Some(checkbox.to_string()),
            Self::Date { date, .. } => date.as_ref().map(|d| d.start.to_string()),
            Self::UniqueId { unique_id, .. } => Some(unique_id.to_string()),
            Self::Formula { formula, .. } => match formula {
                FormulaValue::String { string } => string.clone(),
                FormulaValue::Number { number } => number.map(|n| n.to_string()),
                FormulaValue::Boolean { boolean } => boolean.map(|b| b.to_string()),
                FormulaValue::Date { date } => date.as_ref().map(|d| d.start.to_string()),
            },
            _ => None,
        }
    }

    /// The value object (`{"id", "type", "<type>": …}`) as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Self::from_json(v).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PropertyValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Self::Unknown { raw } = self {
            return raw.serialize(serializer);
        }
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("id", self.id().unwrap_or(""))?;
        let k = self.type_name();
        m.serialize_entry("type", k)?;
        match self {
            Self::Title { title: v, .. } | Self::RichText { rich_text: v, .. } => {
                m.serialize_entry(k, v)?
            }
            Self::Number { number, .. } => m.serialize_entry(k, &Num(number))?,
            Self::Select { select: v, .. } | Self::Status { status: v, .. } => {
                m.serialize_entry(k, v)?
            }
            Self::MultiSelect { multi_select, .. } => m.serialize_entry(k, multi_select)?,
            Self::Date { date, .. } => m.serialize_entry(k, date)?,
            Self::People { people, .. } => m.serialize_entry(k, people)?,
            Self::Files { files, .. } => m.serialize_entry(k, files)?,
            Self::Checkbox { checkbox, .. } => m.serialize_entry(k, checkbox)?,
            Self::Url { url: v, .. }
            | Self::Email { email: v, .. }
            | Self::PhoneNumber {
                phone_number: v, ..
            } => m.serialize_entry(k, v)?,
            Self::Formula { formula, .. } => m.serialize_entry(k, formula)?,
            Self::Relation {
                relation, has_more, ..
            } => {
                let refs: Vec<RelationRef> =
                    relation.iter().map(|id| RelationRef { id: *id }).collect();
                m.serialize_entry(k, &refs)?;
                m.serialize_entry("has_more", has_more)?;
            }
            Self::Rollup { rollup, .. } => m.serialize_entry(k, rollup)?,
            Self::CreatedTime {
                created_time: t, ..
            }
            | Self::LastEditedTime {
                last_edited_time: t,
                ..
            } => m.serialize_entry(k, &t.to_rfc3339_opts(SecondsFormat::Millis, true))?,
            Self::CreatedBy { created_by: u, .. }
            | Self::LastEditedBy {
                last_edited_by: u, ..
            } => m.serialize_entry(k, u)?,
            Self::UniqueId { unique_id, .. } => m.serialize_entry(k, unique_id)?,
            Self::Verification { verification, .. } => m.serialize_entry(k, verification)?,
            Self::Button { .. } => m.serialize_entry(k, &Map::new())?,
            Self::Unknown { .. } => {}
        }
        m.end()
    }
}

/// A page's `properties`: typed values by property name, plus the exact JSON
/// Notion returned (which is what serialization writes back).
#[derive(Debug, Clone, PartialEq)]
pub struct PageProperties {
    raw: Value,
    values: BTreeMap<String, PropertyValue>,
}

impl PageProperties {
    /// Parses a `properties` object.
    pub fn from_json(raw: Value) -> Result<Self, String> {
        let Value::Object(map) = &raw else {
            return Err("properties: expected an object".to_owned());
        };
        let mut values = BTreeMap::new();
        for (name, v) in map {
            let pv = PropertyValue::from_json(v.clone())
                .map_err(|e| format!("property {name:?}: {e}"))?;
            values.insert(name.clone(), pv);
        }
        Ok(Self { raw, values })
    }

    /// The value of the property called `name`.
    pub fn get(&self, name: &str) -> Option<&PropertyValue> {
        self.values.get(name)
    }

    /// The property whose id is `id` (ids survive renames), with its name.
    pub fn get_by_id(&self, id: &str) -> Option<(&str, &PropertyValue)> {
        self.values
            .iter()
            .find(|(_, v)| v.id() == Some(id))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Exactly what Notion returned for `properties`.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Name/value pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PropertyValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<'de> Deserialize<'de> for PageProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Self::from_json(v).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PageProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notion_dates() {
        let d = NotionDate::parse("2025-01-31").unwrap();
        assert!(d.is_date_only());
        assert_eq!(d.to_string(), "2025-01-31");
        let t = NotionDate::parse("2020-12-08T12:00:00.000+02:00").unwrap();
        assert_eq!(t.to_string(), "2020-12-08T12:00:00.000+02:00");
        assert_eq!(
            t.to_utc().unwrap().to_rfc3339(),
            "2020-12-08T10:00:00+00:00"
        );
        let z = NotionDate::parse("2020-12-08T12:00:00Z").unwrap();
        assert_eq!(z.to_string(), "2020-12-08T12:00:00.000+00:00");
        let naive = NotionDate::parse("2020-12-08T12:00:00.000").unwrap();
        assert_eq!(naive, z);
        assert!(NotionDate::parse("yesterday").is_err());
        assert!(NotionDate::parse("2025-02-30").is_err());
    }

    #[test]
    fn unknown_type_keeps_raw() {
        let raw = serde_json::json!({"id":"x","type":"place","place":{"lat":1.0}});
        let v = PropertyValue::from_json(raw.clone()).unwrap();
        assert_eq!(v.type_name(), "place");
        assert_eq!(v.id(), Some("x"));
        assert_eq!(serde_json::to_value(&v).unwrap(), raw);
    }

    #[test]
    fn malformed_known_type_is_an_error_naming_the_type() {
        let raw = serde_json::json!({"id":"x","type":"checkbox","checkbox":"yes"});
        let e = PropertyValue::from_json(raw).unwrap_err();
        assert!(e.contains("`checkbox`"), "{e}");
    }
}
