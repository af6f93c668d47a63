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
//! A punch whose IND block read fails once (a transient error) shows seeded bug U2 on the
//! kernel: ext4_find_shared() ignores the error and takes the IND subtree for the part to
//! free, the next read succeeds, and a block before the range is freed with nothing recorded.
//! A truncate whose IND block read fails once goes the same way (ext4_ind_truncate() shares
//! ext4_find_shared()): it frees blocks inside the new size. A punch whose *end* lies under
//! that IND block keeps the range's blocks there instead: the chain ends at the inode, which
//! ext4_ind_remove_space() reads as "the end starts the next level". The engine runs with the
//! `mainline` switches (U2 on) for these comparisons.
//!
//! Skips with a message without root, loop devices, /dev/fuse, python3 or fallocate(1).

use crate::fuse::{skipped, Served};
use e4fuzz::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen, Zone};
use e4fuzz::format::superblock::EXT4_ERROR_FS;
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::harness::template::template;
use e4fuzz::oracle::kernel::host;
use e4fuzz::scenario::{FileSetup, Geometry};
use e4fuzz::{Ino, Pblk};
use std::path::{Path, PathBuf};

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

/// Which reads of `blk` fail on the engine side (as [`Fail`] on the kernel side).
fn fail_reads(fs: &mut Fs, blk: Pblk, how: Fail) {
    let rule = FaultRule::new(FaultOp::Read, FaultWhen::Block(blk));
    let rules = match how {
        Fail::Off => vec![],
        Fail::Always => vec![rule.sticky()],
        Fail::Once => vec![rule],
    };
    fs.dev.set_fault_plan(FaultPlan {
        rules,
        crash_at_write: None,
    });
}

/// Run `op` on f2 of `before` on the engine with the `mainline` profile's switches (the
/// kernel's behaviour, U2 included; it sets its own faults), then unmount: the image file.
fn on_engine(
    before: &e4fuzz::dev::Disk,
    scratch: &host::Scratch,
    op: impl FnOnce(&mut Fs, Ino),
) -> PathBuf {
    let mut fs = Fs::mount(before.clone(), MountOpts::default()).expect("mount");
    fs.bugs = e4fuzz::profile::Profile::by_name("mainline").unwrap().bugs;
    let ino = fs.resolve("/f2").expect("f2");
    op(&mut fs, ino);
    fs.dev.set_fault_plan(FaultPlan::none());
    let path = scratch.path("ours.img");
    fs.unmount().expect("unmount").save(&path).unwrap();
    path
}

/// Pointer `i` of f2's `i_block` in `before` (a direct block for `i` < 12).
fn f2_pointer(before: &e4fuzz::dev::Disk, i: usize) -> Pblk {
    let mut fs = Fs::mount(before.clone(), MountOpts { read_only: true }).unwrap();
    let ino: Ino = fs.resolve("/f2").unwrap();
    Pblk(u64::from(fs.inode(ino).raw.i_block[i]))
}

/// The template, f2's IND block, and a scratch directory.
fn prepare() -> (e4fuzz::dev::Disk, Pblk, host::Scratch) {
    prepare_with(setup())
}

/// [`prepare`] for another setup.
fn prepare_with(setup: Vec<FileSetup>) -> (e4fuzz::dev::Disk, Pblk, host::Scratch) {
    let before = template(&geometry(), &setup).expect("template");
    let ind = f2_pointer(&before, 12);
    (before, ind, host::Scratch::new("eio").unwrap())
}

/// Which reads of the IND block fail on the kernel side.
#[derive(Clone, Copy)]
enum Fail {
    /// None.
    Off,
    /// Every one.
    Always,
    /// The next one only (a transient error).
    Once,
}

