//! Unit tests of the manifest types; the end-to-end tests are in `tests/it/signature_manifest.rs`.

use std::collections::BTreeMap;

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

const HEADER: &str = r#""format": "flightdeck-manifest", "version": 1, "serial": 4,
    "publishedAt": "2026-01-01T00:00:00Z""#;

#[test]
fn a_duplicate_top_level_member_is_refused() {
    // serde_json keeps the last `normandy`, which the signature would cover; the first one
    // must not be what runs.
    let text = format!(
        "{{{HEADER},\n \"normandy\": [{{\"recipe\": {{\"id\": 1}}}}],\n \"normandy\": []}}"
    );
    let error = load("m.json", text.as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "m.json:4:14: error: normandy: `normandy` appears more than once; a manifest names each \
         member once"
    );
}

/// A unified manifest is read without a `serde_json::Value`: what it hashes and what
/// `document()` gives must be what the `Value` path gives (for a small document, and for a
/// large one, whose canonical form is made on a second thread).
#[test]
fn the_unified_reader_hashes_what_the_value_writer_writes() {
    use sha2::{Digest as _, Sha256};
    for padding in [0, 100_000] {
        let text = format!(
            r#"{{ "zeta": {{"b": [1, 2.50, -0, "\u00e9\ud83d\ude00"], "a": null}}, {HEADER},
            "experiments": {{"version": 1, "experiments": []}},
            "normandy": [{{"recipe": {{"id": 1, "name": "{}", "revision_id": "1",
                "action": "preference-rollback", "arguments": {{"rolloutSlug": "s"}},
                "filter_expression": "true", "capabilities": []}}}}],
            "\u00e9t\u00e9": "esc\"aped\\",
            "signature": {{"signature": "AAAA", "keyId": null}} }}"#,
            "n".repeat(padding)
        );
        assert_eq!(text.len() > 64 * 1024, padding > 0);
        let loaded = load("m.json", text.as_bytes()).unwrap();
        // Loading a text the caller keeps reads the same, and holds that text, not a copy.
        let shared: std::sync::Arc<str> = std::sync::Arc::from(text.as_str());
        let from_shared = load_shared("m.json", &shared).unwrap();
        assert_eq!(
            from_shared.source().recipes().map(|set| &set.recipes),
            loaded.source().recipes().map(|set| &set.recipes)
        );
        assert_eq!(from_shared.diagnostics(), loaded.diagnostics());
        assert_eq!(from_shared.content_sha256(), loaded.content_sha256());
        assert_eq!(std::sync::Arc::strong_count(&shared), 2);
        assert_eq!(from_shared.document(), loaded.document());
        assert_eq!(loaded.source().format_name(), FORMAT);
        assert_eq!(loaded.source().recipes().unwrap().recipes.len(), 1);
        let document: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(loaded.document(), &document);
        let Value::Object(map) = &document else {
            panic!()
        };
        let signed = crate::canonical::object_without(map, "signature");
        assert_eq!(
            loaded.content_sha256(),
            &ContentHash(Sha256::digest(signed.as_bytes()).into())
        );
        assert_eq!(
            loaded.signed_digest,
            Some(crate::signature::content_digest(signed.as_bytes()))
        );
        // The unknown members are warned about where their values start, and the core's
        // diagnostics point into the whole document.
        let shown: Vec<String> = loaded.diagnostics().iter().map(|d| d.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with("m.json:1:11: warning: zeta: unknown member"));
        assert!(
            shown[1].starts_with("m.json:4:26: warning: normandy[0].signature: "),
            "{shown:?}"
        );
        assert!(
            shown[2].starts_with("m.json:7:30: warning: \u{e9}t\u{e9}: unknown member"),
            "{shown:?}"
        );
    }
}

/// The unified reader takes a document exactly when serde_json does, at its nesting limit
/// too (so `document()` always has the document).
#[test]
fn nesting_is_limited_as_serde_json_limits_it() {
    for depth in [120, 125, 126, 127, 128] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!("{{{HEADER}, \"deep\": {nested}}}");
        let by_serde = serde_json::from_str::<Value>(&text);
        match load("m.json", text.as_bytes()) {
            Ok(loaded) => {
                assert!(by_serde.is_ok(), "depth {depth}");
                assert_eq!(loaded.document(), &by_serde.unwrap());
            }
            Err(error) => {
                let serde_error = by_serde.expect_err("serde_json reads it");
                assert!(
                    error.to_string().contains(&serde_error.to_string()),
                    "depth {depth}: {error}"
                );
            }
        }
    }
}

