//! `struct ext4_inode` (fs/ext4/ext4.h): the on-disk inode record, `s_inode_size` bytes in the
//! inode table. Little-endian.
//!
//! Layout: the first 128 bytes (`EXT4_GOOD_OLD_INODE_SIZE`) always exist; a larger record
//! starts its extra part with `i_extra_isize`, and a field past 128 counts only if it ends
//! within `128 + i_extra_isize` (`EXT4_FITS_IN_INODE()`); the rest of the record is in-inode
//! extended-attribute space, which we keep untouched in `raw`. Split fields (`i_uid`, `i_gid`,
//! `i_size`, `i_blocks`, `i_file_acl`, `i_checksum`) are combined from their halves.
//!
//! Checksum (model of `ext4_inode_csum()`, fs/ext4/inode.c): crc32c seeded with
//! `ext4_inode_csum_seed()` = crc32c(crc32c(S, le32 ino), le32 i_generation) over the whole
//! record with `l_i_checksum_lo` and, when it fits, `i_checksum_hi` taken as zero. When
//! `i_checksum_hi` does not fit (128-byte records, or `i_extra_isize < 4`) only the low 16 bits
//! are stored and compared.

use crate::bytes::{le32, le_fields, read_u16le, read_u32le, write_u16le, write_u32le};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::units::Ino;

/// File type mask of `i_mode`.
pub const S_IFMT: u16 = 0o170000;
/// Socket.
pub const S_IFSOCK: u16 = 0o140000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Block device.
pub const S_IFBLK: u16 = 0o060000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Character device.
pub const S_IFCHR: u16 = 0o020000;
/// FIFO.
pub const S_IFIFO: u16 = 0o010000;

/// `EXT4_N_BLOCKS`: entries of `i_block`.
pub const EXT4_N_BLOCKS: usize = 15;
/// `EXT4_GOOD_OLD_INODE_SIZE`: the fixed part of every inode record.
pub const EXT4_GOOD_OLD_INODE_SIZE: usize = 128;
/// `sizeof(struct ext4_inode)`: 128 + the 32 extra bytes modelled here.
pub const EXT4_INODE_STRUCT_SIZE: usize = 160;
/// `EXT4_INODE_CSUM_HI_EXTRA_END`: `i_extra_isize` needed to hold `i_checksum_hi`.
pub const EXT4_INODE_CSUM_HI_EXTRA_END: usize = 4;

/// `EXT4_BAD_INO`: bad blocks inode.
pub const EXT4_BAD_INO: u32 = 1;
/// `EXT4_ROOT_INO`: root directory.
pub const EXT4_ROOT_INO: u32 = 2;
/// `EXT4_USR_QUOTA_INO`: user quota.
pub const EXT4_USR_QUOTA_INO: u32 = 3;
/// `EXT4_GRP_QUOTA_INO`: group quota.
pub const EXT4_GRP_QUOTA_INO: u32 = 4;
/// `EXT4_BOOT_LOADER_INO`: boot loader.
pub const EXT4_BOOT_LOADER_INO: u32 = 5;
/// `EXT4_UNDEL_DIR_INO`: undelete directory.
pub const EXT4_UNDEL_DIR_INO: u32 = 6;
/// `EXT4_RESIZE_INO`: reserved GDT blocks.
pub const EXT4_RESIZE_INO: u32 = 7;
/// `EXT4_JOURNAL_INO`: journal.
pub const EXT4_JOURNAL_INO: u32 = 8;
/// `EXT4_GOOD_OLD_FIRST_INO`: first non-reserved inode (the default `s_first_ino`).
pub const EXT4_GOOD_OLD_FIRST_INO: u32 = 11;

