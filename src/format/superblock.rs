//! `struct ext4_super_block` (fs/ext4/ext4.h): the 1024-byte superblock at byte offset 1024 of
//! the device. ext4 is little-endian everywhere.
//!
//! [`Superblock`] keeps the bytes it was parsed from (`raw`); [`Superblock::to_bytes`] starts from
//! them and overwrites only the fields modelled here, so an image written by mke2fs keeps every
//! field we do not know about. The block counts are split into `_lo`/`_hi` halves on disk; the
//! `_hi` halves count only with `INCOMPAT_64BIT` (as `ext4_blocks_count()` reads them).
//!
//! [`Superblock::parse`] checks the magic and the geometry, so every geometry helper here
//! (`groups_count`, `bg_has_super`, …) is total once `parse` succeeded. Plain fields are listed
//! once, as a `field @ offset` table (`bytes::le_fields!`) that generates reader and writer.
//!
//! Submodules (their items are methods of [`Superblock`] or re-exported here):
//! * `geometry`: [`Superblock::check_geometry`], the checks of `ext4_fill_super()` /
//!   `ext4_check_geometry()` and e2fsck's superblock pass that the engine relies on;
//! * `features`: the feature bits with their e2fsprogs names ([`FEATURES`]) and
//!   [`Superblock::check_supported`], "does the engine model every incompat feature?".

use crate::bytes::{le_fields, read_u32le, write_u32le};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::format::inode::{EXT4_GOOD_OLD_FIRST_INO, EXT4_GOOD_OLD_INODE_SIZE};

mod features;
mod geometry;
pub use features::*;

/// `EXT4_SUPER_MAGIC`, the value of `s_magic`.
pub const EXT4_SUPER_MAGIC: u16 = 0xEF53;
/// Byte offset of the primary superblock on the device.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of `struct ext4_super_block` in bytes.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Offset of `s_checksum`, the end of the checksummed range.
const S_CHECKSUM_OFFSET: usize = 0x3FC;

/// `EXT4_GOOD_OLD_REV`: revision 0, fixed 128-byte inodes, first inode 11.
pub const EXT4_GOOD_OLD_REV: u32 = 0;
/// `EXT4_DYNAMIC_REV`: revision 1, variable inode size and feature words.
pub const EXT4_DYNAMIC_REV: u32 = 1;
/// `EXT4_OS_LINUX`, the only `s_creator_os` for which inode checksums are verified.
pub const EXT4_OS_LINUX: u32 = 0;
/// `EXT4_CRC32C_CHKSUM`, the only `s_checksum_type`.
pub const EXT4_CRC32C_CHKSUM: u8 = 1;
/// `EXT3_JNL_BACKUP_BLOCKS`: `s_jnl_blocks` holds a copy of the journal inode's block map.
pub const EXT3_JNL_BACKUP_BLOCKS: u8 = 1;
/// `EXT4_MIN_DESC_SIZE`: group descriptor size without `64BIT`.
pub const EXT4_MIN_DESC_SIZE: usize = 32;
/// `EXT4_MIN_DESC_SIZE_64BIT`: smallest group descriptor with `64BIT`.
pub const EXT4_MIN_DESC_SIZE_64BIT: usize = 64;
/// `EXT4_MAX_DESC_SIZE`: largest group descriptor (`EXT4_MIN_BLOCK_SIZE`).
pub const EXT4_MAX_DESC_SIZE: usize = 1024;
/// `EXT4_GOOD_OLD_INODE_SIZE` as a `u32`.
const GOOD_OLD_INODE_SIZE: u32 = EXT4_GOOD_OLD_INODE_SIZE as u32;

/// `s_state`: cleanly unmounted.
pub const EXT4_VALID_FS: u16 = 0x0001;
/// `s_state`: errors detected.
pub const EXT4_ERROR_FS: u16 = 0x0002;
/// `s_state`: orphans being recovered.
pub const EXT4_ORPHAN_FS: u16 = 0x0004;

