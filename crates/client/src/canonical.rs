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

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::fmt;

use flightdeck_core::diagnostic::{FieldPath, PathSegment};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The canonical JSON text of `value`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    ValueWriter::new(&mut out).value(value);
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
    ValueWriter::new(&mut out).object(map, Some(excluded));
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

/// Writes `serde_json` values. Objects are written in sorted key order; the members being
/// sorted are kept on one stack shared by every object of the value (an object's members sit
/// above its parent's while it is written), so a value costs one allocation for sorting, not
/// one per object.
struct ValueWriter<'v, 'o> {
    out: &'o mut String,
    members: Vec<(&'v str, &'v Value)>,
}

impl<'v, 'o> ValueWriter<'v, 'o> {
    fn new(out: &'o mut String) -> ValueWriter<'v, 'o> {
        ValueWriter {
            out,
            members: Vec::new(),
        }
    }

    fn value(&mut self, value: &'v Value) {
        match value {
            Value::Null => self.out.push_str("null"),
            Value::Bool(true) => self.out.push_str("true"),
            Value::Bool(false) => self.out.push_str("false"),
            Value::Number(number) => write_number(self.out, number),
            Value::String(text) => write_string(self.out, text),
            Value::Array(items) => {
                self.out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        self.out.push(',');
                    }
                    self.value(item);
                }
                self.out.push(']');
            }
            Value::Object(map) => self.object(map, None),
        }
    }

    fn object(&mut self, map: &'v Map<String, Value>, excluded: Option<&str>) {
        let base = self.members.len();
        self.members.extend(
            map.iter()
                .filter(|(key, _)| Some(key.as_str()) != excluded)
                .map(|(key, item)| (key.as_str(), item)),
        );
        // Keys are unique, so an unstable sort gives one order.
        if let Some(members) = self.members.get_mut(base..) {
            members.sort_unstable_by(|(a, _), (b, _)| compare_utf16(a, b));
        }
        self.out.push('{');
        // Writing a member pushes and pops its own objects' members above `end`, so the
        // entries of this object stay where they are.
        let end = self.members.len();
        for index in base..end {
            let Some(&(key, item)) = self.members.get(index) else {
                break;
            };
            if index > base {
                self.out.push(',');
            }
            write_string(self.out, key);
            self.out.push(':');
            self.value(item);
        }
        self.members.truncate(base);
        self.out.push('}');
    }
}

/// Orders strings by their UTF-16 code units, as JavaScript compares strings.
///
/// UTF-8 byte order is code point order, which is the same except that a character beyond
/// U+FFFF (a surrogate pair, D800–DFFF) sorts before U+E000–U+FFFF in UTF-16. So the bytes
/// decide unless the first difference is inside a non-ASCII character.
pub fn compare_utf16(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    match x.iter().zip(y).find(|(p, q)| p != q) {
        None => x.len().cmp(&y.len()),
        Some((p, q)) if p.is_ascii() && q.is_ascii() => p.cmp(q),
        Some(_) => a.encode_utf16().cmp(b.encode_utf16()),
    }
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

/// Whether a byte stands for itself in a canonical string: printable ASCII but `"` and `\`.
fn is_plain(byte: u8) -> bool {
    matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\'
}

/// The length of the run of plain bytes (see [`is_plain`]) that `bytes` starts with.
///
/// Eight bytes are looked at together (the usual "has a byte less than" tricks on a `u64`):
/// most strings of a manifest are long plain runs (filter expressions, signatures, keys).
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Exact when a byte is zero; a false positive only hands a word to the byte loop.
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut run = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(chunk);
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        // (b & 0x7f) + 1 reaches 0x80 only for 0x7f; `| word` adds every byte from 0x80.
        let high = (((word & !HIGHS).wrapping_add(ONES)) | word) & HIGHS;
        let quote = has_zero(word ^ (ONES * u64::from(b'"')));
        let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
        if control | high | quote | backslash != 0 {
            break;
        }
        run += 8;
    }
    let tail = bytes.get(run..).unwrap_or_default();
    run + tail
        .iter()
        .position(|&byte| !is_plain(byte))
        .unwrap_or(tail.len())
}

