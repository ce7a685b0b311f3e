//! Tokenizer: a faithful emulation of mozjexl 1.1.6's regex-split lexer.
//!
//! mozjexl splits the source with one big alternation regex (strings, whitespace, `true`,
//! `false`, `#` comments, operators longest first, identifiers, numbers), keeps the text
//! between matches as extra elements, and then classifies every element. A `-` directly after
//! an operator, `(`, `[`, `?`, `:` or at the start is glued onto the next element (so `-5` is
//! a literal and `-x` is an invalid token). Matching this exactly, rather than writing a
//! "clean" lexer, is what makes odd inputs (`'`, `x$`, `--5`, `1.5.3`) behave as in Firefox.

use std::sync::Arc;

use super::ParseError;
use super::ast::BinOp;

/// The kind of a token, named after mozjexl's grammar element types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    Literal,
    Identifier,
    BinaryOp,
    UnaryOp,
    Dot,
    OpenBracket,
    CloseBracket,
    Pipe,
    OpenCurl,
    CloseCurl,
    Colon,
    Comma,
    OpenParen,
    CloseParen,
    Question,
}

/// A literal value as written in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(Arc<str>),
    Num(f64),
    Bool(bool),
}

/// The payload of a token. Strings and identifiers are kept as spans of the source: the
/// parser makes their text only for the tokens it places in the tree (most of a filter's
/// identifiers repeat, and the parser shares their names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TokValue {
    None,
    Num(f64),
    Bool(bool),
    /// A string literal: the element `src[offset..end]`, quotes included (see [`unquote`]).
    Str {
        end: usize,
    },
    /// An identifier spelled `src[offset..end]`.
    Ident {
        end: usize,
    },
    Op(BinOp),
}

/// One token with the byte offset where its element starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Token {
    pub kind: TokKind,
    pub value: TokValue,
    pub offset: usize,
}

/// How an element was found, so that classification can skip re-matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Str,
    Space,
    True,
    False,
    Comment,
    Punct(TokKind),
    Op(BinOp),
    Not,
    Ident,
    Number,
    /// Text between matches; mozjexl classifies it from scratch.
    Unmatched,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

const fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// JavaScript's `\s` (WhiteSpace and LineTerminator).
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// `\b` (ASCII word boundary) at byte position `i`. Non-ASCII bytes are non-word, so the
/// byte-level test is exact at character boundaries.
fn boundary(b: &[u8], i: usize) -> bool {
    let before = i > 0 && b.get(i - 1).copied().is_some_and(is_word);
    let after = b.get(i).copied().is_some_and(is_word);
    before != after
}

fn char_len_at(src: &str, i: usize) -> usize {
    match src.as_bytes().get(i) {
        Some(&b) if b < 0x80 => 1,
        _ => src
            .get(i..)
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8),
    }
}

/// The character starting at byte `i` (which is at a character boundary).
fn char_at(src: &str, i: usize) -> Option<char> {
    src.get(i..).and_then(|s| s.chars().next())
}

/// `'(?:(?:\\')?[^'])*'` (and the `"` twin) at `p`, with the regex engine's backtracking
/// order: take `\'x` whenever possible; if no closing quote follows, the engine backtracks to
/// the last `\'` and closes the string there.
fn match_string(src: &str, p: usize, quote: u8) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = p + 1;
    let mut last_choice = None;
    loop {
        let Some(&c) = b.get(i) else {
            return last_choice.map(|c: usize| c + 2 - p);
        };
        if c == quote {
            return Some(i + 1 - p);
        }
        if c == b'\\' && b.get(i + 1) == Some(&quote) && b.get(i + 2).is_some_and(|&n| n != quote) {
            last_choice = Some(i);
            i += 2 + char_len_at(src, i + 2);
        } else {
            i += char_len_at(src, i);
        }
    }
}

/// The length of the run of JavaScript whitespace at `p` (0 when there is none).
fn space_len(src: &str, p: usize) -> usize {
    let b = src.as_bytes();
    let mut i = p;
    while let Some(&c) = b.get(i) {
        match c {
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => i += 1,
            0x80.. => match char_at(src, i) {
                Some(ch) if is_js_space(ch) => i += ch.len_utf8(),
                _ => break,
            },
            _ => break,
        }
    }
    i - p
}

