//! Whole client runs through `runtime::run` with test doubles: preferences in memory or in a
//! file of a temporary profile, a scripted HTTP client, a fake package installer and fixed
//! random values. Normandy recipes from a file and from a URL, the observer path
//! (`runtime::preference_changed`), the telemetry annotation, the journal of an interrupted
//! run, the fallback when no manifest can be had, and the wake-up time of a Manifest v1
//! experiment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flightdeck_client::FixedRandom;
use flightdeck_client::events::{Annotation, TelemetryEvent};
use flightdeck_client::fetch::{HttpError, HttpResponse, ScriptedHttpClient};
use flightdeck_client::install::{InstallError, Installer};
use flightdeck_client::prefs::{
    Branch, FilePrefStore, MemoryPrefStore, PrefEntry, PrefStore, PrefValue, PrefWrite,
};
use flightdeck_client::runtime::{
    self, ClientConfig, ManifestOrigin, ManifestStatus, Profile, RunEnv, RunReport,
};
use flightdeck_client::state::{ClientState, InstalledPackage, LoadNote};
use flightdeck_client::telemetry::UploadPolicy;
use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::NoJsFilter;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const USER_ID: &str = "11111111-2222-3333-4444-555555555555";
const T0: &str = "2026-11-21T12:00:00Z";
const MANIFEST_URL: &str = "https://manifests.test/manifest.json";
const TELEMETRY_URL: &str = "https://telemetry.test/submit";

fn t0() -> Timestamp {
    T0.parse().unwrap()
}

fn after(seconds: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(seconds))
        .unwrap()
}

/// An installer that records what it is asked to do and always succeeds.
#[derive(Default)]
struct FakeInstaller {
    log: Vec<String>,
}

impl Installer for FakeInstaller {
    fn install(
        &mut self,
        id: &str,
        url: &str,
        hash: &str,
    ) -> Result<InstalledPackage, InstallError> {
        self.log.push(format!("install {id}"));
        Ok(InstalledPackage {
            url: url.to_owned(),
            hash: hash.to_owned(),
            location: id.to_owned(),
        })
    }

    fn uninstall(&mut self, id: &str, _package: &InstalledPackage) -> Result<(), InstallError> {
        self.log.push(format!("uninstall {id}"));
        Ok(())
    }
}

/// A profile in a temporary directory and the doubles a run needs.
struct Harness {
    dir: tempfile::TempDir,
    profile: Profile,
    http: ScriptedHttpClient,
    installer: FakeInstaller,
    random: FixedRandom,
    config: ClientConfig,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path().join("profile"));
        Harness {
            dir,
            profile,
            http: ScriptedHttpClient::new([]),
            installer: FakeInstaller::default(),
            random: FixedRandom::new(vec![0.5]),
            config: ClientConfig::default(),
        }
    }

    /// Writes `document` next to the profile and returns it as a file origin.
    fn file(&self, name: &str, document: &Value) -> ManifestOrigin {
        let path = self.dir.path().join(name);
        std::fs::write(&path, document.to_string()).unwrap();
        ManifestOrigin::File(path)
    }

    fn run(
        &mut self,
        prefs: &mut dyn PrefStore,
        origin: &ManifestOrigin,
        context: &ClientContext,
        now: Timestamp,
    ) -> RunReport {
        let mut env = RunEnv {
            profile: &self.profile,
            prefs,
            http: &self.http,
            installer: &mut self.installer,
            js_filter: &NoJsFilter,
            random: &mut self.random,
            config: &self.config,
        };
        runtime::run(&mut env, origin, context, now).unwrap()
    }

    /// The state as saved in the profile.
    fn state(&self) -> ClientState {
        let (state, note) = self.profile.state_file().load(t0()).unwrap();
        assert_eq!(note, LoadNote::Loaded);
        state
    }

    fn prefs_path(&self) -> PathBuf {
        self.profile.prefs_path()
    }
}

fn context(value: Value) -> ClientContext {
    ClientContext::from_json(&value.to_string()).unwrap()
}

/// The client every test uses: release channel, three preferences with built-in defaults.
fn release_client() -> ClientContext {
    context(json!({
        "userId": USER_ID,
        "channel": "release",
        "prefs": {"rt.a": {"default": 1}, "rt.u": {"default": 2}, "rt.h": {"default": 3}}
    }))
}

