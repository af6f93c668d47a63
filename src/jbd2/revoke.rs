//! The revoke table of fs/jbd2/revoke.c: which filesystem blocks must not be replayed from the
//! log, and up to which transaction.
//!
//! A revoke record is `(blocknr, sequence)`. The kernel keeps them in a hash table
//! (`struct jbd2_revoke_table_s`); we keep a `BTreeMap`, so iteration is in block order and
//! never depends on hashing.
//!
//! The table serves two users, as in the kernel:
//!
//! * **recovery** (PASS_REVOKE): [`RevokeTable::set_revoke`] records every revoke block's
//!   records with the transaction that wrote them, keeping the *latest* transaction per block;
//!   PASS_REPLAY asks [`RevokeTable::test_revoke`] before writing a logged block home;
//! * **the running transaction** (later): `jbd2_journal_revoke()` inserts a record
//!   ([`RevokeTable::insert`]), `jbd2_journal_cancel_revoke()` removes it when the block is
//!   journaled again ([`RevokeTable::cancel`]), and commit writes what is left.
//!
//! The interactions revoke.c's header comment spells out, and where they are decided:
//!
//! 1. *Block revoked, then journaled* (same transaction): journaling cancels the revoke, so the
//!    new copy is replayed ([`RevokeTable::cancel`]).
//! 2. *Block journaled, then revoked* (same transaction): the revoke record is written and takes
//!    precedence: `test_revoke(B, T)` is true for the copy logged in `T` itself.
//! 3. *Block revoked, then written as data*: the revoke stays, so no older logged copy can
//!    overwrite the new data at replay.
//! 4. *Recovery*: of several revokes of one block only the last counts, and a copy logged in a
//!    transaction after the last revoke is replayed (`tid_gt(sequence, record)`).
//!
//! The unit tests below (and the replay tests in `recovery.rs`) cover each case.

use crate::units::Tid;
use std::collections::BTreeMap;

/// A revoke table: filesystem block → the transaction of its (latest) revoke record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevokeTable {
    records: BTreeMap<u64, Tid>,
}

impl RevokeTable {
    /// An empty table (`jbd2_journal_init_revoke()`).
    pub fn new() -> RevokeTable {
        RevokeTable::default()
    }

    /// Model of `jbd2_journal_set_revoke()` (fs/jbd2/revoke.c): record that `blocknr` was
    /// revoked in transaction `sequence`. If the block has a record already, keep the later
    /// transaction (`tid_gt`), so the last revoke in the log wins.
    pub fn set_revoke(&mut self, blocknr: u64, sequence: Tid) {
        self.records
            .entry(blocknr)
            .and_modify(|record| {
                if sequence.gt(*record) {
                    *record = sequence;
                }
            })
            .or_insert(sequence);
    }

    /// Model of `jbd2_journal_test_revoke()` (fs/jbd2/revoke.c): must the copy of `blocknr`
    /// logged in transaction `sequence` be skipped? True if the block has a revoke record and
    /// `sequence` is not after it (`!tid_gt(sequence, record)`).
    pub fn test_revoke(&self, blocknr: u64, sequence: Tid) -> bool {
        self.records
            .get(&blocknr)
            .is_some_and(|&record| !sequence.gt(record))
    }

    /// Model of `insert_revoke_hash()` as `jbd2_journal_revoke()` uses it: record a revoke of
    /// `blocknr` by the running transaction `tid`, replacing any record of that block.
    pub fn insert(&mut self, blocknr: u64, tid: Tid) {
        self.records.insert(blocknr, tid);
    }

    /// Model of the table part of `jbd2_journal_cancel_revoke()`: the block is being
    /// journaled again, so forget its revoke record. Returns whether there was one
    /// (`did_revoke`).
    pub fn cancel(&mut self, blocknr: u64) -> bool {
        self.records.remove(&blocknr).is_some()
    }

    /// The transaction of `blocknr`'s revoke record, if any (`find_revoke_record()`).
    pub fn find(&self, blocknr: u64) -> Option<Tid> {
        self.records.get(&blocknr).copied()
    }

