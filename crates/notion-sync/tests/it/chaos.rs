//! Chaos: the real binary under a storm of webhook deliveries and silent edits, killed
//! with SIGKILL at seeded-random moments and restarted each time. At the end (edits
//! stopped, webhooks settled, one `notion-sync reconcile --full`) the mirror equals the
//! simulator, every overdue task was PATCHed exactly once, and no job is queued, running
//! or dead. Once with the single-source configuration, once with two task databases as
//! two sources through two integrations. On PostgreSQL each killed instance is a dead
//! replica: the last start waits to lead and take over what they left. Set
//! `NOTION_SYNC_CHAOS_SEED` to replay a run; the seed is printed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notion_sim::SimHandle;
use sync_store::{Store, SystemClock};

use crate::support::{
    KillOnDrop, Rng, add_waiting_status, daemon_health, free_port, make_overdue_candidate,
    mirror_mismatches, notion_sync_command, on_postgres, patches_per_page, poll_until, sim_config,
    unmarked_candidates, write_daemon_config,
};

const SECRET: &str = "secret_chaos_webhook_key";
const KILLS: usize = 5;
/// The leader lease on PostgreSQL, where each killed instance is a dead replica whose
/// work is taken over after twice the lease.
const LEASE_SECS: u64 = 3;
/// The second integration's token (two-source layout).
const BETA_TOKEN: &str = "secret_chaos_beta_integration";

/// How the daemon under chaos reads the workspace.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// `notion.data_source_id`: one source, one integration.
    One,
    /// Sources `tasks` ("Tasks", integration `alpha`) and `ops` ("Tasks 2", `beta`).
    Two,
}

/// What the storm did.
#[derive(Debug, Default)]
pub(crate) struct Storm {
    pub(crate) ticks: u64,
    pub(crate) edits: u64,
    pub(crate) silent_edits: u64,
    pub(crate) candidates: BTreeSet<String>,
    pub(crate) silent_candidates: u64,
}

/// One to five random edits (a quarter of the batches silent) every 50–150 ms, and now and then a task made
/// overdue, until `stop`.
pub(crate) async fn storm(sim: Arc<SimHandle>, seed: u64, stop: Arc<AtomicBool>) -> Storm {
    let mut rng = Rng(seed);
    let mut out = Storm::default();
    let databases = sim.task_data_source_ids();
    while !stop.load(Ordering::Relaxed) {
        out.ticks += 1;
        let silent = rng.chance(25);
        sim.set_silent(silent);
        let n = rng.range(1, 6);
        // Every task database in turn (one in the single-source layout).
        let ds = &databases[(out.ticks as usize) % databases.len()];
        let touched = sim.random_edits_in(ds, rng.next(), n as usize).len() as u64;
        out.edits += touched;
        if silent {
            out.silent_edits += touched;
        }
        if rng.chance(12) {
            let pick: Vec<String> = sim
                .pages()
                .into_iter()
                .filter(|p| {
                    !p.in_trash
                        && p.status.as_deref() != Some("Overdue")
                        && !out.candidates.contains(&p.id)
                })
                .map(|p| p.id)
                .collect();
            if !pick.is_empty() {
                let id = pick[(rng.next() % pick.len() as u64) as usize].clone();
                let silent = rng.chance(30);
                sim.set_silent(silent);
                make_overdue_candidate(&sim, &id);
                out.silent_candidates += u64::from(silent);
                out.candidates.insert(id);
            }
        }
        sim.set_silent(false);
        tokio::time::sleep(Duration::from_millis(rng.range(50, 150))).await;
    }
    out
}

/// The binary with `args` and the layout's secrets in its environment.
fn command(
    args: &[&OsStr],
    sim: &SimHandle,
    layout: Layout,
    log: &std::path::Path,
) -> std::process::Command {
    let mut cmd = notion_sync_command(args, sim.token(), SECRET, log);
    if layout == Layout::Two {
        cmd.env("NOTION_TOKEN_ALPHA", sim.token())
            .env("NOTION_WEBHOOK_SECRET_ALPHA", SECRET)
            .env("NOTION_TOKEN_BETA", BETA_TOKEN)
            .env("NOTION_WEBHOOK_SECRET_BETA", SECRET);
    }
    cmd
}

