//! The reconciler: incremental passes by `last_edited_time` on Notion's clock, full scans
//! that resume after a restart and find deletions, then the overdue pass. Owns the
//! one-pass-at-a-time lock and the pass's progress in health.

mod apply;
mod watermark;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use notion_api::{Direction, Filter, Lane as PaceLane, NotionId, QueryRequest, Sort};
use serde::{Deserialize, Serialize};
use sync_store::Lane;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;
use crate::error::ReconcileError;
use crate::notify::Notifier;
use crate::overdue::Overdue;
use crate::query_window::{self, Next};
use crate::schema_guard::SchemaGuard;
use crate::scope::Scope;
use crate::status::{PassProgress, PassSummary};
pub(crate) use apply::mirror_results;
use watermark::ScanState;
pub(crate) use watermark::load as load_watermark;
pub use watermark::next_watermark;

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

pub(crate) struct Reconciler {
    ctx: Arc<Ctx>,
    scope: Arc<Scope>,
    schema: Arc<SchemaGuard>,
    overdue: Arc<Overdue>,
    notifier: Notifier,
    running: tokio::sync::Mutex<()>,
}

/// What the query phase of one data source's pass learned.
struct Queried {
    /// Notion's clock at the pass's first response: the next watermark's base.
    pass_start: DateTime<Utc>,
    /// Notion's clock at its last response ("today" for the overdue rule).
    notion_now: DateTime<Utc>,
    /// Rows disagreed with the schema guard's picture.
    schema_suspect: bool,
    /// Every page a full scan returned, when this process ran the whole scan (None for an
    /// incremental pass or a resumed scan).
    seen: Option<HashSet<NotionId>>,
}

/// Where one data source's pass starts.
struct Start {
    kind: PassKind,
    lower_bound: Option<DateTime<Utc>>,
    scan: Option<ScanState>,
}

