//! Model of the unwritten-extent half of fs/ext4/extents.c: splitting an extent in two
//! (ext4_split_extent_at()) or three (ext4_split_extent()), and turning the part of an
//! unwritten extent that a write covers into a written one (ext4_ext_convert_to_initialized(),
//! reached through ext4_ext_handle_unwritten_extents()).
//!
//! A conversion first tries to hand the written blocks to an adjacent written extent in the
//! same leaf (the "fast path"). Otherwise, when the extent lies inside `i_size`, parts of at
//! most `extent_max_zeroout_kb` are zeroed on disk and converted along with the write rather
//! than split off, and the rest is split: up to three extents, the written one in the middle.
//! If a split fails for lack of space, the extent is zeroed and converted whole instead.

use super::node::{self, mark_initialized, mark_unwritten, set_len};
use super::path::ExtPath;
use super::GET_BLOCKS_PRE_IO;
use super::{has, tree_err, EXT4_EXTENT_MAX_ZEROOUT_KB, GET_BLOCKS_METADATA_NOFAIL};
use crate::dev::Zone;
use crate::error::{Error, Result};
use crate::format::extent::{Extent, EXT_INIT_MAX_LEN};
use crate::fs::map::{MapFlags, MapResult, EXT4_MAP_MAPPED, EXT4_MAP_NEW, EXT4_MAP_UNWRITTEN};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk};

/// `EXT4_EXT_MAY_ZEROOUT`: safe to zero out if the split fails for lack of space.
pub(super) const EXT4_EXT_MAY_ZEROOUT: u32 = 0x1;
/// `EXT4_EXT_MARK_UNWRIT1`: mark the first half unwritten.
pub(super) const EXT4_EXT_MARK_UNWRIT1: u32 = 0x2;
/// `EXT4_EXT_MARK_UNWRIT2`: mark the second half unwritten.
pub(super) const EXT4_EXT_MARK_UNWRIT2: u32 = 0x4;
/// `EXT4_EXT_DATA_VALID1`: the first half holds valid data.
pub(super) const EXT4_EXT_DATA_VALID1: u32 = 0x8;
/// `EXT4_EXT_DATA_VALID2`: the second half holds valid data.
pub(super) const EXT4_EXT_DATA_VALID2: u32 = 0x10;

/// An extent of `len` blocks from `lblk` at `pblk`, written (`zero_ex` and friends).
fn raw_extent(lblk: u32, len: u32, pblk: u64) -> Extent {
    let mut e = Extent {
        ee_block: lblk,
        ee_len: 0,
        ee_start: pblk,
    };
    set_len(&mut e, len);
    e
}

impl Fs {
    /// Model of ext4_ext_zeroout() → ext4_issue_zeroout(): write zeros over the blocks of
    /// `ex`, straight to the device (not through the page cache).
    fn ext_zeroout(&mut self, ex: &Extent) -> Result<()> {
        let zeros = vec![0u8; self.block_size() as usize];
        for i in 0..u64::from(ex.len()) {
            self.dev.write_as(ex.pblk() + i, &zeros, Zone::Data)?;
        }
        Ok(())
    }

    /// The end of the file in blocks for the zeroout decision: `i_disksize` rounded up, at
    /// least the end of the mapping (`eof_block`).
    fn ext_eof_block(&self, ino: Ino, map: &MapResult) -> u64 {
        let bs = u64::from(self.block_size());
        let eof = self.inode(ino).raw.i_size.div_ceil(bs);
        eof.max(u64::from(map.lblk.0) + u64::from(map.len))
    }