fn serve(
    config: &std::path::Path,
    sim: &SimHandle,
    layout: Layout,
    log: &std::path::Path,
) -> KillOnDrop {
    let args = [
        OsStr::new("serve"),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    KillOnDrop(
        command(&args, sim, layout, log)
            .spawn()
            .expect("the binary starts"),
    )
}

/// The layout's configuration file.
fn write_config(
    path: &std::path::Path,
    port: u16,
    db: &std::path::Path,
    sim: &SimHandle,
    layout: Layout,
) {
    let mut common = "[tasks]\nopen_statuses = [\"Waiting\"]\n\
                      [reconcile]\nschedule = \"*/3 * * * * *\"\nfull_schedule = \"\"\non_start = true\n"
        .to_owned();
    if on_postgres() {
        common.push_str(&format!(
            "[replicas]\nleader_lease_seconds = {LEASE_SECS}\n"
        ));
    }
    let common = common.as_str();
    match layout {
        Layout::One => write_daemon_config(path, port, db, sim, common),
        Layout::Two => {
            let ds = sim.task_data_source_ids();
            std::fs::write(
                path,
                format!(
                    "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_seconds = 5\n\
                     [store]\nurl = \"{}\"\n\
                     [notion]\napi_url = \"{}\"\nrequests_per_second = 30.0\ntimeout_seconds = 5\n\
                     [workers]\nconcurrency = 4\nlease_seconds = 10\n\
                     [log]\nformat = \"json\"\n{common}\
                     [integrations.alpha]\n[integrations.beta]\n\
                     [sources.tasks]\nintegration = \"alpha\"\ndata_source_id = \"{}\"\n\
                     [sources.ops]\nintegration = \"beta\"\ndata_source_id = \"{}\"\n",
                    crate::support::store_url(db),
                    sim.base_url(),
                    ds[0],
                    ds[1]
                ),
            )
            .unwrap();
        }
    }
}

/// Each integration's webhook subscription (in the two-source layout, each hearing only
/// its own database).
async fn subscribe(sim: &SimHandle, port: u16, layout: Layout) {
    match layout {
        Layout::One => {
            sim.subscribe_with_token(&format!("http://127.0.0.1:{port}/webhooks/notion"), SECRET)
                .await
                .unwrap();
        }
        Layout::Two => {
            let dbs = sim.task_database_ids();
            for (name, db) in ["alpha", "beta"].iter().zip(&dbs) {
                sim.subscribe_scoped(
                    &format!("http://127.0.0.1:{port}/webhooks/notion/{name}"),
                    Some(SECRET),
                    std::slice::from_ref(db),
                )
                .await
                .unwrap();
            }
        }
    }
}

async fn wait_serving(http: &reqwest::Client, port: u16) {
    poll_until("the daemon to answer /healthz", 60, || async {
        daemon_health(http, port).await.is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_storm_of_edits_ends_with_an_exact_mirror_and_one_patch_per_task() {
    chaos(Layout::One).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_storm_on_two_sources_through_two_integrations_loses_nothing() {
    chaos(Layout::Two).await;
}

async fn chaos(layout: Layout) {
    let seed: u64 = std::env::var("NOTION_SYNC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC4A0_5EED);
    println!("chaos seed {seed}, {layout:?} (replay with NOTION_SYNC_CHAOS_SEED={seed})");
    let started = tokio::time::Instant::now();
    let mut rng = Rng(seed ^ 0x00C0_FFEE);

    let mut config = sim_config(30);
    config.seed = seed;
    config.webhook.retry_base = Duration::from_millis(100);
    if layout == Layout::Two {
        config.pages = 15;
        config.extra_task_databases = 1;
        config.extra_tokens = vec![BETA_TOKEN.to_owned()];
    }
    let sim = Arc::new(notion_sim::start(config).await.unwrap());
    add_waiting_status(&sim);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = dir.path().join("chaos.db");
    let config = dir.path().join("notion-sync.toml");
    let log = dir.path().join("daemon.log");
    write_config(&config, port, &db, &sim, layout);
    let http = reqwest::Client::new();
    let mut daemon = serve(&config, &sim, layout, &log);
    wait_serving(&http, port).await;
    subscribe(&sim, port, layout).await;

    // The storm runs through every kill and restart.
    let stop = Arc::new(AtomicBool::new(false));
    let storm_task = tokio::spawn(storm(sim.clone(), rng.next(), stop.clone()));
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.range(1_000, 3_000))).await;
        let queue = daemon_health(&http, port)
            .await
            .map(|h| h["queue"].clone())
            .unwrap_or_default();
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
        let down = rng.range(0, 800);
        kills.push(format!(
            "at {:.1} s (queued {}, running {}), down {down} ms",
            started.elapsed().as_secs_f64(),
            queue["queued"],
            queue["running"]
        ));
        tokio::time::sleep(Duration::from_millis(down)).await;
        daemon = serve(&config, &sim, layout, &log);
        wait_serving(&http, port).await;
    }
    tokio::time::sleep(Duration::from_millis(rng.range(500, 1_500))).await;
    stop.store(true, Ordering::Relaxed);
    let storm = storm_task.await.unwrap();
    let storm_secs = started.elapsed().as_secs_f64();

    // Settle: every delivery answered (or given up), the queue drained.
    sim.webhooks_idle().await;
    drain_or_explain("after the storm", 90, &http, port, dir.path(), seed).await;
    let webhooks = sim.webhook_stats();
    let terminated = std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    assert!(terminated.success());
    assert!(daemon.wait().unwrap().success(), "SIGTERM exits 0");

    // One full pass finds what silent edits and given-up deliveries hid.
    let summary_log = dir.path().join("reconcile.log");
    let mut reconcile = command(
        &[
            OsStr::new("reconcile"),
            OsStr::new("--full"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
        &sim,
        layout,
        &summary_log,
    );
    let out = reconcile
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let log = std::fs::read_to_string(&summary_log).unwrap_or_default();
        let problems: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        keep_for_inspection(dir.path(), seed);
        panic!(
            "reconcile --full failed: {summary}\nits warnings and errors:\n{}",
            problems.join("\n")
        );
    }

    // A last start takes the echoes of the pass's own writes (delivered late, the daemon
    // was down); then nothing is queued, running or dead.
    let mut daemon = serve(&config, &sim, layout, &log);
    wait_serving(&http, port).await;
    if on_postgres() {
        // Each killed instance is a replica that died: its running jobs and begun overdue
        // writes wait for the leader's takeover (heartbeat unchanged for twice the lease),
        // where SQLite's instance lock lets a start take over at once.
        poll_until(
            "the last start to lead and take over every killed instance",
            LEASE_SECS * 6,
            || async {
                daemon_health(&http, port)
                    .await
                    .is_some_and(|h| h["replica"]["leads"] == true && h["replica"]["alive"] == 1)
            },
        )
        .await;
    }
    sim.webhooks_idle().await;
    drain_or_explain("after the last start", 60, &http, port, dir.path(), seed).await;
    let health = daemon_health(&http, port).await.unwrap();
    assert_eq!(health["queue"]["dead"], 0, "{health}");
    std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    assert!(daemon.wait().unwrap().success());

    // The mirror, read like a user would.
    let store = Store::open(crate::support::store_config(&db), Arc::new(SystemClock))
        .await
        .unwrap();
    let mismatches = mirror_mismatches(&store, &sim).await;
    if !mismatches.is_empty() {
        // What the daemon and the pass said about those pages, to tell why.
        let ids: Vec<&str> = mismatches
            .iter()
            .filter_map(|m| m.split_whitespace().next())
            .collect();
        print_lines_about(&[&log, &summary_log], &ids);
        keep_for_inspection(dir.path(), seed);
    }
    assert!(mismatches.is_empty(), "seed {seed}: {mismatches:#?}");
    let patches = patches_per_page(&sim);
    for (path, n) in &patches {
        assert_eq!(*n, 1, "seed {seed}: {path} PATCHed {n} times");
        let id = path.trim_start_matches("/v1/pages/");
        assert!(
            storm
                .candidates
                .iter()
                .any(|c| c.replace('-', "") == id.replace('-', "")),
            "seed {seed}: PATCHed a task never made overdue: {path}"
        );
    }
    assert!(
        !patches.is_empty(),
        "seed {seed}: no overdue write happened"
    );
    let unmarked = unmarked_candidates(&sim);
    if !unmarked.is_empty() {
        // What the daemon and the pass said about them, to tell why.
        let ids: Vec<&str> = unmarked.iter().map(String::as_str).collect();
        print_lines_about(&[&log, &summary_log], &ids);
        keep_for_inspection(dir.path(), seed);
    }
    assert_eq!(unmarked, Vec::<String>::new(), "seed {seed}");
    let transitions = store.transitions(None).await.unwrap();
    let mut seen = BTreeSet::new();
    for t in &transitions {
        assert!(
            seen.insert(&t.page_id),
            "seed {seed}: two transitions for {}",
            t.page_id
        );
    }
    let stats = store.queue_stats().await.unwrap();
    store.close().await;

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(SECRET), "webhook secret leaked into logs");
    assert!(!text.contains(sim.token()), "Notion token leaked into logs");
    assert!(!text.contains(BETA_TOKEN), "Notion token leaked into logs");
    let reclaims = text
        .matches("returned jobs a previous instance left running")
        .count();
    let resumed = text
        .matches("overdue writes a previous instance left unfinished")
        .count();
    // On PostgreSQL: the leader's takeovers of killed instances, and the overdue writes
    // they had begun.
    let takeovers: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.contains("a dead replica's work was taken over"))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let taken_writes: u64 = takeovers
        .iter()
        .filter_map(|t| t["overdue_writes"].as_u64())
        .sum();
    println!(
        "chaos seed {seed}, {layout:?}: storm {storm_secs:.1} s, {} ticks, {} edits ({} silent), {} overdue candidates ({} silent); \
         {KILLS} SIGKILLs: {kills:?}; {reclaims} restarts reclaimed running jobs, {resumed} took over unfinished overdue writes; \
         {} dead replicas taken over ({taken_writes} begun overdue writes); \
         webhooks: {} emitted, {} acknowledged, {} given up, {} attempts failed; \
         {} tasks PATCHed once each, {} transitions; leases expired {}; reconcile --full: {}; total {:.1} s",
        storm.ticks,
        storm.edits,
        storm.silent_edits,
        storm.candidates.len(),
        storm.silent_candidates,
        takeovers.len(),
        webhooks.events_emitted,
        webhooks.deliveries_ok,
        webhooks.deliveries_failed,
        webhooks.attempts_failed,
        patches.len(),
        transitions.len(),
        stats.leases_expired_total,
        summary.trim(),
        started.elapsed().as_secs_f64()
    );
    match Arc::try_unwrap(sim) {
        Ok(sim) => sim.shutdown().await,
        Err(_) => panic!("the storm still holds the simulator"),
    }
}

/// Prints the log lines that mention any of `ids`.
pub(crate) fn print_lines_about(logs: &[&std::path::Path], ids: &[&str]) {
    for f in logs {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let simple: Vec<String> = ids.iter().map(|id| id.replace('-', "")).collect();
        for line in text.lines().filter(|l| {
            ids.iter().any(|id| l.contains(id)) || simple.iter().any(|id| l.contains(id.as_str()))
        }) {
            eprintln!("{line}");
        }
    }
}

/// Copies the run's logs and database out of its temporary directory, for a failure to be
/// investigated after the test.
pub(crate) fn keep_for_inspection(dir: &std::path::Path, seed: u64) {
    let keep = std::env::temp_dir().join(format!("notion-sync-chaos-{seed}"));
    let _ = std::fs::create_dir_all(&keep);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::copy(entry.path(), keep.join(entry.file_name()));
    }
    eprintln!("logs and database kept in {}", keep.display());
}

/// Waits up to `secs` for nothing to be queued or running; otherwise shows the daemon's
/// health and jobs, keeps the run's files and fails.
async fn drain_or_explain(
    when: &str,
    secs: u64,
    http: &reqwest::Client,
    port: u16,
    dir: &std::path::Path,
    seed: u64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        last = daemon_health(http, port).await;
        if last
            .as_ref()
            .is_some_and(|h| h["queue"]["queued"] == 0 && h["queue"]["running"] == 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    keep_for_inspection(dir, seed);
    panic!("seed {seed}: the queue did not drain {when} within {secs} s; last health: {last:#?}");
}