/// Writes `text` as a canonical JSON string.
pub(crate) fn write_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    // Runs of plain characters are copied whole; only the rest is looked at one by one.
    let mut rest = text;
    loop {
        let run = plain_run(rest.as_bytes());
        // The run is ASCII, so it ends on a character boundary.
        let Some((plain, tail)) = rest.split_at_checked(run) else {
            break;
        };
        out.push_str(plain);
        let mut chars = tail.chars();
        let Some(c) = chars.next() else {
            break;
        };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
            }
        }
        rest = chars.as_str();
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

/// A JSON value read for canonicalisation only: strings and keys borrow from the source
/// text where it has no escapes, and object members are kept sorted in canonical order (with
/// only the last of duplicate keys, as `serde_json::Value` keeps them). Reading one costs a
/// fraction of a `serde_json::Value` (no key hashing, few allocations), and writing it needs
/// no sorting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json reads it.
    Number(Number),
    /// A string.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Node<'a>>),
    /// An object, members in canonical order, keys unique.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A [`Node`] read from text, and whether every number in it is exact (see
/// [`first_inexact_number`]).
#[derive(Debug)]
pub(crate) struct ParsedNode<'a> {
    pub(crate) node: Node<'a>,
    pub(crate) exact: bool,
}

impl<'a> Node<'a> {
    /// Reads one JSON value from `text` (surrounding whitespace allowed, nothing else), with
    /// serde_json's grammar, and at most `max_depth` nested arrays and objects (serde_json's
    /// own limit applies too).
    pub(crate) fn parse(
        text: &'a str,
        max_depth: usize,
    ) -> Result<ParsedNode<'a>, serde_json::Error> {
        let exact = Cell::new(true);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let seed = NodeSeed {
            exact: &exact,
            depth_left: max_depth,
        };
        let node = seed.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(ParsedNode {
            node,
            exact: exact.get(),
        })
    }

    /// The member `key` of an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => members
                .binary_search_by(|(candidate, _)| compare_utf16(candidate, key))
                .ok()
                .and_then(|index| members.get(index))
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// The number as an unsigned integer, as [`Value::as_u64`].
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Node::Number(number) => number.as_u64(),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(text) => Some(text),
            _ => None,
        }
    }

    /// Writes the canonical form of the value.
    pub(crate) fn write(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(true) => out.push_str("true"),
            Node::Bool(false) => out.push_str("false"),
            Node::Number(number) => write_number(out, number),
            Node::String(text) => write_string(out, text),
            Node::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(members) => write_members(out, members, None),
        }
    }
}

impl fmt::Display for Node<'_> {
    /// The canonical form (what messages quote).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

/// Writes an object from members in canonical order, leaving out the member `excluded`.
pub(crate) fn write_members(
    out: &mut String,
    members: &[(Cow<'_, str>, Node<'_>)],
    excluded: Option<&str>,
) {
    out.push('{');
    let mut first = true;
    for (key, item) in members {
        if Some(key.as_ref()) == excluded {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, key);
        out.push(':');
        item.write(out);
    }
    out.push('}');
}

/// Sorts object members into canonical order and keeps the last of duplicate keys.
pub(crate) fn sort_members<T>(members: &mut Vec<(Cow<'_, str>, T)>) {
    // A stable sort keeps duplicates in text order, so the last one of a run is the one
    // `serde_json::Value` would have kept.
    members.sort_by(|(a, _), (b, _)| compare_utf16(a, b));
    members.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            std::mem::swap(&mut later.1, &mut kept.1);
            true
        } else {
            false
        }
    });
}

#[derive(Clone, Copy)]
struct NodeSeed<'c> {
    exact: &'c Cell<bool>,
    /// How many more arrays and objects may be nested here.
    depth_left: usize,
}

