//! Extent trees end to end: random sequences of write / fallocate / truncate / punch / read on
//! extent-mapped files of real `mke2fs -t ext4` images (1 KiB and 4 KiB blocks), the file's
//! bytes checked against a byte model after every operation; then unmount, and the image must
//! pass `e2fsck -fn`, `debugfs cat` must return the model's bytes, and `debugfs ex` must list
//! the same extents and tree blocks as the independent walker `format::blockmap::walk`.

use crate::util::*;
use e4fuzz::dev::Zone;
use e4fuzz::format::blockmap::{self, BlockMap, MetaKind, WalkCtx};
use e4fuzz::format::extent::{ExtentNode, NodeEntries};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::{Ino, Pblk};
use std::path::Path;

/// `(ee_block, len, ee_start, unwritten)` of a leaf extent.
type Ext = (u32, u32, u64, bool);

/// xorshift64*: deterministic test randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One operation of a random sequence.
#[derive(Clone, Copy, Debug)]
enum Op {
    Write { off: u64, len: u64, seed: u8 },
    Fallocate { off: u64, len: u64 },
    Truncate { size: u64 },
    Punch { off: u64, len: u64 },
    Read { off: u64, len: u64 },
    Sync,
}

/// The expected bytes of the file.
#[derive(Default)]
struct Model {
    data: Vec<u8>,
}

impl Model {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Write { off, len, seed } => {
                let end = (off + len) as usize;
                if self.data.len() < end {
                    self.data.resize(end, 0);
                }
                self.data[off as usize..end].copy_from_slice(&pattern(off, len, seed));
            }
            Op::Fallocate { off, len } => {
                let end = (off + len) as usize;
                if self.data.len() < end {
                    self.data.resize(end, 0);
                }
            }
            Op::Truncate { size } => self.data.resize(size as usize, 0),
            Op::Punch { off, len } => {
                let end = ((off + len) as usize).min(self.data.len());
                if (off as usize) < end {
                    self.data[off as usize..end].fill(0);
                }
            }
            Op::Read { .. } | Op::Sync => {}
        }
    }
}

/// The bytes a write puts at `off`: never all zero, different per seed and position.
fn pattern(off: u64, len: u64, seed: u8) -> Vec<u8> {
    (off..off + len)
        .map(|i| (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8) ^ seed | 1)
        .collect()
}

fn run_op(fs: &mut Fs, ino: Ino, op: Op) -> e4fuzz::Result<()> {
    match op {
        Op::Write { off, len, seed } => fs.write_file(ino, off, &pattern(off, len, seed)),
        Op::Fallocate { off, len } => fs.fallocate(ino, off, len),
        Op::Truncate { size } => fs.truncate_file(ino, size),
        Op::Punch { off, len } => fs.punch_hole(ino, off, len),
        Op::Read { off, len } => fs.read_file(ino, off, len).map(drop),
        Op::Sync => fs.sync(),
    }
}

/// A random operation on a file of at most `span` bytes, block size `bs`.
fn random_op(rng: &mut Rng, span: u64, bs: u64) -> Op {
    let off = if rng.below(3) == 0 {
        rng.below(span / bs) * bs
    } else {
        rng.below(span)
    };
    let small = rng.below(4) != 0;
    let len = 1 + if small {
        rng.below(3 * bs)
    } else {
        rng.below(span / 4)
    };
    let len = len.min(span - off.min(span - 1));
    match rng.below(20) {
        0..=7 => Op::Write {
            off,
            len,
            seed: rng.next() as u8,
        },
        8..=10 => Op::Fallocate { off, len },
        11..=12 => Op::Truncate {
            size: rng.below(span + 1),
        },
        13..=16 => Op::Punch { off, len },
        17..=18 => Op::Read { off, len },
        _ => Op::Sync,
    }
}

