//! The reference client refuses a tampered, unsigned, wrongly signed or replayed manifest and
//! keeps running from its last good one.

mod common;

use std::path::Path;

use common::{TempDir, flightdeck_in};
use serde_json::{Value, json};

const CONTEXT: &str = r#"{
    "userId": "11111111-2222-3333-4444-555555555555",
    "channel": "release",
    "now": "2026-11-21T12:00:00Z"
}"#;

fn rollout(id: u64, slug: &str, pref: &str, value: i64) -> Value {
    json!({
        "id": id,
        "name": slug,
        "revision_id": format!("{id}"),
        "action": "preference-rollout",
        "arguments": {"slug": slug, "preferences": [{"preferenceName": pref, "value": value}]},
        "filter_expression": "normandy.channel == 'release'",
        "capabilities": ["action.preference-rollout"]
    })
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = flightdeck_in(dir, args);
    assert_eq!(run.code, 0, "{args:?}:\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

fn prefs(dir: &Path, profile: &str) -> Value {
    serde_json::from_str(&ok(
        dir,
        &["client", "prefs", "--profile", profile, "--json"],
    ))
    .expect("JSON")
}

struct Setup {
    tmp: TempDir,
    key: String,
    public: String,
    context: String,
    profile: String,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let tmp = TempDir::new(label);
        let keys = tmp.path().join("keys");
        let keys_str = keys.to_str().expect("path").to_owned();
        ok(tmp.path(), &["keys", "generate", "--out", &keys_str]);
        let context = tmp.write("context.json", CONTEXT);
        Setup {
            key: keys
                .join("signing-key.pem")
                .to_str()
                .expect("path")
                .to_owned(),
            public: keys
                .join("public-key.pem")
                .to_str()
                .expect("path")
                .to_owned(),
            context: context.to_str().expect("path").to_owned(),
            profile: tmp
                .path()
                .join("profile")
                .to_str()
                .expect("path")
                .to_owned(),
            tmp,
        }
    }

    /// Signs `recipes` as serial `serial` and returns the signed manifest's path.
    fn signed(&self, name: &str, recipes: &Value, serial: u64) -> String {
        let input = self
            .tmp
            .write(&format!("{name}.input.json"), recipes.to_string());
        let out = self.tmp.path().join(format!("{name}.json"));
        let out = out.to_str().expect("path").to_owned();
        ok(
            self.tmp.path(),
            &[
                "sign",
                "--key",
                &self.key,
                "--serial",
                &serial.to_string(),
                "--published-at",
                "2026-11-21T10:00:00Z",
                "-o",
                &out,
                input.to_str().expect("path"),
            ],
        );
        out
    }

    fn run(&self, manifest: &str) -> String {
        ok(
            self.tmp.path(),
            &[
                "client",
                "run",
                "--profile",
                &self.profile,
                "--manifest",
                manifest,
                "--context",
                &self.context,
                "--trust-key",
                &self.public,
            ],
        )
    }
}

#[test]
fn tampered_unsigned_wrongly_signed_and_replayed_manifests_are_refused() {
    let s = Setup::new("trust");
    let v1 = s.signed("v1", &json!([rollout(1, "roll-1", "trust.a", 1)]), 5);
    let out = s.run(&v1);
    assert!(out.contains("manifest: accepted (serial 5)"), "{out}");
    assert_eq!(prefs(s.tmp.path(), &s.profile)["trust.a"]["default"], 1);

    // Tampered: one value changed after signing.
    let mut signed: Value =
        serde_json::from_str(&std::fs::read_to_string(&v1).expect("read")).expect("JSON");
    signed["normandy"][0]["recipe"]["arguments"]["preferences"][0]["value"] = json!(666);
    let tampered = s.tmp.write("tampered.json", signed.to_string());
    let out = s.run(tampered.to_str().expect("path"));
    assert!(out.contains("refused"), "{out}");
    assert!(out.contains("using the last good manifest"), "{out}");
    assert_eq!(prefs(s.tmp.path(), &s.profile)["trust.a"]["default"], 1);

    // Unsigned: the plain recipe array.
    let unsigned = s.tmp.write(
        "unsigned.json",
        json!([rollout(1, "roll-1", "trust.a", 2)]).to_string(),
    );
    let out = s.run(unsigned.to_str().expect("path"));
    assert!(out.contains("refused"), "{out}");
    assert_eq!(prefs(s.tmp.path(), &s.profile)["trust.a"]["default"], 1);

    // Signed with a key the client does not trust.
    let other = Setup::new("trust-other");
    let foreign = other.signed("foreign", &json!([rollout(2, "roll-2", "trust.b", 2)]), 9);
    let out = s.run(&foreign);
    assert!(out.contains("refused"), "{out}");
    assert!(prefs(s.tmp.path(), &s.profile).get("trust.b").is_none());

    // A newer manifest is accepted …
    let v2 = s.signed(
        "v2",
        &json!([
            rollout(1, "roll-1", "trust.a", 1),
            rollout(2, "roll-2", "trust.b", 2)
        ]),
        6,
    );
    let out = s.run(&v2);
    assert!(out.contains("manifest: accepted (serial 6)"), "{out}");
    assert_eq!(prefs(s.tmp.path(), &s.profile)["trust.b"]["default"], 2);

    // … and the older one, validly signed, is now a replay.
    let out = s.run(&v1);
    assert!(out.contains("refused"), "{out}");
    assert!(out.contains("using the last good manifest"), "{out}");
    assert_eq!(prefs(s.tmp.path(), &s.profile)["trust.b"]["default"], 2);

    // A tampered cached copy is not trusted either: the next refused manifest finds no good
    // cache and nothing runs.
    let cached = Path::new(&s.profile).join("last-good-manifest.json");
    let mut copy: Value =
        serde_json::from_str(&std::fs::read_to_string(&cached).expect("cache")).expect("JSON");
    copy["normandy"][1]["recipe"]["arguments"]["preferences"][0]["value"] = json!(7);
    std::fs::write(&cached, copy.to_string()).expect("write");
    let out = s.run(tampered.to_str().expect("path"));
    assert!(out.contains("no manifest, nothing ran"), "{out}");
    assert_eq!(prefs(s.tmp.path(), &s.profile)["trust.b"]["default"], 2);
}