/// The length of the `#` comment at `p`: up to a line terminator, and a `\n` ending it.
fn comment_len(src: &str, p: usize) -> usize {
    let b = src.as_bytes();
    let mut i = p + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\n' | b'\r' => break,
            0x80.. => match char_at(src, i) {
                Some(ch) if is_line_terminator(ch) => break,
                Some(ch) => i += ch.len_utf8(),
                None => break,
            },
            _ => i += 1,
        }
    }
    if b.get(i) == Some(&b'\n') {
        i += 1;
    }
    i - p
}

const TWO_CHAR_OPS: [(&str, BinOp); 7] = [
    ("//", BinOp::FloorDiv),
    ("==", BinOp::Eq),
    ("!=", BinOp::Ne),
    (">=", BinOp::Ge),
    ("<=", BinOp::Le),
    ("&&", BinOp::And),
    ("||", BinOp::Or),
];

/// `word` at `p` as a whole word (`\bword\b`).
fn word_at(b: &[u8], p: usize, word: &[u8]) -> bool {
    b.get(p..p + word.len()) == Some(word) && boundary(b, p) && boundary(b, p + word.len())
}

/// Tries every alternative of mozjexl's split regex at `p`, in the regex's order: strings,
/// whitespace, `true`, `false`, comments, operators (longest first), punctuation,
/// identifiers, numbers. The alternatives that can match start with distinct characters, so
/// dispatching on the first byte keeps that order.
fn match_at(src: &str, p: usize) -> Option<(usize, Found)> {
    let b = src.as_bytes();
    let c = *b.get(p)?;
    let next = b.get(p + 1).copied();
    let one = |found| Some((1, found));
    let two = |op| Some((2, Found::Op(op)));
    match c {
        b'\'' | b'"' => match_string(src, p, c).map(|len| (len, Found::Str)),
        b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => Some((space_len(src, p), Found::Space)),
        // Only whitespace matches a non-ASCII character.
        0x80.. => match space_len(src, p) {
            0 => None,
            len => Some((len, Found::Space)),
        },
        b'#' => Some((comment_len(src, p), Found::Comment)),
        b'/' if next == Some(b'/') => two(BinOp::FloorDiv),
        b'=' if next == Some(b'=') => two(BinOp::Eq),
        b'!' if next == Some(b'=') => two(BinOp::Ne),
        b'>' if next == Some(b'=') => two(BinOp::Ge),
        b'<' if next == Some(b'=') => two(BinOp::Le),
        b'&' if next == Some(b'&') => two(BinOp::And),
        b'|' if next == Some(b'|') => two(BinOp::Or),
        b'.' => one(Found::Punct(TokKind::Dot)),
        b'[' => one(Found::Punct(TokKind::OpenBracket)),
        b']' => one(Found::Punct(TokKind::CloseBracket)),
        b'|' => one(Found::Punct(TokKind::Pipe)),
        b'{' => one(Found::Punct(TokKind::OpenCurl)),
        b'}' => one(Found::Punct(TokKind::CloseCurl)),
        b':' => one(Found::Punct(TokKind::Colon)),
        b',' => one(Found::Punct(TokKind::Comma)),
        b'(' => one(Found::Punct(TokKind::OpenParen)),
        b')' => one(Found::Punct(TokKind::CloseParen)),
        b'?' => one(Found::Punct(TokKind::Question)),
        b'+' => one(Found::Op(BinOp::Add)),
        b'-' => one(Found::Op(BinOp::Sub)),
        b'*' => one(Found::Op(BinOp::Mul)),
        b'/' => one(Found::Op(BinOp::Div)),
        b'%' => one(Found::Op(BinOp::Mod)),
        b'^' => one(Found::Op(BinOp::Pow)),
        b'>' => one(Found::Op(BinOp::Gt)),
        b'<' => one(Found::Op(BinOp::Lt)),
        b'!' => one(Found::Not),
        // `(?:[0-9]*\.[0-9]+)|[0-9]+`: a leading `.` is taken by the `.` operator above.
        b'0'..=b'9' => {
            let digits = count_digits(b, p);
            let frac = match b.get(p + digits) {
                Some(b'.') => count_digits(b, p + digits + 1),
                _ => 0,
            };
            if frac > 0 {
                Some((digits + 1 + frac, Found::Number))
            } else {
                Some((digits, Found::Number))
            }
        }
        b't' if word_at(b, p, b"true") => Some((4, Found::True)),
        b'f' if word_at(b, p, b"false") => Some((5, Found::False)),
        b'i' if word_at(b, p, b"intersect") => Some((9, Found::Op(BinOp::Intersect))),
        b'i' if word_at(b, p, b"in") => Some((2, Found::Op(BinOp::In))),
        // `\b[a-zA-Z_$][a-zA-Z0-9_$]*\b`, giving back characters until the closing `\b` holds.
        _ if is_ident_start(c) && boundary(b, p) => {
            let mut end = p + 1;
            while b.get(end).copied().is_some_and(is_ident_char) {
                end += 1;
            }
            while end > p {
                if boundary(b, end) {
                    return Some((end - p, Found::Ident));
                }
                end -= 1;
            }
            None
        }
        _ => None,
    }
}

