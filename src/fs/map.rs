//! Model of ext4_map_blocks() (fs/ext4/inode.c): the one entry point that turns a logical block
//! range of a file into physical blocks, dispatching on `EXT4_EXTENTS_FL` to the indirect-map
//! code ([`indirect`]) or the extent-tree code ([`extents`]).
//!
//! The format test happens under `i_data_sem` in the kernel (c278bfecebfb); in this synchronous
//! core the whole call is one critical section, and the scheduler layer takes `i_data_sem`
//! around it.

pub mod extents;
pub mod indirect;

use crate::error::{CorruptKind, Error, Result};
use crate::fs::inode::EXT4_STATE_EXT_MIGRATE;
use crate::fs::{Fs, Handle};
use crate::profile::Bug;
use crate::units::{Ino, Lblk, Pblk};

/// `EXT4_GET_BLOCKS_*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapFlags(pub u32);

impl MapFlags {
    /// Look up only; never allocate.
    pub const LOOKUP: MapFlags = MapFlags(0);
    /// `EXT4_GET_BLOCKS_CREATE`: allocate blocks for holes.
    pub const CREATE: MapFlags = MapFlags(0x1);
    /// `EXT4_GET_BLOCKS_UNWRIT_EXT`: allocate as unwritten extents (fallocate).
    pub const UNWRIT_EXT: MapFlags = MapFlags(0x2);
    /// `EXT4_GET_BLOCKS_CREATE_UNWRIT_EXT`.
    pub const CREATE_UNWRIT_EXT: MapFlags = MapFlags(0x3);
    /// `EXT4_GET_BLOCKS_CONVERT`: convert unwritten extents to written (after the data is written).
    pub const CONVERT: MapFlags = MapFlags(0x10);

    /// Whether all bits of `other` are set.
    pub fn has(self, other: MapFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for MapFlags {
    type Output = MapFlags;
    fn bitor(self, o: MapFlags) -> MapFlags {
        MapFlags(self.0 | o.0)
    }
}

/// `EXT4_MAP_NEW`: the blocks were allocated by this call.
pub const EXT4_MAP_NEW: u32 = 1 << 0;
/// `EXT4_MAP_MAPPED`: the range is mapped to `pblk`.
pub const EXT4_MAP_MAPPED: u32 = 1 << 1;
/// `EXT4_MAP_UNWRITTEN`: the range is allocated but unwritten (reads as zeroes).
pub const EXT4_MAP_UNWRITTEN: u32 = 1 << 2;
/// `EXT4_MAP_BOUNDARY`: the next block needs another indirect-block read.
pub const EXT4_MAP_BOUNDARY: u32 = 1 << 3;

/// The result of a mapping (`struct ext4_map_blocks` after the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapResult {
    /// First logical block (`m_lblk`).
    pub lblk: Lblk,
    /// First physical block (`m_pblk`); meaningless for a hole.
    pub pblk: Pblk,
    /// Blocks in this mapping; for a hole, a number of unmapped blocks (at most the request and
    /// at most the distance to the next mapped block — the indirect code, like the kernel's,
    /// may report a shorter hole inside a leaf); always ≥ 1.
    pub len: u32,
    /// `EXT4_MAP_*` bits.
    pub flags: u32,
}

impl MapResult {
    /// A hole of `len` blocks at `lblk`.
    pub fn hole(lblk: Lblk, len: u32) -> MapResult {
        MapResult {
            lblk,
            pblk: Pblk(0),
            len,
            flags: 0,
        }
    }

    /// Whether the range is backed by written blocks (`EXT4_MAP_MAPPED` without UNWRITTEN).
    pub fn is_mapped(&self) -> bool {
        self.flags & EXT4_MAP_MAPPED != 0 && self.flags & EXT4_MAP_UNWRITTEN == 0
    }

    /// Whether this call allocated the blocks.
    pub fn is_new(&self) -> bool {
        self.flags & EXT4_MAP_NEW != 0
    }
}

/// The range check at the top of ext4_map_blocks(): no map holds a block at or past
/// `EXT_MAX_BLOCKS` (`-EFSCORRUPTED`; a corrupt `i_size` leads there).
pub fn check_lblk(ino: Ino, lblk: Lblk) -> Result<()> {
    // `m_lblk` is 32 bits wide: EXT_MAX_BLOCKS itself is the only block past the end.
    if lblk.0 == extents::EXT_MAX_BLOCKS {
        return Err(Error::Corrupt(CorruptKind::LogicalBlockOutOfRange {
            ino,
            lblk,
        }));
    }
    Ok(())
}

impl Fs {
    /// Model of ext4_map_blocks(): map `len` blocks from `lblk` of inode `ino` (which must be
    /// loaded). With [`MapFlags::CREATE`] a handle is required and holes are allocated.
    ///
    /// After an allocation on an indirect-mapped inode, the migrate marker is cleared (the
    /// 267e4db9ac28 protocol: `retval > 0 && EXT4_MAP_NEW`, non-extent files only), so a
    /// concurrent migration fails its swap with `-EAGAIN`.
    pub fn map_blocks(
        &mut self,
        h: Option<&mut Handle>,
        ino: Ino,
        lblk: Lblk,
        len: u32,
        flags: MapFlags,
    ) -> Result<MapResult> {
        assert!(len > 0, "map_blocks of zero blocks");
        // "ext4_map_blocks returns an int": m_len is capped at INT_MAX, and no map holds a
        // block at or past EXT_MAX_BLOCKS (a corrupt i_size leads there: -EFSCORRUPTED).
        let len = len.min(i32::MAX as u32);
        check_lblk(ino, lblk)?;
        let extents = self.inode(ino).is_extents();
        let m = if extents {
            self.ext_map_blocks(h, ino, lblk, len, flags)?
        } else {
            self.ind_map_blocks(h, ino, lblk, len, flags)?
        };
        debug_assert!(m.len >= 1 && m.lblk == lblk);
        // S2 (thread v1): the marker was cleared on any successful mapping, lookups included.
        let clears = if self.bugs.has(Bug::S2) {
            m.flags & EXT4_MAP_MAPPED != 0
        } else {
            m.is_new()
        };
        if !extents && clears {
            self.inode_mut(ino).state &= !EXT4_STATE_EXT_MIGRATE;
        }
        Ok(m)
    }

    /// Free every block of `ino` mapped at or after `from` (model of ext4_truncate()'s
    /// block-freeing half: ext4_ind_truncate() / ext4_ext_truncate()). Updates `i_blocks`; the
    /// caller sets `i_size` and marks the inode dirty.
    pub fn truncate_blocks(&mut self, h: &mut Handle, ino: Ino, from: Lblk) -> Result<()> {
        if self.inode(ino).is_extents() {
            self.ext_truncate(h, ino, from)
        } else {
            self.ind_truncate(h, ino, from)
        }
    }

    /// Free the blocks of `ino` in `[start, end)` (model of the block half of
    /// ext4_punch_hole(): ext4_ind_remove_space() / ext4_ext_remove_space()).
    pub fn remove_space(&mut self, h: &mut Handle, ino: Ino, start: Lblk, end: Lblk) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        if self.inode(ino).is_extents() {
            self.ext_remove_space(h, ino, start, end)
        } else {
            self.ind_remove_space(h, ino, start, end)
        }
    }
}
