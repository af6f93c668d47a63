//! The `e2fsck` oracle: runs the real e2fsck (e2fsprogs 1.47) on an image file.
//!
//! Verifies: whatever e2fsck's passes check (superblock, descriptors, inodes, extent trees,
//! directories, link counts, bitmaps, checksums, the journal superblock). It is the external
//! proof that an image the engine wrote is ext4.
//!
//! Does not verify: file *contents* (e2fsck never reads data blocks), nor the migrate marker bit
//! (`0x00100000` is `EXT4_VERITY_FL` today and e2fsck 1.47 accepts it silently), nor anything in
//! an unreplayed journal when run read-only (`-n` never replays; use [`replay_journal`] first).

use crate::error::{Error, Result};
use std::path::Path;
use std::process::Command;

/// What one e2fsck run said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct E2fsckReport {
    /// The exit status: 0 clean, 1 errors corrected, 4 errors left uncorrected, 8 operational error.
    pub status: i32,
    /// Everything e2fsck printed (stdout then stderr).
    pub output: String,
}

impl E2fsckReport {
    /// True when e2fsck found nothing to fix.
    pub fn is_clean(&self) -> bool {
        self.status == 0
    }

    /// The problem lines: e2fsck's output minus the pass banners and the summary.
    pub fn problems(&self) -> Vec<&str> {
        self.output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .filter(|l| !is_banner(l))
            .collect()
    }
}

fn is_banner(line: &str) -> bool {
    const BANNERS: &[&str] = &[
        "Pass 1",
        "Pass 2",
        "Pass 3",
        "Pass 4",
        "Pass 5",
        "e2fsck ",
        "Warning: skipping journal recovery",
    ];
    BANNERS.iter().any(|b| line.starts_with(b))
        || line.contains(" files, ") && line.contains(" blocks")
        || line.starts_with("***")
}

/// Whether e2fsck is installed (tests that need it skip with a message when it is not).
pub fn available() -> bool {
    Command::new("e2fsck").arg("-V").output().is_ok()
}

/// Run `e2fsck -fn` (forced, read-only, answer no) on `image`.
pub fn check(image: &Path) -> Result<E2fsckReport> {
    run(image, &["-fn"])
}

/// Run `e2fsck -fy -E journal_only` on `image` (modifies it): replay the journal and stop, as the
/// reference for our recovery.
pub fn replay_journal(image: &Path) -> Result<E2fsckReport> {
    run(image, &["-fy", "-E", "journal_only"])
}

fn run(image: &Path, args: &[&str]) -> Result<E2fsckReport> {
    let out = Command::new("e2fsck")
        .args(args)
        .arg(image)
        .env("E2FSCK_CONFIG", "/dev/null")
        .env("TZ", "UTC")
        .output()
        .map_err(|e| Error::host(format!("cannot run e2fsck: {e}")))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    let status = out.status.code().unwrap_or(8);
    Ok(E2fsckReport { status, output })
}
