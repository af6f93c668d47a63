//! Block allocation: models of fs/ext4/balloc.c and the parts of mballoc.c the mapping code
//! needs (`ext4_mb_new_blocks()` reduced to goal-directed first fit, `ext4_free_blocks()`).
//!
//! Allocation policy (documented deviation from mballoc): starting at the goal block, take the
//! first free block at or after it in the goal's group, extend the run while the next blocks are
//! free (up to the requested length), and move on to the following groups (wrapping) when the
//! goal's group is full. The kernel's buddy allocator and preallocation are not modelled; the
//! goal rules of the callers (`ext4_find_goal()`, `ext4_ext_find_goal()`) are.
//!
//! One visible consequence: an indirect-mapped file's indirect blocks sit next to its data
//! here (each branch's IND block, then its data, from one goal), while the kernel serves the
//! data from the inode's preallocation and puts the IND blocks apart (6.18, a 600 KB file on
//! a 16 MiB `e4fuzz mkfs --no-extent` image: IND blocks at 1559–1562, data at 4097–4682). So
//! a kernel-written indirect file has far longer physical runs than ours, which is how S15
//! (a run over 32768 blocks) stayed out of the engine's reach (`ops/walk.rs`).

use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::bitmap;
use crate::format::group_desc::{self, EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT};
use crate::fs::{Fs, Handle};
use crate::units::{Group, Ino, Pblk};

impl Fs {
    /// Model of ext4_group_desc_csum_set() + dirtying the descriptor block: write group `g`'s
    /// in-memory descriptor into the descriptor table under the handle.
    pub fn write_group_desc(&mut self, h: &mut Handle, g: Group) -> Result<()> {
        let (blk, off) = self.group_desc_location(g);
        let ds = self.sb.desc_size();
        self.get_write_access(h, blk, Zone::GroupDesc)?;
        let mut raw = vec![0u8; ds];
        raw.copy_from_slice(&self.bread(blk, Zone::GroupDesc)?[off..off + ds]);
        self.gds[g.0 as usize].write(&mut raw, ds);
        let csum = group_desc::group_desc_csum(&self.sb, g.0, &raw);
        self.gds[g.0 as usize].bg_checksum = csum;
        self.gds[g.0 as usize].write(&mut raw, ds);
        self.buf_mut(blk)[off..off + ds].copy_from_slice(&raw);
        self.dirty_metadata(h, blk)
    }

    /// Model of ext4_read_block_bitmap(): the group's block bitmap, initialised first if the
    /// group is still `BLOCK_UNINIT` (ext4_init_block_bitmap()).
    pub(crate) fn read_block_bitmap(&mut self, g: Group) -> Result<Pblk> {
        let blk = Pblk(self.gds[g.0 as usize].bg_block_bitmap);
        if self.gds[g.0 as usize].bg_flags & EXT4_BG_BLOCK_UNINIT != 0 {
            self.cache_built_block(blk, Zone::Bitmap, |fs| fs.init_block_bitmap(g));
        } else {
            self.bread(blk, Zone::Bitmap)?;
        }
        Ok(blk)
    }

    /// Model of ext4_init_block_bitmap(): the bitmap of a group that was never written, with
    /// the blocks of the group's own metadata (and, with flex_bg, other groups' metadata that
    /// lives here) marked in use.
    pub(crate) fn init_block_bitmap(&self, g: Group) -> Vec<u8> {
        let bs = self.block_size() as usize;
        let mut buf = vec![0u8; bs];
        let start = self.sb.group_first_block(g.0);
        let nblocks = u64::from(self.sb.blocks_in_group(g.0));
        let mut mark = |b: u64| {
            if b >= start && b < start + nblocks {
                bitmap::set_bit(&mut buf, (b - start) as u32);
            }
        };
        if self.sb.bg_has_super(g.0) {
            let meta =
                1 + u64::from(self.sb.gdt_blocks()) + u64::from(self.sb.s_reserved_gdt_blocks);
            (0..meta).for_each(|i| mark(start + i));
        }
        let itb = u64::from(self.sb.itable_blocks());
        for gd in &self.gds {
            mark(gd.bg_block_bitmap);
            mark(gd.bg_inode_bitmap);
            (0..itb).for_each(|i| mark(gd.bg_inode_table + i));
        }
        bitmap::mark_bitmap_end(nblocks as u32, (bs * 8) as u32, &mut buf);
        buf
    }

