//! The server's integration tests, in one test binary: the crate and its dependencies are
//! linked once instead of once per file, which saves CI minutes and gigabytes of disk.
//!
//! Run one group with its module name, e.g. `cargo test -p flightdeck-server --test http
//! admin_openapi`.

mod admin_support;
mod common;
#[path = "../data/ofrep/fixture.rs"]
mod ofrep_fixture;

mod admin_api;
mod admin_openapi;
mod admin_roles;
mod admin_telemetry;
mod client_routes;
mod ofrep;
mod publish;
mod push_and_ops;
