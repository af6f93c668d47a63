//! Delta debugging of a failing scenario: the smallest scenario found that still makes the same
//! oracle fire.
//!
//! Greedy, one reduction at a time, in passes over the list of reductions (biggest first): after
//! a success the pass goes on from the same place in the new scenario's list, and passes repeat
//! until one makes no progress (or [`MinimizeOpts::max_execs`] executions were spent):
//!
//! 1. serialize: when the ops ran one at a time, all of them in one thread, in the order they
//!    ran, without a schedule (the same run); drop a thread; drop a file (every op on it, in
//!    every thread, and its setup: a create and its unlink go together, which single-op drops
//!    cannot do while keeping the scenario valid); drop a chunk of a thread's ops (halves,
//!    quarters, … single ops). Each cut is tried twice: first with the schedule re-encoded
//!    (`reencode`: the bytes the dropped ops' and threads' decisions consumed go, and a
//!    decision that had a dropped thread among its candidates is re-ranked, from
//!    [`Workload::schedule_owners`](super::workload::Workload) and `schedule_runnable`), so
//!    that every other decision picks the same thread and the interleaving survives the cut;
//!    then with the schedule as it is;
//! 2. drop a setup file; drop a setup write;
//! 3. pin a fault rule that fails the n-th matching operation to the block that operation
//!    touched (`nth:N` → `block:B`; `first-each` → `block:B` for each block it failed; from
//!    [`Disk::fault_failed_blocks`](crate::dev::Disk::fault_failed_blocks)): a counted fault
//!    moves to another operation as soon as any op before it goes, a pinned one does not, so
//!    this is tried first and opens the way to the cuts above; drop a fault rule, the fault
//!    plan's crash point, the mid-workload crash point, or move it earlier;
//! 4. drop the schedule, its second half, or a chunk of it (halves … single bytes); set a
//!    byte to 0;
//! 5. shrink lengths and sizes (halve), move offsets down to 0 or to the block start;
//! 6. simplify the crash fates: keep all or none, tear none, seed 0.
//!
//! Then two scenarios that are bigger, but may shrink further, are each reduced the same way
//! and kept only if the result is smaller (fewer threads, ops, setup files and writes and
//! fault rules; then fewer schedule bytes):
//!
//! * a `commit` right after the op the finding blames;
//! * the scenario as one thread (serialized in the order its ops ended) plus a second thread
//!   that only commits, placed by the schedule inside the blamed op (`0*j 1`, the first `j`
//!   of up to 48 spread over the run for which it lands there and the oracle fires). A crash
//!   state often needs a commit in the middle of an op (S6: the migration's walk spans
//!   transactions); a generated scenario may get it from an `fsync` of a file created and
//!   written for the purpose, or from other ops filling the transaction, and every one of
//!   those had to stay. The commit thread is kept while the others are cut.
//!
//! Every candidate of a pass is strictly smaller or simpler than the current scenario. If the input is
//! valid (`scenario::gen::validate`), so must every candidate be, so a minimized repro never
//! relies on ops that fail for want of a file.

use super::{execute_with, ExecOpts, FsckScope, Verdict};
use crate::scenario::{gen, Op, Scenario};

/// How to minimize.
#[derive(Clone, Debug)]
pub struct MinimizeOpts {
    /// The oracle that must keep firing (`None`: the first finding's).
    pub oracle: Option<&'static str>,
    /// Most executions spent.
    pub max_execs: usize,
    /// Options of each execution.
    pub exec: ExecOpts,
}

impl Default for MinimizeOpts {
    fn default() -> MinimizeOpts {
        MinimizeOpts {
            oracle: None,
            max_execs: 4000,
            exec: ExecOpts {
                trace: false,
                ..ExecOpts::default()
            },
        }
    }
}

/// The result of a minimization.
#[derive(Clone, Debug)]
pub struct Minimized {
    /// The smallest scenario found.
    pub scenario: Scenario,
    /// Its verdict.
    pub verdict: Verdict,
    /// The oracle kept firing.
    pub oracle: &'static str,
    /// Executions spent.
    pub execs: usize,
}

