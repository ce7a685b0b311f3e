//! Action arguments, typed and validated like Normandy's action JSON schemas (draft-04).
//!
//! The schemas allow additional properties, so unknown keys are kept in `extra` and written
//! back. Integers may be written `3` or `3.0` (the client is JavaScript, where they are the
//! same number).

use crate::context::PrefValue;
use indexmap::IndexMap;

use super::json::{
    Cx, Json, JsonObj, Loc, SeenStrings, as_whole_number, describe, extras, type_name,
};
use super::{
    ACTION_MULTI_PREFERENCE_EXPERIMENT, ACTION_PREFERENCE_EXPERIMENT, ACTION_PREFERENCE_ROLLBACK,
    ACTION_PREFERENCE_ROLLOUT, ACTION_SINGLE_PREFERENCE_EXPERIMENT, JsonMap,
};

/// A recipe's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Arguments {
    /// `preference-rollout`.
    PreferenceRollout(RolloutArguments),
    /// `preference-rollback`.
    PreferenceRollback(RollbackArguments),
    /// `preference-experiment` / `single-preference-experiment` (one preference).
    PreferenceExperiment(SinglePreferenceExperimentArguments),
    /// `multi-preference-experiment`.
    MultiPreferenceExperiment(MultiPreferenceExperimentArguments),
    /// An action Flightdeck does not run, with its arguments untouched.
    Other {
        /// The action name.
        action: String,
        /// The arguments as given.
        raw: serde_json::Value,
    },
    /// A supported action whose arguments failed validation (the diagnostics say why).
    Invalid {
        /// The action name.
        action: String,
        /// The arguments as given; `None` when they were missing.
        raw: Option<serde_json::Value>,
    },
}

impl Arguments {
    /// The rollout or experiment slug (`rolloutSlug` for a rollback).
    pub fn slug(&self) -> Option<&str> {
        match self {
            Arguments::PreferenceRollout(a) => Some(&a.slug),
            Arguments::PreferenceRollback(a) => Some(&a.rollout_slug),
            Arguments::PreferenceExperiment(a) => Some(&a.slug),
            Arguments::MultiPreferenceExperiment(a) => Some(&a.slug),
            Arguments::Other { raw, .. } | Arguments::Invalid { raw: Some(raw), .. } => {
                raw.get("slug").and_then(serde_json::Value::as_str)
            }
            Arguments::Invalid { raw: None, .. } => None,
        }
    }

    /// Whether the arguments passed validation (always true for unsupported actions, which
    /// are not validated).
    pub fn is_valid(&self) -> bool {
        !matches!(self, Arguments::Invalid { .. })
    }
}

/// A preference type as Normandy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefType {
    /// `"string"`.
    String,
    /// `"integer"`.
    Integer,
    /// `"boolean"`.
    Boolean,
}

impl PrefType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PrefType::String => "string",
            PrefType::Integer => "integer",
            PrefType::Boolean => "boolean",
        }
    }

    fn from_name(name: &str) -> Option<PrefType> {
        match name {
            "string" => Some(PrefType::String),
            "integer" => Some(PrefType::Integer),
            "boolean" => Some(PrefType::Boolean),
            _ => None,
        }
    }

    /// The type of a value.
    pub fn of(value: &PrefValue) -> PrefType {
        match value {
            PrefValue::Bool(_) => PrefType::Boolean,
            PrefValue::Int(_) => PrefType::Integer,
            PrefValue::String(_) => PrefType::String,
        }
    }
}

/// Which preference branch an experiment writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PrefBranchType {
    /// The user branch (persisted, overrides the default).
    User,
    /// The default branch (recommended; the schema default).
    #[default]
    Default,
}

impl PrefBranchType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PrefBranchType::User => "user",
            PrefBranchType::Default => "default",
        }
    }

    fn from_name(name: &str) -> Option<PrefBranchType> {
        match name {
            "user" => Some(PrefBranchType::User),
            "default" => Some(PrefBranchType::Default),
            _ => None,
        }
    }
}

