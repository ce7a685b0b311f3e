//! Loading, signing and verifying manifests end to end, through the public API only.

use std::path::PathBuf;

use flightdeck_client::canonical;
use flightdeck_client::manifest::{
    ContentHash, Freshness, LastAccepted, Loaded, ManifestSource, RecipeSignatureCheck, SignError,
    VerifyError, VerifyPolicy, load, sign_manifest, verify,
};
use flightdeck_client::signature::{SignatureError, SigningKey, TrustedKeys};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

// Keys for tests only (generated with `openssl genpkey -algorithm EC -pkeyopt
// ec_paramgen_curve:P-384`); never trust them anywhere else.
const KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBEZ2vNOAcdZpUZnPY7
knAlCNsZuy1kAztw0wb35nF39obQQsIfCCVM4s0W4lOi7fOhZANiAAQme3wweQfo
eQEysvKzowa/zfMAqww9kDqc2YCCClhzu/s0o6mfTKPp/4OXjQWl4qGJPQeivHl1
S/YIAdlsJMomGjPRbtFa+anQhL7gYNc2wwzCyz+j8yLjR9we1vjuQPA=
-----END PRIVATE KEY-----
";
const KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCzoqq4Pt34Erk3BfIu
DR8ndraDrg8Mv1mB1TzS7no0cpZobXEyqd1BPKfVDBLMVl6hZANiAAR/5BJXAXrm
2/m7wPNMmjNW6Ljpm+eIGwQLJpUdN1jqJTx+LAeD9hOys1pdIYV6PbPCna7sqMrP
qvp4RHxu5MMJaKPx6Maa+U0N1JZeNOord74q25YkC7VTawxRwCH7Nx4=
-----END PRIVATE KEY-----
";

fn key_a() -> SigningKey {
    SigningKey::from_pem("a.pem", KEY_A).unwrap()
}

fn key_b() -> SigningKey {
    SigningKey::from_pem("b.pem", KEY_B).unwrap()
}

fn trust(keys: &[&SigningKey]) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    for key in keys {
        trusted.insert(key.public_key().clone());
    }
    trusted
}

fn example(path: &str) -> Loaded {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(path);
    load(path, &std::fs::read(file).unwrap()).unwrap()
}

fn published() -> Timestamp {
    "2026-11-21T10:00:00Z".parse().unwrap()
}

/// Both examples signed with `key` as one manifest, as pretty JSON text.
fn signed_examples(key: &SigningKey, serial: u64) -> String {
    let recipes = example("normandy/recipes.json");
    let experiments = example("manifest-v1/experiments.json");
    let document = sign_manifest(&[&recipes, &experiments], key, serial, published()).unwrap();
    serde_json::to_string_pretty(&document).unwrap()
}

fn load_text(text: &str) -> Loaded {
    load("manifest.json", text.as_bytes()).unwrap()
}

fn check(
    text: &str,
    trusted: &TrustedKeys,
) -> Result<flightdeck_client::manifest::Verified, VerifyError> {
    verify(load_text(text), trusted, None, &VerifyPolicy::default())
}

/// Re-signs the whole document with `key` after an edit (recipe signatures untouched).
fn resign_whole(document: &mut Value, key: &SigningKey) {
    let mut unsigned = document.as_object().unwrap().clone();
    unsigned.shift_remove("signature");
    let signature = key
        .sign(&canonical::to_vec(&Value::Object(unsigned)))
        .unwrap();
    document["signature"]["signature"] = Value::String(signature);
}

#[test]
fn signed_examples_verify_with_the_signing_key() {
    let key = key_a();
    let text = signed_examples(&key, 17);
    let loaded = load_text(&text);
    assert!(
        loaded.diagnostics().is_empty(),
        "{:?}",
        loaded.diagnostics()
    );
    let ManifestSource::Unified(unified) = loaded.source() else {
        panic!("not unified: {:?}", loaded.source().format_name());
    };
    assert_eq!(unified.serial, 17);
    assert_eq!(unified.published_at, published());
    let ids: Vec<u64> = unified.normandy.recipes.iter().map(|r| r.id).collect();
    assert_eq!(ids, [101, 102, 103, 104]);
    assert_eq!(unified.experiments.as_ref().unwrap().experiments.len(), 3);
    let signature = unified.signature.as_ref().unwrap();
    assert_eq!(signature.key_id.as_deref(), Some(key.key_id().as_str()));
    assert_eq!(signature.alg, "ES384");

    let verified = verify(loaded, &trust(&[&key]), None, &VerifyPolicy::default()).unwrap();
    assert_eq!(verified.key_id(), Some(key.key_id()));
    assert!(
        verified.bad_recipes().is_empty(),
        "{:?}",
        verified.bad_recipes()
    );
    let accepted = verified.accepted().unwrap();
    assert_eq!(accepted.serial, 17);
    assert_eq!(&accepted.content_sha256, verified.loaded().content_sha256());
}