fn count_digits(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .map_or(0, |s| s.iter().take_while(|d| d.is_ascii_digit()).count())
}

/// `^-?(?:(?:[0-9]*\.[0-9]+)|[0-9]+)$`
fn is_numeric(text: &str) -> bool {
    let t = text.strip_prefix('-').unwrap_or(text);
    let b = t.as_bytes();
    if b.is_empty() {
        return false;
    }
    match t.find('.') {
        None => b.iter().all(u8::is_ascii_digit),
        Some(dot) => {
            let (int, frac) = (&b[..dot], &b[dot + 1..]);
            int.iter().all(u8::is_ascii_digit)
                && !frac.is_empty()
                && frac.iter().all(u8::is_ascii_digit)
        }
    }
}

/// `^[a-zA-Z_\$][a-zA-Z0-9_\$]*$`
fn is_ident(text: &str) -> bool {
    let b = text.as_bytes();
    b.first().copied().is_some_and(is_ident_start) && b.iter().copied().all(is_ident_char)
}

/// mozjexl's `_unquote`: strip the first and last UTF-16 unit, unescape every escaped quote,
/// then the *first* escaped backslash only.
pub(crate) fn unquote(element: &str) -> Arc<str> {
    let quote = if element.starts_with('"') { '"' } else { '\'' };
    if element.len() >= 2 && element.ends_with(quote) {
        let inner = &element[1..element.len() - 1];
        if !inner.contains('\\') {
            return Arc::from(inner);
        }
        return unescape(inner, quote);
    }
    // A stray quote run such as `'` or `'@`: `substr(1, length - 2)` on UTF-16 units.
    let units: Vec<u16> = element.encode_utf16().collect();
    let take = units.len().saturating_sub(2);
    let inner = String::from_utf16_lossy(units.get(1..1 + take).unwrap_or(&[]));
    if inner.contains('\\') {
        unescape(&inner, quote)
    } else {
        Arc::from(inner)
    }
}

fn unescape(inner: &str, quote: char) -> Arc<str> {
    let escaped_quote = if quote == '"' { "\\\"" } else { "\\'" };
    let mut out = inner.replace(escaped_quote, &quote.to_string());
    if let Some(pos) = out.find("\\\\") {
        out.replace_range(pos..pos + 2, "\\");
    }
    Arc::from(out)
}

fn parse_number(text: &str) -> f64 {
    text.parse::<f64>().unwrap_or(f64::NAN)
}

/// mozjexl's `_createToken` for an element `src[start..end]` it has to classify from scratch.
fn classify(src: &str, start: usize, end: usize) -> Result<Token, ParseError> {
    let text = src.get(start..end).unwrap_or("");
    let (kind, value) = if text.starts_with('"') || text.starts_with('\'') {
        (TokKind::Literal, TokValue::Str { end })
    } else if is_numeric(text) {
        (TokKind::Literal, TokValue::Num(parse_number(text)))
    } else if text == "true" || text == "false" {
        (TokKind::Literal, TokValue::Bool(text == "true"))
    } else if let Some(found) = grammar_element(text) {
        return Ok(found_token(found, src, start, end));
    } else if is_ident(text) {
        (TokKind::Identifier, TokValue::Ident { end })
    } else {
        return Err(invalid_token(start, "", text));
    };
    Ok(Token {
        kind,
        value,
        offset: start,
    })
}

