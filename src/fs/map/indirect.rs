//! Model of fs/ext4/indirect.c: the classic (ext2/ext3) block map of inodes without
//! `EXT4_EXTENTS_FL`.
//!
//! # The indirect map
//!
//! `i_block[0..=11]` point at the first twelve data blocks of the file. `i_block[12]` (IND)
//! points at a block of `apb = block_size / 4` little-endian pointers to data blocks;
//! `i_block[13]` (DIND) at a block of pointers to IND-like blocks; `i_block[14]` (TIND) one level
//! deeper still. A zero pointer is a hole, at any level: a zero DIND pointer means the
//! `apb²` blocks below it are all holes. With 1 KiB blocks (`apb` = 256) logical blocks
//! 0..=11 are direct, 12..=267 go through IND, 268..=65803 through DIND and
//! 65804..=16843019 through TIND; with 4 KiB blocks the ranges are 12, 1024, 1024², 1024³.
//!
//! # Decomposition (the kernel's)
//!
//! | function | here | does |
//! |---|---|---|
//! | `ext4_block_to_path()` | [`block_to_path`] | logical block → offsets at each level + distance to the boundary |
//! | `ext4_get_branch()` | [`Fs::get_branch`] | read the chain of pointers, stop at the first zero one |
//! | `ext4_find_near()` / `ext4_find_goal()` | [`Fs::find_goal`] | where new blocks should go |
//! | `ext4_blks_to_allocate()` | [`Fs::blks_to_allocate`] | how many data blocks this call may allocate |
//! | `ext4_alloc_branch()` | [`Fs::alloc_branch`] | allocate and fill the missing indirect blocks and the data blocks |
//! | `ext4_splice_branch()` | [`Fs::splice_branch`] | set the one missing link: the new branch becomes reachable |
//! | `ext4_ind_map_blocks()` | [`Fs::ind_map_blocks`] | lookup, or lookup + allocation |
//! | `ext4_find_shared()` … `ext4_ind_truncate()` | [`truncate`] | free everything from a block on |
//! | `ext4_ind_remove_space()` | [`punch`] | free a range (punch hole) |
//!
//! # Ordering
//!
//! A new branch is built completely (every new indirect block obtained with
//! `get_create_access`, filled and dirtied) before [`Fs::splice_branch`] writes the single
//! pointer that links it into the tree, so a crash before the splice leaves only unreachable
//! (leaked, not corrupting) blocks. Freeing works bottom-up: a block is freed before the
//! pointer to it is cleared, so an interrupted truncate complains about freeing a free block
//! rather than leaking one (see ext4_free_branches()).
//!
//! # Deviations
//!
//! * Errors of the freeing helpers are the kernel's: ext4_find_shared() ignores a chain cut
//!   short by a block it cannot read, and ext4_free_branches(), ext4_free_data() and
//!   ext4_clear_blocks() report a bad pointer, a failed read or a failed ext4_free_blocks()
//!   with `ext4_error()` and carry on, as the kernel does (checked against the real kernel
//!   with a one-block read fault: `tests/integration/kernel_eio.rs`). Only journal errors
//!   (credits, write access) stop them.
//! * `ext4_block_to_path()` returns depth 0 for a block past the triple-indirect range; here it
//!   is `Error::TooBig` (`ext4_ind_map_blocks()` turns depth 0 into `-EIO`).
//! * The system-zone part of `ext4_inode_block_valid()` (pointers into the group metadata) is
//!   not checked; the range part is.
//! * Indirect blocks validated once, on the read that brings them into the buffer cache
//!   (`ext4_check_indirect_blockref()` on a buffer that was not up to date); a block that fails
//!   is dropped from the cache so every later access fails the same way.

pub mod alloc;
pub mod punch;
pub mod truncate;

#[cfg(test)]
mod testutil;

use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::indirect::{self as fi, EXT4_NDIR_BLOCKS};
use crate::fs::map::{MapFlags, MapResult, EXT4_MAP_BOUNDARY, EXT4_MAP_MAPPED, EXT4_MAP_NEW};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

