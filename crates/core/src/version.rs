//! Version comparison: the Mozilla toolkit comparator and CloudBees' padded semver.
//!
//! INTERFACE CONTRACT:
//! - `compare_toolkit(a: &str, b: &str) -> std::cmp::Ordering` (C++ `nsVersionComparator` semantics).
//! - `compare_cloudbees_semver(a: &str, b: &str) -> Option<std::cmp::Ordering>` (`None` when unparseable).

use std::cmp::Ordering;

/// Mozilla toolkit version comparison.
pub fn compare_toolkit(_a: &str, _b: &str) -> Ordering {
    unimplemented!("versions are being written")
}
