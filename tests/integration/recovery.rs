//! Journal recovery, differentially against e2fsck 1.47: every crash image is copied three
//! times and replayed by our `recover`, by `e2fsck -fy -E journal_only` (the oracle's
//! `replay_journal`) and by `e2fsck -y -E journal_only` (replay only, no forced check). All
//! blocks must be equal except these primary-superblock fields:
//!
//! * always: `s_wtime` (0x30, e2fsck's wall clock at close), `s_kbytes_written` (0x178,
//!   e2fsck adds its own I/O), `s_checksum` (0x3FC, follows the two);
//! * against the `-f` run also what a completed full check rewrites: the free block and inode
//!   counts (0x0C, 0x10, 0x158: pass 5 recounts them; the kernel keeps them current only in
//!   memory), `s_mnt_count` (0x34), `s_state` (0x3A, set to VALID), `s_lastcheck` (0x40) and the
//!   error-info block `s_error_count`..`s_mount_opts` (0x194..0x200, zeroed); and in every
//!   primary group descriptor `bg_itable_unused` and `bg_checksum`, which the full check
//!   recomputes from the inode bitmap (`ext2fs_set_gdt_csum()`).
//!
//! (Found by experiment: with `-f`, `journal_only` does not skip the passes, see
//! `check_if_skip()` in e2fsck/unix.c.) Then `e2fsck -fn` must say the same about our image as
//! about e2fsck's replay-only image, and a second `recover` must write nothing.
//!
//! Journals come from debugfs (`jo`, `jw`, `jc`), from our `LogWriter` (wrap-around, async
//! commit, stale blocks, logs debugfs cannot write), and from the real kernel where loop
//! mounts work.

use crate::util::*;
use e4fuzz::dev::Disk;
use e4fuzz::format::jbd2::{
    build_revoke, BlockTag, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT,
    JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_MAGIC_NUMBER,
};
use e4fuzz::format::superblock::{
    Superblock, EXT4_ERROR_FS, EXT4_FEATURE_INCOMPAT_RECOVER, EXT4_VALID_FS,
};
use e4fuzz::fs::Fs;
use e4fuzz::jbd2::{self, Journal, JournalLoc, LogWriter, RecoveryInfo};
use e4fuzz::oracle::replay_diff::{mixed_log_files, mixed_log_script, noise};
use e4fuzz::{CorruptKind, Error, Tid};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (offset in the superblock, length, name): fields e2fsck sets from its clock or I/O counters.
pub(crate) const CLOCK_FIELDS: &[(usize, usize, &str)] = &[
    (0x30, 4, "s_wtime"),
    (0x178, 8, "s_kbytes_written"),
    (0x3FC, 4, "s_checksum"),
];
/// Fields a completed full check (`-f`) rewrites. The free counts: pass 5 recounts them, and
/// the kernel does not keep the superblock's copies current on disk.
const FULL_CHECK_FIELDS: &[(usize, usize, &str)] = &[
    (0x0C, 4, "s_free_blocks_count_lo"),
    (0x10, 4, "s_free_inodes_count"),
    (0x158, 4, "s_free_blocks_count_hi"),
    (0x34, 2, "s_mnt_count"),
    (0x3A, 2, "s_state"),
    (0x40, 4, "s_lastcheck"),
    (0x194, 0x6C, "s_error_count..s_mount_opts"),
];

/// A scratch directory with one image in it.
struct Case {
    dir: TempDir,
    img: PathBuf,
}

impl Case {
    /// A fresh `mke2fs -t ext4 <args>` image of `size` bytes.
    fn mkfs(tag: &str, size: u64, args: &[&str]) -> Case {
        let dir = TempDir::new(tag);
        let img = dir.path("crash.img");
        let mut all = vec!["-t", "ext4"];
        all.extend_from_slice(args);
        mke2fs(&img, size, &all);
        Case { dir, img }
    }

    /// Run a debugfs script (`-w -f`) in the case directory, with data files written first.
    fn debugfs(&self, script: &str, files: &[(&str, &[u8])]) {
        for (name, data) in files {
            std::fs::write(self.dir.path(name), data).unwrap();
        }
        std::fs::write(self.dir.path("cmds"), script).unwrap();
        let out = Command::new("debugfs")
            .current_dir(&self.dir.0)
            .args(["-w", "-f", "cmds"])
            .arg(&self.img)
            .output()
            .unwrap();
        assert!(out.status.success(), "debugfs failed: {out:?}");
    }

    fn copy(&self, name: &str) -> PathBuf {
        let p = self.dir.path(name);
        std::fs::copy(&self.img, &p).unwrap();
        p
    }

