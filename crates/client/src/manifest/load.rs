//! Reading a manifest document of any accepted format.

use std::sync::{Arc, OnceLock};

use flightdeck_core::diagnostic::{Diagnostic, FieldPath, JsonLocator, Position};
use flightdeck_core::model::{JsonFormat, Parsed, detect_json_format, manifest_v1, normandy};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{ContentHash, FORMAT, Loaded, MAX_MANIFEST_BYTES, ManifestError, ManifestSource};
use crate::canonical;

/// Reads a manifest document (see the module docs for the formats). `name` is the file name
/// or URL that diagnostics name.
///
/// Fails when the document cannot be used at all: not UTF-8 JSON, none of the formats, a
/// Test Pilot flights index, a unified manifest with a bad header (`version`, `serial`,
/// `publishedAt`, `signature`) or a `normandy` record that is not `{recipe: {...}}`, an
/// integer that a double cannot hold exactly, or a document its format's parser refuses as a
/// whole. Problems with single recipes or experiments come back as diagnostics of the
/// [`Loaded`] document.
pub fn load(name: &str, bytes: &[u8]) -> Result<Loaded, ManifestError> {
    load_text(name, bytes, None)
}

/// [`load`] for a text the caller keeps too (a client run writes it to disk after the
/// check): a unified manifest holds this text instead of a copy of it, which saves a copy of
/// the whole document in memory.
pub fn load_shared(name: &str, text: &Arc<str>) -> Result<Loaded, ManifestError> {
    load_text(name, text.as_bytes(), Some(text))
}

/// [`load`], with the text shared when the caller has it as `shared`.
fn load_text(name: &str, bytes: &[u8], shared: Option<&Arc<str>>) -> Result<Loaded, ManifestError> {
    let fail = |position: Position, path: FieldPath, message: String| ManifestError {
        diagnostics: vec![Diagnostic::error(name, position, path, message)],
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(fail(
            Position::START,
            FieldPath::root(),
            format!(
                "the document is {} bytes; manifests are limited to {MAX_MANIFEST_BYTES} bytes",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        fail(
            Position::of_offset(prefix, prefix.len()),
            FieldPath::root(),
            "the document is not UTF-8 text".to_owned(),
        )
    })?;
    // A unified manifest (what a client reads at every run) has its own reader, which does
    // not build a `serde_json::Value` of the document.
    if text.trim_start().starts_with('{')
        && let Some(result) = super::unified::read(name, text, shared)
    {
        return result;
    }
    // serde_json bounds nesting (128 levels), so hostile input cannot exhaust the stack.
    let document: Value = serde_json::from_str(text).map_err(|error| {
        fail(
            serde_position(text, &error),
            FieldPath::root(),
            format!("invalid JSON: {error}"),
        )
    })?;
    if let Some(error) = inexact_number_error(name, text, &document) {
        return Err(error);
    }

    let unified_format = match &document {
        Value::Object(map) => map.get("format"),
        _ => None,
    };
    let (source, diagnostics) = match unified_format {
        Some(Value::String(format)) if format == FORMAT => {
            // The unified reader takes every document serde_json reads (it has the same
            // grammar and limits), so this is not reached.
            return Err(fail(
                Position::START,
                FieldPath::root(),
                "the manifest could not be read".to_owned(),
            ));
        }
        Some(other) => {
            let path = FieldPath::root().key("format");
            return Err(fail(
                JsonLocator::for_valid_json(text).locate(&path),
                path,
                format!("unknown manifest format {other}; expected \"{FORMAT}\""),
            ));
        }
        None => match detect_json_format(text) {
            Some(JsonFormat::Normandy) => {
                let (set, diagnostics) = usable(normandy::parse(name, text))?;
                (ManifestSource::Normandy(set), diagnostics)
            }
            Some(JsonFormat::ManifestV1) => {
                let (manifest, diagnostics) = usable(manifest_v1::parse(name, text))?;
                (ManifestSource::ManifestV1(manifest), diagnostics)
            }
            Some(JsonFormat::Flights) => {
                return Err(fail(
                    Position::START,
                    FieldPath::root(),
                    "a Test Pilot flights index is not a manifest format (flights are evaluated \
                     with `flightdeck eval`, not delivered in a manifest)"
                        .to_owned(),
                ));
            }
            None => {
                return Err(fail(
                    Position::START,
                    FieldPath::root(),
                    format!(
                        "not a manifest: expected a Flightdeck manifest (\"format\": \"{FORMAT}\"), \
                         Normandy recipes or an Experiments Manifest v1"
                    ),
                ));
            }
        },
    };
    let content_sha256 = ContentHash(Sha256::digest(canonical::to_vec(&document)).into());
    Ok(Loaded {
        name: name.to_owned(),
        source,
        diagnostics,
        document: OnceLock::from(document),
        text: None,
        content_sha256,
        signed_digest: None,
    })
}

/// The error for a document with an integer that a double cannot hold exactly, if it has
/// one.
pub(super) fn inexact_number_error(
    name: &str,
    text: &str,
    document: &Value,
) -> Option<ManifestError> {
    let path = canonical::first_inexact_number(document)?;
    let position = JsonLocator::for_valid_json(text).locate(&path);
    Some(ManifestError {
        diagnostics: vec![Diagnostic::error(
            name,
            position,
            path,
            "this integer is too large to be exact in JavaScript (a double), so it cannot be \
             signed: two different values would have the same signature"
                .to_owned(),
        )],
    })
}

/// The value of a core parse, or every diagnostic as the error when it gave none.
pub(super) fn usable<T>(parsed: Parsed<T>) -> Result<(T, Vec<Diagnostic>), ManifestError> {
    match parsed.value {
        Some(value) => Ok((value, parsed.diagnostics)),
        None => Err(ManifestError {
            diagnostics: errors_first(parsed.diagnostics),
        }),
    }
}

pub(super) fn errors_first(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| !d.is_error());
    diagnostics
}

pub(super) fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| d.position);
    diagnostics
}

/// The position of a serde_json error, with the column counted in characters.
fn serde_position(text: &str, error: &serde_json::Error) -> Position {
    let line = error.line().max(1);
    let line_text = text.split('\n').nth(line - 1).unwrap_or_default();
    let mut end = error.column().saturating_sub(1).min(line_text.len());
    while !line_text.is_char_boundary(end) {
        end -= 1;
    }
    Position {
        line,
        column: line_text.get(..end).map_or(1, |s| s.chars().count() + 1),
    }
}
