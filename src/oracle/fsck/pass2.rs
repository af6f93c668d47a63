//! Pass 2: directory structure (model of `check_dir_block()`, e2fsck/pass2.c).
//!
//! The directory blocks collected in pass 1 are checked in e2fsck's order (every directory's
//! block 0 first, then by physical block). Each block: its checksum tail, then the entries
//! one by one: the chain (`rec_len`), `.` and `..` in block 0, the inode each entry names
//! (range, in use, in an uninitialized part of the inode table), the name, the file type, a
//! second link to a directory. Every entry naming an inode counts one reference for pass 4;
//! `..` and the first entry naming a directory set its `dotdot` and `parent` for pass 3.
//!
//! Entries are read raw rather than with [`crate::format::dir::parse_block`], because e2fsck
//! checks `.` and `..` and each name on their own where the kernel rejects a whole block.

use super::{file_type_of, DirBlock, Fsck, Problem, ProblemCode as P};
use crate::bytes::{read_u16le, read_u32le};
use crate::format::dir::{self, rec_len_for, EXT4_DIR_TAIL_SIZE};
use crate::format::group_desc::EXT4_BG_INODE_UNINIT;
use crate::format::inode::{inode_csum_seed, EXT4_ROOT_INO};
use crate::format::superblock::EXT4_FEATURE_INCOMPAT_FILETYPE;
use crate::units::Ino;
use std::collections::BTreeSet;

/// One directory entry, as read.
struct Dirent<'a> {
    inode: u32,
    rec_len: usize,
    file_type: u8,
    name: &'a [u8],
    /// The byte after the name (for the NUL-termination checks of `.` and `..`).
    after_name: u8,
}

