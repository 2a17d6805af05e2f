//! Test harness: a simulated workspace, a store in a temp dir, an engine over both.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use notion_api::{ClientConfig, NotionClient, NotionDate, NotionId, Pacer, PacerConfig};
use notion_sim::{SimConfig, SimHandle};
use sync_engine::{
    DrainReport, Engine, EngineConfig, Notifier, PassKind, PassSummary, Source, WorkerPool,
};
use sync_store::{Store, StoreConfig, SystemClock};
use tokio_util::sync::CancellationToken;

pub const START: &str = "2026-11-23T10:00:05Z";

/// A Notion id from the sim's text.
pub fn id(s: &str) -> NotionId {
    NotionId::parse(s).unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A simulated workspace with no rate limit, starting at [`START`] on its clock.
pub fn sim_config(pages: usize) -> SimConfig {
    SimConfig {
        pages,
        seed: 7,
        rate_limit: None,
        start_time: Some(at(START)),
        ..SimConfig::default()
    }
}

pub struct Env {
    pub sim: SimHandle,
    pub store: Store,
    pub engine: Engine,
    pub dir: Arc<tempfile::TempDir>,
    pub cancel: CancellationToken,
    tweak: Arc<dyn Fn(&mut EngineConfig) + Send + Sync>,
}

pub fn client(sim: &SimHandle, rate: f64) -> NotionClient {
    let pacer = Pacer::new(PacerConfig {
        requests_per_second: rate,
        burst: (rate as u32).clamp(1, 50),
        ..PacerConfig::default()
    });
    NotionClient::new(
        ClientConfig {
            base_url: sim.base_url(),
            timeout: Duration::from_secs(5),
            max_attempts: 4,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ..ClientConfig::new(sim.token().to_owned())
        },
        pacer,
    )
    .unwrap()
}

pub async fn env(sim: SimConfig) -> Env {
    env_with(sim, |_| {}).await
}

pub async fn env_with(
    sim: SimConfig,
    tweak: impl Fn(&mut EngineConfig) + Send + Sync + 'static,
) -> Env {
    let sim = notion_sim::start(sim).await.unwrap();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    build(sim, dir, Arc::new(tweak)).await
}

async fn build(
    sim: SimHandle,
    dir: Arc<tempfile::TempDir>,
    tweak: Arc<dyn Fn(&mut EngineConfig) + Send + Sync>,
) -> Env {
    let store = Store::open(
        StoreConfig::for_path(&dir.path().join("mirror.db")),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let ds = NotionId::parse(&sim.data_source_id()).unwrap();
    let mut config = EngineConfig::new(Source::DataSource(ds));
    config.workers.count = 2;
    config.reconcile.visibility_margin = Duration::from_secs(5);
    tweak(&mut config);
    let engine = Engine::new(
        config,
        store.clone(),
        client(&sim, 1000.0),
        Notifier::disabled(),
    );
    engine.initialize().await.unwrap();
    Env {
        sim,
        store,
        engine,
        dir,
        cancel: CancellationToken::new(),
        tweak,
    }
}

impl Env {
    /// A new store and engine over the same file and workspace (a restart).
    pub async fn restart(self) -> Env {
        self.store.close().await;
        build(self.sim.clone(), self.dir.clone(), self.tweak.clone()).await
    }

    /// Reads a page's properties now with a GET, as a person's webhook job would.
    pub async fn read_props(&self, page: &str) {
        let work = sync_engine::PageSyncPayload {
            props: true,
            body: false,
            human: true,
            event_time: None,
        };
        self.engine
            .sync_page(id(page), &work, sync_store::Lane::Interactive)
            .await
            .unwrap();
    }

    pub async fn pass(&self) -> PassSummary {
        self.run_pass(PassKind::Incremental).await
    }

    pub async fn full_pass(&self) -> PassSummary {
        self.run_pass(PassKind::Full).await
    }

    async fn run_pass(&self, kind: PassKind) -> PassSummary {
        let s = self
            .engine
            .reconcile(kind, &self.cancel)
            .await
            .expect("pass");
        self.drain().await;
        s
    }

    pub async fn drain(&self) -> DrainReport {
        WorkerPool::new(self.engine.clone())
            .run_until_empty(false)
            .await
            .unwrap()
    }

    pub fn count(&self, method: &str, route: &str) -> usize {
        self.sim.count_requests(method, route)
    }

    /// Where the mirror differs from the simulated workspace (empty = exact).
    pub async fn mismatches(&self) -> Vec<String> {
        self.mismatches_where(|_| true).await
    }

    async fn mismatches_where(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.sim.pages().into_iter().filter(|p| keep(&p.id)) {
            let row = self.store.get_page(&id(&p.id)).await.unwrap();
            let gone = p.in_trash || !p.shared;
            match row {
                None if gone => {}
                None => out.push(format!("{} ({:?}) missing from the mirror", p.id, p.title)),
                Some(r) if gone => {
                    if !r.in_trash {
                        out.push(format!(
                            "{} is gone in Notion but not in_trash in the mirror",
                            p.id
                        ));
                    }
                }
                Some(r) => {
                    let due = |s: Option<&str>| s.map(|d| d.parse::<NotionDate>().unwrap());
                    if r.in_trash {
                        out.push(format!("{} in_trash in the mirror only", p.id));
                    }
                    if r.title != p.title {
                        out.push(format!("{} title {:?} != {:?}", p.id, r.title, p.title));
                    }
                    if r.status != p.status {
                        out.push(format!("{} status {:?} != {:?}", p.id, r.status, p.status));
                    }
                    if due(r.due.as_deref()) != due(p.due.as_deref()) {
                        out.push(format!("{} due {:?} != {:?}", p.id, r.due, p.due));
                    }
                    if r.last_edited_time != p.last_edited_time {
                        out.push(format!(
                            "{} last_edited_time {} != {}",
                            p.id, r.last_edited_time, p.last_edited_time
                        ));
                    }
                    if r.body_markdown.as_deref() != Some(p.markdown.as_str()) {
                        out.push(format!(
                            "{} body differs:\n  mirror {:?}\n  notion {:?}",
                            p.id, r.body_markdown, p.markdown
                        ));
                    }
                }
            }
        }
        out
    }

    pub async fn assert_page_exact(&self, id: &str) {
        let m = self.mismatches_where(|p| p == id).await;
        assert!(m.is_empty(), "{}", m.join("\n"));
    }

    pub async fn assert_exact(&self) {
        let m = self.mismatches().await;
        assert!(
            m.is_empty(),
            "mirror differs from Notion in {} places:\n{}",
            m.len(),
            m.join("\n")
        );
    }

    /// Waits until queries see every edit made so far (the simulated visibility delay
    /// runs in real time); panics if that takes much longer than `delay`.
    pub async fn wait_visible(&self, delay: Duration) {
        let deadline = tokio::time::Instant::now() + delay + Duration::from_secs(5);
        while !self.sim.queries_current() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "edits still invisible to queries {delay:?} after they were made"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ids of the workspace's live tasks, in a stable order.
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
}
