//! The `kernel` oracle (`e4fuzz::oracle::kernel`) against the real kernel on loop mounts: it
//! agrees with our journal replay at several crash points of a scenario that leaves committed,
//! not checkpointed transactions, and with our migrate in both directions (a fragmented indirect
//! file, a single-extent file, and the kernel's EOPNOTSUPP for a big one); and it FAILS when our
//! side is tampered with (a data byte, a size, a claimed errno), and refuses (skip, not a finding)
//! to mount an image e2fsck rejects. `e4fuzz repro --kernel` catches S9 (extent→indirect ignores
//! the start block) and agrees on the same scenario with the fixed engine.
//!
//! `e4fuzz run --kernel-sample N` judges sampled executions of a campaign the same way.
//!
//! Every test skips with a message where loop mounts are unavailable.

use crate::migrate::walk;
use crate::util::*;
use e4fuzz::dev::Disk;
use e4fuzz::format::superblock::{Superblock, EXT4_FEATURE_INCOMPAT_EXTENTS};
use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::harness::exec::execute_images;
use e4fuzz::harness::ExecOpts;
use e4fuzz::oracle::kernel::{self, check_migrate, check_replay, migrate_alone};
use e4fuzz::profile::Profile;
use e4fuzz::scenario::{MigrateTo, Scenario};
use e4fuzz::Pblk;

/// Whether the kernel oracle can run; prints the skip reason when not.
fn kernel_ok(test: &str) -> bool {
    match kernel::available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIP {test}: kernel oracle unavailable: {why}");
            false
        }
    }
}

/// A scenario with an indirect and an extent file: a write + fsync, a migration, a truncate,
/// a commit, a write and a sync, crashing at device write `at` (all pending writes kept).
fn scenario(at: Option<u64>) -> Scenario {
    let at = at.map_or("none".to_string(), |w| w.to_string());
    let text = format!(
        "e4fuzz-repro v1
profile fixed
bugs -
geometry block_size=1024 size=16777216 extents=1 metadata_csum=1 journal_blocks=1024
setup f1 indirect write=0+30000:5
setup f2 extents write=0+9000:6
thread 0
  write f1 off=40000 len=6000 tag=7
  fsync f1
  migrate f1 to=extents
  truncate f2 size=3000
  commit
  write f2 off=5000 len=5000 tag=9
  sync
schedule -
crash at_write={at} seed=7 keep=1000 tear=0
"
    );
    Scenario::parse_repro(&text).unwrap()
}

fn keep() -> ExecOpts {
    ExecOpts {
        keep_images: true,
        ..ExecOpts::default()
    }
}

fn needs_recovery(dev: &mut Disk) -> bool {
    let sb = Superblock::parse(&dev.read_bytes(1024, 1024).unwrap()).unwrap();
    sb.has_incompat(e4fuzz::format::superblock::EXT4_FEATURE_INCOMPAT_RECOVER)
}

/// `(crash, ours recovered)` of the scenario crashed at device write `at`.
fn crash_state(at: u64) -> (Disk, Disk) {
    let (v, img) = execute_images(&scenario(Some(at)), &keep());
    assert!(v.is_clean(), "{:?}", v.findings);
    let img = img.expect("images kept");
    (img.crash, img.recovered)
}

/// The physical block of `path`'s logical block `lblk` on `dev`.
fn pblk_of(dev: &Disk, path: &str, lblk: u32) -> Pblk {
    let mut fs = Fs::mount(dev.clone(), MountOpts { read_only: true }).unwrap();
    let ino = fs.resolve(path).unwrap();
    Pblk(walk(&mut fs, ino).lookup(lblk).unwrap().0)
}

#[test]
fn kernel_replay_agrees_at_crash_points_with_committed_transactions() {
    if !kernel_ok("kernel_replay_agrees") {
        return;
    }
    let v = execute_images(&scenario(None), &keep()).0;
    let n = v.device_writes;
    assert!(n > 20, "{n} device writes");
    let mut replayed = 0;
    for at in [n / 3, 2 * n / 3, n - 1] {
        let (mut crash, ours) = crash_state(at);
        replayed += usize::from(needs_recovery(&mut crash));
        let r = check_replay(&crash, &ours).unwrap_or_else(|why| panic!("at {at}: {why}"));
        assert_eq!(r.problems, vec![], "crash at write {at}");
        assert!(r.compared.starts_with("2 files ("), "{}", r.compared);
        assert!(r.compared.ends_with(", 15361 blocks"), "{}", r.compared);
    }
    assert!(replayed >= 2, "the crash images need journal replay");
}

