//! The demo's request budget: the simulated workspace enforces Notion's 3 requests/s
//! and the daemon paces a little below it (the screen's ETA and reasons use both).

/// Requests/s the simulated workspace allows (Notion's documented average).
pub(super) const SIM_RATE: f64 = 3.0;
/// Requests/s the daemon is configured to send.
pub(super) const DAEMON_RATE: f64 = 2.8;
