//! Version comparison: the Mozilla toolkit comparator and CloudBees' padded semver.
//!
//! INTERFACE CONTRACT:
//! - `compare_toolkit(a: &str, b: &str) -> std::cmp::Ordering` (C++ `nsVersionComparator` semantics).
//! - `compare_cloudbees_semver(a: &str, b: &str) -> Option<std::cmp::Ordering>` (`None` when unparseable).
//!
//! Both are total over arbitrary text and never panic.

use std::cmp::Ordering;

/// Mozilla toolkit version comparison (`Services.vc.compare`, the `versionCompare` transform).
///
/// Follows the C++ `nsVersionComparator`, which Firefox desktop uses, not the Rust
/// `firefox-versioning` port (which rejects large numbers and does not read signs). A version is
/// split on `.` (a trailing `.` ends the list, an empty part is `0`, missing parts compare as
/// `0`); each part is `<numA><strB><numC><extraD>`:
/// - `numA` and `numC` are C `strtol` in base 10: leading whitespace and a sign are accepted, a
///   value outside the `i32` range reads as `0`;
/// - a part that is exactly `*` has `numA = i32::MAX`;
/// - a `+` right after `numA` means `numA + 1` with `strB = "pre"` (`1.0+ == 1.1pre`), and the
///   rest of the part is ignored;
/// - otherwise `strB` runs up to the first of `0-9 + -`, then `numC`, then `extraD` is the rest.
///
/// `numA`, `strB`, `numC`, `extraD` are compared in turn; for the two strings a present string
/// sorts *before* an absent one (`1.0a1 < 1.0`), and present strings compare bytewise (unsigned).
///
/// The C++ works on NUL-terminated bytes, so text after a NUL character is ignored here too.
/// Non-ASCII text is compared as its UTF-8 bytes.
///
/// Parts are read lazily, so `128.0.1` against `100.!` stops after the first part. To compare
/// many versions against one fixed version, parse that one once with [`ToolkitVersion`].
pub fn compare_toolkit(a: &str, b: &str) -> Ordering {
    let mut parts_a = Parts::new(a);
    let mut parts_b = Parts::new(b);
    loop {
        let part_a = parts_a.next().unwrap_or_default();
        let part_b = parts_b.next().unwrap_or_default();
        let ordering = part_a.compare(&part_b);
        if ordering != Ordering::Equal {
            return ordering;
        }
        if parts_a.is_done() && parts_b.is_done() {
            return Ordering::Equal;
        }
    }
}

/// A toolkit version parsed once, to be compared with [`compare_toolkit`] semantics against
/// many others (e.g. the literal argument of a `versionCompare` filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolkitVersion {
    /// The dot-separated parts; never empty (the empty version has one zero part).
    parts: Vec<OwnedPart>,
}

impl ToolkitVersion {
    /// Parses `text` as [`compare_toolkit`] reads it. Every text is a version.
    pub fn parse(text: &str) -> ToolkitVersion {
        let mut parts = Parts::new(text);
        let mut owned = Vec::new();
        while let Some(part) = parts.next() {
            owned.push(OwnedPart::from(part));
        }
        ToolkitVersion { parts: owned }
    }

    /// `compare_toolkit(self, other)` for the text this version was parsed from.
    pub fn compare(&self, other: &ToolkitVersion) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        (0..len)
            .map(|idx| self.part(idx).compare(&other.part(idx)))
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }

    /// Part `idx`, or the zero part past the end.
    fn part(&self, idx: usize) -> ToolkitPart<'_> {
        self.parts
            .get(idx)
            .map_or_else(ToolkitPart::default, OwnedPart::view)
    }

    /// `compare_toolkit(text, self)`, reading only as much of `text` as the answer needs.
    pub fn compare_text(&self, text: &str) -> Ordering {
        let mut parts = Parts::new(text);
        let mut idx = 0;
        loop {
            let part = parts.next().unwrap_or_default();
            let ordering = part.compare(&self.part(idx));
            if ordering != Ordering::Equal {
                return ordering;
            }
            idx += 1;
            if parts.is_done() && idx >= self.parts.len() {
                return Ordering::Equal;
            }
        }
    }
}

