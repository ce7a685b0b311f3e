//! Evaluation of `testpilot` documents (being written).
