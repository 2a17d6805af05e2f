//! Bulk property reads by query: when many property reads of one kind of edit wait for
//! one data source (a bulk edit: select 200 rows, set Status), one data-source query
//! (100 pages a request) answers them instead of one GET each. Owns the burst rule, the
//! jobs it holds, when a query may answer a job (the visibility rule) and the fallback
//! of what a query did not answer to its own GET.
//!
//! A query answers a job only when it proves the job's edit: Notion's clock at the
//! query (`Date`), less the visibility margin, is at or after the job's newest event
//! (a fresh edit may stay invisible to queries that long). Held jobs stay leased (so
//! their later requests queue behind them, unclaimable), and those the query did not
//! return (not visible yet, moved, trashed, unshared) go back to the queue out of their
//! batch, to be read by GET.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use notion_api::{Direction, Filter, NotionId, Page, QueryRequest, Sort};
use sync_store::{ClaimedJob, Lane};
use tokio::time::Instant;

use crate::context::Ctx;
use crate::error::ReconcileError;
use crate::job::{Job, PageSyncPayload, PropsBatch};
use crate::overdue::Overdue;
use crate::query_window::{self, Next};
use crate::recent::Part;
use crate::reconcile::{mirror_results, next_watermark};
use crate::schema_guard::SchemaGuard;
use crate::status::{BulkBurst, PassSummary};

/// At most this many jobs held per batch (ten query pages).
const MAX_HELD: usize = 1000;
/// A held job the queries have not answered this long after its edit became visible
/// (clock skew, a query that keeps failing) goes back to be read on its own.
const GIVE_UP_AFTER: TimeDelta = TimeDelta::seconds(60);
/// A burst's edits spread over up to this long are answered by one query: it waits
/// for the newest held edit to be visible, at most this long past the oldest.
const GATHER: TimeDelta = TimeDelta::seconds(2);
/// `Date` has second resolution: the query ran up to a second after it.
const DATE_RESOLUTION: TimeDelta = TimeDelta::seconds(1);

/// The jobs the bulk reader holds, by batch key (owned by the pool's bulk task).
#[derive(Debug, Default)]
pub(crate) struct BulkState {
    batches: HashMap<String, HeldBatch>,
    /// Notion's clock less ours, from the last query's `Date`: when an edit is visible
    /// is a question for Notion's clock.
    notion_ahead: TimeDelta,
}

impl BulkState {
    /// Jobs held now.
    pub(crate) fn held(&self) -> usize {
        self.batches.values().map(|b| b.jobs.len()).sum()
    }
}

#[derive(Debug)]
struct HeldBatch {
    data_source: NotionId,
    jobs: Vec<Held>,
    burst: BulkBurst,
}

#[derive(Debug)]
struct Held {
    job: ClaimedJob,
    page: NotionId,
    work: PageSyncPayload,
    event_time: DateTime<Utc>,
}

/// What one query over a batch's data source read.
struct Read {
    pages: HashMap<NotionId, Page>,
    /// Every edit at or before this (Notion's clock) is in `pages`.
    proven: DateTime<Utc>,
}

pub(crate) struct BulkReader {
    ctx: Arc<Ctx>,
    schema: Arc<SchemaGuard>,
    overdue: Arc<Overdue>,
}

impl BulkReader {
    pub(crate) fn new(ctx: Arc<Ctx>, schema: Arc<SchemaGuard>, overdue: Arc<Overdue>) -> Self {
        BulkReader {
            ctx,
            schema,
            overdue,
        }
    }

