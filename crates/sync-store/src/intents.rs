//! The overdue write intents (`status_writes`) that make the engine's status PATCH happen
//! once across retries, restarts and processes: begin (claim), finish (with the transition
//! and the page, in one transaction), release, abandon, and a successor's takeover.

use notion_id::NotionId;

use crate::db;
use crate::error::StoreError;
use crate::mirror::{PageUpsert, PreparedPage, Transition, insert_transition, upsert_one};
use crate::store::Store;
use crate::time::{from_iso, to_iso};
use crate::writer::{BoxFut, WriteCx, WriteOp};

/// State of an overdue write intent, from [`Store::begin_status_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWrite {
    /// No earlier attempt: the intent is now recorded as pending; go ahead and PATCH.
    New,
    /// An earlier attempt began but did not finish (crash, retry): confirm against fresh
    /// data whether the PATCH landed before writing again.
    Pending,
    /// Already written and recorded: do nothing.
    Done,
    /// Another attempt claimed it less than [`STATUS_WRITE_CLAIM`] ago and has not
    /// finished: leave it to that attempt (it may be another process).
    InFlight,
}

/// How long a begun status write belongs to whoever began it. After that an unfinished
/// intent counts as abandoned (crash) and the next attempt takes it over as `Pending`.
pub const STATUS_WRITE_CLAIM: std::time::Duration = std::time::Duration::from_secs(120);

/// Primary key of a status write intent.
struct IntentKey {
    page_id: String,
    due: String,
    to_status: String,
}

impl IntentKey {
    fn new(page_id: &NotionId, due: &str, to_status: &str) -> Self {
        Self {
            page_id: page_id.to_string(),
            due: due.to_owned(),
            to_status: to_status.to_owned(),
        }
    }
}

struct BeginStatusWrite {
    key: IntentKey,
    claimant: String,
}

impl WriteOp for BeginStatusWrite {
    type Output = StatusWrite;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<StatusWrite, StoreError>> {
        Box::pin(async move {
            let k = &self.key;
            let row = db::query(
                "SELECT state, created_at FROM status_writes \
                 WHERE page_id = $1 AND due = $2 AND to_status = $3",
            )
            .bind(&k.page_id)
            .bind(&k.due)
            .bind(&k.to_status)
            .fetch_optional(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            let now = cx.now();
            let state = row.map(|r| (r.get::<String>(0), r.get::<String>(1)));
            match state {
                Some((s, _)) if s == "done" => Ok(StatusWrite::Done),
                Some((_, claimed)) => {
                    // Someone (maybe another process) claimed it moments ago: let it finish.
                    let claimed = from_iso(&cx.path, &claimed)?;
                    let window = chrono::TimeDelta::from_std(STATUS_WRITE_CLAIM)
                        .unwrap_or(chrono::TimeDelta::MAX);
                    if now - claimed < window {
                        return Ok(StatusWrite::InFlight);
                    }
                    // An abandoned attempt (crash): take it over.
                    db::query(
                        "UPDATE status_writes SET created_at = $4, claimed_by = $5 \
                         WHERE page_id = $1 AND due = $2 AND to_status = $3",
                    )
                    .bind(&k.page_id)
                    .bind(&k.due)
                    .bind(&k.to_status)
                    .bind(to_iso(now))
                    .bind(&self.claimant)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                    Ok(StatusWrite::Pending)
                }
                None => {
                    db::query(
                        "INSERT INTO status_writes \
                         (page_id, due, to_status, state, created_at, claimed_by) \
                         VALUES ($1, $2, $3, 'pending', $4, $5)",
                    )
                    .bind(&k.page_id)
                    .bind(&k.due)
                    .bind(&k.to_status)
                    .bind(to_iso(cx.now()))
                    .bind(&self.claimant)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                    Ok(StatusWrite::New)
                }
            }
        })
    }
}

struct FinishStatusWrite {
    key: IntentKey,
    transition: Transition,
    page: Option<PreparedPage>,
}

impl WriteOp for FinishStatusWrite {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = to_iso(cx.now());
            let k = &self.key;
            db::query(
                "INSERT INTO status_writes (page_id, due, to_status, state, created_at, done_at) \
                 VALUES ($1, $2, $3, 'done', $4, $4) \
                 ON CONFLICT (page_id, due, to_status) \
                 DO UPDATE SET state = 'done', done_at = excluded.done_at",
            )
            .bind(&k.page_id)
            .bind(&k.due)
            .bind(&k.to_status)
            .bind(&now)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            insert_transition(cx, &self.transition).await?;
            if let Some(page) = &self.page {
                upsert_one(cx, page).await?;
            }
            Ok(())
        })
    }
}

struct AbandonStatusWrite(IntentKey);

impl WriteOp for AbandonStatusWrite {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let k = &self.0;
            db::query(
                "DELETE FROM status_writes \
                 WHERE page_id = $1 AND due = $2 AND to_status = $3 AND state = 'pending'",
            )
            .bind(&k.page_id)
            .bind(&k.due)
            .bind(&k.to_status)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(())
        })
    }
}

struct ReleaseStatusWrite(IntentKey);

