//! e4fuzz integration tests: one test binary (so linking happens once). Tests that need
//! e2fsprogs skip with a message when it is missing.

mod alloc;
mod cli;
mod corpus;
mod extents;
mod fsck;
mod fuse;
mod harness;
mod indirect;
mod journal;
mod kernel_eio;
mod kernel_flush;
mod kernel_oracle;
mod kernel_punch;
mod kernel_reads;
pub(crate) mod migrate;
mod migrate_long;
mod mkfs;
mod mount;
pub(crate) mod recovery;
mod replay_mutants;
mod repros;
mod util;
