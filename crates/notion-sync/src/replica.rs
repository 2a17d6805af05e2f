//! This replica among others on one database: its heartbeat, the leader lease (the
//! holder runs the scheduled passes; when it dies another takes over once the lease has
//! run out), and taking over what a dead replica left (its running jobs, its unfinished
//! overdue writes), with its settings (`[replicas]`: the lease, how the budget is shared).
//! On SQLite the one daemon (holding the instance lock) always leads and takes over its
//! predecessor's work at start instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sync_engine::{Leadership, Sources};
use sync_store::Store;
use tokio_util::sync::CancellationToken;

/// The lease the leader holds.
pub const LEADER_LEASE: &str = "leader";

/// `[replicas]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicasConfig {
    /// The leader lease lasts this long unless renewed (every third of it); a dead
    /// leader's successor takes over within it. Replicas whose heartbeat is older than
    /// twice this are dead: their work is taken over.
    pub leader_lease: Duration,
    /// How the replicas share each integration's Notion budget.
    pub budget: BudgetSharing,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        Self {
            leader_lease: Duration::from_secs(15),
            budget: BudgetSharing::Shared,
        }
    }
}

/// How several replicas share an integration's requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSharing {
    /// Every request takes the next slot of the integration's budget row in the database:
    /// the replicas together never exceed the rate.
    Shared,
    /// Each replica paces alone at the rate divided by the replicas alive (no database
    /// round trip per request; the sum overshoots while a replica joins or dies).
    Split,
}

impl BudgetSharing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Split => "split",
        }
    }
}

/// What `/healthz` says about replicas.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplicaHealth {
    /// This replica's id (its workers' and overdue intents' name prefix).
    pub id: String,
    /// Whether this replica runs the scheduled passes now.
    pub leads: bool,
    /// The lease holder (possibly this replica), if any replica ever led.
    pub leader: Option<String>,
    /// Replicas with a recent heartbeat (this one included).
    pub alive: usize,
}

/// This replica's place among the others.
pub struct Replica {
    id: String,
    started: DateTime<Utc>,
    store: Store,
    config: ReplicasConfig,
    /// On SQLite: leads for good, nothing to keep.
    shared: bool,
    leadership: Leadership,
    seen: Mutex<ReplicaHealth>,
    /// Each other replica's last heartbeat value and since when (on this replica's
    /// monotonic clock) it has not changed: dead means unchanged for twice the lease, as
    /// this replica saw it, whatever the replicas' clocks say. Cleared when a round fails
    /// (after an outage every replica gets time to beat again).
    silent: Mutex<HashMap<String, (DateTime<Utc>, tokio::time::Instant)>>,
}