/// The parts of a toolkit version, read one at a time.
struct Parts<'a> {
    /// What follows the last part read; `None` once the version is exhausted.
    rest: Option<&'a [u8]>,
}

impl<'a> Parts<'a> {
    fn new(text: &'a str) -> Parts<'a> {
        Parts {
            rest: Some(text.as_bytes()),
        }
    }

    /// Whether every part has been read.
    fn is_done(&self) -> bool {
        self.rest.is_none()
    }

    /// The next part, `None` once exhausted (callers compare a default part then).
    fn next(&mut self) -> Option<ToolkitPart<'a>> {
        let text = self.rest?;
        // The usual part is a plain number (`128` in `128.0.1`): read it in one pass. Up to
        // nine digits always fit in an `i32`; anything else takes the general path.
        let mut num_a = 0i32;
        let mut digits = 0;
        while let Some(&byte) = text.get(digits)
            && byte.is_ascii_digit()
            && digits < 9
        {
            num_a = num_a * 10 + i32::from(byte - b'0');
            digits += 1;
        }
        if digits > 0 {
            let after = match text.get(digits) {
                None => Some(&[][..]),
                Some(b'.') => text.get(digits + 1..),
                Some(_) => None,
            };
            if let Some(after) = after {
                // A trailing `.` ends the list. (A NUL later on is seen by the general path;
                // an empty part read there is the zero part, the same as none.)
                self.rest = (!after.is_empty()).then_some(after);
                return Some(ToolkitPart {
                    num_a,
                    ..ToolkitPart::default()
                });
            }
        }
        // The C++ stops at a NUL byte.
        let text = match memchr_nul(text) {
            Some(end) => text.get(..end).unwrap_or(text),
            None => text,
        };
        let (part, rest) = match text.iter().position(|&b| b == b'.') {
            Some(dot) => {
                let (part, after) = text.split_at(dot);
                let after = after.get(1..).unwrap_or_default();
                // A trailing `.` ends the list.
                (part, (!after.is_empty()).then_some(after))
            }
            None => (text, None),
        };
        self.rest = rest;
        Some(parse_toolkit_part(part))
    }
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// One dot-separated part of a toolkit version.
#[derive(Debug, Default, Clone, Copy)]
struct ToolkitPart<'a> {
    num_a: i32,
    str_b: Option<&'a [u8]>,
    num_c: i32,
    extra_d: Option<&'a [u8]>,
}

impl ToolkitPart<'_> {
    fn compare(&self, other: &ToolkitPart<'_>) -> Ordering {
        self.num_a
            .cmp(&other.num_a)
            .then_with(|| compare_present_first(self.str_b, other.str_b))
            .then_with(|| self.num_c.cmp(&other.num_c))
            .then_with(|| compare_present_first(self.extra_d, other.extra_d))
    }
}

/// A [`ToolkitPart`] that owns its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedPart {
    num_a: i32,
    str_b: Option<Box<[u8]>>,
    num_c: i32,
    extra_d: Option<Box<[u8]>>,
}

impl From<ToolkitPart<'_>> for OwnedPart {
    fn from(part: ToolkitPart<'_>) -> OwnedPart {
        OwnedPart {
            num_a: part.num_a,
            str_b: part.str_b.map(Box::from),
            num_c: part.num_c,
            extra_d: part.extra_d.map(Box::from),
        }
    }
}

impl OwnedPart {
    fn view(&self) -> ToolkitPart<'_> {
        ToolkitPart {
            num_a: self.num_a,
            str_b: self.str_b.as_deref(),
            num_c: self.num_c,
            extra_d: self.extra_d.as_deref(),
        }
    }
}

