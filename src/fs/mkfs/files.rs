//! The files mke2fs creates (steps 2–5 of `build.rs`): the root directory, lost+found, the
//! reserved inodes and the journal, with the two ways a file's blocks are mapped here — an
//! extent tree (in the inode, or one leaf block for a journal over more than four runs) or the
//! indirect map (direct pointers, then IND/DIND/TIND blocks placed as `ext4_alloc_branch()`
//! places them).

use super::build::{Builder, Run};
use super::INODE_SIZE;
use crate::dev::Zone;
use crate::error::{Error, Result};
use crate::format::bitmap;
use crate::format::dir::{self, EXT4_FT_DIR};
use crate::format::extent::{self, Extent, ExtentIdx, ExtentNode};
use crate::format::indirect::{self, EXT4_NDIR_BLOCKS};
use crate::format::inode::{self as fi, Inode, EXT4_JOURNAL_INO, EXT4_ROOT_INO};
use crate::format::jbd2::JournalSuperblock;
use crate::fs::mount::EPOCH;
use crate::units::{Ino, Lblk, Pblk};
use std::collections::BTreeMap;

/// The lost+found inode (`EXT2_FIRST_INO` of a revision-1 filesystem).
pub(super) const LPF_INO: u32 = 11;
/// mke2fs grows lost+found to this many bytes (`create_lost_and_found()`).
const LPF_BYTES: u32 = 16 * 1024;
/// `sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE`: `i_extra_isize` of new inodes.
pub(super) const EXTRA_ISIZE: u16 = 32;

