//! On-disk structures of ext4 (little-endian) and JBD2 (big-endian): parse, serialize and
//! checksum. No policy and no state: this layer only translates bytes. Each module mirrors one
//! C structure, with the C field names and their hex offsets.

pub mod bitmap;
pub mod blockmap;
pub mod dir;
pub mod extent;
pub mod group_desc;
pub mod indirect;
pub mod inode;
pub mod jbd2;
pub mod superblock;
#[cfg(test)]
pub(crate) mod testimg;
