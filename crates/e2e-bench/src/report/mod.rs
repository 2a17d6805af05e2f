//! The results of a run: the JSON document, the human table and the target checks.

use serde::Serialize;

use crate::baseline::BaselineResult;
use crate::budget::BudgetResult;
use crate::bulk::BulkResult;
use crate::cost::CostResult;
use crate::footprint::FootprintResult;
use crate::freshness::FreshnessResult;
use crate::ingest::IngestResult;
use crate::reconciler::ReconcilerResult;
use crate::replicas::ReplicasResult;
use crate::sources::SourcesResult;
use crate::stats::{Summary, ratio};

mod bulk;
mod format;
mod replicas;
mod sources;

use bulk::{bulk_rows, bulk_targets};
pub use format::TargetCheck;
use format::{f0, f1, lat, pct, secs, times, yes};
use replicas::{replicas_rows, replicas_targets};
use sources::{sources_rows, sources_targets};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub git_commit: Option<String>,
    /// Tracked files modified in the working tree the daemon was built from (the shared
    /// tree may hold other engineers' uncommitted work).
    pub git_modified_files: Vec<String>,
    /// `/proc/loadavg` when the run started and ended (other work on the machine).
    pub loadavg_start: String,
    pub loadavg_end: String,
    /// 4 KiB write + fdatasync in the temp directory, 200 times: the disk under FULL.
    pub fsync_ms: Summary,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let git_modified_files = std::process::Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|l| l.get(3..).unwrap_or(l).to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Machine {
            git_modified_files,
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_mib,
            kernel,
            git_commit,
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
            fsync_ms: fsync_probe().unwrap_or_default(),
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Latency of a 4 KiB append + `fdatasync` in a temporary directory, 200 times.
fn fsync_probe() -> std::io::Result<Summary> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let mut f = std::fs::File::create(dir.path().join("probe"))?;
    let block = [0x5au8; 4096];
    let mut samples = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = std::time::Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        samples.push(t.elapsed());
    }
    Ok(Summary::of_durations_ms(&samples))
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub command: String,
    pub started_at: String,
    pub duration_s: f64,
    pub machine: Machine,
    pub ingest: Vec<IngestResult>,
    pub budget: Option<BudgetResult>,
    pub cost: Option<CostResult>,
    pub freshness: Option<FreshnessResult>,
    pub reconciler: Option<ReconcilerResult>,
    pub footprint: Option<FootprintResult>,
    pub baseline: Option<BaselineResult>,
    pub bulk: Option<BulkResult>,
    pub sources: Option<SourcesResult>,
    pub replicas: Option<ReplicasResult>,
    pub targets: Vec<TargetCheck>,
}

