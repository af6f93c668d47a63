//! `e4fuzz migrate` end to end on real images: indirect files of every shape written on a
//! `mke2fs -O ^extent,^64bit` image, `tune2fs -O extent`, then `e4fuzz migrate` per file. After
//! each: `e2fsck -fn` clean, `debugfs cat` equal to the bytes written, the `debugfs ex` leaf
//! extents equal to the runs of the original map (read before by the independent walker),
//! the free-block count moved by exactly (indirect blocks freed − tree blocks allocated), the
//! temporary inode freed (free-inode count unchanged). The reverse (`--to indirect`) on small
//! single-extent files, and its refusals. The kernel referee (`chattr +e` / `chattr -e` on a
//! loop mount) is in [`kernel`].

pub(crate) mod kernel;

use crate::util::*;
use e4fuzz::dev::Zone;
use e4fuzz::format::blockmap::{self, BlockMap, MetaKind, Run};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::{Ino, Pblk};
use std::path::Path;
use std::process::Command;

/// A file to build: path, `(byte offset, length)` pieces written in order, final size (a
/// larger size leaves a trailing hole).
pub(crate) struct Shape {
    pub(crate) path: &'static str,
    pub(crate) pieces: Vec<(u64, u64)>,
    pub(crate) size: Option<u64>,
}

/// Deterministic bytes for a piece.
pub(crate) fn bytes(off: u64, len: u64) -> Vec<u8> {
    (off..off + len)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
        .collect()
}

/// The file's expected contents.
pub(crate) fn model(s: &Shape) -> Vec<u8> {
    let mut m = Vec::new();
    for &(off, len) in &s.pieces {
        let end = (off + len) as usize;
        if m.len() < end {
            m.resize(end, 0);
        }
        m[off as usize..end].copy_from_slice(&bytes(off, len));
    }
    if let Some(size) = s.size {
        m.resize(size as usize, 0);
    }
    m
}

/// The shapes the task lists, for block size `bs` (offsets in blocks of `bs`).
pub(crate) fn shapes(bs: u64) -> Vec<Shape> {
    let n = bs / 4; // pointers per block
    let b = |blk: u64, nblk: u64| (blk * bs, nblk * bs);
    let tind = 12 + n + n * n;
    let frag: Vec<(u64, u64)> = (0..40).map(|i| b(2 * i, 1)).collect();
    vec![
        Shape {
            path: "/empty",
            pieces: vec![],
            size: None,
        },
        Shape {
            path: "/one",
            pieces: vec![b(0, 1)],
            size: None,
        },
        Shape {
            path: "/direct12",
            pieces: vec![b(0, 12)],
            size: None,
        },
        Shape {
            path: "/holes",
            pieces: vec![
                b(1, 2),
                b(5, 1),
                b(14, 3),
                b(12 + n - 2, 4),
                b(12 + n + 2 * n + 3, 2),
            ],
            size: None,
        },
        Shape {
            path: "/indonly",
            pieces: vec![b(20, 30)],
            size: None,
        },
        Shape {
            path: "/dind",
            pieces: vec![b(0, 1), b(12 + n + 5, 3), b(12 + n + 3 * n, 1)],
            size: None,
        },
        Shape {
            path: "/tind",
            pieces: vec![b(3, 1), b(tind + 7, 2), b(tind + n * n + n + 1, 1)],
            size: None,
        },
        Shape {
            path: "/frag",
            pieces: frag,
            size: None,
        },
        Shape {
            path: "/trail",
            pieces: vec![b(0, 3), (3 * bs, 100)],
            size: Some(40 * bs),
        },
    ]
}

/// Build `shapes` with the engine on `img` (an indirect filesystem), unmount, save.
pub(crate) fn build(img: &Path, shapes: &[Shape]) {
    let mut fs = Fs::open(img, MountOpts::default()).unwrap();
    for s in shapes {
        let ino = fs.create(s.path, 0o644).unwrap();
        for &(off, len) in &s.pieces {
            fs.write_file(ino, off, &bytes(off, len)).unwrap();
        }
        if let Some(size) = s.size {
            fs.truncate_file(ino, size).unwrap();
        }
    }
    fs.unmount().unwrap().save(img).unwrap();
}

/// A file's map as the independent walker reads it (read-only mount).
pub(crate) fn walk(fs: &mut Fs, ino: Ino) -> BlockMap {
    let raw = fs.iget(ino).unwrap().raw.clone();
    let seed = fs.sb.metadata_csum().then(|| fs.inode(ino).csum_seed);
    let sb = fs.sb.clone();
    let mut read = |b: Pblk| fs.bread(b, Zone::TreeMeta).map(std::sync::Arc::from);
    blockmap::walk_inode(&sb, ino, &raw, seed, &mut read).unwrap()
}

