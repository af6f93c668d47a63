//! One node of an extent tree: `struct ext4_extent_header`, `struct ext4_extent_idx`,
//! `struct ext4_extent` and `struct ext4_extent_tail` (fs/ext4/ext4_extents.h). Little-endian.
//!
//! A node is a 12-byte header followed by `eh_max` 12-byte slots, of which the first
//! `eh_entries` are in use. In a leaf (`eh_depth == 0`) the slots are extents; in an index node
//! they are `(ei_block, ei_leaf)` keys pointing one level down. The root lives in the inode's
//! 60-byte `i_block` (`eh_max` = 4, no tail); every other node fills a block, with
//! `eh_max = (bs − 12) / 12` and the tail checksum right after the last slot, at
//! `12 + 12 · eh_max` (not at the end of the block).
//!
//! [`ExtentNode::parse`] models `__ext4_ext_check()` + `ext4_valid_extent_entries()`
//! (fs/ext4/extents.c). Its rejection reasons:
//!
//! | check | kind |
//! |---|---|
//! | fewer than 12 bytes | `Truncated` |
//! | `eh_magic != 0xF30A` | `ExtentMagic` |
//! | `eh_depth > EXT4_MAX_EXTENT_DEPTH` (or ≠ the expected depth, [`ExtentNode::parse_at_depth`]) | `ExtentDepth` |
//! | `eh_max == 0`, `eh_max > (len − 12) / 12`, `eh_entries > eh_max` | `ExtentEntries` |
//! | an extent of length 0, or whose logical range wraps past 2³² − 1 (`ext4_valid_extent()`) | `ExtentEntries` |
//! | extents overlapping or out of order; index keys not strictly increasing | `ExtentOrder` |
//!
//! The kernel reports the last three rows with one message ("invalid extent entries"); we keep
//! a zero-length extent under `ExtentEntries` because the entry itself is invalid, whereas
//! `ExtentOrder` is about the relation between entries. Checks that need the filesystem
//! (physical range: `ExtentRange`; first key equal to the parent's `ei_block`) belong to the
//! tree walker, which knows the geometry and the path.

use crate::bytes::{read_u16le, read_u32le, write_u16le, write_u32le};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::units::{Ino, Lblk, Pblk};

/// `EXT4_EXT_MAGIC`: `eh_magic` of every extent node.
pub const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// `EXT_INIT_MAX_LEN`: longest initialized extent; a raw `ee_len` above it marks an unwritten one.
pub const EXT_INIT_MAX_LEN: u32 = 1 << 15;
/// `EXT_UNWRITTEN_MAX_LEN`: longest unwritten extent.
pub const EXT_UNWRITTEN_MAX_LEN: u32 = EXT_INIT_MAX_LEN - 1;
/// `EXT4_MAX_EXTENT_DEPTH`: deepest tree the kernel accepts.
pub const EXT4_MAX_EXTENT_DEPTH: u16 = 5;
/// `sizeof(struct ext4_extent_header)`.
pub const EXT_HEADER_SIZE: usize = 12;
/// `sizeof(struct ext4_extent)` = `sizeof(struct ext4_extent_idx)`.
pub const EXT_ENTRY_SIZE: usize = 12;
/// `sizeof(struct ext4_extent_tail)`.
pub const EXT_TAIL_SIZE: usize = 4;
/// Size of the in-inode root (`i_block`, 15 × 4 bytes).
pub const EXT_ROOT_SIZE: usize = 60;
/// Largest physical block number an extent can hold (48 bits).
pub const EXT_MAX_PBLK: u64 = (1 << 48) - 1;

/// `struct ext4_extent_header` (12 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtentHeader {
    /// 0x0 `eh_magic`.
    pub eh_magic: u16,
    /// 0x2 `eh_entries`: slots in use.
    pub eh_entries: u16,
    /// 0x4 `eh_max`: slots available.
    pub eh_max: u16,
    /// 0x6 `eh_depth`: 0 for a leaf.
    pub eh_depth: u16,
    /// 0x8 `eh_generation` (unused by ext4, kept for round trips).
    pub eh_generation: u32,
}

/// `struct ext4_extent_idx` (12 bytes): a key of an index node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtentIdx {
    /// 0x0 `ei_block`: first logical block covered by the subtree.
    pub ei_block: u32,
    /// 0x4 `ei_leaf_lo` | 0x8 `ei_leaf_hi` << 32: the child node's physical block.
    pub ei_leaf: u64,
}

