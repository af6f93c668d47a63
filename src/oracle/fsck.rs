//! The `fsck` oracle: our own e2fsck, passes 0 to 5 with e2fsck's stable problem codes, run on a
//! [`Disk`] after every crash state. It reads the image through [`Disk::peek_block`] and the
//! [`crate::format`] parsers only (never `crate::fs`, the engine under test), mutates nothing,
//! and behaves like `e2fsck -fn` (e2fsprogs 1.47): it reports what e2fsck would report and
//! repairs nothing. Reads bypass the device's fault plan and statistics (an oracle judges the
//! contents, not the device), so a checked disk is left exactly as it was.
//!
//! # What it verifies
//!
//! | pass | checks (e2fsck's codes in [`ProblemCode`]) |
//! |---|---|
//! | 0 | superblock checksum and feature sanity, `needs_recovery`; every group descriptor: bitmaps and inode table inside the group and clear of other metadata (`ext2fs_check_desc()`), checksum, `*_UNINIT` flags, `bg_itable_unused`; the journal inode, the JBD2 superblock (format, features, checksum, geometry), `s_start == 0` without `needs_recovery`, the `s_jnl_blocks` backup |
//! | 1 | every inode in the inode tables, scanned like e2fsck (independent of the inode bitmap; groups with `INODE_UNINIT` and the `bg_itable_unused` tail are skipped, as e2fsck does): garbage blocks, checksum, `i_extra_isize`, dtime rules (in use ⇔ `i_links_count > 0`, reserved inodes always), mode, flags against features (`EXTENTS_FL`, a lost `EXTENTS_FL`, inline data, htree, casefold), the block map (illegal blocks, extent headers, order, collisions, bounds, extent block checksums), block ownership (critical metadata conflicts, multiply-claimed blocks → pass 1B with every owner), `i_blocks` (with huge_file semantics), `i_size` (e2fsck's rules), symlinks |
//! | 2 | every directory block: holes, entry chain, `.`/`..`, checksum tails, entries naming bad, unused or not-yet-initialized inodes, names, file types, a second link to a directory, duplicate names in a block |
//! | 3 | the root, every directory reachable from it, loops, `..` equal to the parent |
//! | 4 | link counts against the references counted in pass 2; unattached inodes |
//! | 5 | block and inode bitmaps against what pass 1 found (`-`: marked but unowned, a leak; `+`: used but free, a corruption), bitmap padding and block tails, bitmap checksums, group free block/inode and directory counts, superblock free counts |
//!
//! Informational codes ([`ProblemClass::Info`], e2fsck accepts them and exits 0):
//! `E4_1_FLAG_VERITY_SET` (the on-disk bit of the old `EXT4_EXT_MIGRATE` marker, now
//! `EXT4_VERITY_FL`; e2fsck 1.47 does not complain about it), `E4_1_FLAG_UNKNOWN` (bits ext4
//! never writes), the superblock free counts (e2fsck fixes them silently), a missing
//! `/lost+found` and a stale `s_jnl_blocks` backup (e2fsck fixes both only read-write).
//!
//! # What it does not verify
//!
//! File contents and anything in the journal past its superblock (replay is recovery's job; an
//! image needing it gets `E4_0_NEEDS_RECOVERY`); the orphan list (orphans show up as pass-1
//! dtime problems and pass-5 leaks, as in `e2fsck -n`); extended attributes beyond the magic of
//! an EA block; htree internals past the root (dx nodes, hash order, their checksums); quota
//! contents; the resize
//! inode's structure (only its blocks are counted); the orphan file's contents; backup
//! superblocks and descriptors; extent tree shape (e2fsck's pass-1E "could be narrower"
//! hints are not problems); `meta_bg`, bigalloc and inline data (refused as unsupported).
//!
//! # Where it deliberately differs from e2fsck -n
//!
//! * Where e2fsck aborts (a corrupt directory block, a bad indirect block, corrupt group
//!   descriptors, a root that is not a directory) we report the problem and go on; e2fsck then
//!   switches to backup descriptors, which we never read.
//! * Illegal blocks are reported up to 12 per inode, then `PR_1_TOO_MANY_BAD_BLOCKS`; a walk that
//!   claims more blocks than the filesystem holds stops there. Directory holes and multiply
//!   claimed blocks are reported once per run.
//! * Bad inode fields (`i_faddr`, `i_size_high`, …) are reported at the first directory entry
//!   naming the inode or in pass 4, as e2fsck does, without its repairs.
//! * A directory loop unreachable from the root is `PR_3_LOOPED_DIR` (e2fsck 1.47 only notices
//!   loops deeper than 2048).
//! * Stricter than `e2fsck -n`'s exit status (it exits 0 on these): `E4_0_NEEDS_RECOVERY`, a
//!   journal with data but no `needs_recovery` (the kernel would wipe it), `bg_itable_unused`
//!   larger than the free inodes, `PR_0_RESIZE_INODE_INVALID`.
//! * e2fsprogs 1.47.0 keeps an inode that failed its checksum in its inode cache under another
//!   inode's number (seen: a corrupt inode 5 makes e2fsck count no blocks for the resize
//!   inode); we read every inode from the disk.
//!
//! Kept on purpose, because e2fsck does it: an inode that fails its checksum makes every one
//! of its extent blocks and directory blocks fail theirs (libext2fs rereads the inode to seed
//! them; 256-byte inodes only).
//!
//! # Cost
//!
//! Proportional to the metadata in use: each inode-table block up to `bg_itable_unused` is read
//! once (groups with `INODE_UNINIT` are skipped), then each mapping block, directory block and
//! bitmap once. In-memory maps are bit sets over blocks and inodes.
//!
//! # Layout
//!
//! | file | holds |
//! |---|---|
//! | `fsck/problem.rs` | [`ProblemCode`] (names, numbers, classes), [`Problem`] |
//! | `fsck/pass0.rs` | superblock, descriptors, journal |
//! | `fsck/pass1.rs` | the inode scan and the checks of one inode |
//! | `fsck/blocks.rs` | `check_blocks()`: EA block, htree root, `i_size`, `i_blocks`, symlinks |
//! | `fsck/walk.rs` | the block-map walk of one inode (extent trees, indirect maps) |
//! | `fsck/pass1b.rs` | owners of multiply-claimed blocks |
//! | `fsck/pass2.rs` | directory blocks and entries |
//! | `fsck/pass34.rs` | connectivity and link counts |
//! | `fsck/pass5.rs` | bitmaps and counts |
//! | `fsck/bits.rs` | the bit sets |

