//! OFREP over HTTP: the routes on a loopback server, driven by reqwest and by a real
//! OpenFeature client (`tests/ofrep/check.mjs`: the JavaScript server SDK with the OFREP
//! provider).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use flightdeck_server::ofrep::{OfrepIndex, OfrepState, router};
use serde_json::{Value, json};

use crate::ofrep_fixture as fixture;

/// 2026-06-01T12:00:00Z, before the fixture's schedule starts.
const START_SECONDS: i64 = 1_780_315_200;

/// A server on a loopback port, and the handles that change what it serves.
struct TestServer {
    url: String,
    /// The production index, replaceable (a new publication).
    production: Arc<Mutex<Arc<OfrepIndex>>>,
    /// The clock, in epoch seconds.
    clock: Arc<AtomicI64>,
}

fn fixture_index(seed: &str) -> Arc<OfrepIndex> {
    Arc::new(
        OfrepIndex::from_documents(fixture::CLOUDBEES, fixture::NORMANDY, seed)
            .expect("the fixture reads"),
    )
}

/// Starts the OFREP routes on 127.0.0.1:0: `production` serves the fixture, `staging` only
/// the `static-flag` flag, set to `false`.
async fn start() -> TestServer {
    let production = Arc::new(Mutex::new(fixture_index("publication-1")));
    let staging = Arc::new(
        OfrepIndex::from_documents(
            &[(
                "static-flag.yml",
                "type: experiment\nflag: static-flag\nvalue: false\n",
            )],
            &[],
            "staging-1",
        )
        .expect("reads"),
    );
    let clock = Arc::new(AtomicI64::new(START_SECONDS));
    let indexes = {
        let production = Arc::clone(&production);
        move |environment: &str| match environment {
            "production" => production.lock().ok().map(|index| Arc::clone(&index)),
            "staging" => Some(Arc::clone(&staging)),
            _ => None,
        }
    };
    let time = {
        let clock = Arc::clone(&clock);
        move || jiff::Timestamp::from_second(clock.load(Ordering::SeqCst)).expect("a valid time")
    };
    let app = router::<OfrepState>().with_state(OfrepState::new(indexes, time));
    // Bound before the task starts: connections queue until it accepts them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serves");
    });
    TestServer {
        url: format!("http://{address}"),
        production,
        clock,
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|err| panic!("{err}: {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    Reply {
        status,
        headers,
        text,
    }
}

fn flag_url(server: &TestServer, key: &str) -> String {
    format!("{}/ofrep/v1/evaluate/flags/{key}", server.url)
}

fn bulk_url(server: &TestServer) -> String {
    format!("{}/ofrep/v1/evaluate/flags", server.url)
}

fn context(value: Value) -> String {
    json!({ "context": value }).to_string()
}

#[tokio::test]
async fn single_flag_answers_and_errors() {
    let server = start().await;
    let reply = post(
        &flag_url(&server, "banner-text"),
        &[],
        context(json!({"targetingKey": "u", "plan": "beta"})),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"key": "banner-text", "value": "fancy", "reason": "TARGETING_MATCH",
            "variant": "fancy", "metadata": {"rule": "condition[0]", "source": "cloudbees"}})
    );

    let reply = post(&flag_url(&server, "no-such-flag"), &[], context(json!({}))).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["errorCode"], "FLAG_NOT_FOUND");
    assert_eq!(reply.json()["key"], "no-such-flag");

    let reply = post(&flag_url(&server, "checkout-flow"), &[], context(json!({}))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["errorCode"], "TARGETING_KEY_MISSING");

    let reply = post(&flag_url(&server, "cycle-a"), &[], context(json!({}))).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["errorCode"], "GENERAL");

    let reply = post(&flag_url(&server, "old-feature"), &[], context(json!({}))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"key": "old-feature", "reason": "DISABLED",
            "metadata": {"rule": "disabled", "source": "cloudbees"}})
    );

    let reply = post(
        &flag_url(&server, "network.trr.mode"),
        &[],
        context(json!({"targetingKey": "u", "channel": "release"})),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["value"], 2);
    assert_eq!(reply.json()["metadata"]["recipeId"], 1);
}

