//! Model of fs/ext4/extents.c: the extent-tree half of the block-mapping engine.
//!
//! An extent-mapped inode keeps a B-tree in `i_block`: a 12-byte header and 4 slots in the
//! inode itself (the root), and below it tree blocks (`eh_max = (bs − 12) / 12` slots, the
//! `metadata_csum` tail at `12 + 12 · eh_max`). Index nodes hold `(ei_block, ei_leaf)` keys,
//! leaves hold extents `(ee_block, ee_len, ee_start)`; an `ee_len` above 32768 marks an
//! unwritten (preallocated) extent that reads as zeros. See [`crate::format::extent`] for the
//! bytes; this module changes trees the way the kernel does, in place, slot by slot, so the
//! trees (and their stale slots) are the kernel's.
//!
//! The split follows the kernel's steps:
//!
//! | file | kernel functions |
//! |---|---|
//! | `node.rs` | node access in place, `ext4_ext_get_access()`, `ext4_ext_dirty()`, `__ext4_ext_check()`, `read_extent_tree_block()` |
//! | `path.rs` | `struct ext4_ext_path`, `ext4_find_extent()`, the binary searches, `ext4_ext_next_allocated_block()`, `ext4_ext_determine_hole()` |
//! | `insert.rs` | `ext4_ext_insert_extent()`, `ext4_can_extents_be_merged()`, `ext4_ext_try_to_merge()`, `ext4_ext_correct_indexes()` |
//! | `grow.rs` | `ext4_ext_create_new_leaf()`, `ext4_ext_split()`, `ext4_ext_insert_index()`, `ext4_ext_grow_indepth()` |
//! | `split.rs` | `ext4_split_extent_at()`, `ext4_split_extent()`, `ext4_ext_convert_to_initialized()`, `ext4_ext_handle_unwritten_extents()` |
//! | `remove.rs` | `ext4_ext_remove_space()`, `ext4_ext_rm_leaf()`, `ext4_ext_rm_idx()`, `ext4_ext_truncate()`, migrate.c's `free_ext_block()` |
//! | `map.rs` | `ext4_ext_map_blocks()`, `ext4_ext_find_goal()`, migrate.c's `finish_range()` insert |
//!
//! Every tree block goes through the handle API with [`Zone::TreeMeta`](crate::dev::Zone);
//! every block allocated or freed for the inode (data and tree) moves `i_blocks`, as
//! `dquot_alloc_block()` / `dquot_free_block()` do, and marks the inode dirty. Extent blocks
//! are checksummed with `fs.inode(ino).csum_seed` (migrate lends another inode's seed).
//!
//! Not modelled: the extent status cache (`ext4_es_*`), bigalloc clusters (`partial_cluster`),
//! delayed allocation, the system-zone check of `ext4_inode_block_valid()` (only the range is
//! checked), and `ext4_ext_search_left/right()`, which only feed mballoc hints our first-fit
//! allocator does not use.

mod grow;
mod insert;
mod map;
mod node;
mod path;
mod remove;
mod split;
#[cfg(test)]
mod testutil;

pub use insert::can_extents_be_merged;
pub use path::{ExtPath, ExtPathLevel};

use crate::error::{CorruptKind, Error, Result};
use crate::fs::map::MapFlags;
use crate::fs::{Fs, Handle};
use crate::units::Ino;

/// `EXT_MAX_BLOCKS`: one past the largest logical block (`0xFFFFFFFF`).
pub const EXT_MAX_BLOCKS: u32 = 0xFFFF_FFFF;

/// `EXT4_GET_BLOCKS_PRE_IO`: split unwritten extents before I/O, never merge.
pub const GET_BLOCKS_PRE_IO: MapFlags = MapFlags(0x0008);
/// `EXT4_GET_BLOCKS_METADATA_NOFAIL`: may use reserved blocks for tree blocks (our allocator
/// has no reserve, so it only travels along).
pub const GET_BLOCKS_METADATA_NOFAIL: MapFlags = MapFlags(0x0020);

/// `s_extent_max_zeroout_kb` default (sysfs `extent_max_zeroout_kb`): unwritten extents up to
/// this size are zeroed out rather than split when a write converts part of them.
pub const EXT4_EXTENT_MAX_ZEROOUT_KB: u32 = 32;

/// `EXT4_RESERVE_TRANS_BLOCKS`: credits migrate.c reserves before freeing one tree block.
pub const EXT4_RESERVE_TRANS_BLOCKS: u32 = 12;

/// The kernel's `EXT4_ERROR_INODE(...); return -EFSCORRUPTED;` in extents.c.
fn tree_err(ino: Ino, why: &'static str) -> Error {
    Error::Corrupt(CorruptKind::ExtentTree { ino, why })
}

/// Whether any bit of `bit` is set in `flags` (the kernel's `flags & EXT4_GET_BLOCKS_X`).
fn has(flags: MapFlags, bit: MapFlags) -> bool {
    flags.0 & bit.0 != 0
}

impl Fs {
    /// Model of dquot_alloc_block() for `n` blocks of inode `ino`: `i_blocks` grows and the
    /// inode is marked dirty (`mark_inode_dirty_sync()` → `ext4_dirty_inode()`).
    fn dquot_alloc_block(&mut self, h: &mut Handle, ino: Ino, n: u32) -> Result<()> {
        self.inode_add_blocks(ino, i64::from(n))?;
        self.mark_inode_dirty(h, ino)
    }

    /// Model of dquot_free_block(): the reverse of [`Fs::dquot_alloc_block`].
    fn dquot_free_block(&mut self, h: &mut Handle, ino: Ino, n: u32) -> Result<()> {
        self.inode_add_blocks(ino, -i64::from(n))?;
        self.mark_inode_dirty(h, ino)
    }

    /// Model of ext4_ext_space_block() / ext4_ext_space_block_idx(): slots in a tree block.
    fn ext_space_block(&self) -> u16 {
        crate::format::extent::block_max(self.block_size())
    }
}
