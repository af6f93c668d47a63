//! `journal_superblock_t` (include/linux/jbd2.h): the first 1024 bytes of journal block 0,
//! big-endian. It fixes the log geometry (`s_blocksize`, `s_first`, `s_maxlen`), where recovery
//! starts (`s_start`, 0 = the log is empty; `s_sequence` = the first expected transaction id),
//! the feature set, and with csum v2/v3 its own checksum and the UUID that seeds every journal
//! checksum.
//!
//! A v1 superblock (`JBD2_SUPERBLOCK_V1`) has no feature fields: as in the kernel
//! (`jbd2_format_support_feature()`), every feature test answers false for it.

use super::{
    JournalHeader, JBD2_CRC32C_CHKSUM, JBD2_DEFAULT_FAST_COMMIT_BLOCKS,
    JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V2,
    JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_KNOWN_INCOMPAT_FEATURES,
    JBD2_KNOWN_ROCOMPAT_FEATURES, JBD2_MAGIC_NUMBER, JBD2_MIN_JOURNAL_BLOCKS, JBD2_SUPERBLOCK_V1,
    JBD2_SUPERBLOCK_V2,
};
use crate::bytes::{read_u32be, write_u32be};
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::units::Tid;

/// `sizeof(journal_superblock_t)`.
pub const JBD2_SUPERBLOCK_SIZE: usize = 1024;
/// Offset of `s_checksum`.
const S_CHECKSUM: usize = 0xFC;

/// `journal_superblock_t`, every field kept so that [`JournalSuperblock::to_bytes`] gives back
/// the bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSuperblock {
    /// 0x0 `s_header`: magic, `JBD2_SUPERBLOCK_V1`/`V2`, sequence (unused).
    pub s_header: JournalHeader,
    /// 0xC `s_blocksize`: journal block size (must equal the filesystem's).
    pub s_blocksize: u32,
    /// 0x10 `s_maxlen`: journal length in blocks.
    pub s_maxlen: u32,
    /// 0x14 `s_first`: first log block (1 for an internal journal).
    pub s_first: u32,
    /// 0x18 `s_sequence`: first transaction id expected in the log.
    pub s_sequence: Tid,
    /// 0x1C `s_start`: log block of that transaction; 0 = the log is empty (clean).
    pub s_start: u32,
    /// 0x20 `s_errno`: error recorded by `jbd2_journal_abort()` (a negative errno).
    pub s_errno: i32,
    /// 0x24 `s_feature_compat`.
    pub s_feature_compat: u32,
    /// 0x28 `s_feature_incompat`.
    pub s_feature_incompat: u32,
    /// 0x2C `s_feature_ro_compat`.
    pub s_feature_ro_compat: u32,
    /// 0x30 `s_uuid`: seeds every journal checksum (a copy of the fs UUID for an internal one).
    pub s_uuid: [u8; 16],
    /// 0x40 `s_nr_users`: filesystems sharing the journal (1).
    pub s_nr_users: u32,
    /// 0x44 `s_dynsuper`.
    pub s_dynsuper: u32,
    /// 0x48 `s_max_transaction`.
    pub s_max_transaction: u32,
    /// 0x4C `s_max_trans_data`.
    pub s_max_trans_data: u32,
    /// 0x50 `s_checksum_type`: [`JBD2_CRC32C_CHKSUM`] with csum v2/v3.
    pub s_checksum_type: u8,
    /// 0x51 `s_padding2[3]`.
    pub s_padding2: [u8; 3],
    /// 0x54 `s_num_fc_blks`: fast-commit blocks (0 = the default 256).
    pub s_num_fc_blks: u32,
    /// 0x58 `s_head`: log head after a clean unmount (newer kernels).
    pub s_head: u32,
    /// 0x5C `s_padding[40]`, raw.
    pub s_padding: [u8; 160],
    /// 0xFC `s_checksum`: csum v2/v3 checksum of the superblock.
    pub s_checksum: u32,
    /// 0x100 `s_users[16 * 48]`, raw.
    pub s_users: [u8; 768],
}

fn bad(what: &'static str) -> Error {
    Error::Corrupt(CorruptKind::JournalSuperblock(what))
}

