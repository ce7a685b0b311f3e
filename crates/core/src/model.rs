//! Every input format, parsed into one model.
//!
//! Each format module exposes `parse(file, text) -> Parsed<T>` that reports every problem as a
//! [`Diagnostic`] with file, line, column and field path, and a serialiser back to the same
//! format.

pub mod cloudbees;
pub mod manifest_v1;
pub mod normandy;
pub mod testpilot;

use crate::diagnostic::Diagnostic;

/// The outcome of parsing one file: the value when it could be built, and every problem found.
///
/// `value` is `None` only when an error made the document unusable; warnings (and errors that
/// only reject single items) come with a value.
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    /// The parsed document, if usable.
    pub value: Option<T>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl<T> Parsed<T> {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}
