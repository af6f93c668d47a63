//! The workload of one execution: the scenario's threads under [`Sched`], each op running as
//! the kernel runs it — the async ops of [`crate::ops`], which take the kernel's locks in the
//! kernel's order and yield at every lock, journal start and walk step — and the bookkeeping
//! the oracles need.
//!
//! Each thread, per op, hits the yield point `"op"`, then runs the op ([`run_op`], the one
//! place that maps an [`Op`] to engine code). Ops without an async path in `crate::ops`
//! (create, unlink, fallocate, sync, the flusher, the commit timer) run their engine call in
//! one critical section under the locks the kernel takes for them.
//!
//! The book (`Book`) records every op (thread, index, result, device log range), feeds the model in
//! completion order, and marks what the model cannot judge: two ops that change one file and
//! overlap in time (only `page_mkwrite` can overlap another: the rest take `i_rwsem`) taint
//! the file, and a `read()` that overlapped a change of its file is not compared with the
//! model. A thread stops once the device has crashed (`crash.at_write`); an op left unfinished
//! by the scheduler's step bound counts as failed.

use super::exec::{finding, guarded};
use super::{pattern, template, Finding, Verdict};
use crate::dev::{Disk, DETAIL_INJECTED};
use crate::error::{Error, IoOp, Result};
use crate::format::jbd2::JournalSuperblock;
use crate::fs::{Fs, MountOpts};
use crate::ops::locks::{i_data_sem, i_rwsem, in_handle, journal_checkpoint, journal_commit};
use crate::ops::{ind_migrate, migrate, paths};
use crate::oracle::flags::InodeTables;
use crate::oracle::model::{Model, Origin, Outcome};
use crate::profile::{BugSet, Profile};
use crate::scenario::{gen, MigrateTo, Op, Scenario};
use crate::sched::{Cx, LockId, Mode, RunEnd, Sched, Schedule};
use crate::units::Ino;
use std::cell::RefCell;
use std::rc::Rc;

/// One op as it ran.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// Thread.
    pub thread: usize,
    /// Index in the thread.
    pub index: usize,
    /// The op.
    pub op: Op,
    /// Model stamp (start log index and order).
    pub origin: Origin,
    /// Device log index at its end.
    pub end_log: usize,
    /// What it returned, one line.
    pub result: String,
    /// For a migration: the file's data mapping `(lblk, pblk, len)` when it took `i_rwsem`
    /// ([`Fs::peek_map`]; for the `migrate-atomicity` oracle).
    pub migrate_map: Option<Vec<(u32, u64, u32)>>,
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
    /// The ops as they ran, in completion order.
    pub records: Vec<OpRecord>,
    /// The engine's seeded bugs.
    pub bugs: BugSet,
    /// Where the inode tables are (for the flag scan).
    pub tables: InodeTables,
    /// The journal superblock (for the flag scan).
    pub jsb: Option<JournalSuperblock>,
    /// Whether the device crashed (or was planned to) at a write.
    pub crash_mode: bool,
    /// For each schedule byte the run consumed, in order: the thread its decision picked and
    /// the index of the op that thread was running or about to start (the minimizer drops an
    /// op together with its bytes).
    pub schedule_owners: Vec<(usize, usize)>,
    /// For each schedule byte the run consumed: the threads its decision chose among (bit
    /// `i`: thread `i`).
    pub schedule_runnable: Vec<u64>,
    /// The scheduling decisions the run took, forced ones included.
    pub steps: u32,
}

/// What a successful op returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpValue {
    /// Nothing.
    Unit,
    /// The bytes of a `read`.
    Bytes(Vec<u8>),
    /// The return value of a migration ioctl.
    Ret(i32),
}

/// What the migrate oracles need to know of an inode, before and after a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateFacts {
    /// `EXT4_EXTENTS_FL` is set.
    pub extents: bool,
    /// `i_blocks` in 512-byte sectors.
    pub sectors: u64,
}