fn invalid_token(offset: usize, prefix: &str, text: &str) -> ParseError {
    ParseError {
        offset,
        message: format!("invalid expression token: {prefix}{text}"),
    }
}

/// The grammar element spelled exactly `text`, if any.
fn grammar_element(text: &str) -> Option<Found> {
    match text {
        "intersect" => Some(Found::Op(BinOp::Intersect)),
        "in" => Some(Found::Op(BinOp::In)),
        _ => {
            if let Some((_, op)) = TWO_CHAR_OPS.iter().find(|(t, _)| *t == text) {
                return Some(Found::Op(*op));
            }
            if text.len() == 1 {
                match match_at(text, 0) {
                    Some((1, found @ (Found::Punct(_) | Found::Op(_) | Found::Not))) => Some(found),
                    _ => None,
                }
            } else {
                None
            }
        }
    }
}

/// The token of an element `src[start..end]` the split regex recognised as `found`.
fn found_token(found: Found, src: &str, start: usize, end: usize) -> Token {
    let (kind, value) = match found {
        Found::Punct(kind) => (kind, TokValue::None),
        Found::Op(op) => (TokKind::BinaryOp, TokValue::Op(op)),
        Found::Not => (TokKind::UnaryOp, TokValue::None),
        Found::True => (TokKind::Literal, TokValue::Bool(true)),
        Found::False => (TokKind::Literal, TokValue::Bool(false)),
        Found::Number => (
            TokKind::Literal,
            TokValue::Num(parse_number(src.get(start..end).unwrap_or(""))),
        ),
        Found::Str => (TokKind::Literal, TokValue::Str { end }),
        Found::Ident => (TokKind::Identifier, TokValue::Ident { end }),
        // Never produced for a token (skipped or classified before).
        Found::Space | Found::Comment | Found::Unmatched => (TokKind::Comma, TokValue::None),
    };
    Token {
        kind,
        value,
        offset: start,
    }
}

/// The second half of mozjexl's lexer: turns the elements of the split, in order, into
/// tokens.
struct Tokens<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    /// The offset of a `-` waiting to be glued onto the next element.
    negate: Option<usize>,
}

impl Tokens<'_> {
    fn element(&mut self, start: usize, end: usize, found: Found) -> Result<(), ParseError> {
        match found {
            Found::Space | Found::Comment => return Ok(()),
            Found::Op(BinOp::Sub) if self.minus_negates() => {
                self.negate = Some(start);
                return Ok(());
            }
            _ => {}
        }
        let token = match self.negate.take() {
            // `-` glued onto the element is a number only when the element is one (no other
            // element, nor text between matches, reads as a number with a `-` in front).
            Some(minus) => {
                let text = self.src.get(start..end).unwrap_or("");
                match found {
                    Found::Number => Token {
                        kind: TokKind::Literal,
                        value: TokValue::Num(-parse_number(text)),
                        offset: minus,
                    },
                    _ => return Err(invalid_token(minus, "-", text)),
                }
            }
            None if found == Found::Unmatched => classify(self.src, start, end)?,
            None => found_token(found, self.src, start, end),
        };
        self.tokens.push(token);
        Ok(())
    }

    fn minus_negates(&self) -> bool {
        self.tokens.last().is_none_or(|t| {
            matches!(
                t.kind,
                TokKind::BinaryOp
                    | TokKind::UnaryOp
                    | TokKind::OpenParen
                    | TokKind::OpenBracket
                    | TokKind::Question
                    | TokKind::Colon
            )
        })
    }
}

/// Bytes that may continue an identifier (`[a-zA-Z0-9_$]`).
const IDENT_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = is_ident_char(byte as u8);
        byte += 1;
    }
    table
};

/// The kind and value of a token.
type KindValue = (TokKind, TokValue);

