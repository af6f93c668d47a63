//! Model of the block iteration of e2fsck's `check_blocks()` (e2fsck/pass1.c) as `e2fsck -n`
//! runs it: `check_blocks_extents()` + `scan_extent_node()` for extent trees,
//! `ext2fs_block_iterate3()` + `process_block()` for indirect maps.
//!
//! Unlike [`crate::format::blockmap::walk`], which stops at the first inconsistency (what the
//! kernel does), this walk reports every bad entry with e2fsck's code and goes on, skipping
//! only what e2fsck skips: an entry with a problem is neither marked nor counted, a node with a
//! bad header is not entered, an illegal indirect block is not read. Extent entries are read
//! one by one from the raw node, because e2fsck judges them one by one where
//! [`crate::format::extent::ExtentNode::parse`] rejects a whole node.
//!
//! e2fsck's arithmetic is kept where it matters: an index covers up to the next index (the
//! last one up to `i_size` in blocks, 32-bit wrapping), `last_block` starts at `~0`, and an
//! extent ending past its index's range is allowed only if it is unwritten (or the file is
//! fs-verity) and past end of file.

use super::{Claim, DirBlock, Fsck, Problem, ProblemCode as P};
use crate::bytes::{read_u16le, read_u32le};
use crate::format::extent::{self, EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN};
use crate::format::indirect;
use crate::format::superblock::EXT4_FEATURE_INCOMPAT_LARGEDIR;
use crate::units::Ino;

/// Illegal blocks reported per inode before `PR_1_TOO_MANY_BAD_BLOCKS` (e2fsck's latch).
const MAX_ILLEGAL: u32 = 12;

/// What the walk needs to know about the inode.
pub(super) struct WalkIn {
    pub ino: u32,
    pub i_block: [u8; 60],
    pub extents: bool,
    pub is_dir: bool,
    pub is_reg: bool,
    pub size: u64,
    pub size_high: bool,
    pub verity: bool,
    /// The inode's checksum seed when extent blocks carry checksums.
    pub csum_seed: Option<u32>,
    /// The inode fails its own checksum, so every extent block "fails" too (libext2fs
    /// rereads the inode to seed their checksums).
    pub inode_csum_bad: bool,
}

/// What the walk found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct WalkOut {
    /// Claimed runs `(start, len, marked)`: `marked` is false for the blocks of the resize
    /// inode other than its DIND block, which e2fsck counts but does not mark.
    pub claims: Vec<(u64, u64, bool)>,
    /// Blocks counted for `i_blocks` (data and mapping blocks), in fs blocks.
    pub num_blocks: u64,
    /// e2fsck's `last_block`: the last logical block mapped, `u64::MAX` for none.
    pub last_block: u64,
    /// e2fsck's `last_init_lblock`: the last initialized logical block, -1 for none.
    pub last_init_lblock: i64,
    /// Directory blocks in logical order (holes included, as runs).
    pub dir_blocks: Vec<DirBlock>,
    /// A node on the path to logical block 0 fails its checksum, so `ext2fs_bmap2()` of block
    /// 0 fails (what `handle_htree()` looks up).
    pub block0_csum_bad: bool,
}

/// The running state of one walk.
struct State<'a> {
    w: &'a WalkIn,
    out: WalkOut,
    /// e2fsck's `next_lblock`: first logical block after every extent seen.
    next_lblock: u64,
    /// e2fsck's `last_db_block`: last directory block added, `u64::MAX` for none.
    last_db_block: u64,
    /// End of file as a logical block (wrapping, as e2fsck computes it).
    eof_block: u64,
    illegal: u32,
    /// Blocks still allowed to be visited or claimed before the walk is declared runaway.
    budget: u64,
    stopped: bool,
}

/// One extent-tree entry, as `ext2fs_extent_get()` returns it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    lblk: u64,
    pblk: u64,
    /// Length (for an index: up to the next index or the node's end, 32-bit wrapping).
    len: u32,
    uninit: bool,
}

impl Entry {
    fn last(&self) -> u64 {
        self.lblk.wrapping_add(u64::from(self.len)).wrapping_sub(1)
    }
}

/// Model of `ext2fs_extent_header_verify()`: magic, `eh_entries <= eh_max`, and `eh_max`
/// between (room − 2) and room for a node of `size` bytes.
pub(super) fn header_verify(buf: &[u8]) -> bool {
    if buf.len() < 12 || read_u16le(buf, 0) != EXT4_EXT_MAGIC {
        return false;
    }
    let (entries, max) = (read_u16le(buf, 2), read_u16le(buf, 4));
    let room = (buf.len() - 12) / 12;
    entries <= max && usize::from(max) <= room && usize::from(max) + 2 >= room
}