    /// Model of ext4_split_extent_at() (fs/ext4/extents.c): split the path's extent at logical
    /// block `split` into `[ee_block, split)` and `[split, end)`, marking the halves as
    /// `split_flag` says; with `split == ee_block` only the marking happens. If inserting the
    /// second half runs out of space and `EXT4_EXT_MAY_ZEROOUT` is set, the unwritten part is
    /// zeroed and the extent stays whole, written.
    pub(super) fn ext_split_extent_at(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        split: u32,
        split_flag: u32,
        flags: MapFlags,
    ) -> Result<()> {
        let both = EXT4_EXT_DATA_VALID1 | EXT4_EXT_DATA_VALID2;
        assert!(split_flag & both != both, "split with both halves valid");
        let depth = usize::from(self.hdr(ino, None).depth);
        let leaf = path[depth].p_bh;
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "split of a missing extent"))?;
        let ex = self.ext_at(ino, leaf, exi);
        let (ee_block, ee_len) = (ex.ee_block, ex.len());
        assert!(
            split >= ee_block && u64::from(split) < u64::from(ee_block) + u64::from(ee_len),
            "split point {split} outside the extent"
        );
        let marks = EXT4_EXT_MAY_ZEROOUT | EXT4_EXT_MARK_UNWRIT1 | EXT4_EXT_MARK_UNWRIT2;
        assert!(
            ex.is_unwritten() || split_flag & marks == 0,
            "unwritten marks on a written extent"
        );
        self.ext_get_access(h, leaf)?;
        if split == ee_block {
            // Case b: no split, only the marking.
            let mut e = ex;
            if split_flag & EXT4_EXT_MARK_UNWRIT2 != 0 {
                mark_unwritten(&mut e);
            } else {
                mark_initialized(&mut e);
            }
            self.put_ext(ino, leaf, exi, &e);
            if !has(flags, GET_BLOCKS_PRE_IO) {
                self.ext_try_to_merge(h, ino, path, exi)?;
            }
            let d = path.depth();
            return self.ext_dirty(h, ino, path[d].p_bh);
        }
        let orig = ex;
        let mut first = ex;
        set_len(&mut first, split - ee_block);
        if split_flag & EXT4_EXT_MARK_UNWRIT1 != 0 {
            mark_unwritten(&mut first);
        }
        self.put_ext(ino, leaf, exi, &first);
        if let Err(err) = self.ext_dirty(h, ino, leaf) {
            return self.ext_fix_extent_len(h, ino, path, (leaf, exi), &orig, err);
        }
        let mut ex2 = raw_extent(split, ee_len - (split - ee_block), ex.ee_start);
        ex2.ee_start += u64::from(split - ee_block);
        if split_flag & EXT4_EXT_MARK_UNWRIT2 != 0 {
            mark_unwritten(&mut ex2);
        }
        let err = match self.ext_insert_extent_path(h, ino, path, &ex2, flags) {
            Err(e @ Error::NoSpace) => e,
            other => return other,
        };
        if split_flag & EXT4_EXT_MAY_ZEROOUT != 0
            && self
                .ext_split_zeroout(ino, (leaf, exi), split_flag, (&orig, &ex2))
                .is_ok()
        {
            // Update the extent length and mark it initialized.
            let mut e = self.ext_at(ino, leaf, exi);
            set_len(&mut e, ee_len);
            self.put_ext(ino, leaf, exi, &e);
            self.ext_try_to_merge(h, ino, path, exi)?;
            let d = path.depth();
            return self.ext_dirty(h, ino, path[d].p_bh);
        }
        self.ext_fix_extent_len(h, ino, path, (leaf, exi), &orig, err)
    }

    /// The no-space fallback of ext4_split_extent_at(): zero the half whose data is not
    /// valid (`ex2` with `DATA_VALID1`, the first half with `DATA_VALID2`, else the whole
    /// original extent) so the extent can stay whole.
    fn ext_split_zeroout(
        &mut self,
        ino: Ino,
        (leaf, exi): (node::Bh, usize),
        split_flag: u32,
        (orig, ex2): (&Extent, &Extent),
    ) -> Result<()> {
        if split_flag & EXT4_EXT_DATA_VALID1 != 0 {
            self.ext_zeroout(ex2)
        } else if split_flag & EXT4_EXT_DATA_VALID2 != 0 {
            let first = self.ext_at(ino, leaf, exi);
            self.ext_zeroout(&first)
        } else {
            self.ext_zeroout(orig)
        }
    }

    /// The `fix_extent_len:` exit of ext4_split_extent_at(): restore the extent's length and
    /// report `err`.
    fn ext_fix_extent_len(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &ExtPath,
        (leaf, exi): (node::Bh, usize),
        orig: &Extent,
        err: Error,
    ) -> Result<()> {
        let mut e = self.ext_at(ino, leaf, exi);
        e.ee_len = orig.ee_len;
        self.put_ext(ino, leaf, exi, &e);
        let d = path.depth();
        // The error path ignores a second error, as the kernel does.
        let _ = self.ext_dirty(h, ino, path[d].p_bh);
        Err(err)
    }

    /// Model of ext4_split_extent(): split the path's extent so that `[map.lblk, map.lblk +
    /// map.len)` becomes an extent of its own (up to three pieces), marked as `split_flag`
    /// says. Returns the blocks from `map.lblk` to the end of the piece (`allocated`).
    pub(super) fn ext_split_extent(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        map: &MapResult,
        split_flag: u32,
        flags: MapFlags,
    ) -> Result<u32> {
        let depth = usize::from(self.hdr(ino, None).depth);
        let leaf = path[depth].p_bh;
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "split of a missing extent"))?;
        let ex = self.ext_at(ino, leaf, exi);
        let (ee_block, ee_len) = (ex.ee_block, ex.len());
        let map_end = u64::from(map.lblk.0) + u64::from(map.len);
        let mut allocated = map.len;
        if map_end < u64::from(ee_block) + u64::from(ee_len) {
            let mut split_flag1 = split_flag & EXT4_EXT_MAY_ZEROOUT;
            if ex.is_unwritten() {
                split_flag1 |= EXT4_EXT_MARK_UNWRIT1 | EXT4_EXT_MARK_UNWRIT2;
            }
            if split_flag & EXT4_EXT_DATA_VALID2 != 0 {
                split_flag1 |= EXT4_EXT_DATA_VALID1;
            }
            // OK to unwrap: map_end < the extent's end <= EXT_MAX_BLOCKS.
            let at = u32::try_from(map_end).unwrap();
            let flags1 = flags | GET_BLOCKS_PRE_IO;
            self.ext_split_extent_at(h, ino, path, at, split_flag1, flags1)?;
        } else {
            allocated = ee_len - (map.lblk.0 - ee_block);
        }
        // The split may have moved the extent to another leaf, or zeroed it out.
        *path = self.ext_find_extent(ino, map.lblk)?;
        let depth = usize::from(self.hdr(ino, None).depth);
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "unexpected hole"))?;
        let unwritten = self.ext_at(ino, path[depth].p_bh, exi).is_unwritten();
        if map.lblk.0 >= ee_block {
            let mut split_flag1 = split_flag & EXT4_EXT_DATA_VALID2;
            if unwritten {
                split_flag1 |= EXT4_EXT_MARK_UNWRIT1;
                split_flag1 |= split_flag & (EXT4_EXT_MAY_ZEROOUT | EXT4_EXT_MARK_UNWRIT2);
            }
            self.ext_split_extent_at(h, ino, path, map.lblk.0, split_flag1, flags)?;
        }
        Ok(allocated)
    }

    /// The fast path of ext4_ext_convert_to_initialized(): when the write covers the head
    /// (tail) of the unwritten extent and the extent to its left (right) in the same leaf is
    /// written and adjacent on disk, move the written blocks over to it. Returns the blocks
    /// converted, or `None` when the fast path does not apply.
    fn ext_convert_transfer(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        map: &MapResult,
    ) -> Result<Option<u32>> {
        let depth = usize::from(self.hdr(ino, None).depth);
        let leaf = path[depth].p_bh;
        let entries = usize::from(self.hdr(ino, leaf).entries);
        let exi = path[depth].p_ext.expect("convert without an extent");
        let mut ex = self.ext_at(ino, leaf, exi);
        let (ee_block, ee_len, ee_pblk) = (ex.ee_block, ex.len(), ex.ee_start);
        let (m_lblk, map_len) = (map.lblk.0, map.len);
        let left = m_lblk == ee_block && map_len < ee_len && exi > 0;
        let right = u64::from(m_lblk) + u64::from(map_len)
            == u64::from(ee_block) + u64::from(ee_len)
            && map_len < ee_len
            && exi + 1 < entries;
        let abut_i = match (left, right) {
            (true, _) => exi - 1,
            (false, true) => exi + 1,
            _ => return Ok(None),
        };
        let mut abut = self.ext_at(ino, leaf, abut_i);
        let (a_lblk, a_len, a_pblk) = (abut.ee_block, abut.len(), abut.ee_start);
        let adjacent = if left {
            u64::from(a_lblk) + u64::from(a_len) == u64::from(ee_block)
                && a_pblk + u64::from(a_len) == ee_pblk
        } else {
            u64::from(m_lblk) + u64::from(map_len) == u64::from(a_lblk)
                && ee_pblk + u64::from(ee_len) == a_pblk
        };
        let fits = a_len < EXT_INIT_MAX_LEN - map_len;
        if abut.is_unwritten() || !adjacent || !fits {
            return Ok(None);
        }
        self.ext_get_access(h, leaf)?;
        if left {
            ex.ee_block = ee_block + map_len;
            ex.ee_start = ee_pblk + u64::from(map_len);
        } else {
            abut.ee_block = a_lblk - map_len;
            abut.ee_start = a_pblk - u64::from(map_len);
        }
        set_len(&mut ex, ee_len - map_len);
        mark_unwritten(&mut ex);
        set_len(&mut abut, a_len + map_len);
        self.put_ext(ino, leaf, exi, &ex);
        self.put_ext(ino, leaf, abut_i, &abut);
        self.ext_dirty(h, ino, leaf)?;
        path[depth].p_ext = Some(abut_i);
        Ok(Some(map_len))
    }

    /// Model of ext4_ext_convert_to_initialized() (fs/ext4/extents.c): a write covers
    /// `[map.lblk, map.lblk + map.len)` of the path's unwritten extent; make those blocks
    /// written (fast path, zeroout, or split). Returns the written blocks from `map.lblk`
    /// (≥ `map.len`).
    pub(super) fn ext_convert_to_initialized(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        map: &MapResult,
        path: &mut ExtPath,
        flags: MapFlags,
    ) -> Result<u32> {
        let eof_block = self.ext_eof_block(ino, map);
        let depth = usize::from(self.hdr(ino, None).depth);
        let exi = path[depth].p_ext.expect("convert without an extent");
        let ex = self.ext_at(ino, path[depth].p_bh, exi);
        let (ee_block, ee_len) = (ex.ee_block, ex.len());
        assert!(ex.is_unwritten(), "convert of a written extent");
        assert!(
            map.lblk.0 >= ee_block && map.lblk.0 - ee_block < ee_len,
            "convert outside the extent"
        );
        if let Some(allocated) = self.ext_convert_transfer(h, ino, path, map)? {
            return Ok(allocated);
        }
        let mut allocated = ee_len - (map.lblk.0 - ee_block);
        let mut split_flag = EXT4_EXT_DATA_VALID2;
        if u64::from(ee_block) + u64::from(ee_len) <= eof_block {
            split_flag |= EXT4_EXT_MAY_ZEROOUT;
        }
        let mut max_zeroout = 0;
        if split_flag & EXT4_EXT_MAY_ZEROOUT != 0 {
            let bits = self.block_size().trailing_zeros();
            max_zeroout = EXT4_EXTENT_MAX_ZEROOUT_KB >> (bits - 10);
        }
        let mut split_map = *map;
        'zeroout: {
            if max_zeroout == 0 || allocated <= split_map.len {
                break 'zeroout;
            }
            if allocated <= max_zeroout {
                // Case 3 or 5: zero the tail and convert it along with the write.
                let tail = split_map.lblk.0 + split_map.len;
                let tail_pblk = ex.ee_start + u64::from(tail - ee_block);
                let zero_ex1 = raw_extent(tail, allocated - split_map.len, tail_pblk);
                if self.ext_zeroout(&zero_ex1).is_err() {
                    break 'zeroout;
                }
                split_map.len = allocated;
            }
            if split_map.lblk.0 - ee_block + split_map.len < max_zeroout {
                // Case 2 or 5: zero the head as well.
                if split_map.lblk.0 != ee_block {
                    let head = raw_extent(ee_block, split_map.lblk.0 - ee_block, ex.ee_start);
                    if self.ext_zeroout(&head).is_err() {
                        break 'zeroout;
                    }
                }
                split_map.len += split_map.lblk.0 - ee_block;
                split_map.lblk = Lblk(ee_block);
                allocated = map.len;
            }
        }
        self.ext_split_extent(h, ino, path, &split_map, split_flag, flags)?;
        Ok(allocated)
    }

    /// Model of ext4_split_convert_extents(): split the path's extent around `map` before I/O
    /// (`GET_BLOCKS_PRE_IO`) or at I/O completion (`CONVERT`: the middle piece written).
    /// Returns what ext4_split_extent() returns.
    fn ext_split_convert_extents(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        map: &MapResult,
        path: &mut ExtPath,
        flags: MapFlags,
    ) -> Result<u32> {
        let eof_block = self.ext_eof_block(ino, map);
        let depth = usize::from(self.hdr(ino, None).depth);
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "split of a missing extent"))?;
        let ex = self.ext_at(ino, path[depth].p_bh, exi);
        let mut split_flag = 0;
        if has(flags, MapFlags::CONVERT) {
            if u64::from(ex.ee_block) + u64::from(ex.len()) <= eof_block {
                split_flag |= EXT4_EXT_MAY_ZEROOUT;
            }
            split_flag |= EXT4_EXT_MARK_UNWRIT2 | EXT4_EXT_DATA_VALID2;
        }
        let flags = flags | GET_BLOCKS_PRE_IO;
        self.ext_split_extent(h, ino, path, map, split_flag, flags)
    }

    /// Model of ext4_convert_unwritten_extents_endio(): after the data of `map` reached the
    /// disk, mark it written (splitting the extent first if it is larger than `map`).
    fn ext_convert_unwritten_extents_endio(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        map: &MapResult,
        path: &mut ExtPath,
    ) -> Result<()> {
        let depth = path.depth();
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "convert of a missing extent"))?;
        let ex = self.ext_at(ino, path[depth].p_bh, exi);
        if ex.ee_block != map.lblk.0 || ex.len() > map.len {
            self.ext_split_convert_extents(h, ino, map, path, MapFlags::CONVERT)?;
            *path = self.ext_find_extent(ino, map.lblk)?;
        }
        let depth = path.depth();
        let leaf = path[depth].p_bh;
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "unexpected hole"))?;
        self.ext_get_access(h, leaf)?;
        let mut e = self.ext_at(ino, leaf, exi);
        mark_initialized(&mut e);
        self.put_ext(ino, leaf, exi, &e);
        self.ext_try_to_merge(h, ino, path, exi)?;
        let d = path.depth();
        self.ext_dirty(h, ino, path[d].p_bh)
    }

    /// Model of ext4_ext_handle_unwritten_extents() (fs/ext4/extents.c): `map.lblk` lies in
    /// the path's unwritten extent, whose blocks from there start at `newblock` and number
    /// `allocated`. A lookup or a repeated fallocate reports it unwritten; a `CREATE` write
    /// converts the written part (and reports it `EXT4_MAP_NEW`, so the caller zeroes the
    /// rest of the page and orders the data); `PRE_IO` / `CONVERT` split and convert around
    /// direct I/O. Fills `map` and returns its length.
    pub(super) fn ext_handle_unwritten_extents(
        &mut self,
        h: Option<&mut Handle>,
        ino: Ino,
        map: &mut MapResult,
        path: &mut ExtPath,
        flags: MapFlags,
        (allocated, newblock): (u32, crate::units::Pblk),
    ) -> Result<u32> {
        let flags = flags | GET_BLOCKS_METADATA_NOFAIL;
        let mut allocated = allocated;
        let need = "converting an unwritten extent needs a journal handle";
        if has(flags, GET_BLOCKS_PRE_IO) {
            let h = h.expect(need);
            let ret =
                self.ext_split_convert_extents(h, ino, map, path, flags | MapFlags::CONVERT)?;
            if ret == 0 {
                return Err(tree_err(ino, "unexpected ret == 0"));
            }
            map.flags |= EXT4_MAP_UNWRITTEN | EXT4_MAP_NEW | EXT4_MAP_MAPPED;
            allocated = ret;
        } else if has(flags, MapFlags::CONVERT) {
            self.ext_convert_unwritten_extents_endio(h.expect(need), ino, map, path)?;
            map.flags |= EXT4_MAP_MAPPED;
        } else if has(flags, MapFlags::UNWRIT_EXT) {
            // A repeated fallocate: the blocks are already preallocated.
            map.flags |= EXT4_MAP_UNWRITTEN | EXT4_MAP_MAPPED;
        } else if !has(flags, MapFlags::CREATE) {
            // A lookup: unwritten blocks read as zeros.
            map.flags |= EXT4_MAP_UNWRITTEN;
        } else {
            let h = h.expect(need);
            let ret = self.ext_convert_to_initialized(h, ino, map, path, flags)?;
            if ret == 0 {
                return Err(tree_err(ino, "unexpected ret == 0"));
            }
            map.flags |= EXT4_MAP_NEW | EXT4_MAP_MAPPED;
            allocated = ret;
        }
        map.pblk = newblock;
        map.len = map.len.min(allocated);
        Ok(map.len)
    }

    /// Model of ext4_force_split_extent_at(): split the path's extent at `lblk`, keeping both
    /// halves in its state, without merging (`GET_BLOCKS_PRE_IO`).
    pub(super) fn ext_force_split_extent_at(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        lblk: u32,
        nofail: bool,
    ) -> Result<()> {
        let depth = path.depth();
        let exi = path[depth]
            .p_ext
            .ok_or_else(|| tree_err(ino, "split of a missing extent"))?;
        let unwritten = self.ext_at(ino, path[depth].p_bh, exi).is_unwritten();
        let mut flags = GET_BLOCKS_PRE_IO;
        if nofail {
            flags = flags | GET_BLOCKS_METADATA_NOFAIL;
        }
        let split_flag = if unwritten {
            EXT4_EXT_MARK_UNWRIT1 | EXT4_EXT_MARK_UNWRIT2
        } else {
            0
        };
        self.ext_split_extent_at(h, ino, path, lblk, split_flag, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{setup, Ext, T};
    use super::super::GET_BLOCKS_PRE_IO;
    use crate::fs::map::{MapFlags, EXT4_MAP_MAPPED, EXT4_MAP_NEW, EXT4_MAP_UNWRITTEN};
    use crate::units::Pblk;

    const NEW: u32 = EXT4_MAP_NEW | EXT4_MAP_MAPPED;

    /// One conversion case, in the manner of the kernel's extents-test.c.
    struct Row {
        name: &'static str,
        /// Physically contiguous pieces from logical 0: (blocks, unwritten).
        setup: &'static [(u32, bool)],
        /// `i_size` covers the pieces (so zeroout is allowed).
        eof: bool,
        /// (lblk, len, flags) of the map_blocks() call.
        op: (u32, u32, MapFlags),
        /// (len, flags) it returns.
        ret: (u32, u32),
        /// Leaf extents afterwards, as (lblk, len, pblk offset, unwritten).
        want: &'static [Ext],
        /// Blocks zeroed on disk, as [from, to).
        zeroed: &'static [(u32, u32)],
    }

    const W: MapFlags = MapFlags::CREATE;
    const ROWS: &[Row] = &[
        Row {
            name: "write at the start",
            setup: &[(100, true)],
            eof: true,
            op: (0, 1, W),
            ret: (1, NEW),
            want: &[(0, 1, 0, false), (1, 99, 1, true)],
            zeroed: &[],
        },
        Row {
            name: "write in the middle",
            setup: &[(100, true)],
            eof: true,
            op: (50, 1, W),
            ret: (1, NEW),
            want: &[(0, 50, 0, true), (50, 1, 50, false), (51, 49, 51, true)],
            zeroed: &[],
        },
        Row {
            name: "write at the end",
            setup: &[(100, true)],
            eof: true,
            op: (99, 1, W),
            ret: (1, NEW),
            want: &[(0, 99, 0, true), (99, 1, 99, false)],
            zeroed: &[],
        },
        Row {
            name: "head zeroed (case 2)",
            setup: &[(100, true)],
            eof: true,
            op: (10, 4, W),
            ret: (4, NEW),
            want: &[(0, 14, 0, false), (14, 86, 14, true)],
            zeroed: &[(0, 10)],
        },
        Row {
            name: "tail zeroed (case 3)",
            setup: &[(100, true)],
            eof: true,
            op: (80, 1, W),
            ret: (1, NEW),
            want: &[(0, 80, 0, true), (80, 20, 80, false)],
            zeroed: &[(81, 100)],
        },
        Row {
            name: "whole small extent zeroed (case 5)",
            setup: &[(20, true)],
            eof: true,
            op: (10, 1, W),
            ret: (1, NEW),
            want: &[(0, 20, 0, false)],
            zeroed: &[(0, 10), (11, 20)],
        },
        Row {
            name: "no zeroout past EOF",
            setup: &[(20, true)],
            eof: false,
            op: (10, 1, W),
            ret: (1, NEW),
            want: &[(0, 10, 0, true), (10, 1, 10, false), (11, 9, 11, true)],
            zeroed: &[],
        },
        Row {
            name: "whole extent written",
            setup: &[(100, true)],
            eof: true,
            op: (0, 100, W),
            ret: (100, NEW),
            want: &[(0, 100, 0, false)],
            zeroed: &[],
        },
        Row {
            name: "fast path to the left",
            setup: &[(10, false), (20, true)],
            eof: true,
            op: (10, 2, W),
            ret: (2, NEW),
            want: &[(0, 12, 0, false), (12, 18, 12, true)],
            zeroed: &[],
        },
        Row {
            name: "fast path to the right",
            setup: &[(20, true), (10, false)],
            eof: true,
            op: (18, 2, W),
            ret: (2, NEW),
            want: &[(0, 18, 0, true), (18, 12, 18, false)],
            zeroed: &[],
        },
        Row {
            name: "lookup",
            setup: &[(100, true)],
            eof: true,
            op: (30, 200, MapFlags::LOOKUP),
            ret: (70, EXT4_MAP_UNWRITTEN),
            want: &[(0, 100, 0, true)],
            zeroed: &[],
        },
        Row {
            name: "end-io conversion",
            setup: &[(100, true)],
            eof: true,
            op: (40, 10, MapFlags::CONVERT),
            ret: (10, EXT4_MAP_MAPPED),
            want: &[(0, 40, 0, true), (40, 10, 40, false), (50, 50, 50, true)],
            zeroed: &[],
        },
        Row {
            name: "pre-io split",
            setup: &[(100, true)],
            eof: true,
            op: (
                40,
                10,
                MapFlags(GET_BLOCKS_PRE_IO.0 | MapFlags::CREATE_UNWRIT_EXT.0),
            ),
            ret: (10, NEW | EXT4_MAP_UNWRITTEN),
            want: &[(0, 40, 0, true), (40, 10, 40, true), (50, 50, 50, true)],
            zeroed: &[],
        },
    ];

    /// Lay out a row's pieces from logical `base`, fill them with 0xFF on disk; returns the
    /// physical start.
    fn lay_out(t: &mut T, base: u32, row: &Row) -> u64 {
        let mut at = base;
        let mut start = None;
        for &(n, unwritten) in row.setup {
            let flags = if unwritten {
                MapFlags::CREATE_UNWRIT_EXT
            } else {
                MapFlags::CREATE
            };
            let m = t.map(at, n, flags);
            let p = *start.get_or_insert(m.pblk.0);
            assert_eq!(
                (m.pblk.0, m.len),
                (p + u64::from(at - base), n),
                "{}: layout",
                row.name
            );
            at += n;
        }
        let p = start.unwrap();
        for i in 0..u64::from(at - base) {
            t.fs.dev.write(Pblk(p + i), &[0xFF; 1024]).unwrap();
        }
        let end = if row.eof { at } else { base };
        t.fs.inode_mut(t.ino).raw.i_size = u64::from(end) * 1024;
        p
    }

    #[test]
    fn unwritten_extent_conversions() {
        let Some(mut t) = setup("ext-convert") else {
            return;
        };
        for (k, row) in ROWS.iter().enumerate() {
            let base = 200 * u32::try_from(k).unwrap();
            let p = lay_out(&mut t, base, row);
            let (l, n, flags) = row.op;
            let m = t.map(base + l, n, flags);
            assert_eq!((m.len, m.flags), row.ret, "{}: result", row.name);
            let want_pblk = if m.flags & EXT4_MAP_MAPPED != 0 || flags == MapFlags::LOOKUP {
                p + u64::from(l)
            } else {
                0
            };
            assert_eq!(m.pblk.0, want_pblk, "{}: pblk", row.name);
            let got: Vec<Ext> = t
                .extents()
                .into_iter()
                .filter(|e| e.0 >= base && e.0 < base + 200)
                .map(|(lb, len, pb, u)| (lb - base, len, pb - p, u))
                .collect();
            assert_eq!(got, row.want, "{}: extents", row.name);
            let total: u32 = row.setup.iter().map(|s| s.0).sum();
            for i in 0..total {
                let zero = row.zeroed.iter().any(|&(a, b)| i >= a && i < b);
                let blk = t.fs.dev.read_block(Pblk(p + u64::from(i))).unwrap();
                let want = if zero { 0 } else { 0xFF };
                assert!(
                    blk.iter().all(|&x| x == want),
                    "{}: block {i} zeroed={zero}",
                    row.name
                );
            }
        }
        let map = t.walk();
        assert_eq!(t.i_blocks(), map.data_blocks() + map.meta.len() as u64);
    }

    #[test]
    fn no_space_for_the_split_zeroes_out_and_writes_the_extent_whole() {
        let Some(mut t) = setup("ext-enospc") else {
            return;
        };
        let row = &ROWS[1];
        let p = lay_out(&mut t, 0, row);
        for l in [200, 300, 400] {
            t.map(l, 1, MapFlags::CREATE);
        }
        assert_eq!((t.depth(), t.extents().len()), (0, 4), "the root is full");
        let mut h = t.h();
        while t.fs.new_blocks(&mut h, Pblk(0), 1 << 15).is_ok() {}
        assert_eq!(t.fs.sb.s_free_blocks_count, 0);
        // Splitting off [51, 100) needs a tree block: ENOSPC, so that part is zeroed and the
        // extent marked written whole (EXT4_EXT_DATA_VALID1). The split at 50 then merges
        // straight back. As in the kernel modelled, the old contents of [0, 50) become
        // readable.
        let m = t.map(50, 1, MapFlags::CREATE);
        assert_eq!((m.pblk.0, m.len, m.flags), (p + 50, 1, NEW));
        assert_eq!(t.extents()[0], (0, 100, p, false));
        for i in 0..100u64 {
            let blk = t.fs.dev.read_block(Pblk(p + i)).unwrap();
            assert_eq!(blk[0], if i >= 51 { 0 } else { 0xFF }, "block {i}");
        }
    }
}
