//! JavaScript values as the filter language sees them.
//!
//! Normandy filters are written for mozjexl, which runs on JavaScript values: one number type
//! (IEEE-754 double), `undefined` distinct from `null`, loose truthiness, and objects whose keys
//! keep insertion order. Sampling hashes the *JavaScript* JSON serialisation of a value, so the
//! exact formatting of numbers matters (`123`, never `123.0`). This module is the one place that
//! knows those rules; the language ([`crate::jexl`]) and sampling ([`crate::sampling`]) build on it.

use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;

/// An object: string keys in insertion order, as in JavaScript.
pub type Object = IndexMap<Arc<str>, Value>;

/// A JavaScript value.
///
/// Compound values are reference-counted so that evaluation can pass context data around
/// without copying it.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// `undefined`: a missing property, a missing variable, a transform with nothing to say.
    #[default]
    Undefined,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (always a double, as in JavaScript).
    Number(f64),
    /// A string.
    String(Arc<str>),
    /// An array.
    Array(Arc<Vec<Value>>),
    /// A plain object.
    Object(Arc<Object>),
    /// A `Date`, as milliseconds since the Unix epoch (NaN for an invalid date).
    Date(f64),
}

impl Value {
    /// A string value.
    pub fn string(s: &str) -> Value {
        Value::String(Arc::from(s))
    }

    /// An array value.
    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Arc::new(items))
    }

    /// An object value.
    pub fn object(object: Object) -> Value {
        Value::Object(Arc::new(object))
    }

    /// Converts parsed JSON into a value. Object key order is kept (serde_json's
    /// `preserve_order` feature is on in this workspace).
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::string(s),
            serde_json::Value::Array(items) => {
                Value::array(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => {
                let mut object: Object = map
                    .iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v)))
                    .collect();
                js_order_keys(&mut object);
                Value::object(object)
            }
        }
    }

    /// Converts to JSON the way `JSON.parse(JSON.stringify(v))` would, except that `undefined`
    /// at the top level gives `None`. Non-finite numbers become `null`, dates ISO strings.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        Some(match self {
            Value::Undefined => return None,
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| v.to_json().unwrap_or(serde_json::Value::Null))
                    .collect(),
            ),
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .filter_map(|(k, v)| v.to_json().map(|j| (k.to_string(), j)))
                    .collect(),
            ),
            Value::Date(ms) => match date_to_iso_string(*ms) {
                Some(s) => serde_json::Value::String(s),
                None => serde_json::Value::Null,
            },
        })
    }

    /// `JSON.stringify(value)`: `None` for a top-level `undefined`.
    ///
    /// This is the exact byte string Normandy hashes for sampling.
    pub fn to_js_json_string(&self) -> Option<String> {
        if matches!(self, Value::Undefined) {
            return None;
        }
        let mut out = String::with_capacity(64);
        write_js_json(self, &mut out);
        Some(out)
    }

    /// JavaScript truthiness (`!!value`).
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) | Value::Date(_) => true,
        }
    }

    /// The result of JavaScript's `typeof` for this value.
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Null | Value::Array(_) | Value::Object(_) | Value::Date(_) => "object",
        }
    }
}

/// The index of a JavaScript array-index key (`"0"`, `"17"`; not `"01"`, `"-1"`, `"4294967295"`).
pub fn js_array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes.first() == Some(&b'0') {
        return None;
    }
    key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

/// Puts keys in JavaScript's property order: array-index keys first, ascending, then the
/// others in insertion order (what `Object.keys` and `JSON.stringify` see after `JSON.parse`).
pub fn js_order_keys(object: &mut Object) {
    if object.keys().any(|k| js_array_index(k).is_some()) {
        let mut entries: Vec<(Arc<str>, Value)> = std::mem::take(object).into_iter().collect();
        // A stable sort keeps the insertion order of the non-index keys.
        entries.sort_by_key(|(k, _)| match js_array_index(k) {
            Some(index) => (0, index),
            None => (1, 0),
        });
        object.extend(entries);
    }
}

/// Formats a number as JavaScript's `Number.prototype.toString()` does
/// (`1`, `0.1`, `1e+21`, `-0` → `0`, `NaN`, `Infinity`).
pub fn js_number_to_string(n: f64) -> String {
    let mut out = String::new();
    write_js_number(n, &mut out);
    out
}

