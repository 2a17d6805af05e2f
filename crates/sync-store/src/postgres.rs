//! Connecting to a PostgreSQL store: the writer's connection (migrated under sqlx's
//! advisory lock, so replicas starting together take turns), the reader pool, the session
//! settings (lock waits bounded by `busy_timeout`, no transaction left hanging), the
//! read-only mode the CLI inspects with.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::StoreConfig;
use crate::db::{Conn, Pool};
use crate::error::StoreError;
use crate::migrate::{PG_MIGRATOR, check_migrated};

/// A connected, migrated PostgreSQL store's parts, for `Store` to assemble.
pub(crate) struct Connected {
    /// The URL without its password, as messages name the database.
    pub(crate) path: PathBuf,
    pub(crate) conn: Conn,
    /// How to connect again (the writer re-opens a lost connection).
    pub(crate) options: PgConnectOptions,
    pub(crate) readers: Pool,
}

/// Connects the writer and migrates (unless `read_only`: then it refuses a database that
/// lacks this build's migrations, and every write fails with [`StoreError::ReadOnly`]),
/// and makes the reader pool. Session settings: `lock_timeout` = `busy_timeout`; a
/// transaction left idle (a frozen process inside a batch, holding the writers' turn) is
/// ended after [`IDLE_IN_TRANSACTION`]; the server probes a silent peer with TCP
/// keepalives, so a lost machine's session and locks go within a minute.
pub(crate) async fn connect(
    config: &StoreConfig,
    options: PgConnectOptions,
    read_only: bool,
) -> Result<Connected, StoreError> {
    let path = PathBuf::from(config.display_url());
    let lock_timeout = format!("{}ms", config.busy_timeout.as_millis());
    let idle = format!("{}ms", IDLE_IN_TRANSACTION.as_millis());
    let mut settings = vec![
        ("lock_timeout", lock_timeout.as_str()),
        ("idle_in_transaction_session_timeout", idle.as_str()),
        ("tcp_keepalives_idle", "20"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "4"),
    ];
    if read_only {
        settings.push(("default_transaction_read_only", "on"));
    }
    let options = options
        .application_name("notion-sync")
        .options(settings)
        // Statements are logged by our own spans, never with their values.
        .disable_statement_logging();
    let connect_timeout = config.busy_timeout.max(Duration::from_secs(5));
    let conn = match tokio::time::timeout(connect_timeout, options.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(StoreError::from_sqlx(&path, e)),
        Err(_) => {
            return Err(StoreError::Io {
                path,
                message: format!("no connection within {} s", connect_timeout.as_secs()),
            });
        }
    };
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
        .acquire_timeout(connect_timeout)
        .connect_lazy_with(options.clone());
    tracing::info!(db.url = %path.display(), read_only, "store opened (PostgreSQL)");
    Ok(Connected {
        path,
        conn,
        options,
        readers: Pool::Postgres(readers),
    })
}

/// A transaction idle this long is ended by the server (batches never wait inside one).
pub(crate) const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(15);
