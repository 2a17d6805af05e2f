//! The mirror users query: `pages` (properties with stale-write protection, Markdown bodies,
//! trash) and `task_transitions` (the overdue write intents are in `intents.rs`).

use chrono::{DateTime, Utc};
use notion_id::NotionId;

use crate::db;
use crate::error::StoreError;
use crate::store::Store;
use crate::time::{from_iso, to_iso, truncate_ms};
use crate::writer::{BoxFut, WriteCx, WriteOp};

/// A page's properties as read from Notion, to store in the mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageUpsert {
    /// Stored as the dashed lowercase UUID.
    pub id: NotionId,
    /// `None` for a page whose parent is a database without a data source id (stored as
    /// the empty text).
    pub data_source_id: Option<NotionId>,
    pub title: String,
    pub status: Option<String>,
    /// The due date's `start`, as Notion wrote it (`2026-11-23` or a date-time).
    pub due: Option<String>,
    pub url: String,
    pub created_time: DateTime<Utc>,
    pub last_edited_time: DateTime<Utc>,
    pub in_trash: bool,
    /// The `properties` JSON text Notion returned (must be valid JSON).
    pub properties: String,
    /// When this data was read, on Notion's clock (the response `Date` header; ours if
    /// absent). An upsert older than the stored observation is ignored (`Stale`).
    pub observed_at: DateTime<Utc>,
}

/// What [`Store::upsert_page`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// The page was not in the mirror.
    Inserted,
    /// Some mirrored column changed.
    Updated,
    /// Same content; only `observed_at` and `synced_at` moved.
    Unchanged,
    /// Older than what the mirror holds; nothing changed.
    Stale,
}

/// One `pages` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRow {
    pub id: NotionId,
    pub data_source_id: Option<NotionId>,
    pub title: String,
    pub status: Option<String>,
    pub due: Option<String>,
    pub url: String,
    pub created_time: DateTime<Utc>,
    pub last_edited_time: DateTime<Utc>,
    pub in_trash: bool,
    pub properties: String,
    pub body_markdown: Option<String>,
    pub body_hash: Option<String>,
    /// Our clock: when the row was last written.
    pub synced_at: DateTime<Utc>,
    /// Notion's clock: when the stored body was read.
    pub body_fetched_at: Option<DateTime<Utc>>,
    /// Notion's clock: when the stored properties were read.
    pub observed_at: DateTime<Utc>,
    /// The source that mirrors it.
    pub source: String,
}

/// Which pages [`Store::list_pages`] returns (ordered by due date, undated last, then id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageFilter {
    pub data_source_id: Option<NotionId>,
    /// Only these statuses (`Some(vec![])` matches nothing; pages without status never match).
    pub statuses: Option<Vec<String>>,
    /// Only pages with a due text sorting before this text (e.g. `2026-11-23` selects every
    /// earlier date, and date-times on earlier days). The engine refines time zones.
    pub due_before: Option<String>,
    pub include_trashed: bool,
    pub limit: Option<u32>,
    /// Only this source's pages.
    pub source: Option<String>,
}

/// One status the daemon wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub page_id: NotionId,
    pub from_status: Option<String>,
    pub to_status: String,
    /// e.g. `overdue`.
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// How an optional data source id is stored: the dashed UUID, or the empty text.
fn data_source_text(id: Option<&NotionId>) -> String {
    id.map(ToString::to_string).unwrap_or_default()
}

/// A [`PageUpsert`] with ids and times formatted, ready for the writer.
pub(crate) struct PreparedPage {
    id: String,
    data_source_id: String,
    title: String,
    status: Option<String>,
    due: Option<String>,
    url: String,
    created_time: String,
    last_edited_time: String,
    in_trash: bool,
    properties: String,
    observed_at: DateTime<Utc>,
    observed_iso: String,
    source: String,
}

impl PreparedPage {
    pub(crate) fn new(p: &PageUpsert, source: &str) -> Self {
        let observed_at = truncate_ms(p.observed_at);
        Self {
            source: source.to_owned(),
            id: p.id.to_string(),
            data_source_id: data_source_text(p.data_source_id.as_ref()),
            title: p.title.clone(),
            status: p.status.clone(),
            due: p.due.clone(),
            url: p.url.clone(),
            created_time: to_iso(p.created_time),
            last_edited_time: to_iso(p.last_edited_time),
            in_trash: p.in_trash,
            properties: p.properties.clone(),
            observed_at,
            observed_iso: to_iso(observed_at),
        }
    }
}

