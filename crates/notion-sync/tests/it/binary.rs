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
             [store]\nurl = \"sqlite://{}\"\n\
             [notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\nrequests_per_second = 8.0\ntimeout_seconds = 5\n\
             [workers]\nconcurrency = 4\nlease_seconds = 10\n\
             [reconcile]\nschedule = \"\"\nfull_schedule = \"\"\non_start = false\n\
             [log]\nformat = \"json\"\n",
            db.display(),
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

    // At 8 requests/s the backlog takes ~5 s: kill it a second in.
    tokio::time::sleep(Duration::from_millis(1200)).await;
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
        sync_store::StoreConfig::for_path(&db),
        std::sync::Arc::new(sync_store::SystemClock),
    )
    .await
    .unwrap();
    for p in sim.pages() {
        let row = store.get_page(&p.id).await.unwrap().expect("page mirrored");
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
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\nurl = \"sqlite://{}\"\n\
             [notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\n[reconcile]\nschedule = \"\"\nfull_schedule = \"\"\n",
            dir.path().join("m.db").display(),
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
