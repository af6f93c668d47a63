//! Model of ext4_ind_remove_space() (fs/ext4/indirect.c): free the blocks of an
//! indirect-mapped file in `[start, end)` — the block half of punch hole.
//!
//! It reuses the truncate machinery on both ends of the range: [`Fs::find_shared`] on the
//! path to `start` finds what to free *after* the start, on the path to `end` what to free
//! *before* the end (its `p` is stepped forward by one, since `end` itself stays). Three
//! shapes:
//!
//! * both ends among the direct blocks: free `i_data[start..end]`;
//! * the end at a deeper level than the start: clear the start's chain to the end of each of
//!   its blocks, the end's chain from the start of each of its blocks, and free the whole
//!   top-level subtrees strictly between them;
//! * both ends at the same level: clear both chains level by level until they meet in one
//!   block, then free the pointers between them there.
//!
//! # The fixed corner cases (S14)
//!
//! This is the fixed mainline code. 4f579ae7de56 (2014) introduced it with five range bugs
//! that 6f30b7e37a82 (2015) fixed; the seeded bug S14 will bring them back behind a switch.
//! Each fix is one local spot, marked `S14 fix N` in the code:
//!
//! 1. `Fs::punch_end_range`: end's top grows from the inode → `goto do_indirects` (the old
//!    code returned early, leaving whole levels between start and end unfreed).
//! 2. `Fs::punch_end_range`: end's top grows from an indirect block → keep `partial2` (the
//!    old code did `partial2--`, skipping the rest of the shared branch).
//! 3. `Fs::punch_converge`: walk the two chains only when at the same remaining depth
//!    (`depth <= depth2` / `depth2 <= depth`); the old code stepped both every round, so
//!    chains of unequal length missed each other and freed blocks outside the range.
//! 4. `Fs::punch_same_level`: free the start's top unless the end lies inside that subtree
//!    (the old code never freed it).
//! 5. `Fs::punch_same_level`: step the end's `p` forward only when it has no top (the old
//!    code always did, freeing the block at the end).

use crate::error::Result;
use crate::format::indirect::EXT4_NDIR_BLOCKS;
use crate::fs::map::indirect::block_to_path;
use crate::fs::map::indirect::truncate::Shared;
use crate::fs::{Fs, Handle};
use crate::profile::Bug;
use crate::units::{Ino, Lblk};

impl Fs {
    /// Model of ext4_ind_remove_space(): free the blocks of `ino` in `[start, end)` (end
    /// exclusive), with the indirect blocks that end up wholly inside the range. Indirect
    /// blocks that stay but become empty are kept, as in the kernel. `i_blocks` is updated;
    /// the caller marks the inode dirty.
    ///
    /// `end` is limited to `max_block − 1`: ext4_punch_hole() bounds the range to
    /// `s_bitmap_maxbytes − blocksize` (2da376228a24) so that `end` always has a path; the
    /// caller here does not, so the bound is applied at this level.
    ///
    /// With U2 (mainline) a read error on either end's chain is ignored (see
    /// [`Fs::find_shared`]): on the end's chain it can leave blocks inside the range mapped.
    /// Without U2 both chains are read first, so that the error comes before anything is freed.
    pub fn ind_remove_space(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        start: Lblk,
        end: Lblk,
    ) -> Result<()> {
        let max_block = self.ind_max_block();
        let end = u64::from(end.0).min(max_block - 1) as u32;
        if start.0 >= end {
            return Ok(());
        }
        let bs = self.block_size();
        let p1 = block_to_path(bs, start)?;
        let p2 = block_to_path(bs, Lblk(end))?;
        let (n, n2) = (p1.depth, p2.depth);
        assert!(
            n <= n2,
            "the end of a range is never shallower than its start"
        );
        if n == 1 && n2 == 1 {
            // Punching only within the direct blocks.
            return self.free_data(h, ino, None, p1.offsets[0], p2.offsets[0]);
        }
        if n2 > n {
            if !self.bugs.has(Bug::U2) {
                // U2's fix returns find_shared()'s read error; read both ends' chains before
                // freeing anything, so that the error fails the punch with nothing changed
                // (the end's chain is read after the start's part is freed, and the caller
                // marks the inode dirty only on success: an error there would commit the
                // freed blocks' bitmap bits without the inode's cleared pointers).
                if n > 1 {
                    self.find_shared(ino, n, &p1.offsets)?;
                }
                self.find_shared(ino, n2, &p2.offsets)?;
            }
            if n == 1 {
                // Start among the direct blocks: free to the end of that level.
                self.free_data(h, ino, None, p1.offsets[0], EXT4_NDIR_BLOCKS)?;
            } else {
                let sh = self.find_shared(ino, n, &p1.offsets)?;
                if sh.top != 0 {
                    self.free_shared_top(h, ino, &sh, n)?;
                }
                for partial in (1..=sh.partial).rev() {
                    self.clear_start_link(h, ino, &sh, partial, n)?;
                }
            }
            return self.punch_end_range(h, ino, p1.offsets[0], n, &p2.offsets, n2);
        }
        self.punch_same_level(h, ino, &p1.offsets, &p2.offsets, n)
    }

