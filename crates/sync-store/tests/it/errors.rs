//! Environmental failures become typed errors and leave nothing half-written: disk full
//! (via `max_page_count`), a lock held by another process (busy), a read-only file.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sync_store::{
    IncomingEvent, IngestOutcome, JobFilter, Lane, NewJob, Store, StoreError, SystemClock,
};

use crate::helpers::{config_in, open, open_with, raw};
use crate::ingest::event;

/// An event whose job carries ~2 KiB, so the database grows about a page per event.
fn fat_event(id: &str) -> IncomingEvent {
    IncomingEvent {
        jobs: vec![NewJob::new(
            format!("page:{id}"),
            "sync_page",
            serde_json::json!({ "padding": "x".repeat(2048) }),
            Lane::Interactive,
        )],
        ..event(id, id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_is_a_typed_error_and_leaves_nothing_half_written() {
    if crate::helpers::sqlite_only("a full disk is simulated with PRAGMA max_page_count") {
        return;
    }
    // Size the cap from the freshly migrated file: room for a few dozen events.
    let first = open().await;
    let db = first.path();
    let mut conn = raw(&db).await;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    drop(conn);
    first.store.close().await;
    let cap = u64::try_from(pages).unwrap() + 24;
    let t = open_with(|c| {
        c.url = first.config.url.clone();
        c.max_page_count = Some(cap);
    })
    .await;
    let s = t.store.clone();

    // Concurrent callers (so failures hit whole group-commit batches) until the disk is full.
    let mut acked = HashSet::new();
    let mut failed = HashSet::new();
    for round in 0..40 {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = s.clone();
            let id = format!("e{round}-{i}");
            tasks.push(tokio::spawn(async move {
                (id.clone(), s.ingest(fat_event(&id)).await)
            }));
        }
        for task in tasks {
            match task.await.unwrap() {
                (id, Ok(IngestOutcome::Inserted)) => assert!(acked.insert(id)),
                (id, Ok(IngestOutcome::Duplicate)) => panic!("{id} duplicate"),
                (id, Err(e)) => {
                    assert!(matches!(e, StoreError::DiskFull { .. }), "{id}: {e:?}");
                    assert!(e.is_unavailable());
                    assert!(e.to_string().contains("store.db"), "{e}");
                    failed.insert(id);
                }
            }
        }
        if failed.len() >= 32 {
            break;
        }
    }
    assert!(!acked.is_empty(), "some events fit");
    assert!(
        failed.len() >= 32,
        "the cap was never hit ({} acked)",
        acked.len()
    );

    // Exactly the acknowledged events are recorded, each with its job.
    let mut conn = raw(&db).await;
    let events: HashSet<String> = sqlx::query("SELECT event_id FROM webhook_events")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events, acked);
    let keys: HashSet<String> = s
        .list_jobs(JobFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.key)
        .collect();
    let expected: HashSet<String> = acked.iter().map(|id| format!("page:{id}")).collect();
    assert_eq!(keys, expected);
    assert!(s.integrity_check().await.unwrap().is_empty());

    // Freeing space makes the store writable again.
    let claimed = s.claim(1000, "w", Duration::from_secs(60)).await.unwrap();
    for j in &claimed {
        s.complete(j).await.unwrap();
    }
    assert_eq!(
        s.ingest(fat_event("after")).await.unwrap(),
        IngestOutcome::Inserted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_is_busy_then_clears() {
    if crate::helpers::sqlite_only("another SQLite connection holds the write lock") {
        return;
    }
    let t = open_with(|c| c.busy_timeout = Duration::from_millis(50)).await;
    let mut other = raw(&t.path()).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let err = t.store.ingest(event("e1", "p1")).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
    assert!(err.is_unavailable());
    // Readers are not blocked by a writer in WAL mode.
    assert_eq!(t.store.event_count().await.unwrap(), 0);

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(
        t.store.ingest(event("e1", "p1")).await.unwrap(),
        IngestOutcome::Inserted
    );
}

/// True when file permissions do not stop this process (root, CAP_DAC_OVERRIDE).
fn permissions_are_bypassed(dir: &std::path::Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o400)).unwrap();
    let writable = std::fs::OpenOptions::new().write(true).open(&probe).is_ok();
    std::fs::remove_file(&probe).unwrap();
    writable
}

#[tokio::test]
async fn a_read_only_file_gives_read_only_errors() {
    if crate::helpers::sqlite_only("file permissions") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    if permissions_are_bypassed(dir.path()) {
        eprintln!(
            "SKIP: running with permission override (root?); read-only mode is covered by \
             open::a_read_only_store_reads_but_every_write_is_a_typed_error"
        );
        return;
    }
    let config = config_in(dir.path()).await;
    let store = Store::open(config.clone(), Arc::new(SystemClock))
        .await
        .unwrap();
    store.ingest(event("e1", "p1")).await.unwrap();
    store.close().await;
    let db = config.database_path().unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();

    let result = match Store::open(config.clone(), Arc::new(SystemClock)).await {
        Ok(store) => {
            let r = store.ingest(event("e2", "p2")).await;
            store.close().await;
            r.map(|_| ())
        }
        Err(e) => Err(e),
    };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(err, StoreError::ReadOnly { .. } | StoreError::Io { .. }),
        "{err:?}"
    );
    assert!(err.is_unavailable());
}