fn recipe(id: u64, action: &str, filter: &str, arguments: Value) -> Value {
    json!({
        "id": id,
        "name": format!("recipe {id}"),
        "revision_id": format!("{id}"),
        "action": action,
        "arguments": arguments,
        "filter_expression": filter,
        "capabilities": [format!("action.{action}")]
    })
}

fn rollout(id: u64, slug: &str, filter: &str, preferences: Value) -> Value {
    let preferences: Vec<Value> = preferences
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| json!({"preferenceName": name, "value": value}))
        .collect();
    recipe(
        id,
        "preference-rollout",
        filter,
        json!({"slug": slug, "preferences": preferences}),
    )
}

fn experiment(
    id: u64,
    slug: &str,
    pref: &str,
    branch_type: &str,
    value: i64,
    more: Value,
) -> Value {
    let mut arguments = json!({
        "slug": slug,
        "userFacingName": slug,
        "userFacingDescription": "a runtime test",
        "isEnrollmentPaused": false,
        "branches": [{"slug": "treatment", "ratio": 1, "preferences": {
            pref: {"preferenceType": "integer", "preferenceBranchType": branch_type,
                   "preferenceValue": value}}}]
    });
    for (key, value) in more.as_object().unwrap() {
        arguments[key] = value.clone();
    }
    recipe(
        id,
        "multi-preference-experiment",
        "normandy.channel == 'release'",
        arguments,
    )
}

/// A rollout, a user-branch experiment, a high-population default-branch experiment, and a
/// rollout for another channel.
fn recipes() -> Value {
    json!([
        rollout(
            1,
            "roll-a",
            "normandy.channel == 'release'",
            json!({"rt.a": 5})
        ),
        experiment(2, "exp-u", "rt.u", "user", 101, json!({})),
        experiment(
            3,
            "exp-h",
            "rt.h",
            "default",
            201,
            json!({"isHighPopulation": true})
        ),
        rollout(
            4,
            "roll-beta",
            "normandy.channel == 'beta'",
            json!({"rt.b": 1})
        ),
    ])
}

fn write(name: &str, branch: Branch, value: Option<i64>) -> PrefWrite {
    PrefWrite {
        name: name.to_owned(),
        branch,
        value: value.map(PrefValue::Int),
    }
}

fn sorted(mut writes: Vec<PrefWrite>) -> Vec<PrefWrite> {
    writes.sort_by(|a, b| (&a.name, a.branch).cmp(&(&b.name, b.branch)));
    writes
}

fn entry(default: Option<i64>, user: Option<i64>) -> PrefEntry {
    PrefEntry {
        default: default.map(PrefValue::Int),
        user: user.map(PrefValue::Int),
    }
}

fn summary(events: &[TelemetryEvent]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| (e.method.clone(), e.object.clone(), e.value.clone()))
        .collect()
}

fn triple(method: &str, object: &str, value: &str) -> (String, String, String) {
    (method.to_owned(), object.to_owned(), value.to_owned())
}

fn annotation(branch: &str, kind: &str) -> Annotation {
    Annotation {
        branch: branch.to_owned(),
        kind: kind.to_owned(),
    }
}

/// The annotation after [`recipes`] ran.
fn all_three_annotated() -> BTreeMap<String, Annotation> {
    BTreeMap::from([
        (
            "roll-a".to_owned(),
            annotation("active", "normandy-prefrollout"),
        ),
        ("exp-u".to_owned(), annotation("treatment", "normandy-exp")),
        (
            "exp-h".to_owned(),
            annotation("treatment", "normandy-exp-highpop"),
        ),
    ])
}

