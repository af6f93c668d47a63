//! Model of `ext4_ext_migrate()` and `ext4_ext_swap_inode_data()` (fs/ext4/migrate.c) and of
//! the `EXT4_IOC_MIGRATE` ioctl (fs/ext4/ioctl.c): convert an indirect-mapped inode to an
//! extent tree, in place, while other threads may run.
//!
//! The steps, each with its locks (kernel.md §1.3):
//!
//! 1. ioctl: `i_rwsem` (write) for the whole call; `-EINVAL` checks; a fast symlink is a no-op.
//! 2. `s_writepages_rwsem` (write): no writeback allocates anywhere while it is held.
//! 3. Handle H1: a temporary inode (nlink 0, the original's size, goal = the first inode of the
//!    original's group) with an empty extent root; it borrows the original's checksum seed so
//!    the tree blocks built for it verify for the original (S7 skips this). S6 puts it on the
//!    orphan list.
//! 4. The migrate marker `EXT4_STATE_EXT_MIGRATE` is set under `i_data_sem` (read). Any
//!    allocation into the original from now on clears it (`map_blocks`, on `EXT4_MAP_NEW`).
//!    S1: no marker at all; T2: set after the first extent went in.
//! 5. Handle H2: the walk ([`walk`](crate::ops::walk)) without `i_data_sem`. Each
//!    `finish_range()` and each indirect block freed is a restart point: a commit another
//!    thread waits for lands there, so the migration spans several transactions.
//! 6. The swap, under the original's `i_data_sem` (write): marker gone → `-EAGAIN`; else the
//!    extent root replaces `i_data`, `EXTENTS_FL` is set, the tree blocks move to the
//!    original's `i_blocks`; then the indirect blocks are freed.
//! 7. Cleanup: `journal_ensure_credits(1)` — mainline assigns its result to `retval`, so an
//!    error of the walk or the swap (`-EAGAIN` included) is lost (S17); the fixed engine keeps
//!    the first error. The temporary inode is emptied, gets its own seed back (S8 skips this)
//!    and is evicted (`iput()`).
//!
//! S5 is the 2008 original: the original's `i_data_sem` held for write from before H1 to the
//! end of the walk, i.e. across `journal_start()`.

use crate::error::{Error, Result};
use crate::format::inode::{EXT4_EXTENTS_FL, S_IFLNK, S_IFMT, S_IFREG};
use crate::fs::inode::EXT4_STATE_EXT_MIGRATE;
use crate::fs::namei::ROOT_INO;
use crate::fs::{Fs, Handle};
use crate::ops::locks::{
    handle, i_data_sem, i_rwsem, in_handle, journal_start, journal_stop, JHandle,
};
use crate::ops::walk::{free_ind_block, Walk};
use crate::profile::{Bug, BugSet};
use crate::sched::{Cx, LockGuard, LockId, Mode};
use crate::units::Ino;

/// `EXT4_MAXQUOTAS_TRANS_BLOCKS()` without quota.
pub const EXT4_MAXQUOTAS_TRANS_BLOCKS: u32 = 0;

/// Model of the `EXT4_IOC_MIGRATE` case of __ext4_ioctl(): `inode_lock()`, then
/// ext4_ext_migrate(). A `-EAGAIN` is retried up to `eagain_retries` times under the same
/// `i_rwsem` hold (the review's point 3; profile `fixed`; the kernel: 0).
///
/// Returns the kernel's non-negative return value (0, or with S17 1 when the cleanup's
/// `journal_ensure_credits()` restarted the handle).
pub async fn ioctl_migrate(cx: &Cx<Fs>, ino: Ino, eagain_retries: u32) -> Result<i32> {
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    let mut r = ext_migrate(cx, ino).await;
    let mut tries = 0;
    while matches!(r, Err(Error::Again)) && tries < eagain_retries {
        tries += 1;
        r = ext_migrate(cx, ino).await;
    }
    cx.unlock(rw).await;
    r
}

/// Model of ext4_ext_migrate(): the caller holds `i_rwsem` of `ino`.
pub async fn ext_migrate(cx: &Cx<Fs>, ino: Ino) -> Result<i32> {
    if cx.with(|fs| check_ext_migrate(fs, ino))? {
        return Ok(0);
    }
    let bugs = cx.with(|fs| fs.bugs);
    let wp = cx.lock(LockId::WritepagesRwsem, Mode::Write).await;
    let s5 = match bugs.has(Bug::S5) {
        true => Some(cx.lock(i_data_sem(ino), Mode::Write).await),
        false => None,
    };
    let r = migrate_locked(cx, ino, bugs, s5).await;
    cx.unlock(wp).await;
    r
}

