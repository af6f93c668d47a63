//! Shared helpers: temp dirs, the e4fuzz binary, e2fsprogs wrappers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "e4fuzz-it-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether e2fsprogs is installed; prints a skip message when it is not.
pub fn have_e2fsprogs(test: &str) -> bool {
    let ok = ["mke2fs", "e2fsck", "debugfs"]
        .iter()
        .all(|t| Command::new(t).arg("-V").output().is_ok());
    if !ok {
        eprintln!("SKIP {test}: e2fsprogs (mke2fs, e2fsck, debugfs) not installed");
    }
    ok
}

/// Run the e4fuzz binary.
pub fn e4fuzz(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e4fuzz"))
        .args(args)
        .output()
        .unwrap()
}

/// `e2fsck -fn image`: (exit status, output).
pub fn e2fsck(image: &Path) -> (i32, String) {
    let r = e4fuzz::oracle::e2fsck::check(image).unwrap();
    (r.status, r.output)
}

/// Assert that e2fsck finds the image clean.
#[track_caller]
pub fn assert_e2fsck_clean(image: &Path) {
    let (st, out) = e2fsck(image);
    assert_eq!(
        st,
        0,
        "e2fsck -fn is not clean on {}:\n{out}",
        image.display()
    );
}

/// `mke2fs -q -F <args> image` after creating a sparse file of `size` bytes.
pub fn mke2fs(image: &Path, size: u64, args: &[&str]) {
    let f = std::fs::File::create(image).unwrap();
    f.set_len(size).unwrap();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-E", "root_owner=0:0"])
        .args(args)
        .arg(image)
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .status()
        .unwrap();
    assert!(st.success(), "mke2fs {args:?} failed");
}

/// Run debugfs commands (`-w` when `write`) and return stdout.
pub fn debugfs(image: &Path, write: bool, cmds: &[&str]) -> String {
    let script = cmds.join("\n");
    let mut c = Command::new("debugfs");
    if write {
        c.arg("-w");
    }
    let out = c
        .arg("-f")
        .arg("-")
        .arg(image)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write;
            ch.stdin.take().unwrap().write_all(script.as_bytes())?;
            ch.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `debugfs -R "dump path out"`: the file's bytes as debugfs reads them.
pub fn debugfs_cat(image: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(image)
        .output()
        .unwrap();
    out.stdout
}
