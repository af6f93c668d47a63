//! The FUSE server the real-kernel fault tests use (`faultyfuse.py`: one image file, served
//! with direct I/O, reads of a chosen range failing with EIO, a chosen write held back, a cache
//! flush failing and losing the writes it should have made durable, every write logged), and
//! the check that this host can run it.

use e4fuzz::oracle::kernel::{self, host};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Whether `test` cannot run here; if so, says why on stderr ("SKIP test: reason").
pub fn skipped(test: &str) -> bool {
    match unavailable() {
        Some(why) => {
            eprintln!("SKIP {test}: {why}");
            true
        }
        None => false,
    }
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

/// The FUSE server and its mount, undone on drop.
pub struct Served {
    child: Child,
    dir: PathBuf,
}

impl Served {
    pub fn start(image: &Path, dir: &Path, ctl: &Path) -> Result<Served, String> {
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
    pub fn stop(mut self) {
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
