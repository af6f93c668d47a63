//! Model of fs/jbd2/recovery.c (the copy e2fsprogs 1.47 ships as e2fsck/recovery.c):
//! `jbd2_journal_recover()` and its three passes over the log.
//!
//! ```text
//! jbd2_journal_recover
//!   s_start == 0 → nothing to do; j_transaction_sequence = s_sequence + 1
//!   do_one_pass(PASS_SCAN)    find end_transaction: walk descriptor/revoke/commit blocks
//!                             from s_start, s_sequence; verify checksums; stop at the first
//!                             block that is not the next expected one
//!   do_one_pass(PASS_REVOKE)  scan_revoke_records → the revoke table
//!   do_one_pass(PASS_REPLAY)  copy every un-revoked logged block home (un-escaped)
//!   j_transaction_sequence = end_transaction + 1; clear the revoke table; flush
//! ```
//!
//! Checksums per pass, as in the kernel: PASS_SCAN verifies descriptor and revoke tails (a bad
//! one sets `need_check_commit_time`: the next commit decides between "stale block, end of
//! log" and `-EFSBADCRC`), commit blocks (v2/v3 checksum, or the v1 `crc32_be` of the whole
//! transaction computed by `calc_chksums()`); a failed commit ends the log and sets
//! `j_failed_commit`, except with `ASYNC_COMMIT`, where the scan goes on but replay still stops
//! there. PASS_REVOKE and PASS_REPLAY fail on a bad descriptor tail; PASS_REPLAY skips a data
//! block whose tag checksum fails and reports `-EFSBADCRC` at the end.
//!
//! The kernel's `break` out of the `switch` (as opposed to out of the loop) resumes the scan at
//! the next log block; `Step::Next` models it, `Step::Done` is `goto done`.
//!
//! Errors: the kernel's error codes map to [`CorruptKind::JournalChecksum`] (`-EFSBADCRC`),
//! [`CorruptKind::JournalRecovery`] (`-EIO`, `-EFSCORRUPTED`), [`CorruptKind::JournalRevoke`]
//! (`-EINVAL`) and device errors. A replay target past the end of the device (e2fsck would grow
//! the image file) is [`CorruptKind::BlockOutOfRange`], reported at the end like a bad tag.

use super::journal::{Journal, Replayer};
use crate::bytes::{read_u32be, read_u64be};
use crate::dev::{Disk, Zone};
use crate::error::{CorruptKind, Error, Result};
use crate::format::jbd2::{
    commit_block_csum_verify, commit_block_csum_verify_partial, descriptor_block_csum_verify,
    parse_descriptor, parse_revoke, tag_csum_verify, unescape, JournalHeader, JBD2_COMMIT_BLOCK,
    JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_DESCRIPTOR_BLOCK,
    JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT, JBD2_FLAG_ESCAPE, JBD2_MAGIC_NUMBER, JBD2_REVOKE_BLOCK,
};
use crate::units::{Pblk, Tid};

/// `enum passtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassType {
    /// `PASS_SCAN`: find the end of the log.
    Scan,
    /// `PASS_REVOKE`: collect revoke records.
    Revoke,
    /// `PASS_REPLAY`: write logged blocks home.
    Replay,
}

