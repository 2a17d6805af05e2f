//! Leases: claiming due jobs (interactive first, with the bulk floor), the calls fenced
//! by a lease token (extend, complete, fail, release), retry backoff, and returning
//! expired or orphaned leases to the queue.

use std::time::Duration;

use super::merge::{self, Request};
use super::types::{
    ClaimedJob, FailOutcome, JobFailure, LEASES_EXPIRED, Lane, attempts_u32, corrupt,
    truncate_error,
};
use crate::db;
use crate::error::StoreError;
use crate::time::{duration_ms, from_ms, to_ms};
use crate::writer::{BoxFut, WriteCx, WriteOp};

/// The running row a fenced call acts on.
struct Held {
    key: String,
    attempts: u32,
    worker: Option<String>,
}

/// The running job `id` if `token` still holds its lease.
async fn held(cx: &mut WriteCx, id: i64, token: &str) -> Result<Option<Held>, StoreError> {
    let row = db::query(
        "SELECT key, attempts, worker FROM jobs \
         WHERE id = $1 AND state = 'running' AND lease_token = $2",
    )
    .bind(id)
    .bind(token)
    .fetch_optional(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    Ok(row.map(|r| Held {
        key: r.get(0),
        attempts: attempts_u32(r.get(1)),
        worker: r.get(2),
    }))
}

/// Returns running job `id` to the queue due at `run_at` with `attempts` and, when given,
/// `last_error`. If the key already has a queued follow-up, the follow-up absorbs it by the
/// merge rule ([`Request::absorb`]) and the running row is deleted. Returns the queued
/// job's (run_at, attempts).
async fn requeue_running(
    cx: &mut WriteCx,
    id: i64,
    key: &str,
    run_at: i64,
    attempts: u32,
    last_error: Option<&str>,
    now: i64,
) -> Result<(i64, u32), StoreError> {
    if let Some((_, follow_up)) = merge::queued_job(cx, key).await? {
        let returning = Request {
            run_at,
            attempts,
            last_error: last_error.map(str::to_owned),
            ..merge::job_by_id(cx, id).await?
        };
        let merged = returning.absorb(follow_up);
        delete_job(cx, id).await?;
        merge::write_queued(cx, &[(key, &merged)], now).await?;
        return Ok((merged.run_at, merged.attempts));
    }
    db::query(
        "UPDATE jobs SET state = 'queued', run_at = $2, attempts = $3, \
             last_error = COALESCE($4, last_error), lease_token = NULL, \
             lease_until = NULL, worker = NULL, updated_at = $5 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(run_at)
    .bind(i64::from(attempts))
    .bind(last_error)
    .bind(now)
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    Ok((run_at, attempts))
}

pub(crate) async fn delete_job(cx: &mut WriteCx, id: i64) -> Result<(), StoreError> {
    db::query("DELETE FROM jobs WHERE id = $1")
        .bind(id)
        .execute(&mut cx.conn)
        .await
        .map_err(|e| cx.err(e))?;
    Ok(())
}

async fn mark_dead(
    cx: &mut WriteCx,
    id: i64,
    attempts: u32,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    db::query(
        "UPDATE jobs SET state = 'dead', attempts = $2, last_error = $3, lease_token = NULL, \
             lease_until = NULL, updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(i64::from(attempts))
    .bind(truncate_error(error))
    .bind(now)
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    Ok(())
}

/// Returns every running job whose lease ended at or before `now` to the queue (or to `dead`
/// once it has used all attempts: a job that keeps killing its worker must not loop).
async fn reap(cx: &mut WriteCx, now: i64) -> Result<u64, StoreError> {
    reap_where(cx, now, None).await
}

/// Returns running jobs to the queue (or to `dead` when out of attempts): those whose
/// lease expired, and with `dead_workers`, also those held by workers whose names start
/// with that prefix (the caller knows they are gone).
async fn reap_where(
    cx: &mut WriteCx,
    now: i64,
    dead_workers: Option<&str>,
) -> Result<u64, StoreError> {
    let rows = db::query(
        "SELECT id, key, attempts, worker FROM jobs \
         WHERE state = 'running' \
           AND (lease_until <= $1 OR ($2 IS NOT NULL AND substr(worker, 1, length($2)) = $2)) \
         ORDER BY id",
    )
    .bind(now)
    .bind(dead_workers)
    .fetch_all(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let max_attempts = cx.config.max_attempts;
    for row in &rows {
        let id: i64 = row.get(0);
        let key: String = row.get(1);
        let attempts = attempts_u32(row.get(2));
        let worker: Option<String> = row.get(3);
        let error = format!(
            "lease expired while held by worker {:?} (worker lost or too slow)",
            worker.as_deref().unwrap_or("?")
        );
        if attempts >= max_attempts {
            mark_dead(cx, id, attempts, &error, now).await?;
        } else {
            requeue_running(cx, id, &key, now, attempts, Some(&error), now).await?;
        }
    }
    let n = rows.len() as u64;
    db::query(
        "INSERT INTO store_counters (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = store_counters.value + excluded.value",
    )
    .bind(LEASES_EXPIRED)
    .bind(i64::try_from(n).unwrap_or(i64::MAX))
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    tracing::info!(jobs.reaped = n, "expired job leases returned to the queue");
    Ok(n)
}

pub(crate) struct Reap(pub(crate) Option<String>);

impl WriteOp for Reap {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            reap_where(cx, now, self.0.as_deref()).await
        })
    }
}

pub(crate) struct Claim {
    /// Only this source's jobs.
    pub(crate) source: String,
    pub(crate) n: usize,
    pub(crate) worker: String,
    pub(crate) lease_ms: i64,
}

/// Which queued jobs a claim may take.
#[derive(Clone, Copy)]
enum Pick<'a> {
    /// Any due job of the lane.
    Lane(Lane),
    /// Due first attempts of one batch, any lane.
    Batch(&'a str),
}

/// The claim statement; `$lock` ends the candidate subquery (the row lock on PostgreSQL).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = $1, \
                 lease_until = $2, worker = $3, updated_at = $4 \
             WHERE id = (SELECT j.id FROM jobs j \
                         WHERE j.state = 'queued' AND j.source = $7 AND j.run_at <= $4 \
                           AND ($5 IS NULL OR j.lane = $5) \
                           AND ($6 IS NULL OR (j.batch = $6 AND j.attempts = 0)) \
                           AND NOT EXISTS (SELECT 1 FROM jobs r \
                                           WHERE r.key = j.key AND r.state = 'running') \
                         ORDER BY j.run_at, j.id LIMIT 1",
            $lock,
            ") \
             RETURNING id, key, kind, payload, attempts, first_enqueued_at, enqueued_at, \
                       interactive_since, lane"
        )
    };
}

