//! The reconciler: incremental passes by `last_edited_time` on Notion's clock, full
//! scans that resume after a restart and find deletions, and the overdue pass.

use std::collections::HashMap;

use chrono::{DateTime, Duration as TimeDelta, DurationRound, Utc};
use notion_api::{
    Direction, ErrorClass, Filter, Lane as PaceLane, NotionClient, NotionDate, NotionError,
    NotionId, Page, QueryRequest, Sort,
};
use serde::{Deserialize, Serialize};
use sync_store::{Lane, StatusWrite, StoreError};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, JobError, MarkOutcome, body_may_have_changed};
use crate::jobs::{PageSyncPayload, page_sync_job};
use crate::rules::{self, StatusKind, TaskView};
use crate::status::{PassProgress, PassSummary, SchemaState};

/// Which pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    /// Pages edited since the watermark.
    Incremental,
    /// Every page: finds deletions and re-checks bodies not proven current.
    Full,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Incremental => "incremental",
            PassKind::Full => "full",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("a reconcile pass is already running")]
    AlreadyRunning,
    #[error("reconcile pass cancelled (shutdown); a full scan resumes where it stopped")]
    Cancelled,
    #[error("no data source to reconcile: set notion.data_source_id or notion.database_id")]
    NoDataSource,
    #[error(transparent)]
    Notion(#[from] NotionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl From<JobError> for ReconcileError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Notion(e) => ReconcileError::Notion(e),
            JobError::Store(e) => ReconcileError::Store(e),
            JobError::Permanent(m) => ReconcileError::Invalid(m),
        }
    }
}

/// A full scan in progress, persisted after every page of results so a restart
/// continues where it stopped instead of starting over.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScanState {
    /// Notion's clock when the scan started: the watermark it will set.
    started_at: DateTime<Utc>,
    /// Every page edited before this was processed (results are sorted ascending).
    resume_from: Option<DateTime<Utc>>,
    pages_seen: u64,
}

fn watermark_key(ds: &NotionId) -> String {
    format!("watermark:{ds}")
}

fn scan_key(ds: &NotionId) -> String {
    format!("scan:{ds}")
}

/// Minute floor of Notion's clock, minus the backstep: the next pass's lower bound.
pub fn next_watermark(t: DateTime<Utc>, backstep: std::time::Duration) -> DateTime<Utc> {
    let floored = t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t);
    floored - TimeDelta::from_std(backstep).unwrap_or_default()
}

impl Engine {
    /// Runs one pass over every mirrored data source. Never two at once. Cancelling
    /// stops it at once: everything it wrote is durable, the watermark moves only on
    /// success, a full scan resumes from its last page, an unfinished overdue write is
    /// confirmed by the next pass.
    #[tracing::instrument(skip_all, fields(pass.kind = kind.as_str()))]
    pub async fn reconcile(
        &self,
        kind: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        let Ok(_running) = self.reconcile_lock().try_lock() else {
            return Err(ReconcileError::AlreadyRunning);
        };
        let result = tokio::select! {
            r = self.reconcile_locked(kind, cancel) => r,
            _ = cancel.cancelled() => Err(ReconcileError::Cancelled),
        };
        let now = self.now();
        self.status().update_reconcile(|r| {
            r.running = None;
            match &result {
                Ok(summary) => {
                    r.last_success_at = Some(now);
                    r.last_error = None;
                    r.last_summary = Some(summary.clone());
                }
                Err(ReconcileError::Cancelled) => {}
                Err(e) => r.last_error = Some(e.to_string()),
            }
        });
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("reconcile_runs_total", "kind" => kind.as_str(), "outcome" => outcome)
            .increment(1);
        if let Some(message) = self.notifier().flush() {
            tracing::info!(summary = %message, "overdue summary");
        }
        result
    }

