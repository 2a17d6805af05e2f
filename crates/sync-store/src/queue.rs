//! The durable job queue: coalescing enqueue, leased claims with fencing tokens, retries
//! with backoff, dead jobs, crash recovery of expired leases, and the CLI's repair tools.
//!
//! Invariants (enforced by partial unique indexes, not just by this code): per key at most
//! one `queued` and at most one `running` job. A queued job whose key is running (the
//! follow-up) is not claimable until the running one finishes. Completed jobs are deleted.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::{DatabaseError, StoreError};
use crate::store::Store;
use crate::time::{duration_ms, from_ms, to_ms};
use crate::writer::{BoxFut, WriteCx, WriteOp};

/// Longest `last_error` kept (bytes); longer messages are truncated.
const MAX_ERROR_LEN: usize = 4096;

/// Counter name for [`QueueStats::leases_expired_total`].
const LEASES_EXPIRED: &str = "leases_expired_total";

/// Scheduling class. Interactive (webhooks) is served before bulk (reconciler), with a floor
/// for bulk (see [`StoreConfig::bulk_floor_every`](crate::StoreConfig::bulk_floor_every)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Reconciler work.
    Bulk,
    /// Webhook-triggered work; claimed first.
    Interactive,
}

impl Lane {
    /// `"interactive"` or `"bulk"` (also the stored value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bulk => "bulk",
            Self::Interactive => "interactive",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Bulk => Self::Interactive,
            Self::Interactive => Self::Bulk,
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error parsing a [`Lane`] or [`JobState`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected one of {expected}")]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Lane {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bulk" => Ok(Self::Bulk),
            "interactive" => Ok(Self::Interactive),
            _ => Err(ParseEnumError {
                what: "lane",
                value: s.to_owned(),
                expected: "interactive, bulk",
            }),
        }
    }
}

/// Where a job is in its life. Completed jobs are deleted, so there is no `Done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for `run_at` (and, for a follow-up, for the running job of its key).
    Queued,
    /// Claimed by a worker under a lease.
    Running,
    /// Failed permanently or exhausted its attempts; kept with its last error until retried
    /// or purged.
    Dead,
}

impl JobState {
    /// `"queued"`, `"running"` or `"dead"` (also the stored value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Dead => "dead",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "dead" => Ok(Self::Dead),
            _ => Err(ParseEnumError {
                what: "job state",
                value: s.to_owned(),
                expected: "queued, running, dead",
            }),
        }
    }
}

/// A request for work. Requests with the same `key` coalesce (see [`Store::enqueue`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// Identity for coalescing, e.g. `page:<id>`.
    pub key: String,
    /// What the handler should do, e.g. `sync_page`.
    pub kind: String,
    /// Handler input.
    pub payload: serde_json::Value,
    /// Scheduling class.
    pub lane: Lane,
    /// Not before this time; `None` = now.
    pub run_at: Option<DateTime<Utc>>,
}

impl NewJob {
    /// A job due now.
    pub fn new(
        key: impl Into<String>,
        kind: impl Into<String>,
        payload: serde_json::Value,
        lane: Lane,
    ) -> Self {
        Self {
            key: key.into(),
            kind: kind.into(),
            payload,
            lane,
            run_at: None,
        }
    }

    /// The same job, due at `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }
}

/// What [`Store::enqueue`] did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// A new queued job.
    Inserted(i64),
    /// Absorbed by the queued job of the same key (which may be a follow-up).
    Coalesced(i64),
    /// The key is running: a follow-up job was queued; it becomes claimable when the running
    /// job finishes.
    FollowUp(i64),
}

impl EnqueueOutcome {
    /// The id of the queued job that now carries the request.
    pub fn job_id(self) -> i64 {
        match self {
            Self::Inserted(id) | Self::Coalesced(id) | Self::FollowUp(id) => id,
        }
    }
}

