//! Model of ext4_ext_map_blocks() (fs/ext4/extents.c), the extent side of ext4_map_blocks():
//! a lookup returns the extent covering the block (written: `MAPPED`; unwritten: handled by
//! ext4_ext_handle_unwritten_extents()), or the hole up to the next mapped block; with
//! `CREATE` a hole is allocated near ext4_ext_find_goal() — trimmed so the new extent
//! overlaps nothing (ext4_ext_check_overlap()) — and inserted.
//!
//! Also the public insert that migrate.c's finish_range() performs on its temporary inode.

use super::node::{mark_unwritten, set_len};
use super::path::ExtPath;
use super::{has, tree_err, EXT_MAX_BLOCKS};
use crate::error::{Error, Result};
use crate::format::extent::{Extent, EXT_INIT_MAX_LEN, EXT_MAX_PBLK, EXT_UNWRITTEN_MAX_LEN};
use crate::fs::map::{MapFlags, MapResult, EXT4_MAP_MAPPED, EXT4_MAP_NEW, EXT4_MAP_UNWRITTEN};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

/// `EXT4_META_TRANS_BLOCKS()` without quota: superblock, inode, xattr blocks.
const EXT4_META_TRANS_BLOCKS: u32 = 6;

impl Fs {
    /// Model of ext4_ext_find_goal(): where to allocate for logical block `block` — at the
    /// same distance from the path's extent as on disk, else next to the path's leaf block,
    /// else in the inode's group.
    pub(super) fn ext_find_goal(&self, ino: Ino, path: Option<&ExtPath>, block: u32) -> Pblk {
        if let Some(path) = path {
            let depth = path.depth();
            let level = &path[depth];
            if let Some(e) = level.p_ext {
                let ex = self.ext_at(ino, level.p_bh, e);
                return if block > ex.ee_block {
                    Pblk(ex.ee_start + u64::from(block - ex.ee_block))
                } else {
                    Pblk(ex.ee_start.wrapping_sub(u64::from(ex.ee_block - block)))
                };
            }
            if let Some(bh) = level.p_bh {
                return bh;
            }
        }
        self.inode_goal_block(ino)
    }

    /// Model of ext4_ext_check_overlap(): the length a new extent of `len` blocks at `lblk`
    /// may have without running into the next mapped block, if shorter than `len`.
    fn ext_check_overlap(
        &self,
        ino: Ino,
        path: &ExtPath,
        lblk: u32,
        len: u32,
    ) -> Result<Option<u32>> {
        let depth = path.depth();
        let Some(e) = path[depth].p_ext else {
            return Ok(None);
        };
        let mut b2 = self.ext_at(ino, path[depth].p_bh, e).ee_block;
        if b2 < lblk {
            b2 = self.ext_next_allocated_block(ino, path);
            if b2 == EXT_MAX_BLOCKS {
                return Ok(None);
            }
        }
        if b2 <= lblk {
            return Err(tree_err(
                ino,
                "next allocated block is not after the new extent",
            ));
        }
        let (mut len1, mut changed) = (len, false);
        if u64::from(lblk) + u64::from(len1) > u64::from(u32::MAX) {
            // Wrap through zero.
            len1 = EXT_MAX_BLOCKS - lblk;
            changed = true;
        }
        if u64::from(lblk) + u64::from(len1) > u64::from(b2) {
            len1 = b2 - lblk;
            changed = true;
        }
        Ok(changed.then_some(len1))
    }