impl Replica {
    /// Replica `id` on `store`: shared (PostgreSQL) or alone (a SQLite file).
    pub fn new(id: String, store: Store, config: ReplicasConfig, now: DateTime<Utc>) -> Replica {
        let shared = store.shared();
        let leadership = match shared {
            true => Leadership::contested(),
            false => Leadership::always(),
        };
        Replica {
            seen: Mutex::new(ReplicaHealth {
                id: id.clone(),
                leads: !shared,
                leader: (!shared).then(|| id.clone()),
                alive: 1,
            }),
            id,
            started: now,
            store,
            config,
            shared,
            leadership,
            silent: Mutex::new(HashMap::new()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// True when other replicas may share the database.
    pub fn shared(&self) -> bool {
        self.shared
    }

    pub fn config(&self) -> ReplicasConfig {
        self.config
    }

    /// What the schedulers ask before each pass.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// The last round's view.
    pub fn health(&self) -> ReplicaHealth {
        let mut h = self.lock().clone();
        h.leads = self.leadership.leads();
        h
    }

    /// Replicas alive at the last round (at least this one).
    pub fn alive(&self) -> usize {
        self.lock().alive.max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplicaHealth> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One round: heartbeat, take or renew the leader lease, and as leader take over
    /// what dead replicas left. Errors are logged; leadership lapses by itself when the
    /// lease cannot be renewed in time.
    pub async fn round(&self, sources: &Sources) {
        if !self.shared {
            return;
        }
        let began = tokio::time::Instant::now();
        if let Err(e) = self.store.replica_heartbeat(&self.id, self.started).await {
            tracing::warn!(error = %e, "replica heartbeat failed");
            self.forget_silences();
        }
        let ttl = self.config.leader_lease;
        match self.store.acquire_lease(LEADER_LEASE, &self.id, ttl).await {
            Ok(lease) if lease.holder == self.id => {
                let was = self.leadership.leads();
                // Stop counting on it a third of the lease early, before anyone else may
                // take it.
                self.leadership.grant_until(began + ttl.mul_f64(2.0 / 3.0));
                if !was {
                    tracing::info!(replica = %self.id, fence = lease.fence, "this replica leads: it runs the scheduled passes");
                }
                self.lock().leader = Some(lease.holder);
            }
            Ok(lease) => {
                if self.leadership.leads() {
                    tracing::warn!(replica = %self.id, leader = %lease.holder, "leadership lost to another replica");
                }
                self.leadership.revoke();
                self.lock().leader = Some(lease.holder);
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing the leader lease failed");
                self.forget_silences();
            }
        }
        let replicas = match self.store.replicas().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "listing replicas failed");
                self.forget_silences();
                return;
            }
        };
        let dead = self.silent_for(&replicas, ttl * 2);
        let alive = replicas.len().saturating_sub(dead.len()).max(1);
        if self.config.budget == BudgetSharing::Split {
            let share = 1.0 / alive as f64;
            for engine in sources.all() {
                engine.client().pacer().set_share(share);
            }
        }
        metrics::gauge!("replicas_alive").set(alive as f64);
        metrics::gauge!("replica_leader").set(if self.leadership.leads() { 1.0 } else { 0.0 });
        if self.leadership.leads() {
            for id in dead {
                self.take_over(sources, &id).await;
            }
        }
        // Published after the takeovers: a leader reporting 1 alive has queued again what
        // the dead left (a failed takeover is logged and tried again next round).
        self.lock().alive = alive;
    }

    /// The replicas (other than this one) whose heartbeat has not changed for `after`.
    fn silent_for(&self, replicas: &[sync_store::Replica], after: Duration) -> Vec<String> {
        let now = tokio::time::Instant::now();
        let mut silent = self.silent.lock().unwrap_or_else(|p| p.into_inner());
        silent.retain(|id, _| replicas.iter().any(|r| &r.id == id));
        let mut dead = Vec::new();
        for r in replicas.iter().filter(|r| r.id != self.id) {
            let entry = silent.entry(r.id.clone()).or_insert((r.seen, now));
            if entry.0 != r.seen {
                *entry = (r.seen, now);
            } else if now.duration_since(entry.1) >= after {
                dead.push(r.id.clone());
            }
        }
        dead
    }

    fn forget_silences(&self) {
        self.silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Returns dead replica `id`'s running jobs to the queue and confirms its unfinished
    /// overdue writes against Notion (each source queues a read of those pages), then
    /// forgets it.
    async fn take_over(&self, sources: &Sources, id: &str) {
        let prefix = format!("{id}:");
        let jobs = match self.store.reclaim_workers(&prefix).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, replica = id, "taking over a dead replica's jobs failed");
                return;
            }
        };
        let mut writes = 0;
        for engine in sources.all() {
            match engine.resume_interrupted_writes(id).await {
                Ok(n) => writes += n,
                Err(e) => {
                    tracing::warn!(error = %e, replica = id, "taking over a dead replica's overdue writes failed");
                    return;
                }
            }
        }
        if let Err(e) = self.store.forget_replica(id).await {
            tracing::warn!(error = %e, replica = id, "forgetting a dead replica failed");
            return;
        }
        for engine in sources.all() {
            engine.wake_workers();
        }
        tracing::warn!(
            replica = id,
            jobs,
            overdue_writes = writes,
            "a dead replica's work was taken over"
        );
    }

    /// Rounds every third of the lease until `stop`; then hands the lease over and
    /// leaves the replica list (a clean stop needs no takeover).
    pub async fn run(self: Arc<Self>, sources: Sources, stop: CancellationToken) {
        if !self.shared {
            return;
        }
        let every = (self.config.leader_lease / 3).max(Duration::from_millis(200));
        loop {
            self.round(&sources).await;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        self.resign().await;
    }

    /// Stops leading and releases the lease and the heartbeat row.
    pub async fn resign(&self) {
        if !self.shared {
            return;
        }
        let led = self.leadership.leads();
        self.leadership.revoke();
        match self.store.release_lease(LEADER_LEASE, &self.id).await {
            Ok(true) => tracing::info!(replica = %self.id, "leader lease released"),
            Ok(false) => {}
            Err(e) if led => {
                tracing::warn!(error = %e, "releasing the leader lease failed; it runs out by itself")
            }
            Err(_) => {}
        }
        if let Err(e) = self.store.forget_replica(&self.id).await {
            tracing::debug!(error = %e, "leaving the replica list failed");
        }
    }
}
