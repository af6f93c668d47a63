//! Test-only helpers for the extent unit tests: a mounted `mke2fs -t ext4 -b 1024` image with
//! one empty extent-mapped file, and readers of the resulting tree that use the format
//! parser and the independent walker, not the code under test.

use crate::dev::Zone;
use crate::format::blockmap::{self, BlockMap, WalkCtx};
use crate::format::extent::{ExtentNode, NodeEntries};
use crate::format::testimg::Img;
use crate::fs::map::{MapFlags, MapResult};
use crate::fs::{Fs, Handle, MountOpts};
use crate::units::{Ino, Lblk, Pblk};

/// `(ee_block, len, ee_start, unwritten)` of one leaf extent.
pub(super) type Ext = (u32, u32, u64, bool);

/// A mounted throw-away image with the file `/f`.
pub(super) struct T {
    /// Keeps the image file alive.
    pub(super) _img: Img,
    pub(super) fs: Fs,
    pub(super) ino: Ino,
}

/// Format and mount a fresh image and create `/f`; `None` (test skipped) without e2fsprogs.
pub(super) fn setup(tag: &str) -> Option<T> {
    let img = Img::mkfs(tag, None)?;
    let mut fs = Fs::open(&img.0, MountOpts::default()).unwrap();
    let ino = fs.create("/f", 0o644).unwrap();
    assert!(fs.inode(ino).is_extents());
    Some(T { _img: img, fs, ino })
}

impl T {
    /// A handle with room for any single tree operation.
    pub(super) fn h(&mut self) -> Handle {
        self.fs.journal_start(64).unwrap()
    }

    /// `map_blocks()` under a fresh handle.
    pub(super) fn map(&mut self, lblk: u32, len: u32, flags: MapFlags) -> MapResult {
        let mut h = self.h();
        let m = self
            .fs
            .map_blocks(Some(&mut h), self.ino, Lblk(lblk), len, flags);
        m.unwrap_or_else(|e| panic!("map {lblk}+{len} {flags:?}: {e}"))
    }

    /// Allocate `n` contiguous data blocks (not yet owned by the file).
    pub(super) fn alloc(&mut self, n: u32) -> u64 {
        let mut h = self.h();
        let goal = self.fs.inode_goal_block(self.ino);
        let (p, got) = self.fs.new_blocks(&mut h, goal, n).unwrap();
        assert_eq!(got, n, "contiguous allocation");
        p.0
    }

    /// Insert one extent through the public wrapper.
    pub(super) fn insert(&mut self, lblk: u32, len: u32, pblk: u64, unwritten: bool) {
        let mut h = self.h();
        let (ino, l, p) = (self.ino, Lblk(lblk), Pblk(pblk));
        let r = self.fs.ext_insert_extent(&mut h, ino, l, p, len, unwritten);
        r.unwrap_or_else(|e| panic!("insert {lblk}+{len}: {e}"));
    }

    /// The root header's `eh_depth`.
    pub(super) fn depth(&self) -> u16 {
        let root = self.fs.inode(self.ino).raw.i_block_bytes();
        u16::from_le_bytes([root[6], root[7]])
    }

    /// Every node of the tree, root first, depth first, parsed with the format code.
    pub(super) fn nodes(&mut self) -> Vec<(Option<u64>, ExtentNode)> {
        fn visit(
            fs: &mut Fs,
            ino: Ino,
            at: Option<u64>,
            n: ExtentNode,
            out: &mut Vec<(Option<u64>, ExtentNode)>,
        ) {
            let keys: Vec<u64> = match &n.entries {
                NodeEntries::Index(v) => v.iter().map(|ix| ix.ei_leaf).collect(),
                NodeEntries::Leaf(_) => Vec::new(),
            };
            out.push((at, n));
            for k in keys {
                let buf = fs.bread(Pblk(k), Zone::TreeMeta).unwrap().to_vec();
                let child = ExtentNode::parse(&buf, ino).unwrap();
                visit(fs, ino, Some(k), child, out);
            }
        }
        let root = ExtentNode::parse(&self.fs.inode(self.ino).raw.i_block_bytes(), self.ino);
        let mut out = Vec::new();
        visit(&mut self.fs, self.ino, None, root.unwrap(), &mut out);
        out
    }

    /// The leaf extents in logical order.
    pub(super) fn extents(&mut self) -> Vec<Ext> {
        let mut out = Vec::new();
        for (_, n) in self.nodes() {
            if let NodeEntries::Leaf(v) = n.entries {
                out.extend(
                    v.iter()
                        .map(|e| (e.ee_block, e.len(), e.ee_start, e.is_unwritten())),
                );
            }
        }
        out
    }

    /// The number of extents in each leaf, in order.
    pub(super) fn leaf_sizes(&mut self) -> Vec<usize> {
        let nodes = self.nodes();
        nodes
            .iter()
            .filter(|(_, n)| n.is_leaf())
            .map(|(_, n)| n.len())
            .collect()
    }

    /// The mapping as the independent walker reads it (checksums verified).
    pub(super) fn walk(&mut self) -> BlockMap {
        let ino = self.ino;
        let fs = &mut self.fs;
        let i_block = fs.inode(ino).raw.i_block_bytes();
        let csum_seed = fs.sb.metadata_csum().then(|| fs.inode(ino).csum_seed);
        let (bs, first, nr) = (
            fs.block_size(),
            fs.sb.s_first_data_block,
            fs.sb.s_blocks_count,
        );
        let mut read = |p: Pblk| fs.bread(p, Zone::TreeMeta).map(std::sync::Arc::from);
        let mut ctx = WalkCtx {
            ino,
            block_size: bs,
            first_block: u64::from(first),
            nr_blocks: nr,
            csum_seed,
            read: &mut read,
        };
        blockmap::walk(&mut ctx, &i_block, true).unwrap()
    }

    /// `i_blocks` in filesystem blocks.
    pub(super) fn i_blocks(&self) -> u64 {
        self.fs.inode_blocks(self.ino) / 2
    }

    /// Whether block `b` is free in the bitmap.
    pub(super) fn is_free(&mut self, b: u64) -> bool {
        self.fs.block_is_free(Pblk(b)).unwrap()
    }
}
