//! Model of `struct ext4_ext_path` and ext4_find_extent() (fs/ext4/extents.c): the walk from
//! the root to the leaf that covers (or comes closest before) a logical block, remembering at
//! each level the node and the slot followed, so that changes can be made in place and
//! propagated back up.
//!
//! Level 0 is the root in `i_block`; level `depth` is the leaf. The kernel's `p_hdr` is the
//! node itself (reached through `p_bh`, or the inode for level 0); `p_idx` / `p_ext` are slot
//! numbers instead of pointers.

use super::node::{ext_read, hdr_of, idx_read, Bh};
use super::{tree_err, EXT_MAX_BLOCKS};
use crate::bytes::read_u32le;
use crate::error::Result;
use crate::fs::Fs;
use crate::units::{Ino, Lblk, Pblk};

/// One level of a path (`struct ext4_ext_path`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtPathLevel {
    /// `p_block`: for an index level, the child block followed; for the leaf, the physical
    /// block of the extent found. ext4_ext_remove_space() reuses it as an entry count.
    pub p_block: u64,
    /// `p_depth`: the `eh_depth` of this node (the tree depth at level 0, 0 at the leaf).
    pub p_depth: u16,
    /// `p_ext`: the slot of the extent found in a leaf (`None` in an empty leaf).
    pub p_ext: Option<usize>,
    /// `p_idx`: the slot of the key followed in an index node.
    pub p_idx: Option<usize>,
    /// `p_bh`: the tree block holding this node; `None` for the root in `i_block`.
    pub p_bh: Option<Pblk>,
}

/// A path from the root to a leaf (`struct ext4_ext_path *`, an array of `depth + 1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtPath {
    /// Level 0 is the root, the last level the leaf.
    pub levels: Vec<ExtPathLevel>,
}

impl ExtPath {
    /// `path->p_depth`: the depth of the tree when the path was made.
    pub fn depth(&self) -> usize {
        usize::from(self.levels[0].p_depth)
    }
}

impl std::ops::Index<usize> for ExtPath {
    type Output = ExtPathLevel;
    fn index(&self, i: usize) -> &ExtPathLevel {
        &self.levels[i]
    }
}

impl std::ops::IndexMut<usize> for ExtPath {
    fn index_mut(&mut self, i: usize) -> &mut ExtPathLevel {
        &mut self.levels[i]
    }
}

/// The kernel's binary search over keys 1..entries (key 0 is the fallback): the last slot
/// whose key is ≤ `block`, or slot 0. `key(i)` reads the key of slot `i`.
fn binsearch(entries: u16, block: u32, key: impl Fn(usize) -> u32) -> usize {
    let (mut l, mut r) = (1i64, i64::from(entries) - 1);
    while l <= r {
        let m = l + (r - l) / 2;
        // OK to unwrap: 1 <= m <= r < entries.
        if block < key(usize::try_from(m).unwrap()) {
            r = m - 1;
        } else {
            l = m + 1;
        }
    }
    // OK to unwrap: l >= 1.
    usize::try_from(l - 1).unwrap()
}

impl Fs {
    /// Model of ext4_ext_binsearch_idx(): the key to follow in the index node at `bh`.
    fn ext_binsearch_idx(&self, ino: Ino, bh: Bh, block: u32) -> usize {
        self.node_read(ino, bh, |b| {
            binsearch(hdr_of(b).entries, block, |i| read_u32le(b, 12 + 12 * i))
        })
    }

    /// Model of ext4_ext_binsearch(): the extent covering `block` or closest before it in the
    /// leaf at `bh` (the first one if all start after it); `None` in an empty leaf.
    fn ext_binsearch(&self, ino: Ino, bh: Bh, block: u32) -> Option<usize> {
        self.node_read(ino, bh, |b| {
            let entries = hdr_of(b).entries;
            (entries > 0).then(|| binsearch(entries, block, |i| read_u32le(b, 12 + 12 * i)))
        })
    }

    /// Model of ext4_find_extent() (fs/ext4/extents.c): walk from the root to the leaf for
    /// logical block `block` of extent-mapped inode `ino`, checking each node on the way
    /// (the root as ext4_ext_check_inode() does at iget, each block as
    /// read_extent_tree_block() does).
    pub fn ext_find_extent(&mut self, ino: Ino, block: Lblk) -> Result<ExtPath> {
        let depth = self.ext_check_inode(ino)?;
        let mut path = ExtPath {
            levels: Vec::with_capacity(usize::from(depth) + 2),
        };
        path.levels.push(ExtPathLevel {
            p_depth: depth,
            ..ExtPathLevel::default()
        });
        let mut i = depth;
        let mut ppos = 0;
        while i > 0 {
            let bh = path[ppos].p_bh;
            let slot = self.ext_binsearch_idx(ino, bh, block.0);
            let ix = self.idx_at(ino, bh, slot);
            let level = &mut path[ppos];
            level.p_idx = Some(slot);
            level.p_block = ix.ei_leaf;
            level.p_depth = i;
            level.p_ext = None;
            i -= 1;
            let child = self.read_extent_tree_block(ino, ix, i)?;
            ppos += 1;
            path.levels.push(ExtPathLevel {
                p_bh: Some(child),
                p_depth: i,
                ..ExtPathLevel::default()
            });
        }
        let bh = path[ppos].p_bh;
        let found = self.ext_binsearch(ino, bh, block.0);
        let leaf = &mut path[ppos];
        leaf.p_ext = found;
        if let Some(e) = found {
            leaf.p_block = self.ext_at(ino, bh, e).ee_start;
        }
        Ok(path)
    }

