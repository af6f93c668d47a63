//! Commit blocks (`JBD2_COMMIT_BLOCK`, `struct commit_header`), big-endian.
//!
//! | off | field |
//! |---|---|
//! | 0x0 | header |
//! | 0xC | `h_chksum_type` (u8), 0xD `h_chksum_size` (u8), 0xE `h_padding[2]` |
//! | 0x10 | `h_chksum[8]` (be32 each) |
//! | 0x30 | `h_commit_sec` (be64) |
//! | 0x38 | `h_commit_nsec` (be32) |
//!
//! With csum v2/v3 the type and size are 0 and `h_chksum[0]` holds the raw CRC-32C of the whole
//! block (with `h_chksum[0]` zeroed), seeded with `J`. With v1 (`COMPAT_CHECKSUM`) type is
//! crc32 and `h_chksum[0]` covers the whole transaction: not computed by this crate.

use super::descriptor::journal_block;
use super::{expect_header, JournalHeader, JournalSuperblock, JBD2_COMMIT_BLOCK};
use crate::bytes::{read_u32be, read_u64be, write_u32be, write_u64be};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::units::Tid;

/// Bytes of `struct commit_header`.
pub const COMMIT_HEADER_SIZE: usize = 0x3C;
/// Offset of `h_chksum[0]`.
const H_CHKSUM: usize = 0x10;

/// `struct commit_header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitBlock {
    /// 0x8 `h_sequence`: the transaction being committed.
    pub h_sequence: Tid,
    /// 0xC `h_chksum_type`: 0, or `JBD2_CRC32_CHKSUM` with v1 checksums.
    pub h_chksum_type: u8,
    /// 0xD `h_chksum_size`.
    pub h_chksum_size: u8,
    /// 0x10 `h_chksum[8]`.
    pub h_chksum: [u32; 8],
    /// 0x30 `h_commit_sec`: wall-clock seconds of the commit (recovery compares them to spot
    /// stale commit blocks).
    pub h_commit_sec: u64,
    /// 0x38 `h_commit_nsec`.
    pub h_commit_nsec: u32,
}

/// Parse a commit block: `JournalCommit(..)` for a block shorter than `s_blocksize`, a bad
/// magic or another block type. The checksum is not verified here: see
/// [`commit_block_csum_verify`].
pub fn parse_commit(buf: &[u8], jsb: &JournalSuperblock) -> Result<CommitBlock> {
    let buf = journal_block(buf, jsb, CorruptKind::JournalCommit)?;
    let header = expect_header(buf, JBD2_COMMIT_BLOCK, CorruptKind::JournalCommit)?;
    if buf.len() < COMMIT_HEADER_SIZE {
        return Err(Error::Corrupt(CorruptKind::JournalCommit(
            "block too short",
        )));
    }
    Ok(CommitBlock {
        h_sequence: header.h_sequence,
        h_chksum_type: buf[0xC],
        h_chksum_size: buf[0xD],
        h_chksum: std::array::from_fn(|i| read_u32be(buf, H_CHKSUM + 4 * i)),
        h_commit_sec: read_u64be(buf, 0x30),
        h_commit_nsec: read_u32be(buf, 0x38),
    })
}

/// The commit block of transaction `tid` as `journal_submit_commit_record()` writes it: zeros,
/// the header, the commit time (from the caller: the model has no wall clock), and with
/// csum v2/v3 the checksum ([`commit_block_csum_set`]).
///
/// # Panics
/// For a v1-checksum journal (`COMPAT_CHECKSUM`), whose commit checksum covers the whole
/// transaction: the engine must refuse to write to such a journal (see
/// [`JournalSuperblock::csum_v1`]).
pub fn build_commit(
    tid: Tid,
    sec: u64,
    nsec: u32,
    jsb: &JournalSuperblock,
    block_size: usize,
) -> Vec<u8> {
    assert!(!jsb.csum_v1(), "v1 journal checksums are not supported");
    let mut buf = vec![0u8; block_size];
    JournalHeader::new(JBD2_COMMIT_BLOCK, tid).write(&mut buf);
    write_u64be(&mut buf, 0x30, sec);
    write_u32be(&mut buf, 0x38, nsec);
    commit_block_csum_set(jsb, &mut buf);
    buf
}

/// `raw(J, block with h_chksum[0] = 0)`.
fn commit_csum(jsb: &JournalSuperblock, buf: &[u8]) -> u32 {
    let head = crc32c_raw(jsb.csum_seed(), &buf[..H_CHKSUM]);
    crc32c_raw(crc32c_raw(head, &[0; 4]), &buf[H_CHKSUM + 4..])
}

/// Model of `jbd2_commit_block_csum_set()`: with csum v2/v3, zero `h_chksum_type`,
/// `h_chksum_size` and `h_chksum[0]`, then store the checksum in `h_chksum[0]`. Nothing
/// otherwise.
///
/// # Panics
/// If `buf` is shorter than a commit header.
pub fn commit_block_csum_set(jsb: &JournalSuperblock, buf: &mut [u8]) {
    if !jsb.csum_v2or3() {
        return;
    }
    buf[0xC] = 0;
    buf[0xD] = 0;
    let csum = commit_csum(jsb, buf);
    write_u32be(buf, H_CHKSUM, csum);
}

