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
//! | `now` | evaluation time: RFC 3339 string (with an offset) or epoch seconds; anything else is an error |
//! | `prefs` | preference snapshot `{name: {"default": v, "user": v}}` |
//! | `builtinDefaults` | the application's built-in default values `{name: v}` |
//! | `properties` | custom properties for CloudBees target groups `{name: v}` |
//! | `telemetry`, `addons` | passed through to `normandy.telemetry` / `normandy.addons` |
//! | `experiments`, `studies`, `rollouts` | passed through to the same `normandy.*` keys (normally filled by the client runtime) |
//! | `randomValues` | persisted uniform values in [0, 1) keyed by manifest experiment id or flight key name |

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{FieldPath, locate_json};
use crate::value::{Object, Value};

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

/// The evaluation time given in a context document, checked when it is read: an RFC 3339
/// timestamp with an offset (`2024-05-01T12:00:00Z`), or finite epoch seconds (`1714564800`,
/// fractions allowed, rounded to the millisecond). It is written back as it was given.
///
/// An invalid time is an error, never "no time": a caller falling back to the clock would
/// silently make a run that looks reproducible depend on when it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextTime {
    written: serde_json::Value,
    at: jiff::Timestamp,
}

/// A `now` that is not a valid time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid `now` {written}: expected an RFC 3339 timestamp (with an offset) or epoch seconds"
)]
pub struct InvalidTime {
    /// The value as JSON text.
    pub written: String,
}

impl ContextTime {
    /// Reads a JSON value as a time.
    pub fn from_json(value: &serde_json::Value) -> Result<ContextTime, InvalidTime> {
        let at = match value {
            serde_json::Value::Number(n) => {
                n.as_f64().filter(|secs| secs.is_finite()).and_then(|secs| {
                    // Beyond i64 the cast saturates, and jiff refuses the result.
                    jiff::Timestamp::from_millisecond((secs * 1000.0).round() as i64).ok()
                })
            }
            serde_json::Value::String(text) => text.parse().ok(),
            _ => None,
        };
        match at {
            Some(at) => Ok(ContextTime {
                written: value.clone(),
                at,
            }),
            None => Err(InvalidTime {
                written: serde_json::to_string(value).unwrap_or_default(),
            }),
        }
    }

    /// The instant.
    pub fn timestamp(&self) -> jiff::Timestamp {
        self.at
    }

    /// The value as it was written.
    pub fn written(&self) -> &serde_json::Value {
        &self.written
    }
}

impl From<jiff::Timestamp> for ContextTime {
    /// The instant, written as an RFC 3339 timestamp in UTC.
    fn from(at: jiff::Timestamp) -> ContextTime {
        ContextTime {
            written: serde_json::Value::String(at.to_string()),
            at,
        }
    }
}

