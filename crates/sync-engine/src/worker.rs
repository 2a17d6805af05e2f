//! The worker pool: claims jobs under a lease, renews it while a job runs, completes
//! or fails the job fenced by that lease, and hands leases back on shutdown; runs the
//! bulk reader's rounds beside the workers.

use std::time::Duration;

use sync_store::{ClaimedJob, FailOutcome, JobFailure, StoreError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bulk_read::BulkState;
use crate::engine::Engine;

/// How often idle workers look for jobs that became due without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often expired leases are returned to the queue and old events pruned.
const REAP_EVERY: Duration = Duration::from_secs(15);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the bulk reader looks for bursts and answers what became visible.
const BULK_EVERY: Duration = Duration::from_millis(250);
/// After a wake-up, the bulk reader waits this long for the rest of a burst to arrive.
const BULK_GATHER: Duration = Duration::from_millis(50);

/// What a drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub completed: u64,
    pub retried: u64,
    pub dead: u64,
}

impl std::ops::AddAssign for DrainReport {
    fn add_assign(&mut self, o: Self) {
        self.completed += o.completed;
        self.retried += o.retried;
        self.dead += o.dead;
    }
}

/// How one job ended.
enum Ended {
    Completed,
    Retrying,
    Dead,
    /// Lease lost or handed back: someone else will run it.
    Abandoned,
}

/// A pool of `config.workers` workers over the engine's queue.
#[derive(Debug, Clone)]
pub struct WorkerPool {
    engine: Engine,
    name: String,
}

impl WorkerPool {
    /// A pool whose workers are named `<hostname>-<pid>-w<i>`.
    pub fn new(engine: Engine) -> WorkerPool {
        let name = format!("{}-{}", hostname(), std::process::id());
        WorkerPool { engine, name }
    }

    /// A pool whose worker names start with `prefix` (the daemon uses one per
    /// instance, so a restart can reclaim its predecessor's jobs at once).
    pub fn named(engine: Engine, prefix: impl Into<String>) -> WorkerPool {
        WorkerPool {
            engine,
            name: prefix.into(),
        }
    }

    /// Runs the workers, the lease reaper and the event pruner until `cancel`;
    /// running jobs get `shutdown_grace` to finish, then their leases are returned.
    pub async fn run(self, cancel: CancellationToken) {
        let mut set = JoinSet::new();
        for i in 0..self.engine.config().workers.count {
            let engine = self.engine.clone();
            let worker = format!("{}-w{i}", self.name);
            let cancel = cancel.clone();
            set.spawn(async move { worker_loop(engine, worker, cancel).await });
        }
        if self.engine.config().workers.bulk_read_threshold > 0 {
            let engine = self.engine.clone();
            let worker = format!("{}-bulk", self.name);
            let cancel = cancel.clone();
            set.spawn(async move { bulk_loop(engine, worker, cancel).await });
        }
        let engine = self.engine.clone();
        let reaper_cancel = cancel.clone();
        set.spawn(async move { maintenance_loop(engine, reaper_cancel).await });
        while let Some(res) = set.join_next().await {
            if let Err(e) = res {
                tracing::error!(error = %e, "worker task panicked");
            }
        }
        tracing::info!("workers stopped");
    }

