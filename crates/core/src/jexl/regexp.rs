//! JavaScript regular expressions (for `regExpMatch`) on top of the `regex` crate.
//!
//! The pattern is translated: `\d \w \s \b` and `.` get their JavaScript (ASCII / JS
//! whitespace / no line terminators) meaning, `[]` and `[^]` work, a `{` that is not a
//! quantifier is literal, and unknown escapes are identity escapes. Features the `regex`
//! crate cannot express (backreferences, lookaround) are reported as errors, which turn into
//! evaluation errors rather than silently different results.

use std::fmt::Write as _;

use regex::{Regex, RegexBuilder};

use crate::value::Value;

/// The characters of JavaScript's `\s`, as the body of a `regex` class.
const JS_SPACE: &str = r"\t\n\x0B\x0C\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
const JS_WORD: &str = "0-9A-Za-z_";
const JS_DIGIT: &str = "0-9";

/// A compiled JavaScript regular expression.
#[derive(Debug, Clone)]
pub(crate) struct JsRegex {
    regex: Regex,
    global: bool,
    sticky: bool,
}

struct Flags {
    global: bool,
    ignore_case: bool,
    multiline: bool,
    dot_all: bool,
    unicode: bool,
    sticky: bool,
}

fn parse_flags(flags: &str) -> Result<Flags, String> {
    let mut f = Flags {
        global: false,
        ignore_case: false,
        multiline: false,
        dot_all: false,
        unicode: false,
        sticky: false,
    };
    let mut seen = String::new();
    for c in flags.chars() {
        if seen.contains(c) {
            return Err(format!("invalid regular expression flags '{flags}'"));
        }
        seen.push(c);
        match c {
            'g' => f.global = true,
            'i' => f.ignore_case = true,
            'm' => f.multiline = true,
            's' => f.dot_all = true,
            'u' | 'v' => {
                if f.unicode {
                    return Err(format!("invalid regular expression flags '{flags}'"));
                }
                f.unicode = true;
            }
            'y' => f.sticky = true,
            'd' => {}
            _ => return Err(format!("invalid regular expression flags '{flags}'")),
        }
    }
    Ok(f)
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || !c.is_ascii() && !c.is_whitespace() {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

struct Translator<'a> {
    chars: Vec<char>,
    i: usize,
    out: String,
    flags: &'a Flags,
}

type Tr<T> = Result<T, String>;

impl Translator<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn hex(&self, from: usize, len: usize) -> Option<u32> {
        let mut v = 0;
        for k in 0..len {
            v = v * 16 + self.chars.get(from + k)?.to_digit(16)?;
        }
        Some(v)
    }

    /// Reads the escape after a `\` (at `self.i`), returning a literal character if it is one;
    /// class escapes are written directly (`in_class` selects the form).
    fn escape(&mut self, in_class: bool) -> Tr<Option<char>> {
        let Some(c) = self.peek() else {
            return Err("\\ at end of pattern".into());
        };
        self.i += 1;
        let class = |body: &str, negated: bool| {
            if in_class {
                if negated {
                    format!("[^{body}]")
                } else {
                    body.to_owned()
                }
            } else if negated {
                format!("[^{body}]")
            } else {
                format!("[{body}]")
            }
        };
        let written = match c {
            'd' => class(JS_DIGIT, false),
            'D' => class(JS_DIGIT, true),
            'w' => class(JS_WORD, false),
            'W' => class(JS_WORD, true),
            's' => class(JS_SPACE, false),
            'S' => class(JS_SPACE, true),
            'b' if in_class => return Ok(Some('\u{8}')),
            'b' => r"(?-u:\b)".to_owned(),
            'B' if in_class => return Ok(Some('B')),
            'B' => r"(?-u:\B)".to_owned(),
            't' => return Ok(Some('\t')),
            'n' => return Ok(Some('\n')),
            'v' => return Ok(Some('\u{B}')),
            'f' => return Ok(Some('\u{C}')),
            'r' => return Ok(Some('\r')),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => return Ok(Some('\0')),
            '0'..='9' if !in_class => {
                return Err("backreferences and octal escapes are not supported".into());
            }
            '0'..='9' => return Err("octal escapes are not supported".into()),
            'c' => match self.peek() {
                Some(l) if l.is_ascii_alphabetic() => {
                    self.i += 1;
                    return Ok(char::from_u32(l as u32 % 32));
                }
                _ => {
                    if self.flags.unicode {
                        return Err("invalid escape \\c".into());
                    }
                    self.i -= 1;
                    return Ok(Some('\\'));
                }
            },
            'x' => match self.hex(self.i, 2) {
                Some(v) => {
                    self.i += 2;
                    return Ok(char::from_u32(v));
                }
                None if self.flags.unicode => return Err("invalid escape \\x".into()),
                None => return Ok(Some('x')),
            },
            'u' => return self.unicode_escape(),
            'p' | 'P' if self.flags.unicode => {
                let close = self.chars[self.i..]
                    .iter()
                    .position(|&ch| ch == '}')
                    .ok_or("invalid property escape")?;
                if self.peek() != Some('{') {
                    return Err("invalid property escape".into());
                }
                let body: String = self.chars[self.i + 1..self.i + close].iter().collect();
                self.i += close + 1;
                format!("\\{c}{{{body}}}")
            }
            'k' if self.flags.unicode || self.chars.iter().collect::<String>().contains("(?<") => {
                return Err("named backreferences are not supported".into());
            }
            other => {
                if self.flags.unicode && other.is_ascii_alphanumeric() {
                    return Err(format!("invalid escape \\{other}"));
                }
                return Ok(Some(other));
            }
        };
        self.out.push_str(&written);
        Ok(None)
    }

    fn unicode_escape(&mut self) -> Tr<Option<char>> {
        if self.flags.unicode && self.peek() == Some('{') {
            let close = self.chars[self.i..]
                .iter()
                .position(|&ch| ch == '}')
                .ok_or("invalid unicode escape")?;
            let digits: String = self.chars[self.i + 1..self.i + close].iter().collect();
            let v = u32::from_str_radix(&digits, 16).map_err(|_| "invalid unicode escape")?;
            self.i += close + 1;
            return char::from_u32(v)
                .map(Some)
                .ok_or_else(|| "unicode escape is not a scalar value".into());
        }
        let Some(v) = self.hex(self.i, 4) else {
            if self.flags.unicode {
                return Err("invalid unicode escape".into());
            }
            return Ok(Some('u'));
        };
        self.i += 4;
        if (0xD800..0xDC00).contains(&v)
            && self.peek() == Some('\\')
            && self.peek_at(1) == Some('u')
            && let Some(low) = self.hex(self.i + 2, 4)
            && (0xDC00..0xE000).contains(&low)
        {
            self.i += 6;
            let cp = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
            return Ok(char::from_u32(cp));
        }
        char::from_u32(v)
            .map(Some)
            .ok_or_else(|| "lone surrogates are not supported".into())
    }

    fn class(&mut self) -> Tr<()> {
        // `self.i` is just past `[`.
        let negated = self.peek() == Some('^');
        if negated {
            self.i += 1;
        }
        if self.peek() == Some(']') {
            self.i += 1;
            // `[]` matches nothing, `[^]` matches anything.
            self.out.push_str(if negated {
                r"[\x{0}-\x{10FFFF}]"
            } else {
                r"[^\x{0}-\x{10FFFF}]"
            });
            return Ok(());
        }
        self.out.push('[');
        if negated {
            self.out.push('^');
        }
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated character class".into());
            };
            self.i += 1;
            let atom = match c {
                ']' => break,
                '\\' => self.escape(true)?,
                other => Some(other),
            };
            let Some(low) = atom else { continue };
            // A range `low-high` (a `-` before `]` or after a class escape is literal).
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                let save = (self.i, self.out.len());
                self.i += 1;
                let high = match self.peek() {
                    Some('\\') => {
                        self.i += 1;
                        self.escape(true)?
                    }
                    Some(h) => {
                        self.i += 1;
                        Some(h)
                    }
                    None => None,
                };
                match high {
                    Some(high) if high >= low => {
                        push_literal(&mut self.out, low);
                        self.out.push('-');
                        push_literal(&mut self.out, high);
                    }
                    Some(_) => return Err("range out of order in character class".into()),
                    None if self.flags.unicode => {
                        return Err("invalid character class range".into());
                    }
                    None => {
                        // `[a-\d]`: in Annex B the `-` is literal. The class escape has been
                        // written already; add the two literals before it.
                        let written = self.out.split_off(save.1);
                        push_literal(&mut self.out, low);
                        push_literal(&mut self.out, '-');
                        self.out.push_str(&written);
                    }
                }
                continue;
            }
            push_literal(&mut self.out, low);
        }
        self.out.push(']');
        Ok(())
    }

    /// The length of a `{n}`, `{n,}` or `{n,m}` quantifier whose `{` is at `start`.
    fn quantifier_len(&self, start: usize) -> Option<usize> {
        let mut k = start + 1;
        let digits = |k: &mut usize| {
            let start = *k;
            while self.chars.get(*k).is_some_and(char::is_ascii_digit) {
                *k += 1;
            }
            *k > start
        };
        if !digits(&mut k) {
            return None;
        }
        if self.chars.get(k) == Some(&',') {
            k += 1;
            digits(&mut k);
        }
        (self.chars.get(k) == Some(&'}')).then_some(k + 1 - start)
    }

    fn translate(mut self) -> Tr<String> {
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '\\' => {
                    if let Some(lit) = self.escape(false)? {
                        push_literal(&mut self.out, lit);
                    }
                }
                '.' => self.out.push_str(if self.flags.dot_all {
                    r"[\x{0}-\x{10FFFF}]"
                } else {
                    r"[^\n\r\x{2028}\x{2029}]"
                }),
                '[' => self.class()?,
                '(' => {
                    if self.peek() == Some('?') {
                        match (self.peek_at(1), self.peek_at(2)) {
                            (Some(':'), _) => {
                                self.i += 2;
                                self.out.push_str("(?:");
                            }
                            (Some('=' | '!'), _) | (Some('<'), Some('=' | '!')) => {
                                return Err("lookaround assertions are not supported".into());
                            }
                            (Some('<'), _) => {
                                self.i += 2;
                                self.out.push_str("(?P<");
                                while let Some(ch) = self.peek() {
                                    self.i += 1;
                                    if ch == '>' {
                                        break;
                                    }
                                    if !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '$') {
                                        return Err("unsupported group name".into());
                                    }
                                    self.out.push(ch);
                                }
                                self.out.push('>');
                            }
                            _ => return Err("invalid group".into()),
                        }
                    } else {
                        self.out.push('(');
                    }
                }
                '{' => match self.quantifier_len(self.i - 1) {
                    Some(len) => {
                        let q: String = self.chars[self.i - 1..self.i - 1 + len].iter().collect();
                        self.i += len - 1;
                        self.out.push_str(&q);
                    }
                    None if self.flags.unicode => return Err("lone quantifier brackets".into()),
                    None => push_literal(&mut self.out, '{'),
                },
                '}' | ']' => {
                    if self.flags.unicode {
                        return Err("lone quantifier brackets".into());
                    }
                    push_literal(&mut self.out, c);
                }
                ')' | '*' | '+' | '?' | '|' | '^' | '$' => self.out.push(c),
                other => push_literal(&mut self.out, other),
            }
        }
        Ok(self.out)
    }
}

