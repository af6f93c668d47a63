//! The `e4fuzz` command line. `main.rs` only calls [`main`]; every command is a function here
//! that returns an exit code, so tests reach all of it.
//!
//! Exit codes everywhere: 0 ok / nothing found; 1 a finding or violation; 2 usage, I/O or
//! corrupt input error (one clear line on stderr); 4 fsck found problems.

use crate::error::{Error, Result};
use crate::fs::{mkfs, Fs, MountOpts};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

mod fuzz;

/// Exit code: success, nothing found.
pub const EXIT_OK: i32 = 0;
/// Exit code: a finding or violation.
pub const EXIT_FINDING: i32 = 1;
/// Exit code: usage, I/O or corrupt-input error.
pub const EXIT_ERROR: i32 = 2;
/// Exit code: fsck found problems.
pub const EXIT_FSCK: i32 = 4;

/// e4fuzz: a fuzzing and fault-injection harness for ext4's block-mapping engine.
#[derive(Parser, Debug)]
#[command(name = "e4fuzz", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write FILE's bytes into PATH of the image (creating it if absent).
    Put {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
        /// Host file to read.
        #[arg(long)]
        from: PathBuf,
        /// Byte offset to write at (writing past the end leaves a hole).
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Print a file's bytes (to stdout, or to -o FILE).
    Get {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
        /// Output file.
        #[arg(short = 'o')]
        out: Option<PathBuf>,
    },
    /// Free the blocks of a byte range of a file (fallocate PUNCH_HOLE).
    Punch {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
        /// Start offset in bytes.
        #[arg(long)]
        offset: u64,
        /// Length in bytes.
        #[arg(long)]
        len: u64,
    },
    /// Set a file's size.
    Truncate {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
        /// The new size in bytes.
        #[arg(long)]
        size: u64,
    },
    /// Remove a file or an empty directory.
    Rm {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
    },
    /// Create a directory.
    Mkdir {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
    },
    /// List the profiles and seeded bugs.
    Profiles,
    /// Make a fresh filesystem image (e4fuzz's own mke2fs), written as a sparse file.
    Mkfs {
        /// The image file (replaced if it exists).
        image: PathBuf,
        /// Size in bytes, with an optional K, M, G or T suffix (powers of 1024).
        #[arg(long, default_value = "64M")]
        size: String,
        /// Block size: 1024, 2048 or 4096.
        #[arg(long, default_value = "1024")]
        block_size: String,
        /// Leave out the extent feature (indirect block maps).
        #[arg(long)]
        no_extent: bool,
        /// Leave out metadata_csum (no checksums at all).
        #[arg(long)]
        no_csum: bool,
    },
    /// Convert a file's block map in place, as `chattr +e` (EXT4_IOC_MIGRATE) or `chattr -e`
    /// do; the image is left clean.
    Migrate {
        /// The image file.
        image: PathBuf,
        /// Absolute path inside the image.
        path: String,
        /// The target format: `extents` (indirect → extent tree) or `indirect`.
        #[arg(long, value_enum, default_value = "extents")]
        to: MigrateTo,
        /// The engine profile (see `e4fuzz profiles`).
        #[arg(long, default_value = "fixed")]
        profile: String,
        /// Switch on a seeded bug (repeatable).
        #[arg(long = "bug")]
        bugs: Vec<String>,
    },
    /// Replay the journal in place, as `e2fsck -E journal_only` does.
    Recover {
        /// The image file.
        image: PathBuf,
        /// Replay the log as the kernel's copy of recovery.c does (since 6.4 it also accepts
        /// an incomplete commit block); everything around the replay stays e2fsck's.
        #[arg(long)]
        kernel: bool,
    },
    /// Run a fuzzing campaign (the main job).
    Run(fuzz::RunArgs),
    /// Replay .repro files or raw fuzzer artifacts and report the verdict.
    Repro(fuzz::ReproArgs),
    /// Shrink a failing scenario while the same oracle fires.
    Minimize(fuzz::MinimizeArgs),
    /// List a directory (default: the root).
    Ls {
        /// The image file.
        image: PathBuf,
        /// Directory path inside the image.
        dir: Option<String>,
    },
    /// Check an image like `e2fsck -fn`, with stable problem codes (exit 0 clean, 4 problems).
    Fsck {
        /// The image file.
        image: PathBuf,
        /// Print one JSON object instead of one line per problem.
        #[arg(long)]
        json: bool,
    },
}

/// Parse the process arguments and run; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // One line on stderr, as for every other bad input.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "e4fuzz: {} (try 'e4fuzz --help')",
                first.trim_start_matches("error: ")
            );
            return EXIT_ERROR;
        }
        Err(e) => {
            let _ = e.print();
            return EXIT_OK;
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("e4fuzz: {e}");
            EXIT_ERROR
        }
    }
}