/// Minimize `s` (module doc). `None` if no (or not the requested) oracle fires on `s`.
pub fn minimize(s: &Scenario, opts: &MinimizeOpts) -> Option<Minimized> {
    let first = execute_with(s, &opts.exec);
    let found = match opts.oracle {
        Some(o) => first.findings.iter().find(|f| f.oracle == o)?,
        None => first.findings.first()?,
    };
    let oracle = found.oracle;
    // The consistency checks only matter to the oracles they feed, and the (slow, external)
    // e2fsck confirmation only to the result: candidates run without it.
    let mut exec = opts.exec.clone();
    if !matches!(oracle, "fsck" | "checksum" | "leak" | "e2fsck") {
        exec.fsck = FsckScope::Off;
    }
    exec.confirm = false;
    let strict = gen::validate(s).is_ok();
    let mut run = Reduce {
        oracle,
        exec,
        strict,
        max_execs: opts.max_execs,
        execs: 1,
        keep_threads: false,
    };
    let mut best = run.reduce(s.clone(), first);
    // Two scenarios that are bigger but may shrink further, each reduced in turn and kept if
    // the result is smaller: a commit right after the op the finding blames, and a second
    // thread that commits while the only thread runs.
    let blamed = best.1.findings.iter().find(|f| f.oracle == oracle);
    if let Some(anchored) = blamed.and_then(|f| commit_after(&best.0, f.op_index?)) {
        if let Some(v) = run.fires(&anchored) {
            let other = run.reduce(anchored, v);
            if weight(&other.0) < weight(&best.0) {
                best = other;
            }
        }
    }
    let blamed = best.1.findings.iter().find(|f| f.oracle == oracle);
    if let Some((base, op)) = blamed.and_then(|f| one_thread(&best.0, f.op_index?)) {
        for cand in concurrent_commits(&base, facts_of(&base).steps) {
            // Only a commit that lands inside the blamed op can stand in for the others.
            if !runs_inside(&cand, (1, 0), (0, op)) {
                continue;
            }
            if let Some(v) = run.fires(&cand) {
                // The commit thread stays while the other ops go, then may go itself.
                run.keep_threads = true;
                let other = run.reduce(cand, v);
                run.keep_threads = false;
                let other = run.reduce(other.0, other.1);
                if weight(&other.0) < weight(&best.0) {
                    best = other;
                }
                break;
            }
        }
    }
    // The result, judged with the caller's options (confirmation included).
    let verdict = execute_with(&best.0, &opts.exec);
    Some(Minimized {
        scenario: best.0,
        verdict,
        oracle,
        execs: run.execs,
    })
}

/// `s` with a `commit` inserted after op `at` (thread, index), unless one follows it already.
///
/// A crash-consistency finding often needs its transaction committed before the crash; in a
/// generated scenario that commit is forced by the other ops (a full transaction, an fsync of
/// another file), so no single cut can remove them. With an explicit commit after the op the
/// finding blames, they can go.
fn commit_after(s: &Scenario, (t, i): (usize, usize)) -> Option<Scenario> {
    let ops = s.threads.get(t)?;
    if i >= ops.len() || ops.get(i + 1) == Some(&Op::Commit) {
        return None;
    }
    let mut c = s.clone();
    c.threads[t].insert(i + 1, Op::Commit);
    Some(c)
}

/// `s` as one thread (itself, or its ops in the order they ended: [`serialized`]), and the
/// index there of op `at` (thread, index).
fn one_thread(s: &Scenario, at: (usize, usize)) -> Option<(Scenario, usize)> {
    if s.threads.len() == 1 {
        return Some((s.clone(), at.1));
    }
    let order = facts_of(s).order?;
    let index = order.iter().position(|&op| op == at)?;
    Some((serialized(s, Some(&order))?, index))
}

/// Most placements of a concurrent commit tried ([`concurrent_commits`]).
const COMMIT_PLACEMENTS: u32 = 48;

/// For a one-thread scenario whose run took `steps` scheduling decisions: the scenario with a
/// second thread that only commits, placed by the schedule after `j` decisions of the first
/// (`[0; j]` then `1`), for up to [`COMMIT_PLACEMENTS`] values of `j` spread over the run.
///
/// A finding in a crash state often needs a commit in the middle of an op (a migration's walk
/// spans transactions); in a generated scenario that commit is forced by other ops filling the
/// transaction, so every op that adds to it must stay. A commit of its own frees them.
fn concurrent_commits(s: &Scenario, steps: u32) -> Vec<Scenario> {
    if s.threads.len() != 1 || steps < 2 {
        return Vec::new();
    }
    let stride = steps.div_ceil(COMMIT_PLACEMENTS).max(1);
    (1..steps)
        .step_by(stride as usize)
        .map(|j| {
            let mut c = s.clone();
            c.threads.push(vec![Op::Commit]);
            c.schedule = vec![0; j as usize];
            c.schedule.push(1);
            c
        })
        .collect()
}

