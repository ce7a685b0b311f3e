//! Rollout / CloudBees Feature Management configuration as code (seed 004).
//!
//! A configuration repository holds one YAML file per experiment under `experiments/`
//! (archived ones under `experiments/archived/`) and one per target group under
//! `target_groups/`. The keys are the real lower/camel-case ones (`flag`, `availableValues`,
//! `stickinessProperty`, …), including what real files contain beyond the README: scheduled
//! values with `option`, experiment-level `property` conditions, the group operator `nor`, and
//! `archived: true`.
//!
//! Entry points: [`parse_experiment`], [`parse_target_group`], [`parse_document`] (dispatch on
//! `type`), [`validate`] for checks across files, and [`to_yaml`] / [`target_group_to_yaml`]
//! to write a document back. The CLI reads the directory tree and builds a [`Configuration`].
//!
//! Validation rules (after the newer CasC validator, with legacy files in mind):
//! - split and schedule lists must not mix `option`-only and `from` entries (an entry with
//!   `from` makes the list a schedule; every entry must then have `from`); percentages are
//!   numbers in 0..=100, default 100;
//! - a split whose percentages sum to **less** than 100 is accepted (legacy files do this,
//!   e.g. a single `{percentage: 10, option: true}`); the remainder goes to the default:
//!   for a boolean flag whose split names a single boolean option, the complement of that
//!   option, otherwise the code default (`null`). A sum above 100 is an error;
//! - schedules are for boolean flags only, their `option` (default `true`) must be a boolean;
//! - operand arity and types per operator: `is-undefined`/`is-true`/`is-false` take none
//!   (an operand is ignored with a warning); `eq`/`ne` one string, number or boolean;
//!   `gt`/`gte`/`lt`/`lte` one number (a numeric string is accepted with a warning);
//!   `semver-*` one string (a number is read as its source text, with a warning);
//!   `in-array` a non-empty list of unique strings or numbers; `regex` a string or a list of
//!   one or two strings (pattern, flags from `imsU`). A pattern that is not a valid regular
//!   expression (e.g. the glob `*@cloudbees.com` seen in real files) is a warning, and the
//!   condition never matches;
//! - `value` and split options that are not among an explicit `availableValues` are warnings;
//! - unknown keys are warnings.
//!
//! A document with any error gives `value: None`; warnings come with a value. A rejected
//! experiment file is recorded in [`Configuration::rejected`] (see [`rejected_experiment`]) so
//! that evaluation still lists it.
//!
//! YAML is read with the YAML 1.2 core schema (`yes`/`no` are strings, as in the JavaScript
//! YAML reader the Rollout service uses); duplicate keys, more than one document, files over
//! 1 MiB and nesting deeper than 24 levels are errors.

mod emit;
mod parse;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, FieldPath, PathSegment, Position};
use crate::model::{Parsed, RejectedItem};

pub use emit::{target_group_to_yaml, to_yaml};
pub(crate) use parse::parse_js_number;
pub use validate::validate;

/// A value a flag can take.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    /// A boolean flag value.
    Bool(bool),
    /// A string (variant) value.
    String(String),
    /// A number value (number flags of newer SDKs).
    Number(f64),
}

impl FlagValue {
    /// The value as the SDK's `flagValue()` sees it: every flag value is a string there.
    pub fn to_flag_string(&self) -> String {
        match self {
            FlagValue::Bool(b) => b.to_string(),
            FlagValue::String(s) => s.clone(),
            FlagValue::Number(n) => crate::value::js_number_to_string(*n),
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FlagValue::Bool(b) => serde_json::Value::Bool(*b),
            FlagValue::String(s) => serde_json::Value::String(s.clone()),
            FlagValue::Number(n) => emit::json_number(*n),
        }
    }
}

/// What an experiment, platform or condition serves.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSpec {
    /// `null`: the value written in the application code.
    Null,
    /// One value for everybody.
    Single(FlagValue),
    /// Percentages of users per option, in consecutive bucket ranges. An empty list (`[]`)
    /// means the code default, like `null`.
    Split(Vec<SplitValue>),
    /// A boolean rollout whose percentage changes over time.
    Scheduled(Vec<ScheduledValue>),
}

/// One entry of a split value.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitValue {
    /// Share of users in percent (0..=100); absent means 100.
    pub percentage: Option<f64>,
    /// The value these users get.
    pub option: FlagValue,
}

