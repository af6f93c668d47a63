//! Lock identities and the rwsem state of every lock of a run.
//!
//! A [`LockId`] names one lock instance (`i_data_sem` of inode 12); its [`LockClass`] is the
//! variant without the instance key, which is what lockdep orders. Every lock is a Linux-style
//! read/write semaphore ([`Mode::Read`] / [`Mode::Write`]); mutex-like locks (`i_rwsem` taken as
//! `inode_lock()`, page locks, `JournalCommit`) are simply always taken in `Write` mode.
//!
//! The [`LockTable`] keeps, per lock, its holders and a FIFO queue of waiters. The grant rule
//! (the heart of rwsem deadlocks, so it is spelled out):
//!
//! * a **writer** may take the lock when nobody holds it and it is first in the queue;
//! * a **reader** may take the lock when no writer holds it and no *writer* is queued ahead of it.
//!
//! So readers share, writers wait for readers, and a waiting writer blocks every reader that
//! queues after it, even one that already holds the lock for read (the classic rwsem
//! recursive-read deadlock). This is stricter than a modern kernel's `rwsem_mark_wake()`, which
//! may also wake readers queued behind a writer; it never hides a deadlock the kernel can have.
//! There is no optimistic spinning, lock stealing or handoff: a thread is granted a lock only at a
//! scheduling decision that picks it.

use super::ThreadId;
use std::fmt;

/// One lock instance. The instance keys are raw numbers (an inode number, a logical block) so
/// that the scheduler does not depend on the filesystem's types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockId {
    /// `inode->i_rwsem` (`inode_lock()`), of inode `ino` (the old `i_mutex`).
    IRwsem(u32),
    /// `EXT4_I(inode)->i_data_sem`, of inode `ino`: protects `i_data` and the block map.
    IDataSem(u32),
    /// `mm->mmap_lock` (the old `mmap_sem`). One per run: all threads share one address space.
    MmapLock,
    /// `sbi->s_writepages_rwsem`: writepages (read) against migrate and journal-mode
    /// changes (write).
    WritepagesRwsem,
    /// The page (folio) lock of page `lblk` of inode `ino`: `Page(ino, lblk)`.
    Page(u32, u32),
    /// Waiting for a JBD2 commit: the committing thread holds it for write, threads that must
    /// wait for the commit (handle start on a locked transaction, fsync) take it.
    JournalCommit,
    /// Any other lock: a class name and an instance key.
    Custom(&'static str, u64),
}

/// A lock class: a [`LockId`] without its instance key. Lock order is checked between classes,
/// as lockdep does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockClass {
    /// `i_rwsem`.
    IRwsem,
    /// `i_data_sem`.
    IDataSem,
    /// `mmap_lock`.
    MmapLock,
    /// `s_writepages_rwsem`.
    WritepagesRwsem,
    /// The page (folio) lock.
    Page,
    /// Waiting for a journal commit.
    JournalCommit,
    /// A custom class, by name.
    Custom(&'static str),
}

/// How a lock is taken: `down_read()` or `down_write()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Shared: many readers at once.
    Read,
    /// Exclusive: one writer, no readers.
    Write,
}

impl LockId {
    /// This lock's class (the variant without its instance key).
    pub fn class(self) -> LockClass {
        match self {
            LockId::IRwsem(_) => LockClass::IRwsem,
            LockId::IDataSem(_) => LockClass::IDataSem,
            LockId::MmapLock => LockClass::MmapLock,
            LockId::WritepagesRwsem => LockClass::WritepagesRwsem,
            LockId::Page(_, _) => LockClass::Page,
            LockId::JournalCommit => LockClass::JournalCommit,
            LockId::Custom(name, _) => LockClass::Custom(name),
        }
    }
}

impl LockClass {
    /// The kernel's name for the class, as lockdep would print it.
    pub fn name(self) -> &'static str {
        match self {
            LockClass::IRwsem => "i_rwsem",
            LockClass::IDataSem => "i_data_sem",
            LockClass::MmapLock => "mmap_lock",
            LockClass::WritepagesRwsem => "s_writepages_rwsem",
            LockClass::Page => "page_lock",
            LockClass::JournalCommit => "journal_commit",
            LockClass::Custom(name) => name,
        }
    }
}

impl fmt::Display for LockClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.class().name();
        match *self {
            LockId::IRwsem(ino) | LockId::IDataSem(ino) => write!(f, "{name}({ino})"),
            LockId::Page(ino, lblk) => write!(f, "{name}({ino},{lblk})"),
            LockId::Custom(_, key) => write!(f, "{name}({key})"),
            LockId::MmapLock | LockId::WritepagesRwsem | LockId::JournalCommit => f.write_str(name),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Read => "read",
            Mode::Write => "write",
        })
    }
}