/// `struct recovery_info`: what the passes found, carried from one pass to the next; plus
/// what e2fsck made of it (the fields after `nr_revoke_hits`, filled by [`super::recover`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryInfo {
    /// `start_transaction`: `s_sequence`, the first transaction in the log.
    pub start_transaction: Tid,
    /// `end_transaction`: the first transaction *not* replayed (0 = not found yet, as in C).
    pub end_transaction: Tid,
    /// `nr_replays`: blocks written home.
    pub nr_replays: u32,
    /// `nr_revokes`: revoke records read.
    pub nr_revokes: u32,
    /// `nr_revoke_hits`: logged blocks skipped because they were revoked.
    pub nr_revoke_hits: u32,
    /// Whether the log was replayed (`needs_recovery` set or `s_start != 0`).
    pub replayed: bool,
    /// `j_failed_commit`: the transaction whose commit block failed its checksum; it and
    /// everything after it were dropped (e2fsck: "Journal transaction N was corrupt").
    pub failed_commit: Option<Tid>,
    /// The error `jbd2_journal_recover()` returned: the log was inconsistent and may be only
    /// partly replayed. As e2fsck does, the journal was reset anyway and the filesystem
    /// marked not clean.
    pub error: Option<Error>,
    /// The journal's `s_sequence` afterwards.
    pub sequence: Tid,
    /// Whether the journal was found through the `s_jnl_blocks` backup (and the journal
    /// inode rewritten from it).
    pub used_backup: bool,
}

impl RecoveryInfo {
    /// Transactions in the replayed range `[start_transaction, end_transaction)` (0 when
    /// nothing was replayed).
    pub fn transactions(&self) -> u32 {
        if !self.replayed || !self.end_transaction.gt(self.start_transaction) {
            return 0;
        }
        self.end_transaction
            .0
            .wrapping_sub(self.start_transaction.0)
    }
}

/// What a block of the log tells the loop to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Read the next log block (`continue`, or `break` out of the `switch`).
    Next,
    /// `goto done`: the end of the log.
    Done,
}

/// The locals of `do_one_pass()`.
struct Pass {
    pass: PassType,
    next_commit_id: Tid,
    next_log_block: u64,
    /// Transactional (v1) checksum of the blocks since the last commit.
    crc32_sum: u32,
    /// `success`: the error to report once the pass is over.
    success: Result<()>,
    block_error: bool,
    need_check_commit_time: bool,
    last_trans_commit_time: u64,
}

/// `-EFSBADCRC`.
fn badcrc(what: &'static str) -> Error {
    Error::Corrupt(CorruptKind::JournalChecksum(what))
}

