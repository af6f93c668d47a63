//! The trace of a run: every scheduling decision and every lock event, in order.
//!
//! The `repro` command prints it as the readable interleaving ([`render`]); the minimiser reads
//! the [`EventKind::Pick`] events to learn which schedule bytes were consumed and what they
//! chose. Two runs with the same threads and the same [`Schedule`](super::Schedule) give equal
//! traces (sites are source locations, so they are stable too).

use super::{LockId, Mode, ThreadId};
use std::fmt;
use std::panic::Location;

/// One event of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// The scheduling step the event belongs to (the number of decisions taken before it).
    pub step: u32,
    /// The thread concerned (for a pick, the thread picked).
    pub thread: ThreadId,
    /// What happened.
    pub kind: EventKind,
    /// A short name: the yield-point label, the lock class, or where a picked thread resumes.
    pub label: &'static str,
    /// The source location of the call that caused the event, if one did.
    pub site: Option<&'static Location<'static>>,
}

/// What a [`TraceEvent`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A scheduling decision picked the thread among `runnable` runnable threads. `choice` is the
    /// index of the schedule byte consumed, or `None` if the decision was forced (one runnable
    /// thread) or the schedule had run out.
    Pick {
        /// How many threads were runnable.
        runnable: usize,
        /// The index in `Schedule::choices` of the byte that decided, if one did.
        choice: Option<usize>,
    },
    /// The thread ran for the first time.
    Start,
    /// The thread reached an explicit yield point.
    Yield,
    /// The thread reached a lock acquisition (a yield point: it tries when it is next picked).
    Request {
        /// The lock asked for.
        lock: LockId,
        /// How.
        mode: Mode,
    },
    /// The thread, picked, tried to take its lock, found it busy and joined its wait queue. It is
    /// not runnable until the grant rule lets it take the lock.
    Block {
        /// The lock waited for.
        lock: LockId,
        /// How.
        mode: Mode,
    },
    /// The thread took the lock it asked for (at a decision that picked it).
    Acquire {
        /// The lock taken.
        lock: LockId,
        /// How.
        mode: Mode,
    },
    /// The thread released a lock (then reached a yield point).
    Release {
        /// The lock released.
        lock: LockId,
        /// How it was held.
        mode: Mode,
    },
    /// The thread's future completed.
    End,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>4} {} ", self.step, self.thread)?;
        match self.kind {
            EventKind::Pick { runnable, choice } => match choice {
                Some(i) => write!(f, "pick 1 of {runnable} (schedule[{i}]) at {}", self.label)?,
                None if runnable == 1 => write!(f, "pick (forced) at {}", self.label)?,
                None => write!(f, "pick 1 of {runnable} (default) at {}", self.label)?,
            },
            EventKind::Start => f.write_str("start")?,
            EventKind::Yield => write!(f, "yield {}", self.label)?,
            EventKind::Request { lock, mode } => write!(f, "request {lock} {mode}")?,
            EventKind::Block { lock, mode } => write!(f, "block on {lock} {mode}")?,
            EventKind::Acquire { lock, mode } => write!(f, "acquire {lock} {mode}")?,
            EventKind::Release { lock, mode } => write!(f, "release {lock} {mode}")?,
            EventKind::End => f.write_str("end")?,
        }
        if let Some(site) = self.site {
            write!(f, " @ {}:{}", site.file(), site.line())?;
        }
        Ok(())
    }
}

/// The trace as text, one event per line.
pub fn render(trace: &[TraceEvent]) -> String {
    let mut out = String::new();
    for event in trace {
        out.push_str(&event.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_render_one_per_line() {
        let site = Location::caller();
        let lock = LockId::IDataSem(12);
        let trace = [
            TraceEvent {
                step: 0,
                thread: ThreadId(1),
                kind: EventKind::Pick {
                    runnable: 2,
                    choice: Some(0),
                },
                label: "start",
                site: None,
            },
            TraceEvent {
                step: 0,
                thread: ThreadId(1),
                kind: EventKind::Request {
                    lock,
                    mode: Mode::Write,
                },
                label: "i_data_sem",
                site: Some(site),
            },
            TraceEvent {
                step: 1,
                thread: ThreadId(1),
                kind: EventKind::Pick {
                    runnable: 1,
                    choice: None,
                },
                label: "i_data_sem",
                site: None,
            },
        ];
        let expected = format!(
            "   0 T1 pick 1 of 2 (schedule[0]) at start\n   \
             0 T1 request i_data_sem(12) write @ {}:{}\n   \
             1 T1 pick (forced) at i_data_sem\n",
            site.file(),
            site.line()
        );
        assert_eq!(render(&trace), expected);
    }
}