    /// Runs a pass and logs its outcome (the scheduler's entry point).
    pub async fn reconcile_logged(&self, kind: PassKind, cancel: &CancellationToken) {
        match self.reconcile(kind, cancel).await {
            Ok(s) => tracing::info!(
                pass.kind = s.kind,
                pages_seen = s.pages_seen,
                pages_updated = s.pages_updated,
                bodies_queued = s.bodies_queued,
                pages_trashed = s.pages_trashed,
                overdue_marked = s.overdue_marked,
                query_requests = s.query_requests,
                watermark = ?s.watermark,
                "reconcile pass done"
            ),
            Err(ReconcileError::AlreadyRunning) => {
                tracing::info!(
                    pass.kind = kind.as_str(),
                    "reconcile pass skipped: one is already running"
                )
            }
            Err(ReconcileError::Cancelled) => {
                tracing::info!("reconcile pass cancelled by shutdown")
            }
            Err(e) => {
                tracing::error!(error = %e, error.chain = ?e, pass.kind = kind.as_str(), "reconcile pass failed")
            }
        }
    }

    async fn reconcile_locked(
        &self,
        kind: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        self.initialize_identity().await?;
        let sources = self.data_sources().await?;
        if sources.is_empty() {
            return Err(ReconcileError::NoDataSource);
        }
        let mut total = PassSummary {
            kind: kind.as_str(),
            ..PassSummary::default()
        };
        for ds in sources {
            let s = self.reconcile_source(ds, kind, cancel).await?;
            total.kind = s.kind;
            total.pages_seen += s.pages_seen;
            total.pages_updated += s.pages_updated;
            total.bodies_queued += s.bodies_queued;
            total.pages_trashed += s.pages_trashed;
            total.overdue_marked += s.overdue_marked;
            total.query_requests += s.query_requests;
            total.resumed |= s.resumed;
            total.watermark = s.watermark;
        }
        Ok(total)
    }

    async fn initialize_identity(&self) -> Result<(), NotionError> {
        if self.route_context().bot_user.is_none() {
            let me = self.observe(self.client().with_lane(PaceLane::Bulk).users_me().await)?;
            self.set_bot_user(me.value.id);
        }
        Ok(())
    }