    /// Model of ext4_ext_next_allocated_block(): the first logical block mapped after the
    /// extent the path points to (an index key counts as mapped), or `EXT_MAX_BLOCKS`.
    pub(super) fn ext_next_allocated_block(&self, ino: Ino, path: &ExtPath) -> u32 {
        let depth = path.depth();
        if depth == 0 && path[0].p_ext.is_none() {
            return EXT_MAX_BLOCKS;
        }
        for d in (0..=depth).rev() {
            let lv = &path[d];
            let next = self.node_read(ino, lv.p_bh, |b| {
                let entries = usize::from(hdr_of(b).entries);
                if d == depth {
                    let e = lv.p_ext?;
                    (e + 1 < entries).then(|| ext_read(b, e + 1).ee_block)
                } else {
                    let i = lv.p_idx?;
                    (i + 1 < entries).then(|| idx_read(b, i + 1).ei_block)
                }
            });
            if let Some(n) = next {
                return n;
            }
        }
        EXT_MAX_BLOCKS
    }

    /// Model of ext4_ext_next_leaf_block(): the first key of the next leaf, or
    /// `EXT_MAX_BLOCKS`.
    pub(super) fn ext_next_leaf_block(&self, ino: Ino, path: &ExtPath) -> u32 {
        let depth = path.depth();
        for d in (0..depth).rev() {
            let lv = &path[d];
            let next = self.node_read(ino, lv.p_bh, |b| {
                let i = lv.p_idx?;
                (i + 1 < usize::from(hdr_of(b).entries)).then(|| idx_read(b, i + 1).ei_block)
            });
            if let Some(n) = next {
                return n;
            }
        }
        EXT_MAX_BLOCKS
    }

