//! Evaluation of `cloudbees` documents (being written).
