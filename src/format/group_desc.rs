//! `struct ext4_group_desc` (fs/ext4/ext4.h): one per block group, 32 bytes without `64BIT`,
//! `s_desc_size` (≥ 64) bytes with it. The descriptor table follows the superblock (model of
//! `descriptor_loc()` without meta_bg). Little-endian.
//!
//! Layout: the 32-byte base holds the `_lo` halves (0x00–0x1F); a 64-byte descriptor adds the
//! `_hi` halves at 0x20–0x3F. The kernel reads the `_hi` halves only when the descriptor size is
//! at least `EXT4_MIN_DESC_SIZE_64BIT` (64), and the bitmap checksum `_hi` halves only when it
//! reaches `EXT4_BG_{BLOCK,INODE}_BITMAP_CSUM_HI_END`; [`GroupDesc`] combines them the same way.
//! Like every structure here it keeps its `raw` bytes and writes only the modelled fields.
//!
//! Checksums (model of `ext4_group_desc_csum()`): with metadata_csum, the low 16 bits of
//! crc32c(S, le32 group ‖ descriptor with `bg_checksum` zeroed); with gdt_csum (`uninit_bg`),
//! crc16(!0, uuid ‖ le32 group ‖ descriptor without `bg_checksum`); otherwise none.
//!
//! Under `cfg(test)` this file also hosts `testutil`, the helpers the format tests share
//! (mke2fs images in the temp dir, `dumpe2fs`/`debugfs` parsing, a fixed-seed xorshift).

use crate::bytes::{le32, read_u16le, read_u32le, write_u16le, write_u32le};
use crate::crc::{crc16, crc32c_raw};
use crate::error::{CorruptKind, Error, Result};
use crate::format::superblock::{
    Superblock, EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_FLEX_BG, EXT4_MIN_DESC_SIZE,
    EXT4_MIN_DESC_SIZE_64BIT,
};

/// `bg_flags`: inode table and bitmap not initialized.
pub const EXT4_BG_INODE_UNINIT: u16 = 0x0001;
/// `bg_flags`: block bitmap not initialized.
pub const EXT4_BG_BLOCK_UNINIT: u16 = 0x0002;
/// `bg_flags`: inode table is zeroed.
pub const EXT4_BG_INODE_ZEROED: u16 = 0x0004;

/// Offset of `bg_checksum`.
const BG_CHECKSUM: usize = 0x1E;
/// `EXT4_BG_BLOCK_BITMAP_CSUM_HI_END`: end of `bg_block_bitmap_csum_hi`.
pub const EXT4_BG_BLOCK_BITMAP_CSUM_HI_END: usize = 0x3A;
/// `EXT4_BG_INODE_BITMAP_CSUM_HI_END`: end of `bg_inode_bitmap_csum_hi`.
pub const EXT4_BG_INODE_BITMAP_CSUM_HI_END: usize = 0x3C;

/// `struct ext4_group_desc` with the `_lo`/`_hi` halves combined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupDesc {
    /// 0x00 bg_block_bitmap_lo, 0x20 bg_block_bitmap_hi.
    pub bg_block_bitmap: u64,
    /// 0x04 bg_inode_bitmap_lo, 0x24 bg_inode_bitmap_hi.
    pub bg_inode_bitmap: u64,
    /// 0x08 bg_inode_table_lo, 0x28 bg_inode_table_hi.
    pub bg_inode_table: u64,
    /// 0x0C bg_free_blocks_count_lo, 0x2C bg_free_blocks_count_hi.
    pub bg_free_blocks_count: u32,
    /// 0x0E bg_free_inodes_count_lo, 0x2E bg_free_inodes_count_hi.
    pub bg_free_inodes_count: u32,
    /// 0x10 bg_used_dirs_count_lo, 0x30 bg_used_dirs_count_hi.
    pub bg_used_dirs_count: u32,
    /// 0x12 bg_flags (`EXT4_BG_*`).
    pub bg_flags: u16,
    /// 0x14 bg_exclude_bitmap_lo, 0x34 bg_exclude_bitmap_hi.
    pub bg_exclude_bitmap: u64,
    /// 0x18 bg_block_bitmap_csum_lo, 0x38 bg_block_bitmap_csum_hi.
    pub bg_block_bitmap_csum: u32,
    /// 0x1A bg_inode_bitmap_csum_lo, 0x3A bg_inode_bitmap_csum_hi.
    pub bg_inode_bitmap_csum: u32,
    /// 0x1C bg_itable_unused_lo, 0x32 bg_itable_unused_hi.
    pub bg_itable_unused: u32,
    /// 0x1E bg_checksum.
    pub bg_checksum: u16,
    /// The descriptor bytes this was parsed from (`desc_size` long).
    pub raw: Vec<u8>,
}

