//! Evaluation of CloudBees / Rollout flags with reasons, as the rox SDKs would decide them.
//!
//! [`evaluate`] returns one [`ItemResult`] of kind `flag` per experiment under `experiments/`
//! (archived experiments, and experiments marked `archived: true`, are skipped), with
//! `id` = the flag name, `branch` = `None`, and `value` = the flag value as JSON, `None`
//! (serialised as `null`) for the code default.
//!
//! How a flag is decided:
//! 1. `enabled: false` → value `null` (the code default), reason `disabled`.
//! 2. If the context's `platform` equals the `name` of a `platforms[]` entry, that entry's
//!    `conditions` and `value` replace the experiment's own (an entry without `value` serves
//!    the flag default); the reason is prefixed with `platform <name>: `.
//! 3. The conditions are an if / else-if chain: the first whose parts all hold (dependency,
//!    group, version, property, in that order; a condition without parts always holds) serves
//!    its `value` (reason `condition[i]`); otherwise the root `value` (reason `default`).
//!    A missing `value` is the flag default: `false` for boolean flags, `null` otherwise.
//! 4. A split value picks a bucket: `rox_bucket("<stickiness value>.<flag name>")`; options
//!    take consecutive ranges `[0, p1)`, `[p1, p1+p2)`, … (percent / 100). Beyond the sum of
//!    the percentages (legacy splits below 100) a boolean flag whose split names one boolean
//!    option gets its complement, any other flag its code default (`null`). The flag name is
//!    the experiment seed because configuration files carry no experiment id.
//! 5. A scheduled value uses the entry with the latest `from` ≤ now (before the first entry:
//!    0 %); that percentage of buckets get `option` (default `true`), the rest its complement.
//! 6. The stickiness value is the property named by `stickinessProperty` (default
//!    `rox.distinct_id`), as a string; a missing, `null` or empty value cannot decide a split:
//!    value `null`, reason `no-stickiness-value`. Splits and schedules whose result does not
//!    depend on the bucket (0 % or 100 %) need no stickiness value.
//!
//! An experiment file validation rejected ([`Configuration::rejected`]) gets `matched: false`,
//! `reason: "invalid: <first error>"` and no value, in its place in file order; its `id` is its
//! `flag` when readable, else the file name. Dependencies on its flag read it as a flag no
//! active experiment controls (`"false"`).
//!
//! `matched` is true exactly when the experiment is enabled and a rule decided a non-`null`
//! value; a `null` value (code default) is `matched: false` with the reason of the rule that
//! served it.
//!
//! Properties: the context's `properties` first (a JSON `null` reads as undefined), then the
//! built-ins `rox.distinct_id` (context `userId`), `rox.app_release` (`version`),
//! `rox.platform` (`platform`) and `rox.now` (evaluation time in epoch milliseconds).
//!
//! Operators follow rox's `roxx` semantics: `eq`/`ne` coerce an undefined property to `false`
//! and then compare value **and** type (`500` ≠ `"500"`), so `is-true` is `eq(p, true)` and
//! `is-false` is `eq(p, false)`, which holds for an undefined property; `gt`/`gte`/`lt`/`lte`
//! compare as numbers, accepting numeric strings, and are false for anything else; `semver-*`
//! need two strings (`crate::version::compare_cloudbees_semver`; unparseable → false);
//! `regex` is unanchored RE2 matching of a string property; `in-array` is type-strict
//! membership; `is-undefined` holds only for an undefined property. An unknown target group
//! is never matched; `not` and `nor` both mean "in none of the groups".
//!
//! Dependencies compare the other flag's value as a string with the expected value as a
//! string. The other flag is evaluated by the same rules (same platform and context); a flag
//! no active experiment controls, or whose value is `null`, reads as `"false"`. A dependency
//! that leads back to a flag being evaluated gives value `null`, reason `dependency-cycle`;
//! chains deeper than 64 flags give reason `dependency-too-deep`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use super::{EvalInput, ItemResult, in_source_order, rejected_result, valid_places};
use crate::model::cloudbees::{
    Condition, Configuration, Experiment, FlagValue, GroupJoin, GroupOperator, Operand,
    OperandValue, PropertyCondition, PropertyOperator, TargetGroup, ValueSpec,
};
use crate::sampling;
use crate::value::Value;
use crate::version::compare_cloudbees_semver;

/// How deep dependency chains may go before evaluation gives up.
const MAX_DEPENDENCY_DEPTH: usize = 64;

