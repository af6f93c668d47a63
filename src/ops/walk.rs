//! The two halves of fs/ext4/migrate.c that touch the original's indirect map: the walk that
//! turns it into extents of the temporary inode (`struct migrate_struct`,
//! `update_extent_range()`, `update_ind/dind/tind_extent_range()`, `finish_range()`), and the
//! frees after the swap (`free_ind_block()`, `free_dind_blocks()`, `free_tind_blocks()`).
//!
//! The walk runs WITHOUT the original's `i_data_sem`, as in the kernel: every pointer is read
//! from the live in-core inode or the cached indirect block at the moment the walk reaches it,
//! so an allocation racing the walk is seen if it lands ahead of the walk and missed if it
//! lands behind (the race the migrate marker exists for). Yield points: each `finish_range`
//! (an explicit one, a restart point, then the temporary inode's `i_data_sem`), and each
//! block freed (a restart point, then one after the free).
//!
//! Restart points: where migrate.c calls `ext4_journal_ensure_credits()` /
//! `ext4_datasem_ensure_credits()`, the kernel restarts the handle once a commit has locked the
//! transaction (and the handle needs credits). The model stops and restarts the handle there
//! every time ([`restart_point`]): a commit another thread is waiting for lands between two
//! extents or two frees, so a migration spans several transactions as it does in the kernel.
//!
//! Runs are closed at 32768 blocks (`EXT_INIT_MAX_LEN`), the longest initialized extent.
//! The kernel does not close them: its `finish_range()` stores `last − first + 1` in the
//! 16-bit `ee_len` unchecked (seeded bug S15, on in `mainline`). A longer run becomes an
//! unwritten extent of `len − 32768` blocks (or, past 65535, wraps): the file reads zeros
//! there and the rest of the run is leaked. kernel.md took this for latent, on the belief that
//! indirect blocks sit between every `bs/4` data blocks; today's kernel allocates them apart,
//! and with `flex_bg` a sequentially written indirect file has runs of tens of thousands of
//! blocks (`tests/integration/migrate_long.rs`).

use crate::dev::Zone;
use crate::error::{CorruptKind, Result};
use crate::format::extent::{Extent, EXT_INIT_MAX_LEN};
use crate::format::indirect::{self as fi, EXT4_DIND_BLOCK, EXT4_IND_BLOCK, EXT4_TIND_BLOCK};
use crate::fs::map::indirect::truncate::EXT4_RESERVE_TRANS_BLOCKS;
use crate::fs::Fs;
use crate::ops::locks::{handle, i_data_sem, restart_point, JHandle};
use crate::sched::{Cx, Mode};
use crate::units::{Ino, Lblk, Pblk};

/// `struct migrate_struct`: the run being accumulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateStruct {
    /// First logical block of the run.
    pub first_block: u32,
    /// Last logical block of the run.
    pub last_block: u32,
    /// The logical block the walk is at.
    pub curr_block: u32,
    /// First physical block of the run; 0 = no run open.
    pub first_pblock: u64,
    /// Last physical block of the run.
    pub last_pblock: u64,
}

/// What the walk works on.
pub struct Walk<'a> {
    /// The scheduler handle.
    pub cx: &'a Cx<Fs>,
    /// The original (indirect-mapped) inode.
    pub ino: Ino,
    /// The temporary inode that receives the extents.
    pub tmp: Ino,
    /// The range accumulator.
    pub lb: MigrateStruct,
    /// T2: the marker is still to be set, after the first extent went in.
    pub marker_pending: bool,
    /// S5: the walk runs with the original's `i_data_sem` held for write.
    pub holds_data_sem: bool,
    /// S15: runs are not closed at `EXT_INIT_MAX_LEN`, and `finish_range()` stores their
    /// length in the 16-bit `ee_len` as it comes.
    pub uncapped: bool,
    /// H2, the walk's handle (`None` once a restart failed to start a new one).
    pub jh: Option<JHandle>,
}

