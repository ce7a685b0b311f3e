//! Reading validated fields out of parsed JSON while collecting positioned diagnostics.

use std::collections::HashSet;

use crate::diagnostic::{Diagnostic, FieldPath, JsonLocator, PathSegment, Position};

use super::JsonMap;
pub(crate) use super::tree::{Json, JsonObj};

/// Where a value sits in the document while it is being read: a borrowed chain that costs
/// nothing to extend and becomes a [`FieldPath`] only when a diagnostic needs one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loc<'a> {
    /// The document root.
    Root,
    /// A member of the object at the parent location.
    Key(&'a Loc<'a>, &'a str),
    /// An element of the array at the parent location.
    Index(&'a Loc<'a>, usize),
}

impl<'a> Loc<'a> {
    /// The member `key` of the value here.
    pub fn key(&'a self, key: &'a str) -> Loc<'a> {
        Loc::Key(self, key)
    }

    /// The element `idx` of the value here.
    pub fn index(&'a self, idx: usize) -> Loc<'a> {
        Loc::Index(self, idx)
    }

    /// The owned field path.
    pub fn to_path(self) -> FieldPath {
        let mut segments = Vec::new();
        let mut here = &self;
        loop {
            match here {
                Loc::Root => break,
                Loc::Key(parent, key) => {
                    segments.push(PathSegment::Key((*key).to_owned()));
                    here = parent;
                }
                Loc::Index(parent, idx) => {
                    segments.push(PathSegment::Index(*idx));
                    here = parent;
                }
            }
        }
        segments.reverse();
        FieldPath(segments)
    }
}

/// The file being parsed and the diagnostics found so far.
pub(crate) struct Cx<'a, 't> {
    pub file: &'a str,
    pub text: &'a str,
    pub diagnostics: Vec<Diagnostic>,
    /// How many of `diagnostics` are errors.
    pub errors: usize,
    /// The tree read from `text`, which places most fields without scanning the text.
    root: Option<&'t Json<'a>>,
    /// Positions diagnostics; one per file so that a diagnostic per recipe stays linear.
    locator: JsonLocator<'a>,
}

impl<'a, 't> Cx<'a, 't> {
    /// A context for the text `text` of `file` (valid JSON once a field is located).
    pub fn new(file: &'a str, text: &'a str) -> Cx<'a, 't> {
        Cx {
            file,
            text,
            diagnostics: Vec::new(),
            errors: 0,
            root: None,
            // Fields are only located once serde_json has accepted the text.
            locator: JsonLocator::for_valid_json(text),
        }
    }

    /// A context for a text that serde_json is still reading (a streamed array): fields
    /// may be located before the end of the text is known to be valid, so the locator reads
    /// every token instead of skipping containers by their brackets. Only diagnostics pay
    /// for that.
    pub fn streaming(file: &'a str, text: &'a str) -> Cx<'a, 't> {
        Cx {
            locator: JsonLocator::new(text),
            ..Cx::new(file, text)
        }
    }

    /// A context for the text `text` of `file` and the tree `root` read from it.
    pub fn with_tree(file: &'a str, text: &'a str, root: &'t Json<'a>) -> Cx<'a, 't> {
        Cx {
            root: Some(root),
            ..Cx::new(file, text)
        }
    }

    /// Where the value at `path` starts, or its deepest existing ancestor (as
    /// [`JsonLocator::offset`]).
    fn offset(&mut self, path: &FieldPath) -> usize {
        match self
            .root
            .and_then(|root| tree_offset(self.text, root, path))
        {
            Some(offset) => offset,
            None => self.locator.offset(path),
        }
    }

    /// The position of the value at `path` (as [`JsonLocator::locate`]).
    fn locate(&mut self, path: &FieldPath) -> Position {
        let offset = self.offset(path);
        self.locator.position_of_offset(offset)
    }

    /// An error about the field at `path`.
    pub fn error(&mut self, path: &Loc, message: String) {
        self.error_path(path.to_path(), message);
    }

    /// A warning about the field at `path`.
    pub fn warning(&mut self, path: &Loc, message: String) {
        self.warning_path(path.to_path(), message);
    }