    /// Model of ext4_ext_determine_hole(): for a `lblk` no extent covers, the hole around it
    /// as (start, length); the start is `lblk` itself unless the path's extent lies before it.
    pub(super) fn ext_determine_hole(
        &self,
        ino: Ino,
        path: &ExtPath,
        lblk: u32,
    ) -> Result<(u32, u32)> {
        let depth = path.depth();
        let Some(e) = path[depth].p_ext else {
            return Ok((0, EXT_MAX_BLOCKS));
        };
        let ex = self.ext_at(ino, path[depth].p_bh, e);
        let end = u64::from(ex.ee_block) + u64::from(ex.len());
        if lblk < ex.ee_block {
            Ok((lblk, ex.ee_block - lblk))
        } else if u64::from(lblk) >= end {
            // OK to unwrap: a checked extent ends at or before EXT_MAX_BLOCKS.
            let start = u32::try_from(end).unwrap();
            let next = self.ext_next_allocated_block(ino, path);
            if next <= start {
                // The kernel's BUG_ON(next == *lblk): keys that disagree with the leaves.
                return Err(tree_err(ino, "next allocated block is not after the hole"));
            }
            Ok((start, next - start))
        } else {
            unreachable!("ext_determine_hole on a mapped block")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binsearch_finds_last_key_not_after_block() {
        let keys = [10u32, 20, 30, 40];
        let find = |n: u16, b: u32| binsearch(n, b, |i| keys[i]);
        let cases = [
            (0, 0),
            (5, 0),
            (10, 0),
            (19, 0),
            (20, 1),
            (35, 2),
            (40, 3),
            (99, 3),
        ];
        for (block, want) in cases {
            assert_eq!(find(4, block), want, "block {block}");
        }
        assert_eq!(find(1, 99), 0);
        assert_eq!(
            find(0, 99),
            0,
            "an empty node still yields slot 0 (as the kernel)"
        );
    }

    use super::super::testutil::setup;
    use crate::error::{CorruptKind, Error};
    use crate::format::extent::extent_block_csum_set;
    use crate::format::testimg::Img;
    use crate::fs::map::MapFlags;
    use crate::fs::MountOpts;

    #[test]
    fn find_extent_walks_a_tree_made_by_debugfs() {
        let Some(img) = Img::mkfs("ext-find", None) else {
            return;
        };
        let data = vec![0x5Au8; 300 * 1024];
        let mut cmds = "write data g\n".to_string();
        for start in [10, 30, 50, 70, 90, 110] {
            cmds += &format!("punch g {start} {start}\n");
        }
        img.debugfs_script(&cmds, &[("data", &data)]);
        let mut fs = Fs::open(&img.0, MountOpts::default()).unwrap();
        let ino = fs
            .lookup(crate::fs::namei::ROOT_INO, b"g")
            .unwrap()
            .unwrap();
        fs.iget(ino).unwrap();
        // Leaf extents: [0,10) [11,30) [31,50) [51,70) [71,90) [91,110) [111,300).
        // (block, slot, extent's first block)
        for (block, slot, first) in [
            (0, 0, 0),
            (10, 0, 0),
            (11, 1, 11),
            (95, 5, 91),
            (299, 6, 111),
            (5000, 6, 111),
        ] {
            let path = fs.ext_find_extent(ino, Lblk(block)).unwrap();
            assert_eq!(path.depth(), 1);
            assert_eq!(
                (path[0].p_idx, path[0].p_block),
                (Some(0), path[1].p_bh.unwrap().0)
            );
            assert_eq!(path[1].p_ext, Some(slot), "block {block}");
            let ex = fs.ext_at(ino, path[1].p_bh, slot);
            assert_eq!((ex.ee_block, path[1].p_block), (first, ex.ee_start));
            let next = fs.ext_next_allocated_block(ino, &path);
            assert_eq!(next, [11, 31, 51, 71, 91, 111, EXT_MAX_BLOCKS][slot]);
        }
        let hole = fs
            .map_blocks(None, ino, Lblk(30), 100, MapFlags::LOOKUP)
            .unwrap();
        assert_eq!((hole.len, hole.flags), (1, 0));
    }

    #[test]
    fn corrupt_nodes_are_refused_with_precise_kinds() {
        let Some(mut t) = setup("ext-corrupt") else {
            return;
        };
        for i in 0..10 {
            t.map(2 * i, 1, MapFlags::CREATE);
        }
        let ino = t.ino;
        let leaf = t.nodes()[1].0.unwrap();
        let seed = t.fs.inode(ino).csum_seed;
        let good = t.fs.bufs.map[&leaf].data.clone();
        let nr = t.fs.sb.s_blocks_count;
        // (byte offset, new little-endian bytes, fix the checksum, expected kind)
        let cases: [(usize, Vec<u8>, bool, CorruptKind); 6] = [
            (
                12 + 12 + 8,
                vec![0xFF],
                false,
                CorruptKind::ExtentChecksum(ino),
            ),
            (
                12,
                1u32.to_le_bytes().to_vec(),
                true,
                CorruptKind::ExtentIndexKey(ino),
            ),
            (
                12 + 8,
                (nr as u32).to_le_bytes().to_vec(),
                true,
                CorruptKind::ExtentRange(ino),
            ),
            (
                12 + 4,
                0u16.to_le_bytes().to_vec(),
                true,
                CorruptKind::ExtentEntries(ino),
            ),
            (
                12 + 12,
                0u32.to_le_bytes().to_vec(),
                true,
                CorruptKind::ExtentOrder(ino),
            ),
            (
                6,
                1u16.to_le_bytes().to_vec(),
                true,
                CorruptKind::ExtentDepth(ino),
            ),
        ];
        for (off, bytes, fix, want) in cases {
            let buf = &mut t.fs.bufs.map.get_mut(&leaf).unwrap().data;
            buf.copy_from_slice(&good);
            buf[off..off + bytes.len()].copy_from_slice(&bytes);
            if fix {
                extent_block_csum_set(seed, buf);
            }
            let got = t.fs.ext_find_extent(ino, Lblk(5));
            assert_eq!(got, Err(Error::Corrupt(want.clone())), "{want:?}");
        }
        t.fs.bufs
            .map
            .get_mut(&leaf)
            .unwrap()
            .data
            .copy_from_slice(&good);
        assert!(t.fs.ext_find_extent(ino, Lblk(5)).is_ok());
        let mut root = t.fs.inode(ino).raw.i_block_bytes();
        root[2] = 0; // eh_entries = 0 at depth 1
        t.fs.inode_mut(ino).raw.set_i_block_bytes(&root);
        let got = t.fs.ext_find_extent(ino, Lblk(5));
        assert_eq!(got, Err(Error::Corrupt(CorruptKind::ExtentEntries(ino))));
        root[0] = 0;
        t.fs.inode_mut(ino).raw.set_i_block_bytes(&root);
        let got = t.fs.map_blocks(None, ino, Lblk(5), 1, MapFlags::LOOKUP);
        assert_eq!(got, Err(Error::Corrupt(CorruptKind::ExtentMagic(ino))));
    }
}
