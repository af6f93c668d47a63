//! The `flag-on-disk` oracle: no inode record the engine ever wrote — to its home in an inode
//! table, or as a copy in the journal — carries the migrate marker or any flag bit the kernel
//! keeps in memory only.
//!
//! In 2008 the marker `EXT4_EXT_MIGRATE` was bit `0x00100000` of the on-disk `i_flags`
//! (267e4db9ac28 masked it in `ext4_do_update_inode()`); today the marker is the in-memory
//! `EXT4_STATE_EXT_MIGRATE` and the on-disk bit is `EXT4_VERITY_FL`, which the engine never
//! sets, so a record carrying it on disk is a leaked marker (seeded bug S3). e2fsck 1.47 does
//! not complain about it, which is why this oracle exists.
//!
//! # What it verifies
//!
//! Every write in the device log (so every version of every block, durable or not — a crash
//! may keep any of them):
//!
//! * writes to the static inode-table zone: each inode record in the block;
//! * journal writes: descriptor blocks are parsed, their tags name the home block of each
//!   following log block; copies of inode-table blocks are un-escaped and checked like home
//!   writes.
//!
//! A record is checked when it is in use (`i_links_count > 0`, or a mode with no `i_dtime`:
//! the temporary inode of a migration has no links). It fails when `i_flags` has
//! `EXT4_VERITY_FL` or a bit outside `EXT4_FL_USER_VISIBLE`.
//!
//! # What it does not verify
//!
//! Records in blocks the log does not hold (the template), other on-disk fields (fsck's job),
//! and in-memory state never written.

use super::crash::Problem;
use crate::bytes::{read_u16le, read_u32le};
use crate::dev::{LogEntry, LogOp, Zone};
use crate::format::group_desc::GroupDesc;
use crate::format::inode::{EXT4_FL_USER_VISIBLE, EXT4_VERITY_FL};
use crate::format::jbd2::descriptor::{parse_descriptor, BlockTag};
use crate::format::jbd2::{
    unescape, JournalHeader, JournalSuperblock, JBD2_DESCRIPTOR_BLOCK, JBD2_FLAG_ESCAPE,
    JBD2_MAGIC_NUMBER,
};
use crate::format::superblock::Superblock;
use std::collections::VecDeque;

/// 0x00 i_mode.
const I_MODE: usize = 0x00;
/// 0x14 i_dtime.
const I_DTIME: usize = 0x14;
/// 0x1A i_links_count.
const I_LINKS_COUNT: usize = 0x1A;
/// 0x20 i_flags.
const I_FLAGS: usize = 0x20;

/// Where the inode tables are: enough of the superblock and descriptors to name the inodes of an
/// inode-table block.
pub struct InodeTables {
    /// First block of each group's inode table.
    tables: Vec<u64>,
    itable_blocks: u64,
    inodes_per_group: u32,
    inodes_per_block: u32,
    inode_size: usize,
}

impl InodeTables {
    /// The inode tables of a filesystem.
    pub fn new(sb: &Superblock, gds: &[GroupDesc]) -> InodeTables {
        InodeTables {
            tables: gds.iter().map(|g| g.bg_inode_table).collect(),
            itable_blocks: u64::from(sb.itable_blocks()),
            inodes_per_group: sb.s_inodes_per_group,
            inodes_per_block: sb.inodes_per_block(),
            inode_size: sb.inode_size() as usize,
        }
    }

    /// The inode number of the first record of `blk`, if `blk` is an inode-table block.
    fn first_ino(&self, blk: u64) -> Option<u32> {
        self.tables.iter().enumerate().find_map(|(g, &t)| {
            let idx = blk.checked_sub(t).filter(|&i| i < self.itable_blocks)?;
            let idx = u32::try_from(idx).ok()?;
            Some(g as u32 * self.inodes_per_group + idx * self.inodes_per_block + 1)
        })
    }
}

/// Check every inode record written in `log` (module doc). `jsb` is the journal's superblock
/// (needed to parse descriptor tags); without it journal writes are not checked.
pub fn check_log(
    log: &[LogEntry],
    tables: &InodeTables,
    jsb: Option<&JournalSuperblock>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut tags: VecDeque<BlockTag> = VecDeque::new();
    for (i, e) in log.iter().enumerate() {
        let LogOp::Write {
            blk, data, zone, ..
        } = &e.op
        else {
            continue;
        };
        if *zone == Zone::Journal {
            let Some(jsb) = jsb else { continue };
            if let Some(tag) = journal_write(data, jsb, &mut tags) {
                if let Some(first) = tables.first_ino(tag.blocknr) {
                    let mut copy = data.to_vec();
                    if tag.flags & JBD2_FLAG_ESCAPE != 0 {
                        unescape(&mut copy);
                    }
                    let at = format!(
                        "journal copy of inode-table block {} at log {i}",
                        tag.blocknr
                    );
                    check_block(&copy, first, tables, &at, &mut out);
                }
            }
        } else if let Some(first) = tables.first_ino(blk.0) {
            let at = format!("inode-table block {} at log {i}", blk.0);
            check_block(data, first, tables, &at, &mut out);
        }
    }
    out
}

