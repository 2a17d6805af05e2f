//! The queue's vocabulary: lanes, states, requests, claimed jobs, failures, listings and
//! stats, and the small conversions every queue module shares.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{DatabaseError, StoreError};
use crate::time::to_ms;
use crate::writer::WriteCx;

/// Longest `last_error` kept (bytes); longer messages are truncated.
pub(crate) const MAX_ERROR_LEN: usize = 4096;

/// Counter name for [`QueueStats::leases_expired_total`].
pub(crate) const LEASES_EXPIRED: &str = "leases_expired_total";

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

    pub(crate) fn other(self) -> Self {
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
    /// Jobs of one batch can be answered by one read ([`Store::claim_batch`]);
    /// `None` = read on its own.
    ///
    /// [`Store::claim_batch`]: crate::Store::claim_batch
    pub batch: Option<String>,
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
            batch: None,
        }
    }

    /// The same job, due at `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// The same job, in `batch` (or in none).
    pub fn in_batch(mut self, batch: Option<String>) -> Self {
        self.batch = batch;
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
    /// When the oldest interactive request this job serves was made, if any (a webhook's
    /// request merged into a queued bulk job raises its lane but not its age).
    pub interactive_since: Option<DateTime<Utc>>,
}

impl ClaimedJob {
    /// When the oldest request of the job's lane was made: what its freshness counts
    /// from (an interactive job from its oldest interactive request).
    pub fn lane_since(&self) -> DateTime<Utc> {
        match (self.lane, self.interactive_since) {
            (Lane::Interactive, Some(t)) => t,
            _ => self.first_enqueued_at,
        }
    }
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
    /// The source whose workers claim it.
    pub source: String,
}

/// Which jobs [`Store::list_jobs`] returns (ordered by id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    /// Only jobs with exactly this key.
    pub key: Option<String>,
    /// At most this many rows; 0 = no limit.
    pub limit: u32,
    /// Only this source's jobs.
    pub source: Option<String>,
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
    pub(crate) batch: Option<String>,
    /// The source whose workers claim it (the enqueuing store's scope).
    pub(crate) source: String,
}

impl PreparedJob {
    pub(crate) fn new(job: NewJob, source: &str) -> Self {
        Self {
            source: source.to_owned(),
            payload: job.payload.to_string(),
            run_at: job.run_at.map(to_ms),
            key: job.key,
            kind: job.kind,
            lane: job.lane,
            batch: job.batch,
        }
    }
}

pub(crate) fn truncate_error(s: &str) -> &str {
    if s.len() <= MAX_ERROR_LEN {
        return s;
    }
    let mut end = MAX_ERROR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn attempts_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn corrupt(cx: &WriteCx, what: String) -> StoreError {
    StoreError::Database(DatabaseError::corrupt(&cx.path, what))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
