//! Model of block removal from an extent tree (fs/ext4/extents.c): ext4_ext_remove_space()
//! for truncate (`end = EXT_MAX_BLOCKS − 1`) and punch, with ext4_ext_rm_leaf() and
//! ext4_ext_rm_idx(); plus migrate.c's free_ext_block() / free_ext_idx(), which free a tree's
//! index and leaf blocks but not its data.
//!
//! The walk goes right to left, depth first. A punch first splits the extent that straddles
//! `end` so removal only ever trims extent tails or drops whole extents. A leaf emptied
//! this way is freed and its key removed from the index above (an emptied index node goes the
//! same way); a level whose entry count did not change after visiting a child was only
//! partly truncated, which ends the walk at that level (the `p_block` trick of
//! ext4_ext_more_to_rm()). When the root ends up empty the tree is reset to depth 0 with
//! `eh_max` 4.

use super::node::{self, hdr_of, idx_read, set_depth, set_len, set_max};
use super::path::{ExtPath, ExtPathLevel};
use super::{tree_err, EXT4_RESERVE_TRANS_BLOCKS, EXT_MAX_BLOCKS};
use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::extent::{block_max, root_max, Extent, ExtentIdx};
use crate::format::inode as fi;
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

impl Fs {
    /// Model of ext4_ext_truncate(): free every block mapped at or after `from`.
    pub fn ext_truncate(&mut self, h: &mut Handle, ino: Ino, from: Lblk) -> Result<()> {
        self.ext4_ext_remove_space(h, ino, from.0, EXT_MAX_BLOCKS - 1)
    }

    /// Read into the buffer cache every extent tree block that ext4_ext_remove_space() reads
    /// when truncating `ino` at `from`. Not in the kernel: the fixed engine's side of U3. The
    /// kernel's ext4_setattr() drops the page cache past the new size before ext4_truncate()
    /// walks the tree; when a read of a tree block fails there, the truncate fails having
    /// freed nothing past that block, and a block that a `nodelalloc` write had mapped keeps
    /// its old bytes on disk, which the file shows once it grows over it again (stale data,
    /// `tests/integration/kernel_eio.rs` shows it on the kernel). So without U3 the truncate
    /// reads these blocks first, and an I/O error fails it before anything changes; its walk
    /// then reads only cached blocks. Blocks that fail their check are left to the truncate.
    pub fn ext_truncate_probe(&mut self, ino: Ino, from: Lblk) -> Result<()> {
        let depth = match self.ext_check_inode(ino) {
            Ok(d) => d,
            Err(_) => return Ok(()),
        };
        self.probe_ext_node(ino, None, depth, from.0).map(|_| ())
    }

