//! The engine handle: builds the components over one shared context and offers the few
//! entry points the binary uses (accept an event, run a job, run a pass, read health and
//! watermarks). It holds no behaviour of its own; see ARCHITECTURE.md for each
//! component's file.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use notion_api::{Lane as PaceLane, NotionClient, NotionError, NotionId, WebhookEvent};
use sync_store::{ClaimedJob, IncomingEvent, Lane, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::bulk_read::{BulkReader, BulkState};
use crate::config::EngineConfig;
use crate::context::Ctx;
use crate::error::{JobError, ReconcileError};
use crate::job::{Job, PageSyncPayload};
use crate::notify::Notifier;
use crate::overdue::Overdue;
use crate::page_sync::PageSync;
use crate::reconcile::{self, PassKind, Reconciler};
use crate::route::route_event;
use crate::schema_guard::SchemaGuard;
use crate::scope::Scope;
use crate::status::{EngineStatus, PassSummary};

/// The running engine: cheap to clone, shared by the HTTP layer, workers and scheduler.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<Ctx>,
    scope: Arc<Scope>,
    schema: Arc<SchemaGuard>,
    overdue: Arc<Overdue>,
    page_sync: PageSync,
    bulk: BulkReader,
    reconciler: Reconciler,
    notifier: Notifier,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.inner.ctx.config.name)
            .field("source", &self.inner.ctx.config.source)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        store: Store,
        client: NotionClient,
        notifier: Notifier,
    ) -> Engine {
        let ctx = Arc::new(Ctx::new(config, store, client));
        let scope = Arc::new(Scope::new(ctx.clone()));
        let schema = Arc::new(SchemaGuard::new(ctx.clone()));
        let overdue = Arc::new(Overdue::new(ctx.clone(), schema.clone(), notifier.clone()));
        let page_sync = PageSync::new(ctx.clone(), scope.clone(), overdue.clone());
        let bulk = BulkReader::new(ctx.clone(), schema.clone(), overdue.clone());
        let reconciler = Reconciler::new(
            ctx.clone(),
            scope.clone(),
            schema.clone(),
            overdue.clone(),
            notifier.clone(),
        );
        Engine {
            inner: Arc::new(Inner {
                ctx,
                scope,
                schema,
                overdue,
                page_sync,
                bulk,
                reconciler,
                notifier,
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.ctx.config
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.inner.ctx.config.name
    }

    /// The database, working for this source (its jobs, its mirror rows).
    pub fn store(&self) -> &Store {
        &self.inner.ctx.store
    }

    /// Wires the other sources in (once; `Sources::new` does).
    pub(crate) fn set_handoff(&self, handoff: std::sync::Arc<dyn crate::context::Handoff>) {
        let _ = self.inner.ctx.handoff.set(handoff);
    }

    /// The Notion client (its stats and pacer are what health reports).
    pub fn client(&self) -> &NotionClient {
        self.inner.ctx.client()
    }

    /// What health reports: schema guard, reconciler, Notion auth, storage.
    pub fn status(&self) -> &EngineStatus {
        &self.inner.ctx.status
    }

    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    /// Now, on the store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.ctx.now()
    }

    /// Learns our bot user and the data sources to mirror, then checks the schema.
    /// Safe to call again; the reconciler does until it succeeds.
    #[tracing::instrument(skip_all, err)]
    pub async fn initialize(&self) -> Result<(), NotionError> {
        self.inner
            .scope
            .ensure_identity(PaceLane::Interactive)
            .await?;
        for ds in self.inner.scope.data_sources().await? {
            self.inner.schema.check(ds, PaceLane::Interactive).await?;
            // Rows of our data source read under another source name (renamed, or the
            // single-source `default` given a name) are ours now.
            match self.store().adopt_pages(&ds).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(source = self.name(), data_source.id = %ds, pages = n, "mirror rows of this data source now say this source")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "adopting mirror rows failed; the next start retries")
                }
            }
        }
        Ok(())
    }

    /// Crash recovery at start, for a caller holding the instance lock: overdue writes a
    /// dead predecessor began (claimant names starting with `claimant_prefix`) are freed
    /// and their pages queued, so each is confirmed and finished at once. Returns how many.
    pub async fn resume_interrupted_writes(
        &self,
        claimant_prefix: &str,
    ) -> Result<usize, StoreError> {
        self.inner.overdue.resume_interrupted(claimant_prefix).await
    }

    /// A verified webhook event as the record and jobs the store commits for it (pure).
    pub fn accept(&self, event: &WebhookEvent) -> IncomingEvent {
        route_event(event, &self.inner.scope.route_context())
    }

    /// The data sources mirrored, as known now (a database's appear once discovered).
    pub fn data_sources(&self) -> Vec<NotionId> {
        self.inner.scope.route_context().data_sources
    }

    /// Whether [`data_sources`](Self::data_sources) is the whole answer (a database's are
    /// read on first use; until then the list is empty and nothing is filtered).
    pub fn data_sources_known(&self) -> bool {
        self.inner.scope.resolved()
    }

    /// Each mirrored data source with its watermark (`None` before its first pass).
    pub async fn watermarks(&self) -> Result<Vec<(NotionId, Option<DateTime<Utc>>)>, StoreError> {
        let mut out = Vec::new();
        for ds in self.data_sources() {
            out.push((ds, reconcile::load_watermark(self.store(), &ds).await?));
        }
        Ok(out)
    }

    /// Runs one claimed job to completion (the worker completes or fails it).
    pub async fn run_job(&self, job: &ClaimedJob) -> Result<(), JobError> {
        match Job::decode(job).map_err(|e| JobError::Permanent(e.to_string()))? {
            Job::PageSync { page, work } => self.inner.page_sync.run_job(job, page, &work).await,
            Job::SchemaCheck { data_source } => {
                let ours = self.data_sources();
                if !ours.is_empty() && !ours.contains(&data_source) {
                    // A check queued for another (or a removed) source's data source.
                    tracing::info!(data_source.id = %data_source, "schema check for a data source this source does not mirror: skipped");
                    return Ok(());
                }
                self.inner
                    .schema
                    .check(data_source, PaceLane::Interactive)
                    .await?;
                Ok(())
            }
        }
    }

    /// One round of bulk property reads (the worker pool's bulk task).
    pub(crate) async fn bulk_round(
        &self,
        state: &mut BulkState,
        worker: &str,
    ) -> Result<(), ReconcileError> {
        self.inner.bulk.round(state, worker).await
    }

    /// Hands the jobs the bulk reader holds back to the queue (shutdown).
    pub(crate) async fn bulk_hand_back(&self, state: &mut BulkState) {
        self.inner.bulk.hand_back(state).await
    }

    /// Syncs one page now, outside the queue (tests, tools).
    pub async fn sync_page(
        &self,
        id: NotionId,
        work: &PageSyncPayload,
        lane: Lane,
    ) -> Result<(), JobError> {
        self.inner.page_sync.sync(id, work, lane, false).await
    }

    /// Runs one reconcile pass (never two at once).
    pub async fn reconcile(
        &self,
        kind: PassKind,
        cancel: &CancellationToken,
    ) -> Result<PassSummary, ReconcileError> {
        self.inner.reconciler.run(kind, cancel).await
    }

    /// Runs a pass and logs its outcome (the scheduler's entry point).
    pub async fn reconcile_logged(&self, kind: PassKind, cancel: &CancellationToken) {
        self.inner.reconciler.run_logged(kind, cancel).await
    }

    /// Waits until no pass is running.
    pub(crate) async fn reconcile_idle(&self) {
        self.inner.reconciler.wait_idle().await
    }

    /// Records a completed job's freshness (`sync_freshness_seconds`).
    pub(crate) fn record_freshness(&self, job: &ClaimedJob) {
        self.inner.ctx.record_freshness(job);
    }

    /// Tells idle workers that new work is queued.
    pub fn wake_workers(&self) {
        self.inner.ctx.wake_workers();
    }

    /// A wake-up future; `enable()` it before checking for work.
    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.ctx.woken()
    }
}
