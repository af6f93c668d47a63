//! The block map of a non-extent inode: `i_block[15]` and the indirect blocks it points to
//! (fs/ext4/indirect.c, `EXT4_*_BLOCK` in fs/ext4/ext4.h). Little-endian.
//!
//! `i_block[0..12]` point straight at data blocks; `i_block[12]` (IND) at a block of
//! `bs / 4` pointers to data blocks; `i_block[13]` (DIND) at a block of pointers to IND blocks;
//! `i_block[14]` (TIND) one level deeper. A pointer of 0 is a hole. This module only reads and
//! writes pointers; walking the map (`ext4_block_to_path()`, `ext4_get_branch()`, …) is the
//! engine's job.

use crate::bytes::{read_u32le, write_u32le};
use crate::error::{CorruptKind, Error, Result};
use crate::units::{Ino, Pblk};

/// `EXT4_NDIR_BLOCKS`: direct pointers in `i_block`.
pub const EXT4_NDIR_BLOCKS: usize = 12;
/// `EXT4_IND_BLOCK`: index of the single-indirect pointer.
pub const EXT4_IND_BLOCK: usize = EXT4_NDIR_BLOCKS;
/// `EXT4_DIND_BLOCK`: index of the double-indirect pointer.
pub const EXT4_DIND_BLOCK: usize = EXT4_IND_BLOCK + 1;
/// `EXT4_TIND_BLOCK`: index of the triple-indirect pointer.
pub const EXT4_TIND_BLOCK: usize = EXT4_DIND_BLOCK + 1;
/// `EXT4_N_BLOCKS`: pointers in `i_block`.
pub const EXT4_N_BLOCKS: usize = EXT4_TIND_BLOCK + 1;
/// Bytes of `i_block` (0x28..0x64 of the inode).
pub const I_BLOCK_SIZE: usize = 4 * EXT4_N_BLOCKS;

/// `EXT4_ADDR_PER_BLOCK()`: pointers in one indirect block.
pub fn ptrs_per_block(block_size: u32) -> u32 {
    block_size / 4
}

/// Pointer `i` of an indirect block (or of `i_block` as bytes).
///
/// # Panics
/// If `i` is past the end of `buf`.
pub fn get_ptr(buf: &[u8], i: usize) -> u32 {
    read_u32le(buf, 4 * i)
}

/// Set pointer `i`.
///
/// # Panics
/// If `i` is past the end of `buf`.
pub fn set_ptr(buf: &mut [u8], i: usize, v: u32) {
    write_u32le(buf, 4 * i, v);
}

/// All pointers of an indirect block, in order (a trailing partial pointer is ignored).
pub fn ptrs(buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
    buf.chunks_exact(4).map(|c| read_u32le(c, 0))
}

/// The 15 pointers of an inode's `i_block` bytes.
pub fn i_block_from_bytes(raw: &[u8; I_BLOCK_SIZE]) -> [u32; EXT4_N_BLOCKS] {
    std::array::from_fn(|i| get_ptr(raw, i))
}

/// The bytes of `i_block` for 15 pointers.
pub fn i_block_to_bytes(ptrs: &[u32; EXT4_N_BLOCKS]) -> [u8; I_BLOCK_SIZE] {
    let mut raw = [0u8; I_BLOCK_SIZE];
    for (i, &p) in ptrs.iter().enumerate() {
        set_ptr(&mut raw, i, p);
    }
    raw
}