/// Run `ops` on the real kernel: `before` (vetted) served by faultyfuse.py, loop-mounted
/// `nodelalloc`; `ops` gets f2's host path and a function that sets which reads of `ind`
/// fail. Returns the image file after the unmount.
fn on_kernel(
    before: &e4fuzz::dev::Disk,
    ind: Pblk,
    scratch: &host::Scratch,
    ops: impl FnOnce(&Path, &dyn Fn(Fail)),
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
        let range = format!("{} {}", ind.0 * 4096, (ind.0 + 1) * 4096);
        let fail = |how: Fail| match how {
            Fail::Always => std::fs::write(&ctl, &range).unwrap(),
            Fail::Once => std::fs::write(&ctl, format!("fail-once {range}")).unwrap(),
            Fail::Off => {
                let _ = std::fs::remove_file(&ctl);
            }
        };
        ops(&m.path("/f2"), &fail);
        m.umount().expect("umount");
    }
    served.stop();
    image
}

/// On the kernel: punch `[off, off + len)` of `f2` (`fallocate -p`) while reads of the chosen
/// block fail as `how`; the punch must succeed.
fn punch_on_kernel(f2: &Path, fail: &dyn Fn(Fail), how: Fail, off: u64, len: u64) {
    fail(how);
    let (o, l) = (off.to_string(), len.to_string());
    let punch = host::run(
        "fallocate",
        &["-p", "-o", &o, "-l", &l, &f2.to_string_lossy()],
    )
    .unwrap();
    fail(Fail::Off);
    assert!(
        punch.status.success(),
        "the kernel's punch fails: {}",
        host::text(&punch)
    );
}

/// On the kernel: truncate `f2` to `size` while reads of the chosen block fail as `how`; the
/// truncate must succeed.
fn truncate_on_kernel(f2: &Path, fail: &dyn Fn(Fail), how: Fail, size: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(f2).unwrap();
    fail(how);
    let r = f.set_len(size);
    fail(Fail::Off);
    r.expect("the kernel's truncate succeeds");
}

/// A punch (offset, length) or a truncate (new size) of f2, run alike on both sides.
#[derive(Clone, Copy)]
enum Cut {
    Punch(u64, u64),
    Truncate(u64),
}

/// `cut` of f2 on the engine (the `mainline` switches) and on the kernel, each while reads of
/// `blk` fail as `how`; both must succeed. Returns (ours, the kernel's) outcomes.
fn cut_on_both(
    before: &e4fuzz::dev::Disk,
    blk: Pblk,
    scratch: &host::Scratch,
    how: Fail,
    cut: Cut,
) -> (Outcome, Outcome) {
    let ours_img = on_engine(before, scratch, |fs, ino| {
        fail_reads(fs, blk, how);
        match cut {
            Cut::Punch(off, len) => fs.punch_hole(ino, off, len),
            Cut::Truncate(size) => fs.truncate_file(ino, size),
        }
        .expect("it succeeds, as the kernel's does");
    });
    let image = on_kernel(before, blk, scratch, |f2, fail| match cut {
        Cut::Punch(off, len) => punch_on_kernel(f2, fail, how, off, len),
        Cut::Truncate(size) => truncate_on_kernel(f2, fail, how, size),
    });
    (outcome(&ours_img), outcome(&image))
}

/// The kernel recorded no error and e2fsck finds the bitmaps right.
fn assert_nothing_recorded(kernel: &Outcome) {
    assert!(
        !kernel.errors && kernel.bitmap_differences.is_empty(),
        "nothing recorded, the bitmaps agree: {kernel:?}"
    );
}

