//! The public client endpoints: the published documents and push.
//!
//! | route | body |
//! |---|---|
//! | `GET /api/v1/manifest/` | the signed unified manifest |
//! | `GET /api/v1/recipe/signed/` | Normandy's list of `{recipe, signature}` records |
//! | `GET /api/v1/experiments/` | the Experiments Manifest v1 document |
//! | `GET /api/v1/flights/` | the Test Pilot control-tower index |
//! | `GET /api/v1/signing_key/` | the published public keys |
//! | `GET /api/v1/events/` | push: server-sent `manifest-changed` events ([`events`]) |
//!
//! Each takes `?environment=NAME` (default `production`; an unknown one is a 404 with a JSON
//! error). Documents are cacheable: a strong `ETag` (the same for both encodings),
//! `If-None-Match` → 304 (lists, `*` and weak `W/` tags are understood), the precompressed
//! gzip bytes when `Accept-Encoding` allows them (`Vary: Accept-Encoding`), and
//! `Cache-Control: public, max-age=60`. `HEAD` answers the headers alone.
//!
//! The handlers take the whole request (no header map is copied), read the snapshot through
//! the publisher's atomic pointer and answer with reference-counted bytes: no lock, no
//! database, no copy of the body.

pub mod events;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Histogram};
use serde::Deserialize;

use crate::ops;
use crate::publish::{Document, DocumentKind};
use crate::state::AppState;

/// The environment a client endpoint serves when the request names none.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// `Cache-Control` of the published documents.
pub const CACHE_CONTROL_VALUE: &str = "public, max-age=60";

/// The document routes and the path each serves.
pub const DOCUMENT_ROUTES: [(&str, DocumentKind); 5] = [
    ("/api/v1/manifest/", DocumentKind::Manifest),
    ("/api/v1/recipe/signed/", DocumentKind::RecipesSigned),
    ("/api/v1/experiments/", DocumentKind::Experiments),
    ("/api/v1/flights/", DocumentKind::Flights),
    ("/api/v1/signing_key/", DocumentKind::SigningKeys),
];

/// The path of the push route.
pub const EVENTS_ROUTE: &str = "/api/v1/events/";

/// The client routes (documents and push) without layers, to be merged with others and given
/// the state; [`app`] is the usual way to use them.
pub fn client_routes() -> Router<AppState> {
    document_routes().route(EVENTS_ROUTE, get(events::events))
}

/// The document routes. They count and time themselves (with handles registered once, see
/// [`DocumentMetrics`]) and take no layer: every layer axum applies to a route costs a boxed
/// clone per request, and these are the hot path.
fn document_routes() -> Router<AppState> {
    Router::new()
        .route(DOCUMENT_ROUTES[0].0, get(manifest))
        .route(DOCUMENT_ROUTES[1].0, get(recipes_signed))
        .route(DOCUMENT_ROUTES[2].0, get(experiments))
        .route(DOCUMENT_ROUTES[3].0, get(flights))
        .route(DOCUMENT_ROUTES[4].0, get(signing_keys))
}

/// The whole application: the client routes, the operations routes ([`ops::ops_routes`]) and
/// `extra` (the admin API, telemetry, OFREP as they come).
///
/// Every route but the documents gets the common layers ([`ops::with_common_layers`]:
/// request metrics and tower-http tracing) and the default body limit
/// (`state.limits().body`; a route that takes more, like telemetry, sets its own
/// `DefaultBodyLimit`, which wins). The document routes read no body and record their own
/// metrics.
pub fn app(state: AppState, extra: Router<AppState>) -> Router {
    let limits = state.limits();
    let general = ops::with_common_layers(
        Router::new()
            .route(EVENTS_ROUTE, get(events::events))
            .merge(ops::ops_routes())
            .merge(extra),
    )
    .layer(DefaultBodyLimit::max(limits.body));
    document_routes().merge(general).with_state(state)
}

async fn manifest(State(state): State<AppState>, request: Request) -> Response {
    serve_document(&state, &request, DocumentKind::Manifest)
}

async fn recipes_signed(State(state): State<AppState>, request: Request) -> Response {
    serve_document(&state, &request, DocumentKind::RecipesSigned)
}