/// Model of `ext2fs_max_extent_depth()`: the deepest tree a 32-bit logical space needs.
fn max_extent_depth(block_size: u32) -> u32 {
    let per_block = ((block_size - 12) / 12).max(2);
    1 + (31 - 2) / per_block.ilog2()
}

/// Entry `i` of an extent node (`is_leaf`); an index's length runs to `next`, where the next
/// index (or, for the last one, the node's range) starts.
fn entry(buf: &[u8], i: usize, is_leaf: bool, next: u64) -> Entry {
    let off = 12 + 12 * i;
    let lblk = u64::from(read_u32le(buf, off));
    if is_leaf {
        let raw = u32::from(read_u16le(buf, off + 4));
        let pblk = u64::from(read_u16le(buf, off + 6)) << 32 | u64::from(read_u32le(buf, off + 8));
        let uninit = raw > EXT_INIT_MAX_LEN;
        let len = if uninit { raw - EXT_INIT_MAX_LEN } else { raw };
        return Entry {
            lblk,
            pblk,
            len,
            uninit,
        };
    }
    let pblk = u64::from(read_u32le(buf, off + 4)) | u64::from(read_u16le(buf, off + 8)) << 32;
    let len = next.wrapping_sub(lblk) as u32; // e2fsck stores it in a __u32
    Entry {
        lblk,
        pblk,
        len,
        uninit: false,
    }
}

