//! The demo's 429 storm: from time to time the simulated Notion refuses every request of
//! one integration with 429 (as a storm of rate limiting would), so the screen shows that
//! integration paused while the other's freshness does not move.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use notion_sim::SimHandle;
use tokio_util::sync::CancellationToken;

/// The first storm begins this long after the demo starts …
pub(super) const FIRST: Duration = Duration::from_secs(40);
/// … lasts this long …
pub(super) const LENGTH: Duration = Duration::from_secs(20);
/// … and the next begins this long after the last one began.
pub(super) const EVERY: Duration = Duration::from_secs(80);
/// The `Retry-After` of each refusal.
const RETRY_AFTER_S: u32 = 2;

/// What the screen shows about the storm.
#[derive(Debug, Default)]
pub(super) struct StormState {
    pub raging: AtomicBool,
    pub storms: AtomicU32,
}

/// Storms on the sim's integration `integration` until `stop`.
pub(super) async fn run(
    sim: SimHandle,
    integration: usize,
    state: Arc<StormState>,
    stop: CancellationToken,
) {
    let start = tokio::time::Instant::now();
    let mut next = start + FIRST;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        state.raging.store(true, Ordering::Relaxed);
        state.storms.fetch_add(1, Ordering::Relaxed);
        let end = tokio::time::Instant::now() + LENGTH;
        while tokio::time::Instant::now() < end && !stop.is_cancelled() {
            // Whatever the integration sends next is refused, a few at a time.
            sim.force_errors_for(integration, 429, 2, Some(RETRY_AFTER_S));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        sim.clear_forced_errors();
        state.raging.store(false, Ordering::Relaxed);
        next += EVERY;
    }
    sim.clear_forced_errors();
}
