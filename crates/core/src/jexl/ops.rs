//! JavaScript value semantics used by the operators: `ToNumber`, `ToString`, `ToPrimitive`,
//! loose equality (`==`), `SameValueZero`, relational comparison and `+`.
//!
//! Objects have no prototype chain here: property reads see own data only (plus `length` and
//! indexes on arrays and strings), because filter contexts are plain JSON.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::value::{Value, js_number_to_string};

use super::lexer::is_js_space;

/// A primitive produced by `ToPrimitive`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prim<'a> {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'a, str>),
}

/// The `ToPrimitive` hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// `default` (used by `+` and `==`): dates become strings.
    Default,
    /// `number` (used by `<` and arithmetic): dates become their time value.
    Number,
}

/// `ToPrimitive(value, hint)`.
pub(crate) fn to_primitive(value: &Value, hint: Hint) -> Prim<'_> {
    match value {
        Value::Undefined => Prim::Undefined,
        Value::Null => Prim::Null,
        Value::Bool(b) => Prim::Bool(*b),
        Value::Number(n) => Prim::Number(*n),
        Value::String(s) => Prim::Str(Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) => Prim::Str(Cow::Owned(to_js_string(value))),
        Value::Date(ms) => match hint {
            Hint::Number => Prim::Number(*ms),
            Hint::Default => Prim::Str(Cow::Owned(date_to_string(*ms))),
        },
    }
}

fn prim_to_number(p: &Prim<'_>) -> f64 {
    match p {
        Prim::Undefined => f64::NAN,
        Prim::Null => 0.0,
        Prim::Bool(b) => f64::from(u8::from(*b)),
        Prim::Number(n) => *n,
        Prim::Str(s) => string_to_number(s),
    }
}

fn write_prim(p: &Prim<'_>, out: &mut String) {
    match p {
        Prim::Undefined => out.push_str("undefined"),
        Prim::Null => out.push_str("null"),
        Prim::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Prim::Number(n) => out.push_str(&js_number_to_string(*n)),
        Prim::Str(s) => out.push_str(s),
    }
}

/// `ToNumber(value)`.
pub(crate) fn to_number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => *n,
        other => prim_to_number(&to_primitive(other, Hint::Number)),
    }
}

/// `ToString(value)`, borrowing when the value already is a string.
pub(crate) fn to_str(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(to_js_string(other)),
    }
}

/// `ToString(value)` as an owned string.
pub(crate) fn to_js_string(value: &Value) -> String {
    let mut out = String::new();
    write_js_string(value, &mut out);
    out
}

/// Appends `ToString(value)`: arrays join their elements with `,` (`null`/`undefined` as
/// empty), plain objects are `[object Object]`, dates use `Date.prototype.toString` in UTC.
pub(crate) fn write_js_string(value: &Value, out: &mut String) {
    match value {
        Value::Undefined => out.push_str("undefined"),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&js_number_to_string(*n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !matches!(item, Value::Undefined | Value::Null) {
                    write_js_string(item, out);
                }
            }
        }
        Value::Object(_) => out.push_str("[object Object]"),
        Value::Date(ms) => out.push_str(&date_to_string(*ms)),
    }
}

/// `StringToNumber`: trimmed decimal literal (with `Infinity`), `0x`/`0o`/`0b` integers,
/// empty string is 0, anything else NaN.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    let b = t.as_bytes();
    if b.len() > 2 && b[0] == b'0' {
        let radix = match b[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            let mut value = 0.0f64;
            for &d in &b[2..] {
                match char::from(d).to_digit(radix) {
                    Some(digit) => value = value * f64::from(radix) + f64::from(digit),
                    None => return f64::NAN,
                }
            }
            return value;
        }
    }
    let (sign, unsigned) = match b[0] {
        b'+' => (1.0, &t[1..]),
        b'-' => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    if unsigned == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    unsigned.parse::<f64>().map_or(f64::NAN, |v| sign * v)
}

/// `StrUnsignedDecimalLiteral` without `Infinity`: digits with an optional dot (at least one
/// digit overall) and an optional exponent.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

