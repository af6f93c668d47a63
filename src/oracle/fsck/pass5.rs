//! Pass 5: group summaries (model of `e2fsck_pass5()`, e2fsck/pass5.c, over the bitmaps as
//! libext2fs's `read_bitmaps()` presents them).
//!
//! The on-disk bitmaps are read as libext2fs reads them: a group with descriptor checksums,
//! `BLOCK_UNINIT` (resp. `INODE_UNINIT`) and a valid descriptor checksum has an all-clear
//! bitmap, and every `BLOCK_UNINIT` group then gets its superblock, descriptors, bitmaps and
//! inode table marked. Each block from `s_first_data_block` and each inode is compared with
//! what passes 1 to 4 found in use; a run of differences of one kind is one problem. The free
//! and directory counts are counted from the on-disk bitmaps (as e2fsck does when it may not
//! fix them) and compared with the descriptors and the superblock. Also, as e2fsck 1.47 does:
//! the padding of the last block bitmap past `s_blocks_count`, the tail of every bitmap block
//! read (bytes past `s_clusters_per_group / 8` and `s_inodes_per_group / 8` must be 0xFF),
//! and the bitmap checksums of the groups not marked uninitialized. Padding problems are
//! reported once per kind.

use super::bits::Bits;
use super::{Fsck, Problem, ProblemCode as P};
use crate::format::bitmap::{self, block_bitmap_csum_verify, inode_bitmap_csum_verify};
use crate::format::group_desc::{EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT};
use std::collections::BTreeSet;

/// Which way an in-memory map and an on-disk bitmap differ.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Diff {
    /// Marked in the bitmap, not in use (`-`).
    Unused,
    /// In use, not marked (`+`).
    Used,
}

/// What reading one kind of bitmap found besides the map: padding and checksum problems,
/// reported after the differences, in e2fsck's order.
#[derive(Default)]
struct Read {
    padding: Option<Problem>,
    csums: Vec<Problem>,
}

