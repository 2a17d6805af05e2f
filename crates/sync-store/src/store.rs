//! [`Store`]: opening the database (a SQLite file: mode, pragmas, migrations; PostgreSQL:
//! `postgres.rs`), the reader pool, the writer task, and closing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};

use crate::checkpoint::Checkpointer;
use crate::clock::Clock;
use crate::config::{Location, StoreConfig, Synchronous};
use crate::db::{self, Backend, Conn, Pool};
use crate::error::StoreError;
use crate::migrate::{MIGRATOR, PG_MIGRATOR, check_migrated};
use crate::writer::{BoxFut, WriteCx, WriteOp, WriteStats, Writer, WriterCounters};

/// A WAL that grew past this during a burst is truncated back to it once checkpointed.
const JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// The source a store handle works for until [`Store::for_source`] names another (a
/// single-source configuration's, and what rows written before sources existed say).
pub const DEFAULT_SOURCE: &str = "default";

/// Handle to the database. Cheap to clone; all clones share one writer task and one reader
/// pool. Call [`Store::close`] before exiting so the writer finishes and the WAL is
/// checkpointed. A handle works for one source ([`Store::for_source`]): the jobs it
/// enqueues and the pages it mirrors are that source's, and it claims only that source's
/// jobs; reads by id and store-wide maintenance see every source.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    source: Arc<str>,
}

pub(crate) struct Inner {
    /// The database as errors name it: the SQLite file, or the PostgreSQL URL without its
    /// password.
    pub(crate) path: PathBuf,
    pub(crate) backend: Backend,
    pub(crate) config: StoreConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) readers: Pool,
    pub(crate) writer: Writer,
    pub(crate) checkpointer: Option<Checkpointer>,
    pub(crate) write_stats: Arc<WriterCounters>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("synchronous", &self.inner.config.synchronous)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database, applies migrations, and starts the writer
    /// task and the reader pool. A SQLite file gets its parent directory, mode 0600, WAL,
    /// `busy_timeout`, foreign keys and the configured `synchronous`; a PostgreSQL URL is
    /// connected to as `postgres.rs` describes.
    #[tracing::instrument(skip_all, fields(db.url = %config.display_url()), err(level = "debug"))]
    pub async fn open(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let path = match config.location()? {
            Location::File(path) => absolute(&path),
            Location::Postgres(options) => {
                return Self::open_postgres(config, clock, *options, false).await;
            }
        };
        prepare_file(&path)?;
        let synchronous = match config.synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        };
        let options = base_options(&path, &config)
            // Room for every fixed statement plus the small multi-row ingest statements.
            .statement_cache_capacity(256)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            // Commits never checkpoint: the checkpointer does, from its own connection.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string());
        let options = match config.max_page_count {
            Some(pages) => options.pragma("max_page_count", pages.to_string()),
            None => options,
        };
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::from_sqlx(&path, e))?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| StoreError::from_sqlx(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io {
                path,
                message: format!(
                    "could not switch the database to WAL mode (journal_mode is {mode:?}); is the file system local?"
                ),
            });
        }
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::from_migrate(&path, e))?;
        let readers = reader_pool(&path, &config, false);
        let checkpointer = Checkpointer::spawn(
            path.clone(),
            base_options(&path, &config).synchronous(synchronous),
        );
        tracing::info!(db.path = %path.display(), db.synchronous = %config.synchronous, "store opened");
        Ok(Self::assemble(
            path,
            config,
            clock,
            Conn::Sqlite(conn),
            None,
            Pool::Sqlite(readers),
            Some(checkpointer),
        ))
    }

    /// Opens an existing, migrated database without write access (CLI inspection while the
    /// daemon runs). Reads work; every write fails with [`StoreError::ReadOnly`] and changes
    /// nothing.
    #[tracing::instrument(skip_all, fields(db.url = %config.display_url()), err(level = "debug"))]
    pub async fn open_read_only(
        config: StoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        let path = match config.location()? {
            Location::File(path) => absolute(&path),
            Location::Postgres(options) => {
                return Self::open_postgres(config, clock, *options, true).await;
            }
        };
        if !path.is_file() {
            return Err(StoreError::Io {
                path,
                message: "the database file does not exist".to_owned(),
            });
        }
        let options = base_options(&path, &config).read_only(true);
        let conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::from_sqlx(&path, e))?;
        let mut conn = Conn::Sqlite(conn);
        check_migrated(&path, &mut conn, &MIGRATOR).await?;
        let readers = reader_pool(&path, &config, true);
        Ok(Self::assemble(
            path,
            config,
            clock,
            conn,
            None,
            Pool::Sqlite(readers),
            None,
        ))
    }

    async fn open_postgres(
        config: StoreConfig,
        clock: Arc<dyn Clock>,
        options: sqlx::postgres::PgConnectOptions,
        read_only: bool,
    ) -> Result<Store, StoreError> {
        let pg = crate::postgres::connect(&config, options, read_only).await?;
        Ok(Self::assemble(
            pg.path,
            config,
            clock,
            pg.conn,
            Some(pg.options),
            pg.readers,
            None,
        ))
    }

    fn assemble(
        path: PathBuf,
        config: StoreConfig,
        clock: Arc<dyn Clock>,
        conn: Conn,
        reconnect: Option<sqlx::postgres::PgConnectOptions>,
        readers: Pool,
        checkpointer: Option<Checkpointer>,
    ) -> Store {
        let write_stats = Arc::new(WriterCounters::default());
        let backend = conn.backend();
        let writer = Writer::spawn(WriteCx {
            conn,
            reconnect,
            broken: false,
            path: path.clone(),
            clock: Arc::clone(&clock),
            config: config.clone(),
            interactive_streak: std::collections::HashMap::new(),
            stats: Arc::clone(&write_stats),
        });
        Store {
            source: Arc::from(DEFAULT_SOURCE),
            inner: Arc::new(Inner {
                path,
                backend,
                config,
                clock,
                readers,
                writer,
                checkpointer,
                write_stats,
            }),
        }
    }

    /// The same database, working for source `name` (its jobs, its mirror rows).
    pub fn for_source(&self, name: &str) -> Store {
        Store {
            inner: Arc::clone(&self.inner),
            source: Arc::from(name),
        }
    }

    /// The source this handle works for.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Applies any embedded migration the database lacks (idempotent; `open` already did).
    #[tracing::instrument(skip_all, fields(db.path = %self.inner.path.display()), err(level = "debug"))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.write(Migrate).await
    }

    /// Finishes every write already submitted, stops the writer task (awaiting it) and closes
    /// all connections. Afterwards every call fails with [`StoreError::Closed`].
    #[tracing::instrument(skip_all, fields(db.path = %self.inner.path.display()))]
    pub async fn close(&self) {
        if let Some(c) = &self.inner.checkpointer {
            c.shutdown().await;
        }
        self.inner.writer.shutdown().await;
        self.inner.readers.close().await;
    }

    /// The database as messages name it: the SQLite file (absolute), or the PostgreSQL URL
    /// without its password.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The SQLite file, which one daemon at a time may serve (the instance lock is on
    /// it); `None` for PostgreSQL, which any number of replicas share.
    pub fn file(&self) -> Option<&Path> {
        (self.inner.backend == Backend::Sqlite).then_some(self.inner.path.as_path())
    }

    /// True when other replicas may share this database (PostgreSQL): the one rule for
    /// whether leases, heartbeats and shared budgets are needed.
    pub fn shared(&self) -> bool {
        self.inner.backend == Backend::Postgres
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The clock every time-dependent operation reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Counters of the single write path since open (mean group-commit batch size =
    /// `requests / transactions`).
    pub fn write_stats(&self) -> WriteStats {
        self.inner.write_stats.snapshot()
    }

    /// Runs SQLite's `PRAGMA integrity_check`; returns the problems found (empty when the
    /// database is sound). PostgreSQL checks its own pages (checksums, WAL) and offers no
    /// such statement without extensions: there this only checks that the schema answers.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        if self.backend() == Backend::Postgres {
            db::query_scalar::<i64>("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(self.readers())
                .await
                .map_err(|e| self.err(e))?;
            return Ok(Vec::new());
        }
        let rows: Vec<String> = db::query_scalar("PRAGMA integrity_check")
            .fetch_all(self.readers())
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    pub(crate) async fn write<O: WriteOp>(&self, op: O) -> Result<O::Output, StoreError> {
        self.inner.writer.call(op).await
    }

    pub(crate) fn readers(&self) -> &Pool {
        &self.inner.readers
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(&self.inner.path, e)
    }
}

/// Applies the migrations on the writer connection, outside any batch transaction.
struct Migrate;

impl WriteOp for Migrate {
    type Output = ();
    const STANDALONE: bool = true;

    fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // `run_direct` is what `run` calls after `Acquire`; sqlx exposes it for exactly
            // this case (the `Acquire` bound is not provable inside a boxed `Send` future).
            let done = match &mut cx.conn {
                Conn::Sqlite(c) => MIGRATOR.run_direct(None, c, false).await,
                Conn::Postgres(c) => PG_MIGRATOR.run_direct(None, c, false).await,
            };
            done.map_err(|e| StoreError::from_migrate(&cx.path, e))
        })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Creates the parent directory and, if the database does not exist yet, an empty file with