    /// Model of `jbd2_journal_clear_revoke()`: forget every record.
    pub fn clear_revoke(&mut self) {
        self.records.clear();
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the table holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record, in block order: what `jbd2_journal_write_revoke_records()` would write.
    pub fn records(&self) -> impl Iterator<Item = (u64, Tid)> + '_ {
        self.records.iter().map(|(&b, &t)| (b, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_revoke_keeps_the_latest_transaction() {
        let mut t = RevokeTable::new();
        t.set_revoke(100, Tid(7));
        t.set_revoke(100, Tid(5)); // an earlier revoke found later in the scan: ignored
        assert_eq!(t.find(100), Some(Tid(7)));
        t.set_revoke(100, Tid(9));
        assert_eq!(t.find(100), Some(Tid(9)));
        // Wrap-safe: 2 is after u32::MAX.
        t.set_revoke(200, Tid(u32::MAX));
        t.set_revoke(200, Tid(2));
        assert_eq!(t.find(200), Some(Tid(2)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn test_revoke_is_true_up_to_the_record() {
        let mut t = RevokeTable::new();
        t.set_revoke(42, Tid(10));
        assert!(t.test_revoke(42, Tid(9)), "older copy suppressed");
        assert!(
            t.test_revoke(42, Tid(10)),
            "copy of the revoking transaction suppressed"
        );
        assert!(!t.test_revoke(42, Tid(11)), "later copy replayed");
        assert!(!t.test_revoke(43, Tid(1)), "other blocks untouched");
        // Across the 2^32 wrap.
        t.set_revoke(7, Tid(3));
        assert!(t.test_revoke(7, Tid(u32::MAX - 1)));
        assert!(!t.test_revoke(7, Tid(4)));
    }

    /// Case 1 of revoke.c: revoked, then journaled in the same transaction. Journaling
    /// cancels the revoke, so nothing suppresses the new copy.
    #[test]
    fn revoked_then_journaled_cancels() {
        let mut running = RevokeTable::new();
        running.insert(500, Tid(4));
        assert!(running.cancel(500), "did_revoke");
        assert!(!running.cancel(500), "nothing left to cancel");
        assert!(running.is_empty());
        // Recovery sees no revoke record for 500, so T4's copy is replayed.
        let recovery = RevokeTable::new();
        assert!(!recovery.test_revoke(500, Tid(4)));
    }

    /// Case 2: journaled, then revoked in the same transaction: the revoke record is written
    /// with T and suppresses T's own copy.
    #[test]
    fn journaled_then_revoked_takes_precedence() {
        let mut running = RevokeTable::new();
        running.insert(600, Tid(4));
        let written: Vec<(u64, Tid)> = running.records().collect();
        assert_eq!(written, [(600, Tid(4))]);
        let mut recovery = RevokeTable::new();
        for (blk, tid) in written {
            recovery.set_revoke(blk, tid);
        }
        assert!(recovery.test_revoke(600, Tid(4)));
    }

    /// Case 3: revoked, then written as data. The revoke is not cancelled (a data write does
    /// not journal the block), so every logged copy up to the revoke stays suppressed.
    #[test]
    fn revoked_then_written_as_data_keeps_the_revoke() {
        let mut running = RevokeTable::new();
        running.insert(700, Tid(6));
        // (the data write happens outside the journal: no cancel)
        assert_eq!(running.find(700), Some(Tid(6)));
        let mut recovery = RevokeTable::new();
        recovery.set_revoke(700, Tid(6));
        assert!(recovery.test_revoke(700, Tid(5)), "old metadata copy");
        assert!(recovery.test_revoke(700, Tid(6)));
    }

    /// Case 4: several revokes, only the last counts; a copy logged after it is replayed.
    #[test]
    fn recovery_uses_the_last_revoke() {
        let mut recovery = RevokeTable::new();
        for tid in [3, 8, 5] {
            recovery.set_revoke(800, Tid(tid));
        }
        assert_eq!(recovery.find(800), Some(Tid(8)));
        assert!(recovery.test_revoke(800, Tid(7)));
        assert!(!recovery.test_revoke(800, Tid(9)));
        recovery.clear_revoke();
        assert!(recovery.is_empty() && !recovery.test_revoke(800, Tid(1)));
    }
}
