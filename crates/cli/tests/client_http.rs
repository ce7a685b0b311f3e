//! The reference client over HTTP: the real `flightdeck` binary against a static server on
//! 127.0.0.1. Conditional requests (`ETag`/`If-None-Match`), refused manifests with backoff
//! and the last good manifest, a server that is down, a newer manifest after the backoff, and
//! the telemetry upload.
//!
//! Every run gives `--now` and `--fixed-random 0.5`, so backoff times are exact: the first
//! failure waits 0.5 × 60 s = 30 s, the second 0.5 × 120 s = 60 s.

mod common;
#[path = "common/static_server.rs"]
mod static_server;

use std::path::Path;

use common::TempDir;
use serde_json::{Value, json};
use static_server::{StaticServer, closed_port_url, flightdeck_loopback};

const USER_ID: &str = "11111111-2222-3333-4444-555555555555";

const CONTEXT: &str = r#"{
    "userId": "11111111-2222-3333-4444-555555555555",
    "channel": "release",
    "prefs": {"http.a": {"default": 0}}
}"#;

/// The time of the first run; later runs are given relative to it.
const T0: &str = "2026-11-21T12:00:00Z";

fn at(offset_seconds: i64) -> String {
    let t0: jiff::Timestamp = T0.parse().expect("time");
    t0.checked_add(jiff::SignedDuration::from_secs(offset_seconds))
        .expect("time")
        .to_string()
}

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

fn experiment(id: u64, slug: &str, pref: &str, value: i64) -> Value {
    json!({
        "id": id,
        "name": slug,
        "revision_id": format!("{id}"),
        "action": "multi-preference-experiment",
        "arguments": {
            "slug": slug,
            "userFacingName": slug,
            "userFacingDescription": "an HTTP test",
            "isEnrollmentPaused": false,
            "branches": [{"slug": "treatment", "ratio": 1, "preferences": {
                pref: {"preferenceType": "integer", "preferenceBranchType": "user",
                       "preferenceValue": value}}}]
        },
        "filter_expression": "normandy.channel == 'release'",
        "capabilities": ["action.multi-preference-experiment"]
    })
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let run = flightdeck_loopback(dir, args);
    assert_eq!(run.code, 0, "{args:?}:\n{}\n{}", run.stdout, run.stderr);
    run.stdout
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
        ok(
            tmp.path(),
            &["keys", "generate", "--out", keys.to_str().expect("path")],
        );
        let context = tmp.write("context.json", CONTEXT);
        let path = |p: &Path| p.to_str().expect("path").to_owned();
        Setup {
            key: path(&keys.join("signing-key.pem")),
            public: path(&keys.join("public-key.pem")),
            context: path(&context),
            profile: path(&tmp.path().join("profile")),
            tmp,
        }
    }

    /// The signed manifest of `recipes` with serial `serial`, as bytes.
    fn signed(&self, recipes: &Value, serial: u64) -> Vec<u8> {
        let input = self
            .tmp
            .write(&format!("input-{serial}.json"), recipes.to_string());
        let out = self.tmp.path().join(format!("signed-{serial}.json"));
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
                out.to_str().expect("path"),
                input.to_str().expect("path"),
            ],
        );
        std::fs::read(&out).expect("read the signed manifest")
    }

    /// `client run --url URL` at `now`, with `extra` arguments.
    fn run(&self, url: &str, now: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "client",
            "run",
            "--profile",
            &self.profile,
            "--url",
            url,
            "--context",
            &self.context,
            "--trust-key",
            &self.public,
            "--now",
            now,
            "--fixed-random",
            "0.5",
        ];
        args.extend_from_slice(extra);
        ok(self.tmp.path(), &args)
    }

    fn json(&self, command: &str) -> Value {
        let out = ok(
            self.tmp.path(),
            &["client", command, "--profile", &self.profile, "--json"],
        );
        serde_json::from_str(&out).expect("JSON")
    }

    /// The `manifest` member of `client status --json`.
    fn manifest_state(&self) -> Value {
        self.json("status")["manifest"].clone()
    }

    fn pref(&self, name: &str) -> Value {
        self.json("prefs")[name].clone()
    }
}

