//! The server's configuration: a TOML file, `FLIGHTDECK_*` environment variables and
//! command-line flags, flags winning over variables winning over the file.
//!
//! | TOML key | variable | default |
//! |---|---|---|
//! | `listen` | `FLIGHTDECK_LISTEN` | `127.0.0.1:8080` |
//! | `data_dir` | `FLIGHTDECK_DATA_DIR` | `flightdeck-data` |
//! | `database_url` | `FLIGHTDECK_DATABASE_URL` | `sqlite://<data_dir>/flightdeck.db` |
//! | `log_format` (`text` or `json`) | `FLIGHTDECK_LOG_FORMAT` | `text` |
//! | `body_limit` | `FLIGHTDECK_BODY_LIMIT` | `1MiB` |
//! | `telemetry_body_limit` | `FLIGHTDECK_TELEMETRY_BODY_LIMIT` | `4MiB` |
//! | `peer_approval_default` | `FLIGHTDECK_PEER_APPROVAL_DEFAULT` | `true` |
//!
//! Sizes are a number of bytes or a string with a unit (`"512KiB"`, `"4 MiB"`, `"1MB"`).
//! Unknown keys in the file are errors; other `FLIGHTDECK_*` variables are ignored (tools
//! and tests use some). The file itself is named by the CLI (`--config`, or
//! [`CONFIG_FILE_VAR`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::ops::{BodyLimits, DEFAULT_BODY_LIMIT, DEFAULT_TELEMETRY_BODY_LIMIT};

/// The variable that names the configuration file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "FLIGHTDECK_CONFIG";

/// The default listen address: loopback only, until the operator opens it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "flightdeck-data";

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}; expected text or json"
            )),
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ConfigLayer")]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the server keeps its files (the SQLite database by default).
    pub data_dir: PathBuf,
    /// The database (`sqlite://PATH` or `postgres://…`); `None` means the SQLite file in
    /// `data_dir` (see [`ServerConfig::database_url`]).
    pub database_url: Option<String>,
    /// How logs are written.
    pub log_format: LogFormat,
    /// The largest request body, in bytes, on every route but telemetry.
    pub body_limit: usize,
    /// The largest telemetry upload, in bytes.
    pub telemetry_body_limit: usize,
    /// Whether a new environment requires peer approval unless it says otherwise.
    pub peer_approval_default: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig::from(ConfigLayer::default())
    }
}

impl ServerConfig {
    /// Merges `flags` over `env` over `file` over the defaults.
    pub fn from_layers(flags: ConfigLayer, env: ConfigLayer, file: ConfigLayer) -> ServerConfig {
        ServerConfig::from(flags.over(env).over(file))
    }

    /// Reads the configuration: the TOML file at `file` (when given), the `FLIGHTDECK_*`
    /// variables among `env_vars` (pass `std::env::vars()`), then `flags` from the command
    /// line.
    pub fn load<I>(
        file: Option<&Path>,
        env_vars: I,
        flags: ConfigLayer,
    ) -> Result<ServerConfig, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let file_layer = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.to_owned(),
                    message: error.to_string(),
                })?;
                ConfigLayer::from_toml(&text).map_err(|message| ConfigError::File {
                    path: path.to_owned(),
                    message,
                })?
            }
            None => ConfigLayer::default(),
        };
        let env_layer = ConfigLayer::from_env(env_vars)?;
        Ok(ServerConfig::from_layers(flags, env_layer, file_layer))
    }

    /// The database URL: the configured one, or the SQLite file `flightdeck.db` in the data
    /// directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("flightdeck.db").display()),
        }
    }

    /// The request body limits.
    pub fn limits(&self) -> BodyLimits {
        BodyLimits {
            body: self.body_limit,
            telemetry: self.telemetry_body_limit,
        }
    }
}