impl SplitValue {
    /// The percentage, with the documented default of 100.
    pub fn effective_percentage(&self) -> f64 {
        self.percentage.unwrap_or(100.0)
    }
}

/// One entry of a scheduled value: from `from` on, `percentage` of users get `option`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledValue {
    /// When this entry takes effect.
    pub from: ScheduleTime,
    /// Share of users in percent (0..=100) from then on; absent means 100. Not an increment.
    pub percentage: Option<f64>,
    /// The value those users get; absent means `true`. The other users get its complement.
    pub option: Option<bool>,
}

impl ScheduledValue {
    /// The percentage, with the documented default of 100.
    pub fn effective_percentage(&self) -> f64 {
        self.percentage.unwrap_or(100.0)
    }

    /// The option, with the default `true`.
    pub fn effective_option(&self) -> bool {
        self.option.unwrap_or(true)
    }
}

/// The `from` time of a scheduled value, with the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTime {
    /// As written (`2020-06-17T14:56:19.608Z`, or a date `2020-06-17` meaning midnight UTC).
    pub text: String,
    /// The instant.
    pub at: jiff::Timestamp,
}

/// A string or a list of strings (`labels`, group `name`).
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany {
    /// Written as a single string.
    One(String),
    /// Written as a list.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings, however they were written.
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// One rule of an experiment: the parts are AND-ed; conditions form an if / else-if chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    /// Another flag must have a value.
    pub dependency: Option<Dependency>,
    /// Target-group membership.
    pub group: Option<GroupCondition>,
    /// Application version.
    pub version: Option<VersionCondition>,
    /// A property test written in the experiment itself.
    pub property: Option<PropertyCondition>,
    /// What the rule serves; absent means the flag default.
    pub value: Option<ValueSpec>,
}

impl Condition {
    /// Whether the condition has no test (it always applies).
    pub fn is_unconditional(&self) -> bool {
        self.dependency.is_none()
            && self.group.is_none()
            && self.version.is_none()
            && self.property.is_none()
    }
}

/// `dependency: {flag, value}`: the other flag's value, as a string, equals `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// The flag depended on.
    pub flag: String,
    /// The value it must have.
    pub value: FlagValue,
}

/// `group: {operator, name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCondition {
    /// How the groups combine; absent means `or`.
    pub operator: Option<GroupOperator>,
    /// Target group names.
    pub name: OneOrMany,
}

/// How the target groups of a group condition combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOperator {
    /// In any of the groups.
    Or,
    /// In all of the groups.
    And,
    /// In none of the groups (the README's spelling).
    Not,
    /// In none of the groups (the dashboard's "none of", what real files contain).
    Nor,
}

impl GroupOperator {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupOperator::Or => "or",
            GroupOperator::And => "and",
            GroupOperator::Not => "not",
            GroupOperator::Nor => "nor",
        }
    }

    fn parse(text: &str) -> Option<GroupOperator> {
        Some(match text {
            "or" => GroupOperator::Or,
            "and" => GroupOperator::And,
            "not" => GroupOperator::Not,
            "nor" => GroupOperator::Nor,
            _ => return None,
        })
    }
}

/// `version: {operator, semver}`: compares the application version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionCondition {
    /// One of the `semver-*` operators.
    pub operator: PropertyOperator,
    /// The version to compare with.
    pub semver: String,
}

/// A test of one property: a target-group condition `{property, operator, operand}` or an
/// experiment-level `property: {name, operator, operand}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyCondition {
    /// The property name.
    pub property: String,
    /// The operator.
    pub operator: PropertyOperator,
    /// The second operand, when the operator takes one.
    pub operand: Option<Operand>,
    /// The compiled pattern of a `regex` condition (`None` when the pattern is invalid).
    pub(crate) regex: Option<CompiledRegex>,
}

impl PropertyCondition {
    /// A condition; a `regex` pattern is compiled here.
    pub fn new(property: String, operator: PropertyOperator, operand: Option<Operand>) -> Self {
        let regex = match (&operator, &operand) {
            (PropertyOperator::Regex, Some(operand)) => parse::regex_parts(operand)
                .and_then(|(pattern, flags)| parse::compile_regex(&pattern, &flags).ok()),
            _ => None,
        };
        PropertyCondition {
            property,
            operator,
            operand,
            regex,
        }
    }
}

/// A compiled `regex` operand. Equal when the source patterns are equal.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRegex(pub(crate) Arc<regex::Regex>);

