//! The harness: run one [`Scenario`](crate::scenario::Scenario) to a [`Verdict`], minimize a
//! failing scenario, and run a campaign. It parses no command-line flags (that is `cli`'s job).
//!
//! # One execution ([`execute`])
//!
//! ```text
//! template (mkfs + poison + setup files, cached)      harness/template.rs
//!   → mount, fault plan, workload threads under sched  harness/workload.rs (crate::ops)
//!   → crash states: replay_log(k) + crash_image(fates) harness/states.rs
//!       → recover → recover again (idempotent?) → mount (orphan cleanup) → unmount
//!       → recover again (nothing to do?) → fsck → files against the model
//!       (the image half is cached per execution by crash-image content)
//!   → flag scan of every write                         oracle/flags.rs
//!   → Verdict
//! ```
//!
//! The oracles (names are stable, see design.md) and where each lives:
//!
//! | oracle | where |
//! |---|---|
//! | `fsck` | [`consistency`]: our checker (`oracle::fsck`) on each recovered image, corruption class; also recovery or mount errors and non-idempotent recovery ([`states`]) |
//! | `leak` | [`consistency`]: leak-class problems, unless the crash point is inside a migration's window ([`states::leak_windows`]) |
//! | `e2fsck` | [`consistency`]: the external e2fsck on sampled executions (`--e2fsck-sample`) is not clean while ours is |
//! | `data-loss`, `durability`, `stale-data` | [`crate::oracle::crash`] against [`crate::oracle::model`]; live `read()`s against the model ([`workload`]) |
//! | `checksum` | a checksum error while recovering, mounting or reading a recovered image, or a checksum problem of the checker |
//! | `flag-on-disk` | [`crate::oracle::flags`] over the device log |
//! | `migrate-result`, `spurious-eagain` | [`workload`]: each migration ioctl's result against the inode before and after it |
//! | `panic` | the engine panicked (caught per phase) |
//! | `deadlock` | the scheduler found no runnable thread, or a lock-order inversion |
//! | `migrate-atomicity` | [`crate::oracle::atomicity`]: around an isolated migration every crash state keeps the file's start mapping (either format) |
//! | `kernel` | [`crate::oracle::kernel`] via `e4fuzz repro --kernel` (loop mounts: not in campaigns) |
//!
//! A finding of `fsck`, `leak` or `checksum` is reported only if e2fsck also complains about
//! the image (when e2fsck is installed); the others need no confirmation. A state whose
//! superblock records errors (`EXT4_ERROR_FS`, set by the engine's `ext4_error()` on a metadata
//! I/O error) gets no consistency check: ext4 then promises only that e2fsck runs at the next
//! boot.
//!
//! Everything is deterministic: the same scenario and options give the same verdict and trace.

pub mod campaign;
pub mod consistency;
pub mod exec;
pub mod minimize;
pub mod pattern;
pub mod states;
pub mod template;
pub mod workload;

pub use campaign::{run_campaign, CampaignOpts, CampaignReport, Progress};
pub use exec::{execute, execute_with};
pub use minimize::minimize;

use std::fmt;

/// Every oracle name (design.md's table), in table order.
pub const ORACLES: &[&str] = &[
    "fsck",
    "e2fsck",
    "kernel",
    "data-loss",
    "durability",
    "stale-data",
    "migrate-atomicity",
    "migrate-result",
    "spurious-eagain",
    "flag-on-disk",
    "leak",
    "checksum",
    "deadlock",
    "panic",
];

/// One thing an oracle found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The oracle (one of [`ORACLES`]).
    pub oracle: &'static str,
    /// The op concerned, as (thread, index in the thread): the op that failed the check, or
    /// for a crash state the last op that started before the crash point.
    pub op_index: Option<(usize, usize)>,
    /// The device log index of the crash state (`None` for findings of the live run).
    pub crash_point: Option<u64>,
    /// One line.
    pub cause: String,
}

