//! The Manifest v1 client over whole lifecycles: the reference's test_telemetry sequence, the
//! test_api and test_cache behaviours, the golden condition and time tables replayed through
//! the runtime, and the product decisions (rules 2, 3, 7, 8, 10).

use std::collections::{BTreeMap, BTreeSet};

use flightdeck_client::FixedRandom;
use flightdeck_client::events::TelemetryEvent;
use flightdeck_client::install::{InstallError, Installer};
use flightdeck_client::manifest_v1::{
    self, ManifestOutcome, ManifestRun, TerminationKind, annotations, disable_active, set_branch,
};
use flightdeck_client::state::{InstalledPackage, ManifestEntry};
use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::{JsFilter, JsFilterOutcome};
use flightdeck_core::model::manifest_v1::{Manifest, parse};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const GOOD_HASH: &str = "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099";
const BAD_HASH: &str = "sha1:0000000000000000000000000000000000000000";
const DAY: i64 = 86_400;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n * DAY)
}

fn secs(at: Timestamp) -> i64 {
    at.as_second()
}

/// The test_conditions client: XPCShell on XPCShell, version 1.0, build 2014060601, nightly, en-US.
fn xpcshell() -> ClientContext {
    ClientContext {
        app_name: Some("XPCShell".into()),
        os: Some("XPCShell".into()),
        version: Some("1.0".into()),
        build_id: Some("2014060601".into()),
        channel: Some("nightly".into()),
        locale: Some("en-US".into()),
        ..ClientContext::default()
    }
}

/// An installer that records what it was asked to do and refuses [`BAD_HASH`] (as a hash
/// mismatch) and every URL in `broken_urls` (as a failed download).
#[derive(Default)]
struct FakeInstaller {
    log: Vec<String>,
    broken_urls: BTreeSet<String>,
}

impl Installer for FakeInstaller {
    fn install(
        &mut self,
        id: &str,
        url: &str,
        hash: &str,
    ) -> Result<InstalledPackage, InstallError> {
        self.log.push(format!("install {id} {url} {hash}"));
        if hash == BAD_HASH {
            return Err(mismatch());
        }
        if self.broken_urls.contains(url) {
            return Err(InstallError::Fetch {
                url: url.to_owned(),
                message: "connection refused".into(),
            });
        }
        Ok(InstalledPackage {
            url: url.to_owned(),
            hash: hash.to_owned(),
            location: id.to_owned(),
        })
    }

    fn uninstall(&mut self, id: &str, package: &InstalledPackage) -> Result<(), InstallError> {
        self.log.push(format!("uninstall {id} {}", package.url));
        Ok(())
    }
}

fn mismatch() -> InstallError {
    InstallError::HashMismatch {
        expected: BAD_HASH.to_owned(),
        actual: GOOD_HASH.to_owned(),
    }
}

/// A sandbox whose outcome is looked up by source text.
#[derive(Default)]
struct FakeJs(BTreeMap<String, JsFilterOutcome>);

impl JsFilter for FakeJs {
    fn run(&self, source: &str, _context: &Value) -> JsFilterOutcome {
        self.0
            .get(source)
            .cloned()
            .unwrap_or_else(|| JsFilterOutcome::EvalFailed("unknown source".into()))
    }
}

/// One client: its entries and everything a run needs.
struct Client {
    context: ClientContext,
    entries: BTreeMap<String, ManifestEntry>,
    installer: FakeInstaller,
    random: FixedRandom,
    js: FakeJs,
    enabled: bool,
}

impl Client {
    fn new() -> Client {
        Client::with_random(vec![0.5])
    }

    fn with_random(values: Vec<f64>) -> Client {
        Client {
            context: xpcshell(),
            entries: BTreeMap::new(),
            installer: FakeInstaller::default(),
            random: FixedRandom::new(values),
            js: FakeJs::default(),
            enabled: true,
        }
    }

    fn run(
        &mut self,
        manifest: Option<&Manifest>,
        now: Timestamp,
    ) -> (ManifestOutcome, Vec<TelemetryEvent>) {
        let mut events = Vec::new();
        let mut run = ManifestRun {
            now,
            context: &self.context,
            entries: &mut self.entries,
            installer: &mut self.installer,
            random: &mut self.random,
            js_filter: &self.js,
            events: &mut events,
            enabled: self.enabled,
        };
        let outcome = manifest_v1::run(manifest, &mut run);
        (outcome, events)
    }

    /// Runs and returns only the events.
    fn events(&mut self, manifest: &Manifest, now: Timestamp) -> Vec<TelemetryEvent> {
        self.run(Some(manifest), now).1
    }

