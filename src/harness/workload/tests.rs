//! Tests of the workload runner (`super`).

use super::*;

#[test]
fn classify_separates_rejections_from_failures() {
    assert_eq!(classify(&Error::TooBig, false), Outcome::Rejected);
    assert_eq!(classify(&Error::Aborted, true), Outcome::Rejected);
    assert_eq!(classify(&Error::Aborted, false), Outcome::Failed);
    assert_eq!(classify(&Error::NoSpace, false), Outcome::Failed);
}

#[test]
fn migrate_results_are_judged_against_the_inode() {
    let f = |extents, sectors| MigrateFacts { extents, sectors };
    let judge = |r: Result<OpValue>, b, a| {
        judge_migrate(2, MigrateTo::Extents, &r, (b, a), (0, 1)).map(|f| (f.oracle, f.cause))
    };
    assert_eq!(judge(Ok(OpValue::Ret(0)), f(false, 8), f(true, 8)), None);
    assert_eq!(
        judge(Ok(OpValue::Ret(0)), f(false, 8), f(false, 8)),
        Some((
            "migrate-result",
            "migrate f2 to extents returned 0 but the inode did not change format".into()
        ))
    );
    assert_eq!(judge(Err(Error::Again), f(false, 8), f(false, 10)), None);
    assert_eq!(
        judge(Err(Error::Again), f(false, 8), f(false, 8))
            .unwrap()
            .0,
        "spurious-eagain"
    );
    assert_eq!(
        judge(Err(Error::Again), f(false, 8), f(true, 10))
            .unwrap()
            .0,
        "migrate-result"
    );
    // An I/O error after the swap leaves the inode converted, as in the kernel.
    let io = Error::host("x");
    assert_eq!(judge(Err(io), f(false, 8), f(true, 8)), None);
}

#[test]
fn migrate_runs_with_locks_and_keeps_the_content() {
    use crate::scenario::{FileSetup, Geometry};
    let s = Scenario {
        geometry: Geometry {
            block_size: 1024,
            ..Geometry::default()
        },
        setup: vec![FileSetup {
            file: 2,
            indirect: true,
            writes: vec![(0, 20_000, 3)],
        }],
        threads: vec![
            vec![Op::Migrate {
                file: 2,
                to: MigrateTo::Extents,
            }],
            vec![Op::Read {
                file: 2,
                off: 0,
                len: 20_000,
            }],
        ],
        schedule: vec![0, 1, 0, 1, 1, 0, 0, 1],
        ..Scenario::default()
    };
    let mut v = Verdict::default();
    let w = run_workload(&s, &mut v).unwrap();
    assert!(v.is_clean(), "{:?}", v.findings);
    let migrate = w.records.iter().find(|r| r.thread == 0).unwrap();
    assert_eq!(migrate.result, "ok, returned 0");
    let read = w.records.iter().find(|r| r.thread == 1).unwrap();
    assert_eq!(read.result, "ok, 20000 bytes");
}
