//! The engine handle: shared state, start-up resolution, the schema guard and the
//! page-sync job (GET page, body when it may have changed, task rule).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use notion_api::{ErrorClass, Lane as PaceLane, NotionClient, NotionError, NotionId, Page};
use sha2::{Digest, Sha256};
use sync_store::{
    ClaimedJob, Lane, PageRow, PageUpsert, StatusWrite, Store, StoreError, Transition,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{EngineConfig, Source};
use crate::jobs::{KIND_PAGE_SYNC, KIND_SCHEMA_CHECK, PageSyncPayload, RouteContext};
use crate::notify::Notifier;
use crate::recent::{Part, RecentReads};
use crate::rules::{self, SchemaInfo, TaskView};
use crate::status::{EngineStatus, SchemaState};

/// Why a job did not complete, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Notion(#[from] NotionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// Permanent failures (bad request, unauthorized, forbidden) go straight to `dead`.
    pub fn is_permanent(&self) -> bool {
        match self {
            JobError::Notion(e) => matches!(
                e.class(),
                ErrorClass::Unauthorized
                    | ErrorClass::Forbidden
                    | ErrorClass::Validation
                    | ErrorClass::NotFound
            ),
            JobError::Store(_) => false,
            JobError::Permanent(_) => true,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JobError::Notion(e) => e.retry_after(),
            _ => None,
        }
    }
}

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

/// How the body was obtained, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySource {
    Markdown,
    Blocks,
}

impl BodySource {
    fn as_str(self) -> &'static str {
        match self {
            BodySource::Markdown => "markdown",
            BodySource::Blocks => "blocks",
        }
    }
}

/// The running engine: cheap to clone, shared by the HTTP layer, workers and reconciler.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    store: Store,
    client: NotionClient,
    status: EngineStatus,
    notifier: Notifier,
    route: RwLock<RouteContext>,
    wake: Notify,
    marking: Mutex<HashSet<NotionId>>,
    markdown_off_until: Mutex<Option<Instant>>,
    recent: RecentReads,
    last_schema_check: Mutex<Option<Instant>>,
    pub(crate) reconcile_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("source", &self.inner.config.source)
            .finish_non_exhaustive()
    }
}

/// How long the markdown endpoint is skipped after it proved unavailable.
const MARKDOWN_RETRY_AFTER: Duration = Duration::from_secs(600);
/// A bot-authored event is an echo of a state we hold when our observation is at
/// most this much older than the event (the `Date` header has second resolution).
const ECHO_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

