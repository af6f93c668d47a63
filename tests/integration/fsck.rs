//! Our fsck against the real e2fsck 1.47 on images made by mke2fs and filled (then broken) by
//! debugfs: clean images must be clean for both; for each corruption both must find it, and
//! every problem code e2fsck logs (its `problem_log_filename`) must be among ours. Also the
//! `e4fuzz fsck` command line, including unreadable inputs.

use crate::util::*;
use e4fuzz::dev::Disk;
use e4fuzz::oracle::fsck::{check, FsckReport, ProblemClass, ProblemCode as P};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Deterministic file contents.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Fill an image with debugfs: files of several sizes (one of 3 MiB), directories, a short and
/// a long symlink, a file punched into more than 4 extents (or indirect runs).
fn fill(t: &TempDir, image: &Path) {
    let files = [
        ("small", 5),
        ("five_k", 5000),
        ("seventy", 70_000),
        ("big", 3 << 20),
    ];
    let mut cmds: Vec<String> = Vec::new();
    for (i, (name, len)) in files.iter().enumerate() {
        let host = t.path(&format!("{name}.bin"));
        std::fs::write(&host, data(*len, i as u64 + 1)).unwrap();
        cmds.push(format!("write {} {name}", host.display()));
    }
    let seventy = t.path("seventy.bin");
    cmds.extend(
        [
            "mkdir dd",
            "mkdir dd/sub",
            "symlink dd/short target",
            "symlink dd/long /a/long/symlink/target/with/more/than/sixty/characters/in/it/yes",
        ]
        .map(String::from),
    );
    cmds.push(format!("write {} dd/x", t.path("small.bin").display()));
    cmds.push(format!("write {} holey", seventy.display()));
    for b in [3, 7, 11, 15, 19, 23] {
        cmds.push(format!("punch holey {b} {b}"));
    }
    cmds.push("punch big 100 120".into());
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    debugfs(image, true, &cmds);
}

/// Our report on an image file.
fn ours(image: &Path) -> FsckReport {
    let head = std::fs::read(image).unwrap();
    let bs = 1024u32 << u32::from_le_bytes(head[1048..1052].try_into().unwrap());
    let mut dev = Disk::load(image, bs).unwrap();
    check(&mut dev).unwrap()
}

/// `e2fsck -fn` with a problem log: exit status and the problem codes it logged, without the
/// headers, latch questions, pass 1C/1D/1E reports and bitmap-difference brackets.
fn e2fsck_codes(t: &TempDir, image: &Path) -> (i32, BTreeSet<u32>) {
    let log = t.path("problems.log");
    let _ = std::fs::remove_file(&log);
    let conf = t.path("e2fsck.conf");
    std::fs::write(
        &conf,
        format!("[options]\nproblem_log_filename = {}\n", log.display()),
    )
    .unwrap();
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .env("E2FSCK_CONFIG", &conf)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let not_problems = [
        0x00003E, 0x010010, 0x010037, 0x011001, 0x011003, 0x050003, 0x050006,
    ];
    let codes = text
        .lines()
        .filter(|l| l.trim_start().starts_with("<problem "))
        .filter_map(|l| l.split("code=\"0x").nth(1))
        .filter_map(|s| u32::from_str_radix(&s[..6], 16).ok())
        .filter(|c| !not_problems.contains(c) && !matches!(c >> 12, 0x12..=0x14))
        .filter(|&c| c != 0x050007 && c != 0x05000A)
        .collect();
    (out.status.code().unwrap_or(-1), codes)
}

/// A fresh filled image.
fn image(t: &TempDir, name: &str, size: u64, args: &[&str]) -> PathBuf {
    let img = t.path(name);
    mke2fs(&img, size, args);
    fill(t, &img);
    img
}

