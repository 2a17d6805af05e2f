//! Replicas on one database: named leases (one holder at a time, taken over when it
//! expires), replica heartbeats (who is alive; what a dead one left running), and shared
//! request budgets (the next free request slot of an integration, and its pause). On
//! SQLite the one daemon holds everything, through the same statements.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::{self, Backend};
use crate::error::StoreError;
use crate::store::Store;
use crate::time::{duration_ms, from_ms, to_ms};
use crate::writer::{BoxFut, WriteCx, WriteOp};

/// Who holds a lease, as the database says after an attempt to take or renew it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The holder's name (a replica id).
    pub holder: String,
    /// Valid until then (the holder renews before).
    pub until: DateTime<Utc>,
    /// Since when this holder has held it without a gap.
    pub since: DateTime<Utc>,
    /// Grows by one at every change of holder.
    pub fence: i64,
}

/// A replica that renewed its heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    pub started: DateTime<Utc>,
    pub seen: DateTime<Utc>,
}

struct AcquireLease {
    name: String,
    holder: String,
    ttl_ms: i64,
}

impl WriteOp for AcquireLease {
    type Output = Lease;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            db::query(
                "INSERT INTO leases (name, holder, until_ms, since_ms, fence) \
                 VALUES ($1, $2, $3, $4, 1) \
                 ON CONFLICT (name) DO UPDATE SET \
                     holder = excluded.holder, until_ms = excluded.until_ms, \
                     since_ms = CASE WHEN leases.holder = excluded.holder \
                                     THEN leases.since_ms ELSE excluded.since_ms END, \
                     fence = CASE WHEN leases.holder = excluded.holder \
                                  THEN leases.fence ELSE leases.fence + 1 END \
                 WHERE leases.holder = excluded.holder OR leases.until_ms <= $4",
            )
            .bind(&self.name)
            .bind(&self.holder)
            .bind(now.saturating_add(self.ttl_ms))
            .bind(now)
            .execute(&mut cx.conn)
            .await
            .map_err(|e| cx.err(e))?;
            let row =
                db::query("SELECT holder, until_ms, since_ms, fence FROM leases WHERE name = $1")
                    .bind(&self.name)
                    .fetch_one(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
            Ok(Lease {
                holder: row.get(0),
                until: from_ms(&cx.path, row.get(1))?,
                since: from_ms(&cx.path, row.get(2))?,
                fence: row.get(3),
            })
        })
    }
}

struct ReleaseLease {
    name: String,
    holder: String,
}

impl WriteOp for ReleaseLease {
    type Output = bool;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let done = db::query("UPDATE leases SET until_ms = 0 WHERE name = $1 AND holder = $2")
                .bind(&self.name)
                .bind(&self.holder)
                .execute(&mut cx.conn)
                .await
                .map_err(|e| cx.err(e))?;
            Ok(done.rows_affected() == 1)
        })
    }
}

enum ReplicaOp {
    Beat { id: String, started: i64 },
    Forget { id: String },
}

impl WriteOp for ReplicaOp {
    type Output = ();

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            let q = match self {
                Self::Beat { id, started } => db::query(
                    "INSERT INTO replicas (id, started_ms, seen_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms",
                )
                .bind(id)
                .bind(*started)
                .bind(now),
                Self::Forget { id } => db::query("DELETE FROM replicas WHERE id = $1").bind(id),
            };
            q.execute(&mut cx.conn).await.map_err(|e| cx.err(e))?;
            Ok(())
        })
    }
}

/// The budget statements: `$1` name, `$2` now (ms), `$3` interval or pause end (ms).
struct Budget;

impl Budget {
    fn reserve(backend: Backend) -> &'static str {
        backend.pick(
            "INSERT INTO rate_budgets (name, next_at_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (name) DO UPDATE SET next_at_ms = \
                 MAX(rate_budgets.next_at_ms, $2, rate_budgets.paused_until_ms) + $3 \
             RETURNING next_at_ms - $3",
            "INSERT INTO rate_budgets (name, next_at_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (name) DO UPDATE SET next_at_ms = \
                 GREATEST(rate_budgets.next_at_ms, $2, rate_budgets.paused_until_ms) + $3 \
             RETURNING next_at_ms - $3",
        )
    }

    fn pause(backend: Backend) -> &'static str {
        backend.pick(
            "INSERT INTO rate_budgets (name, next_at_ms, paused_until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET \
                 paused_until_ms = MAX(rate_budgets.paused_until_ms, $3)",
            "INSERT INTO rate_budgets (name, next_at_ms, paused_until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET \
                 paused_until_ms = GREATEST(rate_budgets.paused_until_ms, $3)",
        )
    }
}

/// A budget statement through the writer (SQLite, where readers are read-only).
struct BudgetOp {
    name: String,
    value_ms: i64,
    reserve: bool,
}