impl Serialize for ContextTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.written.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ContextTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        ContextTime::from_json(&value).map_err(serde::de::Error::custom)
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
    /// Parses a context document from JSON text. A `now` that is not a valid time (see
    /// [`ContextTime`]) is an error at the position of its value.
    pub fn from_json(text: &str) -> Result<ClientContext, ContextError> {
        serde_json::from_str(text).map_err(|err| {
            // serde_json notices a bad value only after reading it; point at its start, as
            // diagnostics do.
            if let Some(invalid) = invalid_now(text) {
                let position = locate_json(text, &FieldPath::root().key("now"));
                return ContextError {
                    line: position.line,
                    column: position.column,
                    message: invalid.to_string(),
                };
            }
            ContextError {
                line: err.line(),
                column: err.column(),
                message: err.to_string(),
            }
        })
    }

    /// The evaluation time from `now`; `None` only when the document gives none (an invalid
    /// one cannot be read into a `ClientContext`).
    pub fn now(&self) -> Option<jiff::Timestamp> {
        self.now.as_ref().map(ContextTime::timestamp)
    }

    /// The Normandy filter environment `E`, seen by filters as both `normandy` and `env`.
    ///
    /// Scalar keys the document does not give are left out, so filters read them as
    /// `undefined` (not `null`), as they would a getter Firefox cannot answer. Structured keys
    /// always exist with an empty default so that `normandy.addons[…]` or
    /// `normandy.experiments.active` never hit a missing parent:
    ///
    /// | key | from the context | when absent |
    /// |---|---|---|
    /// | `userId`, `randomizationId` | `userId` | missing |
    /// | `version`, `channel`, `locale`, `country`, `platform`, `appName`, `appId`, `buildId` | same name | missing |
    /// | `distribution` | `distribution` | `"default"` |
    /// | `isFirstRun` | `isFirstRun` | missing (reads as falsy, like `false`) |
    /// | `request_time` | `now` argument | always a `Date` |
    /// | `os` | `os`, see [`os_object`] | `{isWindows: false, isMac: false, isLinux: false}` |
    /// | `appinfo` | `{name: appName, ID: appId, version, platformVersion: version, appBuildID: buildId, platformBuildID: buildId, OS: os}` | each field missing |
    /// | `telemetry`, `addons` | same name | `{}` |
    /// | `experiments` | `experiments` | `{all: [], active: [], expired: []}` |
    /// | `studies`, `rollouts` | same name | `{pref: {}, addon: {}}` |
    /// | `properties` | `properties` | `{}` |
    ///
    /// The caller adds `recipe` with [`filter_vars`].
    pub fn filter_environment(&self, now: jiff::Timestamp) -> Object {
        let mut env = Object::new();
        let text = |s: &Option<String>| s.as_deref().map(Value::string);
        let put = |env: &mut Object, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                env.insert(Arc::from(key), value);
            }
        };
        put(&mut env, "userId", text(&self.user_id));
        put(&mut env, "randomizationId", text(&self.user_id));
        put(&mut env, "version", text(&self.version));
        put(&mut env, "channel", text(&self.channel));
        put(&mut env, "locale", text(&self.locale));
        put(&mut env, "country", text(&self.country));
        put(
            &mut env,
            "distribution",
            Some(Value::string(
                self.distribution.as_deref().unwrap_or("default"),
            )),
        );
        put(&mut env, "isFirstRun", self.is_first_run.map(Value::Bool));
        put(
            &mut env,
            "request_time",
            Some(Value::Date(now.as_millisecond() as f64)),
        );
        put(&mut env, "os", Some(os_object(self.os.as_deref())));

        let mut appinfo = Object::new();
        put(&mut appinfo, "name", text(&self.app_name));
        put(&mut appinfo, "ID", text(&self.app_id));
        put(&mut appinfo, "version", text(&self.version));
        put(&mut appinfo, "platformVersion", text(&self.version));
        put(&mut appinfo, "appBuildID", text(&self.build_id));
        put(&mut appinfo, "platformBuildID", text(&self.build_id));
        put(&mut appinfo, "OS", text(&self.os));
        put(&mut env, "appinfo", Some(Value::object(appinfo)));

        let json_or = |json: &Option<serde_json::Value>, default: fn() -> Value| {
            json.as_ref().map_or_else(default, Value::from_json)
        };
        let empty = || Value::object(Object::new());
        put(&mut env, "telemetry", Some(json_or(&self.telemetry, empty)));
        put(&mut env, "addons", Some(json_or(&self.addons, empty)));
        put(
            &mut env,
            "experiments",
            Some(json_or(&self.experiments, default_experiments)),
        );
        put(
            &mut env,
            "studies",
            Some(json_or(&self.studies, default_studies)),
        );
        put(
            &mut env,
            "rollouts",
            Some(json_or(&self.rollouts, default_studies)),
        );
        put(
            &mut env,
            "properties",
            Some(Value::from_json(&serde_json::Value::Object(
                self.properties.clone(),
            ))),
        );
        put(&mut env, "platform", text(&self.platform));
        put(&mut env, "appName", text(&self.app_name));
        put(&mut env, "appId", text(&self.app_id));
        put(&mut env, "buildId", text(&self.build_id));
        env
    }
}