#[tokio::test]
async fn bad_bodies_are_refused_with_json_failures() {
    let server = start().await;
    let url = flag_url(&server, "static-flag");
    for (body, status, code) in [
        ("{".to_owned(), 400, "PARSE_ERROR"),
        ("[1, 2]".to_owned(), 400, "PARSE_ERROR"),
        (r#"{"context": 5}"#.to_owned(), 400, "INVALID_CONTEXT"),
        (
            r#"{"context": {"targetingKey": 7}}"#.to_owned(),
            400,
            "INVALID_CONTEXT",
        ),
        (
            format!(r#"{{"context": {{"x": "{}"}}}}"#, "a".repeat(100 * 1024)),
            413,
            "PARSE_ERROR",
        ),
    ] {
        let reply = post(&url, &[], body).await;
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.json()["errorCode"], code);
        assert_eq!(reply.json()["key"], "static-flag");
    }
    // No body at all is an empty context.
    let reply = post(&url, &[], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["value"], true);

    let reply = post(&bulk_url(&server), &[], "{").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["errorCode"], "PARSE_ERROR");
    assert!(reply.json().get("key").is_none());

    let reply = reqwest::get(&url).await.expect("answers");
    assert_eq!(reply.status().as_u16(), 405);
}

#[tokio::test]
async fn environment_from_query_or_header_default_production() {
    let server = start().await;
    let body = context(json!({}));
    let production = post(&flag_url(&server, "static-flag"), &[], body.clone()).await;
    assert_eq!(production.json()["value"], true);
    let by_query = post(
        &format!("{}?environment=staging", flag_url(&server, "static-flag")),
        &[],
        body.clone(),
    )
    .await;
    assert_eq!(by_query.json()["value"], false);
    let by_header = post(
        &flag_url(&server, "static-flag"),
        &[("X-Flightdeck-Environment", "staging")],
        body.clone(),
    )
    .await;
    assert_eq!(by_header.json()["value"], false);
    let query_wins = post(
        &format!(
            "{}?environment=production",
            flag_url(&server, "static-flag")
        ),
        &[("X-Flightdeck-Environment", "staging")],
        body.clone(),
    )
    .await;
    assert_eq!(query_wins.json()["value"], true);
    let unknown = post(
        &flag_url(&server, "static-flag"),
        &[("X-Flightdeck-Environment", "nowhere")],
        body.clone(),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["errorCode"], "GENERAL");
    let unknown_bulk = post(
        &format!("{}?environment=nowhere", bulk_url(&server)),
        &[],
        body,
    )
    .await;
    assert_eq!(unknown_bulk.status, 400);
    assert_eq!(unknown_bulk.json()["errorCode"], "GENERAL");
}

