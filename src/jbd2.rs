//! JBD2, the journal (big-endian on disk; see `format::jbd2`). This layer knows blocks, not
//! inodes: the filesystem hands it frozen block copies and does the ordered-data writeback.
//!
//! | file | models |
//! |---|---|
//! | `jbd2/journal.rs` | [`JournalLoc`] (the journal inode's map, `jbd2_journal_bmap()`), [`Journal`] (`journal_t` as e2fsck loads it), [`LogWriter`] (log layout of a commit) |
//! | `jbd2/recovery.rs` | fs/jbd2/recovery.c: [`jbd2_journal_recover`], `do_one_pass()` ×3, [`RecoveryInfo`] |
//! | `jbd2/revoke.rs` | fs/jbd2/revoke.c's table: [`RevokeTable`] |
//! | `jbd2/transaction.rs` | the runtime `journal_t`/`transaction_t`: handles, credits, revoke records, abort |
//! | `jbd2/commit.rs` | fs/jbd2/commit.c: `jbd2_journal_commit_transaction()`'s log writes and barriers |
//! | `jbd2/checkpoint.rs` | fs/jbd2/checkpoint.c: write home, flush, move the tail; `jbd2_mark_journal_empty()` |
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
//!
//! I/O goes through the [`Disk`] with zone hints: journal blocks as `Zone::Journal`, the
//! journal inode as `Zone::InodeTable`, the superblock as `Zone::Superblock`, replayed blocks
//! as `Zone::Unknown` (the static zone map of the filesystem layer, when set, classifies them).
//! A replay target past the end of the device is a recovery error here, where e2fsck would
//! grow the image file.

pub mod checkpoint;
pub mod commit;
pub mod journal;
pub mod recovery;
pub mod revoke;
pub mod transaction;

pub use journal::{
    read_fs_superblock, write_fs_superblock, Journal, JournalLoc, LogWriter, Replayer,
};
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
    recover_as(dev, Replayer::E2fsck)
}

