//! The harness end to end (issue 6): the fixed engine survives generated scenarios, the crash
//! oracles fire on damage planted in images (not on engine switches), the S16 seeded bug is
//! found as stale data, executions are deterministic, and the `run` / `repro` / `minimize`
//! commands keep their contract.

use crate::util::*;
use e4fuzz::dev::{CrashFates, LogOp, Zone};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::harness::campaign::scenario_of;
use e4fuzz::harness::states::{check_state, Checks, StateCtx};
use e4fuzz::harness::workload::{run_workload, Workload};
use e4fuzz::harness::{execute_with, pattern, ExecOpts, FsckScope, Verdict};
use e4fuzz::oracle::crash::check_files;
use e4fuzz::oracle::flags::check_log;
use e4fuzz::profile::{Bug, BugSet};
use e4fuzz::scenario::{FileSetup, Geometry, MigrateTo, Op, Scenario};
use e4fuzz::units::Pblk;
use rand::{Rng, SeedableRng};

fn quick() -> ExecOpts {
    ExecOpts {
        fsck: FsckScope::Off,
        ..ExecOpts::default()
    }
}

/// A small indirect-mapped scenario: f1 set up with 3000 bytes, one thread writing it, fsync.
fn fsync_scenario() -> Scenario {
    Scenario {
        geometry: Geometry {
            extents: false,
            ..Geometry::default()
        },
        setup: vec![FileSetup {
            file: 1,
            indirect: true,
            writes: vec![(0, 3000, 4)],
        }],
        threads: vec![vec![
            Op::Write {
                file: 1,
                off: 5000,
                len: 2500,
                tag: 9,
            },
            Op::Fsync { file: 1 },
        ]],
        ..Scenario::default()
    }
}

/// Run a scenario's workload (it must run).
fn workload(s: &Scenario) -> Workload {
    let mut v = Verdict::default();
    let w = run_workload(s, &mut v).expect("the workload runs");
    assert!(v.is_clean(), "{:?}", v.findings);
    w
}

/// The crash image at the end of the log with every pending write kept, recovered, mounted
/// and unmounted: the image the file oracles judge.
fn recovered(w: &Workload) -> e4fuzz::dev::Disk {
    let mut d = w.dev.crash_image(&CrashFates::AllKept);
    e4fuzz::jbd2::recover(&mut d).unwrap();
    Fs::mount(d, MountOpts::default())
        .unwrap()
        .unmount()
        .unwrap()
}

/// The device block holding logical block `lblk` of `/fN` on `dev`.
fn pblk_of(dev: &e4fuzz::dev::Disk, file: u8, lblk: u64) -> Pblk {
    let mut fs = Fs::mount(dev.clone(), MountOpts { read_only: true }).unwrap();
    let ino = fs.resolve(&format!("/f{file}")).unwrap();
    let bs = u64::from(fs.block_size());
    let data = fs.read_file(ino, lblk * bs, bs).unwrap();
    // Find the block by content among the file's possible homes (the data is unique).
    (0..dev.nr_blocks())
        .map(Pblk)
        .find(|&b| dev.peek_block(b)[..] == data[..])
        .expect("the block is on the device")
}

/// Generated scenarios on the fixed engine, every in-process oracle on every crash state;
/// `faults`: keep the scenarios' fault plans. Panics on the first finding.
fn fixed_campaign(seed: u64, execs: u32, faults: bool) -> (u64, u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut states, mut writes) = (0, 0);
    for i in 0..execs {
        let len = rng.random_range(64..4096);
        let mut input = vec![0u8; len];
        rng.fill(&mut input[..]);
        let mut s = scenario_of(&input, "fixed", BugSet::NONE);
        if !faults {
            s.faults = Default::default();
        }
        let v = execute_with(&s, &ExecOpts::default());
        assert!(
            v.is_clean(),
            "execution {i} found something on the fixed engine:\n{}\n{}",
            s.to_repro(),
            v.trace
        );
        states += v.crash_states;
        writes += v.device_writes;
    }
    (states, writes)
}