/// Why the `now` of `text` is invalid, if it is present and invalid (other problems of the
/// document are not looked at).
fn invalid_now(text: &str) -> Option<InvalidTime> {
    #[derive(Deserialize)]
    struct OnlyNow {
        now: Option<serde_json::Value>,
    }
    let document: OnlyNow = serde_json::from_str(text).ok()?;
    let now = document.now.filter(|now| !now.is_null())?;
    ContextTime::from_json(&now).err()
}

fn default_experiments() -> Value {
    let empty = || Value::array(Vec::new());
    Value::object(Object::from([
        (Arc::from("all"), empty()),
        (Arc::from("active"), empty()),
        (Arc::from("expired"), empty()),
    ]))
}

fn default_studies() -> Value {
    let empty = || Value::object(Object::new());
    Value::object(Object::from([
        (Arc::from("pref"), empty()),
        (Arc::from("addon"), empty()),
    ]))
}

/// The `normandy.os` object for an operating-system name as the application reports it.
///
/// Firefox derives `isWindows`/`isMac`/`isLinux` from its build platform; here they come from
/// the context's `os` text, compared case-insensitively:
/// - `WINNT`, `Windows`, `Windows_NT`, `win`, `win32`, `win64` → `isWindows`;
/// - `Darwin`, `macOS`, `macosx`, `Mac OS X`, `mac`, `osx` → `isMac`;
/// - `Linux` → `isLinux` (Android is *not* Linux here, as in Firefox, where `isLinux` is false
///   on Android).
///
/// `name` is the given text unchanged (missing when the context has no `os`).
pub fn os_object(os: Option<&str>) -> Value {
    let lower = os.map(str::to_ascii_lowercase).unwrap_or_default();
    let is = |names: &[&str]| names.contains(&lower.as_str());
    let mut object = Object::new();
    if let Some(name) = os {
        object.insert(Arc::from("name"), Value::string(name));
    }
    let flags = [
        (
            "isWindows",
            is(&["winnt", "windows", "windows_nt", "win", "win32", "win64"]),
        ),
        (
            "isMac",
            is(&["darwin", "macos", "macosx", "mac os x", "mac", "osx"]),
        ),
        ("isLinux", is(&["linux"])),
    ];
    for (key, flag) in flags {
        object.insert(Arc::from(key), Value::Bool(flag));
    }
    Value::object(object)
}

