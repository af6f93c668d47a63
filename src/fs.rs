//! The filesystem engine (in progress).