/// `struct ext4_extent` (12 bytes): a run of logical blocks mapped to physical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// 0x0 `ee_block`: first logical block.
    pub ee_block: u32,
    /// 0x4 `ee_len`, raw: above [`EXT_INIT_MAX_LEN`] the extent is unwritten.
    pub ee_len: u16,
    /// 0x8 `ee_start_lo` | 0x6 `ee_start_hi` << 32: first physical block.
    pub ee_start: u64,
}

/// The slots of a node: extents in a leaf, keys in an index node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEntries {
    /// `eh_depth > 0`.
    Index(Vec<ExtentIdx>),
    /// `eh_depth == 0`.
    Leaf(Vec<Extent>),
}

/// A checked extent node: header plus its used slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentNode {
    /// The header as read (`eh_entries` equals the number of entries).
    pub header: ExtentHeader,
    /// The used slots.
    pub entries: NodeEntries,
}

/// `ext4_ext_space_root()`: slots in the in-inode root.
pub fn root_max() -> u16 {
    4
}

/// `ext4_ext_space_block()`: slots in a tree block of `block_size` bytes.
pub fn block_max(block_size: u32) -> u16 {
    let slots = (block_size.saturating_sub(12)) / 12;
    u16::try_from(slots).unwrap_or(u16::MAX)
}

/// Byte offset of the tail checksum in a block whose header says `eh_max`
/// (`EXT4_EXTENT_TAIL_OFFSET()`).
pub fn tail_offset(eh_max: u16) -> usize {
    EXT_HEADER_SIZE + EXT_ENTRY_SIZE * usize::from(eh_max)
}

fn corrupt(kind: CorruptKind) -> Error {
    Error::Corrupt(kind)
}

impl ExtentHeader {
    /// A header for an empty node, as `ext4_ext_tree_init()` (root) or `ext4_ext_grow_indepth()`
    /// / `ext4_ext_split()` (blocks) write it.
    pub fn empty(eh_max: u16, eh_depth: u16) -> ExtentHeader {
        ExtentHeader {
            eh_magic: EXT4_EXT_MAGIC,
            eh_entries: 0,
            eh_max,
            eh_depth,
            eh_generation: 0,
        }
    }

    /// Read the 12 header bytes without checking them.
    pub fn read(buf: &[u8]) -> Result<ExtentHeader> {
        if buf.len() < EXT_HEADER_SIZE {
            return Err(corrupt(CorruptKind::Truncated {
                what: "extent header",
            }));
        }
        Ok(ExtentHeader {
            eh_magic: read_u16le(buf, 0x0),
            eh_entries: read_u16le(buf, 0x2),
            eh_max: read_u16le(buf, 0x4),
            eh_depth: read_u16le(buf, 0x6),
            eh_generation: read_u32le(buf, 0x8),
        })
    }

    /// Write the 12 header bytes.
    ///
    /// # Panics
    /// If `buf` is shorter than 12 bytes.
    pub fn write(&self, buf: &mut [u8]) {
        write_u16le(buf, 0x0, self.eh_magic);
        write_u16le(buf, 0x2, self.eh_entries);
        write_u16le(buf, 0x4, self.eh_max);
        write_u16le(buf, 0x6, self.eh_depth);
        write_u32le(buf, 0x8, self.eh_generation);
    }

    /// The header checks of `__ext4_ext_check()` for a node stored in `len` bytes.
    fn check(&self, len: usize, ino: Ino) -> Result<()> {
        if self.eh_magic != EXT4_EXT_MAGIC {
            return Err(corrupt(CorruptKind::ExtentMagic(ino)));
        }
        if self.eh_depth > EXT4_MAX_EXTENT_DEPTH {
            return Err(corrupt(CorruptKind::ExtentDepth(ino)));
        }
        let room = (len - EXT_HEADER_SIZE) / EXT_ENTRY_SIZE;
        if self.eh_max == 0 || usize::from(self.eh_max) > room || self.eh_entries > self.eh_max {
            return Err(corrupt(CorruptKind::ExtentEntries(ino)));
        }
        Ok(())
    }
}

impl ExtentIdx {
    /// A key for the subtree at `pblk` whose first logical block is `lblk`.
    ///
    /// # Panics
    /// If `pblk` needs more than 48 bits.
    pub fn new(lblk: Lblk, pblk: Pblk) -> ExtentIdx {
        assert!(
            pblk.0 <= EXT_MAX_PBLK,
            "physical block {pblk} needs > 48 bits"
        );
        ExtentIdx {
            ei_block: lblk.0,
            ei_leaf: pblk.0,
        }
    }

