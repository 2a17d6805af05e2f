//! Opening: file mode, WAL, migrations, reopen, close, read-only mode, URL errors.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use sync_store::{IngestOutcome, Lane, ManualClock, Store, StoreConfig, StoreError, SystemClock};

use crate::helpers::{config_in, job, open, raw, t0};
use crate::ingest::event;

#[tokio::test]
async fn a_new_database_is_private_in_wal_mode_and_migrated() {
    if crate::helpers::sqlite_only(
        "the file mode, WAL and the migration list read through a raw SQLite connection",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/notion-sync.db");
    let config = StoreConfig {
        url: format!("sqlite://{}", path.display()),
        ..StoreConfig::default()
    };
    let store = Store::open(config, Arc::new(SystemClock)).await.unwrap();
    assert_eq!(store.path(), path);
    store.ingest(event("e1", "p1")).await.unwrap();
    for file in [
        path.clone(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", file.display());
    }
    let mut conn = raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for t in [
        "jobs",
        "pages",
        "status_writes",
        "sync_state",
        "task_transitions",
        "verification_tokens",
        "webhook_events",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "missing table {t}: {tables:?}"
        );
    }
    assert!(store.integrity_check().await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_reopening_keeps_everything() {
    let t = open().await;
    t.store.migrate().await.unwrap();
    t.store.migrate().await.unwrap();
    t.store.enqueue(job("page:a", Lane::Bulk)).await.unwrap();
    t.store.ingest(event("e1", "p1")).await.unwrap();
    let t = t.reopen().await;
    let stats = t.store.queue_stats().await.unwrap();
    assert_eq!(stats.queued_bulk, 1);
    assert_eq!(stats.queued_interactive, 1);
    assert_eq!(
        t.store.ingest(event("e1", "p1")).await.unwrap(),
        IngestOutcome::Duplicate
    );
}

#[tokio::test]
async fn after_close_every_call_says_closed() {
    let t = open().await;
    let s = t.store.clone();
    t.store.close().await;
    t.store.close().await; // idempotent
    assert!(matches!(
        s.ingest(event("e", "p")).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        s.enqueue(job("k", Lane::Bulk)).await,
        Err(StoreError::Closed)
    ));
    let err = s.queue_stats().await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err:?}");
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn a_read_only_store_reads_but_every_write_is_a_typed_error() {
    let t = open().await;
    t.store.set_state("watermark", "w1").await.unwrap();
    t.store.enqueue(job("page:a", Lane::Bulk)).await.unwrap();
    let ro = Store::open_read_only(t.config.clone(), ManualClock::new(t0()))
        .await
        .unwrap();
    assert_eq!(
        ro.get_state("watermark").await.unwrap().as_deref(),
        Some("w1")
    );
    assert_eq!(ro.queue_stats().await.unwrap().queued_bulk, 1);

    let err = ro.ingest(event("e1", "p1")).await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(err.is_unavailable());
    assert!(
        err.to_string().contains(&t.path().display().to_string()),
        "{err}"
    );
    let err = ro.set_state("watermark", "w2").await.unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(matches!(
        ro.claim(1, "w", std::time::Duration::from_secs(1)).await,
        Err(StoreError::ReadOnly { .. })
    ));
    ro.close().await;
    // Nothing was half-written, and the writable store still works.
    assert_eq!(t.store.event_count().await.unwrap(), 0);
    assert_eq!(
        t.store.get_state("watermark").await.unwrap().as_deref(),
        Some("w1")
    );
    assert_eq!(
        t.store.ingest(event("e1", "p1")).await.unwrap(),
        IngestOutcome::Inserted
    );
}

#[tokio::test]
async fn a_read_only_store_opens_a_cleanly_closed_database() {
    let t = open().await;
    t.store.set_state("watermark", "w1").await.unwrap();
    t.store.close().await;
    let ro = Store::open_read_only(t.config.clone(), ManualClock::new(t0()))
        .await
        .unwrap();
    assert_eq!(
        ro.get_state("watermark").await.unwrap().as_deref(),
        Some("w1")
    );
    ro.close().await;
}

#[tokio::test]
async fn read_only_open_refuses_a_missing_or_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path()).await;
    let err = Store::open_read_only(config.clone(), Arc::new(SystemClock))
        .await
        .unwrap_err();
    if crate::helpers::on_postgres() {
        // The database exists (empty): it is refused as unmigrated.
        assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
        return;
    }
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    std::fs::write(config.database_path().unwrap(), b"").unwrap();
    let err = Store::open_read_only(config, Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
    assert!(err.to_string().contains("notion-sync migrate"), "{err}");
}

#[tokio::test]
async fn bad_urls_are_rejected_before_touching_disk() {
    for url in [
        "sqlite::memory:",
        "mysql://db/x",
        "postgres://u:secret@db:notaport/x",
        "sqlite://x.db?mode=ro",
        "",
    ] {
        let config = StoreConfig {
            url: url.into(),
            ..StoreConfig::default()
        };
        let err = Store::open(config, Arc::new(SystemClock))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
        assert!(!err.is_unavailable());
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[tokio::test]
async fn the_checkpointer_copies_committed_wal_frames_into_the_database_file() {
    if crate::helpers::sqlite_only("the WAL checkpointer") {
        return;
    }
    let t = open().await;
    let path = t.path();
    let wal = path.with_extension("db-wal");
    let main_size = || std::fs::metadata(&path).unwrap().len();
    let initial = main_size();
    // ~2 MiB of events and jobs: far past SQLite's 1,000-page autocheckpoint.
    let padding = "x".repeat(1000);
    for batch in 0..40 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..50 {
            let mut e = event(&format!("e{batch}-{i}-{padding}"), &format!("p{batch}-{i}"));
            e.event_type = format!("page.properties_updated.{padding}");
            let store = t.store.clone();
            set.spawn(async move { store.ingest(e).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    }
    assert!(std::fs::metadata(&wal).unwrap().len() > 1_000_000);
    // Within a few checkpoint periods the frames reach the database file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while main_size() < initial + 1_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint copied the WAL into the database file ({} bytes)",
            main_size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut conn = raw(&path).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2000);
    t.store.close().await;
}