/// The (lo, hi) byte offsets of a field split in two halves on disk.
type LoHi = (usize, usize);
/// `(lo, hi)` offsets of the 32/32-bit fields: block bitmap, inode bitmap, inode table, exclude.
const BLOCK_FIELDS: [LoHi; 4] = [(0x00, 0x20), (0x04, 0x24), (0x08, 0x28), (0x14, 0x34)];
/// `(lo, hi)` offsets of the 16/16-bit counts: free blocks, free inodes, used dirs, itable unused.
const COUNT_FIELDS: [LoHi; 4] = [(0x0C, 0x2C), (0x0E, 0x2E), (0x10, 0x30), (0x1C, 0x32)];

impl GroupDesc {
    /// A descriptor built from scratch: all fields zero, `raw` = `desc_size` zero bytes.
    pub fn new(desc_size: usize) -> GroupDesc {
        GroupDesc {
            raw: vec![0; desc_size],
            ..GroupDesc::default()
        }
    }

    /// Parse one descriptor of `desc_size` bytes from the start of `buf`. `Truncated` if
    /// `buf` is shorter than `desc_size` or `desc_size` < 32. Never panics.
    pub fn parse(buf: &[u8], desc_size: usize) -> Result<GroupDesc> {
        if desc_size < EXT4_MIN_DESC_SIZE || buf.len() < desc_size {
            return Err(Error::Corrupt(CorruptKind::Truncated {
                what: "group descriptor",
            }));
        }
        let b = &buf[..desc_size];
        let wide = desc_size >= EXT4_MIN_DESC_SIZE_64BIT;
        let [bb, ib, it, ex] = BLOCK_FIELDS.map(|(lo, hi)| {
            let hi = if wide {
                u64::from(read_u32le(b, hi))
            } else {
                0
            };
            (hi << 32) | u64::from(read_u32le(b, lo))
        });
        let [fb, fi, ud, iu] = COUNT_FIELDS.map(|(lo, hi)| {
            let hi = if wide {
                u32::from(read_u16le(b, hi))
            } else {
                0
            };
            (hi << 16) | u32::from(read_u16le(b, lo))
        });
        let csum = |lo: usize, hi: usize, end: usize| {
            let hi = if desc_size >= end {
                u32::from(read_u16le(b, hi))
            } else {
                0
            };
            (hi << 16) | u32::from(read_u16le(b, lo))
        };
        Ok(GroupDesc {
            bg_block_bitmap: bb,
            bg_inode_bitmap: ib,
            bg_inode_table: it,
            bg_free_blocks_count: fb,
            bg_free_inodes_count: fi,
            bg_used_dirs_count: ud,
            bg_flags: read_u16le(b, 0x12),
            bg_exclude_bitmap: ex,
            bg_block_bitmap_csum: csum(0x18, 0x38, EXT4_BG_BLOCK_BITMAP_CSUM_HI_END),
            bg_inode_bitmap_csum: csum(0x1A, 0x3A, EXT4_BG_INODE_BITMAP_CSUM_HI_END),
            bg_itable_unused: iu,
            bg_checksum: read_u16le(b, BG_CHECKSUM),
            raw: b.to_vec(),
        })
    }

