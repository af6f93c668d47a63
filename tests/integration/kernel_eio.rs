//! The engine against the real kernel on a read error: a loop device over a file that a small
//! FUSE server (`faultyfuse.py`, raw protocol, direct I/O) serves, failing reads of one chosen
//! block with EIO — a one-block read fault without device-mapper.
//!
//! The case: a `nodelalloc` write allocates a block under the DIND, then a punch hole over the
//! IND and DIND ranges cannot read the IND block. The kernel's ext4_find_shared() ignores the
//! read error, ext4_free_branches() reports "Read failure" with ext4_error() and carries on:
//! the punch succeeds, the IND pointer is cleared with its subtree leaked, the DIND part is
//! punched, and the filesystem records errors. The engine must end in the same state (it once
//! stopped at the error instead, which left the new block mapped with its page dropped: a
//! stale-data finding the kernel does not have). A truncate into the IND range goes the same
//! way; a write that must map through the unreadable block fails with EIO and records nothing.
//!
//! Skips with a message without root, loop devices, /dev/fuse, python3 or fallocate(1).

use e4fuzz::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen};
use e4fuzz::format::superblock::EXT4_ERROR_FS;
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::harness::template::template;
use e4fuzz::oracle::kernel::{self, host};
use e4fuzz::scenario::{FileSetup, Geometry};
use e4fuzz::{Ino, Pblk};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The write (lblk 504395, under the DIND) and the punch (lblk 326 up, IND and DIND ranges).
const WRITE_AT: u64 = 2_066_005_892;
const PUNCH: (u64, u64) = (1_335_296, 3_767_906_093);

fn geometry() -> Geometry {
    Geometry {
        block_size: 4096,
        size_bytes: 16 << 20,
        extents: true,
        metadata_csum: false,
        journal_blocks: 1024,
    }
}