impl Builder<'_> {
    /// A new in-core inode as `ext2fs_write_new_inode()` writes it: every time `EPOCH`,
    /// `i_extra_isize` 32, generation 0.
    pub(super) fn new_inode(mode: u16, links: u16) -> Inode {
        let mut inode = Inode::new(INODE_SIZE as usize);
        inode.i_mode = mode;
        inode.i_links_count = links;
        (inode.i_atime, inode.i_ctime, inode.i_mtime, inode.i_crtime) =
            (EPOCH, EPOCH, EPOCH, EPOCH);
        inode.i_extra_isize = EXTRA_ISIZE;
        inode
    }

    /// Per-inode checksum seed (`ext4_inode_csum_seed()`, generation 0).
    pub(super) fn inode_seed(&self, ino: u32) -> u32 {
        fi::inode_csum_seed(self.sb.csum_seed(), Ino(ino), 0)
    }

    /// Point `inode` at `runs` (file blocks 0..): an extent tree (in the inode if it fits,
    /// else one leaf block allocated after the data) or, without extents, the direct pointers
    /// (`runs` must then cover at most 12 blocks). Returns the number of map blocks used.
    pub(super) fn map_runs(&mut self, inode: &mut Inode, ino: u32, runs: &[Run]) -> Result<u32> {
        if !self.opts.extents {
            let blocks = runs
                .iter()
                .flat_map(|r| (0..r.len).map(move |i| r.pblk + u64::from(i)));
            for (slot, b) in blocks.enumerate() {
                assert!(slot < EXT4_NDIR_BLOCKS, "direct map of more than 12 blocks");
                inode.i_block[slot] = b as u32; // OK: blocks_count < 2^32 (checked by geometry)
            }
            return Ok(0);
        }
        inode.i_flags |= fi::EXT4_EXTENTS_FL;
        let exts: Vec<Extent> = runs
            .iter()
            .map(|r| Extent::new(Lblk(r.lblk), r.len, Pblk(r.pblk), false))
            .collect();
        let mut root = [0u8; extent::EXT_ROOT_SIZE];
        if exts.len() <= usize::from(extent::root_max()) {
            ExtentNode::leaf(extent::root_max(), exts).write(&mut root);
            inode.set_i_block_bytes(&root);
            return Ok(0);
        }
        let max = extent::block_max(self.bs());
        if exts.len() > usize::from(max) {
            return Err(Error::Invalid(format!(
                "inode {ino}: {} extents do not fit one extent block",
                exts.len()
            )));
        }
        let last = runs.last().map_or(0, |r| r.pblk + u64::from(r.len));
        let leaf = self.alloc(last)?;
        let mut buf = vec![0u8; self.bs() as usize];
        ExtentNode::leaf(max, exts).write(&mut buf);
        if self.opts.metadata_csum {
            extent::extent_block_csum_set(self.inode_seed(ino), &mut buf);
        }
        self.blocks.insert(leaf, (buf, Zone::TreeMeta));
        ExtentNode::index(
            extent::root_max(),
            1,
            vec![ExtentIdx::new(Lblk(0), Pblk(leaf))],
        )
        .write(&mut root);
        inode.set_i_block_bytes(&root);
        Ok(1)
    }

    /// Set `i_size` and `i_blocks` for `data` blocks of content plus `meta` map blocks.
    pub(super) fn set_sizes(&self, inode: &mut Inode, data: u32, meta: u32) -> Result<()> {
        let bs = u64::from(self.bs());
        inode.i_size = u64::from(data) * bs;
        inode.set_blocks_512(u64::from(data + meta) * bs / 512, true, self.bs())
    }

    /// Store directory block `buf` of `ino` at `pblk`, with its checksum tail filled in.
    pub(super) fn put_dir_block(&mut self, ino: u32, pblk: u64, mut buf: Vec<u8>) {
        if self.opts.metadata_csum {
            dir::dirblock_csum_set(self.inode_seed(ino), &mut buf);
        }
        self.blocks.insert(pblk, (buf, Zone::DirData));
    }

    /// Mark inode `ino` in use in group 0's bitmap (a directory counts in `bg_used_dirs_count`).
    pub(super) fn take_inode(&mut self, ino: u32, is_dir: bool) {
        let bit = (ino - 1) % self.geo.inodes_per_group;
        bitmap::set_bit(&mut self.inode_bitmaps[0], bit);
        self.gds[0].bg_free_inodes_count -= 1;
        if is_dir {
            self.gds[0].bg_used_dirs_count += 1;
        }
    }

    /// Model of `create_root_dir()` (`ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0)`): one
    /// block holding `.` and `..`, then the `lost+found` entry that `ext2fs_mkdir()` links.
    pub(super) fn create_root_dir(&mut self) -> Result<u64> {
        let csum = self.opts.metadata_csum;
        let pblk = self.alloc(self.geo.group_first_block(0))?;
        let mut buf = vec![0u8; self.bs() as usize];
        let root = Ino(EXT4_ROOT_INO);
        dir::make_dot_block(&mut buf, root, root, csum);
        dir::add_entry(
            &mut buf,
            root,
            csum,
            Ino(LPF_INO),
            b"lost+found",
            EXT4_FT_DIR,
        )?;
        self.put_dir_block(EXT4_ROOT_INO, pblk, buf);
        let mut inode = Self::new_inode(fi::S_IFDIR | 0o755, 3);
        let run = Run {
            lblk: 0,
            pblk,
            len: 1,
        };
        let meta = self.map_runs(&mut inode, EXT4_ROOT_INO, &[run])?;
        self.set_sizes(&mut inode, 1, meta)?;
        self.inodes.insert(EXT4_ROOT_INO, inode);
        self.take_inode(EXT4_ROOT_INO, true);
        Ok(pblk)
    }

    /// Model of `create_lost_and_found()`: `ext2fs_mkdir()` then `ext2fs_expand_dir()` until
    /// 16 KiB (and at least 2 blocks), within the 12 direct blocks; new blocks are empty.
    /// Allocation starts at `goal`, the block after the root directory's.
    pub(super) fn create_lost_and_found(&mut self, goal: u64) -> Result<()> {
        let csum = self.opts.metadata_csum;
        let n = lost_and_found_blocks(self.bs());
        let runs = self.alloc_runs(goal, n)?;
        for (i, b) in runs
            .iter()
            .flat_map(|r| (0..r.len).map(move |i| r.pblk + u64::from(i)))
            .enumerate()
        {
            let mut buf = vec![0u8; self.bs() as usize];
            if i == 0 {
                dir::make_dot_block(&mut buf, Ino(LPF_INO), Ino(EXT4_ROOT_INO), csum);
            } else {
                dir::init_block(&mut buf, csum);
            }
            self.put_dir_block(LPF_INO, b, buf);
        }
        let mut inode = Self::new_inode(fi::S_IFDIR | 0o700, 2);
        let meta = self.map_runs(&mut inode, LPF_INO, &runs)?;
        self.set_sizes(&mut inode, n, meta)?;
        self.inodes.insert(LPF_INO, inode);
        self.take_inode(LPF_INO, true);
        Ok(())
    }

    /// Model of `reserve_inodes()`: inodes 1 .. first_ino − 1 are in use (all but 2 and 8 stay
    /// zero on disk).
    pub(super) fn reserve_inodes(&mut self) {
        for ino in 1..LPF_INO {
            if ino != EXT4_ROOT_INO {
                self.take_inode(ino, false);
            }
        }
    }

    /// Model of `get_midpoint_journal_block()` (lib/ext2fs/mkjournal.c) without flex_bg: the
    /// first block of the group, among the middle one and its two neighbours, with the most
    /// free blocks (the first such on a tie).
    pub(super) fn midpoint_journal_block(&self) -> u64 {
        let geo = self.geo;
        let first = u64::from(geo.first_data_block);
        let mid = (geo.blocks_count - first) / 2;
        let group = (mid.saturating_sub(first) / u64::from(geo.blocks_per_group)) as u32;
        let start = group.saturating_sub(1);
        let end = if group + 1 < geo.groups {
            group + 1
        } else {
            group
        };
        let free = |g: u32| self.gds[g as usize].bg_free_blocks_count;
        let best =
            (start + 1..=end).fold(start, |best, g| if free(g) > free(best) { g } else { best });
        geo.group_first_block(best)
    }

    /// Model of `write_journal_inode()` (lib/ext2fs/mkjournal.c): inode 8, mode 0100600, its
    /// blocks allocated by `ext2fs_fallocate()` (extent files: from the midpoint group;
    /// indirect files: block by block through `ext2fs_bmap2(BMAP_ALLOC)`, from group 0), the
    /// JBD2 superblock in its block 0, and the `s_jnl_blocks` backup.
    pub(super) fn create_journal(&mut self) -> Result<()> {
        let n = self.geo.journal_blocks;
        let mut inode = Self::new_inode(fi::S_IFREG | 0o600, 1);
        let (runs, meta) = if self.opts.extents {
            let runs = self.alloc_runs(self.midpoint_journal_block(), n)?;
            let meta = self.map_runs(&mut inode, EXT4_JOURNAL_INO, &runs)?;
            (runs, meta)
        } else {
            self.map_indirect(&mut inode, n, self.geo.group_first_block(0))?
        };
        self.set_sizes(&mut inode, n, meta)?;
        let jsb =
            JournalSuperblock::new(self.bs(), n, self.opts.uuid, self.opts.metadata_csum, false);
        let mut buf = vec![0u8; self.bs() as usize];
        buf[..jsb.to_bytes().len()].copy_from_slice(&jsb.to_bytes());
        // OK to index: n >= JBD2_MIN_JOURNAL_BLOCKS, so there is a first run.
        self.blocks.insert(runs[0].pblk, (buf, Zone::Journal));
        self.sb.s_jnl_blocks[..indirect::EXT4_N_BLOCKS].copy_from_slice(&inode.i_block);
        self.sb.s_jnl_blocks[15] = (inode.i_size >> 32) as u32;
        self.sb.s_jnl_blocks[16] = inode.i_size as u32; // truncation intended: i_size_lo
        self.inodes.insert(EXT4_JOURNAL_INO, inode);
        self.journal_runs = runs;
        Ok(())
    }

    /// Map `n` blocks through `i_block` with IND/DIND/TIND blocks, allocating from `goal` in the
    /// order of `ext4_alloc_branch()`. Returns the data runs and the number of map blocks.
    pub(super) fn map_indirect(
        &mut self,
        inode: &mut Inode,
        n: u32,
        goal: u64,
    ) -> Result<(Vec<Run>, u32)> {
        let mut maps: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut runs: Vec<Run> = Vec::new();
        let mut goal = goal;
        for lblk in 0..n {
            let path = block_to_path(lblk, indirect::ptrs_per_block(self.bs()));
            let b = self.alloc_branch(&mut inode.i_block, &mut maps, &path, &mut goal)?;
            match runs.last_mut() {
                Some(r) if r.pblk + u64::from(r.len) == b => r.len += 1,
                _ => runs.push(Run {
                    lblk,
                    pblk: b,
                    len: 1,
                }),
            }
        }
        let meta = maps.len() as u32; // OK: at most n map blocks
        for (b, m) in maps {
            self.blocks.insert(b, (m, Zone::TreeMeta));
        }
        Ok((runs, meta))
    }

    /// Model of `ext4_get_branch()` + `ext4_alloc_branch()` + `ext4_splice_branch()` for a file
    /// filled in order: follow `path` from `i_block` through the map blocks in `maps`, and
    /// allocate each missing map block right before the block it leads to, the data block last
    /// (from `*goal`, which moves past each). Returns the data block.
    fn alloc_branch(
        &mut self,
        i_block: &mut [u32; indirect::EXT4_N_BLOCKS],
        maps: &mut BTreeMap<u64, Vec<u8>>,
        path: &[usize],
        goal: &mut u64,
    ) -> Result<u64> {
        let mut parent: Option<u64> = None;
        for (depth, &off) in path.iter().enumerate() {
            let cur = match parent {
                None => i_block[off],
                Some(p) => maps.get(&p).map_or(0, |m| indirect::get_ptr(m, off)),
            };
            let blk = if cur != 0 {
                u64::from(cur)
            } else {
                let b = self.alloc(*goal)?;
                *goal = b + 1;
                let b32 = b as u32; // OK: blocks_count < 2^32 (checked by geometry)
                match parent.and_then(|p| maps.get_mut(&p)) {
                    Some(m) => indirect::set_ptr(m, off, b32),
                    None => i_block[off] = b32,
                }
                if depth + 1 < path.len() {
                    maps.insert(b, vec![0; self.bs() as usize]);
                }
                b
            };
            parent = Some(blk);
        }
        Ok(parent.unwrap_or_default())
    }
}