pub(crate) async fn upsert_one(
    cx: &mut WriteCx,
    p: &PreparedPage,
) -> Result<UpsertOutcome, StoreError> {
    let synced_at = to_iso(cx.now());
    let current = db::query(
        "SELECT data_source_id, title, status, due, url, created_time, last_edited_time, \
                in_trash, properties, observed_at, source \
         FROM pages WHERE id = $1",
    )
    .bind(&p.id)
    .fetch_optional(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    let Some(row) = current else {
        db::query(
            "INSERT INTO pages (id, data_source_id, title, status, due, url, created_time, \
                                last_edited_time, in_trash, properties, synced_at, observed_at, \
                                source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&p.id)
        .bind(&p.data_source_id)
        .bind(&p.title)
        .bind(&p.status)
        .bind(&p.due)
        .bind(&p.url)
        .bind(&p.created_time)
        .bind(&p.last_edited_time)
        .bind(p.in_trash)
        .bind(&p.properties)
        .bind(&synced_at)
        .bind(&p.observed_iso)
        .bind(&p.source)
        .execute(&mut cx.conn)
        .await
        .map_err(|e| cx.err(e))?;
        return Ok(UpsertOutcome::Inserted);
    };
    let stored_observed: String = row.get(9);
    if from_iso(&cx.path, &stored_observed)? > p.observed_at {
        return Ok(UpsertOutcome::Stale);
    }
    let unchanged = row.get::<String>(0) == p.data_source_id
        && row.get::<String>(1) == p.title
        && row.get::<Option<String>>(2) == p.status
        && row.get::<Option<String>>(3) == p.due
        && row.get::<String>(4) == p.url
        && row.get::<String>(5) == p.created_time
        && row.get::<String>(6) == p.last_edited_time
        && row.get::<bool>(7) == p.in_trash
        && row.get::<String>(8) == p.properties
        && row.get::<String>(10) == p.source;
    if unchanged {
        db::query("UPDATE pages SET observed_at = $2, synced_at = $3 WHERE id = $1")
            .bind(&p.id)
            .bind(&p.observed_iso)
            .bind(&synced_at)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
        return Ok(UpsertOutcome::Unchanged);
    }
    db::query(
        "UPDATE pages SET data_source_id = $2, title = $3, status = $4, due = $5, url = $6, \
             created_time = $7, last_edited_time = $8, in_trash = $9, properties = $10, \
             synced_at = $11, observed_at = $12, source = $13 \
         WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.data_source_id)
    .bind(&p.title)
    .bind(&p.status)
    .bind(&p.due)
    .bind(&p.url)
    .bind(&p.created_time)
    .bind(&p.last_edited_time)
    .bind(p.in_trash)
    .bind(&p.properties)
    .bind(&synced_at)
    .bind(&p.observed_iso)
    .bind(&p.source)
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    Ok(UpsertOutcome::Updated)
}

struct AdoptPages {
    data_source_id: String,
    source: String,
}

impl WriteOp for AdoptPages {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = db::query(
                "UPDATE pages SET source = $2 WHERE data_source_id = $1 AND source <> $2",
            )
            .bind(&self.data_source_id)
            .bind(&self.source)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected())
        })
    }
}

struct UpsertPages(Vec<PreparedPage>);

impl WriteOp for UpsertPages {
    type Output = Vec<UpsertOutcome>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(self.0.len());
            for page in &self.0 {
                out.push(upsert_one(cx, page).await?);
            }
            Ok(out)
        })
    }
}

struct SetBody {
    id: String,
    markdown: String,
    hash: String,
    fetched_at: String,
}

impl WriteOp for SetBody {
    /// `Err(PageNotFound)` is a rejection that wrote nothing.
    type Output = Result<(), StoreError>;

    fn apply<'a>(
        &'a self,
        cx: &'a mut WriteCx,
    ) -> BoxFut<'a, Result<Result<(), StoreError>, StoreError>> {
        Box::pin(async move {
            let synced_at = to_iso(cx.now());
            let done = db::query(
                "UPDATE pages SET body_markdown = $2, body_hash = $3, body_fetched_at = $4, \
                     synced_at = $5 \
                 WHERE id = $1 AND (body_fetched_at IS NULL OR body_fetched_at <= $4)",
            )
            .bind(&self.id)
            .bind(&self.markdown)
            .bind(&self.hash)
            .bind(&self.fetched_at)
            .bind(&synced_at)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            if done.rows_affected() == 1 {
                return Ok(Ok(()));
            }
            let exists: bool =
                db::query_scalar("SELECT EXISTS (SELECT 1 FROM pages WHERE id = $1)")
                    .bind(&self.id)
                    .fetch_one(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
            if exists {
                tracing::debug!(page.id = %self.id, "stale page body ignored");
                Ok(Ok(()))
            } else {
                Ok(Err(StoreError::PageNotFound {
                    id: self.id.clone(),
                }))
            }
        })
    }
}