impl Finding {
    /// The deduplication key: the oracle and the cause with every number (decimal, or a word
    /// starting with a digit such as `0x1f2e`) replaced by `#`, so one bug found at different
    /// blocks, inodes or checksums counts once.
    pub fn key(&self) -> String {
        let mut key = String::from(self.oracle);
        key.push(':');
        let mut word = String::new();
        for c in self.cause.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_alphanumeric() {
                word.push(c);
                continue;
            }
            key.push_str(&normalize_word(&word));
            word.clear();
            key.push(c);
        }
        key.pop();
        key
    }
}

/// `#` for a word that starts with a digit; else the word with each run of digits as `#`.
fn normalize_word(word: &str) -> String {
    if word.starts_with(|c: char| c.is_ascii_digit()) {
        return "#".into();
    }
    let mut out = String::new();
    for c in word.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.oracle)?;
        if let Some((t, i)) = self.op_index {
            write!(f, " [T{t}.{i}]")?;
        }
        if let Some(k) = self.crash_point {
            write!(f, " [crash at log {k}]")?;
        }
        write!(f, ": {}", self.cause)
    }
}

/// What one execution found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The findings, deduplicated by [`Finding::key`], in the order found.
    pub findings: Vec<Finding>,
    /// Crash states checked.
    pub crash_states: u64,
    /// Device writes issued by the workload.
    pub device_writes: u64,
    /// A readable account: ops with results and log ranges, crash states, findings (empty
    /// unless [`ExecOpts::trace`]).
    pub trace: String,
    /// Why the scenario could not run at all (unknown profile, bad geometry, setup failure).
    pub rejected: Option<String>,
}

impl Verdict {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Add a finding unless one with the same key is there.
    pub fn push(&mut self, f: Finding) {
        if !self.findings.iter().any(|g| g.key() == f.key()) {
            self.findings.push(f);
        }
    }
}

/// Options of one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOpts {
    /// Build [`Verdict::trace`].
    pub trace: bool,
    /// The most crash states checked from a run that does not crash mid-workload (the end of
    /// the log is always one of them).
    pub max_crash_states: usize,
    /// Which crash states the consistency checker runs on.
    pub fsck: FsckScope,
    /// Also run the external e2fsck on the last crash state (`--e2fsck-sample`): if it is not
    /// clean while our checker is, that is an `e2fsck` finding.
    pub e2fsck_sample: bool,
    /// Confirm `fsck`/`leak`/`checksum` findings with e2fsck (when installed).
    pub confirm: bool,
    /// Keep the images of the first crash state with a finding, else the last one (for
    /// `repro --export`).
    pub keep_images: bool,
}

/// Which crash states get the (possibly expensive) consistency check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsckScope {
    /// Every state.
    Every,
    /// Only the last state of each execution.
    Last,
    /// None.
    Off,
}

impl Default for ExecOpts {
    fn default() -> ExecOpts {
        ExecOpts {
            trace: true,
            max_crash_states: 16,
            fsck: consistency::DEFAULT_SCOPE,
            e2fsck_sample: false,
            confirm: true,
            keep_images: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cause: &str) -> String {
        Finding {
            oracle: "checksum",
            op_index: None,
            crash_point: None,
            cause: cause.into(),
        }
        .key()
    }

    #[test]
    fn keys_forget_numbers_hex_values_and_file_indices() {
        assert_eq!(
            key("PR_5_INODE_BITMAP_CSUM_INVALID: inode bitmap checksum 0xdd4c does not match (3 problems)"),
            "checksum:PR_#_INODE_BITMAP_CSUM_INVALID: inode bitmap checksum # does not match (# problems)"
        );
        assert_eq!(key("f2 block 17: x"), key("f7 block 4096: x"));
        assert_ne!(key("f2 block 17: x"), key("f2 block 17: y"));
        assert_eq!(key("a1b22c"), "checksum:a#b#c");
    }
}
