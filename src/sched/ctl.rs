//! The control block shared by the executor and the futures of a run: each thread's status and
//! held locks, the lock table, the lock order, the trace and the step counter.
//!
//! A thread's life: `NotStarted` → `Running`, then any number of
//! (`AtYield` | `AtLock`, maybe then [`Blocked`]) → `Running`, and at last `Done`. A thread is
//! *runnable* when it is `NotStarted`, `AtYield`, `AtLock`, or `Blocked`
//! on a lock the grant rule would now give it. Picking a `Blocked` thread grants its lock; picking
//! an `AtLock` thread makes it try: it takes the lock if it is free for it, else it queues and
//! becomes `Blocked` without running.
//!
//! [`Blocked`]: Status::Blocked

use super::exec::MAX_THREADS;

// The schedule-byte candidate sets (`Ctl::choice_runnable`) are `u64` bit sets.
const _: () = assert!(MAX_THREADS <= 64);
use super::lock::{Blocker, LockTable};
use super::lockdep::LockOrder;
use super::trace::{EventKind, TraceEvent};
use super::{LockId, Mode, ThreadId};
use std::fmt;
use std::panic::Location;

/// A lock a thread wants, and where it asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    lock: LockId,
    mode: Mode,
    site: &'static Location<'static>,
}

/// Where a thread stands between two polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    NotStarted,
    /// Being polled.
    Running,
    /// Suspended at `yield_point(label)` or after an unlock.
    AtYield(&'static str),
    /// Suspended at a lock acquisition, not yet tried.
    AtLock(Want),
    /// Queued for a lock that was busy when it tried.
    Blocked(Want),
    Done,
}

/// Per-thread bookkeeping.
#[derive(Clone, Debug)]
struct ThreadCtl {
    status: Status,
    /// The locks it holds, in acquisition order.
    held: Vec<Want>,
    /// The tag of its decisions ([`Ctl::set_tag`]).
    tag: usize,
}

/// One thread of a deadlock's wait-for cycle. In `cycle[i]`, the thread waits for `wanted` and is
/// kept from it by the thread of `cycle[(i + 1) % n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitLink {
    /// The thread.
    pub thread: ThreadId,
    /// The lock it holds that the previous thread of the cycle waits for; `None` if it blocks
    /// that thread only by waiting ahead of it in the lock's queue (a queued writer).
    pub held: Option<LockId>,
    /// The lock it waits for.
    pub wanted: LockId,
    /// How it wants it.
    pub mode: Mode,
}

impl fmt::Display for WaitLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.held {
            Some(held) => write!(f, "{} holds {held}", self.thread)?,
            None => write!(f, "{} is queued ahead", self.thread)?,
        }
        write!(f, ", waits for {} ({})", self.wanted, self.mode)
    }
}

/// The runnable threads of one decision, in thread order (a slice; no allocation per step).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runnable {
    ids: [ThreadId; MAX_THREADS],
    len: usize,
}

impl Default for Runnable {
    fn default() -> Self {
        Runnable {
            ids: [ThreadId(0); MAX_THREADS],
            len: 0,
        }
    }
}

impl std::ops::Deref for Runnable {
    type Target = [ThreadId];
    fn deref(&self) -> &[ThreadId] {
        &self.ids[..self.len]
    }
}

/// The shared control block (see the module doc).
#[derive(Debug)]
pub(crate) struct Ctl {
    threads: Vec<ThreadCtl>,
    locks: LockTable,
    pub(crate) order: LockOrder,
    pub(crate) trace: Vec<TraceEvent>,
    /// Per schedule byte consumed, in order: the thread picked and its tag then.
    pub(crate) choice_owners: Vec<(ThreadId, usize)>,
    /// Per schedule byte consumed, in order: the threads it chose among (bit `i`: thread `i`).
    pub(crate) choice_runnable: Vec<u64>,
    /// Whether events go to `trace` (off when nobody reads it).
    pub(crate) tracing: bool,
    /// The thread being polled, if any.
    polling: Option<ThreadId>,
    /// Decisions taken so far.
    pub(crate) step: u32,
}