fn run(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Profiles => {
            print_profiles();
            Ok(EXIT_OK)
        }
        Command::Put {
            image,
            path,
            from,
            offset,
        } => {
            let data = std::fs::read(&from)
                .map_err(|e| Error::host(format!("{}: {e}", from.display())))?;
            with_fs(&image, |fs| {
                let ino = match fs.resolve(&path) {
                    Ok(ino) => ino,
                    Err(Error::NotFound(_)) => fs.create(&path, 0o644)?,
                    Err(e) => return Err(e),
                };
                fs.write_file(ino, offset, &data)
            })
        }
        Command::Get { image, path, out } => {
            let mut fs = Fs::open(&image, MountOpts { read_only: true })?;
            let ino = fs.resolve(&path)?;
            let mut sink = match out {
                Some(p) => match std::fs::File::create(&p) {
                    Ok(f) => Sink::File(f, p),
                    Err(e) => return Err(Error::host(format!("{}: {e}", p.display()))),
                },
                None => Sink::Stdout(Some(std::io::stdout().lock())),
            };
            dump_file(&mut fs, ino, &mut sink)?;
            Ok(EXIT_OK)
        }
        Command::Punch {
            image,
            path,
            offset,
            len,
        } => with_fs(&image, |fs| {
            let ino = fs.resolve(&path)?;
            fs.punch_hole(ino, offset, len)
        }),
        Command::Truncate { image, path, size } => with_fs(&image, |fs| {
            let ino = fs.resolve(&path)?;
            fs.truncate_file(ino, size)
        }),
        Command::Rm { image, path } => with_fs(&image, |fs| {
            let ino = fs.resolve(&path)?;
            if fs.inode(ino).raw.i_mode & crate::format::inode::S_IFMT
                == crate::format::inode::S_IFDIR
            {
                fs.rmdir(&path)
            } else {
                fs.unlink(&path)
            }
        }),
        Command::Mkfs {
            image,
            size,
            block_size,
            no_extent,
            no_csum,
        } => {
            let opts = mkfs::MkfsOpts {
                size_bytes: mkfs::parse_size(&size)?,
                block_size: mkfs::parse_block_size(&block_size)?,
                extents: !no_extent,
                metadata_csum: !no_csum,
                ..mkfs::MkfsOpts::default()
            };
            let geo = mkfs::geometry(&opts)?;
            mkfs::mkfs(&opts)?.save(&image)?;
            println!(
                "{}: {} blocks of {} bytes, {} groups, {} inodes, journal {} blocks",
                image.display(),
                geo.blocks_count,
                geo.block_size,
                geo.groups,
                geo.inodes_count,
                geo.journal_blocks
            );
            Ok(EXIT_OK)
        }
        Command::Mkdir { image, path } => with_fs(&image, |fs| fs.mkdir(&path).map(|_| ())),
        Command::Recover { image, kernel } => recover_image(&image, kernel),
        Command::Run(a) => fuzz::run(a),
        Command::Repro(a) => fuzz::repro(a),
        Command::Minimize(a) => fuzz::minimize_cmd(a),
        Command::Migrate {
            image,
            path,
            to,
            profile,
            bugs,
        } => migrate_image(&image, &path, to, &profile, &bugs),
        Command::Ls { image, dir } => {
            let mut fs = Fs::open(&image, MountOpts { read_only: true })?;
            let ino = fs.resolve(dir.as_deref().unwrap_or("/"))?;
            let mut out = std::io::stdout().lock();
            for e in fs.readdir(ino)? {
                let info = fs.iget(Ino(e.inode))?.raw.clone();
                writeln!(
                    out,
                    "{:>8} {:>7o} {:>3} {:>12} {}",
                    e.inode,
                    info.i_mode,
                    info.i_links_count,
                    info.i_size,
                    String::from_utf8_lossy(&e.name)
                )
                .map_err(Error::host)?;
            }
            Ok(EXIT_OK)
        }
        Command::Fsck { image, json } => fsck(&image, json),
    }
}

use crate::units::Ino;

/// `e4fuzz recover IMAGE`: replay the journal, write the changed blocks back in place, print
/// one line. Exit 2 (after the write-back) if the log was inconsistent: as e2fsck does, the
/// journal was then reset and the filesystem marked not clean.
fn recover_image(image: &Path, kernel: bool) -> Result<i32> {
    use crate::jbd2::Replayer;
    let mut dev = Fs::load_image(image)?;
    let replayer = if kernel {
        Replayer::Kernel
    } else {
        Replayer::E2fsck
    };
    let info = crate::jbd2::recover_as(&mut dev, replayer)?;
    write_back(&dev, image)?;
    println!("{}: {}", image.display(), recovery_summary(&info));
    if let Some(e) = &info.error {
        eprintln!(
            "e4fuzz: {}: journal replay failed: {e} (journal reset, filesystem marked not clean)",
            image.display()
        );
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_OK)
}