    /// Runs due jobs until none is left (tests, `notion-sync reconcile`). With
    /// `wait_scheduled`, also waits for jobs scheduled later (retry backoff).
    pub async fn run_until_empty(&self, wait_scheduled: bool) -> Result<DrainReport, StoreError> {
        let mut total = DrainReport::default();
        loop {
            self.engine.store().reap_expired_leases().await?;
            let mut set = JoinSet::new();
            for i in 0..self.engine.config().workers.count.max(1) {
                let engine = self.engine.clone();
                let worker = format!("{}-drain{i}", self.name);
                set.spawn(async move { drain_loop(engine, worker).await });
            }
            while let Some(res) = set.join_next().await {
                total += res.expect("drain task panicked")?;
            }
            if !wait_scheduled {
                return Ok(total);
            }
            let Some(next) = self.engine.store().next_due_at().await? else {
                return Ok(total);
            };
            let wait = (next - self.engine.store().clock().now())
                .to_std()
                .unwrap_or_default();
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".into())
}

async fn drain_loop(engine: Engine, worker: String) -> Result<DrainReport, StoreError> {
    let mut report = DrainReport::default();
    let lease = engine.config().workers.lease;
    loop {
        let Some(job) = engine.store().claim(1, &worker, lease).await?.pop() else {
            return Ok(report);
        };
        match run_claimed(&engine, &job, &CancellationToken::new()).await {
            Ended::Completed => report.completed += 1,
            Ended::Retrying => report.retried += 1,
            Ended::Dead => report.dead += 1,
            Ended::Abandoned => {}
        }
    }
}

async fn worker_loop(engine: Engine, worker: String, cancel: CancellationToken) {
    let lease = engine.config().workers.lease;
    while !cancel.is_cancelled() {
        // Register for wake-ups before looking, so a wake between the two isn't lost.
        let woken = engine.woken();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let claimed = match engine.store().claim(1, &worker, lease).await {
            Ok(mut jobs) => jobs.pop(),
            Err(e) => {
                // A claim is a write: storage that cannot take it is reported as failing.
                engine.status().record_store_write_failure(e.to_string());
                tracing::warn!(error = %e, "claiming jobs failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            }
        };
        match claimed {
            Some(job) => {
                run_claimed(&engine, &job, &cancel).await;
            }
            None => {
                let pause = match engine.store().next_due_at().await {
                    Ok(Some(t)) => (t - engine.store().clock().now())
                        .to_std()
                        .unwrap_or_default()
                        .clamp(Duration::from_millis(10), IDLE_POLL),
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = &mut woken => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Runs one job: renews its lease every third of the lease, completes or fails it
/// fenced by the lease, and on shutdown waits the grace period then hands it back.
async fn run_claimed(engine: &Engine, job: &ClaimedJob, cancel: &CancellationToken) -> Ended {
    let store = engine.store();
    let lease = engine.config().workers.lease;
    let started = tokio::time::Instant::now();
    let span = tracing::info_span!("job", job.id = job.id, job.kind = %job.kind, job.key = %job.key, job.attempt = job.attempts);
    let handler = engine.run_job(job);
    tokio::pin!(handler);
    let mut renew = tokio::time::interval(lease / 3);
    renew.tick().await;
    let grace_over = async {
        cancel.cancelled().await;
        tokio::time::sleep(engine.config().workers.shutdown_grace).await;
    };
    tokio::pin!(grace_over);
    let result = loop {
        tokio::select! {
            r = &mut handler => break r,
            _ = renew.tick() => {
                if let Err(e) = store.extend(job, lease).await {
                    span.in_scope(|| tracing::warn!(error = %e, "lease renewal failed: abandoning the job"));
                    return Ended::Abandoned;
                }
            }
            _ = &mut grace_over => {
                span.in_scope(|| tracing::warn!("shutdown grace period over: handing the job back"));
                if let Err(e) = store.release(job).await {
                    span.in_scope(|| tracing::warn!(error = %e, "could not hand the job back; its lease will expire"));
                }
                return Ended::Abandoned;
            }
        }
    };
    // The span is entered only around synchronous code: a guard held across an await
    // may be dropped on another thread than it was entered on, which the subscriber's
    // span registry does not survive ("tried to clone a span that already closed").
    finish(engine, job, result, started).instrument(span).await
}

/// Records how job `job` ended (`result` of its handler) in the queue and the metrics.
async fn finish(
    engine: &Engine,
    job: &ClaimedJob,
    result: Result<(), crate::error::JobError>,
    started: tokio::time::Instant,
) -> Ended {
    let store = engine.store();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::histogram!("sync_job_duration_seconds", "kind" => job.kind.clone(), "source" => engine.name().to_owned()).record(elapsed);
    match result {
        Ok(()) => match store.complete(job).await {
            Ok(()) => {
                metrics::counter!("sync_jobs_total", "kind" => job.kind.clone(), "outcome" => "completed", "source" => engine.name().to_owned()).increment(1);
                engine.record_freshness(job);
                Ended::Completed
            }
            Err(e) => {
                tracing::warn!(error = %e, "completing the job failed");
                Ended::Abandoned
            }
        },
        Err(err) => {
            let failure = JobFailure {
                permanent: err.is_permanent(),
                error: err.to_string(),
                retry_at: err
                    .retry_after()
                    .and_then(|d| chrono::TimeDelta::from_std(d).ok())
                    .map(|d| store.clock().now() + d),
            };
            match store.fail(job, failure).await {
                Ok(FailOutcome::Retrying { run_at, attempts }) => {
                    metrics::counter!("sync_jobs_total", "kind" => job.kind.clone(), "outcome" => "retrying", "source" => engine.name().to_owned()).increment(1);
                    tracing::warn!(error = %err, error.chain = ?err, retry_at = %run_at, attempts, "job failed; will retry");
                    Ended::Retrying
                }
                Ok(FailOutcome::Dead) => {
                    metrics::counter!("sync_jobs_total", "kind" => job.kind.clone(), "outcome" => "dead", "source" => engine.name().to_owned()).increment(1);
                    tracing::error!(error = %err, error.chain = ?err, "job failed permanently: moved to dead (see `notion-sync jobs list`)");
                    Ended::Dead
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recording the job failure failed");
                    Ended::Abandoned
                }
            }
        }
    }
}

/// The bulk reader's rounds until `cancel`; a round in progress gets the shutdown grace
/// to finish, then the jobs it holds go back to the queue.
async fn bulk_loop(engine: Engine, worker: String, cancel: CancellationToken) {
    let mut state = BulkState::default();
    let mut tick = tokio::time::interval(BULK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let grace_over = async {
        cancel.cancelled().await;
        tokio::time::sleep(engine.config().workers.shutdown_grace).await;
    };
    tokio::pin!(grace_over);
    loop {
        let woken = engine.woken();
        tokio::pin!(woken);
        woken.as_mut().enable();
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
            // New work: look a moment later, when the deliveries arriving with it are in.
            _ = &mut woken => tokio::time::sleep(BULK_GATHER).await,
        }
        tokio::select! {
            r = engine.bulk_round(&mut state, &worker) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "bulk read round failed; its jobs are read on their own");
                }
            }
            _ = &mut grace_over => break,
        }
    }
    engine.bulk_hand_back(&mut state).await;
}

async fn maintenance_loop(engine: Engine, cancel: CancellationToken) {
    let mut reap = tokio::time::interval(REAP_EVERY);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = reap.tick() => match engine.store().reap_expired_leases().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(jobs = n, "expired leases returned to the queue");
                    engine.wake_workers();
                }
                Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
            },
            _ = prune.tick() => match engine.store().prune_events().await {
                Ok(n) if n > 0 => tracing::info!(events = n, "pruned old webhook events"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning webhook events failed"),
            },
        }
    }
}
