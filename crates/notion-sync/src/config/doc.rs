//! Reading the configuration document key by key: each key is read once, into its typed
//! value, with its default and the sentence that says what is allowed. Knows where each
//! value came from (the file, or a `NOTION_SYNC_<SECTION>__<KEY>` variable), refuses
//! unknown keys, and records every key with its default (the documented table).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::ConfigError;

/// Prefix of per-key environment overrides (`NOTION_SYNC_NOTION__REQUESTS_PER_SECOND=2`).
pub const ENV_PREFIX: &str = "NOTION_SYNC_";

/// A configuration document: the file's table with the environment's overrides applied.
pub(crate) struct Doc {
    table: toml::Table,
    origin: PathBuf,
    /// `section.key` → the variable that set it.
    from_env: BTreeMap<String, String>,
    /// Every key read, with its default as TOML (the order keys are read in).
    pub(crate) keys: Vec<(String, toml::Value)>,
    /// Keys that fell back to their default (a document meant to list every key lacks them).
    pub(crate) defaulted: Vec<String>,
}

impl Doc {
    pub(crate) fn new(table: toml::Table, origin: PathBuf) -> Doc {
        Doc {
            table,
            origin,
            from_env: BTreeMap::new(),
            keys: Vec::new(),
            defaulted: Vec::new(),
        }
    }

    /// Applies `NOTION_SYNC_<SECTION>__<KEY>=value` overrides (nested tables by more
    /// `__`: `NOTION_SYNC_SOURCES__ENG__TASKS__TIMEZONE`); the values are typed when the
    /// key is read.
    pub(crate) fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (var, raw) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let [tables @ .., key] = parts.as_slice() else {
                continue;
            };
            if tables.is_empty() {
                continue;
            }
            let mut table = &mut self.table;
            for (depth, name) in tables.iter().enumerate() {
                let entry = table
                    .entry(name.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(inner) = entry.as_table_mut() else {
                    return Err(ConfigError::Env {
                        var: var.clone(),
                        reason: format!(
                            "config section `{}` is not a table in the file",
                            tables[..=depth].join(".")
                        ),
                    });
                };
                table = inner;
            }
            table.insert(key.clone(), toml::Value::String(raw.clone()));
            self.from_env
                .insert(format!("{}.{key}", tables.join(".")), var.clone());
        }
        Ok(())
    }

    /// The table called `name`, taken out of the document to be read entry by entry
    /// (`[sources.<name>]`); `None` when absent.
    pub(crate) fn take_table(&mut self, name: &str) -> Result<Option<toml::Table>, ConfigError> {
        match self.table.remove(name) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(_) => Err(self.parse_error(format!("`{name}` must be a table ([{name}.<name>])"))),
        }
    }

    /// Reads `table` as the section at `path` (e.g. `sources.eng`); its keys are not part
    /// of the documented defaults.
    pub(crate) fn nested(&mut self, path: String, table: toml::Table) -> Section<'_> {
        Section {
            doc: self,
            name: path,
            table,
            documented: false,
        }
    }

    /// The section called `name` (empty when the document has none).
    pub(crate) fn section(&mut self, name: &'static str) -> Result<Section<'_>, ConfigError> {
        let table = match self.table.remove(name) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(self.parse_error(format!("`{name}` must be a table ([{name}])"))),
        };
        Ok(Section {
            doc: self,
            name: name.to_owned(),
            table,
            documented: true,
        })
    }

    /// Every section was read: anything left is unknown.
    pub(crate) fn finish(&self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(name) => Err(self.unknown(name, None)),
        }
    }

    fn parse_error(&self, reason: String) -> ConfigError {
        ConfigError::Parse {
            path: self.origin.clone(),
            reason,
        }
    }

    /// `name` is not a known key of `section` (or, without one, not a known section).
    fn unknown(&self, name: &str, section: Option<&str>) -> ConfigError {
        let set_by_env = self.from_env.iter().find(|(path, _)| match section {
            Some(s) => **path == format!("{s}.{name}"),
            None => path.split('.').next() == Some(name),
        });
        if let Some((path, var)) = set_by_env {
            return ConfigError::Env {
                var: var.clone(),
                reason: format!("unknown config key `{path}`"),
            };
        }
        self.parse_error(match section {
            Some(s) => format!("unknown field `{name}` in [{s}]"),
            None => format!("unknown field `{name}`: not a configuration section"),
        })
    }
}

/// One `[section]` being read.
pub(crate) struct Section<'d> {
    doc: &'d mut Doc,
    name: String,
    table: toml::Table,
    /// Its keys go into the documented defaults (a top-level section's do).
    documented: bool,
}

/// How one key's text becomes its value, and what to say when it does not.
pub(crate) struct Rule<'a, T> {
    pub(crate) allowed: &'a str,
    pub(crate) parse: &'a dyn Fn(&toml::Value) -> Option<T>,
    pub(crate) render: &'a dyn Fn(&T) -> toml::Value,
}

