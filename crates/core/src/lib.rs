//! The pure core of Flightdeck.
//!
//! Everything here is a function of its inputs: the core does no IO, reads no clock and
//! draws no random numbers (see `clippy.toml` in this crate, which bans them). Time, random
//! values and the sandboxed JavaScript runner are passed in by the caller.
//!
//! Map of the crate:
//! - [`value`]: JavaScript values as the filter language sees them.
//! - [`jexl`]: the filter-expression language (mozjexl 1.1.6 dialect), parsed once, evaluated many times.
//! - [`sampling`]: Normandy hashing and sampling, CloudBees MD5 buckets, persisted-uniform sampling.
//! - [`version`]: the Mozilla toolkit version comparator and CloudBees' padded semver.
//! - [`context`]: the client context document and the filter context built from it.
//! - [`diagnostic`]: validation problems with file, line, column and field path.
//! - [`model`]: every input format (Normandy, Manifest v1, Test Pilot, CloudBees) parsed into one model.
//! - [`evaluate`]: decides, with reasons, which recipes, experiments, flights and flags apply.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod context;
pub mod diagnostic;
pub mod evaluate;
pub mod jexl;
pub mod model;
pub mod sampling;
pub mod value;
pub mod version;
