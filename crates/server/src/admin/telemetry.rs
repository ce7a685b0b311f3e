//! Telemetry: the clients' ingest (`POST /api/v1/telemetry/`, public) and the enrollment
//! counts (`GET /api/v3/telemetry/enrollment/`).
//!
//! The ingest answers as the reference client's uploader expects (`flightdeck_client::telemetry`):
//! `200 {accepted, duplicates}` acknowledges the batch; `400` (not JSON) and `422` (JSON of
//! the wrong shape, or values out of bounds) make it drop the batch, which retrying could
//! never fix; `413` (too many events or bytes) makes it halve the batch and try again.
//! Events are deduplicated by `(clientId, seq)`, so a retried upload counts once.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use flightdeck_store::{EnrollmentFilter, IngestEvent};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{Params, Viewer};
use super::views::EnrollmentCountView;
use super::{AdminState, ApiError};
use crate::validate::FieldProblem;

/// The most events one upload may carry (the reference client sends 500).
pub const MAX_EVENTS_PER_BATCH: usize = 1000;
/// The longest `clientId`.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// The longest `method` and `object`.
const MAX_NAME_LEN: usize = 128;
/// The longest `value`, extra key or extra value.
const MAX_VALUE_LEN: usize = 1024;
/// The most extras per event.
const MAX_EXTRAS: usize = 64;
/// Counts per answer unless `limit` says otherwise.
const DEFAULT_COUNT_LIMIT: u32 = 10_000;

/// One upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryBatch {
    /// The client's id (1 to 128 characters).
    pub client_id: String,
    /// At most 1000 events.
    pub events: Vec<TelemetryEventIn>,
}

/// One event, as the reference client queues it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TelemetryEventIn {
    /// The client's sequence number; `(clientId, seq)` identifies the event.
    pub seq: u64,
    /// When it happened (RFC 3339).
    pub timestamp: Timestamp,
    /// What happened (`enroll`, `unenroll`, …; 1 to 128 characters).
    pub method: String,
    /// What it happened to (`preference_study`, …; 1 to 128 characters).
    pub object: String,
    /// The slug (at most 1024 characters).
    pub value: String,
    /// Details (at most 64; `branch` is counted).
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// What an upload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    /// Events stored now.
    pub accepted: u64,
    /// Events already stored (same client and sequence number), ignored.
    pub duplicates: u64,
}

/// The filters of the enrollment counts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentQuery {
    /// Only this slug.
    pub slug: Option<String>,
    /// Only this event object.
    pub object: Option<String>,
    /// Only this branch.
    pub branch: Option<String>,
    /// Only this event method.
    pub method: Option<String>,
    /// From this UTC day on (`YYYY-MM-DD`).
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<Date>,
    /// Up to and including this UTC day.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<Date>,
    /// At most this many rows (default 10000).
    pub limit: Option<u32>,
}

fn check_len(
    problems: &mut Vec<FieldProblem>,
    field: impl FnOnce() -> String,
    text: &str,
    min: usize,
    max: usize,
) {
    let len = text.chars().count();
    if len < min || len > max {
        problems.push(FieldProblem {
            field: field(),
            message: if min > 0 {
                format!("must have {min} to {max} characters")
            } else {
                format!("must have at most {max} characters")
            },
        });
    }
}

/// The problems of a parsed batch (bounds the types cannot express).
fn batch_problems(batch: &TelemetryBatch) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    check_len(
        &mut problems,
        || "clientId".to_owned(),
        &batch.client_id,
        1,
        MAX_CLIENT_ID_LEN,
    );
    for (index, event) in batch.events.iter().enumerate() {
        let at = |field: &str| format!("events[{index}].{field}");
        check_len(
            &mut problems,
            || at("method"),
            &event.method,
            1,
            MAX_NAME_LEN,
        );
        check_len(
            &mut problems,
            || at("object"),
            &event.object,
            1,
            MAX_NAME_LEN,
        );
        check_len(
            &mut problems,
            || at("value"),
            &event.value,
            0,
            MAX_VALUE_LEN,
        );
        if event.extra.len() > MAX_EXTRAS {
            problems.push(FieldProblem {
                field: at("extra"),
                message: format!("at most {MAX_EXTRAS} extras"),
            });
        }
        for (key, value) in &event.extra {
            check_len(&mut problems, || at("extra"), key, 1, MAX_VALUE_LEN);
            check_len(
                &mut problems,
                || at(&format!("extra.{key}")),
                value,
                0,
                MAX_VALUE_LEN,
            );
        }
        // One bad event is enough to drop the batch; a thousand messages help nobody.
        if problems.len() >= 20 {
            break;
        }
    }
    problems
}

