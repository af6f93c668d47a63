//! The `migrate-atomicity` oracle: a crash during or just after a migration must leave the
//! file with its old mapping or an equivalent mapping in the other format.
//!
//! `ext4_ext_migrate()` and `ext4_ind_migrate()` move no data: the extent tree they build (or
//! the block pointers) name the same physical block for every logical block as the map they
//! replace. So, for a file whose mapping nothing else changes around the migration, every
//! crash state from the migration's start until its changes are surely committed must show the
//! file mapping exactly the blocks it mapped when the migration took `i_rwsem`, whichever
//! format the inode is in.
//!
//! # What it verifies
//!
//! For each *isolated* migration of a file `fN` ([`atomic_windows`]), at every crash point `k`
//! of its window, after recovery, mount and unmount: `fN` exists and its data mapping, as
//! `(lblk → pblk)` runs walked by the independent [`crate::format::blockmap`] walker, equals the
//! live mapping taken when the migration started (extent runs merged across the unwritten
//! flag; the format flag may be either).
//!
//! A migration is isolated when (1) every op that changed `fN`'s content (create, write, mmap
//! store, truncate, punch, fallocate, unlink) or migrated it before ended at least two journal
//! commit blocks before the migration started (its handles are then committed, whatever
//! transaction they joined), and (2) no such op starts before the window's end: the second
//! commit block after the migration ended (or the end of the log).
//!
//! # What it does not verify
//!
//! Migrations overlapped by another change of the file (mmap stores during the walk: S1's
//! race — the bytes are `data-loss`'s business then), the bytes themselves (`data-loss`), the
//! temp inode and freed mapping blocks (`leak`, `fsck`), `i_blocks` (`fsck`), and migrations
//! that did not finish (crashed mid-workload or left by the step bound: no start mapping).

use super::crash::Problem;
use crate::bytes::read_u32be;
use crate::dev::{LogEntry, LogOp};
use crate::format::blockmap::BlockMap;
use crate::format::jbd2::{JBD2_COMMIT_BLOCK, JBD2_MAGIC_NUMBER};
use crate::harness::workload::OpRecord;
use crate::scenario::Op;

/// One judged migration: file `fN`, the crash points `from..=to`, the mapping to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtomicWindow {
    /// The file.
    pub file: u8,
    /// First crash point (the log length when the migration started).
    pub from: usize,
    /// Last crash point.
    pub to: usize,
    /// The mapping `(lblk, pblk, len)`, normalized ([`normalize`]).
    pub map: Vec<(u32, u64, u32)>,
}

/// Whether a log entry is the write of a JBD2 commit block.
fn is_commit(e: &LogEntry) -> bool {
    match &e.op {
        LogOp::Write { data, .. } => {
            data.len() >= 8
                && read_u32be(data, 0) == JBD2_MAGIC_NUMBER
                && read_u32be(data, 4) == JBD2_COMMIT_BLOCK
        }
        LogOp::Flush => false,
    }
}

/// The isolated migrations of a run (module doc) and their windows.
pub fn atomic_windows(records: &[OpRecord], log: &[LogEntry]) -> Vec<AtomicWindow> {
    let commits: Vec<usize> = (0..log.len()).filter(|&i| is_commit(&log[i])).collect();
    // Just past the second commit block written at or after log index `i`, if there is one.
    let second_commit = |i: usize| {
        let j = commits.partition_point(|&c| c < i);
        commits.get(j + 1).map(|&c| c + 1)
    };
    let mut out = Vec::new();
    for (n, r) in records.iter().enumerate() {
        let (Op::Migrate { file, .. }, Some(map)) = (&r.op, &r.migrate_map) else {
            continue;
        };
        let Some(from) = r.origin.start_log else {
            continue;
        };
        let to = second_commit(r.end_log).map_or(log.len(), |c| c - 1);
        let isolated = records.iter().enumerate().all(|(m, o)| {
            if m == n || o.op.changed_file() != Some(*file) {
                return true;
            }
            let start = o.origin.start_log.unwrap_or(0);
            let settled_before =
                o.origin.seq < r.origin.seq && second_commit(o.end_log).is_some_and(|c| c <= from);
            settled_before || start > to
        });
        if isolated {
            out.push(AtomicWindow {
                file: *file,
                from,
                to,
                map: normalize(map.iter().copied()),
            });
        }
    }
    out
}

/// Runs in logical order with adjacent runs merged when physically contiguous (the unwritten
/// flag is not part of the comparison).
pub fn normalize(runs: impl Iterator<Item = (u32, u64, u32)>) -> Vec<(u32, u64, u32)> {
    let mut v: Vec<(u32, u64, u32)> = runs.filter(|r| r.2 > 0).collect();
    v.sort_unstable();
    let mut out: Vec<(u32, u64, u32)> = Vec::with_capacity(v.len());
    for (l, p, n) in v {
        match out.last_mut() {
            Some(last) if last.0 + last.2 == l && last.1 + u64::from(last.2) == p => last.2 += n,
            _ => out.push((l, p, n)),
        }
    }
    out
}

