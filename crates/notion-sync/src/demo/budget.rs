//! The demo's integrations and their request budget: the simulated workspace enforces
//! Notion's 3 requests/s per integration and the daemon paces a little below it (the
//! screen's ETA and reasons use both).

/// Requests/s the simulated workspace allows (Notion's documented average).
pub(super) const SIM_RATE: f64 = 3.0;
/// Requests/s the daemon is configured to send.
pub(super) const DAEMON_RATE: f64 = 2.8;

/// The two sources, each with an integration of the same name: (name, the sim's
/// integration index). The second one meets the 429 storms.
pub(super) const SOURCES: [(&str, usize); 2] = [("team", 0), ("client", 1)];