impl PartialEq for CompiledRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// A target-group condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // The YAML spelling is in `as_str`.
pub enum PropertyOperator {
    IsUndefined,
    IsTrue,
    IsFalse,
    Eq,
    Ne,
    Gte,
    Gt,
    Lt,
    Lte,
    Regex,
    SemverGt,
    SemverGte,
    SemverEq,
    SemverNe,
    SemverLt,
    SemverLte,
    InArray,
}

impl PropertyOperator {
    const ALL: [PropertyOperator; 17] = [
        PropertyOperator::IsUndefined,
        PropertyOperator::IsTrue,
        PropertyOperator::IsFalse,
        PropertyOperator::Eq,
        PropertyOperator::Ne,
        PropertyOperator::Gte,
        PropertyOperator::Gt,
        PropertyOperator::Lt,
        PropertyOperator::Lte,
        PropertyOperator::Regex,
        PropertyOperator::SemverGt,
        PropertyOperator::SemverGte,
        PropertyOperator::SemverEq,
        PropertyOperator::SemverNe,
        PropertyOperator::SemverLt,
        PropertyOperator::SemverLte,
        PropertyOperator::InArray,
    ];

    /// The YAML spelling (`is-undefined`, `semver-gte`, `in-array`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyOperator::IsUndefined => "is-undefined",
            PropertyOperator::IsTrue => "is-true",
            PropertyOperator::IsFalse => "is-false",
            PropertyOperator::Eq => "eq",
            PropertyOperator::Ne => "ne",
            PropertyOperator::Gte => "gte",
            PropertyOperator::Gt => "gt",
            PropertyOperator::Lt => "lt",
            PropertyOperator::Lte => "lte",
            PropertyOperator::Regex => "regex",
            PropertyOperator::SemverGt => "semver-gt",
            PropertyOperator::SemverGte => "semver-gte",
            PropertyOperator::SemverEq => "semver-eq",
            PropertyOperator::SemverNe => "semver-ne",
            PropertyOperator::SemverLt => "semver-lt",
            PropertyOperator::SemverLte => "semver-lte",
            PropertyOperator::InArray => "in-array",
        }
    }

    /// The operator spelled `text`, if any.
    pub fn parse(text: &str) -> Option<PropertyOperator> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// Whether this is one of the `semver-*` operators.
    pub fn is_semver(self) -> bool {
        matches!(
            self,
            PropertyOperator::SemverGt
                | PropertyOperator::SemverGte
                | PropertyOperator::SemverEq
                | PropertyOperator::SemverNe
                | PropertyOperator::SemverLt
                | PropertyOperator::SemverLte
        )
    }
}

/// The second operand of a property condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// One value.
    Scalar(OperandValue),
    /// A list (`in-array`, or `regex` as `[pattern, flags]`).
    List(Vec<OperandValue>),
}

/// One operand value.
#[derive(Debug, Clone, PartialEq)]
pub enum OperandValue {
    /// A string.
    String(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// `platforms[]`: the configuration for SDKs that report this platform name.
#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    /// The platform name as the SDK reports it (`Android`, `iOS`, `Browser`, …).
    pub name: String,
    /// Flag name override (deprecated by Rollout; kept for round trips, not used).
    pub flag: Option<String>,
    /// The platform's rules, replacing the experiment's.
    pub conditions: Option<Vec<Condition>>,
    /// The platform's default value, replacing the experiment's.
    pub value: Option<ValueSpec>,
}

/// An experiment file (`type: experiment`).
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// YAML API version (default `1.0.0`).
    pub version: Option<String>,
    /// The flag this experiment controls.
    pub flag: String,
    /// The values the flag can take (default `[false, true]`).
    pub available_values: Option<Vec<FlagValue>>,
    /// Experiment name (default: the flag name).
    pub name: Option<String>,
    /// Description (default empty).
    pub description: Option<String>,
    /// Whether targeting is on (default true). When off the flag serves its code default.
    pub enabled: Option<bool>,
    /// Labels, a list or one string.
    pub labels: Option<OneOrMany>,
    /// The property whose value seeds split buckets (default `rox.distinct_id`).
    pub stickiness_property: Option<String>,
    /// Platform-specific configurations.
    pub platforms: Option<Vec<Platform>>,
    /// The default platform's rules.
    pub conditions: Option<Vec<Condition>>,
    /// The default platform's value when no rule applies.
    pub value: Option<ValueSpec>,
    /// Whether the experiment is archived.
    pub archived: Option<bool>,
    /// Where each field was found (not part of equality).
    pub source: SourceMap,
}