    /// Read the key at byte offset `off`.
    fn read(buf: &[u8], off: usize) -> ExtentIdx {
        let lo = u64::from(read_u32le(buf, off + 0x4));
        let hi = u64::from(read_u16le(buf, off + 0x8));
        ExtentIdx {
            ei_block: read_u32le(buf, off),
            ei_leaf: (hi << 32) | lo,
        }
    }

    /// Write the key at byte offset `off`; like `ext4_idx_store_pblock()`, `ei_unused` (0xA)
    /// is not touched.
    fn write(&self, buf: &mut [u8], off: usize) {
        write_u32le(buf, off, self.ei_block);
        write_u32le(buf, off + 0x4, self.ei_leaf as u32); // truncation intended: ei_leaf_lo
        write_u16le(buf, off + 0x8, (self.ei_leaf >> 32) as u16); // ei_leaf_hi
    }

    /// The first logical block of the subtree.
    pub fn lblk(&self) -> Lblk {
        Lblk(self.ei_block)
    }

    /// The child node's block (`ext4_idx_pblock()`).
    pub fn pblk(&self) -> Pblk {
        Pblk(self.ei_leaf)
    }
}

impl Extent {
    /// An extent of `len` blocks; `unwritten` sets the high bit of `ee_len`
    /// (`ext4_ext_mark_unwritten()`).
    ///
    /// # Panics
    /// If `len` is 0, above [`EXT_INIT_MAX_LEN`] (initialized) or [`EXT_UNWRITTEN_MAX_LEN`]
    /// (unwritten), if the logical range wraps, or if `pblk` needs more than 48 bits: all bugs in
    /// the caller, which must split long runs.
    pub fn new(lblk: Lblk, len: u32, pblk: Pblk, unwritten: bool) -> Extent {
        let (max, flag) = match unwritten {
            true => (EXT_UNWRITTEN_MAX_LEN, EXT_INIT_MAX_LEN),
            false => (EXT_INIT_MAX_LEN, 0),
        };
        assert!(len >= 1 && len <= max, "extent length {len} out of range");
        let wraps = u64::from(lblk.0) + u64::from(len) > u64::from(u32::MAX);
        assert!(!wraps, "extent at {lblk} of {len} blocks wraps");
        assert!(
            pblk.0 <= EXT_MAX_PBLK,
            "physical block {pblk} needs > 48 bits"
        );
        // OK to unwrap: len + flag <= 2 * EXT_INIT_MAX_LEN - 1 = 0xFFFF.
        let ee_len = u16::try_from(len + flag).unwrap();
        Extent {
            ee_block: lblk.0,
            ee_len,
            ee_start: pblk.0,
        }
    }

    /// Read the extent at byte offset `off`.
    fn read(buf: &[u8], off: usize) -> Extent {
        let hi = u64::from(read_u16le(buf, off + 0x6));
        let lo = u64::from(read_u32le(buf, off + 0x8));
        Extent {
            ee_block: read_u32le(buf, off),
            ee_len: read_u16le(buf, off + 0x4),
            ee_start: (hi << 32) | lo,
        }
    }

    /// Write the extent at byte offset `off`.
    fn write(&self, buf: &mut [u8], off: usize) {
        write_u32le(buf, off, self.ee_block);
        write_u16le(buf, off + 0x4, self.ee_len);
        write_u16le(buf, off + 0x6, (self.ee_start >> 32) as u16); // truncation intended
        write_u32le(buf, off + 0x8, self.ee_start as u32);
    }

    /// Model of `ext4_ext_get_actual_len()`: the length in blocks.
    pub fn len(&self) -> u32 {
        let raw = u32::from(self.ee_len);
        if raw <= EXT_INIT_MAX_LEN {
            raw
        } else {
            raw - EXT_INIT_MAX_LEN
        }
    }

    /// Whether the extent maps no blocks (never true for a parsed extent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Model of `ext4_ext_is_unwritten()`: allocated but reads as zeros.
    pub fn is_unwritten(&self) -> bool {
        u32::from(self.ee_len) > EXT_INIT_MAX_LEN
    }

    /// First logical block.
    pub fn lblk(&self) -> Lblk {
        Lblk(self.ee_block)
    }

    /// First physical block (`ext4_ext_pblock()`).
    pub fn pblk(&self) -> Pblk {
        Pblk(self.ee_start)
    }

