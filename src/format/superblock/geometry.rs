//! Geometry validation of a superblock (model of the checks of `ext4_fill_super()`,
//! `ext4_handle_clustersize()` and `ext4_check_geometry()` in fs/ext4/super.c, plus e2fsck's
//! `s_first_data_block` rule): after [`Superblock::parse`] accepted a superblock, every
//! geometry helper is total (no division by zero, no overflow, counts that fit their types).

use super::{
    Superblock, EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_META_BG,
    EXT4_FEATURE_RO_COMPAT_BIGALLOC, EXT4_GOOD_OLD_FIRST_INO, EXT4_GOOD_OLD_REV,
    EXT4_MAX_DESC_SIZE, EXT4_MIN_DESC_SIZE_64BIT, GOOD_OLD_INODE_SIZE,
};
use crate::error::{CorruptKind, Error, Result};

/// `EXT4_MAX_CLUSTER_LOG_SIZE`: the largest cluster is 2^30 bytes.
const EXT4_MAX_CLUSTER_LOG_SIZE: u32 = 30;
/// `EXT4_MIN_BLOCK_LOG_SIZE`: the smallest block is 2^10 bytes.
const EXT4_MIN_BLOCK_LOG_SIZE: u32 = 10;

/// Shorthand for a geometry error.
fn geometry(field: &'static str) -> Error {
    Error::Corrupt(CorruptKind::SuperblockGeometry(field))
}

impl Superblock {
    /// The geometry checks of `ext4_fill_super()`, `ext4_handle_clustersize()` and
    /// `ext4_check_geometry()` (fs/ext4/super.c) plus e2fsck's `s_first_data_block` rule, in
    /// this order: block and cluster size, blocks/clusters per group, inode size, first inode,
    /// inodes per group, first data block, block count, descriptor size, reserved GDT blocks,
    /// inode count, first meta_bg. All arithmetic is checked.
    pub fn check_geometry(&self) -> Result<()> {
        self.check_block_geometry()?;
        self.check_inode_geometry()?;
        self.check_group_geometry()
    }