/// `EXT4_MAX_BLOCK_FILE_PHYS`: indirect maps hold 32-bit block numbers.
pub const EXT4_MAX_BLOCK_FILE_PHYS: u64 = 0xFFFF_FFFF;

/// The path to a logical block (the result of `ext4_block_to_path()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndPath {
    /// `offsets[0]` is the index in `i_block`, `offsets[i]` the index in the level-`i`
    /// indirect block; only the first `depth` are meaningful.
    pub offsets: [usize; 4],
    /// Path length `n`: 1 direct, 2 IND, 3 DIND, 4 TIND.
    pub depth: usize,
    /// `boundary`: how many pointers follow `offsets[depth - 1]` in the same container (the
    /// next block after those needs another indirect block).
    pub boundary: u32,
}

/// Model of ext4_block_to_path() (fs/ext4/indirect.c): translate logical block `lblk` into the
/// offsets of its pointers at each level of the tree, for blocks of `block_size` bytes.
///
/// # Errors
/// `Error::TooBig` if `lblk` is past the triple-indirect range (the kernel warns "block > max"
/// and returns depth 0).
pub fn block_to_path(block_size: u32, lblk: Lblk) -> Result<IndPath> {
    let ptrs = u64::from(fi::ptrs_per_block(block_size));
    let bits = ptrs.trailing_zeros();
    let direct = EXT4_NDIR_BLOCKS as u64;
    let double = 1u64 << (2 * bits);
    let path = |o: &[u64], last: u64, rest: u64| {
        let mut offsets = [0usize; 4];
        for (d, s) in offsets.iter_mut().zip(o) {
            *d = *s as usize;
        }
        IndPath {
            offsets,
            depth: o.len(),
            boundary: (last - 1 - (rest & (ptrs - 1))) as u32,
        }
    };
    let mut i = u64::from(lblk.0);
    if i < direct {
        return Ok(path(&[i], direct, i));
    }
    i -= direct;
    if i < ptrs {
        return Ok(path(&[fi::EXT4_IND_BLOCK as u64, i], ptrs, i));
    }
    i -= ptrs;
    if i < double {
        let o = [fi::EXT4_DIND_BLOCK as u64, i >> bits, i & (ptrs - 1)];
        return Ok(path(&o, ptrs, i));
    }
    i -= double;
    if (i >> (2 * bits)) < ptrs {
        let o = [
            fi::EXT4_TIND_BLOCK as u64,
            i >> (2 * bits),
            (i >> bits) & (ptrs - 1),
            i & (ptrs - 1),
        ];
        return Ok(path(&o, ptrs, i));
    }
    Err(Error::TooBig)
}

/// Model of ext4_max_bitmap_size() (fs/ext4/super.c) in blocks: the size limit of an
/// indirect-mapped file, either the reach of the triple-indirect tree or what `i_blocks` can
/// count (data and mapping blocks) — 2³² sectors without `huge_file`, 2⁴⁸ with it. This is the
/// `max_block` of ext4_ind_truncate() and ext4_ind_remove_space().
pub fn max_bitmap_blocks(block_size: u32, huge_file: bool) -> u64 {
    let bits = block_size.trailing_zeros();
    let ppb = u64::from(fi::ptrs_per_block(block_size));
    let mut upper = if huge_file {
        (1u64 << 48) - 1
    } else {
        ((1u64 << 32) - 1) >> (bits - 9)
    };
    let res = EXT4_NDIR_BLOCKS as u64 + ppb + ppb * ppb + ppb * ppb * ppb;
    let meta = 1 + (1 + ppb) + (1 + ppb + ppb * ppb);
    if res + meta <= upper {
        return res;
    }
    let res = upper;
    upper -= EXT4_NDIR_BLOCKS as u64 + ppb;
    if upper < ppb * ppb {
        return res - (2 + upper.div_ceil(ppb));
    }
    upper -= ppb * ppb;
    res - (1 + (1 + ppb) + 1 + upper.div_ceil(ppb) + upper.div_ceil(ppb * ppb))
}

/// One link of a lookup chain (`Indirect` in indirect.c): where a pointer lives and the value
/// it had when it was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Indirect {
    /// `bh`: the indirect block holding the pointer; `None` for the inode's `i_data`.
    pub bh: Option<Pblk>,
    /// `p`: the index of the pointer in `bh` (or in `i_data`).
    pub p: usize,
    /// `key`: the pointer's value (0 = hole).
    pub key: u32,
}

