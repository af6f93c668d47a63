//! Passes 3 and 4: directory connectivity (model of `e2fsck_pass3()` / `check_directory()`,
//! e2fsck/pass3.c) and reference counts (model of `e2fsck_pass4()`, e2fsck/pass4.c).
//!
//! Pass 3 follows each directory's parent (the directory whose entry first named it in pass 2)
//! up to the root: a directory with no parent is unconnected, a walk that comes back to itself
//! is a loop; `..` must name the parent. `/lost+found` is looked up as e2fsck does, but
//! `e2fsck -n` never asks for it, so its absence is information only.
//!
//! Pass 4 compares each inode's `i_links_count` with the references counted in pass 2: an
//! inode in use that no entry names is unattached (and zero-length if it has no blocks).

use super::{Fsck, Problem, ProblemCode as P};
use crate::format::inode::{EXT4_ROOT_INO, S_IFDIR, S_IFMT, S_IFREG};
use crate::format::superblock::{EXT4_FEATURE_COMPAT_ORPHAN_FILE, EXT4_FEATURE_RO_COMPAT_QUOTA};
use std::collections::BTreeSet;

/// `EXT2_LINK_MAX`: above it a directory's link count is 1 (dir_nlink).
const EXT2_LINK_MAX: u32 = 65000;

