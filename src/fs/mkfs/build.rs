//! The image builder behind [`super::mkfs`]: the steps of mke2fs' `main()` after
//! `ext2fs_initialize()`, on in-memory bitmaps and descriptors, then one pass that writes every
//! non-zero block to a fresh [`Disk`].
//!
//! Order, as mke2fs does it (it fixes where every block lands):
//! 1. `ext2fs_allocate_tables()`: per group, superblock copy + descriptor table (if
//!    `bg_has_super`), block bitmap, inode bitmap, inode table;
//! 2. `create_root_dir()`: inode 2, one block, the first free one of group 0;
//! 3. `create_lost_and_found()`: inode 11, expanded block by block up to 16 KiB;
//! 4. `reserve_inodes()`: inodes 1–10 marked in use;
//! 5. `ext2fs_add_journal_inode3()`: inode 8 and its blocks, the JBD2 superblock in block 0;
//! 6. `ext2fs_close()`: checksums, free counts, superblock and descriptor backups.

use super::{Geometry, MkfsOpts, INODE_SIZE};
use crate::dev::{Disk, Zone};
use crate::error::{Error, Result};
use crate::format::bitmap;
use crate::format::dir::{self, EXT4_FT_DIR};
use crate::format::extent::{self, Extent, ExtentIdx, ExtentNode, EXT_INIT_MAX_LEN};
use crate::format::group_desc::{self, GroupDesc, EXT4_BG_INODE_ZEROED};
use crate::format::indirect::{self, EXT4_NDIR_BLOCKS};
use crate::format::inode::{self as fi, Inode, EXT4_JOURNAL_INO, EXT4_ROOT_INO};
use crate::format::jbd2::JournalSuperblock;
use crate::format::superblock::{self as sbf, Superblock};
use crate::fs::mount::{self, EPOCH};
use crate::units::{Ino, Lblk, Pblk};
use std::collections::BTreeMap;

/// The lost+found inode (`EXT2_FIRST_INO` of a revision-1 filesystem).
const LPF_INO: u32 = 11;
/// mke2fs grows lost+found to this many bytes (`create_lost_and_found()`).
const LPF_BYTES: u32 = 16 * 1024;
/// `sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE`: `i_extra_isize` of new inodes.
const EXTRA_ISIZE: u16 = 32;

/// A contiguous piece of a file: `len` blocks from logical `lblk` at physical `pblk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    lblk: u32,
    pblk: u64,
    len: u32,
}

/// The filesystem under construction.
pub(super) struct Builder<'a> {
    geo: &'a Geometry,
    opts: &'a MkfsOpts,
    sb: Superblock,
    gds: Vec<GroupDesc>,
    block_bitmaps: Vec<Vec<u8>>,
    inode_bitmaps: Vec<Vec<u8>>,
    /// The inodes that are not all-zero, by number.
    inodes: BTreeMap<u32, Inode>,
    /// Directory blocks, map blocks and the journal superblock, by block number.
    blocks: BTreeMap<u64, (Vec<u8>, Zone)>,
    /// The journal's data blocks (for the zone map).
    journal_runs: Vec<Run>,
}

