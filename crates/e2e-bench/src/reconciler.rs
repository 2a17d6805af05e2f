//! Silent changes (no webhook at all): found by the scheduled incremental pass. Measures
//! edit-to-mirror delay against the schedule and the requests passes spend per change.

use std::path::Path;
use std::time::Duration;

use notion_sim::BodyEdit;
use serde::Serialize;
use tokio::time::Instant;

use crate::daemon::{Daemon, DaemonConfig};
use crate::stats::Summary;
use crate::support::{self, Mirror, RouteCounts, notion_like};

#[derive(Debug, Clone)]
pub struct ReconcilerParams {
    pub pages: usize,
    pub rate: f64,
    /// Seconds between incremental passes (`*/N * * * * *`).
    pub every_s: u32,
    pub samples: usize,
    pub body_changes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcilerResult {
    pub schedule: String,
    pub configured_per_s: f64,
    /// Silent property edits made at spread phases of the schedule.
    pub silent_edit_to_mirror_ms: Summary,
    pub passes_seen: u64,
    /// Everything from the first silent edit to the end (passes with and without changes).
    pub requests: RouteCounts,
    pub silent_property_changes: usize,
    pub silent_body_changes: usize,
    pub requests_per_change: f64,
    /// Requests other than queries (page GETs, body fetches) per change.
    pub non_query_per_change: f64,
    /// Requests from each query (the start of a pass) to the next, in order.
    pub per_pass: Vec<String>,
    /// Requests of the last pass, which found no new change (re-checks included).
    pub no_change_pass_requests: f64,
}

fn last_success(h: &serde_json::Value) -> Option<String> {
    h["reconcile"]["last_success_at"]
        .as_str()
        .map(str::to_owned)
}

/// Waits for a pass to succeed after the one that succeeded at `after`.
async fn next_pass(
    daemon: &Daemon,
    after: Option<String>,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = last_success(&daemon.health().await?);
        if seen.is_some() && seen != after {
            return Ok(seen);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no reconcile pass succeeded within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn run(bin: &Path, p: &ReconcilerParams) -> anyhow::Result<ReconcilerResult> {
    let dir = tempfile::tempdir()?;
    let sim = support::start_sim(p.pages, notion_like(p.rate, 10)).await?;
    let schedule = format!("*/{} * * * * *", p.every_s);
    let cfg = DaemonConfig {
        on_start: true,
        schedule: schedule.clone(),
        ..DaemonConfig::new(p.rate)
    };
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    // No webhook subscription: every change below is silent.
    sim.set_silent(true);
    daemon.wait_first_pass(Duration::from_secs(120)).await?;
    daemon.wait_queue_empty(Duration::from_secs(120)).await?;
    let mirror = Mirror::open(&daemon.db).await?;
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let period = Duration::from_secs(u64::from(p.every_s));

    // Passes start at the same phase of the schedule; edit at spread phases after one.
    let mut last = last_success(&daemon.health().await?);
    last = next_pass(&daemon, last, period * 4).await?;
    sim.clear_request_log();
    let mut passes = 0u64;
    let mut delays = Vec::new();
    for i in 0..p.samples {
        let phase = period.mul_f64((i as f64 + 0.5) / p.samples as f64);
        tokio::time::sleep(phase).await;
        let id = &ids[(i * 3 + 2) % ids.len()];
        let title = format!("Silent edit {i}");
        let t0 = Instant::now();
        sim.set_title(id, &title)?;
        let t1 = mirror
            .wait_page(id, period * 4, |r| r.title == title)
            .await?;
        delays.push(t1 - t0);
        let now = next_pass(&daemon, last.clone(), period * 4).await?;
        passes += 1;
        last = now;
    }
    // Silent body edits: the pass sees a newer edit time with the same properties. On
    // pages without a title edit above: a silent body edit in the same minute as an
    // observed property edit is only found by the daily full scan (sync-engine README).
    let titled: Vec<&String> = (0..p.samples)
        .map(|i| &ids[(i * 3 + 2) % ids.len()])
        .collect();
    let body_ids: Vec<&String> = ids
        .iter()
        .skip(1)
        .step_by(4)
        .filter(|id| !titled.contains(id))
        .take(p.body_changes)
        .collect();
    for (i, id) in body_ids.iter().enumerate() {
        sim.edit_body(
            id,
            BodyEdit::AppendParagraph(format!("Silent body edit {i}")),
        )?;
    }
    for (i, id) in body_ids.iter().enumerate() {
        let text = format!("Silent body edit {i}");
        mirror
            .wait_page(id, period * 4, |r| {
                r.body_markdown
                    .as_deref()
                    .is_some_and(|b| b.contains(&text))
            })
            .await?;
    }
    daemon.wait_queue_empty(period * 4).await?;
    // One more pass: what a pass costs once the changes are in (re-checks included).
    last = next_pass(&daemon, last, period * 4).await?;
    passes += 1;
    let before_idle = sim.request_log().len();
    let _ = next_pass(&daemon, last, period * 4).await?;
    passes += 1;
    daemon.wait_queue_empty(period * 4).await?;
    let log = sim.request_log();
    let idle_pass_requests = (log.len() - before_idle) as f64;
    let requests = RouteCounts::of(&log);
    let mut per_pass: Vec<Vec<notion_sim::RequestRecord>> = Vec::new();
    for r in &log {
        if r.route == "/v1/data_sources/{id}/query" || per_pass.is_empty() {
            per_pass.push(Vec::new());
        }
        if let Some(last) = per_pass.last_mut() {
            last.push(r.clone());
        }
    }
    let per_pass = per_pass
        .iter()
        .map(|p| RouteCounts::of(p).breakdown())
        .collect();
    let changes = p.samples + body_ids.len();
    mirror.close().await;
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(ReconcilerResult {
        schedule,
        configured_per_s: p.rate,
        silent_edit_to_mirror_ms: Summary::of_durations_ms(&delays),
        passes_seen: passes,
        requests_per_change: requests.total as f64 / changes.max(1) as f64,
        non_query_per_change: (requests.total - requests.query) as f64 / changes.max(1) as f64,
        requests,
        silent_property_changes: p.samples,
        silent_body_changes: body_ids.len(),
        no_change_pass_requests: idle_pass_requests,
        per_pass,
    })
}