impl Engine {
    pub fn new(
        config: EngineConfig,
        store: Store,
        client: NotionClient,
        notifier: Notifier,
    ) -> Engine {
        let route = RouteContext {
            bot_user: None,
            data_sources: match config.source {
                Source::DataSource(id) => vec![id],
                Source::Database(_) => Vec::new(),
            },
        };
        Engine {
            inner: Arc::new(Inner {
                config,
                store,
                client,
                status: EngineStatus::default(),
                notifier,
                route: RwLock::new(route),
                wake: Notify::new(),
                marking: Mutex::new(HashSet::new()),
                markdown_off_until: Mutex::new(None),
                recent: RecentReads::default(),
                last_schema_check: Mutex::new(None),
                reconcile_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The client on the interactive lane.
    pub fn client(&self) -> &NotionClient {
        &self.inner.client
    }

    pub fn status(&self) -> &EngineStatus {
        &self.inner.status
    }

    pub fn notifier(&self) -> &Notifier {
        &self.inner.notifier
    }

    pub(crate) fn reconcile_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.reconcile_lock
    }

    /// Who we are and what we mirror, for routing webhook events.
    pub fn route_context(&self) -> RouteContext {
        self.inner.route.read().expect("route lock").clone()
    }

    /// Tells idle workers that new work is queued.
    pub fn wake_workers(&self) {
        self.inner.wake.notify_waiters();
    }

    /// A wake-up future; `enable()` it before checking for work.
    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.wake.notified()
    }

    pub(crate) fn client_for(&self, lane: Lane) -> NotionClient {
        match lane {
            Lane::Interactive => self.inner.client.with_lane(PaceLane::Interactive),
            Lane::Bulk => self.inner.client.with_lane(PaceLane::Bulk),
        }
    }

    /// Learns our bot user and the data sources to mirror, then checks the schema.
    /// Safe to call again; the reconciler calls it until it succeeds.
    #[tracing::instrument(skip_all, err)]
    pub async fn initialize(&self) -> Result<(), NotionError> {
        self.ensure_identity().await?;
        let sources = self.data_sources().await?;
        for ds in sources {
            self.check_schema(ds, PaceLane::Interactive).await?;
        }
        Ok(())
    }

    async fn ensure_identity(&self) -> Result<(), NotionError> {
        if self.route_context().bot_user.is_some() {
            return Ok(());
        }
        let me = self.observe(self.inner.client.users_me().await)?;
        self.set_bot_user(me.value.id);
        Ok(())
    }

    pub(crate) fn set_bot_user(&self, id: NotionId) {
        self.inner.route.write().expect("route lock").bot_user = Some(id);
    }

    /// The data sources we mirror, discovering a database's on first use.
    pub async fn data_sources(&self) -> Result<Vec<NotionId>, NotionError> {
        let known = self.route_context().data_sources;
        if !known.is_empty() {
            return Ok(known);
        }
        let Source::Database(db) = self.inner.config.source else {
            return Ok(known);
        };
        let database = self.observe(self.inner.client.retrieve_database(db).await)?;
        let ids: Vec<NotionId> = database.value.data_sources.iter().map(|d| d.id).collect();
        tracing::info!(database.id = %db, data_sources = ?ids.iter().map(ToString::to_string).collect::<Vec<_>>(), "discovered data sources");
        self.inner.route.write().expect("route lock").data_sources = ids.clone();
        Ok(ids)
    }

    /// Records authentication failures for health; passes the result through.
    pub(crate) fn observe<T>(&self, r: Result<T, NotionError>) -> Result<T, NotionError> {
        match &r {
            Ok(_) => {
                if self.inner.status.auth_error().is_some() {
                    self.inner.status.set_auth_error(None);
                }
            }
            Err(e) if e.class() == ErrorClass::Unauthorized => {
                self.inner.status.set_auth_error(Some(e.to_string()));
            }
            Err(_) => {}
        }
        r
    }

    /// Reads the data source's schema and updates the schema guard.
    #[tracing::instrument(skip_all, fields(data_source.id = %ds), err)]
    pub async fn check_schema(
        &self,
        ds: NotionId,
        lane: PaceLane,
    ) -> Result<SchemaState, NotionError> {
        let schema = self.observe(
            self.inner
                .client
                .with_lane(lane)
                .retrieve_data_source(ds)
                .await,
        )?;
        *self.inner.last_schema_check.lock().expect("lock") = Some(Instant::now());
        let state = match rules::check_schema(&schema.value, &self.inner.config.tasks) {
            Ok(info) => SchemaState::Ok(info),
            Err(problems) => SchemaState::Drift(problems),
        };
        let was = self.inner.status.schema();
        let new_problems = self.inner.status.set_schema(state.clone());
        for problem in &new_problems {
            tracing::error!(data_source.id = %ds, problem = %problem, "schema drift: task writes paused until the schema is fixed");
        }
        if matches!(was, SchemaState::Drift(_)) && matches!(state, SchemaState::Ok(_)) {
            tracing::info!(data_source.id = %ds, "schema fixed: task writes resumed");
        }
        metrics::gauge!("schema_ok").set(if matches!(state, SchemaState::Ok(_)) {
            1.0
        } else {
            0.0
        });
        Ok(state)
    }

    /// Whether the periodic schema re-read is due.
    pub(crate) fn schema_check_due(&self) -> bool {
        let last = *self.inner.last_schema_check.lock().expect("lock");
        !matches!(self.inner.status.schema(), SchemaState::Ok(_))
            || last.is_none_or(|t| t.elapsed() >= self.inner.config.reconcile.schema_check_interval)
    }

    /// Runs one claimed job to completion (the worker completes or fails it).
    pub async fn run_job(&self, job: &ClaimedJob) -> Result<(), JobError> {
        match job.kind.as_str() {
            KIND_PAGE_SYNC => {
                let id = job
                    .key
                    .strip_prefix("page:")
                    .and_then(|s| NotionId::parse(s).ok())
                    .ok_or_else(|| {
                        JobError::Permanent(format!("bad page job key {:?}", job.key))
                    })?;
                let payload = PageSyncPayload::from_json(&job.payload);
                let recent = &self.inner.recent;
                // A retry runs in full: its first attempt may have read but not finished.
                if job.attempts == 1 && recent.covers(&id, &payload, job.enqueued_at) {
                    metrics::counter!("sync_jobs_covered_total").increment(1);
                    tracing::debug!("every request already answered by an earlier read");
                    return Ok(());
                }
                self.sync_page_settled(id, &payload, job.lane, true).await
            }
            KIND_SCHEMA_CHECK => {
                let ds = job
                    .payload
                    .get("data_source_id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| NotionId::parse(s).ok())
                    .ok_or_else(|| {
                        JobError::Permanent("schema job without data_source_id".into())
                    })?;
                self.check_schema(ds, PaceLane::Interactive).await?;
                Ok(())
            }
            other => Err(JobError::Permanent(format!("unknown job kind {other:?}"))),
        }
    }

    /// The page-sync job: costs one GET when properties are asked for, one body
    /// fetch when the body may have changed, nothing for an echo we already hold.
    #[tracing::instrument(skip_all, fields(page.id = %id, job.props = payload.props, job.body = payload.body), err)]
    pub async fn sync_page(
        &self,
        id: NotionId,
        payload: &PageSyncPayload,
        lane: Lane,
    ) -> Result<(), JobError> {
        self.sync_page_settled(id, payload, lane, false).await
    }

    /// [`Engine::sync_page`]; with `settle`, a read of a part read less than
    /// [`crate::recent::SETTLE`] ago waits for the rest of that period (jobs do; requests
    /// arriving meanwhile queue behind the job and are answered by its read).
    async fn sync_page_settled(
        &self,
        id: NotionId,
        payload: &PageSyncPayload,
        lane: Lane,
        settle: bool,
    ) -> Result<(), JobError> {
        let store = &self.inner.store;
        let key = id.to_string();
        let mirror = store.get_page(&key).await?;
        if !payload.human
            && let (Some(row), Some(event_time)) = (&mirror, payload.event_time())
            && row.observed_at + ECHO_TOLERANCE >= event_time
        {
            metrics::counter!("sync_echo_skipped_total").increment(1);
            tracing::debug!("echo of our own write already mirrored");
            return Ok(());
        }
        if settle && let Some(until) = self.inner.recent.settle_until(&id, payload) {
            tokio::time::sleep_until(until).await;
        }
        let client = self.client_for(lane);
        let need_props = payload.props || mirror.is_none();
        let mut fetch_body = payload.body;
        let mut fresh: Option<(Page, DateTime<Utc>)> = None;
        if need_props {
            let page = match self.observe(client.retrieve_page(id).await) {
                Ok(p) => p,
                Err(e) if e.class() == ErrorClass::NotFound => {
                    self.page_gone(&id).await?;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let observed_at = page.date.unwrap_or_else(|| self.now());
            let sent = page.sent;
            let page = page.value;
            if !self.in_scope(&page).await {
                metrics::counter!("sync_pages_out_of_scope_total").increment(1);
                tracing::debug!(parent = ?page.parent, "page outside the mirrored data sources: dropped");
                if mirror.is_some() {
                    store.mark_trashed(&key, observed_at).await?;
                }
                return Ok(());
            }
            let upsert = self.page_upsert(&page, observed_at)?;
            store.upsert_page(&upsert).await?;
            self.inner
                .recent
                .record(id, Part::Props, sent, self.now(), payload.event_time());
            fetch_body = fetch_body
                || (!page.in_trash && body_may_have_changed_on_get(mirror.as_ref(), &page));
            if page.in_trash {
                fetch_body = false;
            }
            fresh = Some((page, observed_at));
        }
        if fetch_body {
            match self.fetch_body(&client, id).await {
                Ok(sent) => {
                    self.inner.recent.record(
                        id,
                        Part::Body,
                        sent,
                        self.now(),
                        payload.event_time(),
                    );
                }
                Err(JobError::Notion(e)) if e.class() == ErrorClass::NotFound => {
                    self.page_gone(&id).await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if let Some((page, observed_at)) = fresh {
            self.apply_task_rule(&client, &page, observed_at).await?;
        }
        Ok(())
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.store.clock().now()
    }

    /// Whether a page belongs to a data source we mirror.
    pub async fn in_scope(&self, page: &Page) -> bool {
        let sources = match self.data_sources().await {
            Ok(s) => s,
            Err(_) => self.route_context().data_sources,
        };
        match (page.data_source_id(), &page.parent) {
            (Some(ds), _) => sources.is_empty() || sources.contains(&ds),
            (None, notion_api::Parent::Database { database_id }) => {
                self.inner.config.source == Source::Database(*database_id)
            }
            _ => false,
        }
    }

    /// The mirror row for a page as Notion returned it.
    pub fn page_upsert(
        &self,
        page: &Page,
        observed_at: DateTime<Utc>,
    ) -> Result<PageUpsert, JobError> {
        let tasks = &self.inner.config.tasks;
        let view = TaskView::of(page, tasks);
        let properties = serde_json::to_string(page.raw_properties())
            .map_err(|e| JobError::Permanent(format!("properties do not serialize: {e}")))?;
        Ok(PageUpsert {
            id: page.id.to_string(),
            data_source_id: page
                .data_source_id()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            title: page.title(),
            status: view.status,
            due: page
                .property(&tasks.due_property)
                .and_then(|p| p.date())
                .map(|d| d.start.to_string()),
            url: page.url.clone(),
            created_time: page.created_time,
            last_edited_time: page.last_edited_time,
            in_trash: page.in_trash || page.archived,
            properties,
            observed_at,
        })
    }

    /// Fetches the body as Markdown (one request), falling back to block children
    /// when the endpoint is unavailable or truncates; stores it with its hash. Returns
    /// when the read that produced it was sent.
    pub(crate) async fn fetch_body(
        &self,
        client: &NotionClient,
        id: NotionId,
    ) -> Result<Instant, JobError> {
        let markdown_on = self
            .inner
            .markdown_off_until
            .lock()
            .expect("lock")
            .is_none_or(|t| Instant::now() >= t);
        let mut result = None;
        let mut markdown_not_found = false;
        if markdown_on {
            match self.observe(client.page_markdown(id).await) {
                Ok(md) if !md.value.truncated => {
                    let at = md.date.unwrap_or_else(|| self.now());
                    result = Some((md.value.markdown, at, md.sent, BodySource::Markdown));
                }
                Ok(_) => {
                    metrics::counter!("sync_markdown_truncated_total").increment(1);
                    tracing::debug!("markdown truncated: falling back to block children");
                }
                Err(e)
                    if matches!(
                        e.class(),
                        ErrorClass::Validation | ErrorClass::NotFound | ErrorClass::Forbidden
                    ) =>
                {
                    tracing::debug!(error = %e, "markdown endpoint unavailable: falling back to block children");
                    if e.class() == ErrorClass::NotFound {
                        // The page may be gone: decided below, by the block children.
                        markdown_not_found = true;
                    } else {
                        self.markdown_off();
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let (markdown, fetched_at, sent, source) = match result {
            Some(r) => r,
            None => {
                let tree = self.observe(
                    client
                        .block_tree(id, self.inner.config.max_block_depth)
                        .await,
                )?;
                if markdown_not_found {
                    // The page exists but the Markdown endpoint answered 404: it is not
                    // available to us; stop paying a request for it on every body.
                    self.markdown_off();
                }
                let at = tree.date.unwrap_or_else(|| self.now());
                (
                    notion_api::render_markdown(&tree.value),
                    at,
                    tree.sent,
                    BodySource::Blocks,
                )
            }
        };
        let hash = hex::encode(Sha256::digest(markdown.as_bytes()));
        self.inner
            .store
            .set_page_body(&id.to_string(), &markdown, &hash, fetched_at)
            .await?;
        metrics::counter!("sync_bodies_fetched_total", "source" => source.as_str()).increment(1);
        Ok(sent)
    }

    /// A 404 for the page (deleted, or no longer shared with us): the mirror row is
    /// marked `in_trash` and the page's read memory dropped.
    async fn page_gone(&self, id: &NotionId) -> Result<(), StoreError> {
        self.inner.recent.forget(id);
        if self
            .inner
            .store
            .mark_trashed(&id.to_string(), self.now())
            .await?
        {
            tracing::info!(page.id = %id, "page gone or no longer shared: marked in_trash");
        }
        Ok(())
    }

    /// Skips the Markdown endpoint for [`MARKDOWN_RETRY_AFTER`].
    fn markdown_off(&self) {
        let mut off = self.inner.markdown_off_until.lock().expect("lock");
        if off.is_none_or(|t| Instant::now() >= t) {
            tracing::info!(
                retry_in_s = MARKDOWN_RETRY_AFTER.as_secs(),
                "markdown endpoint unavailable: reading bodies from block children"
            );
        }
        *off = Some(Instant::now() + MARKDOWN_RETRY_AFTER);
    }

    /// Applies the overdue rule to a page whose state was just read from Notion.
    pub(crate) async fn apply_task_rule(
        &self,
        client: &NotionClient,
        page: &Page,
        observed_at: DateTime<Utc>,
    ) -> Result<MarkOutcome, JobError> {
        let tasks = &self.inner.config.tasks;
        if !tasks.mark_overdue || page.in_trash {
            return Ok(MarkOutcome::NotApplicable);
        }
        let Some(schema) = self.inner.status.schema_info() else {
            return Ok(MarkOutcome::Paused);
        };
        let view = TaskView::of(page, tasks);
        if !rules::should_mark_overdue(&view, &schema, observed_at, tasks.timezone) {
            return Ok(MarkOutcome::NotApplicable);
        }
        let Some(_guard) = MarkGuard::take(&self.inner.marking, page.id) else {
            return Ok(MarkOutcome::Busy);
        };
        self.mark_overdue(client, page, &view, &schema, observed_at)
            .await
    }

    /// Writes `overdue_status` once per (page, due date): the intent is recorded before
    /// the PATCH and completed with the transition and the PATCH response in one
    /// transaction, so retries, restarts and echoes never write twice.
    async fn mark_overdue(
        &self,
        client: &NotionClient,
        page: &Page,
        view: &TaskView,
        schema: &SchemaInfo,
        observed_at: DateTime<Utc>,
    ) -> Result<MarkOutcome, JobError> {
        let tasks = &self.inner.config.tasks;
        let store = &self.inner.store;
        let id = page.id.to_string();
        let due = view
            .due
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        // A person may have moved the task on since this state was read: the mirror
        // holds anything a webhook delivered meanwhile.
        if let Some(row) = store.get_page(&id).await?
            && row.observed_at > observed_at
            && !mirror_still_candidate(&row, view, schema)
        {
            return Ok(MarkOutcome::NotApplicable);
        }
        let overdue = &tasks.overdue_status;
        match store.begin_status_write(&id, &due, overdue).await? {
            StatusWrite::Done => return Ok(MarkOutcome::AlreadyWritten),
            // Another attempt (maybe `notion-sync reconcile` beside `serve`) is writing it.
            StatusWrite::InFlight => return Ok(MarkOutcome::Busy),
            StatusWrite::New => {}
            // An earlier attempt began and did not finish: its PATCH may have landed. Ask
            // Notion (a GET sees writes at once; a query may lag) before writing again.
            StatusWrite::Pending => {
                let fresh = self.observe(client.retrieve_page(page.id).await)?;
                let at = fresh.date.unwrap_or_else(|| self.now());
                let now_view = TaskView::of(&fresh.value, tasks);
                let upsert = self.page_upsert(&fresh.value, at)?;
                if now_view.due == view.due && now_view.status.as_deref() == Some(overdue.as_str())
                {
                    let transition = self.overdue_transition(
                        &id,
                        view,
                        &due,
                        observed_at,
                        at,
                        " (confirmed after an interrupted write)",
                    );
                    store
                        .finish_status_write(&id, &due, overdue, &transition, Some(&upsert))
                        .await?;
                    tracing::info!(page.id = %id, due = %due, "interrupted overdue write had landed: recorded");
                    return Ok(MarkOutcome::Marked);
                }
                if now_view.due != view.due
                    || !rules::should_mark_overdue(&now_view, schema, at, tasks.timezone)
                {
                    store.upsert_page(&upsert).await?;
                    store.abandon_status_write(&id, &due, overdue).await?;
                    return Ok(MarkOutcome::NotApplicable);
                }
            }
        }
        let body = rules::status_patch(tasks, schema.status_kind, overdue);
        let response = match self.observe(client.update_page_properties(page.id, body).await) {
            Ok(r) => r,
            Err(e) if e.class() == ErrorClass::NotFound => {
                // Deleted or unshared since it was read: nothing to mark.
                store.abandon_status_write(&id, &due, overdue).await?;
                self.page_gone(&page.id).await?;
                return Ok(MarkOutcome::NotApplicable);
            }
            Err(e) if e.class() == ErrorClass::Validation => {
                store.abandon_status_write(&id, &due, overdue).await?;
                // Trashed since it was read ("Can't edit block that is archived")? Then
                // there is nothing to mark; otherwise the schema moved under us.
                match self.observe(client.retrieve_page(page.id).await) {
                    Ok(fresh) if fresh.value.in_trash || fresh.value.archived => {
                        let at = fresh.date.unwrap_or_else(|| self.now());
                        store
                            .upsert_page(&self.page_upsert(&fresh.value, at)?)
                            .await?;
                        tracing::info!(page.id = %id, "task trashed before its overdue write: nothing to mark");
                        return Ok(MarkOutcome::NotApplicable);
                    }
                    Err(gone) if gone.class() == ErrorClass::NotFound => {
                        self.page_gone(&page.id).await?;
                        return Ok(MarkOutcome::NotApplicable);
                    }
                    _ => {}
                }
                // Re-check the schema (this pauses writes on drift).
                if let Some(ds) = page.data_source_id() {
                    let _ = self.check_schema(ds, PaceLane::Interactive).await;
                }
                return Err(e.into());
            }
            Err(e) => {
                // It may or may not have landed: the next attempt confirms first.
                store.release_status_write(&id, &due, overdue).await?;
                return Err(e.into());
            }
        };
        let at = response.date.unwrap_or_else(|| self.now());
        let upsert = self.page_upsert(&response.value, at)?;
        let transition = self.overdue_transition(&id, view, &due, observed_at, at, "");
        store
            .finish_status_write(&id, &due, &tasks.overdue_status, &transition, Some(&upsert))
            .await?;
        metrics::counter!("overdue_marked_total").increment(1);
        tracing::info!(page.id = %id, due = %due, from = ?view.status, "task marked overdue");
        self.inner.notifier.record_marked(page.title());
        Ok(MarkOutcome::Marked)
    }
}

impl Engine {
    fn overdue_transition(
        &self,
        id: &str,
        view: &TaskView,
        due: &str,
        observed_at: DateTime<Utc>,
        at: DateTime<Utc>,
        note: &str,
    ) -> Transition {
        let tasks = &self.inner.config.tasks;
        let today = rules::today(observed_at, tasks.timezone);
        Transition {
            page_id: id.to_owned(),
            from_status: view.status.clone(),
            to_status: tasks.overdue_status.clone(),
            reason: format!("due {due} is before {today} ({}){note}", tasks.timezone),
            at: at.trunc_subsecs(3),
        }
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

/// Page-sync (GET) view of "the body may have changed": never fetched, or the page
/// was edited since the mirror's copy and the properties don't explain the edit.
fn body_may_have_changed_on_get(mirror: Option<&PageRow>, page: &Page) -> bool {
    let Some(row) = mirror else { return true };
    if row.body_hash.is_none() {
        return true;
    }
    page.last_edited_time > row.last_edited_time
        && properties_equal(&row.properties, page.raw_properties())
}

/// Reconciler view: decides from a query result alone (no GET), see ARCHITECTURE.md.
/// - no body yet → fetch;
/// - body fetched after the edit's minute closed (+ margin) → current, skip;
/// - edited since the mirror's copy: fetch unless the properties changed (they explain it);
/// - same minute as the mirror's copy, body fetched while that minute was open and
///   properties unchanged → a second edit in the same minute may hide there: fetch.
///
/// With `audit`, every body not proven current is fetched (the daily full scan).
pub fn body_may_have_changed(
    mirror: Option<&PageRow>,
    page: &Page,
    margin: Duration,
    audit: bool,
) -> bool {
    let Some(row) = mirror else { return true };
    if page.in_trash {
        return false;
    }
    let (Some(_), Some(fetched)) = (&row.body_hash, row.body_fetched_at) else {
        return true;
    };
    let closed = page.last_edited_time
        + chrono::TimeDelta::seconds(60)
        + chrono::TimeDelta::from_std(margin).unwrap_or_default();
    if fetched >= closed {
        return false;
    }
    if audit {
        return true;
    }
    let same_props = properties_equal(&row.properties, page.raw_properties());
    if page.last_edited_time > row.last_edited_time {
        same_props
    } else {
        same_props && fetched >= page.last_edited_time
    }
}

/// Compares user-editable properties; computed ones (formulas, rollups, edit stamps)
/// change on every edit and would explain every edit away.
pub fn properties_equal(mirror_json: &str, fresh: &serde_json::Value) -> bool {
    let Ok(old) = serde_json::from_str::<serde_json::Value>(mirror_json) else {
        return false;
    };
    editable(&old) == editable(fresh)
}

fn editable(props: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    const COMPUTED: &[&str] = &[
        "formula",
        "rollup",
        "last_edited_time",
        "last_edited_by",
        "created_time",
        "created_by",
        "unique_id",
        "button",
        "verification",
    ];
    let mut out: Vec<_> = props
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| {
                    !v.get("type")
                        .and_then(|t| t.as_str())
                        .is_some_and(|t| COMPUTED.contains(&t))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
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
