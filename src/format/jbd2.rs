//! The JBD2 on-disk format (include/linux/jbd2.h). **Everything here is big-endian**, unlike
//! the rest of ext4.
//!
//! The journal is a circular log of blocks inside inode 8 (journal-relative block numbers).
//! Block 0 holds the [`JournalSuperblock`]; every other log block either starts with a 12-byte
//! [`JournalHeader`] (magic, type, transaction id) or is a copy of a filesystem block. A
//! transaction is written as
//!
//! ```text
//! [revoke]* ( descriptor  data × n )*  commit
//! ```
//!
//! * a descriptor block ([`descriptor`]) lists one tag per following data block: its home
//!   block number, flags, and (csum v2/v3) a checksum of the logged copy;
//! * a revoke block ([`revoke`]) lists home blocks whose older logged copies must not be replayed;
//! * the commit block ([`commit`]) seals the transaction.
//!
//! Checksums (csum v2/v3) are raw CRC-32C seeded with `J = crc32c_raw(!0, s_uuid)`
//! ([`JournalSuperblock::csum_seed`]). Descriptor and revoke blocks carry a 4-byte tail
//! (`struct jbd2_journal_block_tail`) in their last bytes; the commit block keeps its checksum in
//! `h_chksum[0]`. The old v1 scheme (`JBD2_FEATURE_COMPAT_CHECKSUM`, a crc32_be over a whole
//! transaction stored in the commit block) is parsed but not computed: the functions that
//! would need it return `Unsupported("journal checksum v1")`.
//!
//! A logged block whose first 4 bytes equal the magic would be mistaken for a journal block, so
//! it is *escaped*: those bytes are zeroed in the log and the tag gets `JBD2_FLAG_ESCAPE`
//! ([`escape`], [`unescape`]).

pub mod commit;
pub mod descriptor;
pub mod revoke;
pub mod superblock;

pub use commit::{
    build_commit, commit_block_csum_set, commit_block_csum_verify,
    commit_block_csum_verify_partial, parse_commit, CommitBlock,
};
pub use descriptor::{
    block_tag_csum, build_descriptor, descriptor_capacity, parse_descriptor, tag_csum_verify,
    BlockTag,
};
pub use revoke::{build_revoke, parse_revoke, revoke_capacity};
pub use superblock::JournalSuperblock;

use crate::bytes::{read_u32be, write_u32be};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::units::Tid;

/// `JBD2_MAGIC_NUMBER`: first 4 bytes of every journal metadata block.
pub const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;

/// `JBD2_DESCRIPTOR_BLOCK`.
pub const JBD2_DESCRIPTOR_BLOCK: u32 = 1;
/// `JBD2_COMMIT_BLOCK`.
pub const JBD2_COMMIT_BLOCK: u32 = 2;
/// `JBD2_SUPERBLOCK_V1`.
pub const JBD2_SUPERBLOCK_V1: u32 = 3;
/// `JBD2_SUPERBLOCK_V2`.
pub const JBD2_SUPERBLOCK_V2: u32 = 4;
/// `JBD2_REVOKE_BLOCK`.
pub const JBD2_REVOKE_BLOCK: u32 = 5;
/// `JBD2_FC_BLOCK` (fast-commit area; e2fsprogs' header only).
pub const JBD2_FC_BLOCK: u32 = 6;