impl JsRegex {
    /// `new RegExp(pattern, flags)`.
    pub(crate) fn new(pattern: &str, flags: &str) -> Result<JsRegex, String> {
        let flags = parse_flags(flags)?;
        let mut prefix = String::new();
        if flags.ignore_case {
            prefix.push_str("(?i)");
        }
        if flags.multiline {
            prefix.push_str("(?m)");
        }
        let body = Translator {
            chars: pattern.chars().collect(),
            i: 0,
            out: prefix,
            flags: &flags,
        }
        .translate()
        .map_err(|e| format!("invalid regular expression /{pattern}/: {e}"))?;
        let regex = RegexBuilder::new(&body)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map_err(|e| format!("unsupported regular expression /{pattern}/: {e}"))?;
        Ok(JsRegex {
            regex,
            global: flags.global,
            sticky: flags.sticky,
        })
    }

    /// `string.match(regex)`: all matches with `g`, else the first match and its groups;
    /// `null` when nothing matches.
    pub(crate) fn match_all(&self, s: &str) -> Value {
        if !self.global {
            let Some(caps) = self.regex.captures(s) else {
                return Value::Null;
            };
            if self.sticky && caps.get(0).is_some_and(|m| m.start() != 0) {
                return Value::Null;
            }
            return Value::array(
                caps.iter()
                    .map(|m| m.map_or(Value::Undefined, |m| Value::string(m.as_str())))
                    .collect(),
            );
        }
        let mut found = Vec::new();
        let mut pos = 0;
        while pos <= s.len() {
            let Some(m) = self.regex.find_at(s, pos) else {
                break;
            };
            if self.sticky && m.start() != pos {
                break;
            }
            found.push(Value::string(m.as_str()));
            pos = if m.end() == m.start() {
                // An empty match: step over one character, as `lastIndex` would.
                m.end()
                    + s.get(m.end()..)
                        .and_then(|r| r.chars().next())
                        .map_or(1, char::len_utf8)
            } else {
                m.end()
            };
        }
        if found.is_empty() {
            Value::Null
        } else {
            Value::array(found)
        }
    }
}
