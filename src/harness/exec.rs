//! [`execute`]: run one scenario to a [`Verdict`].
//!
//! 1. The workload ([`super::workload`]): the template ([`super::template`]) mounted with the
//!    scenario's profile and bugs, the fault plan installed, the threads run under the
//!    scheduler with the kernel's locks; every op recorded and applied to the reference model.
//! 2. The flag scan of every logged write ([`crate::oracle::flags`]).
//! 3. The crash states ([`super::states`]): with `crash.at_write`, the one crash; else up to
//!    [`ExecOpts::max_crash_states`] log indices ([`crash_points`]), each rebuilt with
//!    `replay_log(k)` and given its own fates (`fates`).
//!
//! Panics of the engine are caught per phase (the workload, each crash state) with a panic hook
//! that stays quiet while an execution runs on this thread; they become `panic` findings.

use super::states::{self, Checks, StateCtx};
use super::workload::{run_workload, OpRecord};
use super::{ExecOpts, Finding, FsckScope, Verdict};
use crate::dev::{CrashFates, Disk, LogOp, SplitMix64};
use crate::oracle::flags;
use crate::profile::{BugSet, Profile};
use crate::scenario::repro::op_line;
use crate::scenario::{Op, Scenario};
use crate::units::Pblk;
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The images of one crash state, for `repro --export`.
pub struct Images {
    /// The template, before the workload.
    pub before: Disk,
    /// The crash image (before recovery).
    pub crash: Disk,
    /// After recovery, mount and unmount (or as far as that got).
    pub recovered: Disk,
}

thread_local! {
    /// Whether a panic on this thread belongs to an execution (the hook stays quiet).
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The last caught panic's message and location.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Install (once per process) a panic hook that records the message of panics raised while an
/// execution runs and stays quiet about them; other panics go to the previous hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let loc = info
                    .location()
                    .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string payload)".into());
                let line = format!("{}{loc}", msg.lines().next().unwrap_or(""));
                LAST_PANIC.with(|p| *p.borrow_mut() = line);
            } else {
                prev(info);
            }
        }));
    });
}

/// Run `f`, turning a panic into `Err(message)`.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    let was = QUIET.with(|q| q.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    r.map_err(|_| LAST_PANIC.with(|p| std::mem::take(&mut *p.borrow_mut())))
}

/// Run `s` with the default options ([`ExecOpts::default`]).
pub fn execute(s: &Scenario) -> Verdict {
    execute_with(s, &ExecOpts::default())
}

/// Run `s` with `opts`.
pub fn execute_with(s: &Scenario, opts: &ExecOpts) -> Verdict {
    execute_images(s, opts).0
}

/// Run `s` with `opts`; with [`ExecOpts::keep_images`], also return the images of the first
/// crash state with a finding (else the last one).
pub fn execute_images(s: &Scenario, opts: &ExecOpts) -> (Verdict, Option<Images>) {
    let mut v = Verdict::default();
    let mut trace = String::new();
    let Some(w) = run_workload(s, &mut v) else {
        if v.rejected.is_none() {
            finish_trace(&mut v, opts, trace);
        }
        return (v, None);
    };
    if opts.trace {
        trace_ops(s, &w.records, &mut trace);
        trace_faults(&w.dev, &mut trace);
    }
    v.device_writes = w
        .dev
        .log()
        .iter()
        .filter(|e| matches!(e.op, LogOp::Write { .. }))
        .count() as u64;
    for p in flags::check_log(w.dev.log(), &w.tables, w.jsb.as_ref()) {
        v.push(finding(p.oracle, None, None, p.cause));
    }
    let migrations: Vec<(usize, usize)> = w
        .records
        .iter()
        .filter(|r| matches!(r.op, Op::Migrate { .. }))
        .map(|r| (r.origin.start_log.unwrap_or(0), r.end_log))
        .collect();
    let windows = states::leak_windows(&migrations, w.dev.log());
    let atomic = crate::oracle::atomicity::atomic_windows(&w.records, w.dev.log());
    let ctx = StateCtx {
        model: &w.model,
        records: &w.records,
        bugs: w.bugs,
        opts,
        leak_windows: &windows,
        atomic_windows: &atomic,
    };
    let images = crash_states(s, &w.dev, w.crash_mode, &ctx, &mut v, &mut trace);
    finish_trace(&mut v, opts, trace);
    let images = images.map(|(crash, recovered)| Images {
        before: w.before,
        crash,
        recovered,
    });
    (v, images)
}

