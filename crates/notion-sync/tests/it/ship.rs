//! What a newcomer and an operator run first: `demo`, `check`, and the README's
//! configuration table (checked against the shipped defaults).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::sim_config;

#[tokio::test]
async fn demo_runs_serves_health_ok_and_mirrors_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_notion-sync"))
        .args(["demo", "--duration", "20", "--pages", "60", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--db")
        .arg(&db)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut saw_ok = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(18);
    while tokio::time::Instant::now() < deadline && !saw_ok {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && let Ok(h) = r.json::<serde_json::Value>().await
        {
            saw_ok = h["status"] == "ok";
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {stdout}");
    assert!(saw_ok, "/healthz never said ok while the demo ran");
    let last = stdout
        .lines()
        .find(|l| l.starts_with("demo finished: "))
        .unwrap_or_default();
    // "demo finished: N/M tasks mirrored, …", then the summary a newcomer reads.
    for part in [
        "initial sync",
        "freshness: edit → mirror",
        "requests: ",
        "mirror: ",
    ] {
        assert!(
            stdout.contains(part),
            "no {part:?} in the summary: {stdout}"
        );
    }
    let counts = last
        .strip_prefix("demo finished: ")
        .and_then(|r| r.split_once(" tasks mirrored"))
        .map(|(c, _)| c.to_owned())
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let (present, total) = counts.split_once('/').unwrap();
    assert_eq!(present, total, "{last}");
    // Random edits trash and create a few tasks along the way.
    assert!(total.parse::<usize>().unwrap() >= 50, "{last}");
    // The mirror is a real SQLite file left behind with --db.
    let store = sync_store::Store::open(
        sync_store::StoreConfig::for_path(&db),
        std::sync::Arc::new(sync_store::SystemClock),
    )
    .await
    .unwrap();
    assert!(store.page_count().await.unwrap() >= 50);
    store.close().await;
}

fn check_env(token: &str, secret: Option<&str>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("NOTION_TOKEN".to_owned(), token.to_owned());
    if let Some(s) = secret {
        env.insert("NOTION_WEBHOOK_SECRET".to_owned(), s.to_owned());
    }
    env
}

fn write_config(
    dir: &std::path::Path,
    sim: &notion_sim::SimHandle,
    data_source: &str,
) -> std::path::PathBuf {
    let path = dir.join("notion-sync.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"{}\"\n[notion]\napi_url = \"{}\"\ndata_source_id = \"{data_source}\"\n",
            crate::support::store_url(&dir.join("m.db")),
            sim.base_url()
        ),
    )
    .unwrap();
    path
}

fn render(lines: &[notion_sync::check::Line]) -> String {
    lines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn check_passes_against_the_simulator_and_names_each_failure() {
    let sim = notion_sim::start(sim_config(3)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &sim.data_source_id());

    let lines =
        notion_sync::check::checks(Some(&config), &check_env(sim.token(), Some("secret_x"))).await;
    let text = render(&lines);
    println!("{text}");
    assert!(lines.iter().all(|l| l.ok), "{text}");
    let names: Vec<_> = lines.iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        [
            "config",
            "database",
            "token",
            "data source",
            "schema",
            "webhook secret"
        ]
    );

    // A wrong token.
    let lines =
        notion_sync::check::checks(Some(&config), &check_env("ntn_wrong", Some("secret_x"))).await;
    let text = render(&lines);
    let token = lines.iter().find(|l| l.name == "token").unwrap();
    assert!(!token.ok);
    assert!(
        token
            .text
            .starts_with("Notion rejected the token (notion 401 unauthorized"),
        "{text}"
    );
    assert!(!text.contains("ntn_wrong"), "the token is never printed");

    // A data source the integration cannot see (Notion answers 404 for unshared ones).
    let unshared = "0f0f0f0f-1111-4222-8333-444455556666";
    let other = write_config(dir.path(), &sim, unshared);
    let lines = notion_sync::check::checks(Some(&other), &check_env(sim.token(), Some("s"))).await;
    let ds = lines.iter().find(|l| l.name == "data source").unwrap();
    assert!(!ds.ok);
    assert!(
        ds.text
            .contains("not found or not shared with the integration"),
        "{}",
        ds.text
    );
    assert!(ds.text.contains("Connections"), "{}", ds.text);

    // A missing property, and no webhook secret.
    sim.rename_property("Due Date", "Deadline").unwrap();
    let config = write_config(dir.path(), &sim, &sim.data_source_id());
    let lines = notion_sync::check::checks(Some(&config), &check_env(sim.token(), None)).await;
    let text = render(&lines);
    let schema = lines.iter().find(|l| l.name == "schema").unwrap();
    assert!(!schema.ok);
    assert!(
        schema
            .text
            .starts_with("due property \"Due Date\" not found"),
        "{text}"
    );
    let secret = lines.iter().find(|l| l.name == "webhook secret").unwrap();
    assert!(!secret.ok);
    assert!(secret.text.contains("notion-sync webhook tokens"), "{text}");
    println!("{text}");

    // A bad config value stops at the first line, naming the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[notion]\nrequests_per_second = -1.0\n").unwrap();
    let lines = notion_sync::check::checks(Some(&bad), &check_env(sim.token(), None)).await;
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]
            .to_string()
            .starts_with("✗ config: config key `notion.requests_per_second` = -1")
    );
    sim.shutdown().await;
}

/// Rows `| \`section.key\` | \`default\` | … |` of the README's configuration table.
fn readme_table() -> BTreeMap<String, String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let default = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            key.contains('.')
                .then(|| (key.to_owned(), default.to_owned()))
        })
        .collect()
}

#[test]
fn readme_configuration_table_matches_the_shipped_defaults() {
    let expected: BTreeMap<String, String> = notion_sync::Config::documented_defaults()
        .into_iter()
        .map(|(key, value)| (key, value.to_string()))
        .collect();
    let table = readme_table();
    assert_eq!(
        table, expected,
        "README.md's configuration table drifted from config/default.toml"
    );
}
