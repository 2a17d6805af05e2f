//! Webhook intake: the event log (deduplication by event id, retention) with the event's
//! jobs enqueued in the same group-committed transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::db;
use crate::error::StoreError;
use crate::queue::merge::{cache_statement, enqueue_all};
use crate::queue::{NewJob, PreparedJob};
use crate::store::Store;
use crate::time::{from_iso, to_iso, to_ms};
use crate::writer::{BoxFut, Erased, WriteCx, WriteOp, exec};

/// A verified webhook delivery and the jobs it should cause.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingEvent {
    /// Notion's event `id`; deliveries with an id already in the log are duplicates.
    pub event_id: String,
    /// e.g. `page.properties_updated`.
    pub event_type: String,
    /// `entity.type`, e.g. `page`.
    pub entity_type: String,
    /// `entity.id`.
    pub entity_id: String,
    /// Notion's delivery attempt (1-based).
    pub attempt_number: u32,
    /// The event's `timestamp`, if present.
    pub event_time: Option<DateTime<Utc>>,
    /// Enqueued (with the usual coalescing) only if the event is new. May be empty
    /// (events that are recorded only).
    pub jobs: Vec<NewJob>,
}

/// What [`Store::ingest`] did; either way the answer is durable when returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// New event: recorded and its jobs enqueued.
    Inserted,
    /// The event id was already recorded; nothing changed.
    Duplicate,
}

/// An [`IncomingEvent`] prepared for the writer.
pub(crate) struct IngestData {
    event_id: String,
    event_type: String,
    entity_type: String,
    entity_id: String,
    attempt_number: i64,
    event_time: Option<String>,
    jobs: Vec<PreparedJob>,
}

/// One caller's ingest waiting in the writer.
struct IngestItem {
    data: IngestData,
    result: Option<Result<IngestOutcome, StoreError>>,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// Event rows per multi-row statement (7 bound values each: far below SQLite's
/// 32766-variable limit).
const ROWS_PER_STATEMENT: usize = 256;

/// Every ingest of one writer batch, applied with a few multi-row statements instead of
/// three statements per event: one `INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING
/// event_id` for the events, then the jobs of the new ones through the queue's one
/// enqueue path ([`enqueue_all`]: one read, one upsert), in order, so coalescing is the
/// same as enqueueing one by one. An id appearing twice in the batch is inserted once (first caller) and a
/// duplicate for the others.
///
/// Should a statement fail for a reason that is not environmental, the writer rolls the
/// transaction back and re-runs it with this group in one-by-one mode: each event in its
/// own savepoint, so the error reaches only the caller whose event caused it.
struct IngestGroup {
    items: Vec<IngestItem>,
    one_by_one: bool,
}

impl IngestGroup {
    /// One caller's ingest; the writer merges the ingests of a batch into one group.
    fn single(data: IngestData, reply: oneshot::Sender<Result<IngestOutcome, StoreError>>) -> Self {
        Self {
            items: vec![IngestItem {
                data,
                result: None,
                reply,
            }],
            one_by_one: false,
        }
    }

    async fn apply_batched(&mut self, cx: &mut WriteCx) -> Result<(), StoreError> {
        let now = cx.now();
        let now_iso = to_iso(now);
        let now_ms = to_ms(now);
        let mut seen = HashSet::with_capacity(self.items.len());
        let mut candidates = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter_mut().enumerate() {
            if seen.insert(item.data.event_id.as_str()) {
                candidates.push(i);
            } else {
                item.result = Some(Ok(IngestOutcome::Duplicate));
            }
        }
        let mut inserted: HashSet<String> = HashSet::with_capacity(candidates.len());
        for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
            let mut qb = db::Builder::new(
                "INSERT INTO webhook_events (event_id, event_type, entity_type, entity_id, \
                 attempt_number, event_time, received_at) VALUES ",
            );
            qb.push_rows(chunk, |row, &i| {
                let d = &self.items[i].data;
                row.push_bind(d.event_id.clone())
                    .push_bind(d.event_type.clone())
                    .push_bind(d.entity_type.clone())
                    .push_bind(d.entity_id.clone())
                    .push_bind(d.attempt_number)
                    .push_bind(d.event_time.clone())
                    .push_bind(now_iso.clone());
            });
            qb.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
            let ids: Vec<String> = qb
                .build_query_scalar()
                .persistent(cache_statement(chunk.len()))
                .fetch_all(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            inserted.extend(ids);
        }
        let new_jobs: Vec<&PreparedJob> = candidates
            .iter()
            .map(|&i| &self.items[i].data)
            .filter(|d| inserted.contains(&d.event_id))
            .flat_map(|d| d.jobs.iter())
            .collect();
        enqueue_all(cx, &new_jobs, now_ms).await?;
        for &i in &candidates {
            let item = &mut self.items[i];
            item.result = Some(Ok(if inserted.contains(&item.data.event_id) {
                IngestOutcome::Inserted
            } else {
                IngestOutcome::Duplicate
            }));
        }
        Ok(())
    }

