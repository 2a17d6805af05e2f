//! The public edge against hostile traffic, through real sockets on loopback: bounded
//! metric labels, handshake floods, tokens purged once a secret is set, header/body/idle
//! timeouts, the connection cap, the early 413, the shutdown deadline, the lock on the
//! database file, storage probing, rate-limited log lines and replays by timestamp.

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::support::{
    KillOnDrop, RunningApp, event_json, free_port, metrics_text, notion_sync_command, page_event,
    sim_config, start_app, write_daemon_config,
};

const SECRET: &str = "secret_edgeTestSigningKey0123456789abcdef";

/// The daemon in-process on `db` with `secret` (or none) and `extra` config.
async fn app_on(
    sim: &notion_sim::SimHandle,
    db: &std::path::Path,
    secret: Option<&str>,
    extra: &[(&str, &str)],
) -> anyhow::Result<RunningApp> {
    start_app(sim, db, extra, secret, Default::default()).await
}

/// Reads from `stream` until the peer closes it (or `limit` passes); what was read and
/// when it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
            Ok(Ok(0) | Err(_)) => {
                return (
                    String::from_utf8_lossy(&got).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The real binary serving on a free port with no scheduled passes; `server` replaces
/// the `[server]` grace line of the test config (more `[server]` keys).
struct Binary {
    child: KillOnDrop,
    port: u16,
    log: std::path::PathBuf,
    db: std::path::PathBuf,
}

async fn serve_binary(sim: &notion_sim::SimHandle, dir: &std::path::Path, server: &str) -> Binary {
    let port = free_port();
    let db = dir.join("m.db");
    let config = dir.join("c.toml");
    write_daemon_config(
        &config,
        port,
        &db,
        sim,
        "[reconcile]\non_start = false\nschedule = \"\"\nfull_schedule = \"\"\n",
    );
    if !server.is_empty() {
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("shutdown_grace_seconds = 5", server);
        std::fs::write(&config, text).unwrap();
    }
    let log = dir.join("d.log");
    let child = KillOnDrop(
        notion_sync_command(
            &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
            sim.token(),
            SECRET,
            &log,
        )
        .spawn()
        .unwrap(),
    );
    let http = reqwest::Client::new();
    crate::support::poll_until("the daemon", 60, || async {
        crate::support::daemon_health(&http, port).await.is_some()
    })
    .await;
    Binary {
        child,
        port,
        log,
        db,
    }
}

fn handshake(token: &str) -> Vec<u8> {
    format!("{{\"verification_token\":\"{token}\"}}").into_bytes()
}

fn random_token(n: usize) -> String {
    format!("secret_attacker{n:06}xxxxxxxxxxxxxxxxxxxx")
}

/// 1. Invented methods (hyper accepts tokens of tens of kilobytes) never become labels.
#[tokio::test]
async fn invented_methods_do_not_grow_metrics() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = start_app(
        &sim,
        &dir.path().join("m.db"),
        &[],
        SECRET,
        Default::default(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let _ = metrics_text(&http, app.addr).await;
    let before = metrics_text(&http, app.addr).await.len();
    for i in 0..200 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        let method = format!("X{i}{}", "M".repeat(4000));
        let req =
            format!("{method} /anything-{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let (answer, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 "), "{answer:.80}");
    }
    let text = metrics_text(&http, app.addr).await;
    assert!(
        text.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    assert!(
        text.contains(r#"method="other""#) && text.contains(r#"route="unmatched""#),
        "{text}"
    );
    assert!(!text.contains("MMMM"));
    app.stop().await.unwrap();
    sim.shutdown().await;
}

/// 2. A handshake flood can neither evict nor hide the real token, costs no write past
/// the window's first few, and the CLI never recommends "the newest".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_keeps_the_real_token_and_is_refused_cheaply() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let app = app_on(&sim, &db, None, &[]).await.unwrap();
    let real = sim.subscribe(&app.url("/webhooks/notion")).await.unwrap();
    let http = reqwest::Client::new();
    let writes_before = app.store.write_stats().transactions;
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for n in 0..500 {
        let r = app.post(&http, &handshake(&random_token(n)), None).await;
        *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
    }
    let flood = started.elapsed();
    let writes = app.store.write_stats().transactions - writes_before;
    // One real handshake and four of the flood fill the window; the rest get 429.
    let per_window = notion_sync::handshake::PER_WINDOW as usize;
    assert_eq!(
        statuses.get(&200).copied(),
        Some(per_window - 1),
        "{statuses:?}"
    );
    assert_eq!(statuses.get(&429).copied(), Some(500 - (per_window - 1)));
    // At most the window's few, plus the daemon's own background commits (start-up
    // check, store probe); before, each of the 500 cost one.
    assert!(writes < 25, "{writes} commits for the flood");
    let tokens = app.store.verification_tokens().await.unwrap();
    assert_eq!(tokens[0].token, real, "the real token is first and kept");
    assert_eq!(tokens.len(), per_window);
    assert_eq!(
        tokens[0]
            .origin
            .peer
            .as_deref()
            .map(|p| p.starts_with("127.0.0.1:")),
        Some(true)
    );
    eprintln!("500 handshakes in {flood:?}: {statuses:?}, {writes} commits");
    app.stop().await.unwrap();

    // The CLI lists each with its origin and how many arrived near it; never "newest".
    let config = dir.path().join("c.toml");
    write_daemon_config(&config, free_port(), &db, &sim, "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notion-sync"))
        .args(["webhook", "tokens", "--config"])
        .arg(&config)
        .env_clear()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains(&real), "{text}");
    assert!(text.contains("from 127.0.0.1:"), "{text}");
    assert!(text.contains("4 other(s) within 10 min"), "{text}");
    assert!(!text.to_lowercase().contains("newest"), "{text}");
    assert!(
        text.contains("someone else is sending handshakes"),
        "{text}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_notion-sync"))
        .args(["webhook", "tokens", "--clear", "--config"])
        .arg(&config)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 pending verification token(s) deleted")
    );
    sim.shutdown().await;
}

