//! A per-thread memo of [`walk`](super::walk) results, keyed by the walk's inputs and
//! validated by what the walk read.
//!
//! The walk is a deterministic function of its context (inode number, geometry, checksum
//! seed), of `i_block` and of the bytes of the blocks it reads: which block it reads next
//! depends only on what it read before. So when a walk with the same inputs reads the same
//! bytes from every block an earlier walk read, it reads those blocks in the same order and
//! returns the same map. The crash states of one execution walk the same journal inode four
//! times each (recovery, its two idempotence checks, and the mount) and every file once, and
//! those maps rarely change between states.
//!
//! **The reads are replayed, not skipped.** A hit reads the recorded blocks again, in order,
//! through the caller's `read`, so everything a read does besides returning bytes (fault
//! injection and its counters, device statistics, the fsck memo's read set) happens exactly
//! as in a fresh walk. A read error during the replay is the error the fresh walk would meet
//! at the same read, since the walk passes read errors on unchanged. A block whose bytes
//! changed ends the replay: the fresh walk then runs, fed first the blocks already read.
//!
//! Debug builds (so every test) re-walk each hit from the recorded blocks and assert that the
//! map agrees. Fuzz builds (`--cfg fuzzing`, which cargo fuzz sets even with
//! `--debug-assertions`, as OSS-Fuzz builds) skip that check: it undid the memo there
//! (fuzz/README.md, "Throughput under ASan").

use super::{walk_fresh, BlockMap, Buf, WalkCtx};
use crate::error::Result;
use crate::units::{Ino, Pblk};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

/// The most recent walks kept per thread.
const ENTRIES: usize = 16;

/// Everything a walk depends on besides the blocks it reads.
#[derive(Clone, PartialEq, Eq)]
struct Key {
    ino: Ino,
    block_size: u32,
    first_block: u64,
    nr_blocks: u64,
    csum_seed: Option<u32>,
    i_block: [u8; 60],
    extents: bool,
}

/// One walk: its inputs, the blocks it read in order, and its map.
struct Entry {
    key: Key,
    reads: Vec<(Pblk, Buf)>,
    map: BlockMap,
}

thread_local! {
    static MEMO: RefCell<VecDeque<Entry>> = const { RefCell::new(VecDeque::new()) };
}

/// [`walk_fresh`] through the memo (module doc).
pub(super) fn walk(ctx: &mut WalkCtx<'_>, i_block: &[u8; 60], extents: bool) -> Result<BlockMap> {
    let key = Key {
        ino: ctx.ino,
        block_size: ctx.block_size,
        first_block: ctx.first_block,
        nr_blocks: ctx.nr_blocks,
        csum_seed: ctx.csum_seed,
        i_block: *i_block,
        extents,
    };
    let found = MEMO.with_borrow_mut(|m| {
        let i = m.iter().position(|e| e.key == key)?;
        m.remove(i)
    });
    let mut prefix = Vec::new();
    if let Some(entry) = found {
        match replay(ctx, &entry.reads, &mut prefix) {
            Err(e) => {
                remember(entry);
                return Err(e);
            }
            Ok(true) => {
                #[cfg(all(debug_assertions, not(fuzzing)))]
                assert_eq!(
                    entry.map,
                    rewalk(ctx, i_block, extents, &entry.reads),
                    "blockmap memo: a hit differs from a fresh walk"
                );
                let map = entry.map.clone();
                remember(entry);
                return Ok(map);
            }
            Ok(false) => {}
        }
    }
    let (result, reads) = recorded(ctx, i_block, extents, prefix);
    if let Ok(map) = &result {
        remember(Entry {
            key,
            reads,
            map: map.clone(),
        });
    }
    result
}

