//! The client endpoints over a real loopback connection.

use std::io::Read as _;
use std::sync::Arc;

use crate::common::*;
use flightdeck_server::AppState;
use flightdeck_server::publish::DocumentKind;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, VARY,
};
use serde_json::{Value, json};

const ROUTES: [(&str, DocumentKind); 5] = [
    ("/api/v1/manifest/", DocumentKind::Manifest),
    ("/api/v1/recipe/signed/", DocumentKind::RecipesSigned),
    ("/api/v1/experiments/", DocumentKind::Experiments),
    ("/api/v1/flights/", DocumentKind::Flights),
    ("/api/v1/signing_key/", DocumentKind::SigningKeys),
];

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip body");
    out
}

#[tokio::test]
async fn every_document_route_serves_identity_gzip_304_and_head() {
    let publisher = sample_publisher();
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let http = reqwest::Client::new();
    let production = publisher.snapshot("production").expect("production");

    for (path, kind) in ROUTES {
        let document = production.document(kind);
        let etag = document.etag_str();

        // 200, identity (the client names no encoding).
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], "application/json", "{path}");
        assert_eq!(headers[ETAG], etag, "{path}");
        assert_eq!(headers[CACHE_CONTROL], "public, max-age=60", "{path}");
        assert_eq!(headers[VARY], "accept-encoding", "{path}");
        assert!(headers.get(CONTENT_ENCODING).is_none(), "{path}");
        let body = response.bytes().await.unwrap();
        assert_eq!(&body[..], &document.body()[..], "{path}");
        let _: Value = serde_json::from_slice(&body).expect("JSON");

        // 200, gzip.
        let response = http
            .get(server.url(path))
            .header(ACCEPT_ENCODING, "br;q=1.0, gzip;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip", "{path}");
        assert_eq!(
            response.headers()[ETAG],
            etag,
            "one ETag for both encodings"
        );
        let zipped = response.bytes().await.unwrap();
        assert_eq!(&zipped[..], &document.gzip()[..]);
        assert_eq!(gunzip(&zipped), document.body().to_vec(), "{path}");

        // gzip refused with q=0: identity.
        let response = http
            .get(server.url(path))
            .header(ACCEPT_ENCODING, "gzip;q=0, identity")
            .send()
            .await
            .unwrap();
        assert!(response.headers().get(CONTENT_ENCODING).is_none());

        // 304 with the ETag, weak or in a list, or `*`.
        for condition in [
            etag.to_owned(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let response = http
                .get(server.url(path))
                .header(IF_NONE_MATCH, &condition)
                .header(ACCEPT_ENCODING, "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{path} {condition}"
            );
            assert_eq!(response.headers()[ETAG], etag);
            assert_eq!(response.headers()[CACHE_CONTROL], "public, max-age=60");
            assert!(response.bytes().await.unwrap().is_empty());
        }
        // Another ETag: the document.
        let response = http
            .get(server.url(path))
            .header(IF_NONE_MATCH, "\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        // HEAD: the headers of the GET (the length of the encoding served), no body.
        for (encoding, length) in [
            ("identity", document.body().len()),
            ("gzip", document.gzip().len()),
        ] {
            let response = http
                .head(server.url(path))
                .header(ACCEPT_ENCODING, encoding)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[ETAG], etag);
            assert_eq!(
                response.headers()[CONTENT_LENGTH],
                length.to_string().as_str(),
                "{path} {encoding}"
            );
            assert!(response.bytes().await.unwrap().is_empty());
        }
    }
    server.shut_down().await.expect("clean shutdown");
}

#[tokio::test]
async fn environments_are_chosen_by_query() {
    let publisher = sample_publisher();
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let http = reqwest::Client::new();
    let staging = publisher.snapshot("staging").expect("staging");
    let production = publisher.snapshot("production").expect("production");

    let response = http
        .get(server.url("/api/v1/manifest/?environment=staging"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], staging.manifest().etag_str());
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["serial"], json!(7));

    let response = http
        .get(server.url("/api/v1/manifest/?environment=production&other=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[ETAG], production.manifest().etag_str());
    let response = http
        .get(server.url("/api/v1/manifest/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[ETAG],
        production.manifest().etag_str(),
        "production by default"
    );

    // The ETag of another environment is not a match.
    let response = http
        .get(server.url("/api/v1/manifest/?environment=staging"))
        .header(IF_NONE_MATCH, production.manifest().etag_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for path in [
        "/api/v1/manifest/?environment=nowhere",
        "/api/v1/recipe/signed/?environment=nowhere",
        "/api/v1/experiments/?environment=nowhere",
        "/api/v1/flights/?environment=nowhere",
        "/api/v1/signing_key/?environment=nowhere",
        "/api/v1/events/?environment=nowhere",
        "/api/v1/manifest/?environment=",
    ] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(
            body["error"]["code"],
            json!("unknown_environment"),
            "{path}"
        );
    }
    server.shut_down().await.expect("clean shutdown");
}

#[tokio::test]
async fn no_environment_is_a_404_until_a_snapshot_is_installed() {
    let publisher = Arc::new(flightdeck_server::Publisher::new());
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let http = reqwest::Client::new();
    let response = http
        .get(server.url("/api/v1/manifest/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    publisher.install_snapshot(snapshot("production", &sample_items(), 1));
    let response = http
        .get(server.url("/api/v1/manifest/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.shut_down().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_new_snapshot_is_served_at_once_and_an_old_one_is_dropped() {
    let publisher = sample_publisher();
    let server = start(AppState::new(Arc::clone(&publisher))).await;
    let http = reqwest::Client::new();
    let old_etag = publisher
        .snapshot("production")
        .unwrap()
        .manifest()
        .etag_str()
        .to_owned();

    let newer = snapshot("production", &[rollout(1, "autoplay")], 2);
    let new_etag = newer.manifest().etag_str().to_owned();
    assert_eq!(
        publisher.install_snapshot(newer),
        flightdeck_server::state::Installed::Changed
    );
    let response = http
        .get(server.url("/api/v1/manifest/"))
        .header(IF_NONE_MATCH, &old_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the old ETag is stale");
    assert_eq!(response.headers()[ETAG], new_etag.as_str());

    let stale = snapshot("production", &sample_items(), 1);
    assert_eq!(
        publisher.install_snapshot(stale),
        flightdeck_server::state::Installed::Stale
    );
    let response = http
        .get(server.url("/api/v1/manifest/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[ETAG], new_etag.as_str());
    server.shut_down().await.expect("clean shutdown");
}

#[tokio::test]
async fn publish_builds_off_the_workers_and_installs() {
    let publisher = Arc::new(flightdeck_server::Publisher::new());
    let key = key();
    let installed = publisher
        .publish(
            "production".to_owned(),
            sample_items(),
            key.clone(),
            published_keys(&key),
            4,
            published_at(),
        )
        .await
        .expect("published");
    assert_eq!(installed, flightdeck_server::state::Installed::Changed);
    let snapshot = publisher.snapshot("production").expect("installed");
    assert_eq!(snapshot.serial(), 4);
    assert_eq!(publisher.environments(), ["production"]);
    let error = publisher
        .publish(
            "production".to_owned(),
            Vec::new(),
            key.clone(),
            Vec::new(),
            u64::MAX,
            published_at(),
        )
        .await
        .expect_err("serial too large");
    assert_eq!(
        error,
        flightdeck_server::publish::PublishError::Serial(u64::MAX)
    );
}