impl Reconciler {
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        scope: Arc<Scope>,
        schema: Arc<SchemaGuard>,
        overdue: Arc<Overdue>,
        notifier: Notifier,
    ) -> Reconciler {
        Reconciler {
            ctx,
            scope,
            schema,
            overdue,
            notifier,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs one pass over every mirrored data source. Never two at once. Cancelling
    /// stops it at once: everything it wrote is durable, the watermark moves only on
    /// success, a full scan resumes from its last page, an unfinished overdue write is
    /// confirmed by the next pass.
    #[tracing::instrument(skip_all, fields(pass.kind = kind.as_str()))]
    pub(crate) async fn run(
        &self,
        kind: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        let Ok(_running) = self.running.try_lock() else {
            return Err(ReconcileError::AlreadyRunning);
        };
        let result = tokio::select! {
            r = self.run_locked(kind, cancel) => r,
            _ = cancel.cancelled() => Err(ReconcileError::Cancelled),
        };
        let now = self.ctx.now();
        self.ctx.status.update_reconcile(|r| {
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
        metrics::counter!("reconcile_runs_total", "kind" => kind.as_str(), "outcome" => outcome, "source" => self.ctx.source())
            .increment(1);
        if let Ok(summary) = &result {
            // Pages a pass found changed: edits are happening (alerting compares it with
            // webhook traffic).
            metrics::counter!("reconcile_pages_updated_total", "source" => self.ctx.source())
                .increment(summary.pages_updated);
        }
        if let Some(message) = self.notifier.flush() {
            tracing::info!(summary = %message, "overdue summary");
        }
        result
    }

    /// Runs a pass and logs its outcome (the scheduler's entry point).
    pub(crate) async fn run_logged(&self, kind: PassKind, cancel: &CancellationToken) {
        match self.run(kind, cancel).await {
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
            Err(ReconcileError::AlreadyRunning) => tracing::info!(
                pass.kind = kind.as_str(),
                "reconcile pass skipped: one is already running"
            ),
            Err(ReconcileError::Cancelled) => {
                tracing::info!("reconcile pass cancelled by shutdown")
            }
            Err(e) => {
                tracing::error!(error = %e, error.chain = ?e, pass.kind = kind.as_str(), "reconcile pass failed")
            }
        }
    }

    /// Waits for a running pass to end (shutdown).
    pub(crate) async fn wait_idle(&self) {
        let _ = self.running.lock().await;
    }

    async fn run_locked(
        &self,
        kind: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        self.scope.ensure_identity(PaceLane::Bulk).await?;
        let sources = self.scope.data_sources().await?;
        if sources.is_empty() {
            return Err(ReconcileError::NoDataSource);
        }
        let mut total = PassSummary {
            kind: kind.as_str(),
            ..PassSummary::default()
        };
        for ds in sources {
            total.add(self.source_pass(ds, kind, cancel).await?);
        }
        Ok(total)
    }

    /// One data source: query by `last_edited_time` from its start, mirror the rows,
    /// confirm deletions after a full scan, mark overdue tasks, move the watermark.
    async fn source_pass(
        &self,
        ds: NotionId,
        requested: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        let ctx = &self.ctx;
        if self.schema.check_due() {
            self.schema.check(ds, PaceLane::Bulk).await?;
        }
        let Start {
            kind,
            lower_bound,
            mut scan,
        } = self.start(ds, requested).await?;
        let expected = ctx.store.page_count_in(&ds).await?;
        let started_local = ctx.now();
        let mut summary = PassSummary {
            kind: kind.as_str(),
            resumed: scan.is_some(),
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
        ctx.status
            .update_reconcile(|r| r.running = Some(progress(&summary)));
        let client = ctx.client_for(Lane::Bulk);
        let mut window = query_window::Window::from(lower_bound);
        let mut request = QueryRequest {
            filter: lower_bound.map(|t| Filter::last_edited_time().on_or_after(t)),
            sorts: vec![Sort::last_edited_time(Direction::Ascending)],
            page_size: Some(100),
            ..QueryRequest::default()
        };
        let mut pass_start: Option<DateTime<Utc>> = scan.as_ref().map(|s| s.started_at);
        let mut seen = (kind == PassKind::Full && scan.is_none()).then(HashSet::new);
        let mut latest_date: DateTime<Utc>;
        let mut schema_suspect = false;
        loop {
            if cancel.is_cancelled() {
                return Err(ReconcileError::Cancelled);
            }
            let response = ctx.observe(client.query_data_source(ds, &request).await)?;
            summary.query_requests += 1;
            let observed_at = response.date.unwrap_or_else(|| ctx.now());
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
            if let Some(seen) = seen.as_mut() {
                seen.extend(page.results.iter().map(|p| p.id));
            }
            schema_suspect |= apply::mirror_results(
                ctx,
                &self.schema,
                &page.results,
                observed_at,
                kind == PassKind::Full,
                &mut summary,
            )
            .await?;
            if let (Some(s), Some(last)) = (scan.as_mut(), page.results.last()) {
                s.resume_from = Some(last.last_edited_time);
                s.pages_seen = summary.pages_seen;
                watermark::save_scan(&ctx.store, &ds, s).await?;
            }
            ctx.status
                .update_reconcile(|r| r.running = Some(progress(&summary)));
            match window.advance(&mut request, &page) {
                Next::Page => {}
                Next::Done => break,
                Next::Window(from) => {
                    tracing::info!(data_source.id = %ds, from = %from, "query result limit reached: querying on from the last row's minute");
                }
                Next::Stuck(at) => {
                    return Err(ReconcileError::Invalid(format!(
                        "more pages of data source {ds} were last edited in the minute {at:?} and created in one minute than one query returns (Notion's result limit): this pass cannot read past them"
                    )));
                }
            }
        }
        let queried = Queried {
            pass_start: pass_start.expect("at least one query ran"),
            notion_now: latest_date,
            schema_suspect,
            seen,
        };
        self.finish(ds, kind, queried, &mut summary, cancel).await?;
        Ok(summary)
    }

    /// What the pass covers: a resumed or first full scan, or the requested kind.
    async fn start(&self, ds: NotionId, requested: PassKind) -> Result<Start, ReconcileError> {
        let store = &self.ctx.store;
        let watermark = watermark::load(store, &ds).await?;
        let scan = watermark::load_scan(store, &ds).await?;
        let kind = if scan.is_some() || watermark.is_none() {
            PassKind::Full
        } else {
            requested
        };
        if scan.is_some() {
            tracing::info!(data_source.id = %ds, progress = ?scan, "resuming an interrupted full scan");
        }
        let lower_bound = match (kind, &scan) {
            (PassKind::Full, Some(s)) => s.resume_from,
            (PassKind::Full, None) => None,
            (PassKind::Incremental, _) => watermark,
        };
        Ok(Start {
            kind,
            lower_bound,
            scan,
        })
    }

    /// After the query: deletions (full scan), schema re-read when rows disagreed, the
    /// overdue pass, and the watermark.
    async fn finish(
        &self,
        ds: NotionId,
        kind: PassKind,
        queried: Queried,
        summary: &mut PassSummary,
        cancel: &CancellationToken,
    ) -> Result<(), ReconcileError> {
        let ctx = &self.ctx;
        let Queried {
            pass_start,
            notion_now,
            schema_suspect,
            seen,
        } = queried;
        if kind == PassKind::Full {
            let client = ctx.client_for(Lane::Bulk);
            let scan = apply::FullScan {
                ds,
                start: pass_start,
                seen: seen.as_ref(),
            };
            summary.pages_trashed =
                apply::confirm_deletions(ctx, &self.scope, scan, &client, cancel).await?;
        }
        if schema_suspect {
            self.schema.check(ds, PaceLane::Bulk).await?;
        }
        // Status writes are what people see: they go on the interactive lane instead of
        // queueing behind the pass's own body fetches.
        let writer = ctx.client_for(Lane::Interactive);
        let (marked, overdue_queries) = self.overdue.pass(ds, notion_now, &writer).await?;
        summary.overdue_marked = marked;
        summary.query_requests += overdue_queries;
        let w = next_watermark(pass_start, ctx.config.reconcile.backstep);
        summary.watermark = Some(watermark::advance(&ctx.store, &ds, w).await?);
        metrics::gauge!("reconcile_watermark_timestamp_seconds", "source" => self.ctx.source())
            .set(w.timestamp() as f64);
        Ok(())
    }
}
