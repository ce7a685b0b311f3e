//! The filter-expression language: mozjexl 1.1.6 semantics, parsed once, evaluated many times.
//!
//! INTERFACE CONTRACT (kept stable for the rest of the crate):
//! - `Expression::parse(source) -> Result<Expression, ParseError>`; `ParseError` carries the byte
//!   `offset` into `source` and a message.
//! - `Expression::eval(&self, vars: &Value, prefs: &PrefSnapshot) -> Result<Value, EvalError>`:
//!   `vars` is the object whose members are the top-level identifiers (for Normandy filters
//!   `{normandy: …, env: …}`), `prefs` is read by the `preference*` transforms.
//! - `Expression` is `Send + Sync` and cheap to evaluate repeatedly.
//!
//! # Dialect
//!
//! Normandy filters are written for mozjexl 1.1.6 plus Normandy's transforms and its
//! `intersect` operator, and this module reproduces that dialect exactly, quirks included,
//! because a filter must select the same clients here as in Firefox:
//!
//! - The lexer and parser are ports of mozjexl's regex-split lexer and state-machine parser
//!   ([`lexer`], [`parser`]), not a clean grammar: `-` is only a sign glued to a number
//!   (`-x` is an error, `--5` is `-5`), there is no `null` literal (`null` is an identifier),
//!   object keys must be identifiers, a transform cannot be directly followed by `? :`, and an
//!   unclosed `(` at the very start is accepted.
//! - Precedence (low to high): `||` `&&` (10), comparisons and `in` (20), `+ -` (30),
//!   `* / // intersect` (40), `% ^` (50), all left-associative; then unary `!`, then
//!   `.name`, `[filter]` and `|transform`. The ternary `a ? b : c` (and `a ?: b`) takes
//!   everything to its left as the condition and everything to its right as the alternative.
//! - `&&` and `||` evaluate both sides and return one of the operand values; `==` is
//!   JavaScript loose equality; `in` tests substrings and array membership (`==`).
//! - `a.b` on an array reads the first element's `b`; on `undefined` it is `undefined`; on
//!   `null` (or an empty array) it is an evaluation error.
//! - `list[.x == 1]` keeps the elements for which the expression is truthy (relative
//!   identifiers read the element); `list[0]`, `obj['k']` index; `x[true]` is `x`.
//! - Values follow JavaScript: one number type, `undefined` distinct from `null`, `+`
//!   concatenates when either side is a string, dates compare by time value and print in UTC.
//!
//! - Arrays and objects have identity: member access and `&&`/`||`/`?:` give the same object
//!   (`a == a`), while literals, filters, `intersect` and transforms build new ones
//!   (`a|values == a` is false).
//! - `regExpMatch` is `new RegExp(pattern, flags)` with JavaScript's own syntax and matching
//!   (on the `regress` engine, see `jexl/regexp.rs`); `bucketSample` applies JavaScript's `+` and `>`
//!   to its arguments, and a NaN sampling fraction is compared as Firefox's text key.
//!
//! # Compiling
//!
//! Tokens are parsed into a tree (`jexl/ast.rs`), which `jexl/compile.rs` turns into a flat
//! program (`jexl/program.rs`). The filters manifests are made of (`&&` chains of list,
//! string, version and sampling clauses) skip the tree: `jexl/fast.rs` writes their program
//! from the tokens, the
//! same program operation for operation, because a client compiles every filter of its
//! manifest at every run.
//!
//! Deliberate limits of the model: objects have no prototype (`x.toString` is `undefined`),
//! dates have no identity (`d == d` is false for two date values, even for the same one read
//! twice), string indexing works on UTF-16 units but lone surrogates become U+FFFD, a
//! non-global `regExpMatch` result has no `index`/`input`/`groups` properties, and regular
//! expressions follow ES2024 (Node 20, the differential oracle): pattern modifiers and
//! duplicate group names are syntax errors, and with `v` and `i` set operations (`--`, `&&`)
//! do not case-fold their operands first.

mod ast;
mod compile;
mod date;
mod eval;
mod fast;
mod lexer;
mod ops;
mod parser;
mod program;
mod regexp;
mod transforms;

use std::sync::Arc;

use crate::context::PrefSnapshot;
use crate::value::Value;

pub use transforms::TRANSFORM_NAMES;

