//! Configuration: compiled-in defaults, a TOML file, `NOTION_SYNC_<SECTION>__<KEY>`
//! environment overrides and secrets from the environment, validated once at start.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Prefix of per-key environment overrides (`NOTION_SYNC_NOTION__REQUESTS_PER_SECOND=2`).
pub const ENV_PREFIX: &str = "NOTION_SYNC_";

/// The whole configuration file. Every key has a default; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreSection,
    pub notion: NotionSection,
    pub workers: WorkersSection,
    pub reconcile: ReconcileSection,
    pub tasks: TasksSection,
    pub log: LogSection,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub max_body_bytes: u64,
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            max_body_bytes: 1_048_576,
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    pub url: String,
    pub synchronous: String,
    pub event_retention_days: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: "sqlite://data/notion-sync.db".into(),
            synchronous: "FULL".into(),
            event_retention_days: 7,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotionSection {
    pub api_url: String,
    pub data_source_id: String,
    pub database_id: String,
    pub requests_per_second: f64,
    pub timeout_seconds: u64,
    pub max_attempts: u32,
}

impl Default for NotionSection {
    fn default() -> Self {
        Self {
            api_url: "https://api.notion.com".into(),
            data_source_id: String::new(),
            database_id: String::new(),
            requests_per_second: 3.0,
            timeout_seconds: 60,
            max_attempts: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersSection {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub lease_seconds: u64,
}

impl Default for WorkersSection {
    fn default() -> Self {
        Self {
            concurrency: 4,
            max_attempts: 8,
            lease_seconds: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSection {
    pub schedule: String,
    pub full_schedule: String,
    pub backstep_seconds: u64,
    pub visibility_margin_seconds: u64,
    pub on_start: bool,
}

impl Default for ReconcileSection {
    fn default() -> Self {
        Self {
            schedule: "0 */5 * * * *".into(),
            full_schedule: "0 30 3 * * *".into(),
            backstep_seconds: 60,
            visibility_margin_seconds: 15,
            on_start: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TasksSection {
    pub status_property: String,
    pub due_property: String,
    pub open_statuses: Vec<String>,
    pub overdue_status: String,
    pub timezone: String,
    pub mark_overdue: bool,
}

impl Default for TasksSection {
    fn default() -> Self {
        Self {
            status_property: "Status".into(),
            due_property: "Due Date".into(),
            open_statuses: vec!["To Do".into(), "In Progress".into()],
            overdue_status: "Overdue".into(),
            timezone: "UTC".into(),
            mark_overdue: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub format: String,
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

/// A configuration problem, phrased for the operator: the key, the value, what is allowed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("config key `{key}` = {value}: {allowed}")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: String,
    },
    #[error("secret {var}: {reason}")]
    Secret { var: String, reason: String },
}

/// Where the daemon reads its data source from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRef {
    DataSource(notion_api::NotionId),
    Database(notion_api::NotionId),
}

/// Secrets come only from the environment (or `<NAME>_FILE`). `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub notion_token: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
    pub slack_webhook_url: Option<SecretString>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: &Option<SecretString>| if s.is_some() { "ntn_****" } else { "unset" };
        f.debug_struct("Secrets")
            .field("notion_token", &mask(&self.notion_token))
            .field("webhook_secret", &mask(&self.webhook_secret))
            .field("slack_webhook_url", &mask(&self.slack_webhook_url))
            .finish()
    }
}

impl Secrets {
    /// Reads `NOTION_TOKEN`, `NOTION_WEBHOOK_SECRET`, `NOTION_SYNC_SLACK_WEBHOOK_URL` (or their `_FILE`).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Secrets, ConfigError> {
        Ok(Secrets {
            notion_token: secret_from_env(env, "NOTION_TOKEN")?,
            webhook_secret: secret_from_env(env, "NOTION_WEBHOOK_SECRET")?,
            slack_webhook_url: secret_from_env(env, "NOTION_SYNC_SLACK_WEBHOOK_URL")?,
        })
    }
}

fn secret_from_env(
    env: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<SecretString>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let value = match (env.get(name), env.get(&file_var)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Secret {
                var: name.into(),
                reason: format!("both {name} and {file_var} are set; set only one"),
            });
        }
        (Some(v), None) => v.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| ConfigError::Secret {
            var: file_var.clone(),
            reason: format!("cannot read {path}: {e}"),
        })?,
        (None, None) => return Ok(None),
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    Ok(Some(SecretString::from(value)))
}

/// Masks a secret for display: a recognisable prefix and stars, never the value.
pub fn mask(secret: &SecretString) -> String {
    let s = secret.expose_secret();
    let prefix = if s.starts_with("ntn_") {
        "ntn_"
    } else if s.starts_with("secret_") {
        "secret_"
    } else {
        ""
    };
    format!("{prefix}****")
}

impl Config {
    /// Defaults, then the file (if any), then `NOTION_SYNC_<SECTION>__<KEY>` overrides; validated.
    pub fn load(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let (mut table, origin) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.to_owned(),
                    reason: e.to_string(),
                })?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_owned(),
                    reason: one_line(&e.to_string()),
                })?;
                (table, p.to_owned())
            }
            None => (toml::Table::new(), PathBuf::from("<defaults>")),
        };
        apply_env_overrides(&mut table, env)?;
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: origin,
                    reason: one_line(&e.to_string()),
                })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value once, naming the key, the value and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.server.max_body_bytes < 1024 {
            return invalid(
                "server.max_body_bytes",
                self.server.max_body_bytes,
                "must be at least 1024",
            );
        }
        if !self.store.url.starts_with("sqlite:") {
            return invalid(
                "store.url",
                format!("{:?}", self.store.url),
                "must be a sqlite URL such as \"sqlite://data/notion-sync.db\"",
            );
        }
        self.synchronous()?;
        if self.store.event_retention_days == 0 {
            return invalid("store.event_retention_days", 0, "must be at least 1");
        }
        if !(self.notion.api_url.starts_with("http://")
            || self.notion.api_url.starts_with("https://"))
        {
            return invalid(
                "notion.api_url",
                format!("{:?}", self.notion.api_url),
                "must be an http(s) URL such as \"https://api.notion.com\"",
            );
        }
        self.source()?;
        let rps = self.notion.requests_per_second;
        if !(rps.is_finite() && rps > 0.0 && rps <= 100.0) {
            return invalid(
                "notion.requests_per_second",
                rps,
                "must be greater than 0 and at most 100 (Notion allows about 3)",
            );
        }
        if !(1..=600).contains(&self.notion.timeout_seconds) {
            return invalid(
                "notion.timeout_seconds",
                self.notion.timeout_seconds,
                "must be between 1 and 600",
            );
        }
        if !(1..=20).contains(&self.notion.max_attempts) {
            return invalid(
                "notion.max_attempts",
                self.notion.max_attempts,
                "must be between 1 and 20",
            );
        }
        if !(1..=64).contains(&self.workers.concurrency) {
            return invalid(
                "workers.concurrency",
                self.workers.concurrency,
                "must be between 1 and 64",
            );
        }
        if !(1..=100).contains(&self.workers.max_attempts) {
            return invalid(
                "workers.max_attempts",
                self.workers.max_attempts,
                "must be between 1 and 100",
            );
        }
        if !(10..=3600).contains(&self.workers.lease_seconds) {
            return invalid(
                "workers.lease_seconds",
                self.workers.lease_seconds,
                "must be between 10 and 3600",
            );
        }
        validate_cron("reconcile.schedule", &self.reconcile.schedule)?;
        validate_cron("reconcile.full_schedule", &self.reconcile.full_schedule)?;
        if self.reconcile.backstep_seconds > 86_400 {
            return invalid(
                "reconcile.backstep_seconds",
                self.reconcile.backstep_seconds,
                "must be between 0 and 86400",
            );
        }
        if self.reconcile.visibility_margin_seconds > 600 {
            return invalid(
                "reconcile.visibility_margin_seconds",
                self.reconcile.visibility_margin_seconds,
                "must be between 0 and 600",
            );
        }
        for (key, value) in [
            ("tasks.status_property", &self.tasks.status_property),
            ("tasks.due_property", &self.tasks.due_property),
            ("tasks.overdue_status", &self.tasks.overdue_status),
        ] {
            if value.trim().is_empty() {
                return invalid(key, "\"\"", "must not be empty");
            }
        }
        if self
            .tasks
            .open_statuses
            .iter()
            .any(|s| s == &self.tasks.overdue_status)
        {
            return invalid(
                "tasks.open_statuses",
                format!("{:?}", self.tasks.open_statuses),
                "must not contain tasks.overdue_status",
            );
        }
        self.timezone()?;
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return invalid(
                "log.format",
                format!("{:?}", self.log.format),
                "must be \"json\" or \"pretty\"",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return invalid(
                "log.level",
                format!("{:?}", self.log.level),
                "must be a level (error, warn, info, debug, trace) or a RUST_LOG-style filter",
            );
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        SocketAddr::from_str(&self.server.listen).or_else(|_| {
            invalid(
                "server.listen",
                format!("{:?}", self.server.listen),
                "must be an address and port such as \"0.0.0.0:8080\"",
            )
        })
    }

    pub fn synchronous(&self) -> Result<sync_store::Synchronous, ConfigError> {
        sync_store::Synchronous::from_str(&self.store.synchronous).or_else(|_| {
            invalid(
                "store.synchronous",
                format!("{:?}", self.store.synchronous),
                "must be \"FULL\" (an acknowledged webhook survives power loss) or \"NORMAL\"",
            )
        })
    }

    pub fn timezone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.tasks.timezone.parse::<chrono_tz::Tz>().or_else(|_| {
            invalid(
                "tasks.timezone",
                format!("{:?}", self.tasks.timezone),
                "must be an IANA time zone such as \"UTC\" or \"Europe/Berlin\"",
            )
        })
    }

    /// The configured data source or database. `None` when neither is set yet.
    pub fn source(&self) -> Result<Option<SourceRef>, ConfigError> {
        let ds = self.notion.data_source_id.trim();
        let db = self.notion.database_id.trim();
        match (ds.is_empty(), db.is_empty()) {
            (false, false) => invalid(
                "notion.data_source_id",
                format!("{ds:?}"),
                "set either notion.data_source_id or notion.database_id, not both",
            ),
            (false, true) => notion_api::NotionId::parse(ds)
                .map(|id| Some(SourceRef::DataSource(id)))
                .or_else(|_| {
                    invalid(
                        "notion.data_source_id",
                        format!("{ds:?}"),
                        "must be a Notion id (32 hex digits, dashes optional)",
                    )
                }),
            (true, false) => notion_api::NotionId::parse(db)
                .map(|id| Some(SourceRef::Database(id)))
                .or_else(|_| {
                    invalid(
                        "notion.database_id",
                        format!("{db:?}"),
                        "must be a Notion id (32 hex digits, dashes optional)",
                    )
                }),
            (true, true) => Ok(None),
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_seconds)
    }
}

