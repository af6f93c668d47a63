//! Block and inode bitmaps: one block per group, one bit per cluster (block bitmap) or per
//! inode (inode bitmap), bit `n` is bit `n % 8` of byte `n / 8` (least significant first, as
//! `ext4_test_bit()` = `test_bit_le()`). Bits past the group's last cluster or inode, up to the
//! end of the block, are padding and must be set (`ext4_mark_bitmap_end()`).
//!
//! With metadata_csum each bitmap has a crc32c (seed `S`) over only the bytes that hold real
//! bits (`clusters_per_group / 8`, `inodes_per_group / 8`), stored in the group descriptor: the
//! low 16 bits always, the high 16 bits only when the descriptor is large enough
//! (`EXT4_BG_*_BITMAP_CSUM_HI_END`). Model of fs/ext4/bitmap.c.
//!
//! The bit functions take bit numbers in `u32` and panic on a bit outside the buffer (a bug in
//! the caller); the search and count functions clamp `end` to the buffer and never panic.

use crate::bytes::read_u64le;
use crate::crc::crc32c_raw;
use crate::error::{CorruptKind, Error, Result};
use crate::format::group_desc::{
    GroupDesc, EXT4_BG_BLOCK_BITMAP_CSUM_HI_END, EXT4_BG_INODE_BITMAP_CSUM_HI_END,
};
use crate::format::superblock::Superblock;

/// Byte index and mask of bit `nr`.
fn locate(nr: u32) -> (usize, u8) {
    ((nr / 8) as usize, 1u8 << (nr % 8))
}

/// Model of `ext4_test_bit()`: is bit `nr` set?
///
/// # Panics
/// If `nr` is past the end of `buf`.
pub fn test_bit(buf: &[u8], nr: u32) -> bool {
    let (i, m) = locate(nr);
    buf[i] & m != 0
}

/// Model of `ext4_set_bit()`.
///
/// # Panics
/// If `nr` is past the end of `buf`.
pub fn set_bit(buf: &mut [u8], nr: u32) {
    let (i, m) = locate(nr);
    buf[i] |= m;
}

/// Model of `ext4_clear_bit()`.
///
/// # Panics
/// If `nr` is past the end of `buf`.
pub fn clear_bit(buf: &mut [u8], nr: u32) {
    let (i, m) = locate(nr);
    buf[i] &= !m;
}

/// Model of `ext4_test_and_set_bit()`: set bit `nr`, returning its old value.
///
/// # Panics
/// If `nr` is past the end of `buf`.
pub fn test_and_set_bit(buf: &mut [u8], nr: u32) -> bool {
    let old = test_bit(buf, nr);
    set_bit(buf, nr);
    old
}

/// Model of `ext4_test_and_clear_bit()`: clear bit `nr`, returning its old value.
///
/// # Panics
/// If `nr` is past the end of `buf`.
pub fn test_and_clear_bit(buf: &mut [u8], nr: u32) -> bool {
    let old = test_bit(buf, nr);
    clear_bit(buf, nr);
    old
}

/// Number of bits in `buf`, saturated to `u32`.
fn nbits(buf: &[u8]) -> u32 {
    u32::try_from(buf.len().saturating_mul(8)).unwrap_or(u32::MAX)
}

/// The first bit in `[start, end)` whose value is `want`, scanning 64 bits at a time where
/// aligned. `end` is clamped to the buffer.
fn find_next(buf: &[u8], start: u32, end: u32, want: bool) -> Option<u32> {
    let end = end.min(nbits(buf));
    let mut i = start;
    while i < end {
        if i % 64 == 0 && end - i >= 64 {
            let word = read_u64le(buf, (i / 8) as usize);
            let hits = if want { word } else { !word };
            if hits != 0 {
                return Some(i + hits.trailing_zeros());
            }
            i += 64;
        } else {
            if test_bit(buf, i) == want {
                return Some(i);
            }
            i += 1;
        }
    }
    None
}

/// Model of `ext4_find_next_zero_bit()`: the first clear bit in `[start, end)`, or `None`
/// (the kernel returns `end`). `end` is clamped to the buffer.
pub fn find_next_zero_bit(buf: &[u8], start: u32, end: u32) -> Option<u32> {
    find_next(buf, start, end, false)
}

/// Model of `ext4_find_next_bit()`: the first set bit in `[start, end)`, or `None`.
/// `end` is clamped to the buffer.
pub fn find_next_set_bit(buf: &[u8], start: u32, end: u32) -> Option<u32> {
    find_next(buf, start, end, true)
}

/// Number of set bits in `[start, end)` (`end` clamped to the buffer).
pub fn count_set(buf: &[u8], start: u32, end: u32) -> u32 {
    let end = end.min(nbits(buf));
    let mut n = 0;
    let mut i = start;
    while i < end {
        if i % 64 == 0 && end - i >= 64 {
            n += read_u64le(buf, (i / 8) as usize).count_ones();
            i += 64;
        } else {
            n += u32::from(test_bit(buf, i));
            i += 1;
        }
    }
    n
}