impl<'c> NodeSeed<'c> {
    /// The seed of the items of an array or object, which is one level deeper.
    fn enter<E: de::Error>(&self) -> Result<NodeSeed<'c>, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(NodeSeed {
                exact: self.exact,
                depth_left,
            }),
            None => Err(E::custom("recursion limit exceeded")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Node<'de>, E> {
        let number = Number::from(value);
        if !is_exact_double(&number) {
            self.exact.set(false);
        }
        Ok(Node::Number(number))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Node<'de>, E> {
        let number = Number::from(value);
        if !is_exact_double(&number) {
            self.exact.set(false);
        }
        Ok(Node::Number(number))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Node<'de>, E> {
        Number::from_f64(value)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let inner = self.enter()?;
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(inner)?;
            members.push((key, value));
        }
        sort_members(&mut members);
        Ok(Node::Object(members))
    }
}

/// An object key, borrowed from the text when it has no escapes (serde's own `Cow<str>`
/// always copies).
pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(value))
    }
}

/// What a JSON value is, as far as a manifest's checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An object.
    Object,
    /// An array.
    Array,
    /// Anything else.
    Other,
}

/// The canonical form of one JSON value, with what was learnt while reading it.
#[derive(Debug)]
pub(crate) struct Canonical {
    /// The canonical text.
    pub(crate) text: String,
    /// Whether every number is exact (see [`first_inexact_number`]).
    pub(crate) exact: bool,
    /// What the value is.
    pub(crate) shape: Shape,
    /// With `records`: the indexes of the elements that are not `{"recipe": {...}, ...}`
    /// objects (a signed record).
    pub(crate) bad_records: Vec<usize>,
}

/// The canonical form of the JSON value `text` (whitespace around it allowed), read with
/// serde_json's grammar and at most `max_depth` nested arrays and objects. With `records`,
/// the elements of an array are checked to be signed records (see
/// [`Canonical::bad_records`]).
///
/// When every object in the text already lists its keys in canonical order (as
/// `flightdeck sign` writes them), the form is written while the text is read, with no tree
/// and no sorting. Otherwise the value is read into a [`Node`] tree and written from it.
pub(crate) fn canonicalize(
    text: &str,
    max_depth: usize,
    records: bool,
) -> Result<Canonical, serde_json::Error> {
    if let Some(streamed) = stream(text, max_depth, records)? {
        return Ok(streamed);
    }
    let parsed = Node::parse(text, max_depth)?;
    let (shape, bad_records) = match &parsed.node {
        Node::Object(_) => (Shape::Object, Vec::new()),
        Node::Array(items) if records => {
            let bad = items
                .iter()
                .enumerate()
                .filter(|(_, record)| !matches!(record.get("recipe"), Some(Node::Object(_))))
                .map(|(index, _)| index)
                .collect();
            (Shape::Array, bad)
        }
        Node::Array(_) => (Shape::Array, Vec::new()),
        _ => (Shape::Other, Vec::new()),
    };
    let mut out = String::with_capacity(text.len());
    parsed.node.write(&mut out);
    Ok(Canonical {
        text: out,
        exact: parsed.exact,
        shape,
        bad_records,
    })
}

/// [`canonicalize`] while reading; `None` when an object's keys are not in canonical order.
fn stream(
    text: &str,
    max_depth: usize,
    records: bool,
) -> Result<Option<Canonical>, serde_json::Error> {
    let mut out = String::with_capacity(text.len());
    let cx = StreamContext {
        sorted: Cell::new(true),
        exact: Cell::new(true),
        bad_records: RefCell::new(Vec::new()),
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = StreamSeed {
        cx: &cx,
        out: &mut out,
        depth_left: max_depth,
        role: if records { Role::Records } else { Role::Value },
    };
    let shape = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(cx.sorted.get().then(|| Canonical {
        text: out,
        exact: cx.exact.get(),
        shape,
        bad_records: cx.bad_records.into_inner(),
    }))
}

/// What a streaming read ([`canonicalize`]) found out, shared by every level of it.
struct StreamContext {
    /// No object so far had a key out of canonical order (or a repeated key).
    sorted: Cell<bool>,
    exact: Cell<bool>,
    bad_records: RefCell<Vec<usize>>,
}

/// What a value being streamed is to the manifest checks.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Any value.
    Value,
    /// An array of signed records.
    Records,
    /// The record with this index.
    Record(usize),
}