fn invalid<T>(
    key: &'static str,
    value: impl fmt::Display,
    allowed: &str,
) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        key,
        value: value.to_string(),
        allowed: allowed.to_owned(),
    })
}

fn validate_cron(key: &'static str, expr: &str) -> Result<(), ConfigError> {
    if expr.trim().is_empty() {
        // An empty schedule disables the scheduled run.
        return Ok(());
    }
    if !sync_engine::schedule::is_valid_schedule(expr) {
        return invalid(
            key,
            format!("{expr:?}"),
            "must be a 6-field cron expression with seconds, e.g. \"0 */5 * * * *\" (or \"\" to disable)",
        );
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Applies `NOTION_SYNC_<SECTION>__<KEY>=value` overrides. The value is read as a TOML
/// value when it parses as one (`3.0`, `true`, `["a", "b"]`), else as a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let known = defaults
            .get(&section)
            .and_then(|s| s.as_table())
            .is_some_and(|s| s.contains_key(&key));
        if !known {
            return Err(ConfigError::Env {
                var: var.clone(),
                reason: format!("unknown config key `{section}.{key}`"),
            });
        }
        let value = parse_env_value(raw, &defaults[&section][&key]);
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            return Err(ConfigError::Env {
                var: var.clone(),
                reason: format!("config section `{section}` is not a table in the file"),
            });
        };
        section_table.insert(key, value);
    }
    Ok(())
}

