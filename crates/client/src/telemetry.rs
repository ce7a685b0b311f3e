//! Uploading the telemetry queue.
//!
//! [`upload`] POSTs the queued events, oldest first, in batches of at most
//! [`UploadPolicy::batch_size`], as `{"clientId": …, "events": [QueuedEvent…]}`. A batch the
//! server acknowledges (any `2xx`) is removed from the queue by its sequence numbers; anything
//! else leaves it queued and backs off like manifest fetches (exponential, full jitter, or the
//! server's `Retry-After` on `429`/`503`).
//!
//! Delivery is **at least once**: the caller saves the state after each call, and a crash
//! between the server's acknowledgement and that save, or a lost acknowledgement, sends the
//! same events again. The server deduplicates by `(clientId, seq)`; sequence numbers are never
//! reused by a client ([`crate::events::enqueue`]).
//!
//! A batch the server *rejects* (`400`, `422`, or `413` for a single event) would block the
//! queue forever if it were retried, so it is dropped and counted in the outcome's `dropped`.
//! To keep a server that rejects everything (a deployment mistake, an incompatible version)
//! from emptying the whole queue in one call, at most one batch is dropped per call: a second
//! rejection in the same call is treated as a failure and backs off. `413` on a larger batch
//! halves the batch size for the rest of the call instead. Other `4xx` (`401`, `403`, `404`,
//! `408`, `429`, …) say more about the endpoint than about the events, so they back off and
//! keep the events.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::RandomSource;
use crate::events::QueuedEvent;
use crate::fetch::{HttpClient, describe_status, parse_retry_after, schedule_retry};
use crate::state::TelemetryQueue;

/// How uploads behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPolicy {
    /// The URL the batches are POSTed to.
    pub endpoint: String,
    /// Events per request at most (default 500; 0 counts as 1).
    pub batch_size: usize,
    /// Bound on one request (default 30 s).
    pub timeout: Duration,
    /// The backoff window after the first failure (default 60 s).
    pub backoff_base: Duration,
    /// The largest backoff window, and the cap on `Retry-After` (default 6 h).
    pub backoff_max: Duration,
}

impl UploadPolicy {
    /// The default policy for `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> UploadPolicy {
        UploadPolicy {
            endpoint: endpoint.into(),
            batch_size: 500,
            timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(6 * 60 * 60),
        }
    }
}

/// What one [`upload`] call did. The caller saves the state afterwards in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The queue was empty.
    NothingToSend,
    /// Nothing was sent: the backoff after earlier failures runs until `until`.
    Skipped {
        /// The earliest time of the next attempt.
        until: Timestamp,
    },
    /// The whole queue went out: `count` events acknowledged, `dropped` events rejected by
    /// the server and removed.
    Uploaded {
        /// Events acknowledged.
        count: usize,
        /// Events the server rejected, removed without delivery.
        dropped: usize,
    },
    /// A request failed; its batch and every later event are still queued. Batches before it
    /// were acknowledged (`uploaded`) or dropped (`dropped`) and removed.
    Failed {
        /// What went wrong, naming the endpoint.
        error: String,
        /// The earliest time of the next attempt (persisted in the queue).
        retry_at: Timestamp,
        /// Events acknowledged by this call before the failure.
        uploaded: usize,
        /// Events dropped by this call before the failure.
        dropped: usize,
    },
}

/// The request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Batch<'a> {
    client_id: &'a str,
    events: &'a [QueuedEvent],
}

/// Uploads the queued events (see the module documentation for batching, acknowledgement,
/// rejection and backoff). Removes what the server acknowledged or rejected from `queue`.
pub fn upload(
    client: &dyn HttpClient,
    queue: &mut TelemetryQueue,
    policy: &UploadPolicy,
    now: Timestamp,
    random: &mut dyn RandomSource,
    client_id: &str,
) -> UploadOutcome {
    if queue.pending.is_empty() {
        return UploadOutcome::NothingToSend;
    }
    if let Some(until) = queue.next_upload_at
        && until > now
    {
        return UploadOutcome::Skipped { until };
    }
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    let endpoint = policy.endpoint.as_str();
    let mut batch_size = policy.batch_size.max(1);
    let (mut uploaded, mut dropped) = (0, 0);
    let mut rejected_once = false;
    while !queue.pending.is_empty() {
        let n = batch_size.min(queue.pending.len());
        let events = &queue.pending[..n];
        let sent: BTreeSet<u64> = events.iter().map(|e| e.seq).collect();
        let (error, retry_after) = match serde_json::to_vec(&Batch { client_id, events }) {
            Err(e) => (
                format!("POST {endpoint}: cannot encode the events: {e}"),
                None,
            ),
            Ok(body) => match client.post(endpoint, &headers, body, policy.timeout) {
                Err(e) => (format!("POST {e}"), None),
                Ok(response) if (200..300).contains(&response.status) => {
                    remove(queue, &sent);
                    uploaded += n;
                    queue.failures = 0;
                    queue.next_upload_at = None;
                    continue;
                }
                Ok(response) if response.status == 413 && n > 1 => {
                    batch_size = n / 2;
                    continue;
                }
                Ok(response) => {
                    let rejected = matches!(response.status, 400 | 422 | 413);
                    if rejected && !rejected_once {
                        remove(queue, &sent);
                        dropped += n;
                        rejected_once = true;
                        continue;
                    }
                    let retry_after = match response.status {
                        429 | 503 => response
                            .header("retry-after")
                            .and_then(|v| parse_retry_after(v, now)),
                        _ => None,
                    };
                    (describe_status("POST", endpoint, &response), retry_after)
                }
            },
        };
        let retry_at = schedule_retry(
            &mut queue.failures,
            &mut queue.next_upload_at,
            retry_after,
            policy.backoff_base,
            policy.backoff_max,
            now,
            random,
        );
        return UploadOutcome::Failed {
            error,
            retry_at,
            uploaded,
            dropped,
        };
    }
    UploadOutcome::Uploaded {
        count: uploaded,
        dropped,
    }
}

