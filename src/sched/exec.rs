//! The executor: [`Sched`] polls the threads of a run one at a time and takes a scheduling
//! decision at every yield point (see the parent module doc for the rules).

use super::ctl::{Ctl, WaitLink};
use super::cx::Cx;
use super::lockdep::{LockOrder, LockOrderInversion};
use super::trace::TraceEvent;
use super::{Schedule, ThreadId};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// At most this many threads per run (a scenario has up to 4).
pub const MAX_THREADS: usize = 4;

/// The default bound on scheduling steps ([`Sched::max_steps`]).
pub const DEFAULT_MAX_STEPS: u32 = 100_000;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// Every thread finished.
    Done,
    /// No thread was runnable while some were blocked: the wait-for cycle, starting at its
    /// lowest thread (see [`WaitLink`]).
    Deadlock {
        /// The cycle.
        cycle: Vec<WaitLink>,
    },
    /// The step bound was reached with threads still runnable (a livelock guard).
    StepLimit,
}

impl fmt::Display for RunEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunEnd::Done => f.write_str("done"),
            RunEnd::StepLimit => f.write_str("step limit reached"),
            RunEnd::Deadlock { cycle } => {
                f.write_str("deadlock:")?;
                for (i, link) in cycle.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{link}")?;
                }
                Ok(())
            }
        }
    }
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunOutcome<R> {
    /// How the run ended.
    pub end: RunEnd,
    /// Each thread's result, `None` if it did not finish.
    pub results: Vec<Option<R>>,
    /// How many schedule bytes were consumed (a prefix of `Schedule::choices`).
    pub decisions_used: usize,
    /// How many scheduling decisions were taken, forced ones included.
    pub steps: u32,
    /// Every lock-order cycle seen during the run (lockdep), deadlocked or not.
    pub inversions: Vec<LockOrderInversion>,
    /// The lock-order edges of the run, to merge across runs.
    pub lock_order: LockOrder,
    /// Every decision and lock event (empty if [`Sched::tracing`] was turned off).
    pub trace: Vec<TraceEvent>,
    /// For each schedule byte consumed (`0..decisions_used`): the thread it picked and that
    /// thread's tag ([`Cx::set_tag`]) at the time. Recorded with tracing on or off.
    pub choice_owners: Vec<(ThreadId, usize)>,
    /// For each schedule byte consumed: the threads it chose among (bit `i`: thread `i`).
    pub choice_runnable: Vec<u64>,
}

/// One spawned thread: its future until it completes, then its result.
struct Thread<'a, R> {
    future: Option<Pin<Box<dyn Future<Output = R> + 'a>>>,
    result: Option<R>,
}

/// The deterministic single-threaded executor of one run, over shared state `S`; each thread's
/// future yields `R`. Futures may borrow for `'a`.
pub struct Sched<'a, S, R> {
    cx: Cx<S>,
    schedule: Schedule,
    max_steps: u32,
    threads: Vec<Thread<'a, R>>,
    names: Vec<String>,
    ran: bool,
}

/// Takes decisions from the schedule bytes (rule in the parent module doc).
struct Picker<'s> {
    choices: &'s [u8],
    used: usize,
    last: Option<ThreadId>,
}

impl Picker<'_> {
    /// Pick among `runnable` (non-empty, in thread order): the thread and the byte index used.
    fn pick(&mut self, runnable: &[ThreadId]) -> (ThreadId, Option<usize>) {
        let (t, choice) = if runnable.len() == 1 {
            (runnable[0], None)
        } else if let Some(&byte) = self.choices.get(self.used) {
            self.used += 1;
            (
                runnable[usize::from(byte) % runnable.len()],
                Some(self.used - 1),
            )
        } else {
            let keep = self.last.filter(|t| runnable.contains(t));
            (keep.unwrap_or(runnable[0]), None)
        };
        self.last = Some(t);
        (t, choice)
    }
}

impl<'a, S, R> Sched<'a, S, R> {
    /// A run over `state` that takes its decisions from `schedule`.
    pub fn new(schedule: Schedule, state: S) -> Self {
        Sched {
            cx: Cx {
                state: Rc::new(RefCell::new(state)),
                ctl: Rc::new(RefCell::new(Ctl::default())),
            },
            schedule,
            max_steps: DEFAULT_MAX_STEPS,
            threads: Vec::new(),
            names: Vec::new(),
            ran: false,
        }
    }

