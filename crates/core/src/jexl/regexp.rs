//! JavaScript regular expressions for `regExpMatch`: `new RegExp(pattern, flags)` and
//! `String.prototype.match`, on the `regress` engine (ECMAScript syntax and backtracking
//! semantics: backreferences, lookaround, named groups, lazy quantifiers).
//!
//! JavaScript strings are UTF-16. With the `u` or `v` flag a pattern and its subject are
//! sequences of code points, and `regress` reads them as such. Without it they are sequences
//! of UTF-16 code units (`.` matches half of an emoji) with the Annex B grammar, and a few
//! corners of `regress` differ from JavaScript there (`\u{61}` is `u` repeated 61 times,
//! `\uD83D\uDE00` is two units, and case-insensitive matching compares `Canonicalize`, the
//! single-unit upper case, *except* that a non-ASCII unit never matches an ASCII one: `ſ` is
//! not `s`, and the Kelvin sign is not `k`). So a pattern without `u` is first rewritten by
//! [`Rewriter`]: every escape that denotes a character becomes that code unit, every class
//! becomes its explicit set of units, and with `i` both sides are canonicalized here (pattern
//! units and classes when compiling, the subject when matching) and `regress` matches exactly.
//!
//! The grammar is ES2024's, like the differential oracle's (Node 20): the ES2025 additions
//! (pattern modifiers `(?i:…)` and duplicate group names) are syntax errors.
//!
//! `regress` backtracks, as JavaScript engines do, so a pathological pattern can take
//! exponential time here as in Firefox. Its parser bounds nesting (255 groups deep), so deep
//! patterns are errors rather than stack overflows.

use std::borrow::Cow;
use std::ops::Range;

use crate::value::Value;

/// A compiled JavaScript regular expression.
#[derive(Debug, Clone)]
pub(crate) struct JsRegex {
    regex: regress::Regex,
    global: bool,
    sticky: bool,
    mode: Mode,
}

/// How the subject is presented to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `u` or `v`: code points, so UTF-8 text as it is.
    CodePoints,
    /// UTF-16 code units.
    Units,
    /// UTF-16 code units, canonicalized (`i` without `u`).
    FoldedUnits,
}

#[derive(Default)]
struct Flags {
    global: bool,
    sticky: bool,
    engine: regress::Flags,
}

/// The flags of `new RegExp(pattern, flags)`: each at most once, from `dgimsuvy`, and not both
/// `u` and `v`; anything else is a `SyntaxError`.
fn parse_flags(flags: &str) -> Result<Flags, String> {
    let invalid = || format!("invalid regular expression flags '{flags}'");
    let mut f = Flags::default();
    let mut seen = [false; 8];
    for c in flags.chars() {
        let slot = "dgimsuvy".find(c).ok_or_else(invalid)?;
        match seen.get_mut(slot) {
            Some(done) if !*done => *done = true,
            _ => return Err(invalid()),
        }
        match c {
            'g' => f.global = true,
            'i' => f.engine.icase = true,
            'm' => f.engine.multiline = true,
            's' => f.engine.dot_all = true,
            'u' => f.engine.unicode = true,
            // `regress` applies the `u` rules only with `unicode` set; `v` includes them.
            'v' => {
                f.engine.unicode_sets = true;
                f.engine.unicode = true;
            }
            'y' => f.sticky = true,
            // `d` only adds match indices, which `match` results do not show.
            _ => {}
        }
    }
    if seen.get(5) == Some(&true) && seen.get(6) == Some(&true) {
        return Err(invalid());
    }
    Ok(f)
}

const fn unit(c: char) -> u16 {
    c as u16
}

/// JavaScript's `Canonicalize(ch)` for case-insensitive matching without `u`: the upper case
/// of the unit if that is a single unit, unless it would turn a non-ASCII unit into ASCII.
fn canonicalize(u: u16) -> u16 {
    if u < 0x80 {
        return u16::from((u as u8).to_ascii_uppercase());
    }
    let Some(c) = char::from_u32(u32::from(u)) else {
        return u; // a surrogate
    };
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(single), None) => match u16::try_from(u32::from(single)) {
            Ok(cu) if cu >= 0x80 => cu,
            _ => u,
        },
        _ => u,
    }
}

/// JavaScript's WhiteSpace and LineTerminator (`\s`), the same set as the lexer's
/// [`is_js_space`](super::lexer::is_js_space).
const JS_SPACE_RANGES: &[(u16, u16)] = &[
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
];