/// The one-line report of `e4fuzz recover`.
pub fn recovery_summary(info: &crate::jbd2::RecoveryInfo) -> String {
    if !info.replayed {
        return "journal clean, nothing to replay".into();
    }
    if info.end_transaction.0 == 0 && info.error.is_none() {
        return format!(
            "journal empty, needs_recovery cleared (next transaction {})",
            info.sequence
        );
    }
    let mut line = format!(
        "journal recovered: {} transactions ({}..{}), {} blocks replayed, {} revoke records, \
         {} revoked blocks skipped",
        info.transactions(),
        info.start_transaction,
        info.end_transaction,
        info.nr_replays,
        info.nr_revokes,
        info.nr_revoke_hits
    );
    if let Some(tid) = info.failed_commit {
        line.push_str(&format!(
            "; transaction {tid} was corrupt, replay stopped there"
        ));
    }
    line
}

/// Write every block `dev` wrote since it was loaded back into the image file, in place.
fn write_back(dev: &crate::dev::Disk, image: &Path) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let host = |e: std::io::Error| Error::host(format!("{}: {e}", image.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(host)?;
    let bs = u64::from(dev.block_size());
    for (blk, data) in dev.written_blocks() {
        file.seek(SeekFrom::Start(blk.0 * bs)).map_err(host)?;
        file.write_all(&data).map_err(host)?;
    }
    file.sync_all().map_err(host)
}

/// `e4fuzz fsck IMAGE [--json]`: one line per problem and a summary (or one JSON object);
/// exit 0 when clean (information problems allowed), 4 when problems were found.
fn fsck(image: &Path, json: bool) -> Result<i32> {
    let mut dev = Fs::load_image(image)?;
    let report = crate::oracle::fsck::check(&mut dev)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", report.to_json()).map_err(Error::host)?;
    } else {
        for p in &report.problems {
            writeln!(out, "{p}").map_err(Error::host)?;
        }
        writeln!(out, "{}: {}", image.display(), report.summary()).map_err(Error::host)?;
    }
    Ok(if report.is_clean() {
        EXIT_OK
    } else {
        EXIT_FSCK
    })
}

/// The target format of `e4fuzz migrate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateTo {
    /// Indirect map → extent tree (`chattr +e`, EXT4_IOC_MIGRATE).
    Extents,
    /// Single-extent file → indirect map (`chattr -e`).
    Indirect,
}

/// The profile named `profile` with the `--bug` switches added.
fn engine_profile(profile: &str, bugs: &[String]) -> Result<crate::profile::Profile> {
    use crate::profile::{Bug, BugSet, Profile};
    let p = Profile::by_name(profile)
        .ok_or_else(|| Error::Invalid(format!("unknown profile {profile:?}")))?;
    let mut set = BugSet::NONE;
    for b in bugs {
        set = set.with(Bug::parse(b).ok_or_else(|| Error::Invalid(format!("unknown bug {b:?}")))?);
    }
    Ok(p.with_bugs(set))
}

/// `e4fuzz migrate`: mount, run the async migrate op alone on a one-thread scheduler, unmount
/// cleanly and save the image. Every failure exits 2 with the kernel's reason.
fn migrate_image(
    image: &Path,
    path: &str,
    to: MigrateTo,
    profile: &str,
    bugs: &[String],
) -> Result<i32> {
    use crate::ops::{ind_migrate::ioctl_ind_migrate, migrate::ioctl_migrate, run_single};
    let prof = engine_profile(profile, bugs)?;
    let mut fs = Fs::open(image, MountOpts::default())?;
    fs.bugs = prof.bugs;
    let ino = fs.resolve(path)?;
    let retries = prof.eagain_retries;
    let (fs, r) = run_single(fs, "migrate", |cx| async move {
        match to {
            MigrateTo::Extents => ioctl_migrate(&cx, ino, retries).await,
            MigrateTo::Indirect => ioctl_ind_migrate(&cx, ino).await,
        }
    });
    let now = match fs.inode(ino).is_extents() {
        true => "extent-mapped",
        false => "indirect-mapped",
    };
    let dev = fs.unmount()?;
    dev.save(image)?;
    match r {
        Ok(ret) => {
            println!("{path}: inode {ino}: returned {ret}, now {now}");
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!("e4fuzz: migrate {path}: {e}");
            Ok(EXIT_ERROR)
        }
    }
}