/// `s_errors`: continue on errors.
pub const EXT4_ERRORS_CONTINUE: u16 = 1;
/// `s_errors`: remount read-only on errors.
pub const EXT4_ERRORS_RO: u16 = 2;
/// `s_errors`: panic on errors.
pub const EXT4_ERRORS_PANIC: u16 = 3;

/// `s_flags`: directory hashes are signed.
pub const EXT2_FLAGS_SIGNED_HASH: u32 = 0x0001;
/// `s_flags`: directory hashes are unsigned.
pub const EXT2_FLAGS_UNSIGNED_HASH: u32 = 0x0002;
/// `s_flags`: a development file system.
pub const EXT2_FLAGS_TEST_FILESYS: u32 = 0x0004;

/// `struct ext4_super_block`, the fields the engine and fsck use, named as in C. Offsets are
/// those of the on-disk structure; `_lo`/`_hi` pairs are combined. `Default` is all zero with
/// an empty `raw` (serialized as zeros); [`Superblock::new`] is the mkfs starting point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Superblock {
    /// 0x00 s_inodes_count.
    pub s_inodes_count: u32,
    /// 0x04 s_blocks_count_lo, 0x150 s_blocks_count_hi (64BIT).
    pub s_blocks_count: u64,
    /// 0x08 s_r_blocks_count_lo, 0x154 s_r_blocks_count_hi (64BIT).
    pub s_r_blocks_count: u64,
    /// 0x0C s_free_blocks_count_lo, 0x158 s_free_blocks_count_hi (64BIT).
    pub s_free_blocks_count: u64,
    /// 0x10 s_free_inodes_count.
    pub s_free_inodes_count: u32,
    /// 0x14 s_first_data_block: 1 with 1 KiB blocks, else 0.
    pub s_first_data_block: u32,
    /// 0x18 s_log_block_size: block size = 1024 << this.
    pub s_log_block_size: u32,
    /// 0x1C s_log_cluster_size.
    pub s_log_cluster_size: u32,
    /// 0x20 s_blocks_per_group.
    pub s_blocks_per_group: u32,
    /// 0x24 s_clusters_per_group.
    pub s_clusters_per_group: u32,
    /// 0x28 s_inodes_per_group.
    pub s_inodes_per_group: u32,
    /// 0x2C s_mtime.
    pub s_mtime: u32,
    /// 0x30 s_wtime.
    pub s_wtime: u32,
    /// 0x34 s_mnt_count.
    pub s_mnt_count: u16,
    /// 0x36 s_max_mnt_count.
    pub s_max_mnt_count: u16,
    /// 0x38 s_magic.
    pub s_magic: u16,
    /// 0x3A s_state (`EXT4_VALID_FS`, `EXT4_ERROR_FS`, `EXT4_ORPHAN_FS`).
    pub s_state: u16,
    /// 0x3C s_errors.
    pub s_errors: u16,
    /// 0x3E s_minor_rev_level.
    pub s_minor_rev_level: u16,
    /// 0x40 s_lastcheck.
    pub s_lastcheck: u32,
    /// 0x44 s_checkinterval.
    pub s_checkinterval: u32,
    /// 0x48 s_creator_os.
    pub s_creator_os: u32,
    /// 0x4C s_rev_level.
    pub s_rev_level: u32,
    /// 0x50 s_def_resuid.
    pub s_def_resuid: u16,
    /// 0x52 s_def_resgid.
    pub s_def_resgid: u16,
    /// 0x54 s_first_ino (rev 1).
    pub s_first_ino: u32,
    /// 0x58 s_inode_size (rev 1).
    pub s_inode_size: u16,
    /// 0x5A s_block_group_nr: the group holding this copy.
    pub s_block_group_nr: u16,
    /// 0x5C s_feature_compat.
    pub s_feature_compat: u32,
    /// 0x60 s_feature_incompat.
    pub s_feature_incompat: u32,
    /// 0x64 s_feature_ro_compat.
    pub s_feature_ro_compat: u32,
    /// 0x68 s_uuid.
    pub s_uuid: [u8; 16],
    /// 0x78 s_volume_name.
    pub s_volume_name: [u8; 16],
    /// 0xCE s_reserved_gdt_blocks.
    pub s_reserved_gdt_blocks: u16,
    /// 0xD0 s_journal_uuid.
    pub s_journal_uuid: [u8; 16],
    /// 0xE0 s_journal_inum.
    pub s_journal_inum: u32,
    /// 0xE4 s_journal_dev.
    pub s_journal_dev: u32,
    /// 0xE8 s_last_orphan: head of the orphan list.
    pub s_last_orphan: u32,
    /// 0xEC s_hash_seed.
    pub s_hash_seed: [u32; 4],
    /// 0xFC s_def_hash_version.
    pub s_def_hash_version: u8,
    /// 0xFD s_jnl_backup_type.
    pub s_jnl_backup_type: u8,
    /// 0xFE s_desc_size (64BIT).
    pub s_desc_size: u16,
    /// 0x100 s_default_mount_opts.
    pub s_default_mount_opts: u32,
    /// 0x104 s_first_meta_bg.
    pub s_first_meta_bg: u32,
    /// 0x108 s_mkfs_time.
    pub s_mkfs_time: u32,
    /// 0x10C s_jnl_blocks: journal inode `i_block[15]`, `i_size_high`, `i_size`.
    pub s_jnl_blocks: [u32; 17],
    /// 0x15C s_min_extra_isize.
    pub s_min_extra_isize: u16,
    /// 0x15E s_want_extra_isize.
    pub s_want_extra_isize: u16,
    /// 0x160 s_flags.
    pub s_flags: u32,
    /// 0x174 s_log_groups_per_flex.
    pub s_log_groups_per_flex: u8,
    /// 0x175 s_checksum_type.
    pub s_checksum_type: u8,
    /// 0x178 s_kbytes_written.
    pub s_kbytes_written: u64,
    /// 0x194 s_error_count.
    pub s_error_count: u32,
    /// 0x240 s_usr_quota_inum.
    pub s_usr_quota_inum: u32,
    /// 0x244 s_grp_quota_inum.
    pub s_grp_quota_inum: u32,
    /// 0x248 s_overhead_clusters.
    pub s_overhead_clusters: u32,
    /// 0x24C s_backup_bgs: the groups holding backups with `sparse_super2`.
    pub s_backup_bgs: [u32; 2],
    /// 0x268 s_lpf_ino.
    pub s_lpf_ino: u32,
    /// 0x26C s_prj_quota_inum.
    pub s_prj_quota_inum: u32,
    /// 0x270 s_checksum_seed (`INCOMPAT_CSUM_SEED`).
    pub s_checksum_seed: u32,
    /// 0x280 s_orphan_file_inum.
    pub s_orphan_file_inum: u32,
    /// 0x3FC s_checksum: crc32c of bytes 0..0x3FC (metadata_csum).
    pub s_checksum: u32,
    /// The 1024 bytes this superblock was parsed from (all zero for [`Superblock::new`]).
    pub raw: Vec<u8>,
}

