//! Reading a manifest document of any accepted format.

use flightdeck_core::diagnostic::{Diagnostic, FieldPath, JsonLocator, PathSegment, Position};
use flightdeck_core::model::{JsonFormat, Parsed, detect_json_format, manifest_v1, normandy};
use serde::de::IgnoredAny;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{
    ContentHash, FORMAT, Loaded, MAX_MANIFEST_BYTES, MAX_SERIAL, ManifestError, ManifestSignature,
    ManifestSource, UnifiedManifest, VERSION,
};
use crate::{canonical, signature};

/// The members a unified manifest defines; others are kept (they are signed) with a warning.
const UNIFIED_KEYS: [&str; 7] = [
    "format",
    "version",
    "serial",
    "publishedAt",
    "normandy",
    "experiments",
    "signature",
];

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
    // serde_json bounds nesting (128 levels), so hostile input cannot exhaust the stack.
    let document: Value = serde_json::from_str(text).map_err(|error| {
        fail(
            serde_position(text, &error),
            FieldPath::root(),
            format!("invalid JSON: {error}"),
        )
    })?;
    let mut locator = JsonLocator::for_valid_json(text);
    if let Some(path) = canonical::first_inexact_number(&document) {
        return Err(fail(
            locator.locate(&path),
            path,
            "this integer is too large to be exact in JavaScript (a double), so it cannot be \
             signed: two different values would have the same signature"
                .to_owned(),
        ));
    }

    let unified_format = match &document {
        Value::Object(map) => map.get("format"),
        _ => None,
    };
    let (source, diagnostics) = match unified_format {
        Some(Value::String(format)) if format == FORMAT => {
            let (unified, diagnostics) = read_unified(name, text, &document, &mut locator)?;
            (ManifestSource::Unified(unified), diagnostics)
        }
        Some(other) => {
            let path = FieldPath::root().key("format");
            return Err(fail(
                locator.locate(&path),
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
    // The signed content is hashed once here, for the replay check and for the signature.
    let (content_sha256, signed_digest) = match (&source, &document) {
        (ManifestSource::Unified(_), Value::Object(map)) => {
            // What the whole-document signature covers.
            let bytes = canonical::object_without(map, "signature");
            (
                ContentHash(Sha256::digest(&bytes).into()),
                Some(signature::content_digest(bytes.as_bytes())),
            )
        }
        _ => (
            ContentHash(Sha256::digest(canonical::to_vec(&document)).into()),
            None,
        ),
    };
    Ok(Loaded {
        name: name.to_owned(),
        source,
        diagnostics,
        document,
        content_sha256,
        signed_digest,
    })
}

/// The value of a core parse, or every diagnostic as the error when it gave none.
fn usable<T>(parsed: Parsed<T>) -> Result<(T, Vec<Diagnostic>), ManifestError> {
    match parsed.value {
        Some(value) => Ok((value, parsed.diagnostics)),
        None => Err(ManifestError {
            diagnostics: errors_first(parsed.diagnostics),
        }),
    }
}

fn errors_first(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| !d.is_error());
    diagnostics
}

/// Reads the members of a unified manifest; the embedded documents go to the core parsers.
fn read_unified(
    name: &str,
    text: &str,
    document: &Value,
    locator: &mut JsonLocator,
) -> Result<(UnifiedManifest, Vec<Diagnostic>), ManifestError> {
    let mut diagnostics = Vec::new();
    let mut error = |locator: &mut JsonLocator, path: FieldPath, message: String| {
        let position = locator.locate(&path);
        diagnostics.push(Diagnostic::error(name, position, path, message));
    };
    let Value::Object(map) = document else {
        // `load` only calls this for objects.
        return Err(ManifestError {
            diagnostics: Vec::new(),
        });
    };
    let root = FieldPath::root();

    match map.get("version") {
        Some(version) if version.as_u64() == Some(VERSION) => {}
        Some(version) => error(
            locator,
            root.key("version"),
            format!("unsupported manifest version {version}; this client reads version {VERSION}"),
        ),
        None => error(
            locator,
            root.clone(),
            format!("missing `version` (it must be {VERSION})"),
        ),
    }
    let serial = match map.get("serial") {
        Some(serial) => match serial.as_u64() {
            Some(serial) if serial <= MAX_SERIAL => Some(serial),
            _ => {
                error(
                    locator,
                    root.key("serial"),
                    format!("`serial` must be an integer from 0 to {MAX_SERIAL}"),
                );
                None
            }
        },
        None => {
            error(locator, root.clone(), "missing `serial`".to_owned());
            None
        }
    };
    let published_at = match map.get("publishedAt") {
        Some(Value::String(time)) => match time.parse::<jiff::Timestamp>() {
            Ok(time) => Some(time),
            Err(parse_error) => {
                error(
                    locator,
                    root.key("publishedAt"),
                    format!("`publishedAt` is not an RFC 3339 time: {parse_error}"),
                );
                None
            }
        },
        Some(_) => {
            error(
                locator,
                root.key("publishedAt"),
                "`publishedAt` must be an RFC 3339 time string".to_owned(),
            );
            None
        }
        None => {
            error(locator, root.clone(), "missing `publishedAt`".to_owned());
            None
        }
    };
    let signature = match map.get("signature") {
        None => None,
        Some(value) => match read_signature(value) {
            Ok(signature) => Some(signature),
            Err((key, message)) => {
                let path = match key {
                    Some(key) => root.key("signature").key(key),
                    None => root.key("signature"),
                };
                error(locator, path, message);
                None
            }
        },
    };
    match map.get("normandy") {
        None => {}
        Some(Value::Array(records)) => {
            for (index, record) in records.iter().enumerate() {
                let path = root.key("normandy").index(index);
                match record.get("recipe") {
                    Some(Value::Object(_)) => {}
                    _ => error(
                        locator,
                        path,
                        "a record must be an object `{\"recipe\": {...}, \"signature\": {...}}`"
                            .to_owned(),
                    ),
                }
            }
        }
        Some(_) => error(
            locator,
            root.key("normandy"),
            "`normandy` must be an array of `{recipe, signature}` records".to_owned(),
        ),
    }
    if let Some(experiments) = map.get("experiments")
        && !experiments.is_object()
    {
        error(
            locator,
            root.key("experiments"),
            "`experiments` must be an Experiments Manifest v1 object".to_owned(),
        );
    }
    for key in map.keys() {
        if !UNIFIED_KEYS.contains(&key.as_str()) {
            let path = root.key(key);
            let position = locator.locate(&path);
            diagnostics.push(Diagnostic::warning(
                name,
                position,
                path,
                "unknown member (kept, and covered by the signature)".to_owned(),
            ));
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(ManifestError {
            diagnostics: errors_first(sorted(diagnostics)),
        });
    }

    let normandy = match map.get("normandy") {
        Some(_) => {
            let parsed = parse_member(name, text, locator, "normandy", normandy::parse);
            let (set, found) = usable(parsed)?;
            diagnostics.extend(found);
            set
        }
        None => normandy::RecipeSet {
            recipes: Vec::new(),
            container: normandy::Container::Array,
        },
    };
    let experiments = match map.get("experiments") {
        Some(_) => {
            let parsed = parse_member(name, text, locator, "experiments", manifest_v1::parse);
            let (mut manifest, found) = usable(parsed)?;
            diagnostics.extend(found);
            let base = member_start(locator, "experiments");
            for rejected in &mut manifest.rejected {
                rejected.position = shift(base, rejected.position);
            }
            Some(manifest)
        }
        None => None,
    };
    let (Some(serial), Some(published_at)) = (serial, published_at) else {
        // Both were checked above; a missing one is an error and returned early.
        return Err(ManifestError { diagnostics });
    };
    Ok((
        UnifiedManifest {
            serial,
            published_at,
            normandy,
            experiments,
            signature,
        },
        sorted(diagnostics),
    ))
}

fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| d.position);
    diagnostics
}

/// Reads the top-level `signature` object; on error, the member at fault and why.
fn read_signature(value: &Value) -> Result<ManifestSignature, (Option<&'static str>, String)> {
    let Value::Object(map) = value else {
        return Err((
            None,
            "`signature` must be an object {signature, keyId, alg}".to_owned(),
        ));
    };
    let text = |key: &'static str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err((Some(key), format!("`{key}` must be a string"))),
    };
    let signature = text("signature")?.ok_or((None, "missing `signature`".to_owned()))?;
    Ok(ManifestSignature {
        signature,
        key_id: text("keyId")?,
        alg: text("alg")?.unwrap_or_else(|| crate::signature::ALGORITHM.to_owned()),
    })
}