impl Fsck<'_> {
    /// Walk the block map of inode `w.ino`, reporting what e2fsck reports.
    pub(super) fn walk_blocks(&mut self, w: &WalkIn) -> WalkOut {
        let eof_blocks = w.size.div_ceil(u64::from(self.bs));
        let mut st = State {
            w,
            out: WalkOut {
                last_block: u64::MAX,
                last_init_lblock: -1,
                ..WalkOut::default()
            },
            next_lblock: 0,
            last_db_block: u64::MAX,
            eof_block: eof_blocks.wrapping_sub(1),
            illegal: 0,
            budget: 2 * self.nr_blocks + 64,
            stopped: false,
        };
        if w.extents {
            self.check_blocks_extents(&mut st, eof_blocks);
        } else {
            self.iterate_blockmap(&mut st);
            st.out.last_init_lblock = st.out.last_block as i64;
        }
        st.out
    }

    fn problem(&mut self, st: &State<'_>, code: P, blk: u64, msg: String) {
        self.report(Problem::new(code, msg).ino(st.w.ino).blk(blk));
    }

    /// Spend `n` of the walk's budget; false (and one report) once it is exhausted.
    fn spend(&mut self, st: &mut State<'_>, n: u64) -> bool {
        if st.stopped {
            return false;
        }
        if st.budget < n {
            st.stopped = true;
            let msg = "inode claims more blocks than the filesystem has; walk stopped".into();
            self.problem(st, P::PR_1_TOO_MANY_BAD_BLOCKS, 0, msg);
            return false;
        }
        st.budget -= n;
        true
    }

    /// Model of `check_blocks_extents()`.
    fn check_blocks_extents(&mut self, st: &mut State<'_>, eof_blocks: u64) {
        let root = st.w.i_block;
        if !header_verify(&root) {
            let msg = "inode has a corrupt extent header".into();
            return self.problem(st, P::PR_1_MISSING_EXTENT_HEADER, 0, msg);
        }
        let depth = u32::from(read_u16le(&root, 6));
        let max = max_extent_depth(self.bs);
        if depth > max {
            let msg = format!("extent tree depth {depth} is more than the maximum {max}");
            self.problem(st, P::PR_1_EXTENT_BAD_MAX_DEPTH, 0, msg);
        }
        self.scan_extent_node(st, &root, None, 0, 0, eof_blocks);
    }

    /// Model of `scan_extent_node()`: node `buf` (at `node`, `None` for the root), whose
    /// entries must start at `start_block` and (if non-zero) end by `end_block`; `end` is where
    /// the node's last index ends. Reports a checksum failure once the node is done.
    fn scan_extent_node(
        &mut self,
        st: &mut State<'_>,
        buf: &[u8],
        node: Option<(u64, bool)>,
        mut start_block: u64,
        end_block: u64,
        end: u64,
    ) {
        let n = usize::from(read_u16le(buf, 2));
        let depth = read_u16le(buf, 6);
        let is_leaf = depth == 0;
        let mut last = None;
        for i in 0..n {
            if st.stopped {
                return;
            }
            let next = end_of(buf, i, n, end);
            let e = entry(buf, i, is_leaf, next);
            last = Some(e);
            if let Some((code, msg)) = self.extent_problem(st, &e, is_leaf, start_block, end_block)
            {
                self.problem(st, code, e.pblk, msg);
                continue;
            }
            if is_leaf {
                self.leaf_extent(st, &e);
                start_block = e.last();
            } else {
                self.index_extent(st, &e, next, depth);
            }
        }
        if let (Some((pblk, true)), Some(e)) = (node, last) {
            let msg = format!(
                "extent block {pblk} passes checks, but checksum does not match \
                 (logical block {}, physical block {}, len {})",
                e.lblk, e.pblk, e.len
            );
            self.problem(st, P::PR_1_EXTENT_ONLY_CSUM_INVALID, pblk, msg);
        }
    }

    /// The first problem of entry `e`, in `scan_extent_node()`'s order.
    fn extent_problem(
        &self,
        st: &mut State<'_>,
        e: &Entry,
        is_leaf: bool,
        start_block: u64,
        end_block: u64,
    ) -> Option<(P, String)> {
        let (first, nr) = (u64::from(self.sb.s_first_data_block), self.nr_blocks);
        let last = e.last();
        let w = st.w;
        let what = format!(
            "logical block {}, physical block {}, len {}",
            e.lblk, e.pblk, e.len
        );
        let largedir = self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR);
        let dir_limit = 1u64 << (21 - self.sb.s_log_block_size.min(21));
        let problem = if e.pblk == 0 || e.pblk < first || e.pblk >= nr {
            Some(P::PR_1_EXTENT_BAD_START_BLK)
        } else if e.lblk < start_block {
            Some(P::PR_1_OUT_OF_ORDER_EXTENTS)
        } else if end_block != 0
            && last > end_block
            && !(last > st.eof_block && (e.uninit || w.verity))
        {
            Some(P::PR_1_EXTENT_END_OUT_OF_BOUNDS)
        } else if is_leaf && e.len == 0 {
            Some(P::PR_1_EXTENT_LENGTH_ZERO)
        } else if is_leaf && e.pblk + u64::from(e.len) > nr {
            Some(P::PR_1_EXTENT_ENDS_BEYOND)
        } else if is_leaf
            && w.is_dir
            && !w.size_high
            && !largedir
            && e.lblk + u64::from(e.len) > dir_limit
        {
            Some(P::PR_1_TOOBIG_DIR)
        } else {
            None
        };
        if let Some(code) = problem {
            return Some((code, format!("{} ({what})", code.describe())));
        }
        if is_leaf && e.len > 0 {
            if e.lblk < st.next_lblock {
                let msg = format!("extent collides with a logical block mapped before ({what})");
                return Some((P::PR_1_EXTENT_COLLISION, msg));
            }
            st.next_lblock = st.next_lblock.max(e.lblk + u64::from(e.len));
        }
        None
    }

    /// A good leaf extent: directory bookkeeping, then mark and count its blocks.
    fn leaf_extent(&mut self, st: &mut State<'_>, e: &Entry) {
        if !self.spend(st, u64::from(e.len)) {
            return;
        }
        if st.w.is_dir {
            if e.uninit {
                let msg = format!("directory block {} is in an unwritten extent", e.lblk);
                self.problem(st, P::PR_1_UNINIT_DBLOCK, e.pblk, msg);
            }
            if st.out.last_block.wrapping_add(1) < e.lblk {
                let msg = format!(
                    "directory logical block {} should be at block {}",
                    e.lblk,
                    st.out.last_block.wrapping_add(1)
                );
                self.problem(st, P::PR_1_COLLAPSE_DBLOCK, e.pblk, msg);
            }
            add_dir_run(st, e.lblk, e.pblk, u64::from(e.len));
        }
        st.out.claims.push((e.pblk, u64::from(e.len), true));
        st.out.num_blocks += u64::from(e.len);
        st.out.last_block = e.last();
        if !st.w.is_dir && !e.uninit {
            st.out.last_init_lblock = e.last() as i64;
        }
    }

    /// A good index entry: check the child node (header, depth one less than `parent_depth`,
    /// at least one entry), walk it, then mark and count it.
    fn index_extent(&mut self, st: &mut State<'_>, e: &Entry, child_end: u64, parent_depth: u16) {
        if !self.spend(st, 1) {
            return;
        }
        if st.w.ino != 7 && self.meta.test(e.pblk) {
            let msg = format!(
                "extent tree block {} collides with critical metadata",
                e.pblk
            );
            self.problem(st, P::PR_1_CRITICAL_METADATA_COLLISION, e.pblk, msg);
        }
        let buf = self.block(e.pblk);
        let depth_ok = u32::from(read_u16le(&buf, 6)) + 1 == u32::from(parent_depth);
        if !header_verify(&buf) || read_u16le(&buf, 2) == 0 || !depth_ok {
            let msg = format!("extent tree block {} has an invalid header", e.pblk);
            return self.problem(st, P::PR_1_EXTENT_HEADER_INVALID, e.pblk, msg);
        }
        let failed_csum = st.w.csum_seed.is_some_and(|seed| {
            st.w.inode_csum_bad
                || extent::extent_block_csum_verify(seed, &buf, Ino(st.w.ino)).is_err()
        });
        st.out.block0_csum_bad |= failed_csum && e.lblk == 0;
        let first = u64::from(read_u32le(&buf, 12));
        if first != e.lblk {
            let msg = format!(
                "index starts at logical block {}, its child at {first} (block {})",
                e.lblk, e.pblk
            );
            self.problem(st, P::PR_1_EXTENT_INDEX_START_INVALID, e.pblk, msg);
        }
        self.scan_extent_node(
            st,
            &buf,
            Some((e.pblk, failed_csum)),
            first,
            e.last(),
            child_end,
        );
        st.out.claims.push((e.pblk, 1, true));
        st.out.num_blocks += 1;
    }

    /// Model of `ext2fs_block_iterate3()` over an indirect map (no depth-first flag: each
    /// mapping block is processed before its children).
    fn iterate_blockmap(&mut self, st: &mut State<'_>) {
        let ptrs = indirect::i_block_from_bytes(&st.w.i_block);
        for (i, &p) in ptrs.iter().enumerate().take(indirect::EXT4_NDIR_BLOCKS) {
            self.process_block(st, u64::from(p), i as i64);
        }
        let n = u64::from(indirect::ptrs_per_block(self.bs));
        let mut base = indirect::EXT4_NDIR_BLOCKS as u64;
        for level in 1..=3u32 {
            let p = u64::from(ptrs[indirect::EXT4_NDIR_BLOCKS - 1 + level as usize]);
            if p != 0 {
                self.iterate_ind(st, p, level, base);
            }
            base += n.pow(level);
        }
    }

    /// `block_iterate_ind()` / `_dind()` / `_tind()`: process the mapping block `blk` at
    /// `level`, then, if it is legal, its non-zero entries.
    fn iterate_ind(&mut self, st: &mut State<'_>, blk: u64, level: u32, base: u64) {
        if st.stopped || !self.process_block(st, blk, -(level as i64)) || !self.spend(st, 1) {
            return;
        }
        let buf = self.block(blk);
        let span = u64::from(indirect::ptrs_per_block(self.bs)).pow(level - 1);
        for (i, p) in indirect::ptrs(&buf).enumerate() {
            if st.stopped {
                return;
            }
            if p == 0 {
                continue;
            }
            let lblk = base + i as u64 * span;
            if level == 1 {
                self.process_block(st, u64::from(p), lblk as i64);
            } else {
                self.iterate_ind(st, u64::from(p), level - 1, lblk);
            }
        }
    }

    /// Model of `process_block()`: one pointer (`blockcnt` < 0 for IND/DIND/TIND). Returns
    /// whether the block is legal (a mapping block is entered only then).
    fn process_block(&mut self, st: &mut State<'_>, blk: u64, blockcnt: i64) -> bool {
        let w = st.w;
        if blk == 0 {
            if w.is_dir && blockcnt == 0 {
                add_dir_run(st, 0, 0, 1);
            }
            return false;
        }
        let problem = self.block_problem(st, blk, blockcnt);
        if blockcnt < 0 && w.ino != 7 && self.meta.test(blk) {
            let msg = format!("mapping block {blk} collides with critical metadata");
            self.problem(st, P::PR_1_CRITICAL_METADATA_COLLISION, blk, msg);
        }
        if let Some(code) = problem {
            st.illegal += 1;
            if st.illegal == MAX_ILLEGAL {
                let msg = format!("too many illegal blocks (more than {MAX_ILLEGAL})");
                self.problem(st, P::PR_1_TOO_MANY_BAD_BLOCKS, blk, msg);
            } else if st.illegal < MAX_ILLEGAL {
                let msg = format!("{} (block #{blockcnt}: {blk})", code.describe());
                self.problem(st, code, blk, msg);
            }
            return false;
        }
        if !self.spend(st, 1) {
            return false;
        }
        // The resize inode's blocks are reserved GDT blocks, marked as metadata; e2fsck marks
        // only its DIND block but counts them all.
        let marked = w.ino != 7 || blockcnt == -2;
        // Consecutive blocks join one claim (a contiguous file is one range, as extents are).
        match st.out.claims.last_mut() {
            Some((start, len, m)) if *m == marked && *start + *len == blk => *len += 1,
            _ => st.out.claims.push((blk, 1, marked)),
        }
        st.out.num_blocks += 1;
        if blockcnt >= 0 {
            st.out.last_block = blockcnt as u64;
            if w.is_dir {
                add_dir_run(st, blockcnt as u64, blk, 1);
            }
        }
        true
    }

    /// The problem of pointer `blk` at `blockcnt`, if any (the `TOOBIG` checks, then range).
    fn block_problem(&self, st: &State<'_>, blk: u64, blockcnt: i64) -> Option<P> {
        let w = st.w;
        let log = self.sb.s_log_block_size.min(21);
        let max_blocks = 1u64 << (31 - log.min(31));
        let largedir = self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR);
        let mut problem = None;
        if w.is_dir && !largedir && !w.size_high && blockcnt > (1i64 << (21 - log)) {
            problem = Some(P::PR_1_TOOBIG_DIR);
        }
        if w.is_dir && st.out.num_blocks + 1 >= max_blocks {
            problem = Some(P::PR_1_TOOBIG_DIR);
        }
        if w.is_reg && st.out.num_blocks + 1 >= max_blocks {
            problem = Some(P::PR_1_TOOBIG_REG);
        }
        if !w.is_dir && !w.is_reg && blockcnt > 0 {
            problem = Some(P::PR_1_TOOBIG_SYMLINK);
        }
        if blk < u64::from(self.sb.s_first_data_block) || blk >= self.nr_blocks {
            problem = Some(P::PR_1_ILLEGAL_BLOCK_NUM);
        }
        problem
    }

    /// Record the blocks of a walked inode: claims for pass 1B, marks for pass 5.
    pub(super) fn claim(&mut self, ino: u32, out: &WalkOut) {
        for &(start, len, marked) in &out.claims {
            if marked {
                self.mark_used(start, len);
            }
            match self.claims.last_mut() {
                Some(c) if c.ino == ino && c.start + c.len == start => c.len += len,
                _ => self.claims.push(Claim { ino, start, len }),
            }
        }
    }
}