/// The default stickiness property.
pub const DEFAULT_STICKINESS_PROPERTY: &str = "rox.distinct_id";

impl Experiment {
    /// `enabled`, default true.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// `archived`, default false.
    pub fn is_archived(&self) -> bool {
        self.archived.unwrap_or(false)
    }

    /// The stickiness property, default `rox.distinct_id`.
    pub fn stickiness_property(&self) -> &str {
        self.stickiness_property
            .as_deref()
            .unwrap_or(DEFAULT_STICKINESS_PROPERTY)
    }

    /// Whether this is a boolean flag: its explicit `availableValues` are all booleans, or,
    /// without `availableValues`, no value anywhere in the experiment is a string or number.
    pub fn is_boolean(&self) -> bool {
        match &self.available_values {
            Some(values) => values.iter().all(|v| matches!(v, FlagValue::Bool(_))),
            None => self.all_values().all(|v| matches!(v, FlagValue::Bool(_))),
        }
    }

    /// Every flag value written anywhere in the experiment (values, options, not dependencies).
    pub fn all_values(&self) -> impl Iterator<Item = &FlagValue> {
        let mut specs: Vec<&ValueSpec> = Vec::new();
        specs.extend(self.value.iter());
        for condition in self.conditions.iter().flatten() {
            specs.extend(condition.value.iter());
        }
        for platform in self.platforms.iter().flatten() {
            specs.extend(platform.value.iter());
            for condition in platform.conditions.iter().flatten() {
                specs.extend(condition.value.iter());
            }
        }
        specs.into_iter().flat_map(|spec| {
            let values: Vec<&FlagValue> = match spec {
                ValueSpec::Null | ValueSpec::Scheduled(_) => Vec::new(),
                ValueSpec::Single(v) => vec![v],
                ValueSpec::Split(items) => items.iter().map(|s| &s.option).collect(),
            };
            values
        })
    }
}

/// How the conditions of a target group combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoin {
    /// All conditions (the default).
    And,
    /// Any condition.
    Or,
}

impl GroupJoin {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupJoin::And => "and",
            GroupJoin::Or => "or",
        }
    }
}

/// A target group file (`type: target-group`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    /// YAML API version (default `1.0.0`).
    pub version: Option<String>,
    /// The name experiments refer to.
    pub name: String,
    /// Description (default empty).
    pub description: Option<String>,
    /// How the conditions combine (default `and`).
    pub operator: Option<GroupJoin>,
    /// The property tests.
    pub conditions: Vec<PropertyCondition>,
    /// Where each field was found (not part of equality).
    pub source: SourceMap,
}

/// One parsed file of a configuration repository.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// `type: experiment`.
    Experiment(Experiment),
    /// `type: target-group`.
    TargetGroup(TargetGroup),
}

/// A whole configuration: the files of one branch (environment).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configuration {
    /// `experiments/*.yml`.
    pub experiments: Vec<Experiment>,
    /// `experiments/archived/*.yml`: never evaluated, but known to dependency checks.
    pub archived_experiments: Vec<Experiment>,
    /// `target_groups/*.yml`.
    pub target_groups: Vec<TargetGroup>,
    /// Files under `experiments/` that validation rejected, so that evaluation reports them
    /// (`invalid: …`) instead of dropping them; `index` is the file's place among the files of
    /// `experiments/`, valid and rejected. See [`rejected_experiment`]. A rejected target group
    /// is only a diagnostic: conditions naming it see an unknown group.
    pub rejected: Vec<RejectedItem>,
}

/// The file and position of every field of a parsed document, for diagnostics that come
/// after parsing (cross-file validation).
///
/// Positions are not part of a document's identity: any two source maps compare equal, so a
/// document read back from its own YAML equals the original.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    file: String,
    positions: BTreeMap<String, Position>,
}

impl PartialEq for SourceMap {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl SourceMap {
    /// An empty map for `file` (documents built in code).
    pub fn new(file: &str) -> SourceMap {
        SourceMap {
            file: file.to_owned(),
            positions: BTreeMap::new(),
        }
    }