#[test]
fn a_recipe_set_from_a_file_is_applied_and_kept_as_the_last_good_manifest() {
    let mut h = Harness::new();
    let origin = h.file("recipes.json", &recipes());
    let mut prefs = MemoryPrefStore::new();

    let report = h.run(&mut prefs, &origin, &release_client(), t0());
    assert_eq!(report.state, LoadNote::New);
    assert_eq!(report.replayed_writes, 0);
    assert_eq!(report.manifest, ManifestStatus::Accepted { serial: None });
    assert_eq!(
        sorted(report.pref_writes.clone()),
        vec![
            write("rt.a", Branch::Default, Some(5)),
            write("rt.h", Branch::Default, Some(201)),
            write("rt.u", Branch::Default, Some(2)),
            write("rt.u", Branch::User, Some(101)),
        ]
    );
    let mut enrolled = summary(&report.events);
    enrolled.sort();
    assert_eq!(
        enrolled,
        vec![
            triple("enroll", "preference_rollout", "roll-a"),
            triple("enroll", "preference_study", "exp-h"),
            triple("enroll", "preference_study", "exp-u"),
        ]
    );
    let highpop = report.events.iter().find(|e| e.value == "exp-h").unwrap();
    assert_eq!(highpop.extra["experimentType"], "exp-highpop");
    assert_eq!(report.annotations, all_three_annotated());
    assert_eq!(report.next_wake_up, None);
    assert_eq!(report.upload, None);

    assert_eq!(prefs.get("rt.a"), entry(Some(5), None));
    assert_eq!(prefs.get("rt.u"), entry(Some(2), Some(101)));
    assert_eq!(prefs.get("rt.h"), entry(Some(201), None));
    assert_eq!(prefs.get("rt.b"), PrefEntry::default(), "another channel's");

    let ManifestOrigin::File(path) = &origin else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read(h.profile.last_good_manifest_path()).unwrap(),
        std::fs::read(path).unwrap()
    );
    let state = h.state();
    assert!(state.journal.is_empty());
    assert_eq!(state.user_id, None, "the context gave the user id");
    assert_eq!(state.telemetry.pending.len(), 3);
    assert_eq!(state.manifest.source.as_deref(), path.to_str());
    assert_eq!(state.manifest.serial, None);
    assert_eq!(state.manifest.sha256.as_ref().map(String::len), Some(64));
    assert_eq!(state.manifest.accepted_at, Some(t0()));
    assert_eq!(runtime::annotations(&state), all_three_annotated());
    assert!(h.http.requests().is_empty(), "a file origin needs no HTTP");

    // The same file again: unchanged, nothing to do.
    let report = h.run(&mut prefs, &origin, &release_client(), after(3600));
    assert_eq!(report.state, LoadNote::Loaded);
    assert_eq!(report.manifest, ManifestStatus::Unchanged);
    assert_eq!(report.pref_writes, vec![]);
    assert_eq!(report.events, vec![]);
    assert_eq!(report.annotations, all_three_annotated());
    assert_eq!(h.state().manifest.accepted_at, Some(t0()));
}

#[test]
fn a_run_that_changes_only_last_seen_leaves_the_state_file_alone_for_a_day() {
    let mut h = Harness::new();
    let origin = h.file("recipes.json", &recipes());
    let mut prefs = MemoryPrefStore::new();
    h.run(&mut prefs, &origin, &release_client(), t0());
    let state_path = h.profile.state_file().path().to_owned();
    let written = std::fs::read(&state_path).unwrap();
    assert_eq!(h.state().experiments["exp-u"].last_seen, t0());

    // Runs within a day of the stored `lastSeen` change nothing else: no write at all (the
    // in-memory `lastSeen` moved, so a write would have changed the file).
    for seconds in [3600, 23 * 3600] {
        let report = h.run(&mut prefs, &origin, &release_client(), after(seconds));
        assert_eq!(report.manifest, ManifestStatus::Unchanged);
        assert!(report.pref_writes.is_empty() && report.events.is_empty());
        assert_eq!(
            std::fs::read(&state_path).unwrap(),
            written,
            "after {seconds} s"
        );
    }

    // A day after the stored value, the run writes the new `lastSeen`.
    h.run(&mut prefs, &origin, &release_client(), after(24 * 3600));
    let state = h.state();
    assert_eq!(state.experiments["exp-u"].last_seen, after(24 * 3600));
    assert_eq!(state.experiments["exp-h"].last_seen, after(24 * 3600));

    // Any other change is written at once: the experiment's recipe is gone, so it ends.
    let without_exp_u: Vec<Value> = recipes()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] != 2)
        .cloned()
        .collect();
    let origin = h.file("recipes-2.json", &Value::Array(without_exp_u));
    let report = h.run(
        &mut prefs,
        &origin,
        &release_client(),
        after(24 * 3600 + 60),
    );
    assert_eq!(
        summary(&report.events),
        vec![triple("unenroll", "preference_study", "exp-u")]
    );
    assert!(h.state().experiments["exp-u"].expired);
}