async fn experiments(State(state): State<AppState>, request: Request) -> Response {
    serve_document(&state, &request, DocumentKind::Experiments)
}

async fn flights(State(state): State<AppState>, request: Request) -> Response {
    serve_document(&state, &request, DocumentKind::Flights)
}

async fn signing_keys(State(state): State<AppState>, request: Request) -> Response {
    serve_document(&state, &request, DocumentKind::SigningKeys)
}

/// The query of the client endpoints.
#[derive(Debug, Deserialize)]
struct EnvironmentQuery {
    environment: Option<String>,
}

/// A query string that cannot be read.
pub(crate) struct InvalidQuery(String);

impl IntoResponse for InvalidQuery {
    fn into_response(self) -> Response {
        ops::error_response(StatusCode::BAD_REQUEST, "invalid_query", &self.0)
    }
}

/// The environment named by the query (`None` when it names none).
pub(crate) fn requested_environment(uri: &Uri) -> Result<Option<String>, InvalidQuery> {
    if uri.query().is_none_or(str::is_empty) {
        return Ok(None);
    }
    match Query::<EnvironmentQuery>::try_from_uri(uri) {
        Ok(Query(query)) => Ok(query.environment),
        Err(rejection) => Err(InvalidQuery(rejection.body_text())),
    }
}

/// The 404 for an environment that has no snapshot.
pub(crate) fn unknown_environment(environment: &str) -> Response {
    ops::error_response(
        StatusCode::NOT_FOUND,
        "unknown_environment",
        &format!("there is no environment named {environment:?}"),
    )
}

fn serve_document(state: &AppState, request: &Request, kind: DocumentKind) -> Response {
    let started = Instant::now();
    let response = answer_document(state, request, kind);
    state.document_metrics().record(
        kind,
        request.method() == Method::HEAD,
        response.status(),
        started.elapsed(),
    );
    response
}

fn answer_document(state: &AppState, request: &Request, kind: DocumentKind) -> Response {
    let requested = match requested_environment(request.uri()) {
        Ok(requested) => requested,
        Err(invalid) => return invalid.into_response(),
    };
    let environment = requested.as_deref().unwrap_or(DEFAULT_ENVIRONMENT);
    let Some(snapshot) = state.publisher().snapshot(environment) else {
        return unknown_environment(environment);
    };
    document_response(snapshot.document(kind), request.headers())
}

/// The response for `document`: 304 when `If-None-Match` names its ETag, else its bytes,
/// gzip-compressed when the client accepts gzip.
pub fn document_response(document: &Document, headers: &HeaderMap) -> Response {
    if none_match(headers, document.etag_str()) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        cache_headers(response.headers_mut(), document);
        return response;
    }
    let gzip = accepts_gzip(headers);
    let body = if gzip {
        document.gzip().clone()
    } else {
        document.body().clone()
    };
    let mut response = Response::new(Body::from(body));
    let response_headers = response.headers_mut();
    response_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if gzip {
        response_headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    cache_headers(response_headers, document);
    response
}

fn cache_headers(headers: &mut HeaderMap, document: &Document) {
    headers.insert(ETAG, document.etag().clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, as RFC 9110 prescribes
/// for `If-None-Match`: a `W/` prefix is ignored) or is `*`.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
            })
        })
    })
}

