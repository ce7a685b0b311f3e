//! Sandboxed JavaScript for Experiments Manifest v1 `jsfilter` functions (being written).
