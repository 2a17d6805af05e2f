//! [`StoreError`]: every failure the store reports, classified so callers can react
//! (503 and retry for an unavailable store, re-claim for a lost lease, a bug report otherwise).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// SQLite primary result codes the store distinguishes.
mod code {
    pub(super) const BUSY: i32 = 5;
    pub(super) const LOCKED: i32 = 6;
    pub(super) const READONLY: i32 = 8;
    pub(super) const IOERR: i32 = 10;
    pub(super) const FULL: i32 = 13;
    pub(super) const CANTOPEN: i32 = 14;
}

/// Why a store operation failed. Cheap to clone: one failed group commit answers every caller
/// in the batch with the same error. Messages name the database file and never contain
/// bound values (tokens, page content).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The disk (or `max_page_count`) is full. Nothing of the failed transaction was written.
    #[error("database {} is full: {message}", path.display())]
    DiskFull { path: PathBuf, message: String },
    /// PostgreSQL reported a serialization failure or a deadlock with another
    /// connection. The writer runs the batch again; callers see this only when the
    /// retries ran out, and may retry.
    #[error("database {} had a conflicting concurrent transaction: {message}", path.display())]
    Conflict { path: PathBuf, message: String },
    /// Another connection or process held the lock longer than `busy_timeout`.
    #[error("database {} is busy or locked: {message}", path.display())]
    Busy { path: PathBuf, message: String },
    /// The file, its directory or the connection is read-only.
    #[error("database {} is read-only: {message}", path.display())]
    ReadOnly { path: PathBuf, message: String },
    /// An I/O error from the OS, or the file could not be opened.
    #[error("I/O error on database {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// A fenced queue call (`extend`, `complete`, `fail`, `release`) came from a worker whose
    /// lease is no longer valid: the job expired and was reclaimed, or it already finished.
    /// The call changed nothing.
    #[error(
        "job {job_id}: lease lost (it expired and was returned to the queue or taken by another worker, or the job already finished); the call was rejected"
    )]
    LeaseLost { job_id: i64 },
    /// Applying the embedded migrations failed.
    #[error(transparent)]
    Migration(MigrationError),
    /// The store was closed (or its writer task stopped).
    #[error("the store is closed")]
    Closed,
    /// The configured URL does not name a usable SQLite file or PostgreSQL database.
    #[error("invalid store url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// `set_page_body` for a page the mirror does not have (properties must be stored first).
    #[error("page {id} is not in the mirror")]
    PageNotFound { id: String },
    /// Any other database error (constraint violations, corrupt rows, driver errors). A bug
    /// or a damaged database; not retryable as such.
    #[error(transparent)]
    Database(DatabaseError),
}