    fn disable(&mut self, kind: TerminationKind, now: Timestamp) -> (bool, Vec<TelemetryEvent>) {
        let mut events = Vec::new();
        let mut run = ManifestRun {
            now,
            context: &self.context,
            entries: &mut self.entries,
            installer: &mut self.installer,
            random: &mut self.random,
            js_filter: &self.js,
            events: &mut events,
            enabled: self.enabled,
        };
        let stopped = disable_active(&mut run, kind);
        (stopped, events)
    }

    fn active(&self) -> Option<&str> {
        self.entries
            .values()
            .find(|e| e.enabled)
            .map(|e| e.id.as_str())
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.installer.log)
    }
}

/// An experiment entry: the test_conditions base (started 2010, ends in 9001, one active day,
/// XPCShell on nightly) with `overrides` applied; a `null` override removes the field.
fn exp(id: &str, overrides: Value) -> Value {
    let mut entry = json!({
        "id": id,
        "xpiURL": format!("https://example.com/{id}.xpi"),
        "xpiHash": GOOD_HASH,
        "startTime": secs(ts("2010-01-01T00:00:00Z")),
        "endTime": secs(ts("9001-01-01T00:00:00Z")),
        "maxActiveSeconds": DAY,
        "appName": ["XPCShell"],
        "channel": ["nightly"],
    });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            entry.as_object_mut().unwrap().shift_remove(key);
        } else {
            entry[key] = value.clone();
        }
    }
    entry
}

fn manifest(experiments: &[Value]) -> Manifest {
    manifest_with_version(json!(1), experiments)
}

fn manifest_with_version(version: Value, experiments: &[Value]) -> Manifest {
    let text = json!({"version": version, "experiments": experiments}).to_string();
    let parsed = parse("manifest.json", &text);
    let errors: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && version == json!(1))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    parsed.value.unwrap()
}

fn event(method: &str, id: &str, kind: &str) -> TelemetryEvent {
    TelemetryEvent::new(method, "manifest_experiment", id).with("kind", kind)
}

fn rejected(id: &str, reason: &str) -> TelemetryEvent {
    event("activation", id, "REJECTED").with("reason", reason)
}

fn activated(id: &str) -> TelemetryEvent {
    event("activation", id, "ACTIVATED")
}

fn install_failure(id: &str, error: &InstallError) -> TelemetryEvent {
    event("activation", id, "INSTALL_FAILURE")
        .with("reason", error.code())
        .with("detail", error.to_string())
}

fn terminated(id: &str, kind: &str) -> TelemetryEvent {
    event("termination", id, kind)
}

fn rechecked(id: &str, reason: &str) -> TelemetryEvent {
    terminated(id, "RECHECK").with("reason", reason)
}

// ---- The lifecycle of test_telemetry (seed-originals §1.3) ----