    /// The fs block of journal block `n` (`debugfs bmap <8> n`).
    fn journal_block(&self, n: u64) -> u64 {
        let out = Command::new("debugfs")
            .args(["-R", &format!("bmap <8> {n}")])
            .arg(&self.img)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Apply `f` to fs block `blk` of the image.
    fn edit(&self, blk: u64, f: impl FnOnce(&mut [u8])) {
        let mut all = std::fs::read(&self.img).unwrap();
        let bs = block_size(&all);
        let at = usize::try_from(blk).unwrap() * bs;
        f(&mut all[at..at + bs]);
        std::fs::write(&self.img, all).unwrap();
    }

    /// Flip bits `mask` of byte `off` of fs block `blk`.
    fn flip(&self, blk: u64, off: usize, mask: u8) {
        self.edit(blk, |b| b[off] ^= mask);
    }
}

fn block_size(image: &[u8]) -> usize {
    1024 << u32::from_le_bytes(image[1024 + 0x18..1024 + 0x1C].try_into().unwrap())
}

fn run_e2fsck(image: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("e2fsck")
        .args(args)
        .arg(image)
        .env("E2FSCK_CONFIG", "/dev/null")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let name = image.to_string_lossy().into_owned();
    (out.status.code().unwrap_or(8), text.replace(&name, "IMG"))
}

/// Our recovery of the image file `path`, in place.
fn recover_file(path: &Path) -> e4fuzz::Result<RecoveryInfo> {
    let mut dev = Fs::load_image(path)?;
    let info = jbd2::recover(&mut dev)?;
    dev.save(path)?;
    Ok(info)
}

/// The file's bytes with the listed superblock fields zeroed; with `gdt`, also each primary
/// group descriptor's `bg_itable_unused` and `bg_checksum` (0x1C..0x20, 0x32..0x34), which
/// `ext2fs_set_gdt_csum()` recomputes at the end of a full check.
fn masked(path: &Path, fields: &[&[(usize, usize, &str)]], gdt: bool) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    for list in fields {
        for &(off, len, _) in *list {
            b[1024 + off..1024 + off + len].fill(0);
        }
    }
    if gdt {
        let sb = Superblock::parse(&b[1024..2048]).unwrap();
        let (bs, ds) = (sb.block_size() as usize, sb.desc_size());
        let start = usize::try_from(sb.gdt_block(0)).unwrap() * bs;
        for g in 0..sb.groups_count() as usize {
            let d = start + g * ds;
            b[d + 0x1C..d + 0x20].fill(0);
            if ds >= 64 {
                b[d + 0x32..d + 0x34].fill(0);
            }
        }
    }
    b
}

/// Assert that `ours` and `theirs` are equal outside `fields`; list the first differences.
#[track_caller]
fn assert_same_blocks(ours: &Path, theirs: &Path, fields: &[&[(usize, usize, &str)]]) {
    let gdt = fields.contains(&FULL_CHECK_FIELDS);
    let (a, b) = (masked(ours, fields, gdt), masked(theirs, fields, gdt));
    assert_eq!(a.len(), b.len(), "image sizes");
    if a == b {
        return;
    }
    let bs = block_size(&a);
    let diffs: Vec<String> = (0..a.len() / bs)
        .filter(|&k| a[k * bs..(k + 1) * bs] != b[k * bs..(k + 1) * bs])
        .take(8)
        .map(|k| {
            let offs: Vec<String> = (0..bs)
                .filter(|&i| a[k * bs + i] != b[k * bs + i])
                .take(12)
                .map(|i| format!("{i:#x}"))
                .collect();
            format!("block {k} (bytes {})", offs.join(" "))
        })
        .collect();
    panic!(
        "{} differs from {}: {}",
        ours.display(),
        theirs.display(),
        diffs.join(", ")
    );
}

/// The differential run described in the module doc. Returns our recovery's info.
fn differential(c: &Case) -> RecoveryInfo {
    differential_with(c, Compare::Both)
}

/// How much of e2fsck's result to compare with ours.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Both runs, masks as in the module doc.
    Both,
    /// e2fsck forces a full check even without `-f` (it does when it replays a log whose
    /// `needs_recovery` flag was clear): mask the full-check fields in both comparisons.
    Forced,
    /// Only the replay-only run: e2fsck's forced check repairs more than the listed fields.
    ReplayOnly,
}