#[test]
fn an_unchanged_manifest_costs_a_304_and_changes_nothing() {
    let s = Setup::new("http-etag");
    let server = StaticServer::start();
    let url = server.manifest_url();
    server.serve_manifest(
        s.signed(&json!([rollout(1, "roll-a", "http.a", 1)]), 1),
        "\"m-1\"",
    );

    let out = s.run(&url, T0, &[]);
    assert!(out.contains("manifest: accepted (serial 1)"), "{out}");
    assert!(out.contains("pref default http.a = 1"), "{out}");
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/manifest.json");
    assert_eq!(requests[0].header("if-none-match"), None);
    let state = s.manifest_state();
    assert_eq!(state["etag"], "\"m-1\"");
    assert_eq!(state["serial"], 1);
    assert_eq!(state["source"], url.as_str());
    assert_eq!(state["failures"], 0);

    let out = s.run(&url, &at(3600), &[]);
    common::assert_lines(&out, &["manifest: unchanged", "no changes"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("if-none-match"), Some("\"m-1\""));
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    assert_eq!(s.manifest_state()["etag"], "\"m-1\"");
}

#[test]
fn refused_manifests_back_off_and_a_newer_one_is_taken_after_the_backoff() {
    let s = Setup::new("http-backoff");
    let server = StaticServer::start();
    let url = server.manifest_url();
    let good = s.signed(&json!([rollout(1, "roll-a", "http.a", 1)]), 1);
    server.serve_manifest(good.clone(), "\"m-1\"");
    let out = s.run(&url, T0, &[]);
    assert!(out.contains("manifest: accepted (serial 1)"), "{out}");

    // Tampered after signing: refused, the last good manifest runs, prefs stay.
    let mut tampered: Value = serde_json::from_slice(&good).expect("JSON");
    tampered["normandy"][0]["recipe"]["arguments"]["preferences"][0]["value"] = json!(666);
    server.serve_manifest(tampered.to_string(), "\"m-tampered\"");
    let t1 = 3600;
    let out = s.run(&url, &at(t1), &[]);
    assert!(out.contains("refused"), "{out}");
    assert!(out.contains("using the last good manifest"), "{out}");
    assert!(out.contains("no changes"), "{out}");
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    assert_eq!(server.requests().len(), 2);
    let state = s.manifest_state();
    assert_eq!(state["failures"], 1);
    assert_eq!(state["nextFetchAt"], at(t1 + 30).as_str());
    assert_eq!(
        state["etag"], "\"m-1\"",
        "a refused body never becomes the etag"
    );
    assert_eq!(state["serial"], 1);
    assert!(
        state["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{state}"
    );

    // Before nextFetchAt the server is not contacted at all.
    let out = s.run(&url, &at(t1 + 10), &[]);
    assert!(
        out.contains(&format!(
            "manifest: backing off until {}; using the last good manifest",
            at(t1 + 30)
        )),
        "{out}"
    );
    assert_eq!(server.requests().len(), 2, "no request during the backoff");
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    let during = s.manifest_state();
    assert_eq!(during["failures"], 1);
    assert_eq!(during["nextFetchAt"], at(t1 + 30).as_str());
    assert_eq!(
        during["lastError"], state["lastError"],
        "waiting out the backoff does not hide why it started"
    );

    // At nextFetchAt it tries again; garbage is refused too and the window doubles.
    server.serve_manifest("<html>502 Bad Gateway</html>", "\"m-garbage\"");
    let out = s.run(&url, &at(t1 + 30), &[]);
    assert!(out.contains("invalid JSON"), "{out}");
    assert!(out.contains("using the last good manifest"), "{out}");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    let state = s.manifest_state();
    assert_eq!(state["failures"], 2);
    assert_eq!(state["nextFetchAt"], at(t1 + 30 + 60).as_str());

    // A newer manifest is published; it is not fetched before the backoff ends …
    server.serve_manifest(
        s.signed(&json!([rollout(1, "roll-a", "http.a", 2)]), 2),
        "\"m-2\"",
    );
    let out = s.run(&url, &at(t1 + 30 + 59), &[]);
    assert!(out.contains("backing off until"), "{out}");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));

    // … and taken at the first run after it.
    let out = s.run(&url, &at(t1 + 30 + 60), &[]);
    assert!(out.contains("manifest: accepted (serial 2)"), "{out}");
    assert!(out.contains("pref default http.a = 2"), "{out}");
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[3].header("if-none-match"), Some("\"m-1\""));
    assert_eq!(s.pref("http.a"), json!({"default": 2, "user": null}));
    let state = s.manifest_state();
    assert_eq!(state["failures"], 0);
    assert_eq!(state.get("nextFetchAt"), None);
    assert_eq!(state.get("lastError"), None);
    assert_eq!(state["etag"], "\"m-2\"");
    assert_eq!(state["serial"], 2);
}

