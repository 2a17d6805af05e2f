//! The process-wide pacer: a GCRA rate limiter with two lanes, a global pause and AIMD.
//!
//! Every Notion request waits on [`Pacer::acquire`]. The limiter is a
//! hand-rolled GCRA on `tokio::time::Instant`, so tokio's paused clock drives
//! it deterministically in tests.
//!
//! * **GCRA.** Emission interval `T = 1/rate`, tolerance `τ = (burst − 1)·T`.
//!   A slot is free at `t` when `t ≥ TAT − τ`; granting sets
//!   `TAT = max(TAT, t) + T`. So `N` back-to-back requests take at least
//!   `(N − burst)·T`.
//! * **Lanes.** Waiters queue FIFO per lane. When both lanes wait, the
//!   interactive head is served unless bulk received less than `bulk_floor`
//!   of the last [`FLOOR_WINDOW`] grants, in which case the bulk head is.
//! * **Pause.** [`Pacer::pause_for`] sets `paused_until = max(existing,
//!   now + d)`; nobody is granted before it, and pacing resumes at the
//!   steady rate (no burst) when it ends.
//! * **AIMD.** [`Pacer::on_rate_limited`] pauses and halves the rate (once
//!   per pause episode) down to `configured / 6`; [`Pacer::on_success`] adds
//!   [`RECOVERY_FRACTION`] of the configured rate per [`RECOVERY_INTERVAL`] of
//!   success, so even the floor is back to the configured rate within 45 s.
//! * **Replicas.** With a [`SharedBudget`] (several replicas on one database), a local
//!   grant then waits for the next slot of the shared budget, and a rate-limited answer
//!   pauses it for every replica; with a share ([`Pacer::set_share`]) the replica paces
//!   at its part of the rate instead.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::shared_budget::SharedBudget;

/// Multiplicative decrease applied on a rate-limit answer.
pub const DECREASE_FACTOR: f64 = 0.5;
/// The rate never drops below `configured / MIN_RATE_DIVISOR`.
pub const MIN_RATE_DIVISOR: f64 = 6.0;
/// Additive recovery, as a share of the configured rate …
pub const RECOVERY_FRACTION: f64 = 0.1;
/// … per this much time without rate limiting.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// Shared-budget slots are this much further apart than `1 / rate`: a request sent up to
/// ~100 ms after its slot (scheduling, the pause check) then never puts `rate × 10 + 1`
/// requests of all replicas into one 10 s window. Costs 1 % of the rate.
pub const SHARED_SPACING: f64 = 1.01;
/// Number of recent grants the bulk floor is measured over.
pub const FLOOR_WINDOW: usize = 20;

/// Which queue a request waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Webhook-driven work and CLI calls: served first.
    Interactive,
    /// Reconciler scans: served after interactive, but never starved.
    Bulk,
}

impl Lane {
    /// `interactive` or `bulk` (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Bulk => "bulk",
        }
    }
}

/// Pacer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacerConfig {
    /// Sustained rate (Notion documents an average of 3 req/s).
    pub requests_per_second: f64,
    /// Requests that may go back to back after idling.
    pub burst: u32,
    /// Minimum share of grants bulk gets while both lanes wait (0–1).
    pub bulk_floor: f64,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 3.0,
            burst: 3,
            bulk_floor: 0.10,
        }
    }
}

impl PacerConfig {
    /// Checks the values; [`Pacer::new`] clamps whatever this rejects.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.requests_per_second.is_finite() && self.requests_per_second > 0.0) {
            return Err(format!(
                "requests_per_second must be a positive number, got {}",
                self.requests_per_second
            ));
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".to_owned());
        }
        if !(0.0..1.0).contains(&self.bulk_floor) {
            return Err(format!(
                "bulk_floor must be in [0, 1), got {}",
                self.bulk_floor
            ));
        }
        Ok(())
    }

    fn sanitized(self) -> Self {
        let d = Self::default();
        Self {
            requests_per_second: if self.requests_per_second.is_finite()
                && self.requests_per_second > 0.0
            {
                self.requests_per_second
            } else {
                d.requests_per_second
            },
            burst: self.burst.max(1),
            bulk_floor: if self.bulk_floor.is_finite() {
                self.bulk_floor.clamp(0.0, 0.99)
            } else {
                d.bulk_floor
            },
        }
    }
}

