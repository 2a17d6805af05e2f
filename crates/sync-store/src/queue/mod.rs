//! The durable job queue: coalescing enqueue, leased claims with fencing tokens, retries
//! with backoff, dead jobs, crash recovery of expired leases, and the CLI's repair tools.
//!
//! Invariants (enforced by partial unique indexes, not just by this code): per key at most
//! one `queued` and at most one `running` job. A queued job whose key is running (the
//! follow-up) is not claimable until the running one finishes. Completed jobs are deleted.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db;
use crate::error::{DatabaseError, StoreError};
use crate::store::Store;
use crate::time::{duration_ms, from_ms, to_ms};
use crate::writer::{BoxFut, WriteCx, WriteOp};

mod lease;
pub(crate) mod merge;
mod repair;
mod types;

use lease::{Claim, ClaimBatch, Fenced, FencedMany, FencedOp, FencedResult, Reap};
use repair::{PurgeDead, RetryDead, RetryJob};
pub use types::{
    ClaimedJob, EnqueueOutcome, FailOutcome, JobFailure, JobFilter, JobRow, JobState, Lane, NewJob,
    ParseEnumError, QueueStats,
};
pub(crate) use types::{LEASES_EXPIRED, PreparedJob, attempts_u32};

/// Queued jobs of one source handed to another.
struct AdoptJobs {
    from: String,
    to: String,
}

impl WriteOp for AdoptJobs {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = db::query(
                "UPDATE jobs SET source = $2, batch = NULL WHERE source = $1 AND state = 'queued'",
            )
            .bind(&self.from)
            .bind(&self.to)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected())
        })
    }
}

/// Requests recorded in order, each coalescing by the merge rule.
struct Enqueue(Vec<PreparedJob>);

impl WriteOp for Enqueue {
    type Output = Vec<EnqueueOutcome>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            let jobs: Vec<&PreparedJob> = self.0.iter().collect();
            merge::enqueue_all(cx, &jobs, now).await
        })
    }
}

/// `(name, COUNT(*))` rows of a grouped count.
fn named_counts(rows: &[db::Row]) -> Vec<(String, u64)> {
    rows.iter()
        .map(|r| (r.get::<String>(0), r.get::<i64>(1).max(0) as u64))
        .collect()
}

fn job_row(store: &Store, r: &db::Row) -> Result<JobRow, StoreError> {
    let path = store.path();
    let bad = |what: String| StoreError::Database(DatabaseError::corrupt(path, what));
    let id: i64 = r.try_get("id").map_err(|e| store.err(e))?;
    let state: String = r.try_get("state").map_err(|e| store.err(e))?;
    let lane: String = r.try_get("lane").map_err(|e| store.err(e))?;
    let lease_until: Option<i64> = r.try_get("lease_until").map_err(|e| store.err(e))?;
    Ok(JobRow {
        id,
        key: r.try_get("key").map_err(|e| store.err(e))?,
        kind: r.try_get("kind").map_err(|e| store.err(e))?,
        state: state.parse().map_err(|e| bad(format!("job {id}: {e}")))?,
        lane: lane.parse().map_err(|e| bad(format!("job {id}: {e}")))?,
        attempts: attempts_u32(r.try_get("attempts").map_err(|e| store.err(e))?),
        run_at: from_ms(path, r.try_get("run_at").map_err(|e| store.err(e))?)?,
        last_error: r.try_get("last_error").map_err(|e| store.err(e))?,
        enqueued_at: from_ms(path, r.try_get("enqueued_at").map_err(|e| store.err(e))?)?,
        updated_at: from_ms(path, r.try_get("updated_at").map_err(|e| store.err(e))?)?,
        worker: r.try_get("worker").map_err(|e| store.err(e))?,
        first_enqueued_at: from_ms(
            path,
            r.try_get("first_enqueued_at").map_err(|e| store.err(e))?,
        )?,
        lease_until: lease_until.map(|ms| from_ms(path, ms)).transpose()?,
        source: r.try_get("source").map_err(|e| store.err(e))?,
    })
}

