//! e4fuzz's own mke2fs: a model of e2fsprogs' `mke2fs` (misc/mke2fs.c and the library calls it
//! makes: `ext2fs_initialize()`, `ext2fs_allocate_tables()`, `ext2fs_mkdir()`,
//! `ext2fs_expand_dir()`, `ext2fs_add_journal_inode3()`) for the one feature set the engine is
//! built around. [`mkfs`] returns a fresh, durable, frozen [`Disk`]; nothing touches the host.
//!
//! # Features (each checked against e2fsck 1.47)
//!
//! `has_journal`, `filetype`, `sparse_super`, `large_file`, `huge_file`, `dir_nlink`,
//! `extra_isize` (256-byte inodes, `i_extra_isize` 32), `extent` unless
//! [`MkfsOpts::extents`] is off, `metadata_csum` unless [`MkfsOpts::metadata_csum`] is off. Without
//! metadata_csum there is no `uninit_bg` either: descriptors carry no checksum and no
//! `bg_itable_unused`. Never: `64bit` (32-byte descriptors), `flex_bg`, `resize_inode`,
//! `dir_index` (directories stay linear), `ext_attr`.
//!
//! # Geometry ([`geometry`], model of `ext2fs_initialize()`)
//!
//! The device size is rounded down to whole 4 KiB pages; `blocks_per_group` = 8·bs; groups =
//! ⌈(blocks − first_data_block) / bpg⌉, and a last group shorter than its own metadata + 50
//! blocks is dropped; inodes = size / inode ratio (4096 below 512 MiB, 16384 above, as
//! mke2fs.conf's `small` and default types), spread over the groups and rounded up to fill
//! whole inode-table blocks, then down to a multiple of 8 (if that overflows a bitmap block,
//! `blocks_per_group` shrinks by 8 and everything is tried again); 5 % of the blocks reserved;
//! the journal of `ext2fs_default_journal_size()`.
//!
//! # Layout (no flex_bg: every group holds its own metadata)
//!
//! ```text
//! group g: [superblock copy, descriptor table]  if bg_has_super(g)
//!          block bitmap, inode bitmap, inode table (zeroed: flags INODE_ZEROED only)
//!          data
//! group 0 data: root directory (1 block), lost+found (16 KiB, at most 12 blocks)
//! journal:      extent files: from the first block of the group near the middle with the most
//!               free blocks (get_midpoint_journal_block()); indirect files: after lost+found,
//!               each map block right before the blocks it maps (ext2fs_bmap2(BMAP_ALLOC))
//! ```
//!
//! Inodes 1–10 are reserved (set in the bitmap; 1, 3–7, 9, 10 stay all-zero), 2 is the root,
//! 8 the journal, 11 lost+found. Every timestamp is [`crate::fs::mount::EPOCH`]: the same
//! options give byte-identical images. Zero blocks (inode tables, journal body) are never
//! written, so the disk stays sparse.
//!
//! # Against mke2fs 1.47
//!
//! With `-I 256 -O ^64bit,^flex_bg,^resize_inode,^dir_index,^ext_attr` (plus `^extent`,
//! `^metadata_csum` to match the options) `dumpe2fs` prints the same groups, tables, free
//! blocks and inodes, and journal placement for both images (tested); the root directory,
//! lost+found and journal inode blocks are byte-identical for the same UUID and time. By
//! design we differ in: no `BLOCK_UNINIT`/`INODE_UNINIT` (every bitmap is written), reserved
//! inodes left all-zero (mke2fs stamps times and checksums on them), no hash seed, hash
//! version, default mount options, `s_kbytes_written` or `s_overhead_clusters` (`s_flags`
//! keeps mke2fs' signed-hash hint; `s_lpf_ino` stays 0 as mke2fs leaves it), and a
//! metadata_csum journal has csum v3 from the start (mke2fs leaves that to the first mount).
//!
//! The image builder lives in `build.rs` (allocator, tables,
//! write-out) and `files.rs` (root, lost+found, journal); `check.rs` reads images back for the
//! tests.

mod build;
#[cfg(test)]
mod check;
mod files;

use crate::dev::Disk;
use crate::error::{Error, Result};
use crate::format::jbd2::JBD2_MIN_JOURNAL_BLOCKS;
use crate::format::superblock::{Superblock, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER};

