//! The whole product through the real binaries: `flightdeck serve` on a fresh data directory,
//! an editor writes a rollout and an experiment, an approver approves them, they are enabled,
//! the reference client (`flightdeck client run`) fetches the signed manifest, verifies it
//! with the server's published key, applies both, and uploads its enrollment telemetry,
//! which the server counts. Then the server restarts and serves the same manifest.

mod common;
#[path = "common/server.rs"]
mod server;

use common::TempDir;
use reqwest::Method;
use serde_json::{Value, json};
use server::{Server, call, http};

const CONTEXT: &str = r#"{
    "userId": "11111111-2222-3333-4444-555555555555",
    "channel": "release",
    "prefs": {"flow.rollout": {"default": 0}, "flow.experiment": {"default": 0}}
}"#;

/// Runs the reference client; asserts it succeeded and returns standard output.
fn client(dir: &std::path::Path, args: &[&str]) -> String {
    let run = common::flightdeck_in(dir, args);
    assert_eq!(run.code, 0, "{args:?}:\n{}\n{}", run.stdout, run.stderr);
    run.stdout
}

/// Makes a user with `roles` through the API as `admin`, and returns a token for them.
fn user_with_token(server: &Server, admin: &str, name: &str, roles: &[&str]) -> String {
    let (status, user) = call(
        server,
        admin,
        Method::POST,
        "/api/v3/user/",
        Some(&json!({"username": name, "roles": roles})),
    );
    assert_eq!(status, 201, "{user}");
    let id = user["id"].as_i64().expect("user id");
    let (status, token) = call(
        server,
        admin,
        Method::POST,
        &format!("/api/v3/user/{id}/token/"),
        Some(&json!({"name": "flow test"})),
    );
    assert_eq!(status, 201, "{token}");
    token["token"].as_str().expect("the secret").to_owned()
}