#[test]
fn a_server_that_is_down_leaves_the_last_good_manifest_running() {
    let s = Setup::new("http-down");
    let server = StaticServer::start();
    let url = server.manifest_url();
    server.serve_manifest(
        s.signed(&json!([rollout(1, "roll-a", "http.a", 1)]), 1),
        "\"m-1\"",
    );
    let out = s.run(&url, T0, &[]);
    assert!(out.contains("manifest: accepted (serial 1)"), "{out}");
    drop(server);

    // The same URL, its port now closed.
    let out = s.run(&url, &at(3600), &[]);
    assert!(out.contains("cannot connect"), "{out}");
    assert!(out.contains("using the last good manifest"), "{out}");
    assert!(out.contains("no changes"), "{out}");
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    let state = s.manifest_state();
    assert_eq!(state["failures"], 1);
    assert_eq!(state["nextFetchAt"], at(3600 + 30).as_str());
    assert_eq!(state["serial"], 1);
    assert_eq!(s.json("status")["rollouts"][0]["state"], "active");

    // A port that never had a server: the same.
    let out = s.run(&closed_port_url(), &at(7200), &[]);
    assert!(out.contains("using the last good manifest"), "{out}");
    assert_eq!(s.pref("http.a"), json!({"default": 1, "user": null}));
    assert_eq!(s.manifest_state()["failures"], 2);
}

#[test]
fn queued_events_are_uploaded_and_stay_queued_while_the_endpoint_fails() {
    let s = Setup::new("http-telemetry");
    let server = StaticServer::start();
    let url = server.manifest_url();
    let telemetry = server.telemetry_url();
    server.serve_manifest(
        s.signed(
            &json!([
                rollout(1, "roll-a", "http.a", 1),
                experiment(2, "exp-b", "http.b", 7)
            ]),
            1,
        ),
        "\"m-1\"",
    );

    // The endpoint fails: the events stay queued.
    server.set_telemetry_status(500);
    let out = s.run(&url, T0, &["--telemetry-url", &telemetry]);
    assert!(
        out.contains("event enroll preference_rollout roll-a"),
        "{out}"
    );
    assert!(out.contains("event enroll preference_study exp-b"), "{out}");
    assert!(out.contains("telemetry upload: Failed"), "{out}");
    let queued = s.json("events");
    let events = queued.as_array().expect("an array");
    let mut enrolled: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["method"].as_str().expect("method"),
                e["object"].as_str().expect("object"),
                e["value"].as_str().expect("value"),
            )
        })
        .collect();
    enrolled.sort();
    assert_eq!(
        enrolled,
        [
            ("enroll", "preference_rollout", "roll-a"),
            ("enroll", "preference_study", "exp-b")
        ]
    );
    assert_eq!(s.json("status")["queuedEvents"], 2);
    let posts = server.requests_to("POST", "/telemetry");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    assert_eq!(
        posts[0].json(),
        json!({"clientId": USER_ID, "events": queued})
    );

    // Later, the endpoint works: the same events go out, and the queue is empty.
    server.set_telemetry_status(200);
    let out = s.run(&url, &at(3600), &["--telemetry-url", &telemetry]);
    assert!(out.contains("manifest: unchanged"), "{out}");
    assert!(
        out.contains("telemetry upload: Uploaded { count: 2, dropped: 0 }"),
        "{out}"
    );
    let posts = server.requests_to("POST", "/telemetry");
    assert_eq!(posts.len(), 2);
    assert_eq!(
        posts[1].json(),
        json!({"clientId": USER_ID, "events": queued})
    );
    assert_eq!(s.json("events"), json!([]));
    assert_eq!(s.json("status")["queuedEvents"], 0);

    // Nothing queued, nothing sent.
    s.run(&url, &at(7200), &["--telemetry-url", &telemetry]);
    assert_eq!(server.requests_to("POST", "/telemetry").len(), 2);
}
