//! The replay differential (`e4fuzz::oracle::replay_diff`) on a fixed stream of mutated logs:
//! every case must agree with `e2fsck -y -E journal_only` (or be the one documented deviation),
//! and, where loop mounts work, the first cases with the kernel's mount. Also the two things
//! the differential taught the model, each checked without any external tool: the kernel's
//! acceptance of an incomplete commit block (e2fsck 1.47.0 rejects it), and a journal
//! superblock block whose bytes past the superblock survive a mount and unmount.
//!
//! More cases: `cargo run --release --example journal_mutants [CASES] [SEED]` (`KERNEL=1`).

use crate::util::*;
use e4fuzz::dev::Disk;
use e4fuzz::format::jbd2::{commit_block_csum_verify, commit_block_csum_verify_partial};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::jbd2::{self, JournalLoc, Replayer};
use e4fuzz::oracle::replay_diff::{self, Outcome};
use rand::SeedableRng;

/// Cases run against e2fsck, and how many of them also against the kernel.
const CASES: u32 = 48;
const KERNEL_CASES: u32 = 16;

#[test]
fn mutated_logs_replay_as_e2fsck_and_the_kernel_replay_them() {
    if !have_e2fsprogs("mutated_logs_replay_as_e2fsck_and_the_kernel_replay_them") {
        return;
    }
    let dir = TempDir::new("mutants");
    let bases: Vec<Vec<u8>> = replay_diff::bases(&dir.0)
        .unwrap()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let kernel = match e4fuzz::oracle::kernel::available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIP (kernel side) mutated logs: {why}");
            false
        }
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
    let (mut same, mut kernel_judged) = (0, 0);
    for n in 0..CASES {
        let mut image = bases[n as usize % bases.len()].clone();
        let case = replay_diff::mutate(&mut image, &mut rng).unwrap();
        let label = format!("case {n} (base {}, {case})", n as usize % bases.len());
        match replay_diff::against_e2fsck(&image, &dir.0).unwrap() {
            Outcome::Differ(why) => panic!("{label}: e2fsck's replay differs: {why}"),
            Outcome::Agree("same image") => same += 1,
            _ => {}
        }
        if kernel && n < KERNEL_CASES {
            match replay_diff::against_kernel(&image).unwrap() {
                Outcome::Differ(why) => panic!("{label}: the kernel's replay differs: {why}"),
                Outcome::Skipped(_) => {}
                _ => kernel_judged += 1,
            }
        }
    }
    // The stream is not all refusals: most mutations leave a log both sides replay.
    assert!(
        same >= CASES / 2,
        "only {same} of {CASES} replayed to the same image"
    );
    if kernel {
        assert!(
            kernel_judged >= KERNEL_CASES / 2,
            "kernel judged {kernel_judged}"
        );
    }
}

/// A 1 KiB-block image of ours with checksummed (v3) transactions committed in its log, and
/// the journal block number of the last commit block.
fn log_with_commits(t: &TempDir) -> (Disk, u64) {
    let bases = replay_diff::bases(&t.0).unwrap();
    let mut dev = Fs::load_image(&bases[0]).unwrap();
    let sb = jbd2::read_fs_superblock(&mut dev).unwrap();
    let loc = JournalLoc::find(&mut dev, &sb).unwrap();
    let mut last = None;
    for n in 1..64 {
        let b = dev.read_block(loc.bmap(n).unwrap()).unwrap();
        if b[..4] == e4fuzz::format::jbd2::JBD2_MAGIC_NUMBER.to_be_bytes() && b[7] == 2 {
            last = Some(loc.bmap(n).unwrap().0);
        }
    }
    (dev, last.expect("a commit block"))
}

#[test]
fn an_incomplete_commit_block_is_replayed_by_the_kernel_not_by_e2fsck() {
    if !have_e2fsprogs("an_incomplete_commit_block_is_replayed_by_the_kernel_not_by_e2fsck") {
        return;
    }
    let t = TempDir::new("partial-commit");
    let (mut dev, commit) = log_with_commits(&t);
    let whole = jbd2::recover(&mut dev.clone()).unwrap();
    // The commit block's header sector reached the disk, its tail did not (old bytes).
    let mut block = dev.read_block(e4fuzz::Pblk(commit)).unwrap().to_vec();
    block[700..708].copy_from_slice(b"old data");
    dev.write(e4fuzz::Pblk(commit), &block).unwrap();
    let sb = jbd2::read_fs_superblock(&mut dev).unwrap();
    let loc = JournalLoc::find(&mut dev, &sb).unwrap();
    let jsb = jbd2::Journal::load(&mut dev, loc, 1024).unwrap().jsb;
    assert!(commit_block_csum_verify(&jsb, &block).is_err());
    assert!(commit_block_csum_verify_partial(&jsb, &block));
    // The CLI both ways.
    let path = t.path("partial.img");
    for (flag, corrupt) in [(None, true), (Some("--kernel"), false)] {
        dev.save(&path).unwrap();
        let mut args = vec!["recover", path.to_str().unwrap()];
        args.extend(flag);
        let out = e4fuzz(&args);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(said.contains("was corrupt"), corrupt, "{flag:?}: {said}");
    }
    let e2fsck = jbd2::recover_as(&mut dev.clone(), Replayer::E2fsck).unwrap();
    let kernel = jbd2::recover_as(&mut dev.clone(), Replayer::Kernel).unwrap();
    assert_eq!(kernel.transactions(), whole.transactions());
    assert_eq!((kernel.failed_commit, &kernel.error), (None, &None));
    assert_eq!(e2fsck.transactions(), whole.transactions() - 1);
    assert!(e2fsck.failed_commit.is_some(), "{e2fsck:?}");
    // A header that changed is no incomplete commit: both reject it.
    block[0x38] ^= 1; // h_commit_nsec
    dev.write(e4fuzz::Pblk(commit), &block).unwrap();
    assert!(!commit_block_csum_verify_partial(&jsb, &block));
    let kernel = jbd2::recover_as(&mut dev.clone(), Replayer::Kernel).unwrap();
    assert!(kernel.failed_commit.is_some(), "{kernel:?}");
    // The engine's mount replays as the kernel does, and refuses a failed commit as
    // jbd2_journal_load() does.
    assert!(Fs::mount(dev, MountOpts { read_only: true }).is_err());
}