/// State of one file and the counters, read with a read-only mount.
pub(crate) struct Snap {
    pub(crate) map: BlockMap,
    pub(crate) extents: bool,
    pub(crate) free_blocks: u64,
    pub(crate) free_inodes: u32,
}

pub(crate) fn snap(img: &Path, path: &str) -> Snap {
    let mut fs = Fs::open(img, MountOpts { read_only: true }).unwrap();
    let ino = fs.resolve(path).unwrap();
    let map = walk(&mut fs, ino);
    Snap {
        map,
        extents: fs.inode(ino).is_extents(),
        free_blocks: fs.sb.s_free_blocks_count,
        free_inodes: fs.sb.s_free_inodes_count,
    }
}

/// Leaf extents `(lblk, pblk, len)` of `debugfs -R "ex PATH"` (rows whose level is the depth).
pub(crate) fn debugfs_ex(img: &Path, path: &str) -> Vec<(u32, u64, u32)> {
    let out = debugfs(img, false, &[&format!("ex {path}")]);
    let mut v = Vec::new();
    for line in out.lines() {
        // " 1/ 1   1/ 84     0 -    11  6313 -  6324     12 [Uninit]"
        let l = line.replace('/', " ");
        let t: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| t.get(i).and_then(|s| s.parse::<u64>().ok());
        let (Some(level), Some(depth)) = (num(0), num(1)) else {
            continue;
        };
        if level != depth || t.len() < 11 || t[5] != "-" || t[8] != "-" {
            continue;
        }
        v.push((
            num(4).unwrap() as u32,
            num(7).unwrap(),
            num(10).unwrap() as u32,
        ));
    }
    v
}

/// Runs as `(lblk, pblk, len)`.
pub(crate) fn triples(runs: &[Run]) -> Vec<(u32, u64, u32)> {
    runs.iter().map(|r| (r.lblk, r.pblk, r.len)).collect()
}

fn tune2fs_extent(img: &Path) {
    let st = Command::new("tune2fs")
        .args(["-O", "extent"])
        .arg(img)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "tune2fs: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn count(map: &BlockMap, f: impl Fn(MetaKind) -> bool) -> u64 {
    map.meta.iter().filter(|m| f(m.kind)).count() as u64
}

