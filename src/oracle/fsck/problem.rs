//! Problem codes: the stable vocabulary of our fsck.
//!
//! Every code that has an equivalent in e2fsck keeps e2fsck's name and number from
//! `e2fsck/problem.h` (`0xPPNNNN`, `PP` = pass: `00` superblock and journal, `01` pass 1, `011`
//! pass 1B, `02`–`05` passes 2 to 5), so a problem can be compared with e2fsck's
//! `problem_log_filename` output by number. The few facts e2fsck has no code for use the
//! private range `0xE4PPNNNN` and an `E4_` prefix.
//!
//! Each code has a [`ProblemClass`]. The crash oracle judges by class: after a crash in the
//! middle of an operation only [`ProblemClass::Leak`] problems are allowed (kernel.md §4.9).
//! [`ProblemClass::Info`] marks facts that `e2fsck -n` accepts (it exits 0) but that an oracle
//! may want to see, such as the on-disk `EXT4_VERITY_FL` bit that a leaked migrate marker
//! would leave. A report is *clean* when it holds no `Leak` and no `Corruption` problem.

use crate::units::{Ino, Pblk};
use std::fmt;

/// How bad a problem is, for the oracles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemClass {
    /// Allocated but unowned (a block or inode marked used that nothing owns, a deleted inode
    /// with zero dtime, a free-count mismatch): what a crash in the middle of an operation may
    /// leave behind. Nothing is lost or shared.
    Leak,
    /// Anything else e2fsck would repair: metadata is wrong, shared, or unreachable.
    Corruption,
    /// Accepted by `e2fsck -n` (exit status 0); reported for the oracles that look for it.
    Info,
}

impl ProblemClass {
    /// The class name used in reports and JSON: `leak`, `corruption`, `info`.
    pub fn name(self) -> &'static str {
        match self {
            ProblemClass::Leak => "leak",
            ProblemClass::Corruption => "corruption",
            ProblemClass::Info => "info",
        }
    }
}

/// Defines [`ProblemCode`] from one table: name = number, class, meaning.
macro_rules! problem_codes {
    ($($name:ident = $value:literal, $class:ident, $doc:literal;)*) => {
        /// A stable problem code; the names and numbers follow e2fsck's `problem.h`.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u32)]
        pub enum ProblemCode {
            $(#[doc = $doc] $name = $value,)*
        }

        impl ProblemCode {
            /// Every code, in table order.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$name,)*];

            /// The stable name, e.g. `PR_1_BAD_I_BLOCKS`.
            pub fn name(self) -> &'static str {
                match self {
                    $(ProblemCode::$name => stringify!($name),)*
                }
            }

            /// Whether the problem is a leak, a corruption or information.
            pub fn class(&self) -> ProblemClass {
                match self {
                    $(ProblemCode::$name => ProblemClass::$class,)*
                }
            }

            /// What the code means, in one line.
            pub fn describe(self) -> &'static str {
                match self {
                    $(ProblemCode::$name => $doc,)*
                }
            }
        }
    };
}