#[test]
fn the_journal_superblock_block_keeps_its_tail_across_a_mount() {
    use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
    let opts = MkfsOpts {
        size_bytes: 16 << 20,
        block_size: 4096,
        ..MkfsOpts::default()
    };
    let mut dev = mkfs(&opts).unwrap();
    let sb = jbd2::read_fs_superblock(&mut dev).unwrap();
    let jsb_blk = JournalLoc::find(&mut dev, &sb).unwrap().bmap(0).unwrap();
    let mut block = dev.read_block(jsb_blk).unwrap().to_vec();
    let tail: Vec<u8> = (0..3072u32).map(|i| (i * 7 + 3) as u8 | 1).collect();
    block[1024..].copy_from_slice(&tail);
    dev.write(jsb_blk, &block).unwrap();
    let mut fs = Fs::mount(dev, MountOpts::default()).unwrap();
    let ino = fs.create("/f", 0o644).unwrap();
    fs.write_file(ino, 0, b"x").unwrap();
    fs.sync().unwrap();
    let mut dev = fs.unmount().unwrap();
    let after = dev.read_block(jsb_blk).unwrap();
    assert_eq!(
        &after[1024..],
        &tail[..],
        "the kernel writes j_sb_buffer back whole"
    );
}

/// A fresh image of ours (1 KiB blocks, metadata_csum, 64bit off or on as mkfs makes it)
/// with its journal superblock edited by `edit` (checksum recomputed).
fn with_jsb(edit: impl FnOnce(&mut e4fuzz::format::jbd2::JournalSuperblock)) -> Disk {
    use e4fuzz::format::jbd2::JournalSuperblock;
    use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
    let mut dev = mkfs(&MkfsOpts::default()).unwrap();
    let sb = jbd2::read_fs_superblock(&mut dev).unwrap();
    let blk = JournalLoc::find(&mut dev, &sb).unwrap().bmap(0).unwrap();
    let mut block = dev.read_block(blk).unwrap().to_vec();
    let mut jsb = JournalSuperblock::parse(&block[..1024]).unwrap();
    edit(&mut jsb);
    block[..1024].copy_from_slice(&jsb.to_bytes());
    dev.write(blk, &block).unwrap();
    dev
}

/// What the kernel's mount does with journal superblocks the multi-block mutations made
/// (`MUTATIONS=3 KERNEL=1 … journal_mutants`), checked on 6.18 there and modelled in
/// `Fs::mount`, read-only mounts included.
#[test]
fn the_engine_mounts_odd_journal_superblocks_as_the_kernel_does() {
    use e4fuzz::format::jbd2::{
        JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT, JBD2_SUPERBLOCK_V1, JBD2_SUPERBLOCK_V2,
    };
    let ro = || MountOpts { read_only: true };
    // journal_reset(): "JBD2: Journal too short (blocks 3-1024)": fewer than 1024 blocks
    // from s_first to the end.
    let short = with_jsb(|j| j.s_first = j.s_maxlen - 1022);
    assert!(Fs::mount(with_jsb(|j| j.s_first = j.s_maxlen - 1023), ro()).is_ok());
    assert!(Fs::mount(short, ro()).is_err());
    // A version 1 superblock cannot take the checksum feature metadata_csum needs.
    let v1 = with_jsb(|j| {
        assert_eq!(j.s_header.h_blocktype, JBD2_SUPERBLOCK_V2);
        j.s_header.h_blocktype = JBD2_SUPERBLOCK_V1;
    });
    assert!(Fs::mount(v1, ro()).is_err());
    // The kernel does not look at s_nr_users (e2fsck refuses, or clears the v2 fields).
    let shared = with_jsb(|j| j.s_nr_users = 3);
    assert!(Fs::mount(shared, ro()).is_ok());
    // set_journal_csum_feature_set() clears ASYNC_COMMIT without the mount option.
    let asynch = with_jsb(|j| j.s_feature_incompat |= JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT);
    let mut after = Fs::mount(asynch, MountOpts::default())
        .unwrap()
        .unmount()
        .unwrap();
    let sb = jbd2::read_fs_superblock(&mut after).unwrap();
    let blk = JournalLoc::find(&mut after, &sb).unwrap().bmap(0).unwrap();
    let jsb =
        e4fuzz::format::jbd2::JournalSuperblock::parse(&after.read_block(blk).unwrap()[..1024])
            .unwrap();
    assert_eq!(
        jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT,
        0
    );
}
