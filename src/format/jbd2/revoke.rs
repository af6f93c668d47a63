//! Revoke blocks (`JBD2_REVOKE_BLOCK`, `jbd2_journal_revoke_header_t`), big-endian.
//!
//! After the 12-byte header, `r_count` (0xC, be32) gives the bytes used in the block,
//! **including** the 16-byte header. Records start at 0x10: home block numbers of 4 bytes, or 8
//! with 64BIT. With csum v2/v3 the last 4 bytes are the checksum tail. A revoke of block B in
//! transaction T stops replay of every logged copy of B from transactions up to T.

use super::descriptor::journal_block;
use super::{
    descriptor_block_csum_set, expect_header, JournalHeader, JournalSuperblock,
    JBD2_BLOCK_TAIL_SIZE, JBD2_REVOKE_BLOCK,
};
use crate::bytes::{read_u32be, read_u64be, write_u32be, write_u64be};
use crate::error::{CorruptKind, Error, Result};
use crate::units::Tid;

/// `sizeof(jbd2_journal_revoke_header_t)`: header + `r_count`.
pub const REVOKE_HEADER_SIZE: usize = 16;

fn record_len(jsb: &JournalSuperblock) -> usize {
    if jsb.is_64bit() {
        8
    } else {
        4
    }
}

fn csum_size(jsb: &JournalSuperblock) -> usize {
    if jsb.csum_v2or3() {
        JBD2_BLOCK_TAIL_SIZE
    } else {
        0
    }
}

/// Model of `scan_revoke_records()` (fs/jbd2/recovery.c): the revoked block numbers, in order.
/// `JournalRevoke(..)` for a short block, a bad magic or type, or `r_count` running into the
/// checksum tail (the kernel's `-EINVAL`); an `r_count` below 16, or a trailing partial
/// record, simply yields fewer records, as in the kernel. The checksum is not verified here:
/// see [`super::descriptor_block_csum_verify`].
pub fn parse_revoke(buf: &[u8], jsb: &JournalSuperblock) -> Result<Vec<u64>> {
    let buf = journal_block(buf, jsb, CorruptKind::JournalRevoke)?;
    expect_header(buf, JBD2_REVOKE_BLOCK, CorruptKind::JournalRevoke)?;
    if buf.len() < REVOKE_HEADER_SIZE {
        return Err(Error::Corrupt(CorruptKind::JournalRevoke(
            "block too short",
        )));
    }
    let rcount = u64::from(read_u32be(buf, 0xC));
    let limit = buf.len() - csum_size(jsb);
    if rcount > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(Error::Corrupt(CorruptKind::JournalRevoke(
            "r_count too large",
        )));
    }
    // OK to unwrap: rcount <= limit, a usize.
    let max = usize::try_from(rcount).unwrap();
    let rl = record_len(jsb);
    let read = |off| match rl {
        8 => read_u64be(buf, off),
        _ => u64::from(read_u32be(buf, off)),
    };
    let offsets = (REVOKE_HEADER_SIZE..)
        .step_by(rl)
        .take_while(|off| off + rl <= max);
    Ok(offsets.map(read).collect())
}

/// How many records one revoke block holds.
pub fn revoke_capacity(jsb: &JournalSuperblock, block_size: usize) -> usize {
    (block_size - csum_size(jsb) - REVOKE_HEADER_SIZE) / record_len(jsb)
}

