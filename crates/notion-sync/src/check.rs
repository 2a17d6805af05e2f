//! `notion-sync check`: one line per check, ✓ or ✗, each ✗ with the fix; exit 1 on any ✗.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use notion_api::{ErrorClass, NotionClient, NotionError, NotionId};
use sync_engine::{Source, rules};
use sync_store::SystemClock;

use crate::app::{notion_client, open_store};
use crate::config::{Config, Secrets, mask};

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub ok: bool,
    pub name: &'static str,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "✓" } else { "✗" };
        write!(f, "{mark} {}: {}", self.name, self.text)
    }
}

fn ok(name: &'static str, text: impl Into<String>) -> Line {
    Line {
        ok: true,
        name,
        text: text.into(),
    }
}

fn fail(name: &'static str, text: impl Into<String>) -> Line {
    Line {
        ok: false,
        name,
        text: text.into(),
    }
}

pub async fn run(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    crate::telemetry::init_tracing(crate::telemetry::LogFormat::Pretty, "error");
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let lines = checks(config_path, &env).await;
    for line in &lines {
        println!("{line}");
    }
    Ok(if lines.iter().all(|l| l.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs every check it can; later checks are skipped (✗ with the reason) when an
/// earlier one they need failed.
pub async fn checks(
    config_path: Option<&Path>,
    env: &std::collections::BTreeMap<String, String>,
) -> Vec<Line> {
    let mut lines = Vec::new();
    let config = match Config::load(config_path, env) {
        Ok(c) => {
            let origin = config_path.map_or("compiled-in defaults".to_owned(), |p| {
                p.display().to_string()
            });
            lines.push(ok("config", format!("valid ({origin})")));
            c
        }
        Err(e) => {
            lines.push(fail(
                "config",
                format!("{e}; fix the key and run check again"),
            ));
            return lines;
        }
    };
    let secrets = match Secrets::from_env(env) {
        Ok(s) => s,
        Err(e) => {
            lines.push(fail("secrets", e.to_string()));
            return lines;
        }
    };
    lines.push(database_check(&config).await);

    let client = match notion_client(&config, &secrets) {
        Ok(c) => c,
        Err(e) => {
            lines.push(fail("token", format!("{e:#}")));
            lines.push(webhook_check(&secrets));
            return lines;
        }
    };
    let token_shown = secrets.notion_token.as_ref().map(mask).unwrap_or_default();
    match client.users_me().await {
        Ok(me) => lines.push(ok(
            "token",
            format!(
                "valid ({token_shown}, integration {:?})",
                me.value.name.unwrap_or_default()
            ),
        )),
        Err(e) => {
            lines.push(fail("token", token_fix(&e)));
            lines.push(webhook_check(&secrets));
            return lines;
        }
    }
    match data_source_checks(&config, &client).await {
        Ok(mut more) => lines.append(&mut more),
        Err(line) => lines.push(line),
    }
    lines.push(webhook_check(&secrets));
    lines
}

async fn database_check(config: &Config) -> Line {
    let store = match open_store(config, Arc::new(SystemClock)).await {
        Ok(s) => s,
        Err(e) => {
            return fail(
                "database",
                format!("{e:#}; make sure the directory exists and is writable by this user"),
            );
        }
    };
    let probe = store.set_state("check:probe", "1").await;
    let _ = store.delete_state("check:probe").await;
    let path = store.path().display().to_string();
    store.close().await;
    match probe {
        Ok(()) => ok("database", format!("{path} (writable, migrations applied)")),
        Err(e) => fail("database", format!("{path} is not writable: {e}")),
    }
}

fn token_fix(e: &NotionError) -> String {
    match e.class() {
        ErrorClass::Unauthorized => format!(
            "Notion rejected the token ({e}); copy the integration's secret again from https://www.notion.so/profile/integrations into NOTION_TOKEN"
        ),
        ErrorClass::Transport | ErrorClass::Timeout => {
            format!("cannot reach Notion ({e}); check notion.api_url and outbound HTTPS access")
        }
        _ => format!("users/me failed: {e}"),
    }
}

fn not_shared_fix(kind: &str, id: NotionId, e: &NotionError) -> String {
    match e.class() {
        ErrorClass::NotFound => format!(
            "{kind} {id} not found or not shared with the integration ({}); in Notion open the database → ••• → Connections → add your integration, and check the id",
            e.code().unwrap_or("object_not_found")
        ),
        ErrorClass::Forbidden => format!(
            "the integration may not read {kind} {id} ({e}); give it the \"Read content\" and \"Update content\" capabilities"
        ),
        _ => format!("retrieving {kind} {id} failed: {e}"),
    }
}

async fn data_source_checks(config: &Config, client: &NotionClient) -> Result<Vec<Line>, Line> {
    let sources = match config.notion.source {
        Some(Source::DataSource(id)) => vec![id],
        Some(Source::Database(db)) => match client.retrieve_database(db).await {
            Ok(d) if d.value.data_sources.is_empty() => {
                return Err(fail(
                    "data source",
                    format!("database {db} has no data sources"),
                ));
            }
            Ok(d) => d.value.data_sources.iter().map(|s| s.id).collect(),
            Err(e) => return Err(fail("data source", not_shared_fix("database", db, &e))),
        },
        None => {
            return Err(fail(
                "data source",
                "not configured: set notion.data_source_id (or notion.database_id); the id is in the database URL / \"Copy data source ID\"",
            ));
        }
    };
    let tasks = &config.tasks;
    let mut lines = Vec::new();
    for id in sources {
        match client.retrieve_data_source(id).await {
            Ok(ds) => {
                let title: String = ds
                    .value
                    .title
                    .iter()
                    .map(|t| t.plain_text.as_str())
                    .collect();
                lines.push(ok(
                    "data source",
                    format!("{id} {title:?} reachable and shared"),
                ));
                match rules::check_schema(&ds.value, tasks) {
                    Ok(info) => lines.push(ok(
                        "schema",
                        format!(
                            "{:?} is a {} property with {:?}; {:?} is a date; open statuses {:?}",
                            tasks.status_property,
                            match info.status_kind {
                                rules::StatusKind::Status => "status",
                                rules::StatusKind::Select => "select",
                            },
                            tasks.overdue_status,
                            tasks.due_property,
                            info.open_statuses
                        ),
                    )),
                    Err(problems) => lines.push(fail(
                        "schema",
                        format!(
                            "{}; rename the property in Notion or set the [tasks] keys to match",
                            problems.join("; ")
                        ),
                    )),
                }
            }
            Err(e) => lines.push(fail("data source", not_shared_fix("data source", id, &e))),
        }
    }
    Ok(lines)
}

fn webhook_check(secrets: &Secrets) -> Line {
    match &secrets.webhook_secret {
        Some(s) => ok("webhook secret", format!("set ({})", mask(s))),
        None => fail(
            "webhook secret",
            "NOTION_WEBHOOK_SECRET is not set: create the webhook subscription in Notion, run `notion-sync webhook tokens` while the daemon runs, and set NOTION_WEBHOOK_SECRET to the token",
        ),
    }
}