/// Appends `Number.prototype.toString()` of `n` to `out` (see [`js_number_to_string`]).
pub fn write_js_number(n: f64, out: &mut String) {
    // Integers below 2^53 print the same in every notation; skip the shortest-digits search.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}", n as i64);
        return;
    }
    let mut buffer = ryu_js::Buffer::new();
    out.push_str(buffer.format(n));
}

/// A JSON number for a JavaScript number: integral values without a fractional part,
/// non-finite values as `null` (what `JSON.stringify` does).
fn number_to_json(n: f64) -> serde_json::Value {
    if !n.is_finite() {
        return serde_json::Value::Null;
    }
    // Integral doubles in the exactly-representable range become JSON integers so that
    // re-serialising them gives `123`, not `123.0`.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // `-0` serialises as `0` in JavaScript too.
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn write_js_json(value: &Value, out: &mut String) {
    match value {
        // Inside arrays `undefined` is written as `null`; object members that are
        // `undefined` are skipped by the caller.
        Value::Undefined | Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) if n.is_finite() => write_js_number(*n, out),
        Value::Number(_) => out.push_str("null"),
        Value::String(s) => write_js_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_js_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for (key, item) in map.iter() {
                if matches!(item, Value::Undefined) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_js_json_string(key, out);
                out.push(':');
                write_js_json(item, out);
            }
            out.push('}');
        }
        Value::Date(ms) => match date_to_iso_string(*ms) {
            Some(iso) => write_js_json_string(&iso, out),
            None => out.push_str("null"),
        },
    }
}

/// Writes a string literal as `JSON.stringify` does: `"` and `\` escaped, the short escapes
/// `\b \f \n \r \t`, other control characters as lowercase `\u00XX`, everything else verbatim.
fn write_js_json_string(s: &str, out: &mut String) {
    out.push('"');
    // Copy runs that need no escaping in one go; every escaped character is ASCII, so the
    // run boundaries are always character boundaries.
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// `Date.prototype.toISOString()`; `None` for an invalid date (where JavaScript throws and
/// `JSON.stringify` writes `null`).
pub fn date_to_iso_string(ms: f64) -> Option<String> {
    if !ms.is_finite() {
        return None;
    }
    let ts = jiff::Timestamp::from_millisecond(ms as i64).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_stringify(json: &str, expected: &str) {
        let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            Value::from_json(&parsed).to_js_json_string().as_deref(),
            Some(expected)
        );
    }

    #[test]
    fn stringify_matches_javascript() {
        check_stringify(r#"[1234,"test_namespace"]"#, r#"[1234,"test_namespace"]"#);
        check_stringify("123.0", "123");
        check_stringify("1e21", "1e+21");
        check_stringify("0.1", "0.1");
        check_stringify(r#"{"b":1,"a":[null,true]}"#, r#"{"b":1,"a":[null,true]}"#);
        check_stringify(r#""a\u0001\n""#, r#""a\u0001\n""#);
        assert_eq!(Value::Number(-0.0).to_js_json_string().unwrap(), "0");
        assert_eq!(Value::Number(f64::NAN).to_js_json_string().unwrap(), "null");
        assert_eq!(Value::Undefined.to_js_json_string(), None);
        assert_eq!(
            Value::array(vec![Value::Undefined])
                .to_js_json_string()
                .unwrap(),
            "[null]"
        );
    }

    #[test]
    fn integer_keys_come_first_as_in_javascript() {
        check_stringify(
            r#"{"b":1,"10":2,"a":3,"2":4,"01":5}"#,
            r#"{"2":4,"10":2,"b":1,"a":3,"01":5}"#,
        );
    }

    #[test]
    fn numbers_format_like_javascript() {
        assert_eq!(js_number_to_string(1.0), "1");
        assert_eq!(js_number_to_string(1.5), "1.5");
        assert_eq!(js_number_to_string(1e-7), "1e-7");
        assert_eq!(js_number_to_string(f64::INFINITY), "Infinity");
        assert_eq!(js_number_to_string(f64::NAN), "NaN");
    }

    #[test]
    fn dates_serialise_as_iso() {
        assert_eq!(
            date_to_iso_string(1_393_000_000_000.0).unwrap(),
            "2014-02-21T16:26:40.000Z"
        );
        assert_eq!(date_to_iso_string(f64::NAN), None);
    }
}