impl Superblock {
    le_fields!(read_plain, write_plain {
        s_inodes_count @ 0x00, s_free_inodes_count @ 0x10, s_first_data_block @ 0x14,
        s_log_block_size @ 0x18, s_log_cluster_size @ 0x1C, s_blocks_per_group @ 0x20,
        s_clusters_per_group @ 0x24, s_inodes_per_group @ 0x28, s_mtime @ 0x2C, s_wtime @ 0x30,
        s_mnt_count @ 0x34, s_max_mnt_count @ 0x36, s_magic @ 0x38, s_state @ 0x3A,
        s_errors @ 0x3C, s_minor_rev_level @ 0x3E, s_lastcheck @ 0x40, s_checkinterval @ 0x44,
        s_creator_os @ 0x48, s_rev_level @ 0x4C, s_def_resuid @ 0x50, s_def_resgid @ 0x52,
        s_first_ino @ 0x54, s_inode_size @ 0x58, s_block_group_nr @ 0x5A,
        s_feature_compat @ 0x5C, s_feature_incompat @ 0x60, s_feature_ro_compat @ 0x64,
        s_uuid @ 0x68, s_volume_name @ 0x78, s_reserved_gdt_blocks @ 0xCE,
        s_journal_uuid @ 0xD0, s_journal_inum @ 0xE0, s_journal_dev @ 0xE4,
        s_last_orphan @ 0xE8, s_hash_seed @ 0xEC, s_def_hash_version @ 0xFC,
        s_jnl_backup_type @ 0xFD, s_desc_size @ 0xFE, s_default_mount_opts @ 0x100,
        s_first_meta_bg @ 0x104, s_mkfs_time @ 0x108, s_jnl_blocks @ 0x10C,
        s_min_extra_isize @ 0x15C, s_want_extra_isize @ 0x15E, s_flags @ 0x160,
        s_log_groups_per_flex @ 0x174, s_checksum_type @ 0x175, s_kbytes_written @ 0x178,
        s_error_count @ 0x194, s_usr_quota_inum @ 0x240, s_grp_quota_inum @ 0x244,
        s_overhead_clusters @ 0x248, s_backup_bgs @ 0x24C, s_lpf_ino @ 0x268,
        s_prj_quota_inum @ 0x26C, s_checksum_seed @ 0x270, s_orphan_file_inum @ 0x280,
        s_checksum @ 0x3FC,
    });