impl Default for Ctl {
    fn default() -> Ctl {
        Ctl {
            threads: Vec::new(),
            locks: LockTable::default(),
            order: LockOrder::default(),
            trace: Vec::new(),
            choice_owners: Vec::new(),
            choice_runnable: Vec::new(),
            tracing: true,
            polling: None,
            step: 0,
        }
    }
}

impl Ctl {
    /// Register a new thread, not started.
    pub(crate) fn add_thread(&mut self) -> ThreadId {
        let id = ThreadId(self.threads.len());
        let status = Status::NotStarted;
        self.threads.push(ThreadCtl {
            status,
            held: Vec::new(),
            tag: 0,
        });
        id
    }

    /// Tag the current thread's next decisions (see `Cx::set_tag`).
    pub(crate) fn set_tag(&mut self, tag: usize) {
        let t = self.current();
        self.threads[t.0].tag = tag;
    }

    /// The thread being polled. Panics outside one: scheduler futures belong in spawned threads.
    pub(crate) fn current(&self) -> ThreadId {
        self.polling
            .expect("scheduler call outside a scheduled thread (not polled by Sched::run)")
    }

    /// Whether `t` is being polled (guards use this to tell a leak from a teardown).
    pub(crate) fn is_polling(&self, t: ThreadId) -> bool {
        self.polling == Some(t)
    }

    fn push(
        &mut self,
        thread: ThreadId,
        kind: EventKind,
        label: &'static str,
        site: Option<&'static Location<'static>>,
    ) {
        if !self.tracing {
            return;
        }
        let step = self.step;
        self.trace.push(TraceEvent {
            step,
            thread,
            kind,
            label,
            site,
        });
    }

    /// Suspend the current thread; it must be running (one scheduler future awaited at a time).
    fn suspend(&mut self, status: Status) -> ThreadId {
        let t = self.current();
        let slot = &mut self.threads[t.0].status;
        assert_eq!(
            *slot,
            Status::Running,
            "{t} awaits two scheduler futures at once"
        );
        *slot = status;
        t
    }

    /// The current thread reached `yield_point(label)` (recorded as a `Yield` event if `record`).
    pub(crate) fn yield_here(
        &mut self,
        label: &'static str,
        site: &'static Location<'static>,
        record: bool,
    ) {
        let t = self.suspend(Status::AtYield(label));
        if record {
            self.push(t, EventKind::Yield, label, Some(site));
        }
    }

    /// The current thread reached an acquisition of `lock` in `mode`.
    pub(crate) fn request(&mut self, lock: LockId, mode: Mode, site: &'static Location<'static>) {
        let t = self.suspend(Status::AtLock(Want { lock, mode, site }));
        // Lockdep validates in lock_acquire(), before the thread may block: so do we.
        let held = self.threads[t.0].held.iter().map(|h| (h.lock, h.site));
        self.order.record(t, held, lock, site, self.step);
        self.push(
            t,
            EventKind::Request { lock, mode },
            lock.class().name(),
            Some(site),
        );
    }

    /// The current thread resumed after its lock acquisition: check that it holds the lock.
    pub(crate) fn acquired(&self, lock: LockId, mode: Mode) -> ThreadId {
        let t = self.current();
        let last = self.threads[t.0].held.last().map(|w| (w.lock, w.mode));
        assert_eq!(last, Some((lock, mode)), "{t} resumed without its lock");
        t
    }

    /// `thread` (the current thread) releases `lock`, held in `mode`.
    pub(crate) fn release(
        &mut self,
        thread: ThreadId,
        lock: LockId,
        mode: Mode,
        site: &'static Location<'static>,
    ) {
        let t = self.current();
        assert_eq!(t, thread, "{t} unlocks {lock}, which {thread} holds");
        let held = &mut self.threads[t.0].held;
        let pos = held.iter().rposition(|w| (w.lock, w.mode) == (lock, mode));
        // OK to unwrap: a guard exists only for a held lock.
        held.remove(pos.unwrap());
        self.locks.release(lock, t, mode);
        self.push(
            t,
            EventKind::Release { lock, mode },
            lock.class().name(),
            Some(site),
        );
    }

