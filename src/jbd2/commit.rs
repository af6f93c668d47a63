//! Model of jbd2_journal_commit_transaction() (fs/jbd2/commit.c), the log-writing half: revoke
//! blocks, then descriptor blocks each followed by the (escaped) copies of the blocks it tags,
//! then — after a PREFLUSH so that the ordered data and every log block are durable — the
//! commit block with FUA. The filesystem has already written the ordered data (T_FLUSH) and
//! hands over a frozen copy of each metadata block.

use crate::dev::{Disk, Zone};
use crate::error::Result;
use crate::format::jbd2::{self as fj, BlockTag};
use crate::jbd2::transaction::{CheckpointTxn, Journal};
use crate::units::Tid;
use std::sync::Arc;

/// A frozen metadata block handed to the commit (`jbd2_journal_write_metadata_buffer()`'s
/// input): home block, contents at commit time, and its zone.
pub type BlockCopy = (u64, Arc<[u8]>, Zone);

impl Journal {
    /// Log blocks a commit of `nbufs` buffers and `nrevoked` revokes needs.
    pub fn commit_size(&self, nbufs: usize, nrevoked: usize) -> u32 {
        let bs = self.jsb.s_blocksize as usize;
        let per_desc = fj::descriptor_capacity(&self.jsb, bs);
        let per_revoke = fj::revoke_capacity(&self.jsb, bs);
        let descs = nbufs.div_ceil(per_desc);
        let revokes = nrevoked.div_ceil(per_revoke);
        (descs + nbufs + revokes + 1) as u32
    }

    /// Write the running transaction to the log and make it durable. `copies` are the frozen
    /// contents of its buffers, in `t_buffers` order. On an I/O error the journal aborts.
    /// The caller checked that the log has room ([`Journal::commit_size`]).
    pub fn commit(&mut self, dev: &mut Disk, copies: Vec<BlockCopy>) -> Result<()> {
        self.check_alive()?;
        let Some(t) = self.running.take() else {
            return Ok(());
        };
        assert_eq!(t.updates, 0, "commit with open handles");
        if t.is_empty() {
            // Nothing to log: the id is handed out again (no gap in the log's sequence).
            self.next_tid = t.tid;
            return Ok(());
        }
        let revoked: Vec<u64> = t.revoked.iter().copied().collect();
        assert!(
            self.commit_size(copies.len(), revoked.len()) <= self.space_left(),
            "log full"
        );
        match self.write_log(dev, t.tid, &copies, &revoked) {
            Ok(start) => {
                let blocks = copies.into_iter().map(|(b, d, z)| (b, (d, z))).collect();
                if self.checkpoint.is_empty() {
                    self.tail = start;
                    self.tail_sequence = t.tid;
                }
                self.checkpoint.push(CheckpointTxn {
                    tid: t.tid,
                    start,
                    blocks,
                });
                Ok(())
            }
            Err(e) => {
                self.abort(dev, 5);
                Err(e)
            }
        }
    }

    /// Write revoke, descriptor, data and commit blocks from `j_head`; returns the start block.
    fn write_log(
        &mut self,
        dev: &mut Disk,
        tid: Tid,
        copies: &[BlockCopy],
        revoked: &[u64],
    ) -> Result<u32> {
        let bs = self.jsb.s_blocksize as usize;
        let start = self.head;
        for block in fj::build_revoke(tid, revoked, &self.jsb, bs) {
            self.log_write(dev, &block)?;
        }
        let per_desc = fj::descriptor_capacity(&self.jsb, bs);
        for chunk in copies.chunks(per_desc) {
            let mut tags = Vec::with_capacity(chunk.len());
            let mut logged = Vec::with_capacity(chunk.len());
            for (blk, data, _) in chunk {
                let mut copy = data.to_vec();
                let escaped = fj::escape(&mut copy);
                let checksum = fj::block_tag_csum(&self.jsb, tid, &copy);
                let flags = if escaped { fj::JBD2_FLAG_ESCAPE } else { 0 };
                tags.push(BlockTag {
                    blocknr: *blk,
                    flags,
                    checksum,
                });
                logged.push(copy);
            }
            self.log_write(dev, &fj::build_descriptor(tid, &tags, &self.jsb, bs))?;
            for copy in &logged {
                self.log_write(dev, copy)?;
            }
        }
        let commit = fj::build_commit(tid, self.commit_time, 0, &self.jsb, bs);
        if self.barrier {
            dev.flush()?;
            dev.write_fua_as(self.bmap(self.head), &commit, Zone::Journal)?;
        } else {
            dev.write_as(self.bmap(self.head), &commit, Zone::Journal)?;
        }
        self.head = self.next_block(self.head);
        Ok(start)
    }

    fn log_write(&mut self, dev: &mut Disk, data: &[u8]) -> Result<()> {
        dev.write_as(self.bmap(self.head), data, Zone::Journal)?;
        self.head = self.next_block(self.head);
        Ok(())
    }
}