/// `JBD2_FEATURE_COMPAT_CHECKSUM`: v1 checksums (crc32_be in the commit block).
pub const JBD2_FEATURE_COMPAT_CHECKSUM: u32 = 0x1;
/// `JBD2_FEATURE_INCOMPAT_REVOKE`.
pub const JBD2_FEATURE_INCOMPAT_REVOKE: u32 = 0x1;
/// `JBD2_FEATURE_INCOMPAT_64BIT`: 64-bit block numbers in tags and revoke records.
pub const JBD2_FEATURE_INCOMPAT_64BIT: u32 = 0x2;
/// `JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT`.
pub const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V2`.
pub const JBD2_FEATURE_INCOMPAT_CSUM_V2: u32 = 0x8;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V3`.
pub const JBD2_FEATURE_INCOMPAT_CSUM_V3: u32 = 0x10;
/// `JBD2_FEATURE_INCOMPAT_FAST_COMMIT`.
pub const JBD2_FEATURE_INCOMPAT_FAST_COMMIT: u32 = 0x20;
/// `JBD2_KNOWN_COMPAT_FEATURES`.
pub const JBD2_KNOWN_COMPAT_FEATURES: u32 = JBD2_FEATURE_COMPAT_CHECKSUM;
/// `JBD2_KNOWN_ROCOMPAT_FEATURES`.
pub const JBD2_KNOWN_ROCOMPAT_FEATURES: u32 = 0;
/// `JBD2_KNOWN_INCOMPAT_FEATURES`.
pub const JBD2_KNOWN_INCOMPAT_FEATURES: u32 = JBD2_FEATURE_INCOMPAT_REVOKE
    | JBD2_FEATURE_INCOMPAT_64BIT
    | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT
    | JBD2_FEATURE_INCOMPAT_CSUM_V2
    | JBD2_FEATURE_INCOMPAT_CSUM_V3
    | JBD2_FEATURE_INCOMPAT_FAST_COMMIT;

/// `JBD2_FLAG_ESCAPE`: the logged copy had its magic zeroed.
pub const JBD2_FLAG_ESCAPE: u32 = 1;
/// `JBD2_FLAG_SAME_UUID`: no UUID follows this tag.
pub const JBD2_FLAG_SAME_UUID: u32 = 2;
/// `JBD2_FLAG_DELETED`: unused by jbd2.
pub const JBD2_FLAG_DELETED: u32 = 4;
/// `JBD2_FLAG_LAST_TAG`: the last tag of its descriptor.
pub const JBD2_FLAG_LAST_TAG: u32 = 8;

/// `JBD2_CRC32_CHKSUM`: v1 commit checksum type.
pub const JBD2_CRC32_CHKSUM: u8 = 1;
/// `JBD2_CRC32C_CHKSUM`: `s_checksum_type` required with csum v2/v3.
pub const JBD2_CRC32C_CHKSUM: u8 = 4;
/// `JBD2_CRC32_CHKSUM_SIZE`.
pub const JBD2_CRC32_CHKSUM_SIZE: u8 = 4;
/// `JBD2_MIN_JOURNAL_BLOCKS`.
pub const JBD2_MIN_JOURNAL_BLOCKS: u32 = 1024;
/// `JBD2_DEFAULT_FAST_COMMIT_BLOCKS`: fast-commit area when `s_num_fc_blks` is 0.
pub const JBD2_DEFAULT_FAST_COMMIT_BLOCKS: u32 = 256;
/// `JBD2_USERS_MAX`: entries of `s_users`.
pub const JBD2_USERS_MAX: u32 = 48;
/// `sizeof(journal_header_t)`.
pub const JOURNAL_HEADER_SIZE: usize = 12;
/// `sizeof(struct jbd2_journal_block_tail)`: the checksum tail of descriptor and revoke blocks.
pub const JBD2_BLOCK_TAIL_SIZE: usize = 4;

/// `journal_header_t` (12 bytes, big-endian): the start of every journal metadata block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalHeader {
    /// 0x0 `h_magic`.
    pub h_magic: u32,
    /// 0x4 `h_blocktype`.
    pub h_blocktype: u32,
    /// 0x8 `h_sequence`: the transaction id.
    pub h_sequence: Tid,
}

impl JournalHeader {
    /// A header with the magic, for a block of `blocktype` in transaction `tid`.
    pub fn new(blocktype: u32, tid: Tid) -> JournalHeader {
        JournalHeader {
            h_magic: JBD2_MAGIC_NUMBER,
            h_blocktype: blocktype,
            h_sequence: tid,
        }
    }

    /// Read the 12 header bytes as they are (recovery treats a wrong magic as the end of the
    /// log, not as an error, so nothing is checked here).
    pub fn parse(buf: &[u8]) -> Result<JournalHeader> {
        if buf.len() < JOURNAL_HEADER_SIZE {
            return Err(Error::Corrupt(CorruptKind::Truncated {
                what: "journal block header",
            }));
        }
        Ok(JournalHeader {
            h_magic: read_u32be(buf, 0x0),
            h_blocktype: read_u32be(buf, 0x4),
            h_sequence: Tid(read_u32be(buf, 0x8)),
        })
    }

