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

/// The payload of a token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokValue {
    None,
    Lit(Lit),
    Ident(Arc<str>),
    Op(BinOp),
}

/// One token with the byte offset where its element starts.
#[derive(Debug, Clone, PartialEq)]
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

fn is_ident_char(b: u8) -> bool {
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
    src.get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
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

/// Tries every alternative of mozjexl's split regex at `p`, in the regex's order. The
/// alternatives start with distinct characters, so dispatching on the first byte keeps that
/// order.
fn match_at(src: &str, p: usize) -> Option<(usize, Found)> {
    let b = src.as_bytes();
    let c = *b.get(p)?;
    if (c == b'\'' || c == b'"')
        && let Some(len) = match_string(src, p, c)
    {
        return Some((len, Found::Str));
    }
    if c.is_ascii_whitespace() || c == 0x0b || c >= 0x80 {
        let space: usize = src
            .get(p..)?
            .chars()
            .take_while(|&ch| is_js_space(ch))
            .map(char::len_utf8)
            .sum();
        if space > 0 {
            return Some((space, Found::Space));
        }
    }
    match c {
        b't' if word_at(b, p, b"true") => return Some((4, Found::True)),
        b'f' if word_at(b, p, b"false") => return Some((5, Found::False)),
        b'#' => {
            let mut len = 1;
            for ch in src.get(p + 1..)?.chars() {
                if is_line_terminator(ch) {
                    break;
                }
                len += ch.len_utf8();
            }
            if b.get(p + len) == Some(&b'\n') {
                len += 1;
            }
            return Some((len, Found::Comment));
        }
        b'i' if word_at(b, p, b"intersect") => return Some((9, Found::Op(BinOp::Intersect))),
        b'i' if word_at(b, p, b"in") => return Some((2, Found::Op(BinOp::In))),
        _ => {}
    }
    let two = match (c, b.get(p + 1)) {
        (b'/', Some(b'/')) => Some(BinOp::FloorDiv),
        (b'=', Some(b'=')) => Some(BinOp::Eq),
        (b'!', Some(b'=')) => Some(BinOp::Ne),
        (b'>', Some(b'=')) => Some(BinOp::Ge),
        (b'<', Some(b'=')) => Some(BinOp::Le),
        (b'&', Some(b'&')) => Some(BinOp::And),
        (b'|', Some(b'|')) => Some(BinOp::Or),
        _ => None,
    };
    if let Some(op) = two {
        return Some((2, Found::Op(op)));
    }
    let single = match c {
        b'.' => Some(Found::Punct(TokKind::Dot)),
        b'[' => Some(Found::Punct(TokKind::OpenBracket)),
        b']' => Some(Found::Punct(TokKind::CloseBracket)),
        b'|' => Some(Found::Punct(TokKind::Pipe)),
        b'{' => Some(Found::Punct(TokKind::OpenCurl)),
        b'}' => Some(Found::Punct(TokKind::CloseCurl)),
        b':' => Some(Found::Punct(TokKind::Colon)),
        b',' => Some(Found::Punct(TokKind::Comma)),
        b'(' => Some(Found::Punct(TokKind::OpenParen)),
        b')' => Some(Found::Punct(TokKind::CloseParen)),
        b'?' => Some(Found::Punct(TokKind::Question)),
        b'+' => Some(Found::Op(BinOp::Add)),
        b'-' => Some(Found::Op(BinOp::Sub)),
        b'*' => Some(Found::Op(BinOp::Mul)),
        b'/' => Some(Found::Op(BinOp::Div)),
        b'%' => Some(Found::Op(BinOp::Mod)),
        b'^' => Some(Found::Op(BinOp::Pow)),
        b'>' => Some(Found::Op(BinOp::Gt)),
        b'<' => Some(Found::Op(BinOp::Lt)),
        b'!' => Some(Found::Not),
        _ => None,
    };
    if let Some(found) = single {
        return Some((1, found));
    }
    // `\b[a-zA-Z_$][a-zA-Z0-9_$]*\b`, giving back characters until the closing `\b` holds.
    if is_ident_start(c) && boundary(b, p) {
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
    }
    // `(?:[0-9]*\.[0-9]+)|[0-9]+`
    let digits = b
        .get(p..)?
        .iter()
        .take_while(|d| d.is_ascii_digit())
        .count();
    if b.get(p + digits) == Some(&b'.') {
        let frac = b
            .get(p + digits + 1..)
            .map_or(0, |s| s.iter().take_while(|d| d.is_ascii_digit()).count());
        if frac > 0 {
            return Some((digits + 1 + frac, Found::Number));
        }
    }
    if digits > 0 {
        return Some((digits, Found::Number));
    }
    None
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
fn unquote(element: &str) -> Arc<str> {
    let quote = if element.starts_with('"') { '"' } else { '\'' };
    let inner: String = if element.len() >= 2 && element.ends_with(quote) {
        element[1..element.len() - 1].to_owned()
    } else {
        // A stray quote run such as `'` or `'@`: `substr(1, length - 2)` on UTF-16 units.
        let units: Vec<u16> = element.encode_utf16().collect();
        let take = units.len().saturating_sub(2);
        String::from_utf16_lossy(units.get(1..1 + take).unwrap_or(&[]))
    };
    if !inner.contains('\\') {
        return Arc::from(inner);
    }
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

/// mozjexl's `_createToken` for an element it has to classify from scratch.
fn classify(text: &str, offset: usize) -> Result<Token, ParseError> {
    let (kind, value) = if text.starts_with('"') || text.starts_with('\'') {
        (TokKind::Literal, TokValue::Lit(Lit::Str(unquote(text))))
    } else if is_numeric(text) {
        (
            TokKind::Literal,
            TokValue::Lit(Lit::Num(parse_number(text))),
        )
    } else if text == "true" || text == "false" {
        (TokKind::Literal, TokValue::Lit(Lit::Bool(text == "true")))
    } else if let Some(found) = grammar_element(text) {
        return Ok(found_token(found, text, offset));
    } else if is_ident(text) {
        (TokKind::Identifier, TokValue::Ident(Arc::from(text)))
    } else {
        return Err(ParseError {
            offset,
            message: format!("invalid expression token: {text}"),
        });
    };
    Ok(Token {
        kind,
        value,
        offset,
    })
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

fn found_token(found: Found, text: &str, offset: usize) -> Token {
    let (kind, value) = match found {
        Found::Punct(kind) => (kind, TokValue::None),
        Found::Op(op) => (TokKind::BinaryOp, TokValue::Op(op)),
        Found::Not => (TokKind::UnaryOp, TokValue::None),
        Found::True => (TokKind::Literal, TokValue::Lit(Lit::Bool(true))),
        Found::False => (TokKind::Literal, TokValue::Lit(Lit::Bool(false))),
        Found::Number => (
            TokKind::Literal,
            TokValue::Lit(Lit::Num(parse_number(text))),
        ),
        Found::Str => (TokKind::Literal, TokValue::Lit(Lit::Str(unquote(text)))),
        Found::Ident => (TokKind::Identifier, TokValue::Ident(Arc::from(text))),
        // Never produced for a token (skipped or classified before).
        Found::Space | Found::Comment | Found::Unmatched => (TokKind::Comma, TokValue::None),
    };
    Token {
        kind,
        value,
        offset,
    }
}

/// Splits `src` into tokens exactly as mozjexl 1.1.6 does.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut elements: Vec<(usize, usize, Found)> = Vec::new();
    let b = src.as_bytes();
    let (mut p, mut last_end) = (0, 0);
    while p < b.len() {
        if let Some((len, found)) = match_at(src, p) {
            if last_end < p {
                elements.push((last_end, p, Found::Unmatched));
            }
            elements.push((p, p + len, found));
            p += len;
            last_end = p;
        } else {
            p += char_len_at(src, p);
        }
    }
    if last_end < b.len() {
        elements.push((last_end, b.len(), Found::Unmatched));
    }

    let mut tokens: Vec<Token> = Vec::with_capacity(elements.len());
    let mut negate: Option<usize> = None;
    for (start, end, found) in elements {
        let text = src.get(start..end).unwrap_or("");
        match found {
            Found::Space | Found::Comment => continue,
            Found::Op(BinOp::Sub) if minus_negates(&tokens) => {
                negate = Some(start);
                continue;
            }
            _ => {}
        }
        let token = match negate.take() {
            Some(minus) => {
                let glued = format!("-{text}");
                classify(&glued, minus)?
            }
            None if found == Found::Unmatched => classify(text, start)?,
            None => found_token(found, text, start),
        };
        tokens.push(token);
    }
    if let Some(minus) = negate {
        tokens.push(Token {
            kind: TokKind::BinaryOp,
            value: TokValue::Op(BinOp::Sub),
            offset: minus,
        });
    }
    Ok(tokens)
}

fn minus_negates(tokens: &[Token]) -> bool {
    tokens.last().is_none_or(|t| {
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
