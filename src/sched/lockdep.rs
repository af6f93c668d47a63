//! Lock-order checking, lockdep style.
//!
//! Whenever a thread reaches a lock acquisition, every lock it already holds gives a class edge
//! `held → acquired` ([`LockOrder::record`]). As lockdep does in `lock_acquire()`, this happens
//! *before* the thread may block, so the edges that close a deadlock are recorded too. The first
//! time an edge is seen, the acquisition is kept as its witness (thread, both locks, both call
//! sites, step). After the run, every
//! elementary cycle of the class graph is a [`LockOrderInversion`], whether or not this schedule
//! deadlocked: another schedule can.
//!
//! Simplifications, all deliberate:
//!
//! * Read and write acquisitions give the same edges. Linux rwsems are not recursive-read locks
//!   for lockdep: with a writer queued, a reader waits, so `A(r) → B` against `B → A(r)` is a
//!   real deadlock once a third thread wants `A(w)`.
//! * Nesting two locks of one class (two inodes' `i_data_sem`, recursive `down_read()` of one
//!   rwsem) gives no edge. The kernel orders same-class instances with subclasses
//!   (`I_DATA_SEM_OTHER`, `I_DATA_SEM_TEMP`); we do not track them. The danger that remains, a
//!   recursive read with a writer queued, is a real wait-for cycle and the deadlock detector
//!   reports it when a schedule reaches it.
//! * Cycles are enumerated once each (rooted at their smallest class), at most
//!   [`MAX_INVERSIONS`] per run.

use super::{LockClass, LockId, ThreadId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::Location;

/// At most this many inversions are reported (the class graph is tiny; this only bounds a
/// pathological custom-lock graph).
pub const MAX_INVERSIONS: usize = 32;

/// The first acquisition that created a class edge `held → acquired`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeWitness {
    /// The thread that asked for `acquired` while holding `held`.
    pub thread: ThreadId,
    /// The lock it held.
    pub held: LockId,
    /// Where `held` was taken.
    pub held_site: &'static Location<'static>,
    /// The lock it asked for.
    pub acquired: LockId,
    /// Where it asked for `acquired`.
    pub acquired_site: &'static Location<'static>,
    /// The scheduling step of the request.
    pub step: u32,
}

/// A cycle in the lock-class order: `cycle[0] → cycle[1] → … → cycle[0]`, where
/// `witnesses[i]` shows the edge `cycle[i] → cycle[(i + 1) % n]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOrderInversion {
    /// The classes of the cycle, starting at the smallest.
    pub cycle: Vec<LockClass>,
    /// One witness per edge of the cycle.
    pub witnesses: Vec<EdgeWitness>,
}

/// The class edges seen so far, each with its first witness. Deterministic: a `BTreeMap`.
/// Runs can be [merged](LockOrder::merge) to check lock order across a whole campaign, as
/// lockdep does over a kernel's uptime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockOrder {
    edges: BTreeMap<(LockClass, LockClass), EdgeWitness>,
}

impl LockOrder {
    /// Record that `thread` asked for `acquired` at `site` while holding `held` (each lock with
    /// the site it was taken at), at scheduling step `step`.
    pub fn record(
        &mut self,
        thread: ThreadId,
        held: impl IntoIterator<Item = (LockId, &'static Location<'static>)>,
        acquired: LockId,
        site: &'static Location<'static>,
        step: u32,
    ) {
        for (h, held_site) in held {
            if h.class() == acquired.class() {
                continue;
            }
            let witness = EdgeWitness {
                thread,
                held: h,
                held_site,
                acquired,
                acquired_site: site,
                step,
            };
            self.edges
                .entry((h.class(), acquired.class()))
                .or_insert(witness);
        }
    }

    /// Add `other`'s edges; an edge already known keeps its witness.
    pub fn merge(&mut self, other: &LockOrder) {
        for (&edge, &witness) in &other.edges {
            self.edges.entry(edge).or_insert(witness);
        }
    }

    /// Every class edge with its witness, in class order.
    pub fn edges(&self) -> impl Iterator<Item = (LockClass, LockClass, &EdgeWitness)> {
        self.edges.iter().map(|(&(a, b), w)| (a, b, w))
    }

    /// Every elementary cycle of the class graph (at most [`MAX_INVERSIONS`]), each once,
    /// starting at its smallest class; sorted by that class, then by path.
    pub fn inversions(&self) -> Vec<LockOrderInversion> {
        let nodes: BTreeSet<LockClass> = self.edges.keys().map(|&(a, _)| a).collect();
        let mut found = Vec::new();
        for &root in &nodes {
            let mut path = vec![root];
            self.cycles_from(root, &mut path, &mut found);
        }
        found
    }

    /// Depth-first search for paths `root → … → root` through classes greater than `root`
    /// that are not yet on `path` (so each cycle is found only from its smallest class).
    fn cycles_from(
        &self,
        root: LockClass,
        path: &mut Vec<LockClass>,
        found: &mut Vec<LockOrderInversion>,
    ) {
        // OK to unwrap: `path` always starts with `root`.
        let last = *path.last().unwrap();
        // `IRwsem` is the smallest class, so the range starts at `last`'s first edge.
        let next = self
            .edges
            .range((last, LockClass::IRwsem)..)
            .map(|(&e, _)| e);
        for (_, to) in next.take_while(|&(from, _)| from == last) {
            if found.len() >= MAX_INVERSIONS {
                return;
            }
            if to == root {
                found.push(self.inversion(path));
            } else if to > root && !path.contains(&to) {
                path.push(to);
                self.cycles_from(root, path, found);
                path.pop();
            }
        }
    }