#[test]
fn kernel_agrees_on_a_punch_that_cannot_read_an_indirect_block() {
    if skipped("kernel_agrees_on_a_punch_that_cannot_read_an_indirect_block") {
        return;
    }
    let (before, ind, scratch) = prepare();
    let ours_img = on_engine(&before, &scratch, |fs, ino| {
        fs.write_file(ino, WRITE_AT, &[0xab]).expect("write");
        fail_reads(fs, ind, Fail::Always);
        fs.punch_hole(ino, PUNCH.0, PUNCH.1)
            .expect("the punch succeeds, as the kernel's does");
    });
    let image = on_kernel(&before, ind, &scratch, |f2, fail| {
        let f = std::fs::OpenOptions::new().write(true).open(f2).unwrap();
        std::os::unix::fs::FileExt::write_at(&f, &[0xab], WRITE_AT).unwrap();
        drop(f);
        punch_on_kernel(f2, fail, Fail::Always, PUNCH.0, PUNCH.1);
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
    if skipped("kernel_agrees_that_a_write_through_an_unreadable_indirect_block_records_nothing") {
        return;
    }
    let (before, ind, scratch) = prepare();
    let at = 986 * 4096; // lblk 986, under the IND block
    let ours_img = on_engine(&before, &scratch, |fs, ino| {
        fail_reads(fs, ind, Fail::Always);
        let err = fs.write_file(ino, at, &[0xab]).unwrap_err();
        assert!(matches!(err, e4fuzz::Error::Io(_)), "{err:?}");
    });
    let image = on_kernel(&before, ind, &scratch, |f2, fail| {
        let f = std::fs::OpenOptions::new().write(true).open(f2).unwrap();
        fail(Fail::Always);
        let r = std::os::unix::fs::FileExt::write_at(&f, &[0xab], at);
        fail(Fail::Off);
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
    if skipped("kernel_agrees_on_a_truncate_that_cannot_read_an_indirect_block") {
        return;
    }
    let (before, ind, scratch) = prepare();
    let cut = Cut::Truncate(326 * 4096);
    let (ours, kernel) = cut_on_both(&before, ind, &scratch, Fail::Always, cut);
    assert!(
        kernel.errors,
        "the kernel records the read failure: {kernel:?}"
    );
    assert!(kernel.map.is_empty(), "{kernel:?}");
    assert_eq!(ours, kernel);
}

/// A punch inside the IND range whose first read of the IND block fails and whose next one
/// succeeds (a transient error). The kernel's ext4_find_shared() ignores the failed
/// ext4_get_branch() and takes the whole IND subtree for the part to free; the second read in
/// ext4_free_branches() succeeds, so every block under the IND goes, before and after the
/// range too, and nothing is recorded.
#[test]
fn kernel_agrees_on_a_punch_whose_indirect_block_read_fails_once() {
    if skipped("kernel_agrees_on_a_punch_whose_indirect_block_read_fails_once") {
        return;
    }
    // f2 also has lblk 100, under the IND block and before the range; nothing reads the IND
    // block before the punch (on the kernel, a fresh mount has it uncached).
    let mut files = setup();
    files[0].writes.push((100 * 4096, 1, 75));
    let (before, ind, scratch) = prepare_with(files);
    let cut = Cut::Punch(326 * 4096, (900 - 326) * 4096);
    let (ours, kernel) = cut_on_both(&before, ind, &scratch, Fail::Once, cut);
    assert_nothing_recorded(&kernel);
    assert!(
        kernel.map.iter().all(|&(l, _, _)| l != 100),
        "lblk 100, before the range, is gone: {kernel:?}"
    );
    assert_eq!(ours, kernel);
}

/// A punch over lblk 11–12 (the last direct block and the first under the IND) whose IND
/// block read fails once: the end's ext4_find_shared() ignores the error and returns the chain
/// ending at the inode's IND pointer, which ext4_ind_remove_space() takes for "the end starts
/// the next level, all covered by the start" (`partial2 == chain2`). lblk 11 goes, lblk 12,
/// inside the range, stays, the punch succeeds and nothing is recorded (U2 again).
#[test]
fn kernel_agrees_on_a_punch_whose_end_indirect_read_fails_once() {
    if skipped("kernel_agrees_on_a_punch_whose_end_indirect_read_fails_once") {
        return;
    }
    let mut files = setup();
    files[0].writes.push((11 * 4096, 4096, 76));
    files[0].writes.push((12 * 4096, 4096, 77));
    let (before, ind, scratch) = prepare_with(files);
    let cut = Cut::Punch(11 * 4096, 2 * 4096);
    let (ours, kernel) = cut_on_both(&before, ind, &scratch, Fail::Once, cut);
    assert_nothing_recorded(&kernel);
    assert!(
        kernel.map.iter().all(|&(l, _, n)| l + n <= 11 || l >= 12),
        "lblk 11 is punched: {kernel:?}"
    );
    assert!(
        kernel.map.iter().any(|&(l, _, n)| l <= 12 && 12 < l + n),
        "lblk 12, inside the range, is still mapped: {kernel:?}"
    );
    assert_eq!(ours, kernel);
}

/// A truncate to a size inside lblk 1 whose read of that block (to zero its tail) fails:
/// ext4_truncate() ignores ext4_block_truncate_page()'s error, so the truncate goes on and
/// succeeds, freeing the blocks past the new size, with nothing recorded.
#[test]
fn kernel_agrees_on_a_truncate_whose_partial_block_read_fails() {
    if skipped("kernel_agrees_on_a_truncate_whose_partial_block_read_fails") {
        return;
    }
    let mut files = setup();
    files[0].writes = vec![(0, 4 * 4096, 78)];
    let (before, _, scratch) = prepare_with(files);
    let lblk1 = f2_pointer(&before, 1);
    let cut = Cut::Truncate(4096 + 100);
    let (ours, kernel) = cut_on_both(&before, lblk1, &scratch, Fail::Always, cut);
    assert_nothing_recorded(&kernel);
    assert_eq!(
        kernel.map.iter().map(|&(_, _, n)| n).sum::<u32>(),
        2,
        "{kernel:?}"
    );
    assert_eq!(ours, kernel);
}

/// A truncate into lblk 1 whose read of that block fails once leaves the block's old bytes
/// past the new size on disk, in no page (ext4_truncate() ignores ext4_block_truncate_page()'s
/// error). A store through a shared mapping then reads the block back, old bytes and all, and
/// writeback must zero the page past `i_size` (ext4_bio_write_folio(): "it may be mmapped"),
/// so the disk ends with zeros there. The engine used to write the page as it was: found by
/// `run --time 600 --jobs 2 --e2fsck-sample 100 --seed 2503` on `fixed` (data-loss after a
/// crash: the block showed bytes past the truncate's size that it had cut).
#[test]
fn kernel_zeroes_a_page_past_i_size_at_writeback() {
    if skipped("kernel_zeroes_a_page_past_i_size_at_writeback") {
        return;
    }
    let mut files = setup();
    files[0].writes = vec![(0, 2 * 4096, 78)];
    let (before, _, scratch) = prepare_with(files);
    let lblk1 = f2_pointer(&before, 1);
    let size = 4096 + 100;
    let ours = on_engine(&before, &scratch, |fs, ino| {
        fail_reads(fs, lblk1, Fail::Once);
        fs.truncate_file(ino, size).expect("the truncate succeeds");
        fs.mmap_write(ino, 4096 + 10, b"MMAP").expect("the store");
        fs.fsync(ino).expect("fsync");
    });
    let kernel = on_kernel(&before, lblk1, &scratch, |f2, fail| {
        truncate_on_kernel(f2, fail, Fail::Once, size);
        let script = format!(
            "import mmap\nf = open({:?}, 'r+b')\nm = mmap.mmap(f.fileno(), 0)\n\
             m[4106:4110] = b'MMAP'\nm.flush()\nm.close()\nf.close()\n",
            f2.to_string_lossy()
        );
        let out = host::run("python3", &["-c", &script]).unwrap();
        assert!(out.status.success(), "mmap store: {}", host::text(&out));
    });
    let block = |img: &Path| {
        let d = e4fuzz::dev::Disk::load(img, 4096).expect("the image loads");
        d.peek_block(lblk1).to_vec()
    };
    let (o, k) = (block(&ours), block(&kernel));
    assert_eq!(&k[10..14], b"MMAP", "the store reached the kernel's disk");
    assert!(
        k[100..].iter().all(|&b| b == 0),
        "the kernel zeroes past i_size"
    );
    assert_eq!(o, k, "lblk 1 on disk, engine vs kernel");
}

/// A truncate to 326 blocks whose IND block read fails once: ext4_ind_truncate() shares
/// ext4_find_shared() with the punch, so the same U2 path frees the whole IND subtree, lblk
/// 100 (inside the new size) included, and records nothing.
#[test]
fn kernel_agrees_on_a_truncate_whose_indirect_block_read_fails_once() {
    if skipped("kernel_agrees_on_a_truncate_whose_indirect_block_read_fails_once") {
        return;
    }
    let mut files = setup();
    files[0].writes.push((100 * 4096, 1, 75));
    let (before, ind, scratch) = prepare_with(files);
    let cut = Cut::Truncate(326 * 4096);
    let (ours, kernel) = cut_on_both(&before, ind, &scratch, Fail::Once, cut);
    assert_nothing_recorded(&kernel);
    assert!(
        kernel.map.is_empty(),
        "lblk 100, inside the new size, is gone with the rest: {kernel:?}"
    );
    assert_eq!(ours, kernel);
}

/// The same punch and truncate on the default engine (without U2): the failed read fails
/// them, and nothing is freed.
#[test]
fn without_u2_a_transient_indirect_read_error_fails_the_punch_or_truncate_and_frees_nothing() {
    let mut files = setup();
    files[0].writes.push((100 * 4096, 1, 75));
    let (before, ind, _scratch) = prepare_with(files);
    let mut fs = Fs::mount(before, MountOpts::default()).expect("mount");
    let ino = fs.resolve("/f2").unwrap();
    let map_before = fs.peek_map(ino).unwrap();
    fail_reads(&mut fs, ind, Fail::Once);
    let err = fs
        .punch_hole(ino, 326 * 4096, (900 - 326) * 4096)
        .unwrap_err();
    assert!(matches!(err, e4fuzz::Error::Io(_)), "{err:?}");
    assert_eq!(fs.peek_map(ino).unwrap(), map_before);
    fail_reads(&mut fs, ind, Fail::Once);
    let err = fs.truncate_file(ino, 326 * 4096).unwrap_err();
    assert!(matches!(err, e4fuzz::Error::Io(_)), "{err:?}");
    assert_eq!(
        fs.peek_map(ino).unwrap(),
        map_before,
        "the truncate freed nothing"
    );
}

/// Without U2, a truncate whose walk cannot read an indirect block fails before it changes
/// anything: `i_size`, the page cache and the map stay as they were. Before, the error came
/// after ext4_setattr()'s work (the new size set, the pages past it dropped), so a block
/// allocated by a write still in the page cache stayed mapped with bytes never written,
/// visible once the file grew again (`corpus/regressions/truncate-eio-stale.repro`).
#[test]
fn without_u2_a_truncate_that_cannot_read_its_walk_changes_nothing() {
    let (before, _ind, _scratch) = prepare();
    let mut fs = Fs::mount(before, MountOpts::default()).expect("mount");
    let ino = fs.resolve("/f2").unwrap();
    // lblk 2000 under the DIND block: a new IND block and a new data block, in the cache.
    fs.write_file(ino, 2000 * 4096, &[0xE4; 4096]).unwrap();
    let size = fs.inode(ino).raw.i_size;
    let map = fs.peek_map(ino).unwrap();
    // The first read of every tree block fails (the IND block is the walk's first).
    let rule = FaultRule::new(FaultOp::Read, FaultWhen::FirstEach).in_zone(Zone::TreeMeta);
    fs.dev.set_fault_plan(FaultPlan::none().with_rule(rule));
    let err = fs.truncate_file(ino, 100 * 4096).unwrap_err();
    assert!(matches!(err, e4fuzz::Error::Io(_)), "{err:?}");
    assert_eq!(fs.inode(ino).raw.i_size, size, "the size is unchanged");
    assert_eq!(fs.peek_map(ino).unwrap(), map, "the map is unchanged");
    assert_eq!(
        fs.read_file(ino, 2000 * 4096, 4096).unwrap(),
        [0xE4; 4096],
        "lblk 2000 reads its data"
    );
    // Each retry gets past one more block, changing nothing until the walk reads; then the
    // truncate goes through and lblk 2000 is gone.
    let mut tries = 1;
    while let Err(e) = fs.truncate_file(ino, 100 * 4096) {
        assert!(matches!(e, e4fuzz::Error::Io(_)), "{e:?}");
        assert_eq!(
            (fs.inode(ino).raw.i_size, fs.peek_map(ino).unwrap()),
            (size, map.clone())
        );
        tries += 1;
        assert!(tries < 10, "the truncate keeps failing");
    }
    assert!(fs.peek_map(ino).unwrap().iter().all(|&(l, _, _)| l < 100));
    assert_eq!(fs.inode(ino).raw.i_size, 100 * 4096);
}

/// f2 as an extent file of 400 one-block extents on every other block of lblk 0–799 (depth 1,
/// two leaves), a hole at lblk 101; the template and f2's second leaf.
fn prepare_extent_tree() -> (e4fuzz::dev::Disk, Pblk, host::Scratch) {
    let writes = (0..800u64)
        .step_by(2)
        .map(|l| (l * 4096, 4096, (l % 200) as u8 + 1))
        .collect();
    let files = vec![FileSetup {
        file: 2,
        indirect: false,
        writes,
    }];
    let before = template(&geometry(), &files).expect("template");
    let leaf2 = {
        let mut fs = Fs::mount(before.clone(), MountOpts { read_only: true }).unwrap();
        let ino: Ino = fs.resolve("/f2").unwrap();
        let ib = fs.inode(ino).raw.i_block;
        assert_eq!(
            (ib[0] >> 16, ib[1] >> 16),
            (2, 1),
            "two index entries, depth 1"
        );
        Pblk(u64::from(ib[7])) // the second entry's ei_leaf_lo
    };
    (before, leaf2, host::Scratch::new("eio-ext").unwrap())
}

/// The U3 sequence on f2 through `ops`: a write fills lblk 101 (a new block, mapped at once
/// under `nodelalloc`, its bytes only in the page cache), a truncate to 50 blocks whose
/// first read of the second leaf fails (it must fail with EIO), a write at lblk 600 that grows
/// the file over lblk 101 again, and an fsync. Returns what a read of lblk 101 then gives.
trait U3Ops {
    fn write(&mut self, off: u64, data: &[u8]);
    fn truncate_failing_once(&mut self, size: u64) -> Option<i32>;
    fn fsync(&mut self);
    fn read(&mut self, off: u64) -> Vec<u8>;
}

fn u3_sequence(ops: &mut dyn U3Ops) -> Vec<u8> {
    ops.write(101 * 4096, &[0x5A; 4096]);
    let errno = ops.truncate_failing_once(50 * 4096);
    assert_eq!(errno, Some(5), "the truncate fails with EIO");
    ops.write(600 * 4096, &[0x77]);
    ops.fsync();
    ops.read(101 * 4096)
}

struct EngineOps<'a>(&'a mut Fs, Ino, Pblk);

impl U3Ops for EngineOps<'_> {
    fn write(&mut self, off: u64, data: &[u8]) {
        self.0.write_file(self.1, off, data).expect("write");
    }
    fn truncate_failing_once(&mut self, size: u64) -> Option<i32> {
        fail_reads(self.0, self.2, Fail::Once);
        let r = self.0.truncate_file(self.1, size);
        fail_reads(self.0, self.2, Fail::Off);
        r.err().map(|e| e.errno())
    }
    fn fsync(&mut self) {
        self.0.fsync(self.1).expect("fsync");
    }
    fn read(&mut self, off: u64) -> Vec<u8> {
        self.0.read_file(self.1, off, 4096).expect("read")
    }
}

struct KernelOps<'a>(std::fs::File, &'a dyn Fn(Fail));

impl U3Ops for KernelOps<'_> {
    fn write(&mut self, off: u64, data: &[u8]) {
        std::os::unix::fs::FileExt::write_all_at(&self.0, data, off).expect("write");
    }
    fn truncate_failing_once(&mut self, size: u64) -> Option<i32> {
        (self.1)(Fail::Once);
        let r = self.0.set_len(size);
        (self.1)(Fail::Off);
        r.err().and_then(|e| e.raw_os_error())
    }
    fn fsync(&mut self) {
        self.0.sync_all().expect("fsync");
    }
    fn read(&mut self, off: u64) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(&self.0, &mut b, off).expect("read");
        b
    }
}

