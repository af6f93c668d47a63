//! Model of ext4_ext_insert_extent() and the merging around it (fs/ext4/extents.c).
//!
//! An insertion first tries to merge the new extent into the one the path found (append, or
//! prepend), then looks for a free slot in the leaf, or in the next leaf; failing that, the
//! tree grows (`grow.rs`). After the insertion, neighbours are merged (not across
//! written/unwritten, at most 32768 / 32767 blocks), a depth-1 tree whose only leaf fits in
//! the root is pulled back into the inode, and a changed first key is propagated up
//! (ext4_ext_correct_indexes()).

use super::node::{self, hdr_of, idx_read, idx_write, set_entries, set_max, Bh};
use super::path::ExtPath;
use super::{has, tree_err, EXT_MAX_BLOCKS, GET_BLOCKS_PRE_IO};
use crate::error::Result;
use crate::format::extent::{
    root_max, Extent, EXT_ENTRY_SIZE, EXT_HEADER_SIZE, EXT_INIT_MAX_LEN, EXT_UNWRITTEN_MAX_LEN,
};
use crate::fs::map::MapFlags;
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk};

/// Model of ext4_can_extents_be_merged() (fs/ext4/extents.c): `ex2` directly follows `ex1`,
/// logically and physically, both written or both unwritten, and the sum fits one extent.
pub fn can_extents_be_merged(ex1: &Extent, ex2: &Extent) -> bool {
    if ex1.is_unwritten() != ex2.is_unwritten() {
        return false;
    }
    let (l1, l2) = (ex1.len(), ex2.len());
    if u64::from(ex1.ee_block) + u64::from(l1) != u64::from(ex2.ee_block) {
        return false;
    }
    if l1 + l2 > EXT_INIT_MAX_LEN || (ex1.is_unwritten() && l1 + l2 > EXT_UNWRITTEN_MAX_LEN) {
        return false;
    }
    ex1.ee_start + u64::from(l1) == ex2.ee_start
}

/// Model of ext4_journal_extend() as ext4_ext_try_to_merge_up() uses it: add `n` credits to
/// the running handle. Without a journal it always succeeds.
fn journal_extend(h: &mut Handle, n: u32) -> bool {
    if !h.has_credits(n) {
        h.credits = h.used + n;
    }
    true
}

impl Fs {
    /// Model of ext4_ext_insert_extent() (fs/ext4/extents.c): insert `newext` into the tree
    /// of `ino` at the leaf `path` leads to, merging, splitting or growing as needed. The
    /// caller made sure it overlaps nothing.
    pub(super) fn ext_insert_extent_path(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        newext: &Extent,
        flags: MapFlags,
    ) -> Result<()> {
        if newext.is_empty() {
            return Err(tree_err(ino, "ext4_ext_get_actual_len(newext) == 0"));
        }
        if !has(flags, GET_BLOCKS_PRE_IO) {
            if let Some(nearex) = self.ext_merge_newext(h, ino, path, newext)? {
                return self.ext_insert_done(h, ino, path, nearex, flags);
            }
        }
        let depth = path.depth();
        let hdr = self.hdr(ino, path[depth].p_bh);
        if !hdr.has_free() {
            // Probably the next leaf has space for us?
            let last = usize::from(hdr.entries)
                .checked_sub(1)
                .ok_or_else(|| tree_err(ino, "full leaf without entries"))?;
            let fex = self.ext_at(ino, path[depth].p_bh, last);
            let mut next = EXT_MAX_BLOCKS;
            if newext.ee_block > fex.ee_block {
                next = self.ext_next_leaf_block(ino, path);
            }
            if next != EXT_MAX_BLOCKS {
                let mut npath = self.ext_find_extent(ino, Lblk(next))?;
                if npath.depth() != depth {
                    return Err(tree_err(ino, "next leaf at another depth"));
                }
                if self.hdr(ino, npath[depth].p_bh).has_free() {
                    let nearex = self.ext_insert_at(h, ino, &mut npath, newext)?;
                    return self.ext_insert_done(h, ino, &mut npath, nearex, flags);
                }
            }
            self.ext_create_new_leaf(h, ino, path, newext)?;
        }
        let nearex = self.ext_insert_at(h, ino, path, newext)?;
        self.ext_insert_done(h, ino, path, nearex, flags)
    }