/// The element at `p` (starting with byte `c`) when it is one of the common ones, read
/// directly: whitespace (no token), an identifier, a number, a string without backslashes,
/// punctuation or an operator other than `-`. Gives its length and token, exactly as
/// [`match_at`] and [`found_token`] would; `None` leaves the element to them.
fn common_element(src: &str, p: usize, c: u8) -> Option<(usize, Option<KindValue>)> {
    let b = src.as_bytes();
    let next = b.get(p + 1).copied();
    let punct = |kind| Some((1, Some((kind, TokValue::None))));
    let op = |len, op| Some((len, Some((TokKind::BinaryOp, TokValue::Op(op)))));
    match c {
        b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => {
            let mut end = p + 1;
            while matches!(b.get(end), Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')) {
                end += 1;
            }
            if b.get(end).is_some_and(|&byte| byte >= 0x80) {
                // Perhaps a Unicode space.
                end += space_len(src, end);
            }
            Some((end - p, None))
        }
        // A letter after a word character and a run ending in `$` are left to `match_at`.
        b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
            if p > 0 && b.get(p - 1).copied().is_some_and(is_word) {
                return None;
            }
            let mut end = p + 1;
            while b
                .get(end)
                .is_some_and(|&byte| IDENT_CHAR[usize::from(byte)])
            {
                end += 1;
            }
            if !b.get(end - 1).copied().is_some_and(is_word) {
                return None;
            }
            let token = if matches!(c, b't' | b'f' | b'i') {
                // The words `true`, `false`, `in`, `intersect`, when the run is exactly one
                // of them (a `$` inside the run can end a word early: left to `match_at`).
                let run = b.get(p..end)?;
                if run.contains(&b'$') {
                    return None;
                }
                match run {
                    b"true" => (TokKind::Literal, TokValue::Bool(true)),
                    b"false" => (TokKind::Literal, TokValue::Bool(false)),
                    b"in" => (TokKind::BinaryOp, TokValue::Op(BinOp::In)),
                    b"intersect" => (TokKind::BinaryOp, TokValue::Op(BinOp::Intersect)),
                    _ => (TokKind::Identifier, TokValue::Ident { end }),
                }
            } else {
                (TokKind::Identifier, TokValue::Ident { end })
            };
            Some((end - p, Some(token)))
        }
        b'0'..=b'9' => {
            let digits = count_digits(b, p);
            let frac = match b.get(p + digits) {
                Some(b'.') => count_digits(b, p + digits + 1),
                _ => 0,
            };
            let len = if frac > 0 { digits + 1 + frac } else { digits };
            let value = if frac == 0 && digits <= 15 {
                // Below 2^53, so exact: what parsing the digits gives.
                let whole = b
                    .get(p..p + digits)?
                    .iter()
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                whole as f64
            } else {
                parse_number(src.get(p..p + len)?)
            };
            Some((len, Some((TokKind::Literal, TokValue::Num(value)))))
        }
        b'\'' | b'"' => {
            // Without a backslash the string simply ends at the next quote of its kind.
            let rest = b.get(p + 1..)?;
            let close = rest.iter().position(|&byte| byte == c || byte == b'\\')?;
            if rest.get(close) != Some(&c) {
                return None;
            }
            let end = p + close + 2;
            Some((end - p, Some((TokKind::Literal, TokValue::Str { end }))))
        }
        b'.' => punct(TokKind::Dot),
        b'[' => punct(TokKind::OpenBracket),
        b']' => punct(TokKind::CloseBracket),
        b'{' => punct(TokKind::OpenCurl),
        b'}' => punct(TokKind::CloseCurl),
        b':' => punct(TokKind::Colon),
        b',' => punct(TokKind::Comma),
        b'(' => punct(TokKind::OpenParen),
        b')' => punct(TokKind::CloseParen),
        b'?' => punct(TokKind::Question),
        b'|' if next == Some(b'|') => op(2, BinOp::Or),
        b'|' => punct(TokKind::Pipe),
        b'&' if next == Some(b'&') => op(2, BinOp::And),
        b'=' if next == Some(b'=') => op(2, BinOp::Eq),
        b'!' if next == Some(b'=') => op(2, BinOp::Ne),
        b'!' => Some((1, Some((TokKind::UnaryOp, TokValue::None)))),
        b'>' if next == Some(b'=') => op(2, BinOp::Ge),
        b'>' => op(1, BinOp::Gt),
        b'<' if next == Some(b'=') => op(2, BinOp::Le),
        b'<' => op(1, BinOp::Lt),
        b'/' if next == Some(b'/') => op(2, BinOp::FloorDiv),
        b'/' => op(1, BinOp::Div),
        b'+' => op(1, BinOp::Add),
        b'*' => op(1, BinOp::Mul),
        b'%' => op(1, BinOp::Mod),
        b'^' => op(1, BinOp::Pow),
        _ => None,
    }
}

