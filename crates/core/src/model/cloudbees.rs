//! Format module `cloudbees` (being written).