/// A set of UTF-16 code units (a character class without `u`).
struct UnitSet(Vec<u64>);

impl UnitSet {
    fn new() -> UnitSet {
        UnitSet(vec![0; 1024])
    }

    fn insert(&mut self, u: u16) {
        if let Some(word) = self.0.get_mut(usize::from(u) / 64) {
            *word |= 1 << (u % 64);
        }
    }

    fn insert_range(&mut self, lo: u16, hi: u16) {
        for u in lo..=hi {
            self.insert(u);
        }
    }

    fn union(&mut self, other: &UnitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    fn complement(mut self) -> UnitSet {
        for word in &mut self.0 {
            *word = !*word;
        }
        self
    }

    fn units(&self) -> impl Iterator<Item = u16> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, word)| **word != 0)
            .flat_map(|(i, &word)| {
                (0..64u16)
                    .filter(move |bit| word & (1 << bit) != 0)
                    .filter_map(move |bit| u16::try_from(i * 64).ok().map(|base| base + bit))
            })
    }

    /// The set of canonicalized members.
    fn canonicalized(&self) -> UnitSet {
        let mut out = UnitSet::new();
        for u in self.units() {
            out.insert(canonicalize(u));
        }
        out
    }

    /// `\d \D \s \S \w \W`.
    fn class_escape(letter: u16) -> UnitSet {
        let mut set = UnitSet::new();
        match letter | 0x20 {
            0x64 => set.insert_range(unit('0'), unit('9')),
            0x73 => {
                for &(lo, hi) in JS_SPACE_RANGES {
                    set.insert_range(lo, hi);
                }
            }
            _ => {
                set.insert_range(unit('a'), unit('z'));
                set.insert_range(unit('A'), unit('Z'));
                set.insert_range(unit('0'), unit('9'));
                set.insert(unit('_'));
            }
        }
        if letter < 0x60 { set.complement() } else { set }
    }
}

/// What `scan` learns about a pattern before it is read for real.
struct Scan {
    /// Capturing groups, which decide whether `\2` is a backreference or an octal escape.
    capturing: usize,
    /// Whether there is a named group, which makes `\k` a named backreference.
    named: bool,
}

/// Counts groups and rejects what ES2024 rejects and `regress` accepts (modifiers, duplicate
/// group names). `nested_classes` is the `v` flag.
fn scan(units: &[u16], nested_classes: bool) -> Result<Scan, String> {
    let mut result = Scan {
        capturing: 0,
        named: false,
    };
    let mut names: Vec<&[u16]> = Vec::new();
    let mut classes = 0usize;
    let mut i = 0;
    let at = |k: usize| units.get(k).copied();
    while let Some(u) = at(i) {
        i += 1;
        if u == unit('\\') {
            i += 1;
        } else if u == unit('[') && (classes == 0 || nested_classes) {
            classes += 1;
        } else if u == unit(']') && classes > 0 {
            classes -= 1;
        } else if u == unit('(') && classes == 0 {
            if at(i) != Some(unit('?')) {
                result.capturing += 1;
            } else {
                match (at(i + 1), at(i + 2)) {
                    (Some(c), _) if c == unit(':') || c == unit('=') || c == unit('!') => {}
                    (Some(c), Some(d)) if c == unit('<') && (d == unit('=') || d == unit('!')) => {}
                    (Some(c), _) if c == unit('<') => {
                        let start = i + 2;
                        let len = units
                            .get(start..)
                            .and_then(|rest| rest.iter().position(|&x| x == unit('>')))
                            .ok_or("invalid capture group name")?;
                        let name = units.get(start..start + len).unwrap_or_default();
                        if names.contains(&name) {
                            return Err("duplicate capture group name".into());
                        }
                        names.push(name);
                        result.capturing += 1;
                        result.named = true;
                    }
                    _ => return Err("invalid group".into()),
                }
            }
        }
    }
    Ok(result)
}

/// An escape sequence, read after its backslash.
enum Escape {
    /// A character (a code unit).
    Unit(u16),
    /// `\d \D \s \S \w \W` (the letter).
    Class(u16),
    /// `\b` or `\B` outside a class (the letter).
    Assertion(u16),
    /// `\1`: a backreference.
    Backreference(usize),
    /// `\k<name>` (the units, `k` to `>`).
    Named(Range<usize>),
    /// `\c` not followed by a control letter: the backslash is a literal, the `c` is read next.
    Backslash,
}

