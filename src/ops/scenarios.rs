//! Seeded-bug scenarios: each a hand-built deterministic run (threads, schedule bytes, a crash
//! point where needed) whose bad outcome is observable in what the engine returned and wrote
//! with the switch on, and absent with it off. The checks look at the disk, the maps, the
//! bitmaps and the return values, never at the switch.
//!
//! Schedules: [`preempt`]`(k)` lets T0 take the first `k` decisions and then hands the CPU to
//! T1 until it finishes or blocks; the scans run every `k` until T0 finishes alone, so "clean
//! with the switch off" holds for every single-preemption interleaving, not just one.
//! S9/S10 are in `ind_migrate`'s tests; S14/S16 are engine-level bugs owned elsewhere.

use crate::dev::{CrashFates, Disk, LogOp, Zone};
use crate::error::{CorruptKind, Error, Result};
use crate::format::inode as fi;
use crate::fs::inode::EXT4_EXT_MIGRATE_FL;
use crate::fs::{Fs, MountOpts};
use crate::ops::locks::journal_commit;
use crate::ops::migrate::ioctl_migrate;
use crate::ops::paths;
use crate::ops::testutil::{e2fsck, engine_map, fill, in_use, ind_fs, remount};
use crate::profile::{Bug, BugSet};
use crate::sched::{Cx, RunEnd, Sched, Schedule};
use crate::units::Ino;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

/// What one thread returned.
#[derive(Debug)]
enum Res {
    Mig(Result<i32>),
    Unit(Result<()>),
    Bytes(Result<Vec<u8>>),
    Crash(Box<Disk>),
}

type Fut = Pin<Box<dyn Future<Output = Res>>>;
type Op = Box<dyn FnOnce(Cx<Fs>) -> Fut>;

/// A finished run.
struct Run {
    fs: Fs,
    res: Vec<Option<Res>>,
    end: RunEnd,
    inversions: usize,
    decisions: usize,
}

fn run(fs: Fs, schedule: Vec<u8>, ops: Vec<Op>) -> Run {
    let mut sched = Sched::new(Schedule::new(schedule), fs);
    for (i, op) in ops.into_iter().enumerate() {
        let fut = op(sched.cx());
        sched.spawn(format!("T{i}"), fut);
    }
    let out = sched.run();
    Run {
        res: out.results,
        end: out.end,
        inversions: out.inversions.len(),
        decisions: out.decisions_used,
        fs: sched.into_state(),
    }
}

/// T0 takes the first `k` decisions, then T1 runs until it ends or blocks.
fn preempt(k: usize) -> Vec<u8> {
    let mut v = vec![0; k];
    v.push(1);
    v
}

fn mig(ino: Ino, retries: u32) -> Op {
    Box::new(move |cx| Box::pin(async move { Res::Mig(ioctl_migrate(&cx, ino, retries).await) }))
}

fn mkwrite(ino: Ino, lblk: u32) -> Op {
    Box::new(move |cx| {
        Box::pin(async move {
            let d = fill(lblk + 1000, 1024);
            Res::Unit(paths::page_mkwrite(&cx, ino, u64::from(lblk) * 1024, &d).await)
        })
    })
}

fn read(ino: Ino, lblk: u32, n: u32) -> Op {
    Box::new(move |cx| {
        Box::pin(async move {
            let (off, len) = (u64::from(lblk) * 1024, u64::from(n) * 1024);
            Res::Bytes(paths::read(&cx, ino, off, len).await)
        })
    })
}

fn mig_res(r: &Run) -> &Result<i32> {
    match &r.res[0] {
        Some(Res::Mig(m)) => m,
        other => panic!("T0 did not finish its migrate: {other:?} ({})", r.end),
    }
}

/// An indirect file with a hole at block 2 and four runs (two finish_ranges pass the hole
/// before the walk ends), on an extent filesystem, caches dropped.
fn holey(bugs: &[Bug]) -> (Fs, Ino) {
    let (fs, ino) = ind_fs(&[(0, 2), (3, 1), (5, 1), (7, 1)], true);
    let mut fs = remount(fs);
    fs.iget(ino).unwrap();
    fs.bugs = BugSet::of(bugs);
    (fs, ino)
}

