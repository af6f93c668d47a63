//! Descriptor blocks (`JBD2_DESCRIPTOR_BLOCK`) and their block tags: `journal_block_tag3_t`
//! (csum v3) and `journal_block_tag_t` (otherwise), big-endian.
//!
//! After the 12-byte header come the tags, one per data block that follows the descriptor in
//! the log. The first tag of a descriptor is followed by the 16-byte journal UUID; the others
//! carry `JBD2_FLAG_SAME_UUID` and no UUID. The last tag has `JBD2_FLAG_LAST_TAG`. With csum
//! v2/v3 the last 4 bytes of the block are its checksum tail.
//!
//! | tag | 0x0 | 0x4 | 0x6 | 0x8 | 0xC | size |
//! |---|---|---|---|---|---|---|
//! | tag3 (v3) | t_blocknr | t_flags (be32; written as be16 at 0x6) | | t_blocknr_high | t_checksum (be32) | 16 |
//! | tag (v2) | t_blocknr | t_checksum (be16) | t_flags (be16) | t_blocknr_high | | 14 (10 without 64BIT) |
//! | tag (none) | t_blocknr | (0) | t_flags (be16) | t_blocknr_high | | 12 (8 without 64BIT) |
//!
//! Both readers in the kernel (`count_tags()` and the replay loop of `do_one_pass()`) take the
//! flags as the be16 at 0x6 for every layout; so do we.

use super::{
    descriptor_block_csum_set, expect_header, JournalHeader, JournalSuperblock,
    JBD2_BLOCK_TAIL_SIZE, JBD2_DESCRIPTOR_BLOCK, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FLAG_DELETED,
    JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JOURNAL_HEADER_SIZE,
};
use crate::bytes::{be32, read_u16be, read_u32be, write_u16be, write_u32be};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::units::Tid;

/// Bytes of the UUID that follows the first tag of a descriptor.
const UUID_SIZE: usize = 16;

/// One block tag: where the logged block goes home, and how it was logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockTag {
    /// `t_blocknr` | `t_blocknr_high` << 32 (the high half only with 64BIT): the home block.
    pub blocknr: u64,
    /// `t_flags`: `JBD2_FLAG_*`.
    pub flags: u32,
    /// `t_checksum`: 32 bits with csum v3, the low 16 with v2, 0 otherwise.
    pub checksum: u32,
}

/// The usable part of a journal block (the checksum tail excluded).
fn usable(jsb: &JournalSuperblock, block_size: usize) -> usize {
    let tail = if jsb.csum_v2or3() {
        JBD2_BLOCK_TAIL_SIZE
    } else {
        0
    };
    block_size.saturating_sub(tail)
}

/// The block of a journal-block parser: `buf` cut to `s_blocksize`, or `err` if it is shorter.
pub(super) fn journal_block<'a>(
    buf: &'a [u8],
    jsb: &JournalSuperblock,
    err: fn(&'static str) -> CorruptKind,
) -> Result<&'a [u8]> {
    let bs = usize::try_from(jsb.s_blocksize).unwrap_or(usize::MAX);
    buf.get(..bs)
        .ok_or(Error::Corrupt(err("block shorter than s_blocksize")))
}

/// Model of `read_tag_block()` and the flag/checksum reads of `do_one_pass()` for the tag at
/// `off`.
fn read_tag(jsb: &JournalSuperblock, buf: &[u8], off: usize) -> BlockTag {
    let mut blocknr = u64::from(read_u32be(buf, off));
    if jsb.is_64bit() {
        blocknr |= u64::from(read_u32be(buf, off + 0x8)) << 32;
    }
    let checksum = if jsb.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V3) {
        read_u32be(buf, off + 0xC)
    } else if jsb.csum_v2or3() {
        u32::from(read_u16be(buf, off + 0x4))
    } else {
        0
    };
    let flags = u32::from(read_u16be(buf, off + 0x6));
    BlockTag {
        blocknr,
        flags,
        checksum,
    }
}

