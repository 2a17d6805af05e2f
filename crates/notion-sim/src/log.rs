//! The request log and cumulative per-route counters.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::types::RequestRecord;

/// Oldest records are forgotten beyond this many (counters keep counting).
const MAX_RECORDS: usize = 200_000;

/// One counter row of `GET /_sim/stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteCount {
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// Response status (0 = dropped connection).
    pub status: u16,
    /// Requests since start (not reset by `clear_request_log`).
    pub count: u64,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    records: VecDeque<RequestRecord>,
    counters: BTreeMap<(String, String, u16), u64>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, r: RequestRecord) {
        *self
            .counters
            .entry((r.route.clone(), r.method.clone(), r.status))
            .or_default() += 1;
        self.records.push_back(r);
        if self.records.len() > MAX_RECORDS {
            self.records.pop_front();
        }
    }

    pub(crate) fn records(&self) -> Vec<RequestRecord> {
        self.records.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }

    pub(crate) fn count(&self, method: &str, route: &str) -> usize {
        self.records
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.route == route)
            .count()
    }

    pub(crate) fn counters(&self) -> Vec<RouteCount> {
        self.counters
            .iter()
            .map(|((route, method, status), count)| RouteCount {
                method: method.clone(),
                route: route.clone(),
                status: *status,
                count: *count,
            })
            .collect()
    }
}
