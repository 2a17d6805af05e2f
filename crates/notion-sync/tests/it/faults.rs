//! The fault matrix against the simulator: 25 % 5xx, hangs past the client timeout,
//! dropped connections, 429 and 529 storms with a long Retry-After, and permanent
//! errors. Every transient fault ends with the mirror exact, no dead job and each
//! overdue task PATCHed once; a forced 400 or 403 ends dead, a page the integration
//! can no longer see (404) does not.

use std::collections::BTreeMap;
use std::time::Duration;

use notion_sim::{Faults, RequestRecord, SimHandle};
use sync_engine::PassKind;
use sync_store::{JobFilter, JobState};
use tokio_util::sync::CancellationToken;

use crate::support::{
    RunningApp, add_waiting_status, event_json, make_overdue_candidate, mirror_mismatches,
    patches_per_page, quick_retries, settle_store, sim_config, start_app, unmarked_candidates,
};

const SECRET: &str = "secret_fault_matrix_webhook_key";

struct Setup {
    sim: SimHandle,
    app: RunningApp,
    _dir: tempfile::TempDir,
}

/// 15 tasks, the daemon with a 1 s request timeout and quick job retries, subscribed,
/// and a baseline full pass so the mirror starts exact.
async fn setup(seed: u64) -> Setup {
    let mut config = sim_config(15);
    config.seed = seed;
    let sim = notion_sim::start(config).await.unwrap();
    add_waiting_status(&sim);
    let dir = tempfile::tempdir().unwrap();
    let app = start_app(
        &sim,
        &dir.path().join("faults.db"),
        &[
            ("NOTION__TIMEOUT_SECONDS", "1"),
            ("WORKERS__CONCURRENCY", "4"),
            ("TASKS__OPEN_STATUSES", "[\"Waiting\"]"),
        ],
        SECRET,
        quick_retries(),
    )
    .await
    .expect("app builds");
    sim.subscribe_with_token(&app.url("/webhooks/notion"), SECRET)
        .await
        .unwrap();
    app.engine
        .reconcile(PassKind::Full, &CancellationToken::new())
        .await
        .expect("baseline pass");
    settle_store(&sim, &app.store, 60).await;
    assert!(mirror_mismatches(&app.store, &sim).await.is_empty());
    Setup {
        sim,
        app,
        _dir: dir,
    }
}

/// What a transient fault did, for the report and the fault-specific assertions.
struct Outcome {
    /// The requests the simulator logged while the fault was on.
    log: Vec<RequestRecord>,
    /// HTTP attempts the client made while the fault was on (retries included).
    client_attempts: u64,
    drained_in: Duration,
}