    /// Last logical block covered (`ee_block + len − 1`), for a non-empty extent.
    pub fn last_lblk(&self) -> Lblk {
        Lblk(self.ee_block.wrapping_add(self.len()).wrapping_sub(1))
    }

    /// Model of the logical part of `ext4_valid_extent()`: non-empty and not wrapping.
    fn is_valid(&self) -> bool {
        let len = self.len();
        len != 0 && u64::from(self.ee_block) + u64::from(len) <= u64::from(u32::MAX)
    }
}

fn slot_offset(i: usize) -> usize {
    EXT_HEADER_SIZE + EXT_ENTRY_SIZE * i
}

/// Model of the leaf branch of `ext4_valid_extent_entries()`: every extent valid, each one
/// starting after the previous one ends.
fn parse_leaf(buf: &[u8], count: usize, ino: Ino) -> Result<Vec<Extent>> {
    let mut out = Vec::with_capacity(count);
    let mut next_free: u64 = 0;
    for i in 0..count {
        let ext = Extent::read(buf, slot_offset(i));
        if !ext.is_valid() {
            return Err(corrupt(CorruptKind::ExtentEntries(ino)));
        }
        if u64::from(ext.ee_block) < next_free {
            return Err(corrupt(CorruptKind::ExtentOrder(ino)));
        }
        next_free = u64::from(ext.ee_block) + u64::from(ext.len());
        out.push(ext);
    }
    Ok(out)
}

/// Model of the index branch of `ext4_valid_extent_entries()`: keys strictly increasing.
fn parse_index(buf: &[u8], count: usize, ino: Ino) -> Result<Vec<ExtentIdx>> {
    let mut out = Vec::with_capacity(count);
    let mut next_free: u64 = 0;
    for i in 0..count {
        let idx = ExtentIdx::read(buf, slot_offset(i));
        if u64::from(idx.ei_block) < next_free {
            return Err(corrupt(CorruptKind::ExtentOrder(ino)));
        }
        next_free = u64::from(idx.ei_block) + 1;
        out.push(idx);
    }
    Ok(out)
}

impl ExtentNode {
    /// An empty in-inode root, as `ext4_ext_tree_init()` writes it.
    pub fn empty_root() -> ExtentNode {
        ExtentNode::leaf(root_max(), Vec::new())
    }

    /// A leaf with room for `eh_max` extents.
    ///
    /// # Panics
    /// If there are more than `eh_max` extents.
    pub fn leaf(eh_max: u16, extents: Vec<Extent>) -> ExtentNode {
        ExtentNode::with_entries(eh_max, 0, NodeEntries::Leaf(extents))
    }

    /// An index node at depth `eh_depth` (≥ 1) with room for `eh_max` keys.
    ///
    /// # Panics
    /// If `eh_depth` is 0 or there are more than `eh_max` keys.
    pub fn index(eh_max: u16, eh_depth: u16, keys: Vec<ExtentIdx>) -> ExtentNode {
        assert!(eh_depth > 0, "an index node has depth >= 1");
        ExtentNode::with_entries(eh_max, eh_depth, NodeEntries::Index(keys))
    }

    fn with_entries(eh_max: u16, eh_depth: u16, entries: NodeEntries) -> ExtentNode {
        let mut node = ExtentNode {
            header: ExtentHeader::empty(eh_max, eh_depth),
            entries,
        };
        assert!(node.len() <= usize::from(eh_max), "extent node over eh_max");
        // OK to unwrap: len <= eh_max, a u16.
        node.header.eh_entries = u16::try_from(node.len()).unwrap();
        node
    }

    /// Model of `__ext4_ext_check()` (fs/ext4/extents.c): parse and check one node stored in
    /// `buf` (the 60-byte `i_block`, or a whole tree block). `ino` names the owner in errors.
    /// The tail checksum is not checked here: see [`extent_block_csum_verify`].
    pub fn parse(buf: &[u8], ino: Ino) -> Result<ExtentNode> {
        let header = ExtentHeader::read(buf)?;
        header.check(buf.len(), ino)?;
        let count = usize::from(header.eh_entries);
        let entries = if header.eh_depth == 0 {
            NodeEntries::Leaf(parse_leaf(buf, count, ino)?)
        } else {
            NodeEntries::Index(parse_index(buf, count, ino)?)
        };
        Ok(ExtentNode { header, entries })
    }