/// Writes the canonical form of one value while it is read; returns its [`Shape`].
struct StreamSeed<'c, 'o> {
    cx: &'c StreamContext,
    out: &'o mut String,
    depth_left: usize,
    role: Role,
}

impl StreamSeed<'_, '_> {
    /// How many levels the items of an array or object may still nest.
    fn inner_depth<E: de::Error>(&self) -> Result<usize, E> {
        self.depth_left
            .checked_sub(1)
            .ok_or_else(|| E::custom("recursion limit exceeded"))
    }

    fn number(self, number: &Number) -> Shape {
        if !is_exact_double(number) {
            self.cx.exact.set(false);
        }
        write_number(self.out, number);
        Shape::Other
    }
}

impl<'de> DeserializeSeed<'de> for StreamSeed<'_, '_> {
    type Value = Shape;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StreamSeed<'_, '_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        self.out.push_str("null");
        Ok(Shape::Other)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Shape, E> {
        self.out.push_str(if value { "true" } else { "false" });
        Ok(Shape::Other)
    }

    fn visit_u64<E>(self, value: u64) -> Result<Shape, E> {
        Ok(self.number(&Number::from(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Shape, E> {
        Ok(self.number(&Number::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Shape, E> {
        let number =
            Number::from_f64(value).ok_or_else(|| E::custom("a number that is not finite"))?;
        Ok(self.number(&number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Shape, E> {
        write_string(self.out, value);
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let depth_left = self.inner_depth()?;
        self.out.push('[');
        let mut index = 0;
        loop {
            if index > 0 {
                self.out.push(',');
            }
            let role = match self.role {
                Role::Records => Role::Record(index),
                Role::Value | Role::Record(_) => Role::Value,
            };
            let seed = StreamSeed {
                cx: self.cx,
                out: &mut *self.out,
                depth_left,
                role,
            };
            match seq.next_element_seed(seed)? {
                Some(shape) => {
                    if matches!(role, Role::Record(_)) && shape != Shape::Object {
                        self.cx.bad_records.borrow_mut().push(index);
                    }
                }
                None => {
                    if index > 0 {
                        // The comma pushed for an element that was not there.
                        self.out.pop();
                    }
                    break;
                }
            }
            index += 1;
        }
        self.out.push(']');
        Ok(Shape::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let depth_left = self.inner_depth()?;
        self.out.push('{');
        let mut previous: Option<Cow<'de, str>> = None;
        let mut has_recipe = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if let Some(previous) = &previous {
                if compare_utf16(previous, &key) != Ordering::Less {
                    self.cx.sorted.set(false);
                }
                self.out.push(',');
            }
            write_string(self.out, &key);
            self.out.push(':');
            let seed = StreamSeed {
                cx: self.cx,
                out: &mut *self.out,
                depth_left,
                role: Role::Value,
            };
            let shape = map.next_value_seed(seed)?;
            if key == "recipe" {
                has_recipe = shape == Shape::Object;
            }
            previous = Some(key);
        }
        self.out.push('}');
        if let Role::Record(index) = self.role
            && !has_recipe
        {
            self.cx.bad_records.borrow_mut().push(index);
        }
        Ok(Shape::Object)
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

    #[test]
    fn plain_runs_stop_at_the_first_byte_that_is_not_plain() {
        for byte in 0..=u8::MAX {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 20];
                bytes[at] = byte;
                let expected = if is_plain(byte) { 20 } else { at };
                assert_eq!(plain_run(&bytes), expected, "byte {byte:#x} at {at}");
            }
        }
        assert_eq!(plain_run(b""), 0);
        assert!((b' '..=b'~').all(|b| is_plain(b) == (b != b'"' && b != b'\\')));
    }

    /// The canonical form of `text` read as a [`Node`] (the unified manifest's path).
    fn node_canonical(text: &str) -> String {
        let parsed = Node::parse(text, 127).unwrap();
        assert!(parsed.exact);
        parsed.node.to_string()
    }

    #[test]
    fn nodes_keep_the_last_of_duplicate_keys_as_serde_json_does() {
        let text = r#"{"b": 1, "a": {"x": 1, "x": [2]}, "b": "last", "\u0062": null}"#;
        assert_eq!(node_canonical(text), canonical(text));
        assert_eq!(node_canonical(text), r#"{"a":{"x":[2]},"b":null}"#);
    }

    #[test]
    fn nodes_borrow_what_has_no_escapes() {
        let parsed = Node::parse(r#"{"plain": "text", "esc\u0061ped": "a\nb"}"#, 10).unwrap();
        let Node::Object(members) = &parsed.node else {
            panic!("{:?}", parsed.node)
        };
        assert!(
            matches!(&members[0], (Cow::Owned(key), Node::String(Cow::Owned(value)))
            if key == "escaped" && value == "a\nb")
        );
        assert!(matches!(
            &members[1],
            (Cow::Borrowed("plain"), Node::String(Cow::Borrowed("text")))
        ));
        assert_eq!(
            parsed.node.get("plain").and_then(Node::as_str),
            Some("text")
        );
        assert_eq!(parsed.node.get("absent"), None);
    }

    #[test]
    fn node_depth_and_exactness() {
        assert!(Node::parse("[[1]]", 2).is_ok());
        assert!(Node::parse("[[1]]", 1).is_err());
        assert!(Node::parse("{\"a\": {}}", 1).is_err());
        assert!(Node::parse("1", 0).is_ok());
        assert!(Node::parse("[1] x", 5).is_err());
        assert!(
            !Node::parse("[1, {\"a\": 9007199254740993}]", 5)
                .unwrap()
                .exact
        );
        assert!(!Node::parse("-9223372036854775807", 5).unwrap().exact);
        assert!(Node::parse("[9007199254740992, 1.5, -0]", 5).unwrap().exact);
        assert_eq!(node_canonical("[-0, 5.0, 1e21]"), "[-0,5,1e+21]");
    }

    /// `value` with every object's keys in canonical order.
    fn in_canonical_order(value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(in_canonical_order).collect()),
            Value::Object(map) => {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|(a, _), (b, _)| compare_utf16(a, b));
                Value::Object(
                    members
                        .into_iter()
                        .map(|(key, item)| (key.clone(), in_canonical_order(item)))
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }

    /// `value` with every object's keys in reverse order.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .rev()
                    .map(|(key, item)| (key.clone(), reversed(item)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    #[test]
    fn streaming_gives_up_on_keys_out_of_order_and_repeated_keys() {
        assert!(
            stream(r#"{"a": 1, "b": {"c": 2, "d": 3}}"#, 10, false)
                .unwrap()
                .is_some()
        );
        assert!(stream(r#"{"b": 1, "a": 2}"#, 10, false).unwrap().is_none());
        assert!(
            stream(r#"[{"a": {"d": 1, "c": 2}}]"#, 10, false)
                .unwrap()
                .is_none()
        );
        assert!(stream(r#"{"a": 1, "a": 2}"#, 10, false).unwrap().is_none());
        // UTF-16 order, not byte order.
        assert!(
            stream("{\"\u{1f600}\": 1, \"\u{ff21}\": 2}", 10, false)
                .unwrap()
                .is_some()
        );
        assert!(
            stream("{\"\u{ff21}\": 1, \"\u{1f600}\": 2}", 10, false)
                .unwrap()
                .is_none()
        );
        let repeated = canonicalize(r#"{"a": 1, "a": [2]}"#, 10, false).unwrap();
        assert_eq!(repeated.text, r#"{"a":[2]}"#);
        assert!(stream("[[1]]", 1, false).is_err());
        assert!(canonicalize("[[1]]", 1, false).is_err());
        assert!(!canonicalize("[9007199254740993]", 2, false).unwrap().exact);
        assert_eq!(canonicalize("[]", 2, false).unwrap().text, "[]");
        assert_eq!(canonicalize(" {} ", 2, false).unwrap().shape, Shape::Object);
        assert_eq!(canonicalize("[1,2]", 2, false).unwrap().text, "[1,2]");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                any::<String>().prop_map(Value::String),
                "[a-z\"\\\\\u{7f}\u{e000}\u{1f600} ]{0,20}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                any::<String>(),
                                "[a-c\u{ff21}\u{1f600}]{0,2}".prop_map(String::from)
                            ],
                            inner
                        ),
                        0..6
                    )
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Reading text as a `Node` and writing it gives what the `Value` writer gives,
            /// however the text is formatted.
            #[test]
            fn node_and_value_writers_agree(value in json_value()) {
                let expected = to_string(&value);
                let compact = serde_json::to_string(&value).unwrap();
                let pretty = serde_json::to_string_pretty(&value).unwrap();
                prop_assert_eq!(&node_canonical(&compact), &expected);
                prop_assert_eq!(&node_canonical(&pretty), &expected);
                // And the escaped spelling of the same value (keys and strings with escapes).
                let escaped = compact.replace('a', "\\u0061");
                if serde_json::from_str::<Value>(&escaped).is_ok_and(|v| v == value) {
                    prop_assert_eq!(&node_canonical(&escaped), &expected);
                }
            }

            /// The streaming writer takes text whose keys are in canonical order, and writes
            /// what the tree writer writes; other text goes to the tree writer.
            #[test]
            fn streaming_and_tree_writers_agree(value in json_value()) {
                let expected = to_string(&value);
                let sorted = serde_json::to_string_pretty(&in_canonical_order(&value)).unwrap();
                let streamed = stream(&sorted, 127, false).unwrap().expect("keys in order");
                prop_assert_eq!(&streamed.text, &expected);
                let any_order = serde_json::to_string(&reversed(&value)).unwrap();
                let canonical = canonicalize(&any_order, 127, false).unwrap();
                prop_assert_eq!(&canonical.text, &expected);
                prop_assert_eq!(canonical.shape, streamed.shape);
            }

            #[test]
            fn records_are_checked_alike_on_both_paths(
                records in prop::collection::vec(
                    prop_oneof![
                        Just(json!({"recipe": {"id": 1}, "signature": {}})),
                        Just(json!({"recipe": {}})),
                        Just(json!({"recipe": []})),
                        Just(json!({"signature": {}})),
                        Just(json!([{"recipe": {}}])),
                        Just(json!("recipe")),
                        Just(json!({"a": 1, "recipe": null})),
                    ],
                    0..8,
                )
            ) {
                let value = Value::Array(records.clone());
                let expected: Vec<usize> = records
                    .iter()
                    .enumerate()
                    .filter(|(_, record)| !record.get("recipe").is_some_and(Value::is_object))
                    .map(|(index, _)| index)
                    .collect();
                let sorted = serde_json::to_string(&in_canonical_order(&value)).unwrap();
                let streamed = stream(&sorted, 127, true).unwrap().expect("keys in order");
                prop_assert_eq!(&streamed.bad_records, &expected);
                let tree = canonicalize(&serde_json::to_string(&reversed(&value)).unwrap(), 127, true)
                    .unwrap();
                prop_assert_eq!(&tree.bad_records, &expected);
                prop_assert_eq!(&tree.text, &streamed.text);
            }

            #[test]
            fn strings_are_written_as_the_char_by_char_rule_says(text in any::<String>()) {
                let mut fast = String::new();
                write_string(&mut fast, &text);
                let mut slow = String::from("\"");
                for c in text.chars() {
                    match c {
                        '"' => slow.push_str("\\\""),
                        '\\' => slow.push_str("\\\\"),
                        '\u{8}' => slow.push_str("\\b"),
                        '\u{c}' => slow.push_str("\\f"),
                        '\n' => slow.push_str("\\n"),
                        '\r' => slow.push_str("\\r"),
                        '\t' => slow.push_str("\\t"),
                        ' '..='~' => slow.push(c),
                        _ => {
                            let mut units = [0u16; 2];
                            for unit in c.encode_utf16(&mut units) {
                                slow.push_str(&format!("\\u{unit:04x}"));
                            }
                        }
                    }
                }
                slow.push('"');
                prop_assert_eq!(fast, slow);
            }
        }
    }
}