/// Every block in use in the bitmaps.
fn used_blocks(fs: &mut Fs) -> BTreeSet<u64> {
    let first = u64::from(fs.sb.s_first_data_block);
    (first..fs.sb.s_blocks_count)
        .filter(|&b| in_use(fs, b))
        .collect()
}

/// Blocks newly in use that `ino`'s map (data and mapping blocks) does not own.
fn leaked(fs: &mut Fs, ino: Ino, before: &BTreeSet<u64>) -> Vec<u64> {
    let map = engine_map(fs, ino);
    let mut owned: BTreeSet<u64> = map.meta.iter().map(|m| m.pblk).collect();
    for r in &map.runs {
        owned.extend(r.pblk..r.pblk + u64::from(r.len));
    }
    let now = used_blocks(fs);
    now.difference(before)
        .filter(|b| !owned.contains(b))
        .copied()
        .collect()
}

/// Outcome of the mmap-race scenario: (migrate result, block 2 lost from the map, leaked
/// blocks, extent-mapped now).
fn mmap_race(bugs: &[Bug], retries: u32, k: usize) -> (Run, bool, Vec<u64>, bool) {
    let (mut fs, ino) = holey(bugs);
    let before = used_blocks(&mut fs);
    let mut r = run(fs, preempt(k), vec![mig(ino, retries), mkwrite(ino, 2)]);
    assert!(
        matches!(r.res[1], Some(Res::Unit(Ok(())))),
        "{:?}",
        r.res[1]
    );
    let lost = engine_map(&mut r.fs, ino).lookup(2).is_none();
    let leak = leaked(&mut r.fs, ino, &before);
    let ext = r.fs.inode(ino).is_extents();
    (r, lost, leak, ext)
}

/// The single-preemption points of a 2-thread scenario: `k` = 0, 1, … until T0 finishes
/// before T1 gets a turn.
fn scan(mut f: impl FnMut(usize) -> usize) {
    for k in 0..400 {
        if f(k) <= k {
            return;
        }
    }
    panic!("scan did not end");
}

#[test]
fn s1_mmap_allocation_behind_the_walk_is_lost_and_leaked() {
    let mut found = None;
    scan(|k| {
        let (r, lost, leak, ext) = mmap_race(&[Bug::S1], 0, k);
        if lost && ext && !leak.is_empty() && found.is_none() {
            found = Some((k, leak));
        }
        r.decisions
    });
    let (k, leak) = found.expect("S1: some schedule loses the mmap block");
    assert_eq!(leak.len(), 1, "exactly the mkwrite block leaks");
    // The bytes are gone on disk too.
    let (mut r, ..) = mmap_race(&[Bug::S1], 0, k);
    r.fs = remount(r.fs);
    let ino = r.fs.resolve("/f").unwrap();
    assert_eq!(r.fs.read_file(ino, 2048, 1024).unwrap(), vec![0; 1024]);
    if let Some((status, out)) = e2fsck(&r.fs.unmount().unwrap(), "s1") {
        assert_eq!(status, 4, "{out}");
        assert!(out.contains("Block bitmap differences"), "{out}");
    }
}

#[test]
fn fixed_engine_detects_the_race_and_retries() {
    let mut eagain_seen = false;
    scan(|k| {
        let (r, lost, leak, ext) = mmap_race(&[], 3, k);
        assert_eq!(mig_res(&r), &Ok(0), "k={k}");
        assert!(
            !lost && leak.is_empty() && ext,
            "k={k}: lost={lost} leak={leak:?}"
        );
        let (r0, ..) = mmap_race(&[], 0, k);
        eagain_seen |= matches!(mig_res(&r0), Err(Error::Again));
        r.decisions
    });
    assert!(eagain_seen, "without retries some schedule sees -EAGAIN");
    let (r, ..) = mmap_race(&[], 3, 8);
    let mut fs = remount(r.fs);
    let ino = fs.resolve("/f").unwrap();
    assert_eq!(fs.read_file(ino, 2048, 1024).unwrap(), fill(1002, 1024));
    if let Some((status, out)) = e2fsck(&fs.unmount().unwrap(), "fixed") {
        assert_eq!(status, 0, "{out}");
    }
}

#[test]
fn t2_marker_set_late_misses_the_early_allocation() {
    let mut found = false;
    scan(|k| {
        let (r, lost, leak, ext) = mmap_race(&[Bug::T2], 0, k);
        found |= lost && ext && !leak.is_empty() && mig_res(&r) == &Ok(0);
        r.decisions
    });
    assert!(found, "T2: some schedule allocates before the late marker");
}