/// The `-EINVAL` checks of ext4_ext_migrate(); `Ok(true)` for a fast symlink (nothing to do).
fn check_ext_migrate(fs: &mut Fs, ino: Ino) -> Result<bool> {
    fs.iget(ino)?;
    if !fs.has_extents() {
        return Err(Error::Invalid("filesystem lacks the extent feature".into()));
    }
    if fs.inode(ino).is_extents() {
        return Err(Error::Invalid("inode already uses extents".into()));
    }
    let link = fs.inode(ino).raw.i_mode & S_IFMT == S_IFLNK;
    Ok(link && fs.inode_blocks(ino) == 0)
}

/// ext4_ext_migrate() from H1 on, with `s_writepages_rwsem` (and with S5 `i_data_sem`) held.
async fn migrate_locked(cx: &Cx<Fs>, ino: Ino, bugs: BugSet, s5: Option<LockGuard>) -> Result<i32> {
    let credits = 3 + EXT4_MAXQUOTAS_TRANS_BLOCKS + u32::from(bugs.has(Bug::S6));
    let made = match journal_start(cx, credits).await {
        Ok(mut jh) => {
            let made = cx.with(|fs| create_tmp_inode(fs, &mut jh.h, ino, bugs));
            let _ = journal_stop(cx, jh).await;
            made
        }
        Err(e) => Err(e),
    };
    let (tmp, tmp_seed) = match made {
        Ok(t) => t,
        Err(e) => return release(cx, s5, Err(e)).await,
    };
    let s5_held = s5.is_some();
    if !bugs.has(Bug::S1) && !bugs.has(Bug::T2) {
        set_marker(cx, ino, s5_held).await;
    }
    let jh = match journal_start(cx, 1).await {
        Ok(jh) => jh,
        Err(e) => {
            let r = release(cx, s5, Err(e)).await;
            let _ = iput(cx, tmp).await;
            return r;
        }
    };
    let mut walk = Walk {
        cx,
        ino,
        tmp,
        lb: Default::default(),
        marker_pending: bugs.has(Bug::T2) && !bugs.has(Bug::S1),
        holds_data_sem: s5_held,
        uncapped: bugs.has(Bug::S15),
        jh: Some(jh),
    };
    let walked = walk.run().await;
    let walked = release(cx, s5, walked).await;
    let mut jh = walk.jh.take();
    let retval = match walked {
        Err(e) => {
            free_ext_block(cx, &mut jh, tmp);
            Err(e)
        }
        Ok(()) => swap_or_free(cx, &mut jh, ino, tmp, bugs).await,
    };
    let ret = match jh.as_mut() {
        Some(j) => cleanup(cx, &mut j.h, tmp, tmp_seed, bugs, retval),
        None => retval,
    };
    if let Some(j) = jh {
        let _ = journal_stop(cx, j).await;
    }
    let _ = iput(cx, tmp).await;
    ret
}

/// Model of free_ext_block(): free the temporary inode's index and leaf blocks (errors are
/// ignored, as the kernel does).
fn free_ext_block(cx: &Cx<Fs>, jh: &mut Option<JHandle>, tmp: Ino) {
    if let Ok(h) = handle(jh) {
        let _ = cx.with(|fs| fs.ext_free_tree_blocks(h, tmp));
    }
}

/// S5: give back the original's `i_data_sem` (`up_write()` at the end of the walk).
async fn release<T>(cx: &Cx<Fs>, s5: Option<LockGuard>, r: Result<T>) -> Result<T> {
    if let Some(g) = s5 {
        cx.unlock(g).await;
    }
    r
}