/// Mount `image`, run `f`, unmount cleanly and save the image in place.
fn with_fs(image: &Path, f: impl FnOnce(&mut Fs) -> Result<()>) -> Result<i32> {
    let mut fs = Fs::open(image, MountOpts::default())?;
    f(&mut fs)?;
    let dev = fs.unmount()?;
    dev.save(image)?;
    Ok(EXIT_OK)
}

fn print_profiles() {
    use crate::profile::{BUGS, PROFILES};
    println!("Profiles (default: fixed):");
    for p in PROFILES {
        let bugs = if p.bugs.is_empty() {
            "-".to_string()
        } else {
            p.bugs.to_string()
        };
        println!(
            "  {:<12} bugs {:<8} EAGAIN retries {}  {}",
            p.name, bugs, p.eagain_retries, p.what
        );
    }
    println!("\nSeeded bugs (--bug ID):");
    for b in BUGS {
        println!(
            "  {:<4} {}  [{}]  expected: {}",
            b.bug.id(),
            b.what,
            b.origin,
            b.oracles.join(", ")
        );
    }
}

/// Bytes `get` reads and writes at a time.
const GET_CHUNK: u64 = 1 << 20;

/// Where `get` writes: a host file (holes left sparse) or standard output (holes as zeros;
/// `None` once the reader has gone: a closed pipe ends the output quietly, as `cat`'s does).
enum Sink {
    File(std::fs::File, PathBuf),
    Stdout(Option<std::io::StdoutLock<'static>>),
}

impl Sink {
    fn data(&mut self, b: &[u8]) -> Result<()> {
        let r = match self {
            Sink::File(f, _) => f.write_all(b),
            Sink::Stdout(None) => Ok(()),
            Sink::Stdout(Some(o)) => o.write_all(b),
        };
        self.checked(r)
    }

    fn hole(&mut self, n: u64) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let r = match self {
            Sink::File(f, _) => i64::try_from(n)
                .map_err(std::io::Error::other)
                .and_then(|n| f.seek(SeekFrom::Current(n)).map(drop)),
            Sink::Stdout(None) => Ok(()),
            Sink::Stdout(Some(o)) => {
                std::io::copy(&mut std::io::Read::take(std::io::repeat(0), n), o).map(drop)
            }
        };
        self.checked(r)
    }

    fn finish(&mut self, size: u64) -> Result<()> {
        let r = match self {
            Sink::File(f, _) => f.set_len(size),
            Sink::Stdout(None) => Ok(()),
            Sink::Stdout(Some(o)) => o.flush(),
        };
        self.checked(r)
    }

    /// An I/O error of the sink, named after it.
    fn checked(&mut self, r: std::io::Result<()>) -> Result<()> {
        match (r, &*self) {
            (Ok(()), _) => Ok(()),
            (Err(e), Sink::Stdout(_)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                *self = Sink::Stdout(None);
                Ok(())
            }
            (Err(e), Sink::File(_, p)) => Err(Error::host(format!("{}: {e}", p.display()))),
            (Err(e), Sink::Stdout(_)) => Err(Error::host(format!("standard output: {e}"))),
        }
    }
}

/// `e4fuzz get`: file `ino` up to `i_size`, a mapped run at a time (at most [`GET_CHUNK`]
/// bytes), holes skipped by their mapping, so that a sparse file of any size streams in
/// constant memory (reading it whole aborted on a 1 TiB sparse file).
fn dump_file(fs: &mut Fs, ino: Ino, sink: &mut Sink) -> Result<()> {
    use crate::fs::map::MapFlags;
    use crate::units::Lblk;
    let size = fs.inode(ino).raw.i_size;
    let bs = u64::from(fs.block_size());
    let mut pos = 0u64;
    while pos < size {
        let lblk = Lblk(u32::try_from(pos / bs).map_err(|_| {
            Error::Corrupt(crate::error::CorruptKind::LogicalBlockOutOfRange {
                ino,
                lblk: Lblk(u32::MAX),
            })
        })?);
        let want = (size - pos).min(GET_CHUNK).div_ceil(bs) as u32;
        let m = fs.map_blocks(None, ino, lblk, want, MapFlags::LOOKUP)?;
        let end = (pos + u64::from(m.len) * bs).min(size);
        if m.is_mapped() {
            let data = fs.read_file(ino, pos, end - pos)?;
            sink.data(&data)?;
        } else {
            sink.hole(end - pos)?;
        }
        pos = end;
    }
    sink.finish(size)
}
