//! Pass 1: every inode of the inode tables (model of `e2fsck_pass1()`, e2fsck/pass1.c).
//!
//! The scan is e2fsck's: group by group, skipping groups marked `INODE_UNINIT` and the
//! `bg_itable_unused` tail when descriptors carry checksums, each inode-table block read once
//! and first judged as a whole (`check_inode_block_sanity()`: more than half of its inodes
//! failing their checksum or looking insane makes every inode in it garbage). An inode is in
//! use when `i_links_count > 0`; reserved inodes (below `s_first_ino`) are always in use. The
//! order of the checks on one inode follows `e2fsck_pass1()`; the block map is `blocks.rs`.

use super::pass0::parse_lenient;
use super::walk::header_verify;
use super::{DirInfo, Fsck, InodeInfo, Problem, ProblemCode as P};
use crate::bytes::{read_u16le, read_u32le};
use crate::format::group_desc::EXT4_BG_INODE_UNINIT;
use crate::format::inode::*;
use crate::format::superblock::*;
use crate::units::Ino;

/// `i_flags` bits ext4 writes: the user-visible ones plus those only the kernel and e2fsprogs
/// set (`HUGE_FILE`, `EA_INODE`).
const FLAGS_ON_DISK: u32 = EXT4_FL_USER_VISIBLE | EXT4_HUGE_FILE_FL | EXT4_EA_INODE_FL;

