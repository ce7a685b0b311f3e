//! The client context document, and the filter context built from it.
//!
//! One JSON document describes a client to the CLI, the client runtime and the server alike.
//! Every key is optional and camelCase:
//!
//! | key | meaning |
//! |---|---|
//! | `userId` | stable random id of the user or installation; the input of Normandy sampling and branch choice |
//! | `appName`, `appId` | application name (`Firefox`) and id |
//! | `version`, `buildId` | application version (`128.0.1`) and build id (`20240701123456`) |
//! | `channel`, `locale`, `country` | update channel, BCP 47 locale, ISO country code |
//! | `os` | operating system as the application reports it (`WINNT`, `Darwin`, `Linux`, `Android`, …) |
//! | `platform` | SDK platform name for CloudBees flags (`Android`, `iOS`, `Browser`, …) |
//! | `distribution` | distribution id (`default` when absent) |
//! | `isFirstRun` | true during the first session of a profile |
//! | `now` | evaluation time: RFC 3339 string or epoch seconds |
//! | `prefs` | preference snapshot `{name: {"default": v, "user": v}}` |
//! | `builtinDefaults` | the application's built-in default values `{name: v}` |
//! | `properties` | custom properties for CloudBees target groups `{name: v}` |
//! | `telemetry`, `addons` | passed through to `normandy.telemetry` / `normandy.addons` |
//! | `experiments`, `studies`, `rollouts` | passed through to the same `normandy.*` keys (normally filled by the client runtime) |
//! | `randomValues` | persisted uniform values in [0, 1) keyed by manifest experiment id or flight key name |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A preference value. Preferences are typed: boolean, integer or string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrefValue {
    /// A boolean preference.
    Bool(bool),
    /// An integer preference.
    Int(i64),
    /// A string preference.
    String(String),
}

impl PrefValue {
    /// The type name as Normandy spells it (`boolean`, `integer`, `string`).
    pub fn type_name(&self) -> &'static str {
        match self {
            PrefValue::Bool(_) => "boolean",
            PrefValue::Int(_) => "integer",
            PrefValue::String(_) => "string",
        }
    }
}

/// One preference on both branches. The user branch wins when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefEntry {
    /// Value on the default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<PrefValue>,
    /// Value on the user branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<PrefValue>,
}

impl PrefEntry {
    /// The effective value: the user branch if set, else the default branch.
    pub fn effective(&self) -> Option<&PrefValue> {
        self.user.as_ref().or(self.default.as_ref())
    }
}

/// A snapshot of preferences, read by the `preference*` transforms.
pub type PrefSnapshot = BTreeMap<String, PrefEntry>;

/// The evaluation time given in a context document: RFC 3339 text or epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContextTime {
    /// Seconds since the Unix epoch.
    EpochSeconds(f64),
    /// An RFC 3339 timestamp such as `2024-05-01T12:00:00Z`.
    Rfc3339(String),
}

impl ContextTime {
    /// The instant this denotes, or `None` when it is not a valid time.
    pub fn to_timestamp(&self) -> Option<jiff::Timestamp> {
        match self {
            ContextTime::EpochSeconds(secs) if secs.is_finite() => {
                jiff::Timestamp::from_millisecond((secs * 1000.0).round() as i64).ok()
            }
            ContextTime::EpochSeconds(_) => None,
            ContextTime::Rfc3339(text) => text.parse().ok(),
        }
    }
}

/// The client context document (see the module documentation for each key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)] // Documented in the table above.
pub struct ClientContext {
    pub user_id: Option<String>,
    pub app_name: Option<String>,
    pub app_id: Option<String>,
    pub version: Option<String>,
    pub build_id: Option<String>,
    pub channel: Option<String>,
    pub locale: Option<String>,
    pub country: Option<String>,
    pub os: Option<String>,
    pub platform: Option<String>,
    pub distribution: Option<String>,
    pub is_first_run: Option<bool>,
    pub now: Option<ContextTime>,
    #[serde(default)]
    pub prefs: PrefSnapshot,
    #[serde(default)]
    pub builtin_defaults: BTreeMap<String, PrefValue>,
    #[serde(default)]
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub telemetry: Option<serde_json::Value>,
    pub addons: Option<serde_json::Value>,
    pub experiments: Option<serde_json::Value>,
    pub studies: Option<serde_json::Value>,
    pub rollouts: Option<serde_json::Value>,
    #[serde(default)]
    pub random_values: BTreeMap<String, f64>,
}

/// A context document that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ContextError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ClientContext {
    /// Parses a context document from JSON text.
    pub fn from_json(text: &str) -> Result<ClientContext, ContextError> {
        serde_json::from_str(text).map_err(|err| ContextError {
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        })
    }

    /// The evaluation time from `now`, if the document gives a valid one.
    pub fn now(&self) -> Option<jiff::Timestamp> {
        self.now.as_ref().and_then(ContextTime::to_timestamp)
    }
}
