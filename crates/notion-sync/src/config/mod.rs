//! Configuration, parsed once at start into typed values: compiled-in defaults (each
//! written once, by the library that owns the setting), then a TOML file, then
//! `NOTION_SYNC_<SECTION>__<KEY>` overrides; secrets only from the environment.
//! `config/default.toml` documents every key, and a test keeps it equal to the defaults.

mod doc;
mod error;
mod fields;
mod secrets;
mod sources;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sync_engine::{ReconcileConfig, Source, TaskConfig, WorkerConfig};
use sync_store::{StoreConfig, Synchronous};

pub use doc::ENV_PREFIX;
use doc::{Doc, Section};
pub use error::ConfigError;
pub use secrets::{IntegrationSecrets, Secrets, mask, secret_var};
pub use sources::{IntegrationConfig, MAX_NAME_LEN, SourceConfig, valid_name};

use crate::replica::{BudgetSharing, ReplicasConfig};
use crate::telemetry::LogFormat;

/// The whole configuration, typed. Build it with [`Config::load`]; `default()` is what
/// an empty file means (each section's defaults come from the library that owns it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    /// `[store]`, with `workers.max_attempts` (the queue's limit).
    pub store: StoreConfig,
    pub notion: NotionConfig,
    /// `[workers]`, with `server.shutdown_grace_seconds`.
    pub workers: WorkerConfig,
    pub reconcile: ReconcileConfig,
    pub tasks: TaskConfig,
    pub log: LogConfig,
    /// `[replicas]`: several replicas on one PostgreSQL database.
    pub replicas: ReplicasConfig,
    /// `[integrations.<name>]` as written (see [`Config::integrations`] for all in use).
    pub integrations: Vec<IntegrationConfig>,
    /// `[sources.<name>]` as written (see [`Config::sources`] for the single-source one).
    pub sources: Vec<SourceConfig>,
}

/// `[server]`: the HTTP surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Webhook bodies above this get 413.
    pub max_body_bytes: u64,
    /// Connections served at once; more are closed when accepted.
    pub max_connections: usize,
    /// A connection must send a complete request head within this (idle keep-alive too).
    pub header_timeout: Duration,
    /// A request body must arrive within this, else 408.
    pub body_timeout: Duration,
    /// Store handshakes even when a webhook secret is configured.
    pub accept_handshakes: bool,
    /// After SIGTERM, `/healthz` answers 503 (draining) this long while webhooks are still
    /// taken, so a load balancer stops sending before intake closes.
    pub drain: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            max_body_bytes: 1_048_576,
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            accept_handshakes: false,
            drain: Duration::ZERO,
        }
    }
}

/// `[notion]`: where Notion is and what to mirror.
#[derive(Debug, Clone, PartialEq)]
pub struct NotionConfig {
    pub api_url: String,
    /// `None` until `data_source_id` or `database_id` is set.
    pub source: Option<Source>,
    pub requests_per_second: f64,
    pub timeout: Duration,
    pub max_attempts: u32,
}