/// Model of `ext4_mark_bitmap_end()` (fs/ext4/ialloc.c): set the padding bits from
/// `start_bit` to `end_bit` — bit by bit up to the next byte boundary, then whole bytes
/// (`(end_bit − i) / 8` of them, exactly as the kernel's `memset`).
///
/// # Panics
/// If the bits reach past the end of `buf`.
pub fn mark_bitmap_end(start_bit: u32, end_bit: u32, buf: &mut [u8]) {
    if start_bit >= end_bit {
        return;
    }
    let mut i = start_bit;
    while i < start_bit.next_multiple_of(8) {
        set_bit(buf, i);
        i += 1;
    }
    if i < end_bit {
        let first = (i / 8) as usize;
        let len = ((end_bit - i) / 8) as usize;
        buf[first..first + len].fill(0xFF);
    }
}

/// Bytes of a block bitmap covered by its checksum: `EXT4_CLUSTERS_PER_GROUP / 8`.
fn block_bitmap_bytes(sb: &Superblock) -> usize {
    (sb.s_clusters_per_group / 8) as usize
}

/// Bytes of an inode bitmap covered by its checksum: `EXT4_INODES_PER_GROUP / 8`.
fn inode_bitmap_bytes(sb: &Superblock) -> usize {
    (sb.s_inodes_per_group / 8) as usize
}

/// The block bitmap checksum: crc32c_raw(S, buf[..clusters_per_group / 8]).
///
/// # Panics
/// If `buf` is shorter than `clusters_per_group / 8` bytes.
pub fn block_bitmap_csum(sb: &Superblock, buf: &[u8]) -> u32 {
    crc32c_raw(sb.csum_seed(), &buf[..block_bitmap_bytes(sb)])
}

/// The inode bitmap checksum: crc32c_raw(S, buf[..inodes_per_group / 8]).
///
/// # Panics
/// If `buf` is shorter than `inodes_per_group / 8` bytes.
pub fn inode_bitmap_csum(sb: &Superblock, buf: &[u8]) -> u32 {
    crc32c_raw(sb.csum_seed(), &buf[..inode_bitmap_bytes(sb)])
}

/// What the descriptor stores of checksum `csum`: all 32 bits if the descriptor reaches
/// `hi_end`, else the low 16.
fn stored(sb: &Superblock, csum: u32, hi_end: usize) -> u32 {
    if sb.desc_size() >= hi_end {
        csum
    } else {
        csum & 0xFFFF
    }
}

/// Model of `ext4_block_bitmap_csum_set()`: with metadata_csum, store the checksum of `buf`
/// in `gd.bg_block_bitmap_csum` (lo16, and hi16 when the descriptor holds it).
pub fn block_bitmap_csum_set(sb: &Superblock, gd: &mut GroupDesc, buf: &[u8]) {
    if sb.metadata_csum() {
        let csum = block_bitmap_csum(sb, buf);
        gd.bg_block_bitmap_csum = stored(sb, csum, EXT4_BG_BLOCK_BITMAP_CSUM_HI_END);
    }
}

/// Model of `ext4_block_bitmap_csum_verify()`: with metadata_csum, `BlockBitmapChecksum(group)`
/// if the stored checksum does not match `buf`; without it, Ok.
pub fn block_bitmap_csum_verify(
    sb: &Superblock,
    group: u32,
    gd: &GroupDesc,
    buf: &[u8],
) -> Result<()> {
    if !sb.metadata_csum() {
        return Ok(());
    }
    let want = stored(
        sb,
        block_bitmap_csum(sb, buf),
        EXT4_BG_BLOCK_BITMAP_CSUM_HI_END,
    );
    if gd.bg_block_bitmap_csum != want {
        return Err(Error::Corrupt(CorruptKind::BlockBitmapChecksum(group)));
    }
    Ok(())
}

/// Model of `ext4_inode_bitmap_csum_set()`: with metadata_csum, store the checksum of `buf`
/// in `gd.bg_inode_bitmap_csum` (lo16, and hi16 when the descriptor holds it).
pub fn inode_bitmap_csum_set(sb: &Superblock, gd: &mut GroupDesc, buf: &[u8]) {
    if sb.metadata_csum() {
        let csum = inode_bitmap_csum(sb, buf);
        gd.bg_inode_bitmap_csum = stored(sb, csum, EXT4_BG_INODE_BITMAP_CSUM_HI_END);
    }
}