/// `preference-rollout` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutArguments {
    /// Unique rollout identifier (`^[a-z0-9\-_]+$`).
    pub slug: String,
    /// The preferences to change (at least one).
    pub preferences: Vec<RolloutPreference>,
    /// Other keys.
    pub extra: JsonMap,
}

/// One preference of a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPreference {
    /// Full dotted preference name.
    pub preference_name: String,
    /// The value to set (on the default branch).
    pub value: PrefValue,
    /// Other keys.
    pub extra: JsonMap,
}

/// `preference-rollback` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackArguments {
    /// The rollout to undo (`^[a-z0-9\-_]+$`).
    pub rollout_slug: String,
    /// Other keys.
    pub extra: JsonMap,
}

/// Legacy single-preference experiment arguments (seed 002).
#[derive(Debug, Clone, PartialEq)]
pub struct SinglePreferenceExperimentArguments {
    /// Unique experiment identifier (`^[A-Za-z0-9\-_]+$`).
    pub slug: String,
    /// The preference under test.
    pub preference_name: String,
    /// Its type.
    pub preference_type: PrefType,
    /// Which branch is written; `None` when not given (the default branch).
    pub preference_branch_type: Option<PrefBranchType>,
    /// The experiment branches (at least one).
    pub branches: Vec<SinglePreferenceBranch>,
    /// "Prevent new enrollment".
    pub is_enrollment_paused: bool,
    /// High-population telemetry, when given.
    pub is_high_population: Option<bool>,
    /// Link to the experiment document, when given.
    pub experiment_document_url: Option<String>,
    /// Other keys.
    pub extra: JsonMap,
}

impl SinglePreferenceExperimentArguments {
    /// The preference branch written, with the schema default applied.
    pub fn branch_type(&self) -> PrefBranchType {
        self.preference_branch_type.unwrap_or_default()
    }
}

/// A branch of a single-preference experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct SinglePreferenceBranch {
    /// Branch identifier, unique within the experiment.
    pub slug: String,
    /// The preference value on this branch.
    pub value: PrefValue,
    /// Relative share of users (≥ 1).
    pub ratio: u64,
    /// Other keys.
    pub extra: JsonMap,
}

/// `multi-preference-experiment` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiPreferenceExperimentArguments {
    /// Unique experiment identifier (`^[A-Za-z0-9\-_]+$`).
    pub slug: String,
    /// Name shown to the user.
    pub user_facing_name: String,
    /// Description shown to the user.
    pub user_facing_description: String,
    /// The experiment branches (at least one).
    pub branches: Vec<MultiPreferenceBranch>,
    /// "Prevent new enrollment".
    pub is_enrollment_paused: bool,
    /// High-population telemetry, when given.
    pub is_high_population: Option<bool>,
    /// Link to the experiment document, when given.
    pub experiment_document_url: Option<String>,
    /// Other keys.
    pub extra: JsonMap,
}

/// A branch of a multi-preference experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiPreferenceBranch {
    /// Branch identifier, unique within the experiment.
    pub slug: String,
    /// Relative share of users (≥ 1).
    pub ratio: u64,
    /// The preferences this branch sets, by name.
    pub preferences: IndexMap<String, ExperimentPreference>,
    /// Other keys.
    pub extra: JsonMap,
}

/// One preference of a multi-preference experiment branch.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentPreference {
    /// Its type.
    pub preference_type: PrefType,
    /// Which branch is written; `None` when not given (the default branch).
    pub preference_branch_type: Option<PrefBranchType>,
    /// The value on this branch.
    pub preference_value: PrefValue,
    /// Other keys.
    pub extra: JsonMap,
}

impl ExperimentPreference {
    /// The preference branch written, with the schema default applied.
    pub fn branch_type(&self) -> PrefBranchType {
        self.preference_branch_type.unwrap_or_default()
    }
}