/// What running one op gave: its result (`None`: it cannot run) and, for a migration, the
/// facts before and after it.
pub struct Ran {
    /// The result.
    pub res: Option<Result<OpValue>>,
    /// The inode before and after a migration.
    pub migrate: Option<(MigrateFacts, MigrateFacts)>,
    /// A retried `ext4_ext_migrate()` attempt (profile `fixed`) that failed with `-EAGAIN`
    /// although `i_blocks` did not change during it: (attempt number from 1, `i_blocks`).
    pub spurious_retry: Option<(u32, u64)>,
    /// For a migration: the file's mapping when it took `i_rwsem`.
    pub migrate_map: Option<Vec<(u32, u64, u32)>>,
}

/// An op in flight or done, as the overlap rules need it.
#[derive(Clone, Copy, Debug)]
struct Span {
    file: u8,
    origin: Origin,
    /// Completion number, `None` while in flight.
    done: Option<u32>,
}

/// The bookkeeping of a run (module doc).
struct Book {
    model: Model,
    records: Vec<OpRecord>,
    live: Vec<Finding>,
    /// Ops that change a file's content, in flight or done.
    changes: Vec<Span>,
    /// Ops in flight: (thread, index, op, origin).
    running: Vec<(usize, usize, Op, Origin)>,
    done: u32,
    /// Per schedule byte consumed: (thread, op index) of the decision.
    choice_owners: Vec<(usize, usize)>,
    choice_runnable: Vec<u64>,
    steps: u32,
}

/// Build the template, mount it, install the fault plan and run the threads. `None` if the
/// scenario cannot run ([`Verdict::rejected`] says why) or the run ended in a panic or a
/// deadlock (a finding in `v`). Findings of the live run (reads against the model, lock-order
/// inversions) go to `v`.
pub fn run_workload(s: &Scenario, v: &mut Verdict) -> Option<Workload> {
    let Some(profile) = Profile::by_name(&s.profile) else {
        reject(v, format!("unknown profile {:?}", s.profile));
        return None;
    };
    let profile = profile.with_bugs(s.bugs);
    if let Some(p) = gen::geometry_problem(&s.geometry) {
        reject(v, format!("geometry: {p}"));
        return None;
    }
    let before = setup_step(v, ("setup failed", "making the setup files"), || {
        template::template(&s.geometry, &s.setup)
    })?;
    let mut fs = setup_step(
        v,
        ("mounting the template", "mounting the template"),
        || Fs::mount(before.clone(), MountOpts::default()),
    )?;
    fs.bugs = profile.bugs;
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
    let book = Book {
        model: Model::new(s.geometry.block_size, &s.setup),
        records: Vec::new(),
        live: Vec::new(),
        changes: Vec::new(),
        running: Vec::new(),
        done: 0,
        choice_owners: Vec::new(),
        choice_runnable: Vec::new(),
        steps: 0,
    };
    let (fs, book) = run_threads(s, fs, book, profile.eagain_retries, v)?;
    for f in book.live {
        v.push(f);
    }
    Some(Workload {
        before,
        dev: fs.dev,
        model: book.model,
        records: book.records,
        bugs: profile.bugs,
        tables,
        jsb,
        crash_mode,
        schedule_owners: book.choice_owners,
        schedule_runnable: book.choice_runnable,
        steps: book.steps,
    })
}

