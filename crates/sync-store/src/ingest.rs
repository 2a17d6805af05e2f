//! Webhook intake: the event log (deduplication by event id, retention) with the event's
//! jobs enqueued in the same group-committed transaction, and pending verification tokens.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::error::StoreError;
use crate::queue::{NewJob, PreparedJob, enqueue_one};
use crate::store::Store;
use crate::time::{from_iso, to_iso, to_ms};
use crate::writer::{BoxFut, WriteCx, WriteOp};

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

/// A verification token Notion sent when a subscription was created. `Debug` masks it.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationToken {
    /// The secret, to be pasted into Notion's UI. Never log it.
    pub token: String,
    pub received_at: DateTime<Utc>,
}

impl std::fmt::Debug for VerificationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationToken")
            .field("token", &mask(&self.token))
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// `secret_****`: the prefix before the first `_` (if short) and nothing else.
fn mask(token: &str) -> String {
    match token.split_once('_') {
        Some((prefix, _)) if prefix.len() <= 8 => format!("{prefix}_****"),
        _ => "****".to_owned(),
    }
}

struct Ingest {
    event_id: String,
    event_type: String,
    entity_type: String,
    entity_id: String,
    attempt_number: i64,
    event_time: Option<String>,
    jobs: Vec<PreparedJob>,
}

impl WriteOp for Ingest {
    type Output = IngestOutcome;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<IngestOutcome, StoreError>> {
        Box::pin(async move {
            let now = cx.now();
            let inserted = sqlx::query(
                "INSERT INTO webhook_events (event_id, event_type, entity_type, entity_id, \
                                             attempt_number, event_time, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&self.event_id)
            .bind(&self.event_type)
            .bind(&self.entity_type)
            .bind(&self.entity_id)
            .bind(self.attempt_number)
            .bind(&self.event_time)
            .bind(to_iso(now))
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?
            .rows_affected();
            if inserted == 0 {
                return Ok(IngestOutcome::Duplicate);
            }
            let now = to_ms(now);
            for job in &self.jobs {
                enqueue_one(cx, job, now).await?;
            }
            Ok(IngestOutcome::Inserted)
        })
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
            let done = sqlx::query("DELETE FROM webhook_events WHERE received_at < ?1")
                .bind(to_iso(cutoff))
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected())
        })
    }
}

struct RecordToken(String);

impl WriteOp for RecordToken {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO verification_tokens (token, received_at) VALUES (?1, ?2) \
                 ON CONFLICT (token) DO NOTHING",
            )
            .bind(&self.0)
            .bind(to_iso(cx.now()))
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(())
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
        let op = Ingest {
            event_id: event.event_id,
            event_type: event.event_type,
            entity_type: event.entity_type,
            entity_id: event.entity_id,
            attempt_number: i64::from(event.attempt_number),
            event_time: event.event_time.map(to_iso),
            jobs: event.jobs.into_iter().map(PreparedJob::new).collect(),
        };
        self.write(op).await
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
        let last: Option<String> =
            sqlx::query_scalar("SELECT MAX(received_at) FROM webhook_events")
                .fetch_one(self.readers())
                .await
                .map_err(|e| self.err(e))?;
        last.map(|s| from_iso(self.path(), &s)).transpose()
    }

    /// Number of events in the log.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events")
            .fetch_one(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Stores a verification token as pending (a token already stored keeps its first
    /// receipt time). The token is never used as the signing key by the store.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn record_verification_token(&self, token: &str) -> Result<(), StoreError> {
        self.write(RecordToken(token.to_owned())).await
    }

    /// Every pending verification token, oldest first.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn verification_tokens(&self) -> Result<Vec<VerificationToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT token, received_at FROM verification_tokens ORDER BY received_at, token",
        )
        .fetch_all(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let received_at: String = r.get(1);
                Ok(VerificationToken {
                    token: r.get(0),
                    received_at: from_iso(self.path(), &received_at)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_masked() {
        let t = VerificationToken {
            token: "secret_abcdefghijklmnop".to_owned(),
            received_at: DateTime::from_timestamp(0, 0).unwrap(),
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("abcdefghijklmnop"), "{shown}");
        assert!(shown.contains("secret_****"), "{shown}");
        assert_eq!(mask("nounderscoresecret"), "****");
        assert_eq!(mask("averylongprefix_secret"), "****");
    }
}