/// The signer writes the records with every object's keys in canonical order, so that
/// clients take the streaming path of the canonical writer for them.
#[test]
fn signed_manifests_list_nested_keys_in_canonical_order() {
    fn keys_sorted(value: &Value) -> bool {
        match value {
            Value::Array(items) => items.iter().all(keys_sorted),
            Value::Object(map) => {
                let keys: Vec<&String> = map.keys().collect();
                keys.windows(2)
                    .all(|pair| crate::canonical::compare_utf16(pair[0], pair[1]).is_lt())
                    && map.values().all(keys_sorted)
            }
            _ => true,
        }
    }
    let key = crate::signature::SigningKey::from_pem(
        "bench-signing-key.pem",
        include_str!("../../benches/data/bench-signing-key.pem"),
    )
    .unwrap();
    let recipes = load(
        "r.json",
        br#"[{"id": 5, "name": "n", "revision_id": "9", "action": "preference-rollback",
              "arguments": {"rolloutSlug": "s"}, "filter_expression": "true",
              "capabilities": ["action.preference-rollback"]}]"#,
    )
    .unwrap();
    let experiments = load(
        "e.json",
        br#"{"version": 1, "experiments": [{"xpiURL": "https://e/x.xpi", "id": "x",
              "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099", "sample": 0.25}]}"#,
    )
    .unwrap();
    let published = "2026-11-21T10:00:00Z".parse().unwrap();
    let signed = sign_manifest(&[&recipes, &experiments], &key, 3, published).unwrap();
    let Value::Object(map) = &signed else {
        panic!("{signed}")
    };
    let top: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(
        top,
        [
            "format",
            "version",
            "serial",
            "publishedAt",
            "normandy",
            "experiments",
            "signature"
        ]
    );
    assert!(keys_sorted(&map["normandy"]), "{signed:#}");
    // And it reads back, verified, with the same content hash as its Value gives.
    let text = serde_json::to_string_pretty(&signed).unwrap();
    let loaded = load("m.json", text.as_bytes()).unwrap();
    let mut trusted = crate::signature::TrustedKeys::new();
    trusted.insert(key.public_key().clone());
    let verified = verify(loaded, &trusted, None, &VerifyPolicy::default()).unwrap();
    assert!(verified.bad_recipes().is_empty());
}

// A second key for tests only (generated with `openssl genpkey -algorithm EC -pkeyopt
// ec_paramgen_curve:P-384`); never trust it anywhere else.
const SECOND_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCzoqq4Pt34Erk3BfIu
DR8ndraDrg8Mv1mB1TzS7no0cpZobXEyqd1BPKfVDBLMVl6hZANiAAR/5BJXAXrm
2/m7wPNMmjNW6Ljpm+eIGwQLJpUdN1jqJTx+LAeD9hOys1pdIYV6PbPCna7sqMrP
qvp4RHxu5MMJaKPx6Maa+U0N1JZeNOord74q25YkC7VTawxRwCH7Nx4=
-----END PRIVATE KEY-----
";

fn bench_key() -> crate::signature::SigningKey {
    crate::signature::SigningKey::from_pem(
        "bench-signing-key.pem",
        include_str!("../../benches/data/bench-signing-key.pem"),
    )
    .unwrap()
}

fn second_key() -> crate::signature::SigningKey {
    crate::signature::SigningKey::from_pem("second.pem", SECOND_KEY).unwrap()
}

/// Preference rollbacks, one per `(id, slug)`.
fn rollbacks(recipes: &[(u64, &str)]) -> Loaded {
    let items: Vec<Value> = recipes
        .iter()
        .map(|(id, slug)| {
            serde_json::json!({
                "id": id, "name": format!("Roll back {slug}"), "revision_id": format!("{id}0"),
                "action": "preference-rollback", "arguments": {"rolloutSlug": slug},
                "filter_expression": "true", "capabilities": ["action.preference-rollback"]
            })
        })
        .collect();
    load("r.json", Value::Array(items).to_string().as_bytes()).unwrap()
}

/// Signs `parts` with `cache` as compact JSON bytes.
fn signed_bytes(
    parts: &[&Loaded],
    key: &crate::signature::SigningKey,
    serial: u64,
    cache: &mut SignatureCache,
) -> Vec<u8> {
    let published = "2026-11-21T10:00:00Z".parse().unwrap();
    let signed = sign_manifest_with(parts, key, serial, published, cache).unwrap();
    serde_json::to_vec(&signed).unwrap()
}