/// Read the recorded blocks again in order, into `got`: `Ok(true)` if every one holds the
/// same bytes, `Ok(false)` at the first that does not (it is the last of `got`).
fn replay(
    ctx: &mut WalkCtx<'_>,
    reads: &[(Pblk, Buf)],
    got: &mut Vec<(Pblk, Buf)>,
) -> Result<bool> {
    for (blk, old) in reads {
        let new = (ctx.read)(*blk)?;
        let same = Arc::ptr_eq(&new, old) || new[..] == old[..];
        got.push((*blk, new));
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A fresh walk that records its reads, served first from `prefix` (blocks read already, in
/// the order the walk asks for them).
fn recorded(
    ctx: &mut WalkCtx<'_>,
    i_block: &[u8; 60],
    extents: bool,
    prefix: Vec<(Pblk, Buf)>,
) -> (Result<BlockMap>, Vec<(Pblk, Buf)>) {
    let mut reads = Vec::new();
    let mut prefix = prefix.into_iter();
    let inner = &mut *ctx.read;
    let mut read = |blk: Pblk| -> Result<Buf> {
        let data = match prefix.next() {
            Some((at, data)) => {
                assert_eq!(at, blk, "blockmap memo: the walk left its recorded order");
                data
            }
            None => inner(blk)?,
        };
        reads.push((blk, Arc::clone(&data)));
        Ok(data)
    };
    let mut fresh = WalkCtx {
        read: &mut read,
        ..*ctx
    };
    let result = walk_fresh(&mut fresh, i_block, extents);
    (result, reads)
}

/// A fresh walk over the recorded blocks alone (debug builds' check of a hit).
#[cfg(all(debug_assertions, not(fuzzing)))]
fn rewalk(ctx: &WalkCtx<'_>, i_block: &[u8; 60], extents: bool, reads: &[(Pblk, Buf)]) -> BlockMap {
    let mut next = reads.iter();
    let mut read = |blk: Pblk| -> Result<Buf> {
        let (at, data) = next
            .next()
            .expect("blockmap memo: the walk read more on a hit");
        assert_eq!(*at, blk, "blockmap memo: the walk left its recorded order");
        Ok(Arc::clone(data))
    };
    let mut fresh = WalkCtx {
        read: &mut read,
        ..*ctx
    };
    walk_fresh(&mut fresh, i_block, extents).expect("blockmap memo: a hit's walk fails")
}

/// Drop this thread's memo (the `scenario` fuzz target starts each execution with none).
pub fn forget() {
    MEMO.with_borrow_mut(VecDeque::clear);
}

/// Keep `entry` as the most recent walk.
fn remember(entry: Entry) {
    MEMO.with_borrow_mut(|m| {
        m.push_front(entry);
        m.truncate(ENTRIES);
    });
}

#[cfg(test)]
mod tests {
    use super::super::walk;
    use super::*;
    use crate::error::Error;
    use std::collections::BTreeMap;

    /// A device of 1 KiB blocks (5000 of them) as a map, an inode whose DIND is block 100
    /// (pointing at IND blocks 101 and 102), and the log of every read.
    struct Dev {
        blocks: BTreeMap<u64, Buf>,
        log: Vec<Pblk>,
        fail: Option<Pblk>,
    }

    fn ptrs(list: &[(usize, u32)]) -> Buf {
        let mut b = vec![0u8; 1024];
        for &(i, p) in list {
            b[4 * i..4 * i + 4].copy_from_slice(&p.to_le_bytes());
        }
        Arc::from(b)
    }

    fn dev() -> Dev {
        let mut blocks = BTreeMap::new();
        blocks.insert(100, ptrs(&[(0, 101), (3, 102)]));
        blocks.insert(101, ptrs(&[(0, 500), (1, 501), (7, 900)]));
        blocks.insert(102, ptrs(&[(255, 77)]));
        blocks.insert(103, ptrs(&[(0, 60)]));
        Dev {
            blocks,
            log: Vec::new(),
            fail: None,
        }
    }

    fn walk_on(d: &mut Dev, ino: u32) -> Result<BlockMap> {
        let mut i_block = [0u8; 60];
        i_block[52..56].copy_from_slice(&100u32.to_le_bytes());
        let mut read = |b: Pblk| -> Result<Buf> {
            d.log.push(b);
            if d.fail == Some(b) {
                return Err(Error::host("injected"));
            }
            Ok(Arc::clone(&d.blocks[&b.0]))
        };
        let mut ctx = WalkCtx {
            ino: Ino(ino),
            block_size: 1024,
            first_block: 1,
            nr_blocks: 5000,
            csum_seed: None,
            read: &mut read,
        };
        walk(&mut ctx, &i_block, false)
    }

    fn fresh(d: &Dev) -> BlockMap {
        let mut copy = Dev {
            blocks: d.blocks.clone(),
            log: Vec::new(),
            fail: None,
        };
        // An inode number no other walk of these tests uses: never a memo hit.
        walk_on(&mut copy, 4_000_000 + d.blocks.len() as u32).unwrap()
    }

    #[test]
    fn a_hit_makes_the_same_reads_and_returns_the_same_map() {
        let mut d = dev();
        let first = walk_on(&mut d, 901).unwrap();
        let reads = std::mem::take(&mut d.log);
        assert_eq!(reads, [Pblk(100), Pblk(101), Pblk(102)]);
        // A block the walk never read may change: still a hit, with the same reads.
        d.blocks.insert(103, ptrs(&[(0, 61)]));
        assert_eq!(walk_on(&mut d, 901).unwrap(), first);
        assert_eq!(d.log, reads);
        assert_eq!(first.runs.len(), 3);
    }

    #[test]
    fn a_changed_block_gives_the_fresh_walks_map_and_reads() {
        let mut d = dev();
        walk_on(&mut d, 902).unwrap();
        // The first IND block now also points at 502, and the DIND at 103 instead of 102.
        d.blocks
            .insert(101, ptrs(&[(0, 500), (1, 501), (2, 502), (7, 900)]));
        d.blocks.insert(100, ptrs(&[(0, 101), (3, 103)]));
        d.log.clear();
        let map = walk_on(&mut d, 902).unwrap();
        assert_eq!(
            d.log,
            [Pblk(100), Pblk(101), Pblk(103)],
            "each block read once"
        );
        assert_eq!(map, fresh(&d));
        assert_eq!(map.runs[0].len, 3);
    }

    #[test]
    fn a_read_error_in_the_replay_is_the_fresh_walks_error() {
        let mut d = dev();
        walk_on(&mut d, 903).unwrap();
        d.log.clear();
        d.fail = Some(Pblk(101));
        let err = walk_on(&mut d, 903).unwrap_err();
        assert_eq!(err, Error::host("injected"));
        assert_eq!(
            d.log,
            [Pblk(100), Pblk(101)],
            "no read after the failed one"
        );
        // The entry survives the error: the next walk is a hit again.
        d.fail = None;
        d.log.clear();
        assert_eq!(walk_on(&mut d, 903).unwrap(), fresh(&d));
        assert_eq!(d.log, [Pblk(100), Pblk(101), Pblk(102)]);
    }
}
