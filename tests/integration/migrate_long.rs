//! Seeded bug S15: `chattr +e` of an indirect-mapped file with a run of more than 32768
//! physically contiguous blocks.
//!
//! finish_range() (fs/ext4/migrate.c) stores the run's length in the 16-bit `ee_len`
//! unchecked. A length above 32768 reads as an *unwritten* extent of `len − 32768` blocks: the
//! ioctl returns 0, the file reads zeros there, and the rest of the run is neither mapped nor
//! freed. kernel.md took this for latent, believing indirect blocks sit between every `bs/4`
//! data blocks; the kernel (6.18) allocates them apart from the data, and on a `flex_bg`
//! filesystem a file written sequentially has runs of tens of thousands of blocks.
//!
//! The filesystem: `mke2fs -O ^extent,^64bit,sparse_super2` on 64 MiB of 1 KiB blocks (with
//! flex_bg, as ext4 makes by default; sparse_super2 keeps only two superblock backups, so
//! groups 2 to 6 have no metadata and their 40,960 blocks are free in one run). A 40 MiB file
//! `/f` is written, the extent feature switched on (`tune2fs -O extent`), and the file
//! migrated.
//!
//! * The engine builds the layout itself (so this part needs only e2fsprogs): it first makes
//!   every indirect block of the file's range (a block written and punched in each), fills the
//!   holes that leaves with another file, then writes `/f` from the start. With `mainline`'s
//!   switches (S15 on) the migrate returns 0 with the first 8,192 blocks unwritten and the
//!   other 32,768 lost and leaked; with `fixed`'s the run is split at 32768 and the file reads
//!   as written.
//! * The kernel writes the file itself (root and loop mounts; skipped otherwise), and its
//!   `chattr +e` and the engine's migrate (`mainline`) of that same image end with the same
//!   extent tree (`debugfs ex`) and the same e2fsck complaints.

use crate::util::*;
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::oracle::kernel::{self, host};
use std::path::Path;

const BLOCKS: u64 = 40_960;
const BS: u64 = 1024;

/// The file's bytes: each 1 KiB block holds its block number, repeated.
fn pattern() -> Vec<u8> {
    (0..BLOCKS)
        .flat_map(|b| (b as u32).to_le_bytes().repeat(BS as usize / 4))
        .collect()
}

/// The empty filesystem (see the module doc).
fn make_image(img: &Path) {
    mke2fs(
        img,
        64 << 20,
        &[
            "-t",
            "ext4",
            "-O",
            "^extent,^64bit,sparse_super2",
            "-b",
            "1024",
        ],
    );
}

/// `tune2fs -O extent`: migration needs the feature.
fn enable_extents(img: &Path) {
    let st = std::process::Command::new("tune2fs")
        .args(["-O", "extent"])
        .arg(img)
        .output()
        .unwrap();
    assert!(st.status.success(), "tune2fs -O extent");
}

/// The engine writes `/f` so that its data is one physical run: the indirect blocks first,
/// then the data.
fn engine_writes(img: &Path) {
    let mut fs = Fs::open(img, MountOpts::default()).expect("the image mounts");
    let f = fs.create("/f", 0o644).unwrap();
    // lblk 12 is the first under the IND block, then one per IND block under the DIND.
    let firsts = std::iter::once(12).chain((268..BLOCKS).step_by(256));
    for lblk in firsts {
        fs.write_file(f, lblk * BS, &[0x78; BS as usize]).unwrap();
        fs.punch_hole(f, lblk * BS, BS).unwrap();
    }
    let g = fs.create("/g", 0o644).unwrap();
    fs.write_file(g, 0, &[0u8; 200 * BS as usize]).unwrap();
    fs.write_file(f, 0, &pattern()).unwrap();
    fs.unmount().expect("unmount").save(img).unwrap();
}

