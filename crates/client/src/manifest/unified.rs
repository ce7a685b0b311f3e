//! Reading a signed unified manifest without a `serde_json::Value` of the whole document.
//!
//! A client reads a 1,000-recipe manifest (about a megabyte) at every run, so this path is
//! built for speed: the top-level members are sliced out of the text as they are (found by
//! a byte scan, see [`scan_members`]), each member's canonical form is written while it is read (see
//! [`canonical::canonicalize`]), the pieces are hashed in canonical order for the replay
//! check and for the signature, and the embedded documents go to the core parsers as slices
//! of the text. A `serde_json::Value` of the document is only built when someone asks for it
//! ([`Loaded::document`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use flightdeck_core::diagnostic::{Diagnostic, FieldPath, JsonLocator, PathSegment, Position};
use flightdeck_core::model::{Parsed, manifest_v1, normandy};
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use super::load::{errors_first, inexact_number_error, sorted, usable};
use super::{
    ContentHash, FORMAT, Loaded, MAX_SERIAL, ManifestError, ManifestSignature, ManifestSource,
    UnifiedManifest, VERSION,
};
use crate::canonical::{self, Canonical, KeySeed, Node, Shape};
use crate::signature;

/// The members a unified manifest defines; others are kept (they are signed) with a warning.
const UNIFIED_KEYS: [&str; 7] = [
    "format",
    "version",
    "serial",
    "publishedAt",
    "normandy",
    "experiments",
    "signature",
];

/// serde_json refuses a document with more than this many nested arrays and objects; the
/// members are read on their own, so they get the same limit minus the top-level object (a
/// document this path accepts is one `serde_json` reads too, see [`Loaded::document`]).
const MEMBER_DEPTH: usize = 126;

/// A top-level member: its key, its text, and its canonical form.
struct Member<'a> {
    key: Cow<'a, str>,
    raw: &'a str,
    canonical: Canonical,
}

impl Member<'_> {
    /// The value read as a tree, for the header members' checks (they are small).
    fn node(&self) -> Option<Node<'_>> {
        Node::parse(self.raw, MEMBER_DEPTH)
            .ok()
            .map(|parsed| parsed.node)
    }

    /// The byte offset of the value in `text` (the raw value is a slice of it).
    fn offset(&self, text: &str) -> usize {
        (self.raw.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
    }
}

/// Reads `text` as a unified manifest when it is one: a JSON object whose `format` (the last
/// one, as `serde_json` reads duplicates) is the string [`FORMAT`]. `None` when it is not,
/// and when it cannot be read this way; [`super::load`] then reads it as a `serde_json::Value`
/// and reports what is wrong.
///
/// `shared`, when given, is `text` as the caller keeps it: the loaded document holds it
/// rather than a copy.
pub(super) fn read(
    name: &str,
    text: &str,
    shared: Option<&Arc<str>>,
) -> Option<Result<Loaded, ManifestError>> {
    let raw_members = top_members(text)?;
    let (_, format) = raw_members.iter().rev().find(|(key, _)| key == "format")?;
    if Node::parse(format, 0).ok()?.node.as_str() != Some(FORMAT) {
        return None;
    }
    let mut locator = JsonLocator::for_valid_json(text);
    // The canonical form and its hashes, and the core's parse of the embedded documents, are
    // the two costly parts and do not depend on each other: a large manifest has them done
    // side by side. Both always run to the end, so what is reported (and in which order)
    // does not depend on which finishes first.
    let (signed, embedded) = std::thread::scope(|scope| {
        let helper = (text.len() >= PARALLEL_BYTES)
            .then(|| {
                std::thread::Builder::new()
                    .name("flightdeck-canonical".to_owned())
                    .spawn_scoped(scope, || signed_content(&raw_members))
                    .ok()
            })
            .flatten();
        let embedded = Embedded::parse(name, text, &raw_members, &mut locator);
        let signed = match helper.map(|helper| helper.join()) {
            Some(Ok(signed)) => signed,
            // Not started (or, impossibly, failed): done here instead.
            Some(Err(_)) | None => signed_content(&raw_members),
        };
        (signed, embedded)
    });
    let signed = signed.ok()?;
    if !signed.exact {
        // Rare: the document is read again to name the number's place.
        let document: Value = serde_json::from_str(text).ok()?;
        return Some(Err(inexact_number_error(name, text, &document)?));
    }
    let members = raw_members
        .into_iter()
        .zip(signed.canonical)
        .map(|((key, raw), canonical)| Member {
            key,
            raw,
            canonical,
        })
        .collect();
    Some(read_members(
        name,
        (text, shared),
        members,
        &mut locator,
        (signed.content_sha256, signed.digest),
        embedded,
    ))
}

