//! Model of the freeing half of fs/ext4/indirect.c: ext4_ind_truncate() and the helpers it
//! shares with punch hole — ext4_find_shared(), ext4_free_branches(), ext4_free_data(),
//! ext4_clear_blocks() and ext4_ind_truncate_ensure_credits().
//!
//! Truncating at logical block `L` splits the tree along the path to `L`
//! ([`Fs::find_shared`]): the blocks on that path stay (they still map data below `L`), except
//! for the highest one whose mapped part lies entirely at or after `L` — the *top* — which is
//! freed whole with everything under it. Then, bottom-up along the path, the pointers after the
//! path in each block are freed (subtrees whole), and finally the whole IND/DIND/TIND subtrees
//! that lie after the path's top-level slot.
//!
//! Every data run and every indirect block is freed through [`Fs::ind_free_blocks`] (so
//! `i_blocks` stays exact); indirect blocks are freed as metadata (forgotten, revoked by the
//! journal) *before* the pointer to them is cleared, and credits are ensured per batch.

use crate::dev::Zone;
use crate::error::{CorruptKind, Result};
use crate::format::indirect::{EXT4_DIND_BLOCK, EXT4_IND_BLOCK, EXT4_NDIR_BLOCKS, EXT4_TIND_BLOCK};
use crate::format::inode as fino;
use crate::format::superblock as sbf;
use crate::fs::map::indirect::{block_to_path, max_bitmap_blocks, Chain};
use crate::fs::{Fs, Handle};
use crate::profile::Bug;
use crate::units::{Ino, Lblk, Pblk};

/// `EXT4_RESERVE_TRANS_BLOCKS`: credits a truncate step must have left before it goes on.
pub const EXT4_RESERVE_TRANS_BLOCKS: u32 = 12;
/// `EXT4_MAX_TRANS_DATA`: the cap on data blocks in one truncate transaction.
pub const EXT4_MAX_TRANS_DATA: u32 = 64;

/// What ext4_find_shared() found: the chain to the cut point, the last link that must
/// survive (`partial`), and the detached top of the branch to free whole (0 for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shared {
    /// The chain (links above `partial` are released).
    pub chain: Chain,
    /// Index of the last link that survives; its `p` is the last pointer to keep.
    pub partial: usize,
    /// `*top`: block number of the root of the branch to free whole, or 0.
    pub top: u32,
}

/// What became of one branch in ext4_free_branches().
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Branch {
    /// Freed, bottom-up: the pointer to it is cleared next.
    Freed,
    /// Its block could not be read: skipped, the pointer stays.
    Unread,
    /// The pointer is outside the filesystem: the rest of the array is left alone.
    Invalid,
}

impl Fs {
    /// Model of EXT4_DATA_TRANS_BLOCKS(sb) without quotas: EXT4_SINGLEDATA_TRANS_BLOCKS (8,
    /// or 20 with the extent feature) + EXT4_XATTR_TRANS_BLOCKS (6) − 2.
    fn data_trans_blocks(&self) -> u32 {
        let single = if self.has_extents() { 20 } else { 8 };
        single + 6 - 2
    }

    /// Model of ext4_blocks_for_truncate(): the credits a truncate transaction asks for —
    /// the inode's block count (at least 2, at most [`EXT4_MAX_TRANS_DATA`]) plus one data
    /// transaction.
    pub fn blocks_for_truncate(&self, ino: Ino) -> u32 {
        let per = u64::from(self.block_size() / 512);
        let needed = (self.inode_blocks(ino) / per).clamp(2, u64::from(EXT4_MAX_TRANS_DATA));
        self.data_trans_blocks() + needed as u32
    }

    /// `s_bitmap_maxbytes` in blocks: the `max_block` of truncate and punch.
    pub fn ind_max_block(&self) -> u64 {
        let huge = self.sb.has_ro_compat(sbf::EXT4_FEATURE_RO_COMPAT_HUGE_FILE);
        max_bitmap_blocks(self.block_size(), huge)
    }

    /// Model of ext4_ind_trunc_restart_fn(): before the handle may restart, bring the tree to
    /// a consistent state — dirty the indirect block being edited and the inode.
    fn ind_trunc_restart_fn(&mut self, h: &mut Handle, ino: Ino, bh: Option<Pblk>) -> Result<()> {
        if let Some(bh) = bh {
            self.dirty_metadata(h, bh)?;
        }
        self.mark_inode_dirty(h, ino)
    }

