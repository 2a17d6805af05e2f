//! Several sources on one daemon: `sources` task databases of `pages` tasks each, each
//! read through its own integration (its own budget at Notion's rate) and its own
//! webhook subscription, side by side with one source of `pages` tasks, in one run. For
//! each source: the first sync, requests per change and webhook-to-mirror freshness of
//! the same edit workload; for the daemon: RSS and CPU.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notion_sim::{SimConfig, SimHandle};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::daemon::{Daemon, DaemonConfig, Memory, WEBHOOK_SECRET, source_name, wait_for};
use crate::stats::Summary;
use crate::support::{self, Mirror, SEED, notion_like};

#[derive(Debug, Clone)]
pub struct SourcesParams {
    /// Sources of the several-source daemon (the baseline has one).
    pub sources: usize,
    /// Tasks per source.
    pub pages: usize,
    /// Each integration's budget, and the daemon's rate for it.
    pub rate: f64,
    /// Title edits per source, one round (one edit in every source) every `gap`.
    pub changes: usize,
    pub gap: Duration,
}

/// One source's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFigures {
    pub name: String,
    /// Requests its integration sent for the workload.
    pub requests: usize,
    pub requests_per_change: f64,
    pub freshness_ms: Summary,
    pub rate_limited_429: usize,
}

