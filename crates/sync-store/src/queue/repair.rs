//! The operator's repair calls: retrying one dead job or all of them (merged into the
//! key's queued job by the merge rule when there is one) and purging dead jobs.

use super::lease::delete_job;
use super::merge::{self, Request};
use crate::db;
use crate::error::StoreError;
use crate::time::to_ms;
use crate::writer::{BoxFut, WriteCx, WriteOp};

pub(crate) struct RetryJob(pub(crate) i64);

/// Requeues dead (or queued) job `id` now with attempts reset; a dead job whose key already
/// has a queued job is merged into it. Returns false for unknown or running jobs.
async fn retry_one(cx: &mut WriteCx, id: i64, now: i64) -> Result<bool, StoreError> {
    let row = db::query("SELECT key, state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut cx.conn)
        .await
        .map_err(|e| cx.err(e))?;
    let Some(row) = row else { return Ok(false) };
    let key: String = row.get(0);
    let state: String = row.get(1);
    match state.as_str() {
        "queued" => {
            db::query("UPDATE jobs SET run_at = $2, attempts = 0, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(true)
        }
        "dead" => {
            match merge::queued_job(cx, &key).await? {
                Some((_, queued)) => {
                    let retried = Request {
                        run_at: now,
                        attempts: 0,
                        last_error: None,
                        ..merge::job_by_id(cx, id).await?
                    };
                    let merged = Request {
                        attempts: 0,
                        ..retried.absorb(queued)
                    };
                    delete_job(cx, id).await?;
                    merge::write_queued(cx, &[(&key, &merged)], now).await?;
                }
                None => {
                    db::query(
                        "UPDATE jobs SET state = 'queued', run_at = $2, attempts = 0, \
                             worker = NULL, updated_at = $2 \
                         WHERE id = $1",
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

pub(crate) struct RetryDead;

impl WriteOp for RetryDead {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            let ids: Vec<i64> =
                db::query_scalar("SELECT id FROM jobs WHERE state = 'dead' ORDER BY id")
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

pub(crate) struct PurgeDead;

impl WriteOp for PurgeDead {
    type Output = u64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = db::query("DELETE FROM jobs WHERE state = 'dead'")
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected())
        })
    }
}