#[test]
fn telemetry_lifecycle_sequence() {
    let base = ts("2014-06-01T12:00:00Z");
    let window = |id: &str, start: i64, end: i64| {
        exp(
            id,
            json!({
                "startTime": secs(base + days(start)),
                "endTime": secs(base + days(end)),
                "maxActiveSeconds": 10 * DAY,
            }),
        )
    };
    let e1 = window("E1", 50, 100);
    let mut e2 = window("E2", 150, 200);
    let e1_start = base + days(50);
    let e1_end = base + days(100);
    let e2_start = base + days(150);
    let mut client = Client::new();

    let (outcome, events) = client.run(Some(&manifest(&[e1.clone(), e2.clone()])), base);
    assert_eq!(
        events,
        [rejected("E1", "startTime"), rejected("E2", "startTime")]
    );
    assert_eq!(outcome.active, None);
    assert_eq!(outcome.next_wake_up, Some(e1_start));

    // E1 starts; the walk stops there, so E2 is not evaluated.
    let now = e1_start + days(5);
    let (outcome, events) = client.run(Some(&manifest(&[e1.clone(), e2.clone()])), now);
    assert_eq!(events, [activated("E1")]);
    assert_eq!(outcome.active.as_deref(), Some("E1"));
    // The timer is maxActiveSeconds (10 days), before E1's endTime and E2's startTime, plus
    // one second: the check is inclusive, so E1 is still active at exactly 10 days.
    assert_eq!(
        outcome.next_wake_up.map(|at| at.duration_since(now)),
        Some(days(10) + SignedDuration::from_secs(1))
    );

    let now = e1_end + SignedDuration::from_secs(1);
    let (outcome, events) = client.run(Some(&manifest(&[e1.clone(), e2.clone()])), now);
    assert_eq!(
        events,
        [terminated("E1", "EXPIRED"), rejected("E2", "startTime")]
    );
    assert_eq!(outcome.active, None);
    assert_eq!(
        outcome.next_wake_up.map(|at| at.duration_since(now)),
        Some(e2_start.duration_since(now))
    );

    // E2's package does not match its hash: INSTALL_FAILURE; E1 (was-active) is not logged.
    e2["xpiHash"] = json!(BAD_HASH);
    let events = client.events(&manifest(&[e1.clone(), e2.clone()]), e2_start);
    assert_eq!(events, [install_failure("E2", &mismatch())]);
    assert!(client.entries["E2"].failed_start);
    // While the hash stays bad, the failed start is not retried.
    let events = client.events(&manifest(&[e1.clone(), e2.clone()]), e2_start + days(1) / 2);
    assert_eq!(events, [rejected("E2", "failedStart")]);

    e2["xpiHash"] = json!(GOOD_HASH);
    let events = client.events(&manifest(&[e1.clone(), e2.clone()]), e2_start + days(1));
    assert_eq!(events, [activated("E2")]);
    assert!(!client.entries["E2"].failed_start);

    let now = e2_start + days(1);
    let (stopped, events) = client.disable(TerminationKind::AddonUninstalled, now);
    assert!(stopped);
    assert_eq!(events, [terminated("E2", "ADDON_UNINSTALLED")]);
    assert_eq!(client.active(), None);

    let e3 = exp("E3", json!({"startTime": secs(now)}));
    let events = client.events(&manifest(&[e1.clone(), e2.clone(), e3.clone()]), now);
    assert_eq!(events, [activated("E3")]);
    let (stopped, events) = client.disable(TerminationKind::FromApi, now);
    assert!(stopped);
    assert_eq!(events, [terminated("E3", "FROM_API")]);

    let mut e4 = exp("E4", json!({"startTime": secs(now)}));
    let all = |e4: &Value| manifest(&[e1.clone(), e2.clone(), e3.clone(), e4.clone()]);
    assert_eq!(client.events(&all(&e4), now), [activated("E4")]);
    e4["os"] = json!(["Plan9"]);
    assert_eq!(client.events(&all(&e4), now), [rechecked("E4", "os")]);
    // Everything ran once: nothing is logged or started any more.
    assert_eq!(client.events(&all(&e4), now + days(1)), []);
    assert_eq!(client.active(), None);
    assert!(!client.disable(TerminationKind::FromApi, now).0);
}

// ---- test_api behaviours ----

#[test]
fn disabling_an_active_experiment_stops_it_for_good() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [activated("E")]
    );
    let events = client.events(&manifest(&[exp("E", json!({"disabled": true}))]), now);
    assert_eq!(events, [rechecked("E", "disabled")]);
    assert_eq!(
        client.take_log(),
        [
            "install E https://example.com/E.xpi sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
            "uninstall E https://example.com/E.xpi"
        ]
    );
    // Removing `disabled` again does not restart it (was-active, not logged).
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now + days(1) / 4),
        []
    );
    assert_eq!(client.active(), None);
    assert!(client.entries["E"].end_date.is_some());
}

#[test]
fn frozen_blocks_new_starts_but_not_the_running_experiment() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let frozen = manifest(&[exp("E", json!({"frozen": true}))]);
    let thawed = manifest(&[exp("E", json!({}))]);
    assert_eq!(client.events(&frozen, now), [rejected("E", "frozen")]);
    assert_eq!(client.active(), None);
    assert_eq!(client.events(&thawed, now), [activated("E")]);
    assert_eq!(
        client.events(&frozen, now + SignedDuration::from_secs(60)),
        []
    );
    assert_eq!(client.active(), Some("E"));
}

#[test]
fn max_start_time_only_stops_new_starts() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let e = |max_start: Timestamp| {
        exp(
            "E",
            json!({"maxStartTime": secs(max_start), "maxActiveSeconds": 10 * DAY}),
        )
    };
    assert_eq!(client.events(&manifest(&[e(now)]), now), [activated("E")]);
    assert_eq!(client.events(&manifest(&[e(now)]), now + days(2)), []);
    assert_eq!(client.active(), Some("E"));
    let mut other = Client::new();
    assert_eq!(
        other.events(&manifest(&[e(now)]), now + days(2)),
        [rejected("E", "maxStartTime")]
    );
}

