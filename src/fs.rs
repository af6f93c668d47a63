//! The filesystem engine: a model of fs/ext4's mount, allocation, inode, block-mapping and file
//! code on the simulated disk.
//!
//! [`Fs`] is one mounted filesystem (the kernel's `struct super_block` + `ext4_sb_info`). All
//! metadata changes go through the handle API of [`ext4_jbd2`] (`get_write_access` /
//! `dirty_metadata`), so the journal sees every change; file data goes through the page cache
//! ([`page`]) and reaches the disk at writeback.

pub mod balloc;
pub mod ext4_jbd2;
pub mod file;
pub mod ialloc;
pub mod inode;
pub mod map;
pub mod mkfs;
pub mod mount;
pub mod namei;
pub mod orphan;
pub mod page;

pub use ext4_jbd2::Handle;
pub use inode::InodeInfo;
pub use mount::{Fs, MountOpts};
