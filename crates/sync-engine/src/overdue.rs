//! The overdue rule in action: marks open, past-due tasks with `tasks.overdue_status`,
//! once per (page, due date). Owns the in-process guard set (one writer per page), the
//! write intents' protocol (intent before the PATCH, completed with the transition and
//! the PATCH response in one transaction) and the overdue pass.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration as TimeDelta, SubsecRound, Utc};
use notion_api::{
    ErrorClass, Filter, Lane as PaceLane, NotionClient, NotionDate, NotionError, NotionId, Page,
    QueryRequest,
};
use sync_store::{Lane, PageRow, StatusWrite, StoreError, Transition};

use crate::context::Ctx;
use crate::error::{JobError, ReconcileError};
use crate::job::{Job, PageSyncPayload};
use crate::notify::Notifier;
use crate::rules::{self, SchemaInfo, StatusKind, TaskView};
use crate::schema_guard::SchemaGuard;
use crate::status::SchemaState;

/// What the task rule did for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkOutcome {
    NotApplicable,
    Marked,
    /// Already written once for this due date (a person may have moved it on since).
    AlreadyWritten,
    /// Writes are paused (schema drift, unknown schema, or the rule is off).
    Paused,
    /// Another task is writing this page right now.
    Busy,
}

/// One overdue write being made: the task as read, and its due date as the intent key.
struct Write<'a> {
    page: &'a Page,
    view: &'a TaskView,
    schema: &'a SchemaInfo,
    /// When `page` was read (Notion's clock).
    observed_at: DateTime<Utc>,
    due: String,
}

pub(crate) struct Overdue {
    ctx: Arc<Ctx>,
    schema: Arc<SchemaGuard>,
    notifier: Notifier,
    /// Pages being written by this process now (page sync and reconciler may meet).
    marking: Mutex<HashSet<NotionId>>,
}

impl Overdue {
    pub(crate) fn new(ctx: Arc<Ctx>, schema: Arc<SchemaGuard>, notifier: Notifier) -> Overdue {
        Overdue {
            ctx,
            schema,
            notifier,
            marking: Mutex::new(HashSet::new()),
        }
    }

    /// Crash recovery at start: frees the pending intents a dead predecessor left (its
    /// claimant name starts with `claimant_prefix`) and queues a property read of each
    /// page, so each write is confirmed against Notion and finished now, not at the next
    /// pass. Returns how many pages.
    pub(crate) async fn resume_interrupted(
        &self,
        claimant_prefix: &str,
    ) -> Result<usize, StoreError> {
        let store = &self.ctx.store;
        let pages = store.reclaim_status_writes(claimant_prefix).await?;
        let jobs = pages
            .iter()
            .map(|&page| {
                let work = PageSyncPayload::props_check();
                Job::PageSync { page, work }.to_new_job(Lane::Interactive)
            })
            .collect();
        store.enqueue_batch(jobs).await?;
        Ok(pages.len())
    }

    /// Applies the overdue rule to a page whose state was just read from Notion.
    pub(crate) async fn apply(
        &self,
        client: &NotionClient,
        page: &Page,
        observed_at: DateTime<Utc>,
    ) -> Result<MarkOutcome, JobError> {
        let tasks = &self.ctx.config.tasks;
        if !tasks.mark_overdue || page.in_trash {
            return Ok(MarkOutcome::NotApplicable);
        }
        let Some(schema) = self.ctx.status.schema_info() else {
            return Ok(MarkOutcome::Paused);
        };
        let view = TaskView::of(page, tasks);
        if !rules::should_mark_overdue(&view, &schema, observed_at, tasks.timezone) {
            if view.status.as_deref() == Some(tasks.overdue_status.as_str()) {
                return self.record_landed(page, &view, &schema, observed_at).await;
            }
            return Ok(MarkOutcome::NotApplicable);
        }
        let Some(_guard) = MarkGuard::take(&self.marking, page.id) else {
            return Ok(MarkOutcome::Busy);
        };
        self.write(client, page, &view, &schema, observed_at).await
    }