impl Default for NotionConfig {
    fn default() -> Self {
        Self {
            api_url: notion_api::DEFAULT_BASE_URL.into(),
            source: None,
            requests_per_second: 3.0,
            timeout: Duration::from_secs(60),
            max_attempts: 5,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A level or a `RUST_LOG`-style filter (`RUST_LOG` itself wins).
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then `NOTION_SYNC_<SECTION>__<KEY>` overrides.
    pub fn load(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let (table, origin) = match path {
            Some(p) => (read_table(p)?, p.to_owned()),
            None => (toml::Table::new(), PathBuf::from("<defaults>")),
        };
        let mut doc = Doc::new(table, origin);
        doc.apply_env(env)?;
        Self::parse(&mut doc)
    }

    /// Every key with its default, as TOML, in documentation order (the README's table).
    pub fn documented_defaults() -> Vec<(String, toml::Value)> {
        let mut doc = Doc::new(toml::Table::new(), PathBuf::from("<defaults>"));
        Self::parse(&mut doc).expect("the defaults are valid");
        doc.keys
    }

    /// Reads every key once into its typed value.
    fn parse(doc: &mut Doc) -> Result<Config, ConfigError> {
        let d = Config::default();
        let (server, shutdown_grace) = parse_server(doc.section("server")?, &d)?;
        let mut store = parse_store(doc.section("store")?, d.store)?;
        let notion = parse_notion(doc.section("notion")?, d.notion)?;
        let mut s = doc.section("workers")?;
        let count = s.integer(
            "concurrency",
            d.workers.count as u64,
            1..=64,
            "must be between 1 and 64",
        )? as usize;
        store.max_attempts = s.integer(
            "max_attempts",
            u64::from(store.max_attempts),
            1..=100,
            "must be between 1 and 100",
        )? as u32;
        let workers = WorkerConfig {
            count,
            lease: s.seconds(
                "lease_seconds",
                d.workers.lease,
                10..=3600,
                "must be between 10 and 3600",
            )?,
            shutdown_grace,
            bulk_read_threshold: s.integer(
                "bulk_read_threshold",
                d.workers.bulk_read_threshold as u64,
                0..=100_000,
                "must be between 0 (off) and 100000",
            )? as usize,
        };
        s.finish()?;
        let reconcile = parse_reconcile(doc.section("reconcile")?, d.reconcile)?;
        let tasks = fields::tasks(doc.section("tasks")?, d.tasks)?;
        let mut s = doc.section("log")?;
        let log = LogConfig {
            format: s.text(
                "format",
                d.log.format,
                "must be \"json\" or \"pretty\"",
                |v| match v {
                    "json" => Some(LogFormat::Json),
                    "pretty" => Some(LogFormat::Pretty),
                    _ => None,
                },
                |f| f.as_str().to_owned(),
            )?,
            level: s.string(
                "level",
                d.log.level,
                "must be a level (error, warn, info, debug, trace) or a RUST_LOG-style filter",
                |v| tracing_subscriber::EnvFilter::try_new(v).is_ok(),
            )?,
        };
        s.finish()?;
        let replicas = parse_replicas(doc.section("replicas")?, d.replicas)?;
        let (integrations, sources) = sources::parse(doc, notion.requests_per_second, &tasks)?;
        if let (Some(first), Some(_)) = (sources.first(), notion.source) {
            return Err(ConfigError::Invalid {
                key: "notion.data_source_id".into(),
                value: "(set)".into(),
                allowed: format!(
                    "with [sources.*] (such as sources.{}) each source names its own data source: leave notion.data_source_id and notion.database_id empty",
                    first.name
                ),
            });
        }
        doc.finish()?;
        Ok(Config {
            integrations,
            sources,
            server,
            store,
            notion,
            workers,
            reconcile,
            tasks,
            log,
            replicas,
        })
    }
}

impl Config {
    /// Every source: the `[sources.*]`, or else the one `[notion]` and `[tasks]` describe,
    /// named `default` (none while no data source is set).
    pub fn sources(&self) -> Vec<SourceConfig> {
        if !self.sources.is_empty() {
            return self.sources.clone();
        }
        self.notion
            .source
            .map(|source| SourceConfig {
                name: sync_store::DEFAULT_SOURCE.to_owned(),
                integration: sync_store::DEFAULT_SOURCE.to_owned(),
                source,
                tasks: self.tasks.clone(),
            })
            .into_iter()
            .collect()
    }

    /// Every integration a source reads through, in order of first use (sources are read
    /// in name order), with its settings (`[integrations.<name>]`, else
    /// `notion.requests_per_second` and a workspace of its own). The single-source
    /// configuration has one, `default` (`[integrations.default]` may set it).
    pub fn integrations(&self) -> Vec<IntegrationConfig> {
        let mut out: Vec<IntegrationConfig> = Vec::new();
        let names = self.sources().into_iter().map(|s| s.integration);
        let names: Vec<String> = match self.sources.is_empty() {
            true => vec![sync_store::DEFAULT_SOURCE.to_owned()],
            false => names.collect(),
        };
        for name in names {
            if out.iter().any(|i| i.name == name) {
                continue;
            }
            out.push(
                self.integrations
                    .iter()
                    .find(|i| i.name == name)
                    .cloned()
                    .unwrap_or(IntegrationConfig {
                        name,
                        requests_per_second: self.notion.requests_per_second,
                        workspace: None,
                    }),
            );
        }
        out
    }
}

fn read_table(p: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
        path: p.to_owned(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: p.to_owned(),
        reason: one_line(&e.to_string()),
    })
}

/// `[server]`, and `shutdown_grace_seconds` (which the workers own).
fn parse_server(
    mut s: Section<'_>,
    d: &Config,
) -> Result<(ServerConfig, std::time::Duration), ConfigError> {
    let server = ServerConfig {
        listen: s.text(
            "listen",
            d.server.listen,
            "must be an address and port such as \"0.0.0.0:8080\"",
            |v| SocketAddr::from_str(v).ok(),
            ToString::to_string,
        )?,
        max_body_bytes: s.integer(
            "max_body_bytes",
            d.server.max_body_bytes,
            1024..=u64::MAX,
            "must be at least 1024",
        )?,
        max_connections: s.integer(
            "max_connections",
            d.server.max_connections as u64,
            1..=65_536,
            "must be between 1 and 65536",
        )? as usize,
        header_timeout: s.seconds(
            "header_timeout_seconds",
            d.server.header_timeout,
            1..=600,
            "must be between 1 and 600",
        )?,
        body_timeout: s.seconds(
            "body_timeout_seconds",
            d.server.body_timeout,
            1..=600,
            "must be between 1 and 600",
        )?,
        accept_handshakes: s.boolean("accept_handshakes", d.server.accept_handshakes)?,
        drain: s.seconds(
            "drain_seconds",
            d.server.drain,
            0..=600,
            "must be between 0 and 600",
        )?,
    };
    let shutdown_grace = s.seconds(
        "shutdown_grace_seconds",
        d.workers.shutdown_grace,
        0..=3600,
        "must be between 0 and 3600",
    )?;
    s.finish()?;
    Ok((server, shutdown_grace))
}

fn parse_store(mut s: Section<'_>, d: StoreConfig) -> Result<StoreConfig, ConfigError> {
    let store = StoreConfig {
        url: s.string(
            "url",
            d.url.clone(),
            "must be a sqlite URL such as \"sqlite://data/notion-sync.db\" or a postgres URL such as \"postgres://user:password@host:5432/notion_sync\"",
            |v| {
                let config = StoreConfig {
                    url: v.to_owned(),
                    ..StoreConfig::default()
                };
                config.location().is_ok()
            },
        )?,
        synchronous: s.text(
            "synchronous",
            d.synchronous,
            "must be \"FULL\" (an acknowledged webhook survives power loss) or \"NORMAL\"",
            |v| Synchronous::from_str(v).ok(),
            |v| v.as_str().to_owned(),
        )?,
        event_retention: Duration::from_secs(
            s.integer(
                "event_retention_days",
                d.event_retention.as_secs() / 86_400,
                2..=3650,
                "must be between 2 and 3650 (Notion retries a delivery for about a day; signed events older than this are refused as replays)",
            )? * 86_400,
        ),
        ..d
    };
    s.finish()?;
    Ok(store)
}

fn parse_replicas(mut s: Section<'_>, d: ReplicasConfig) -> Result<ReplicasConfig, ConfigError> {
    let replicas = ReplicasConfig {
        leader_lease: s.seconds(
            "leader_lease_seconds",
            d.leader_lease,
            3..=600,
            "must be between 3 and 600",
        )?,
        budget: s.text(
            "budget",
            d.budget,
            "must be \"shared\" (every request takes a slot of the budget in the database) or \"split\" (each replica paces at the rate divided by the replicas alive)",
            |v| match v {
                "shared" => Some(BudgetSharing::Shared),
                "split" => Some(BudgetSharing::Split),
                _ => None,
            },
            |b| b.as_str().to_owned(),
        )?,
    };
    s.finish()?;
    Ok(replicas)
}

fn parse_notion(mut s: Section<'_>, d: NotionConfig) -> Result<NotionConfig, ConfigError> {
    let api_url = s.string(
        "api_url",
        d.api_url,
        "must be an http(s) URL such as \"https://api.notion.com\"",
        |v| v.starts_with("http://") || v.starts_with("https://"),
    )?;
    let source = fields::source_ids(&mut s)?;
    let notion = NotionConfig {
        api_url,
        source,
        requests_per_second: fields::rate(&mut s, d.requests_per_second)?,
        timeout: s.seconds(
            "timeout_seconds",
            d.timeout,
            1..=600,
            "must be between 1 and 600",
        )?,
        max_attempts: s.integer(
            "max_attempts",
            u64::from(d.max_attempts),
            1..=20,
            "must be between 1 and 20",
        )? as u32,
    };
    s.finish()?;
    Ok(notion)
}

fn parse_reconcile(mut s: Section<'_>, d: ReconcileConfig) -> Result<ReconcileConfig, ConfigError> {
    let cron = "must be a 6-field cron expression with seconds, e.g. \"0 */5 * * * *\" (or \"\" to disable)";
    let valid = |v: &str| v.trim().is_empty() || sync_engine::schedule::is_valid_schedule(v);
    let reconcile = ReconcileConfig {
        schedule: s.string("schedule", d.schedule.clone(), cron, valid)?,
        full_schedule: s.string("full_schedule", d.full_schedule.clone(), cron, valid)?,
        backstep: s.seconds(
            "backstep_seconds",
            d.backstep,
            0..=86_400,
            "must be between 0 and 86400",
        )?,
        visibility_margin: s.seconds(
            "visibility_margin_seconds",
            d.visibility_margin,
            0..=600,
            "must be between 0 and 600",
        )?,
        on_start: s.boolean("on_start", d.on_start)?,
        ..d
    };
    s.finish()?;
    Ok(reconcile)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_str(toml_text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).unwrap();
        Config::load(Some(&path), &env(pairs))
    }

