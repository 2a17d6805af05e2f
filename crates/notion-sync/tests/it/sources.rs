//! Several sources and integrations in one daemon, against one simulated workspace with
//! two integrations (two tokens, two webhook subscriptions) and two task databases:
//! source `tasks` reads "Tasks" through integration `alpha`, source `ops` reads
//! "Tasks 2" through integration `beta`. Each delivery is verified with its own
//! integration's secret; a 429 storm on one integration leaves the other's budget
//! untouched; a workspace-limit 429 pauses both; the mirror and overdue marking are exact
//! per source.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use notion_sim::{RateLimit, SimConfig, SimHandle};
use notion_sync::Application;
use notion_sync::config::{Config, Secrets};
use secrecy::SecretString;
use sync_engine::{PassKind, Sources};
use sync_store::Store;
use tokio_util::sync::CancellationToken;

use crate::support::{event_json, id, metrics_text, poll_until, settle_store, sim_config};

const BETA_TOKEN: &str = "secret_sim_token_beta";

struct Two {
    addr: SocketAddr,
    sim: SimHandle,
    sources: Sources,
    store: Store,
    /// Each integration's webhook secret.
    secrets: BTreeMap<String, String>,
    http: reqwest::Client,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// How the two sources read.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    /// Two integrations, each in a workspace of its own (as far as the daemon knows).
    Apart,
    /// Two integrations of one workspace (`acme`).
    SharedWorkspace,
    /// Both sources through integration `alpha`.
    OneIntegration,
    /// `ops` (through `beta`) names the database whose data source `tasks` names.
    Overlap,
}

fn config_text(sim: &SimHandle, db: &std::path::Path, setup: Setup) -> String {
    let ds = sim.task_data_source_ids();
    let workspace = if setup == Setup::SharedWorkspace {
        "workspace = \"acme\""
    } else {
        ""
    };
    let ops_mirrors = match setup {
        Setup::Overlap => format!("database_id = \"{}\"", sim.task_database_ids()[0]),
        _ => format!("data_source_id = \"{}\"", ds[1]),
    };
    let (beta_table, ops_integration) = if setup == Setup::OneIntegration {
        (String::new(), "alpha")
    } else {
        (format!("[integrations.beta]\n{workspace}\n"), "beta")
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_seconds = 2

[store]
url = "{db}"

[notion]
api_url = "{api}"
requests_per_second = 50
timeout_seconds = 5

[reconcile]
schedule = ""
full_schedule = ""
on_start = false

[integrations.alpha]
{workspace}

{beta_table}
[sources.tasks]
integration = "alpha"
data_source_id = "{ds0}"

[sources.ops]
integration = "{ops_integration}"
{ops_mirrors}

[sources.ops.tasks]
open_statuses = ["To Do"]
"#,
        db = crate::support::store_url(db),
        api = sim.base_url(),
        ds0 = ds[0],
    )
}

/// The workspace every test here runs against.
async fn two_databases() -> SimHandle {
    notion_sim::start(SimConfig {
        extra_tokens: vec![BETA_TOKEN.into()],
        extra_task_databases: 1,
        ..sim_config(30)
    })
    .await
    .unwrap()
}

async fn spawn_two(setup: Setup) -> Two {
    spawn_two_on(two_databases().await, tempfile::tempdir().unwrap(), setup).await
}