/// String equality without a `memcmp` call for the short strings filters compare
/// (identifiers, channels, locales); longer strings use the library comparison.
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

/// [`str_eq`] on bytes.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    // Two overlapping word loads cover 4..=16 bytes.
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    let half = |s: &[u8], at: usize| {
        s.get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    match len {
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

fn is_object(v: &Value) -> bool {
    matches!(v, Value::Array(_) | Value::Object(_) | Value::Date(_))
}

/// JavaScript `==` (IsLooselyEqual). Objects compare by identity (shared `Arc`); every date
/// is treated as a distinct object, since dates carry no identity here.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    use Value as V;
    match (a, b) {
        (V::Undefined | V::Null, V::Undefined | V::Null) => true,
        (V::Undefined | V::Null, _) | (_, V::Undefined | V::Null) => false,
        (V::Number(x), V::Number(y)) => x == y,
        (V::String(x), V::String(y)) => str_eq(x, y),
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Number(x), V::String(s)) | (V::String(s), V::Number(x)) => *x == string_to_number(s),
        (V::Bool(x), other) | (other, V::Bool(x)) => {
            loose_eq(&V::Number(f64::from(u8::from(*x))), other)
        }
        (V::Array(x), V::Array(y)) => Arc::ptr_eq(x, y),
        (V::Object(x), V::Object(y)) => Arc::ptr_eq(x, y),
        (x, y) if is_object(x) && is_object(y) => false,
        (obj, prim) | (prim, obj) if is_object(obj) => {
            prim_loose_eq(&to_primitive(obj, Hint::Default), prim)
        }
        _ => false,
    }
}

/// `==` between a primitive from `ToPrimitive` and a number or string.
fn prim_loose_eq(p: &Prim<'_>, other: &Value) -> bool {
    match (p, other) {
        (Prim::Str(s), Value::String(t)) => **s == **t,
        (Prim::Str(s), Value::Number(n)) => string_to_number(s) == *n,
        (Prim::Number(x), Value::Number(y)) => x == y,
        (Prim::Number(x), Value::String(t)) => *x == string_to_number(t),
        _ => false,
    }
}