impl Store {
    /// Records a request for work. A queued job with the same key absorbs it (earliest
    /// `run_at` and highest lane win; the kind becomes the new request's and the payloads
    /// are joined field by field: the merge rule, `Request::absorb`) →
    /// `Coalesced`. If the key is running, one follow-up is queued → `FollowUp` (further
    /// requests coalesce into that follow-up). Otherwise → `Inserted`.
    #[tracing::instrument(skip_all, fields(job.key = %job.key, job.kind = %job.kind, job.lane = %job.lane), err(level = "debug"))]
    pub async fn enqueue(&self, job: NewJob) -> Result<EnqueueOutcome, StoreError> {
        let mut out = self
            .write(Enqueue(vec![PreparedJob::new(job, self.source())]))
            .await?;
        out.pop().ok_or(StoreError::Closed)
    }

    /// [`enqueue`](Self::enqueue) for many jobs, in one transaction, applied in order.
    #[tracing::instrument(skip_all, fields(jobs.count = jobs.len()), err(level = "debug"))]
    pub async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<EnqueueOutcome>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let jobs = jobs
            .into_iter()
            .map(|j| PreparedJob::new(j, self.source()))
            .collect();
        self.write(Enqueue(jobs)).await
    }

    /// Atomically moves up to `n` due jobs to running under a lease of `lease`, interactive
    /// lane first (with the bulk floor), then by `run_at` and id. Expired leases are reaped
    /// first, in the same transaction. Each job gets a fresh random lease token.
    #[tracing::instrument(skip_all, fields(n = n, worker = %worker), err(level = "debug"))]
    pub async fn claim(
        &self,
        n: usize,
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        self.write(Claim {
            source: self.source().to_owned(),
            n,
            worker: worker.to_owned(),
            lease_ms: duration_ms(lease),
        })
        .await
    }

    async fn fenced(&self, job: &ClaimedJob, action: Fenced) -> FencedResult {
        self.write(FencedOp {
            id: job.id,
            token: job.lease_token.clone(),
            action,
        })
        .await?
    }

    /// Extends the lease to now + `lease`. [`StoreError::LeaseLost`] if the lease was reaped
    /// or the job finished.
    #[tracing::instrument(skip_all, fields(job.id = job.id), err(level = "debug"))]
    pub async fn extend(&self, job: &ClaimedJob, lease: Duration) -> Result<(), StoreError> {
        self.fenced(
            job,
            Fenced::Extend {
                lease_ms: duration_ms(lease),
            },
        )
        .await
        .map(|_| ())
    }

    /// Finishes the job (deletes it). [`StoreError::LeaseLost`] if this worker no longer
    /// holds the lease; the job is then left to its current holder.
    #[tracing::instrument(skip_all, fields(job.id = job.id, job.key = %job.key), err(level = "debug"))]
    pub async fn complete(&self, job: &ClaimedJob) -> Result<(), StoreError> {
        self.fenced(job, Fenced::Complete).await.map(|_| ())
    }

    /// Records a failure. Transient with attempts left → queued at `retry_at` or now +
    /// backoff with jitter (`Retrying`); permanent or attempts exhausted → `Dead` with the
    /// error kept. Fenced like [`complete`](Self::complete).
    #[tracing::instrument(skip_all, fields(job.id = job.id, job.key = %job.key, permanent = failure.permanent), err(level = "debug"))]
    pub async fn fail(
        &self,
        job: &ClaimedJob,
        failure: JobFailure,
    ) -> Result<FailOutcome, StoreError> {
        match self.fenced(job, Fenced::Fail(failure)).await? {
            Some(outcome) => Ok(outcome),
            None => Err(StoreError::Closed),
        }
    }

    /// Returns the job to the queue, due now, without counting the attempt (shutdown).
    /// Fenced like [`complete`](Self::complete).
    #[tracing::instrument(skip_all, fields(job.id = job.id), err(level = "debug"))]
    pub async fn release(&self, job: &ClaimedJob) -> Result<(), StoreError> {
        self.fenced(job, Fenced::Release).await.map(|_| ())
    }

    /// This source's batches with claimable first attempts (queued, due, key not running), and how
    /// many each holds: what a batch reader looks at to decide whether one read pays.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn batch_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let now = to_ms(self.clock().now());
        let rows = db::query(
            "SELECT j.batch, COUNT(*) FROM jobs j \
             WHERE j.state = 'queued' AND j.batch IS NOT NULL AND j.attempts = 0 \
               AND j.run_at <= $1 AND j.source = $2 \
               AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.state = 'running') \
             GROUP BY j.batch",
        )
        .bind(now)
        .bind(self.source())
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        Ok(named_counts(&rows))
    }

    /// Claims up to `n` claimable first attempts of `batch` (any lane) under a lease of
    /// `lease`, for one reader to answer together; pass them back with
    /// [`complete_many`](Self::complete_many) or [`release_alone`](Self::release_alone).
    #[tracing::instrument(skip_all, fields(n = n, worker = %worker), err(level = "debug"))]
    pub async fn claim_batch(
        &self,
        batch: &str,
        n: usize,
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        self.write(ClaimBatch {
            source: self.source().to_owned(),
            batch: batch.to_owned(),
            n,
            worker: worker.to_owned(),
            lease_ms: duration_ms(lease),
        })
        .await
    }

    async fn fenced_many(
        &self,
        jobs: &[ClaimedJob],
        action: Fenced,
    ) -> Result<Vec<bool>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let results = self
            .write(FencedMany {
                jobs: jobs.iter().map(|j| (j.id, j.lease_token.clone())).collect(),
                action,
            })
            .await?;
        results
            .into_iter()
            .map(|r| match r {
                Ok(_) => Ok(true),
                Err(StoreError::LeaseLost { .. }) => Ok(false),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// [`complete`](Self::complete) for many jobs in one transaction; per job, whether this
    /// holder still held it (a lost lease leaves the job to its current holder).
    #[tracing::instrument(skip_all, fields(jobs.count = jobs.len()), err(level = "debug"))]
    pub async fn complete_many(&self, jobs: &[ClaimedJob]) -> Result<Vec<bool>, StoreError> {
        self.fenced_many(jobs, Fenced::Complete).await
    }

    /// [`extend`](Self::extend) for many jobs in one transaction; per job, whether the
    /// lease was still held.
    #[tracing::instrument(skip_all, fields(jobs.count = jobs.len()), err(level = "debug"))]
    pub async fn extend_many(
        &self,
        jobs: &[ClaimedJob],
        lease: Duration,
    ) -> Result<Vec<bool>, StoreError> {
        let lease_ms = duration_ms(lease);
        self.fenced_many(jobs, Fenced::Extend { lease_ms }).await
    }

    /// [`release`](Self::release) for many jobs in one transaction (batch kept); per job,
    /// whether the lease was still held.
    #[tracing::instrument(skip_all, fields(jobs.count = jobs.len()), err(level = "debug"))]
    pub async fn release_many(&self, jobs: &[ClaimedJob]) -> Result<Vec<bool>, StoreError> {
        self.fenced_many(jobs, Fenced::Release).await
    }

    /// Returns jobs to the queue due now without counting the attempt, out of their batch:
    /// the batch's read did not answer them, so each is read on its own. In one
    /// transaction; per job, whether the lease was still held.
    #[tracing::instrument(skip_all, fields(jobs.count = jobs.len()), err(level = "debug"))]
    pub async fn release_alone(&self, jobs: &[ClaimedJob]) -> Result<Vec<bool>, StoreError> {
        self.fenced_many(jobs, Fenced::ReleaseAlone).await
    }

    /// Returns running jobs whose lease has ended (at or before now) to the queue, due now
    /// (jobs that have used all attempts go to `dead`). Returns how many; they are counted in
    /// [`QueueStats::leases_expired_total`]. `claim` does this too.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn reap_expired_leases(&self) -> Result<u64, StoreError> {
        self.write(Reap(None)).await
    }

    /// Crash recovery at start: returns every running job held by a worker whose name
    /// starts with `worker_prefix` to the queue at once, as if its lease had expired.
    /// Only for a caller that knows those workers are gone (it holds the instance lock).
    #[tracing::instrument(skip_all, fields(worker_prefix = %worker_prefix), err(level = "debug"))]
    pub async fn reclaim_workers(&self, worker_prefix: &str) -> Result<u64, StoreError> {
        if worker_prefix.is_empty() {
            return Ok(0);
        }
        self.write(Reap(Some(worker_prefix.to_owned()))).await
    }

    /// Counts per state and lane, oldest queued age, expired-lease total: every source's.
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        self.queue_stats_of(None).await
    }

    /// [`queue_stats`](Self::queue_stats) of this handle's source only (the expired-lease
    /// total stays the store's).
    pub async fn source_queue_stats(&self) -> Result<QueueStats, StoreError> {
        self.queue_stats_of(Some(self.source())).await
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn queue_stats_of(&self, source: Option<&str>) -> Result<QueueStats, StoreError> {
        // Separate subqueries so each count is answered from its partial index.
        let row = db::query(
            "SELECT \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND lane = 'interactive' \
                      AND ($2 IS NULL OR source = $2)), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND lane = 'bulk' \
                      AND ($2 IS NULL OR source = $2)), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'running' AND ($2 IS NULL OR source = $2)), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND ($2 IS NULL OR source = $2)), \
                 (SELECT MIN(first_enqueued_at) FROM jobs WHERE state = 'queued' \
                      AND ($2 IS NULL OR source = $2)), \
                 (SELECT value FROM store_counters WHERE name = $1)",
        )
        .bind(LEASES_EXPIRED)
        .bind(source)
        .fetch_one(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        let count = |i: usize| -> u64 { u64::try_from(row.get::<i64>(i)).unwrap_or(0) };
        let oldest: Option<i64> = row.get(4);
        let now = to_ms(self.clock().now());
        let expired: Option<i64> = row.get(5);
        Ok(QueueStats {
            queued_interactive: count(0),
            queued_bulk: count(1),
            running: count(2),
            dead: count(3),
            oldest_queued_age: oldest
                .map(|t| Duration::from_millis(u64::try_from(now.saturating_sub(t)).unwrap_or(0))),
            leases_expired_total: expired.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        })
    }

    /// How many queued or running jobs each source has (every source's, by name): a
    /// source no longer configured shows here with jobs nobody will claim.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn job_sources(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = db::query(
            "SELECT source, COUNT(*) FROM jobs WHERE state IN ('queued', 'running') \
             GROUP BY source ORDER BY source",
        )
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        Ok(named_counts(&rows))
    }

    /// Moves the queued jobs of source `from` (one no longer configured) to this handle's
    /// source, out of any batch; returns how many (a key has one queued job in all, so
    /// nothing merges).
    #[tracing::instrument(skip_all, fields(from = %from), err(level = "debug"))]
    pub async fn adopt_jobs(&self, from: &str) -> Result<u64, StoreError> {
        self.write(AdoptJobs {
            from: from.to_owned(),
            to: self.source().to_owned(),
        })
        .await
    }

    /// Jobs matching `filter`, by id.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobRow>, StoreError> {
        let limit = if filter.limit == 0 {
            i64::MAX
        } else {
            i64::from(filter.limit)
        };
        let rows = db::query(
            "SELECT id, key, kind, state, lane, attempts, run_at, last_error, enqueued_at, \
                    updated_at, worker, first_enqueued_at, lease_until, source \
             FROM jobs \
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR key = $2) \
               AND ($4 IS NULL OR source = $4) \
             ORDER BY id LIMIT $3",
        )
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.key)
        .bind(limit)
        .bind(filter.source)
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter().map(|r| job_row(self, r)).collect()
    }

    /// Requeues job `id` now with attempts reset, if it is dead or queued (a dead job whose
    /// key already has a queued job is merged into that one). False if unknown or running.
    #[tracing::instrument(skip_all, fields(job.id = id), err(level = "debug"))]
    pub async fn retry_job(&self, id: i64) -> Result<bool, StoreError> {
        self.write(RetryJob(id)).await
    }

    /// [`retry_job`](Self::retry_job) for every dead job; returns how many.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn retry_dead(&self) -> Result<u64, StoreError> {
        self.write(RetryDead).await
    }

    /// Deletes every dead job; returns how many.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn purge_dead(&self) -> Result<u64, StoreError> {
        self.write(PurgeDead).await
    }

    /// The earliest moment a `claim` could return something: the earliest `run_at` of a
    /// claimable queued job of this source (follow-ups of running keys excluded), or the earliest lease
    /// expiry of a running job (claim reaps it). `None` when neither exists. The time may be
    /// in the past (work is due now).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = db::query_scalar(
            "SELECT MIN(t) FROM ( \
                 SELECT MIN(j.run_at) AS t FROM jobs j \
                 WHERE j.state = 'queued' AND j.source = $1 AND NOT EXISTS \
                     (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.state = 'running') \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM jobs WHERE state = 'running') AS due",
        )
        .bind(self.source())
        .fetch_one(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        next.map(|ms| from_ms(self.path(), ms)).transpose()
    }
}
