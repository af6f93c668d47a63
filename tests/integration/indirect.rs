//! Model-based test of the indirect block map (the model of fs/ext4/indirect.c): random
//! writes at sparse offsets reaching the DIND and TIND ranges, truncates (shrink and grow),
//! punches, reads and syncs on the indirect-mapped files of a `mke2fs -O ^extent` image.
//!
//! After every operation each file is checked against a byte model
//! (`BTreeMap<lblk, block bytes>`): the mapped blocks seen by the independent walker
//! (`format::blockmap::walk`) are exactly the model's blocks, the content of every mapped
//! block, of the operation's range and of random probes equals the model's, `i_blocks` is
//! exactly the data and mapping blocks, and the free-block count moved by exactly what the
//! files hold. Every few hundred operations, and at the end, the filesystem is unmounted and
//! saved: `e2fsck -fn` must be clean and `debugfs cat` must give the model's bytes.
//!
//! `indirect_model_fuzz_bench` (ignored) measures operations per second; see its doc.

use crate::util::*;
use e4fuzz::format::blockmap::{self, WalkCtx};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::{Ino, Pblk};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// splitmix64: a small deterministic generator (no dependency, same sequence everywhere).
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `pct` %.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// The logical layout of an indirect map for one block size.
#[derive(Clone, Copy)]
struct Geo {
    bs: u64,
    apb: u64,
    /// How many DIND subtrees of the TIND range the test uses (bounds the file size).
    tind_subtrees: u64,
}

impl Geo {
    fn ind(&self) -> u64 {
        12
    }
    fn dind(&self) -> u64 {
        12 + self.apb
    }
    fn tind(&self) -> u64 {
        12 + self.apb + self.apb * self.apb
    }

    /// A logical block in a randomly chosen part of the map, or just before a boundary; the
    /// TIND range only when `tind` (it makes files gigabytes long with 4 KiB blocks).
    fn pick_lblk(&self, r: &mut Prng, tind: bool) -> u64 {
        let apb2 = self.apb * self.apb;
        let mut c = r.below(100);
        if !tind && (65..85).contains(&c) {
            c = 35 + r.below(30);
        }
        match c {
            0..=14 => r.below(12),
            15..=34 => self.ind() + r.below(self.apb),
            35..=64 => self.dind() + r.below(apb2),
            65..=84 => self.tind() + r.below(self.tind_subtrees * apb2),
            _ => {
                let k = r.below(self.tind_subtrees);
                let edges = [
                    self.ind(),
                    self.dind(),
                    self.dind() + self.apb * (1 + r.below(self.apb - 1)),
                    self.tind(),
                    self.tind() + apb2 * k + self.apb * r.below(self.apb),
                ];
                let e = edges[r.below(if tind { 5 } else { 3 }) as usize];
                e.saturating_sub(1 + r.below(3))
            }
        }
    }
}

/// The byte model of one file: its size and the content of every block it has written.
#[derive(Default)]
struct Model {
    size: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl Model {
    fn write(&mut self, bs: u64, off: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let pos = off + i as u64;
            let blk = self
                .blocks
                .entry(pos / bs)
                .or_insert_with(|| vec![0; bs as usize]);
            blk[(pos % bs) as usize] = b;
        }
        self.size = self.size.max(off + data.len() as u64);
    }

    fn truncate(&mut self, bs: u64, size: u64) {
        if size < self.size {
            self.blocks.retain(|&l, _| l < size.div_ceil(bs));
            if let Some(b) = self.blocks.get_mut(&(size / bs)) {
                b[(size % bs) as usize..].fill(0);
            }
        }
        self.size = size;
    }

    fn punch(&mut self, bs: u64, off: u64, len: u64) {
        let end = off.saturating_add(len).min(self.size);
        if off >= end {
            return;
        }
        let (first_full, last_full) = (off.div_ceil(bs), end / bs);
        self.blocks.retain(|&l, _| l < first_full || l >= last_full);
        for (&l, b) in self.blocks.range_mut(off / bs..=(end - 1) / bs) {
            let (s, e) = ((l * bs).max(off), ((l + 1) * bs).min(end));
            b[(s - l * bs) as usize..(e - l * bs) as usize].fill(0);
        }
    }