/// Run the threads. `None` after a panic or a deadlock (findings in `v`).
fn run_threads(
    s: &Scenario,
    fs: Fs,
    book: Book,
    retries: u32,
    v: &mut Verdict,
) -> Option<(Fs, Book)> {
    let book = Rc::new(RefCell::new(book));
    // Nothing below reads the scheduler's event trace: do not record it.
    let mut sched: Sched<'_, Fs, ()> =
        Sched::new(Schedule::new(s.schedule.clone()), fs).tracing(false);
    for (t, ops) in s.threads.iter().enumerate() {
        let (cx, book) = (sched.cx(), Rc::clone(&book));
        sched.spawn(format!("T{t}"), async move {
            for (i, op) in ops.iter().enumerate() {
                cx.set_tag(i); // the decision that starts op i is op i's
                cx.yield_point("op").await;
                let Some(origin) = cx.with(|fs| book.borrow_mut().begin(fs, t, i, op)) else {
                    break;
                };
                let before = cx.with(|fs| Before {
                    aborted: fs.aborted,
                    errors: fs.error_count,
                });
                let ran = run_op(&cx, op, retries).await;
                let go_on = cx.with(|fs| {
                    book.borrow_mut()
                        .finish(fs, (t, i), op, origin, ran, before)
                });
                if !go_on {
                    break;
                }
            }
        });
    }
    let outcome = match guarded(|| sched.run()) {
        Ok(o) => o,
        Err(msg) => {
            let at = match book.borrow().running.as_slice() {
                [(t, i, ..)] => Some((*t, *i)),
                _ => None,
            };
            v.push(finding("panic", at, None, msg));
            // The threads' futures may hold guards of a half-run op: drop them quietly.
            let _ = guarded(move || drop(sched));
            return None;
        }
    };
    for inv in &outcome.inversions {
        let cause = format!("lock-order inversion: {inv}");
        v.push(finding("deadlock", None, None, one_line(&cause)));
    }
    if let RunEnd::Deadlock { .. } = &outcome.end {
        v.push(finding(
            "deadlock",
            None,
            None,
            one_line(&outcome.end.to_string()),
        ));
        let _ = guarded(move || drop(sched));
        return None;
    }
    let fs = guarded(move || sched.into_state()).ok()?;
    let mut book = Rc::try_unwrap(book).ok()?.into_inner();
    book.abandon_running(&fs);
    book.choice_owners = outcome
        .choice_owners
        .iter()
        .map(|&(t, i)| (t.0, i))
        .collect();
    book.steps = outcome.steps;
    book.choice_runnable = outcome.choice_runnable;
    Some((fs, book))
}

fn one_line(s: &str) -> String {
    s.lines().collect::<Vec<_>>().join("; ")
}

impl Book {
    /// An op starts: `None` if the device has crashed (the thread stops).
    fn begin(&mut self, fs: &Fs, t: usize, i: usize, op: &Op) -> Option<Origin> {
        if fs.dev.is_dead() {
            return None;
        }
        let origin = self.model.begin(op, fs.dev.log().len());
        self.running.push((t, i, op.clone(), origin));
        if let Some(file) = op.content_file() {
            self.changes.push(Span {
                file,
                origin,
                done: None,
            });
        }
        Some(origin)
    }

