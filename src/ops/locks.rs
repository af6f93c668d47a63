//! Journal handles as locks (model of the `jbd2_handle` lockdep map of fs/jbd2/transaction.c).
//!
//! The kernel tells lockdep that a running handle holds the journal's `j_trans_commit_map` for
//! read (`start_this_handle()` → `rwsem_acquire_read()`), and that waiting for a commit takes it
//! for write (`jbd2_might_wait_for_commit()`): a commit cannot finish while a handle is open,
//! and a handle cannot start while a commit is waiting. This module does the same with
//! [`LockId::JournalCommit`]: [`journal_start`] takes it for read and keeps it until
//! [`journal_stop`]; [`journal_commit`] takes it for write around the commit. So a commit
//! never runs with open handles (the engine asserts that), and the lock-order checker sees the
//! handle between `i_rwsem`/`mmap_lock` and the page lock/`i_data_sem`, as lockdep does.
//!
//! Engine-internal commits (a full transaction at `journal_start`, a restart in
//! `journal_ensure_credits`) happen only when no other handle is open, inside one critical
//! section, so they need no lock.

use crate::error::{Error, Result};
use crate::fs::{Fs, Handle};
use crate::sched::{Cx, LockGuard, LockId, Mode};
use crate::units::Ino;

/// An open journal handle and the `jbd2_handle` read hold that stands for it.
pub struct JHandle {
    /// The engine's handle (credits, blocks dirtied).
    pub h: Handle,
    guard: LockGuard,
}

/// Model of ext4_journal_start(): a yield point, the `jbd2_handle` read hold (waits while a
/// commit is waiting), then [`Fs::journal_start`].
pub async fn journal_start(cx: &Cx<Fs>, credits: u32) -> Result<JHandle> {
    cx.yield_point("journal_start").await;
    let guard = cx.lock(LockId::JournalCommit, Mode::Read).await;
    match cx.with(|fs| fs.journal_start(credits)) {
        Ok(h) => Ok(JHandle { h, guard }),
        Err(e) => {
            cx.unlock(guard).await;
            Err(e)
        }
    }
}

/// Model of ext4_journal_stop(): [`Fs::journal_stop`], then release the hold (a yield point).
pub async fn journal_stop(cx: &Cx<Fs>, jh: JHandle) -> Result<()> {
    let JHandle { h, guard } = jh;
    let r = cx.with(|fs| fs.journal_stop(h));
    cx.unlock(guard).await;
    r
}

/// A point where `ext4_journal_ensure_credits()` may restart the handle (model of
/// jbd2__journal_restart(): once a commit has locked the running transaction,
/// jbd2_journal_extend() fails, the handle stops, the commit runs, and a new handle starts in
/// the next transaction). The model restarts unconditionally: stop, then start again with
/// `credits`. With no commit waiting this changes nothing on disk; with one waiting (a thread
/// in [`journal_commit`]) the commit lands here, as it can in the kernel once the handle runs
/// out of credits. `slot` is `None` afterwards if the new start failed.
pub async fn restart_point(cx: &Cx<Fs>, slot: &mut Option<JHandle>, credits: u32) -> Result<()> {
    let jh = slot.take().ok_or(Error::Aborted)?;
    journal_stop(cx, jh).await?;
    *slot = Some(journal_start(cx, credits).await?);
    Ok(())
}

/// The engine handle in `slot`, or `Error::Aborted` when a restart lost it.
pub fn handle(slot: &mut Option<JHandle>) -> Result<&mut Handle> {
    slot.as_mut().map(|jh| &mut jh.h).ok_or(Error::Aborted)
}

/// Model of a commit that must leave what came before it durable (the commit timer, sync):
/// wait for every open handle (`jbd2_handle` for write), then [`Fs::commit_with_barrier`]
/// for the running transaction.
pub async fn journal_commit(cx: &Cx<Fs>) -> Result<()> {
    under_commit_lock(cx, |fs| fs.commit_with_barrier(None)).await
}

/// Model of ext4_fsync_journal() + ext4_sync_file()'s barrier: as [`journal_commit`], for
/// the transaction that last dirtied `ino` (`i_sync_tid`).
pub async fn journal_commit_inode(cx: &Cx<Fs>, ino: Ino) -> Result<()> {
    under_commit_lock(cx, |fs| fs.commit_with_barrier(Some(ino))).await
}

/// Model of ext4_ioctl_checkpoint() (fs/ext4/ioctl.c): jbd2_journal_lock_updates() (the
/// commit lock for write: no handle is open), then [`Fs::journal_checkpoint`].
pub async fn journal_checkpoint(cx: &Cx<Fs>) -> Result<()> {
    under_commit_lock(cx, Fs::journal_checkpoint).await
}

/// `f` with the commit lock held for write: every open handle has stopped, and none starts
/// until `f` is done.
async fn under_commit_lock(cx: &Cx<Fs>, f: impl FnOnce(&mut Fs) -> Result<()>) -> Result<()> {
    let g = cx.lock(LockId::JournalCommit, Mode::Write).await;
    let r = cx.with(f);
    cx.unlock(g).await;
    r
}

/// Run a synchronous engine call that starts and stops its own handle (truncate, punch,
/// evict) as one handle: the `jbd2_handle` read hold around it.
pub async fn in_handle<T>(cx: &Cx<Fs>, f: impl FnOnce(&mut Fs) -> Result<T>) -> Result<T> {
    cx.yield_point("journal_start").await;
    let g = cx.lock(LockId::JournalCommit, Mode::Read).await;
    let r = cx.with(f);
    cx.unlock(g).await;
    r
}

/// `i_data_sem` of `ino`.
pub fn i_data_sem(ino: Ino) -> LockId {
    LockId::IDataSem(ino.0)
}

/// `mapping->invalidate_lock` of `ino` (`filemap_invalidate_lock()`): punch hole holds it for
/// write from its page-cache drop to the end of its handle, so no page fault brings a page of
/// the range back; `page_mkwrite` takes it for read.
pub fn invalidate_lock(ino: Ino) -> LockId {
    LockId::Custom("invalidate_lock", u64::from(ino.0))
}

/// `i_rwsem` of `ino` (`inode_lock()`).
pub fn i_rwsem(ino: Ino) -> LockId {
    LockId::IRwsem(ino.0)
}