    /// Block size, cluster size and the per-group block and cluster counts.
    fn check_block_geometry(&self) -> Result<()> {
        if self.s_log_block_size > 6 {
            return Err(geometry("s_log_block_size"));
        }
        let bs = self.block_size();
        let bigalloc = self.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC);
        let max_log_cluster = EXT4_MAX_CLUSTER_LOG_SIZE - EXT4_MIN_BLOCK_LOG_SIZE;
        let cluster_ok = if bigalloc {
            (self.s_log_block_size..=max_log_cluster).contains(&self.s_log_cluster_size)
        } else {
            self.s_log_cluster_size == self.s_log_block_size
        };
        if !cluster_ok {
            return Err(geometry("s_log_cluster_size"));
        }
        let bpg = self.s_blocks_per_group;
        if bpg == 0 || bpg % 8 != 0 || (!bigalloc && bpg > 8 * bs) {
            return Err(geometry("s_blocks_per_group"));
        }
        let cpg = self.s_clusters_per_group;
        let ratio = 1u32 << (self.s_log_cluster_size - self.s_log_block_size);
        if cpg == 0 || cpg % 8 != 0 || cpg > 8 * bs || cpg.checked_mul(ratio) != Some(bpg) {
            return Err(geometry("s_clusters_per_group"));
        }
        Ok(())
    }

    /// Inode size, first inode and inodes per group.
    fn check_inode_geometry(&self) -> Result<()> {
        let bs = self.block_size();
        if self.s_rev_level != EXT4_GOOD_OLD_REV {
            let isz = u32::from(self.s_inode_size);
            if isz < GOOD_OLD_INODE_SIZE || !isz.is_power_of_two() || isz > bs {
                return Err(geometry("s_inode_size"));
            }
            if self.s_first_ino < EXT4_GOOD_OLD_FIRST_INO {
                return Err(geometry("s_first_ino"));
            }
        }
        let ipg = self.s_inodes_per_group;
        if ipg == 0 || ipg > 8 * bs || ipg % self.inodes_per_block() != 0 {
            return Err(geometry("s_inodes_per_group"));
        }
        Ok(())
    }

    /// First data block, block and group counts, descriptor size, reserved GDT blocks, inode
    /// count and `s_first_meta_bg`.
    fn check_group_geometry(&self) -> Result<()> {
        let bigalloc = self.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC);
        let want_first = u32::from(self.s_log_block_size == 0 && !bigalloc);
        if self.s_first_data_block != want_first {
            return Err(geometry("s_first_data_block"));
        }
        if self.s_blocks_count <= u64::from(self.s_first_data_block) {
            return Err(geometry("s_blocks_count"));
        }
        if self.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT) {
            let ds = usize::from(self.s_desc_size);
            if !(EXT4_MIN_DESC_SIZE_64BIT..=EXT4_MAX_DESC_SIZE).contains(&ds)
                || !ds.is_power_of_two()
            {
                return Err(geometry("s_desc_size"));
            }
        }
        let descs_per_block = u64::from(self.block_size()) / self.desc_size() as u64;
        if self.groups_count_u64() > (1u64 << 32) - descs_per_block {
            return Err(geometry("s_blocks_count"));
        }
        if u32::from(self.s_reserved_gdt_blocks) > self.block_size() / 4 {
            return Err(geometry("s_reserved_gdt_blocks"));
        }
        let inodes = self.groups_count_u64() * u64::from(self.s_inodes_per_group);
        if inodes != u64::from(self.s_inodes_count) {
            return Err(geometry("s_inodes_count"));
        }
        if self.has_incompat(EXT4_FEATURE_INCOMPAT_META_BG)
            && self.s_first_meta_bg > self.gdt_blocks()
        {
            return Err(geometry("s_first_meta_bg"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::superblock::tests::good_sb;
    use crate::format::superblock::CorruptKind;

    fn geometry_err(field: &'static str) -> Result<Superblock> {
        Err(Error::Corrupt(CorruptKind::SuperblockGeometry(field)))
    }

    #[test]
    fn bad_magic_short_buffers_and_geometry_errors_name_the_field() {
        let mut raw = good_sb().to_bytes();
        Superblock::parse(&raw).unwrap().verify_checksum().unwrap();
        raw[0x38] = 0x54;
        assert_eq!(
            Superblock::parse(&raw),
            Err(Error::Corrupt(CorruptKind::SuperblockMagic))
        );
        let short = Err(Error::Corrupt(CorruptKind::Truncated {
            what: "superblock",
        }));
        assert_eq!(Superblock::parse(&raw[..1023]), short);
        type Mutation = fn(&mut Superblock);
        let cases: &[(Mutation, &str)] = &[
            (|s| s.s_log_block_size = 7, "s_log_block_size"),
            (|s| s.s_log_cluster_size = 1, "s_log_cluster_size"),
            (|s| s.s_blocks_per_group = 0, "s_blocks_per_group"),
            (|s| s.s_blocks_per_group = 8188, "s_blocks_per_group"),
            (|s| s.s_blocks_per_group = 16384, "s_blocks_per_group"),
            (|s| s.s_clusters_per_group = 4096, "s_clusters_per_group"),
            (|s| s.s_inode_size = 100, "s_inode_size"),
            (|s| s.s_inode_size = 384, "s_inode_size"),
            (|s| s.s_inode_size = 2048, "s_inode_size"),
            (|s| s.s_first_ino = 10, "s_first_ino"),
            (|s| s.s_inodes_per_group = 0, "s_inodes_per_group"),
            (|s| s.s_inodes_per_group = 8196, "s_inodes_per_group"),
            (|s| s.s_inodes_per_group = 2046, "s_inodes_per_group"),
            (|s| s.s_first_data_block = 0, "s_first_data_block"),
            (|s| s.s_blocks_count = 1, "s_blocks_count"),
            (|s| s.s_blocks_count = 1 << 50, "s_blocks_count"),
            (|s| s.s_desc_size = 32, "s_desc_size"),
            (|s| s.s_desc_size = 96, "s_desc_size"),
            (|s| s.s_desc_size = 2048, "s_desc_size"),
            (|s| s.s_reserved_gdt_blocks = 257, "s_reserved_gdt_blocks"),
            (|s| s.s_inodes_count = 4095, "s_inodes_count"),
            (
                |s| s.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_META_BG,
                "s_first_meta_bg",
            ),
        ];
        for &(mutate, field) in cases {
            let mut sb = good_sb();
            sb.s_first_meta_bg = 2;
            mutate(&mut sb);
            assert_eq!(
                Superblock::parse(&sb.to_bytes()),
                geometry_err(field),
                "{field}"
            );
        }
    }

    #[test]
    fn revision_0_and_narrow_geometry() {
        let mut sb = good_sb();
        (sb.s_rev_level, sb.s_inode_size, sb.s_first_ino) = (0, 0, 0);
        let sb = Superblock::parse(&sb.to_bytes()).unwrap();
        assert_eq!(
            (sb.inode_size(), sb.first_ino(), sb.inodes_per_block()),
            (128, 11, 8)
        );
        // Without 64BIT the _hi halves and s_desc_size do not count.
        let mut raw = good_sb().to_bytes();
        raw[0x60] &= !(EXT4_FEATURE_INCOMPAT_64BIT as u8);
        (raw[0x150], raw[0xFE]) = (1, 3);
        let sb = Superblock::parse(&raw).unwrap();
        assert_eq!(
            (sb.s_blocks_count, sb.desc_size(), sb.gdt_blocks()),
            (16384, 32, 1)
        );
        assert_eq!(
            (
                sb.groups_count(),
                sb.blocks_in_group(1),
                sb.blocks_in_group(2)
            ),
            (2, 8191, 0)
        );
        assert_eq!((sb.group_of_block(0), sb.group_of_block(8193)), (0, 1));
        assert_eq!(
            (sb.group_first_block(1), sb.gdt_block(0), sb.itable_blocks()),
            (8193, 2, 512)
        );
    }
}
