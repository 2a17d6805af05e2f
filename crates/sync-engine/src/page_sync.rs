//! The page-sync job: one GET when properties may have changed, one body read when the
//! body may have changed, nothing for a request an earlier read already answered or for
//! an echo of our own write; then the task rule. Owns the read-settling policy (each part
//! of a page read at most once per `recent::SETTLE`) and the echo rule.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use notion_api::{ErrorClass, NotionId, Page};
use sync_store::{ClaimedJob, Lane};

use crate::body::BodyReader;
use crate::context::Ctx;
use crate::error::JobError;
use crate::freshness::body_may_have_changed_on_get;
use crate::job::{Job, PageSyncPayload};
use crate::overdue::Overdue;
use crate::recent::Part;
use crate::scope::Scope;

/// A bot-authored event is an echo of a state we hold when our observation is at
/// most this much older than the event (the `Date` header has second resolution).
const ECHO_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

pub(crate) struct PageSync {
    ctx: Arc<Ctx>,
    scope: Arc<Scope>,
    overdue: Arc<Overdue>,
    body: BodyReader,
}

impl PageSync {
    pub(crate) fn new(ctx: Arc<Ctx>, scope: Arc<Scope>, overdue: Arc<Overdue>) -> PageSync {
        PageSync {
            body: BodyReader::new(ctx.clone()),
            ctx,
            scope,
            overdue,
        }
    }

    /// Runs a claimed `page.sync` job. A first attempt whose every request an earlier
    /// read already answered costs nothing; a retry runs in full (its first attempt may
    /// have read but not finished).
    pub(crate) async fn run_job(
        &self,
        job: &ClaimedJob,
        page: NotionId,
        work: &PageSyncPayload,
    ) -> Result<(), JobError> {
        if job.attempts == 1 && self.ctx.recent.covers(&page, work, job.enqueued_at) {
            metrics::counter!("sync_jobs_covered_total", "source" => self.ctx.source())
                .increment(1);
            tracing::debug!("every request already answered by an earlier read");
            return Ok(());
        }
        self.sync(page, work, job.lane, true).await
    }

    /// Syncs one page. With `settle`, a read of a part read less than `recent::SETTLE`
    /// ago waits for the rest of that period (jobs do: requests arriving meanwhile queue
    /// behind the job and are answered by its read).
    #[tracing::instrument(skip_all, fields(page.id = %id, job.props = work.props, job.body = work.body), err)]
    pub(crate) async fn sync(
        &self,
        id: NotionId,
        work: &PageSyncPayload,
        lane: Lane,
        settle: bool,
    ) -> Result<(), JobError> {
        let ctx = &self.ctx;
        let mirror = ctx.store.get_page(&id).await?;
        if !work.human
            && let (Some(row), Some(event_time)) = (&mirror, work.event_time())
            && row.observed_at + ECHO_TOLERANCE >= event_time
        {
            metrics::counter!("sync_echo_skipped_total").increment(1);
            tracing::debug!("echo of our own write already mirrored");
            return Ok(());
        }
        if settle && let Some(until) = ctx.recent.settle_until(&id, work) {
            tokio::time::sleep_until(until).await;
        }
        let client = ctx.client_for(lane);
        let mut read_body = work.body;
        let mut fresh: Option<(Page, DateTime<Utc>)> = None;
        if work.props || mirror.is_none() {
            let page = match ctx.observe(client.retrieve_page(id).await) {
                Ok(p) => p,
                Err(e) if e.class() == ErrorClass::NotFound => {
                    ctx.page_gone(&id, ctx.now()).await?;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            metrics::counter!("sync_pages_read_total", "via" => "get", "source" => ctx.source())
                .increment(1);
            let observed_at = page.date.unwrap_or_else(|| ctx.now());
            let sent = page.sent;
            let page = page.value;
            if !self.scope.contains(&page).await {
                if self.hand_off(&page, work, lane).await? {
                    return Ok(());
                }
                metrics::counter!("sync_pages_out_of_scope_total", "source" => ctx.source())
                    .increment(1);
                tracing::debug!(parent = ?page.parent, "page outside the mirrored data sources: dropped");
                if mirror.is_some() {
                    ctx.page_gone(&id, observed_at).await?;
                }
                return Ok(());
            }
            ctx.mirror(&page, observed_at).await?;
            ctx.recent
                .record(id, Part::Props, sent, ctx.now(), work.event_time());
            read_body = !page.in_trash
                && (read_body || body_may_have_changed_on_get(mirror.as_ref(), &page));
            fresh = Some((page, observed_at));
        }
        if read_body {
            match self.body.read(&client, id).await {
                Ok(sent) => {
                    ctx.recent
                        .record(id, Part::Body, sent, ctx.now(), work.event_time());
                }
                Err(JobError::Notion(e)) if e.class() == ErrorClass::NotFound => {
                    ctx.page_gone(&id, ctx.now()).await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if let Some((page, observed_at)) = fresh {
            self.overdue.apply(&client, &page, observed_at).await?;
        }
        Ok(())
    }

    /// A page of another source goes to that source (it reads the page through its own
    /// integration, by its own rules); true if one took it.
    async fn hand_off(
        &self,
        page: &Page,
        work: &PageSyncPayload,
        lane: Lane,
    ) -> Result<bool, JobError> {
        let (Some(ds), Some(handoff)) = (page.data_source_id(), self.ctx.handoff.get()) else {
            return Ok(false);
        };
        let job = Job::PageSync {
            page: page.id,
            work: work.clone(),
        }
        .to_new_job(lane);
        let database = match page.parent {
            notion_api::Parent::DataSource { database_id, .. } => database_id,
            notion_api::Parent::Database { database_id } => Some(database_id),
            _ => None,
        };
        let taken = handoff
            .hand_off(&self.ctx.config.name, ds, database, job)
            .await?;
        if taken {
            metrics::counter!("sync_pages_handed_off_total", "source" => self.ctx.source())
                .increment(1);
            tracing::debug!(data_source = %ds, "page of another source: handed to it");
        }
        Ok(taken)
    }
}