impl From<ConfigLayer> for ServerConfig {
    fn from(layer: ConfigLayer) -> ServerConfig {
        ServerConfig {
            listen: layer.listen.unwrap_or_else(default_listen),
            data_dir: layer
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database_url: layer.database_url,
            log_format: layer.log_format.unwrap_or_default(),
            body_limit: layer.body_limit.map_or(DEFAULT_BODY_LIMIT, |size| size.0),
            telemetry_body_limit: layer
                .telemetry_body_limit
                .map_or(DEFAULT_TELEMETRY_BODY_LIMIT, |size| size.0),
            peer_approval_default: layer.peer_approval_default.unwrap_or(true),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// One source of configuration: each setting it gives, `None` for the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// `listen`.
    pub listen: Option<SocketAddr>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `database_url`.
    pub database_url: Option<String>,
    /// `log_format`.
    pub log_format: Option<LogFormat>,
    /// `body_limit`.
    pub body_limit: Option<ByteSize>,
    /// `telemetry_body_limit`.
    pub telemetry_body_limit: Option<ByteSize>,
    /// `peer_approval_default`.
    pub peer_approval_default: Option<bool>,
}

impl ConfigLayer {
    /// Reads a TOML configuration file's text.
    pub fn from_toml(text: &str) -> Result<ConfigLayer, String> {
        let layer: ConfigLayer = toml::from_str(text).map_err(|error| error.to_string())?;
        layer.check().map_err(|message| message.to_owned())?;
        Ok(layer)
    }

    /// Reads the `FLIGHTDECK_*` variables among `vars` (others are ignored).
    pub fn from_env<I>(vars: I) -> Result<ConfigLayer, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut layer = ConfigLayer::default();
        for (name, value) in vars {
            let invalid = |message: String| ConfigError::Env {
                var: name.clone(),
                message,
            };
            match name.as_str() {
                "FLIGHTDECK_LISTEN" => {
                    layer.listen = Some(value.trim().parse().map_err(|error| {
                        invalid(format!("not an address like 127.0.0.1:8080: {error}"))
                    })?);
                }
                "FLIGHTDECK_DATA_DIR" => layer.data_dir = Some(PathBuf::from(value)),
                "FLIGHTDECK_DATABASE_URL" => layer.database_url = Some(value),
                "FLIGHTDECK_LOG_FORMAT" => layer.log_format = Some(value.parse().map_err(invalid)?),
                "FLIGHTDECK_BODY_LIMIT" => {
                    layer.body_limit = Some(value.parse().map_err(invalid)?);
                }
                "FLIGHTDECK_TELEMETRY_BODY_LIMIT" => {
                    layer.telemetry_body_limit = Some(value.parse().map_err(invalid)?);
                }
                "FLIGHTDECK_PEER_APPROVAL_DEFAULT" => {
                    layer.peer_approval_default = Some(parse_bool(&value).map_err(invalid)?);
                }
                _ => {}
            }
        }
        layer.check().map_err(|message| ConfigError::Env {
            var: "FLIGHTDECK_*".to_owned(),
            message: message.to_owned(),
        })?;
        Ok(layer)
    }

    /// This layer, with `lower`'s settings where this one gives none.
    pub fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            log_format: self.log_format.or(lower.log_format),
            body_limit: self.body_limit.or(lower.body_limit),
            telemetry_body_limit: self.telemetry_body_limit.or(lower.telemetry_body_limit),
            peer_approval_default: self.peer_approval_default.or(lower.peer_approval_default),
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        if self.body_limit == Some(ByteSize(0)) || self.telemetry_body_limit == Some(ByteSize(0)) {
            return Err("a body limit must be above zero");
        }
        Ok(())
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("not a boolean: {other:?} (use true or false)")),
    }
}

