//! Start-up and shutdown: `Application::build` opens the store, takes the instance lock,
//! builds the sources (`wiring.rs`), takes over what a previous instance or a renamed
//! source left, and binds the listener; `run_until_stopped` runs HTTP, each source's
//! workers and scheduler, and the notifier until the shutdown token fires, then stops
//! them in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use sync_engine::{Engine, NotifierTask, Sources, WorkerPool};
use sync_store::{Clock, Store, StoreConfig, SystemClock};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secrets};
use crate::http::router;
use crate::listener::ConnectionLimits;
use crate::replica::Replica;
use crate::state::{AppState, Endpoint, SecretSlot};
use crate::wiring::build_sources;

/// Opens (creating if needed) the store (a SQLite file or PostgreSQL) and applies
/// migrations.
pub async fn open_store(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Store> {
    open_store_with(store_config(config), clock).await
}

async fn open_store_with(
    store_config: StoreConfig,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Store> {
    // Never the URL itself: a PostgreSQL URL holds the password.
    let shown = store_config.display_url();
    Store::open(store_config, clock)
        .await
        .with_context(|| format!("opening the store at {shown}"))
}

/// Adjusts store settings derived from the config (tests and benchmarks).
pub type StoreTweak = Arc<dyn Fn(&mut StoreConfig) + Send + Sync>;

/// What tests and benchmarks may change beyond the configuration file.
#[derive(Clone)]
pub struct BuildOptions {
    /// The clock the store and engine read (a settable one in tests).
    pub clock: Arc<dyn Clock>,
    /// Adjusts the store settings after they are derived from the config (for
    /// example a tiny `max_page_count` to simulate a full disk).
    pub store: Option<StoreTweak>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            store: None,
        }
    }
}

/// The store settings, as configured.
pub fn store_config(config: &Config) -> StoreConfig {
    config.store.clone()
}

/// The HTTP drain gets at least this long, even when jobs used the whole grace period.
const MIN_HTTP_DRAIN: std::time::Duration = std::time::Duration::from_millis(250);

/// How often `serve` checks that the store still takes writes (health says "failing"
/// when it does not, even if no webhook arrives).
const STORE_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Worker names and overdue-intent claimants of the daemon start with this; a new daemon
/// (holding the instance lock) returns jobs its dead predecessor held to the queue, and
/// takes over the overdue writes it left unfinished, at once.
pub const SERVE_WORKER_PREFIX: &str = "serve:";

/// The daemon, built and bound but not yet running.
pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: AppState,
    limits: ConnectionLimits,
    notifier_task: Option<NotifierTask>,
    /// Held while the daemon lives: one `serve` per SQLite file (none on PostgreSQL,
    /// which replicas share).
    instance_lock: Option<InstanceLock>,
    /// This replica's heartbeat and leader lease.
    replica: Arc<Replica>,
    /// `server.drain_seconds`.
    drain: std::time::Duration,
    /// `serve:<pid>:<random>`: names the workers and the overdue intents of this instance.
    instance: String,
}

/// The database file itself, opened to hold the one-instance lock on it. The lock
/// (`flock`) is on the file, not its name: a symlink, a second path or a hard link to
/// the same database meets the same lock. SQLite's own locks (`fcntl`) are separate.
/// The file must stay open until the store is closed (closing another descriptor of
/// the file would drop SQLite's locks of this process).
struct InstanceLock {
    file: std::fs::File,
    canonical: std::path::PathBuf,
}

/// Opens the SQLite file and takes the one-instance lock on it.
fn take_instance_lock(db: &std::path::Path) -> anyhow::Result<InstanceLock> {
    let lock = InstanceLock::open(db)?;
    lock.try_lock(db)?;
    Ok(lock)
}

impl InstanceLock {
    fn open(db: &std::path::Path) -> anyhow::Result<InstanceLock> {
        let canonical = std::fs::canonicalize(db)
            .with_context(|| format!("resolving the database path {}", db.display()))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .open(&canonical)
            .with_context(|| format!("opening {} for the instance lock", canonical.display()))?;
        Ok(InstanceLock { file, canonical })
    }

    /// Takes the exclusive lock, or says who holds it.
    fn try_lock(&self, db: &std::path::Path) -> anyhow::Result<()> {
        match self.file.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another notion-sync serve is running on {} ({}); SQLite has one writer: run one instance per database file",
                db.display(),
                self.canonical.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", self.canonical.display()))
            }
        }
    }
}

