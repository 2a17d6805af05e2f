//! The command line: parses arguments, loads configuration and runs one command.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use sync_engine::{PassKind, WorkerPool};
use sync_store::{JobFilter, JobState, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::app::{Application, open_store};
use crate::config::{Config, Secrets};
use crate::telemetry::{self, LogFormat};
use crate::wiring::build_sources;

#[derive(Debug, Parser)]
#[command(
    name = "notion-sync",
    version,
    about = "Keeps a SQLite mirror of a Notion task database fresh and marks overdue tasks"
)]
pub struct Cli {
    /// Configuration file (TOML). Defaults apply when omitted.
    #[arg(long, global = true, env = "NOTION_SYNC_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP server, workers, reconciler (applies migrations first).
    Serve,
    /// Validate config, database, token, data source and schema; exit 1 on any failure.
    Check,
    /// Run one reconcile pass, drain the work it created, print a summary.
    Reconcile {
        /// A full scan (finds deletions, re-checks bodies) instead of an incremental pass.
        #[arg(long)]
        full: bool,
        /// Only this source (default: every source, one after another).
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
    /// Inspect and repair the job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Webhook subscription helpers.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Run the whole daemon against a built-in simulated workspace (no token needed).
    Demo(crate::demo::DemoArgs),
    /// Exit 0 iff /healthz says ok (for container health checks).
    Healthcheck {
        /// Health URL; defaults to http://127.0.0.1:<server.listen port>/healthz.
        url: Option<String>,
        /// Also accept "degraded".
        #[arg(long)]
        allow_degraded: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs (newest first).
    List {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this source's jobs.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
    /// Queue one job again now (dead or waiting for a retry).
    Retry { id: i64 },
    /// Queue every dead job again.
    RetryDead,
    /// Delete every dead job.
    PurgeDead,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    Queued,
    Running,
    Dead,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Show the verification tokens received, with when and from where each came.
    Tokens {
        /// Delete every pending token (after verifying, or to start over).
        #[arg(long)]
        clear: bool,
    },
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn process_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Loads config and secrets, or explains in one line what is wrong.
pub fn load(cli_config: Option<&std::path::Path>) -> anyhow::Result<(Config, Secrets)> {
    let env = process_env();
    let config = Config::load(cli_config, &env)?;
    let names: Vec<String> = config.integrations().into_iter().map(|i| i.name).collect();
    let secrets = Secrets::for_integrations(&env, &names)?;
    Ok((config, secrets))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => {
            let (config, secrets) = load(cli.config.as_deref())?;
            telemetry::init_tracing(config.log.format, &config.log.level);
            telemetry::describe_metrics();
            let app = Application::build(&config, &secrets).await?;
            let shutdown = CancellationToken::new();
            crate::signals::spawn_handler(shutdown.clone());
            app.run_until_stopped(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => crate::check::run(cli.config.as_deref()).await,
        Command::Reconcile { full, source } => {
            let (config, secrets) = load(cli.config.as_deref())?;
            quiet_logs();
            reconcile(&config, &secrets, full, source.as_deref()).await
        }
        Command::Jobs { command } => {
            let (config, _) = load(cli.config.as_deref())?;
            quiet_logs();
            jobs(&config, command).await
        }
        Command::Webhook {
            command: WebhookCommand::Tokens { clear },
        } => {
            let (config, _) = load(cli.config.as_deref())?;
            quiet_logs();
            webhook_tokens(&config, clear).await
        }
        Command::Migrate => {
            let (config, _) = load(cli.config.as_deref())?;
            quiet_logs();
            let store = open_store(&config, Arc::new(SystemClock)).await?;
            println!("migrations applied: {}", store.path().display());
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Healthcheck {
            url,
            allow_degraded,
        } => healthcheck(cli.config.as_deref(), url, allow_degraded).await,
    }
}

/// One-shot commands print their results on stdout; only warnings go to stderr.
fn quiet_logs() {
    telemetry::init_tracing(LogFormat::Pretty, "warn");
}

async fn reconcile(
    config: &Config,
    secrets: &Secrets,
    full: bool,
    only: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(config, Arc::new(SystemClock)).await?;
    let (sources, _notifier) = build_sources(config, secrets, store.clone())?;
    let engines: Vec<sync_engine::Engine> = match only {
        Some(name) => match sources.get(name) {
            Some(e) => vec![e.clone()],
            None => {
                store.close().await;
                anyhow::bail!(
                    "no source is called {name:?}; configured: {}",
                    source_names(&sources)
                );
            }
        },
        None => sources.all().to_vec(),
    };
    let cancel = CancellationToken::new();
    crate::signals::spawn_handler(cancel.clone());
    let mut failed = false;
    for engine in engines {
        let named = (sources.all().len() > 1).then(|| engine.name().to_owned());
        failed |= reconcile_source(engine, full, &cancel, named.as_deref()).await?;
    }
    store.close().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn source_names(sources: &sync_engine::Sources) -> String {
    sources
        .all()
        .iter()
        .map(|e| e.name().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One source's pass and the work it queued; true if a job ended dead.
async fn reconcile_source(
    engine: sync_engine::Engine,
    full: bool,
    cancel: &CancellationToken,
    named: Option<&str>,
) -> anyhow::Result<bool> {
    let store = engine.store().clone();
    let kind = if full {
        PassKind::Full
    } else {
        PassKind::Incremental
    };
    let progress =
        crate::progress::Progress::start(engine.clone(), std::io::stderr().is_terminal());
    engine.initialize().await.with_context(|| {
        format!(
            "checking the token and data source of source {}",
            engine.name()
        )
    })?;
    // Workers drain the body fetches while the pass queues them.
    let pool = WorkerPool::new(engine.clone());
    let work_stop = CancellationToken::new();
    let workers = tokio::spawn(pool.clone().run(work_stop.clone()));
    let summary = engine.reconcile(kind, cancel).await;
    work_stop.cancel();
    workers.await.context("worker pool")?;
    let summary = summary.context("reconcile pass")?;
    let report = pool.run_until_empty(true).await?;
    progress.finish().await;
    let stats = store.source_queue_stats().await?;
    let prefix = named.map(|n| format!("source {n}: ")).unwrap_or_default();
    println!(
        "{prefix}{} pass{}: {} pages seen, {} updated, {} bodies queued, {} trashed, {} marked overdue, {} query requests; queue after drain: {} queued, {} dead",
        summary.kind,
        if summary.resumed { " (resumed)" } else { "" },
        summary.pages_seen,
        summary.pages_updated,
        summary.bodies_queued,
        summary.pages_trashed,
        summary.overdue_marked,
        summary.query_requests,
        stats.queued_interactive + stats.queued_bulk,
        stats.dead,
    );
    if let Some(w) = &summary.watermark {
        println!("{prefix}watermark: {w}");
    }
    Ok(report.dead > 0 || stats.dead > 0)
}

async fn jobs(config: &Config, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config, Arc::new(SystemClock)).await?;
    match command {
        JobsCommand::List {
            state,
            limit,
            source,
        } => {
            let state = state.map(|s| match s {
                StateArg::Queued => JobState::Queued,
                StateArg::Running => JobState::Running,
                StateArg::Dead => JobState::Dead,
            });
            let rows = store
                .list_jobs(JobFilter {
                    state,
                    limit,
                    source: source.clone(),
                    ..JobFilter::default()
                })
                .await?;
            println!(
                "{:>8}  {:<12}  {:<8}  {:<11}  {:<11}  {:>4}  {:<24}  {:<46}  LAST ERROR",
                "ID", "SOURCE", "STATE", "LANE", "KIND", "TRY", "RUN AT", "KEY"
            );
            for r in &rows {
                println!(
                    "{:>8}  {:<12}  {:<8}  {:<11}  {:<11}  {:>4}  {:<24}  {:<46}  {}",
                    r.id,
                    r.source,
                    format!("{:?}", r.state).to_lowercase(),
                    r.lane.as_str(),
                    r.kind,
                    r.attempts,
                    r.run_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.key,
                    r.last_error.as_deref().unwrap_or("")
                );
            }
            let stats = match &source {
                Some(name) => store.for_source(name).source_queue_stats().await?,
                None => store.queue_stats().await?,
            };
            println!(
                "-- {} shown; queued {} (interactive {}, bulk {}), running {}, dead {}",
                rows.len(),
                stats.queued_interactive + stats.queued_bulk,
                stats.queued_interactive,
                stats.queued_bulk,
                stats.running,
                stats.dead
            );
        }
        JobsCommand::Retry { id } => {
            if store.retry_job(id).await? {
                println!("job {id} queued again");
            } else {
                store.close().await;
                anyhow::bail!("job {id} not found (or it is running)");
            }
        }
        JobsCommand::RetryDead => {
            println!("{} dead job(s) queued again", store.retry_dead().await?)
        }
        JobsCommand::PurgeDead => println!("{} dead job(s) deleted", store.purge_dead().await?),
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Tokens that arrived within this of one another are reported as "near" each other.
const NEAR: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

async fn webhook_tokens(config: &Config, clear: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(config, Arc::new(SystemClock)).await?;
    if clear {
        let n = store.clear_verification_tokens(None).await?;
        println!("{n} pending verification token(s) deleted.");
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    let tokens = store.verification_tokens().await?;
    store.close().await;
    if tokens.is_empty() {
        println!(
            "No verification token received yet. Create the webhook subscription in Notion (integration settings → Webhooks) pointing at https://<your host>/webhooks/notion (with several integrations: /webhooks/notion/<integration>), then run this again. With NOTION_WEBHOOK_SECRET set, handshakes are refused unless server.accept_handshakes = true."
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("Verification tokens received (oldest first):");
    for t in &tokens {
        let near = tokens
            .iter()
            .filter(|o| o.token != t.token && (o.received_at - t.received_at).abs() <= NEAR)
            .count();
        println!(
            "  {}  integration {}, received {} from {}{}  ({near} other(s) within {} min)",
            t.token,
            t.integration,
            t.received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            t.origin.peer.as_deref().unwrap_or("?"),
            t.origin
                .forwarded_for
                .as_deref()
                .map(|f| format!(" (X-Forwarded-For: {f})"))
                .unwrap_or_default(),
            NEAR.num_minutes(),
        );
    }
    println!(
        "Anyone who can reach the webhook URL can send a handshake, so a token here is not proof that Notion sent it. Paste a token into Notion's \"Verify subscription\" dialog: Notion accepts only the one it sent. Set NOTION_WEBHOOK_SECRET (NOTION_WEBHOOK_SECRET_<INTEGRATION> for a named integration) to the token Notion accepted, restart, then pending tokens are deleted."
    );
    if tokens.len() > 1 {
        println!(
            "{} tokens arrived; Notion sends one per subscription (and one per \"resend\"). If you did not expect this many, someone else is sending handshakes: `notion-sync webhook tokens --clear`, then resend the token from Notion.",
            tokens.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn healthcheck(
    config_path: Option<&std::path::Path>,
    url: Option<String>,
    allow_degraded: bool,
) -> anyhow::Result<ExitCode> {
    let url = match url {
        Some(u) => u,
        None => {
            let (config, _) = load(config_path)?;
            let addr = config.server.listen;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}/healthz", addr.port())
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("unhealthy: {url}: {}", e.without_url());
            return Ok(ExitCode::FAILURE);
        }
    };
    let code = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let status = body
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("unknown");
    let healthy = status == "ok" || (allow_degraded && status == "degraded");
    if healthy {
        println!("{status}");
        Ok(ExitCode::SUCCESS)
    } else {
        let reasons = body
            .get("reasons")
            .and_then(|r| r.as_array())
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        eprintln!("unhealthy: {status} (HTTP {code}) {reasons}");
        Ok(ExitCode::FAILURE)
    }
}
