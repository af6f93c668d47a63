//! Time-to-find per seeded bug (a benchmark, not a test):
//! `cargo run --release --example time_to_find -- [SEEDS] [BUDGET_S] [BUG...]`
//! (default 5 seeds, 120 s, every seeded bug; `CRASH_MODEL=prefix` for
//! `run --crash-model prefix`).
//!
//! For each bug and seed `0..SEEDS` it runs the campaign of `e4fuzz run --bug ID --seed S
//! --time BUDGET` (one job) until the first finding whose oracle is in the bug's expected
//! class ([`e4fuzz::profile::Bug::expects`]; findings of other classes are counted but do not
//! stop it), and prints the time to it, the oracle, and the median over the seeds. A seed that
//! finds nothing in the budget counts as "none" (and the median is then a lower bound).

use e4fuzz::harness::campaign::{CampaignOpts, CrashModel, Found, Progress};
use e4fuzz::harness::run_campaign;
use e4fuzz::profile::{Bug, BugSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Records the first in-class finding and stops the campaign there.
struct FirstInClass {
    bug: Bug,
    hit: Mutex<Option<(f64, String)>>,
    done: AtomicBool,
}

impl Progress for FirstInClass {
    fn update(&self, _: u64, _: u64, _: usize, _: Duration) {}
    fn should_stop(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
    fn found(&self, f: &Found) {
        if self.bug.expects(f.finding.oracle) && !self.done.swap(true, Ordering::Relaxed) {
            *self.hit.lock().unwrap() = Some((f.time_s, f.finding.oracle.to_string()));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let budget: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(120.0);
    let bugs: Vec<Bug> = match args.get(2..) {
        Some(ids) if !ids.is_empty() => ids.iter().filter_map(|i| Bug::parse(i)).collect(),
        _ => Bug::ALL.to_vec(),
    };
    let out = std::env::temp_dir().join(format!("e4fuzz-ttf-{}", std::process::id()));
    println!("bug   expected                 median_s  per seed (s, oracle)");
    for bug in bugs {
        let mut times = Vec::new();
        let mut cells = Vec::new();
        for seed in 0..seeds {
            let (t, cell) = one(bug, seed, budget, &out);
            times.push(t.unwrap_or(f64::INFINITY));
            cells.push(cell);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let median = match median.is_finite() {
            true => format!("{median:.1}"),
            false => format!(">{budget}"),
        };
        let expected = bug.info().oracles.join(",");
        println!(
            "{:<5} {expected:<24} {median:>8}  {}",
            bug.id(),
            cells.join("  ")
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// `CRASH_MODEL=prefix` runs the campaigns with `run --crash-model prefix`.
fn crash_model() -> CrashModel {
    match std::env::var("CRASH_MODEL").as_deref() {
        Ok("prefix") => CrashModel::Prefix,
        Ok("reorder") | Err(_) => CrashModel::Reorder,
        Ok(other) => panic!("CRASH_MODEL is prefix or reorder, not {other:?}"),
    }
}

/// One campaign: the time to the first in-class finding and a table cell.
fn one(bug: Bug, seed: u64, budget: f64, out: &std::path::Path) -> (Option<f64>, String) {
    let p = FirstInClass {
        bug,
        hit: Mutex::new(None),
        done: AtomicBool::new(false),
    };
    let opts = CampaignOpts {
        profile: "fixed".into(),
        bugs: BugSet::of(&[bug]),
        time: Some(Duration::from_secs_f64(budget)),
        execs: None,
        seed,
        jobs: 1,
        out: out.join(format!("{}-{seed}", bug.id())),
        e2fsck_sample: None,
        kernel_sample: None,
        max_findings: None,
        crash_model: crash_model(),
    };
    run_campaign(&opts, &p).expect("campaign");
    let first = p.hit.lock().unwrap().clone();
    match first {
        Some((t, oracle)) => (Some(t), format!("{t:.1} {oracle}")),
        None => (None, "none".into()),
    }
}