/// [`differential`] with a choice of comparisons.
fn differential_with(c: &Case, compare: Compare) -> RecoveryInfo {
    let (ours, full, replay) = (c.copy("ours.img"), c.copy("full.img"), c.copy("replay.img"));
    let info = recover_file(&ours).unwrap();
    let report = e4fuzz::oracle::e2fsck::replay_journal(&full).unwrap();
    assert!(report.status < 4, "e2fsck -fy failed:\n{}", report.output);
    run_e2fsck(&replay, &["-y", "-E", "journal_only"]);
    let replay_mask: &[&[(usize, usize, &str)]] = match compare {
        Compare::Forced => &[CLOCK_FIELDS, FULL_CHECK_FIELDS],
        _ => &[CLOCK_FIELDS],
    };
    assert_same_blocks(&ours, &replay, replay_mask);
    if compare != Compare::ReplayOnly {
        assert_same_blocks(&ours, &full, &[CLOCK_FIELDS, FULL_CHECK_FIELDS]);
    }
    let (ours_st, ours_out) = run_e2fsck(&ours, &["-fn"]);
    let (ref_st, ref_out) = run_e2fsck(&replay, &["-fn"]);
    assert_eq!(
        (ours_st, &ours_out),
        (ref_st, &ref_out),
        "e2fsck -fn disagrees"
    );
    // Recovering twice is recovering once: the second run writes nothing.
    let before = std::fs::read(&ours).unwrap();
    let mut dev = Disk::load(&ours, u32::try_from(block_size(&before)).unwrap()).unwrap();
    let again = jbd2::recover(&mut dev).unwrap();
    assert!(!again.replayed && again.error.is_none(), "{again:?}");
    assert_eq!(dev.written_blocks().count(), 0, "second recovery wrote");
    info
}

fn run_mixed(c: &Case, jo: &str, bs: usize) -> RecoveryInfo {
    let files = mixed_log_files(bs);
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    c.debugfs(&mixed_log_script(jo), &refs);
    differential(c)
}

#[test]
fn debugfs_journals_across_features() {
    if !have_e2fsprogs("debugfs_journals_across_features") {
        return;
    }
    let cases: &[(&str, &[&str], &str)] = &[
        ("v3-64bit", &["-b", "1024"], "jo -c"),
        ("v3-32bit", &["-b", "1024", "-O", "^64bit"], "jo -c"),
        ("none-64bit", &["-b", "1024", "-O", "^metadata_csum"], "jo"),
        (
            "none-32bit",
            &["-b", "1024", "-O", "^64bit,^metadata_csum"],
            "jo",
        ),
        ("v2", &["-b", "1024"], "jo -c -v 2"),
        ("v1", &["-b", "1024", "-O", "^metadata_csum"], "jo -c -v 1"),
        ("v3-4k", &["-b", "4096"], "jo -c"),
        (
            "v3-indirect",
            &["-b", "1024", "-O", "^extent,^64bit"],
            "jo -c",
        ),
    ];
    for (tag, args, jo) in cases {
        let c = Case::mkfs(tag, 16 << 20, args);
        let bs = if args.contains(&"4096") { 4096 } else { 1024 };
        let info = run_mixed(&c, jo, bs);
        // debugfs folds revoke blocks into its v1 checksum, recovery does not (calc_chksums()
        // covers descriptor and data blocks): T3's commit fails, in e2fsck as in ours.
        let (expect, failed) = if *tag == "v1" {
            ((true, 2, 4, 0, 0, None), Some(Tid(3)))
        } else {
            ((true, 6, 5, 2, 2, None), None)
        };
        assert_eq!(info.failed_commit, failed, "{tag}");
        let got = (
            info.replayed,
            info.transactions(),
            info.nr_replays,
            info.nr_revokes,
            info.nr_revoke_hits,
            info.error,
        );
        assert_eq!(got, expect, "{tag}");
        assert_e2fsck_clean(&c.dir.path("ours.img"));
        if failed.is_some() {
            continue;
        }
        // The revoked 3000 keeps its pre-journal (zero) content; 3002 got its last copy.
        let ours = std::fs::read(c.dir.path("ours.img")).unwrap();
        let blk = |n: usize| &ours[n * bs..(n + 1) * bs];
        assert!(
            blk(3000).iter().all(|&b| b == 0),
            "{tag}: revoked block replayed"
        );
        assert_eq!(blk(3002), &noise(3, bs)[..], "{tag}: re-journaled block");
        assert_eq!(
            blk(3003)[..4],
            JBD2_MAGIC_NUMBER.to_be_bytes(),
            "{tag}: escape"
        );
    }
}

/// Two transactions from debugfs, then `edit` applied to the journal (journal block numbers).
fn two_transactions(tag: &str, edit: impl Fn(&Case, u64)) -> (Case, RecoveryInfo) {
    let c = Case::mkfs(tag, 16 << 20, &["-b", "1024"]);
    let script = "jo -c\njw -b 300,301 two\njc\njo -c\njw -b 302 one\njc\n";
    let (two, one) = (noise(5, 2048), noise(6, 1024));
    c.debugfs(script, &[("two", &two), ("one", &one)]);
    // Log: 1 descriptor, 2-3 data, 4 commit; 5 descriptor, 6 data, 7 commit.
    edit(&c, c.journal_block(0));
    let info = differential(&c);
    (c, info)
}

