//! Comparison benchmarks of Flightdeck against other flag-evaluation engines.
//!
//! The crate has no code of its own: see `benches/compare.rs`, run with
//! `cargo bench -p flightdeck-bench --bench compare`. It exists to keep those engines out of
//! every other crate's dependency tree.