    /// A superblock built from scratch: every field zero except `s_magic`, `raw` 1024 zero
    /// bytes. Our mkfs fills in the rest.
    pub fn new() -> Superblock {
        Superblock {
            s_magic: EXT4_SUPER_MAGIC,
            raw: vec![0u8; SUPERBLOCK_SIZE],
            ..Superblock::default()
        }
    }

    /// Every field from `raw` (at least 1024 bytes), without any check.
    fn read_fields(raw: &[u8]) -> Superblock {
        let b = &raw[..SUPERBLOCK_SIZE];
        let mut sb = Superblock {
            raw: b.to_vec(),
            ..Superblock::default()
        };
        sb.read_plain(b, SUPERBLOCK_SIZE);
        let wide = sb.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT);
        let hilo = |lo: usize, hi: usize| {
            let hi = if wide {
                u64::from(read_u32le(b, hi))
            } else {
                0
            };
            (hi << 32) | u64::from(read_u32le(b, lo))
        };
        sb.s_blocks_count = hilo(0x04, 0x150);
        sb.s_r_blocks_count = hilo(0x08, 0x154);
        sb.s_free_blocks_count = hilo(0x0C, 0x158);
        sb
    }

    /// Parse and validate a superblock: `Truncated` if `buf` is shorter than 1024 bytes,
    /// `SuperblockMagic`, then `SuperblockGeometry(field)` for the first field out of range
    /// (checked in the order of [`Superblock::check_geometry`]). Never panics.
    pub fn parse(buf: &[u8]) -> Result<Superblock> {
        if buf.len() < SUPERBLOCK_SIZE {
            return Err(Error::Corrupt(CorruptKind::Truncated {
                what: "superblock",
            }));
        }
        let sb = Superblock::read_fields(buf);
        if sb.s_magic != EXT4_SUPER_MAGIC {
            return Err(Error::Corrupt(CorruptKind::SuperblockMagic));
        }
        sb.check_geometry()?;
        Ok(sb)
    }

    /// Model of `ext4_superblock_csum()` (fs/ext4/super.c): crc32c over bytes 0..0x3FC.
    pub fn superblock_csum(bytes: &[u8]) -> u32 {
        crc32c_raw(!0, &bytes[..S_CHECKSUM_OFFSET])
    }

    /// Model of `ext4_superblock_csum_verify()`: with `metadata_csum`, `s_checksum` must match
    /// the checksum of the serialized superblock (`SuperblockChecksum`); without it, Ok.
    pub fn verify_checksum(&self) -> Result<()> {
        if !self.metadata_csum() {
            return Ok(());
        }
        if Superblock::superblock_csum(&self.fields_to_bytes()) != self.s_checksum {
            return Err(Error::Corrupt(CorruptKind::SuperblockChecksum));
        }
        Ok(())
    }

    /// The 1024 on-disk bytes: `raw` with every modelled field overwritten; `s_checksum` is
    /// recomputed with `metadata_csum` (model of `ext4_superblock_csum_set()`), else written as is.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.fields_to_bytes();
        if self.metadata_csum() {
            let csum = Superblock::superblock_csum(&b);
            write_u32le(&mut b, S_CHECKSUM_OFFSET, csum);
        }
        b
    }

    /// `raw` with every modelled field written over it, `s_checksum` as stored in the struct.
    fn fields_to_bytes(&self) -> Vec<u8> {
        let mut b = self.raw.clone();
        b.resize(SUPERBLOCK_SIZE, 0);
        self.write_plain(&mut b, SUPERBLOCK_SIZE);
        let wide = self.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT);
        for (v, lo, hi) in [
            (self.s_blocks_count, 0x04, 0x150),
            (self.s_r_blocks_count, 0x08, 0x154),
            (self.s_free_blocks_count, 0x0C, 0x158),
        ] {
            write_u32le(&mut b, lo, (v & 0xFFFF_FFFF) as u32);
            if wide {
                write_u32le(&mut b, hi, (v >> 32) as u32);
            }
        }
        b
    }

    /// Block size in bytes (`EXT4_BLOCK_SIZE`): 1024 << `s_log_block_size`.
    pub fn block_size(&self) -> u32 {
        1024 << self.s_log_block_size
    }

    /// Cluster size in bytes (`EXT4_CLUSTER_SIZE`); the block size without bigalloc.
    pub fn cluster_size(&self) -> u32 {
        1024 << self.s_log_cluster_size
    }

    /// Inode record size (`EXT4_INODE_SIZE`): 128 for revision 0, else `s_inode_size`.
    pub fn inode_size(&self) -> u32 {
        if self.s_rev_level == EXT4_GOOD_OLD_REV {
            GOOD_OLD_INODE_SIZE
        } else {
            u32::from(self.s_inode_size)
        }
    }

    /// First non-reserved inode (`EXT4_FIRST_INO`): 11 for revision 0, else `s_first_ino`.
    pub fn first_ino(&self) -> u32 {
        if self.s_rev_level == EXT4_GOOD_OLD_REV {
            EXT4_GOOD_OLD_FIRST_INO
        } else {
            self.s_first_ino
        }
    }

    /// Number of block groups (`s_groups_count`), as a `u64` (checked to fit `u32` by parse).
    fn groups_count_u64(&self) -> u64 {
        let data = self
            .s_blocks_count
            .saturating_sub(u64::from(self.s_first_data_block));
        data.div_ceil(u64::from(self.s_blocks_per_group.max(1)))
    }

    /// Number of block groups: ⌈(blocks_count − first_data_block) / blocks_per_group⌉.
    pub fn groups_count(&self) -> u32 {
        u32::try_from(self.groups_count_u64()).unwrap_or(u32::MAX)
    }

    /// Group descriptor size (`EXT4_DESC_SIZE`): `s_desc_size` with 64BIT, else 32.
    pub fn desc_size(&self) -> usize {
        if self.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT) {
            usize::from(self.s_desc_size)
        } else {
            EXT4_MIN_DESC_SIZE
        }
    }

    /// Descriptors per block (`EXT4_DESC_PER_BLOCK`).
    pub fn descs_per_block(&self) -> u32 {
        self.block_size() / self.desc_size().max(1) as u32
    }

    /// Whether a compat feature bit is set.
    pub fn has_compat(&self, bit: u32) -> bool {
        self.s_feature_compat & bit != 0
    }

    /// Whether an incompat feature bit is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.s_feature_incompat & bit != 0
    }

    /// Whether a ro_compat feature bit is set.
    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.s_feature_ro_compat & bit != 0
    }

    /// Model of `ext4_has_metadata_csum()`.
    pub fn metadata_csum(&self) -> bool {
        self.has_ro_compat(EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)
    }

    /// Whether the `gdt_csum` (`uninit_bg`) bit is set.
    pub fn gdt_csum(&self) -> bool {
        self.has_ro_compat(EXT4_FEATURE_RO_COMPAT_GDT_CSUM)
    }

    /// Model of `ext4_has_group_desc_csum()`: metadata_csum or gdt_csum.
    pub fn has_group_desc_csum(&self) -> bool {
        self.metadata_csum() || self.gdt_csum()
    }

    /// The fs checksum seed `S` (`sbi->s_csum_seed`): `s_checksum_seed` with
    /// `INCOMPAT_CSUM_SEED`, else crc32c_raw(!0, s_uuid).
    pub fn csum_seed(&self) -> u32 {
        if self.has_incompat(EXT4_FEATURE_INCOMPAT_CSUM_SEED) {
            self.s_checksum_seed
        } else {
            crc32c_raw(!0, &self.s_uuid)
        }
    }

    /// Inodes per inode-table block (`EXT4_INODES_PER_BLOCK`).
    pub fn inodes_per_block(&self) -> u32 {
        (self.block_size() / self.inode_size().max(1)).max(1)
    }

    /// Inode-table blocks per group (`s_itb_per_group`).
    pub fn itable_blocks(&self) -> u32 {
        self.s_inodes_per_group.div_ceil(self.inodes_per_block())
    }

    /// Model of `ext4_group_first_block_no()`: first block of group `g`.
    pub fn group_first_block(&self, g: u32) -> u64 {
        u64::from(g) * u64::from(self.s_blocks_per_group) + u64::from(self.s_first_data_block)
    }

    /// Blocks in group `g`: `s_blocks_per_group`, except for a short last group (model of
    /// e2fsprogs' `ext2fs_group_blocks_count()`). 0 for a group past the end.
    pub fn blocks_in_group(&self, g: u32) -> u32 {
        let first = self.group_first_block(g);
        let left = self.s_blocks_count.saturating_sub(first);
        left.min(u64::from(self.s_blocks_per_group)) as u32
    }

    /// The group holding block `b` (blocks before `s_first_data_block` count as group 0).
    pub fn group_of_block(&self, b: u64) -> u32 {
        let rel = b.saturating_sub(u64::from(self.s_first_data_block));
        let g = rel / u64::from(self.s_blocks_per_group.max(1));
        u32::try_from(g).unwrap_or(u32::MAX)
    }

    /// Model of `ext4_bg_has_super()` (fs/ext4/balloc.c): does group `g` hold a superblock
    /// copy? Group 0 always; with sparse_super2 only `s_backup_bgs`; with sparse_super groups
    /// 1 and powers of 3, 5, 7; otherwise every group.
    pub fn bg_has_super(&self, g: u32) -> bool {
        if g == 0 {
            return true;
        }
        if self.has_compat(EXT4_FEATURE_COMPAT_SPARSE_SUPER2) {
            return g == self.s_backup_bgs[0] || g == self.s_backup_bgs[1];
        }
        if g <= 1 || !self.has_ro_compat(EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER) {
            return true;
        }
        if g % 2 == 0 {
            return false;
        }
        test_root(g, 3) || test_root(g, 5) || test_root(g, 7)
    }

    /// Number of group descriptor blocks (`s_gdb_count`): ⌈groups / descs_per_block⌉.
    pub fn gdt_blocks(&self) -> u32 {
        self.groups_count().div_ceil(self.descs_per_block().max(1))
    }

    /// Model of `ext4_bg_num_gdb()` without meta_bg: GDT blocks in group `g` (0 or
    /// [`Superblock::gdt_blocks`]), not counting reserved GDT blocks.
    pub fn bg_num_gdb(&self, g: u32) -> u32 {
        if self.bg_has_super(g) {
            self.gdt_blocks()
        } else {
            0
        }
    }

    /// Block number of the `nr`-th block of the primary descriptor table (model of
    /// `descriptor_loc()` without meta_bg): right after the primary superblock.
    pub fn gdt_block(&self, nr: u32) -> u64 {
        u64::from(self.s_first_data_block) + 1 + u64::from(nr)
    }
}