/// "Any string is before no string".
fn compare_present_first(a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.cmp(b),
    }
}

fn parse_toolkit_part(part: &[u8]) -> ToolkitPart<'_> {
    let mut result = ToolkitPart::default();
    let after_a: &[u8] = if part == b"*" {
        result.num_a = i32::MAX;
        b""
    } else {
        let (value, consumed) = strtol(part);
        result.num_a = value;
        part.get(consumed..).unwrap_or_default()
    };
    if after_a.is_empty() {
        return result;
    }
    if after_a.first() == Some(&b'+') {
        // C++ increments an int32 here; i32::MAX + 1 wraps in practice.
        result.num_a = result.num_a.wrapping_add(1);
        result.str_b = Some(b"pre");
        return result;
    }
    match after_a
        .iter()
        .position(|&b| b.is_ascii_digit() || b == b'+' || b == b'-')
    {
        None => result.str_b = Some(after_a),
        Some(num_start) => {
            let (str_b, num_text) = after_a.split_at(num_start);
            result.str_b = Some(str_b);
            let (value, consumed) = strtol(num_text);
            result.num_c = value;
            let extra = num_text.get(consumed..).unwrap_or_default();
            result.extra_d = (!extra.is_empty()).then_some(extra);
        }
    }
    result
}

/// C `strtol(text, &end, 10)` narrowed to `i32` as `nsVersionComparator` does: returns the value
/// (0 when out of the `i32` range) and the number of bytes consumed (0 when no digits were found,
/// in which case whitespace and sign are not consumed either).
fn strtol(text: &[u8]) -> (i32, usize) {
    let mut index = 0;
    while matches!(
        text.get(index),
        Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    ) {
        index += 1;
    }
    let negative = match text.get(index) {
        Some(b'-') => {
            index += 1;
            true
        }
        Some(b'+') => {
            index += 1;
            false
        }
        _ => false,
    };
    let digits_start = index;
    // Accumulate with a cap: anything past the i32 range reads as 0 anyway.
    let mut magnitude: i64 = 0;
    while let Some(&digit) = text.get(index) {
        if !digit.is_ascii_digit() {
            break;
        }
        magnitude = (magnitude * 10 + i64::from(digit - b'0')).min(i64::from(u32::MAX));
        index += 1;
    }
    if index == digits_start {
        return (0, 0);
    }
    let value = if negative { -magnitude } else { magnitude };
    (i32::try_from(value).unwrap_or(0), index)
}

/// CloudBees (rox) semver comparison; `None` when either side is not a version.
///
/// rox compares with HashiCorp `go-version`, after padding so that when two versions differ only
/// in their number of numeric segments the one with *fewer* segments is lower: `1.1 < 1.1.0`,
/// `1.0.0 ≠ 1`, but `1.2 > 1.1.5`.
///
/// Accepted form (go-version's): an optional `v`, numeric segments `N(.N)*` (each fitting in
/// `u64`), an optional pre-release (`-` then dot-separated identifiers of `[0-9A-Za-z~-]`; the
/// `-` may be omitted when the first identifier starts with a letter), an optional build
/// metadata `+…` that is ignored. No surrounding whitespace.
///
/// Order: numeric segments (zero-padded to equal length), then pre-release (a version with one is
/// lower than without; two are compared by SemVer 2.0 precedence), then segment count. rox pads
/// the *raw* strings, which gives odd results once a pre-release is present (it would call
/// `1.0` and `1.0.0-beta` equal); comparing the pre-release first avoids that.
pub fn compare_cloudbees_semver(a: &str, b: &str) -> Option<Ordering> {
    let a = SemVer::parse(a)?;
    let b = SemVer::parse(b)?;
    let width = a.segments.len().max(b.segments.len());
    let padded = |segments: &[u64]| {
        let mut padded = segments.to_vec();
        padded.resize(width, 0);
        padded
    };
    Some(
        padded(&a.segments)
            .cmp(&padded(&b.segments))
            .then_with(|| compare_prerelease(a.prerelease, b.prerelease))
            .then_with(|| a.segments.len().cmp(&b.segments.len())),
    )
}