    /// Bound the run to `max_steps` scheduling decisions (default [`DEFAULT_MAX_STEPS`]).
    pub fn max_steps(mut self, max_steps: u32) -> Self {
        self.max_steps = max_steps;
        self
    }

    /// Whether to record [`RunOutcome::trace`] (default on); off, the trace stays empty and
    /// the run is otherwise the same.
    pub fn tracing(self, on: bool) -> Self {
        self.cx.ctl.borrow_mut().tracing = on;
        self
    }

    /// A handle on the run, to move into the threads' futures.
    pub fn cx(&self) -> Cx<S> {
        self.cx.clone()
    }

    /// Add a thread that runs `future` (typically one async block running the thread's ops in
    /// sequence). Threads are numbered in spawn order from `T0`; at most [`MAX_THREADS`].
    pub fn spawn(
        &mut self,
        name: impl Into<String>,
        future: impl Future<Output = R> + 'a,
    ) -> ThreadId {
        assert!(!self.ran, "spawn after run");
        assert!(
            self.threads.len() < MAX_THREADS,
            "more than {MAX_THREADS} threads"
        );
        self.names.push(name.into());
        self.threads.push(Thread {
            future: Some(Box::pin(future)),
            result: None,
        });
        self.cx.ctl.borrow_mut().add_thread()
    }

    /// The names given to [`spawn`](Sched::spawn), by thread number.
    pub fn thread_names(&self) -> &[String] {
        &self.names
    }

    /// Run the threads to the end, a deadlock or the step bound. Callable once.
    pub fn run(&mut self) -> RunOutcome<R> {
        assert!(!self.ran, "Sched::run called twice");
        self.ran = true;
        let choices = std::mem::take(&mut self.schedule.choices);
        let mut picker = Picker {
            choices: &choices,
            used: 0,
            last: None,
        };
        let end = loop {
            let runnable = self.cx.ctl.borrow().runnable();
            if runnable.is_empty() {
                break self.stopped();
            }
            if self.cx.ctl.borrow().step >= self.max_steps {
                break RunEnd::StepLimit;
            }
            let (t, choice) = picker.pick(&runnable);
            let running = self.cx.ctl.borrow_mut().resume(t, &runnable, choice);
            if running {
                self.poll(t);
            }
            self.cx.ctl.borrow_mut().step += 1;
        };
        let decisions_used = picker.used;
        self.schedule.choices = choices;
        self.outcome(end, decisions_used)
    }

    /// Poll running thread `t` up to its next yield point or its end.
    fn poll(&mut self, t: ThreadId) {
        let thread = &mut self.threads[t.0];
        // OK to unwrap: only unfinished threads are runnable.
        let future = thread.future.as_mut().unwrap();
        let poll = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        let done = poll.is_ready();
        if let Poll::Ready(result) = poll {
            thread.result = Some(result);
            thread.future = None;
        }
        self.cx.ctl.borrow_mut().after_poll(t, done);
    }

    /// Nobody is runnable: finished, or deadlocked.
    fn stopped(&self) -> RunEnd {
        let ctl = self.cx.ctl.borrow();
        if ctl.all_done() {
            RunEnd::Done
        } else {
            RunEnd::Deadlock {
                cycle: ctl.wait_cycle(),
            }
        }
    }

    fn outcome(&mut self, end: RunEnd, decisions_used: usize) -> RunOutcome<R> {
        let mut ctl = self.cx.ctl.borrow_mut();
        RunOutcome {
            end,
            results: self.threads.iter_mut().map(|t| t.result.take()).collect(),
            decisions_used,
            steps: ctl.step,
            inversions: ctl.order.inversions(),
            lock_order: ctl.order.clone(),
            trace: std::mem::take(&mut ctl.trace),
            choice_owners: std::mem::take(&mut ctl.choice_owners),
            choice_runnable: std::mem::take(&mut ctl.choice_runnable),
        }
    }

