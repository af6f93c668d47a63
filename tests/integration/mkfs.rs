//! `e4fuzz mkfs` and `fs::mkfs::mkfs` against e2fsprogs 1.47: every image of the test matrix
//! is clean for `e2fsck -fn`, mounts in the engine, and `dumpe2fs` describes it exactly as it
//! describes the image the real mke2fs makes with the same features (group layout, free blocks
//! and inodes, journal placement), apart from what differs by design (UUID, times, checksums,
//! the uninit flags and hash seed mke2fs sets, the journal's csum v3); with the same UUID and
//! clock, root, lost+found and the journal inode are byte-identical.

use crate::util::*;
use e4fuzz::format::superblock::Superblock;
use e4fuzz::fs::mkfs::{self, MkfsOpts};
use e4fuzz::fs::mount::EPOCH;
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::Ino;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn opts(size: u64, bs: u32, extents: bool, csum: bool) -> MkfsOpts {
    MkfsOpts {
        size_bytes: size,
        block_size: bs,
        extents,
        metadata_csum: csum,
        ..MkfsOpts::default()
    }
}

/// The matrix of the brief: {1024, 2048, 4096} × extent × csum at 64 MiB, plus 4096 at 1 GiB.
fn matrix() -> Vec<MkfsOpts> {
    let mut all = Vec::new();
    for bs in [1024, 2048, 4096] {
        for (e, c) in [(true, true), (true, false), (false, true), (false, false)] {
            all.push(opts(64 << 20, bs, e, c));
        }
    }
    all.push(opts(1 << 30, 4096, true, true));
    all
}

fn name(o: &MkfsOpts) -> String {
    format!(
        "{}M-{}-{}-{}",
        o.size_bytes >> 20,
        o.block_size,
        if o.extents { "ext" } else { "ind" },
        if o.metadata_csum { "csum" } else { "nocsum" }
    )
}

/// Make `o` with our mkfs and save it at `path`.
fn make(o: &MkfsOpts, path: &Path) {
    mkfs::mkfs(o).unwrap().save(path).unwrap();
}

/// The same filesystem made by the real mke2fs, with our UUID and clock.
fn make_real(o: &MkfsOpts, path: &Path) {
    let mut features = "^64bit,^flex_bg,^resize_inode,^dir_index,^ext_attr".to_string();
    if !o.extents {
        features.push_str(",^extent");
    }
    if !o.metadata_csum {
        features.push_str(",^metadata_csum");
    }
    let bs = o.block_size.to_string();
    let uuid = o.uuid.map(|b| format!("{b:02x}")).concat();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &uuid[..8],
        &uuid[8..12],
        &uuid[12..16],
        &uuid[16..20],
        &uuid[20..]
    );
    std::fs::File::create(path)
        .unwrap()
        .set_len(o.size_bytes)
        .unwrap();
    let st = Command::new("mke2fs")
        .args([
            "-q", "-F", "-t", "ext4", "-I", "256", "-O", &features, "-b", &bs,
        ])
        .args(["-U", &uuid, "-E", "root_owner=0:0"])
        .arg(path)
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .env("E2FSPROGS_FAKE_TIME", EPOCH.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "mke2fs {}", name(o));
}