/// Model of `jbd2_commit_block_csum_verify()`: `JournalChecksum("commit block")` on a mismatch;
/// Ok without csum v2/v3. Covers the first `s_blocksize` bytes of `buf`. A v1-checksum journal gives `Unsupported("journal checksum v1")`:
/// its commit checksum covers the transaction's blocks, which this function does not see.
pub fn commit_block_csum_verify(jsb: &JournalSuperblock, buf: &[u8]) -> Result<()> {
    if jsb.csum_v1() {
        return Err(Error::Unsupported("journal checksum v1".into()));
    }
    if !jsb.csum_v2or3() {
        return Ok(());
    }
    let buf = journal_block(buf, jsb, CorruptKind::JournalCommit)?;
    if buf.len() < COMMIT_HEADER_SIZE {
        return Err(Error::Corrupt(CorruptKind::JournalCommit(
            "block too short",
        )));
    }
    if read_u32be(buf, H_CHKSUM) != commit_csum(jsb, buf) {
        return Err(Error::Corrupt(CorruptKind::JournalChecksum("commit block")));
    }
    Ok(())
}

/// `sizeof(struct commit_header)`: the 60 bytes of fields padded to the alignment of
/// `h_commit_sec` (a `__be64`).
pub const COMMIT_HEADER_SIZEOF: usize = 64;

/// Model of `jbd2_commit_block_csum_verify_partial()` (fs/jbd2/recovery.c, since 6.4): the
/// commit checksum computed over a block holding only the first
/// `sizeof(struct commit_header)` bytes of `buf`, zeros after them. The kernel's recovery
/// accepts a commit block whose full checksum fails if this one matches ("incomplete commit
/// block": the header's sector reached the disk, the rest of the block did not). e2fsprogs
/// 1.47.0's copy of recovery.c has no such check. False without csum v2/v3 or for a short
/// block.
pub fn commit_block_csum_verify_partial(jsb: &JournalSuperblock, buf: &[u8]) -> bool {
    if !jsb.csum_v2or3() || buf.len() < COMMIT_HEADER_SIZEOF {
        return false;
    }
    let mut tmp = vec![0u8; buf.len()];
    tmp[..COMMIT_HEADER_SIZEOF].copy_from_slice(&buf[..COMMIT_HEADER_SIZEOF]);
    commit_block_csum_verify(jsb, &tmp).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{jsb_with, XorShift};
    use super::super::{JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_CSUM_V3};
    use super::*;

    #[test]
    fn layout_and_checksum() {
        let jsb = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let b = build_commit(Tid(0x0102_0304), 0x1_2345_6789, 999, &jsb, 1024);
        assert_eq!(b[..12], [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 2, 1, 2, 3, 4]);
        assert_eq!(
            b[0x30..0x3C],
            [0, 0, 0, 1, 0x23, 0x45, 0x67, 0x89, 0, 0, 3, 0xE7]
        );
        let mut zeroed = b.clone();
        zeroed[0x10..0x14].fill(0);
        assert_eq!(read_u32be(&b, 0x10), crc32c_raw(jsb.csum_seed(), &zeroed));
        assert_eq!(commit_block_csum_verify(&jsb, &b), Ok(()));
        let c = parse_commit(&b, &jsb).unwrap();
        assert_eq!(
            (c.h_sequence, c.h_commit_sec, c.h_commit_nsec),
            (Tid(0x0102_0304), 0x1_2345_6789, 999)
        );
        assert_eq!(
            (c.h_chksum_type, c.h_chksum_size, &c.h_chksum[1..]),
            (0, 0, &[0; 7][..])
        );

        let mut bad = b.clone();
        bad[0x39] ^= 1;
        let mismatch = Err(Error::Corrupt(CorruptKind::JournalChecksum("commit block")));
        assert_eq!(commit_block_csum_verify(&jsb, &bad), mismatch);
        let plain = jsb_with(0, 1024);
        let b = build_commit(Tid(1), 5, 6, &plain, 1024);
        assert_eq!(b[0x10..0x14], [0; 4]);
        assert_eq!(commit_block_csum_verify(&plain, &bad), Ok(()));
    }

    #[test]
    fn v1_checksums_are_unsupported() {
        let mut v1 = jsb_with(0, 1024);
        v1.s_feature_compat = JBD2_FEATURE_COMPAT_CHECKSUM;
        let b = build_commit(Tid(1), 5, 6, &jsb_with(0, 1024), 1024);
        let unsupported = Err(Error::Unsupported("journal checksum v1".into()));
        assert_eq!(commit_block_csum_verify(&v1, &b), unsupported);
        assert!(
            parse_commit(&b, &v1).is_ok(),
            "v1 commit blocks still parse"
        );
    }

    #[test]
    fn header_problems_are_commit_errors() {
        let jsb = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let b = build_commit(Tid(1), 5, 6, &jsb, 1024);
        let err = |w| Err(Error::Corrupt(CorruptKind::JournalCommit(w)));
        assert_eq!(
            parse_commit(&b[..100], &jsb),
            err("block shorter than s_blocksize")
        );
        let mut d = b.clone();
        d[7] = 1;
        assert_eq!(parse_commit(&d, &jsb), err("wrong block type"));
        d[0] = 0;
        assert_eq!(parse_commit(&d, &jsb), err("bad magic"));
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut rng = XorShift(0x9E6C_63D0_676A_9A99);
        for round in 0..3000 {
            let jsb = jsb_with([0x10, 0x8, 0x0][round % 3], 1024);
            let len = [0usize, 12, 59, 1024][rng.below(4)];
            let mut b = rng.bytes(len);
            if len >= 12 && round % 2 == 0 {
                JournalHeader::new(JBD2_COMMIT_BLOCK, Tid(1)).write(&mut b);
            }
            let _ = parse_commit(&b, &jsb);
            let _ = commit_block_csum_verify(&jsb, &b);
        }
    }
}