/// Removes exactly the events with the sequence numbers sent.
fn remove(queue: &mut TelemetryQueue, sent: &BTreeSet<u64>) {
    queue.pending.retain(|e| !sent.contains(&e.seq));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedRandom;
    use crate::events::{TelemetryEvent, enqueue};
    use crate::fetch::{HttpError, HttpResponse, ScriptedHttpClient};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn queue_of(n: usize) -> TelemetryQueue {
        let mut queue = TelemetryQueue::default();
        let now = ts("2026-01-01T00:00:00Z");
        enqueue(
            &mut queue,
            now,
            (0..n).map(|i| TelemetryEvent::new("enroll", "preference_study", &format!("e{i}"))),
        );
        queue
    }

    fn seqs(body: &[u8]) -> Vec<u64> {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    }

    fn run(client: &ScriptedHttpClient, queue: &mut TelemetryQueue, batch: usize) -> UploadOutcome {
        let policy = UploadPolicy {
            batch_size: batch,
            ..UploadPolicy::new("https://t.test/submit")
        };
        upload(
            client,
            queue,
            &policy,
            ts("2026-01-01T00:00:00Z"),
            &mut FixedRandom::new(vec![0.5]),
            "c-1",
        )
    }

    #[test]
    fn a_413_halves_the_batch_and_only_a_single_event_is_dropped() {
        let ok = || Ok(HttpResponse::new(204, ""));
        let too_big = || Ok(HttpResponse::new(413, ""));
        let client = ScriptedHttpClient::new([too_big(), too_big(), ok(), too_big(), ok()]);
        let mut queue = queue_of(4);
        // 4 → 413, 2 → 413, 1 → ok (seq 0), 1 → 413 at one event: dropped (seq 1), 1 → ok.
        // Then seq 3 has no reply left: a failure.
        let outcome = run(&client, &mut queue, 4);
        let sent: Vec<Vec<u64>> = client.requests().iter().map(|r| seqs(&r.body)).collect();
        assert_eq!(
            sent,
            [
                vec![0, 1, 2, 3],
                vec![0, 1],
                vec![0],
                vec![1],
                vec![2],
                vec![3]
            ]
        );
        assert!(
            matches!(
                &outcome,
                UploadOutcome::Failed {
                    uploaded: 2,
                    dropped: 1,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert_eq!(queue.pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn a_second_rejection_in_one_call_backs_off_and_keeps_the_batch() {
        let bad = || Ok(HttpResponse::new(400, "schema mismatch"));
        let client = ScriptedHttpClient::new([bad(), bad()]);
        let mut queue = queue_of(3);
        let outcome = run(&client, &mut queue, 2);
        assert_eq!(
            outcome,
            UploadOutcome::Failed {
                error: "POST https://t.test/submit: HTTP 400 Bad Request: schema mismatch".into(),
                retry_at: ts("2026-01-01T00:00:30Z"),
                uploaded: 0,
                dropped: 2,
            }
        );
        assert_eq!(queue.pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(queue.failures, 1);
    }

    #[test]
    fn endpoint_problems_keep_the_events() {
        for status in [401, 403, 404, 408, 415] {
            let client = ScriptedHttpClient::new([Ok(HttpResponse::new(status, ""))]);
            let mut queue = queue_of(2);
            let outcome = run(&client, &mut queue, 500);
            assert!(
                matches!(outcome, UploadOutcome::Failed { dropped: 0, .. }),
                "{status}"
            );
            assert_eq!(queue.pending.len(), 2, "{status}");
        }
        let client = ScriptedHttpClient::new([Err(HttpError::Timeout {
            url: "https://t.test/submit".into(),
            timeout: Duration::from_secs(30),
        })]);
        let mut queue = queue_of(1);
        let outcome = run(&client, &mut queue, 500);
        assert!(
            matches!(&outcome, UploadOutcome::Failed { error, .. }
                if error == "POST https://t.test/submit: no complete response within 30s"),
            "{outcome:?}"
        );
    }
}