/// Whether op `inner` (thread, index) of `s` starts while op `outer` runs (one run of the
/// workload).
fn runs_inside(s: &Scenario, inner: (usize, usize), outer: (usize, usize)) -> bool {
    let mut v = Verdict::default();
    let Some(w) = super::workload::run_workload(s, &mut v) else {
        return false;
    };
    let at = |op: (usize, usize)| w.records.iter().position(|r| (r.thread, r.index) == op);
    let (Some(i), Some(o)) = (at(inner), at(outer)) else {
        return false;
    };
    let (inner, outer) = (&w.records[i].origin, &w.records[o].origin);
    // Started after it, and before it was done (`o` is its place in the completion order).
    inner.seq > outer.seq && (inner.start_done as usize) <= o
}

/// The size a minimization compares: threads, ops, setup files and writes and fault rules
/// first, then schedule bytes.
fn weight(s: &Scenario) -> (usize, usize) {
    let parts = s.threads.len()
        + s.threads.iter().map(Vec::len).sum::<usize>()
        + s.setup.iter().map(|f| 1 + f.writes.len()).sum::<usize>()
        + s.faults.rules.len();
    (parts, s.schedule.len())
}

/// One greedy reduction run: the oracle that must keep firing and the execution budget.
struct Reduce {
    oracle: &'static str,
    exec: ExecOpts,
    strict: bool,
    max_execs: usize,
    execs: usize,
    /// Skip the reductions that drop a thread.
    keep_threads: bool,
}

impl Reduce {
    /// The verdict of `s` if the oracle fires on it (one execution of the budget).
    fn fires(&mut self, s: &Scenario) -> Option<Verdict> {
        if self.execs >= self.max_execs || (self.strict && gen::validate(s).is_err()) {
            return None;
        }
        self.execs += 1;
        let v = execute_with(s, &self.exec);
        v.findings
            .iter()
            .any(|f| f.oracle == self.oracle)
            .then_some(v)
    }

    /// Passes of one-step reductions from `s` (with its verdict `v`) until one makes no
    /// progress or the budget is spent.
    fn reduce(&mut self, s: Scenario, v: Verdict) -> (Scenario, Verdict) {
        let mut best = (s, v);
        let mut facts = facts_of(&best.0);
        let mut progress = true;
        while progress && self.execs < self.max_execs {
            progress = false;
            // One pass: try the reductions in order; after a success, go on from the same
            // index in the new scenario's (shorter) list.
            let mut i = 0;
            let mut list = candidates(&best.0, &facts);
            while i < list.len() && self.execs < self.max_execs {
                let cand = &list[i];
                i += 1;
                let drops_thread = cand.threads.len() < best.0.threads.len();
                if *cand == best.0 || (self.keep_threads && drops_thread) {
                    continue;
                }
                if let Some(v) = self.fires(cand) {
                    best = (cand.clone(), v);
                    progress = true;
                    facts = facts_of(&best.0);
                    list = candidates(&best.0, &facts);
                    i = i.saturating_sub(1);
                }
            }
        }
        best
    }
}

/// What a run of the workload tells the reductions.
#[derive(Default)]
struct Facts {
    /// Per schedule byte `s` consumes: the (thread, op index) whose decision used it (empty if
    /// the workload does not run to its end).
    owners: Vec<(usize, usize)>,
    /// Per schedule byte consumed: the threads the decision chose among (bit `i`: thread `i`).
    runnable: Vec<u64>,
    /// Per fault rule: the blocks it failed (see [`crate::dev::Disk::fault_failed_blocks`]).
    fault_blocks: Vec<Vec<crate::units::Pblk>>,
    /// If every op ran: the (thread, op index) of each, in the order they ended.
    order: Option<Vec<(usize, usize)>>,
    /// Whether the ops ran one at a time (none started before the one before it had ended).
    serial: bool,
    /// The scheduling decisions of the run, forced ones included.
    steps: u32,
}