/// The filter variables `{normandy: E', env: E'}`, where `E'` is `environment` plus `recipe`
/// (normally `{id, arguments}`) when one is given.
pub fn filter_vars(environment: &Object, recipe: Option<Value>) -> Value {
    let mut env = environment.clone();
    if let Some(recipe) = recipe {
        env.insert(Arc::from("recipe"), recipe);
    }
    // Both names share one object: filters cannot mutate it, so they may alias.
    let env = Value::object(env);
    Value::object(Object::from([
        (Arc::from("normandy"), env.clone()),
        (Arc::from("env"), env),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn get<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
        object.get(key)
    }

    fn json_of(value: Option<&Value>) -> Option<serde_json::Value> {
        value.and_then(Value::to_json)
    }

    #[test]
    fn full_context_fills_every_key() {
        let context = ClientContext::from_json(
            r#"{
                "userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d",
                "appName": "Firefox", "appId": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}",
                "version": "128.0.1", "buildId": "20240701123456",
                "channel": "release", "locale": "en-US", "country": "DE",
                "os": "WINNT", "platform": "Browser", "distribution": "acme",
                "isFirstRun": false,
                "properties": {"plan": "pro"},
                "telemetry": {"main": {"environment": {"build": {"architecture": "x86-64"}}}},
                "addons": {"a@b": {"id": "a@b", "isActive": true}},
                "experiments": {"all": ["e1"], "active": ["e1"], "expired": []},
                "studies": {"pref": {"s": {}}, "addon": {}},
                "rollouts": {"pref": {}, "addon": {}}
            }"#,
        )
        .unwrap();
        let env = context.filter_environment(now());
        let expected = serde_json::json!({
            "userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d",
            "randomizationId": "299eed1e-be6d-457d-9e53-da7b1a03f10d",
            "version": "128.0.1",
            "channel": "release",
            "locale": "en-US",
            "country": "DE",
            "distribution": "acme",
            "isFirstRun": false,
            "request_time": "2024-05-01T12:00:00.000Z",
            "os": {"name": "WINNT", "isWindows": true, "isMac": false, "isLinux": false},
            "appinfo": {
                "name": "Firefox",
                "ID": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}",
                "version": "128.0.1",
                "platformVersion": "128.0.1",
                "appBuildID": "20240701123456",
                "platformBuildID": "20240701123456",
                "OS": "WINNT"
            },
            "telemetry": {"main": {"environment": {"build": {"architecture": "x86-64"}}}},
            "addons": {"a@b": {"id": "a@b", "isActive": true}},
            "experiments": {"all": ["e1"], "active": ["e1"], "expired": []},
            "studies": {"pref": {"s": {}}, "addon": {}},
            "rollouts": {"pref": {}, "addon": {}},
            "properties": {"plan": "pro"},
            "platform": "Browser",
            "appName": "Firefox",
            "appId": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}",
            "buildId": "20240701123456"
        });
        assert_eq!(Value::object(env.clone()).to_json(), Some(expected));
        let Some(Value::Date(ms)) = get(&env, "request_time") else {
            panic!("request_time is not a Date");
        };
        assert_eq!(*ms, 1_714_564_800_000.0);
    }

    #[test]
    fn empty_context_leaves_scalars_undefined_and_defaults_structures() {
        let env = ClientContext::default().filter_environment(now());
        for key in [
            "userId",
            "randomizationId",
            "version",
            "channel",
            "locale",
            "country",
            "isFirstRun",
            "platform",
            "appName",
            "appId",
            "buildId",
        ] {
            assert!(get(&env, key).is_none(), "{key} should be missing");
        }
        let defaults = [
            ("distribution", serde_json::json!("default")),
            (
                "os",
                serde_json::json!({"isWindows": false, "isMac": false, "isLinux": false}),
            ),
            ("appinfo", serde_json::json!({})),
            ("telemetry", serde_json::json!({})),
            ("addons", serde_json::json!({})),
            (
                "experiments",
                serde_json::json!({"all": [], "active": [], "expired": []}),
            ),
            ("studies", serde_json::json!({"pref": {}, "addon": {}})),
            ("rollouts", serde_json::json!({"pref": {}, "addon": {}})),
            ("properties", serde_json::json!({})),
        ];
        for (key, expected) in defaults {
            assert_eq!(json_of(get(&env, key)), Some(expected), "{key}");
        }
        assert!(matches!(get(&env, "request_time"), Some(Value::Date(_))));
    }

    #[test]
    fn now_forms() {
        let at = |json: &str| {
            ClientContext::from_json(&format!(r#"{{"now": {json}}}"#))
                .unwrap()
                .now()
        };
        assert_eq!(at(r#""2024-05-01T12:00:00Z""#), Some(now()));
        assert_eq!(at(r#""2024-05-01T14:00:00+02:00""#), Some(now()));
        assert_eq!(at("1714564800"), Some(now()));
        assert_eq!(
            at("1714564800.0004"),
            Some(now()),
            "rounded to the millisecond"
        );
        assert_eq!(at("0"), Some(jiff::Timestamp::UNIX_EPOCH));
        // Absent and `null` mean "no time given".
        assert_eq!(at("null"), None);
        assert_eq!(ClientContext::from_json("{}").unwrap().now(), None);
    }

    #[test]
    fn an_invalid_now_is_an_error_at_its_position() {
        for (json, shown) in [
            (r#""2024-07-15 12:00""#, r#""2024-07-15 12:00""#),
            (r#""yesterday""#, r#""yesterday""#),
            ("true", "true"),
            ("[1]", "[1]"),
            ("1e300", "1e+300"),
        ] {
            let text = format!("{{\n  \"userId\": \"u\",\n  \"now\": {json}\n}}");
            let err = ClientContext::from_json(&text).unwrap_err();
            assert_eq!(
                (err.line, err.column, err.message.as_str()),
                (
                    3,
                    10,
                    format!(
                        "invalid `now` {shown}: expected an RFC 3339 timestamp (with an offset) or epoch seconds"
                    )
                    .as_str()
                ),
                "{json}"
            );
        }
        // Every reader of the document refuses it, not only `from_json`.
        let err = serde_json::from_value::<ClientContext>(serde_json::json!({"now": "soon"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid `now` "soon": expected an RFC 3339 timestamp (with an offset) or epoch seconds"#
        );
        // Other problems keep serde's position and message.
        let err = ClientContext::from_json("{\"colour\": 1, \"now\": 0}").unwrap_err();
        assert!(err.message.starts_with("unknown field `colour`"), "{err}");
    }

    #[test]
    fn now_is_written_back_as_given() {
        for json in [r#""2024-05-01T14:00:00+02:00""#, "1714564800"] {
            let text = format!(r#"{{"now":{json}}}"#);
            let context = ClientContext::from_json(&text).unwrap();
            assert_eq!(serde_json::to_string(&context.now).unwrap(), json);
        }
        let built = ContextTime::from(now());
        assert_eq!(built.timestamp(), now());
        assert_eq!(built.written(), &serde_json::json!("2024-05-01T12:00:00Z"));
        assert_eq!(ContextTime::from_json(built.written()), Ok(built));
    }

    #[test]
    fn os_mapping() {
        let cases = [
            (Some("WINNT"), true, false, false),
            (Some("Windows_NT"), true, false, false),
            (Some("windows"), true, false, false),
            (Some("Darwin"), false, true, false),
            (Some("macOS"), false, true, false),
            (Some("Linux"), false, false, true),
            (Some("Android"), false, false, false),
            (Some("iOS"), false, false, false),
            (None, false, false, false),
        ];
        for (os, windows, mac, linux) in cases {
            let Value::Object(object) = os_object(os) else {
                panic!("os is not an object");
            };
            let flag = |key: &str| matches!(object.get(key), Some(Value::Bool(true)));
            assert_eq!(
                (flag("isWindows"), flag("isMac"), flag("isLinux")),
                (windows, mac, linux),
                "{os:?}"
            );
            assert_eq!(
                object.get("name").and_then(Value::to_json),
                os.map(|name| serde_json::json!(name))
            );
        }
    }

    #[test]
    fn filter_vars_aliases_env_and_adds_recipe() {
        let context = ClientContext {
            user_id: Some("u".into()),
            ..ClientContext::default()
        };
        let env = context.filter_environment(now());
        let recipe = Value::from_json(&serde_json::json!({"id": 7, "arguments": {"slug": "s"}}));
        let vars = filter_vars(&env, Some(recipe));
        let json = vars.to_json().unwrap();
        assert_eq!(json["normandy"], json["env"]);
        assert_eq!(
            json["normandy"]["recipe"],
            serde_json::json!({"id": 7, "arguments": {"slug": "s"}})
        );
        assert_eq!(json["env"]["userId"], "u");
        // The environment itself is left untouched.
        assert!(!env.contains_key("recipe"));

        let without = filter_vars(&env, None).to_json().unwrap();
        assert!(without["normandy"].get("recipe").is_none());
        assert_eq!(without["env"]["userId"], "u");
    }
}