    /// [`Fs::ext_truncate_probe`] of the node `bh` at `depth`: an index node's children
    /// right to left, as the walk visits them. Returns whether the truncate empties the node
    /// (every extent under it starts at or past `from`); a child it does not empty ends the
    /// walk at this level (ext4_ext_more_to_rm()).
    fn probe_ext_node(
        &mut self,
        ino: Ino,
        bh: Option<Pblk>,
        depth: u16,
        from: u32,
    ) -> Result<bool> {
        let entries = usize::from(self.hdr(ino, bh).entries);
        if depth == 0 {
            return Ok(entries == 0 || self.ext_at(ino, bh, 0).ee_block >= from);
        }
        for k in (0..entries).rev() {
            let ix = self.idx_at(ino, bh, k);
            let emptied = match self.read_extent_tree_block(ino, ix, depth - 1) {
                Ok(child) => self.probe_ext_node(ino, Some(child), depth - 1, from)?,
                Err(e @ Error::Io(_)) => return Err(e),
                Err(_) => false,
            };
            if !emptied {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Free the blocks of `[s, e)` (model of ext4_punch_hole()'s call
    /// `ext4_ext_remove_space(inode, first_block, stop_block - 1)`).
    pub fn ext_remove_space(&mut self, h: &mut Handle, ino: Ino, s: Lblk, e: Lblk) -> Result<()> {
        if e.0 <= s.0 {
            return Ok(());
        }
        self.ext4_ext_remove_space(h, ino, s.0, e.0 - 1)
    }

    /// Model of ext4_ext_remove_space() (fs/ext4/extents.c): free the blocks of
    /// `[start, end]` (inclusive). A transaction restart inside (`-EAGAIN`) starts over.
    fn ext4_ext_remove_space(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        start: u32,
        end: u32,
    ) -> Result<()> {
        loop {
            match self.ext_remove_space_pass(h, ino, start, end) {
                Err(Error::Again) => continue,
                res => return res,
            }
        }
    }

    /// One pass of ext4_ext_remove_space() (the code between `again:` and `out:`).
    fn ext_remove_space_pass(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        start: u32,
        end: u32,
    ) -> Result<()> {
        let mut found = None;
        if end < EXT_MAX_BLOCKS - 1 {
            match self.ext_rm_split_at_end(h, ino, end)? {
                Some(p) => found = Some(p),
                None => return Ok(()),
            }
        }
        let depth = usize::from(self.hdr(ino, None).depth);
        let (mut path, mut cursor, mut i) = self.ext_rm_walk_start(ino, found, depth)?;
        while i >= 0 {
            let iu = usize::try_from(i).expect("i >= 0");
            if iu == depth {
                self.ext_rm_leaf(h, ino, &mut path, start, end)?;
                i -= 1;
                continue;
            }
            if self.ext_rm_step_index(ino, &mut path, &mut cursor, iu, depth)? {
                i += 1;
                continue;
            }
            if self.hdr(ino, path[iu].p_bh).entries == 0 && iu > 0 {
                // The index is empty: remove it.
                self.ext_rm_idx(h, ino, &mut path, iu)?;
            }
            i -= 1;
        }
        if self.hdr(ino, None).entries == 0 {
            // Truncate to zero freed the whole tree: correct eh_depth.
            self.ext_get_access(h, None)?;
            self.node_write(ino, None, |b| {
                set_depth(b, 0);
                set_max(b, root_max());
            });
            self.ext_dirty(h, ino, None)?;
        }
        Ok(())
    }

    /// The punch preparation of ext4_ext_remove_space(): find the extent at `end` and, if it
    /// goes on past `end`, split it there so removal only ever cuts tails. Returns the path
    /// to `end`, or `None` when the tree is empty.
    fn ext_rm_split_at_end(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        end: u32,
    ) -> Result<Option<ExtPath>> {
        let mut p = self.ext_find_extent(ino, Lblk(end))?;
        let depth = usize::from(self.hdr(ino, None).depth);
        let Some(exi) = p[depth].p_ext else {
            if depth != 0 {
                return Err(tree_err(ino, "path[depth].p_hdr == NULL"));
            }
            return Ok(None);
        };
        let ex = self.ext_at(ino, p[depth].p_bh, exi);
        let ex_end = u64::from(ex.ee_block) + u64::from(ex.len()) - 1;
        if end >= ex.ee_block && u64::from(end) < ex_end {
            // Split so that `end` is the last block of the first piece.
            self.ext_force_split_extent_at(h, ino, &mut p, end + 1, true)?;
        }
        Ok(Some(p))
    }

    /// Where the walk of ext4_ext_remove_space() starts: at the leaf of the punch path (its
    /// index levels marked visited, `p_block` = entries + 1 below the root), or at the root
    /// for a truncate. Returns the path, the per-level key cursors and the level.
    fn ext_rm_walk_start(
        &mut self,
        ino: Ino,
        found: Option<ExtPath>,
        depth: usize,
    ) -> Result<(ExtPath, Vec<Option<i64>>, i64)> {
        let mut cursor: Vec<Option<i64>> = vec![None; depth + 1];
        let Some(mut p) = found else {
            self.ext_check_inode(ino)?;
            let root = ExtPathLevel {
                p_depth: u16::try_from(depth).unwrap_or(u16::MAX),
                ..ExtPathLevel::default()
            };
            return Ok((ExtPath { levels: vec![root] }, cursor, 0));
        };
        if p.levels.len() != depth + 1 {
            return Err(tree_err(ino, "path depth changed under removal"));
        }
        for k in (1..depth).rev() {
            p[k].p_block = u64::from(self.hdr(ino, p[k].p_bh).entries) + 1;
        }
        for (k, c) in cursor.iter_mut().enumerate().take(depth) {
            *c = p[k].p_idx.map(|x| x as i64);
        }
        // OK to unwrap: depth <= EXT4_MAX_EXTENT_DEPTH.
        Ok((p, cursor, i64::try_from(depth).unwrap()))
    }

    /// The index-level step of the ext4_ext_remove_space() walk at level `i`: move the cursor
    /// one key left (starting from the last key) and, if ext4_ext_more_to_rm() says so,
    /// descend into that child. Returns whether it descended.
    fn ext_rm_step_index(
        &mut self,
        ino: Ino,
        path: &mut ExtPath,
        cursor: &mut [Option<i64>],
        i: usize,
        depth: usize,
    ) -> Result<bool> {
        let bh = path[i].p_bh;
        let entries = self.hdr(ino, bh).entries;
        let c = match cursor[i] {
            None => {
                path[i].p_block = u64::from(entries) + 1;
                i64::from(entries) - 1
            }
            Some(c) => c - 1,
        };
        cursor[i] = Some(c);
        // Model of ext4_ext_more_to_rm(): before the first key, or a child that was only
        // partly truncated (the entry count did not change), ends this level.
        if c < 0 || u64::from(entries) == path[i].p_block {
            return Ok(false);
        }
        let slot = usize::try_from(c).expect("c >= 0");
        path[i].p_idx = Some(slot);
        let ix = self.idx_at(ino, bh, slot);
        path.levels.truncate(i + 1);
        // OK to unwrap: depth <= EXT4_MAX_EXTENT_DEPTH.
        let child_depth = u16::try_from(depth - i - 1).unwrap();
        let child = self.read_extent_tree_block(ino, ix, child_depth)?;
        path.levels.push(ExtPathLevel {
            p_bh: Some(child),
            p_depth: child_depth,
            ..ExtPathLevel::default()
        });
        cursor[i + 1] = None;
        path[i].p_block = u64::from(entries);
        Ok(true)
    }

    /// Model of ext4_remove_blocks() without bigalloc: free the tail `[from, to]` of extent
    /// `ex` (which must end at `to`), data or directory blocks, and take them off `i_blocks`.
    fn ext_remove_blocks(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        ex: &Extent,
        from: u32,
        to: u32,
    ) -> Result<()> {
        let len = ex.len();
        let end = u64::from(ex.ee_block) + u64::from(len);
        if from < ex.ee_block || u64::from(to) + 1 != end {
            // "strange request: removal(2)": the kernel reports it and frees nothing.
            return Ok(());
        }
        // OK to unwrap: from >= ee_block, so num <= len.
        let num = u32::try_from(end - u64::from(from)).unwrap();
        let pblk = Pblk(ex.ee_start + u64::from(len - num));
        let mode = self.inode(ino).raw.i_mode & fi::S_IFMT;
        let metadata = mode == fi::S_IFDIR || mode == fi::S_IFLNK;
        self.free_blocks(h, pblk, num, metadata)?;
        self.dquot_free_block(h, ino, num)
    }

    /// Model of ext4_ext_rm_leaf() (fs/ext4/extents.c): remove the blocks of `[start, end]`
    /// from the path's leaf, right to left from the path's extent (or the last one). Whole
    /// extents are dropped (a punch closes the gap; a truncate leaves the stale slot past
    /// `eh_entries`), partial ones lose their tail. An emptied leaf block is removed.
    fn ext_rm_leaf(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        start: u32,
        end: u32,
    ) -> Result<()> {
        let depth = usize::from(self.hdr(ino, None).depth);
        let leaf = path[depth].p_bh;
        let entries = self.hdr(ino, leaf).entries;
        let mut ex: i64 = match path[depth].p_ext {
            Some(e) => e as i64,
            None => i64::from(entries) - 1,
        };
        let mut correct_index = false;
        while ex >= 0 {
            let i = usize::try_from(ex).expect("ex >= 0");
            let e = self.ext_at(ino, leaf, i);
            let ee_end = u64::from(e.ee_block) + u64::from(e.len());
            if ee_end <= u64::from(start) {
                break;
            }
            path[depth].p_ext = Some(i);
            // OK to unwrap: a checked extent ends before 2^32.
            let ex_last = u32::try_from(ee_end - 1).unwrap();
            let (a, b) = (e.ee_block.max(start), ex_last.min(end));
            if end < e.ee_block {
                // Beyond the end of the hole: skip it.
                ex -= 1;
                continue;
            }
            if b != ex_last {
                return Err(tree_err(ino, "can not handle truncate"));
            }
            let num = if a != e.ee_block { a - e.ee_block } else { 0 };
            let mut credits = 7 + 2 * (e.len() / self.sb.s_blocks_per_group.max(1));
            if i == 0 {
                correct_index = true;
                credits += u32::try_from(depth).unwrap_or(0) + 1;
            }
            if self.journal_ensure_credits(h, credits)? {
                return Err(Error::Again);
            }
            self.ext_get_access(h, leaf)?;
            self.ext_remove_blocks(h, ino, &e, a, b)?;
            self.ext_rm_leaf_slot(ino, leaf, i, &e, num, end);
            self.ext_dirty(h, ino, leaf)?;
            ex -= 1;
        }
        let entries = self.hdr(ino, leaf).entries;
        if correct_index && entries > 0 {
            self.ext_correct_indexes(h, ino, path)?;
        }
        if entries == 0 && leaf.is_some() {
            // This leaf is free: remove it from the index above.
            self.ext_rm_idx(h, ino, path, depth)?;
        }
        Ok(())
    }

    /// The slot update of ext4_ext_rm_leaf(): extent `i` keeps its first `num` blocks, or,
    /// with `num == 0`, is dropped (its slot zeroed and, for a punch, the extents after it
    /// moved left).
    fn ext_rm_leaf_slot(
        &mut self,
        ino: Ino,
        leaf: node::Bh,
        i: usize,
        e: &Extent,
        num: u32,
        end: u32,
    ) {
        let mut ne = *e;
        if num == 0 {
            ne.ee_start = 0;
        }
        set_len(&mut ne, num);
        if e.is_unwritten() && num > 0 {
            node::mark_unwritten(&mut ne);
        }
        self.node_write(ino, leaf, |b| {
            node::ext_write(b, i, &ne);
            if num == 0 {
                let entries = usize::from(hdr_of(b).entries);
                if end != EXT_MAX_BLOCKS - 1 {
                    // Punch: no blank extents in the middle.
                    node::move_slots(b, i + 1, i, entries - 1 - i);
                    node::zero_slot(b, entries - 1);
                }
                // OK to unwrap: entries >= 1 (slot i is in use).
                node::set_entries(b, u16::try_from(entries - 1).unwrap());
            }
        });
    }

    /// Model of ext4_ext_rm_idx(): remove the key at the path's slot of level `depth − 1`
    /// and free the block it pointed to (the node at level `depth`), then copy the new
    /// first key up while it is a first key.
    fn ext_rm_idx(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        path: &mut ExtPath,
        depth: usize,
    ) -> Result<()> {
        let lvl = depth - 1;
        let bh = path[lvl].p_bh;
        let p = path[lvl].p_idx.expect("index level without p_idx");
        let leaf = self.idx_at(ino, bh, p).pblk();
        let entries = usize::from(self.hdr(ino, bh).entries);
        if entries == 0 {
            return Err(tree_err(ino, "path->p_hdr->eh_entries == 0"));
        }
        self.ext_get_access(h, bh)?;
        self.node_write(ino, bh, |b| {
            if p + 1 < entries {
                node::move_slots(b, p + 1, p, entries - 1 - p);
            }
            // OK to unwrap: entries <= eh_max, a u16.
            node::set_entries(b, u16::try_from(entries - 1).unwrap());
        });
        self.ext_dirty(h, ino, bh)?;
        self.free_blocks(h, leaf, 1, true)?;
        self.dquot_free_block(h, ino, 1)?;
        let mut l = lvl;
        while l > 0 {
            if path[l].p_idx != Some(0) {
                break;
            }
            let key = self.node_read(ino, path[l].p_bh, |b| idx_read(b, 0).ei_block);
            l -= 1;
            let up = path[l].p_bh;
            let slot = path[l].p_idx.expect("index level without p_idx");
            self.ext_get_access(h, up)?;
            self.node_write(ino, up, |b| {
                let mut ix = idx_read(b, slot);
                ix.ei_block = key;
                node::idx_write(b, slot, &ix);
            });
            self.ext_dirty(h, ino, up)?;
        }
        Ok(())
    }

    /// Model of migrate.c's free_ext_block(): free the index and leaf blocks of `ino`'s
    /// extent tree (children first), not the data they map; `i_blocks` drops by one per
    /// block. The root is left as it is.
    pub fn ext_free_tree_blocks(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        let root = self.inode(ino).raw.i_block_bytes();
        let hdr = hdr_of(&root);
        if hdr.depth == 0 {
            return Ok(());
        }
        let n = usize::from(hdr.entries.min(root_max()));
        for i in 0..n {
            self.free_ext_idx(h, ino, idx_read(&root, i), hdr.depth - 1)?;
        }
        Ok(())
    }

    /// Model of migrate.c's free_ext_idx(): free the subtree under `ix`, expected at tree
    /// depth `depth`. Unlike the kernel, which trusts the blocks, a child must sit exactly
    /// one level lower and inside the filesystem (so a corrupt tree cannot loop), and only
    /// the slots a block can hold are read.
    fn free_ext_idx(&mut self, h: &mut Handle, ino: Ino, ix: ExtentIdx, depth: u16) -> Result<()> {
        let block = ix.pblk();
        if !node::block_range_valid(self, block.0, 1) {
            return Err(CorruptKind::ExtentRange(ino).into());
        }
        let buf = self.bread(block, Zone::TreeMeta)?;
        let hdr = hdr_of(buf);
        if hdr.depth != 0 {
            if hdr.depth != depth {
                return Err(CorruptKind::ExtentDepth(ino).into());
            }
            let n = usize::from(hdr.entries.min(block_max(self.block_size())));
            let buf = &self.bufs.map[&block.0].data;
            let keys: Vec<ExtentIdx> = (0..n).map(|i| idx_read(buf, i)).collect();
            for k in keys {
                self.free_ext_idx(h, ino, k, depth - 1)?;
            }
        }
        self.journal_ensure_credits(h, EXT4_RESERVE_TRANS_BLOCKS)?;
        self.free_blocks(h, block, 1, true)?;
        self.dquot_free_block(h, ino, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{setup, T};
    use crate::format::extent::NodeEntries;
    use crate::fs::map::MapFlags;
    use crate::units::Lblk;

    fn punch(t: &mut T, s: u32, e: u32) {
        let mut h = t.h();
        t.fs.ext_remove_space(&mut h, t.ino, Lblk(s), Lblk(e))
            .unwrap();
    }

    fn truncate(t: &mut T, from: u32) {
        let mut h = t.h();
        t.fs.ext_truncate(&mut h, t.ino, Lblk(from)).unwrap();
    }

    #[test]
    fn punch_inside_an_extent_splits_it_and_frees_the_middle() {
        let Some(mut t) = setup("ext-punch-mid") else {
            return;
        };
        let p = t.map(0, 100, MapFlags::CREATE).pblk.0;
        let q = t.map(200, 50, MapFlags::CREATE_UNWRIT_EXT).pblk.0;
        assert_eq!(t.i_blocks(), 150);
        punch(&mut t, 40, 60);
        punch(&mut t, 210, 220);
        let want = [
            (0, 40, p, false),
            (60, 40, p + 60, false),
            (200, 10, q, true),
            (220, 30, q + 20, true),
        ];
        assert_eq!(t.extents(), want);
        assert_eq!(t.i_blocks(), 120);
        assert!((40..60).all(|i| t.is_free(p + i)) && !t.is_free(p + 39) && !t.is_free(p + 60));
        // Punching what is already a hole changes nothing.
        punch(&mut t, 45, 55);
        assert_eq!(t.extents(), want);
    }

    #[test]
    fn removed_slots_are_closed_up_by_punch_and_left_stale_by_truncate() {
        let Some(mut t) = setup("ext-slots") else {
            return;
        };
        let p = t.alloc(30);
        t.fs.inode_add_blocks(t.ino, 30).unwrap();
        for (l, o) in [(0, 0), (20, 10), (40, 20)] {
            t.insert(l, 10, p + o, false);
        }
        punch(&mut t, 20, 30);
        let root = t.fs.inode(t.ino).raw.i_block_bytes();
        assert_eq!(root[2], 2, "eh_entries");
        assert_eq!(
            root[24..28],
            40u32.to_le_bytes(),
            "the third extent moved left"
        );
        assert_eq!(root[36..48], [0; 12], "the last slot is zeroed");
        truncate(&mut t, 5);
        let root = t.fs.inode(t.ino).raw.i_block_bytes();
        assert_eq!(root[2], 1, "eh_entries");
        // ext4_ext_rm_leaf() on truncate: ee_block stays, ee_len and ee_start are zeroed.
        assert_eq!(root[24..36], [40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(t.extents(), [(0, 5, p, false)]);
        assert_eq!(t.i_blocks(), 5);
    }

    /// A depth-1 tree of three full-ish leaves (extents of one block every other block).
    fn three_leaves(t: &mut T) {
        for i in 0..200 {
            t.map(2 * i, 1, MapFlags::CREATE);
        }
        assert_eq!((t.depth(), t.leaf_sizes()), (1, vec![84, 84, 32]));
    }

    #[test]
    fn an_emptied_leaf_is_freed_and_its_key_removed() {
        let Some(mut t) = setup("ext-rm-idx") else {
            return;
        };
        three_leaves(&mut t);
        let middle = t.nodes()[2].0.unwrap();
        assert_eq!(t.i_blocks(), 200 + 3);
        // The second leaf holds logical 168..=334.
        punch(&mut t, 160, 340);
        assert_eq!(t.leaf_sizes(), [80, 30]);
        let nodes = t.nodes();
        let NodeEntries::Index(root) = &nodes[0].1.entries else {
            panic!("root is an index");
        };
        let keys: Vec<u32> = root.iter().map(|k| k.ei_block).collect();
        assert_eq!(
            keys,
            [0, 340],
            "the third leaf's key follows its new first extent"
        );
        assert!(t.is_free(middle));
        assert_eq!(t.i_blocks(), 200 - 90 + 2);
        let map = t.walk();
        assert_eq!((map.runs.len(), map.meta.len()), (110, 2));
    }

    #[test]
    fn truncate_to_zero_frees_the_tree_and_resets_the_root() {
        let Some(mut t) = setup("ext-trunc") else {
            return;
        };
        three_leaves(&mut t);
        for i in 200..400 {
            t.map(2 * i, 1, MapFlags::CREATE);
        }
        assert_eq!(t.depth(), 2);
        let tree: Vec<u64> = t.nodes().iter().filter_map(|n| n.0).collect();
        truncate(&mut t, 0);
        let root = t.fs.inode(t.ino).raw.i_block_bytes();
        assert_eq!(
            root[..8],
            [0x0A, 0xF3, 0, 0, 4, 0, 0, 0],
            "empty, eh_max 4, depth 0"
        );
        assert_eq!(t.i_blocks(), 0);
        assert!(tree.iter().all(|&b| t.is_free(b)), "every tree block freed");
        // The file works again from scratch.
        t.map(7, 3, MapFlags::CREATE);
        assert_eq!(t.extents().len(), 1);
    }

    #[test]
    fn free_tree_blocks_frees_index_and_leaves_but_not_data() {
        let Some(mut t) = setup("ext-free-tree") else {
            return;
        };
        for i in 0..400 {
            t.map(2 * i, 1, MapFlags::CREATE);
        }
        assert_eq!(t.depth(), 2);
        let tree: Vec<u64> = t.nodes().iter().filter_map(|n| n.0).collect();
        assert_eq!(tree.len(), 6);
        let data: Vec<u64> = t.extents().iter().map(|e| e.2).collect();
        let root = t.fs.inode(t.ino).raw.i_block_bytes();
        let mut h = t.h();
        t.fs.ext_free_tree_blocks(&mut h, t.ino).unwrap();
        assert!(tree.iter().all(|&b| t.is_free(b)));
        assert!(data.iter().all(|&b| !t.is_free(b)));
        assert_eq!(t.i_blocks(), 400);
        assert_eq!(
            t.fs.inode(t.ino).raw.i_block_bytes(),
            root,
            "root untouched"
        );
    }
}
