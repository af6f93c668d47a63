//! The offline file commands end to end, as a user runs them: each mounts the image, does
//! one operation through the journal, unmounts cleanly. Images stay e2fsck-clean and debugfs
//! reads what e4fuzz wrote; bad input exits 2 with one line.

use crate::util::*;

fn ok(args: &[&str]) -> Vec<u8> {
    let out = e4fuzz(args);
    assert!(
        out.status.success(),
        "e4fuzz {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn fails_with_2(args: &[&str]) -> String {
    let out = e4fuzz(args);
    assert_eq!(out.status.code(), Some(2), "e4fuzz {args:?} should exit 2");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn file_commands_round_trip_on_both_formats_and_mke2fs_images() {
    if !have_e2fsprogs("file_commands_round_trip") {
        return;
    }
    let t = TempDir::new("cli");
    let host = t.path("data");
    let data = bytes(7, 300_000);
    std::fs::write(&host, &data).unwrap();
    let ours_ext = t.path("ext.img");
    let ours_ind = t.path("ind.img");
    let theirs = t.path("mke2fs.img");
    ok(&["mkfs", ours_ext.to_str().unwrap(), "--size", "16M"]);
    ok(&[
        "mkfs",
        ours_ind.to_str().unwrap(),
        "--size",
        "16M",
        "--no-extent",
    ]);
    mke2fs(&theirs, 16 << 20, &["-t", "ext4", "-b", "1024"]);
    for img in [&ours_ext, &ours_ind, &theirs] {
        let i = img.to_str().unwrap();
        let h = host.to_str().unwrap();
        ok(&["mkdir", i, "/dir"]);
        ok(&["put", i, "/dir/f", "--from", h]);
        ok(&["put", i, "/sparse", "--from", h, "--offset", "70000000"]);
        assert_eq!(ok(&["get", i, "/dir/f"]), data);
        ok(&["punch", i, "/dir/f", "--offset", "5000", "--len", "20000"]);
        ok(&["truncate", i, "/sparse", "--size", "70100000"]);
        let mut want = data.clone();
        want[5000..25000].fill(0);
        assert_eq!(ok(&["get", i, "/dir/f"]), want);
        assert_eq!(
            debugfs_cat(img, "/dir/f"),
            want,
            "debugfs reads what e4fuzz wrote"
        );
        let sparse = debugfs_cat(img, "/sparse");
        assert_eq!(sparse.len(), 70_100_000);
        assert_eq!(&sparse[70_000_000..], &data[..100_000]);
        let ls = String::from_utf8(ok(&["ls", i])).unwrap();
        assert!(
            ls.contains("dir") && ls.contains("sparse") && ls.contains("lost+found"),
            "{ls}"
        );
        assert_e2fsck_clean(img);
        ok(&["rm", i, "/dir/f"]);
        ok(&["rm", i, "/dir"]);
        ok(&["rm", i, "/sparse"]);
        assert_e2fsck_clean(img);
    }
}

#[test]
fn get_streams_a_sparse_file_of_any_size() {
    // 1 TiB with one block of data at its end: `get` used to read the file whole into one
    // buffer and aborted on the allocation. It streams now, leaving the holes sparse.
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let t = TempDir::new("cli-sparse");
    let img = t.path("ext.img");
    let i = img.to_str().unwrap();
    let host = t.path("data");
    std::fs::write(&host, b"the end").unwrap();
    let h = host.to_str().unwrap();
    let size: u64 = 1 << 40;
    ok(&["mkfs", i, "--size", "16M"]);
    ok(&["put", i, "/big", "--from", h]);
    ok(&[
        "put",
        i,
        "/big",
        "--from",
        h,
        "--offset",
        &(size - 4096).to_string(),
    ]);
    ok(&["truncate", i, "/big", "--size", &size.to_string()]);
    let out = t.path("big.out");
    ok(&["get", i, "/big", "-o", out.to_str().unwrap()]);
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!(meta.len(), size);
    assert!(
        meta.blocks() < 1024,
        "holes left sparse: {} blocks",
        meta.blocks()
    );
    let mut f = std::fs::File::open(&out).unwrap();
    let mut head = [0u8; 16];
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"the end\0\0\0\0\0\0\0\0\0");
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(size - 4096)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(&tail[..7], b"the end");
    assert!(tail[7..].iter().all(|&b| b == 0));
    // To standard output: a reader that stops early ends it quietly (exit 0), as with `cat`.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_e4fuzz"))
        .args(["get", i, "/big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 7];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"the end");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let t = TempDir::new("cli-bad");
    let img = t.path("img");
    let missing = t.path("nope");
    fails_with_2(&["ls", missing.to_str().unwrap()]);
    std::fs::write(&img, vec![0x41u8; 100]).unwrap();
    fails_with_2(&["ls", img.to_str().unwrap()]);
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    fails_with_2(&["get", img.to_str().unwrap(), "/x"]);
    fails_with_2(&["fsck-nonexistent-subcommand"]);
    ok(&["mkfs", img.to_str().unwrap(), "--size", "8M"]);
    let i = img.to_str().unwrap();
    assert!(fails_with_2(&["get", i, "/missing"]).contains("no such file"));
    fails_with_2(&["rm", i, "/lost+found/x"]);
    fails_with_2(&["mkdir", i, "/lost+found"]);
    fails_with_2(&["put", i, "/f", "--from", missing.to_str().unwrap()]);
}
