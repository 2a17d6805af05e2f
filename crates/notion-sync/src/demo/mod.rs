//! `notion-sync demo`: the real daemon against an in-process notion-sim workspace
//! that keeps being edited like people would (silent body edits and dropped
//! webhooks included), with a live one-screen status (`status.rs`) and a summary a
//! newcomer can read at the end (`summary.rs`).

mod budget;
mod status;
mod summary;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use notion_sim::{RateLimit, SimConfig, SimHandle, WebhookConfig};
use secrecy::SecretString;
use sync_engine::PassKind;
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::{Config, Secrets};
use crate::telemetry::{self, LogFormat};
use budget::{DAEMON_RATE, SIM_RATE};
use status::{Freshness, MirrorCheck, Snapshot};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the daemon serves /webhooks/notion, /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// SQLite file for the mirror (default: a temporary file removed at exit).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Tasks in the generated workspace.
    #[arg(long, default_value_t = 300)]
    pub pages: usize,
    /// Seed of the generated workspace and of the simulated edits.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated edits per second.
    #[arg(long, default_value_t = 0.5)]
    pub edits_per_second: f64,
}

/// Webhooks the simulated Notion drops, so the reconciler has work to show.
const DEMO_DROP_RATE: f64 = 0.1;

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    // On a terminal the status screen is the output; logs only for warnings.
    let level = if terminal { "warn" } else { "info" };
    telemetry::init_tracing(LogFormat::Pretty, level);
    telemetry::describe_metrics();

    let sim = notion_sim::start(SimConfig {
        seed: args.seed,
        pages: args.pages,
        rate_limit: Some(RateLimit {
            per_second: SIM_RATE,
            burst: 3,
        }),
        visibility_delay: Duration::from_secs(2),
        webhook: WebhookConfig {
            drop_rate: DEMO_DROP_RATE,
            ..WebhookConfig::default()
        },
        ..SimConfig::default()
    })
    .await
    .context("starting the simulated Notion workspace")?;

    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| tmp.path().join("notion-sync-demo.db"));
    let config = demo_config(&args, &sim, &db)?;
    let secrets = Secrets {
        notion_token: Some(SecretString::from(sim.token().to_owned())),
        webhook_secret: None,
        slack_webhook_url: None,
        ..Secrets::default()
    };
    let app = Application::build(&config, &secrets).await?;
    let addr = app.local_addr();
    let engine = app.engine().clone();
    let sources = app.sources().clone();
    let secret_slot = app.webhook_secret_slot();
    let shutdown = CancellationToken::new();
    crate::signals::spawn_handler(shutdown.clone());
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Subscribing sends the unsigned verification handshake, which the daemon stores
    // as a pending token; the operator's step (set NOTION_WEBHOOK_SECRET) is done here.
    let token = sim
        .subscribe(&format!("http://{addr}/webhooks/notion"))
        .await
        .context("subscribing the daemon's webhook endpoint")?;
    secret_slot.set(SecretString::from(token));
    // As the operator's restart with the secret would: no pending token stays in the file.
    engine.store().clear_verification_tokens(None).await?;

    println!(
        "notion-sync demo: {} tasks in a simulated workspace at {}; daemon on http://{addr} (/healthz, /metrics); mirror {}",
        args.pages,
        sim.base_url(),
        db.display()
    );
    if args.db.is_none() {
        println!("(temporary database; pass --db PATH to keep it)");
    }

    let demo_start = sim.now();
    let editing = shutdown.child_token();
    let editor = tokio::spawn(edit_like_people(sim.clone(), args.clone(), editing.clone()));
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let started = tokio::time::Instant::now();
    let Watched {
        initial_done,
        freshness,
    } = watch(&sources, &sim, &shutdown, deadline, terminal, demo_start).await;
    editing.cancel();
    editor.await.ok();
    if !shutdown.is_cancelled() {
        // Scripted end: one last incremental pass catches what dropped webhooks missed.
        let pass = engine.reconcile(PassKind::Incremental, &shutdown);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(15), pass).await {
            tracing::info!(error = %e, "final reconcile pass skipped");
        }
    }
    let since = initial_done.map_or(demo_start, |d| d.1);
    let check = MirrorCheck::take(&engine, &sim, since).await;
    let final_status = Snapshot::take(&sources, &sim, check).await;
    shutdown.cancel();
    let result = daemon.await.context("daemon task")?;
    if terminal {
        println!();
    }
    summary::print(&summary::Summary {
        status: &final_status,
        initial_sync: initial_done.map(|(took, _, requests)| (took, requests)),
        freshness: &freshness,
        requests: &sim.request_log(),
        db: &db,
        temporary: args.db.is_none(),
        elapsed: started.elapsed(),
    });
    sim.shutdown().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// What the screen loop learned: when the first sync was done and the freshness samples.