    /// Model of ext4_ext_map_blocks() (fs/ext4/extents.c): map `len` blocks of `ino` from
    /// `lblk`. See [`Fs::map_blocks`] for the flags and the result.
    pub fn ext_map_blocks(
        &mut self,
        h: Option<&mut Handle>,
        ino: Ino,
        lblk: Lblk,
        len: u32,
        flags: MapFlags,
    ) -> Result<MapResult> {
        let mut map = MapResult::hole(lblk, len);
        let mut path = self.ext_find_extent(ino, lblk)?;
        let depth = path.depth();
        let leaf = path[depth].p_bh;
        if path[depth].p_ext.is_none() && depth != 0 {
            return Err(tree_err(ino, "bad extent address"));
        }
        if let Some(exi) = path[depth].p_ext {
            let ex = self.ext_at(ino, leaf, exi);
            if lblk.0 >= ex.ee_block && lblk.0 - ex.ee_block < ex.len() {
                let off = lblk.0 - ex.ee_block;
                let newblock = Pblk(ex.ee_start + u64::from(off));
                let allocated = ex.len() - off;
                if !ex.is_unwritten() {
                    map.flags |= EXT4_MAP_MAPPED;
                    map.pblk = newblock;
                    map.len = map.len.min(allocated);
                    return Ok(map);
                }
                let found = (allocated, newblock);
                self.ext_handle_unwritten_extents(h, ino, &mut map, &mut path, flags, found)?;
                return Ok(map);
            }
        }
        if !has(flags, MapFlags::CREATE) {
            let (hole_start, hole_len) = self.ext_determine_hole(ino, &path, lblk.0)?;
            let hole_len = hole_len
                .checked_sub(lblk.0 - hole_start)
                .ok_or_else(|| tree_err(ino, "hole ends before the block"))?;
            map.len = map.len.min(hole_len);
            return Ok(map);
        }
        let h = h.expect("ext_map_blocks: allocation needs a journal handle");
        self.ext_map_allocate(h, ino, &mut map, &mut path, flags)?;
        Ok(map)
    }

    /// The allocating half of ext4_ext_map_blocks(): cap the request at one extent's length
    /// and at the next mapped block, allocate near the goal, insert the new extent (freeing
    /// the blocks again if that fails).
    fn ext_map_allocate(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        map: &mut MapResult,
        path: &mut ExtPath,
        flags: MapFlags,
    ) -> Result<()> {
        let unwritten = has(flags, MapFlags::UNWRIT_EXT);
        if map.len > EXT_INIT_MAX_LEN && !unwritten {
            map.len = EXT_INIT_MAX_LEN;
        } else if map.len > EXT_UNWRITTEN_MAX_LEN && unwritten {
            map.len = EXT_UNWRITTEN_MAX_LEN;
        }
        let lblk = map.lblk.0;
        let allocated = self
            .ext_check_overlap(ino, path, lblk, map.len)?
            .unwrap_or(map.len);
        let goal = self.ext_find_goal(ino, Some(path), lblk);
        let (newblock, got) = self.new_blocks(h, goal, allocated)?;
        self.dquot_alloc_block(h, ino, got)?;
        let ar_len = got.min(allocated);
        let mut newex = Extent {
            ee_block: lblk,
            ee_len: 0,
            ee_start: newblock.0,
        };
        set_len(&mut newex, ar_len);
        if unwritten {
            mark_unwritten(&mut newex);
            map.flags |= EXT4_MAP_UNWRITTEN;
        }
        if let Err(e) = self.ext_insert_extent_path(h, ino, path, &newex, flags) {
            // Free the data blocks we just allocated; a failure here is not reported.
            let _ = self.free_blocks(h, newblock, got, false);
            let _ = self.dquot_free_block(h, ino, got);
            return Err(e);
        }
        map.flags |= EXT4_MAP_NEW | EXT4_MAP_MAPPED;
        map.pblk = newblock;
        map.len = ar_len;
        Ok(())
    }

    /// Model of ext4_ext_calc_credits_for_single_extent(): credits to insert one extent of
    /// `nrblocks` blocks at `path` — the leaf, bitmap and descriptor when the leaf has room,
    /// else a whole-tree split (ext4_chunk_trans_blocks() → ext4_meta_trans_blocks()).
    pub fn ext_calc_credits_for_single_extent(
        &self,
        ino: Ino,
        _nrblocks: u32,
        path: &ExtPath,
    ) -> u32 {
        let depth = path.depth();
        if self.hdr(ino, path[depth].p_bh).has_free() {
            return 2 + EXT4_META_TRANS_BLOCKS;
        }
        // ext4_ext_index_trans_blocks(inode, 1) = 2 · depth.
        let idxblocks = 2 * u32::from(self.hdr(ino, None).depth);
        let mut groups = idxblocks + 1;
        let mut gdpblocks = groups;
        groups = groups.min(self.sb.groups_count());
        if groups > self.sb.gdt_blocks() {
            gdpblocks = self.sb.gdt_blocks();
        }
        idxblocks + groups + gdpblocks + EXT4_META_TRANS_BLOCKS
    }