mod bits;
mod blocks;
mod memo;
mod pass0;
mod pass1;
mod pass1b;
mod pass2;
mod pass34;
mod pass5;
pub mod problem;
mod walk;

pub use memo::FsckMemo;

pub use problem::{Problem, ProblemClass, ProblemCode};

use crate::dev::{Block, Disk};
use crate::error::{CorruptKind, Result};
use crate::format::group_desc::{parse_table, GroupDesc};
use crate::format::superblock::{Superblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use crate::units::Pblk;
use bits::Bits;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What one check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Every problem, in pass order.
    pub problems: Vec<Problem>,
    /// Counts of what was checked.
    pub stats: FsckStats,
}

/// Counts of what a check saw, e2fsck's summary line and a little more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsckStats {
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// Inodes found in use (reserved inodes included).
    pub inodes_used: u32,
    /// Non-zero inode records checked (all-zero ones, never used, need nothing).
    pub inodes_scanned: u64,
    /// Directories in use.
    pub dirs: u32,
    /// Regular files in use.
    pub regular: u32,
    /// Symbolic links in use.
    pub symlinks: u32,
    /// `s_blocks_count`.
    pub blocks_count: u64,
    /// Blocks found in use (metadata included).
    pub blocks_used: u64,
    /// Blocks read from the disk.
    pub blocks_read: u64,
}

impl FsckReport {
    /// No leak and no corruption (information problems allowed), like `e2fsck -fn` exiting 0.
    pub fn is_clean(&self) -> bool {
        self.problems
            .iter()
            .all(|p| p.class() == ProblemClass::Info)
    }

    /// Number of problems of class `class`.
    pub fn count(&self, class: ProblemClass) -> usize {
        self.problems.iter().filter(|p| p.class() == class).count()
    }

    /// Whether a problem with code `code` was found.
    pub fn has(&self, code: ProblemCode) -> bool {
        self.problems.iter().any(|p| p.code == code)
    }