    /// The first step of ext4_ext_insert_extent(): append `newext` to the extent the path
    /// found (or the one left of it), else prepend it to that extent (or the one right of it).
    /// Returns the merged slot.
    fn ext_merge_newext(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &ExtPath,
        newext: &Extent,
    ) -> Result<Option<usize>> {
        let depth = path.depth();
        let leaf = path[depth].p_bh;
        let Some(mut ex) = path[depth].p_ext else {
            return Ok(None);
        };
        let entries = usize::from(self.hdr(ino, leaf).entries);
        let cur = self.ext_at(ino, leaf, ex);
        let new_start = u64::from(newext.ee_block);
        let mut try_append = true;
        if ex + 1 < entries && u64::from(cur.ee_block) + u64::from(cur.len()) < new_start {
            ex += 1;
            try_append = false;
        } else if ex > 0 && new_start + u64::from(newext.len()) < u64::from(cur.ee_block) {
            ex -= 1;
        }
        let mut e = self.ext_at(ino, leaf, ex);
        let unwritten = e.is_unwritten();
        if try_append && can_extents_be_merged(&e, newext) {
            self.ext_get_access(h, leaf)?;
        } else if can_extents_be_merged(newext, &e) {
            self.ext_get_access(h, leaf)?;
            e.ee_block = newext.ee_block;
            e.ee_start = newext.ee_start;
        } else {
            return Ok(None);
        }
        let merged_len = e.len() + newext.len();
        node::set_len(&mut e, merged_len);
        if unwritten {
            node::mark_unwritten(&mut e);
        }
        self.put_ext(ino, leaf, ex, &e);
        Ok(Some(ex))
    }

    /// The `has_space:` part of ext4_ext_insert_extent(): put `newext` in its sorted slot of
    /// the path's leaf, which has a free slot. Returns the slot (`nearex`).
    fn ext_insert_at(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        newext: &Extent,
    ) -> Result<usize> {
        let depth = path.depth();
        let leaf = path[depth].p_bh;
        self.ext_get_access(h, leaf)?;
        let entries = usize::from(self.hdr(ino, leaf).entries);
        let pos = match path[depth].p_ext {
            None => 0,
            Some(near) => {
                let ne = self.ext_at(ino, leaf, near);
                let pos = if newext.ee_block > ne.ee_block {
                    near + 1
                } else if newext.ee_block == ne.ee_block {
                    return Err(tree_err(ino, "newext->ee_block == nearex->ee_block"));
                } else {
                    near
                };
                if pos < entries {
                    self.node_write(ino, leaf, |b| {
                        node::move_slots(b, pos, pos + 1, entries - pos);
                    });
                }
                pos
            }
        };
        self.add_entries(ino, leaf, 1);
        path[depth].p_ext = Some(pos);
        self.put_ext(ino, leaf, pos, newext);
        Ok(pos)
    }

    /// The `merge:` tail of ext4_ext_insert_extent(): merge around `nearex`, fix the keys
    /// above, dirty the leaf.
    fn ext_insert_done(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        nearex: usize,
        flags: MapFlags,
    ) -> Result<()> {
        if !has(flags, GET_BLOCKS_PRE_IO) {
            self.ext_try_to_merge(h, ino, path, nearex)?;
        }
        self.ext_correct_indexes(h, ino, path)?;
        let d = path.depth();
        self.ext_dirty(h, ino, path[d].p_bh)
    }

    /// Model of ext4_ext_try_to_merge_right(): merge extent `ex` of the leaf at `bh` with its
    /// right neighbours while possible. Returns whether anything merged.
    pub(super) fn ext_try_to_merge_right(&mut self, ino: Ino, bh: Bh, ex: usize) -> bool {
        self.node_write(ino, bh, |b| {
            let mut merged = false;
            loop {
                let entries = usize::from(hdr_of(b).entries);
                if ex + 1 >= entries {
                    break;
                }
                let (e1, e2) = (node::ext_read(b, ex), node::ext_read(b, ex + 1));
                if !can_extents_be_merged(&e1, &e2) {
                    break;
                }
                let mut m = e1;
                node::set_len(&mut m, e1.len() + e2.len());
                if e1.is_unwritten() {
                    node::mark_unwritten(&mut m);
                }
                node::ext_write(b, ex, &m);
                if ex + 2 < entries {
                    node::move_slots(b, ex + 2, ex + 1, entries - ex - 2);
                }
                // OK to unwrap: entries <= eh_max, a u16.
                set_entries(b, u16::try_from(entries - 1).unwrap());
                merged = true;
            }
            merged
        })
    }

