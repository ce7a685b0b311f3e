//! Placeholder: filled in by its owner (see the client runtime issue).
