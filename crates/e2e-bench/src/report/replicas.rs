//! The PostgreSQL-and-replicas rows and targets in the report: ingest on SQLite beside
//! PostgreSQL with one and three replicas, and three replicas' combined Notion rate with
//! the budget shared in the database or split between them.

use super::format::{TargetCheck, secs};
use crate::replicas::ReplicasResult;

/// Three replicas sharing the budget never exceed it over 10 s and meet no 429.
pub(super) fn replicas_targets(r: &ReplicasResult) -> Vec<TargetCheck> {
    r.budget
        .iter()
        .filter(|b| b.mode == "shared")
        .map(|b| TargetCheck {
            target: format!(
                "{} replicas sharing one integration's budget: at most {:.0} requests in any 10 s, no 429",
                b.replicas,
                b.rate_limit * 10.0
            ),
            measured: format!(
                "max {} in 10 s, {:.2} req/s over the sync, {} 429s",
                b.max_10s_window, b.achieved_per_s, b.rate_limited_429
            ),
            met: b.max_10s_window as f64 <= b.rate_limit * 10.0 && b.rate_limited_429 == 0,
        })
        .collect()
}

pub(super) fn replicas_rows(rows: &mut Vec<[String; 5]>, r: &ReplicasResult) {
    rows.push([
        format!(
            "## PostgreSQL ({}) and replicas (baseline column: SQLite, one daemon)",
            r.postgres_server
        ),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let sqlite = r.ingest.iter().find(|i| i.backend == "sqlite");
    for i in r.ingest.iter().filter(|i| i.backend == "postgres") {
        let base = |f: &dyn Fn(&crate::replicas::IngestRow) -> String| sqlite.map_or("-".into(), f);
        rows.push([
            format!(
                "ingest, PostgreSQL × {}: deliveries/s (closed loop)",
                i.replicas
            ),
            format!("{:.0}", i.deliveries_per_s),
            base(&|s| format!("{:.0}", s.deliveries_per_s)),
            "-".into(),
            String::new(),
        ]);
        rows.push([
            format!(
                "ingest, PostgreSQL × {}: ack latency at {}/s",
                i.replicas, i.open_loop_target_per_s
            ),
            secs(&i.ack_latency_ms),
            base(&|s| secs(&s.ack_latency_ms)),
            "-".into(),
            String::new(),
        ]);
        rows.push([
            format!(
                "ingest, PostgreSQL × {}: acknowledged / stored events",
                i.replicas
            ),
            format!("{} / {}", i.events_acknowledged, i.events_stored),
            base(&|s| format!("{} / {}", s.events_acknowledged, s.events_stored)),
            "-".into(),
            String::new(),
        ]);
    }
    for b in &r.budget {
        rows.push([
            format!(
                "{} replicas, budget {} ({} req/s): first sync of {} pages",
                b.replicas, b.mode, b.rate_limit, b.pages
            ),
            format!(
                "{:.1} s, {} requests, {:.2} req/s, max {} in 10 s, {} 429s",
                b.drained_s, b.requests, b.achieved_per_s, b.max_10s_window, b.rate_limited_429
            ),
            "-".into(),
            "-".into(),
            String::new(),
        ]);
    }
}
