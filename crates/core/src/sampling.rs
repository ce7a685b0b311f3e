//! Deterministic sampling and bucketing, bit-exact with the reference systems.
//!
//! INTERFACE CONTRACT (signatures other modules rely on):
//! - `truncated_hash(input: &Value) -> u64`: first 48 bits of SHA-256 of `JSON.stringify(input)`.
//! - `fraction_to_key(fraction: f64) -> Result<u64, SamplingError>`.
//! - `stable_sample(input: &Value, rate: f64) -> Result<bool, SamplingError>`.
//! - `bucket_sample(input: &Value, start: f64, count: f64, total: f64) -> Result<bool, SamplingError>`.
//! - `ratio_sample(input: &Value, ratios: &[f64]) -> Result<usize, SamplingError>`.
//! - `rox_bucket(seed: &str) -> f64` and `rox_in_percentage_range(low, high, seed) -> bool` (CloudBees MD5).
//! - `uniform_sample(random_value: f64, sample: f64) -> bool` (Manifest v1 `sample`: value ≤ sample).

use crate::value::Value;

/// A sampling call with arguments outside their domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SamplingError {
    /// What is wrong.
    pub message: String,
}

/// First 48 bits of SHA-256 of `JSON.stringify(input)`.
pub fn truncated_hash(_input: &Value) -> u64 {
    unimplemented!("sampling is being written")
}

/// `floor(fraction × (2^48 − 1))`; errors outside [0, 1].
pub fn fraction_to_key(_fraction: f64) -> Result<u64, SamplingError> {
    unimplemented!("sampling is being written")
}

/// Normandy `stableSample`.
pub fn stable_sample(_input: &Value, _rate: f64) -> Result<bool, SamplingError> {
    unimplemented!("sampling is being written")
}

/// Normandy `bucketSample` (ranges wrap around `total`).
pub fn bucket_sample(
    _input: &Value,
    _start: f64,
    _count: f64,
    _total: f64,
) -> Result<bool, SamplingError> {
    unimplemented!("sampling is being written")
}

/// Normandy `ratioSample`: index of the chosen ratio.
pub fn ratio_sample(_input: &Value, _ratios: &[f64]) -> Result<usize, SamplingError> {
    unimplemented!("sampling is being written")
}
