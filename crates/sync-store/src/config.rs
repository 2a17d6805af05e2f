//! Store settings ([`StoreConfig`], [`Synchronous`]) and parsing of the `[store] url` key.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::StoreError;

/// SQLite's `PRAGMA synchronous` for the writer connection (the database is always in WAL mode).
///
/// * `Full` (default): every commit fsyncs the WAL before `ingest`/`enqueue`/… return, so an
///   acknowledged webhook survives power loss and OS crashes.
/// * `Normal`: commits reach the OS but the WAL is fsynced only at checkpoints. An
///   acknowledged write survives a crash of the daemon (even `SIGKILL`), but the last
///   commits may be lost on power loss or kernel panic. Faster; see `BENCHMARKS.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `PRAGMA synchronous = FULL`.
    #[default]
    Full,
    /// `PRAGMA synchronous = NORMAL`.
    Normal,
}

impl Synchronous {
    /// `"FULL"` or `"NORMAL"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

impl std::fmt::Display for Synchronous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing a [`Synchronous`] from text fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid synchronous mode {0:?}: expected \"FULL\" or \"NORMAL\"")]
pub struct ParseSynchronousError(String);

impl FromStr for Synchronous {
    type Err = ParseSynchronousError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("full") {
            Ok(Self::Full)
        } else if s.eq_ignore_ascii_case("normal") {
            Ok(Self::Normal)
        } else {
            Err(ParseSynchronousError(s.to_owned()))
        }
    }
}

/// Everything the store needs to open a database. Build with [`StoreConfig::for_path`] or
/// `StoreConfig { url: …, ..Default::default() }`. `Debug` shows the URL without its
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, `sqlite:path.db` or a plain
    /// path (the parent directory is created; a new file is created with mode 0600); or
    /// `postgres://user:password@host:port/database` (also `postgresql://`, with libpq's
    /// query parameters such as `sslmode`), which several replicas may share.
    pub url: String,
    /// Durability of each commit. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock held by another connection or process before
    /// failing with [`StoreError::Busy`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Size of the reader pool. Default 4.
    pub read_connections: u32,
    /// `PRAGMA max_page_count` on the writer connection (pages are 4 KiB). `None` = SQLite's
    /// default (effectively unlimited). Used to test disk-full handling.
    pub max_page_count: Option<u64>,
    /// Webhook events older than this are removed by [`Store::prune_events`](crate::Store::prune_events).
    /// Must exceed Notion's redelivery window (about 24 h). Default 7 days.
    pub event_retention: Duration,
    /// A job that has been attempted this many times and fails again goes to `dead`. Default 8.
    pub max_attempts: u32,
    /// First retry delay after a transient failure; doubles per attempt. Default 2 s.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay (before jitter). Default 10 min.
    pub backoff_max: Duration,
    /// Most write requests committed in one group-commit transaction. Default 512.
    pub group_commit_max_batch: usize,
    /// Bulk-lane floor: after this many consecutive interactive claims made while bulk work
    /// was due, the next claimed job comes from the bulk lane. 0 = strict priority. Default 4
    /// (bulk gets at least 1 in 5 claims when both lanes have due work).
    pub bulk_floor_every: u32,
    /// The name this process's overdue write intents carry. `serve` uses its instance name
    /// (`serve:<pid>:<random>`) so that the next `serve`, holding the instance lock, takes
    /// over at once what a killed predecessor left in flight
    /// ([`Store::reclaim_status_writes`](crate::Store::reclaim_status_writes)). Empty:
    /// anonymous, freed only by the claim window. Default empty.
    pub claimant: String,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.display_url())
            .field("synchronous", &self.synchronous)
            .field("busy_timeout", &self.busy_timeout)
            .field("read_connections", &self.read_connections)
            .field("max_page_count", &self.max_page_count)
            .field("event_retention", &self.event_retention)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("group_commit_max_batch", &self.group_commit_max_batch)
            .field("bulk_floor_every", &self.bulk_floor_every)
            .field("claimant", &self.claimant)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/notion-sync.db".to_owned(),
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_page_count: None,
            event_retention: Duration::from_secs(7 * 24 * 3600),
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            group_commit_max_batch: 512,
            bulk_floor_every: 4,
            claimant: String::new(),
        }
    }
}

impl StoreConfig {
    /// Defaults, with the database at `path`.
    pub fn for_path(path: &Path) -> Self {
        Self {
            url: path.to_string_lossy().into_owned(),
            ..Self::default()
        }
    }

    /// The database file this configuration names (relative paths stay relative to the
    /// working directory). An error for a PostgreSQL URL.
    pub fn database_path(&self) -> Result<PathBuf, StoreError> {
        match self.location()? {
            Location::File(path) => Ok(path),
            Location::Postgres(_) => Err(invalid(
                &self.display_url(),
                "a PostgreSQL database has no file path",
            )),
        }
    }