    /// Serialize into `buf[..desc_size]`: `raw` (zero-extended to `desc_size`), then every
    /// modelled field; `_hi` halves only where the descriptor size holds them.
    ///
    /// # Panics
    /// If `buf` is shorter than `desc_size` or `desc_size` < 32 (a caller bug).
    pub fn write(&self, buf: &mut [u8], desc_size: usize) {
        assert!(
            desc_size >= EXT4_MIN_DESC_SIZE,
            "descriptor size {desc_size} < 32"
        );
        let b = &mut buf[..desc_size];
        let n = self.raw.len().min(desc_size);
        b[..n].copy_from_slice(&self.raw[..n]);
        b[n..].fill(0);
        let wide = desc_size >= EXT4_MIN_DESC_SIZE_64BIT;
        let blocks = [
            self.bg_block_bitmap,
            self.bg_inode_bitmap,
            self.bg_inode_table,
            self.bg_exclude_bitmap,
        ];
        for ((lo, hi), v) in BLOCK_FIELDS.into_iter().zip(blocks) {
            write_u32le(b, lo, v as u32);
            if wide {
                write_u32le(b, hi, (v >> 32) as u32);
            }
        }
        let counts = [
            self.bg_free_blocks_count,
            self.bg_free_inodes_count,
            self.bg_used_dirs_count,
            self.bg_itable_unused,
        ];
        for ((lo, hi), v) in COUNT_FIELDS.into_iter().zip(counts) {
            write_u16le(b, lo, v as u16);
            if wide {
                write_u16le(b, hi, (v >> 16) as u16);
            }
        }
        write_u16le(b, 0x12, self.bg_flags);
        let csums = [
            (
                0x18,
                0x38,
                EXT4_BG_BLOCK_BITMAP_CSUM_HI_END,
                self.bg_block_bitmap_csum,
            ),
            (
                0x1A,
                0x3A,
                EXT4_BG_INODE_BITMAP_CSUM_HI_END,
                self.bg_inode_bitmap_csum,
            ),
        ];
        for (lo, hi, end, v) in csums {
            write_u16le(b, lo, v as u16);
            if desc_size >= end {
                write_u16le(b, hi, (v >> 16) as u16);
            }
        }
        write_u16le(b, BG_CHECKSUM, self.bg_checksum);
    }

    /// The `desc_size` on-disk bytes (see [`GroupDesc::write`]).
    pub fn to_bytes(&self, desc_size: usize) -> Vec<u8> {
        let mut b = vec![0; desc_size];
        self.write(&mut b, desc_size);
        b
    }

    /// Model of `ext4_group_desc_csum_set()`: store the checksum of group `group` if the
    /// filesystem has descriptor checksums (metadata_csum or gdt_csum); else leave it.
    pub fn csum_set(&mut self, sb: &Superblock, group: u32) {
        if sb.has_group_desc_csum() {
            self.bg_checksum = group_desc_csum(sb, group, &self.to_bytes(sb.desc_size()));
        }
    }

    /// Model of `ext4_group_desc_csum_verify()`: `GroupDescriptorChecksum(group)` if the
    /// filesystem has descriptor checksums and `bg_checksum` does not match.
    pub fn verify(&self, sb: &Superblock, group: u32) -> Result<()> {
        let bytes = self.to_bytes(sb.desc_size());
        if sb.has_group_desc_csum() && group_desc_csum(sb, group, &bytes) != self.bg_checksum {
            return Err(Error::Corrupt(CorruptKind::GroupDescriptorChecksum(group)));
        }
        Ok(())
    }
}

/// Model of `ext4_group_desc_csum()` (fs/ext4/super.c) over the on-disk bytes of group
/// `group`'s descriptor (`desc_bytes` holds at least `sb.desc_size()` bytes; `bg_checksum`
/// itself is skipped). metadata_csum → crc32c & 0xFFFF; gdt_csum → crc16; neither → 0.
///
/// # Panics
/// If `desc_bytes` is shorter than `sb.desc_size()`.
pub fn group_desc_csum(sb: &Superblock, group: u32, desc_bytes: &[u8]) -> u16 {
    let size = sb.desc_size();
    let d = &desc_bytes[..size];
    let rest = &d[BG_CHECKSUM + 2..];
    if sb.metadata_csum() {
        let mut c = crc32c_raw(sb.csum_seed(), &le32(group));
        c = crc32c_raw(c, &d[..BG_CHECKSUM]);
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, rest);
        return (c & 0xFFFF) as u16;
    }
    if !sb.gdt_csum() {
        return 0;
    }
    let mut c = crc16(!0, &sb.s_uuid);
    c = crc16(c, &le32(group));
    c = crc16(c, &d[..BG_CHECKSUM]);
    if sb.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT) {
        c = crc16(c, rest);
    }
    c
}

