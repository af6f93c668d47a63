//! e4fuzz integration tests: one test binary (so linking happens once). Tests that need
//! e2fsprogs skip with a message when it is missing.

mod fsck;
mod mount;
mod util;