impl Fsck<'_> {
    /// Pass 1.
    pub(super) fn pass1(&mut self) {
        self.mark_table_blocks();
        let low_dtime = self.low_dtime_check();
        for g in 0..self.sb.groups_count() {
            self.scan_group(g, low_dtime);
        }
    }

    /// Model of `mark_table_blocks()`: superblocks and descriptor tables (with reserved GDT
    /// blocks) of every group, then inode tables and bitmaps, reporting those that land on
    /// blocks already marked.
    pub(super) fn mark_table_blocks(&mut self) {
        let gdt = u64::from(self.sb.gdt_blocks()) + u64::from(self.sb.s_reserved_gdt_blocks);
        let itb = u64::from(self.sb.itable_blocks());
        for g in 0..self.sb.groups_count() {
            if self.sb.bg_has_super(g) {
                let first = self.sb.group_first_block(g);
                for b in first..(first + 1 + gdt).min(self.nr_blocks) {
                    self.found.set(b);
                    self.meta.set(b);
                }
            }
            let gd = self.descs[g as usize].clone();
            let tables = [
                (
                    P::PR_1_ITABLE_CONFLICT,
                    "inode table",
                    gd.bg_inode_table,
                    itb,
                ),
                (P::PR_1_BB_CONFLICT, "block bitmap", gd.bg_block_bitmap, 1),
                (P::PR_1_IB_CONFLICT, "inode bitmap", gd.bg_inode_bitmap, 1),
            ];
            for (code, what, loc, len) in tables {
                if loc == 0 {
                    continue;
                }
                let mut reported = false;
                for b in loc..loc.saturating_add(len) {
                    if self.found.test(b) && !reported {
                        let msg = format!("{what} at block {b} conflicts with other metadata");
                        self.report(Problem::new(code, msg).group(g).blk(b));
                        reported = true;
                    } else {
                        self.found.set(b);
                        self.meta.set(b);
                    }
                }
            }
        }
    }

    /// e2fsck skips the low-dtime check when the superblock times look like inode numbers.
    fn low_dtime_check(&self) -> bool {
        let n = self.sb.s_inodes_count;
        let mkfs_time = self.sb.s_mkfs_time;
        let small = |t: u32| t != 0 && t < n;
        !(small(self.sb.s_wtime) || small(self.sb.s_mtime) || small(mkfs_time))
    }

    /// The scanned part of group `g`'s inode table.
    fn scan_group(&mut self, g: u32, low_dtime: bool) {
        let gd = &self.descs[g as usize];
        let ipg = self.sb.s_inodes_per_group;
        let mut n = ipg;
        if self.gdt_csum() {
            if gd.bg_flags & EXT4_BG_INODE_UNINIT != 0 {
                return;
            }
            n = ipg.saturating_sub(gd.bg_itable_unused);
        }
        let itable = gd.bg_inode_table;
        let isz = self.sb.inode_size() as usize;
        let ipb = self.sb.inodes_per_block();
        if itable == 0 {
            return;
        }
        // Per inode of a block: `None` for an all-zero record, else whether its checksum
        // verifies (computed once, for the block's sanity and for the inode's own check).
        let mut csums: Vec<Option<bool>> = Vec::with_capacity(ipb as usize);
        for b in 0..n.div_ceil(ipb) {
            let blk = itable + u64::from(b);
            if blk >= self.nr_blocks {
                return;
            }
            let buf = self.block(blk);
            let count = ipb.min(n - b * ipb);
            let first = g * ipg + b * ipb + 1;
            if first >= self.sb.first_ino() && crate::bytes::is_zero(&buf) {
                continue; // never-used inodes: nothing to check
            }
            csums.clear();
            csums.extend((0..count as usize).map(|k| {
                let raw = &buf[k * isz..(k + 1) * isz];
                let ino = Ino(first + k as u32);
                let ok = || !self.csum() || inode_csum_verify(self.sb.csum_seed(), ino, raw, isz);
                (!crate::bytes::is_zero(raw)).then(ok)
            }));
            let insane = self.block_insane(&buf, &csums);
            for (k, &csum) in csums.iter().enumerate() {
                let raw = &buf[k * isz..(k + 1) * isz];
                self.check_inode(first + k as u32, raw, csum, insane, low_dtime);
            }
        }
    }

    /// Model of `check_inode_block_sanity()` for one inode-table block whose scanned inodes'
    /// checksum results are `csums` (`None`: an all-zero record): more than half bad means
    /// garbage.
    fn block_insane(&self, buf: &[u8], csums: &[Option<bool>]) -> bool {
        let ipb = self.sb.inodes_per_block();
        if ipb < 2 {
            return false;
        }
        let isz = self.sb.inode_size() as usize;
        let mut badness = 0;
        for (k, csum) in csums.iter().enumerate() {
            let Some(csum_ok) = *csum else {
                continue;
            };
            let raw = &buf[k * isz..(k + 1) * isz];
            if !csum_ok || self.looks_insane(raw) {
                badness += 1;
            }
            if badness > ipb / 2 {
                return true;
            }
        }
        false
    }

    /// `extent_head_looks_insane()` || `block_map_looks_insane()`, on the raw record (this
    /// runs on every scanned inode, so it parses nothing).
    fn looks_insane(&self, raw: &[u8]) -> bool {
        let mut i_block = [0u8; 60];
        i_block.copy_from_slice(&raw[0x28..0x64]);
        let flags = read_u32le(raw, 0x20);
        if flags & EXT4_EXTENTS_FL != 0 {
            return !header_verify(&i_block);
        }
        let (mode, links) = (read_u16le(raw, 0) & S_IFMT, read_u16le(raw, 0x1A));
        if flags & EXT4_INLINE_DATA_FL != 0 || links == 0 {
            return false;
        }
        let size = u64::from(read_u32le(raw, 0x04)) | u64::from(read_u32le(raw, 0x6C)) << 32;
        match mode {
            S_IFREG | S_IFDIR => {}
            S_IFLNK if size > 60 => {}
            _ => return false,
        }
        let (first, nr) = (u64::from(self.sb.s_first_data_block), self.nr_blocks);
        let bad = (0..EXT4_N_BLOCKS)
            .map(|i| u64::from(read_u32le(&i_block, 4 * i)))
            .filter(|&p| p != 0 && (p < first || p >= nr))
            .count();
        bad > EXT4_N_BLOCKS / 2
    }

    /// One inode record, in `e2fsck_pass1()`'s order; `csum` is whether its checksum
    /// verifies, `None` for an all-zero record.
    fn check_inode(
        &mut self,
        ino: u32,
        raw: &[u8],
        csum: Option<bool>,
        insane: bool,
        low_dtime: bool,
    ) {
        let first_ino = self.sb.first_ino();
        let isz = raw.len();
        let csum_ok = match csum {
            Some(ok) => ok,
            // Never used: nothing to check, past the reserved inodes.
            None if ino >= first_ino => return,
            None => !self.csum() || inode_csum_verify(self.sb.csum_seed(), Ino(ino), raw, isz),
        };
        self.stats.inodes_scanned += 1;
        let inode = parse_lenient(raw, ino);
        let links = inode.i_links_count;
        if insane && links > 0 {
            self.report(
                Problem::new(P::PR_1_INODE_IS_GARBAGE, "inode seems to contain garbage").ino(ino),
            );
        }
        let n = self.sb.s_inodes_count;
        if inode.i_dtime != 0 && low_dtime && inode.i_dtime < n {
            let msg = format!("dtime {} looks like an orphan list link", inode.i_dtime);
            self.report(Problem::new(P::PR_1_LOW_DTIME, msg).ino(ino));
        }
        if links == 0 && ino >= first_ino && !is_quota_reserved(ino) {
            if inode.i_dtime == 0 && inode.i_mode != 0 {
                let msg = "deleted inode has zero dtime";
                self.report(Problem::new(P::PR_1_ZERO_DTIME, msg).ino(ino));
            }
            return self.finish_inode(ino, raw, csum_ok);
        }
        self.check_flags_vs_features(ino, &inode);
        if ino < first_ino && self.check_reserved(ino, &inode) {
            return self.finish_inode(ino, raw, csum_ok);
        }
        if links > 0 {
            self.check_in_use(ino, &inode, raw);
        }
        self.finish_inode(ino, raw, csum_ok)
    }

    /// `FINISH_INODE_LOOP`: an inode whose checksum still fails is reported.
    fn finish_inode(&mut self, ino: u32, raw: &[u8], csum_ok: bool) {
        if !csum_ok {
            let msg = format!(
                "inode passes checks, but checksum {:#010x} does not match",
                inode_csum(self.sb.csum_seed(), Ino(ino), raw, raw.len())
            );
            self.report(Problem::new(P::PR_1_INODE_ONLY_CSUM_INVALID, msg).ino(ino));
        }
    }

    /// Casefold, inline-data and extent flags against the features.
    fn check_flags_vs_features(&mut self, ino: u32, inode: &Inode) {
        let sb = &self.sb;
        let mut found = Vec::new();
        if inode.has_flag(EXT4_CASEFOLD_FL) {
            if !inode.is_dir() {
                found.push((P::PR_1_CASEFOLD_NONDIR, "casefold flag on a non-directory"));
            } else if !sb.has_incompat(EXT4_FEATURE_INCOMPAT_CASEFOLD) {
                found.push((
                    P::PR_1_CASEFOLD_FEATURE,
                    "casefold flag without the feature",
                ));
            }
        }
        let inline_fs = sb.has_incompat(EXT4_FEATURE_INCOMPAT_INLINE_DATA);
        if inode.has_flag(EXT4_INLINE_DATA_FL) && !inline_fs && ino >= sb.first_ino() {
            found.push((
                P::PR_1_INLINE_DATA_SET,
                "INLINE_DATA_FL without the inline_data feature",
            ));
        }
        let extent_fs = sb.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS);
        let special = inode.i_links_count > 0 || matches!(ino, 1 | 2 | 8);
        let header_ok = header_verify(&inode.i_block_bytes());
        if inode.has_flag(EXT4_EXTENTS_FL) && !extent_fs && special {
            if header_ok {
                found.push((
                    P::PR_1_EXTENT_FEATURE,
                    "inode is in extents format, but no extent feature",
                ));
            }
            found.push((
                P::PR_1_EXTENTS_SET,
                "EXTENTS_FL set without the extent feature",
            ));
        }
        if extent_fs
            && !inode.has_flag(EXT4_EXTENTS_FL)
            && special
            && (inode.is_reg() || inode.is_dir())
            && header_ok
        {
            found.push((
                P::PR_1_UNSET_EXTENT_FL,
                "inode missing EXTENT_FL, but is in extents format",
            ));
        }
        for (code, msg) in found {
            self.report(Problem::new(code, msg).ino(ino));
        }
    }

    /// Reserved inodes (below `s_first_ino`), each with its own rules. Returns true when the
    /// inode is done; false when e2fsck goes on with it as an ordinary inode (the root, and a
    /// journal or quota inode number the superblock does not use).
    fn check_reserved(&mut self, ino: u32, inode: &Inode) -> bool {
        let sb = &self.sb;
        let report = |s: &mut Self, code: P, msg: &str| s.report(Problem::new(code, msg).ino(ino));
        match ino {
            EXT4_BAD_INO => {
                self.used.set(u64::from(ino) - 1);
                self.check_bad_blocks_inode(inode);
                return true;
            }
            EXT4_ROOT_INO => {
                if !inode.is_dir() {
                    report(self, P::PR_1_ROOT_NO_DIR, "root inode is not a directory");
                }
                if inode.i_dtime != 0 && inode.i_links_count > 0 {
                    report(self, P::PR_1_ROOT_DTIME, "root inode has dtime set");
                }
                return false;
            }
            EXT4_JOURNAL_INO | EXT4_USR_QUOTA_INO | EXT4_GRP_QUOTA_INO => {
                self.used.set(u64::from(ino) - 1);
                let active = if ino == EXT4_JOURNAL_INO {
                    sb.s_journal_inum == ino
                } else {
                    sb.has_ro_compat(EXT4_FEATURE_RO_COMPAT_QUOTA)
                        && (sb.s_usr_quota_inum == ino || sb.s_grp_quota_inum == ino)
                };
                if active {
                    if ino == EXT4_JOURNAL_INO && !inode.is_reg() {
                        report(
                            self,
                            P::PR_1_JOURNAL_BAD_MODE,
                            "journal inode is not a regular file",
                        );
                    }
                    self.check_blocks(ino, inode);
                    return true;
                }
                if inode.i_links_count != 0 || inode.i_blocks != 0 || inode.i_block[0] != 0 {
                    let code = if ino == EXT4_JOURNAL_INO {
                        P::PR_1_JOURNAL_INODE_NOT_CLEAR
                    } else {
                        P::PR_1_QUOTA_INODE_NOT_CLEAR
                    };
                    report(self, code, "inode is not in use, but contains data");
                }
                return false;
            }
            _ => {}
        }
        self.used.set(u64::from(ino) - 1);
        let bad = match ino {
            EXT4_BOOT_LOADER_INO => inode.is_dir(),
            EXT4_RESIZE_INO => inode.i_mode != 0 && !inode.is_reg(),
            _ => inode.i_mode != 0,
        };
        if bad {
            let msg = format!("reserved inode has bad mode {:#o}", inode.i_mode);
            report(self, P::PR_1_RESERVED_BAD_MODE, &msg);
        }
        self.check_blocks(ino, inode);
        true
    }

    /// The bad-blocks inode: must look empty; its blocks are in use.
    fn check_bad_blocks_inode(&mut self, inode: &Inode) {
        if inode.i_mode != 0
            || inode.i_uid != 0
            || inode.i_gid != 0
            || inode.i_links_count != 0
            || inode.has_flag(EXT4_INLINE_DATA_FL)
            || inode.i_file_acl != 0
        {
            let msg = "the bad block inode looks invalid";
            self.report(Problem::new(P::PR_1_INVALID_BAD_INODE, msg).ino(EXT4_BAD_INO));
        }
        let w = self.walk_in(EXT4_BAD_INO, inode, false);
        let out = self.walk_blocks(&w);
        self.claim(EXT4_BAD_INO, &out);
    }

    /// An inode in use (`i_links_count > 0`), not reserved, or the root.
    fn check_in_use(&mut self, ino: u32, inode: &Inode, raw: &[u8]) {
        if inode.i_dtime != 0 {
            let msg = format!("inode is in use, but has dtime {}", inode.i_dtime);
            self.report(Problem::new(P::PR_1_SET_DTIME, msg).ino(ino));
        }
        self.used.set(u64::from(ino) - 1);
        let sb = &self.sb;
        if inode.has_flag(EXT4_IMAGIC_FL) && !sb.has_compat(EXT4_FEATURE_COMPAT_IMAGIC_INODES) {
            let msg = "imagic flag set without the imagic_inodes feature";
            self.report(Problem::new(P::PR_1_SET_IMAGIC, msg).ino(ino));
        }
        if raw.len() > EXT4_GOOD_OLD_INODE_SIZE && Inode::parse(raw, raw.len(), Ino(ino)).is_err() {
            let extra = read_u16le(raw, 0x80);
            let msg = format!("i_extra_isize {extra} is invalid");
            self.report(Problem::new(P::PR_1_EXTRA_ISIZE, msg).ino(ino));
        }
        self.check_flag_bits(ino, inode);
        let extent_fs = self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_EXTENTS);
        if extent_fs
            && inode.has_flag(EXT4_EXTENTS_FL)
            && inode.is_symlink()
            && !has_valid_blocks(inode)
        {
            let msg = "fast symlink has EXTENTS_FL set";
            self.report(Problem::new(P::PR_1_FAST_SYMLINK_EXTENT_FL, msg).ino(ino));
        }
        let bad = self.bad_fields(ino, inode);
        let info = InodeInfo {
            mode: inode.i_mode,
            links: inode.i_links_count,
            no_blocks: inode.i_blocks & 0xFFFF_FFFF == 0,
            htree: false,
            generation: inode.i_generation,
            csum_bad: self.reread_fails(ino, inode),
            marked_bad: !bad.is_empty(),
            bad,
        };
        self.inodes.insert(ino, info);
        self.check_by_type(ino, inode);
        self.check_blocks(ino, inode);
    }

    /// The informational flag codes: the old migrate marker bit, and unknown bits.
    fn check_flag_bits(&mut self, ino: u32, inode: &Inode) {
        if inode.has_flag(EXT4_VERITY_FL) {
            let msg = format!(
                "i_flags {:#010x} has EXT4_VERITY_FL (0x00100000)",
                inode.i_flags
            );
            self.report(Problem::new(P::E4_1_FLAG_VERITY_SET, msg).ino(ino));
        }
        let unknown = inode.i_flags & !FLAGS_ON_DISK;
        if unknown != 0 {
            let msg = format!(
                "i_flags {:#010x} has unknown bits {unknown:#010x}",
                inode.i_flags
            );
            self.report(Problem::new(P::E4_1_FLAG_UNKNOWN, msg).ino(ino));
        }
    }

    /// Per-type bookkeeping and checks (directories, files, symlinks, special files).
    fn check_by_type(&mut self, ino: u32, inode: &Inode) {
        let is_special = matches!(
            inode.i_mode & S_IFMT,
            S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK
        );
        if inode.is_dir() {
            let parent = if ino == EXT4_ROOT_INO { ino } else { 0 };
            self.dirs.insert(ino, DirInfo { parent, dotdot: 0 });
            self.stats.dirs += 1;
        } else if inode.is_reg() {
            self.stats.regular += 1;
        } else if inode.is_symlink() {
            self.stats.symlinks += 1;
        } else if is_special && device_inode_ok(inode) {
            let checks = [
                (
                    inode.has_flag(EXT4_INLINE_DATA_FL),
                    P::PR_1_SPECIAL_EXTENTS_IDATA,
                ),
                (
                    inode.has_flag(EXT4_IMMUTABLE_FL | EXT4_APPEND_FL),
                    P::PR_1_SET_IMMUTABLE,
                ),
                (inode.i_size != 0, P::PR_1_SET_NONZSIZE),
            ];
            for (bad, code) in checks {
                if bad {
                    self.report(Problem::new(code, code.describe()).ino(ino));
                }
            }
        }
    }

    /// Model of the checks of `e2fsck_process_bad_inode()` (pass2.c), for an inode e2fsck's
    /// pass 1 marks bad; reported later, when a directory entry first names it.
    fn bad_fields(&mut self, ino: u32, inode: &Inode) -> Vec<Problem> {
        let sb = &self.sb;
        let raw = &inode.raw;
        let rd16 = |off: usize| read_u16le(raw, off);
        let rd32 = |off: usize| read_u32le(raw, off);
        let acl = inode.i_file_acl;
        let mut found = Vec::new();
        if acl != 0 && !sb.has_compat(EXT4_FEATURE_COMPAT_EXT_ATTR) {
            found.push(P::PR_2_FILE_ACL_ZERO);
        }
        let known = matches!(
            inode.i_mode & S_IFMT,
            S_IFDIR | S_IFREG | S_IFCHR | S_IFBLK | S_IFLNK | S_IFIFO | S_IFSOCK
        );
        if !known {
            found.push(P::PR_2_BAD_MODE);
        } else if inode.is_symlink() && !self.symlink_ok(inode) {
            found.push(P::PR_2_INVALID_SYMLINK);
        }
        let sb = &self.sb;
        if rd32(0x70) != 0 {
            found.push(P::PR_2_FADDR_ZERO);
        }
        if !sb.has_ro_compat(EXT4_FEATURE_RO_COMPAT_HUGE_FILE) && rd16(0x74) != 0 {
            found.push(P::PR_2_BLOCKS_HI_ZERO);
        }
        if !sb.has_incompat(EXT4_FEATURE_INCOMPAT_64BIT) && rd16(0x76) != 0 {
            found.push(P::PR_2_I_FILE_ACL_HI_ZERO);
        }
        if acl != 0 && (acl < u64::from(sb.s_first_data_block) || acl >= self.nr_blocks) {
            found.push(P::PR_2_FILE_ACL_BAD);
        }
        if inode.is_dir() && rd32(0x6C) != 0 && !sb.has_incompat(EXT4_FEATURE_INCOMPAT_LARGEDIR) {
            found.push(P::PR_2_DIR_SIZE_HIGH_ZERO);
        }
        found
            .into_iter()
            .map(|code| Problem::new(code, code.describe()).ino(ino))
            .collect()
    }
}