    async fn reconcile_source(
        &self,
        ds: NotionId,
        requested: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        let store = self.store();
        let client = self.client_for(Lane::Bulk);
        if self.schema_check_due() {
            self.check_schema(ds, PaceLane::Bulk).await?;
        }
        let watermark = store
            .get_state(&watermark_key(&ds))
            .await?
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc));
        let scan: Option<ScanState> = store
            .get_state(&scan_key(&ds))
            .await?
            .and_then(|s| serde_json::from_str(&s).ok());
        let kind = if scan.is_some() || watermark.is_none() {
            PassKind::Full
        } else {
            requested
        };
        let resumed = scan.is_some();
        let mut scan = scan;
        if resumed {
            tracing::info!(data_source.id = %ds, progress = ?scan, "resuming an interrupted full scan");
        }
        let expected = store.page_count_in(&ds.to_string()).await?;
        let started_local = self.now();
        let mut summary = PassSummary {
            kind: kind.as_str(),
            resumed,
            pages_seen: scan.as_ref().map_or(0, |s| s.pages_seen),
            ..PassSummary::default()
        };
        let progress = |s: &PassSummary| PassProgress {
            kind: kind.as_str(),
            started_at: started_local,
            pages_seen: s.pages_seen,
            bodies_queued: s.bodies_queued,
            expected_pages: expected,
        };
        self.status()
            .update_reconcile(|r| r.running = Some(progress(&summary)));

        let lower_bound = match (kind, &scan) {
            (PassKind::Full, Some(s)) => s.resume_from,
            (PassKind::Full, None) => None,
            (PassKind::Incremental, _) => watermark,
        };
        let mut request = QueryRequest {
            filter: lower_bound.map(|t| Filter::last_edited_time().on_or_after(t)),
            sorts: vec![Sort::last_edited_time(Direction::Ascending)],
            page_size: Some(100),
            ..QueryRequest::default()
        };
        let margin = self.config().reconcile.visibility_margin;
        let mut pass_start: Option<DateTime<Utc>> = scan.as_ref().map(|s| s.started_at);
        let mut latest_date: DateTime<Utc>;
        let mut schema_suspect = false;
        loop {
            if cancel.is_cancelled() {
                return Err(ReconcileError::Cancelled);
            }
            let response = self.observe(client.query_data_source(ds, &request).await)?;
            summary.query_requests += 1;
            let observed_at = response.date.unwrap_or_else(|| self.now());
            latest_date = observed_at;
            if pass_start.is_none() {
                pass_start = Some(observed_at);
                if kind == PassKind::Full {
                    scan = Some(ScanState {
                        started_at: observed_at,
                        resume_from: None,
                        pages_seen: 0,
                    });
                }
            }
            let page = response.value;
            schema_suspect |= self
                .apply_query_results(&page.results, observed_at, margin, kind, &mut summary)
                .await?;
            if let (Some(s), Some(last)) = (scan.as_mut(), page.results.last()) {
                s.resume_from = Some(last.last_edited_time);
                s.pages_seen = summary.pages_seen;
                store
                    .set_state(
                        &scan_key(&ds),
                        &serde_json::to_string(s).expect("scan state serializes"),
                    )
                    .await?;
            }
            self.status()
                .update_reconcile(|r| r.running = Some(progress(&summary)));
            match (page.has_more, page.next_cursor) {
                (true, Some(cursor)) => request.start_cursor = Some(cursor),
                _ => break,
            }
        }
        let pass_start = pass_start.expect("at least one query ran");
        if kind == PassKind::Full {
            summary.pages_trashed = self
                .confirm_deletions(ds, pass_start, &client, cancel)
                .await?;
        }
        if schema_suspect {
            self.check_schema(ds, PaceLane::Bulk).await?;
        }
        // Status writes are what people see: they go on the interactive lane instead of
        // queueing behind the pass's own body fetches.
        let writer = self.client_for(Lane::Interactive);
        let (marked, overdue_queries) = self.overdue_pass(ds, latest_date, &writer).await?;
        summary.overdue_marked = marked;
        summary.query_requests += overdue_queries;
        let w = next_watermark(pass_start, self.config().reconcile.backstep);
        let w_text = w.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        store.set_state(&watermark_key(&ds), &w_text).await?;
        store.delete_state(&scan_key(&ds)).await?;
        summary.watermark = Some(w_text);
        metrics::gauge!("reconcile_watermark_timestamp_seconds").set(w.timestamp() as f64);
        Ok(summary)
    }

    /// Mirrors one page of query results (no per-page GET) and queues body fetches
    /// where the body may have changed. Returns whether the rows disagree with the
    /// schema guard's picture (a property missing or retyped).
    async fn apply_query_results(
        &self,
        pages: &[Page],
        observed_at: DateTime<Utc>,
        margin: std::time::Duration,
        kind: PassKind,
        summary: &mut PassSummary,
    ) -> Result<bool, ReconcileError> {
        let store = self.store();
        let tasks = &self.config().tasks;
        let mut upserts = Vec::with_capacity(pages.len());
        let mut bodies = Vec::new();
        let mut suspect = false;
        for page in pages {
            let mirror = store.get_page(&page.id.to_string()).await?;
            if body_may_have_changed(mirror.as_ref(), page, margin, kind == PassKind::Full) {
                bodies.push(page_sync_job(
                    &page.id,
                    &PageSyncPayload {
                        props: false,
                        body: true,
                        human: true,
                        event_time: None,
                    },
                    Lane::Bulk,
                ));
            }
            let status_ok = page
                .property(&tasks.status_property)
                .is_some_and(|p| p.status_name().is_some() || is_status_like(p));
            let due_ok = page
                .property(&tasks.due_property)
                .is_some_and(|p| matches!(p, notion_api::PropertyValue::Date { .. }));
            suspect |= !(status_ok && due_ok);
            upserts.push(self.page_upsert(page, observed_at)?);
        }
        let outcomes = store.upsert_pages(&upserts).await?;
        summary.pages_seen += pages.len() as u64;
        summary.pages_updated += outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    sync_store::UpsertOutcome::Inserted | sync_store::UpsertOutcome::Updated
                )
            })
            .count() as u64;
        if !bodies.is_empty() {
            summary.bodies_queued += bodies.len() as u64;
            store.enqueue_batch(bodies).await?;
            self.wake_workers();
        }
        Ok(suspect)
    }

    /// After a full scan: mirrored pages the scan did not see are confirmed with a
    /// GET (404 or in_trash → trashed; still there → mirrored again).
    async fn confirm_deletions(
        &self,
        ds: NotionId,
        scan_start: DateTime<Utc>,
        client: &NotionClient,
        cancel: &CancellationToken,
    ) -> Result<u64, ReconcileError> {
        let store = self.store();
        // Ids only: a full scan of a large workspace must not load every row.
        let unseen = store
            .page_ids_observed_before(&ds.to_string(), scan_start)
            .await?;
        let mut trashed = 0;
        for page_id in unseen {
            if cancel.is_cancelled() {
                return Err(ReconcileError::Cancelled);
            }
            let Ok(id) = NotionId::parse(&page_id) else {
                continue;
            };
            match self.observe(client.retrieve_page(id).await) {
                Ok(page) => {
                    let at = page.date.unwrap_or_else(|| self.now());
                    if self.in_scope(&page.value).await {
                        store
                            .upsert_page(&self.page_upsert(&page.value, at)?)
                            .await?;
                        trashed += u64::from(page.value.in_trash);
                    } else if store.mark_trashed(&page_id, at).await? {
                        trashed += 1;
                    }
                }
                Err(e) if e.class() == ErrorClass::NotFound => {
                    if store.mark_trashed(&page_id, self.now()).await? {
                        trashed += 1;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if trashed > 0 {
            tracing::info!(data_source.id = %ds, pages = trashed, "full scan: pages deleted or unshared without an event marked in_trash");
        }
        Ok(trashed)
    }

    /// Marks open, past-due tasks. The mirror (just refreshed) says whether any
    /// candidate exists; only then does a filtered query fetch fresh state to act on.
    /// Returns (marked, query requests).
    async fn overdue_pass(
        &self,
        ds: NotionId,
        notion_now: DateTime<Utc>,
        client: &NotionClient,
    ) -> Result<(u64, u64), ReconcileError> {
        let tasks = &self.config().tasks;
        if !tasks.mark_overdue {
            return Ok((0, 0));
        }
        let Some(schema) = self.status().schema_info() else {
            if let SchemaState::Drift(problems) = self.status().schema() {
                tracing::debug!(?problems, "overdue pass skipped: schema drift");
            }
            return Ok((0, 0));
        };
        let today = rules::today(notion_now, tasks.timezone);
        let store = self.store();
        let mut candidates = 0;
        for (id, due) in store
            .dues_with_status(&ds.to_string(), &schema.open_statuses)
            .await?
        {
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
        let mut seen: HashMap<NotionId, ()> = HashMap::new();
        loop {
            let response = self.observe(client.query_data_source(ds, &request).await)?;
            queries += 1;
            let observed_at = response.date.unwrap_or(notion_now);
            for page in &response.value.results {
                if seen.insert(page.id, ()).is_some() {
                    continue;
                }
                let view = TaskView::of(page, tasks);
                if !rules::should_mark_overdue(&view, &schema, observed_at, tasks.timezone) {
                    continue;
                }
                match self.apply_task_rule(client, page, observed_at).await {
                    Ok(MarkOutcome::Marked) => marked += 1,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(page.id = %page.id, error = %e, "marking overdue failed; the next pass retries");
                    }
                }
            }
            match (response.value.has_more, response.value.next_cursor) {
                (true, Some(cursor)) => request.start_cursor = Some(cursor),
                _ => break,
            }
        }
        Ok((marked, queries))
    }
}

fn is_status_like(p: &notion_api::PropertyValue) -> bool {
    matches!(
        p,
        notion_api::PropertyValue::Status { .. } | notion_api::PropertyValue::Select { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_floors_to_the_minute_then_steps_back() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T17:43:27.512Z")
            .unwrap()
            .with_timezone(&Utc);
        let w = next_watermark(t, std::time::Duration::from_secs(60));
        assert_eq!(w.to_rfc3339(), "2026-11-23T17:42:00+00:00");
        let w0 = next_watermark(t, std::time::Duration::ZERO);
        assert_eq!(w0.to_rfc3339(), "2026-11-23T17:43:00+00:00");
    }
}