/// Why a waiting thread cannot take its lock: another thread holds it, or waits ahead of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blocker {
    /// The thread in the way.
    pub(crate) thread: ThreadId,
    /// True if it holds the lock; false if it is a waiter queued ahead.
    pub(crate) holds: bool,
}

/// Holders and FIFO waiters of one lock.
#[derive(Clone, Debug, Default)]
struct RwSem {
    holders: Vec<(ThreadId, Mode)>,
    queue: Vec<(ThreadId, Mode)>,
}

/// The state of every lock that is held or waited for. Locks that are neither are absent.
///
/// A run holds few locks at once, so they are kept in a small vector searched linearly (no
/// order of it reaches a decision); the state of a lock that becomes free goes to a spare list
/// and is reused, so that a run allocates only for the most locks it ever has at once.
#[derive(Clone, Debug, Default)]
pub(crate) struct LockTable {
    locks: Vec<(LockId, RwSem)>,
    spare: Vec<RwSem>,
}

impl LockTable {
    fn sem(&self, id: LockId) -> Option<&RwSem> {
        self.pos(id).map(|i| &self.locks[i].1)
    }

    fn pos(&self, id: LockId) -> Option<usize> {
        self.locks.iter().position(|(l, _)| *l == id)
    }

    /// Queue `thread` as a waiter for `id` in `mode` (behind every earlier waiter).
    pub(crate) fn enqueue(&mut self, id: LockId, thread: ThreadId, mode: Mode) {
        let i = self.pos(id).unwrap_or_else(|| {
            let sem = self.spare.pop().unwrap_or_default();
            self.locks.push((id, sem));
            self.locks.len() - 1
        });
        let sem = &mut self.locks[i].1;
        assert!(
            !sem.queue.iter().any(|&(t, _)| t == thread),
            "{thread} queued twice for {id}"
        );
        sem.queue.push((thread, mode));
    }

    /// Whether `thread`, queued for `id`, may take it now (the grant rule in the module doc).
    pub(crate) fn grantable(&self, id: LockId, thread: ThreadId) -> bool {
        self.blockers(id, thread).next().is_none()
    }