/// Validates `raw` (the `arguments` member, at `path`) for `action`.
pub(crate) fn parse(cx: &mut Cx, action: &str, raw: Option<&Json>, path: &Loc) -> Arguments {
    let invalid = || Arguments::Invalid {
        action: action.to_owned(),
        raw: raw.map(Json::to_value),
    };
    let supported = matches!(
        action,
        ACTION_PREFERENCE_ROLLOUT
            | ACTION_PREFERENCE_ROLLBACK
            | ACTION_PREFERENCE_EXPERIMENT
            | ACTION_SINGLE_PREFERENCE_EXPERIMENT
            | ACTION_MULTI_PREFERENCE_EXPERIMENT
    );
    let Some(raw_value) = raw else {
        cx.error(path, "missing required field \"arguments\"".to_owned());
        return invalid();
    };
    if !supported {
        return Arguments::Other {
            action: action.to_owned(),
            raw: raw_value.to_value(),
        };
    }
    let Some(map) = cx.expect_object(raw_value, path) else {
        return invalid();
    };
    let errors_before = cx.errors;
    let parsed = match action {
        ACTION_PREFERENCE_ROLLOUT => rollout(cx, map, path).map(Arguments::PreferenceRollout),
        ACTION_PREFERENCE_ROLLBACK => rollback(cx, map, path).map(Arguments::PreferenceRollback),
        ACTION_MULTI_PREFERENCE_EXPERIMENT => {
            multi_experiment(cx, map, path).map(Arguments::MultiPreferenceExperiment)
        }
        _ => single_experiment(cx, map, path).map(Arguments::PreferenceExperiment),
    };
    let errors_after = cx.errors;
    match parsed {
        Some(arguments) if errors_after == errors_before => arguments,
        _ => invalid(),
    }
}

const ROLLOUT_SLUG_PATTERN: &str = r"^[a-z0-9\-_]+$";
const EXPERIMENT_SLUG_PATTERN: &str = r"^[A-Za-z0-9\-_]+$";

fn is_rollout_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_experiment_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A required string member that must match a slug pattern.
fn slug_field(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
    key: &str,
    rollout_pattern: bool,
) -> Option<String> {
    let slug = cx.required_str(map, path, key)?;
    let (ok, pattern) = if rollout_pattern {
        (is_rollout_slug(slug), ROLLOUT_SLUG_PATTERN)
    } else {
        (is_experiment_slug(slug), EXPERIMENT_SLUG_PATTERN)
    };
    if ok {
        Some(slug.to_owned())
    } else {
        cx.error(
            &path.key(key),
            format!(
                "{key} {} does not match {pattern}",
                serde_json::Value::from(slug)
            ),
        );
        None
    }
}

/// A required string member that must not be empty.
fn non_empty_field(cx: &mut Cx, map: &JsonObj, path: &Loc, key: &str) -> Option<String> {
    let value = cx.required_str(map, path, key)?;
    if value.is_empty() {
        cx.error(&path.key(key), format!("{key} must not be empty"));
        return None;
    }
    Some(value.to_owned())
}

/// A required boolean member.
fn required_bool(cx: &mut Cx, map: &JsonObj, path: &Loc, key: &str) -> Option<bool> {
    match cx.optional_bool(map, path, key) {
        Ok(Some(b)) => Some(b),
        Ok(None) => {
            cx.error(&path.key(key), format!("missing required field \"{key}\""));
            None
        }
        Err(()) => None,
    }
}

/// A required `ratio`: an integer ≥ 1.
fn ratio_field(cx: &mut Cx, map: &JsonObj, path: &Loc) -> Option<u64> {
    let Some(value) = map.get("ratio") else {
        cx.error(
            &path.key("ratio"),
            "missing required field \"ratio\"".to_owned(),
        );
        return None;
    };
    match as_whole_number(value) {
        Some(n) if n >= 1 => u64::try_from(n).ok(),
        Some(_) => {
            cx.error(
                &path.key("ratio"),
                format!("ratio must be at least 1, found {}", describe(value)),
            );
            None
        }
        None => {
            cx.error(
                &path.key("ratio"),
                format!("ratio must be an integer, found {}", describe(value)),
            );
            None
        }
    }
}