impl Report {
    /// Checks every target the issue sets against what this run measured.
    pub fn check_targets(&mut self) {
        let mut t = Vec::new();
        if let Some(full) = self
            .ingest
            .iter()
            .find(|r| r.synchronous == "FULL" && !r.noop_events)
        {
            t.push(TargetCheck {
                target: "≥ 5,000 deliveries/s ingest at FULL (64 senders)".into(),
                measured: format!(
                    "{:.0}/s ({:.0} per daemon CPU-second; the daemon got {:.2} cores, other work {:.2})",
                    full.deliveries_per_s,
                    full.deliveries_per_daemon_cpu_s,
                    full.daemon_cores,
                    full.other_cores
                ),
                met: full.deliveries_per_s >= 5000.0,
            });
            t.push(TargetCheck {
                target: format!(
                    "ack p99 ≤ 10 ms at {}/s (FULL)",
                    full.open_loop_target_per_s
                ),
                measured: format!("p99 {:.1} ms", full.ack_latency_ms.p99),
                met: full.ack_latency_ms.p99 <= 10.0 && full.open_loop_failed == 0,
            });
        }
        if let Some(b) = &self.budget {
            t.push(TargetCheck {
                target: "≥ 95 % of the budget used with 0 429s".into(),
                measured: format!(
                    "{} of {} req/s, {} 429s",
                    pct(b.drain.budget_share),
                    b.configured_per_s,
                    b.drain.rate_limited_429
                ),
                met: b.drain.budget_share >= 0.95 && b.drain.rate_limited_429 == 0,
            });
        }
        if let Some(f) = &self.freshness {
            let b = &f.one_page_direct;
            t.push(TargetCheck {
                target: format!(
                    "≤ 2 page fetches for {} deliveries to one page",
                    b.deliveries_acknowledged
                ),
                measured: format!(
                    "{} page fetches (with the aggregated Notion event: {})",
                    b.page_fetches, f.one_page_sim.page_fetches
                ),
                met: b.page_fetches <= 2 && b.mirror_current,
            });
        }
        if let Some(f) = &self.freshness {
            t.push(TargetCheck {
                target: "freshness p50 ≤ 1 s idle (webhook → mirror)".into(),
                measured: format!("p50 {:.0} ms", f.idle.freshness_ms.p50),
                met: f.idle.freshness_ms.p50 <= 1000.0,
            });
            t.push(TargetCheck {
                target: "RSS ≤ 40 MB idle".into(),
                measured: format!("{:.1} MiB", f.memory_idle.rss_mib),
                met: f.memory_idle.rss_mib <= 40.0,
            });
        }
        if let Some(b) = &self.bulk {
            t.extend(bulk_targets(b));
        }
        if let Some(s) = &self.sources {
            t.extend(sources_targets(s));
        }
        if let Some(r) = &self.replicas {
            t.extend(replicas_targets(r));
        }
        // `--quick` writes a smaller mirror: no verdict on the 100,000-page target.
        if let Some(fp) = self
            .footprint
            .as_ref()
            .filter(|f| f.mirror_pages >= 100_000)
        {
            let rss = fp.memory_idle.rss_mib.max(fp.memory_after_syncs.rss_mib);
            t.push(TargetCheck {
                target: format!("RSS ≤ 150 MB with {} mirrored pages", fp.mirror_pages),
                measured: format!("{rss:.1} MiB"),
                met: rss <= 150.0,
            });
        }
        self.targets = t;
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 5]> = Vec::new();
        let section = |rows: &mut Vec<[String; 5]>, name: &str| {
            rows.push([
                format!("## {name}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        };
        let row = |rows: &mut Vec<[String; 5]>, m: String, d: String, b: String, r: String| {
            rows.push([m, d, b, r, String::new()]);
        };
        let base = self.baseline.as_ref();

        section(&mut rows, "Webhook ingest");
        for r in &self.ingest {
            row(
                &mut rows,
                format!(
                    "deliveries/s, {} senders, {}{}",
                    r.senders,
                    r.synchronous,
                    if r.noop_events {
                        " (no-job events)"
                    } else {
                        ""
                    }
                ),
                format!(
                    "{} ({:.0} per daemon CPU-s; {} ok, {} failed; event log {} of {} acked; CPU daemon {:.2} + bench {:.2} + others {:.2} cores)",
                    f0(r.deliveries_per_s),
                    r.deliveries_per_daemon_cpu_s,
                    r.deliveries_ok,
                    r.deliveries_failed,
                    r.events_stored,
                    r.events_acknowledged,
                    r.daemon_cores,
                    r.bench_cores,
                    r.other_cores
                ),
                "-".into(),
                "-".into(),
            );
            row(
                &mut rows,
                format!(
                    "ack ms p50/p99/max at {}/s, {}",
                    r.open_loop_target_per_s, r.synchronous
                ),
                format!(
                    "{} ({} failed; in-daemon p99 ≤ {} ms, {} ≤ 10 ms)",
                    lat(&r.ack_latency_ms),
                    r.open_loop_failed,
                    r.daemon_side_p99_le_ms
                        .map_or_else(|| "?".to_owned(), |v| format!("{v}")),
                    r.daemon_side_share_le_10ms
                        .map_or_else(|| "?".to_owned(), |v| format!("{:.2} %", v * 100.0)),
                ),
                "-".into(),
                "-".into(),
            );
        }

        if let Some(b) = &self.budget {
            section(&mut rows, "Notion budget");
            row(
                &mut rows,
                format!(
                    "share of {} req/s used draining {} changes",
                    b.configured_per_s, b.drain.changes
                ),
                format!(
                    "{} ({:.2} req/s)",
                    pct(b.drain.budget_share),
                    b.drain.achieved_per_s
                ),
                base.map_or("-".into(), |x| {
                    format!("{} ({:.2} req/s)", pct(x.budget_share), x.achieved_per_s)
                }),
                "-".into(),
            );
            row(
                &mut rows,
                "429s received while draining".into(),
                b.drain.rate_limited_429.to_string(),
                base.map_or("-".into(), |x| x.rate_limited_429.to_string()),
                "-".into(),
            );
            let s = &b.storm;
            row(
                &mut rows,
                format!(
                    "429 storm ({}x, Retry-After {} s): requests stopped",
                    s.forced_429s, s.retry_after_s
                ),
                format!(
                    "{:.2} s, every worker paused: {}",
                    s.requests_stopped_s,
                    yes(s.every_worker_paused)
                ),
                "-".into(),
                "-".into(),
            );
            row(
                &mut rows,
                "  rate after the storm (share of configured)".into(),
                format!(
                    "{:.2} req/s ({})",
                    s.after_storm_per_s,
                    pct(s.after_storm_share)
                ),
                "-".into(),
                "-".into(),
            );
        }

        if self.cost.is_some() || self.reconciler.is_some() || self.freshness.is_some() {
            section(&mut rows, "Requests per synced change");
        }
        let base_rpc = base.map(|x| x.requests_per_change);
        if let Some(c) = &self.cost {
            let case = |rows: &mut Vec<[String; 5]>, name: &str, k: &crate::cost::CostCase| {
                row(
                    rows,
                    name.to_owned(),
                    format!("{:.2} ({})", k.per_change, k.requests.breakdown()),
                    "-".into(),
                    "-".into(),
                );
            };
            case(&mut rows, "property change via webhook", &c.property_change);
            case(
                &mut rows,
                "body change via webhook, Markdown endpoint",
                &c.body_change_markdown,
            );
            case(
                &mut rows,
                "body change via webhook, block children",
                &c.body_change_blocks,
            );
        }
        if let Some(f) = &self.freshness {
            for (name, b) in [
                ("signed deliveries posted for one page", &f.one_page_direct),
                ("edits of one page in Notion (deliveries)", &f.one_page_sim),
            ] {
                row(
                    &mut rows,
                    format!("{} {name}: page fetches", b.deliveries_acknowledged),
                    format!(
                        "{} at +{:?} ms ({})",
                        b.page_fetches,
                        b.page_fetch_offsets_ms,
                        b.requests.breakdown()
                    ),
                    "-".into(),
                    "-".into(),
                );
            }
        }
        if let Some(r) = &self.reconciler {
            row(
                &mut rows,
                format!(
                    "silent change via reconciler ({} prop + {} body, `{}`)",
                    r.silent_property_changes, r.silent_body_changes, r.schedule
                ),
                format!(
                    "{:.2} ({}; {} passes)",
                    r.requests_per_change,
                    r.requests.breakdown(),
                    r.passes_seen
                ),
                "-".into(),
                "-".into(),
            );
        }
        if let Some(f) = &self.freshness {
            row(
                &mut rows,
                format!(
                    "workload: {} title edits, one per {:.1} s",
                    f.idle.workload.changes,
                    f.idle.workload.gap.as_secs_f64()
                ),
                format!(
                    "{:.2} ({})",
                    f.idle.requests_per_change,
                    f.idle.requests.breakdown()
                ),
                base.map_or("-".into(), |x| {
                    format!("{:.1} ({})", x.requests_per_change, x.requests.breakdown())
                }),
                times(base_rpc.and_then(|b| ratio(b, f.idle.requests_per_change))),
            );
        }
        if let Some(x) = base {
            row(
                &mut rows,
                format!("  baseline: requests per run ({} pages)", x.pages),
                "-".into(),
                format!(
                    "{} (run {:.1} s)",
                    x.requests_per_run, x.run_duration_s.mean
                ),
                "-".into(),
            );
        }

        if self.freshness.is_some() || self.reconciler.is_some() {
            section(&mut rows, "Freshness (edit in Notion → row in the mirror)");
        }
        if let Some(f) = &self.freshness {
            row(
                &mut rows,
                "webhook, idle: p50 / p99".into(),
                secs(&f.idle.freshness_ms),
                base.map_or("-".into(), |x| secs(&x.freshness_ms)),
                times(base.and_then(|x| ratio(x.freshness_ms.p50, f.idle.freshness_ms.p50))),
            );
            let backlog = f.backlog_queued.iter().min().copied().unwrap_or(0);
            row(
                &mut rows,
                format!("webhook, under backlog (≥ {backlog} bulk jobs queued): p50 / p99"),
                secs(&f.under_backlog_ms),
                "-".into(),
                "-".into(),
            );
        }
        if let Some(r) = &self.reconciler {
            row(
                &mut rows,
                format!("silent edit, reconciler `{}`: p50 / max", r.schedule),
                format!(
                    "{:.2} / {:.2} s",
                    r.silent_edit_to_mirror_ms.p50 / 1e3,
                    r.silent_edit_to_mirror_ms.max / 1e3
                ),
                "-".into(),
                "-".into(),
            );
        }

        section(&mut rows, "Footprint (daemon process)");
        if let Some(f) = &self.freshness {
            row(
                &mut rows,
                format!("RSS idle, {} pages mirrored (HWM)", f.pages),
                format!(
                    "{} MiB ({} MiB)",
                    f1(f.memory_idle.rss_mib),
                    f1(f.memory_idle.hwm_mib)
                ),
                "-".into(),
                "-".into(),
            );
            row(
                &mut rows,
                "start-up to ready, empty database".into(),
                format!("{:.0} ms", f.startup_empty_ms),
                "-".into(),
                "-".into(),
            );
        }
        if let Some(fp) = &self.footprint {
            row(
                &mut rows,
                format!(
                    "RSS with {} pages: idle / after {} syncs",
                    fp.mirror_pages, fp.changes
                ),
                format!(
                    "{} / {} MiB (HWM {})",
                    f1(fp.memory_idle.rss_mib),
                    f1(fp.memory_after_syncs.rss_mib),
                    f1(fp.memory_after_syncs.hwm_mib)
                ),
                "-".into(),
                "-".into(),
            );
            row(
                &mut rows,
                format!(
                    "start-up to ready, {} pages ({:.0} MiB file)",
                    fp.mirror_pages, fp.db_file_mib
                ),
                format!("{:.0} ms", fp.startup_ms),
                "-".into(),
                "-".into(),
            );
        }
        for r in &self.ingest {
            row(
                &mut rows,
                format!("peak RSS (HWM) after ingest, {}", r.synchronous),
                format!("{} MiB", f1(r.memory_after.hwm_mib)),
                "-".into(),
                "-".into(),
            );
        }

        if let Some(b) = &self.bulk {
            bulk_rows(&mut rows, b);
        }
        if let Some(s) = &self.sources {
            sources_rows(&mut rows, s);
        }
        if let Some(r) = &self.replicas {
            replicas_rows(&mut rows, r);
        }

        let header = [
            "metric".to_owned(),
            "notion-sync".to_owned(),
            "baseline script".to_owned(),
            "baseline/daemon".to_owned(),
            String::new(),
        ];
        let m = &self.machine;
        let mut out = format!(
            "e2e-bench {} run, {:.0} s, commit {}{}: {} x {}, {} MiB RAM, load {} → {}, fsync p50/p99 {:.2}/{:.2} ms\n\n",
            self.mode,
            self.duration_s,
            m.git_commit.as_deref().unwrap_or("?"),
            if m.git_modified_files.is_empty() {
                String::new()
            } else {
                format!(" + {} modified files", m.git_modified_files.len())
            },
            m.nproc,
            m.cpu_model,
            m.mem_total_mib,
            m.loadavg_start,
            m.loadavg_end,
            m.fsync_ms.p50,
            m.fsync_ms.p99
        );
        out.push_str(&render(&header, &rows));
        if !self.targets.is_empty() {
            out.push_str("\nTargets\n");
            for t in &self.targets {
                out.push_str(&format!(
                    "  [{}] {} — measured {}\n",
                    if t.met { "met" } else { "MISSED" },
                    t.target,
                    t.measured
                ));
            }
        }
        out
    }
}

fn render(header: &[String; 5], rows: &[[String; 5]]) -> String {
    // Markdown-compatible: sections become bold rows.
    let rows: Vec<[String; 4]> = std::iter::once(header)
        .chain(rows.iter())
        .map(|r| match r[0].strip_prefix("## ") {
            Some(name) => [
                format!("**{name}**"),
                String::new(),
                String::new(),
                String::new(),
            ],
            None => [r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()],
        })
        .collect();
    let mut width = [0usize; 4];
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |r: &[String; 4]| -> String {
        let mut s = String::from("|");
        for (w, cell) in width.iter().zip(r) {
            s.push(' ');
            s.push_str(cell);
            s.push_str(&" ".repeat(w - cell.chars().count()));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut out = line(&rows[0]);
    out.push('|');
    for w in width {
        out.push_str(&"-".repeat(w + 2));
        out.push('|');
    }
    out.push('\n');
    for r in &rows[1..] {
        out.push_str(&line(r));
    }
    out
}
