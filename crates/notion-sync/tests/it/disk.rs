//! A full disk and a read-only database: webhooks get 503 (Notion redelivers), nothing
//! acknowledged is lost, nothing refused is half-recorded, and the service resumes when
//! space (or write access) returns.
//!
//! "Recorded" is checked through the public surface: re-delivering an event the daemon
//! recorded answers `duplicate`; re-delivering one it refused answers `queued`.

use std::future::IntoFuture;
use std::path::Path;
use std::sync::Arc;

use notion_sim::SimHandle;
use notion_sync::BuildOptions;
use secrecy::SecretString;
use sync_store::{Store, StoreConfig, SystemClock};

use crate::support::{
    RunningApp, daemon_health, free_port, mirror_mismatches, notion_sync_command, page_event,
    poll_until, settle_store, sim_config, start_app, test_config, write_daemon_config,
};

const SECRET: &str = "secret_disk_test_webhook_key";

/// Pages of 4 KiB the database may grow to: the schema takes about 25.
const MAX_PAGES: u64 = 60;

/// A simulator whose every task was renamed silently: the mirror can only learn the new
/// titles from the events the test delivers.
async fn renamed_sim(pages: usize, seed: u64) -> SimHandle {
    let mut config = sim_config(pages);
    config.seed = seed;
    let sim = notion_sim::start(config).await.unwrap();
    for p in sim.pages() {
        sim.set_title(&p.id, &format!("{} (renamed)", p.title))
            .unwrap();
    }
    sim
}

/// Status and `outcome` of one signed delivery.
async fn deliver(app: &RunningApp, http: &reqwest::Client, body: &[u8]) -> (u16, String) {
    let sig = notion_api::sign(SECRET.as_bytes(), body);
    let r = app.post(http, body, Some(&sig)).await;
    let status = r.status().as_u16();
    let json: serde_json::Value = r.json().await.unwrap_or_default();
    let said = json["outcome"]
        .as_str()
        .or(json["error"].as_str())
        .unwrap_or_default()
        .to_owned();
    (status, said)
}