#[test]
fn records_have_the_minimal_recipe_and_a_full_signature_object() {
    let key = key_a();
    let document: Value = serde_json::from_str(&signed_examples(&key, 1)).unwrap();
    let keys: Vec<&str> = document
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
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
    let record = &document["normandy"][0];
    let mut recipe_keys: Vec<&str> = record["recipe"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    recipe_keys.sort_unstable();
    assert_eq!(
        recipe_keys,
        [
            "action",
            "arguments",
            "capabilities",
            "filter_expression",
            "id",
            "name",
            "revision_id",
            "uses_only_baseline_capabilities"
        ]
    );
    assert_eq!(record["recipe"]["revision_id"], json!("2001"));
    let signature = &record["signature"];
    assert_eq!(signature["timestamp"], json!("2026-11-21T10:00:00Z"));
    assert_eq!(signature["x5u"], Value::Null);
    assert_eq!(signature["keyId"], json!(key.key_id().as_str()));
    assert_eq!(
        signature["public_key"],
        json!(key.public_key().to_base64_der())
    );
    // The record signature is over the canonical recipe.
    let bytes = canonical::to_vec(&record["recipe"]);
    key.public_key()
        .verify(&bytes, signature["signature"].as_str().unwrap())
        .unwrap();
    // The experiments are the Manifest v1 document as read.
    let original: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/manifest-v1/experiments.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(document["experiments"], original);
}

#[test]
fn tampering_with_any_byte_of_content_breaks_the_whole_signature() {
    let key = key_a();
    let trusted = trust(&[&key]);
    let text = signed_examples(&key, 5);
    let edits: [(&str, &str); 4] = [
        (
            "Enable HTTP/3 for release users",
            "Enable HTTP/3 for release userz",
        ),
        ("\"serial\": 5", "\"serial\": 6"),
        ("\"sample\": 0.5", "\"sample\": 0.6"),
        (
            "\"2026-11-21T10:00:00Z\",\n  \"normandy\"",
            "\"2026-11-21T10:00:01Z\",\n  \"normandy\"",
        ),
    ];
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        let tampered = text.replacen(from, to, 1);
        let error = check(&tampered, &trusted).unwrap_err();
        assert!(
            matches!(
                error,
                VerifyError::BadSignature {
                    error: SignatureError::Mismatch { .. },
                    ..
                }
            ),
            "{from}: {error}"
        );
        assert_eq!(error.code(), "bad-signature");
    }
    // Formatting is not content: the compact form of the same document verifies.
    let compact = serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    let verified = check(&compact, &trusted).unwrap();
    assert_eq!(
        verified.loaded().content_sha256(),
        load_text(&text).content_sha256()
    );
}

#[test]
fn a_recipe_with_a_bad_or_missing_signature_is_reported_not_fatal() {
    let key = key_a();
    let trusted = trust(&[&key]);
    let mut document: Value = serde_json::from_str(&signed_examples(&key, 5)).unwrap();
    // Someone with the manifest key changed recipe 102 without re-signing the recipe, and
    // dropped the signature of recipe 104.
    document["normandy"][1]["recipe"]["filter_expression"] = json!("true");
    document["normandy"][3]
        .as_object_mut()
        .unwrap()
        .shift_remove("signature");
    resign_whole(&mut document, &key);
    let verified = check(&document.to_string(), &trusted).unwrap();
    let bad: Vec<(u64, String)> = verified
        .bad_recipes()
        .iter()
        .map(|(id, error)| (*id, error.to_string()))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].0, 102);
    assert!(
        bad[0].1.starts_with("the signature does not match"),
        "{}",
        bad[0].1
    );
    assert_eq!(bad[1], (104, "there is no signature".to_owned()));

    // The policy can skip the per-recipe check.
    let policy = VerifyPolicy {
        recipe_signatures: RecipeSignatureCheck::Skip,
        ..VerifyPolicy::default()
    };
    let verified = verify(load_text(&document.to_string()), &trusted, None, &policy).unwrap();
    assert!(verified.bad_recipes().is_empty());
}