fn parse_env_value(raw: &str, default: &toml::Value) -> toml::Value {
    if default.is_str() {
        return toml::Value::String(raw.to_owned());
    }
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(c.server.listen, "0.0.0.0:8080");
        assert_eq!(c.server.max_body_bytes, 1_048_576);
        assert_eq!(c.notion.requests_per_second, 3.0);
        assert_eq!(c.reconcile.schedule, "0 */5 * * * *");
        assert_eq!(c.reconcile.backstep_seconds, 60);
        assert_eq!(c.tasks.open_statuses, vec!["To Do", "In Progress"]);
        assert_eq!(c.source().unwrap(), None);
    }

    #[test]
    fn shipped_default_toml_documents_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: Config = toml::from_str(&text).unwrap();
        assert_eq!(parsed, Config::default());
        // Every key is written out (not left to serde defaults).
        let table: toml::Table = toml::from_str(&text).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, keys) in &defaults {
            for key in keys.as_table().unwrap().keys() {
                assert!(
                    table.get(section).and_then(|s| s.get(key)).is_some(),
                    "config/default.toml lacks {section}.{key}"
                );
            }
        }
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
        assert_eq!(c.tasks.timezone, "Pacific/Kiritimati");
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
            c.source().unwrap().map(|s| match s {
                SourceRef::DataSource(id) => id.to_string(),
                SourceRef::Database(_) => unreachable!(),
            }),
            Some("248104cd-477e-80af-bc30-000bd28de8f9".to_string())
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