#[test]
fn a_new_manifest_replaces_the_last_good_one_only_once_accepted() {
    let mut h = Harness::new();
    let mut prefs = MemoryPrefStore::new();
    let first = h.file("recipes.json", &recipes());
    h.run(&mut prefs, &first, &release_client(), t0());
    let last_good = h.profile.last_good_manifest_path();
    let kept = std::fs::read(&last_good).unwrap();
    let dir = h.profile.dir().to_owned();
    let profile_files = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let files = profile_files();

    // Refused (not a manifest): the last good one stays, and nothing is left behind.
    let broken = h.dir.path().join("broken.json");
    std::fs::write(&broken, b"{\"format\": \"flightdeck-manifest\", oops").unwrap();
    let report = h.run(
        &mut prefs,
        &ManifestOrigin::File(broken),
        &release_client(),
        after(60),
    );
    assert!(matches!(
        report.manifest,
        ManifestStatus::UsedLastGood { .. }
    ));
    assert_eq!(std::fs::read(&last_good).unwrap(), kept);
    assert_eq!(profile_files(), files);

    // Accepted: it becomes the last good one.
    let mut more = recipes();
    more.as_array_mut()
        .unwrap()
        .push(rollout(9, "roll-9", "true", json!({"rt.nine": 9})));
    let second = h.file("recipes-2.json", &more);
    let report = h.run(&mut prefs, &second, &release_client(), after(120));
    assert_eq!(report.manifest, ManifestStatus::Accepted { serial: None });
    let ManifestOrigin::File(path) = &second else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read(&last_good).unwrap(),
        std::fs::read(path).unwrap()
    );
    assert_eq!(profile_files(), files);
}

#[test]
fn preference_changed_ends_the_owning_experiment_without_reset() {
    let mut h = Harness::new();
    let origin = h.file("recipes.json", &recipes());
    let mut prefs = FilePrefStore::open(&h.prefs_path()).unwrap();
    h.run(&mut prefs, &origin, &release_client(), t0());

    // The application writes the user's change to its store, then tells the runtime.
    // A rollout's preference: rollouts do not end when the user changes a value.
    prefs.set("rt.a", Branch::User, Some(PrefValue::Int(9)));
    prefs.flush().unwrap();
    let events =
        runtime::preference_changed(&h.profile, &mut prefs, &h.config, "rt.a", after(60)).unwrap();
    assert_eq!(events, vec![]);

    // The user-branch experiment's preference.
    prefs.set("rt.u", Branch::User, Some(PrefValue::Int(7)));
    prefs.flush().unwrap();
    let now = after(3600);
    let events =
        runtime::preference_changed(&h.profile, &mut prefs, &h.config, "rt.u", now).unwrap();
    assert_eq!(
        events,
        vec![
            TelemetryEvent::new("unenroll", "preference_study", "exp-u")
                .with("didResetValue", "false")
                .with("branch", "treatment")
                .with("reason", "user-preference-changed")
                .with("changedPref", "rt.u")
        ]
    );
    assert_eq!(
        prefs.get("rt.u"),
        entry(Some(2), Some(7)),
        "the user's value stays"
    );
    let on_disk = FilePrefStore::open(&h.prefs_path()).unwrap();
    assert_eq!(on_disk.get("rt.u"), entry(Some(2), Some(7)));

    let state = h.state();
    let record = &state.experiments["exp-u"];
    assert!(record.expired);
    assert_eq!(
        record.end_reason.as_deref(),
        Some("user-preference-changed")
    );
    assert_eq!(record.ended_at, Some(now));
    assert_eq!(state.telemetry.pending.last().unwrap().event, events[0]);
    assert_eq!(state.telemetry.pending.last().unwrap().timestamp, now);
    let mut expected = all_three_annotated();
    expected.remove("exp-u");
    assert_eq!(runtime::annotations(&state), expected);

    // The next run keeps it ended and leaves the user's value alone.
    let report = h.run(&mut prefs, &origin, &release_client(), after(7200));
    assert_eq!(report.events, vec![]);
    assert_eq!(report.annotations, expected);
    assert_eq!(prefs.get("rt.u"), entry(Some(2), Some(7)));
}

