//! Format module `normandy` (being written).