problem_codes! {
    // Pass 0: superblock, group descriptors, journal.
    PR_0_BB_NOT_GROUP = 0x000001, Corruption, "block bitmap for a group is not in the group";
    PR_0_IB_NOT_GROUP = 0x000002, Corruption, "inode bitmap for a group is not in the group";
    PR_0_ITABLE_NOT_GROUP = 0x000003, Corruption, "inode table for a group is not in the group";
    PR_0_MISC_CORRUPT_SUPER = 0x00000B, Corruption, "corruption found in the superblock";
    PR_0_JOURNAL_BAD_INODE = 0x00000F, Corruption, "superblock has an invalid journal inode";
    PR_0_JOURNAL_UNSUPP_SUPER = 0x000014, Corruption, "journal superblock is of an unknown type";
    PR_0_JOURNAL_BAD_SUPER = 0x000015, Corruption, "journal superblock is corrupt";
    PR_0_JOURNAL_HAS_JOURNAL = 0x000016, Corruption,
        "superblock has_journal flag is clear, but a journal is present";
    PR_0_JOURNAL_RECOVER_SET = 0x000017, Corruption,
        "superblock needs_recovery flag is set, but no journal is present";
    PR_0_JOURNAL_RECOVERY_CLEAR = 0x000018, Corruption,
        "journal has data, but the recovery flag is clear";
    PR_0_FS_REV_LEVEL = 0x00001A, Corruption, "revision 0 filesystem with feature flags set";
    PR_0_JOURNAL_UNSUPP_ROCOMPAT = 0x000025, Corruption,
        "journal superblock has an unknown read-only feature";
    PR_0_JOURNAL_UNSUPP_INCOMPAT = 0x000026, Corruption,
        "journal superblock has an unknown incompatible feature";
    PR_0_JOURNAL_UNSUPP_VERSION = 0x000027, Corruption, "journal version not supported";
    PR_0_NONZERO_RESERVED_GDT_BLOCKS = 0x00002E, Corruption,
        "s_reserved_gdt_blocks is not zero without the resize_inode feature";
    PR_0_CLEAR_RESIZE_INODE = 0x00002F, Corruption,
        "the resize inode is not clear without the resize_inode feature";
    PR_0_RESIZE_INODE_INVALID = 0x000030, Corruption, "the resize inode is not valid";
    PR_0_BACKUP_JNL = 0x00002D, Info,
        "s_jnl_blocks does not back up the journal inode (e2fsck rewrites it only read-write)";
    PR_0_GDT_CSUM = 0x000035, Corruption, "group descriptor checksum is invalid";
    PR_0_GDT_UNINIT = 0x000036, Corruption,
        "group descriptor marked uninitialized without the checksum feature";
    PR_0_GDT_ITABLE_UNUSED = 0x000038, Corruption, "group descriptor has an invalid unused inodes count";
    PR_0_BB_UNINIT_LAST = 0x000039, Corruption, "last group block bitmap is uninitialized";
    PR_0_CHECK_DESC_FAILED = 0x000045, Corruption,
        "a group's bitmaps or inode table overlap other metadata or leave the filesystem";
    PR_0_META_AND_GDT_CSUM_SET = 0x000046, Corruption, "both metadata_csum and uninit_bg are set";
    PR_0_64BIT_WITHOUT_EXTENTS = 0x000048, Corruption, "64bit is set without extent";
    PR_0_CSUM_SEED_WITHOUT_META_CSUM = 0x00004B, Corruption,
        "metadata_csum_seed is set without metadata_csum";
    PR_0_BAD_MIN_EXTRA_ISIZE = 0x00004D, Corruption, "bad s_min_extra_isize";
    PR_0_BAD_WANT_EXTRA_ISIZE = 0x00004E, Corruption, "bad s_want_extra_isize";
    // Pass 1: inodes, blocks and sizes.
    PR_1_ROOT_NO_DIR = 0x010001, Corruption, "root inode is not a directory";
    PR_1_ROOT_DTIME = 0x010002, Corruption, "root inode has dtime set";
    PR_1_RESERVED_BAD_MODE = 0x010003, Corruption, "reserved inode has a bad mode";
    PR_1_ZERO_DTIME = 0x010004, Leak, "deleted inode has zero dtime";
    PR_1_SET_DTIME = 0x010005, Corruption, "inode is in use, but has dtime set";
    PR_1_ZERO_LENGTH_DIR = 0x010006, Corruption, "inode is a zero-length directory";
    PR_1_BB_CONFLICT = 0x010007, Corruption, "group block bitmap conflicts with other metadata";
    PR_1_IB_CONFLICT = 0x010008, Corruption, "group inode bitmap conflicts with other metadata";
    PR_1_ITABLE_CONFLICT = 0x010009, Corruption, "group inode table conflicts with other metadata";
    PR_1_BAD_I_SIZE = 0x01000C, Corruption, "inode i_size does not match its blocks";
    PR_1_BAD_I_BLOCKS = 0x01000D, Corruption, "inode i_blocks does not match its blocks";
    PR_1_ILLEGAL_BLOCK_NUM = 0x01000E, Corruption, "illegal block number in inode";
    PR_1_TOO_MANY_BAD_BLOCKS = 0x010011, Corruption, "too many illegal blocks in inode";
    PR_1_SET_IMAGIC = 0x01002F, Corruption, "imagic flag set without the imagic_inodes feature";
    PR_1_SET_IMMUTABLE = 0x010030, Corruption, "immutable or append flag on a special inode";
    PR_1_SET_NONZSIZE = 0x010032, Corruption, "non-zero size on a device, fifo or socket inode";
    PR_1_JOURNAL_INODE_NOT_CLEAR = 0x010034, Corruption, "journal inode is not in use, but has data";
    PR_1_JOURNAL_BAD_MODE = 0x010035, Corruption, "journal inode is not a regular file";
    PR_1_LOW_DTIME = 0x010036, Corruption, "inode was part of the orphaned inode list";
    PR_1_BAD_EA_BLOCK = 0x01003A, Corruption, "inode has a bad extended attribute block";
    PR_1_TOOBIG_DIR = 0x010044, Corruption, "block makes a directory too big";
    PR_1_TOOBIG_REG = 0x010045, Corruption, "block makes a file too big";
    PR_1_TOOBIG_SYMLINK = 0x010046, Corruption, "block makes a symlink too big";
    PR_1_HTREE_SET = 0x010047, Corruption, "INDEX_FL set without the dir_index feature";
    PR_1_HTREE_NODIR = 0x010048, Corruption, "INDEX_FL set on a non-directory";
    PR_1_HTREE_BADROOT = 0x010049, Corruption, "htree directory has an invalid root node";
    PR_1_HTREE_HASHV = 0x01004A, Corruption, "htree directory has an unsupported hash version";
    PR_1_HTREE_DEPTH = 0x01004C, Corruption, "htree directory tree is too deep";
    PR_1_EXTRA_ISIZE = 0x01004F, Corruption, "inode has an invalid i_extra_isize";
    PR_1_EXTENT_BAD_START_BLK = 0x010058, Corruption, "extent has an invalid starting block";
    PR_1_EXTENT_ENDS_BEYOND = 0x010059, Corruption, "extent ends beyond the filesystem";
    PR_1_EXTENTS_SET = 0x01005A, Corruption, "EXTENTS_FL set without the extent feature";
    PR_1_EXTENT_FEATURE = 0x01005B, Corruption, "extent-mapped inode, but no extent feature";
    PR_1_UNSET_EXTENT_FL = 0x01005C, Corruption, "inode missing EXTENT_FL, but is in extents format";
    PR_1_FAST_SYMLINK_EXTENT_FL = 0x01005D, Corruption, "fast symlink has EXTENTS_FL set";
    PR_1_OUT_OF_ORDER_EXTENTS = 0x01005E, Corruption, "extents are out of order";
    PR_1_EXTENT_HEADER_INVALID = 0x01005F, Corruption, "extent tree node has an invalid header";
    PR_1_QUOTA_INODE_NOT_CLEAR = 0x010063, Corruption, "quota inode is not in use, but has data";
    PR_1_INVALID_BAD_INODE = 0x010065, Corruption, "the bad block inode looks invalid";
    PR_1_EXTENT_LENGTH_ZERO = 0x010066, Corruption, "extent has zero length";
    PR_1_INODE_IS_GARBAGE = 0x010067, Corruption, "inode seems to contain garbage";
    PR_1_INODE_ONLY_CSUM_INVALID = 0x010068, Corruption,
        "inode passes checks, but its checksum does not match";
    PR_1_EXTENT_ONLY_CSUM_INVALID = 0x01006A, Corruption,
        "extent block passes checks, but its checksum does not match";
    PR_1_EXTENT_INDEX_START_INVALID = 0x01006D, Corruption,
        "extent index does not match the first key of its child";
    PR_1_EXTENT_END_OUT_OF_BOUNDS = 0x01006E, Corruption, "extent ends past its index's range";
    PR_1_INLINE_DATA_SET = 0x010070, Corruption, "INLINE_DATA_FL set without the inline_data feature";
    PR_1_CRITICAL_METADATA_COLLISION = 0x010071, Corruption,
        "mapping block collides with critical metadata";
    PR_1_COLLAPSE_DBLOCK = 0x010072, Corruption, "directory has a gap in its logical blocks";
    PR_1_UNINIT_DBLOCK = 0x010073, Corruption, "directory has an unwritten extent";
    PR_1_SPECIAL_EXTENTS_IDATA = 0x010076, Corruption,
        "special file has the extents or inline-data flag";
    PR_1_EXTENT_COLLISION = 0x01007D, Corruption, "extent maps a logical block mapped before";
    PR_1_EXTENT_BAD_MAX_DEPTH = 0x01007F, Corruption, "extent tree is deeper than possible";
    PR_1_MISSING_EXTENT_HEADER = 0x010081, Corruption, "inode has a corrupt extent header";
    PR_1_CASEFOLD_NONDIR = 0x010088, Corruption, "casefold flag set on a non-directory";
    PR_1_CASEFOLD_FEATURE = 0x010089, Corruption, "casefold flag set without the casefold feature";
    E4_1_FLAG_VERITY_SET = 0xE401_0001, Info,
        "EXT4_VERITY_FL (0x00100000, the old EXT4_EXT_MIGRATE marker) is set on disk";
    E4_1_FLAG_UNKNOWN = 0xE401_0002, Info, "i_flags has bits outside the flags ext4 writes";
    // Pass 1B: blocks claimed twice.
    PR_1B_DUP_BLOCK = 0x011002, Corruption, "multiply-claimed block in inode";
    PR_1B_DUP_RANGE = 0x011008, Corruption, "multiply-claimed block range in inode";
    // Pass 2: directory structure.
    PR_2_BAD_INODE_DOT = 0x020001, Corruption, "bad inode number for '.'";
    PR_2_BAD_INO = 0x020002, Corruption, "directory entry has a bad inode number";
    PR_2_UNUSED_INODE = 0x020003, Corruption, "directory entry has a deleted or unused inode";
    PR_2_LINK_DOT = 0x020004, Corruption, "directory entry is a link to '.'";
    PR_2_LINK_DIR = 0x020006, Corruption, "directory entry is a second link to a directory";
    PR_2_LINK_ROOT = 0x020007, Corruption, "directory entry is a link to the root directory";
    PR_2_BAD_NAME = 0x020008, Corruption, "directory entry has illegal characters in its name";
    PR_2_MISSING_DOT = 0x020009, Corruption, "missing '.' in directory";
    PR_2_MISSING_DOT_DOT = 0x02000A, Corruption, "missing '..' in directory";
    PR_2_1ST_NOT_DOT = 0x02000B, Corruption, "first entry in directory is not '.'";
    PR_2_2ND_NOT_DOT_DOT = 0x02000C, Corruption, "second entry in directory is not '..'";
    PR_2_FADDR_ZERO = 0x02000D, Corruption, "i_faddr should be zero";
    PR_2_FILE_ACL_ZERO = 0x02000E, Corruption, "i_file_acl should be zero";
    PR_2_DIR_SIZE_HIGH_ZERO = 0x02000F, Corruption, "i_size_high of a directory should be zero";
    PR_2_BAD_MODE = 0x020012, Corruption, "inode has a bad mode";
    PR_2_DIR_CORRUPTED = 0x020013, Corruption, "directory block is corrupted";
    PR_2_DIRECTORY_HOLE = 0x020015, Corruption, "directory has a hole";
    PR_2_DOT_NULL_TERM = 0x020016, Corruption, "'.' is not NUL terminated";
    PR_2_DOT_DOT_NULL_TERM = 0x020017, Corruption, "'..' is not NUL terminated";
    PR_2_DUP_DOT = 0x02001A, Corruption, "duplicate '.' entry";
    PR_2_DUP_DOT_DOT = 0x02001B, Corruption, "duplicate '..' entry";
    PR_2_SPLIT_DOT = 0x020024, Corruption, "'.' entry is too big";
    PR_2_SET_FILETYPE = 0x020027, Corruption, "directory entry file type is not set";
    PR_2_BAD_FILETYPE = 0x020028, Corruption, "directory entry has the wrong file type";
    PR_2_CLEAR_FILETYPE = 0x020029, Corruption, "file type set without the filetype feature";
    PR_2_NULL_NAME = 0x020030, Corruption, "directory entry has a zero-length name";
    PR_2_INVALID_SYMLINK = 0x020031, Corruption, "symlink is invalid";
    PR_2_FILE_ACL_BAD = 0x020032, Corruption, "i_file_acl is out of range";
    PR_2_REPORT_DUP_DIRENT = 0x020043, Corruption, "duplicate name in a directory block";
    PR_2_BLOCKS_HI_ZERO = 0x020044, Corruption, "i_blocks_hi should be zero";
    PR_2_INOREF_BG_INO_UNINIT = 0x020046, Corruption,
        "entry refers to an inode in a group marked INODE_UNINIT";
    PR_2_INOREF_IN_UNUSED = 0x020047, Corruption,
        "entry refers to an inode in the group's unused area";
    PR_2_I_FILE_ACL_HI_ZERO = 0x020048, Corruption, "i_file_acl_hi should be zero";
    PR_2_LEAF_NODE_MISSING_CSUM = 0x02004C, Corruption, "no space in directory block for a checksum";
    PR_2_LEAF_NODE_ONLY_CSUM_INVALID = 0x02004D, Corruption,
        "directory block passes checks, but its checksum does not match";
    // Pass 3: connectivity.
    PR_3_NO_ROOT_INODE = 0x030001, Corruption, "root inode is not allocated";
    PR_3_UNCONNECTED_DIR = 0x030003, Corruption, "directory is not reachable from the root";
    PR_3_NO_LF_DIR = 0x030004, Info, "/lost+found not found (e2fsck creates it only read-write)";
    PR_3_BAD_DOT_DOT = 0x030005, Corruption, "'..' is not the parent directory";
    PR_3_ROOT_NOT_DIR_ABORT = 0x030014, Corruption, "root inode is not a directory";
    PR_3_LPF_NOTDIR = 0x030017, Info, "/lost+found is not a directory";
    PR_3_LOOPED_DIR = 0x03001D, Corruption, "directory is part of a loop";
    // Pass 4: reference counts.
    PR_4_ZERO_LEN_INODE = 0x040001, Corruption, "unattached zero-length inode";
    PR_4_UNATTACHED_INODE = 0x040002, Corruption, "unattached inode";
    PR_4_BAD_REF_COUNT = 0x040003, Corruption, "inode link count is wrong";
    // Pass 5: group summaries.
    PR_5_INODE_BMAP_PADDING = 0x050001, Corruption, "padding at the end of an inode bitmap is not set";
    PR_5_BLOCK_BMAP_PADDING = 0x050002, Corruption, "padding at the end of the block bitmap is not set";
    PR_5_BLOCK_UNUSED = 0x050004, Leak, "block bitmap difference: marked used, owned by nothing (-)";
    PR_5_BLOCK_USED = 0x050005, Corruption, "block bitmap difference: in use, marked free (+)";
    PR_5_INODE_UNUSED = 0x050008, Leak, "inode bitmap difference: marked used, not in use (-)";
    PR_5_INODE_USED = 0x050009, Corruption, "inode bitmap difference: in use, marked free (+)";
    PR_5_FREE_INODE_COUNT_GROUP = 0x05000B, Leak, "free inodes count wrong for a group";
    PR_5_FREE_DIR_COUNT_GROUP = 0x05000C, Leak, "directories count wrong for a group";
    PR_5_FREE_INODE_COUNT = 0x05000D, Info, "superblock free inodes count wrong (e2fsck fixes it silently)";
    PR_5_FREE_BLOCK_COUNT_GROUP = 0x05000E, Leak, "free blocks count wrong for a group";
    PR_5_FREE_BLOCK_COUNT = 0x05000F, Info, "superblock free blocks count wrong (e2fsck fixes it silently)";
    PR_5_BLOCK_RANGE_UNUSED = 0x050014, Leak, "block range marked used, owned by nothing (-)";
    PR_5_BLOCK_RANGE_USED = 0x050015, Corruption, "block range in use, marked free (+)";
    PR_5_INODE_RANGE_UNUSED = 0x050016, Leak, "inode range marked used, not in use (-)";
    PR_5_INODE_RANGE_USED = 0x050017, Corruption, "inode range in use, marked free (+)";
    PR_5_INODE_UNINIT = 0x050019, Corruption, "inode in use in a group marked INODE_UNINIT";
    PR_5_INODE_BITMAP_CSUM_INVALID = 0x05001A, Corruption, "inode bitmap checksum does not match";
    PR_5_BLOCK_BITMAP_CSUM_INVALID = 0x05001B, Corruption, "block bitmap checksum does not match";
    // Codes e2fsck has no equivalent for.
    E4_0_SB_CSUM_INVALID = 0xE400_0001, Corruption, "superblock checksum does not match";
    E4_0_NEEDS_RECOVERY = 0xE400_0002, Corruption,
        "needs_recovery is set: the journal must be replayed (e2fsck -n only warns)";
}

