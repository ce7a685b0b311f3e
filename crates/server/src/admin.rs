//! The admin API (`/api/v3/…`) and the telemetry ingest (`POST /api/v1/telemetry/`).
//!
//! Routes are declared once, with `utoipa` path attributes, and registered through
//! `utoipa_axum`'s [`OpenApiRouter`]: the router that serves them and the OpenAPI document
//! ([`openapi`], served at `GET /api/v3/openapi.json`) come from the same list.
//!
//! - [`AdminState`] holds the store, the clock and the [`PublishHook`] told about writes that
//!   can change what an environment publishes.
//! - Every route but the document and the ingest needs a bearer token ([`extract::Caller`]);
//!   the role it needs is part of the handler's signature.
//! - Every write is validated by the core parser of its kind ([`crate::validate`]) before the
//!   store sees it; the store writes the audit event in the same transaction as the change.
//! - Errors are [`ApiError`]: `{"error": {"code", "message", "fields"?}}` with stable codes.
//!
//! Submodules: `recipes` (one set of routes per kind), `approvals` (revisions and approval
//! requests), `accounts` (users, tokens), `settings` (environments, signing keys, audit),
//! `telemetry` (ingest and enrollment counts), `views` (the JSON shapes), [`bootstrap`] (the
//! CLI's first user and token).

pub mod bootstrap;
mod checks;
pub mod error;
pub mod extract;
pub mod views;

mod accounts;
mod approvals;
mod recipes;
mod settings;
mod telemetry;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use flightdeck_store::Store;
use jiff::Timestamp;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::error::ApiError;

/// The largest admin request body (1 MiB): a recipe is a few KiB.
pub const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// The largest telemetry upload (4 MiB): 1000 events of a few hundred bytes, with room.
pub const TELEMETRY_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The clock the admin API stamps changes with (tests pass a fixed one).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The future a [`PublishHook`] returns.
pub type HookFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Told after every committed write that can change what is published, so the server can
/// rebuild the environment's snapshot and push a notice.
///
/// Called with `Some(environment)` after enabling or disabling a recipe, after approving a
/// revision of an enabled recipe, and after creating an environment; with `None` (every
/// environment) after a signing key is added. Never called while a transaction is open.
/// The handler awaits it before answering, so once a write has been answered, this node
/// serves what it published.
pub trait PublishHook: Send + Sync {
    /// Something `environment` (or, for `None`, every environment) publishes may have changed.
    fn changed<'a>(&'a self, environment: Option<&'a str>) -> HookFuture<'a>;
}

/// A hook that does nothing (tools and tests that publish nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopHook;

impl PublishHook for NoopHook {
    fn changed<'a>(&'a self, _environment: Option<&'a str>) -> HookFuture<'a> {
        Box::pin(async {})
    }
}

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The storage.
    pub store: Store,
    /// Where `now` comes from.
    pub clock: Clock,
    /// Told about writes that change what is published.
    pub hooks: Arc<dyn PublishHook>,
}

impl AdminState {
    /// State over `store` with the system clock.
    pub fn new(store: Store, hooks: Arc<dyn PublishHook>) -> AdminState {
        AdminState {
            store,
            clock: Arc::new(Timestamp::now),
            hooks,
        }
    }

    /// The same state with another clock.
    pub fn with_clock(mut self, clock: Clock) -> AdminState {
        self.clock = clock;
        self
    }

    /// The current time, by the state's clock.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("store", &self.store.backend_name())
            .finish_non_exhaustive()
    }
}

/// The admin API: every `/api/v3/…` route, with a 1 MiB body limit. Give it its state with
/// `.with_state(state)` and merge it into the server's router.
pub fn router() -> Router<AdminState> {
    let (router, _) = admin_routes().split_for_parts();
    router.layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
}

/// The public telemetry ingest, `POST /api/v1/telemetry/`, with a 4 MiB body limit.
pub fn telemetry_router() -> Router<AdminState> {
    let (router, _) = telemetry_routes().split_for_parts();
    router.layer(DefaultBodyLimit::max(TELEMETRY_BODY_LIMIT))
}

/// The OpenAPI document of [`router`] and [`telemetry_router`].
pub fn openapi() -> OpenApi {
    let (_, mut document) = admin_routes().merge(telemetry_routes()).split_for_parts();
    if let Some(components) = document.components.as_mut() {
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fdt_ token")
                    .description(Some(
                        "An API token (`fdt_…`) made with `POST /api/v3/user/{id}/token/` or \
                         `flightdeck admin create-token`.",
                    ))
                    .build(),
            ),
        );
    }
    document
}

/// [`openapi`] as pretty JSON, made once per process.
pub fn openapi_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        openapi().to_pretty_json().unwrap_or_else(|error| {
            tracing::error!(%error, "cannot serialise the OpenAPI document");
            "{}".to_owned()
        })
    })
}

/// The name of the bearer security scheme in the document.
pub(crate) const BEARER: &str = "bearer";

fn base_document() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Flightdeck admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Recipes of every kind, their revisions, approval requests and enabled \
                     state; users, tokens, environments, signing keys, the audit log and \
                     telemetry. Errors are `{\"error\": {\"code\", \"message\", \"fields\"?}}`.",
                ))
                .build(),
        )
        .build()
}

fn admin_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(base_document())
        .merge(recipes::routes())
        .merge(approvals::routes())
        .merge(accounts::routes())
        .merge(settings::routes())
        .merge(telemetry::admin_routes())
        .routes(routes!(openapi_document))
}

fn telemetry_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().merge(telemetry::ingest_routes())
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v3/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of the admin API", content_type = "application/json"))
)]
async fn openapi_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}