impl JournalSuperblock {
    /// Model of `ext2fs_create_journal_superblock()` (e2fsprogs lib/ext2fs/mkjournal.c) for an
    /// internal journal of `maxlen` blocks: v2, `s_first` 1, `s_sequence` 1, `s_start` 0,
    /// `s_nr_users` 1 with `s_users` zeroed, `s_uuid` = the filesystem UUID. mke2fs 1.47 sets no
    /// feature; `csum_v3` adds `CSUM_V3` with checksum type crc32c (as the kernel does at mount
    /// of a metadata_csum filesystem), `is_64bit` adds `64BIT`.
    ///
    /// # Panics
    /// If `maxlen` is below [`JBD2_MIN_JOURNAL_BLOCKS`] (mke2fs refuses with
    /// `EXT2_ET_JOURNAL_TOO_SMALL`) or `block_size` is not a power of two in 1024..=65536.
    pub fn new(
        block_size: u32,
        maxlen: u32,
        uuid: [u8; 16],
        csum_v3: bool,
        is_64bit: bool,
    ) -> JournalSuperblock {
        assert!(
            maxlen >= JBD2_MIN_JOURNAL_BLOCKS,
            "journal of {maxlen} blocks is too small"
        );
        assert!(
            valid_block_size(block_size),
            "bad journal block size {block_size}"
        );
        let mut incompat = 0;
        if csum_v3 {
            incompat |= JBD2_FEATURE_INCOMPAT_CSUM_V3;
        }
        if is_64bit {
            incompat |= JBD2_FEATURE_INCOMPAT_64BIT;
        }
        JournalSuperblock {
            s_header: JournalHeader::new(JBD2_SUPERBLOCK_V2, Tid(0)),
            s_blocksize: block_size,
            s_maxlen: maxlen,
            s_first: 1,
            s_sequence: Tid(1),
            s_start: 0,
            s_errno: 0,
            s_feature_compat: 0,
            s_feature_incompat: incompat,
            s_feature_ro_compat: 0,
            s_uuid: uuid,
            s_nr_users: 1,
            s_dynsuper: 0,
            s_max_transaction: 0,
            s_max_trans_data: 0,
            s_checksum_type: if csum_v3 { JBD2_CRC32C_CHKSUM } else { 0 },
            s_padding2: [0; 3],
            s_num_fc_blks: 0,
            s_head: 0,
            s_padding: [0; 160],
            s_checksum: 0,
            s_users: [0; 768],
        }
    }

    /// Model of the checks of `journal_check_superblock()` / `journal_load_superblock()`
    /// (fs/jbd2/journal.c) and `e2fsck_journal_load()`: parse the first 1024 bytes of `buf`.
    ///
    /// * `Truncated` if `buf` is shorter than 1024 bytes;
    /// * `JournalSuperblock(..)`: bad magic, a block type other than v1/v2, `s_blocksize` not a
    ///   power of two in 1024..=65536, `s_first` 0 or past `s_maxlen`, (v2) `s_maxlen` below
    ///   1024 + the fast-commit area, csum v2 and v3 both set, v1 and v2/v3 both set, a checksum
    ///   type other than crc32c with v2/v3, and `s_start` outside `[s_first, log end)` (the
    ///   kernel only fails later, reading the log; we reject it up front);
    /// * `Unsupported` for unknown incompat or ro_compat features (v2 only);
    /// * `JournalSuperblockChecksum` when the v2/v3 checksum does not match.
    ///
    /// Comparing `s_blocksize` with the filesystem and `s_maxlen` with the journal inode's size
    /// is [`JournalSuperblock::check_geometry`]'s job.
    pub fn parse(buf: &[u8]) -> Result<JournalSuperblock> {
        if buf.len() < JBD2_SUPERBLOCK_SIZE {
            return Err(Error::Corrupt(CorruptKind::Truncated {
                what: "journal superblock",
            }));
        }
        let jsb = JournalSuperblock::read(&buf[..JBD2_SUPERBLOCK_SIZE]);
        jsb.check_format()?;
        jsb.check_features()?;
        jsb.check_checksum()?;
        // Past the journal: e2fsck says "JBD2: corrupted journal superblock". A start below
        // `s_first` is read from where it points, by e2fsck and the kernel alike.
        if jsb.s_start != 0 && jsb.s_start >= jsb.log_last() {
            return Err(bad("s_start outside the log"));
        }
        Ok(jsb)
    }

