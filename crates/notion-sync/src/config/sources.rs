//! `[integrations.<name>]` and `[sources.<name>]`: several task data sources, each read
//! through a named integration (its own token, webhook secret and rate budget), each
//! with its own task rules. Without `[sources]`, `[notion]` and `[tasks]` describe the
//! one source and integration, both named `default` (the single-source configuration).

use sync_engine::{Source, TaskConfig};
use sync_store::DEFAULT_SOURCE;

use super::doc::Doc;
use super::error::ConfigError;
use super::fields;
use super::secrets::secret_var;

/// Longest source or integration name (names are metric labels and URL segments).
pub const MAX_NAME_LEN: usize = 32;

/// One integration: a token and webhook subscription with its own rate budget.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationConfig {
    pub name: String,
    /// Its own budget (Notion allows about 3 per integration).
    pub requests_per_second: f64,
    /// Integrations naming the same workspace share its workspace-wide limit: a
    /// workspace-limit 429 pauses all of them. `None`: a workspace of its own.
    pub workspace: Option<String>,
}

/// One task source: what it mirrors, through which integration, by which rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub name: String,
    pub integration: String,
    pub source: Source,
    pub tasks: TaskConfig,
}

/// Whether `name` may name a source or an integration: 1 to 32 of `a-z 0-9 _ -`,
/// starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

const NAME_RULE: &str =
    "names are 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit";

fn bad_name(key: String, name: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: format!("{name:?}"),
        allowed: NAME_RULE.into(),
    }
}

/// Reads `[integrations.*]` (defaults: `default_rate` each) and `[sources.*]` (task rules
/// default to `tasks`, key by key), and checks them together.
pub(crate) fn parse(
    doc: &mut Doc,
    default_rate: f64,
    tasks: &TaskConfig,
) -> Result<(Vec<IntegrationConfig>, Vec<SourceConfig>), ConfigError> {
    let mut integrations = Vec::new();
    for (name, path, table) in named_tables(doc, "integrations")? {
        let mut s = doc.nested(path, table);
        let requests_per_second = fields::rate(&mut s, default_rate)?;
        let workspace = s.string("workspace", String::new(), NAME_RULE, |v| {
            v.is_empty() || valid_name(v)
        })?;
        s.finish()?;
        integrations.push(IntegrationConfig {
            name,
            requests_per_second,
            workspace: Some(workspace).filter(|w| !w.is_empty()),
        });
    }
    let mut sources = Vec::new();
    for (name, path, table) in named_tables(doc, "sources")? {
        let mut s = doc.nested(path.clone(), table);
        let integration = s.string(
            "integration",
            DEFAULT_SOURCE.to_owned(),
            NAME_RULE,
            valid_name,
        )?;
        let source = fields::source_ids(&mut s)?.ok_or_else(|| ConfigError::Invalid {
            key: format!("{path}.data_source_id"),
            value: "\"\"".into(),
            allowed: "every source needs data_source_id or database_id".into(),
        })?;
        let tasks_table = s.take_table("tasks")?.unwrap_or_default();
        s.finish()?;
        let tasks = fields::tasks(
            doc.nested(format!("{path}.tasks"), tasks_table),
            tasks.clone(),
        )?;
        sources.push(SourceConfig {
            name,
            integration,
            source,
            tasks,
        });
    }
    check(&integrations, &sources)?;
    Ok((integrations, sources))
}

/// The `[section.<name>]` tables, each name checked: (name, `section.name`, table).
fn named_tables(
    doc: &mut Doc,
    section: &str,
) -> Result<Vec<(String, String, toml::Table)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in doc.take_table(section)?.unwrap_or_default() {
        let path = format!("{section}.{name}");
        if !valid_name(&name) {
            return Err(bad_name(path, &name));
        }
        let toml::Value::Table(table) = value else {
            return Err(ConfigError::Invalid {
                key: path,
                value: value.to_string(),
                allowed: format!("must be a table ([{section}.<name>])"),
            });
        };
        out.push((name, path, table));
    }
    Ok(out)
}

/// Each integration serves a source; no two sources claim one data source or database;
/// each integration's secrets have variables of their own.
fn check(integrations: &[IntegrationConfig], sources: &[SourceConfig]) -> Result<(), ConfigError> {
    let mut names: Vec<&str> = sources.iter().map(|s| s.integration.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        // `NOTION_TOKEN_<NAME>`: `-` and `_` read alike, and a name ending in `file` would
        // read another integration's `<VAR>_FILE`.
        let var = secret_var("NOTION_TOKEN", name);
        let clash = names[..i]
            .iter()
            .find(|other| secret_var("NOTION_TOKEN", other) == var);
        let upper = name.to_ascii_uppercase().replace('-', "_");
        let file = upper == "FILE" || upper.ends_with("_FILE");
        if clash.is_some() || file {
            let user = sources
                .iter()
                .find(|s| s.integration == *name)
                .map_or_else(String::new, |s| s.name.clone());
            return Err(ConfigError::Invalid {
                key: format!("sources.{user}.integration"),
                value: format!("{name:?}"),
                allowed: match clash {
                    Some(other) => format!(
                        "integration {other:?} reads the same secrets ({var}): names that differ only in '-' and '_' are one integration"
                    ),
                    None => format!(
                        "an integration name ending in \"file\" would read {var}, another secret's file variable: choose another name"
                    ),
                },
            });
        }
    }
    // Without [sources.*] the one source reads through `default`.
    let used = |name: &str| {
        sources.iter().any(|s| s.integration == name)
            || (sources.is_empty() && name == DEFAULT_SOURCE)
    };
    if let Some(unused) = integrations.iter().find(|i| !used(&i.name)) {
        return Err(ConfigError::Invalid {
            key: format!("integrations.{}", unused.name),
            value: format!("{:?}", unused.name),
            allowed: "no source names this integration (set sources.<name>.integration)".into(),
        });
    }
    for (i, a) in sources.iter().enumerate() {
        for b in &sources[..i] {
            if a.source == b.source {
                let (key, id) = match a.source {
                    Source::DataSource(id) => ("data_source_id", id),
                    Source::Database(id) => ("database_id", id),
                };
                return Err(ConfigError::Invalid {
                    key: format!("sources.{}.{key}", a.name),
                    value: format!("{:?}", id.to_string()),
                    allowed: format!(
                        "source `{}` already mirrors it: each data source belongs to one source",
                        b.name
                    ),
                });
            }
        }
    }
    Ok(())
}