/// The default filesystem UUID: fixed, so images are reproducible (a version-4 layout).
pub const DEFAULT_UUID: [u8; 16] = [
    0xe4, 0xf0, 0x22, 0x00, 0x6d, 0x6b, 0x46, 0x73, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];
/// The default size: 64 MiB.
pub const DEFAULT_SIZE: u64 = 64 << 20;
/// Inode record size (`-I 256`).
pub const INODE_SIZE: u32 = 256;
/// `EXT2_MAX_BLOCK_SIZE * 1024`: the largest inode ratio mke2fs accepts.
const MAX_INODE_RATIO: u32 = 65536 * 1024;
/// mke2fs refuses a requested journal above this many blocks.
const MAX_JOURNAL_BLOCKS: u32 = 10_240_000;
/// `sys_page_size` of mke2fs on x86: a device size is rounded down to whole pages.
const PAGE_SIZE: u32 = 4096;
/// mke2fs drops a last group that has fewer than this many blocks past its metadata.
const MIN_LAST_GROUP_DATA: u64 = 50;

/// What to build. `Default`: 64 MiB, 1 KiB blocks, extents and metadata_csum on, the default
/// journal size, [`DEFAULT_UUID`], the mke2fs.conf inode ratio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MkfsOpts {
    /// Device size in bytes; must be a multiple of the block size.
    pub size_bytes: u64,
    /// Block size: 1024, 2048 or 4096.
    pub block_size: u32,
    /// The `extent` feature: root, lost+found and the journal are extent-mapped.
    pub extents: bool,
    /// The `metadata_csum` feature (off: no descriptor checksums at all).
    pub metadata_csum: bool,
    /// Journal length in blocks (`mke2fs -J size=`), else `ext2fs_default_journal_size()`.
    pub journal_blocks: Option<u32>,
    /// `s_uuid` (also the journal's UUID and the checksum seed's source).
    pub uuid: [u8; 16],
    /// Bytes per inode (`mke2fs -i`), else by size as mke2fs.conf says.
    pub inode_ratio: Option<u32>,
}

impl Default for MkfsOpts {
    fn default() -> MkfsOpts {
        MkfsOpts {
            size_bytes: DEFAULT_SIZE,
            block_size: 1024,
            extents: true,
            metadata_csum: true,
            journal_blocks: None,
            uuid: DEFAULT_UUID,
            inode_ratio: None,
        }
    }
}

/// The geometry mke2fs chooses for a set of options (before any block is allocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks of the device (`size_bytes / block_size`).
    pub device_blocks: u64,
    /// The device rounded down to whole 4 KiB pages, as mke2fs does with a size it reads
    /// from the device: the block count it starts from.
    pub param_blocks: u64,
    /// `s_blocks_count`: the device minus a dropped short last group.
    pub blocks_count: u64,
    /// `s_r_blocks_count`: 5 % of the blocks, reserved for root.
    pub r_blocks_count: u64,
    /// `s_first_data_block`: 1 with 1 KiB blocks, else 0.
    pub first_data_block: u32,
    /// `s_blocks_per_group`.
    pub blocks_per_group: u32,
    /// Number of block groups.
    pub groups: u32,
    /// Group descriptor table blocks.
    pub gdt_blocks: u32,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// Inode table blocks per group.
    pub itable_blocks: u32,
    /// Journal length in blocks (`s_maxlen` of the journal superblock).
    pub journal_blocks: u32,
}

impl Geometry {
    /// Blocks in group `g` (the last one may be short).
    pub fn blocks_in_group(&self, g: u32) -> u64 {
        let start = self.group_first_block(g);
        (self.blocks_count - start).min(u64::from(self.blocks_per_group))
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u32) -> u64 {
        u64::from(g) * u64::from(self.blocks_per_group) + u64::from(self.first_data_block)
    }

    /// Model of `ext4_bg_has_super()` with sparse_super: groups 0, 1 and powers of 3, 5, 7.
    pub fn has_super(&self, g: u32) -> bool {
        let mut sb = Superblock::new();
        sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER;
        sb.bg_has_super(g)
    }

    /// Metadata blocks at the start of group `g`: superblock copy and descriptor table (if
    /// any), both bitmaps, the inode table.
    pub fn group_overhead(&self, g: u32) -> u64 {
        let sb = if self.has_super(g) {
            1 + u64::from(self.gdt_blocks)
        } else {
            0
        };
        sb + 2 + u64::from(self.itable_blocks)
    }

