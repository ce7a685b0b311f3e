//! Telemetry uploads against a real HTTP server on 127.0.0.1, through the real reqwest client.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use flightdeck_client::FixedRandom;
use flightdeck_client::events::{TelemetryEvent, enqueue};
use flightdeck_client::fetch::ReqwestClient;
use flightdeck_client::state::TelemetryQueue;
use flightdeck_client::telemetry::{UploadOutcome, UploadPolicy, upload};
use jiff::Timestamp;
use support::{Reply, Request, TestServer, refused_url};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-01-01T00:00:00Z";

fn client() -> ReqwestClient {
    ReqwestClient::new(&support::loopback_config()).unwrap()
}

fn queue_of(n: usize) -> TelemetryQueue {
    let mut queue = TelemetryQueue::default();
    add(&mut queue, n, ts(NOW));
    queue
}

fn add(queue: &mut TelemetryQueue, n: usize, at: Timestamp) {
    enqueue(
        queue,
        at,
        (0..n).map(|i| {
            TelemetryEvent::new("enroll", "preference_study", &format!("exp-{i}"))
                .with("branch", "control")
        }),
    );
}

fn pending_seqs(queue: &TelemetryQueue) -> Vec<u64> {
    queue.pending.iter().map(|e| e.seq).collect()
}