fn pref_type_field(cx: &mut Cx, map: &JsonObj, path: &Loc, key: &str) -> Option<PrefType> {
    let name = cx.required_str(map, path, key)?;
    let parsed = PrefType::from_name(name);
    if parsed.is_none() {
        cx.error(
            &path.key(key),
            format!(
                "{key} must be \"string\", \"integer\" or \"boolean\", found {}",
                serde_json::Value::from(name)
            ),
        );
    }
    parsed
}

/// An optional `preferenceBranchType` (absent → `Ok(None)`).
fn branch_type_field(cx: &mut Cx, map: &JsonObj, path: &Loc) -> Result<Option<PrefBranchType>, ()> {
    let key = "preferenceBranchType";
    let Some(name) = cx.optional_str(map, path, key)? else {
        return Ok(None);
    };
    match PrefBranchType::from_name(name) {
        Some(branch_type) => Ok(Some(branch_type)),
        None => {
            cx.error(
                &path.key(key),
                format!(
                    "{key} must be \"user\" or \"default\", found {}",
                    serde_json::Value::from(name)
                ),
            );
            Err(())
        }
    }
}

/// A rollout value: string, integer or boolean.
fn rollout_value(cx: &mut Cx, value: Option<&Json>, path: &Loc) -> Option<PrefValue> {
    let Some(value) = value else {
        cx.error(path, "missing required field \"value\"".to_owned());
        return None;
    };
    match value {
        Json::Bool(b) => Some(PrefValue::Bool(*b)),
        Json::String(s) => Some(PrefValue::String(s.as_ref().to_owned())),
        Json::Number(_) => match as_whole_number(value) {
            Some(n) => Some(PrefValue::Int(n)),
            None => {
                cx.error(
                    path,
                    format!(
                        "value must be a string, an integer or a boolean, found {}",
                        describe(value)
                    ),
                );
                None
            }
        },
        other => {
            cx.error(
                path,
                format!(
                    "value must be a string, an integer or a boolean, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// An experiment value (string, number or boolean) that must agree with the declared type.
fn experiment_value(
    cx: &mut Cx,
    value: Option<&Json>,
    declared: Option<PrefType>,
    path: &Loc,
    key: &str,
    type_key: &str,
) -> Option<PrefValue> {
    let Some(value) = value else {
        cx.error(path, format!("missing required field \"{key}\""));
        return None;
    };
    let parsed = match value {
        Json::Bool(b) => PrefValue::Bool(*b),
        Json::String(s) => PrefValue::String(s.as_ref().to_owned()),
        Json::Number(_) => match as_whole_number(value) {
            Some(n) => PrefValue::Int(n),
            None => {
                // A fractional number is a valid schema type but no preference holds it.
                cx.error(
                    path,
                    format!(
                        "{key} {} is not an integer; preferences hold strings, integers and booleans",
                        describe(value)
                    ),
                );
                return None;
            }
        },
        other => {
            cx.error(
                path,
                format!(
                    "{key} must be a string, a number or a boolean, found {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    let actual = PrefType::of(&parsed);
    match declared {
        Some(declared) if declared != actual => {
            cx.error(
                path,
                format!(
                    "{key} {} is {} but {type_key} is \"{}\"",
                    value.to_value(),
                    article(actual),
                    declared.as_str()
                ),
            );
            None
        }
        _ => Some(parsed),
    }
}

fn article(pref_type: PrefType) -> &'static str {
    match pref_type {
        PrefType::String => "a string",
        PrefType::Integer => "an integer",
        PrefType::Boolean => "a boolean",
    }
}

fn rollout(cx: &mut Cx, map: &JsonObj, path: &Loc) -> Option<RolloutArguments> {
    let slug = slug_field(cx, map, path, "slug", true);
    let preferences = match map.get("preferences") {
        None => {
            cx.error(
                &path.key("preferences"),
                "missing required field \"preferences\"".to_owned(),
            );
            None
        }
        Some(value) => rollout_preferences(cx, value, &path.key("preferences")),
    };
    Some(RolloutArguments {
        slug: slug?,
        preferences: preferences?,
        extra: extras(map, &["slug", "preferences"]),
    })
}

fn rollout_preferences(cx: &mut Cx, value: &Json, path: &Loc) -> Option<Vec<RolloutPreference>> {
    let items = cx.expect_array(value, path)?;
    if items.is_empty() {
        cx.error(
            path,
            "preferences must list at least one preference".to_owned(),
        );
        return None;
    }
    let mut preferences = Vec::with_capacity(items.len());
    let mut ok = true;
    let mut seen = SeenStrings::default();
    for (idx, item) in items.iter().enumerate() {
        let item_path = path.index(idx);
        let Some(item_map) = cx.expect_object(item, &item_path) else {
            ok = false;
            continue;
        };
        let name = preference_name(cx, item_map, &item_path, "preferenceName");
        let value = rollout_value(cx, item_map.get("value"), &item_path.key("value"));
        match (name, value) {
            (Some(name), Some(value)) => {
                // The name as written (`preference_name` accepted it as a string).
                let written = item_map.get("preferenceName").and_then(Json::as_str);
                if !seen.insert(written.unwrap_or_default()) {
                    cx.error(
                        &item_path.key("preferenceName"),
                        format!(
                            "preference {} is listed twice",
                            serde_json::Value::from(name.as_str())
                        ),
                    );
                    ok = false;
                }
                preferences.push(RolloutPreference {
                    preference_name: name,
                    value,
                    extra: extras(item_map, &["preferenceName", "value"]),
                });
            }
            _ => ok = false,
        }
    }
    ok.then_some(preferences)
}

/// A required, non-empty preference name.
fn preference_name(cx: &mut Cx, map: &JsonObj, path: &Loc, key: &str) -> Option<String> {
    let name = cx.required_str(map, path, key)?;
    if name.is_empty() {
        cx.error(&path.key(key), format!("{key} must not be empty"));
        return None;
    }
    Some(name.to_owned())
}

fn rollback(cx: &mut Cx, map: &JsonObj, path: &Loc) -> Option<RollbackArguments> {
    let rollout_slug = slug_field(cx, map, path, "rolloutSlug", true)?;
    Some(RollbackArguments {
        rollout_slug,
        extra: extras(map, &["rolloutSlug"]),
    })
}

/// The optional members every experiment shares.
struct ExperimentCommon {
    is_enrollment_paused: Option<bool>,
    is_high_population: Result<Option<bool>, ()>,
    experiment_document_url: Result<Option<String>, ()>,
}

fn experiment_common(cx: &mut Cx, map: &JsonObj, path: &Loc) -> ExperimentCommon {
    ExperimentCommon {
        is_enrollment_paused: required_bool(cx, map, path, "isEnrollmentPaused"),
        is_high_population: cx.optional_bool(map, path, "isHighPopulation"),
        experiment_document_url: cx
            .optional_str(map, path, "experimentDocumentUrl")
            .map(|url| url.map(str::to_owned)),
    }
}

/// The `branches` member: a non-empty array of objects, each handed to `branch`, with
/// unique slugs.
fn branches<B>(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
    mut branch: impl FnMut(&mut Cx, &JsonObj, &Loc) -> Option<B>,
) -> Option<Vec<B>> {
    let branches_path = path.key("branches");
    let Some(value) = map.get("branches") else {
        cx.error(
            &branches_path,
            "missing required field \"branches\"".to_owned(),
        );
        return None;
    };
    let items = cx.expect_array(value, &branches_path)?;
    if items.is_empty() {
        cx.error(
            &branches_path,
            "branches must list at least one branch".to_owned(),
        );
        return None;
    }
    let mut parsed = Vec::with_capacity(items.len());
    let mut ok = true;
    // Slugs are compared as written, so a branch that is invalid for another reason still
    // takes part in the uniqueness check.
    let mut seen_slugs = SeenStrings::default();
    for (idx, item) in items.iter().enumerate() {
        let item_path = branches_path.index(idx);
        let Some(item_map) = cx.expect_object(item, &item_path) else {
            ok = false;
            continue;
        };
        let branch = branch(cx, item_map, &item_path);
        if let Some(slug) = item_map.get("slug").and_then(Json::as_str)
            && !seen_slugs.insert(slug)
        {
            cx.error(
                &item_path.key("slug"),
                format!(
                    "branch slug {} is used by an earlier branch",
                    serde_json::Value::from(slug)
                ),
            );
            ok = false;
        }
        match branch {
            Some(b) => parsed.push(b),
            None => ok = false,
        }
    }
    ok.then_some(parsed)
}

fn single_experiment(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
) -> Option<SinglePreferenceExperimentArguments> {
    let slug = slug_field(cx, map, path, "slug", false);
    let preference_name = preference_name(cx, map, path, "preferenceName");
    let preference_type = pref_type_field(cx, map, path, "preferenceType");
    let preference_branch_type = branch_type_field(cx, map, path);
    let common = experiment_common(cx, map, path);
    let branches = branches(cx, map, path, |cx, branch, branch_path| {
        let slug = slug_field(cx, branch, branch_path, "slug", false);
        let value = experiment_value(
            cx,
            branch.get("value"),
            preference_type,
            &branch_path.key("value"),
            "value",
            "preferenceType",
        );
        let ratio = ratio_field(cx, branch, branch_path);
        Some(SinglePreferenceBranch {
            slug: slug?,
            value: value?,
            ratio: ratio?,
            extra: extras(branch, &["slug", "value", "ratio"]),
        })
    });
    if let Some(branches) = &branches {
        // The Normandy server also rejects two branches with the same value: the experiment
        // could not tell them apart.
        for (idx, branch) in branches.iter().enumerate() {
            if branches[..idx]
                .iter()
                .any(|prev| prev.value == branch.value)
            {
                cx.error(
                    &path.key("branches").index(idx).key("value"),
                    format!(
                        "branch value {} is used by an earlier branch",
                        pref_value_json(&branch.value)
                    ),
                );
            }
        }
    }
    Some(SinglePreferenceExperimentArguments {
        slug: slug?,
        preference_name: preference_name?,
        preference_type: preference_type?,
        preference_branch_type: preference_branch_type.ok()?,
        branches: branches?,
        is_enrollment_paused: common.is_enrollment_paused?,
        is_high_population: common.is_high_population.ok()?,
        experiment_document_url: common.experiment_document_url.ok()?,
        extra: extras(
            map,
            &[
                "slug",
                "preferenceName",
                "preferenceType",
                "preferenceBranchType",
                "branches",
                "isEnrollmentPaused",
                "isHighPopulation",
                "experimentDocumentUrl",
            ],
        ),
    })
}

fn multi_experiment(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
) -> Option<MultiPreferenceExperimentArguments> {
    let slug = slug_field(cx, map, path, "slug", false);
    let user_facing_name = non_empty_field(cx, map, path, "userFacingName");
    let user_facing_description = non_empty_field(cx, map, path, "userFacingDescription");
    let common = experiment_common(cx, map, path);
    let branches = branches(cx, map, path, |cx, branch, branch_path| {
        let slug = slug_field(cx, branch, branch_path, "slug", false);
        let ratio = ratio_field(cx, branch, branch_path);
        let preferences = match branch.get("preferences") {
            None => {
                cx.error(
                    &branch_path.key("preferences"),
                    "missing required field \"preferences\"".to_owned(),
                );
                None
            }
            Some(value) => experiment_preferences(cx, value, &branch_path.key("preferences")),
        };
        Some(MultiPreferenceBranch {
            slug: slug?,
            ratio: ratio?,
            preferences: preferences?,
            extra: extras(branch, &["slug", "ratio", "preferences"]),
        })
    });
    if let Some(branches) = &branches {
        warn_inconsistent_types(cx, branches, path);
    }
    Some(MultiPreferenceExperimentArguments {
        slug: slug?,
        user_facing_name: user_facing_name?,
        user_facing_description: user_facing_description?,
        branches: branches?,
        is_enrollment_paused: common.is_enrollment_paused?,
        is_high_population: common.is_high_population.ok()?,
        experiment_document_url: common.experiment_document_url.ok()?,
        extra: extras(
            map,
            &[
                "slug",
                "userFacingName",
                "userFacingDescription",
                "branches",
                "isEnrollmentPaused",
                "isHighPopulation",
                "experimentDocumentUrl",
            ],
        ),
    })
}

fn experiment_preferences(
    cx: &mut Cx,
    value: &Json,
    path: &Loc,
) -> Option<IndexMap<String, ExperimentPreference>> {
    let map = cx.expect_object(value, path)?;
    if map.is_empty() {
        cx.warning(path, "this branch sets no preferences".to_owned());
    }
    let mut preferences = IndexMap::with_capacity(map.len());
    let mut ok = true;
    for (name, spec) in map.iter() {
        let spec_path = path.key(name);
        if name.is_empty() {
            cx.error(&spec_path, "preference name must not be empty".to_owned());
            ok = false;
            continue;
        }
        let Some(spec_map) = cx.expect_object(spec, &spec_path) else {
            ok = false;
            continue;
        };
        let preference_type = pref_type_field(cx, spec_map, &spec_path, "preferenceType");
        let preference_branch_type = branch_type_field(cx, spec_map, &spec_path);
        let preference_value = experiment_value(
            cx,
            spec_map.get("preferenceValue"),
            preference_type,
            &spec_path.key("preferenceValue"),
            "preferenceValue",
            "preferenceType",
        );
        match (preference_type, preference_branch_type, preference_value) {
            (Some(preference_type), Ok(preference_branch_type), Some(preference_value)) => {
                preferences.insert(
                    name.to_owned(),
                    ExperimentPreference {
                        preference_type,
                        preference_branch_type,
                        preference_value,
                        extra: extras(
                            spec_map,
                            &["preferenceType", "preferenceBranchType", "preferenceValue"],
                        ),
                    },
                );
            }
            _ => ok = false,
        }
    }
    ok.then_some(preferences)
}

/// The client checks each preference's type against the profile; branches that disagree on
/// a preference's type cannot all enroll, which is almost certainly a mistake.
fn warn_inconsistent_types(cx: &mut Cx, branches: &[MultiPreferenceBranch], path: &Loc) {
    let mut first: IndexMap<&str, (PrefType, &str)> = IndexMap::new();
    for (idx, branch) in branches.iter().enumerate() {
        for (name, spec) in &branch.preferences {
            match first.get(name.as_str()) {
                None => {
                    first.insert(name, (spec.preference_type, &branch.slug));
                }
                Some((pref_type, slug)) if *pref_type != spec.preference_type => {
                    cx.warning(
                        &path
                            .key("branches")
                            .index(idx)
                            .key("preferences")
                            .key(name)
                            .key("preferenceType"),
                        format!(
                            "preference {} is \"{}\" here but \"{}\" in branch {}",
                            serde_json::Value::from(name.as_str()),
                            spec.preference_type.as_str(),
                            pref_type.as_str(),
                            serde_json::Value::from(*slug)
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// A preference value as JSON.
pub(crate) fn pref_value_json(value: &PrefValue) -> serde_json::Value {
    match value {
        PrefValue::Bool(b) => serde_json::Value::Bool(*b),
        PrefValue::Int(n) => serde_json::Value::from(*n),
        PrefValue::String(s) => serde_json::Value::String(s.clone()),
    }
}
