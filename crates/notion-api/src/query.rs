//! Data source queries: a typed filter builder, sorts, and the request body.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::NotionError;
use crate::models::NotionDate;

/// Notion accepts compound filters (`and`/`or`) nested at most this deep.
pub const MAX_FILTER_NESTING: usize = 2;

/// Largest `page_size` Notion accepts.
pub const MAX_PAGE_SIZE: u8 = 100;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest / smallest first.
    Ascending,
    /// Newest / largest first.
    Descending,
}

impl Direction {
    /// Notion's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ascending => "ascending",
            Self::Descending => "descending",
        }
    }
}

/// The two page timestamps Notion can filter and sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// `created_time`.
    CreatedTime,
    /// `last_edited_time`.
    LastEditedTime,
}

impl Timestamp {
    /// Notion's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedTime => "created_time",
            Self::LastEditedTime => "last_edited_time",
        }
    }
}

/// A condition on a select or status property.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum OptionCondition {
    Equals(String),
    DoesNotEqual(String),
    IsEmpty,
    IsNotEmpty,
}

/// A condition on a title or rich text property.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum TextCondition {
    Equals(String),
    DoesNotEqual(String),
    Contains(String),
    DoesNotContain(String),
    StartsWith(String),
    EndsWith(String),
    IsEmpty,
    IsNotEmpty,
}

/// A condition on a checkbox property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CheckboxCondition {
    Equals(bool),
    DoesNotEqual(bool),
}

/// A condition on a date property or a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum DateCondition {
    Equals(NotionDate),
    Before(NotionDate),
    After(NotionDate),
    OnOrBefore(NotionDate),
    OnOrAfter(NotionDate),
    IsEmpty,
    IsNotEmpty,
    PastWeek,
    PastMonth,
    PastYear,
    ThisWeek,
    NextWeek,
    NextMonth,
    NextYear,
}

/// The type-specific part of a property filter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PropertyCondition {
    Status(OptionCondition),
    Select(OptionCondition),
    Title(TextCondition),
    RichText(TextCondition),
    Checkbox(CheckboxCondition),
    Date(DateCondition),
}

/// A query filter. Build with [`Filter::status`], [`Filter::date`],
/// [`Filter::last_edited_time`], [`Filter::and`] …; serializes to Notion's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// A condition on one property (by name or id).
    Property {
        /// Property name or id.
        property: String,
        /// The condition.
        condition: PropertyCondition,
    },
    /// A condition on a page timestamp.
    Timestamp {
        /// Which timestamp.
        timestamp: Timestamp,
        /// The condition.
        condition: DateCondition,
    },
    /// All must match.
    And(Vec<Filter>),
    /// Any must match.
    Or(Vec<Filter>),
}

/// Builds a status or select filter.
#[derive(Debug, Clone)]
#[must_use]
pub struct StatusFilterBuilder {
    property: String,
    select: bool,
}

impl StatusFilterBuilder {
    fn done(self, c: OptionCondition) -> Filter {
        let condition = if self.select {
            PropertyCondition::Select(c)
        } else {
            PropertyCondition::Status(c)
        };
        Filter::Property {
            property: self.property,
            condition,
        }
    }
    /// The option is `name`.
    pub fn equals(self, name: impl Into<String>) -> Filter {
        self.done(OptionCondition::Equals(name.into()))
    }
    /// The option is not `name`.
    pub fn does_not_equal(self, name: impl Into<String>) -> Filter {
        self.done(OptionCondition::DoesNotEqual(name.into()))
    }
    /// No option chosen.
    pub fn is_empty(self) -> Filter {
        self.done(OptionCondition::IsEmpty)
    }
    /// Some option chosen.
    pub fn is_not_empty(self) -> Filter {
        self.done(OptionCondition::IsNotEmpty)
    }
}

/// Builds a title or rich text filter.
#[derive(Debug, Clone)]
#[must_use]
pub struct TextFilterBuilder {
    property: String,
    title: bool,
}