/// The `kind` of every [`ItemResult`] produced here.
pub const KIND: &str = "flag";

/// Evaluates every active flag of the configuration, and lists every rejected experiment file,
/// in file order. When two experiments control the same flag (a validation error), only the
/// first is evaluated.
pub fn evaluate(config: &Configuration, input: &EvalInput<'_>) -> Vec<ItemResult> {
    let mut evaluator = Evaluator::new(config, Cow::Owned(Lookup::new(config)), input);
    // A flag controlled twice (a validation error) is decided by its first file.
    let active: Vec<(usize, &Experiment)> = valid_places(&config.rejected)
        .zip(&config.experiments)
        .filter(|(_, e)| {
            evaluator
                .experiment(e.flag.as_str())
                .is_some_and(|first| std::ptr::eq(first, *e))
        })
        .collect();
    let valid = active
        .into_iter()
        .map(|(place, experiment)| {
            let outcome = evaluator.flag_outcome(experiment);
            (place, item_result(&experiment.flag, outcome))
        })
        .collect();
    let invalid = config
        .rejected
        .iter()
        .map(|item| {
            (
                item.index,
                rejected_result(item, KIND, || item.file.clone()),
            )
        })
        .collect();
    in_source_order(valid, invalid)
}

/// Evaluates one flag by name; `None` when no active experiment controls it.
pub fn evaluate_flag(
    config: &Configuration,
    flag: &str,
    input: &EvalInput<'_>,
) -> Option<ItemResult> {
    evaluate_flag_in(config, Cow::Owned(Lookup::new(config)), flag, input)
}

/// [`evaluate_flag`] with the name lookups of `config` built beforehand ([`Lookup::new`]),
/// for a configuration evaluated many times: the work per call is then that of the flag and
/// what it depends on, not of the whole configuration.
pub fn evaluate_flag_with(
    config: &Configuration,
    lookup: &Lookup,
    flag: &str,
    input: &EvalInput<'_>,
) -> Option<ItemResult> {
    evaluate_flag_in(config, Cow::Borrowed(lookup), flag, input)
}

fn evaluate_flag_in<'a>(
    config: &'a Configuration,
    lookup: Cow<'a, Lookup>,
    flag: &str,
    input: &'a EvalInput<'a>,
) -> Option<ItemResult> {
    let mut evaluator = Evaluator::new(config, lookup, input);
    let experiment = evaluator.experiment(flag)?;
    let outcome = evaluator.flag_outcome(experiment);
    Some(item_result(flag, outcome))
}

/// Whether the context belongs to the named target group (unknown group: false).
pub fn in_target_group(config: &Configuration, name: &str, input: &EvalInput<'_>) -> bool {
    Evaluator::new(config, Cow::Owned(Lookup::new(config)), input).in_group(name)
}

/// Where evaluation finds a flag's experiment and a target group by name in one
/// [`Configuration`]: the first active (not archived) experiment of each flag, the first
/// target group of each name. Build it with the configuration it is used with; with another,
/// names resolve to whatever sits at the remembered positions, or to nothing.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// Flag name → position in `Configuration::experiments`.
    experiments: HashMap<String, usize>,
    /// Group name → position in `Configuration::target_groups`.
    groups: HashMap<String, usize>,
}

impl Lookup {
    /// The lookups of `config`.
    pub fn new(config: &Configuration) -> Lookup {
        let mut experiments = HashMap::with_capacity(config.experiments.len());
        for (position, experiment) in config.experiments.iter().enumerate() {
            if !experiment.is_archived() {
                experiments
                    .entry(experiment.flag.clone())
                    .or_insert(position);
            }
        }
        let mut groups = HashMap::with_capacity(config.target_groups.len());
        for (position, group) in config.target_groups.iter().enumerate() {
            groups.entry(group.name.clone()).or_insert(position);
        }
        Lookup {
            experiments,
            groups,
        }
    }
}

fn item_result(flag: &str, outcome: Outcome) -> ItemResult {
    ItemResult {
        id: flag.to_owned(),
        kind: KIND.to_owned(),
        matched: outcome.matched,
        reason: Some(outcome.reason),
        branch: None,
        value: outcome.value.as_ref().map(FlagValue::to_json),
    }
}

/// The decision for one flag.
#[derive(Debug, Clone)]
struct Outcome {
    value: Option<FlagValue>,
    reason: String,
    matched: bool,
}

/// Why a flag could not be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    Cycle,
    TooDeep,
}