    /// Every field, unchecked.
    fn read(b: &[u8]) -> JournalSuperblock {
        let bytes = |off: usize, len: usize| &b[off..off + len];
        // OK to unwrap (header, arrays): b holds 1024 bytes and each slice has the array's length.
        JournalSuperblock {
            s_header: JournalHeader::parse(b).unwrap(),
            s_blocksize: read_u32be(b, 0xC),
            s_maxlen: read_u32be(b, 0x10),
            s_first: read_u32be(b, 0x14),
            s_sequence: Tid(read_u32be(b, 0x18)),
            s_start: read_u32be(b, 0x1C),
            s_errno: read_u32be(b, 0x20) as i32, // reinterpretation intended: a negative errno
            s_feature_compat: read_u32be(b, 0x24),
            s_feature_incompat: read_u32be(b, 0x28),
            s_feature_ro_compat: read_u32be(b, 0x2C),
            s_uuid: bytes(0x30, 16).try_into().unwrap(),
            s_nr_users: read_u32be(b, 0x40),
            s_dynsuper: read_u32be(b, 0x44),
            s_max_transaction: read_u32be(b, 0x48),
            s_max_trans_data: read_u32be(b, 0x4C),
            s_checksum_type: b[0x50],
            s_padding2: bytes(0x51, 3).try_into().unwrap(),
            s_num_fc_blks: read_u32be(b, 0x54),
            s_head: read_u32be(b, 0x58),
            s_padding: bytes(0x5C, 160).try_into().unwrap(),
            s_checksum: read_u32be(b, S_CHECKSUM),
            s_users: bytes(0x100, 768).try_into().unwrap(),
        }
    }

    /// Magic, version, block size and log bounds.
    fn check_format(&self) -> Result<()> {
        if self.s_header.h_magic != JBD2_MAGIC_NUMBER {
            return Err(bad("bad magic"));
        }
        let version = self.s_header.h_blocktype;
        if version != JBD2_SUPERBLOCK_V1 && version != JBD2_SUPERBLOCK_V2 {
            return Err(bad("unrecognised superblock format"));
        }
        if !valid_block_size(self.s_blocksize) {
            return Err(bad("bad s_blocksize"));
        }
        if self.s_first == 0 || self.s_first >= self.s_maxlen {
            return Err(bad("invalid s_first"));
        }
        Ok(())
    }