/// A job handed to a worker by [`Store::claim`]. Pass it back to `extend`, `complete`,
/// `fail` or `release`; those calls are fenced by `lease_token`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedJob {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub lane: Lane,
    /// Attempts so far, including this one (1 on the first run).
    pub attempts: u32,
    /// Random 128-bit fencing token (hex).
    pub lease_token: String,
    pub lease_until: DateTime<Utc>,
    /// When the oldest request this job serves was made (freshness metrics).
    pub first_enqueued_at: DateTime<Utc>,
    /// When the newest request this job serves was made: a read of Notion sent after
    /// this moment sees every change behind the job.
    pub enqueued_at: DateTime<Utc>,
}

/// Why a job failed, as classified by the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// Retrying cannot help (e.g. Notion 400/401/403/404): go to `dead` now.
    pub permanent: bool,
    /// Kept as the job's `last_error` (truncated to 4 KiB). Must not contain secrets.
    pub error: String,
    /// Retry no earlier than this (e.g. from `Retry-After`); `None` = exponential backoff.
    pub retry_at: Option<DateTime<Utc>>,
}

impl JobFailure {
    /// A transient failure retried with backoff.
    pub fn transient(error: impl Into<String>) -> Self {
        Self {
            permanent: false,
            error: error.into(),
            retry_at: None,
        }
    }

    /// A failure that sends the job to `dead`.
    pub fn permanent(error: impl Into<String>) -> Self {
        Self {
            permanent: true,
            error: error.into(),
            retry_at: None,
        }
    }
}

/// What [`Store::fail`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again (possibly merged into the key's follow-up, whose values these are).
    Retrying {
        run_at: DateTime<Utc>,
        attempts: u32,
    },
    /// Moved to `dead` with the error kept.
    Dead,
}

/// One job, for listings.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub state: JobState,
    pub lane: Lane,
    pub attempts: u32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// When the latest request was added to this job.
    pub enqueued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub worker: Option<String>,
    /// When the oldest request this job serves was made.
    pub first_enqueued_at: DateTime<Utc>,
    /// Set while running.
    pub lease_until: Option<DateTime<Utc>>,
}

/// Which jobs [`Store::list_jobs`] returns (ordered by id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    /// Only jobs with exactly this key.
    pub key: Option<String>,
    /// At most this many rows; 0 = no limit.
    pub limit: u32,
}

/// Queue health figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued_interactive: u64,
    pub queued_bulk: u64,
    pub running: u64,
    pub dead: u64,
    /// Age of the oldest unserved request among queued jobs (by `first_enqueued_at`,
    /// including jobs waiting for a retry). `None` when nothing is queued.
    pub oldest_queued_age: Option<Duration>,
    /// Expired leases returned to the queue (or to `dead`) since the database was created.
    pub leases_expired_total: u64,
}

/// A [`NewJob`] with its payload serialized, ready for the writer.
pub(crate) struct PreparedJob {
    pub(crate) key: String,
    pub(crate) kind: String,
    pub(crate) payload: String,
    pub(crate) lane: Lane,
    pub(crate) run_at: Option<i64>,
}

impl PreparedJob {
    pub(crate) fn new(job: NewJob) -> Self {
        Self {
            payload: job.payload.to_string(),
            run_at: job.run_at.map(to_ms),
            key: job.key,
            kind: job.kind,
            lane: job.lane,
        }
    }
}

