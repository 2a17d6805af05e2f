//! `notion-sync check`: one line per check, ✓ or ✗, each ✗ with the fix; exit 1 on any ✗.
//! With several integrations or sources, each line says which one it checked.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use notion_api::{ErrorClass, NotionClient, NotionError, NotionId};
use sync_engine::{Source, rules};
use sync_store::SystemClock;

use crate::app::open_store;
use crate::config::{Config, Secrets, SourceConfig, mask, secret_var};
use crate::wiring::integration_client;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub ok: bool,
    pub name: &'static str,
    /// The integration or source checked, when there are several.
    pub scope: Option<String>,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "✓" } else { "✗" };
        match &self.scope {
            Some(scope) => write!(f, "{mark} {} ({scope}): {}", self.name, self.text),
            None => write!(f, "{mark} {}: {}", self.name, self.text),
        }
    }
}

impl Line {
    fn within(mut self, scope: Option<&str>) -> Line {
        self.scope = scope.map(str::to_owned);
        self
    }
}

fn ok(name: &'static str, text: impl Into<String>) -> Line {
    Line {
        ok: true,
        name,
        scope: None,
        text: text.into(),
    }
}

fn fail(name: &'static str, text: impl Into<String>) -> Line {
    Line {
        ok: false,
        name,
        scope: None,
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
    let integrations = config.integrations();
    let names: Vec<String> = integrations.iter().map(|i| i.name.clone()).collect();
    let secrets = match Secrets::for_integrations(env, &names) {
        Ok(s) => s,
        Err(e) => {
            lines.push(fail("secrets", e.to_string()));
            return lines;
        }
    };
    lines.push(database_check(&config).await);
    let sources = config.sources();
    let several = integrations.len() > 1 || sources.len() > 1;
    for integration in &integrations {
        let scope = several.then_some(integration.name.as_str());
        let webhook = webhook_check(&secrets, &integration.name).within(scope);
        let client = match integration_client(&config, integration, &secrets, None) {
            Ok(c) => c,
            Err(e) => {
                lines.push(fail("token", format!("{e:#}")).within(scope));
                lines.push(webhook);
                continue;
            }
        };
        let token_shown = secrets
            .token(&integration.name)
            .map(mask)
            .unwrap_or_default();
        match client.users_me().await {
            Ok(me) => lines.push(
                ok(
                    "token",
                    format!(
                        "valid ({token_shown}, integration {:?})",
                        me.value.name.unwrap_or_default()
                    ),
                )
                .within(scope),
            ),
            Err(e) => {
                lines.push(fail("token", token_fix(&e, &integration.name)).within(scope));
                lines.push(webhook);
                continue;
            }
        }
        let mine: Vec<&SourceConfig> = sources
            .iter()
            .filter(|s| s.integration == integration.name)
            .collect();
        if mine.is_empty() {
            lines.push(data_source_missing());
        }
        for source in mine {
            let scope = several.then(|| format!("source {}", source.name));
            match data_source_checks(source, &client).await {
                Ok(more) => lines.extend(more.into_iter().map(|l| l.within(scope.as_deref()))),
                Err(line) => lines.push(line.within(scope.as_deref())),
            }
        }
        lines.push(webhook);
    }
    lines
}

fn data_source_missing() -> Line {
    fail(
        "data source",
        "not configured: set notion.data_source_id (or notion.database_id); the id is in the database URL / \"Copy data source ID\"",
    )
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

fn token_fix(e: &NotionError, integration: &str) -> String {
    match e.class() {
        ErrorClass::Unauthorized => format!(
            "Notion rejected the token ({e}); copy the integration's secret again from https://www.notion.so/profile/integrations into {}",
            secret_var("NOTION_TOKEN", integration)
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

async fn data_source_checks(
    source: &SourceConfig,
    client: &NotionClient,
) -> Result<Vec<Line>, Line> {
    let sources = match source.source {
        Source::DataSource(id) => vec![id],
        Source::Database(db) => match client.retrieve_database(db).await {
            Ok(d) if d.value.data_sources.is_empty() => {
                return Err(fail(
                    "data source",
                    format!("database {db} has no data sources"),
                ));
            }
            Ok(d) => d.value.data_sources.iter().map(|s| s.id).collect(),
            Err(e) => return Err(fail("data source", not_shared_fix("database", db, &e))),
        },
    };
    let tasks = &source.tasks;
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

fn webhook_check(secrets: &Secrets, integration: &str) -> Line {
    let var = secret_var("NOTION_WEBHOOK_SECRET", integration);
    match secrets.webhook_secret(integration) {
        Some(s) => ok("webhook secret", format!("set ({})", mask(s))),
        None => fail(
            "webhook secret",
            format!(
                "{var} is not set: create the webhook subscription in Notion, run `notion-sync webhook tokens` while the daemon runs, and set {var} to the token"
            ),
        ),
    }
}