#[test]
fn a_store_that_marks_journals_needs_no_second_state_write() {
    let mut h = Harness::new();
    let context = release_client();
    let origin = h.file("recipes.json", &recipes());

    // A file store records the journal's number with its values: the state keeps the
    // journal (it is not written a second time), marked as applied.
    let mut prefs = FilePrefStore::open(&h.prefs_path()).unwrap();
    let report = h.run(&mut prefs, &origin, &context, t0());
    assert_eq!(report.pref_writes.len(), 4);
    let state = h.state();
    assert_eq!(sorted(state.journal.clone()), sorted(report.pref_writes));
    assert_eq!(state.journal_seq, 1);
    let stored: Value = serde_json::from_slice(&std::fs::read(h.prefs_path()).unwrap()).unwrap();
    assert_eq!(stored["journal"], 1);

    // The next run sees the mark and replays nothing; the values are the first run's.
    let mut prefs = FilePrefStore::open(&h.prefs_path()).unwrap();
    let report = h.run(&mut prefs, &origin, &context, after(60));
    assert_eq!(report.replayed_writes, 0);
    assert!(report.pref_writes.is_empty());
    assert_eq!(prefs.get("rt.a"), entry(Some(5), None));
    assert_eq!(prefs.get("rt.u"), entry(Some(2), Some(101)));

    // A store without the mark (an older file, or one restored from before the run) gets
    // the journal replayed, and is marked then.
    let mut stored = stored;
    stored.as_object_mut().unwrap().remove("journal");
    stored["prefs"]["rt.a"]["default"] = json!(1);
    std::fs::write(h.prefs_path(), stored.to_string()).unwrap();
    let mut prefs = FilePrefStore::open(&h.prefs_path()).unwrap();
    let report = h.run(&mut prefs, &origin, &context, after(120));
    assert_eq!(report.replayed_writes, 4);
    assert_eq!(prefs.get("rt.a"), entry(Some(5), None));
    assert!(
        h.state().journal.is_empty(),
        "a replayed journal is cleared"
    );
    let again = FilePrefStore::open(&h.prefs_path()).unwrap();
    assert_eq!(again.get("rt.a"), entry(Some(5), None));

    // A store that keeps no marks gets the journal cleared by a second state write.
    let mut h = Harness::new();
    let mut memory = MemoryPrefStore::new();
    let report = h.run(&mut memory, &origin, &context, t0());
    assert_eq!(report.pref_writes.len(), 4);
    assert!(h.state().journal.is_empty());
}

#[test]
fn the_journal_of_an_interrupted_run_is_replayed_first() {
    let mut h = Harness::new();
    let context = release_client();
    let mut prefs = FilePrefStore::open(&h.prefs_path()).unwrap();
    let first = h.file(
        "v1.json",
        &json!([rollout(1, "roll-a", "true", json!({"rt.a": 5}))]),
    );
    h.run(&mut prefs, &first, &context, t0());
    let prefs_before = std::fs::read(h.prefs_path()).unwrap();

    // The second run changes the rollout and enrolls an experiment …
    let second = h.file(
        "v2.json",
        &json!([
            rollout(1, "roll-a", "true", json!({"rt.a": 6})),
            experiment(2, "exp-u", "rt.u", "user", 101, json!({})),
        ]),
    );
    let report = h.run(&mut prefs, &second, &context, after(60));
    let writes = report.pref_writes.clone();
    assert_eq!(
        sorted(writes.clone()),
        vec![
            write("rt.a", Branch::Default, Some(6)),
            write("rt.u", Branch::User, Some(101)),
        ]
    );
    // … and "crashes" between its first commit step (the state with the journal) and the
    // preference store write: the state has its records and its journal, the store is old.
    drop(prefs);
    std::fs::write(h.prefs_path(), &prefs_before).unwrap();
    let mut state = h.state();
    state.journal = writes;
    h.profile.state_file().save(&state).unwrap();

    let mut prefs = FilePrefStore::open(&h.prefs_path()).unwrap();
    assert_eq!(prefs.get("rt.a"), entry(Some(5), None));
    assert_eq!(prefs.get("rt.u"), entry(Some(2), None));
    let report = h.run(&mut prefs, &second, &context, after(120));
    assert_eq!(report.replayed_writes, 2);
    assert_eq!(report.manifest, ManifestStatus::Unchanged);
    assert_eq!(
        report.pref_writes,
        vec![],
        "the replay did the run's writes"
    );
    assert_eq!(
        report.events,
        vec![],
        "the enrollment was committed already"
    );
    assert_eq!(prefs.get("rt.a"), entry(Some(6), None));
    assert_eq!(prefs.get("rt.u"), entry(Some(2), Some(101)));
    let on_disk = FilePrefStore::open(&h.prefs_path()).unwrap();
    assert_eq!(on_disk.get("rt.a"), entry(Some(6), None));
    assert_eq!(on_disk.get("rt.u"), entry(Some(2), Some(101)));
    assert!(h.state().journal.is_empty());

    // Nothing is replayed twice.
    let report = h.run(&mut prefs, &second, &context, after(180));
    assert_eq!(report.replayed_writes, 0);
}

