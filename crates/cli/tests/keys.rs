//! `flightdeck keys generate`, `sign` and `verify-manifest`, run as the real binary.

mod common;

use common::{Run, TempDir, flightdeck};
use serde_json::Value;

const RECIPES: &str = "examples/normandy/recipes.json";
const EXPERIMENTS: &str = "examples/manifest-v1/experiments.json";

fn path(dir: &TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

/// Generates a key pair in `dir/name`; returns the key id it printed.
fn generate(dir: &TempDir, name: &str) -> String {
    let run = flightdeck(&["keys", "generate", "--out", &path(dir, name)]);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.stdout_lines()[0]
        .strip_prefix("key id: ")
        .unwrap_or_else(|| panic!("{run:?}"))
        .to_owned();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    id
}

fn sign(dir: &TempDir, key: &str, out: &str, extra: &[&str], inputs: &[&str]) -> Run {
    let key = path(dir, &format!("{key}/signing-key.pem"));
    let out = path(dir, out);
    let mut args = vec!["sign", "--key", key.as_str(), "-o", out.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(inputs);
    flightdeck(&args)
}

fn verify(dir: &TempDir, keys: &[&str], manifest: &str, extra: &[&str]) -> Run {
    let key_paths: Vec<String> = keys
        .iter()
        .map(|key| path(dir, &format!("{key}/public-key.pem")))
        .collect();
    let mut args = vec!["verify-manifest"];
    for key in &key_paths {
        args.extend(["--trust-key", key.as_str()]);
    }
    args.extend_from_slice(extra);
    let manifest = path(dir, manifest);
    args.push(&manifest);
    flightdeck(&args)
}

fn read_json(dir: &TempDir, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
}

const FIXED: [&str; 4] = ["--serial", "17", "--published-at", "2026-11-21T10:00:00Z"];

#[test]
fn generate_writes_a_private_key_only_the_owner_reads_and_refuses_to_overwrite() {
    let dir = TempDir::new("keys-generate");
    let id = generate(&dir, "k");
    let private = std::fs::read_to_string(dir.path().join("k/signing-key.pem")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("k/public-key.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    #[cfg(unix)]
    let mode = |name: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    #[cfg(unix)]
    assert_eq!(mode("k/signing-key.pem"), 0o600);

    let again = flightdeck(&["keys", "generate", "--out", &path(&dir, "k")]);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("signing-key.pem exists; use --force"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("k/signing-key.pem")).unwrap(),
        private
    );

    // --force replaces the pair, and restores the mode of a file someone loosened.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.path().join("k/signing-key.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let forced = flightdeck(&["keys", "generate", "--force", "--out", &path(&dir, "k")]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_ne!(forced.stdout_lines()[0], format!("key id: {id}"));
    #[cfg(unix)]
    assert_eq!(mode("k/signing-key.pem"), 0o600);
}

#[test]
fn sign_the_examples_then_verify() {
    let dir = TempDir::new("keys-sign");
    let id = generate(&dir, "k");
    let run = sign(&dir, "k", "both.json", &FIXED, &[RECIPES, EXPERIMENTS]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!("signed 4 recipe(s) and 3 Manifest v1 experiment(s) as serial 17 with key {id}")
    );
    let document = read_json(&dir, "both.json");
    assert_eq!(document["format"], "flightdeck-manifest");
    assert_eq!(document["serial"], 17);
    assert_eq!(document["publishedAt"], "2026-11-21T10:00:00Z");
    assert_eq!(document["signature"]["keyId"], id.as_str());
    assert_eq!(document["normandy"].as_array().unwrap().len(), 4);

    let ok = verify(&dir, &["k"], "both.json", &[]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let line = ok.stdout.trim();
    let expected = format!(
        "ok: {}: serial 17, signed with key {id}, 4 recipe(s), 3 experiment(s), content sha256 ",
        path(&dir, "both.json")
    );
    assert!(line.starts_with(&expected), "{line}");

    // Each example alone.
    for (input, out, summary) in [
        (RECIPES, "recipes.json", "4 recipe(s), 0 experiment(s)"),
        (
            EXPERIMENTS,
            "experiments.json",
            "0 recipe(s), 3 experiment(s)",
        ),
    ] {
        let run = sign(&dir, "k", out, &FIXED, &[input]);
        assert_eq!(run.code, 0, "{run:?}");
        let ok = verify(&dir, &["k"], out, &[]);
        assert_eq!(ok.code, 0, "{ok:?}");
        assert!(ok.stdout.contains(summary), "{ok:?}");
    }

    // Signing is deterministic: the same inputs, key, serial and time give the same bytes.
    let run = sign(&dir, "k", "again.json", &FIXED, &[RECIPES, EXPERIMENTS]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read(dir.path().join("again.json")).unwrap(),
        std::fs::read(dir.path().join("both.json")).unwrap()
    );
}

#[test]
fn tampering_with_one_byte_of_a_recipe_fails_the_whole_signature() {
    let dir = TempDir::new("keys-tamper");
    generate(&dir, "k");
    assert_eq!(sign(&dir, "k", "m.json", &FIXED, &[RECIPES]).code, 0);
    let text = std::fs::read_to_string(dir.path().join("m.json")).unwrap();
    let tampered = text.replacen(
        "\"Enable HTTP/3 for release users\"",
        "\"Enable HTTP/3 for release usert\"",
        1,
    );
    assert_eq!(tampered.len(), text.len());
    assert_ne!(tampered, text);
    std::fs::write(dir.path().join("tampered.json"), tampered).unwrap();
    let run = verify(&dir, &["k"], "tampered.json", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with("invalid (bad-signature): ")
            && run
                .stderr
                .contains("bad signature: the signature does not match the data"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_wrong_key_fails_and_a_rotation_key_set_passes() {
    let dir = TempDir::new("keys-wrong");
    let old = generate(&dir, "old");
    let new = generate(&dir, "new");
    assert_eq!(sign(&dir, "old", "m.json", &FIXED, &[RECIPES]).code, 0);
    let run = verify(&dir, &["new"], "m.json", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "signed with key {old}, which is not a trusted key"
        )),
        "{run:?}"
    );
    let run = verify(&dir, &["new", "old"], "m.json", &[]);
    assert_eq!(run.code, 0, "{run:?}");

    // Re-signing with the new key raises the serial by one.
    let signed = path(&dir, "m.json");
    let run = sign(&dir, "new", "m2.json", &[], &[&signed]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!("as serial 18 with key {new}")),
        "{run:?}"
    );
    assert_eq!(read_json(&dir, "m2.json")["serial"], 18);
    assert_eq!(verify(&dir, &["new"], "m2.json", &[]).code, 0);
    // A serial that does not increase is refused.
    let run = sign(&dir, "new", "m3.json", &["--serial", "17"], &[&signed]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("--serial 17 is not above the input manifest's serial 17")
    );
}

#[test]
fn replayed_and_unsigned_manifests_are_refused() {
    let dir = TempDir::new("keys-replay");
    generate(&dir, "k");
    assert_eq!(sign(&dir, "k", "m.json", &FIXED, &[RECIPES]).code, 0);
    let ok = verify(&dir, &["k"], "m.json", &[]);
    let hash = ok.stdout.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(hash.len(), 64);

    let run = verify(&dir, &["k"], "m.json", &["--last-serial", "18"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("invalid (replayed): "), "{run:?}");
    // The same serial is the same publication only with the same content.
    let run = verify(&dir, &["k"], "m.json", &["--last-serial", "17"]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = verify(
        &dir,
        &["k"],
        "m.json",
        &["--last-serial", "17", "--last-sha256", &hash],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        verify(&dir, &["k"], "m.json", &["--last-serial", "16"]).code,
        0
    );

    // The unsigned example is refused when keys are configured.
    std::fs::copy(
        common::workspace_root().join(RECIPES),
        dir.path().join("plain.json"),
    )
    .unwrap();
    let run = verify(&dir, &["k"], "plain.json", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("invalid (unsigned): "), "{run:?}");
    // A file that is not a manifest is named with its position.
    std::fs::write(dir.path().join("broken.json"), "{\"format\": \"flightdeck-manifest\", \"publishedAt\": \"2026-01-01T00:00:00Z\",\n \"version\": 1, \"serial\": -1}").unwrap();
    let run = verify(&dir, &["k"], "broken.json", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "{}:2:26: error: serial: ",
            path(&dir, "broken.json")
        )),
        "{run:?}"
    );
}