#[test]
fn an_active_experiment_missing_from_the_manifest_keeps_running_until_its_expiry() {
    let start = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let e = exp("E", json!({"maxActiveSeconds": 10 * DAY}));
    assert_eq!(client.events(&manifest(&[e]), start), [activated("E")]);

    // Removed from the manifest: still running, and its expiry is still scheduled.
    let empty = manifest(&[]);
    let (outcome, events) = client.run(Some(&empty), start + days(1));
    assert_eq!(events, []);
    assert_eq!(outcome.active.as_deref(), Some("E"));
    assert_eq!(
        outcome.next_wake_up,
        Some(start + days(10) + SignedDuration::from_secs(1))
    );
    // No manifest at all (fetch failed, nothing cached): the same.
    let (outcome, events) = client.run(None, start + days(2));
    assert_eq!(events, []);
    assert_eq!(
        outcome.next_wake_up,
        Some(start + days(10) + SignedDuration::from_secs(1))
    );
    assert_eq!(client.run(Some(&empty), start + days(10)).1, []);

    let (outcome, events) = client.run(
        Some(&empty),
        start + days(10) + SignedDuration::from_secs(1),
    );
    assert_eq!(events, [terminated("E", "EXPIRED")]);
    assert_eq!(outcome.active, None);
    assert_eq!(outcome.next_wake_up, None);
}

#[test]
fn an_active_experiment_missing_from_the_manifest_is_still_rechecked() {
    let start = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), start),
        [activated("E")]
    );
    client.context.channel = Some("beta".into());
    let (_, events) = client.run(None, start + SignedDuration::from_secs(60));
    assert_eq!(events, [rechecked("E", "channel")]);
}

#[test]
fn a_changed_package_of_the_active_experiment_is_reinstalled() {
    let now = ts("2014-06-06T12:00:00Z");
    let other_hash = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let mut client = Client::new();
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [activated("E")]
    );
    client.take_log();

    // The same manifest again: nothing to do.
    assert_eq!(client.events(&manifest(&[exp("E", json!({}))]), now), []);
    assert_eq!(client.take_log(), Vec::<String>::new());
    // The same hash in upper case is not a change.
    let upper = GOOD_HASH.replace("cb1eb", "CB1EB");
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({"xpiHash": upper}))]), now),
        []
    );
    assert_eq!(client.take_log(), Vec::<String>::new());

    // Hash and URL change: the new package replaces the old one, the experiment keeps running.
    let changed = exp(
        "E",
        json!({"xpiURL": "https://example.com/E-2.xpi", "xpiHash": other_hash}),
    );
    assert_eq!(client.events(&manifest(&[changed]), now), []);
    assert_eq!(
        client.take_log(),
        [format!(
            "install E https://example.com/E-2.xpi {other_hash}"
        )]
    );
    let entry = &client.entries["E"];
    assert_eq!(
        entry.installed.as_ref().map(|p| p.url.as_str()),
        Some("https://example.com/E-2.xpi")
    );
    assert!(!entry.needs_update);
    assert!(entry.enabled);

    // The URL alone (product decision: rule 10 as the document states it).
    let moved = exp(
        "E",
        json!({"xpiURL": "https://cdn.example.com/E-2.xpi", "xpiHash": other_hash}),
    );
    assert_eq!(client.events(&manifest(&[moved]), now), []);
    assert_eq!(
        client.take_log(),
        [format!(
            "install E https://cdn.example.com/E-2.xpi {other_hash}"
        )]
    );

    // The hash alone.
    let rebuilt = exp("E", json!({"xpiURL": "https://cdn.example.com/E-2.xpi"}));
    assert_eq!(client.events(&manifest(&[rebuilt]), now), []);
    assert_eq!(
        client.take_log(),
        [format!(
            "install E https://cdn.example.com/E-2.xpi {GOOD_HASH}"
        )]
    );
    assert_eq!(client.active(), Some("E"));
}

#[test]
fn a_failed_update_keeps_the_old_package_and_is_retried() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [activated("E")]
    );
    let broken = exp("E", json!({"xpiHash": BAD_HASH}));
    let (outcome, events) = client.run(Some(&manifest(std::slice::from_ref(&broken))), now);
    assert_eq!(events, [install_failure("E", &mismatch())]);
    assert_eq!(outcome.active.as_deref(), Some("E"));
    assert_eq!(outcome.problems.len(), 1, "{:?}", outcome.problems);
    let entry = &client.entries["E"];
    assert!(entry.needs_update);
    assert_eq!(
        entry.installed.as_ref().map(|p| p.hash.as_str()),
        Some(GOOD_HASH)
    );
    client.take_log();

    // The next run retries; once the manifest is fixed the update goes through.
    assert_eq!(
        client.events(&manifest(&[broken]), now),
        [install_failure("E", &mismatch())]
    );
    let fixed = exp(
        "E",
        json!({"xpiHash": "sha1:1111111111111111111111111111111111111111"}),
    );
    assert_eq!(client.events(&manifest(&[fixed]), now), []);
    assert!(!client.entries["E"].needs_update);
}