#[test]
fn recipe_signature_key_is_chosen_by_key_id_then_public_key() {
    let (a, b) = (key_a(), key_b());
    let mut document: Value = serde_json::from_str(&signed_examples(&a, 5)).unwrap();
    let signature = &mut document["normandy"][0]["signature"];
    // Without keyId, the public_key names the key (it must still be trusted).
    signature.as_object_mut().unwrap().shift_remove("keyId");
    resign_whole(&mut document, &a);
    let text = document.to_string();
    assert!(
        check(&text, &trust(&[&a]))
            .unwrap()
            .bad_recipes()
            .is_empty()
    );
    // Signed by a key the client does not trust: the whole check fails first.
    assert!(check(&text, &trust(&[&b])).is_err());
    // A record naming an untrusted key id is bad, even if the manifest is fine.
    document["normandy"][0]["signature"]["keyId"] = json!(b.key_id().as_str());
    resign_whole(&mut document, &a);
    let verified = check(&document.to_string(), &trust(&[&a])).unwrap();
    assert_eq!(
        verified.bad_recipes().get(&101),
        Some(&SignatureError::UnknownKey(b.key_id().to_string()))
    );
}

#[test]
fn wrong_key_rotation_and_key_ids() {
    let (a, b) = (key_a(), key_b());
    let text = signed_examples(&a, 3);
    let error = check(&text, &trust(&[&b])).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "manifest.json: bad signature: signed with key {}, which is not a trusted key",
            a.key_id()
        )
    );
    // Trusting the old and the new key accepts both during a rotation.
    let both = trust(&[&b, &a]);
    assert_eq!(check(&text, &both).unwrap().key_id(), Some(a.key_id()));
    let text_b = signed_examples(&b, 4);
    assert_eq!(check(&text_b, &both).unwrap().key_id(), Some(b.key_id()));

    // A manifest signature without keyId is tried with every trusted key.
    let mut document: Value = serde_json::from_str(&text).unwrap();
    document["signature"]
        .as_object_mut()
        .unwrap()
        .shift_remove("keyId");
    let text = document.to_string();
    assert_eq!(check(&text, &both).unwrap().key_id(), Some(a.key_id()));
    let error = check(&text, &trust(&[&b])).unwrap_err();
    assert_eq!(
        error,
        VerifyError::BadSignature {
            name: "manifest.json".to_owned(),
            error: SignatureError::Mismatch {
                tried: vec![b.key_id().clone()]
            }
        }
    );
}

#[test]
fn replay_protection_by_serial_and_content_hash() {
    let key = key_a();
    let trusted = trust(&[&key]);
    let text = signed_examples(&key, 17);
    let hash = *load_text(&text).content_sha256();
    let run = |last: LastAccepted| {
        verify(
            load_text(&text),
            &trusted,
            Some(&last),
            &VerifyPolicy::default(),
        )
    };
    let error = run(LastAccepted {
        serial: 18,
        content_sha256: hash,
    })
    .unwrap_err();
    assert_eq!(error.code(), "replayed");
    assert_eq!(
        error.to_string(),
        "manifest.json: replayed: serial 17 is older than the last accepted manifest (serial 18)"
    );
    // The same publication again (the client's cached copy, or a re-fetch) is fine.
    run(LastAccepted {
        serial: 17,
        content_sha256: hash,
    })
    .unwrap();
    // The same serial with other content is not.
    let other = ContentHash([7; 32]);
    let error = run(LastAccepted {
        serial: 17,
        content_sha256: other,
    })
    .unwrap_err();
    assert!(matches!(
        error,
        VerifyError::SerialReused { serial: 17, .. }
    ));
    assert_eq!(error.code(), "replayed");
    run(LastAccepted {
        serial: 16,
        content_sha256: other,
    })
    .unwrap();

    // Signing is deterministic: signing the same inputs again (same key, serial and time) is
    // the same publication. Another key writes other record signatures: other content.
    assert_eq!(
        load_text(&signed_examples(&key, 17)).content_sha256(),
        &hash
    );
    assert_ne!(
        load_text(&signed_examples(&key_b(), 17)).content_sha256(),
        &hash
    );
    // The hash is stored as hex.
    assert_eq!(ContentHash::from_hex(&hash.to_string()), Some(hash));
    assert_eq!(ContentHash::from_hex("zz"), None);
}