    /// Bytes `[off, off + len)` clamped at the size, as a read returns them.
    fn read(&self, bs: u64, off: u64, len: u64) -> Vec<u8> {
        let end = off.saturating_add(len).min(self.size);
        (off..end.max(off))
            .map(|p| {
                self.blocks
                    .get(&(p / bs))
                    .map_or(0, |b| b[(p % bs) as usize])
            })
            .collect()
    }
}

/// One operation of the fuzz.
#[derive(Debug)]
enum Op {
    Write {
        f: usize,
        off: u64,
        len: u64,
        seed: u8,
    },
    Truncate {
        f: usize,
        size: u64,
    },
    Punch {
        f: usize,
        off: u64,
        len: u64,
    },
    Read {
        f: usize,
        off: u64,
        len: u64,
    },
    Sync,
}

fn gen_op(r: &mut Prng, g: &Geo, models: &[Model]) -> Op {
    let f = r.below(models.len() as u64) as usize;
    // File 0 reaches into TIND; the others stay below it.
    let tind = f == 0;
    let size = models[f].size;
    let blocks = |r: &mut Prng| match r.below(10) {
        0..=6 => 1 + r.below(3),
        7 | 8 => 1 + r.below(20),
        _ => 1 + r.below(2 * g.apb),
    };
    match r.below(100) {
        0..=44 => {
            let off = g.pick_lblk(r, tind) * g.bs + r.below(g.bs);
            let len = (blocks(r) * g.bs).min(1 + r.below(3 * g.bs) + r.below(2) * 17 * g.bs);
            Op::Write {
                f,
                off,
                len,
                seed: r.next() as u8,
            }
        }
        45..=59 => {
            let size = if r.chance(70) && size > 0 {
                r.below(size + 1)
            } else {
                size + r.below(64 * g.bs)
            };
            Op::Truncate { f, size }
        }
        60..=81 => {
            let off = if size > 0 && r.chance(80) {
                r.below(size)
            } else {
                g.pick_lblk(r, tind) * g.bs
            };
            let len = match r.below(4) {
                0 => 1 + r.below(4 * g.bs),
                1 => blocks(r) * g.bs + r.below(g.bs),
                2 => g.apb * g.apb * g.bs * (1 + r.below(2)),
                _ => u64::MAX - off,
            };
            Op::Punch { f, off, len }
        }
        82..=96 => {
            let off = if size > 0 { r.below(size + g.bs) } else { 0 };
            Op::Read {
                f,
                off,
                len: 1 + r.below(4 * g.bs),
            }
        }
        _ => Op::Sync,
    }
}

/// A mounted image with its files and their models.
struct Run {
    fs: Option<Fs>,
    img: std::path::PathBuf,
    geo: Geo,
    inos: Vec<Ino>,
    models: Vec<Model>,
    /// Free blocks once the (empty) files exist.
    base_free: u64,
    probes: Prng,
}

impl Run {
    fn new(img: &Path, geo: Geo, nfiles: usize) -> Run {
        let mut fs = Fs::open(img, MountOpts::default()).unwrap();
        let inos = (0..nfiles)
            .map(|i| fs.create(&format!("/f{i}"), 0o644).unwrap())
            .collect();
        let base_free = fs.sb.s_free_blocks_count;
        Run {
            fs: Some(fs),
            img: img.to_path_buf(),
            geo,
            inos,
            models: (0..nfiles).map(|_| Model::default()).collect(),
            base_free,
            probes: Prng(0xC0FFEE),
        }
    }

    fn fs(&mut self) -> &mut Fs {
        self.fs.as_mut().unwrap()
    }