impl Fsck<'_> {
    /// Pass 2.
    pub(super) fn pass2(&mut self) {
        let mut blocks = std::mem::take(&mut self.dir_blocks);
        blocks.sort_by_key(|d| (d.lblk != 0, d.pblk, d.ino, d.lblk));
        for db in &blocks {
            self.check_dir_block(db);
        }
        self.dir_blocks = blocks;
    }

    /// One directory block (or a run of holes).
    fn check_dir_block(&mut self, db: &DirBlock) {
        let ino = db.ino;
        if db.pblk == 0 {
            let msg = match db.count {
                1 => format!("directory has a hole at logical block {}", db.lblk),
                n => format!(
                    "directory has holes at logical blocks {}-{}",
                    db.lblk,
                    db.lblk + n - 1
                ),
            };
            return self.report(Problem::new(P::PR_2_DIRECTORY_HOLE, msg).ino(ino));
        }
        let buf = self.block(db.pblk);
        let htree = self.inodes.get(&ino).is_some_and(|i| i.htree);
        let is_leaf = !(htree && (db.lblk == 0 || is_dx_node(&buf)));
        let mut max = buf.len();
        let mut failed_csum = false;
        if self.csum() && is_leaf {
            if dir::has_tail(&buf) {
                max -= EXT4_DIR_TAIL_SIZE;
                let (gen, bad) = self
                    .inodes
                    .get(&ino)
                    .map_or((0, false), |i| (i.generation, i.csum_bad));
                let seed = inode_csum_seed(self.sb.csum_seed(), Ino(ino), gen);
                failed_csum = bad || dir::dirblock_csum_verify(seed, &buf, Ino(ino)).is_err();
            } else {
                let msg = format!("no space for a checksum in directory block {}", db.lblk);
                self.report(
                    Problem::new(P::PR_2_LEAF_NODE_MISSING_CSUM, msg)
                        .ino(ino)
                        .blk(db.pblk),
                );
            }
        }
        let intact = self.check_entries(db, &buf[..max]);
        if intact && failed_csum {
            let msg = format!(
                "directory block {} passes checks, but its checksum does not match",
                db.lblk
            );
            self.report(
                Problem::new(P::PR_2_LEAF_NODE_ONLY_CSUM_INVALID, msg)
                    .ino(ino)
                    .blk(db.pblk),
            );
        }
    }

    /// The entries of one block (`buf` up to the tail); false if the chain is corrupt.
    fn check_entries(&mut self, db: &DirBlock, buf: &[u8]) -> bool {
        let mut dot_state = if db.lblk == 0 { 0 } else { 2 };
        let mut names: BTreeSet<&[u8]> = BTreeSet::new();
        let mut dup_reported = false;
        let mut offset = 0;
        while offset < buf.len() {
            let Some(d) = read_dirent(buf, offset, self.bs) else {
                let msg = format!("directory block {} is corrupt at offset {offset}", db.lblk);
                self.report(
                    Problem::new(P::PR_2_DIR_CORRUPTED, msg)
                        .ino(db.ino)
                        .blk(db.pblk),
                );
                return false;
            };
            match dot_state {
                0 => self.check_dot(db.ino, &d),
                1 => self.check_dotdot(db.ino, &d),
                _ if d.inode == db.ino => {
                    self.entry_problem(db.ino, P::PR_2_LINK_DOT, "entry is a link to '.'");
                }
                _ => {}
            }
            if d.inode != 0 {
                self.check_entry(db.ino, &d, dot_state);
                if !names.insert(d.name) && !dup_reported {
                    let msg = format!("duplicate entry '{}' in block {}", show(d.name), db.lblk);
                    self.report(Problem::new(P::PR_2_REPORT_DUP_DIRENT, msg).ino(db.ino));
                    dup_reported = true;
                }
            }
            offset += d.rec_len;
            dot_state += 1;
        }
        true
    }

    /// Model of `check_dot()`.
    fn check_dot(&mut self, dir: u32, d: &Dirent<'_>) {
        let problem = if d.inode == 0 {
            Some((P::PR_2_MISSING_DOT, "missing '.'"))
        } else if d.name != b"." {
            Some((P::PR_2_1ST_NOT_DOT, "first entry is not '.'"))
        } else if d.after_name != 0 {
            Some((P::PR_2_DOT_NULL_TERM, "'.' is not NUL terminated"))
        } else {
            None
        };
        if let Some((code, msg)) = problem {
            self.entry_problem(dir, code, msg);
        }
        if d.inode != dir {
            let msg = format!("'.' names inode {}, should be {dir}", d.inode);
            self.entry_problem(dir, P::PR_2_BAD_INODE_DOT, &msg);
        }
        if d.rec_len > 12 && d.rec_len - 12 > 12 {
            self.entry_problem(dir, P::PR_2_SPLIT_DOT, "'.' entry is too big");
        }
    }

    /// Model of `check_dotdot()`: records `..` for pass 3 when the entry is one.
    fn check_dotdot(&mut self, dir: u32, d: &Dirent<'_>) {
        let problem = if d.inode == 0 {
            Some((P::PR_2_MISSING_DOT_DOT, "missing '..'"))
        } else if d.name != b".." {
            Some((P::PR_2_2ND_NOT_DOT_DOT, "second entry is not '..'"))
        } else if d.after_name != 0 {
            Some((P::PR_2_DOT_DOT_NULL_TERM, "'..' is not NUL terminated"))
        } else {
            None
        };
        match problem {
            Some((code, msg)) => self.entry_problem(dir, code, msg),
            None => {
                if let Some(info) = self.dirs.get_mut(&dir) {
                    info.dotdot = d.inode;
                }
            }
        }
    }

    /// The checks of an entry naming inode `d.inode` (not 0), then its reference count.
    fn check_entry(&mut self, dir: u32, d: &Dirent<'_>, dot_state: u32) {
        let ino = d.inode;
        let first_ino = self.sb.first_ino();
        if (ino != EXT4_ROOT_INO && ino < first_ino) || ino > self.sb.s_inodes_count {
            let msg = format!("entry '{}' has bad inode number {ino}", show(d.name));
            return self.entry_problem(dir, P::PR_2_BAD_INO, &msg);
        }
        let late = [
            (d.name == b".", P::PR_2_DUP_DOT, "duplicate '.' entry"),
            (d.name == b"..", P::PR_2_DUP_DOT_DOT, "duplicate '..' entry"),
            (
                ino == EXT4_ROOT_INO,
                P::PR_2_LINK_ROOT,
                "entry is a link to the root",
            ),
            (
                d.name.is_empty(),
                P::PR_2_NULL_NAME,
                "entry has a zero-length name",
            ),
        ];
        if dot_state > 1 {
            if let Some(&(_, code, msg)) = late.iter().find(|l| l.0) {
                self.entry_problem(dir, code, msg);
            }
        }
        if let Some(info) = self.inodes.get_mut(&ino) {
            let bad = std::mem::take(&mut info.bad);
            self.problems.extend(bad);
        }
        self.check_uninit_ref(dir, d);
        if !self.in_use(ino) {
            let msg = format!("entry '{}' has deleted/unused inode {ino}", show(d.name));
            self.entry_problem(dir, P::PR_2_UNUSED_INODE, &msg);
        }
        if d.name.iter().any(|&c| c == b'/' || c == 0) {
            let msg = format!(
                "entry '{}' has illegal characters in its name",
                show(d.name)
            );
            self.entry_problem(dir, P::PR_2_BAD_NAME, &msg);
        }
        self.check_filetype(dir, d);
        if dot_state > 1 && self.dirs.contains_key(&ino) {
            self.link_subdir(dir, d);
        }
        *self.counted.entry(ino).or_default() += 1;
        if dir == EXT4_ROOT_INO && d.name == b"lost+found" && self.lost_found.is_none() {
            self.lost_found = Some(ino);
        }
    }

    /// An entry naming an inode the scan skipped: in a group marked `INODE_UNINIT`, or in the
    /// `bg_itable_unused` tail of its group.
    fn check_uninit_ref(&mut self, dir: u32, d: &Dirent<'_>) {
        if !self.gdt_csum() {
            return;
        }
        let ipg = self.sb.s_inodes_per_group;
        let g = (d.inode - 1) / ipg;
        let Some(gd) = self.descs.get(g as usize) else {
            return;
        };
        let first_unused = g * ipg + 1 + ipg.saturating_sub(gd.bg_itable_unused);
        if gd.bg_flags & EXT4_BG_INODE_UNINIT != 0 {
            let msg = format!(
                "entry names inode {} in group {g}, marked INODE_UNINIT",
                d.inode
            );
            self.entry_problem(dir, P::PR_2_INOREF_BG_INO_UNINIT, &msg);
        } else if d.inode >= first_unused {
            let msg = format!("entry names inode {} in group {g}'s unused area", d.inode);
            self.entry_problem(dir, P::PR_2_INOREF_IN_UNUSED, &msg);
        }
    }

    /// Model of `check_filetype()`.
    fn check_filetype(&mut self, dir: u32, d: &Dirent<'_>) {
        if !self.sb.has_incompat(EXT4_FEATURE_INCOMPAT_FILETYPE) {
            if d.file_type != 0 {
                let msg = format!("entry '{}' has file type {}", show(d.name), d.file_type);
                self.entry_problem(dir, P::PR_2_CLEAR_FILETYPE, &msg);
            }
            return;
        }
        let should = match self.inodes.get(&d.inode) {
            Some(info) if info.marked_bad => 0,
            Some(info) => file_type_of(info.mode),
            None => self
                .read_inode(d.inode)
                .map_or(0, |i| file_type_of(i.i_mode)),
        };
        if d.file_type == should {
            return;
        }
        let code = if d.file_type == 0 {
            P::PR_2_SET_FILETYPE
        } else {
            P::PR_2_BAD_FILETYPE
        };
        let msg = format!(
            "entry '{}' has file type {}, should be {should}",
            show(d.name),
            d.file_type
        );
        self.entry_problem(dir, code, &msg);
    }

    /// A subdirectory entry: the first sets the parent, a second is a hard link to a directory.
    fn link_subdir(&mut self, dir: u32, d: &Dirent<'_>) {
        let Some(info) = self.dirs.get_mut(&d.inode) else {
            return;
        };
        if info.parent == 0 {
            info.parent = dir;
            return;
        }
        let msg = format!(
            "entry '{}' is a link to directory {}, already in {}",
            show(d.name),
            d.inode,
            info.parent
        );
        self.entry_problem(dir, P::PR_2_LINK_DIR, &msg);
    }

    /// A problem with an entry of directory `dir` (e2fsck names the directory).
    fn entry_problem(&mut self, dir: u32, code: P, msg: &str) {
        self.report(Problem::new(code, msg).ino(dir));
    }
}

