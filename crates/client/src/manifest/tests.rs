//! Unit tests of the manifest types; the end-to-end tests are in `tests/signature_manifest.rs`.

use flightdeck_core::diagnostic::{Diagnostic, FieldPath, Position};

use super::*;

#[test]
fn manifest_error_shows_the_first_error_and_counts_the_rest() {
    let at = |line| Position { line, column: 2 };
    let error = ManifestError {
        diagnostics: vec![
            Diagnostic::warning("m.json", at(1), FieldPath::root(), "w".to_owned()),
            Diagnostic::error(
                "m.json",
                at(2),
                FieldPath::root().key("a"),
                "first".to_owned(),
            ),
            Diagnostic::error("m.json", at(3), FieldPath::root(), "second".to_owned()),
            Diagnostic::error("m.json", at(4), FieldPath::root(), "third".to_owned()),
        ],
    };
    assert_eq!(
        error.to_string(),
        "m.json:2:2: error: a: first (and 2 more errors)"
    );
    let one = ManifestError {
        diagnostics: error.diagnostics[1..2].to_vec(),
    };
    assert_eq!(one.to_string(), "m.json:2:2: error: a: first");
}

#[test]
fn content_hash_hex() {
    let hash = ContentHash([0xab; 32]);
    assert_eq!(hash.to_string(), "ab".repeat(32));
    assert_eq!(ContentHash::from_hex(&"AB".repeat(32)), Some(hash));
    assert_eq!(ContentHash::from_hex(&"ab".repeat(31)), None);
    assert_eq!(
        ContentHash::from_hex(&format!("{}+1", "ab".repeat(31))),
        None
    );
    assert_eq!(ContentHash::from_hex(&"é".repeat(32)), None);
}

#[test]
fn an_empty_unified_manifest_loads() {
    let text = r#"{"format": "flightdeck-manifest", "version": 1, "serial": 0,
                   "publishedAt": "2026-01-01T00:00:00+01:00"}"#;
    let loaded = load("m.json", text.as_bytes()).unwrap();
    let ManifestSource::Unified(unified) = loaded.source() else {
        panic!("{:?}", loaded.source());
    };
    assert!(unified.normandy.recipes.is_empty());
    assert!(unified.experiments.is_none() && unified.signature.is_none());
    assert_eq!(unified.published_at.to_string(), "2025-12-31T23:00:00Z");
    assert_eq!(loaded.serial(), Some(0));
    assert!(loaded.source().recipes().is_some() && loaded.source().experiments().is_none());
}
