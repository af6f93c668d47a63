//! Regression scenarios: `corpus/repros/<bug>-<oracle>.repro` holds one minimized scenario per
//! seeded bug, as `e4fuzz run --bug <bug>` wrote it. Each must replay to a finding with the
//! switches it records (twice, in separate processes, with identical output: determinism),
//! and to no finding at all on the default engine (`--profile fixed`).

use crate::util::*;
use std::path::Path;

#[test]
fn every_seeded_bug_repro_replays_and_passes_on_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join("repros");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "repro"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 14,
        "expected a repro per found seeded bug, got {}",
        files.len()
    );
    for f in files {
        let path = f.to_str().unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let bug = name.split('-').next().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("bugs ") && l.contains(bug)),
            "{name} records bug {bug}"
        );
        let a = e4fuzz(&["repro", path]);
        let b = e4fuzz(&["repro", path]);
        assert_eq!(
            a.status.code(),
            Some(1),
            "{name}: replays to a finding\n{}",
            String::from_utf8_lossy(&a.stdout)
        );
        assert_eq!(
            a.stdout, b.stdout,
            "{name}: the same verdict in two processes"
        );
        let fixed = e4fuzz(&["repro", path, "--profile", "fixed"]);
        assert_eq!(
            fixed.status.code(),
            Some(0),
            "{name}: clean on the default engine\n{}",
            String::from_utf8_lossy(&fixed.stdout)
        );
    }
}

/// `corpus/regressions/*.repro`: scenarios that once gave a finding on the default engine (an
/// engine bug, since fixed); each must now replay clean, the same way twice.
#[test]
fn regressions_replay_clean_on_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join("regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let p = path.to_str().unwrap();
        let a = e4fuzz(&["repro", p]);
        assert_eq!(
            a.status.code(),
            Some(0),
            "{p}: no finding\n{}",
            String::from_utf8_lossy(&a.stdout)
        );
        assert_eq!(a.stdout, e4fuzz(&["repro", p]).stdout, "{p}: deterministic");
        n += 1;
    }
    assert!(
        n >= 2,
        "expected the regression scenarios in {}",
        dir.display()
    );
}
