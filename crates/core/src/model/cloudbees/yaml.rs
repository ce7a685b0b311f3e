//! A YAML document as a tree of nodes that know where they are.
//!
//! serde-saphyr does the YAML work (YAML 1.2 core scalars, anchors, duplicate-key detection,
//! resource budgets, error positions); this module asks it for a generic tree in which every
//! node and every mapping key is wrapped in `Spanned`, so the validator in `parse.rs` can point
//! at the exact line and column of any field, not only of the first problem.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter as _, Spanned};

use crate::diagnostic::Position;

/// Largest YAML file accepted, in bytes. Real experiment files are a few kilobytes.
pub(crate) const MAX_YAML_BYTES: usize = 1024 * 1024;

/// Deepest nesting accepted. The deepest legitimate path
/// (`platforms[i].conditions[j].property.operand[k]`) has seven levels; the limit also keeps
/// the recursive deserialiser far away from the end of the stack.
const MAX_DEPTH: usize = 24;

/// Most nodes accepted in one file (after alias expansion counts against the alias budget).
const MAX_NODES: usize = 100_000;

/// One YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// What the node holds.
    pub kind: Kind,
    /// Where the node starts (for a block mapping or sequence, its first entry).
    pub position: Position,
    /// Byte range of a scalar in the source, when known; used to recover the spelling of
    /// numbers that should have been strings (`semver: 1.30`).
    pub span: Option<(usize, usize)>,
}

/// The node's content, typed by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string (every quoted scalar is one).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are unique (the loader rejects duplicates).
    Map(Vec<(Key, Node)>),
}

/// A mapping key: scalar keys are read as their text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// The key text.
    pub name: String,
    /// Where the key starts.
    pub position: Position,
}

/// A file that is not YAML, or exceeds a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadError {
    /// Where the problem was found.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl Node {
    /// A short name of the node's type, for messages ("expected a string, found a sequence").
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a sequence",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The source text of a scalar, when the loader knew its byte range.
    pub fn raw<'a>(&self, text: &'a str) -> Option<&'a str> {
        let (start, len) = self.span?;
        text.get(start..start.checked_add(len)?)
    }
}

/// Parses one YAML document into a [`Node`] tree.
pub(crate) fn load(text: &str) -> Result<Node, LoadError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(LoadError {
            position: Position::START,
            message: format!(
                "file is {} bytes, more than the limit of {MAX_YAML_BYTES} bytes",
                text.len()
            ),
        });
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: MAX_NODES,
        },
    };
    match serde_saphyr::from_str_with_options::<Spanned<RawNode>>(text, options) {
        Ok(spanned) => Ok(convert(spanned, text)),
        Err(err) => {
            let position = err
                .location()
                .map_or(Position::START, |loc| position_of(&loc));
            Err(LoadError {
                position,
                message: format!("invalid YAML: {}", describe(&err)),
            })
        }
    }
}

/// The library's message for `err`, except for the limits set here: its budget errors print
/// in a debugging form (`budget breached: Depth { depth: 25 }`), and deep flow collections
/// (`[[[…`) and deep block collections should read the same.
fn describe(err: &serde_saphyr::Error) -> Cow<'_, str> {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    let mut inner = err;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let too_deep = || Cow::Owned(format!("nesting deeper than {MAX_DEPTH} levels"));
    match inner {
        Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => too_deep(),
        Error::ExternalMessage { source, .. }
            if matches!(
                &**source,
                serde_saphyr::ExternalMessageSource::Parser(scan)
                    if matches!(scan.kind(), serde_saphyr::granit_parser::ErrorKind::RecursionLimitExceeded)
            ) =>
        {
            too_deep()
        }
        Error::Budget {
            breach: BudgetBreach::Nodes { .. },
            ..
        } => Cow::Owned(format!("more than {MAX_NODES} values")),
        Error::Budget { .. } => {
            Cow::Borrowed("the document exceeds a size limit of the YAML reader")
        }
        _ => serde_saphyr::DefaultMessageFormatter.format_message(err.without_snippet()),
    }
}

fn position_of(location: &serde_saphyr::Location) -> Position {
    Position {
        line: usize::try_from(location.line())
            .unwrap_or(usize::MAX)
            .max(1),
        column: usize::try_from(location.column())
            .unwrap_or(usize::MAX)
            .max(1),
    }
}

fn span_of(location: &serde_saphyr::Location) -> Option<(usize, usize)> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    Some((start, len))
}

fn convert(spanned: Spanned<RawNode>, text: &str) -> Node {
    let position = position_of(&spanned.referenced);
    let kind = match spanned.value {
        RawNode::Null => Kind::Null,
        RawNode::Bool(b) => Kind::Bool(b),
        RawNode::Int(i) => Kind::Int(i),
        RawNode::Float(f) => Kind::Float(f),
        RawNode::Str(s) => Kind::Str(s),
        RawNode::Seq(items) => Kind::Seq(items.into_iter().map(|n| convert(n, text)).collect()),
        RawNode::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key_position = position_of(&key.referenced);
                    let name = key.value.0;
                    (
                        Key {
                            name,
                            position: key_position,
                        },
                        convert(value, text),
                    )
                })
                .collect(),
        ),
    };
    let span = match kind {
        Kind::Seq(_) | Kind::Map(_) => None,
        _ => span_of(&spanned.referenced)
            .filter(|(start, len)| start.checked_add(*len).is_some_and(|end| end <= text.len())),
    };
    Node {
        kind,
        position,
        span,
    }
}