/// The blocks of lost+found: mke2fs' `create_lost_and_found()` loop, which expands the
/// directory while it is under 16 KiB or under 2 blocks, for at most the 12 direct blocks.
pub(super) fn lost_and_found_blocks(block_size: u32) -> u32 {
    let mut size = 0;
    let mut n = 1;
    for _ in 1..EXT4_NDIR_BLOCKS {
        size += block_size;
        if size >= LPF_BYTES && size >= 2 * block_size {
            break;
        }
        n += 1;
    }
    n
}

/// Model of `ext4_block_to_path()` (fs/ext4/indirect.c): the offsets leading to logical block
/// `lblk`, first in `i_block`, then in each map block (`ptrs` pointers per block).
fn block_to_path(lblk: u32, ptrs: u32) -> Vec<usize> {
    let (n, l) = (u64::from(ptrs), u64::from(lblk));
    let direct = EXT4_NDIR_BLOCKS as u64;
    let (ind, dind, tind) = (
        indirect::EXT4_IND_BLOCK as u64,
        indirect::EXT4_DIND_BLOCK as u64,
        indirect::EXT4_TIND_BLOCK as u64,
    );
    let path: Vec<u64> = if l < direct {
        vec![l]
    } else if l - direct < n {
        vec![ind, l - direct]
    } else if l - direct - n < n * n {
        let r = l - direct - n;
        vec![dind, r / n, r % n]
    } else {
        let r = l - direct - n - n * n;
        vec![tind, r / (n * n), (r / n) % n, r % n]
    };
    path.into_iter().map(|x| x as usize).collect() // OK: offsets < ptrs per block
}

