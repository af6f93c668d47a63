//! The engine's error type. Two failure channels are never mixed: bad *input* (a corrupt image, a
//! bad journal, an injected I/O error, ENOSPC) is an [`Error`]; a broken invariant of our own code
//! is an `assert!`, which the fuzzers report as a `panic` finding.

use crate::units::{Ino, Lblk, Pblk};
use std::fmt;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can return for a problem with its input or its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// On-disk metadata is inconsistent (`-EFSCORRUPTED`, or `-EFSBADCRC` for checksums).
    Corrupt(CorruptKind),
    /// The image uses a feature the engine does not model.
    Unsupported(String),
    /// A (simulated or host) I/O error (`-EIO`).
    Io(IoError),
    /// No free blocks or inodes (`-ENOSPC`).
    NoSpace,
    /// The operation must be retried (`-EAGAIN`), e.g. a migration raced an allocation.
    Again,
    /// The journal has aborted; the filesystem is read-only (`-EROFS` after `jbd2_journal_abort`).
    Aborted,
    /// No such file or directory (`-ENOENT`).
    NotFound(String),
    /// The name exists already (`-EEXIST`).
    Exists(String),
    /// A path component is not a directory (`-ENOTDIR`).
    NotDir(String),
    /// The target is a directory (`-EISDIR`).
    IsDir(String),
    /// The directory is not empty (`-ENOTEMPTY`).
    NotEmpty(String),
    /// An argument is invalid for this object (`-EINVAL`), with the kernel's reason.
    Invalid(String),
    /// The operation is not supported for this object (`-EOPNOTSUPP`), with the reason.
    NotSupported(String),
    /// The file would exceed the format's limits (`-EFBIG`).
    TooBig,
}

/// An I/O error: which operation, where, and whether it was injected by a fault plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoError {
    /// What failed.
    pub op: IoOp,
    /// The device block concerned (0 for host file errors).
    pub block: Pblk,
    /// Detail (the host error text, or "injected").
    pub detail: String,
}

/// The kind of I/O that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// A block read.
    Read,
    /// A block write.
    Write,
    /// A cache flush.
    Flush,
    /// Host file access (loading or saving an image).
    Host,
}

