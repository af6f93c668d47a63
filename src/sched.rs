//! The deterministic scheduler: the threads of a scenario, their locks and yield points,
//! deadlock and lock-order detection. It knows nothing of the filesystem: it is generic over the
//! shared state `S` that the threads' ops work on.
//!
//! # Threads and yield points
//!
//! An op is an `async fn` taking a [`Cx<S>`]; a thread is one future (the harness builds one async
//! block per thread that runs its ops in sequence). [`Sched`] polls the threads on the calling OS
//! thread with a no-op waker: exactly one thread runs at a time, synchronously, from one yield
//! point to the next. Yield points are:
//!
//! * thread start (a thread runs only once picked) and thread end;
//! * every lock acquisition ([`Cx::lock`]): the thread stops *before* trying;
//! * every release ([`Cx::unlock`]): the lock is released, then the thread stops;
//! * every explicit [`Cx::yield_point`] (`"journal_start"`, each `finish_range`, …).
//!
//! Critical sections on the state are synchronous closures ([`Cx::with`]), so no borrow of the
//! state can span a yield (reaching one while borrowed panics).
//!
//! ```
//! use e4fuzz::sched::{Cx, LockId, Mode, Schedule, Sched};
//!
//! async fn bump(cx: &Cx<u32>, ino: u32) -> u32 {
//!     let d = cx.lock(LockId::IDataSem(ino), Mode::Write).await;
//!     let seen = cx.with(|n| *n);
//!     cx.yield_point("between").await; // still under the lock: no lost update
//!     cx.with(|n| *n = seen + 1);
//!     cx.unlock(d).await;
//!     seen
//! }
//!
//! let mut sched = Sched::new(Schedule::new(vec![0, 1, 1, 0, 1]), 0u32);
//! for name in ["T0", "T1"] {
//!     let cx = sched.cx();
//!     sched.spawn(name, async move { bump(&cx, 12).await });
//! }
//! let outcome = sched.run();
//! assert_eq!(outcome.results.len(), 2);
//! assert_eq!(sched.into_state(), 2);
//! ```
//!
//! # Decisions
//!
//! At every yield point the executor lists the *runnable* threads in thread order: threads not
//! started, at a yield point, at a lock acquisition not yet tried, or blocked on a lock that the
//! grant rule would now give them. It picks one:
//!
//! * one runnable thread: it is picked (a forced decision, which consumes no schedule byte);
//! * else, while [`Schedule::choices`] lasts, decision `i` picks `runnable[choices[i] % len]`;
//! * after the choices run out, the thread that ran last keeps running if it is runnable, else
//!   the lowest-numbered runnable thread runs.
//!
//! A picked thread at a lock acquisition tries it: it takes it if the lock is free *for it*
//! (the grant rule under *Locks*), else it joins the lock's FIFO queue and blocks without
//! running. A picked blocked thread takes its lock and runs. The number of bytes
//! consumed is [`RunOutcome::decisions_used`]; the rest of the schedule did not matter.
//!
//! # Locks
//!
//! Every [`LockId`] is a Linux-style rwsem taken in [`Mode::Read`] or [`Mode::Write`]: many
//! readers or one writer; a writer waits for the readers; a writer *waiting* blocks readers that
//! come after it, even a thread that already holds the lock for read (so a recursive
//! `down_read()` can deadlock, as in the kernel). Mutex-like locks are taken in `Write` mode.
//! Release is explicit, `cx.unlock(guard).await`; dropping a [`LockGuard`] while its thread runs
//! panics (model bug), and a thread that ends holding a lock panics.
//!
//! # Findings
//!
//! * Deadlock: no thread runnable and some blocked → [`RunEnd::Deadlock`] with the wait-for
//!   cycle ([`WaitLink`]s, starting at the lowest thread).
//! * Lock order (lockdep style): each acquisition, when the thread reaches it (before it can
//!   block), adds class edges `held → wanted`; every cycle of
//!   the class graph over the whole run is a [`LockOrderInversion`] with one witness (thread,
//!   locks, call sites, step) per edge, deadlock or not. Read and write count alike; two locks
//!   of one class give no edge (see [`LockOrder`]).
//! * Livelock guard: after `max_steps` decisions the run stops with [`RunEnd::StepLimit`].
//!
//! The [`trace`](RunOutcome::trace) records every decision and lock event with its step, thread,
//! label and call site; [`render`] prints it. Nothing observable depends on hash order, OS
//! threads or the clock: the same threads and schedule give the same trace.
//!
//! Not modelled: `trylock`, lock handoff and optimistic spinning, `join!`/`select!` inside a
//! thread (a thread awaits one scheduler future at a time; any other pending future panics).

mod ctl;
mod cx;
mod exec;
mod lock;
mod lockdep;
mod trace;

pub use ctl::WaitLink;
pub use cx::{Cx, LockFuture, LockGuard, YieldPoint};
pub use exec::{RunEnd, RunOutcome, Sched, DEFAULT_MAX_STEPS, MAX_THREADS};
pub use lock::{LockClass, LockId, Mode};
pub use lockdep::{EdgeWitness, LockOrder, LockOrderInversion, MAX_INVERSIONS};
pub use trace::{render, EventKind, TraceEvent};

use std::fmt;

/// A thread of a run, numbered in spawn order. Displayed `T0`, `T1`, ….
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(pub usize);

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// The scheduling decisions of a run, from the fuzz input: `choices[i]` decides the `i`-th
/// non-forced decision (rule in the module doc). An empty schedule runs each thread as long as
/// it can, lowest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// One byte per decision.
    pub choices: Vec<u8>,
}

impl Schedule {
    /// A schedule of these decisions.
    pub fn new(choices: Vec<u8>) -> Self {
        Schedule { choices }
    }
}
