//! Model of the tree growth under ext4_ext_insert_extent() (fs/ext4/extents.c): when the
//! leaf an extent belongs in is full (and so is the next one),
//! ext4_ext_create_new_leaf() walks up to the nearest level with a free index slot and
//! ext4_ext_split() moves everything right of the path into fresh blocks below it; when even
//! the root is full, ext4_ext_grow_indepth() pushes the root's contents into a new block and
//! the root becomes a one-key index one level higher.

use super::node::{self, idx_read, idx_write, init_header, set_entries, set_max};
use super::path::ExtPath;
use super::tree_err;
use crate::dev::Zone;
use crate::error::Result;
use crate::format::extent::{
    root_max, Extent, ExtentIdx, EXT4_EXT_MAGIC, EXT_ENTRY_SIZE, EXT_HEADER_SIZE, EXT_ROOT_SIZE,
};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

/// `n` slots of a node from slot `from`, copied out.
fn slots_of(b: &[u8], from: usize, n: usize) -> Vec<u8> {
    let at = EXT_HEADER_SIZE + EXT_ENTRY_SIZE * from;
    b[at..at + EXT_ENTRY_SIZE * n].to_vec()
}

/// Write `bytes` (whole slots) into a node from slot `at`.
fn put_slots(b: &mut [u8], at: usize, bytes: &[u8]) {
    let off = EXT_HEADER_SIZE + EXT_ENTRY_SIZE * at;
    b[off..off + bytes.len()].copy_from_slice(bytes);
}

impl Fs {
    /// Model of ext4_ext_create_new_leaf(): make room for `newext` — split at the nearest level
    /// with a free index slot, or grow the tree in depth (repeating while the leaf found is
    /// still full) — and refill the path.
    pub(super) fn ext_create_new_leaf(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        newext: &Extent,
    ) -> Result<()> {
        loop {
            let depth = usize::from(self.hdr(ino, None).depth);
            let mut i = depth;
            while i > 0 && !self.hdr(ino, path[i].p_bh).has_free() {
                i -= 1;
            }
            if self.hdr(ino, path[i].p_bh).has_free() {
                self.ext_split(h, ino, path, newext, i)?;
                *path = self.ext_find_extent(ino, Lblk(newext.ee_block))?;
                return Ok(());
            }
            self.ext_grow_indepth(h, ino)?;
            *path = self.ext_find_extent(ino, Lblk(newext.ee_block))?;
            let depth = path.depth();
            if self.hdr(ino, path[depth].p_bh).has_free() {
                return Ok(());
            }
        }
    }

    /// Model of ext4_ext_new_meta_block(): one tree block near ext4_ext_find_goal().
    fn ext_new_meta_block(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &ExtPath,
        newext: &Extent,
    ) -> Result<Pblk> {
        let goal = self.ext_find_goal(ino, Some(path), newext.ee_block);
        let (b, _) = self.new_blocks(h, goal, 1)?;
        self.dquot_alloc_block(h, ino, 1)?;
        Ok(b)
    }

    /// Model of ext4_ext_split(): insert a new subtree at level `at` (which has a free index
    /// slot): a new leaf takes the extents right of the path's extent, new index blocks take
    /// the keys right of the path at each level down from `at + 1`, and `at` gets a key for
    /// the subtree. On error every block allocated here is freed.
    fn ext_split(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        newext: &Extent,
        at: usize,
    ) -> Result<()> {
        let depth = usize::from(self.hdr(ino, None).depth);
        let border = self.ext_split_border(ino, path, newext, depth)?;
        let mut ablocks: Vec<Pblk> = Vec::with_capacity(depth - at);
        let res = (|| -> Result<()> {
            for _ in 0..depth - at {
                ablocks.push(self.ext_new_meta_block(h, ino, path, newext)?);
            }
            let mut a = ablocks.len() - 1;
            let mut newblock = ablocks[a];
            self.ext_split_leaf(h, ino, path, depth, newblock)?;
            let mut i = depth - 1;
            for _ in 0..depth - at - 1 {
                let oldblock = newblock;
                a -= 1;
                newblock = ablocks[a];
                self.ext_split_index(h, ino, path, i, (newblock, oldblock), border)?;
                i -= 1;
            }
            self.ext_insert_index(h, ino, path, at, border, newblock)
        })();
        if res.is_err() {
            for b in ablocks {
                // As in the kernel, errors while cleaning up are not reported.
                let _ = self.free_blocks(h, b, 1, true);
                let _ = self.dquot_free_block(h, ino, 1);
            }
        }
        res
    }