/// Turns the fault on, makes 40 random edits and three overdue candidates (webhooks),
/// lets the jobs drain and runs a full pass while the fault is still on;
/// turns it off and checks: mirror exact, nothing dead, every candidate PATCHed once.
async fn transient_case(name: &str, seed: u64, inject: impl FnOnce(&SimHandle)) -> Outcome {
    let Setup { sim, app, _dir } = setup(seed).await;
    let before_log = sim.request_log().len();
    let before_attempts = app.engine.client().stats().requests_total;
    let started = tokio::time::Instant::now();
    inject(&sim);

    sim.random_edits(seed, 40);
    // After the random edits, so no person moves a candidate on before the daemon does.
    let candidates: Vec<String> = sim
        .pages()
        .into_iter()
        .filter(|p| !p.in_trash && p.shared)
        .map(|p| p.id)
        .take(3)
        .collect();
    for id in &candidates {
        make_overdue_candidate(&sim, id);
    }
    // The pass's overdue phase may meet the candidates' webhook jobs on the same task.
    // A full pass re-reads every body (none is older than a minute): bulk work under the fault.
    let pass = app
        .engine
        .reconcile(PassKind::Full, &CancellationToken::new())
        .await;
    settle_store(&sim, &app.store, 90).await;
    let drained_in = started.elapsed();
    let log: Vec<RequestRecord> = sim.request_log()[before_log..].to_vec();
    let client_attempts = app.engine.client().stats().requests_total - before_attempts;

    sim.set_faults(Faults::default());
    if pass.is_err() {
        app.engine
            .reconcile(PassKind::Full, &CancellationToken::new())
            .await
            .expect("the pass succeeds once the fault is gone");
    }
    settle_store(&sim, &app.store, 60).await;

    let mismatches = mirror_mismatches(&app.store, &sim).await;
    assert!(mismatches.is_empty(), "{name}: {mismatches:#?}");
    let stats = app.store.queue_stats().await.unwrap();
    let dead = app
        .store
        .list_jobs(JobFilter {
            state: Some(JobState::Dead),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stats.dead, 0,
        "{name}: transient faults killed jobs: {dead:#?}"
    );
    assert_eq!(unmarked_candidates(&sim), Vec::<String>::new(), "{name}");
    let patches = patches_per_page(&sim);
    assert!(
        patches.values().all(|&n| n == 1),
        "{name}: a task was PATCHed twice: {patches:?}"
    );
    assert_eq!(
        patches.len(),
        candidates.len(),
        "{name}: every candidate is written once: {patches:?}"
    );
    for t in app.store.transitions(None).await.unwrap() {
        let n = app.store.transitions(Some(&t.page_id)).await.unwrap().len();
        assert_eq!(n, 1, "{name}: {} has {n} transitions", t.page_id);
    }

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for r in &log {
        *by_status.entry(r.status).or_default() += 1;
    }
    println!(
        "{name}: {} requests logged ({} client attempts) under the fault, by status {by_status:?}; \
         drained under the fault in {:.2} s; pass under the fault {}; {} overdue PATCHes, mirror exact, 0 dead",
        log.len(),
        client_attempts,
        drained_in.as_secs_f64(),
        match &pass {
            Ok(s) => format!(
                "ok ({} pages seen, {} bodies queued)",
                s.pages_seen, s.bodies_queued
            ),
            Err(e) => format!("failed, rerun after ({e})"),
        },
        patches.len(),
    );
    app.stop().await.unwrap();
    sim.shutdown().await;
    Outcome {
        log,
        client_attempts,
        drained_in,
    }
}

#[tokio::test]
async fn a_quarter_of_requests_failing_with_5xx_ends_exact_with_nothing_dead() {
    let out = transient_case("25% 5xx", 101, |sim| {
        sim.set_faults(Faults {
            error_rate: 0.25,
            ..Faults::default()
        });
    })
    .await;
    let errors = out
        .log
        .iter()
        .filter(|r| [500, 502, 503, 504].contains(&r.status))
        .count();
    let share = errors as f64 / out.log.len() as f64;
    println!(
        "25% 5xx: {errors} of {} answers were 5xx ({:.0} %)",
        out.log.len(),
        share * 100.0
    );
    assert!(errors >= 5, "the fault barely fired: {errors}");
    assert!((0.1..0.45).contains(&share), "{share}");
}

#[tokio::test]
async fn requests_hanging_past_the_timeout_are_retried_and_end_exact() {
    let hang_for = Duration::from_secs(3);
    let out = transient_case("hangs", 102, |sim| {
        sim.set_faults(Faults {
            hang_rate: 0.15,
            hang_for,
            ..Faults::default()
        });
    })
    .await;
    // A hung request is one the client gave up on after 1 s: either the simulator never
    // logged it (the connection was closed under it) or it answered after the hang.
    let late = out.log.iter().filter(|r| r.latency >= hang_for).count() as u64;
    let unlogged = out.client_attempts.saturating_sub(out.log.len() as u64);
    println!(
        "hangs: {} client attempts, {} logged by the simulator, {late} answered after the hang, \
         {unlogged} abandoned unanswered",
        out.client_attempts,
        out.log.len()
    );
    assert!(late + unlogged >= 2, "no request hung");
    // Each hang costs the 1 s timeout; nothing waited for the 3 s hang itself per retry.
    assert!(out.drained_in >= Duration::from_secs(1));
}

#[tokio::test]
async fn dropped_connections_are_retried_and_end_exact() {
    let out = transient_case("dropped connections", 103, |sim| {
        sim.set_faults(Faults {
            drop_rate: 0.2,
            ..Faults::default()
        });
    })
    .await;
    let dropped = out.log.iter().filter(|r| r.status == 0).count();
    println!(
        "dropped connections: {dropped} of {} requests",
        out.log.len()
    );
    assert!(dropped >= 3, "the fault barely fired: {dropped}");
}

/// Every `status` answer at time t must be followed by silence until t + `pause`: only
/// requests already on the wire (arriving within 100 ms) may come in between.
fn assert_paused(name: &str, log: &[RequestRecord], status: u16, pause: Duration) -> usize {
    let limited: Vec<&RequestRecord> = log.iter().filter(|r| r.status == status).collect();
    assert!(!limited.is_empty(), "{name}: no {status} answer");
    let on_the_wire = Duration::from_millis(100);
    for l in &limited {
        let during: Vec<_> = log
            .iter()
            .filter(|r| r.elapsed > l.elapsed && r.elapsed < l.elapsed + pause)
            .collect();
        for r in &during {
            assert!(
                r.elapsed <= l.elapsed + on_the_wire,
                "{name}: {} {} arrived {:?} after a {status} with Retry-After {pause:?}",
                r.method,
                r.route,
                r.elapsed - l.elapsed
            );
        }
    }
    let first = limited[0].elapsed;
    let last = limited[limited.len() - 1].elapsed;
    let resumed = log
        .iter()
        .filter(|r| r.elapsed > last + on_the_wire)
        .map(|r| r.elapsed)
        .min()
        .expect("requests resumed");
    println!(
        "{name}: {} answers {status}; requests stopped from the first at {:.2} s until {:.2} s ({:.2} s of silence after the last)",
        limited.len(),
        first.as_secs_f64(),
        resumed.as_secs_f64(),
        (resumed - last).as_secs_f64()
    );
    assert!(
        resumed - last >= pause,
        "{name}: resumed after {:?}",
        resumed - last
    );
    limited.len()
}

#[tokio::test]
async fn a_429_storm_with_a_long_retry_after_stops_every_request_then_ends_exact() {
    let out = transient_case("429 storm", 104, |sim| {
        sim.force_errors(429, 3, Some(2));
    })
    .await;
    let n = assert_paused("429 storm", &out.log, 429, Duration::from_secs(2));
    assert_eq!(n, 3);
    assert!(out.drained_in >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_529_overload_with_retry_after_stops_every_request_then_ends_exact() {
    let out = transient_case("529 overload", 105, |sim| {
        sim.force_errors(529, 2, Some(2));
    })
    .await;
    let n = assert_paused("529 overload", &out.log, 529, Duration::from_secs(2));
    assert_eq!(n, 2);
}

/// One webhook event for `page`, answered 200.
async fn deliver(sim: &SimHandle, app: &RunningApp, http: &reqwest::Client, n: u32, page: &str) {
    let body = event_json(
        &format!("9e9e9e9e-0000-4000-8000-{n:012}"),
        "page.properties_updated",
        page,
        "page",
        Some(&sim.data_source_id()),
    );
    let sig = notion_api::sign(SECRET.as_bytes(), &body);
    assert_eq!(
        app.post(http, &body, Some(&sig)).await.status().as_u16(),
        200
    );
}

async fn dead_jobs(app: &RunningApp) -> Vec<sync_store::JobRow> {
    app.store
        .list_jobs(JobFilter {
            state: Some(JobState::Dead),
            ..JobFilter::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn permanent_errors_go_dead_at_once_and_an_invisible_page_does_not() {
    let Setup { sim, app, _dir } = setup(106).await;
    let http = reqwest::Client::new();
    let pages: Vec<String> = sim
        .pages()
        .into_iter()
        .filter(|p| !p.in_trash)
        .map(|p| p.id)
        .collect();

    // A forced 403 and a forced 400: one request each, no retry, straight to dead.
    for (n, (status, page)) in [(403u16, &pages[0]), (400, &pages[1])]
        .into_iter()
        .enumerate()
    {
        sim.set_title(page, &format!("Changed before a {status}"))
            .unwrap();
        settle_store(&sim, &app.store, 30).await;
        sim.set_silent(true);
        sim.set_title(page, &format!("Changed silently before a {status}"))
            .unwrap();
        sim.set_silent(false);
        sim.clear_request_log();
        sim.force_errors(status, 1, None);
        deliver(&sim, &app, &http, n as u32, page).await;
        settle_store(&sim, &app.store, 30).await;
        let dead = dead_jobs(&app).await;
        assert_eq!(dead.len(), n + 1, "{status}: {dead:#?}");
        let job = dead
            .iter()
            .find(|j| j.key == format!("page:{page}"))
            .unwrap();
        assert_eq!(job.attempts, 1, "{status}: retried a permanent error");
        let error = job.last_error.as_deref().unwrap_or_default();
        assert!(error.contains(&status.to_string()), "{status}: {error}");
        let log = sim.request_log();
        assert_eq!(log.len(), 1, "{status}: {log:#?}");
        println!("forced {status}: 1 request, job dead after 1 attempt: {error}");
    }

    // A page that is no longer shared answers 404: the mirror marks it gone, nothing dies.
    let hidden = &pages[2];
    sim.unshare(hidden).unwrap();
    deliver(&sim, &app, &http, 10, hidden).await;
    settle_store(&sim, &app.store, 30).await;
    assert_eq!(dead_jobs(&app).await.len(), 2);
    let row = app
        .store
        .get_page(&crate::support::id(hidden))
        .await
        .unwrap()
        .unwrap();
    assert!(row.in_trash, "an unshared page is gone from the mirror");

    // Once the cause is fixed, `jobs retry-dead` repairs both.
    assert_eq!(app.store.retry_dead().await.unwrap(), 2);
    app.engine.wake_workers();
    settle_store(&sim, &app.store, 30).await;
    assert!(dead_jobs(&app).await.is_empty());
    let mismatches = mirror_mismatches(&app.store, &sim).await;
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    app.stop().await.unwrap();
    sim.shutdown().await;
}

/// Regression test for a self-deadlock in sync-engine (`MarkGuard::take`): on the
/// `Busy` path a guard was built and dropped while the `marking` mutex was still held,
/// and its `Drop` locked it again. It fired whenever an overdue pass and a page-sync job
/// evaluated the same task at once.
#[test]
fn an_overdue_pass_meeting_a_page_sync_on_the_same_task_does_not_deadlock() {
    // The daemon runs on its own thread: deadlocked runtime threads cannot stop the
    // main thread from noticing.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Setup { sim, app, _dir } = setup(105).await;
            for round in 0..5u64 {
                sim.random_edits(round, 10);
                let fresh: Vec<String> = sim
                    .pages()
                    .into_iter()
                    .filter(|p| !p.in_trash && p.status.as_deref() != Some("Overdue"))
                    .map(|p| p.id)
                    .take(3)
                    .collect();
                for id in &fresh {
                    make_overdue_candidate(&sim, id);
                }
                // The webhook jobs for the candidates and the pass's overdue phase meet.
                let _ = app
                    .engine
                    .reconcile(PassKind::Incremental, &CancellationToken::new())
                    .await;
                settle_store(&sim, &app.store, 120).await;
            }
            app.stop().await.unwrap();
            sim.shutdown().await;
        });
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(60)).is_ok(),
        "overdue writes deadlocked (MarkGuard::take)"
    );
}
