//! The replay differential: one block of a journal that needs recovery is mutated, then the log
//! is replayed by our recovery, by `e2fsck -y -E journal_only` and, where loop mounts work, by
//! the kernel's mount, and the three results are compared (`cargo run --release --example
//! journal_mutants`; `tests/integration/replay_mutants.rs`).
//!
//! The bases ([`bases`]) hold several committed, unreplayed transactions: one written by the
//! engine (indirect and extent files, a migration, a truncate, a punch), three by `debugfs`
//! (`jo`/`jw`/`jc`: revokes, an escaped block; without checksums, with csum v3 on 1 KiB and on
//! 4 KiB blocks). A [`Mutation`] flips a bit anywhere or in the first 64 bytes (headers, tags),
//! sets a header word to a neighbouring or extreme value, or zeroes the block; the block is the
//! journal superblock one time in eight, else one of the first 40 of the log.
//!
//! # What it verifies
//!
//! * **Against e2fsck 1.47.0** ([`against_e2fsck`], our [`Replayer::E2fsck`]): the two replayed
//!   images are byte-identical outside the superblock fields e2fsck sets from its clock
//!   (`s_wtime`, `s_kbytes_written`, `s_checksum`). Or both refuse the journal: ours with a
//!   typed error, e2fsck by declaring the journal superblock corrupt or the journal invalid.
//!   Or a tag names a block past the device: ours replays the rest, reports
//!   `BlockOutOfRange` and marks the filesystem with errors; e2fsck writes past the image's
//!   end (the file grows) or, past the host's largest file, ignores the failed write (and
//!   then 1.47.0 also loses another replayed block, silently: see the README).
//! * **Against the kernel** ([`against_kernel`], our [`Replayer::Kernel`], then a mount and a
//!   clean unmount as [`kernel::recover_ours`] makes them): when the kernel mounts,
//!   [`kernel::check_replay`] finds no difference (files, maps, bytes, every block but the
//!   documented mount stamps), and our mount ([`Fs::mount`], the model of
//!   `ext4_fill_super()`) succeeds too. When it refuses to mount, so does ours: on a
//!   checksum or recovery error or a failed commit (`jbd2_journal_load()`: `-EFSBADCRC`,
//!   `-EIO`, `-EFSCORRUPTED` for `j_failed_commit`, where e2fsck replays what it can and
//!   marks the filesystem with errors), or on a journal that cannot take the features the
//!   filesystem needs.
//!
//! Two differences are kept on purpose ([`Outcome::Known`]): a journal superblock whose
//! `s_first` is 0 or past the journal, or whose `s_maxlen` is below 1024 blocks, is refused by
//! ours as by the kernel, while e2fsck 1.47.0 checks neither and replays.
//!
//! # What it does not verify
//!
//! With several mutated blocks (the example's `MUTATIONS`), one known kind of case is left: a
//! tag redirected onto the primary superblock or group descriptors of a 1 KiB-block
//! filesystem replays garbage over them; ours then refuses the image or keeps what was
//! replayed, where e2fsck re-opens the filesystem with its own copies and repairs it.
//!
//! One block per case, and most flips of a data block only change what is replayed (both
//! sides copy the same bytes home). Images whose replay `e2fsck -fn` rejects are never mounted
//! (the kernel oracle's gate), so a mutation that corrupts metadata through the log is judged
//! against e2fsck only. Mutations of the journal inode's own map are refused by ours and by
//! e2fsck alike, and not mounted.

use super::kernel;
use crate::error::{CorruptKind, Error, Result};
use crate::fs::{Fs, MountOpts};
use crate::harness::exec::execute_images;
use crate::harness::ExecOpts;
use crate::jbd2::{self, JournalLoc, RecoveryInfo, Replayer};
use crate::scenario::Scenario;
use rand::Rng;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Superblock fields e2fsck sets from its clock or I/O counters: (offset, length).
const CLOCK_FIELDS: &[(usize, usize)] = &[(0x30, 4), (0x178, 8), (0x3FC, 4)];

/// The engine's base: a scenario that ends with several committed transactions in the log.
const ENGINE_BASE: &str = "e4fuzz-repro v1
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
  fsync f2
  punch f1 off=2000 len=9000
  sync
schedule -
crash at_write=none seed=7 keep=1000 tear=0
";

/// How one block of the log is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Bit `bit` of byte `off` flipped.
    Flip {
        /// Byte offset in the block.
        off: usize,
        /// Bit number.
        bit: u8,
    },
    /// The big-endian word at `off` set from `old` to `new`.
    Word {
        /// Byte offset in the block (a multiple of 4, below 64).
        off: usize,
        /// The word before.
        old: u32,
        /// The word after.
        new: u32,
    },
    /// The whole block zeroed.
    Zero,
}