/// Creates a Normandy recipe as `editor`, has `approver` approve it, enables it; returns its
/// id.
fn publish_recipe(server: &Server, editor: &str, approver: &str, data: Value) -> i64 {
    let (status, recipe) = call(server, editor, Method::POST, "/api/v3/recipe/", Some(&data));
    assert_eq!(status, 201, "{recipe}");
    let id = recipe["id"].as_i64().expect("recipe id");
    let revision = recipe["latest_revision"]["id"]
        .as_i64()
        .expect("revision id");

    // Not approved yet: enabling is refused.
    let (status, body) = call(
        server,
        approver,
        Method::POST,
        &format!("/api/v3/recipe/{id}/enable/"),
        None,
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_approved");

    let (status, request) = call(
        server,
        editor,
        Method::POST,
        &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
        None,
    );
    assert_eq!(status, 201, "{request}");
    let request_id = request["id"].as_i64().expect("request id");

    // The author cannot approve their own revision, even with the approver role.
    let (status, body) = call(
        server,
        editor,
        Method::POST,
        &format!("/api/v3/approval_request/{request_id}/approve/"),
        Some(&json!({"comment": "mine"})),
    );
    assert!(status == 403, "{status} {body}");

    let (status, body) = call(
        server,
        approver,
        Method::POST,
        &format!("/api/v3/approval_request/{request_id}/approve/"),
        Some(&json!({"comment": "looks right"})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        server,
        approver,
        Method::POST,
        &format!("/api/v3/recipe/{id}/enable/"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    id
}

#[test]
fn authored_approved_enabled_applied_and_counted() {
    let tmp = TempDir::new("serve-flow");
    let data_dir = tmp.path().join("server");
    let server = Server::start_sqlite(&data_dir);
    let admin = server
        .first_token
        .clone()
        .expect("first start prints a token");

    // Editors may also hold the approver role; peer approval still stops self-approval.
    let editor = user_with_token(&server, &admin, "erin", &["editor", "approver"]);
    let approver = user_with_token(&server, &admin, "abe", &["approver"]);

    let rollout = publish_recipe(
        &server,
        &editor,
        &approver,
        json!({
            "name": "Flow rollout",
            "action": "preference-rollout",
            "arguments": {"slug": "flow-rollout",
                          "preferences": [{"preferenceName": "flow.rollout", "value": 7}]},
            "extra_filter_expression": "normandy.channel == 'release'",
            "comment": "first"
        }),
    );
    publish_recipe(
        &server,
        &editor,
        &approver,
        json!({
            "name": "Flow experiment",
            "action": "multi-preference-experiment",
            "arguments": {
                "slug": "flow-experiment",
                "userFacingName": "Flow experiment",
                "userFacingDescription": "The end-to-end test",
                "isEnrollmentPaused": false,
                "branches": [{"slug": "treatment", "ratio": 1, "preferences": {
                    "flow.experiment": {"preferenceType": "integer",
                                        "preferenceBranchType": "user",
                                        "preferenceValue": 3}}}]
            },
            "extra_filter_expression": "normandy.channel == 'release'"
        }),
    );

    // The published key, as a client would be given it.
    let keys: Value = serde_json::from_str(
        &http()
            .get(server.url("/api/v1/signing_key/"))
            .send()
            .expect("keys")
            .text()
            .expect("body"),
    )
    .expect("JSON");
    let pem = keys[0]["publicKeyPem"].as_str().expect("a public key");
    let key_file = tmp.write("server-key.pem", pem);
    let context = tmp.write("context.json", CONTEXT);
    let profile = tmp.path().join("profile");
    let manifest_url = server.url("/api/v1/manifest/");
    let telemetry_url = server.url("/api/v1/telemetry/");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let run_args = [
        "client",
        "run",
        "--profile",
        &path(&profile),
        "--url",
        &manifest_url,
        "--context",
        &path(&context),
        "--trust-key",
        &path(&key_file),
        "--telemetry-url",
        &telemetry_url,
        "--fixed-random",
        "0.5",
    ];
    client(tmp.path(), &run_args);

    let prefs: Value = serde_json::from_str(&client(
        tmp.path(),
        &["client", "prefs", "--profile", &path(&profile), "--json"],
    ))
    .expect("prefs JSON");
    assert_eq!(prefs["flow.rollout"]["default"], 7, "{prefs}");
    assert_eq!(prefs["flow.experiment"]["user"], 3, "{prefs}");
    let events: Value = serde_json::from_str(&client(
        tmp.path(),
        &["client", "events", "--profile", &path(&profile), "--json"],
    ))
    .expect("events JSON");
    assert_eq!(events, json!([]), "every event was uploaded");

    // The server counted one enrollment in each.
    let (status, counts) = call(
        &server,
        &admin,
        Method::GET,
        "/api/v3/telemetry/enrollment/",
        None,
    );
    assert_eq!(status, 200, "{counts}");
    let count_of = |slug: &str, method: &str| -> i64 {
        counts
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row["slug"] == slug && row["method"] == method)
            .map(|row| row["count"].as_i64().unwrap_or(0))
            .sum()
    };
    assert_eq!(count_of("flow-rollout", "enroll"), 1, "{counts}");
    assert_eq!(count_of("flow-experiment", "enroll"), 1, "{counts}");

    // The audit log says who approved.
    let (_, audit) = call(
        &server,
        &admin,
        Method::GET,
        &format!("/api/v3/audit/?object_type=recipe&object_id={rollout}"),
        None,
    );
    let audit_text = audit.to_string();
    assert!(
        audit_text.contains("abe") && audit_text.contains("erin"),
        "{audit}"
    );

    // A restart serves the same manifest (same serial, same bytes): nothing changed.
    let before = http().get(&manifest_url).send().expect("manifest");
    let etag_before = before.headers()["etag"].to_str().expect("etag").to_owned();
    let body_before = before.bytes().expect("body");
    assert_eq!(server.terminate().code(), Some(0), "a clean shutdown");
    let server = Server::start_sqlite(&data_dir);
    assert_eq!(server.first_token, None, "no second admin on restart");
    let after = http()
        .get(server.url("/api/v1/manifest/"))
        .send()
        .expect("manifest");
    assert_eq!(after.headers()["etag"].to_str().expect("etag"), etag_before);
    assert_eq!(after.bytes().expect("body"), body_before);

    // And the client's next run costs a 304 and changes nothing.
    let mut again = run_args.to_vec();
    let new_url = server.url("/api/v1/manifest/");
    let new_telemetry = server.url("/api/v1/telemetry/");
    again[5] = &new_url;
    again[11] = &new_telemetry;
    let out = client(tmp.path(), &again);
    assert!(!out.contains("set "), "nothing to change:\n{out}");
}
