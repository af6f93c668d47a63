//! Delta debugging of a failing scenario: the smallest scenario found that still makes the same
//! oracle fire.
//!
//! Greedy, one reduction at a time, restarting from the biggest reductions after every success
//! (a bounded number of executions, [`MinimizeOpts::max_execs`]):
//!
//! 1. drop a thread; drop a chunk of a thread's ops (halves, quarters, … single ops);
//! 2. drop a setup file; drop a setup write;
//! 3. drop a fault rule, the fault plan's crash point, the mid-workload crash point, or move it
//!    earlier;
//! 4. drop the schedule, or its second half;
//! 5. shrink lengths and sizes (halve), move offsets down to 0 or to the block start;
//! 6. simplify the crash fates: keep all or none, tear none, seed 0.
//!
//! Every candidate is strictly smaller or simpler than the current scenario. If the input is
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
            max_execs: 400,
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
    let oracle = match opts.oracle {
        Some(o) => first.findings.iter().find(|f| f.oracle == o)?.oracle,
        None => first.findings.first()?.oracle,
    };
    // The consistency checks only matter to the oracles they feed, and the (slow, external)
    // e2fsck confirmation only to the result: candidates run without it.
    let mut exec = opts.exec.clone();
    if !matches!(oracle, "fsck" | "checksum" | "leak" | "e2fsck") {
        exec.fsck = FsckScope::Off;
    }
    exec.confirm = false;
    let strict = gen::validate(s).is_ok();
    let mut best = (s.clone(), first);
    let mut execs = 1;
    'outer: while execs < opts.max_execs {
        for cand in candidates(&best.0) {
            if execs >= opts.max_execs {
                break 'outer;
            }
            if cand == best.0 || (strict && gen::validate(&cand).is_err()) {
                continue;
            }
            execs += 1;
            let v = execute_with(&cand, &exec);
            if v.findings.iter().any(|f| f.oracle == oracle) {
                best = (cand, v);
                continue 'outer;
            }
        }
        break;
    }
    // The result, judged with the caller's options (confirmation included).
    let verdict = execute_with(&best.0, &opts.exec);
    Some(Minimized {
        scenario: best.0,
        verdict,
        oracle,
        execs,
    })
}

/// Every one-step reduction of `s`, biggest first.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    drop_threads(s, &mut out);
    drop_ops(s, &mut out);
    drop_setup(s, &mut out);
    drop_faults(s, &mut out);
    shrink_schedule(s, &mut out);
    shrink_ops(s, &mut out);
    simplify_fates(s, &mut out);
    out
}

fn drop_threads(s: &Scenario, out: &mut Vec<Scenario>) {
    if s.threads.len() < 2 {
        return;
    }
    for t in 0..s.threads.len() {
        let mut c = s.clone();
        c.threads.remove(t);
        out.push(c);
    }
}

fn drop_ops(s: &Scenario, out: &mut Vec<Scenario>) {
    for (t, ops) in s.threads.iter().enumerate() {
        let mut chunk = ops.len().div_ceil(2).max(1);
        loop {
            for start in (0..ops.len()).step_by(chunk) {
                let mut c = s.clone();
                c.threads[t].drain(start..(start + chunk).min(ops.len()));
                out.push(c);
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
    let variants = [
        (c.fates_seed, 0, 0),
        (c.fates_seed, 1000, 0),
        (c.fates_seed, c.keep_per_mille, 0),
        (0, c.keep_per_mille, c.tear_per_mille),
    ];
    for (seed, keep, tear) in variants {
        let mut n = s.clone();
        n.crash.fates_seed = seed;
        n.crash.keep_per_mille = keep;
        n.crash.tear_per_mille = tear;
        out.push(n);
    }
}

#[cfg(test)]
mod tests {
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
        let c = candidates(&s);
        assert!(c
            .iter()
            .any(|c| c.threads.len() == 1 && c.threads[0].len() == 1));
        assert!(c.iter().any(|c| c.threads[0] == vec![Op::Writeback]));
        assert!(c.iter().any(|c| c.setup.is_empty()));
        assert!(c
            .iter()
            .any(|c| c.setup.first().and_then(|f| f.writes.first()) == Some(&(1024, 100, 1))));
        assert!(c.iter().any(|c| c.schedule.is_empty()));
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
}