    /// The distinct codes found, in code order.
    pub fn codes(&self) -> BTreeSet<ProblemCode> {
        self.problems.iter().map(|p| p.code).collect()
    }

    /// Whether every problem is allowed after a crash in the middle of an operation: only
    /// leaks (and information).
    pub fn only_leaks(&self) -> bool {
        self.count(ProblemClass::Corruption) == 0
    }

    /// One line: `clean` or the problem counts, then the usage summary.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        let head = if self.is_clean() {
            "clean".to_string()
        } else {
            format!(
                "{} problems ({} corruption, {} leak)",
                self.count(ProblemClass::Corruption) + self.count(ProblemClass::Leak),
                self.count(ProblemClass::Corruption),
                self.count(ProblemClass::Leak)
            )
        };
        let info = match self.count(ProblemClass::Info) {
            0 => String::new(),
            n => format!(", {n} info"),
        };
        format!(
            "{head}{info}; {}/{} inodes, {}/{} blocks",
            s.inodes_used, s.inodes_count, s.blocks_used, s.blocks_count
        )
    }

    /// `{"clean":bool,"problems":[{"code","name","class","ino","blk","group","msg"}]}`; absent
    /// places are `null`, `code` is the number.
    pub fn to_json(&self) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = self
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "code": p.code.value(),
                    "name": p.code.name(),
                    "class": p.class().name(),
                    "ino": p.ino.map(|i| i.0),
                    "blk": p.blk.map(|b| b.0),
                    "group": p.group,
                    "msg": p.msg,
                })
            })
            .collect();
        serde_json::json!({ "clean": self.is_clean(), "problems": problems })
    }
}

/// Check the filesystem on `dev` like `e2fsck -fn` and report every problem.
///
/// # Errors
/// Only when the image cannot be checked at all: `Error::Corrupt` for a superblock that does
/// not parse (bad magic, geometry), a filesystem larger than the device, or a descriptor table
/// outside the filesystem; `Error::Unsupported` for features the checker does not model.
pub fn check(dev: &mut Disk) -> Result<FsckReport> {
    check_reads(dev).0
}

/// [`check`], and every block it read: (device block number, content), in the order read.
/// The result is a function of `dev`'s geometry and of those blocks alone ([`FsckMemo`]).
fn check_reads(dev: &Disk) -> (Result<FsckReport>, Vec<(u64, Block)>) {
    let mut reads = Vec::new();
    let mut f = match Fsck::open_recording(dev, &mut reads) {
        Ok(f) => f,
        Err(e) => return (Err(e), reads),
    };
    f.pass0();
    f.pass1();
    f.pass1b();
    f.pass2();
    f.pass3();
    f.pass4();
    f.pass5();
    let reads = std::mem::take(&mut f.reads);
    (Ok(f.finish()), reads)
}

/// What pass 1 keeps of an inode in use for the later passes.
#[derive(Clone, Debug, Default)]
struct InodeInfo {
    /// `i_mode`.
    mode: u16,
    /// `i_links_count`.
    links: u16,
    /// `i_blocks == 0` (a zero-length inode in pass 4).
    no_blocks: bool,
    /// A directory with `EXT4_INDEX_FL`: pass 2 skips the checksums of its dx blocks.
    htree: bool,
    /// `i_generation` (part of the checksum seed of its directory blocks).
    generation: u32,
    /// Its checksum fails, so its directory blocks' checksums "fail" too (see `reread_fails`).
    csum_bad: bool,
    /// Problems e2fsck reports when a directory entry first names the inode (pass 2) or in
    /// pass 4 (`e2fsck_process_bad_inode()`).
    bad: Vec<Problem>,
    /// Pass 1 found bad fields (e2fsck's `inode_bad_map`, which `-n` never clears): the file
    /// type expected in a directory entry is then 0.
    marked_bad: bool,
}

/// Parent and `..` of a directory (e2fsck's `dir_info`).
#[derive(Clone, Copy, Debug, Default)]
struct DirInfo {
    /// The directory holding the first entry naming it (0 = none yet).
    parent: u32,
    /// The inode its `..` names (0 = none).
    dotdot: u32,
}

/// A run of blocks claimed by an inode (data or mapping), kept for pass 1B.
#[derive(Clone, Copy, Debug)]
struct Claim {
    ino: u32,
    start: u64,
    len: u64,
}