impl Abort {
    fn reason(self) -> &'static str {
        match self {
            Abort::Cycle => "dependency-cycle",
            Abort::TooDeep => "dependency-too-deep",
        }
    }
}

/// What a value specification resolves to.
enum Resolved {
    Value(Option<FlagValue>),
    NoStickiness,
}

struct Evaluator<'a> {
    config: &'a Configuration,
    lookup: Cow<'a, Lookup>,
    input: &'a EvalInput<'a>,
    /// Flags whose evaluation is in progress, to detect dependency cycles.
    in_progress: Vec<&'a str>,
    /// Finished flag values as dependencies see them.
    memo: HashMap<&'a str, Option<FlagValue>>,
}

impl<'a> Evaluator<'a> {
    fn new(config: &'a Configuration, lookup: Cow<'a, Lookup>, input: &'a EvalInput<'a>) -> Self {
        Evaluator {
            config,
            lookup,
            input,
            in_progress: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// The active experiment that controls `flag`.
    fn experiment(&self, flag: &str) -> Option<&'a Experiment> {
        let position = *self.lookup.experiments.get(flag)?;
        self.config.experiments.get(position)
    }

    /// The target group named `name`.
    fn group(&self, name: &str) -> Option<&'a TargetGroup> {
        let position = *self.lookup.groups.get(name)?;
        self.config.target_groups.get(position)
    }

    fn flag_outcome(&mut self, experiment: &'a Experiment) -> Outcome {
        match self.decide(experiment) {
            Ok(outcome) => outcome,
            Err(abort) => Outcome {
                value: None,
                reason: abort.reason().to_owned(),
                matched: false,
            },
        }
    }

    fn decide(&mut self, experiment: &'a Experiment) -> Result<Outcome, Abort> {
        if self.in_progress.contains(&experiment.flag.as_str()) {
            return Err(Abort::Cycle);
        }
        if self.in_progress.len() >= MAX_DEPENDENCY_DEPTH {
            return Err(Abort::TooDeep);
        }
        self.in_progress.push(&experiment.flag);
        let outcome = self.decide_inner(experiment);
        self.in_progress.pop();
        if let Ok(outcome) = &outcome {
            self.memo
                .insert(experiment.flag.as_str(), outcome.value.clone());
        }
        outcome
    }

    fn decide_inner(&mut self, experiment: &'a Experiment) -> Result<Outcome, Abort> {
        if !experiment.is_enabled() {
            return Ok(Outcome {
                value: None,
                reason: "disabled".to_owned(),
                matched: false,
            });
        }
        let platform = self.input.context.platform.as_deref().and_then(|name| {
            experiment
                .platforms
                .iter()
                .flatten()
                .find(|p| p.name == name)
        });
        let (conditions, root_value, prefix) = match platform {
            Some(p) => (
                p.conditions.as_deref().unwrap_or(&[]),
                p.value.as_ref(),
                format!("platform {}: ", p.name),
            ),
            None => (
                experiment.conditions.as_deref().unwrap_or(&[]),
                experiment.value.as_ref(),
                String::new(),
            ),
        };
        let mut chosen: Option<(String, Option<&ValueSpec>)> = None;
        for (idx, condition) in conditions.iter().enumerate() {
            if self.condition_holds(condition)? {
                chosen = Some((format!("condition[{idx}]"), condition.value.as_ref()));
                break;
            }
        }
        let (rule, spec) = chosen.unwrap_or_else(|| ("default".to_owned(), root_value));
        let resolved = match spec {
            Some(spec) => self.resolve(experiment, spec),
            None => Resolved::Value(experiment.is_boolean().then_some(FlagValue::Bool(false))),
        };
        Ok(match resolved {
            Resolved::Value(value) => Outcome {
                matched: value.is_some(),
                value,
                reason: format!("{prefix}{rule}"),
            },
            Resolved::NoStickiness => Outcome {
                value: None,
                reason: "no-stickiness-value".to_owned(),
                matched: false,
            },
        })
    }

