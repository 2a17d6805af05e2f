//! Opening a PostgreSQL store: the writer's connection (migrated under sqlx's advisory
//! lock, so replicas starting together take turns), the reader pool, the session settings
//! that make PostgreSQL answer like the SQLite store (lock waits bounded by
//! `busy_timeout`, text compared byte by byte by the schema's `COLLATE "C"`), and the
//! read-only mode the CLI inspects with.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::clock::Clock;
use crate::config::StoreConfig;
use crate::db::{Conn, Pool};
use crate::error::StoreError;
use crate::store::{PG_MIGRATOR, Store, check_migrated};

/// Connects, migrates (unless `read_only`: then it refuses a database that lacks this
/// build's migrations, and every write fails with [`StoreError::ReadOnly`]) and starts the
/// writer and the readers.
pub(crate) async fn open(
    config: StoreConfig,
    clock: Arc<dyn Clock>,
    options: PgConnectOptions,
    read_only: bool,
) -> Result<Store, StoreError> {
    let path = PathBuf::from(config.display_url());
    let lock_timeout = format!("{}ms", config.busy_timeout.as_millis());
    let mut settings = vec![("lock_timeout", lock_timeout.as_str())];
    if read_only {
        settings.push(("default_transaction_read_only", "on"));
    }
    let options = options
        .application_name("notion-sync")
        .options(settings)
        // Statements are logged by our own spans, never with their values.
        .disable_statement_logging();
    let conn = options
        .connect()
        .await
        .map_err(|e| StoreError::from_sqlx(&path, e))?;
    let mut conn = Conn::Postgres(conn);
    if read_only {
        check_migrated(&path, &mut conn, &PG_MIGRATOR).await?;
    } else if let Conn::Postgres(c) = &mut conn {
        PG_MIGRATOR
            .run_direct(None, c, false)
            .await
            .map_err(|e| StoreError::from_migrate(&path, e))?;
    }
    let readers = PgPoolOptions::new()
        .max_connections(config.read_connections.max(1))
        .min_connections(0)
        .acquire_timeout(config.busy_timeout.max(std::time::Duration::from_secs(1)))
        .connect_lazy_with(options.clone());
    tracing::info!(db.url = %path.display(), read_only, "store opened (PostgreSQL)");
    Ok(Store::assemble(
        path,
        config,
        clock,
        conn,
        Some(options),
        Pool::Postgres(readers),
        None,
    ))
}

/// Creates database `name` (letters, digits and `_` only) on the server `server_url`
/// names, unless it exists; returns the URL of the new database. For the test suites, the
/// e2e bench and first-time setup scripts: the daemon itself never creates databases.
pub async fn ensure_database(server_url: &str, name: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    let shown = PathBuf::from(crate::config::redact_url(server_url));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::InvalidUrl {
            url: name.to_owned(),
            reason: "a database name of letters, digits and _".to_owned(),
        });
    }
    let mut admin = sqlx::PgConnection::connect(server_url)
        .await
        .map_err(|e| StoreError::from_sqlx(&shown, e))?;
    let created = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    match created {
        Ok(_) => {}
        // duplicate_database: it exists already.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => return Err(StoreError::from_sqlx(&shown, e)),
    }
    let base = server_url.split('?').next().unwrap_or(server_url);
    let server = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, _)) => format!("{scheme}://{authority}"),
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    Ok(format!("{server}/{name}"))
}