    /// Dirty group `g`'s block bitmap after an edit: recompute its checksum into the
    /// descriptor, clear `BLOCK_UNINIT`, write both under the handle.
    fn dirty_block_bitmap(&mut self, h: &mut Handle, g: Group, blk: Pblk) -> Result<()> {
        let bits = self.bufs.map[&blk.0].data.clone();
        let gd = &mut self.gds[g.0 as usize];
        gd.bg_flags &= !EXT4_BG_BLOCK_UNINIT;
        bitmap::block_bitmap_csum_set(&self.sb, gd, &bits);
        self.dirty_metadata(h, blk)?;
        self.write_group_desc(h, g)
    }

    /// Whether block `b` is free in the bitmap.
    pub fn block_is_free(&mut self, b: Pblk) -> Result<bool> {
        let g = Group(self.sb.group_of_block(b.0));
        let blk = self.read_block_bitmap(g)?;
        let bit = (b.0 - self.sb.group_first_block(g.0)) as u32;
        Ok(!bitmap::test_bit(&self.bufs.map[&blk.0].data, bit))
    }

    /// Model of ext4_mb_new_blocks(): allocate up to `len` contiguous blocks, searching from
    /// `goal`. Returns the first block and the length obtained (≥ 1). `Error::NoSpace` when
    /// the filesystem is full.
    pub fn new_blocks(&mut self, h: &mut Handle, goal: Pblk, len: u32) -> Result<(Pblk, u32)> {
        assert!(len > 0);
        let request = self.alloc_requests;
        self.alloc_requests += 1;
        if self.sb.s_free_blocks_count == 0 || self.enospc_at == Some(request) {
            return Err(Error::NoSpace);
        }
        let first = u64::from(self.sb.s_first_data_block);
        let goal = if goal.0 < first || goal.0 >= self.sb.s_blocks_count {
            first
        } else {
            goal.0
        };
        let ngroups = self.sb.groups_count();
        let g0 = self.sb.group_of_block(goal);
        for i in 0..=ngroups {
            let g = Group((g0 + i) % ngroups);
            if self.gds[g.0 as usize].bg_free_blocks_count == 0 {
                continue;
            }
            let gstart = self.sb.group_first_block(g.0);
            let from = if i == 0 { (goal - gstart) as u32 } else { 0 };
            if let Some((bit, n)) = self.find_free_run(g, from, len)? {
                let pblk = Pblk(gstart + u64::from(bit));
                self.mark_blocks(h, g, bit, n, true)?;
                return Ok((pblk, n));
            }
        }
        Err(Error::NoSpace)
    }

    /// First free run in group `g` at or after bit `from`, up to `len` blocks. Blocks freed
    /// by the running transaction count as used: they may not be reused before it commits
    /// (ext4_mb_free_metadata()).
    fn find_free_run(&mut self, g: Group, from: u32, len: u32) -> Result<Option<(u32, u32)>> {
        let blk = self.read_block_bitmap(g)?;
        let nbits = self.sb.blocks_in_group(g.0);
        let gstart = self.sb.group_first_block(g.0);
        let journal = self.journal.as_ref();
        let pending =
            |bit: u32| journal.is_some_and(|j| j.is_pending_free(gstart + u64::from(bit)));
        let bits = &self.bufs.map[&blk.0].data;
        let mut from = from;
        let start = loop {
            let Some(start) = bitmap::find_next_zero_bit(bits, from, nbits) else {
                return Ok(None);
            };
            if !pending(start) {
                break start;
            }
            from = start + 1;
        };
        let mut n = 1;
        while n < len
            && start + n < nbits
            && !bitmap::test_bit(bits, start + n)
            && !pending(start + n)
        {
            n += 1;
        }
        Ok(Some((start, n)))
    }

    /// Set (allocate) or clear (free) `n` bits of group `g` from `bit`, keeping the descriptor
    /// and superblock counts exact.
    fn mark_blocks(
        &mut self,
        h: &mut Handle,
        g: Group,
        bit: u32,
        n: u32,
        used: bool,
    ) -> Result<()> {
        let blk = self.read_block_bitmap(g)?;
        if !used {
            // A corrupt image can map one block twice: freeing it the second time is the
            // kernel's "bit already cleared" ext4_error(), an input problem, not our bug.
            let bits = &self.bufs.map[&blk.0].data;
            if let Some(b) = (bit..bit + n).find(|&b| !bitmap::test_bit(bits, b)) {
                let pblk = Pblk(self.sb.group_first_block(g.0) + u64::from(b));
                return Err(CorruptKind::FreeingFreeBlock(pblk).into());
            }
        }
        self.get_write_access(h, blk, Zone::Bitmap)?;
        {
            let bits = self.buf_mut(blk);
            for b in bit..bit + n {
                assert_eq!(
                    bitmap::test_bit(bits, b),
                    !used,
                    "allocating block bit {b} of group {g} that is in use"
                );
                if used {
                    bitmap::set_bit(bits, b);
                } else {
                    bitmap::clear_bit(bits, b);
                }
            }
        }
        let gd = &mut self.gds[g.0 as usize];
        if used {
            gd.bg_free_blocks_count -= n;
            self.sb.s_free_blocks_count -= u64::from(n);
        } else {
            gd.bg_free_blocks_count += n;
            self.sb.s_free_blocks_count += u64::from(n);
        }
        self.dirty_block_bitmap(h, g, blk)
    }