#[tokio::test]
async fn bulk_etag_and_304() {
    let server = start().await;
    let url = bulk_url(&server);
    let body = context(json!({"targetingKey": "user-1", "plan": "beta", "channel": "release"}));
    let first = post(&url, &[], body.clone()).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_owned();
    let flags = first.json()["flags"].as_array().expect("flags").clone();
    let by_key: HashMap<&str, &Value> = flags
        .iter()
        .map(|flag| (flag["key"].as_str().expect("a key"), flag))
        .collect();
    assert_eq!(flags.len(), 17);
    assert_eq!(by_key["banner-text"]["value"], "fancy");
    assert_eq!(by_key["network.trr.mode"]["value"], 2);
    assert_eq!(by_key["media.autoplay.default"]["reason"], "DISABLED");
    assert_eq!(by_key["cycle-a"]["errorCode"], "GENERAL");

    // Same context (keys in another order), same content, same time: 304.
    let reordered =
        context(json!({"channel": "release", "plan": "beta", "targetingKey": "user-1"}));
    let again = post(&url, &[("If-None-Match", &etag)], reordered).await;
    assert_eq!(again.status, 304);
    assert_eq!(again.text, "");
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let listed = post(
        &url,
        &[("If-None-Match", &format!("\"other\", W/{etag}"))],
        body.clone(),
    )
    .await;
    assert_eq!(listed.status, 304);

    // Another context: 200 with another tag.
    let other = post(
        &url,
        &[("If-None-Match", &etag)],
        context(json!({"targetingKey": "user-2", "plan": "beta", "channel": "release"})),
    )
    .await;
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), Some(etag.as_str()));

    // New content, even with the same results: a new tag.
    *server.production.lock().expect("lock") = fixture_index("publication-2");
    let republished = post(&url, &[("If-None-Match", &etag)], body.clone()).await;
    assert_eq!(republished.status, 200);
    let etag2 = republished.header("etag").expect("an ETag").to_owned();
    assert_ne!(etag2, etag);
    assert_eq!(republished.json()["flags"], first.json()["flags"]);

    // Time alone changes a schedule's result, and with it the tag.
    server
        .clock
        .store(START_SECONDS + 4 * 365 * 24 * 3600, Ordering::SeqCst);
    let later = post(&url, &[("If-None-Match", &etag2)], body).await;
    assert_eq!(later.status, 200);
    let scheduled = later.json()["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .find(|flag| flag["key"] == "scheduled-launch")
        .cloned()
        .expect("listed");
    assert_eq!(scheduled["value"], true);
}

/// The directory of the OFREP client check (`tests/ofrep` at the repository root).
fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/ofrep")
}