    /// Insert the extent `[lblk, lblk + len)` → `pblk` into the tree of `ino`, as migrate.c's
    /// finish_range() does for its temporary inode: ext4_find_extent(), credits
    /// (ext4_ext_calc_credits_for_single_extent() + ext4_datasem_ensure_credits()), then
    /// ext4_ext_insert_extent() — merging with neighbours, splitting and growing the tree,
    /// tree blocks counted in `i_blocks` (the data blocks are not: they belong to whoever
    /// owns them). Nothing checks that the range is unmapped.
    ///
    /// # Errors
    /// `Error::Invalid` if `len` is 0 or above one extent's maximum (32768 written, 32767
    /// unwritten; the kernel's finish_range() would truncate it to 16 bits — the caller must
    /// split long runs), if the range wraps past 2³² − 1 or if `pblk` needs more than 48 bits;
    /// the errors of the tree code otherwise.
    pub fn ext_insert_extent(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        lblk: Lblk,
        pblk: Pblk,
        len: u32,
        unwritten: bool,
    ) -> Result<()> {
        let max = if unwritten {
            EXT_UNWRITTEN_MAX_LEN
        } else {
            EXT_INIT_MAX_LEN
        };
        if len == 0 || len > max {
            return Err(Error::Invalid(format!(
                "extent length {len} out of 1..={max}"
            )));
        }
        if u64::from(lblk.0) + u64::from(len) > u64::from(EXT_MAX_BLOCKS) || pblk.0 > EXT_MAX_PBLK {
            return Err(Error::Invalid(format!(
                "extent {lblk}+{len} -> {pblk} out of range"
            )));
        }
        let mut path = self.ext_find_extent(ino, lblk)?;
        let needed = self.ext_calc_credits_for_single_extent(ino, len, &path);
        self.journal_ensure_credits(h, needed)?;
        let newext = Extent::new(lblk, len, pblk, unwritten);
        self.ext_insert_extent_path(h, ino, &mut path, &newext, MapFlags(0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::setup;
    use crate::error::Error;
    use crate::fs::map::{MapFlags, EXT4_MAP_MAPPED, EXT4_MAP_NEW, EXT4_MAP_UNWRITTEN};
    use crate::units::{Lblk, Pblk};

    #[test]
    fn lookup_reports_mapped_unwritten_and_holes() {
        let Some(mut t) = setup("ext-lookup") else {
            return;
        };
        let p = t.alloc(10);
        t.insert(10, 5, p, false);
        t.insert(20, 5, p + 5, true);
        let look = |t: &mut super::super::testutil::T, l: u32, n: u32| {
            let m =
                t.fs.map_blocks(None, t.ino, Lblk(l), n, MapFlags::LOOKUP)
                    .unwrap();
            (m.pblk.0, m.len, m.flags)
        };
        // (lblk, len asked) -> (pblk, len, flags)
        let cases = [
            ((0, 100), (0, 10, 0)),                      // hole up to the first extent
            ((3, 4), (0, 4, 0)),                         // capped at the request
            ((12, 100), (p + 2, 3, EXT4_MAP_MAPPED)),    // rest of the written extent
            ((15, 100), (0, 5, 0)),                      // hole between the extents
            ((22, 100), (p + 7, 3, EXT4_MAP_UNWRITTEN)), // unwritten: not MAPPED
            ((25, 100), (0, 100, 0)),                    // nothing after: the request
            ((24, 1), (p + 9, 1, EXT4_MAP_UNWRITTEN)),
        ];
        for ((l, n), want) in cases {
            assert_eq!(look(&mut t, l, n), want, "lookup {l}+{n}");
        }
        assert_eq!(t.i_blocks(), 0, "the wrapper does not count data blocks");
    }

    #[test]
    fn allocation_follows_the_goal_and_stops_at_the_next_extent() {
        let Some(mut t) = setup("ext-alloc") else {
            return;
        };
        let m = t.map(0, 10, MapFlags::CREATE);
        assert_eq!(m.flags, EXT4_MAP_NEW | EXT4_MAP_MAPPED);
        let p = m.pblk.0;
        assert!(p >= t.fs.inode_goal_block(t.ino).0);
        // The goal keeps the distance of the path's extent: 20 blocks after p.
        let m = t.map(20, 5, MapFlags::CREATE);
        assert_eq!((m.pblk.0, m.len), (p + 20, 5));
        // A request overlapping the extent at 20 is trimmed to the gap, lands between the
        // two on disk, and the three merge into one extent.
        let m = t.map(10, 50, MapFlags::CREATE);
        assert_eq!(
            (m.pblk.0, m.len, m.flags),
            (p + 10, 10, EXT4_MAP_NEW | EXT4_MAP_MAPPED)
        );
        assert_eq!(t.extents(), [(0, 25, p, false)]);
        assert_eq!(t.i_blocks(), 25, "data blocks are counted");
        // Mapping again allocates nothing.
        let m = t.map(3, 100, MapFlags::CREATE);
        assert_eq!((m.pblk.0, m.len, m.flags), (p + 3, 22, EXT4_MAP_MAPPED));
        // Unwritten allocation, capped at 32767 blocks.
        let m = t.map(100, 40000, MapFlags::CREATE_UNWRIT_EXT);
        assert_eq!(m.flags, EXT4_MAP_NEW | EXT4_MAP_MAPPED | EXT4_MAP_UNWRITTEN);
        assert!(m.len <= 32767 && m.len > 1000, "{m:?}");
        let again = t.map(100, 10, MapFlags::CREATE_UNWRIT_EXT);
        assert_eq!((again.pblk, again.len), (m.pblk, 10));
        assert_eq!(
            again.flags,
            EXT4_MAP_MAPPED | EXT4_MAP_UNWRITTEN,
            "repeat fallocate"
        );
    }

    #[test]
    fn insert_wrapper_rejects_impossible_extents() {
        let Some(mut t) = setup("ext-wrapper") else {
            return;
        };
        let mut h = t.h();
        let ino = t.ino;
        let cases = [
            (0, 0, 100, false),
            (0, 32769, 100, false),
            (0, 32768, 100, true),
            (u32::MAX - 1, 2, 100, false),
            (0, 1, 1 << 48, false),
        ];
        for (l, n, p, u) in cases {
            let r = t.fs.ext_insert_extent(&mut h, ino, Lblk(l), Pblk(p), n, u);
            assert!(
                matches!(r, Err(Error::Invalid(_))),
                "{l}+{n}@{p} {u}: {r:?}"
            );
        }
        assert_eq!(t.extents(), []);
        let r =
            t.fs.ext_insert_extent(&mut h, ino, Lblk(0), Pblk(0), 1, false);
        assert_eq!(r, Ok(()), "the wrapper trusts its caller");
        let e = t.fs.ext_find_extent(ino, Lblk(0));
        let kind = crate::error::CorruptKind::ExtentRange(ino);
        assert_eq!(
            e,
            Err(Error::Corrupt(kind)),
            "block 0 is never a valid extent start"
        );
    }

    #[test]
    fn credits_for_one_extent() {
        let Some(mut t) = setup("ext-credits") else {
            return;
        };
        let path = t.fs.ext_find_extent(t.ino, Lblk(0)).unwrap();
        assert_eq!(t.fs.ext_calc_credits_for_single_extent(t.ino, 1, &path), 8);
        let p = t.alloc(200);
        for i in 0..84 {
            t.insert(2 * i, 1, p + 2 * u64::from(i), false);
        }
        assert_eq!((t.depth(), t.leaf_sizes()), (1, vec![84]));
        let path = t.fs.ext_find_extent(t.ino, Lblk(500)).unwrap();
        // A full leaf at depth 1: 2 index blocks, 2 groups (of 2), 1 descriptor block, 6.
        assert_eq!(t.fs.ext_calc_credits_for_single_extent(t.ino, 1, &path), 11);
        t.insert(500, 1, p + 199, false);
        assert_eq!(t.depth(), 1);
    }
}