impl TextFilterBuilder {
    fn done(self, c: TextCondition) -> Filter {
        let condition = if self.title {
            PropertyCondition::Title(c)
        } else {
            PropertyCondition::RichText(c)
        };
        Filter::Property {
            property: self.property,
            condition,
        }
    }
    /// Text equals `s`.
    pub fn equals(self, s: impl Into<String>) -> Filter {
        self.done(TextCondition::Equals(s.into()))
    }
    /// Text differs from `s`.
    pub fn does_not_equal(self, s: impl Into<String>) -> Filter {
        self.done(TextCondition::DoesNotEqual(s.into()))
    }
    /// Text contains `s`.
    pub fn contains(self, s: impl Into<String>) -> Filter {
        self.done(TextCondition::Contains(s.into()))
    }
    /// Text does not contain `s`.
    pub fn does_not_contain(self, s: impl Into<String>) -> Filter {
        self.done(TextCondition::DoesNotContain(s.into()))
    }
    /// Text starts with `s`.
    pub fn starts_with(self, s: impl Into<String>) -> Filter {
        self.done(TextCondition::StartsWith(s.into()))
    }
    /// Text ends with `s`.
    pub fn ends_with(self, s: impl Into<String>) -> Filter {
        self.done(TextCondition::EndsWith(s.into()))
    }
    /// Text is empty.
    pub fn is_empty(self) -> Filter {
        self.done(TextCondition::IsEmpty)
    }
    /// Text is not empty.
    pub fn is_not_empty(self) -> Filter {
        self.done(TextCondition::IsNotEmpty)
    }
}

/// Builds a checkbox filter.
#[derive(Debug, Clone)]
#[must_use]
pub struct CheckboxFilterBuilder {
    property: String,
}

impl CheckboxFilterBuilder {
    /// Checked state equals `b`.
    pub fn equals(self, b: bool) -> Filter {
        Filter::Property {
            property: self.property,
            condition: PropertyCondition::Checkbox(CheckboxCondition::Equals(b)),
        }
    }
    /// Checked state differs from `b`.
    pub fn does_not_equal(self, b: bool) -> Filter {
        Filter::Property {
            property: self.property,
            condition: PropertyCondition::Checkbox(CheckboxCondition::DoesNotEqual(b)),
        }
    }
}

#[derive(Debug, Clone)]
enum DateTarget {
    Property(String),
    Timestamp(Timestamp),
}

/// Builds a date property filter or a timestamp filter. Takes a
/// [`NotionDate`], a `NaiveDate` or a `DateTime<Utc>`.
#[derive(Debug, Clone)]
#[must_use]
pub struct DateFilterBuilder {
    target: DateTarget,
}

impl DateFilterBuilder {
    fn done(self, condition: DateCondition) -> Filter {
        match self.target {
            DateTarget::Property(property) => Filter::Property {
                property,
                condition: PropertyCondition::Date(condition),
            },
            DateTarget::Timestamp(timestamp) => Filter::Timestamp {
                timestamp,
                condition,
            },
        }
    }
    /// On the date / at the instant.
    pub fn equals(self, d: impl Into<NotionDate>) -> Filter {
        self.done(DateCondition::Equals(d.into()))
    }
    /// Strictly before.
    pub fn before(self, d: impl Into<NotionDate>) -> Filter {
        self.done(DateCondition::Before(d.into()))
    }
    /// Strictly after.
    pub fn after(self, d: impl Into<NotionDate>) -> Filter {
        self.done(DateCondition::After(d.into()))
    }
    /// On or before.
    pub fn on_or_before(self, d: impl Into<NotionDate>) -> Filter {
        self.done(DateCondition::OnOrBefore(d.into()))
    }
    /// On or after.
    pub fn on_or_after(self, d: impl Into<NotionDate>) -> Filter {
        self.done(DateCondition::OnOrAfter(d.into()))
    }
    /// No date set.
    pub fn is_empty(self) -> Filter {
        self.done(DateCondition::IsEmpty)
    }
    /// A date is set.
    pub fn is_not_empty(self) -> Filter {
        self.done(DateCondition::IsNotEmpty)
    }
    /// Within the past week.
    pub fn past_week(self) -> Filter {
        self.done(DateCondition::PastWeek)
    }
    /// Within the past month.
    pub fn past_month(self) -> Filter {
        self.done(DateCondition::PastMonth)
    }
    /// Within the past year.
    pub fn past_year(self) -> Filter {
        self.done(DateCondition::PastYear)
    }
    /// Within this week.
    pub fn this_week(self) -> Filter {
        self.done(DateCondition::ThisWeek)
    }
    /// Within the next week.
    pub fn next_week(self) -> Filter {
        self.done(DateCondition::NextWeek)
    }
    /// Within the next month.
    pub fn next_month(self) -> Filter {
        self.done(DateCondition::NextMonth)
    }
    /// Within the next year.
    pub fn next_year(self) -> Filter {
        self.done(DateCondition::NextYear)
    }
}

