//! The `kernel` oracle: the real Linux kernel, on a loop mount, as a second external judge.
//!
//! # What it verifies
//!
//! * **Journal replay** ([`check_replay`]): a crash image is mounted by the kernel (read-only:
//!   the kernel still replays the journal and processes the orphan list, and writes nothing
//!   else), and the result must equal our recovered image (recovery, mount with orphan cleanup,
//!   clean unmount): the same regular files and directories; per file the same `i_flags`,
//!   `i_size`, `i_links_count`, `i_blocks` and map (every data run and every IND/DIND/TIND/extent
//!   tree block, as `debugfs stat` prints them for both images); the same bytes (the kernel's
//!   `read()` through the mount against our blocks); and every block of the two images
//!   byte-identical except the mount stamps listed in [`diff`] (free-count hints, times, the
//!   journal log, the kernel's `s_head`, inode timestamps and checksums).
//! * **Migration** ([`check_migrate`]): on a copy of the image before the workload, the kernel's
//!   `chattr +e` (`EXT4_IOC_SETFLAGS` → `ext4_ext_migrate()`) or `chattr -e`
//!   (`ext4_ind_migrate()`) against our migrate of the same file on the same image: the same
//!   errno (or both succeed), the same `i_flags`, `i_size`, `i_blocks` and map (every data run;
//!   tree/indirect blocks by kind and order), the same bytes, the same free block and inode
//!   counts.
//!
//! Every difference is a [`Problem`] with oracle `"kernel"` and a one-line cause. Where the
//! kernel's allocator put a tree block after `chattr +e` somewhere else than ours (mballoc's
//! goal and request normalization, which the model does not reproduce) is a [`Report::notes`]
//! line, not a problem.
//!
//! # What it does not verify
//!
//! Timestamps, checksums of inodes (the fields differ by the wall clock; e2fsck and our fsck
//! judge checksums), the journal's log blocks after replay, free-count hints of the superblock.
//! Interleavings: the kernel runs one `chattr` on a quiescent file, so [`check_migrate`] judges
//! a migration's result in isolation, never a race. Images `e2fsck -fn` rejects after replay are
//! never mounted (a skip, not a finding): a crash state our checkers allow to leak blocks may
//! therefore go unjudged here.
//!
//! # Safety and cost
//!
//! Only an image whose copy is `e2fsck -fn` clean after a journal replay is mounted
//! ([`host::vet`], enforced by [`host::Mounted`]'s signature; the replay is debugfs's
//! `journal_run`, because `e2fsck -fy -E journal_only` also repairs — see [`host::vet`]);
//! every mount is undone on drop, panics included. Where loop mounts are unavailable
//! ([`available`]) every check returns `Err(reason)` and callers skip with that message. One
//! check costs an e2fsck run, a replay, one loop mount, two or three `debugfs` runs and a pass
//! over both images: 80 to 180 ms here, two thirds of it losetup + mount + umount.

pub mod debugfs;
pub mod diff;
pub mod files;
pub mod host;
pub mod migrate;

pub use host::{Mounted, Scratch, Vetted};
pub use migrate::{check_migrate, migrate_alone};

use super::crash::Problem;
use crate::dev::Disk;
use crate::profile::{BugSet, Profile};
use crate::scenario::{MigrateTo, Op, Scenario};
use debugfs::StatInode;
use files::Entry;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The oracle's name in findings.
pub const ORACLE: &str = "kernel";

/// The most block-level differences reported one by one.
const MAX_BLOCK_PROBLEMS: usize = 6;

/// What one kernel check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The disagreements (oracle `"kernel"`), empty if the kernel agrees.
    pub problems: Vec<Problem>,
    /// What was compared, one line (`"3 files, 16383 blocks"`).
    pub compared: String,
    /// Differences that are not disagreements, one line each (where the kernel's allocator put
    /// a tree block our allocator put elsewhere).
    pub notes: Vec<String>,
    /// Wall time of the check (for reports only; never reaches a verdict's findings).
    pub elapsed: Duration,
}

fn problem(cause: String) -> Problem {
    Problem {
        oracle: ORACLE,
        cause,
    }
}