/// Splits `src` into tokens exactly as mozjexl 1.1.6 does.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    tokenize_with(src, true)
}

/// [`tokenize`], with the shortcut for common elements (`common`) or without it (so tests
/// can check that the shortcut changes nothing).
fn tokenize_with(src: &str, common: bool) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Tokens {
        src,
        // About one token per five bytes in typical filters.
        tokens: Vec::with_capacity(b.len() / 4 + 4),
        negate: None,
    };
    let (mut p, mut last_end) = (0, 0);
    while let Some(&c) = b.get(p) {
        // The common elements are read here, straight to their token; the others (and every
        // element after a `-` that may be glued to it) go through `match_at` and
        // `Tokens::element`, which follow mozjexl step by step.
        if common
            && out.negate.is_none()
            && let Some((len, token)) = common_element(src, p, c)
        {
            if last_end < p {
                out.element(last_end, p, Found::Unmatched)?;
            }
            if let Some((kind, value)) = token {
                out.tokens.push(Token {
                    kind,
                    value,
                    offset: p,
                });
            }
            p += len;
            last_end = p;
            continue;
        }
        if let Some((len, found)) = match_at(src, p) {
            if last_end < p {
                out.element(last_end, p, Found::Unmatched)?;
            }
            out.element(p, p + len, found)?;
            p += len;
            last_end = p;
        } else {
            p += char_len_at(src, p);
        }
    }
    if last_end < b.len() {
        out.element(last_end, b.len(), Found::Unmatched)?;
    }
    if let Some(minus) = out.negate {
        out.tokens.push(Token {
            kind: TokKind::BinaryOp,
            value: TokValue::Op(BinOp::Sub),
            offset: minus,
        });
    }
    Ok(out.tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of filter text, odd ones included, that random expressions are made of.
    const PIECES: &[&str] = &[
        " ",
        "\t",
        "\n",
        "\u{a0}",
        "\u{2028}",
        "é",
        "#c\n",
        "'",
        "\"",
        "\\",
        "\\'",
        "'a'",
        "\"b\\\"c\"",
        "'x\\'y'",
        "true",
        "false",
        "in",
        "intersect",
        "tru",
        "inx",
        "a",
        "b1",
        "$",
        "_",
        "a$",
        "$b",
        "normandy",
        "0",
        "7",
        "1.5",
        ".5",
        "5.",
        "007",
        "1234567890123456",
        "0.30000000000000004",
        ".",
        "[",
        "]",
        "|",
        "{",
        "}",
        ":",
        ",",
        "(",
        ")",
        "?",
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "^",
        "==",
        "!=",
        ">=",
        "<=",
        ">",
        "<",
        "=",
        "!",
        "&&",
        "||",
        "&",
        "@",
    ];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..24)
            .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn the_common_element_shortcut_changes_nothing(src in soup()) {
            prop_assert_eq!(tokenize_with(&src, true), tokenize_with(&src, false));
        }

        #[test]
        fn the_shortcut_changes_nothing_on_arbitrary_text(src in "\\PC{0,40}") {
            prop_assert_eq!(tokenize_with(&src, true), tokenize_with(&src, false));
        }
    }

    #[test]
    fn keywords_need_whole_words() {
        let kinds = |src: &str| -> Vec<(TokKind, TokValue)> {
            tokenize(src)
                .expect("tokens")
                .into_iter()
                .map(|t| (t.kind, t.value))
                .collect()
        };
        assert_eq!(kinds("true"), [(TokKind::Literal, TokValue::Bool(true))]);
        assert_eq!(
            kinds("intersect"),
            [(TokKind::BinaryOp, TokValue::Op(BinOp::Intersect))]
        );
        assert_eq!(
            kinds("inx"),
            [(TokKind::Identifier, TokValue::Ident { end: 3 })]
        );
        // A `$` ends the word `true`: `true` then the identifier `$x`.
        assert_eq!(
            kinds("true$x"),
            [
                (TokKind::Literal, TokValue::Bool(true)),
                (TokKind::Identifier, TokValue::Ident { end: 6 })
            ]
        );
    }
}