#[test]
fn s17_reports_success_for_an_eagain() {
    let mut found = false;
    scan(|k| {
        let (r, _, _, ext) = mmap_race(&[Bug::S17], 0, k);
        found |= matches!(mig_res(&r), Ok(0 | 1)) && !ext;
        r.decisions
    });
    assert!(found, "S17: 0 returned while the inode is still indirect");
    scan(|k| {
        let (r, _, _, ext) = mmap_race(&[], 0, k);
        assert!(mig_res(&r).is_err() || ext, "k={k}: success means extents");
        r.decisions
    });
}

#[test]
fn t3_eagain_leaks_the_temporary_tree() {
    // Ten one-block runs: the temporary tree needs a leaf block.
    let runs: Vec<(u32, u32)> = (0..10).map(|i| (2 * i + 2, 1)).collect();
    let outcome = |bugs: &[Bug], k: usize| {
        let (fs, ino) = ind_fs(&runs, true);
        let mut fs = remount(fs);
        fs.iget(ino).unwrap();
        fs.bugs = BugSet::of(bugs);
        let before = used_blocks(&mut fs);
        let mut r = run(fs, preempt(k), vec![mig(ino, 0), mkwrite(ino, 1)]);
        let leak = leaked(&mut r.fs, ino, &before);
        (matches!(mig_res(&r), Err(Error::Again)), leak, r.decisions)
    };
    let mut found = false;
    scan(|k| {
        let (again, leak, d) = outcome(&[Bug::T3], k);
        found |= again && leak.len() == 1;
        d
    });
    assert!(found, "T3: the leaf block of the temporary tree leaks");
    scan(|k| {
        let (_, leak, d) = outcome(&[], k);
        assert!(leak.is_empty(), "k={k}: {leak:?}");
        d
    });
}

#[test]
fn s2_reads_alone_make_migrate_fail() {
    let outcome = |bugs: &[Bug], k: usize| {
        let (fs, ino) = holey(bugs);
        let r = run(fs, preempt(k), vec![mig(ino, 0), read(ino, 0, 8)]);
        assert!(matches!(&r.res[1], Some(Res::Bytes(Ok(_)))));
        (matches!(mig_res(&r), Err(Error::Again)), r.decisions)
    };
    let mut found = false;
    scan(|k| {
        let (again, d) = outcome(&[Bug::S2], k);
        found |= again;
        d
    });
    assert!(found, "S2: a read clears the marker");
    scan(|k| {
        let (again, d) = outcome(&[], k);
        assert!(!again, "k={k}");
        d
    });
}

/// Whether any inode-table image of `ino` the device received (home location or journal
/// copy) carries the old on-disk migrate bit.
fn flag_reached_disk(fs: &Fs, ino: Ino) -> bool {
    let (blk, off) = fs.inode_location(ino).unwrap();
    let isz = fs.sb.inode_size() as usize;
    let seed = fs.sb.csum_seed();
    fs.dev.log().iter().any(|e| match &e.op {
        LogOp::Write {
            blk: b, data, zone, ..
        } if (*b == blk && *zone == Zone::InodeTable) || *zone == Zone::Journal => {
            let rec = &data[off..off + isz];
            fi::inode_csum_verify(seed, ino, rec, isz)
                && fi::Inode::parse(rec, isz, ino)
                    .is_ok_and(|i| i.i_flags & EXT4_EXT_MIGRATE_FL != 0)
        }
        _ => false,
    })
}

#[test]
fn s3_marker_reaches_the_journal() {
    let outcome = |bugs: &[Bug], k: usize| {
        let (fs, ino) = holey(bugs);
        let t1: Op = Box::new(move |cx| {
            Box::pin(async move {
                let d = fill(7, 1024);
                let r = paths::page_mkwrite(&cx, ino, 0, &d).await;
                Res::Unit(r.and(journal_commit(&cx).await))
            })
        });
        let r = run(fs, preempt(k), vec![mig(ino, 0), t1]);
        (flag_reached_disk(&r.fs, ino), r.decisions)
    };
    let mut found = false;
    scan(|k| {
        let (hit, d) = outcome(&[Bug::S3], k);
        found |= hit;
        d
    });
    assert!(found, "S3: an inode image with 0x00100000 was written");
    scan(|k| {
        let (hit, d) = outcome(&[], k);
        assert!(!hit, "k={k}");
        d
    });
}