/// `quota_inum_is_reserved()`: the user and group quota inodes.
fn is_quota_reserved(ino: u32) -> bool {
    ino == EXT4_USR_QUOTA_INO || ino == EXT4_GRP_QUOTA_INO
}

/// Model of `e2fsck_pass1_check_device_inode()`: no index or extents flag, and with the
/// immutable or append flag no pointers past `i_block[3]`.
fn device_inode_ok(inode: &Inode) -> bool {
    if inode.has_flag(EXT4_INDEX_FL | EXT4_EXTENTS_FL) {
        return false;
    }
    !inode.has_flag(EXT4_IMMUTABLE_FL | EXT4_APPEND_FL)
        || inode.i_block[4..].iter().all(|&p| p == 0)
}

/// Model of `ext2fs_inode_has_valid_blocks2()`: whether `i_block` holds a block map.
pub(super) fn has_valid_blocks(inode: &Inode) -> bool {
    if !(inode.is_dir() || inode.is_reg() || inode.is_symlink()) {
        return false;
    }
    if inode.has_flag(EXT4_INLINE_DATA_FL) {
        return false;
    }
    if inode.is_symlink() {
        if inode.i_file_acl == 0 {
            return inode.i_blocks & 0xFFFF_FFFF != 0;
        }
        return inode.i_size >= 60 || (inode.i_size > 4 && inode.i_block[1] == 0);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(mode: u16, size: u64, blocks: u64) -> Inode {
        let mut i = Inode::new(256);
        (i.i_mode, i.i_size, i.i_blocks, i.i_links_count) = (mode, size, blocks, 1);
        i
    }

    #[test]
    fn valid_blocks_follow_libext2fs() {
        assert!(has_valid_blocks(&inode(S_IFREG | 0o644, 0, 0)));
        assert!(has_valid_blocks(&inode(S_IFDIR | 0o755, 1024, 2)));
        assert!(
            !has_valid_blocks(&inode(S_IFLNK | 0o777, 10, 0)),
            "fast symlink"
        );
        assert!(
            has_valid_blocks(&inode(S_IFLNK | 0o777, 100, 2)),
            "slow symlink"
        );
        assert!(!has_valid_blocks(&inode(S_IFCHR | 0o600, 0, 0)));
        let mut with_ea = inode(S_IFLNK | 0o777, 10, 2);
        (with_ea.i_file_acl, with_ea.i_block[1]) = (99, 0x6161_6161);
        assert!(
            !has_valid_blocks(&with_ea),
            "short symlink text in i_block, EA block"
        );
        with_ea.i_block[1] = 0;
        assert!(
            has_valid_blocks(&with_ea),
            "i_block[1] == 0: a block pointer"
        );
        (with_ea.i_size, with_ea.i_block[1]) = (70, 0x6161_6161);
        assert!(has_valid_blocks(&with_ea));
    }

    #[test]
    fn device_inodes_refuse_map_flags() {
        let mut dev = inode(S_IFCHR | 0o600, 0, 0);
        assert!(device_inode_ok(&dev));
        dev.i_flags = EXT4_EXTENTS_FL;
        assert!(!device_inode_ok(&dev));
        dev.i_flags = EXT4_IMMUTABLE_FL;
        assert!(device_inode_ok(&dev));
        dev.i_block[5] = 1;
        assert!(!device_inode_ok(&dev));
        assert_eq!(FLAGS_ON_DISK & EXT4_VERITY_FL, EXT4_VERITY_FL);
        assert_eq!(FLAGS_ON_DISK & EXT4_RESERVED_FL, 0);
    }
}
