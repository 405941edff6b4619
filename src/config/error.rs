//! The configuration's error: every message names the file, key or flag at fault.

use std::path::PathBuf;

/// A configuration problem. Every message names the file, key or flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file name has no extension we know.
    #[error("config file {0}: unknown format (use .toml, .yaml or .yml)")]
    Format(PathBuf),
    /// Syntax error, unknown key, wrong type: figment's message names the key and the source.
    #[error("{0}")]
    Figment(String),
    /// A value that parses but makes no sense.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// Where the config came from (file name, or "command line").
        origin: String,
        /// The key, e.g. `scenarios[0].vus`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        origin: &str,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}
