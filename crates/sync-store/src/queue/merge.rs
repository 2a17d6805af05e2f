//! The queue's one merge rule: how a queued job absorbs another request or job of its
//! key ([`Request::absorb`]), and the one statement that writes a key's queued job
//! ([`enqueue_all`], used by `enqueue`, `enqueue_batch` and webhook ingest alike).

use std::collections::HashMap;

use super::types::{EnqueueOutcome, Lane, PreparedJob, attempts_u32, corrupt};
use crate::db;
use crate::error::StoreError;
use crate::writer::WriteCx;

/// Rows per multi-row statement (14 bound values per job row: far below SQLite's
/// 32766-variable limit).
const ROWS_PER_STATEMENT: usize = 256;

/// Multi-row statements of up to this many rows stay prepared in the write connection's
/// statement cache (the usual batch sizes); larger ones are prepared for one use.
const CACHED_STATEMENT_ROWS: usize = 24;

pub(crate) fn cache_statement(rows: usize) -> bool {
    rows <= CACHED_STATEMENT_ROWS
}

/// Everything a queued job carries besides its key and state: what the merge rule joins.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Request {
    pub(crate) kind: String,
    /// JSON text.
    pub(crate) payload: String,
    pub(crate) lane: Lane,
    /// Unix ms.
    pub(crate) run_at: i64,
    pub(crate) attempts: u32,
    pub(crate) enqueued_at: i64,
    pub(crate) first_enqueued_at: i64,
    pub(crate) last_error: Option<String>,
    /// When the oldest interactive request arrived (Unix ms), if any.
    pub(crate) interactive_since: Option<i64>,
    /// The batch one read may answer the job with, if any.
    pub(crate) batch: Option<String>,
    /// The source whose workers claim the job.
    pub(crate) source: String,
}

impl Request {
    /// A fresh request made at `now`.
    pub(crate) fn new(job: &PreparedJob, now: i64) -> Self {
        Self {
            kind: job.kind.clone(),
            payload: job.payload.clone(),
            lane: job.lane,
            run_at: job.run_at.unwrap_or(now),
            attempts: 0,
            enqueued_at: now,
            first_enqueued_at: now,
            last_error: None,
            interactive_since: (job.lane == Lane::Interactive).then_some(now),
            batch: job.batch.clone(),
            source: job.source.clone(),
        }
    }

