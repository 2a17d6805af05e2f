//! Shared test setup: a fresh store in a temp dir with a manual clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sync_store::{Lane, ManualClock, NewJob, Store, StoreConfig, Synchronous};
use tempfile::TempDir;

/// A Notion id from its text (tests only use valid ones).
pub fn id(s: &str) -> sync_store::NotionId {
    sync_store::NotionId::parse(s).expect("a valid id")
}

pub struct TestStore {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub config: StoreConfig,
    /// Holds the directory (the SQLite file) until the test ends.
    _dir: TempDir,
}

impl TestStore {
    /// The database as the store names it (the file, or the PostgreSQL URL).
    pub fn path(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub fn now(&self) -> DateTime<Utc> {
        use sync_store::Clock;
        self.clock.now()
    }

    /// Closes and reopens the same file with the same config and clock.
    pub async fn reopen(self) -> TestStore {
        self.store.close().await;
        let store = Store::open(self.config.clone(), self.clock.clone())
            .await
            .expect("reopen");
        TestStore { store, ..self }
    }
}

/// 2026-11-23T17:43:00Z: every test starts here.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 17, 43, 0).unwrap()
}

pub use pg_scratch::{on_postgres, sqlite_only};

/// The store configuration of a test: a file in `dir`, or a fresh PostgreSQL database.
pub async fn config_in(dir: &Path) -> StoreConfig {
    let url = if on_postgres() {
        pg_scratch::fresh_database("store").await
    } else {
        dir.join("store.db").to_string_lossy().into_owned()
    };
    StoreConfig {
        synchronous: Synchronous::Normal,
        url,
        ..StoreConfig::default()
    }
}

pub async fn open_with(tweak: impl FnOnce(&mut StoreConfig)) -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_in(dir.path()).await;
    tweak(&mut config);
    let clock = ManualClock::new(t0());
    let store = Store::open(config.clone(), clock.clone())
        .await
        .expect("open store");
    TestStore {
        store,
        clock,
        config,
        _dir: dir,
    }
}

pub async fn open() -> TestStore {
    open_with(|_| {}).await
}

pub fn job(key: &str, lane: Lane) -> NewJob {
    NewJob::new(key, "sync_page", serde_json::json!({ "key": key }), lane)
}

/// Runs `sql` (one text column) straight on the test's database, either backend, for
/// checks the public API does not expose.
pub async fn raw_strings(t: &TestStore, sql: &'static str) -> Vec<String> {
    use sqlx::Connection;
    if on_postgres() {
        let mut c = sqlx::PgConnection::connect(&t.config.url)
            .await
            .expect("raw connection");
        sqlx::query_scalar(sql)
            .fetch_all(&mut c)
            .await
            .expect("raw query")
    } else {
        let mut c = raw(&t.path()).await;
        sqlx::query_scalar(sql)
            .fetch_all(&mut c)
            .await
            .expect("raw query")
    }
}

/// A raw connection to the same file, for checks the public API does not expose.
pub async fn raw(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("raw connection")
}

/// Directory of the shared fixtures, or `None` (after printing a loud SKIP) when absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NOTION_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: fixtures not found at {} (set NOTION_FIXTURES_DIR)",
            dir.display()
        );
        None
    }
}