/// Claims the due job that `pick` allows and is first by (run_at, id), skipping
/// follow-ups whose key is running.
async fn claim_one(
    cx: &mut WriteCx,
    source: &str,
    pick: Pick<'_>,
    now: i64,
    lease_until: i64,
    worker: &str,
) -> Result<Option<ClaimedJob>, StoreError> {
    let token = format!("{:032x}", rand::random::<u128>());
    let (lane, batch) = match pick {
        Pick::Lane(lane) => (Some(lane.as_str()), None),
        Pick::Batch(batch) => (None, Some(batch)),
    };
    // PostgreSQL: the candidate row is locked and rows other replicas are claiming are
    // skipped (SQLite has one writer, so there is nothing to skip).
    let sql = cx
        .backend()
        .pick(claim_sql!(""), claim_sql!(" FOR UPDATE OF j SKIP LOCKED"));
    let row = db::query(sql)
        .bind(&token)
        .bind(lease_until)
        .bind(worker)
        .bind(now)
        .bind(lane)
        .bind(batch)
        .bind(source)
        .fetch_optional(&mut cx.conn)
        .await
        .map_err(|e| cx.err(e))?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.get(0);
    let payload: String = row.get(3);
    let payload = serde_json::from_str(&payload)
        .map_err(|e| corrupt(cx, format!("job {id}: stored payload is not JSON: {e}")))?;
    let lane: String = row.get(8);
    let lane = lane
        .parse()
        .map_err(|e| corrupt(cx, format!("job {id}: {e}")))?;
    Ok(Some(ClaimedJob {
        id,
        key: row.get(1),
        kind: row.get(2),
        payload,
        lane,
        attempts: attempts_u32(row.get(4)),
        lease_token: token,
        lease_until: from_ms(&cx.path, lease_until)?,
        first_enqueued_at: from_ms(&cx.path, row.get(5))?,
        enqueued_at: from_ms(&cx.path, row.get(6))?,
        interactive_since: row
            .get::<Option<i64>>(7)
            .map(|ms| from_ms(&cx.path, ms))
            .transpose()?,
    }))
}

