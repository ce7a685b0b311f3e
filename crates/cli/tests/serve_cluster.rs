//! Two `flightdeck serve` processes on one PostgreSQL schema: a change made through one node
//! reaches the push clients of the other (the store's `NOTIFY`, the other node's `LISTEN`,
//! its rebuild and its notice), and both nodes then serve byte-identical manifests.
//! PostgreSQL only: skipped when `FLIGHTDECK_TEST_POSTGRES_URL` is not set.

mod common;
#[path = "common/server.rs"]
mod server;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use server::{EventStream, PgSchema, Server, call, http, user_with_token};

/// The longest the test waits for the other node to hear of a change.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The events stream of the production environment.
const EVENTS: &str = "/api/v1/events/?environment=production";

/// A `manifest-changed` notice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Notice {
    etag: String,
    serial: u64,
}

/// The next notice on `stream`, within what is left until `deadline`.
fn next_notice(stream: &mut EventStream, deadline: Instant) -> Notice {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let event = stream.next_event(remaining.max(Duration::from_millis(1)));
    assert_eq!(event.event, "manifest-changed", "{event:?}");
    let data: Value = serde_json::from_str(&event.data).expect("notice JSON");
    assert_eq!(data["environment"], "production", "{data}");
    Notice {
        etag: data["etag"].as_str().expect("etag").to_owned(),
        serial: data["serial"].as_u64().expect("serial"),
    }
}

/// `server`'s production manifest: its ETag, its bytes, and the document.
fn manifest(server: &Server) -> (String, Vec<u8>, Value) {
    let response = http()
        .get(server.url("/api/v1/manifest/"))
        .send()
        .expect("manifest");
    assert_eq!(response.status().as_u16(), 200);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    let bytes = response.bytes().expect("body").to_vec();
    let document = serde_json::from_slice(&bytes).expect("manifest JSON");
    (etag, bytes, document)
}

fn published_ids(document: &Value) -> Vec<i64> {
    document["normandy"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|record| record["recipe"]["id"].as_i64())
        .collect()
}

