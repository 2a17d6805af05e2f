//! Secrets: only from the environment or a `<NAME>_FILE`, held as `SecretString`, never
//! shown (`Debug` and `mask` print a recognisable prefix and stars). The `default`
//! integration's are `NOTION_TOKEN` and `NOTION_WEBHOOK_SECRET`; integration `acme`'s are
//! `NOTION_TOKEN_ACME` and `NOTION_WEBHOOK_SECRET_ACME` (`-` becomes `_`).

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::error::ConfigError;

/// Secrets come only from the environment (or `<NAME>_FILE`). `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Secrets {
    /// The `default` integration's token.
    pub notion_token: Option<SecretString>,
    /// The `default` integration's webhook secret.
    pub webhook_secret: Option<SecretString>,
    pub slack_webhook_url: Option<SecretString>,
    /// Every other integration's, by name.
    pub integrations: BTreeMap<String, IntegrationSecrets>,
}

/// One named integration's secrets.
#[derive(Clone, Default)]
pub struct IntegrationSecrets {
    pub token: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
}

/// The environment variable holding `integration`'s `base` secret (`NOTION_TOKEN`,
/// `NOTION_WEBHOOK_SECRET`): the base itself for `default`, else `<BASE>_<NAME>`.
pub fn secret_var(base: &str, integration: &str) -> String {
    if integration == sync_store::DEFAULT_SOURCE {
        base.to_owned()
    } else {
        format!(
            "{base}_{}",
            integration.to_ascii_uppercase().replace('-', "_")
        )
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: &Option<SecretString>| if s.is_some() { "ntn_****" } else { "unset" };
        f.debug_struct("Secrets")
            .field("notion_token", &mask(&self.notion_token))
            .field("webhook_secret", &mask(&self.webhook_secret))
            .field("slack_webhook_url", &mask(&self.slack_webhook_url))
            .field(
                "integrations",
                &self.integrations.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Secrets {
    /// Reads `NOTION_TOKEN`, `NOTION_WEBHOOK_SECRET`, `NOTION_SYNC_SLACK_WEBHOOK_URL` (or their `_FILE`).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Secrets, ConfigError> {
        Self::for_integrations(env, &[])
    }

    /// [`from_env`](Self::from_env), and the token and webhook secret of each named
    /// integration besides `default` ([`secret_var`]).
    pub fn for_integrations(
        env: &BTreeMap<String, String>,
        integrations: &[String],
    ) -> Result<Secrets, ConfigError> {
        let mut named = BTreeMap::new();
        for name in integrations {
            if name == sync_store::DEFAULT_SOURCE {
                continue;
            }
            named.insert(
                name.clone(),
                IntegrationSecrets {
                    token: secret_from_env(env, &secret_var("NOTION_TOKEN", name))?,
                    webhook_secret: secret_from_env(
                        env,
                        &secret_var("NOTION_WEBHOOK_SECRET", name),
                    )?,
                },
            );
        }
        Ok(Secrets {
            notion_token: secret_from_env(env, "NOTION_TOKEN")?,
            webhook_secret: secret_from_env(env, "NOTION_WEBHOOK_SECRET")?,
            slack_webhook_url: secret_from_env(env, "NOTION_SYNC_SLACK_WEBHOOK_URL")?,
            integrations: named,
        })
    }

    /// `integration`'s token.
    pub fn token(&self, integration: &str) -> Option<&SecretString> {
        match integration {
            sync_store::DEFAULT_SOURCE => self.notion_token.as_ref(),
            name => self.integrations.get(name)?.token.as_ref(),
        }
    }

    /// `integration`'s webhook secret.
    pub fn webhook_secret(&self, integration: &str) -> Option<&SecretString> {
        match integration {
            sync_store::DEFAULT_SOURCE => self.webhook_secret.as_ref(),
            name => self.integrations.get(name)?.webhook_secret.as_ref(),
        }
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
