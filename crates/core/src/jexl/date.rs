//! `new Date(value)` for the `date` transform.
//!
//! Strings are parsed in the ECMAScript date-time format (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
//! optionally `THH:mm`, `:ss`, `.fraction`, and `Z` or `±HH:mm`), with the leniencies V8 and
//! SpiderMonkey share: a space or lowercase `t` as separator, any number of fraction digits,
//! `±HHmm` offsets, one-digit months and days, `/` between date parts, surrounding whitespace,
//! days past the end of the month rolling over, and `24:00`. Times without an offset are read
//! as UTC (the local time zone of a server). Anything else is an invalid date (NaN).

use crate::value::Value;

use super::lexer::is_js_space;
use super::ops::{self, Hint, Prim};

const MAX_TIME: f64 = 8.64e15;

/// `TimeClip`.
pub(crate) fn time_clip(t: f64) -> f64 {
    if !t.is_finite() || t.abs() > MAX_TIME {
        return f64::NAN;
    }
    t.trunc() + 0.0
}

/// `new Date(value)` as a time value (NaN for an invalid date).
pub(crate) fn new_date(value: &Value) -> f64 {
    match value {
        Value::Date(ms) => time_clip(*ms),
        other => match ops::to_primitive(other, Hint::Default) {
            Prim::Str(s) => parse_date(&s),
            Prim::Undefined => f64::NAN,
            Prim::Null => 0.0,
            Prim::Bool(b) => f64::from(u8::from(b)),
            Prim::Number(n) => time_clip(n),
        },
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Between `min` and `max` digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        let mut value: i64 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(d) if d.is_ascii_digit() => {
                    value = value * 10 + i64::from(d - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(value)
    }
}

/// Parses a date string; NaN when it is not a supported date-time form.
pub(crate) fn parse_date(text: &str) -> f64 {
    parse(text.trim_matches(is_js_space)).map_or(f64::NAN, time_clip)
}

fn parse(s: &str) -> Option<f64> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = match c.peek()? {
        sign @ (b'+' | b'-') => {
            c.i += 1;
            let y = c.digits(6, 6)?;
            if sign == b'-' && y == 0 {
                return None;
            }
            if sign == b'-' { -y } else { y }
        }
        _ => c.digits(4, 4)?,
    };
    let (mut month, mut day) = (1, 1);
    let sep = c.peek();
    if matches!(sep, Some(b'-' | b'/')) {
        c.i += 1;
        month = c.digits(1, 2)?;
        if sep.is_some_and(|s| c.eat(s)) {
            day = c.digits(1, 2)?;
        }
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut time_ms = 0i64;
    let mut offset_ms = 0i64;
    if matches!(c.peek(), Some(b'T' | b't' | b' ')) {
        c.i += 1;
        let hour = c.digits(2, 2)?;
        if !c.eat(b':') {
            return None;
        }
        let minute = c.digits(2, 2)?;
        let (mut second, mut millis) = (0, 0);
        if c.eat(b':') {
            second = c.digits(2, 2)?;
            if c.eat(b'.') {
                let start = c.i;
                let fraction = c.digits(1, usize::MAX)?;
                let len = c.i - start;
                // Keep the first three digits (milliseconds), truncating the rest.
                millis = if len >= 3 {
                    let digits = s.get(start..start + 3)?;
                    digits.parse::<i64>().ok()?
                } else {
                    fraction * 10i64.pow(3 - len as u32)
                };
            }
        }
        let valid = (hour < 24 && minute < 60 && second < 60)
            || (hour == 24 && minute == 0 && second == 0 && millis == 0);
        if !valid {
            return None;
        }
        time_ms = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        match c.peek() {
            Some(b'Z' | b'z') => c.i += 1,
            Some(sign @ (b'+' | b'-')) => {
                c.i += 1;
                let oh = c.digits(2, 2)?;
                c.eat(b':');
                let om = c.digits(2, 2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let off = (oh * 60 + om) * 60_000;
                offset_ms = if sign == b'+' { off } else { -off };
            }
            _ => {}
        }
    }
    if c.i != s.len() {
        return None;
    }
    let month = u32::try_from(month).ok()?;
    let day = u32::try_from(day).ok()?;
    let days = ops::days_from_civil(year, month, day);
    Some(days as f64 * 86_400_000.0 + time_ms as f64 - offset_ms as f64)
}