impl<'a> Builder<'a> {
    /// An empty builder: superblock fields set, nothing allocated.
    pub(super) fn new(geo: &'a Geometry, opts: &'a MkfsOpts) -> Builder<'a> {
        let bs = geo.block_size as usize;
        let groups = geo.groups as usize;
        Builder {
            geo,
            opts,
            sb: init_superblock(geo, opts),
            gds: vec![GroupDesc::new(sbf::EXT4_MIN_DESC_SIZE); groups],
            block_bitmaps: vec![vec![0; bs]; groups],
            inode_bitmaps: vec![vec![0; bs]; groups],
            inodes: BTreeMap::new(),
            blocks: BTreeMap::new(),
            journal_runs: Vec::new(),
        }
    }

    /// Run every step (see the module doc) and write the image.
    pub(super) fn build(mut self) -> Result<Disk> {
        self.allocate_tables();
        let root_blk = self.create_root_dir()?;
        self.create_lost_and_found(root_blk + 1)?;
        self.reserve_inodes();
        self.create_journal()?;
        self.finish();
        self.write()
    }

    fn bs(&self) -> u32 {
        self.geo.block_size
    }

    /// Model of `ext2fs_allocate_tables()` without flex_bg, plus `ext2fs_reserve_super_and_bgd()`:
    /// each group's metadata at its start, marked in its block bitmap.
    fn allocate_tables(&mut self) {
        let itb = u64::from(self.geo.itable_blocks);
        for g in 0..self.geo.groups {
            let start = self.geo.group_first_block(g);
            let used = self.geo.group_overhead(g);
            let bb = start + used - itb - 2;
            let gd = &mut self.gds[g as usize];
            (gd.bg_block_bitmap, gd.bg_inode_bitmap, gd.bg_inode_table) = (bb, bb + 1, bb + 2);
            gd.bg_free_blocks_count = (self.geo.blocks_in_group(g) - used) as u32;
            gd.bg_free_inodes_count = self.geo.inodes_per_group;
            (0..used as u32)
                .for_each(|bit| bitmap::set_bit(&mut self.block_bitmaps[g as usize], bit));
        }
    }

    /// Model of `ext2fs_new_block2()`: the first free block at or after `goal`, searching the
    /// following groups and wrapping; marked in use. `NoSpace` when every block is taken.
    fn alloc(&mut self, goal: u64) -> Result<u64> {
        let geo = self.geo;
        let first = u64::from(geo.first_data_block);
        let goal = if (first..geo.blocks_count).contains(&goal) {
            goal
        } else {
            first
        };
        let g0 = ((goal - first) / u64::from(geo.blocks_per_group)) as u32;
        for i in 0..=geo.groups {
            let g = (g0 + i) % geo.groups;
            let start = geo.group_first_block(g);
            let from = if i == 0 { (goal - start) as u32 } else { 0 };
            let end = geo.blocks_in_group(g) as u32;
            let bits = &mut self.block_bitmaps[g as usize];
            if let Some(bit) = bitmap::find_next_zero_bit(bits, from, end) {
                bitmap::set_bit(bits, bit);
                self.gds[g as usize].bg_free_blocks_count -= 1;
                return Ok(start + u64::from(bit));
            }
        }
        Err(Error::NoSpace)
    }

    /// `n` blocks allocated one after the other from `goal`, as runs of at most
    /// `EXT_INIT_MAX_LEN` blocks.
    fn alloc_runs(&mut self, goal: u64, n: u32) -> Result<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::new();
        let mut goal = goal;
        for lblk in 0..n {
            let b = self.alloc(goal)?;
            goal = b + 1;
            match runs.last_mut() {
                Some(r) if r.pblk + u64::from(r.len) == b && r.len < EXT_INIT_MAX_LEN => r.len += 1,
                _ => runs.push(Run {
                    lblk,
                    pblk: b,
                    len: 1,
                }),
            }
        }
        Ok(runs)
    }

    /// A new in-core inode as `ext2fs_write_new_inode()` writes it: every time `EPOCH`,
    /// `i_extra_isize` 32, generation 0.
    fn new_inode(mode: u16, links: u16) -> Inode {
        let mut inode = Inode::new(INODE_SIZE as usize);
        inode.i_mode = mode;
        inode.i_links_count = links;
        (inode.i_atime, inode.i_ctime, inode.i_mtime, inode.i_crtime) =
            (EPOCH, EPOCH, EPOCH, EPOCH);
        inode.i_extra_isize = EXTRA_ISIZE;
        inode
    }

    /// Per-inode checksum seed (`ext4_inode_csum_seed()`, generation 0).
    fn inode_seed(&self, ino: u32) -> u32 {
        fi::inode_csum_seed(self.sb.csum_seed(), Ino(ino), 0)
    }

    /// Point `inode` at `runs` (file blocks 0..): an extent tree (in the inode if it fits,
    /// else one leaf block allocated after the data) or, without extents, the direct pointers
    /// (`runs` must then cover at most 12 blocks). Returns the number of map blocks used.
    fn map_runs(&mut self, inode: &mut Inode, ino: u32, runs: &[Run]) -> Result<u32> {
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
    fn set_sizes(&self, inode: &mut Inode, data: u32, meta: u32) -> Result<()> {
        let bs = u64::from(self.bs());
        inode.i_size = u64::from(data) * bs;
        inode.set_blocks_512(u64::from(data + meta) * bs / 512, true, self.bs())
    }

    /// Store directory block `buf` of `ino` at `pblk`, with its checksum tail filled in.
    fn put_dir_block(&mut self, ino: u32, pblk: u64, mut buf: Vec<u8>) {
        if self.opts.metadata_csum {
            dir::dirblock_csum_set(self.inode_seed(ino), &mut buf);
        }
        self.blocks.insert(pblk, (buf, Zone::DirData));
    }

    /// Mark inode `ino` in use in group 0's bitmap (a directory counts in `bg_used_dirs_count`).
    fn take_inode(&mut self, ino: u32, is_dir: bool) {
        let bit = (ino - 1) % self.geo.inodes_per_group;
        bitmap::set_bit(&mut self.inode_bitmaps[0], bit);
        self.gds[0].bg_free_inodes_count -= 1;
        if is_dir {
            self.gds[0].bg_used_dirs_count += 1;
        }
    }

    /// Model of `create_root_dir()` (`ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, 0)`): one
    /// block holding `.` and `..`, then the `lost+found` entry that `ext2fs_mkdir()` links.
    fn create_root_dir(&mut self) -> Result<u64> {
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
    fn create_lost_and_found(&mut self, goal: u64) -> Result<()> {
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
    fn reserve_inodes(&mut self) {
        for ino in 1..LPF_INO {
            if ino != EXT4_ROOT_INO {
                self.take_inode(ino, false);
            }
        }
    }

    /// Model of `get_midpoint_journal_block()` (lib/ext2fs/mkjournal.c) without flex_bg: the
    /// first block of the group, among the middle one and its two neighbours, with the most
    /// free blocks (the first such on a tie).
    fn midpoint_journal_block(&self) -> u64 {
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
    fn create_journal(&mut self) -> Result<()> {
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
        self.blocks.insert(runs[0].pblk, (buf, Zone::Journal));
        self.sb.s_jnl_blocks[..indirect::EXT4_N_BLOCKS].copy_from_slice(&inode.i_block);
        self.sb.s_jnl_blocks[15] = (inode.i_size >> 32) as u32;
        self.sb.s_jnl_blocks[16] = inode.i_size as u32; // truncation intended: i_size_lo
        self.inodes.insert(EXT4_JOURNAL_INO, inode);
        self.journal_runs = runs;
        Ok(())
    }

    /// Map `n` blocks through `i_block` with IND/DIND/TIND blocks, allocating in the order of
    /// `ext4_alloc_branch()` (each missing map block right before the block it leads to), from
    /// `goal`. Returns the data runs and the number of map blocks.
    fn map_indirect(&mut self, inode: &mut Inode, n: u32, goal: u64) -> Result<(Vec<Run>, u32)> {
        let bs = self.bs() as usize;
        let mut maps: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut runs: Vec<Run> = Vec::new();
        let mut goal = goal;
        for lblk in 0..n {
            let path = block_to_path(lblk, indirect::ptrs_per_block(self.bs()));
            let mut parent: Option<u64> = None;
            for (depth, &off) in path.iter().enumerate() {
                let cur = match parent {
                    None => inode.i_block[off],
                    Some(p) => maps.get(&p).map_or(0, |m| indirect::get_ptr(m, off)),
                };
                let blk = if cur != 0 {
                    u64::from(cur)
                } else {
                    let b = self.alloc(goal)?;
                    goal = b + 1;
                    let b32 = b as u32; // OK: blocks_count < 2^32 (checked by geometry)
                    match parent.and_then(|p| maps.get_mut(&p)) {
                        Some(m) => indirect::set_ptr(m, off, b32),
                        None => inode.i_block[off] = b32,
                    }
                    if depth + 1 < path.len() {
                        maps.insert(b, vec![0; bs]);
                    }
                    b
                };
                parent = Some(blk);
            }
            let b = parent.unwrap_or_default();
            match runs.last_mut() {
                Some(r) if r.pblk + u64::from(r.len) == b => r.len += 1,
                _ => runs.push(Run {
                    lblk,
                    pblk: b,
                    len: 1,
                }),
            }
        }
        let meta = maps.len() as u32;
        for (b, m) in maps {
            self.blocks.insert(b, (m, Zone::TreeMeta));
        }
        Ok((runs, meta))
    }

    /// What `ext2fs_close()` settles before writing: bitmap padding and checksums, descriptor
    /// flags, `bg_itable_unused` and checksums, the superblock's free counts.
    fn finish(&mut self) {
        let geo = self.geo;
        let bits = geo.block_size * 8;
        let ipg = geo.inodes_per_group;
        let csum = self.opts.metadata_csum;
        for g in 0..geo.groups as usize {
            let in_group = geo.blocks_in_group(g as u32) as u32;
            bitmap::mark_bitmap_end(in_group, bits, &mut self.block_bitmaps[g]);
            bitmap::mark_bitmap_end(ipg, bits, &mut self.inode_bitmaps[g]);
            let gd = &mut self.gds[g];
            bitmap::block_bitmap_csum_set(&self.sb, gd, &self.block_bitmaps[g]);
            bitmap::inode_bitmap_csum_set(&self.sb, gd, &self.inode_bitmaps[g]);
            gd.bg_flags = EXT4_BG_INODE_ZEROED;
            if csum {
                gd.bg_itable_unused = if g == 0 {
                    ipg - self.sb.s_first_ino
                } else {
                    ipg
                };
            }
            gd.csum_set(&self.sb, g as u32);
        }
        self.sb.s_free_blocks_count = self
            .gds
            .iter()
            .map(|gd| u64::from(gd.bg_free_blocks_count))
            .sum();
        self.sb.s_free_inodes_count = self.gds.iter().map(|gd| gd.bg_free_inodes_count).sum();
    }

    /// Write every non-zero block, flush, install the zone map and freeze.
    fn write(self) -> Result<Disk> {
        let geo = self.geo;
        let bs = geo.block_size as usize;
        let mut disk = Disk::new(geo.block_size, geo.device_blocks);
        let mut gdt = vec![0u8; geo.gdt_blocks as usize * bs];
        group_desc::write_table(&self.sb, &self.gds, &mut gdt);
        for g in (0..geo.groups).filter(|&g| geo.has_super(g)) {
            let start = geo.group_first_block(g);
            let (blk, off, sb) = if g == 0 {
                let at = sbf::SUPERBLOCK_OFFSET;
                (at / bs as u64, (at % bs as u64) as usize, self.sb.clone())
            } else {
                (start, 0, backup_superblock(&self.sb, g))
            };
            let mut buf = vec![0u8; bs];
            buf[off..off + sbf::SUPERBLOCK_SIZE].copy_from_slice(&sb.to_bytes());
            disk.write_as(Pblk(blk), &buf, Zone::Superblock)?;
            for (i, chunk) in gdt.chunks(bs).enumerate() {
                disk.write_as(Pblk(start + 1 + i as u64), chunk, Zone::GroupDesc)?;
            }
        }
        for (g, gd) in self.gds.iter().enumerate() {
            write_nonzero(
                &mut disk,
                gd.bg_block_bitmap,
                &self.block_bitmaps[g],
                Zone::Bitmap,
            )?;
            write_nonzero(
                &mut disk,
                gd.bg_inode_bitmap,
                &self.inode_bitmaps[g],
                Zone::Bitmap,
            )?;
        }
        for (blk, buf) in self.inode_table_blocks() {
            disk.write_as(Pblk(blk), &buf, Zone::InodeTable)?;
        }
        for (blk, (buf, zone)) in &self.blocks {
            disk.write_as(Pblk(*blk), buf, *zone)?;
        }
        disk.flush()?;
        let mut zones = mount::zone_map(&self.sb, &self.gds);
        for r in &self.journal_runs {
            zones.try_add(Pblk(r.pblk), u64::from(r.len), Zone::Journal);
        }
        disk.set_zone_map(zones);
        disk.freeze();
        Ok(disk)
    }

    /// The inode-table blocks holding a non-zero inode, each inode serialized with its
    /// checksum (with metadata_csum).
    fn inode_table_blocks(&self) -> BTreeMap<u64, Vec<u8>> {
        let bs = self.bs() as usize;
        let isz = INODE_SIZE as usize;
        let mut out: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for (&ino, inode) in &self.inodes {
            let idx = ((ino - 1) % self.geo.inodes_per_group) as usize;
            let g = ((ino - 1) / self.geo.inodes_per_group) as usize;
            let blk = self.gds[g].bg_inode_table + (idx * isz / bs) as u64;
            let mut raw = inode.to_bytes();
            if self.opts.metadata_csum {
                fi::inode_csum_set(self.sb.csum_seed(), Ino(ino), &mut raw, isz);
            }
            let off = idx * isz % bs;
            out.entry(blk).or_insert_with(|| vec![0; bs])[off..off + isz].copy_from_slice(&raw);
        }
        out
    }
}

/// The superblock fields `ext2fs_initialize()` and mke2fs set (free counts come later).
fn init_superblock(geo: &Geometry, opts: &MkfsOpts) -> Superblock {
    let mut sb = Superblock::new();
    sb.s_inodes_count = geo.inodes_count;
    sb.s_blocks_count = geo.blocks_count;
    sb.s_r_blocks_count = geo.r_blocks_count;
    sb.s_first_data_block = geo.first_data_block;
    sb.s_log_block_size = geo.block_size.trailing_zeros() - 10;
    sb.s_log_cluster_size = sb.s_log_block_size;
    (sb.s_blocks_per_group, sb.s_clusters_per_group) = (geo.blocks_per_group, geo.blocks_per_group);
    sb.s_inodes_per_group = geo.inodes_per_group;
    (sb.s_wtime, sb.s_lastcheck, sb.s_mkfs_time) = (EPOCH, EPOCH, EPOCH);
    sb.s_max_mnt_count = 0xFFFF;
    sb.s_state = sbf::EXT4_VALID_FS;
    sb.s_errors = sbf::EXT4_ERRORS_CONTINUE;
    sb.s_creator_os = sbf::EXT4_OS_LINUX;
    sb.s_rev_level = sbf::EXT4_DYNAMIC_REV;
    (sb.s_first_ino, sb.s_inode_size) = (LPF_INO, INODE_SIZE as u16);
    sb.s_feature_compat = sbf::EXT4_FEATURE_COMPAT_HAS_JOURNAL;
    sb.s_feature_incompat = sbf::EXT4_FEATURE_INCOMPAT_FILETYPE;
    if opts.extents {
        sb.s_feature_incompat |= sbf::EXT4_FEATURE_INCOMPAT_EXTENTS;
    }
    sb.s_feature_ro_compat = sbf::EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER
        | sbf::EXT4_FEATURE_RO_COMPAT_LARGE_FILE
        | sbf::EXT4_FEATURE_RO_COMPAT_HUGE_FILE
        | sbf::EXT4_FEATURE_RO_COMPAT_DIR_NLINK
        | sbf::EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE;
    if opts.metadata_csum {
        sb.s_feature_ro_compat |= sbf::EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
        sb.s_checksum_type = sbf::EXT4_CRC32C_CHKSUM;
    }
    sb.s_uuid = opts.uuid;
    sb.s_journal_inum = EXT4_JOURNAL_INO;
    sb.s_jnl_backup_type = sbf::EXT3_JNL_BACKUP_BLOCKS;
    (sb.s_min_extra_isize, sb.s_want_extra_isize) = (EXTRA_ISIZE, EXTRA_ISIZE);
    sb.s_flags = sbf::EXT2_FLAGS_SIGNED_HASH;
    sb
}

/// The copy `ext2fs_flush()` writes to group `g` (`write_backup_super()`): `s_block_group_nr`
/// set, and `s_state` without `EXT4_VALID_FS` (mke2fs clears it while writing the backups).
fn backup_superblock(sb: &Superblock, g: u32) -> Superblock {
    let mut copy = sb.clone();
    copy.s_block_group_nr = g as u16; // OK: groups with a backup fit 16 bits below 2^32 blocks
    copy.s_state &= !sbf::EXT4_VALID_FS;
    copy
}

fn write_nonzero(disk: &mut Disk, blk: u64, buf: &[u8], zone: Zone) -> Result<()> {
    if buf.iter().any(|&b| b != 0) {
        disk.write_as(Pblk(blk), buf, zone)?;
    }
    Ok(())
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
    let path: Vec<u64> = if l < direct {
        vec![l]
    } else if l - direct < n {
        vec![12, l - direct]
    } else if l - direct - n < n * n {
        let r = l - direct - n;
        vec![13, r / n, r % n]
    } else {
        let r = l - direct - n - n * n;
        vec![14, r / (n * n), (r / n) % n, r % n]
    };
    path.into_iter().map(|x| x as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{geometry, mkfs};
    use super::*;
    use crate::format::bitmap::count_set;
    use crate::format::blockmap::{self, BlockMap, WalkCtx};
    use crate::format::dir::parse_block;
    use std::collections::BTreeSet;

    fn opts(size: u64, bs: u32, extents: bool, csum: bool) -> MkfsOpts {
        MkfsOpts {
            size_bytes: size,
            block_size: bs,
            extents,
            metadata_csum: csum,
            ..MkfsOpts::default()
        }
    }

    /// A made filesystem read back through the format layer only.
    struct Image {
        disk: Disk,
        sb: Superblock,
        gds: Vec<GroupDesc>,
    }

    impl Image {
        fn new(o: &MkfsOpts) -> Image {
            let disk = mkfs(o).unwrap();
            let bs = u64::from(o.block_size);
            let head = disk.peek_block(Pblk(sbf::SUPERBLOCK_OFFSET / bs));
            let off = (sbf::SUPERBLOCK_OFFSET % bs) as usize;
            let sb = Superblock::parse(&head[off..off + sbf::SUPERBLOCK_SIZE]).unwrap();
            let gdt: Vec<u8> = (0..u64::from(sb.gdt_blocks()))
                .flat_map(|i| disk.peek_block(Pblk(sb.gdt_block(0) + i)).to_vec())
                .collect();
            let gds = group_desc::parse_table(&sb, &gdt).unwrap();
            Image { disk, sb, gds }
        }

        fn block(&self, b: u64) -> Vec<u8> {
            self.disk.peek_block(Pblk(b)).to_vec()
        }

        fn inode(&self, ino: u32) -> (Inode, Vec<u8>) {
            let isz = INODE_SIZE as usize;
            let (g, i) = (
                (ino - 1) / self.sb.s_inodes_per_group,
                (ino - 1) % self.sb.s_inodes_per_group,
            );
            let byte = self.gds[g as usize].bg_inode_table * u64::from(self.sb.block_size())
                + u64::from(i) * u64::from(INODE_SIZE);
            let bs = u64::from(self.sb.block_size());
            let raw = self.block(byte / bs)[(byte % bs) as usize..][..isz].to_vec();
            (Inode::parse(&raw, isz, Ino(ino)).unwrap(), raw)
        }

        fn map(&self, ino: u32) -> BlockMap {
            let (inode, _) = self.inode(ino);
            let seed = self
                .sb
                .metadata_csum()
                .then(|| fi::inode_csum_seed(self.sb.csum_seed(), Ino(ino), 0));
            let disk = self.disk.clone();
            let mut read = |b: Pblk| Ok(disk.peek_block(b).to_vec());
            let mut ctx = WalkCtx {
                ino: Ino(ino),
                block_size: self.sb.block_size(),
                first_block: u64::from(self.sb.s_first_data_block),
                nr_blocks: self.sb.s_blocks_count,
                csum_seed: seed,
                read: &mut read,
            };
            blockmap::walk(
                &mut ctx,
                &inode.i_block_bytes(),
                inode.has_flag(fi::EXT4_EXTENTS_FL),
            )
            .unwrap()
        }

        fn block_in_use(&self, b: u64) -> bool {
            let g = self.sb.group_of_block(b);
            let bits = self.block(self.gds[g as usize].bg_block_bitmap);
            bitmap::test_bit(&bits, (b - self.sb.group_first_block(g)) as u32)
        }
    }

    /// Superblock, descriptors, bitmaps: parse, checksums, exact free counts, padding.
    fn check_tables(img: &Image) {
        let sb = &img.sb;
        sb.verify_checksum().unwrap();
        sb.check_supported().unwrap();
        group_desc::check_descriptors(sb, &img.gds).unwrap();
        let bits = sb.block_size() * 8;
        let (mut free_b, mut free_i) = (0u64, 0u32);
        for (g, gd) in (0u32..).zip(&img.gds) {
            let bb = img.block(gd.bg_block_bitmap);
            let ib = img.block(gd.bg_inode_bitmap);
            let n = sb.blocks_in_group(g);
            assert_eq!(
                n - count_set(&bb, 0, n),
                gd.bg_free_blocks_count,
                "group {g}"
            );
            assert_eq!(count_set(&bb, n, bits), bits - n, "group {g} block padding");
            let ipg = sb.s_inodes_per_group;
            assert_eq!(
                ipg - count_set(&ib, 0, ipg),
                gd.bg_free_inodes_count,
                "group {g}"
            );
            assert_eq!(
                count_set(&ib, ipg, bits),
                bits - ipg,
                "group {g} inode padding"
            );
            bitmap::block_bitmap_csum_verify(sb, g, gd, &bb).unwrap();
            bitmap::inode_bitmap_csum_verify(sb, g, gd, &ib).unwrap();
            assert_eq!(gd.bg_flags, EXT4_BG_INODE_ZEROED);
            let unused = match (sb.metadata_csum(), g) {
                (false, _) => 0,
                (true, 0) => ipg - 11,
                (true, _) => ipg,
            };
            assert_eq!(gd.bg_itable_unused, unused, "group {g}");
            assert_eq!(gd.bg_used_dirs_count, if g == 0 { 2 } else { 0 });
            (free_b, free_i) = (
                free_b + u64::from(gd.bg_free_blocks_count),
                free_i + gd.bg_free_inodes_count,
            );
            if g > 0 && sb.bg_has_super(g) {
                let copy = Superblock::parse(&img.block(sb.group_first_block(g))[..1024]).unwrap();
                copy.verify_checksum().unwrap();
                assert_eq!((copy.s_block_group_nr, copy.s_state), (g as u16, 0));
            }
        }
        assert_eq!(
            (sb.s_free_blocks_count, sb.s_free_inodes_count),
            (free_b, free_i)
        );
        assert_eq!(free_i, sb.s_inodes_count - 11);
    }

    /// Inodes 2, 8, 11: checksums, sizes, block counts, maps inside the bitmaps, no block
    /// owned twice; directory blocks and the journal superblock.
    fn check_files(img: &Image, o: &MkfsOpts) {
        let sb = &img.sb;
        let bs = sb.block_size();
        let jblocks = geometry(o).unwrap().journal_blocks;
        let lpf = lost_and_found_blocks(bs);
        let mut owned = BTreeSet::new();
        for (ino, mode, links, nblocks) in [
            (2, 0o40755, 3, 1),
            (11, 0o40700, 2, lpf),
            (8, 0o100600, 1, jblocks),
        ] {
            let (inode, raw) = img.inode(ino);
            if o.metadata_csum {
                assert!(
                    fi::inode_csum_verify(sb.csum_seed(), Ino(ino), &raw, 256),
                    "inode {ino}"
                );
            }
            assert_eq!(
                (inode.i_mode, inode.i_links_count, inode.i_extra_isize),
                (mode, links, 32)
            );
            assert_eq!(inode.has_flag(fi::EXT4_EXTENTS_FL), o.extents);
            assert_eq!(
                (inode.i_mtime, inode.i_crtime, inode.i_generation),
                (EPOCH, EPOCH, 0)
            );
            let map = img.map(ino);
            assert_eq!(map.runs[0].lblk, 0);
            assert_eq!(
                (map.data_blocks(), inode.i_size),
                (u64::from(nblocks), u64::from(nblocks) * u64::from(bs))
            );
            let total = map.data_blocks() + map.meta.len() as u64;
            assert_eq!(
                inode.i_blocks,
                total * u64::from(bs) / 512,
                "inode {ino} i_blocks"
            );
            let blocks = map
                .runs
                .iter()
                .flat_map(|r| (0..u64::from(r.len)).map(move |i| r.pblk + i));
            for b in blocks.chain(map.meta.iter().map(|m| m.pblk)) {
                assert!(
                    img.block_in_use(b) && owned.insert(b),
                    "inode {ino}: block {b}"
                );
            }
            if ino != 8 {
                for (i, b) in (0u64..).zip(
                    map.runs
                        .iter()
                        .flat_map(|r| (0..u64::from(r.len)).map(move |i| r.pblk + i)),
                ) {
                    check_dir_block(img, ino, &img.block(b), i);
                }
            } else {
                assert_eq!(sb.s_jnl_blocks[..15], inode.i_block);
                assert_eq!(sb.s_jnl_blocks[15..], [0, inode.i_size as u32]);
                let jsb = JournalSuperblock::parse(&img.block(map.runs[0].pblk)).unwrap();
                jsb.check_geometry(bs, u64::from(jblocks)).unwrap();
                assert_eq!(
                    (jsb.s_maxlen, jsb.csum_v2or3(), jsb.s_uuid),
                    (jblocks, o.metadata_csum, o.uuid)
                );
            }
        }
        let meta: u64 = (0..sb.groups_count())
            .map(|g| {
                let has = if sb.bg_has_super(g) {
                    1 + u64::from(sb.gdt_blocks())
                } else {
                    0
                };
                has + 2 + u64::from(sb.itable_blocks())
            })
            .sum();
        let used = sb.s_blocks_count - u64::from(sb.s_first_data_block) - sb.s_free_blocks_count;
        assert_eq!(used, meta + owned.len() as u64, "every used block is owned");
    }

    fn check_dir_block(img: &Image, ino: u32, buf: &[u8], lblk: u64) {
        let csum = img.sb.metadata_csum();
        if csum {
            let seed = fi::inode_csum_seed(img.sb.csum_seed(), Ino(ino), 0);
            dir::dirblock_csum_verify(seed, buf, Ino(ino)).unwrap();
        }
        let names: Vec<(u32, Vec<u8>)> = parse_block(buf, Ino(ino), csum)
            .unwrap()
            .into_iter()
            .filter(|e| e.inode != 0)
            .map(|e| (e.inode, e.name))
            .collect();
        let want: Vec<(u32, &[u8])> = match (ino, lblk) {
            (2, _) => vec![(2, b"."), (2, b".."), (11, b"lost+found")],
            (_, 0) => vec![(11, b"."), (2, b"..")],
            _ => vec![],
        };
        assert_eq!(
            names,
            want.into_iter()
                .map(|(i, n)| (i, n.to_vec()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn images_are_consistent_for_every_feature_combination() {
        for bs in [1024, 2048, 4096] {
            for (extents, csum) in [(true, true), (true, false), (false, true), (false, false)] {
                let o = opts(20 << 20, bs, extents, csum);
                let img = Image::new(&o);
                check_tables(&img);
                check_files(&img, &o);
            }
        }
    }

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
    fn layout_matches_mke2fs() {
        // 64 MiB at 1 KiB (mke2fs 1.47 -O ^64bit,^flex_bg,^resize_inode,^dir_index,^ext_attr):
        // root at 517, lost+found 518-529, journal 16899-20994 in group 2; without extents
        // the journal follows lost+found with IND at 542 and DIND at 799.
        let img = Image::new(&MkfsOpts::default());
        let first = |ino| {
            img.map(ino)
                .runs
                .iter()
                .map(|r| (r.pblk, r.len))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (first(2), first(11), first(8)),
            (vec![(517, 1)], vec![(518, 12)], vec![(16899, 4096)])
        );
        assert_eq!(
            (img.sb.s_free_blocks_count, img.sb.s_r_blocks_count),
            (57304, 3276)
        );
        let img = Image::new(&opts(64 << 20, 1024, false, true));
        let meta: Vec<u64> = img.map(8).meta.iter().map(|m| m.pblk).take(3).collect();
        assert_eq!(meta, [542, 799, 800]);
        assert_eq!(img.map(8).runs[0].pblk, 530);
    }

    #[test]
    fn same_options_give_identical_disks() {
        let o = opts(20 << 20, 1024, true, true);
        let (a, b) = (mkfs(&o).unwrap(), mkfs(&o).unwrap());
        let same = |x: &Disk, y: &Disk| {
            (0..x.nr_blocks()).all(|i| x.peek_block(Pblk(i)) == y.peek_block(Pblk(i)))
        };
        assert!(same(&a, &b));
        assert_eq!(a.overlay_blocks(), 0, "frozen");
        assert!(a.log().is_empty());
        let mut other = o.clone();
        other.uuid[15] ^= 1;
        assert!(!same(&a, &mkfs(&other).unwrap()));
    }

    #[test]
    fn zones_cover_the_metadata_and_the_journal() {
        let img = Image::new(&MkfsOpts::default());
        let zone = |b| img.disk.zone_of(Pblk(b));
        assert_eq!(
            [zone(1), zone(2), zone(3), zone(5), zone(16899), zone(20994)],
            [
                Zone::Superblock,
                Zone::GroupDesc,
                Zone::Bitmap,
                Zone::InodeTable,
                Zone::Journal,
                Zone::Journal
            ]
        );
        assert_eq!((zone(517), zone(20995)), (Zone::Unknown, Zone::Unknown));
        // Only non-zero blocks are stored: tables and bitmaps, 13 directory blocks, 1 journal block.
        assert!(
            img.disk.base_blocks() < 60,
            "{} blocks stored",
            img.disk.base_blocks()
        );
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
