//! Push notices (SSE) and the operations routes, over a real loopback connection.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use flightdeck_server::ops::{HealthFn, Unhealthy};
use flightdeck_server::state::{Installed, NOTICE_BUFFER};
use flightdeck_server::{AppState, Publisher};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A bound on every wait, so that a broken server fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(30);

/// Reads server-sent events from a streaming response.
struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    async fn open(url: &str) -> EventReader {
        let response = reqwest::Client::new().get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            "text/event-stream"
        );
        EventReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, data); `None` when the stream ended. Keep-alive comments
    /// are skipped (and do not extend the wait).
    async fn next(&mut self) -> Option<(String, Value)> {
        tokio::time::timeout(WAIT, self.next_unbounded())
            .await
            .expect("an event in time")
    }

    async fn next_unbounded(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = self.response.chunk().await.expect("stream")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

fn notice(environment: &str, snapshot: &flightdeck_server::Snapshot) -> (String, Value) {
    (
        "manifest-changed".to_owned(),
        json!({
            "environment": environment,
            "etag": snapshot.manifest().etag_str(),
            "serial": snapshot.serial(),
        }),
    )
}

#[tokio::test]
async fn a_subscriber_gets_the_current_state_then_each_change() {
    let publisher = sample_publisher();
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let production = publisher.snapshot("production").unwrap();

    let mut events = EventReader::open(&server.url("/api/v1/events/?environment=production")).await;
    assert_eq!(events.next().await, Some(notice("production", &production)));

    // A change of staging is not for this subscriber; the next production change is.
    publisher.install_snapshot(snapshot("staging", &[], 8));
    let next = snapshot("production", &[rollout(1, "autoplay")], 2);
    let expected = notice("production", &next);
    assert_eq!(publisher.install_snapshot(next), Installed::Changed);
    assert_eq!(events.next().await, Some(expected));

    // The same manifest again (same content and serial): no notice.
    let same = snapshot("production", &[rollout(1, "autoplay")], 2);
    assert_eq!(publisher.install_snapshot(same), Installed::Unchanged);
    let after = snapshot("production", &[], 3);
    let expected = notice("production", &after);
    publisher.install_snapshot(after);
    assert_eq!(
        events.next().await,
        Some(expected),
        "the unchanged one sent nothing"
    );

    // Shutting down ends the stream, and the server returns.
    let mut server = server;
    server.signal_shutdown();
    assert_eq!(events.next().await, None);
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("the server stops without waiting for the grace period")
        .expect("server task")
        .expect("clean shutdown");
}

#[tokio::test]
async fn without_a_filter_every_environment_is_followed() {
    let publisher = sample_publisher();
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let mut events = EventReader::open(&server.url("/api/v1/events/")).await;
    let production = publisher.snapshot("production").unwrap();
    let staging = publisher.snapshot("staging").unwrap();
    assert_eq!(events.next().await, Some(notice("production", &production)));
    assert_eq!(events.next().await, Some(notice("staging", &staging)));

    let created = snapshot("qa", &[], 1);
    let expected = notice("qa", &created);
    publisher.install_snapshot(created);
    assert_eq!(events.next().await, Some(expected));
    server.shut_down().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_lagging_subscriber_skips_to_the_current_state() {
    let publisher = Arc::new(Publisher::new());
    publisher.install_snapshot(snapshot("production", &[], 0));
    let stream = flightdeck_server::client::events::notices(
        Arc::clone(&publisher),
        Some("production".to_owned()),
    );
    let mut stream = Box::pin(stream);
    // Never read while more notices than the buffer holds are sent.
    let last_serial = NOTICE_BUFFER as u64 + 6;
    let mut last_etag = String::new();
    for serial in 1..=last_serial {
        let next = snapshot("production", &[], serial);
        last_etag = next.manifest().etag_str().to_owned();
        publisher.install_snapshot(next);
    }
    // The initial notice (serial 0), then the lag is noticed and the current state comes,
    // without the notices in between.
    let first = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(first.serial, 0);
    let second = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(second.serial, last_serial);
    assert_eq!(second.etag, last_etag);
    assert_eq!(second.environment, "production");
    publisher.close_streams();
    assert!(stream.next().await.is_none(), "closed");
}

#[tokio::test]
async fn healthz_asks_the_health_check() {
    let publisher = sample_publisher();
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let http = reqwest::Client::new();
    let response = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body, json!({"status": "ok"}));
    server.shut_down().await.unwrap();

    let failing = HealthFn(|| async { Err(Unhealthy("database is down".to_owned())) });
    let state = AppState::new(publisher).with_health(Arc::new(failing));
    let server = start(state).await;
    let response = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"status": "unavailable", "error": "database is down"})
    );
    server.shut_down().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let handle = flightdeck_server::ops::install_metrics().expect("metrics");
    let again = flightdeck_server::ops::install_metrics().expect("idempotent");
    drop(again);
    let publisher = sample_publisher();
    let server = start(AppState::new(publisher).with_metrics(handle)).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let response = http
            .get(server.url("/api/v1/manifest/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = http
        .head(server.url("/api/v1/manifest/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let line = text
        .lines()
        .find(|line| {
            line.starts_with("flightdeck_http_requests_total")
                && line.contains("route=\"/api/v1/manifest/\"")
                && line.contains("method=\"GET\"")
                && line.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("a request counter in:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    let head = text
        .lines()
        .find(|line| {
            line.starts_with("flightdeck_http_requests_total")
                && line.contains("route=\"/api/v1/manifest/\"")
                && line.contains("method=\"HEAD\"")
                && line.contains("status=\"200\"")
        })
        .expect("a HEAD series");
    let heads: f64 = head.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(heads >= 1.0, "{head}");
    assert!(
        text.contains("flightdeck_http_request_duration_seconds_bucket"),
        "a latency histogram"
    );
    assert!(text.contains("flightdeck_publication_serial"), "{text}");
    server.shut_down().await.unwrap();
}

#[tokio::test]
async fn metrics_are_a_404_when_not_installed() {
    let server = start(AppState::new(sample_publisher())).await;
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.shut_down().await.unwrap();
}

#[tokio::test]
async fn request_bodies_are_limited_and_a_route_can_take_more() {
    let state = AppState::new(sample_publisher());
    let telemetry_limit = state.limits().telemetry;
    let extra = Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/big",
            post(|body: Bytes| async move { body.len().to_string() })
                .layer(DefaultBodyLimit::max(telemetry_limit)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(flightdeck_server::serve(
        listener,
        flightdeck_server::app(state, extra),
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let two_mib = vec![b'x'; 2 * 1024 * 1024];
    let small = http
        .post(format!("http://{address}/echo"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    let large = http
        .post(format!("http://{address}/echo"))
        .body(two_mib.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        large.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "1 MiB by default"
    );
    let big_route = http
        .post(format!("http://{address}/big"))
        .body(two_mib)
        .send()
        .await
        .unwrap();
    assert_eq!(
        big_route.status(),
        StatusCode::OK,
        "4 MiB where the route says so"
    );
    assert_eq!(
        big_route.text().await.unwrap(),
        (2 * 1024 * 1024).to_string()
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