/// A chain (`Indirect chain[4]`): `chain[0]` lives in the inode, `chain[i]` in block
/// `chain[i - 1].key`; `chain[depth - 1].key` is the data block.
pub type Chain = [Indirect; 4];

/// The allocation request of ext4_ind_map_blocks() (`struct ext4_allocation_request`, the
/// fields the indirect path uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRequest {
    /// `logical`: the first logical block being mapped.
    pub logical: Lblk,
    /// `goal`: where the allocator starts looking.
    pub goal: Pblk,
    /// `len`: data blocks wanted; after the allocation, data blocks obtained.
    pub len: u32,
}

impl Fs {
    /// Pointers per indirect block (`EXT4_ADDR_PER_BLOCK()`).
    pub(crate) fn addr_per_block(&self) -> usize {
        fi::ptrs_per_block(self.block_size()) as usize
    }

    /// The range part of ext4_inode_block_valid(): `count` blocks from `start` lie in
    /// `[s_first_data_block, s_blocks_count)`.
    pub(crate) fn ind_block_valid(&self, start: u64, count: u64) -> bool {
        start >= u64::from(self.sb.s_first_data_block)
            && start
                .checked_add(count)
                .is_some_and(|end| end <= self.sb.s_blocks_count)
    }

    /// A pointer read from the map must be a valid block: `IndirectBlockOutOfRange` if not.
    fn ind_check_ptr(&self, ino: Ino, key: u32) -> Result<Pblk> {
        let pblk = Pblk(u64::from(key));
        if !self.ind_block_valid(pblk.0, 1) {
            return Err(CorruptKind::IndirectBlockOutOfRange { ino, pblk }.into());
        }
        Ok(pblk)
    }

    /// Read indirect block `blk` of `ino` into the buffer cache; a block read from the device
    /// is validated first (model of ext4_read_bh() + ext4_check_indirect_blockref()).
    pub(crate) fn ind_read(&mut self, ino: Ino, blk: Pblk) -> Result<()> {
        if self.bufs.map.contains_key(&blk.0) {
            return Ok(());
        }
        let first = u64::from(self.sb.s_first_data_block);
        let count = self.sb.s_blocks_count;
        let buf = self.bread(blk, Zone::TreeMeta)?;
        if let Err(e) = fi::check_block_refs(buf, ino, first, count) {
            self.bufs.map.remove(&blk.0);
            return Err(e);
        }
        Ok(())
    }

    /// `*p`: pointer `i` of `bh`, or of the inode's `i_data` when `bh` is `None`.
    pub(crate) fn ind_ptr(&mut self, ino: Ino, bh: Option<Pblk>, i: usize) -> Result<u32> {
        match bh {
            None => Ok(self.inode(ino).raw.i_block[i]),
            Some(b) => Ok(fi::get_ptr(self.bread(b, Zone::TreeMeta)?, i)),
        }
    }

    /// `*p = v`: set pointer `i` of `bh` (the caller holds write access) or of `i_data`.
    ///
    /// # Errors
    /// `IndirectBlockCircular` if `bh` has been freed (forgotten) meanwhile: the map pointed
    /// back into a part of itself that was already released.
    pub(crate) fn ind_set(&mut self, ino: Ino, bh: Option<Pblk>, i: usize, v: u32) -> Result<()> {
        match bh {
            None => self.inode_mut(ino).raw.i_block[i] = v,
            Some(b) => {
                if !self.bufs.map.contains_key(&b.0) {
                    return Err(CorruptKind::IndirectBlockCircular { ino, pblk: b }.into());
                }
                fi::set_ptr(self.buf_mut(b), i, v);
            }
        }
        Ok(())
    }

    /// Model of ext4_free_blocks() with its dquot_free_block(): release `count` blocks and
    /// take them off `i_blocks`. `metadata` forgets (and, with a journal, revokes) them.
    pub fn ind_free_blocks(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        start: Pblk,
        count: u32,
        metadata: bool,
    ) -> Result<()> {
        self.free_blocks(h, start, count, metadata)?;
        self.inode_add_blocks(ino, -i64::from(count))
    }