/// A random operation that fragments: mostly one-block writes at even blocks (each its own
/// extent), with small fallocates, punches and reads, and rare truncates near the end.
fn random_sparse_op(rng: &mut Rng, span: u64, bs: u64) -> Op {
    let blocks = span / bs;
    let at = |rng: &mut Rng| rng.below(blocks / 2) * 2 * bs;
    match rng.below(20) {
        0..=13 => Op::Write {
            off: at(rng) + rng.below(3),
            len: bs - 2,
            seed: rng.next() as u8,
        },
        14 => Op::Fallocate {
            off: at(rng) + bs,
            len: bs * (1 + rng.below(3)),
        },
        15..=16 => Op::Punch {
            off: at(rng),
            len: bs * (1 + rng.below(4)),
        },
        17 => Op::Truncate {
            size: span - rng.below(span / 20),
        },
        _ => Op::Read {
            off: rng.below(span),
            len: bs * 4,
        },
    }
}

/// The whole file through the engine equals the model.
#[track_caller]
fn check_content(fs: &mut Fs, ino: Ino, model: &Model, step: usize, op: Op) {
    let size = fs.inode(ino).raw.i_size;
    assert_eq!(
        size,
        model.data.len() as u64,
        "i_size after step {step} {op:?}"
    );
    let got = fs.read_file(ino, 0, size).unwrap();
    if got != model.data {
        let at = got.iter().zip(&model.data).position(|(a, b)| a != b);
        panic!("content differs after step {step} {op:?} at byte {at:?}");
    }
}

/// The mapping of `ino` read by the independent walker, and `i_blocks` must count exactly its
/// data and tree blocks.
fn walk(fs: &mut Fs, ino: Ino) -> BlockMap {
    let raw = fs.inode(ino).raw.clone();
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
    blockmap::walk(&mut ctx, &raw.i_block_bytes(), true).expect("walker accepts the tree")
}

#[track_caller]
fn check_i_blocks(fs: &mut Fs, ino: Ino, step: usize) -> BlockMap {
    let map = walk(fs, ino);
    let blocks = map.data_blocks() + map.meta.len() as u64;
    let sectors = blocks * u64::from(fs.block_size() / 512);
    assert_eq!(fs.inode_blocks(ino), sectors, "i_blocks after step {step}");
    map
}

/// Leaf extents as `(lblk, len, pblk, unwritten)` and tree blocks, from `debugfs ex`.
fn debugfs_ex(img: &Path, path: &str) -> (Vec<Ext>, Vec<u64>) {
    let out = debugfs(img, false, &[&format!("ex {path}")]);
    let (mut leaves, mut meta) = (Vec::new(), Vec::new());
    for line in out.lines().skip(1) {
        let uninit = line.contains("Uninit");
        let nums: Vec<u64> = line
            .replace(['/', '-'], " ")
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        if nums.len() < 7 {
            continue;
        }
        let (level, max_level) = (nums[0], nums[1]);
        if level < max_level {
            // Index entry: level/max entry/entries first - last pblk len.
            meta.push(nums[6]);
        } else if nums.len() >= 9 {
            // Leaf: level/max entry/entries first - last pblk - pblk_end len.
            leaves.push((nums[4] as u32, nums[8] as u32, nums[6], uninit));
        } else {
            // A one-block extent prints a single physical block.
            leaves.push((nums[4] as u32, nums[7] as u32, nums[6], uninit));
        }
    }
    (leaves, meta)
}

/// The leaf extents of `ino`'s tree in order, read with the format parser.
fn leaf_extents(fs: &mut Fs, ino: Ino) -> Vec<Ext> {
    fn visit(fs: &mut Fs, ino: Ino, node: &ExtentNode, out: &mut Vec<Ext>) {
        match &node.entries {
            NodeEntries::Leaf(v) => out.extend(
                v.iter()
                    .map(|e| (e.ee_block, e.len(), e.ee_start, e.is_unwritten())),
            ),
            NodeEntries::Index(v) => {
                for ix in v {
                    let buf = fs.bread(ix.pblk(), Zone::TreeMeta).unwrap().to_vec();
                    let child = ExtentNode::parse(&buf, ino).unwrap();
                    visit(fs, ino, &child, out);
                }
            }
        }
    }
    let root = ExtentNode::parse(&fs.inode(ino).raw.i_block_bytes(), ino).unwrap();
    let mut out = Vec::new();
    visit(fs, ino, &root, &mut out);
    out
}