/// Whether the real client can run here; when it cannot, the test is skipped with a message,
/// or fails when `FLIGHTDECK_REQUIRE_OFREP_CLIENT=1` (CI).
fn client_available() -> bool {
    let required = std::env::var("FLIGHTDECK_REQUIRE_OFREP_CLIENT").is_ok_and(|v| v == "1");
    let problem = if !client_dir()
        .join("node_modules/@openfeature/ofrep-provider")
        .is_dir()
    {
        Some("tests/ofrep/node_modules is missing (run `npm ci` in tests/ofrep)")
    } else if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        Some("`node` is not installed")
    } else {
        None
    };
    match problem {
        None => true,
        Some(problem) if required => {
            panic!("FLIGHTDECK_REQUIRE_OFREP_CLIENT=1 but {problem}")
        }
        Some(problem) => {
            eprintln!("skipped: the OFREP client check cannot run: {problem}");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_openfeature_client_resolves_flags() {
    if !client_available() {
        return;
    }
    let server = start().await;
    let cases = json!({
        "cases": [
            {"type": "boolean", "key": "static-flag", "default": false, "context": {}},
            {"type": "boolean", "key": "static-flag", "default": true, "context": {}, "environment": "staging"},
            {"type": "string", "key": "banner-text", "default": "none",
             "context": {"targetingKey": "user-1", "plan": "beta"}},
            {"type": "string", "key": "banner-text", "default": "none",
             "context": {"targetingKey": "user-1", "plan": "free"}},
            {"type": "number", "key": "max-items", "default": 0,
             "context": {"targetingKey": "user-1", "country": "NZ"}},
            {"type": "string", "key": "checkout-flow", "default": "none",
             "context": {"targetingKey": "user-1"}},
            {"type": "string", "key": "checkout-flow", "default": "none", "context": {}},
            {"type": "boolean", "key": "no-such-flag", "default": true, "context": {}},
            {"type": "boolean", "key": "old-feature", "default": true, "context": {}},
            {"type": "number", "key": "network.trr.mode", "default": 0,
             "context": {"targetingKey": "user-1", "channel": "release"}},
            {"type": "boolean", "key": "browser.newtab.preload", "default": true,
             "context": {"targetingKey": "user-1", "locale": "en-US"}},
            {"type": "string", "key": "static-flag", "default": "x", "context": {}}
        ],
        "bulk": {"context": {"targetingKey": "user-1", "plan": "beta"}}
    });
    let script = client_dir().join("check.mjs");
    let url = server.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("node")
            .arg(script)
            .arg(url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("node starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(cases.to_string().as_bytes())
            .expect("cases written");
        child.wait_with_output().expect("node ends")
    })
    .await
    .expect("joins");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check.mjs failed: {stderr}");
    let printed: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&output.stdout)));
    // Shown with --nocapture, and with any failure below.
    eprintln!("check.mjs printed: {printed}");
    let results = printed["results"].as_array().expect("results");
    let at = |i: usize| &results[i];
    let summary = |i: usize| {
        let r = at(i);
        (
            r["value"].clone(),
            r["reason"].clone(),
            r["variant"].clone(),
            r["errorCode"].clone(),
        )
    };

    assert_eq!(
        summary(0),
        (json!(true), json!("STATIC"), json!("true"), Value::Null)
    );
    assert_eq!(
        at(0)["flagMetadata"],
        json!({"rule": "default", "source": "cloudbees"})
    );
    assert_eq!(
        summary(1),
        (json!(false), json!("STATIC"), json!("false"), Value::Null)
    );
    assert_eq!(
        summary(2),
        (
            json!("fancy"),
            json!("TARGETING_MATCH"),
            json!("fancy"),
            Value::Null
        )
    );
    assert_eq!(
        summary(3),
        (
            json!("plain"),
            json!("DEFAULT"),
            json!("plain"),
            Value::Null
        )
    );
    assert_eq!(
        summary(4),
        (
            json!(20),
            json!("TARGETING_MATCH"),
            json!("20"),
            Value::Null
        )
    );
    let split = summary(5);
    assert_eq!(split.1, json!("SPLIT"));
    assert!(
        split.0 == json!("classic") || split.0 == json!("express"),
        "{split:?}"
    );
    assert_eq!(split.0, split.2);
    assert_eq!(summary(6).0, json!("none"));
    assert_eq!(summary(6).1, json!("ERROR"));
    assert_eq!(summary(6).3, json!("TARGETING_KEY_MISSING"));
    assert_eq!(
        (summary(7).0, summary(7).3),
        (json!(true), json!("FLAG_NOT_FOUND"))
    );
    // A disabled flag has no value (the code default, ADR-0006). This provider version
    // predates ADR-0006: it reports the missing value as an error, and so still falls back
    // to the code default.
    assert_eq!(summary(8).0, json!(true));
    assert_eq!(summary(8).3, json!("GENERAL"));
    assert_eq!(
        summary(9),
        (json!(2), json!("TARGETING_MATCH"), Value::Null, Value::Null)
    );
    assert_eq!(at(9)["flagMetadata"]["recipeId"], json!(1));
    assert_eq!(at(9)["flagMetadata"]["slug"], json!("http3-rollout"));
    let branch = summary(10);
    assert_eq!(branch.1, json!("SPLIT"));
    let expected = if branch.2 == json!("control") {
        json!(true)
    } else {
        json!(false)
    };
    assert!(
        branch.2 == json!("control") || branch.2 == json!("treatment"),
        "{branch:?}"
    );
    assert_eq!(branch.0, expected);
    // The client checks the type: a boolean flag read as a string is the caller's default.
    assert_eq!(
        (summary(11).0, summary(11).3),
        (json!("x"), json!("TYPE_MISMATCH"))
    );

    let bulk = &printed["bulk"];
    assert_eq!(bulk["firstStatus"], 200);
    assert!(
        bulk["etag"]
            .as_str()
            .is_some_and(|tag| tag.starts_with('"'))
    );
    assert_eq!(bulk["flags"].as_array().map(Vec::len), Some(17));
    assert_eq!(bulk["secondStatus"], 304);
    assert_eq!(bulk["otherContextStatus"], 200);
}
