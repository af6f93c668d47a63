//! The kernel as referee, where loop mounts work (root, `/dev/loop-control`, a probe mount
//! succeeds; else the tests skip with a message).
//!
//! Files of every shape are written by the KERNEL (`dd` at offsets, so holes at every level)
//! on a fresh `mke2fs -O ^extent,^64bit` image; `e2fsck -fn` must be clean (an image that
//! fails it is never mounted); `tune2fs -O extent`; the image is copied twice: copy A is
//! mounted and every file gets `chattr +e`, copy B gets `e4fuzz migrate` per file. Then the
//! leaf extents of `debugfs ex`, the file bytes and the free block/inode counts must be equal,
//! and both copies pass e2fsck. The same for `chattr -e` against `--to indirect`.
//!
//! SAFETY: every mount goes through [`Mounted`], the library's guard
//! (`e4fuzz::oracle::kernel::Mounted`): only an image that passed its gate is mounted, and its
//! `Drop` unmounts and detaches the loop device in all cases (panics included).

use super::{debugfs_ex, snap};
use crate::util::*;
use e4fuzz::oracle::kernel::{self, host};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device attached to an image and mounted: the library's guard
/// ([`e4fuzz::oracle::kernel::Mounted`]), whose `Drop` unmounts and detaches.
pub(crate) struct Mounted(kernel::Mounted);

impl Mounted {
    /// Mount `img` read-write at `dir`. The image must pass the library's gate (`e2fsck -fn`
    /// clean after journal replay); a refusal panics.
    pub(crate) fn new(img: &Path, dir: &Path) -> Option<Mounted> {
        let scratch = kernel::Scratch::new("it-mount").ok()?;
        let vetted = host::vet(img, &scratch)
            .unwrap_or_else(|why| panic!("refusing to mount {}: {why}", img.display()));
        Mounted::vetted(&vetted, dir)
    }

    /// Mount an image that passed the gate (the benchmark's loop mounts fresh byte copies of
    /// one vetted image, and must not time e2fsck).
    fn vetted(img: &host::Vetted, dir: &Path) -> Option<Mounted> {
        kernel::Mounted::new(img, dir, false).ok().map(Mounted)
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.0.path(p)
    }

    /// Unmount now (sync first); the guard then only detaches.
    pub(crate) fn umount(self) {
        sh("sync", &[]);
        if let Err(e) = self.0.umount() {
            panic!("{e}");
        }
    }
}

fn sh(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).output().unwrap()
}

