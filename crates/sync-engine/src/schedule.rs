//! Cron scheduling of reconcile passes (tokio-cron-scheduler, UTC). Ticks only start
//! passes; the engine's run lock keeps them from overlapping and the persisted
//! watermark, not tick counting, decides what a pass covers. Only the replica that
//! [`Leadership::leads`] runs them; one that gains leadership runs a catch-up pass.

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::leadership::Leadership;
use crate::reconcile::PassKind;

/// How often a running pass checks that this replica still leads.
const LEADERSHIP_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs a pass that stops (between pages, as at shutdown) once this replica no longer
/// leads: a replica whose lease ran out must not write watermarks beside the new leader.
async fn pass_while_leading(
    engine: &Engine,
    leadership: &Leadership,
    kind: PassKind,
    cancel: &CancellationToken,
) {
    let pass = cancel.child_token();
    let watcher = {
        let (pass, leadership) = (pass.clone(), leadership.clone());
        tokio::spawn(async move {
            loop {
                if !leadership.leads() {
                    tracing::warn!("leadership lapsed during a pass: stopping it");
                    pass.cancel();
                    return;
                }
                tokio::select! {
                    () = pass.cancelled() => return,
                    () = tokio::time::sleep(LEADERSHIP_CHECK) => {}
                }
            }
        })
    };
    engine.reconcile_logged(kind, &pass).await;
    pass.cancel();
    let _ = watcher.await;
}

/// Whether `expr` is a 6-field cron expression (with seconds) the scheduler accepts.
pub fn is_valid_schedule(expr: &str) -> bool {
    expr.split_whitespace().count() == 6 && Job::new_async(expr, |_, _| Box::pin(async {})).is_ok()
}

/// Runs the start-up pass (if configured) and the scheduled passes until `cancel`,
/// then stops the scheduler and waits for a running pass to end.
pub async fn run_scheduler(
    engine: Engine,
    leadership: Leadership,
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
        let leadership = leadership.clone();
        let job = Job::new_async(schedule, move |_id, _lock| {
            let engine = engine.clone();
            let cancel = cancel.clone();
            let leads = leadership.leads();
            Box::pin(async move {
                if leads {
                    engine.reconcile_logged(kind, &cancel).await;
                } else {
                    tracing::debug!(
                        source = engine.name(),
                        ?kind,
                        "another replica leads: scheduled pass left to it"
                    );
                }
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    let mut gained = leadership.gained();
    if config.on_start && leadership.leads() {
        gained.mark_unchanged();
        pass_while_leading(&engine, &leadership, PassKind::Incremental, &cancel).await;
    }
    // A replica that takes over leadership catches up at once: the previous leader may
    // have died before its pass covered the latest edits.
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            changed = gained.changed() => {
                if changed.is_err() {
                    cancel.cancelled().await;
                    break;
                }
                if leadership.leads() {
                    tracing::info!(source = engine.name(), "this replica now leads: catch-up pass");
                    pass_while_leading(&engine, &leadership, PassKind::Incremental, &cancel).await;
                }
            }
        }
    }
    scheduler.shutdown().await?;
    // A scheduled pass sees the cancellation between pages; wait for it to end.
    engine.reconcile_idle().await;
    tracing::info!("scheduler stopped");
    Ok(())
}