#[cfg(test)]
mod tests {
    use super::super::check::{check_files, check_tables, opts, Image};
    use super::*;

    #[test]
    fn a_journal_over_five_groups_gets_an_extent_leaf_and_an_indirect_one_a_dind() {
        let mut o = opts(80 << 20, 1024, true, true);
        o.journal_blocks = Some(32000);
        let img = Image::new(&o);
        check_tables(&img);
        check_files(&img, &o);
        let map = img.map(8);
        assert_eq!((map.runs.len(), map.meta.len()), (5, 1));
        assert_eq!(
            map.meta[0].pblk,
            map.runs[4].pblk + u64::from(map.runs[4].len)
        );
        o.extents = false;
        let img = Image::new(&o);
        check_files(&img, &o);
        // 12 direct, 256 through IND, 31732 through DIND: 1 + 1 + 124 map blocks.
        assert_eq!(img.map(8).meta.len(), 126);
    }

    #[test]
    fn lost_and_found_and_block_to_path() {
        let lpf: Vec<u32> = [1024, 2048, 4096]
            .into_iter()
            .map(lost_and_found_blocks)
            .collect();
        assert_eq!(lpf, [12, 8, 4]);
        let paths: Vec<Vec<usize>> = [0, 11, 12, 267, 268, 523, 524, 65803, 65804, 65805 + 256]
            .into_iter()
            .map(|l| block_to_path(l, 256))
            .collect();
        let want: [&[usize]; 10] = [
            &[0],
            &[11],
            &[12, 0],
            &[12, 255],
            &[13, 0, 0],
            &[13, 0, 255],
            &[13, 1, 0],
            &[13, 255, 255],
            &[14, 0, 0, 0],
            &[14, 0, 1, 1],
        ];
        assert_eq!(paths, want.map(<[usize]>::to_vec));
    }
}
