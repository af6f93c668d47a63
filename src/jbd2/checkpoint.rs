//! Models of jbd2_log_do_checkpoint() + jbd2_cleanup_journal_tail() (fs/jbd2/checkpoint.c) and
//! jbd2_mark_journal_empty() (journal.c): committed blocks are written to their home locations,
//! the device is flushed, and only then does the journal superblock move the tail past them
//! ("a transaction leaves the log only after all of its metadata is durable at home").
//!
//! Simplification: a checkpoint always drains every committed transaction (the kernel may stop
//! after the oldest ones once enough space is free). Both are valid orders; ours writes more.
//!
//! jbd2_cleanup_journal_tail() ignores the error of its blkdev_issue_flush() and writes the
//! new tail anyway (with FUA), which after a failed cache flush leaves the log without
//! transactions whose blocks never became durable at home: the seeded bug U4, on in
//! `mainline` (confirmed on 6.18: `tests/integration/kernel_flush.rs`). `fixed` aborts
//! instead, keeping the old tail.

use crate::dev::Disk;
use crate::error::Result;
use crate::jbd2::transaction::Journal;
use crate::units::Pblk;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Journal {
    /// Model of jbd2_log_do_checkpoint() writing the live `buffer_head`s, not copies: with no
    /// transaction running, each block still to be checkpointed takes `live`'s contents for it
    /// (the cached buffer, which holds what was committed plus writes made outside the
    /// journal since, such as the error fields ext4_error() puts in the superblock).
    pub fn refresh_checkpoint(&mut self, live: impl Fn(u64) -> Option<Arc<[u8]>>) {
        assert!(self.running.as_ref().is_none_or(|t| t.is_empty()));
        for cp in &mut self.checkpoint {
            for (blk, (data, _)) in cp.blocks.iter_mut() {
                if let Some(now) = live(*blk) {
                    *data = now;
                }
            }
        }
    }

    /// Write every committed block home, flush, and advance the tail to the head.
    pub fn checkpoint_all(&mut self, dev: &mut Disk) -> Result<()> {
        self.check_alive()?;
        if self.checkpoint.is_empty() {
            return Ok(());
        }
        let mut latest = BTreeMap::new();
        for cp in &self.checkpoint {
            for (blk, v) in &cp.blocks {
                latest.insert(*blk, v.clone());
            }
        }
        for (blk, (data, zone)) in latest {
            if let Err(e) = dev.write_as(Pblk(blk), &data, zone) {
                self.abort(dev, 5);
                return Err(e);
            }
        }
        self.checkpoint.clear();
        self.update_tail(dev)
    }

    /// Model of jbd2_cleanup_journal_tail() → __jbd2_update_log_tail(): with no transaction
    /// left to checkpoint, the tail becomes the head and the next transaction's id. The
    /// device is flushed first, so that the blocks just written home are durable before the
    /// log forgets them, and the superblock goes with FUA.
    ///
    /// Seeded bug S18 (before 79feb521a447, "jbd2: issue cache flush after checkpointing even
    /// with internal journal"): the flush was issued only for an external journal, and the
    /// superblock written without FUA, so the new tail could reach the media before the
    /// checkpointed blocks. A crash then loses committed metadata that recovery no longer
    /// replays.
    ///
    /// The flush comes before the new tail is set: when it fails, the journal aborts with the
    /// old tail in its superblock.
    ///
    /// Seeded bug U4 (mainline): jbd2_cleanup_journal_tail() ignores blkdev_issue_flush()'s
    /// error and writes the new tail anyway, with FUA. The blocks just written home may then
    /// not be on the media (a volatile cache that failed to flush may have lost them), and
    /// the log no longer holds them: a crash, or the cache dropping them, loses committed
    /// metadata.
    fn update_tail(&mut self, dev: &mut Disk) -> Result<()> {
        let barrier = self.tail_flush && self.barrier;
        if barrier {
            if let Err(e) = dev.flush() {
                if !self.tail_flush_error_ignored {
                    self.abort(dev, 5);
                    return Err(e);
                }
            }
        }
        let tid = self.running.as_ref().map_or(self.next_tid, |t| t.tid);
        self.tail = self.head;
        self.tail_sequence = tid;
        self.jsb.s_sequence = tid;
        self.jsb.s_start = self.tail;
        let r = match barrier {
            true => self.write_superblock_fua(dev),
            false => self.write_superblock_as(dev, false),
        };
        if r.is_err() {
            self.abort(dev, 5);
        }
        r
    }

    /// Model of journal_reset() at load: the log starts empty at `j_first` and the superblock
    /// says so (`s_start = j_first`, `s_sequence` = the next id).
    pub fn reset(&mut self, dev: &mut Disk) -> Result<()> {
        self.head = self.first;
        self.tail = self.first;
        self.tail_sequence = self.next_tid;
        self.jsb.s_sequence = self.next_tid;
        self.jsb.s_start = self.first;
        self.write_superblock(dev)
    }

    /// Model of jbd2_mark_journal_empty() at unmount (everything checkpointed): `s_start = 0`.
    pub fn mark_empty(&mut self, dev: &mut Disk) -> Result<()> {
        self.check_alive()?;
        assert!(self.checkpoint.is_empty() && self.running.as_ref().is_none_or(|t| t.is_empty()));
        self.jsb.s_sequence = self.running.as_ref().map_or(self.next_tid, |t| t.tid);
        self.jsb.s_start = 0;
        self.write_superblock(dev)
    }
}
