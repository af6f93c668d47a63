//! Pass 0: the superblock, the group descriptors and the journal (models of e2fsck's
//! `check_super_block()` in e2fsck/super.c and `e2fsck_check_ext3_journal()` in
//! e2fsck/journal.c). What makes the image unreadable was refused by `Fsck::open`; here every
//! finding is a problem and checking goes on.

use super::{Fsck, Problem, ProblemCode as P};
use crate::error::{CorruptKind, Error};
use crate::format::blockmap::{self, WalkCtx};
use crate::format::group_desc::{EXT4_BG_BLOCK_UNINIT, EXT4_BG_INODE_UNINIT};
use crate::format::indirect::{self, EXT4_DIND_BLOCK, EXT4_N_BLOCKS};
use crate::format::inode::{
    Inode, EXT4_EXTENTS_FL, EXT4_GOOD_OLD_INODE_SIZE, EXT4_RESIZE_INO, S_IFREG,
};
use crate::format::jbd2::{
    JournalSuperblock, JBD2_KNOWN_INCOMPAT_FEATURES, JBD2_MIN_JOURNAL_BLOCKS,
};
use crate::format::superblock::*;
use crate::units::{Ino, Pblk};

impl Fsck<'_> {
    /// Pass 0.
    pub(super) fn pass0(&mut self) {
        self.check_super();
        for g in 0..self.sb.groups_count() {
            self.check_desc(g);
        }
        if let Some(p) = self.check_desc_layout() {
            self.report(p);
        }
        self.check_resize_inode();
        self.check_journal();
    }

    /// Model of `check_resize_inode()` (e2fsck/super.c): without the feature, no reserved GDT
    /// blocks and a clear inode 7; with it, only the DIND pointer, which lists the reserved
    /// GDT blocks, each listing its backups in the groups with a superblock. Like e2fsck, only
    /// the first quarter of the reserved blocks is checked.
    fn check_resize_inode(&mut self) {
        let sb = &self.sb;
        let feature = sb.has_compat(EXT4_FEATURE_COMPAT_RESIZE_INODE);
        if !feature && sb.s_reserved_gdt_blocks != 0 {
            let msg = format!("s_reserved_gdt_blocks is {}", sb.s_reserved_gdt_blocks);
            self.report(Problem::new(P::PR_0_NONZERO_RESERVED_GDT_BLOCKS, msg));
        }
        let Some(inode) = self.read_inode(EXT4_RESIZE_INO) else {
            return;
        };
        let p = |code: P, msg: &str| Problem::new(code, msg).ino(EXT4_RESIZE_INO);
        if !feature {
            if inode.i_block.iter().any(|&b| b != 0) {
                self.report(p(P::PR_0_CLEAR_RESIZE_INODE, "resize inode is not clear"));
            }
            return;
        }
        if !self.resize_inode_valid(&inode) {
            self.report(p(P::PR_0_RESIZE_INODE_INVALID, "resize inode not valid"));
        }
    }

    /// The structure `check_resize_inode()` expects of inode 7.
    fn resize_inode_valid(&mut self, inode: &Inode) -> bool {
        let dind = u64::from(inode.i_block[EXT4_DIND_BLOCK]);
        let others = (0..EXT4_N_BLOCKS).any(|i| i != EXT4_DIND_BLOCK && inode.i_block[i] != 0);
        let first = u64::from(self.sb.s_first_data_block);
        if others
            || dind == 0
            || inode.i_links_count == 0
            || inode.i_mode & S_IFREG == 0
            || dind < first
            || dind >= self.nr_blocks
        {
            return false;
        }
        let dind_buf = self.block(dind);
        let per_block = (self.bs / 4) as usize;
        let gdt = self.sb.gdt_blocks();
        for i in 0..u32::from(self.sb.s_reserved_gdt_blocks / 4) {
            let gdt_off = (gdt + i) as usize % per_block;
            let pblk = first + 1 + u64::from(gdt + i);
            if u64::from(indirect::get_ptr(&dind_buf, gdt_off)) != pblk || pblk >= self.nr_blocks {
                return false;
            }
            let ind = self.block(pblk);
            let backups = (1..self.sb.groups_count()).filter(|&g| self.sb.bg_has_super(g));
            for (ind_off, g) in backups.enumerate().take(per_block) {
                let expect = pblk + u64::from(g) * u64::from(self.sb.s_blocks_per_group);
                if u64::from(indirect::get_ptr(&ind, ind_off)) != expect {
                    return false;
                }
            }
        }
        true
    }

    /// Model of `ext2fs_check_desc()`, which e2fsck runs when it opens the filesystem: every
    /// group's bitmaps and inode table inside the filesystem (the group without flex_bg), on
    /// no superblock or descriptor block and on no other group's. The first failure only.
    fn check_desc_layout(&self) -> Option<Problem> {
        let sb = &self.sb;
        let mut taken = super::bits::Bits::new(self.nr_blocks);
        let gdt = u64::from(sb.gdt_blocks()) + u64::from(sb.s_reserved_gdt_blocks);
        for g in 0..sb.groups_count() {
            if sb.bg_has_super(g) {
                let first = sb.group_first_block(g);
                (first..=first + gdt).for_each(|b| {
                    taken.set(b);
                });
            }
        }
        let flex = sb.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG);
        let itb = u64::from(sb.itable_blocks());
        for (g, gd) in (0u32..).zip(&self.descs) {
            let (first, last) = if flex {
                (u64::from(sb.s_first_data_block), self.nr_blocks - 1)
            } else {
                let first = sb.group_first_block(g);
                (
                    first,
                    first + u64::from(sb.blocks_in_group(g)).saturating_sub(1),
                )
            };
            let parts = [
                ("block bitmap", gd.bg_block_bitmap, 1),
                ("inode bitmap", gd.bg_inode_bitmap, 1),
                ("inode table", gd.bg_inode_table, itb),
            ];
            for (what, loc, len) in parts {
                let end = loc.saturating_add(len - 1);
                let bad = loc < first || end > last || (loc..=end).any(|b| taken.set(b));
                if bad {
                    let msg = format!("corrupt group descriptor: bad block for {what} ({loc})");
                    return Some(
                        Problem::new(P::PR_0_CHECK_DESC_FAILED, msg)
                            .group(g)
                            .blk(loc),
                    );
                }
            }
        }
        None
    }

    /// Superblock checksum and feature sanity (`check_super_block()`).
    fn check_super(&mut self) {
        let sb = &self.sb;
        let mut found = Vec::new();
        if sb.verify_checksum().is_err() {
            let msg = format!("superblock checksum {:#010x} does not match", sb.s_checksum);
            found.push(Problem::new(P::E4_0_SB_CSUM_INVALID, msg));
        }
        if sb.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT)
            && !sb.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS)
        {
            found.push(Problem::new(
                P::PR_0_64BIT_WITHOUT_EXTENTS,
                "64bit without extent",
            ));
        }
        if sb.metadata_csum() && sb.gdt_csum() {
            found.push(Problem::new(
                P::PR_0_META_AND_GDT_CSUM_SET,
                "metadata_csum and uninit_bg",
            ));
        }
        if sb.has_incompat(EXT4_FEATURE_INCOMPAT_CSUM_SEED) && !sb.metadata_csum() {
            let msg = "metadata_csum_seed without metadata_csum";
            found.push(Problem::new(P::PR_0_CSUM_SEED_WITHOUT_META_CSUM, msg));
        }
        let features = sb.s_feature_compat | sb.s_feature_incompat | sb.s_feature_ro_compat;
        if sb.s_rev_level == EXT4_GOOD_OLD_REV && features != 0 {
            found.push(Problem::new(
                P::PR_0_FS_REV_LEVEL,
                "revision 0 with feature flags",
            ));
        }
        if sb.s_r_blocks_count > sb.s_blocks_count / 2 {
            let msg = format!("s_r_blocks_count = {}", sb.s_r_blocks_count);
            found.push(Problem::new(P::PR_0_MISC_CORRUPT_SUPER, msg));
        }
        if sb.first_ino() > sb.s_inodes_count {
            let msg = format!("s_first_ino = {}", sb.first_ino());
            found.push(Problem::new(P::PR_0_MISC_CORRUPT_SUPER, msg));
        }
        found.extend(extra_isize_problems(sb));
        if sb.has_incompat(EXT4_FEATURE_INCOMPAT_RECOVER) {
            if sb.has_compat(EXT4_FEATURE_COMPAT_HAS_JOURNAL) {
                let msg = "needs_recovery is set: replay the journal first";
                found.push(Problem::new(P::E4_0_NEEDS_RECOVERY, msg));
            } else {
                let msg = "needs_recovery is set, but there is no journal";
                found.push(Problem::new(P::PR_0_JOURNAL_RECOVER_SET, msg));
            }
        }
        self.problems.extend(found);
    }

    /// One group descriptor (the loop of `check_super_block()`).
    fn check_desc(&mut self, g: u32) {
        let sb = &self.sb;
        let gd = &self.descs[g as usize];
        let (first, last) = if sb.has_incompat(EXT4_FEATURE_INCOMPAT_FLEX_BG) {
            (u64::from(sb.s_first_data_block), self.nr_blocks - 1)
        } else {
            let first = sb.group_first_block(g);
            (
                first,
                first + u64::from(sb.blocks_in_group(g)).saturating_sub(1),
            )
        };
        let outside = |b: u64| b < first || b > last;
        let itb = u64::from(sb.itable_blocks());
        let mut found = Vec::new();
        let checks = [
            (P::PR_0_BB_NOT_GROUP, "block bitmap", gd.bg_block_bitmap, 1),
            (P::PR_0_IB_NOT_GROUP, "inode bitmap", gd.bg_inode_bitmap, 1),
            (
                P::PR_0_ITABLE_NOT_GROUP,
                "inode table",
                gd.bg_inode_table,
                itb,
            ),
        ];
        for (code, what, loc, len) in checks {
            if outside(loc) || outside(loc.saturating_add(len - 1)) {
                let msg = format!("{what} at block {loc} is not in the group ({first}-{last})");
                found.push(Problem::new(code, msg).group(g).blk(loc));
            }
        }
        if gd.verify(sb, g).is_err() {
            let want =
                crate::format::group_desc::group_desc_csum(sb, g, &gd.to_bytes(sb.desc_size()));
            let msg = format!("checksum is {:#06x}, should be {want:#06x}", gd.bg_checksum);
            found.push(Problem::new(P::PR_0_GDT_CSUM, msg).group(g));
        }
        let uninit = gd.bg_flags & (EXT4_BG_BLOCK_UNINIT | EXT4_BG_INODE_UNINIT) != 0;
        if !sb.has_group_desc_csum() && (uninit || gd.bg_itable_unused != 0) {
            let msg = format!(
                "flags {:#x}, itable_unused {} without group descriptor checksums",
                gd.bg_flags, gd.bg_itable_unused
            );
            found.push(Problem::new(P::PR_0_GDT_UNINIT, msg).group(g));
        }
        if g + 1 == sb.groups_count() && gd.bg_flags & EXT4_BG_BLOCK_UNINIT != 0 {
            let msg = "last group block bitmap is uninitialized";
            found.push(Problem::new(P::PR_0_BB_UNINIT_LAST, msg).group(g));
        }
        let unused = gd.bg_itable_unused;
        if sb.has_group_desc_csum()
            && (unused > gd.bg_free_inodes_count || unused > sb.s_inodes_per_group)
        {
            let msg = format!(
                "invalid unused inodes count {unused} (free inodes {})",
                gd.bg_free_inodes_count
            );
            found.push(Problem::new(P::PR_0_GDT_ITABLE_UNUSED, msg).group(g));
        }
        self.problems.extend(found);
    }

    /// The journal inode and the JBD2 superblock.
    fn check_journal(&mut self) {
        let has_journal = self.sb.has_compat(EXT4_FEATURE_COMPAT_HAS_JOURNAL);
        let inum = self.sb.s_journal_inum;
        if !has_journal {
            if inum != 0 {
                let msg = format!("has_journal is clear, but s_journal_inum is {inum}");
                self.report(Problem::new(P::PR_0_JOURNAL_HAS_JOURNAL, msg));
            }
            return;
        }
        let bad_inode = |why: String| Problem::new(P::PR_0_JOURNAL_BAD_INODE, why).ino(inum);
        if inum == 0 || inum > self.sb.s_inodes_count {
            let p = bad_inode(format!("journal inode number {inum} is invalid"));
            return self.report(p);
        }
        let Some(inode) = self.read_inode(inum) else {
            let p = bad_inode("journal inode cannot be read".into());
            return self.report(p);
        };
        match self.journal_superblock(inum, &inode) {
            Ok(jsb) => self.check_jsb(inum, &inode, &jsb),
            Err(found) => self.problems.extend(found),
        }
    }

    /// Map the journal inode (strictly, with [`blockmap::walk`]) and parse its superblock.
    fn journal_superblock(
        &mut self,
        inum: u32,
        inode: &Inode,
    ) -> Result<JournalSuperblock, Vec<Problem>> {
        let bad = |why: &str| vec![Problem::new(P::PR_0_JOURNAL_BAD_INODE, why).ino(inum)];
        if inode.i_links_count == 0 || !inode.is_reg() {
            return Err(bad("journal inode is not an in-use regular file"));
        }
        let nblocks = inode.i_size / u64::from(self.bs);
        if nblocks < u64::from(JBD2_MIN_JOURNAL_BLOCKS) {
            return Err(bad(&format!("journal of {nblocks} blocks is too small")));
        }
        let extents =
            inode.has_flag(EXT4_EXTENTS_FL) && self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS);
        let (dev, bs, reads) = (self.dev, self.bs, &mut self.reads);
        let mut read =
            |p: Pblk| Ok(super::read_bytes(dev, p.0 * u64::from(bs), bs as usize, reads).into());
        let mut ctx = WalkCtx {
            ino: Ino(inum),
            block_size: bs,
            first_block: u64::from(self.sb.s_first_data_block),
            nr_blocks: self.nr_blocks,
            csum_seed: None,
            read: &mut read,
        };
        let map = blockmap::walk(&mut ctx, &inode.i_block_bytes(), extents)
            .map_err(|e| bad(&format!("journal block map: {e}")))?;
        if map.data_blocks() < nblocks {
            return Err(bad("journal inode has holes"));
        }
        let Some((first, _)) = map.lookup(0) else {
            return Err(bad("journal block 0 is not mapped"));
        };
        let buf = self.block(first);
        JournalSuperblock::parse(&buf).map_err(|e| jsb_problems(&e, &buf, inum))
    }

    /// The JBD2 superblock against the filesystem and the superblock's flags and backup.
    fn check_jsb(&mut self, inum: u32, inode: &Inode, jsb: &JournalSuperblock) {
        let nblocks = inode.i_size / u64::from(self.bs);
        if let Err(e) = jsb.check_geometry(self.bs, nblocks) {
            let p = Problem::new(P::PR_0_JOURNAL_BAD_SUPER, format!("{e}")).ino(inum);
            self.report(p);
        }
        let recover = self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_RECOVER);
        if !recover && jsb.s_start != 0 {
            let msg = format!(
                "recovery flag clear, but journal has data (s_start {}, s_sequence {})",
                jsb.s_start, jsb.s_sequence
            );
            self.report(Problem::new(P::PR_0_JOURNAL_RECOVERY_CLEAR, msg).ino(inum));
        }
        let mut backup = [0u32; 17];
        backup[..15].copy_from_slice(&inode.i_block);
        backup[15] = (inode.i_size >> 32) as u32;
        backup[16] = inode.i_size as u32;
        let sb = &self.sb;
        if sb.s_jnl_backup_type != EXT3_JNL_BACKUP_BLOCKS || sb.s_jnl_blocks != backup {
            let msg = "s_jnl_blocks does not match the journal inode";
            self.report(Problem::new(P::PR_0_BACKUP_JNL, msg).ino(inum));
        }
    }

    /// The on-disk record of inode `ino`, parsed (an invalid `i_extra_isize` read as 0), or
    /// `None` if its inode table lies outside the filesystem.
    pub(super) fn read_inode(&mut self, ino: u32) -> Option<Inode> {
        let raw = self.read_inode_raw(ino)?;
        Some(parse_lenient(&raw, ino))
    }

    /// The raw record of inode `ino`.
    pub(super) fn read_inode_raw(&mut self, ino: u32) -> Option<Vec<u8>> {
        let ipg = self.sb.s_inodes_per_group;
        let (g, i) = ((ino.checked_sub(1)?) / ipg, (ino - 1) % ipg);
        let itable = self.descs.get(g as usize)?.bg_inode_table;
        let isz = self.sb.inode_size() as usize;
        let off = u64::from(i) * isz as u64;
        let blk = itable.checked_add(off / u64::from(self.bs))?;
        if blk >= self.nr_blocks {
            return None;
        }
        let buf = self.block(blk);
        let start = (off % u64::from(self.bs)) as usize;
        buf.get(start..start + isz).map(<[u8]>::to_vec)
    }
}

