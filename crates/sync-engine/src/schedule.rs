//! Cron scheduling of reconcile passes (tokio-cron-scheduler, UTC). Ticks only start
//! passes; the engine's run lock keeps them from overlapping and the persisted
//! watermark, not tick counting, decides what a pass covers.

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::reconcile::PassKind;

/// Whether `expr` is a 6-field cron expression (with seconds) the scheduler accepts.
pub fn is_valid_schedule(expr: &str) -> bool {
    expr.split_whitespace().count() == 6 && Job::new_async(expr, |_, _| Box::pin(async {})).is_ok()
}

/// Runs the start-up pass (if configured) and the scheduled passes until `cancel`,
/// then stops the scheduler and waits for a running pass to end.
pub async fn run_scheduler(
    engine: Engine,
    cancel: CancellationToken,
) -> Result<(), JobSchedulerError> {
    let mut scheduler = JobScheduler::new().await?;
    let config = engine.config().reconcile.clone();
    for (schedule, kind) in [
        (config.schedule.as_str(), PassKind::Incremental),
        (config.full_schedule.as_str(), PassKind::Full),
    ] {
        if schedule.trim().is_empty() {
            continue;
        }
        let engine = engine.clone();
        let cancel = cancel.clone();
        let job = Job::new_async(schedule, move |_id, _lock| {
            let engine = engine.clone();
            let cancel = cancel.clone();
            Box::pin(async move { engine.reconcile_logged(kind, &cancel).await })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    if config.on_start {
        engine
            .reconcile_logged(PassKind::Incremental, &cancel)
            .await;
    }
    cancel.cancelled().await;
    scheduler.shutdown().await?;
    // A scheduled pass sees the cancellation between pages; wait for it to end.
    engine.reconcile_idle().await;
    tracing::info!("scheduler stopped");
    Ok(())
}