/// One directory block to check in pass 2: `count` holes when `pblk` is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirBlock {
    ino: u32,
    lblk: u64,
    pblk: u64,
    count: u64,
}

/// The checker's state: the image, what is known of it, and the problems found.
struct Fsck<'d> {
    dev: &'d Disk,
    sb: Superblock,
    descs: Vec<GroupDesc>,
    /// Block size.
    bs: u32,
    /// `s_blocks_count`.
    nr_blocks: u64,
    problems: Vec<Problem>,
    stats: FsckStats,
    /// Blocks in use (e2fsck's `block_found_map`).
    found: Bits,
    /// Superblocks, descriptors, bitmaps and inode tables (`block_metadata_map`).
    meta: Bits,
    /// Blocks claimed twice (`block_dup_map`).
    dup: Bits,
    claims: Vec<Claim>,
    /// Inodes in use, bit `ino - 1` (`inode_used_map`).
    used: Bits,
    inodes: BTreeMap<u32, InodeInfo>,
    dirs: BTreeMap<u32, DirInfo>,
    dir_blocks: Vec<DirBlock>,
    ea_blocks: BTreeSet<u64>,
    /// References counted in pass 2 (`inode_count`).
    counted: BTreeMap<u32, u32>,
    /// The inode named `lost+found` in the root.
    lost_found: Option<u32>,
    /// Every device block read, with its content, in order (see [`check_reads`]).
    reads: Vec<(u64, Block)>,
}

