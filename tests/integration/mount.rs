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

/// Files written by debugfs on mke2fs images (several option sets) read back byte-exact
/// through the engine, and our fsck finds the images clean.
#[test]
fn reads_files_debugfs_wrote() {
    if !have_e2fsprogs("reads_files_debugfs_wrote") {
        return;
    }
    let t = TempDir::new("dbgread");
    let sizes = [0usize, 1, 1023, 1024, 12 * 1024 + 5, 300_000, 2_000_000];
    let mut cmds = vec!["mkdir d".to_string()];
    for (i, n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*n)
            .map(|k| (k as u8).wrapping_mul(13).wrapping_add(i as u8))
            .collect();
        std::fs::write(t.path(&format!("h{i}")), &data).unwrap();
        cmds.push(format!(
            "write {} d/f{i}",
            t.path(&format!("h{i}")).display()
        ));
    }
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let cases: &[(&str, &[&str])] = &[
        ("ext4-1k", &["-t", "ext4", "-b", "1024"]),
        ("ext4-4k", &["-t", "ext4", "-b", "4096"]),
        ("ext3", &["-t", "ext3"]),
        (
            "noextent",
            &["-t", "ext4", "-O", "^extent,^64bit", "-b", "1024"],
        ),
    ];
    for (name, args) in cases {
        let img = t.path(name);
        mke2fs(&img, 64 << 20, args);
        debugfs(&img, true, &cmds);
        let mut fs = mount_ro(&img).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, _) in sizes.iter().enumerate() {
            let want = std::fs::read(t.path(&format!("h{i}"))).unwrap();
            let ino = fs
                .resolve(&format!("/d/f{i}"))
                .unwrap_or_else(|e| panic!("{name} f{i}: {e}"));
            let got = fs.read_file(ino, 0, want.len() as u64 + 10).unwrap();
            assert!(
                got == want,
                "{name}: /d/f{i} differs ({} vs {} bytes)",
                got.len(),
                want.len()
            );
        }
        let mut dev = Fs::load_image(&img).unwrap();
        let report = e4fuzz::oracle::fsck::check(&mut dev).unwrap();
        assert!(report.is_clean(), "{name}: our fsck: {:?}", report.problems);
    }
}