fn fs_state(path: &Path) -> u16 {
    let b = std::fs::read(path).unwrap();
    u16::from_le_bytes([b[1024 + 0x3A], b[1024 + 0x3B]])
}

#[test]
fn corrupted_commit_block_drops_the_rest() {
    if !have_e2fsprogs("corrupted_commit_block_drops_the_rest") {
        return;
    }
    let (c, info) = two_transactions("badcommit", |c, j| c.flip(j + 4, 0x3B, 1));
    assert_eq!((info.failed_commit, info.nr_replays), (Some(Tid(1)), 0));
    assert_eq!(info.error, None);
    let ours = c.dir.path("ours.img");
    assert_eq!(
        fs_state(&ours),
        EXT4_VALID_FS | EXT4_ERROR_FS,
        "ERROR_FS mirrored"
    );
    // Only the second transaction's commit corrupt: the first is replayed.
    let (_, info) = two_transactions("badcommit2", |c, j| c.flip(j + 7, 0x3B, 1));
    assert_eq!((info.failed_commit, info.nr_replays), (Some(Tid(2)), 2));
}

#[test]
fn torn_or_missing_commit_ends_the_log() {
    if !have_e2fsprogs("torn_or_missing_commit_ends_the_log") {
        return;
    }
    let (_, info) = two_transactions("torn", |c, j| c.edit(j + 7, |b| b.fill(0)));
    assert_eq!(
        (info.transactions(), info.nr_replays, info.failed_commit),
        (1, 2, None)
    );
    // A commit torn after its first sector: the checksum fails.
    let (_, info) = two_transactions("torn-sector", |c, j| {
        c.edit(j + 7, |b| b[512..].iter_mut().for_each(|x| *x ^= 0x55));
    });
    assert_eq!((info.nr_replays, info.failed_commit), (2, Some(Tid(2))));
}

#[test]
fn bad_descriptor_or_data_checksum_is_a_recovery_error() {
    if !have_e2fsprogs("bad_descriptor_or_data_checksum_is_a_recovery_error") {
        return;
    }
    let bad_desc = Some(Error::Corrupt(CorruptKind::JournalChecksum(
        "transaction with a bad descriptor or revoke block",
    )));
    for (tag, blk) in [("baddesc1", 1), ("baddesc2", 5)] {
        let (c, info) = two_transactions(tag, |c, j| c.flip(j + blk, 0x20, 1));
        assert_eq!((info.nr_replays, &info.error), (0, &bad_desc), "{tag}");
        assert_eq!(fs_state(&c.dir.path("ours.img")) & EXT4_VALID_FS, 0);
    }
    let (_, info) = two_transactions("baddata", |c, j| c.flip(j + 3, 9, 1));
    let bad_data = Some(Error::Corrupt(CorruptKind::JournalChecksum(
        "logged data block",
    )));
    assert_eq!((info.nr_replays, info.error), (2, bad_data));
}

/// Flag changes through debugfs `feature` / our own superblock writes.
#[test]
fn recovery_flag_and_log_disagree() {
    if !have_e2fsprogs("recovery_flag_and_log_disagree") {
        return;
    }
    // needs_recovery set, log empty: e2fsck bumps s_sequence and clears the flag.
    let c = Case::mkfs("flag-only", 16 << 20, &["-b", "1024"]);
    c.debugfs("feature needs_recovery\n", &[]);
    let info = differential(&c);
    assert_eq!(
        (info.replayed, info.sequence, info.nr_replays),
        (true, Tid(2), 0)
    );
    let line = e4fuzz::cli::recovery_summary(&info);
    assert_eq!(
        line,
        "journal empty, needs_recovery cleared (next transaction 2)"
    );
    // Log present, flag clear: e2fsck -y replays it anyway.
    let c = Case::mkfs("log-only", 16 << 20, &["-b", "1024"]);
    let two = noise(8, 2048);
    c.debugfs(
        "jo -c\njw -b 400,401 two\njc\nfeature -needs_recovery\n",
        &[("two", &two)],
    );
    let info = differential_with(&c, Compare::Forced);
    assert_eq!(
        (info.replayed, info.nr_replays, info.sequence),
        (true, 2, Tid(3))
    );
}

#[test]
fn bad_journal_inode_uses_the_backup() {
    if !have_e2fsprogs("bad_journal_inode_uses_the_backup") {
        return;
    }
    let c = Case::mkfs("backup", 16 << 20, &["-b", "1024", "-O", "^extent,^64bit"]);
    let two = noise(9, 2048);
    c.debugfs(
        "jo -c\njw -b 300,301 two\njc\nsif <8> links_count 0\n",
        &[("two", &two)],
    );
    // e2fsck writes the rebuilt inode with i_blocks 0, which its forced check then repairs.
    let info = differential_with(&c, Compare::ReplayOnly);
    let (status, out) = run_e2fsck(&c.dir.path("ours.img"), &["-fn"]);
    assert!(
        status == 4 && out.contains("Inode 8, i_blocks is 0, should be 2058"),
        "{out}"
    );
    assert!(info.used_backup && info.replayed);
    assert_eq!(info.nr_replays, 2);
}