#[test]
fn kernel_replay_disagrees_with_a_tampered_recovery() {
    if !kernel_ok("kernel_replay_disagrees") {
        return;
    }
    let n = execute_images(&scenario(None), &keep()).0.device_writes;
    let (mut crash, ours) = crash_state(2 * n / 3);
    assert!(needs_recovery(&mut crash));
    // One byte of f1's block 3 on our side.
    let b = pblk_of(&ours, "/f1", 3);
    let mut bad = ours.clone();
    let mut data = bad.peek_block(b).to_vec();
    data[17] ^= 0x40;
    bad.write(b, &data).unwrap();
    let r = check_replay(&crash, &bad).unwrap();
    let causes: Vec<&str> = r.problems.iter().map(|p| p.cause.as_str()).collect();
    let k = data[17] ^ 0x40;
    assert_eq!(
        causes,
        vec![
            format!(
                "/f1: byte {} reads 0x{k:02x} through the kernel, 0x{:02x} on our image",
                3 * 1024 + 17,
                data[17]
            ),
            format!("block {} differs after the replays: byte 17", b.0),
        ]
    );
    assert!(r.problems.iter().all(|p| p.oracle == "kernel"));
    // Our side truncated f2 further than the crash allows: size, map and blocks differ.
    let mut fs = Fs::mount(ours.clone(), MountOpts::default()).unwrap();
    let f2 = fs.resolve("/f2").unwrap();
    fs.truncate_file(f2, 100).unwrap();
    let short = fs.unmount().unwrap();
    let r = check_replay(&crash, &short).unwrap();
    assert!(
        r.problems[0].cause.starts_with("/f2: i_size ")
            && r.problems[0]
                .cause
                .ends_with(" after the kernel's replay, 100 after ours"),
        "{:?}",
        r.problems
    );
    assert!(r.problems.len() >= 3, "{:?}", r.problems);
}

/// An extent filesystem with `/frag` (indirect, 40 one-block runs: a tree leaf block after
/// `chattr +e`), `/big` (extents, 20 blocks: `chattr -e` refuses) and `/small` (extents, 5
/// blocks).
fn migrate_image() -> Disk {
    let opts = MkfsOpts {
        size_bytes: 16 << 20,
        extents: false,
        journal_blocks: Some(1024),
        ..MkfsOpts::default()
    };
    let blk = |seed: u32| -> Vec<u8> { (0..1024u32).map(|i| (i * 7 + seed) as u8 | 1).collect() };
    let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
    let frag = fs.create("/frag", 0o644).unwrap();
    let pad = fs.create("/pad", 0o644).unwrap();
    for i in 0..40u32 {
        fs.write_file(frag, u64::from(2 * i) * 1024, &blk(i))
            .unwrap();
        fs.write_file(pad, u64::from(i) * 1024, &blk(100 + i))
            .unwrap();
    }
    // tune2fs -O extent: the old files stay indirect.
    fs.sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_EXTENTS;
    let mut fs = Fs::mount(fs.unmount().unwrap(), MountOpts::default()).unwrap();
    for (path, n) in [("/big", 20u32), ("/small", 5)] {
        let ino = fs.create(path, 0o644).unwrap();
        let data: Vec<u8> = (0..n).flat_map(|i| blk(200 + i)).collect();
        fs.write_file(ino, 0, &data).unwrap();
    }
    fs.unmount().unwrap()
}

fn fixed() -> Profile {
    Profile::by_name("fixed").unwrap()
}