/// Documents smaller than this are read on one thread (a thread costs more than it saves).
const PARALLEL_BYTES: usize = 64 * 1024;

/// The canonical forms of the members (in text order), and the hashes of what the
/// whole-document signature covers.
struct SignedContent {
    canonical: Vec<Canonical>,
    /// Whether every number is exact.
    exact: bool,
    content_sha256: ContentHash,
    /// [`signature::content_digest`] of the signed bytes.
    digest: [u8; 48],
}

/// The canonical form of each member, and the hashes of the members in key order without
/// `signature` (with a repeated key the document is refused, and these hashes go unused).
fn signed_content(members: &[(Cow<'_, str>, &str)]) -> Result<SignedContent, serde_json::Error> {
    let canonical = members
        .iter()
        .map(|(key, raw)| canonical::canonicalize(raw, MEMBER_DEPTH, key == "normandy"))
        .collect::<Result<Vec<Canonical>, _>>()?;
    let mut order: Vec<(&str, &Canonical)> = members
        .iter()
        .zip(&canonical)
        .filter(|((key, _), _)| key != "signature")
        .map(|((key, _), canonical)| (key.as_ref(), canonical))
        .collect();
    order.sort_by(|(a, _), (b, _)| canonical::compare_utf16(a, b));
    let mut sha256 = Sha256::new();
    let mut sha384 = signature::ContentDigest::new();
    let mut update = |piece: &str| {
        sha256.update(piece.as_bytes());
        sha384.update(piece.as_bytes());
    };
    let mut prefix = String::new();
    for (index, (key, value)) in order.iter().enumerate() {
        prefix.clear();
        prefix.push(if index == 0 { '{' } else { ',' });
        canonical::write_string(&mut prefix, key);
        prefix.push(':');
        update(&prefix);
        update(&value.text);
    }
    update(if order.is_empty() { "{}" } else { "}" });
    Ok(SignedContent {
        exact: canonical.iter().all(|c| c.exact),
        canonical,
        content_sha256: ContentHash(sha256.finalize().into()),
        digest: sha384.finalize(),
    })
}

/// The core parsers' reading of the `normandy` and `experiments` members (the last of each,
/// as `serde_json` reads duplicates), moved into the whole document.
struct Embedded {
    normandy: Option<Parsed<normandy::RecipeSet>>,
    experiments: Option<Parsed<manifest_v1::Manifest>>,
}

impl Embedded {
    fn parse(
        name: &str,
        text: &str,
        members: &[(Cow<'_, str>, &str)],
        locator: &mut JsonLocator,
    ) -> Embedded {
        let member = |key: &str| {
            members
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, raw)| {
                    let offset = (raw.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
                    (offset, *raw)
                })
        };
        let normandy = member("normandy").map(|(offset, member)| {
            parse_member(name, member, locator, offset, "normandy", normandy::parse)
        });
        let experiments = member("experiments").map(|(offset, member)| {
            let mut parsed = parse_member(
                name,
                member,
                locator,
                offset,
                "experiments",
                manifest_v1::parse,
            );
            if let Some(manifest) = &mut parsed.value
                && !manifest.rejected.is_empty()
            {
                let base = locator.position_of_offset(offset);
                for rejected in &mut manifest.rejected {
                    rejected.position = shift(base, rejected.position);
                }
            }
            parsed
        });
        Embedded {
            normandy,
            experiments,
        }
    }
}

/// The members of the JSON object `text` (keys, and the text of each value), in text order;
/// `None` when `text` is not one.
fn top_members(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    scan_members(text).or_else(|| serde_members(text))
}

/// [`top_members`] by a byte scan: a manifest is a megabyte of JSON, read at every run, and
/// `serde_json` reads every value of it to find where the members end. This finds the ends
/// of the values only (strings, brackets), and checks the object around them; each value is
/// read in full afterwards by [`canonical::canonicalize`], which refuses what `serde_json`
/// refuses, and keys are read by `serde_json` itself. `None` when the text is anything but
/// a plain object of such members, for [`serde_members`] to decide.
fn scan_members(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let bytes = text.as_bytes();
    let skip_space = |mut at: usize| {
        while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            at += 1;
        }
        at
    };
    let mut at = skip_space(0);
    (bytes.get(at) == Some(&b'{')).then_some(())?;
    at = skip_space(at + 1);
    let mut members = Vec::with_capacity(8);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            let key_end = string_end(bytes, at)?;
            let key = key_text(text.get(at..key_end)?)?;
            at = skip_space(key_end);
            (bytes.get(at) == Some(&b':')).then_some(())?;
            let value_start = skip_space(at + 1);
            let value_end = value_end(bytes, value_start)?;
            members.push((key, text.get(value_start..value_end)?));
            at = skip_space(value_end);
            match bytes.get(at) {
                Some(b',') => at = skip_space(at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_space(at) == bytes.len()).then_some(members)
}

/// An object key (`"…"`, quotes included) as `serde_json` reads it.
fn key_text(quoted: &str) -> Option<Cow<'_, str>> {
    let mut deserializer = serde_json::Deserializer::from_str(quoted);
    let key = serde::de::DeserializeSeed::deserialize(KeySeed, &mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(key)
}

/// The end (after the closing quote) of the string starting at `at`.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    (bytes.get(at) == Some(&b'"')).then_some(())?;
    let mut at = at + 1;
    loop {
        // Eight bytes at a time up to the next quote or backslash: most of a manifest is
        // the text of strings.
        while let Some(chunk) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let stops = zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\'));
            if stops != 0 {
                at += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        match bytes.get(at)? {
            b'"' => return Some(at + 1),
            // A backslash and the character it escapes (the escape is checked when the
            // string is read).
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// `byte` in every byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of every zero byte of `word`, the lowest one exact (a borrow may mark bytes
/// above it).
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(0x01)) & !word & splat(0x80)
}

/// The end of the value starting at `at`: a string, an array or object (to its matching
/// bracket, strings skipped), or a number or literal (to the next delimiter). What is inside
/// is not checked here.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                match bytes.get(at)? {
                    b'"' => {
                        at = string_end(bytes, at)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let len = bytes
                .get(at..)?
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))?;
            (len > 0).then_some(at + len)
        }
    }
}

