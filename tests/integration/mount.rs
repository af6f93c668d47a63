//! Mounting images made by mke2fs: the engine must accept its defaults and read the files
//! debugfs wrote, and must refuse unsupported features with a typed error.

use crate::util::*;
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::{Error, Ino};

fn mount_ro(img: &std::path::Path) -> e4fuzz::Result<Fs> {
    Fs::open(img, MountOpts { read_only: true })
}

#[test]
fn mounts_mke2fs_defaults() {
    if !have_e2fsprogs("mounts_mke2fs_defaults") {
        return;
    }
    let t = TempDir::new("mount");
    let cases: &[(&str, u64, &[&str])] = &[
        ("ext4-1k", 64 << 20, &["-t", "ext4", "-b", "1024"]),
        ("ext4-4k", 64 << 20, &["-t", "ext4", "-b", "4096"]),
        ("ext3", 32 << 20, &["-t", "ext3"]),
        (
            "noextent",
            32 << 20,
            &["-t", "ext4", "-O", "^extent,^64bit", "-b", "1024"],
        ),
        (
            "nocsum",
            32 << 20,
            &["-t", "ext4", "-O", "^metadata_csum,uninit_bg"],
        ),
    ];
    for (name, size, args) in cases {
        let img = t.path(name);
        mke2fs(&img, *size, args);
        let mut fs = mount_ro(&img).unwrap_or_else(|e| panic!("{name}: {e}"));
        let root = fs.iget(Ino(2)).unwrap().raw.clone();
        assert!(root.is_dir(), "{name}: root is a directory");
        assert_eq!(root.i_links_count, 3, "{name}: root links");
        assert!(fs.iget(Ino(11)).unwrap().raw.is_dir(), "{name}: lost+found");
    }
}

#[test]
fn refuses_unsupported_features() {
    if !have_e2fsprogs("refuses_unsupported_features") {
        return;
    }
    let t = TempDir::new("unsup");
    for (feat, want) in [
        ("inline_data", "inline_data"),
        ("bigalloc", "bigalloc"),
        ("meta_bg,^resize_inode", "meta_bg"),
    ] {
        let img = t.path(feat);
        mke2fs(&img, 64 << 20, &["-t", "ext4", "-O", feat]);
        match mount_ro(&img) {
            Err(Error::Unsupported(s)) => assert!(s.contains(want), "{feat}: {s}"),
            Err(e) => panic!("{feat}: expected Unsupported, got {e}"),
            Ok(_) => panic!("{feat}: mounted an unsupported image"),
        }
    }
}