/// The daemon on `sim`, with its database in `dir` (which may hold one already).
async fn spawn_two_on(sim: SimHandle, dir: tempfile::TempDir, setup: Setup) -> Two {
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        config_text(&sim, &dir.path().join("notion-sync.db"), setup),
    )
    .unwrap();
    let config = Config::load(Some(&path), &BTreeMap::new()).unwrap();
    let env: BTreeMap<String, String> = [
        ("NOTION_TOKEN_ALPHA", sim.token()),
        ("NOTION_TOKEN_BETA", BETA_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let names: Vec<String> = config.integrations().into_iter().map(|i| i.name).collect();
    let secrets = Secrets::for_integrations(&env, &names).unwrap();
    let app = Application::build(&config, &secrets).await.unwrap();
    let addr = app.local_addr();
    let sources = app.sources().clone();
    let store = sources.store().clone();
    let slots: Vec<_> = names
        .iter()
        .map(|n| app.integration_secret_slot(n).unwrap())
        .collect();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let mut secrets = BTreeMap::new();
    for (name, slot) in names.iter().zip(&slots) {
        let secret = sim
            .subscribe(&format!("http://{addr}/webhooks/notion/{name}"))
            .await
            .unwrap();
        slot.set(SecretString::from(secret.clone()));
        secrets.insert(name.clone(), secret);
    }
    Two {
        addr,
        sim,
        sources,
        store,
        secrets,
        http: reqwest::Client::new(),
        shutdown,
        handle,
        _dir: dir,
    }
}

impl Two {
    fn secret(&self, integration: &str) -> &str {
        &self.secrets[integration]
    }

    async fn post(&self, path: &str, body: &[u8], secret: &str) -> u16 {
        self.http
            .post(format!("http://{}{path}", self.addr))
            .header(
                "x-notion-signature",
                notion_api::sign(secret.as_bytes(), body),
            )
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Both sources' first passes, and the work they queued.
    async fn first_sync(&self) {
        let cancel = CancellationToken::new();
        for e in self.sources.all() {
            e.reconcile(PassKind::Full, &cancel).await.unwrap();
        }
        self.settle().await;
    }

    async fn settle(&self) {
        settle_store(&self.sim, &self.store, 60).await;
    }

    /// The live tasks of data source `ds`.
    fn live_in(&self, ds: &str) -> Vec<String> {
        self.sim
            .pages()
            .into_iter()
            .filter(|p| p.data_source_id == ds && !p.in_trash)
            .map(|p| p.id)
            .collect()
    }

    /// Where the mirror differs from the workspace, for the pages of `ds` (which source
    /// `source` mirrors).
    async fn mismatches(&self, ds: &str, source: &str) -> Vec<String> {
        let mut out = Vec::new();
        for p in self
            .sim
            .pages()
            .into_iter()
            .filter(|p| p.data_source_id == ds)
        {
            let Some(r) = self.store.get_page(&id(&p.id)).await.unwrap() else {
                if !p.in_trash {
                    out.push(format!("{} missing", p.id));
                }
                continue;
            };
            if r.source != source
                || r.in_trash != p.in_trash
                || r.status != p.status
                || r.title != p.title
                || (!p.in_trash && r.body_markdown.as_deref() != Some(p.markdown.as_str()))
            {
                out.push(format!(
                    "{}: mirror ({}, {:?}, {:?}, trash {}) vs notion ({:?}, {:?}, trash {})",
                    p.id, r.source, r.title, r.status, r.in_trash, p.title, p.status, p.in_trash
                ));
            }
        }
        out
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
        self.sim.shutdown().await;
    }
}

#[tokio::test]
async fn each_delivery_is_verified_with_its_own_integrations_secret() {
    let two = spawn_two(Setup::Apart).await;
    let ds = two.sim.task_data_source_ids();
    let page = two
        .sim
        .pages()
        .into_iter()
        .find(|p| p.data_source_id == ds[0])
        .unwrap();
    let body = event_json(
        "5c2a1d1e-0000-4000-8000-000000000001",
        "page.properties_updated",
        &page.id,
        "page",
        Some(&ds[0]),
    );
    // Signed with beta's secret, posted to alpha: forged.
    assert_eq!(
        two.post("/webhooks/notion/alpha", &body, two.secret("beta"))
            .await,
        401
    );
    // No such integration; and with several, the unnamed path names none.
    assert_eq!(
        two.post("/webhooks/notion/gamma", &body, two.secret("alpha"))
            .await,
        404
    );
    assert_eq!(
        two.post("/webhooks/notion", &body, two.secret("alpha"))
            .await,
        404
    );
    assert_eq!(two.store.event_count().await.unwrap(), 0);
    assert_eq!(
        two.post("/webhooks/notion/alpha", &body, two.secret("alpha"))
            .await,
        200
    );
    assert_eq!(two.store.event_count().await.unwrap(), 1);
    two.settle().await;
    let row = two.store.get_page(&id(&page.id)).await.unwrap().unwrap();
    assert_eq!(row.source, "tasks");
    let metrics = metrics_text(&two.http, two.addr).await;
    assert!(
        metrics.contains(r#"outcome="bad_signature",integration="alpha"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"outcome="unknown_integration",integration="unknown"} 2"#),
        "{metrics}"
    );
    two.stop().await;
}

#[tokio::test]
async fn the_mirror_and_overdue_marking_are_exact_per_source() {
    let two = spawn_two(Setup::Apart).await;
    let ds = two.sim.task_data_source_ids();
    two.first_sync().await;
    // People edit both databases; each integration's subscription delivers every event,
    // so each endpoint also sees the other source's pages (acknowledged, not queued).
    let mut edited = Vec::new();
    for ds in &ds {
        let pages: Vec<_> = two
            .sim
            .pages()
            .into_iter()
            .filter(|p| &p.data_source_id == ds)
            .take(4)
            .collect();
        two.sim.set_status(&pages[0].id, "In Progress").unwrap();
        two.sim
            .set_title(&pages[1].id, "Renamed by a person")
            .unwrap();
        two.sim
            .edit_body(
                &pages[2].id,
                notion_sim::BodyEdit::AppendParagraph("more".into()),
            )
            .unwrap();
        two.sim.trash(&pages[3].id).unwrap();
        edited.extend(pages.iter().map(|p| p.id.clone()));
    }
    two.settle().await;
    assert_eq!(two.mismatches(&ds[0], "tasks").await, Vec::<String>::new());
    assert_eq!(two.mismatches(&ds[1], "ops").await, Vec::<String>::new());
    // Nothing of the "Other" data source was mirrored: no source claims it.
    let other = two.sim.other_page_ids();
    for p in &other {
        assert!(two.store.get_page(&id(p)).await.unwrap().is_none());
    }

    // Overdue marking by each source's rules, through its own integration: `tasks`
    // counts To Do and In Progress as open, `ops` only To Do. (A task a person moved
    // after it was marked keeps the person's status: not among these.)
    let today = two.sim.now().date_naive();
    let past_due = |p: &notion_sim::SimPage| {
        p.due
            .as_deref()
            .and_then(|d| d.get(..10))
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
            .is_some_and(|d| d < today)
    };
    for (ds, open) in [
        (&ds[0], &["To Do", "In Progress"][..]),
        (&ds[1], &["To Do"][..]),
    ] {
        let pages: Vec<_> = two
            .sim
            .pages()
            .into_iter()
            .filter(|p| &p.data_source_id == ds && !p.in_trash && !edited.contains(&p.id))
            .collect();
        let left: Vec<_> = pages
            .iter()
            .filter(|p| past_due(p) && p.status.as_deref().is_some_and(|s| open.contains(&s)))
            .map(|p| p.id.clone())
            .collect();
        let shown: Vec<_> = pages
            .iter()
            .filter(|p| left.contains(&p.id))
            .map(|p| format!("{} {:?} {:?}", p.id, p.status, p.due))
            .collect();
        assert_eq!(
            shown,
            Vec::<String>::new(),
            "open past-due tasks left in {ds} (today {today})"
        );
        assert!(
            pages.iter().any(|p| p.status.as_deref() == Some("Overdue")),
            "something was marked in {ds}"
        );
    }
    if let Some(in_progress_late) = two.sim.pages().into_iter().find(|p| {
        p.data_source_id == ds[1] && past_due(p) && p.status.as_deref() == Some("In Progress")
    }) {
        // Not open by ops' rules: left alone.
        assert_eq!(in_progress_late.status.as_deref(), Some("In Progress"));
    }
    // Each integration wrote only its own source's tasks.
    let log = two.sim.request_log();
    let patched = |integration: usize| -> Vec<String> {
        log.iter()
            .filter(|r| r.method == "PATCH" && r.integration == Some(integration))
            .map(|r| r.path.trim_start_matches("/v1/pages/").to_owned())
            .collect()
    };
    for (i, ds) in ds.iter().enumerate() {
        for page in patched(i) {
            assert_eq!(
                two.sim.page(&page).unwrap().data_source_id,
                *ds,
                "integration {i} wrote {page}"
            );
        }
    }
    let metrics = metrics_text(&two.http, two.addr).await;
    for integration in ["alpha", "beta"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("webhook_unclaimed_total")
                    && l.contains(&format!("integration=\"{integration}\""))),
            "{metrics}"
        );
    }
    for source in ["tasks", "ops"] {
        assert!(
            metrics.contains(&format!("mirror_pages{{source=\"{source}\"}}")),
            "{metrics}"
        );
    }
    let health: serde_json::Value = two
        .http
        .get(format!("http://{}/healthz", two.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // Sources by name; integrations in order of first use.
    assert_eq!(names, ["ops", "tasks"]);
    assert_eq!(
        health["webhook"]["integrations"][0]["path"],
        "/webhooks/notion/beta"
    );
    two.stop().await;
}

/// Milliseconds from each edit of `pages` (one at a time) to its status in the mirror.
async fn freshness_ms(two: &Two, pages: &[String], status: &str) -> Vec<u128> {
    let mut out = Vec::new();
    for p in pages {
        let started = tokio::time::Instant::now();
        two.sim.set_status(p, status).unwrap();
        poll_until("the edit in the mirror", 30, || async {
            two.store
                .get_page(&id(p))
                .await
                .unwrap()
                .is_some_and(|r| r.status.as_deref() == Some(status))
        })
        .await;
        out.push(started.elapsed().as_millis());
    }
    out.sort_unstable();
    out
}

#[tokio::test]
async fn a_429_storm_on_one_integration_leaves_the_others_freshness_alone() {
    let two = spawn_two(Setup::Apart).await;
    let ds = two.sim.task_data_source_ids();
    two.first_sync().await;
    let (alpha_pages, beta_pages) = (two.live_in(&ds[0]), two.live_in(&ds[1]));
    let calm = freshness_ms(&two, &beta_pages[..5], "Done").await;

    // Alpha's every request is refused 429 (Retry-After 2 s) while people keep editing
    // alpha's pages.
    two.sim.force_errors_for(0, 429, 100_000, Some(2));
    for p in &alpha_pages[..6] {
        two.sim.set_status(p, "Done").unwrap();
    }
    let tasks = two.sources.get("tasks").unwrap().clone();
    poll_until("alpha's pacer pausing", 10, || async {
        tasks.client().pacer().snapshot().paused_for.is_some()
    })
    .await;
    let storm = freshness_ms(&two, &beta_pages[5..10], "In Progress").await;
    let ops = two.sources.get("ops").unwrap();
    let beta = ops.client().pacer().snapshot();
    let alpha = tasks.client().pacer().snapshot();
    println!(
        "beta freshness p50: {} ms calm, {} ms during alpha's 429 storm (alpha: {} rate-limited answers, {} pauses; beta: {}, {})",
        calm[calm.len() / 2],
        storm[storm.len() / 2],
        alpha.rate_limited_total,
        alpha.pauses_total,
        beta.rate_limited_total,
        beta.pauses_total,
    );
    assert!(alpha.rate_limited_total > 0);
    // Beta was never refused nor paused: its budget is its own.
    assert_eq!((beta.rate_limited_total, beta.pauses_total), (0, 0));
    // Alpha's edits wait for the storm to end, then land.
    assert!(!two.mismatches(&ds[0], "tasks").await.is_empty());
    two.sim.clear_forced_errors();
    two.settle().await;
    assert_eq!(two.mismatches(&ds[0], "tasks").await, Vec::<String>::new());
    assert_eq!(two.mismatches(&ds[1], "ops").await, Vec::<String>::new());
    two.stop().await;
}

#[tokio::test]
async fn a_workspace_limit_429_pauses_every_integration_of_the_workspace() {
    let two = spawn_two(Setup::SharedWorkspace).await;
    let ds = two.sim.task_data_source_ids();
    two.first_sync().await;
    // The workspace's shared bucket holds one request per 4 s: alpha's next read meets
    // it (Retry-After: until it refills).
    two.sim.set_workspace_limit(Some(RateLimit {
        per_second: 0.25,
        burst: 1,
    }));
    for page in two.live_in(&ds[0]).iter().take(4) {
        two.sim.set_title(page, "Edited").unwrap();
    }
    let ops = two.sources.get("ops").unwrap().clone();
    let tasks = two.sources.get("tasks").unwrap().clone();
    poll_until("a workspace-limit answer to alpha", 20, || async {
        tasks.client().stats().rate_limited_total > 0
    })
    .await;
    // Only alpha has work (beta's endpoint hears "Tasks" events as unclaimed): beta was
    // paused with it without ever being refused.
    let (a, b) = (
        tasks.client().pacer().snapshot(),
        ops.client().pacer().snapshot(),
    );
    assert!(a.pauses_total > 0, "alpha {a:?}");
    assert_eq!(
        ops.client().stats().rate_limited_total,
        0,
        "beta was refused itself"
    );
    assert!(b.pauses_total > 0, "beta was not paused with alpha: {b:?}");
    two.sim.set_workspace_limit(None);
    two.settle().await;
    assert_eq!(two.mismatches(&ds[0], "tasks").await, Vec::<String>::new());
    two.stop().await;
}

#[tokio::test]
async fn a_page_read_by_the_wrong_source_of_an_integration_is_handed_to_its_own() {
    // Both sources read through alpha; an event that names no data source goes to the
    // integration's first source (`ops`, by name), which reads the page and hands it on.
    let two = spawn_two(Setup::OneIntegration).await;
    let ds = two.sim.task_data_source_ids();
    let page = two
        .sim
        .pages()
        .into_iter()
        .find(|p| p.data_source_id == ds[0] && !p.in_trash)
        .unwrap();
    // One integration: the unnamed path is its endpoint. The first event is handed on;
    // the page now mirrored, the next goes to its own source directly.
    for (n, kind) in [(0xaa, "page.created"), (0xab, "page.content_updated")] {
        let body = event_json(
            &format!("5c2a1d1e-0000-4000-8000-0000000000{n:x}"),
            kind,
            &page.id,
            "page",
            None,
        );
        assert_eq!(
            two.post("/webhooks/notion", &body, two.secret("alpha"))
                .await,
            200
        );
        two.settle().await;
        let row = two.store.get_page(&id(&page.id)).await.unwrap().unwrap();
        assert_eq!(row.source, "tasks");
        assert_eq!(row.body_markdown.as_deref(), Some(page.markdown.as_str()));
        let metrics = metrics_text(&two.http, two.addr).await;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("sync_pages_handed_off_total") && l.ends_with(" 1")),
            "{metrics}"
        );
    }
    two.stop().await;
}

#[tokio::test]
async fn one_sources_backlog_does_not_hold_another_sources_change() {
    // Both sources share alpha's budget; tasks has a backlog of body reads when a person
    // edits a task of ops: ops's own workers take it at once, and its request waits in
    // the shared pacer behind at most the few tasks requests already there, not behind
    // the backlog.
    let two = spawn_two(Setup::OneIntegration).await;
    let ds = two.sim.task_data_source_ids();
    two.first_sync().await;
    two.sim.set_faults(notion_sim::Faults {
        latency: Duration::from_millis(150),
        ..notion_sim::Faults::default()
    });
    let (backlog, single) = (two.live_in(&ds[0]), two.live_in(&ds[1]));
    for p in &backlog {
        two.sim
            .edit_body(p, notion_sim::BodyEdit::AppendParagraph("backlog".into()))
            .unwrap();
    }
    let tasks = two.sources.get("tasks").unwrap().clone();
    poll_until("the backlog queued", 10, || async {
        tasks
            .store()
            .source_queue_stats()
            .await
            .unwrap()
            .queued_interactive
            >= 15
    })
    .await;
    two.sim
        .set_title(&single[0], "Edited while tasks is busy")
        .unwrap();
    poll_until("ops's edit in the mirror", 10, || async {
        two.store
            .get_page(&id(&single[0]))
            .await
            .unwrap()
            .is_some_and(|r| r.title == "Edited while tasks is busy")
    })
    .await;
    let left = tasks.store().source_queue_stats().await.unwrap();
    assert!(
        left.queued_interactive >= 5,
        "ops's change waited for tasks's backlog: {left:?}"
    );
    two.sim.set_faults(notion_sim::Faults::default());
    two.settle().await;
    assert_eq!(two.mismatches(&ds[0], "tasks").await, Vec::<String>::new());
    assert_eq!(two.mismatches(&ds[1], "ops").await, Vec::<String>::new());
    two.stop().await;
}

#[tokio::test]
async fn a_single_source_database_given_named_sources_keeps_its_rows_and_queued_work() {
    // The database of a single-source daemon (every row and job `default`), started with
    // [sources.*]: the rows of each data source are adopted by its source, and the
    // acknowledged work still queued under `default` runs.
    let sim = two_databases().await;
    let ds = sim.task_data_source_ids();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notion-sync.db");
    let pages: Vec<_> = sim
        .pages()
        .into_iter()
        .filter(|p| p.data_source_id == ds[0] && !p.in_trash)
        .take(2)
        .collect();
    let old = Store::open(
        crate::support::store_config(&db),
        std::sync::Arc::new(sync_store::SystemClock),
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    old.upsert_page(&sync_store::PageUpsert {
        id: id(&pages[0].id),
        data_source_id: Some(id(&ds[0])),
        title: pages[0].title.clone(),
        status: pages[0].status.clone(),
        due: None,
        url: String::new(),
        created_time: pages[0].created_time,
        last_edited_time: pages[0].last_edited_time,
        in_trash: false,
        properties: "{}".into(),
        observed_at: now - chrono::TimeDelta::hours(1),
    })
    .await
    .unwrap();
    // A webhook acknowledged before the restart, not yet read.
    let work = sync_engine::PageSyncPayload {
        props: true,
        body: true,
        human: true,
        event_time: None,
    };
    old.enqueue(
        sync_engine::Job::PageSync {
            page: id(&pages[1].id),
            work,
        }
        .to_new_job(sync_store::Lane::Interactive),
    )
    .await
    .unwrap();
    old.close().await;

    let two = spawn_two_on(sim, dir, Setup::Apart).await;
    poll_until(
        "the queued read to run and the row to be adopted",
        20,
        || async {
            let adopted = two
                .store
                .get_page(&id(&pages[0].id))
                .await
                .unwrap()
                .is_some_and(|r| r.source == "tasks");
            let read = two
                .store
                .get_page(&id(&pages[1].id))
                .await
                .unwrap()
                .is_some_and(|r| r.source == "tasks" && r.body_markdown.is_some());
            adopted && read
        },
    )
    .await;
    assert!(two.store.job_sources().await.unwrap().is_empty());
    two.stop().await;
}

#[tokio::test]
async fn a_database_source_leaves_a_data_source_another_source_names_to_it() {
    // ops names the whole "Tasks" database, whose one data source tasks names: tasks
    // mirrors it alone (no pages flipping between the two, no reads by ops).
    let two = spawn_two(Setup::Overlap).await;
    let ds = two.sim.task_data_source_ids();
    let cancel = CancellationToken::new();
    let (tasks, ops) = (
        two.sources.get("tasks").unwrap(),
        two.sources.get("ops").unwrap(),
    );
    tasks.reconcile(PassKind::Full, &cancel).await.unwrap();
    // ops has nothing of its own: its pass says so (and health with it).
    let refused = ops.reconcile(PassKind::Full, &cancel).await.unwrap_err();
    assert!(
        matches!(refused, sync_engine::ReconcileError::NoDataSource),
        "{refused}"
    );
    two.settle().await;
    let page = two.live_in(&ds[0])[0].clone();
    two.sim.set_title(&page, "Edited once").unwrap();
    two.settle().await;
    assert_eq!(two.mismatches(&ds[0], "tasks").await, Vec::<String>::new());
    assert!(ops.data_sources().is_empty(), "{:?}", ops.data_sources());
    // beta read the database once to learn its data sources, and no page.
    let beta: Vec<String> = two
        .sim
        .request_log()
        .iter()
        .filter(|r| r.integration == Some(1))
        .map(|r| format!("{} {}", r.method, r.route))
        .collect();
    assert!(!beta.iter().any(|r| r.contains("/v1/pages")), "{beta:?}");
    assert_eq!(
        beta.iter().filter(|r| r.contains("/v1/databases")).count(),
        1,
        "{beta:?}"
    );
    two.stop().await;
}
