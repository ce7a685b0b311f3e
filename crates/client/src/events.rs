//! Telemetry events in the reference shape (`method`, `object`, `value`, `extra`) and the
//! telemetry environment annotation.
//!
//! Events are queued inside the client state ([`crate::state::TelemetryQueue`]), so an event
//! is committed in the same atomic write as the change it reports: a crash can lose neither
//! one without the other. [`crate::telemetry`] uploads the queue.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One telemetry event, as Normandy records them (category `normandy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryEvent {
    /// What happened: `enroll`, `enrollFailed`, `unenroll`, `update`, `graduate`, …
    pub method: String,
    /// What it happened to: `preference_study`, `preference_rollout`,
    /// `preference_rollback`, `manifest_experiment`.
    pub object: String,
    /// The slug (or manifest experiment id).
    pub value: String,
    /// Details; values are never null.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

impl TelemetryEvent {
    /// An event without extras.
    pub fn new(method: &str, object: &str, value: &str) -> TelemetryEvent {
        TelemetryEvent {
            method: method.to_owned(),
            object: object.to_owned(),
            value: value.to_owned(),
            extra: BTreeMap::new(),
        }
    }

    /// The event with one more extra.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> TelemetryEvent {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

/// An event in the on-disk queue: the event, when it happened, and its sequence number
/// (unique per client, so an upload can be acknowledged exactly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// Per-client sequence number, increasing.
    pub seq: u64,
    /// When the event happened.
    pub timestamp: Timestamp,
    /// The event.
    #[serde(flatten)]
    pub event: TelemetryEvent,
}

/// The telemetry environment annotation of one active experiment or rollout:
/// `experiments: {slug: {branch, type}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    /// The branch (for a rollout, its state: `active`).
    pub branch: String,
    /// `normandy-exp`, `normandy-exp-highpop`, `normandy-prefrollout`, `manifest-experiment`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Appends `events` to the state's queue, stamped with `now`.
pub fn enqueue(
    queue: &mut crate::state::TelemetryQueue,
    now: Timestamp,
    events: impl IntoIterator<Item = TelemetryEvent>,
) {
    for event in events {
        let seq = queue.next_seq;
        queue.next_seq = queue.next_seq.saturating_add(1);
        queue.pending.push(QueuedEvent {
            seq,
            timestamp: now,
            event,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_events_serialise_flat_in_the_reference_shape() {
        let mut queue = crate::state::TelemetryQueue::default();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        enqueue(
            &mut queue,
            now,
            [TelemetryEvent::new("enroll", "preference_study", "exp-1")
                .with("branch", "control")
                .with("experimentType", "exp")],
        );
        let json = serde_json::to_value(&queue.pending[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "seq": 0, "timestamp": "2026-01-01T00:00:00Z",
                "method": "enroll", "object": "preference_study", "value": "exp-1",
                "extra": {"branch": "control", "experimentType": "exp"}
            })
        );
        assert_eq!(queue.next_seq, 1);
    }
}
