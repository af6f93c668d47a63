//! [`Cx`], the handle an op's `async fn` uses: the shared state, locks and yield points.
//!
//! Every scheduler future ([`LockFuture`], [`YieldPoint`]) returns `Pending` exactly once, on its
//! first poll, after telling the control block where the thread stopped; the executor then takes
//! a scheduling decision and polls the thread again only when it is picked, so the second poll
//! completes. A thread therefore runs synchronously from one yield point to the next.
//!
//! The state lives in a `RefCell`, borrowed only inside [`Cx::with`]'s closure, which cannot
//! await. Reaching a yield point while the state is borrowed (possible only by polling a
//! scheduler future by hand inside `with`) panics: a borrow across a yield would let another
//! thread observe a half-done critical section.
//!
//! Locks are released with [`Cx::unlock`], which releases at once and returns a yield point.
//! A [`LockGuard`] dropped without `unlock` while its thread runs panics: error paths unlock
//! explicitly, like the kernel's `goto out_unlock`. Guards dropped when a run is torn down (the
//! futures of deadlocked threads, or after a panic the harness caught) are silent.

use super::ctl::Ctl;
use super::{LockId, Mode, ThreadId};
use std::cell::RefCell;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// The handle of a run's threads: shared state `S`, locks, yield points. Cloning is cheap
/// (two `Rc`s); every clone refers to the same run.
pub struct Cx<S> {
    pub(crate) state: Rc<RefCell<S>>,
    pub(crate) ctl: Rc<RefCell<Ctl>>,
}

impl<S> Clone for Cx<S> {
    fn clone(&self) -> Self {
        Cx {
            state: Rc::clone(&self.state),
            ctl: Rc::clone(&self.ctl),
        }
    }
}

impl<S> Cx<S> {
    /// Run a synchronous critical section on the shared state. Panics if called from inside
    /// another `with`.
    pub fn with<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        let mut state = self.state.try_borrow_mut();
        let state = state
            .as_deref_mut()
            .expect("Cx::with re-entered: the state is borrowed");
        f(state)
    }

    /// The thread being run. Panics outside a scheduled thread.
    pub fn thread_id(&self) -> ThreadId {
        self.ctl.borrow().current()
    }

    /// Tag the running thread's next scheduling decisions with `tag` (the harness: the index of
    /// the op it is about to run); [`RunOutcome::choice_owners`](super::RunOutcome) reports,
    /// per schedule byte, the thread and tag of the decision that consumed it.
    pub fn set_tag(&self, tag: usize) {
        self.ctl.borrow_mut().set_tag(tag);
    }

    /// Take `lock` in `mode` (`down_read()` / `down_write()`): a yield point, after which the
    /// thread holds the lock. The call site is recorded for the trace and for lockdep.
    #[track_caller]
    pub fn lock(&self, lock: LockId, mode: Mode) -> LockFuture<'_, S> {
        LockFuture {
            cx: self,
            lock,
            mode,
            site: Location::caller(),
            asked: false,
        }
    }

    /// Release the lock of `guard` now (`up_read()` / `up_write()`); awaiting the result is the
    /// yield point that follows the release.
    #[track_caller]
    pub fn unlock(&self, mut guard: LockGuard) -> YieldPoint<'_, S> {
        let site = Location::caller();
        let thread = guard.thread;
        self.ctl
            .borrow_mut()
            .release(thread, guard.lock, guard.mode, site);
        guard.released = true;
        YieldPoint {
            cx: self,
            label: guard.lock.class().name(),
            site,
            record: false,
            polled: false,
        }
    }

    /// An explicit yield point named `label` (e.g. `"journal_start"`, `"finish_range"`).
    #[track_caller]
    pub fn yield_point(&self, label: &'static str) -> YieldPoint<'_, S> {
        YieldPoint {
            cx: self,
            label,
            site: Location::caller(),
            record: true,
            polled: false,
        }
    }

    /// Panic if the state is borrowed: we are at a yield point.
    fn assert_unborrowed(&self) {
        assert!(
            self.state.try_borrow_mut().is_ok(),
            "yield point reached while Cx::with borrows the state (borrow held across an await)"
        );
    }
}

/// The future of [`Cx::lock`]; resolves to the guard once the thread holds the lock.
#[must_use = "the lock is taken only when the future is awaited"]
pub struct LockFuture<'c, S> {
    cx: &'c Cx<S>,
    lock: LockId,
    mode: Mode,
    site: &'static Location<'static>,
    asked: bool,
}

impl<S> Future for LockFuture<'_, S> {
    type Output = LockGuard;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<LockGuard> {
        self.cx.assert_unborrowed();
        let (lock, mode) = (self.lock, self.mode);
        if !self.asked {
            self.asked = true;
            self.cx.ctl.borrow_mut().request(lock, mode, self.site);
            return Poll::Pending;
        }
        let thread = self.cx.ctl.borrow().acquired(lock, mode);
        Poll::Ready(LockGuard {
            lock,
            mode,
            thread,
            ctl: Rc::clone(&self.cx.ctl),
            released: false,
        })
    }
}

/// The future of [`Cx::yield_point`] and [`Cx::unlock`]: suspends the thread once.
#[must_use = "a yield point yields only when awaited"]
pub struct YieldPoint<'c, S> {
    cx: &'c Cx<S>,
    label: &'static str,
    site: &'static Location<'static>,
    /// Whether to trace a `Yield` event (an unlock has traced its `Release` already).
    record: bool,
    polled: bool,
}

impl<S> Future for YieldPoint<'_, S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.cx.assert_unborrowed();
        if self.polled {
            return Poll::Ready(());
        }
        self.polled = true;
        let mut ctl = self.cx.ctl.borrow_mut();
        ctl.yield_here(self.label, self.site, self.record);
        Poll::Pending
    }
}

/// A held lock. Give it back with [`Cx::unlock`]; dropping it while its thread runs panics.
#[must_use = "a guard must be released with cx.unlock(guard).await"]
pub struct LockGuard {
    lock: LockId,
    mode: Mode,
    thread: ThreadId,
    ctl: Rc<RefCell<Ctl>>,
    released: bool,
}

impl LockGuard {
    /// The lock held.
    pub fn lock(&self) -> LockId {
        self.lock
    }

    /// How it is held.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released || std::thread::panicking() {
            return;
        }
        let live = self
            .ctl
            .try_borrow()
            .is_ok_and(|ctl| ctl.is_polling(self.thread));
        assert!(
            !live,
            "{} dropped its guard of {} without cx.unlock()",
            self.thread, self.lock
        );
    }
}
