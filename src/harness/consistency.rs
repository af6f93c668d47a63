//! The consistency checker behind the `fsck` and `leak` oracles (our own, [`crate::oracle::fsck`],
//! in process), and e2fsck as its confirmation and as the sampled `e2fsck` oracle.
//!
//! Our checker's problems are sorted by class: corruption is an `fsck` finding (a checksum
//! problem a `checksum` one); a leak is a `leak` finding unless the crash point allows leaks
//! (a crash before a migration's last transaction committed: kernel.md §1.6, where the
//! temporary inode's checksum, made with the original's seed, and an `i_blocks` still counting
//! indirect blocks not freed yet are part of the leak);
//! information (what `e2fsck -n` accepts) is never a finding.
//!
//! What it verifies and does not: see `oracle::fsck` and `oracle::e2fsck`.

use super::{pattern, FsckScope};
use crate::dev::Disk;
use crate::oracle::e2fsck;
use crate::oracle::fsck::{self, Problem, ProblemClass, ProblemCode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default [`FsckScope`]: our checker is fast enough for every state.
pub const DEFAULT_SCOPE: FsckScope = FsckScope::Every;
/// Whether the checker runs in process (fast enough for every crash state of a campaign).
pub const IN_PROCESS: bool = true;
/// Without `--e2fsck-sample`, a campaign checks one execution in this many with e2fsck while
/// the checker is not in process.
pub const DEFAULT_SAMPLE: u64 = 32;

/// What a checker said about one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing to report (allowed leaks and information aside).
    Clean,
    /// Problems: the oracle (`"fsck"`, `"checksum"`, `"leak"`) and one line.
    Problems {
        /// The oracle the problems belong to.
        oracle: &'static str,
        /// One line: the first problem and how many there were.
        cause: String,
    },
    /// The checker could not run (not installed, host I/O error, an image it cannot read).
    Unavailable(String),
}

/// Whether a problem code is a checksum failure.
fn is_checksum(code: ProblemCode) -> bool {
    let name = code.name();
    code == ProblemCode::PR_0_GDT_CSUM || (name.contains("CSUM") && name.ends_with("INVALID"))
}

/// Whether an "i_blocks is X, should be Y" message says X > Y (blocks counted that the map no
/// longer holds).
fn i_blocks_too_high(msg: &str) -> bool {
    let num = |key: &str| {
        let rest = &msg[msg.find(key)? + key.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    };
    matches!((num("is "), num("should be ")), (Some(x), Some(y)) if x > y)
}

/// Run our checker on `dev` (an unmounted image), through `memo` (an execution's crash
/// states mostly differ in blocks the checker does not read); leak-class problems are fine
/// when `leaks_allowed`. Also returns whether the image was entirely clean (no leak either),
/// which is when e2fsck must agree.
pub fn check(dev: &Disk, leaks_allowed: bool, memo: &mut fsck::FsckMemo) -> (Check, bool) {
    let report = match memo.check(dev) {
        Ok(r) => r,
        Err(e) => {
            let cause = format!("our fsck cannot check the image: {e}");
            return (
                Check::Problems {
                    oracle: "fsck",
                    cause,
                },
                false,
            );
        }
    };
    // A migration's temporary inode borrows the original's checksum seed (e81c9302a6c3) until
    // its final reset: a crash before then leaves a dead inode whose checksum is its own
    // seed's mismatch. That is part of the leak a migration may leave.
    let leaked: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.code == ProblemCode::PR_1_ZERO_DTIME)
        .filter_map(|p| p.ino)
        .collect();
    let allowed = |p: &Problem| match p.code {
        ProblemCode::PR_1_INODE_ONLY_CSUM_INVALID => p.ino.is_some_and(|i| leaked.contains(&i)),
        // Indirect blocks not freed yet are still counted (kernel.md §1.6, "Ts partially").
        ProblemCode::PR_1_BAD_I_BLOCKS => i_blocks_too_high(&p.msg),
        _ => false,
    };
    let bad: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| match p.class() {
            ProblemClass::Info => false,
            ProblemClass::Leak => !leaks_allowed,
            ProblemClass::Corruption => !(leaks_allowed && allowed(p)),
        })
        .collect();
    let Some(first) = bad
        .iter()
        .find(|p| p.class() == ProblemClass::Corruption)
        .or(bad.first())
    else {
        return (Check::Clean, report.is_clean());
    };
    let oracle = match first.class() {
        ProblemClass::Leak => "leak",
        _ if is_checksum(first.code) => "checksum",
        _ => "fsck",
    };
    let cause = format!(
        "{}: {} ({} problems)",
        first.code.name(),
        first.msg,
        bad.len()
    );
    (Check::Problems { oracle, cause }, false)
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
        if poison || crate::bytes::is_zero(&data) {
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
        assert_eq!(
            check(&small(), false, &mut fsck::FsckMemo::new()),
            (Check::Clean, true)
        );
        // Zero the root directory's inode: both checkers must complain.
        let mut d = small();
        let fs = crate::fs::Fs::mount(d.clone(), crate::fs::MountOpts { read_only: true }).unwrap();
        let (blk, off) = fs.inode_location(crate::units::Ino(2)).unwrap();
        let mut data = d.peek_block(blk).to_vec();
        data[off..off + 256].fill(0);
        d.write(Pblk(blk.0), &data).unwrap();
        match check(&d, true, &mut fsck::FsckMemo::new()) {
            (Check::Problems { oracle, cause }, false) => {
                assert_eq!(oracle, "fsck");
                assert!(cause.starts_with("PR_"), "{cause}");
            }
            other => panic!("expected problems, got {other:?}"),
        }
        if !available() {
            eprintln!("SKIP the e2fsck half: e2fsck not installed");
            return;
        }
        match e2fsck_check(&d) {
            Check::Problems { oracle, cause } => {
                assert_eq!(oracle, "fsck");
                assert!(cause.starts_with("e2fsck -fn exit "), "{cause}");
            }
            other => panic!("expected problems, got {other:?}"),
        }
        assert_eq!(e2fsck_check(&small()), Check::Clean);
        assert!(confirmed("fsck", &d));
        assert!(!confirmed("leak", &small()));
        assert!(confirmed("data-loss", &small()));
    }

    #[test]
    fn i_blocks_messages() {
        assert!(i_blocks_too_high("i_blocks is 22, should be 20"));
        assert!(!i_blocks_too_high("i_blocks is 20, should be 22"));
        assert!(!i_blocks_too_high("something else"));
    }

    #[test]
    fn checksum_codes() {
        assert!(is_checksum(ProblemCode::PR_0_GDT_CSUM));
        assert!(is_checksum(ProblemCode::PR_5_BLOCK_BITMAP_CSUM_INVALID));
        assert!(!is_checksum(ProblemCode::PR_2_LEAF_NODE_MISSING_CSUM));
        assert!(!is_checksum(ProblemCode::PR_5_FREE_BLOCK_COUNT));
    }
}
