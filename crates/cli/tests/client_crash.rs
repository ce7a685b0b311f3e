//! Crash safety of the reference client: `flightdeck client run` is killed with SIGKILL at
//! pseudo-random points during repeated runs. After every kill a normal run must recover (no
//! state lost or kept aside), every change must be recorded, and at the end undoing
//! everything (rollbacks, experiments ending) must give back the original preferences.
//!
//! Where a kill lands depends on the machine's speed; the assertions do not: they hold after
//! a kill at any point. The kill delays come from a fixed seed, so a failure names its
//! iteration and delay.
//!
//! Because a random kill rarely lands in the narrow windows that matter (between two file
//! writes), a second test stops the binary deterministically at *every* atomic-write step of
//! every run (the `crash-points` feature of `flightdeck-client`, which the test build
//! enables): the profile is restored, the run is aborted at step k, a recovery run follows,
//! and then both the invariants and a full undo are checked.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, flightdeck_in};
use serde_json::{Value, json};

const ITERATIONS: usize = 40;

fn recipe(id: u64, action: &str, arguments: Value) -> Value {
    json!({
        "id": id,
        "name": format!("recipe {id}"),
        "revision_id": format!("{}", id * 10),
        "action": action,
        "arguments": arguments,
        "filter_expression": "normandy.channel == 'release'",
        "capabilities": [format!("action.{action}")]
    })
}

fn experiment(id: u64, slug: &str, pref: &str, branch_type: &str) -> Value {
    recipe(
        id,
        "multi-preference-experiment",
        json!({
            "slug": slug,
            "userFacingName": slug,
            "userFacingDescription": "crash test",
            "isEnrollmentPaused": false,
            "branches": [
                {"slug": "only", "ratio": 1, "preferences": {
                    pref: {"preferenceType": "integer", "preferenceBranchType": branch_type,
                           "preferenceValue": 1000 + id}}}
            ]
        }),
    )
}

/// Manifest `i`: two permanent rollouts (their values change with `i`, so runs keep writing)
/// and two experiments that are new in every odd manifest and absent from even ones, so
/// experiments enroll and end (with reset) in turn.
fn manifest(i: usize) -> Value {
    let i64 = i as i64;
    let mut recipes = vec![
        recipe(
            1,
            "preference-rollout",
            json!({"slug": "roll-a", "preferences": [
                {"preferenceName": "crash.a", "value": 10 + i64}
            ]}),
        ),
        recipe(
            2,
            "preference-rollout",
            json!({"slug": "roll-b", "preferences": [
                {"preferenceName": "crash.b", "value": format!("b{i}")}
            ]}),
        ),
    ];
    if i % 2 == 1 {
        recipes.push(experiment(
            100 + i as u64,
            &format!("exp-user-{i}"),
            "crash.c",
            "user",
        ));
        recipes.push(experiment(
            200 + i as u64,
            &format!("exp-default-{i}"),
            "crash.d",
            "default",
        ));
    }
    Value::Array(recipes)
}

/// The last manifest: roll both rollouts back, no experiments (those still active end with
/// `recipe-not-seen` and reset their preferences).
fn undo_manifest() -> Value {
    json!([
        recipe(3, "preference-rollback", json!({"rolloutSlug": "roll-a"})),
        recipe(4, "preference-rollback", json!({"rolloutSlug": "roll-b"})),
    ])
}

const CONTEXT: &str = r#"{
    "userId": "11111111-2222-3333-4444-555555555555",
    "channel": "release",
    "version": "128.0",
    "now": "2026-11-21T12:00:00Z",
    "prefs": {
        "crash.a": {"default": 1},
        "crash.b": {"default": "builtin"},
        "crash.c": {"default": 3, "user": 33},
        "crash.d": {"default": 4}
    }
}"#;

/// The preferences before anything ran, as `client prefs --json` prints them.
fn original_prefs() -> Value {
    json!({
        "crash.a": {"default": 1, "user": null},
        "crash.b": {"default": "builtin", "user": null},
        "crash.c": {"default": 3, "user": 33},
        "crash.d": {"default": 4, "user": null}
    })
}

/// A small deterministic generator for kill delays (xorshift64*).
struct Delays(u64);

impl Delays {
    fn next_micros(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % max
    }
}

fn json_of(dir: &Path, args: &[&str]) -> Value {
    let run = flightdeck_in(dir, args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON output")
}

fn run_args<'a>(profile: &'a str, manifest: &'a str, context: &'a str) -> Vec<&'a str> {
    vec![
        "client",
        "run",
        "--profile",
        profile,
        "--manifest",
        manifest,
        "--context",
        context,
    ]
}

/// Every active record's values are what the preference store holds.
fn assert_records_match_prefs(dir: &Path, profile: &str, at: &str) {
    let status = json_of(dir, &["client", "status", "--profile", profile, "--json"]);
    let prefs = json_of(dir, &["client", "prefs", "--profile", profile, "--json"]);
    for rollout in status["rollouts"].as_array().expect("rollouts") {
        if rollout["state"] != "active" {
            continue;
        }
        for pref in rollout["preferences"].as_array().expect("preferences") {
            let name = pref["preferenceName"].as_str().expect("name");
            assert_eq!(
                prefs[name]["default"], pref["value"],
                "{at}: rollout {} does not hold {name}\nstatus: {status:#}\nprefs: {prefs:#}",
                rollout["slug"]
            );
        }
    }
    for experiment in status["experiments"].as_array().expect("experiments") {
        if experiment["expired"] == true {
            continue;
        }
        for (name, pref) in experiment["preferences"].as_object().expect("preferences") {
            if pref["overridden"] == true {
                continue;
            }
            let branch = pref["preferenceBranchType"].as_str().expect("branch type");
            assert_eq!(
                prefs[name.as_str()][branch],
                pref["preferenceValue"],
                "{at}: experiment {} does not hold {name}\nstatus: {status:#}\nprefs: {prefs:#}",
                experiment["slug"]
            );
        }
    }
}