/// Creates, approves and enables a rollout through `node`; returns its id.
fn publish_rollout(node: &Server, editor: &str, approver: &str, slug: &str) -> i64 {
    let (status, recipe) = call(
        node,
        editor,
        Method::POST,
        "/api/v3/recipe/",
        Some(&json!({
            "name": format!("Cluster rollout {slug}"),
            "action": "preference-rollout",
            "arguments": {"slug": slug,
                          "preferences": [{"preferenceName": format!("cluster.{slug}"), "value": 1}]},
            "extra_filter_expression": "normandy.channel == 'release'"
        })),
    );
    assert_eq!(status, 201, "{recipe}");
    let id = recipe["id"].as_i64().expect("recipe id");
    let revision = recipe["latest_revision"]["id"].as_i64().expect("revision");
    let (status, request) = call(
        node,
        editor,
        Method::POST,
        &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
        None,
    );
    assert_eq!(status, 201, "{request}");
    let request = request["id"].as_i64().expect("request id");
    let (status, body) = call(
        node,
        approver,
        Method::POST,
        &format!("/api/v3/approval_request/{request}/approve/"),
        Some(&json!({"comment": "ok"})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        node,
        approver,
        Method::POST,
        &format!("/api/v3/recipe/{id}/enable/"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    id
}

/// Reads `stream` until a notice carries `etag`; every notice on the way must be older.
fn await_notice(stream: &mut EventStream, etag: &str, serial: u64) -> Notice {
    let deadline = Instant::now() + PUSH_TIMEOUT;
    loop {
        let notice = next_notice(stream, deadline);
        if notice.etag == etag {
            assert_eq!(notice.serial, serial, "{notice:?}");
            return notice;
        }
        assert!(
            notice.serial < serial,
            "a notice of serial {} that is not the expected {etag} (serial {serial})",
            notice.serial
        );
    }
}

#[test]
fn a_change_on_one_node_reaches_push_clients_of_the_other() {
    let Some(url) = server::postgres_url() else {
        return;
    };
    // Declared first, so it is dropped after the servers.
    let schema = PgSchema::create(&url, "cluster");

    // Node A starts on the empty schema and makes the first admin; node B, started once A
    // listens, finds it and makes none.
    let node_a = Server::start_postgres(&schema.url);
    let admin = node_a
        .first_token
        .clone()
        .expect("the first node prints a first-start token");
    let node_b = Server::start_postgres(&schema.url);
    assert_eq!(
        node_b.first_token, None,
        "the second node made another admin: {:#?}",
        node_b.stdout_lines
    );
    assert!(
        node_b
            .stdout_lines
            .iter()
            .all(|line| !line.contains("first start")),
        "{:#?}",
        node_b.stdout_lines
    );
    // One user, and A's token works on B: they share the database.
    let (status, users) = call(&node_b, &admin, Method::GET, "/api/v3/user/", None);
    assert_eq!(status, 200, "{users}");
    let names: Vec<&str> = users
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["username"].as_str())
        .collect();
    assert_eq!(names, ["admin"], "{users}");

    let editor = user_with_token(&node_a, &admin, "edna", &["editor"]);
    let approver = user_with_token(&node_a, &admin, "aldo", &["approver"]);

    // Both nodes serve the same empty manifest; B's stream starts with its current notice.
    let (etag_a, bytes_a, _) = manifest(&node_a);
    let (etag_b, bytes_b, _) = manifest(&node_b);
    assert_eq!(etag_a, etag_b);
    assert_eq!(bytes_a, bytes_b);
    let mut stream = EventStream::open(&node_b, EVENTS);
    let first = next_notice(&mut stream, Instant::now() + PUSH_TIMEOUT);
    assert_eq!(first.etag, etag_b, "{first:?}");

    let mut serial = first.serial;
    for slug in ["first", "second"] {
        let id = publish_rollout(&node_a, &editor, &approver, slug);
        // A answered `enable` once it serves the new manifest.
        let (etag_a, bytes_a, document_a) = manifest(&node_a);
        let serial_a = document_a["serial"].as_u64().expect("serial");
        assert!(serial_a > serial, "{serial_a} after {serial}");
        assert!(published_ids(&document_a).contains(&id), "{document_a}");

        let notice = await_notice(&mut stream, &etag_a, serial_a);
        let (etag_b, bytes_b, document_b) = manifest(&node_b);
        assert_eq!(etag_b, notice.etag, "B serves what it announced");
        assert_eq!(etag_b, etag_a, "both nodes serve the same manifest");
        assert_eq!(bytes_b, bytes_a, "byte for byte");
        assert_eq!(document_b["serial"], notice.serial);
        assert!(published_ids(&document_b).contains(&id), "{document_b}");
        serial = serial_a;
    }
}

/// Reads `stream` until `node` serves a manifest with every one of `ids`; returns that
/// manifest's ETag and serial. Each notice's serial is higher than the one before.
fn await_all_published(stream: &mut EventStream, node: &Server, ids: &[i64]) -> (String, u64) {
    let deadline = Instant::now() + PUSH_TIMEOUT;
    let mut last_serial = None;
    loop {
        let notice = next_notice(stream, deadline);
        if let Some(last) = last_serial {
            assert!(notice.serial > last, "{notice:?} after serial {last}");
        }
        last_serial = Some(notice.serial);
        let (etag, _, document) = manifest(node);
        let published = published_ids(&document);
        if ids.iter().all(|id| published.contains(id)) {
            // What the node serves now is what it announced last, or newer.
            let serial = document["serial"].as_u64().expect("serial");
            assert!(serial >= notice.serial, "{serial} < {notice:?}");
            return (etag, serial);
        }
    }
}

#[test]
fn concurrent_changes_on_both_nodes_end_in_one_manifest() {
    let Some(url) = server::postgres_url() else {
        return;
    };
    let schema = PgSchema::create(&url, "cluster_both");
    let node_a = Server::start_postgres(&schema.url);
    let admin = node_a.first_token.clone().expect("a first-start token");
    let node_b = Server::start_postgres(&schema.url);
    let editor = user_with_token(&node_a, &admin, "edna", &["editor"]);
    let approver = user_with_token(&node_a, &admin, "aldo", &["approver"]);
    let mut stream_a = EventStream::open(&node_a, EVENTS);
    let mut stream_b = EventStream::open(&node_b, EVENTS);

    // Authors on both nodes publish at the same time, each through their own node.
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let writers: Vec<_> = [(&node_a, "a"), (&node_b, "b")]
            .into_iter()
            .map(|(node, label)| {
                let (editor, approver) = (&editor, &approver);
                scope.spawn(move || {
                    (0..4)
                        .map(|n| publish_rollout(node, editor, approver, &format!("{label}{n}")))
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|writer| writer.join().expect("a writer"))
            .collect()
    });

    // Each node ends up serving every recipe, under the same serial and the same bytes.
    let (etag_a, serial_a) = await_all_published(&mut stream_a, &node_a, &ids);
    let (etag_b, serial_b) = await_all_published(&mut stream_b, &node_b, &ids);
    assert_eq!(
        serial_a, serial_b,
        "the nodes publish the same content under different serials"
    );
    assert_eq!(etag_a, etag_b);
}