    /// Model of ext4_free_blocks(): return `count` blocks from `start` to the free pool.
    /// Metadata blocks are forgotten from the buffer cache (`EXT4_FREE_BLOCKS_FORGET`).
    pub fn free_blocks(
        &mut self,
        h: &mut Handle,
        start: Pblk,
        count: u32,
        metadata: bool,
    ) -> Result<()> {
        let mut b = start.0;
        let end = start.0 + u64::from(count);
        self.check_freeable(start, end)?;
        while b < end {
            let g = Group(self.sb.group_of_block(b));
            let gstart = self.sb.group_first_block(g.0);
            let gend = gstart + u64::from(self.sb.blocks_in_group(g.0));
            let n = (end.min(gend) - b) as u32;
            if metadata {
                for m in b..b + u64::from(n) {
                    self.forget(h, Pblk(m))?;
                }
            }
            self.mark_blocks(h, g, (b - gstart) as u32, n, false)?;
            if let Some(j) = self.journal.as_mut() {
                j.running_mut().freed.extend(b..b + u64::from(n));
            }
            b += u64::from(n);
        }
        Ok(())
    }

    /// Model of ext4_inode_block_valid() for a range being freed: inside the filesystem and
    /// clear of the superblocks, descriptor tables, bitmaps and inode tables.
    fn check_freeable(&self, start: Pblk, end: u64) -> Result<()> {
        if start.0 < u64::from(self.sb.s_first_data_block)
            || end > self.sb.s_blocks_count
            || end <= start.0
        {
            return Err(CorruptKind::FreeingSystemBlock(start).into());
        }
        for (zs, zlen, zone) in self.dev.zone_map().ranges() {
            let meta = matches!(
                zone,
                Zone::Superblock | Zone::GroupDesc | Zone::Bitmap | Zone::InodeTable
            );
            if meta && zs.0 < end && start.0 < zs.0 + zlen {
                return Err(CorruptKind::FreeingSystemBlock(Pblk(start.0.max(zs.0))).into());
            }
        }
        Ok(())
    }

    /// The block group an inode's blocks should preferably come from: its own group
    /// (model of ext4_inode_to_goal_block() without flex_bg spreading).
    pub fn inode_goal_block(&self, ino: Ino) -> Pblk {
        let g = self.inode_group(ino);
        Pblk(self.sb.group_first_block(g.0))
    }

    /// Whether group `g`'s inode table and bitmap are uninitialised (`INODE_UNINIT`).
    pub(crate) fn inode_uninit(&self, g: Group) -> bool {
        self.gds[g.0 as usize].bg_flags & EXT4_BG_INODE_UNINIT != 0
    }
}

#[cfg(test)]
mod tests {
    use crate::error::{CorruptKind, Error};
    use crate::fs::mkfs::small_fs as fs;
    use crate::units::Pblk;

    #[test]
    fn double_free_is_corruption_not_a_panic() {
        let mut fs = fs();
        let mut h = fs.journal_start(8).unwrap();
        let (b, n) = fs.new_blocks(&mut h, Pblk(0), 1).unwrap();
        assert_eq!(n, 1);
        let free = fs.sb.s_free_blocks_count;
        fs.free_blocks(&mut h, b, 1, false).unwrap();
        assert_eq!(fs.sb.s_free_blocks_count, free + 1);
        assert_eq!(
            fs.free_blocks(&mut h, b, 1, false),
            Err(Error::Corrupt(CorruptKind::FreeingFreeBlock(b)))
        );
        assert_eq!(
            fs.sb.s_free_blocks_count,
            free + 1,
            "a refused free changes nothing"
        );
    }

    #[test]
    fn freeing_group_metadata_or_past_the_end_is_refused() {
        let mut fs = fs();
        let mut h = fs.journal_start(8).unwrap();
        let itable = Pblk(fs.gds[0].bg_inode_table);
        assert_eq!(
            fs.free_blocks(&mut h, itable, 1, true),
            Err(Error::Corrupt(CorruptKind::FreeingSystemBlock(itable)))
        );
        let end = Pblk(fs.sb.s_blocks_count);
        assert!(matches!(
            fs.free_blocks(&mut h, end, 1, false),
            Err(Error::Corrupt(_))
        ));
    }
}
