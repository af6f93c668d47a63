//! Seeded-bug scenarios.
