//! A memo of [`check`](super::check) results, keyed by what each check read.
//!
//! The checker is a deterministic function of the device's geometry (block size, block count)
//! and of the content of the blocks it reads: which block it reads next depends only on what
//! it read before. So if every block an earlier check read holds the same bytes on another
//! device of the same geometry, a check of that device would read the same blocks in the same
//! order and give the same report. [`FsckMemo::check`] returns that report without running the
//! passes. Blocks the earlier check did not read may differ freely: the crash states of one
//! execution mostly differ in file data, which the checker never reads.
//!
//! Debug builds (so every test) run the check again on each hit and assert that it agrees.
//! Fuzz builds (`--cfg fuzzing`, which cargo fuzz sets even with `--debug-assertions`, as
//! OSS-Fuzz builds) skip that check: it undid the memo there (fuzz/README.md, "Throughput
//! under ASan").
//!
//! A memo entry is validated block by block: pointer equality first (a block no write touched
//! since is the same shared buffer), then the bytes. It is only as sound as the recording:
//! every read of the checker goes through `Fsck::block` or `read_bytes`, which record it, and
//! nothing else of the device (its log, zones, faults or statistics) is consulted.

use super::{check_reads, FsckReport};
use crate::dev::{Block, Disk};
use crate::error::Result;
use crate::units::Pblk;
use std::collections::VecDeque;
use std::sync::Arc;

/// The most recent checks kept.
const ENTRIES: usize = 2;

/// One check: the device's geometry, the blocks it read (by device block number, each once)
/// and its result.
struct Entry {
    block_size: u32,
    nr_blocks: u64,
    reads: Vec<(u64, Block)>,
    result: Result<FsckReport>,
}

impl Entry {
    /// Whether `dev` has this entry's geometry and the same bytes in every block it read.
    fn matches(&self, dev: &Disk) -> bool {
        dev.block_size() == self.block_size
            && dev.nr_blocks() == self.nr_blocks
            && self.reads.iter().all(|(blk, old)| {
                let new = dev.peek_block(Pblk(*blk));
                Arc::ptr_eq(&new, old) || new[..] == old[..]
            })
    }
}

/// The last few checks (module doc), with hit counts.
#[derive(Default)]
pub struct FsckMemo {
    entries: VecDeque<Entry>,
    /// Checks answered from the memo.
    pub hits: u64,
    /// Checks run.
    pub misses: u64,
}

impl FsckMemo {
    /// An empty memo.
    pub fn new() -> FsckMemo {
        FsckMemo::default()
    }

    /// [`check`](super::check) of `dev`, from the memo when an earlier check read the same.
    ///
    /// # Errors
    /// As [`check`](super::check).
    pub fn check(&mut self, dev: &Disk) -> Result<FsckReport> {
        if let Some(i) = self.entries.iter().position(|e| e.matches(dev)) {
            self.hits += 1;
            let entry = self.entries.remove(i).expect("position is in range");
            let result = entry.result.clone();
            self.entries.push_front(entry);
            // Debug builds (every test) but fuzz builds check each hit against a fresh run.
            #[cfg(all(debug_assertions, not(fuzzing)))]
            assert_eq!(
                result,
                check_reads(dev).0,
                "fsck memo: a hit differs from a fresh run"
            );
            return result;
        }
        self.misses += 1;
        let (result, mut reads) = check_reads(dev);
        reads.sort_by_key(|r| r.0); // stable: the first read of a block is the one kept
        reads.dedup_by_key(|r| r.0);
        self.entries.truncate(ENTRIES - 1);
        self.entries.push_front(Entry {
            block_size: dev.block_size(),
            nr_blocks: dev.nr_blocks(),
            reads,
            result: result.clone(),
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::fsck::tests::filled_image;

    /// The memo answers a re-check and a check of an image that differs only in a block the
    /// checker never reads, and runs again when a block it read changes (giving that image's
    /// own, different report).
    #[test]
    fn reuses_a_report_only_while_every_block_read_is_unchanged() {
        let Some(mut base) = filled_image("-t ext4 -b 1024") else {
            return;
        };
        base.freeze();
        let mut memo = FsckMemo::new();
        let clean = memo.check(&base).unwrap();
        assert!(clean.is_clean(), "{:?}", clean.problems);
        assert_eq!((memo.hits, memo.misses), (0, 1));
        // The same image again: a hit.
        assert_eq!(memo.check(&base.clone()).unwrap(), clean);
        assert_eq!((memo.hits, memo.misses), (1, 1));
        let (_, reads) = check_reads(&base);
        let read: std::collections::BTreeSet<u64> = reads.iter().map(|r| r.0).collect();
        // A block past everything the checker read (free space): a hit.
        let unread = (0..base.nr_blocks())
            .rev()
            .find(|b| !read.contains(b))
            .unwrap();
        let mut data_only = base.clone();
        data_only.write(Pblk(unread), &vec![0xA5; 1024]).unwrap();
        assert_eq!(memo.check(&data_only).unwrap(), clean);
        assert_eq!((memo.hits, memo.misses), (2, 1));
        // The same bytes rewritten into a block it read (a new buffer): still a hit.
        let sb = base.peek_block(Pblk(1));
        let mut same = base.clone();
        same.write(Pblk(1), &sb).unwrap();
        assert_eq!(memo.check(&same).unwrap(), clean);
        assert_eq!((memo.hits, memo.misses), (3, 1));
        // A changed byte in the block bitmap of group 0: a miss, and that image's own report.
        let bitmap = super::super::Fsck::open(&base).unwrap().descs[0].bg_block_bitmap;
        assert!(read.contains(&bitmap));
        let mut buf = base.peek_block(Pblk(bitmap)).to_vec();
        buf[1000] ^= 0x10;
        let mut changed = base.clone();
        changed.write(Pblk(bitmap), &buf).unwrap();
        let report = memo.check(&changed).unwrap();
        assert_eq!((memo.hits, memo.misses), (3, 2));
        assert_eq!(report, super::super::check(&mut changed.clone()).unwrap());
        assert_ne!(report, clean);
        // Both are kept: the clean image is still a hit.
        assert_eq!(memo.check(&base).unwrap(), clean);
        assert_eq!((memo.hits, memo.misses), (4, 2));
    }
}