    /// The first link of a chain: slot `offset` of the inode's `i_data`.
    pub(crate) fn chain_root(&self, ino: Ino, offset: usize) -> Chain {
        let mut chain = Chain::default();
        chain[0] = Indirect {
            bh: None,
            p: offset,
            key: self.inode(ino).raw.i_block[offset],
        };
        chain
    }

    /// One step down a chain in ext4_get_branch(): read (and check) the block `key` points
    /// to, and take its pointer `offset`.
    pub(crate) fn chain_link(&mut self, ino: Ino, key: u32, offset: usize) -> Result<Indirect> {
        let blk = self.ind_check_ptr(ino, key)?;
        self.ind_read(ino, blk)?;
        let key = self.ind_ptr(ino, Some(blk), offset)?;
        Ok(Indirect {
            bh: Some(blk),
            p: offset,
            key,
        })
    }

    /// Model of ext4_get_branch(): follow the `depth` offsets of a path from the inode down,
    /// reading each indirect block. Returns the chain and `partial`: `None` when the whole chain
    /// down to the data block exists, else the index of the first link whose key is zero.
    ///
    /// # Errors
    /// `IndirectBlockOutOfRange` for a pointer outside `[s_first_data_block, s_blocks_count)`
    /// (the kernel's `-EFSCORRUPTED`, or the failed blockref check of a freshly read block);
    /// an I/O error reading an indirect block.
    pub fn get_branch(
        &mut self,
        ino: Ino,
        depth: usize,
        offsets: &[usize; 4],
    ) -> Result<(Chain, Option<usize>)> {
        let mut chain = self.chain_root(ino, offsets[0]);
        for i in 1..depth {
            if chain[i - 1].key == 0 {
                return Ok((chain, Some(i - 1)));
            }
            chain[i] = self.chain_link(ino, chain[i - 1].key, offsets[i])?;
        }
        if chain[depth - 1].key == 0 {
            return Ok((chain, Some(depth - 1)));
        }
        self.ind_check_ptr(ino, chain[depth - 1].key)?;
        Ok((chain, None))
    }

    /// Model of ext4_ind_map_blocks(): map `len` blocks of indirect-mapped `ino` from `lblk`.
    ///
    /// * Mapped: as many blocks as are physically contiguous in the leaf container, up to the
    ///   request and the boundary (`EXT4_MAP_MAPPED`, plus `EXT4_MAP_BOUNDARY` when the run
    ///   reaches the end of the container).
    /// * Hole, lookup only: the hole's length as far as the missing subtree shows it (a hole
    ///   in an existing leaf container counts 1), capped at the request.
    /// * Hole, [`MapFlags::CREATE`]: allocate the missing indirect blocks and a run of data
    ///   blocks for this hole only (up to the next mapped pointer or the boundary), link them
    ///   in, charge `i_blocks`, and return them with `EXT4_MAP_NEW`.
    ///
    /// # Errors
    /// `Error::TooBig` past the triple-indirect range; the errors of [`Fs::get_branch`];
    /// `Error::NoSpace` and I/O errors from the allocation.
    ///
    /// # Panics
    /// With `CREATE` and no handle (the kernel's `J_ASSERT`).
    pub fn ind_map_blocks(
        &mut self,
        h: Option<&mut Handle>,
        ino: Ino,
        lblk: Lblk,
        len: u32,
        flags: MapFlags,
    ) -> Result<MapResult> {
        let path = block_to_path(self.block_size(), lblk)?;
        let depth = path.depth;
        let (mut chain, partial) = self.get_branch(ino, depth, &path.offsets)?;
        let Some(partial) = partial else {
            let count = self.ind_run_len(ino, &chain[depth - 1], len, path.boundary)?;
            return Ok(mapped(lblk, chain[depth - 1].key, count, path.boundary, 0));
        };
        if !flags.has(MapFlags::CREATE) {
            let epb = self.addr_per_block() as u64;
            let count = ((partial + 1)..depth)
                .fold(0u64, |c, i| c * epb + (epb - path.offsets[i] as u64 - 1))
                + 1;
            return Ok(MapResult::hole(lblk, count.min(u64::from(len)) as u32));
        }
        let h = h.expect("ext4_ind_map_blocks: CREATE needs a handle");
        let goal = self.find_goal(ino, lblk, &chain[partial])?;
        let indirect_blks = depth - partial - 1;
        let want =
            self.blks_to_allocate(ino, &chain[partial], indirect_blks, len, path.boundary)?;
        let mut ar = AllocRequest {
            logical: lblk,
            goal,
            len: want,
        };
        let offsets = &path.offsets[partial..depth];
        self.alloc_branch(
            h,
            ino,
            &mut ar,
            indirect_blks,
            offsets,
            &mut chain[partial..depth],
        )?;
        self.splice_branch(h, ino, &ar, &chain[partial..depth], indirect_blks)?;
        let key = chain[depth - 1].key;
        Ok(mapped(lblk, key, ar.len, path.boundary, EXT4_MAP_NEW))
    }