impl Fsck<'_> {
    /// Pass 3.
    pub(super) fn pass3(&mut self) {
        if !self.in_use(EXT4_ROOT_INO) {
            let msg = "root inode is not allocated";
            return self.report(Problem::new(P::PR_3_NO_ROOT_INODE, msg).ino(EXT4_ROOT_INO));
        }
        if !self.dirs.contains_key(&EXT4_ROOT_INO) {
            let msg = "root inode is not a directory";
            return self.report(Problem::new(P::PR_3_ROOT_NOT_DIR_ABORT, msg).ino(EXT4_ROOT_INO));
        }
        let mut done = BTreeSet::from([EXT4_ROOT_INO]);
        let dirs: Vec<u32> = self.dirs.keys().copied().collect();
        for dir in dirs {
            self.check_directory(dir, &mut done);
        }
        match self.lost_found {
            None => {
                let msg = "/lost+found not found";
                self.report(Problem::new(P::PR_3_NO_LF_DIR, msg));
            }
            Some(ino) if !self.dirs.contains_key(&ino) => {
                let msg = "/lost+found is not a directory";
                self.report(Problem::new(P::PR_3_LPF_NOTDIR, msg).ino(ino));
            }
            Some(_) => {}
        }
    }

    /// Model of `check_directory()`: walk up from `dir` until a directory already known
    /// (connected, or reported), then compare `..` with the parent.
    fn check_directory(&mut self, dir: u32, done: &mut BTreeSet<u32>) {
        let mut path = BTreeSet::new();
        let mut ino = dir;
        while !done.contains(&ino) {
            if !path.insert(ino) {
                let msg = format!("directory {ino} is part of a loop (from directory {dir})");
                self.report(Problem::new(P::PR_3_LOOPED_DIR, msg).ino(ino));
                break;
            }
            let parent = self.dirs.get(&ino).map_or(0, |d| d.parent);
            if parent == 0 {
                let dotdot = self.dirs.get(&ino).map_or(0, |d| d.dotdot);
                let msg = format!("unconnected directory inode {ino} (was in {dotdot})");
                self.report(Problem::new(P::PR_3_UNCONNECTED_DIR, msg).ino(ino));
                break;
            }
            ino = parent;
        }
        done.extend(path);
        let info = self.dirs.get(&dir).copied().unwrap_or_default();
        if info.dotdot != info.parent {
            let msg = format!("'..' is {}, should be {}", info.dotdot, info.parent);
            self.report(Problem::new(P::PR_3_BAD_DOT_DOT, msg).ino(dir));
        }
    }

    /// Inodes in use that no directory names by design: the quota inodes and the orphan file
    /// named by the superblock (e2fsck's pass 4 skips them).
    fn hidden_inodes(&self) -> Vec<u32> {
        let sb = &self.sb;
        let mut hidden = Vec::new();
        if sb.has_ro_compat(EXT4_FEATURE_RO_COMPAT_QUOTA) {
            hidden.extend([
                sb.s_usr_quota_inum,
                sb.s_grp_quota_inum,
                sb.s_prj_quota_inum,
            ]);
        }
        if sb.has_compat(EXT4_FEATURE_COMPAT_ORPHAN_FILE) {
            hidden.push(sb.s_orphan_file_inum);
        }
        hidden
    }

    /// Pass 4.
    pub(super) fn pass4(&mut self) {
        let first_ino = self.sb.first_ino();
        let hidden = self.hidden_inodes();
        let inodes: Vec<u32> = self.inodes.keys().copied().collect();
        for ino in inodes {
            if (ino < first_ino && ino != EXT4_ROOT_INO) || hidden.contains(&ino) {
                continue;
            }
            let mut counted = self.counted.get(&ino).copied().unwrap_or(0);
            let Some(info) = self.inodes.get_mut(&ino) else {
                continue;
            };
            let links = u32::from(info.links);
            let kind = info.mode & S_IFMT;
            if counted == 0 {
                let bad = std::mem::take(&mut info.bad);
                let zero_len = info.no_blocks && (kind == S_IFREG || kind == S_IFDIR);
                self.problems.extend(bad);
                if zero_len {
                    let msg = "unattached zero-length inode";
                    self.report(Problem::new(P::PR_4_ZERO_LEN_INODE, msg).ino(ino));
                }
                self.report(Problem::new(P::PR_4_UNATTACHED_INODE, "unattached inode").ino(ino));
                continue;
            }
            if kind == S_IFDIR && counted > EXT2_LINK_MAX {
                counted = 1;
            }
            if counted != links {
                let msg = format!("ref count is {links}, should be {counted}");
                self.report(Problem::new(P::PR_4_BAD_REF_COUNT, msg).ino(ino));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check;
    use super::*;
    use crate::dev::Disk;
    use crate::format::group_desc::testutil::mkfs;

    /// The problems of a fresh image holding `/d1/d2` (inodes 12 and 13) after `cmds`.
    fn problems_after(cmds: &[&str]) -> Option<Vec<(P, u32, String)>> {
        let img = mkfs("-t ext4 -b 1024", 4 << 20)?;
        for cmd in ["mkdir d1", "mkdir d1/d2"].iter().chain(cmds) {
            img.run("debugfs", &["-w", "-R", cmd]);
        }
        let mut dev = Disk::load(&img.path, 1024).unwrap();
        let report = check(&mut dev).unwrap();
        let list = report.problems.into_iter();
        Some(
            list.map(|p| (p.code, p.ino.map_or(0, |i| i.0), p.msg))
                .collect(),
        )
    }

    #[test]
    fn an_unlinked_directory_is_unconnected() {
        let Some(got) = problems_after(&["unlink d1"]) else {
            return;
        };
        let want = [
            (
                P::PR_3_UNCONNECTED_DIR,
                12,
                "unconnected directory inode 12 (was in 2)",
            ),
            (P::PR_3_BAD_DOT_DOT, 12, "'..' is 2, should be 0"),
            (P::PR_4_BAD_REF_COUNT, 12, "ref count is 3, should be 2"),
        ];
        let want: Vec<(P, u32, String)> = want.iter().map(|&(c, i, m)| (c, i, m.into())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn links_to_directories_and_loops() {
        let Some(got) = problems_after(&["link d1/d2 d1/d2/self"]) else {
            return;
        };
        let codes: Vec<(P, u32)> = got.iter().map(|p| (p.0, p.1)).collect();
        let want = [
            (P::PR_2_LINK_DOT, 13),
            (P::PR_2_LINK_DIR, 13),
            (P::PR_4_BAD_REF_COUNT, 13),
        ];
        assert_eq!(codes, want);
        // d2/up names d1; with d1 gone from the root, d1 and d2 are each other's parent.
        let Some(got) = problems_after(&["link d1 d1/d2/up", "unlink d1"]) else {
            return;
        };
        let codes: Vec<(P, u32)> = got.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(codes, [(P::PR_3_LOOPED_DIR, 12), (P::PR_3_BAD_DOT_DOT, 12)]);
        assert_eq!(got[1].2, "'..' is 2, should be 13");
    }

    #[test]
    fn unattached_inodes_and_a_missing_lost_found() {
        let Some(got) = problems_after(&["write /dev/null d1/empty", "unlink d1/empty"]) else {
            return;
        };
        let codes: Vec<(P, u32)> = got.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(
            codes,
            [(P::PR_4_ZERO_LEN_INODE, 14), (P::PR_4_UNATTACHED_INODE, 14)]
        );
        let Some(got) = problems_after(&["rmdir lost+found"]) else {
            return;
        };
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].0, got[0].0.class()),
            (P::PR_3_NO_LF_DIR, super::super::ProblemClass::Info)
        );
    }
}
