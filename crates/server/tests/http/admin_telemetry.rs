//! Telemetry ingest and enrollment counts: deduplication by `(clientId, seq)`, the 400/413/422
//! answers the reference client's uploader acts on, and the reference client itself uploading
//! to the server over a loopback socket.

use crate::admin_support::TestApi;
use flightdeck_client::FixedRandom;
use flightdeck_client::events::{TelemetryEvent, enqueue};
use flightdeck_client::fetch::{ReqwestClient, ReqwestConfig};
use flightdeck_client::state::TelemetryQueue;
use flightdeck_client::telemetry::{UploadOutcome, UploadPolicy, upload};
use serde_json::{Value, json};

fn event(seq: u64, method: &str, slug: &str, branch: &str) -> Value {
    json!({
        "seq": seq,
        "timestamp": "2027-01-15T10:00:00Z",
        "method": method,
        "object": "preference_study",
        "value": slug,
        "extra": {"branch": branch}
    })
}

async fn ingest(api: &TestApi, body: Value) -> crate::admin_support::Reply {
    api.call("POST", "/api/v1/telemetry/", None, Some(body))
        .await
}

#[tokio::test]
async fn ingest_deduplicates_and_counts() {
    let api = TestApi::sqlite().await;
    let batch = json!({"clientId": "client-1", "events": [
        event(0, "enroll", "exp", "control"),
        event(1, "enroll", "exp", "treatment"),
        event(2, "unenroll", "exp", "control"),
        event(2, "unenroll", "exp", "control"),
    ]});
    let reply = ingest(&api, batch.clone()).await;
    reply.expect(200);
    assert_eq!(reply.body, json!({"accepted": 3, "duplicates": 1}));
    // A retried upload counts once.
    let reply = ingest(&api, batch).await;
    assert_eq!(reply.body, json!({"accepted": 0, "duplicates": 4}));
    // Another client's sequence numbers are its own.
    let reply = ingest(
        &api,
        json!({"clientId": "client-2", "events": [event(0, "enroll", "exp", "control")]}),
    )
    .await;
    assert_eq!(reply.body, json!({"accepted": 1, "duplicates": 0}));
    let reply = ingest(&api, json!({"clientId": "client-3", "events": []})).await;
    assert_eq!(reply.body, json!({"accepted": 0, "duplicates": 0}));

    let counts = api
        .get("/api/v3/telemetry/enrollment/?slug=exp", &api.tokens.viewer)
        .await;
    counts.expect(200);
    let rows: Vec<(String, String, i64)> = counts
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row["day"], "2027-01-15");
            (
                row["method"].as_str().unwrap().to_owned(),
                row["branch"].as_str().unwrap().to_owned(),
                row["count"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut rows = rows;
    rows.sort();
    assert_eq!(
        rows,
        [
            ("enroll".to_owned(), "control".to_owned(), 2),
            ("enroll".to_owned(), "treatment".to_owned(), 1),
            ("unenroll".to_owned(), "control".to_owned(), 1),
        ]
    );
    let filtered = api
        .get(
            "/api/v3/telemetry/enrollment/?slug=exp&method=enroll&branch=control&from=2027-01-15&to=2027-01-15",
            &api.tokens.viewer,
        )
        .await;
    assert_eq!(filtered.body.as_array().unwrap().len(), 1);
    assert_eq!(filtered.body[0]["count"], 2);
    let later = api
        .get(
            "/api/v3/telemetry/enrollment/?from=2027-01-16",
            &api.tokens.viewer,
        )
        .await;
    assert_eq!(later.body, json!([]));
    api.get(
        "/api/v3/telemetry/enrollment/?from=yesterday",
        &api.tokens.viewer,
    )
    .await
    .expect(400);
}

#[tokio::test]
async fn refused_batches_answer_as_the_client_expects() {
    let api = TestApi::sqlite().await;
    // Not JSON: 400 (dropped by the client).
    let reply = api
        .raw(
            "POST",
            "/api/v1/telemetry/",
            None,
            Some(b"{\"clientId\": ".to_vec()),
        )
        .await;
    reply.expect(400);
    assert_eq!(reply.code(), "bad_request");
    // JSON of the wrong shape, or out of bounds: 422 naming the field (dropped).
    for (body, field) in [
        (json!({"events": []}), "(root)"),
        (
            json!({"clientId": "c", "events": [{"seq": "one"}]}),
            "events[0].seq",
        ),
        (json!({"clientId": "", "events": []}), "clientId"),
        (
            json!({"clientId": "x".repeat(129), "events": []}),
            "clientId",
        ),
        (
            json!({"clientId": "c", "events": [event(0, "", "s", "b")]}),
            "events[0].method",
        ),
        (
            json!({"clientId": "c", "events": [event(0, "enroll", &"s".repeat(1025), "b")]}),
            "events[0].value",
        ),
    ] {
        let reply = ingest(&api, body).await;
        reply.expect(422);
        assert_eq!(reply.code(), "invalid_events");
        assert_eq!(reply.fields(), [field]);
    }
    // Too many events, or too many bytes: 413 (the client halves the batch).
    let events: Vec<Value> = (0..1001)
        .map(|seq| event(seq, "enroll", "s", "b"))
        .collect();
    let reply = ingest(&api, json!({"clientId": "c", "events": events})).await;
    reply.expect(413);
    assert_eq!(reply.code(), "payload_too_large");
    let huge = format!(
        r#"{{"clientId": "c", "events": [], "padding": "{}"}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let reply = api
        .raw("POST", "/api/v1/telemetry/", None, Some(huge.into_bytes()))
        .await;
    reply.expect(413);
    assert_eq!(reply.code(), "payload_too_large");
    // Nothing was stored.
    let counts = api
        .get("/api/v3/telemetry/enrollment/", &api.tokens.viewer)
        .await;
    assert_eq!(counts.body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_uploads_to_the_server() {
    let api = TestApi::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = api.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let endpoint = format!("http://{address}/api/v1/telemetry/");
    let outcome = tokio::task::spawn_blocking(move || {
        let client = ReqwestClient::new(&ReqwestConfig {
            use_env_proxy: false,
            ..ReqwestConfig::default()
        })
        .unwrap();
        let mut queue = TelemetryQueue::default();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        enqueue(
            &mut queue,
            now,
            (0..2500).map(|i| {
                TelemetryEvent::new("enroll", "preference_study", "uploaded")
                    .with("branch", if i % 2 == 0 { "a" } else { "b" })
            }),
        );
        // Batches of 2000 are refused with 413; the client halves them and carries on.
        let mut policy = UploadPolicy::new(endpoint);
        policy.batch_size = 2000;
        let outcome = upload(
            &client,
            &mut queue,
            &policy,
            now,
            &mut FixedRandom::new(vec![0.5]),
            "device-1",
        );
        (outcome, queue.pending.len())
    })
    .await
    .unwrap();
    assert_eq!(
        outcome,
        (
            UploadOutcome::Uploaded {
                count: 2500,
                dropped: 0
            },
            0
        )
    );
    let counts = api
        .get(
            "/api/v3/telemetry/enrollment/?slug=uploaded",
            &api.tokens.viewer,
        )
        .await;
    let total: i64 = counts
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2500);
    server.abort();
}