/// An inode record parsed as e2fsck reads it: an invalid `i_extra_isize` (which
/// [`Inode::parse`] rejects) is taken as 0, so the fields of the first 128 bytes still count.
pub(super) fn parse_lenient(raw: &[u8], ino: u32) -> Inode {
    match Inode::parse(raw, raw.len(), Ino(ino)) {
        Ok(inode) => inode,
        Err(_) => {
            let mut copy = raw.to_vec();
            if let Some(extra) =
                copy.get_mut(EXT4_GOOD_OLD_INODE_SIZE..EXT4_GOOD_OLD_INODE_SIZE + 2)
            {
                extra.fill(0);
            }
            let mut inode = Inode::parse(&copy, copy.len(), Ino(ino)).unwrap_or_default();
            inode.raw = raw.to_vec();
            inode
        }
    }
}

/// e2fsck's `s_min_extra_isize` / `s_want_extra_isize` checks.
fn extra_isize_problems(sb: &Superblock) -> Vec<Problem> {
    let isz = sb.inode_size() as usize;
    if isz <= EXT4_GOOD_OLD_INODE_SIZE {
        return Vec::new();
    }
    let max = isz - EXT4_GOOD_OLD_INODE_SIZE;
    let bad = |v: u16| v != 0 && (v < 4 || usize::from(v) > max || v % 4 != 0);
    let mut out = Vec::new();
    if bad(sb.s_min_extra_isize) {
        let msg = format!("s_min_extra_isize {} is invalid", sb.s_min_extra_isize);
        out.push(Problem::new(P::PR_0_BAD_MIN_EXTRA_ISIZE, msg));
    }
    if bad(sb.s_want_extra_isize) {
        let msg = format!("s_want_extra_isize {} is invalid", sb.s_want_extra_isize);
        out.push(Problem::new(P::PR_0_BAD_WANT_EXTRA_ISIZE, msg));
    }
    out
}