    fn apply(&mut self, op: &Op) {
        let bs = self.geo.bs;
        match *op {
            Op::Write { f, off, len, seed } => {
                let data: Vec<u8> = (0..len)
                    .map(|i| seed.wrapping_add((i % 251) as u8) | 1)
                    .collect();
                let ino = self.inos[f];
                self.fs().write_file(ino, off, &data).unwrap();
                self.models[f].write(bs, off, &data);
            }
            Op::Truncate { f, size } => {
                let ino = self.inos[f];
                self.fs().truncate_file(ino, size).unwrap();
                self.models[f].truncate(bs, size);
            }
            Op::Punch { f, off, len } => {
                let ino = self.inos[f];
                self.fs().punch_hole(ino, off, len).unwrap();
                self.models[f].punch(bs, off, len);
            }
            Op::Read { f, off, len } => {
                let ino = self.inos[f];
                let got = self.fs().read_file(ino, off, len).unwrap();
                assert_eq!(got, self.models[f].read(bs, off, len), "read {op:?}");
            }
            Op::Sync => self.fs().sync().unwrap(),
        }
    }

    /// The walker's view of a file: mapped logical blocks and the number of mapping blocks.
    fn walk(&mut self, f: usize) -> (BTreeSet<u64>, u64) {
        let ino = self.inos[f];
        let fs = self.fs.as_mut().unwrap();
        let i_block = fs.iget(ino).unwrap().raw.i_block_bytes();
        let (bs, first, nr) = (
            fs.block_size(),
            u64::from(fs.sb.s_first_data_block),
            fs.sb.s_blocks_count,
        );
        // Through the buffer cache: with the journal, the newest metadata is not home yet.
        let mut read = |b: Pblk| {
            fs.bread(b, e4fuzz::dev::Zone::Unknown)
                .map(std::sync::Arc::from)
        };
        let mut ctx = WalkCtx {
            ino,
            block_size: bs,
            first_block: first,
            nr_blocks: nr,
            csum_seed: None,
            read: &mut read,
        };
        let map = blockmap::walk(&mut ctx, &i_block, false).unwrap();
        let lblks = map
            .runs
            .iter()
            .flat_map(|r| (r.lblk..r.lblk + r.len).map(u64::from))
            .collect();
        (lblks, map.meta.len() as u64)
    }

    /// Check every file against its model (see the module doc); `op` is what just ran.
    fn check(&mut self, op: &Op) {
        let bs = self.geo.bs;
        let mut held = 0;
        for f in 0..self.inos.len() {
            let (mapped, meta) = self.walk(f);
            let model: BTreeSet<u64> = self.models[f].blocks.keys().copied().collect();
            assert_eq!(mapped, model, "file {f}: mapped blocks after {op:?}");
            let ino = self.inos[f];
            let per = bs / 512;
            let sectors = self.fs().inode_blocks(ino);
            assert_eq!(
                sectors,
                (mapped.len() as u64 + meta) * per,
                "file {f}: i_blocks after {op:?}"
            );
            held += mapped.len() as u64 + meta;
            let size = self.fs().inode(ino).raw.i_size;
            assert_eq!(size, self.models[f].size, "file {f}: i_size after {op:?}");
            let mut probe: BTreeSet<u64> = mapped;
            if let Op::Write { f: g, off, len, .. }
            | Op::Punch { f: g, off, len }
            | Op::Read { f: g, off, len } = *op
            {
                if g == f {
                    let last = off.saturating_add(len).min(size.max(1) - 1) / bs;
                    probe.extend((off / bs).saturating_sub(1)..=(last + 1).min(off / bs + 64));
                }
            }
            for _ in 0..4 {
                let p = self.probes.below(size / bs + 2);
                probe.insert(p);
            }
            for l in probe {
                let got = self.fs().read_file(ino, l * bs, bs).unwrap();
                let want = self.models[f].read(bs, l * bs, bs);
                assert!(got == want, "file {f}: block {l} differs after {op:?}");
            }
        }
        let free = self.fs().sb.s_free_blocks_count;
        assert_eq!(free, self.base_free - held, "free blocks after {op:?}");
    }

