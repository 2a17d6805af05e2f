//! `notion-sync demo`: the real daemon against an in-process notion-sim workspace
//! that keeps being edited like people would (silent body edits and dropped
//! webhooks included), with a live one-screen status.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use notion_sim::{RateLimit, SimConfig, SimHandle, WebhookConfig};
use secrecy::SecretString;
use sync_engine::{Engine, PassKind};
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::{Config, Secrets};
use crate::telemetry::{self, LogFormat};

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
/// The simulated workspace enforces Notion's 3 requests/s; the daemon paces a little below.
const SIM_RATE: f64 = 3.0;
const DAEMON_RATE: f64 = 2.8;

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
    };
    let app = Application::build(&config, &secrets).await?;
    let addr = app.local_addr();
    let engine = app.engine().clone();
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
    engine.store().clear_verification_tokens().await?;

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
    let mut tick = tokio::time::interval(Duration::from_secs(if terminal { 1 } else { 5 }));
    // Requests/s over the last few seconds (one-second windows jitter around the budget).
    let mut window: std::collections::VecDeque<(tokio::time::Instant, usize)> = Default::default();
    let started = tokio::time::Instant::now();
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
                let mut status = Snapshot::take(&engine, &sim, demo_start).await;
                let now = tokio::time::Instant::now();
                window.push_back((now, status.requests));
                while window.len() > 2 && now - window[0].0 > Duration::from_secs(5) {
                    window.pop_front();
                }
                let (t0, r0) = window[0];
                let span = (now - t0).as_secs_f64();
                status.rate = if span > 0.0 { (status.requests - r0) as f64 / span } else { 0.0 };
                status.print(terminal, started.elapsed());
            }
        }
    }
    editing.cancel();
    editor.await.ok();
    if !shutdown.is_cancelled() {
        // Scripted end: one last incremental pass catches what dropped webhooks missed.
        let pass = engine.reconcile(PassKind::Incremental, &shutdown);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(15), pass).await {
            tracing::info!(error = %e, "final reconcile pass skipped");
        }
    }
    let final_status = Snapshot::take(&engine, &sim, demo_start).await;
    shutdown.cancel();
    let result = daemon.await.context("daemon task")?;
    println!(
        "demo finished: {}/{} tasks mirrored, {} identical to Notion (bodies arrive at the rate limit), {} marked overdue, {} Notion requests, {} rate-limited",
        final_status.present,
        final_status.sim_pages,
        final_status.in_sync,
        final_status.overdue_marked,
        final_status.requests,
        final_status.rate_limited
    );
    sim.shutdown().await;
    result?;
    Ok(ExitCode::SUCCESS)
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

/// One status screen's worth of numbers.
struct Snapshot {
    queued: u64,
    running: u64,
    dead: u64,
    requests: usize,
    rate: f64,
    rate_limited: u64,
    mirror_pages: u64,
    sim_pages: usize,
    /// Live tasks with a mirror row.
    present: usize,
    /// Live tasks whose row equals Notion's (title, status, body).
    in_sync: usize,
    oldest_unsynced_s: Option<i64>,
    overdue_marked: usize,
    reconcile: String,
    health: String,
}

impl Snapshot {
    /// Freshness counts from the later of the change and the demo's start (the
    /// initial sync of an existing workspace is a backlog, not a stale change).
    async fn take(
        engine: &Engine,
        sim: &SimHandle,
        demo_start: chrono::DateTime<chrono::Utc>,
    ) -> Snapshot {
        let store = engine.store();
        let stats = store.queue_stats().await.ok();
        let requests = sim.request_log().len();
        let pages = sim.pages();
        let now = sim.now();
        let mut in_sync = 0;
        let mut present = 0;
        let mut oldest: Option<i64> = None;
        let live: Vec<_> = pages.iter().filter(|p| !p.in_trash && p.shared).collect();
        for p in &live {
            let Ok(id) = notion_api::NotionId::parse(&p.id) else {
                continue;
            };
            let row = store
                .get_page(&id)
                .await
                .ok()
                .flatten()
                .filter(|r| !r.in_trash);
            present += usize::from(row.is_some());
            let synced = row.is_some_and(|row| {
                row.title == p.title
                    && row.status == p.status
                    && row.body_markdown.as_deref() == Some(p.markdown.as_str())
            });
            if synced {
                in_sync += 1;
            } else {
                let age = (now - p.last_edited_time.max(demo_start)).num_seconds();
                oldest = Some(oldest.map_or(age, |o: i64| o.max(age)));
            }
        }
        let rec = engine.status().reconcile();
        let reconcile = match (&rec.running, &rec.last_summary) {
            (Some(p), _) => format!("{} pass running: {} pages seen", p.kind, p.pages_seen),
            (None, Some(s)) => format!(
                "last {} pass: {} pages, {} bodies, {} overdue marked",
                s.kind, s.pages_seen, s.bodies_queued, s.overdue_marked
            ),
            (None, None) => "no pass yet".into(),
        };
        let health = crate::health::collect(engine, true, true).await;
        Snapshot {
            queued: stats
                .as_ref()
                .map_or(0, |s| s.queued_interactive + s.queued_bulk),
            running: stats.as_ref().map_or(0, |s| s.running),
            dead: stats.as_ref().map_or(0, |s| s.dead),
            requests,
            rate: 0.0,
            rate_limited: engine.client().stats().rate_limited_total,
            mirror_pages: store.page_count().await.unwrap_or(0),
            sim_pages: live.len(),
            present,
            in_sync,
            oldest_unsynced_s: oldest,
            overdue_marked: store.transitions(None).await.map(|t| t.len()).unwrap_or(0),
            reconcile,
            health: format!("{:?}", health.status).to_lowercase(),
        }
    }

    fn print(&self, terminal: bool, elapsed: Duration) {
        let freshness = match self.oldest_unsynced_s {
            None => "all changes mirrored".to_owned(),
            Some(s) => format!("oldest unmirrored change {s} s old"),
        };
        if terminal {
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "\x1b[2J\x1b[H notion-sync demo — {:>4} s   health: {}   (Ctrl-C to stop)\n\n\
                 \x20 queue         {} queued, {} running, {} dead\n\
                 \x20 Notion        {:.1} req/s of {DAEMON_RATE:.1} budget, {} requests, {} rate-limited\n\
                 \x20 mirror        {} pages; {}/{} tasks identical to Notion\n\
                 \x20 freshness     {}\n\
                 \x20 overdue       {} tasks marked\n\
                 \x20 reconciler    {}\n",
                elapsed.as_secs(),
                self.health,
                self.queued,
                self.running,
                self.dead,
                self.rate,
                self.requests,
                self.rate_limited,
                self.mirror_pages,
                self.in_sync,
                self.sim_pages,
                freshness,
                self.overdue_marked,
                self.reconcile
            );
            let _ = out.flush();
        } else {
            println!(
                "t={}s health={} queue={}/{}/{} req_rate={:.1}/s requests={} rate_limited={} mirror={} in_sync={}/{} overdue_marked={} freshness=\"{}\" reconcile=\"{}\"",
                elapsed.as_secs(),
                self.health,
                self.queued,
                self.running,
                self.dead,
                self.rate,
                self.requests,
                self.rate_limited,
                self.mirror_pages,
                self.in_sync,
                self.sim_pages,
                self.overdue_marked,
                freshness,
                self.reconcile
            );
        }
    }
}
