//! Tests of delta debugging (`super`): the candidates a pass makes (distinct, never undoing
//! each other, cuts that keep the other threads' picks), fault pinning and the two larger
//! detours (a concurrent commit, one thread).

use super::*;
use crate::scenario::FileSetup;

#[test]
fn candidates_are_all_different_reductions() {
    let s = Scenario {
        setup: vec![FileSetup {
            file: 0,
            indirect: true,
            writes: vec![(1030, 100, 1)],
        }],
        threads: vec![
            vec![Op::Sync, Op::Commit, Op::Writeback],
            vec![Op::Fsync { file: 0 }],
        ],
        schedule: vec![1, 0, 1, 1],
        ..Scenario::default()
    };
    let c = candidates(&s, &Facts::default());
    assert!(c
        .iter()
        .any(|c| c.threads.len() == 1 && c.threads[0].len() == 1));
    assert!(c.iter().any(|c| c.threads[0] == vec![Op::Writeback]));
    assert!(c.iter().any(|c| c.setup.is_empty()));
    assert!(c
        .iter()
        .any(|c| c.setup.first().and_then(|f| f.writes.first()) == Some(&(1024, 100, 1))));
    assert!(c.iter().any(|c| c.schedule.is_empty()));
    assert!(
        c.iter().any(|c| c.schedule == [0, 1, 1]),
        "one decision dropped"
    );
    assert!(
        c.iter().any(|c| c.schedule == [1, 0, 0, 1]),
        "one decision set to 0"
    );
    assert!(c.iter().any(|c| c.crash.keep_per_mille == 1000));
    assert_eq!(
        shrink_op(
            &Op::Punch {
                file: 1,
                off: 1500,
                len: 10
            },
            1024
        ),
        vec![
            Op::Punch {
                file: 1,
                off: 1500,
                len: 5
            },
            Op::Punch {
                file: 1,
                off: 1024,
                len: 10
            }
        ]
    );
}