    fn resolve(&self, experiment: &Experiment, spec: &ValueSpec) -> Resolved {
        match spec {
            ValueSpec::Null => Resolved::Value(None),
            ValueSpec::Single(v) => Resolved::Value(Some(v.clone())),
            ValueSpec::Split(items) if items.is_empty() => Resolved::Value(None),
            ValueSpec::Split(items) => {
                let remainder = split_remainder(experiment, items);
                let nonzero: Vec<_> = items
                    .iter()
                    .filter(|i| i.effective_percentage() > 0.0)
                    .collect();
                if let [only] = nonzero.as_slice()
                    && only.effective_percentage() >= 100.0
                {
                    return Resolved::Value(Some(only.option.clone()));
                }
                if nonzero.is_empty() {
                    return Resolved::Value(remainder);
                }
                let Some(seed) = self.seed(experiment) else {
                    return Resolved::NoStickiness;
                };
                let mut low = 0.0;
                for item in items {
                    let high = low + item.effective_percentage();
                    if sampling::rox_in_percentage_range(low / 100.0, high / 100.0, &seed) {
                        return Resolved::Value(Some(item.option.clone()));
                    }
                    low = high;
                }
                Resolved::Value(remainder)
            }
            ValueSpec::Scheduled(items) => {
                let now = self.input.now;
                let current = items
                    .iter()
                    .filter(|i| i.from.at <= now)
                    .reduce(|best, i| if i.from.at >= best.from.at { i } else { best });
                let option = current
                    .or(items.first())
                    .is_none_or(|i| i.effective_option());
                let percentage = current.map_or(0.0, |i| i.effective_percentage());
                if percentage <= 0.0 {
                    return Resolved::Value(Some(FlagValue::Bool(!option)));
                }
                if percentage >= 100.0 {
                    return Resolved::Value(Some(FlagValue::Bool(option)));
                }
                let Some(seed) = self.seed(experiment) else {
                    return Resolved::NoStickiness;
                };
                let hit = sampling::rox_in_percentage_range(0.0, percentage / 100.0, &seed);
                Resolved::Value(Some(FlagValue::Bool(if hit { option } else { !option })))
            }
        }
    }