/// The fixed engine survives generated scenarios, injected I/O errors included (a metadata
/// read error is recorded with EXT4_ERROR_FS, after which only the data oracles apply).
#[test]
fn fixed_profile_survives_generated_scenarios() {
    let t = std::time::Instant::now();
    let (states, writes) = fixed_campaign(20_260_611, 1500, true);
    // Not hollow: the runs wrote and crashed a lot.
    assert!(states > 5000, "only {states} crash states");
    assert!(writes > 15_000, "only {writes} device writes");
    eprintln!(
        "1500 executions, {states} crash states in {:?}",
        t.elapsed()
    );
}

/// The same without the fault plans.
#[test]
fn fixed_profile_survives_fault_free_scenarios() {
    let (states, _) = fixed_campaign(4, 1000, false);
    assert!(states > 3000, "only {states} crash states");
}

#[test]
fn one_scenario_twice_gives_the_same_verdict_and_trace() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..20 {
        let mut input = vec![0u8; 1500];
        rng.fill(&mut input[..]);
        let s = scenario_of(&input, "fixed", BugSet::of(&[Bug::S16]));
        let (a, b) = (execute_with(&s, &quick()), execute_with(&s, &quick()));
        assert_eq!(a, b);
        assert!(!a.trace.is_empty());
    }
    let s = fsync_scenario();
    let v = execute_with(&s, &quick());
    assert!(v.trace.contains("T0.1  fsync f1"), "{}", v.trace);
    assert!(v.crash_states >= 2);
}

#[test]
fn a_corrupted_data_block_is_data_loss() {
    let w = workload(&fsync_scenario());
    let mut img = recovered(&w);
    let n = w.dev.log().len();
    assert_eq!(check_files(img.clone(), &w.model, n, &[]), vec![]);
    let b = pblk_of(&img, 1, 5);
    let mut data = img.peek_block(b).to_vec();
    data[100] ^= 0x40;
    img.write(b, &data).unwrap();
    let p = check_files(img, &w.model, n, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    // f1 was fsynced at the end: the durable state is required, byte for byte.
    assert_eq!(p[0].oracle, "durability");
    assert!(
        p[0].cause
            .starts_with("f1 block 5 byte 100 after a crash at"),
        "{}",
        p[0].cause
    );
    // Before the fsync ended only versions are judged: the same damage is data loss.
    let mut img = recovered(&w);
    let b = pblk_of(&img, 1, 1);
    let mut data = img.peek_block(b).to_vec();
    data[10] ^= 0x40;
    img.write(b, &data).unwrap();
    let p = check_files(img, &w.model, 1, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].oracle, "data-loss");
    assert!(
        p[0].cause
            .starts_with("f1 block 1 bytes 0..512 after a crash at 1"),
        "{}",
        p[0].cause
    );
}

#[test]
fn poison_in_a_file_block_is_stale_data() {
    let w = workload(&fsync_scenario());
    let mut img = recovered(&w);
    let b = pblk_of(&img, 1, 6);
    let mut data = img.peek_block(b).to_vec();
    data[512..].copy_from_slice(&pattern::poison_block(b.0, 1024)[512..]);
    img.write(b, &data).unwrap();
    let p = check_files(img, &w.model, w.dev.log().len(), &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].oracle, "stale-data");
    assert_eq!(
        p[0].cause,
        format!(
            "f1 block 6 bytes 512..1024: poison of block {} (bytes the file never wrote)",
            b.0
        )
    );
}

