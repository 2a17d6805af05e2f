//! Several replicas of the real binary on one PostgreSQL database, behind a load
//! balancer (`balancer.rs`). Chaos: three replicas under a storm of deliveries and silent
//! edits, SIGKILLed and restarted at random (the leader among them): the mirror ends
//! exact, every overdue task is PATCHed once, nothing is stuck, a new leader takes over
//! within the lease, and the replicas together keep to the integration's rate. A rolling
//! restart of two replicas under a steady webhook load: every delivery answered 200.
//! Both need PostgreSQL (`NOTION_SYNC_TEST_BACKEND=postgres`): replicas cannot share a
//! SQLite file.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notion_sim::SimHandle;
use sync_store::{Store, SystemClock};

use crate::balancer::{Balancer, Routing};
use crate::chaos::{keep_for_inspection, print_lines_about, storm};
use crate::support::{
    KillOnDrop, Rng, add_waiting_status, daemon_health, free_port, mirror_mismatches,
    notion_sync_command, page_event, patches_per_page, poll_until, sim_config, store_url,
    unmarked_candidates,
};

const SECRET: &str = "secret_replicas_webhook_key";
/// The integration's budget; the simulator enforces the same.
const RATE: f64 = 10.0;
/// The leader lease of the chaos run.
const LEASE_SECS: u64 = 3;

fn needs_postgres() -> bool {
    pg_scratch::postgres_only("replicas share a PostgreSQL database")
}

/// A replica's configuration file: `port`, the shared database of `db`, `extra` appended.
fn write_config(
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
             [notion]\napi_url = \"{}\"\ndata_source_id = \"{}\"\nrequests_per_second = {RATE}\ntimeout_seconds = 5\n\
             [workers]\nconcurrency = 4\nlease_seconds = 10\n\
             [replicas]\nleader_lease_seconds = {LEASE_SECS}\n\
             [log]\nformat = \"json\"\n{extra}",
            store_url(db),
            sim.base_url(),
            sim.data_source_id()
        ),
    )
    .unwrap();
}

struct Replicas {
    ports: Vec<u16>,
    configs: Vec<std::path::PathBuf>,
    logs: Vec<std::path::PathBuf>,
    procs: Vec<Option<KillOnDrop>>,
}

impl Replicas {
    fn new(
        dir: &std::path::Path,
        n: usize,
        db: &std::path::Path,
        sim: &SimHandle,
        extra: &str,
    ) -> Replicas {
        let mut r = Replicas {
            ports: Vec::new(),
            configs: Vec::new(),
            logs: Vec::new(),
            procs: Vec::new(),
        };
        for i in 0..n {
            let port = free_port();
            let config = dir.join(format!("replica-{i}.toml"));
            write_config(&config, port, db, sim, extra);
            r.ports.push(port);
            r.configs.push(config);
            r.logs.push(dir.join(format!("replica-{i}.log")));
            r.procs.push(None);
        }
        r
    }

    fn command(
        &self,
        args: &[&OsStr],
        sim: &SimHandle,
        log: &std::path::Path,
    ) -> std::process::Command {
        notion_sync_command(args, sim.token(), SECRET, log)
    }

    fn start(&mut self, i: usize, sim: &SimHandle) {
        let args = [
            OsStr::new("serve"),
            OsStr::new("--config"),
            self.configs[i].as_os_str(),
        ];
        let child = self
            .command(&args, sim, &self.logs[i])
            .spawn()
            .expect("the binary starts");
        self.procs[i] = Some(KillOnDrop(child));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            p.0.kill().unwrap(); // SIGKILL
            p.0.wait().unwrap();
        }
    }

    /// SIGTERM and wait: the exit status must be 0.
    fn terminate(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            let ok = std::process::Command::new("kill")
                .arg(p.0.id().to_string())
                .status()
                .unwrap();
            assert!(ok.success());
            assert!(
                p.0.wait().unwrap().success(),
                "replica {i}: SIGTERM exits 0"
            );
        }
    }

    async fn wait_serving(&self, http: &reqwest::Client, i: usize) {
        let port = self.ports[i];
        poll_until("a replica to answer /healthz", 60, || async {
            daemon_health(http, port).await.is_some()
        })
        .await;
    }

    /// Which replica leads, by their own health documents.
    async fn leader(&self, http: &reqwest::Client) -> Option<usize> {
        for (i, &port) in self.ports.iter().enumerate() {
            if self.procs[i].is_none() {
                continue;
            }
            if let Some(h) = daemon_health(http, port).await
                && h["replica"]["leads"] == true
            {
                return Some(i);
            }
        }
        None
    }
}