impl WriteOp for BudgetOp {
    type Output = i64;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<i64, StoreError>> {
        Box::pin(async move {
            let now = to_ms(cx.now());
            if self.reserve {
                db::query_scalar(Budget::reserve(cx.backend()))
                    .bind(&self.name)
                    .bind(now)
                    .bind(self.value_ms)
                    .fetch_one(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))
            } else {
                db::query(Budget::pause(cx.backend()))
                    .bind(&self.name)
                    .bind(now)
                    .bind(self.value_ms)
                    .execute(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))?;
                Ok(0)
            }
        })
    }
}

impl Store {
    /// Takes lease `name` for `holder` until now + `ttl` when it is free, expired or
    /// already `holder`'s (a renewal); otherwise leaves it. Returns who holds it now.
    #[tracing::instrument(level = "debug", skip_all, fields(lease = name), err(level = "debug"))]
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.write(AcquireLease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl_ms: duration_ms(ttl),
        })
        .await
    }

    /// Ends `holder`'s lease `name` now (at shutdown: the next replica takes it at once).
    /// False when `holder` did not hold it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        self.write(ReleaseLease {
            name: name.to_owned(),
            holder: holder.to_owned(),
        })
        .await
    }

    /// Who holds lease `name` (possibly expired), if anyone ever took it.
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row = db::query("SELECT holder, until_ms, since_ms, fence FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        row.map(|r| {
            Ok(Lease {
                holder: r.get(0),
                until: from_ms(self.path(), r.get(1))?,
                since: from_ms(self.path(), r.get(2))?,
                fence: r.get(3),
            })
        })
        .transpose()
    }

    /// Records that replica `id` (started at `started`) is alive now.
    pub async fn replica_heartbeat(
        &self,
        id: &str,
        started: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(ReplicaOp::Beat {
            id: id.to_owned(),
            started: to_ms(started),
        })
        .await
    }

    /// Forgets replica `id` (it stopped, or it is dead and its work was taken over).
    pub async fn forget_replica(&self, id: &str) -> Result<(), StoreError> {
        self.write(ReplicaOp::Forget { id: id.to_owned() }).await
    }

    /// Every replica with a heartbeat, by id.
    pub async fn replicas(&self) -> Result<Vec<Replica>, StoreError> {
        let rows = db::query("SELECT id, started_ms, seen_ms FROM replicas ORDER BY id")
            .fetch_all(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                Ok(Replica {
                    id: r.get(0),
                    started: from_ms(self.path(), r.get(1))?,
                    seen: from_ms(self.path(), r.get(2))?,
                })
            })
            .collect()
    }

    /// Reserves the next request slot of budget `name`, one every `interval`: slots are
    /// handed out in order to every replica, never closer than `interval` and never
    /// inside a pause. Returns how long to wait before sending (zero: now).
    pub async fn reserve_request_slot(
        &self,
        name: &str,
        interval: Duration,
    ) -> Result<Duration, StoreError> {
        let interval_ms = duration_ms(interval).max(1);
        let slot = match self.backend() {
            // One autocommit statement: the row lock orders replicas, nothing to retry.
            Backend::Postgres => db::query_scalar::<i64>(Budget::reserve(Backend::Postgres))
                .bind(name)
                .bind(to_ms(self.clock().now()))
                .bind(interval_ms)
                .fetch_one(self.readers())
                .await
                .map_err(|e| self.err(e))?,
            Backend::Sqlite => {
                self.write(BudgetOp {
                    name: name.to_owned(),
                    value_ms: interval_ms,
                    reserve: true,
                })
                .await?
            }
        };
        let wait = slot.saturating_sub(to_ms(self.clock().now())).max(0);
        Ok(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
    }

    /// Pauses budget `name` for every replica until now + `d` (extends, never shortens).
    pub async fn pause_budget(&self, name: &str, d: Duration) -> Result<(), StoreError> {
        let until = to_ms(self.clock().now()).saturating_add(duration_ms(d));
        match self.backend() {
            Backend::Postgres => {
                db::query(Budget::pause(Backend::Postgres))
                    .bind(name)
                    .bind(to_ms(self.clock().now()))
                    .bind(until)
                    .execute(self.readers())
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Backend::Sqlite => {
                self.write(BudgetOp {
                    name: name.to_owned(),
                    value_ms: until,
                    reserve: false,
                })
                .await?;
            }
        }
        Ok(())
    }

    /// How long budget `name` stays paused from now (zero: not paused).
    pub async fn budget_paused_for(&self, name: &str) -> Result<Duration, StoreError> {
        let until: Option<i64> =
            db::query_scalar("SELECT paused_until_ms FROM rate_budgets WHERE name = $1")
                .bind(name)
                .fetch_optional(self.readers())
                .await
                .map_err(|e| self.err(e))?;
        let left = until
            .unwrap_or(0)
            .saturating_sub(to_ms(self.clock().now()))
            .max(0);
        Ok(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }
}