/// `e4fuzz migrate IMG /f --profile P`: it must report success.
fn engine_migrates(img: &Path, profile: &str) {
    let out = e4fuzz(&[
        "migrate",
        &img.to_string_lossy(),
        "/f",
        "--profile",
        profile,
    ]);
    assert!(
        out.status.success(),
        "migrate on {profile}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `debugfs ex /f`: the extent tree as e2fsprogs reads it.
fn extents(img: &Path) -> String {
    debugfs(img, false, &["ex /f"])
}

/// e2fsck's complaints about the block bitmap.
fn bitmap_differences(img: &Path) -> Vec<String> {
    e2fsck(img)
        .1
        .lines()
        .filter(|l| l.contains("bitmap differences"))
        .map(|l| l.trim().to_string())
        .collect()
}

/// `/f` as the engine reads it.
fn read_f(img: &Path) -> Vec<u8> {
    let mut fs = Fs::open(img, MountOpts { read_only: true }).expect("the image opens");
    let f = fs.resolve("/f").unwrap();
    fs.read_file(f, 0, BLOCKS * BS).unwrap()
}

#[test]
fn s15_a_run_longer_than_32768_blocks_migrates_to_an_unwritten_extent() {
    if !have_e2fsprogs("s15_a_run_longer_than_32768_blocks_migrates_to_an_unwritten_extent") {
        return;
    }
    let dir = TempDir::new("s15");
    let before = dir.path("before.img");
    make_image(&before);
    engine_writes(&before);
    enable_extents(&before);
    assert_e2fsck_clean(&before);
    assert_eq!(read_f(&before), pattern());

    let fixed = dir.path("fixed.img");
    std::fs::copy(&before, &fixed).unwrap();
    engine_migrates(&fixed, "fixed");
    assert_e2fsck_clean(&fixed);
    assert_eq!(
        read_f(&fixed),
        pattern(),
        "fixed: the file reads as written"
    );
    assert!(
        extents(&fixed).contains("32768"),
        "fixed splits the run at 32768: {}",
        extents(&fixed)
    );

    let mainline = dir.path("mainline.img");
    std::fs::copy(&before, &mainline).unwrap();
    engine_migrates(&mainline, "mainline");
    let ex = extents(&mainline);
    assert!(ex.contains("8192 Uninit"), "one unwritten extent: {ex}");
    let data = read_f(&mainline);
    assert_eq!(data.len(), pattern().len(), "the size is kept");
    assert!(
        data.iter().all(|&b| b == 0),
        "S15: every block of the run reads zeros"
    );
    let diffs = bitmap_differences(&mainline);
    assert!(
        diffs.iter().any(|l| l.contains("-(")),
        "the other 32768 blocks are leaked: {diffs:?}"
    );
}

#[test]
fn kernel_chattr_e_of_a_long_run_matches_the_engine_with_s15() {
    let test = "kernel_chattr_e_of_a_long_run_matches_the_engine_with_s15";
    if !have_e2fsprogs(test) {
        return;
    }
    if let Err(why) = kernel::available() {
        eprintln!("SKIP {test}: kernel oracle unavailable: {why}");
        return;
    }
    let scratch = host::Scratch::new("s15").unwrap();
    let before = scratch.path("before.img");
    make_image(&before);
    // The kernel writes the file.
    {
        let vetted = host::vet(&before, &scratch).expect("mke2fs's image passes e2fsck");
        let m = host::Mounted::new(&vetted, &scratch.path("mnt"), false).expect("mount");
        std::fs::write(m.path("/f"), pattern()).unwrap();
        m.umount().expect("umount");
    }
    enable_extents(&before);
    assert_e2fsck_clean(&before);

    let theirs = scratch.path("kernel.img");
    std::fs::copy(&before, &theirs).unwrap();
    {
        let vetted = host::vet(&theirs, &scratch).expect("the written image passes e2fsck");
        let m = host::Mounted::new(&vetted, &scratch.path("mnt"), false).expect("mount");
        let out = host::run("chattr", &["+e", &m.path("/f").to_string_lossy()]).unwrap();
        assert!(
            out.status.success(),
            "the kernel's chattr +e succeeds: {}",
            host::text(&out)
        );
        m.umount().expect("umount");
    }
    let ours = scratch.path("ours.img");
    std::fs::copy(&before, &ours).unwrap();
    engine_migrates(&ours, "mainline");

    let kernel_ex = extents(&theirs);
    assert!(
        kernel_ex.contains("Uninit"),
        "S15 on the kernel: an unwritten extent where the file had data: {kernel_ex}"
    );
    assert_ne!(
        read_f(&theirs),
        pattern(),
        "the kernel's file lost its data"
    );
    assert_eq!(extents(&ours), kernel_ex, "the same extent tree");
    assert_eq!(
        bitmap_differences(&ours),
        bitmap_differences(&theirs),
        "the same leaked blocks"
    );
}