fn truncate_error(s: &str) -> &str {
    if s.len() <= MAX_ERROR_LEN {
        return s;
    }
    let mut end = MAX_ERROR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn attempts_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn corrupt(cx: &WriteCx, what: String) -> StoreError {
    StoreError::Database(DatabaseError::corrupt(&cx.path, what))
}

/// The payload of a coalesced job: the two requests joined field by field, so the
/// merged job does everything either asked for. Objects join key by key; booleans
/// OR; numbers and strings take the maximum (ISO-8601 times compare as strings);
/// arrays take the union; `null` yields to a value; anything else takes the new value.
pub(crate) fn join_payloads(old: Option<&str>, new: &str) -> String {
    let (Some(old), Ok(new_v)) = (old, serde_json::from_str::<serde_json::Value>(new)) else {
        return new.to_owned();
    };
    let Ok(old_v) = serde_json::from_str::<serde_json::Value>(old) else {
        return new.to_owned();
    };
    join_values(old_v, new_v).to_string()
}

fn join_values(old: serde_json::Value, new: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let joined = match a.remove(&k) {
                    Some(prev) => join_values(prev, v),
                    None => v,
                };
                a.insert(k, joined);
            }
            Value::Object(a)
        }
        (Value::Bool(a), Value::Bool(b)) => Value::Bool(a || b),
        (Value::Number(a), Value::Number(b)) => {
            if a.as_f64().unwrap_or(f64::MIN) >= b.as_f64().unwrap_or(f64::MIN) {
                Value::Number(a)
            } else {
                Value::Number(b)
            }
        }
        (Value::String(a), Value::String(b)) => Value::String(a.max(b)),
        (Value::Array(mut a), Value::Array(b)) => {
            for v in b {
                if !a.contains(&v) {
                    a.push(v);
                }
            }
            Value::Array(a)
        }
        (old, Value::Null) => old,
        (_, new) => new,
    }
}

/// Records one request for `job.key`: coalesce into the queued job, else queue a new one
/// (a follow-up if the key is running).
pub(crate) async fn enqueue_one(
    cx: &mut WriteCx,
    job: &PreparedJob,
    now: i64,
) -> Result<EnqueueOutcome, StoreError> {
    let run_at = job.run_at.unwrap_or(now);
    let row = sqlx::query(
        "SELECT (SELECT id FROM jobs WHERE key = ?1 AND state = 'queued'), \
                (SELECT payload FROM jobs WHERE key = ?1 AND state = 'queued'), \
                EXISTS (SELECT 1 FROM jobs WHERE key = ?1 AND state = 'running')",
    )
    .bind(&job.key)
    .fetch_one(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    let queued: Option<i64> = row.get(0);
    let queued_payload: Option<String> = row.get(1);
    let running: bool = row.get(2);
    if let Some(id) = queued {
        let payload = join_payloads(queued_payload.as_deref(), &job.payload);
        sqlx::query(
            "UPDATE jobs SET run_at = MIN(run_at, ?2), \
                 lane = CASE WHEN ?3 = 'interactive' THEN 'interactive' ELSE lane END, \
                 kind = ?4, payload = ?5, enqueued_at = ?6, updated_at = ?6 \
             WHERE id = ?1",
        )
        .bind(id)
        .bind(run_at)
        .bind(job.lane.as_str())
        .bind(&job.kind)
        .bind(&payload)
        .bind(now)
        .execute(&mut cx.conn)
        .await
        .map_err(|e| cx.err(e))?;
        return Ok(EnqueueOutcome::Coalesced(id));
    }
    let id = sqlx::query(
        "INSERT INTO jobs (key, kind, payload, state, lane, run_at, attempts, \
                           enqueued_at, first_enqueued_at, updated_at) \
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, 0, ?6, ?6, ?6)",
    )
    .bind(&job.key)
    .bind(&job.kind)
    .bind(&job.payload)
    .bind(job.lane.as_str())
    .bind(run_at)
    .bind(now)
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?
    .last_insert_rowid();
    Ok(if running {
        EnqueueOutcome::FollowUp(id)
    } else {
        EnqueueOutcome::Inserted(id)
    })
}

struct Enqueue(Vec<PreparedJob>);

impl WriteOp for Enqueue {
    type Output = Vec<EnqueueOutcome>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Self::Output, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            let mut out = Vec::with_capacity(self.0.len());
            for job in &self.0 {
                out.push(enqueue_one(cx, job, now).await?);
            }
            Ok(out)
        })
    }
}

/// The running row a fenced call acts on.
struct Held {
    key: String,
    attempts: u32,
    worker: Option<String>,
}