    /// Free blocks right after the group tables are laid out (what mke2fs checks a requested
    /// journal against).
    pub fn initial_free_blocks(&self) -> u64 {
        (0..self.groups)
            .map(|g| self.blocks_in_group(g) - self.group_overhead(g))
            .sum()
    }
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

/// Model of `ext2fs_default_journal_size()` (lib/ext2fs/mkjournal.c): the journal length for a
/// filesystem of `num_blocks` blocks, `None` below 2048 blocks (too small for a journal).
pub fn default_journal_size(num_blocks: u64) -> Option<u32> {
    const TABLE: [(u64, u32); 8] = [
        (32768, 1024),
        (256 * 1024, 4096),
        (512 * 1024, 8192),
        (4096 * 1024, 16384),
        (8192 * 1024, 32768),
        (16384 * 1024, 65536),
        (32768 * 1024, 131_072),
        (u64::MAX, 262_144),
    ];
    if num_blocks < 2048 {
        return None;
    }
    TABLE
        .iter()
        .find(|(below, _)| num_blocks < *below)
        .map(|e| e.1)
}

/// The inode ratio of mke2fs.conf for a device of `blocks` blocks (mke2fs' size types:
/// `floppy` below 3 MiB, `small` below 512 MiB, default below 4 TiB, `big` below 16 TiB,
/// `huge` beyond).
pub fn default_inode_ratio(blocks: u64, block_size: u32) -> u32 {
    let meg = u64::from((1u32 << 20) / block_size);
    match blocks {
        b if b < 3 * meg => 8192,
        b if b < 512 * meg => 4096,
        b if b < 4 * 1024 * 1024 * meg => 16384,
        b if b < 16 * 1024 * 1024 * meg => 32768,
        _ => 65536,
    }
}

/// Check the options mke2fs checks up front: block size, size a multiple of it and within
/// 32-bit block numbers, inode ratio in range. Returns the device's block count.
fn check_opts(opts: &MkfsOpts) -> Result<u64> {
    let bs = opts.block_size;
    if !matches!(bs, 1024 | 2048 | 4096) {
        return Err(invalid(format!(
            "block size {bs}: must be 1024, 2048 or 4096"
        )));
    }
    if opts.size_bytes % u64::from(bs) != 0 {
        return Err(invalid(format!(
            "size {} is not a multiple of the block size {bs}",
            opts.size_bytes
        )));
    }
    let blocks = opts.size_bytes / u64::from(bs);
    if blocks > u64::from(u32::MAX) {
        return Err(invalid(format!(
            "{blocks} blocks: more than 2^32 - 1 needs the 64bit feature"
        )));
    }
    if let Some(r) = opts.inode_ratio {
        if !(1024..=MAX_INODE_RATIO).contains(&r) {
            return Err(invalid(format!(
                "inode ratio {r}: must be 1024..={MAX_INODE_RATIO}"
            )));
        }
    }
    Ok(blocks)
}

/// The number of inodes mke2fs asks for: bytes / inode ratio (the ratio from mke2fs.conf is
/// at least one block; a requested one is taken as is), refused if the inode tables would fill
/// the filesystem.
fn wanted_inodes(opts: &MkfsOpts, blocks: u64) -> Result<u64> {
    let bs = opts.block_size;
    let ratio = opts
        .inode_ratio
        .unwrap_or_else(|| default_inode_ratio(blocks, bs).max(bs));
    let inodes = blocks * u64::from(bs) / u64::from(ratio);
    if inodes * u64::from(INODE_SIZE) >= blocks * u64::from(bs) {
        return Err(invalid(format!("inode ratio {ratio}: too many inodes")));
    }
    Ok(inodes.max(12))
}

/// Model of `ext2fs_initialize()` (lib/ext2fs/initialize.c) and the parts of mke2fs' option
/// parsing it depends on (inode ratio by size type, the journal size of
/// `figure_journal_size()`). `Error::Invalid` for options mke2fs refuses and for a device too
/// small for one group plus a journal.
pub fn geometry(opts: &MkfsOpts) -> Result<Geometry> {
    let device_blocks = check_opts(opts)?;
    let bs = opts.block_size;
    let param_blocks = device_blocks & !u64::from(PAGE_SIZE / bs - 1);
    let inodes = wanted_inodes(opts, param_blocks)?;
    let mut geo = Geometry {
        block_size: bs,
        device_blocks,
        param_blocks,
        blocks_count: param_blocks,
        r_blocks_count: 0,
        first_data_block: u32::from(bs == 1024),
        blocks_per_group: 8 * bs,
        groups: 0,
        gdt_blocks: 0,
        inodes_per_group: 0,
        inodes_count: 0,
        itable_blocks: 0,
        journal_blocks: 0,
    };
    while !layout_groups(&mut geo, inodes)? {}
    geo.r_blocks_count = geo.blocks_count * 5 / 100;
    geo.journal_blocks = journal_size(opts, &geo)?;
    Ok(geo)
}

/// One pass of `ext2fs_initialize()`'s `retry:` loop: groups, inodes per group, and the
/// last-group check. `Ok(false)` when the geometry changed and the pass must run again.
fn layout_groups(geo: &mut Geometry, inodes: u64) -> Result<bool> {
    let (device_blocks, bs) = (geo.device_blocks, geo.block_size);
    let too_small = || {
        invalid(format!(
            "{device_blocks} blocks of {bs} bytes are too few for a filesystem"
        ))
    };
    let first = u64::from(geo.first_data_block);
    let bpg = u64::from(geo.blocks_per_group);
    if geo.blocks_count <= first {
        return Err(too_small());
    }
    let groups = (geo.blocks_count - first).div_ceil(bpg);
    geo.groups = u32::try_from(groups).map_err(|_| too_small())?;
    geo.gdt_blocks = geo.groups.div_ceil(geo.block_size / 32);
    let ipg = inodes.div_ceil(groups);
    if ipg > u64::from(8 * geo.block_size) {
        if geo.blocks_per_group < 256 {
            return Err(invalid("too many inodes for the block groups".into()));
        }
        geo.blocks_per_group -= 8;
        geo.blocks_count = geo.param_blocks;
        return Ok(false);
    }
    set_inodes_per_group(geo, ipg as u32)?;
    if 3 + u64::from(geo.itable_blocks) + u64::from(geo.gdt_blocks) > bpg {
        return Err(invalid("too many inodes for the block groups".into()));
    }
    let last = geo.groups - 1;
    let overhead = geo.group_overhead(last);
    let rem = (geo.blocks_count - first) % bpg;
    if groups == 1 && rem != 0 && rem < overhead {
        return Err(too_small());
    }
    if rem != 0 && rem < overhead + MIN_LAST_GROUP_DATA {
        geo.blocks_count -= rem;
        return Ok(false);
    }
    Ok(true)
}

/// The `ipg_retry:` step: fill whole inode-table blocks, keep a multiple of 8, and keep the
/// inode count within 32 bits.
fn set_inodes_per_group(geo: &mut Geometry, mut ipg: u32) -> Result<()> {
    let bs = geo.block_size;
    loop {
        let itb = (ipg * INODE_SIZE).div_ceil(bs);
        let full = (itb * bs / INODE_SIZE).max(8) & !7;
        let count = u64::from(full) * u64::from(geo.groups);
        if let Ok(c) = u32::try_from(count) {
            geo.inodes_per_group = full;
            geo.itable_blocks = (full * INODE_SIZE).div_ceil(bs);
            geo.inodes_count = c;
            return Ok(());
        }
        ipg -= 1;
    }
}

/// Model of `figure_journal_size()` (misc/util.c): the requested size within
/// 1024..=10240000 blocks and at most half the free blocks, else the default size.
fn journal_size(opts: &MkfsOpts, geo: &Geometry) -> Result<u32> {
    let Some(j) = opts.journal_blocks else {
        return default_journal_size(geo.blocks_count).ok_or_else(|| {
            invalid(format!(
                "{} blocks are too few for a journal",
                geo.blocks_count
            ))
        });
    };
    if !(JBD2_MIN_JOURNAL_BLOCKS..=MAX_JOURNAL_BLOCKS).contains(&j) {
        return Err(invalid(format!(
            "journal of {j} blocks: must be {JBD2_MIN_JOURNAL_BLOCKS}..={MAX_JOURNAL_BLOCKS}"
        )));
    }
    if u64::from(j) > geo.initial_free_blocks() / 2 {
        return Err(invalid(format!(
            "journal of {j} blocks is too big for a filesystem of {} blocks",
            geo.blocks_count
        )));
    }
    Ok(j)
}

/// Parse a size for `e4fuzz mkfs --size`: decimal bytes with an optional `K`, `M`, `G` or `T`
/// suffix (either case; powers of 1024). `Error::Invalid` for anything else or an overflow.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        invalid(format!(
            "size {s:?}: expected bytes with an optional K, M, G or T suffix"
        ))
    };
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// Parse `e4fuzz mkfs --block-size` (its range is [`geometry`]'s check).
pub fn parse_block_size(s: &str) -> Result<u32> {
    s.parse()
        .map_err(|_| invalid(format!("block size {s:?}: must be 1024, 2048 or 4096")))
}