    /// Model of ext4_ext_try_to_merge_up(): a depth-1 tree whose root has one key and whose
    /// only leaf fits in the root is collapsed back into the inode; the leaf block is freed.
    fn ext_try_to_merge_up(&mut self, h: &mut Handle, ino: Ino, path: &mut ExtPath) -> Result<()> {
        if path[0].p_depth != 1 || self.hdr(ino, None).entries != 1 {
            return Ok(());
        }
        let leaf_bh = path[1].p_bh;
        let leaf_entries = self.hdr(ino, leaf_bh).entries;
        if leaf_entries > root_max() || !journal_extend(h, 2) {
            return Ok(());
        }
        let slot = path[0].p_idx.expect("index level without p_idx");
        let blk = self.idx_at(ino, None, slot).pblk();
        let s = EXT_HEADER_SIZE + EXT_ENTRY_SIZE * usize::from(leaf_entries);
        let bytes = self.node_read(ino, leaf_bh, |b| b[..s].to_vec());
        self.node_write(ino, None, |b| {
            b[..s].copy_from_slice(&bytes);
            set_max(b, root_max());
        });
        path[0].p_depth = 0;
        path[0].p_ext = path[1].p_ext;
        path.levels.truncate(1);
        self.free_blocks(h, blk, 1, true)?;
        self.dquot_free_block(h, ino, 1)
    }

    /// Model of ext4_ext_try_to_merge(): merge extent `ex` with its left neighbour, else with
    /// its right ones, then try to collapse the tree into the inode.
    pub(super) fn ext_try_to_merge(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        ex: usize,
    ) -> Result<()> {
        let depth = usize::from(self.hdr(ino, None).depth);
        let bh = path[depth].p_bh;
        let mut merged = false;
        if ex > 0 {
            merged = self.ext_try_to_merge_right(ino, bh, ex - 1);
        }
        if !merged {
            self.ext_try_to_merge_right(ino, bh, ex);
        }
        self.ext_try_to_merge_up(h, ino, path)
    }

    /// Set the key of slot `i` of the index node at `bh` to `block`, under write access.
    fn ext_set_key(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        bh: Bh,
        i: usize,
        block: u32,
    ) -> Result<()> {
        self.ext_get_access(h, bh)?;
        self.node_write(ino, bh, |b| {
            let mut ix = idx_read(b, i);
            ix.ei_block = block;
            idx_write(b, i, &ix);
        });
        self.ext_dirty(h, ino, bh)
    }

