//! `notion-sync demo`: the real daemon against an in-process notion-sim workspace
//! that keeps being edited like people would (silent body edits and dropped
//! webhooks included), with a live one-screen status (`status.rs`) and a summary a
//! newcomer can read at the end (`summary.rs`). Two task databases are mirrored as two
//! sources through two integrations (each its own token, webhook subscription and
//! budget); one of them meets a 429 storm now and then (`storm.rs`), so the screen shows
//! it paused while the other stays fresh.

mod budget;
mod status;
mod storm;
mod summary;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notion_sim::{RateLimit, SimConfig, SimHandle, WebhookConfig};
use secrecy::SecretString;
use sync_engine::PassKind;
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::{Config, IntegrationSecrets, Secrets};
use crate::telemetry::{self, LogFormat};
use budget::{DAEMON_RATE, SIM_RATE, SOURCES};
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
    /// Tasks in the generated workspace (half in each of its two task databases).
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

/// The token of the simulated workspace's second integration.
const CLIENT_TOKEN: &str = "secret_demo_client_integration_token";

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    // On a terminal the status screen is the output; logs only for warnings.
    let level = if terminal { "warn" } else { "info" };
    telemetry::init_tracing(LogFormat::Pretty, level);
    telemetry::describe_metrics();

    let sim = notion_sim::start(SimConfig {
        seed: args.seed,
        pages: args.pages.div_ceil(2),
        extra_task_databases: 1,
        extra_tokens: vec![CLIENT_TOKEN.to_owned()],
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
    let mut integrations = BTreeMap::new();
    for (name, index) in SOURCES {
        let token = sim
            .integration_token(index)
            .context("the simulated workspace lacks an integration")?;
        integrations.insert(
            name.to_owned(),
            IntegrationSecrets {
                token: Some(SecretString::from(token.to_owned())),
                webhook_secret: None,
            },
        );
    }
    let secrets = Secrets {
        integrations,
        ..Secrets::default()
    };
    let app = Application::build(&config, &secrets).await?;
    let addr = app.local_addr();
    let engine = app.engine().clone();
    let sources = app.sources().clone();
    let slots: Vec<_> = SOURCES
        .iter()
        .filter_map(|(name, _)| app.integration_secret_slot(name))
        .collect();
    let shutdown = CancellationToken::new();
    crate::signals::spawn_handler(shutdown.clone());
    let daemon = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    // Each integration's subscription (only its own database is shared with it) sends
    // the unsigned verification handshake, which the daemon stores as a pending token;
    // the operator's step (set NOTION_WEBHOOK_SECRET_<INTEGRATION>) is done here.
    let databases = sim.task_database_ids();
    for ((name, _), (slot, db)) in SOURCES.iter().zip(slots.iter().zip(&databases)) {
        let token = sim
            .subscribe_scoped(
                &format!("http://{addr}/webhooks/notion/{name}"),
                None,
                std::slice::from_ref(db),
            )
            .await
            .context("subscribing the daemon's webhook endpoint")?;
        slot.set(SecretString::from(token));
    }
    // As the operator's restart with the secret would: no pending token stays in the file.
    engine.store().clear_verification_tokens(None).await?;

    println!(
        "notion-sync demo: {} tasks in two databases of a simulated workspace at {}, mirrored as two sources through two integrations ({}: a 429 storm of {} s every {} s from t={} s); daemon on http://{addr} (/healthz, /metrics); mirror {}",
        args.pages.div_ceil(2) * 2,
        sim.base_url(),
        SOURCES[1].0,
        storm::LENGTH.as_secs(),
        storm::EVERY.as_secs(),
        storm::FIRST.as_secs(),
        db.display()
    );
    if args.db.is_none() {
        println!("(temporary database; pass --db PATH to keep it)");
    }

    let demo_start = sim.now();
    let editing = shutdown.child_token();
    let editor = tokio::spawn(edit_like_people(sim.clone(), args.clone(), editing.clone()));
    let storm_state = Arc::new(storm::StormState::default());
    let storming = tokio::spawn(storm::run(
        sim.clone(),
        SOURCES[1].1,
        storm_state.clone(),
        editing.clone(),
    ));
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let started = tokio::time::Instant::now();
    let Watched {
        initial_done,
        freshness,
        by_source,
    } = watch(
        &sources,
        &sim,
        &storm_state,
        &shutdown,
        deadline,
        terminal,
        demo_start,
    )
    .await;
    editing.cancel();
    editor.await.ok();
    storming.await.ok();
    if !shutdown.is_cancelled() {
        // Scripted end: one last incremental pass per source catches what dropped
        // webhooks missed.
        for engine in sources.all() {
            let pass = engine.reconcile(PassKind::Incremental, &shutdown);
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(15), pass).await {
                tracing::info!(error = %e, source = engine.name(), "final reconcile pass skipped");
            }
        }
    }
    let since = initial_done.map_or(demo_start, |d| d.1);
    let check = MirrorCheck::take(&sources, &sim, since).await;
    let final_status = Snapshot::take(&sources, &sim, &storm_state, check).await;
    shutdown.cancel();
    let result = daemon.await.context("daemon task")?;
    if terminal {
        println!();
    }
    summary::print(&summary::Summary {
        status: &final_status,
        initial_sync: initial_done.map(|(took, _, requests)| (took, requests)),
        freshness: &freshness,
        by_source: &by_source,
        storms: storm_state
            .storms
            .load(std::sync::atomic::Ordering::Relaxed),
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
    /// Each source's own freshness samples, by source name.
    by_source: BTreeMap<String, Freshness>,
}

/// Samples and shows the status until `shutdown` or `deadline`.
async fn watch(
    sources: &sync_engine::Sources,
    sim: &SimHandle,
    storm: &storm::StormState,
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
    let mut by_source: BTreeMap<String, Freshness> = sources
        .all()
        .iter()
        .map(|e| (e.name().to_owned(), Freshness::default()))
        .collect();
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
                let check = MirrorCheck::take(sources, sim, since).await;
                freshness.observe(&check.unsynced);
                let none = Vec::new();
                let unsynced_of = |name: &str| check.unsynced_by_source.get(name).unwrap_or(&none);
                for (name, f) in &mut by_source {
                    f.observe(unsynced_of(name));
                }
                if initial_done.is_none() && check.initial_sync_done() {
                    freshness.start(&check.unsynced);
                    for (name, f) in &mut by_source {
                        f.start(unsynced_of(name));
                    }
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
                let mut status = Snapshot::take(sources, sim, storm, check).await;
                window.push_back((now, status.requests));
                while window.len() > 2 && now - window[0].0 > Duration::from_secs(5) {
                    window.pop_front();
                }
                let (t0, r0) = window[0];
                let span = (now - t0).as_secs_f64();
                status.rate = if span > 0.0 { (status.requests - r0) as f64 / span } else { 0.0 };
                status.print(terminal, started.elapsed(), &freshness, &by_source);
            }
        }
    }
    Watched {
        initial_done,
        freshness,
        by_source,
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
    for ((name, _), ds) in SOURCES.iter().zip(sim.task_data_source_ids()) {
        let upper = name.to_ascii_uppercase();
        set(
            &format!("SOURCES__{upper}__INTEGRATION"),
            (*name).to_owned(),
        );
        set(&format!("SOURCES__{upper}__DATA_SOURCE_ID"), ds);
    }
    set("NOTION__REQUESTS_PER_SECOND", DAEMON_RATE.to_string());
    set("NOTION__TIMEOUT_SECONDS", "10".into());
    // Frequent passes so the reconciler's catches show within a minute.
    set("RECONCILE__SCHEDULE", "*/20 * * * * *".into());
    set("RECONCILE__FULL_SCHEDULE", "0 */10 * * * *".into());
    set("RECONCILE__VISIBILITY_MARGIN_SECONDS", "5".into());
    set("SERVER__SHUTDOWN_GRACE_SECONDS", "5".into());
    Config::load(None, &env).context("demo configuration")
}

/// A person-like stream of edits in both databases: statuses, due dates, titles, bodies
/// (some silent), new tasks, trash; the simulated Notion drops some of their webhooks.
async fn edit_like_people(sim: SimHandle, args: DemoArgs, stop: CancellationToken) {
    if args.edits_per_second <= 0.0 {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / args.edits_per_second);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    let databases = sim.task_data_source_ids();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                n += 1;
                // The edits alternate between the two databases.
                let ds = &databases[(n as usize) % databases.len()];
                sim.random_edits_in(ds, args.seed.wrapping_mul(1_000_003).wrapping_add(n), 1);
            }
        }
    }
}