impl WriteOp for Claim {
    type Output = Vec<ClaimedJob>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            reap(cx, now).await?;
            let lease_until = now.saturating_add(self.lease_ms);
            let floor = cx.config.bulk_floor_every;
            let mut out = Vec::new();
            while out.len() < self.n {
                let streak = cx
                    .interactive_streak
                    .get(&self.source)
                    .copied()
                    .unwrap_or(0);
                let preferred = if floor > 0 && streak >= floor {
                    Lane::Bulk
                } else {
                    Lane::Interactive
                };
                let mut job = claim_one(
                    cx,
                    &self.source,
                    Pick::Lane(preferred),
                    now,
                    lease_until,
                    &self.worker,
                )
                .await?;
                if job.is_none() {
                    let other = Pick::Lane(preferred.other());
                    job =
                        claim_one(cx, &self.source, other, now, lease_until, &self.worker).await?;
                }
                let Some(job) = job else { break };
                let next = match job.lane {
                    Lane::Interactive => streak.saturating_add(1),
                    Lane::Bulk => 0,
                };
                cx.interactive_streak.insert(self.source.clone(), next);
                out.push(job);
            }
            Ok(out)
        })
    }
}

pub(crate) struct ClaimBatch {
    pub(crate) source: String,
    pub(crate) batch: String,
    pub(crate) n: usize,
    pub(crate) worker: String,
    pub(crate) lease_ms: i64,
}

impl WriteOp for ClaimBatch {
    type Output = Vec<ClaimedJob>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            let lease_until = now.saturating_add(self.lease_ms);
            let mut out = Vec::new();
            while out.len() < self.n {
                let pick = Pick::Batch(&self.batch);
                match claim_one(cx, &self.source, pick, now, lease_until, &self.worker).await? {
                    Some(job) => out.push(job),
                    None => break,
                }
            }
            Ok(out)
        })
    }
}

/// The calls fenced by a lease token.
pub(crate) enum Fenced {
    Extend {
        lease_ms: i64,
    },
    Complete,
    Release,
    /// Release, and out of its batch: the batch's read did not answer it, so it is read
    /// on its own.
    ReleaseAlone,
    Fail(JobFailure),
}

pub(crate) struct FencedOp {
    pub(crate) id: i64,
    pub(crate) token: String,
    pub(crate) action: Fenced,
}

/// Result of a fenced call: `Err(LeaseLost)` is a rejection, not a failed transaction.
pub(crate) type FencedResult = Result<Option<FailOutcome>, StoreError>;

impl WriteOp for FencedOp {
    type Output = FencedResult;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<FencedResult, StoreError>> {
        Box::pin(apply_fenced(cx, self.id, &self.token, &self.action))
    }
}

/// One fenced action on many jobs, in one transaction: each job's result in order.
pub(crate) struct FencedMany {
    pub(crate) jobs: Vec<(i64, String)>,
    pub(crate) action: Fenced,
}

impl WriteOp for FencedMany {
    type Output = Vec<FencedResult>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(self.jobs.len());
            for (id, token) in &self.jobs {
                out.push(apply_fenced(cx, *id, token, &self.action).await?);
            }
            Ok(out)
        })
    }
}