    /// The file the document was read from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Where the field at `path` starts; for a field that does not exist, where its
    /// nearest existing ancestor starts.
    pub fn position(&self, path: &FieldPath) -> Position {
        let mut segments: Vec<PathSegment> = path.0.clone();
        loop {
            let key = FieldPath(segments.clone()).to_string();
            if let Some(position) = self.positions.get(&key) {
                return *position;
            }
            if segments.pop().is_none() {
                return Position::START;
            }
        }
    }

    /// An error about the field at `path`.
    pub fn error(&self, path: FieldPath, message: String) -> Diagnostic {
        Diagnostic::error(&self.file, self.position(&path), path, message)
    }

    /// A warning about the field at `path`.
    pub fn warning(&self, path: FieldPath, message: String) -> Diagnostic {
        Diagnostic::warning(&self.file, self.position(&path), path, message)
    }

    fn record(&mut self, path: &FieldPath, position: Position) {
        self.positions.insert(path.to_string(), position);
    }
}

/// Parses an experiment file.
pub fn parse_experiment(file: &str, text: &str) -> Parsed<Experiment> {
    let parsed = parse_document(file, text);
    let mut diagnostics = parsed.diagnostics;
    let value = match parsed.value {
        Some(Document::Experiment(experiment)) => Some(experiment),
        Some(Document::TargetGroup(group)) => {
            diagnostics.push(wrong_type(&group.source, "experiment", "target-group"));
            None
        }
        None => None,
    };
    Parsed { value, diagnostics }
}

/// Parses a target group file.
pub fn parse_target_group(file: &str, text: &str) -> Parsed<TargetGroup> {
    let parsed = parse_document(file, text);
    let mut diagnostics = parsed.diagnostics;
    let value = match parsed.value {
        Some(Document::TargetGroup(group)) => Some(group),
        Some(Document::Experiment(experiment)) => {
            diagnostics.push(wrong_type(&experiment.source, "target-group", "experiment"));
            None
        }
        None => None,
    };
    Parsed { value, diagnostics }
}

/// The error for a file of the other `type` than the caller asked for.
fn wrong_type(source: &SourceMap, expected: &str, found: &str) -> Diagnostic {
    source.error(
        FieldPath::root().key("type"),
        format!("expected `type: {expected}`, found `type: {found}`"),
    )
}

/// Parses an experiment or target group file, chosen by its `type`.
pub fn parse_document(file: &str, text: &str) -> Parsed<Document> {
    parse::parse_document(file, text)
}

/// What a YAML file says it is at its top level, read whatever validation finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declared {
    /// Not YAML at all, or over a limit of the reader: it cannot say.
    NotYaml,
    /// YAML without `type: experiment` or `type: target-group` (a CI workflow, say): not a
    /// CloudBees document.
    Foreign,
    /// `type: experiment`.
    Experiment {
        /// `flag`, when it is a non-empty string.
        flag: Option<String>,
        /// Whether it says `archived: true`.
        archived: bool,
    },
    /// `type: target-group`.
    TargetGroup,
}

/// [`parse_document`], and what the file declares itself to be.
pub(crate) fn read_document(file: &str, text: &str) -> (Parsed<Document>, Declared) {
    parse::read_document(file, text)
}

/// The record of an experiment file that validation rejected ([`parse_experiment`] gave no
/// value), for [`Configuration::rejected`]: its `flag` when readable, the file's start, and
/// the first error of `diagnostics` (the ones its parse reported). `index` is the file's place
/// among the experiment files. `None` when the file says `archived: true`: archived
/// experiments are never evaluated, valid or not.
pub fn rejected_experiment(
    file: &str,
    text: &str,
    diagnostics: &[Diagnostic],
    index: usize,
) -> Option<RejectedItem> {
    let declared = match yaml::load(text) {
        Ok(root) => parse::declared(&root),
        Err(_) => Declared::NotYaml,
    };
    rejected_as(file, &declared, diagnostics, index)
}

/// [`rejected_experiment`] for a file already read.
pub(crate) fn rejected_as(
    file: &str,
    declared: &Declared,
    diagnostics: &[Diagnostic],
    index: usize,
) -> Option<RejectedItem> {
    let flag = match declared {
        Declared::Experiment { archived: true, .. } => return None,
        Declared::Experiment { flag, .. } => flag.clone(),
        _ => None,
    };
    Some(RejectedItem::from_diagnostics(
        flag,
        file,
        index,
        Position::START,
        &FieldPath::root(),
        diagnostics,
    ))
}