impl WriteOp for ReleaseStatusWrite {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let k = &self.0;
            db::query(
                "UPDATE status_writes SET created_at = '1970-01-01T00:00:00.000Z' \
                 WHERE page_id = $1 AND due = $2 AND to_status = $3 AND state = 'pending'",
            )
            .bind(&k.page_id)
            .bind(&k.due)
            .bind(&k.to_status)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            Ok(())
        })
    }
}

/// (claimant prefix, the source whose pages' intents are freed).
struct ReclaimStatusWrites(String, String);

impl WriteOp for ReclaimStatusWrites {
    type Output = Vec<NotionId>;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Vec<NotionId>, StoreError>> {
        Box::pin(async move {
            let pages: Vec<String> = db::query_scalar(
                "UPDATE status_writes SET created_at = '1970-01-01T00:00:00.000Z' \
                 WHERE state = 'pending' AND substr(claimed_by, 1, length($1)) = $1 \
                   AND (page_id IN (SELECT id FROM pages WHERE source = $2) \
                        OR page_id NOT IN (SELECT id FROM pages)) \
                 RETURNING page_id",
            )
            .bind(&self.0)
            .bind(&self.1)
            .fetch_all(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            let mut ids: Vec<NotionId> = pages
                .iter()
                .filter_map(|p| NotionId::parse(p).ok())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            Ok(ids)
        })
    }
}

impl Store {
    /// Looks up an intent without creating one (`None`: never begun).
    #[tracing::instrument(skip_all, fields(page.id = %page_id, due = %due, to_status = %to_status), err(level = "debug"))]
    pub async fn status_write(
        &self,
        page_id: &NotionId,
        due: &str,
        to_status: &str,
    ) -> Result<Option<StatusWrite>, StoreError> {
        let state: Option<String> = db::query_scalar(
            "SELECT state FROM status_writes WHERE page_id = $1 AND due = $2 AND to_status = $3",
        )
        .bind(page_id.to_string())
        .bind(due)
        .bind(to_status)
        .fetch_optional(self.readers())
        .await
        .map_err(|e| self.err(e))?;
        Ok(state.map(|s| match s.as_str() {
            "done" => StatusWrite::Done,
            _ => StatusWrite::Pending,
        }))
    }

    /// Starts (or looks up) the intent to write `to_status` on `page_id` for due date `due`.
    #[tracing::instrument(skip_all, fields(page.id = %page_id, due = %due, to_status = %to_status), err(level = "debug"))]
    pub async fn begin_status_write(
        &self,
        page_id: &NotionId,
        due: &str,
        to_status: &str,
    ) -> Result<StatusWrite, StoreError> {
        self.write(BeginStatusWrite {
            key: IntentKey::new(page_id, due, to_status),
            claimant: self.inner.config.claimant.clone(),
        })
        .await
    }

    /// Crash recovery at start: frees every pending intent of this source's pages (and of
    /// pages no source mirrors yet) whose claimant starts with `claimant_prefix` (as
    /// [`release_status_write`](Self::release_status_write) does), so the next attempt
    /// confirms against Notion and finishes it. Returns the pages, each once. Only for a caller that knows those claimants are gone (it holds the instance
    /// lock); an empty prefix frees nothing.
    #[tracing::instrument(skip_all, fields(claimant_prefix = %claimant_prefix), err(level = "debug"))]
    pub async fn reclaim_status_writes(
        &self,
        claimant_prefix: &str,
    ) -> Result<Vec<NotionId>, StoreError> {
        if claimant_prefix.is_empty() {
            return Ok(Vec::new());
        }
        self.write(ReclaimStatusWrites(
            claimant_prefix.to_owned(),
            self.source().to_owned(),
        ))
        .await
    }

    /// In one transaction: marks the intent done (creating it if needed), records the
    /// transition and, if given, upserts the page as Notion returned it after the PATCH.
    #[tracing::instrument(skip_all, fields(page.id = %page_id, due = %due, to_status = %to_status), err(level = "debug"))]
    pub async fn finish_status_write(
        &self,
        page_id: &NotionId,
        due: &str,
        to_status: &str,
        transition: &Transition,
        page: Option<&PageUpsert>,
    ) -> Result<(), StoreError> {
        self.write(FinishStatusWrite {
            key: IntentKey::new(page_id, due, to_status),
            transition: transition.clone(),
            page: page.map(|p| PreparedPage::new(p, self.source())),
        })
        .await
    }

    /// Gives up the claim on a pending intent without deleting it (the write failed and
    /// may or may not have landed): the next `begin_status_write` returns `Pending` at
    /// once instead of `InFlight`, so that attempt confirms against Notion first.
    #[tracing::instrument(skip_all, fields(page.id = %page_id, due = %due, to_status = %to_status), err(level = "debug"))]
    pub async fn release_status_write(
        &self,
        page_id: &NotionId,
        due: &str,
        to_status: &str,
    ) -> Result<(), StoreError> {
        self.write(ReleaseStatusWrite(IntentKey::new(page_id, due, to_status)))
            .await
    }

    /// Deletes a pending intent (the person moved the task on); a done intent is kept.
    #[tracing::instrument(skip_all, fields(page.id = %page_id, due = %due, to_status = %to_status), err(level = "debug"))]
    pub async fn abandon_status_write(
        &self,
        page_id: &NotionId,
        due: &str,
        to_status: &str,
    ) -> Result<(), StoreError> {
        self.write(AbandonStatusWrite(IntentKey::new(page_id, due, to_status)))
            .await
    }
}
