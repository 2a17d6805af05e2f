//! The Notion budget: the share of the configured rate the daemon uses while draining a
//! backlog against a sim enforcing that rate, 429s received, and what a 429 storm does.

use std::path::Path;
use std::time::Duration;

use notion_sim::RequestRecord;
use serde::Serialize;

use crate::daemon::{Daemon, DaemonConfig};
use crate::stats::arrival_rate;
use crate::support::{self, RouteCounts, notion_like};

#[derive(Debug, Clone)]
pub struct BudgetParams {
    /// The daemon's `requests_per_second` and the sim's enforced rate.
    pub rate: f64,
    /// The sim's bucket capacity.
    pub sim_burst: u32,
    /// Pages changed at once (each a webhook-driven page sync).
    pub backlog_pages: usize,
    /// Pages changed for the storm phase.
    pub storm_pages: usize,
    /// Consecutive forced 429s and their `Retry-After` (s).
    pub storm_429s: u32,
    pub storm_retry_after_s: u32,
    /// Requests observed after the storm to measure the rate the daemon resumed at.
    pub after_storm_requests: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrainResult {
    pub changes: usize,
    pub requests: RouteCounts,
    pub window_s: f64,
    pub achieved_per_s: f64,
    pub budget_share: f64,
    pub rate_limited_429: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StormResult {
    pub forced_429s: u32,
    pub retry_after_s: u32,
    pub received_429s: usize,
    /// First 429 to the first answered request after the last one.
    pub requests_stopped_s: f64,
    /// Shortest gap from a 429 to the next request reaching the sim (any worker).
    pub min_gap_after_429_s: f64,
    /// Requests that reached the sim within `Retry-After` of a 429 (0: every worker paused).
    pub requests_inside_pause: usize,
    pub every_worker_paused: bool,
    /// Requests after the storm used to measure the rate it resumed at.
    pub after_storm_requests: usize,
    pub after_storm_per_s: f64,
    pub after_storm_share: f64,
    pub daemon_current_rate_after: f64,
    pub daemon_rate_limited_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetResult {
    pub configured_per_s: f64,
    pub sim_burst: u32,
    pub workers: usize,
    pub drain: DrainResult,
    pub storm: StormResult,
}

pub async fn run(bin: &Path, p: &BudgetParams) -> anyhow::Result<BudgetResult> {
    let dir = tempfile::tempdir()?;
    let pages = p.backlog_pages.max(p.storm_pages);
    let sim = support::start_sim(pages, notion_like(p.rate, p.sim_burst)).await?;
    let cfg = DaemonConfig::new(p.rate);
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    support::subscribe(&sim, &daemon).await?;
    daemon.wait_initialized().await?;
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let drain_timeout = Duration::from_secs_f64(p.backlog_pages as f64 / p.rate * 3.0 + 60.0);

    // Drain: every page changed at once; each change is a webhook and a page sync.
    tokio::time::sleep(Duration::from_secs(1)).await; // the sim's bucket refills
    sim.clear_request_log();
    for (i, id) in ids.iter().take(p.backlog_pages).enumerate() {
        sim.set_title(id, &format!("Budget backlog {i}"))?;
    }
    support::settle(&sim, &daemon, drain_timeout).await?;
    let log = sim.request_log();
    let drain = drain_result(&log, p.backlog_pages, p.rate);

    // Storm: a new backlog; a few requests in, Notion answers 429 k times.
    tokio::time::sleep(Duration::from_secs(1)).await;
    sim.clear_request_log();
    for (i, id) in ids.iter().take(p.storm_pages).enumerate() {
        sim.set_title(id, &format!("Storm backlog {i}"))?;
    }
    support::wait_requests(&sim, 4, Duration::from_secs(30)).await?;
    sim.force_errors(429, p.storm_429s, Some(p.storm_retry_after_s));
    // The storm, then enough answered requests to see the rate it resumed at.
    let wanted = 4 + p.storm_429s as usize + p.after_storm_requests;
    support::wait_requests(&sim, wanted, drain_timeout).await?;
    let log = sim.request_log();
    let health = daemon.health().await?;
    let storm = storm_result(&log, p, &health);
    daemon.stop().await?;
    sim.shutdown().await;
    Ok(BudgetResult {
        configured_per_s: p.rate,
        sim_burst: p.sim_burst,
        workers: cfg.workers,
        drain,
        storm,
    })
}

fn drain_result(log: &[RequestRecord], changes: usize, rate: f64) -> DrainResult {
    let arrivals = support::arrivals(log);
    let achieved = arrival_rate(&arrivals).unwrap_or(0.0);
    let first = arrivals.iter().copied().fold(f64::INFINITY, f64::min);
    let last = arrivals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let requests = RouteCounts::of(log);
    DrainResult {
        changes,
        rate_limited_429: requests.rate_limited_429,
        requests,
        window_s: (last - first).max(0.0),
        achieved_per_s: achieved,
        budget_share: achieved / rate,
    }
}

fn storm_result(
    log: &[RequestRecord],
    p: &BudgetParams,
    health: &serde_json::Value,
) -> StormResult {
    let mut log: Vec<&RequestRecord> = log.iter().collect();
    log.sort_by_key(|r| r.elapsed);
    let t = |r: &RequestRecord| r.elapsed.as_secs_f64();
    let retry = f64::from(p.storm_retry_after_s);
    let limited: Vec<f64> = log
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| t(r))
        .collect();
    let first_429 = limited.first().copied();
    let last_429 = limited.last().copied();
    let resumed = last_429.and_then(|l| {
        log.iter()
            .find(|r| t(r) > l && r.status != 429)
            .map(|r| t(r))
    });
    let mut min_gap = f64::INFINITY;
    for &at in &limited {
        if let Some(next) = log.iter().find(|r| t(r) > at) {
            min_gap = min_gap.min(t(next) - at);
        }
    }
    // Requests that arrived while a pause should hold (50 ms slack for timers and clocks).
    let inside = log
        .iter()
        .filter(|r| {
            limited
                .iter()
                .any(|&at| t(r) > at && t(r) < at + retry - 0.05)
        })
        .count();
    let after: Vec<f64> = resumed
        .map(|r| log.iter().map(|x| t(x)).filter(|&x| x >= r).collect())
        .unwrap_or_default();
    let after_rate = arrival_rate(&after).unwrap_or(0.0);
    StormResult {
        forced_429s: p.storm_429s,
        retry_after_s: p.storm_retry_after_s,
        received_429s: limited.len(),
        requests_stopped_s: match (first_429, resumed) {
            (Some(f), Some(r)) => r - f,
            _ => 0.0,
        },
        min_gap_after_429_s: if min_gap.is_finite() { min_gap } else { 0.0 },
        requests_inside_pause: inside,
        every_worker_paused: !limited.is_empty() && inside == 0,
        after_storm_requests: after.len(),
        after_storm_per_s: after_rate,
        after_storm_share: after_rate / p.rate,
        daemon_current_rate_after: health["notion"]["current_rate"].as_f64().unwrap_or(0.0),
        daemon_rate_limited_total: health["notion"]["rate_limited_total"].as_u64().unwrap_or(0),
    }
}
