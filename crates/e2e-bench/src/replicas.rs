//! PostgreSQL and replicas: webhook ingest (deliveries/s from closed-loop senders, ack
//! latency at a fixed open-loop rate) on SQLite with one daemon, on PostgreSQL with one
//! replica and with three (deliveries spread over them as a load balancer does), same
//! run; then three replicas draining a first sync through one integration's budget,
//! shared in the database vs split between the replicas: the combined rate the simulator
//! saw, its busiest 10 s, and its 429s. The PostgreSQL server is the one
//! `NOTION_SYNC_BENCH_POSTGRES_URL` names, else a durable throwaway one from
//! `.ci/postgres` (fsync on, as SQLite's FULL commits are).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::daemon::{Daemon, DaemonConfig, loopback_client};
use crate::ingest::{closed_loop, open_loop};
use crate::stats::{Summary, rate};
use crate::support::{self, Deliveries, Mirror, notion_like};

#[derive(Debug, Clone)]
pub struct ReplicasParams {
    pub pages: usize,
    pub senders: usize,
    pub warmup: Duration,
    pub closed_loop: Duration,
    pub open_rate: u32,
    pub open_loop: Duration,
    /// Pages of the first sync the replicas drain (one body read each).
    pub budget_pages: usize,
    /// The integration's rate, which the simulator enforces too.
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestRow {
    pub backend: &'static str,
    pub replicas: usize,
    pub deliveries_per_s: f64,
    pub deliveries_failed: u64,
    pub closed_loop_latency_ms: Summary,
    pub open_loop_target_per_s: u32,
    pub open_loop_failed: u64,
    pub ack_latency_ms: Summary,
    /// Every acknowledged delivery is in the event log afterwards.
    pub events_acknowledged: u64,
    pub events_stored: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetRow {
    /// `shared` or `split` (`replicas.budget`).
    pub mode: &'static str,
    pub replicas: usize,
    pub rate_limit: f64,
    pub pages: usize,
    pub drained_s: f64,
    pub requests: usize,
    /// Requests per second from the first to the last request.
    pub achieved_per_s: f64,
    /// The most requests in any 10 s window (the limit allows `rate × 10`).
    pub max_10s_window: usize,
    pub rate_limited_429: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicasResult {
    pub postgres_server: String,
    pub ingest: Vec<IngestRow>,
    pub budget: Vec<BudgetRow>,
}

/// A PostgreSQL server for the scenario; stops it when dropped if it started it.
struct Server {
    url: String,
    scratch: Option<String>,
}

impl Server {
    fn get() -> anyhow::Result<Server> {
        if let Ok(url) = std::env::var("NOTION_SYNC_BENCH_POSTGRES_URL") {
            return Ok(Server { url, scratch: None });
        }
        let script = repo_root().join(".ci/postgres");
        let out = std::process::Command::new(&script)
            .arg("start")
            .env("PG_DURABLE", "1")
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "{} start failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(str::to_owned)
        };
        Ok(Server {
            url: var("NOTION_SYNC_TEST_POSTGRES_URL").context("no server URL from .ci/postgres")?,
            scratch: var("PG_SCRATCH"),
        })
    }

    async fn database(&self, name: &str) -> anyhow::Result<String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("bench_{name}_{}_{nanos:09}", std::process::id());
        Ok(pg_scratch::create_database(&self.url, &name).await?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(scratch) = &self.scratch {
            let _ = std::process::Command::new(repo_root().join(".ci/postgres"))
                .arg("stop")
                .env("PG_SCRATCH", scratch)
                .status();
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `n` daemons on `store_url` (`None`: each its own SQLite file), each in its own
/// directory under `dir`.
async fn start_replicas(
    bin: &Path,
    dir: &Path,
    sim: &notion_sim::SimHandle,
    n: usize,
    base: &DaemonConfig,
) -> anyhow::Result<Vec<Daemon>> {
    let mut out = Vec::new();
    for i in 0..n {
        let sub = dir.join(format!("replica-{i}"));
        std::fs::create_dir_all(&sub)?;
        out.push(Daemon::start(bin, &sub, None, sim, base).await?);
    }
    Ok(out)
}

async fn ingest_row(
    bin: &Path,
    p: &ReplicasParams,
    backend: &'static str,
    replicas: usize,
    store_url: Option<String>,
) -> anyhow::Result<IngestRow> {
    let dir = tempfile::tempdir()?;
    let sim = support::start_sim(p.pages, notion_like(3.0, 10)).await?;
    let cfg = DaemonConfig {
        store_url,
        ..DaemonConfig::new(3.0)
    };
    let daemons = start_replicas(bin, dir.path(), &sim, replicas, &cfg).await?;
    for d in &daemons {
        d.wait_initialized().await?;
    }
    let urls = Arc::new(daemons.iter().map(Daemon::webhook_url).collect::<Vec<_>>());
    let factory = Arc::new(Deliveries::for_sim(&sim));
    let http = loopback_client(p.senders * 2);
    let counter = Arc::new(AtomicU64::new(0));
    let warm = closed_loop(&http, &urls, &factory, &counter, p.senders, p.warmup).await;
    let closed = closed_loop(&http, &urls, &factory, &counter, p.senders, p.closed_loop).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = open_loop(&http, &urls, &factory, &counter, p.open_rate, p.open_loop).await;
    let mirror = Mirror::open_url(&daemons[0].store_url).await?;
    let events_stored = mirror.event_count().await?;
    mirror.close().await;
    for d in daemons {
        d.stop().await?;
    }
    sim.shutdown().await;
    Ok(IngestRow {
        backend,
        replicas,
        deliveries_per_s: rate(closed.ok as f64, closed.elapsed),
        deliveries_failed: closed.failed,
        closed_loop_latency_ms: Summary::of_durations_ms(&closed.latency),
        open_loop_target_per_s: p.open_rate,
        open_loop_failed: open.failed,
        ack_latency_ms: Summary::of_durations_ms(&open.latency),
        events_acknowledged: warm.ok + closed.ok + (open.sent - open.failed),
        events_stored,
    })
}

async fn budget_row(
    bin: &Path,
    p: &ReplicasParams,
    mode: &'static str,
    store_url: String,
) -> anyhow::Result<BudgetRow> {
    const REPLICAS: usize = 3;
    let dir = tempfile::tempdir()?;
    let sim = support::start_sim(p.budget_pages, notion_like(p.rate, 10)).await?;
    let cfg = DaemonConfig {
        store_url: Some(store_url),
        on_start: true,
        extra: format!("[replicas]\nleader_lease_seconds = 3\nbudget = \"{mode}\"\n"),
        ..DaemonConfig::new(p.rate)
    };
    let began = tokio::time::Instant::now();
    let daemons = start_replicas(bin, dir.path(), &sim, REPLICAS, &cfg).await?;
    // Drained: every page mirrored with its body, nothing queued or running.
    let deadline = began + Duration::from_secs(600);
    loop {
        let h = daemons[0].health().await?;
        // (Only the leader knows its pass ended; the store shows the rows and the queue.)
        let done = h["mirror"]["pages"].as_u64() == Some(p.budget_pages as u64)
            && h["queue"]["queued"] == 0
            && h["queue"]["running"] == 0
            && sim.request_log().len() >= p.budget_pages;
        if done {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the replicas did not drain the first sync within 600 s: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_s = began.elapsed().as_secs_f64();
    for d in daemons {
        d.stop().await?;
    }
    let log = sim.request_log();
    let mut at: Vec<i64> = log.iter().map(|r| r.at.timestamp_millis()).collect();
    at.sort_unstable();
    let (mut max, mut start) = (0, 0);
    for end in 0..at.len() {
        while at[end] - at[start] >= 10_000 {
            start += 1;
        }
        max = max.max(end - start + 1);
    }
    let span = match (at.first(), at.last()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e3,
        _ => 0.0,
    };
    sim.shutdown().await;
    Ok(BudgetRow {
        mode,
        replicas: REPLICAS,
        rate_limit: p.rate,
        pages: p.budget_pages,
        drained_s,
        requests: log.len(),
        achieved_per_s: if span > 0.0 {
            log.len() as f64 / span
        } else {
            0.0
        },
        max_10s_window: max,
        rate_limited_429: log.iter().filter(|r| matches!(r.status, 429 | 529)).count(),
    })
}

pub async fn run(bin: &Path, p: &ReplicasParams) -> anyhow::Result<ReplicasResult> {
    let server = Server::get()?;
    let mut ingest = vec![
        ingest_row(bin, p, "sqlite", 1, None)
            .await
            .context("SQLite × 1")?,
    ];
    for n in [1, 3] {
        let url = server.database(&format!("ingest{n}")).await?;
        ingest.push(
            ingest_row(bin, p, "postgres", n, Some(url))
                .await
                .with_context(|| format!("PostgreSQL × {n}"))?,
        );
    }
    let mut budget = Vec::new();
    for mode in ["shared", "split"] {
        let url = server.database(mode).await?;
        budget.push(
            budget_row(bin, p, mode, url)
                .await
                .with_context(|| format!("budget {mode}"))?,
        );
    }
    Ok(ReplicasResult {
        postgres_server: sync_store::StoreConfig {
            url: server.url.clone(),
            ..sync_store::StoreConfig::default()
        }
        .display_url(),
        ingest,
        budget,
    })
}