/// Model of `test_root()` (fs/ext4/balloc.c): is `a` a power of `b` (b^k, k ≥ 1)?
fn test_root(mut a: u32, b: u32) -> bool {
    loop {
        if a < b {
            return false;
        }
        if a == b {
            return true;
        }
        if a % b != 0 {
            return false;
        }
        a /= b;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::format::group_desc::testutil::{mkfs, num, XorShift};

    /// A valid superblock without mke2fs: 1 KiB blocks, 2 groups, 64BIT, metadata_csum.
    pub(super) fn good_sb() -> Superblock {
        let mut sb = Superblock::new();
        (sb.s_blocks_count, sb.s_first_data_block) = (16384, 1);
        (sb.s_blocks_per_group, sb.s_clusters_per_group) = (8192, 8192);
        (sb.s_inodes_per_group, sb.s_inodes_count) = (2048, 4096);
        (sb.s_rev_level, sb.s_inode_size, sb.s_first_ino) = (1, 256, 11);
        sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_EXTENTS;
        sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
        (sb.s_desc_size, sb.s_checksum_type, sb.s_uuid) = (64, EXT4_CRC32C_CHKSUM, [7; 16]);
        sb
    }

    #[test]
    fn real_superblocks_parse_verify_round_trip_and_match_dumpe2fs() {
        let images = [
            ("-t ext4 -b 1024", 16 << 20),
            ("-t ext4 -b 4096", 16 << 20),
            ("-t ext4 -O ^metadata_csum,uninit_bg", 16 << 20),
            ("-t ext3", 16 << 20),
            ("-t ext4 -O ^64bit", 16 << 20),
            ("-t ext4 -I 128", 16 << 20),
            ("-r 0 -t ext2", 8 << 20),
        ];
        for (opts, size) in images {
            let Some(img) = mkfs(opts, size) else { return };
            let raw = &img.bytes[1024..2048];
            let sb = Superblock::parse(raw).unwrap();
            sb.verify_checksum().unwrap();
            sb.check_supported().unwrap();
            assert_eq!(sb.to_bytes(), raw, "{opts}");
            let h = img.dumpe2fs_h();
            let expected = [
                ("Block count", sb.s_blocks_count),
                ("Inode count", u64::from(sb.s_inodes_count)),
                ("First block", u64::from(sb.s_first_data_block)),
                ("Block size", u64::from(sb.block_size())),
                ("Inodes per group", u64::from(sb.s_inodes_per_group)),
                ("Blocks per group", u64::from(sb.s_blocks_per_group)),
                ("Inode blocks per group", u64::from(sb.itable_blocks())),
                ("Free blocks", sb.s_free_blocks_count),
                ("Free inodes", u64::from(sb.s_free_inodes_count)),
                ("Reserved GDT blocks", u64::from(sb.s_reserved_gdt_blocks)),
                ("Group descriptor size", sb.desc_size() as u64),
                ("Inode size", u64::from(sb.inode_size())),
                ("Checksum", u64::from(sb.s_checksum)),
            ];
            for (key, want) in expected {
                let absent = [("Group descriptor size", 32), ("Inode size", 128)];
                let default = absent.iter().find(|a| a.0 == key).map_or(0, |a| a.1);
                assert_eq!(
                    h.get(key).map_or(default, |v| num(v)),
                    want,
                    "{opts}: {key}"
                );
            }
            let features = h["Filesystem features"].replace("(none)", "");
            assert_eq!(
                sb.feature_names(),
                features.split_whitespace().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn sparse_super_groups_are_0_1_and_powers_of_3_5_7() {
        let mut sb = good_sb();
        assert!(
            (0..20).all(|g| sb.bg_has_super(g)),
            "no sparse_super: every group"
        );
        sb.s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER;
        let with: Vec<u32> = (0..400).filter(|&g| sb.bg_has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343]);
        sb.s_feature_compat |= EXT4_FEATURE_COMPAT_SPARSE_SUPER2;
        sb.s_backup_bgs = [5, 0];
        let with: Vec<u32> = (0..400).filter(|&g| sb.bg_has_super(g)).collect();
        assert_eq!(with, [0, 5]);
    }

    #[test]
    fn checksums_and_seeds() {
        let Some(img) = mkfs("-t ext4 -b 1024", 16 << 20) else {
            return;
        };
        let mut raw = img.bytes[1024..2048].to_vec();
        raw[0x20C] ^= 1;
        let sb = Superblock::parse(&raw).unwrap();
        let err = Err(Error::Corrupt(CorruptKind::SuperblockChecksum));
        assert_eq!(sb.verify_checksum(), err);
        let fixed = Superblock::parse(&sb.to_bytes()).unwrap();
        fixed.verify_checksum().unwrap();
        assert_eq!(fixed.csum_seed(), crc32c_raw(!0, &fixed.s_uuid));
        let Some(seeded) = mkfs("-t ext4 -O metadata_csum_seed", 16 << 20) else {
            return;
        };
        let mut sb = seeded.sb();
        assert_eq!(sb.csum_seed(), sb.s_checksum_seed);
        sb.s_uuid = [1; 16];
        assert_eq!(
            sb.csum_seed(),
            sb.s_checksum_seed,
            "the stored seed survives a new uuid"
        );
        let Some(ext3) = mkfs("-t ext3", 16 << 20) else {
            return;
        };
        let mut sb = ext3.sb();
        sb.s_checksum = 0xDEAD_BEEF;
        sb.verify_checksum().unwrap();
        assert_eq!(read_u32le(&sb.to_bytes(), 0x3FC), 0xDEAD_BEEF);
    }

    #[test]
    fn every_modelled_field_is_read_and_written_at_the_same_offset() {
        let mut rng = XorShift(0x5B5B_5B5B);
        for _ in 0..200 {
            let raw = rng.bytes(SUPERBLOCK_SIZE);
            assert_eq!(Superblock::read_fields(&raw).fields_to_bytes(), raw);
        }
        let mut sb = Superblock::new();
        (sb.s_journal_inum, sb.s_backup_bgs, sb.s_kbytes_written) = (8, [1, 7], 1 << 40);
        let b = sb.to_bytes();
        assert_eq!((read_u32le(&b, 0xE0), read_u32le(&b, 0x250)), (8, 7));
        assert_eq!((read_u32le(&b, 0x178), read_u32le(&b, 0x17C)), (0, 1 << 8));
        assert_eq!(b[0x38..0x3A], [0x53, 0xEF]);
        assert_eq!(b.iter().filter(|&&x| x != 0).count(), 6);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift(0x0BAD_5EED);
        let good = good_sb().to_bytes();
        let mut accepted = 0;
        for round in 0..4000 {
            let len = rng.below(1100) as usize;
            let mut raw = if round % 2 == 0 {
                rng.bytes(len)
            } else {
                good.clone()
            };
            for _ in 0..rng.below(6) {
                let i = rng.below(raw.len().clamp(1, 0x180) as u64) as usize;
                if let Some(b) = raw.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            if raw.len() >= 0x3A && rng.below(2) == 0 {
                raw[0x38..0x3A].copy_from_slice(&EXT4_SUPER_MAGIC.to_le_bytes());
            }
            let Ok(sb) = Superblock::parse(&raw) else {
                continue;
            };
            accepted += 1;
            let last = sb.groups_count() - 1;
            let _ = (
                sb.gdt_blocks(),
                sb.itable_blocks(),
                sb.blocks_in_group(last),
            );
            let _ = (
                sb.bg_has_super(last),
                sb.group_of_block(sb.s_blocks_count - 1),
            );
            let _ = (sb.csum_seed(), sb.check_supported(), sb.verify_checksum());
            let bytes = sb.to_bytes();
            assert_eq!(Superblock::parse(&bytes).unwrap().to_bytes(), bytes);
        }
        assert!(accepted > 200, "only {accepted} superblocks accepted");
    }
}
