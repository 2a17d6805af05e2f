//! What can be wrong with the configuration, phrased for the operator.

use std::path::PathBuf;

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
        key: String,
        value: String,
        allowed: String,
    },
    #[error("secret {var}: {reason}")]
    Secret { var: String, reason: String },
}
