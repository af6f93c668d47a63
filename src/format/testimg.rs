//! Test-only helpers: throw-away ext4 images made by e2fsprogs 1.47 (`mke2fs`, `debugfs`,
//! `e2fsck`), the ground truth of the format tests. Each image is a 16 MiB file with 1 KiB
//! blocks under `std::env::temp_dir()`, with a unique name, deleted on drop. When a tool is
//! missing, [`Img::mkfs`] prints why and returns `None`, and the test returns early.

use crate::bytes::{le32, read_u32le};
use crate::crc::crc32c_raw;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Block size of every test image.
pub(crate) const BS: u64 = 1024;

/// A throw-away image.
pub(crate) struct Img(pub(crate) PathBuf);

impl Img {
    /// `mke2fs -q -F -t ext4 -b 1024 [-O features]` on a fresh 16 MiB file.
    pub(crate) fn mkfs(tag: &str, features: Option<&str>) -> Option<Img> {
        for tool in ["mke2fs", "debugfs", "e2fsck"] {
            if Command::new(tool).arg("-V").output().is_err() {
                eprintln!("skipping: {tool} is not installed");
                return None;
            }
        }
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let name = format!("e4fuzz-fmtb-{tag}-{}-{serial}.img", std::process::id());
        let img = Img(std::env::temp_dir().join(name));
        std::fs::File::create(&img.0)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let mut args = vec!["-q", "-F", "-t", "ext4", "-b", "1024"];
        if let Some(f) = features {
            args.extend(["-O", f]);
        }
        assert!(img.run("mke2fs", &args).0, "mke2fs failed");
        Some(img)
    }

    /// Run `tool args… image`: (success, stdout).
    pub(crate) fn run(&self, tool: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(tool).args(args).arg(&self.0).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    }

    /// `debugfs -w -R cmd`.
    pub(crate) fn debugfs(&self, cmd: &str) -> String {
        self.run("debugfs", &["-w", "-R", cmd]).1
    }

    /// `debugfs -w -f script`, run in a scratch directory holding `files` (name, contents).
    pub(crate) fn debugfs_script(&self, script: &str, files: &[(&str, &[u8])]) {
        let dir = self.0.with_extension("d");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in files {
            std::fs::write(dir.join(name), data).unwrap();
        }
        std::fs::write(dir.join("cmds"), script).unwrap();
        let mut cmd = Command::new("debugfs");
        let out = cmd
            .current_dir(&dir)
            .args(["-w", "-f", "cmds"])
            .arg(&self.0)
            .output();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.unwrap().status.success(), "debugfs failed");
    }

    /// Whether `e2fsck -fn` finds nothing.
    pub(crate) fn fsck_clean(&self) -> bool {
        self.run("e2fsck", &["-fn"]).0
    }

    /// `len` bytes at byte offset `off`.
    pub(crate) fn bytes(&self, off: u64, len: usize) -> Vec<u8> {
        let all = std::fs::read(&self.0).unwrap();
        all[usize::try_from(off).unwrap()..][..len].to_vec()
    }

    /// Block `n`.
    pub(crate) fn block(&self, n: u64) -> Vec<u8> {
        self.bytes(n * BS, 1024)
    }

    /// Overwrite block `n`.
    pub(crate) fn write_block(&self, n: u64, data: &[u8]) {
        let mut all = std::fs::read(&self.0).unwrap();
        all[usize::try_from(n * BS).unwrap()..][..1024].copy_from_slice(data);
        std::fs::write(&self.0, all).unwrap();
    }

    /// The 256-byte inode record of `spec` (a path or `<ino>`), located with `imap`.
    pub(crate) fn inode(&self, spec: &str) -> Vec<u8> {
        let out = self.debugfs(&format!("imap {spec}"));
        let loc = out
            .lines()
            .find(|l| l.contains("located at block"))
            .unwrap();
        let words = loc.split([' ', ',', '\t']).filter(|s| !s.is_empty());
        let t: Vec<&str> = words.collect();
        let off = u64::from_str_radix(t[5].trim_start_matches("0x"), 16).unwrap();
        self.bytes(t[3].parse::<u64>().unwrap() * BS + off, 256)
    }

    /// Physical block of logical block `lblk` of `spec` (`bmap`).
    pub(crate) fn bmap(&self, spec: &str, lblk: u64) -> u64 {
        let out = self
            .run("debugfs", &["-R", &format!("bmap {spec} {lblk}")])
            .1;
        out.trim().parse().unwrap()
    }

    /// The filesystem UUID (`s_uuid`, superblock offset 0x68).
    pub(crate) fn uuid(&self) -> [u8; 16] {
        self.bytes(1024 + 0x68, 16).try_into().unwrap()
    }

    /// The metadata_csum seed of inode `ino`: `raw(raw(raw(!0, uuid), le32 ino), le32 gen)`,
    /// with `i_generation` read from the inode.
    pub(crate) fn inode_seed(&self, spec: &str, ino: u32) -> u32 {
        let generation = read_u32le(&self.inode(spec), 0x64);
        let fs_seed = crc32c_raw(!0, &self.uuid());
        crc32c_raw(crc32c_raw(fs_seed, &le32(ino)), &le32(generation))
    }
}

impl Drop for Img {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
