//! Evaluation of `manifest_v1` documents (being written).