struct SemVer<'a> {
    segments: Vec<u64>,
    prerelease: Option<&'a str>,
}

impl<'a> SemVer<'a> {
    fn parse(text: &'a str) -> Option<SemVer<'a>> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, metadata) = match text.split_once('+') {
            Some((text, metadata)) => (text, Some(metadata)),
            None => (text, None),
        };
        if let Some(metadata) = metadata
            && !is_identifier_list(metadata)
        {
            return None;
        }
        // Numeric segments end at the first character that is neither a digit nor a dot
        // followed by a digit.
        let bytes = text.as_bytes();
        let mut end = 0;
        let mut segments = Vec::new();
        loop {
            let digits = bytes
                .get(end..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                return None;
            }
            segments.push(text.get(end..end + digits)?.parse::<u64>().ok()?);
            end += digits;
            let next_is_segment =
                bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            if !next_is_segment {
                break;
            }
            end += 1;
        }
        let rest = text.get(end..)?;
        let prerelease = if rest.is_empty() {
            None
        } else if let Some(tag) = rest.strip_prefix('-') {
            Some(tag)
        } else if rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '~') {
            Some(rest)
        } else {
            return None;
        };
        if let Some(tag) = prerelease
            && !is_identifier_list(tag)
        {
            return None;
        }
        Some(SemVer {
            segments,
            prerelease,
        })
    }
}

fn is_identifier_list(text: &str) -> bool {
    text.split('.').all(|identifier| {
        !identifier.is_empty()
            && identifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'~')
    })
}