    /// The split point of ext4_ext_split(): the first key moved right (the extent after the
    /// path's one), or `newext` itself when the path's extent is the last slot.
    fn ext_split_border(
        &self,
        ino: Ino,
        path: &ExtPath,
        newext: &Extent,
        depth: usize,
    ) -> Result<u32> {
        let leaf = path[depth].p_bh;
        let max = usize::from(self.hdr(ino, leaf).max);
        let Some(p) = path[depth].p_ext else {
            return Err(tree_err(ino, "p_ext == NULL"));
        };
        if p >= max {
            return Err(tree_err(ino, "p_ext > EXT_MAX_EXTENT!"));
        }
        if p + 1 != max {
            Ok(self.ext_at(ino, leaf, p + 1).ee_block)
        } else {
            Ok(newext.ee_block)
        }
    }

    /// The new-leaf step of ext4_ext_split(): fill `newblock` with the extents right of the
    /// path's one and drop them from the old (full) leaf.
    fn ext_split_leaf(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        depth: usize,
        newblock: Pblk,
    ) -> Result<()> {
        self.get_create_access(h, newblock, Zone::TreeMeta)?;
        let space = self.ext_space_block();
        init_header(self.buf_mut(newblock), space, 0);
        let old = path[depth].p_bh;
        let hdr = self.hdr(ino, old);
        if hdr.entries != hdr.max {
            return Err(tree_err(ino, "eh_entries != eh_max"));
        }
        let p = path[depth].p_ext.expect("checked by ext_split_border");
        let m = usize::from(hdr.max) - 1 - p;
        path[depth].p_ext = Some(p + 1);
        if m > 0 {
            let moved = self.node_read(ino, old, |b| slots_of(b, p + 1, m));
            let nb = self.buf_mut(newblock);
            put_slots(nb, 0, &moved);
            // OK to unwrap: m < eh_max.
            set_entries(nb, u16::try_from(m).unwrap());
        }
        self.ext_block_csum_set(ino, newblock);
        self.dirty_metadata(h, newblock)?;
        if m > 0 {
            self.ext_get_access(h, old)?;
            self.add_entries(ino, old, -i32::try_from(m).unwrap_or(0));
            self.ext_dirty(h, ino, old)?;
        }
        Ok(())
    }

    /// The intermediate-index step of ext4_ext_split() at level `i`: `newblock` gets the key
    /// `(border, oldblock)` followed by the keys right of the path's one at level `i`, which
    /// the (full) node at level `i` drops.
    fn ext_split_index(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        i: usize,
        (newblock, oldblock): (Pblk, Pblk),
        border: u32,
    ) -> Result<()> {
        let depth = usize::from(self.hdr(ino, None).depth);
        self.get_create_access(h, newblock, Zone::TreeMeta)?;
        let space = self.ext_space_block();
        // OK to unwrap: depth <= EXT4_MAX_EXTENT_DEPTH.
        let eh_depth = u16::try_from(depth - i).unwrap();
        let nb = self.buf_mut(newblock);
        init_header(nb, space, eh_depth);
        set_entries(nb, 1);
        idx_write(nb, 0, &ExtentIdx::new(Lblk(border), oldblock));
        let cur = path[i].p_bh;
        let hdr = self.hdr(ino, cur);
        if hdr.entries != hdr.max {
            return Err(tree_err(ino, "EXT_MAX_INDEX != EXT_LAST_INDEX"));
        }
        let p = path[i].p_idx.expect("index level without p_idx");
        let m = usize::from(hdr.max) - 1 - p;
        path[i].p_idx = Some(p + 1);
        if m > 0 {
            let moved = self.node_read(ino, cur, |b| slots_of(b, p + 1, m));
            let nb = self.buf_mut(newblock);
            put_slots(nb, 1, &moved);
            // OK to unwrap: m < eh_max.
            set_entries(nb, u16::try_from(m + 1).unwrap());
        }
        self.ext_block_csum_set(ino, newblock);
        self.dirty_metadata(h, newblock)?;
        if m > 0 {
            self.ext_get_access(h, cur)?;
            self.add_entries(ino, cur, -i32::try_from(m).unwrap_or(0));
            self.ext_dirty(h, ino, cur)?;
        }
        Ok(())
    }

    /// Model of ext4_ext_insert_index(): insert the key `(logical, ptr)` into the index node at
    /// level `at`, before or after the path's key.
    fn ext_insert_index(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &ExtPath,
        at: usize,
        logical: u32,
        ptr: Pblk,
    ) -> Result<()> {
        let bh = path[at].p_bh;
        self.ext_get_access(h, bh)?;
        let p = path[at].p_idx.expect("index level without p_idx");
        let cur = self.idx_at(ino, bh, p);
        if logical == cur.ei_block {
            return Err(tree_err(ino, "logical == ei_block"));
        }
        let hdr = self.hdr(ino, bh);
        if hdr.entries >= hdr.max {
            return Err(tree_err(ino, "eh_entries >= eh_max"));
        }
        let ix = if logical > cur.ei_block { p + 1 } else { p };
        let entries = usize::from(hdr.entries);
        if ix > entries {
            return Err(tree_err(ino, "ix > EXT_LAST_INDEX + 1"));
        }
        self.node_write(ino, bh, |b| {
            node::move_slots(b, ix, ix + 1, entries - ix);
            let mut key = idx_read(b, ix);
            key.ei_block = logical;
            key.ei_leaf = ptr.0;
            idx_write(b, ix, &key);
        });
        self.add_entries(ino, bh, 1);
        self.ext_dirty(h, ino, bh)
    }

