//! `spawn_app()`: the daemon built through `Application::build`, a fresh temp SQLite
//! file and a fresh notion-sim subscribed to the daemon's webhook endpoint.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use notion_sim::{SimConfig, SimHandle};
use notion_sync::Application;
use notion_sync::config::{Config, Secrets};
use secrecy::SecretString;
use sync_engine::Engine;
use sync_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub addr: SocketAddr,
    pub sim: SimHandle,
    pub engine: Engine,
    pub store: Store,
    pub secret: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// Keeps the temporary database alive as long as the app.
    pub _dir: tempfile::TempDir,
}

/// A Notion id from the sim's text.
pub fn id(s: &str) -> sync_store::NotionId {
    sync_store::NotionId::parse(s).unwrap()
}

pub fn sim_config(pages: usize) -> SimConfig {
    SimConfig {
        pages,
        seed: 11,
        rate_limit: None,
        webhook: notion_sim::WebhookConfig {
            aggregate_window: Duration::from_millis(50),
            retry_base: Duration::from_millis(20),
            ..notion_sim::WebhookConfig::default()
        },
        ..SimConfig::default()
    }
}

pub use pg_scratch::{on_postgres, sqlite_only};

/// The store URL of the database a test keeps at `db`: that SQLite file, or on PostgreSQL
/// a database named after the path (created the first time), so a test that restarts
/// the daemon on `db` finds its data again.
pub fn store_url(db: &std::path::Path) -> String {
    if on_postgres() {
        pg_scratch::database_for(&db)
    } else {
        format!("sqlite://{}", db.display())
    }
}

/// The store settings of the database a test keeps at `db` (see [`store_url`]).
pub fn store_config(db: &std::path::Path) -> sync_store::StoreConfig {
    sync_store::StoreConfig {
        url: store_url(db),
        ..sync_store::StoreConfig::default()
    }
}

/// Config for tests: free port, temp DB, no scheduled passes (tests run them).
pub fn test_config(sim: &SimHandle, db: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("SERVER__LISTEN", "127.0.0.1:0".to_owned()),
        ("STORE__URL", store_url(db)),
        ("NOTION__API_URL", sim.base_url()),
        ("NOTION__DATA_SOURCE_ID", sim.data_source_id()),
        ("NOTION__REQUESTS_PER_SECOND", "100".to_owned()),
        ("NOTION__TIMEOUT_SECONDS", "5".to_owned()),
        ("RECONCILE__SCHEDULE", String::new()),
        ("RECONCILE__FULL_SCHEDULE", String::new()),
        ("RECONCILE__ON_START", "false".to_owned()),
        ("SERVER__SHUTDOWN_GRACE_SECONDS", "2".to_owned()),
    ] {
        env.insert(format!("NOTION_SYNC_{k}"), v);
    }
    for (k, v) in extra {
        env.insert(format!("NOTION_SYNC_{k}"), (*v).to_owned());
    }
    Config::load(None, &env).expect("test config is valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(sim_config(20), &[]).await
}

pub async fn spawn_app_with(sim: SimConfig, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_with_token(sim, extra, None).await
}