    /// `<stickiness value>.<flag name>`, or `None` without a usable stickiness value.
    fn seed(&self, experiment: &Experiment) -> Option<String> {
        let stickiness = match self.property(experiment.stickiness_property()) {
            Value::String(s) if !s.is_empty() => s.to_string(),
            Value::Number(n) => crate::value::js_number_to_string(n),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        Some(sampling::rox_merge_seed(&stickiness, &experiment.flag))
    }

    fn condition_holds(&mut self, condition: &Condition) -> Result<bool, Abort> {
        if let Some(dependency) = &condition.dependency {
            let actual = self.flag_value_string(&dependency.flag)?;
            if actual != dependency.value.to_flag_string() {
                return Ok(false);
            }
        }
        if let Some(group) = &condition.group {
            let names = group.name.as_slice();
            let holds = match group.operator.unwrap_or(GroupOperator::Or) {
                GroupOperator::Or => names.iter().any(|n| self.in_group(n)),
                GroupOperator::And => names.iter().all(|n| self.in_group(n)),
                GroupOperator::Not | GroupOperator::Nor => !names.iter().any(|n| self.in_group(n)),
            };
            if !holds {
                return Ok(false);
            }
        }
        if let Some(version) = &condition.version {
            let app = match self.input.context.version.as_deref() {
                Some(v) => Value::string(v),
                None => Value::Undefined,
            };
            if !semver_test(version.operator, &app, &version.semver) {
                return Ok(false);
            }
        }
        if let Some(property) = &condition.property
            && !self.property_holds(property)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// `flagValue(name)` as the SDK sees it: a string, `"false"` when nothing decides it.
    fn flag_value_string(&mut self, flag: &str) -> Result<String, Abort> {
        if let Some(value) = self.memo.get(flag) {
            return Ok(value
                .as_ref()
                .map_or_else(|| "false".to_owned(), FlagValue::to_flag_string));
        }
        let Some(experiment) = self.experiment(flag) else {
            return Ok("false".to_owned());
        };
        let outcome = self.decide(experiment)?;
        Ok(outcome
            .value
            .as_ref()
            .map_or_else(|| "false".to_owned(), FlagValue::to_flag_string))
    }

    fn in_group(&self, name: &str) -> bool {
        let Some(group) = self.group(name) else {
            return false;
        };
        let mut results = group.conditions.iter().map(|c| self.property_holds(c));
        match group.operator.unwrap_or(GroupJoin::And) {
            GroupJoin::And => results.all(|held| held),
            GroupJoin::Or => results.any(|held| held),
        }
    }

    fn property(&self, name: &str) -> Value {
        if let Some(value) = self.input.context.properties.get(name) {
            return match value {
                serde_json::Value::Null => Value::Undefined,
                other => Value::from_json(other),
            };
        }
        let context = self.input.context;
        let text = |s: &Option<String>| s.as_deref().map_or(Value::Undefined, Value::string);
        match name {
            "rox.distinct_id" => text(&context.user_id),
            "rox.app_release" => text(&context.version),
            "rox.platform" => text(&context.platform),
            "rox.now" => Value::Number(self.input.now.as_millisecond() as f64),
            _ => Value::Undefined,
        }
    }

    fn property_holds(&self, condition: &PropertyCondition) -> bool {
        let value = self.property(&condition.property);
        operator_holds(condition, &value)
    }
}

/// The complement rule for the part of a legacy split beyond its percentages.
fn split_remainder(
    experiment: &Experiment,
    items: &[crate::model::cloudbees::SplitValue],
) -> Option<FlagValue> {
    let mut options = items.iter().map(|i| &i.option);
    let first = options.next()?;
    match first {
        FlagValue::Bool(b) if experiment.is_boolean() && options.all(|o| o == first) => {
            Some(FlagValue::Bool(!b))
        }
        _ => None,
    }
}

/// Applies a property-condition operator to a property value (rox `roxx` semantics).
pub(crate) fn operator_holds(condition: &PropertyCondition, value: &Value) -> bool {
    let scalar = match &condition.operand {
        Some(Operand::Scalar(v)) => Some(v),
        _ => None,
    };
    match condition.operator {
        PropertyOperator::IsUndefined => matches!(value, Value::Undefined),
        PropertyOperator::IsTrue => strict_eq(value, &OperandValue::Bool(true)),
        PropertyOperator::IsFalse => strict_eq(value, &OperandValue::Bool(false)),
        PropertyOperator::Eq => scalar.is_some_and(|o| strict_eq(value, o)),
        PropertyOperator::Ne => scalar.is_some_and(|o| !strict_eq(value, o)),
        PropertyOperator::Gt => numeric(value, scalar, |o| o == Ordering::Greater),
        PropertyOperator::Gte => numeric(value, scalar, |o| o != Ordering::Less),
        PropertyOperator::Lt => numeric(value, scalar, |o| o == Ordering::Less),
        PropertyOperator::Lte => numeric(value, scalar, |o| o != Ordering::Greater),
        PropertyOperator::Regex => match (value, &condition.regex) {
            (Value::String(s), Some(re)) => re.0.is_match(s),
            _ => false,
        },
        PropertyOperator::InArray => match &condition.operand {
            Some(Operand::List(items)) => {
                !matches!(value, Value::Undefined) && items.iter().any(|i| strict_eq(value, i))
            }
            _ => false,
        },
        op => match scalar {
            Some(OperandValue::String(s)) => semver_test(op, value, s),
            _ => false,
        },
    }
}

/// rox `eq`: an undefined property is `false`; then value and type must both match.
fn strict_eq(value: &Value, operand: &OperandValue) -> bool {
    match (value, operand) {
        (Value::Undefined, OperandValue::Bool(b)) => !b,
        (Value::Bool(a), OperandValue::Bool(b)) => a == b,
        (Value::String(a), OperandValue::String(b)) => **a == **b,
        (Value::Number(a), OperandValue::Number(b)) => a == b,
        _ => false,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) if !n.is_nan() => Some(*n),
        Value::String(s) => crate::model::cloudbees::parse_js_number(s),
        _ => None,
    }
}

fn numeric(value: &Value, operand: Option<&OperandValue>, test: impl Fn(Ordering) -> bool) -> bool {
    let right = match operand {
        Some(OperandValue::Number(n)) => Some(*n),
        Some(OperandValue::String(s)) => crate::model::cloudbees::parse_js_number(s),
        _ => None,
    };
    match (as_number(value), right) {
        (Some(a), Some(b)) => a.partial_cmp(&b).is_some_and(test),
        _ => false,
    }
}

fn semver_test(operator: PropertyOperator, value: &Value, operand: &str) -> bool {
    let Value::String(actual) = value else {
        return false;
    };
    let Some(ordering) = compare_cloudbees_semver(actual, operand) else {
        return false;
    };
    match operator {
        PropertyOperator::SemverGt => ordering == Ordering::Greater,
        PropertyOperator::SemverGte => ordering != Ordering::Less,
        PropertyOperator::SemverEq => ordering == Ordering::Equal,
        PropertyOperator::SemverNe => ordering != Ordering::Equal,
        PropertyOperator::SemverLt => ordering == Ordering::Less,
        PropertyOperator::SemverLte => ordering != Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