/// A fenced statement held the lease when it touched exactly the one row.
fn held_one(rows: u64, lost: FencedResult) -> FencedResult {
    if rows == 1 { Ok(None) } else { lost }
}

/// Applies one fenced action: `Ok(Err(LeaseLost))` when `token` no longer holds job `id`.
async fn apply_fenced(
    cx: &mut WriteCx,
    id: i64,
    token: &str,
    action: &Fenced,
) -> Result<FencedResult, StoreError> {
    let now = to_ms(cx.now());
    let lost = Err(StoreError::LeaseLost { job_id: id });
    match action {
        Fenced::Extend { lease_ms } => {
            let done = db::query(
                "UPDATE jobs SET lease_until = $3, updated_at = $4 \
                 WHERE id = $1 AND state = 'running' AND lease_token = $2",
            )
            .bind(id)
            .bind(token)
            .bind(now.saturating_add(*lease_ms))
            .bind(now)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(held_one(done.rows_affected(), lost))
        }
        Fenced::Complete => {
            let done = db::query(
                "DELETE FROM jobs WHERE id = $1 AND state = 'running' AND lease_token = $2",
            )
            .bind(id)
            .bind(token)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(held_one(done.rows_affected(), lost))
        }
        Fenced::Release | Fenced::ReleaseAlone => {
            let Some(h) = held(cx, id, token).await? else {
                return Ok(lost);
            };
            if matches!(action, Fenced::ReleaseAlone) {
                db::query("UPDATE jobs SET batch = NULL WHERE id = $1")
                    .bind(id)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
            }
            let attempts = h.attempts.saturating_sub(1);
            requeue_running(cx, id, &h.key, now, attempts, None, now).await?;
            Ok(Ok(None))
        }
        Fenced::Fail(failure) => {
            let Some(h) = held(cx, id, token).await? else {
                return Ok(lost);
            };
            let error = truncate_error(&failure.error);
            if failure.permanent || h.attempts >= cx.config.max_attempts {
                mark_dead(cx, id, h.attempts, error, now).await?;
                tracing::warn!(
                    job.id = id, job.key = %h.key, job.attempts = h.attempts,
                    job.worker = h.worker.as_deref().unwrap_or(""),
                    permanent = failure.permanent, "job is dead"
                );
                return Ok(Ok(Some(FailOutcome::Dead)));
            }
            let retry_at = match failure.retry_at {
                Some(at) => to_ms(at).max(now),
                None => now.saturating_add(backoff_ms(
                    h.attempts,
                    cx.config.backoff_base,
                    cx.config.backoff_max,
                )),
            };
            let (run_at, attempts) =
                requeue_running(cx, id, &h.key, retry_at, h.attempts, Some(error), now).await?;
            Ok(Ok(Some(FailOutcome::Retrying {
                run_at: from_ms(&cx.path, run_at)?,
                attempts,
            })))
        }
    }
}

/// Exponential backoff with "equal jitter": the nominal delay is
/// `min(max, base · 2^(attempts-1))`; the result is uniform in `[nominal/2, nominal]`.
pub(crate) fn backoff_ms(attempts: u32, base: Duration, max: Duration) -> i64 {
    let base = duration_ms(base).max(1);
    let max = duration_ms(max).max(1);
    let shift = attempts.saturating_sub(1).min(62);
    let nominal = base.saturating_mul(1_i64 << shift).min(max);
    let half = nominal / 2;
    half + rand::random_range(0..=nominal - half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_half() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(600);
        for _ in 0..200 {
            let first = backoff_ms(1, base, max);
            assert!((1_000..=2_000).contains(&first), "{first}");
            let third = backoff_ms(3, base, max);
            assert!((4_000..=8_000).contains(&third), "{third}");
            let capped = backoff_ms(40, base, max);
            assert!((300_000..=600_000).contains(&capped), "{capped}");
            let huge = backoff_ms(u32::MAX, base, max);
            assert!((300_000..=600_000).contains(&huge), "{huge}");
        }
    }
}
