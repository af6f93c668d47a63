//! The simulated disk (in progress).
