//! The feature words of the superblock: one `pub const` per bit ext4.h names, with the name
//! e2fsprogs prints for it ([`FEATURES`]), and the policy question "does the engine model every
//! incompat feature of this image?" ([`Superblock::check_supported`]). Re-exported by
//! `format::superblock`.

use super::{Superblock, EXT4_CRC32C_CHKSUM, EXT4_DYNAMIC_REV};
use crate::error::{Error, Result};

/// Which of the three feature words a bit belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureSet {
    /// `s_feature_compat`.
    Compat,
    /// `s_feature_incompat`.
    Incompat,
    /// `s_feature_ro_compat`.
    RoCompat,
}

/// Defines one `pub const` per feature bit and the [`FEATURES`] table from one list.
macro_rules! features {
    ($($set:ident $name:ident = $bit:literal, $e2p:literal, $doc:literal;)*) => {
        $(#[doc = concat!($doc, " (`", $e2p, "`).")] pub const $name: u32 = $bit;)*
        /// Every feature bit ext4.h names, with the name e2fsprogs prints (`dumpe2fs`,
        /// `mke2fs -O`), in the order `dumpe2fs` lists them: compat, incompat, ro_compat, by bit.
        pub const FEATURES: &[(FeatureSet, u32, &str)] = &[$((FeatureSet::$set, $bit, $e2p)),*];
    };
}

features! {
    Compat EXT4_FEATURE_COMPAT_DIR_PREALLOC = 0x0001, "dir_prealloc", "Directory preallocation";
    Compat EXT4_FEATURE_COMPAT_IMAGIC_INODES = 0x0002, "imagic_inodes", "AFS magic inodes";
    Compat EXT4_FEATURE_COMPAT_HAS_JOURNAL = 0x0004, "has_journal", "Has a journal";
    Compat EXT4_FEATURE_COMPAT_EXT_ATTR = 0x0008, "ext_attr", "Extended attributes";
    Compat EXT4_FEATURE_COMPAT_RESIZE_INODE = 0x0010, "resize_inode", "Reserved GDT, inode 7";
    Compat EXT4_FEATURE_COMPAT_DIR_INDEX = 0x0020, "dir_index", "Hashed (htree) directories";
    Compat EXT4_FEATURE_COMPAT_SPARSE_SUPER2 = 0x0200, "sparse_super2", "Backups: s_backup_bgs";
    Compat EXT4_FEATURE_COMPAT_FAST_COMMIT = 0x0400, "fast_commit", "Journal fast commits";
    Compat EXT4_FEATURE_COMPAT_STABLE_INODES = 0x0800, "stable_inodes", "Inode numbers fixed";
    Compat EXT4_FEATURE_COMPAT_ORPHAN_FILE = 0x1000, "orphan_file", "Orphan file";
    Incompat EXT4_FEATURE_INCOMPAT_COMPRESSION = 0x0001, "compression", "Compression";
    Incompat EXT4_FEATURE_INCOMPAT_FILETYPE = 0x0002, "filetype", "Dirents carry a file type";
    Incompat EXT4_FEATURE_INCOMPAT_RECOVER = 0x0004, "needs_recovery", "Journal needs replay";
    Incompat EXT4_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008, "journal_dev", "External journal";
    Incompat EXT4_FEATURE_INCOMPAT_META_BG = 0x0010, "meta_bg", "Meta block groups";
    Incompat EXT4_FEATURE_INCOMPAT_EXTENTS = 0x0040, "extent", "Extent trees";
    Incompat EXT4_FEATURE_INCOMPAT_64BIT = 0x0080, "64bit", "64-bit blocks, wide descriptors";
    Incompat EXT4_FEATURE_INCOMPAT_MMP = 0x0100, "mmp", "Multiple-mount protection";
    Incompat EXT4_FEATURE_INCOMPAT_FLEX_BG = 0x0200, "flex_bg", "Flexible block groups";
    Incompat EXT4_FEATURE_INCOMPAT_EA_INODE = 0x0400, "ea_inode", "Large xattrs in inodes";
    Incompat EXT4_FEATURE_INCOMPAT_DIRDATA = 0x1000, "dirdata", "Data in dirents";
    Incompat EXT4_FEATURE_INCOMPAT_CSUM_SEED = 0x2000, "metadata_csum_seed", "s_checksum_seed";
    Incompat EXT4_FEATURE_INCOMPAT_LARGEDIR = 0x4000, "large_dir", "Large directories";
    Incompat EXT4_FEATURE_INCOMPAT_INLINE_DATA = 0x8000, "inline_data", "Data in inodes";
    Incompat EXT4_FEATURE_INCOMPAT_ENCRYPT = 0x10000, "encrypt", "Encrypted inodes";
    Incompat EXT4_FEATURE_INCOMPAT_CASEFOLD = 0x20000, "casefold", "Case-insensitive dirs";
    RoCompat EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER = 0x0001, "sparse_super", "Sparse backups";
    RoCompat EXT4_FEATURE_RO_COMPAT_LARGE_FILE = 0x0002, "large_file", "Files over 2 GiB";
    RoCompat EXT4_FEATURE_RO_COMPAT_BTREE_DIR = 0x0004, "btree_dir", "B-tree dirs (unused)";
    RoCompat EXT4_FEATURE_RO_COMPAT_HUGE_FILE = 0x0008, "huge_file", "48-bit i_blocks";
    RoCompat EXT4_FEATURE_RO_COMPAT_GDT_CSUM = 0x0010, "uninit_bg", "crc16 descriptor csums";
    RoCompat EXT4_FEATURE_RO_COMPAT_DIR_NLINK = 0x0020, "dir_nlink", "Over 65000 subdirs";
    RoCompat EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE = 0x0040, "extra_isize", "i_extra_isize";
    RoCompat EXT4_FEATURE_RO_COMPAT_QUOTA = 0x0100, "quota", "Quota inodes";
    RoCompat EXT4_FEATURE_RO_COMPAT_BIGALLOC = 0x0200, "bigalloc", "Clusters of blocks";
    RoCompat EXT4_FEATURE_RO_COMPAT_METADATA_CSUM = 0x0400, "metadata_csum", "crc32c metadata";
    RoCompat EXT4_FEATURE_RO_COMPAT_READONLY = 0x1000, "read-only", "Read-only filesystem";
    RoCompat EXT4_FEATURE_RO_COMPAT_PROJECT = 0x2000, "project", "Project quotas";
    RoCompat EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS = 0x4000, "shared_blocks", "Shared blocks";
    RoCompat EXT4_FEATURE_RO_COMPAT_VERITY = 0x8000, "verity", "fs-verity files";
    RoCompat EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT = 0x10000, "orphan_present", "Orphans";
}

/// Incompat features the engine models; any other incompat bit is `Unsupported`.
pub const INCOMPAT_SUPPORTED: u32 = EXT4_FEATURE_INCOMPAT_FILETYPE
    | EXT4_FEATURE_INCOMPAT_RECOVER
    | EXT4_FEATURE_INCOMPAT_EXTENTS
    | EXT4_FEATURE_INCOMPAT_64BIT
    | EXT4_FEATURE_INCOMPAT_FLEX_BG
    | EXT4_FEATURE_INCOMPAT_CSUM_SEED;

impl Superblock {
    /// Names of the features set, as `dumpe2fs` prints them (bits ext4.h does not name are
    /// left out).
    pub fn feature_names(&self) -> Vec<&'static str> {
        FEATURES
            .iter()
            .filter(|(set, bit, _)| self.feature_word(*set) & bit != 0)
            .map(|(_, _, name)| *name)
            .collect()
    }

    /// The feature word `set`.
    fn feature_word(&self, set: FeatureSet) -> u32 {
        match set {
            FeatureSet::Compat => self.s_feature_compat,
            FeatureSet::Incompat => self.s_feature_incompat,
            FeatureSet::RoCompat => self.s_feature_ro_compat,
        }
    }

    /// Can the engine work on this filesystem? `Error::Unsupported(name)` for a revision above
    /// 1, for any incompat feature outside [`INCOMPAT_SUPPORTED`] (the lowest such bit is
    /// named, as e2fsprogs names it), for bigalloc, for unknown ro_compat bits, and for a
    /// metadata_csum checksum type other than crc32c. Compat features never matter.
    pub fn check_supported(&self) -> Result<()> {
        if self.s_rev_level > EXT4_DYNAMIC_REV {
            return Err(Error::Unsupported(format!(
                "revision level {}",
                self.s_rev_level
            )));
        }
        let bad_incompat = self.s_feature_incompat & !INCOMPAT_SUPPORTED;
        if bad_incompat != 0 {
            return Err(unsupported(FeatureSet::Incompat, bad_incompat));
        }
        let known_ro = FEATURES
            .iter()
            .filter(|(set, ..)| *set == FeatureSet::RoCompat)
            .fold(0, |m, (_, bit, _)| m | bit);
        let bad_ro = self.s_feature_ro_compat & (!known_ro | EXT4_FEATURE_RO_COMPAT_BIGALLOC);
        if bad_ro != 0 {
            return Err(unsupported(FeatureSet::RoCompat, bad_ro));
        }
        if self.metadata_csum() && self.s_checksum_type != EXT4_CRC32C_CHKSUM {
            return Err(Error::Unsupported(format!(
                "checksum type {}",
                self.s_checksum_type
            )));
        }
        Ok(())
    }
}