    /// Unmount, save, `e2fsck -fn`, compare every file with `debugfs cat`; remount.
    fn fsck_and_cat(&mut self) {
        let dev = self.fs.take().unwrap().unmount().unwrap();
        dev.save(&self.img).unwrap();
        assert_e2fsck_clean(&self.img);
        for f in 0..self.inos.len() {
            cat_equals(&self.img, &format!("/f{f}"), &self.models[f], self.geo.bs);
        }
        self.fs = Some(Fs::mount(dev, MountOpts::default()).unwrap());
    }
}

/// `debugfs -R "cat path"` streamed and compared with the model chunk by chunk (files reach
/// gigabytes of mostly holes with 4 KiB blocks).
fn cat_equals(img: &Path, path: &str, m: &Model, bs: u64) {
    let mut child = Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(img)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let want_len = (n as u64).min(m.size.saturating_sub(pos));
        assert!(
            want_len == n as u64,
            "{path}: debugfs gives more than {} bytes",
            m.size
        );
        // Only blocks the model holds can be non-zero.
        let first = pos / bs;
        let last = (pos + n as u64 - 1) / bs;
        let mut at = pos;
        for (&l, _) in m.blocks.range(first..=last) {
            let s = (l * bs).max(pos);
            assert!(
                chunk[(at - pos) as usize..(s - pos) as usize]
                    .iter()
                    .all(|&b| b == 0),
                "{path}: non-zero hole before block {l}"
            );
            let e = ((l + 1) * bs).min(pos + n as u64);
            assert!(
                chunk[(s - pos) as usize..(e - pos) as usize] == m.read(bs, s, e - s)[..],
                "{path}: block {l} differs"
            );
            at = e;
        }
        assert!(
            chunk[(at - pos) as usize..].iter().all(|&b| b == 0),
            "{path}: non-zero hole"
        );
        pos += n as u64;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(pos, m.size, "{path}: debugfs cat length");
}

/// What a fuzz run reached, printed at its end (to see that TIND, punches and truncates were
/// really exercised).
#[derive(Default, Debug)]
struct Stats {
    writes_tind: u32,
    writes_dind: u32,
    punches: u32,
    truncates: u32,
    max_meta: u64,
    max_size: u64,
}

impl Stats {
    fn note(&mut self, op: &Op, run: &mut Run) {
        let g = run.geo;
        match *op {
            Op::Write { off, .. } if off / g.bs >= g.tind() => self.writes_tind += 1,
            Op::Write { off, .. } if off / g.bs >= g.dind() => self.writes_dind += 1,
            Op::Punch { .. } => self.punches += 1,
            Op::Truncate { .. } => self.truncates += 1,
            _ => {}
        }
        let meta = (0..run.inos.len()).map(|f| run.walk(f).1).sum();
        self.max_meta = self.max_meta.max(meta);
        let size = run.models.iter().map(|m| m.size).max().unwrap_or(0);
        self.max_size = self.max_size.max(size);
    }
}

/// Run `ops` random operations from `seed` on a fresh `^extent` image with `bs`-byte blocks.
fn fuzz(tag: &str, bs: u64, tind_subtrees: u64, seed: u64, ops: usize, fsck_every: usize) {
    let t = TempDir::new(tag);
    let img = t.path("ind.img");
    let size = if bs == 1024 { 64 << 20 } else { 256 << 20 };
    mke2fs(
        &img,
        size,
        &["-t", "ext4", "-O", "^extent,^64bit", "-b", &bs.to_string()],
    );
    let geo = Geo {
        bs,
        apb: bs / 4,
        tind_subtrees,
    };
    let mut run = Run::new(&img, geo, 3);
    let mut r = Prng(seed);
    let mut stats = Stats::default();
    for i in 0..ops {
        let op = gen_op(&mut r, &geo, &run.models);
        run.apply(&op);
        run.check(&op);
        stats.note(&op, &mut run);
        if (i + 1) % fsck_every == 0 || i + 1 == ops {
            run.fsck_and_cat();
        }
    }
    eprintln!("{tag} seed {seed}: {stats:?}");
}