struct MarkTrashed {
    id: String,
    observed_at: DateTime<Utc>,
    /// Only a row this source mirrors.
    source: String,
}

impl WriteOp for MarkTrashed {
    type Output = bool;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let row = db::query("SELECT in_trash, observed_at, source FROM pages WHERE id = $1")
                .bind(&self.id)
                .fetch_optional(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            let Some(row) = row else { return Ok(false) };
            let in_trash: bool = row.get(0);
            let stored: String = row.get(1);
            let source: String = row.get(2);
            if in_trash || source != self.source || from_iso(&cx.path, &stored)? > self.observed_at
            {
                return Ok(false);
            }
            db::query(
                "UPDATE pages SET in_trash = 1, observed_at = $2, synced_at = $3 WHERE id = $1",
            )
            .bind(&self.id)
            .bind(to_iso(self.observed_at))
            .bind(to_iso(cx.now()))
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(true)
        })
    }
}

pub(crate) async fn insert_transition(cx: &mut WriteCx, t: &Transition) -> Result<(), StoreError> {
    db::query(
        "INSERT INTO task_transitions (page_id, from_status, to_status, reason, at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(t.page_id.to_string())
    .bind(&t.from_status)
    .bind(&t.to_status)
    .bind(&t.reason)
    .bind(to_iso(t.at))
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    Ok(())
}

struct RecordTransition(Transition);

impl WriteOp for RecordTransition {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(insert_transition(cx, &self.0))
    }
}

/// The `pages` columns in [`PageRow`] order (a macro so queries stay `&'static str`).
macro_rules! page_columns {
    () => {
        "id, data_source_id, title, status, due, url, created_time, last_edited_time, \
         in_trash, properties, body_markdown, body_hash, synced_at, body_fetched_at, observed_at, \
         source"
    };
}

fn page_row(store: &Store, r: &db::Row) -> Result<PageRow, StoreError> {
    let path = store.path();
    let get_s = |i: usize| -> Result<String, StoreError> { r.try_get(i).map_err(|e| store.err(e)) };
    let get_o =
        |i: usize| -> Result<Option<String>, StoreError> { r.try_get(i).map_err(|e| store.err(e)) };
    let time = |i: usize| -> Result<DateTime<Utc>, StoreError> { from_iso(path, &get_s(i)?) };
    let data_source = get_s(1)?;
    Ok(PageRow {
        id: stored_id(path, &get_s(0)?)?,
        data_source_id: match data_source.as_str() {
            "" => None,
            ds => Some(stored_id(path, ds)?),
        },
        title: get_s(2)?,
        status: get_o(3)?,
        due: get_o(4)?,
        url: get_s(5)?,
        created_time: time(6)?,
        last_edited_time: time(7)?,
        in_trash: r.try_get(8).map_err(|e| store.err(e))?,
        properties: get_s(9)?,
        body_markdown: get_o(10)?,
        body_hash: get_o(11)?,
        synced_at: time(12)?,
        body_fetched_at: get_o(13)?.map(|s| from_iso(path, &s)).transpose()?,
        observed_at: time(14)?,
        source: get_s(15)?,
    })
}

/// An id read back from the database; one that does not parse means a damaged row.
fn stored_id(path: &std::path::Path, s: &str) -> Result<NotionId, StoreError> {
    NotionId::parse(s).map_err(|e| {
        StoreError::Database(crate::error::DatabaseError::corrupt(
            path,
            format!("stored id {s:?}: {e}"),
        ))
    })
}

impl Store {
    /// Stores a page's properties. Ignored (`Stale`) if the mirror holds an observation newer
    /// than `page.observed_at`; an equal one applies.
    #[tracing::instrument(skip_all, fields(page.id = %page.id), err(level = "debug"))]
    pub async fn upsert_page(&self, page: &PageUpsert) -> Result<UpsertOutcome, StoreError> {
        let mut out = self
            .write(UpsertPages(vec![PreparedPage::new(page, self.source())]))
            .await?;
        out.pop().ok_or(StoreError::Closed)
    }