fn limited(pages: u64) -> BuildOptions {
    BuildOptions {
        store: Some(Arc::new(move |c: &mut StoreConfig| {
            c.max_page_count = Some(pages);
        })),
        ..BuildOptions::default()
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_loses_no_acknowledged_event_and_recovers_when_space_returns() {
    if crate::support::sqlite_only("a full disk is simulated with SQLite's max_page_count") {
        return;
    }
    let sim = renamed_sim(12, 21).await;
    let ds = sim.data_source_id();
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("full.db");
    let http = reqwest::Client::new();
    let app = start_app(&sim, &db, &[], SECRET, limited(MAX_PAGES))
        .await
        .expect("app builds");

    // Deliveries in concurrent groups of 8 (they share group commits) until the database
    // is full, then 40 more.
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let mut refused: Vec<Vec<u8>> = Vec::new();
    let mut n = 0;
    let mut after_full = 0;
    while after_full < 40 {
        assert!(n < 20_000, "the database never filled up");
        let bodies: Vec<Vec<u8>> = (n..n + 8)
            .map(|i| page_event("d15cf011", i, &ids[i % ids.len()], &ds))
            .collect();
        n += 8;
        let answers =
            futures::future::join_all(bodies.iter().map(|b| deliver(&app, &http, b))).await;
        for (body, (status, said)) in bodies.into_iter().zip(answers) {
            match status {
                200 => {
                    assert_eq!(said, "queued");
                    acked.push(body);
                }
                503 => {
                    // 5xx bodies carry no internals (no path, no SQLite message).
                    assert_eq!(said, "storage unavailable, retry later");
                    refused.push(body);
                }
                other => panic!("delivery answered {other}: {said}"),
            }
        }
        if !refused.is_empty() {
            after_full += 8;
        }
    }
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    let health_status = health.status().as_u16();
    let health: serde_json::Value = health.json().await.unwrap();
    println!(
        "disk full at max_page_count {MAX_PAGES}: {} deliveries, {} acknowledged (200), {} refused (503); \
         /healthz while full: {health_status} {} {:?}",
        n,
        acked.len(),
        refused.len(),
        health["status"],
        health["reasons"]
    );
    assert_eq!(health_status, 503, "{health}");
    assert_eq!(health["status"], "failing");
    assert!(
        health["reasons"]
            .to_string()
            .contains("storage could not commit"),
        "{health}"
    );
    assert!(!acked.is_empty());
    // Every acknowledged event and only those are in the event log (the file is new).
    assert_eq!(app.store.event_count().await.unwrap(), acked.len() as u64);

    // Space returns: the same file, opened without the limit.
    app.stop()
        .await
        .expect("a full disk does not break shutdown");
    let app = start_app(&sim, &db, &[], SECRET, BuildOptions::default())
        .await
        .expect("app builds on the full file");
    for body in &refused {
        // Notion redelivers: nothing of a refused delivery had been recorded.
        assert_eq!(deliver(&app, &http, body).await, (200, "queued".to_owned()));
    }
    for body in &acked {
        assert_eq!(
            deliver(&app, &http, body).await,
            (200, "duplicate".to_owned())
        );
    }
    assert_eq!(
        app.store.event_count().await.unwrap(),
        (acked.len() + refused.len()) as u64
    );
    settle_store(&sim, &app.store, 60).await;
    let stats = app.store.queue_stats().await.unwrap();
    assert_eq!(stats.dead, 0, "{stats:?}");
    let mismatches = mirror_mismatches(&app.store, &sim).await;
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    println!(
        "after space returned: {} refused deliveries accepted on redelivery, {} acknowledged ones answered duplicate, mirror exact",
        refused.len(),
        acked.len()
    );
    app.stop().await.unwrap();
    sim.shutdown().await;
}

/// The daemon's HTTP layer over a store SQLite opened read-only (`Store::open_read_only`,
/// what a read-only file or volume amounts to), then the normal daemon on the same file.
#[tokio::test]
async fn a_read_only_store_answers_503_records_nothing_and_the_file_serves_again_read_write() {
    let sim = renamed_sim(6, 22).await;
    let ds = sim.data_source_id();
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ro.db");
    let http = reqwest::Client::new();

    let app = start_app(&sim, &db, &[], SECRET, BuildOptions::default())
        .await
        .unwrap();
    for (i, id) in ids.iter().enumerate().take(3) {
        assert_eq!(
            deliver(&app, &http, &page_event("0ead0417", i, id, &ds))
                .await
                .0,
            200
        );
    }
    settle_store(&sim, &app.store, 30).await;
    app.stop().await.unwrap();

    // Read-only: the same router, state and engine as the daemon, over a read-only store.
    let config = test_config(&sim, &db, &[]);
    let secrets = notion_sync::Secrets {
        notion_token: Some(SecretString::from(sim.token().to_owned())),
        ..notion_sync::Secrets::default()
    };
    let store = Store::open_read_only(crate::support::store_config(&db), Arc::new(SystemClock))
        .await
        .unwrap();
    let (sources, _) =
        notion_sync::wiring::build_sources(&config, &secrets, store.clone()).unwrap();
    let state = notion_sync::state::AppState::new(
        sources,
        vec![notion_sync::state::Endpoint {
            integration: "default".into(),
            secret: notion_sync::state::SecretSlot::new(Some(SecretString::from(SECRET))),
        }],
        notion_sync::telemetry::metrics_handle(),
        &config.server,
        config.store.event_retention,
        Arc::new(notion_sync::replica::Replica::new(
            "test".into(),
            store.clone(),
            config.replicas,
            chrono::Utc::now(),
        )),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, notion_sync::http::router(state))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let mut refused = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let body = page_event("0ead0417", 100 + i, id, &ds);
        let r = http
            .post(format!("http://{addr}/webhooks/notion"))
            .header(
                "x-notion-signature",
                notion_api::sign(SECRET.as_bytes(), &body),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 503);
        refused.push(body);
    }
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    let health_status = health.status().as_u16();
    let health: serde_json::Value = health.json().await.unwrap();
    println!(
        "read-only store: {} deliveries answered 503; /healthz {health_status} {} {:?}",
        refused.len(),
        health["status"],
        health["reasons"]
    );
    assert_eq!(health_status, 503, "{health}");
    assert!(
        health["reasons"]
            .to_string()
            .contains("storage could not commit"),
        "{health}"
    );
    assert_eq!(store.event_count().await.unwrap(), 3, "nothing recorded");
    stop.cancel();
    server.await.unwrap().unwrap();
    store.close().await;

    // Write access returns: redeliveries are accepted, the backlog drains.
    let app = start_app(&sim, &db, &[], SECRET, BuildOptions::default())
        .await
        .unwrap();
    for body in &refused {
        assert_eq!(deliver(&app, &http, body).await, (200, "queued".to_owned()));
    }
    settle_store(&sim, &app.store, 30).await;
    assert_eq!(app.store.event_count().await.unwrap(), 3 + ids.len() as u64);
    let mismatches = mirror_mismatches(&app.store, &sim).await;
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    app.stop().await.unwrap();
    sim.shutdown().await;
}

/// Whether this process may make a private mount namespace with a read-only bind mount
/// (root with CAP_SYS_ADMIN and util-linux `unshare`; not in most CI containers).
fn can_bind_read_only(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    let ok = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind -o ro \"$0\" \"$0\" && ! (echo y > \"$0\") 2>/dev/null")
        .arg(&probe)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok && std::fs::read(&probe).unwrap() == b"x"
}

