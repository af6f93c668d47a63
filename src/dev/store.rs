//! Sparse copy-on-write block storage in three layers.
//!
//! ```text
//!   volatile  BTreeMap<u64, Block>        written, not yet durable (the drive's write cache)
//!   durable   BTreeMap<u64, Block>        durable since the last freeze
//!   base      Arc<BTreeMap<u64, Block>>   shared, immutable: the template every clone starts from
//!   (absent)  zeroes
//! ```
//!
//! A read looks the layers up top to bottom. Each layer is shared copy-on-write: cloning a
//! store bumps three reference counts, and an overlay is copied (one `Arc` per block written
//! since the last freeze) only when a clone that shares it is written. A crash image that is
//! only read (checked, fingerprinted, recovered with nothing to replay) never copies one.
//! Blocks are `Arc<[u8]>`: reading, logging and crash-building share them.

use super::Block;
use crate::bytes::is_zero;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The three layers of a device's contents.
#[derive(Clone)]
pub(crate) struct Store {
    /// The shared immutable template. All-zero blocks are never stored here.
    base: Arc<BTreeMap<u64, Block>>,
    /// Blocks made durable since the base was built (copy-on-write).
    durable: Arc<BTreeMap<u64, Block>>,
    /// Blocks written but not yet durable: the newest copy of each (copy-on-write).
    volatile: Arc<BTreeMap<u64, Block>>,
    /// One shared zero block, returned for every block never written.
    zero: Block,
}

impl Store {
    /// An all-zero store with blocks of `block_size` bytes.
    pub(crate) fn new(block_size: usize) -> Store {
        Store::with_base(block_size, BTreeMap::new())
    }

    /// A store whose durable content is `base` (all-zero blocks are dropped from it).
    pub(crate) fn with_base(block_size: usize, mut base: BTreeMap<u64, Block>) -> Store {
        base.retain(|_, b| !is_zero(b));
        Store {
            base: Arc::new(base),
            durable: Arc::default(),
            volatile: Arc::default(),
            zero: Arc::from(vec![0u8; block_size]),
        }
    }

    /// The current content of `blk` (volatile included).
    pub(crate) fn get(&self, blk: u64) -> &Block {
        self.volatile
            .get(&blk)
            .unwrap_or_else(|| self.get_durable(blk))
    }

    /// The durable content of `blk`: what survives a crash that loses every pending write.
    pub(crate) fn get_durable(&self, blk: u64) -> &Block {
        self.durable
            .get(&blk)
            .or_else(|| self.base.get(&blk))
            .unwrap_or(&self.zero)
    }

    /// Whether `blk` has a copy in the volatile cache.
    pub(crate) fn is_volatile(&self, blk: u64) -> bool {
        self.volatile.contains_key(&blk)
    }

    /// Record a completed non-FUA write: it sits in the cache until a flush.
    pub(crate) fn put_volatile(&mut self, blk: u64, data: Block) {
        Arc::make_mut(&mut self.volatile).insert(blk, data);
    }

    /// Record a durable write (FUA, or a write a crash kept): it supersedes any cached copy.
    pub(crate) fn put_durable(&mut self, blk: u64, data: Block) {
        if self.volatile.contains_key(&blk) {
            Arc::make_mut(&mut self.volatile).remove(&blk);
        }
        Arc::make_mut(&mut self.durable).insert(blk, data);
    }

    /// Model of a completed cache flush: every cached block becomes durable.
    pub(crate) fn flush(&mut self) {
        if self.volatile.is_empty() {
            return;
        }
        let cached = std::mem::take(&mut self.volatile);
        let durable = Arc::make_mut(&mut self.durable);
        match Arc::try_unwrap(cached) {
            Ok(mut cached) => durable.append(&mut cached),
            Err(shared) => durable.extend(shared.iter().map(|(&b, d)| (b, Arc::clone(d)))),
        }
    }

    /// Fold every layer into a new shared base (as if flushed), leaving both overlays empty.
    pub(crate) fn fold(&mut self) {
        self.flush();
        let durable = std::mem::take(&mut self.durable);
        let durable = Arc::try_unwrap(durable).unwrap_or_else(|shared| (*shared).clone());
        let base = Arc::make_mut(&mut self.base);
        for (blk, data) in durable {
            if is_zero(&data) {
                base.remove(&blk);
            } else {
                base.insert(blk, data);
            }
        }
    }

    /// A store holding only this store's durable content (the cache lost), sharing the base.
    pub(crate) fn durable_only(&self) -> Store {
        Store {
            base: Arc::clone(&self.base),
            durable: Arc::clone(&self.durable),
            volatile: Arc::default(),
            zero: Arc::clone(&self.zero),
        }
    }