/// Rewrites a pattern without `u` (as UTF-16 units) into one `regress` reads exactly as
/// JavaScript's Annex B grammar does; with `fold`, canonicalizes its characters and classes.
struct Rewriter<'a> {
    units: &'a [u16],
    i: usize,
    out: Vec<u32>,
    scan: &'a Scan,
    fold: bool,
}

fn is_syntax(u: u16) -> bool {
    u < 0x80 && b"^$\\.*+?()[]{}|/".contains(&(u as u8))
}

fn is_hex(u: u16) -> Option<u16> {
    char::from_u32(u32::from(u))
        .and_then(|c| c.to_digit(16))
        .and_then(|d| u16::try_from(d).ok())
}

fn digit(u: Option<u16>, radix: u32) -> Option<u16> {
    u.and_then(|u| char::from_u32(u32::from(u)))
        .and_then(|c| c.to_digit(radix))
        .and_then(|d| u16::try_from(d).ok())
}

impl Rewriter<'_> {
    fn at(&self, k: usize) -> Option<u16> {
        self.units.get(self.i + k).copied()
    }

    fn push_str(&mut self, s: &str) {
        self.out.extend(s.chars().map(u32::from));
    }

    fn hex(&self, from: usize, len: usize) -> Option<u16> {
        (0..len).try_fold(0u16, |acc, k| {
            Some(acc * 16 + is_hex(self.units.get(from + k).copied()?)?)
        })
    }

    /// A character outside a class.
    fn literal(&mut self, u: u16) {
        let u = if self.fold { canonicalize(u) } else { u };
        if is_syntax(u) {
            self.out.push(u32::from('\\'));
        }
        self.out.push(u32::from(u));
    }

    /// A character inside a class.
    fn class_atom(&mut self, u: u16) {
        if u < 0x80 && b"\\]^[-".contains(&(u as u8)) {
            self.out.push(u32::from('\\'));
        }
        self.out.push(u32::from(u));
    }

    /// Reads an escape; `self.i` is just past the backslash.
    fn escape(&mut self, in_class: bool) -> Result<Escape, String> {
        let Some(c) = self.at(0) else {
            return Err("\\ at end of pattern".into());
        };
        let simple = |u: u16| Some(Escape::Unit(u));
        let found = match char::from_u32(u32::from(c)).unwrap_or('\u{FFFD}') {
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => Some(Escape::Class(c)),
            'b' if in_class => simple(0x08),
            'b' | 'B' if !in_class => Some(Escape::Assertion(c)),
            'f' => simple(0x0C),
            'n' => simple(0x0A),
            'r' => simple(0x0D),
            't' => simple(0x09),
            'v' => simple(0x0B),
            'c' => {
                let next = self.at(1).and_then(|n| char::from_u32(u32::from(n)));
                match next {
                    Some(l)
                        if l.is_ascii_alphabetic()
                            || (in_class && (l.is_ascii_digit() || l == '_')) =>
                    {
                        self.i += 2;
                        return Ok(Escape::Unit(unit(l) % 32));
                    }
                    _ => return Ok(Escape::Backslash),
                }
            }
            'x' => match self.hex(self.i + 1, 2) {
                Some(v) => {
                    self.i += 3;
                    return Ok(Escape::Unit(v));
                }
                None => simple(c),
            },
            'u' => match self.hex(self.i + 1, 4) {
                Some(v) => {
                    self.i += 5;
                    return Ok(Escape::Unit(v));
                }
                None => simple(c),
            },
            '0'..='9' => return Ok(self.decimal_escape(in_class)),
            'k' if self.scan.named => {
                if in_class || self.at(1) != Some(unit('<')) {
                    return Err("invalid named reference".into());
                }
                let start = self.i;
                let len = self
                    .units
                    .get(start..)
                    .and_then(|rest| rest.iter().position(|&x| x == unit('>')))
                    .ok_or("invalid named reference")?;
                self.i += len + 1;
                return Ok(Escape::Named(start..start + len + 1));
            }
            _ => simple(c),
        };
        self.i += 1;
        found.ok_or_else(|| "invalid escape".into())
    }

    /// `\` followed by a digit: a backreference if it names an existing group (outside
    /// classes), else a legacy octal escape (`\8` and `\9` are the digits themselves).
    fn decimal_escape(&mut self, in_class: bool) -> Escape {
        let first = self.at(0).unwrap_or(unit('0'));
        if !in_class && first != unit('0') {
            let mut n = 0usize;
            let mut len = 0;
            while let Some(d) = digit(self.at(len), 10) {
                n = n.saturating_mul(10).saturating_add(usize::from(d));
                len += 1;
            }
            if n <= self.scan.capturing {
                self.i += len;
                return Escape::Backreference(n);
            }
        }
        self.i += 1;
        let Some(mut value) = digit(Some(first), 8) else {
            return Escape::Unit(first); // `\8`, `\9`
        };
        let more = if value <= 3 { 2 } else { 1 };
        for _ in 0..more {
            match digit(self.at(0), 8) {
                Some(d) => {
                    value = value * 8 + d;
                    self.i += 1;
                }
                None => break,
            }
        }
        Escape::Unit(value)
    }

    /// One class atom: a unit or a class escape; `None` at the closing `]`.
    fn class_member(&mut self) -> Result<Option<Result<u16, UnitSet>>, String> {
        let Some(u) = self.at(0) else {
            return Err("unterminated character class".into());
        };
        self.i += 1;
        if u == unit(']') {
            return Ok(None);
        }
        if u != unit('\\') {
            return Ok(Some(Ok(u)));
        }
        Ok(Some(match self.escape(true)? {
            Escape::Unit(v) => Ok(v),
            Escape::Class(letter) => Err(UnitSet::class_escape(letter)),
            Escape::Backslash => Ok(unit('\\')),
            Escape::Assertion(_) | Escape::Backreference(_) | Escape::Named(_) => {
                return Err("invalid class escape".into());
            }
        }))
    }

    /// A character class; `self.i` is just past `[`.
    fn class(&mut self) -> Result<(), String> {
        let negated = self.at(0) == Some(unit('^'));
        if negated {
            self.i += 1;
        }
        let mut set = UnitSet::new();
        while let Some(member) = self.class_member()? {
            let low = match member {
                Ok(low) => low,
                Err(class) => {
                    // `[\d-z]`: in Annex B a class escape next to `-` is no range.
                    set.union(&class);
                    continue;
                }
            };
            let is_range =
                self.at(0) == Some(unit('-')) && self.at(1).is_some_and(|n| n != unit(']'));
            if !is_range {
                set.insert(low);
                continue;
            }
            self.i += 1;
            match self.class_member()? {
                Some(Ok(high)) if high >= low => set.insert_range(low, high),
                Some(Ok(_)) => return Err("range out of order in character class".into()),
                Some(Err(class)) => {
                    set.insert(low);
                    set.insert(unit('-'));
                    set.union(&class);
                }
                None => return Err("unterminated character class".into()),
            }
        }
        if self.fold {
            set = set.canonicalized();
        }
        self.out.push(u32::from('['));
        if negated {
            self.out.push(u32::from('^'));
        }
        let mut run: Option<(u16, u16)> = None;
        for u in set.units().map(Some).chain([None]) {
            match (run, u) {
                (Some((lo, hi)), Some(u)) if u32::from(u) == u32::from(hi) + 1 => {
                    run = Some((lo, u));
                }
                (previous, next) => {
                    if let Some((lo, hi)) = previous {
                        self.class_atom(lo);
                        if hi > lo {
                            if hi > lo + 1 {
                                self.out.push(u32::from('-'));
                            }
                            self.class_atom(hi);
                        }
                    }
                    run = next.map(|u| (u, u));
                }
            }
        }
        self.out.push(u32::from(']'));
        Ok(())
    }

    /// After a `{` (at `self.i - 1`): the length of the rest of a `{n}`, `{n,}` or `{n,m}`
    /// quantifier, if it is one (else the `{` is a literal, in Annex B).
    fn quantifier_len(&self) -> Option<usize> {
        let digits = |k: &mut usize| {
            let start = *k;
            while digit(self.at(*k), 10).is_some() {
                *k += 1;
            }
            *k > start
        };
        let mut k = 0;
        if !digits(&mut k) {
            return None;
        }
        if self.at(k) == Some(unit(',')) {
            k += 1;
            digits(&mut k);
        }
        (self.at(k) == Some(unit('}'))).then_some(k + 1)
    }

    fn rewrite(mut self) -> Result<Vec<u32>, String> {
        while let Some(u) = self.at(0) {
            self.i += 1;
            match char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}') {
                '\\' => match self.escape(false)? {
                    Escape::Unit(v) => self.literal(v),
                    Escape::Class(letter) | Escape::Assertion(letter) => {
                        // Case-insensitive or not, these mean the same on canonical units.
                        self.out.extend([u32::from('\\'), u32::from(letter)]);
                    }
                    Escape::Backreference(n) => {
                        // Grouped, so that a digit after it is not read as part of it.
                        self.push_str(&format!("(?:\\{n})"));
                    }
                    Escape::Named(range) => {
                        self.out.push(u32::from('\\'));
                        let name = self.units.get(range).unwrap_or_default();
                        self.out.extend(name.iter().copied().map(u32::from));
                    }
                    Escape::Backslash => self.literal(unit('\\')),
                },
                '[' => self.class()?,
                '(' => {
                    self.out.push(u32::from('('));
                    if self.at(0) == Some(unit('?')) {
                        // `scan` has checked the group syntax; copy up to the name's end.
                        let named = self.at(1) == Some(unit('<'))
                            && !matches!(self.at(2), Some(c) if c == unit('=') || c == unit('!'));
                        let len = if named {
                            self.units
                                .get(self.i..)
                                .and_then(|rest| rest.iter().position(|&x| x == unit('>')))
                                .map_or(2, |p| p + 1)
                        } else if self.at(1) == Some(unit('<')) {
                            3
                        } else {
                            2
                        };
                        let head = self.units.get(self.i..self.i + len).unwrap_or_default();
                        self.out.extend(head.iter().copied().map(u32::from));
                        self.i += len;
                    }
                }
                '{' => match self.quantifier_len() {
                    Some(len) => {
                        self.out.push(u32::from(u));
                        let rest = self.units.get(self.i..self.i + len).unwrap_or_default();
                        self.out.extend(rest.iter().copied().map(u32::from));
                        self.i += len;
                    }
                    None => self.literal(u),
                },
                '^' | '$' | '.' | '|' | ')' | '*' | '+' | '?' => self.out.push(u32::from(u)),
                _ => self.literal(u),
            }
        }
        Ok(self.out)
    }
}