/// One mutation of one journal block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    /// The journal block (0 is the journal superblock).
    pub jblock: u64,
    /// What was done to it.
    pub mutation: Mutation,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "journal block {}: ", self.jblock)?;
        match self.mutation {
            Mutation::Flip { off, bit } => write!(f, "bit {bit} of byte {off:#x} flipped"),
            Mutation::Word { off, old, new } => write!(f, "word at {off:#x} {old:#x} -> {new:#x}"),
            Mutation::Zero => write!(f, "zeroed"),
        }
    }
}

/// What a comparison found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sides agree; the string says how ("same image", "both refuse", ...).
    Agree(&'static str),
    /// The kernel side could not be judged (the e2fsck gate, a tool failure).
    Skipped(String),
    /// A difference the model keeps on purpose (one line saying why).
    Known(&'static str),
    /// A difference, in one line.
    Differ(String),
}

/// An [`Outcome::Known`] difference: `s_maxlen` below `JBD2_MIN_JOURNAL_BLOCKS`.
const S_MAXLEN: &str = "ours refuses a journal superblock whose s_maxlen is below 1024 blocks, \
     as the kernel's journal_get_superblock() does (\"journal file too short\"); e2fsck 1.47.0 \
     does not check it";

/// An [`Outcome::Known`] difference: `s_first` out of range.
const S_FIRST: &str = "ours refuses a journal superblock whose s_first is 0 or past the \
     journal, as the kernel's journal_get_superblock() does; e2fsck 1.47.0 does not check it";

/// Build the bases in `dir` (needs mke2fs and debugfs): the engine's, then debugfs's without
/// checksums, with csum v3, and with csum v3 on 4 KiB blocks.
pub fn bases(dir: &Path) -> Result<Vec<PathBuf>> {
    let s = Scenario::parse_repro(ENGINE_BASE)?;
    let opts = ExecOpts {
        keep_images: true,
        ..ExecOpts::default()
    };
    let (v, img) = execute_images(&s, &opts);
    assert!(v.is_clean(), "the engine base is clean: {:?}", v.findings);
    let engine = dir.join("base-engine.img");
    img.expect("images kept").crash.save(&engine)?;
    let mut out = vec![engine];
    for (name, jo, bs) in [
        ("plain", "jo", 1024),
        ("csum", "jo -c", 1024),
        ("csum4k", "jo -c", 4096),
    ] {
        out.push(debugfs_base(dir, name, jo, bs)?);
    }
    Ok(out)
}

/// A host I/O error as ours.
fn host(e: std::io::Error) -> Error {
    Error::host(format!("replay differential: {e}"))
}

/// Run `cmd args` in `dir`; its combined output, or an error naming it.
fn tool(dir: &Path, cmd: &str, args: &[&str]) -> Result<(i32, String)> {
    let out = Command::new(cmd)
        .current_dir(dir)
        .args(args)
        .env("E2FSCK_CONFIG", "/dev/null")
        .output()
        .map_err(|e| Error::Invalid(format!("running {cmd}: {e}")))?;
    Ok((out.status.code().unwrap_or(-1), kernel::host::text(&out)))
}

/// Deterministic pseudo-random bytes (xorshift64, one byte per step).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// A debugfs script of several transactions (debugfs commits one per `jw`), each opened
/// with `jo`: T1 3000-3002, T2 3001, T3 revokes 3002, T4 3003-3004 (3003 starts with the
/// journal magic: escaped), T5 revokes 3000, T6 3002 again. So 3000 is suppressed and 3002
/// is replayed from T6 only: 5 replays, 2 revoke hits. Its data files: [`mixed_log_files`].
pub fn mixed_log_script(jo: &str) -> String {
    format!(
        "{jo}\njw -b 3000,3001,3002 three\njc\n\
         {jo}\njw -b 3001 one_a\njw -r 3002\njc\n\
         {jo}\njw -b 3003,3004 magic\njw -r 3000\njc\n\
         {jo}\njw -b 3002 one_b\njc\n"
    )
}

/// The files [`mixed_log_script`] reads, for blocks of `bs` bytes: noise, and two blocks
/// whose first starts with the journal magic.
pub fn mixed_log_files(bs: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut magic = noise(4, 2 * bs);
    magic[..4].copy_from_slice(&crate::format::jbd2::JBD2_MAGIC_NUMBER.to_be_bytes());
    vec![
        ("three", noise(1, 3 * bs)),
        ("one_a", noise(2, bs)),
        ("one_b", noise(3, bs)),
        ("magic", magic),
    ]
}

/// A 16 MiB `mke2fs -t ext4` image with [`mixed_log_script`]'s transactions in its log.
fn debugfs_base(dir: &Path, name: &str, jo: &str, bs: usize) -> Result<PathBuf> {
    let img = dir.join(format!("base-{name}.img"));
    let path = img.to_string_lossy().into_owned();
    let (st, text) = tool(
        dir,
        "mke2fs",
        &["-qF", "-t", "ext4", "-b", &bs.to_string(), &path, "16M"],
    )?;
    if st != 0 {
        return Err(Error::Invalid(format!("mke2fs: {text}")));
    }
    for (file, data) in mixed_log_files(bs) {
        std::fs::write(dir.join(file), data).map_err(host)?;
    }
    std::fs::write(dir.join("cmds"), mixed_log_script(jo)).map_err(host)?;
    let (st, text) = tool(dir, "debugfs", &["-w", "-f", "cmds", &path])?;
    if st != 0 {
        return Err(Error::Invalid(format!("debugfs: {text}")));
    }
    Ok(img)
}

/// Mutate one journal block of `image` (an image file's bytes), chosen with `rng`.
pub fn mutate(image: &mut [u8], rng: &mut impl Rng) -> Result<Case> {
    let mut dev = image_disk(image)?;
    let sb = jbd2::read_fs_superblock(&mut dev)?;
    let loc = JournalLoc::find(&mut dev, &sb)?;
    let bs = sb.block_size() as usize;
    let jsb = loc.bmap(0)?.0 as usize * bs;
    let s_start = u64::from(crate::bytes::read_u32be(image, jsb + 0x1C));
    let jblock = if rng.random_ratio(1, 8) {
        0
    } else {
        (s_start + rng.random_range(0..40)).min(u64::from(loc.inode_blocks) - 1)
    };
    let at = loc.bmap(jblock)?.0 as usize * bs;
    let block = &mut image[at..at + bs];
    let mutation = match rng.random_range(0..4) {
        0 | 1 => {
            let off = if rng.random() {
                rng.random_range(0..bs)
            } else {
                rng.random_range(0..64)
            };
            let bit = rng.random_range(0..8u8);
            block[off] ^= 1 << bit;
            Mutation::Flip { off, bit }
        }
        2 => {
            let off = rng.random_range(0..16usize) * 4;
            let old = crate::bytes::read_u32be(block, off);
            let new = match rng.random_range(0..6) {
                0 => 0,
                1 => old.wrapping_add(1),
                2 => old.wrapping_sub(1),
                3 => u32::MAX,
                4 => rng.random_range(1..6),
                _ => rng.random(),
            };
            block[off..off + 4].copy_from_slice(&new.to_be_bytes());
            Mutation::Word { off, old, new }
        }
        _ => {
            block.fill(0);
            Mutation::Zero
        }
    };
    Ok(Case { jblock, mutation })
}

/// Our replay of `image` as `replayer` does it, in memory: the image after it, and what it
/// said.
fn ours(image: &[u8], replayer: Replayer) -> Result<(crate::dev::Disk, RecoveryInfo)> {
    let mut dev = image_disk(image)?;
    let info = jbd2::recover_as(&mut dev, replayer)?;
    Ok((dev, info))
}

/// `image`'s bytes with the [`CLOCK_FIELDS`] zeroed.
fn masked(mut image: Vec<u8>) -> Vec<u8> {
    for &(off, len) in CLOCK_FIELDS {
        image[1024 + off..1024 + off + len].fill(0);
    }
    image
}

/// Zero what e2fsck's forced check may rewrite: the primary superblock (free counts, state,
/// check times, error fields) and the primary group descriptors (counts, flags,
/// `bg_itable_unused`, checksums).
fn forced_check_mask(image: &mut [u8]) -> Result<()> {
    let sb = crate::format::superblock::Superblock::parse(&image[1024..2048])?;
    let (bs, ds) = (sb.block_size() as usize, sb.desc_size());
    let start = usize::try_from(sb.gdt_block(0))
        .unwrap_or(usize::MAX)
        .saturating_mul(bs);
    let end = start.saturating_add(sb.groups_count() as usize * ds);
    if let Some(descs) = image.get_mut(start..end) {
        descs.fill(0);
    }
    image[1024..2048].fill(0);
    Ok(())
}

/// The first differing blocks of two images of block size `bs`.
fn differing_blocks(a: &[u8], b: &[u8], bs: usize) -> String {
    let blocks: Vec<String> = (0..a.len() / bs)
        .filter(|&k| a[k * bs..(k + 1) * bs] != b[k * bs..(k + 1) * bs])
        .take(6)
        .map(|k| k.to_string())
        .collect();
    blocks.join(", ")
}

/// Our [`Replayer::E2fsck`] replay of `image` against `e2fsck -y -E journal_only` on a copy
/// in `dir` (see the module doc).
pub fn against_e2fsck(image: &[u8], dir: &Path) -> Result<Outcome> {
    let copy = dir.join("e2fsck-replay.img");
    std::fs::write(&copy, image).map_err(host)?;
    let path = copy.to_string_lossy().into_owned();
    let (_, said) = tool(dir, "e2fsck", &["-y", "-E", "journal_only", &path])?;
    // A file e2fsck grew (a write past the end) is not read: it may be terabytes, sparse.
    let theirs_len = std::fs::metadata(&copy).map_err(host)?.len();
    let theirs = if theirs_len == image.len() as u64 {
        Some(std::fs::read(&copy).map_err(host)?)
    } else {
        None
    };
    let _ = std::fs::remove_file(&copy);
    // e2fsck declares the journal corrupt or invalid (and fixes or clears it), or gives up
    // on a version or feature it does not know ("Abort? yes").
    let refused = |s: &str| {
        let s = s.to_lowercase();
        s.contains("journal superblock is corrupt")
            || s.contains("has an invalid journal")
            || s.contains("journal corrupted in")
            || s.contains("abort? yes")
    };
    Ok(match (ours(image, Replayer::E2fsck), theirs) {
        (Err(Error::Corrupt(CorruptKind::JournalSuperblock("invalid s_first"))), _) => {
            Outcome::Known(S_FIRST)
        }
        (Err(Error::Corrupt(CorruptKind::JournalSuperblock("journal too short"))), _) => {
            Outcome::Known(S_MAXLEN)
        }
        (Err(_), _) if refused(&said) => Outcome::Agree("both refuse the journal"),
        (Err(e), _) => Outcome::Differ(format!("ours refused ({e}), e2fsck did not: {said}")),
        // A tag naming a block past the device: ours replays the rest and reports it;
        // e2fsck writes past the image's end, growing the file, or (past the host's largest
        // file) asks "Error writing block ... Ignore error? yes" and goes on.
        (Ok((_, info)), _)
            if matches!(
                info.error,
                Some(Error::Corrupt(CorruptKind::BlockOutOfRange(_)))
            ) =>
        {
            Outcome::Agree("a replay target past the device")
        }
        (Ok((_, info)), None) => Outcome::Differ(format!(
            "e2fsck wrote past the image's end ({theirs_len} bytes), ours said {:?}",
            info.error
        )),
        (Ok(_), Some(_)) if refused(&said) => {
            Outcome::Differ(format!("e2fsck refused the journal, ours did not: {said}"))
        }
        (Ok((dev, _)), Some(theirs)) => {
            let bs = dev.block_size() as usize;
            let (mut a, mut b) = (masked(dev.to_bytes()), masked(theirs));
            // A repaired journal superblock makes e2fsck run its passes, which rewrite free
            // counts, state and check times in the superblock: compare the rest.
            let forced = said.contains("Pass 1:");
            if forced {
                forced_check_mask(&mut a)?;
                forced_check_mask(&mut b)?;
            }
            match (a == b, forced) {
                (true, false) => Outcome::Agree("same image"),
                (true, true) => Outcome::Agree("same image outside e2fsck's forced check"),
                (false, _) => {
                    Outcome::Differ(format!("blocks differ: {}", differing_blocks(&a, &b, bs)))
                }
            }
        }
    })
}

/// Our [`Replayer::Kernel`] replay of `image` against the kernel's mount (see the module
/// doc). `Skipped` where loop mounts do not work or the gate refuses the image.
pub fn against_kernel(image: &[u8]) -> Result<Outcome> {
    let crash = image_disk(image)?;
    let ours_mount = Fs::mount(crash.clone(), MountOpts { read_only: true }).map(drop);
    let ours_image = kernel::recover_ours(&crash, crate::profile::BugSet::NONE);
    Ok(
        match (kernel::check_replay(&crash, &ours_image), ours_mount) {
            (Ok(_), Err(e)) => Outcome::Differ(format!("the kernel mounts, our mount fails: {e}")),
            (Ok(rep), Ok(())) if rep.problems.is_empty() => Outcome::Agree("same replay"),
            (Ok(rep), Ok(())) => Outcome::Differ(
                rep.problems
                    .iter()
                    .take(3)
                    .map(|p| p.cause.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (Err(why), Err(_)) if why.starts_with(kernel::host::MOUNT_REFUSED) => {
                Outcome::Agree("both refuse to mount")
            }
            (Err(why), Ok(())) if why.starts_with(kernel::host::MOUNT_REFUSED) => {
                Outcome::Differ(format!("our mount succeeds; {why}"))
            }
            (Err(why), _) => Outcome::Skipped(why),
        },
    )
}

/// An image file's bytes as a disk of the filesystem's block size (`s_log_block_size`).
fn image_disk(image: &[u8]) -> Result<crate::dev::Disk> {
    let sb = image
        .get(1024..2048)
        .ok_or(CorruptKind::Truncated { what: "superblock" })?;
    let bs = crate::format::superblock::Superblock::parse(sb)?.block_size();
    crate::dev::Disk::from_bytes(image, bs)
}