fn body_json(request: &Request) -> serde_json::Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn sent_seqs(request: &Request) -> Vec<u64> {
    body_json(request)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

fn policy(server: &TestServer, batch_size: usize) -> UploadPolicy {
    UploadPolicy {
        batch_size,
        ..UploadPolicy::new(server.url("/submit"))
    }
}

#[test]
fn batches_go_oldest_first_and_acknowledged_events_leave_the_queue() {
    let server = TestServer::start(|_| Reply::status(200, r#"{"ok":true}"#));
    let mut queue = queue_of(1200);
    let outcome = upload(
        &client(),
        &mut queue,
        &policy(&server, 500),
        ts(NOW),
        &mut FixedRandom::new(vec![0.5]),
        "client-1",
    );
    assert_eq!(
        outcome,
        UploadOutcome::Uploaded {
            count: 1200,
            dropped: 0
        }
    );
    assert!(queue.pending.is_empty());
    assert_eq!(queue.next_seq, 1200, "sequence numbers are never reused");

    let requests = server.requests();
    let batches: Vec<Vec<u64>> = requests.iter().map(sent_seqs).collect();
    assert_eq!(
        batches,
        [
            (0..500).collect::<Vec<_>>(),
            (500..1000).collect(),
            (1000..1200).collect()
        ]
    );
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/submit")
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(body_json(request)["clientId"], "client-1");
    }
    assert_eq!(
        body_json(&requests[0])["events"][0],
        serde_json::json!({
            "seq": 0, "timestamp": NOW, "method": "enroll", "object": "preference_study",
            "value": "exp-0", "extra": {"branch": "control"}
        })
    );
}

#[test]
fn a_failed_upload_keeps_the_events_and_backs_off() {
    let mut calls = 0;
    let server = TestServer::start(move |_| {
        calls += 1;
        if calls == 1 {
            Reply::status(500, "")
        } else {
            Reply::status(204, "")
        }
    });
    let (client, policy) = (client(), policy(&server, 500));
    let mut random = FixedRandom::new(vec![0.5]);
    let mut queue = queue_of(3);
    let before = queue.pending.clone();

    let outcome = upload(&client, &mut queue, &policy, ts(NOW), &mut random, "c");
    let retry_at = ts("2026-01-01T00:00:30Z");
    assert_eq!(
        outcome,
        UploadOutcome::Failed {
            error: format!("POST {}: HTTP 500 Internal Server Error", policy.endpoint),
            retry_at,
            uploaded: 0,
            dropped: 0
        }
    );
    assert_eq!(queue.pending, before);
    assert_eq!((queue.failures, queue.next_upload_at), (1, Some(retry_at)));

    let outcome = upload(
        &client,
        &mut queue,
        &policy,
        ts("2026-01-01T00:00:10Z"),
        &mut random,
        "c",
    );
    assert_eq!(outcome, UploadOutcome::Skipped { until: retry_at });
    assert_eq!(server.requests().len(), 1, "nothing sent while backing off");

    // Events recorded meanwhile go out with the old ones, in order.
    add(&mut queue, 2, ts("2026-01-01T00:00:20Z"));
    let outcome = upload(&client, &mut queue, &policy, retry_at, &mut random, "c");
    assert_eq!(
        outcome,
        UploadOutcome::Uploaded {
            count: 5,
            dropped: 0
        }
    );
    assert!(queue.pending.is_empty());
    assert_eq!((queue.failures, queue.next_upload_at), (0, None));
    assert_eq!(sent_seqs(&server.requests()[1]), [0, 1, 2, 3, 4]);
}

#[test]
fn a_failure_midway_keeps_only_the_unacknowledged_events() {
    let mut calls = 0;
    let server = TestServer::start(move |_| {
        calls += 1;
        if calls == 1 {
            Reply::status(200, "")
        } else {
            Reply::status(502, "bad gateway")
        }
    });
    let mut queue = queue_of(5);
    let outcome = upload(
        &client(),
        &mut queue,
        &policy(&server, 2),
        ts(NOW),
        &mut FixedRandom::new(vec![0.5]),
        "c",
    );
    assert!(
        matches!(
            outcome,
            UploadOutcome::Failed {
                uploaded: 2,
                dropped: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(pending_seqs(&queue), [2, 3, 4]);
    assert_eq!(queue.failures, 1);
}

#[test]
fn server_down_keeps_the_queue() {
    let url = refused_url();
    let mut queue = queue_of(2);
    let outcome = upload(
        &client(),
        &mut queue,
        &UploadPolicy::new(url.clone()),
        ts(NOW),
        &mut FixedRandom::new(vec![0.0]),
        "c",
    );
    let UploadOutcome::Failed {
        error, retry_at, ..
    } = outcome
    else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        error.starts_with(&format!("POST {url}: cannot connect")),
        "{error}"
    );
    assert_eq!(retry_at, ts("2026-01-01T00:00:01Z"), "at least one second");
    assert_eq!(pending_seqs(&queue), [0, 1]);
}

#[test]
fn retry_after_is_honoured_on_429_and_503() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/busy" => Reply::status(429, "").header("Retry-After", "120"),
        _ => Reply::status(503, "").header("Retry-After", "Thu, 01 Jan 2026 01:00:00 GMT"),
    });
    let client = client();
    // 0.99 would give a jittered delay of 59.4 s; the server's value wins.
    let mut random = FixedRandom::new(vec![0.99]);
    let mut queue = queue_of(1);
    let busy = UploadPolicy::new(server.url("/busy"));
    let outcome = upload(&client, &mut queue, &busy, ts(NOW), &mut random, "c");
    let retry_at = ts("2026-01-01T00:02:00Z");
    assert!(
        matches!(outcome, UploadOutcome::Failed { retry_at: at, .. } if at == retry_at),
        "{outcome:?}"
    );
    let just_before = ts("2026-01-01T00:01:59Z");
    let outcome = upload(&client, &mut queue, &busy, just_before, &mut random, "c");
    assert_eq!(outcome, UploadOutcome::Skipped { until: retry_at });

    let down = UploadPolicy::new(server.url("/down"));
    let outcome = upload(&client, &mut queue, &down, retry_at, &mut random, "c");
    assert!(
        matches!(outcome, UploadOutcome::Failed { retry_at: at, .. }
            if at == ts("2026-01-01T01:00:00Z")),
        "{outcome:?}"
    );
    assert_eq!(queue.failures, 2);
    assert_eq!(pending_seqs(&queue), [0]);
}

#[test]
fn a_rejected_batch_is_dropped_so_it_cannot_block_the_queue() {
    let server = TestServer::start(|request| {
        if sent_seqs(request).contains(&2) {
            Reply::status(400, "event 2: unknown method")
        } else {
            Reply::status(200, "")
        }
    });
    let mut queue = queue_of(6);
    let outcome = upload(
        &client(),
        &mut queue,
        &policy(&server, 2),
        ts(NOW),
        &mut FixedRandom::new(vec![0.5]),
        "c",
    );
    assert_eq!(
        outcome,
        UploadOutcome::Uploaded {
            count: 4,
            dropped: 2
        }
    );
    assert!(queue.pending.is_empty());
    let batches: Vec<Vec<u64>> = server.requests().iter().map(sent_seqs).collect();
    assert_eq!(batches, [vec![0, 1], vec![2, 3], vec![4, 5]]);
}

#[test]
fn a_lost_acknowledgement_resends_the_same_seqs_for_the_server_to_dedup() {
    let mut calls = 0;
    let server = TestServer::start(move |_| {
        calls += 1;
        if calls == 1 {
            Reply::Hang
        } else {
            Reply::status(200, "")
        }
    });
    let policy = UploadPolicy {
        timeout: Duration::from_millis(200),
        ..policy(&server, 500)
    };
    let client = client();
    let mut random = FixedRandom::new(vec![0.5]);
    let mut queue = queue_of(3);
    let outcome = upload(&client, &mut queue, &policy, ts(NOW), &mut random, "c-9");
    let UploadOutcome::Failed { retry_at, .. } = outcome else {
        panic!("expected a timeout, got {outcome:?}");
    };
    assert_eq!(pending_seqs(&queue), [0, 1, 2]);
    let outcome = upload(&client, &mut queue, &policy, retry_at, &mut random, "c-9");
    assert_eq!(
        outcome,
        UploadOutcome::Uploaded {
            count: 3,
            dropped: 0
        }
    );

    // The server got the events twice; (clientId, seq) identifies each one.
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let mut seen = BTreeSet::new();
    let mut received = 0;
    for request in &requests {
        for seq in sent_seqs(request) {
            received += 1;
            seen.insert((
                body_json(request)["clientId"].as_str().unwrap().to_owned(),
                seq,
            ));
        }
    }
    assert_eq!((received, seen.len()), (6, 3));
}

#[test]
fn an_empty_queue_sends_nothing() {
    let server = TestServer::start(|_| Reply::status(200, ""));
    let mut queue = TelemetryQueue {
        next_seq: 7,
        ..TelemetryQueue::default()
    };
    let outcome = upload(
        &client(),
        &mut queue,
        &policy(&server, 500),
        ts(NOW),
        &mut FixedRandom::new(vec![0.5]),
        "c",
    );
    assert_eq!(outcome, UploadOutcome::NothingToSend);
    assert!(server.requests().is_empty());
}
