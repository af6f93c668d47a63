//! Models of journal_t and transaction_t bookkeeping (fs/jbd2/journal.c, transaction.c,
//! revoke.c): the running transaction, handle credits (`start_this_handle()`,
//! `jbd2_journal_extend()`), revoke records, log-space accounting and abort.
//!
//! Commits are synchronous here: `jbd2_journal_commit_transaction()` runs to completion at the
//! point the filesystem asks for it (fsync, sync, a full transaction, a handle restart,
//! unmount). A transaction's changes are therefore never half-committed, and the "committing
//! transaction" of the kernel never coexists with the running one.

use crate::dev::{Disk, Zone};
use crate::error::{Error, Result};
use crate::format::jbd2::{self as fj, JournalSuperblock};
use crate::units::{Ino, Pblk, Tid};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The running transaction (`transaction_t` in state T_RUNNING).
#[derive(Clone, Debug)]
pub struct Transaction {
    /// Its id.
    pub tid: Tid,
    /// Metadata blocks modified under it, in the order they joined (`t_buffers`).
    pub buffers: Vec<u64>,
    members: BTreeSet<u64>,
    /// Blocks revoked under it (`t_revoke_table` records).
    pub revoked: BTreeSet<u64>,
    /// Inodes with newly allocated data that must be written before the commit
    /// (`t_inode_list`, data=ordered).
    pub ordered: BTreeSet<Ino>,
    /// Blocks freed under it: not reusable until it commits (`ext4_mb_free_metadata()`).
    pub freed: BTreeSet<u64>,
    /// Open handles (`t_updates`).
    pub updates: u32,
    /// Credits reserved by its handles (`t_outstanding_credits`).
    pub outstanding: u32,
}

impl Transaction {
    fn new(tid: Tid) -> Transaction {
        Transaction {
            tid,
            buffers: Vec::new(),
            members: BTreeSet::new(),
            revoked: BTreeSet::new(),
            ordered: BTreeSet::new(),
            freed: BTreeSet::new(),
            updates: 0,
            outstanding: 0,
        }
    }

    /// Whether nothing would be written by committing it.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty() && self.revoked.is_empty()
    }
}

/// A committed transaction whose blocks are not yet all written home (`j_checkpoint_transactions`).
#[derive(Clone, Debug)]
pub struct CheckpointTxn {
    /// Its id.
    pub tid: Tid,
    /// Log block where it starts.
    pub start: u32,
    /// The committed copy of each of its blocks (what checkpointing writes home); a block
    /// freed later is dropped from here (`jbd2_journal_forget()` cleans the buffer).
    pub blocks: BTreeMap<u64, (Arc<[u8]>, Zone)>,
}

/// The journal (`journal_t`).
#[derive(Clone, Debug)]
pub struct Journal {
    /// The on-disk journal superblock as last written.
    pub jsb: JournalSuperblock,
    /// Journal block n → filesystem block (`jbd2_journal_bmap()`).
    pub map: Vec<Pblk>,
    /// `j_first` / `j_last`: the log area is `[first, last)`.
    pub first: u32,
    /// See `first`.
    pub last: u32,
    /// `j_head`: where the next transaction starts.
    pub head: u32,
    /// `j_tail`: the start of the oldest live transaction.
    pub tail: u32,
    /// `j_tail_sequence`: that transaction's id.
    pub tail_sequence: Tid,
    /// `j_transaction_sequence`: the next transaction id.
    pub next_tid: Tid,
    /// The running transaction.
    pub running: Option<Transaction>,
    /// Committed transactions not yet checkpointed, oldest first.
    pub checkpoint: Vec<CheckpointTxn>,
    /// `j_max_transaction_buffers`.
    pub max_txn_buffers: u32,
    /// Set by `jbd2_journal_abort()`: every later operation fails with `Error::Aborted`.
    pub aborted: bool,
    /// Issue PREFLUSH/FUA (`JBD2_BARRIER`, the default).
    pub barrier: bool,
    /// Flush the device before a checkpoint moves the tail, and write the superblock with
    /// FUA (79feb521a447; off with the seeded bug S18, as before that commit).
    pub tail_flush: bool,
    /// Go on when that flush fails and write the new tail anyway, as
    /// jbd2_cleanup_journal_tail() does (mainline; the seeded bug U4). Off: the journal
    /// aborts with the old tail.
    pub tail_flush_error_ignored: bool,
    /// Commit time source (seconds), provided by the filesystem clock.
    pub commit_time: u64,
    /// `j_sb_buffer`: journal block 0 as read at load (see [`Journal::load`]).
    sb_buffer: Vec<u8>,
}