    /// Writes `overdue_status` once per (page, due date): the intent is recorded before
    /// the PATCH and completed with the transition and the PATCH response in one
    /// transaction, so retries, restarts and echoes never write twice.
    async fn write(
        &self,
        client: &NotionClient,
        page: &Page,
        view: &TaskView,
        schema: &SchemaInfo,
        observed_at: DateTime<Utc>,
    ) -> Result<MarkOutcome, JobError> {
        let tasks = &self.ctx.config.tasks;
        let store = &self.ctx.store;
        let w = Write {
            page,
            view,
            schema,
            observed_at,
            due: view
                .due
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        // A person may have moved the task on since this state was read: the mirror
        // holds anything a webhook delivered meanwhile.
        if let Some(row) = store.get_page(&page.id).await?
            && row.observed_at > observed_at
            && !mirror_still_candidate(&row, view, schema)
        {
            return Ok(MarkOutcome::NotApplicable);
        }
        let overdue = &tasks.overdue_status;
        match store.begin_status_write(&page.id, &w.due, overdue).await? {
            StatusWrite::Done => return Ok(MarkOutcome::AlreadyWritten),
            // Another attempt (maybe `notion-sync reconcile` beside `serve`) is writing it.
            StatusWrite::InFlight => return Ok(MarkOutcome::Busy),
            StatusWrite::New => {}
            StatusWrite::Pending => {
                if let Some(outcome) = self.confirm_interrupted(client, &w).await? {
                    return Ok(outcome);
                }
            }
        }
        let body = rules::status_patch(tasks, schema.status_kind, overdue);
        let response = match self
            .ctx
            .observe(client.update_page_properties(page.id, body).await)
        {
            Ok(r) => r,
            Err(e) => return self.patch_failed(client, &w, e).await,
        };
        let at = response.date.unwrap_or_else(|| self.ctx.now());
        let upsert = self.ctx.page_upsert(&response.value, at)?;
        let transition = self.transition(&w, at, "");
        store
            .finish_status_write(&page.id, &w.due, overdue, &transition, Some(&upsert))
            .await?;
        metrics::counter!("overdue_marked_total", "source" => self.ctx.source()).increment(1);
        tracing::info!(page.id = %page.id, due = %w.due, from = ?view.status, "task marked overdue");
        self.notifier.record_marked(page.title());
        Ok(MarkOutcome::Marked)
    }

    /// A read shows the overdue status itself. If a write of ours for this due date is
    /// still pending and no longer claimed (its PATCH landed, then the writer died), it is
    /// recorded now; the status it replaced is not known any more.
    async fn record_landed(
        &self,
        page: &Page,
        view: &TaskView,
        schema: &SchemaInfo,
        observed_at: DateTime<Utc>,
    ) -> Result<MarkOutcome, JobError> {
        let store = &self.ctx.store;
        let overdue = &self.ctx.config.tasks.overdue_status;
        let Some(due) = view.due.as_ref().map(ToString::to_string) else {
            return Ok(MarkOutcome::NotApplicable);
        };
        if store.status_write(&page.id, &due, overdue).await? != Some(StatusWrite::Pending) {
            return Ok(MarkOutcome::NotApplicable);
        }
        let Some(_guard) = MarkGuard::take(&self.marking, page.id) else {
            return Ok(MarkOutcome::Busy);
        };
        match store.begin_status_write(&page.id, &due, overdue).await? {
            StatusWrite::Pending => {}
            // Its writer is alive and finishes it.
            StatusWrite::InFlight => return Ok(MarkOutcome::Busy),
            StatusWrite::Done => return Ok(MarkOutcome::AlreadyWritten),
            StatusWrite::New => {
                store.abandon_status_write(&page.id, &due, overdue).await?;
                return Ok(MarkOutcome::NotApplicable);
            }
        }
        let w = Write {
            page,
            view,
            schema,
            observed_at,
            due,
        };
        let mut transition =
            self.transition(&w, observed_at, " (confirmed after an interrupted write)");
        transition.from_status = None;
        store
            .finish_status_write(&page.id, &w.due, overdue, &transition, None)
            .await?;
        tracing::info!(page.id = %page.id, due = %w.due, "interrupted overdue write had landed: recorded");
        Ok(MarkOutcome::Marked)
    }

    /// An earlier attempt began and did not finish: its PATCH may have landed. Asks
    /// Notion (a GET sees writes at once; a query may lag) before writing again.
    /// `Some` ends the write: it had landed (recorded now), or the task moved on.
    async fn confirm_interrupted(
        &self,
        client: &NotionClient,
        w: &Write<'_>,
    ) -> Result<Option<MarkOutcome>, JobError> {
        let tasks = &self.ctx.config.tasks;
        let store = &self.ctx.store;
        let id = w.page.id;
        let overdue = &tasks.overdue_status;
        let fresh = self.ctx.observe(client.retrieve_page(id).await)?;
        let at = fresh.date.unwrap_or_else(|| self.ctx.now());
        let now_view = TaskView::of(&fresh.value, tasks);
        let upsert = self.ctx.page_upsert(&fresh.value, at)?;
        if now_view.due == w.view.due && now_view.status.as_deref() == Some(overdue.as_str()) {
            let transition = self.transition(w, at, " (confirmed after an interrupted write)");
            store
                .finish_status_write(&id, &w.due, overdue, &transition, Some(&upsert))
                .await?;
            tracing::info!(page.id = %id, due = %w.due, "interrupted overdue write had landed: recorded");
            return Ok(Some(MarkOutcome::Marked));
        }
        if now_view.due != w.view.due
            || !rules::should_mark_overdue(&now_view, w.schema, at, tasks.timezone)
        {
            store.upsert_page(&upsert).await?;
            store.abandon_status_write(&id, &w.due, overdue).await?;
            return Ok(Some(MarkOutcome::NotApplicable));
        }
        Ok(None)
    }

    /// The PATCH failed: a task deleted, unshared or trashed since it was read has nothing
    /// to mark; a write that may have landed is confirmed by the next attempt; a
    /// validation error re-reads the schema (which pauses writes on drift).
    async fn patch_failed(
        &self,
        client: &NotionClient,
        w: &Write<'_>,
        e: NotionError,
    ) -> Result<MarkOutcome, JobError> {
        let store = &self.ctx.store;
        let id = w.page.id;
        let overdue = &self.ctx.config.tasks.overdue_status;
        match e.class() {
            ErrorClass::NotFound => {
                store.abandon_status_write(&id, &w.due, overdue).await?;
                self.ctx.page_gone(&id, self.ctx.now()).await?;
                Ok(MarkOutcome::NotApplicable)
            }
            ErrorClass::Validation => {
                store.abandon_status_write(&id, &w.due, overdue).await?;
                // Trashed since it was read ("Can't edit block that is archived")?
                match self.ctx.observe(client.retrieve_page(id).await) {
                    Ok(fresh) if fresh.value.in_trash || fresh.value.archived => {
                        let at = fresh.date.unwrap_or_else(|| self.ctx.now());
                        self.ctx.mirror(&fresh.value, at).await?;
                        tracing::info!(page.id = %id, "task trashed before its overdue write: nothing to mark");
                        return Ok(MarkOutcome::NotApplicable);
                    }
                    Err(gone) if gone.class() == ErrorClass::NotFound => {
                        self.ctx.page_gone(&id, self.ctx.now()).await?;
                        return Ok(MarkOutcome::NotApplicable);
                    }
                    // Trashed when the PATCH came and restored since: the rule decides
                    // again on the next attempt (the intent is abandoned, nothing landed).
                    Ok(fresh) if e.message().contains("archived") => {
                        let at = fresh.date.unwrap_or_else(|| self.ctx.now());
                        self.ctx.mirror(&fresh.value, at).await?;
                        tracing::info!(page.id = %id, "task restored from the trash during its overdue write: retrying");
                        return Err(JobError::Retry(format!(
                            "page {id} was in the trash when its overdue write came and is restored now"
                        )));
                    }
                    _ => {}
                }
                if let Some(ds) = w.page.data_source_id() {
                    let _ = self.schema.check(ds, PaceLane::Interactive).await;
                }
                Err(e.into())
            }
            _ => {
                // It may or may not have landed: the next attempt confirms first.
                store.release_status_write(&id, &w.due, overdue).await?;
                Err(e.into())
            }
        }
    }

    /// The `task_transitions` row for a write, made at `at` (Notion's clock).
    fn transition(&self, w: &Write<'_>, at: DateTime<Utc>, note: &str) -> Transition {
        let tasks = &self.ctx.config.tasks;
        let today = rules::today(w.observed_at, tasks.timezone);
        Transition {
            page_id: w.page.id,
            from_status: w.view.status.clone(),
            to_status: tasks.overdue_status.clone(),
            reason: format!("due {} is before {today} ({}){note}", w.due, tasks.timezone),
            at: at.trunc_subsecs(3),
        }
    }

    /// Marks open, past-due tasks. The mirror (just refreshed) says whether any
    /// candidate exists; only then does a filtered query fetch fresh state to act on.
    /// Returns (marked, query requests).
    pub(crate) async fn pass(
        &self,
        ds: NotionId,
        notion_now: DateTime<Utc>,
        client: &NotionClient,
    ) -> Result<(u64, u64), ReconcileError> {
        let tasks = &self.ctx.config.tasks;
        if !tasks.mark_overdue {
            return Ok((0, 0));
        }
        let Some(schema) = self.ctx.status.schema_info() else {
            if let SchemaState::Drift(problems) = self.ctx.status.schema() {
                tracing::debug!(?problems, "overdue pass skipped: schema drift");
            }
            return Ok((0, 0));
        };
        let today = rules::today(notion_now, tasks.timezone);
        let store = &self.ctx.store;
        let mut candidates = 0;
        for (id, due) in store.dues_with_status(&ds, &schema.open_statuses).await? {
            let Ok(due) = due.parse::<NotionDate>() else {
                continue;
            };
            if !rules::is_past_due(&due, notion_now, tasks.timezone) {
                continue;
            }
            if store
                .status_write(&id, &due.to_string(), &tasks.overdue_status)
                .await?
                == Some(StatusWrite::Done)
            {
                continue;
            }
            candidates += 1;
        }
        if candidates == 0 {
            return Ok((0, 0));
        }
        let status_filters: Vec<Filter> = schema
            .open_statuses
            .iter()
            .map(|s| match schema.status_kind {
                StatusKind::Status => Filter::status(&tasks.status_property).equals(s),
                StatusKind::Select => Filter::select(&tasks.status_property).equals(s),
            })
            .collect();
        // Superset on the server (its date semantics are UTC); exact rule applied here.
        let bound = NotionDate::Date(today + TimeDelta::days(1));
        let filter = Filter::and(vec![
            Filter::or(status_filters),
            Filter::date(&tasks.due_property).on_or_before(bound),
        ]);
        let mut request = QueryRequest {
            filter: Some(filter),
            page_size: Some(100),
            ..QueryRequest::default()
        };
        let (mut marked, mut queries) = (0, 0);
        let mut seen: HashSet<NotionId> = HashSet::new();
        loop {
            let response = self
                .ctx
                .observe(client.query_data_source(ds, &request).await)?;
            queries += 1;
            let observed_at = response.date.unwrap_or(notion_now);
            for page in &response.value.results {
                if !seen.insert(page.id) {
                    continue;
                }
                let view = TaskView::of(page, tasks);
                if !rules::should_mark_overdue(&view, &schema, observed_at, tasks.timezone) {
                    continue;
                }
                match self.apply(client, page, observed_at).await {
                    Ok(MarkOutcome::Marked) => marked += 1,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(page.id = %page.id, error = %e, "marking overdue failed; the next pass retries");
                    }
                }
            }
            if response.value.is_incomplete() {
                // Those marked now leave the candidates, so the next pass reaches the rest.
                tracing::warn!(data_source.id = %ds, "more overdue candidates than one query returns: the rest on the next pass");
            }
            match (response.value.has_more, response.value.next_cursor) {
                (true, Some(cursor)) => request.start_cursor = Some(cursor),
                _ => break,
            }
        }
        Ok((marked, queries))
    }
}

/// Whether the mirror still shows the task as an overdue candidate with the same due date.
fn mirror_still_candidate(row: &PageRow, view: &TaskView, schema: &SchemaInfo) -> bool {
    let due = view.due.as_ref().map(ToString::to_string);
    !row.in_trash
        && row.due == due
        && row
            .status
            .as_ref()
            .is_some_and(|s| schema.open_statuses.contains(s))
}

/// An in-process claim on writing one page (page sync and reconciler may meet).
struct MarkGuard<'a> {
    set: &'a Mutex<HashSet<NotionId>>,
    id: NotionId,
}

impl<'a> MarkGuard<'a> {
    fn take(set: &'a Mutex<HashSet<NotionId>>, id: NotionId) -> Option<Self> {
        // Release the lock before a guard can exist: dropping one locks the set again.
        let inserted = set.lock().expect("lock").insert(id);
        inserted.then(|| MarkGuard { set, id })
    }
}

impl Drop for MarkGuard<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("lock").remove(&self.id);
    }
}