/// Classify one journal write: a descriptor queues its tags; a block without the JBD2 magic is
/// the copy of the next queued tag (returned); other journal blocks are skipped.
fn journal_write(
    data: &[u8],
    jsb: &JournalSuperblock,
    tags: &mut VecDeque<BlockTag>,
) -> Option<BlockTag> {
    let header = JournalHeader::parse(data).ok()?;
    if header.h_magic == JBD2_MAGIC_NUMBER {
        if header.is(JBD2_DESCRIPTOR_BLOCK) {
            tags.clear();
            tags.extend(parse_descriptor(data, jsb).unwrap_or_default());
        }
        return None;
    }
    tags.pop_front()
}

/// Check the records of one inode-table block whose first record is inode `first`.
fn check_block(data: &[u8], first: u32, t: &InodeTables, at: &str, out: &mut Vec<Problem>) {
    for (i, rec) in data.chunks_exact(t.inode_size).enumerate() {
        let ino = first + i as u32;
        let (mode, dtime) = (read_u16le(rec, I_MODE), read_u32le(rec, I_DTIME));
        let in_use = read_u16le(rec, I_LINKS_COUNT) > 0 || (mode != 0 && dtime == 0);
        let flags = read_u32le(rec, I_FLAGS);
        if !in_use {
            continue;
        }
        let cause = if flags & EXT4_VERITY_FL != 0 {
            format!(
                "inode {ino} ({at}) has i_flags {flags:#010x}: EXT4_VERITY_FL, the old \
                 EXT4_EXT_MIGRATE marker"
            )
        } else if flags & !EXT4_FL_USER_VISIBLE != 0 {
            format!(
                "inode {ino} ({at}) has i_flags {flags:#010x}: bits {:#010x} outside \
                 EXT4_FL_USER_VISIBLE",
                flags & !EXT4_FL_USER_VISIBLE
            )
        } else {
            continue;
        };
        out.push(Problem {
            oracle: "flag-on-disk",
            cause,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mkfs::{mkfs, MkfsOpts};
    use crate::fs::{Fs, MountOpts};
    use crate::units::Ino;

    /// A workload that writes inode 12 home and to the journal; returns the log and context.
    fn run() -> (Vec<LogEntry>, InodeTables, JournalSuperblock, u64) {
        let opts = MkfsOpts {
            size_bytes: 4 << 20,
            extents: false,
            journal_blocks: Some(1024),
            ..MkfsOpts::default()
        };
        let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
        fs.dev.clear_log();
        let ino = fs.create("/a", 0o644).unwrap();
        assert_eq!(ino, Ino(12));
        fs.write_file(ino, 0, &[1; 100]).unwrap();
        fs.fsync(ino).unwrap();
        let tables = InodeTables::new(&fs.sb, &fs.gds);
        let jsb = fs.journal.as_ref().unwrap().jsb.clone();
        let home = fs.inode_location(ino).unwrap().0 .0;
        let dev = fs.unmount().unwrap();
        (dev.log().to_vec(), tables, jsb, home)
    }

    /// Set `bits` in inode 12's record in every log write that holds it (home or journal).
    fn plant(log: &mut [LogEntry], home: u64, off_in_block: usize, bits: u32, journal: bool) {
        for e in log.iter_mut() {
            if let LogOp::Write {
                blk, data, zone, ..
            } = &mut e.op
            {
                let is_home = blk.0 == home && !journal;
                let is_copy = *zone == Zone::Journal
                    && journal
                    && read_u16le(data, off_in_block + I_MODE) == 0o100644;
                if is_home || is_copy {
                    let mut d = data.to_vec();
                    let f = read_u32le(&d, off_in_block + I_FLAGS) | bits;
                    crate::bytes::write_u32le(&mut d, off_in_block + I_FLAGS, f);
                    *data = d.into();
                }
            }
        }
    }

    #[test]
    fn a_clean_run_passes_and_planted_bits_are_found() {
        let (mut log, t, jsb, home) = run();
        assert_eq!(check_log(&log, &t, Some(&jsb)), vec![]);
        // Inode 12 is the 4th record of its 1 KiB block (inodes 9..12).
        let off = 3 * 256;
        plant(&mut log, home, off, EXT4_VERITY_FL, false);
        let p = check_log(&log, &t, Some(&jsb));
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| p.oracle == "flag-on-disk"));
        assert!(
            p[0].cause
                .starts_with(&format!("inode 12 (inode-table block {home} at log ")),
            "{}",
            p[0].cause
        );
        assert!(p[0]
            .cause
            .ends_with("has i_flags 0x00100000: EXT4_VERITY_FL, the old EXT4_EXT_MIGRATE marker"));
    }

    #[test]
    fn journal_copies_are_checked() {
        let (mut log, t, jsb, home) = run();
        plant(&mut log, home, 3 * 256, 0x0020_0000, true);
        let p = check_log(&log, &t, Some(&jsb));
        assert!(!p.is_empty(), "no journal copy of inode 12 was found");
        assert!(p[0].cause.starts_with(&format!(
            "inode 12 (journal copy of inode-table block {home} at log "
        )));
        assert!(p[0]
            .cause
            .ends_with("bits 0x00200000 outside EXT4_FL_USER_VISIBLE"));
        // Without the journal superblock the copies are not parsed.
        assert_eq!(check_log(&log, &t, None), vec![]);
    }
}