impl Fsck<'_> {
    /// Pass 5.
    pub(super) fn pass5(&mut self) {
        let (blocks, block_read) = self.read_block_bitmaps();
        self.check_block_bitmap(&blocks);
        let (inodes, inode_read) = self.read_inode_bitmaps();
        self.check_inode_bitmap(&inodes);
        self.problems.extend(inode_read.padding);
        self.problems.extend(block_read.padding);
        self.problems.extend(inode_read.csums);
        self.problems.extend(block_read.csums);
    }

    /// Whether group `g`'s bitmap of kind `flag` reads as all clear (libext2fs's rule).
    fn uninit(&self, g: u32, flag: u16) -> bool {
        let gd = &self.descs[g as usize];
        self.gdt_csum() && gd.bg_flags & flag != 0 && gd.verify(&self.sb, g).is_ok()
    }

    /// The block bitmaps as one map over the filesystem. Padding: the bits of the last group
    /// past `s_blocks_count` (`check_block_end()`), and in every bitmap read the bytes past
    /// `s_clusters_per_group / 8` (libext2fs's `EXT2_FLAG_BBITMAP_TAIL_PROBLEM`). Checksums
    /// are those of the bitmaps as libext2fs holds them, uninitialized groups' metadata marked.
    fn read_block_bitmaps(&mut self) -> (Bits, Read) {
        let mut map = Bits::new(self.nr_blocks);
        let cpg = u64::from(self.sb.s_clusters_per_group);
        let mut read = Read::default();
        let mut bufs = Vec::with_capacity(self.descs.len());
        for g in 0..self.sb.groups_count() {
            let first = self.sb.group_first_block(g);
            let loc = self.descs[g as usize].bg_block_bitmap;
            let on_disk = !self.uninit(g, EXT4_BG_BLOCK_UNINIT) && loc < self.nr_blocks;
            let buf = if on_disk {
                self.block(loc).to_vec()
            } else {
                vec![0; self.bs as usize]
            };
            let used = (self.nr_blocks - first).min(cpg);
            map.set_from_bitmap(first, &buf, used);
            let tail = if on_disk { buf.len() * 8 } else { cpg as usize };
            let tail = u32::try_from(tail).unwrap_or(u32::MAX);
            if let Some(i) = bitmap::find_next_zero_bit(&buf, used as u32, tail) {
                let msg = format!("padding at end of block bitmap is not set (group {g}, bit {i})");
                let p = Problem::new(P::PR_5_BLOCK_BMAP_PADDING, msg)
                    .group(g)
                    .blk(loc);
                read.padding = read.padding.or(Some(p));
            }
            bufs.push(buf);
        }
        for g in 0..self.sb.groups_count() {
            if self.descs[g as usize].bg_flags & EXT4_BG_BLOCK_UNINIT != 0 {
                self.mark_uninit_group(&mut map, g);
            }
        }
        for (g, mut buf) in (0u32..).zip(bufs) {
            let gd = &self.descs[g as usize];
            if gd.bg_flags & EXT4_BG_BLOCK_UNINIT != 0 {
                continue;
            }
            let first = self.sb.group_first_block(g);
            let used = (self.nr_blocks - first).min(cpg);
            map.or_into_bitmap(first, used, &mut buf);
            if block_bitmap_csum_verify(&self.sb, g, gd, &buf).is_err() {
                let csum = gd.bg_block_bitmap_csum;
                let msg = format!("block bitmap checksum {csum:#x} does not match");
                read.csums
                    .push(Problem::new(P::PR_5_BLOCK_BITMAP_CSUM_INVALID, msg).group(g));
            }
        }
        (map, read)
    }

    /// Model of `mark_uninit_bg_group_blocks()` for group `g`.
    fn mark_uninit_group(&self, map: &mut Bits, g: u32) {
        if self.sb.bg_has_super(g) {
            let first = self.sb.group_first_block(g);
            let gdt = u64::from(self.sb.gdt_blocks()) + u64::from(self.sb.s_reserved_gdt_blocks);
            (first..=first + gdt).for_each(|b| {
                map.set(b);
            });
        }
        let gd = &self.descs[g as usize];
        let itb = u64::from(self.sb.itable_blocks());
        if gd.bg_inode_table != 0 {
            (gd.bg_inode_table..gd.bg_inode_table.saturating_add(itb)).for_each(|b| {
                map.set(b);
            });
        }
        for loc in [gd.bg_block_bitmap, gd.bg_inode_bitmap] {
            if loc != 0 {
                map.set(loc);
            }
        }
    }

    /// Model of `check_block_bitmaps()`: differences, then the free counts.
    fn check_block_bitmap(&mut self, bitmap: &Bits) {
        let first = u64::from(self.sb.s_first_data_block);
        let diffs: Vec<(Diff, u64)> = self
            .found
            .differences(bitmap, first, self.nr_blocks)
            .map(|b| {
                (
                    if self.found.test(b) {
                        Diff::Used
                    } else {
                        Diff::Unused
                    },
                    b,
                )
            })
            .collect();
        self.problems.extend(diff_problems(&diffs, false));
        let mut total = 0;
        for g in 0..self.sb.groups_count() {
            let start = self.sb.group_first_block(g);
            let len = u64::from(self.sb.blocks_in_group(g));
            let counted = len - bitmap.count(start, start + len);
            total += counted;
            let stored = u64::from(self.descs[g as usize].bg_free_blocks_count);
            if stored != counted {
                let msg =
                    format!("free blocks count wrong for group #{g} ({stored}, counted={counted})");
                self.report(Problem::new(P::PR_5_FREE_BLOCK_COUNT_GROUP, msg).group(g));
            }
        }
        if total != self.sb.s_free_blocks_count {
            let msg = format!(
                "free blocks count wrong ({}, counted={total})",
                self.sb.s_free_blocks_count
            );
            self.report(Problem::new(P::PR_5_FREE_BLOCK_COUNT, msg));
        }
    }

    /// The inode bitmaps as one map over the inodes (bit `ino - 1`). Padding: in every bitmap
    /// read, the bytes past `s_inodes_per_group / 8` (`EXT2_FLAG_IBITMAP_TAIL_PROBLEM`).
    fn read_inode_bitmaps(&mut self) -> (Bits, Read) {
        let ipg = self.sb.s_inodes_per_group;
        let mut map = Bits::new(u64::from(self.sb.s_inodes_count));
        let mut read = Read::default();
        for g in 0..self.sb.groups_count() {
            let gd = self.descs[g as usize].clone();
            let loc = gd.bg_inode_bitmap;
            if self.uninit(g, EXT4_BG_INODE_UNINIT) {
                continue;
            }
            let buf = if loc < self.nr_blocks {
                self.block(loc).to_vec()
            } else {
                vec![0; self.bs as usize]
            };
            map.set_from_bitmap(u64::from(g * ipg), &buf, u64::from(ipg));
            let bits = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
            let pad = bitmap::find_next_zero_bit(&buf, ipg, bits);
            if let (Some(i), true) = (pad, loc < self.nr_blocks) {
                let msg = format!("padding at end of inode bitmap is not set (group {g}, bit {i})");
                let p = Problem::new(P::PR_5_INODE_BMAP_PADDING, msg)
                    .group(g)
                    .blk(loc);
                read.padding = read.padding.or(Some(p));
            }
            let check = gd.bg_flags & EXT4_BG_INODE_UNINIT == 0;
            if check && inode_bitmap_csum_verify(&self.sb, g, &gd, &buf).is_err() {
                let csum = gd.bg_inode_bitmap_csum;
                let msg = format!("inode bitmap checksum {csum:#x} does not match");
                read.csums
                    .push(Problem::new(P::PR_5_INODE_BITMAP_CSUM_INVALID, msg).group(g));
            }
        }
        (map, read)
    }

    /// Model of `check_inode_bitmaps()`: differences, then the free and directory counts.
    fn check_inode_bitmap(&mut self, bitmap: &Bits) {
        let ipg = u64::from(self.sb.s_inodes_per_group);
        let count = u64::from(self.sb.s_inodes_count);
        let mut diffs: Vec<(Diff, u64)> = Vec::new();
        let mut uninit_reported = BTreeSet::new();
        let differing: Vec<u64> = self.used.differences(bitmap, 0, count).collect();
        for i in differing {
            let actual = self.used.test(i);
            diffs.push((if actual { Diff::Used } else { Diff::Unused }, i + 1));
            let g = (i / ipg) as u32;
            let flags = self.descs[g as usize].bg_flags;
            let skip = self.gdt_csum() && flags & EXT4_BG_INODE_UNINIT != 0;
            if actual && skip && uninit_reported.insert(g) {
                let msg = format!(
                    "inode {} in use, but group {g} is marked INODE_UNINIT",
                    i + 1
                );
                self.report(Problem::new(P::PR_5_INODE_UNINIT, msg).group(g));
            }
        }
        self.problems.extend(diff_problems(&diffs, true));
        let mut dirs = vec![0u64; self.descs.len()];
        for &ino in self.dirs.keys() {
            if bitmap.test(u64::from(ino) - 1) {
                dirs[((u64::from(ino) - 1) / ipg) as usize] += 1;
            }
        }
        let mut total = 0;
        for (g, gd) in self.descs.iter().enumerate() {
            let start = g as u64 * ipg;
            let free = ipg - bitmap.count(start, start + ipg);
            total += free;
            let counts = [
                (
                    P::PR_5_FREE_INODE_COUNT_GROUP,
                    "free inodes",
                    gd.bg_free_inodes_count,
                    free,
                ),
                (
                    P::PR_5_FREE_DIR_COUNT_GROUP,
                    "directories",
                    gd.bg_used_dirs_count,
                    dirs[g],
                ),
            ];
            for (code, what, stored, counted) in counts {
                if u64::from(stored) != counted {
                    let msg =
                        format!("{what} count wrong for group #{g} ({stored}, counted={counted})");
                    self.problems.push(Problem::new(code, msg).group(g as u32));
                }
            }
        }
        if total != u64::from(self.sb.s_free_inodes_count) {
            let msg = format!(
                "free inodes count wrong ({}, counted={total})",
                self.sb.s_free_inodes_count
            );
            self.report(Problem::new(P::PR_5_FREE_INODE_COUNT, msg));
        }
    }
}