    /// The `end_range:` part of ext4_ind_remove_space() (end deeper than start): clear the
    /// end's chain from the start of each of its blocks up to the end, then free the whole
    /// top-level subtrees between the start's slot `offsets0` (path length `n`) and the end's
    /// (`do_indirects`).
    fn punch_end_range(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        offsets0: usize,
        n: usize,
        offsets2: &[usize; 4],
        n2: usize,
    ) -> Result<()> {
        let s14 = self.bugs.has(Bug::S14);
        let mut sh2 = self.find_shared(ino, n2, offsets2)?;
        if sh2.top != 0 {
            if sh2.partial == 0 {
                // S14 fix 1: the end starts its top-level subtree; nothing before it in that
                // subtree, but the levels in between still go (the old code returned here).
                if s14 {
                    return Ok(());
                }
                return self.free_whole_subtrees(h, ino, offsets0, n, n2);
            }
            // S14 fix 2: the end's top grows from an indirect block — the rest of the shared
            // branch is still cleared below (the old code did `partial2--` here).
            if s14 {
                sh2.partial -= 1;
            }
        } else {
            // find_shared() points at the last pointer a truncate would keep; the end of a
            // punch keeps the pointer after it.
            sh2.chain[sh2.partial].p += 1;
        }
        for partial2 in (1..=sh2.partial).rev() {
            self.clear_end_link(h, ino, &sh2, partial2, n2)?;
        }
        self.free_whole_subtrees(h, ino, offsets0, n, n2)
    }

    /// The `n == n2` part of ext4_ind_remove_space(): both ends at the same level.
    fn punch_same_level(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        offsets: &[usize; 4],
        offsets2: &[usize; 4],
        n: usize,
    ) -> Result<()> {
        let s14 = self.bugs.has(Bug::S14);
        let sh = self.find_shared(ino, n, offsets)?;
        let mut sh2 = self.find_shared(ino, n, offsets2)?;
        // S14 fix 4 (the old code never freed the start's top here).
        if sh.top != 0 && !s14 {
            // S14 fix 4: free the start's top, but only if the end is not inside it.
            let level = sh.partial.min(sh2.partial);
            let subtree = (0..=level).all(|i| offsets[i] == offsets2[i]);
            if !subtree {
                self.free_shared_top(h, ino, &sh, n)?;
            }
        }
        if sh2.top == 0 || s14 {
            // S14 fix 5: only without a top does the end keep the pointer after `p` (the old
            // code stepped past it unconditionally).
            sh2.chain[sh2.partial].p += 1;
        }
        self.punch_converge(h, ino, &sh, &sh2, n)
    }

    /// The convergence loop of ext4_ind_remove_space()'s same-level case: step the chains up
    /// (the start's clearing to the end of each block, the end's from the start of each
    /// block) until both stand in the same block; there free the pointers between them.
    fn punch_converge(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        sh: &Shared,
        sh2: &Shared,
        n: usize,
    ) -> Result<()> {
        let s14 = self.bugs.has(Bug::S14);
        let (mut partial, mut partial2) = (sh.partial, sh2.partial);
        while partial > 0 || partial2 > 0 {
            let depth = n - 1 - partial;
            let depth2 = n - 1 - partial2;
            let (a, b) = (sh.chain[partial], sh2.chain[partial2]);
            if partial > 0 && partial2 > 0 && a.bh == b.bh {
                // Converged on the same block: clear the range, then we are done.
                let bh = a.bh.expect("below the inode");
                return self.free_branches(h, ino, bh, a.p + 1, b.p, depth);
            }
            // S14 fix 3: bring the chains to the same level, then walk them in step.
            // (The old code stepped both chains regardless of their depths.)
            if partial > 0 && (depth <= depth2 || s14) {
                self.clear_start_link(h, ino, sh, partial, n)?;
                partial -= 1;
            }
            if partial2 > 0 && (depth2 <= depth || s14) {
                self.clear_end_link(h, ino, sh2, partial2, n)?;
                partial2 -= 1;
            }
        }
        Ok(())
    }