    /// An op completed; false when its thread must stop (the device crashed).
    fn finish(
        &mut self,
        fs: &Fs,
        (t, i): (usize, usize),
        op: &Op,
        origin: Origin,
        ran: Ran,
        before: Before,
    ) -> bool {
        let res = ran.res;
        if let (Op::Migrate { file, to }, Some(r), Some(f)) = (op, &res, ran.migrate) {
            self.live.extend(judge_migrate(*file, *to, r, f, (t, i)));
        }
        if let (Op::Migrate { file, .. }, Some((attempt, sectors))) = (op, ran.spurious_retry) {
            let cause = format!(
                "migrate f{file} to extents: attempt {attempt} failed with EAGAIN (retried) but \
                 nothing was allocated in the file meanwhile (i_blocks {sectors} before and after)"
            );
            self.live
                .push(finding("spurious-eagain", Some((t, i)), None, cause));
        }
        self.running.retain(|r| r.3.seq != origin.seq);
        if let Some(Err(Error::Io(e))) = &res {
            if e.op == IoOp::Write && e.detail == DETAIL_INJECTED {
                self.model.note_failed_write(e.block.0);
            }
        }
        let outcome = match &res {
            // The kernel's truncate helpers report a failed read or a bad pointer with
            // ext4_error() and carry on, so an op can succeed having done part of its work, or
            // more (a subtree it could not read is cut off whole): like a failed op.
            Some(Ok(_)) if fs.error_count > before.errors => Outcome::Failed,
            Some(Ok(_)) => Outcome::Ok,
            Some(Err(e)) => classify(e, before.aborted),
            None => Outcome::Rejected,
        };
        self.done += 1;
        let overlapped = |file: u8, changes: &[Span]| {
            changes.iter().any(|c| {
                c.file == file
                    && c.origin.seq != origin.seq
                    && c.done.is_none_or(|d| d > origin.start_done)
            })
        };
        if let Some(file) = op.content_file() {
            if overlapped(file, &self.changes) {
                let first = self
                    .changes
                    .iter()
                    .filter(|c| c.file == file && c.done.is_none_or(|d| d > origin.start_done))
                    .map(|c| c.origin)
                    .min_by_key(|o| o.seq);
                self.model.taint(file, first.unwrap_or(origin));
            }
            let done = self.done;
            if let Some(c) = self.changes.iter_mut().find(|c| c.origin.seq == origin.seq) {
                c.done = Some(done);
            }
        }
        if let (Op::Read { file, off, len }, Some(r)) = (op, &res) {
            // A read that failed for another reason than a missing file says nothing; one
            // that overlapped a change of its file may see either side of it.
            let judged = !matches!(r, Err(e) if !matches!(e, Error::NotFound(_)))
                && !overlapped(*file, &self.changes);
            let got = match r {
                Ok(OpValue::Bytes(b)) => Some(b.as_slice()),
                _ => None,
            };
            if judged {
                self.live.extend(check_read(
                    &self.model,
                    *file,
                    *off,
                    u64::from(*len),
                    got,
                    (t, i),
                ));
            }
        }
        let end_log = fs.dev.log().len();
        self.model.apply(op, origin, end_log, outcome);
        self.records.push(OpRecord {
            thread: t,
            index: i,
            op: op.clone(),
            origin,
            end_log,
            result: describe_result(&res),
            migrate_map: ran.migrate_map,
        });
        !fs.dev.is_dead()
    }

    /// Ops the scheduler left unfinished (step bound) count as failed.
    fn abandon_running(&mut self, fs: &Fs) {
        for (t, i, op, origin) in std::mem::take(&mut self.running) {
            let res = Some(Err(Error::Invalid("did not finish (step bound)".into())));
            self.model
                .apply(&op, origin, fs.dev.log().len(), Outcome::Failed);
            if let Some(file) = op.content_file() {
                self.model.taint(file, origin);
            }
            self.records.push(OpRecord {
                thread: t,
                index: i,
                op: op.clone(),
                origin,
                end_log: fs.dev.log().len(),
                result: describe_result(&res),
                migrate_map: None,
            });
        }
    }
}

/// Mark the scenario as one that cannot run, and why.
fn reject(v: &mut Verdict, why: String) {
    v.trace = format!("scenario rejected: {why}\n");
    v.rejected = Some(why);
}

/// One step before the threads run, under a panic guard: an engine error rejects the scenario
/// (`"{error_what}: {e}"`), a panic is a `panic` finding (`"{panic_what}: {p}"`).
fn setup_step<T>(
    v: &mut Verdict,
    (error_what, panic_what): (&str, &str),
    f: impl FnOnce() -> Result<T>,
) -> Option<T> {
    match guarded(f) {
        Ok(Ok(t)) => Some(t),
        Ok(Err(e)) => {
            reject(v, format!("{error_what}: {e}"));
            None
        }
        Err(p) => {
            let cause = format!("{panic_what}: {p}");
            v.push(finding("panic", None, None, cause));
            None
        }
    }
}

