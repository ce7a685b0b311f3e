//! The Flightdeck control tower, `flightdeck serve` (`docs/server.md`).
//!
//! - [`control_tower`]: the whole server: opens the store, makes the first signing key and
//!   admin, builds and rebuilds snapshots, follows other nodes, serves every route.
//! - [`admin`]: the admin API (`/api/v3/…`) with roles and peer approval, its OpenAPI
//!   document, and telemetry ingest (`POST /api/v1/telemetry/`).
//! - [`auth`], [`validate`]: API tokens; validation of what authors write, by the core.
//! - [`publish`]: every client document of an environment rendered once into an immutable
//!   [`publish::Snapshot`] (signed unified manifest, Normandy signed recipes, Manifest v1,
//!   flights index, public keys), each as bytes, gzip bytes and a strong ETag.
//! - [`state`]: the current snapshot of each environment behind an atomic pointer, and the
//!   change notices that [`state::Publisher::install_snapshot`] sends.
//! - [`client`]: the public, cacheable client endpoints (`/api/v1/…`) and push (SSE).
//! - [`ofrep`]: OpenFeature Remote Evaluation Protocol endpoints.
//! - [`ops`]: health, Prometheus metrics, logs, request limits, graceful shutdown.
//! - [`config`]: the server's configuration from a TOML file, `FLIGHTDECK_*` variables and
//!   command-line flags.
//!
//! Client requests read snapshots only: they never wait on a lock or the database.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod auth;
pub mod client;
pub mod config;
pub mod control_tower;
pub mod ofrep;
pub mod ops;
pub mod publish;
pub mod state;
pub mod validate;

pub use client::{app, client_routes};
pub use config::ServerConfig;
pub use control_tower::{ControlTower, FirstStart, TowerError};
pub use ops::{ops_routes, serve, shutdown_signal};
pub use publish::{ItemKind, PublishedKey, Snapshot, SourceItem, content_hash};
pub use state::{AppState, Publisher};
