//! The consistency checker behind the `fsck` oracle, and e2fsck as its confirmation and as the
//! sampled `e2fsck` oracle.
//!
//! Until our own checker (`oracle::fsck`) is in the crate, the `fsck` oracle runs the external
//! e2fsck 1.47 (`-fn` on a temporary copy of the image, about 20–40 ms a state), so by default
//! it checks only the last crash state of each execution ([`DEFAULT_SCOPE`]). A problem line
//! that mentions a checksum makes the finding a `checksum` one.
//!
//! What it verifies and does not: see `oracle::e2fsck`.

use super::{pattern, FsckScope};
use crate::dev::Disk;
use crate::oracle::e2fsck;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default [`FsckScope`]: e2fsck is too slow for every state.
pub const DEFAULT_SCOPE: FsckScope = FsckScope::Last;
/// Whether the checker runs in process (fast enough for every crash state of a campaign).
/// While it is the external e2fsck, campaigns run it on sampled executions only.
pub const IN_PROCESS: bool = false;
/// Without `--e2fsck-sample`, a campaign checks one execution in this many with e2fsck while
/// the checker is not in process.
pub const DEFAULT_SAMPLE: u64 = 32;

/// What the checker said about one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing to report.
    Clean,
    /// Problems: the oracle (`"fsck"`, `"checksum"`, `"leak"`) and one line.
    Problems {
        /// The oracle the problems belong to.
        oracle: &'static str,
        /// One line: the first problem and how many there were.
        cause: String,
    },
    /// The checker could not run (not installed, host I/O error).
    Unavailable(String),
}

/// Run the consistency checker on `dev` (an unmounted image).
pub fn check(dev: &Disk) -> Check {
    e2fsck_check(dev)
}

/// Run the external `e2fsck -fn` on a temporary copy of `dev`.
pub fn e2fsck_check(dev: &Disk) -> Check {
    if !available() {
        return Check::Unavailable("e2fsck is not installed".into());
    }
    let path = temp_image();
    let res = save_for_check(dev, &path).and_then(|()| e2fsck::check(&path));
    let _ = std::fs::remove_file(&path);
    match res {
        Err(e) => Check::Unavailable(format!("e2fsck: {e}")),
        Ok(r) if r.is_clean() => Check::Clean,
        Ok(r) => {
            let problems = r.problems();
            let first = problems.first().copied().unwrap_or("(no problem line)");
            let checksum = problems.iter().any(|l| l.contains("checksum"));
            Check::Problems {
                oracle: if checksum { "checksum" } else { "fsck" },
                cause: format!(
                    "e2fsck -fn exit {}: {first} ({} problem lines)",
                    r.status,
                    problems.len()
                ),
            }
        }
    }
}

/// Whether e2fsck is installed (checked once).
pub fn available() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(e2fsck::available)
}

/// Whether e2fsck confirms a finding of `oracle` on `dev`: true when it also complains, when it
/// cannot run, or for oracles that need no confirmation.
pub fn confirmed(oracle: &str, dev: &Disk) -> bool {
    if !matches!(oracle, "fsck" | "leak" | "checksum") {
        return true;
    }
    !matches!(e2fsck_check(dev), Check::Clean)
}

/// Save `dev` as a sparse image for e2fsck, leaving out the template's poisoned free blocks
/// (a poisoned block still at its own number): e2fsck never reads free blocks, and a 16 MiB
/// image then costs a few hundred block writes instead of all of them.
fn save_for_check(dev: &Disk, path: &std::path::Path) -> crate::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let host = |e: std::io::Error| crate::Error::host(format!("{}: {e}", path.display()));
    let bs = u64::from(dev.block_size());
    let mut file = std::fs::File::create(path).map_err(host)?;
    file.set_len(dev.nr_blocks() * bs).map_err(host)?;
    for b in 0..dev.nr_blocks() {
        let data = dev.peek_block(crate::units::Pblk(b));
        let poison =
            data.starts_with(pattern::POISON_MAGIC) && crate::bytes::read_u64le(&data, 8) == b;
        if poison || data.iter().all(|&x| x == 0) {
            continue;
        }
        file.seek(SeekFrom::Start(b * bs)).map_err(host)?;
        file.write_all(&data).map_err(host)?;
    }
    Ok(())
}

/// A unique temporary image path.
fn temp_image() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "e4fuzz-check-{}-{}.img",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mkfs::{mkfs, MkfsOpts};
    use crate::units::Pblk;

    fn small() -> Disk {
        mkfs(&MkfsOpts {
            size_bytes: 4 << 20,
            journal_blocks: Some(1024),
            ..MkfsOpts::default()
        })
        .unwrap()
    }

    #[test]
    fn a_fresh_image_is_clean_and_a_broken_one_is_not() {
        if !available() {
            eprintln!("SKIP consistency tests: e2fsck not installed");
            return;
        }
        assert_eq!(check(&small()), Check::Clean);
        // Zero the root directory's inode table block: e2fsck must complain.
        let mut d = small();
        let zero = vec![0u8; 1024];
        let mut fs =
            crate::fs::Fs::mount(d.clone(), crate::fs::MountOpts { read_only: true }).unwrap();
        let (blk, _) = fs.inode_location(crate::units::Ino(2)).unwrap();
        let _ = fs.iget(crate::units::Ino(2)).unwrap();
        d.write(Pblk(blk.0), &zero).unwrap();
        match check(&d) {
            Check::Problems { oracle, cause } => {
                assert_eq!(oracle, "fsck");
                assert!(cause.starts_with("e2fsck -fn exit "), "{cause}");
                assert!(cause.contains("Root inode is not a directory"), "{cause}");
            }
            other => panic!("expected problems, got {other:?}"),
        }
        assert!(confirmed("fsck", &d));
        assert!(!confirmed("fsck", &small()));
        assert!(confirmed("data-loss", &small()));
    }
}