/// A size in bytes, written as a number of bytes or with a unit (`B`, `KB`, `MB`, `GB`,
/// `KiB`, `MiB`, `GiB`; case-insensitive, a space allowed before the unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: usize = number
            .parse()
            .map_err(|_| format!("not a size: {text:?} (e.g. 1048576, \"512KiB\", \"4MiB\")"))?;
        let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "mb" => 1000 * 1000,
            "gb" => 1000 * 1000 * 1000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            other => return Err(format!("unknown size unit {other:?} in {text:?}")),
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Bytes(bytes) => usize::try_from(bytes)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is not a valid configuration.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A variable has an invalid value.
    #[error("{var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let config = ServerConfig::default();
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            config.database_url(),
            "sqlite://flightdeck-data/flightdeck.db"
        );
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.body_limit, 1024 * 1024);
        assert_eq!(config.telemetry_body_limit, 4 * 1024 * 1024);
        assert!(config.peer_approval_default);
    }

    #[test]
    fn flags_win_over_env_which_wins_over_the_file() {
        let file = ConfigLayer::from_toml(
            r#"
            listen = "0.0.0.0:9000"
            data_dir = "/var/lib/flightdeck"
            database_url = "postgres://file/db"
            log_format = "json"
            body_limit = "2MiB"
            telemetry_body_limit = 8388608
            peer_approval_default = false
            "#,
        )
        .unwrap();
        let env = ConfigLayer::from_env(vars(&[
            ("FLIGHTDECK_LISTEN", "127.0.0.1:9001"),
            ("FLIGHTDECK_DATABASE_URL", "postgres://env/db"),
            ("FLIGHTDECK_BODY_LIMIT", "512KiB"),
            ("FLIGHTDECK_TEST_POSTGRES_URL", "ignored"),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap();
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:9002".parse().unwrap()),
            ..ConfigLayer::default()
        };
        let config = ServerConfig::from_layers(flags, env, file);
        assert_eq!(config.listen, "127.0.0.1:9002".parse().unwrap(), "flag");
        assert_eq!(config.database_url(), "postgres://env/db", "env over file");
        assert_eq!(config.body_limit, 512 * 1024, "env over file");
        assert_eq!(
            config.data_dir,
            PathBuf::from("/var/lib/flightdeck"),
            "file"
        );
        assert_eq!(config.log_format, LogFormat::Json, "file");
        assert_eq!(config.telemetry_body_limit, 8 * 1024 * 1024, "file");
        assert!(!config.peer_approval_default, "file");
    }

    #[test]
    fn load_reads_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flightdeck.toml");
        std::fs::write(
            &path,
            "log_format = \"json\"\nlisten = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let config = ServerConfig::load(
            Some(&path),
            vars(&[("FLIGHTDECK_LOG_FORMAT", "text")]),
            ConfigLayer::default(),
        )
        .unwrap();
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.listen, "127.0.0.1:7000".parse().unwrap());

        let missing = ServerConfig::load(
            Some(&dir.path().join("missing.toml")),
            Vec::new(),
            ConfigLayer::default(),
        );
        assert!(matches!(missing, Err(ConfigError::Read { .. })));
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(ConfigLayer::from_toml("listen = \"nowhere\"").is_err());
        assert!(ConfigLayer::from_toml("unknown_key = 1").is_err());
        assert!(ConfigLayer::from_toml("body_limit = \"12 parsecs\"").is_err());
        assert!(ConfigLayer::from_toml("body_limit = 0").is_err());
        assert!(ConfigLayer::from_toml("log_format = \"xml\"").is_err());
        let error = ConfigLayer::from_env(vars(&[("FLIGHTDECK_PEER_APPROVAL_DEFAULT", "maybe")]))
            .unwrap_err();
        assert!(
            matches!(&error, ConfigError::Env { var, .. } if var == "FLIGHTDECK_PEER_APPROVAL_DEFAULT"),
            "{error}"
        );
        assert!(ConfigLayer::from_env(vars(&[("FLIGHTDECK_LISTEN", "x")])).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!("1048576".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("4MiB".parse(), Ok(ByteSize(4 << 20)));
        assert_eq!("4 mib".parse(), Ok(ByteSize(4 << 20)));
        assert_eq!("1MB".parse(), Ok(ByteSize(1_000_000)));
        assert_eq!("512KiB".parse(), Ok(ByteSize(512 << 10)));
        assert!("MiB".parse::<ByteSize>().is_err());
        assert!("-1".parse::<ByteSize>().is_err());
    }

    #[test]
    fn server_config_deserializes_with_defaults() {
        let config: ServerConfig = toml::from_str("body_limit = \"64KiB\"").unwrap();
        assert_eq!(config.body_limit, 64 * 1024);
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
    }
}