    /// [`ExtentNode::parse`] for a node the walker expects at tree depth `depth`
    /// (`eh_depth != depth` is the kernel's "unexpected eh_depth").
    pub fn parse_at_depth(buf: &[u8], ino: Ino, depth: u16) -> Result<ExtentNode> {
        let header = ExtentHeader::read(buf)?;
        if header.eh_magic == EXT4_EXT_MAGIC && header.eh_depth != depth {
            return Err(corrupt(CorruptKind::ExtentDepth(ino)));
        }
        ExtentNode::parse(buf, ino)
    }

    /// Number of used slots.
    pub fn len(&self) -> usize {
        match &self.entries {
            NodeEntries::Index(v) => v.len(),
            NodeEntries::Leaf(v) => v.len(),
        }
    }

    /// Whether no slot is used.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a leaf (`eh_depth == 0`).
    pub fn is_leaf(&self) -> bool {
        self.header.eh_depth == 0
    }

    /// Serialize into `buf`: header (with `eh_entries` = the number of entries), the used
    /// slots, and zeros in the unused slots up to `eh_max`. The tail is left alone.
    ///
    /// # Panics
    /// If the node is inconsistent (more entries than `eh_max`, leaf entries at a depth > 0 or
    /// the reverse) or does not fit in `buf`: a bug in the code that built it.
    pub fn write(&self, buf: &mut [u8]) {
        let end = tail_offset(self.header.eh_max).min(buf.len());
        buf[EXT_HEADER_SIZE.min(end)..end].fill(0);
        self.write_used(buf);
    }

    /// Like [`ExtentNode::write`] but leaves the unused slots as they are, the way the kernel
    /// edits a node in place: after `ext4_ext_grow_indepth()` the in-inode root still holds
    /// the extents it had before they moved to the new block, and real images carry them.
    ///
    /// # Panics
    /// As [`ExtentNode::write`].
    pub fn write_used(&self, buf: &mut [u8]) {
        let max = self.header.eh_max;
        assert!(self.len() <= usize::from(max), "extent node over eh_max");
        assert!(
            tail_offset(max) <= buf.len(),
            "extent node larger than buffer"
        );
        assert_eq!(
            self.is_leaf(),
            matches!(self.entries, NodeEntries::Leaf(_)),
            "extent node depth does not match its entries"
        );
        let mut header = self.header;
        // OK to unwrap: len <= eh_max, a u16.
        header.eh_entries = u16::try_from(self.len()).unwrap();
        header.write(buf);
        for i in 0..self.len() {
            match &self.entries {
                NodeEntries::Index(v) => v[i].write(buf, slot_offset(i)),
                NodeEntries::Leaf(v) => v[i].write(buf, slot_offset(i)),
            }
        }
    }
}

/// Model of `ext4_extent_block_csum()` (fs/ext4/extents.c): raw CRC-32C of the header and all
/// `eh_max` slots, seeded with the owner inode's seed.
///
/// # Panics
/// If `buf` is shorter than `12 + 12 · eh_max`.
pub fn extent_block_csum(inode_seed: u32, buf: &[u8], eh_max: u16) -> u32 {
    crc32c_raw(inode_seed, &buf[..tail_offset(eh_max)])
}

/// Model of `ext4_extent_block_csum_set()`: store the checksum in the tail (`et_checksum`).
///
/// # Panics
/// If the header's `eh_max` puts the tail outside `buf` (a block we built ourselves).
pub fn extent_block_csum_set(inode_seed: u32, buf: &mut [u8]) {
    let eh_max = read_u16le(buf, 0x4);
    let csum = extent_block_csum(inode_seed, buf, eh_max);
    write_u32le(buf, tail_offset(eh_max), csum);
}