/// Model of `ext4_inode_bitmap_csum_verify()`: with metadata_csum, `InodeBitmapChecksum(group)`
/// if the stored checksum does not match `buf`; without it, Ok.
pub fn inode_bitmap_csum_verify(
    sb: &Superblock,
    group: u32,
    gd: &GroupDesc,
    buf: &[u8],
) -> Result<()> {
    if !sb.metadata_csum() {
        return Ok(());
    }
    let want = stored(
        sb,
        inode_bitmap_csum(sb, buf),
        EXT4_BG_INODE_BITMAP_CSUM_HI_END,
    );
    if gd.bg_inode_bitmap_csum != want {
        return Err(Error::Corrupt(CorruptKind::InodeBitmapChecksum(group)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::group_desc::testutil::{dump_groups, mkfs, XorShift};
    use crate::format::group_desc::{EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT};

    #[test]
    fn bits_are_lsb_first() {
        let mut b = [0u8; 4];
        set_bit(&mut b, 9);
        set_bit(&mut b, 0);
        set_bit(&mut b, 31);
        assert_eq!(b, [0x01, 0x02, 0x00, 0x80]);
        assert!(test_bit(&b, 9) && !test_bit(&b, 8));
        assert!(test_and_clear_bit(&mut b, 9));
        assert!(!test_and_clear_bit(&mut b, 9));
        assert!(!test_and_set_bit(&mut b, 17));
        clear_bit(&mut b, 31);
        assert_eq!(b, [0x01, 0x00, 0x02, 0x00]);
    }

    #[test]
    fn searches_and_counts_match_a_naive_scan() {
        let mut rng = XorShift(0xB17_5EED);
        for round in 0..400 {
            let len = 1 + rng.below(64) as usize;
            let mut b = rng.bytes(len);
            if round % 3 == 0 {
                b.iter_mut().for_each(|x| *x = 0xFF);
                set_bit(&mut b, 0);
                clear_bit(&mut b, rng.below(len as u64 * 8) as u32);
            }
            let bits = len as u32 * 8;
            let start = rng.below(u64::from(bits) + 2) as u32;
            let end = rng.below(u64::from(bits) + 40) as u32;
            let clamped = end.min(bits);
            let naive = |want: bool| (start..clamped).find(|&i| test_bit(&b, i) == want);
            assert_eq!(find_next_zero_bit(&b, start, end), naive(false));
            assert_eq!(find_next_set_bit(&b, start, end), naive(true));
            let count = (start..clamped).filter(|&i| test_bit(&b, i)).count() as u32;
            assert_eq!(count_set(&b, start, end), count);
        }
        let mut full = [0xFFu8; 32];
        assert_eq!(find_next_zero_bit(&full, 0, 256), None);
        clear_bit(&mut full, 200);
        assert_eq!(find_next_zero_bit(&full, 3, 256), Some(200));
        assert_eq!(find_next_zero_bit(&full, 201, 256), None);
        assert_eq!(count_set(&full, 0, 1000), 255);
        assert_eq!(find_next_set_bit(&[0u8; 16], 0, 128), None);
        // A word that ends one bit past `end` must not be taken whole.
        let mut edge = [0xFFu8; 16];
        clear_bit(&mut edge, 127);
        assert_eq!(find_next_zero_bit(&edge, 64, 127), None);
        assert_eq!(find_next_zero_bit(&edge, 64, 128), Some(127));
        assert_eq!(count_set(&edge, 64, 127), 63);
        assert_eq!(find_next_set_bit(&[0, 0, 0, 0, 0, 0, 0, 0x80], 0, 63), None);
    }

    #[test]
    fn mark_bitmap_end_is_the_kernels() {
        let mut b = vec![0u8; 1024];
        mark_bitmap_end(2050, 8192, &mut b);
        assert_eq!(b[256], 0xFC);
        assert!(b[257..].iter().all(|&x| x == 0xFF));
        assert!(b[..256].iter().all(|&x| x == 0));
        // Whole bytes only past the first boundary: (13 − 0) / 8 = 1 byte, bits 8..13 stay clear.
        let mut c = [0u8; 4];
        mark_bitmap_end(0, 13, &mut c);
        assert_eq!(c, [0xFF, 0, 0, 0]);
        // The bit loop runs to the byte boundary even past end_bit.
        let mut d = [0u8; 2];
        mark_bitmap_end(3, 5, &mut d);
        assert_eq!(d, [0xF8, 0]);
        mark_bitmap_end(9, 9, &mut d);
        assert_eq!(d, [0xF8, 0]);
    }

    #[test]
    fn real_bitmaps_verify_count_and_are_padded() {
        let images = [
            ("-t ext4 -b 1024", 64 << 20),
            ("-t ext4 -b 4096", 16 << 20),
            ("-t ext4 -O ^64bit", 16 << 20),
            ("-t ext4 -O metadata_csum_seed,^flex_bg -b 1024", 40 << 20),
        ];
        let mut verified = 0;
        for (opts, size) in images {
            let Some(img) = mkfs(opts, size) else { return };
            let sb = img.sb();
            let bits = sb.block_size() * 8;
            let dump = dump_groups(&img);
            for (g, gd) in (0u32..).zip(img.descs(&sb)) {
                let d = &dump[g as usize];
                let bb = img.block(&sb, gd.bg_block_bitmap);
                if gd.bg_flags & EXT4_BG_BLOCK_UNINIT == 0 {
                    block_bitmap_csum_verify(&sb, g, &gd, bb).unwrap();
                    let full = block_bitmap_csum(&sb, bb);
                    assert_eq!(d.block_bitmap.1, Some(u64::from(gd.bg_block_bitmap_csum)));
                    assert_eq!(
                        full & 0xFFFF,
                        gd.bg_block_bitmap_csum & 0xFFFF,
                        "{opts} {g}"
                    );
                    let used = sb.blocks_in_group(g) - gd.bg_free_blocks_count;
                    assert_eq!(count_set(bb, 0, sb.blocks_in_group(g)), used, "{opts} {g}");
                    assert_eq!(find_next_zero_bit(bb, sb.blocks_in_group(g), bits), None);
                    verified += 1;
                }
                let ib = img.block(&sb, gd.bg_inode_bitmap);
                if gd.bg_flags & EXT4_BG_INODE_UNINIT == 0 {
                    inode_bitmap_csum_verify(&sb, g, &gd, ib).unwrap();
                    assert_eq!(d.inode_bitmap.1, Some(u64::from(gd.bg_inode_bitmap_csum)));
                    let ipg = sb.s_inodes_per_group;
                    assert_eq!(count_set(ib, 0, ipg), ipg - gd.bg_free_inodes_count);
                    assert_eq!(find_next_zero_bit(ib, ipg, bits), None, "{opts} {g}");
                    verified += 1;
                }
            }
        }
        assert!(verified >= 8, "only {verified} bitmaps checked");
    }

    #[test]
    fn bitmap_checksums_detect_flips_and_store_lo16_in_narrow_descriptors() {
        for opts in ["-t ext4 -b 1024", "-t ext4 -O ^64bit"] {
            let Some(img) = mkfs(opts, 16 << 20) else {
                return;
            };
            let sb = img.sb();
            let mut gd = img.descs(&sb)[0].clone();
            let mut bb = img.block(&sb, gd.bg_block_bitmap).to_vec();
            let mut ib = img.block(&sb, gd.bg_inode_bitmap).to_vec();
            let wide = sb.desc_size() >= 64;
            assert_eq!(
                gd.bg_block_bitmap_csum > 0xFFFF,
                wide && block_bitmap_csum(&sb, &bb) > 0xFFFF
            );
            bb[5] ^= 0x10;
            ib[0] ^= 0x01;
            let err = Err(Error::Corrupt(CorruptKind::BlockBitmapChecksum(0)));
            assert_eq!(block_bitmap_csum_verify(&sb, 0, &gd, &bb), err);
            let err = Err(Error::Corrupt(CorruptKind::InodeBitmapChecksum(0)));
            assert_eq!(inode_bitmap_csum_verify(&sb, 0, &gd, &ib), err);
            // Bytes past inodes_per_group / 8 are not covered.
            let mut tail = img.block(&sb, gd.bg_inode_bitmap).to_vec();
            tail[sb.s_inodes_per_group as usize / 8] ^= 0xFF;
            inode_bitmap_csum_verify(&sb, 0, &gd, &tail).unwrap();
            block_bitmap_csum_set(&sb, &mut gd, &bb);
            inode_bitmap_csum_set(&sb, &mut gd, &ib);
            block_bitmap_csum_verify(&sb, 0, &gd, &bb).unwrap();
            inode_bitmap_csum_verify(&sb, 0, &gd, &ib).unwrap();
            if !wide {
                assert!(gd.bg_block_bitmap_csum <= 0xFFFF && gd.bg_inode_bitmap_csum <= 0xFFFF);
            }
        }
    }

    #[test]
    fn without_metadata_csum_bitmaps_are_not_checked() {
        let Some(img) = mkfs("-t ext3", 16 << 20) else {
            return;
        };
        let sb = img.sb();
        let mut gd = img.descs(&sb)[0].clone();
        gd.bg_block_bitmap_csum = 0xDEAD;
        block_bitmap_csum_set(&sb, &mut gd, &[0u8; 1024]);
        assert_eq!(gd.bg_block_bitmap_csum, 0xDEAD);
        block_bitmap_csum_verify(&sb, 0, &gd, &[1u8; 1024]).unwrap();
        inode_bitmap_csum_verify(&sb, 0, &gd, &[1u8; 1024]).unwrap();
    }
}