impl Filter {
    /// A filter on a status property.
    pub fn status(property: &str) -> StatusFilterBuilder {
        StatusFilterBuilder {
            property: property.to_owned(),
            select: false,
        }
    }
    /// A filter on a select property.
    pub fn select(property: &str) -> StatusFilterBuilder {
        StatusFilterBuilder {
            property: property.to_owned(),
            select: true,
        }
    }
    /// A filter on the title property.
    pub fn title(property: &str) -> TextFilterBuilder {
        TextFilterBuilder {
            property: property.to_owned(),
            title: true,
        }
    }
    /// A filter on a rich text property.
    pub fn rich_text(property: &str) -> TextFilterBuilder {
        TextFilterBuilder {
            property: property.to_owned(),
            title: false,
        }
    }
    /// A filter on a checkbox property.
    pub fn checkbox(property: &str) -> CheckboxFilterBuilder {
        CheckboxFilterBuilder {
            property: property.to_owned(),
        }
    }
    /// A filter on a date property.
    pub fn date(property: &str) -> DateFilterBuilder {
        DateFilterBuilder {
            target: DateTarget::Property(property.to_owned()),
        }
    }
    /// A timestamp filter on `last_edited_time`.
    pub fn last_edited_time() -> DateFilterBuilder {
        DateFilterBuilder {
            target: DateTarget::Timestamp(Timestamp::LastEditedTime),
        }
    }
    /// A timestamp filter on `created_time`.
    pub fn created_time() -> DateFilterBuilder {
        DateFilterBuilder {
            target: DateTarget::Timestamp(Timestamp::CreatedTime),
        }
    }
    /// All of `v` must match.
    pub fn and(v: Vec<Filter>) -> Filter {
        Filter::And(v)
    }
    /// Any of `v` must match.
    pub fn or(v: Vec<Filter>) -> Filter {
        Filter::Or(v)
    }

    /// How many compound levels (`and`/`or`) the deepest path has.
    pub fn nesting(&self) -> usize {
        match self {
            Self::Property { .. } | Self::Timestamp { .. } => 0,
            Self::And(v) | Self::Or(v) => 1 + v.iter().map(Filter::nesting).max().unwrap_or(0),
        }
    }

    /// Checks what Notion would reject: compound filters nested deeper than
    /// [`MAX_FILTER_NESTING`], empty property names.
    pub fn validate(&self) -> Result<(), NotionError> {
        let depth = self.nesting();
        if depth > MAX_FILTER_NESTING {
            return Err(NotionError::validation(format!(
                "filter nests and/or {depth} levels deep; Notion allows {MAX_FILTER_NESTING}"
            )));
        }
        self.check_leaves()
    }

    fn check_leaves(&self) -> Result<(), NotionError> {
        match self {
            Self::Property { property, .. } if property.trim().is_empty() => {
                Err(NotionError::validation("filter names an empty property"))
            }
            Self::Property { .. } | Self::Timestamp { .. } => Ok(()),
            Self::And(v) | Self::Or(v) => v.iter().try_for_each(Filter::check_leaves),
        }
    }

    /// Notion's JSON for this filter.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Property {
                property,
                condition,
            } => {
                let (key, cond) = match condition {
                    PropertyCondition::Status(c) => ("status", option_json(c)),
                    PropertyCondition::Select(c) => ("select", option_json(c)),
                    PropertyCondition::Title(c) => ("title", text_json(c)),
                    PropertyCondition::RichText(c) => ("rich_text", text_json(c)),
                    PropertyCondition::Checkbox(c) => ("checkbox", checkbox_json(*c)),
                    PropertyCondition::Date(c) => ("date", date_json(c)),
                };
                let mut m = Map::new();
                m.insert("property".into(), json!(property));
                m.insert(key.into(), cond);
                Value::Object(m)
            }
            Self::Timestamp {
                timestamp,
                condition,
            } => {
                let mut m = Map::new();
                m.insert("timestamp".into(), json!(timestamp.as_str()));
                m.insert(timestamp.as_str().into(), date_json(condition));
                Value::Object(m)
            }
            Self::And(v) => json!({ "and": v.iter().map(Filter::to_json).collect::<Vec<_>>() }),
            Self::Or(v) => json!({ "or": v.iter().map(Filter::to_json).collect::<Vec<_>>() }),
        }
    }
}