/// Defines the `EXT4_*_FL` constants of ext4.h from one `NAME = bit, "doc"` list.
macro_rules! flags {
    ($($name:ident = $bit:literal, $doc:literal;)*) => {
        $(#[doc = concat!("`", stringify!($name), "`: ", $doc, ".")] pub const $name: u32 = $bit;)*
    };
}

flags! {
    EXT4_SECRM_FL = 0x0000_0001, "secure deletion";
    EXT4_UNRM_FL = 0x0000_0002, "undelete";
    EXT4_COMPR_FL = 0x0000_0004, "compress file";
    EXT4_SYNC_FL = 0x0000_0008, "synchronous updates";
    EXT4_IMMUTABLE_FL = 0x0000_0010, "immutable file";
    EXT4_APPEND_FL = 0x0000_0020, "writes may only append";
    EXT4_NODUMP_FL = 0x0000_0040, "do not dump";
    EXT4_NOATIME_FL = 0x0000_0080, "do not update atime";
    EXT4_DIRTY_FL = 0x0000_0100, "compression: dirty";
    EXT4_COMPRBLK_FL = 0x0000_0200, "compression: compressed clusters";
    EXT4_NOCOMPR_FL = 0x0000_0400, "compression: do not compress";
    EXT4_ENCRYPT_FL = 0x0000_0800, "encrypted inode";
    EXT4_INDEX_FL = 0x0000_1000, "hash-indexed directory";
    EXT4_IMAGIC_FL = 0x0000_2000, "AFS directory";
    EXT4_JOURNAL_DATA_FL = 0x0000_4000, "file data is journaled";
    EXT4_NOTAIL_FL = 0x0000_8000, "file tail not merged";
    EXT4_DIRSYNC_FL = 0x0001_0000, "synchronous directory updates";
    EXT4_TOPDIR_FL = 0x0002_0000, "top of directory hierarchy";
    EXT4_HUGE_FILE_FL = 0x0004_0000, "i_blocks counts fs blocks";
    EXT4_EXTENTS_FL = 0x0008_0000, "inode uses extents";
    EXT4_VERITY_FL = 0x0010_0000, "fs-verity file (formerly the EXT4_EXT_MIGRATE marker)";
    EXT4_EA_INODE_FL = 0x0020_0000, "inode holds a large extended attribute";
    EXT4_DAX_FL = 0x0200_0000, "DAX access";
    EXT4_INLINE_DATA_FL = 0x1000_0000, "data stored in the inode";
    EXT4_PROJINHERIT_FL = 0x2000_0000, "children inherit the project id";
    EXT4_CASEFOLD_FL = 0x4000_0000, "case-insensitive directory";
    EXT4_RESERVED_FL = 0x8000_0000, "reserved for ext4 lib";
}

/// `EXT4_FL_USER_MODIFIABLE` (current ext4.h, which spells it out as an OR of flags;
/// 0x0040_0000 is the former `EXT4_EOFBLOCKS_FL`).
pub const EXT4_FL_USER_MODIFIABLE: u32 = EXT4_SECRM_FL
    | EXT4_UNRM_FL
    | EXT4_COMPR_FL
    | EXT4_SYNC_FL
    | EXT4_IMMUTABLE_FL
    | EXT4_APPEND_FL
    | EXT4_NODUMP_FL
    | EXT4_NOATIME_FL
    | EXT4_JOURNAL_DATA_FL
    | EXT4_NOTAIL_FL
    | EXT4_DIRSYNC_FL
    | EXT4_TOPDIR_FL
    | EXT4_EXTENTS_FL
    | 0x0040_0000
    | EXT4_DAX_FL
    | EXT4_PROJINHERIT_FL
    | EXT4_CASEFOLD_FL;

/// `EXT4_FL_USER_VISIBLE`: the modifiable flags plus those only the kernel sets.
pub const EXT4_FL_USER_VISIBLE: u32 = EXT4_FL_USER_MODIFIABLE
    | EXT4_DIRTY_FL
    | EXT4_COMPRBLK_FL
    | EXT4_NOCOMPR_FL
    | EXT4_ENCRYPT_FL
    | EXT4_INDEX_FL
    | EXT4_VERITY_FL
    | EXT4_INLINE_DATA_FL;

/// `struct ext4_inode` with split fields combined. Offsets are those of the on-disk record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inode {
    /// 0x00 i_mode: file type (`S_IF*`) and permissions.
    pub i_mode: u16,
    /// 0x02 i_uid, 0x78 l_i_uid_high.
    pub i_uid: u32,
    /// 0x04 i_size_lo, 0x6C i_size_high.
    pub i_size: u64,
    /// 0x08 i_atime.
    pub i_atime: u32,
    /// 0x0C i_ctime.
    pub i_ctime: u32,
    /// 0x10 i_mtime.
    pub i_mtime: u32,
    /// 0x14 i_dtime (an orphan's next orphan).
    pub i_dtime: u32,
    /// 0x18 i_gid, 0x7A l_i_gid_high.
    pub i_gid: u32,
    /// 0x1A i_links_count.
    pub i_links_count: u16,
    /// 0x1C i_blocks_lo, 0x74 l_i_blocks_high: the raw 48-bit value (see [`Inode::blocks_512`]).
    pub i_blocks: u64,
    /// 0x20 i_flags (`EXT4_*_FL`).
    pub i_flags: u32,
    /// 0x24 osd1.linux1.l_i_version.
    pub l_i_version: u32,
    /// 0x28 i_block: block map or extent tree root.
    pub i_block: [u32; EXT4_N_BLOCKS],
    /// 0x64 i_generation.
    pub i_generation: u32,
    /// 0x68 i_file_acl_lo, 0x76 l_i_file_acl_high.
    pub i_file_acl: u64,
    /// 0x80 i_extra_isize (0 for 128-byte records).
    pub i_extra_isize: u16,
    /// 0x7C l_i_checksum_lo, 0x82 i_checksum_hi (if it fits).
    pub i_checksum: u32,
    /// 0x84 i_ctime_extra.
    pub i_ctime_extra: u32,
    /// 0x88 i_mtime_extra.
    pub i_mtime_extra: u32,
    /// 0x8C i_atime_extra.
    pub i_atime_extra: u32,
    /// 0x90 i_crtime.
    pub i_crtime: u32,
    /// 0x94 i_crtime_extra.
    pub i_crtime_extra: u32,
    /// 0x98 i_version_hi.
    pub i_version_hi: u32,
    /// 0x9C i_projid.
    pub i_projid: u32,
    /// The inode_size bytes this was parsed from (zeros for [`Inode::new`]).
    pub raw: Vec<u8>,
}

