//! Manifest fetches against a real HTTP server on 127.0.0.1, through the real reqwest client.

use crate::support;

use std::time::Duration;

use flightdeck_client::FixedRandom;
use flightdeck_client::fetch::{
    FetchOutcome, FetchPolicy, HttpClient, HttpError, MIN_DELAY, ReqwestClient, ReqwestConfig,
    backoff_delay, fetch_manifest, record_accepted, record_failure,
};
use flightdeck_client::state::ManifestCache;
use jiff::Timestamp;
use proptest::prelude::*;
use support::{Reply, TestServer, refused_url};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn client() -> ReqwestClient {
    ReqwestClient::new(&support::loopback_config()).unwrap()
}

/// A server whose manifest has the entity tag `"v1"`: `304` when asked with it, `200` else.
fn etag_server(body: &'static str) -> TestServer {
    TestServer::start(move |request| {
        if request.header("if-none-match") == Some("\"v1\"") {
            Reply::status(304, "")
        } else {
            Reply::status(200, body).header("ETag", "\"v1\"")
        }
    })
}

#[test]
fn etag_round_trip_200_then_304() {
    let server = etag_server(r#"{"version": 1}"#);
    let url = server.url("/manifest.json");
    let (client, policy) = (client(), FetchPolicy::default());
    let mut random = FixedRandom::new(vec![0.5]);
    let mut cache = ManifestCache::default();
    let now = ts("2026-01-01T00:00:00Z");

    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, now, &mut random);
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            body: br#"{"version": 1}"#.to_vec(),
            etag: Some("\"v1\"".into())
        }
    );
    assert_eq!(cache.etag, None, "the etag waits for verification");
    record_accepted(&mut cache, Some("\"v1\"".into()), now);

    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, now, &mut random);
    assert_eq!(outcome, FetchOutcome::NotModified);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/manifest.json");
    assert_eq!(requests[0].header("if-none-match"), None);
    assert_eq!(requests[1].header("if-none-match"), Some("\"v1\""));
    assert!(
        requests[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("flightdeck-client/"))
    );
}

#[test]
fn a_body_that_fails_verification_does_not_poison_the_etag() {
    let server = etag_server("tampered");
    let url = server.url("/manifest.json");
    let (client, policy) = (client(), FetchPolicy::default());
    let mut random = FixedRandom::new(vec![0.5]);
    let mut cache = ManifestCache {
        etag: Some("\"v0\"".into()),
        ..ManifestCache::default()
    };
    let now = ts("2026-01-01T00:00:00Z");

    let FetchOutcome::Fetched { body, etag } =
        fetch_manifest(&client, &url, &mut cache, &policy, now, &mut random)
    else {
        panic!("expected a body");
    };
    assert_eq!(
        (body.as_slice(), etag.as_deref()),
        (&b"tampered"[..], Some("\"v1\""))
    );
    // The caller's signature check fails: it counts a failure and does not store the etag.
    let retry_at = record_failure(&mut cache, "bad signature", &policy, now, &mut random);
    assert_eq!(cache.etag.as_deref(), Some("\"v0\""));

    // The next attempt asks with the old tag again, so it gets the full body, not a 304.
    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, retry_at, &mut random);
    assert!(
        matches!(outcome, FetchOutcome::Fetched { .. }),
        "{outcome:?}"
    );
    assert_eq!(server.requests()[1].header("if-none-match"), Some("\"v0\""));
}

#[test]
fn server_down_fails_and_backs_off() {
    let url = refused_url();
    let (client, policy) = (client(), FetchPolicy::default());
    let mut cache = ManifestCache::default();
    let now = ts("2026-01-01T00:00:00Z");

    let outcome = fetch_manifest(
        &client,
        &url,
        &mut cache,
        &policy,
        now,
        &mut FixedRandom::new(vec![0.5]),
    );
    let FetchOutcome::Failed { error, retry_at } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        error.starts_with(&format!("GET {url}: cannot connect")),
        "{error}"
    );
    // First failure: the window is backoff_base (60 s), half of it with 0.5.
    assert_eq!(retry_at, ts("2026-01-01T00:00:30Z"));
    assert_eq!(cache.failures, 1);
    assert_eq!(cache.next_fetch_at, Some(retry_at));
    assert_eq!(cache.last_error.as_deref(), Some(error.as_str()));
}