    /// The runnable threads, in thread order.
    pub(crate) fn runnable(&self) -> Runnable {
        let mut set = Runnable::default();
        for t in (0..self.threads.len()).map(ThreadId) {
            let runnable = match self.threads[t.0].status {
                Status::NotStarted | Status::AtYield(_) | Status::AtLock(_) => true,
                Status::Blocked(w) => self.locks.grantable(w.lock, t),
                Status::Running | Status::Done => false,
            };
            if runnable {
                set.ids[set.len] = t;
                set.len += 1;
            }
        }
        set
    }

    /// Whether every thread has finished.
    pub(crate) fn all_done(&self) -> bool {
        self.threads.iter().all(|t| t.status == Status::Done)
    }

    /// A decision picked runnable `t` (among `runnable`, by schedule byte `choice`): record it
    /// and let `t` proceed. Returns whether `t` is now running (to be polled); false if it tried a
    /// busy lock and blocked.
    pub(crate) fn resume(
        &mut self,
        t: ThreadId,
        runnable: &[ThreadId],
        choice: Option<usize>,
    ) -> bool {
        let status = self.threads[t.0].status;
        let label = match status {
            Status::NotStarted => "start",
            Status::AtYield(label) => label,
            Status::AtLock(w) | Status::Blocked(w) => w.lock.class().name(),
            Status::Running | Status::Done => panic!("{t} picked but not runnable"),
        };
        let kind = EventKind::Pick {
            runnable: runnable.len(),
            choice,
        };
        self.push(t, kind, label, None);
        if let Some(byte) = choice {
            assert_eq!(
                byte,
                self.choice_owners.len(),
                "schedule bytes are consumed in order"
            );
            self.choice_owners.push((t, self.threads[t.0].tag));
            let mask = runnable.iter().fold(0u64, |m, u| m | 1 << u.0);
            self.choice_runnable.push(mask);
        }
        match status {
            Status::NotStarted => self.push(t, EventKind::Start, "start", None),
            Status::AtLock(w) => {
                self.locks.enqueue(w.lock, t, w.mode);
                if !self.locks.grantable(w.lock, t) {
                    self.threads[t.0].status = Status::Blocked(w);
                    let kind = EventKind::Block {
                        lock: w.lock,
                        mode: w.mode,
                    };
                    self.push(t, kind, label, Some(w.site));
                    return false;
                }
                self.grant(t, w);
            }
            Status::Blocked(w) => self.grant(t, w),
            _ => {}
        }
        self.threads[t.0].status = Status::Running;
        self.polling = Some(t);
        true
    }

    /// Give queued `t` its lock.
    fn grant(&mut self, t: ThreadId, w: Want) {
        self.locks.grant(w.lock, t);
        self.threads[t.0].held.push(w);
        let kind = EventKind::Acquire {
            lock: w.lock,
            mode: w.mode,
        };
        self.push(t, kind, w.lock.class().name(), Some(w.site));
    }

    /// The poll of running `t` returned; `done` if its future completed.
    pub(crate) fn after_poll(&mut self, t: ThreadId, done: bool) {
        self.polling = None;
        let thread = &mut self.threads[t.0];
        if done {
            if let Some(w) = thread.held.first() {
                panic!(
                    "{t} ended holding {} (lock held when returning to user space)",
                    w.lock
                );
            }
            thread.status = Status::Done;
            self.push(t, EventKind::End, "end", None);
        } else {
            assert_ne!(
                thread.status,
                Status::Running,
                "{t} returned Pending without reaching a yield point (a foreign future?)"
            );
        }
    }