/// 0x64 i_generation (part of the checksum seed).
const I_GENERATION: usize = 0x64;
/// 0x7C osd2.linux2.l_i_checksum_lo.
const I_CHECKSUM_LO: usize = 0x7C;
/// 0x80 i_extra_isize.
const I_EXTRA_ISIZE: usize = 0x80;
/// 0x82 i_checksum_hi.
const I_CHECKSUM_HI: usize = 0x82;

/// The end of the fields that count in a record of `len` bytes with `i_extra_isize` = `extra`.
fn fits_limit(len: usize, extra: u16) -> usize {
    (EXT4_GOOD_OLD_INODE_SIZE + usize::from(extra)).min(len)
}

impl Inode {
    le_fields!(read_base, write_base {
        i_mode @ 0x00, i_atime @ 0x08, i_ctime @ 0x0C, i_mtime @ 0x10, i_dtime @ 0x14,
        i_links_count @ 0x1A, i_flags @ 0x20, l_i_version @ 0x24, i_block @ 0x28,
        i_generation @ 0x64,
    });

    le_fields!(read_extra, write_extra {
        i_ctime_extra @ 0x84, i_mtime_extra @ 0x88, i_atime_extra @ 0x8C, i_crtime @ 0x90,
        i_crtime_extra @ 0x94, i_version_hi @ 0x98, i_projid @ 0x9C,
    });

    /// A zeroed inode record of `inode_size` bytes, with `i_extra_isize` = 32 when the record
    /// holds the whole `struct ext4_inode` (≥ 160 bytes), as a new inode gets.
    pub fn new(inode_size: usize) -> Inode {
        let extra = if inode_size >= EXT4_INODE_STRUCT_SIZE {
            (EXT4_INODE_STRUCT_SIZE - EXT4_GOOD_OLD_INODE_SIZE) as u16
        } else {
            0
        };
        Inode {
            i_extra_isize: extra,
            raw: vec![0; inode_size],
            ..Inode::default()
        }
    }

    /// Parse an inode record (the first `inode_size` bytes of `raw`), with the check of
    /// `ext4_iget()`: `Truncated` if `raw` is shorter than `inode_size` or `inode_size` < 128;
    /// `InodeExtraIsize(ino)` if `i_extra_isize` is not a multiple of 4 or reaches past the
    /// record. Fields past `128 + i_extra_isize` read as 0. Never panics.
    pub fn parse(raw: &[u8], inode_size: usize, ino: Ino) -> Result<Inode> {
        if inode_size < EXT4_GOOD_OLD_INODE_SIZE || raw.len() < inode_size {
            return Err(Error::Corrupt(CorruptKind::Truncated { what: "inode" }));
        }
        let b = &raw[..inode_size];
        let extra = if inode_size >= I_EXTRA_ISIZE + 2 {
            read_u16le(b, I_EXTRA_ISIZE)
        } else {
            0
        };
        if extra % 4 != 0 || usize::from(extra) > inode_size - EXT4_GOOD_OLD_INODE_SIZE {
            return Err(Error::Corrupt(CorruptKind::InodeExtraIsize(ino)));
        }
        let mut inode = Inode {
            i_extra_isize: extra,
            raw: b.to_vec(),
            ..Inode::default()
        };
        inode.read_base(b, EXT4_GOOD_OLD_INODE_SIZE);
        let limit = fits_limit(inode_size, extra);
        inode.read_extra(b, limit);
        let lo16_hi16 = |lo, hi| u32::from(read_u16le(b, lo)) | u32::from(read_u16le(b, hi)) << 16;
        let lo32_hi16 = |lo, hi| u64::from(read_u32le(b, lo)) | u64::from(read_u16le(b, hi)) << 32;
        let lo32_hi32 = |lo, hi| u64::from(read_u32le(b, lo)) | u64::from(read_u32le(b, hi)) << 32;
        inode.i_uid = lo16_hi16(0x02, 0x78);
        inode.i_gid = lo16_hi16(0x18, 0x7A);
        inode.i_size = lo32_hi32(0x04, 0x6C);
        inode.i_blocks = lo32_hi16(0x1C, 0x74);
        inode.i_file_acl = lo32_hi16(0x68, 0x76);
        inode.i_checksum = u32::from(read_u16le(b, I_CHECKSUM_LO));
        if I_CHECKSUM_HI + 2 <= limit {
            inode.i_checksum |= u32::from(read_u16le(b, I_CHECKSUM_HI)) << 16;
        }
        Ok(inode)
    }

