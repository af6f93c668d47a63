//! [`execute`]: run one scenario to a [`Verdict`].
//!
//! 1. The template ([`super::template`]) is cloned and mounted with the scenario's profile and
//!    bugs (`fs.bugs`); the log is cleared and the fault plan installed, so log indices, write
//!    counts and fault counters all start with the workload.
//! 2. The workload: one thread per scenario thread under [`Sched`] with the scenario's
//!    schedule. Each thread, per op, hits the yield point `"op"` and then runs the whole op on
//!    the engine inside `cx.with(..)`: interleaving at op granularity. [`dispatch`] is the one
//!    place that maps an [`Op`] to engine calls (to be replaced by `crate::ops`' async ops with
//!    the kernel's locks). Every op is recorded (thread, index, result, device log range) and
//!    applied to the reference model; a live `read()` is compared with the model at once.
//!    A thread stops when the device has crashed (`crash.at_write`).
//! 3. The crash states ([`super::states`]), then the flag scan of every logged write.
//!
//! Panics of the engine are caught per phase (the workload, each crash state) with a panic hook
//! that stays quiet while an execution runs on this thread; they become `panic` findings.

use super::states::{self, Checks, StateCtx};
use super::{pattern, template, ExecOpts, Finding, FsckScope, Verdict};
use crate::dev::{CrashFates, Disk, LogOp, SplitMix64, DETAIL_INJECTED};
use crate::error::{Error, IoOp};
use crate::format::jbd2::JournalSuperblock;
use crate::fs::map::MapFlags;
use crate::fs::{Fs, MountOpts};
use crate::oracle::flags::{self, InodeTables};
use crate::oracle::model::{Model, Origin, Outcome};
use crate::profile::{BugSet, Profile};
use crate::scenario::repro::op_line;
use crate::scenario::{gen, Op, Scenario};
use crate::sched::{RunEnd, Sched, Schedule};
use crate::units::{Ino, Lblk};
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

/// One op as it ran.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// Thread.
    pub thread: usize,
    /// Index in the thread.
    pub index: usize,
    /// Model stamp (start log index and run order).
    pub origin: Origin,
    /// Device log index at its end.
    pub end_log: usize,
    /// What it returned, one line.
    pub result: String,
}

/// The shared state of the workload's threads.
struct World {
    fs: Fs,
    model: Model,
    records: Vec<OpRecord>,
    live: Vec<Finding>,
}