/// Model of mke2fs: build a fresh filesystem as [`MkfsOpts`] describe (see the module doc for
/// what it holds). The returned disk has every write durable and is frozen (its clones are
/// O(1)). `Error::Invalid` for options mke2fs refuses or a device too small for them.
pub fn mkfs(opts: &MkfsOpts) -> Result<Disk> {
    let geo = geometry(opts)?;
    // The limits above leave at least 3/4 of the blocks free, so the allocator cannot run out;
    // should a future option break that, say so instead of ENOSPC.
    build::Builder::new(&geo, opts)
        .build()
        .map_err(|e| match e {
            Error::NoSpace => invalid(format!(
                "{} blocks leave no room for a journal of {} blocks",
                geo.blocks_count, geo.journal_blocks
            )),
            e => e,
        })
}

/// A fresh 4 MiB filesystem with the default options, mounted (unit tests of the engine).
#[cfg(test)]
pub(crate) fn small_fs() -> crate::fs::Fs {
    let opts = MkfsOpts {
        size_bytes: 4 << 20,
        ..MkfsOpts::default()
    };
    crate::fs::Fs::mount(mkfs(&opts).unwrap(), crate::fs::MountOpts::default()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(size: u64, bs: u32) -> MkfsOpts {
        MkfsOpts {
            size_bytes: size,
            block_size: bs,
            ..MkfsOpts::default()
        }
    }

    /// (blocks, groups, ipg, inodes, itable blocks, journal) as the real mke2fs 1.47 chose them.
    fn summary(g: &Geometry) -> (u64, u32, u32, u32, u32, u32) {
        (
            g.blocks_count,
            g.groups,
            g.inodes_per_group,
            g.inodes_count,
            g.itable_blocks,
            g.journal_blocks,
        )
    }

    #[test]
    fn geometry_matches_mke2fs_for_the_test_matrix() {
        let cases = [
            (64 << 20, 1024, (65536, 8, 2048, 16384, 512, 4096)),
            (64 << 20, 2048, (32768, 2, 8192, 16384, 1024, 4096)),
            (64 << 20, 4096, (16384, 1, 16384, 16384, 1024, 1024)),
            (1 << 30, 4096, (262_144, 8, 8192, 65536, 512, 8192)),
            (8 << 20, 4096, (2048, 1, 2048, 2048, 128, 1024)),
            (20 << 20, 1024, (20480, 3, 1704, 5112, 426, 1024)),
        ];
        for (size, bs, want) in cases {
            let g = geometry(&opts(size, bs)).unwrap();
            assert_eq!(summary(&g), want, "{size} bytes at {bs}");
            assert_eq!(g.r_blocks_count, g.blocks_count * 5 / 100);
        }
    }

    #[test]
    fn short_last_group_is_dropped_and_inodes_recomputed() {
        // 16484 KiB: the third group would hold 99 blocks, less than its 428 blocks of
        // tables + 50, so mke2fs drops it; the inode count still comes from the device size.
        let g = geometry(&opts(16484 << 10, 1024)).unwrap();
        assert_eq!(summary(&g), (16385, 2, 2064, 4128, 516, 1024));
        assert_eq!((g.device_blocks, g.r_blocks_count), (16484, 819));
        assert_eq!(g.blocks_in_group(1), 8192);
        let kept = geometry(&opts(20 << 20, 1024)).unwrap();
        assert_eq!(kept.blocks_in_group(2), 4095);
        assert_eq!(
            kept.initial_free_blocks(),
            (8192 - 430) + (8192 - 430) + (4095 - 428)
        );
    }

    #[test]
    fn a_low_inode_ratio_shrinks_the_groups() {
        // mke2fs -b 4096 -i 1024 on 64 MiB: 65536 inodes do not fit one group's bitmap, so
        // blocks_per_group drops by 8 until a second group is big enough to keep (14280, as
        // mke2fs 1.47 chose).
        let mut o = opts(64 << 20, 4096);
        o.inode_ratio = Some(1024);
        let g = geometry(&o).unwrap();
        assert_eq!(g.blocks_per_group, 14280);
        assert_eq!(summary(&g), (16384, 2, 32768, 65536, 2048, 1024));
    }

    #[test]
    fn the_size_is_rounded_down_to_whole_pages() {
        // 65537 KiB at 1 KiB blocks: mke2fs makes 65536 blocks, as for 64 MiB.
        let g = geometry(&opts(65537 << 10, 1024)).unwrap();
        assert_eq!((g.device_blocks, g.param_blocks), (65537, 65536));
        assert_eq!(summary(&g), (65536, 8, 2048, 16384, 512, 4096));
    }

    #[test]
    fn bad_options_are_invalid() {
        let err = |o: &MkfsOpts| match geometry(o) {
            Err(Error::Invalid(s)) => s,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(
            err(&opts(64 << 20, 3000)),
            "block size 3000: must be 1024, 2048 or 4096"
        );
        assert_eq!(
            err(&opts((64 << 20) + 512, 1024)),
            "size 67109376 is not a multiple of the block size 1024"
        );
        assert_eq!(
            err(&opts(1 << 20, 1024)),
            "1024 blocks are too few for a journal"
        );
        assert_eq!(
            err(&opts(4 << 10, 4096)),
            "1 blocks of 4096 bytes are too few for a filesystem"
        );
        let mut o = opts(8 << 20, 1024);
        o.journal_blocks = Some(4000);
        assert_eq!(
            err(&o),
            "journal of 4000 blocks is too big for a filesystem of 8192 blocks"
        );
        o.journal_blocks = Some(1000);
        assert_eq!(err(&o), "journal of 1000 blocks: must be 1024..=10240000");
        o.journal_blocks = None;
        o.inode_ratio = Some(512);
        assert_eq!(err(&o), "inode ratio 512: must be 1024..=67108864");
        assert_eq!(
            err(&opts(32 << 40, 4096)),
            "8589934592 blocks: more than 2^32 - 1 needs the 64bit feature"
        );
    }

    #[test]
    fn sizes_and_block_sizes_parse_as_the_cli_gives_them() {
        let ok: Vec<u64> = ["0", "4096", "64M", "64m", "8K", "1G", "2T"]
            .into_iter()
            .map(|s| parse_size(s).unwrap())
            .collect();
        assert_eq!(ok, [0, 4096, 64 << 20, 64 << 20, 8192, 1 << 30, 2 << 40]);
        for bad in ["", "M", "64MB", "-1", "1.5G", "64X", "99999999999T"] {
            assert_eq!(
                parse_size(bad),
                Err(Error::Invalid(format!(
                    "size {bad:?}: expected bytes with an optional K, M, G or T suffix"
                ))),
                "{bad}"
            );
        }
        assert_eq!(parse_block_size("4096"), Ok(4096));
        assert_eq!(
            parse_block_size("4k"),
            Err(Error::Invalid(
                "block size \"4k\": must be 1024, 2048 or 4096".into()
            ))
        );
    }

    #[test]
    fn default_journal_and_inode_ratio_tables() {
        let sizes: Vec<Option<u32>> = [2047, 2048, 32767, 32768, 262_143, 262_144, 1 << 40]
            .into_iter()
            .map(default_journal_size)
            .collect();
        let want = [None, Some(1024), Some(1024), Some(4096)];
        assert_eq!(sizes[..4], want);
        assert_eq!(sizes[4..], [Some(4096), Some(8192), Some(262_144)]);
        let ratios: Vec<u32> = [3071, 3072, 524_287, 524_288, (1 << 32) - 1, 1 << 32]
            .into_iter()
            .map(|b| default_inode_ratio(b, 1024))
            .collect();
        assert_eq!(ratios, [8192, 4096, 4096, 16384, 16384, 32768]);
        let at_4k = [(1 << 32) - 1, 1 << 32].map(|b| default_inode_ratio(b, 4096));
        assert_eq!(at_4k, [32768, 65536]);
    }
}