/// A point-in-time view of the pacer, for health and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PacerSnapshot {
    /// The configured rate.
    pub configured_rate: f64,
    /// The current (possibly decreased) rate.
    pub current_rate: f64,
    /// Remaining pause, if paused.
    pub paused_for: Option<Duration>,
    /// Interactive waiters.
    pub waiters_interactive: usize,
    /// Bulk waiters.
    pub waiters_bulk: usize,
    /// Slots granted to interactive.
    pub granted_interactive: u64,
    /// Slots granted to bulk.
    pub granted_bulk: u64,
    /// Rate-limit answers reported.
    pub rate_limited_total: u64,
    /// Pauses started or extended.
    pub pauses_total: u64,
}

#[derive(Debug)]
struct State {
    tat: Option<Instant>,
    rate: f64,
    paused_until: Option<Instant>,
    recovery_from: Option<Instant>,
    next_ticket: u64,
    interactive: VecDeque<u64>,
    bulk: VecDeque<u64>,
    recent: VecDeque<Lane>,
    granted_interactive: u64,
    granted_bulk: u64,
    rate_limited_total: u64,
    pauses_total: u64,
    /// This replica's part of the rate (1: all of it).
    share: f64,
}

enum Decision {
    Granted,
    WaitUntil(Instant),
    WaitTurn,
}

/// The process-wide rate limiter. Create one with [`Pacer::new`] and share the `Arc`.
#[derive(Debug)]
pub struct Pacer {
    config: PacerConfig,
    /// The integration it paces (the `integration` metric label).
    name: String,
    state: Mutex<State>,
    changed: Notify,
    /// The budget shared with other replicas, once wired.
    shared: std::sync::OnceLock<Arc<dyn SharedBudget>>,
}

struct Ticket<'a> {
    pacer: &'a Pacer,
    lane: Lane,
    id: u64,
    granted: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        // Cancelled while waiting: leave the queue and let the next waiter move up.
        let mut st = self.pacer.lock();
        let q = match self.lane {
            Lane::Interactive => &mut st.interactive,
            Lane::Bulk => &mut st.bulk,
        };
        q.retain(|t| *t != self.id);
        drop(st);
        self.pacer.changed.notify_waiters();
    }
}

impl Pacer {
    /// A pacer at `config` (invalid values are clamped, see [`PacerConfig::validate`]).
    pub fn new(config: PacerConfig) -> Arc<Pacer> {
        Self::named(config, "default")
    }