impl Journal {
    /// Model of jbd2_journal_load() on a clean journal (the caller has run recovery first):
    /// the log is empty, the next transaction is `s_sequence`.
    /// `sb_block` is journal block 0 as read (`j_sb_buffer`): the superblock is written back
    /// into it, so the bytes past the superblock on a larger block stay as they were.
    pub fn load(jsb: JournalSuperblock, map: Vec<Pblk>, sb_block: Vec<u8>) -> Result<Journal> {
        if jsb.csum_v1() {
            return Err(Error::Unsupported(
                "journal checksum v1 (COMPAT_CHECKSUM)".into(),
            ));
        }
        if jsb.s_start != 0 {
            return Err(Error::Invalid("journal needs recovery".into()));
        }
        let first = jsb.s_first;
        let last = jsb.log_last();
        if first == 0 || last <= first + 8 || last as usize > map.len() {
            return Err(crate::error::CorruptKind::JournalSuperblock("log area").into());
        }
        let seq = jsb.s_sequence;
        Ok(Journal {
            max_txn_buffers: (jsb.s_maxlen - jsb.num_fc_blocks()) / 4,
            jsb,
            map,
            first,
            last,
            head: first,
            tail: first,
            tail_sequence: seq,
            next_tid: seq,
            running: None,
            checkpoint: Vec::new(),
            aborted: false,
            barrier: true,
            tail_flush: true,
            tail_flush_error_ignored: false,
            commit_time: 0,
            sb_buffer: sb_block,
        })
    }

    /// The filesystem block behind log block `n`.
    pub fn bmap(&self, n: u32) -> Pblk {
        self.map[n as usize]
    }

    /// Free log blocks (`jbd2_log_space_left()` without the kernel's safety margin).
    pub fn space_left(&self) -> u32 {
        let size = self.last - self.first;
        if self.checkpoint.is_empty() {
            return size;
        }
        if self.head >= self.tail {
            size - (self.head - self.tail)
        } else {
            self.tail - self.head
        }
    }

    /// Advance a log position by one block, wrapping at `j_last`.
    pub fn next_block(&self, n: u32) -> u32 {
        if n + 1 >= self.last {
            self.first
        } else {
            n + 1
        }
    }

    /// Fail with `Error::Aborted` once the journal has aborted.
    pub fn check_alive(&self) -> Result<()> {
        if self.aborted {
            Err(Error::Aborted)
        } else {
            Ok(())
        }
    }

    /// The running transaction, created if there is none (`jbd2_get_transaction()`).
    pub fn running_mut(&mut self) -> &mut Transaction {
        if self.running.is_none() {
            let tid = self.next_tid;
            self.next_tid = tid.next();
            self.running = Some(Transaction::new(tid));
        }
        self.running.as_mut().expect("just created")
    }

    /// Whether a handle of `credits` fits in the running transaction
    /// (`start_this_handle()` / `add_transaction_credits()`).
    pub fn fits(&self, credits: u32) -> bool {
        self.running
            .as_ref()
            .is_none_or(|t| t.outstanding + credits <= self.max_txn_buffers)
    }

    /// Model of start_this_handle(): join the running transaction with `credits`.
    pub fn start_handle(&mut self, credits: u32) -> Tid {
        let t = self.running_mut();
        t.updates += 1;
        t.outstanding += credits;
        t.tid
    }

    /// Model of jbd2_journal_stop() → stop_this_handle(): the handle leaves the transaction
    /// and gives back the credits it did not use.
    pub fn stop_handle(&mut self, unused: u32) {
        if let Some(t) = self.running.as_mut() {
            assert!(t.updates > 0, "journal_stop without a handle");
            t.updates -= 1;
            t.outstanding = t.outstanding.saturating_sub(unused);
        }
    }

