//! The `e4fuzz` command line. `main.rs` only calls [`main`]; every command is a function here
//! that returns an exit code, so tests reach all of it.
//!
//! Exit codes everywhere: 0 ok / nothing found; 1 a finding or violation; 2 usage, I/O or
//! corrupt input error (one clear line on stderr); 4 fsck found problems.

use crate::dev::Disk;
use crate::error::{Error, Result};
use crate::fs::{Fs, MountOpts};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

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
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
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
            let size = fs.inode(ino).raw.i_size;
            let data = fs.read_file(ino, 0, size)?;
            match out {
                Some(p) => std::fs::write(&p, &data)
                    .map_err(|e| Error::host(format!("{}: {e}", p.display())))?,
                None => std::io::stdout().write_all(&data).map_err(Error::host)?,
            }
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
        Command::Mkdir { image, path } => with_fs(&image, |fs| fs.mkdir(&path).map(|_| ())),
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

/// `e4fuzz fsck IMAGE [--json]`: one line per problem and a summary (or one JSON object);
/// exit 0 when clean (information problems allowed), 4 when problems were found.
fn fsck(image: &Path, json: bool) -> Result<i32> {
    let mut dev = load_image(image)?;
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

/// Load an image file as a disk whose blocks are the filesystem's (4 KiB blocks for block
/// sizes the simulated disk does not take), reading only its superblock first.
fn load_image(path: &Path) -> Result<Disk> {
    use crate::format::superblock::{Superblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
    use std::io::Read;
    let host = |e: std::io::Error| Error::host(format!("{}: {e}", path.display()));
    let mut head = Vec::new();
    let want = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64;
    std::fs::File::open(path)
        .map_err(host)?
        .take(want)
        .read_to_end(&mut head)
        .map_err(host)?;
    if head.len() < want as usize {
        let what = "superblock";
        return Err(crate::error::CorruptKind::Truncated { what }.into());
    }
    let sb = Superblock::parse(&head[SUPERBLOCK_OFFSET as usize..])?;
    let bs = sb.block_size();
    Disk::load(path, if bs <= 32768 { bs } else { 4096 })
}

/// Mount `image`, run `f`, unmount cleanly and save the image in place.
fn with_fs(image: &Path, f: impl FnOnce(&mut Fs) -> Result<()>) -> Result<i32> {
    let mut fs = Fs::open(image, MountOpts::default())?;
    f(&mut fs)?;
    let dev = fs.unmount()?;
    dev.save(image)?;
    Ok(EXIT_OK)
}
