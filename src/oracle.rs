//! Oracles (in progress).