    /// "Clear the ends of indirect blocks on the shared branch at the start of the range",
    /// one level: free everything after `p` in the block of link `at` of `sh`.
    fn clear_start_link(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        sh: &Shared,
        at: usize,
        n: usize,
    ) -> Result<()> {
        let apb = self.addr_per_block();
        let link = sh.chain[at];
        let bh = link.bh.expect("links below the inode live in blocks");
        self.free_branches(h, ino, bh, link.p + 1, apb, n - 1 - at)
    }

    /// "Clear the ends of indirect blocks on the shared branch at the end of the range", one
    /// level: free everything before `p` in the block of link `at` of `sh2`.
    fn clear_end_link(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        sh2: &Shared,
        at: usize,
        n2: usize,
    ) -> Result<()> {
        let link = sh2.chain[at];
        let bh = link.bh.expect("links below the inode live in blocks");
        self.free_branches(h, ino, bh, 0, link.p, n2 - 1 - at)
    }
}

#[cfg(test)]
mod tests {
    use crate::format::indirect as fi;
    use crate::fs::map::indirect::block_to_path;
    use crate::fs::map::indirect::testutil::{Layout, TestFs};
    use crate::units::{Lblk, Pblk};
    use std::collections::BTreeMap;

    /// Every indirect block of the file with `lblks`, and the logical range it covers, read
    /// straight from the device along each block's path.
    fn coverage(
        t: &mut TestFs,
        ino: crate::units::Ino,
        lblks: &[u32],
    ) -> BTreeMap<u64, (u64, u64)> {
        let bs = t.fs.block_size();
        let apb = u64::from(bs / 4);
        let i_block = t.fs.inode(ino).raw.i_block;
        let mut cov = BTreeMap::new();
        for &l in lblks {
            let p = block_to_path(bs, Lblk(l)).unwrap();
            let (mut base, mut span) = match p.offsets[0] {
                12 => (12, apb),
                13 => (12 + apb, apb * apb),
                14 => (12 + apb + apb * apb, apb * apb * apb),
                _ => continue,
            };
            let mut blk = u64::from(i_block[p.offsets[0]]);
            for &o in &p.offsets[1..p.depth] {
                cov.insert(blk, (base, span));
                span /= apb;
                base += o as u64 * span;
                let raw = t.fs.dev.read_block(Pblk(blk)).unwrap();
                blk = u64::from(fi::get_ptr(&raw, o));
            }
        }
        cov
    }

    /// Build a file with one block at each of `set`, punch `[start, end)`, and check: the
    /// walker sees exactly `set` minus the range, every surviving block where it was, every
    /// indirect block whose range lies inside the punch gone, every one outside it kept,
    /// `i_blocks` exact and no block leaked. Returns the layouts before and after.
    #[track_caller]
    /// The corner cases of the five S14 fixes: (tag, file blocks, punch start, punch end).
    pub(super) fn corner_cases() -> Vec<(&'static str, Vec<u32>, u32, u32)> {
        vec![
            ("s14-1", wide(), 100, T0),
            ("s14-2", wide(), 700, T0 + SUB + 5),
            ("s14-3", wide(), D0 + 1, D0 + 5 * 256),
            (
                "s14-4",
                vec![T0, T0 + SUB + 512 + 7, T0 + 2 * SUB + 1000],
                T0 + SUB + 512,
                T0 + 2 * SUB + 1000,
            ),
        ]
    }