struct Watched {
    /// (time from the start, Notion's clock then, requests by then).
    initial_done: Option<(Duration, chrono::DateTime<chrono::Utc>, usize)>,
    freshness: Freshness,
}

/// Samples and shows the status until `shutdown` or `deadline`.
async fn watch(
    sources: &sync_engine::Sources,
    sim: &SimHandle,
    shutdown: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
    terminal: bool,
    demo_start: chrono::DateTime<chrono::Utc>,
) -> Watched {
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(status::SAMPLE);
    let show_every = Duration::from_secs(if terminal { 1 } else { 5 });
    let mut shown: Option<tokio::time::Instant> = None;
    let mut freshness = Freshness::default();
    // Requests/s over the last few seconds (one-second windows jitter around the budget).
    let mut window: std::collections::VecDeque<(tokio::time::Instant, usize)> = Default::default();
    // When the first sync had read every task and body (changes before it are backlog).
    let mut initial_done: Option<(Duration, chrono::DateTime<chrono::Utc>, usize)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break,
            _ = tick.tick() => {
                let since = initial_done.map_or(demo_start, |d| d.1);
                let check = MirrorCheck::take(sources.first(), sim, since).await;
                freshness.observe(&check.unsynced);
                if initial_done.is_none() && check.initial_sync_done() {
                    freshness.start(&check.unsynced);
                    let requests = sim.request_log().len();
                    initial_done = Some((started.elapsed(), sim.now(), requests));
                    if !terminal {
                        println!(
                            "initial sync done in {} s: {} tasks and their bodies, {requests} requests",
                            started.elapsed().as_secs(),
                            check.sim_pages,
                        );
                    }
                }
                let now = tokio::time::Instant::now();
                if shown.is_some_and(|t| now - t < show_every) {
                    continue;
                }
                shown = Some(now);
                let mut status = Snapshot::take(sources, sim, check).await;
                window.push_back((now, status.requests));
                while window.len() > 2 && now - window[0].0 > Duration::from_secs(5) {
                    window.pop_front();
                }
                let (t0, r0) = window[0];
                let span = (now - t0).as_secs_f64();
                status.rate = if span > 0.0 { (status.requests - r0) as f64 / span } else { 0.0 };
                status.print(terminal, started.elapsed(), &freshness);
            }
        }
    }
    Watched {
        initial_done,
        freshness,
    }
}

fn demo_config(args: &DemoArgs, sim: &SimHandle, db: &std::path::Path) -> anyhow::Result<Config> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(format!("NOTION_SYNC_{k}"), v);
    };
    set("SERVER__LISTEN", args.listen.clone());
    set("STORE__URL", format!("sqlite://{}", db.display()));
    set("NOTION__API_URL", sim.base_url());
    set("NOTION__DATA_SOURCE_ID", sim.data_source_id());
    set("NOTION__REQUESTS_PER_SECOND", DAEMON_RATE.to_string());
    set("NOTION__TIMEOUT_SECONDS", "10".into());
    // Frequent passes so the reconciler's catches show within a minute.
    set("RECONCILE__SCHEDULE", "*/20 * * * * *".into());
    set("RECONCILE__FULL_SCHEDULE", "0 */10 * * * *".into());
    set("RECONCILE__VISIBILITY_MARGIN_SECONDS", "5".into());
    set("SERVER__SHUTDOWN_GRACE_SECONDS", "5".into());
    Config::load(None, &env).context("demo configuration")
}

/// A person-like stream of edits: statuses, due dates, titles, bodies (some silent),
/// new tasks, trash; the simulated Notion drops some of their webhooks.
async fn edit_like_people(sim: SimHandle, args: DemoArgs, stop: CancellationToken) {
    if args.edits_per_second <= 0.0 {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / args.edits_per_second);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                n += 1;
                sim.random_edits(args.seed.wrapping_mul(1_000_003).wrapping_add(n), 1);
            }
        }
    }
}