/// Reads an upload: 400 when not JSON, 422 when of the wrong shape, 413 when too large.
fn parse_batch(bytes: &[u8]) -> Result<TelemetryBatch, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let batch: TelemetryBatch =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_data() {
                let field = if path == "." {
                    "(root)".to_owned()
                } else {
                    path
                };
                ApiError::Unprocessable {
                    message: format!("{field}: {inner}"),
                    fields: vec![FieldProblem {
                        field,
                        message: inner.to_string(),
                    }],
                }
            } else {
                ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
            }
        })?;
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON: {error}")))?;
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} events: at most {MAX_EVENTS_PER_BATCH} per upload",
            batch.events.len()
        )));
    }
    let problems = batch_problems(&batch);
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            message: format!("{} problems with the events", problems.len()),
            fields: problems,
        });
    }
    Ok(batch)
}

/// Takes in a client's telemetry events (public; no token). Duplicates (same `clientId` and
/// `seq`) are acknowledged and ignored.
#[utoipa::path(
    post, path = "/api/v1/telemetry/", tag = "telemetry", operation_id = "ingest_telemetry",
    request_body = TelemetryBatch,
    responses(
        (status = 200, description = "The batch is stored", body = IngestAnswer),
        (status = 400, description = "Not JSON: the client drops the batch", body = ErrorBody),
        (status = 413, description = "Too many events or bytes: the client halves the batch", body = ErrorBody),
        (status = 422, description = "Events of the wrong shape: the client drops the batch", body = ErrorBody),
    )
)]
async fn ingest(
    State(state): State<AdminState>,
    request: Request,
) -> Result<Json<IngestAnswer>, ApiError> {
    let bytes = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "an upload is at most {} bytes",
                    super::TELEMETRY_BODY_LIMIT
                ))
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {rejection}"))
            }
        })?;
    let batch = parse_batch(&bytes)?;
    if batch.events.is_empty() {
        return Ok(Json(IngestAnswer {
            accepted: 0,
            duplicates: 0,
        }));
    }
    let events: Vec<IngestEvent> = batch
        .events
        .into_iter()
        .map(|event| IngestEvent {
            seq: event.seq,
            timestamp: event.timestamp,
            method: event.method,
            object: event.object,
            value: event.value,
            extra: event.extra,
        })
        .collect();
    let outcome = state
        .store
        .ingest(&batch.client_id, &events, state.now())
        .await?;
    Ok(Json(IngestAnswer {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
    }))
}

/// Event counts per UTC day, object, slug, branch and method.
#[utoipa::path(
    get, path = "/api/v3/telemetry/enrollment/", tag = "telemetry",
    operation_id = "enrollment_counts",
    params(EnrollmentQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The counts", body = Vec<EnrollmentCountView>),
        (status = "4XX", description = "Not authorised, or a bad filter", body = ErrorBody),
    )
)]
async fn enrollment_counts(
    State(state): State<AdminState>,
    _caller: Viewer,
    Params(query): Params<EnrollmentQuery>,
) -> Result<Json<Vec<EnrollmentCountView>>, ApiError> {
    let counts = state
        .store
        .enrollment_counts(&EnrollmentFilter {
            object: query.object,
            slug: query.slug,
            branch: query.branch,
            method: query.method,
            from: query.from,
            to: query.to,
            limit: Some(query.limit.unwrap_or(DEFAULT_COUNT_LIMIT).max(1)),
        })
        .await?;
    Ok(Json(counts.into_iter().map(Into::into).collect()))
}

/// `GET /api/v3/telemetry/enrollment/`.
pub(super) fn admin_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(enrollment_counts))
}

/// `POST /api/v1/telemetry/`.
pub(super) fn ingest_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(result: Result<TelemetryBatch, ApiError>) -> (u16, String) {
        let error = result.expect_err("refused");
        (error.status().as_u16(), error.code().to_owned())
    }

    #[test]
    fn batches_are_read_or_refused_as_the_client_expects() {
        let good = br#"{"clientId": "c1", "events": [{"seq": 0, "timestamp": "2026-01-02T03:04:05Z",
            "method": "enroll", "object": "preference_study", "value": "s", "extra": {"branch": "a"}}]}"#;
        let batch = parse_batch(good).expect("parses");
        assert_eq!(batch.events[0].extra["branch"], "a");

        assert_eq!(codes(parse_batch(b"{nope")), (400, "bad_request".into()));
        assert_eq!(
            codes(parse_batch(
                br#"{"clientId": "c", "events": [{"seq": -1}]}"#
            )),
            (422, "invalid_events".into())
        );
        assert_eq!(
            codes(parse_batch(br#"{"clientId": "", "events": []}"#)),
            (422, "invalid_events".into())
        );
        let many = format!(
            r#"{{"clientId": "c", "events": [{}]}}"#,
            vec![r#"{"seq": 1, "timestamp": "2026-01-02T03:04:05Z", "method": "m", "object": "o", "value": ""}"#; 1001].join(",")
        );
        assert_eq!(
            codes(parse_batch(many.as_bytes())),
            (413, "payload_too_large".into())
        );
    }

    #[test]
    fn shape_errors_name_the_event() {
        let error = parse_batch(
            br#"{"clientId": "c", "events": [{"seq": 1, "timestamp": "yesterday", "method": "m", "object": "o", "value": ""}]}"#,
        )
        .expect_err("refused");
        let ApiError::Unprocessable { fields, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(fields[0].field, "events[0].timestamp");
    }
}