/// Parse the contiguous descriptor table (`bytes` = the GDT blocks, or at least
/// `groups_count · desc_size` bytes of them): one [`GroupDesc`] per group, no checks beyond
/// `Truncated { what: "group descriptor table" }` (see [`check_descriptors`]).
pub fn parse_table(sb: &Superblock, bytes: &[u8]) -> Result<Vec<GroupDesc>> {
    let size = sb.desc_size();
    let needed = (sb.groups_count() as usize).checked_mul(size);
    if needed.is_none_or(|n| n > bytes.len()) {
        return Err(Error::Corrupt(CorruptKind::Truncated {
            what: "group descriptor table",
        }));
    }
    bytes
        .chunks_exact(size)
        .take(sb.groups_count() as usize)
        .map(|d| GroupDesc::parse(d, size))
        .collect()
}

/// Write every descriptor of `descs` into the table bytes `out` (descriptor `g` at
/// `g · desc_size`); bytes of `out` past the last descriptor are left alone.
///
/// # Panics
/// If `out` is shorter than `descs.len() · desc_size`.
pub fn write_table(sb: &Superblock, descs: &[GroupDesc], out: &mut [u8]) {
    let size = sb.desc_size();
    assert!(
        out.len() >= descs.len() * size,
        "descriptor table buffer too short"
    );
    for (d, chunk) in descs.iter().zip(out.chunks_exact_mut(size)) {
        d.write(chunk, size);
    }
}

/// Model of `ext4_check_descriptors()` (fs/ext4/super.c) for a read-write mount: each
/// group's block bitmap, inode bitmap and inode table must lie inside the group (anywhere in
/// the filesystem with flex_bg, or for the last group) and not on the superblock or the
/// primary descriptor blocks (`GroupDescriptor { group, field }`), and its checksum must
/// verify (`GroupDescriptorChecksum`).
pub fn check_descriptors(sb: &Superblock, descs: &[GroupDesc]) -> Result<()> {
    let flex = sb.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG);
    let sb_block = u64::from(sb.s_first_data_block);
    let last_bg_block = sb_block + u64::from(sb.bg_num_gdb(0));
    let last_fs_block = sb.s_blocks_count.saturating_sub(1);
    let last_group = sb.groups_count().saturating_sub(1);
    let itb = u64::from(sb.itable_blocks()).saturating_sub(1);
    let mut first_block = sb_block;
    for (g, gd) in (0u32..).zip(descs) {
        let last_block = if g == last_group || flex {
            last_fs_block
        } else {
            first_block + u64::from(sb.s_blocks_per_group) - 1
        };
        let bad = |field: &'static str| {
            Err(Error::Corrupt(CorruptKind::GroupDescriptor {
                group: g,
                field,
            }))
        };
        let itable_last = gd.bg_inode_table.saturating_add(itb);
        for (field, start, end) in [
            ("bg_block_bitmap", gd.bg_block_bitmap, gd.bg_block_bitmap),
            ("bg_inode_bitmap", gd.bg_inode_bitmap, gd.bg_inode_bitmap),
            ("bg_inode_table", gd.bg_inode_table, itable_last),
        ] {
            let on_meta = start <= last_bg_block && end >= sb_block;
            if on_meta || start < first_block || end > last_block {
                return bad(field);
            }
        }
        gd.verify(sb, g)?;
        if !flex {
            first_block += u64::from(sb.s_blocks_per_group);
        }
    }
    Ok(())
}

