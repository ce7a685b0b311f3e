//! Canonical JSON: the exact bytes that content signatures cover.
//!
//! The form is Mozilla's `CanonicalJSON.stringify` (Firefox `toolkit/modules/CanonicalJSON`,
//! which escapes strings with jsesc `{json: true, lowercaseHex: true}`), the function Firefox
//! uses to verify Normandy recipes and Remote Settings collections. It is also what the
//! Normandy server signs with `json.dumps(sort_keys=True, separators=(",", ":"),
//! ensure_ascii=True)` for every document those two agree on:
//!
//! - no whitespace; `,` between members and elements, `:` between key and value;
//! - object keys sorted recursively, by UTF-16 code units as JavaScript's `Array.sort` does
//!   (Python sorts by code points: the two differ only when a key has a character at or above
//!   U+E000 where another has one beyond U+FFFF at the same place);
//! - strings in double quotes; `"` and `\` escaped with a backslash; `\b`, `\f`, `\n`, `\r`,
//!   `\t` in their short forms; every other character outside printable ASCII (the other
//!   C0 controls, DEL, and everything beyond U+007F) as `\uXXXX` with lowercase hex, with
//!   characters beyond U+FFFF written as their UTF-16 surrogate pair (jsesc and Python agree
//!   here; `JSON.stringify` would leave DEL and non-ASCII unescaped);
//! - numbers as JavaScript formats them (`Number.prototype.toString`, via `ryu-js`): every
//!   number is first converted to the nearest double, as `JSON.parse` does, so integers
//!   beyond 2^53 are rounded (`12345678901234567890` becomes `12345678901234567000`), and an
//!   integral float has no fraction (`5.0` is `5`, `1e21` is `1e+21`);
//! - negative zero is written `-0`, as `CanonicalJSON` does on purpose (Python writes
//!   `-0.0`, `JSON.stringify` writes `0`). serde_json reads `-0` and `-0.0` as the double
//!   negative zero, as `JSON.parse` does, so a document keeps its `-0` through a round trip.
//!
//! The documents signed here are built so that all three writers agree: the signer refuses
//! integers that are not exactly representable as a double (see [`first_inexact_number`]),
//! because two such integers that round to the same double would have the same signature.

use flightdeck_core::diagnostic::{FieldPath, PathSegment};
use serde_json::{Map, Number, Value};

/// The canonical JSON text of `value`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The canonical JSON bytes of `value` (UTF-8, and in fact pure ASCII).
pub fn to_vec(value: &Value) -> Vec<u8> {
    to_string(value).into_bytes()
}

/// The canonical JSON text of the object `map` without its member `excluded` (what a
/// signature stored in the object itself covers), without copying the object.
pub fn object_without(map: &Map<String, Value>, excluded: &str) -> String {
    let mut out = String::new();
    write_object(&mut out, map, Some(excluded));
    out
}

/// The first number in `value` (depth first, in document order) that canonical JSON would
/// not write exactly: an integer whose magnitude needs more than the 53 bits of a double.
///
/// Documents with such a number are refused for signing: JavaScript, and so the canonical
/// form, cannot tell `9007199254740993` from `9007199254740992`.
pub fn first_inexact_number(value: &Value) -> Option<FieldPath> {
    let mut path = FieldPath::root();
    inexact_number(value, &mut path).then_some(path)
}

fn inexact_number(value: &Value, path: &mut FieldPath) -> bool {
    let mut descend = |segment: PathSegment, item: &Value| {
        path.0.push(segment);
        let found = inexact_number(item, path);
        if !found {
            path.0.pop();
        }
        found
    };
    match value {
        Value::Number(number) => !is_exact_double(number),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .any(|(index, item)| descend(PathSegment::Index(index), item)),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| descend(PathSegment::Key(key.clone()), item)),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// Whether converting `number` to a double loses nothing.
fn is_exact_double(number: &Number) -> bool {
    if let Some(unsigned) = number.as_u64() {
        // 2^64 itself is a double, but no u64 is 2^64: check the range before converting back.
        let double = unsigned as f64;
        double < 18_446_744_073_709_551_616.0 && double as u64 == unsigned
    } else if let Some(signed) = number.as_i64() {
        let double = signed as f64;
        double >= -9_223_372_036_854_775_808.0 && double as i64 == signed
    } else {
        true
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, None),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>, excluded: Option<&str>) {
    let mut members: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(key, _)| Some(key.as_str()) != excluded)
        .collect();
    // Keys are unique, so an unstable sort gives one order.
    members.sort_unstable_by(|(a, _), (b, _)| compare_utf16(a, b));
    out.push('{');
    for (index, (key, item)) in members.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, item);
    }
    out.push('}');
}

