//! JBD2, the journal: recovery now; transactions, commit and checkpoint later.
//!
//! | file | models |
//! |---|---|
//! | `jbd2/journal.rs` | [`JournalLoc`] (the journal inode's map, `jbd2_journal_bmap()`), [`Journal`] (`journal_t` as e2fsck loads it), [`LogWriter`] (log layout of a commit) |
//! | `jbd2/recovery.rs` | fs/jbd2/recovery.c: [`jbd2_journal_recover`], `do_one_pass()` ×3, [`RecoveryInfo`] |
//! | `jbd2/revoke.rs` | fs/jbd2/revoke.c's table: [`RevokeTable`] |
//!
//! [`recover`] is what `e2fsck -E journal_only` does to an image file (e2fsck/journal.c:
//! `e2fsck_check_ext3_journal()`, `recover_ext3_journal()`, `e2fsck_run_ext3_journal()`),
//! so that our result can be compared block for block with e2fsck 1.47's:
//!
//! 1. find the journal (inode `s_journal_inum`, or the `s_jnl_blocks` backup, which is then
//!    written back to the inode) and load its superblock;
//! 2. if `needs_recovery` is set or `s_start != 0`, run [`jbd2_journal_recover`];
//! 3. release the journal: `s_sequence` = the next transaction id (unchanged if recovery
//!    failed), `s_start = 0`; a failed commit sets `s_errno = -EINVAL` first;
//! 4. re-read the filesystem superblock (the replay may have rewritten it), keep its
//!    `EXT2_ERROR_FS` bit from before, clear `needs_recovery`, clear `EXT2_VALID_FS` if
//!    recovery failed;
//! 5. a journal `s_errno` (from a failed commit or an aborted journal) sets `EXT2_ERROR_FS`
//!    and is cleared; flush.
//!
//! e2fsck also bumps `s_kbytes_written` and sets `s_wtime` (wall clock) when it closes the
//! filesystem; we leave both alone (no wall clock reaches the disk). Unlike e2fsck, a journal
//! we cannot use is an error, never "fixed" (e2fsck would delete or re-create it), and device
//! errors abort without touching the journal, so recovery can simply be run again.
//!
//! The kernel differs from e2fsck in one case: with `needs_recovery` clear and `s_start != 0`
//! it discards the log (`jbd2_journal_wipe()`), where e2fsck -y replays it; we follow e2fsck.

pub mod journal;
pub mod recovery;
pub mod revoke;

pub use journal::{read_fs_superblock, write_fs_superblock, Journal, JournalLoc, LogWriter};
pub use recovery::{jbd2_journal_recover, RecoveryInfo};
pub use revoke::RevokeTable;

use crate::dev::{Disk, Zone};
use crate::error::{CorruptKind, Error, Result};
use crate::format::superblock::{
    Superblock, EXT4_ERROR_FS, EXT4_FEATURE_COMPAT_HAS_JOURNAL, EXT4_FEATURE_INCOMPAT_RECOVER,
    EXT4_VALID_FS,
};

/// `-EINVAL`, the `s_errno` e2fsck records for a corrupt transaction.
const EINVAL: i32 = 22;

/// Replay the journal of the filesystem on `dev` in place, as `e2fsck -E journal_only` does
/// (see the module doc for the steps), and flush. A second call changes nothing.
///
/// Errors, with nothing written: `SuperblockMagic` and other superblock errors (not ext4);
/// `JournalSuperblock(..)` / `JournalSuperblockChecksum` / `JournalInode(..)` for a journal
/// that cannot be used; `Unsupported` for external journals, fast commits and unknown journal
/// features; `Invalid` when the device block size is not the filesystem's; device errors
/// (which may come after some blocks were replayed, but before the journal is reset).
pub fn recover(dev: &mut Disk) -> Result<RecoveryInfo> {
    let sb = read_fs_superblock(dev)?;
    if sb.block_size() != dev.block_size() {
        return Err(Error::Invalid(format!(
            "device block size {} but the superblock says {}",
            dev.block_size(),
            sb.block_size()
        )));
    }
    let needs_recovery = sb.has_incompat(EXT4_FEATURE_INCOMPAT_RECOVER);
    if !sb.has_compat(EXT4_FEATURE_COMPAT_HAS_JOURNAL) {
        if needs_recovery {
            return Err(Error::Corrupt(CorruptKind::JournalInode(
                "needs_recovery set on a filesystem without a journal",
            )));
        }
        return Ok(RecoveryInfo::default());
    }
    let loc = JournalLoc::find(dev, &sb)?;
    let used_backup = loc.rewrite.is_some();
    let mut journal = Journal::load(dev, loc, sb.block_size())?;
    if let Some(w) = &journal.loc.rewrite {
        let mut buf = dev.read_block_as(w.block, Zone::InodeTable)?.to_vec();
        buf[w.offset..w.offset + w.raw.len()].copy_from_slice(&w.raw);
        dev.write_as(w.block, &buf, Zone::InodeTable)?;
    }
    let mut out = RecoveryInfo {
        used_backup,
        ..RecoveryInfo::default()
    };
    if needs_recovery || journal.jsb.s_start != 0 {
        run_journal(dev, &mut journal, &sb, &mut out)?;
    }
    propagate_errno(dev, &mut journal)?;
    out.sequence = journal.jsb.s_sequence;
    dev.flush()?;
    Ok(out)
}

/// Model of `recover_ext3_journal()` + `e2fsck_run_ext3_journal()`: replay, release the
/// journal with `reset = 1`, and clear `needs_recovery` in the (re-read) superblock.
fn run_journal(
    dev: &mut Disk,
    journal: &mut Journal,
    before: &Superblock,
    out: &mut RecoveryInfo,
) -> Result<()> {
    let result = jbd2_journal_recover(journal, dev, out);
    out.replayed = true;
    let error = match result {
        Err(e @ Error::Io(_)) => return Err(e),
        Err(e) => Some(e),
        Ok(()) => {
            if let Some(tid) = journal.failed_commit {
                out.failed_commit = Some(tid);
                journal.jsb.s_errno = -EINVAL;
            }
            journal.tail_sequence = journal.transaction_sequence;
            None
        }
    };
    // e2fsck_journal_release(reset = 1).
    journal.jsb.s_sequence = journal.tail_sequence;
    journal.jsb.s_start = 0;
    journal.write_superblock(dev)?;
    // The filesystem is re-opened: the replay may have rewritten the superblock.
    let mut sb = read_fs_superblock(dev)?;
    sb.s_state |= before.s_state & EXT4_ERROR_FS;
    sb.s_feature_incompat &= !EXT4_FEATURE_INCOMPAT_RECOVER;
    if error.is_some() {
        sb.s_state &= !EXT4_VALID_FS;
    }
    write_fs_superblock(dev, &sb)?;
    out.error = error;
    Ok(())
}

/// The end of `e2fsck_check_ext3_journal()`: a journal `s_errno` marks the filesystem as
/// having errors and is then cleared.
fn propagate_errno(dev: &mut Disk, journal: &mut Journal) -> Result<()> {
    if journal.jsb.s_errno == 0 {
        return Ok(());
    }
    let mut sb = read_fs_superblock(dev)?;
    sb.s_state |= EXT4_ERROR_FS;
    write_fs_superblock(dev, &sb)?;
    journal.jsb.s_errno = 0;
    journal.write_superblock(dev)
}