    /// [`upsert_page`](Self::upsert_page) for many pages in one transaction (the reconciler
    /// stores a query page of 100 at a time).
    #[tracing::instrument(skip_all, fields(pages.count = pages.len()), err(level = "debug"))]
    pub async fn upsert_pages(
        &self,
        pages: &[PageUpsert],
    ) -> Result<Vec<UpsertOutcome>, StoreError> {
        if pages.is_empty() {
            return Ok(Vec::new());
        }
        self.write(UpsertPages(
            pages
                .iter()
                .map(|p| PreparedPage::new(p, self.source()))
                .collect(),
        ))
        .await
    }

    /// Stores a page's body. `fetched_at` is when it was read, on Notion's clock; a body
    /// fetched before the stored one is ignored. [`StoreError::PageNotFound`] if the page's
    /// properties were never stored.
    #[tracing::instrument(skip_all, fields(page.id = %id), err(level = "debug"))]
    pub async fn set_page_body(
        &self,
        id: &NotionId,
        markdown: &str,
        hash: &str,
        fetched_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(SetBody {
            id: id.to_string(),
            markdown: markdown.to_owned(),
            hash: hash.to_owned(),
            fetched_at: to_iso(fetched_at),
        })
        .await?
    }

    /// Marks a page as in the trash. True if this call changed it; false if the page is
    /// unknown, another source's (a source only trashes what it mirrors: a page out of
    /// its scope may be another's), already trashed, or the mirror holds a newer
    /// observation.
    #[tracing::instrument(skip_all, fields(page.id = %id), err(level = "debug"))]
    pub async fn mark_trashed(
        &self,
        id: &NotionId,
        observed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(MarkTrashed {
            id: id.to_string(),
            observed_at: truncate_ms(observed_at),
            source: self.source().to_owned(),
        })
        .await
    }

    /// One page, trashed or not.
    #[tracing::instrument(skip_all, fields(page.id = %id), err(level = "debug"))]
    pub async fn get_page(&self, id: &NotionId) -> Result<Option<PageRow>, StoreError> {
        let row = db::query(concat!(
            "SELECT ",
            page_columns!(),
            " FROM pages WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        row.map(|r| page_row(self, &r)).transpose()
    }

    /// The mirrored rows of `ids` (trashed or not) in one read; ids not mirrored are absent.
    #[tracing::instrument(skip_all, fields(pages = ids.len()), err(level = "debug"))]
    pub async fn get_pages(
        &self,
        ids: &[NotionId],
    ) -> Result<std::collections::HashMap<NotionId, PageRow>, StoreError> {
        if ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = db::query_text(format!(
            concat!("SELECT ", page_columns!(), " FROM pages WHERE id IN ({})"),
            self.backend().json_strings(1)
        ))
        .bind(serde_json::Value::from(list).to_string())
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| page_row(self, r).map(|p| (p.id, p)))
            .collect()
    }

    /// Pages matching `filter`, by due date (undated last), then id.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list_pages(&self, filter: PageFilter) -> Result<Vec<PageRow>, StoreError> {
        let statuses = filter
            .statuses
            .map(|s| serde_json::Value::from(s).to_string());
        let limit = filter.limit.map_or(i64::MAX, i64::from);
        let rows = db::query_text(format!(
            concat!(
                "SELECT ",
                page_columns!(),
                " FROM pages \
                 WHERE ($1 IS NULL OR data_source_id = $1) \
                   AND ($2 IS NULL OR status IN ({})) \
                   AND ($3 IS NULL OR (due IS NOT NULL AND due < $3)) \
                   AND ($4 = 1 OR in_trash = 0) \
                   AND ($6 IS NULL OR source = $6) \
                 ORDER BY due IS NULL, due, id LIMIT $5"
            ),
            self.backend().json_strings(2)
        ))
        .bind(filter.data_source_id.as_ref().map(ToString::to_string))
        .bind(statuses)
        .bind(filter.due_before)
        .bind(filter.include_trashed)
        .bind(limit)
        .bind(filter.source)
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter().map(|r| page_row(self, r)).collect()
    }