/// 3. Once a secret is configured the database holds no token, and handshakes are
/// refused (403, nothing stored) unless `server.accept_handshakes`.
#[tokio::test]
async fn pending_tokens_are_purged_once_a_secret_is_set() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let app = app_on(&sim, &db, None, &[]).await.unwrap();
    let token = sim.subscribe(&app.url("/webhooks/notion")).await.unwrap();
    assert_eq!(app.store.verification_tokens().await.unwrap().len(), 1);
    app.stop().await.unwrap();

    let app = app_on(&sim, &db, Some(&token), &[]).await.unwrap();
    assert!(app.store.verification_tokens().await.unwrap().is_empty());
    let http = reqwest::Client::new();
    let r = app.post(&http, &handshake(&random_token(1)), None).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("server.accept_handshakes"));
    assert!(app.store.verification_tokens().await.unwrap().is_empty());
    app.stop().await.unwrap();
    if crate::support::on_postgres() {
        // PostgreSQL's files are the server's (dead rows stay until VACUUM).
        return;
    }
    // Not even in a free page of the file users copy.
    let raw = std::fs::read(&db).unwrap();
    let needle = token.as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "the token's bytes are still in the database file"
    );

    let app = app_on(
        &sim,
        &db,
        Some(&token),
        &[("SERVER__ACCEPT_HANDSHAKES", "true")],
    )
    .await
    .unwrap();
    let r = app.post(&http, &handshake(&random_token(2)), None).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.store.verification_tokens().await.unwrap().len(), 1);
    app.stop().await.unwrap();
    sim.shutdown().await;
}

/// 4. Slow headers, idle keep-alive and slow bodies are cut off; a declared oversized
/// body is refused before it is sent; connections over the cap are closed.
#[tokio::test]
async fn slow_idle_and_oversized_requests_are_cut_off() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = start_app(
        &sim,
        &dir.path().join("m.db"),
        &[
            ("SERVER__HEADER_TIMEOUT_SECONDS", "1"),
            ("SERVER__BODY_TIMEOUT_SECONDS", "1"),
            ("SERVER__MAX_CONNECTIONS", "8"),
        ],
        SECRET,
        Default::default(),
    )
    .await
    .unwrap();

    // Slow headers: half a request head, then nothing.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let closed = closed.expect("a half-sent head is cut off");
    assert!(closed < Duration::from_secs(3), "{closed:?}");

    // Idle keep-alive: one complete request, then silence.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 "), "{answer:.60}");
    assert!(closed.expect("an idle connection is closed") < Duration::from_secs(3));

    // Slow body: Content-Length 1000, one byte sent → 408 within the body timeout.
    let mut body = TcpStream::connect(app.addr).await.unwrap();
    body.write_all(
        b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let (answer, closed) = read_until_closed(&mut body, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:.80}");
    assert!(
        closed.is_some_and(|c| c < Duration::from_secs(3)),
        "{closed:?}"
    );

    // Declared too large: 413 at once, without sending the body.
    let mut big = TcpStream::connect(app.addr).await.unwrap();
    big.write_all(
        b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), big.read(&mut buf))
        .await
        .expect("413 before the body")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"));
    assert!(started.elapsed() < Duration::from_secs(1));

    // The cap: 8 open connections; the 9th is closed at once, and a slot frees when
    // one of the 8 goes.
    let mut held = Vec::new();
    for _ in 0..8 {
        let s = TcpStream::connect(app.addr).await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = TcpStream::connect(app.addr).await.unwrap();
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, closed) = read_until_closed(&mut over, Duration::from_secs(2)).await;
    assert!(answer.is_empty() && closed.is_some(), "{answer:.60}");
    drop(held);
    // The held ones are released (closed by us, or by the header timeout).
    let http = reqwest::Client::new();
    crate::support::poll_until("a free connection slot", 5, || async {
        http.get(app.url("/healthz")).send().await.is_ok()
    })
    .await;
    let text = metrics_text(&http, app.addr).await;
    assert!(text.contains("http_connections_refused_total"), "{text}");
    app.stop().await.unwrap();
    sim.shutdown().await;
}