/// Longest accepted source text, in bytes.
pub const MAX_SOURCE_LEN: usize = 64 * 1024;
/// Deepest accepted bracket nesting: parentheses, brackets, braces, arguments and ternary
/// branches each open one level.
pub const MAX_NESTING: usize = 128;
/// Deepest accepted expression tree (chains of `&&` or of `||` count as one level). This
/// bounds the recursion of compilation and evaluation.
pub const MAX_DEPTH: usize = 256;

/// A compiler that takes some token sequences straight to a program (see [`fast`]).
type Shortcut = fn(&str, &[lexer::Token]) -> Option<program::Program>;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expression {
    /// Held by value: see [`program::Program`].
    program: program::Program,
    source: Arc<str>,
}

/// An expression that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at offset {offset}: {message}")]
pub struct ParseError {
    /// Byte offset into the source where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// An expression that could not be evaluated (a JavaScript exception in mozjexl).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// What went wrong.
    pub message: String,
}

impl Expression {
    /// Parses and compiles `source` exactly as mozjexl 1.1.6 would read it.
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        Expression::parse_with(source, Some(fast::compile), compile::compile)
    }

    /// Parses `source` and compiles it with `compile`, or with `shortcut` when that takes the
    /// tokens (see [`fast`]).
    fn parse_with(
        source: &str,
        shortcut: Option<Shortcut>,
        compile: fn(&ast::Ast) -> program::Program,
    ) -> Result<Expression, ParseError> {
        if source.len() > MAX_SOURCE_LEN {
            return Err(ParseError {
                offset: MAX_SOURCE_LEN,
                message: format!("expression is longer than {MAX_SOURCE_LEN} bytes"),
            });
        }
        let tokens = lexer::tokenize(source)?;
        if let Some(program) = shortcut.and_then(|shortcut| shortcut(source, &tokens)) {
            return Ok(Expression {
                program,
                source: Arc::from(source),
            });
        }
        let limits = parser::Limits {
            max_nesting: MAX_NESTING,
        };
        let ast = parser::parse(source, &tokens, limits)?.ok_or_else(|| ParseError {
            offset: 0,
            message: "empty expression".into(),
        })?;
        let depth = ast.depth();
        if depth > MAX_DEPTH {
            return Err(ParseError {
                offset: ast.nodes.get(ast.root).map_or(0, |n| n.offset),
                message: format!(
                    "expression is nested too deeply (depth {depth}, limit {MAX_DEPTH})"
                ),
            });
        }
        Ok(Expression {
            program: compile(&ast),
            source: Arc::from(source),
        })
    }

    /// Parses a Normandy filter the way the Firefox client does: tabs, carriage returns and
    /// newlines are first replaced by spaces (so a `#` comment runs to the end of the filter).
    /// Byte offsets are unchanged by the replacement.
    pub fn parse_normandy(source: &str) -> Result<Expression, ParseError> {
        // Three `memchr` scans: these are ASCII, and a filter is compiled once per recipe and
        // run.
        let bytes = source.as_bytes();
        if bytes.contains(&b'\n') || bytes.contains(&b'\t') || bytes.contains(&b'\r') {
            Expression::parse(&source.replace(['\t', '\n', '\r'], " "))
        } else {
            Expression::parse(source)
        }
    }

    /// Whether evaluating can read anything of the Normandy filter environment's `recipe`
    /// besides `recipe.id` (see [`program::Program::reads_recipe_beyond_id`]): when it cannot,
    /// evaluation may bind `recipe` to `{id}` alone instead of building `{id, arguments}`.
    pub(crate) fn reads_recipe_beyond_id(&self) -> bool {
        self.program.recipe_beyond_id
    }

    /// The source text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `vars` (top-level identifiers) and `prefs`.
    pub fn eval(&self, vars: &Value, prefs: &PrefSnapshot) -> Result<Value, EvalError> {
        let program = &self.program;
        let env = eval::Env::new(program, vars, prefs);
        if program.boolean {
            return eval::truthy(program::ROOT, &env).map(Value::Bool);
        }
        eval::eval(program::ROOT, &env).map(std::borrow::Cow::into_owned)
    }

    /// Evaluates and casts the result to a boolean (`!!result`), as Normandy does with a
    /// filter's value.
    pub fn eval_bool(&self, vars: &Value, prefs: &PrefSnapshot) -> Result<bool, EvalError> {
        let env = eval::Env::new(&self.program, vars, prefs);
        eval::truthy(program::ROOT, &env)
    }
}

#[cfg(test)]
mod tests;