#[test]
fn killed_runs_never_lose_a_change_and_everything_can_be_undone() {
    let tmp = TempDir::new("crash");
    let dir = tmp.path();
    let context = tmp.write("context.json", CONTEXT);
    let context = context.to_str().expect("UTF-8 path");
    let profile = dir.join("profile");
    let profile = profile.to_str().expect("UTF-8 path");
    let mut delays = Delays(0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;

    for i in 0..ITERATIONS {
        let manifest = tmp.write(&format!("manifest-{i}.json"), manifest(i).to_string());
        let manifest = manifest.to_str().expect("UTF-8 path");
        let args = run_args(profile, manifest, context);

        // A run killed at a pseudo-random point (or finishing first, when the delay is long).
        let delay = delays.next_micros(60_000);
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightdeck"))
            .args(&args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flightdeck");
        std::thread::sleep(Duration::from_micros(delay));
        if child.try_wait().expect("poll child").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        child.wait().expect("reap child");

        // The next run recovers: the state is readable (never kept aside as corrupt).
        let recovery = flightdeck_in(dir, &args);
        assert_eq!(
            recovery.code, 0,
            "iteration {i} (kill after {delay} µs): {}",
            recovery.stderr
        );
        assert!(
            !recovery.stdout.contains("unreadable"),
            "iteration {i} (kill after {delay} µs): state lost:\n{}",
            recovery.stdout
        );
        assert_records_match_prefs(
            dir,
            profile,
            &format!("iteration {i} (kill after {delay} µs)"),
        );
    }
    assert!(
        kills > 0,
        "no run was killed; the delays are too long for this machine"
    );

    // Undo everything: roll back both rollouts; active experiments end and reset.
    let undo = tmp.write("undo.json", undo_manifest().to_string());
    let run = flightdeck_in(
        dir,
        &run_args(profile, undo.to_str().expect("path"), context),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status = json_of(dir, &["client", "status", "--profile", profile, "--json"]);
    for rollout in status["rollouts"].as_array().expect("rollouts") {
        assert_eq!(rollout["state"], "rolled-back", "{status:#}");
    }
    for experiment in status["experiments"].as_array().expect("experiments") {
        assert_eq!(experiment["expired"], true, "{status:#}");
    }
    let prefs = json_of(dir, &["client", "prefs", "--profile", profile, "--json"]);
    assert_eq!(prefs, original_prefs(), "after undoing everything");
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read profile") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// Undoes everything in a copy of `profile` and checks the original preferences are back.
fn assert_undoable(dir: &Path, profile: &Path, undo: &str, context: &str, at: &str) {
    let copy = dir.join("undo-profile");
    copy_dir(profile, &copy);
    let copy = copy.to_str().expect("path");
    let run = flightdeck_in(dir, &run_args(copy, undo, context));
    assert_eq!(run.code, 0, "{at}: {}", run.stderr);
    let prefs = json_of(dir, &["client", "prefs", "--profile", copy, "--json"]);
    assert_eq!(prefs, original_prefs(), "{at}: undoing everything");
}

#[test]
fn a_crash_at_every_write_step_leaves_every_change_recorded_and_undoable() {
    let tmp = TempDir::new("crash-points");
    let dir = tmp.path();
    let context = tmp.write("context.json", CONTEXT);
    let context = context.to_str().expect("UTF-8 path");
    let undo = tmp.write("undo.json", undo_manifest().to_string());
    let undo = undo.to_str().expect("UTF-8 path");
    let profile_path = dir.join("profile");
    let profile = profile_path.to_str().expect("UTF-8 path");
    let snapshot = dir.join("snapshot");
    let mut crashes = 0;

    for i in 0..6 {
        let manifest = tmp.write(&format!("manifest-{i}.json"), manifest(i).to_string());
        let manifest = manifest.to_str().expect("UTF-8 path");
        let args = run_args(profile, manifest, context);
        if profile_path.exists() {
            copy_dir(&profile_path, &snapshot);
        }
        for point in 1.. {
            let _ = std::fs::remove_dir_all(&profile_path);
            if snapshot.exists() {
                copy_dir(&snapshot, &profile_path);
            }
            let status = Command::new(env!("CARGO_BIN_EXE_flightdeck"))
                .args(&args)
                .current_dir(dir)
                .env("FLIGHTDECK_CRASH_POINT", point.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run flightdeck");
            if status.success() {
                break;
            }
            assert!(
                status.code().is_none(),
                "run {i}, point {point}: {status:?}"
            );
            crashes += 1;
            let at = format!("run {i}, crash at write step {point}");
            let recovery = flightdeck_in(dir, &args);
            assert_eq!(recovery.code, 0, "{at}: {}", recovery.stderr);
            assert!(
                !recovery.stdout.contains("unreadable"),
                "{at}: {}",
                recovery.stdout
            );
            assert_records_match_prefs(dir, profile, &at);
            assert_undoable(dir, &profile_path, undo, context, &at);
        }
        // Leave the profile as a run without a crash leaves it.
        let _ = std::fs::remove_dir_all(&profile_path);
        if snapshot.exists() {
            copy_dir(&snapshot, &profile_path);
        }
        let run = flightdeck_in(dir, &args);
        assert_eq!(run.code, 0, "run {i}: {}", run.stderr);
    }
    assert!(crashes >= 12, "only {crashes} crash points were reached");
}
