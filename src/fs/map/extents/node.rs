//! Extent-tree nodes read and edited in place, slot by slot, as the kernel edits them through
//! the pointers of a path (`p_hdr`, `p_idx`, `p_ext`): the root in the inode's `i_block`
//! (`p_bh == NULL`), every other node in a cached tree block. Only the header fields and slots
//! an operation touches change, so stale bytes in unused slots stay where the kernel leaves them.
//!
//! Also here: the node-level halves of the journal protocol (models of ext4_ext_get_access()
//! and __ext4_ext_dirty(), which sets the tail checksum) and the node check run on every
//! tree block read (model of __ext4_ext_check() via read_extent_tree_block()).

use crate::bytes::{read_u16le, read_u32le, write_u16le, write_u32le};
use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::extent::{
    self as fe, Extent, ExtentIdx, ExtentNode, NodeEntries, EXT4_EXT_MAGIC, EXT_ENTRY_SIZE,
    EXT_HEADER_SIZE, EXT_INIT_MAX_LEN,
};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Pblk};

/// Where a node lives: `None` is the in-inode root (the kernel's `p_bh == NULL`), `Some(b)` the
/// tree block `b`.
pub(super) type Bh = Option<Pblk>;

/// The header fields the tree code reads (`eh_entries`, `eh_max`, `eh_depth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hdr {
    /// 0x2 `eh_entries`.
    pub(super) entries: u16,
    /// 0x4 `eh_max`.
    pub(super) max: u16,
    /// 0x6 `eh_depth`.
    pub(super) depth: u16,
}

impl Hdr {
    /// `EXT_HAS_FREE_INDEX()` / "leaf has space": a slot is free.
    pub(super) fn has_free(&self) -> bool {
        self.entries < self.max
    }
}

/// Byte offset of slot `i` (`EXT_FIRST_EXTENT(eh) + i`).
fn slot(i: usize) -> usize {
    EXT_HEADER_SIZE + EXT_ENTRY_SIZE * i
}

/// The header of the node in `b`.
pub(super) fn hdr_of(b: &[u8]) -> Hdr {
    Hdr {
        entries: read_u16le(b, 0x2),
        max: read_u16le(b, 0x4),
        depth: read_u16le(b, 0x6),
    }
}

/// Set `eh_entries`.
pub(super) fn set_entries(b: &mut [u8], n: u16) {
    write_u16le(b, 0x2, n);
}

/// Set `eh_max`.
pub(super) fn set_max(b: &mut [u8], n: u16) {
    write_u16le(b, 0x4, n);
}

/// Set `eh_depth`.
pub(super) fn set_depth(b: &mut [u8], n: u16) {
    write_u16le(b, 0x6, n);
}

/// A fresh header, as ext4_ext_split() writes it into a new block: magic, no entries,
/// `eh_max`, `eh_depth`, `eh_generation = 0`.
pub(super) fn init_header(b: &mut [u8], max: u16, depth: u16) {
    write_u16le(b, 0x0, EXT4_EXT_MAGIC);
    set_entries(b, 0);
    set_max(b, max);
    set_depth(b, depth);
    write_u32le(b, 0x8, 0);
}

/// The extent in slot `i`.
pub(super) fn ext_read(b: &[u8], i: usize) -> Extent {
    let o = slot(i);
    let hi = u64::from(read_u16le(b, o + 0x6));
    Extent {
        ee_block: read_u32le(b, o),
        ee_len: read_u16le(b, o + 0x4),
        ee_start: (hi << 32) | u64::from(read_u32le(b, o + 0x8)),
    }
}

/// Store an extent in slot `i` (`ee_block`, `ee_len`, `ext4_ext_store_pblock()`).
pub(super) fn ext_write(b: &mut [u8], i: usize, e: &Extent) {
    let o = slot(i);
    write_u32le(b, o, e.ee_block);
    write_u16le(b, o + 0x4, e.ee_len);
    write_u16le(b, o + 0x6, (e.ee_start >> 32) as u16); // truncation intended: ee_start_hi
    write_u32le(b, o + 0x8, e.ee_start as u32); // truncation intended: ee_start_lo
}

/// The index key in slot `i`.
pub(super) fn idx_read(b: &[u8], i: usize) -> ExtentIdx {
    let o = slot(i);
    let hi = u64::from(read_u16le(b, o + 0x8));
    ExtentIdx {
        ei_block: read_u32le(b, o),
        ei_leaf: (hi << 32) | u64::from(read_u32le(b, o + 0x4)),
    }
}

/// Store an index key in slot `i` (`ei_block` and `ext4_idx_store_pblock()`; `ei_unused` at
/// 0xA keeps whatever the slot held).
pub(super) fn idx_write(b: &mut [u8], i: usize, ix: &ExtentIdx) {
    let o = slot(i);
    write_u32le(b, o, ix.ei_block);
    write_u32le(b, o + 0x4, ix.ei_leaf as u32); // truncation intended: ei_leaf_lo
    write_u16le(b, o + 0x8, (ix.ei_leaf >> 32) as u16); // ei_leaf_hi
}