#[test]
fn the_migrate_bit_in_a_logged_inode_record_is_flag_on_disk() {
    let w = workload(&fsync_scenario());
    assert_eq!(check_log(w.dev.log(), &w.tables, w.jsb.as_ref()), vec![]);
    // f1's inode record: its inode-table block and offset.
    let mut fs = Fs::mount(w.before.clone(), MountOpts { read_only: true }).unwrap();
    let ino = fs.resolve("/f1").unwrap();
    let (home, off) = fs.inode_location(ino).unwrap();
    // The fsync logged that block to the journal: set 0x00100000 in f1's record of the copy.
    let mut log = w.dev.log().to_vec();
    let mut planted = 0;
    for e in &mut log {
        if let LogOp::Write { data, zone, .. } = &mut e.op {
            let mode = u16::from_le_bytes([data[off], data[off + 1]]);
            if *zone == Zone::Journal && mode == 0o100644 {
                let mut d = data.to_vec();
                d[off + 0x22] |= 0x10; // i_flags (0x20, little-endian) bit 20
                *data = d.into();
                planted += 1;
            }
        }
    }
    assert_eq!(planted, 1, "the fsync logged f1's inode once");
    let p = check_log(&log, &w.tables, w.jsb.as_ref());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].oracle, "flag-on-disk");
    let want = format!("inode {ino} (journal copy of inode-table block {home} at log ");
    assert!(p[0].cause.starts_with(&want), "{}", p[0].cause);
    assert!(
        p[0].cause
            .ends_with("has i_flags 0x00100000: EXT4_VERITY_FL, the old EXT4_EXT_MIGRATE marker"),
        "{}",
        p[0].cause
    );
}

#[test]
fn a_dropped_commit_block_of_an_fsync_is_durability() {
    let w = workload(&fsync_scenario());
    let log = w.dev.log();
    let n = log.len();
    // The fsync's commit block: the last FUA write to the journal.
    let commit = log
        .iter()
        .rposition(|e| {
            matches!(
                e.op,
                LogOp::Write {
                    fua: true,
                    zone: Zone::Journal,
                    ..
                }
            )
        })
        .expect("a commit block");
    // The device as if that one write never happened, everything else kept.
    let mut dropped = w.dev.replay_log(commit);
    for e in &log[commit + 1..] {
        match &e.op {
            LogOp::Write { blk, data, .. } => dropped.write(*blk, data).unwrap(),
            LogOp::Flush => dropped.flush().unwrap(),
        }
    }
    let crash = dropped.crash_image(&CrashFates::AllKept);
    let opts = quick();
    let ctx = StateCtx {
        model: &w.model,
        records: &w.records,
        bugs: w.bugs,
        opts: &opts,
        leak_windows: &[],
        atomic_windows: &[],
    };
    let mut v = Verdict::default();
    check_state(&crash, n, Checks::default(), &ctx, &mut v);
    assert_eq!(v.findings.len(), 1, "{:?}", v.findings);
    let f = &v.findings[0];
    assert_eq!(
        (f.oracle, f.crash_point, f.op_index),
        ("durability", Some(n as u64), Some((0, 1)))
    );
    assert!(
        f.cause.starts_with("f1 has size 3000 after a crash at"),
        "{}",
        f.cause
    );
    // With the commit block, the same state is clean.
    let mut v = Verdict::default();
    check_state(
        &w.dev.crash_image(&CrashFates::AllKept),
        n,
        Checks::default(),
        &ctx,
        &mut v,
    );
    assert!(v.is_clean(), "{:?}", v.findings);
}

/// S16 by hand: a new file's blocks are committed without their data.
fn s16_scenario(bugs: BugSet) -> Scenario {
    Scenario {
        geometry: Geometry {
            extents: false,
            ..Geometry::default()
        },
        bugs,
        threads: vec![vec![
            Op::Create { file: 0 },
            Op::Write {
                file: 0,
                off: 0,
                len: 4096,
                tag: 1,
            },
            Op::Commit,
        ]],
        ..Scenario::default()
    }
}

#[test]
fn s16_exposes_stale_data_and_the_fixed_engine_does_not() {
    let v = execute_with(&s16_scenario(BugSet::of(&[Bug::S16])), &quick());
    assert!(
        v.findings.iter().any(|f| f.oracle == "stale-data"),
        "{:?}\n{}",
        v.findings,
        v.trace
    );
    let v = execute_with(&s16_scenario(BugSet::NONE), &quick());
    assert!(v.is_clean(), "{:?}", v.findings);
}

