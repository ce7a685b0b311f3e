//! Normandy's transforms (`FilterExpressions.sys.mjs`), with the JavaScript argument handling
//! of the original functions.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::context::{PrefSnapshot, PrefValue};
use crate::sampling;
use crate::value::Value;
use crate::version;

use super::EvalError;
use super::date;
use super::eval::error;
use super::ops;
use super::regexp::JsRegex;

/// A transform resolved at compile time.
#[derive(Debug, Clone)]
pub(crate) enum Transform {
    Date,
    StableSample,
    BucketSample,
    PreferenceValue,
    PreferenceIsUserSet,
    PreferenceExists,
    Keys,
    Values,
    Length,
    MapToProperty,
    /// With the regular expression precompiled when pattern and flags are literals.
    RegExpMatch(Option<Arc<Result<JsRegex, String>>>),
    /// With the version to compare against pre-parsed when it is a literal.
    VersionCompare(Option<Arc<version::ToolkitVersion>>),
    /// Not registered: evaluating it fails, as in mozjexl (parsing does not).
    Unknown(Arc<str>),
}

/// The names of every transform, as Normandy registers them.
pub const TRANSFORM_NAMES: [&str; 12] = [
    "date",
    "stableSample",
    "bucketSample",
    "preferenceValue",
    "preferenceIsUserSet",
    "preferenceExists",
    "keys",
    "values",
    "length",
    "mapToProperty",
    "regExpMatch",
    "versionCompare",
];

/// Resolves a transform name. `args` holds one entry per argument: its value when the
/// argument is a constant (for precompiling a regular expression or parsing a version).
pub(crate) fn resolve(name: &Arc<str>, args: &[Option<&Value>]) -> Transform {
    match &**name {
        "date" => Transform::Date,
        "stableSample" => Transform::StableSample,
        "bucketSample" => Transform::BucketSample,
        "preferenceValue" => Transform::PreferenceValue,
        "preferenceIsUserSet" => Transform::PreferenceIsUserSet,
        "preferenceExists" => Transform::PreferenceExists,
        "keys" => Transform::Keys,
        "values" => Transform::Values,
        "length" => Transform::Length,
        "mapToProperty" => Transform::MapToProperty,
        "regExpMatch" => {
            let constant = |i: usize| match args.get(i) {
                None => Some(Value::Undefined),
                Some(Some(v)) => Some((*v).clone()),
                Some(None) => None,
            };
            let compiled = match (constant(0), constant(1)) {
                (Some(pattern), Some(flags)) => Some(Arc::new(build_regex(&pattern, &flags))),
                _ => None,
            };
            Transform::RegExpMatch(compiled)
        }
        "versionCompare" => Transform::VersionCompare(match args.first() {
            None => Some(Arc::new(version::ToolkitVersion::parse(""))),
            Some(Some(v)) => Some(Arc::new(version::ToolkitVersion::parse(&version_text(v)))),
            Some(None) => None,
        }),
        _ => Transform::Unknown(name.clone()),
    }
}

/// `new RegExp(pattern, flags)`.
fn build_regex(pattern: &Value, flags: &Value) -> Result<JsRegex, String> {
    let pattern = match pattern {
        Value::Undefined => Cow::Borrowed("(?:)"),
        other => ops::to_str(other),
    };
    let flags = match flags {
        Value::Undefined => Cow::Borrowed(""),
        other => ops::to_str(other),
    };
    JsRegex::new(&pattern, &flags)
}

fn arg<'v>(args: &'v [Cow<'_, Value>], i: usize) -> &'v Value {
    args.get(i).map_or(&Value::Undefined, |v| &**v)
}

fn pref_value(value: &PrefValue) -> Value {
    match value {
        PrefValue::Bool(b) => Value::Bool(*b),
        PrefValue::Int(i) => Value::Number(*i as f64),
        PrefValue::String(s) => Value::string(s),
    }
}

/// The pref name XPConnect would pass: `null`/`undefined` name no pref.
fn pref_name(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Undefined | Value::Null => None,
        other => Some(ops::to_str(other)),
    }
}

/// `date`: `new Date(value)`.
pub(crate) fn date(value: &Value) -> Value {
    Value::Date(date::new_date(value))
}

/// `Services.vc.compare(a, b)` as a number: -1, 0 or 1.
pub(crate) fn version_compare(a: &str, b: &str) -> f64 {
    ordering_number(version::compare_toolkit(a, b))
}

/// `Services.vc.compare(a, b)` as a number, with `b` parsed beforehand.
pub(crate) fn version_compare_parsed(a: &str, b: &version::ToolkitVersion) -> f64 {
    ordering_number(b.compare_text(a))
}

/// An ordering as `versionCompare` gives it: -1, 0 or 1.
pub(crate) fn ordering_number(ordering: Ordering) -> f64 {
    match ordering {
        Ordering::Less => -1.0,
        Ordering::Equal => 0.0,
        Ordering::Greater => 1.0,
    }
}

