//! The host side of the kernel oracle: a scratch directory, the e2fsck gate, and the loop mount.
//!
//! SAFETY rule of the machines this runs on: an image is loop-mounted only after `e2fsck -fn`
//! passed on it *after journal replay*. The rule is enforced by types: [`Mounted::new`] takes a
//! [`Vetted`], and the only way to get one is [`vet`], which replays a COPY of the image with
//! `e2fsck -fy -E journal_only` and requires `e2fsck -fn` on that copy to be clean. The original
//! (still needing recovery, if it did) is what gets mounted: the kernel's own replay is the
//! thing under test.
//!
//! Cleanup is Drop-style, panics included: [`Mounted`] unmounts (lazily if it must) and
//! detaches its loop device; [`Scratch`] removes its directory, unless something is still
//! mounted under it (it then leaves the directory rather than recurse into a mount).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a failed `mount` starts its `Err` (callers tell it from the other skip reasons).
pub const MOUNT_REFUSED: &str = "the kernel refused to mount";

/// A private directory under `std::env::temp_dir()`, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new empty directory `e4fuzz-kernel-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> Result<Scratch, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("e4fuzz-kernel-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !mounted_under(&self.0) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Whether anything is mounted at or under `dir` (from `/proc/self/mounts`).
fn mounted_under(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return true; // cannot tell: be safe, keep the directory
    };
    let dir = dir.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|m| {
            m == dir
                || m.strip_prefix(dir.as_ref())
                    .is_some_and(|r| r.starts_with('/'))
        })
}

/// Run `cmd args…`; `Err` if it cannot be started.
pub fn run(cmd: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(cmd)
        .args(args)
        .env("E2FSCK_CONFIG", "/dev/null")
        .env("TZ", "UTC")
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))
}

/// stdout then stderr of `out`, lossily decoded.
pub fn text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// The first problem lines of an e2fsck output (banners and the summary dropped), joined.
fn e2fsck_problems(out: &str) -> String {
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Pass ") && !l.starts_with("e2fsck "))
        .filter(|l| !(l.contains(" files (") && l.ends_with(" blocks")))
        .filter(|l| !l.contains("WARNING: Filesystem still has errors"))
        .take(3)
        .collect();
    lines.join("; ")
}

/// An image file that passed the gate of [`vet`]. Only [`vet`] makes one.
#[derive(Debug)]
pub struct Vetted(PathBuf);

impl Vetted {
    /// The image file.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The same bytes served at another path: a file that a userspace filesystem serves from
    /// this image (the fault-injecting FUSE server of the tests loads it when it starts).
    pub fn served_at(&self, path: &Path) -> Vetted {
        Vetted(path.to_path_buf())
    }

    /// Copy the vetted image byte for byte to `dest`: the copy is vetted too (no second e2fsck,
    /// for loops that mount fresh copies of one image).
    pub fn copy_to(&self, dest: &Path) -> Result<Vetted, String> {
        std::fs::copy(&self.0, dest).map_err(|e| format!("copying to {}: {e}", dest.display()))?;
        Ok(Vetted(dest.to_path_buf()))
    }
}

/// The SAFETY gate: copy `image` to `scratch`, replay the copy's journal, and require
/// `e2fsck -fn` on the copy to be clean. `Err` is a reason to refuse the mount (not a
/// finding). The copy is deleted; `image` is untouched.
///
/// The replay is `debugfs -w -R journal_run` (e2fsprogs' recovery code, the same as e2fsck's),
/// not `e2fsck -fy -E journal_only`: e2fsck 1.47.0 restarts after replaying a journal and then
/// runs the full check with `-y`, repairing the copy, so `e2fsck -fn` after it would judge the
/// repaired image and the gate would pass almost anything. The replay must leave
/// `needs_recovery` cleared.
pub fn vet(image: &Path, scratch: &Scratch) -> Result<Vetted, String> {
    let copy = scratch.path("vet-copy.img");
    std::fs::copy(image, &copy).map_err(|e| format!("copying {}: {e}", image.display()))?;
    let verdict = vet_copy(&copy).map(|()| Vetted(image.to_path_buf()));
    let _ = std::fs::remove_file(&copy);
    verdict
}

fn vet_copy(copy: &Path) -> Result<(), String> {
    let c = copy.to_string_lossy().into_owned();
    if needs_recovery(copy)? {
        let out = run("debugfs", &["-w", "-R", "journal_run", &c])?;
        if needs_recovery(copy)? {
            let err = text(&out);
            let err: Vec<&str> = err.lines().filter(|l| !l.starts_with("debugfs ")).collect();
            return Err(format!("the journal replay failed: {}", err.join("; ")));
        }
    }
    let fsck = run("e2fsck", &["-fn", &c])?;
    match fsck.status.code() {
        Some(0) => Ok(()),
        st => Err(format!(
            "e2fsck -fn is not clean after replay (status {}): {}",
            st.unwrap_or(-1),
            e2fsck_problems(&text(&fsck))
        )),
    }
}