    /// Model of ext4_ext_correct_indexes(): when the path's extent is the first of its leaf,
    /// copy its `ee_block` into the key above, and on up while the key is a first one too.
    pub(super) fn ext_correct_indexes(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &ExtPath,
    ) -> Result<()> {
        let depth = usize::from(self.hdr(ino, None).depth);
        let level = path.levels.get(depth);
        let Some(ex) = level.and_then(|l| l.p_ext) else {
            return Err(tree_err(ino, "ex == NULL or eh == NULL"));
        };
        if depth == 0 || ex != 0 {
            return Ok(());
        }
        let border = self.ext_at(ino, path[depth].p_bh, ex).ee_block;
        let mut k = depth - 1;
        let slot = path[k].p_idx.expect("index level without p_idx");
        self.ext_set_key(h, ino, path[k].p_bh, slot, border)?;
        while k > 0 {
            k -= 1;
            if path[k + 1].p_idx != Some(0) {
                break;
            }
            let slot = path[k].p_idx.expect("index level without p_idx");
            self.ext_set_key(h, ino, path[k].p_bh, slot, border)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::setup;
    use super::*;
    use crate::units::Pblk;

    fn ext(lblk: u32, len: u32, pblk: u64, unwritten: bool) -> Extent {
        Extent::new(Lblk(lblk), len, Pblk(pblk), unwritten)
    }

    #[test]
    fn merge_rules_of_ext4_can_extents_be_merged() {
        // (ex1, ex2, mergeable)
        let cases = [
            (ext(0, 5, 100, false), ext(5, 5, 105, false), true),
            (ext(0, 5, 100, true), ext(5, 5, 105, true), true),
            (ext(0, 5, 100, false), ext(5, 5, 105, true), false), // written | unwritten
            (ext(0, 5, 100, true), ext(5, 5, 105, false), false),
            (ext(0, 5, 100, false), ext(6, 5, 105, false), false), // logical gap
            (ext(0, 5, 100, false), ext(5, 5, 106, false), false), // physical gap
            (ext(5, 5, 105, false), ext(0, 5, 100, false), false), // wrong order
            (ext(0, 32767, 100, false), ext(32767, 1, 32867, false), true), // 32768 written
            (
                ext(0, 32767, 100, false),
                ext(32767, 2, 32867, false),
                false,
            ),
            (ext(0, 32766, 100, true), ext(32766, 1, 32866, true), true), // 32767 unwritten
            (ext(0, 32766, 100, true), ext(32766, 2, 32866, true), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(can_extents_be_merged(&a, &b), want, "{a:?} + {b:?}");
        }
    }

    #[test]
    fn insert_appends_prepends_and_merges_both_sides() {
        let Some(mut t) = setup("ext-merge") else {
            return;
        };
        let p = t.alloc(60);
        // (insert lblk, len, pblk offset, unwritten) -> leaf afterwards
        type Row = ((u32, u32, u64, bool), &'static [(u32, u32, u64, bool)]);
        let rows: [Row; 7] = [
            ((0, 5, 0, false), &[(0, 5, 0, false)]),
            ((5, 5, 5, false), &[(0, 10, 0, false)]), // append
            ((20, 5, 20, false), &[(0, 10, 0, false), (20, 5, 20, false)]),
            (
                (15, 5, 15, false),
                &[(0, 10, 0, false), (15, 10, 15, false)],
            ), // prepend
            ((10, 5, 10, false), &[(0, 25, 0, false)]), // append, then merge right
            ((25, 5, 25, true), &[(0, 25, 0, false), (25, 5, 25, true)]), // not across states
            ((30, 5, 30, true), &[(0, 25, 0, false), (25, 10, 25, true)]),
        ];
        for ((l, n, off, u), want) in rows {
            t.insert(l, n, p + off, u);
            let want: Vec<_> = want.iter().map(|&(l, n, o, u)| (l, n, p + o, u)).collect();
            assert_eq!(t.extents(), want, "after inserting {l}+{n}");
        }
        // Physically discontiguous neighbours stay apart.
        t.insert(35, 5, p + 50, true);
        assert_eq!(t.extents().len(), 3);
        assert_eq!((t.depth(), t.i_blocks()), (0, 0));
    }

    #[test]
    fn a_small_depth_1_tree_collapses_into_the_inode() {
        let Some(mut t) = setup("ext-merge-up") else {
            return;
        };
        let p = t.alloc(12);
        for i in 0..5 {
            t.insert(2 * i, 1, p + 2 * u64::from(i), false);
        }
        // The wrapper leaves data blocks to their owner: count the 6 used here.
        t.fs.inode_add_blocks(t.ino, 6).unwrap();
        let leaf = t.nodes()[1].0.unwrap();
        assert_eq!((t.depth(), t.i_blocks()), (1, 7));
        let mut h = t.h();
        t.fs.ext_remove_space(&mut h, t.ino, Lblk(8), Lblk(9))
            .unwrap();
        assert_eq!(
            (t.depth(), t.leaf_sizes()),
            (1, vec![4]),
            "removal does not collapse"
        );
        // Filling block 1 merges three extents; the leaf then fits in the root.
        t.insert(1, 1, p + 1, false);
        assert_eq!(t.depth(), 0);
        assert_eq!(
            t.extents(),
            [(0, 3, p, false), (4, 1, p + 4, false), (6, 1, p + 6, false)]
        );
        assert_eq!(t.i_blocks(), 5, "one data block and the leaf freed");
        assert!(t.is_free(leaf), "the leaf block was freed");
    }
}