#[test]
fn unsigned_documents_are_refused_when_keys_are_configured() {
    let key = key_a();
    let trusted = trust(&[&key]);
    let recipes = example("normandy/recipes.json");
    let error = verify(recipes, &trusted, None, &VerifyPolicy::default()).unwrap_err();
    assert_eq!(error.code(), "unsigned");
    assert!(
        error
            .to_string()
            .contains("a normandy document has no manifest signature")
    );
    let experiments = example("manifest-v1/experiments.json");
    let error = verify(experiments, &trusted, None, &VerifyPolicy::default()).unwrap_err();
    assert!(matches!(
        error,
        VerifyError::Unsigned {
            format: "manifest-v1",
            ..
        }
    ));

    let mut document: Value = serde_json::from_str(&signed_examples(&key, 2)).unwrap();
    document.as_object_mut().unwrap().shift_remove("signature");
    let text = document.to_string();
    let error = check(&text, &trusted).unwrap_err();
    assert!(matches!(error, VerifyError::Unsigned { .. }), "{error}");

    // Without keys nothing is verified, unless the policy requires signatures.
    let verified = check(&text, &TrustedKeys::new()).unwrap();
    assert_eq!(verified.key_id(), None);
    assert_eq!(verified.accepted(), None);
    let policy = VerifyPolicy {
        require_signature: true,
        ..VerifyPolicy::default()
    };
    let error = verify(load_text(&text), &TrustedKeys::new(), None, &policy).unwrap_err();
    assert_eq!(error.code(), "no-trusted-keys");
}

#[test]
fn other_algorithms_and_stale_manifests_are_refused() {
    let key = key_a();
    let trusted = trust(&[&key]);
    let mut document: Value = serde_json::from_str(&signed_examples(&key, 2)).unwrap();
    document["signature"]["alg"] = json!("HS256");
    let error = check(&document.to_string(), &trusted).unwrap_err();
    assert_eq!(
        error.to_string(),
        "manifest.json: unsupported signature algorithm \"HS256\" (only ES384)"
    );

    let text = signed_examples(&key, 2);
    let policy = |hours| VerifyPolicy {
        freshness: Some(Freshness {
            now: "2026-11-22T10:00:00Z".parse().unwrap(),
            max_age: SignedDuration::from_hours(hours),
        }),
        ..VerifyPolicy::default()
    };
    verify(load_text(&text), &trusted, None, &policy(24)).unwrap();
    let error = verify(load_text(&text), &trusted, None, &policy(23)).unwrap_err();
    assert_eq!(error.code(), "stale");
}

#[test]
fn resigning_a_unified_manifest_keeps_recipes_byte_for_byte() {
    let (a, b) = (key_a(), key_b());
    let first = load_text(&signed_examples(&a, 9));
    let again = sign_manifest(&[&first], &b, 10, published()).unwrap();
    for (old, new) in first.document()["normandy"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["normandy"].as_array().unwrap())
    {
        assert_eq!(old["recipe"], new["recipe"]);
        assert_ne!(old["signature"]["keyId"], new["signature"]["keyId"]);
    }
    assert_eq!(again["experiments"], first.document()["experiments"]);
    let verified = check(&again.to_string(), &trust(&[&b])).unwrap();
    assert!(verified.bad_recipes().is_empty());
}

