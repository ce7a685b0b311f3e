//! Firefox Experiments Manifest v1 (seed 003): the typed model, validation and serialisation.
//!
//! A manifest is a JSON object `{"version": 1, "experiments": [...]}`. [`parse`] validates it and
//! reports every problem as a [`Diagnostic`] with file, line, column and field path:
//!
//! - JSON syntax errors, a root that is not an object, or an `experiments` member that is not an
//!   array make the whole document unusable (`value: None`).
//! - A missing `version`, or a `version` other than `1`, is an error, but the manifest is still
//!   returned so that tools can show it; [`Manifest::is_supported`] is then false and evaluation
//!   ignores the manifest (rule 8).
//! - Each experiment entry is validated on its own. An invalid entry (a missing required field,
//!   a wrong type, a malformed `xpiHash`, `sample` outside [0, 1], a duplicate `id`) gets error
//!   diagnostics and is **left out** of [`Manifest::experiments`]; the other entries stay usable.
//!   This matches the reference client, which skips invalid entries and logs them.
//!   [`Manifest::rejected`] records each one (its id when readable, and the first error), so
//!   that evaluation can report it as `invalid: …` instead of letting it vanish.
//! - Unknown keys (in the root or in an entry) are warnings, not rejections (product decision);
//!   they are kept in `extra` so that [`to_json`] writes them back.
//!
//! Required fields are the ones the document marks "(required)": `id`, `xpiURL` and `xpiHash`.
//! The reference client also required `startTime`, `endTime`, `maxActiveSeconds`, `appName` and
//! `channel`; here they are optional and an absent one imposes no condition.

use std::collections::HashSet;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, FieldPath, JsonLocator, Position};
use crate::model::{Parsed, RejectedItem};

/// The only manifest schema version this module understands.
pub const SUPPORTED_VERSION: u64 = 1;

/// Manifests larger than this are refused before parsing (a 1,000-experiment manifest is well
/// under 2 MiB).
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// The largest time value accepted: JavaScript's `Number.MAX_SAFE_INTEGER`, beyond which the
/// reference client could not represent the number exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A parsed Manifest v1 document.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Manifest {
    /// The top-level `version` exactly as written (`None` when absent). Only the number `1` is
    /// supported; see [`Manifest::is_supported`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    /// The valid experiment entries, in manifest order (earlier entries have priority).
    pub experiments: Vec<ManifestExperiment>,
    /// The entries rejected by validation and left out of `experiments`, in manifest order.
    /// Not written by [`to_json`].
    #[serde(skip)]
    pub rejected: Vec<RejectedItem>,
    /// Unknown top-level keys, kept for round-tripping.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Manifest {
    /// Whether the manifest declares a schema version this module understands (exactly `1`).
    /// A client ignores a manifest for which this is false (rule 8).
    pub fn is_supported(&self) -> bool {
        self.version.as_ref().is_some_and(is_version_one)
    }

    /// The experiment with this id, if the manifest has a valid entry for it.
    pub fn experiment(&self, id: &str) -> Option<&ManifestExperiment> {
        self.experiments.iter().find(|e| e.id == id)
    }
}

/// `1` and `1.0` both denote version 1, as they do for the reference client's `!==` check.
fn is_version_one(version: &Value) -> bool {
    version.as_f64() == Some(1.0)
}