/// Where the index at `i` of a node with `n` entries ends (the next key, or the node's end).
fn end_of(buf: &[u8], i: usize, n: usize, end: u64) -> u64 {
    if i + 1 < n {
        u64::from(read_u32le(buf, 12 + 12 * (i + 1)))
    } else {
        end
    }
}

/// Add `len` directory blocks at `lblk` (`pblk` 0: holes), after holes up to `lblk`
/// (e2fsck's `last_db_block` loop).
fn add_dir_run(st: &mut State<'_>, lblk: u64, pblk: u64, len: u64) {
    let next = st.last_db_block.wrapping_add(1);
    if next < lblk {
        push_dir(st, next, 0, lblk - next);
    }
    push_dir(st, lblk, pblk, len);
    st.last_db_block = lblk + len - 1;
}

fn push_dir(st: &mut State<'_>, lblk: u64, pblk: u64, count: u64) {
    let ino = st.w.ino;
    if pblk == 0 {
        if let Some(d) = st.out.dir_blocks.last_mut() {
            if d.pblk == 0 && d.lblk + d.count == lblk {
                d.count += count;
                return;
            }
        }
        st.out.dir_blocks.push(DirBlock {
            ino,
            lblk,
            pblk,
            count,
        });
        return;
    }
    for k in 0..count {
        let b = DirBlock {
            ino,
            lblk: lblk + k,
            pblk: pblk + k,
            count: 1,
        };
        st.out.dir_blocks.push(b);
    }
}

#[cfg(test)]
mod tests;