#[test]
fn v3_recipes_are_signed_as_minimal_recipes() {
    let v3 = r#"{"count": 1, "next": null, "previous": null, "results": [{
      "id": 7,
      "approved_revision": {
        "id": 70,
        "action": {"id": 1, "name": "preference-rollout"},
        "arguments": {"slug": "s", "preferences": [{"preferenceName": "a.b", "value": 1}]},
        "extra_filter_expression": "normandy.channel == 'release'",
        "capabilities": ["z.cap", "action.preference-rollout"],
        "name": "Seven",
        "enabled": true
      },
      "latest_revision": null,
      "signature": null,
      "uses_only_baseline_capabilities": false
    }]}"#;
    let loaded = load("v3.json", v3.as_bytes()).unwrap();
    let key = key_a();
    let document = sign_manifest(&[&loaded], &key, 1, published()).unwrap();
    assert_eq!(
        document["normandy"][0]["recipe"],
        json!({
            "id": 7,
            "name": "Seven",
            "revision_id": "70",
            "action": "preference-rollout",
            "arguments": {"slug": "s", "preferences": [{"preferenceName": "a.b", "value": 1}]},
            "filter_expression": "normandy.channel == 'release'",
            "capabilities": ["action.preference-rollout", "z.cap"],
            "uses_only_baseline_capabilities": false
        })
    );
    check(&document.to_string(), &trust(&[&key])).unwrap();
}

#[test]
fn sign_refuses_conflicting_or_broken_inputs() {
    let key = key_a();
    let recipes = example("normandy/recipes.json");
    let experiments = example("manifest-v1/experiments.json");
    assert!(matches!(
        sign_manifest(&[&experiments, &experiments], &key, 1, published()),
        Err(SignError::TwoExperimentManifests { .. })
    ));
    let error = sign_manifest(&[&recipes, &recipes], &key, 1, published()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "recipe 101 is in normandy/recipes.json and again in normandy/recipes.json"
    );
    assert_eq!(
        sign_manifest(&[&recipes], &key, 1 << 53, published()).unwrap_err(),
        SignError::Serial(1 << 53)
    );
    let broken = load(
        "broken.json",
        br#"[{"id": 1, "name": "x", "revision_id": "1", "action": "preference-rollout",
              "arguments": {"slug": 3}, "filter_expression": "true", "capabilities": []}]"#,
    )
    .unwrap();
    let error = sign_manifest(&[&broken], &key, 1, published()).unwrap_err();
    assert!(error.to_string().starts_with("broken.json:2:"), "{error}");
    // No inputs: an empty, signed manifest.
    let empty = sign_manifest(&[], &key, 1, published()).unwrap();
    assert_eq!(empty["normandy"], json!([]));
    check(&empty.to_string(), &trust(&[&key])).unwrap();
}

#[test]
fn load_errors_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "{\n  \"a\": [1,\n}",
            "m.json:3:1: error: (root): invalid JSON: ",
        ),
        (
            "{\"format\": \"flightdeck-manifest\", \"version\": 1,\n \"serial\": \"x\", \"publishedAt\": \"2026-01-01T00:00:00Z\"}",
            "m.json:2:12: error: serial: `serial` must be an integer from 0 to 9007199254740991",
        ),
        (
            "{\"format\": \"flightdeck-manifest\",\n \"version\": 2, \"serial\": 1, \"publishedAt\": \"2026-01-01T00:00:00Z\"}",
            "m.json:2:13: error: version: unsupported manifest version 2; this client reads version 1",
        ),
        (
            "{\"format\": \"flightdeck-manifest\", \"version\": 1, \"serial\": 1,\n \"publishedAt\": \"yesterday\"}",
            "m.json:2:17: error: publishedAt: `publishedAt` is not an RFC 3339 time",
        ),
        (
            "{\"format\": \"flightdeck-manifest\", \"version\": 1, \"serial\": 1, \"publishedAt\": \"2026-01-01T00:00:00Z\",\n \"normandy\": [\n  {\"id\": 1}]}",
            "m.json:3:3: error: normandy[0]: a record must be an object `{\"recipe\": {...}, \"signature\": {...}}`",
        ),
        (
            "{\"format\": \"other\"}",
            "m.json:1:12: error: format: unknown manifest format \"other\"",
        ),
        (
            "{\"experiments\": [],\n \"version\": 1, \"x\": [9007199254740993]}",
            "m.json:2:22: error: x[0]: this integer is too large to be exact in JavaScript",
        ),
        (
            "[{\"studyname\": \"x\"}]",
            "m.json:1:1: error: (root): a Test Pilot flights index is not a manifest format",
        ),
        (
            "{\"hello\": 1}",
            "m.json:1:1: error: (root): not a manifest",
        ),
    ];
    for (text, expected) in cases {
        let error = load("m.json", text.as_bytes()).unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.starts_with(expected),
            "{text}\n got: {shown}\nwant: {expected}"
        );
    }
    let error = load("bin.json", b"[\"\xff\"]").unwrap_err();
    assert_eq!(
        error.to_string(),
        "bin.json:1:3: error: (root): the document is not UTF-8 text"
    );
}