impl Application {
    pub async fn build(config: &Config, secrets: &Secrets) -> anyhow::Result<Application> {
        Self::build_with(config, secrets, BuildOptions::default()).await
    }

    /// As `build`, with test hooks (clock, store settings).
    pub async fn build_with(
        config: &Config,
        secrets: &Secrets,
        options: BuildOptions,
    ) -> anyhow::Result<Application> {
        // This instance's name: its workers' and its overdue intents' (so the next
        // instance can take over at once what this one leaves behind if killed).
        let instance = format!(
            "{SERVE_WORKER_PREFIX}{}:{:08x}",
            std::process::id(),
            rand_suffix()
        );
        let mut store_config = store_config(config);
        store_config.claimant = instance.clone();
        if let Some(tweak) = &options.store {
            tweak(&mut store_config);
        }
        let store = open_store_with(store_config, options.clock.clone()).await?;
        let instance_lock = match store.file() {
            Some(file) => match take_instance_lock(file) {
                Ok(lock) => Some(lock),
                Err(e) => {
                    store.close().await;
                    return Err(e);
                }
            },
            None => None,
        };
        if instance_lock.is_some() {
            // We hold the lock, so any job a previous daemon left running is orphaned.
            let reclaimed = store.reclaim_workers(SERVE_WORKER_PREFIX).await?;
            if reclaimed > 0 {
                tracing::warn!(
                    jobs = reclaimed,
                    "returned jobs a previous instance left running to the queue"
                );
            }
        }
        let replica = Arc::new(Replica::new(
            instance.clone(),
            store.clone(),
            config.replicas,
            store.clock().now(),
        ));
        let (sources, notifier_task) = match build_sources(config, secrets, store.clone()) {
            Ok(built) => built,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        adopt_unconfigured_jobs(&sources).await;
        // Not fatal: a store failing now is reported by health; the claim window frees
        // these intents later anyway. (Replicas sharing a database take over only what a
        // replica known to be dead left: `replica.rs`.)
        for engine in sources.all().iter().filter(|_| instance_lock.is_some()) {
            match engine.resume_interrupted_writes(SERVE_WORKER_PREFIX).await {
                Ok(0) => {}
                Ok(pages) => tracing::warn!(
                    pages,
                    source = engine.name(),
                    "overdue writes a previous instance left unfinished: confirming them now"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    source = engine.name(),
                    "taking over overdue writes a previous instance left unfinished failed"
                ),
            }
        }
        let listen = config.server.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding server.listen = {listen}"))?;
        let addr = listener.local_addr()?;
        let endpoints = config
            .integrations()
            .into_iter()
            .map(|i| Endpoint {
                secret: SecretSlot::new(secrets.webhook_secret(&i.name).cloned()),
                integration: i.name,
            })
            .collect();
        let state = AppState::new(
            sources,
            endpoints,
            crate::telemetry::metrics_handle(),
            &config.server,
            config.store.event_retention,
            replica.clone(),
        );
        // Leadership is settled before the schedulers start.
        replica.round(&state.sources).await;
        forget_unconfigured_tokens(&state).await;
        for endpoint in state.endpoints.iter() {
            if !state.handshakes.closed(endpoint.secret.is_set()) {
                continue;
            }
            // Handshakes are closed: pending tokens (HMAC keys) must not stay in the file.
            let integration = endpoint.integration.as_str();
            match state
                .engine
                .store()
                .clear_verification_tokens(Some(integration))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    tokens = n,
                    integration,
                    "webhook secret configured: pending verification tokens deleted from the database"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "deleting pending verification tokens failed")
                }
            }
        }
        Ok(Application {
            listener,
            addr,
            state,
            limits: ConnectionLimits {
                max_connections: config.server.max_connections,
                header_timeout: config.server.header_timeout,
            },
            notifier_task,
            instance_lock,
            instance,
            replica,
            drain: config.server.drain,
        })
    }

    /// The bound address (port 0 in the config picks a free port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first source's engine.
    pub fn engine(&self) -> &Engine {
        &self.state.engine
    }

    /// Every source's engine.
    pub fn sources(&self) -> &Sources {
        &self.state.sources
    }

    /// `integration`'s webhook signing key, replaceable while running.
    pub fn integration_secret_slot(&self, integration: &str) -> Option<Arc<SecretSlot>> {
        self.state
            .endpoint(Some(integration))
            .map(|e| e.secret.clone())
    }

    /// The webhook signing key, replaceable while running.
    pub fn webhook_secret_slot(&self) -> Arc<SecretSlot> {
        self.state.webhook_secret.clone()
    }

    /// Serves until `shutdown` fires; then stops intake (503), lets running jobs
    /// finish within the grace period, hands back unfinished leases, stops HTTP and
    /// closes the store. Returns an error if a component failed on its own.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let engine = self.state.engine.clone();
        let accepting = self.state.accepting.clone();
        let work_stop = CancellationToken::new();
        let http_stop = CancellationToken::new();
        let mut failed: Option<anyhow::Error> = None;
        tracing::info!(listen = %self.addr, version = env!("CARGO_PKG_VERSION"), "notion-sync serving");

        let mut http = JoinSet::new();
        let app = router(self.state.clone());
        let stop = http_stop.clone();
        // The whole shutdown, HTTP drain included, ends within the grace period.
        let grace = engine.config().workers.shutdown_grace;
        let shutdown_began = Arc::new(std::sync::OnceLock::new());
        let began = shutdown_began.clone();
        http.spawn(crate::listener::serve(
            self.listener,
            app,
            self.limits,
            stop,
            move || {
                let began: tokio::time::Instant =
                    *began.get().unwrap_or(&tokio::time::Instant::now());
                (began + grace).max(tokio::time::Instant::now() + MIN_HTTP_DRAIN)
            },
        ));

        let sources = self.state.sources.clone();
        let mut work = spawn_work(
            &sources,
            self.notifier_task,
            &work_stop,
            &self.instance,
            &self.replica,
        );

        // Wait for the signal, or for a component to die on its own.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(res) = http.join_next() => {
                    let err = match res {
                        Ok(()) => anyhow::anyhow!("HTTP server stopped unexpectedly"),
                        Err(e) => anyhow::anyhow!("HTTP server task panicked: {e}"),
                    };
                    tracing::error!(error = %err, "HTTP server ended; shutting down");
                    failed = Some(err);
                    break;
                }
                Some(res) = work.join_next() => match res {
                    Ok((name, Ok(()))) => tracing::debug!(task = name, "task ended"),
                    Ok((name, Err(e))) => {
                        tracing::error!(task = name, error = %e, error.chain = ?e, "task failed; shutting down");
                        failed = Some(e);
                        break;
                    }
                    Err(e) => {
                        failed = Some(anyhow::anyhow!("task panicked: {e}"));
                        break;
                    }
                },
            }
        }
        if failed.is_none() && !self.drain.is_zero() {
            // Out of the load balancer first (readiness fails), still taking webhooks.
            self.state.draining.store(true, Ordering::Release);
            tracing::info!(
                drain_seconds = self.drain.as_secs(),
                "draining: /healthz answers 503, webhooks are still taken"
            );
            tokio::time::sleep(self.drain).await;
        }
        let _ = shutdown_began.set(tokio::time::Instant::now());
        tracing::info!("shutting down: webhook intake closed (503), finishing running jobs");
        accepting.store(false, Ordering::Release);
        work_stop.cancel();
        while let Some(res) = work.join_next().await {
            match res {
                Ok((name, Ok(()))) => tracing::info!(task = name, "stopped"),
                Ok((name, Err(e))) => {
                    tracing::warn!(task = name, error = %e, "stopped with an error")
                }
                Err(e) => tracing::error!(error = %e, "task panicked during shutdown"),
            }
        }
        http_stop.cancel();
        while let Some(res) = http.join_next().await {
            if let Err(e) = res {
                tracing::warn!(error = %e, "HTTP server task panicked during shutdown");
            }
        }
        engine.store().close().await;
        drop(self.instance_lock);
        tracing::info!("shutdown complete");
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What runs beside the HTTP server: workers, scheduler, notifier, the start-up check.
type Work = JoinSet<(&'static str, anyhow::Result<()>)>;

fn spawn_work(
    sources: &Sources,
    notifier: Option<NotifierTask>,
    work_stop: &CancellationToken,
    instance: &str,
    replica: &Arc<Replica>,
) -> Work {
    let mut work = Work::new();
    let (r, s, c) = (replica.clone(), sources.clone(), work_stop.clone());
    work.spawn(async move {
        r.run(s, c).await;
        ("replica", Ok(()))
    });
    // Each source drains its own queue with its own workers (one source's backlog never
    // holds another's jobs); sources of one integration share its pacer, whose FIFO
    // lanes serve their requests in turn, interactive first.
    for engine in sources.all() {
        let (e, c) = (engine.clone(), work_stop.clone());
        let prefix = format!("{instance}:{}", engine.name());
        work.spawn(async move {
            WorkerPool::named(e, prefix).run(c).await;
            ("workers", Ok(()))
        });
        let (e, c, l) = (engine.clone(), work_stop.clone(), replica.leadership());
        work.spawn(async move {
            let name = e.name().to_owned();
            let r = sync_engine::run_scheduler(e, l, c)
                .await
                .with_context(|| format!("reconcile scheduler of source {name}"));
            ("scheduler", r)
        });
        let e = engine.clone();
        work.spawn(async move {
            if let Err(err) = e.initialize().await {
                tracing::error!(error = %err, source = e.name(), "start-up check against Notion failed; the reconciler retries");
            }
            ("start-up check", Ok(()))
        });
    }
    let engine = sources.first();
    if let Some(task) = notifier {
        let c = work_stop.clone();
        work.spawn(async move {
            task.run(c).await;
            ("notifier", Ok(()))
        });
    }
    let (e, c) = (engine.clone(), work_stop.clone());
    work.spawn(async move { ("store probe", probe_store(&e, c).await) });
    work
}

/// Pending verification tokens (HMAC keys) of an integration no longer configured are
/// of no use: they do not stay in the file.
async fn forget_unconfigured_tokens(state: &AppState) {
    let Ok(tokens) = state.engine.store().verification_tokens().await else {
        return;
    };
    let mut gone: Vec<String> = tokens
        .into_iter()
        .map(|t| t.integration)
        .filter(|i| state.endpoint(Some(i)).is_none())
        .collect();
    gone.sort_unstable();
    gone.dedup();
    for integration in gone {
        match state
            .engine
            .store()
            .clear_verification_tokens(Some(&integration))
            .await
        {
            Ok(n) => tracing::info!(
                tokens = n,
                integration = %integration,
                "pending verification tokens of an integration no longer configured deleted"
            ),
            Err(e) => tracing::error!(error = %e, "deleting pending verification tokens failed"),
        }
    }
}

/// Jobs of a source the configuration no longer has (renamed, or the single-source
/// `default` given a name) would never be claimed: at start the first source takes them
/// (a page of another source is handed to it once read). Their mirror rows are adopted
/// by the source of their data source when it starts (`Engine::initialize`).
async fn adopt_unconfigured_jobs(sources: &Sources) {
    let counts = match sources.store().job_sources().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "listing the queue's sources failed");
            return;
        }
    };
    let first = sources.first();
    for (source, _) in counts {
        if sources.get(&source).is_some() {
            continue;
        }
        match first.store().adopt_jobs(&source).await {
            Ok(jobs) => tracing::warn!(
                from = %source,
                to = first.name(),
                jobs,
                "queued jobs of a source that is no longer configured moved to the first source"
            ),
            Err(e) => {
                tracing::error!(error = %e, from = %source, "moving jobs of an unconfigured source failed")
            }
        }
    }
}

/// Writes a small state row at start and every [`STORE_PROBE_EVERY`]: storage that
/// cannot commit (read-only, full, gone) is reported as failing by `/healthz`. A store
/// that says it is closed while the daemon is not stopping has lost its writer task:
/// that ends the daemon (with an error, for the supervisor to restart it) rather than
/// leave it answering 503 for good.
async fn probe_store(engine: &Engine, stop: CancellationToken) -> anyhow::Result<()> {
    loop {
        let now = engine.now().to_rfc3339();
        match engine.store().set_state("store.probe", &now).await {
            Ok(()) => {}
            Err(sync_store::StoreError::Closed) if !stop.is_cancelled() => {
                anyhow::bail!("the store's writer stopped while the daemon runs");
            }
            Err(e) => {
                tracing::error!(error = %e, "the store does not take writes: /healthz reports failing");
                engine.status().record_store_write_failure(e.to_string());
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(STORE_PROBE_EVERY) => {}
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u32
}