/// Model of `crc32_be()` (lib/crc32.c): CRC-32 with the normal polynomial 0x04C11DB7,
/// most significant bit first, no inversion; the v1 (`COMPAT_CHECKSUM`) journal checksum,
/// seeded with `!0` per transaction.
pub fn crc32_be(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Model of `jbd2_journal_recover()` (fs/jbd2/recovery.c): replay the log of `j` into `dev`,
/// filling the pass fields of `info`. Returns the error the kernel would return; blocks may
/// have been replayed before it. Sets `j.transaction_sequence` and `j.failed_commit`; leaves
/// the journal superblock alone.
pub fn jbd2_journal_recover(
    j: &mut Journal,
    dev: &mut Disk,
    info: &mut RecoveryInfo,
) -> Result<()> {
    if j.jsb.s_start == 0 {
        j.transaction_sequence = j.jsb.s_sequence.next();
        return Ok(());
    }
    let mut err = do_one_pass(j, dev, info, PassType::Scan);
    if err.is_ok() {
        err = do_one_pass(j, dev, info, PassType::Revoke);
    }
    if err.is_ok() {
        err = do_one_pass(j, dev, info, PassType::Replay);
    }
    j.transaction_sequence = info.end_transaction.next();
    j.revoke.clear_revoke();
    // sync_blockdev() + blkdev_issue_flush(): the replayed blocks are durable.
    let flushed = dev.flush();
    err.and(flushed)
}

/// Model of `do_one_pass()` (fs/jbd2/recovery.c): one walk of the log from `s_start`.
pub fn do_one_pass(
    j: &mut Journal,
    dev: &mut Disk,
    info: &mut RecoveryInfo,
    pass: PassType,
) -> Result<()> {
    let mut p = Pass {
        pass,
        next_commit_id: j.jsb.s_sequence,
        next_log_block: u64::from(j.jsb.s_start),
        crc32_sum: !0,
        success: Ok(()),
        block_error: false,
        need_check_commit_time: false,
        last_trans_commit_time: 0,
    };
    if pass == PassType::Scan {
        info.start_transaction = p.next_commit_id;
    }
    loop {
        if pass != PassType::Scan && p.next_commit_id.geq(info.end_transaction) {
            break;
        }
        let bh = j.jread(dev, p.next_log_block)?;
        p.next_log_block = j.wrap(p.next_log_block + 1);
        // OK to unwrap: a journal block is at least 1024 bytes.
        let header = JournalHeader::parse(&bh).unwrap();
        if header.h_magic != JBD2_MAGIC_NUMBER || header.h_sequence != p.next_commit_id {
            break;
        }
        let step = match header.h_blocktype {
            JBD2_DESCRIPTOR_BLOCK => p.descriptor_block(j, dev, info, &bh)?,
            JBD2_COMMIT_BLOCK => p.commit_block(j, info, &bh)?,
            JBD2_REVOKE_BLOCK => p.revoke_block(j, info, &bh)?,
            _ => Step::Done,
        };
        if step == Step::Done {
            break;
        }
    }
    p.done(info)
}

impl Pass {
    /// The `done:` label: settle `end_transaction` (PASS_SCAN) or check that this pass ended
    /// where the scan did.
    fn done(self, info: &mut RecoveryInfo) -> Result<()> {
        let mut success = self.success;
        if self.pass == PassType::Scan {
            if info.end_transaction.0 == 0 {
                info.end_transaction = self.next_commit_id;
            }
        } else if info.end_transaction != self.next_commit_id && success.is_ok() {
            success = Err(Error::Corrupt(CorruptKind::JournalRecovery(
                "a recovery pass ended at another transaction than the scan",
            )));
        }
        if self.block_error && success.is_ok() {
            success = Err(Error::Corrupt(CorruptKind::JournalRecovery(
                "a logged block could not be replayed",
            )));
        }
        success
    }

    /// `case JBD2_DESCRIPTOR_BLOCK`.
    fn descriptor_block(
        &mut self,
        j: &mut Journal,
        dev: &mut Disk,
        info: &mut RecoveryInfo,
        bh: &[u8],
    ) -> Result<Step> {
        if descriptor_block_csum_verify(&j.jsb, bh).is_err() {
            // PASS_SCAN can see stale blocks due to lazy journal init.
            if self.pass != PassType::Scan {
                return Err(badcrc("descriptor block"));
            }
            self.need_check_commit_time = true;
        }
        let tags = parse_descriptor(bh, &j.jsb)?;
        if self.pass != PassType::Replay {
            if self.pass == PassType::Scan
                && j.jsb.csum_v1()
                && !self.need_check_commit_time
                && info.end_transaction.0 == 0
            {
                // A read error inside calc_chksums() only breaks out of the switch.
                let _ = self.calc_chksums(j, dev, bh, tags.len());
                return Ok(Step::Next);
            }
            self.next_log_block = j.wrap(self.next_log_block + tags.len() as u64);
            return Ok(Step::Next);
        }
        let sequence = Tid(read_u32be(bh, 0x8));
        for tag in &tags {
            let io_block = self.next_log_block;
            self.next_log_block = j.wrap(self.next_log_block + 1);
            let obh = match j.jread(dev, io_block) {
                Ok(obh) => obh,
                Err(e) => {
                    // Recover what we can, but report failure at the end.
                    self.success = Err(e);
                    continue;
                }
            };
            if j.revoke.test_revoke(tag.blocknr, self.next_commit_id) {
                info.nr_revoke_hits += 1;
                continue;
            }
            if !tag_csum_verify(&j.jsb, tag, sequence, &obh) {
                self.success = Err(badcrc("logged data block"));
                self.block_error = true;
                continue;
            }
            if tag.blocknr >= dev.nr_blocks() {
                self.success = Err(Error::Corrupt(CorruptKind::BlockOutOfRange(Pblk(
                    tag.blocknr,
                ))));
                continue;
            }
            let mut data = obh.to_vec();
            if tag.flags & JBD2_FLAG_ESCAPE != 0 {
                unescape(&mut data);
            }
            dev.write_as(Pblk(tag.blocknr), &data, Zone::Unknown)?;
            info.nr_replays += 1;
        }
        Ok(Step::Next)
    }

    /// Model of `calc_chksums()`: fold the descriptor and its `nr` data blocks into the v1
    /// transaction checksum, advancing over them. Err on a read error (the kernel returns 1).
    fn calc_chksums(&mut self, j: &Journal, dev: &mut Disk, bh: &[u8], nr: usize) -> Result<()> {
        self.crc32_sum = crc32_be(self.crc32_sum, bh);
        for _ in 0..nr {
            let io_block = self.next_log_block;
            self.next_log_block = j.wrap(self.next_log_block + 1);
            let obh = j.jread(dev, io_block)?;
            self.crc32_sum = crc32_be(self.crc32_sum, &obh);
        }
        Ok(())
    }

    /// `case JBD2_COMMIT_BLOCK`.
    fn commit_block(
        &mut self,
        j: &mut Journal,
        info: &mut RecoveryInfo,
        bh: &[u8],
    ) -> Result<Step> {
        let commit_time = read_u64be(bh, 0x30);
        if self.need_check_commit_time {
            if commit_time >= self.last_trans_commit_time {
                return Err(badcrc("transaction with a bad descriptor or revoke block"));
            }
            // ignore_crc_mismatch: likely a stale block of an older log; end with success.
            return Ok(Step::Done);
        }
        let mut chksum_error = false;
        if self.pass == PassType::Scan && j.jsb.csum_v1() {
            let found = read_u32be(bh, 0x10);
            if info.end_transaction.0 != 0 {
                j.failed_commit = Some(info.end_transaction);
                return Ok(Step::Next);
            }
            let (kind, size) = (bh[0xC], bh[0xD]);
            let matches = self.crc32_sum == found
                && kind == JBD2_CRC32_CHKSUM
                && size == JBD2_CRC32_CHKSUM_SIZE;
            let unused = kind == 0 && size == 0 && found == 0;
            if matches || unused {
                self.crc32_sum = !0;
            } else {
                chksum_error = true;
            }
        }
        // The kernel (not e2fsprogs 1.47.0) also accepts an "incomplete commit block".
        let v23_bad = || {
            j.jsb.csum_v2or3()
                && commit_block_csum_verify(&j.jsb, bh).is_err()
                && !(j.replayer == Replayer::Kernel && commit_block_csum_verify_partial(&j.jsb, bh))
        };
        if chksum_error || (self.pass == PassType::Scan && v23_bad()) {
            if commit_time < self.last_trans_commit_time {
                return Ok(Step::Done); // ignore_crc_mismatch
            }
            info.end_transaction = self.next_commit_id;
            if !j.jsb.has_incompat(JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT) {
                j.failed_commit = Some(self.next_commit_id);
                return Ok(Step::Next);
            }
        }
        if self.pass == PassType::Scan {
            self.last_trans_commit_time = commit_time;
        }
        self.next_commit_id = self.next_commit_id.next();
        Ok(Step::Next)
    }

    /// `case JBD2_REVOKE_BLOCK`.
    fn revoke_block(
        &mut self,
        j: &mut Journal,
        info: &mut RecoveryInfo,
        bh: &[u8],
    ) -> Result<Step> {
        if self.pass == PassType::Scan && descriptor_block_csum_verify(&j.jsb, bh).is_err() {
            self.need_check_commit_time = true;
        }
        if self.pass != PassType::Revoke {
            return Ok(Step::Next);
        }
        scan_revoke_records(j, bh, self.next_commit_id, info)?;
        Ok(Step::Next)
    }
}

/// Model of `scan_revoke_records()` (fs/jbd2/recovery.c): record every block of revoke block
/// `bh` as revoked by transaction `sequence`. `JournalRevoke("r_count too large")` is the
/// kernel's `-EINVAL`.
pub fn scan_revoke_records(
    j: &mut Journal,
    bh: &[u8],
    sequence: Tid,
    info: &mut RecoveryInfo,
) -> Result<()> {
    for blocknr in parse_revoke(bh, &j.jsb)? {
        j.revoke.set_revoke(blocknr, sequence);
        info.nr_revokes += 1;
    }
    Ok(())
}

/// Model of `count_tags()`: the number of tags (= data blocks) of descriptor block `bh`.
pub fn count_tags(j: &Journal, bh: &[u8]) -> Result<usize> {
    Ok(parse_descriptor(bh, &j.jsb)?.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bytes::write_u32be;
    use crate::format::jbd2::{
        BlockTag, JournalSuperblock, JBD2_CRC32C_CHKSUM, JBD2_FEATURE_COMPAT_CHECKSUM,
        JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FEATURE_INCOMPAT_REVOKE,
    };
    use crate::jbd2::journal::{JournalLoc, LogWriter};
    use crate::jbd2::revoke::RevokeTable;
    use crate::units::Ino;

    pub(crate) const BS: usize = 1024;
    /// The journal occupies fs blocks JSTART.. on a 4096-block device.
    pub(crate) const JSTART: u64 = 2048;
    pub(crate) const V3: u32 = JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_REVOKE;

    /// A device with a journal of `maxlen` blocks at `JSTART` and the given features.
    pub(crate) fn setup(incompat: u32, compat: u32, maxlen: u32) -> (Disk, Journal) {
        let mut dev = Disk::new(1024, 4096);
        let uuid = std::array::from_fn(|i| u8::try_from(i * 7 + 3).unwrap());
        let mut jsb = JournalSuperblock::new(1024, maxlen, uuid, false, false);
        jsb.s_feature_incompat = incompat;
        jsb.s_feature_compat = compat;
        if jsb.csum_v2or3() {
            jsb.s_checksum_type = JBD2_CRC32C_CHKSUM;
        }
        let mut block = vec![0u8; BS];
        block[..1024].copy_from_slice(&jsb.to_bytes());
        dev.write(Pblk(JSTART), &block).unwrap();
        let loc = JournalLoc::contiguous(Ino(8), Pblk(JSTART), maxlen);
        let j = Journal::load(&mut dev, loc, 1024).unwrap();
        (dev, j)
    }

    /// A block filled with `b`.
    fn fill(b: u8) -> Vec<u8> {
        vec![b; BS]
    }

    fn home(dev: &Disk, blk: u64) -> u8 {
        dev.peek_block(Pblk(blk))[100]
    }

    /// Point the superblock at the log and recover.
    pub(crate) fn run(
        j: &mut Journal,
        dev: &mut Disk,
        start: u32,
        seq: u32,
    ) -> (RecoveryInfo, Result<()>) {
        j.jsb.s_start = start;
        j.jsb.s_sequence = Tid(seq);
        let mut info = RecoveryInfo::default();
        let r = jbd2_journal_recover(j, dev, &mut info);
        (info, r)
    }

    #[test]
    fn crc32_be_check_value() {
        // CRC-32/MPEG-2 (poly 0x04C11DB7, init !0, no reflection, no final xor).
        assert_eq!(crc32_be(!0, b"123456789"), 0x0376_E6E7);
        assert_eq!(crc32_be(0, &[]), 0);
    }

    #[test]
    fn one_transaction_with_an_escaped_block() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let mut magic = fill(5);
        write_u32be(&mut magic, 0, JBD2_MAGIC_NUMBER);
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(7), &[(300, fill(1)), (301, magic.clone())])
            .unwrap();
        w.commit(Tid(7), 1000).unwrap();
        let (info, r) = run(&mut j, &mut dev, 1, 7);
        assert_eq!(r, Ok(()));
        assert_eq!(
            (info.start_transaction, info.end_transaction),
            (Tid(7), Tid(8))
        );
        assert_eq!(
            (info.nr_replays, info.nr_revokes, info.nr_revoke_hits),
            (2, 0, 0)
        );
        assert_eq!(home(&dev, 300), 1);
        assert_eq!(dev.peek_block(Pblk(301))[..], magic[..], "un-escaped");
        assert_eq!((j.transaction_sequence, j.failed_commit), (Tid(9), None));
        assert!(j.revoke.is_empty(), "cleared after recovery");
    }

    #[test]
    fn empty_log_bumps_the_sequence_only() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let (info, r) = run(&mut j, &mut dev, 0, 41);
        assert_eq!(
            (r, info, j.transaction_sequence),
            (Ok(()), RecoveryInfo::default(), Tid(42))
        );
        // A log whose first block is not the expected transaction: nothing replayed.
        let (info, r) = run(&mut j, &mut dev, 5, 41);
        assert_eq!(
            (r, info.end_transaction, info.nr_replays),
            (Ok(()), Tid(41), 0)
        );
        assert_eq!(j.transaction_sequence, Tid(42));
    }

    /// revoke.c case 4 + the replay rule: a revoke suppresses older copies; a copy logged
    /// after the last revoke is replayed.
    #[test]
    fn revoke_then_rejournal_across_transactions() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(1), &[(300, fill(1)), (301, fill(1))])
            .unwrap();
        w.commit(Tid(1), 10).unwrap();
        w.revoke(Tid(2), &[300, 301]).unwrap();
        w.commit(Tid(2), 11).unwrap();
        w.descriptor(Tid(3), &[(301, fill(3))]).unwrap();
        w.commit(Tid(3), 12).unwrap();
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(r, Ok(()));
        assert_eq!(
            (info.nr_replays, info.nr_revokes, info.nr_revoke_hits),
            (1, 2, 2)
        );
        assert_eq!((home(&dev, 300), home(&dev, 301)), (0, 3));
    }

    /// revoke.c case 2: journaled, then revoked in the same transaction: the revoke wins.
    #[test]
    fn journaled_then_revoked_in_one_transaction() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.revoke(Tid(4), &[300]).unwrap();
        w.descriptor(Tid(4), &[(300, fill(4)), (302, fill(4))])
            .unwrap();
        w.commit(Tid(4), 10).unwrap();
        let (info, r) = run(&mut j, &mut dev, 1, 4);
        assert_eq!(r, Ok(()));
        assert_eq!((info.nr_replays, info.nr_revoke_hits), (1, 1));
        assert_eq!((home(&dev, 300), home(&dev, 302)), (0, 4));
    }

    /// revoke.c cases 1 and 3 through the running table: a revoke cancelled by re-journaling
    /// never reaches the log (the copy is replayed); a revoke followed by a data write stays
    /// and protects the new data from the old logged copy.
    #[test]
    fn cancelled_revoke_and_revoke_before_data_write() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let mut running = RevokeTable::new();
        running.insert(300, Tid(2)); // case 1: revoked ...
        running.cancel(300); // ... then journaled again in T2
        running.insert(301, Tid(2)); // case 3: revoked, then rewritten as data
        let revoked: Vec<u64> = running.records().map(|(b, _)| b).collect();
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(1), &[(300, fill(1)), (301, fill(1))])
            .unwrap();
        w.commit(Tid(1), 10).unwrap();
        w.revoke(Tid(2), &revoked).unwrap();
        w.descriptor(Tid(2), &[(300, fill(2))]).unwrap();
        w.commit(Tid(2), 11).unwrap();
        dev.write(Pblk(301), &fill(0xDA)).unwrap(); // the data write, outside the journal
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(r, Ok(()));
        assert_eq!((home(&dev, 300), home(&dev, 301)), (2, 0xDA));
        assert_eq!(
            (info.nr_replays, info.nr_revokes, info.nr_revoke_hits),
            (2, 1, 1)
        );
    }

    #[test]
    fn transaction_wraps_past_s_maxlen() {
        let (mut dev, mut j) = setup(V3 | JBD2_FEATURE_INCOMPAT_64BIT, 0, 1024);
        let mut w = LogWriter::new(&mut dev, &j, 1021);
        let blocks: Vec<(u64, Vec<u8>)> = (0..5).map(|i| (400 + i, fill(0x40 + i as u8))).collect();
        w.descriptor(Tid(90), &blocks).unwrap();
        let commit_at = w.commit(Tid(90), 5).unwrap();
        assert_eq!((commit_at, w.next), (4, 5), "1021..=1023, then 1..=4");
        let (info, r) = run(&mut j, &mut dev, 1021, 90);
        assert_eq!(
            (r, info.nr_replays, info.end_transaction),
            (Ok(()), 5, Tid(91))
        );
        let got: Vec<u8> = (400..405).map(|b| home(&dev, b)).collect();
        assert_eq!(got, [0x40, 0x41, 0x42, 0x43, 0x44]);
    }

    /// Three transactions, the second with a corrupted commit block.
    fn corrupt_middle_commit(incompat: u32) -> (Disk, Journal) {
        let (mut dev, j) = setup(incompat, 0, 1024);
        let mut w = LogWriter::new(&mut dev, &j, 1);
        let mut commit2 = 0;
        for tid in 1..=3u32 {
            let b = u8::try_from(tid).unwrap();
            w.descriptor(Tid(tid), &[(300 + u64::from(tid), fill(b))])
                .unwrap();
            let at = w.commit(Tid(tid), 100).unwrap();
            if tid == 2 {
                commit2 = at;
            }
        }
        let blk = Pblk(JSTART + commit2);
        let mut c = dev.peek_block(blk).to_vec();
        c[0x3B] ^= 1; // h_commit_nsec: the checksum no longer matches
        dev.write(blk, &c).unwrap();
        (dev, j)
    }

    #[test]
    fn corrupt_commit_drops_it_and_everything_after() {
        let (mut dev, mut j) = corrupt_middle_commit(V3);
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(r, Ok(()));
        assert_eq!(
            (info.end_transaction, j.failed_commit),
            (Tid(2), Some(Tid(2)))
        );
        let got: Vec<u8> = (301..=303).map(|b| home(&dev, b)).collect();
        assert_eq!(got, [1, 0, 0]);
        assert_eq!(j.transaction_sequence, Tid(3));
    }

    #[test]
    fn async_commit_scans_on_but_replays_only_up_to_the_bad_commit() {
        let async_commit = V3 | crate::format::jbd2::JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT;
        let (mut dev, mut j) = corrupt_middle_commit(async_commit);
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(r, Ok(()));
        assert_eq!((info.end_transaction, j.failed_commit), (Tid(2), None));
        let got: Vec<u8> = (301..=303).map(|b| home(&dev, b)).collect();
        assert_eq!(got, [1, 0, 0]);
    }

    /// A bad descriptor tail in the scan: a commit time that goes backwards means a stale
    /// block of an older log (clean end); one that does not is `-EFSBADCRC`.
    #[test]
    fn bad_descriptor_checks_the_commit_time() {
        for (time2, stale) in [(50u64, true), (100, false)] {
            let (mut dev, mut j) = setup(V3, 0, 1024);
            let mut w = LogWriter::new(&mut dev, &j, 1);
            w.descriptor(Tid(1), &[(300, fill(1))]).unwrap();
            w.commit(Tid(1), 100).unwrap();
            let tag = BlockTag {
                blocknr: 301,
                flags: 0,
                checksum: 0,
            };
            w.bad_descriptor(Tid(2), &[tag]).unwrap();
            w.block(&fill(2)).unwrap();
            w.commit(Tid(2), time2).unwrap();
            let (info, r) = run(&mut j, &mut dev, 1, 1);
            if stale {
                assert_eq!(
                    (r, info.end_transaction, info.nr_replays),
                    (Ok(()), Tid(2), 1)
                );
                assert_eq!((home(&dev, 300), home(&dev, 301)), (1, 0));
            } else {
                let bad = Err(badcrc("transaction with a bad descriptor or revoke block"));
                assert_eq!((r, info.nr_replays), (bad, 0));
                assert_eq!(home(&dev, 300), 0, "nothing replayed");
            }
        }
    }

    #[test]
    fn bad_tag_checksum_skips_that_block_only() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(1), &[(300, fill(1)), (301, fill(1)), (302, fill(1))])
            .unwrap();
        w.commit(Tid(1), 1).unwrap();
        dev.write(Pblk(JSTART + 3), &fill(9)).unwrap(); // the logged copy of 301
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(r, Err(badcrc("logged data block")));
        assert_eq!(info.nr_replays, 2);
        let got: Vec<u8> = (300..=302).map(|b| home(&dev, b)).collect();
        assert_eq!(got, [1, 0, 1]);
    }

    #[test]
    fn v1_transaction_checksums() {
        let (mut dev, mut j) = setup(
            JBD2_FEATURE_INCOMPAT_REVOKE,
            JBD2_FEATURE_COMPAT_CHECKSUM,
            1024,
        );
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(1), &[(300, fill(1))]).unwrap();
        w.commit(Tid(1), 5).unwrap();
        w.descriptor(Tid(2), &[(301, fill(2))]).unwrap();
        w.commit(Tid(2), 6).unwrap();
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!((r, info.nr_replays, j.failed_commit), (Ok(()), 2, None));
        // A data block changed after commit: transaction 2's crc32_be no longer matches.
        dev.write(Pblk(JSTART + 5), &fill(7)).unwrap();
        dev.write(Pblk(301), &fill(0)).unwrap();
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(
            (r, info.end_transaction, j.failed_commit),
            (Ok(()), Tid(2), Some(Tid(2)))
        );
        assert_eq!(home(&dev, 301), 0);
    }

    #[test]
    fn tag_block_numbers_use_the_high_half_with_64bit() {
        let (mut dev, mut j) = setup(V3 | JBD2_FEATURE_INCOMPAT_64BIT, 0, 1024);
        let far = (1u64 << 32) | 300;
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(1), &[(far, fill(1)), (302, fill(2))])
            .unwrap();
        w.revoke(Tid(1), &[far + 1]).unwrap();
        w.commit(Tid(1), 1).unwrap();
        let (info, r) = run(&mut j, &mut dev, 1, 1);
        let beyond = Err(Error::Corrupt(CorruptKind::BlockOutOfRange(Pblk(far))));
        assert_eq!((r, info.nr_replays, info.nr_revokes), (beyond, 1, 1));
        assert_eq!(
            (home(&dev, 300), home(&dev, 302)),
            (0, 2),
            "not truncated to 32 bits"
        );
    }

    #[test]
    fn count_tags_and_revoke_overflow() {
        let (mut dev, mut j) = setup(V3, 0, 1024);
        let mut w = LogWriter::new(&mut dev, &j, 1);
        w.descriptor(Tid(1), &[(300, fill(1)), (301, fill(1))])
            .unwrap();
        w.revoke(Tid(1), &[5]).unwrap();
        w.commit(Tid(1), 1).unwrap();
        let desc = dev.peek_block(Pblk(JSTART + 1));
        assert_eq!(count_tags(&j, &desc), Ok(2));
        let mut rev = dev.peek_block(Pblk(JSTART + 4)).to_vec();
        write_u32be(&mut rev, 0xC, 1021);
        crate::format::jbd2::descriptor_block_csum_set(&j.jsb, &mut rev);
        dev.write(Pblk(JSTART + 4), &rev).unwrap();
        let (_, r) = run(&mut j, &mut dev, 1, 1);
        assert_eq!(
            r,
            Err(Error::Corrupt(CorruptKind::JournalRevoke(
                "r_count too large"
            )))
        );
    }
}
