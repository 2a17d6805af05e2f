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

/// Config for tests: free port, temp DB, no scheduled passes (tests run them).
pub fn test_config(sim: &SimHandle, db: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("SERVER__LISTEN", "127.0.0.1:0".to_owned()),
        ("STORE__URL", format!("sqlite://{}", db.display())),
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
            let row = self.store.get_page(&p.id).await.unwrap();
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
        "timestamp": "2026-11-23T10:00:00.000Z",
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
