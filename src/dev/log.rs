//! The write log (after xfstests' dm-log-writes): every write and flush that reached the
//! device, in issue order, and the list of writes not yet durable.
//!
//! Each entry carries a sequence number (never reused, also across [`WriteLog::clear`]) and its
//! *epoch*, the number of flushes completed before it was issued: a write of epoch `e` is durable
//! once the flush of epoch `e` completes. Writes that failed (injected fault, dead device) never
//! reached the device and are not logged.
//!
//! The pending list is what a crash chooses from: non-FUA writes issued since the last flush, in
//! issue order, minus those a later FUA write to the same block superseded. Its entries are
//! always still in the log, so they have a log index.

use super::zone::Zone;
use super::Block;
use crate::units::Pblk;

/// One operation that reached the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Issue order, starting at 0 when the device is created; never reused.
    pub seq: u64,
    /// Number of flushes completed before this operation was issued.
    pub epoch: u32,
    /// What was done.
    pub op: LogOp,
}

/// A logged operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// A completed block write.
    Write {
        /// The block written.
        blk: Pblk,
        /// The content written (shared with the device, never copied).
        data: Block,
        /// Whether it was issued FUA (durable on completion).
        fua: bool,
        /// The effective zone of the write.
        zone: Zone,
    },
    /// A completed cache flush.
    Flush,
}

/// A completed write that is not yet durable.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    /// The write's log sequence number.
    pub(crate) seq: u64,
    /// The block written.
    pub(crate) blk: u64,
    /// The content written.
    pub(crate) data: Block,
}

/// The log and the pending list of one device.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteLog {
    /// Logged operations, ascending `seq`.
    entries: Vec<LogEntry>,
    /// Writes not yet durable, ascending `seq`.
    pending: Vec<Pending>,
    /// Sequence number of the next operation.
    next_seq: u64,
    /// Flushes completed so far.
    epoch: u32,
    /// `seq` of the first operation after the log's origin (see [`WriteLog::at_origin`]).
    origin_seq: u64,
    /// `epoch` at the log's origin.
    origin_epoch: u32,
}

impl WriteLog {
    /// Log a completed write. A non-FUA write becomes pending; a FUA write is durable and
    /// supersedes every pending write to the same block.
    pub(crate) fn record_write(&mut self, blk: Pblk, data: Block, fua: bool, zone: Zone) {
        let seq = self.push(LogOp::Write {
            blk,
            data: data.clone(),
            fua,
            zone,
        });
        if fua {
            self.pending.retain(|p| p.blk != blk.0);
        } else {
            self.pending.push(Pending {
                seq,
                blk: blk.0,
                data,
            });
        }
    }

    /// Log a completed flush: every pending write is durable now.
    pub(crate) fn record_flush(&mut self) {
        self.push(LogOp::Flush);
        self.pending.clear();
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Position the log so that the next operation gets `seq` and `epoch` (log replay).
    ///
    /// # Panics
    /// If `seq` would reuse a sequence number.
    #[track_caller]
    pub(crate) fn set_position(&mut self, seq: u64, epoch: u32) {
        assert!(seq >= self.next_seq, "log sequence numbers go backwards");
        self.next_seq = seq;
        self.epoch = epoch;
    }

    /// An empty log positioned where this one started (its last reset or clear).
    pub(crate) fn at_origin(&self) -> WriteLog {
        WriteLog {
            next_seq: self.origin_seq,
            epoch: self.origin_epoch,
            origin_seq: self.origin_seq,
            origin_epoch: self.origin_epoch,
            ..WriteLog::default()
        }
    }

    fn push(&mut self, op: LogOp) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push(LogEntry {
            seq,
            epoch: self.epoch,
            op,
        });
        seq
    }

    /// Forget every entry except those of pending writes (a crash can still keep them, so
    /// they must keep a log index).
    pub(crate) fn clear(&mut self) {
        let pending = &self.pending;
        let mut next = pending.iter().map(|p| p.seq).peekable();
        self.entries.retain(|e| {
            let keep = next.peek() == Some(&e.seq);
            if keep {
                next.next();
            }
            keep
        });
        debug_assert_eq!(self.entries.len(), self.pending.len());
        self.origin_seq = self.entries.first().map_or(self.next_seq, |e| e.seq);
        self.origin_epoch = self.epoch;
    }

    /// Forget everything, pending writes included (they were made durable by the caller).
    pub(crate) fn reset(&mut self) {
        self.entries.clear();
        self.pending.clear();
        self.origin_seq = self.next_seq;
        self.origin_epoch = self.epoch;
    }

    /// The logged operations.
    pub(crate) fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    /// The pending writes, in issue order.
    pub(crate) fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// The log index of each pending write, in issue order.
    pub(crate) fn pending_indices(&self) -> Vec<usize> {
        self.pending
            .iter()
            .map(|p| {
                self.entries
                    .binary_search_by_key(&p.seq, |e| e.seq)
                    .expect("a pending write is always in the log")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn data(b: u8) -> Block {
        Arc::from(vec![b; 4])
    }

    #[test]
    fn seq_epoch_and_pending() {
        let mut log = WriteLog::default();
        log.record_write(Pblk(1), data(1), false, Zone::Data);
        log.record_write(Pblk(2), data(2), false, Zone::Unknown);
        log.record_flush();
        log.record_write(Pblk(3), data(3), false, Zone::Data);
        log.record_write(Pblk(4), data(4), true, Zone::Journal);
        let e = log.entries();
        assert_eq!(e.len(), 5);
        assert_eq!(
            e.iter().map(|e| (e.seq, e.epoch)).collect::<Vec<_>>(),
            vec![(0, 0), (1, 0), (2, 0), (3, 1), (4, 1)]
        );
        assert_eq!(e[2].op, LogOp::Flush);
        assert_eq!(
            e[4].op,
            LogOp::Write {
                blk: Pblk(4),
                data: data(4),
                fua: true,
                zone: Zone::Journal
            }
        );
        assert_eq!(log.pending_indices(), vec![3]);
        assert_eq!(log.epoch, 1);
    }

    #[test]
    fn fua_supersedes_pending_writes_to_its_block_only() {
        let mut log = WriteLog::default();
        log.record_write(Pblk(7), data(1), false, Zone::Data);
        log.record_write(Pblk(8), data(2), false, Zone::Data);
        log.record_write(Pblk(7), data(3), false, Zone::Data);
        assert_eq!(log.pending_indices(), vec![0, 1, 2]);
        log.record_write(Pblk(7), data(4), true, Zone::Data);
        assert_eq!(log.pending_indices(), vec![1]);
        assert_eq!(log.pending()[0].blk, 8);
    }

    #[test]
    fn clear_keeps_only_pending_entries() {
        let mut log = WriteLog::default();
        log.record_write(Pblk(1), data(1), false, Zone::Data);
        log.record_flush();
        log.record_write(Pblk(2), data(2), true, Zone::Data);
        log.record_write(Pblk(3), data(3), false, Zone::Data);
        log.record_write(Pblk(4), data(4), false, Zone::Data);
        log.clear();
        assert_eq!(
            log.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(log.pending_indices(), vec![0, 1]);
        // Sequence numbers continue after a clear.
        log.record_flush();
        assert_eq!(log.entries()[2].seq, 5);
        let origin = log.at_origin();
        assert_eq!((origin.next_seq, origin.epoch), (3, 1));
        log.reset();
        assert!(log.entries().is_empty() && log.pending().is_empty());
        let origin = log.at_origin();
        assert_eq!((origin.next_seq, origin.epoch), (6, 2));
    }
}
