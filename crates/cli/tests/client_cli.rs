//! The reference client's commands over a profile directory, with the real `flightdeck`
//! binary: `set-pref` ending experiments without reset, a Manifest v1 experiment with a real
//! package (right and wrong hash), a corrupt state file, a version-0 state file, and the exact
//! shape of `client prefs --json`.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{TempDir, flightdeck_in};
use serde_json::{Value, json};
use sha2::Digest as _;

const USER_ID: &str = "11111111-2222-3333-4444-555555555555";

/// The time of the first run.
const T0: &str = "2026-11-21T12:00:00Z";

fn at(offset_seconds: i64) -> String {
    let t0: jiff::Timestamp = T0.parse().expect("time");
    t0.checked_add(jiff::SignedDuration::from_secs(offset_seconds))
        .expect("time")
        .to_string()
}

fn epoch_seconds(offset_seconds: i64) -> i64 {
    let t0: jiff::Timestamp = T0.parse().expect("time");
    t0.as_second() + offset_seconds
}

fn recipe(id: u64, action: &str, arguments: Value) -> Value {
    json!({
        "id": id,
        "name": format!("recipe {id}"),
        "revision_id": format!("{id}"),
        "action": action,
        "arguments": arguments,
        "filter_expression": "normandy.channel == 'release'",
        "capabilities": [format!("action.{action}")]
    })
}

fn rollout(id: u64, slug: &str, preferences: Value) -> Value {
    let preferences: Vec<Value> = preferences
        .as_object()
        .expect("an object")
        .iter()
        .map(|(name, value)| json!({"preferenceName": name, "value": value}))
        .collect();
    recipe(
        id,
        "preference-rollout",
        json!({"slug": slug, "preferences": preferences}),
    )
}

fn experiment(id: u64, slug: &str, pref: &str, branch_type: &str, value: i64) -> Value {
    recipe(
        id,
        "multi-preference-experiment",
        json!({
            "slug": slug,
            "userFacingName": slug,
            "userFacingDescription": "a CLI test",
            "isEnrollmentPaused": false,
            "branches": [{"slug": "treatment", "ratio": 1, "preferences": {
                pref: {"preferenceType": "integer", "preferenceBranchType": branch_type,
                       "preferenceValue": value}}}]
        }),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = flightdeck_in(dir, args);
    assert_eq!(run.code, 0, "{args:?}:\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

/// A temporary directory with a profile in `profile/`.
struct Client {
    tmp: TempDir,
    profile: String,
}

impl Client {
    fn new(label: &str) -> Client {
        let tmp = TempDir::new(label);
        let profile = tmp
            .path()
            .join("profile")
            .to_str()
            .expect("path")
            .to_owned();
        Client { tmp, profile }
    }

    fn profile_path(&self) -> &Path {
        Path::new(&self.profile)
    }

    /// Writes `contents` (JSON) to `name` and returns the path as a string.
    fn write(&self, name: &str, contents: &Value) -> String {
        let path = self.tmp.write(name, contents.to_string());
        path.to_str().expect("path").to_owned()
    }

    /// `client run --manifest MANIFEST --context CONTEXT --now NOW --fixed-random 0.5`.
    fn run(&self, manifest: &str, context: &str, now: &str) -> String {
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
                context,
                "--now",
                now,
                "--fixed-random",
                "0.5",
            ],
        )
    }

    fn set_pref(&self, name: &str, value: &str, now: &str) -> String {
        ok(
            self.tmp.path(),
            &[
                "client",
                "set-pref",
                "--profile",
                &self.profile,
                "--now",
                now,
                name,
                value,
            ],
        )
    }

    fn json(&self, command: &str) -> Value {
        let out = ok(
            self.tmp.path(),
            &["client", command, "--profile", &self.profile, "--json"],
        );
        serde_json::from_str(&out).expect("JSON")
    }

    fn experiment(&self, slug: &str) -> Value {
        let status = self.json("status");
        status["experiments"]
            .as_array()
            .expect("an array")
            .iter()
            .find(|e| e["slug"] == slug)
            .unwrap_or_else(|| panic!("no experiment {slug} in {status}"))
            .clone()
    }

    /// The profile's files whose names start with `prefix`, sorted.
    fn files_starting_with(&self, prefix: &str) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.profile_path())
            .expect("read the profile")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        found.sort();
        found
    }
}

