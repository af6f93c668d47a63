//! The engine's own journal under crashes (issue 4): a workload runs through the engine with
//! every device write logged; the disk is rebuilt at many crash points (`Disk::replay_log`) with
//! the writes not yet durable kept, lost or torn (`CrashFates::Seeded`); each crash image is
//! replayed by our recovery and by `e2fsck -y -E journal_only`, which must give the same bytes
//! (but for the superblock's clock fields), and after our mount (orphan cleanup) and clean
//! unmount `e2fsck -fn` must be clean.

use crate::util::*;
use e4fuzz::dev::{CrashFates, Disk};
use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
use e4fuzz::fs::{Fs, MountOpts};
use std::path::Path;

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A workload touching every journaled structure: directories, inodes, bitmaps, indirect or
/// extent trees, orphans (shrinking truncate, unlink), commits by fsync and by full
/// transactions. Returns the mounted filesystem, not unmounted (the "crash" comes after).
fn workload(extents: bool) -> Fs {
    let opts = MkfsOpts {
        size_bytes: 8 << 20,
        extents,
        journal_blocks: Some(1024),
        ..MkfsOpts::default()
    };
    let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
    fs.dev.clear_log();
    let a = fs.create("/a", 0o644).unwrap();
    fs.write_file(a, 0, &pattern(1, 5000)).unwrap();
    fs.fsync(a).unwrap();
    fs.mkdir("/d").unwrap();
    let b = fs.create("/d/b", 0o644).unwrap();
    fs.write_file(b, 300 * 1024, &pattern(2, 3000)).unwrap(); // IND range with 1 KiB blocks
    fs.write_file(b, 70_000 * 1024, &pattern(3, 2048)).unwrap(); // DIND range
    fs.write_file(a, 20_000, &pattern(4, 40_000)).unwrap();
    fs.sync().unwrap();
    fs.truncate_file(a, 7000).unwrap();
    fs.punch_hole(b, 300 * 1024, 1024).unwrap();
    let c = fs.create("/c", 0o644).unwrap();
    fs.write_file(c, 0, &pattern(5, 9000)).unwrap();
    fs.unlink("/d/b").unwrap();
    fs.fsync(c).unwrap();
    fs.write_file(a, 0, &pattern(6, 1000)).unwrap();
    fs
}

fn masked(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    for &(off, len, _) in crate::recovery::CLOCK_FIELDS {
        b[1024 + off..1024 + off + len].fill(0);
    }
    b
}

fn check_crash_points(tag: &str, extents: bool) {
    let fs = workload(extents);
    let dev = fs.dev.clone();
    let n = dev.log().len();
    assert!(n > 50, "the workload wrote only {n} log entries");
    let t = TempDir::new(tag);
    let points: Vec<usize> = (0..24).map(|i| i * n / 24).chain([n]).collect();
    let (mut replayed, mut transactions) = (0, 0);
    for (i, &k) in points.iter().enumerate() {
        let at = dev.replay_log(k);
        let fates = CrashFates::Seeded {
            seed: k as u64,
            keep_per_mille: 500,
            tear_per_mille: 200,
        };
        let crash = at.crash_image(&fates);
        let (ours, theirs) = (t.path(&format!("ours{i}")), t.path(&format!("theirs{i}")));
        crash.save(&ours).unwrap();
        crash.save(&theirs).unwrap();
        let mut d = Disk::load(&ours, crash.block_size()).unwrap();
        let info = e4fuzz::jbd2::recover(&mut d).unwrap();
        assert!(
            info.error.is_none(),
            "crash point {k}: recovery error {:?}",
            info.error
        );
        replayed += usize::from(info.replayed);
        transactions += info.transactions();
        d.save(&ours).unwrap();
        let r = std::process::Command::new("e2fsck")
            .args(["-y", "-E", "journal_only"])
            .arg(&theirs)
            .env("E2FSCK_CONFIG", "/dev/null")
            .output()
            .unwrap();
        assert!(
            r.status.code().unwrap_or(8) < 4,
            "e2fsck replay failed at {k}: {r:?}"
        );
        assert!(
            masked(&ours) == masked(&theirs),
            "crash point {k}/{n}: our replay differs from e2fsck's"
        );
        // Mount (orphan cleanup), unmount cleanly: e2fsck must find nothing.
        let fs = Fs::mount(d, MountOpts::default())
            .unwrap_or_else(|e| panic!("mount after crash {k}: {e}"));
        fs.unmount().unwrap().save(&ours).unwrap();
        let (st, out) = e2fsck(&ours);
        assert_eq!(
            st, 0,
            "crash point {k}/{n}: e2fsck -fn after recovery + orphan cleanup:\n{out}"
        );
    }
    // Not hollow: most crash points must have had committed transactions to replay.
    let pts = points.len();
    assert!(
        replayed >= pts / 2,
        "only {replayed} of {pts} crash points replayed"
    );
    assert!(
        transactions > pts as u32,
        "only {transactions} transactions replayed in all"
    );
}