/// The most requests the simulator saw in any 10 s window, and how many it refused.
fn rate_figures(sim: &SimHandle) -> (usize, usize, usize) {
    let log = sim.request_log();
    let mut at: Vec<i64> = log.iter().map(|r| r.at.timestamp_millis()).collect();
    at.sort_unstable();
    let mut max = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] >= 10_000 {
            start += 1;
        }
        max = max.max(end - start + 1);
    }
    let refused = log.iter().filter(|r| matches!(r.status, 429 | 529)).count();
    (max, refused, log.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_sigkilled_at_random_leader_included_lose_nothing_and_keep_to_the_budget() {
    if needs_postgres() {
        return;
    }
    let seed: u64 = std::env::var("NOTION_SYNC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x3E71_1CA5);
    println!("replica chaos seed {seed} (replay with NOTION_SYNC_CHAOS_SEED={seed})");
    let started = tokio::time::Instant::now();
    let mut rng = Rng(seed ^ 0x0BAD_CAFE);
    let mut config = sim_config(30);
    config.seed = seed;
    config.webhook.retry_base = Duration::from_millis(100);
    config.rate_limit = Some(notion_sim::RateLimit {
        per_second: RATE,
        burst: 10,
    });
    let sim = Arc::new(notion_sim::start(config).await.unwrap());
    add_waiting_status(&sim);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("replicas.db");
    let extra = "[tasks]\nopen_statuses = [\"Waiting\"]\n\
                 [reconcile]\nschedule = \"*/3 * * * * *\"\nfull_schedule = \"\"\non_start = true\n";
    let mut replicas = Replicas::new(dir.path(), 3, &db, &sim, extra);
    let http = reqwest::Client::new();
    for i in 0..3 {
        replicas.start(i, &sim);
    }
    for i in 0..3 {
        replicas.wait_serving(&http, i).await;
    }
    let balancer = Balancer::start(&replicas.ports, Routing::Live).await;
    sim.subscribe_with_token(&balancer.url("/webhooks/notion"), SECRET)
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let storm_task = tokio::spawn(storm(sim.clone(), rng.next(), stop.clone()));
    let mut kills = Vec::new();
    let mut takeovers = Vec::new();
    for k in 0..6 {
        tokio::time::sleep(Duration::from_millis(rng.range(1_000, 3_000))).await;
        let leader = replicas.leader(&http).await;
        // Every other kill is the leader's.
        let target = match (k % 2, leader) {
            (0, Some(l)) => l,
            _ => rng.range(0, 3) as usize,
        };
        let was_leader = leader == Some(target);
        replicas.kill(target);
        let killed_at = tokio::time::Instant::now();
        if was_leader {
            let deadline = killed_at + Duration::from_secs(LEASE_SECS * 4);
            let mut new = None;
            while tokio::time::Instant::now() < deadline {
                new = replicas.leader(&http).await;
                if new.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let took = killed_at.elapsed();
            assert!(
                new.is_some(),
                "seed {seed}: no replica took over leadership within {} s",
                LEASE_SECS * 4
            );
            // The lease runs out within LEASE_SECS of the last renewal; a replica's next
            // round (every third of it) takes it.
            assert!(
                took <= Duration::from_secs(LEASE_SECS)
                    + Duration::from_millis(LEASE_SECS * 1000 / 3 + 1_500),
                "seed {seed}: leadership took {took:?} to move"
            );
            takeovers.push(took);
        }
        let down = rng.range(0, 800);
        kills.push(format!(
            "replica {target}{} at {:.1} s, down {down} ms",
            if was_leader { " (leader)" } else { "" },
            started.elapsed().as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(down)).await;
        replicas.start(target, &sim);
        replicas.wait_serving(&http, target).await;
    }
    tokio::time::sleep(Duration::from_millis(rng.range(500, 1_500))).await;
    stop.store(true, Ordering::Relaxed);
    let storm = storm_task.await.unwrap();
    let storm_secs = started.elapsed().as_secs_f64();

    sim.webhooks_idle().await;
    drain_or_explain(&http, &replicas, dir.path(), seed, 120).await;
    for i in 0..3 {
        replicas.terminate(i);
    }

    // One full pass (the CLI, on the same database) finds what silent edits hid.
    let summary_log = dir.path().join("reconcile.log");
    let out = replicas
        .command(
            &[
                OsStr::new("reconcile"),
                OsStr::new("--full"),
                OsStr::new("--config"),
                replicas.configs[0].as_os_str(),
            ],
            &sim,
            &summary_log,
        )
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reconcile --full: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // One replica takes the echoes of the pass's writes; then nothing is left.
    replicas.start(0, &sim);
    replicas.wait_serving(&http, 0).await;
    sim.webhooks_idle().await;
    drain_or_explain(&http, &replicas, dir.path(), seed, 60).await;
    let health = daemon_health(&http, replicas.ports[0]).await.unwrap();
    assert_eq!(health["queue"]["dead"], 0, "{health}");
    replicas.terminate(0);

    let store = Store::open(crate::support::store_config(&db), Arc::new(SystemClock))
        .await
        .unwrap();
    let logs: Vec<&std::path::Path> = replicas
        .logs
        .iter()
        .map(|p| p.as_path())
        .chain([summary_log.as_path()])
        .collect();
    let mismatches = mirror_mismatches(&store, &sim).await;
    if !mismatches.is_empty() {
        let ids: Vec<&str> = mismatches
            .iter()
            .filter_map(|m| m.split_whitespace().next())
            .collect();
        print_lines_about(&logs, &ids);
        keep_for_inspection(dir.path(), seed);
    }
    assert!(mismatches.is_empty(), "seed {seed}: {mismatches:#?}");
    let patches = patches_per_page(&sim);
    for (path, n) in &patches {
        assert_eq!(*n, 1, "seed {seed}: {path} PATCHed {n} times");
    }
    assert!(
        !patches.is_empty(),
        "seed {seed}: no overdue write happened"
    );
    let unmarked = unmarked_candidates(&sim);
    if !unmarked.is_empty() {
        let ids: Vec<&str> = unmarked.iter().map(String::as_str).collect();
        print_lines_about(&logs, &ids);
        keep_for_inspection(dir.path(), seed);
    }
    assert_eq!(unmarked, Vec::<String>::new(), "seed {seed}");
    let mut seen = BTreeSet::new();
    for t in store.transitions(None).await.unwrap() {
        assert!(
            seen.insert(t.page_id),
            "seed {seed}: two transitions for one page"
        );
    }
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(
        (
            stats.queued_interactive,
            stats.queued_bulk,
            stats.running,
            stats.dead
        ),
        (0, 0, 0, 0)
    );
    store.close().await;
    for log in &replicas.logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains(SECRET), "webhook secret leaked into logs");
        assert!(!text.contains(sim.token()), "Notion token leaked into logs");
    }
    let (max_window, refused, requests) = rate_figures(&sim);
    let answers = balancer.answers();
    let not_ok = answers.iter().filter(|(s, _)| *s != 200).count();
    println!(
        "replica chaos seed {seed}: storm {storm_secs:.1} s, {} edits ({} silent), {} overdue candidates, {} PATCHes; \
         kills: {}; leader takeovers {:?}; {} deliveries through the balancer ({} not 200: replicas killed mid-request, retried by the sender); \
         Notion requests {requests}, max in any 10 s window {max_window} (limit {}), 429s {refused}",
        storm.edits,
        storm.silent_edits,
        storm.candidates.len(),
        patches.len(),
        kills.join("; "),
        takeovers,
        answers.len(),
        not_ok,
        (RATE * 10.0) as usize,
    );
    assert!(
        takeovers.len() >= 3,
        "seed {seed}: the leader was killed only {} times",
        takeovers.len()
    );
    assert!(
        max_window <= (RATE * 10.0) as usize,
        "seed {seed}: the replicas sent {max_window} requests in 10 s (limit {})",
        RATE * 10.0
    );
}

async fn drain_or_explain(
    http: &reqwest::Client,
    replicas: &Replicas,
    dir: &std::path::Path,
    seed: u64,
    secs: u64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        for (i, &port) in replicas.ports.iter().enumerate() {
            if replicas.procs[i].is_none() {
                continue;
            }
            last = daemon_health(http, port).await;
            if last
                .as_ref()
                .is_some_and(|h| h["queue"]["queued"] == 0 && h["queue"]["running"] == 0)
            {
                return;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    keep_for_inspection(dir, seed);
    panic!("seed {seed}: the queue did not drain within {secs} s; last health: {last:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_two_replicas_under_load_answers_every_delivery() {
    if needs_postgres() {
        return;
    }
    let sim = notion_sim::start(sim_config(10)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rolling.db");
    let mut replicas = Replicas::new(
        dir.path(),
        2,
        &db,
        &sim,
        "[reconcile]\nschedule = \"\"\nfull_schedule = \"\"\non_start = false\n",
    );
    // Drain for 2 s after SIGTERM (readiness fails, webhooks still taken).
    for config in &replicas.configs {
        let text = std::fs::read_to_string(config).unwrap();
        std::fs::write(
            config,
            text.replace(
                "shutdown_grace_seconds = 5\n",
                "shutdown_grace_seconds = 5\ndrain_seconds = 2\n",
            ),
        )
        .unwrap();
    }
    let http = reqwest::Client::new();
    for i in 0..2 {
        replicas.start(i, &sim);
        replicas.wait_serving(&http, i).await;
    }
    let balancer = Arc::new(Balancer::start(&replicas.ports, Routing::Ready).await);
    poll_until("both replicas ready behind the balancer", 10, || async {
        balancer.ready(0) && balancer.ready(1)
    })
    .await;
    let page = sim.pages()[0].id.clone();
    let ds = sim.data_source_id();

    // A steady load: one signed delivery every 20 ms, each a new event.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, balancer, http) = (stop.clone(), balancer.clone(), http.clone());
        tokio::spawn(async move {
            let mut sent = 0usize;
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let body = page_event("0e11a5ed", sent, &page, &ds);
                let r = http
                    .post(balancer.url("/webhooks/notion"))
                    .header("content-type", "application/json")
                    .header(
                        "x-notion-signature",
                        notion_api::sign(SECRET.as_bytes(), &body),
                    )
                    .body(body)
                    .send()
                    .await;
                statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut restarts = Vec::new();
    for round in 0..2 {
        for i in 0..2 {
            let began = tokio::time::Instant::now();
            replicas.terminate(i);
            let stopped = began.elapsed();
            replicas.start(i, &sim);
            replicas.wait_serving(&http, i).await;
            poll_until(
                "the restarted replica back behind the balancer",
                30,
                || async { balancer.ready(i) },
            )
            .await;
            restarts.push(format!(
                "round {round} replica {i}: stopped in {:.1} s, ready again after {:.1} s",
                stopped.as_secs_f64(),
                began.elapsed().as_secs_f64()
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let statuses = load.await.unwrap();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let by_status: std::collections::BTreeMap<u16, usize> =
        statuses.iter().fold(Default::default(), |mut m, s| {
            *m.entry(*s).or_default() += 1;
            m
        });
    let served: std::collections::BTreeMap<usize, usize> =
        balancer
            .answers()
            .iter()
            .fold(Default::default(), |mut m, (_, b)| {
                *m.entry(*b).or_default() += 1;
                m
            });
    println!(
        "rolling restart: {} deliveries, {ok} answered 200 ({by_status:?}), by replica {served:?}; {}",
        statuses.len(),
        restarts.join("; ")
    );
    assert_eq!(
        ok,
        statuses.len(),
        "every delivery answered 200: {by_status:?}"
    );
    // Every acknowledged delivery was recorded.
    let store = Store::open(crate::support::store_config(&db), Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(store.event_count().await.unwrap(), ok as u64);
    store.close().await;
    for i in 0..2 {
        replicas.terminate(i);
    }
}