/// Model of `__ext4_check_blockref()` (fs/ext4/indirect.c) with the range part of
/// `ext4_inode_block_valid()`: every non-zero pointer in `buf` (an indirect block, or the
/// `i_block` bytes) must lie in `[first_data_block, blocks_count)`. The first bad pointer is
/// reported as `IndirectBlockOutOfRange`. (The kernel also rejects pointers into its
/// system-zone metadata; that needs the group layout and is the engine's check.)
pub fn check_block_refs(
    buf: &[u8],
    ino: Ino,
    first_data_block: u64,
    blocks_count: u64,
) -> Result<()> {
    match ptrs(buf)
        .find(|&p| p != 0 && (u64::from(p) < first_data_block || u64::from(p) >= blocks_count))
    {
        Some(p) => Err(Error::Corrupt(CorruptKind::IndirectBlockOutOfRange {
            ino,
            pblk: Pblk(u64::from(p)),
        })),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testimg::Img;

    #[test]
    fn pointer_layout_is_little_endian() {
        let mut b = [0u8; 16];
        set_ptr(&mut b, 1, 0x0102_0304);
        assert_eq!(b[4..8], [4, 3, 2, 1]);
        assert_eq!(get_ptr(&b, 1), 0x0102_0304);
        assert_eq!(ptrs(&b[..15]).collect::<Vec<_>>(), [0, 0x0102_0304, 0]);
        assert_eq!(ptrs_per_block(1024), 256);
        assert_eq!(ptrs_per_block(4096), 1024);
        assert_eq!(
            (
                EXT4_IND_BLOCK,
                EXT4_DIND_BLOCK,
                EXT4_TIND_BLOCK,
                EXT4_N_BLOCKS
            ),
            (12, 13, 14, 15)
        );
    }

    #[test]
    fn i_block_round_trip() {
        let p: [u32; 15] = std::array::from_fn(|i| u32::try_from(i * 1000 + 7).unwrap());
        let raw = i_block_to_bytes(&p);
        assert_eq!(raw[56..60], 14_007u32.to_le_bytes());
        assert_eq!(i_block_from_bytes(&raw), p);
    }

    #[test]
    fn out_of_range_pointer_is_reported() {
        let mut b = [0u8; 1024];
        set_ptr(&mut b, 0, 1);
        set_ptr(&mut b, 3, 16383);
        assert_eq!(check_block_refs(&b, Ino(12), 1, 16384), Ok(()));
        set_ptr(&mut b, 9, 16384);
        set_ptr(&mut b, 10, 99_999);
        assert_eq!(
            check_block_refs(&b, Ino(12), 1, 16384),
            Err(Error::Corrupt(CorruptKind::IndirectBlockOutOfRange {
                ino: Ino(12),
                pblk: Pblk(16384)
            }))
        );
        let mut low = [0u8; 8];
        set_ptr(&mut low, 1, 0xFFFF_FFFF);
        assert!(check_block_refs(&low, Ino(3), 1, u64::from(u32::MAX)).is_err());
        set_ptr(&mut low, 1, 0);
        set_ptr(&mut low, 0, 0);
        assert_eq!(
            check_block_refs(&low, Ino(3), 1, 2),
            Ok(()),
            "holes are fine"
        );
    }

    #[test]
    fn random_blocks_never_panic() {
        let mut x: u64 = 0xF00D_CAFE_1234_5678;
        for len in 0..3000usize {
            let b: Vec<u8> = (0..len % 1030)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[2]
                })
                .collect();
            assert_eq!(ptrs(&b).count(), b.len() / 4);
            let bad = check_block_refs(&b, Ino(1), 1, u64::from(u32::MAX));
            let worst = ptrs(&b).any(|p| p == u32::MAX);
            assert_eq!(
                bad.is_err(),
                worst,
                "only 0xFFFFFFFF is out of [1, 2^32 - 1)"
            );
        }
    }

    /// One `(label, first, last)` per comma-separated item of debugfs' `BLOCKS:` line, e.g.
    /// `(0-11):2137-2148` → ("0-11", 2137, 2148), `(IND):2149` → ("IND", 2149, 2149).
    fn blocks_line(stat: &str) -> Vec<(String, u32, u32)> {
        let line = stat
            .lines()
            .skip_while(|l| !l.starts_with("BLOCKS:"))
            .nth(1)
            .unwrap();
        let item = |item: &str| {
            let (label, range) = item
                .trim()
                .trim_start_matches('(')
                .split_once("):")
                .unwrap();
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            (label.to_string(), a.parse().unwrap(), b.parse().unwrap())
        };
        line.split(", ").map(item).collect()
    }

    #[test]
    fn block_map_matches_debugfs() {
        let Some(img) = Img::mkfs("indirect", Some("^extent,^64bit")) else {
            return;
        };
        img.debugfs_script("write data f\n", &[("data", &[0x5A; 300 * 1024])]);
        // (0-11):d0-d11, (IND):i, (12-267):…, (DIND):di, (IND):i2, (268-299):…
        let items = blocks_line(&img.debugfs("stat f"));
        let labels: Vec<&str> = items.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(labels, ["0-11", "IND", "12-267", "DIND", "IND", "268-299"]);
        let range = |i: usize| (items[i].1..=items[i].2).collect::<Vec<u32>>();
        let inode = img.inode("f");
        let i_block = i_block_from_bytes(inode[0x28..0x64].try_into().unwrap());
        assert_eq!(i_block[..12], range(0)[..]);
        assert_eq!(i_block[12..], [items[1].1, items[3].1, 0]);

        let block = |n: u32| img.block(n.into());
        let ind: Vec<u32> = ptrs(&block(i_block[EXT4_IND_BLOCK])).collect();
        assert_eq!(ind, range(2));
        let dind: Vec<u32> = ptrs(&block(i_block[EXT4_DIND_BLOCK])).collect();
        assert_eq!(dind[0], items[4].1);
        assert!(dind[1..].iter().all(|&p| p == 0));
        let ind2: Vec<u32> = ptrs(&block(dind[0])).collect();
        assert_eq!(ind2[..32], range(5)[..]);
        assert!(ind2[32..].iter().all(|&p| p == 0));
        let ind_block = block(i_block[EXT4_IND_BLOCK]);
        assert_eq!(check_block_refs(&ind_block, Ino(12), 1, 16384), Ok(()));
        assert!(check_block_refs(&ind_block, Ino(12), 1, items[2].2.into()).is_err());
    }
}
