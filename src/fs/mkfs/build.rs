//! The image builder behind [`super::mkfs`]: the steps of mke2fs' `main()` after
//! `ext2fs_initialize()`, on in-memory bitmaps and descriptors, then one pass that writes every
//! non-zero block to a fresh [`Disk`]. This file holds the builder, its block allocator, the
//! group tables and the final write; the files it creates (steps 2–5) are in `files.rs`.
//!
//! Order, as mke2fs does it (it fixes where every block lands):
//! 1. `ext2fs_allocate_tables()`: per group, superblock copy + descriptor table (if
//!    `bg_has_super`), block bitmap, inode bitmap, inode table;
//! 2. `create_root_dir()`: inode 2, one block, the first free one of group 0;
//! 3. `create_lost_and_found()`: inode 11, expanded block by block up to 16 KiB;
//! 4. `reserve_inodes()`: inodes 1–10 marked in use;
//! 5. `ext2fs_add_journal_inode3()`: inode 8 and its blocks, the JBD2 superblock in block 0;
//! 6. `ext2fs_close()`: checksums, free counts, superblock and descriptor backups.

use super::files::{EXTRA_ISIZE, LPF_INO};
use super::{Geometry, MkfsOpts, INODE_SIZE};
use crate::dev::{Disk, Zone};
use crate::error::{Error, Result};
use crate::format::bitmap;
use crate::format::extent::EXT_INIT_MAX_LEN;
use crate::format::group_desc::{self, GroupDesc, EXT4_BG_INODE_ZEROED};
use crate::format::inode::{self as fi, Inode, EXT4_JOURNAL_INO};
use crate::format::superblock::{self as sbf, Superblock};
use crate::fs::mount::{self, EPOCH};
use crate::units::{Ino, Pblk};
use std::collections::BTreeMap;

/// A contiguous piece of a file: `len` blocks from logical `lblk` at physical `pblk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) lblk: u32,
    pub(super) pblk: u64,
    pub(super) len: u32,
}

/// The filesystem under construction.
pub(super) struct Builder<'a> {
    pub(super) geo: &'a Geometry,
    pub(super) opts: &'a MkfsOpts,
    pub(super) sb: Superblock,
    pub(super) gds: Vec<GroupDesc>,
    pub(super) block_bitmaps: Vec<Vec<u8>>,
    pub(super) inode_bitmaps: Vec<Vec<u8>>,
    /// The inodes that are not all-zero, by number.
    pub(super) inodes: BTreeMap<u32, Inode>,
    /// Directory blocks, map blocks and the journal superblock, by block number.
    pub(super) blocks: BTreeMap<u64, (Vec<u8>, Zone)>,
    /// The journal's data blocks (for the zone map).
    pub(super) journal_runs: Vec<Run>,
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

    pub(super) fn bs(&self) -> u32 {
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
    pub(super) fn alloc(&mut self, goal: u64) -> Result<u64> {
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
    pub(super) fn alloc_runs(&mut self, goal: u64, n: u32) -> Result<Vec<Run>> {
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

#[cfg(test)]
mod tests {
    use super::super::check::{check_files, check_tables, opts, Image};
    use super::super::{mkfs, MkfsOpts};
    use super::*;

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
}