/// The problems e2fsck reports for a JBD2 superblock that does not load
/// (`e2fsck_journal_load()`, then `e2fsck_journal_fix_corrupt_super()`): what is wrong, then
/// `PR_0_JOURNAL_BAD_SUPER`.
fn jsb_problems(e: &Error, buf: &[u8], inum: u32) -> Vec<Problem> {
    let first = match e {
        Error::Corrupt(CorruptKind::JournalSuperblock("bad magic")) => {
            Some(P::PR_0_JOURNAL_BAD_INODE)
        }
        Error::Corrupt(CorruptKind::JournalSuperblock("unrecognised superblock format")) => {
            Some(P::PR_0_JOURNAL_UNSUPP_VERSION)
        }
        Error::Unsupported(_) => {
            let incompat = crate::bytes::read_u32be(buf, 0x28);
            if incompat & !JBD2_KNOWN_INCOMPAT_FEATURES != 0 {
                Some(P::PR_0_JOURNAL_UNSUPP_INCOMPAT)
            } else {
                Some(P::PR_0_JOURNAL_UNSUPP_ROCOMPAT)
            }
        }
        _ => None,
    };
    first
        .into_iter()
        .chain([P::PR_0_JOURNAL_BAD_SUPER])
        .map(|code| Problem::new(code, format!("journal superblock: {e}")).ino(inum))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_isize_rules_are_e2fsck_s() {
        let mut sb = Superblock::new();
        (sb.s_rev_level, sb.s_inode_size) = (EXT4_DYNAMIC_REV, 256);
        (sb.s_min_extra_isize, sb.s_want_extra_isize) = (32, 0);
        assert!(extra_isize_problems(&sb).is_empty());
        (sb.s_min_extra_isize, sb.s_want_extra_isize) = (30, 132);
        let codes: Vec<P> = extra_isize_problems(&sb).iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [P::PR_0_BAD_MIN_EXTRA_ISIZE, P::PR_0_BAD_WANT_EXTRA_ISIZE]
        );
        sb.s_inode_size = 128;
        assert!(
            extra_isize_problems(&sb).is_empty(),
            "128-byte inodes have no extra part"
        );
    }

    #[test]
    fn journal_superblock_errors_map_to_e2fsck_codes() {
        let mut buf = JournalSuperblock::new(1024, 1024, [7; 16], true, false)
            .to_bytes()
            .to_vec();
        let codes = |b: &[u8]| -> Vec<P> {
            let e = JournalSuperblock::parse(b).unwrap_err();
            jsb_problems(&e, b, 8).iter().map(|p| p.code).collect()
        };
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert_eq!(
            codes(&bad),
            [P::PR_0_JOURNAL_BAD_INODE, P::PR_0_JOURNAL_BAD_SUPER]
        );
        let mut bad = buf.clone();
        bad[7] = 9;
        assert_eq!(
            codes(&bad),
            [P::PR_0_JOURNAL_UNSUPP_VERSION, P::PR_0_JOURNAL_BAD_SUPER]
        );
        let mut bad = buf.clone();
        bad[0xFC] ^= 1;
        assert_eq!(codes(&bad), [P::PR_0_JOURNAL_BAD_SUPER], "checksum");
        buf[0x28] |= 0x80;
        assert_eq!(
            codes(&buf),
            [P::PR_0_JOURNAL_UNSUPP_INCOMPAT, P::PR_0_JOURNAL_BAD_SUPER]
        );
    }

    #[test]
    fn the_resize_inode_must_list_the_reserved_gdt_blocks() {
        use crate::dev::Disk;
        use crate::format::group_desc::testutil::mkfs;
        use crate::units::Pblk;
        let Some(img) = mkfs("-t ext4 -b 1024", 16 << 20) else {
            return;
        };
        let mut dev = Disk::load(&img.path, 1024).unwrap();
        let codes = |dev: &Disk| -> Vec<P> {
            let mut f = Fsck::open(dev).unwrap();
            f.check_resize_inode();
            f.problems.iter().map(|p| p.code).collect()
        };
        assert_eq!(codes(&dev), []);
        let mut f = Fsck::open(&dev).unwrap();
        let dind = u64::from(f.read_inode(EXT4_RESIZE_INO).unwrap().i_block[EXT4_DIND_BLOCK]);
        let gdt_off = f.sb.gdt_blocks() as usize; // the first reserved GDT block's slot
        let mut buf = dev.peek_block(Pblk(dind)).to_vec();
        indirect::set_ptr(&mut buf, gdt_off, 0);
        dev.write(Pblk(dind), &buf).unwrap();
        assert_eq!(codes(&dev), [P::PR_0_RESIZE_INODE_INVALID]);
    }

    #[test]
    fn lenient_parse_keeps_the_base_fields_of_a_bad_extra_isize() {
        let mut raw = vec![0u8; 256];
        raw[0x1A] = 3; // i_links_count
        raw[0x80] = 6; // i_extra_isize: not a multiple of 4
        assert!(Inode::parse(&raw, 256, Ino(12)).is_err());
        let inode = parse_lenient(&raw, 12);
        assert_eq!((inode.i_links_count, inode.i_extra_isize), (3, 0));
        assert_eq!(inode.raw, raw);
    }
}