#[test]
fn a_generated_s16_campaign_finds_stale_data() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for i in 0..3000 {
        let len = rng.random_range(64..4096);
        let mut input = vec![0u8; len];
        rng.fill(&mut input[..]);
        let s = scenario_of(&input, "fixed", BugSet::of(&[Bug::S16]));
        let v = execute_with(&s, &quick());
        if v.findings.iter().any(|f| f.oracle == "stale-data") {
            eprintln!("S16 found as stale-data at execution {i}");
            return;
        }
    }
    panic!("3000 generated S16 executions found no stale data");
}

/// The first generated execution (of at most `max`) in which `oracle` fires with `bug` on.
fn campaign_finds(bug: Bug, oracle: &str, max: u32) -> Option<u32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    (0..max).find(|_| {
        let len = rng.random_range(64..4096);
        let mut input = vec![0u8; len];
        rng.fill(&mut input[..]);
        let mut s = scenario_of(&input, "fixed", BugSet::of(&[bug]));
        s.faults = Default::default();
        let v = execute_with(&s, &quick());
        v.findings.iter().any(|f| f.oracle == oracle)
    })
}

#[test]
fn generated_campaigns_find_the_migrate_bugs() {
    let cases = [
        (Bug::S3, "flag-on-disk"),
        (Bug::S17, "migrate-result"),
        (Bug::S5, "deadlock"),
        (Bug::T4, "deadlock"),
    ];
    for (bug, oracle) in cases {
        let at = campaign_finds(bug, oracle, 3000);
        assert!(at.is_some(), "{bug}: no {oracle} in 3000 executions");
        eprintln!("{bug} found as {oracle} at execution {}", at.unwrap());
    }
}

/// A migration walked while reads of the same file run: with thread v1's marker (S2) the
/// lookups clear it and the swap fails with EAGAIN although nothing was allocated.
fn migrate_with_reads(profile: &str) -> Scenario {
    let read = |off| Op::Read {
        file: 2,
        off,
        len: 100,
    };
    Scenario {
        profile: profile.into(),
        setup: vec![FileSetup {
            file: 2,
            indirect: true,
            writes: vec![
                (0, 4000, 1),
                (300 * 1024, 3000, 2),
                (80_000 * 1024, 1000, 3),
            ],
        }],
        threads: vec![
            vec![Op::Migrate {
                file: 2,
                to: MigrateTo::Extents,
            }],
            vec![read(0), read(300 * 1024), read(0)],
        ],
        schedule: (0..32).collect(),
        ..Scenario::default()
    }
}

#[test]
fn s2_gives_a_spurious_eagain_and_the_merged_patch_does_not() {
    let v = execute_with(&migrate_with_reads("thread-v1"), &quick());
    let f = v.findings.iter().find(|f| f.oracle == "spurious-eagain");
    let f = f.unwrap_or_else(|| panic!("{:?}\n{}", v.findings, v.trace));
    assert_eq!(f.op_index, Some((0, 0)));
    assert!(f
        .cause
        .starts_with("migrate f2 to extents failed with EAGAIN but nothing was allocated"));
    let v = execute_with(&migrate_with_reads("merged-2008"), &quick());
    assert!(v.is_clean(), "{:?}\n{}", v.findings, v.trace);
    assert!(v.trace.contains("migrate f2 to=extents"), "{}", v.trace);
}

fn repro_file(dir: &TempDir, name: &str, s: &Scenario) -> String {
    let p = dir.path(name);
    std::fs::write(&p, s.to_repro()).unwrap();
    p.display().to_string()
}