impl ProblemCode {
    /// The number, as in `problem.h` (or the private `0xE4…` range).
    pub fn value(self) -> u32 {
        self as u32
    }

    /// The code with this number, if any.
    pub fn from_value(value: u32) -> Option<ProblemCode> {
        ProblemCode::ALL
            .iter()
            .copied()
            .find(|c| c.value() == value)
    }

    /// The code with this name, if any.
    pub fn from_name(name: &str) -> Option<ProblemCode> {
        ProblemCode::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding: what, where, and a message in e2fsck's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The code.
    pub code: ProblemCode,
    /// The inode concerned, if any.
    pub ino: Option<Ino>,
    /// The block concerned, if any (the first block of a range).
    pub blk: Option<Pblk>,
    /// The group concerned, if any.
    pub group: Option<u32>,
    /// What is wrong, with the values found and expected.
    pub msg: String,
}

impl Problem {
    /// A problem with only a code and a message.
    pub fn new(code: ProblemCode, msg: impl Into<String>) -> Problem {
        Problem {
            code,
            ino: None,
            blk: None,
            group: None,
            msg: msg.into(),
        }
    }

    /// The same problem, about inode `ino`.
    pub fn ino(mut self, ino: u32) -> Problem {
        self.ino = Some(Ino(ino));
        self
    }