    /// Model of ext4_ext_grow_indepth(): move the whole root into a new block (just before
    /// the old first child, if any) and make the root a one-key index one level higher.
    fn ext_grow_indepth(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        let root = self.hdr(ino, None);
        let mut goal = 0;
        if root.depth > 0 {
            goal = self.idx_at(ino, None, 0).ei_leaf;
        }
        let goal = if goal > u64::from(self.sb.s_first_data_block) {
            Pblk(goal - 1)
        } else {
            self.inode_goal_block(ino)
        };
        let (newblock, _) = self.new_blocks(h, goal, 1)?;
        self.dquot_alloc_block(h, ino, 1)?;
        self.get_create_access(h, newblock, Zone::TreeMeta)?;
        let bytes = self.inode(ino).raw.i_block_bytes();
        let space = self.ext_space_block();
        let nb = self.buf_mut(newblock);
        nb[..EXT_ROOT_SIZE].copy_from_slice(&bytes);
        set_max(nb, space);
        crate::bytes::write_u16le(nb, 0x0, EXT4_EXT_MAGIC);
        self.ext_block_csum_set(ino, newblock);
        self.dirty_metadata(h, newblock)?;
        self.node_write(ino, None, |b| {
            set_entries(b, 1);
            let mut first = idx_read(b, 0);
            first.ei_leaf = newblock.0;
            idx_write(b, 0, &first);
            if root.depth == 0 {
                set_max(b, root_max());
            }
            node::set_depth(b, root.depth + 1);
        });
        self.mark_inode_dirty(h, ino)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::setup;
    use crate::format::extent::NodeEntries;
    use crate::units::Lblk;

    #[test]
    fn tree_grows_from_depth_0_to_1_to_2() {
        let Some(mut t) = setup("ext-grow") else {
            return;
        };
        let p = t.alloc(700);
        // Non-mergeable extents (physical gaps), appended in order.
        let add = |t: &mut super::super::testutil::T, i: u32| {
            t.insert(2 * i, 1, p + 2 * u64::from(i), false);
        };
        for i in 0..4 {
            add(&mut t, i);
        }
        assert_eq!(
            (t.depth(), t.i_blocks()),
            (0, 0),
            "4 extents fit in the root"
        );
        add(&mut t, 4);
        assert_eq!((t.depth(), t.leaf_sizes(), t.i_blocks()), (1, vec![5], 1));
        for i in 5..4 * 84 {
            add(&mut t, i);
        }
        // Appending at the end splits with an empty new leaf: leaves fill up completely.
        assert_eq!((t.depth(), t.leaf_sizes()), (1, vec![84; 4]));
        add(&mut t, 4 * 84);
        assert_eq!(t.depth(), 2);
        assert_eq!(t.leaf_sizes(), [84, 84, 84, 84, 1]);
        let nodes = t.nodes();
        let NodeEntries::Index(root) = &nodes[0].1.entries else {
            panic!("root is an index");
        };
        assert_eq!(root.len(), 1);
        let NodeEntries::Index(keys) = &nodes[1].1.entries else {
            panic!("level 1 is an index");
        };
        let starts: Vec<u32> = keys.iter().map(|k| k.ei_block).collect();
        assert_eq!(starts, [0, 168, 336, 504, 672]);
        assert_eq!(t.i_blocks(), 6, "1 index block + 5 leaves");
        let map = t.walk();
        assert_eq!((map.runs.len(), map.meta.len()), (337, 6));
    }

    #[test]
    fn insert_into_a_full_leaf_splits_it_at_the_path() {
        let Some(mut t) = setup("ext-split-leaf") else {
            return;
        };
        let p = t.alloc(400);
        for i in 0..84 {
            t.insert(4 * i, 1, p + 4 * u64::from(i), false);
        }
        assert_eq!(t.leaf_sizes(), [84]);
        // Into the middle: extents after the path's one (slot 40) move to a new leaf.
        t.insert(4 * 40 + 2, 1, p + 4 * 40 + 2, false);
        assert_eq!(t.leaf_sizes(), [42, 43]);
        let nodes = t.nodes();
        let NodeEntries::Index(root) = &nodes[0].1.entries else {
            panic!("root is an index");
        };
        let starts: Vec<u32> = root.iter().map(|k| k.ei_block).collect();
        assert_eq!(starts, [0, 164]);
        // Into the gap at the end of the first leaf: it goes to the left leaf, which has room.
        t.insert(163, 1, p + 399, false);
        assert_eq!(t.leaf_sizes(), [43, 43]);
        assert_eq!(t.walk().runs.len(), 86);
    }

    #[test]
    fn a_full_leaf_passes_the_extent_to_the_next_leaf_and_its_key_follows() {
        let Some(mut t) = setup("ext-next-leaf") else {
            return;
        };
        let p = t.alloc(400);
        for i in 0..84 {
            t.insert(4 * i, 1, p + 4 * u64::from(i), false);
        }
        t.insert(334, 1, p + 334, false);
        assert_eq!(
            t.leaf_sizes(),
            [84, 1],
            "appending splits off an empty leaf"
        );
        // 333 belongs after the full first leaf: it goes first into the next leaf, and
        // ext4_ext_correct_indexes() moves that leaf's key down to 333.
        t.insert(333, 1, p + 399, false);
        assert_eq!(t.leaf_sizes(), [84, 2]);
        let nodes = t.nodes();
        let NodeEntries::Index(root) = &nodes[0].1.entries else {
            panic!("root is an index");
        };
        let starts: Vec<u32> = root.iter().map(|k| k.ei_block).collect();
        assert_eq!(starts, [0, 333]);
    }

    /// Root keys of the tree.
    fn root_keys(t: &mut super::super::testutil::T) -> Vec<u32> {
        match &t.nodes()[0].1.entries {
            NodeEntries::Index(v) => v.iter().map(|k| k.ei_block).collect(),
            NodeEntries::Leaf(_) => Vec::new(),
        }
    }

    #[test]
    fn a_full_index_level_splits_at_the_path_and_empties_back() {
        let Some(mut t) = setup("ext-index-split") else {
            return;
        };
        const N: u32 = 84 * 84;
        // Real data blocks (the punch below frees them), in as many runs as it takes.
        let mut pblks = Vec::new();
        let mut h = t.h();
        while pblks.len() < N as usize {
            let want = N - u32::try_from(pblks.len()).unwrap();
            let (p, got) =
                t.fs.new_blocks(&mut h, crate::units::Pblk(0), want)
                    .unwrap();
            pblks.extend((0..u64::from(got)).map(|i| p.0 + i));
        }
        t.fs.inode_add_blocks(t.ino, i64::from(N)).unwrap();
        for i in 0..N {
            t.insert(2 * i, 1, pblks[i as usize], false);
        }
        // One index block of 84 keys over 84 full leaves.
        assert_eq!((t.depth(), root_keys(&mut t)), (2, vec![0]));
        assert_eq!(t.leaf_sizes(), vec![84; 84]);
        assert_eq!(t.i_blocks(), u64::from(N) + 85);
        // Into the middle of leaf 40 (after its extent 10): the leaf splits after the path's
        // extent and the full index block after the path's key; the root takes the new key.
        let border = 2 * (40 * 84 + 11);
        let spare = t.alloc(1);
        t.fs.inode_add_blocks(t.ino, 1).unwrap();
        t.insert(border - 1, 1, spare, false);
        assert_eq!(root_keys(&mut t), [0, border]);
        let mut want = vec![84; 40];
        want.extend([12, 73]);
        want.extend(vec![84; 43]);
        assert_eq!(t.leaf_sizes(), want);
        let nodes = t.nodes();
        let index_sizes: Vec<usize> = nodes
            .iter()
            .filter(|(_, n)| n.header.eh_depth == 1)
            .map(|(_, n)| n.len())
            .collect();
        assert_eq!(index_sizes, [41, 44]);
        assert_eq!(
            t.i_blocks(),
            u64::from(N) + 1 + 87,
            "2 index blocks + 85 leaves"
        );
        // Punching everything from the border on empties the right subtree: its leaves and
        // its index block are freed and the root is back to one key.
        let right: Vec<u64> = nodes.iter().filter_map(|n| n.0).skip(42).collect();
        assert_eq!(right.len(), 1 + 44, "index block B and its leaves");
        let mut h = t.h();
        t.fs.ext_remove_space(&mut h, t.ino, Lblk(border), Lblk(2 * N))
            .unwrap();
        assert_eq!((t.depth(), root_keys(&mut t)), (2, vec![0]));
        assert_eq!(t.leaf_sizes().len(), 41);
        assert!(right.iter().all(|&b| t.is_free(b)), "right subtree freed");
        let map = t.walk();
        assert_eq!(map.data_blocks(), 40 * 84 + 12);
        assert_eq!(t.i_blocks(), map.data_blocks() + map.meta.len() as u64);
    }
}