    /// Ids of the pages of one data source, sorted.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn page_ids(
        &self,
        data_source_id: &NotionId,
        include_trashed: bool,
    ) -> Result<Vec<NotionId>, StoreError> {
        let ids: Vec<String> = db::query_scalar(
            "SELECT id FROM pages WHERE data_source_id = $1 AND ($2 = 1 OR in_trash = 0) ORDER BY id",
        )
        .bind(data_source_id.to_string())
        .bind(include_trashed)
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        ids.iter().map(|s| stored_id(self.path(), s)).collect()
    }

    /// Ids of one data source's pages (not in the trash) last observed before `before`:
    /// after a full scan that started at `before`, the pages it did not see.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn page_ids_observed_before(
        &self,
        data_source_id: &NotionId,
        before: DateTime<Utc>,
    ) -> Result<Vec<NotionId>, StoreError> {
        let ids: Vec<String> = db::query_scalar(
            "SELECT id FROM pages WHERE data_source_id = $1 AND in_trash = 0 AND observed_at < $2 \
             ORDER BY id",
        )
        .bind(data_source_id.to_string())
        .bind(to_iso(before))
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        ids.iter().map(|s| stored_id(self.path(), s)).collect()
    }

    /// `(id, due)` of one data source's pages (not in the trash) that have a due date and
    /// one of `statuses`: the overdue rule's candidates, without loading whole rows.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn dues_with_status(
        &self,
        data_source_id: &NotionId,
        statuses: &[String],
    ) -> Result<Vec<(NotionId, String)>, StoreError> {
        let statuses = serde_json::Value::from(statuses.to_vec()).to_string();
        let rows = db::query_text(format!(
            "SELECT id, due FROM pages \
             WHERE data_source_id = $1 AND in_trash = 0 AND due IS NOT NULL \
               AND status IN ({}) ORDER BY due, id",
            self.backend().json_strings(2)
        ))
        .bind(data_source_id.to_string())
        .bind(statuses)
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| Ok((stored_id(self.path(), &r.get::<String>(0))?, r.get(1))))
            .collect()
    }

    /// Number of one data source's pages not in the trash.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn page_count_in(&self, data_source_id: &NotionId) -> Result<u64, StoreError> {
        let n: i64 = db::query_scalar(
            "SELECT COUNT(*) FROM pages WHERE data_source_id = $1 AND in_trash = 0",
        )
        .bind(data_source_id.to_string())
        .fetch_one(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Number of pages not in the trash (all data sources).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn page_count(&self) -> Result<u64, StoreError> {
        let n: i64 = db::query_scalar("SELECT COUNT(*) FROM pages WHERE in_trash = 0")
            .fetch_one(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Makes this handle's source the one of every row of `data_source_id` (rows read
    /// under another name: a source renamed, or the single-source `default` given a
    /// name); returns how many changed. Each data source belongs to one source.
    #[tracing::instrument(skip_all, fields(data_source.id = %data_source_id), err(level = "debug"))]
    pub async fn adopt_pages(&self, data_source_id: &NotionId) -> Result<u64, StoreError> {
        self.write(AdoptPages {
            data_source_id: data_source_id.to_string(),
            source: self.source().to_owned(),
        })
        .await
    }

    /// [`page_count`](Self::page_count) of this handle's source.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn source_page_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            db::query_scalar("SELECT COUNT(*) FROM pages WHERE in_trash = 0 AND source = $1")
                .bind(self.source())
                .fetch_one(self.readers())
                .await
                .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Appends to `task_transitions`.
    #[tracing::instrument(skip_all, fields(page.id = %t.page_id, to_status = %t.to_status), err(level = "debug"))]
    pub async fn record_transition(&self, t: &Transition) -> Result<(), StoreError> {
        self.write(RecordTransition(t.clone())).await
    }

    /// Recorded transitions (of one page, or all), oldest first.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn transitions(
        &self,
        page_id: Option<&NotionId>,
    ) -> Result<Vec<Transition>, StoreError> {
        let rows = db::query(
            "SELECT page_id, from_status, to_status, reason, at FROM task_transitions \
             WHERE ($1 IS NULL OR page_id = $1) ORDER BY at, id",
        )
        .bind(page_id.map(ToString::to_string))
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let at: String = r.get(4);
                Ok(Transition {
                    page_id: stored_id(self.path(), &r.get::<String>(0))?,
                    from_status: r.get(1),
                    to_status: r.get(2),
                    reason: r.get(3),
                    at: from_iso(self.path(), &at)?,
                })
            })
            .collect()
    }
}