/// Whether `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) with a non-zero quality, or
/// else `*` with a non-zero quality.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for entry in text.split(',') {
            let mut parameters = entry.split(';');
            let coding = parameters.next().unwrap_or_default().trim();
            let acceptable = parameters.all(|parameter| {
                let parameter = parameter.trim();
                match parameter
                    .strip_prefix("q=")
                    .or_else(|| parameter.strip_prefix("Q="))
                {
                    Some(quality) => quality.trim().parse::<f32>().is_ok_and(|q| q > 0.0),
                    None => true,
                }
            });
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(acceptable);
            } else if coding == "*" {
                any = Some(acceptable);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// The statuses a document route answers with.
const DOCUMENT_STATUSES: [(StatusCode, &str); 4] = [
    (StatusCode::OK, "200"),
    (StatusCode::NOT_MODIFIED, "304"),
    (StatusCode::NOT_FOUND, "404"),
    (StatusCode::BAD_REQUEST, "400"),
];

/// The request metrics of the document routes, registered once: the same series
/// (`flightdeck_http_requests_total{route, method, status}` and
/// `flightdeck_http_request_duration_seconds{route}`) the common metrics layer records for
/// other routes, without building label sets and looking them up on every request.
pub struct DocumentMetrics {
    /// By document, then GET/HEAD, then [`DOCUMENT_STATUSES`].
    requests: Vec<[[Counter; DOCUMENT_STATUSES.len()]; 2]>,
    /// By document.
    latency: Vec<Histogram>,
}

impl DocumentMetrics {
    /// Registers every series with the process's metrics recorder (no-op handles when none
    /// is installed yet).
    pub fn register() -> DocumentMetrics {
        let requests = DOCUMENT_ROUTES
            .iter()
            .map(|(route, _)| {
                ["GET", "HEAD"].map(|method| {
                    DOCUMENT_STATUSES.map(|(_, status)| {
                        metrics::counter!(
                            "flightdeck_http_requests_total",
                            "route" => *route,
                            "method" => method,
                            "status" => status,
                        )
                    })
                })
            })
            .collect();
        let latency = DOCUMENT_ROUTES
            .iter()
            .map(|(route, _)| {
                metrics::histogram!("flightdeck_http_request_duration_seconds", "route" => *route)
            })
            .collect();
        DocumentMetrics { requests, latency }
    }

    fn record(&self, kind: DocumentKind, head: bool, status: StatusCode, elapsed: Duration) {
        let Some((position, route)) = DOCUMENT_ROUTES
            .iter()
            .enumerate()
            .find_map(|(position, (route, k))| (*k == kind).then_some((position, *route)))
        else {
            return;
        };
        let by_method = self
            .requests
            .get(position)
            .and_then(|m| m.get(usize::from(head)));
        let counter = DOCUMENT_STATUSES
            .iter()
            .position(|(s, _)| *s == status)
            .and_then(|i| by_method.and_then(|counters| counters.get(i)));
        match counter {
            Some(counter) => counter.increment(1),
            None => metrics::counter!(
                "flightdeck_http_requests_total",
                "route" => route,
                "method" => if head { "HEAD" } else { "GET" },
                "status" => status.as_str().to_owned(),
            )
            .increment(1),
        }
        if let Some(histogram) = self.latency.get(position) {
            histogram.record(elapsed.as_secs_f64());
        }
    }
}

impl std::fmt::Debug for DocumentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        let etag = "\"abc\"";
        assert!(none_match(&headers(&[("if-none-match", "\"abc\"")]), etag));
        assert!(none_match(
            &headers(&[("if-none-match", "W/\"abc\"")]),
            etag
        ));
        assert!(none_match(
            &headers(&[("if-none-match", "\"x\", W/\"abc\" , \"y\"")]),
            etag
        ));
        assert!(none_match(
            &headers(&[("if-none-match", "\"x\""), ("if-none-match", "\"abc\"")]),
            etag
        ));
        assert!(none_match(&headers(&[("if-none-match", "*")]), etag));
        assert!(!none_match(&headers(&[("if-none-match", "\"abd\"")]), etag));
        assert!(!none_match(&headers(&[("if-none-match", "abc")]), etag));
        assert!(!none_match(&headers(&[]), etag));
    }

    #[test]
    fn accept_encoding_qualities() {
        let accepts = |value: &'static str| accepts_gzip(&headers(&[("accept-encoding", value)]));
        assert!(accepts("gzip"));
        assert!(accepts("deflate, gzip;q=0.5"));
        assert!(accepts("GZIP"));
        assert!(accepts("x-gzip"));
        assert!(accepts("br, *"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip; q=0.000"));
        assert!(!accepts("*;q=0"));
        assert!(!accepts("identity"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("gzip;q=0, *"), "an explicit gzip;q=0 wins over *");
        assert!(!accepts_gzip(&headers(&[])));
    }
}
