//! OpenFeature Remote Evaluation Protocol (OFREP): any OpenFeature SDK with an OFREP provider
//! evaluates Flightdeck's CloudBees flags, and the preference values Normandy rollouts and
//! experiments would give, on the server.
//!
//! Routes ([`router`]):
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag. 200 with
//!   `{key, value?, reason, variant?, metadata?}`; 404 `FLAG_NOT_FOUND`; 400 `PARSE_ERROR`,
//!   `INVALID_CONTEXT` or `TARGETING_KEY_MISSING`; 500 `GENERAL` (a flag whose configuration
//!   cannot be evaluated). Failures are `{key, errorCode, errorDetails}`.
//! - `POST /ofrep/v1/evaluate/flags`: every flag, `{flags: [...]}` (failures per flag inside),
//!   with a strong `ETag`; `If-None-Match` with that tag gives 304. Request-level failures are
//!   `{errorCode, errorDetails}` with 400.
//!
//! The body is `{"context": {...}}` (at most [`MAX_BODY_BYTES`]; larger is 413); see
//! [`parse_request`] for how a context maps to the client context document. The environment is
//! the query parameter `environment`, else the header [`ENVIRONMENT_HEADER`], else
//! `production`; an unknown one is `GENERAL` with 400 (OFREP providers cannot add query
//! parameters, but they can all send configured headers).
//!
//! What a key means ([`OfrepIndex`]): a CloudBees flag of that name, else a preference some
//! Normandy rollout or experiment sets.
//!
//! | outcome | reason | value | variant |
//! |---|---|---|---|
//! | CloudBees flag without rules (single value) | `STATIC` | the value | the value as a string |
//! | a condition decided | `TARGETING_MATCH` | its value | the value as a string |
//! | no condition held, the flag's root value | `DEFAULT` | the value | the value as a string |
//! | a percentage split or a schedule between 0 and 100 % decided | `SPLIT` | the value | the value as a string |
//! | `enabled: false`, or archived | `DISABLED` | none (code default) | none |
//! | the preference from an experiment branch | `SPLIT` | the branch's value | the branch slug |
//! | the preference from a rollout | `TARGETING_MATCH` | the rollout's value | none |
//! | the preference's only matching rollouts are rolled back | `DISABLED` | none | none |
//! | no recipe applies to this context | `DEFAULT` | none | none |
//!
//! A success without `value` is ADR-0006's code default (a CloudBees `null` is one too).
//! `metadata` says where the answer comes from: `source` (`cloudbees` or `normandy`), and
//! `rule` (the core's reason, e.g. `condition[0]`), or `recipeId`, `action` and `slug`.
//!
//! Errors per flag: a split whose stickiness property is the targeting key (the default)
//! and a context without `targetingKey` → `TARGETING_KEY_MISSING`; a split on another
//! property the context lacks → `INVALID_CONTEXT`; a matching experiment when there is no
//! `targetingKey` (its branch cannot be chosen) → `TARGETING_KEY_MISSING`; a dependency cycle
//! or a rejected flag file → `GENERAL`.
//!
//! Evaluation time comes from the injected clock ([`OfrepState::clock`]).

mod context;
mod index;
mod response;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};

pub use context::{EvaluationRequest, RequestError, client_context, parse_request};
pub use index::{DocumentError, OfrepIndex};
pub use response::{
    BulkEvaluation, BulkFailure, ErrorCode, EvaluationFailure, EvaluationSuccess, FlagEvaluation,
    Metadata, MetadataValue, Reason,
};

/// The largest request body read, in bytes: a context is a handful of attributes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The header that chooses the environment when the query does not.
pub const ENVIRONMENT_HEADER: &str = "x-flightdeck-environment";

/// The environment evaluated when the request names none.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// Where the handlers find the current index of an environment (the server keeps one per
/// environment's published snapshot, behind an atomic pointer).
pub trait IndexSource: Send + Sync + 'static {
    /// The current index of `environment`; `None` when there is no such environment.
    fn index(&self, environment: &str) -> Option<Arc<OfrepIndex>>;
}

impl<F> IndexSource for F
where
    F: Fn(&str) -> Option<Arc<OfrepIndex>> + Send + Sync + 'static,
{
    fn index(&self, environment: &str) -> Option<Arc<OfrepIndex>> {
        self(environment)
    }
}