/// One entry of the `experiments` array. Field names follow the document (see [`to_json`] for
/// the JSON spelling). Times are integer seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestExperiment {
    /// Opaque identifier, unique for all time. Required, non-empty.
    pub id: String,
    /// URL of the XPI that implements the experiment. Required, non-empty.
    #[serde(rename = "xpiURL")]
    pub xpi_url: String,
    /// Hash of the XPI; the client refuses a download that does not match. Required.
    pub xpi_hash: XpiHash,
    /// Do not start before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// Do not start *new* clients after this time (a running experiment keeps running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_start_time: Option<u64>,
    /// Stop the experiment once the time is at or beyond this value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<u64>,
    /// Stop the experiment this many seconds of wall time after the client activated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_active_seconds: Option<u64>,
    /// Application names (`Firefox`, `Fennec`, …) the experiment runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<Vec<String>>,
    /// Lowest application version, inclusive, by the toolkit version comparator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Highest application version, inclusive, by the toolkit version comparator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// Exact application versions allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Vec<String>>,
    /// Lowest build id, inclusive, by plain string comparison.
    #[serde(rename = "minBuildID", skip_serializing_if = "Option::is_none")]
    pub min_build_id: Option<String>,
    /// Highest build id, inclusive, by plain string comparison.
    #[serde(rename = "maxBuildID", skip_serializing_if = "Option::is_none")]
    pub max_build_id: Option<String>,
    /// Exact build ids allowed.
    #[serde(rename = "buildIDs", skip_serializing_if = "Option::is_none")]
    pub build_ids: Option<Vec<String>>,
    /// Operating systems (`nsIXULRuntime.OS` values) allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<Vec<String>>,
    /// Update channels allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Vec<String>>,
    /// Locales allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<Vec<String>>,
    /// Sampling rate in [0, 1]: applicable when the client's persisted random value ≤ `sample`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
    /// Remote kill switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// No new enrollments (a running experiment keeps running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<bool>,
    /// JavaScript source defining `filter(context)`, run in a sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsfilter: Option<String>,
    /// Keys the document does not define, kept for round-tripping (a warning at parse time).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ManifestExperiment {
    /// An entry with only the required fields set.
    pub fn new(id: &str, xpi_url: &str, xpi_hash: XpiHash) -> ManifestExperiment {
        ManifestExperiment {
            id: id.to_owned(),
            xpi_url: xpi_url.to_owned(),
            xpi_hash,
            start_time: None,
            max_start_time: None,
            end_time: None,
            max_active_seconds: None,
            app_name: None,
            min_version: None,
            max_version: None,
            version: None,
            min_build_id: None,
            max_build_id: None,
            build_ids: None,
            os: None,
            channel: None,
            locale: None,
            sample: None,
            disabled: None,
            frozen: None,
            jsfilter: None,
            extra: Map::new(),
        }
    }
}

/// A hash algorithm allowed in `xpiHash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (40 hex digits).
    Sha1,
    /// SHA-256 (64 hex digits).
    Sha256,
}

impl HashAlgorithm {
    /// The name used in `xpiHash` (`sha1`, `sha256`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
        }
    }

    /// The number of hex digits of a digest.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Sha256 => 64,
        }
    }
}

/// An `xpiHash` value: `<algorithm>:<hex digest>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XpiHash {
    /// The digest algorithm.
    pub algorithm: HashAlgorithm,
    /// The hex digest as written (either case; compare with [`XpiHash::matches_hex`]).
    pub hex: String,
}

/// A malformed `xpiHash` string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XpiHashError {
    /// No `:` between algorithm and digest.
    #[error("no `:` between the algorithm and the digest")]
    MissingColon,
    /// An algorithm other than `sha1` and `sha256`.
    #[error("unsupported hash algorithm `{0}`: use `sha1` or `sha256`")]
    UnsupportedAlgorithm(String),
    /// The digest has the wrong length or a non-hex character.
    #[error("a {algorithm} digest must be {expected} hex digits, got `{hex}`")]
    BadDigest {
        /// The algorithm name.
        algorithm: &'static str,
        /// The required number of hex digits.
        expected: usize,
        /// The digest as written.
        hex: String,
    },
}