/// The entry at `offset` of `buf` (the block up to its tail), if its `rec_len` is sane (the
/// `PR_2_DIR_CORRUPTED` test of `check_dir_block()`).
fn read_dirent(buf: &[u8], offset: usize, block_size: u32) -> Option<Dirent<'_>> {
    if offset + 8 > buf.len() {
        return None;
    }
    let rec_len = dir::rec_len_from_disk(read_u16le(buf, offset + 4), block_size) as usize;
    let name_len = usize::from(buf[offset + 6]);
    let sane = offset + rec_len <= buf.len()
        && rec_len >= 12
        && rec_len % 4 == 0
        && rec_len_for(name_len) as usize <= rec_len;
    if !sane {
        return None;
    }
    let name = &buf[offset + 8..offset + 8 + name_len];
    let after_name = buf.get(offset + 8 + name_len).copied().unwrap_or(0);
    let after_name = if 8 + name_len < rec_len {
        after_name
    } else {
        0
    };
    Some(Dirent {
        inode: read_u32le(buf, offset),
        rec_len,
        file_type: buf[offset + 7],
        name,
        after_name,
    })
}

/// Whether a block of an htree directory is an interior dx node: one empty entry spanning the
/// whole block.
fn is_dx_node(buf: &[u8]) -> bool {
    let rec_len = dir::rec_len_from_disk(read_u16le(buf, 4), buf.len() as u32) as usize;
    read_u32le(buf, 0) == 0 && rec_len == buf.len() && buf[6] == 0
}

