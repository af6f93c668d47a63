//! Pass 1, the blocks of one inode: model of e2fsck's `check_blocks()` (e2fsck/pass1.c) around
//! the walk of `walk.rs`: the extended-attribute block, the htree root, then `i_size` and
//! `i_blocks` against what the walk counted. Also the symlink check
//! (`e2fsck_pass1_check_symlink()`), which needs to read the target block.

use super::pass1::has_valid_blocks;
use super::walk::{header_verify, WalkIn, WalkOut};
use super::{Fsck, Problem, ProblemCode as P};
use crate::bytes::{read_u16le, read_u32le};
use crate::format::inode::*;
use crate::format::superblock::*;
use crate::units::Ino;

/// `EXT2_EXT_ATTR_MAGIC`: first word of an extended-attribute block.
const EXT2_EXT_ATTR_MAGIC: u32 = 0xEA02_0000;
/// Offset of `s_prealloc_dir_blocks` (u8) in the superblock.
const S_PREALLOC_DIR_BLOCKS: usize = 0xCD;
/// `EXT4_HTREE_LEVEL`: deepest htree.
const EXT4_HTREE_LEVEL: u8 = 3;

impl Fsck<'_> {
    /// Whether libext2fs fails to read inode `ino` for a checksum: it rereads the inode to seed
    /// the checksums of its extent and directory blocks, so they all fail with it (e2fsck uses
    /// its in-memory copy instead only for 128-byte inodes).
    pub(super) fn reread_fails(&self, ino: u32, inode: &Inode) -> bool {
        let len = inode.raw.len();
        self.csum()
            && len > EXT4_GOOD_OLD_INODE_SIZE
            && !inode_csum_verify(self.sb.csum_seed(), Ino(ino), &inode.raw, len)
    }

    /// What the walk of inode `ino` needs from it.
    pub(super) fn walk_in(&self, ino: u32, inode: &Inode, extents: bool) -> WalkIn {
        let csum_seed = self
            .csum()
            .then(|| inode_csum_seed(self.sb.csum_seed(), Ino(ino), inode.i_generation));
        WalkIn {
            ino,
            i_block: inode.i_block_bytes(),
            extents,
            is_dir: inode.is_dir(),
            is_reg: inode.is_reg(),
            size: inode.i_size,
            size_high: inode.i_size >> 32 != 0,
            verity: inode.has_flag(EXT4_VERITY_FL),
            csum_seed,
            inode_csum_bad: self.reread_fails(ino, inode),
        }
    }

    /// Model of `check_blocks()`: count and mark every block of the inode, then check its
    /// size and block count.
    pub(super) fn check_blocks(&mut self, ino: u32, inode: &Inode) {
        let mut num_blocks = self.check_ea_block(ino, inode);
        let extent_fs = self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS);
        let flag = inode.has_flag(EXT4_EXTENTS_FL);
        let extents = extent_fs && flag;
        // Without the feature, libext2fs still follows the flag, and finds nothing in an
        // i_block that is not an extent root.
        let readable = extent_fs || !flag || header_verify(&inode.i_block_bytes());
        let out = if has_valid_blocks(inode) && readable {
            let w = self.walk_in(ino, inode, flag);
            self.walk_blocks(&w)
        } else {
            WalkOut {
                last_block: u64::MAX,
                last_init_lblock: -1,
                ..WalkOut::default()
            }
        };
        self.claim(ino, &out);
        num_blocks += out.num_blocks;
        if inode.has_flag(EXT4_INDEX_FL) {
            self.handle_htree(ino, inode, &out);
        }
        if inode.is_dir() {
            self.dir_blocks.extend_from_slice(&out.dir_blocks);
            if num_blocks == 0 {
                let msg = "inode is a zero-length directory";
                self.report(Problem::new(P::PR_1_ZERO_LENGTH_DIR, msg).ino(ino));
            }
        }
        self.check_size(ino, inode, &out, extents);
        self.check_i_blocks(ino, inode, num_blocks);
    }

    /// The `i_size` rules of `check_blocks()`: a directory is exactly its blocks; a file may
    /// not have initialized blocks past `i_size` (one block of slack) nor exceed the format's
    /// maximum. Symlink sizes are checked elsewhere.
    fn check_size(&mut self, ino: u32, inode: &Inode, out: &WalkOut, extents: bool) {
        let bs = u64::from(self.bs);
        let size = inode.i_size;
        let blocks = out.last_block.wrapping_add(1);
        let bad = if inode.is_dir() {
            let nblock = size / bs;
            let prealloc = u64::from(self.sb.raw.get(S_PREALLOC_DIR_BLOCKS).copied().unwrap_or(0));
            size % bs != 0 || nblock > blocks || (nblock < blocks && blocks - nblock > prealloc)
        } else if out.last_init_lblock >= 0
            && size < (out.last_init_lblock as u64).saturating_mul(bs)
            && !inode.has_flag(EXT4_VERITY_FL)
        {
            true
        } else if !extents {
            size > max_blockmap_size(self.bs)
        } else {
            size > (1u64 << (32 + self.bs.trailing_zeros())) - 1
        };
        if bad && !inode.is_symlink() {
            let should = blocks.wrapping_mul(bs);
            let msg = format!("i_size is {size}, should be {should}");
            self.report(Problem::new(P::PR_1_BAD_I_SIZE, msg).ino(ino));
        }
    }

    /// `i_blocks` against the blocks counted, with huge_file semantics (`EXT4_HUGE_FILE_FL`:
    /// counted in filesystem blocks).
    fn check_i_blocks(&mut self, ino: u32, inode: &Inode, num_blocks: u64) {
        let huge = self.sb.has_ro_compat(EXT4_FEATURE_RO_COMPAT_HUGE_FILE);
        let huge_fl = huge && inode.has_flag(EXT4_HUGE_FILE_FL);
        let expect = if huge_fl {
            num_blocks
        } else {
            num_blocks * u64::from(self.bs / 512)
        };
        let actual = if huge {
            inode.i_blocks
        } else {
            inode.i_blocks & 0xFFFF_FFFF
        };
        let blocks_hi = read_u16le(&inode.raw, 0x74);
        if expect != actual || (huge_fl && blocks_hi != 0) {
            let msg = format!("i_blocks is {actual}, should be {expect}");
            self.report(Problem::new(P::PR_1_BAD_I_BLOCKS, msg).ino(ino));
        }
    }

    /// The extended-attribute block (model of the part of `check_ext_attr()` we check): a
    /// valid block counts once per inode naming it and is marked once. Returns the blocks
    /// it adds to `i_blocks`.
    fn check_ea_block(&mut self, ino: u32, inode: &Inode) -> u64 {
        let blk = inode.i_file_acl;
        let sb = &self.sb;
        if blk == 0
            || !sb.has_compat(EXT4_FEATURE_COMPAT_EXT_ATTR)
            || blk < u64::from(sb.s_first_data_block)
            || blk >= self.nr_blocks
        {
            return 0;
        }
        if !self.ea_blocks.insert(blk) {
            return 1;
        }
        let buf = self.block(blk);
        if read_u32le(&buf, 0) != EXT2_EXT_ATTR_MAGIC {
            let msg = format!("extended attribute block {blk} has a bad magic");
            self.report(Problem::new(P::PR_1_BAD_EA_BLOCK, msg).ino(ino).blk(blk));
        }
        self.mark_used(blk, 1);
        self.claims.push(super::Claim {
            ino,
            start: blk,
            len: 1,
        });
        1
    }

    /// Model of `handle_htree()` as `e2fsck -n` runs it: `INDEX_FL` wants a directory, the
    /// feature, and a sane `dx_root` in logical block 0. Every check answered "no" lets the
    /// next one run, and the directory stays an htree for pass 2.
    fn handle_htree(&mut self, ino: u32, inode: &Inode, out: &WalkOut) {
        let mut found = Vec::new();
        if !inode.is_dir() {
            found.push((
                P::PR_1_HTREE_NODIR,
                "INDEX_FL on a non-directory".to_string(),
            ));
        }
        if !self.sb.has_compat(EXT4_FEATURE_COMPAT_DIR_INDEX) {
            found.push((
                P::PR_1_HTREE_SET,
                "INDEX_FL without the dir_index feature".into(),
            ));
        }
        let root = out.dir_blocks.iter().find(|d| d.lblk == 0 && d.pblk != 0);
        match root.filter(|_| !out.block0_csum_bad) {
            None => found.push((P::PR_1_HTREE_BADROOT, "no readable root block".into())),
            Some(&root) => found.extend(self.dx_root_problems(root.pblk)),
        }
        for (code, msg) in found {
            self.report(Problem::new(code, msg).ino(ino));
        }
        if let Some(info) = self.inodes.get_mut(&ino) {
            info.htree = inode.is_dir();
        }
    }

    /// The `dx_root_info` checks of `handle_htree()` on the root block at `pblk`.
    fn dx_root_problems(&mut self, pblk: u64) -> Vec<(P, String)> {
        let buf = self.block(pblk);
        let (reserved, hash, info_len, levels) = (read_u32le(&buf, 24), buf[28], buf[29], buf[30]);
        let mut found = Vec::new();
        if reserved != 0 || info_len < 8 {
            let msg = format!("dx_root_info: reserved_zero {reserved}, info_length {info_len}");
            found.push((P::PR_1_HTREE_BADROOT, msg));
        }
        if !matches!(hash, 0 | 1 | 2 | 6) {
            found.push((
                P::PR_1_HTREE_HASHV,
                format!("hash version {hash} is not supported"),
            ));
        }
        if levels > EXT4_HTREE_LEVEL {
            found.push((
                P::PR_1_HTREE_DEPTH,
                format!("htree depth {levels} is too big"),
            ));
        }
        found
    }

    /// Model of `e2fsck_pass1_check_symlink()` (inline data aside): the target is NUL
    /// terminated within `i_block` (fast) or its only block (slow), and as long as `i_size`.
    pub(super) fn symlink_ok(&mut self, inode: &Inode) -> bool {
        let size = inode.i_size;
        if size >> 32 != 0 || size == 0 || inode.has_flag(EXT4_INDEX_FL) {
            return false;
        }
        let fast = size < 60;
        let buf: Vec<u8> = if fast {
            if inode.has_flag(EXT4_EXTENTS_FL) {
                return false;
            }
            inode.i_block_bytes().to_vec()
        } else {
            let Some(blk) = self.symlink_block(inode) else {
                return false;
            };
            if blk < u64::from(self.sb.s_first_data_block) || blk >= self.nr_blocks {
                return false;
            }
            self.block(blk).to_vec()
        };
        let len = if inode.has_flag(EXT4_ENCRYPT_FL) {
            usize::from(read_u16le(&buf, 0)) + 2
        } else {
            buf.iter().position(|&b| b == 0).unwrap_or(buf.len())
        };
        len < buf.len() && len as u64 == size
    }

    /// The single block of a slow symlink: one extent (0, len 1) in a depth-0 root, or
    /// `i_block[0]` alone.
    fn symlink_block(&self, inode: &Inode) -> Option<u64> {
        let i_block = inode.i_block_bytes();
        if inode.has_flag(EXT4_EXTENTS_FL) {
            let ok = header_verify(&i_block)
                && read_u16le(&i_block, 2) == 1
                && read_u16le(&i_block, 6) == 0
                && read_u32le(&i_block, 12) == 0
                && read_u16le(&i_block, 16) == 1;
            let pblk =
                u64::from(read_u16le(&i_block, 18)) << 32 | u64::from(read_u32le(&i_block, 20));
            return ok.then_some(pblk);
        }
        inode.i_block[1..]
            .iter()
            .all(|&p| p == 0)
            .then_some(u64::from(inode.i_block[0]))
    }
}

/// e2fsck's `ext2_max_sizes[]`: the largest file an indirect map can address, in bytes.
fn max_blockmap_size(block_size: u32) -> u64 {
    let n = u64::from(block_size / 4);
    (12 + n + n * n + n * n * n) * u64::from(block_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockmap_size_limits_are_e2fsck_s() {
        assert_eq!(
            max_blockmap_size(1024),
            (12 + 256 + 65536 + 16_777_216) * 1024
        );
        assert_eq!(
            max_blockmap_size(4096),
            (12 + 1024 + 1_048_576 + 1_073_741_824) * 4096
        );
    }
}