    pub(super) fn punch(t: &mut TestFs, set: &[u32], start: u32, end: u32) -> (Layout, Layout) {
        let ino = t.file_with(set);
        let before = t.layout(ino);
        let cov = coverage(t, ino, set);
        let mut h = t.fs.journal_start(8).unwrap();
        t.fs.remove_space(&mut h, ino, Lblk(start), Lblk(end))
            .unwrap();
        t.fs.mark_inode_dirty(&mut h, ino).unwrap();
        t.fs.journal_stop(h).unwrap();
        let after = t.layout(ino);
        let want: Vec<u32> = set
            .iter()
            .copied()
            .filter(|&l| l < start || l >= end)
            .collect();
        assert_eq!(after.lblks(), want, "punch [{start}, {end})");
        for &l in &want {
            assert_eq!(after.pblk(l), before.pblk(l), "block {l} moved");
        }
        // The last block of the tree is out of reach (see ind_remove_space()).
        let (s, e) = (
            u64::from(start),
            u64::from(end).min(t.fs.ind_max_block() - 1),
        );
        for (&m, &(base, span)) in &cov {
            let inside = base >= s && base + span <= e;
            let outside = base + span <= s || base >= e;
            let kept = after.meta.contains(&m);
            assert!(
                !(inside && kept),
                "map block {m} covering [{base}, +{span}) kept"
            );
            assert!(
                !outside || kept,
                "map block {m} covering [{base}, +{span}) freed"
            );
        }
        t.check_accounting(ino, &after);
        (before, after)
    }

    const D0: u32 = 268;
    const T0: u32 = 65804;
    const SUB: u32 = 65536;

    /// Direct, IND, five DIND subtrees and four TIND subtrees (1 KiB blocks).
    fn wide() -> Vec<u32> {
        vec![
            0,
            3,
            7,
            11,
            12,
            13,
            50,
            100,
            267,
            D0,
            D0 + 1,
            400,
            524,
            700,
            D0 + 1290,
            65803,
            T0,
            T0 + 300,
            T0 + SUB + 5,
            T0 + 2 * SUB + 1000,
        ]
    }

    #[test]
    fn punch_ranges_across_the_map_1k() {
        let Some(mut t) = TestFs::new("punch", 1024) else {
            return;
        };
        let cases: &[(&str, u32, u32)] = &[
            ("inside the direct blocks", 1, 8),
            ("direct blocks up to IND", 3, 12),
            ("crossing direct → IND", 5, 60),
            ("inside one IND block", 13, 101),
            ("exactly the IND subtree", 12, D0),
            ("several DIND subtrees", D0 + 1, D0 + 1291),
            ("exactly one DIND subtree", 524, 780),
            ("ending in TIND", 400, T0 + 301),
            ("from the start to TIND", 0, T0 + 1),
            ("start == end", 50, 50),
            ("past the last block", T0 + 3 * SUB, T0 + 4 * SUB),
            ("past the limit", 16_843_019, u32::MAX),
            ("everything", 0, u32::MAX),
        ];
        for &(what, s, e) in cases {
            eprintln!("case: {what}");
            punch(&mut t, &wide(), s, e);
        }
        let (st, out) = t.save_and_fsck();
        assert_eq!(st, 0, "{out}");
    }

    /// 6f30b7e37a82 fix 1: the end is the first block of TIND and a whole level (DIND) lies
    /// between — it must go (the old code returned early and kept it).
    #[test]
    fn punch_fix1_frees_levels_between_when_end_starts_a_level() {
        let Some(mut t) = TestFs::new("fix1", 1024) else {
            return;
        };
        let (before, after) = punch(&mut t, &wide(), 100, T0);
        assert_eq!(
            before.meta.len() - after.meta.len(),
            5,
            "DIND and its four INDs"
        );
    }

    /// Fix 2: the end is deeper than the start and has a top grown from an indirect block
    /// (TIND[1], since everything before the end in it is a hole); TIND[0] before it must
    /// still be cleared (the old `partial2--` skipped that level).
    #[test]
    fn punch_fix2_clears_the_rest_of_the_end_branch() {
        let Some(mut t) = TestFs::new("fix2", 1024) else {
            return;
        };
        let (_, after) = punch(&mut t, &wide(), 700, T0 + SUB + 5);
        assert_eq!(after.lblks().last(), Some(&(T0 + 2 * SUB + 1000)));
    }