/// `len` bytes at `off` of an image file (images can be 1 GiB: never read whole).
fn read_at(path: &Path, off: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// The on-disk record of inode `ino` in an image file (no 64bit: 32-byte descriptors).
fn inode_record(path: &Path, ino: u32) -> Vec<u8> {
    let sb = Superblock::parse(&read_at(path, 1024, 1024)).unwrap();
    let bs = u64::from(sb.block_size());
    let g = u64::from((ino - 1) / sb.s_inodes_per_group);
    let desc = read_at(
        path,
        (u64::from(sb.s_first_data_block) + 1) * bs + 32 * g,
        32,
    );
    let table = u64::from(u32::from_le_bytes(desc[8..12].try_into().unwrap()));
    let at = table * bs + u64::from((ino - 1) % sb.s_inodes_per_group) * 256;
    read_at(path, at, 256)
}

/// Root, lost+found and the journal inode are byte-identical to mke2fs' (same UUID and time):
/// the inode records (so `i_block`, sizes and block counts) and every directory block.
fn same_files(ours: &Path, real: &Path, n: &str) {
    for ino in [2, 8, 11] {
        assert!(
            inode_record(ours, ino) == inode_record(real, ino),
            "{n}: inode {ino}"
        );
    }
    let bs = Superblock::parse(&read_at(ours, 1024, 1024))
        .unwrap()
        .block_size();
    for dir in ["<2>", "<11>"] {
        let list = debugfs(ours, false, &[&format!("blocks {dir}")]);
        let blocks = list.lines().filter(|l| !l.starts_with("debugfs:"));
        for blk in blocks.flat_map(str::split_whitespace) {
            let at = blk.parse::<u64>().unwrap() * u64::from(bs);
            let (x, y) = (
                read_at(ours, at, bs as usize),
                read_at(real, at, bs as usize),
            );
            assert!(x == y, "{n}: {dir} block {blk}");
        }
    }
}

fn dumpe2fs(path: &Path, header_only: bool) -> String {
    let mut c = Command::new("dumpe2fs");
    if header_only {
        c.arg("-h");
    }
    let out = c.arg(path).output().unwrap();
    assert!(out.status.success(), "dumpe2fs {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dumpe2fs -h` as key → value.
fn header(path: &Path) -> BTreeMap<String, String> {
    dumpe2fs(path, true)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `dumpe2fs` minus what differs by design between our image and mke2fs'.
fn comparable(path: &Path) -> String {
    const SKIP: [&str; 14] = [
        "UUID",
        "created",
        "time",
        "Last checked",
        "Checksum",
        "csum",
        "Lifetime",
        "Hash Seed",
        "hash",
        "Default mount",
        "Overhead",
        "Filesystem flags",
        "Journal checksum",
        "Journal features",
    ];
    dumpe2fs(path, false)
        .lines()
        .filter(|l| !SKIP.iter().any(|s| l.contains(s)))
        .map(|l| l.split(" [").next().unwrap_or(l).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn features(o: &MkfsOpts) -> String {
    let mut f = vec!["has_journal", "filetype"];
    if o.extents {
        f.push("extent");
    }
    f.extend([
        "sparse_super",
        "large_file",
        "huge_file",
        "dir_nlink",
        "extra_isize",
    ]);
    if o.metadata_csum {
        f.push("metadata_csum");
    }
    f.join(" ")
}

/// e2fsck clean, the engine mounts it, dumpe2fs -h agrees with the geometry, debugfs lists
/// the root.
fn check_image(o: &MkfsOpts, img: &Path) {
    let n = name(o);
    assert_e2fsck_clean(img);
    let geo = mkfs::geometry(o).unwrap();
    let mut fs =
        Fs::open(img, MountOpts { read_only: true }).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(
        (fs.sb.s_blocks_count, fs.sb.groups_count()),
        (geo.blocks_count, geo.groups)
    );
    let root = fs.iget(Ino(2)).unwrap().raw.clone();
    assert!(root.is_dir() && root.i_links_count == 3, "{n}: root");
    assert!(fs.iget(Ino(8)).unwrap().raw.is_reg(), "{n}: journal inode");
    let h = header(img);
    let want = [
        ("Block count", geo.blocks_count.to_string()),
        ("Inode count", geo.inodes_count.to_string()),
        ("Block size", geo.block_size.to_string()),
        ("Blocks per group", geo.blocks_per_group.to_string()),
        ("Inodes per group", geo.inodes_per_group.to_string()),
        ("Inode blocks per group", geo.itable_blocks.to_string()),
        ("Reserved block count", geo.r_blocks_count.to_string()),
        ("Free blocks", fs.sb.s_free_blocks_count.to_string()),
        ("Free inodes", (geo.inodes_count - 11).to_string()),
        ("Total journal blocks", geo.journal_blocks.to_string()),
        ("Filesystem features", features(o)),
        ("Filesystem state", "clean".to_string()),
        ("Inode size", "256".to_string()),
    ];
    for (key, value) in want {
        assert_eq!(h.get(key), Some(&value), "{n}: {key}");
    }
    let csum_v3 = if o.metadata_csum {
        "journal_checksum_v3"
    } else {
        "(none)"
    };
    assert_eq!(h["Journal features"], csum_v3, "{n}");
    let ls = debugfs(img, false, &["ls -l /"]);
    let names: Vec<&str> = ls
        .lines()
        .filter(|l| !l.starts_with("debugfs:"))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(names, [".", "..", "lost+found"], "{n}: {ls}");
}

#[test]
fn matrix_is_clean_mounts_and_matches_mke2fs() {
    if !have_e2fsprogs("matrix_is_clean_mounts_and_matches_mke2fs") {
        return;
    }
    let t = TempDir::new("mkfs-matrix");
    for o in matrix() {
        let (ours, real) = (t.path(&name(&o)), t.path(&format!("{}-real", name(&o))));
        make(&o, &ours);
        check_image(&o, &ours);
        make_real(&o, &real);
        assert_eq!(
            comparable(&ours),
            comparable(&real),
            "{}: dumpe2fs differs",
            name(&o)
        );
        same_files(&ours, &real, &name(&o));
        std::fs::remove_file(&real).unwrap();
    }
}

#[test]
fn corner_sizes_match_mke2fs() {
    if !have_e2fsprogs("corner_sizes_match_mke2fs") {
        return;
    }
    let t = TempDir::new("mkfs-corners");
    // One group at 4 KiB; a short last group kept (4095 blocks); a last group of 99 blocks
    // dropped; a size not a multiple of 4 KiB (rounded down like mke2fs).
    let cases = [
        (opts(8 << 20, 4096, true, true), 1),
        (opts(20 << 20, 1024, true, true), 3),
        (opts(20 << 20, 1024, false, false), 3),
        (opts(16484 << 10, 1024, true, true), 2),
        (opts(65537 << 10, 1024, false, true), 8),
    ];
    for (o, groups) in cases {
        let geo = mkfs::geometry(&o).unwrap();
        assert_eq!(geo.groups, groups, "{}", name(&o));
        let (ours, real) = (t.path("ours"), t.path("real"));
        make(&o, &ours);
        check_image(&o, &ours);
        make_real(&o, &real);
        assert_eq!(comparable(&ours), comparable(&real), "{}", name(&o));
        same_files(&ours, &real, &name(&o));
    }
    let short = mkfs::geometry(&opts(20 << 20, 1024, true, true)).unwrap();
    assert_eq!(short.blocks_in_group(2), 4095);
}

#[test]
fn journal_leaf_indirect_dind_and_low_inode_ratio_are_clean() {
    if !have_e2fsprogs("journal_leaf_indirect_dind_and_low_inode_ratio_are_clean") {
        return;
    }
    let t = TempDir::new("mkfs-odd");
    let mut big_journal = opts(80 << 20, 1024, true, true);
    big_journal.journal_blocks = Some(32000);
    let mut big_indirect = big_journal.clone();
    big_indirect.extents = false;
    let mut inodes = opts(64 << 20, 4096, true, true);
    inodes.inode_ratio = Some(1024);
    for o in [big_journal, big_indirect, inodes] {
        let img = t.path(&name(&o));
        make(&o, &img);
        check_image(&o, &img);
    }
}

#[test]
fn cli_writes_a_sparse_deterministic_image() {
    let t = TempDir::new("mkfs-cli");
    let (a, b) = (t.path("a.img"), t.path("b.img"));
    let out = e4fuzz(&["mkfs", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let want = format!(
        "{}: 65536 blocks of 1024 bytes, 8 groups, 16384 inodes, journal 4096 blocks\n",
        a.display()
    );
    assert_eq!(line, want);
    let out = e4fuzz(&["mkfs", b.to_str().unwrap(), "--size", "67108864"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(x.len(), 64 << 20);
    assert!(x == y, "two runs with the same options differ");
    use std::os::unix::fs::MetadataExt;
    let stored = std::fs::metadata(&a).unwrap().blocks() * 512;
    assert!(stored < 2 << 20, "{stored} bytes stored for a 64 MiB image");
    let out = e4fuzz(&[
        "mkfs",
        a.to_str().unwrap(),
        "--size",
        "1G",
        "--block-size",
        "4096",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 1 << 30);
    let cases = [
        (["--no-extent", "--no-csum"], (1024, false, false)),
        (["--block-size", "2048"], (2048, true, true)),
    ];
    for (flags, want) in cases {
        let out = e4fuzz(&[&["mkfs", b.to_str().unwrap()][..], &flags[..]].concat());
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {out:?}");
        let fs = Fs::open(&b, MountOpts { read_only: true }).unwrap();
        let got = (fs.block_size(), fs.has_extents(), fs.sb.metadata_csum());
        assert_eq!(got, want, "{flags:?}");
    }
}

#[test]
fn cli_refuses_bad_flags_with_exit_2_and_one_line() {
    let t = TempDir::new("mkfs-bad");
    let img = t.path("x.img");
    let p = img.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--block-size", "3000"],
            "block size 3000: must be 1024, 2048 or 4096",
        ),
        (
            &["--block-size", "4k"],
            "block size \"4k\": must be 1024, 2048 or 4096",
        ),
        (&["--size", "1M"], "1024 blocks are too few for a journal"),
        (
            &["--size", "1000000"],
            "size 1000000 is not a multiple of the block size 1024",
        ),
        (
            &["--size", "64Q"],
            "size \"64Q\": expected bytes with an optional K, M, G or T suffix",
        ),
        (
            &["--size", "4K", "--block-size", "4096"],
            "1 blocks of 4096 bytes are too few",
        ),
    ];
    for (args, msg) in cases {
        let out = e4fuzz(&[&["mkfs", p][..], args].concat());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("e4fuzz: invalid argument: ") && err.contains(msg),
            "{err}"
        );
        assert!(!img.exists(), "{args:?} left an image behind");
    }
}

#[test]
fn engine_writes_into_a_fresh_image() {
    if !have_e2fsprogs("engine_writes_into_a_fresh_image") {
        return;
    }
    let t = TempDir::new("mkfs-engine");
    for o in [
        opts(64 << 20, 1024, true, true),
        opts(64 << 20, 4096, false, false),
    ] {
        let img = t.path(&name(&o));
        let mut fs = Fs::mount(mkfs::mkfs(&o).unwrap(), MountOpts::default()).unwrap();
        let data: Vec<u8> = (0..200u32 << 10)
            .map(|i| (i * 7 + i / 1024) as u8)
            .collect();
        let ino = fs.create("/file", 0o644).unwrap();
        fs.write_file(ino, 0, &data).unwrap();
        fs.mkdir("/dir").unwrap();
        fs.unmount().unwrap().save(&img).unwrap();
        assert_e2fsck_clean(&img);
        assert!(
            debugfs_cat(&img, "/file") == data,
            "{}: /file differs",
            name(&o)
        );
    }
}