#[test]
fn kernel_chattr_agrees_with_our_migrate_both_ways() {
    if !kernel_ok("kernel_chattr_agrees") {
        return;
    }
    let before = migrate_image();
    let cases = [
        (
            "/frag",
            MigrateTo::Extents,
            None,
            "indirect → kernel extents, ours extents",
        ),
        (
            "/small",
            MigrateTo::Indirect,
            None,
            "extents → kernel indirect, ours indirect",
        ),
        (
            "/big",
            MigrateTo::Indirect,
            Some(95),
            "extents → kernel extents, ours extents",
        ),
        (
            "/small",
            MigrateTo::Extents,
            Some(22),
            "extents → kernel extents, ours extents",
        ),
    ];
    for (path, to, errno, what) in cases {
        let (after, got) = migrate_alone(&before, path, to, &fixed()).unwrap();
        assert_eq!(got, errno, "{path} {to:?}: our errno");
        let r = check_migrate(&before, path, to, &after, got).unwrap();
        assert_eq!(r.problems, vec![], "{path} {to:?}");
        assert_eq!(r.notes, Vec::<String>::new(), "{path} {to:?}");
        assert_eq!(r.compared, format!("{path} {what}"));
        if path == "/frag" {
            // 40 runs: the tree needed a leaf block, and the kernel put it where we did.
            let mut fs = Fs::mount(after, MountOpts { read_only: true }).unwrap();
            let ino = fs.resolve(path).unwrap();
            let map = walk(&mut fs, ino);
            assert_eq!((map.runs.len(), map.meta.len()), (40, 1));
        }
    }
}

#[test]
fn kernel_chattr_disagrees_with_a_tampered_migrate() {
    if !kernel_ok("kernel_chattr_disagrees") {
        return;
    }
    let before = migrate_image();
    let (after, errno) = migrate_alone(&before, "/frag", MigrateTo::Extents, &fixed()).unwrap();
    // A data byte of /frag's logical block 6 (its 4th run).
    let b = pblk_of(&after, "/frag", 6);
    let mut bad = after.clone();
    let mut data = bad.peek_block(b).to_vec();
    data[0] ^= 1;
    bad.write(b, &data).unwrap();
    let r = check_migrate(&before, "/frag", MigrateTo::Extents, &bad, errno).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(
        r.problems[0].cause,
        format!(
            "/frag: byte 6144 reads 0x{:02x} through the kernel, 0x{:02x} on our image",
            data[0] ^ 1,
            data[0]
        )
    );
    // Our side "succeeds" but leaves the file indirect: flags, then the errno claim.
    let r = check_migrate(&before, "/frag", MigrateTo::Extents, &before, None).unwrap();
    assert_eq!(
        r.problems[0].cause,
        "/frag: i_flags 0x80000 after the kernel's chattr +e, 0x0 after ours"
    );
    let r = check_migrate(&before, "/big", MigrateTo::Indirect, &before, None).unwrap();
    assert_eq!(
        r.problems
            .iter()
            .map(|p| p.cause.as_str())
            .collect::<Vec<_>>(),
        vec!["/big: chattr -e returned EOPNOTSUPP in the kernel, our migrate 0"]
    );
}

#[test]
fn kernel_oracle_refuses_to_mount_what_e2fsck_rejects() {
    if !kernel_ok("kernel_oracle_refuses") {
        return;
    }
    let mut bad = migrate_image();
    let mut fs = Fs::mount(bad.clone(), MountOpts { read_only: true }).unwrap();
    let ino = fs.resolve("/pad").unwrap();
    let (blk, off) = fs.inode_location(ino).unwrap();
    let mut data = bad.peek_block(blk).to_vec();
    data[off + 0x1A] = 5; // i_links_count
    bad.write(blk, &data).unwrap();
    let why = check_migrate(&bad, "/frag", MigrateTo::Extents, &bad, None).unwrap_err();
    assert!(
        why.starts_with("e2fsck -fn is not clean after replay (status ")
            && why.contains("Inode 13 passes checks, but checksum does not match inode."),
        "{why}"
    );
}