    /// The same problem, about block `blk`.
    pub fn blk(mut self, blk: u64) -> Problem {
        self.blk = Some(Pblk(blk));
        self
    }

    /// The same problem, about group `group`.
    pub fn group(mut self, group: u32) -> Problem {
        self.group = Some(group);
        self
    }

    /// The class of its code.
    pub fn class(&self) -> ProblemClass {
        self.code.class()
    }
}

impl fmt::Display for Problem {
    /// `PR_1_BAD_I_BLOCKS inode 12: i_blocks is 8, should be 16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.name())?;
        if let Some(ino) = self.ino {
            write!(f, " inode {ino}")?;
        } else if let Some(g) = self.group {
            write!(f, " group {g}")?;
        } else if let Some(b) = self.blk {
            write!(f, " block {b}")?;
        }
        write!(f, ": {}", self.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_have_unique_numbers_and_names_with_their_pass() {
        let values: BTreeSet<u32> = ProblemCode::ALL.iter().map(|c| c.value()).collect();
        let names: BTreeSet<&str> = ProblemCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(values.len(), ProblemCode::ALL.len());
        assert_eq!(names.len(), ProblemCode::ALL.len());
        for &c in ProblemCode::ALL {
            let v = c.value();
            let pass = if v >> 24 == 0xE4 {
                (v >> 16) & 0xFF
            } else {
                v >> 16
            };
            let prefix = match c.name().split('_').nth(1) {
                Some("1B") => "1",
                Some(p) => p,
                None => panic!("{c}: no pass in the name"),
            };
            assert_eq!(
                pass & 0xF,
                prefix.parse::<u32>().unwrap(),
                "{c} = {v:#x}: pass of the number and of the name differ"
            );
            assert_eq!(ProblemCode::from_value(v), Some(c));
            assert_eq!(ProblemCode::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn numbers_are_those_of_problem_h() {
        let expect = [
            (ProblemCode::PR_1_ZERO_DTIME, 0x010004, ProblemClass::Leak),
            (
                ProblemCode::PR_1_BAD_I_BLOCKS,
                0x01000D,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_1_ILLEGAL_BLOCK_NUM,
                0x01000E,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_1_INODE_ONLY_CSUM_INVALID,
                0x010068,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_1_EXTENT_ONLY_CSUM_INVALID,
                0x01006A,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_1B_DUP_BLOCK,
                0x011002,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_2_BAD_INO,
                0x020002,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_2_LEAF_NODE_ONLY_CSUM_INVALID,
                0x02004D,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_4_BAD_REF_COUNT,
                0x040003,
                ProblemClass::Corruption,
            ),
            (ProblemCode::PR_5_BLOCK_UNUSED, 0x050004, ProblemClass::Leak),
            (
                ProblemCode::PR_5_BLOCK_USED,
                0x050005,
                ProblemClass::Corruption,
            ),
            (
                ProblemCode::PR_5_FREE_BLOCK_COUNT_GROUP,
                0x05000E,
                ProblemClass::Leak,
            ),
            (
                ProblemCode::PR_5_FREE_BLOCK_COUNT,
                0x05000F,
                ProblemClass::Info,
            ),
            (
                ProblemCode::E4_1_FLAG_VERITY_SET,
                0xE401_0001,
                ProblemClass::Info,
            ),
        ];
        for (code, value, class) in expect {
            assert_eq!((code.value(), code.class()), (value, class), "{code}");
        }
        assert_eq!(
            ProblemCode::from_value(0x010010),
            None,
            "latch codes are not problems"
        );
    }

    #[test]
    fn display_names_the_place() {
        let p = Problem::new(
            ProblemCode::PR_1_BAD_I_BLOCKS,
            "i_blocks is 8, should be 16",
        )
        .ino(12);
        assert_eq!(
            p.to_string(),
            "PR_1_BAD_I_BLOCKS inode 12: i_blocks is 8, should be 16"
        );
        let p = Problem::new(ProblemCode::PR_5_FREE_BLOCK_COUNT_GROUP, "x")
            .group(3)
            .blk(9);
        assert_eq!(p.to_string(), "PR_5_FREE_BLOCK_COUNT_GROUP group 3: x");
        let p = Problem::new(ProblemCode::PR_5_BLOCK_USED, "+4400").blk(4400);
        assert_eq!(p.to_string(), "PR_5_BLOCK_USED block 4400: +4400");
        assert_eq!(p.class().name(), "corruption");
    }
}