    /// The wait-for cycle when no thread is runnable and some are blocked: from the lowest
    /// blocked thread follow each thread's first blocker until a thread repeats; report that
    /// cycle starting at its lowest thread.
    pub(crate) fn wait_cycle(&self) -> Vec<WaitLink> {
        let first = (0..self.threads.len())
            .map(ThreadId)
            .find(|t| self.want(*t).is_some());
        // OK to unwrap: callers ask only when some thread is blocked.
        let mut path: Vec<(ThreadId, Want, Blocker)> = Vec::new();
        let mut t = first.expect("wait_cycle without a blocked thread");
        while !path.iter().any(|&(p, _, _)| p == t) {
            let want = self
                .want(t)
                .unwrap_or_else(|| panic!("{t} blocks a thread but is not blocked"));
            let blocker = self.locks.blockers(want.lock, t).next();
            let blocker = blocker.unwrap_or_else(|| panic!("{t} is blocked by nobody"));
            path.push((t, want, blocker));
            t = blocker.thread;
        }
        // OK to unwrap: the loop ended because `t` is on the path.
        let start = path.iter().position(|&(p, _, _)| p == t).unwrap();
        let mut cycle = path.split_off(start);
        // OK to unwrap: the cycle is not empty.
        let lowest = cycle.iter().enumerate().min_by_key(|(_, e)| e.0).unwrap().0;
        cycle.rotate_left(lowest);
        let n = cycle.len();
        (0..n)
            .map(|i| {
                let (thread, want, _) = cycle[i];
                let (_, prev_want, prev_blocker) = cycle[(i + n - 1) % n];
                let held = prev_blocker.holds.then_some(prev_want.lock);
                WaitLink {
                    thread,
                    held,
                    wanted: want.lock,
                    mode: want.mode,
                }
            })
            .collect()
    }

    /// The lock `t` is blocked on, if it is blocked.
    fn want(&self, t: ThreadId) -> Option<Want> {
        match self.threads[t.0].status {
            Status::Blocked(w) => Some(w),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: ThreadId = ThreadId(0);
    const T1: ThreadId = ThreadId(1);
    const A: LockId = LockId::IDataSem(12);

    /// Pick `t` as the only sensible choice and, if it runs, suspend it with `then`.
    fn step(ctl: &mut Ctl, t: ThreadId, then: impl FnOnce(&mut Ctl)) -> bool {
        let runnable = ctl.runnable();
        let running = ctl.resume(t, &runnable, None);
        if running {
            then(ctl);
            ctl.after_poll(t, false);
        }
        ctl.step += 1;
        running
    }

    #[test]
    fn write_after_write_on_one_lock_is_a_one_thread_cycle() {
        let site = Location::caller();
        let mut ctl = Ctl::default();
        ctl.add_thread();
        assert!(step(&mut ctl, T0, |c| c.request(A, Mode::Write, site)));
        assert!(step(&mut ctl, T0, |c| c.request(A, Mode::Write, site)));
        assert!(!step(&mut ctl, T0, |_| unreachable!()));
        assert!(ctl.runnable().is_empty());
        let link = WaitLink {
            thread: T0,
            held: Some(A),
            wanted: A,
            mode: Mode::Write,
        };
        assert_eq!(ctl.wait_cycle(), vec![link]);
        assert_eq!(
            link.to_string(),
            "T0 holds i_data_sem(12), waits for i_data_sem(12) (write)"
        );
    }

    #[test]
    fn blocked_thread_becomes_runnable_when_the_lock_is_released() {
        let site = Location::caller();
        let mut ctl = Ctl::default();
        ctl.add_thread();
        ctl.add_thread();
        step(&mut ctl, T0, |c| c.request(A, Mode::Write, site));
        step(&mut ctl, T0, |c| c.yield_here("holding", site, true));
        step(&mut ctl, T1, |c| c.request(A, Mode::Read, site));
        assert!(!step(&mut ctl, T1, |_| unreachable!()));
        assert_eq!(*ctl.runnable(), [T0]);
        step(&mut ctl, T0, |c| {
            c.release(T0, A, Mode::Write, site);
            c.yield_here("i_data_sem", site, false);
        });
        assert_eq!(*ctl.runnable(), [T0, T1]);
        assert!(step(&mut ctl, T1, |c| {
            assert_eq!(c.acquired(A, Mode::Read), T1);
            c.yield_here("reading", site, true);
        }));
    }

    #[test]
    fn queued_writer_link_has_no_held_lock() {
        let link = WaitLink {
            thread: T1,
            held: None,
            wanted: A,
            mode: Mode::Write,
        };
        assert_eq!(
            link.to_string(),
            "T1 is queued ahead, waits for i_data_sem(12) (write)"
        );
    }

    #[test]
    #[should_panic(expected = "scheduler call outside a scheduled thread")]
    fn requests_outside_a_thread_panic() {
        Ctl::default().request(A, Mode::Read, Location::caller());
    }
}