/// [`top_members`] by `serde_json`.
fn serde_members(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    struct TopVisitor;

    impl<'de> Visitor<'de> for TopVisitor {
        type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some(key) = map.next_key_seed(KeySeed)? {
                members.push((key, map.next_value::<&'de RawValue>()?));
            }
            Ok(members)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(text);
    let members = deserializer.deserialize_map(TopVisitor).ok()?;
    deserializer.end().ok()?;
    Some(
        members
            .into_iter()
            .map(|(key, raw)| (key, raw.get()))
            .collect(),
    )
}

/// Checks the members of a unified manifest and puts the parts together.
fn read_members(
    name: &str,
    (text, shared): (&str, Option<&Arc<str>>),
    members: Vec<Member<'_>>,
    locator: &mut JsonLocator,
    (content_sha256, signed_digest): (ContentHash, [u8; 48]),
    embedded: Embedded,
) -> Result<Loaded, ManifestError> {
    let mut diagnostics = Vec::new();
    let root = FieldPath::root();

    // A duplicate would let the text hold one `normandy` while the signature, which covers
    // the last of them, holds another: refused outright (the signer never writes one).
    let mut by_key: Vec<usize> = (0..members.len()).collect();
    by_key.sort_by(|&a, &b| {
        let key = |index: usize| members.get(index).map_or("", |m| m.key.as_ref());
        canonical::compare_utf16(key(a), key(b))
    });
    for pair in by_key.windows(2) {
        if let [first, second] = *pair
            && let (Some(a), Some(b)) = (members.get(first), members.get(second))
            && a.key == b.key
        {
            let path = root.key(&b.key);
            let position = locator.position_of_offset(b.offset(text));
            diagnostics.push(Diagnostic::error(
                name,
                position,
                path,
                format!(
                    "`{}` appears more than once; a manifest names each member once",
                    b.key
                ),
            ));
        }
    }
    let member = |key: &str| members.iter().rev().find(|m| m.key == key);
    let mut error = |locator: &mut JsonLocator, path: FieldPath, message: String| {
        let position = locator.locate(&path);
        diagnostics.push(Diagnostic::error(name, position, path, message));
    };

    match member("version") {
        Some(version) if version.node().and_then(|v| v.as_u64()) == Some(VERSION) => {}
        Some(version) => error(
            locator,
            root.key("version"),
            format!(
                "unsupported manifest version {}; this client reads version {VERSION}",
                shown(version.raw)
            ),
        ),
        None => error(
            locator,
            root.clone(),
            format!("missing `version` (it must be {VERSION})"),
        ),
    }
    let serial = match member("serial") {
        Some(serial) => match serial.node().and_then(|v| v.as_u64()) {
            Some(serial) if serial <= MAX_SERIAL => Some(serial),
            _ => {
                error(
                    locator,
                    root.key("serial"),
                    format!("`serial` must be an integer from 0 to {MAX_SERIAL}"),
                );
                None
            }
        },
        None => {
            error(locator, root.clone(), "missing `serial`".to_owned());
            None
        }
    };
    let published_at = match member("publishedAt").map(Member::node) {
        Some(Some(Node::String(time))) => match time.parse::<jiff::Timestamp>() {
            Ok(time) => Some(time),
            Err(parse_error) => {
                error(
                    locator,
                    root.key("publishedAt"),
                    format!("`publishedAt` is not an RFC 3339 time: {parse_error}"),
                );
                None
            }
        },
        Some(_) => {
            error(
                locator,
                root.key("publishedAt"),
                "`publishedAt` must be an RFC 3339 time string".to_owned(),
            );
            None
        }
        None => {
            error(locator, root.clone(), "missing `publishedAt`".to_owned());
            None
        }
    };
    let signature = match member("signature") {
        None => None,
        Some(value) => match read_signature(value.node().as_ref()) {
            Ok(signature) => Some(signature),
            Err((key, message)) => {
                let path = match key {
                    Some(key) => root.key("signature").key(key),
                    None => root.key("signature"),
                };
                error(locator, path, message);
                None
            }
        },
    };
    match member("normandy").map(|m| &m.canonical) {
        None => {}
        Some(Canonical {
            shape: Shape::Array,
            bad_records,
            ..
        }) => {
            for &index in bad_records {
                error(
                    locator,
                    root.key("normandy").index(index),
                    "a record must be an object `{\"recipe\": {...}, \"signature\": {...}}`"
                        .to_owned(),
                );
            }
        }
        Some(_) => error(
            locator,
            root.key("normandy"),
            "`normandy` must be an array of `{recipe, signature}` records".to_owned(),
        ),
    }
    if let Some(experiments) = member("experiments")
        && experiments.canonical.shape != Shape::Object
    {
        error(
            locator,
            root.key("experiments"),
            "`experiments` must be an Experiments Manifest v1 object".to_owned(),
        );
    }
    for unknown in members
        .iter()
        .filter(|m| !UNIFIED_KEYS.contains(&m.key.as_ref()))
    {
        let position = locator.position_of_offset(unknown.offset(text));
        diagnostics.push(Diagnostic::warning(
            name,
            position,
            root.key(&unknown.key),
            "unknown member (kept, and covered by the signature)".to_owned(),
        ));
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(ManifestError {
            diagnostics: errors_first(sorted(diagnostics)),
        });
    }
    let (Some(serial), Some(published_at)) = (serial, published_at) else {
        // Both were checked above; a missing one is an error and returned early.
        return Err(ManifestError { diagnostics });
    };

    let normandy = match embedded.normandy {
        Some(parsed) => {
            let (set, found) = usable(parsed)?;
            diagnostics.extend(found);
            set
        }
        None => normandy::RecipeSet {
            recipes: Vec::new(),
            container: normandy::Container::Array,
        },
    };
    let experiments = match embedded.experiments {
        Some(parsed) => {
            let (manifest, found) = usable(parsed)?;
            diagnostics.extend(found);
            Some(manifest)
        }
        None => None,
    };
    Ok(Loaded {
        name: name.to_owned(),
        source: ManifestSource::Unified(UnifiedManifest {
            serial,
            published_at,
            normandy,
            experiments,
            signature,
        }),
        diagnostics: sorted(diagnostics),
        document: std::sync::OnceLock::new(),
        text: Some(shared.map_or_else(|| Arc::from(text), Arc::clone)),
        content_sha256,
        signed_digest: Some(signed_digest),
    })
}

/// A small member as `serde_json` shows it (for messages).
fn shown(raw: &str) -> String {
    serde_json::from_str::<Value>(raw).map_or_else(|_| raw.to_owned(), |v| v.to_string())
}

/// Reads the top-level `signature` object; on error, the member at fault and why.
fn read_signature(
    value: Option<&Node<'_>>,
) -> Result<ManifestSignature, (Option<&'static str>, String)> {
    let Some(value @ Node::Object(_)) = value else {
        return Err((
            None,
            "`signature` must be an object {signature, keyId, alg}".to_owned(),
        ));
    };
    let text = |key: &'static str| match value.get(key) {
        None | Some(Node::Null) => Ok(None),
        Some(Node::String(text)) => Ok(Some(text.to_string())),
        Some(_) => Err((Some(key), format!("`{key}` must be a string"))),
    };
    let signature = text("signature")?.ok_or((None, "missing `signature`".to_owned()))?;
    Ok(ManifestSignature {
        signature,
        key_id: text("keyId")?,
        alg: text("alg")?.unwrap_or_else(|| crate::signature::ALGORITHM.to_owned()),
    })
}

/// Parses the top-level member `key` (the text `member`, at `offset` of the document) with a
/// core parser, and moves the diagnostics back into the whole document (positions and field
/// paths).
fn parse_member<T>(
    name: &str,
    member: &str,
    locator: &mut JsonLocator,
    offset: usize,
    key: &str,
    parse: impl FnOnce(&str, &str) -> Parsed<T>,
) -> Parsed<T> {
    let mut parsed = parse(name, member);
    if !parsed.diagnostics.is_empty() {
        let base = locator.position_of_offset(offset);
        for diagnostic in &mut parsed.diagnostics {
            diagnostic.position = shift(base, diagnostic.position);
            let mut path = vec![PathSegment::Key(key.to_owned())];
            path.append(&mut diagnostic.path.0);
            diagnostic.path = FieldPath(path);
        }
    }
    parsed
}

/// `position` in a text that starts at `base` of the document, as a position in the document.
fn shift(base: Position, position: Position) -> Position {
    if position.line <= 1 {
        Position {
            line: base.line,
            column: base.column + position.column.saturating_sub(1),
        }
    } else {
        Position {
            line: base.line + position.line - 1,
            column: position.column,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What reading the members decides, whichever way they were found: the members when
    /// every value is JSON `canonicalize` accepts, else nothing (the document is then read
    /// by `serde_json` as a whole, which reports the problem).
    fn outcome(members: Option<Vec<(Cow<'_, str>, &str)>>) -> Option<Vec<(String, String)>> {
        let members = members?;
        members
            .iter()
            .all(|(_, raw)| canonical::canonicalize(raw, MEMBER_DEPTH, false).is_ok())
            .then(|| {
                members
                    .iter()
                    .map(|(key, raw)| (key.to_string(), (*raw).to_owned()))
                    .collect()
            })
    }

    fn assert_same(text: &str) {
        let scanned = scan_members(text);
        if scanned.is_some() {
            assert_eq!(outcome(scanned), outcome(serde_members(text)), "{text:?}");
        }
    }

    #[test]
    fn the_scan_finds_the_members_serde_json_finds() {
        for text in [
            r#"{}"#,
            " {\n} ",
            r#"{"a": 1, "b": [1, {"c": "]"}], "c\u0041": "x\"y", "d": null, "e": -1.5e3}"#,
            r#"{"a": "\\", "b": {"x": [[], {}]}, "a": true}"#,
            r#"{"format":"flightdeck-manifest","normandy":[{"recipe":{"id":1}}]}"#,
        ] {
            let scanned = scan_members(text);
            assert!(scanned.is_some(), "{text}");
            assert_eq!(outcome(scanned), outcome(serde_members(text)), "{text}");
        }
        for text in [
            "",
            "[]",
            "{",
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"{"a": 1} x"#,
            r#"{"a": [1, 2}"#,
            r#"{"a": tru}"#,
            r#"{"a": 01}"#,
            "{\"a\": \"x\ny\"}",
            r#"{"a": [1,]}"#,
            r#"{a: 1}"#,
        ] {
            assert_same(text);
            assert!(outcome(serde_members(text)).is_none(), "{text}");
            assert!(outcome(scan_members(text)).is_none(), "{text}");
        }
    }

    #[test]
    fn strings_end_at_their_quote_wherever_it_falls() {
        for len in 0..24 {
            for escape in ["", "\\\"", "\\\\", "\\u0022", "é"] {
                for at in 0..=len {
                    let mut inner = "x".repeat(len);
                    inner.insert_str(at, escape);
                    let text = format!("{{\"k\":\"{inner}\",\"m\":[\"{inner}\"]}}");
                    let scanned = scan_members(&text).expect("members");
                    assert_eq!(scanned[0].1, format!("\"{inner}\""), "{text}");
                    assert_eq!(outcome(Some(scanned)), outcome(serde_members(&text)));
                }
            }
        }
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i32>().prop_map(serde_json::Value::from),
            prop::sample::select(vec!["", "x", "\"", "\\", "]}", "é", "a\nb", "\u{2028}"])
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (prop::sample::select(vec!["a", "b", "\"k", "é"]), inner),
                    0..4
                )
                .prop_map(|kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_scan_agrees_with_serde_json_on_objects(
            members in prop::collection::vec((prop::sample::select(vec!["a", "b", "\\u0061"]), json()), 0..5),
            pretty in any::<bool>(),
        ) {
            let mut text = String::from("{");
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let value = if pretty {
                    serde_json::to_string_pretty(value).unwrap_or_default()
                } else {
                    value.to_string()
                };
                text.push_str(&format!("\n  \"{key}\" : {value}"));
            }
            text.push_str("\n}\n");
            let scanned = scan_members(&text);
            prop_assert!(scanned.is_some(), "{}", text);
            prop_assert_eq!(outcome(scanned), outcome(serde_members(&text)));
        }

        #[test]
        fn the_scan_agrees_with_serde_json_on_damaged_objects(
            value in json(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
                "", "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "x", "1", "\n", "\u{0}",
            ])), 1..4),
        ) {
            let mut text = serde_json::json!({"format": "f", "normandy": value, "serial": 1}).to_string();
            for (at, insert) in edits {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, insert);
            }
            assert_same(&text);
        }
    }
}