/// f2, indirect: one block under the IND (lblk 985) and one under the DIND (lblk 1049610).
fn setup() -> Vec<FileSetup> {
    vec![FileSetup {
        file: 2,
        indirect: true,
        writes: vec![(4_034_560, 1, 74), (4_299_202_560, 1, 193)],
    }]
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if let Err(why) = kernel::available() {
        return Some(format!("kernel oracle unavailable: {why}"));
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    for (tool, arg) in [("python3", "--version"), ("fallocate", "--version")] {
        if host::run(tool, &[arg]).map_or(true, |o| !o.status.success()) {
            return Some(format!("no {tool}"));
        }
    }
    // A FUSE mount may still be refused (a container's policy): try one.
    let scratch = host::Scratch::new("fuse-probe").ok()?;
    let img = scratch.path("probe.img");
    std::fs::write(&img, [0u8; 4096]).ok()?;
    match Served::start(&img, &scratch.path("fuse"), &scratch.path("ctl")) {
        Ok(served) => {
            served.stop();
            None
        }
        Err(why) => Some(why),
    }
}

/// What the comparison looks at: f2's mapping, its `i_blocks`, whether errors are recorded,
/// and e2fsck's complaints about the bitmaps.
#[derive(Debug, PartialEq)]
struct Outcome {
    map: Vec<(u32, u64, u32)>,
    i_blocks: u64,
    errors: bool,
    bitmap_differences: Vec<String>,
}

fn outcome(img: &Path) -> Outcome {
    let mut fs = Fs::open(img, MountOpts { read_only: true }).expect("the image opens");
    let ino = fs.resolve("/f2").expect("f2");
    let map = fs.peek_map(ino).expect("f2's map walks");
    let fsck = host::run("e2fsck", &["-fn", &img.to_string_lossy()]).expect("e2fsck");
    Outcome {
        map,
        i_blocks: fs.inode_blocks(ino),
        errors: fs.sb.s_state & EXT4_ERROR_FS != 0,
        bitmap_differences: host::text(&fsck)
            .lines()
            .filter(|l| l.contains("bitmap differences"))
            .map(|l| l.trim().to_string())
            .collect(),
    }
}

/// Make every read of `blk` fail (`Some`), or none (`None`).
fn fail_reads(fs: &mut Fs, blk: Option<Pblk>) {
    fs.dev.set_fault_plan(FaultPlan {
        rules: blk
            .map(|b| FaultRule::new(FaultOp::Read, FaultWhen::Block(b)).sticky())
            .into_iter()
            .collect(),
        crash_at_write: None,
    });
}

/// Run `op` on f2 of `before` on the engine (it sets its own faults), then unmount: the
/// image file.
fn on_engine(
    before: &e4fuzz::dev::Disk,
    scratch: &host::Scratch,
    op: impl FnOnce(&mut Fs, Ino),
) -> PathBuf {
    let mut fs = Fs::mount(before.clone(), MountOpts::default()).expect("mount");
    let ino = fs.resolve("/f2").expect("f2");
    op(&mut fs, ino);
    fail_reads(&mut fs, None);
    let path = scratch.path("ours.img");
    fs.unmount().expect("unmount").save(&path).unwrap();
    path
}

/// The FUSE server and its mount, undone on drop.
struct Served {
    child: Child,
    dir: PathBuf,
}

impl Served {
    fn start(image: &Path, dir: &Path, ctl: &Path) -> Result<Served, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integration/faultyfuse.py"
        );
        let child = Command::new("python3")
            .args([script, &image.to_string_lossy(), &dir.to_string_lossy()])
            .arg(ctl)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut served = Served {
            child,
            dir: dir.to_path_buf(),
        };
        for _ in 0..100 {
            if dir.join("img").exists() {
                return Ok(served);
            }
            if let Ok(Some(_)) = served.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = served.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("the FUSE server exited: {}", err.trim()));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err("the FUSE server did not come up".into())
    }

    /// Unmount; the server writes the image back and exits. The loop device lets go of the
    /// file a moment after its detach, so a busy unmount is retried; a server that does not
    /// exit within 10 s is killed (the image is then not written back, and the comparison
    /// fails rather than the test hanging).
    fn stop(mut self) {
        let d = self.dir.to_string_lossy().into_owned();
        let pause = || std::thread::sleep(std::time::Duration::from_millis(20));
        let unmounted = (0..100).any(|_| {
            let ok = host::run("umount", &[&d]).is_ok_and(|o| o.status.success());
            if !ok {
                pause();
            }
            ok
        });
        if !unmounted {
            let _ = host::run("umount", &["-l", &d]);
        }
        for _ in 0..500 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            pause();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let d = self.dir.to_string_lossy().into_owned();
        if host::run("umount", &[&d]).is_ok_and(|o| !o.status.success()) {
            let _ = host::run("umount", &["-l", &d]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The template, f2's IND block, and a scratch directory.
fn prepare() -> (e4fuzz::dev::Disk, Pblk, host::Scratch) {
    let before = template(&geometry(), &setup()).expect("template");
    let ind = {
        let mut fs = Fs::mount(before.clone(), MountOpts { read_only: true }).unwrap();
        let ino: Ino = fs.resolve("/f2").unwrap();
        Pblk(u64::from(fs.inode(ino).raw.i_block[12]))
    };
    (before, ind, host::Scratch::new("eio").unwrap())
}

/// Run `ops` on the real kernel: `before` (vetted) served by faultyfuse.py, loop-mounted
/// `nodelalloc`; `ops` gets f2's host path and a function that makes reads of `ind` fail
/// (true) or succeed (false). Returns the image file after the unmount.
fn on_kernel(
    before: &e4fuzz::dev::Disk,
    ind: Pblk,
    scratch: &host::Scratch,
    ops: impl FnOnce(&Path, &dyn Fn(bool)),
) -> PathBuf {
    let image = scratch.path("kernel.img");
    before.save(&image).unwrap();
    let vetted = host::vet(&image, scratch).expect("the template passes e2fsck");
    let ctl = scratch.path("fail-range");
    let served = Served::start(vetted.path(), &scratch.path("fuse"), &ctl).expect("FUSE");
    {
        let at = vetted.served_at(&scratch.path("fuse").join("img"));
        let m = host::Mounted::with_options(&at, &scratch.path("mnt"), "nodelalloc,data=ordered")
            .expect("mount");
        let fail = |on: bool| match on {
            true => {
                std::fs::write(&ctl, format!("{} {}", ind.0 * 4096, (ind.0 + 1) * 4096)).unwrap()
            }
            false => std::fs::remove_file(&ctl).unwrap(),
        };
        ops(&m.path("/f2"), &fail);
        m.umount().expect("umount");
    }
    served.stop();
    image
}

#[test]
fn kernel_agrees_on_a_punch_that_cannot_read_an_indirect_block() {
    if let Some(why) = unavailable() {
        eprintln!("SKIP kernel_agrees_on_a_punch_that_cannot_read_an_indirect_block: {why}");
        return;
    }
    let (before, ind, scratch) = prepare();
    let ours_img = on_engine(&before, &scratch, |fs, ino| {
        fs.write_file(ino, WRITE_AT, &[0xab]).expect("write");
        fail_reads(fs, Some(ind));
        fs.punch_hole(ino, PUNCH.0, PUNCH.1)
            .expect("the punch succeeds, as the kernel's does");
    });
    let image = on_kernel(&before, ind, &scratch, |f2, fail| {
        let f = std::fs::OpenOptions::new().write(true).open(f2).unwrap();
        std::os::unix::fs::FileExt::write_at(&f, &[0xab], WRITE_AT).unwrap();
        drop(f);
        fail(true);
        let (off, len) = (PUNCH.0.to_string(), PUNCH.1.to_string());
        let punch = host::run(
            "fallocate",
            &["-p", "-o", &off, "-l", &len, &f2.to_string_lossy()],
        )
        .unwrap();
        fail(false);
        assert!(
            punch.status.success(),
            "the kernel's punch fails: {}",
            host::text(&punch)
        );
        let f = std::fs::File::open(f2).unwrap();
        let mut byte = [0xffu8];
        std::os::unix::fs::FileExt::read_at(&f, &mut byte, WRITE_AT).unwrap();
        assert_eq!(byte, [0], "the written byte was punched");
    });
    let kernel = outcome(&image);
    assert!(
        kernel.errors,
        "the kernel records the read failure: {kernel:?}"
    );
    assert!(
        kernel
            .map
            .iter()
            .all(|&(l, _, n)| l + n <= 985 || l >= 1_049_610),
        "the kernel punched the range: {kernel:?}"
    );
    assert_eq!(outcome(&ours_img), kernel);
}

/// A write that must map through the unreadable IND block fails with EIO, and — unlike the
/// punch — nothing is recorded: ext4_get_branch() returns the error without ext4_error().
#[test]
fn kernel_agrees_that_a_write_through_an_unreadable_indirect_block_records_nothing() {
    let test = "kernel_agrees_that_a_write_through_an_unreadable_indirect_block_records_nothing";
    if let Some(why) = unavailable() {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let (before, ind, scratch) = prepare();
    let at = 986 * 4096; // lblk 986, under the IND block
    let ours_img = on_engine(&before, &scratch, |fs, ino| {
        fail_reads(fs, Some(ind));
        let err = fs.write_file(ino, at, &[0xab]).unwrap_err();
        assert!(matches!(err, e4fuzz::Error::Io(_)), "{err:?}");
    });
    let image = on_kernel(&before, ind, &scratch, |f2, fail| {
        let f = std::fs::OpenOptions::new().write(true).open(f2).unwrap();
        fail(true);
        let r = std::os::unix::fs::FileExt::write_at(&f, &[0xab], at);
        fail(false);
        let e = r.expect_err("the kernel's write fails");
        assert_eq!(e.raw_os_error(), Some(5), "EIO: {e}");
    });
    let kernel = outcome(&image);
    assert!(!kernel.errors, "the kernel records nothing: {kernel:?}");
    assert_eq!(outcome(&ours_img), kernel);
}

/// A truncate into the IND range whose IND block cannot be read: as the punch, the kernel's
/// ext4_ind_truncate() reports the read failure and carries on (the IND subtree leaks, the
/// DIND goes), and the truncate succeeds.
#[test]
fn kernel_agrees_on_a_truncate_that_cannot_read_an_indirect_block() {
    let test = "kernel_agrees_on_a_truncate_that_cannot_read_an_indirect_block";
    if let Some(why) = unavailable() {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let (before, ind, scratch) = prepare();
    let size = 326 * 4096;
    let ours_img = on_engine(&before, &scratch, |fs, ino| {
        fail_reads(fs, Some(ind));
        fs.truncate_file(ino, size)
            .expect("the truncate succeeds, as the kernel's does");
    });
    let image = on_kernel(&before, ind, &scratch, |f2, fail| {
        let f = std::fs::OpenOptions::new().write(true).open(f2).unwrap();
        fail(true);
        let r = f.set_len(size);
        fail(false);
        r.expect("the kernel's truncate succeeds");
    });
    let kernel = outcome(&image);
    assert!(
        kernel.errors,
        "the kernel records the read failure: {kernel:?}"
    );
    assert!(kernel.map.is_empty(), "{kernel:?}");
    assert_eq!(outcome(&ours_img), kernel);
}