#[test]
fn indirect_model_fuzz_1k() {
    if !have_e2fsprogs("indirect_model_fuzz_1k") {
        return;
    }
    for seed in [1, 2, 3] {
        fuzz("ind1k", 1024, 3, seed, 600, 200);
    }
}

#[test]
fn indirect_model_fuzz_4k() {
    if !have_e2fsprogs("indirect_model_fuzz_4k") {
        return;
    }
    fuzz("ind4k", 4096, 1, 7, 300, 300);
}

/// Throughput of the indirect model fuzz: `E4FUZZ_IND_OPS` operations (default 20000) on a
/// 1 KiB-block image, per-op checks included, no e2fsck until the end. Run with
/// `cargo test --release --test integration indirect_model_fuzz_bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn indirect_model_fuzz_bench() {
    if !have_e2fsprogs("indirect_model_fuzz_bench") {
        return;
    }
    let ops: usize = std::env::var("E4FUZZ_IND_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let t = TempDir::new("indbench");
    let img = t.path("ind.img");
    mke2fs(
        &img,
        64 << 20,
        &["-t", "ext4", "-O", "^extent,^64bit", "-b", "1024"],
    );
    let geo = Geo {
        bs: 1024,
        apb: 256,
        tind_subtrees: 3,
    };
    let mut run = Run::new(&img, geo, 3);
    let mut r = Prng(42);
    let (mut engine, start) = (std::time::Duration::ZERO, std::time::Instant::now());
    for _ in 0..ops {
        let op = gen_op(&mut r, &geo, &run.models);
        let t0 = std::time::Instant::now();
        run.apply(&op);
        engine += t0.elapsed();
        run.check(&op);
    }
    let all = start.elapsed();
    run.fsck_and_cat();
    let rate = |d: std::time::Duration| ops as f64 / d.as_secs_f64();
    println!(
        "indirect model fuzz: {ops} ops in {:.2} s: {:.0} ops/s with checks, {:.0} ops/s engine only",
        all.as_secs_f64(),
        rate(all),
        rate(engine)
    );
}

/// A directory of an `^extent` filesystem is indirect-mapped too: growing one past its twelve
/// direct blocks goes through IND, and emptying and removing it frees its blocks as metadata
/// (forgotten from the buffer cache). e2fsck must be clean after each phase.
#[test]
fn indirect_directory_grows_into_ind_and_is_freed() {
    if !have_e2fsprogs("indirect_directory_grows_into_ind_and_is_freed") {
        return;
    }
    let t = TempDir::new("inddir");
    let img = t.path("dir.img");
    mke2fs(
        &img,
        32 << 20,
        &[
            "-t",
            "ext4",
            "-O",
            "^extent,^64bit,^dir_index",
            "-b",
            "1024",
        ],
    );
    let mut fs = Fs::open(&img, MountOpts::default()).unwrap();
    let free0 = fs.sb.s_free_blocks_count;
    let d = fs.mkdir("/d").unwrap();
    let names: Vec<String> = (0..700)
        .map(|i| format!("a-rather-long-file-name-{i:04}"))
        .collect();
    for n in &names {
        fs.create(&format!("/d/{n}"), 0o644).unwrap();
    }
    let size = fs.inode(d).raw.i_size;
    assert!(size > 13 * 1024, "the directory reaches IND ({size} bytes)");
    assert_ne!(fs.inode(d).raw.i_block[12], 0);
    let dev = fs.unmount().unwrap();
    dev.save(&img).unwrap();
    assert_e2fsck_clean(&img);
    let listing = debugfs(&img, false, &["ls -l /d"]);
    assert!(listing.contains("a-rather-long-file-name-0699"));
    let mut fs = Fs::mount(dev, MountOpts::default()).unwrap();
    for n in &names {
        fs.unlink(&format!("/d/{n}")).unwrap();
    }
    fs.rmdir("/d").unwrap();
    assert_eq!(
        fs.sb.s_free_blocks_count, free0,
        "every directory block came back"
    );
    let dev = fs.unmount().unwrap();
    dev.save(&img).unwrap();
    assert_e2fsck_clean(&img);
}