    /// The lookup half of ext4_ind_map_blocks()'s found case: how many pointers from `leaf`
    /// on continue its block contiguously (at most `len`, and not past the boundary). The run
    /// also stops at the end of the filesystem (a direct pointer is not range-checked on
    /// the way in, unlike the kernel's, which ext4_iget() validates).
    fn ind_run_len(&mut self, ino: Ino, leaf: &Indirect, len: u32, boundary: u32) -> Result<u32> {
        let first = u64::from(leaf.key);
        let mut count = 1u32;
        while count < len && count <= boundary {
            let blk = self.ind_ptr(ino, leaf.bh, leaf.p + count as usize)?;
            if u64::from(blk) != first + u64::from(count) || !self.ind_block_valid(blk.into(), 1) {
                break;
            }
            count += 1;
        }
        Ok(count)
    }
}

/// The `got_it:` exit of ext4_ind_map_blocks().
fn mapped(lblk: Lblk, key: u32, count: u32, boundary: u32, flags: u32) -> MapResult {
    let boundary_flag = if count > boundary {
        EXT4_MAP_BOUNDARY
    } else {
        0
    };
    MapResult {
        lblk,
        pblk: Pblk(u64::from(key)),
        len: count,
        flags: flags | EXT4_MAP_MAPPED | boundary_flag,
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::TestFs;
    use super::*;

    fn path(o: &[usize], boundary: u32) -> IndPath {
        let mut offsets = [0; 4];
        offsets[..o.len()].copy_from_slice(o);
        IndPath {
            offsets,
            depth: o.len(),
            boundary,
        }
    }

    #[test]
    fn block_to_path_1k_at_every_boundary() {
        let table: &[(u32, &[usize], u32)] = &[
            (0, &[0], 11),
            (5, &[5], 6),
            (11, &[11], 0),
            (12, &[12, 0], 255),
            (13, &[12, 1], 254),
            (12 + 255, &[12, 255], 0),
            (268, &[13, 0, 0], 255),
            (268 + 255, &[13, 0, 255], 0),
            (268 + 256, &[13, 1, 0], 255),
            (268 + 257, &[13, 1, 1], 254),
            (268 + 65535, &[13, 255, 255], 0),
            (65804, &[14, 0, 0, 0], 255),
            (65804 + 256, &[14, 0, 1, 0], 255),
            (65804 + 65536, &[14, 1, 0, 0], 255),
            (65804 + 65536 + 257, &[14, 1, 1, 1], 254),
            (16_843_019, &[14, 255, 255, 255], 0),
        ];
        for &(lblk, o, b) in table {
            assert_eq!(
                block_to_path(1024, Lblk(lblk)),
                Ok(path(o, b)),
                "lblk {lblk}"
            );
        }
        for lblk in [16_843_020, 16_843_021, u32::MAX] {
            assert_eq!(
                block_to_path(1024, Lblk(lblk)),
                Err(Error::TooBig),
                "lblk {lblk}"
            );
        }
    }

    #[test]
    fn block_to_path_4k_at_every_boundary() {
        let d = 12 + 1024;
        let t = d + 1024 * 1024;
        let table: &[(u32, &[usize], u32)] = &[
            (11, &[11], 0),
            (12, &[12, 0], 1023),
            (d - 1, &[12, 1023], 0),
            (d, &[13, 0, 0], 1023),
            (d + 1024, &[13, 1, 0], 1023),
            (t - 1, &[13, 1023, 1023], 0),
            (t, &[14, 0, 0, 0], 1023),
            (t + 1024 * 1024 + 1025, &[14, 1, 1, 1], 1022),
            (1_074_791_435, &[14, 1023, 1023, 1023], 0),
        ];
        for &(lblk, o, b) in table {
            assert_eq!(
                block_to_path(4096, Lblk(lblk)),
                Ok(path(o, b)),
                "lblk {lblk}"
            );
        }
        assert_eq!(block_to_path(4096, Lblk(1_074_791_436)), Err(Error::TooBig));
        assert_eq!(block_to_path(4096, Lblk(u32::MAX)), Err(Error::TooBig));
    }

    /// A new zeroed indirect block of `ino` holding `ptrs` (index, value), charged to it.
    fn ind_block(t: &mut TestFs, ptrs: &[(usize, u32)]) -> u32 {
        let mut h = t.fs.journal_start(8).unwrap();
        let (b, _) = t.fs.new_blocks(&mut h, Pblk(1000), 1).unwrap();
        t.fs.get_create_access(&mut h, b, Zone::TreeMeta).unwrap();
        for &(i, v) in ptrs {
            fi::set_ptr(t.fs.buf_mut(b), i, v);
        }
        t.fs.dirty_metadata(&mut h, b).unwrap();
        t.fs.journal_stop(h).unwrap();
        b.0 as u32
    }

    fn branch(t: &mut TestFs, ino: Ino, lblk: u32) -> Result<(Chain, Option<usize>)> {
        let p = block_to_path(t.fs.block_size(), Lblk(lblk)).unwrap();
        t.fs.get_branch(ino, p.depth, &p.offsets)
    }

    fn link(bh: Option<u32>, p: usize, key: u32) -> Indirect {
        Indirect {
            bh: bh.map(|b| Pblk(u64::from(b))),
            p,
            key,
        }
    }

    #[test]
    fn get_branch_follows_hand_built_maps_and_stops_at_holes() {
        let Some(mut t) = TestFs::new("branch", 1024) else {
            return;
        };
        let ino = t.empty_file();
        let ind = ind_block(&mut t, &[(3, 5000)]);
        let ind2 = ind_block(&mut t, &[(9, 5001)]);
        let dind = ind_block(&mut t, &[(1, ind2)]);
        let raw = &mut t.fs.inode_mut(ino).raw;
        raw.i_block[2] = 4000;
        raw.i_block[12] = ind;
        raw.i_block[13] = dind;

        let (c, partial) = branch(&mut t, ino, 2).unwrap();
        assert_eq!((c[0], partial), (link(None, 2, 4000), None));
        let (c, partial) = branch(&mut t, ino, 3).unwrap();
        assert_eq!((c[0], partial), (link(None, 3, 0), Some(0)));
        let (c, partial) = branch(&mut t, ino, 15).unwrap();
        assert_eq!(partial, None);
        assert_eq!(c[..2], [link(None, 12, ind), link(Some(ind), 3, 5000)]);
        let (c, partial) = branch(&mut t, ino, 16).unwrap();
        assert_eq!((c[1], partial), (link(Some(ind), 4, 0), Some(1)));
        // DIND: slot 1 → ind2, slot 9 of it → 5001; slot 0 of DIND is a hole.
        let (c, partial) = branch(&mut t, ino, 268 + 256 + 9).unwrap();
        assert_eq!(partial, None);
        let want = [
            link(None, 13, dind),
            link(Some(dind), 1, ind2),
            link(Some(ind2), 9, 5001),
        ];
        assert_eq!(c[..3], want);
        let (c, partial) = branch(&mut t, ino, 268 + 5).unwrap();
        assert_eq!((c[1], partial), (link(Some(dind), 0, 0), Some(1)));
        let (c, partial) = branch(&mut t, ino, 65804 + 77).unwrap();
        assert_eq!((c[0], partial), (link(None, 14, 0), Some(0)));
    }

    #[test]
    fn get_branch_rejects_out_of_range_pointers() {
        let Some(mut t) = TestFs::new("branch-bad", 1024) else {
            return;
        };
        let ino = t.empty_file();
        let nr = t.fs.sb.s_blocks_count;
        let bad =
            |p: u64| Error::Corrupt(CorruptKind::IndirectBlockOutOfRange { ino, pblk: Pblk(p) });
        t.fs.inode_mut(ino).raw.i_block[0] = (nr - 1) as u32;
        assert_eq!(
            branch(&mut t, ino, 0).map(|c| c.1),
            Ok(None),
            "last block is valid"
        );
        t.fs.inode_mut(ino).raw.i_block[0] = nr as u32;
        assert_eq!(branch(&mut t, ino, 0).unwrap_err(), bad(nr));
        t.fs.inode_mut(ino).raw.i_block[14] = 20_000;
        assert_eq!(branch(&mut t, ino, 65804).unwrap_err(), bad(20_000));
        // A block whose pointers are checked when it is first read: slot 200 is bad, and the
        // whole block is refused (ext4_check_indirect_blockref()), whatever slot is wanted.
        let ind = ind_block(&mut t, &[(0, 3000)]);
        let mut raw = t.fs.dev.read_block(Pblk(u64::from(ind))).unwrap().to_vec();
        fi::set_ptr(&mut raw, 200, 99_999);
        t.fs.dev.write(Pblk(u64::from(ind)), &raw).unwrap();
        t.fs.bufs.map.remove(&u64::from(ind));
        t.fs.inode_mut(ino).raw.i_block[12] = ind;
        assert_eq!(branch(&mut t, ino, 12).unwrap_err(), bad(99_999));
        assert_eq!(
            branch(&mut t, ino, 13).unwrap_err(),
            bad(99_999),
            "refused again"
        );
        let mut h = t.fs.journal_start(8).unwrap();
        let m =
            t.fs.ind_map_blocks(Some(&mut h), ino, Lblk(13), 1, MapFlags::CREATE);
        assert_eq!(m.unwrap_err(), bad(99_999), "allocation refuses it too");
        t.fs.inode_mut(ino).raw.i_block[12] = 0;
        t.fs.inode_mut(ino).raw.i_block[14] = 0;
        t.fs.inode_mut(ino).raw.i_block[0] = 0;
        t.fs.free_blocks(&mut h, Pblk(u64::from(ind)), 1, true)
            .unwrap();
        t.fs.journal_stop(h).unwrap();
    }

    #[test]
    fn lookup_of_holes_counts_what_the_missing_subtree_covers() {
        let Some(mut t) = TestFs::new("holes", 1024) else {
            return;
        };
        let ino = t.empty_file();
        let hole = |t: &mut TestFs, l: u32, len: u32| {
            let m =
                t.fs.ind_map_blocks(None, ino, Lblk(l), len, MapFlags::LOOKUP)
                    .unwrap();
            assert_eq!((m.lblk, m.flags), (Lblk(l), 0), "hole at {l}");
            m.len
        };
        assert_eq!(hole(&mut t, 0, 20), 1, "a direct hole is one block");
        assert_eq!(hole(&mut t, 12, 1000), 256, "IND missing: its 256 blocks");
        assert_eq!(hole(&mut t, 22, 1000), 246);
        assert_eq!(hole(&mut t, 22, 7), 7, "capped at the request");
        assert_eq!(hole(&mut t, 268, u32::MAX), 65536, "DIND missing");
        assert_eq!(hole(&mut t, 268 + 256 + 3, u32::MAX), 65536 - 256 - 3);
        assert_eq!(hole(&mut t, 65804, u32::MAX), 1 << 24, "TIND missing");
        t.fs.write_file(ino, 300 * 1024, &[1]).unwrap();
        // DIND and the IND of 268..=523 exist now: a hole in that IND is counted one by one;
        // the next IND is missing as a whole.
        assert_eq!(hole(&mut t, 299, 100), 1);
        assert_eq!(hole(&mut t, 524, 1000), 256);
    }
}