#[test]
fn a_new_url_clears_a_failed_start() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    client
        .installer
        .broken_urls
        .insert("https://example.com/E.xpi".into());
    let failure = InstallError::Fetch {
        url: "https://example.com/E.xpi".into(),
        message: "connection refused".into(),
    };
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [install_failure("E", &failure)]
    );
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [rejected("E", "failedStart")]
    );
    let moved = exp("E", json!({"xpiURL": "https://mirror.example.com/E.xpi"}));
    assert_eq!(client.events(&manifest(&[moved]), now), [activated("E")]);
}

#[test]
fn a_failed_install_moves_on_to_the_next_experiment() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let m = manifest(&[
        exp("A", json!({"xpiHash": BAD_HASH})),
        exp("B", json!({"os": ["Plan9"]})),
        exp("C", json!({})),
        exp("D", json!({})),
    ]);
    assert_eq!(
        client.events(&m, now),
        [
            install_failure("A", &mismatch()),
            rejected("B", "os"),
            activated("C")
        ]
    );
    // C has the slot; D, also applicable, is not evaluated while C runs.
    assert_eq!(client.events(&m, now), []);
}

#[test]
fn turning_the_service_off_stops_the_active_experiment_and_starts_nothing() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let m = manifest(&[exp("A", json!({})), exp("B", json!({}))]);
    assert_eq!(client.events(&m, now), [activated("A")]);
    client.enabled = false;
    let (outcome, events) = client.run(Some(&m), now);
    assert_eq!(events, [terminated("A", "SERVICE_DISABLED")]);
    assert_eq!(outcome.active, None);
    assert_eq!(outcome.next_wake_up, None);
    assert_eq!(client.run(Some(&m), now).1, []);
    // Back on: A ran already, B starts.
    client.enabled = true;
    assert_eq!(client.events(&m, now), [activated("B")]);
}

#[test]
fn an_expired_active_experiment_is_expired_even_when_the_service_is_off() {
    let start = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    assert_eq!(
        client.events(&manifest(&[exp("A", json!({}))]), start),
        [activated("A")]
    );
    client.enabled = false;
    let (_, events) = client.run(Some(&manifest(&[exp("A", json!({}))])), start + days(2));
    assert_eq!(events, [terminated("A", "EXPIRED")]);
}

#[test]
fn jsfilter_reasons_reach_the_events() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    client
        .js
        .0
        .insert("throws".into(), JsFilterOutcome::Threw("some error".into()));
    client.js.0.insert("false".into(), JsFilterOutcome::Falsy);
    let m = manifest(&[
        exp("T", json!({"jsfilter": "throws"})),
        exp("F", json!({"jsfilter": "false"})),
        exp("X", json!({"jsfilter": "123, this won't work"})),
    ]);
    assert_eq!(
        client.events(&m, now),
        [
            rejected("T", "jsfilter-threw").with("detail", "some error"),
            rejected("F", "jsfilter-false"),
            rejected("X", "jsfilter-evalfailed"),
        ]
    );
    // A running experiment whose filter now throws is stopped with the message.
    let mut client = Client::new();
    client.js.0.insert("ok".into(), JsFilterOutcome::Truthy);
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({"jsfilter": "ok"}))]), now),
        [activated("E")]
    );
    client
        .js
        .0
        .insert("ok".into(), JsFilterOutcome::Threw("gone".into()));
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({"jsfilter": "ok"}))]), now),
        [rechecked("E", "jsfilter-threw").with("detail", "gone")]
    );
}

// ---- Rule 8: unknown manifest versions ----

#[test]
fn a_manifest_of_an_unknown_version_is_ignored_and_the_running_experiment_kept() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let e = exp("E", json!({"maxActiveSeconds": 10 * DAY}));
    assert_eq!(
        client.events(&manifest(std::slice::from_ref(&e)), now),
        [activated("E")]
    );
    let before = client.entries.clone();

    // Version 2 lists E disabled and a new experiment: none of it is taken into account.
    let v2 = manifest_with_version(
        json!(2),
        &[exp("E", json!({"disabled": true})), exp("N", json!({}))],
    );
    let (outcome, events) = client.run(Some(&v2), now + days(1));
    assert_eq!(events, []);
    assert_eq!(
        outcome.ignored_reason.as_deref(),
        Some("unsupported manifest version 2")
    );
    assert_eq!(outcome.active.as_deref(), Some("E"));
    assert_eq!(
        outcome.next_wake_up,
        Some(now + days(10) + SignedDuration::from_secs(1))
    );
    assert_eq!(client.entries, before);

    let (outcome, events) = client.run(
        Some(&manifest_with_version(json!(2), &[])),
        now + days(10) + SignedDuration::from_secs(1),
    );
    assert_eq!(events, [terminated("E", "EXPIRED")]);
    assert_eq!(outcome.active, None);

    let unversioned = parse(
        "m.json",
        &json!({"experiments": [exp("N", json!({}))]}).to_string(),
    )
    .value
    .unwrap();
    let (outcome, events) = client.run(Some(&unversioned), now + days(11));
    assert_eq!(events, []);
    assert_eq!(
        outcome.ignored_reason.as_deref(),
        Some("the manifest has no version")
    );
    assert!(!client.entries.contains_key("N"));
}

