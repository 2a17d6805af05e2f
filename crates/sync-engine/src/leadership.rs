//! Whether this replica runs the scheduled passes. Several replicas on one database each
//! run workers, but one at a time (the holder of the leader lease, kept by notion-sync's
//! `replica.rs`) runs the reconciler's passes and so the overdue pass; the scheduler asks
//! [`Leadership::leads`] before each pass. A lease that was not renewed in time stops
//! counting locally before another replica may take it.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

/// This replica's leadership: cheap to clone, shared by the lease keeper and the
/// schedulers of every source.
#[derive(Clone, Debug)]
pub struct Leadership {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None`: always leads (a daemon alone on its database).
    until: Mutex<Option<Option<Instant>>>,
    /// Flips to true when leadership is gained (the scheduler runs a catch-up pass).
    gained: watch::Sender<u64>,
}

impl Leadership {
    /// Leads for good: the one daemon on a SQLite file, the CLI, tests.
    pub fn always() -> Leadership {
        Self::with(None)
    }

    /// Does not lead until [`grant_until`](Self::grant_until).
    pub fn contested() -> Leadership {
        Self::with(Some(None))
    }

    fn with(until: Option<Option<Instant>>) -> Leadership {
        Leadership {
            inner: Arc::new(Inner {
                until: Mutex::new(until),
                gained: watch::channel(0).0,
            }),
        }
    }

    /// Leads until `until` (a renewed lease, minus a safety margin). Gaining it notifies
    /// [`gained`](Self::gained).
    pub fn grant_until(&self, until: Instant) {
        let was = self.leads();
        if let Some(slot) = self.lock().as_mut() {
            *slot = Some(until);
        }
        if !was && self.leads() {
            self.inner.gained.send_modify(|n| *n += 1);
        }
    }

    /// Stops leading now (the lease went to another replica, or this one is stopping).
    pub fn revoke(&self) {
        if let Some(slot) = self.lock().as_mut() {
            *slot = None;
        }
    }

    /// True while this replica may run scheduled passes.
    pub fn leads(&self) -> bool {
        match *self.lock() {
            None => true,
            Some(until) => until.is_some_and(|u| Instant::now() < u),
        }
    }

    /// Changes each time leadership is gained.
    pub fn gained(&self) -> watch::Receiver<u64> {
        self.inner.gained.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Option<Instant>>> {
        self.inner.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leadership_lasts_until_the_grant_runs_out_and_gaining_it_is_announced() {
        let l = Leadership::contested();
        let mut gained = l.gained();
        assert!(!l.leads());
        l.grant_until(Instant::now() + std::time::Duration::from_secs(10));
        assert!(l.leads());
        assert!(gained.has_changed().unwrap());
        gained.mark_unchanged();
        // A renewal while leading announces nothing.
        l.grant_until(Instant::now() + std::time::Duration::from_secs(20));
        assert!(!gained.has_changed().unwrap());
        tokio::time::advance(std::time::Duration::from_secs(21)).await;
        assert!(!l.leads(), "an unrenewed grant runs out");
        l.grant_until(Instant::now() + std::time::Duration::from_secs(5));
        assert!(gained.has_changed().unwrap());
        l.revoke();
        assert!(!l.leads());
        assert!(Leadership::always().leads());
    }
}