impl Section<'_> {
    /// Reads `key` by `rule`, or `default` when absent.
    pub(crate) fn get<T>(
        &mut self,
        key: &str,
        default: T,
        rule: Rule<'_, T>,
    ) -> Result<T, ConfigError> {
        let path = format!("{}.{key}", self.name);
        let Some(value) = self.table.remove(key) else {
            if self.documented {
                self.doc.keys.push((path.clone(), (rule.render)(&default)));
                self.doc.defaulted.push(path);
            }
            return Ok(default);
        };
        if self.documented {
            self.doc.keys.push((path.clone(), (rule.render)(&default)));
        }
        // Environment values arrive as text; non-text keys read them as TOML.
        let value = match (&value, self.doc.from_env.contains_key(&path)) {
            (toml::Value::String(raw), true) if !(rule.render)(&default).is_str() => {
                toml_value(raw).unwrap_or(value)
            }
            _ => value,
        };
        (rule.parse)(&value).ok_or_else(|| ConfigError::Invalid {
            key: path,
            // A URL's password (store.url) never reaches the message.
            value: match value.as_str() {
                Some(text) if text.contains("://") => {
                    show(&toml::Value::String(sync_store::redact_url(text)))
                }
                _ => show(&value),
            },
            allowed: rule.allowed.to_owned(),
        })
    }

    pub(crate) fn string(
        &mut self,
        key: &str,
        default: String,
        allowed: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, ConfigError> {
        self.get(
            key,
            default,
            Rule {
                allowed,
                parse: &|v| v.as_str().filter(|s| ok(s)).map(str::to_owned),
                render: &|s| toml::Value::String(s.clone()),
            },
        )
    }

    /// A value written as text and parsed (`"0.0.0.0:8080"`, `"UTC"`).
    pub(crate) fn text<T>(
        &mut self,
        key: &str,
        default: T,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
        render: impl Fn(&T) -> String,
    ) -> Result<T, ConfigError> {
        self.get(
            key,
            default,
            Rule {
                allowed,
                parse: &|v| v.as_str().and_then(&parse),
                render: &|t| toml::Value::String(render(t)),
            },
        )
    }

    pub(crate) fn integer(
        &mut self,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        allowed: &str,
    ) -> Result<u64, ConfigError> {
        self.get(
            key,
            default,
            Rule {
                allowed,
                parse: &|v| {
                    v.as_integer()
                        .and_then(|i| u64::try_from(i).ok())
                        .filter(|i| range.contains(i))
                },
                render: &|i| toml::Value::Integer(i64::try_from(*i).unwrap_or(i64::MAX)),
            },
        )
    }

    /// Seconds, as an integer key (`timeout_seconds = 60`).
    pub(crate) fn seconds(
        &mut self,
        key: &str,
        default: std::time::Duration,
        range: std::ops::RangeInclusive<u64>,
        allowed: &str,
    ) -> Result<std::time::Duration, ConfigError> {
        self.integer(key, default.as_secs(), range, allowed)
            .map(std::time::Duration::from_secs)
    }

    pub(crate) fn float(
        &mut self,
        key: &str,
        default: f64,
        ok: impl Fn(f64) -> bool,
        allowed: &str,
    ) -> Result<f64, ConfigError> {
        self.get(
            key,
            default,
            Rule {
                allowed,
                parse: &|v| {
                    v.as_float()
                        .or_else(|| v.as_integer().map(|i| i as f64))
                        .filter(|f| ok(*f))
                },
                render: &|f| toml::Value::Float(*f),
            },
        )
    }

    pub(crate) fn boolean(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.get(
            key,
            default,
            Rule {
                allowed: "must be true or false",
                parse: &toml::Value::as_bool,
                render: &|b| toml::Value::Boolean(*b),
            },
        )
    }

    pub(crate) fn strings(
        &mut self,
        key: &str,
        default: Vec<String>,
        allowed: &str,
        ok: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, ConfigError> {
        self.get(
            key,
            default,
            Rule {
                allowed,
                parse: &|v| {
                    let list: Option<Vec<String>> = v
                        .as_array()?
                        .iter()
                        .map(|s| s.as_str().map(str::to_owned))
                        .collect();
                    list.filter(|l| ok(l))
                },
                render: &|l| {
                    toml::Value::Array(l.iter().cloned().map(toml::Value::String).collect())
                },
            },
        )
    }

    /// The sub-table `key` (`[sources.eng.tasks]`), taken out to be read on its own.
    pub(crate) fn take_table(&mut self, key: &str) -> Result<Option<toml::Table>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(_) => Err(self
                .doc
                .parse_error(format!("`{}.{key}` must be a table", self.name))),
        }
    }

    /// The section's path (`tasks`, `sources.eng`).
    pub(crate) fn path(&self) -> &str {
        &self.name
    }

    /// Every key of the section was read: anything left is unknown.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(key) => Err(self.doc.unknown(key, Some(&self.name))),
        }
    }
}

/// A TOML value written as text (`3.0`, `true`, `["a", "b"]`).
fn toml_value(raw: &str) -> Option<toml::Value> {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()?
        .remove("v")
}

/// A value as the operator wrote it: text quoted, lists as lists.
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}