#[test]
fn crash_points_indirect_match_e2fsck_replay() {
    if !have_e2fsprogs("crash_points_indirect_match_e2fsck_replay") {
        return;
    }
    check_crash_points("jcrash-ind", false);
}

#[test]
fn fsynced_data_survives_a_crash() {
    let opts = MkfsOpts {
        size_bytes: 8 << 20,
        extents: false,
        ..MkfsOpts::default()
    };
    let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
    let a = fs.create("/a", 0o644).unwrap();
    let data = pattern(9, 70_000);
    fs.write_file(a, 0, &data).unwrap();
    fs.fsync(a).unwrap();
    fs.write_file(a, 100_000, &pattern(10, 10)).unwrap(); // not synced: may be lost
    let crash = fs.dev.crash_image(&CrashFates::AllLost);
    let mut fs = Fs::mount(crash, MountOpts::default()).unwrap();
    let a = fs.resolve("/a").unwrap();
    assert_eq!(fs.read_file(a, 0, 70_000).unwrap(), data);
}

#[test]
fn crash_points_extents_match_e2fsck_replay() {
    if !have_e2fsprogs("crash_points_extents_match_e2fsck_replay") {
        return;
    }
    check_crash_points("jcrash-ext", true);
}

/// A write error on the journal during a commit aborts the journal: the filesystem turns
/// read-only (every later call fails with `Aborted`), and a remount recovers the last committed
/// state (the fsynced file is intact, the failed transaction is gone) with e2fsck clean.
#[test]
fn eio_during_commit_aborts_and_remount_recovers() {
    use e4fuzz::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen, Zone};
    let opts = MkfsOpts {
        size_bytes: 8 << 20,
        ..MkfsOpts::default()
    };
    let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
    let a = fs.create("/a", 0o644).unwrap();
    let data = pattern(21, 30_000);
    fs.write_file(a, 0, &data).unwrap();
    fs.fsync(a).unwrap();
    let b = fs.create("/b", 0o644).unwrap();
    fs.write_file(b, 0, &pattern(22, 5000)).unwrap();
    let rule = FaultRule::new(FaultOp::Write, FaultWhen::Always).in_zone(Zone::Journal);
    fs.dev.set_fault_plan(FaultPlan {
        rules: vec![rule],
        crash_at_write: None,
    });
    assert!(
        matches!(fs.fsync(b), Err(e4fuzz::Error::Io(_))),
        "the commit's journal write fails"
    );
    assert!(fs.aborted);
    assert_eq!(fs.write_file(a, 0, b"x"), Err(e4fuzz::Error::Aborted));
    assert_eq!(fs.create("/c", 0o644).err(), Some(e4fuzz::Error::Aborted));
    // Power off: only what was durable survives; mount replays the last committed state.
    fs.dev.set_fault_plan(FaultPlan::none());
    let crash = fs.dev.crash_image(&CrashFates::AllLost);
    let mut fs = Fs::mount(crash, MountOpts::default()).unwrap();
    let a = fs.resolve("/a").unwrap();
    assert_eq!(fs.read_file(a, 0, 30_000).unwrap(), data);
    assert!(
        matches!(fs.resolve("/b"), Err(e4fuzz::Error::NotFound(_))),
        "b's transaction never committed"
    );
    if have_e2fsprogs("eio_during_commit_aborts_and_remount_recovers") {
        let t = TempDir::new("eio");
        let img = t.path("img");
        fs.unmount().unwrap().save(&img).unwrap();
        assert_e2fsck_clean(&img);
    }
}