#[test]
fn repro_exit_codes_and_export() {
    let dir = TempDir::new("repro");
    let bad = repro_file(&dir, "s16.repro", &s16_scenario(BugSet::of(&[Bug::S16])));
    let out = e4fuzz(&["repro", &bad]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("oracle stale-data"), "{text}");
    assert!(text.contains("T0.2  commit"), "{text}");
    // --profile fixed replaces the recorded bugs.
    let out = e4fuzz(&["repro", &bad, "--profile", "fixed"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // --json: one object.
    let out = e4fuzz(&["repro", &bad, "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["files"][0]["findings"][0]["oracle"], "stale-data");
    // Malformed: exit 2, one line.
    let broken = dir.path("broken.repro");
    std::fs::write(&broken, "e4fuzz-repro v1\nthread 0\n  write f9 off=x\n").unwrap();
    let out = e4fuzz(&["repro", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("e4fuzz: "), "{err}");
    let out = e4fuzz(&["repro", "/nonexistent.repro"]);
    assert_eq!(out.status.code(), Some(2));
    // Scenarios too big to hold in memory are refused by name, before anything runs (a 1 TiB
    // image was poisoned block by block until the kernel killed the process; a 4 GB store
    // took 4 GB): one line naming the line at fault, and the path.
    for (text, want) in [
        (
            "geometry block_size=4096 size=1099511627776 journal_blocks=1024\n",
            "line 2: unsupported geometry: image of 1099511627776 bytes",
        ),
        (
            "setup f0 indirect\nthread 0\n  mmap-write f0 off=21 len=4000000000 tag=1\n",
            "line 4: 4000000000 bytes, longer than the image",
        ),
    ] {
        std::fs::write(&broken, format!("e4fuzz-repro v1\n{text}")).unwrap();
        let out = e4fuzz(&["repro", broken.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("broken.repro: ") && err.contains(want),
            "{err}"
        );
    }
    if !have_e2fsprogs("repro_exit_codes_and_export") {
        return;
    }
    let exp = dir.path("export");
    let out = e4fuzz(&["repro", &bad, "--export", exp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    for img in ["before.img", "crash.img", "recovered.img"] {
        let (st, out) = e2fsck(&exp.join(img));
        assert!(st < 8, "e2fsck cannot read {img}: {out}");
    }
    assert_e2fsck_clean(&exp.join("before.img"));
    assert_e2fsck_clean(&exp.join("recovered.img"));
}

#[test]
fn run_and_minimize_commands() {
    let dir = TempDir::new("run");
    let out_dir = dir.path("findings");
    let out = e4fuzz(&[
        "run",
        "--execs",
        "30",
        "--seed",
        "5",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["execs"], 30);
    assert!(j["crash_states"].as_u64().unwrap() >= 30);
    assert!(j["elapsed_s"].as_f64().is_some());
    assert_eq!(j["findings"].as_array().unwrap().len(), 0);
    // --max-findings 1 stops at the first finding, long before the time budget.
    let out = e4fuzz(&[
        "run",
        "--bug",
        "S5",
        "--time",
        "300",
        "--max-findings",
        "1",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["findings"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["findings"][0]["oracle"], "deadlock");
    assert!(j["elapsed_s"].as_f64().unwrap() < 60.0, "{j}");
    for bad in [
        ["--profile", "nope"],
        ["--bug", "S99"],
        ["--max-findings", "0"],
    ] {
        let out = e4fuzz(&["run", "--execs", "1", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
    // minimize keeps the oracle and writes a smaller scenario.
    let mut s = s16_scenario(BugSet::of(&[Bug::S16]));
    s.threads.push(vec![Op::Sync, Op::Writeback]);
    let file = repro_file(&dir, "big.repro", &s);
    let min = dir.path("small.repro");
    let out = e4fuzz(&["minimize", &file, "-o", min.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let small = Scenario::parse_repro(&std::fs::read_to_string(&min).unwrap()).unwrap();
    let ops = |s: &Scenario| s.threads.iter().map(Vec::len).sum::<usize>();
    assert!(ops(&small) < ops(&s), "{}", small.to_repro());
    let v = execute_with(&small, &quick());
    assert!(v.findings.iter().any(|f| f.oracle == "stale-data"));
}
