//! Format module `testpilot` (being written).