    /// The feature checks, which apply to v2 superblocks only.
    fn check_features(&self) -> Result<()> {
        if !self.is_v2() {
            return Ok(());
        }
        let unknown_incompat = self.s_feature_incompat & !JBD2_KNOWN_INCOMPAT_FEATURES;
        let unknown_ro = self.s_feature_ro_compat & !JBD2_KNOWN_ROCOMPAT_FEATURES;
        if unknown_incompat != 0 || unknown_ro != 0 {
            return Err(Error::Unsupported(format!(
                "journal features incompat {unknown_incompat:#x} ro_compat {unknown_ro:#x}"
            )));
        }
        let fc = if self.has_incompat(JBD2_FEATURE_INCOMPAT_FAST_COMMIT) {
            self.num_fc_blocks()
        } else {
            0
        };
        if self.s_maxlen < JBD2_MIN_JOURNAL_BLOCKS || self.s_maxlen - JBD2_MIN_JOURNAL_BLOCKS < fc {
            return Err(bad("journal too short"));
        }
        let v2 = self.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V2);
        let v3 = self.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V3);
        if v2 && v3 {
            return Err(bad("checksum v2 and v3 both set"));
        }
        if (v2 || v3) && self.has_compat(JBD2_FEATURE_COMPAT_CHECKSUM) {
            return Err(bad("checksum v1 and v2/v3 both set"));
        }
        Ok(())
    }

    fn check_checksum(&self) -> Result<()> {
        if !self.csum_v2or3() {
            return Ok(());
        }
        if self.s_checksum_type != JBD2_CRC32C_CHKSUM {
            return Err(bad("unknown checksum type"));
        }
        if self.s_checksum != self.superblock_csum() {
            return Err(Error::Corrupt(CorruptKind::JournalSuperblockChecksum));
        }
        Ok(())
    }

    /// The e2fsck / `ext4_load_journal` checks against the filesystem: `s_blocksize` equals the
    /// filesystem block size, and `s_maxlen` fits in the journal inode (`journal_blocks`).
    pub fn check_geometry(&self, fs_block_size: u32, journal_blocks: u64) -> Result<()> {
        if self.s_blocksize != fs_block_size {
            return Err(bad("s_blocksize differs from the filesystem's"));
        }
        if u64::from(self.s_maxlen) > journal_blocks {
            return Err(bad("journal file too short"));
        }
        Ok(())
    }

    /// The 1024 on-disk bytes; with csum v2/v3 `s_checksum` is recomputed (as
    /// `jbd2_write_superblock()` does), otherwise the stored value is written.
    pub fn to_bytes(&self) -> [u8; JBD2_SUPERBLOCK_SIZE] {
        let mut b = self.raw_bytes();
        if self.csum_v2or3() {
            let csum = crc_of(&b);
            write_u32be(&mut b, S_CHECKSUM, csum);
        }
        b
    }

    /// The fields as they are, `s_checksum` included.
    fn raw_bytes(&self) -> [u8; JBD2_SUPERBLOCK_SIZE] {
        let mut b = [0u8; JBD2_SUPERBLOCK_SIZE];
        self.s_header.write(&mut b);
        let words = [
            (0xC, self.s_blocksize),
            (0x10, self.s_maxlen),
            (0x14, self.s_first),
            (0x18, self.s_sequence.0),
            (0x1C, self.s_start),
            (0x20, self.s_errno as u32), // reinterpretation intended
            (0x24, self.s_feature_compat),
            (0x28, self.s_feature_incompat),
            (0x2C, self.s_feature_ro_compat),
            (0x40, self.s_nr_users),
            (0x44, self.s_dynsuper),
            (0x48, self.s_max_transaction),
            (0x4C, self.s_max_trans_data),
            (0x54, self.s_num_fc_blks),
            (0x58, self.s_head),
            (S_CHECKSUM, self.s_checksum),
        ];
        for (off, v) in words {
            write_u32be(&mut b, off, v);
        }
        b[0x30..0x40].copy_from_slice(&self.s_uuid);
        b[0x50] = self.s_checksum_type;
        b[0x51..0x54].copy_from_slice(&self.s_padding2);
        b[0x5C..S_CHECKSUM].copy_from_slice(&self.s_padding);
        b[0x100..].copy_from_slice(&self.s_users);
        b
    }

    /// Model of `jbd2_superblock_csum()`: raw CRC-32C from `!0` over the 1024 bytes with
    /// `s_checksum` zeroed.
    pub fn superblock_csum(&self) -> u32 {
        crc_of(&self.raw_bytes())
    }

    /// Whether this is a v2 superblock (`jbd2_format_support_feature()`).
    pub fn is_v2(&self) -> bool {
        self.s_header.h_blocktype == JBD2_SUPERBLOCK_V2
    }

    /// `jbd2_has_feature_*()` for a compat bit (false on a v1 superblock).
    pub fn has_compat(&self, mask: u32) -> bool {
        self.is_v2() && self.s_feature_compat & mask != 0
    }

    /// `jbd2_has_feature_*()` for an incompat bit (false on a v1 superblock).
    pub fn has_incompat(&self, mask: u32) -> bool {
        self.is_v2() && self.s_feature_incompat & mask != 0
    }

    /// `jbd2_has_feature_*()` for a ro_compat bit (false on a v1 superblock).
    pub fn has_ro_compat(&self, mask: u32) -> bool {
        self.is_v2() && self.s_feature_ro_compat & mask != 0
    }

    /// Model of `jbd2_journal_has_csum_v2or3()`.
    pub fn csum_v2or3(&self) -> bool {
        self.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)
    }

    /// Whether the journal uses v1 checksums (`JBD2_FEATURE_COMPAT_CHECKSUM`), which this
    /// crate parses but does not compute.
    pub fn csum_v1(&self) -> bool {
        self.has_compat(JBD2_FEATURE_COMPAT_CHECKSUM)
    }

    /// Whether block numbers are 64-bit (`JBD2_FEATURE_INCOMPAT_64BIT`).
    pub fn is_64bit(&self) -> bool {
        self.has_incompat(JBD2_FEATURE_INCOMPAT_64BIT)
    }

    /// `j_csum_seed`: raw CRC-32C from `!0` over `s_uuid`.
    pub fn csum_seed(&self) -> u32 {
        crc32c_raw(!0, &self.s_uuid)
    }

    /// Model of `journal_tag_bytes()` (fs/jbd2/journal.c): 16 with csum v3 (`journal_block_tag3_t`);
    /// otherwise 12 (`journal_block_tag_t`), + 2 with csum v2, − 4 without 64BIT.
    pub fn tag_bytes(&self) -> usize {
        if self.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V3) {
            return 16;
        }
        let mut size = 12;
        if self.has_incompat(JBD2_FEATURE_INCOMPAT_CSUM_V2) {
            size += 2;
        }
        if self.is_64bit() {
            size
        } else {
            size - 4
        }
    }

    /// Model of `jbd2_journal_get_num_fc_blks()`: the fast-commit area's size.
    pub fn num_fc_blocks(&self) -> u32 {
        match self.s_num_fc_blks {
            0 => JBD2_DEFAULT_FAST_COMMIT_BLOCKS,
            n => n,
        }
    }

    /// `j_last`: one past the last log block (the fast-commit area, if any, follows it).
    pub fn log_last(&self) -> u32 {
        if self.has_incompat(JBD2_FEATURE_INCOMPAT_FAST_COMMIT) {
            self.s_maxlen.saturating_sub(self.num_fc_blocks())
        } else {
            self.s_maxlen
        }
    }
}