    /// The inversion for the closed path `cycle`, with the witness of each edge.
    fn inversion(&self, cycle: &[LockClass]) -> LockOrderInversion {
        let n = cycle.len();
        let witnesses = (0..n)
            .map(|i| self.edges[&(cycle[i], cycle[(i + 1) % n])])
            .collect();
        LockOrderInversion {
            cycle: cycle.to_vec(),
            witnesses,
        }
    }
}

impl fmt::Display for EdgeWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} wants {} at {} while holding {} (taken at {}), step {}",
            self.thread, self.acquired, self.acquired_site, self.held, self.held_site, self.step
        )
    }
}

impl fmt::Display for LockOrderInversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("possible circular locking dependency: ")?;
        for class in &self.cycle {
            write!(f, "{class} -> ")?;
        }
        // OK to index: a cycle has at least two classes.
        write!(f, "{}", self.cycle[0])?;
        for w in &self.witnesses {
            write!(f, "\n  {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: ThreadId = ThreadId(0);
    const T1: ThreadId = ThreadId(1);

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    fn take(order: &mut LockOrder, thread: ThreadId, held: &[LockId], acquired: LockId, step: u32) {
        let site = here();
        let held = held.iter().map(|&h| (h, site));
        order.record(thread, held, acquired, site, step);
    }

    #[test]
    fn consistent_order_has_no_inversion() {
        let mut order = LockOrder::default();
        let (rw, ds) = (LockId::IRwsem(12), LockId::IDataSem(12));
        take(&mut order, T0, &[rw], ds, 1);
        take(
            &mut order,
            T1,
            &[LockId::IRwsem(13)],
            LockId::IDataSem(13),
            2,
        );
        assert_eq!(order.edges().count(), 1);
        assert!(order.inversions().is_empty());
    }

    #[test]
    fn abba_between_classes_is_one_inversion_with_first_witnesses() {
        let mut order = LockOrder::default();
        let (mm, rw) = (LockId::MmapLock, LockId::IRwsem(12));
        take(&mut order, T0, &[rw], mm, 3);
        take(&mut order, T0, &[LockId::IRwsem(13)], mm, 9); // same edge: witness kept
        take(&mut order, T1, &[mm], LockId::IRwsem(14), 5);
        let inv = order.inversions();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].cycle, vec![LockClass::IRwsem, LockClass::MmapLock]);
        let w = &inv[0].witnesses;
        assert_eq!(
            (w[0].thread, w[0].held, w[0].acquired, w[0].step),
            (T0, rw, mm, 3)
        );
        assert_eq!(
            (w[1].thread, w[1].held, w[1].acquired, w[1].step),
            (T1, mm, LockId::IRwsem(14), 5)
        );
    }

    #[test]
    fn three_class_cycle_and_two_cycle_are_both_found() {
        let mut order = LockOrder::default();
        let (rw, wp, ds) = (
            LockId::IRwsem(1),
            LockId::WritepagesRwsem,
            LockId::IDataSem(1),
        );
        take(&mut order, T0, &[rw], wp, 1);
        take(&mut order, T0, &[wp], ds, 2);
        take(&mut order, T1, &[ds], rw, 3);
        take(&mut order, T1, &[ds], wp, 4);
        let cycles: Vec<_> = order.inversions().into_iter().map(|i| i.cycle).collect();
        use LockClass::*;
        assert_eq!(
            cycles,
            vec![
                vec![IRwsem, WritepagesRwsem, IDataSem],
                vec![IDataSem, WritepagesRwsem],
            ]
        );
    }

    #[test]
    fn same_class_nesting_gives_no_edge() {
        let mut order = LockOrder::default();
        take(
            &mut order,
            T0,
            &[LockId::IDataSem(12)],
            LockId::IDataSem(13),
            1,
        );
        take(
            &mut order,
            T1,
            &[LockId::IDataSem(13)],
            LockId::IDataSem(12),
            2,
        );
        assert_eq!(order.edges().count(), 0);
    }

    #[test]
    fn merge_keeps_existing_witness_and_finds_cross_run_cycle() {
        let (mut a, mut b) = (LockOrder::default(), LockOrder::default());
        take(&mut a, T0, &[LockId::MmapLock], LockId::Page(1, 0), 1);
        take(&mut b, T1, &[LockId::Page(1, 0)], LockId::MmapLock, 7);
        take(&mut b, T1, &[LockId::MmapLock], LockId::Page(2, 0), 8);
        a.merge(&b);
        let inv = a.inversions();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].witnesses[0].step, 1);
        assert_eq!(inv[0].witnesses[1].step, 7);
    }

    #[test]
    fn display_reads_like_lockdep() {
        let mut order = LockOrder::default();
        take(&mut order, T0, &[LockId::IRwsem(1)], LockId::MmapLock, 1);
        take(&mut order, T1, &[LockId::MmapLock], LockId::IRwsem(1), 2);
        let text = order.inversions()[0].to_string();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "possible circular locking dependency: i_rwsem -> mmap_lock -> i_rwsem"
        );
        assert!(
            text.contains("T1 wants i_rwsem(1) at src/sched/lockdep.rs:"),
            "{text}"
        );
    }
}