    /// The merge rule, for every way two jobs of one key become one (a queued job
    /// absorbing a request, a failed or expired run returning into its follow-up, a
    /// retried dead job meeting a queued one): `self` is the older, `newer` the later.
    /// The result does everything either asked for, as soon as either asked:
    /// the newer kind; the payloads joined ([`join_payloads`]); the earliest `run_at`;
    /// the higher lane; the oldest `first_enqueued_at`, `interactive_since` and the
    /// newest `enqueued_at`; the most attempts; the older's error, else the newer's;
    /// a batch where either has one (the greater of two: the batch's reader completes
    /// only what its read answered, so any batch is safe); the newer's source (a page
    /// moved to another source's data source is claimed by that source), and then only
    /// the newer's batch.
    pub(crate) fn absorb(self, newer: Request) -> Request {
        Request {
            payload: join_payloads(Some(&self.payload), &newer.payload),
            kind: newer.kind,
            lane: self.lane.max(newer.lane),
            run_at: self.run_at.min(newer.run_at),
            attempts: self.attempts.max(newer.attempts),
            enqueued_at: self.enqueued_at.max(newer.enqueued_at),
            first_enqueued_at: self.first_enqueued_at.min(newer.first_enqueued_at),
            last_error: self.last_error.or(newer.last_error),
            interactive_since: match (self.interactive_since, newer.interactive_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            // A batch is one source's read: a job moving to another source leaves it.
            batch: if self.source == newer.source {
                self.batch.max(newer.batch)
            } else {
                newer.batch
            },
            source: newer.source,
        }
    }
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

/// The columns of a [`Request`], in [`request_from_row`]'s order (one list for every
/// query that reads one).
macro_rules! request_columns {
    () => {
        "kind, payload, lane, run_at, attempts, enqueued_at, first_enqueued_at, last_error, \
         interactive_since, batch, source"
    };
}

/// The key's queued job as stored, with its id.
pub(crate) async fn queued_job(
    cx: &mut WriteCx,
    key: &str,
) -> Result<Option<(i64, Request)>, StoreError> {
    let row = db::query(concat!(
        "SELECT id, ",
        request_columns!(),
        " FROM jobs WHERE key = $1 AND state = 'queued'"
    ))
    .bind(key)
    .fetch_optional(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    row.map(|r| Ok((r.get(0), request_from_row(cx, &r, 1)?)))
        .transpose()
}

/// Job `id` as stored (any state).
pub(crate) async fn job_by_id(cx: &mut WriteCx, id: i64) -> Result<Request, StoreError> {
    let row = db::query(concat!(
        "SELECT ",
        request_columns!(),
        " FROM jobs WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?;
    request_from_row(cx, &row, 0)
}

/// A [`Request`] from the columns of `request_columns!` starting at column `at`.
pub(crate) fn request_from_row(
    cx: &WriteCx,
    r: &db::Row,
    at: usize,
) -> Result<Request, StoreError> {
    let lane: String = r.get(at + 2);
    Ok(Request {
        kind: r.get(at),
        payload: r.get(at + 1),
        lane: lane
            .parse()
            .map_err(|e| corrupt(cx, format!("job lane: {e}")))?,
        run_at: r.get(at + 3),
        attempts: attempts_u32(r.get(at + 4)),
        enqueued_at: r.get(at + 5),
        first_enqueued_at: r.get(at + 6),
        last_error: r.get(at + 7),
        interactive_since: r.get(at + 8),
        batch: r.get(at + 9),
        source: r.get(at + 10),
    })
}

/// Writes `(key, job)` rows as the keys' queued jobs: updates the key's queued row where
/// there is one (the values are already merged), inserts one otherwise (a follow-up when
/// the key is running). Returns each key's queued job id.
pub(crate) async fn write_queued(
    cx: &mut WriteCx,
    rows: &[(&str, &Request)],
    now: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut ids = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb = db::Builder::new(
            "INSERT INTO jobs (key, kind, payload, lane, run_at, attempts, enqueued_at, \
             first_enqueued_at, last_error, interactive_since, batch, source, updated_at, state) \
             VALUES ",
        );
        qb.push_rows(chunk, |row, (key, job)| {
            row.push_bind(key.to_string())
                .push_bind(job.kind.clone())
                .push_bind(job.payload.clone())
                .push_bind(job.lane.as_str())
                .push_bind(job.run_at)
                .push_bind(i64::from(job.attempts))
                .push_bind(job.enqueued_at)
                .push_bind(job.first_enqueued_at)
                .push_bind(job.last_error.clone())
                .push_bind(job.interactive_since)
                .push_bind(job.batch.clone())
                .push_bind(job.source.clone())
                .push_bind(now)
                .push("'queued'");
        });
        qb.push(
            " ON CONFLICT (key) WHERE state = 'queued' DO UPDATE SET \
                 kind = excluded.kind, payload = excluded.payload, lane = excluded.lane, \
                 run_at = excluded.run_at, attempts = excluded.attempts, \
                 enqueued_at = excluded.enqueued_at, \
                 first_enqueued_at = excluded.first_enqueued_at, \
                 last_error = excluded.last_error, \
                 interactive_since = excluded.interactive_since, batch = excluded.batch, \
                 source = excluded.source, \
                 updated_at = excluded.updated_at \
             RETURNING key, id",
        );
        let written = qb
            .build()
            .persistent(cache_statement(chunk.len()))
            .fetch_all(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
        ids.extend(
            written
                .iter()
                .map(|r| (r.get::<String>(0), r.get::<i64>(1))),
        );
    }
    Ok(ids)
}

/// Records requests in order, each coalescing into its key's queued job (or into an earlier
/// request of the batch) by [`Request::absorb`]: a few statements for any number of jobs.
pub(crate) async fn enqueue_all(
    cx: &mut WriteCx,
    jobs: &[&PreparedJob],
    now: i64,
) -> Result<Vec<EnqueueOutcome>, StoreError> {
    // Fold the batch per key, in order.
    let mut keys: Vec<&str> = Vec::new();
    let mut merged: HashMap<&str, Request> = HashMap::with_capacity(jobs.len());
    for job in jobs {
        let request = Request::new(job, now);
        match merged.remove(job.key.as_str()) {
            Some(earlier) => {
                merged.insert(&job.key, earlier.absorb(request));
            }
            None => {
                keys.push(&job.key);
                merged.insert(&job.key, request);
            }
        }
    }
    // Join with what the queue holds.
    let mut queued: HashMap<String, Request> = HashMap::new();
    let mut running: std::collections::HashSet<String> = std::collections::HashSet::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut qb = db::Builder::new(concat!(
            "SELECT key, state, ",
            request_columns!(),
            " FROM jobs WHERE state IN ('queued', 'running') AND key IN ("
        ));
        qb.push_list(chunk.iter().copied());
        qb.push(")");
        let rows = qb
            .build()
            .persistent(cache_statement(chunk.len()))
            .fetch_all(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
        for r in &rows {
            let key: String = r.get(0);
            let state: String = r.get(1);
            if state == "queued" {
                queued.insert(key, request_from_row(cx, r, 2)?);
            } else {
                running.insert(key);
            }
        }
    }
    let rows: Vec<(&str, Request)> = keys
        .iter()
        .map(|key| {
            let request = merged.remove(key).expect("every key was folded");
            let job = match queued.get(*key) {
                Some(q) => q.clone().absorb(request),
                None => request,
            };
            (*key, job)
        })
        .collect();
    let refs: Vec<(&str, &Request)> = rows.iter().map(|(k, j)| (*k, j)).collect();
    let ids = write_queued(cx, &refs, now).await?;
    // One outcome per request: the first of a key says what happened to the key.
    let mut first = std::collections::HashSet::with_capacity(keys.len());
    jobs.iter()
        .map(|job| {
            let key = job.key.as_str();
            let id = *ids
                .get(key)
                .ok_or_else(|| corrupt(cx, format!("no queued job written for {key}")))?;
            Ok(if !first.insert(key) || queued.contains_key(key) {
                EnqueueOutcome::Coalesced(id)
            } else if running.contains(key) {
                EnqueueOutcome::FollowUp(id)
            } else {
                EnqueueOutcome::Inserted(id)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lane: Lane, run_at: i64, at: i64, payload: &str) -> Request {
        Request {
            kind: format!("k{at}"),
            payload: payload.into(),
            lane,
            run_at,
            attempts: 0,
            enqueued_at: at,
            first_enqueued_at: at,
            last_error: None,
            interactive_since: (lane == Lane::Interactive).then_some(at),
            batch: None,
            source: "default".into(),
        }
    }

    #[test]
    fn the_merged_job_does_everything_either_asked_as_soon_as_either_asked() {
        let mut old = request(Lane::Bulk, 50, 10, r#"{"props":false,"body":true}"#);
        old.attempts = 3;
        old.last_error = Some("boom".into());
        let new = request(Lane::Interactive, 70, 20, r#"{"props":true,"body":false}"#);
        let m = old.absorb(new);
        assert_eq!(m.kind, "k20");
        assert_eq!(m.lane, Lane::Interactive);
        assert_eq!(m.run_at, 50);
        assert_eq!((m.first_enqueued_at, m.enqueued_at), (10, 20));
        // Raised to interactive by the newer request: its age counts from that one.
        assert_eq!(m.interactive_since, Some(20));
        let both = request(Lane::Interactive, 0, 5, "{}").absorb(m.clone());
        assert_eq!(both.interactive_since, Some(5));
        assert_eq!(m.attempts, 3);
        assert_eq!(m.last_error.as_deref(), Some("boom"));
        let payload: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
        assert_eq!(payload, serde_json::json!({"props": true, "body": true}));
    }

    #[test]
    fn coalesced_payloads_join_field_by_field() {
        let check = |old: &str, new: &str, expected: serde_json::Value| {
            let joined: serde_json::Value =
                serde_json::from_str(&join_payloads(Some(old), new)).unwrap();
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
        assert_eq!(join_payloads(None, "{}"), "{}");
    }
}