    /// Serialize into `out[..raw.len()]`: `raw`, then every modelled field over it. Fields past
    /// `128 + i_extra_isize` are not written (their bytes stay as in `raw`).
    ///
    /// # Panics
    /// If `out` is shorter than `raw`, or `raw` shorter than 128 bytes (a caller bug).
    pub fn write(&self, out: &mut [u8]) {
        let len = self.raw.len();
        assert!(
            len >= EXT4_GOOD_OLD_INODE_SIZE,
            "inode record of {len} bytes"
        );
        let b = &mut out[..len];
        b.copy_from_slice(&self.raw);
        self.write_base(b, EXT4_GOOD_OLD_INODE_SIZE);
        let split16 = [(0x02, 0x78, self.i_uid), (0x18, 0x7A, self.i_gid)];
        for (lo, hi, v) in split16 {
            write_u16le(b, lo, v as u16);
            write_u16le(b, hi, (v >> 16) as u16);
        }
        write_u32le(b, 0x04, self.i_size as u32);
        write_u32le(b, 0x6C, (self.i_size >> 32) as u32);
        write_u32le(b, 0x1C, self.i_blocks as u32);
        write_u16le(b, 0x74, (self.i_blocks >> 32) as u16);
        write_u32le(b, 0x68, self.i_file_acl as u32);
        write_u16le(b, 0x76, (self.i_file_acl >> 32) as u16);
        write_u16le(b, I_CHECKSUM_LO, self.i_checksum as u16);
        if len >= I_EXTRA_ISIZE + 2 {
            write_u16le(b, I_EXTRA_ISIZE, self.i_extra_isize);
        }
        let limit = fits_limit(len, self.i_extra_isize);
        self.write_extra(b, limit);
        if I_CHECKSUM_HI + 2 <= limit {
            write_u16le(b, I_CHECKSUM_HI, (self.i_checksum >> 16) as u16);
        }
    }

    /// The on-disk record (see [`Inode::write`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0; self.raw.len()];
        self.write(&mut b);
        b
    }

    /// `i_block` as the 60 bytes stored on disk (for the extent root or the block map).
    pub fn i_block_bytes(&self) -> [u8; 60] {
        let mut b = [0u8; 60];
        for (i, v) in self.i_block.iter().enumerate() {
            write_u32le(&mut b, 4 * i, *v);
        }
        b
    }

    /// Set `i_block` from its 60 on-disk bytes.
    pub fn set_i_block_bytes(&mut self, b: &[u8; 60]) {
        self.i_block = std::array::from_fn(|i| read_u32le(b, 4 * i));
    }

    /// Model of `ext4_inode_blocks()` (fs/ext4/inode.c): blocks in 512-byte units. Without
    /// huge_file only `i_blocks_lo` counts; with it the 48-bit value, in fs blocks if
    /// `EXT4_HUGE_FILE_FL` is set.
    pub fn blocks_512(&self, huge_file_feature: bool, block_size: u32) -> u64 {
        if !huge_file_feature {
            return self.i_blocks & 0xFFFF_FFFF;
        }
        if self.has_flag(EXT4_HUGE_FILE_FL) {
            self.i_blocks << block_size.trailing_zeros().saturating_sub(9)
        } else {
            self.i_blocks
        }
    }

    /// Model of `ext4_inode_blocks_set()`: store `n` 512-byte blocks. Up to 2³²−1: lo only,
    /// `EXT4_HUGE_FILE_FL` cleared. Beyond that huge_file is needed (else `Error::TooBig`; the
    /// kernel says -EFSCORRUPTED, unreachable there because of `s_maxbytes`): up to 2⁴⁸−1 as
    /// is; else with `EXT4_HUGE_FILE_FL` in fs-block units, `Error::TooBig` if that overflows.
    pub fn set_blocks_512(
        &mut self,
        n: u64,
        huge_file_feature: bool,
        block_size: u32,
    ) -> Result<()> {
        const MAX48: u64 = (1 << 48) - 1;
        if n <= u64::from(u32::MAX) || (huge_file_feature && n <= MAX48) {
            self.i_blocks = n;
            self.i_flags &= !EXT4_HUGE_FILE_FL;
            return Ok(());
        }
        let fs_blocks = n >> block_size.trailing_zeros().saturating_sub(9);
        if !huge_file_feature || fs_blocks > MAX48 {
            return Err(Error::TooBig);
        }
        self.i_blocks = fs_blocks;
        self.i_flags |= EXT4_HUGE_FILE_FL;
        Ok(())
    }

    /// The file type bits of `i_mode`.
    fn file_type(&self) -> u16 {
        self.i_mode & S_IFMT
    }

    /// `S_ISDIR(i_mode)`.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    /// `S_ISREG(i_mode)`.
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }

    /// `S_ISLNK(i_mode)`.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    /// Whether any bit of `fl` is set in `i_flags`.
    pub fn has_flag(&self, fl: u32) -> bool {
        self.i_flags & fl != 0
    }
}