/// Run the workload of `s` once for its [`Facts`].
fn facts_of(s: &Scenario) -> Facts {
    let mut v = Verdict::default();
    super::workload::run_workload(s, &mut v).map_or_else(Facts::default, |w| {
        let all_ran = w.records.len() == s.threads.iter().map(Vec::len).sum::<usize>();
        let alone = w
            .records
            .iter()
            .enumerate()
            .all(|(p, r)| r.origin.start_done as usize == p);
        Facts {
            fault_blocks: w.dev.fault_failed_blocks().to_vec(),
            order: all_ran.then(|| w.records.iter().map(|r| (r.thread, r.index)).collect()),
            serial: all_ran && alone,
            owners: w.schedule_owners,
            runnable: w.schedule_runnable,
            steps: w.steps,
        }
    })
}

/// Push `c`, which drops the threads `removed` of `s` and the ops for which
/// `dropped(thread, index)` holds: first with the schedule re-encoded ([`reencode`]), then as
/// is.
fn push_cut(
    s: &Scenario,
    facts: &Facts,
    c: Scenario,
    removed: &[usize],
    dropped: impl Fn(usize, usize) -> bool,
    out: &mut Vec<Scenario>,
) {
    let schedule = reencode(s, facts, removed, dropped);
    if schedule != s.schedule {
        out.push(Scenario {
            schedule,
            ..c.clone()
        });
    }
    out.push(c);
}

/// The schedule of `s` for the same interleaving of what is left once the threads `removed`
/// and the ops `dropped(thread, index)` go: each byte the run consumed (`facts`) is dropped if
/// its decision picked a removed thread or started a dropped op, or if the decision has one
/// candidate left (a forced one); else, if a removed thread was among its candidates, it
/// becomes the picked thread's rank among those that remain, so that every decision left
/// picks the same thread as before. Other bytes, and those the run did not consume, stay.
fn reencode(
    s: &Scenario,
    facts: &Facts,
    removed: &[usize],
    dropped: impl Fn(usize, usize) -> bool,
) -> Vec<u8> {
    let gone = removed.iter().fold(0u64, |m, &t| m | 1 << t);
    let consumed = facts
        .owners
        .len()
        .min(facts.runnable.len())
        .min(s.schedule.len());
    let mut out = Vec::with_capacity(s.schedule.len());
    let decisions = facts.owners.iter().zip(&facts.runnable).take(consumed);
    for (b, (&(t, i), &mask)) in decisions.enumerate() {
        let left = mask & !gone;
        if gone & 1 << t != 0 || dropped(t, i) || left.count_ones() < 2 {
            continue;
        }
        out.push(match left == mask {
            // The same candidates: the same byte picks the same thread.
            true => s.schedule[b],
            // OK to truncate: a rank among at most 64 threads.
            false => (left & ((1 << t) - 1)).count_ones() as u8,
        });
    }
    out.extend_from_slice(&s.schedule[consumed..]);
    out
}

/// Every one-step reduction of `s`, biggest first (`facts`: see [`Facts`]).
fn candidates(s: &Scenario, facts: &Facts) -> Vec<Scenario> {
    let mut out = Vec::new();
    pin_faults(s, &facts.fault_blocks, &mut out);
    if facts.serial {
        out.extend(serialized(s, facts.order.as_deref()));
    }
    drop_threads(s, facts, &mut out);
    drop_files(s, facts, &mut out);
    drop_ops(s, facts, &mut out);
    drop_setup(s, &mut out);
    drop_faults(s, &mut out);
    shrink_schedule(s, &mut out);
    shrink_ops(s, &mut out);
    simplify_fates(s, &mut out);
    out
}

/// The threads of `s` as one, their ops in `order` (thread, index), without a schedule. When
/// the ops ran one at a time in that order, this is the same run.
fn serialized(s: &Scenario, order: Option<&[(usize, usize)]>) -> Option<Scenario> {
    let order = order.filter(|_| s.threads.len() > 1)?;
    let mut c = s.clone();
    c.threads = vec![order
        .iter()
        .map(|&(t, i)| s.threads[t][i].clone())
        .collect()];
    c.schedule.clear();
    Some(c)
}