/// Orders strings by their UTF-16 code units, as JavaScript compares strings.
///
/// UTF-8 byte order is code point order, which is the same except that a character beyond
/// U+FFFF (a surrogate pair, D800–DFFF) sorts before U+E000–U+FFFF in UTF-16.
pub fn compare_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_number(out: &mut String, number: &Number) {
    // The double JavaScript would hold: `as` rounds to nearest, ties to even, like
    // `JSON.parse` reading the same digits.
    let double = if let Some(unsigned) = number.as_u64() {
        unsigned as f64
    } else if let Some(signed) = number.as_i64() {
        signed as f64
    } else {
        number.as_f64().unwrap_or(0.0)
    };
    if double == 0.0 {
        out.push_str(if double.is_sign_negative() { "-0" } else { "0" });
    } else {
        // serde_json numbers are always finite.
        out.push_str(ryu_js::Buffer::new().format(double));
    }
}

fn write_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
            }
        }
    }
    out.push('"');
}

fn push_unicode_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(text: &str) -> String {
        to_string(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        assert_eq!(
            canonical(r#"{ "b": [ {"z": 1, "a": null} ], "a": { "d": true, "c": false } }"#),
            r#"{"a":{"c":false,"d":true},"b":[{"a":null,"z":1}]}"#
        );
        assert_eq!(canonical("[]"), "[]");
        assert_eq!(canonical("{}"), "{}");
    }

    #[test]
    fn an_object_without_one_member() {
        let value = json!({"signature": {"x": 1}, "b": 2, "a": [1]});
        let Value::Object(map) = &value else {
            unreachable!()
        };
        assert_eq!(object_without(map, "signature"), r#"{"a":[1],"b":2}"#);
        assert_eq!(object_without(map, "absent"), to_string(&value));
    }

    #[test]
    fn key_order_is_utf16_code_unit_order() {
        // U+FF21 (fullwidth A) is one code unit 0xFF21; U+1F600 starts with 0xD83D.
        let value = json!({"\u{ff21}": 1, "\u{1f600}": 2, "z": 3});
        assert_eq!(to_string(&value), r#"{"z":3,"\ud83d\ude00":2,"\uff21":1}"#);
        assert_eq!(
            compare_utf16("\u{1f600}", "\u{ff21}"),
            std::cmp::Ordering::Less
        );
        // Code point order would say the opposite.
        assert!("\u{1f600}" > "\u{ff21}");
    }

    #[test]
    fn escapes_like_jsesc_json_mode() {
        let value = json!(
            "a\"b\\c/d'e`f\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f} é\u{2028}\u{10ffff}"
        );
        assert_eq!(
            to_string(&value),
            r#""a\"b\\c/d'e`f\u0000\u0001\b\t\n\u000b\f\r\u001f\u007f \u00e9\u2028\udbff\udfff""#
        );
    }

    #[test]
    fn numbers_are_written_as_javascript_does() {
        let cases = [
            ("0", "0"),
            ("-0", "-0"),
            ("-0e5", "-0"),
            ("-0.0", "-0"),
            ("5.0", "5"),
            ("1.5", "1.5"),
            ("-1.5e-7", "-1.5e-7"),
            ("0.000001", "0.000001"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("12345678901234567890", "12345678901234567000"),
            ("9007199254740993", "9007199254740992"),
            ("-9223372036854775808", "-9223372036854776000"),
            ("0.1", "0.1"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input), expected, "{input}");
        }
    }

    #[test]
    fn inexact_integers_are_found_with_their_path() {
        let value = json!({"a": [1, 2.5, {"b": 9_007_199_254_740_993u64}], "c": 1});
        assert_eq!(
            first_inexact_number(&value),
            Some(FieldPath::root().key("a").index(2).key("b"))
        );
        for exact in [
            json!(9_007_199_254_740_992u64),
            json!(1u64 << 60),
            json!(i64::MIN),
            json!(-(1i64 << 53)),
            json!(1e300),
            json!({"x": [true, null, "s"]}),
        ] {
            assert_eq!(first_inexact_number(&exact), None, "{exact}");
        }
        assert!(first_inexact_number(&json!(u64::MAX)).is_some());
        assert!(first_inexact_number(&json!(i64::MIN + 1)).is_some());
    }
}