/// Format, mount, create `/f`.
fn setup(dir: &TempDir, bs: u32, size: u64, extra: &[&str]) -> (std::path::PathBuf, Fs, Ino) {
    let img = dir.path("img");
    let bs = bs.to_string();
    let mut args = vec!["-t", "ext4", "-b", &bs];
    args.extend(extra);
    mke2fs(&img, size, &args);
    let mut fs = Fs::open(&img, MountOpts::default()).unwrap();
    let ino = fs.create("/f", 0o644).unwrap();
    assert!(fs.inode(ino).is_extents());
    (img, fs, ino)
}

/// Unmount, save, and check the image with e2fsprogs against the model.
fn finish(fs: Fs, img: &Path, model: &Model, runs: &BlockMap, leaves: &[Ext]) {
    let dev = fs.unmount().unwrap();
    dev.save(img).unwrap();
    assert_e2fsck_clean(img);
    assert_eq!(debugfs_cat(img, "/f"), model.data, "debugfs cat /f");
    let (ex_leaves, ex_meta) = debugfs_ex(img, "/f");
    assert_eq!(ex_leaves, leaves, "debugfs ex leaves");
    // The walker merges runs that continue each other; so must the debugfs listing.
    let mut merged: Vec<blockmap::Run> = Vec::new();
    for &(lblk, len, pblk, unwritten) in &ex_leaves {
        match merged.last_mut() {
            Some(r)
                if r.lblk + r.len == lblk
                    && r.pblk + u64::from(r.len) == pblk
                    && r.unwritten == unwritten =>
            {
                r.len += len
            }
            _ => merged.push(blockmap::Run {
                lblk,
                pblk,
                len,
                unwritten,
            }),
        }
    }
    assert_eq!(merged, runs.runs, "debugfs ex runs against the walker");
    let meta: Vec<u64> = runs.meta.iter().map(|m| m.pblk).collect();
    let mut sorted_ex = ex_meta.clone();
    let mut sorted = meta.clone();
    sorted_ex.sort_unstable();
    sorted.sort_unstable();
    assert_eq!(sorted_ex, sorted, "debugfs ex tree blocks");
    assert!(runs
        .meta
        .iter()
        .all(|m| matches!(m.kind, MetaKind::ExtentNode(_))));
}

/// Run `n` random ops on a fresh image (`mke2fs -t ext4 -b bs extra…`); returns the deepest
/// tree seen.
fn random_sequence(tag: &str, bs: u32, extra: &[&str], seed: u64, n: usize, span: u64) -> u16 {
    run_sequence(tag, bs, extra, seed, n, span, random_op)
}

/// Like [`random_sequence`] with the operations of `gen`.
fn run_sequence(
    tag: &str,
    bs: u32,
    extra: &[&str],
    seed: u64,
    n: usize,
    span: u64,
    gen: fn(&mut Rng, u64, u64) -> Op,
) -> u16 {
    let dir = TempDir::new(tag);
    let (img, mut fs, ino) = setup(&dir, bs, 64 << 20, extra);
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let mut max_depth = 0;
    for step in 0..n {
        let op = gen(&mut rng, span, u64::from(bs));
        run_op(&mut fs, ino, op).unwrap_or_else(|e| panic!("step {step} {op:?}: {e}"));
        model.apply(op);
        // Whole-file checks after every op, or every 16th op on large files (and the last).
        if span <= 2 << 20 || step % 16 == 0 || step + 1 == n {
            check_content(&mut fs, ino, &model, step, op);
            check_i_blocks(&mut fs, ino, step);
        } else if let Op::Read { off, len } = op {
            let want = model.data.get(off as usize..).unwrap_or_default();
            let got = fs.read_file(ino, off, len).unwrap();
            assert_eq!(
                got,
                want[..want.len().min(len as usize)],
                "step {step} {op:?}"
            );
        }
        let depth = read_depth(&fs, ino);
        max_depth = max_depth.max(depth);
    }
    let runs = check_i_blocks(&mut fs, ino, n);
    let leaves = leaf_extents(&mut fs, ino);
    finish(fs, &img, &model, &runs, &leaves);
    max_depth
}