/// Parse a descriptor block: its tags, in log order. Model of `count_tags()` / the tag loop of
/// `do_one_pass()` (fs/jbd2/recovery.c): a tag is read while it fits before the checksum
/// tail; the UUID after a tag without `SAME_UUID` is skipped; `LAST_TAG` ends the list.
/// Like the kernel, a UUID running past the usable area just ends the list (no error).
///
/// `JournalDescriptor(..)` for a block shorter than `s_blocksize`, a bad magic or a block of
/// another type. The checksum is not verified here: see
/// [`super::descriptor_block_csum_verify`].
pub fn parse_descriptor(buf: &[u8], jsb: &JournalSuperblock) -> Result<Vec<BlockTag>> {
    let buf = journal_block(buf, jsb, CorruptKind::JournalDescriptor)?;
    expect_header(buf, JBD2_DESCRIPTOR_BLOCK, CorruptKind::JournalDescriptor)?;
    let (size, tag_bytes) = (usable(jsb, buf.len()), jsb.tag_bytes());
    let mut tags = Vec::new();
    let mut off = JOURNAL_HEADER_SIZE;
    while off + tag_bytes <= size {
        let tag = read_tag(jsb, buf, off);
        tags.push(tag);
        off += tag_bytes;
        if tag.flags & JBD2_FLAG_SAME_UUID == 0 {
            off += UUID_SIZE;
        }
        if tag.flags & JBD2_FLAG_LAST_TAG != 0 {
            break;
        }
    }
    Ok(tags)
}

/// Model of `write_tag_block()` + the flag and checksum stores of
/// `jbd2_journal_commit_transaction()`.
fn write_tag(jsb: &JournalSuperblock, buf: &mut [u8], off: usize, tag: &BlockTag) {
    write_u32be(buf, off, tag.blocknr as u32); // truncation intended: t_blocknr
    if jsb.is_64bit() {
        write_u32be(buf, off + 0x8, (tag.blocknr >> 32) as u32);
    }
    // OK to unwrap: the caller keeps only the 4 defined flag bits.
    write_u16be(buf, off + 0x6, u16::try_from(tag.flags).unwrap());
    if jsb.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V3) {
        write_u32be(buf, off + 0xC, tag.checksum);
    } else if jsb.csum_v2or3() {
        write_u16be(buf, off + 0x4, tag.checksum as u16); // truncation intended: low 16 bits
    }
}

/// Build a descriptor block of `block_size` bytes for transaction `tid`, the writer side of
/// `jbd2_journal_commit_transaction()`: the tags in order, the journal UUID after the first,
/// `SAME_UUID` on the others, `LAST_TAG` on the last, and (v2/v3) the checksum tail. Of each
/// tag's flags only `ESCAPE` (and the unused `DELETED`) are taken; `checksum` is written as
/// given (see [`block_tag_csum`]).
///
/// # Panics
/// If `tags` is empty or longer than [`descriptor_capacity`], or a block number needs more
/// than 32 bits without 64BIT: bugs in the committing code.
pub fn build_descriptor(
    tid: Tid,
    tags: &[BlockTag],
    jsb: &JournalSuperblock,
    block_size: usize,
) -> Vec<u8> {
    let capacity = descriptor_capacity(jsb, block_size);
    assert!(
        !tags.is_empty() && tags.len() <= capacity,
        "{} tags",
        tags.len()
    );
    let mut buf = vec![0u8; block_size];
    JournalHeader::new(JBD2_DESCRIPTOR_BLOCK, tid).write(&mut buf);
    let mut off = JOURNAL_HEADER_SIZE;
    for (i, tag) in tags.iter().enumerate() {
        assert!(
            jsb.is_64bit() || tag.blocknr <= u64::from(u32::MAX),
            "block needs 64BIT"
        );
        let mut flags = tag.flags & (JBD2_FLAG_ESCAPE | JBD2_FLAG_DELETED);
        if i > 0 {
            flags |= JBD2_FLAG_SAME_UUID;
        }
        if i + 1 == tags.len() {
            flags |= JBD2_FLAG_LAST_TAG;
        }
        write_tag(jsb, &mut buf, off, &BlockTag { flags, ..*tag });
        off += jsb.tag_bytes();
        if i == 0 {
            buf[off..off + UUID_SIZE].copy_from_slice(&jsb.s_uuid);
            off += UUID_SIZE;
        }
    }
    descriptor_block_csum_set(jsb, &mut buf);
    buf
}