/// As `spawn_app_with`, with another token than the workspace's (`Some`) to test 401s.
pub async fn spawn_app_with_token(
    sim: SimConfig,
    extra: &[(&str, &str)],
    token: Option<&str>,
) -> TestApp {
    let sim = notion_sim::start(sim).await.expect("sim starts");
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&sim, &dir.path().join("notion-sync.db"), extra);
    let secrets = Secrets {
        notion_token: Some(SecretString::from(token.unwrap_or(sim.token()).to_owned())),
        ..Secrets::default()
    };
    let app = Application::build(&config, &secrets)
        .await
        .expect("app builds");
    let addr = app.local_addr();
    let engine = app.engine().clone();
    let store = engine.store().clone();
    let slot = app.webhook_secret_slot();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    // The handshake arrives unsigned and is stored as pending; the operator (here the
    // test) then configures it as the signing secret.
    let secret = sim
        .subscribe(&format!("http://{addr}/webhooks/notion"))
        .await
        .expect("handshake accepted");
    slot.set(SecretString::from(secret.clone()));
    TestApp {
        addr,
        sim,
        engine,
        store,
        secret,
        http: reqwest::Client::new(),
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn sign(&self, body: &[u8]) -> String {
        notion_api::sign(self.secret.as_bytes(), body)
    }

    /// POSTs a webhook body, signed with the subscription's secret unless `signature` is given.
    pub async fn post_webhook(
        &self,
        body: &[u8],
        signature: Option<Option<&str>>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/webhooks/notion"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        match signature {
            None => req = req.header("x-notion-signature", self.sign(body)),
            Some(Some(sig)) => req = req.header("x-notion-signature", sig),
            Some(None) => {}
        }
        req.send().await.expect("request sent")
    }

    /// Waits until the simulator has delivered everything and the queue is empty.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            self.sim.webhooks_idle().await;
            let s = self.store.queue_stats().await.unwrap();
            if s.queued_interactive + s.queued_bulk + s.running == 0
                && self.sim.webhook_stats().pending == 0
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "queue did not drain: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `cond` to hold, polling; panics with `what` after 30 s.
    pub async fn wait_until<F, Fut>(&self, what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !cond().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn live_ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self
            .sim
            .pages()
            .into_iter()
            .filter(|p| !p.in_trash && p.shared)
            .map(|p| p.id)
            .collect();
        ids.sort();
        ids
    }

    /// Where the mirror differs from Notion (title, status, due, trash, body).
    pub async fn mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.sim.pages() {
            let row = self.store.get_page(&id(&p.id)).await.unwrap();
            let gone = p.in_trash || !p.shared;
            match row {
                None if gone => {}
                None => out.push(format!("{} missing", p.id)),
                Some(r) if gone => {
                    if !r.in_trash {
                        out.push(format!("{} should be in_trash", p.id));
                    }
                }
                Some(r) => {
                    let due =
                        |s: Option<&str>| s.map(|d| d.parse::<notion_api::NotionDate>().unwrap());
                    if r.in_trash
                        || r.title != p.title
                        || r.status != p.status
                        || due(r.due.as_deref()) != due(p.due.as_deref())
                        || r.body_markdown.as_deref() != Some(p.markdown.as_str())
                    {
                        out.push(format!(
                            "{}: mirror ({:?}, {:?}, {:?}, trash {}, body {:?}) vs notion ({:?}, {:?}, {:?}, body {:?})",
                            p.id, r.title, r.status, r.due, r.in_trash, r.body_markdown, p.title, p.status, p.due, p.markdown
                        ));
                    }
                }
            }
        }
        out
    }
}

/// A signed-event body shaped like Notion's.
pub fn event_json(
    id: &str,
    kind: &str,
    entity: &str,
    entity_type: &str,
    parent_ds: Option<&str>,
) -> Vec<u8> {
    let mut data = serde_json::json!({});
    if let Some(ds) = parent_ds {
        data["parent"] = serde_json::json!({"id": ds, "type": "data_source"});
    }
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        // Stamped now, as Notion stamps an event with the time of its change.
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "workspace_id": "13950b26-c203-4f3b-b97d-93ec06319565",
        "subscription_id": "29d75c0d-5546-4414-8459-7b7a92f1fc4b",
        "integration_id": "0ef2e755-4912-8096-91c1-00376a88a5ca",
        "type": kind,
        "authors": [{"id": "c7c11cca-1d73-471d-9b6e-bdef51470190", "type": "person"}],
        "attempt_number": 1,
        "entity": {"id": entity, "type": entity_type},
        "data": data
    }))
    .unwrap()
}

// ----- Reliability suite (chaos, faults, disk, fuzz): restartable apps, the binary, checks.