    async fn apply_one_by_one(&mut self, cx: &mut WriteCx) -> Result<(), StoreError> {
        let now = cx.now();
        for item in &mut self.items {
            exec(cx, "SAVEPOINT ingest_one").await?;
            match ingest_one(cx, &item.data, now).await {
                Ok(outcome) => {
                    exec(cx, "RELEASE ingest_one").await?;
                    item.result = Some(Ok(outcome));
                }
                Err(e) if e.aborts_batch() => return Err(e),
                Err(e) => {
                    exec(cx, "ROLLBACK TO ingest_one").await?;
                    exec(cx, "RELEASE ingest_one").await?;
                    item.result = Some(Err(e));
                }
            }
        }
        Ok(())
    }
}

/// One event with its own statements (the fallback path).
async fn ingest_one(
    cx: &mut WriteCx,
    d: &IngestData,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, StoreError> {
    let inserted = db::query(
        "INSERT INTO webhook_events (event_id, event_type, entity_type, entity_id, \
                                     attempt_number, event_time, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&d.event_id)
    .bind(&d.event_type)
    .bind(&d.entity_type)
    .bind(&d.entity_id)
    .bind(d.attempt_number)
    .bind(&d.event_time)
    .bind(to_iso(now))
    .execute(&mut cx.conn)
    .await
    .map_err(|e| cx.err(e))?
    .rows_affected();
    if inserted == 0 {
        return Ok(IngestOutcome::Duplicate);
    }
    let jobs: Vec<&PreparedJob> = d.jobs.iter().collect();
    enqueue_all(cx, &jobs, to_ms(now)).await?;
    Ok(IngestOutcome::Inserted)
}

impl Erased for IngestGroup {
    fn standalone(&self) -> bool {
        false
    }

    fn groups(&self) -> bool {
        true
    }

    fn absorb(&mut self, other: Box<dyn Erased>) -> Result<(), Box<dyn Erased>> {
        let any: &dyn std::any::Any = other.as_ref();
        if !any.is::<IngestGroup>() {
            return Err(other);
        }
        let other: Box<dyn std::any::Any + Send> = other;
        if let Ok(group) = other.downcast::<IngestGroup>() {
            self.items.extend(group.items);
        }
        Ok(())
    }

    fn apply<'a>(&'a mut self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            for item in &mut self.items {
                item.result = None;
            }
            if self.one_by_one {
                self.apply_one_by_one(cx).await
            } else {
                self.apply_batched(cx).await
            }
        })
    }

    fn retry_after(&mut self, e: &StoreError) -> bool {
        if self.one_by_one {
            return false;
        }
        tracing::warn!(error = %e, events = self.items.len(), "batched ingest failed; applying the events one by one");
        self.one_by_one = true;
        true
    }

    fn reply_ok(self: Box<Self>) {
        for item in self.items {
            // Every item has a result once apply returned Ok.
            let result = item.result.unwrap_or(Err(StoreError::Closed));
            let _ = item.reply.send(result);
        }
    }

    fn reply_err(self: Box<Self>, e: StoreError) {
        for item in self.items {
            let _ = item.reply.send(Err(e.clone()));
        }
    }
}

struct PruneEvents {
    retention: chrono::Duration,
}