    /// Model of ext4_ind_truncate_ensure_credits(): make sure [`EXT4_RESERVE_TRANS_BLOCKS`]
    /// credits remain, extending by [`Fs::blocks_for_truncate`]; a restarted handle gets write
    /// access to `bh` again. `revoke_creds` are the revoke records the step needs (the handle
    /// model has one pool of credits, so they are not counted separately).
    ///
    /// The handle model cannot tell in advance whether the journal will extend or restart, so
    /// on every shortfall the restart callback's work is done first; that is only extra
    /// writes when the journal merely extends.
    pub fn ind_truncate_ensure_credits(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        bh: Option<Pblk>,
        _revoke_creds: u32,
    ) -> Result<()> {
        if h.has_credits(EXT4_RESERVE_TRANS_BLOCKS) {
            return Ok(());
        }
        self.ind_trunc_restart_fn(h, ino, bh)?;
        let extend = self.blocks_for_truncate(ino);
        if self.journal_ensure_credits(h, extend)? {
            if let Some(bh) = bh {
                self.get_write_access(h, bh, Zone::TreeMeta)?;
            }
        }
        Ok(())
    }

    /// `all_zeroes(bh->b_data, p)`: pointers `0..p` of container `bh` are all zero.
    fn all_zeroes(&mut self, ino: Ino, bh: Option<Pblk>, p: usize) -> Result<bool> {
        for i in 0..p {
            if self.ind_ptr(ino, bh, i)? != 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Model of ext4_find_shared(): for a cut at the path `offsets` (`depth` long), find the
    /// indirect blocks that are only partly truncated and the top of the branch that goes
    /// whole. The chain is read to `k` = the deepest non-zero offset + 1 (below that the cut
    /// is at the start of a subtree). Walking up from the end of the chain, a block whose
    /// pointers before the cut are all zero goes with its subtree, so the top is the pointer
    /// to the highest such block. If the chain reached level `k` and the block there keeps
    /// something, its `p` is stepped back by one instead, so that "free after `p`" includes
    /// the subtree at the cut.
    ///
    /// The top is not detached here (the kernel's `#if 0`): the caller clears its pointer.
    ///
    /// The kernel ignores ext4_get_branch()'s error here (seeded bug U2, mainline): a chain
    /// cut short by a block that cannot be read (or fails its check) ends at the link pointing
    /// to that block, which is then treated as the top of a branch to free whole
    /// (`Fs::shared_branch`). If the next read of that block succeeds (a transient error),
    /// ext4_free_branches() frees every block under it, before the cut too, and nothing is
    /// recorded (tests/integration/kernel_eio.rs shows it on the kernel). Without U2 the
    /// error is returned and nothing is freed.
    pub fn find_shared(&mut self, ino: Ino, depth: usize, offsets: &[usize; 4]) -> Result<Shared> {
        let mut k = depth;
        while k > 1 && offsets[k - 1] == 0 {
            k -= 1;
        }
        let (mut chain, partial) = self.shared_branch(ino, k, offsets)?;
        let partial = partial.unwrap_or(k - 1);
        let at = chain[partial];
        if at.key == 0 && self.ind_ptr(ino, at.bh, at.p)? != 0 {
            // The branch grew meanwhile: it all survives.
            return Ok(Shared {
                chain,
                partial,
                top: 0,
            });
        }
        let mut p = partial;
        while p > 0 && self.all_zeroes(ino, chain[p].bh, chain[p].p)? {
            p -= 1;
        }
        let mut top = 0;
        if p == k - 1 && p > 0 {
            // offsets[k - 1] != 0 by the choice of k, so this stays in the block.
            chain[p].p -= 1;
        } else {
            top = self.ind_ptr(ino, chain[p].bh, chain[p].p)?;
        }
        Ok(Shared {
            chain,
            partial: p,
            top,
        })
    }

    /// ext4_get_branch() as ext4_find_shared() uses it: the chain down `depth` links,
    /// `partial` as in [`Fs::get_branch`]. With U2 (mainline) its error is ignored: a link whose
    /// block cannot be read, or fails its check, ends the chain (`partial` is that link, its
    /// key non-zero). Without U2 the error is returned.
    fn shared_branch(
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
            match self.chain_link(ino, chain[i - 1].key, offsets[i]) {
                Ok(link) => chain[i] = link,
                Err(_) if self.bugs.has(Bug::U2) => return Ok((chain, Some(i - 1))),
                Err(e) => return Err(e),
            }
        }
        let partial = (chain[depth - 1].key == 0).then_some(depth - 1);
        Ok((chain, partial))
    }

    /// Model of ext4_clear_blocks(): zero pointers `first..last` of `bh` (or of `i_data`) and
    /// free the run of `count` blocks from `block_to_free` they held. Directory and symlink
    /// blocks are metadata (forgotten and revoked).
    ///
    /// Returns true if the run is not inside the filesystem: the kernel reports it with
    /// EXT4_ERROR_INODE() and its caller stops freeing this array (ext4_clear_blocks()'s 1).
    /// ext4_free_blocks() returns nothing: its errors are recorded ([`Fs::ext4_error`]) and
    /// the pointers stay cleared.
    ///
    /// # Errors
    /// Those of [`Fs::ind_truncate_ensure_credits`] (the kernel's negative return).
    #[allow(clippy::too_many_arguments)]
    fn clear_blocks(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        bh: Option<Pblk>,
        block_to_free: u32,
        count: u32,
        first: usize,
        last: usize,
    ) -> Result<bool> {
        let raw = &self.inode(ino).raw;
        let kind = raw.i_mode & fino::S_IFMT;
        let metadata = kind == fino::S_IFDIR
            || kind == fino::S_IFLNK
            || raw.i_flags & (fino::EXT4_EA_INODE_FL | fino::EXT4_JOURNAL_DATA_FL) != 0;
        let start = Pblk(u64::from(block_to_free));
        if !self.ind_block_valid(start.0, u64::from(count)) {
            let _ =
                self.ext4_error(CorruptKind::IndirectBlockOutOfRange { ino, pblk: start }.into());
            return Ok(true);
        }
        self.ind_truncate_ensure_credits(h, ino, bh, count)?;
        for p in first..last {
            self.ind_set(ino, bh, p, 0)?;
        }
        self.ind_free_blocks_void(h, ino, start, count, metadata);
        Ok(false)
    }

    /// ext4_free_blocks() as the truncate helpers call it: it returns nothing, so an error
    /// (a bitmap that cannot be read, a bit already clear) is recorded with
    /// [`Fs::ext4_error`] and the caller goes on; `i_blocks` is only charged on success.
    fn ind_free_blocks_void(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        start: Pblk,
        count: u32,
        metadata: bool,
    ) {
        if let Err(e) = self.ind_free_blocks(h, ino, start, count, metadata) {
            let _ = self.ext4_error(e);
        }
    }

    /// Model of ext4_free_data(): free the data blocks referenced by pointers `first..last` of
    /// `this_bh` (or of `i_data` when `None`), in runs of physically contiguous blocks, and
    /// clear the pointers.
    pub fn free_data(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        this_bh: Option<Pblk>,
        first: usize,
        last: usize,
    ) -> Result<()> {
        if let Some(bh) = this_bh {
            self.get_write_access(h, bh, Zone::TreeMeta)?;
        }
        // (block_to_free, count, block_to_free_p)
        let mut run: Option<(u32, u32, usize)> = None;
        for p in first..last {
            let nr = self.ind_ptr(ino, this_bh, p)?;
            if nr == 0 {
                continue;
            }
            run = match run {
                None => Some((nr, 1, p)),
                Some((b, c, bp)) if u64::from(nr) == u64::from(b) + u64::from(c) => {
                    Some((b, c + 1, bp))
                }
                Some((b, c, bp)) => {
                    if self.clear_blocks(h, ino, this_bh, b, c, bp, p)? {
                        run = None; // an invalid run: stop freeing this array
                        break;
                    }
                    Some((nr, 1, p))
                }
            };
        }
        if let Some((b, c, bp)) = run {
            self.clear_blocks(h, ino, this_bh, b, c, bp, last)?;
        }
        if let Some(bh) = this_bh {
            if !self.bufs.map.contains_key(&bh.0) {
                // "circular indirect block detected": reported, not returned.
                let _ =
                    self.ext4_error(CorruptKind::IndirectBlockCircular { ino, pblk: bh }.into());
                return Ok(());
            }
            self.dirty_metadata(h, bh)?;
        }
        Ok(())
    }

    /// Model of ext4_free_branches() on pointers `first..last` of indirect block `parent_bh`:
    /// free the branches of `depth` levels below them, last to first. At depth 0 the pointers
    /// are data blocks ([`Fs::free_data`]); above, each child block's own pointers are freed
    /// first, then the child itself, then its pointer in `parent_bh` is cleared.
    pub fn free_branches(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        parent_bh: Pblk,
        first: usize,
        last: usize,
        depth: usize,
    ) -> Result<()> {
        if depth == 0 {
            return self.free_data(h, ino, Some(parent_bh), first, last);
        }
        for p in (first..last).rev() {
            let nr = self.ind_ptr(ino, Some(parent_bh), p)?;
            if nr == 0 {
                continue;
            }
            match self.free_branch(h, ino, nr, depth)? {
                Branch::Invalid => break,
                Branch::Unread => continue,
                Branch::Freed => {}
            }
            self.get_write_access(h, parent_bh, Zone::TreeMeta)?;
            self.ind_set(ino, Some(parent_bh), p, 0)?;
            self.dirty_metadata(h, parent_bh)?;
        }
        Ok(())
    }

    /// ext4_free_branches() called on a detached top pointer (`&nr, &nr + 1` with no parent
    /// buffer): free the branch rooted at `nr`, `depth` ≥ 1 levels deep. The caller clears the
    /// pointer that held `nr`.
    pub fn free_branches_top(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        nr: u32,
        depth: usize,
    ) -> Result<()> {
        assert!(
            depth >= 1,
            "a top pointer always leads to an indirect block"
        );
        if nr != 0 {
            // Whatever became of the branch, the caller clears the pointer to it.
            self.free_branch(h, ino, nr, depth)?;
        }
        Ok(())
    }

    /// The loop body of ext4_free_branches() for one non-zero pointer `nr` to an indirect
    /// block with `depth` levels below it (counting the data level): free the block's
    /// branches bottom-up, ensure credits, then free the block itself as metadata.
    ///
    /// As in the kernel, a pointer outside the filesystem is reported (EXT4_ERROR_INODE())
    /// and ends the loop ([`Branch::Invalid`]); a block that cannot be read is reported
    /// ("Read failure") and skipped, neither freed nor unlinked ([`Branch::Unread`]).
    fn free_branch(&mut self, h: &mut Handle, ino: Ino, nr: u32, depth: usize) -> Result<Branch> {
        let blk = Pblk(u64::from(nr));
        if !self.ind_block_valid(blk.0, 1) {
            let _ = self.ext4_error(CorruptKind::IndirectBlockOutOfRange { ino, pblk: blk }.into());
            return Ok(Branch::Invalid);
        }
        if let Err(e) = self.bread(blk, Zone::TreeMeta) {
            let _ = self.ext4_error(e); // "Read failure"
            return Ok(Branch::Unread);
        }
        let apb = self.addr_per_block();
        self.free_branches(h, ino, blk, 0, apb, depth - 1)?;
        self.ind_truncate_ensure_credits(h, ino, None, 1)?;
        self.ind_free_blocks_void(h, ino, blk, 1, true);
        Ok(Branch::Freed)
    }

    /// "Kill the top of shared branch": free the branch whose root is `sh.top`, hanging from
    /// link `sh.partial` of a path `n` long, and clear the pointer to it — in the inode, or
    /// (through [`Fs::free_branches`]) in the indirect block.
    pub(crate) fn free_shared_top(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        sh: &Shared,
        n: usize,
    ) -> Result<()> {
        let at = sh.chain[sh.partial];
        let depth = n - 1 - sh.partial;
        match at.bh {
            None => {
                self.free_branches_top(h, ino, sh.top, depth)?;
                self.ind_set(ino, None, at.p, 0)
            }
            Some(bh) => self.free_branches(h, ino, bh, at.p, at.p + 1, depth),
        }
    }

    /// "Kill the remaining (whole) subtrees": the IND, DIND and TIND subtrees after top-level
    /// slot `offsets0`, while `++n < n2` (truncate passes `n2 = usize::MAX`).
    pub(crate) fn free_whole_subtrees(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        offsets0: usize,
        mut n: usize,
        n2: usize,
    ) -> Result<()> {
        let levels = [
            (EXT4_IND_BLOCK, 1),
            (EXT4_DIND_BLOCK, 2),
            (EXT4_TIND_BLOCK, 3),
        ];
        let from = match offsets0 {
            EXT4_IND_BLOCK => 1,
            EXT4_DIND_BLOCK => 2,
            EXT4_TIND_BLOCK => 3,
            _ => 0,
        };
        for &(slot, depth) in &levels[from..] {
            n += 1;
            if n >= n2 {
                break;
            }
            let nr = self.inode(ino).raw.i_block[slot];
            if nr != 0 {
                self.free_branches_top(h, ino, nr, depth)?;
                self.inode_mut(ino).raw.i_block[slot] = 0;
            }
        }
        Ok(())
    }

    /// Read into the buffer cache every indirect block of `ino` that maps a block at or after
    /// `from`: the blocks [`Fs::ind_truncate`] walks. Not in the kernel: the fixed engine's
    /// side of U2. Once ext4_find_shared() returns its read errors, ext4_truncate() can fail
    /// after ext4_setattr() has dropped the page cache past the new size; a block it left
    /// mapped then shows its bytes on disk, not the dropped page's, when the file grows over it
    /// again (stale data). So without U2 the truncate reads these blocks first, and an I/O
    /// error fails it before anything changes; its walk then reads only cached blocks.
    /// Pointers out of range and blocks that fail their check are left to the truncate.
    pub fn ind_truncate_probe(&mut self, ino: Ino, from: Lblk) -> Result<()> {
        let apb = self.addr_per_block() as u64;
        let from = u64::from(from.0);
        let (mut start, mut span) = (EXT4_NDIR_BLOCKS as u64, apb);
        for (slot, depth) in [
            (EXT4_IND_BLOCK, 1),
            (EXT4_DIND_BLOCK, 2),
            (EXT4_TIND_BLOCK, 3),
        ] {
            let key = self.inode(ino).raw.i_block[slot];
            if start + span > from && key != 0 {
                self.probe_subtree(ino, key, depth, (start, span), from)?;
            }
            start += span;
            span *= apb;
        }
        Ok(())
    }

    /// [`Fs::ind_truncate_probe`] of the `depth`-level subtree at `key` that maps the `span`
    /// blocks from `start`.
    fn probe_subtree(
        &mut self,
        ino: Ino,
        key: u32,
        depth: usize,
        (start, span): (u64, u64),
        from: u64,
    ) -> Result<()> {
        let Ok(blk) = self.ind_check_ptr(ino, key) else {
            return Ok(());
        };
        match self.ind_read(ino, blk) {
            Ok(()) => {}
            Err(e @ crate::Error::Io(_)) => return Err(e),
            Err(_) => return Ok(()),
        }
        if depth == 1 {
            return Ok(());
        }
        let apb = self.addr_per_block();
        let child = span / apb as u64;
        for k in 0..apb {
            let at = start + k as u64 * child;
            if at + child <= from {
                continue;
            }
            let ptr = self.ind_ptr(ino, Some(blk), k)?;
            if ptr != 0 {
                self.probe_subtree(ino, ptr, depth - 1, (at, child), from)?;
            }
        }
        Ok(())
    }

    /// Model of ext4_ind_truncate(): free every block of `ino` mapped at or after
    /// `last_block` (the first block past the new size), with the indirect blocks that
    /// become empty. `i_blocks` is updated; the caller sets `i_size` and marks the inode
    /// dirty.
    pub fn ind_truncate(&mut self, h: &mut Handle, ino: Ino, last_block: Lblk) -> Result<()> {
        let max_block = self.ind_max_block();
        if u64::from(last_block.0) >= max_block {
            // Nothing can be mapped at or past the limit.
            return Ok(());
        }
        let path = block_to_path(self.block_size(), last_block)?;
        let n = path.depth;
        if n == 1 {
            self.free_data(h, ino, None, path.offsets[0], EXT4_NDIR_BLOCKS)?;
        } else {
            let sh = self.find_shared(ino, n, &path.offsets)?;
            if sh.top != 0 {
                self.free_shared_top(h, ino, &sh, n)?;
            }
            let apb = self.addr_per_block();
            for partial in (1..=sh.partial).rev() {
                let at = sh.chain[partial];
                let bh = at.bh.expect("links below the inode live in blocks");
                self.free_branches(h, ino, bh, at.p + 1, apb, n - 1 - partial)?;
            }
        }
        self.free_whole_subtrees(h, ino, path.offsets[0], 0, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::map::indirect::testutil::{self as tu, Layout};

    #[test]
    fn max_bitmap_blocks_matches_the_kernel_formula() {
        // Block tree limit: 12 + 256 + 256² + 256³.
        assert_eq!(max_bitmap_blocks(1024, true), 16_843_020);
        assert_eq!(max_bitmap_blocks(1024, false), 16_843_020);
        assert_eq!(max_bitmap_blocks(4096, true), 1_074_791_436);
        // Without huge_file 2³² − 1 sectors = 536870911 4 KiB blocks, minus the mapping blocks
        // needed to address them: 1 IND, 1 + 1024 DIND, 1 + ⌈(536870911 − 12 − 1024 − 1024²)
        // / 1024⌉ + ⌈… / 1024²⌉ TIND.
        let rest: u64 = 536_870_911 - 12 - 1024 - 1024 * 1024;
        let meta = 1 + 1 + 1024 + 1 + rest.div_ceil(1024) + rest.div_ceil(1024 * 1024);
        assert_eq!(max_bitmap_blocks(4096, false), 536_870_911 - meta);
        assert_eq!(max_bitmap_blocks(4096, false), 536_346_110);
    }

    #[test]
    fn truncate_frees_exactly_the_tail_and_emptied_indirect_blocks() {
        let lblks: Vec<u32> = [
            0, 5, 11, 12, 20, 267, 268, 300, 524, 600, 65803, 65804, 70000,
        ]
        .into_iter()
        .collect();
        // (cut, blocks that remain)
        let cases: &[(u32, &[u32])] = &[
            (
                70001,
                &[
                    0, 5, 11, 12, 20, 267, 268, 300, 524, 600, 65803, 65804, 70000,
                ],
            ),
            (
                65805,
                &[0, 5, 11, 12, 20, 267, 268, 300, 524, 600, 65803, 65804],
            ),
            (65804, &[0, 5, 11, 12, 20, 267, 268, 300, 524, 600, 65803]),
            (601, &[0, 5, 11, 12, 20, 267, 268, 300, 524, 600]),
            (525, &[0, 5, 11, 12, 20, 267, 268, 300, 524]),
            (524, &[0, 5, 11, 12, 20, 267, 268, 300]),
            (269, &[0, 5, 11, 12, 20, 267, 268]),
            (268, &[0, 5, 11, 12, 20, 267]),
            (13, &[0, 5, 11, 12]),
            (12, &[0, 5, 11]),
            (6, &[0, 5]),
            (1, &[0]),
            (0, &[]),
        ];
        let Some(mut t) = tu::TestFs::new("trunc", 1024) else {
            return;
        };
        for &(cut, remain) in cases {
            let ino = t.file_with(&lblks);
            let before = t.layout(ino);
            let mut h = t.fs.journal_start(8).unwrap();
            t.fs.ind_truncate(&mut h, ino, Lblk(cut)).unwrap();
            t.fs.journal_stop(h).unwrap();
            let after = t.layout(ino);
            assert_eq!(after.lblks(), remain, "cut at {cut}");
            for l in remain {
                assert_eq!(
                    after.pblk(*l),
                    before.pblk(*l),
                    "cut {cut}: block {l} moved"
                );
            }
            for m in before.meta.iter().filter(|m| !after.meta.contains(m)) {
                assert!(
                    !t.fs.bufs.map.contains_key(m),
                    "cut {cut}: freed {m} not forgotten"
                );
            }
            t.check_accounting(ino, &after);
            t.remove(ino);
        }
    }

    #[test]
    fn truncate_keeps_a_block_that_still_maps_data_before_the_cut() {
        let Some(mut t) = tu::TestFs::new("trunc-keep", 1024) else {
            return;
        };
        let ino = t.file_with(&[300, 301, 600]);
        let Layout { meta: m0, .. } = t.layout(ino);
        let mut h = t.fs.journal_start(8).unwrap();
        t.fs.ind_truncate(&mut h, ino, Lblk(301)).unwrap();
        t.fs.journal_stop(h).unwrap();
        let after = t.layout(ino);
        assert_eq!(after.lblks(), [300]);
        // DIND and the IND of 268..=523 stay; the IND of 524..=779 went.
        assert_eq!(after.meta.len(), 2);
        assert_eq!(m0.len(), 3);
        assert_eq!(after.meta[..], m0[..2]);
        t.check_accounting(ino, &after);
    }
}
