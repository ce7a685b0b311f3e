//! Validation problems that say where they are: file, line, column and field path.
//!
//! Parsers in [`crate::model`] report every problem they find as a [`Diagnostic`] instead of
//! stopping at the first. A diagnostic is rendered as `file:line:col: severity: path: message`,
//! the form editors and CI logs understand.
//!
//! For JSON inputs the parsers validate a `serde_json::Value` and then find the position of the
//! offending field in the source text with [`locate_json`], so positions do not have to be
//! threaded through deserialisation.

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
pub fn locate_json(text: &str, path: &FieldPath) -> Position {
    let mut scanner = JsonScanner {
        text: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
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

/// A forgiving JSON scanner that only knows how to skip values and step into members.
struct JsonScanner<'a> {
    text: &'a [u8],
    pos: usize,
    depth: usize,
}

impl JsonScanner<'_> {
    /// Bounds recursion in `skip_value` so that hostile input cannot overflow the stack.
    const MAX_DEPTH: usize = 512;

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
                    self.skip_ws();
                    match self.peek()? {
                        b'}' => return None,
                        b',' => {
                            self.pos += 1;
                            continue;
                        }
                        b'"' => {}
                        _ => return None,
                    }
                    let key = self.read_string()?;
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.pos += 1;
                    self.skip_ws();
                    if key == *wanted {
                        return Some(self.pos);
                    }
                    self.skip_value()?;
                }
            }
            (b'[', PathSegment::Index(wanted)) => {
                self.pos += 1;
                let mut idx = 0;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b']' => return None,
                        b',' => {
                            self.pos += 1;
                            idx += 1;
                            continue;
                        }
                        _ => {}
                    }
                    if idx == *wanted {
                        return Some(self.pos);
                    }
                    self.skip_value()?;
                }
            }
            _ => None,
        }
    }

    /// Reads a string literal at the current position and returns it decoded.
    fn read_string(&mut self) -> Option<String> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        let literal = std::str::from_utf8(self.text.get(start..self.pos)?).ok()?;
        serde_json::from_str(literal).ok()
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => {
                self.read_string()?;
            }
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