/// `memmove()` of `n` slots from slot `from` to slot `to`.
pub(super) fn move_slots(b: &mut [u8], from: usize, to: usize, n: usize) {
    b.copy_within(slot(from)..slot(from + n), slot(to));
}

/// `memset()` of slot `i` to zero.
pub(super) fn zero_slot(b: &mut [u8], i: usize) {
    b[slot(i)..slot(i + 1)].fill(0);
}

/// `ee_len = cpu_to_le16(len)`: the length of an initialized extent (the unwritten bit clear).
///
/// # Panics
/// If `len` does not fit the 16-bit field (a length our callers never build).
pub(super) fn set_len(e: &mut Extent, len: u32) {
    e.ee_len = u16::try_from(len).expect("extent length fits ee_len");
}

/// Model of ext4_ext_mark_unwritten().
///
/// # Panics
/// On an empty or 32768-block extent (the kernel's BUG_ON: it cannot be unwritten).
pub(super) fn mark_unwritten(e: &mut Extent) {
    assert!(
        u32::from(e.ee_len) & !EXT_INIT_MAX_LEN != 0,
        "mark_unwritten on an extent of raw length {:#x}",
        e.ee_len
    );
    e.ee_len |= 0x8000;
}

/// Model of ext4_ext_mark_initialized().
pub(super) fn mark_initialized(e: &mut Extent) {
    let len = e.len();
    set_len(e, len);
}

/// Model of the range half of ext4_inode_block_valid() (the system-zone lookup is not
/// modelled): `[start, start + count)` lies after `s_first_data_block` and inside the disk.
pub(super) fn block_range_valid(fs: &Fs, start: u64, count: u64) -> bool {
    start > u64::from(fs.sb.s_first_data_block)
        && start
            .checked_add(count)
            .is_some_and(|end| end <= fs.sb.s_blocks_count)
}

impl Fs {
    /// Run `f` on the bytes of the node at `bh` of inode `ino`.
    ///
    /// # Panics
    /// If the tree block is not cached: a path holds its blocks (the kernel's `p_bh`
    /// reference), so a missing one is a bug in our code.
    pub(super) fn node_read<R>(&self, ino: Ino, bh: Bh, f: impl FnOnce(&[u8]) -> R) -> R {
        match bh {
            None => f(&self.inode(ino).raw.i_block_bytes()),
            Some(b) => {
                let buf = self.bufs.map.get(&b.0);
                f(&buf.expect("extent path block is not cached").data)
            }
        }
    }

    /// Run `f` on the bytes of the node at `bh`, which the caller holds write access to.
    pub(super) fn node_write<R>(&mut self, ino: Ino, bh: Bh, f: impl FnOnce(&mut [u8]) -> R) -> R {
        match bh {
            None => {
                let mut root = self.inode(ino).raw.i_block_bytes();
                let r = f(&mut root);
                self.inode_mut(ino).raw.set_i_block_bytes(&root);
                r
            }
            Some(b) => f(self.buf_mut(b)),
        }
    }

    /// The header of the node at `bh`.
    pub(super) fn hdr(&self, ino: Ino, bh: Bh) -> Hdr {
        self.node_read(ino, bh, hdr_of)
    }

    /// The extent in slot `i` of the leaf at `bh`.
    pub(super) fn ext_at(&self, ino: Ino, bh: Bh, i: usize) -> Extent {
        self.node_read(ino, bh, |b| ext_read(b, i))
    }

    /// The key in slot `i` of the index node at `bh`.
    pub(super) fn idx_at(&self, ino: Ino, bh: Bh, i: usize) -> ExtentIdx {
        self.node_read(ino, bh, |b| idx_read(b, i))
    }

    /// Store `e` in slot `i` of the leaf at `bh`.
    pub(super) fn put_ext(&mut self, ino: Ino, bh: Bh, i: usize, e: &Extent) {
        self.node_write(ino, bh, |b| ext_write(b, i, e));
    }

    /// Set `eh_entries` of the node at `bh` to `entries + delta` (`le16_add_cpu()`).
    pub(super) fn add_entries(&mut self, ino: Ino, bh: Bh, delta: i32) {
        self.node_write(ino, bh, |b| {
            let n = i32::from(hdr_of(b).entries) + delta;
            set_entries(
                b,
                u16::try_from(n).expect("eh_entries stays within 0..=eh_max"),
            );
        });
    }

    /// Model of ext4_ext_get_access(): journal write access to a tree block; the in-inode
    /// root needs none (the inode is dirtied instead).
    pub(super) fn ext_get_access(&mut self, h: &mut Handle, bh: Bh) -> Result<()> {
        match bh {
            Some(b) => self.get_write_access(h, b, Zone::TreeMeta),
            None => Ok(()),
        }
    }

    /// Model of __ext4_ext_dirty(): a tree block gets its tail checksum and is dirtied; for
    /// the root the inode is marked dirty.
    pub(super) fn ext_dirty(&mut self, h: &mut Handle, ino: Ino, bh: Bh) -> Result<()> {
        match bh {
            Some(b) => {
                self.ext_block_csum_set(ino, b);
                self.dirty_metadata(h, b)
            }
            None => self.mark_inode_dirty(h, ino),
        }
    }