/// Open the journal of an image file for writing a log with `LogWriter`.
fn open_journal(path: &Path) -> (Disk, Journal) {
    let mut dev = Fs::load_image(path).unwrap();
    let sb = jbd2::read_fs_superblock(&mut dev).unwrap();
    let loc = JournalLoc::find(&mut dev, &sb).unwrap();
    let j = Journal::load(&mut dev, loc, sb.block_size()).unwrap();
    (dev, j)
}

/// Set the journal features, `s_start`, `s_sequence`, and `needs_recovery`, and save.
fn seal(path: &Path, mut dev: Disk, mut j: Journal, start: u32, seq: u32) {
    j.jsb.s_start = start;
    j.jsb.s_sequence = Tid(seq);
    j.write_superblock(&mut dev).unwrap();
    let mut sb = jbd2::read_fs_superblock(&mut dev).unwrap();
    sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_RECOVER;
    jbd2::write_fs_superblock(&mut dev, &sb).unwrap();
    dev.save(path).unwrap();
}

/// A journal whose superblock has `incompat` (csum v3 implied) and the log written by `log`
/// from `start` with first transaction `seq`.
fn own_log(
    tag: &str,
    incompat: u32,
    start: u32,
    seq: u32,
    log: impl Fn(&mut LogWriter<'_>),
) -> (Case, RecoveryInfo) {
    let c = Case::mkfs(tag, 16 << 20, &["-b", "1024"]);
    let (mut dev, mut j) = open_journal(&c.img);
    j.jsb.s_feature_incompat = incompat | JBD2_FEATURE_INCOMPAT_CSUM_V3;
    j.jsb.s_checksum_type = 4;
    {
        let mut w = LogWriter::new(&mut dev, &j, u64::from(start));
        log(&mut w);
    }
    seal(&c.img, dev, j, start, seq);
    let info = differential(&c);
    (c, info)
}

fn blocks(first: u64, n: u64, seed: u64) -> Vec<(u64, Vec<u8>)> {
    (0..n).map(|i| (first + i, noise(seed + i, 1024))).collect()
}

#[test]
fn log_wrapping_past_s_maxlen() {
    if !have_e2fsprogs("log_wrapping_past_s_maxlen") {
        return;
    }
    let wide = JBD2_FEATURE_INCOMPAT_64BIT | JBD2_FEATURE_INCOMPAT_REVOKE;
    let (_, info) = own_log("wrap", wide, 1019, 0xFFFF_FFFE, |w| {
        w.descriptor(Tid(0xFFFF_FFFE), &blocks(500, 6, 20)).unwrap();
        w.commit(Tid(0xFFFF_FFFE), 1000).unwrap();
        w.revoke(Tid(0xFFFF_FFFF), &[501]).unwrap();
        w.descriptor(Tid(0xFFFF_FFFF), &blocks(510, 3, 40)).unwrap();
        w.commit(Tid(0xFFFF_FFFF), 1001).unwrap();
        w.descriptor(Tid(0), &blocks(501, 2, 60)).unwrap();
        w.commit(Tid(0), 1002).unwrap();
    });
    assert_eq!((info.transactions(), info.nr_replays), (3, 6 - 1 + 3 + 2));
    assert_eq!(
        (info.nr_revokes, info.nr_revoke_hits, info.sequence),
        (1, 1, Tid(2))
    );
}

#[test]
fn async_commit_and_stale_blocks() {
    if !have_e2fsprogs("async_commit_and_stale_blocks") {
        return;
    }
    // ASYNC_COMMIT: a bad commit in the middle; scanning goes on, replay stops there.
    let async_c = JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT | JBD2_FEATURE_INCOMPAT_64BIT;
    let (_, info) = own_log("async-bad", async_c, 1, 5, |w| {
        w.descriptor(Tid(5), &blocks(700, 1, 80)).unwrap();
        w.commit(Tid(5), 2000).unwrap();
        w.descriptor(Tid(6), &blocks(701, 1, 81)).unwrap();
        w.block(&bad_commit(Tid(6), 2001)).unwrap();
        w.descriptor(Tid(7), &blocks(702, 1, 82)).unwrap();
        w.commit(Tid(7), 2002).unwrap();
    });
    assert_eq!(
        (info.nr_replays, info.end_transaction, info.failed_commit),
        (1, Tid(6), None)
    );
    // A stale descriptor (bad tail) whose commit time goes backwards: clean end of the log.
    let (_, info) = own_log("stale", JBD2_FEATURE_INCOMPAT_64BIT, 1, 9, |w| {
        w.descriptor(Tid(9), &blocks(800, 2, 90)).unwrap();
        w.commit(Tid(9), 5000).unwrap();
        let tag = BlockTag {
            blocknr: 805,
            flags: 0,
            checksum: 0,
        };
        w.bad_descriptor(Tid(10), &[tag]).unwrap();
        w.block(&noise(99, 1024)).unwrap();
        w.commit(Tid(10), 4000).unwrap();
    });
    assert_eq!(
        (info.nr_replays, info.end_transaction, info.error),
        (2, Tid(10), None)
    );
    // The same with a stale revoke block: its tail is checked in the scan (newer kernels,
    // e2fsprogs 1.47), not in PASS_REVOKE (older ones, which would fail the recovery).
    for (tag, time2, stale) in [("stale-revoke", 4000, true), ("bad-revoke", 6000, false)] {
        let (_, info) = own_log(tag, JBD2_FEATURE_INCOMPAT_64BIT, 1, 9, |w| {
            w.descriptor(Tid(9), &blocks(800, 2, 90)).unwrap();
            w.commit(Tid(9), 5000).unwrap();
            let mut rev = build_revoke(Tid(10), &[800], &w.journal().jsb, 1024).remove(0);
            rev[1023] ^= 1;
            w.block(&rev).unwrap();
            w.commit(Tid(10), time2).unwrap();
        });
        let replays = if stale { 2 } else { 0 };
        assert_eq!(
            (info.nr_replays, info.error.is_none()),
            (replays, stale),
            "{tag}"
        );
    }
}

/// A log that names journal blocks as home blocks: block 0 (the journal superblock, which
/// must be written back from the buffer read before the replay) and a log block the replay
/// pass reads later (the scan already fixed what is replayed).
#[test]
fn log_overwriting_the_journal_itself() {
    if !have_e2fsprogs("log_overwriting_the_journal_itself") {
        return;
    }
    // 4 KiB blocks: the journal superblock is only the first quarter of its block.
    let c = Case::mkfs("selfref", 16 << 20, &["-b", "4096"]);
    let (mut dev, mut j) = open_journal(&c.img);
    j.jsb.s_feature_incompat |= JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_REVOKE;
    j.jsb.s_checksum_type = 4;
    let (jsb_home, later_home) = (j.loc.bmap(0).unwrap().0, j.loc.bmap(9).unwrap().0);
    {
        let mut w = LogWriter::new(&mut dev, &j, 1);
        let first = [(jsb_home, noise(31, 4096)), (later_home, noise(32, 4096))];
        w.descriptor(Tid(1), &first).unwrap();
        w.commit(Tid(1), 10).unwrap(); // log blocks 1..=4
        let next: Vec<(u64, Vec<u8>)> = (0..3).map(|i| (900 + i, noise(33 + i, 4096))).collect();
        w.descriptor(Tid(2), &next).unwrap(); // 5..=8, commit at 9
        w.commit(Tid(2), 11).unwrap();
    }
    seal(&c.img, dev, j, 1, 1);
    let info = differential(&c);
    assert_eq!((info.transactions(), info.nr_replays), (2, 5));
}

/// A commit block of `tid` at time `sec` whose checksum does not match.
fn bad_commit(tid: Tid, sec: u64) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    buf[..4].copy_from_slice(&JBD2_MAGIC_NUMBER.to_be_bytes());
    buf[4..8].copy_from_slice(&2u32.to_be_bytes());
    buf[8..12].copy_from_slice(&tid.0.to_be_bytes());
    buf[0x10..0x14].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
    buf[0x30..0x38].copy_from_slice(&sec.to_be_bytes());
    buf
}

