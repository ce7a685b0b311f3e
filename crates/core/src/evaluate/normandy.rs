//! Evaluation of `normandy` documents (being written).
