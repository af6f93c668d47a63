//! # e4fuzz
//!
//! A fuzzing and fault-injection harness for ext4's block-mapping engine. It drives a faithful
//! model of the kernel's ext4 mapping code (indirect block maps, extent trees, the
//! indirect→extent migration `EXT4_IOC_MIGRATE` and its reverse, a JBD2 journal with recovery)
//! on a simulated disk.
//!
//! Data flows one way: scenario → scheduler → engine → simulated disk → crash → recovery →
//! oracles → verdict.
//!
//! | module | owns |
//! |---|---|
//! | [`format`](mod@format) | on-disk structures of ext4 and JBD2: parse, serialize, checksum |
//! | [`dev`] | the simulated disk: sparse copy-on-write blocks, volatile cache, write log |
//! | [`fs`] | mkfs, mount, allocator, inodes, block maps, file operations |
//! | [`harness`] | one scenario to a verdict, minimizer, campaign loop |
//! | [`jbd2`] | the journal: recovery (model of fs/jbd2/recovery.c), the revoke table |
//! | [`ops`] | ops as the scheduler runs them: migrate both ways and the paths that race it |
//! | [`oracle`] | our fsck and the external e2fsck checks |
//! | [`sched`] | threads of a scenario, locks, yield points, deadlock and lock-order detection |
//!
//! Byte order lives in [`bytes`] only; block-number kinds are the newtypes of [`units`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
pub mod cli;
pub mod crc;
pub mod dev;
pub mod error;
pub mod format;
pub mod fs;
pub mod harness;
pub mod jbd2;
pub mod ops;
pub mod oracle;
pub mod profile;
pub mod scenario;
pub mod sched;
pub mod targets;
pub mod units;

pub use error::{CorruptKind, Error, Result};
pub use units::{Group, Ino, Lblk, Pblk, Tid};