impl XpiHash {
    /// Parses `sha1:<40 hex>` or `sha256:<64 hex>`. The algorithm name is lowercase, as in the
    /// document; hex digits may be either case.
    pub fn parse(text: &str) -> Result<XpiHash, XpiHashError> {
        let (name, hex) = text.split_once(':').ok_or(XpiHashError::MissingColon)?;
        let algorithm = match name {
            "sha1" => HashAlgorithm::Sha1,
            "sha256" => HashAlgorithm::Sha256,
            other => return Err(XpiHashError::UnsupportedAlgorithm(other.to_owned())),
        };
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(XpiHashError::BadDigest {
                algorithm: algorithm.name(),
                expected: algorithm.hex_len(),
                hex: hex.to_owned(),
            });
        }
        Ok(XpiHash {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// Whether a computed hex digest (either case) equals this one.
    pub fn matches_hex(&self, computed: &str) -> bool {
        self.hex.eq_ignore_ascii_case(computed)
    }
}

impl fmt::Display for XpiHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl Serialize for XpiHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Serialises a manifest as pretty-printed JSON with the document's field names. Absent
/// optional fields are left out, unknown keys are written back after the known ones, and
/// `experiments` is always written. `parse(to_json(m))` gives `m` back (minus `rejected`:
/// rejected entries are not written).
pub fn to_json(manifest: &Manifest) -> String {
    // Serialising these types cannot fail: every map key is a string and every number finite
    // (a non-finite `sample` would be written as `null`).
    serde_json::to_string_pretty(manifest).unwrap_or_default()
}

/// Parses and validates a Manifest v1 document. `file` names the source in diagnostics.
pub fn parse(file: &str, text: &str) -> Parsed<Manifest> {
    let mut diagnostics = Vec::new();
    let value = parse_document(file, text, &mut diagnostics);
    // Checks run field by field, not in text order; sort so readers see source order. The sort
    // is stable, so problems at one place keep their check order.
    diagnostics.sort_by_key(|d| d.position);
    Parsed { value, diagnostics }
}

fn parse_document(file: &str, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Manifest> {
    if text.len() > MAX_MANIFEST_BYTES {
        diagnostics.push(Diagnostic::error(
            file,
            Position::START,
            FieldPath::root(),
            format!(
                "the manifest is {} bytes, more than the limit of {MAX_MANIFEST_BYTES}",
                text.len()
            ),
        ));
        return None;
    }
    let json: Value = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(err) => {
            diagnostics.push(Diagnostic::error(
                file,
                syntax_error_position(text, &err),
                FieldPath::root(),
                format!("invalid JSON: {err}"),
            ));
            return None;
        }
    };
    let root_path = FieldPath::root();
    let Value::Object(mut root) = json else {
        diagnostics.push(Diagnostic::json_error(
            file,
            text,
            root_path,
            format!(
                "the manifest must be a JSON object, not {}",
                json_type_name(&json)
            ),
        ));
        return None;
    };
    let version = root.shift_remove("version");
    match &version {
        None => diagnostics.push(Diagnostic::json_error(
            file,
            text,
            root_path.clone(),
            "missing required field `version`; clients ignore a manifest without a supported version"
                .to_owned(),
        )),
        Some(v) if is_version_one(v) => {}
        Some(v) => diagnostics.push(Diagnostic::json_error(
            file,
            text,
            root_path.key("version"),
            format!(
                "unsupported manifest version {v}: only version {SUPPORTED_VERSION} is defined, \
                 so clients ignore this manifest"
            ),
        )),
    }
    let entries = match root.shift_remove("experiments") {
        None => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            diagnostics.push(Diagnostic::json_error(
                file,
                text,
                root_path.key("experiments"),
                format!(
                    "`experiments` must be an array, not {}",
                    json_type_name(&other)
                ),
            ));
            return None;
        }
    };
    for key in root.keys() {
        diagnostics.push(Diagnostic::json_warning(
            file,
            text,
            root_path.key(key),
            format!("unknown key `{key}` (kept, but it has no meaning in manifest version 1)"),
        ));
    }

    let mut manifest = Manifest {
        version,
        experiments: Vec::with_capacity(entries.len()),
        rejected: Vec::new(),
        extra: root,
    };
    let mut seen_ids: HashSet<String> = HashSet::new();
    // serde_json accepted the text above, so the locator may take the fast path.
    let mut locator = JsonLocator::for_valid_json(text);
    for (index, entry) in entries.into_iter().enumerate() {
        let path = root_path.key("experiments").index(index);
        let first_diagnostic = diagnostics.len();
        let readable_id = match &entry {
            Value::Object(fields) => match fields.get("id") {
                Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
                _ => None,
            },
            _ => None,
        };
        let mut checker = EntryChecker {
            file,
            locator: &mut locator,
            path: &path,
            diagnostics: &mut *diagnostics,
            valid: true,
        };
        let experiment = checker.experiment(entry);
        let experiment = match experiment {
            Some(experiment) if !seen_ids.contains(&experiment.id) => {
                seen_ids.insert(experiment.id.clone());
                Some(experiment)
            }
            Some(experiment) => {
                diagnostics.push(Diagnostic::json_error(
                    file,
                    text,
                    path.key("id"),
                    format!(
                        "duplicate experiment id `{}`: this entry is rejected, the first one is kept",
                        experiment.id
                    ),
                ));
                None
            }
            None => None,
        };
        match experiment {
            Some(experiment) => manifest.experiments.push(experiment),
            None => manifest.rejected.push(RejectedItem::from_diagnostics(
                readable_id,
                file,
                index,
                locator.locate(&path),
                &path,
                diagnostics.get(first_diagnostic..).unwrap_or_default(),
            )),
        }
    }
    Some(manifest)
}

/// serde_json reports a 1-based line and a byte column (0 at the very start of a line); a
/// [`Position`] counts characters from 1.
fn syntax_error_position(text: &str, err: &serde_json::Error) -> Position {
    let line = err.line().max(1);
    let line_start = if line == 1 {
        Some(0)
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
    };
    match line_start {
        Some(start) => {
            let offset = start + err.column().saturating_sub(1);
            Position::of_offset(text, offset)
        }
        None => Position {
            line,
            column: err.column().max(1),
        },
    }
}

/// How a JSON value's type is named in messages.
fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validates one experiment entry, collecting diagnostics; `valid` turns false on any error.
struct EntryChecker<'a, 't> {
    file: &'a str,
    /// Shared by all entries, so that many diagnostics cost about one pass over the text.
    locator: &'a mut JsonLocator<'t>,
    path: &'a FieldPath,
    diagnostics: &'a mut Vec<Diagnostic>,
    valid: bool,
}

impl EntryChecker<'_, '_> {
    fn error(&mut self, path: FieldPath, message: String) {
        self.valid = false;
        let position = self.locator.locate(&path);
        self.diagnostics
            .push(Diagnostic::error(self.file, position, path, message));
    }