/// mode 0600 (SQLite then gives its `-wal` and `-shm` files the same mode).
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::io(path, "creating the parent directory", &e))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    db.path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the database file is accessible to other users; consider chmod 600"
                );
            }
            Ok(())
        }
        Err(e) => Err(StoreError::io(path, "creating the database file", &e)),
    }
}

fn base_options(path: &Path, config: &StoreConfig) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(config.busy_timeout)
        .foreign_keys(true)
}

fn reader_pool(path: &Path, config: &StoreConfig, read_only: bool) -> SqlitePool {
    let options = base_options(path, config)
        .read_only(read_only)
        .pragma("query_only", "ON");
    SqlitePoolOptions::new()
        .max_connections(config.read_connections.max(1))
        .min_connections(0)
        .connect_lazy_with(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    /// Reads a pragma on the writer connection itself.
    struct WriterPragma(&'static str);

    impl WriteOp for WriterPragma {
        type Output = i64;

        fn apply<'a>(&'a self, cx: &'a mut WriteCx) -> BoxFut<'a, Result<i64, StoreError>> {
            Box::pin(async move {
                db::query_scalar(self.0)
                    .fetch_one(&mut cx.conn)
                    .await
                    .map_err(|e| cx.err(e))
            })
        }
    }

    #[tokio::test]
    async fn the_writer_never_checkpoints_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::for_path(&dir.path().join("w.db"));
        let store = Store::open(config, Arc::new(SystemClock)).await.unwrap();
        assert_eq!(
            store
                .write(WriterPragma("PRAGMA wal_autocheckpoint"))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .write(WriterPragma("PRAGMA journal_size_limit"))
                .await
                .unwrap(),
            JOURNAL_SIZE_LIMIT as i64
        );
        store.close().await;
    }
}