    /// Model of ext4_extent_block_csum_set() (fs/ext4/extents.c): with `metadata_csum`, the
    /// tail checksum of tree block `b`, seeded with the inode's `i_csum_seed`.
    pub(super) fn ext_block_csum_set(&mut self, ino: Ino, b: Pblk) {
        if self.sb.metadata_csum() {
            let seed = self.inode(ino).csum_seed;
            fe::extent_block_csum_set(seed, self.buf_mut(b));
        }
    }

    /// Model of __ext4_ext_check() (fs/ext4/extents.c): check the node in `buf` expected at
    /// tree depth `depth`. `key` is the parent's `ei_block` for a tree block (the root has
    /// none); tree blocks also have their checksum verified.
    fn ext_check(&self, ino: Ino, buf: &[u8], depth: u16, key: Option<u32>) -> Result<()> {
        let node = ExtentNode::parse_at_depth(buf, ino, depth)?;
        if node.is_empty() && depth > 0 {
            return Err(CorruptKind::ExtentEntries(ino).into());
        }
        let range_err = || Error::Corrupt(CorruptKind::ExtentRange(ino));
        let first = match &node.entries {
            NodeEntries::Leaf(v) => {
                for e in v {
                    if !block_range_valid(self, e.ee_start, u64::from(e.len())) {
                        return Err(range_err());
                    }
                }
                v.first().map(|e| e.ee_block)
            }
            NodeEntries::Index(v) => {
                for ix in v {
                    if !block_range_valid(self, ix.ei_leaf, 1) {
                        return Err(range_err());
                    }
                }
                v.first().map(|ix| ix.ei_block)
            }
        };
        if let (Some(key), Some(first)) = (key, first) {
            if key != first {
                return Err(CorruptKind::ExtentIndexKey(ino).into());
            }
        }
        if key.is_some() && self.sb.metadata_csum() {
            fe::extent_block_csum_verify(self.inode(ino).csum_seed, buf, ino)?;
        }
        Ok(())
    }

    /// Model of ext4_ext_check_inode(): check the root in `i_block`; returns the tree depth.
    pub(super) fn ext_check_inode(&self, ino: Ino) -> Result<u16> {
        let root = self.inode(ino).raw.i_block_bytes();
        let depth = hdr_of(&root).depth;
        self.ext_check(ino, &root, depth, None)?;
        Ok(depth)
    }

    /// Model of read_extent_tree_block(): read the child `ix` points to and check it as a
    /// node at depth `depth`. Returns the block (the path's `p_bh`).
    pub(super) fn read_extent_tree_block(
        &mut self,
        ino: Ino,
        ix: ExtentIdx,
        depth: u16,
    ) -> Result<Pblk> {
        let b = ix.pblk();
        self.bread(b, Zone::TreeMeta)?;
        let buf = &self.bufs.map[&b.0].data;
        self.ext_check(ino, buf, depth, Some(ix.ei_block))?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_accessors_round_trip_and_keep_ei_unused() {
        let mut b = vec![0xEEu8; 60];
        init_header(&mut b, 4, 1);
        assert_eq!(
            hdr_of(&b),
            Hdr {
                entries: 0,
                max: 4,
                depth: 1
            }
        );
        assert_eq!(b[..12], [0x0A, 0xF3, 0, 0, 4, 0, 1, 0, 0, 0, 0, 0]);
        let ix = ExtentIdx::new(crate::units::Lblk(7), Pblk(0x12_3456_789A));
        idx_write(&mut b, 1, &ix);
        assert_eq!(idx_read(&b, 1), ix);
        assert_eq!(b[24 + 10..24 + 12], [0xEE, 0xEE], "ei_unused untouched");
        let e = Extent {
            ee_block: 9,
            ee_len: 0x8003,
            ee_start: 0xABCD_0000_0001,
        };
        ext_write(&mut b, 2, &e);
        assert_eq!(ext_read(&b, 2), e);
        move_slots(&mut b, 1, 2, 2);
        assert_eq!(idx_read(&b, 2), ix);
        zero_slot(&mut b, 3);
        assert_eq!(b[48..60], [0; 12]);
    }

    #[test]
    fn unwritten_marks() {
        let mut e = Extent {
            ee_block: 0,
            ee_len: 5,
            ee_start: 100,
        };
        mark_unwritten(&mut e);
        assert_eq!((e.ee_len, e.len(), e.is_unwritten()), (0x8005, 5, true));
        mark_initialized(&mut e);
        assert_eq!((e.ee_len, e.is_unwritten()), (5, false));
        set_len(&mut e, 32768);
        assert_eq!((e.len(), e.is_unwritten()), (32768, false));
    }

    #[test]
    #[should_panic(expected = "mark_unwritten")]
    fn a_32768_block_extent_cannot_be_unwritten() {
        let mut e = Extent {
            ee_block: 0,
            ee_len: 0x8000,
            ee_start: 100,
        };
        mark_unwritten(&mut e);
    }
}
