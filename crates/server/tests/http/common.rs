//! Fixtures shared by the server's integration tests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use flightdeck_client::signature::SigningKey;
use flightdeck_server::publish::{ItemKind, PublishedKey, Snapshot, SourceItem};
use flightdeck_server::{AppState, Publisher};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn key() -> SigningKey {
    SigningKey::from_pem(
        "test-signing-key.pem",
        include_str!("../data/test-signing-key.pem"),
    )
    .expect("test key")
}

pub fn second_key() -> SigningKey {
    SigningKey::from_pem(
        "second-signing-key.pem",
        include_str!("../data/second-signing-key.pem"),
    )
    .expect("second test key")
}

pub fn published_keys(key: &SigningKey) -> Vec<PublishedKey> {
    vec![PublishedKey {
        key_id: key.key_id().to_string(),
        public_key_pem: key.public_key().to_spki_pem().expect("PEM"),
        active: true,
        created_at: "2026-11-01T00:00:00Z".parse().expect("time"),
    }]
}

pub fn published_at() -> jiff::Timestamp {
    "2026-11-21T10:00:00Z".parse().expect("time")
}

pub fn item(recipe_id: i64, revision_id: i64, kind: ItemKind, data: Value) -> SourceItem {
    SourceItem {
        recipe_id,
        revision_id,
        kind,
        data,
    }
}

/// A Normandy preference rollout in API v3 write fields, filtered with a filter object.
pub fn rollout(recipe_id: i64, slug: &str) -> SourceItem {
    item(
        recipe_id,
        recipe_id * 10,
        ItemKind::Normandy,
        json!({
            "name": format!("Roll out {slug}"),
            "action": "preference-rollout",
            "arguments": {
                "slug": slug,
                "preferences": [{"preferenceName": format!("{slug}.enabled"), "value": true}]
            },
            "filter_object": [{"type": "channel", "channels": ["release", "beta"]}],
            "extra_filter_expression": "normandy.locale == 'en-US'",
            "comment": "rolling out"
        }),
    )
}

pub fn manifest_experiment(recipe_id: i64, id: &str) -> SourceItem {
    item(
        recipe_id,
        recipe_id * 10,
        ItemKind::ManifestV1,
        json!({
            "id": id,
            "xpiURL": format!("https://experiments.example.com/{id}.xpi"),
            "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
            "sample": 0.1
        }),
    )
}

pub fn flight(recipe_id: i64, studyname: &str) -> SourceItem {
    item(
        recipe_id,
        recipe_id * 10,
        ItemKind::Flight,
        json!({
            "studyname": studyname,
            "endBy": "2027-01-01T00:00:00.000Z",
            "filter": {"channels": ["release"]},
            "flightplan": [{"action": "wait", "for": 1000}]
        }),
    )
}

pub fn target_group(recipe_id: i64, name: &str) -> SourceItem {
    item(
        recipe_id,
        recipe_id * 10,
        ItemKind::TargetGroup,
        json!({
            "name": name,
            "conditions": [{"operator": "eq", "property": "plan", "operand": "beta"}]
        }),
    )
}

pub fn flag(recipe_id: i64, flag: &str, group: &str) -> SourceItem {
    item(
        recipe_id,
        recipe_id * 10,
        ItemKind::Flag,
        json!({
            "flag": flag,
            "availableValues": [false, true],
            "conditions": [{"group": {"name": group}, "value": true}],
            "value": false
        }),
    )
}

/// One valid item of every kind.
pub fn sample_items() -> Vec<SourceItem> {
    vec![
        rollout(1, "autoplay"),
        rollout(2, "search"),
        manifest_experiment(3, "old-tab"),
        flight(4, "tab-center"),
        target_group(5, "beta users"),
        flag(6, "new-checkout", "beta users"),
    ]
}

pub fn snapshot(environment: &str, items: &[SourceItem], serial: u64) -> Snapshot {
    let key = key();
    Snapshot::build(
        environment,
        items,
        &key,
        &published_keys(&key),
        serial,
        published_at(),
    )
    .expect("snapshot")
}

/// A server on a loopback port, serving `state`'s application until the returned sender is
/// used or dropped.
pub struct Running {
    pub address: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Sends the shutdown signal and waits for the server to return.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        self.signal_shutdown();
        self.task.await.expect("server task")
    }

    /// Sends the shutdown signal.
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(state: AppState) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let publisher = Arc::clone(state.publisher());
    let router = flightdeck_server::app(state, axum::Router::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(flightdeck_server::serve(listener, router, async move {
        let _ = stopped.await;
        publisher.close_streams();
    }));
    Running {
        address,
        stop: Some(stop),
        task,
    }
}

/// A publisher holding `production` (the sample items, serial 1) and `staging` (one rollout,
/// serial 7).
pub fn sample_publisher() -> Arc<Publisher> {
    let publisher = Arc::new(Publisher::new());
    publisher.install_snapshot(snapshot("production", &sample_items(), 1));
    publisher.install_snapshot(snapshot("staging", &[rollout(1, "autoplay")], 7));
    publisher
}
