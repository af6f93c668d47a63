//! The journal: a model of fs/jbd2 (journal.c, transaction.c, commit.c, checkpoint.c,
//! revoke.c, recovery.c) over the simulated disk. JBD2 is big-endian on disk (see
//! `format::jbd2`); this layer knows blocks, not inodes: the filesystem hands it block copies and
//! does the ordered-data writeback itself.

pub mod checkpoint;
pub mod commit;
pub mod transaction;

pub use transaction::{Journal, Transaction};