    fn warning(&mut self, path: FieldPath, message: String) {
        let position = self.locator.locate(&path);
        self.diagnostics
            .push(Diagnostic::warning(self.file, position, path, message));
    }

    fn wrong_type(&mut self, key: &str, expected: &str, value: &Value) {
        self.error(
            self.path.key(key),
            format!("`{key}` must be {expected}, not {}", json_type_name(value)),
        );
    }

    /// Returns the entry if it is valid; otherwise reports why and returns `None`.
    fn experiment(&mut self, entry: Value) -> Option<ManifestExperiment> {
        let Value::Object(mut fields) = entry else {
            self.error(
                self.path.clone(),
                format!(
                    "an experiment must be a JSON object, not {}",
                    json_type_name(&entry)
                ),
            );
            return None;
        };
        let mut take = |key: &str| fields.shift_remove(key);
        let id = self.required_string("id", take("id"));
        let xpi_url = self.required_string("xpiURL", take("xpiURL"));
        let xpi_hash = self.xpi_hash(take("xpiHash"));
        let start_time = self.seconds("startTime", take("startTime"));
        let max_start_time = self.seconds("maxStartTime", take("maxStartTime"));
        let end_time = self.seconds("endTime", take("endTime"));
        let max_active_seconds = self.seconds("maxActiveSeconds", take("maxActiveSeconds"));
        let app_name = self.string_list("appName", take("appName"));
        let min_version = self.optional_string("minVersion", take("minVersion"));
        let max_version = self.optional_string("maxVersion", take("maxVersion"));
        let version = self.string_list("version", take("version"));
        let min_build_id = self.optional_string("minBuildID", take("minBuildID"));
        let max_build_id = self.optional_string("maxBuildID", take("maxBuildID"));
        let build_ids = self.string_list("buildIDs", take("buildIDs"));
        let os = self.string_list("os", take("os"));
        let channel = self.string_list("channel", take("channel"));
        let locale = self.string_list("locale", take("locale"));
        let sample = self.sample(take("sample"));
        let disabled = self.boolean("disabled", take("disabled"));
        let frozen = self.boolean("frozen", take("frozen"));
        let jsfilter = self.optional_string("jsfilter", take("jsfilter"));
        for key in fields.keys() {
            self.warning(
                self.path.key(key),
                format!("unknown key `{key}` (kept, but ignored by evaluation)"),
            );
        }
        if let (Some(start), Some(end)) = (start_time, end_time)
            && start >= end
        {
            self.warning(
                self.path.key("endTime"),
                format!("`endTime` ({end}) is not after `startTime` ({start}): the experiment can never run"),
            );
        }
        if !self.valid {
            return None;
        }
        Some(ManifestExperiment {
            id: id?,
            xpi_url: xpi_url?,
            xpi_hash: xpi_hash?,
            start_time,
            max_start_time,
            end_time,
            max_active_seconds,
            app_name,
            min_version,
            max_version,
            version,
            min_build_id,
            max_build_id,
            build_ids,
            os,
            channel,
            locale,
            sample,
            disabled,
            frozen,
            jsfilter,
            extra: fields,
        })
    }