/// The `migrate-result` and `spurious-eagain` oracles on one migration ioctl, from its result
/// and the inode before and after it (it holds `i_rwsem` throughout, so only `page_mkwrite`
/// can change the inode meanwhile, and only by allocating):
///
/// * `migrate-result`: a success must leave the inode in the asked-for format; a failure must
///   leave its format as it was (0 but still indirect, S17; or an error but converted);
/// * `spurious-eagain`: `-EAGAIN` means a block was allocated into the file during the walk,
///   so `i_blocks` must have grown (S2: the marker cleared by mere lookups).
fn judge_migrate(
    file: u8,
    to: MigrateTo,
    r: &Result<OpValue>,
    (before, after): (MigrateFacts, MigrateFacts),
    at: (usize, usize),
) -> Option<Finding> {
    let want = to == MigrateTo::Extents;
    let name = if want { "extents" } else { "indirect" };
    let (oracle, cause) = match r {
        Ok(OpValue::Ret(ret)) if after.extents != want => (
            "migrate-result",
            format!("migrate f{file} to {name} returned {ret} but the inode did not change format"),
        ),
        // Errors decided before the swap; an I/O error, ENOSPC or an abort after it leaves the
        // inode converted in the kernel too (ext4_ext_swap_inode_data() frees the old blocks
        // after switching the format, and reports their error).
        Err(e @ (Error::Again | Error::Invalid(_) | Error::NotSupported(_)))
            if after.extents != before.extents =>
        {
            (
                "migrate-result",
                format!("migrate f{file} to {name} failed ({e}) but the inode changed format"),
            )
        }
        Err(Error::Again) if after.sectors == before.sectors => (
            "spurious-eagain",
            format!(
                "migrate f{file} to {name} failed with EAGAIN but nothing was allocated in the \
                 file meanwhile (i_blocks {} before and after)",
                before.sectors
            ),
        ),
        _ => return None,
    };
    Some(finding(oracle, Some(at), None, cause))
}

/// Compare a live `read()` (`got`: `None` if it failed) with the model.
fn check_read(
    model: &Model,
    file: u8,
    off: u64,
    len: u64,
    got: Option<&[u8]>,
    at: (usize, usize),
) -> Option<Finding> {
    if model.is_tainted(file) {
        return None;
    }
    let want = model.expect_read(file, off, len);
    let cause = match (want, got) {
        (None, None) => return None,
        (Some(_), None) => format!("live read of f{file}: no such file, but the model has it"),
        (None, Some(_)) => format!("live read of f{file} succeeded but the model has no f{file}"),
        (Some(w), Some(g)) if w.len() != g.len() => format!(
            "live read of f{file} at {off} returned {} bytes, the model says {}",
            g.len(),
            w.len()
        ),
        (Some(w), Some(g)) => {
            let i = w.iter().zip(g).position(|(a, b)| a != b)?;
            let bs = u64::from(model.block_size());
            let pos = off + i as u64;
            // The word holding the byte (clipped to the read), described block-relative.
            let ws = (pos - pos % 8).max(off);
            let (s, inblk) = ((ws - off) as usize, (ws % bs) as usize);
            let e = (s + 16).min(g.len());
            let oracle = if pattern::foreign(&g[s..e], inblk, file, ws) {
                "stale-data"
            } else {
                "data-loss"
            };
            let cause = format!(
                "live read of f{file}: byte {pos} is {}, the model says {}",
                pattern::describe(&g[s..e], inblk),
                pattern::describe(&w[s..e], inblk)
            );
            return Some(finding(oracle, Some(at), None, cause));
        }
    };
    Some(finding("data-loss", Some(at), None, cause))
}

/// The state an op started in, for judging how it ended.
#[derive(Clone, Copy)]
struct Before {
    /// The journal had aborted.
    aborted: bool,
    /// ext4_error() calls so far ([`Fs::error_count`]).
    errors: u64,
}