fn finish_trace(v: &mut Verdict, opts: &ExecOpts, mut trace: String) {
    if opts.trace {
        for f in &v.findings {
            let _ = writeln!(trace, "FINDING {f}");
        }
        v.trace = trace;
    }
}

/// The engine's bugs: the profile's plus the scenario's (`None`: unknown profile).
pub fn engine_bugs(s: &Scenario) -> Option<BugSet> {
    Profile::by_name(&s.profile).map(|p| p.with_bugs(s.bugs).bugs)
}

pub(crate) fn finding(
    oracle: &'static str,
    op_index: Option<(usize, usize)>,
    crash_point: Option<u64>,
    cause: String,
) -> Finding {
    Finding {
        oracle,
        op_index,
        crash_point,
        cause,
    }
}

fn trace_ops(s: &Scenario, records: &[OpRecord], trace: &mut String) {
    let _ = writeln!(
        trace,
        "profile {} bugs {} threads {} schedule {:?}",
        s.profile,
        if s.bugs.is_empty() {
            "-".to_string()
        } else {
            s.bugs.to_string()
        },
        s.threads.len(),
        s.schedule
    );
    for r in records {
        let op = &s.threads[r.thread][r.index];
        let _ = writeln!(
            trace,
            "  T{}.{:<2} {:<48} log {}..{}  {}",
            r.thread,
            r.index,
            op_line(op),
            r.origin.start_log.unwrap_or(0),
            r.end_log,
            r.result
        );
    }
}

/// The operations the fault plan failed, one line each (`log N`: the device log's length
/// then, as in the op lines).
fn trace_faults(dev: &crate::dev::Disk, trace: &mut String) {
    for e in dev.fault_events() {
        let what = e.blk.map_or("flush".to_string(), |b| {
            format!("{:?} of block {}", e.op, b.0).to_lowercase()
        });
        let _ = writeln!(
            trace,
            "  fault: {what} failed (injected EIO) at log {}",
            e.log
        );
    }
    let more = dev
        .stats()
        .faults
        .saturating_sub(dev.fault_events().len() as u64);
    if more > 0 {
        let _ = writeln!(trace, "  fault: … and {more} more");
    }
}

/// The `kernel` oracle on the kept images of `s` ([`crate::oracle::kernel::check_scenario`]:
/// the kernel's journal replay of the crash state, and each migration alone): every problem
/// becomes a `kernel` finding in `v`. `Err` says why nothing was checked (no loop mounts); a
/// check the e2fsck gate refuses is skipped inside its report, never a finding.
pub fn kernel_checks(
    s: &Scenario,
    img: &Images,
    v: &mut Verdict,
) -> std::result::Result<Vec<crate::oracle::kernel::Check>, String> {
    let checks = crate::oracle::kernel::check_scenario(s, &img.before, &img.crash)?;
    for c in &checks {
        for p in c.outcome.iter().flat_map(|r| &r.problems) {
            v.push(Finding {
                oracle: p.oracle,
                op_index: None,
                crash_point: None,
                cause: format!("{}: {}", c.name, p.cause),
            });
        }
    }
    Ok(checks)
}

/// The log indices checked from a run that ran to its end: all of `0..=n` if there are at most
/// `max`, else `max - 1` drawn from `seed` plus `n`.
pub fn crash_points(n: usize, seed: u64, max: usize) -> Vec<usize> {
    if n < max {
        return (0..=n).collect();
    }
    let mut rng = SplitMix64::new(seed ^ 0x5EED_C4A5_0000_0000);
    let mut set = std::collections::BTreeSet::from([n]);
    while set.len() < max.max(1) {
        set.insert((rng.next_u64() % (n as u64 + 1)) as usize);
    }
    set.into_iter().collect()
}