/// What serde-saphyr hands us before positions are converted.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<KeyText>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(deserializer)
    }

    fn visit_bool<E>(self, b: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<RawNode, E> {
        Ok(i64::try_from(u).map_or(RawNode::Float(u as f64), RawNode::Int))
    }

    fn visit_i128<E>(self, i: i128) -> Result<RawNode, E> {
        Ok(i64::try_from(i).map_or(RawNode::Float(i as f64), RawNode::Int))
    }

    fn visit_u128<E>(self, u: u128) -> Result<RawNode, E> {
        Ok(i64::try_from(u).map_or(RawNode::Float(u as f64), RawNode::Int))
    }

    fn visit_f64<E>(self, f: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(s))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<RawNode, E> {
        String::from_utf8(bytes.to_vec())
            .map(RawNode::Str)
            .map_err(|_| E::custom("binary values are not supported"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}

/// A mapping key read as text; collections as keys are refused.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyTextVisitor)
    }
}

struct KeyTextVisitor;

impl Visitor<'_> for KeyTextVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    fn visit_unit<E>(self) -> Result<KeyText, E> {
        Ok(KeyText("null".to_owned()))
    }

    fn visit_none<E>(self) -> Result<KeyText, E> {
        Ok(KeyText("null".to_owned()))
    }

    fn visit_bool<E>(self, b: bool) -> Result<KeyText, E> {
        Ok(KeyText(b.to_string()))
    }

    fn visit_i64<E>(self, i: i64) -> Result<KeyText, E> {
        Ok(KeyText(i.to_string()))
    }

    fn visit_u64<E>(self, u: u64) -> Result<KeyText, E> {
        Ok(KeyText(u.to_string()))
    }

    fn visit_f64<E>(self, f: f64) -> Result<KeyText, E> {
        Ok(KeyText(crate::value::js_number_to_string(f)))
    }

    fn visit_str<E>(self, s: &str) -> Result<KeyText, E> {
        Ok(KeyText(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<KeyText, E> {
        Ok(KeyText(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn scalars_follow_the_core_schema_and_keep_positions() {
        let text = "a: yes\nb: true\nc: '10'\nd: 10\ne: 1.5\nf:\ng: 2020-06-17T14:56:19.608Z\n";
        let node = load(text).unwrap();
        let Kind::Map(entries) = node.kind else {
            panic!("expected a mapping")
        };
        let kinds: Vec<_> = entries.iter().map(|(_, v)| v.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Str("yes".into()),
                Kind::Bool(true),
                Kind::Str("10".into()),
                Kind::Int(10),
                Kind::Float(1.5),
                Kind::Null,
                Kind::Str("2020-06-17T14:56:19.608Z".into()),
            ]
        );
        assert_eq!(entries[3].0.position, at(4, 1));
        assert_eq!(entries[3].1.position, at(4, 4));
        assert_eq!(entries[4].1.raw(text), Some("1.5"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = load("a: [1, 2\nb: c\n").unwrap_err();
        assert_eq!(err.position.line, 2);
        assert!(err.message.starts_with("invalid YAML: "), "{}", err.message);
        let err = load("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.position, at(2, 1));
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }

    #[test]
    fn limits_are_enforced_without_overflowing_the_stack() {
        let flow = "[".repeat(100_000);
        assert!(load(&flow).is_err());
        let mut block = String::new();
        for depth in 0..200 {
            block.push_str(&" ".repeat(depth));
            block.push_str("- \n");
        }
        assert!(load(&block).is_err());
        // Block and flow nesting read the same, without the library's debugging form.
        for deep in [block, "- ".repeat(100), "[".repeat(30)] {
            assert_eq!(
                load(&deep).unwrap_err().message,
                "invalid YAML: nesting deeper than 24 levels",
                "{deep:.40}"
            );
        }
        // `levels` nested block mappings around a scalar.
        let nested = |levels: usize| {
            let mut text = String::new();
            for depth in 0..levels {
                text.push_str(&" ".repeat(2 * depth));
                text.push_str("k:\n");
            }
            text.push_str(&" ".repeat(2 * levels));
            text.push_str("leaf\n");
            text
        };
        assert!(
            load(&nested(MAX_DEPTH)).is_ok(),
            "{MAX_DEPTH} levels are allowed"
        );
        assert_eq!(
            load(&nested(MAX_DEPTH + 1)).unwrap_err().message,
            "invalid YAML: nesting deeper than 24 levels"
        );
        let big = "a".repeat(MAX_YAML_BYTES + 1);
        assert!(load(&big).unwrap_err().message.contains("limit"));
    }
}