    /// An error about the field at an owned `path`.
    pub fn error_path(&mut self, path: FieldPath, message: String) {
        self.errors += 1;
        let position = self.locate(&path);
        self.diagnostics
            .push(Diagnostic::error(self.file, position, path, message));
    }

    /// A warning about the field at an owned `path`.
    pub fn warning_path(&mut self, path: FieldPath, message: String) {
        let position = self.locate(&path);
        self.diagnostics
            .push(Diagnostic::warning(self.file, position, path, message));
    }

    /// An error at an explicit position (used for positions inside strings).
    pub fn error_at(&mut self, position: Position, path: &FieldPath, message: String) {
        self.errors += 1;
        self.diagnostics.push(Diagnostic::error(
            self.file,
            position,
            path.clone(),
            message,
        ));
    }

    /// The byte offset where the value at `path` starts in the text.
    pub fn offset_of(&mut self, path: &FieldPath) -> usize {
        self.offset(path)
    }

    /// The position of a byte offset in the text.
    pub fn position_of_offset(&mut self, offset: usize) -> Position {
        self.locator.position_of_offset(offset)
    }

    /// A required string member; reports missing or mistyped members.
    pub fn required_str<'v>(&mut self, map: &'v JsonObj, path: &Loc, key: &str) -> Option<&'v str> {
        match map.get(key) {
            None => {
                self.error(&path.key(key), format!("missing required field \"{key}\""));
                None
            }
            Some(value) => self.expect_str(value, &path.key(key)),
        }
    }

    /// An optional string member (absent → `Ok(None)`, mistyped → `Err`).
    pub fn optional_str<'v>(
        &mut self,
        map: &'v JsonObj,
        path: &Loc,
        key: &str,
    ) -> Result<Option<&'v str>, ()> {
        match map.get(key) {
            None => Ok(None),
            Some(value) => self.expect_str(value, &path.key(key)).map(Some).ok_or(()),
        }
    }

    /// An optional boolean member (absent → `Ok(None)`, mistyped → `Err`).
    pub fn optional_bool(
        &mut self,
        map: &JsonObj,
        path: &Loc,
        key: &str,
    ) -> Result<Option<bool>, ()> {
        match map.get(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(other) => {
                self.error(
                    &path.key(key),
                    format!("expected a boolean, found {}", type_name(other)),
                );
                Err(())
            }
        }
    }

    /// The value as a string, or an error.
    pub fn expect_str<'v>(&mut self, value: &'v Json, path: &Loc) -> Option<&'v str> {
        match value {
            Json::String(s) => Some(s.as_ref()),
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The value as an object, or an error.
    pub fn expect_object<'v, 'j>(
        &mut self,
        value: &'v Json<'j>,
        path: &Loc,
    ) -> Option<&'v JsonObj<'j>> {
        match value {
            Json::Object(map) => Some(map),
            other => {
                self.error(
                    path,
                    format!("expected an object, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The value as an array, or an error.
    pub fn expect_array<'v, 'j>(
        &mut self,
        value: &'v Json<'j>,
        path: &Loc,
    ) -> Option<&'v [Json<'j>]> {
        match value {
            Json::Array(items) => Some(items),
            other => {
                self.error(
                    path,
                    format!("expected an array, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The value as a non-negative integer (an integral JSON number), or an error.
    pub fn expect_id(&mut self, value: &Json, path: &Loc) -> Option<u64> {
        match as_whole_number(value) {
            Some(n) if n >= 0 => u64::try_from(n).ok(),
            _ => {
                self.error(
                    path,
                    format!("expected a non-negative integer, found {}", describe(value)),
                );
                None
            }
        }
    }
}

/// The strings met so far in a list, to report repeats: a recipe lists a few, which a linear
/// search finds faster than hashing; a long list is hashed so it stays linear.
#[derive(Debug, Default)]
pub(crate) struct SeenStrings<'s> {
    few: Vec<&'s str>,
    many: HashSet<&'s str>,
}

impl<'s> SeenStrings<'s> {
    /// The most strings searched linearly.
    const FEW: usize = 16;

    /// Records `s`; `false` when it was recorded before.
    pub fn insert(&mut self, s: &'s str) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&s) {
                return false;
            }
            if self.few.len() < Self::FEW {
                self.few.push(s);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(s)
    }
}

/// The first offset at or after `at` that is not JSON whitespace.
fn skip_json_ws(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = at;
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Where `s` sits in `text`, when it is a slice of it.
fn offset_in(text: &str, s: &str) -> Option<usize> {
    let start = (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    (start + s.len() <= text.len()).then_some(start)
}

/// Where the value at `path` starts in `text`, found by walking the tree `root` read from it:
/// exactly what [`JsonLocator::offset`] gives, without scanning the text. `None` when the tree
/// cannot tell (an escaped key, an element that is neither an object with a plain first key
/// nor a plain string, a repeated key on the way); the locator then scans.
///
/// A key without escapes is a slice of the text, so its value starts after the key's closing
/// quote and the colon; an object starts at the brace before its first key. With a repeated
/// key the tree holds the last value but the locator finds the first, so only the last step
/// of a path may pass one.
fn tree_offset(text: &str, root: &Json, path: &FieldPath) -> Option<usize> {
    let mut at = skip_json_ws(text, 0);
    let mut here = root;
    let steps = path.0.len();
    for (idx, segment) in path.0.iter().enumerate() {
        match (here, segment) {
            (Json::Object(map), PathSegment::Key(wanted)) => {
                let Some((key, value)) = map.iter().find(|(key, _)| key == wanted) else {
                    return Some(at);
                };
                if map.has_repeated_keys() && idx + 1 < steps {
                    return None;
                }
                at = value_offset(text, key)?;
                here = value;
            }
            (Json::Array(items), PathSegment::Index(wanted)) => {
                let Some(item) = items.get(*wanted) else {
                    return Some(at);
                };
                at = element_offset(text, item)?;
                here = item;
            }
            _ => return Some(at),
        }
    }
    Some(at)
}

/// The offset of the value of the member whose key `key` is a slice of `text`.
fn value_offset(text: &str, key: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let start = offset_in(text, key)?;
    let close = start + key.len();
    if start == 0 || bytes.get(start - 1) != Some(&b'"') || bytes.get(close) != Some(&b'"') {
        return None;
    }
    let colon = skip_json_ws(text, close + 1);
    (bytes.get(colon) == Some(&b':')).then(|| skip_json_ws(text, colon + 1))
}

/// The offset of an array element: an object whose first key is a slice of `text`, or a
/// string that is one.
fn element_offset(text: &str, item: &Json) -> Option<usize> {
    let bytes = text.as_bytes();
    match item {
        Json::Object(map) => {
            let (key, _) = map.iter().next()?;
            let quote = offset_in(text, key)?.checked_sub(1)?;
            if bytes.get(quote) != Some(&b'"') {
                return None;
            }
            let mut at = quote;
            loop {
                at = at.checked_sub(1)?;
                match bytes.get(at)? {
                    b' ' | b'\t' | b'\n' | b'\r' => {}
                    b'{' => return Some(at),
                    _ => return None,
                }
            }
        }
        Json::String(s) => {
            let start = offset_in(text, s)?;
            let quote = start.checked_sub(1)?;
            (bytes.get(quote) == Some(&b'"') && bytes.get(start + s.len()) == Some(&b'"'))
                .then_some(quote)
        }
        _ => None,
    }
}

/// An integral JSON number as `i64` (`3` and `3.0` both qualify, as in JavaScript).
pub(crate) fn as_whole_number(value: &Json) -> Option<i64> {
    let Json::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Beyond 2^53 doubles are not exact integers in JavaScript terms; reject them.
    if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
        Some(f as i64)
    } else {
        None
    }
}

/// "a string", "an object", … for messages.
pub(crate) fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A short description of a value for messages: scalars are shown, containers named.
pub(crate) fn describe(value: &Json) -> String {
    match value {
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) if s.chars().count() <= 40 => {
            format!("the string {}", serde_json::Value::from(s.as_ref()))
        }
        Json::Bool(b) => format!("the boolean {b}"),
        other => type_name(other).to_owned(),
    }
}

/// Every member of `map` whose key is not in `known`, in order.
pub(crate) fn extras(map: &JsonObj, known: &[&str]) -> JsonMap {
    let mut extra = JsonMap::new();
    for (key, value) in map.iter() {
        if !known.contains(&key) {
            extra.insert(key.to_owned(), value.to_value());
        }
    }
    extra
}

/// The byte offset of a 1-based line/column (columns in characters) in `text`.
pub(crate) fn byte_offset(text: &str, position: Position) -> usize {
    let mut line_start = 0;
    for _ in 1..position.line {
        match text.get(line_start..).and_then(|rest| rest.find('\n')) {
            Some(newline) => line_start += newline + 1,
            None => return text.len(),
        }
    }
    let line = text.get(line_start..).unwrap_or("");
    let within = line
        .char_indices()
        .nth(position.column.saturating_sub(1))
        .map_or(line.len(), |(idx, _)| idx);
    line_start + within
}

/// Maps a byte offset into the *decoded* JSON string whose literal (opening quote included)
/// starts at `literal_start` in `text` to the byte offset of the same character in `text`.
///
/// Escapes are walked, so `\"` or `\u00e9` inside a filter expression do not shift the
/// position. Returns `None` when `literal_start` is not a string literal or the offset runs
/// past its end.
pub(crate) fn map_string_offset(text: &str, literal_start: usize, offset: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(literal_start) != Some(&b'"') {
        return None;
    }
    let mut raw = literal_start + 1;
    let mut decoded = 0;
    while decoded < offset {
        match *bytes.get(raw)? {
            b'"' => return None,
            b'\\' => {
                let (raw_len, decoded_len) = escape_lengths(bytes, raw)?;
                raw += raw_len;
                decoded += decoded_len;
            }
            _ => {
                let ch = text.get(raw..)?.chars().next()?;
                raw += ch.len_utf8();
                decoded += ch.len_utf8();
            }
        }
    }
    // An offset landing inside a multi-byte decoded character maps to its start; the loop
    // above overshoots in that case only for escapes, which is the best available answer.
    Some(raw)
}

/// Raw and decoded byte lengths of the escape sequence starting at `at` (a backslash).
fn escape_lengths(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    match *bytes.get(at + 1)? {
        b'u' => {
            let unit = hex4(bytes, at + 2)?;
            if (0xD800..0xDC00).contains(&unit)
                && bytes.get(at + 6) == Some(&b'\\')
                && bytes.get(at + 7) == Some(&b'u')
                && hex4(bytes, at + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low))
            {
                // A surrogate pair is one supplementary character: 4 UTF-8 bytes.
                return Some((12, 4));
            }
            let len = char::from_u32(unit).map_or(3, char::len_utf8);
            Some((6, len))
        }
        _ => Some((2, 1)),
    }
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offset_inverts_position_of_offset() {
        let text = "ab\ncdé\n\nxyz";
        for offset in [0, 1, 3, 5, 7, 8, 9, 11] {
            let position = Position::of_offset(text, offset);
            assert_eq!(byte_offset(text, position), offset, "offset {offset}");
        }
    }

    #[test]
    fn maps_offsets_through_escapes() {
        // The decoded string is `a "b" é x`.
        let text = r#"{"f": "a \"b\" \u00e9 x"}"#;
        let start = 6;
        assert_eq!(&text[start..start + 1], "\"");
        let decoded = "a \"b\" é x";
        let x_decoded = decoded.find('x').unwrap();
        let x_raw = text.find('x').unwrap();
        assert_eq!(map_string_offset(text, start, x_decoded), Some(x_raw));
        assert_eq!(map_string_offset(text, start, 0), Some(start + 1));
        let b_decoded = decoded.find('b').unwrap();
        assert_eq!(map_string_offset(text, start, b_decoded), text.find('b'));
        assert_eq!(map_string_offset(text, start, 100), None);
        assert_eq!(map_string_offset(text, 0, 1), None);
    }

    #[test]
    fn maps_surrogate_pairs_as_one_character() {
        let text = r#""\ud83d\ude00z""#;
        assert_eq!(map_string_offset(text, 0, 4), Some(13));
    }

    /// Every path into `value`, plus a missing member or element below each container.
    fn paths_into(value: &serde_json::Value, here: FieldPath, out: &mut Vec<FieldPath>) {
        out.push(here.clone());
        match value {
            serde_json::Value::Object(map) => {
                out.push(here.key("no such key"));
                for (key, member) in map {
                    paths_into(member, here.key(key), out);
                }
            }
            serde_json::Value::Array(items) => {
                out.push(here.index(items.len()));
                for (idx, item) in items.iter().enumerate() {
                    paths_into(item, here.index(idx), out);
                }
            }
            _ => {}
        }
    }

    /// Offsets found by walking the tree are those the locator finds by scanning.
    fn assert_tree_offsets_match_scanning(text: &str) {
        let tree: Json = serde_json::from_str(text).expect("tree");
        let value: serde_json::Value = serde_json::from_str(text).expect("value");
        let mut paths = Vec::new();
        paths_into(&value, FieldPath::root(), &mut paths);
        let mut walking = Cx::with_tree("f.json", text, &tree);
        let mut scanning = JsonLocator::for_valid_json(text);
        for path in &paths {
            assert_eq!(
                walking.offset_of(path),
                scanning.offset(path),
                "{path} in {text}"
            );
        }
    }

    #[test]
    fn tree_offsets_match_scanned_ones() {
        for text in [
            r#"[{"id": 1, "recipe": {"a": [1, {"b": 2}]}}, {"id": 2}, "s", {"x": {}}]"#,
            "  [ {\n \"id\" :1 } ,\t{\"id\":2,\"id\":3} ]  ",
            r#"{"count": 2, "results": [{"id": 1}, {"id": 2}], "next": null}"#,
            r#"{"data": [{"id": 1}, {"i\u0064": 2}], "data": [{"late": true}]}"#,
            r#"{"d\u0061ta": [{"id": 1}], "other": [1, 2]}"#,
            r#"[{}, {"id": 1}]"#,
            r#"[1, 2, {"id": 3}]"#,
            r#"["a", "b\"c", "d"]"#,
            r#"{"k": 1, "k": {"deep": [true]}, "j": []}"#,
            "[]",
            "{}",
            "\"just a string\"",
        ] {
            assert_tree_offsets_match_scanning(text);
        }
    }

    proptest::proptest! {
        #[test]
        fn tree_offsets_agree_with_scanning(value in json_value(), pretty: bool) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).expect("JSON")
            } else {
                serde_json::to_string(&value).expect("JSON")
            };
            assert_tree_offsets_match_scanning(&text);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<i32>().prop_map(serde_json::Value::from),
            "[a-z\"\\\\é]{0,4}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::vec(("[a-z\"é]{0,3}", inner), 0..5).prop_map(|members| {
                    serde_json::Value::Object(members.into_iter().collect())
                }),
            ]
        })
    }

    #[test]
    fn seen_strings_finds_repeats_in_short_and_long_lists() {
        let names: Vec<String> = (0..40).map(|idx| format!("n{}", idx % 30)).collect();
        let mut seen = SeenStrings::default();
        let repeats: Vec<bool> = names.iter().map(|name| !seen.insert(name)).collect();
        let expected: Vec<bool> = (0..40).map(|idx| idx >= 30).collect();
        assert_eq!(repeats, expected);
    }

    #[test]
    fn whole_numbers_accept_integral_doubles_only() {
        let number = |text: &str| as_whole_number(&serde_json::from_str(text).expect("JSON"));
        assert_eq!(number("3"), Some(3));
        assert_eq!(number("3.0"), Some(3));
        assert_eq!(number("3.5"), None);
        assert_eq!(number("\"3\""), None);
        assert_eq!(number("1e300"), None);
    }
}