/// Whether the superblock of the image file at `path` has `needs_recovery` (0x60
/// `s_feature_incompat` & `EXT4_FEATURE_INCOMPAT_RECOVER`).
pub fn needs_recovery(path: &Path) -> Result<bool, String> {
    use std::io::Read;
    let mut sb = [0u8; 1024];
    std::fs::File::open(path)
        .and_then(|mut f| {
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(1024))?;
            f.read_exact(&mut sb)
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let magic = crate::bytes::read_u16le(&sb, 0x38);
    if magic != crate::format::superblock::EXT4_SUPER_MAGIC {
        return Err(format!("{}: not an ext4 image", path.display()));
    }
    let incompat = crate::bytes::read_u32le(&sb, 0x60);
    Ok(incompat & crate::format::superblock::EXT4_FEATURE_INCOMPAT_RECOVER != 0)
}

/// A loop device attached to a vetted image and mounted; undone on drop.
pub struct Mounted {
    dir: PathBuf,
    loopdev: String,
    mounted: bool,
}

impl Mounted {
    /// `losetup --find --show IMG`, then `mount -t ext4 [-o ro] LOOP DIR` (DIR is created).
    pub fn new(img: &Vetted, dir: &Path, read_only: bool) -> Result<Mounted, String> {
        Mounted::with_options(img, dir, if read_only { "ro" } else { "rw" })
    }

    /// [`Mounted::new`] with the mount options `opts` (`-o opts`).
    pub fn with_options(img: &Vetted, dir: &Path, opts: &str) -> Result<Mounted, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = run("losetup", &["--find", "--show", &img.0.to_string_lossy()])?;
        if !out.status.success() {
            return Err(format!("losetup: {}", text(&out).trim()));
        }
        let mut m = Mounted {
            dir: dir.to_path_buf(),
            loopdev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            mounted: false,
        };
        let d = dir.to_string_lossy();
        let out = run("mount", &["-t", "ext4", "-o", opts, &m.loopdev, &d])?;
        if !out.status.success() {
            // m's Drop detaches the loop device.
            return Err(format!("{MOUNT_REFUSED}: {}", text(&out).trim()));
        }
        m.mounted = true;
        Ok(m)
    }

    /// The host path of `p` (a path inside the filesystem).
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p.trim_start_matches('/'))
    }

    /// The mount point.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Unmount now (the kernel writes everything back); the guard then only detaches.
    ///
    /// "Target is busy" is retried for a while: a process forked by another thread of this
    /// process holds copies of our (close-on-exec) descriptors until it execs.
    pub fn umount(mut self) -> Result<(), String> {
        let d = self.dir.to_string_lossy().into_owned();
        let mut tries = 0;
        loop {
            let out = run("umount", &[&d])?;
            if out.status.success() {
                self.mounted = false;
                return Ok(());
            }
            tries += 1;
            if tries == UMOUNT_TRIES {
                return Err(format!("umount: {}", text(&out).trim()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// How many times [`Mounted::umount`] tries.
const UMOUNT_TRIES: u32 = 25;

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let d = self.dir.to_string_lossy().into_owned();
            let ok = (0..3).any(|_| run("umount", &[&d]).is_ok_and(|o| o.status.success()));
            if !ok {
                let _ = run("umount", &["-l", &d]);
            }
        }
        let _ = run("losetup", &["-d", &self.loopdev]);
    }
}

/// Whether this process runs as root (effective uid 0, from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2fsck_problem_lines_drop_banners_and_summary() {
        let out = "e2fsck 1.47.0 (5-Feb-2023)\nPass 1: Checking inodes\n\
                   Inode 12 has a bad extent\nFix? no\n\n\
                   a.img: 12/4096 files (0.0% non-contiguous), 2071/16384 blocks\n";
        assert_eq!(e2fsck_problems(out), "Inode 12 has a bad extent; Fix? no");
    }

    #[test]
    fn scratch_dirs_are_unique_and_removed() {
        let (a, b) = (Scratch::new("t").unwrap(), Scratch::new("t").unwrap());
        assert_ne!(a.0, b.0);
        std::fs::write(a.path("x"), b"1").unwrap();
        let p = a.0.clone();
        drop(a);
        assert!(!p.exists());
    }

    #[test]
    fn vet_refuses_an_image_e2fsck_rejects() {
        if Command::new("e2fsck").arg("-V").output().is_err() {
            eprintln!("SKIP vet_refuses_an_image_e2fsck_rejects: no e2fsck");
            return;
        }
        use crate::fs::{mkfs, Fs, MountOpts};
        let s = Scratch::new("vet").unwrap();
        let img = s.path("junk.img");
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        let e = vet(&img, &s).unwrap_err();
        assert!(e.ends_with("vet-copy.img: not an ext4 image"), "{e}");
        assert!(!s.path("vet-copy.img").exists());
        // A fresh image passes; with the root's i_links_count changed it does not.
        let opts = mkfs::MkfsOpts {
            size_bytes: 4 << 20,
            ..Default::default()
        };
        let mut dev = mkfs::mkfs(&opts).unwrap();
        dev.save(&img).unwrap();
        assert_eq!(vet(&img, &s).unwrap().path(), img.as_path());
        let fs = Fs::mount(dev.clone(), MountOpts { read_only: true }).unwrap();
        let (blk, off) = fs.inode_location(crate::Ino(2)).unwrap();
        let mut data = dev.peek_block(blk).to_vec();
        data[off + 0x1A] = 9;
        dev.write(blk, &data).unwrap();
        dev.save(&img).unwrap();
        let e = vet(&img, &s).unwrap_err();
        assert!(
            e.starts_with("e2fsck -fn is not clean after replay (status ")
                && e.contains("Inode 2 passes checks, but checksum does not match inode."),
            "{e}"
        );
    }
}