thread_local! {
    /// Whether a panic on this thread belongs to an execution (the hook stays quiet).
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The last caught panic's message and location.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
    /// The op running on this thread, for attributing a panic.
    static CURRENT_OP: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
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

/// A workload that ran: the device after its last op (not unmounted: the crash comes next)
/// and what the oracles need to judge it.
pub struct Workload {
    /// The template the workload started from.
    pub before: Disk,
    /// The device after the workload, its log holding every write of the workload.
    pub dev: Disk,
    /// The reference model after the workload.
    pub model: Model,
    /// The ops as they ran.
    pub records: Vec<OpRecord>,
    /// The engine's seeded bugs.
    pub bugs: BugSet,
    /// Where the inode tables are (for the flag scan).
    pub tables: InodeTables,
    /// The journal superblock (for the flag scan).
    pub jsb: Option<JournalSuperblock>,
    /// Whether the device crashed (or was planned to) at a write.
    pub crash_mode: bool,
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
    let ctx = StateCtx {
        model: &w.model,
        records: &w.records,
        bugs: w.bugs,
        opts,
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

/// Build the template, mount it, install the fault plan and run the threads. `None` if the
/// scenario cannot run ([`Verdict::rejected`] says why) or the run ended in a panic or deadlock
/// (a finding in `v`). Findings of the live run (reads against the model) go to `v`.
pub fn run_workload(s: &Scenario, v: &mut Verdict) -> Option<Workload> {
    let reject = |v: &mut Verdict, why: String| {
        v.trace = format!("scenario rejected: {why}\n");
        v.rejected = Some(why);
    };
    let Some(bugs) = engine_bugs(s) else {
        reject(v, format!("unknown profile {:?}", s.profile));
        return None;
    };
    if let Some(p) = gen::geometry_problem(&s.geometry) {
        reject(v, format!("geometry: {p}"));
        return None;
    }
    let before = match guarded(|| template::template(&s.geometry, &s.setup)) {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            reject(v, format!("setup failed: {e}"));
            return None;
        }
        Err(p) => {
            v.push(finding(
                "panic",
                None,
                None,
                format!("making the setup files: {p}"),
            ));
            return None;
        }
    };
    let mut fs = match guarded(|| Fs::mount(before.clone(), MountOpts::default())) {
        Ok(Ok(fs)) => fs,
        Ok(Err(e)) => {
            reject(v, format!("mounting the template: {e}"));
            return None;
        }
        Err(p) => {
            let cause = format!("mounting the template: {p}");
            v.push(finding("panic", None, None, cause));
            return None;
        }
    };
    fs.bugs = bugs;
    fs.dev.clear_log();
    let mut plan = s.faults.clone();
    plan.crash_at_write = match (plan.crash_at_write, s.crash.at_write) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let crash_mode = plan.crash_at_write.is_some();
    fs.dev.set_fault_plan(plan);
    let tables = InodeTables::new(&fs.sb, &fs.gds);
    let jsb = fs.journal.as_ref().map(|j| j.jsb.clone());
    let world = World {
        model: Model::new(s.geometry.block_size, &s.setup),
        fs,
        records: Vec::new(),
        live: Vec::new(),
    };
    let world = workload(s, world, v)?;
    for f in world.live {
        v.push(f);
    }
    Some(Workload {
        before,
        dev: world.fs.dev,
        model: world.model,
        records: world.records,
        bugs,
        tables,
        jsb,
        crash_mode,
    })
}

/// Run the threads. `None` after a panic or a scheduler finding that leaves no state to check.
fn workload(s: &Scenario, world: World, v: &mut Verdict) -> Option<World> {
    let mut sched: Sched<'_, World, ()> = Sched::new(Schedule::new(s.schedule.clone()), world);
    for (t, ops) in s.threads.iter().enumerate() {
        let cx = sched.cx();
        sched.spawn(format!("T{t}"), async move {
            for (i, op) in ops.iter().enumerate() {
                cx.yield_point("op").await;
                if !cx.with(|w| w.step(t, i, op)) {
                    break;
                }
            }
        });
    }
    CURRENT_OP.with(|c| c.set(None));
    let outcome = match guarded(|| sched.run()) {
        Ok(o) => o,
        Err(msg) => {
            let at = CURRENT_OP.with(Cell::get);
            v.push(finding("panic", at, None, msg));
            // The threads' futures may hold guards of a half-run op: drop them quietly.
            let _ = guarded(move || drop(sched));
            return None;
        }
    };
    for inv in &outcome.inversions {
        v.push(finding(
            "deadlock",
            None,
            None,
            format!("lock-order inversion: {inv}"),
        ));
    }
    if let RunEnd::Deadlock { .. } = &outcome.end {
        v.push(finding("deadlock", None, None, outcome.end.to_string()));
        let _ = guarded(move || drop(sched));
        return None;
    }
    guarded(move || sched.into_state()).ok()
}

impl World {
    /// Run op `i` of thread `t`; false when the thread must stop (the device crashed).
    fn step(&mut self, t: usize, i: usize, op: &Op) -> bool {
        if self.fs.dev.is_dead() {
            return false;
        }
        CURRENT_OP.with(|c| c.set(Some((t, i))));
        let start_log = self.fs.dev.log().len();
        let aborted = self.fs.aborted;
        let origin = self.model.next_origin(start_log);
        let res = dispatch(&mut self.fs, op);
        if let Some(Err(Error::Io(e))) = &res {
            if e.op == IoOp::Write && e.detail == DETAIL_INJECTED {
                self.model.note_failed_write(e.block.0);
            }
        }
        let end_log = self.fs.dev.log().len();
        let outcome = match &res {
            Some(Ok(_)) => Outcome::Ok,
            Some(Err(e)) => classify(e, aborted),
            None => Outcome::Rejected,
        };
        if let (Op::Read { file, off, len }, Some(r)) = (op, &res) {
            // A read that failed for another reason than a missing file says nothing.
            let judged = !matches!(r, Err(e) if !matches!(e, Error::NotFound(_)));
            let got = r.as_ref().ok().map(Vec::as_slice);
            let f = judged
                .then(|| self.check_read(*file, *off, u64::from(*len), got, (t, i)))
                .flatten();
            self.live.extend(f);
        }
        self.model.apply(op, origin, end_log, outcome);
        self.records.push(OpRecord {
            thread: t,
            index: i,
            origin,
            end_log,
            result: describe_result(op, &res),
        });
        CURRENT_OP.with(|c| c.set(None));
        !self.fs.dev.is_dead()
    }

    /// Compare a live `read()` (`got`: `None` if it failed) with the model.
    fn check_read(
        &self,
        file: u8,
        off: u64,
        len: u64,
        got: Option<&[u8]>,
        at: (usize, usize),
    ) -> Option<Finding> {
        if self.model.is_tainted(file) {
            return None;
        }
        let want = self.model.expect_read(file, off, len);
        let cause = match (want, got) {
            (None, None) => return None,
            (Some(_), None) => format!("live read of f{file}: no such file, but the model has it"),
            (None, Some(_)) => {
                format!("live read of f{file} succeeded but the model has no f{file}")
            }
            (Some(w), Some(g)) if w.len() != g.len() => format!(
                "live read of f{file} at {off} returned {} bytes, the model says {}",
                g.len(),
                w.len()
            ),
            (Some(w), Some(g)) => {
                let i = w.iter().zip(g).position(|(a, b)| a != b)?;
                let bs = u64::from(self.model.block_size());
                let pos = off + i as u64;
                // The word holding the byte (clipped to the read), described block-relative.
                let ws = (pos - pos % 8).max(off);
                let (s, inblk) = ((ws - off) as usize, ws % bs);
                let e = (s + 16).min(g.len());
                let oracle = if pattern::foreign(&g[s..e], inblk as usize, file, ws) {
                    "stale-data"
                } else {
                    "data-loss"
                };
                return Some(finding(
                    oracle,
                    Some(at),
                    None,
                    format!(
                        "live read of f{file}: byte {pos} is {}, the model says {}",
                        pattern::describe(&g[s..e], inblk as usize),
                        pattern::describe(&w[s..e], inblk as usize)
                    ),
                ));
            }
        };
        Some(finding("data-loss", Some(at), None, cause))
    }
}

/// Whether a failed op may have changed anything (see `oracle::model`).
fn classify(e: &Error, aborted_before: bool) -> Outcome {
    match e {
        Error::Invalid(_)
        | Error::NotSupported(_)
        | Error::TooBig
        | Error::NotFound(_)
        | Error::Exists(_)
        | Error::IsDir(_)
        | Error::NotDir(_)
        | Error::NotEmpty(_) => Outcome::Rejected,
        Error::Aborted if aborted_before => Outcome::Rejected,
        _ => Outcome::Failed,
    }
}

/// Run one op on the engine: `None` if skipped, else its result (the bytes for `read`).
/// The only place that maps ops to engine calls.
pub fn dispatch(fs: &mut Fs, op: &Op) -> Option<crate::Result<Vec<u8>>> {
    let none = |r: crate::Result<()>| Some(r.map(|()| Vec::new()));
    match *op {
        Op::Create { file } => none(fs.create(&path(file), 0o644).map(|_| ())),
        Op::Unlink { file } => none(fs.unlink(&path(file))),
        Op::Write {
            file,
            off,
            len,
            tag,
        } => none(on_file(fs, file, |fs, ino| {
            fs.write_file(ino, off, &pattern::data(file, tag, off, len as usize))
        })),
        Op::MmapWrite {
            file,
            off,
            len,
            tag,
        } => none(on_file(fs, file, |fs, ino| {
            fs.mmap_write(ino, off, &pattern::data(file, tag, off, len as usize))
        })),
        Op::Read { file, off, len } => Some(
            fs.resolve(&path(file))
                .and_then(|ino| fs.read_file(ino, off, u64::from(len))),
        ),
        Op::Fiemap { file } => none(on_file(fs, file, fiemap)),
        Op::Truncate { file, size } => {
            none(on_file(fs, file, |fs, ino| fs.truncate_file(ino, size)))
        }
        Op::Punch { file, off, len } => {
            none(on_file(fs, file, |fs, ino| fs.punch_hole(ino, off, len)))
        }
        Op::Fallocate { file, off, len } => {
            none(on_file(fs, file, |fs, ino| fs.fallocate(ino, off, len)))
        }
        Op::Fsync { file } => none(on_file(fs, file, |fs, ino| fs.fsync(ino))),
        Op::Sync => none(fs.sync()),
        Op::Writeback => none(fs.writeback_all()),
        Op::Commit => none(fs.journal_commit()),
        Op::Migrate { .. } => None,
    }
}

fn path(file: u8) -> String {
    format!("/f{file}")
}

fn on_file(
    fs: &mut Fs,
    file: u8,
    f: impl FnOnce(&mut Fs, Ino) -> crate::Result<()>,
) -> crate::Result<()> {
    let ino = fs.resolve(&path(file))?;
    f(fs, ino)
}

/// `FIEMAP`: look the mapping up run by run (at most 64 lookups).
fn fiemap(fs: &mut Fs, ino: Ino) -> crate::Result<()> {
    let bs = u64::from(fs.block_size());
    let end = fs
        .inode(ino)
        .raw
        .i_size
        .div_ceil(bs)
        .min(u64::from(u32::MAX));
    let mut l = 0u64;
    for _ in 0..64 {
        if l >= end {
            break;
        }
        let len = (end - l).min(u64::from(u32::MAX)) as u32;
        l += u64::from(
            fs.map_blocks(None, ino, Lblk(l as u32), len, MapFlags::LOOKUP)?
                .len,
        );
    }
    Ok(())
}

fn describe_result(op: &Op, res: &Option<crate::Result<Vec<u8>>>) -> String {
    match (op, res) {
        (_, None) => "skipped (migrate needs crate::ops)".into(),
        (Op::Read { .. }, Some(Ok(b))) => format!("ok, {} bytes", b.len()),
        (_, Some(Ok(_))) => "ok".into(),
        (_, Some(Err(e))) => format!("error: {e}"),
    }
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
    let mut images = None;
    for (idx, &k) in points.iter().enumerate() {
        let crash = if k == n {
            dev.crash_image(&fates(s, k, n))
        } else {
            dev.replay_log(k).crash_image(&fates(s, k, n))
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
        let out = states::check_state(&crash, k, checks, ctx, v);
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
    fn classify_separates_rejections_from_failures() {
        assert_eq!(classify(&Error::TooBig, false), Outcome::Rejected);
        assert_eq!(classify(&Error::Aborted, true), Outcome::Rejected);
        assert_eq!(classify(&Error::Aborted, false), Outcome::Failed);
        assert_eq!(classify(&Error::NoSpace, false), Outcome::Failed);
    }

    #[test]
    fn a_panic_is_caught_quietly_with_its_message() {
        let r: Result<(), String> = guarded(|| panic!("boom {}", 7));
        let msg = r.unwrap_err();
        assert!(msg.starts_with("boom 7 at src/harness/exec.rs:"), "{msg}");
        assert_eq!(guarded(|| 5), Ok(5));
    }
}