    /// Fix 3: same level, the end's chain shallower (the end starts an IND group): the chains
    /// must meet in the DIND block (the old loop freed IND0 and everything after IND1).
    #[test]
    fn punch_fix3_converges_chains_of_unequal_length() {
        let Some(mut t) = TestFs::new("fix3", 1024) else {
            return;
        };
        let (_, after) = punch(&mut t, &wide(), D0 + 1, D0 + 5 * 256);
        assert!(after.lblks().contains(&D0) && after.lblks().contains(&(D0 + 1290)));
    }

    /// Fixes 4 and 5: same level (TIND); the start's top is DIND_1 (all before the start in
    /// it is a hole) and the end is outside it, so DIND_1 goes whole; the end's top DIND_2
    /// holds the end and stays.
    #[test]
    fn punch_fix4_fix5_tops_of_both_ends() {
        let Some(mut t) = TestFs::new("fix45", 1024) else {
            return;
        };
        let set = [T0, T0 + SUB + 512 + 7, T0 + 2 * SUB + 1000];
        let (before, after) = punch(&mut t, &set, T0 + SUB + 512, T0 + 2 * SUB + 1000);
        // TIND, DIND_0, IND, DIND_1, IND, DIND_2, IND → DIND_1 and its IND are gone.
        assert_eq!(before.meta.len(), 7);
        let gone: Vec<u64> = before
            .meta
            .iter()
            .copied()
            .filter(|m| !after.meta.contains(m))
            .collect();
        assert_eq!(gone, before.meta[3..5]);
        // The mirror image: the end's top is inside the start's top, which must stay.
        let set = [T0 + 7, T0 + 300];
        let (before, after) = punch(&mut t, &set, T0, T0 + 300);
        assert_eq!(before.meta.len(), 4, "TIND, DIND_0, two INDs");
        assert_eq!(
            after.meta.len(),
            3,
            "the first IND went, TIND and DIND_0 stay"
        );
        let (st, out) = t.save_and_fsck();
        assert_eq!(st, 0, "{out}");
    }

    #[test]
    fn punch_ranges_4k() {
        let Some(mut t) = TestFs::new("punch4k", 4096) else {
            return;
        };
        let (d0, t0, sub) = (12 + 1024, 12 + 1024 + 1024 * 1024, 1024 * 1024);
        let set = vec![
            0,
            11,
            12,
            500,
            1035,
            d0,
            d0 + 1023,
            d0 + 1024 * 3 + 1,
            t0,
            t0 + sub + 2,
        ];
        for (s, e) in [
            (5, 13),
            (12, d0),
            (d0 + 1, d0 + 1024 * 3 + 1),
            (600, t0),
            (d0 + 1024, t0 + sub + 2),
            (1, u32::MAX),
        ] {
            punch(&mut t, &set, s, e);
        }
        let (st, out) = t.save_and_fsck();
        assert_eq!(st, 0, "{out}");
    }
}

#[cfg(test)]
mod s14_tests {
    //! The S14 switch re-introduces the pre-6f30b7e37a82 ext4_ind_remove_space(): the corner
    //! cases that the fixes address then punch the wrong blocks, which the independent walk of
    //! the map, the freed-block check and the accounting check (in `tests::punch`) observe.
    use super::tests::{corner_cases, punch};
    use crate::fs::map::indirect::testutil::TestFs;
    use crate::profile::{Bug, BugSet};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    #[test]
    fn s14_switch_punches_the_wrong_blocks_in_the_fixed_corner_cases() {
        let (mut wrong, mut total) = (0, 0);
        for (tag, set, start, end) in corner_cases() {
            let Some(mut t) = TestFs::new(tag, 1024) else {
                return;
            };
            t.fs.bugs = BugSet::of(&[Bug::S14]);
            total += 1;
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let r = catch_unwind(AssertUnwindSafe(|| punch(&mut t, &set, start, end)));
            std::panic::set_hook(hook);
            wrong += usize::from(r.is_err());
        }
        assert!(
            wrong >= 3,
            "only {wrong} of {total} corner cases went wrong with S14"
        );
        // And without the switch every one of them is right (the `tests` module checks each).
        for (tag, set, start, end) in corner_cases() {
            let Some(mut t) = TestFs::new(tag, 1024) else {
                return;
            };
            punch(&mut t, &set, start, end);
        }
    }
}