/// The clock the handlers read the evaluation time from.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// What the OFREP handlers need from the application state (`OfrepState: FromRef<S>`).
#[derive(Clone)]
pub struct OfrepState {
    /// The indexes, per environment.
    pub indexes: Arc<dyn IndexSource>,
    /// The evaluation time.
    pub clock: Clock,
}

impl OfrepState {
    /// State over `indexes`, with `clock` giving the evaluation time.
    pub fn new(
        indexes: impl IndexSource,
        clock: impl Fn() -> jiff::Timestamp + Send + Sync + 'static,
    ) -> OfrepState {
        OfrepState {
            indexes: Arc::new(indexes),
            clock: Arc::new(clock),
        }
    }
}

impl std::fmt::Debug for OfrepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfrepState").finish_non_exhaustive()
    }
}

/// The OFREP routes, with their body limit. Merge them into the application's router.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    OfrepState: FromRef<S>,
{
    Router::new()
        .route("/ofrep/v1/evaluate/flags", post(evaluate_bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_one))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The query parameters OFREP routes read.
#[derive(Debug, Deserialize)]
struct EnvironmentQuery {
    environment: Option<String>,
}

/// The environment a request names, or why it names none usably.
fn environment(
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<String, String> {
    let Query(query) = query.map_err(|err| format!("bad query string: {err}"))?;
    if let Some(environment) = query.environment {
        return Ok(environment);
    }
    match headers.get(ENVIRONMENT_HEADER) {
        None => Ok(DEFAULT_ENVIRONMENT.to_owned()),
        Some(value) => value
            .to_str()
            .map(str::to_owned)
            .map_err(|_| format!("the {ENVIRONMENT_HEADER} header is not text")),
    }
}

/// The index to evaluate, or the failure that stops the request.
fn lookup(
    state: &OfrepState,
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Arc<OfrepIndex>, (StatusCode, ErrorCode, String)> {
    let environment = environment(query, headers)
        .map_err(|details| (StatusCode::BAD_REQUEST, ErrorCode::General, details))?;
    state.indexes.index(&environment).ok_or_else(|| {
        (
            StatusCode::BAD_REQUEST,
            ErrorCode::General,
            format!("no environment is named {environment:?}"),
        )
    })
}

/// The request body, or the failure for one that could not be read (too large: 413).
fn body_bytes(
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, (StatusCode, ErrorCode, String)> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let details = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the request body is larger than {MAX_BODY_BYTES} bytes")
        } else {
            format!("the request body could not be read: {rejection}")
        };
        (status, ErrorCode::ParseError, details)
    })
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn evaluate_one(
    State(state): State<OfrepState>,
    key: Result<Path<String>, PathRejection>,
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match key {
        Ok(Path(key)) => key,
        Err(rejection) => {
            let failure = FlagEvaluation::failure(
                "",
                ErrorCode::ParseError,
                format!("bad flag key: {rejection}"),
            );
            return json_response(StatusCode::BAD_REQUEST, &failure);
        }
    };
    let prepared = lookup(&state, query, &headers).and_then(|index| {
        let body = body_bytes(body)?;
        let request =
            parse_request(&body).map_err(|err| (StatusCode::BAD_REQUEST, err.code, err.details))?;
        Ok((index, request))
    });
    match prepared {
        Ok((index, request)) => {
            let evaluation = index.evaluate(&key, &request.context, (state.clock)());
            json_response(evaluation.http_status(), &evaluation)
        }
        Err((status, code, details)) => {
            json_response(status, &FlagEvaluation::failure(&key, code, details))
        }
    }
}

async fn evaluate_bulk(
    State(state): State<OfrepState>,
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let prepared = lookup(&state, query, &headers).and_then(|index| {
        let body = body_bytes(body)?;
        let request =
            parse_request(&body).map_err(|err| (StatusCode::BAD_REQUEST, err.code, err.details))?;
        Ok((index, request))
    });
    let (index, request) = match prepared {
        Ok(prepared) => prepared,
        Err((status, error_code, error_details)) => {
            let failure = BulkFailure {
                error_code,
                error_details,
            };
            return json_response(status, &failure);
        }
    };
    let bulk = BulkEvaluation {
        flags: index.evaluate_all(&request.context, (state.clock)()),
    };
    let Ok(body) = serde_json::to_vec(&bulk) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = index.bulk_etag(&request.posted, &body);
    let Ok(etag_value) = HeaderValue::from_str(&etag) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag_value)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (ETAG, etag_value),
        ],
        body,
    )
        .into_response()
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks for this header)
/// or is `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}
