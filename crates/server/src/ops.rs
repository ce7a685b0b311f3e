//! Operations: health, Prometheus metrics, request metrics and tracing, logs, body limits,
//! serving with graceful shutdown.
//!
//! - `GET /healthz`: 200 `{"status": "ok"}` when the [`HealthCheck`] passes (the store plugs
//!   in its database check), 503 `{"status": "unavailable", "error": "…"}` otherwise.
//! - `GET /metrics`: the Prometheus text of the recorder [`install_metrics`] installed (404
//!   when the state has none). Requests are counted by route, method and status
//!   (`flightdeck_http_requests_total`) and timed by route
//!   (`flightdeck_http_request_duration_seconds`, up to the response head).
//! - Logs: `tracing` with [`init_tracing`] (text or JSON lines, filtered by `RUST_LOG`,
//!   default `info`). tower-http's trace layer makes its spans and events at `DEBUG`, so at
//!   the default level they cost one disabled-callsite check per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::config::LogFormat;
use crate::state::AppState;

/// Request body limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Every route but telemetry (bytes).
    pub body: usize,
    /// `POST /api/v1/telemetry/` (bytes).
    pub telemetry: usize,
}

/// 1 MiB, the default limit of a request body.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// 4 MiB, the default limit of a telemetry upload.
pub const DEFAULT_TELEMETRY_BODY_LIMIT: usize = 4 * 1024 * 1024;

impl Default for BodyLimits {
    fn default() -> BodyLimits {
        BodyLimits {
            body: DEFAULT_BODY_LIMIT,
            telemetry: DEFAULT_TELEMETRY_BODY_LIMIT,
        }
    }
}

/// Why the server is not healthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unhealthy(pub String);

/// The future a [`HealthCheck`] returns.
pub type HealthFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Unhealthy>> + Send + 'a>>;

/// What `/healthz` asks (the store answers whether its database does).
pub trait HealthCheck: Send + Sync + 'static {
    /// `Ok` when the server can serve.
    fn check(&self) -> HealthFuture<'_>;
}

/// A health check that always passes (no database yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysHealthy;

impl HealthCheck for AlwaysHealthy {
    fn check(&self) -> HealthFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

/// A health check made of a function returning a future.
pub struct HealthFn<F>(pub F);

impl<F, Fut> HealthCheck for HealthFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Unhealthy>> + Send + 'static,
{
    fn check(&self) -> HealthFuture<'_> {
        Box::pin((self.0)())
    }
}

/// The error body every endpoint uses: `{"error": {"code": "...", "message": "..."}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// `/healthz` and `/metrics`.
pub fn ops_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.health().check().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "error": error.0})),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    match state.metrics() {
        Some(handle) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            "metrics are not enabled on this server",
        ),
    }
}

/// The latency buckets of `flightdeck_http_request_duration_seconds`.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Why metrics could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("installing the metrics recorder: {0}")]
pub struct MetricsError(String);

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
///
/// Without an HTTP listener of the exporter's own, histogram samples pile up until they are
/// rendered or [`spawn_metrics_upkeep`] drains them: spawn it.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, MetricsError>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("flightdeck_http_request_duration_seconds".to_owned()),
                    &LATENCY_BUCKETS,
                )
                .map_err(|error| MetricsError(error.to_string()))?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder)
                .map_err(|error| MetricsError(error.to_string()))?;
            Ok(handle)
        })
        .clone()
}

/// Drains histogram samples into their buckets every `period` (the exporter's upkeep).
pub fn spawn_metrics_upkeep(
    handle: PrometheusHandle,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    })
}

/// `router` with the layers every route shares: request metrics (on matched routes) and
/// tower-http's trace layer.
pub fn with_common_layers(router: Router<AppState>) -> Router<AppState> {
    router
        .route_layer(middleware::from_fn(track_request))
        .layer(TraceLayer::new_for_http())
}

/// Counts and times a request under its route pattern.
async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    metrics::counter!(
        "flightdeck_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => response.status().as_str().to_owned(),
    )
    .increment(1);
    metrics::histogram!("flightdeck_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("setting up logging: {0}")]
pub struct TracingError(String);

/// Sets up the process-wide log subscriber: text or JSON lines on standard error, filtered
/// by `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) -> Result<(), TracingError> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|error| TracingError(error.to_string()))
}

/// How long [`serve`] lets open connections finish after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and lets
/// open requests finish for up to [`SHUTDOWN_GRACE`].
///
/// Push streams never finish by themselves: have `shutdown` call
/// [`crate::state::Publisher::close_streams`] when the signal comes, e.g.
/// `serve(listener, router, async move { shutdown_signal().await; publisher.close_streams() })`.
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with_grace(listener, router, shutdown, SHUTDOWN_GRACE).await
}

/// [`serve`] with another grace period.
pub async fn serve_with_grace<F>(
    listener: TcpListener,
    router: Router,
    shutdown: F,
    grace: Duration,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    use axum::serve::ListenerExt as _;
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let listener = listener.tap_io(|stream| {
        // Small responses (304s) must not wait for Nagle's algorithm.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; finishing open requests");
            let _ = signalled.send(());
        })
        .into_future();
    let grace_over = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server stopped by itself; the other branch finishes.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!(?grace, "connections still open after the grace period; closing them");
            Ok(())
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// A health check from an `Arc`'d one (for sharing one check between states).
impl<T: HealthCheck + ?Sized> HealthCheck for Arc<T> {
    fn check(&self) -> HealthFuture<'_> {
        (**self).check()
    }
}