// ---- Rules 3 and 7: random values ----

#[test]
fn the_random_value_is_drawn_once_and_kept_30_days_after_the_experiment_leaves() {
    let now = ts("2014-06-06T12:00:00Z");
    // The first value (0.9) is drawn when E is first seen, even though it cannot start yet;
    // every later draw would give 0.1.
    let mut client = Client::with_random(vec![0.9, 0.1]);
    let e = exp(
        "E",
        json!({"sample": 0.5, "startTime": secs(now + days(1))}),
    );
    assert_eq!(
        client.events(&manifest(std::slice::from_ref(&e)), now),
        [rejected("E", "startTime")]
    );
    assert_eq!(client.entries["E"].random_value, 0.9);
    let started = exp("E", json!({"sample": 0.5}));
    assert_eq!(
        client.events(&manifest(std::slice::from_ref(&started)), now + days(1)),
        [rejected("E", "sample")]
    );

    // E leaves the manifest: it must not start (rule 3); its value is kept 30 days.
    let left = now + days(1);
    let empty = manifest(&[]);
    assert_eq!(client.events(&empty, left + days(10)), []);
    assert_eq!(client.entries["E"].random_value, 0.9);
    assert_eq!(client.events(&empty, left + days(30)), []);
    assert!(client.entries.contains_key("E"));
    // Back within 30 days: the same value, so no second chance.
    assert_eq!(
        client.events(&manifest(std::slice::from_ref(&started)), left + days(30)),
        [rejected("E", "sample")]
    );

    // Gone for more than 30 days: forgotten; back again, it is a new experiment.
    let left = left + days(30);
    assert_eq!(client.events(&empty, left + days(30)), []);
    assert!(client.entries.contains_key("E"));
    assert_eq!(
        client.events(&empty, left + days(30) + SignedDuration::from_secs(1)),
        []
    );
    assert!(!client.entries.contains_key("E"));
    assert_eq!(
        client.events(&manifest(&[started]), left + days(31)),
        [activated("E")]
    );
    assert_eq!(client.entries["E"].random_value, 0.1);
}

#[test]
fn without_a_manifest_pending_entries_are_kept() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let e = exp("E", json!({"startTime": secs(now + days(100))}));
    assert_eq!(
        client.events(&manifest(&[e]), now),
        [rejected("E", "startTime")]
    );
    let (outcome, events) = client.run(None, now + days(90));
    assert_eq!(events, []);
    assert_eq!(outcome.next_wake_up, None);
    assert!(client.entries.contains_key("E"));
}

// ---- test_cache: history retention ----

#[test]
fn history_is_kept_180_days() {
    let base = ts("2014-06-01T12:00:00Z");
    let at = |d: i64| base + days(d);
    let window = |id: &str, start: i64, end: i64, max_active: i64, extra: Value| {
        let mut e = exp(
            id,
            json!({
                "startTime": secs(at(start)), "endTime": secs(at(end)),
                "maxActiveSeconds": max_active * DAY,
            }),
        );
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let e1 = window("E1", 50, 100, 50, json!({}));
    let e2 = window("E2", 200, 300, 100, json!({}));
    let e3 = window("E3", 0, 1000, 10, json!({"disabled": true}));
    let mut client = Client::new();

    assert_eq!(
        client.events(&manifest(&[e1.clone(), e2.clone(), e3.clone()]), at(50)),
        [activated("E1")]
    );
    assert_eq!(
        client.events(&manifest(&[e1.clone(), e2.clone(), e3.clone()]), at(100)),
        [
            terminated("E1", "EXPIRED"),
            rejected("E2", "startTime"),
            rejected("E3", "disabled")
        ]
    );
    // The server drops E1.
    let rest = manifest(&[e2.clone(), e3.clone()]);
    assert_eq!(client.events(&rest, at(200)), [activated("E2")]);

    // A restart with no manifest: E1 ended 180 days ago, kept; one more day and it is gone.
    assert_eq!(client.run(None, at(280)).1, []);
    assert!(client.entries.contains_key("E1"));
    let (outcome, events) = client.run(None, at(281));
    assert_eq!(events, []);
    let ids: Vec<&str> = client.entries.keys().map(String::as_str).collect();
    assert_eq!(ids, ["E2", "E3"]);
    assert_eq!(outcome.active.as_deref(), Some("E2"));

    // A manifest with no experiments: E3 never ran and was last listed 81 days ago: dropped;
    // E2 runs on.
    let (outcome, events) = client.run(Some(&manifest(&[])), at(281));
    assert_eq!(events, []);
    let ids: Vec<&str> = client.entries.keys().map(String::as_str).collect();
    assert_eq!(ids, ["E2"]);
    assert_eq!(outcome.active.as_deref(), Some("E2"));
}

#[test]
fn an_ended_experiment_the_manifest_still_lists_is_remembered_and_never_restarts() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let e = exp("E", json!({"maxActiveSeconds": 1000 * DAY}));
    assert_eq!(
        client.events(&manifest(std::slice::from_ref(&e)), now),
        [activated("E")]
    );
    assert!(client.disable(TerminationKind::FromApi, now).0);
    assert_eq!(
        client.events(&manifest(std::slice::from_ref(&e)), now + days(400)),
        []
    );
    assert_eq!(client.active(), None);
    assert!(client.entries.contains_key("E"));
}