/// 4 (end). A half-sent request cannot hold SIGTERM: the binary exits 0 within the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_grace_period_despite_a_half_sent_request() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Timeouts far longer than the grace period: only the drain deadline can end it.
    let Binary {
        mut child, port, ..
    } = serve_binary(
        &sim,
        dir.path(),
        "shutdown_grace_seconds = 2\nheader_timeout_seconds = 60\nbody_timeout_seconds = 60",
    )
    .await;
    let mut half = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    half.write_all(b"POST /webhooks/notion HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    let mut slow_head = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow_head
        .write_all(b"POST /webhooks/notion HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(4),
        "exit took {took:?} (grace 2 s)"
    );
    eprintln!("SIGTERM → exit 0 in {took:?} with two half-sent requests open");
    drop((half, slow_head));
    sim.shutdown().await;
}

/// 5. The one-instance lock is on the database file, whatever path reaches it.
#[tokio::test]
async fn a_second_daemon_through_a_symlink_or_hard_link_refuses_to_start() {
    if crate::support::sqlite_only("the instance lock on the SQLite file") {
        return;
    }
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let first = app_on(&sim, &db, Some(SECRET), &[]).await.unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let hard = dir.path().join("hard.db");
    std::fs::hard_link(&db, &hard).unwrap();
    for other in [&link, &hard] {
        let err = match app_on(&sim, other, Some(SECRET), &[]).await {
            Ok(_) => panic!("a second daemon started on {}", other.display()),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("another notion-sync serve is running"),
            "{err}"
        );
    }
    // The first one is untouched: it still takes webhooks.
    let http = reqwest::Client::new();
    let body = page_event("5e5e5e5e", 1, &sim.pages()[0].id, &sim.data_source_id());
    let r = first
        .post(
            &http,
            &body,
            Some(&notion_api::sign(SECRET.as_bytes(), &body)),
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    first.stop().await.unwrap();
    // Once it is gone, the link works.
    let again = app_on(&sim, &link, Some(SECRET), &[]).await.unwrap();
    again.stop().await.unwrap();
    sim.shutdown().await;
}

/// 6. Storage that cannot commit reads "failing" (503) without any webhook arriving.
#[tokio::test]
async fn an_unwritable_database_reads_failing_at_start() {
    if crate::support::sqlite_only("file permissions of the SQLite file") {
        return;
    }
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    // Create and close it once, then make it unwritable for everyone (root included).
    app_on(&sim, &db, Some(SECRET), &[])
        .await
        .unwrap()
        .stop()
        .await
        .unwrap();
    // As `chmod 444` for a user that is not root: the file cannot be written.
    let chattr = |flag: &str| {
        std::process::Command::new("chattr")
            .arg(flag)
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success())
    };
    let immutable = chattr("+i");
    let made_read_only = immutable || {
        let mut p = std::fs::metadata(&db).unwrap().permissions();
        p.set_readonly(true);
        std::fs::set_permissions(&db, p).unwrap();
        std::fs::OpenOptions::new().append(true).open(&db).is_err()
    };
    if !made_read_only {
        eprintln!("skipped: cannot make a file read-only here (root without chattr)");
        sim.shutdown().await;
        return;
    }
    let outcome = app_on(&sim, &db, Some(SECRET), &[]).await;
    let unlock = || {
        if immutable {
            chattr("-i");
        }
    };
    match outcome {
        Err(e) => {
            unlock();
            // Refusing to start, naming the store, is a precise answer too.
            let e = format!("{e:#}");
            assert!(e.contains("opening the store"), "{e}");
        }
        Ok(app) => {
            let http = reqwest::Client::new();
            let mut last = serde_json::Value::Null;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let r = http.get(app.url("/healthz")).send().await.unwrap();
                let code = r.status().as_u16();
                last = r.json().await.unwrap();
                if code == 503 && last["status"] == "failing" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            app.stop().await.ok();
            unlock();
            assert_eq!(last["status"], "failing", "{last}");
            eprintln!("health: {}", last["reasons"]);
        }
    }
    sim.shutdown().await;
}