#[test]
fn reductions_never_undo_each_other() {
    let mut s = Scenario {
        threads: vec![
            vec![Op::Create { file: 3 }, Op::Fsync { file: 0 }],
            vec![Op::Unlink { file: 3 }, Op::Sync],
        ],
        ..Scenario::default()
    };
    s.crash.fates_seed = 9;
    s.crash.tear_per_mille = 100;
    let mut frontier = vec![s];
    for _ in 0..3 {
        let mut next = Vec::new();
        for a in &frontier {
            for b in candidates(a, &Facts::default()) {
                let back = candidates(&b, &Facts::default());
                assert!(!back.contains(a), "{b:?} undoes to {a:?}");
                next.push(b);
            }
        }
        next.truncate(200);
        frontier = next;
    }
    let mut settled = Scenario::default();
    settled.crash.fates_seed = 0;
    settled.crash.keep_per_mille = 1000;
    settled.crash.tear_per_mille = 0;
    let mut out = Vec::new();
    simplify_fates(&settled, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

/// Thread 1 has no ops left: it only ever took the first decision. Without it, the
/// decisions that had it among their candidates are re-ranked, so every other decision
/// picks the same thread as before.
#[test]
fn dropping_a_thread_keeps_the_picks_of_the_others() {
    let s = Scenario {
        threads: vec![vec![Op::Sync], vec![], vec![Op::Commit, Op::Sync]],
        schedule: vec![7, 9, 4, 5, 33, 2],
        ..Scenario::default()
    };
    let facts = Facts {
        owners: vec![(1, 0), (2, 0), (0, 0), (2, 1), (0, 0)],
        runnable: vec![0b111, 0b101, 0b111, 0b110, 0b101],
        ..Facts::default()
    };
    let mut out = Vec::new();
    let mut c = s.clone();
    c.threads.remove(1);
    push_cut(&s, &facts, c.clone(), &[1], |_, _| false, &mut out);
    // Byte 0 picked thread 1: gone. Byte 1 chose among 0 and 2 already: kept. Byte 2
    // picked thread 0 among three: rank 0 of the two left. Byte 3 has one candidate left:
    // forced. Byte 4 kept; byte 5 was never consumed.
    assert_eq!(out[0].schedule, [9, 0, 33, 2]);
    assert_eq!(out[1], c);
}

#[test]
fn a_file_is_dropped_from_every_thread_at_once() {
    let s = Scenario {
        threads: vec![
            vec![Op::Create { file: 3 }, Op::Fsync { file: 0 }],
            vec![Op::Unlink { file: 3 }, Op::Sync],
        ],
        ..Scenario::default()
    };
    let mut out = Vec::new();
    drop_files(&s, &Facts::default(), &mut out);
    let want = vec![vec![Op::Fsync { file: 0 }], vec![Op::Sync]];
    assert!(out.iter().any(|c| c.threads == want), "{out:?}");
}

#[test]
fn a_cut_drops_exactly_the_bytes_of_the_dropped_ops() {
    let s = Scenario {
        threads: vec![vec![Op::Sync, Op::Commit], vec![Op::Writeback]],
        schedule: vec![10, 11, 12, 13, 14, 15],
        ..Scenario::default()
    };
    // Bytes 0..5 were consumed by T0.0, T1.0, T0.1, T0.1, T1.0; byte 5 was left over.
    let facts = Facts {
        owners: vec![(0, 0), (1, 0), (0, 1), (0, 1), (1, 0)],
        runnable: vec![0b11; 5],
        ..Facts::default()
    };
    let mut out = Vec::new();
    let mut c = s.clone();
    c.threads[0].remove(1);
    push_cut(
        &s,
        &facts,
        c.clone(),
        &[],
        |t, i| (t, i) == (0, 1),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].schedule, [10, 11, 14, 15]);
    assert_eq!(out[0].threads, c.threads);
    assert_eq!(out[1], c);
    // Nothing owned: only the plain candidate.
    out.clear();
    push_cut(&s, &facts, c.clone(), &[], |t, _| t == 7, &mut out);
    assert_eq!(out, [c]);
    // With the owners of a real run, dropping a thread drops the bytes it used.
    let owners = facts_of(&Scenario {
        setup: vec![crate::scenario::FileSetup {
            file: 0,
            indirect: false,
            writes: vec![(0, 5000, 1)],
        }],
        threads: vec![
            vec![Op::Fsync { file: 0 }],
            vec![Op::Sync, Op::Fiemap { file: 0 }],
        ],
        schedule: (0..64).map(|i| i % 2).collect(),
        ..Scenario::default()
    })
    .owners;
    assert!(owners.iter().any(|o| o.0 == 0) && owners.iter().any(|o| o.0 == 1));
    assert!(owners.iter().all(|&(t, i)| i < [1, 2][t]), "{owners:?}");
}

/// U2 under a `first-each` fault: a read of f3's DIND range fails first (f3's tree blocks),
/// then the punch's first read of f4's IND block (1579) fails, and ext4_find_shared()
/// frees lblk 129. The minimizer pins the rule to 1579 and drops the read.
#[test]
fn a_first_each_fault_is_pinned_to_the_block_that_matters() {
    let s = Scenario::parse_repro(
        "e4fuzz-repro v1
profile fixed
bugs U2
geometry block_size=1024 size=16777216 extents=1 metadata_csum=1 journal_blocks=1024
setup f3 indirect write=7819+3945:101 write=7273472+3199:208
setup f4 indirect write=0+3044:94 write=9122053120+2977:7 write=132096+1:72
thread 0
  read f3 off=7273472 len=100
  punch f4 off=133120 len=196999
  fsync f4
schedule -
crash at_write=none seed=0 keep=0 tear=0
fault op=read when=first-each zone=tree-meta sticky=0
",
    )
    .unwrap();
    let facts = facts_of(&s);
    let failed = &facts.fault_blocks[0];
    assert!(failed.len() >= 2, "{failed:?}");
    assert_eq!(failed.last(), Some(&crate::units::Pblk(1579)), "{failed:?}");
    let m = minimize(&s, &MinimizeOpts::default()).unwrap();
    assert!(matches!(m.oracle, "durability" | "data-loss"), "{m:?}");
    let rule = m.scenario.faults.rules[0];
    assert_eq!(
        rule.when,
        crate::dev::FaultWhen::Block(crate::units::Pblk(1579))
    );
    assert!(!rule.sticky);
    let ops: usize = m.scenario.threads.iter().map(Vec::len).sum();
    assert!(ops <= 2, "{m:?}");
}

/// S17 reports a migration that failed (an injected read error) as a success. The fault
/// fails the 15th read, which falls inside the migration only because of the reads of the
/// ops before it: cutting any of them moves the fault. Pinned to the block it failed
/// (`block:1560`), the scenario loses a thread, three ops and a setup file.
#[test]
fn a_counted_fault_is_pinned_to_its_block_so_ops_can_go() {
    let s = Scenario::parse_repro(
        "e4fuzz-repro v1
profile fixed
bugs S17
geometry block_size=1024 size=16777216 extents=1 metadata_csum=1 journal_blocks=1024
setup f0 indirect write=66580480+1:12 write=129024+1:234 write=17247250432+1:169
setup f3 indirect write=0+5000:7 write=300000+1:9
thread 0
  read f3 off=0 len=5000
  write f3 off=400000 len=3000 tag=5
  migrate f0 to=extents
thread 1
  fiemap f3
schedule 1 0 1 1 0
crash at_write=none seed=0 keep=0 tear=0
fault op=read when=nth:15 zone=any sticky=1
",
    )
    .unwrap();
    let facts = facts_of(&s);
    assert_eq!(facts.fault_blocks, [vec![crate::units::Pblk(1560)]]);
    let pinned = candidates(&s, &facts).remove(0);
    assert_eq!(
        pinned.faults.rules[0].when,
        crate::dev::FaultWhen::Block(crate::units::Pblk(1560))
    );
    let m = minimize(&s, &MinimizeOpts::default()).unwrap();
    assert_eq!(m.oracle, "migrate-result");
    assert_eq!(m.scenario.faults.rules, pinned.faults.rules);
    let ops: usize = m.scenario.threads.iter().map(Vec::len).sum();
    assert_eq!(
        (m.scenario.threads.len(), ops, m.scenario.setup.len()),
        (1, 1, 1),
        "{m:?}"
    );
}

/// S6 needs a commit in the middle of the migration's walk, with the crash after it. Here
/// that commit is an `fsync` of a file the other thread created and wrote for it, so no
/// cut can remove the create or the write without losing the fsync (and the finding). The
/// minimizer adds a thread that commits inside the migration, and all three go.
#[test]
fn a_concurrent_commit_frees_the_ops_that_forced_one() {
    let s = Scenario::parse_repro(
        "e4fuzz-repro v1
profile fixed
bugs S6
geometry block_size=2048 size=16777216 extents=1 metadata_csum=0 journal_blocks=1024
setup f5 indirect write=0+1:42 write=18432+1:166 write=2048+1:173 write=22528+4061:85
thread 0
  create f1
  write f1 off=0 len=5000 tag=1
  fsync f1
thread 1
  migrate f5 to=extents
schedule 0*42 1*40 0*65
crash at_write=none seed=0 keep=0 tear=0
",
    )
    .unwrap();
    let m = minimize(&s, &MinimizeOpts::default()).unwrap();
    assert_eq!(m.oracle, "fsck");
    assert!(m.verdict.findings.iter().any(|f| f.oracle == "fsck"));
    let ops: usize = m.scenario.threads.iter().map(Vec::len).sum();
    assert!(ops <= 2, "{ops} ops left: {m:?}");
    assert!(m
        .scenario
        .threads
        .iter()
        .flatten()
        .any(|op| *op == Op::Commit));
    assert!(weight(&m.scenario) < weight(&s));
}

#[test]
fn a_run_of_one_op_at_a_time_is_serialized_into_one_thread() {
    let s = Scenario::parse_repro(
        "e4fuzz-repro v1
profile fixed
bugs -
geometry block_size=4096 size=16777216 extents=1 metadata_csum=0 journal_blocks=1024
setup f0 indirect write=0+1:1
thread 0
  write f0 off=8192 len=1 tag=2
thread 1
  create f1
  write f1 off=0 len=1 tag=3
schedule 1
",
    )
    .unwrap();
    let facts = facts_of(&s);
    assert!(facts.serial, "thread 1 runs to its end, then thread 0");
    assert_eq!(facts.order.as_deref(), Some(&[(1, 0), (1, 1), (0, 0)][..]));
    let one = serialized(&s, facts.order.as_deref()).unwrap();
    assert!(candidates(&s, &facts).contains(&one));
    let ops: Vec<String> = one.threads[0].iter().map(|op| format!("{op:?}")).collect();
    assert_eq!(ops.len(), 3);
    assert!(
        ops[0].starts_with("Create") && ops[2].starts_with("Write"),
        "{ops:?}"
    );
    assert!(one.schedule.is_empty());
    // Interleaved ops are not serial.
    let mut mixed = s.clone();
    mixed.schedule = vec![1, 0, 1, 0, 1, 0];
    assert!(!facts_of(&mixed).serial);
}