/// The precise reason metadata was rejected. Tests assert the exact kind, so a parser that
/// rejects input "for the wrong reason" is caught.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptKind {
    /// The image is shorter than the structure being read.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// `s_magic` is not 0xEF53.
    SuperblockMagic,
    /// A superblock geometry field is out of range.
    SuperblockGeometry(&'static str),
    /// The superblock checksum does not match.
    SuperblockChecksum,
    /// A group descriptor points outside its valid range.
    GroupDescriptor {
        /// The group.
        group: u32,
        /// Which field.
        field: &'static str,
    },
    /// A group descriptor checksum does not match.
    GroupDescriptorChecksum(u32),
    /// A block bitmap checksum does not match.
    BlockBitmapChecksum(u32),
    /// An inode bitmap checksum does not match.
    InodeBitmapChecksum(u32),
    /// An inode number is 0 or past `s_inodes_count`.
    InodeNumber(Ino),
    /// An inode checksum does not match.
    InodeChecksum(Ino),
    /// `i_extra_isize` is invalid.
    InodeExtraIsize(Ino),
    /// An inode field is inconsistent.
    InodeField {
        /// The inode.
        ino: Ino,
        /// Which field.
        field: &'static str,
    },
    /// An extent header has the wrong magic.
    ExtentMagic(Ino),
    /// An extent header has a bad depth.
    ExtentDepth(Ino),
    /// An extent header has more entries than `eh_max`, or `eh_max` is too large.
    ExtentEntries(Ino),
    /// Extents or indexes are out of order or overlap.
    ExtentOrder(Ino),
    /// An extent points outside the filesystem.
    ExtentRange(Ino),
    /// An extent block checksum does not match.
    ExtentChecksum(Ino),
    /// A logical block at or past `EXT_MAX_BLOCKS` (`0xFFFFFFFF`), which no map can hold
    /// (ext4_map_blocks() returns `-EFSCORRUPTED`; reached through a corrupt `i_size`).
    LogicalBlockOutOfRange {
        /// The inode.
        ino: Ino,
        /// The logical block asked for.
        lblk: Lblk,
    },
    /// An indirect-map pointer is outside the filesystem.
    IndirectBlockOutOfRange {
        /// The inode.
        ino: Ino,
        /// The bad pointer.
        pblk: Pblk,
    },
    /// A directory entry is malformed.
    DirEntry {
        /// The directory.
        ino: Ino,
        /// Why.
        why: &'static str,
    },
    /// A directory block checksum does not match.
    DirChecksum(Ino),
    /// A block number read from metadata is outside the filesystem.
    BlockOutOfRange(Pblk),
    /// The journal superblock is invalid.
    JournalSuperblock(&'static str),
    /// The journal superblock checksum does not match.
    JournalSuperblockChecksum,
    /// A journal descriptor block is invalid.
    JournalDescriptor(&'static str),
    /// A journal revoke block is invalid.
    JournalRevoke(&'static str),
    /// A journal commit block is invalid.
    JournalCommit(&'static str),
    /// A journal block checksum does not match.
    JournalChecksum(&'static str),
    /// The journal inode is invalid.
    JournalInode(&'static str),
    /// Other inconsistency, named.
    Other(&'static str),
    /// A block being freed is already free in the bitmap (mapped twice, or a bad pointer).
    FreeingFreeBlock(Pblk),
    /// An inode being freed is already free in the inode bitmap.
    FreeingFreeInode(Ino),
    /// A block being freed lies outside the filesystem or in group metadata
    /// (`ext4_inode_block_valid()` fails).
    FreeingSystemBlock(Pblk),
    /// An indirect block was released while the map still used it: it is referenced from
    /// inside its own subtree (the kernel's "circular indirect block detected").
    IndirectBlockCircular {
        /// The inode.
        ino: Ino,
        /// The indirect block.
        pblk: Pblk,
    },
    /// Journal recovery stopped: the log is inconsistent in a way `jbd2_journal_recover()`
    /// reports as an error (`-EIO`, `-EFSCORRUPTED`), with the reason.
    JournalRecovery(&'static str),
    /// The first key of an extent tree block differs from the `ei_block` of the index that
    /// points to it (`ext4_valid_extent_entries()`).
    ExtentIndexKey(Ino),
    /// An extent tree change found the tree inconsistent (the `EXT4_ERROR_INODE()` paths of
    /// fs/ext4/extents.c that return `-EFSCORRUPTED`), with the kernel's reason.
    ExtentTree {
        /// The inode.
        ino: Ino,
        /// What was wrong.
        why: &'static str,
    },
}

impl Error {
    /// The kernel errno this error corresponds to (positive), for comparisons with real runs.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Corrupt(k) if k.is_checksum() => 74, // EBADMSG = EFSBADCRC
            Error::Corrupt(_) => 117,                   // EUCLEAN = EFSCORRUPTED
            Error::Unsupported(_) | Error::NotSupported(_) => 95,
            Error::Io(_) => 5,
            Error::NoSpace => 28,
            Error::Again => 11,
            Error::Aborted => 30, // EROFS
            Error::NotFound(_) => 2,
            Error::Exists(_) => 17,
            Error::NotDir(_) => 20,
            Error::IsDir(_) => 21,
            Error::NotEmpty(_) => 39,
            Error::Invalid(_) => 22,
            Error::TooBig => 27,
        }
    }

    /// An I/O error on the host (loading or saving an image file).
    pub fn host(detail: impl fmt::Display) -> Error {
        Error::Io(IoError {
            op: IoOp::Host,
            block: Pblk(0),
            detail: detail.to_string(),
        })
    }

    /// Shorthand for `Error::Corrupt(kind)`.
    pub fn corrupt(kind: CorruptKind) -> Error {
        Error::Corrupt(kind)
    }
}

impl CorruptKind {
    /// Whether this is a checksum failure (`-EFSBADCRC`) rather than a structural one.
    pub fn is_checksum(&self) -> bool {
        matches!(
            self,
            CorruptKind::SuperblockChecksum
                | CorruptKind::GroupDescriptorChecksum(_)
                | CorruptKind::BlockBitmapChecksum(_)
                | CorruptKind::InodeBitmapChecksum(_)
                | CorruptKind::InodeChecksum(_)
                | CorruptKind::ExtentChecksum(_)
                | CorruptKind::DirChecksum(_)
                | CorruptKind::JournalSuperblockChecksum
                | CorruptKind::JournalChecksum(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corrupt(k) => write!(f, "corrupt filesystem: {k}"),
            Error::Unsupported(s) => write!(f, "unsupported: {s}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::NoSpace => write!(f, "no space left on device"),
            Error::Again => write!(f, "resource temporarily unavailable (EAGAIN)"),
            Error::Aborted => write!(f, "journal aborted: filesystem is read-only"),
            Error::NotFound(p) => write!(f, "{p}: no such file or directory"),
            Error::Exists(p) => write!(f, "{p}: file exists"),
            Error::NotDir(p) => write!(f, "{p}: not a directory"),
            Error::IsDir(p) => write!(f, "{p}: is a directory"),
            Error::NotEmpty(p) => write!(f, "{p}: directory not empty"),
            Error::Invalid(s) => write!(f, "invalid argument: {s}"),
            Error::NotSupported(s) => write!(f, "operation not supported: {s}"),
            Error::TooBig => write!(f, "file too large"),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            IoOp::Host => write!(f, "I/O error: {}", self.detail),
            op => write!(
                f,
                "I/O error: {op:?} of block {}: {}",
                self.block, self.detail
            ),
        }
    }
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CorruptKind::*;
        match self {
            Truncated { what } => write!(f, "{what} is truncated"),
            SuperblockMagic => write!(f, "bad superblock magic (not an ext2/3/4 filesystem)"),
            SuperblockGeometry(w) => write!(f, "superblock field {w} is out of range"),
            SuperblockChecksum => write!(f, "superblock checksum does not match"),
            GroupDescriptor { group, field } => write!(f, "group {group} descriptor: bad {field}"),
            GroupDescriptorChecksum(g) => write!(f, "group {g} descriptor checksum does not match"),
            BlockBitmapChecksum(g) => write!(f, "group {g} block bitmap checksum does not match"),
            InodeBitmapChecksum(g) => write!(f, "group {g} inode bitmap checksum does not match"),
            InodeNumber(i) => write!(f, "inode number {i} is out of range"),
            InodeChecksum(i) => write!(f, "inode {i} checksum does not match"),
            InodeExtraIsize(i) => write!(f, "inode {i} has a bad i_extra_isize"),
            InodeField { ino, field } => write!(f, "inode {ino}: bad {field}"),
            ExtentMagic(i) => write!(f, "inode {i}: bad extent header magic"),
            ExtentDepth(i) => write!(f, "inode {i}: bad extent tree depth"),
            ExtentEntries(i) => write!(f, "inode {i}: bad extent entry count"),
            ExtentOrder(i) => write!(f, "inode {i}: extents out of order or overlapping"),
            ExtentRange(i) => write!(f, "inode {i}: extent outside the filesystem"),
            ExtentChecksum(i) => write!(f, "inode {i}: extent block checksum does not match"),
            LogicalBlockOutOfRange { ino, lblk } => {
                write!(f, "inode {ino}: logical block {lblk} past EXT_MAX_BLOCKS")
            }
            IndirectBlockOutOfRange { ino, pblk } => {
                write!(
                    f,
                    "inode {ino}: indirect pointer {pblk} outside the filesystem"
                )
            }
            DirEntry { ino, why } => write!(f, "directory {ino}: {why}"),
            DirChecksum(i) => write!(f, "directory {i}: block checksum does not match"),
            BlockOutOfRange(b) => write!(f, "block {b} is outside the filesystem"),
            JournalSuperblock(w) => write!(f, "journal superblock: {w}"),
            JournalSuperblockChecksum => write!(f, "journal superblock checksum does not match"),
            JournalDescriptor(w) => write!(f, "journal descriptor block: {w}"),
            JournalRevoke(w) => write!(f, "journal revoke block: {w}"),
            JournalCommit(w) => write!(f, "journal commit block: {w}"),
            JournalChecksum(w) => write!(f, "journal checksum does not match: {w}"),
            JournalInode(w) => write!(f, "journal inode: {w}"),
            Other(w) => write!(f, "{w}"),
            FreeingFreeBlock(b) => write!(f, "freeing block {b}, which is already free"),
            FreeingFreeInode(i) => write!(f, "freeing inode {i}, which is already free"),
            FreeingSystemBlock(b) => write!(f, "freeing block {b}, which is not a data block"),
            IndirectBlockCircular { ino, pblk } => {
                write!(f, "inode {ino}: circular indirect block {pblk}")
            }
            JournalRecovery(w) => write!(f, "journal recovery failed: {w}"),
            ExtentIndexKey(i) => write!(f, "inode {i}: extent block key differs from its index"),
            ExtentTree { ino, why } => write!(f, "inode {ino}: extent tree: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<CorruptKind> for Error {
    fn from(k: CorruptKind) -> Error {
        Error::Corrupt(k)
    }
}