fn option_json(c: &OptionCondition) -> Value {
    match c {
        OptionCondition::Equals(s) => json!({ "equals": s }),
        OptionCondition::DoesNotEqual(s) => json!({ "does_not_equal": s }),
        OptionCondition::IsEmpty => json!({ "is_empty": true }),
        OptionCondition::IsNotEmpty => json!({ "is_not_empty": true }),
    }
}

fn text_json(c: &TextCondition) -> Value {
    match c {
        TextCondition::Equals(s) => json!({ "equals": s }),
        TextCondition::DoesNotEqual(s) => json!({ "does_not_equal": s }),
        TextCondition::Contains(s) => json!({ "contains": s }),
        TextCondition::DoesNotContain(s) => json!({ "does_not_contain": s }),
        TextCondition::StartsWith(s) => json!({ "starts_with": s }),
        TextCondition::EndsWith(s) => json!({ "ends_with": s }),
        TextCondition::IsEmpty => json!({ "is_empty": true }),
        TextCondition::IsNotEmpty => json!({ "is_not_empty": true }),
    }
}

fn checkbox_json(c: CheckboxCondition) -> Value {
    match c {
        CheckboxCondition::Equals(b) => json!({ "equals": b }),
        CheckboxCondition::DoesNotEqual(b) => json!({ "does_not_equal": b }),
    }
}