fn drop_threads(s: &Scenario, facts: &Facts, out: &mut Vec<Scenario>) {
    if s.threads.len() < 2 {
        return;
    }
    for t in 0..s.threads.len() {
        let mut c = s.clone();
        c.threads.remove(t);
        push_cut(s, facts, c, &[t], |_, _| false, out);
    }
}

fn drop_files(s: &Scenario, facts: &Facts, out: &mut Vec<Scenario>) {
    let mut files: Vec<u8> = s.threads.iter().flatten().filter_map(Op::file).collect();
    files.extend(s.setup.iter().map(|f| f.file));
    files.sort_unstable();
    files.dedup();
    for file in files {
        let mut c = s.clone();
        c.setup.retain(|f| f.file != file);
        for ops in &mut c.threads {
            ops.retain(|op| op.file() != Some(file));
        }
        let removed: Vec<usize> = (0..c.threads.len())
            .filter(|&t| c.threads[t].is_empty())
            .collect();
        c.threads.retain(|ops| !ops.is_empty());
        if c.threads.is_empty() {
            continue; // a scenario has at least one thread
        }
        let on_file = |t: usize, i: usize| {
            let op = s.threads.get(t).and_then(|ops| ops.get(i));
            op.and_then(Op::file) == Some(file)
        };
        push_cut(s, facts, c, &removed, on_file, out);
    }
}