/// The running job `id` if `token` still holds its lease.
async fn held(cx: &mut WriteCx, id: i64, token: &str) -> Result<Option<Held>, StoreError> {
    let row = sqlx::query(
        "SELECT key, attempts, worker FROM jobs \
         WHERE id = ?1 AND state = 'running' AND lease_token = ?2",
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

/// The key's queued job, if any, with the payload it would have after absorbing job
/// `other`'s (both requests' payloads joined; see [`join_payloads`]).
async fn queued_for_merge(
    cx: &mut WriteCx,
    key: &str,
    other: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT q.id, q.payload, o.payload FROM jobs q, jobs o \
         WHERE q.key = ?1 AND q.state = 'queued' AND o.id = ?2",
    )
    .bind(key)
    .bind(other)
    .fetch_optional(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    Ok(row.map(|r| {
        let queued: String = r.get(1);
        let other: String = r.get(2);
        (r.get(0), join_payloads(Some(&other), &queued))
    }))
}

/// Returns running job `id` to the queue. If the key already has a queued follow-up, the
/// follow-up absorbs it (earliest run_at, highest lane, oldest first_enqueued_at, most
/// attempts, payloads joined) and the running row is deleted. Returns the queued job's (run_at, attempts).
async fn requeue_running(
    cx: &mut WriteCx,
    id: i64,
    key: &str,
    run_at: i64,
    attempts: u32,
    last_error: Option<&str>,
    now: i64,
) -> Result<(i64, u32), StoreError> {
    match queued_for_merge(cx, key, id).await? {
        Some((follow_up, payload)) => {
            let row = sqlx::query(
                "UPDATE jobs SET \
                     payload = ?7, \
                     run_at = MIN(jobs.run_at, ?2), \
                     lane = CASE WHEN jobs.lane = 'interactive' OR old.lane = 'interactive' \
                                 THEN 'interactive' ELSE 'bulk' END, \
                     first_enqueued_at = MIN(jobs.first_enqueued_at, old.first_enqueued_at), \
                     attempts = MAX(jobs.attempts, ?3), \
                     last_error = COALESCE(?4, jobs.last_error), \
                     updated_at = ?5 \
                 FROM (SELECT lane, first_enqueued_at FROM jobs WHERE id = ?6) AS old \
                 WHERE jobs.id = ?1 \
                 RETURNING jobs.run_at, jobs.attempts",
            )
            .bind(follow_up)
            .bind(run_at)
            .bind(i64::from(attempts))
            .bind(last_error)
            .bind(now)
            .bind(id)
            .bind(payload)
            .fetch_one(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            sqlx::query("DELETE FROM jobs WHERE id = ?1")
                .bind(id)
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok((row.get(0), attempts_u32(row.get(1))))
        }
        None => {
            sqlx::query(
                "UPDATE jobs SET state = 'queued', run_at = ?2, attempts = ?3, \
                     last_error = COALESCE(?4, last_error), lease_token = NULL, \
                     lease_until = NULL, worker = NULL, updated_at = ?5 \
                 WHERE id = ?1",
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
    }
}

async fn mark_dead(
    cx: &mut WriteCx,
    id: i64,
    attempts: u32,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET state = 'dead', attempts = ?2, last_error = ?3, lease_token = NULL, \
             lease_until = NULL, updated_at = ?4 \
         WHERE id = ?1",
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
pub(crate) async fn reap(cx: &mut WriteCx, now: i64) -> Result<u64, StoreError> {
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
    let rows = sqlx::query(
        "SELECT id, key, attempts, worker FROM jobs \
         WHERE state = 'running' \
           AND (lease_until <= ?1 OR (?2 IS NOT NULL AND substr(worker, 1, length(?2)) = ?2)) \
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
    sqlx::query(
        "INSERT INTO store_counters (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )
    .bind(LEASES_EXPIRED)
    .bind(i64::try_from(n).unwrap_or(i64::MAX))
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    tracing::info!(jobs.reaped = n, "expired job leases returned to the queue");
    Ok(n)
}

struct Reap(Option<String>);

impl WriteOp for Reap {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            reap_where(cx, now, self.0.as_deref()).await
        })
    }
}

struct Claim {
    n: usize,
    worker: String,
    lease_ms: i64,
}

/// Claims the due job of `lane` that is first by (run_at, id), skipping follow-ups whose
/// key is running.
async fn claim_one(
    cx: &mut WriteCx,
    lane: Lane,
    now: i64,
    lease_until: i64,
    worker: &str,
) -> Result<Option<ClaimedJob>, StoreError> {
    let token = format!("{:032x}", rand::random::<u128>());
    let row = sqlx::query(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = ?1, \
             lease_until = ?2, worker = ?3, updated_at = ?4 \
         WHERE id = (SELECT j.id FROM jobs j \
                     WHERE j.state = 'queued' AND j.lane = ?5 AND j.run_at <= ?4 \
                       AND NOT EXISTS (SELECT 1 FROM jobs r \
                                       WHERE r.key = j.key AND r.state = 'running') \
                     ORDER BY j.run_at, j.id LIMIT 1) \
         RETURNING id, key, kind, payload, attempts, first_enqueued_at, enqueued_at",
    )
    .bind(&token)
    .bind(lease_until)
    .bind(worker)
    .bind(now)
    .bind(lane.as_str())
    .fetch_optional(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.get(0);
    let payload: String = row.get(3);
    let payload = serde_json::from_str(&payload)
        .map_err(|e| corrupt(cx, format!("job {id}: stored payload is not JSON: {e}")))?;
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
                let preferred = if floor > 0 && cx.interactive_streak >= floor {
                    Lane::Bulk
                } else {
                    Lane::Interactive
                };
                let mut job = claim_one(cx, preferred, now, lease_until, &self.worker).await?;
                if job.is_none() {
                    job = claim_one(cx, preferred.other(), now, lease_until, &self.worker).await?;
                }
                let Some(job) = job else { break };
                cx.interactive_streak = match job.lane {
                    Lane::Interactive => cx.interactive_streak.saturating_add(1),
                    Lane::Bulk => 0,
                };
                out.push(job);
            }
            Ok(out)
        })
    }
}

/// The calls fenced by a lease token.
enum Fenced {
    Extend { lease_ms: i64 },
    Complete,
    Release,
    Fail(JobFailure),
}

struct FencedOp {
    id: i64,
    token: String,
    action: Fenced,
}

/// Result of a fenced call: `Err(LeaseLost)` is a rejection, not a failed transaction.
type FencedResult = Result<Option<FailOutcome>, StoreError>;

impl WriteOp for FencedOp {
    type Output = FencedResult;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<FencedResult, StoreError>> {
        Box::pin(async move {
            let now_dt = cx.now();
            let now = to_ms(now_dt);
            let lost = Err(StoreError::LeaseLost { job_id: self.id });
            match &self.action {
                Fenced::Extend { lease_ms } => {
                    let done = sqlx::query(
                        "UPDATE jobs SET lease_until = ?3, updated_at = ?4 \
                         WHERE id = ?1 AND state = 'running' AND lease_token = ?2",
                    )
                    .bind(self.id)
                    .bind(&self.token)
                    .bind(now.saturating_add(*lease_ms))
                    .bind(now)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                    Ok(if done.rows_affected() == 1 {
                        Ok(None)
                    } else {
                        lost
                    })
                }
                Fenced::Complete => {
                    let done = sqlx::query(
                        "DELETE FROM jobs WHERE id = ?1 AND state = 'running' AND lease_token = ?2",
                    )
                    .bind(self.id)
                    .bind(&self.token)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                    Ok(if done.rows_affected() == 1 {
                        Ok(None)
                    } else {
                        lost
                    })
                }
                Fenced::Release => {
                    let Some(h) = held(cx, self.id, &self.token).await? else {
                        return Ok(lost);
                    };
                    let attempts = h.attempts.saturating_sub(1);
                    requeue_running(cx, self.id, &h.key, now, attempts, None, now).await?;
                    Ok(Ok(None))
                }
                Fenced::Fail(failure) => {
                    let Some(h) = held(cx, self.id, &self.token).await? else {
                        return Ok(lost);
                    };
                    let error = truncate_error(&failure.error);
                    if failure.permanent || h.attempts >= cx.config.max_attempts {
                        mark_dead(cx, self.id, h.attempts, error, now).await?;
                        tracing::warn!(
                            job.id = self.id, job.key = %h.key, job.attempts = h.attempts,
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
                    let (run_at, attempts) = requeue_running(
                        cx,
                        self.id,
                        &h.key,
                        retry_at,
                        h.attempts,
                        Some(error),
                        now,
                    )
                    .await?;
                    Ok(Ok(Some(FailOutcome::Retrying {
                        run_at: from_ms(&cx.path, run_at)?,
                        attempts,
                    })))
                }
            }
        })
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

struct RetryJob(i64);

/// Requeues dead (or queued) job `id` now with attempts reset; a dead job whose key already
/// has a queued job is merged into it. Returns false for unknown or running jobs.
async fn retry_one(cx: &mut WriteCx, id: i64, now: i64) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT key, state FROM jobs WHERE id = ?1")
        .bind(id)
        .fetch_optional(&mut cx.conn)
        .await
        .map_err(|e| cx.err(e))?;
    let Some(row) = row else { return Ok(false) };
    let key: String = row.get(0);
    let state: String = row.get(1);
    match state.as_str() {
        "queued" => {
            sqlx::query("UPDATE jobs SET run_at = ?2, attempts = 0, updated_at = ?2 WHERE id = ?1")
                .bind(id)
                .bind(now)
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(true)
        }
        "dead" => {
            match queued_for_merge(cx, &key, id).await? {
                Some((queued, payload)) => {
                    sqlx::query(
                        "UPDATE jobs SET payload = ?4, run_at = MIN(jobs.run_at, ?2), attempts = 0, \
                             lane = CASE WHEN jobs.lane = 'interactive' OR old.lane = 'interactive' \
                                         THEN 'interactive' ELSE 'bulk' END, \
                             first_enqueued_at = MIN(jobs.first_enqueued_at, old.first_enqueued_at), \
                             updated_at = ?2 \
                         FROM (SELECT lane, first_enqueued_at FROM jobs WHERE id = ?3) AS old \
                         WHERE jobs.id = ?1",
                    )
                    .bind(queued)
                    .bind(now)
                    .bind(id)
                    .bind(payload)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                    sqlx::query("DELETE FROM jobs WHERE id = ?1")
                        .bind(id)
                        .execute(&mut cx.conn)
                        .await
                        .map_err(|e| cx.err(e))?;
                }
                None => {
                    sqlx::query(
                        "UPDATE jobs SET state = 'queued', run_at = ?2, attempts = 0, \
                             worker = NULL, updated_at = ?2 \
                         WHERE id = ?1",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

impl WriteOp for RetryJob {
    type Output = bool;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            retry_one(cx, self.0, now).await
        })
    }
}

struct RetryDead;

impl WriteOp for RetryDead {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            let ids: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM jobs WHERE state = 'dead' ORDER BY id")
                    .fetch_all(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
            let mut n = 0;
            for id in ids {
                if retry_one(cx, id, now).await? {
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

struct PurgeDead;

impl WriteOp for PurgeDead {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM jobs WHERE state = 'dead'")
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected())
        })
    }
}

fn job_row(store: &Store, r: &SqliteRow) -> Result<JobRow, StoreError> {
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
    })
}

impl Store {
    /// Records a request for work. A queued job with the same key absorbs it (earliest
    /// `run_at` and highest lane win; the kind becomes the new request's and the payloads
    /// are joined field by field, see `join_payloads`) →
    /// `Coalesced`. If the key is running, one follow-up is queued → `FollowUp` (further
    /// requests coalesce into that follow-up). Otherwise → `Inserted`.
    #[tracing::instrument(skip_all, fields(job.key = %job.key, job.kind = %job.kind, job.lane = %job.lane), err(level = "debug"))]
    pub async fn enqueue(&self, job: NewJob) -> Result<EnqueueOutcome, StoreError> {
        let mut out = self.write(Enqueue(vec![PreparedJob::new(job)])).await?;
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
        let jobs = jobs.into_iter().map(PreparedJob::new).collect();
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

    /// Counts per state and lane, oldest queued age, expired-lease total.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        // Separate subqueries so each count is answered from its partial index.
        let row = sqlx::query(
            "SELECT \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND lane = 'interactive'), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND lane = 'bulk'), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'running'), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'dead'), \
                 (SELECT MIN(first_enqueued_at) FROM jobs WHERE state = 'queued'), \
                 (SELECT value FROM store_counters WHERE name = ?1)",
        )
        .bind(LEASES_EXPIRED)
        .fetch_one(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        let count = |i: usize| -> u64 { u64::try_from(row.get::<i64, _>(i)).unwrap_or(0) };
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

    /// Jobs matching `filter`, by id.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobRow>, StoreError> {
        let limit = if filter.limit == 0 {
            -1
        } else {
            i64::from(filter.limit)
        };
        let rows = sqlx::query(
            "SELECT id, key, kind, state, lane, attempts, run_at, last_error, enqueued_at, \
                    updated_at, worker, first_enqueued_at, lease_until \
             FROM jobs \
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR key = ?2) \
             ORDER BY id LIMIT ?3",
        )
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.key)
        .bind(limit)
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
    /// claimable queued job (follow-ups of running keys excluded), or the earliest lease
    /// expiry of a running job (claim reaps it). `None` when neither exists. The time may be
    /// in the past (work is due now).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM ( \
                 SELECT MIN(j.run_at) AS t FROM jobs j \
                 WHERE j.state = 'queued' AND NOT EXISTS \
                     (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.state = 'running') \
                 UNION ALL \
                 SELECT MIN(lease_until) FROM jobs WHERE state = 'running')",
        )
        .fetch_one(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        next.map(|ms| from_ms(self.path(), ms)).transpose()
    }
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

    #[test]
    fn error_truncation_respects_char_boundaries() {
        let s = "é".repeat(MAX_ERROR_LEN);
        let t = truncate_error(&s);
        assert!(t.len() <= MAX_ERROR_LEN);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(truncate_error("short"), "short");
    }

    #[test]
    fn lanes_order_and_parse() {
        assert!(Lane::Interactive > Lane::Bulk);
        for lane in [Lane::Bulk, Lane::Interactive] {
            assert_eq!(lane.as_str().parse::<Lane>().unwrap(), lane);
        }
        for state in [JobState::Queued, JobState::Running, JobState::Dead] {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        }
        assert!("urgent".parse::<Lane>().is_err());
    }

    #[test]
    fn coalesced_payloads_join_field_by_field() {
        let check = |old: &str, new: &str, expected: serde_json::Value| {
            let joined: serde_json::Value =
                serde_json::from_str(&super::join_payloads(Some(old), new)).unwrap();
            assert_eq!(joined, expected, "{old} + {new}");
        };
        check(
            r#"{"props":false,"body":true,"human":true,"event_time":"2026-11-23T10:00:01.000Z"}"#,
            r#"{"props":true,"body":false,"human":false,"event_time":"2026-11-23T10:00:00.500Z"}"#,
            serde_json::json!({"props":true,"body":true,"human":true,"event_time":"2026-11-23T10:00:01.000Z"}),
        );
        check(
            r#"{"n":3,"ids":[1,2]}"#,
            r#"{"n":2,"ids":[2,3],"x":null}"#,
            serde_json::json!({"n":3,"ids":[1,2,3],"x":null}),
        );
        check(
            r#"{"a":"x"}"#,
            r#"{"a":null}"#,
            serde_json::json!({"a":"x"}),
        );
        check("not json", r#"{"a":1}"#, serde_json::json!({"a":1}));
        assert_eq!(super::join_payloads(None, "{}"), "{}");
    }
}