/// Judge file `fN` (`found`: its map on the recovered image, `None` if missing) at crash
/// point `k` against every window holding `k`.
pub fn judge(
    windows: &[AtomicWindow],
    file: u8,
    k: usize,
    found: Option<&BlockMap>,
) -> Option<Problem> {
    let w = windows
        .iter()
        .find(|w| w.file == file && w.from <= k && k <= w.to)?;
    let Some(map) = found else {
        let cause = format!("f{file} is missing after a crash during its migration");
        return Some(Problem::new("migrate-atomicity", cause));
    };
    let got = normalize(map.runs.iter().map(|r| (r.lblk, r.pblk, r.len)));
    if got == w.map {
        return None;
    }
    let first = got
        .iter()
        .zip(&w.map)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(w.map.len()));
    let show = |v: &[(u32, u64, u32)]| {
        v.get(first)
            .map_or("nothing".to_string(), |(l, p, n)| format!("{l}+{n}→{p}"))
    };
    let cause = format!(
        "f{file} after a crash during its migration maps {} blocks in {} runs, before it {} in \
         {} (first difference: {} instead of {})",
        got.iter().map(|r| u64::from(r.2)).sum::<u64>(),
        got.len(),
        w.map.iter().map(|r| u64::from(r.2)).sum::<u64>(),
        w.map.len(),
        show(&got),
        show(&w.map),
    );
    Some(Problem::new("migrate-atomicity", cause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::{Block, Zone};
    use crate::format::blockmap::Run;
    use crate::oracle::model::Origin;
    use crate::scenario::MigrateTo;
    use crate::units::Pblk;

    /// A log of writes: `c` a commit block, anything else a plain write.
    fn log(shape: &str) -> Vec<LogEntry> {
        let commit = {
            let mut b = vec![0u8; 1024];
            b[..4].copy_from_slice(&JBD2_MAGIC_NUMBER.to_be_bytes());
            b[4..8].copy_from_slice(&JBD2_COMMIT_BLOCK.to_be_bytes());
            b
        };
        shape
            .chars()
            .enumerate()
            .map(|(i, ch)| LogEntry {
                seq: i as u64,
                epoch: 0,
                op: LogOp::Write {
                    blk: Pblk(i as u64),
                    data: Block::from(if ch == 'c' {
                        commit.clone()
                    } else {
                        vec![1; 1024]
                    }),
                    fua: ch == 'c',
                    zone: Zone::Journal,
                },
            })
            .collect()
    }

    fn rec(seq: u32, op: Op, start: usize, end: usize, map: bool) -> OpRecord {
        OpRecord {
            thread: 0,
            index: seq as usize,
            op,
            origin: Origin {
                start_log: Some(start),
                seq,
                start_done: 0,
            },
            end_log: end,
            result: String::new(),
            migrate_map: map.then(|| vec![(0, 100, 2), (2, 102, 1), (5, 7, 1)]),
        }
    }

    fn mig(seq: u32, start: usize, end: usize) -> OpRecord {
        let op = Op::Migrate {
            file: 1,
            to: MigrateTo::Extents,
        };
        rec(seq, op, start, end, true)
    }

    fn write(seq: u32, file: u8, start: usize, end: usize) -> OpRecord {
        let op = Op::Write {
            file,
            off: 0,
            len: 1,
            tag: 0,
        };
        rec(seq, op, start, end, false)
    }

    #[test]
    fn windows_run_to_the_second_commit_and_need_settled_predecessors() {
        //        0123456789
        let l = log("wwcwcwwcwc");
        // A write of f1 ending at 1 is settled by the commits at 2 and 4 before 5.
        let w = atomic_windows(&[write(1, 1, 0, 1), mig(2, 5, 6)], &l);
        assert_eq!(
            w,
            vec![AtomicWindow {
                file: 1,
                from: 5,
                to: 9,
                map: vec![(0, 100, 3), (5, 7, 1)],
            }]
        );
        // One commit after the write is not enough.
        assert_eq!(
            atomic_windows(&[write(1, 1, 0, 3), mig(2, 5, 6)], &l),
            vec![]
        );
        // A change of f1 starting inside the window spoils it; one after it does not.
        assert_eq!(
            atomic_windows(&[mig(1, 0, 1), write(2, 1, 3, 6)], &l),
            vec![]
        );
        let w = atomic_windows(&[mig(1, 0, 1), write(2, 1, 5, 6)], &l);
        assert_eq!(
            w.iter().map(|w| (w.from, w.to)).collect::<Vec<_>>(),
            vec![(0, 4)]
        );
        // Other files do not matter; without two commits after it the window is the log.
        let w = atomic_windows(&[write(1, 2, 7, 8), mig(2, 8, 9)], &l);
        assert_eq!(
            w.iter().map(|w| (w.from, w.to)).collect::<Vec<_>>(),
            vec![(8, 10)]
        );
    }

    #[test]
    fn judges_the_mapping_not_the_format() {
        let w = atomic_windows(&[mig(1, 0, 1)], &log("wwcwc"));
        let map = |runs: &[(u32, u64, u32, bool)]| BlockMap {
            runs: runs
                .iter()
                .map(|&(lblk, pblk, len, unwritten)| Run {
                    lblk,
                    pblk,
                    len,
                    unwritten,
                })
                .collect(),
            meta: vec![],
        };
        // The same blocks as one extent, or split by the unwritten flag: the same mapping.
        let same = map(&[(0, 100, 3, false), (5, 7, 1, false)]);
        assert_eq!(judge(&w, 1, 2, Some(&same)), None);
        let split = map(&[(0, 100, 1, false), (1, 101, 2, true), (5, 7, 1, false)]);
        assert_eq!(judge(&w, 1, 4, Some(&split)), None);
        // Outside the window, or another file: not judged.
        let moved = map(&[(0, 100, 3, false), (4, 7, 1, false)]);
        assert_eq!(judge(&w, 1, 5, Some(&moved)), None);
        assert_eq!(judge(&w, 2, 2, Some(&moved)), None);
        let p = judge(&w, 1, 2, Some(&moved)).expect("a moved block is found");
        assert_eq!(p.oracle, "migrate-atomicity");
        assert!(p.cause.contains("4+1→7 instead of 5+1→7"), "{}", p.cause);
        assert_eq!(judge(&w, 1, 0, None).unwrap().oracle, "migrate-atomicity");
    }
}