/// Model of `ext4_inode_csum_seed()` (set up in `__ext4_iget()`): the per-inode seed
/// crc32c(crc32c(S, le32 ino), le32 gen).
pub fn inode_csum_seed(fs_seed: u32, ino: Ino, gen: u32) -> u32 {
    crc32c_raw(crc32c_raw(fs_seed, &le32(ino.0)), &le32(gen))
}

/// Whether `i_checksum_hi` fits in record `raw` of `inode_size` bytes.
fn csum_hi_fits(raw: &[u8], inode_size: usize) -> bool {
    inode_size >= I_CHECKSUM_HI + 2
        && usize::from(read_u16le(raw, I_EXTRA_ISIZE)) >= EXT4_INODE_CSUM_HI_EXTRA_END
}

/// Model of `ext4_inode_csum()` (fs/ext4/inode.c): the full 32-bit crc32c of the record
/// `raw[..inode_size]` of inode `ino` (seed from `i_generation` in the record), with
/// `l_i_checksum_lo` and (if it fits) `i_checksum_hi` taken as zero.
///
/// # Panics
/// If `raw` is shorter than `inode_size` or `inode_size` < 128.
pub fn inode_csum(fs_seed: u32, ino: Ino, raw: &[u8], inode_size: usize) -> u32 {
    let seed = inode_csum_seed(fs_seed, ino, read_u32le(raw, I_GENERATION));
    inode_csum_seeded(seed, raw, inode_size)
}

/// Model of `ext4_inode_csum()` as the kernel computes it, from the in-core seed
/// `ei->i_csum_seed` (normally [`inode_csum_seed`] of the record's inode and generation; a
/// migration lends the original inode's seed to its temporary inode).
///
/// # Panics
/// If `raw` is shorter than `inode_size` or `inode_size` < 128.
pub fn inode_csum_seeded(seed: u32, raw: &[u8], inode_size: usize) -> u32 {
    let r = &raw[..inode_size];
    let mut c = crc32c_raw(seed, &r[..I_CHECKSUM_LO]);
    c = crc32c_raw(c, &[0, 0]);
    c = crc32c_raw(c, &r[I_CHECKSUM_LO + 2..EXT4_GOOD_OLD_INODE_SIZE]);
    if inode_size > EXT4_GOOD_OLD_INODE_SIZE {
        if csum_hi_fits(r, inode_size) {
            c = crc32c_raw(c, &r[EXT4_GOOD_OLD_INODE_SIZE..I_CHECKSUM_HI]);
            c = crc32c_raw(c, &[0, 0]);
            c = crc32c_raw(c, &r[I_CHECKSUM_HI + 2..]);
        } else {
            c = crc32c_raw(c, &r[EXT4_GOOD_OLD_INODE_SIZE..]);
        }
    }
    c
}

/// Model of `ext4_inode_csum_set()`: store the checksum in `raw` (lo16, and hi16 when
/// `i_checksum_hi` fits). The caller checks metadata_csum and `s_creator_os` == Linux.
///
/// # Panics
/// If `raw` is shorter than `inode_size` or `inode_size` < 128.
pub fn inode_csum_set(fs_seed: u32, ino: Ino, raw: &mut [u8], inode_size: usize) {
    let seed = inode_csum_seed(fs_seed, ino, read_u32le(raw, I_GENERATION));
    inode_csum_set_seeded(seed, raw, inode_size);
}