/// `Error::Unsupported` naming the lowest bit of `bits` in feature word `set`.
fn unsupported(set: FeatureSet, bits: u32) -> Error {
    let bit = 1u32 << bits.trailing_zeros();
    let name = FEATURES
        .iter()
        .find(|(s, b, _)| *s == set && *b == bit)
        .map(|(_, _, n)| (*n).to_string());
    Error::Unsupported(name.unwrap_or_else(|| format!("unknown {set:?} feature {bit:#x}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CorruptKind;
    use crate::format::group_desc::testutil::mkfs;
    use crate::format::superblock::EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;

    /// A superblock with a few supported features (check_supported needs no geometry).
    fn good_sb() -> Superblock {
        let mut sb = Superblock::new();
        sb.s_rev_level = EXT4_DYNAMIC_REV;
        sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_EXTENTS;
        sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
        sb.s_checksum_type = EXT4_CRC32C_CHKSUM;
        sb
    }

    #[test]
    fn check_supported_names_the_feature() {
        let unsupported = |s: &str| Err(Error::Unsupported(s.to_string()));
        type Mutation = fn(&mut Superblock);
        let cases: &[(Mutation, &str)] = &[
            (
                |s| s.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_INLINE_DATA,
                "inline_data",
            ),
            (|s| s.s_feature_incompat |= 0x20010, "meta_bg"),
            (
                |s| s.s_feature_incompat |= 0x80_0000,
                "unknown Incompat feature 0x800000",
            ),
            (
                |s| s.s_feature_ro_compat |= 1 << 31,
                "unknown RoCompat feature 0x80000000",
            ),
            (|s| s.s_rev_level = 2, "revision level 2"),
            (|s| s.s_checksum_type = 0, "checksum type 0"),
        ];
        for &(mutate, name) in cases {
            let mut sb = good_sb();
            mutate(&mut sb);
            assert_eq!(sb.check_supported(), unsupported(name));
        }
        let mut sb = good_sb();
        sb.s_feature_compat = !0;
        sb.s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_VERITY | EXT4_FEATURE_RO_COMPAT_QUOTA;
        sb.s_feature_incompat |= INCOMPAT_SUPPORTED;
        sb.check_supported().unwrap();
        let opts = "-t ext4 -O inline_data,metadata_csum_seed,large_dir,encrypt,casefold,project,\
                    quota,verity,stable_inodes,orphan_file,fast_commit";
        let Some(img) = mkfs(opts, 32 << 20) else {
            return;
        };
        let sb = img.sb();
        let features: Vec<String> = img.dumpe2fs_h()["Filesystem features"]
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(sb.feature_names(), features);
        assert_eq!(sb.check_supported(), unsupported("large_dir"));
        let Some(img) = mkfs("-t ext4 -O bigalloc -C 16384", 64 << 20) else {
            return;
        };
        let mut sb = img.sb();
        assert_eq!((sb.cluster_size(), sb.s_first_data_block), (16384, 0));
        assert_eq!(sb.check_supported(), unsupported("bigalloc"));
        sb.s_clusters_per_group += 8;
        let err = CorruptKind::SuperblockGeometry("s_clusters_per_group");
        assert_eq!(Superblock::parse(&sb.to_bytes()), Err(Error::Corrupt(err)));
    }
}
