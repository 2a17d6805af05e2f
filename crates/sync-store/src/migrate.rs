//! The embedded migrations of both engines, and the check a read-only store makes instead
//! of migrating.

use std::path::Path;

use crate::db::{self, Conn};
use crate::error::{MigrationError, StoreError};

/// The SQLite migrations in the repository's `migrations/sqlite/`, embedded at compile time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
/// The PostgreSQL migrations in `migrations/postgres/` (the same schema, version by version).
pub(crate) static PG_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/postgres");

/// A read-only store cannot migrate; refuse a database this build's schema does not match.
pub(crate) async fn check_migrated(
    path: &Path,
    conn: &mut Conn,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), StoreError> {
    let applied: Vec<i64> = db::query_scalar(
        "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    let missing: Vec<i64> = migrator
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Migration(MigrationError::new(
            path,
            format!(
                "the database lacks migrations {missing:?}; run `notion-sync migrate` (a read-only store cannot migrate)"
            ),
        )))
    }
}