    /// Model of jbd2_journal_extend(): add `n` credits to an open handle if the transaction
    /// has room. False means the caller must restart.
    pub fn extend(&mut self, n: u32) -> bool {
        let max = self.max_txn_buffers;
        match self.running.as_mut() {
            Some(t) if t.outstanding + n <= max => {
                t.outstanding += n;
                true
            }
            _ => false,
        }
    }

    /// Model of jbd2_journal_get_write_access() / jbd2_journal_dirty_metadata(): the block
    /// belongs to the running transaction. A block journaled after it was revoked in the same
    /// transaction cancels the revoke (revoke.c: "revoked and then journaled"). Returns
    /// whether the block is new to the transaction (the buffer's `b_modified` was clear): only
    /// then does jbd2_journal_dirty_metadata() charge the handle a credit.
    pub fn add_buffer(&mut self, blk: u64) -> bool {
        let t = self.running_mut();
        let new = t.members.insert(blk);
        if new {
            t.buffers.push(blk);
        }
        t.revoked.remove(&blk);
        new
    }

    /// Model of jbd2_journal_revoke() + jbd2_journal_forget(): the metadata block is being
    /// freed; its logged copies must never be replayed over later contents, and no
    /// checkpoint may write it home.
    pub fn revoke(&mut self, blk: u64) {
        if !self.jsb.has_incompat(fj::JBD2_FEATURE_INCOMPAT_REVOKE) {
            self.jsb.s_feature_incompat |= fj::JBD2_FEATURE_INCOMPAT_REVOKE;
        }
        let t = self.running_mut();
        if t.members.remove(&blk) {
            t.buffers.retain(|&b| b != blk);
        }
        t.revoked.insert(blk);
        for cp in &mut self.checkpoint {
            cp.blocks.remove(&blk);
        }
    }

    /// Whether `blk` was freed by a transaction that has not committed yet.
    pub fn is_pending_free(&self, blk: u64) -> bool {
        self.running
            .as_ref()
            .is_some_and(|t| t.freed.contains(&blk))
    }

    /// Model of jbd2_journal_abort(): stop journaling; record the error in the journal
    /// superblock if it can still be written.
    pub fn abort(&mut self, dev: &mut Disk, errno: i32) {
        if self.aborted {
            return;
        }
        self.aborted = true;
        self.running = None;
        self.jsb.s_errno = -errno;
        let block = self.sb_block(dev);
        let _ = dev.write_fua_as(self.bmap(0), &block, Zone::Journal);
    }

    /// The superblock's block as `j_sb_buffer` holds it: the block as read at load with the
    /// superblock's current fields over its first 1024 bytes. The kernel writes the whole
    /// buffer, so on a 4 KiB journal whatever followed the superblock stays on disk (checked
    /// against 6.18 by `examples/journal_mutants.rs`).
    fn sb_block(&self, dev: &Disk) -> Vec<u8> {
        let bytes = self.jsb.to_bytes();
        let mut block = self.sb_buffer.clone();
        block.resize(dev.block_size() as usize, 0);
        block[..bytes.len()].copy_from_slice(&bytes);
        block
    }

    /// Write the journal superblock (`jbd2_write_superblock()`, REQ_SYNC|REQ_FUA, with a
    /// PREFLUSH when barriers are on).
    pub fn write_superblock(&mut self, dev: &mut Disk) -> Result<()> {
        self.write_superblock_as(dev, self.barrier)
    }

    /// The superblock write with FUA and no PREFLUSH: __jbd2_update_log_tail()'s `REQ_FUA`.
    pub(crate) fn write_superblock_fua(&mut self, dev: &mut Disk) -> Result<()> {
        let block = self.sb_block(dev);
        dev.write_fua_as(self.bmap(0), &block, Zone::Journal)
    }

    /// The superblock write, with a PREFLUSH and FUA (`barriers`) or plain (`WRITE_SYNC`: a
    /// checkpoint's with S18).
    pub(crate) fn write_superblock_as(&mut self, dev: &mut Disk, barriers: bool) -> Result<()> {
        let block = self.sb_block(dev);
        if !barriers {
            return dev.write_as(self.bmap(0), &block, Zone::Journal);
        }
        dev.flush()?;
        dev.write_fua_as(self.bmap(0), &block, Zone::Journal)
    }
}