    /// Write the 12 header bytes.
    ///
    /// # Panics
    /// If `buf` is shorter than 12 bytes.
    pub fn write(&self, buf: &mut [u8]) {
        write_u32be(buf, 0x0, self.h_magic);
        write_u32be(buf, 0x4, self.h_blocktype);
        write_u32be(buf, 0x8, self.h_sequence.0);
    }

    /// Whether this is a journal block of type `blocktype` (magic and type match).
    pub fn is(&self, blocktype: u32) -> bool {
        self.h_magic == JBD2_MAGIC_NUMBER && self.h_blocktype == blocktype
    }
}

/// Parse the header of a block that must be of `blocktype`; `err` builds the error kind for a
/// short block, a wrong magic or a wrong type.
fn expect_header(
    buf: &[u8],
    blocktype: u32,
    err: fn(&'static str) -> CorruptKind,
) -> Result<JournalHeader> {
    let header = JournalHeader::parse(buf).map_err(|_| Error::Corrupt(err("block too short")))?;
    if header.h_magic != JBD2_MAGIC_NUMBER {
        return Err(Error::Corrupt(err("bad magic")));
    }
    if header.h_blocktype != blocktype {
        return Err(Error::Corrupt(err("wrong block type")));
    }
    Ok(header)
}

/// Whether a block must be escaped before it is logged: its first 4 bytes read as the magic
/// (the test in `jbd2_journal_write_metadata_buffer()`).
pub fn needs_escape(data: &[u8]) -> bool {
    data.len() >= 4 && read_u32be(data, 0) == JBD2_MAGIC_NUMBER
}

/// Escape a block for the log in place: if [`needs_escape`], zero its first 4 bytes and return
/// true (the tag then needs [`JBD2_FLAG_ESCAPE`]).
pub fn escape(data: &mut [u8]) -> bool {
    let escaped = needs_escape(data);
    if escaped {
        data[..4].fill(0);
    }
    escaped
}

/// Undo [`escape`] at replay: write the magic back into the first 4 bytes, as `do_one_pass()`
/// does for a tag with [`JBD2_FLAG_ESCAPE`].
///
/// # Panics
/// If `data` is shorter than 4 bytes.
pub fn unescape(data: &mut [u8]) {
    write_u32be(data, 0, JBD2_MAGIC_NUMBER);
}

/// Model of `jbd2_descriptor_block_csum_set()`: store in the last 4 bytes the raw CRC-32C of
/// the whole block (tail zeroed), seeded with `J`. Used for descriptor and revoke blocks; does
/// nothing without csum v2/v3.
///
/// # Panics
/// If `buf` is shorter than 4 bytes (a block we built ourselves).
pub fn descriptor_block_csum_set(jsb: &JournalSuperblock, buf: &mut [u8]) {
    if !jsb.csum_v2or3() {
        return;
    }
    let off = buf.len() - JBD2_BLOCK_TAIL_SIZE;
    write_u32be(buf, off, 0);
    let csum = crc32c_raw(jsb.csum_seed(), buf);
    write_u32be(buf, off, csum);
}

/// Model of `jbd2_descriptor_block_csum_verify()`, which recovery also applies to revoke
/// blocks: `JournalChecksum("descriptor/revoke block tail")` on a mismatch, over the first
/// `s_blocksize` bytes of `buf`. Always Ok without csum v2/v3.
pub fn descriptor_block_csum_verify(jsb: &JournalSuperblock, buf: &[u8]) -> Result<()> {
    if !jsb.csum_v2or3() {
        return Ok(());
    }
    let buf = descriptor::journal_block(buf, jsb, CorruptKind::JournalDescriptor)?;
    let Some(off) = buf.len().checked_sub(JBD2_BLOCK_TAIL_SIZE) else {
        return Err(Error::Corrupt(CorruptKind::JournalDescriptor(
            "block too short",
        )));
    };
    let body = crc32c_raw(jsb.csum_seed(), &buf[..off]);
    if crc32c_raw(body, &[0; JBD2_BLOCK_TAIL_SIZE]) != read_u32be(buf, off) {
        return Err(Error::Corrupt(CorruptKind::JournalChecksum(
            "descriptor/revoke block tail",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testimg::Img;

    /// xorshift64: fixed-seed pseudo-random input for the no-panic loops of this module.
    pub(super) struct XorShift(pub(super) u64);

    impl XorShift {
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub(super) fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
        }

        pub(super) fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next().to_be_bytes()[3]).collect()
        }
    }

    /// A v2 superblock of a 1024-block journal with exactly `incompat` set (crc32c if v2/v3).
    pub(super) fn jsb_with(incompat: u32, block_size: u32) -> JournalSuperblock {
        let uuid = std::array::from_fn(|i| u8::try_from(i * 13 + 1).unwrap());
        let mut jsb = JournalSuperblock::new(block_size, 1024, uuid, false, false);
        jsb.s_feature_incompat = incompat;
        if jsb.csum_v2or3() {
            jsb.s_checksum_type = JBD2_CRC32C_CHKSUM;
        }
        jsb
    }

    #[test]
    fn header_round_trip() {
        let h = JournalHeader::new(JBD2_REVOKE_BLOCK, Tid(0x0A0B_0C0D));
        let mut b = [0u8; 12];
        h.write(&mut b);
        assert_eq!(b, [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 5, 0xA, 0xB, 0xC, 0xD]);
        assert_eq!(JournalHeader::parse(&b), Ok(h));
        assert!(h.is(JBD2_REVOKE_BLOCK) && !h.is(JBD2_COMMIT_BLOCK));
        let short = Err(Error::Corrupt(CorruptKind::Truncated {
            what: "journal block header",
        }));
        assert_eq!(JournalHeader::parse(&b[..11]), short);
    }

    #[test]
    fn escaping() {
        let mut data = vec![0xC0, 0x3B, 0x39, 0x98, 7, 8];
        assert!(needs_escape(&data));
        assert!(escape(&mut data));
        assert_eq!(data, [0, 0, 0, 0, 7, 8]);
        assert!(!needs_escape(&data) && !escape(&mut data));
        unescape(&mut data);
        assert_eq!(data, [0xC0, 0x3B, 0x39, 0x98, 7, 8]);
        assert!(!needs_escape(&[0xC0, 0x3B, 0x39]));
        assert!(
            !needs_escape(&[0x98, 0x39, 0x3B, 0xC0]),
            "big-endian magic only"
        );
    }

    // ---- ground truth: journals written by debugfs (`jo` / `jw` / `jc`) ---------------------

    /// The journal's log blocks 0..n (inode 8 is contiguous in a fresh image).
    fn journal(img: &Img, n: u64) -> Vec<Vec<u8>> {
        let start = img.bmap("<8>", 0);
        assert_eq!(
            img.bmap("<8>", n - 1),
            start + n - 1,
            "journal not contiguous"
        );
        (0..n).map(|i| img.block(start + i)).collect()
    }

    #[test]
    fn fresh_mkfs_superblock_equals_new() {
        let Some(img) = Img::mkfs("jbd2-fresh", Some("^64bit")) else {
            return;
        };
        let log = journal(&img, 2);
        let ours = JournalSuperblock::new(1024, 1024, img.uuid(), false, false);
        assert_eq!(ours.to_bytes()[..], log[0][..1024]);
        let jsb = JournalSuperblock::parse(&log[0]).unwrap();
        assert_eq!((jsb, log[1].iter().all(|&b| b == 0)), (ours, true));
    }

    /// Three blocks for `jw -b 300,301,305`; the second starts with the journal magic.
    fn three_blocks() -> Vec<u8> {
        let mut rng = XorShift(0x0123_4567_89AB_CDEF);
        let mut data = rng.bytes(3 * 1024);
        write_u32be(&mut data, 1024, JBD2_MAGIC_NUMBER);
        data
    }

    #[test]
    fn debugfs_v3_transactions_parse_and_rebuild() {
        let Some(img) = Img::mkfs("jbd2-v3", Some("64bit")) else {
            return;
        };
        let data = three_blocks();
        let script = "jo -c\njw -b 300,301,305 data\njw -r 302,303\njc\n";
        img.debugfs_script(script, &[("data", &data)]);
        let log = journal(&img, 9);
        let jsb = JournalSuperblock::parse(&log[0]).unwrap();
        assert_eq!(jsb.to_bytes()[..], log[0][..1024], "superblock round trip");
        let want = JBD2_FEATURE_INCOMPAT_CSUM_V3
            | JBD2_FEATURE_INCOMPAT_64BIT
            | JBD2_FEATURE_INCOMPAT_REVOKE;
        assert_eq!(
            (jsb.s_feature_incompat, jsb.s_start, jsb.s_sequence),
            (want, 1, Tid(1))
        );
        assert_eq!(jsb.s_uuid, img.uuid());

        // Transaction 1: descriptor, three data blocks, commit.
        let tags = parse_descriptor(&log[1], &jsb).unwrap();
        let blocks: Vec<(u64, u32)> = tags.iter().map(|t| (t.blocknr, t.flags)).collect();
        let (esc, same, last) = (JBD2_FLAG_ESCAPE, JBD2_FLAG_SAME_UUID, JBD2_FLAG_LAST_TAG);
        assert_eq!(blocks, [(300, 0), (301, esc | same), (305, same | last)]);
        assert_eq!(descriptor_block_csum_verify(&jsb, &log[1]), Ok(()));
        for (i, tag) in tags.iter().enumerate() {
            let logged = &log[2 + i];
            assert!(tag_csum_verify(&jsb, tag, Tid(1), logged), "tag {i}");
            let mut home = logged.clone();
            if tag.flags & JBD2_FLAG_ESCAPE != 0 {
                unescape(&mut home);
            }
            assert_eq!(home, data[i * 1024..][..1024], "logged copy {i}");
            let mut flipped = logged.clone();
            flipped[500] ^= 0x10;
            assert!(!tag_csum_verify(&jsb, tag, Tid(1), &flipped));
        }
        // debugfs 1.47 stores the UUID further into the block than the kernel (which puts it
        // right after the first tag), so compare with the UUID wiped from both.
        let mut ours = build_descriptor(Tid(1), &tags, &jsb, 1024);
        assert_eq!(ours[28..44], jsb.s_uuid);
        ours[28..44].fill(0);
        let mut theirs = log[1].clone();
        let at = theirs
            .windows(16)
            .position(|w| w == jsb.s_uuid)
            .expect("debugfs wrote a UUID");
        theirs[at..at + 16].fill(0);
        descriptor_block_csum_set(&jsb, &mut ours);
        descriptor_block_csum_set(&jsb, &mut theirs);
        assert_eq!(ours, theirs, "descriptor rebuilt byte for byte");

        let commit = parse_commit(&log[5], &jsb).unwrap();
        assert_eq!(commit.h_sequence, Tid(1));
        assert_eq!(commit_block_csum_verify(&jsb, &log[5]), Ok(()));
        let (sec, nsec) = (commit.h_commit_sec, commit.h_commit_nsec);
        assert_eq!(build_commit(Tid(1), sec, nsec, &jsb, 1024), log[5]);

        // Transaction 2: a revoke block and its commit.
        assert_eq!(parse_revoke(&log[6], &jsb).unwrap(), [302, 303]);
        assert_eq!(descriptor_block_csum_verify(&jsb, &log[6]), Ok(()));
        assert_eq!(
            build_revoke(Tid(2), &[302, 303], &jsb, 1024),
            [log[6].clone()]
        );
        assert_eq!(parse_commit(&log[7], &jsb).unwrap().h_sequence, Tid(2));
        assert_eq!(commit_block_csum_verify(&jsb, &log[7]), Ok(()));
        assert!(!JournalHeader::parse(&log[8])
            .unwrap()
            .is(JBD2_DESCRIPTOR_BLOCK));

        // Flipped bytes give the precise kinds.
        let mut d = log[1].clone();
        d[20] ^= 1;
        let desc = Err(Error::Corrupt(CorruptKind::JournalChecksum(
            "descriptor/revoke block tail",
        )));
        assert_eq!(descriptor_block_csum_verify(&jsb, &d), desc);
        let mut r = log[6].clone();
        r[17] ^= 1;
        assert_eq!(descriptor_block_csum_verify(&jsb, &r), desc);
        write_u32be(&mut r, 0xC, 1021);
        let rcount = Err(Error::Corrupt(CorruptKind::JournalRevoke(
            "r_count too large",
        )));
        assert_eq!(parse_revoke(&r, &jsb), rcount);
        let mut c = log[5].clone();
        c[0x3B] ^= 1;
        let cm = Err(Error::Corrupt(CorruptKind::JournalChecksum("commit block")));
        assert_eq!(commit_block_csum_verify(&jsb, &c), cm);
        let mut s = log[0].clone();
        s[0x1F] ^= 1; // s_start
        let sb = Err(Error::Corrupt(CorruptKind::JournalSuperblockChecksum));
        assert_eq!(JournalSuperblock::parse(&s), sb);
    }

    #[test]
    fn debugfs_v2_tags_and_32bit_revokes() {
        let Some(img) = Img::mkfs("jbd2-v2", Some("^64bit")) else {
            return;
        };
        let data = three_blocks();
        let script = "jo -c -v 2\njw -b 300,301,305 data\njw -r 302,303\njc\n";
        img.debugfs_script(script, &[("data", &data)]);
        let log = journal(&img, 8);
        let jsb = JournalSuperblock::parse(&log[0]).unwrap();
        assert!(jsb.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V2) && !jsb.is_64bit());
        assert_eq!(jsb.tag_bytes(), 10);
        let tags = parse_descriptor(&log[1], &jsb).unwrap();
        assert_eq!(
            tags.iter().map(|t| t.blocknr).collect::<Vec<_>>(),
            [300, 301, 305]
        );
        assert_eq!(descriptor_block_csum_verify(&jsb, &log[1]), Ok(()));
        for (i, tag) in tags.iter().enumerate() {
            assert!(tag.checksum <= 0xFFFF);
            assert!(
                tag_csum_verify(&jsb, tag, Tid(1), &log[2 + i]),
                "v2 tag {i}"
            );
        }
        assert_eq!(commit_block_csum_verify(&jsb, &log[5]), Ok(()));
        assert_eq!(parse_revoke(&log[6], &jsb).unwrap(), [302, 303]);
        assert_eq!(
            read_u32be(&log[6], 0xC),
            16 + 2 * 4,
            "4-byte records without 64BIT"
        );
        assert_eq!(
            build_revoke(Tid(2), &[302, 303], &jsb, 1024),
            [log[6].clone()]
        );
    }

    #[test]
    fn debugfs_full_descriptor() {
        let Some(img) = Img::mkfs("jbd2-full", Some("64bit")) else {
            return;
        };
        let data = XorShift(7).bytes(100 * 1024);
        let list: Vec<String> = (400..500).map(|b: u32| b.to_string()).collect();
        let script = format!(
            "jo -c
jw -b {} data
jc
",
            list.join(",")
        );
        img.debugfs_script(&script, &[("data", &data)]);
        let log = journal(&img, 104);
        let jsb = JournalSuperblock::parse(&log[0]).unwrap();
        // debugfs fills the descriptor to the tail: 12 + 16 + 16 + 61 × 16 = 1020, one tag
        // more than the kernel's rule (which always keeps room for a UUID) would put there.
        let first = parse_descriptor(&log[1], &jsb).unwrap();
        assert_eq!((first.len(), descriptor_capacity(&jsb, 1024)), (62, 61));
        // ... and without LAST_TAG: the tail alone ends the list.
        assert_eq!(first[61].flags, JBD2_FLAG_SAME_UUID);
        let second = parse_descriptor(&log[64], &jsb).unwrap();
        assert_eq!(second.len(), 38);
        let all: Vec<u64> = first.iter().chain(&second).map(|t| t.blocknr).collect();
        assert_eq!(all, (400..500).collect::<Vec<u64>>());
        assert!(second.iter().enumerate().all(|(i, t)| tag_csum_verify(
            &jsb,
            t,
            Tid(1),
            &log[65 + i]
        )));
        assert_eq!(commit_block_csum_verify(&jsb, &log[103]), Ok(()));
    }
}