#[test]
fn clean_images_are_clean_for_both() {
    if !have_e2fsprogs("clean_images_are_clean_for_both") {
        return;
    }
    let t = TempDir::new("fsck-clean");
    let cases: &[(&str, &[&str])] = &[
        ("ext4-1k", &["-t", "ext4", "-b", "1024"]),
        ("ext4-4k", &["-t", "ext4", "-b", "4096"]),
        ("ext3", &["-t", "ext3"]),
        (
            "noextent",
            &["-t", "ext4", "-O", "^extent,^64bit", "-b", "1024"],
        ),
        ("nocsum", &["-t", "ext4", "-O", "^metadata_csum"]),
        (
            "uninit-bg",
            &["-t", "ext4", "-O", "^metadata_csum,uninit_bg", "-b", "2048"],
        ),
    ];
    for (name, args) in cases {
        let img = image(&t, name, 64 << 20, args);
        let (status, codes) = e2fsck_codes(&t, &img);
        assert_eq!((status, codes), (0, BTreeSet::new()), "{name}: e2fsck");
        let report = ours(&img);
        assert_eq!(report.problems, [], "{name}: {}", report.summary());
        let s = report.stats;
        assert_eq!(
            (s.dirs, s.regular, s.symlinks),
            (4, 6, 2),
            "{name}: {}",
            report.summary()
        );
    }
}

/// A corruption: what to do to the image, the code we must report, and whether only leaks
/// are expected.
struct Case {
    name: &'static str,
    break_it: fn(&TempDir, &Path),
    code: P,
    leak_only: bool,
}

fn run(image: &Path, cmds: &[&str]) {
    debugfs(image, true, cmds);
}

