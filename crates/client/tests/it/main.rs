//! The client library's integration tests, in one test binary: the crate and its
//! dependencies are linked once instead of once per file.
//!
//! Run one group with its module name, e.g. `cargo test -p flightdeck-client --test it
//! normandy_rollouts`.

mod normandy_support;
mod support;

mod http_fetch;
mod http_telemetry;
mod manifest_v1_install;
mod manifest_v1_lifecycle;
mod normandy_experiments;
mod normandy_proptest;
mod normandy_rollouts;
mod runtime_run;
mod signature_canonical;
mod signature_manifest;
mod signature_openssl;