// ---- Golden tables of test_conditions replayed through the runtime ----

/// Runs a fresh client (random value 0.5) on a one-experiment manifest at 2014-06-06 12:00 and
/// returns its events.
fn first_run(overrides: Value, js: &[(&str, JsFilterOutcome)]) -> Vec<TelemetryEvent> {
    let mut client = Client::new();
    for (source, outcome) in js {
        client.js.0.insert((*source).to_owned(), outcome.clone());
    }
    client.events(
        &manifest(&[exp("E", overrides)]),
        ts("2014-06-06T12:00:00Z"),
    )
}

#[test]
fn golden_condition_table() {
    let rows: &[(&str, Value, bool)] = &[
        ("appName", json!([]), false),
        ("appName", json!(["foo", "XPCShell-invalid"]), false),
        ("appName", json!(["x", "XPCShell"]), true),
        ("os", json!([]), false),
        ("os", json!(["42", "abcdef"]), false),
        ("os", json!(["XPCShell", "plan9"]), true),
        ("channel", json!([]), false),
        ("channel", json!(["foo", "nightly-invalid"]), false),
        ("channel", json!(["x", "nightly"]), true),
        ("locale", json!([]), false),
        ("locale", json!(["foo", "en-US-invalid"]), false),
        ("locale", json!(["x", "en-US"]), true),
        ("version", json!([]), false),
        (
            "version",
            json!(["-1", "1.0-invalid", "asdf", "0,4", "99.99", "0.1.1.1"]),
            false,
        ),
        ("version", json!(["99999999.999", "-1", "1.0"]), true),
        ("minVersion", json!("1.0.1"), false),
        ("minVersion", json!("1.0b1"), true),
        ("minVersion", json!("1.0"), true),
        ("minVersion", json!("0.9"), true),
        ("maxVersion", json!("0.1"), false),
        ("maxVersion", json!("0.9.9"), false),
        ("maxVersion", json!("1.0b1"), false),
        ("maxVersion", json!("1.0"), true),
        ("maxVersion", json!("1.7pre"), true),
        ("buildIDs", json!([]), false),
        ("buildIDs", json!(["x", "2014060601-invalid"]), false),
        ("buildIDs", json!(["x", "2014060601"]), true),
        ("minBuildID", json!("2014060501"), true),
        ("minBuildID", json!("2014060601"), true),
        ("minBuildID", json!("2014060701"), false),
        ("maxBuildID", json!("2014010101"), false),
        ("maxBuildID", json!("2014060601"), true),
        ("maxBuildID", json!("2014060901"), true),
        ("sample", json!(0.0), false),
        ("sample", json!(0.1), false),
        ("sample", json!(0.5), true),
        ("sample", json!(0.6), true),
        ("sample", json!(1.0), true),
        ("disabled", json!(true), false),
        ("disabled", json!(false), true),
        ("frozen", json!(true), false),
        ("frozen", json!(false), true),
    ];
    for (field, value, applicable) in rows {
        let events = first_run(json!({ *field: value }), &[]);
        let expected = if *applicable {
            activated("E")
        } else {
            rejected("E", field)
        };
        assert_eq!(events, [expected], "{field} = {value}");
    }
    // frozen + disabled: the first failing check is reported.
    for (frozen, disabled, expected) in [
        (true, true, Some("disabled")),
        (true, false, Some("frozen")),
        (false, true, Some("disabled")),
        (false, false, None),
    ] {
        let events = first_run(json!({"frozen": frozen, "disabled": disabled}), &[]);
        let expected = expected.map_or_else(|| activated("E"), |reason| rejected("E", reason));
        assert_eq!(events, [expected], "frozen {frozen}, disabled {disabled}");
    }
}

