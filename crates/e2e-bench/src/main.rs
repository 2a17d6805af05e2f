#![doc = include_str!("../README.md")]

mod baseline;
mod budget;
mod bulk;
mod cost;
mod daemon;
mod footprint;
mod freshness;
mod ingest;
mod reconciler;
mod replicas;
mod report;
mod sources;
mod stats;
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::report::{Machine, Report};
use crate::support::Workload;

#[derive(Debug, Parser)]
#[command(
    name = "e2e-bench",
    about = "Runs the real notion-sync daemon against notion-sim and a polling-script baseline; prints a table and JSON"
)]
struct Args {
    /// Shorter windows and smaller workloads (about a minute instead of about five).
    #[arg(long)]
    quick: bool,
    /// Write the JSON report to PATH instead of printing it after the table.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Run only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Scenario>,
    /// Do not run `cargo build --release -p notion-sync` first (when started by cargo).
    #[arg(long)]
    no_build: bool,
    /// Ingest: post an event type the daemon records without making a job, to measure
    /// the webhook path without worker activity.
    #[arg(long)]
    ingest_noop_events: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ingest,
    Budget,
    Bulk,
    Cost,
    Freshness,
    Reconciler,
    Baseline,
    Footprint,
    Sources,
    Replicas,
}

/// Every size and duration of a run.
struct Plan {
    pages: usize,
    ingest: ingest::IngestParams,
    budget: budget::BudgetParams,
    bulk: bulk::BulkParams,
    cost: cost::CostParams,
    freshness: freshness::FreshnessParams,
    reconciler: reconciler::ReconcilerParams,
    baseline: baseline::BaselineParams,
    footprint: footprint::FootprintParams,
    sources: sources::SourcesParams,
    replicas: replicas::ReplicasParams,
}