impl Walk<'_> {
    /// `max_entries`: pointers per indirect block.
    fn max_entries(&self) -> u32 {
        self.cx.with(|fs| fi::ptrs_per_block(fs.block_size()))
    }

    /// `i_data[i]` of the original, read live.
    fn i_data(&self, i: usize) -> u32 {
        self.cx.with(|fs| fs.inode(self.ino).raw.i_block[i])
    }

    /// Entry `i` of indirect block `blk`, read live through the buffer cache (`bh->b_data`).
    fn entry(&self, blk: u64, i: usize) -> Result<u32> {
        self.cx
            .with(|fs| Ok(fi::get_ptr(fs.bread(Pblk(blk), Zone::TreeMeta)?, i)))
    }

    /// The walk of ext4_ext_migrate(): direct blocks, IND, DIND, TIND, then the last
    /// `finish_range()`.
    pub async fn run(&mut self) -> Result<()> {
        let max = self.max_entries();
        for i in 0..fi::EXT4_NDIR_BLOCKS {
            match self.i_data(i) {
                0 => self.lb.curr_block = self.lb.curr_block.wrapping_add(1),
                p => self.update_extent_range(u64::from(p)).await?,
            }
        }
        match self.i_data(EXT4_IND_BLOCK) {
            0 => self.lb.curr_block = self.lb.curr_block.wrapping_add(max),
            p => self.update_ind_extent_range(u64::from(p)).await?,
        }
        match self.i_data(EXT4_DIND_BLOCK) {
            0 => self.lb.curr_block = self.lb.curr_block.wrapping_add(max * max),
            p => self.update_dind_extent_range(u64::from(p)).await?,
        }
        if let p @ 1.. = self.i_data(EXT4_TIND_BLOCK) {
            self.update_tind_extent_range(u64::from(p)).await?;
        }
        self.finish_range().await
    }

    /// Model of update_extent_range(): extend the open run by `pblock` at `curr_block` if it
    /// is contiguous both ways, else close it and open a new one.
    pub async fn update_extent_range(&mut self, pblock: u64) -> Result<()> {
        let lb = &mut self.lb;
        let room = self.uncapped || lb.last_block - lb.first_block + 1 < EXT_INIT_MAX_LEN;
        if lb.first_pblock != 0
            && lb.last_pblock + 1 == pblock
            && lb.last_block.wrapping_add(1) == lb.curr_block
            && room
        {
            lb.last_pblock = pblock;
            lb.last_block = lb.curr_block;
            lb.curr_block = lb.curr_block.wrapping_add(1);
            return Ok(());
        }
        let r = self.finish_range().await;
        let lb = &mut self.lb;
        lb.first_pblock = pblock;
        lb.last_pblock = pblock;
        lb.first_block = lb.curr_block;
        lb.last_block = lb.curr_block;
        lb.curr_block = lb.curr_block.wrapping_add(1);
        r
    }

    /// Model of update_ind_extent_range(): every pointer of the IND block at `pblock`.
    pub async fn update_ind_extent_range(&mut self, pblock: u64) -> Result<()> {
        for i in 0..self.max_entries() as usize {
            match self.entry(pblock, i)? {
                0 => self.lb.curr_block = self.lb.curr_block.wrapping_add(1),
                p => self.update_extent_range(u64::from(p)).await?,
            }
        }
        Ok(())
    }

    /// Model of update_dind_extent_range(): every IND block under the DIND block at `pblock`.
    pub async fn update_dind_extent_range(&mut self, pblock: u64) -> Result<()> {
        let max = self.max_entries();
        for i in 0..max as usize {
            match self.entry(pblock, i)? {
                0 => self.lb.curr_block = self.lb.curr_block.wrapping_add(max),
                p => self.update_ind_extent_range(u64::from(p)).await?,
            }
        }
        Ok(())
    }

    /// Model of update_tind_extent_range(): every DIND block under the TIND block at `pblock`.
    pub async fn update_tind_extent_range(&mut self, pblock: u64) -> Result<()> {
        let max = self.max_entries();
        for i in 0..max as usize {
            match self.entry(pblock, i)? {
                0 => self.lb.curr_block = self.lb.curr_block.wrapping_add(max * max),
                p => self.update_dind_extent_range(u64::from(p)).await?,
            }
        }
        Ok(())
    }

    /// Model of finish_range(): insert the open run as an extent of the temporary inode,
    /// under the temporary inode's `i_data_sem` ("for convenience"); the insert computes its
    /// credits and calls `journal_ensure_credits` (which may restart the handle: a commit).
    /// T2 sets the marker here, after the first extent went in.
    pub async fn finish_range(&mut self) -> Result<()> {
        if self.lb.first_pblock == 0 {
            return Ok(());
        }
        let cx = self.cx;
        cx.yield_point("finish_range").await;
        let lb = self.lb;
        let len = lb.last_block - lb.first_block + 1;
        // ext4_datasem_ensure_credits() restarts with the temporary inode's i_data_sem
        // dropped; the model's restart point sits before it is taken.
        if let Err(e) = restart_point(cx, &mut self.jh, 1).await {
            self.lb.first_pblock = 0;
            return Err(e);
        }
        let h = handle(&mut self.jh)?;
        let (tmp, l, p) = (self.tmp, Lblk(lb.first_block), Pblk(lb.first_pblock));
        let g = cx.lock(i_data_sem(tmp), Mode::Write).await;
        let r = match raw_ee_len(len) {
            Some((len, unwritten)) => {
                cx.with(|fs| fs.ext_insert_extent(h, tmp, l, p, len, unwritten))
            }
            None => Err(CorruptKind::InodeField {
                ino: tmp,
                field: "new extent's ee_len is 0 (ext4_ext_get_actual_len(newext) == 0)",
            }
            .into()),
        };
        cx.unlock(g).await;
        self.lb.first_pblock = 0;
        if self.marker_pending {
            self.marker_pending = false;
            crate::ops::migrate::set_marker(cx, self.ino, self.holds_data_sem).await;
        }
        r
    }
}

