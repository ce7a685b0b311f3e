//! Validation problems that say where they are: file, line, column and field path.
//!
//! Parsers in [`crate::model`] report every problem they find as a [`Diagnostic`] instead of
//! stopping at the first. A diagnostic is rendered as `file:line:col: severity: path: message`,
//! the form editors and CI logs understand.
//!
//! For JSON inputs the parsers validate a `serde_json::Value` and then find the position of the
//! offending field in the source text with [`locate_json`], so positions do not have to be
//! threaded through deserialisation.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// How serious a problem is. Errors make a document invalid; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The document (or the item it belongs to) is rejected.
    Error,
    /// Worth knowing, but the document is still accepted (e.g. an unknown key).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One segment of a field path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A field path such as `experiments[2].xpiHash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<PathSegment>);

impl FieldPath {
    /// The empty path (the document root).
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_owned()));
        FieldPath(segments)
    }

    /// This path extended by an array index.
    pub fn index(&self, idx: usize) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(idx));
        FieldPath(segments)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (idx, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if idx == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A position in a source text: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    /// The first character of a file.
    pub const START: Position = Position { line: 1, column: 1 };

    /// The position of a byte offset in `text` (clamped to the text, and to a char boundary).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// A problem found while parsing or validating an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file the problem is in, as the user named it.
    pub file: String,
    /// Where in the file.
    pub position: Position,
    /// The field the problem is about (root when it is about the whole document).
    pub path: FieldPath,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
}

impl Diagnostic {
    /// An error at `position`.
    pub fn error(file: &str, position: Position, path: FieldPath, message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            position,
            path,
            message,
        }
    }

    /// A warning at `position`.
    pub fn warning(file: &str, position: Position, path: FieldPath, message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, position, path, message)
        }
    }

    /// An error about the field at `path` in the JSON document `text`, positioned with
    /// [`locate_json`].
    pub fn json_error(file: &str, text: &str, path: FieldPath, message: String) -> Diagnostic {
        let position = locate_json(text, &path);
        Diagnostic::error(file, position, path, message)
    }

    /// A warning about the field at `path` in the JSON document `text`.
    pub fn json_warning(file: &str, text: &str, path: FieldPath, message: String) -> Diagnostic {
        let position = locate_json(text, &path);
        Diagnostic::warning(file, position, path, message)
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}: {}",
            self.file,
            self.position.line,
            self.position.column,
            self.severity,
            self.path,
            self.message
        )
    }
}

/// Finds where the value at `path` starts in the JSON text.
///
/// When the full path does not exist (a missing field, say) the position of the deepest
/// existing ancestor is returned, so "missing field" errors point at the object that lacks it.
/// Malformed text gives the best position reached; this never fails.
///
/// Each call scans the text from the start: to position many fields of one document, use a
/// [`JsonLocator`].
pub fn locate_json(text: &str, path: &FieldPath) -> Position {
    let mut scanner = JsonScanner::new(text);
    scanner.skip_ws();
    let mut found = scanner.pos;
    for segment in &path.0 {
        match scanner.enter(segment) {
            Some(pos) => found = pos,
            None => break,
        }
    }
    Position::of_offset(text, found)
}

/// Positions many fields of one JSON document without rescanning it for each.
///
/// [`locate_json`] walks the text from the start on every call, which is quadratic when a
/// large document has a diagnostic per item. The locator remembers the members of every
/// container it steps into and counts lines incrementally, so locating any number of fields
/// costs about one pass over the parts of the text they are in. It gives exactly the
/// positions [`locate_json`] and [`Position::of_offset`] give, malformed text included.
#[derive(Debug, Clone)]
pub struct JsonLocator<'a> {
    text: &'a str,
    /// The members of each container stepped into so far, by the container's offset.
    containers: BTreeMap<usize, Members<'a>>,
    lines: LineIndex,
    /// Whether the text is known to be valid JSON, so containers can be skipped by matching
    /// brackets instead of reading every token.
    valid: bool,
}