/// Model of `ext4_extent_block_csum_verify()`: `ExtentChecksum` on a mismatch. A header whose
/// `eh_max` puts the tail outside `buf` is `ExtentEntries`.
pub fn extent_block_csum_verify(inode_seed: u32, buf: &[u8], ino: Ino) -> Result<()> {
    let header = ExtentHeader::read(buf)?;
    let off = tail_offset(header.eh_max);
    if off + EXT_TAIL_SIZE > buf.len() {
        return Err(corrupt(CorruptKind::ExtentEntries(ino)));
    }
    if read_u32le(buf, off) != extent_block_csum(inode_seed, buf, header.eh_max) {
        return Err(corrupt(CorruptKind::ExtentChecksum(ino)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::le32;
    use crate::format::testimg::Img;

    const INO: Ino = Ino(12);

    /// `(ee_block, raw ee_len, ee_start)` triples.
    type Exts = &'static [(u32, u16, u64)];

    fn raw(ee_block: u32, ee_len: u16, ee_start: u64) -> Extent {
        Extent {
            ee_block,
            ee_len,
            ee_start,
        }
    }

    /// A leaf written without any check, so that invalid extents can be built.
    fn leaf_bytes(len: usize, max: u16, exts: &[(u32, u16, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; len];
        let node = ExtentNode::leaf(max, exts.iter().map(|&(l, n, p)| raw(l, n, p)).collect());
        node.write(&mut b);
        b
    }

    fn kind(buf: &[u8], ino: Ino) -> CorruptKind {
        match ExtentNode::parse(buf, ino) {
            Err(Error::Corrupt(k)) => k,
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn leaf_layout_is_exact() {
        let ext = Extent::new(Lblk(7), 3, Pblk(0x1234_5678_9ABC), true);
        let node = ExtentNode::leaf(4, vec![ext]);
        let mut b = [0xEEu8; 60];
        node.write(&mut b);
        let header = [0x0A, 0xF3, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0];
        let extent = [7, 0, 0, 0, 0x03, 0x80, 0x34, 0x12, 0xBC, 0x9A, 0x78, 0x56];
        assert_eq!((&b[..12], &b[12..24]), (&header[..], &extent[..]));
        assert!(b[24..].iter().all(|&x| x == 0), "unused slots are zeroed");
        assert_eq!(ExtentNode::parse(&b, INO).unwrap(), node);
    }

    #[test]
    fn index_layout_is_exact() {
        let keys = vec![
            ExtentIdx::new(Lblk(0), Pblk(0xAB_0000_0010)),
            ExtentIdx::new(Lblk(500), Pblk(77)),
        ];
        let node = ExtentNode::index(4, 2, keys);
        let mut b = [0u8; 60];
        node.write(&mut b);
        assert_eq!(b[..12], [0x0A, 0xF3, 2, 0, 4, 0, 2, 0, 0, 0, 0, 0]);
        assert_eq!(b[12..24], [0, 0, 0, 0, 0x10, 0, 0, 0, 0xAB, 0, 0, 0]);
        assert_eq!(b[24..36], [0xF4, 1, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ExtentNode::parse(&b, INO).unwrap(), node);
        assert_eq!(ExtentNode::parse_at_depth(&b, INO, 2).unwrap(), node);
        let depth_err = Err(Error::Corrupt(CorruptKind::ExtentDepth(INO)));
        assert_eq!(ExtentNode::parse_at_depth(&b, INO, 1), depth_err);
    }

    #[test]
    fn lengths_and_unwritten_bit() {
        let init_max = raw(10, 32768, 1);
        assert_eq!((init_max.len(), init_max.is_unwritten()), (32768, false));
        assert_eq!(init_max.last_lblk(), Lblk(32777));
        let unwritten = raw(0, 32769, 1);
        assert_eq!((unwritten.len(), unwritten.is_unwritten()), (1, true));
        assert_eq!(Extent::new(Lblk(0), 32767, Pblk(9), true).ee_len, 0xFFFF);
        assert_eq!(Extent::new(Lblk(0), 32768, Pblk(9), false).ee_len, 0x8000);
        assert_eq!((block_max(1024), block_max(4096)), (84, 340));
        assert_eq!((tail_offset(84), tail_offset(340)), (1020, 4092));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn unwritten_extent_longer_than_32767_is_a_bug() {
        let _ = Extent::new(Lblk(0), 32768, Pblk(1), true);
    }

    #[test]
    fn header_corruptions_have_precise_kinds() {
        let good = leaf_bytes(60, 4, &[(0, 5, 100)]);
        assert!(ExtentNode::parse(&good, INO).is_ok());
        let short = kind(&good[..11], INO);
        assert!(matches!(
            short,
            CorruptKind::Truncated {
                what: "extent header"
            }
        ));
        // (field offset, value, expected kind)
        let cases = [
            (0, 0xF30B, CorruptKind::ExtentMagic(INO)),
            (6, 6, CorruptKind::ExtentDepth(INO)),
            (4, 0, CorruptKind::ExtentEntries(INO)), // eh_max 0
            (4, 5, CorruptKind::ExtentEntries(INO)), // eh_max above the root's 4
        ];
        for (off, val, want) in cases {
            let mut b = good.clone();
            write_u16le(&mut b, off, val);
            assert_eq!(kind(&b, INO), want, "field at {off} = {val}");
        }
        let mut b = good.clone();
        write_u16le(&mut b, 2, 3);
        write_u16le(&mut b, 4, 2);
        let want = CorruptKind::ExtentEntries(INO);
        assert_eq!(kind(&b, INO), want, "entries > eh_max");
    }

    #[test]
    fn entry_corruptions_have_precise_kinds() {
        let entries = CorruptKind::ExtentEntries(INO);
        let order = CorruptKind::ExtentOrder(INO);
        let bad: [(Exts, CorruptKind); 5] = [
            (&[(0, 0, 100)], entries.clone()),                   // zero length
            (&[(u32::MAX, 1, 100)], entries),                    // wraps past 2^32 - 1
            (&[(0, 0x8000, 100), (32767, 1, 1)], order.clone()), // 0x8000 is 32768 blocks
            (&[(0, 10, 100), (9, 1, 200)], order.clone()),       // overlap
            // The pre-2021 kernel let this through (prev == 0 was "no previous extent").
            (&[(0, 1, 100), (0, 1, 200)], order),
        ];
        for (exts, want) in bad {
            assert_eq!(kind(&leaf_bytes(60, 4, exts), INO), want, "{exts:?}");
        }
        let good: [Exts; 3] = [
            &[(u32::MAX - 1, 1, 100)],
            &[(0, 10, 100), (10, 1, 200)],
            &[(0, 0x8000, 100), (32768, 0x8001, 1)],
        ];
        for exts in good {
            let parsed = ExtentNode::parse(&leaf_bytes(60, 4, exts), INO);
            assert!(parsed.is_ok(), "{exts:?}");
        }
        let mut idx = leaf_bytes(60, 4, &[(5, 1, 100), (5, 1, 200)]);
        write_u16le(&mut idx, 6, 1);
        let want = CorruptKind::ExtentOrder(INO);
        assert_eq!(kind(&idx, INO), want, "index keys must increase");
        write_u32le(&mut idx, slot_offset(1), 6);
        assert!(ExtentNode::parse(&idx, INO).is_ok());
    }

    #[test]
    fn tail_checksum_round_trip() {
        let mut b = leaf_bytes(1024, 84, &[(0, 5, 100)]);
        extent_block_csum_set(0x1234_5678, &mut b);
        assert_eq!(read_u32le(&b, 1020), crc32c_raw(0x1234_5678, &b[..1020]));
        assert_eq!(extent_block_csum_verify(0x1234_5678, &b, INO), Ok(()));
        let bad_csum = Err(Error::Corrupt(CorruptKind::ExtentChecksum(INO)));
        assert_eq!(extent_block_csum_verify(0x1234_5679, &b, INO), bad_csum);
        write_u16le(&mut b, 4, 85);
        let bad_max = Err(Error::Corrupt(CorruptKind::ExtentEntries(INO)));
        assert_eq!(extent_block_csum_verify(0x1234_5678, &b, INO), bad_max);
    }

    #[test]
    fn random_bytes_never_panic_and_parses_round_trip() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for _ in 0..4000 {
            let len = [0, 11, 12, 59, 60, 1024][usize::try_from(next() % 6).unwrap()];
            let mut b: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            if len >= 12 && next() % 4 != 0 {
                // Make the header plausible so the entry checks run.
                write_u16le(&mut b, 0, EXT4_EXT_MAGIC);
                write_u16le(&mut b, 2, u16::try_from(next() % 5).unwrap());
                write_u16le(&mut b, 4, 4);
                write_u16le(&mut b, 6, u16::try_from(next() % 3).unwrap());
            }
            let _ = ExtentNode::parse_at_depth(&b, INO, u16::try_from(next() % 3).unwrap());
            let _ = extent_block_csum_verify(1, &b, INO);
            let Ok(node) = ExtentNode::parse(&b, INO) else {
                continue;
            };
            accepted += 1;
            let mut out = vec![0u8; len];
            node.write(&mut out);
            assert_eq!(ExtentNode::parse(&out, INO).unwrap(), node);
            if node.is_leaf() {
                let used = slot_offset(node.len());
                assert_eq!(out[..used], b[..used]);
            }
            let mut in_place = b.clone();
            node.write_used(&mut in_place);
            assert_eq!(in_place, b, "in-place write of an unchanged leaf or index");
        }
        assert!(accepted > 100, "only {accepted} random nodes parsed");
    }

    // ---- ground truth from mke2fs + debugfs -------------------------------------------------

    /// The rows of `ex name`: level, max level, entry, entries, first, last, pblk, ….
    fn ex(img: &Img, name: &str) -> Vec<Vec<u64>> {
        let row = |l: &str| -> Vec<u64> {
            let words = l.replace(['/', '-'], " ");
            words
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        };
        img.debugfs(&format!("ex {name}"))
            .lines()
            .map(row)
            .filter(|n| n.len() >= 8)
            .collect()
    }

    #[test]
    fn extent_tree_matches_debugfs() {
        let Some(img) = Img::mkfs("extent", None) else {
            return;
        };
        let data: Vec<u8> = (0..300u32 * 1024)
            .map(|i| (i >> 3) as u8 ^ (i >> 11) as u8)
            .collect();
        let mut cmds = "write data f\nwrite data g\n".to_string();
        for start in [10, 30, 50, 70, 90, 110] {
            cmds += &format!("punch g {start} {start}\n");
        }
        cmds += "set_inode_field g generation 0xDEADBEEF\n";
        img.debugfs_script(&cmds, &[("data", &data)]);
        // Changing i_generation invalidates the leaf's checksum; let e2fsck recompute it.
        img.run("e2fsck", &["-fy"]);
        assert!(img.fsck_clean(), "image not clean");

        // f: 300 contiguous blocks, one extent in the in-inode root.
        let root = ExtentNode::parse(&img.inode("f")[0x28..0x64], Ino(12)).unwrap();
        let ex_f = ex(&img, "f");
        let want = ExtentNode::leaf(4, vec![Extent::new(Lblk(0), 300, Pblk(ex_f[0][6]), false)]);
        assert_eq!((root, ex_f.len()), (want, 1));

        // g: 7 extents, so a depth-1 tree with one leaf block.
        let g_inode = img.inode("g");
        let i_block = &g_inode[0x28..0x64];
        assert_eq!(read_u32le(&g_inode, 0x64), 0xDEAD_BEEF);
        let root = ExtentNode::parse(i_block, Ino(13)).unwrap();
        let ex_g = ex(&img, "g");
        let leaf_blk = ex_g[0][6];
        let key = ExtentIdx::new(Lblk(0), Pblk(leaf_blk));
        assert_eq!(root, ExtentNode::index(4, 1, vec![key]));
        // The root keeps the stale extents it had before the tree grew (ext4_ext_grow_indepth
        // and e2fsprogs leave them): write_used() preserves them, write() zeroes them.
        assert_ne!(i_block[24..], [0u8; 36], "stale slots expected");
        let mut out = [0x55u8; 60];
        out.copy_from_slice(i_block);
        root.write_used(&mut out);
        assert_eq!(out, i_block, "root round trip in place");
        root.write(&mut out);
        assert_eq!((&out[..24], &out[24..]), (&i_block[..24], &[0u8; 36][..]));

        let leaf_buf = img.block(leaf_blk);
        let leaf = ExtentNode::parse_at_depth(&leaf_buf, Ino(13), 0).unwrap();
        let exts = ex_g[1..].iter().map(|n| {
            let len = u32::try_from(n[5] - n[4] + 1).unwrap();
            Extent::new(Lblk(u32::try_from(n[4]).unwrap()), len, Pblk(n[6]), false)
        });
        assert_eq!(leaf, ExtentNode::leaf(block_max(1024), exts.collect()));

        let seed = img.inode_seed("g", 13);
        assert_eq!(extent_block_csum_verify(seed, &leaf_buf, Ino(13)), Ok(()));
        let bad_csum = Err(Error::Corrupt(CorruptKind::ExtentChecksum(Ino(13))));
        let gen0_seed = crc32c_raw(crc32c_raw(crc32c_raw(!0, &img.uuid()), &le32(13)), &[0; 4]);
        assert_ne!(seed, gen0_seed);
        assert_eq!(
            extent_block_csum_verify(gen0_seed, &leaf_buf, Ino(13)),
            bad_csum
        );
        let mut out = leaf_buf.clone();
        out[..1020].fill(0xAA);
        leaf.write(&mut out);
        extent_block_csum_set(seed, &mut out);
        assert_eq!(out, leaf_buf, "leaf round trip, checksum included");

        let mut flipped = leaf_buf.clone();
        flipped[12 + 12 + 8] ^= 1; // second extent's ee_start_lo
        assert_eq!(extent_block_csum_verify(seed, &flipped, Ino(13)), bad_csum);
        flipped[0] ^= 0xFF;
        assert_eq!(kind(&flipped, Ino(13)), CorruptKind::ExtentMagic(Ino(13)));
    }
}