/// `SameValueZero` (used by `Array.prototype.includes`, hence by `intersect`).
pub(crate) fn same_value_zero(a: &Value, b: &Value) -> bool {
    use Value as V;
    match (a, b) {
        (V::Undefined, V::Undefined) | (V::Null, V::Null) => true,
        (V::Number(x), V::Number(y)) => x == y || (x.is_nan() && y.is_nan()),
        (V::String(x), V::String(y)) => x == y,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Array(x), V::Array(y)) => Arc::ptr_eq(x, y),
        (V::Object(x), V::Object(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

/// Compares strings by UTF-16 code units, as JavaScript does.
pub(crate) fn compare_utf16(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Abstract relational comparison `a < b`; `None` when a NaN is involved (`undefined`).
pub(crate) fn less_than(a: &Value, b: &Value) -> Option<bool> {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        return x.partial_cmp(y).map(|o| o == Ordering::Less);
    }
    let pa = to_primitive(a, Hint::Number);
    let pb = to_primitive(b, Hint::Number);
    if let (Prim::Str(x), Prim::Str(y)) = (&pa, &pb) {
        return Some(compare_utf16(x, y) == Ordering::Less);
    }
    let (x, y) = (prim_to_number(&pa), prim_to_number(&pb));
    x.partial_cmp(&y).map(|o| o == Ordering::Less)
}

/// JavaScript `+`: string concatenation if either primitive is a string, else addition.
pub(crate) fn add(a: &Value, b: &Value) -> Value {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        return Value::Number(x + y);
    }
    let pa = to_primitive(a, Hint::Default);
    let pb = to_primitive(b, Hint::Default);
    if matches!(pa, Prim::Str(_)) || matches!(pb, Prim::Str(_)) {
        let mut out = String::new();
        write_prim(&pa, &mut out);
        write_prim(&pb, &mut out);
        return Value::String(Arc::from(out));
    }
    Value::Number(prim_to_number(&pa) + prim_to_number(&pb))
}

/// `Math.pow`. V8 and SpiderMonkey both compute it with fdlibm's `e_pow.c` (not correctly
/// rounded, so the platform `pow` can differ in the last bit), which `libm` ports; JavaScript
/// also differs from C for a base of ±1 with a NaN or infinite exponent.
pub(crate) fn js_pow(base: f64, exponent: f64) -> f64 {
    if exponent.is_nan() {
        return f64::NAN;
    }
    if exponent == 0.0 {
        return 1.0;
    }
    if base.is_nan() || (base.abs() == 1.0 && exponent.is_infinite()) {
        return f64::NAN;
    }
    libm::pow(base, exponent)
}

/// The length of a string in UTF-16 code units (JavaScript's `length`).
pub(crate) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// A canonical array index (`"0"`, `"17"`, not `"01"` or `"-0"`).
pub(crate) fn array_index(key: &str) -> Option<usize> {
    crate::value::js_array_index(key).and_then(|n| usize::try_from(n).ok())
}

/// The UTF-16 code unit at `index` as a one-unit string (lone surrogates become U+FFFD).
pub(crate) fn string_unit_at(s: &str, index: usize) -> Option<Value> {
    if s.is_ascii() {
        return s.get(index..index + 1).map(Value::string);
    }
    let unit = s.encode_utf16().nth(index)?;
    Some(Value::String(Arc::from(String::from_utf16_lossy(&[unit]))))
}

/// The result of reading a property.
#[derive(Debug)]
pub(crate) enum Member<'a> {
    /// A value stored in the object.
    Ref(&'a Value),
    /// A computed value (`length`, a character of a string).
    Owned(Value),
}

/// `value[key]` for a value that is neither `null` nor `undefined`.
pub(crate) fn get_member<'a>(value: &'a Value, key: &str) -> Member<'a> {
    match value {
        Value::Object(map) => map
            .get(key)
            .map_or(Member::Owned(Value::Undefined), Member::Ref),
        Value::Array(items) => {
            if key == "length" {
                return Member::Owned(Value::Number(items.len() as f64));
            }
            match array_index(key).and_then(|i| items.get(i)) {
                Some(item) => Member::Ref(item),
                None => Member::Owned(Value::Undefined),
            }
        }
        Value::String(s) => {
            if key == "length" {
                return Member::Owned(Value::Number(utf16_len(s) as f64));
            }
            Member::Owned(
                array_index(key)
                    .and_then(|i| string_unit_at(s, i))
                    .unwrap_or(Value::Undefined),
            )
        }
        _ => Member::Owned(Value::Undefined),
    }
}

const DAY_MS: f64 = 86_400_000.0;

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month 1-12, day 1-31) to days since 1970-01-01; the day may overflow the month.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Date.prototype.toString()` with the time zone fixed to UTC.
pub(crate) fn date_to_string(ms: f64) -> String {
    if !ms.is_finite() {
        return "Invalid Date".to_owned();
    }
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (ms / DAY_MS).floor();
    let in_day = (ms - days * DAY_MS) as i64;
    let days = days as i64;
    let (y, m, d) = civil_from_days(days);
    let weekday = WEEKDAYS
        .get((days + 4).rem_euclid(7) as usize)
        .copied()
        .unwrap_or("");
    let month = MONTHS.get(m as usize - 1).copied().unwrap_or("");
    let year = if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    let secs = in_day / 1000;
    format!(
        "{weekday} {month} {d:02} {year} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::str_eq;

    #[test]
    fn str_eq_is_string_equality_at_every_length() {
        for len in 0..40 {
            let a = "x".repeat(len);
            assert!(str_eq(&a, &a.clone()));
            assert!(!str_eq(&a, &format!("{a}x")));
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'y';
                let b = String::from_utf8(b).unwrap();
                assert!(!str_eq(&a, &b), "{len} {at}");
            }
        }
        assert!(str_eq("é", "é") && !str_eq("é", "è"));
    }
}