/// What `cpu_to_le16(len)` makes of a run of `len` blocks, read back as the kernel reads it
/// ([`Extent::len`], [`Extent::is_unwritten`]), as (length, unwritten): up to
/// `EXT_INIT_MAX_LEN` an initialized extent; above it, the high bit reads as "unwritten" and
/// the length wraps at 65536 (S15; a capped run never gets here). `None`: `ee_len` is 0,
/// which ext4_ext_insert_extent() refuses as corrupt.
fn raw_ee_len(len: u32) -> Option<(u32, bool)> {
    let raw = Extent {
        ee_block: 0,
        ee_len: len as u16, // truncation intended: cpu_to_le16()
        ee_start: 0,
    };
    (!raw.is_empty()).then(|| (raw.len(), raw.is_unwritten()))
}

/// Model of free_ind_block(): free the original's IND, DIND (children first) and TIND trees
/// whose roots `i_data[12..14]` the swap saved. Every block freed is journaled as a metadata
/// free (revoke + forget), taken off `i_blocks` with the inode marked dirty
/// (`dquot_free_block()`), after `journal_ensure_credits(EXT4_RESERVE_TRANS_BLOCKS)`.
pub async fn free_ind_block(
    cx: &Cx<Fs>,
    jh: &mut Option<JHandle>,
    ino: Ino,
    saved: [u32; 3],
) -> Result<()> {
    if saved[0] != 0 {
        free_one(cx, jh, ino, saved[0]).await?;
    }
    if saved[1] != 0 {
        free_dind_blocks(cx, jh, ino, saved[1]).await?;
    }
    if saved[2] != 0 {
        free_tind_blocks(cx, jh, ino, saved[2]).await?;
    }
    Ok(())
}

/// Model of free_dind_blocks(): the IND blocks under the DIND block `blk`, then `blk`.
async fn free_dind_blocks(cx: &Cx<Fs>, jh: &mut Option<JHandle>, ino: Ino, blk: u32) -> Result<()> {
    for child in children(cx, blk)? {
        free_one(cx, jh, ino, child).await?;
    }
    free_one(cx, jh, ino, blk).await
}

/// Model of free_tind_blocks(): each DIND subtree under the TIND block `blk`, then `blk`.
async fn free_tind_blocks(cx: &Cx<Fs>, jh: &mut Option<JHandle>, ino: Ino, blk: u32) -> Result<()> {
    for child in children(cx, blk)? {
        free_dind_blocks(cx, jh, ino, child).await?;
    }
    free_one(cx, jh, ino, blk).await
}

/// The non-zero pointers of indirect block `blk` (`ext4_sb_bread()`).
fn children(cx: &Cx<Fs>, blk: u32) -> Result<Vec<u32>> {
    cx.with(|fs| {
        let buf = fs.bread(Pblk(u64::from(blk)), Zone::TreeMeta)?;
        Ok(fi::ptrs(buf).filter(|&p| p != 0).collect())
    })
}

/// One `ext4_free_blocks(…, METADATA | FORGET)` of migrate.c, with its credits check; a yield
/// point after it.
async fn free_one(cx: &Cx<Fs>, jh: &mut Option<JHandle>, ino: Ino, blk: u32) -> Result<()> {
    restart_point(cx, jh, EXT4_RESERVE_TRANS_BLOCKS).await?;
    let h = handle(jh)?;
    cx.with(|fs| {
        fs.journal_ensure_credits(h, EXT4_RESERVE_TRANS_BLOCKS)?;
        fs.free_blocks(h, Pblk(u64::from(blk)), 1, true)?;
        fs.inode_add_blocks(ino, -1)?;
        fs.mark_inode_dirty(h, ino)
    })?;
    cx.yield_point("free_ind_block").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::raw_ee_len;

    #[test]
    fn a_run_length_reads_back_as_cpu_to_le16_makes_it() {
        assert_eq!(raw_ee_len(1), Some((1, false)));
        assert_eq!(raw_ee_len(32768), Some((32768, false)));
        // S15: one block more is an unwritten extent of one block.
        assert_eq!(raw_ee_len(32769), Some((1, true)));
        assert_eq!(raw_ee_len(36864), Some((4096, true)));
        assert_eq!(raw_ee_len(65535), Some((32767, true)));
        assert_eq!(raw_ee_len(65536), None);
        assert_eq!(raw_ee_len(65537), Some((1, false)));
    }
}