/// With `u` (or `v`) and `i`, `\W` excludes `ſ` and the Kelvin sign, which fold to word
/// characters; inside a class `regress` keeps them and then adds their case variants (`s`,
/// `k`). This writes such a `\W` out as the explicit set (whose case closure adds nothing).
fn unicode_icase_classes(pattern: &str, nested_classes: bool) -> Cow<'_, str> {
    const NON_WORD: &str = r"\u{0}-\u{2F}\u{3A}-\u{40}\u{5B}-\u{5E}\u{60}\u{7B}-\u{17E}\u{180}-\u{2129}\u{212B}-\u{10FFFF}";
    if !pattern.contains(r"\W") {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + NON_WORD.len());
    let mut classes = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('W') if classes > 0 => {
                    if nested_classes {
                        out.push('[');
                    }
                    out.push_str(NON_WORD);
                    if nested_classes {
                        out.push(']');
                    }
                }
                Some(next) => {
                    out.push(c);
                    out.push(next);
                }
                None => out.push(c),
            },
            '[' if classes == 0 || nested_classes => {
                classes += 1;
                out.push(c);
            }
            ']' if classes > 0 => {
                classes -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `s` has a character outside the Basic Multilingual Plane (two UTF-16 units).
fn has_astral(s: &str) -> bool {
    // Exactly those characters take four bytes in UTF-8, with a lead byte from 0xF0.
    s.bytes().any(|b| b >= 0xF0)
}

/// The subject of a match, as the engine searches it.
enum Subject<'s> {
    /// UTF-8 text: with `u`, or when every character is one UTF-16 unit. `search` is what the
    /// engine sees (ASCII text upper-cased with `i` and without `u`), `text` what results are
    /// cut from; their byte offsets agree.
    Text { search: Cow<'s, str>, text: &'s str },
    /// UTF-16 units: `search` (canonicalized with `i`; `None` when it is `text`) and `text`.
    Units {
        search: Option<Vec<u16>>,
        text: Vec<u16>,
    },
}