/// One daemon's run.
#[derive(Debug, Clone, Serialize)]
pub struct SourcesRun {
    pub sources: usize,
    pub pages_per_source: usize,
    /// Start to every source's first pass done and its work drained.
    pub first_sync_s: f64,
    /// Requests during the first sync, all integrations.
    pub first_sync_requests: usize,
    pub per_source: Vec<SourceFigures>,
    /// Every source's freshness samples together.
    pub freshness_ms: Summary,
    pub requests_per_change: f64,
    /// Daemon CPU seconds during the first sync and during the workload.
    pub cpu_first_sync_s: f64,
    pub cpu_workload_s: f64,
    pub memory_after: Memory,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourcesResult {
    /// One source (the single-source configuration).
    pub one: SourcesRun,
    /// `sources` sources, each through its own integration.
    pub many: SourcesRun,
}

pub async fn run(bin: &std::path::Path, p: &SourcesParams) -> anyhow::Result<SourcesResult> {
    let one = run_one(bin, p, 1).await.context("one source")?;
    let many = run_one(bin, p, p.sources)
        .await
        .with_context(|| format!("{} sources", p.sources))?;
    Ok(SourcesResult { one, many })
}

async fn run_one(
    bin: &std::path::Path,
    p: &SourcesParams,
    sources: usize,
) -> anyhow::Result<SourcesRun> {
    let dir = tempfile::tempdir()?;
    let sim = notion_sim::start(SimConfig {
        pages: p.pages,
        seed: SEED,
        rate_limit: notion_like(p.rate, 10),
        extra_task_databases: sources - 1,
        extra_tokens: (1..sources)
            .map(|i| format!("secret_e2e_integration_{i}"))
            .collect(),
        ..SimConfig::default()
    })
    .await
    .context("starting notion-sim")?;
    let cfg = DaemonConfig {
        on_start: true,
        sources,
        ..DaemonConfig::new(p.rate)
    };
    let started = Instant::now();
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    let cpu0 = daemon.cpu_seconds()?;
    subscribe(&sim, &daemon, sources).await?;
    let first_sync_budget = Duration::from_secs_f64(p.pages as f64 * 2.0 / p.rate + 120.0);
    wait_passes(&daemon, first_sync_budget).await?;
    support::settle(&sim, &daemon, first_sync_budget).await?;
    let first_sync_s = started.elapsed().as_secs_f64();
    let first_sync_requests = sim.request_log().len();
    let cpu1 = daemon.cpu_seconds()?;

    let mirror = Arc::new(Mirror::open(&daemon.db).await?);
    let data_sources = sim.task_data_source_ids();
    let pages_of: Vec<Vec<String>> = data_sources
        .iter()
        .take(sources)
        .map(|ds| {
            sim.pages()
                .into_iter()
                .filter(|pg| &pg.data_source_id == ds && !pg.in_trash)
                .map(|pg| pg.id)
                .collect()
        })
        .collect();
    sim.clear_request_log();
    let start = Instant::now();
    let mut watchers = JoinSet::new();
    for round in 0..p.changes {
        tokio::time::sleep_until(start + p.gap * round as u32).await;
        for (i, pages) in pages_of.iter().enumerate() {
            let id = pages[(round * 7 + 3) % pages.len()].clone();
            let title = format!("Edited in round {round}");
            let t0 = Instant::now();
            sim.set_title(&id, &title)?;
            let mirror = Arc::clone(&mirror);
            watchers.spawn(async move {
                mirror
                    .wait_page(&id, Duration::from_secs(120), |r| r.title == title)
                    .await
                    .map(|t1| (i, t1 - t0))
            });
        }
    }
    let mut delays: Vec<Vec<Duration>> = vec![Vec::new(); sources];
    while let Some(r) = watchers.join_next().await {
        let (i, d) = r??;
        delays[i].push(d);
    }
    support::settle(&sim, &daemon, Duration::from_secs(120)).await?;
    let cpu2 = daemon.cpu_seconds()?;
    let log = sim.request_log();
    let per_source: Vec<SourceFigures> = (0..sources)
        .map(|i| {
            let mine: Vec<_> = log.iter().filter(|r| r.integration == Some(i)).collect();
            SourceFigures {
                name: if sources == 1 {
                    "default".to_owned()
                } else {
                    source_name(i)
                },
                requests: mine.len(),
                requests_per_change: mine.len() as f64 / p.changes.max(1) as f64,
                freshness_ms: Summary::of_durations_ms(&delays[i]),
                rate_limited_429: mine.iter().filter(|r| r.status == 429).count(),
            }
        })
        .collect();
    let all: Vec<Duration> = delays.iter().flatten().copied().collect();
    let memory_after = daemon.memory()?;
    if let Ok(m) = Arc::try_unwrap(mirror) {
        m.close().await;
    }
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(SourcesRun {
        sources,
        pages_per_source: p.pages,
        first_sync_s,
        first_sync_requests,
        freshness_ms: Summary::of_durations_ms(&all),
        requests_per_change: log.len() as f64 / (p.changes * sources).max(1) as f64,
        per_source,
        cpu_first_sync_s: cpu1 - cpu0,
        cpu_workload_s: cpu2 - cpu1,
        memory_after,
    })
}

/// Each integration's subscription, hearing only its own database's events (the one
/// database shared with it).
async fn subscribe(sim: &SimHandle, daemon: &Daemon, sources: usize) -> anyhow::Result<()> {
    if sources == 1 {
        return support::subscribe(sim, daemon).await;
    }
    for (i, db) in sim.task_database_ids().iter().take(sources).enumerate() {
        let url = daemon.url(&format!("/webhooks/notion/{}", source_name(i)));
        sim.subscribe_scoped(&url, Some(WEBHOOK_SECRET), std::slice::from_ref(db))
            .await
            .map_err(|e| anyhow::anyhow!("webhook handshake with {url} failed: {e}"))?;
    }
    Ok(())
}

/// Waits until every source's start-up pass has succeeded.
async fn wait_passes(daemon: &Daemon, timeout: Duration) -> anyhow::Result<()> {
    wait_for(
        "every source's first pass",
        timeout,
        Duration::from_millis(50),
        || async {
            daemon.health().await.is_ok_and(|h| {
                h["sources"].as_array().is_some_and(|s| {
                    s.iter()
                        .all(|s| s["reconcile"]["last_success_at"].is_string())
                })
            })
        },
    )
    .await
}