    /// The threads that keep queued `thread` from taking `id`: incompatible holders first (in
    /// acquisition order), then the waiters ahead of it that it may not overtake (queue order).
    pub(crate) fn blockers(
        &self,
        id: LockId,
        thread: ThreadId,
    ) -> impl Iterator<Item = Blocker> + '_ {
        let sem = self.sem(id);
        let sem = sem.unwrap_or_else(|| panic!("{thread} is not queued for {id}"));
        let pos = sem.queue.iter().position(|&(t, _)| t == thread);
        // OK to unwrap: callers ask only about queued threads.
        let pos = pos.unwrap_or_else(|| panic!("{thread} is not queued for {id}"));
        let mode = sem.queue[pos].1;
        let conflicts = move |other: Mode| mode == Mode::Write || other == Mode::Write;
        let holders = sem.holders.iter().filter(move |&&(_, m)| conflicts(m));
        let ahead = sem.queue[..pos].iter().filter(move |&&(_, m)| conflicts(m));
        let held = holders.map(|&(t, _)| Blocker {
            thread: t,
            holds: true,
        });
        held.chain(ahead.map(|&(t, _)| Blocker {
            thread: t,
            holds: false,
        }))
    }

    /// Move queued `thread` from the waiters of `id` to its holders. It must be grantable.
    pub(crate) fn grant(&mut self, id: LockId, thread: ThreadId) -> Mode {
        assert!(
            self.grantable(id, thread),
            "{thread} granted {id} out of turn"
        );
        // OK to unwrap: `grantable` found the lock and the waiter.
        let i = self.pos(id).unwrap();
        let sem = &mut self.locks[i].1;
        let pos = sem.queue.iter().position(|&(t, _)| t == thread).unwrap();
        let (_, mode) = sem.queue.remove(pos);
        sem.holders.push((thread, mode));
        mode
    }

    /// Drop `thread`'s hold of `id` in `mode`. Panics if it does not hold it so.
    pub(crate) fn release(&mut self, id: LockId, thread: ThreadId, mode: Mode) {
        let i = self.pos(id);
        let i = i.unwrap_or_else(|| panic!("{thread} releases {id}, which nobody holds"));
        let sem = &mut self.locks[i].1;
        let pos = sem.holders.iter().position(|&h| h == (thread, mode));
        let pos = pos.unwrap_or_else(|| panic!("{thread} releases {id} ({mode}) not held"));
        sem.holders.remove(pos);
        if sem.holders.is_empty() && sem.queue.is_empty() {
            let (_, sem) = self.locks.swap_remove(i);
            self.spare.push(sem);
        }
    }

    /// The current holders of `id`, in acquisition order.
    #[cfg(test)]
    pub(crate) fn holders(&self, id: LockId) -> Vec<(ThreadId, Mode)> {
        self.sem(id).map_or_else(Vec::new, |s| s.holders.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: ThreadId = ThreadId(0);
    const T1: ThreadId = ThreadId(1);
    const T2: ThreadId = ThreadId(2);
    const A: LockId = LockId::IDataSem(12);

    fn held(thread: ThreadId) -> Blocker {
        Blocker {
            thread,
            holds: true,
        }
    }

    fn queued(thread: ThreadId) -> Blocker {
        Blocker {
            thread,
            holds: false,
        }
    }

    #[test]
    fn class_drops_the_instance_key() {
        assert_eq!(LockId::IDataSem(12).class(), LockId::IDataSem(13).class());
        assert_eq!(LockId::Page(1, 2).class(), LockClass::Page);
        assert_eq!(
            LockId::Custom("sb_internal", 7).class(),
            LockClass::Custom("sb_internal")
        );
        assert_ne!(LockId::IRwsem(12).class(), LockId::IDataSem(12).class());
    }

    #[test]
    fn display_names_follow_the_kernel() {
        assert_eq!(LockId::IDataSem(12).to_string(), "i_data_sem(12)");
        assert_eq!(LockId::Page(12, 3).to_string(), "page_lock(12,3)");
        assert_eq!(LockId::WritepagesRwsem.to_string(), "s_writepages_rwsem");
        assert_eq!(
            LockId::Custom("sb_internal", 0).to_string(),
            "sb_internal(0)"
        );
        assert_eq!(LockClass::MmapLock.to_string(), "mmap_lock");
    }

    #[test]
    fn readers_share() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Read);
        table.enqueue(A, T1, Mode::Read);
        assert_eq!(table.grant(A, T1), Mode::Read);
        assert!(table.grantable(A, T0));
        table.grant(A, T0);
        assert_eq!(table.holders(A), vec![(T1, Mode::Read), (T0, Mode::Read)]);
    }

    #[test]
    fn writer_waits_for_readers_then_goes() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Read);
        table.grant(A, T0);
        table.enqueue(A, T1, Mode::Write);
        assert_eq!(table.blockers(A, T1).collect::<Vec<_>>(), vec![held(T0)]);
        table.release(A, T0, Mode::Read);
        assert!(table.grantable(A, T1));
        assert_eq!(table.grant(A, T1), Mode::Write);
        assert_eq!(table.holders(A), vec![(T1, Mode::Write)]);
    }

    #[test]
    fn waiting_writer_blocks_a_later_reader_even_a_holder() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Read);
        table.grant(A, T0);
        table.enqueue(A, T1, Mode::Write);
        table.enqueue(A, T2, Mode::Read);
        assert_eq!(table.blockers(A, T2).collect::<Vec<_>>(), vec![queued(T1)]);
        // T0 reads again (recursive read): it queues behind the writer too.
        table.enqueue(A, T0, Mode::Read);
        assert_eq!(table.blockers(A, T0).collect::<Vec<_>>(), vec![queued(T1)]);
    }

    #[test]
    fn writer_is_blocked_by_everyone_ahead() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Write);
        table.grant(A, T0);
        table.enqueue(A, T1, Mode::Read);
        table.enqueue(A, T2, Mode::Write);
        assert_eq!(table.blockers(A, T1).collect::<Vec<_>>(), vec![held(T0)]);
        assert_eq!(
            table.blockers(A, T2).collect::<Vec<_>>(),
            vec![held(T0), queued(T1)]
        );
    }

    #[test]
    fn release_of_last_holder_forgets_the_lock() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Write);
        table.grant(A, T0);
        table.release(A, T0, Mode::Write);
        assert!(table.locks.is_empty());
    }

    #[test]
    #[should_panic(expected = "T1 granted i_data_sem(12) out of turn")]
    fn grant_out_of_turn_panics() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Write);
        table.enqueue(A, T1, Mode::Write);
        table.grant(A, T1);
    }

    #[test]
    #[should_panic(expected = "T0 releases i_data_sem(12) (read) not held")]
    fn release_in_the_wrong_mode_panics() {
        let mut table = LockTable::default();
        table.enqueue(A, T0, Mode::Write);
        table.grant(A, T0);
        table.release(A, T0, Mode::Read);
    }
}