    /// [`new`](Self::new) for the integration `name` (its metrics say so).
    pub fn named(config: PacerConfig, name: &str) -> Arc<Pacer> {
        let config = config.sanitized();
        metrics::gauge!("notion_pacer_rate", "integration" => name.to_owned())
            .set(config.requests_per_second);
        Arc::new(Pacer {
            name: name.to_owned(),
            state: Mutex::new(State {
                tat: None,
                rate: config.requests_per_second,
                paused_until: None,
                recovery_from: None,
                next_ticket: 0,
                interactive: VecDeque::new(),
                bulk: VecDeque::new(),
                recent: VecDeque::with_capacity(FLOOR_WINDOW),
                granted_interactive: 0,
                granted_bulk: 0,
                rate_limited_total: 0,
                pauses_total: 0,
                share: 1.0,
            }),
            config,
            changed: Notify::new(),
            shared: std::sync::OnceLock::new(),
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> PacerConfig {
        self.config
    }

    /// The integration it paces.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a few
        // plain assignments, so recover the guard instead of propagating the poison.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Draws every grant also from `budget` (shared with other replicas). Set once.
    pub fn share_budget(&self, budget: Arc<dyn SharedBudget>) {
        let _ = self.shared.set(budget);
    }

    /// Paces at `share` (0 < share ≤ 1) of the rate: this replica's part when the
    /// replicas split the budget.
    pub fn set_share(&self, share: f64) {
        let share = if share.is_finite() {
            share.clamp(0.01, 1.0)
        } else {
            1.0
        };
        let mut st = self.lock();
        if (st.share - share).abs() > f64::EPSILON {
            st.share = share;
            metrics::gauge!("notion_pacer_share", "integration" => self.name.clone()).set(share);
        }
    }

    /// Waits until the pause (if any) is over and a GCRA slot is free for
    /// this lane, respecting lane order, then (with a shared budget) for the shared
    /// budget's next slot. Cancel-safe: dropping the future leaves the queue.
    pub async fn acquire(&self, lane: Lane) {
        self.acquire_local(lane).await;
        if let Some(budget) = self.shared.get() {
            self.acquire_shared(budget.as_ref()).await;
        }
    }

    /// The shared budget's next slot; when the budget cannot be reached the local grant
    /// stands (the replica paces alone).
    async fn acquire_shared(&self, budget: &dyn SharedBudget) {
        let interval = Duration::from_secs_f64(SHARED_SPACING / self.lock().rate);
        match budget.reserve(interval).await {
            Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(integration = %self.name, error = %e, "the shared request budget is unreachable; pacing alone");
                return;
            }
        }
        // A replica was rate limited while this one waited for its slot.
        if let Ok(paused) = budget.paused_for().await
            && !paused.is_zero()
        {
            tokio::time::sleep(paused).await;
        }
    }

    /// Pauses the shared budget for every replica (after a rate-limited answer).
    pub async fn pause_shared(&self, d: Duration) {
        if let Some(budget) = self.shared.get()
            && let Err(e) = budget.pause(d).await
        {
            tracing::warn!(integration = %self.name, error = %e, "pausing the shared request budget failed");
        }
    }

    async fn acquire_local(&self, lane: Lane) {
        let started = Instant::now();
        let mut ticket = {
            let mut st = self.lock();
            let id = st.next_ticket;
            st.next_ticket += 1;
            match lane {
                Lane::Interactive => st.interactive.push_back(id),
                Lane::Bulk => st.bulk.push_back(id),
            }
            Ticket {
                pacer: self,
                lane,
                id,
                granted: false,
            }
        };
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            match self.decide(lane, ticket.id) {
                Decision::Granted => {
                    ticket.granted = true;
                    self.changed.notify_waiters();
                    metrics::histogram!("notion_pacer_wait_seconds", "lane" => lane.as_str(), "integration" => self.name.clone())
                        .record(started.elapsed().as_secs_f64());
                    return;
                }
                Decision::WaitUntil(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut notified => {}
                    }
                }
                Decision::WaitTurn => notified.await,
            }
        }
    }

