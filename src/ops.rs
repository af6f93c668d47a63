//! Operations as the scheduler runs them: each op is an `async fn(cx: &Cx<Fs>, …)` that takes
//! the kernel's locks in the kernel's order ([`Cx::lock`] / [`Cx::unlock`], each a yield
//! point) and runs the synchronous engine code of [`crate::fs`] inside [`Cx::with`] critical
//! sections, never holding the borrow across an await.
//!
//! | module | kernel | ops |
//! |---|---|---|
//! | [`migrate`] | fs/ext4/migrate.c `ext4_ext_migrate()`, fs/ext4/ioctl.c `EXT4_IOC_MIGRATE` | indirect → extents |
//! | [`walk`] | migrate.c `migrate_struct`, `update_*_extent_range()`, `finish_range()`, `free_ind_block()` | the walk and the frees of the swap |
//! | [`ind_migrate`] | migrate.c `ext4_ind_migrate()` (`chattr -e`) | extents → indirect |
//! | [`paths`] | inode.c, file.c, fsync.c, page-writeback | the concurrent paths: page_mkwrite, write, read, fiemap, truncate, punch, writeback, fsync, mmap |
//! | [`locks`] | ext4_jbd2.c, the `jbd2_handle` lockdep map | journal handles as locks |
//!
//! There is ONE implementation of each op. The offline command (`e4fuzz migrate`) runs the
//! same async code on a one-thread [`Sched`] with an empty schedule ([`run_single`]).
//!
//! Lock order (fs/ext4/super.c, kernel.md §1.5), as the paths take them:
//!
//! ```text
//! page fault:      mmap_lock → journal handle → page lock → i_data_sem
//! buffered write:  i_rwsem → (mmap_lock: fault-in of the user buffer) → handle → page → i_data_sem
//! truncate, punch: i_rwsem → handle → i_data_sem
//! writeback:       s_writepages_rwsem(r) → page → i_data_sem(r)
//! migrate:         i_rwsem → s_writepages_rwsem(w) → handle → i_data_sem
//! fsync:           writeback, then the commit (journal_commit held for write)
//! ```

pub mod ind_migrate;
pub mod locks;
pub mod migrate;
pub mod paths;
pub mod walk;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
pub(crate) mod testutil;

use crate::fs::Fs;
use crate::sched::{Cx, RunEnd, Sched, Schedule};
use std::future::Future;

/// Run one op to completion on a one-thread scheduler with an empty schedule (the offline
/// commands): `op` gets the run's [`Cx`] and returns the op's future. Returns the filesystem
/// and the op's result.
///
/// # Panics
/// If the op deadlocks on itself (a bug in our model: one thread cannot wait for another).
pub fn run_single<R, Fut>(fs: Fs, name: &str, op: impl FnOnce(Cx<Fs>) -> Fut) -> (Fs, R)
where
    Fut: Future<Output = R>,
{
    let mut sched = Sched::new(Schedule::default(), fs);
    let fut = op(sched.cx());
    sched.spawn(name, fut);
    let mut out = sched.run();
    assert_eq!(out.end, RunEnd::Done, "{name} did not finish on its own");
    let r = out
        .results
        .pop()
        .flatten()
        .expect("the only thread finished");
    (sched.into_state(), r)
}