/// [`recover`] with the log replayed as `replayer`'s copy of recovery.c does it
/// ([`Replayer`]); everything around the replay is e2fsck's in both.
pub fn recover_as(dev: &mut Disk, replayer: Replayer) -> Result<RecoveryInfo> {
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
    if replayer == Replayer::E2fsck {
        journal::clear_v2_journal_fields(dev, &loc, &sb)?;
    }
    let mut journal = Journal::load(dev, loc, sb.block_size())?;
    if replayer == Replayer::E2fsck {
        journal.check_users()?;
    }
    journal.replayer = replayer;
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

#[cfg(test)]
mod tests {
    use super::recovery::tests::{run, setup, BS, JSTART, V3};
    use super::*;
    use crate::format::jbd2::{
        JournalHeader, JournalSuperblock, JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_64BIT,
    };
    use crate::format::testimg::Img;
    use crate::units::{Pblk, Tid};

    /// xorshift64 for the garbage loops.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn block(&mut self) -> Vec<u8> {
            (0..BS).map(|_| self.next().to_le_bytes()[2]).collect()
        }

        fn small(&mut self, n: u64) -> u32 {
            // OK to unwrap: below(n) < n <= u32::MAX for the callers' n.
            u32::try_from(self.below(n)).unwrap()
        }
    }

    /// Random log contents, some blocks dressed as journal blocks of the expected sequence:
    /// the passes end with Ok or a typed corruption error, never a panic or an I/O error.
    #[test]
    fn garbage_logs_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let features = [
            V3,
            V3 | JBD2_FEATURE_INCOMPAT_64BIT,
            0,
            JBD2_FEATURE_INCOMPAT_64BIT,
        ];
        for round in 0..300u64 {
            let incompat = features[(round % 4) as usize];
            let v1 = round % 7 == 3 && incompat & V3 == 0;
            let compat = if v1 { JBD2_FEATURE_COMPAT_CHECKSUM } else { 0 };
            let (mut dev, mut j) = setup(incompat, compat, 1024);
            let seq = rng.small(4);
            for lb in 1..40u64 {
                let mut b = rng.block();
                if rng.below(3) != 0 {
                    let tid = seq + rng.small(3);
                    JournalHeader::new(rng.small(6), Tid(tid)).write(&mut b);
                }
                dev.write(Pblk(JSTART + lb), &b).unwrap();
            }
            let start = 1 + rng.small(8);
            let (_, r) = run(&mut j, &mut dev, start, seq);
            match r {
                Ok(()) | Err(Error::Corrupt(_)) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
    }

    /// Random journal superblocks (re-checksummed, so they reach the log) and random log
    /// blocks in a real image: `recover` returns Ok or a typed error, never panics.
    #[test]
    fn garbage_journals_never_panic() {
        let Some(img) = Img::mkfs("rec-garbage", None) else {
            return;
        };
        let data = XorShift(5).block().repeat(2);
        img.debugfs_script("jo -c\njw -b 300,301 d\njc\n", &[("d", &data)]);
        let mut base = Disk::load(&img.0, 1024).unwrap();
        base.freeze();
        let jstart = img.bmap("<8>", 0);
        let good = JournalSuperblock::parse(&base.peek_block(Pblk(jstart))).unwrap();
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        let (mut replayed, mut failed) = (0, 0);
        for round in 0..200 {
            let mut dev = base.clone();
            let mut jsb = good.clone();
            jsb.s_start = rng.small(1100);
            jsb.s_sequence = Tid(rng.small(4));
            // Each of these with probability 1/4: mostly valid superblocks that reach the log.
            if rng.below(4) == 0 {
                jsb.s_maxlen = 1000 + rng.small(40);
            }
            if rng.below(4) == 0 {
                jsb.s_first = rng.small(3);
            }
            if rng.below(4) == 0 {
                jsb.s_feature_incompat ^= [1, 2, 4, 0x40][rng.below(4) as usize];
            }
            jsb.s_errno = -i32::try_from(rng.small(2)).unwrap();
            let mut b = dev.peek_block(Pblk(jstart)).to_vec();
            let raw = if round % 5 == 0 {
                rng.block()
            } else {
                jsb.to_bytes().to_vec()
            };
            b[..1024].copy_from_slice(&raw[..1024]);
            dev.write(Pblk(jstart), &b).unwrap();
            for lb in 1..12 {
                if rng.below(2) == 0 {
                    let mut blk = rng.block();
                    JournalHeader::new(rng.small(6), Tid(rng.small(4))).write(&mut blk);
                    dev.write(Pblk(jstart + lb), &blk).unwrap();
                }
            }
            match recover(&mut dev) {
                Ok(info) => replayed += usize::from(info.replayed),
                Err(Error::Corrupt(_)) | Err(Error::Unsupported(_)) => failed += 1,
                other => panic!("round {round}: {other:?}"),
            }
        }
        // Not hollow: both outcomes are reached.
        assert!(
            replayed > 20 && failed > 20,
            "{replayed} replays, {failed} errors"
        );
    }

    #[test]
    fn clean_image_is_left_alone_and_flag_only_bumps_the_sequence() {
        let Some(img) = Img::mkfs("rec-clean", Some("^64bit")) else {
            return;
        };
        let mut dev = Disk::load(&img.0, 1024).unwrap();
        let info = recover(&mut dev).unwrap();
        let clean = RecoveryInfo {
            sequence: Tid(1),
            ..RecoveryInfo::default()
        };
        assert_eq!(info, clean);
        assert_eq!(dev.written_blocks().count(), 0);
        img.debugfs("feature needs_recovery");
        let mut dev = Disk::load(&img.0, 1024).unwrap();
        let info = recover(&mut dev).unwrap();
        assert_eq!(
            (info.replayed, info.sequence, info.nr_replays),
            (true, Tid(2), 0)
        );
        let sb = read_fs_superblock(&mut dev).unwrap();
        assert!(!sb.has_incompat(EXT4_FEATURE_INCOMPAT_RECOVER));
        assert!(!recover(&mut dev).unwrap().replayed, "idempotent");
    }

    #[test]
    fn typed_errors_for_unusable_journals() {
        let Some(img) = Img::mkfs("rec-errors", None) else {
            return;
        };
        let jstart = img.bmap("<8>", 0);
        let mut dev = Disk::load(&img.0, 1024).unwrap();
        let mut b = dev.peek_block(Pblk(jstart)).to_vec();
        let mut jsb = JournalSuperblock::parse(&b).unwrap();
        jsb.s_feature_incompat |= crate::format::jbd2::JBD2_FEATURE_INCOMPAT_CSUM_V3;
        jsb.s_checksum_type = crate::format::jbd2::JBD2_CRC32C_CHKSUM;
        b[..1024].copy_from_slice(&jsb.to_bytes());
        b[0x1F] ^= 1; // s_start, under the checksum
        dev.write(Pblk(jstart), &b).unwrap();
        let csum = Err(Error::Corrupt(CorruptKind::JournalSuperblockChecksum));
        assert_eq!(recover(&mut dev), csum);
        assert_eq!(
            dev.written_blocks().count(),
            1,
            "nothing but the test's own write"
        );
        b[0] ^= 1; // the magic
        dev.write(Pblk(jstart), &b).unwrap();
        let magic = Err(Error::Corrupt(CorruptKind::JournalSuperblock("bad magic")));
        assert_eq!(recover(&mut dev), magic);
        let mut other = Disk::new(1024, 64);
        assert_eq!(
            recover(&mut other),
            Err(Error::Corrupt(CorruptKind::SuperblockMagic))
        );
        let mut wrong_bs = Disk::load(&img.0, 2048).unwrap();
        assert!(matches!(
            recover(&mut wrong_bs),
            Err(Error::Corrupt(_) | Error::Invalid(_))
        ));
    }
}