#[test]
fn a_url_origin_fetches_with_the_entity_tag_and_uploads_the_events() {
    let mut h = Harness::new();
    h.config.upload = Some(UploadPolicy::new(TELEMETRY_URL));
    let origin = ManifestOrigin::Url(MANIFEST_URL.to_owned());
    let body = json!([rollout(1, "roll-a", "true", json!({"rt.a": 5}))]).to_string();
    h.http.push(Ok(
        HttpResponse::new(200, body.clone()).with_header("ETag", "\"v1\"")
    ));
    h.http.push(Ok(HttpResponse::new(204, "")));
    let mut prefs = MemoryPrefStore::new();

    let report = h.run(&mut prefs, &origin, &release_client(), t0());
    assert_eq!(report.manifest, ManifestStatus::Accepted { serial: None });
    assert_eq!(
        report.upload.as_deref(),
        Some("Uploaded { count: 1, dropped: 0 }")
    );
    let requests = h.http.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method, requests[0].url.as_str()),
        ("GET", MANIFEST_URL)
    );
    assert_eq!(requests[0].headers, vec![]);
    assert_eq!(
        (requests[1].method, requests[1].url.as_str()),
        ("POST", TELEMETRY_URL)
    );
    let posted: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(posted["clientId"], USER_ID);
    assert_eq!(
        posted["events"],
        json!([{"seq": 0, "timestamp": T0, "method": "enroll",
                "object": "preference_rollout", "value": "roll-a", "extra": {}}])
    );
    let state = h.state();
    assert!(state.telemetry.pending.is_empty());
    assert_eq!(state.manifest.etag.as_deref(), Some("\"v1\""));

    // Not modified: the cached copy runs; nothing queued, nothing posted.
    h.http.push(Ok(HttpResponse::new(304, "")));
    let report = h.run(&mut prefs, &origin, &release_client(), after(3600));
    assert_eq!(report.manifest, ManifestStatus::Unchanged);
    assert_eq!(report.upload, None);
    let requests = h.http.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[2].headers,
        vec![("If-None-Match".to_owned(), "\"v1\"".to_owned())]
    );

    // The server is gone: the last good manifest runs, the failure is counted.
    h.http.push(Err(HttpError::Connect {
        url: MANIFEST_URL.to_owned(),
        message: "connection refused".to_owned(),
    }));
    let report = h.run(&mut prefs, &origin, &release_client(), after(7200));
    assert!(
        matches!(&report.manifest, ManifestStatus::UsedLastGood { reason }
            if reason.contains("connection refused")),
        "{:?}",
        report.manifest
    );
    assert_eq!(prefs.get("rt.a"), entry(Some(5), None));
    let state = h.state();
    assert_eq!(state.manifest.failures, 1);
    assert_eq!(state.manifest.next_fetch_at, Some(after(7200 + 30)));
    assert_eq!(state.rollouts["roll-a"].state.as_str(), "active");

    // During the backoff nothing is sent, and the state still says why it backs off.
    let report = h.run(&mut prefs, &origin, &release_client(), after(7200 + 10));
    assert_eq!(
        report.manifest,
        ManifestStatus::UsedLastGood {
            reason: format!("backing off until {}", after(7200 + 30))
        }
    );
    assert_eq!(h.http.requests().len(), 4);
    let during = h.state().manifest;
    assert_eq!(during.failures, 1);
    assert_eq!(during.last_error, state.manifest.last_error);
}