/// How many tags one descriptor takes, as `jbd2_journal_commit_transaction()` decides: after
/// each tag it closes the descriptor when `space_left < tag_bytes + 16 + csum_size` (it always
/// keeps room for a UUID, so a block may end with one unused tag slot), or when its write
/// buffer (`j_wbufsize` = `block_size / 8`, shared with the descriptor itself) is full.
pub fn descriptor_capacity(jsb: &JournalSuperblock, block_size: usize) -> usize {
    let tag_bytes = jsb.tag_bytes();
    let csum_size = block_size - usable(jsb, block_size);
    let wbufsize = block_size / 8;
    let mut space_left = block_size.saturating_sub(JOURNAL_HEADER_SIZE);
    let mut tags = 0;
    loop {
        tags += 1;
        space_left = space_left.saturating_sub(tag_bytes);
        if tags == 1 {
            space_left = space_left.saturating_sub(UUID_SIZE);
        }
        if tags + 1 >= wbufsize || space_left < tag_bytes + UUID_SIZE + csum_size {
            return tags;
        }
    }
}

/// Model of `jbd2_block_tag_csum_set()`: the tag checksum of the logged (escaped) copy `data`
/// of a block in transaction `tid`, `raw(raw(J, be32 tid), data)`, as stored: 32 bits with
/// csum v3, the low 16 with v2, 0 without checksums.
pub fn block_tag_csum(jsb: &JournalSuperblock, tid: Tid, data: &[u8]) -> u32 {
    if !jsb.csum_v2or3() {
        return 0;
    }
    let csum = crc32c_raw(crc32c_raw(jsb.csum_seed(), &be32(tid.0)), data);
    if jsb.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V3) {
        csum
    } else {
        csum & 0xFFFF
    }
}