/// `eh_depth` of the root.
fn read_depth(fs: &Fs, ino: Ino) -> u16 {
    let root = fs.inode(ino).raw.i_block_bytes();
    u16::from_le_bytes([root[6], root[7]])
}

#[test]
fn random_ops_1k_blocks() {
    if !have_e2fsprogs("random_ops_1k_blocks") {
        return;
    }
    for seed in 1..=4 {
        let depth = random_sequence("ext-rand1k", 1024, &[], seed, 250, 600 << 10);
        assert!(depth >= 1, "seed {seed}: the tree never left the inode");
    }
}

#[test]
fn random_ops_without_metadata_csum() {
    if !have_e2fsprogs("random_ops_without_metadata_csum") {
        return;
    }
    let extra = ["-O", "^metadata_csum"];
    random_sequence("ext-nocsum", 1024, &extra, 21, 250, 600 << 10);
}

#[test]
fn random_fragmenting_ops_reach_depth_2() {
    if !have_e2fsprogs("random_fragmenting_ops_reach_depth_2") {
        return;
    }
    let depth = run_sequence(
        "ext-frag1k",
        1024,
        &[],
        5,
        900,
        1200 << 10,
        random_sparse_op,
    );
    assert_eq!(depth, 2);
    let depth = run_sequence("ext-frag4k", 4096, &[], 6, 1600, 12 << 20, random_sparse_op);
    assert_eq!(depth, 2);
}

#[test]
fn random_ops_4k_blocks() {
    if !have_e2fsprogs("random_ops_4k_blocks") {
        return;
    }
    for seed in 11..=13 {
        random_sequence("ext-rand4k", 4096, &[], seed, 200, 4 << 20);
    }
}

