//! A bulk property edit (N tasks set at once, N signed deliveries within ~2 s) at
//! Notion's rate, with bulk reads by query on and off in the same run: requests and time
//! until the mirror is exact; during the burst, an unrelated single edit's freshness and
//! an overdue write's delay; the idle single edit; and what the next incremental pass
//! spends re-checking bodies read while their minute was open.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::time::Instant;

use crate::daemon::{Daemon, DaemonConfig};
use crate::stats::Summary;
use crate::support::{self, Mirror, RouteCounts, notion_like};

#[derive(Debug, Clone)]
pub struct BulkParams {
    /// Tasks the bulk edit changes.
    pub edited: usize,
    pub rate: f64,
    /// Over how long the edit's deliveries arrive.
    pub spread: Duration,
    /// How late an edit becomes visible to the sim's queries (the daemon assumes 15 s).
    pub visibility_delay: Duration,
    pub idle_samples: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BulkMode {
    pub bulk_reads: bool,
    pub edited: usize,
    /// From the last edit of the burst until every edited row matches Notion.
    pub exact_after_last_edit_s: f64,
    /// Requests from the first edit until the mirror was exact.
    pub requests_until_exact: RouteCounts,
    /// Requests from the first edit until nothing was queued or running any more.
    pub requests_until_settled: RouteCounts,
    /// `/healthz` `bulk_reads.last` after the burst: jobs taken, answered by query, sent
    /// back to their own GET, queries.
    pub last_burst: serde_json::Value,
    /// A title edit of another task made in the middle of the burst.
    pub single_edit_during_burst_ms: f64,
    /// A task made overdue in the middle of the burst: until Notion shows it marked.
    pub overdue_write_during_burst_ms: f64,
    /// Markdown reads the next incremental pass queued (bodies read while their edit
    /// minute was open are re-checked once).
    pub next_pass_body_rechecks: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BulkResult {
    pub configured_per_s: f64,
    pub visibility_delay_ms: f64,
    pub spread_ms: f64,
    pub on: BulkMode,
    pub off: BulkMode,
    /// Single title edits on the idle daemon with bulk reads on.
    pub idle_single_edit_ms: Summary,
    pub idle_requests_per_edit: f64,
}

pub async fn run(bin: &Path, p: &BulkParams) -> anyhow::Result<BulkResult> {
    let (on, idle) = run_mode(bin, p, true).await.context("bulk reads on")?;
    let (off, _) = run_mode(bin, p, false).await.context("bulk reads off")?;
    let (idle_ms, idle_requests) = idle.expect("the bulk-reads run measures idle edits");
    Ok(BulkResult {
        configured_per_s: p.rate,
        visibility_delay_ms: support::ms(p.visibility_delay),
        spread_ms: support::ms(p.spread),
        on,
        off,
        idle_single_edit_ms: idle_ms,
        idle_requests_per_edit: idle_requests,
    })
}

type Idle = Option<(Summary, f64)>;

/// One mode on a fresh workspace: a fast first sync, then the daemon at Notion's rate.
async fn run_mode(
    bin: &Path,
    p: &BulkParams,
    bulk_reads: bool,
) -> anyhow::Result<(BulkMode, Idle)> {
    let dir = tempfile::tempdir()?;
    let sim = support::start_sim(p.edited + 30, None).await?;
    let mut pages = sim.pages();
    pages.retain(|pg| !sim.other_page_ids().contains(&pg.id) && !pg.in_trash);
    anyhow::ensure!(pages.len() >= p.edited + 8, "the workspace is too small");
    let (edited, rest) = pages.split_at(p.edited);
    let (single, overdue) = (rest[0].id.clone(), rest[1].id.clone());
    // Every edit of the burst changes its page; the overdue candidate is open and due
    // later, until the burst makes it due in the past.
    for page in edited {
        sim.set_property(&page.id, "Blocked", serde_json::json!({"checkbox": false}))?;
    }
    sim.set_due(&overdue, Some("2030-01-15"))?;
    sim.set_status(&overdue, "To Do")?;
    // The first sync, unthrottled (bodies cost a request each), with overdue tasks
    // marked, so the burst's own reads find none to mark.
    let fast = DaemonConfig {
        on_start: true,
        mark_overdue: true,
        ..DaemonConfig::new(100.0)
    };
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &fast).await?;
    daemon.wait_first_pass(Duration::from_secs(120)).await?;
    daemon.wait_queue_empty(Duration::from_secs(300)).await?;
    daemon.stop().await?;

    // The burst starts in a minute of its own: bodies fetched in the minute of an edit
    // are re-checked by rule, which a real bulk edit, long after the first sync, does
    // not meet.
    let now = sim.now();
    let into_minute = now.timestamp().rem_euclid(60) as u64;
    tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    sim.set_rate_limit(notion_like(p.rate, 10));
    sim.set_visibility_delay(p.visibility_delay);
    let cfg = DaemonConfig {
        mark_overdue: true,
        bulk_read_threshold: if bulk_reads { 40 } else { 0 },
        ..DaemonConfig::new(p.rate)
    };
    let daemon = Daemon::start(bin, dir.path(), None, &sim, &cfg).await?;
    support::subscribe(&sim, &daemon).await?;
    daemon.wait_initialized().await?;
    let mirror = Mirror::open(&daemon.db).await?;
    sim.clear_request_log();

    let timeout = Duration::from_secs_f64(p.edited as f64 / p.rate * 3.0 + 120.0);
    let started = Instant::now();
    let gap = p.spread / p.edited.max(1) as u32;
    let burst = async {
        let mut during = None;
        for (i, page) in edited.iter().enumerate() {
            sim.set_property(&page.id, "Blocked", serde_json::json!({"checkbox": true}))?;
            if i == edited.len() / 2 {
                sim.set_title(&single, "Renamed during the bulk edit")?;
                sim.set_due(&overdue, Some("2020-01-15"))?;
                during = Some(Instant::now());
            }
            tokio::time::sleep_until(started + gap * (i as u32 + 1)).await;
        }
        anyhow::Ok((during.expect("the burst has a middle"), Instant::now()))
    };
    // Each outcome watched from the start, so each is timed on its own.
    let single_done = async {
        mirror
            .wait_page(&single, timeout, |r| {
                r.title == "Renamed during the bulk edit"
            })
            .await
    };
    let overdue_done = wait_for_overdue(&sim, &overdue, timeout);
    let exact = wait_exact(&mirror, edited, timeout);
    let (times, single_done, overdue_done, exact) =
        tokio::join!(burst, single_done, overdue_done, exact);
    let ((during, last_edit), single_done, overdue_done, exact) =
        (times?, single_done?, overdue_done?, exact?);
    let requests_until_exact = RouteCounts::of(&sim.request_log());
    support::settle(&sim, &daemon, timeout).await?;
    let requests_until_settled = RouteCounts::of(&sim.request_log());
    let last_burst = daemon.health().await?["bulk_reads"]["last"].clone();

    let idle = if bulk_reads {
        Some(idle_edits(&sim, &mirror, &rest[2..], p.idle_samples).await?)
    } else {
        None
    };
    mirror.close().await;
    daemon.stop().await?;
    let next_pass_body_rechecks = next_pass_rechecks(bin, dir.path(), &sim).await?;
    sim.shutdown().await;
    Ok((
        BulkMode {
            bulk_reads,
            edited: edited.len(),
            exact_after_last_edit_s: exact.saturating_duration_since(last_edit).as_secs_f64(),
            requests_until_exact,
            requests_until_settled,
            last_burst,
            single_edit_during_burst_ms: support::ms(single_done.saturating_duration_since(during)),
            overdue_write_during_burst_ms: support::ms(
                overdue_done.saturating_duration_since(during),
            ),
            next_pass_body_rechecks,
        },
        idle,
    ))
}

fn blocked(row: &sync_store::PageRow) -> bool {
    serde_json::from_str::<serde_json::Value>(&row.properties)
        .ok()
        .and_then(|v| v["Blocked"]["checkbox"].as_bool())
        == Some(true)
}

/// Polls the mirror every 50 ms until every edited task shows the edit.
async fn wait_exact(
    mirror: &Mirror,
    edited: &[notion_sim::SimPage],
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = true;
        for page in edited {
            if !mirror.page(&page.id).await?.is_some_and(|r| blocked(&r)) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the bulk edit was not mirrored within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_overdue(
    sim: &notion_sim::SimHandle,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if sim
            .page(id)
            .is_some_and(|p| p.status.as_deref() == Some("Overdue"))
        {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the overdue task was not marked within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Title edits one second apart on the idle daemon: freshness and requests per edit.
async fn idle_edits(
    sim: &notion_sim::SimHandle,
    mirror: &Mirror,
    pages: &[notion_sim::SimPage],
    n: usize,
) -> anyhow::Result<(Summary, f64)> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    sim.clear_request_log();
    let mut delays = Vec::new();
    for (i, page) in pages.iter().take(n).enumerate() {
        let title = format!("Idle edit {i}");
        let t0 = Instant::now();
        sim.set_title(&page.id, &title)?;
        let t1 = mirror
            .wait_page(&page.id, Duration::from_secs(30), |r| r.title == title)
            .await?;
        delays.push(t1 - t0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let requests = RouteCounts::of(&sim.request_log()).total;
    Ok((
        Summary::of_durations_ms(&delays),
        requests as f64 / delays.len().max(1) as f64,
    ))
}

/// Runs `notion-sync reconcile` (incremental) once Notion's clock has closed the edit's
/// minute, unthrottled, and counts the body reads it made.
async fn next_pass_rechecks(
    bin: &Path,
    dir: &Path,
    sim: &notion_sim::SimHandle,
) -> anyhow::Result<usize> {
    sim.advance(Duration::from_secs(90));
    sim.set_rate_limit(None);
    let config = dir.join("notion-sync.toml");
    let text = std::fs::read_to_string(&config)?;
    let fast: String = text
        .lines()
        .map(|l| {
            if l.starts_with("requests_per_second") {
                "requests_per_second = 100.000".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let fast_config = dir.join("reconcile.toml");
    std::fs::write(&fast_config, fast + "\n")?;
    sim.clear_request_log();
    let out = tokio::process::Command::new(bin)
        .args(["reconcile", "--config"])
        .arg(&fast_config)
        .env_clear()
        .env("NOTION_TOKEN", sim.token())
        .env("NOTION_WEBHOOK_SECRET", crate::daemon::WEBHOOK_SECRET)
        .output()
        .await
        .context("running notion-sync reconcile")?;
    anyhow::ensure!(
        out.status.success(),
        "notion-sync reconcile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(RouteCounts::of(&sim.request_log()).markdown)
}