    /// One round: takes the jobs of batches that reached the threshold (and new jobs of
    /// batches already held), then answers with one query per batch whatever became
    /// visible. Errors leave the batch's jobs to their own GETs.
    pub(crate) async fn round(
        &self,
        state: &mut BulkState,
        worker: &str,
    ) -> Result<(), ReconcileError> {
        self.take(state, worker).await?;
        let keys: Vec<String> = state.batches.keys().cloned().collect();
        let mut result = Ok(());
        for key in keys {
            let Some(mut batch) = state.batches.remove(&key) else {
                continue;
            };
            match self.answer(&mut batch, &mut state.notion_ahead).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, data_source.id = %batch.data_source, jobs = batch.jobs.len(), "bulk read failed: the jobs are read on their own");
                    let jobs: Vec<Held> = batch.jobs.drain(..).collect();
                    batch.burst.fell_back += jobs.len() as u64;
                    self.release(&jobs).await?;
                    result = Err(e);
                }
            }
            if batch.jobs.is_empty() {
                self.finish(&key, batch);
            } else {
                self.ctx
                    .status
                    .set_bulk_burst(&key, Some(batch.burst.clone()));
                state.batches.insert(key, batch);
            }
        }
        metrics::gauge!("bulk_read_held_jobs", "source" => self.ctx.source())
            .set(state.held() as f64);
        result
    }

    /// Hands every held job back to the queue, batch kept (shutdown: after a restart
    /// they may be read together again).
    pub(crate) async fn hand_back(&self, state: &mut BulkState) {
        for (key, batch) in state.batches.drain() {
            let jobs: Vec<ClaimedJob> = batch.jobs.into_iter().map(|h| h.job).collect();
            if let Err(e) = self.ctx.store.release_many(&jobs).await {
                tracing::warn!(error = %e, "could not hand held jobs back; their leases will expire");
            }
            self.ctx.status.set_bulk_burst(&key, None);
        }
    }

    /// Claims the jobs of batches at or over the threshold, and of batches already held.
    async fn take(&self, state: &mut BulkState, worker: &str) -> Result<(), ReconcileError> {
        let threshold = self.ctx.config.workers.bulk_read_threshold;
        let lease = self.ctx.config.workers.lease;
        let counts = self.ctx.store.batch_counts().await?;
        for (key, count) in counts {
            let held = state.batches.get(&key).map(|b| b.jobs.len());
            if held.is_none() && (threshold == 0 || (count as usize) < threshold) {
                continue;
            }
            let Some(data_source) = PropsBatch::parse(&key) else {
                continue;
            };
            let room = MAX_HELD.saturating_sub(held.unwrap_or(0));
            let claimed = self
                .ctx
                .store
                .claim_batch(&key, room, worker, lease)
                .await?;
            let (jobs, strangers) = decode(claimed);
            self.ctx.store.release_alone(&strangers).await?;
            if jobs.is_empty() {
                continue;
            }
            let batch = state.batches.entry(key).or_insert_with(|| {
                tracing::info!(data_source.id = %data_source, pending = count, "burst of property reads: reading them by query");
                metrics::counter!("bulk_read_bursts_total", "source" => self.ctx.source()).increment(1);
                HeldBatch {
                    data_source,
                    jobs: Vec::new(),
                    burst: BulkBurst {
                        data_source: data_source.to_string(),
                        started_at: self.ctx.now(),
                        ..BulkBurst::default()
                    },
                }
            });
            batch.burst.taken += jobs.len() as u64;
            batch.jobs.extend(jobs);
        }
        Ok(())
    }

    /// Queries the batch's data source once its newest held edit is visible (or its
    /// oldest has been for `GATHER`), completes the jobs the query proves, sends back
    /// those it could have proven but did not return, and keeps the rest for the next
    /// round.
    async fn answer(
        &self,
        batch: &mut HeldBatch,
        notion_ahead: &mut TimeDelta,
    ) -> Result<(), ReconcileError> {
        let ctx = &self.ctx;
        self.renew(batch).await?;
        let margin =
            TimeDelta::from_std(ctx.config.reconcile.visibility_margin).unwrap_or_default();
        let now = ctx.now();
        let notion_now = now + *notion_ahead;
        let visible = |t: DateTime<Utc>| t + margin + DATE_RESOLUTION <= notion_now;
        let oldest = batch.jobs.iter().map(|h| h.event_time).min();
        let newest = batch.jobs.iter().map(|h| h.event_time).max();
        let (Some(oldest), Some(newest)) = (oldest, newest) else {
            return Ok(());
        };
        // One query for the whole burst when its deliveries came within `GATHER`: wait for
        // the newest edit too, up to `GATHER` past the oldest's visibility.
        if !visible(newest) && !visible(oldest + GATHER) {
            return Ok(());
        }
        let read = self.query(batch, oldest, margin, notion_ahead).await?;
        let (mut answered, mut unanswered, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for h in batch.jobs.drain(..) {
            let returned = read.pages.contains_key(&h.page);
            let given_up = h.event_time + margin + GIVE_UP_AFTER <= notion_now;
            match verdict(h.event_time, read.proven, returned, given_up) {
                Verdict::Answered => answered.push(h),
                Verdict::ReadAlone => unanswered.push(h),
                Verdict::Wait => waiting.push(h),
            }
        }
        self.complete(&answered, &read).await?;
        self.release(&unanswered).await?;
        batch.burst.answered += answered.len() as u64;
        batch.burst.fell_back += unanswered.len() as u64;
        batch.jobs = waiting;
        Ok(())
    }

    /// One query from the minute of the oldest visible edit (less the backstep), sorted,
    /// every page of it; mirrors the rows and records them as reads.
    async fn query(
        &self,
        batch: &mut HeldBatch,
        oldest: DateTime<Utc>,
        margin: TimeDelta,
        notion_ahead: &mut TimeDelta,
    ) -> Result<Read, ReconcileError> {
        let ctx = &self.ctx;
        let client = ctx.client_for(Lane::Interactive);
        let from = next_watermark(oldest, ctx.config.reconcile.backstep);
        let mut window = query_window::Window::from(Some(from));
        let mut request = QueryRequest {
            filter: Some(Filter::last_edited_time().on_or_after(from)),
            sorts: vec![Sort::last_edited_time(Direction::Ascending)],
            page_size: Some(100),
            ..QueryRequest::default()
        };
        let mut pages = HashMap::new();
        let mut proven: Option<(DateTime<Utc>, Instant)> = None;
        let mut summary = PassSummary::default();
        let mut suspect = false;
        loop {
            let response =
                ctx.observe(client.query_data_source(batch.data_source, &request).await)?;
            batch.burst.queries += 1;
            metrics::counter!("bulk_read_queries_total", "source" => ctx.source()).increment(1);
            let date = response.date.unwrap_or_else(|| ctx.now());
            if proven.is_none() {
                *notion_ahead = date - ctx.now();
            }
            proven.get_or_insert((date - margin, response.sent));
            let list = response.value;
            suspect |=
                mirror_results(ctx, &self.schema, &list.results, date, false, &mut summary).await?;
            let next = window.advance(&mut request, &list);
            pages.extend(list.results.into_iter().map(|p| (p.id, p)));
            match next {
                Next::Page | Next::Window(_) => {}
                Next::Done => break,
                Next::Stuck(at) => {
                    return Err(ReconcileError::Invalid(format!(
                        "more pages were last edited in the minute {at:?} than one query returns: read them one by one"
                    )));
                }
            }
        }
        if suspect {
            self.schema
                .check(batch.data_source, notion_api::Lane::Interactive)
                .await?;
        }
        let (proven, sent) = proven.expect("one query ran");
        // As a read, the query holds what was visible `margin` before it left.
        let sent = sent
            .checked_sub(ctx.config.reconcile.visibility_margin)
            .unwrap_or(sent);
        let now = ctx.now();
        for id in pages.keys() {
            ctx.recent.record(*id, Part::Props, sent, now, Some(proven));
        }
        Ok(Read { pages, proven })
    }

    /// Completes answered jobs: the task rule on each page, a body request where the job
    /// also asked for the body (a query carries none), then the jobs, in one transaction.
    async fn complete(&self, answered: &[Held], read: &Read) -> Result<(), ReconcileError> {
        if answered.is_empty() {
            return Ok(());
        }
        let ctx = &self.ctx;
        let writer = ctx.client_for(Lane::Interactive);
        let mut bodies = Vec::new();
        let mut seen = HashSet::new();
        for h in answered {
            let page = &read.pages[&h.page];
            // As observed when the query proves it: a later read in the mirror (a person
            // moving the task on meanwhile) takes precedence over this row.
            if seen.insert(h.page) {
                self.overdue.apply(&writer, page, read.proven).await?;
            }
            if h.work.body && !page.in_trash {
                let work = PageSyncPayload {
                    props: false,
                    ..h.work.clone()
                };
                bodies.push(Job::PageSync { page: h.page, work }.to_new_job(h.job.lane));
            }
        }
        ctx.store.enqueue_batch(bodies).await?;
        let jobs: Vec<ClaimedJob> = answered.iter().map(|h| h.job.clone()).collect();
        let held = ctx.store.complete_many(&jobs).await?;
        // Only the jobs still held were completed here; a lost lease's job is its holder's.
        let mut done = 0;
        for job in jobs
            .iter()
            .zip(held)
            .filter_map(|(j, still)| still.then_some(j))
        {
            ctx.record_freshness(job);
            done += 1;
        }
        metrics::counter!("sync_pages_read_total", "via" => "query", "source" => ctx.source())
            .increment(done);
        ctx.wake_workers();
        Ok(())
    }

    /// Sends jobs back to be read on their own (GET).
    async fn release(&self, jobs: &[Held]) -> Result<(), ReconcileError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let jobs: Vec<ClaimedJob> = jobs.iter().map(|h| h.job.clone()).collect();
        self.ctx.store.release_alone(&jobs).await?;
        metrics::counter!("bulk_read_fell_back_total", "source" => self.ctx.source())
            .increment(jobs.len() as u64);
        self.ctx.wake_workers();
        Ok(())
    }

    /// Renews the batch's leases once half of the lease is gone.
    async fn renew(&self, batch: &mut HeldBatch) -> Result<(), ReconcileError> {
        let lease = self.ctx.config.workers.lease;
        let half = TimeDelta::from_std(lease / 2).unwrap_or_default();
        let now = self.ctx.now();
        if !batch.jobs.iter().any(|h| h.job.lease_until - now < half) {
            return Ok(());
        }
        let jobs: Vec<ClaimedJob> = batch.jobs.iter().map(|h| h.job.clone()).collect();
        let held = self.ctx.store.extend_many(&jobs, lease).await?;
        let until = now + TimeDelta::from_std(lease).unwrap_or_default();
        let mut kept = Vec::with_capacity(batch.jobs.len());
        for (mut h, still) in batch.jobs.drain(..).zip(held) {
            if still {
                h.job.lease_until = until;
                kept.push(h);
            }
        }
        batch.jobs = kept;
        Ok(())
    }

    fn finish(&self, key: &str, batch: HeldBatch) {
        let b = &batch.burst;
        tracing::info!(
            data_source.id = %batch.data_source,
            answered_by_query = b.answered,
            read_on_their_own = b.fell_back,
            queries = b.queries,
            "burst of property reads done"
        );
        self.ctx.status.finish_bulk_burst(key, batch.burst);
    }
}