/// One problem per run of consecutive differences of one kind, in order
/// (`print_bitmap_problem()`): `-N`, `-(N--M)`, `+N`, `+(N--M)`.
fn diff_problems(diffs: &[(Diff, u64)], inodes: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < diffs.len() {
        let (kind, start) = diffs[i];
        let mut end = start;
        while diffs
            .get(i + 1)
            .is_some_and(|&(k, n)| k == kind && n == end + 1)
        {
            end += 1;
            i += 1;
        }
        i += 1;
        let code = match (inodes, kind, start == end) {
            (false, Diff::Unused, true) => P::PR_5_BLOCK_UNUSED,
            (false, Diff::Unused, false) => P::PR_5_BLOCK_RANGE_UNUSED,
            (false, Diff::Used, true) => P::PR_5_BLOCK_USED,
            (false, Diff::Used, false) => P::PR_5_BLOCK_RANGE_USED,
            (true, Diff::Unused, true) => P::PR_5_INODE_UNUSED,
            (true, Diff::Unused, false) => P::PR_5_INODE_RANGE_UNUSED,
            (true, Diff::Used, true) => P::PR_5_INODE_USED,
            (true, Diff::Used, false) => P::PR_5_INODE_RANGE_USED,
        };
        let sign = if kind == Diff::Used { '+' } else { '-' };
        let range = if start == end {
            format!("{sign}{start}")
        } else {
            format!("{sign}({start}--{end})")
        };
        let what = if inodes { "inode" } else { "block" };
        let p = Problem::new(code, format!("{what} bitmap differences: {range}"));
        out.push(if inodes {
            p.ino(start as u32)
        } else {
            p.blk(start)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Ino, Pblk};

    #[test]
    fn differences_become_runs_of_one_kind() {
        use Diff::*;
        let diffs = [
            (Unused, 5),
            (Unused, 6),
            (Unused, 7),
            (Used, 8),
            (Unused, 10),
            (Used, 11),
        ];
        let got: Vec<(P, u64, String)> = diff_problems(&diffs, false)
            .into_iter()
            .map(|p| (p.code, p.blk.unwrap().0, p.msg))
            .collect();
        let msg = |s: &str| format!("block bitmap differences: {s}");
        assert_eq!(
            got,
            [
                (P::PR_5_BLOCK_RANGE_UNUSED, 5, msg("-(5--7)")),
                (P::PR_5_BLOCK_USED, 8, msg("+8")),
                (P::PR_5_BLOCK_UNUSED, 10, msg("-10")),
                (P::PR_5_BLOCK_USED, 11, msg("+11")),
            ]
        );
        let inodes = diff_problems(&[(Used, 12), (Used, 13)], true);
        assert_eq!(inodes.len(), 1);
        assert_eq!(
            (inodes[0].code, inodes[0].ino),
            (P::PR_5_INODE_RANGE_USED, Some(Ino(12)))
        );
        assert_eq!(inodes[0].blk, None::<Pblk>);
        assert_eq!(
            diff_problems(&[(Unused, 3)], true)[0].code,
            P::PR_5_INODE_UNUSED
        );
    }
}