    fn required_string(&mut self, key: &str, value: Option<Value>) -> Option<String> {
        match value {
            None => {
                self.error(
                    self.path.key(key),
                    format!("missing required field `{key}`"),
                );
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                self.error(self.path.key(key), format!("`{key}` must not be empty"));
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.wrong_type(key, "a string", &other);
                None
            }
        }
    }

    fn xpi_hash(&mut self, value: Option<Value>) -> Option<XpiHash> {
        let text = self.required_string("xpiHash", value)?;
        match XpiHash::parse(&text) {
            Ok(hash) => Some(hash),
            Err(err) => {
                self.error(
                    self.path.key("xpiHash"),
                    format!("expected `sha1:<40 hex>` or `sha256:<64 hex>`: {err}"),
                );
                None
            }
        }
    }

    /// An optional string. An empty string is accepted but warned about: like the reference
    /// client (JavaScript truthiness), evaluation treats it as absent.
    fn optional_string(&mut self, key: &str, value: Option<Value>) -> Option<String> {
        match value? {
            Value::String(s) => {
                if s.is_empty() {
                    self.warning(
                        self.path.key(key),
                        format!("`{key}` is empty and is treated as absent"),
                    );
                }
                Some(s)
            }
            other => {
                self.wrong_type(key, "a string", &other);
                None
            }
        }
    }

    /// An optional array of strings. An empty array is valid but matches no client.
    fn string_list(&mut self, key: &str, value: Option<Value>) -> Option<Vec<String>> {
        let items = match value? {
            Value::Array(items) => items,
            other => {
                self.wrong_type(key, "an array of strings", &other);
                return None;
            }
        };
        if items.is_empty() {
            self.warning(
                self.path.key(key),
                format!("`{key}` is an empty list, so the experiment applies to no client"),
            );
        }
        let mut strings = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            match item {
                Value::String(s) => strings.push(s),
                other => {
                    self.error(
                        self.path.key(key).index(index),
                        format!(
                            "`{key}` must hold only strings, not {}",
                            json_type_name(&other)
                        ),
                    );
                }
            }
        }
        Some(strings)
    }

    /// Integer seconds since the epoch (or a duration in seconds): a non-negative integer, also
    /// when written as `1e9` or `5.0`, up to 2^53 − 1.
    fn seconds(&mut self, key: &str, value: Option<Value>) -> Option<u64> {
        let value = value?;
        let seconds = match &value {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_SAFE_INTEGER as f64)
                    .map(|f| f as u64)
            }),
            other => {
                self.wrong_type(key, "an integer number of seconds", other);
                return None;
            }
        };
        match seconds {
            Some(s) if s <= MAX_SAFE_INTEGER => Some(s),
            _ => {
                self.error(
                    self.path.key(key),
                    format!(
                        "`{key}` must be a non-negative integer number of seconds \
                         (at most {MAX_SAFE_INTEGER}), got {value}"
                    ),
                );
                None
            }
        }
    }

    fn sample(&mut self, value: Option<Value>) -> Option<f64> {
        let value = value?;
        match value.as_f64() {
            Some(rate) if (0.0..=1.0).contains(&rate) => Some(rate),
            Some(rate) => {
                self.error(
                    self.path.key("sample"),
                    format!("`sample` must be between 0 and 1, got {rate}"),
                );
                None
            }
            None => {
                self.wrong_type("sample", "a number between 0 and 1", &value);
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, value: Option<Value>) -> Option<bool> {
        match value? {
            Value::Bool(b) => Some(b),
            other => {
                self.wrong_type(key, "a boolean", &other);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