/// Whether loop mounts work here (`e4fuzz::oracle::kernel::available`); prints the skip
/// reason when not.
pub(crate) fn loop_mounts_work(test: &str, _dir: &Path) -> bool {
    if !have_e2fsprogs(test) {
        return false;
    }
    match kernel::available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

/// `(path, [(first block, blocks)])` written by the kernel with dd (1 KiB blocks).
fn kernel_shapes() -> Vec<(&'static str, Vec<(u64, u64)>)> {
    let n = 256;
    let tind = 12 + n + n * n;
    vec![
        ("/one", vec![(0, 1)]),
        ("/direct12", vec![(0, 12)]),
        (
            "/holes",
            vec![
                (1, 2),
                (5, 1),
                (14, 3),
                (12 + n - 2, 4),
                (12 + n + 2 * n + 3, 2),
            ],
        ),
        ("/indonly", vec![(20, 30)]),
        ("/dind", vec![(0, 1), (12 + n + 5, 3), (12 + n + 3 * n, 1)]),
        (
            "/tind",
            vec![(3, 1), (tind + 7, 2), (tind + n * n + n + 1, 1)],
        ),
        ("/frag", (0..40).map(|i| (2 * i, 1)).collect()),
        ("/big", vec![(0, 1000)]),
    ]
}

fn dd(target: &Path, first: u64, count: u64, src: &Path) {
    let out = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", target.display()))
        .args(["bs=1024", "conv=notrunc"])
        .arg(format!("seek={first}"))
        .arg(format!("count={count}"))
        .arg(format!("skip={}", first % 64))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// "Free blocks" and "Free inodes" of `dumpe2fs -h`.
fn free_counts(img: &Path) -> (u64, u64) {
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().parse::<u64>().unwrap()
    };
    (field("Free blocks:"), field("Free inodes:"))
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

#[test]
fn kernel_chattr_e_agrees_with_e4fuzz_migrate() {
    let dir = TempDir::new("kref");
    if !loop_mounts_work("kernel_chattr_e_agrees_with_e4fuzz_migrate", &dir.0) {
        return;
    }
    let src = dir.path("pattern");
    let pattern: Vec<u8> = (0..2048 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(&src, &pattern).unwrap();
    let base = dir.path("base.img");
    mke2fs(
        &base,
        32 << 20,
        &["-t", "ext4", "-b", "1024", "-O", "^extent,^64bit"],
    );
    let shapes = kernel_shapes();
    {
        let m = Mounted::new(&base, &dir.path("mb")).expect("mount base");
        for (p, pieces) in &shapes {
            std::fs::File::create(m.path(p)).unwrap();
            for &(first, count) in pieces {
                dd(&m.path(p), first, count, &src);
            }
        }
        m.umount();
    }
    assert_e2fsck_clean(&base);
    assert!(sh("tune2fs", &["-O", "extent", base.to_str().unwrap()])
        .status
        .success());
    let (a, b) = (dir.path("a.img"), dir.path("b.img"));
    copy(&base, &a);
    copy(&base, &b);
    let before: Vec<_> = shapes.iter().map(|(p, _)| snap(&base, p)).collect();
    {
        let m = Mounted::new(&a, &dir.path("ma")).expect("mount copy A");
        for (p, _) in &shapes {
            let out = sh("chattr", &["+e", m.path(p).to_str().unwrap()]);
            assert!(
                out.status.success(),
                "chattr +e {p}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        m.umount();
    }
    for (p, _) in &shapes {
        let out = e4fuzz(&["migrate", b.to_str().unwrap(), p]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_e2fsck_clean(&a);
    assert_e2fsck_clean(&b);
    for ((p, _), old) in shapes.iter().zip(&before) {
        let ex_a = debugfs_ex(&a, p);
        assert!(
            !ex_a.is_empty(),
            "{p}: the kernel's tree has extents; debugfs stat:\n{}",
            debugfs(&a, false, &[&format!("stat {p}")])
        );
        assert_eq!(
            ex_a,
            debugfs_ex(&b, p),
            "{p}: leaf extents, kernel vs e4fuzz"
        );
        let (sa, sb) = (snap(&a, p), snap(&b, p));
        assert!(sa.extents && sb.extents, "{p}");
        assert_eq!(
            sa.map.runs, old.map.runs,
            "{p}: the kernel kept the mapping"
        );
        assert_eq!(sb.map.runs, old.map.runs, "{p}: e4fuzz kept the mapping");
        assert_eq!(debugfs_cat(&a, p), debugfs_cat(&b, p), "{p}: bytes");
    }
    assert_eq!(free_counts(&a), free_counts(&b), "free blocks / inodes");
}

#[test]
fn kernel_chattr_minus_e_agrees_with_to_indirect() {
    let dir = TempDir::new("krefi");
    if !loop_mounts_work("kernel_chattr_minus_e_agrees_with_to_indirect", &dir.0) {
        return;
    }
    let src = dir.path("pattern");
    std::fs::write(
        &src,
        (0..64 * 1024u32)
            .map(|i| (i * 7 + 1) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let base = dir.path("base.img");
    mke2fs(&base, 16 << 20, &["-t", "ext4", "-b", "1024"]);
    let files: [(&str, u64, u64); 4] = [
        ("/s0", 0, 5),
        ("/s2", 2, 3),
        ("/s9", 9, 3),
        ("/full", 0, 12),
    ];
    {
        let m = Mounted::new(&base, &dir.path("mb")).expect("mount base");
        for (p, first, count) in files {
            std::fs::File::create(m.path(p)).unwrap();
            dd(&m.path(p), first, count, &src);
        }
        m.umount();
    }
    let (a, b) = (dir.path("a.img"), dir.path("b.img"));
    copy(&base, &a);
    copy(&base, &b);
    {
        let m = Mounted::new(&a, &dir.path("ma")).expect("mount copy A");
        for (p, ..) in files {
            let out = sh("chattr", &["-e", m.path(p).to_str().unwrap()]);
            assert!(
                out.status.success(),
                "chattr -e {p}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        m.umount();
    }
    for (p, ..) in files {
        let out = e4fuzz(&["migrate", b.to_str().unwrap(), p, "--to", "indirect"]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_e2fsck_clean(&a);
    assert_e2fsck_clean(&b);
    for (p, ..) in files {
        let (sa, sb) = (snap(&a, p), snap(&b, p));
        assert!(!sa.extents && !sb.extents, "{p}");
        assert_eq!(sa.map.runs, sb.map.runs, "{p}: block map, kernel vs e4fuzz");
        assert_eq!(debugfs_cat(&a, p), debugfs_cat(&b, p), "{p}: bytes");
    }
    assert_eq!(free_counts(&a), free_counts(&b));
}

/// U5: `chattr -e` of an extent file whose one extent is in the direct range but whose
/// `i_size` is one block past the largest indirect-mapped file. The kernel converts it and
/// e2fsck then resets `i_size`; the engine with `mainline`'s switches (U5) gives the same map
/// and the same e2fsck complaint; `fixed` refuses and leaves the image clean.
#[test]
fn kernel_chattr_minus_e_ignores_i_size_as_u5_does() {
    let dir = TempDir::new("kref5");
    if !loop_mounts_work("kernel_chattr_minus_e_ignores_i_size_as_u5_does", &dir.0) {
        return;
    }
    let src = dir.path("pattern");
    std::fs::write(&src, vec![0x5Au8; 64 * 1024]).unwrap(); // dd skips to the same offset
    let base = dir.path("base.img");
    mke2fs(&base, 16 << 20, &["-t", "ext4", "-b", "1024"]);
    // mke2fs -t ext4 sets huge_file: the limit is the triple-indirect tree's reach.
    let max = e4fuzz::fs::map::indirect::max_bitmap_blocks(1024, true) * 1024;
    let size = max + 1024;
    {
        let m = Mounted::new(&base, &dir.path("mb")).expect("mount base");
        std::fs::File::create(m.path("/f")).unwrap();
        dd(&m.path("/f"), 2, 1, &src);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("/f"))
            .unwrap();
        f.set_len(size).unwrap();
        drop(f);
        m.umount();
    }
    let (a, b, c) = (dir.path("a.img"), dir.path("b.img"), dir.path("c.img"));
    for img in [&a, &b, &c] {
        copy(&base, img);
    }
    {
        let m = Mounted::new(&a, &dir.path("ma")).expect("mount copy A");
        let out = sh("chattr", &["-e", m.path("/f").to_str().unwrap()]);
        assert!(
            out.status.success(),
            "the kernel converts it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        m.umount();
    }
    let b_s = b.to_str().unwrap();
    let out = e4fuzz(&[
        "migrate",
        b_s,
        "/f",
        "--to",
        "indirect",
        "--profile",
        "mainline",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let complaint = format!("Inode 12, i_size is {size}, should be 3072");
    for img in [&a, &b] {
        let (status, text) = e2fsck(img);
        assert_eq!(status, 4, "{}: {text}", img.display());
        assert!(text.contains(&complaint), "{}: {text}", img.display());
    }
    let (sa, sb) = (snap(&a, "/f"), snap(&b, "/f"));
    assert!(!sa.extents && !sb.extents);
    assert_eq!(sa.map.runs, sb.map.runs, "block map, kernel vs e4fuzz");
    let c_s = c.to_str().unwrap();
    let out = e4fuzz(&["migrate", c_s, "/f", "--to", "indirect"]);
    assert_eq!(out.status.code(), Some(2), "fixed refuses: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("operation not supported"));
    assert_e2fsck_clean(&c);
    assert!(snap(&c, "/f").extents);
}

/// Throughput: migrations per second of a 1,000-block fragmented file (500 runs of 2 blocks),
/// e4fuzz in process (clone the frozen image, mount, migrate, unmount) against the kernel's
/// cycle (cp, losetup + mount, chattr +e, umount). Run with
/// `cargo test --release --test integration bench_migrate -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn bench_migrate_fragmented_1000() {
    use e4fuzz::fs::{Fs, MountOpts};
    use e4fuzz::ops::{migrate::ioctl_migrate, run_single};
    use std::time::Instant;
    let dir = TempDir::new("kbench");
    if !have_e2fsprogs("bench") {
        return;
    }
    let base = dir.path("base.img");
    mke2fs(
        &base,
        32 << 20,
        &["-t", "ext4", "-b", "1024", "-O", "^extent,^64bit"],
    );
    let pieces: Vec<(u64, u64)> = (0..500).map(|i| (3 * i * 1024, 2 * 1024)).collect();
    super::build(
        &base,
        &[super::Shape {
            path: "/f",
            pieces,
            size: None,
        }],
    );
    assert!(sh("tune2fs", &["-O", "extent", base.to_str().unwrap()])
        .status
        .success());
    assert_e2fsck_clean(&base);
    let mut dev = Fs::load_image(&base).unwrap();
    dev.freeze();
    let n = 200;
    let t = Instant::now();
    let mut op = std::time::Duration::ZERO;
    for _ in 0..n {
        let mut fs = Fs::mount(dev.clone(), MountOpts::default()).unwrap();
        let ino = fs.resolve("/f").unwrap();
        let t_op = Instant::now();
        let (fs, r) = run_single(fs, "migrate", |cx| async move {
            ioctl_migrate(&cx, ino, 3).await
        });
        op += t_op.elapsed();
        assert_eq!(r, Ok(0));
        fs.unmount().unwrap();
    }
    let ours = n as f64 / t.elapsed().as_secs_f64();
    eprintln!("e4fuzz: {n} migrations (mount + migrate + unmount) at {ours:.0}/s");
    let alone = n as f64 / op.as_secs_f64();
    eprintln!("e4fuzz: the migrate op alone at {alone:.0}/s");
    if !loop_mounts_work("bench (kernel part)", &dir.0) {
        return;
    }
    let k = 10;
    let scratch = kernel::Scratch::new("bench").unwrap();
    let base_ok = host::vet(&base, &scratch).unwrap();
    let t = Instant::now();
    for _ in 0..k {
        let a = base_ok.copy_to(&dir.path("a.img")).unwrap();
        let m = Mounted::vetted(&a, &dir.path("ma")).expect("mount");
        assert!(sh("chattr", &["+e", m.path("/f").to_str().unwrap()])
            .status
            .success());
        m.umount();
    }
    let kernel = k as f64 / t.elapsed().as_secs_f64();
    eprintln!("kernel: {k} cycles (cp + mount + chattr +e + umount) at {kernel:.1}/s");
    eprintln!("ratio: {:.0}x", ours / kernel);
}