/// Whether a failed op may have changed anything (see `oracle::model`).
pub(crate) fn classify(e: &Error, aborted_before: bool) -> Outcome {
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

fn path(file: u8) -> String {
    format!("/f{file}")
}

/// The inode of `/fN`, looked up in one critical section.
fn lookup(cx: &Cx<Fs>, file: u8) -> Result<Ino> {
    cx.with(|fs| fs.resolve(&path(file)))
}

/// Run one op the way the kernel runs it (module doc): its result, with the bytes of a
/// `read`; `None` for an op that cannot run. The only place that maps ops to engine code.
pub async fn run_op(cx: &Cx<Fs>, op: &Op, eagain_retries: u32) -> Ran {
    if let Op::Migrate { file, to } = *op {
        return migrate_op(cx, file, to, eagain_retries).await;
    }
    Ran {
        res: run_plain(cx, op).await,
        migrate: None,
        spurious_retry: None,
        migrate_map: None,
    }
}

/// A migration ioctl, with the inode's facts before and after it.
async fn migrate_op(cx: &Cx<Fs>, file: u8, to: MigrateTo, retries: u32) -> Ran {
    let ino = match lookup(cx, file) {
        Ok(ino) => ino,
        Err(e) => {
            return Ran {
                res: Some(Err(e)),
                migrate: None,
                spurious_retry: None,
                migrate_map: None,
            }
        }
    };
    let facts = |fs: &mut Fs| {
        fs.inodes.get(&ino).map(|i| MigrateFacts {
            extents: i.is_extents(),
            sectors: fs.inode_blocks(ino),
        })
    };
    // The ioctls (`ioctl_migrate`, `ioctl_ind_migrate`), with the facts taken under their
    // `i_rwsem`: before it, another migration of the file may still be running.
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    let before = cx.with(facts);
    let migrate_map = cx.with(|fs| fs.peek_map(ino));
    let mut spurious_retry = None;
    let r = match to {
        MigrateTo::Extents => {
            let mut start = before;
            let mut r = migrate::ext_migrate(cx, ino).await;
            for attempt in 1..=retries {
                if !matches!(r, Err(Error::Again)) {
                    break;
                }
                // Each attempt is one ext4_ext_migrate() call: its -EAGAIN is judged on its
                // own, or the retry would hide a spurious one (S2) from the oracle.
                let end = cx.with(facts);
                if let (None, Some(s), Some(e)) = (spurious_retry, start, end) {
                    if s.sectors == e.sectors {
                        spurious_retry = Some((attempt, e.sectors));
                    }
                }
                start = end;
                r = migrate::ext_migrate(cx, ino).await;
            }
            r
        }
        MigrateTo::Indirect => ind_migrate::ind_migrate(cx, ino).await,
    };
    let after = cx.with(facts);
    cx.unlock(rw).await;
    Ran {
        res: Some(r.map(OpValue::Ret)),
        migrate: before.zip(after),
        spurious_retry,
        migrate_map,
    }
}

/// Every op but a migration.
async fn run_plain(cx: &Cx<Fs>, op: &Op) -> Option<Result<OpValue>> {
    let none = |r: Result<()>| Some(r.map(|()| OpValue::Unit));
    let data = |file, tag, off, len: u32| pattern::data(file, tag, off, len as usize);
    Some(match *op {
        Op::Create { file } => return none(namespace(cx, file, true).await),
        Op::Unlink { file } => return none(namespace(cx, file, false).await),
        Op::Write {
            file,
            off,
            len,
            tag,
        } => match lookup(cx, file) {
            Ok(ino) => paths::write(cx, ino, off, &data(file, tag, off, len))
                .await
                .map(|()| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::MmapWrite {
            file,
            off,
            len,
            tag,
        } => match lookup(cx, file) {
            Ok(ino) => paths::page_mkwrite(cx, ino, off, &data(file, tag, off, len))
                .await
                .map(|()| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::Read { file, off, len } => match lookup(cx, file) {
            Ok(ino) => paths::read(cx, ino, off, u64::from(len))
                .await
                .map(OpValue::Bytes),
            Err(e) => Err(e),
        },
        Op::Fiemap { file } => match lookup(cx, file) {
            Ok(ino) => paths::fiemap(cx, ino).await.map(|_| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::Truncate { file, size } => match lookup(cx, file) {
            Ok(ino) => paths::truncate(cx, ino, size).await.map(|()| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::Punch { file, off, len } => match lookup(cx, file) {
            Ok(ino) => paths::punch(cx, ino, off, len)
                .await
                .map(|()| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::Fallocate { file, off, len } => match lookup(cx, file) {
            Ok(ino) => fallocate(cx, ino, off, len).await.map(|()| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::Fsync { file } => match lookup(cx, file) {
            Ok(ino) => paths::fsync(cx, ino).await.map(|()| OpValue::Unit),
            Err(e) => Err(e),
        },
        Op::Sync => sync(cx).await.map(|()| OpValue::Unit),
        Op::Writeback => writeback_all(cx).await.map(|()| OpValue::Unit),
        Op::Commit => journal_commit(cx).await.map(|()| OpValue::Unit),
        Op::Checkpoint => journal_checkpoint(cx).await.map(|()| OpValue::Unit),
        Op::Migrate { .. } => return None,
    })
}

/// `creat()` / `unlink()` in the root: the directory's `i_rwsem` (and the victim's), then the
/// engine call in one handle. An unlink evicts the inode at once (the engine has no inode
/// references), so it also waits for writeback to be done with it, as evict()'s
/// inode_wait_for_writeback() does: `s_writepages_rwsem` for write, which no writeback holds
/// then.
async fn namespace(cx: &Cx<Fs>, file: u8, create: bool) -> Result<()> {
    let root = Ino(crate::format::inode::EXT4_ROOT_INO);
    let dir = cx.lock(i_rwsem(root), Mode::Write).await;
    let mut victim = Vec::new();
    if let (false, Ok(ino)) = (create, cx.with(|fs| fs.resolve(&path(file)))) {
        victim.push(cx.lock(i_rwsem(ino), Mode::Write).await);
        victim.push(cx.lock(LockId::WritepagesRwsem, Mode::Write).await);
    }
    let name = path(file);
    let r = in_handle(cx, |fs| match create {
        true => fs.create(&name, 0o644).map(|_| ()),
        false => fs.unlink(&name),
    })
    .await;
    for g in victim.into_iter().rev() {
        cx.unlock(g).await;
    }
    cx.unlock(dir).await;
    r
}

/// `fallocate()` mode 0: `i_rwsem` → handle → `i_data_sem` (write) around the engine call.
async fn fallocate(cx: &Cx<Fs>, ino: Ino, off: u64, len: u64) -> Result<()> {
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    cx.yield_point("journal_start").await;
    let jc = cx.lock(LockId::JournalCommit, Mode::Read).await;
    let ds = cx.lock(i_data_sem(ino), Mode::Write).await;
    let r = cx.with(|fs| fs.fallocate(ino, off, len));
    cx.unlock(ds).await;
    cx.unlock(jc).await;
    cx.unlock(rw).await;
    r
}

/// The flusher: writeback of every inode with dirty pages, one at a time.
async fn writeback_all(cx: &Cx<Fs>) -> Result<()> {
    let inos: std::collections::BTreeSet<Ino> = cx.with(|fs| {
        let dirty = fs.pages.map.iter().filter(|(_, p)| p.dirty);
        dirty.map(|((ino, _), _)| *ino).collect()
    });
    for ino in inos {
        paths::writeback(cx, ino).await?;
    }
    Ok(())
}

/// `sync()`: write back everything, commit (waiting for every open handle), write the
/// superblock, flush.
async fn sync(cx: &Cx<Fs>) -> Result<()> {
    cx.with(|fs| fs.check_writable())?;
    writeback_all(cx).await?;
    journal_commit(cx).await?;
    cx.with(|fs| fs.commit_super().and_then(|()| fs.dev.flush()))
}

fn describe_result(res: &Option<Result<OpValue>>) -> String {
    match res {
        None => "cannot run".into(),
        Some(Ok(OpValue::Bytes(b))) => format!("ok, {} bytes", b.len()),
        Some(Ok(OpValue::Ret(r))) => format!("ok, returned {r}"),
        Some(Ok(OpValue::Unit)) => "ok".into(),
        Some(Err(e)) => format!("error: {e}"),
    }
}

#[cfg(test)]
mod tests;
