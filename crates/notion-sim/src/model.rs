//! The simulated workspace: users, databases, data source schemas, versioned pages, blocks.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use rand::prelude::*;
use serde_json::Value;
use tokio::time::Instant;

/// One run of text with Notion's annotations.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Segment {
    pub text: String,
    pub bold: bool,
    pub italic: bool,
    pub strikethrough: bool,
    pub underline: bool,
    pub code: bool,
    pub color: String,
    pub link: Option<String>,
}

impl Segment {
    pub(crate) fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            bold: false,
            italic: false,
            strikethrough: false,
            underline: false,
            code: false,
            color: "default".to_owned(),
            link: None,
        }
    }
}

pub(crate) fn plain_text(segments: &[Segment]) -> String {
    segments.iter().map(|s| s.text.as_str()).collect()
}

#[derive(Clone, Debug)]
pub(crate) struct SelectOption {
    pub id: String,
    pub name: String,
    pub color: String,
}

#[derive(Clone, Debug)]
pub(crate) struct StatusGroup {
    pub id: String,
    pub name: String,
    pub color: String,
    pub option_ids: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum PropKind {
    Title,
    RichText,
    Number,
    Select(Vec<SelectOption>),
    MultiSelect(Vec<SelectOption>),
    Status {
        options: Vec<SelectOption>,
        groups: Vec<StatusGroup>,
    },
    Date,
    People,
    Checkbox,
}

impl PropKind {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            PropKind::Title => "title",
            PropKind::RichText => "rich_text",
            PropKind::Number => "number",
            PropKind::Select(_) => "select",
            PropKind::MultiSelect(_) => "multi_select",
            PropKind::Status { .. } => "status",
            PropKind::Date => "date",
            PropKind::People => "people",
            PropKind::Checkbox => "checkbox",
        }
    }

    pub(crate) fn options(&self) -> &[SelectOption] {
        match self {
            PropKind::Select(o) | PropKind::MultiSelect(o) => o,
            PropKind::Status { options, .. } => options,
            _ => &[],
        }
    }

    pub(crate) fn empty_value(&self) -> PropValue {
        match self {
            PropKind::Title => PropValue::Title(Vec::new()),
            PropKind::RichText => PropValue::RichText(Vec::new()),
            PropKind::Number => PropValue::Number(None),
            PropKind::Select(_) => PropValue::Select(None),
            PropKind::MultiSelect(_) => PropValue::MultiSelect(Vec::new()),
            PropKind::Status { .. } => PropValue::Status(None),
            PropKind::Date => PropValue::Date(None),
            PropKind::People => PropValue::People(Vec::new()),
            PropKind::Checkbox => PropValue::Checkbox(false),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PropSchema {
    /// Notion's short, url-encoded property id (`title` for the title property).
    pub id: String,
    pub name: String,
    pub kind: PropKind,
}

impl PropSchema {
    pub(crate) fn option_by_id(&self, id: &str) -> Option<&SelectOption> {
        self.kind.options().iter().find(|o| o.id == id)
    }

    pub(crate) fn option_by_name(&self, name: &str) -> Option<&SelectOption> {
        self.kind.options().iter().find(|o| o.name == name)
    }
}

/// A date or a date-time, as Notion stores a date property's `start`/`end`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum DatePoint {
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
}

impl DatePoint {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(DatePoint::Date(d));
        }
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(DatePoint::DateTime)
    }

    pub(crate) fn render(&self) -> String {
        match self {
            DatePoint::Date(d) => d.format("%Y-%m-%d").to_string(),
            DatePoint::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        }
    }

    /// A date-only value means 00:00 UTC of that date.
    pub(crate) fn instant(&self) -> DateTime<Utc> {
        match self {
            DatePoint::Date(d) => Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)),
            DatePoint::DateTime(t) => t.with_timezone(&Utc),
        }
    }

    /// Two dates compare as dates; as soon as either side has a time, as instants.
    pub(crate) fn compare(&self, other: &DatePoint) -> Ordering {
        match (self, other) {
            (DatePoint::Date(a), DatePoint::Date(b)) => a.cmp(b),
            _ => self.instant().cmp(&other.instant()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DateValue {
    pub start: DatePoint,
    pub end: Option<DatePoint>,
    pub time_zone: Option<String>,
}

/// A page's value for one property; select-like values hold option ids, people hold user ids.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PropValue {
    Title(Vec<Segment>),
    RichText(Vec<Segment>),
    Number(Option<f64>),
    Select(Option<String>),
    MultiSelect(Vec<String>),
    Status(Option<String>),
    Date(Option<DateValue>),
    People(Vec<String>),
    Checkbox(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BlockKind {
    Paragraph,
    Heading1,
    Heading2,
    Heading3,
    Bulleted,
    Numbered,
    ToDo { checked: bool },
    Toggle,
    Quote,
    Callout,
    Code { language: String },
    Divider,
}

impl BlockKind {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            BlockKind::Paragraph => "paragraph",
            BlockKind::Heading1 => "heading_1",
            BlockKind::Heading2 => "heading_2",
            BlockKind::Heading3 => "heading_3",
            BlockKind::Bulleted => "bulleted_list_item",
            BlockKind::Numbered => "numbered_list_item",
            BlockKind::ToDo { .. } => "to_do",
            BlockKind::Toggle => "toggle",
            BlockKind::Quote => "quote",
            BlockKind::Callout => "callout",
            BlockKind::Code { .. } => "code",
            BlockKind::Divider => "divider",
        }
    }

    pub(crate) fn has_text(&self) -> bool {
        !matches!(self, BlockKind::Divider)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub id: String,
    pub kind: BlockKind,
    pub text: Vec<Segment>,
    pub children: Vec<Block>,
    pub created_time: DateTime<Utc>,
    pub last_edited_time: DateTime<Utc>,
    pub created_by: String,
    pub last_edited_by: String,
}

impl Block {
    pub(crate) fn collect_ids(blocks: &[Block], out: &mut Vec<String>) {
        for b in blocks {
            out.push(b.id.clone());
            Block::collect_ids(&b.children, out);
        }
    }

    /// Finds a block anywhere in the tree; returns it with its parent block id (None = page).
    pub(crate) fn find<'a>(
        blocks: &'a [Block],
        id: &str,
        parent: Option<&'a str>,
    ) -> Option<(&'a Block, Option<&'a str>)> {
        for b in blocks {
            if b.id == id {
                return Some((b, parent));
            }
            if let Some(found) = Block::find(&b.children, id, Some(&b.id)) {
                return Some(found);
            }
        }
        None
    }
}

/// Everything about a page that changes with an edit.
#[derive(Clone, Debug)]
pub(crate) struct PageSnapshot {
    pub last_edited_time: DateTime<Utc>,
    pub last_edited_by: String,
    pub in_trash: bool,
    pub is_locked: bool,
    pub icon: Value,
    pub cover: Value,
    pub props: HashMap<String, PropValue>,
    pub body: Arc<Vec<Block>>,
    /// This version's page JSON, valid while the schema generation matches.
    pub rendered: RenderCache,
}

/// A per-version cache of the serialized page object (without `request_id`). Cloning a
/// snapshot to edit it starts with an empty cache.
#[derive(Debug, Default)]
pub(crate) struct RenderCache(std::sync::Mutex<Option<(u64, Arc<str>)>>);

impl Clone for RenderCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl RenderCache {
    pub(crate) fn get(&self, generation: u64) -> Option<Arc<str>> {
        match &*crate::lock(&self.0) {
            Some((g, text)) if *g == generation => Some(Arc::clone(text)),
            _ => None,
        }
    }

    pub(crate) fn set(&self, generation: u64, text: Arc<str>) {
        *crate::lock(&self.0) = Some((generation, text));
    }
}

/// A committed version; `committed: None` means "since before the sim started".
#[derive(Clone, Debug)]
pub(crate) struct Version {
    pub committed: Option<Instant>,
    pub snap: Arc<PageSnapshot>,
}

#[derive(Clone, Debug)]
pub(crate) struct PageRecord {
    pub id: String,
    pub data_source_id: String,
    pub seq: u64,
    pub created_time: DateTime<Utc>,
    pub created_by: String,
    pub shared: bool,
    /// Oldest first; never empty.
    pub versions: Vec<Version>,
}

impl PageRecord {
    pub(crate) fn latest(&self) -> &Arc<PageSnapshot> {
        &self.versions[self.versions.len() - 1].snap
    }

    /// The newest version committed at least `delay` ago, as queries see it.
    pub(crate) fn visible(
        &self,
        now: Instant,
        delay: std::time::Duration,
    ) -> Option<&Arc<PageSnapshot>> {
        self.versions
            .iter()
            .rev()
            .find(|v| match v.committed {
                None => true,
                Some(at) => now.saturating_duration_since(at) >= delay,
            })
            .map(|v| &v.snap)
    }

    /// Appends a version and forgets versions no query can see any more.
    pub(crate) fn push(&mut self, snap: PageSnapshot, now: Instant, delay: std::time::Duration) {
        self.versions.push(Version {
            committed: Some(now),
            snap: Arc::new(snap),
        });
        let newest_visible = self.versions.iter().rposition(|v| match v.committed {
            None => true,
            Some(at) => now.saturating_duration_since(at) >= delay,
        });
        if let Some(idx) = newest_visible {
            self.versions.drain(..idx);
        }
    }
}

/// One comment as the workspace holds it.
#[derive(Clone, Debug)]
pub(crate) struct Comment {
    pub id: String,
    /// The page (or block) the comment is on.
    pub parent_id: String,
    /// `page_id` or `block_id`.
    pub parent_kind: &'static str,
    pub discussion_id: String,
    /// Minute-truncated, like pages'.
    pub created_time: DateTime<Utc>,
    pub created_by: String,
    pub rich_text: Vec<Segment>,
}

#[derive(Clone, Debug)]
pub(crate) enum UserKind {
    Person { email: String },
    Bot,
}

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: String,
    pub name: String,
    pub kind: UserKind,
}

#[derive(Clone, Debug)]
pub(crate) struct Database {
    pub id: String,
    pub title: String,
    pub data_source_id: String,
    pub created_time: DateTime<Utc>,
    pub last_edited_time: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct DataSource {
    pub id: String,
    pub database_id: String,
    pub title: String,
    pub emoji: String,
    pub props: Vec<PropSchema>,
    pub created_time: DateTime<Utc>,
    pub last_edited_time: DateTime<Utc>,
    pub created_by: String,
    pub last_edited_by: String,
}

impl DataSource {
    /// Looks a property up by name first, then by id (Notion accepts both).
    pub(crate) fn prop(&self, key: &str) -> Option<&PropSchema> {
        self.props
            .iter()
            .find(|p| p.name == key)
            .or_else(|| self.props.iter().find(|p| p.id == key))
    }

    pub(crate) fn prop_mut(&mut self, key: &str) -> Option<&mut PropSchema> {
        let idx = self
            .props
            .iter()
            .position(|p| p.name == key)
            .or_else(|| self.props.iter().position(|p| p.id == key))?;
        self.props.get_mut(idx)
    }

    pub(crate) fn prop_by_id(&self, id: &str) -> Option<&PropSchema> {
        self.props.iter().find(|p| p.id == id)
    }

    pub(crate) fn title_prop(&self) -> &PropSchema {
        self.props
            .iter()
            .find(|p| matches!(p.kind, PropKind::Title))
            .unwrap_or(&self.props[0])
    }
}

/// One component of a row's sort key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortValue {
    Missing,
    Num(f64),
    Text(String),
    Date(DatePoint),
    Bool(bool),
    Rank(usize),
}

impl SortValue {
    pub(crate) fn cmp_present(&self, other: &SortValue) -> Ordering {
        match (self, other) {
            (SortValue::Num(a), SortValue::Num(b)) => a.total_cmp(b),
            (SortValue::Text(a), SortValue::Text(b)) => a.cmp(b),
            (SortValue::Date(a), SortValue::Date(b)) => a.compare(b),
            (SortValue::Bool(a), SortValue::Bool(b)) => a.cmp(b),
            (SortValue::Rank(a), SortValue::Rank(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// Keyset position of a query cursor: the sort key of the first row of the next page.
#[derive(Clone, Debug)]
pub(crate) struct CursorState {
    pub data_source_id: String,
    pub fingerprint: String,
    pub key: Vec<SortValue>,
    pub seq: u64,
    /// Results the query returned before this cursor (for the per-query result limit).
    pub returned: usize,
}

const MAX_CURSORS: usize = 10_000;

/// The whole simulated workspace, guarded by one mutex.
#[derive(Debug)]
pub(crate) struct World {
    pub rng: StdRng,
    pub workspace_id: String,
    pub workspace_name: String,
    pub integration_id: String,
    pub home_page_id: String,
    pub bot: User,
    pub people: Vec<User>,
    pub databases: Vec<Database>,
    pub data_sources: Vec<DataSource>,
    pub pages: HashMap<String, PageRecord>,
    pub next_seq: u64,
    /// Block id -> page id, for `GET /v1/blocks/{id}/children`.
    pub block_index: HashMap<String, String>,
    pub cursors: HashMap<String, CursorState>,
    pub cursor_order: VecDeque<String>,
    /// Bumped by every schema change, invalidating cached page JSON.
    pub schema_gen: u64,
    pub tasks_data_source_id: String,
    /// "Tasks 2", "Tasks 3", … (`SimConfig::extra_task_databases`).
    pub extra_task_data_source_ids: Vec<String>,
    pub other_data_source_id: String,
    /// Every comment, oldest first.
    pub comments: Vec<Comment>,
    /// Blocks moved to the trash (`DELETE /v1/blocks/{id}`), by id; `block_index` keeps
    /// their page.
    pub trashed_blocks: HashMap<String, TrashedBlock>,
}

/// A block in the trash: out of its page's body, still retrievable, restorable in place.
#[derive(Clone, Debug)]
pub(crate) struct TrashedBlock {
    pub page_id: String,
    /// The parent block (None = the page itself).
    pub parent: Option<String>,
    /// Its index among the parent's children when it was trashed.
    pub index: usize,
    pub block: Block,
}

impl World {
    pub(crate) fn new_id(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    pub(crate) fn rng_index(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }

    pub(crate) fn data_source(&self, id: &str) -> Option<&DataSource> {
        self.data_sources.iter().find(|d| d.id == id)
    }

    pub(crate) fn data_source_mut(&mut self, id: &str) -> Option<&mut DataSource> {
        self.data_sources.iter_mut().find(|d| d.id == id)
    }

    pub(crate) fn database(&self, id: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.id == id)
    }

    pub(crate) fn user(&self, id: &str) -> Option<&User> {
        if self.bot.id == id {
            return Some(&self.bot);
        }
        self.people.iter().find(|u| u.id == id)
    }

    pub(crate) fn tasks(&self) -> &DataSource {
        self.data_source(&self.tasks_data_source_id)
            .unwrap_or(&self.data_sources[0])
    }

    pub(crate) fn index_blocks(&mut self, page_id: &str, blocks: &[Block]) {
        let mut ids = Vec::new();
        Block::collect_ids(blocks, &mut ids);
        for id in ids {
            self.block_index.insert(id, page_id.to_owned());
        }
    }

    /// Pages of one data source in creation order.
    pub(crate) fn pages_of(&self, data_source_id: &str) -> Vec<&PageRecord> {
        let mut pages: Vec<&PageRecord> = self
            .pages
            .values()
            .filter(|p| p.data_source_id == data_source_id)
            .collect();
        pages.sort_by_key(|p| p.seq);
        pages
    }

    pub(crate) fn store_cursor(&mut self, state: CursorState) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.cursors.insert(id.clone(), state);
        self.cursor_order.push_back(id.clone());
        while self.cursor_order.len() > MAX_CURSORS {
            if let Some(old) = self.cursor_order.pop_front() {
                self.cursors.remove(&old);
            }
        }
        id
    }
}

/// Normalises a Notion id (dashed or not, any case) to the dashed lowercase form.
pub(crate) fn normalize_id(raw: &str) -> Option<String> {
    let hex: String = raw.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_normalise() {
        assert_eq!(
            normalize_id("393abc1eedcd80F3813be205934558c6").as_deref(),
            Some("393abc1e-edcd-80f3-813b-e205934558c6")
        );
        assert_eq!(
            normalize_id("393abc1e-edcd-80f3-813b-e205934558c6").as_deref(),
            Some("393abc1e-edcd-80f3-813b-e205934558c6")
        );
        assert_eq!(normalize_id("nope"), None);
        assert_eq!(normalize_id("393abc1eedcd80f3813be205934558cz"), None);
    }

    #[test]
    fn date_points_compare_as_dates_or_instants() {
        let d = |s| DatePoint::parse(s).unwrap();
        assert_eq!(d("2024-01-02").compare(&d("2024-01-02")), Ordering::Equal);
        assert_eq!(d("2024-01-02").compare(&d("2024-01-03")), Ordering::Less);
        assert_eq!(
            d("2024-01-02").compare(&d("2024-01-02T00:00:00Z")),
            Ordering::Equal
        );
        assert_eq!(
            d("2024-01-02").compare(&d("2024-01-02T00:00:01Z")),
            Ordering::Less
        );
        assert_eq!(
            d("2024-01-02T01:00:00+02:00").compare(&d("2024-01-01T23:00:00Z")),
            Ordering::Equal
        );
        assert_eq!(
            d("2024-01-02T01:00:00+02:00").render(),
            "2024-01-02T01:00:00.000+02:00"
        );
        assert!(DatePoint::parse("2024-13-01").is_none());
    }
}