#[test]
fn diagnostics_inside_embedded_documents_point_into_the_whole_file() {
    let key = key_a();
    let mut document: Value = serde_json::from_str(&signed_examples(&key, 2)).unwrap();
    document["normandy"][2]["recipe"]["arguments"]["branches"][0]["ratio"] = json!("x");
    document["experiments"]["experiments"][1]["sample"] = json!(7);
    document["extra"] = json!(true);
    let text = serde_json::to_string_pretty(&document).unwrap();
    let loaded = load_text(&text);
    let lines: Vec<&str> = text.lines().collect();
    let shown: Vec<String> = loaded
        .diagnostics()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    for (diagnostic, needle) in
        loaded
            .diagnostics()
            .iter()
            .zip(["\"ratio\": \"x\"", "\"sample\": 7", "\"extra\": true"])
    {
        let line = lines[diagnostic.position.line - 1];
        assert!(line.contains(needle), "{diagnostic} at {line:?}");
        assert!(
            line[diagnostic.position.column - 1..].starts_with(needle.split(": ").nth(1).unwrap()),
            "{diagnostic}"
        );
    }
    assert!(
        shown[0].contains("normandy[2].recipe.arguments.branches[0].ratio"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("experiments.experiments[1]"),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].contains("warning: extra: unknown member"),
        "{}",
        shown[2]
    );
    // The rejected experiment entry is positioned in the whole file too.
    let ManifestSource::Unified(unified) = loaded.source() else {
        panic!()
    };
    let rejected = &unified.experiments.as_ref().unwrap().rejected[0];
    assert!(lines[rejected.position.line - 1].contains('{'));
    assert!(lines[rejected.position.line].contains("\"id\": \"d2a3f1e0-http3-rollout-study\""));
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// A small signed manifest (one recipe, one experiment) and its content hash.
    fn small() -> &'static (String, ContentHash) {
        static SMALL: OnceLock<(String, ContentHash)> = OnceLock::new();
        SMALL.get_or_init(|| {
            let recipe = load(
                "r.json",
                br#"[{"id": 5, "name": "n\u00e9", "revision_id": "9", "action": "preference-rollback",
                      "arguments": {"rolloutSlug": "s"}, "filter_expression": "true",
                      "capabilities": ["action.preference-rollback"]}]"#,
            )
            .unwrap();
            let experiments = load(
                "e.json",
                br#"{"version": 1, "experiments": [{"id": "x", "xpiURL": "https://e/x.xpi",
                      "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099", "sample": 0.25}]}"#,
            )
            .unwrap();
            let document = sign_manifest(&[&recipe, &experiments], &key_a(), 3, published()).unwrap();
            let text = serde_json::to_string_pretty(&document).unwrap();
            let hash = *load_text(&text).content_sha256();
            (text, hash)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn load_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = load("x.json", &bytes);
        }

        /// Whatever one byte is changed to, a manifest that still verifies says exactly what
        /// was signed (only its formatting can differ).
        #[test]
        fn a_changed_byte_is_accepted_only_if_the_content_is_unchanged(
            place in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let (text, hash) = small();
            let mut bytes = text.clone().into_bytes();
            let at = place.index(bytes.len());
            bytes[at] = byte;
            if let Ok(loaded) = load("m.json", &bytes) {
                let trusted = trust(&[&key_a()]);
                if let Ok(verified) = verify(loaded, &trusted, None, &VerifyPolicy::default()) {
                    prop_assert_eq!(verified.loaded().content_sha256(), hash);
                    prop_assert!(verified.bad_recipes().is_empty());
                }
            }
        }
    }
}