#[test]
fn without_any_manifest_nothing_runs_and_nothing_is_unenrolled() {
    let mut h = Harness::new();
    let mut prefs = MemoryPrefStore::new();
    let origin = h.file("recipes.json", &recipes());
    h.run(&mut prefs, &origin, &release_client(), t0());
    std::fs::remove_file(h.profile.last_good_manifest_path()).unwrap();

    let missing = ManifestOrigin::File(h.dir.path().join("missing.json"));
    let report = h.run(&mut prefs, &missing, &release_client(), after(3600));
    assert!(
        matches!(&report.manifest, ManifestStatus::Unavailable { reason }
            if reason.contains("missing.json")),
        "{:?}",
        report.manifest
    );
    assert_eq!(report.events, vec![]);
    assert_eq!(report.pref_writes, vec![]);
    assert_eq!(report.annotations, all_three_annotated());
    assert_eq!(prefs.get("rt.u"), entry(Some(2), Some(101)));
    assert!(
        h.state()
            .manifest
            .last_error
            .is_some_and(|e| e.contains("missing.json"))
    );
}

/// A Manifest v1 document with one experiment `E` from `start` (epoch seconds), running at most
/// one day per client, until 30 days after T0.
fn manifest_v1(start: Timestamp) -> Value {
    json!({"version": 1, "experiments": [{
        "id": "E",
        "xpiURL": "https://packages.test/E.xpi",
        "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
        "startTime": start.as_second(),
        "endTime": after(30 * 86_400).as_second(),
        "maxActiveSeconds": 86_400
    }]})
}

#[test]
fn a_manifest_v1_experiment_reports_when_to_wake_up() {
    let mut h = Harness::new();
    let mut prefs = MemoryPrefStore::new();
    let cx = context(json!({"userId": USER_ID}));
    let origin = h.file("manifest.json", &manifest_v1(after(3 * 3600)));

    // Not started yet: wake up at its start time.
    let report = h.run(&mut prefs, &origin, &cx, t0());
    assert_eq!(report.next_wake_up, Some(after(3 * 3600)));
    assert!(h.installer.log.is_empty());
    assert_eq!(report.annotations, BTreeMap::new());

    // Started: installed, and the next wake-up is the end of its day.
    let started = after(3 * 3600);
    let report = h.run(&mut prefs, &origin, &cx, started);
    assert_eq!(h.installer.log, ["install E"]);
    let activated: Vec<&TelemetryEvent> = report
        .events
        .iter()
        .filter(|e| e.method == "activation")
        .collect();
    assert_eq!(activated.len(), 1);
    assert_eq!(activated[0].object, "manifest_experiment");
    assert_eq!(activated[0].extra["kind"], "ACTIVATED");
    // The limit is inclusive, so it expires one second after a full day.
    let one_day_later = started
        .checked_add(SignedDuration::from_secs(86_401))
        .unwrap();
    assert_eq!(report.next_wake_up, Some(one_day_later));
    assert_eq!(
        report.annotations,
        BTreeMap::from([("E".to_owned(), annotation("default", "manifest-experiment"))])
    );
    let state = h.state();
    assert!(state.manifest_experiments["E"].enabled);
    assert_eq!(state.manifest_experiments["E"].start_date, Some(started));

    // After its day: it ends, its package goes, and nothing more is scheduled.
    let late = one_day_later
        .checked_add(SignedDuration::from_secs(1))
        .unwrap();
    let report = h.run(&mut prefs, &origin, &cx, late);
    assert_eq!(h.installer.log, ["install E", "uninstall E"]);
    assert!(
        report
            .events
            .iter()
            .any(|e| e.method == "termination" && e.extra["kind"] == "EXPIRED"),
        "{:?}",
        report.events
    );
    assert_eq!(report.next_wake_up, None);
    assert_eq!(report.annotations, BTreeMap::new());
    assert!(!h.state().manifest_experiments["E"].enabled);
}
