//! The demo's closing summary: what was mirrored and marked, what it cost in requests,
//! how fresh the mirror stayed, and where the database is with one query to try.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use notion_sim::RequestRecord;

use super::budget::DAEMON_RATE;
use super::status::{Freshness, Snapshot};

pub(super) struct Summary<'a> {
    pub status: &'a Snapshot,
    /// How long the first sync took and the requests made by then.
    pub initial_sync: Option<(Duration, usize)>,
    pub freshness: &'a Freshness,
    /// Each source's freshness, by name.
    pub by_source: &'a BTreeMap<String, Freshness>,
    /// 429 storms the second integration met.
    pub storms: u32,
    pub requests: &'a [RequestRecord],
    pub db: &'a Path,
    pub temporary: bool,
    pub elapsed: Duration,
}

/// What a request was for, in words.
fn kind(r: &RequestRecord) -> &'static str {
    match (r.method.as_str(), r.route.as_str()) {
        ("POST", "/v1/data_sources/{id}/query") => "queries (100 tasks each)",
        ("GET", "/v1/pages/{id}") => "page reads",
        ("GET", "/v1/pages/{id}/markdown") | ("GET", "/v1/blocks/{id}/children") => "body reads",
        ("PATCH", "/v1/pages/{id}") => "status writes",
        _ => "other (schema, identity)",
    }
}

/// The summary lines (the first one is the `demo finished: …` line scripts read).
pub(super) fn lines(s: &Summary<'_>) -> Vec<String> {
    let st = s.status;
    let m = &st.mirror;
    let mut out = vec![format!(
        "demo finished: {}/{} tasks mirrored, {} identical to Notion, {} marked overdue, {} Notion requests, {} rate-limited",
        m.present, m.sim_pages, m.in_sync, st.overdue_marked, st.requests, st.rate_limited
    )];
    out.push(match s.initial_sync {
        Some((took, requests)) => format!(
            "  initial sync: every task and body read once in {} s ({requests} requests at {DAEMON_RATE:.1}/s per integration: Notion allows about 3 per integration)",
            took.as_secs()
        ),
        None => format!(
            "  initial sync still running after {} s: {}/{} bodies read (one request each at {DAEMON_RATE:.1}/s); run longer with --duration",
            s.elapsed.as_secs(),
            m.bodies_read,
            m.sim_pages
        ),
    });
    out.push(format!(
        "  freshness: {} (the slow ones are dropped webhooks and silent edits, which the reconciler catches on its schedule); {}",
        s.freshness.describe(),
        match m.oldest_unsynced_s {
            None => "at the end every change was mirrored".to_owned(),
            Some(age) => format!("at the end the oldest unmirrored change was {age} s old"),
        }
    ));
    for src in &st.sources {
        let (live, same) = m.per_source.get(&src.name).copied().unwrap_or_default();
        out.push(format!(
            "  source {}: {same}/{live} identical to Notion, freshness {}; integration {}: {} requests, {} rate-limited{}",
            src.name,
            s.by_source
                .get(&src.name)
                .map_or_else(|| "not measured".to_owned(), Freshness::describe),
            src.integration,
            src.requests,
            src.rate_limited,
            if src.rate_limited > 0 {
                format!(
                    " ({} simulated 429 storm(s): this integration paused, the other's budget and freshness untouched)",
                    s.storms
                )
            } else {
                String::new()
            }
        ));
    }
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for r in s.requests {
        *by_kind.entry(kind(r)).or_default() += 1;
    }
    out.push(format!(
        "  requests: {}",
        by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let db = s.db.display();
    if s.temporary {
        out.push(format!(
            "  mirror: {db} (temporary, deleted now: pass --db PATH to keep it and query it with sqlite3)"
        ));
    } else {
        out.push(format!("  mirror: {db}; try:"));
        out.push(format!(
            "    sqlite3 {db} \"SELECT title, status, due FROM pages WHERE in_trash = 0 AND status = 'Overdue' ORDER BY due LIMIT 10;\""
        ));
    }
    out
}

pub(super) fn print(s: &Summary<'_>) {
    for line in lines(s) {
        println!("{line}");
    }
}
