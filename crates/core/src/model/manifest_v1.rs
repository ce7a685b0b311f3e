//! Format module `manifest_v1` (being written).