    /// Number of blocks held in the two overlays (what a clone copies).
    pub(crate) fn overlay_len(&self) -> usize {
        self.durable.len() + self.volatile.len()
    }

    /// Number of blocks held in the shared base.
    pub(crate) fn base_len(&self) -> usize {
        self.base.len()
    }

    /// Whether two stores share the same base allocation.
    pub(crate) fn shares_base_with(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.base, &other.base)
    }

    /// Every block number stored in any layer, ascending, without duplicates. A block listed
    /// here may still read as zeroes (a zero block written over a base block).
    pub(crate) fn stored_blocks(&self) -> Vec<u64> {
        let mut blks: Vec<u64> = self
            .base
            .keys()
            .chain(self.durable.keys())
            .chain(self.volatile.keys())
            .copied()
            .collect();
        blks.sort_unstable();
        blks.dedup();
        blks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(byte: u8) -> Block {
        Arc::from(vec![byte; 8])
    }

    #[test]
    fn layers_are_read_top_down() {
        let mut base = BTreeMap::new();
        base.insert(1, blk(1));
        base.insert(2, blk(2));
        base.insert(3, blk(0)); // dropped: zero blocks are not stored
        let mut s = Store::with_base(8, base);
        assert_eq!(s.base_len(), 2);
        s.put_durable(2, blk(22));
        s.put_volatile(1, blk(11));
        assert_eq!(&s.get(1)[..], &[11; 8]);
        assert_eq!(&s.get_durable(1)[..], &[1; 8]);
        assert_eq!(&s.get(2)[..], &[22; 8]);
        assert_eq!(&s.get(3)[..], &[0; 8]);
        assert!(Arc::ptr_eq(s.get(9), s.get(10)));
        assert_eq!(s.stored_blocks(), vec![1, 2]);
        assert_eq!(s.overlay_len(), 2);
    }

    #[test]
    fn put_durable_supersedes_cache_and_flush_moves_it() {
        let mut s = Store::new(8);
        s.put_volatile(5, blk(5));
        s.put_durable(5, blk(6));
        assert!(!s.is_volatile(5));
        assert_eq!(&s.get(5)[..], &[6; 8]);
        s.put_volatile(7, blk(7));
        assert_eq!(&s.get_durable(7)[..], &[0; 8]);
        s.flush();
        assert_eq!(&s.get_durable(7)[..], &[7; 8]);
        assert!(!s.is_volatile(7));
    }

    #[test]
    fn fold_drops_zero_blocks_and_empties_overlays() {
        let mut base = BTreeMap::new();
        base.insert(1, blk(1));
        let mut s = Store::with_base(8, base);
        let t = s.clone();
        s.put_durable(1, blk(0));
        s.put_volatile(2, blk(2));
        s.fold();
        assert_eq!(s.overlay_len(), 0);
        assert_eq!(s.base_len(), 1);
        assert_eq!(&s.get(1)[..], &[0; 8]);
        assert_eq!(&s.get(2)[..], &[2; 8]);
        // The clone taken before still sees the old base.
        assert_eq!(&t.get(1)[..], &[1; 8]);
        assert!(!s.shares_base_with(&t));
        assert!(s.clone().shares_base_with(&s));
    }

    #[test]
    fn durable_only_loses_the_cache() {
        let mut s = Store::new(8);
        s.put_durable(1, blk(1));
        s.put_volatile(2, blk(2));
        let d = s.durable_only();
        assert_eq!(&d.get(1)[..], &[1; 8]);
        assert_eq!(&d.get(2)[..], &[0; 8]);
        assert!(d.shares_base_with(&s));
    }

    #[test]
    fn clones_share_overlays_until_written() {
        let mut s = Store::new(8);
        s.put_durable(1, blk(1));
        s.put_volatile(2, blk(2));
        let t = s.clone();
        assert!(Arc::ptr_eq(&s.durable, &t.durable) && Arc::ptr_eq(&s.volatile, &t.volatile));
        // Writing one copies only that one's overlay; the other keeps what it had.
        s.put_durable(2, blk(22));
        s.put_volatile(3, blk(3));
        assert_eq!((&s.get(2)[..], &t.get(2)[..]), (&[22; 8][..], &[2; 8][..]));
        assert_eq!((&s.get(3)[..], &t.get(3)[..]), (&[3; 8][..], &[0; 8][..]));
        let mut u = t.clone();
        u.flush();
        assert_eq!(
            (&u.get_durable(2)[..], &t.get_durable(2)[..]),
            (&[2; 8][..], &[0; 8][..])
        );
        assert!(t.is_volatile(2) && !u.is_volatile(2));
        let mut v = t.clone();
        v.fold();
        assert_eq!((v.overlay_len(), t.overlay_len()), (0, 2));
        assert_eq!(&v.get(1)[..], &[1; 8]);
    }
}