/// The crash fates of the state at log index `k` (`k == n`, the end, uses the plan's seed).
fn fates(s: &Scenario, k: usize, n: usize) -> CrashFates {
    let c = &s.crash;
    let seed = if k == n {
        c.fates_seed
    } else {
        SplitMix64::new(c.fates_seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
    };
    CrashFates::Seeded {
        seed,
        keep_per_mille: c.keep_per_mille,
        tear_per_mille: c.tear_per_mille,
    }
}

fn crash_states(
    s: &Scenario,
    dev: &Disk,
    crash_mode: bool,
    ctx: &StateCtx<'_>,
    v: &mut Verdict,
    trace: &mut String,
) -> Option<(Disk, Disk)> {
    let n = dev.log().len();
    let points = if crash_mode {
        vec![n]
    } else {
        crash_points(n, s.crash.fates_seed, ctx.opts.max_crash_states)
    };
    // The blocks the workload wrote: where two crash images can differ.
    let written: Vec<Pblk> = dev
        .written_blocks()
        .map(|(b, _)| b)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut cache = states::StateCache::new();
    let mut images = None;
    // The device replayed to the current point, advanced from point to point (they ascend).
    let mut replayed: Option<Disk> = None;
    for (idx, &k) in points.iter().enumerate() {
        let crash = if k == n {
            dev.crash_image(&fates(s, k, n))
        } else {
            let at = replayed.get_or_insert_with(|| dev.replay_log(k));
            at.replay_log_to(dev, k);
            at.crash_image(&fates(s, k, n))
        };
        let last = idx + 1 == points.len();
        let checks = Checks {
            fsck: match ctx.opts.fsck {
                FsckScope::Every => true,
                FsckScope::Last => last,
                FsckScope::Off => false,
            },
            e2fsck: last && ctx.opts.e2fsck_sample,
        };
        let before = v.findings.len();
        let fp = states::fingerprint(&crash, &written);
        let out = states::check_state_cached(&crash, Some(fp), k, checks, ctx, v, &mut cache);
        v.crash_states += 1;
        if ctx.opts.trace {
            let _ = writeln!(trace, "crash at log {k}/{n}: {}", out.summary);
        }
        let first_hit = v.findings.len() > before && images.is_none();
        if ctx.opts.keep_images && (first_hit || idx + 1 == points.len()) && images.is_none() {
            images = Some((crash, out.image.unwrap_or_else(|| dev.clone())));
        }
    }
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_are_bounded_and_end_at_the_end() {
        assert_eq!(crash_points(3, 1, 16), vec![0, 1, 2, 3]);
        let p = crash_points(1000, 7, 16);
        assert_eq!(p.len(), 16);
        assert_eq!(*p.last().unwrap(), 1000);
        assert_eq!(p, crash_points(1000, 7, 16));
        assert_ne!(p, crash_points(1000, 8, 16));
    }

    #[test]
    fn a_panic_is_caught_quietly_with_its_message() {
        let r: Result<(), String> = guarded(|| panic!("boom {}", 7));
        let msg = r.unwrap_err();
        assert!(msg.starts_with("boom 7 at src/harness/exec.rs:"), "{msg}");
        assert_eq!(guarded(|| 5), Ok(5));
    }

    /// S18 is found only by reordering: its repro fires with the recorded fates (some pending
    /// writes lost, the new journal tail kept), and is clean with every pending write kept
    /// (the prefix crash model, `run --crash-model prefix`) and on `fixed`.
    #[test]
    fn s18_needs_a_crash_state_that_reorders_writes() {
        let path = format!(
            "{}/corpus/repros/S18-fsck.repro",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).expect("S18-fsck.repro");
        let s = Scenario::parse_repro(&text).expect("parses");
        assert!(s.crash.keep_per_mille < 1000);
        let v = super::super::execute(&s);
        assert!(v.findings.iter().any(|f| f.oracle == "fsck"), "{}", v.trace);
        let mut prefix = s.clone();
        crate::harness::campaign::CrashModel::Prefix.apply(&mut prefix);
        let v = super::super::execute(&prefix);
        assert!(v.is_clean(), "{}", v.trace);
        let mut fixed = s;
        fixed.bugs = crate::profile::BugSet::NONE;
        assert!(super::super::execute(&fixed).is_clean());
    }

    /// The trace names each failed operation: U2's punch fails its first read of f4's IND
    /// block (1579) under a `first-each` rule.
    #[test]
    fn the_trace_lists_the_injected_faults() {
        let path = format!("{}/corpus/repros/U2-data.repro", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("U2-data.repro");
        let text = text.replace("when=block:1579 zone=any", "when=first-each zone=tree-meta");
        let s = Scenario::parse_repro(&text).expect("parses");
        let v = super::super::execute(&s);
        assert!(!v.is_clean(), "{}", v.trace);
        let line = "  fault: read of block 1579 failed (injected EIO) at log 0\n";
        assert!(v.trace.contains(line), "{}", v.trace);
    }
}