/// Write every other block of a large range (each write a separate extent), then punch,
/// truncate and refill: the tree must reach depth 2 and shrink back.
fn sparse_tree(bs: u32, blocks: u64) {
    let dir = TempDir::new("ext-sparse");
    let (img, mut fs, ino) = setup(&dir, bs, 128 << 20, &[]);
    let b = u64::from(bs);
    let mut model = Model::default();
    let mut step = 0;
    let mut apply = |fs: &mut Fs, model: &mut Model, op: Op| {
        run_op(fs, ino, op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        model.apply(op);
        step += 1;
    };
    for i in (0..blocks).step_by(2) {
        let op = Op::Write {
            off: i * b,
            len: b,
            seed: i as u8,
        };
        apply(&mut fs, &mut model, op);
    }
    check_content(&mut fs, ino, &model, 0, Op::Sync);
    assert_eq!(
        read_depth(&fs, ino),
        2,
        "every other block of {blocks} blocks"
    );
    check_i_blocks(&mut fs, ino, 0);
    // Punch the middle (whole leaves go), fill some holes (merging three extents into one),
    // fallocate across holes, truncate.
    apply(
        &mut fs,
        &mut model,
        Op::Punch {
            off: blocks / 4 * b,
            len: blocks / 3 * b,
        },
    );
    for i in (1..blocks / 5).step_by(2) {
        apply(
            &mut fs,
            &mut model,
            Op::Write {
                off: i * b,
                len: b,
                seed: 7,
            },
        );
    }
    apply(
        &mut fs,
        &mut model,
        Op::Fallocate {
            off: blocks / 2 * b,
            len: blocks / 8 * b,
        },
    );
    apply(
        &mut fs,
        &mut model,
        Op::Write {
            off: blocks / 2 * b + 5,
            len: 3 * b,
            seed: 9,
        },
    );
    check_content(&mut fs, ino, &model, 1, Op::Sync);
    check_i_blocks(&mut fs, ino, 1);
    apply(
        &mut fs,
        &mut model,
        Op::Truncate {
            size: blocks / 10 * b + 17,
        },
    );
    check_content(&mut fs, ino, &model, 2, Op::Sync);
    let runs = check_i_blocks(&mut fs, ino, 2);
    let leaves = leaf_extents(&mut fs, ino);
    finish(fs, &img, &model, &runs, &leaves);
}

#[test]
fn depth_two_tree_1k() {
    if !have_e2fsprogs("depth_two_tree_1k") {
        return;
    }
    // Root 4 keys × leaves of 84 extents: 337 extents need depth 2.
    sparse_tree(1024, 2 * 400);
}

#[test]
fn depth_two_tree_4k() {
    if !have_e2fsprogs("depth_two_tree_4k") {
        return;
    }
    // Root 4 keys × leaves of 340 extents.
    sparse_tree(4096, 2 * 1400);
}

#[test]
fn truncate_to_zero_resets_the_root() {
    if !have_e2fsprogs("truncate_to_zero_resets_the_root") {
        return;
    }
    let dir = TempDir::new("ext-trunc0");
    let (img, mut fs, ino) = setup(&dir, 1024, 32 << 20, &[]);
    for i in (0..400u64).step_by(2) {
        fs.write_file(ino, i * 1024, &[0xA5; 1024]).unwrap();
    }
    assert_eq!(read_depth(&fs, ino), 1);
    fs.truncate_file(ino, 0).unwrap();
    let root = fs.inode(ino).raw.i_block_bytes();
    assert_eq!(
        root[..8],
        [0x0A, 0xF3, 0, 0, 4, 0, 0, 0],
        "depth 0, eh_max 4, empty"
    );
    assert_eq!(fs.inode_blocks(ino), 0);
    let model = Model::default();
    let runs = check_i_blocks(&mut fs, ino, 0);
    finish(fs, &img, &model, &runs, &[]);
}

/// Longer random runs, for soaking after a change:
/// `E4FUZZ_SOAK_SEEDS=200 cargo test --release --test integration soak -- --ignored --nocapture`.
#[test]
#[ignore]
fn soak_random_sequences() {
    let n: u64 = std::env::var("E4FUZZ_SOAK_SEEDS").map_or(20, |s| s.parse().unwrap());
    for seed in 100..100 + n {
        let a = random_sequence("soak1k", 1024, &[], seed, 400, 300 << 10);
        let b = random_sequence("soak4k", 4096, &[], seed, 300, 2 << 20);
        let c = run_sequence(
            "soak-frag",
            1024,
            &[],
            seed,
            1500,
            1200 << 10,
            random_sparse_op,
        );
        eprintln!("seed {seed}: depths {a} {b} {c}");
    }
}

/// e2fsck 1.47 offers to rebuild a tree that lost most of its extents ("could be shorter /
/// narrower. Optimize?"), but with `-n` that is no error: the exit status stays 0. The kernel
/// never shrinks a tree except by collapsing a one-leaf depth-1 tree into the inode
/// (ext4_ext_try_to_merge_up()) or resetting an empty one, so its images show the same.
#[test]
fn e2fsck_may_offer_a_shorter_tree_and_stays_clean() {
    if !have_e2fsprogs("e2fsck_may_offer_a_shorter_tree_and_stays_clean") {
        return;
    }
    let dir = TempDir::new("ext-shorter");
    let (img, mut fs, ino) = setup(&dir, 1024, 32 << 20, &[]);
    let mut model = Model::default();
    for i in (0..800u64).step_by(2) {
        let op = Op::Write {
            off: i * 1024,
            len: 1024,
            seed: 3,
        };
        run_op(&mut fs, ino, op).unwrap();
        model.apply(op);
    }
    assert_eq!(read_depth(&fs, ino), 2);
    let op = Op::Punch {
        off: 10 * 1024,
        len: 700 * 1024,
    };
    run_op(&mut fs, ino, op).unwrap();
    model.apply(op);
    assert_eq!(read_depth(&fs, ino), 2, "removal does not shrink the tree");
    let runs = check_i_blocks(&mut fs, ino, 0);
    let leaves = leaf_extents(&mut fs, ino);
    let dev = fs.unmount().unwrap();
    dev.save(&img).unwrap();
    let (status, out) = e2fsck(&img);
    assert!(out.contains("could be shorter"), "{out}");
    assert_eq!(status, 0, "{out}");
    assert_eq!(debugfs_cat(&img, "/f"), model.data);
    assert_eq!(debugfs_ex(&img, "/f").0, leaves);
    assert_eq!(runs.meta.len(), 3, "root → one index block → two leaves");
}

/// Throughput of the extent model fuzz loop on a 1 KiB-block image, release build:
/// `cargo test --release --test integration extent_fuzz_throughput -- --ignored --nocapture`.
/// Prints ops/s for the engine alone and with the byte-model check after every op.
#[test]
#[ignore]
fn extent_fuzz_throughput() {
    if !have_e2fsprogs("extent_fuzz_throughput") {
        return;
    }
    const OPS: usize = 20_000;
    for (name, gen, span) in [
        (
            "mixed",
            random_op as fn(&mut Rng, u64, u64) -> Op,
            600u64 << 10,
        ),
        ("fragmenting", random_sparse_op, 1200 << 10),
    ] {
        for checked in [false, true] {
            let dir = TempDir::new("ext-bench");
            let (_img, mut fs, ino) = setup(&dir, 1024, 64 << 20, &[]);
            let mut rng = Rng(42);
            let mut model = Model::default();
            let ops: Vec<Op> = (0..OPS).map(|_| gen(&mut rng, span, 1024)).collect();
            let t0 = std::time::Instant::now();
            for (step, &op) in ops.iter().enumerate() {
                run_op(&mut fs, ino, op).unwrap();
                if checked {
                    model.apply(op);
                    check_content(&mut fs, ino, &model, step, op);
                }
            }
            let s = t0.elapsed().as_secs_f64();
            let depth = read_depth(&fs, ino);
            eprintln!(
                "{name:12} checked={checked:5}: {OPS} ops in {s:.2} s = {:.0} ops/s (depth {depth})",
                OPS as f64 / s
            );
        }
    }
}

/// Without U3, a truncate of a depth-2 extent tree (420 one-block extents on 1 KiB blocks)
/// under a `first-each` fault on the tree blocks fails before it changes anything, for any new
/// size: each failure leaves the size and the map as they were (`Fs::ext_truncate_probe`
/// read a block the walk needs and that read failed), and retries get through.
#[test]
fn without_u3_a_failed_extent_truncate_changes_nothing_at_any_depth() {
    use e4fuzz::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen};
    use e4fuzz::harness::template::template;
    use e4fuzz::scenario::{FileSetup, Geometry};
    let writes = (0..840u64)
        .step_by(2)
        .map(|l| (l * 1024, 1024, 1))
        .collect();
    let setup = [FileSetup {
        file: 2,
        indirect: false,
        writes,
    }];
    let before = template(&Geometry::default(), &setup).expect("template");
    for blocks in [0u64, 1, 100, 167, 168, 169, 500, 837, 838] {
        let mut fs = Fs::mount(before.clone(), MountOpts::default()).expect("mount");
        let ino = fs.resolve("/f2").unwrap();
        assert_eq!(fs.inode(ino).raw.i_block[1] >> 16, 2, "depth 2");
        let rule = FaultRule::new(FaultOp::Read, FaultWhen::FirstEach).in_zone(Zone::TreeMeta);
        fs.dev.set_fault_plan(FaultPlan::none().with_rule(rule));
        let (size, map) = (fs.inode(ino).raw.i_size, fs.peek_map(ino).unwrap());
        let mut failures = 0;
        while let Err(e) = fs.truncate_file(ino, blocks * 1024) {
            assert!(matches!(e, e4fuzz::Error::Io(_)), "{blocks}: {e:?}");
            let now = (fs.inode(ino).raw.i_size, fs.peek_map(ino).unwrap());
            assert_eq!(
                now,
                (size, map.clone()),
                "{blocks}: a failure changed nothing"
            );
            failures += 1;
            assert!(failures < 20, "{blocks}: the truncate keeps failing");
        }
        assert!(failures > 0, "{blocks}: the walk read a tree block");
        let left = fs.peek_map(ino).unwrap();
        assert!(
            left.iter().all(|&(l, _, n)| u64::from(l + n) <= blocks),
            "{blocks}: {left:?}"
        );
        let kept = map
            .iter()
            .filter(|&&(l, _, _)| u64::from(l) < blocks)
            .count();
        assert_eq!(
            left.len(),
            kept,
            "{blocks}: the extents below the size stay"
        );
        assert_eq!(fs.sb.s_state & e4fuzz::format::superblock::EXT4_ERROR_FS, 0);
    }
}