    /// Run `f` on the shared state (before or after [`run`](Sched::run)).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        self.cx.with(f)
    }

    /// The shared state, after dropping the threads' futures (those of deadlocked or stopped
    /// threads included). Panics if a [`Cx`] clone is still alive outside the threads.
    pub fn into_state(mut self) -> S {
        self.threads.clear();
        let state = Rc::try_unwrap(self.cx.state);
        let state = state.unwrap_or_else(|_| panic!("a Cx clone outlives Sched::into_state"));
        state.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::{render, EventKind, LockClass, LockGuard, LockId, Mode};
    use std::task::{Context, Waker};

    /// One step of a test thread.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Lock(LockId, Mode),
        Unlock(LockId),
        /// Log the label in the state, then yield there.
        Yield(&'static str),
    }
    use Op::{Lock, Unlock, Yield};

    const R: Mode = Mode::Read;
    const W: Mode = Mode::Write;
    const RW: LockId = LockId::IRwsem(12);
    const WP: LockId = LockId::WritepagesRwsem;
    const MM: LockId = LockId::MmapLock;
    const DS: LockId = LockId::IDataSem(12);

    type Log = Vec<&'static str>;

    async fn script(cx: Cx<Log>, ops: Vec<Op>) -> usize {
        let mut guards: Vec<LockGuard> = Vec::new();
        for &op in &ops {
            match op {
                Lock(id, mode) => guards.push(cx.lock(id, mode).await),
                Unlock(id) => {
                    let pos = guards.iter().position(|g| g.lock() == id).unwrap();
                    cx.unlock(guards.remove(pos)).await;
                }
                Yield(label) => {
                    cx.with(|log| log.push(label));
                    cx.yield_point(label).await;
                }
            }
        }
        ops.len()
    }

    fn run(schedule: &[u8], threads: &[&[Op]]) -> (RunOutcome<usize>, Log) {
        let mut sched = Sched::new(Schedule::new(schedule.to_vec()), Vec::new());
        for (i, ops) in threads.iter().enumerate() {
            let cx = sched.cx();
            sched.spawn(format!("T{i}"), script(cx, ops.to_vec()));
        }
        let outcome = sched.run();
        (outcome, sched.into_state())
    }

    /// The trace without steps' padding and sites.
    fn brief(trace: &[TraceEvent]) -> Vec<String> {
        let strip = |e: &TraceEvent| TraceEvent { site: None, ..*e }.to_string();
        trace
            .iter()
            .map(|e| strip(e).trim_start().to_string())
            .collect()
    }

    /// The events whose verb (`"acquire"`, `"block"`, …) is in `verbs`, in order, without step.
    fn events(trace: &[TraceEvent], verbs: &[&str]) -> Vec<String> {
        let lines = brief(trace);
        let verb = |l: &String| l.split(' ').nth(2).is_some_and(|v| verbs.contains(&v));
        let picked = lines.into_iter().filter(verb);
        picked
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    }

    fn link(thread: usize, held: Option<LockId>, wanted: LockId, mode: Mode) -> WaitLink {
        WaitLink {
            thread: ThreadId(thread),
            held,
            wanted,
            mode,
        }
    }

    const ABBA_0: &[Op] = &[Lock(RW, W), Lock(WP, W), Unlock(WP), Unlock(RW)];
    const ABBA_1: &[Op] = &[Lock(WP, W), Lock(RW, W), Unlock(RW), Unlock(WP)];

    #[test]
    fn abba_deadlocks_under_an_interleaving_schedule() {
        let (out, _) = run(&[0, 1, 0, 1], &[ABBA_0, ABBA_1]);
        let cycle = vec![link(0, Some(RW), WP, W), link(1, Some(WP), RW, W)];
        assert_eq!(out.end, RunEnd::Deadlock { cycle });
        assert_eq!(out.results, vec![None, None]);
        assert_eq!((out.decisions_used, out.steps), (4, 6));
        let inv: Vec<_> = out.inversions.iter().map(|i| i.cycle.clone()).collect();
        assert_eq!(
            inv,
            vec![vec![LockClass::IRwsem, LockClass::WritepagesRwsem]]
        );
        assert_eq!(
            events(&out.trace, &["block"]),
            vec![
                "T1 block on i_rwsem(12) write",
                "T0 block on s_writepages_rwsem write"
            ]
        );
    }

    #[test]
    fn each_consumed_byte_names_the_thread_and_tag_it_picked() {
        async fn tagged(cx: Cx<Log>, tags: &[usize]) -> usize {
            for &tag in tags {
                cx.set_tag(tag);
                cx.yield_point("op").await;
            }
            tags.len()
        }
        let mut sched = Sched::new(Schedule::new(vec![1, 0, 1, 1, 0]), Vec::new()).tracing(false);
        let cx = sched.cx();
        sched.spawn("T0", tagged(cx, &[10, 11]));
        let cx = sched.cx();
        sched.spawn("T1", tagged(cx, &[20, 21]));
        let out = sched.run();
        assert_eq!(out.end, RunEnd::Done);
        assert!(out.trace.is_empty(), "tracing off");
        let owners: Vec<(usize, usize)> =
            out.choice_owners.iter().map(|&(t, g)| (t.0, g)).collect();
        // Byte 1 starts T1 (tag 0), which stops at tag 20; byte 0 starts T0, which stops at 10;
        // bytes 1, 1 run T1 past 20 and 21 to its end. T0 is then alone: its decisions are
        // forced and use no byte (the fifth byte is left over).
        assert_eq!(owners, [(1, 0), (0, 0), (1, 20), (1, 21)]);
        assert_eq!(out.decisions_used, owners.len());
    }

    #[test]
    fn abba_runs_through_in_order_but_lockdep_reports_the_inversion() {
        let (out, _) = run(&[], &[ABBA_0, ABBA_1]);
        assert_eq!(out.end, RunEnd::Done);
        assert_eq!(out.results, vec![Some(4), Some(4)]);
        assert_eq!(out.decisions_used, 0);
        assert_eq!(out.inversions.len(), 1);
        let inv = &out.inversions[0];
        assert_eq!(
            inv.cycle,
            vec![LockClass::IRwsem, LockClass::WritepagesRwsem]
        );
        let w: Vec<_> = inv
            .witnesses
            .iter()
            .map(|w| (w.thread, w.held, w.acquired))
            .collect();
        assert_eq!(w, vec![(ThreadId(0), RW, WP), (ThreadId(1), WP, RW)]);
    }

    #[test]
    fn two_readers_hold_the_lock_together() {
        let reader: &[Op] = &[Lock(DS, R), Yield("reading"), Unlock(DS)];
        let (out, _) = run(&[0, 0, 1, 1], &[reader, reader]);
        assert_eq!(out.end, RunEnd::Done);
        let lines = brief(&out.trace);
        let first_release = lines.iter().position(|l| l.contains("release")).unwrap();
        let acquires: Vec<_> = (0..lines.len())
            .filter(|&i| lines[i].contains("acquire"))
            .collect();
        assert_eq!(acquires.len(), 2);
        assert!(acquires.iter().all(|&i| i < first_release), "{lines:#?}");
        assert!(events(&out.trace, &["block"]).is_empty());
    }

    #[test]
    fn writer_waits_for_the_reader() {
        let reader: &[Op] = &[Lock(DS, R), Yield("reading"), Unlock(DS)];
        let writer: &[Op] = &[Lock(DS, W), Unlock(DS)];
        let (out, _) = run(&[0, 0, 1, 1], &[reader, writer]);
        assert_eq!(out.end, RunEnd::Done);
        assert_eq!(
            events(&out.trace, &["block"]),
            vec!["T1 block on i_data_sem(12) write"]
        );
        assert_eq!(
            events(&out.trace, &["acquire", "release"]),
            vec![
                "T0 acquire i_data_sem(12) read",
                "T0 release i_data_sem(12) read",
                "T1 acquire i_data_sem(12) write",
                "T1 release i_data_sem(12) write",
            ]
        );
    }

    #[test]
    fn waiting_writer_blocks_a_new_reader() {
        let reader: &[Op] = &[Lock(DS, R), Yield("reading"), Unlock(DS)];
        let writer: &[Op] = &[Lock(DS, W), Unlock(DS)];
        let late_reader: &[Op] = &[Lock(DS, R), Unlock(DS)];
        let (out, _) = run(&[0, 0, 1, 1, 1, 1], &[reader, writer, late_reader]);
        assert_eq!(out.end, RunEnd::Done);
        assert_eq!(
            events(&out.trace, &["block"]),
            vec![
                "T1 block on i_data_sem(12) write",
                "T2 block on i_data_sem(12) read"
            ]
        );
        assert_eq!(
            events(&out.trace, &["acquire"]),
            vec![
                "T0 acquire i_data_sem(12) read",
                "T1 acquire i_data_sem(12) write",
                "T2 acquire i_data_sem(12) read",
            ]
        );
    }

    #[test]
    fn recursive_read_behind_a_waiting_writer_deadlocks() {
        let reader: &[Op] = &[
            Lock(DS, R),
            Yield("between"),
            Lock(DS, R),
            Unlock(DS),
            Unlock(DS),
        ];
        let writer: &[Op] = &[Lock(DS, W), Unlock(DS)];
        let (out, _) = run(&[0, 0, 1, 1], &[reader, writer]);
        let cycle = vec![link(0, Some(DS), DS, R), link(1, None, DS, W)];
        assert_eq!(out.end, RunEnd::Deadlock { cycle });
        assert_eq!(
            out.end.to_string(),
            "deadlock: T0 holds i_data_sem(12), waits for i_data_sem(12) (read); \
             T1 is queued ahead, waits for i_data_sem(12) (write)"
        );
        assert!(
            out.inversions.is_empty(),
            "same-class nesting is not a lockdep edge"
        );
        // Without the writer in between, the recursive read goes through.
        let (out, _) = run(&[], &[reader, writer]);
        assert_eq!(out.end, RunEnd::Done);
    }

    /// T4: page_mkwrite taking i_rwsem under mmap_lock, against write(2) faulting on its user
    /// buffer under i_rwsem. Both take mmap_lock for read, so it takes a third thread (mmap(2),
    /// mmap_lock for write) queued between them to deadlock.
    const WRITE: &[Op] = &[
        Lock(RW, W),
        Yield("copy_from_user"),
        Lock(MM, R),
        Unlock(MM),
        Unlock(RW),
    ];
    const MKWRITE: &[Op] = &[
        Lock(MM, R),
        Yield("fault"),
        Lock(RW, W),
        Unlock(RW),
        Unlock(MM),
    ];
    const MMAP: &[Op] = &[Lock(MM, W), Unlock(MM)];
    const T4_DEADLOCK: &[u8] = &[0, 0, 1, 1, 2, 2, 0, 0];

    #[test]
    fn t4_pattern_deadlocks_through_the_queued_mmap_writer() {
        let (out, log) = run(T4_DEADLOCK, &[WRITE, MKWRITE, MMAP]);
        let cycle = vec![
            link(0, Some(RW), MM, R),
            link(2, None, MM, W),
            link(1, Some(MM), RW, W),
        ];
        assert_eq!(out.end, RunEnd::Deadlock { cycle });
        assert_eq!(log, vec!["copy_from_user", "fault"]);
        assert_eq!(out.decisions_used, 8);
        assert_eq!(
            out.inversions[0].cycle,
            vec![LockClass::IRwsem, LockClass::MmapLock]
        );
    }

    #[test]
    fn t4_pattern_without_the_writer_is_only_an_inversion() {
        let (out, _) = run(&[0, 0, 1, 1, 0, 0, 1, 1, 1, 1], &[WRITE, MKWRITE]);
        assert_eq!(out.end, RunEnd::Done);
        assert_eq!(out.inversions.len(), 1);
    }

    #[test]
    fn same_schedule_same_trace() {
        let schedule = [3, 7, 200, 5, 1, 9, 4, 4, 2, 8, 0, 255];
        let (a, log_a) = run(&schedule, &[WRITE, MKWRITE, MMAP]);
        let (b, log_b) = run(&schedule, &[WRITE, MKWRITE, MMAP]);
        assert!(a.trace.len() > 10);
        assert_eq!(a.trace, b.trace);
        assert_eq!(render(&a.trace), render(&b.trace));
        assert_eq!(
            (a.end, a.results, a.decisions_used),
            (b.end, b.results, b.decisions_used)
        );
        assert_eq!((a.lock_order, log_a), (b.lock_order, log_b));
    }

    #[test]
    fn interleaves_exactly_as_chosen_then_keeps_the_current_thread() {
        let t0: &[Op] = &[Yield("a0"), Yield("a1")];
        let t1: &[Op] = &[Yield("b0")];
        let (out, log) = run(&[1, 0], &[t0, t1]);
        assert_eq!(
            brief(&out.trace),
            vec![
                "0 T1 pick 1 of 2 (schedule[0]) at start",
                "0 T1 start",
                "0 T1 yield b0",
                "1 T0 pick 1 of 2 (schedule[1]) at start",
                "1 T0 start",
                "1 T0 yield a0",
                "2 T0 pick 1 of 2 (default) at a0",
                "2 T0 yield a1",
                "3 T0 pick 1 of 2 (default) at a1",
                "3 T0 end",
                "4 T1 pick (forced) at b0",
                "4 T1 end",
            ]
        );
        assert_eq!(log, vec!["b0", "a0", "a1"]);
        assert_eq!((out.decisions_used, out.steps), (2, 5));
        assert_eq!(out.results, vec![Some(2), Some(1)]);
    }

    #[test]
    fn schedule_bytes_wrap_modulo_the_runnable_count() {
        let t: &[Op] = &[Yield("y")];
        let (out, _) = run(&[5], &[t, t, t]); // 5 % 3 = 2
        assert_eq!(out.trace[0].thread, ThreadId(2));
        assert_eq!(
            out.trace[0].kind,
            EventKind::Pick {
                runnable: 3,
                choice: Some(0)
            }
        );
    }

    #[test]
    fn thread_id_and_results_per_thread() {
        let mut sched = Sched::new(Schedule::new(vec![1]), ());
        for name in ["first", "second"] {
            let cx = sched.cx();
            sched.spawn(name, async move {
                cx.yield_point("y").await;
                cx.thread_id()
            });
        }
        let out = sched.run();
        assert_eq!(out.results, vec![Some(ThreadId(0)), Some(ThreadId(1))]);
        assert_eq!(sched.thread_names(), ["first", "second"]);
    }

    #[test]
    fn step_limit_stops_a_livelock() {
        let mut sched = Sched::new(Schedule::default(), 0u64).max_steps(50);
        let cx = sched.cx();
        sched.spawn("spin", async move {
            loop {
                cx.with(|n| *n += 1);
                cx.yield_point("retry").await;
            }
        });
        let out: RunOutcome<()> = sched.run();
        assert_eq!(
            (out.end, out.steps, out.results),
            (RunEnd::StepLimit, 50, vec![None])
        );
        assert_eq!(sched.into_state(), 50);
    }

    #[test]
    #[should_panic(expected = "borrow held across an await")]
    fn state_borrow_across_a_yield_point_panics() {
        let mut sched = Sched::new(Schedule::default(), 0u32);
        let cx = sched.cx();
        sched.spawn("T0", async move {
            cx.with(|_| {
                let mut y = std::pin::pin!(cx.yield_point("inside with"));
                let _ = y.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            });
        });
        sched.run();
    }

    #[test]
    #[should_panic(expected = "T0 dropped its guard of i_data_sem(12) without cx.unlock()")]
    fn guard_dropped_without_unlock_panics() {
        let mut sched = Sched::new(Schedule::default(), ());
        let cx = sched.cx();
        sched.spawn("T0", async move {
            let guard = cx.lock(DS, W).await;
            drop(guard);
        });
        sched.run();
    }

    #[test]
    #[should_panic(expected = "T0 ended holding i_rwsem(12)")]
    fn thread_ending_with_a_lock_panics() {
        let mut sched = Sched::new(Schedule::default(), ());
        let cx = sched.cx();
        sched.spawn("T0", async move { std::mem::forget(cx.lock(RW, W).await) });
        sched.run();
    }

    #[test]
    #[should_panic(expected = "T0 returned Pending without reaching a yield point")]
    fn foreign_pending_future_panics() {
        let mut sched = Sched::new(Schedule::default(), ());
        sched.spawn("T0", std::future::pending::<()>());
        sched.run();
    }

    #[test]
    #[should_panic(expected = "more than 4 threads")]
    fn fifth_thread_panics() {
        let mut sched = Sched::new(Schedule::default(), ());
        for i in 0..5 {
            sched.spawn(format!("T{i}"), async {});
        }
    }

    #[test]
    fn sched_drops_quietly_after_a_caught_panic() {
        let mut sched = Sched::new(Schedule::new(vec![0, 0, 1, 1]), ());
        let (cx0, cx1) = (sched.cx(), sched.cx());
        sched.spawn("T0", async move {
            let g = cx0.lock(DS, W).await;
            cx0.yield_point("holding").await;
            cx0.unlock(g).await;
        });
        sched.spawn("T1", async move {
            let _g = cx1.lock(RW, W).await;
            panic!("model bug");
        });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sched.run()));
        assert!(caught.is_err());
        drop(sched); // T0's future still holds its guard: dropping it must not panic
    }

    #[test]
    fn deadlocked_run_tears_down_quietly() {
        let (out, log) = run(&[0, 1, 0, 1], &[ABBA_0, ABBA_1]);
        assert!(matches!(out.end, RunEnd::Deadlock { .. }));
        assert!(log.is_empty());
    }
}
