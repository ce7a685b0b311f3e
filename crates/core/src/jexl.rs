//! The filter-expression language: mozjexl 1.1.6 semantics, parsed once, evaluated many times.
//!
//! INTERFACE CONTRACT (kept stable for the rest of the crate):
//! - `Expression::parse(source) -> Result<Expression, ParseError>`; `ParseError` carries the byte
//!   `offset` into `source` and a message.
//! - `Expression::eval(&self, vars: &Value, prefs: &PrefSnapshot) -> Result<Value, EvalError>`:
//!   `vars` is the object whose members are the top-level identifiers (for Normandy filters
//!   `{normandy: …, env: …}`), `prefs` is read by the `preference*` transforms.
//! - `Expression` is `Send + Sync` and cheap to evaluate repeatedly.

use crate::context::PrefSnapshot;
use crate::value::Value;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
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
    /// Parses and compiles `source`.
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        Ok(Expression {
            source: source.to_owned(),
        })
    }

    /// The source text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `vars` (top-level identifiers) and `prefs`.
    pub fn eval(&self, _vars: &Value, _prefs: &PrefSnapshot) -> Result<Value, EvalError> {
        Err(EvalError {
            message: "the filter language is not built yet".into(),
        })
    }
}