#[test]
fn set_pref_ends_the_owning_experiment_without_resetting_the_users_value() {
    let c = Client::new("cli-set-pref");
    let manifest = c.write(
        "recipes.json",
        &json!([
            experiment(1, "exp-user", "cli.u", "user", 1001),
            experiment(2, "exp-default", "cli.d", "default", 2001),
        ]),
    );
    let context = c.write(
        "context.json",
        &json!({"userId": USER_ID, "channel": "release",
                "prefs": {"cli.u": {"default": 1}, "cli.d": {"default": 2}}}),
    );
    let out = c.run(&manifest, &context, T0);
    assert!(
        out.contains("event enroll preference_study exp-user"),
        "{out}"
    );
    assert!(
        out.contains("event enroll preference_study exp-default"),
        "{out}"
    );
    let prefs = c.json("prefs");
    assert_eq!(prefs["cli.u"], json!({"default": 1, "user": 1001}));
    assert_eq!(prefs["cli.d"], json!({"default": 2001, "user": null}));

    // A preference nobody owns: nothing ends.
    let out = c.set_pref("cli.free", "true", &at(60));
    assert_eq!(out, "");
    assert_eq!(
        c.json("prefs")["cli.free"],
        json!({"default": null, "user": true})
    );

    // The user-branch experiment's preference.
    let out = c.set_pref("cli.u", "42", &at(3600));
    common::assert_lines(&out, &["event unenroll preference_study exp-user"]);
    let record = c.experiment("exp-user");
    assert_eq!(record["expired"], true);
    assert_eq!(record["endReason"], "user-preference-changed");
    assert_eq!(record["endedAt"], at(3600).as_str());
    assert_eq!(c.experiment("exp-default")["expired"], false);
    assert_eq!(c.json("prefs")["cli.u"], json!({"default": 1, "user": 42}));

    // The default-branch experiment's preference: the user's value stays. (Its default
    // branch, hidden under the user value now, gets the built-in default back, as the
    // application's next start would show it; the event still says nothing was reset.)
    let out = c.set_pref("cli.d", "43", &at(7200));
    common::assert_lines(&out, &["event unenroll preference_study exp-default"]);
    let record = c.experiment("exp-default");
    assert_eq!(record["expired"], true);
    assert_eq!(record["endReason"], "user-preference-changed");
    assert_eq!(c.json("prefs")["cli.d"], json!({"default": 2, "user": 43}));
    assert_eq!(c.json("status")["annotations"], json!({}));

    let events = c.json("events");
    let unenrolls: Vec<&Value> = events
        .as_array()
        .expect("an array")
        .iter()
        .filter(|e| e["method"] == "unenroll")
        .collect();
    assert_eq!(unenrolls.len(), 2, "{events}");
    for (event, (slug, pref, time)) in unenrolls.iter().zip([
        ("exp-user", "cli.u", at(3600)),
        ("exp-default", "cli.d", at(7200)),
    ]) {
        assert_eq!(event["object"], "preference_study");
        assert_eq!(event["value"], slug);
        assert_eq!(event["timestamp"], time.as_str());
        assert_eq!(
            event["extra"],
            json!({"branch": "treatment", "changedPref": pref, "didResetValue": "false",
                   "reason": "user-preference-changed"})
        );
    }

    // The next run does not enroll them again, and the user's values stay.
    let out = c.run(&manifest, &context, &at(86_400));
    assert!(!out.contains("enroll"), "{out}");
    let prefs = c.json("prefs");
    assert_eq!(prefs["cli.u"], json!({"default": 1, "user": 42}));
    assert_eq!(prefs["cli.d"], json!({"default": 2, "user": 43}));
}

/// A zip archive with a nested file.
fn package() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer
        .start_file("bootstrap.js", options)
        .expect("zip entry");
    writer.write_all(b"startup();").expect("zip write");
    writer
        .start_file("content/panel.html", options)
        .expect("zip entry");
    writer.write_all(b"<p>hello</p>").expect("zip write");
    writer.finish().expect("zip finish").into_inner()
}