/// Seeded bug U3 on the kernel: an extent-file truncate whose first read of the second leaf
/// fails. ext4_setattr() has set the new size and dropped the page cache past it when
/// ext4_ext_remove_space() fails, so the truncate returns EIO having freed nothing, and
/// ext4_setattr() records the error. lblk 101's block stays mapped with its data never
/// written; once a write grows the file over it again, a read shows the block's old bytes
/// (another file's, here the template's poison). The engine, with the `mainline` switches,
/// reads the same poison and ends in the same state.
#[test]
fn kernel_agrees_on_an_extent_truncate_whose_leaf_read_fails_once() {
    if skipped("kernel_agrees_on_an_extent_truncate_whose_leaf_read_fails_once") {
        return;
    }
    let (before, leaf2, scratch) = prepare_extent_tree();
    let mut ours_read = vec![];
    let ours_img = on_engine(&before, &scratch, |fs, ino| {
        ours_read = u3_sequence(&mut EngineOps(fs, ino, leaf2));
    });
    let mut kernel_read = vec![];
    let image = on_kernel(&before, leaf2, &scratch, |f2, fail| {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(f2)
            .unwrap();
        kernel_read = u3_sequence(&mut KernelOps(f, fail));
    });
    assert!(
        e4fuzz::harness::pattern::has_poison(&kernel_read, 0),
        "the kernel shows a free block's old bytes at lblk 101: {:02x?}",
        &kernel_read[..16]
    );
    assert_eq!(ours_read, kernel_read, "the engine reads the same bytes");
    let kernel = outcome(&image);
    assert!(
        kernel.errors,
        "ext4_setattr() records the error: {kernel:?}"
    );
    assert!(
        kernel.map.iter().any(|&(l, _, n)| l <= 101 && 101 < l + n),
        "lblk 101 is still mapped: {kernel:?}"
    );
    assert_eq!(outcome(&ours_img), kernel);
}

/// The same sequence on the default engine (without U3): the truncate reads the tree blocks
/// its walk needs before it changes anything, so it fails with EIO with the size, the pages
/// and the map as they were, and lblk 101 reads back the written bytes.
#[test]
fn without_u3_an_extent_truncate_that_cannot_read_a_leaf_changes_nothing() {
    let (before, leaf2, _scratch) = prepare_extent_tree();
    let mut fs = Fs::mount(before, MountOpts::default()).expect("mount");
    let ino = fs.resolve("/f2").unwrap();
    fs.write_file(ino, 101 * 4096, &[0x5A; 4096]).unwrap();
    let (size, map) = (fs.inode(ino).raw.i_size, fs.peek_map(ino).unwrap());
    let read = u3_sequence(&mut EngineOps(&mut fs, ino, leaf2));
    assert_eq!(read, [0x5A; 4096], "lblk 101 reads its data");
    assert!(fs
        .peek_map(ino)
        .unwrap()
        .iter()
        .all(|m| map.contains(m) || m.0 == 600));
    assert_eq!(fs.inode(ino).raw.i_size, size, "the size is unchanged");
    assert_eq!(fs.sb.s_state & EXT4_ERROR_FS, 0, "nothing is recorded");
}