/// The H1 part of ext4_ext_migrate(): ext4_new_inode() of the temporary inode, the seed
/// swap, `i_size`, clear_nlink(), ext4_ext_tree_init(). Returns the temporary inode and its
/// own checksum seed.
fn create_tmp_inode(fs: &mut Fs, h: &mut Handle, ino: Ino, bugs: BugSet) -> Result<(Ino, u32)> {
    let ipg = fs.sb.s_inodes_per_group;
    let goal = Ino((ino.0 - 1) / ipg * ipg + 1);
    fs.iget(ROOT_INO)?;
    let tmp = fs.new_inode_goal(h, ROOT_INO, S_IFREG, Some(goal))?;
    let orig = fs.inode(ino).clone();
    let t = fs.inode_mut(tmp);
    t.raw.i_uid = orig.raw.i_uid;
    t.raw.i_gid = orig.raw.i_gid;
    let tmp_seed = t.csum_seed;
    // S7 (before e81c9302a6c3): the tree blocks get the temporary inode's own seed.
    if !bugs.has(Bug::S7) {
        t.csum_seed = orig.csum_seed;
    }
    t.raw.i_size = orig.raw.i_size;
    t.raw.i_links_count = 0;
    fs.ext_tree_init(tmp);
    fs.mark_inode_dirty(h, tmp)?;
    // S6 (before 6eeaf88fd586): the temporary inode went on the orphan list in H1.
    if bugs.has(Bug::S6) {
        fs.orphan_add(h, tmp)?;
    }
    Ok((tmp, tmp_seed))
}

/// Set `EXT4_STATE_EXT_MIGRATE` under `i_data_sem` (read); directly when the caller already
/// holds it for write (S5).
pub(crate) async fn set_marker(cx: &Cx<Fs>, ino: Ino, held: bool) {
    let set = |fs: &mut Fs| fs.inode_mut(ino).state |= EXT4_STATE_EXT_MIGRATE;
    if held {
        cx.with(set);
        return;
    }
    let g = cx.lock(i_data_sem(ino), Mode::Read).await;
    cx.with(set);
    cx.unlock(g).await;
}

/// The swap, and on its failure free_ext_block() of the temporary inode (T3: not after
/// `-EAGAIN`, thread v1).
async fn swap_or_free(
    cx: &Cx<Fs>,
    jh: &mut Option<JHandle>,
    ino: Ino,
    tmp: Ino,
    bugs: BugSet,
) -> Result<i32> {
    match swap_inode_data(cx, jh, ino, tmp, bugs).await {
        Ok(()) => Ok(0),
        Err(e) => {
            if !(bugs.has(Bug::T3) && matches!(e, Error::Again)) {
                free_ext_block(cx, jh, tmp);
            }
            Err(e)
        }
    }
}

/// Model of ext4_ext_swap_inode_data(): under the original's `i_data_sem` (write), fail with
/// `-EAGAIN` if the marker was cleared (an allocation raced the walk), else install the
/// temporary inode's extent root and account its tree blocks; then free the indirect blocks
/// and mark the original dirty (after the frees, which decrement `i_blocks`).
pub async fn swap_inode_data(
    cx: &Cx<Fs>,
    jh: &mut Option<JHandle>,
    ino: Ino,
    tmp: Ino,
    bugs: BugSet,
) -> Result<()> {
    let h = handle(jh)?;
    cx.with(|fs| fs.journal_ensure_credits(h, 1))?;
    let saved = cx.with(|fs| {
        let b = &fs.inode(ino).raw.i_block;
        [b[12], b[13], b[14]]
    });
    let g = cx.lock(i_data_sem(ino), Mode::Write).await;
    let marker = cx.with(|fs| {
        let info = fs.inode_mut(ino);
        let had = info.test_state(EXT4_STATE_EXT_MIGRATE);
        info.state &= !EXT4_STATE_EXT_MIGRATE;
        had
    });
    // S1: no marker protocol, nothing to check.
    if !marker && !bugs.has(Bug::S1) {
        cx.unlock(g).await;
        return Err(Error::Again);
    }
    let r = cx.with(|fs| install_tree(fs, ino, tmp));
    cx.unlock(g).await;
    r?;
    let r = free_ind_block(cx, jh, ino, saved).await;
    let r2 = handle(jh).and_then(|h| cx.with(|fs| fs.mark_inode_dirty(h, ino)));
    r.and(r2)
}

/// The core of the swap: `EXTENTS_FL`, `i_data` copied from the temporary inode,
/// `i_blocks += tmp->i_blocks`.
fn install_tree(fs: &mut Fs, ino: Ino, tmp: Ino) -> Result<()> {
    let root = fs.inode(tmp).raw.i_block_bytes();
    let sectors = fs.inode_blocks(ino) + fs.inode_blocks(tmp);
    let info = fs.inode_mut(ino);
    info.raw.i_flags |= EXT4_EXTENTS_FL;
    info.raw.set_i_block_bytes(&root);
    fs.set_inode_blocks(ino, sectors)
}