/// Model of `ext4_inode_csum_set()` with the in-core seed `ei->i_csum_seed`
/// (see [`inode_csum_seeded`]).
///
/// # Panics
/// If `raw` is shorter than `inode_size` or `inode_size` < 128.
pub fn inode_csum_set_seeded(seed: u32, raw: &mut [u8], inode_size: usize) {
    let csum = inode_csum_seeded(seed, raw, inode_size);
    write_u16le(raw, I_CHECKSUM_LO, csum as u16);
    if csum_hi_fits(raw, inode_size) {
        write_u16le(raw, I_CHECKSUM_HI, (csum >> 16) as u16);
    }
}

/// Model of `ext4_inode_csum_verify()` as e2fsprogs' `ext2fs_inode_csum_verify()` does it:
/// compare 32 bits (16 when `i_checksum_hi` does not fit); a record whose first 128 bytes
/// are all zero verifies. False if `raw` is shorter than `inode_size` or `inode_size` < 128.
pub fn inode_csum_verify(fs_seed: u32, ino: Ino, raw: &[u8], inode_size: usize) -> bool {
    if inode_size < EXT4_GOOD_OLD_INODE_SIZE || raw.len() < inode_size {
        return false;
    }
    let mut provided = u32::from(read_u16le(raw, I_CHECKSUM_LO));
    let mut calculated = inode_csum(fs_seed, ino, raw, inode_size);
    if csum_hi_fits(raw, inode_size) {
        provided |= u32::from(read_u16le(raw, I_CHECKSUM_HI)) << 16;
    } else {
        calculated &= 0xFFFF;
    }
    provided == calculated || crate::bytes::is_zero(&raw[..EXT4_GOOD_OLD_INODE_SIZE])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::group_desc::testutil::{after, mkfs, XorShift};

    /// Expected (ino, S_IF type, permissions, links, EXTENTS_FL on ext4).
    const RESERVED: [(u32, u16, u16, u16); 3] = [
        (EXT4_ROOT_INO, S_IFDIR, 0o755, 3),
        (EXT4_JOURNAL_INO, S_IFREG, 0o600, 1),
        (EXT4_GOOD_OLD_FIRST_INO, S_IFDIR, 0o700, 2),
    ];

    #[test]
    fn real_inodes_parse_verify_round_trip_and_match_debugfs() {
        let images = [
            ("-t ext4 -b 1024", true),
            ("-t ext4 -b 4096", true),
            ("-t ext4 -O ^64bit", true),
            ("-t ext4 -I 128", true),
            ("-t ext4 -O ^metadata_csum,uninit_bg", true),
            ("-t ext3", false),
        ];
        for (opts, ext4) in images {
            let Some(img) = mkfs(opts, 16 << 20) else {
                return;
            };
            let sb = img.sb();
            let isz = sb.inode_size() as usize;
            for (ino, kind, perm, links) in RESERVED {
                let raw = img.inode_bytes(&sb, ino);
                let inode = Inode::parse(raw, isz, Ino(ino)).unwrap();
                assert_eq!(inode.to_bytes(), raw, "{opts} ino {ino}");
                assert_eq!(inode.i_mode, kind | perm, "{opts} ino {ino}");
                assert_eq!(inode.i_links_count, links, "{opts} ino {ino}");
                assert_eq!(inode.is_dir(), kind == S_IFDIR);
                assert_eq!(inode.is_reg(), kind == S_IFREG);
                assert!(!inode.is_symlink());
                assert_eq!(inode.has_flag(EXT4_EXTENTS_FL), ext4, "{opts} ino {ino}");
                assert_eq!(inode.i_block_bytes(), raw[0x28..0x64]);
                let stat = img.run("debugfs", &["-R", &format!("stat <{ino}>")]);
                assert_eq!(after(&stat, "Flags: "), Some(u64::from(inode.i_flags)));
                assert_eq!(after(&stat, "  Size: "), Some(inode.i_size));
                assert_eq!(after(&stat, "Blockcount: "), Some(inode.i_blocks));
                assert_eq!(
                    after(&stat, "Generation: "),
                    Some(u64::from(inode.i_generation))
                );
                let extra = after(&stat, "Size of extra inode fields: ").unwrap_or(0);
                assert_eq!(u64::from(inode.i_extra_isize), extra, "{opts} ino {ino}");
                if !sb.metadata_csum() {
                    continue;
                }
                let seed = sb.csum_seed();
                assert!(
                    inode_csum_verify(seed, Ino(ino), raw, isz),
                    "{opts} ino {ino}"
                );
                let want = after(&stat, "Inode checksum: ").expect("debugfs checksum");
                assert_eq!(u64::from(inode.i_checksum), want, "{opts} ino {ino}");
                let full = inode_csum(seed, Ino(ino), raw, isz);
                let mask = if isz == 128 { 0xFFFF } else { u32::MAX };
                assert_eq!(full & mask, inode.i_checksum, "{opts} ino {ino}");
                assert!(
                    !inode_csum_verify(seed, Ino(ino + 1), raw, isz),
                    "ino is hashed"
                );
                for pos in [0, 0x28, 0x7C, 0x7F, 0x83, isz - 1]
                    .into_iter()
                    .filter(|&p| p < isz)
                {
                    let mut bad = raw.to_vec();
                    bad[pos] ^= 0x40;
                    assert!(
                        !inode_csum_verify(seed, Ino(ino), &bad, isz),
                        "{opts} byte {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn csum_set_stores_lo16_only_without_room_for_hi() {
        let seed = 0x1234_5678;
        for (isz, extra, hi_stored) in [
            (128, 0, false),
            (256, 0, false),
            (256, 4, true),
            (256, 32, true),
        ] {
            let mut inode = Inode::new(isz);
            inode.i_extra_isize = extra;
            (inode.i_mode, inode.i_generation, inode.i_size) = (S_IFREG | 0o644, 77, 4096);
            let mut raw = inode.to_bytes();
            if isz > 128 {
                raw[0x82..0x84].copy_from_slice(&[0xAB, 0xCD]);
            }
            inode_csum_set(seed, Ino(12), &mut raw, isz);
            assert!(inode_csum_verify(seed, Ino(12), &raw, isz));
            let full = inode_csum(seed, Ino(12), &raw, isz);
            assert_eq!(read_u16le(&raw, 0x7C), full as u16);
            let hi = isz > 128 && read_u16le(&raw, 0x82) == (full >> 16) as u16;
            assert_eq!(hi, hi_stored, "size {isz} extra {extra}");
            let parsed = Inode::parse(&raw, isz, Ino(12)).unwrap();
            let want = if hi_stored { full } else { full & 0xFFFF };
            assert_eq!(parsed.i_checksum, want);
        }
    }

    #[test]
    fn an_all_zero_base_verifies() {
        assert!(inode_csum_verify(7, Ino(3), &[0u8; 256], 256));
        let mut raw = [0u8; 256];
        raw[200] = 1;
        assert!(
            inode_csum_verify(7, Ino(3), &raw, 256),
            "only the first 128 bytes count"
        );
        raw[5] = 1;
        assert!(!inode_csum_verify(7, Ino(3), &raw, 256));
        assert!(!inode_csum_verify(7, Ino(3), &raw, 512), "short record");
    }

    #[test]
    fn extra_isize_is_checked_and_limits_the_fields() {
        let mut raw = XorShift(0x1_0DE).bytes(256);
        for (extra, ok) in [
            (0u16, true),
            (4, true),
            (32, true),
            (128, true),
            (6, false),
            (132, false),
        ] {
            raw[0x80..0x82].copy_from_slice(&extra.to_le_bytes());
            let got = Inode::parse(&raw, 256, Ino(42));
            match ok {
                true => assert_eq!(got.unwrap().to_bytes(), raw, "extra {extra}"),
                false => assert_eq!(
                    got,
                    Err(Error::Corrupt(CorruptKind::InodeExtraIsize(Ino(42))))
                ),
            }
        }
        raw[0x80..0x82].copy_from_slice(&4u16.to_le_bytes());
        let mut inode = Inode::parse(&raw, 256, Ino(42)).unwrap();
        assert_eq!(
            (inode.i_ctime_extra, inode.i_projid),
            (0, 0),
            "past 128 + 4 reads as 0"
        );
        assert_eq!(inode.i_checksum >> 16, u32::from(read_u16le(&raw, 0x82)));
        inode.i_projid = 99;
        assert_eq!(
            inode.to_bytes()[0x84..],
            raw[0x84..],
            "not written past 128 + 4"
        );
        inode.i_extra_isize = 32;
        assert_eq!(read_u32le(&inode.to_bytes(), 0x9C), 99);
        let short = Err(Error::Corrupt(CorruptKind::Truncated { what: "inode" }));
        assert_eq!(Inode::parse(&raw[..255], 256, Ino(1)), short);
        assert_eq!(Inode::parse(&raw, 64, Ino(1)), short);
    }

    #[test]
    fn new_inodes_and_split_fields_round_trip() {
        assert_eq!(Inode::new(256).i_extra_isize, 32);
        assert_eq!(Inode::new(128).i_extra_isize, 0);
        let mut inode = Inode::new(256);
        inode.i_uid = 0x0001_0002;
        inode.i_gid = 0x0003_0004;
        inode.i_size = 0x5_0000_0006;
        inode.i_blocks = 0x7_0000_0008;
        inode.i_file_acl = 0x9_0000_000A;
        inode.i_checksum = 0xBBBB_CCCC;
        inode.set_i_block_bytes(&std::array::from_fn(|i| i as u8));
        let b = inode.to_bytes();
        let words = [
            (0x02, 2),
            (0x78, 1),
            (0x18, 4),
            (0x7A, 3),
            (0x74, 7),
            (0x76, 9),
        ];
        for (off, v) in words {
            assert_eq!(read_u16le(&b, off), v, "offset {off:#x}");
        }
        assert_eq!((read_u32le(&b, 0x04), read_u32le(&b, 0x6C)), (6, 5));
        assert_eq!(
            (read_u16le(&b, 0x7C), read_u16le(&b, 0x82)),
            (0xCCCC, 0xBBBB)
        );
        assert_eq!(
            (read_u16le(&b, 0x80), read_u32le(&b, 0x28)),
            (32, 0x0302_0100)
        );
        assert_eq!(
            Inode::parse(&b, 256, Ino(12)).unwrap(),
            Inode {
                raw: b.clone(),
                ..inode
            }
        );
    }

    #[test]
    fn blocks_count_follows_ext4_inode_blocks() {
        let mut inode = Inode::new(256);
        inode.i_flags = EXT4_HUGE_FILE_FL;
        inode.set_blocks_512(100, false, 1024).unwrap();
        assert_eq!((inode.i_blocks, inode.i_flags), (100, 0));
        assert_eq!(
            inode.set_blocks_512(1 << 32, false, 1024),
            Err(Error::TooBig)
        );
        inode.set_blocks_512(1 << 32, true, 1024).unwrap();
        assert_eq!(
            (inode.i_blocks, inode.has_flag(EXT4_HUGE_FILE_FL)),
            (1 << 32, false)
        );
        assert_eq!(inode.blocks_512(true, 1024), 1 << 32);
        assert_eq!(
            inode.blocks_512(false, 1024),
            0,
            "hi half ignored without huge_file"
        );
        inode.set_blocks_512(1 << 48, true, 4096).unwrap();
        assert_eq!(
            (inode.i_blocks, inode.has_flag(EXT4_HUGE_FILE_FL)),
            (1 << 45, true)
        );
        assert_eq!(inode.blocks_512(true, 4096), 1 << 48);
        let b = inode.to_bytes();
        assert_eq!((read_u32le(&b, 0x1C), read_u16le(&b, 0x74)), (0, 1 << 13));
        assert_eq!(
            inode.set_blocks_512(1 << 60, true, 1024),
            Err(Error::TooBig)
        );
    }

    #[test]
    fn flag_masks_match_ext4_h() {
        assert_eq!(EXT4_FL_USER_VISIBLE, 0x725B_DFFF);
        assert_eq!(EXT4_FL_USER_MODIFIABLE, 0x624B_C0FF);
        assert_eq!(EXT4_VERITY_FL, 0x0010_0000);
        assert_eq!(S_IFMT, 0xF000);
        assert_eq!(S_IFLNK, 0xA000);
    }

    #[test]
    fn arbitrary_records_never_panic_and_round_trip() {
        let mut rng = XorShift(0x1A0D_E5EE);
        let mut parsed = 0;
        for _ in 0..3000 {
            let isz = [0, 100, 128, 129, 130, 131, 132, 160, 256, 512][rng.below(10) as usize];
            let len = rng.below(600) as usize;
            let mut raw = rng.bytes(len);
            if len > 0x82 && rng.below(2) == 0 {
                raw[0x80..0x82].copy_from_slice(&(4 * rng.below(40) as u16).to_le_bytes());
            }
            let seed = rng.next() as u32;
            let _ = inode_csum_verify(seed, Ino(5), &raw, isz);
            if let Ok(inode) = Inode::parse(&raw, isz, Ino(5)) {
                assert_eq!(inode.to_bytes(), raw[..isz]);
                let _ = inode.blocks_512(true, 4096);
                parsed += 1;
            }
        }
        assert!(parsed > 300, "only {parsed} records parsed");
    }
}