/// Firefox's `bucketSample(input, start, count, total)` on JavaScript values: `start % total`
/// is numeric, but `wrappedStart + count` concatenates when `count` is a string (or an object,
/// which converts to one), and `end > total` then compares as JavaScript does.
fn bucket_sample(
    input: &Value,
    start: &Value,
    count: &Value,
    total: &Value,
) -> Result<bool, sampling::SamplingError> {
    if let (Value::Number(start), Value::Number(count), Value::Number(total)) =
        (start, count, total)
    {
        return sampling::bucket_sample(input, *start, *count, *total);
    }
    let total_number = ops::to_number(total);
    let wrapped_start = ops::to_number(start) % total_number;
    let end = ops::add(&Value::Number(wrapped_start), count);
    let range = sampling::BucketRange {
        wrapped_start,
        end: ops::to_number(&end),
        wraps: ops::less_than(total, &end) == Some(true),
        total: total_number,
    };
    sampling::bucket_range_sample(input, range)
}

/// The text XPConnect passes for a version argument: `null`/`undefined` are empty.
pub(crate) fn version_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Undefined | Value::Null => Cow::Borrowed(""),
        other => ops::to_str(other),
    }
}

/// Applies a transform to evaluated operands.
pub(crate) fn apply(
    transform: &Transform,
    subject: &Value,
    args: &[Cow<'_, Value>],
    prefs: &PrefSnapshot,
) -> Result<Value, EvalError> {
    Ok(match transform {
        Transform::Date => date(subject),
        Transform::StableSample => {
            let rate = ops::to_number(arg(args, 0));
            Value::Bool(
                sampling::stable_sample(subject, rate)
                    .map_err(|e| error(format!("stableSample: {e}")))?,
            )
        }
        Transform::BucketSample => Value::Bool(
            bucket_sample(subject, arg(args, 0), arg(args, 1), arg(args, 2))
                .map_err(|e| error(format!("bucketSample: {e}")))?,
        ),
        Transform::PreferenceValue => {
            let entry = pref_name(subject).and_then(|name| prefs.get(&*name));
            match entry.and_then(|e| e.effective()) {
                Some(value) => pref_value(value),
                None => arg(args, 0).clone(),
            }
        }
        Transform::PreferenceIsUserSet => {
            let entry = pref_name(subject).and_then(|name| prefs.get(&*name));
            Value::Bool(entry.is_some_and(|e| e.user.is_some()))
        }
        Transform::PreferenceExists => {
            let entry = pref_name(subject).and_then(|name| prefs.get(&*name));
            Value::Bool(entry.is_some_and(|e| e.effective().is_some()))
        }
        Transform::Keys => match subject {
            Value::Object(map) => {
                Value::array(map.keys().map(|k| Value::String(k.clone())).collect())
            }
            Value::Array(items) => Value::array(
                (0..items.len())
                    .map(|i| Value::String(Arc::from(i.to_string())))
                    .collect(),
            ),
            Value::Date(_) => Value::array(Vec::new()),
            _ => Value::Undefined,
        },
        Transform::Values => match subject {
            Value::Object(map) => Value::array(map.values().cloned().collect()),
            // `Object.values` builds a new array, so the result is never `==` its subject.
            Value::Array(items) => Value::array(items.to_vec()),
            Value::Date(_) => Value::array(Vec::new()),
            _ => Value::Undefined,
        },
        Transform::Length => match subject {
            Value::Array(items) => Value::Number(items.len() as f64),
            _ => Value::Undefined,
        },
        Transform::MapToProperty => match subject {
            Value::Array(items) => {
                let key = ops::to_str(arg(args, 0));
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    if matches!(item, Value::Undefined | Value::Null) {
                        return Err(error(format!(
                            "mapToProperty: cannot read property '{key}' of {}",
                            ops::to_js_string(item)
                        )));
                    }
                    out.push(match ops::get_member(item, &key) {
                        ops::Member::Ref(v) => v.clone(),
                        ops::Member::Owned(v) => v,
                    });
                }
                Value::array(out)
            }
            _ => Value::Undefined,
        },
        Transform::RegExpMatch(compiled) => {
            let built;
            let regex = match compiled {
                Some(regex) => &**regex,
                None => {
                    built = build_regex(arg(args, 0), arg(args, 1));
                    &built
                }
            };
            let regex = regex
                .as_ref()
                .map_err(|e| error(format!("regExpMatch: {e}")))?;
            match subject {
                Value::String(s) => regex.match_all(s),
                other => {
                    return Err(error(format!(
                        "regExpMatch: {} has no match method",
                        other.type_of()
                    )));
                }
            }
        }
        Transform::VersionCompare(Some(parsed)) => {
            Value::Number(version_compare_parsed(&version_text(subject), parsed))
        }
        Transform::VersionCompare(None) => Value::Number(version_compare(
            &version_text(subject),
            &version_text(arg(args, 0)),
        )),
        Transform::Unknown(name) => {
            return Err(error(format!("Transform '{name}' is not defined.")));
        }
    })
}
