//! Integrations that share one Notion workspace share its workspace-wide rate limit: a
//! 429 whose `additional_data.rate_limit_reason` names that limit pauses every pacer of
//! the workspace, not only the one that was refused (each integration's own limit stays
//! its own: an integration-limit 429 pauses that integration only).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::error::NotionError;
use crate::pacer::Pacer;

/// The pacers of the integrations in one workspace. Cheap to share (`Arc`).
#[derive(Debug, Default)]
pub struct Workspace {
    name: String,
    pacers: Mutex<Vec<Weak<Pacer>>>,
}

impl Workspace {
    /// A workspace with no integration yet.
    pub fn new(name: impl Into<String>) -> Arc<Workspace> {
        Arc::new(Workspace {
            name: name.into(),
            pacers: Mutex::new(Vec::new()),
        })
    }

    /// The workspace's name (as configured).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds an integration's pacer (a client built with this workspace joins it).
    pub fn join(&self, pacer: &Arc<Pacer>) {
        let mut pacers = self.lock();
        pacers.retain(|p| p.strong_count() > 0);
        if !pacers.iter().any(|p| p.as_ptr() == Arc::as_ptr(pacer)) {
            pacers.push(Arc::downgrade(pacer));
        }
    }

    /// Pauses every integration of the workspace for `d` except `except` (the refused
    /// one, which backs off by its own rule); returns how many were paused.
    pub fn pause_others(&self, except: &Pacer, d: Duration) -> usize {
        let pacers: Vec<Arc<Pacer>> = self.lock().iter().filter_map(Weak::upgrade).collect();
        let mut paused = 0;
        for p in pacers.iter().filter(|p| !std::ptr::eq(p.as_ref(), except)) {
            p.pause_for(d);
            paused += 1;
        }
        paused
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Pacer>>> {
        self.pacers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether a rate-limit error is the workspace-wide limit (`rate_limit_reason` naming
/// the workspace, e.g. `workspace_rate_limit`), which every integration of the
/// workspace must wait out.
pub fn is_workspace_limit(err: &NotionError) -> bool {
    err.additional_data()
        .and_then(|d| d.get("rate_limit_reason"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|r| r.to_ascii_lowercase().contains("workspace"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacer::PacerConfig;

    #[tokio::test(start_paused = true)]
    async fn a_workspace_pause_reaches_every_other_integration_of_it() {
        let ws = Workspace::new("acme");
        let a = Pacer::named(PacerConfig::default(), "a");
        let b = Pacer::named(PacerConfig::default(), "b");
        let elsewhere = Pacer::named(PacerConfig::default(), "c");
        ws.join(&a);
        ws.join(&b);
        ws.join(&b);
        assert_eq!(ws.pause_others(&a, Duration::from_secs(30)), 1);
        assert!(b.snapshot().paused_for.is_some());
        assert!(
            a.snapshot().paused_for.is_none(),
            "a backs off by its own rule"
        );
        assert!(elsewhere.snapshot().paused_for.is_none());
        drop(b);
        assert_eq!(ws.pause_others(&a, Duration::from_secs(1)), 0);
    }
}