    fn decide(&self, lane: Lane, id: u64) -> Decision {
        let mut st = self.lock();
        let head = match lane {
            Lane::Interactive => st.interactive.front(),
            Lane::Bulk => st.bulk.front(),
        };
        if head != Some(&id) || self.serving(&st) != Some(lane) {
            return Decision::WaitTurn;
        }
        let now = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / (st.rate * st.share));
        let tolerance = interval * (self.config.burst - 1);
        let mut ready = now;
        if let Some(tat) = st.tat {
            ready = ready.max(tat.checked_sub(tolerance).unwrap_or(tat));
        }
        if let Some(p) = st.paused_until {
            ready = ready.max(p);
        }
        if ready > now {
            return Decision::WaitUntil(ready);
        }
        st.tat = Some(st.tat.map_or(now, |t| t.max(now)) + interval);
        match lane {
            Lane::Interactive => {
                st.interactive.pop_front();
                st.granted_interactive += 1;
            }
            Lane::Bulk => {
                st.bulk.pop_front();
                st.granted_bulk += 1;
            }
        }
        if st.recent.len() == FLOOR_WINDOW {
            st.recent.pop_front();
        }
        st.recent.push_back(lane);
        Decision::Granted
    }

    /// Which lane's head gets the next slot.
    fn serving(&self, st: &State) -> Option<Lane> {
        match (st.interactive.is_empty(), st.bulk.is_empty()) {
            (true, true) => None,
            (false, true) => Some(Lane::Interactive),
            (true, false) => Some(Lane::Bulk),
            (false, false) => {
                let n = st.recent.len();
                let bulk = st.recent.iter().filter(|l| **l == Lane::Bulk).count();
                if n > 0 && (bulk as f64) < self.config.bulk_floor * n as f64 {
                    Some(Lane::Bulk)
                } else {
                    Some(Lane::Interactive)
                }
            }
        }
    }

    fn pause_locked(&self, st: &mut State, d: Duration) -> Instant {
        let until = Instant::now() + d;
        let until = st.paused_until.map_or(until, |p| p.max(until));
        st.paused_until = Some(until);
        st.pauses_total += 1;
        // Resume at the steady rate, without a burst.
        let interval = Duration::from_secs_f64(1.0 / st.rate);
        let tolerance = interval * (self.config.burst - 1);
        let resume = until + tolerance;
        st.tat = Some(st.tat.map_or(resume, |t| t.max(resume)));
        metrics::counter!("notion_pacer_pauses_total", "integration" => self.name.clone())
            .increment(1);
        until
    }

    /// Pauses every caller for `d` (extends, never shortens, a running pause).
    pub fn pause_for(&self, d: Duration) {
        {
            let mut st = self.lock();
            self.pause_locked(&mut st, d);
        }
        self.changed.notify_waiters();
    }

    /// Reports a 429/529: pauses for `retry_after` and, once per pause
    /// episode, halves the rate (down to `configured / 6`).
    pub fn on_rate_limited(&self, retry_after: Duration) {
        {
            let mut st = self.lock();
            st.rate_limited_total += 1;
            let now = Instant::now();
            let in_episode = st.paused_until.is_some_and(|p| p > now);
            if !in_episode {
                let floor = self.config.requests_per_second / MIN_RATE_DIVISOR;
                st.rate = (st.rate * DECREASE_FACTOR).max(floor);
                metrics::gauge!("notion_pacer_rate", "integration" => self.name.clone())
                    .set(st.rate);
            }
            let until = self.pause_locked(&mut st, retry_after);
            st.recovery_from = Some(until);
        }
        self.changed.notify_waiters();
    }

    /// Reports an answer that was not rate limited: recovers the rate by
    /// [`RECOVERY_FRACTION`] of the configured rate per [`RECOVERY_INTERVAL`]
    /// elapsed since the last decrease or step, up to the configured rate.
    pub fn on_success(&self) {
        let mut st = self.lock();
        if st.rate >= self.config.requests_per_second {
            return;
        }
        let now = Instant::now();
        let from = *st.recovery_from.get_or_insert(now);
        if now <= from {
            return;
        }
        let steps = ((now - from).as_secs_f64() / RECOVERY_INTERVAL.as_secs_f64()).floor();
        if steps < 1.0 {
            return;
        }
        let step = self.config.requests_per_second * RECOVERY_FRACTION;
        st.rate = (st.rate + steps * step).min(self.config.requests_per_second);
        st.recovery_from = Some(from + RECOVERY_INTERVAL.mul_f64(steps));
        metrics::gauge!("notion_pacer_rate", "integration" => self.name.clone()).set(st.rate);
    }

    /// Current state.
    pub fn snapshot(&self) -> PacerSnapshot {
        let st = self.lock();
        let now = Instant::now();
        PacerSnapshot {
            configured_rate: self.config.requests_per_second,
            current_rate: st.rate,
            paused_for: st.paused_until.filter(|p| *p > now).map(|p| p - now),
            waiters_interactive: st.interactive.len(),
            waiters_bulk: st.bulk.len(),
            granted_interactive: st.granted_interactive,
            granted_bulk: st.granted_bulk,
            rate_limited_total: st.rate_limited_total,
            pauses_total: st.pauses_total,
        }
    }
}