/// 7. Lines anyone can trigger are rate-limited (the counter still counts each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_floods_write_a_bounded_number_of_log_lines() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Binary {
        mut child,
        port,
        log,
        ..
    } = serve_binary(&sim, dir.path(), "").await;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/notion");
    let body = event_json(
        "0b0b0b0b-0000-4000-8000-000000000001",
        "page.created",
        &sim.pages()[0].id,
        "page",
        None,
    );
    for n in 0..300 {
        let req = http.post(&url).body(body.clone());
        let req = match n % 3 {
            0 => req.header("x-notion-signature", "sha256=00"),
            1 => req,
            _ => http.post(&url).body(handshake(&random_token(n))),
        };
        let status = req.send().await.unwrap().status().as_u16();
        assert!([401, 403].contains(&status), "{status}");
    }
    let metrics = metrics_text(&http, format!("127.0.0.1:{port}").parse().unwrap()).await;
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("webhook signature rejected"), 1, "{text}");
    assert_eq!(count("without X-Notion-Signature"), 1);
    assert_eq!(count("handshake refused"), 1);
    assert!(
        metrics.contains(r#"webhook_deliveries_total{type="unknown",outcome="bad_signature",integration="default"} 100"#),
        "{metrics}"
    );
    sim.shutdown().await;
}