fn drop_ops(s: &Scenario, facts: &Facts, out: &mut Vec<Scenario>) {
    for (t, ops) in s.threads.iter().enumerate() {
        let mut chunk = ops.len().div_ceil(2).max(1);
        loop {
            for start in (0..ops.len()).step_by(chunk) {
                let end = (start + chunk).min(ops.len());
                let mut c = s.clone();
                c.threads[t].drain(start..end);
                push_cut(
                    s,
                    facts,
                    c,
                    &[],
                    |u, i| u == t && (start..end).contains(&i),
                    out,
                );
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
}

fn drop_setup(s: &Scenario, out: &mut Vec<Scenario>) {
    for i in 0..s.setup.len() {
        let mut c = s.clone();
        c.setup.remove(i);
        out.push(c);
    }
    for (i, f) in s.setup.iter().enumerate() {
        for w in 0..f.writes.len() {
            let mut c = s.clone();
            c.setup[i].writes.remove(w);
            out.push(c);
        }
    }
}

/// Each rule failing the n-th matching operation, pinned to the block that operation touched,
/// and each `first-each` rule, pinned to one of the blocks it failed (the first
/// [`PIN_BLOCKS`]; `blocks`: per rule, from the last run).
fn pin_faults(s: &Scenario, blocks: &[Vec<crate::units::Pblk>], out: &mut Vec<Scenario>) {
    use crate::dev::FaultWhen;
    for (i, rule) in s.faults.rules.iter().enumerate() {
        let failed = blocks.get(i).map_or(&[][..], Vec::as_slice);
        let pins = match rule.when {
            FaultWhen::Nth(_) => &failed[..failed.len().min(1)],
            FaultWhen::FirstEach => &failed[..failed.len().min(PIN_BLOCKS)],
            FaultWhen::Block(_) | FaultWhen::Always => &[][..],
        };
        for &b in pins {
            let mut c = s.clone();
            c.faults.rules[i].when = FaultWhen::Block(b);
            // A block fails once under `first-each`; an `nth` rule keeps its stickiness.
            c.faults.rules[i].sticky &= rule.when != FaultWhen::FirstEach;
            out.push(c);
        }
    }
}

/// Most blocks of a `first-each` rule that [`pin_faults`] tries.
const PIN_BLOCKS: usize = 16;

fn drop_faults(s: &Scenario, out: &mut Vec<Scenario>) {
    for i in 0..s.faults.rules.len() {
        let mut c = s.clone();
        c.faults.rules.remove(i);
        out.push(c);
    }
    if s.faults.crash_at_write.is_some() {
        let mut c = s.clone();
        c.faults.crash_at_write = None;
        out.push(c);
    }
    if let Some(w) = s.crash.at_write {
        let mut c = s.clone();
        c.crash.at_write = None;
        out.push(c);
        for smaller in [w / 2, w.saturating_sub(1)] {
            let mut c = s.clone();
            c.crash.at_write = Some(smaller);
            out.push(c);
        }
    }
}

fn shrink_schedule(s: &Scenario, out: &mut Vec<Scenario>) {
    if s.schedule.is_empty() {
        return;
    }
    let mut c = s.clone();
    c.schedule.clear();
    out.push(c);
    let mut c = s.clone();
    c.schedule.truncate(s.schedule.len() / 2);
    out.push(c);
    // Chunks of decisions (halves, quarters, … single bytes), then bytes set to 0 (the first
    // runnable thread).
    let n = s.schedule.len();
    let mut chunk = n.div_ceil(2);
    while chunk >= 1 && n > 1 {
        for start in (0..n).step_by(chunk) {
            let mut c = s.clone();
            c.schedule.drain(start..(start + chunk).min(n));
            out.push(c);
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    for (i, &b) in s.schedule.iter().enumerate() {
        if b != 0 {
            let mut c = s.clone();
            c.schedule[i] = 0;
            out.push(c);
        }
    }
}

fn shrink_ops(s: &Scenario, out: &mut Vec<Scenario>) {
    for (t, ops) in s.threads.iter().enumerate() {
        for (i, op) in ops.iter().enumerate() {
            for smaller in shrink_op(op, s.geometry.block_size) {
                let mut c = s.clone();
                c.threads[t][i] = smaller;
                out.push(c);
            }
        }
    }
    for (i, f) in s.setup.iter().enumerate() {
        for (w, &(off, len, tag)) in f.writes.iter().enumerate() {
            let bs = u64::from(s.geometry.block_size);
            for smaller in [
                (off, len / 2, tag),
                (0, len, tag),
                (off - off % bs, len, tag),
            ] {
                if smaller.1 > 0 {
                    let mut c = s.clone();
                    c.setup[i].writes[w] = smaller;
                    out.push(c);
                }
            }
        }
    }
}

/// Smaller variants of one op: halved lengths and sizes, offsets at 0 or the block start.
fn shrink_op(op: &Op, block_size: u32) -> Vec<Op> {
    let bs = u64::from(block_size);
    let offs = |off: u64| [0, off - off % bs];
    match *op {
        Op::Write {
            file,
            off,
            len,
            tag,
        } => {
            let mut v = vec![Op::Write {
                file,
                off,
                len: (len / 2).max(1),
                tag,
            }];
            v.extend(offs(off).map(|o| Op::Write {
                file,
                off: o,
                len,
                tag,
            }));
            v
        }
        Op::MmapWrite {
            file,
            off,
            len,
            tag,
        } => vec![Op::MmapWrite {
            file,
            off,
            len: (len / 2).max(1),
            tag,
        }],
        Op::Read { file, off, len } => vec![Op::Read {
            file,
            off,
            len: (len / 2).max(1),
        }],
        Op::Truncate { file, size } => vec![Op::Truncate {
            file,
            size: size / 2,
        }],
        Op::Punch { file, off, len } => vec![
            Op::Punch {
                file,
                off,
                len: (len / 2).max(1),
            },
            Op::Punch {
                file,
                off: off - off % bs,
                len,
            },
        ],
        Op::Fallocate { file, off, len } => vec![Op::Fallocate {
            file,
            off,
            len: (len / 2).max(1),
        }],
        _ => Vec::new(),
    }
}

fn simplify_fates(s: &Scenario, out: &mut Vec<Scenario>) {
    let c = &s.crash;
    // Simpler means: no tears, then keep all or nothing, then seed 0. All-or-nothing fates
    // are not offered in place of each other (that would cycle).
    let settled = c.tear_per_mille == 0 && matches!(c.keep_per_mille, 0 | 1000);
    let mut variants = Vec::new();
    if !settled {
        variants.extend([(c.fates_seed, 0, 0), (c.fates_seed, 1000, 0)]);
    }
    if c.tear_per_mille != 0 {
        variants.push((c.fates_seed, c.keep_per_mille, 0));
    }
    if c.fates_seed != 0 {
        variants.push((0, c.keep_per_mille, c.tear_per_mille));
    }
    for (seed, keep, tear) in variants {
        let mut n = s.clone();
        n.crash.fates_seed = seed;
        n.crash.keep_per_mille = keep;
        n.crash.tear_per_mille = tear;
        out.push(n);
    }
}

#[cfg(test)]
mod tests;