/// Model of `jbd2_block_tag_csum_verify()`: whether the logged copy `data` matches its tag
/// (always true without csum v2/v3).
pub fn tag_csum_verify(jsb: &JournalSuperblock, tag: &BlockTag, tid: Tid, data: &[u8]) -> bool {
    !jsb.csum_v2or3() || tag.checksum == block_tag_csum(jsb, tid, data)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{jsb_with, XorShift};
    use super::super::{descriptor_block_csum_verify, JBD2_FEATURE_INCOMPAT_CSUM_V2};
    use super::*;

    fn tag(blocknr: u64, flags: u32, checksum: u32) -> BlockTag {
        BlockTag {
            blocknr,
            flags,
            checksum,
        }
    }

    #[test]
    fn tag_sizes_and_capacity() {
        let v3 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let v3_64 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3 | 2, 1024);
        let v2_64 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V2 | 2, 1024);
        let v2 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V2, 1024);
        let plain_64 = jsb_with(2, 1024);
        let plain = jsb_with(0, 1024);
        let sizes = [
            v3.tag_bytes(),
            v3_64.tag_bytes(),
            v2_64.tag_bytes(),
            v2.tag_bytes(),
        ];
        assert_eq!(sizes, [16, 16, 14, 10]);
        assert_eq!((plain_64.tag_bytes(), plain.tag_bytes()), (12, 8));
        // 1 KiB, v3: 12 + 16 + 16 (UUID) + 60 × 16 = 1004; one more tag would fit before the
        // tail at 1020, but the kernel keeps room for a UUID.
        assert_eq!(descriptor_capacity(&v3, 1024), 61);
        assert_eq!(descriptor_capacity(&jsb_with(0x10, 4096), 4096), 253);
        assert_eq!(descriptor_capacity(&plain, 1024), 122);
        assert_eq!(descriptor_capacity(&jsb_with(0, 4096), 4096), 506);
    }

    #[test]
    fn v3_descriptor_layout_is_exact() {
        let jsb = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3 | 2, 1024);
        let tags = [
            tag(0x1_0000_0300, JBD2_FLAG_ESCAPE, 0xAABB_CCDD),
            tag(0x301, JBD2_FLAG_LAST_TAG | JBD2_FLAG_SAME_UUID, 7),
        ];
        let b = build_descriptor(Tid(9), &tags, &jsb, 1024);
        assert_eq!(b[..12], [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 1, 0, 0, 0, 9]);
        let t0 = [0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xAA, 0xBB, 0xCC, 0xDD];
        assert_eq!(b[12..28], t0);
        assert_eq!(b[28..44], jsb.s_uuid);
        assert_eq!(
            b[44..60],
            [0, 0, 3, 1, 0, 0, 0, 0xA, 0, 0, 0, 0, 0, 0, 0, 7]
        );
        assert!(b[60..1020].iter().all(|&x| x == 0));
        assert_eq!(descriptor_block_csum_verify(&jsb, &b), Ok(()));
        let parsed = parse_descriptor(&b, &jsb).unwrap();
        let want = [
            tag(0x1_0000_0300, JBD2_FLAG_ESCAPE, 0xAABB_CCDD),
            tag(0x301, JBD2_FLAG_LAST_TAG | JBD2_FLAG_SAME_UUID, 7),
        ];
        assert_eq!(parsed, want);
    }

    #[test]
    fn v2_and_plain_layouts() {
        let v2 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V2, 1024);
        let b = build_descriptor(Tid(1), &[tag(5, 0, 0x1234_5678)], &v2, 1024);
        // t_blocknr, t_checksum (low 16 bits), t_flags = LAST_TAG; no t_blocknr_high.
        assert_eq!(b[12..20], [0, 0, 0, 5, 0x56, 0x78, 0, 8]);
        assert_eq!(parse_descriptor(&b, &v2).unwrap(), [tag(5, 8, 0x5678)]);
        let plain = jsb_with(0, 1024);
        let tags: Vec<BlockTag> = (0..122).map(|i| tag(100 + i, 0, 0)).collect();
        let b = build_descriptor(Tid(1), &tags, &plain, 1024);
        let parsed = parse_descriptor(&b, &plain).unwrap();
        assert_eq!(parsed.len(), 122);
        assert_eq!((parsed[1].flags, parsed[121].flags), (2, 2 | 8));
        assert_eq!(
            b[1020..],
            [0, 0, 0, 0],
            "no checksum tail without csum v2/v3"
        );
    }

    #[test]
    fn tags_stop_at_the_tail_without_last_tag() {
        let jsb = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let mut b = vec![0u8; 1024];
        JournalHeader::new(JBD2_DESCRIPTOR_BLOCK, Tid(1)).write(&mut b);
        for off in (44..1020).step_by(16) {
            write_u16be(&mut b, off + 6, 2); // SAME_UUID, never LAST_TAG
        }
        assert_eq!(
            parse_descriptor(&b, &jsb).unwrap().len(),
            1 + (1020 - 44) / 16
        );
    }

    #[test]
    fn header_problems_are_descriptor_errors() {
        let jsb = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let good = build_descriptor(Tid(1), &[tag(5, 0, 0)], &jsb, 1024);
        let err = |w| Err(Error::Corrupt(CorruptKind::JournalDescriptor(w)));
        assert_eq!(
            parse_descriptor(&good[..1023], &jsb),
            err("block shorter than s_blocksize")
        );
        let mut b = good.clone();
        b[3] ^= 1;
        assert_eq!(parse_descriptor(&b, &jsb), err("bad magic"));
        let mut b = good.clone();
        b[7] = 2;
        assert_eq!(parse_descriptor(&b, &jsb), err("wrong block type"));
        let mut b = good;
        b[12] ^= 1;
        let bad = Err(Error::Corrupt(CorruptKind::JournalChecksum(
            "descriptor/revoke block tail",
        )));
        assert_eq!(descriptor_block_csum_verify(&jsb, &b), bad);
    }

    #[test]
    fn tag_checksums() {
        let v3 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        let v2 = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V2, 1024);
        let data = vec![0x42u8; 1024];
        let full = crc32c_raw(crc32c_raw(v3.csum_seed(), &[0, 0, 0, 7]), &data);
        assert_eq!(block_tag_csum(&v3, Tid(7), &data), full);
        assert_eq!(block_tag_csum(&v2, Tid(7), &data), full & 0xFFFF);
        assert_eq!(block_tag_csum(&jsb_with(0, 1024), Tid(7), &data), 0);
        assert!(tag_csum_verify(&v3, &tag(1, 0, full), Tid(7), &data));
        assert!(!tag_csum_verify(&v3, &tag(1, 0, full), Tid(8), &data));
        assert!(tag_csum_verify(
            &jsb_with(0, 1024),
            &tag(1, 0, 99),
            Tid(8),
            &data
        ));
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        let layouts = [0x10, 0x12, 0x8, 0xA, 0x2, 0x0];
        for round in 0..3000 {
            let jsb = jsb_with(layouts[round % layouts.len()], 1024);
            let len = [0usize, 11, 12, 1023, 1024, 1100][rng.below(6)];
            let mut b = rng.bytes(len);
            if len >= 12 && round % 2 == 0 {
                JournalHeader::new(JBD2_DESCRIPTOR_BLOCK, Tid(1)).write(&mut b);
            }
            if let Ok(tags) = parse_descriptor(&b, &jsb) {
                assert!(!tags.is_empty() && tags.len() * jsb.tag_bytes() <= 1024);
            }
            let _ = descriptor_block_csum_verify(&jsb, &b);
        }
    }
}