fn valid_block_size(bs: u32) -> bool {
    bs.is_power_of_two() && (1024..=65536).contains(&bs)
}

/// Raw CRC-32C from `!0` of a superblock image, its `s_checksum` counted as zero.
fn crc_of(b: &[u8; JBD2_SUPERBLOCK_SIZE]) -> u32 {
    let head = crc32c_raw(!0, &b[..S_CHECKSUM]);
    let zeroed = crc32c_raw(head, &[0; 4]);
    crc32c_raw(zeroed, &b[S_CHECKSUM + 4..])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{jsb_with, XorShift};
    use super::super::{JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_FEATURE_INCOMPAT_REVOKE};
    use super::*;

    const UUID: [u8; 16] = [
        0x76, 0x49, 0x35, 0xCE, 0xDA, 0x88, 0x48, 0xF3, 0xA2, 0, 0xA5, 0x6A, 0xE7, 0x67, 0x7B, 0xEA,
    ];

    #[test]
    fn new_matches_mke2fs_layout() {
        // The non-zero bytes of a fresh `mke2fs -t ext4 -b 1024` journal superblock.
        let b = JournalSuperblock::new(1024, 1024, UUID, false, false).to_bytes();
        let head = [
            0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4, 0, // magic, v2, seq, bs
            0, 0, 4, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, // maxlen, first, sequence, start
        ];
        assert_eq!(b[..32], head);
        assert_eq!(b[0x30..0x40], UUID);
        assert_eq!(b[0x40..0x44], [0, 0, 0, 1]);
        let nonzero = b
            .iter()
            .enumerate()
            .filter(|&(i, &x)| x != 0 && !(0x30..0x40).contains(&i));
        assert_eq!(
            nonzero.count(),
            4 + 1 + 1 + 1 + 1 + 1 + 1,
            "nothing else is set"
        );
        let jsb = JournalSuperblock::parse(&b).unwrap();
        assert_eq!(
            (jsb.csum_v2or3(), jsb.tag_bytes(), jsb.s_sequence),
            (false, 8, Tid(1))
        );
    }

    #[test]
    fn csum_v3_superblock_round_trips() {
        let jsb = JournalSuperblock::new(4096, 32768, UUID, true, true);
        let b = jsb.to_bytes();
        assert_eq!((b[0x2B], b[0x50]), (0x12, 4), "CSUM_V3 | 64BIT, crc32c");
        let csum = read_u32be(&b, 0xFC);
        let mut zeroed = b;
        zeroed[0xFC..0x100].fill(0);
        assert_eq!(csum, crc32c_raw(!0, &zeroed));
        let back = JournalSuperblock::parse(&b).unwrap();
        assert_eq!(
            back,
            JournalSuperblock {
                s_checksum: csum,
                ..jsb
            }
        );
        assert_eq!(back.to_bytes(), b);
        assert_eq!(
            (back.tag_bytes(), back.csum_seed()),
            (16, crc32c_raw(!0, &UUID))
        );
        assert_eq!(back.check_geometry(4096, 32768), Ok(()));
        let short = Err(Error::Corrupt(CorruptKind::JournalSuperblock(
            "journal file too short",
        )));
        assert_eq!(back.check_geometry(4096, 32767), short);
    }

    fn parse_with(edit: impl Fn(&mut JournalSuperblock)) -> Result<JournalSuperblock> {
        let mut jsb = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024);
        edit(&mut jsb);
        JournalSuperblock::parse(&jsb.to_bytes())
    }

    #[test]
    fn corruptions_have_precise_kinds() {
        let bad = |w| Err(Error::Corrupt(CorruptKind::JournalSuperblock(w)));
        assert!(parse_with(|_| {}).is_ok());
        assert_eq!(parse_with(|j| j.s_header.h_magic ^= 1), bad("bad magic"));
        assert_eq!(
            parse_with(|j| j.s_header.h_blocktype = 1),
            bad("unrecognised superblock format")
        );
        assert_eq!(parse_with(|j| j.s_blocksize = 1000), bad("bad s_blocksize"));
        assert_eq!(parse_with(|j| j.s_first = 0), bad("invalid s_first"));
        assert_eq!(parse_with(|j| j.s_first = 1024), bad("invalid s_first"));
        assert_eq!(parse_with(|j| j.s_maxlen = 1000), bad("journal too short"));
        let fc = |j: &mut JournalSuperblock| {
            j.s_feature_incompat |= JBD2_FEATURE_INCOMPAT_FAST_COMMIT;
            j.s_maxlen = 1024 + 255;
        };
        assert_eq!(parse_with(fc), bad("journal too short"));
        assert_eq!(
            parse_with(|j| j.s_feature_incompat |= 0x8),
            bad("checksum v2 and v3 both set")
        );
        assert_eq!(
            parse_with(|j| j.s_feature_compat = 1),
            bad("checksum v1 and v2/v3 both set")
        );
        assert_eq!(
            parse_with(|j| j.s_checksum_type = 1),
            bad("unknown checksum type")
        );
        assert_eq!(
            parse_with(|j| j.s_start = 1024),
            bad("s_start outside the log")
        );
        assert!(parse_with(|j| j.s_start = 1023).is_ok());
        let unsupported = parse_with(|j| j.s_feature_incompat |= 0x40);
        assert!(
            matches!(unsupported, Err(Error::Unsupported(_))),
            "{unsupported:?}"
        );
        assert!(matches!(
            parse_with(|j| j.s_feature_ro_compat = 1),
            Err(Error::Unsupported(_))
        ));
        let mut b = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024).to_bytes();
        b[0x200] ^= 1; // inside s_users
        let csum = Err(Error::Corrupt(CorruptKind::JournalSuperblockChecksum));
        assert_eq!(JournalSuperblock::parse(&b), csum);
        let truncated = Err(Error::Corrupt(CorruptKind::Truncated {
            what: "journal superblock",
        }));
        assert_eq!(JournalSuperblock::parse(&b[..1023]), truncated);
    }

    #[test]
    fn v1_superblock_ignores_features() {
        let mut jsb = jsb_with(
            JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_REVOKE,
            1024,
        );
        jsb.s_header.h_blocktype = JBD2_SUPERBLOCK_V1;
        jsb.s_feature_incompat |= 0x8000_0000; // unknown, but v1 has no feature fields
        jsb.s_maxlen = 100;
        let back = JournalSuperblock::parse(&jsb.to_bytes()).unwrap();
        assert!(!back.csum_v2or3() && !back.has_incompat(JBD2_FEATURE_INCOMPAT_REVOKE));
        assert_eq!(back.tag_bytes(), 8);
    }

    #[test]
    fn fast_commit_area() {
        let mut jsb = jsb_with(JBD2_FEATURE_INCOMPAT_FAST_COMMIT, 1024);
        jsb.s_maxlen = 2048;
        assert_eq!((jsb.num_fc_blocks(), jsb.log_last()), (256, 1792));
        jsb.s_num_fc_blks = 100;
        assert_eq!(jsb.log_last(), 1948);
    }

    #[test]
    fn random_superblocks_never_panic() {
        let mut rng = XorShift(0xA076_1D64_78BD_642F);
        let good = jsb_with(JBD2_FEATURE_INCOMPAT_CSUM_V3, 1024).to_bytes();
        for round in 0..3000 {
            let mut b = if round % 2 == 0 {
                good.to_vec()
            } else {
                rng.bytes(1024)
            };
            for _ in 0..rng.below(4) {
                let i = rng.below(0x60);
                b[i] = rng.bytes(1)[0];
            }
            if let Ok(jsb) = JournalSuperblock::parse(&b) {
                assert_eq!(jsb.to_bytes()[..], b[..], "accepted superblocks round-trip");
            }
        }
    }
}
