//! The real `notion-sync` binary: killed with SIGKILL mid-backlog and restarted, it
//! ends with every acknowledged change in the mirror; no secret reaches its logs.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::sim_config;

const SECRET: &str = "secret_binary_test_webhook_key";

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    /// A failing test must not leave the daemon running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &std::path::Path, token: &str, log: std::path::PathBuf) -> Daemon {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_notion-sync"))
        .args(["serve", "--config"])
        .arg(config)
        .env_clear()
        .env("NOTION_TOKEN", token)
        .env("NOTION_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("binary starts");
    Daemon { child, log }
}

async fn health(http: &reqwest::Client, port: u16) -> Option<serde_json::Value> {
    let r = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

async fn wait_for<F, Fut>(what: &str, secs: u64, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigkill_mid_backlog_loses_no_acknowledged_change_and_logs_no_secret() {
    let sim = notion_sim::start(sim_config(40)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = dir.path().join("mirror.db");
    let config = dir.path().join("notion-sync.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_seconds = 2\n\
             [store]\nurl = \"{}\"\n\
             [notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\nrequests_per_second = 8.0\ntimeout_seconds = 5\n\
             [workers]\nconcurrency = 4\nlease_seconds = 10\n\
             [reconcile]\nschedule = \"\"\nfull_schedule = \"\"\non_start = false\n\
             [log]\nformat = \"json\"\n",
            crate::support::store_url(&db),
            sim.base_url(),
            sim.data_source_id()
        ),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let log = dir.path().join("daemon.log");
    let mut daemon = start(&config, sim.token(), log.clone());
    wait_for("the daemon to answer /healthz", 60, || async {
        health(&http, port).await.is_some()
    })
    .await;
    sim.subscribe_with_token(&format!("http://127.0.0.1:{port}/webhooks/notion"), SECRET)
        .await
        .unwrap();

    // 40 changes, each acknowledged by the daemon before the simulator counts it.
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    for (i, id) in ids.iter().enumerate() {
        sim.set_title(id, &format!("Edited before the crash {i}"))
            .unwrap();
    }
    sim.webhooks_idle().await;
    let acked = sim.webhook_stats().deliveries_ok;
    assert!(acked >= 40, "{acked} deliveries acknowledged");
    // A bad signature on the way, to exercise the error path's logging.
    let r = http
        .post(format!("http://127.0.0.1:{port}/webhooks/notion"))
        .header("x-notion-signature", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // At 8 requests/s the backlog takes ~5 s: kill it once part of it is done.
    let queued = |h: &serde_json::Value| h["queue"]["queued"].as_u64().unwrap_or(0);
    let backlog = queued(&health(&http, port).await.unwrap());
    wait_for(
        "the daemon to work through part of the backlog",
        30,
        || async {
            health(&http, port)
                .await
                .is_some_and(|h| queued(&h) + 2 <= backlog)
        },
    )
    .await;
    let before = health(&http, port).await.unwrap();
    daemon.child.kill().unwrap(); // SIGKILL
    daemon.child.wait().unwrap();
    println!("killed with queue {}", before["queue"]);
    assert!(
        before["queue"]["queued"].as_u64().unwrap() > 0,
        "killed mid-backlog"
    );

    let mut daemon = start(&config, sim.token(), log.clone());
    wait_for("the backlog to drain after the restart", 90, || async {
        health(&http, port)
            .await
            .is_some_and(|h| h["queue"]["queued"] == 0 && h["queue"]["running"] == 0)
    })
    .await;
    let h = health(&http, port).await.unwrap();
    assert_eq!(h["queue"]["dead"], 0);

    // Every acknowledged change is in the mirror (read the file like a user would).
    let store = sync_store::Store::open(
        crate::support::store_config(&db),
        std::sync::Arc::new(sync_store::SystemClock),
    )
    .await
    .unwrap();
    for p in sim.pages() {
        let row = store
            .get_page(&crate::support::id(&p.id))
            .await
            .unwrap()
            .expect("page mirrored");
        assert_eq!(row.title, p.title);
    }
    store.close().await;

    // SIGTERM: graceful exit 0.
    Command::new("kill")
        .arg(daemon.child.id().to_string())
        .status()
        .unwrap();
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let mut text = String::new();
    std::fs::File::open(&daemon.log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("notion-sync serving"));
    assert!(!text.contains(SECRET), "webhook secret leaked into logs");
    assert!(!text.contains(sim.token()), "Notion token leaked into logs");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_token_is_reported_without_being_logged() {
    let sim = notion_sim::start(sim_config(2)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\nurl = \"{}\"\n\
             [notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\n[reconcile]\nschedule = \"\"\nfull_schedule = \"\"\n",
            crate::support::store_url(&dir.path().join("m.db")),
            sim.base_url(),
            sim.data_source_id()
        ),
    )
    .unwrap();
    let wrong = "ntn_this_token_is_wrong_12345";
    let log = dir.path().join("daemon.log");
    let http = reqwest::Client::new();
    let mut daemon = start(&config, wrong, log.clone());
    wait_for("health to report the token", 60, || async {
        health(&http, port)
            .await
            .is_some_and(|h| h["status"] == "failing")
    })
    .await;
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("401"), "the failure is logged");
    assert!(!text.contains(wrong), "token leaked into logs");
    assert!(!text.contains(SECRET));
    sim.shutdown().await;
}

fn run_cli(args: &[&str], config: &std::path::Path, token: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_notion-sync"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("NOTION_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// The CLI runs as a blocking child process while the simulator answers it from
// this runtime: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_reconcile_migrate_jobs_and_tokens() {
    let sim = notion_sim::start(sim_config(30)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n[notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\nrequests_per_second = 50.0\n",
            crate::support::store_url(&dir.path().join("m.db")),
            sim.base_url(),
            sim.data_source_id()
        ),
    )
    .unwrap();
    let (ok, out, err) = run_cli(&["migrate"], &config, sim.token());
    assert!(ok, "{err}");
    assert!(out.starts_with("migrations applied: "), "{out}");

    let (ok, out, err) = run_cli(&["reconcile"], &config, sim.token());
    assert!(ok, "{out}\n{err}");
    // The first pass is a full scan; its bodies were drained before the summary.
    assert!(
        out.contains("full pass: 30 pages seen, 30 updated, 30 bodies queued"),
        "{out}"
    );
    assert!(out.contains("queue after drain: 0 queued, 0 dead"), "{out}");
    assert!(out.contains("\nwatermark: "), "{out}");
    assert_eq!(sim.count_requests("GET", "/v1/pages/{id}/markdown"), 30);

    let (ok, out, _) = run_cli(&["reconcile", "--full"], &config, sim.token());
    assert!(ok);
    assert!(out.starts_with("full pass: 30 pages seen"), "{out}");

    let (ok, out, _) = run_cli(&["jobs", "list"], &config, sim.token());
    assert!(ok);
    assert!(out.contains("-- 0 shown; queued 0"), "{out}");
    let (ok, _, err) = run_cli(&["jobs", "retry", "4242"], &config, sim.token());
    assert!(!ok);
    assert!(err.contains("job 4242 not found"), "{err}");
    let (ok, out, _) = run_cli(&["webhook", "tokens"], &config, sim.token());
    assert!(ok);
    assert!(
        out.starts_with("No verification token received yet."),
        "{out}"
    );

    // A config error is one line naming the key.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[tasks]\ntimezone = \"Mars/Base\"\n",
    )
    .unwrap();
    let (ok, _, err) = run_cli(&["migrate"], &dir.path().join("bad.toml"), sim.token());
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: config key `tasks.timezone` = \"Mars/Base\": must be an IANA time zone such as \"UTC\" or \"Europe/Berlin\""
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_database_refuses_to_start() {
    if crate::support::sqlite_only(
        "one daemon per SQLite file; replicas share PostgreSQL by design",
    ) {
        return;
    }
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\nurl = \"{}\"\n[notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\n[reconcile]\non_start = false\n",
            crate::support::store_url(&dir.path().join("m.db")),
            sim.base_url(),
            sim.data_source_id()
        ),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let mut first = start(&config, sim.token(), dir.path().join("first.log"));
    wait_for("the first daemon", 60, || async {
        health(&http, port).await.is_some()
    })
    .await;
    let (ok, _, err) = run_cli(&["serve"], &config, sim.token());
    assert!(!ok);
    assert!(
        err.contains("another notion-sync serve is running on"),
        "{err}"
    );
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    sim.shutdown().await;
}
