//! The shared context every component stands on: the store, the Notion client, the
//! store's clock, the health status, the memory of recent reads, the worker wake-up, and
//! the two mirror writes every component makes the same way (a page as Notion returned
//! it, and "this page is gone").

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use notion_api::{ErrorClass, Lane as PaceLane, NotionClient, NotionError, NotionId, Page};
use sync_store::{Lane, NewJob, PageUpsert, Store, StoreError};
use tokio::sync::Notify;

use crate::config::EngineConfig;
use crate::error::JobError;
use crate::recent::RecentReads;
use crate::rules::TaskView;
use crate::status::EngineStatus;

/// Where a page read by one source goes when it belongs to another source (a webhook
/// that did not say its data source reached the wrong one, or a job that moved).
pub trait Handoff: Send + Sync {
    /// Queues `job` for the source, other than `from`, that mirrors `data_source` (or
    /// the whole `database`), and wakes its workers; false when none does.
    fn hand_off<'a>(
        &'a self,
        from: &'a str,
        data_source: NotionId,
        database: Option<NotionId>,
        job: NewJob,
    ) -> Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;
}

/// Owned by the engine, borrowed by every component.
pub(crate) struct Ctx {
    pub(crate) config: EngineConfig,
    /// The database, working for this source (`Store::for_source`).
    pub(crate) store: Store,
    /// The other sources, once the daemon has built them all.
    pub(crate) handoff: OnceLock<Arc<dyn Handoff>>,
    client: NotionClient,
    pub(crate) status: EngineStatus,
    /// What each page's last reads covered (see `recent.rs`).
    pub(crate) recent: RecentReads,
    wake: Notify,
}

impl Ctx {
    pub(crate) fn new(config: EngineConfig, store: Store, client: NotionClient) -> Ctx {
        Ctx {
            store: store.for_source(&config.name),
            config,
            handoff: OnceLock::new(),
            client,
            status: EngineStatus::default(),
            recent: RecentReads::default(),
            wake: Notify::new(),
        }
    }

    /// The client on the interactive lane (health reads its stats and pacer).
    pub(crate) fn client(&self) -> &NotionClient {
        &self.client
    }

    /// The client pacing on the queue lane `lane`.
    pub(crate) fn client_for(&self, lane: Lane) -> NotionClient {
        self.client.with_lane(pace_lane(lane))
    }

    /// The source's name (the `source` metric label).
    pub(crate) fn source(&self) -> String {
        self.config.name.clone()
    }

    /// Now, on the store's clock (tests set it).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.store.clock().now()
    }

    /// Records authentication failures for health; passes the result through.
    pub(crate) fn observe<T>(&self, r: Result<T, NotionError>) -> Result<T, NotionError> {
        match &r {
            Ok(_) => {
                if self.status.auth_error().is_some() {
                    self.status.set_auth_error(None);
                }
            }
            Err(e) if e.class() == ErrorClass::Unauthorized => {
                self.status.set_auth_error(Some(e.to_string()));
            }
            Err(_) => {}
        }
        r
    }

    /// Tells idle workers that new work is queued.
    pub(crate) fn wake_workers(&self) {
        self.wake.notify_waiters();
    }

    /// A wake-up future; `enable()` it before checking for work.
    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Records a completed job's freshness: from the oldest request of its lane to now.
    pub(crate) fn record_freshness(&self, job: &sync_store::ClaimedJob) {
        let age = (self.now() - job.lane_since()).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("sync_freshness_seconds", "lane" => job.lane.as_str(), "source" => self.source()).record(age);
    }

    /// The mirror row for a page as Notion returned it (observed at `observed_at`, on
    /// Notion's clock).
    pub(crate) fn page_upsert(
        &self,
        page: &Page,
        observed_at: DateTime<Utc>,
    ) -> Result<PageUpsert, JobError> {
        let tasks = &self.config.tasks;
        let view = TaskView::of(page, tasks);
        let properties = serde_json::to_string(page.raw_properties())
            .map_err(|e| JobError::Permanent(format!("properties do not serialize: {e}")))?;
        Ok(PageUpsert {
            id: page.id,
            data_source_id: page.data_source_id(),
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

    /// Stores a page as Notion returned it.
    pub(crate) async fn mirror(
        &self,
        page: &Page,
        observed_at: DateTime<Utc>,
    ) -> Result<(), JobError> {
        self.store
            .upsert_page(&self.page_upsert(page, observed_at)?)
            .await?;
        Ok(())
    }

    /// The page is gone for us (a 404: deleted or no longer shared; or moved out of the
    /// mirrored data sources), as of `at`: its mirror row is marked `in_trash` and its read
    /// memory dropped. Returns whether the row changed.
    pub(crate) async fn page_gone(
        &self,
        id: &NotionId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.recent.forget(id);
        let changed = self.store.mark_trashed(id, at).await?;
        if changed {
            tracing::info!(page.id = %id, "page gone or no longer shared: marked in_trash");
        }
        Ok(changed)
    }
}

/// The pacer lane that serves a queue lane.
pub(crate) fn pace_lane(lane: Lane) -> PaceLane {
    match lane {
        Lane::Interactive => PaceLane::Interactive,
        Lane::Bulk => PaceLane::Bulk,
    }
}