impl Subject<'_> {
    fn len(&self) -> usize {
        match self {
            Subject::Text { search, .. } => search.len(),
            Subject::Units { text, .. } => text.len(),
        }
    }

    fn text(&self, range: Range<usize>) -> Value {
        match self {
            Subject::Text { text, .. } => text.get(range).map_or(Value::Undefined, Value::string),
            Subject::Units { text, .. } => text.get(range).map_or(Value::Undefined, |u| {
                Value::string(&String::from_utf16_lossy(u))
            }),
        }
    }

    /// `AdvanceStringIndex` past an empty match: one unit, or one code point with `u` (UTF-8
    /// text is only used without `u` when every character is one unit).
    fn advance(&self, index: usize) -> usize {
        match self {
            Subject::Text { search, .. } => {
                index
                    + search
                        .get(index..)
                        .and_then(|rest| rest.chars().next())
                        .map_or(1, char::len_utf8)
            }
            Subject::Units { .. } => index + 1,
        }
    }
}

impl JsRegex {
    /// `new RegExp(pattern, flags)`.
    pub(crate) fn new(pattern: &str, flags: &str) -> Result<JsRegex, String> {
        let invalid = |e: String| format!("invalid regular expression /{pattern}/: {e}");
        let mut flags = parse_flags(flags)?;
        let units: Vec<u16> = pattern.encode_utf16().collect();
        let scanned = scan(&units, flags.engine.unicode_sets).map_err(invalid)?;
        let (compiled, mode) = if flags.engine.unicode {
            let pattern = if flags.engine.icase {
                unicode_icase_classes(pattern, flags.engine.unicode_sets)
            } else {
                Cow::Borrowed(pattern)
            };
            (
                regress::Regex::with_flags(&pattern, flags.engine),
                Mode::CodePoints,
            )
        } else {
            let fold = flags.engine.icase;
            // Case-insensitivity is done by canonicalizing both sides (see the module docs).
            flags.engine.icase = false;
            let rewritten = Rewriter {
                units: &units,
                i: 0,
                out: Vec::with_capacity(units.len()),
                scan: &scanned,
                fold,
            }
            .rewrite()
            .map_err(invalid)?;
            let mode = if fold { Mode::FoldedUnits } else { Mode::Units };
            (
                regress::Regex::from_unicode(rewritten.iter().copied(), flags.engine),
                mode,
            )
        };
        let regex = compiled.map_err(|e| invalid(e.to_string()))?;
        Ok(JsRegex {
            regex,
            global: flags.global,
            sticky: flags.sticky,
            mode,
        })
    }