/// The real binary on a database file that the OS mounts read-only (a bind mount in a
/// private mount namespace), then on the same file read-write again.
#[tokio::test]
async fn the_binary_on_a_read_only_mounted_database_answers_503_and_recovers() {
    if crate::support::sqlite_only("a read-only mount of the database file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    if !can_bind_read_only(dir.path()) {
        println!(
            "SKIP: cannot bind-mount read-only here (needs root with CAP_SYS_ADMIN and unshare)"
        );
        return;
    }
    let sim = renamed_sim(5, 23).await;
    let ds = sim.data_source_id();
    let ids: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let db = dir.path().join("mounted.db");
    let config = dir.path().join("notion-sync.toml");
    let log = dir.path().join("daemon.log");
    let port = free_port();
    write_daemon_config(
        &config,
        port,
        &db,
        &sim,
        "[reconcile]\nschedule = \"\"\nfull_schedule = \"\"\non_start = false\n",
    );
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("http://127.0.0.1:{port}/webhooks/notion"))
                .header(
                    "x-notion-signature",
                    notion_api::sign(SECRET.as_bytes(), &body),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    let serve = [
        std::ffi::OsStr::new("serve"),
        "--config".as_ref(),
        config.as_os_str(),
    ];

    // 1. Normal run: two events recorded, then SIGTERM.
    let mut daemon = notion_sync_command(&serve, sim.token(), SECRET, &log)
        .spawn()
        .unwrap();
    poll_until("the daemon to answer", 60, || async {
        daemon_health(&http, port).await.is_some()
    })
    .await;
    for (i, id) in ids.iter().enumerate().take(2) {
        assert_eq!(post(page_event("0b0b0b0b", i, id, &ds)).await, 200);
    }
    terminate(&mut daemon);

    // 2. The database file bind-mounted read-only in a private mount namespace.
    let cmd = notion_sync_command(&serve, sim.token(), SECRET, &log);
    let mut wrapped = std::process::Command::new("unshare");
    wrapped
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind -o ro \"$0\" \"$0\" && exec \"$@\"")
        .arg(&db)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
    let mut daemon = wrapped.spawn().unwrap();
    poll_until("the daemon on the read-only file to answer", 60, || async {
        daemon_health(&http, port).await.is_some()
    })
    .await;
    let mut refused = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let body = page_event("0b0b0b0b", 100 + i, id, &ds);
        assert_eq!(post(body.clone()).await, 503);
        refused.push(body);
    }
    let health = daemon_health(&http, port).await.unwrap();
    println!(
        "read-only bind mount: {} deliveries answered 503; /healthz status {} {:?}",
        refused.len(),
        health["status"],
        health["reasons"]
    );
    assert_eq!(health["status"], "failing", "{health}");
    terminate(&mut daemon);

    // 3. Read-write again: the refused deliveries are accepted, the backlog drains.
    let mut daemon = notion_sync_command(&serve, sim.token(), SECRET, &log)
        .spawn()
        .unwrap();
    poll_until("the daemon to answer again", 60, || async {
        daemon_health(&http, port).await.is_some()
    })
    .await;
    for body in refused {
        assert_eq!(post(body).await, 200);
    }
    poll_until("the backlog to drain", 60, || async {
        daemon_health(&http, port).await.is_some_and(|h| {
            h["queue"]["queued"] == 0 && h["queue"]["running"] == 0 && h["queue"]["dead"] == 0
        })
    })
    .await;
    terminate(&mut daemon);
    let store = Store::open(crate::support::store_config(&db), Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(store.event_count().await.unwrap(), 2 + ids.len() as u64);
    let mismatches = mirror_mismatches(&store, &sim).await;
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    store.close().await;
    sim.shutdown().await;
}

/// SIGTERM and wait for a clean exit.
fn terminate(child: &mut std::process::Child) {
    let status = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}