/// The daemon built in-process through `Application::build_with` on a database file the
/// test owns, so it can be stopped and built again on the same file.
pub struct RunningApp {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub store: Store,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

/// Builds and runs the daemon against `sim` on `db`, with `secret` as the webhook key
/// (`None`: no secret yet; no subscription: tests that want the simulator's deliveries
/// call `subscribe_with_token`).
pub async fn start_app<'a>(
    sim: &SimHandle,
    db: &std::path::Path,
    extra: &[(&str, &str)],
    secret: impl Into<Option<&'a str>>,
    options: notion_sync::BuildOptions,
) -> anyhow::Result<RunningApp> {
    let config = test_config(sim, db, extra);
    let secrets = Secrets {
        notion_token: Some(SecretString::from(sim.token().to_owned())),
        webhook_secret: secret.into().map(|s| SecretString::from(s.to_owned())),
        ..Secrets::default()
    };
    let app = Application::build_with(&config, &secrets, options).await?;
    let addr = app.local_addr();
    let engine = app.engine().clone();
    let store = engine.store().clone();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    Ok(RunningApp {
        addr,
        engine,
        store,
        shutdown,
        handle,
    })
}

impl RunningApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs `body` to the webhook endpoint with `signature` as `X-Notion-Signature`.
    pub async fn post(
        &self,
        http: &reqwest::Client,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = http
            .post(self.url("/webhooks/notion"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-notion-signature", sig);
        }
        req.send().await.expect("request sent")
    }

    /// Stops the daemon gracefully and returns how `run_until_stopped` ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.await.expect("app task")
    }
}

/// Store settings for fault tests: transient job failures retry after 100 ms–1 s instead
/// of 2 s–10 min, so a test can watch many retries in a few seconds.
pub fn quick_retries() -> notion_sync::BuildOptions {
    notion_sync::BuildOptions {
        store: Some(std::sync::Arc::new(|c: &mut sync_store::StoreConfig| {
            c.backoff_base = Duration::from_millis(100);
            c.backoff_max = Duration::from_secs(1);
        })),
        ..notion_sync::BuildOptions::default()
    }
}