/// A name for messages.
fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(buf: &mut [u8], off: usize, ino: u32, rec_len: u16, name: &[u8], ft: u8) {
        buf[off..off + 4].copy_from_slice(&ino.to_le_bytes());
        buf[off + 4..off + 6].copy_from_slice(&rec_len.to_le_bytes());
        buf[off + 6] = name.len() as u8;
        buf[off + 7] = ft;
        buf[off + 8..off + 8 + name.len()].copy_from_slice(name);
    }

    #[test]
    fn dirent_chain_sanity_is_e2fsck_s() {
        let mut buf = vec![0u8; 1024];
        entry(&mut buf, 0, 12, 12, b".", 2);
        entry(&mut buf, 12, 2, 1012, b"..", 2);
        let d = read_dirent(&buf, 0, 1024).unwrap();
        assert_eq!(
            (d.inode, d.rec_len, d.name, d.after_name),
            (12, 12, &b"."[..], 0)
        );
        let d = read_dirent(&buf, 12, 1024).unwrap();
        assert_eq!((d.rec_len, d.file_type), (1012, 2));
        for bad in [8u16, 14, 1016] {
            let mut b = buf.clone();
            b[16..18].copy_from_slice(&bad.to_le_bytes());
            assert!(read_dirent(&b, 12, 1024).is_none(), "rec_len {bad}");
        }
        let mut b = buf.clone();
        b[18] = 200; // name longer than the entry
        b[16..18].copy_from_slice(&20u16.to_le_bytes());
        assert!(read_dirent(&b, 12, 1024).is_none());
        assert!(
            read_dirent(&buf, 1020, 1024).is_none(),
            "no room for a header"
        );
        assert!(!is_dx_node(&buf));
        let mut node = vec![0u8; 1024];
        node[4..6].copy_from_slice(&1024u16.to_le_bytes());
        assert!(is_dx_node(&node));
    }
}