impl StoreError {
    /// True when the store cannot accept or serve writes right now (disk full, busy,
    /// read-only, I/O error, closed): the HTTP layer answers 503 and the sender retries.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::DiskFull { .. }
                | Self::Conflict { .. }
                | Self::Busy { .. }
                | Self::ReadOnly { .. }
                | Self::Io { .. }
                | Self::Closed
        )
    }

    /// Environmental failures abort a whole group-commit batch; other errors are blamed on
    /// the single operation that raised them.
    pub(crate) fn aborts_batch(&self) -> bool {
        self.is_unavailable()
    }

    pub(crate) fn from_sqlx(path: &Path, error: sqlx::Error) -> Self {
        let path = path.to_owned();
        match &error {
            sqlx::Error::Database(db)
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some() =>
            {
                let sqlstate = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let message = db.message().to_owned();
                match pg_class(&sqlstate) {
                    Some(PgClass::Conflict) => Self::Conflict { path, message },
                    Some(PgClass::Full) => Self::DiskFull { path, message },
                    Some(PgClass::Busy) => Self::Busy { path, message },
                    Some(PgClass::ReadOnly) => Self::ReadOnly { path, message },
                    Some(PgClass::Io) => Self::Io { path, message },
                    None => Self::Database(DatabaseError::new(path, error)),
                }
            }
            sqlx::Error::Database(db) => {
                let code = db.code().and_then(|c| c.parse::<i32>().ok());
                let message = db.message().to_owned();
                match code.map(|c| c & 0xff) {
                    Some(code::FULL) => Self::DiskFull { path, message },
                    Some(code::BUSY | code::LOCKED) => Self::Busy { path, message },
                    Some(code::READONLY) => Self::ReadOnly { path, message },
                    Some(code::IOERR | code::CANTOPEN) => Self::Io { path, message },
                    _ => Self::Database(DatabaseError::new(path, error)),
                }
            }
            sqlx::Error::Io(e) => Self::Io {
                path,
                message: e.to_string(),
            },
            sqlx::Error::PoolTimedOut => Self::Busy {
                path,
                message: "timed out waiting for a reader connection".to_owned(),
            },
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Self::Closed,
            sqlx::Error::Tls(e) => Self::Io {
                path,
                message: e.to_string(),
            },
            sqlx::Error::Protocol(m) => Self::Io {
                path,
                message: m.clone(),
            },
            _ => Self::Database(DatabaseError::new(path, error)),
        }
    }

    pub(crate) fn from_migrate(path: &Path, error: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError as M;
        match error {
            M::Execute(e) | M::ExecuteMigration(e, _) => match Self::from_sqlx(path, e) {
                Self::Database(db) => Self::Migration(MigrationError::new(path, db.to_string())),
                environmental => environmental,
            },
            other => Self::Migration(MigrationError::new(path, other.to_string())),
        }
    }

    pub(crate) fn io(path: &Path, what: &str, error: &std::io::Error) -> Self {
        let message = format!("{what}: {error}");
        match error.kind() {
            std::io::ErrorKind::StorageFull => Self::DiskFull {
                path: path.to_owned(),
                message,
            },
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                Self::ReadOnly {
                    path: path.to_owned(),
                    message,
                }
            }
            _ => Self::Io {
                path: path.to_owned(),
                message,
            },
        }
    }
}

/// How a PostgreSQL SQLSTATE is treated (the classes the store reacts to).
enum PgClass {
    Conflict,
    Full,
    Busy,
    ReadOnly,
    Io,
}

fn pg_class(sqlstate: &str) -> Option<PgClass> {
    Some(match sqlstate {
        // serialization_failure, deadlock_detected
        "40001" | "40P01" => PgClass::Conflict,
        // disk_full, out_of_memory
        "53100" | "53200" => PgClass::Full,
        // too_many_connections, lock_not_available, query_canceled (statement_timeout)
        "53300" | "55P03" | "57014" => PgClass::Busy,
        // read_only_sql_transaction (a standby, or a read-only store)
        "25006" => PgClass::ReadOnly,
        // admin/crash shutdown, cannot_connect_now, connection exceptions
        s if s.starts_with("57P") || s.starts_with("08") => PgClass::Io,
        _ => return None,
    })
}

/// A database error that is neither environmental nor a lost lease.
#[derive(Debug, Clone, thiserror::Error)]
#[error("database error on {}: {source}", path.display())]
pub struct DatabaseError {
    path: PathBuf,
    #[source]
    source: Arc<sqlx::Error>,
}

impl DatabaseError {
    fn new(path: PathBuf, source: sqlx::Error) -> Self {
        Self {
            path,
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(path: &Path, what: String) -> Self {
        Self::new(path.to_owned(), sqlx::Error::Decode(what.into()))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Migrations could not be applied (or the database has migrations this build lacks).
#[derive(Debug, Clone, thiserror::Error)]
#[error("applying migrations to {}: {message}", path.display())]
pub struct MigrationError {
    path: PathBuf,
    message: String,
}

impl MigrationError {
    pub(crate) fn new(path: &Path, message: String) -> Self {
        Self {
            path: path.to_owned(),
            message,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