impl Plan {
    fn new(quick: bool, noop_events: bool) -> Plan {
        let pages = if quick { 20 } else { 50 };
        let workload = if quick {
            Workload {
                changes: 4,
                gap: Duration::from_millis(500),
            }
        } else {
            Workload {
                changes: 10,
                gap: Duration::from_secs(2),
            }
        };
        let pick = |full: usize, q: usize| if quick { q } else { full };
        let secs = |full: f64, q: f64| Duration::from_secs_f64(if quick { q } else { full });
        Plan {
            pages,
            ingest: ingest::IngestParams {
                pages,
                senders: 64,
                warmup: secs(1.0, 0.3),
                closed_loop: secs(8.0, 2.0),
                open_rate: 500,
                open_loop: secs(8.0, 2.0),
                noop_events,
            },
            budget: budget::BudgetParams {
                rate: if quick { 10.0 } else { 3.0 },
                sim_burst: if quick { 5 } else { 3 },
                backlog_pages: pick(40, 30),
                storm_pages: pick(30, 20),
                storm_429s: if quick { 2 } else { 3 },
                storm_retry_after_s: if quick { 1 } else { 2 },
                after_storm_requests: 6,
            },
            bulk: bulk::BulkParams {
                edited: pick(500, 150),
                rate: 3.0,
                spread: secs(2.0, 1.0),
                visibility_delay: Duration::from_secs(2),
                idle_samples: pick(5, 3),
            },
            cost: cost::CostParams {
                pages,
                samples: pick(5, 1),
            },
            freshness: freshness::FreshnessParams {
                pages,
                rate: 3.0,
                backlog_samples: pick(5, 2),
                workload: workload.clone(),
                burst: 100,
            },
            reconciler: reconciler::ReconcilerParams {
                pages,
                rate: 10.0,
                every_s: if quick { 3 } else { 10 },
                samples: pick(3, 2),
                body_changes: pick(3, 1),
            },
            baseline: baseline::BaselineParams {
                pages,
                rate: 3.0,
                sleep: Duration::from_millis(350),
                workload,
            },
            footprint: footprint::FootprintParams {
                mirror_pages: pick(100_000, 20_000),
                sim_pages: pages,
                changes: 10,
            },
            sources: sources::SourcesParams {
                sources: pick(10, 3),
                pages: pick(500, 50),
                rate: 3.0,
                changes: pick(10, 4),
                gap: secs(2.0, 1.0),
            },
            replicas: replicas::ReplicasParams {
                pages,
                senders: 64,
                warmup: secs(1.0, 0.3),
                closed_loop: secs(8.0, 2.0),
                open_rate: 500,
                open_loop: secs(8.0, 2.0),
                budget_pages: pick(150, 40),
                rate: 3.0,
            },
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.no_build {
        daemon::build_daemon_if_under_cargo()?;
    }
    let bin = daemon::daemon_binary()?;
    if bin
        .parent()
        .and_then(std::path::Path::file_name)
        .is_none_or(|d| d != "release")
    {
        eprintln!(
            "warning: not a release build ({}): the figures will not be representative; use `cargo run --release -p e2e-bench`",
            bin.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(run_scenarios(&args, &bin))?;
    println!("{}", report.table());
    let json = serde_json::to_string_pretty(&report)?;
    match &args.json {
        Some(path) => {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("JSON written to {}", path.display());
        }
        None => println!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_scenarios(args: &Args, bin: &std::path::Path) -> anyhow::Result<Report> {
    let plan = Plan::new(args.quick, args.ingest_noop_events);
    let wanted = |s: Scenario| args.only.is_empty() || args.only.contains(&s);
    let started = Instant::now();
    let mut report = Report {
        mode: if args.quick { "quick" } else { "full" },
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_s: 0.0,
        machine: Machine::detect(),
        ingest: Vec::new(),
        budget: None,
        cost: None,
        freshness: None,
        reconciler: None,
        footprint: None,
        baseline: None,
        bulk: None,
        sources: None,
        replicas: None,
        targets: Vec::new(),
    };
    eprintln!(
        "e2e-bench ({} run, {} pages, daemon {})",
        report.mode,
        plan.pages,
        bin.display()
    );
    let step = |name: &str| {
        eprintln!("[{:>5.1} s] {name}", started.elapsed().as_secs_f64());
    };
    if wanted(Scenario::Ingest) {
        for sync in ["FULL", "NORMAL"] {
            step(&format!("webhook ingest, synchronous = {sync}"));
            report.ingest.push(
                ingest::run(bin, sync, &plan.ingest)
                    .await
                    .with_context(|| format!("ingest at {sync}"))?,
            );
        }
    }
    if wanted(Scenario::Budget) {
        step("Notion budget and 429 storm");
        report.budget = Some(budget::run(bin, &plan.budget).await.context("budget")?);
    }
    if wanted(Scenario::Bulk) {
        step("bulk property edit at Notion's rate, bulk reads on and off");
        report.bulk = Some(bulk::run(bin, &plan.bulk).await.context("bulk edit")?);
    }
    if wanted(Scenario::Cost) {
        step("requests per synced change (webhooks)");
        report.cost = Some(
            cost::run(bin, &plan.cost)
                .await
                .context("requests per change")?,
        );
    }
    if wanted(Scenario::Freshness) {
        step("freshness under backlog and idle, idle footprint");
        report.freshness = Some(
            freshness::run(bin, &plan.freshness)
                .await
                .context("freshness")?,
        );
    }
    if wanted(Scenario::Reconciler) {
        step("silent changes through the reconciler");
        report.reconciler = Some(
            reconciler::run(bin, &plan.reconciler)
                .await
                .context("reconciler")?,
        );
    }
    if wanted(Scenario::Sources) {
        step(&format!(
            "{} sources × {} pages on one daemon, beside one source",
            plan.sources.sources, plan.sources.pages
        ));
        report.sources = Some(
            sources::run(bin, &plan.sources)
                .await
                .context("several sources")?,
        );
    }
    if wanted(Scenario::Replicas) {
        step(
            "PostgreSQL and replicas: ingest on SQLite × 1, PostgreSQL × 1 and × 3; three replicas' shared vs split budget",
        );
        report.replicas = Some(
            replicas::run(bin, &plan.replicas)
                .await
                .context("replicas")?,
        );
    }
    // The baseline sleeps 350 ms between requests and the footprint's mirror population
    // is CPU and disk work: they overlap, and no daemon measurement runs meanwhile.
    let mut prepared = None;
    match (wanted(Scenario::Baseline), wanted(Scenario::Footprint)) {
        (true, true) => {
            step(&format!(
                "baseline: polling script with 350 ms sleeps (meanwhile: writing a {}-page mirror)",
                plan.footprint.mirror_pages
            ));
            let (b, f) = tokio::join!(
                baseline::run(&plan.baseline),
                footprint::prepare(&plan.footprint)
            );
            report.baseline = Some(b.context("baseline")?);
            prepared = Some(f.context("writing the large mirror")?);
        }
        (true, false) => {
            step("baseline: polling script with 350 ms sleeps");
            report.baseline = Some(baseline::run(&plan.baseline).await.context("baseline")?);
        }
        (false, true) => {
            step(&format!(
                "writing a {}-page mirror",
                plan.footprint.mirror_pages
            ));
            prepared = Some(
                footprint::prepare(&plan.footprint)
                    .await
                    .context("writing the large mirror")?,
            );
        }
        (false, false) => {}
    }
    if let Some(prepared) = prepared {
        step(&format!(
            "footprint with {} mirrored pages",
            plan.footprint.mirror_pages
        ));
        report.footprint = Some(
            footprint::measure(bin, &plan.footprint, prepared)
                .await
                .context("footprint")?,
        );
    }
    report.duration_s = started.elapsed().as_secs_f64();
    report.machine.loadavg_end = report::loadavg();
    step("done");
    report.check_targets();
    Ok(report)
}
