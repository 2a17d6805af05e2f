//! Freshness on the webhook path (edit in Notion → row in the mirror) under the first
//! sync's backlog and when idle, the shared edit workload, start-up and idle footprint, and
//! the one-page bursts at Notion's rate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cost::BurstCase;
use crate::daemon::{Daemon, DaemonConfig, Memory, wait_for};
use crate::stats::Summary;
use crate::support::{self, Mirror, RouteCounts, Workload, notion_like};

#[derive(Debug, Clone)]
pub struct FreshnessParams {
    pub pages: usize,
    pub rate: f64,
    pub backlog_samples: usize,
    pub workload: Workload,
    /// Deliveries for one page in the burst cases.
    pub burst: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    pub workload: Workload,
    pub synced: usize,
    pub freshness_ms: Summary,
    pub requests: RouteCounts,
    pub requests_per_change: f64,
    pub rate_limited_429: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FreshnessResult {
    pub pages: usize,
    pub configured_per_s: f64,
    pub startup_empty_ms: f64,
    pub memory_at_ready: Memory,
    /// Bulk jobs queued (first sync's body fetches) when each backlog sample started.
    pub backlog_queued: Vec<u64>,
    pub under_backlog_ms: Summary,
    /// The shared workload on the idle daemon (the idle freshness figures).
    pub idle: WorkloadResult,
    /// After the first sync and the workload, nothing queued.
    pub memory_idle: Memory,
    /// 100 signed deliveries for one page posted by the bench (the target case).
    pub one_page_direct: BurstCase,
    /// 100 edits of one page in the sim: its deliveries plus the aggregated event.
    pub one_page_sim: BurstCase,
}

pub async fn run(bin: &Path, p: &FreshnessParams) -> anyhow::Result<FreshnessResult> {
    let dir = tempfile::tempdir()?;
    let sim = support::start_sim(p.pages, notion_like(p.rate, 10)).await?;
    let cfg = DaemonConfig {
        on_start: true,
        ..DaemonConfig::new(p.rate)
    };
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    let memory_at_ready = daemon.memory()?;
    support::subscribe(&sim, &daemon).await?;
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();

    // Under backlog: the pass at start queued a body fetch for every page (bulk lane).
    let backlog = |h: &serde_json::Value| h["queue"]["queued_bulk"].as_u64().unwrap_or(0);
    wait_for(
        "the first sync's backlog",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async {
            daemon
                .health()
                .await
                .is_ok_and(|h| backlog(&h) as usize >= p.pages / 2)
        },
    )
    .await?;
    let mirror = Mirror::open(&daemon.db).await?;
    let mut backlog_queued = Vec::new();
    let mut under = Vec::new();
    for i in 0..p.backlog_samples {
        backlog_queued.push(backlog(&daemon.health().await?));
        let id = &ids[(i * 5 + 1) % ids.len()];
        let title = format!("Edited under backlog {i}");
        let t0 = Instant::now();
        sim.set_title(id, &title)?;
        let t1 = mirror
            .wait_page(id, Duration::from_secs(60), |r| r.title == title)
            .await?;
        under.push(t1 - t0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let drain = Duration::from_secs_f64(p.pages as f64 / p.rate * 3.0 + 60.0);
    support::settle(&sim, &daemon, drain).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mirror = Arc::new(mirror);
    let idle = run_workload(&sim, &daemon, &mirror, &ids, &p.workload).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory_idle = daemon.memory()?;
    // At Notion's rate a job lasts a pacer interval: the window in which a burst coalesces.
    let (one_page_direct, one_page_sim) =
        crate::cost::one_page_bursts(&sim, &daemon, &mirror, p.burst).await?;
    if let Ok(m) = Arc::try_unwrap(mirror) {
        m.close().await;
    }
    let startup_empty_ms = support::ms(daemon.startup);
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(FreshnessResult {
        pages: p.pages,
        configured_per_s: p.rate,
        startup_empty_ms,
        memory_at_ready,
        backlog_queued,
        under_backlog_ms: Summary::of_durations_ms(&under),
        idle,
        memory_idle,
        one_page_direct,
        one_page_sim,
    })
}

/// Runs the workload against the daemon: each edit on schedule, each watched in the
/// mirror by its own task; then counts every request the daemon made for it.
async fn run_workload(
    sim: &notion_sim::SimHandle,
    daemon: &Daemon,
    mirror: &Arc<Mirror>,
    ids: &[String],
    w: &Workload,
) -> anyhow::Result<WorkloadResult> {
    sim.clear_request_log();
    let start = Instant::now();
    let mut watchers = JoinSet::new();
    for i in 0..w.changes {
        let (page, title) = w.change(i, ids.len());
        let id = ids[page].clone();
        tokio::time::sleep_until(start + w.gap * i as u32).await;
        let t0 = Instant::now();
        sim.set_title(&id, &title)?;
        let mirror = Arc::clone(mirror);
        watchers.spawn(async move {
            mirror
                .wait_page(&id, Duration::from_secs(120), |r| r.title == title)
                .await
                .map(|t1| t1 - t0)
        });
    }
    let mut delays = Vec::new();
    while let Some(r) = watchers.join_next().await {
        delays.push(r??);
    }
    support::settle(sim, daemon, Duration::from_secs(120)).await?;
    let requests = RouteCounts::of(&sim.request_log());
    Ok(WorkloadResult {
        workload: w.clone(),
        synced: delays.len(),
        freshness_ms: Summary::of_durations_ms(&delays),
        requests_per_change: requests.total as f64 / w.changes.max(1) as f64,
        rate_limited_429: requests.rate_limited_429,
        requests,
    })
}