impl WriteOp for PruneEvents {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let cutoff = cx
                .now()
                .checked_sub_signed(self.retention)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let done = db::query("DELETE FROM webhook_events WHERE received_at < $1")
                .bind(to_iso(cutoff))
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected())
        })
    }
}

impl Store {
    /// Records the event id and enqueues its jobs in one transaction, shared with whatever
    /// other writes are waiting (group commit). Returns only after the commit is durable
    /// (per [`Synchronous`](crate::Synchronous)). If the commit fails, every caller in the
    /// batch gets the same typed error ([`StoreError::is_unavailable`] → answer 503).
    #[tracing::instrument(level = "debug", skip_all, fields(event.id = %event.event_id, event.type = %event.event_type), err(level = "debug"))]
    pub async fn ingest(&self, event: IncomingEvent) -> Result<IngestOutcome, StoreError> {
        let data = IngestData {
            event_id: event.event_id,
            event_type: event.event_type,
            entity_type: event.entity_type,
            entity_id: event.entity_id,
            attempt_number: i64::from(event.attempt_number),
            event_time: event.event_time.map(to_iso),
            jobs: event
                .jobs
                .into_iter()
                .map(|j| PreparedJob::new(j, self.source()))
                .collect(),
        };
        self.ingest_prepared(data).await
    }

    async fn ingest_prepared(&self, data: IngestData) -> Result<IngestOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .submit(Box::new(IngestGroup::single(data, reply)))
            .await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Deletes events received longer ago than `event_retention`; returns how many.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn prune_events(&self) -> Result<u64, StoreError> {
        let retention = chrono::Duration::from_std(self.inner.config.event_retention)
            .unwrap_or(chrono::Duration::MAX);
        self.write(PruneEvents { retention }).await
    }

    /// When the newest recorded event was received.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn last_event_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let last: Option<String> = db::query_scalar("SELECT MAX(received_at) FROM webhook_events")
            .fetch_one(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        last.map(|s| from_iso(self.path(), &s)).transpose()
    }

    /// Number of events in the log.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = db::query_scalar("SELECT COUNT(*) FROM webhook_events")
            .fetch_one(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Lane, StoreConfig, SystemClock};

    fn data(id: &str, payload: &str) -> IngestData {
        IngestData {
            event_id: id.to_owned(),
            event_type: "page.created".to_owned(),
            entity_type: "page".to_owned(),
            entity_id: id.to_owned(),
            attempt_number: 1,
            event_time: None,
            jobs: vec![PreparedJob {
                key: format!("page:{id}"),
                kind: "sync_page".to_owned(),
                payload: payload.to_owned(),
                lane: Lane::Interactive,
                run_at: None,
                batch: None,
                source: "default".to_owned(),
            }],
        }
    }

    /// A job payload that is not JSON violates a CHECK constraint: the multi-row path fails,
    /// the batch falls back to one savepoint per event, and only that caller gets the error.
    #[tokio::test]
    async fn a_bad_event_fails_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::for_path(&dir.path().join("t.db"));
        let store = Store::open(config, Arc::new(SystemClock)).await.unwrap();
        // On this current-thread runtime every task sends before the writer runs, so all
        // four land in one batch.
        let mut tasks = Vec::new();
        for (id, payload) in [("a", "{}"), ("bad", "not json"), ("b", "{}"), ("a", "{}")] {
            let store = store.clone();
            let d = data(id, payload);
            tasks.push(tokio::spawn(async move { store.ingest_prepared(d).await }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results[0].as_ref().unwrap(), &IngestOutcome::Inserted);
        assert!(
            matches!(results[1], Err(StoreError::Database(_))),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2].as_ref().unwrap(), &IngestOutcome::Inserted);
        assert_eq!(results[3].as_ref().unwrap(), &IngestOutcome::Duplicate);
        assert_eq!(store.write_stats().transactions, 1);
        assert_eq!(store.event_count().await.unwrap(), 2);
        let keys: Vec<String> = store
            .list_jobs(crate::JobFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.key)
            .collect();
        assert_eq!(keys, ["page:a", "page:b"]);
        store.close().await;
    }
}