/// Verifies `bytes` as a client trusting `key` would, every recipe signature included.
fn verifies(bytes: &[u8], key: &crate::signature::SigningKey) {
    let loaded = load("m.json", bytes).unwrap();
    let mut trusted = crate::signature::TrustedKeys::new();
    trusted.insert(key.public_key().clone());
    let policy = VerifyPolicy {
        require_signature: true,
        recipe_signatures: RecipeSignatureCheck::Always,
        freshness: None,
    };
    let verified = verify(loaded, &trusted, None, &policy).unwrap();
    assert!(
        verified.bad_recipes().is_empty(),
        "{:?}",
        verified.bad_recipes()
    );
}

/// The recipe signatures of a signed manifest, by recipe id.
fn recipe_signatures(bytes: &[u8]) -> BTreeMap<u64, String> {
    let document: Value = serde_json::from_slice(bytes).unwrap();
    document["normandy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            (
                record["recipe"]["id"].as_u64().unwrap(),
                record["signature"]["signature"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn cached_signatures_give_byte_identical_documents() {
    let key = bench_key();
    let recipes = rollbacks(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
    let mut cache = SignatureCache::new();
    let first = signed_bytes(&[&recipes], &key, 7, &mut cache);
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, 4, 4));
    let second = signed_bytes(&[&recipes], &key, 7, &mut cache);
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (4, 0, 4));
    assert_eq!(first, second);
    verifies(&second, &key);
    // RFC 6979: what the cache gives is what signing anew gives.
    let published = "2026-11-21T10:00:00Z".parse().unwrap();
    let fresh = serde_json::to_vec(&sign_manifest(&[&recipes], &key, 7, published).unwrap());
    assert_eq!(fresh.unwrap(), first);
}

#[test]
fn only_a_changed_recipe_is_signed_again() {
    let key = bench_key();
    let mut cache = SignatureCache::new();
    let before = signed_bytes(
        &[&rollbacks(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")])],
        &key,
        7,
        &mut cache,
    );
    // Recipe 2 changes, 3 is removed, 5 is added, and the serial moves on.
    let after = signed_bytes(
        &[&rollbacks(&[(1, "a"), (2, "b2"), (4, "d"), (5, "e")])],
        &key,
        8,
        &mut cache,
    );
    assert_eq!((cache.hits(), cache.misses()), (2, 2));
    verifies(&after, &key);
    let (before, after) = (recipe_signatures(&before), recipe_signatures(&after));
    assert_eq!(after[&1], before[&1]);
    assert_eq!(after[&4], before[&4]);
    assert_ne!(after[&2], before[&2]);
    // Only what the last build used is kept: recipe 3 and the old recipe 2 were evicted.
    assert_eq!(cache.len(), 4);
    let again = rollbacks(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
    signed_bytes(&[&again], &key, 9, &mut cache);
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (2, 2, 4));

    // A failed build leaves the cache as it was.
    let published = "2026-11-21T10:00:00Z".parse().unwrap();
    let loaded = rollbacks(&[(9, "z")]);
    let error = sign_manifest_with(&[&loaded], &key, MAX_SERIAL + 1, published, &mut cache);
    assert!(matches!(error, Err(SignError::Serial(_))));
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (2, 2, 4));
    signed_bytes(&[&again], &key, 9, &mut cache);
    assert_eq!((cache.hits(), cache.misses()), (4, 0));
}

#[test]
fn a_different_key_signs_every_recipe_again() {
    let (key, second) = (bench_key(), second_key());
    assert_ne!(key.key_id(), second.key_id());
    let recipes = rollbacks(&[(1, "a"), (2, "b"), (3, "c")]);
    let mut cache = SignatureCache::new();
    signed_bytes(&[&recipes], &key, 7, &mut cache);
    let rotated = signed_bytes(&[&recipes], &second, 8, &mut cache);
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, 3, 3));
    verifies(&rotated, &second);
    // The first key's signatures were evicted with the rotation.
    signed_bytes(&[&recipes], &key, 9, &mut cache);
    assert_eq!((cache.hits(), cache.misses()), (0, 3));
    cache.clear();
    assert!(cache.is_empty() && cache.misses() == 0);
}
