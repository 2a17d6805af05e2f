#![doc = include_str!("../README.md")]

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// Names the backend a suite runs on (`postgres`, else SQLite).
pub const BACKEND_VAR: &str = "NOTION_SYNC_TEST_BACKEND";
/// The PostgreSQL server tests create their databases on.
pub const SERVER_VAR: &str = "NOTION_SYNC_TEST_POSTGRES_URL";

/// True when the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_VAR).is_ok_and(|b| b == "postgres")
}

/// For a test of SQLite-only behaviour: on PostgreSQL prints why it does not apply and
/// returns true (the test returns).
pub fn sqlite_only(why: &str) -> bool {
    if on_postgres() {
        eprintln!("SKIP on PostgreSQL (SQLite only: {why})");
    }
    on_postgres()
}

/// For a test that needs PostgreSQL: on SQLite prints why and returns true.
pub fn postgres_only(why: &str) -> bool {
    if !on_postgres() {
        eprintln!(
            "SKIP on SQLite (PostgreSQL only: {why}; run with {BACKEND_VAR}=postgres, as .ci/test does)"
        );
    }
    !on_postgres()
}

/// The test server's URL. Panics with what to set when it is missing.
pub fn server_url() -> String {
    std::env::var(SERVER_VAR).unwrap_or_else(|_| {
        panic!("{BACKEND_VAR}=postgres needs {SERVER_VAR} naming a server (`eval \"$(.ci/postgres start)\"`)")
    })
}

/// Creates database `name` (letters, digits, `_`) on `server_url` unless it exists;
/// returns its URL.
pub async fn create_database(server_url: &str, name: &str) -> Result<String, sqlx::Error> {
    use sqlx::Connection;
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "a database name of letters, digits and _: {name:?}"
    );
    let mut admin = sqlx::PgConnection::connect(server_url).await?;
    let created = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    match created {
        Ok(_) => {}
        // duplicate_database: it exists already.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => return Err(e),
    }
    Ok(with_database(server_url, name))
}

/// `server_url` with its database replaced by `name` (its query string kept).
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server_url, String::new()),
    };
    let server = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, _)) => format!("{scheme}://{authority}"),
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    format!("{server}/{name}{query}")
}

/// A new, empty database on the test server, named `prefix_<unique>`.
pub async fn fresh_database(prefix: &str) -> String {
    let name = format!("{prefix}_{:016x}", unique());
    create_database(&server_url(), &name)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"))
}

/// The test server's database for `key` (e.g. a test's database file path), created the
/// first time it is asked for.
pub fn database_for(key: &impl Hash) -> String {
    static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let name = format!("t_{:016x}", h.finish());
    let server = server_url();
    let mut created = CREATED.lock().unwrap_or_else(|p| p.into_inner());
    if !created.contains(&name) {
        let (s, n) = (server.clone(), name.clone());
        // Its own thread and runtime: callers may be sync code or inside a runtime.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(create_database(&s, &n))
                .unwrap_or_else(|e| panic!("creating test database {n}: {e}"))
        })
        .join()
        .expect("the database was created");
        created.push(name.clone());
    }
    with_database(&server, &name)
}

fn unique() -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::time::SystemTime::now().hash(&mut h);
    std::process::id().hash(&mut h);
    std::thread::current().id().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_replaces_the_servers_and_keeps_its_query() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t_1"),
            "postgres://u@h:5432/t_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "t_1"),
            "postgres://u:p@h/t_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