/// The temporary inode's reset in the cleanup of ext4_ext_migrate(): size 0, `i_blocks` 0,
/// its own seed back (S8 skips that), an empty root (ext4_ext_tree_init()), marked dirty.
fn cleanup_tmp(fs: &mut Fs, h: &mut Handle, tmp: Ino, seed: u32, bugs: BugSet) -> Result<()> {
    fs.inode_mut(tmp).raw.i_size = 0;
    fs.set_inode_blocks(tmp, 0)?;
    // S8 (before 07ea7a617d6b): the borrowed seed stays; the last writes of the temporary
    // inode carry a checksum computed with the original's seed.
    if !bugs.has(Bug::S8) {
        fs.inode_mut(tmp).csum_seed = seed;
    }
    fs.ext_tree_init(tmp);
    fs.mark_inode_dirty(h, tmp)
}

/// The `retval` logic of the cleanup: mainline (S17) returns what `journal_ensure_credits`
/// returned (0, 1 after a restart, or its error), overwriting the walk's or the swap's error;
/// the fixed engine keeps the first error and returns 0 on success.
fn cleanup(
    cx: &Cx<Fs>,
    h: &mut Handle,
    tmp: Ino,
    seed: u32,
    bugs: BugSet,
    retval: Result<i32>,
) -> Result<i32> {
    let credits = cx.with(|fs| fs.journal_ensure_credits(h, 1));
    if credits.is_ok() {
        let _ = cx.with(|fs| cleanup_tmp(fs, h, tmp, seed, bugs));
    }
    if bugs.has(Bug::S17) {
        return credits.map(i32::from);
    }
    let v = retval?;
    credits.map(|_| v)
}

/// Model of iput() of the temporary inode: nlink 0, so ext4_evict_inode() frees it (and with
/// S6 takes it off the orphan list), in a handle of its own.
async fn iput(cx: &Cx<Fs>, tmp: Ino) -> Result<()> {
    in_handle(cx, |fs| fs.evict_inode(tmp)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testutil::{engine_map, ind_fs, migrate_fixed};

    #[test]
    fn rejects_extent_inode_and_missing_feature() {
        let (fs, ino) = ind_fs(&[(0, 3)], true);
        let (fs, r) = migrate_fixed(fs, ino);
        assert_eq!(r, Ok(0));
        let (_, r) = migrate_fixed(fs, ino);
        assert!(matches!(&r, Err(Error::Invalid(m)) if m == "inode already uses extents"));
        let (fs, ino) = ind_fs(&[(0, 3)], false);
        let (_, r) = migrate_fixed(fs, ino);
        assert!(matches!(&r, Err(Error::Invalid(m)) if m == "filesystem lacks the extent feature"));
    }

    #[test]
    fn fast_symlink_is_left_alone() {
        let (mut fs, ino) = ind_fs(&[], true);
        let info = fs.inode_mut(ino);
        info.raw.i_mode = S_IFLNK | 0o777;
        info.raw.i_size = 6;
        info.raw.i_block[0] = u32::from_le_bytes(*b"targ");
        let (free, raw) = (fs.sb.s_free_inodes_count, fs.inode(ino).raw.i_block);
        let (fs, r) = migrate_fixed(fs, ino);
        assert_eq!(r, Ok(0));
        assert!(!fs.inode(ino).is_extents());
        assert_eq!(fs.inode(ino).raw.i_block, raw);
        assert_eq!(fs.sb.s_free_inodes_count, free, "no temporary inode");
    }

    #[test]
    fn direct_blocks_become_one_extent_and_tmp_is_freed() {
        let (mut fs, ino) = ind_fs(&[(0, 12)], true);
        let before = engine_map(&mut fs, ino);
        let free_inodes = fs.sb.s_free_inodes_count;
        let (mut fs, r) = migrate_fixed(fs, ino);
        assert_eq!(r, Ok(0));
        assert!(fs.inode(ino).is_extents());
        assert_eq!(engine_map(&mut fs, ino).runs, before.runs);
        assert_eq!(fs.sb.s_free_inodes_count, free_inodes);
        assert_eq!(fs.inode(ino).state & EXT4_STATE_EXT_MIGRATE, 0);
        assert_eq!(fs.inode_blocks(ino), 12 * 2);
    }
}
