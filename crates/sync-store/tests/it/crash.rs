//! Crash test: a child process (this test binary, re-executed) ingests a stream of events
//! from 16 concurrent callers while a worker claims jobs, and prints each event id after
//! `ingest` returned. The parent kills it with SIGKILL at a random point, reopens the file
//! and checks that every acknowledged event is there, that every recorded event has its
//! job, and that the queue is consistent.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sync_store::{
    Clock, IncomingEvent, IngestOutcome, JobFilter, JobState, Lane, ManualClock, NewJob, Store,
    StoreConfig, Synchronous, SystemClock,
};

use crate::helpers::raw;

const CHILD_ENV: &str = "SYNC_STORE_CRASH_CHILD_DB";
const CALLERS: usize = 16;

fn crash_event(id: &str) -> IncomingEvent {
    // Ids look like `c<caller>-<n>`; events of different callers share pages.
    let n: u64 = id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let page = format!("page:{}", n % 37);
    IncomingEvent {
        event_id: id.to_owned(),
        event_type: "page.properties_updated".into(),
        entity_type: "page".into(),
        entity_id: page.clone(),
        attempt_number: 1,
        event_time: None,
        jobs: vec![NewJob::new(
            page,
            "sync_page",
            serde_json::json!({ "event": id }),
            Lane::Interactive,
        )],
    }
}

/// The child's body. Only does anything when started by the parent test.
#[test]
#[ignore = "child process of sigkill_during_ingest_loses_no_acknowledged_event"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let config = StoreConfig {
            synchronous: Synchronous::Full,
            ..StoreConfig::for_path(Path::new(&path))
        };
        let store = Store::open(config, Arc::new(SystemClock)).await.unwrap();
        println!("\nchild ready");
        let worker = {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    // Claims and never completes: leaves running jobs and follow-ups behind.
                    let _ = store
                        .claim(2, "child-worker", Duration::from_secs(3600))
                        .await;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        let mut callers = Vec::new();
        for caller in 0..CALLERS {
            let store = store.clone();
            callers.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let id = format!("c{caller}-{n}");
                    if store.ingest(crash_event(&id)).await.unwrap() == IngestOutcome::Inserted {
                        println!("ack {id}");
                    }
                }
            }));
        }
        for c in callers {
            let _ = c.await;
        }
        worker.abort();
    });
}

#[test]
fn sigkill_during_ingest_loses_no_acknowledged_event() {
    if crate::helpers::sqlite_only(
        "kill -9 against PostgreSQL is the replica chaos test in notion-sync",
    ) {
        return;
    }
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.db");
        let kill_after = rand::random_range(20..1500usize);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = HashSet::new();
        let mut killed = false;
        // Everything the child printed before it died counts, including lines still in the
        // pipe after the kill.
        while let Some(Ok(line)) = lines.next() {
            if let Some(pos) = line.find("ack ") {
                acked.insert(line[pos + 4..].trim().to_owned());
            }
            if !killed && acked.len() >= kill_after {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        assert!(killed, "round {round}: child exited by itself: {status:?}");
        assert!(acked.len() >= kill_after);
        eprintln!(
            "round {round}: killed after {} acknowledged events",
            acked.len()
        );

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(verify(&path, &acked));
    }
}

async fn verify(path: &Path, acked: &HashSet<String>) {
    // Leases the dead child held have long expired by this clock.
    let clock = ManualClock::new(SystemClock.now() + chrono::Duration::days(1));
    let store = Store::open(StoreConfig::for_path(path), clock)
        .await
        .unwrap();
    assert!(store.integrity_check().await.unwrap().is_empty());

    // Every recorded event (acknowledged or committed just before the kill) has its job.
    let mut conn = raw(path).await;
    let events: Vec<String> = sqlx::query("SELECT event_id FROM webhook_events")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let recorded: HashSet<&str> = events.iter().map(String::as_str).collect();
    for id in acked {
        assert!(
            recorded.contains(id.as_str()),
            "acknowledged event {id} was lost"
        );
    }

    let running_before = store.queue_stats().await.unwrap().running;
    assert_eq!(store.reap_expired_leases().await.unwrap(), running_before);
    let jobs = store.list_jobs(JobFilter::default()).await.unwrap();
    let mut queued_keys = HashSet::new();
    for j in &jobs {
        assert_eq!(
            j.state,
            JobState::Queued,
            "after reaping everything is queued: {j:?}"
        );
        assert!(
            queued_keys.insert(j.key.clone()),
            "two queued jobs for {}",
            j.key
        );
    }
    for id in &events {
        let key = crash_event(id).jobs[0].key.clone();
        assert!(
            queued_keys.contains(&key),
            "event {id} is recorded but its job {key} is not"
        );
    }
    // Redelivering an acknowledged event is a duplicate.
    for id in acked.iter().take(50) {
        assert_eq!(
            store.ingest(crash_event(id)).await.unwrap(),
            IngestOutcome::Duplicate
        );
    }
    store.close().await;
}