#[test]
fn golden_jsfilter_table() {
    use JsFilterOutcome::{EvalFailed, Falsy, Threw, Truthy};
    let rows = [
        ("return true", Truthy, None),
        ("return 123", Truthy, None),
        ("return false", Falsy, Some("jsfilter-false")),
        ("return ''", Falsy, Some("jsfilter-false")),
        ("return undefined", Falsy, Some("jsfilter-false")),
        ("throw", Threw("some error".into()), Some("jsfilter-threw")),
        (
            "123, this won't work",
            EvalFailed("SyntaxError".into()),
            Some("jsfilter-evalfailed"),
        ),
    ];
    for (source, outcome, reason) in rows {
        let events = first_run(json!({"jsfilter": source}), &[(source, outcome)]);
        let expected = match reason {
            None => activated("E"),
            Some("jsfilter-threw") => rejected("E", "jsfilter-threw").with("detail", "some error"),
            Some(reason) => rejected("E", reason),
        };
        assert_eq!(events, [expected], "{source}");
    }
}

#[test]
fn golden_times_table() {
    let now = ts("2014-06-06T12:00:00Z");
    let t = |d: i64| secs(now + days(d));
    let rows: &[(Value, Option<&str>)] = &[
        (json!({"startTime": t(-5), "endTime": t(10)}), None),
        (json!({"startTime": t(0), "endTime": t(10)}), None),
        (
            json!({"startTime": t(5), "endTime": t(10)}),
            Some("startTime"),
        ),
        (
            json!({"startTime": t(-5), "endTime": t(-10)}),
            Some("endTime"),
        ),
        (
            json!({"startTime": t(-5), "endTime": t(-5)}),
            Some("endTime"),
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxStartTime": t(-15)}),
            Some("maxStartTime"),
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxStartTime": t(-1)}),
            Some("maxStartTime"),
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxStartTime": t(-10)}),
            Some("maxStartTime"),
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxStartTime": t(0)}),
            None,
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxStartTime": t(1)}),
            None,
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxActiveSeconds": 5 * DAY}),
            None,
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxActiveSeconds": 10 * DAY}),
            None,
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxActiveSeconds": 15 * DAY}),
            None,
        ),
        (
            json!({"startTime": t(-10), "endTime": t(10), "maxActiveSeconds": 20 * DAY}),
            None,
        ),
    ];
    for (overrides, reason) in rows {
        let events = first_run(overrides.clone(), &[]);
        let expected = reason.map_or_else(|| activated("E"), |r| rejected("E", r));
        assert_eq!(events, [expected], "{overrides}");
    }
}

// ---- Annotations and branches ----

#[test]
fn the_active_experiment_is_annotated_with_its_branch() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    assert!(annotations(&client.entries).is_empty());
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [activated("E")]
    );
    let annotation = &annotations(&client.entries)["E"];
    assert_eq!(
        (annotation.branch.as_str(), annotation.kind.as_str()),
        ("default", "manifest-experiment")
    );
    set_branch(&mut client.entries, "E", "treatment").unwrap();
    assert_eq!(annotations(&client.entries)["E"].branch, "treatment");
    assert!(set_branch(&mut client.entries, "nope", "x").is_err());
    // The branch survives a round trip through the state file's JSON.
    let json = serde_json::to_string(&client.entries).unwrap();
    let back: BTreeMap<String, ManifestEntry> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, client.entries);
    client.disable(TerminationKind::FromApi, now);
    assert!(annotations(&client.entries).is_empty());
}

// ---- Damaged state ----

#[test]
fn a_state_with_two_active_experiments_keeps_the_one_with_priority() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    let m = manifest(&[exp("A", json!({})), exp("B", json!({}))]);
    assert_eq!(client.events(&m, now), [activated("A")]);
    let mut b = client.entries["A"].clone();
    b.id = "B".into();
    client.entries.insert("B".into(), b);
    let (outcome, events) = client.run(Some(&m), now);
    assert_eq!(events, [rechecked("B", "another-experiment-active")]);
    assert_eq!(outcome.active.as_deref(), Some("A"));
}

#[test]
fn an_active_entry_without_usable_data_is_stopped() {
    let now = ts("2014-06-06T12:00:00Z");
    let mut client = Client::new();
    assert_eq!(
        client.events(&manifest(&[exp("E", json!({}))]), now),
        [activated("E")]
    );
    client.entries.get_mut("E").unwrap().manifest_data = Some(json!({"id": "E"}));
    let (outcome, events) = client.run(None, now);
    assert_eq!(events, [rechecked("E", "manifest-data")]);
    assert_eq!(outcome.active, None);
}