    #[test]
    fn defaults_are_valid_and_match_design() {
        let c = Config::load(None, &BTreeMap::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.server.max_body_bytes, 1_048_576);
        assert_eq!(c.notion.requests_per_second, 3.0);
        assert_eq!(c.reconcile.schedule, "0 */5 * * * *");
        assert_eq!(c.reconcile.backstep, Duration::from_secs(60));
        assert_eq!(c.tasks.open_statuses, vec!["To Do", "In Progress"]);
        assert_eq!(c.notion.source, None);
    }

    #[test]
    fn postgres_store_urls_and_replica_keys_parse_and_a_bad_url_never_shows_its_password() {
        let c = Config::load(
            None,
            &env(&[
                (
                    "NOTION_SYNC_STORE__URL",
                    "postgres://sync:hunter2@db:5432/notion",
                ),
                ("NOTION_SYNC_REPLICAS__LEADER_LEASE_SECONDS", "9"),
                ("NOTION_SYNC_REPLICAS__BUDGET", "split"),
                ("NOTION_SYNC_SERVER__DRAIN_SECONDS", "10"),
            ]),
        )
        .unwrap();
        assert!(c.store.database_path().is_err());
        assert_eq!(c.replicas.leader_lease, Duration::from_secs(9));
        assert_eq!(c.replicas.budget, BudgetSharing::Split);
        assert_eq!(c.server.drain, Duration::from_secs(10));
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = Config::load(
            None,
            &env(&[(
                "NOTION_SYNC_STORE__URL",
                "postgres://sync:hunter2@db:port/notion",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("store.url") && !e.contains("hunter2"), "{e}");
        let e = Config::load(None, &env(&[("NOTION_SYNC_REPLICAS__BUDGET", "each")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("replicas.budget"), "{e}");
    }

    #[test]
    fn shipped_default_toml_documents_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let mut doc = Doc::new(read_table(&path).unwrap(), path.clone());
        let parsed = Config::parse(&mut doc).unwrap();
        assert_eq!(parsed, Config::default());
        // Every key is written out (not left to the compiled-in defaults).
        assert!(
            doc.defaulted.is_empty(),
            "config/default.toml lacks {:?}",
            doc.defaulted
        );
    }

    #[test]
    fn env_overrides_file_and_parses_types() {
        let c = load_str(
            "[notion]\nrequests_per_second = 2.0\n",
            &[
                ("NOTION_SYNC_NOTION__REQUESTS_PER_SECOND", "1.5"),
                ("NOTION_SYNC_TASKS__OPEN_STATUSES", r#"["A", "B"]"#),
                ("NOTION_SYNC_TASKS__TIMEZONE", "Pacific/Kiritimati"),
                ("NOTION_SYNC_SLACK_WEBHOOK_URL", "https://hooks.example/x"),
            ],
        )
        .unwrap();
        assert_eq!(c.notion.requests_per_second, 1.5);
        assert_eq!(c.tasks.open_statuses, vec!["A", "B"]);
        assert_eq!(c.tasks.timezone, chrono_tz::Pacific::Kiritimati);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = load_str("[notion]\nrequest_per_second = 2.0\n", &[]).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `request_per_second`"),
            "{e}"
        );
        let e = load_str("[nothing]\n", &[]).unwrap_err();
        assert!(e.to_string().contains("unknown field `nothing`"), "{e}");
        let e = Config::load(None, &env(&[("NOTION_SYNC_NOTION__RPS", "2")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable NOTION_SYNC_NOTION__RPS: unknown config key `notion.rps`"
        );
    }

    #[test]
    fn invalid_values_name_key_value_and_allowed() {
        let check = |toml_text: &str, expected: &str| {
            let e = load_str(toml_text, &[]).unwrap_err().to_string();
            assert_eq!(e, expected);
        };
        check(
            "[notion]\nrequests_per_second = 0.0\n",
            "config key `notion.requests_per_second` = 0: must be greater than 0 and at most 100 (Notion allows about 3)",
        );
        check(
            "[server]\nlisten = \"8080\"\n",
            "config key `server.listen` = \"8080\": must be an address and port such as \"0.0.0.0:8080\"",
        );
        check(
            "[tasks]\ntimezone = \"Mars/Olympus\"\n",
            "config key `tasks.timezone` = \"Mars/Olympus\": must be an IANA time zone such as \"UTC\" or \"Europe/Berlin\"",
        );
        check(
            "[reconcile]\nschedule = \"*/5 * * * *\"\n",
            "config key `reconcile.schedule` = \"*/5 * * * *\": must be a 6-field cron expression with seconds, e.g. \"0 */5 * * * *\" (or \"\" to disable)",
        );
        check(
            "[notion]\ndata_source_id = \"xyz\"\n",
            "config key `notion.data_source_id` = \"xyz\": must be a Notion id (32 hex digits, dashes optional)",
        );
        check(
            "[store]\nsynchronous = \"OFF\"\n",
            "config key `store.synchronous` = \"OFF\": must be \"FULL\" (an acknowledged webhook survives power loss) or \"NORMAL\"",
        );
        check(
            "[log]\nformat = \"xml\"\n",
            "config key `log.format` = \"xml\": must be \"json\" or \"pretty\"",
        );
        check(
            "[tasks]\nopen_statuses = [\"Overdue\"]\n",
            "config key `tasks.open_statuses` = [\"Overdue\"]: must not contain tasks.overdue_status",
        );
    }

    #[test]
    fn wrong_type_is_a_parse_error_naming_the_key() {
        let e = load_str("[notion]\nrequests_per_second = \"fast\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("requests_per_second"), "{e}");
    }

    #[test]
    fn source_accepts_ids_with_or_without_dashes() {
        let c = load_str(
            "[notion]\ndata_source_id = \"248104CD477E80AFBC30000BD28DE8F9\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.notion.source.map(|s| match s {
                Source::DataSource(id) => id.to_string(),
                Source::Database(_) => unreachable!(),
            }),
            Some("248104cd-477e-80af-bc30-000bd28de8f9".to_string())
        );
    }

    #[test]
    fn the_sources_example_reads_as_three_sources_over_two_integrations() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sources.example.toml");
        let c = Config::load(
            Some(&path),
            &env(&[(
                "NOTION_SYNC_SOURCES__CLIENT-B__TASKS__MARK_OVERDUE",
                "false",
            )]),
        )
        .unwrap();
        let sources = c.sources();
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["client-b", "design", "engineering"]);
        let design = &sources[1];
        assert_eq!(design.integration, "agency");
        assert!(matches!(design.source, Source::Database(_)));
        // Overridden keys, and the rest from [tasks].
        assert_eq!(design.tasks.overdue_status, "Late");
        assert_eq!(design.tasks.open_statuses, ["Backlog", "Doing"]);
        assert_eq!(design.tasks.status_property, "Status");
        let client = &sources[0];
        assert_eq!(client.tasks.due_property, "Deadline");
        assert_eq!(client.tasks.timezone, chrono_tz::America::New_York);
        assert!(!client.tasks.mark_overdue, "set from the environment");
        let integrations = c.integrations();
        let names: Vec<&str> = integrations.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["client-b", "agency"]);
        assert_eq!(integrations[1].workspace.as_deref(), Some("agency"));
    }

    #[test]
    fn a_single_source_config_is_the_default_source_and_integration() {
        let c = load_str(
            "[notion]\ndata_source_id = \"248104cd477e80afbc30000bd28de8f9\"\nrequests_per_second = 2.0\n",
            &[],
        )
        .unwrap();
        let sources = c.sources();
        assert_eq!(sources.len(), 1);
        assert_eq!(
            (sources[0].name.as_str(), sources[0].integration.as_str()),
            ("default", "default")
        );
        assert_eq!(sources[0].tasks, c.tasks);
        let integrations = c.integrations();
        assert_eq!(integrations.len(), 1);
        assert_eq!(integrations[0].name, "default");
        assert_eq!(integrations[0].requests_per_second, 2.0);
        assert_eq!(integrations[0].workspace, None);
        // No data source yet: no source, still the default integration (check says so).
        assert!(Config::default().sources().is_empty());
        assert_eq!(Config::default().integrations().len(), 1);
        // [integrations.default] sets the one integration's budget and workspace.
        let c = load_str(
            "[notion]\ndata_source_id = \"248104cd477e80afbc30000bd28de8f9\"\n[integrations.default]\nrequests_per_second = 2.5\nworkspace = \"acme\"\n",
            &[],
        )
        .unwrap();
        let integrations = c.integrations();
        assert_eq!(integrations.len(), 1);
        assert_eq!(integrations[0].requests_per_second, 2.5);
        assert_eq!(integrations[0].workspace.as_deref(), Some("acme"));
    }

    #[test]
    fn source_errors_name_the_source_and_the_key() {
        let check = |toml_text: &str, expected: &str| {
            let e = load_str(toml_text, &[]).unwrap_err().to_string();
            assert_eq!(e, expected);
        };
        const DS: &str = "248104cd-477e-80af-bc30-000bd28de8f9";
        check(
            &format!(
                "[sources.a]\ndata_source_id = \"{DS}\"\n[sources.b]\ndata_source_id = \"{DS}\"\n"
            ),
            &format!(
                "config key `sources.b.data_source_id` = \"{DS}\": source `a` already mirrors it: each data source belongs to one source"
            ),
        );
        check(
            "[sources.a]\nintegration = \"x\"\n",
            "config key `sources.a.data_source_id` = \"\": every source needs data_source_id or database_id",
        );
        check(
            &format!("[integrations.unused]\n[sources.a]\ndata_source_id = \"{DS}\"\n"),
            "config key `integrations.unused` = \"unused\": no source names this integration (set sources.<name>.integration)",
        );
        check(
            &format!("[sources.Team_A]\ndata_source_id = \"{DS}\"\n"),
            "config key `sources.Team_A` = \"Team_A\": names are 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
        );
        check(
            &format!(
                "[sources.a]\ndata_source_id = \"{DS}\"\n[sources.a.tasks]\ntimezone = \"Mars\"\n"
            ),
            "config key `sources.a.tasks.timezone` = \"Mars\": must be an IANA time zone such as \"UTC\" or \"Europe/Berlin\"",
        );
        check(
            &format!(
                "[notion]\ndata_source_id = \"{DS}\"\n[sources.a]\ndata_source_id = \"{DS}\"\n"
            ),
            "config key `notion.data_source_id` = (set): with [sources.*] (such as sources.a) each source names its own data source: leave notion.data_source_id and notion.database_id empty",
        );
        check(
            &format!(
                "[sources.a]\nintegration = \"client-b\"\ndata_source_id = \"{DS}\"\n[sources.b]\nintegration = \"client_b\"\ndatabase_id = \"{DS}\"\n"
            ),
            "config key `sources.b.integration` = \"client_b\": integration \"client-b\" reads the same secrets (NOTION_TOKEN_CLIENT_B): names that differ only in '-' and '_' are one integration",
        );
        check(
            &format!("[sources.a]\nintegration = \"my-file\"\ndata_source_id = \"{DS}\"\n"),
            "config key `sources.a.integration` = \"my-file\": an integration name ending in \"file\" would read NOTION_TOKEN_MY_FILE, another secret's file variable: choose another name",
        );
        let e = load_str(
            &format!("[sources.a]\ndata_source_id = \"{DS}\"\nintegraton = \"x\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown field `integraton` in [sources.a]"),
            "{e}"
        );
    }

    #[test]
    fn named_integrations_read_their_own_secrets() {
        let s = Secrets::for_integrations(
            &env(&[
                ("NOTION_TOKEN", "ntn_default"),
                ("NOTION_TOKEN_CLIENT_B", "ntn_clientb"),
                ("NOTION_WEBHOOK_SECRET_CLIENT_B", "secret_b"),
            ]),
            &["default".into(), "client-b".into()],
        )
        .unwrap();
        assert_eq!(s.token("default").unwrap().expose_secret(), "ntn_default");
        assert_eq!(s.token("client-b").unwrap().expose_secret(), "ntn_clientb");
        assert_eq!(
            s.webhook_secret("client-b").unwrap().expose_secret(),
            "secret_b"
        );
        assert!(s.webhook_secret("default").is_none());
        assert!(s.token("other").is_none());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("clientb") && !shown.contains("secret_b"),
            "{shown}"
        );
        assert_eq!(
            secret_var("NOTION_TOKEN", "client-b"),
            "NOTION_TOKEN_CLIENT_B"
        );
    }

    #[test]
    fn secrets_from_env_or_file_and_never_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "ntn_filetoken123\n").unwrap();
        let s = Secrets::from_env(&env(&[
            ("NOTION_TOKEN_FILE", f.to_str().unwrap()),
            ("NOTION_WEBHOOK_SECRET", "secret_abc"),
        ]))
        .unwrap();
        assert_eq!(
            s.notion_token.as_ref().unwrap().expose_secret(),
            "ntn_filetoken123"
        );
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("filetoken") && !dbg.contains("secret_abc"),
            "{dbg}"
        );
        assert_eq!(mask(s.notion_token.as_ref().unwrap()), "ntn_****");

        let e = Secrets::from_env(&env(&[
            ("NOTION_TOKEN", "ntn_x"),
            ("NOTION_TOKEN_FILE", "/nope"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("set only one"));
        let e = Secrets::from_env(&env(&[("NOTION_TOKEN_FILE", "/nonexistent/tok")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("secret NOTION_TOKEN_FILE: cannot read /nonexistent/tok")
        );
    }
}