/// What a query means for one held job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The query proves the job's edit and returned its page.
    Answered,
    /// The query proves the edit but did not return the page (moved, trashed, unshared,
    /// filtered out), or the job waited too long: a GET reads it.
    ReadAlone,
    /// The edit may not have been visible to the query: keep it for the next one.
    Wait,
}

/// The visibility rule: a query answers a job only when what it proves (its `Date` less
/// the visibility margin) is at or after the job's newest event. A row returned for a
/// page edited after that may be the version before the edit.
fn verdict(
    event_time: DateTime<Utc>,
    proven: DateTime<Utc>,
    returned: bool,
    given_up: bool,
) -> Verdict {
    match (event_time <= proven, returned) {
        (true, true) => Verdict::Answered,
        (true, false) => Verdict::ReadAlone,
        (false, _) if given_up => Verdict::ReadAlone,
        (false, _) => Verdict::Wait,
    }
}

/// Splits claimed jobs into property reads the batch can answer and anything else (a
/// row another version wrote, a job without an event time).
fn decode(claimed: Vec<ClaimedJob>) -> (Vec<Held>, Vec<ClaimedJob>) {
    let mut held = Vec::new();
    let mut strangers = Vec::new();
    for job in claimed {
        match Job::decode(&job) {
            Ok(Job::PageSync { page, work }) if work.props => match work.event_time() {
                Some(event_time) => held.push(Held {
                    job,
                    page,
                    work,
                    event_time,
                }),
                None => strangers.push(job),
            },
            _ => strangers.push(job),
        }
    }
    (held, strangers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_query_answers_only_the_edits_it_proves() {
        let proven = t("2026-11-23T10:00:15Z");
        let before = t("2026-11-23T10:00:14.900Z");
        let after = t("2026-11-23T10:00:15.001Z");
        assert_eq!(verdict(before, proven, true, false), Verdict::Answered);
        assert_eq!(verdict(proven, proven, true, false), Verdict::Answered);
        // Sent before the edit was surely visible: its row may be the version before.
        assert_eq!(verdict(after, proven, true, false), Verdict::Wait);
        assert_eq!(verdict(after, proven, false, false), Verdict::Wait);
        // Proven but not returned: moved, trashed or unshared; its own GET decides.
        assert_eq!(verdict(before, proven, false, false), Verdict::ReadAlone);
        assert_eq!(verdict(after, proven, true, true), Verdict::ReadAlone);
    }
}
