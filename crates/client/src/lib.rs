//! The Flightdeck client runtime: what runs on a device.
//!
//! An application embeds this crate to fetch a signed manifest, verify it, evaluate it locally
//! with the pure core (`flightdeck-core`), apply what applies (preference rollouts, rollbacks,
//! preference experiments, Manifest v1 experiments), remember everything it did so it can be
//! undone, and queue enrollment telemetry for upload.
//!
//! Every effect goes through a trait with a real and a test implementation: preferences
//! ([`prefs::PrefStore`]), package installation ([`install::Installer`]), HTTP
//! ([`fetch::HttpClient`]). Time and randomness are passed in ([`RandomSource`]), so every
//! lifecycle is replayable in tests.
//!
//! Crash safety: all state lives in one versioned file written atomically
//! ([`state::StateFile`]); preference writes of a run are first recorded in the state's
//! journal, then applied, then the journal is cleared ([`runtime`]).

pub mod canonical;
pub mod events;
pub mod fetch;
pub mod install;
pub mod manifest;
pub mod manifest_v1;
pub mod normandy;
pub mod prefs;
pub mod runtime;
pub mod signature;
pub mod state;
pub mod telemetry;

/// A source of uniform random numbers in [0, 1). Injected so that runs are reproducible.
pub trait RandomSource {
    /// The next uniform value in [0, 1).
    fn uniform(&mut self) -> f64;
}

/// A [`RandomSource`] that returns the given values in turn, then repeats the last one
/// (0.5 when none were given). For tests and reproducible runs.
#[derive(Debug, Clone, Default)]
pub struct FixedRandom {
    values: Vec<f64>,
    next: usize,
}

impl FixedRandom {
    /// A source that yields `values` in order.
    pub fn new(values: Vec<f64>) -> FixedRandom {
        FixedRandom { values, next: 0 }
    }
}

impl RandomSource for FixedRandom {
    fn uniform(&mut self) -> f64 {
        let value = self
            .values
            .get(self.next)
            .or(self.values.last())
            .copied()
            .unwrap_or(0.5);
        self.next = self.next.saturating_add(1);
        value
    }
}