impl<'d> Fsck<'d> {
    /// Read the superblock and the descriptor table: everything without which nothing can be
    /// checked.
    #[cfg(test)]
    fn open(dev: &'d Disk) -> Result<Fsck<'d>> {
        Fsck::open_recording(dev, &mut Vec::new())
    }

    /// [`Fsck::open`], recording the blocks it reads in `reads` (moved into the checker).
    fn open_recording(dev: &'d Disk, reads: &mut Vec<(u64, Block)>) -> Result<Fsck<'d>> {
        let dev_bytes = dev.nr_blocks() * u64::from(dev.block_size());
        if dev_bytes < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
            return Err(CorruptKind::Truncated { what: "superblock" }.into());
        }
        let raw = read_bytes(dev, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, reads);
        let sb = Superblock::parse(&raw)?;
        sb.check_supported()?;
        let bs = sb.block_size();
        if sb
            .s_blocks_count
            .checked_mul(u64::from(bs))
            .is_none_or(|b| b > dev_bytes)
        {
            let what = "s_blocks_count (past end of image)";
            return Err(CorruptKind::SuperblockGeometry(what).into());
        }
        let gdt_start = sb.gdt_block(0);
        let gdt_end = gdt_start + u64::from(sb.gdt_blocks());
        if gdt_end > sb.s_blocks_count {
            let what = "group descriptor table";
            return Err(CorruptKind::Truncated { what }.into());
        }
        let len = (gdt_end - gdt_start) * u64::from(bs);
        let table = read_bytes(dev, gdt_start * u64::from(bs), len as usize, reads);
        let descs = parse_table(&sb, &table)?;
        let nr_blocks = sb.s_blocks_count;
        let inodes = u64::from(sb.s_inodes_count);
        let stats = FsckStats {
            inodes_count: sb.s_inodes_count,
            blocks_count: nr_blocks,
            ..FsckStats::default()
        };
        Ok(Fsck {
            dev,
            descs,
            bs,
            nr_blocks,
            problems: Vec::new(),
            stats,
            found: Bits::new(nr_blocks),
            meta: Bits::new(nr_blocks),
            dup: Bits::new(nr_blocks),
            claims: Vec::new(),
            used: Bits::new(inodes),
            inodes: BTreeMap::new(),
            dirs: BTreeMap::new(),
            dir_blocks: Vec::new(),
            ea_blocks: BTreeSet::new(),
            counted: BTreeMap::new(),
            lost_found: None,
            reads: std::mem::take(reads),
            sb,
        })
    }

    /// The report, with the usage statistics filled in.
    fn finish(mut self) -> FsckReport {
        let first = u64::from(self.sb.s_first_data_block);
        // As e2fsck counts them: everything but the free blocks (block 0 of a 1 KiB filesystem
        // included).
        self.stats.blocks_used = first + self.found.count(first, self.nr_blocks);
        self.stats.inodes_used = u32::try_from(self.used.count(0, self.used.len())).unwrap_or(0);
        FsckReport {
            problems: self.problems,
            stats: self.stats,
        }
    }

    /// Record a problem.
    fn report(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// Filesystem block `n` (all zero past the end of the filesystem; callers check ranges
    /// where it matters).
    fn block(&mut self, n: u64) -> Block {
        self.stats.blocks_read += 1;
        let bs = u64::from(self.bs);
        if n >= self.nr_blocks {
            return Arc::from(vec![0u8; self.bs as usize]);
        }
        if self.dev.block_size() == self.bs {
            let data = self.dev.peek_block(Pblk(n));
            self.reads.push((n, Arc::clone(&data)));
            return data;
        }
        Arc::from(read_bytes(
            self.dev,
            n * bs,
            self.bs as usize,
            &mut self.reads,
        ))
    }

    /// Whether metadata_csum is on.
    fn csum(&self) -> bool {
        self.sb.metadata_csum()
    }

    /// Whether descriptors carry checksums (metadata_csum or gdt_csum): `*_UNINIT` and
    /// `bg_itable_unused` count.
    fn gdt_csum(&self) -> bool {
        self.sb.has_group_desc_csum()
    }

    /// Mark `len` blocks from `start` in use; a block marked before becomes multiply-claimed.
    fn mark_used(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len).min(self.nr_blocks);
        self.found.set_range_dup(&mut self.dup, start, end);
    }

    /// Whether inode `ino` is in use.
    fn in_use(&self, ino: u32) -> bool {
        ino != 0 && self.used.test(u64::from(ino) - 1)
    }
}

/// `len` bytes at byte offset `off` of `dev`, without I/O accounting (zeros past the end); the
/// blocks read are recorded in `reads`.
fn read_bytes(dev: &Disk, off: u64, len: usize, reads: &mut Vec<(u64, Block)>) -> Vec<u8> {
    let dbs = u64::from(dev.block_size());
    let mut out = Vec::with_capacity(len);
    let mut pos = off;
    while out.len() < len {
        let data = dev.peek_block(Pblk(pos / dbs));
        reads.push((pos / dbs, Arc::clone(&data)));
        let in_blk = (pos % dbs) as usize;
        let n = (data.len() - in_blk).min(len - out.len());
        out.extend_from_slice(&data[in_blk..in_blk + n]);
        pos += n as u64;
    }
    out
}

/// `ext2_file_type()`: the directory-entry file type of an inode mode (0 if none).
fn file_type_of(mode: u16) -> u8 {
    use crate::format::dir::*;
    use crate::format::inode::*;
    match mode & S_IFMT {
        S_IFREG => EXT4_FT_REG_FILE,
        S_IFDIR => EXT4_FT_DIR,
        S_IFCHR => EXT4_FT_CHRDEV,
        S_IFBLK => EXT4_FT_BLKDEV,
        S_IFIFO => EXT4_FT_FIFO,
        S_IFSOCK => EXT4_FT_SOCK,
        S_IFLNK => EXT4_FT_SYMLINK,
        _ => EXT4_FT_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::format::group_desc::testutil::{mkfs, XorShift};

    /// A 1 KiB-block ext4 image with a few files, as a disk; `None` without e2fsprogs.
    pub(super) fn filled_image(opts: &str) -> Option<Disk> {
        let img = mkfs(opts, 8 << 20)?;
        let dir = img.path.with_extension("d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), vec![0x5A; 70_000]).unwrap();
        let script = "write a f1\nwrite a f2\npunch f2 3 3\npunch f2 7 7\npunch f2 11 11\n\
                      punch f2 15 15\npunch f2 19 19\nmkdir d\nwrite a d/f3\nsymlink d/l \
                      /a/long/target/name/that/needs/a/block/of/its/own/for/sure/yes\n";
        std::fs::write(dir.join("cmds"), script).unwrap();
        let out = std::process::Command::new("debugfs")
            .current_dir(&dir)
            .args(["-w", "-f", "cmds"])
            .arg(&img.path)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "debugfs: {out:?}");
        Some(Disk::load(&img.path, 1024).unwrap())
    }

    #[test]
    fn mkfs_images_are_clean_and_the_disk_is_untouched() {
        let Some(mut dev) = filled_image("-t ext4 -b 1024") else {
            return;
        };
        let before = (dev.stats(), dev.log().len(), dev.overlay_blocks());
        let report = check(&mut dev).unwrap();
        assert_eq!(report.problems, [], "{}", report.summary());
        assert!(report.is_clean() && report.only_leaks());
        assert_eq!((dev.stats(), dev.log().len(), dev.overlay_blocks()), before);
        let s = report.stats;
        // Inodes 1-11, the files f1 f2 d d/f3 d/l.
        assert_eq!(
            (s.inodes_used, s.dirs, s.regular, s.symlinks),
            (16, 3, 3, 1)
        );
        assert_eq!(s.blocks_count, 8192);
        assert!(
            report.summary().starts_with("clean; 16/2048 inodes"),
            "{}",
            report.summary()
        );
        assert_eq!(
            report.to_json(),
            serde_json::json!({"clean": true, "problems": []})
        );
    }

    #[test]
    fn a_disk_with_other_block_sizes_reads_the_same() {
        let Some(img) = mkfs("-t ext4 -b 1024", 4 << 20) else {
            return;
        };
        let mut small = Disk::load(&img.path, 1024).unwrap();
        let mut big = Disk::load(&img.path, 4096).unwrap();
        let (a, b) = (check(&mut small).unwrap(), check(&mut big).unwrap());
        assert!(a.is_clean(), "{:?}", a.problems);
        assert_eq!(a.problems, b.problems);
        assert_eq!(a.stats.inodes_used, b.stats.inodes_used);
    }

    #[test]
    fn unreadable_images_are_errors() {
        let mut dev = Disk::new(1024, 1);
        let short = Err(Error::Corrupt(CorruptKind::Truncated {
            what: "superblock",
        }));
        assert_eq!(check(&mut dev), short);
        let mut dev = Disk::new(1024, 64);
        let magic = Err(Error::Corrupt(CorruptKind::SuperblockMagic));
        assert_eq!(check(&mut dev), magic);
        let Some(img) = mkfs("-t ext4 -b 1024", 4 << 20) else {
            return;
        };
        let full = Disk::load(&img.path, 1024).unwrap();
        let mut cut = Disk::new(1024, 2048);
        for b in 0..2048 {
            cut.write(Pblk(b), &full.peek_block(Pblk(b))).unwrap();
        }
        let past = CorruptKind::SuperblockGeometry("s_blocks_count (past end of image)");
        assert_eq!(check(&mut cut), Err(Error::Corrupt(past)));
    }

    #[test]
    fn random_and_mutated_images_never_panic() {
        let mut rng = XorShift(0x00F5_C4EC);
        for round in 0..40 {
            let blocks = 2 + rng.below(64);
            let mut dev = Disk::new(1024, blocks);
            for b in 0..blocks {
                dev.write(Pblk(b), &rng.bytes(1024)).unwrap();
            }
            if round % 2 == 0 {
                let mut sb = dev.peek_block(Pblk(1)).to_vec();
                sb[0x38..0x3A].copy_from_slice(&[0x53, 0xEF]);
                dev.write(Pblk(1), &sb).unwrap();
            }
            let _ = check(&mut dev);
        }
        let Some(mut base) = filled_image("-t ext4 -b 1024") else {
            return;
        };
        base.freeze();
        let mut outcomes = [0usize; 3];
        for _ in 0..300 {
            let mut dev = base.clone();
            for _ in 0..1 + rng.below(24) {
                let blk = if rng.below(4) == 0 {
                    rng.below(8192)
                } else {
                    rng.below(700)
                };
                let mut buf = dev.peek_block(Pblk(blk)).to_vec();
                let at = rng.below(1024) as usize;
                buf[at] = rng.next() as u8;
                dev.write(Pblk(blk), &buf).unwrap();
            }
            match check(&mut dev) {
                Ok(r) if r.is_clean() => outcomes[0] += 1,
                Ok(_) => outcomes[1] += 1,
                Err(_) => outcomes[2] += 1,
            }
        }
        assert!(
            outcomes[1] > 100,
            "mutations should mostly be found: {outcomes:?}"
        );
    }
}