/// Test helpers shared by the format tests: images made by mke2fs in the temp dir (deleted on
/// drop), `dumpe2fs`/`debugfs` output parsing, and a fixed-seed xorshift generator.
#[cfg(test)]
pub(crate) mod testutil {
    use super::{parse_table, GroupDesc};
    use crate::format::superblock::{Superblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Whether an e2fsprogs tool runs (`tool -V`).
    pub fn have(tool: &str) -> bool {
        Command::new(tool).arg("-V").output().is_ok()
    }

    /// An image made by mke2fs: its path and its bytes at creation.
    pub struct Image {
        /// The image file.
        pub path: PathBuf,
        /// Its contents.
        pub bytes: Vec<u8>,
    }

    impl Drop for Image {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// `mke2fs -q -F <opts>` on a new `size`-byte file; `None` (with a message) without
    /// mke2fs, dumpe2fs or debugfs.
    pub fn mkfs(opts: &str, size: u64) -> Option<Image> {
        if !(have("mke2fs") && have("dumpe2fs") && have("debugfs")) {
            eprintln!("skipping: e2fsprogs (mke2fs, dumpe2fs, debugfs) not installed");
            return None;
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("e4fuzz-fmt-a-{}-{n}.img", std::process::id());
        let path = std::env::temp_dir().join(name);
        let file = std::fs::File::create(&path).expect("create image");
        file.set_len(size).expect("size image");
        let out = Command::new("mke2fs")
            .args(["-q", "-F"])
            .args(opts.split_whitespace())
            .arg(&path)
            .output()
            .expect("run mke2fs");
        let mut img = Image {
            path,
            bytes: Vec::new(),
        };
        assert!(out.status.success(), "mke2fs {opts}: {out:?}");
        img.bytes = std::fs::read(&img.path).expect("read image");
        Some(img)
    }

    impl Image {
        /// Run `tool args... image` and return its stdout.
        pub fn run(&self, tool: &str, args: &[&str]) -> String {
            let out = Command::new(tool)
                .args(args)
                .arg(&self.path)
                .output()
                .expect(tool);
            assert!(out.status.success(), "{tool} {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        /// `dumpe2fs -h` as key → value.
        pub fn dumpe2fs_h(&self) -> BTreeMap<String, String> {
            let text = self.run("dumpe2fs", &["-h"]);
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect()
        }

        /// The primary superblock.
        pub fn sb(&self) -> Superblock {
            let off = SUPERBLOCK_OFFSET as usize;
            Superblock::parse(&self.bytes[off..off + SUPERBLOCK_SIZE]).expect("superblock")
        }

        /// Block `blk`.
        pub fn block(&self, sb: &Superblock, blk: u64) -> &[u8] {
            let bs = sb.block_size() as usize;
            &self.bytes[blk as usize * bs..(blk as usize + 1) * bs]
        }

        /// The primary descriptor table bytes.
        pub fn gdt_bytes(&self, sb: &Superblock) -> &[u8] {
            let bs = sb.block_size() as usize;
            let start = sb.gdt_block(0) as usize * bs;
            &self.bytes[start..start + sb.gdt_blocks() as usize * bs]
        }

        /// The parsed primary descriptor table.
        pub fn descs(&self, sb: &Superblock) -> Vec<GroupDesc> {
            parse_table(sb, self.gdt_bytes(sb)).expect("descriptor table")
        }

        /// The on-disk record of inode `ino`.
        pub fn inode_bytes(&self, sb: &Superblock, ino: u32) -> &[u8] {
            let descs = self.descs(sb);
            let (g, i) = (
                (ino - 1) / sb.s_inodes_per_group,
                (ino - 1) % sb.s_inodes_per_group,
            );
            let isz = sb.inode_size() as usize;
            let off = descs[g as usize].bg_inode_table as usize * sb.block_size() as usize
                + i as usize * isz;
            &self.bytes[off..off + isz]
        }
    }

    /// One group as `dumpe2fs` prints it.
    #[derive(Debug, Default)]
    pub struct DumpGroup {
        /// "(Blocks A-B)".
        pub blocks: (u64, u64),
        /// "csum 0x…" of the descriptor.
        pub csum: Option<u64>,
        /// The bracketed flags.
        pub flags: String,
        /// "superblock at" present.
        pub has_super: bool,
        /// "Group descriptors at A-B".
        pub gdt: Option<(u64, u64)>,
        /// "Block bitmap at N", its "csum 0x…".
        pub block_bitmap: (u64, Option<u64>),
        /// "Inode bitmap at N", its "csum 0x…".
        pub inode_bitmap: (u64, Option<u64>),
        /// "Inode table at A-B".
        pub itable: (u64, u64),
        /// free blocks, free inodes, directories, unused inodes.
        pub counts: [u64; 4],
    }

    /// Parse a number (decimal or 0x-hex) at the start of `s`.
    pub fn num(s: &str) -> u64 {
        let s = s.trim_start();
        if let Some(h) = s.strip_prefix("0x") {
            let end = h.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(h.len());
            return u64::from_str_radix(&h[..end], 16).expect("hex");
        }
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        s[..end].parse().expect("number")
    }

    /// The number after the first `key` in `line`.
    pub fn after(line: &str, key: &str) -> Option<u64> {
        line.find(key).map(|i| num(&line[i + key.len()..]))
    }

    /// "A-B" after `key`.
    fn range(line: &str, key: &str) -> Option<(u64, u64)> {
        let i = line.find(key)? + key.len();
        let a = num(&line[i..]);
        let rest = &line[i..];
        let dash = rest.find('-')?;
        Some((a, num(&rest[dash + 1..])))
    }

    /// Every group of the full `dumpe2fs` output.
    pub fn dump_groups(img: &Image) -> Vec<DumpGroup> {
        let mut groups: Vec<DumpGroup> = Vec::new();
        for line in img.run("dumpe2fs", &[]).lines() {
            if line.starts_with("Group ") && line.contains("(Blocks ") {
                let flags = line
                    .find('[')
                    .map(|i| line[i..].to_string())
                    .unwrap_or_default();
                let blocks = range(line, "(Blocks ").expect("group range");
                let csum = after(line, "csum ");
                groups.push(DumpGroup {
                    blocks,
                    csum,
                    flags,
                    ..DumpGroup::default()
                });
                continue;
            }
            let Some(g) = groups.last_mut() else { continue };
            g.has_super |= line.contains("superblock at");
            g.gdt = g.gdt.or(range(line, "Group descriptors at "));
            if let Some(b) = after(line, "Block bitmap at ") {
                g.block_bitmap = (b, after(line, "csum "));
            }
            if let Some(b) = after(line, "Inode bitmap at ") {
                g.inode_bitmap = (b, after(line, "csum "));
            }
            if let Some(r) = range(line, "Inode table at ") {
                g.itable = r;
            }
            if line.contains(" free blocks, ") {
                let f: Vec<u64> = line.split(", ").map(num).collect();
                g.counts = [f[0], f[1], f[2], *f.get(3).unwrap_or(&0)];
            }
        }
        groups
    }

    /// xorshift64 with a fixed seed: deterministic pseudo-random test data.
    pub struct XorShift(pub u64);

    impl XorShift {
        /// The next 64 random bits.
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A value in `0..n` (n > 0).
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// `len` random bytes.
        pub fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{dump_groups, mkfs, XorShift};
    use super::*;

    /// The images of the brief: metadata_csum 1 KiB / 4 KiB, gdt_csum, ext3, 32-byte descs.
    const IMAGES: &[(&str, u64)] = &[
        ("-t ext4 -b 1024", 16 << 20),
        ("-t ext4 -b 4096", 16 << 20),
        ("-t ext4 -O ^metadata_csum,uninit_bg", 16 << 20),
        ("-t ext3", 16 << 20),
        ("-t ext4 -O ^64bit", 16 << 20),
        ("-t ext4 -b 1024", 64 << 20),
        ("-t ext4 -O metadata_csum_seed -b 1024", 16 << 20),
        ("-t ext4 -b 1024 -O ^sparse_super,^resize_inode", 64 << 20),
        (
            "-t ext4 -b 1024 -O sparse_super2 -E num_backup_sb=1",
            64 << 20,
        ),
        (
            "-t ext4 -b 4096 -g 1024 -O sparse_super2 -E num_backup_sb=2",
            64 << 20,
        ),
    ];

    #[test]
    fn real_descriptors_parse_verify_round_trip_and_match_dumpe2fs() {
        for &(opts, size) in IMAGES {
            let Some(img) = mkfs(opts, size) else { return };
            let sb = img.sb();
            let descs = img.descs(&sb);
            let dump = dump_groups(&img);
            assert_eq!(descs.len(), dump.len(), "{opts}");
            assert_eq!(dump[0].gdt.map(|r| r.0), Some(sb.gdt_block(0)), "{opts}");
            let table = img.gdt_bytes(&sb);
            for (g, (gd, d)) in (0u32..).zip(descs.iter().zip(&dump)) {
                let ds = sb.desc_size();
                let on_disk = &table[g as usize * ds..(g as usize + 1) * ds];
                assert_eq!(gd.to_bytes(ds), on_disk, "{opts} group {g}");
                gd.verify(&sb, g).unwrap();
                let want_csum = d.csum.map(|c| c as u16).unwrap_or(0);
                assert_eq!(
                    group_desc_csum(&sb, g, on_disk),
                    want_csum,
                    "{opts} group {g}"
                );
                let first = sb.group_first_block(g);
                let last = first + u64::from(sb.blocks_in_group(g)) - 1;
                assert_eq!((first, last), d.blocks, "{opts} group {g}");
                assert_eq!(sb.group_of_block(last), g, "{opts} group {g}");
                assert_eq!(sb.bg_has_super(g), d.has_super, "{opts} group {g}");
                let gdt_last = first + u64::from(sb.bg_num_gdb(g));
                let gdt = sb.bg_has_super(g).then_some((first + 1, gdt_last));
                assert_eq!(gdt, d.gdt, "{opts} group {g}");
                assert_eq!(gd.bg_block_bitmap, d.block_bitmap.0, "{opts} group {g}");
                assert_eq!(gd.bg_inode_bitmap, d.inode_bitmap.0, "{opts} group {g}");
                assert_eq!(gd.bg_inode_table, d.itable.0, "{opts} group {g}");
                let itb = u64::from(sb.itable_blocks());
                assert_eq!(gd.bg_inode_table + itb - 1, d.itable.1, "{opts} group {g}");
                let counts = [
                    gd.bg_free_blocks_count,
                    gd.bg_free_inodes_count,
                    gd.bg_used_dirs_count,
                    gd.bg_itable_unused,
                ];
                assert_eq!(counts.map(u64::from), d.counts, "{opts} group {g}");
                let uninit = gd.bg_flags & EXT4_BG_INODE_UNINIT != 0;
                assert_eq!(uninit, d.flags.contains("INODE_UNINIT"), "{opts} group {g}");
            }
            check_descriptors(&sb, &descs).unwrap();
            let mut copy = table.to_vec();
            copy.iter_mut().for_each(|b| *b = !*b);
            write_table(&sb, &descs, &mut copy);
            let n = descs.len() * sb.desc_size();
            assert_eq!(copy[..n], table[..n], "{opts}");
            assert!(
                copy[n..].iter().all(|&b| b == 0xFF),
                "{opts}: bytes past the table"
            );
        }
    }

    #[test]
    fn checksum_kinds_follow_the_features() {
        let Some(csum) = mkfs("-t ext4 -b 1024", 16 << 20) else {
            return;
        };
        let Some(crc16) = mkfs("-t ext4 -O ^metadata_csum,uninit_bg", 16 << 20) else {
            return;
        };
        let Some(none) = mkfs("-t ext3", 16 << 20) else {
            return;
        };
        for img in [&csum, &crc16] {
            let sb = img.sb();
            let mut descs = img.descs(&sb);
            descs[1].bg_free_inodes_count -= 1;
            let err = descs[1].verify(&sb, 1).unwrap_err();
            assert_eq!(err, Error::Corrupt(CorruptKind::GroupDescriptorChecksum(1)));
            assert_eq!(
                check_descriptors(&sb, &descs).unwrap_err(),
                Error::Corrupt(CorruptKind::GroupDescriptorChecksum(1))
            );
            // The same descriptor verifies as group 0 only by accident: the group is hashed.
            let d0 = img.descs(&sb)[0].clone();
            assert!(d0.verify(&sb, 1).is_err());
            descs[1].csum_set(&sb, 1);
            descs[1].verify(&sb, 1).unwrap();
        }
        let sb = none.sb();
        let mut gd = none.descs(&sb)[0].clone();
        gd.bg_checksum = 0x1234;
        gd.verify(&sb, 0).unwrap();
        gd.csum_set(&sb, 0);
        assert_eq!(
            gd.bg_checksum, 0x1234,
            "no descriptor checksums: left alone"
        );
        assert_eq!(group_desc_csum(&sb, 0, &gd.to_bytes(32)), 0);
    }

    #[test]
    fn check_descriptors_rejects_misplaced_metadata() {
        let Some(img) = mkfs("-t ext4 -b 1024 -O ^flex_bg", 64 << 20) else {
            return;
        };
        let sb = img.sb();
        let good = img.descs(&sb);
        check_descriptors(&sb, &good).unwrap();
        type Mutation = fn(&mut GroupDesc, &Superblock);
        let cases: [(usize, Mutation, &str); 5] = [
            (0, |gd, _| gd.bg_block_bitmap = 1, "bg_block_bitmap"),
            (0, |gd, _| gd.bg_inode_bitmap = 2, "bg_inode_bitmap"),
            (
                2,
                |gd, sb| gd.bg_block_bitmap = sb.group_first_block(3),
                "bg_block_bitmap",
            ),
            (1, |gd, _| gd.bg_inode_bitmap = 0, "bg_inode_bitmap"),
            (
                7,
                |gd, sb| gd.bg_inode_table = sb.s_blocks_count - 2,
                "bg_inode_table",
            ),
        ];
        for (g, mutate, field) in cases {
            let mut descs = good.clone();
            mutate(&mut descs[g], &sb);
            descs[g].csum_set(&sb, g as u32);
            let want = CorruptKind::GroupDescriptor {
                group: g as u32,
                field,
            };
            assert_eq!(check_descriptors(&sb, &descs), Err(Error::Corrupt(want)));
        }
    }

    #[test]
    fn narrow_descriptors_ignore_hi_halves() {
        let mut rng = XorShift(0x5EED_0001);
        let b = rng.bytes(64);
        let wide = GroupDesc::parse(&b, 64).unwrap();
        let narrow = GroupDesc::parse(&b, 32).unwrap();
        assert_eq!(narrow.bg_block_bitmap, u64::from(read_u32le(&b, 0)));
        assert_eq!(wide.bg_block_bitmap >> 32, u64::from(read_u32le(&b, 0x20)));
        assert_eq!(narrow.bg_inode_bitmap_csum, u32::from(read_u16le(&b, 0x1A)));
        assert_eq!(
            wide.bg_inode_bitmap_csum >> 16,
            u32::from(read_u16le(&b, 0x3A))
        );
        assert_eq!(narrow.bg_itable_unused, u32::from(read_u16le(&b, 0x1C)));
        assert_eq!(wide.bg_itable_unused >> 16, u32::from(read_u16le(&b, 0x32)));
        assert_eq!(wide.to_bytes(64), b);
        assert_eq!(narrow.to_bytes(32), b[..32]);
        assert_eq!(GroupDesc::new(64).to_bytes(64), vec![0; 64]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_round_trip() {
        let mut rng = XorShift(0xD15C_0DE5);
        for _ in 0..3000 {
            let len = rng.below(140) as usize;
            let b = rng.bytes(len);
            let ds = [0, 16, 31, 32, 48, 64, 128][rng.below(7) as usize];
            match GroupDesc::parse(&b, ds) {
                Ok(gd) => assert_eq!(gd.to_bytes(ds), b[..ds]),
                Err(e) => {
                    assert!(ds < 32 || len < ds);
                    let what = "group descriptor";
                    assert_eq!(e, Error::Corrupt(CorruptKind::Truncated { what }));
                }
            }
        }
        let mut sb = Superblock::new();
        (
            sb.s_blocks_count,
            sb.s_blocks_per_group,
            sb.s_first_data_block,
        ) = (40000, 8192, 0);
        assert_eq!(sb.groups_count(), 5);
        let what = "group descriptor table";
        let err = Err(Error::Corrupt(CorruptKind::Truncated { what }));
        assert_eq!(parse_table(&sb, &[0u8; 159]), err);
        assert_eq!(parse_table(&sb, &[0u8; 160]).unwrap().len(), 5);
    }
}