#[test]
fn repro_kernel_catches_s9_and_agrees_on_the_fixed_engine() {
    let s9 = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/repros/S9-stale.repro");
    let out = e4fuzz(&["repro", s9, "--kernel"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    if let Err(why) = kernel::available() {
        assert!(
            text.contains(&format!("kernel oracle skipped: {why}\n")),
            "{text}"
        );
        return;
    }
    assert!(
        text.contains(
            "oracle kernel: kernel: migrate f6 to=indirect: /f6: map entry 0 (7+1)->530 after \
             the kernel's chattr -e, (0+1)->530 after ours\n"
        ),
        "{text}"
    );
    assert!(text.contains("\nkernel replay: agrees ("), "{text}");
    assert!(
        text.contains("\nkernel migrate f6 to=indirect: DISAGREES, 2 problems ("),
        "{text}"
    );
    let out = e4fuzz(&["repro", s9, "--kernel", "--profile", "fixed", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let k = &j["files"][0]["kernel"];
    assert_eq!(k["skipped"], serde_json::Value::Null);
    let checks: Vec<(&str, bool)> = k["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["agrees"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks,
        vec![("replay", true), ("migrate f6 to=indirect", true)]
    );
}

/// A campaign with `--kernel-sample 1` on the fixed engine judges every execution with the
/// kernel and finds nothing; with S9 (extent→indirect ignores the start block) the kernel
/// catches our migrate of the S9 repro's scenario (the kernel finding of `repro --kernel`).
#[test]
fn campaigns_sample_the_kernel_oracle() {
    use e4fuzz::harness::campaign::{run_campaign, CampaignOpts, Quiet};
    if !kernel_ok("campaigns_sample_the_kernel_oracle") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("e4fuzz-kcamp-{}", std::process::id()));
    let opts = CampaignOpts {
        profile: "fixed".into(),
        bugs: e4fuzz::profile::BugSet::NONE,
        time: None,
        execs: Some(3),
        seed: 11,
        jobs: 1,
        out: dir.clone(),
        e2fsck_sample: None,
        kernel_sample: Some(1),
        max_findings: None,
        crash_model: Default::default(),
    };
    let r = run_campaign(&opts, &Quiet).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((r.execs, r.kernel_checks), (3, 3));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.to_json()["kernel_checks"], 3);
    // The campaign's kernel step on a scenario where the kernel disagrees with S9.
    let s9 = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/repros/S9-stale.repro");
    let text = std::fs::read_to_string(s9).unwrap();
    let s = Scenario::parse_repro(&text).unwrap();
    let keep = ExecOpts {
        keep_images: true,
        ..ExecOpts::default()
    };
    let (mut v, img) = execute_images(&s, &keep);
    e4fuzz::harness::exec::kernel_checks(&s, &img.unwrap(), &mut v).unwrap();
    assert!(
        v.findings.iter().any(|f| f.oracle == "kernel"),
        "{:?}",
        v.findings
    );
}

/// A truncate whose block-bitmap read fails after `ext4_orphan_add()`: ext4_error() commits
/// the superblock with `EXT4_ERROR_FS` and the new orphan list head, nothing journaled. The
/// kernel's read-only mount keeps that list on a filesystem with errors ("don't clear list on
/// RO mount w/ errors"), where our read-write mount clears it: the replay check compares the
/// kernel with our recovery alone there, and agrees; against our mounted image it would not.
#[test]
fn kernel_replay_agrees_on_an_orphan_list_with_errors_recorded() {
    if !kernel_ok("kernel_replay_agrees_on_an_orphan_list_with_errors_recorded") {
        return;
    }
    let s = Scenario::parse_repro(
        "e4fuzz-repro v1
profile fixed
bugs -
geometry block_size=1024 size=16777216 extents=1 metadata_csum=1 journal_blocks=1024
setup f7 indirect write=0+14000:217
thread 0
  truncate f7 size=3000
schedule -
crash at_write=none seed=0 keep=1000 tear=0
fault op=read when=nth:4 zone=any sticky=1
",
    )
    .unwrap();
    let (v, img) = execute_images(&s, &keep());
    assert!(v.is_clean(), "{:?}", v.findings);
    let crash = img.expect("images kept").crash;
    let sb = Superblock::parse(&crash.clone().read_bytes(1024, 1024).unwrap()).unwrap();
    assert_ne!(sb.s_state & e4fuzz::format::superblock::EXT4_ERROR_FS, 0);
    assert_eq!(
        sb.s_last_orphan, 12,
        "the truncated file heads the orphan list"
    );
    let ours = kernel::recover_ours(&crash, e4fuzz::profile::BugSet::NONE);
    let r = check_replay(&crash, &ours).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // Our read-write mount cleared the list ("Errors on filesystem, clearing orphan list").
    let mounted = Fs::mount(ours, MountOpts::default())
        .unwrap()
        .unmount()
        .unwrap();
    let r = check_replay(&crash, &mounted).unwrap();
    let causes: Vec<&str> = r.problems.iter().map(|p| p.cause.as_str()).collect();
    assert!(
        causes
            .iter()
            .any(|c| c.contains("s_last_orphan 0xc after the kernel's, 0x0 after ours")),
        "{causes:?}"
    );
}