/// 8. A captured delivery cannot be replayed once its id is forgotten: signed events
/// older than the retention (minus a margin) are refused and not recorded.
#[tokio::test]
async fn signed_events_older_than_the_replay_window_are_refused() {
    let sim = notion_sim::start(sim_config(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = start_app(
        &sim,
        &dir.path().join("m.db"),
        &[("STORE__EVENT_RETENTION_DAYS", "2")],
        SECRET,
        Default::default(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let page = sim.pages()[0].id.clone();
    let stamped = |id: &str, age: chrono::TimeDelta| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&event_json(id, "page.created", &page, "page", None)).unwrap();
        v["timestamp"] = serde_json::json!((chrono::Utc::now() - age).to_rfc3339());
        serde_json::to_vec(&v).unwrap()
    };
    let sign = |b: &[u8]| notion_api::sign(SECRET.as_bytes(), b);
    let old = stamped(
        "0c0c0c0c-0000-4000-8000-000000000001",
        chrono::TimeDelta::hours(48),
    );
    let r = app.post(&http, &old, Some(&sign(&old))).await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("replay window"));
    assert_eq!(app.store.event_count().await.unwrap(), 0);
    // A day-old retry (Notion retries for about a day) is still taken.
    let retry = stamped(
        "0c0c0c0c-0000-4000-8000-000000000002",
        chrono::TimeDelta::hours(30),
    );
    let r = app.post(&http, &retry, Some(&sign(&retry))).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.store.event_count().await.unwrap(), 1);
    let metrics = metrics_text(&http, app.addr).await;
    assert!(
        metrics.contains(r#"outcome="replay",integration="default"} 1"#),
        "{metrics}"
    );
    app.stop().await.unwrap();
    sim.shutdown().await;
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Every attack above at once, for a bounded time, beside a steady signed load on the
/// daemon binary: memory and /metrics stay bounded, signed ingest stays fast, no
/// acknowledged event is lost, the real token stays listed, SIGTERM exits 0 in time.
/// (The binary is the test build; the closing figures in BENCHMARKS.md are release.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_suite_beside_a_steady_signed_load() {
    const ATTACK: Duration = Duration::from_secs(6);
    let sim = notion_sim::start(sim_config(5)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Binary {
        mut child,
        port,
        log,
        db,
    } = serve_binary(
        &sim,
        dir.path(),
        "shutdown_grace_seconds = 3\naccept_handshakes = true\nheader_timeout_seconds = 2\nbody_timeout_seconds = 2\nmax_body_bytes = 65536",
    )
    .await;
    let pid = child.id();
    let http = reqwest::Client::new();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let url = format!("http://{addr}/webhooks/notion");
    // The real handshake arrives first (the operator created the subscription).
    let real = "secret_theRealOneFromNotion0123456789abcdefghij";
    let r = http.post(&url).body(handshake(real)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rss_before = rss_kib(pid);
    let metrics_before = metrics_text(&http, addr).await.len();

    let stop = CancellationToken::new();
    let mut attackers = tokio::task::JoinSet::new();
    // Invented methods.
    let s = stop.clone();
    attackers.spawn(async move {
        let mut n = 0u64;
        while !s.is_cancelled() {
            if let Ok(mut c) = TcpStream::connect(addr).await {
                let req = format!(
                    "Z{n}{} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    "Q".repeat(8000)
                );
                let _ = c.write_all(req.as_bytes()).await;
                let _ = read_until_closed(&mut c, Duration::from_secs(2)).await;
            }
            n += 1;
        }
        ("invented methods", n)
    });
    // Handshake floods and bad signatures.
    for kind in ["handshakes", "bad signatures", "oversized bodies"] {
        let (s, http, url) = (stop.clone(), reqwest::Client::new(), url.clone());
        attackers.spawn(async move {
            let mut n = 0u64;
            while !s.is_cancelled() {
                let req = match kind {
                    "handshakes" => http.post(&url).body(handshake(&random_token(n as usize))),
                    "bad signatures" => http
                        .post(&url)
                        .header("x-notion-signature", format!("sha256={n:064x}"))
                        .body(vec![b'{'; 512]),
                    _ => http.post(&url).body(vec![b' '; 2 * 1024 * 1024]),
                };
                let _ = req.send().await;
                n += 1;
            }
            (kind, n)
        });
    }
    // Slow and idle connections, reopened as the daemon cuts them off.
    let s = stop.clone();
    attackers.spawn(async move {
        let mut opened = 0u64;
        let mut held: Vec<TcpStream> = Vec::new();
        while !s.is_cancelled() {
            // Drop the ones the daemon closed (header or body timeout), then reopen.
            held.retain(|c| match c.try_read(&mut [0u8; 256]) {
                Ok(0) => false,
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            });
            while held.len() < 150 {
                let Ok(mut c) = TcpStream::connect(addr).await else {
                    break;
                };
                if opened.is_multiple_of(2) {
                    let _ = c
                        .write_all(
                            b"POST /webhooks/notion HTTP/1.1\r\nContent-Length: 100\r\n\r\n{",
                        )
                        .await;
                }
                held.push(c);
                opened += 1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ("slow and idle connections", opened)
    });

    // The steady signed load: one delivery every 10 ms, each for a page of the sim.
    let pages: Vec<String> = sim.pages().into_iter().map(|p| p.id).collect();
    let ds = sim.data_source_id();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut acked = 0u64;
    let mut n = 0usize;
    while started.elapsed() < ATTACK {
        let body = page_event("a77ac4ed", n, &pages[n % pages.len()], &ds);
        let sig = notion_api::sign(SECRET.as_bytes(), &body);
        let t = Instant::now();
        let r = http
            .post(&url)
            .header("x-notion-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        latencies.push(t.elapsed());
        assert_eq!(r.status().as_u16(), 200, "signed delivery {n} refused");
        acked += 1;
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let mut sent = Vec::new();
    while let Some(r) = attackers.join_next().await {
        sent.push(r.unwrap());
    }
    let rss_after = rss_kib(pid);
    let metrics_after = metrics_text(&http, addr).await.len();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "attack suite: {acked} signed deliveries, p50 {:?} p99 {:?}; attacks {sent:?}; RSS {rss_before} → {rss_after} KiB; /metrics {metrics_before} → {metrics_after} bytes",
        p(0.5),
        p(0.99)
    );
    assert!(
        p(0.99) < Duration::from_millis(250),
        "signed p99 {:?}",
        p(0.99)
    );
    assert!(
        metrics_after < metrics_before + 16 * 1024,
        "/metrics {metrics_before} → {metrics_after}"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS {rss_before} → {rss_after} KiB"
    );

    // SIGTERM with attack connections possibly still half-open: exit 0 within the grace.
    let t = Instant::now();
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        t.elapsed()
    );

    // Every acknowledged delivery is in the event log; the real token is still listed.
    let store = sync_store::Store::open_read_only(
        crate::support::store_config(&db),
        std::sync::Arc::new(sync_store::SystemClock),
    )
    .await
    .unwrap();
    assert_eq!(store.event_count().await.unwrap(), acked);
    let tokens = store.verification_tokens().await.unwrap();
    assert_eq!(tokens.first().map(|t| t.token.as_str()), Some(real));
    store.close().await;
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(!text.contains(SECRET), "webhook secret leaked into logs");
    sim.shutdown().await;
}