fn date_json(c: &DateCondition) -> Value {
    match c {
        DateCondition::Equals(d) => json!({ "equals": d.to_string() }),
        DateCondition::Before(d) => json!({ "before": d.to_string() }),
        DateCondition::After(d) => json!({ "after": d.to_string() }),
        DateCondition::OnOrBefore(d) => json!({ "on_or_before": d.to_string() }),
        DateCondition::OnOrAfter(d) => json!({ "on_or_after": d.to_string() }),
        DateCondition::IsEmpty => json!({ "is_empty": true }),
        DateCondition::IsNotEmpty => json!({ "is_not_empty": true }),
        DateCondition::PastWeek => json!({ "past_week": {} }),
        DateCondition::PastMonth => json!({ "past_month": {} }),
        DateCondition::PastYear => json!({ "past_year": {} }),
        DateCondition::ThisWeek => json!({ "this_week": {} }),
        DateCondition::NextWeek => json!({ "next_week": {} }),
        DateCondition::NextMonth => json!({ "next_month": {} }),
        DateCondition::NextYear => json!({ "next_year": {} }),
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SortKey {
    Property(String),
    Timestamp(Timestamp),
}

/// One sort criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    key: SortKey,
    direction: Direction,
}

impl Sort {
    /// Sort by a property (name or id).
    pub fn property(name: &str, dir: Direction) -> Sort {
        Sort {
            key: SortKey::Property(name.to_owned()),
            direction: dir,
        }
    }
    /// Sort by `last_edited_time`.
    pub fn last_edited_time(dir: Direction) -> Sort {
        Sort {
            key: SortKey::Timestamp(Timestamp::LastEditedTime),
            direction: dir,
        }
    }
    /// Sort by `created_time`.
    pub fn created_time(dir: Direction) -> Sort {
        Sort {
            key: SortKey::Timestamp(Timestamp::CreatedTime),
            direction: dir,
        }
    }
    /// The direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Notion's JSON for this sort.
    pub fn to_json(&self) -> Value {
        match &self.key {
            SortKey::Property(p) => json!({ "property": p, "direction": self.direction.as_str() }),
            SortKey::Timestamp(t) => {
                json!({ "timestamp": t.as_str(), "direction": self.direction.as_str() })
            }
        }
    }
}

impl Serialize for Sort {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// `POST /v1/data_sources/{id}/query`: body fields plus `filter_properties`
/// (sent as repeated query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryRequest {
    /// Filter, if any.
    pub filter: Option<Filter>,
    /// Sorts, applied in order.
    pub sorts: Vec<Sort>,
    /// Results per page (1–100; the stream defaults to 100).
    pub page_size: Option<u8>,
    /// Cursor to continue from.
    pub start_cursor: Option<String>,
    /// Property ids to include (all when empty).
    pub filter_properties: Vec<String>,
}

impl QueryRequest {
    /// An empty query (all rows).
    pub fn new() -> Self {
        Self::default()
    }
    /// With a filter.
    #[must_use]
    pub fn with_filter(mut self, f: Filter) -> Self {
        self.filter = Some(f);
        self
    }
    /// With one more sort.
    #[must_use]
    pub fn with_sort(mut self, s: Sort) -> Self {
        self.sorts.push(s);
        self
    }
    /// With a page size.
    #[must_use]
    pub fn with_page_size(mut self, n: u8) -> Self {
        self.page_size = Some(n);
        self
    }
    /// Continuing at a cursor.
    #[must_use]
    pub fn with_start_cursor(mut self, c: impl Into<String>) -> Self {
        self.start_cursor = Some(c.into());
        self
    }
    /// Returning only these property ids.
    #[must_use]
    pub fn with_filter_properties<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.filter_properties
            .extend(ids.into_iter().map(Into::into));
        self
    }

    /// Rejects what Notion would reject: bad filters, `page_size` outside 1–100.
    pub fn validate(&self) -> Result<(), NotionError> {
        if let Some(f) = &self.filter {
            f.validate()?;
        }
        if let Some(n) = self.page_size
            && !(1..=MAX_PAGE_SIZE).contains(&n)
        {
            return Err(NotionError::validation(format!(
                "page_size {n} outside 1..={MAX_PAGE_SIZE}"
            )));
        }
        Ok(())
    }

    /// The JSON body (without `filter_properties`, which go in the URL).
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        if let Some(f) = &self.filter {
            m.insert("filter".into(), f.to_json());
        }
        if !self.sorts.is_empty() {
            m.insert(
                "sorts".into(),
                Value::Array(self.sorts.iter().map(Sort::to_json).collect()),
            );
        }
        if let Some(n) = self.page_size {
            m.insert("page_size".into(), json!(n));
        }
        if let Some(c) = &self.start_cursor {
            m.insert("start_cursor".into(), json!(c));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn builders_serialize_to_notion_json() {
        let check = |f: Filter, want: Value| assert_eq!(f.to_json(), want);
        check(
            Filter::status("Status").equals("Done"),
            json!({"property":"Status","status":{"equals":"Done"}}),
        );
        check(
            Filter::select("Kind").is_empty(),
            json!({"property":"Kind","select":{"is_empty":true}}),
        );
        check(
            Filter::title("Name").contains("x"),
            json!({"property":"Name","title":{"contains":"x"}}),
        );
        check(
            Filter::rich_text("Notes").is_not_empty(),
            json!({"property":"Notes","rich_text":{"is_not_empty":true}}),
        );
        check(
            Filter::checkbox("Done").equals(true),
            json!({"property":"Done","checkbox":{"equals":true}}),
        );
        check(
            Filter::date("Due").before(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap()),
            json!({"property":"Due","date":{"before":"2025-01-31"}}),
        );
        check(
            Filter::last_edited_time()
                .on_or_after(Utc.with_ymd_and_hms(2025, 1, 31, 9, 0, 0).unwrap()),
            json!({"timestamp":"last_edited_time",
                   "last_edited_time":{"on_or_after":"2025-01-31T09:00:00.000+00:00"}}),
        );
        check(
            Filter::created_time().past_week(),
            json!({"timestamp":"created_time","created_time":{"past_week":{}}}),
        );
    }

    #[test]
    fn nesting_limit() {
        let leaf = || Filter::checkbox("Done").equals(true);
        let two = Filter::and(vec![leaf(), Filter::or(vec![leaf(), leaf()])]);
        assert_eq!(two.nesting(), 2);
        assert!(two.validate().is_ok());
        let three = Filter::or(vec![two.clone()]);
        let e = three.validate().unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::Validation);
        assert!(e.to_string().contains("3 levels"), "{e}");
        assert!(Filter::status(" ").equals("x").validate().is_err());
    }

    #[test]
    fn request_body_and_page_size() {
        let q = QueryRequest::new()
            .with_filter(Filter::status("Status").does_not_equal("Done"))
            .with_sort(Sort::last_edited_time(Direction::Ascending))
            .with_sort(Sort::property("Due", Direction::Descending))
            .with_page_size(100)
            .with_start_cursor("abc");
        assert_eq!(
            q.body(),
            json!({"filter":{"property":"Status","status":{"does_not_equal":"Done"}},
                   "sorts":[{"timestamp":"last_edited_time","direction":"ascending"},
                            {"property":"Due","direction":"descending"}],
                   "page_size":100,"start_cursor":"abc"})
        );
        assert!(q.validate().is_ok());
        assert!(QueryRequest::new().with_page_size(0).validate().is_err());
        assert!(QueryRequest::new().with_page_size(101).validate().is_err());
        assert_eq!(QueryRequest::new().body(), json!({}));
    }
}