/// Parses the top-level member `key` with a core parser, on its own text, and moves the
/// diagnostics back into the whole document (positions and field paths).
fn parse_member<T>(
    name: &str,
    text: &str,
    locator: &mut JsonLocator,
    key: &str,
    parse: fn(&str, &str) -> Parsed<T>,
) -> Parsed<T> {
    let start = locator.offset(&FieldPath::root().key(key));
    let rest = text.get(start..).unwrap_or_default();
    // The member's own text: one JSON value from `start`.
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<IgnoredAny>();
    let length = match values.next() {
        Some(Ok(_)) => values.byte_offset(),
        _ => rest.len(),
    };
    let member = rest.get(..length).unwrap_or(rest);
    let mut parsed = parse(name, member);
    let base = locator.position_of_offset(start);
    for diagnostic in &mut parsed.diagnostics {
        diagnostic.position = shift(base, diagnostic.position);
        let mut path = vec![PathSegment::Key(key.to_owned())];
        path.append(&mut diagnostic.path.0);
        diagnostic.path = FieldPath(path);
    }
    parsed
}

fn member_start(locator: &mut JsonLocator, key: &str) -> Position {
    let offset = locator.offset(&FieldPath::root().key(key));
    locator.position_of_offset(offset)
}

/// `position` in a text that starts at `base` of the document, as a position in the document.
fn shift(base: Position, position: Position) -> Position {
    if position.line <= 1 {
        Position {
            line: base.line,
            column: base.column + position.column.saturating_sub(1),
        }
    } else {
        Position {
            line: base.line + position.line - 1,
            column: position.column,
        }
    }
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