/// Model of `jbd2_journal_write_revoke_records()` / `write_one_revoke_record()` /
/// `flush_descriptor()` (fs/jbd2/revoke.c): the revoke blocks of transaction `tid` for `blocks`,
/// each filled up to the checksum tail, with `r_count` and (v2/v3) the tail set. No blocks for
/// an empty list.
///
/// # Panics
/// If a block number needs more than 32 bits without 64BIT.
pub fn build_revoke(
    tid: Tid,
    blocks: &[u64],
    jsb: &JournalSuperblock,
    block_size: usize,
) -> Vec<Vec<u8>> {
    let rl = record_len(jsb);
    let per_block = revoke_capacity(jsb, block_size);
    let one = |chunk: &[u64]| {
        let mut buf = vec![0u8; block_size];
        JournalHeader::new(JBD2_REVOKE_BLOCK, tid).write(&mut buf);
        let mut off = REVOKE_HEADER_SIZE;
        for &blk in chunk {
            if rl == 8 {
                write_u64be(&mut buf, off, blk);
            } else {
                let blk = u32::try_from(blk).expect("revoked block needs 64BIT");
                write_u32be(&mut buf, off, blk);
            }
            off += rl;
        }
        // OK to unwrap: off <= block_size.
        write_u32be(&mut buf, 0xC, u32::try_from(off).unwrap());
        descriptor_block_csum_set(jsb, &mut buf);
        buf
    };
    blocks.chunks(per_block).map(one).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{jsb_with, XorShift};
    use super::super::{descriptor_block_csum_verify, JBD2_FEATURE_INCOMPAT_CSUM_V3};
    use super::*;

    #[test]
    fn layout_32_and_64_bit() {
        let v3 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let blocks = build_revoke(Tid(3), &[302, 0x0A0B_0C0D], &v3, 1024);
        assert_eq!(blocks.len(), 1);
        let b = &blocks[0];
        assert_eq!(
            b[..16],
            [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 24]
        );
        assert_eq!(b[16..24], [0, 0, 1, 0x2E, 0x0A, 0x0B, 0x0C, 0x0D]);
        assert_eq!(descriptor_block_csum_verify(&v3, b), Ok(()));
        assert_eq!(parse_revoke(b, &v3).unwrap(), [302, 0x0A0B_0C0D]);

        let v3_64 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3 | 2, 1024);
        let b = &build_revoke(Tid(3), &[0x1_0000_0002], &v3_64, 1024)[0];
        assert_eq!(b[12..24], [0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(parse_revoke(b, &v3_64).unwrap(), [0x1_0000_0002]);
    }

    #[test]
    fn many_records_span_blocks() {
        let v3 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        assert_eq!(revoke_capacity(&v3, 1024), 251);
        assert_eq!(revoke_capacity(&jsb_with(2, 1024), 1024), 126);
        let blocks: Vec<u64> = (1000..1600).collect();
        let out = build_revoke(Tid(4), &blocks, &v3, 1024);
        assert_eq!(out.len(), 3);
        let back: Vec<u64> = out
            .iter()
            .flat_map(|b| parse_revoke(b, &v3).unwrap())
            .collect();
        assert_eq!(back, blocks);
        assert_eq!(read_u32be(&out[0], 0xC), 16 + 251 * 4);
        assert!(build_revoke(Tid(4), &[], &v3, 1024).is_empty());
    }

    #[test]
    fn r_count_rules() {
        let v3 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let mut b = build_revoke(Tid(3), &[7, 8, 9], &v3, 1024).remove(0);
        let with = |b: &mut Vec<u8>, n: u32| {
            write_u32be(b, 0xC, n);
            parse_revoke(b, &v3)
        };
        assert_eq!(
            with(&mut b, 1020),
            Ok(vec![7, 8, 9].into_iter().chain([0; 251 - 3]).collect())
        );
        let too_large = Err(Error::Corrupt(CorruptKind::JournalRevoke(
            "r_count too large",
        )));
        assert_eq!(with(&mut b, 1021), too_large);
        assert_eq!(with(&mut b, 0), Ok(vec![]));
        assert_eq!(with(&mut b, 23), Ok(vec![7]), "a partial record is ignored");
        let plain = jsb_with(0, 1024);
        write_u32be(&mut b, 0xC, 1024);
        assert_eq!(
            parse_revoke(&b, &plain).map(|v| v.len()),
            Ok(252),
            "no tail: up to 1024"
        );
        b[7] = 1;
        let wrong = Err(Error::Corrupt(CorruptKind::JournalRevoke(
            "wrong block type",
        )));
        assert_eq!(parse_revoke(&b, &plain), wrong);
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        for round in 0..3000 {
            let jsb = jsb_with([0x10, 0x12, 0x0, 0x2][round % 4], 1024);
            let len = [0usize, 15, 16, 1024, 2000][rng.below(5)];
            let mut b = rng.bytes(len);
            if len >= 16 && round % 2 == 0 {
                JournalHeader::new(JBD2_REVOKE_BLOCK, Tid(1)).write(&mut b);
                write_u32be(&mut b, 0xC, u32::try_from(rng.below(1100)).unwrap());
            }
            if let Ok(v) = parse_revoke(&b, &jsb) {
                assert!(v.len() <= revoke_capacity(&jsb, 1024));
            }
        }
    }
}