#[test]
fn journal_errno_sets_error_fs() {
    if !have_e2fsprogs("journal_errno_sets_error_fs") {
        return;
    }
    // An aborted journal (s_errno = -EIO) with a committed transaction.
    let c = Case::mkfs("errno", 16 << 20, &["-b", "1024"]);
    let two = noise(11, 2048);
    c.debugfs("jo -c\njw -b 300,301 two\njc\n", &[("two", &two)]);
    let (mut dev, mut j) = open_journal(&c.img);
    j.jsb.s_errno = -5;
    j.write_superblock(&mut dev).unwrap();
    dev.save(&c.img).unwrap();
    let info = differential(&c);
    assert_eq!(info.nr_replays, 2);
    assert_ne!(fs_state(&c.dir.path("ours.img")) & EXT4_ERROR_FS, 0);
}

#[test]
fn cli_recover() {
    if !have_e2fsprogs("cli_recover") {
        return;
    }
    let c = Case::mkfs("cli", 16 << 20, &["-b", "1024"]);
    let files = mixed_log_files(1024);
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    c.debugfs(&mixed_log_script("jo -c"), &refs);
    let (img, reference) = (c.copy("cli.img"), c.copy("ref.img"));
    let out = e4fuzz(&["recover", img.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("6 transactions (1..7), 5 blocks replayed, 2 revoke records, 2 revoked"),
        "{stdout}"
    );
    run_e2fsck(&reference, &["-y", "-E", "journal_only"]);
    assert_same_blocks(&img, &reference, &[CLOCK_FIELDS]);
    let again = e4fuzz(&["recover", img.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to replay"));

    // Exit 2 with a reason: missing file, not ext4, unreadable journal.
    let missing = e4fuzz(&["recover", c.dir.path("nope.img").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    let junk = c.dir.path("junk.img");
    std::fs::write(&junk, noise(12, 64 << 10)).unwrap();
    let not_ext4 = e4fuzz(&["recover", junk.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&not_ext4.stderr);
    assert_eq!(not_ext4.status.code(), Some(2));
    assert!(err.contains("not an ext2/3/4 filesystem"), "{err}");
    let bad_jsb = c.copy("badjsb.img");
    let jsb_blk = c.journal_block(0);
    let mut all = std::fs::read(&bad_jsb).unwrap();
    all[usize::try_from(jsb_blk).unwrap() * 1024 + 0x30] ^= 0xFF; // s_uuid: bad checksum
    std::fs::write(&bad_jsb, &all).unwrap();
    let unreadable = e4fuzz(&["recover", bad_jsb.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&unreadable.stderr);
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(err.contains("journal superblock checksum"), "{err}");
    assert_eq!(std::fs::read(&bad_jsb).unwrap(), all, "nothing written");

    // Several users of an internal journal: e2fsck takes the version 2 fields for a version 1
    // journal's leftovers, clears them (checksum features included) and replays; so do we.
    let (users, users_ref) = (c.copy("users.img"), c.copy("users-ref.img"));
    for p in [&users, &users_ref] {
        let mut all = std::fs::read(p).unwrap();
        all[usize::try_from(jsb_blk).unwrap() * 1024 + 0x43] = 2; // s_nr_users = 2
        std::fs::write(p, &all).unwrap();
    }
    let out = e4fuzz(&["recover", users.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let (_, said) = run_e2fsck(&users_ref, &["-y", "-E", "journal_only"]);
    assert!(
        said.contains("Found invalid V2 journal superblock fields"),
        "{said}"
    );
    assert_same_blocks(&users, &users_ref, &[CLOCK_FIELDS, FULL_CHECK_FIELDS]);

    // An inconsistent log: exit 2 with the reason, after resetting the journal like e2fsck.
    let bad_log = c.copy("badlog.img");
    let mut all = std::fs::read(&bad_log).unwrap();
    all[usize::try_from(jsb_blk + 1).unwrap() * 1024 + 0x20] ^= 1; // first descriptor
    std::fs::write(&bad_log, &all).unwrap();
    let failed = e4fuzz(&["recover", bad_log.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{failed:?}");
    assert!(err.contains("journal replay failed"), "{err}");
    let after = e4fuzz(&["recover", bad_log.to_str().unwrap()]);
    assert_eq!(after.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&after.stdout).contains("nothing to replay"));
}

/// A loop device with the image attached and mounted; unmounted and detached on drop, so a
/// failing test never leaves a mount behind. Only fresh mke2fs images are mounted.
struct LoopMount {
    dir: PathBuf,
    loopdev: Option<String>,
    mounted: bool,
}

impl LoopMount {
    /// `losetup -f --show image` + `mount -t ext4 dev dir`; `Err(why)` if this machine cannot.
    fn mount(image: &Path, dir: &Path) -> Result<LoopMount, String> {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(image)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!("losetup: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut guard = LoopMount {
            dir: dir.to_path_buf(),
            loopdev: Some(dev.clone()),
            mounted: false,
        };
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "ext4", &dev])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount: {}", String::from_utf8_lossy(&out.stderr)));
        }
        guard.mounted = true;
        Ok(guard)
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
        }
        if let Some(dev) = self.loopdev.take() {
            let _ = Command::new("losetup").args(["-d", &dev]).status();
        }
    }
}

/// Files written, synced, then deleted, truncated and rewritten, synced again: small and
/// multi-block files (indirect blocks with `^extent`; deleting them in the second transaction
/// revokes the copies logged in the first), a directory, a truncate.
fn kernel_workload(root: &Path) {
    let sync = || assert!(Command::new("sync").status().unwrap().success());
    let dir = root.join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..12u64 {
        let len = usize::try_from(1 + i * 7).unwrap() * 1024;
        std::fs::write(dir.join(format!("f{i}")), noise(100 + i, len)).unwrap();
    }
    std::fs::write(root.join("big"), noise(200, 300 << 10)).unwrap();
    sync();
    for i in (0..12).step_by(3) {
        std::fs::remove_file(dir.join(format!("f{i}"))).unwrap();
    }
    std::fs::remove_file(root.join("big")).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("f4"))
        .unwrap();
    f.set_len(3000).unwrap();
    drop(f);
    std::fs::write(dir.join("f1"), noise(300, 50 << 10)).unwrap();
    sync();
}

/// Real-kernel journals: mount a fresh image, write and delete files, `sync`, copy the image
/// while still mounted (so it needs recovery), unmount; then ours vs e2fsck on the copy.
#[test]
fn kernel_journals() {
    if !have_e2fsprogs("kernel_journals") {
        return;
    }
    let variants: &[(&str, &[&str])] = &[
        ("kernel-ext4", &["-b", "1024"]),
        ("kernel-indirect", &["-b", "1024", "-O", "^extent,^64bit"]),
        ("kernel-4k", &["-b", "4096", "-O", "^metadata_csum"]),
    ];
    for (tag, args) in variants {
        let c = Case::mkfs(tag, 32 << 20, args);
        let fresh = c.copy("fresh.img");
        let snap = c.dir.path("snap.img");
        {
            let mnt = match LoopMount::mount(&fresh, &c.dir.path("mnt")) {
                Ok(m) => m,
                Err(why) => {
                    eprintln!("SKIP kernel_journals: cannot loop-mount here ({why})");
                    return;
                }
            };
            kernel_workload(&mnt.dir);
            std::fs::copy(&fresh, &snap).unwrap();
        }
        std::fs::copy(&snap, &c.img).unwrap();
        let info = differential(&c);
        assert!(info.replayed && info.error.is_none(), "{tag}: {info:?}");
        assert!(
            info.transactions() > 0,
            "{tag}: the snapshot has a log: {info:?}"
        );
        assert_e2fsck_clean(&c.dir.path("ours.img"));
        eprintln!("{tag}: {}", e4fuzz::cli::recovery_summary(&info));
    }
}

/// Replay throughput, ours vs e2fsck, on one large log (15 transactions of 1000 blocks in a
/// 64 MiB journal of a 4 KiB-block filesystem; home blocks 50000.., past the journal at
/// 32801..49184). Not a timed test: run it on purpose with
/// `cargo test --release --test integration replay_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn replay_throughput() {
    if !have_e2fsprogs("replay_throughput") {
        return;
    }
    use std::time::Instant;
    let c = Case::mkfs("throughput", 256 << 20, &["-b", "4096", "-J", "size=64"]);
    let (mut dev, mut j) = open_journal(&c.img);
    j.jsb.s_feature_incompat |= JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_64BIT;
    j.jsb.s_checksum_type = 4;
    let (txns, per) = (15u64, 1000u64);
    {
        let mut w = LogWriter::new(&mut dev, &j, 1);
        for t in 0..txns {
            let tid = Tid(u32::try_from(t + 1).unwrap());
            let data: Vec<(u64, Vec<u8>)> = (0..per)
                .map(|i| (50_000 + t * per + i, noise(t * per + i, 4096)))
                .collect();
            w.descriptor(tid, &data).unwrap();
            w.commit(tid, 1000 + t).unwrap();
        }
    }
    seal(&c.img, dev, j, 1, 1);
    let blocks = txns * per;

    let mut dev = Fs::load_image(&c.img).unwrap();
    let t0 = Instant::now();
    let info = jbd2::recover(&mut dev).unwrap();
    let core = t0.elapsed();
    assert_eq!(u64::from(info.nr_replays), blocks);

    let ours = c.copy("ours.img");
    let t0 = Instant::now();
    let out = e4fuzz(&["recover", ours.to_str().unwrap()]);
    let cli = t0.elapsed();
    assert_eq!(out.status.code(), Some(0));

    let theirs = c.copy("theirs.img");
    let t0 = Instant::now();
    run_e2fsck(&theirs, &["-y", "-E", "journal_only"]);
    let e2fsck = t0.elapsed();
    assert_same_blocks(&ours, &theirs, &[CLOCK_FIELDS]);

    let rate = |d: std::time::Duration| blocks as f64 / d.as_secs_f64();
    eprintln!("replay of {blocks} blocks of 4 KiB:");
    eprintln!(
        "  ours, recover() on a loaded Disk: {core:?} = {:.0} blocks/s",
        rate(core)
    );
    eprintln!(
        "  ours, `e4fuzz recover IMAGE` (256 MiB image): {cli:?} = {:.0} blocks/s",
        rate(cli)
    );
    eprintln!(
        "  e2fsck -y -E journal_only IMAGE: {e2fsck:?} = {:.0} blocks/s",
        rate(e2fsck)
    );
}