/// Polls `cond` every 20 ms; panics with `what` after `secs`.
pub async fn poll_until<F, Fut>(what: &str, secs: u64, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the simulator delivered everything and nothing is queued or running
/// (jobs waiting for a retry count as queued).
pub async fn settle_store(sim: &SimHandle, store: &Store, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        sim.webhooks_idle().await;
        let s = store.queue_stats().await.unwrap();
        if s.queued_interactive + s.queued_bulk + s.running == 0 && sim.webhook_stats().pending == 0
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not drain in {secs} s: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where the mirror in `store` differs from the simulator (title, status, due, trash,
/// body); the same comparison as `TestApp::mismatches`, for apps and files a test owns.
pub async fn mirror_mismatches(store: &Store, sim: &SimHandle) -> Vec<String> {
    let due = |s: Option<&str>| s.map(|d| d.parse::<notion_api::NotionDate>().unwrap());
    let mut out = Vec::new();
    for p in sim.pages() {
        let row = store.get_page(&id(&p.id)).await.unwrap();
        let gone = p.in_trash || !p.shared;
        match row {
            None if gone => {}
            None => out.push(format!("{} missing", p.id)),
            Some(r) if gone => {
                if !r.in_trash {
                    out.push(format!("{} should be in_trash", p.id));
                }
            }
            Some(r) => {
                if r.in_trash
                    || r.title != p.title
                    || r.status != p.status
                    || due(r.due.as_deref()) != due(p.due.as_deref())
                    || r.body_markdown.as_deref() != Some(p.markdown.as_str())
                {
                    out.push(format!(
                        "{}: mirror ({:?}, {:?}, {:?}, trash {}, body {:?}) vs notion ({:?}, {:?}, {:?}, body {:?})",
                        p.id, r.title, r.status, r.due, r.in_trash, r.body_markdown, p.title, p.status, p.due, p.markdown
                    ));
                }
            }
        }
    }
    out
}

/// The open status the reliability tests configure (`tasks.open_statuses = ["Waiting"]`).
/// The simulator's random edits never set it, so only the test makes a task an overdue
/// candidate, and a second PATCH of one page can only be a double write.
pub const WAITING: &str = "Waiting";

/// Adds the `Waiting` option (group `To-do`) to the simulator's Status property.
pub fn add_waiting_status(sim: &SimHandle) {
    sim.add_status_option(WAITING, "To-do")
        .expect("status option added");
}

/// Makes `id` an overdue candidate: status `Waiting`, due three days ago (sim clock).
pub fn make_overdue_candidate(sim: &SimHandle, id: &str) {
    let due = (sim.now() - chrono::TimeDelta::days(3))
        .date_naive()
        .to_string();
    sim.set_due(id, Some(&due)).expect("due set");
    sim.set_status(id, WAITING).expect("status set");
}

/// Successful `PATCH /v1/pages/{id}` requests per page path in the simulator's log.
pub fn patches_per_page(sim: &SimHandle) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in sim.request_log() {
        if r.method == "PATCH" && r.route == "/v1/pages/{id}" && r.status == 200 {
            *out.entry(r.path.clone()).or_default() += 1;
        }
    }
    out
}

/// Simulator pages still `Waiting` with a due date before today: the rule missed them.
pub fn unmarked_candidates(sim: &SimHandle) -> Vec<String> {
    let today = sim.now().date_naive().to_string();
    sim.pages()
        .into_iter()
        .filter(|p| {
            !p.in_trash
                && p.shared
                && p.status.as_deref() == Some(WAITING)
                && p.due
                    .as_deref()
                    .and_then(|d| d.get(..10))
                    .is_some_and(|d| d < today.as_str())
        })
        .map(|p| p.id)
        .collect()
}

/// A TCP port free right now (for the binary, which binds its configured address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` of a daemon at `addr`.
pub async fn metrics_text(http: &reqwest::Client, addr: SocketAddr) -> String {
    http.get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `GET /healthz` of a daemon on `port`, if it answers with JSON.
pub async fn daemon_health(http: &reqwest::Client, port: u16) -> Option<serde_json::Value> {
    let r = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// `notion-sync <args…>` (the real binary) with an empty environment except the two
/// secrets, stdout discarded, stderr appended to `log`.
pub fn notion_sync_command(
    args: &[&std::ffi::OsStr],
    token: &str,
    secret: &str,
    log: &std::path::Path,
) -> std::process::Command {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_notion-sync"));
    cmd.args(args)
        .env_clear()
        .env("NOTION_TOKEN", token)
        .env("NOTION_WEBHOOK_SECRET", secret)
        // NOTION_SYNC_TEST_LOG sets another filter (e.g. `info,sync_engine=debug`).
        .env(
            "RUST_LOG",
            std::env::var("NOTION_SYNC_TEST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(file);
    cmd
}

/// A config file for the binary: `port`, the database `db`, the simulator, no scheduled
/// passes unless `extra` (appended verbatim, e.g. a `[reconcile]` table) says otherwise.
pub fn write_daemon_config(
    path: &std::path::Path,
    port: u16,
    db: &std::path::Path,
    sim: &SimHandle,
    extra: &str,
) {
    std::fs::write(
        path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_seconds = 5\n\
             [store]\nurl = \"{}\"\n\
             [notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\nrequests_per_second = 30.0\ntimeout_seconds = 5\n\
             [workers]\nconcurrency = 4\nlease_seconds = 10\n\
             [log]\nformat = \"json\"\n{extra}",
            store_url(db),
            sim.base_url(),
            sim.data_source_id()
        ),
    )
    .unwrap();
}

/// A signed `page.properties_updated` event for `page` with a distinct id per `n`.
pub fn page_event(prefix: &str, n: usize, page: &str, ds: &str) -> Vec<u8> {
    event_json(
        &format!("{prefix}-0000-4000-8000-{n:012}"),
        "page.properties_updated",
        page,
        "page",
        Some(ds),
    )
}

/// A daemon child process that is killed when dropped, so a failing test never leaves
/// one running (a stray daemon would take CPU from every test and benchmark after it).
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// SplitMix64: a tiny seeded generator, so every choice of a run follows its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (milliseconds, counts).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}