fn sha256_of(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A Manifest v1 document with one experiment whose package is `url` with `hash`, running
/// from a day before T0 to 30 days after it, at most one day per client.
fn manifest_v1(url: &str, hash: &str) -> Value {
    json!({"version": 1, "experiments": [{
        "id": "pkg-exp",
        "xpiURL": url,
        "xpiHash": hash,
        "startTime": epoch_seconds(-86_400),
        "endTime": epoch_seconds(30 * 86_400),
        "maxActiveSeconds": 86_400
    }]})
}

#[test]
fn a_manifest_v1_experiment_installs_its_verified_package() {
    let c = Client::new("cli-package");
    let bytes = package();
    let archive = c.tmp.write("pkg.zip", &bytes);
    let url = format!("file://{}", archive.display());
    let hash = sha256_of(&bytes);
    let manifest = c.write("manifest.json", &manifest_v1(&url, &hash));
    let context = c.write("context.json", &json!({"userId": USER_ID}));

    let out = c.run(&manifest, &context, T0);
    assert!(
        out.contains("event activation manifest_experiment pkg-exp kind=ACTIVATED"),
        "{out}"
    );
    assert!(
        out.contains(&format!("next wake-up: {}", at(86_401))),
        "{out}"
    );

    let status = c.json("status");
    assert_eq!(
        status["manifestExperiments"],
        json!([{
            "id": "pkg-exp", "active": true, "startDate": T0, "endDate": null,
            "randomValue": 0.5, "failedStart": false, "branch": null,
            "installed": {"url": url, "hash": hash, "location": "pkg-exp"}
        }])
    );
    assert_eq!(
        status["annotations"],
        json!({"pkg-exp": {"branch": "default", "type": "manifest-experiment"}})
    );
    let unpacked = c.profile_path().join("packages/pkg-exp");
    assert_eq!(
        std::fs::read_to_string(unpacked.join("bootstrap.js")).expect("bootstrap.js"),
        "startup();"
    );
    assert_eq!(
        std::fs::read_to_string(unpacked.join("content/panel.html")).expect("panel.html"),
        "<p>hello</p>"
    );

    // After its day, it ends and its package is removed. (At exactly start + maxActiveSeconds
    // it is still active: the limit is inclusive.)
    let out = c.run(&manifest, &context, &at(86_401));
    assert!(
        out.contains("event termination manifest_experiment pkg-exp kind=EXPIRED"),
        "{out}"
    );
    assert!(!unpacked.exists());
    let status = c.json("status");
    assert_eq!(status["manifestExperiments"][0]["active"], false);
    assert_eq!(status["manifestExperiments"][0]["installed"], Value::Null);
}

#[test]
fn a_package_with_the_wrong_hash_is_not_installed() {
    let c = Client::new("cli-package-bad");
    let bytes = package();
    let archive = c.tmp.write("pkg.zip", &bytes);
    let url = format!("file://{}", archive.display());
    let wrong = sha256_of(b"another package");
    let manifest = c.write("manifest.json", &manifest_v1(&url, &wrong));
    let context = c.write("context.json", &json!({"userId": USER_ID}));

    let out = c.run(&manifest, &context, T0);
    assert!(out.contains("kind=INSTALL_FAILURE"), "{out}");
    assert!(!out.contains("ACTIVATED"), "{out}");

    let events = c.json("events");
    let failure = events
        .as_array()
        .expect("an array")
        .iter()
        .find(|e| e["method"] == "activation")
        .unwrap_or_else(|| panic!("no activation event in {events}"));
    assert_eq!(failure["object"], "manifest_experiment");
    assert_eq!(failure["value"], "pkg-exp");
    assert_eq!(failure["extra"]["kind"], "INSTALL_FAILURE");
    assert_eq!(failure["extra"]["reason"], "hash-mismatch");

    let status = c.json("status");
    let entry = &status["manifestExperiments"][0];
    assert_eq!(entry["id"], "pkg-exp");
    assert_eq!(entry["active"], false);
    assert_eq!(entry["failedStart"], true);
    assert_eq!(entry["installed"], Value::Null);
    assert_eq!(status["annotations"], json!({}));
    assert!(!c.profile_path().join("packages/pkg-exp").exists());
}

#[test]
fn a_corrupt_state_file_is_kept_aside_and_the_client_goes_on() {
    let c = Client::new("cli-corrupt");
    let manifest = c.write(
        "recipes.json",
        &json!([rollout(1, "roll-a", json!({"cli.a": 5}))]),
    );
    let context = c.write(
        "context.json",
        &json!({"userId": USER_ID, "channel": "release", "prefs": {"cli.a": {"default": 1}}}),
    );
    let corrupt = b"{\"version\": 1, \"rollouts\": {\n  oops";
    std::fs::create_dir_all(c.profile_path()).expect("profile");
    let state = c.profile_path().join("state.json");

    // `client status` reads an empty state, says so on stderr, and keeps the file.
    std::fs::write(&state, corrupt).expect("write");
    let run = flightdeck_in(
        c.tmp.path(),
        &["client", "status", "--profile", &c.profile, "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("the state file was unreadable"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("state.json.corrupt-"), "{}", run.stderr);
    let status: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(status["rollouts"], json!([]));
    let kept = c.files_starting_with("state.json.corrupt-");
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(&kept[0]).expect("kept"), corrupt);

    // `client run` reports it, and runs from an empty state.
    std::fs::write(&state, corrupt).expect("write");
    let out = c.run(&manifest, &context, T0);
    let kept_at = c.profile_path().join("state.json.corrupt-20261121T120000Z");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("state: the state file was unreadable (line 2 column"),
        "{out}"
    );
    assert!(
        first.ends_with(&format!(
            "; kept at {} and started afresh",
            kept_at.display()
        )),
        "{out}"
    );
    assert!(out.contains("manifest: accepted"), "{out}");
    assert!(out.contains("pref default cli.a = 5"), "{out}");
    assert_eq!(std::fs::read(&kept_at).expect("kept"), corrupt);
    assert_eq!(c.files_starting_with("state.json.corrupt-").len(), 2);
    assert_eq!(c.json("status")["rollouts"][0]["slug"], "roll-a");
    assert_eq!(
        c.json("prefs")["cli.a"],
        json!({"default": 5, "user": null})
    );
}

#[test]
fn a_version_0_state_file_is_migrated() {
    let c = Client::new("cli-v0");
    std::fs::create_dir_all(c.profile_path()).expect("profile");
    let v0 = json!({
        "experiments": {
            "old-exp": {"name": "old-exp", "branch": "control", "expired": false,
                        "lastSeen": "2026-11-01T00:00:00Z",
                        "preferenceName": "cli.old", "preferenceValue": true,
                        "preferenceType": "boolean", "previousPreferenceValue": false,
                        "preferenceBranchType": "user"}
        },
        "rollouts": {}
    });
    std::fs::write(c.profile_path().join("state.json"), v0.to_string()).expect("write");

    let status = c.json("status");
    assert_eq!(
        status["experiments"],
        json!([{
            "slug": "old-exp", "branch": "control", "expired": false,
            "actionName": "preference-experiment", "experimentType": "exp",
            "lastSeen": "2026-11-01T00:00:00Z", "temporaryErrorDeadline": null,
            "enrolledAt": null, "endedAt": null, "endReason": null,
            "preferences": {"cli.old": {
                "preferenceValue": true, "preferenceType": "boolean",
                "preferenceBranchType": "user", "previousPreferenceValue": false,
                "overridden": false
            }}
        }])
    );
    assert_eq!(
        status["annotations"],
        json!({"old-exp": {"branch": "control", "type": "normandy-exp"}})
    );

    // A run migrates the file; the migrated record is undone like any other (its recipe is
    // gone, so it ends and restores the previous value).
    let manifest = c.write(
        "recipes.json",
        &json!([rollout(1, "roll-a", json!({"cli.a": 5}))]),
    );
    let context = c.write(
        "context.json",
        &json!({"userId": USER_ID, "channel": "release",
                "prefs": {"cli.old": {"default": false, "user": true}}}),
    );
    let out = c.run(&manifest, &context, T0);
    assert_eq!(
        out.lines().next(),
        Some("state: migrated from version 0"),
        "{out}"
    );
    assert!(
        out.contains(
            "event unenroll preference_study old-exp branch=control didResetValue=true \
             reason=recipe-not-seen"
        ),
        "{out}"
    );
    assert_eq!(
        c.json("prefs")["cli.old"],
        json!({"default": false, "user": false})
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(c.profile_path().join("state.json")).expect("state"))
            .expect("JSON");
    assert_eq!(saved["version"], 1);
    assert_eq!(c.experiment("old-exp")["expired"], true);
}

#[test]
fn prefs_json_has_both_branches_of_every_preference() {
    let c = Client::new("cli-prefs");
    let manifest = c.write(
        "recipes.json",
        &json!([rollout(1, "roll-a", json!({"cli.a": 5, "cli.new": true}))]),
    );
    let context = c.write(
        "context.json",
        &json!({"userId": USER_ID, "channel": "release",
                "prefs": {"cli.a": {"default": 1}, "cli.s": {"user": "hello"}}}),
    );
    c.run(&manifest, &context, T0);
    ok(
        c.tmp.path(),
        &[
            "client",
            "set-pref",
            "--profile",
            &c.profile,
            "--string",
            "cli.num",
            "12",
        ],
    );

    let out = ok(
        c.tmp.path(),
        &["client", "prefs", "--profile", &c.profile, "--json"],
    );
    let prefs: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        prefs,
        json!({
            "cli.a": {"default": 5, "user": null},
            "cli.new": {"default": true, "user": null},
            "cli.num": {"default": null, "user": "12"},
            "cli.s": {"default": null, "user": "hello"}
        })
    );
    // Sorted by name, and each entry is exactly `default` then `user`.
    let object = prefs.as_object().expect("an object");
    let names: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(names, ["cli.a", "cli.new", "cli.num", "cli.s"]);
    for entry in object.values() {
        let keys: Vec<&str> = entry
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["default", "user"]);
    }

    let out = ok(c.tmp.path(), &["client", "prefs", "--profile", &c.profile]);
    common::assert_lines(
        &out,
        &[
            "cli.a: default 5 user (none)",
            "cli.new: default true user (none)",
            "cli.num: default (none) user \"12\"",
            "cli.s: default (none) user \"hello\"",
        ],
    );
}