/// The members of one container, in text order, up to the first malformed spot.
#[derive(Debug, Clone)]
enum Members<'a> {
    /// Object members: decoded key and the offset of the value.
    Object(Vec<(Cow<'a, str>, usize)>),
    /// Array elements: index (counted by commas, as [`locate_json`] does) and offset.
    Array(Vec<(usize, usize)>),
    /// Not a container (or not one the path can step into).
    Scalar,
}

impl<'a> JsonLocator<'a> {
    /// A locator over `text`; nothing is scanned until a field is located.
    pub fn new(text: &'a str) -> JsonLocator<'a> {
        JsonLocator {
            text,
            containers: BTreeMap::new(),
            lines: LineIndex::default(),
            valid: false,
        }
    }

    /// A locator over `text` that a JSON parser has accepted (a parser reporting positions
    /// always has it at hand): the same positions as [`JsonLocator::new`], found several
    /// times faster. On text that is not valid JSON the positions may differ, but this still
    /// never fails.
    pub fn for_valid_json(text: &'a str) -> JsonLocator<'a> {
        JsonLocator {
            valid: true,
            ..JsonLocator::new(text)
        }
    }

    /// The text being located in.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The byte offset where the value at `path` starts, or where its deepest existing
    /// ancestor starts (as [`locate_json`]).
    pub fn offset(&mut self, path: &FieldPath) -> usize {
        let mut scanner = JsonScanner::new(self.text);
        scanner.skip_ws();
        let mut found = scanner.pos;
        for segment in &path.0 {
            match self.enter(found, segment) {
                Some(pos) => found = pos,
                None => break,
            }
        }
        found
    }

    /// Where the value at `path` starts (as [`locate_json`]).
    pub fn locate(&mut self, path: &FieldPath) -> Position {
        let offset = self.offset(path);
        self.position_of_offset(offset)
    }

    /// The position of a byte offset (as [`Position::of_offset`]).
    pub fn position_of_offset(&mut self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        self.lines.position(self.text.as_bytes(), offset)
    }

    /// The offset of the member `segment` of the container at `at`.
    fn enter(&mut self, at: usize, segment: &PathSegment) -> Option<usize> {
        let (text, valid) = (self.text, self.valid);
        let members = self
            .containers
            .entry(at)
            .or_insert_with(|| Members::scan(text, at, valid));
        match (members, segment) {
            (Members::Object(members), PathSegment::Key(wanted)) => members
                .iter()
                .find(|(key, _)| key == wanted)
                .map(|&(_, pos)| pos),
            (Members::Array(elements), PathSegment::Index(wanted)) => {
                // Indexes never decrease along the list (stray text can repeat one): take the
                // first entry with the wanted index.
                let first = elements.partition_point(|(idx, _)| idx < wanted);
                match elements.get(first) {
                    Some(&(idx, pos)) if idx == *wanted => Some(pos),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

impl<'a> Members<'a> {
    /// Lists the members of the container at `at`, stopping where [`JsonScanner::enter`]
    /// would give up, so that lookups find exactly what it finds.
    fn scan(text: &'a str, at: usize, valid: bool) -> Members<'a> {
        let mut scanner = JsonScanner::new(text);
        scanner.pos = at;
        scanner.valid = valid;
        match scanner.peek() {
            Some(b'{') => {
                let mut members = Vec::new();
                scanner.pos += 1;
                while let Some((key, pos)) = scanner.next_member() {
                    members.push((key, pos));
                    if scanner.skip_value().is_none() {
                        break;
                    }
                }
                Members::Object(members)
            }
            Some(b'[') => {
                let mut elements = Vec::new();
                scanner.pos += 1;
                let mut idx = 0;
                while let Some(pos) = scanner.next_element(&mut idx) {
                    elements.push((idx, pos));
                    if scanner.skip_element().is_none() {
                        break;
                    }
                }
                Members::Array(elements)
            }
            _ => Members::Scalar,
        }
    }
}

/// Line and column counting that resumes where it stopped, with checkpoints to answer
/// offsets before that without starting over.
#[derive(Debug, Clone, Default)]
struct LineIndex {
    /// How far the text has been counted.
    counted: usize,
    /// The 1-based line at `counted`.
    line: usize,
    /// Characters between the start of that line and `counted`.
    chars: usize,
    /// `(offset, line, chars)` about every [`LineIndex::STEP`] bytes up to `counted`.
    checkpoints: Vec<(usize, usize, usize)>,
}

impl LineIndex {
    /// Bytes between checkpoints: the most an offset before `counted` is walked.
    const STEP: usize = 512;

    /// The position of `offset`, a char boundary of `text`.
    fn position(&mut self, text: &[u8], offset: usize) -> Position {
        if self.line == 0 {
            self.line = 1;
        }
        if offset >= self.counted {
            while self.counted < offset {
                if self.counted.is_multiple_of(Self::STEP) {
                    self.checkpoints.push((self.counted, self.line, self.chars));
                }
                let end = offset.min((self.counted / Self::STEP + 1) * Self::STEP);
                (self.line, self.chars) =
                    count_lines(text, self.counted, end, self.line, self.chars);
                self.counted = end;
            }
            return Position {
                line: self.line,
                column: self.chars + 1,
            };
        }
        let idx = self
            .checkpoints
            .partition_point(|&(at, _, _)| at <= offset)
            .saturating_sub(1);
        let (from, line, chars) = self.checkpoints.get(idx).copied().unwrap_or((0, 1, 0));
        let (line, chars) = count_lines(text, from, offset, line, chars);
        Position {
            line,
            column: chars + 1,
        }
    }
}

/// Advances a `(line, characters into the line)` count over `text[from..to]`.
fn count_lines(text: &[u8], from: usize, to: usize, line: usize, chars: usize) -> (usize, usize) {
    let (mut line, mut chars) = (line, chars);
    let bytes = text.get(from..to).unwrap_or(&[]);
    let mut words = bytes.chunks_exact(8);
    // UTF-8 continuation bytes, counted per byte lane; each lane holds at most 255.
    let mut lanes = 0u64;
    let mut lane_words = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([b'\n'; 8]));
        if zero_bytes(word ^ splat(b'\n')) == 0 {
            // No line break: every byte but a continuation byte starts a character.
            chars += 8;
            lanes += (word & !(word << 1) & splat(0x80)) >> 7;
            lane_words += 1;
            if lane_words == 255 {
                chars -= lane_sum(lanes);
                (lanes, lane_words) = (0, 0);
            }
        } else {
            chars -= lane_sum(lanes);
            (lanes, lane_words) = (0, 0);
            (line, chars) = count_lines_bytewise(&word.to_le_bytes(), line, chars);
        }
    }
    chars -= lane_sum(lanes);
    count_lines_bytewise(words.remainder(), line, chars)
}

/// The sum of the eight byte lanes of `lanes`.
fn lane_sum(lanes: u64) -> usize {
    let pairs = (lanes & splat16(0x00FF)) + ((lanes >> 8) & splat16(0x00FF));
    (pairs.wrapping_mul(splat16(1)) >> 48) as usize
}

/// `value` in every 16-bit lane of a word.
const fn splat16(value: u16) -> u64 {
    value as u64 * 0x0001_0001_0001_0001
}

fn count_lines_bytewise(bytes: &[u8], line: usize, chars: usize) -> (usize, usize) {
    let (mut line, mut chars) = (line, chars);
    for &byte in bytes {
        if byte == b'\n' {
            line += 1;
            chars = 0;
        } else if !is_utf8_continuation(byte) {
            chars += 1;
        }
    }
    (line, chars)
}

/// `byte` in every byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of every zero byte of `word`, exactly.
fn zero_bytes(word: u64) -> u64 {
    let low7 = splat(0x7F);
    !(((word & low7).wrapping_add(low7)) | word | low7)
}

/// The high bit of every byte of `word` a string scan must stop at (a quote, a backslash or a
/// control character), with the lowest one exact (higher ones may be spurious).
fn string_stops(word: u64) -> u64 {
    let has_zero = |w: u64| w.wrapping_sub(splat(0x01)) & !w & splat(0x80);
    let below_space = word.wrapping_sub(splat(0x20)) & !word & splat(0x80);
    has_zero(word ^ splat(b'"')) | has_zero(word ^ splat(b'\\')) | below_space
}

fn is_utf8_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// A forgiving JSON scanner that only knows how to skip values and step into members.
struct JsonScanner<'a> {
    text: &'a [u8],
    pos: usize,
    depth: usize,
    /// Whether the text is known to be valid JSON (see [`JsonLocator::for_valid_json`]).
    valid: bool,
}

impl<'a> JsonScanner<'a> {
    /// Bounds recursion in `skip_value` so that hostile input cannot overflow the stack.
    const MAX_DEPTH: usize = 512;

    fn new(text: &'a str) -> JsonScanner<'a> {
        JsonScanner {
            text: text.as_bytes(),
            pos: 0,
            depth: 0,
            valid: false,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Steps from the value at the current position into its member `segment`; returns the
    /// member value's offset and leaves the scanner there.
    fn enter(&mut self, segment: &PathSegment) -> Option<usize> {
        match (self.peek()?, segment) {
            (b'{', PathSegment::Key(wanted)) => {
                self.pos += 1;
                loop {
                    let (key, pos) = self.next_member()?;
                    if key == *wanted {
                        return Some(pos);
                    }
                    self.skip_value()?;
                }
            }
            (b'[', PathSegment::Index(wanted)) => {
                self.pos += 1;
                let mut idx = 0;
                loop {
                    let pos = self.next_element(&mut idx)?;
                    if idx == *wanted {
                        return Some(pos);
                    }
                    self.skip_element()?;
                }
            }
            _ => None,
        }
    }

    /// Inside an object, reads up to the next member's value: its decoded key and offset.
    /// `None` at the end of the object or on malformed text.
    fn next_member(&mut self) -> Option<(Cow<'a, str>, usize)> {
        loop {
            self.skip_ws();
            match self.peek()? {
                b'}' => return None,
                b',' => self.pos += 1,
                b'"' => break,
                _ => return None,
            }
        }
        let key = self.read_string()?;
        self.skip_ws();
        if self.peek()? != b':' {
            return None;
        }
        self.pos += 1;
        self.skip_ws();
        Some((key, self.pos))
    }

    /// Inside an array, moves to the next element, counting commas in `idx`; returns the
    /// element's offset. `None` at the end of the array or of the text.
    fn next_element(&mut self, idx: &mut usize) -> Option<usize> {
        loop {
            self.skip_ws();
            match self.peek()? {
                b']' => return None,
                b',' => {
                    self.pos += 1;
                    *idx += 1;
                }
                _ => return Some(self.pos),
            }
        }
    }

    /// Reads a string literal at the current position and returns it decoded.
    fn read_string(&mut self) -> Option<Cow<'a, str>> {
        let (start, plain) = self.scan_string()?;
        let literal = std::str::from_utf8(self.text.get(start..self.pos)?).ok()?;
        if plain {
            // Nothing to decode: the text between the quotes is the string.
            return literal
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .map(Cow::Borrowed);
        }
        serde_json::from_str(literal).ok().map(Cow::Owned)
    }

    /// Moves past a string literal at the current position; returns where it starts and
    /// whether it is plain (no escapes or control characters, so valid as it stands).
    fn scan_string(&mut self) -> Option<(usize, bool)> {
        let start = self.pos;
        let mut plain = true;
        self.pos += 1;
        loop {
            self.skip_plain_string_bytes();
            match self.peek()? {
                b'\\' => {
                    plain = false;
                    self.pos += 2;
                }
                b'"' => {
                    self.pos += 1;
                    return Some((start, plain));
                }
                byte => {
                    plain &= byte >= 0x20;
                    self.pos += 1;
                }
            }
        }
    }

    /// Moves over string bytes that need no attention, eight at a time (strings are most of
    /// a recipe file).
    fn skip_plain_string_bytes(&mut self) {
        while let Some(word) = self.text.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([b'"'; 8]));
            let stops = string_stops(word);
            if stops != 0 {
                self.pos += (stops.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
    }

    /// Skips a string literal, failing where decoding it would fail.
    fn skip_string(&mut self) -> Option<()> {
        let (start, plain) = self.scan_string()?;
        if !plain {
            let literal = std::str::from_utf8(self.text.get(start..self.pos)?).ok()?;
            serde_json::from_str::<String>(literal).ok()?;
        }
        Some(())
    }

    /// Skips the object or array at the current position of valid JSON by matching brackets:
    /// only strings need reading, and those go eight bytes at a time.
    fn skip_valid_container(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            self.skip_to_structural();
            match self.peek()? {
                // Valid JSON: the string needs no checking, only its end.
                b'"' => {
                    self.scan_string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                // A byte that only looked like a bracket (see `skip_to_structural`).
                _ => self.pos += 1,
            }
        }
    }

    /// Moves to the next quote or bracket (or one of the few bytes that fold like one:
    /// `Y _ y` and DEL), eight bytes at a time.
    fn skip_to_structural(&mut self) {
        loop {
            let Some(word) = self.text.get(self.pos..self.pos + 8) else {
                while !matches!(self.peek(), None | Some(b'"' | b'{' | b'[' | b'}' | b']')) {
                    self.pos += 1;
                }
                return;
            };
            let word = u64::from_le_bytes(word.try_into().unwrap_or([b'"'; 8]));
            // The four brackets differ only in bits 0x26; setting those bits maps all of them
            // (and `Y _ y` DEL) to 0x7F.
            let brackets = zero_bytes((word | splat(0x26)) ^ splat(0x7F));
            let quotes = zero_bytes(word ^ splat(b'"'));
            let found = brackets | quotes;
            if found != 0 {
                self.pos += (found.trailing_zeros() / 8) as usize;
                return;
            }
            self.pos += 8;
        }
    }

    /// Skips an array element, failing where a stray `}` would leave the scanner in place.
    fn skip_element(&mut self) -> Option<()> {
        let before = self.pos;
        self.skip_value()?;
        (self.pos > before).then_some(())
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        if self.valid && matches!(self.peek(), Some(b'{' | b'[')) {
            return self.skip_valid_container();
        }
        match self.peek()? {
            b'"' => self.skip_string()?,
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                if self.depth >= Self::MAX_DEPTH {
                    return None;
                }
                self.depth += 1;
                self.pos += 1;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        c if c == close => {
                            self.pos += 1;
                            break;
                        }
                        b',' | b':' => self.pos += 1,
                        // The wrong closing bracket: malformed, and the scanner would not move.
                        b'}' | b']' => return None,
                        _ => self.skip_value()?,
                    }
                }
                self.depth -= 1;
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[PathSegment]) -> FieldPath {
        FieldPath(segments.to_vec())
    }

    #[test]
    fn locates_nested_fields() {
        let text = "{\n  \"version\": 1,\n  \"experiments\": [\n    {\"id\": \"a\"},\n    {\"id\": \"b\", \"xpiHash\": \"sha1:x\"}\n  ]\n}";
        let p = path(&[
            PathSegment::Key("experiments".into()),
            PathSegment::Index(1),
            PathSegment::Key("xpiHash".into()),
        ]);
        assert_eq!(
            locate_json(text, &p),
            Position {
                line: 5,
                column: 28
            }
        );
        assert_eq!(p.to_string(), "experiments[1].xpiHash");
    }

    #[test]
    fn missing_field_points_at_parent() {
        let text = "[{\"a\": 1},\n {\"b\": {\"c\": [1, 2]}}]";
        let p = path(&[PathSegment::Index(1), PathSegment::Key("missing".into())]);
        assert_eq!(locate_json(text, &p), Position { line: 2, column: 2 });
    }

    #[test]
    fn malformed_input_never_panics() {
        for text in [
            "",
            "{",
            "[",
            "{\"a\"",
            "{\"a\":",
            "[1,",
            "\"\\",
            "{\"a\\\"\":1}",
        ] {
            let p = path(&[PathSegment::Key("a".into()), PathSegment::Index(3)]);
            let _ = locate_json(text, &p);
        }
        let deep = "[".repeat(100_000);
        let _ = locate_json(&deep, &path(&[PathSegment::Index(1)]));
    }

    /// Documents covering the scanner's corners: escapes in keys, duplicate keys, stray
    /// commas, multi-byte characters, long lines and malformed text.
    const LOCATOR_DOCUMENTS: &[&str] = &[
        "{\n  \"a\": [1, {\"b\": \"x\"}, [true, null]],\n  \"b\": {\"a\": {\"é\": 2}}\n}",
        "[{\"a\": 1, \"a\": 2}, {\"x\\\"y\": [3], \"\\u00e9\": \"é\"}, \"s\\\\\", {\"b\": []}]",
        "[,,{\"a\":1},,[1,,2]]",
        "{\"a\":,\"b\":1,\"c\":}",
        "[{\"a\":{]}, {\"b\": 1}]",
        "[}, 1]",
        "[,:}, 1]",
        "[1 2, 3 : 4]",
        "{\"a\": [1, 2 3, {\"b\" 1}], \"b\": \"unterminated",
        "{\"a\": \"tab\there\", \"b\": 1}",
        "  [ 1 ,\r\n\t{ \"a\" : [ [ ] , { } ] } ]  ",
        "{\"a\"",
        "",
        "{\"long key with \\\"escapes\\\" inside\": 1, \"a\": \"a long plain string value\", \
         \"b\": \"another long string\twith a tab\", \"c\": [\"x\\\\\", {\"a\": 1}]}",
    ];

    /// Every path of up to three segments over a small alphabet of keys and indexes.
    fn all_paths() -> Vec<FieldPath> {
        let segments: Vec<PathSegment> = ["a", "b", "c", "é", "x\"y"]
            .iter()
            .map(|k| PathSegment::Key((*k).to_owned()))
            .chain((0..4).map(PathSegment::Index))
            .collect();
        let mut paths = vec![FieldPath::root()];
        let mut frontier = vec![FieldPath::root()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for path in &frontier {
                for segment in &segments {
                    let mut longer = path.clone();
                    longer.0.push(segment.clone());
                    next.push(longer);
                }
            }
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        paths
    }

    #[test]
    fn locator_agrees_with_locate_json() {
        let long_line = format!("[{}{{\"a\": \"é\"}}]", "\"ü\", ".repeat(400));
        let paths = all_paths();
        for text in LOCATOR_DOCUMENTS
            .iter()
            .copied()
            .chain([long_line.as_str()])
        {
            // One locator for all paths, so later lookups go through the cache.
            let mut locator = JsonLocator::new(text);
            for path in paths.iter().chain(paths.iter().rev()) {
                assert_eq!(
                    locator.locate(path),
                    locate_json(text, path),
                    "{path} in {text:?}"
                );
            }
        }
    }

    #[test]
    fn stray_closing_brackets_end_the_search() {
        // These used to send the scanner round in circles.
        for text in ["[{\"a\":{]}, {\"b\": 1}]", "[}, 1]"] {
            let p = path(&[PathSegment::Index(1), PathSegment::Key("b".into())]);
            assert_eq!(locate_json(text, &p), Position { line: 1, column: 1 });
            assert_eq!(JsonLocator::new(text).locate(&p), Position::START);
        }
    }

    #[test]
    fn locator_positions_offsets_like_of_offset() {
        let text = format!(
            "ab\ncdé\n\nxyz\r\n{}\n{}é",
            "ü".repeat(1500),
            "x".repeat(1500)
        );
        let mut locator = JsonLocator::new(&text);
        // Forwards, then backwards (through the checkpoints), then past the end.
        let offsets: Vec<usize> = (0..=text.len() + 2)
            .chain((0..=text.len()).rev().step_by(7))
            .collect();
        for offset in offsets {
            assert_eq!(
                locator.position_of_offset(offset),
                Position::of_offset(&text, offset),
                "offset {offset}"
            );
        }
    }

    /// JSON values whose text has brackets, quotes, escapes and the bytes that fold like
    /// brackets (`Y _ y`) in keys and strings.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let text = "[a-c{}\\[\\]\"\\\\Y_y\u{7f}é\n ]{0,12}";
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            text.prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-cY_y\"{]{0,3}", inner), 0..6).prop_map(|members| {
                    serde_json::Value::Object(members.into_iter().collect())
                }),
            ]
        })
    }

    /// Every path into `value`, plus a missing member below each container.
    fn paths_into(value: &serde_json::Value, here: FieldPath, out: &mut Vec<FieldPath>) {
        out.push(here.clone());
        match value {
            serde_json::Value::Array(items) => {
                out.push(here.index(items.len()));
                for (idx, item) in items.iter().enumerate() {
                    paths_into(item, here.index(idx), out);
                }
            }
            serde_json::Value::Object(map) => {
                out.push(here.key("missing"));
                for (key, item) in map {
                    paths_into(item, here.key(key), out);
                }
            }
            _ => {}
        }
    }

    proptest::proptest! {
        #[test]
        fn valid_json_locator_agrees_with_locate_json(value in json_value(), pretty: bool) {
            let text = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            }
            .unwrap_or_default();
            let mut paths = Vec::new();
            paths_into(&value, FieldPath::root(), &mut paths);
            let mut locator = JsonLocator::for_valid_json(&text);
            for path in &paths {
                proptest::prop_assert_eq!(locator.locate(path), locate_json(&text, path), "{}", path);
            }
        }

        #[test]
        fn locator_agrees_on_arbitrary_text(
            text in "[\\[\\]{}\",:\\\\ a1é\n]{0,40}",
            keys in proptest::collection::vec(0usize..6, 0..4),
        ) {
            let segments = [
                PathSegment::Key("a".into()),
                PathSegment::Key("1".into()),
                PathSegment::Index(0),
                PathSegment::Index(1),
                PathSegment::Key("é".into()),
                PathSegment::Index(2),
            ];
            let p = FieldPath(
                keys.iter().filter_map(|k| segments.get(*k).cloned()).collect(),
            );
            let mut locator = JsonLocator::new(&text);
            proptest::prop_assert_eq!(locator.locate(&p), locate_json(&text, &p));
            proptest::prop_assert_eq!(locator.locate(&p), locate_json(&text, &p));
        }
    }

    #[test]
    fn word_scans_match_bytewise_scans() {
        // Every byte value in every lane, next to bytes that do and do not stop a scan.
        for lane in 0..8 {
            for byte in 0..=255u8 {
                for filler in [b'a', 0xC3, 0xA9, b'"', b'\n', 0x1F] {
                    let mut bytes = [filler; 8];
                    bytes[lane] = byte;
                    let word = u64::from_le_bytes(bytes);
                    let stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
                    let first = bytes.iter().position(|b| stop(*b));
                    let stops = string_stops(word);
                    assert_eq!(
                        (stops != 0).then(|| (stops.trailing_zeros() / 8) as usize),
                        first,
                        "{bytes:?}"
                    );
                    assert_eq!(
                        count_lines(&bytes, 0, 8, 1, 0),
                        count_lines_bytewise(&bytes, 1, 0),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn renders_as_file_line_col() {
        let d = Diagnostic::error(
            "m.json",
            Position { line: 3, column: 7 },
            FieldPath::root().key("experiments").index(0).key("id"),
            "missing required field".into(),
        );
        assert_eq!(
            d.to_string(),
            "m.json:3:7: error: experiments[0].id: missing required field"
        );
    }
}