/// SemVer 2.0 pre-release precedence; no pre-release sorts after any pre-release.
fn compare_prerelease(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let mut left = a.split('.');
            let mut right = b.split('.');
            loop {
                match (left.next(), right.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(x), Some(y)) => {
                        let ordering = compare_identifier(x, y);
                        if ordering != Ordering::Equal {
                            return ordering;
                        }
                    }
                }
            }
        }
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        // Numeric identifiers compare by value; comparing the digit strings without leading
        // zeros by length then text avoids overflow on long runs of digits.
        (true, true) => {
            let a = a.trim_start_matches('0');
            let b = b.trim_start_matches('0');
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The comparator as first written (eager, part by part), kept as an oracle.
    mod reference {
        use std::cmp::Ordering;

        /// Mozilla toolkit version comparison (`Services.vc.compare`, the `versionCompare` transform).
        ///
        /// Follows the C++ `nsVersionComparator`, which Firefox desktop uses, not the Rust
        /// `firefox-versioning` port (which rejects large numbers and does not read signs). A version is
        /// split on `.` (a trailing `.` ends the list, an empty part is `0`, missing parts compare as
        /// `0`); each part is `<numA><strB><numC><extraD>`:
        /// - `numA` and `numC` are C `strtol` in base 10: leading whitespace and a sign are accepted, a
        ///   value outside the `i32` range reads as `0`;
        /// - a part that is exactly `*` has `numA = i32::MAX`;
        /// - a `+` right after `numA` means `numA + 1` with `strB = "pre"` (`1.0+ == 1.1pre`), and the
        ///   rest of the part is ignored;
        /// - otherwise `strB` runs up to the first of `0-9 + -`, then `numC`, then `extraD` is the rest.
        ///
        /// `numA`, `strB`, `numC`, `extraD` are compared in turn; for the two strings a present string
        /// sorts *before* an absent one (`1.0a1 < 1.0`), and present strings compare bytewise (unsigned).
        ///
        /// The C++ works on NUL-terminated bytes, so text after a NUL character is ignored here too.
        /// Non-ASCII text is compared as its UTF-8 bytes.
        pub(super) fn compare_toolkit(a: &str, b: &str) -> Ordering {
            let mut rest_a = Some(until_nul(a.as_bytes()));
            let mut rest_b = Some(until_nul(b.as_bytes()));
            loop {
                let (part_a, next_a) = next_part(rest_a);
                let (part_b, next_b) = next_part(rest_b);
                let ordering = part_a.compare(&part_b);
                if ordering != Ordering::Equal {
                    return ordering;
                }
                if next_a.is_none() && next_b.is_none() {
                    return Ordering::Equal;
                }
                rest_a = next_a;
                rest_b = next_b;
            }
        }

        fn until_nul(bytes: &[u8]) -> &[u8] {
            match bytes.iter().position(|&b| b == 0) {
                Some(end) => bytes.get(..end).unwrap_or(bytes),
                None => bytes,
            }
        }

        /// One dot-separated part of a toolkit version.
        #[derive(Debug, Default)]
        struct ToolkitPart<'a> {
            num_a: i32,
            str_b: Option<&'a [u8]>,
            num_c: i32,
            extra_d: Option<&'a [u8]>,
        }

        impl ToolkitPart<'_> {
            fn compare(&self, other: &ToolkitPart<'_>) -> Ordering {
                self.num_a
                    .cmp(&other.num_a)
                    .then_with(|| compare_present_first(self.str_b, other.str_b))
                    .then_with(|| self.num_c.cmp(&other.num_c))
                    .then_with(|| compare_present_first(self.extra_d, other.extra_d))
            }
        }

        /// "Any string is before no string".
        fn compare_present_first(a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
            match (a, b) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            }
        }

        /// Parses the next part and returns the text after its dot, if any remains. A `None` input is an
        /// exhausted version, which compares as a default part.
        fn next_part(rest: Option<&[u8]>) -> (ToolkitPart<'_>, Option<&[u8]>) {
            let Some(text) = rest else {
                return (ToolkitPart::default(), None);
            };
            let (part, next) = match text.iter().position(|&b| b == b'.') {
                Some(dot) => {
                    let (part, after) = text.split_at(dot);
                    let after = after.get(1..).unwrap_or_default();
                    (part, (!after.is_empty()).then_some(after))
                }
                None => (text, None),
            };
            (parse_toolkit_part(part), next)
        }

        fn parse_toolkit_part(part: &[u8]) -> ToolkitPart<'_> {
            let mut result = ToolkitPart::default();
            let after_a: &[u8] = if part == b"*" {
                result.num_a = i32::MAX;
                b""
            } else {
                let (value, consumed) = strtol(part);
                result.num_a = value;
                part.get(consumed..).unwrap_or_default()
            };
            if after_a.is_empty() {
                return result;
            }
            if after_a.first() == Some(&b'+') {
                // C++ increments an int32 here; i32::MAX + 1 wraps in practice.
                result.num_a = result.num_a.wrapping_add(1);
                result.str_b = Some(b"pre");
                return result;
            }
            match after_a
                .iter()
                .position(|&b| b.is_ascii_digit() || b == b'+' || b == b'-')
            {
                None => result.str_b = Some(after_a),
                Some(num_start) => {
                    let (str_b, num_text) = after_a.split_at(num_start);
                    result.str_b = Some(str_b);
                    let (value, consumed) = strtol(num_text);
                    result.num_c = value;
                    let extra = num_text.get(consumed..).unwrap_or_default();
                    result.extra_d = (!extra.is_empty()).then_some(extra);
                }
            }
            result
        }

        /// C `strtol(text, &end, 10)` narrowed to `i32` as `nsVersionComparator` does: returns the value
        /// (0 when out of the `i32` range) and the number of bytes consumed (0 when no digits were found,
        /// in which case whitespace and sign are not consumed either).
        fn strtol(text: &[u8]) -> (i32, usize) {
            let mut index = text
                .iter()
                .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
                .count();
            let negative = match text.get(index) {
                Some(b'-') => {
                    index += 1;
                    true
                }
                Some(b'+') => {
                    index += 1;
                    false
                }
                _ => false,
            };
            let digits = text
                .get(index..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                return (0, 0);
            }
            // Accumulate with a cap: anything past the i32 range reads as 0 anyway.
            let mut magnitude: i64 = 0;
            for &digit in text.get(index..index + digits).unwrap_or_default() {
                magnitude = (magnitude * 10 + i64::from(digit - b'0')).min(i64::from(u32::MAX));
            }
            let value = if negative { -magnitude } else { magnitude };
            (i32::try_from(value).unwrap_or(0), index + digits)
        }
    }

    fn sign(ordering: Ordering) -> i8 {
        match ordering {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }
    }

    #[test]
    fn toolkit_strictly_ascending_list() {
        let list = [
            "pre",
            "8321499136",
            "0.9",
            "0.9.1",
            "1.0pre1",
            "1.0pre2",
            "1.0",
            "1.1pre",
            "1.1pre1a",
            "1.1pre1",
            "1.1pre10a",
            "1.1pre10",
            "1.1",
            "1.1.0.1",
            "1.1.1",
            "1.1.*",
            "1.*",
            "2.0",
            "2.1",
            "3.0.-1",
            "3.0",
        ];
        for (i, a) in list.iter().enumerate() {
            for (j, b) in list.iter().enumerate() {
                assert_eq!(compare_toolkit(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn toolkit_equal_sets() {
        let sets: [&[&str]; 2] = [&["1.1pre", "1.1pre0", "1.0+"], &["1.0", "1.0.0", "1.0.0.0"]];
        for set in sets {
            for a in set {
                for b in set {
                    assert_eq!(compare_toolkit(a, b), Ordering::Equal, "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn toolkit_transform_vectors() {
        // (a, b, allowed signs of compare(a, b))
        let cases: &[(&str, &str, &[i8])] = &[
            ("1.0.0", "1", &[0]),
            ("1.0.0", "1.1", &[-1]),
            ("1.0.0", "0.1", &[1]),
            ("111.0.1", "110", &[0, 1]),
            ("111.0.1", "111", &[0, 1]),
            ("111.0.1", "111.0.1", &[0, 1]),
            ("111.0.1", "111.0.2", &[-1]),
            ("111.0.1", "112", &[-1]),
            ("113.0a1", "113", &[-1]),
            ("113.0a1", "113.0a1", &[0, 1]),
            ("113.0a1", "113.0a0", &[1]),
            ("113", "113.0a0", &[1]),
            ("114", "113.0a0", &[1]),
            ("112", "113.0a0", &[-1, 0]),
        ];
        for (a, b, allowed) in cases {
            let got = sign(compare_toolkit(a, b));
            assert!(allowed.contains(&got), "{a} vs {b}: {got}");
        }
    }

    #[test]
    fn toolkit_extra_vectors() {
        let cases = [
            ("28.0a1", "28.0", -1),
            ("28.0a1", "28.0a2", -1),
            ("28.0a2", "28.0b1", -1),
            ("28.0b1", "28.0", -1),
            ("28.0", "28.0.1", -1),
            ("28.0esr", "28.0", -1),
            ("3.6.28", "3.6.*", -1),
            ("3.6.*", "3.7", -1),
            ("3.6", "3.6.*", -1),
            ("93.!", "93.0a1", -1),
            ("93.!", "93", -1),
            ("93.!", "93.1", -1),
            ("93.!", "92.9", 1),
            ("93.0b5", "93.!", 1),
            ("93.*", "94.0a1", -1),
            ("72.0b5", "72.0", -1),
            ("75.0.1", "75.0", 1),
            ("12+", "13pre", 0),
            ("1.0.0-beta", "1.0.0", -1),
            ("2147483647", "2147483648", 1),
            ("", "0", 0),
            ("1..2", "1.0.2", 0),
            // Where the Rust firefox-versioning port disagrees, we follow the C++.
            ("93.!", "93.0-beta", 1),
            ("1.0-beta", "1.0a1", -1),
            ("3.0.-1", "3.0.-2", 1),
            // strtol details: whitespace and sign, a trailing dot, `+` ignores the rest.
            (" 5", "5", 0),
            ("+5", "5", 0),
            ("1.", "1", 0),
            ("1+5", "2pre", 0),
            ("1.0\u{0}junk", "1.0", 0),
        ];
        for (a, b, expected) in cases {
            assert_eq!(sign(compare_toolkit(a, b)), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn toolkit_manifest_min_and_max_version() {
        // Experiments.jsm with app version 1.0: minVersion ≤ app, app ≤ maxVersion.
        let app = "1.0";
        for (min, applicable) in [
            ("1.0.1", false),
            ("1.0b1", true),
            ("1.0", true),
            ("0.9", true),
        ] {
            assert_eq!(
                compare_toolkit(app, min) != Ordering::Less,
                applicable,
                "min {min}"
            );
        }
        for (max, applicable) in [
            ("0.1", false),
            ("0.9.9", false),
            ("1.0b1", false),
            ("1.0", true),
            ("1.7pre", true),
        ] {
            assert_eq!(
                compare_toolkit(app, max) != Ordering::Greater,
                applicable,
                "max {max}"
            );
        }
    }

    #[test]
    fn cloudbees_semver_golden_rows() {
        use Ordering::*;
        let lt = |a, b| compare_cloudbees_semver(a, b) == Some(Less);
        let gt = |a, b| compare_cloudbees_semver(a, b) == Some(Greater);
        let eq = |a, b| compare_cloudbees_semver(a, b) == Some(Equal);
        let gte = |a, b| matches!(compare_cloudbees_semver(a, b), Some(Greater | Equal));
        let ne = |a, b| matches!(compare_cloudbees_semver(a, b), Some(Less | Greater));
        assert!(!lt("1.1.0", "1.1"));
        assert!(gte("1.1.0", "1.1"));
        assert!(!eq("1.0.0", "1"));
        assert!(ne("1.0.1", "1.0.0.1"));
        assert!(lt("1.1", "1.2"));
        assert!(!gt("1.1.1", "1.2"));
        assert!(gt("1.2.1", "1.2"));
        // "Bad Versions" target group: semver-eq 4.6.2 or 4.5.0.
        let in_bad_versions = |app| eq(app, "4.6.2") || eq(app, "4.5.0");
        assert!(in_bad_versions("4.5.0"));
        assert!(!in_bad_versions("4.5"));
    }

    #[test]
    fn cloudbees_semver_vectors() {
        let cases = [
            ("1.1", "1.1.0", Some(-1)),
            ("1.2", "1.1.5", Some(1)),
            ("1.0.0", "1", Some(1)),
            ("1.10", "1.9", Some(1)),
            ("v1.2.3", "1.2.3", Some(0)),
            ("1.2.3+build.5", "1.2.3", Some(0)),
            ("1.0.0-beta", "1.0.0", Some(-1)),
            ("1.0.0-alpha", "1.0.0-beta", Some(-1)),
            ("1.0.0-alpha", "1.0.0-alpha.1", Some(-1)),
            ("1.0.0-alpha.2", "1.0.0-alpha.10", Some(-1)),
            ("1.0.0-1", "1.0.0-alpha", Some(-1)),
            ("1.0beta", "1.0-beta", Some(0)),
            ("1.0", "1.0.0-beta", Some(1)),
            ("100.0.4", "100.0.5", Some(-1)),
            ("", "1", None),
            ("1.", "1", None),
            ("1..2", "1.2", None),
            (" 1.0", "1.0", None),
            ("abc", "1", None),
            ("1.0-", "1.0", None),
            ("1.0+", "1.0", None),
            ("99999999999999999999", "1", None),
        ];
        for (a, b, expected) in cases {
            assert_eq!(
                compare_cloudbees_semver(a, b).map(sign),
                expected,
                "{a} vs {b}"
            );
        }
    }

    /// Texts that exercise every branch of the part grammar.
    const TOOLKIT_SAMPLES: &[&str] = &[
        "",
        ".",
        "..",
        "1",
        "1.",
        "1..2",
        "1.0",
        "1.0.0",
        "1.0a1",
        "1.0pre1",
        "1.0+",
        "1.1pre",
        "*",
        "1.*",
        "100.!",
        "128.0.1",
        "128.0.1a",
        " 7",
        "-3",
        "+4",
        "1.-1",
        "2147483647",
        "2147483648",
        "99999999999",
        "1.0b2c3",
        "1.0beta",
        "1.0 ",
        "1\u{0}9",
        "\u{0}",
        "é.1",
        "1.2.3.4.5",
        "0.0.0.0",
        "1.x+y",
        "1.\u{0}",
        "1.2\u{0}.3",
        "1\u{0}.2",
        "0.\u{0}1",
        "00012.3",
        "123456789.1",
        "1234567890.1",
    ];

    #[test]
    fn toolkit_matches_the_reference_and_the_parsed_form() {
        for a in TOOLKIT_SAMPLES {
            let parsed_a = ToolkitVersion::parse(a);
            for b in TOOLKIT_SAMPLES {
                let expected = reference::compare_toolkit(a, b);
                assert_eq!(compare_toolkit(a, b), expected, "{a:?} vs {b:?}");
                let parsed_b = ToolkitVersion::parse(b);
                assert_eq!(parsed_a.compare(&parsed_b), expected, "{a:?} vs {b:?}");
                assert_eq!(parsed_b.compare_text(a), expected, "{a:?} vs {b:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn toolkit_never_panics_and_is_antisymmetric(a in any::<String>(), b in any::<String>()) {
            prop_assert_eq!(compare_toolkit(&a, &b), compare_toolkit(&b, &a).reverse());
        }

        #[test]
        fn toolkit_antisymmetric_on_version_like_text(
            a in "[0-9a-z.*+! -]{0,12}",
            b in "[0-9a-z.*+! -]{0,12}",
        ) {
            prop_assert_eq!(compare_toolkit(&a, &b), compare_toolkit(&b, &a).reverse());
            prop_assert_eq!(compare_toolkit(&a, &a), Ordering::Equal);
        }

        #[test]
        fn toolkit_matches_the_reference(
            a in "[0-9a-z.*+! \\-]{0,14}",
            b in prop_oneof![Just(String::new()), any::<String>(), "[0-9a-z.*+! \\-]{0,14}"],
        ) {
            let expected = reference::compare_toolkit(&a, &b);
            prop_assert_eq!(compare_toolkit(&a, &b), expected);
            prop_assert_eq!(ToolkitVersion::parse(&b).compare_text(&a), expected);
            prop_assert_eq!(
                ToolkitVersion::parse(&a).compare(&ToolkitVersion::parse(&b)),
                expected
            );
        }

        #[test]
        fn cloudbees_never_panics_and_is_antisymmetric(
            a in "v?[0-9.]{0,8}(-[a-z0-9.]{0,5})?(\\+[a-z0-9]{0,3})?",
            b in any::<String>(),
        ) {
            let forward = compare_cloudbees_semver(&a, &b);
            let backward = compare_cloudbees_semver(&b, &a);
            prop_assert_eq!(forward, backward.map(Ordering::reverse));
            let forward = compare_cloudbees_semver(&a, &a);
            prop_assert!(forward.is_none() || forward == Some(Ordering::Equal));
        }
    }
}