/// Migrate every shape of one image and check each step.
fn shapes_round(tag: &str, bs: u64) {
    if !have_e2fsprogs(tag) {
        return;
    }
    let dir = TempDir::new(tag);
    let img = dir.path("ind.img");
    mke2fs(
        &img,
        64 << 20,
        &["-t", "ext4", "-b", &bs.to_string(), "-O", "^extent,^64bit"],
    );
    let all = shapes(bs);
    build(&img, &all);
    tune2fs_extent(&img);
    assert_e2fsck_clean(&img);
    for s in &all {
        let before = snap(&img, s.path);
        assert!(!before.extents, "{} starts indirect", s.path);
        let out = e4fuzz(&["migrate", img.to_str().unwrap(), s.path]);
        assert!(
            out.status.success(),
            "{}: {}",
            s.path,
            String::from_utf8_lossy(&out.stderr)
        );
        let after = snap(&img, s.path);
        assert!(after.extents, "{}", s.path);
        assert_eq!(
            after.map.runs, before.map.runs,
            "{}: same logical→physical map",
            s.path
        );
        let ind = count(&before.map, |k| matches!(k, MetaKind::Indirect(_)));
        let tree = count(&after.map, |k| matches!(k, MetaKind::ExtentNode(_)));
        assert_eq!(
            after.free_blocks + tree,
            before.free_blocks + ind,
            "{}: free blocks",
            s.path
        );
        assert_eq!(
            after.free_inodes, before.free_inodes,
            "{}: temp inode freed",
            s.path
        );
        assert_e2fsck_clean(&img);
        assert_eq!(debugfs_cat(&img, s.path), model(s), "{}: bytes", s.path);
        assert_eq!(
            debugfs_ex(&img, s.path),
            triples(&after.map.runs),
            "{}: debugfs ex",
            s.path
        );
    }
    // The fragmented file needed a leaf block, the sparse ones freed their indirect trees.
    let frag = snap(&img, "/frag");
    assert_eq!(frag.map.runs.len(), 40);
    assert_eq!(count(&frag.map, |k| k == MetaKind::ExtentNode(0)), 1);
    let out = e4fuzz(&["migrate", img.to_str().unwrap(), "/frag"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "e4fuzz: migrate /frag: invalid argument: inode already uses extents"
    );
}

#[test]
fn migrate_every_shape_1k() {
    shapes_round("mig1k", 1024);
}

#[test]
fn migrate_every_shape_4k() {
    shapes_round("mig4k", 4096);
}

#[test]
fn migrate_refuses_a_filesystem_without_extents() {
    if !have_e2fsprogs("mig-noext") {
        return;
    }
    let dir = TempDir::new("mig-noext");
    let img = dir.path("a.img");
    mke2fs(
        &img,
        8 << 20,
        &["-t", "ext4", "-b", "1024", "-O", "^extent,^64bit"],
    );
    build(
        &img,
        &[Shape {
            path: "/f",
            pieces: vec![(0, 3000)],
            size: None,
        }],
    );
    let out = e4fuzz(&["migrate", img.to_str().unwrap(), "/f"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "e4fuzz: migrate /f: invalid argument: filesystem lacks the extent feature"
    );
    assert_e2fsck_clean(&img);
    assert!(!snap(&img, "/f").extents);
}

/// `--to indirect` on an extent filesystem: small single-extent files convert in place, the
/// others are refused with the kernel's reason and left alone.
#[test]
fn ind_migrate_small_files_and_refusals() {
    if !have_e2fsprogs("indmig") {
        return;
    }
    let dir = TempDir::new("indmig");
    let img = dir.path("ext.img");
    mke2fs(&img, 16 << 20, &["-t", "ext4", "-b", "1024"]);
    let ok = [
        Shape {
            path: "/a",
            pieces: vec![(0, 5 * 1024)],
            size: None,
        },
        Shape {
            path: "/b",
            pieces: vec![(3 * 1024, 9 * 1024)],
            size: None,
        },
        Shape {
            path: "/e",
            pieces: vec![],
            size: Some(2048),
        },
    ];
    let refused = [
        (
            Shape {
                path: "/two",
                pieces: vec![(0, 1024), (4096, 1024)],
                size: None,
            },
            "more than one extent",
        ),
        (
            Shape {
                path: "/far",
                pieces: vec![(10 * 1024, 3 * 1024)],
                size: None,
            },
            "extent beyond block 11",
        ),
        (
            Shape {
                path: "/big",
                pieces: vec![(0, 13 * 1024)],
                size: None,
            },
            "extent beyond block 11",
        ),
    ];
    let mut all: Vec<&Shape> = ok.iter().collect();
    all.extend(refused.iter().map(|(s, _)| s));
    let owned: Vec<Shape> = all
        .iter()
        .map(|s| Shape {
            path: s.path,
            pieces: s.pieces.clone(),
            size: s.size,
        })
        .collect();
    build(&img, &owned);
    for s in &ok {
        let before = snap(&img, s.path);
        let out = e4fuzz(&["migrate", img.to_str().unwrap(), s.path, "--to", "indirect"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = snap(&img, s.path);
        assert!(!after.extents);
        assert_eq!(after.map.runs, before.map.runs, "{}", s.path);
        assert_eq!(after.free_blocks, before.free_blocks);
        assert_e2fsck_clean(&img);
        assert_eq!(debugfs_cat(&img, s.path), model(s));
    }
    for (s, why) in &refused {
        let out = e4fuzz(&["migrate", img.to_str().unwrap(), s.path, "--to", "indirect"]);
        assert_eq!(out.status.code(), Some(2), "{}", s.path);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("e4fuzz: migrate {}: operation not supported: {why}", s.path)
        );
        assert!(snap(&img, s.path).extents);
    }
    assert_e2fsck_clean(&img);
}

/// `--bug` reaches the engine: S7 leaves extent blocks whose checksum e2fsck rejects; bad
/// `--profile` / `--bug` values are usage errors that leave the image alone.
#[test]
fn migrate_cli_profiles_and_bugs() {
    if !have_e2fsprogs("mig-cli") {
        return;
    }
    let dir = TempDir::new("mig-cli");
    let img = dir.path("a.img");
    mke2fs(
        &img,
        16 << 20,
        &["-t", "ext4", "-b", "1024", "-O", "^extent,^64bit"],
    );
    let frag: Vec<(u64, u64)> = (0..10).map(|i| (2048 * i, 1024)).collect();
    build(
        &img,
        &[Shape {
            path: "/f",
            pieces: frag,
            size: None,
        }],
    );
    tune2fs_extent(&img);
    let p = img.to_str().unwrap();
    for (args, msg) in [
        (
            vec!["--profile", "nope"],
            "e4fuzz: invalid argument: unknown profile \"nope\"",
        ),
        (
            vec!["--bug", "S99"],
            "e4fuzz: invalid argument: unknown bug \"S99\"",
        ),
    ] {
        let out = e4fuzz(&[&["migrate", p, "/f"], &args[..]].concat());
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), msg);
    }
    assert!(!snap(&img, "/f").extents);
    let out = e4fuzz(&["migrate", p, "/f", "--profile", "mainline", "--bug", "s7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, text) = e2fsck(&img);
    assert_eq!(st, 4, "{text}");
    assert!(
        text.contains("extent block passes checks, but checksum does not match extent"),
        "{text}"
    );
}
