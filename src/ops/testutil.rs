//! Test helpers for the ops: in-memory filesystems made by the engine's own mkfs (no tools
//! needed), indirect files on an extent filesystem (made like `tune2fs -O extent`: the
//! feature bit flipped after the files were written), the independent walk of a file's map,
//! file contents, and e2fsck on a saved copy when e2fsprogs is there.

use crate::dev::{Disk, Zone};
use crate::format::blockmap::{self, BlockMap};
use crate::format::superblock::EXT4_FEATURE_INCOMPAT_EXTENTS;
use crate::fs::mkfs::{mkfs, MkfsOpts};
use crate::fs::{Fs, MountOpts};
use crate::ops::{migrate::ioctl_migrate, run_single};
use crate::units::{Ino, Pblk};

/// A fresh 16 MiB filesystem without the extent feature, block size `bs`, mounted.
pub(crate) fn mk_ind_fs(bs: u32) -> Fs {
    let opts = MkfsOpts {
        size_bytes: 16 << 20,
        block_size: bs,
        extents: false,
        ..MkfsOpts::default()
    };
    Fs::mount(mkfs(&opts).expect("mkfs"), MountOpts::default()).expect("mount")
}

/// The bytes the tests write at logical block `lblk` of a file (never all zero).
pub(crate) fn fill(lblk: u32, bs: u32) -> Vec<u8> {
    (0..bs)
        .map(|i| (lblk.wrapping_mul(31) ^ i.wrapping_mul(7)) as u8 | 1)
        .collect()
}

/// Write every block of `runs` (`(first lblk, count)`) into `ino` with [`fill`], and set the
/// size to cover `size_blocks` if it is larger.
pub(crate) fn write_runs(fs: &mut Fs, ino: Ino, runs: &[(u32, u32)]) {
    let bs = fs.block_size();
    for &(l, n) in runs {
        for b in l..l + n {
            fs.write_file(ino, u64::from(b) * u64::from(bs), &fill(b, bs))
                .unwrap();
        }
    }
}

/// `tune2fs -O extent`: the feature bit, written to the superblock and made durable.
pub(crate) fn enable_extents(fs: &mut Fs) {
    fs.sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_EXTENTS;
    fs.commit_super().unwrap();
    fs.dev.flush().unwrap();
}

/// A 1 KiB-block filesystem with an indirect file `/f` holding `runs`; with `extent_feature`
/// the extent feature is switched on afterwards.
pub(crate) fn ind_fs(runs: &[(u32, u32)], extent_feature: bool) -> (Fs, Ino) {
    let mut fs = mk_ind_fs(1024);
    let ino = fs.create("/f", 0o644).unwrap();
    write_runs(&mut fs, ino, runs);
    fs.sync().unwrap();
    if extent_feature {
        enable_extents(&mut fs);
    }
    (fs, ino)
}

/// The file's map, read by the independent walker through the buffer cache.
pub(crate) fn engine_map(fs: &mut Fs, ino: Ino) -> BlockMap {
    fs.iget(ino).unwrap();
    let raw = fs.inode(ino).raw.clone();
    let seed = fs.sb.metadata_csum().then(|| fs.inode(ino).csum_seed);
    let sb = fs.sb.clone();
    let mut read = |b: Pblk| fs.bread(b, Zone::TreeMeta).map(std::sync::Arc::from);
    blockmap::walk_inode(&sb, ino, &raw, seed, &mut read).unwrap()
}

/// `EXT4_IOC_MIGRATE` of `ino` alone on a one-thread scheduler, with 3 `-EAGAIN` retries
/// (profile `fixed`).
pub(crate) fn migrate_fixed(fs: Fs, ino: Ino) -> (Fs, crate::Result<i32>) {
    run_single(fs, "migrate", |cx| async move {
        ioctl_migrate(&cx, ino, 3).await
    })
}

/// Whether block `b` is in use in the bitmap.
pub(crate) fn in_use(fs: &mut Fs, b: u64) -> bool {
    !fs.block_is_free(Pblk(b)).unwrap()
}

/// `e2fsck -fn` on a copy of `dev` saved to a temp file: `Some((status, output))`, or `None`
/// (with a message) when e2fsck is missing.
pub(crate) fn e2fsck(dev: &Disk, tag: &str) -> Option<(i32, String)> {
    if !crate::oracle::e2fsck::available() {
        eprintln!("skipping e2fsck check: e2fsprogs is not installed");
        return None;
    }
    let path = std::env::temp_dir().join(format!(
        "e4fuzz-ops-{tag}-{}-{:?}.img",
        std::process::id(),
        std::thread::current().id()
    ));
    dev.save(&path).unwrap();
    let r = crate::oracle::e2fsck::check(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    Some((r.status, r.output))
}

/// Unmount cleanly and mount again (drops every cache: reads then come from the disk).
pub(crate) fn remount(fs: Fs) -> Fs {
    let bugs = fs.bugs;
    let mut fs = Fs::mount(fs.unmount().unwrap(), MountOpts::default()).unwrap();
    fs.bugs = bugs;
    fs
}