#[test]
fn no_request_is_sent_while_backing_off() {
    let server = TestServer::start(|_| Reply::status(500, "down for maintenance"));
    let url = server.url("/manifest.json");
    let (client, policy) = (client(), FetchPolicy::default());
    let mut random = FixedRandom::new(vec![0.5]);
    let mut cache = ManifestCache::default();
    let now = ts("2026-01-01T00:00:00Z");

    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, now, &mut random);
    let retry_at = ts("2026-01-01T00:00:30Z");
    assert_eq!(
        outcome,
        FetchOutcome::Failed {
            error: format!("GET {url}: HTTP 500 Internal Server Error: down for maintenance"),
            retry_at
        }
    );
    for later in [now, ts("2026-01-01T00:00:29.999Z")] {
        let outcome = fetch_manifest(&client, &url, &mut cache, &policy, later, &mut random);
        assert_eq!(outcome, FetchOutcome::Skipped { until: retry_at });
    }
    assert_eq!(server.requests().len(), 1, "nothing sent while backing off");

    // At retry_at the next attempt goes out; it fails again and the window doubles.
    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, retry_at, &mut random);
    assert!(
        matches!(outcome, FetchOutcome::Failed { retry_at: next, .. }
            if next == ts("2026-01-01T00:01:30Z")),
        "{outcome:?}"
    );
    assert_eq!(cache.failures, 2);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn recovery_after_500_resets_the_failures() {
    let mut calls = 0;
    let server = TestServer::start(move |request| {
        calls += 1;
        match calls {
            1 => Reply::status(500, ""),
            _ if request.header("if-none-match") == Some("\"v2\"") => Reply::status(304, ""),
            _ => Reply::status(200, "manifest v2").header("ETag", "\"v2\""),
        }
    });
    let url = server.url("/m");
    let (client, policy) = (client(), FetchPolicy::default());
    let mut random = FixedRandom::new(vec![0.25]);
    let mut cache = ManifestCache::default();
    let now = ts("2026-01-01T00:00:00Z");

    let FetchOutcome::Failed { retry_at, .. } =
        fetch_manifest(&client, &url, &mut cache, &policy, now, &mut random)
    else {
        panic!("expected a failure");
    };
    assert_eq!(retry_at, ts("2026-01-01T00:00:15Z"));
    assert_eq!(cache.failures, 1);

    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, retry_at, &mut random);
    let FetchOutcome::Fetched { etag, .. } = outcome else {
        panic!("expected a body, got {outcome:?}");
    };
    record_accepted(&mut cache, etag, retry_at);
    assert_eq!((cache.failures, cache.next_fetch_at), (0, None));
    assert_eq!(cache.last_error, None);

    // A 304 also resets a failure count (e.g. after a later outage).
    record_failure(&mut cache, "blip", &policy, retry_at, &mut random);
    let later = ts("2026-01-01T01:00:00Z");
    let outcome = fetch_manifest(&client, &url, &mut cache, &policy, later, &mut random);
    assert_eq!(outcome, FetchOutcome::NotModified);
    assert_eq!((cache.failures, cache.next_fetch_at), (0, None));
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = TestServer::start(|_| Reply::Hang);
    let url = server.url("/manifest.json");
    let policy = FetchPolicy {
        timeout: Duration::from_millis(200),
        ..FetchPolicy::default()
    };
    let mut cache = ManifestCache::default();
    let outcome = fetch_manifest(
        &client(),
        &url,
        &mut cache,
        &policy,
        ts("2026-01-01T00:00:00Z"),
        &mut FixedRandom::new(vec![0.5]),
    );
    assert!(
        matches!(&outcome, FetchOutcome::Failed { error, .. }
            if *error == format!("GET {url}: no complete response within 200ms")),
        "{outcome:?}"
    );
    assert_eq!(cache.failures, 1);
    assert_eq!(server.requests().len(), 1, "the request reached the server");
}