/// The block named `(ETB0):N` in `debugfs stat`.
fn first_extent_block(image: &Path, file: &str) -> u64 {
    let stat = debugfs(image, false, &[&format!("stat {file}")]);
    let at = stat.find("(ETB0):").expect("an extent tree block") + 7;
    let digits: String = stat[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// `ffb`: a free block.
fn free_block(image: &Path) -> u64 {
    let out = debugfs(image, false, &["ffb 1 1000"]);
    let num = out.rsplit(':').next().unwrap().trim();
    num.parse().unwrap_or_else(|_| panic!("ffb: {out}"))
}

const CASES: &[Case] = &[
    Case {
        name: "wrong link count",
        break_it: |_, i| run(i, &["sif seventy links_count 5"]),
        code: P::PR_4_BAD_REF_COUNT,
        leak_only: false,
    },
    Case {
        name: "wrong i_blocks",
        break_it: |_, i| run(i, &["sif seventy blocks 8"]),
        code: P::PR_1_BAD_I_BLOCKS,
        leak_only: false,
    },
    Case {
        name: "i_size too small",
        break_it: |_, i| run(i, &["sif seventy size 1000"]),
        code: P::PR_1_BAD_I_SIZE,
        leak_only: false,
    },
    Case {
        name: "freed but used block",
        break_it: |_, i| {
            let out = debugfs(i, false, &["bmap seventy 0"]);
            run(
                i,
                &[&format!("freeb {}", out.lines().last().unwrap().trim())],
            );
        },
        code: P::PR_5_BLOCK_USED,
        leak_only: false,
    },
    Case {
        name: "used but free block",
        break_it: |_, i| run(i, &[&format!("setb {}", free_block(i))]),
        code: P::PR_5_BLOCK_UNUSED,
        leak_only: true,
    },
    Case {
        name: "wrong group free count",
        break_it: |_, i| {
            run(
                i,
                &["set_bg 0 free_blocks_count 7", "set_bg 0 checksum calc"],
            )
        },
        code: P::PR_5_FREE_BLOCK_COUNT_GROUP,
        leak_only: true,
    },
    Case {
        name: "cleared EXTENTS_FL",
        break_it: |_, i| run(i, &["sif seventy flags 0"]),
        code: P::PR_1_UNSET_EXTENT_FL,
        leak_only: false,
    },
    Case {
        name: "bad inode checksum",
        break_it: |_, i| run(i, &["sif seventy checksum 0x1234"]),
        code: P::PR_1_INODE_ONLY_CSUM_INVALID,
        leak_only: false,
    },
    Case {
        name: "bad directory inode checksum (its blocks then fail theirs too)",
        break_it: |_, i| run(i, &["sif dd checksum 0x1234"]),
        code: P::PR_2_LEAF_NODE_ONLY_CSUM_INVALID,
        leak_only: false,
    },
    Case {
        name: "bad extent block checksum",
        break_it: |_, i| {
            let etb = first_extent_block(i, "holey");
            let mut bytes = std::fs::read(i).unwrap();
            let tail = etb as usize * 1024 + 1020;
            bytes[tail] ^= 0xFF;
            std::fs::write(i, bytes).unwrap();
        },
        code: P::PR_1_EXTENT_ONLY_CSUM_INVALID,
        leak_only: false,
    },
    Case {
        name: "entry naming a free inode",
        break_it: |_, i| run(i, &["link <500> dd/ghost"]),
        code: P::PR_2_UNUSED_INODE,
        leak_only: false,
    },
    Case {
        name: "unattached inode",
        break_it: |_, i| run(i, &["unlink dd/x"]),
        code: P::PR_4_UNATTACHED_INODE,
        leak_only: false,
    },
    Case {
        name: "deleted inode with zero dtime (a crashed migrate's temp inode)",
        break_it: |t, i| {
            let write = format!("write {} tmp", t.path("small.bin").display());
            let out = debugfs(i, true, &[&write, "unlink tmp"]);
            let at = out
                .find("Allocated inode: ")
                .expect("debugfs names the inode")
                + 17;
            let ino: String = out[at..].chars().take_while(char::is_ascii_digit).collect();
            run(i, &[&format!("sif <{ino}> links_count 0")]);
        },
        code: P::PR_1_ZERO_DTIME,
        leak_only: true,
    },
];

/// Indirect-mapped corruptions, on ext3.
const EXT3_CASES: &[Case] = &[
    Case {
        name: "illegal indirect block",
        break_it: |_, i| run(i, &["sif big block[IND] 99999999"]),
        code: P::PR_1_ILLEGAL_BLOCK_NUM,
        leak_only: false,
    },
    Case {
        name: "block shared by two files",
        break_it: |_, i| {
            let out = debugfs(i, false, &["bmap five_k 0"]);
            let blk = out.lines().last().unwrap().trim().to_string();
            run(i, &[&format!("sif small block[0] {blk}")]);
        },
        code: P::PR_1B_DUP_BLOCK,
        leak_only: false,
    },
    Case {
        name: "wrong i_blocks of an indirect file",
        break_it: |_, i| run(i, &["sif big blocks 100"]),
        code: P::PR_1_BAD_I_BLOCKS,
        leak_only: false,
    },
    Case {
        name: "directory block 0 missing",
        break_it: |_, i| run(i, &["sif dd/sub block[0] 0"]),
        code: P::PR_2_DIRECTORY_HOLE,
        leak_only: false,
    },
];

/// Break a copy of `base` each way of `cases`; e2fsck and we must both find it, with every
/// code e2fsck logs among ours.
fn check_cases(t: &TempDir, base: &Path, cases: &[Case]) {
    assert!(ours(base).problems.is_empty());
    for case in cases {
        let img = t.path("broken.img");
        std::fs::copy(base, &img).unwrap();
        (case.break_it)(t, &img);
        let (status, theirs) = e2fsck_codes(t, &img);
        let report = ours(&img);
        let mine: BTreeSet<u32> = report.codes().iter().map(|c| c.value()).collect();
        let name = case.name;
        assert_eq!(status, 4, "{name}: e2fsck -fn exit status");
        assert!(
            report.has(case.code),
            "{name}: no {} in {report:#?}",
            case.code
        );
        assert!(!report.is_clean(), "{name}");
        assert!(
            theirs.contains(&case.code.value()),
            "{name}: e2fsck codes {theirs:x?}"
        );
        let missing: Vec<String> = theirs
            .difference(&mine)
            .map(|c| format!("{c:#08x}"))
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: e2fsck codes we miss: {missing:?}\n{report:#?}"
        );
        assert_eq!(report.only_leaks(), case.leak_only, "{name}: {report:#?}");
        if case.leak_only {
            assert!(report.count(ProblemClass::Leak) > 0, "{name}");
        }
    }
}

#[test]
fn corruptions_are_found_by_both_with_the_same_codes() {
    if !have_e2fsprogs("corruptions_are_found_by_both_with_the_same_codes") {
        return;
    }
    let t = TempDir::new("fsck-corrupt");
    let base = image(&t, "base.img", 64 << 20, &["-t", "ext4", "-b", "1024"]);
    check_cases(&t, &base, CASES);
    let base = image(&t, "base3.img", 64 << 20, &["-t", "ext3", "-b", "1024"]);
    check_cases(&t, &base, EXT3_CASES);
}

#[test]
fn the_command_line_reports_and_exits_like_fsck() {
    if !have_e2fsprogs("the_command_line_reports_and_exits_like_fsck") {
        return;
    }
    let t = TempDir::new("fsck-cli");
    let img = t.path("cli.img");
    mke2fs(&img, 16 << 20, &["-t", "ext4", "-b", "1024"]);
    let clean = e4fuzz(&["fsck", img.to_str().unwrap()]);
    assert_eq!(clean.status.code(), Some(0));
    let stdout = String::from_utf8(clean.stdout).unwrap();
    // The usage counts are e2fsck's summary line ("11/4096 files ..., 2847/16384 blocks").
    let (_, e2) = e2fsck(&img);
    let summary = e2.lines().find(|l| l.contains(" files (")).unwrap();
    let files = summary.split_whitespace().nth(1).unwrap();
    let blocks = summary
        .split(", ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let want = format!(
        "{}: clean; {files} inodes, {blocks} blocks\n",
        img.display()
    );
    assert_eq!(stdout, want);
    debugfs(&img, true, &["mkdir d", "sif d links_count 5"]);
    let out = e4fuzz(&["fsck", img.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "PR_4_BAD_REF_COUNT inode 12: ref count is 5, should be 2"
    );
    let json = e4fuzz(&["fsck", img.to_str().unwrap(), "--json"]);
    assert_eq!(json.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["clean"], false);
    let p = &v["problems"][0];
    assert_eq!(p["code"], 0x040003);
    assert_eq!(p["name"], "PR_4_BAD_REF_COUNT");
    assert_eq!(p["class"], "corruption");
    let null = serde_json::Value::Null;
    assert_eq!(
        (&p["ino"], &p["blk"], &p["group"]),
        (&12.into(), &null, &null)
    );
    assert_eq!(p["msg"], "ref count is 5, should be 2");
}

#[test]
fn unreadable_images_exit_2_with_one_line() {
    let t = TempDir::new("fsck-garbage");
    let mut inputs = vec![t.path("missing.img")];
    let short = t.path("short.img");
    std::fs::write(&short, data(100, 7)).unwrap();
    inputs.push(short);
    let garbage = t.path("garbage.img");
    std::fs::write(&garbage, data(1 << 20, 9)).unwrap();
    inputs.push(garbage);
    if Command::new("mke2fs").arg("-V").output().is_ok() {
        let full = t.path("full.img");
        mke2fs(&full, 16 << 20, &["-t", "ext4", "-b", "1024"]);
        let cut = t.path("truncated.img");
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(&cut, &bytes[..4 << 20]).unwrap();
        inputs.push(cut);
    }
    for input in inputs {
        for json in [false, true] {
            let mut args = vec!["fsck", input.to_str().unwrap()];
            if json {
                args.push("--json");
            }
            let out = e4fuzz(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{}: {stderr}", input.display());
            assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", input.display());
            assert!(
                stderr.starts_with("e4fuzz: ") && !stderr.contains("panicked"),
                "{stderr}"
            );
            assert!(out.stdout.is_empty(), "{}", input.display());
        }
    }
}