#[test]
fn s4_format_tested_outside_the_lock_reads_an_extent_header_as_pointers() {
    let outcome = |bugs: &[Bug]| {
        let (fs, ino) = holey(bugs);
        // T1 starts, tests the format, yields; T0 migrates to the end; T1 maps.
        let r = run(fs, vec![1, 0], vec![mig(ino, 0), read(ino, 0, 1)]);
        assert_eq!(mig_res(&r), &Ok(0));
        match &r.res[1] {
            Some(Res::Bytes(b)) => b.clone(),
            other => panic!("{other:?}"),
        }
    };
    let bad = outcome(&[Bug::S4]);
    // i_data[0] is now eh_magic | eh_entries << 16: "mapped to illegal pblock".
    assert!(matches!(&bad, Err(Error::Corrupt(_))), "S4: {bad:?}");
    assert_eq!(outcome(&[]).unwrap(), fill(0, 1024));
}

/// xorshift schedules for the 3- and 4-thread lock scenarios.
fn random_schedule(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn commit_op() -> Op {
    Box::new(|cx| Box::pin(async move { Res::Unit(journal_commit(&cx).await) }))
}

/// Over 300 random schedules: (deadlocks, runs with a lock-order inversion).
fn lock_scan(bugs: &[Bug], ops: impl Fn(Ino) -> Vec<Op>) -> (usize, usize) {
    let (mut dead, mut inv) = (0, 0);
    for seed in 0..300 {
        let (fs, ino) = holey(bugs);
        let r = run(fs, random_schedule(seed, 48), ops(ino));
        dead += usize::from(matches!(r.end, RunEnd::Deadlock { .. }));
        inv += usize::from(r.inversions > 0);
    }
    (dead, inv)
}

#[test]
fn s5_data_sem_across_journal_start_deadlocks_with_mkwrite_and_a_commit() {
    let ops = |ino| vec![mig(ino, 3), mkwrite(ino, 2), commit_op()];
    let (dead, inv) = lock_scan(&[Bug::S5], ops);
    assert!(dead > 0, "S5: some schedule deadlocks");
    assert!(inv > 0, "S5: lockdep sees i_data_sem → journal and back");
    assert_eq!(lock_scan(&[], ops), (0, 0));
}

#[test]
fn t4_mkwrite_taking_i_rwsem_inverts_against_write() {
    let ops = |ino: Ino| {
        let w: Op = Box::new(move |cx| {
            Box::pin(async move { Res::Unit(paths::write(&cx, ino, 0, &[7; 3000]).await) })
        });
        let mm: Op = Box::new(|cx| {
            Box::pin(async move {
                paths::mmap(&cx).await;
                Res::Unit(Ok(()))
            })
        });
        vec![mig(ino, 3), mkwrite(ino, 2), w, mm]
    };
    let (dead, inv) = lock_scan(&[Bug::T4], ops);
    assert!(
        inv > 0 && dead > 0,
        "T4: inversions {inv}, deadlocks {dead}"
    );
    assert_eq!(lock_scan(&[], ops), (0, 0));
}

/// S6: a commit lands mid-walk (T1 waits for it at a restart point), the power fails right
/// after it; mount replays the journal and runs the orphan list. Returns, per schedule,
/// whether a block of the original file was free in the bitmap afterwards.
fn s6_outcomes(bugs: &[Bug]) -> Vec<bool> {
    let mut out = Vec::new();
    scan(|k| {
        // Six runs: the temporary inode gets a leaf block, so a non-zero i_blocks, so
        // ext4_evict_inode() truncates it.
        let runs: Vec<(u32, u32)> = (0..6).map(|i| (3 * i, 2)).collect();
        let (fs, ino) = ind_fs(&runs, true);
        let mut fs = remount(fs);
        fs.iget(ino).unwrap();
        fs.bugs = BugSet::of(bugs);
        let blocks: Vec<u64> = engine_map(&mut fs, ino)
            .runs
            .iter()
            .flat_map(|r| r.pblk..r.pblk + u64::from(r.len))
            .collect();
        let crash: Op = Box::new(|cx| {
            Box::pin(async move {
                let r = journal_commit(&cx).await;
                assert!(r.is_ok());
                Res::Crash(Box::new(
                    cx.with(|fs| fs.dev.crash_image(&CrashFates::AllLost)),
                ))
            })
        });
        let r = run(fs, preempt(k), vec![mig(ino, 3), crash]);
        let Some(Res::Crash(disk)) = r.res.into_iter().nth(1).flatten() else {
            panic!("no crash image")
        };
        let mut after = Fs::mount(*disk, MountOpts::default()).expect("mount after crash");
        out.push(blocks.iter().any(|&b| !in_use(&mut after, b)));
        r.decisions
    });
    out
}

#[test]
fn s6_orphan_cleanup_after_a_crash_frees_the_files_blocks() {
    // S7 on both sides: with the borrowed seed the temporary inode's record fails its
    // checksum and orphan processing cannot read it (the 2021 code had neither fix).
    let bad = s6_outcomes(&[Bug::S6, Bug::S7]);
    assert!(
        bad.iter().any(|&b| b),
        "S6: some crash point frees the original's blocks"
    );
    let good = s6_outcomes(&[Bug::S7]);
    assert!(good.len() > 3 && good.iter().all(|&b| !b), "{good:?}");
}

/// A fragmented file (six runs: a leaf block) migrated alone; then remounted.
fn migrate_fragmented(bugs: &[Bug]) -> (Fs, Ino) {
    let runs: Vec<(u32, u32)> = (0..6).map(|i| (3 * i, 2)).collect();
    let (mut fs, ino) = ind_fs(&runs, true);
    fs.bugs = BugSet::of(bugs);
    let (fs, r) = crate::ops::run_single(fs, "migrate", |cx| async move {
        ioctl_migrate(&cx, ino, 3).await
    });
    assert_eq!(r, Ok(0));
    let mut fs = remount(fs);
    fs.iget(ino).unwrap();
    (fs, ino)
}

#[test]
fn s7_tree_blocks_carry_the_temporary_inodes_checksum() {
    let (mut fs, ino) = migrate_fragmented(&[Bug::S7]);
    let r = fs.read_file(ino, 0, 1024);
    assert!(
        matches!(r, Err(Error::Corrupt(CorruptKind::ExtentChecksum(i))) if i == ino),
        "{r:?}"
    );
    let (mut fs, ino) = migrate_fragmented(&[]);
    assert_eq!(fs.read_file(ino, 3 * 1024, 1024).unwrap(), fill(3, 1024));
}

/// The inode numbers whose on-disk record fails its checksum.
fn bad_inode_csums(fs: &mut Fs) -> Vec<u32> {
    let isz = fs.sb.inode_size() as usize;
    let seed = fs.sb.csum_seed();
    (1..=32)
        .filter(|&i| {
            let (blk, off) = fs.inode_location(Ino(i)).unwrap();
            let data = fs.dev.read_block_as(blk, Zone::InodeTable).unwrap();
            !fi::inode_csum_verify(seed, Ino(i), &data[off..off + isz], isz)
        })
        .collect()
}

#[test]
fn s8_temporary_inode_written_with_the_borrowed_seed() {
    let (fs, ino) = migrate_fragmented(&[Bug::S8]);
    let mut fs = Fs::mount(fs.unmount().unwrap(), MountOpts::default()).unwrap();
    assert_eq!(
        bad_inode_csums(&mut fs),
        vec![ino.0 + 1],
        "the temporary inode"
    );
    let (fs, _) = migrate_fragmented(&[]);
    let mut fs = Fs::mount(fs.unmount().unwrap(), MountOpts::default()).unwrap();
    assert_eq!(bad_inode_csums(&mut fs), Vec::<u32>::new());
}

/// The expected bytes of the [`holey`] file: blocks 0, 1, 3, 5, 7 hold [`fill`], 8 blocks.
fn holey_model() -> Vec<u8> {
    let mut m = vec![0u8; 8 * 1024];
    for l in [0u32, 1, 3, 5, 7] {
        m[l as usize * 1024..(l as usize + 1) * 1024].copy_from_slice(&fill(l, 1024));
    }
    m
}

/// One concurrent path against migrate on the fixed engine: its op, whether its result is
/// right, and the file's expected bytes afterwards.
struct PathCase {
    name: &'static str,
    op: fn(Ino) -> Op,
    ok: fn(&Res) -> bool,
    model: fn() -> Vec<u8>,
}

fn unit_ok(r: &Res) -> bool {
    matches!(r, Res::Unit(Ok(())))
}

fn path_cases() -> Vec<PathCase> {
    vec![
        PathCase {
            name: "read",
            op: |ino| read(ino, 0, 8),
            ok: |r| matches!(r, Res::Bytes(Ok(b)) if *b == holey_model()),
            model: holey_model,
        },
        PathCase {
            name: "fiemap",
            op: |ino| {
                Box::new(move |cx| {
                    Box::pin(async move {
                        let r = paths::fiemap(&cx, ino).await;
                        let want = [(0, 2), (3, 1), (5, 1), (7, 1)];
                        let ok = r.is_ok_and(|v| {
                            let got: Vec<(u32, u32)> = v.iter().map(|e| (e.0, e.2)).collect();
                            got == want
                        });
                        Res::Unit(if ok {
                            Ok(())
                        } else {
                            Err(Error::Invalid("fiemap".into()))
                        })
                    })
                })
            },
            ok: unit_ok,
            model: holey_model,
        },
        PathCase {
            name: "truncate",
            op: |ino| {
                Box::new(move |cx| {
                    Box::pin(async move { Res::Unit(paths::truncate(&cx, ino, 4096).await) })
                })
            },
            ok: unit_ok,
            model: || holey_model()[..4096].to_vec(),
        },
        PathCase {
            name: "punch",
            op: |ino| {
                Box::new(move |cx| {
                    Box::pin(async move { Res::Unit(paths::punch(&cx, ino, 3072, 3072).await) })
                })
            },
            ok: unit_ok,
            model: || {
                let mut m = holey_model();
                m[3072..6144].fill(0);
                m
            },
        },
        PathCase {
            name: "write",
            op: |ino| {
                Box::new(move |cx| {
                    Box::pin(async move {
                        Res::Unit(paths::write(&cx, ino, 2048, &fill(500, 1024)).await)
                    })
                })
            },
            ok: unit_ok,
            model: || {
                let mut m = holey_model();
                m[2048..3072].copy_from_slice(&fill(500, 1024));
                m
            },
        },
        PathCase {
            name: "mkwrite+writeback+fsync",
            op: |ino| {
                Box::new(move |cx| {
                    Box::pin(async move {
                        let r = paths::page_mkwrite(&cx, ino, 3072, &[9; 100]).await;
                        let r = r.and(paths::writeback(&cx, ino).await);
                        Res::Unit(r.and(paths::fsync(&cx, ino).await))
                    })
                })
            },
            ok: unit_ok,
            model: || {
                let mut m = holey_model();
                m[3072..3172].fill(9);
                m
            },
        },
        PathCase {
            name: "second migrate",
            op: |ino| mig(ino, 3),
            ok: |r| matches!(r, Res::Mig(Ok(0)) | Res::Mig(Err(Error::Invalid(_)))),
            model: holey_model,
        },
    ]
}

#[test]
fn fixed_engine_against_every_path_in_every_single_preemption() {
    for case in path_cases() {
        let mut runs = 0;
        scan(|k| {
            let (fs, ino) = holey(&[]);
            let r = run(fs, preempt(k), vec![mig(ino, 3), (case.op)(ino)]);
            let (name, d) = (case.name, r.decisions);
            assert_eq!((&r.end, r.inversions), (&RunEnd::Done, 0), "{name} k={k}");
            assert!(
                matches!(mig_res(&r), Ok(0) | Err(Error::Invalid(_))),
                "{name} k={k}"
            );
            let t1 = r.res[1].as_ref().expect("T1 finished");
            assert!((case.ok)(t1), "{name} k={k}: {t1:?}");
            let mut fs = remount(r.fs);
            assert!(fs.iget(ino).unwrap().is_extents(), "{name} k={k}");
            let size = fs.inode(ino).raw.i_size;
            assert_eq!(
                fs.read_file(ino, 0, size).unwrap(),
                (case.model)(),
                "{name} k={k}"
            );
            if k % 8 == 0 {
                if let Some((st, out)) = e2fsck(&fs.unmount().unwrap(), "paths") {
                    assert_eq!(st, 0, "{name} k={k}:\n{out}");
                }
            }
            runs += 1;
            d
        });
        assert!(runs > 5, "{}: {runs} schedules", case.name);
    }
}