/// Whether the kernel oracle can run here: root, `/dev/loop-control`, the tools (`losetup`,
/// `mount`, `umount`, `chattr`, `e2fsck`, `debugfs`), and a probe: a fresh image made by our
/// mkfs passes the gate, mounts read-write and unmounts. Probed once per process; `Err` is the
/// reason to print when skipping.
pub fn available() -> Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE.get_or_init(probe).clone()
}

fn probe() -> Result<(), String> {
    if !host::is_root() {
        return Err("loop mounts need root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Err("no /dev/loop-control".into());
    }
    for tool in ["losetup", "mount", "umount", "chattr", "e2fsck", "debugfs"] {
        host::run(tool, &["-V"])?;
    }
    let s = Scratch::new("probe")?;
    let img = s.path("probe.img");
    let opts = crate::fs::mkfs::MkfsOpts {
        size_bytes: 4 << 20,
        ..Default::default()
    };
    let dev = crate::fs::mkfs::mkfs(&opts).map_err(|e| format!("probe mkfs: {e}"))?;
    dev.save(&img).map_err(|e| format!("probe image: {e}"))?;
    let vetted = host::vet(&img, &s).map_err(|e| format!("probe image: {e}"))?;
    let m = Mounted::new(&vetted, &s.path("mnt"), false)
        .map_err(|e| format!("a probe loop mount failed: {e}"))?;
    m.umount()
}

/// Save `dev` as `name` in `s`.
fn save(dev: &Disk, s: &Scratch, name: &str) -> Result<std::path::PathBuf, String> {
    let p = s.path(name);
    dev.save(&p).map_err(|e| format!("saving {name}: {e}"))?;
    Ok(p)
}

/// The kernel's journal replay of `crash` against ours (`ours_recovered`: our recovery, mount
/// and clean unmount of the same crash image). `Err` is a skip reason (no loop mounts, the
/// image fails the e2fsck gate, a tool failed), never a finding.
pub fn check_replay(crash: &Disk, ours_recovered: &Disk) -> Result<Report, String> {
    available()?;
    let t0 = Instant::now();
    let s = Scratch::new("replay")?;
    let kimg = save(crash, &s, "crash.img")?;
    let oimg = save(ours_recovered, &s, "ours.img")?;
    let vetted = host::vet(&kimg, &s)?;
    let mut problems = Vec::new();
    let ours = files::list_ours(ours_recovered).unwrap_or_else(|e| {
        problems.push(problem(e));
        Vec::new()
    });
    let oreg = regular(&ours);
    let (ostat, _) = debugfs::describe(&oimg, &oreg, &s)?;
    let bs = u64::from(crash.block_size());
    let ranges: Vec<_> = ostat
        .iter()
        .map(|st| {
            st.as_ref()
                .map_or(vec![], |st| files::ranges(st.size, Some(st), bs))
        })
        .collect();
    // The kernel's side: mount (replay + orphan cleanup), list, read, unmount.
    let m = Mounted::new(&vetted, &s.path("mnt"), true)?;
    let kernel = files::list_mount(m.dir())?;
    let kset: BTreeSet<&Entry> = kernel.iter().collect();
    let mut kbytes = Vec::new();
    for (p, r) in oreg.iter().zip(&ranges) {
        let present = kset.contains(&Entry {
            path: p.clone(),
            dir: false,
        });
        kbytes.push(present.then(|| files::read_mount(&m.path(p), r)));
    }
    m.umount()?;
    problems.extend(compare_lists(&kernel, &ours));
    let (kstat, _) = debugfs::describe(&kimg, &oreg, &s)?;
    let mut read = 0u64;
    for (i, path) in oreg.iter().enumerate() {
        let (Some(k), Some(o)) = (&kstat[i], &ostat[i]) else {
            continue;
        };
        let kside = "the kernel's replay";
        problems.extend(stat_problem(path, kside, "ours", k, o, true));
        match &kbytes[i] {
            Some(Ok(kb)) => {
                let ob = files::read_ours(ours_recovered, o, &ranges[i]);
                read += kb.len() as u64;
                problems.extend(bytes_problem(path, &ranges[i], kb, &ob));
            }
            Some(Err(e)) => problems.push(read_problem(path, e)),
            None => {}
        }
    }
    let layout = diff::Layout::read(&kimg)?;
    let erred = kbytes.iter().any(|r| matches!(r, Some(Err(_))));
    let d = diff::compare(&kimg, &oimg, &layout, erred)?;
    problems.extend(block_problems(&d.blocks));
    Ok(Report {
        problems,
        compared: format!(
            "{} files ({read} bytes read by the kernel), {} blocks",
            oreg.len(),
            d.compared
        ),
        notes: Vec::new(),
        elapsed: t0.elapsed(),
    })
}

/// The regular files of a listing.
fn regular(list: &[Entry]) -> Vec<String> {
    list.iter()
        .filter(|e| !e.dir)
        .map(|e| e.path.clone())
        .collect()
}

/// Paths present on one side only.
fn compare_lists(kernel: &[Entry], ours: &[Entry]) -> Vec<Problem> {
    let (k, o): (BTreeSet<&Entry>, BTreeSet<&Entry>) =
        (kernel.iter().collect(), ours.iter().collect());
    let kind = |e: &Entry| if e.dir { "directory" } else { "file" };
    let only_k = k.difference(&o).map(|e| {
        problem(format!(
            "{} ({}) exists after the kernel's replay, not after ours",
            e.path,
            kind(e)
        ))
    });
    let only_o = o.difference(&k).map(|e| {
        problem(format!(
            "{} ({}) exists after our replay, not after the kernel's",
            e.path,
            kind(e)
        ))
    });
    only_k.chain(only_o).collect()
}

/// The first difference between two `debugfs stat`s of `path` (`kside`/`oside` name them);
/// without `positions`, mapping blocks are compared by kind and order only.
fn stat_problem(
    path: &str,
    kside: &str,
    oside: &str,
    k: &StatInode,
    o: &StatInode,
    positions: bool,
) -> Option<Problem> {
    let field = |name: &str, kv: String, ov: String| {
        problem(format!(
            "{path}: {name} {kv} after {kside}, {ov} after {oside}"
        ))
    };
    if k.flags != o.flags {
        return Some(field(
            "i_flags",
            format!("0x{:x}", k.flags),
            format!("0x{:x}", o.flags),
        ));
    }
    if k.size != o.size {
        return Some(field("i_size", k.size.to_string(), o.size.to_string()));
    }
    if k.links != o.links {
        return Some(field(
            "i_links_count",
            k.links.to_string(),
            o.links.to_string(),
        ));
    }
    let same =
        |a: &debugfs::MapEntry, b: &debugfs::MapEntry| a == b || (!positions && a.same_meta(b));
    if k.map.len() != o.map.len() || k.map.iter().zip(&o.map).any(|(a, b)| !same(a, b)) {
        let i = k
            .map
            .iter()
            .zip(&o.map)
            .take_while(|(a, b)| same(a, b))
            .count();
        let show = |m: &[debugfs::MapEntry]| m.get(i).map_or("none".into(), |e| e.to_string());
        return Some(field(&format!("map entry {i}"), show(&k.map), show(&o.map)));
    }
    if k.blockcount != o.blockcount {
        return Some(field(
            "i_blocks",
            k.blockcount.to_string(),
            o.blockcount.to_string(),
        ));
    }
    None
}

/// The first differing byte of `path` (kernel's read vs ours).
fn bytes_problem(path: &str, ranges: &[(u64, u64)], k: &[u8], o: &[u8]) -> Option<Problem> {
    let (off, kb, ob) = files::first_byte_diff(ranges, k, o)?;
    Some(problem(format!(
        "{path}: byte {off} reads 0x{kb:02x} through the kernel, 0x{ob:02x} on our image"
    )))
}

/// The kernel failed to read `path`, which our side reads.
fn read_problem(path: &str, e: &str) -> Problem {
    problem(format!(
        "{path}: the kernel's read fails ({e}), ours reads it"
    ))
}

/// One problem per differing block (capped), then a count of the rest.
fn block_problems(blocks: &[(u64, String)]) -> Vec<Problem> {
    let mut out: Vec<Problem> = blocks
        .iter()
        .take(MAX_BLOCK_PROBLEMS)
        .map(|(b, what)| problem(format!("block {b} differs after the replays: {what}")))
        .collect();
    if blocks.len() > MAX_BLOCK_PROBLEMS {
        out.push(problem(format!(
            "{} more blocks differ after the replays",
            blocks.len() - MAX_BLOCK_PROBLEMS
        )));
    }
    out
}

/// One kernel check of a scenario: its name and its report (or why it was skipped).
#[derive(Clone, Debug)]
pub struct Check {
    /// `"replay"` or `"migrate f6 to=indirect"`.
    pub name: String,
    /// The report, or the skip reason.
    pub outcome: Result<Report, String>,
}

/// The kernel checks of one executed scenario, given its kept images: [`check_replay`] on the
/// crash state against [`recover_ours`] of it, and [`check_migrate`] for each distinct
/// `(file, direction)` the scenario migrates whose file exists in `before` — that migration
/// alone, on `before`, by the kernel and by our engine with the scenario's profile and bugs.
/// `Err`: the oracle is unavailable.
pub fn check_scenario(s: &Scenario, before: &Disk, crash: &Disk) -> Result<Vec<Check>, String> {
    available()?;
    let profile = Profile::by_name(&s.profile).map(|p| p.with_bugs(s.bugs));
    let bugs = profile.map_or(s.bugs, |p| p.bugs);
    let mut checks = vec![Check {
        name: "replay".into(),
        outcome: check_replay(crash, &recover_ours(crash, bugs)),
    }];
    for (file, to) in migrations(s) {
        let path = format!("/f{file}");
        if !exists(before, &path) {
            continue;
        }
        let dir = match to {
            MigrateTo::Extents => "extents",
            MigrateTo::Indirect => "indirect",
        };
        let outcome = match profile {
            None => Err(format!("unknown profile {:?}", s.profile)),
            Some(p) => migrate_alone(before, &path, to, &p)
                .map_err(|e| format!("our migrate could not run: {e}"))
                .and_then(|(after, errno)| check_migrate(before, &path, to, &after, errno)),
        };
        checks.push(Check {
            name: format!("migrate f{file} to={dir}"),
            outcome,
        });
    }
    Ok(checks)
}

/// Our side of a journal replay, as the harness makes it: recovery (the kernel's copy of
/// recovery.c: [`crate::jbd2::Replayer::Kernel`]), a mount with `bugs`
/// (orphan cleanup) and a clean unmount, each as far as it gets; recovery alone when the
/// filesystem records errors (the kernel's read-only mount then leaves the orphan list).
/// Recomputed here rather than taken from the harness's kept image, so the two sides always
/// start from the same crash image.
pub fn recover_ours(crash: &Disk, bugs: BugSet) -> Disk {
    let mut d = crash.clone();
    if crate::jbd2::recover_as(&mut d, crate::jbd2::Replayer::Kernel).is_err() {
        return d;
    }
    // The kernel's side is a read-only mount, which on a filesystem with errors recorded skips
    // orphan cleanup and keeps the list ("don't clear list on RO mount w/ errors",
    // ext4_orphan_cleanup()); a read-write mount, ours, clears it. Only the recovery compares.
    // The kernel reads `s_state` before the replay (ext4_fill_super()), ours after it: either.
    if super::crash::errors_recorded(crash) || super::crash::errors_recorded(&d) {
        // Its read-only mount still switches on the journal features it mounts with and
        // writes them when it releases the journal.
        let _ = ro_journal_features(&mut d);
        return d;
    }
    let Ok(mut fs) = crate::fs::Fs::mount(d.clone(), crate::fs::MountOpts::default()) else {
        return d;
    };
    fs.bugs = bugs;
    fs.unmount().unwrap_or(d)
}

/// The journal superblock as the kernel's read-only mount leaves it: with the features ext4
/// switches on at mount ([`crate::fs::mount::journal_features`]; found by the replay
/// differential: a log whose superblock recorded an errno, on a metadata_csum filesystem whose
/// journal had no checksums).
fn ro_journal_features(d: &mut Disk) -> crate::Result<()> {
    let sb = crate::jbd2::read_fs_superblock(d)?;
    let loc = crate::jbd2::JournalLoc::find(d, &sb)?;
    let mut j = crate::jbd2::Journal::load(d, loc, sb.block_size())?;
    let before = j.jsb.clone();
    crate::fs::mount::journal_features(&sb, &mut j.jsb);
    if j.jsb != before {
        j.write_superblock(d)?;
    }
    Ok(())
}

/// The distinct `(file, direction)` pairs a scenario migrates, in thread order.
fn migrations(s: &Scenario) -> Vec<(u8, MigrateTo)> {
    let mut out: Vec<(u8, MigrateTo)> = Vec::new();
    for op in s.threads.iter().flatten() {
        if let Op::Migrate { file, to } = *op {
            if !out.contains(&(file, to)) {
                out.push((file, to));
            }
        }
    }
    out
}

/// Whether `path` resolves on `dev` (read-only mount of the engine).
fn exists(dev: &Disk, path: &str) -> bool {
    crate::fs::Fs::mount(dev.clone(), crate::fs::MountOpts { read_only: true })
        .is_ok_and(|mut fs| fs.resolve(path).is_ok())
}

#[cfg(test)]
mod tests {
    use super::debugfs::MapEntry;
    use super::*;

    fn st(flags: u32, map: Vec<MapEntry>) -> StatInode {
        StatInode {
            flags,
            size: 3000,
            links: 1,
            blockcount: 6,
            map,
        }
    }

    fn run(lblk: u64, pblk: u64, len: u64) -> MapEntry {
        MapEntry::Data {
            lblk,
            pblk,
            len,
            unwritten: false,
        }
    }

    #[test]
    fn stat_differences_name_the_first_field() {
        let k = st(0x80000, vec![run(0, 100, 3)]);
        assert_eq!(stat_problem("/f", "K", "O", &k, &k.clone(), true), None);
        let o = st(0, vec![run(0, 100, 3)]);
        assert_eq!(
            stat_problem("/f", "K", "O", &k, &o, true).unwrap().cause,
            "/f: i_flags 0x80000 after K, 0x0 after O"
        );
        let o = st(0x80000, vec![run(0, 100, 2), run(2, 200, 1)]);
        let p = stat_problem("/f", "K", "O", &k, &o, true).unwrap();
        assert_eq!(p.oracle, "kernel");
        assert_eq!(
            p.cause,
            "/f: map entry 0 (0+3)->100 after K, (0+2)->100 after O"
        );
        let mut o = k.clone();
        o.blockcount = 8;
        assert_eq!(
            stat_problem("/f", "K", "O", &k, &o, true).unwrap().cause,
            "/f: i_blocks 6 after K, 8 after O"
        );
    }

    #[test]
    fn lists_differ_by_path_and_kind() {
        let e = |p: &str, dir| Entry {
            path: p.into(),
            dir,
        };
        let k = vec![e("/a", false), e("/d", true)];
        let o = vec![e("/a", false), e("/b", false)];
        let causes: Vec<String> = compare_lists(&k, &o).into_iter().map(|p| p.cause).collect();
        assert_eq!(
            causes,
            vec![
                "/d (directory) exists after the kernel's replay, not after ours",
                "/b (file) exists after our replay, not after the kernel's"
            ]
        );
    }

    #[test]
    fn block_problems_are_capped_with_a_count() {
        let blocks: Vec<(u64, String)> = (0..9).map(|b| (b, "byte 0".to_string())).collect();
        let p = block_problems(&blocks);
        assert_eq!(p.len(), MAX_BLOCK_PROBLEMS + 1);
        assert_eq!(p[0].cause, "block 0 differs after the replays: byte 0");
        assert_eq!(p[6].cause, "3 more blocks differ after the replays");
    }

    #[test]
    fn migrations_are_distinct_in_thread_order() {
        let m = |file, to| Op::Migrate { file, to };
        let s = Scenario {
            threads: vec![
                vec![
                    m(3, MigrateTo::Extents),
                    Op::Sync,
                    m(1, MigrateTo::Indirect),
                ],
                vec![m(3, MigrateTo::Extents), m(3, MigrateTo::Indirect)],
            ],
            ..Scenario::default()
        };
        assert_eq!(
            migrations(&s),
            vec![
                (3, MigrateTo::Extents),
                (1, MigrateTo::Indirect),
                (3, MigrateTo::Indirect)
            ]
        );
    }
}