#[test]
fn oversized_bodies_are_refused_with_or_without_content_length() {
    let big = vec![b'x'; 4096];
    let body = big.clone();
    let server = TestServer::start(move |request| match request.path.as_str() {
        "/announced" => Reply::status(200, body.clone()),
        "/streamed" => Reply::RespondUntilClose(200, body.clone()),
        _ => Reply::status(200, body[..1024].to_vec()),
    });
    let client = ReqwestClient::new(&ReqwestConfig {
        max_body_bytes: 1024,
        ..support::loopback_config()
    })
    .unwrap();
    let timeout = Duration::from_secs(30);
    for path in ["/announced", "/streamed"] {
        let url = server.url(path);
        let err = client.get(&url, &[], timeout).unwrap_err();
        assert_eq!(err, HttpError::TooLarge { url, limit: 1024 }, "{path}");
    }
    let at_limit = client.get(&server.url("/exact"), &[], timeout).unwrap();
    assert_eq!(at_limit.body.len(), 1024);

    let mut cache = ManifestCache::default();
    let url = server.url("/streamed");
    let outcome = fetch_manifest(
        &client,
        &url,
        &mut cache,
        &FetchPolicy::default(),
        ts("2026-01-01T00:00:00Z"),
        &mut FixedRandom::new(vec![0.5]),
    );
    assert_eq!(
        outcome,
        FetchOutcome::Failed {
            error: format!("GET {url}: the response body is larger than the limit of 1024 bytes"),
            retry_at: ts("2026-01-01T00:00:30Z"),
        }
    );
    assert_eq!(cache.failures, 1);
}

#[test]
fn garbage_is_still_fetched_verification_is_the_callers_job() {
    let garbage: Vec<u8> = (0..=255u8).rev().collect();
    let body = garbage.clone();
    let server = TestServer::start(move |_| Reply::status(200, body.clone()));
    let mut cache = ManifestCache::default();
    let outcome = fetch_manifest(
        &client(),
        &server.url("/manifest.json"),
        &mut cache,
        &FetchPolicy::default(),
        ts("2026-01-01T00:00:00Z"),
        &mut FixedRandom::new(vec![0.5]),
    );
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            body: garbage,
            etag: None
        }
    );
    assert_eq!(cache, ManifestCache::default());
}

#[test]
fn retry_after_on_503_replaces_the_jittered_delay() {
    let server = TestServer::start(|_| Reply::status(503, "").header("Retry-After", "600"));
    let mut cache = ManifestCache::default();
    let outcome = fetch_manifest(
        &client(),
        &server.url("/m"),
        &mut cache,
        &FetchPolicy::default(),
        ts("2026-01-01T00:00:00Z"),
        &mut FixedRandom::new(vec![0.01]),
    );
    assert!(
        matches!(outcome, FetchOutcome::Failed { retry_at, .. }
            if retry_at == ts("2026-01-01T00:10:00Z")),
        "{outcome:?}"
    );
    assert_eq!(cache.next_fetch_at, Some(ts("2026-01-01T00:10:00Z")));
}

#[test]
fn redirects_are_followed_only_to_http() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/moved" => Reply::status(302, "").header("Location", "/manifest.json"),
        "/ftp" => Reply::status(302, "").header("Location", "ftp://127.0.0.1/m"),
        "/loop" => Reply::status(302, "").header("Location", "/loop"),
        _ => Reply::status(200, "here"),
    });
    let client = client();
    let timeout = Duration::from_secs(30);
    let response = client.get(&server.url("/moved"), &[], timeout).unwrap();
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"here"[..])
    );
    for path in ["/ftp", "/loop"] {
        let err = client.get(&server.url(path), &[], timeout).unwrap_err();
        assert!(matches!(err, HttpError::Redirect { .. }), "{path}: {err}");
    }
    // 1 + 1 for /moved, 1 for /ftp (refused before any request), 6 for /loop (5 followed).
    assert_eq!(server.requests().len(), 2 + 1 + 6);
}

proptest! {
    #[test]
    fn backoff_delay_stays_within_bounds(
        failures in any::<u32>(),
        base_ms in 0u64..100_000_000,
        max_ms in 1_000u64..100_000_000_000,
        u in prop_oneof![0.0f64..1.0, any::<f64>()],
    ) {
        let max = Duration::from_millis(max_ms);
        let delay = backoff_delay(
            failures,
            Duration::from_millis(base_ms),
            max,
            &mut FixedRandom::new(vec![u]),
        );
        prop_assert!(MIN_DELAY <= delay, "{delay:?}");
        prop_assert!(delay <= max, "{delay:?} > {max:?}");
    }

    #[test]
    fn backoff_delay_is_full_jitter_of_the_window(
        failures in 1u32..40,
        u in 0.0f64..1.0,
    ) {
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(6 * 3600));
        let delay = backoff_delay(failures, base, max, &mut FixedRandom::new(vec![u]));
        let window = (base.as_secs_f64() * 2f64.powi(failures as i32 - 1)).min(max.as_secs_f64());
        let expected = (window * u).max(1.0);
        prop_assert!((delay.as_secs_f64() - expected).abs() < 1e-6, "{delay:?} vs {expected}");
    }
}