    /// Where the database lives.
    pub fn location(&self) -> Result<Location, StoreError> {
        let trimmed = self.url.trim();
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            let options = trimmed
                .parse::<sqlx::postgres::PgConnectOptions>()
                // sqlx's parse errors name the part that is wrong, not the URL's text.
                .map_err(|e| invalid(&self.display_url(), &e.to_string()))?;
            return Ok(Location::Postgres(Box::new(options)));
        }
        parse_url(&self.url).map(Location::File)
    }

    /// The URL as logs, errors and health may show it: a PostgreSQL password and the
    /// query string are hidden.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// Where a [`StoreConfig`] puts the database (`Debug` shows no password).
#[derive(Clone)]
pub enum Location {
    /// A SQLite file: one daemon at a time (the instance lock is on it).
    File(PathBuf),
    /// A PostgreSQL database: any number of replicas.
    Postgres(Box<sqlx::postgres::PgConnectOptions>),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Postgres(o) => f
                .debug_struct("Postgres")
                .field("host", &o.get_host())
                .field("port", &o.get_port())
                .field("database", &o.get_database())
                .finish_non_exhaustive(),
        }
    }
}

/// `scheme://user:secret@host/db?…` → `scheme://user:***@host/db?…`: a URL as logs and
/// messages may show it.
pub fn redact_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The userinfo ends at the last `@` (a password may hold `/`, `?`, `#` or `@`);
    // what follows is host, port, path and query.
    let (user, after) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => match userinfo.split_once(':') {
            Some((user, _)) => (format!("{user}:***@"), after),
            None => (format!("{userinfo}@"), after),
        },
        None => (String::new(), rest),
    };
    let (location, query) = match after.split_once(['?', '#']) {
        Some((location, _)) => (location, "?…"),
        None => (after, ""),
    };
    format!("{scheme}://{user}{location}{query}")
}

fn invalid(url: &str, reason: &str) -> StoreError {
    StoreError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Turns the configured URL into a file path.
pub(crate) fn parse_url(url: &str) -> Result<PathBuf, StoreError> {
    let trimmed = url.trim();
    let rest = if let Some(rest) = trimmed.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = trimmed.strip_prefix("sqlite:") {
        rest
    } else if trimmed.contains("://") {
        return Err(invalid(
            url,
            "only sqlite:// and postgres:// URLs or plain file paths are supported",
        ));
    } else {
        trimmed
    };
    if rest.contains('?') {
        return Err(invalid(
            url,
            "query parameters are not supported; use the [store] settings instead",
        ));
    }
    if rest.is_empty() {
        return Err(invalid(url, "no database file path"));
    }
    if rest == ":memory:" || rest.starts_with("file:") {
        return Err(invalid(
            url,
            "the store needs a database file (in-memory and file: URIs are not supported)",
        ));
    }
    if rest.ends_with('/') {
        return Err(invalid(
            url,
            "the path names a directory, not a database file",
        ));
    }
    Ok(PathBuf::from(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(url: &str, expected: &str) {
        assert_eq!(parse_url(url).unwrap(), PathBuf::from(expected), "{url}");
    }

    #[track_caller]
    fn err(url: &str) {
        let e = parse_url(url).unwrap_err();
        assert!(matches!(e, StoreError::InvalidUrl { .. }), "{url}: {e:?}");
    }

    #[test]
    fn urls() {
        ok("sqlite://data/notion-sync.db", "data/notion-sync.db");
        ok("sqlite:///abs/path.db", "/abs/path.db");
        ok("sqlite:rel.db", "rel.db");
        ok("/plain/abs.db", "/plain/abs.db");
        ok("plain.db", "plain.db");
        ok("  sqlite://x.db ", "x.db");
        err("");
        err("sqlite://");
        err("sqlite::memory:");
        err("sqlite://x.db?mode=rwc");
        err("mysql://localhost/db");
        err("sqlite://data/");
    }

    #[test]
    fn postgres_urls_select_postgres_and_never_show_the_password() {
        let config = StoreConfig {
            url: "postgres://sync:hunter2@db.internal:5433/notion?sslmode=require".into(),
            ..StoreConfig::default()
        };
        assert!(matches!(config.location().unwrap(), Location::Postgres(_)));
        assert_eq!(
            config.display_url(),
            "postgres://sync:***@db.internal:5433/notion?…"
        );
        assert!(config.database_path().is_err());
        let bad = StoreConfig {
            url: "postgres://sync:hunter2@db:notaport/x".into(),
            ..StoreConfig::default()
        };
        let e = bad.location().unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(redact_url("postgresql://u@h/d"), "postgresql://u@h/d");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        // Passwords holding URL delimiters stay hidden.
        for (url, shown) in [
            ("postgres://u:ab/cd@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:ab?cd@h:5432/db?sslmode=require",
                "postgres://u:***@h:5432/db?…",
            ),
            ("postgres://u:a@b#c@h/db", "postgres://u:***@h/db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn synchronous_parses_case_insensitively() {
        assert_eq!("FULL".parse::<Synchronous>().unwrap(), Synchronous::Full);
        assert_eq!(
            "normal".parse::<Synchronous>().unwrap(),
            Synchronous::Normal
        );
        assert_eq!(
            "Normal".parse::<Synchronous>().unwrap(),
            Synchronous::Normal
        );
        assert!("off".parse::<Synchronous>().is_err());
        assert_eq!(Synchronous::default(), Synchronous::Full);
    }
}