    /// The first match at or after `index` (only at `index` when sticky).
    fn find_at(&self, subject: &Subject<'_>, index: usize) -> Option<regress::Match> {
        if index > subject.len() {
            return None;
        }
        let found = match subject {
            Subject::Text { search, .. } => {
                if !search.is_char_boundary(index) {
                    return None;
                }
                self.regex.find_from(search, index).next()
            }
            Subject::Units { search, text } => self
                .regex
                .find_from_ucs2(search.as_deref().unwrap_or(text), index)
                .next(),
        }?;
        (!self.sticky || found.start() == index).then_some(found)
    }

    fn subject<'s>(&self, s: &'s str) -> Subject<'s> {
        let text = |search| Subject::Text { search, text: s };
        match self.mode {
            Mode::CodePoints => text(Cow::Borrowed(s)),
            Mode::Units if !has_astral(s) => text(Cow::Borrowed(s)),
            Mode::Units => Subject::Units {
                search: None,
                text: s.encode_utf16().collect(),
            },
            // ASCII canonicalizes to ASCII of the same length: stay in UTF-8.
            Mode::FoldedUnits if s.is_ascii() => text(Cow::Owned(s.to_ascii_uppercase())),
            Mode::FoldedUnits => {
                let units: Vec<u16> = s.encode_utf16().collect();
                Subject::Units {
                    search: Some(units.iter().copied().map(canonicalize).collect()),
                    text: units,
                }
            }
        }
    }

    /// `string.match(regex)`: with `g`, every match's text (`null` if none); without, the
    /// first match and its groups (`undefined` for a group that did not take part), or `null`.
    pub(crate) fn match_all(&self, s: &str) -> Value {
        let subject = self.subject(s);
        if !self.global {
            let Some(found) = self.find_at(&subject, 0) else {
                return Value::Null;
            };
            let mut items = Vec::with_capacity(found.captures.len() + 1);
            items.push(subject.text(found.range()));
            items.extend(
                found
                    .captures
                    .iter()
                    .map(|group| group.clone().map_or(Value::Undefined, |r| subject.text(r))),
            );
            return Value::array(items);
        }
        let mut matches = Vec::new();
        let mut last_index = 0;
        while let Some(found) = self.find_at(&subject, last_index) {
            let range = found.range();
            last_index = if range.is_empty() {
                subject.advance(range.end)
            } else {
                range.end
            };
            matches.push(subject.text(range));
        }
        if matches.is_empty() {
            Value::Null
        } else {
            Value::array(matches)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalize_is_javascripts() {
        assert_eq!(canonicalize(unit('a')), unit('A'));
        assert_eq!(canonicalize(unit('é')), unit('É'));
        // Non-ASCII never becomes ASCII: long s, dotless i; the Kelvin sign is upper case.
        assert_eq!(canonicalize(0x17F), 0x17F);
        assert_eq!(canonicalize(0x131), 0x131);
        assert_eq!(canonicalize(0x212A), 0x212A);
        // Multi-unit upper cases (ß → SS) leave the unit alone; so do surrogates.
        assert_eq!(canonicalize(0xDF), 0xDF);
        assert_eq!(canonicalize(0xD83D), 0xD83D);
        assert_eq!(canonicalize(0x3C2), 0x3A3); // final sigma
    }

    #[test]
    fn space_ranges_are_the_lexers() {
        let set = UnitSet::class_escape(unit('s'));
        let members: Vec<u16> = set.units().collect();
        let expected: Vec<u16> = (0..=u16::MAX)
            .filter(|&u| char::from_u32(u32::from(u)).is_some_and(super::super::lexer::is_js_space))
            .collect();
        assert_eq!(members, expected);
    }

    #[test]
    fn deep_patterns_are_errors_not_stack_overflows() {
        let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        for flags in ["", "u", "i", "gi"] {
            let ok = JsRegex::new(&deep(200), flags);
            assert!(ok.is_ok(), "{:?}", ok.err());
            let err = JsRegex::new(&deep(10_000), flags).unwrap_err();
            assert!(err.contains("too deeply nested"), "{err}");
        }
        let classes = format!("{}a{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(JsRegex::new(&classes, "v").is_err());
        let lookaheads = format!("{}a{}", "(?=".repeat(10_000), ")".repeat(10_000));
        assert!(JsRegex::new(&lookaheads, "").is_err());
    }

    #[test]
    fn rewritten_patterns_keep_backreferences_apart_from_digits() {
        // `(a)\1` then a literal `0` (from an octal escape): not a reference to group 10.
        let regex = JsRegex::new(r"(a)\1\060", "").unwrap();
        assert_eq!(
            regex.match_all("aa0").to_js_json_string().as_deref(),
            Some(r#"["aa0","a"]"#)
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn pattern() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "a",
            "b",
            "k",
            "s",
            "é",
            "ſ",
            "K",
            "😀",
            ".",
            "^",
            "$",
            "|",
            "(",
            ")",
            "(?:",
            "(?=",
            "(?!",
            "(?<=",
            "(?<!",
            "(?<n>",
            "\\k<n>",
            "[",
            "]",
            "[^",
            "-",
            "{",
            "}",
            "{2}",
            "{1,}",
            "{0,3}",
            "*",
            "+",
            "?",
            "\\",
            "\\1",
            "\\2",
            "\\01",
            "\\8",
            "\\b",
            "\\B",
            "\\w",
            "\\W",
            "\\d",
            "\\s",
            "\\S",
            "\\c",
            "\\cA",
            "\\x4",
            "\\x41",
            "\\u",
            "\\u0041",
            "\\uD83D",
            "\\uDE00",
            "\\u{1F600}",
            "\\p{L}",
            "\\P{Lu}",
            "--",
            "&&",
            "\\q{ab}",
        ]);
        prop::collection::vec(atoms, 0..12).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn compiling_and_matching_never_panics(
            pattern in pattern(),
            flags in "[gimsuvyd]{0,3}",
            subject in "[abksK ſéÉ😀\\-\\[\\]]{0,12}",
        ) {
            if let Ok(regex) = JsRegex::new(&pattern, &flags) {
                let _ = regex.match_all(&subject);
            }
        }
    }
}
