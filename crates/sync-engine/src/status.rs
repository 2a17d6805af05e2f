//! The engine's live state as health reports it: schema guard, reconciler, bulk reads,
//! Notion auth, storage.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::rules::{SchemaInfo, SchemaProblem};

/// What the schema guard currently believes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Not checked yet (start-up, or Notion unreachable so far).
    Unknown,
    Ok(SchemaInfo),
    Drift(Vec<SchemaProblem>),
}

impl SchemaState {
    pub fn label(&self) -> &'static str {
        match self {
            SchemaState::Unknown => "unknown",
            SchemaState::Ok(_) => "ok",
            SchemaState::Drift(_) => "drift",
        }
    }
}

/// Progress of the pass that is running now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PassProgress {
    pub kind: &'static str,
    pub started_at: DateTime<Utc>,
    pub pages_seen: u64,
    pub bodies_queued: u64,
    /// Pages the mirror held when the pass started (an estimate of the total for a full scan).
    pub expected_pages: u64,
}

/// What one finished pass did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PassSummary {
    pub kind: &'static str,
    pub pages_seen: u64,
    pub pages_updated: u64,
    pub bodies_queued: u64,
    pub pages_trashed: u64,
    pub overdue_marked: u64,
    pub query_requests: u64,
    pub watermark: Option<String>,
    pub resumed: bool,
}

impl PassSummary {
    /// Adds one data source's pass to the whole pass.
    pub(crate) fn add(&mut self, s: PassSummary) {
        self.kind = s.kind;
        self.pages_seen += s.pages_seen;
        self.pages_updated += s.pages_updated;
        self.bodies_queued += s.bodies_queued;
        self.pages_trashed += s.pages_trashed;
        self.overdue_marked += s.overdue_marked;
        self.query_requests += s.query_requests;
        self.resumed |= s.resumed;
        self.watermark = s.watermark;
    }
}

/// One burst of property reads answered by query (`bulk_read.rs`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BulkBurst {
    pub data_source: String,
    pub started_at: DateTime<Utc>,
    /// Jobs taken from the queue to be answered by query.
    pub taken: u64,
    /// Jobs a query answered.
    pub answered: u64,
    /// Jobs sent back to be read on their own (not returned, not visible in time).
    pub fell_back: u64,
    /// Query requests sent.
    pub queries: u64,
}

/// Bursts in progress (by batch) and the last one that ended.
#[derive(Debug, Clone, Default)]
pub struct BulkStatus {
    pub active: std::collections::BTreeMap<String, BulkBurst>,
    pub last: Option<BulkBurst>,
}

#[derive(Debug, Clone, Default)]
pub struct ReconcileState {
    pub running: Option<PassProgress>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_summary: Option<PassSummary>,
}

/// Shared, cheap-to-read engine state. Every field is behind its own lock, held briefly.
#[derive(Debug)]
pub struct EngineStatus {
    schema: Mutex<SchemaState>,
    reconcile: Mutex<ReconcileState>,
    bulk: Mutex<BulkStatus>,
    auth_error: Mutex<Option<String>>,
    store_write_failure: Mutex<Option<(std::time::Instant, String)>>,
}

impl Default for EngineStatus {
    fn default() -> Self {
        Self {
            schema: Mutex::new(SchemaState::Unknown),
            reconcile: Mutex::new(ReconcileState::default()),
            bulk: Mutex::new(BulkStatus::default()),
            auth_error: Mutex::new(None),
            store_write_failure: Mutex::new(None),
        }
    }
}

impl EngineStatus {
    pub fn schema(&self) -> SchemaState {
        self.schema.lock().expect("status lock").clone()
    }

    /// Stores the new schema state; returns the problems that are new (to log once each).
    pub fn set_schema(&self, state: SchemaState) -> Vec<SchemaProblem> {
        let mut guard = self.schema.lock().expect("status lock");
        let new_problems = match (&*guard, &state) {
            (SchemaState::Drift(old), SchemaState::Drift(new)) => {
                new.iter().filter(|p| !old.contains(p)).cloned().collect()
            }
            (_, SchemaState::Drift(new)) => new.clone(),
            _ => Vec::new(),
        };
        *guard = state;
        new_problems
    }

    pub fn schema_info(&self) -> Option<SchemaInfo> {
        match &*self.schema.lock().expect("status lock") {
            SchemaState::Ok(info) => Some(info.clone()),
            _ => None,
        }
    }

    pub fn reconcile(&self) -> ReconcileState {
        self.reconcile.lock().expect("status lock").clone()
    }

    pub fn update_reconcile(&self, f: impl FnOnce(&mut ReconcileState)) {
        f(&mut self.reconcile.lock().expect("status lock"));
    }

    pub fn bulk(&self) -> BulkStatus {
        self.bulk.lock().expect("status lock").clone()
    }

    /// Shows (or, with `None`, drops) the burst of batch `key` in progress.
    pub(crate) fn set_bulk_burst(&self, key: &str, burst: Option<BulkBurst>) {
        let mut guard = self.bulk.lock().expect("status lock");
        match burst {
            Some(b) => guard.active.insert(key.to_owned(), b),
            None => guard.active.remove(key),
        };
    }

    /// A burst ended: it leaves the active set and becomes the last one.
    pub(crate) fn finish_bulk_burst(&self, key: &str, burst: BulkBurst) {
        let mut guard = self.bulk.lock().expect("status lock");
        guard.active.remove(key);
        guard.last = Some(burst);
    }

    pub fn auth_error(&self) -> Option<String> {
        self.auth_error.lock().expect("status lock").clone()
    }

    pub fn set_auth_error(&self, e: Option<String>) {
        *self.auth_error.lock().expect("status lock") = e;
    }

    /// Records a write that could not commit (disk full, read-only, I/O).
    pub fn record_store_write_failure(&self, e: String) {
        *self.store_write_failure.lock().expect("status lock") =
            Some((std::time::Instant::now(), e));
    }

    /// The last failed commit if it happened within `window`, with how long ago.
    /// Time-based on purpose: in a nearly full database small commits succeed between
    /// failing ones, and health must not flap with them.
    pub fn recent_store_write_failure(
        &self,
        window: std::time::Duration,
    ) -> Option<(std::time::Duration, String)> {
        let guard = self.store_write_failure.lock().expect("status lock");
        let (at, e) = guard.as_ref()?;
        let ago = at.elapsed();
        (ago < window).then(|| (ago, e.clone()))
    }
}
