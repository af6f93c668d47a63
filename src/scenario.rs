//! Scenarios: everything one execution needs, as plain data — the geometry, the engine profile
//! and seeded bugs, up to four threads of operations, the schedule that interleaves them, the
//! crash plan and the fault plan. A scenario runs nothing; `harness` executes it.
//!
//! Two encodings, both total and deterministic:
//! - from fuzzer bytes ([`Scenario::from_fuzz_bytes`], via `arbitrary`): every byte string decodes
//!   to a *valid* scenario (ops only on files that exist, offsets in range), so fuzzers never
//!   waste executions on rejected inputs;
//! - the versioned, line-based `.repro` text ([`Scenario::to_repro`] / [`Scenario::parse_repro`]),
//!   which round-trips exactly and is what findings are written as.

use crate::dev::{FaultPlan, Zone};
use crate::profile::BugSet;

/// The most threads a scenario has.
pub const MAX_THREADS: usize = 4;
/// The most files a scenario names (`f0` … `f7` in the root directory).
pub const MAX_FILES: u8 = 8;
/// The most operations per thread.
pub const MAX_OPS_PER_THREAD: usize = 64;

/// Filesystem geometry of the template image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Block size in bytes (1024, 2048 or 4096).
    pub block_size: u32,
    /// Image size in bytes.
    pub size_bytes: u64,
    /// The `extent` feature (new files are extent-mapped). Files listed in
    /// [`Scenario::setup`] with `indirect` are created before the feature is switched on, as
    /// `tune2fs -O extent` on an old filesystem would leave them.
    pub extents: bool,
    /// The `metadata_csum` feature.
    pub metadata_csum: bool,
    /// Journal size in blocks (≥ 1024).
    pub journal_blocks: u32,
}

impl Default for Geometry {
    /// The fuzzing default: 1 KiB blocks (so DIND/TIND are reachable with sparse files), 16 MiB
    /// (two block groups), extents, metadata_csum, a 1024-block journal.
    fn default() -> Geometry {
        Geometry {
            block_size: 1024,
            size_bytes: 16 << 20,
            extents: true,
            metadata_csum: true,
            journal_blocks: 1024,
        }
    }
}

/// A file created before the workload starts (part of the template state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSetup {
    /// File index (`f{index}`).
    pub file: u8,
    /// Created indirect-mapped (before the extent feature is switched on).
    pub indirect: bool,
    /// Extents of data written at setup: (byte offset, length, pattern tag).
    pub writes: Vec<(u64, u32, u8)>,
}

/// Where `migrate` converts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateTo {
    /// `chattr +e` (EXT4_IOC_MIGRATE): indirect → extents.
    Extents,
    /// `chattr -e`: extents → indirect.
    Indirect,
}

/// One operation of a thread. File operands are indices into `f0..f7`; `tag` selects the
/// bytes written (a pattern derived from file, offset and tag, so any block's origin can be
/// recognised after a crash). Field names are uniform: `file` (index), `off`/`len`/`size`
/// (bytes), `tag` (pattern).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `creat()` in the root directory.
    Create { file: u8 },
    /// Buffered `write()` (takes `i_rwsem`).
    Write {
        file: u8,
        off: u64,
        len: u32,
        tag: u8,
    },
    /// A store through a shared mapping into one block (`page_mkwrite`, no `i_rwsem`).
    MmapWrite {
        file: u8,
        off: u64,
        len: u32,
        tag: u8,
    },
    /// `read()` of a range (compared with the model).
    Read { file: u8, off: u64, len: u32 },
    /// `FIEMAP`-style lookup of the whole mapping (takes `i_data_sem` for read).
    Fiemap { file: u8 },
    /// `truncate()` to a size.
    Truncate { file: u8, size: u64 },
    /// `fallocate(PUNCH_HOLE)`.
    Punch { file: u8, off: u64, len: u64 },
    /// `fallocate()` mode 0 (extent files only).
    Fallocate { file: u8, off: u64, len: u64 },
    /// `fsync()`.
    Fsync { file: u8 },
    /// `sync()`.
    Sync,
    /// `unlink()`.
    Unlink { file: u8 },
    /// Writeback of every dirty page (the flusher thread).
    Writeback,
    /// The journal's commit timer firing.
    Commit,
    /// `EXT4_IOC_CHECKPOINT`: commit, then write every logged block home and move the
    /// journal's tail (`jbd2_journal_flush()`).
    Checkpoint,
    /// `EXT4_IOC_MIGRATE` / `chattr ±e`.
    Migrate { file: u8, to: MigrateTo },
}

impl Op {
    /// The file operand of the op, if it has one.
    pub fn file(&self) -> Option<u8> {
        match *self {
            Op::Read { file, .. } | Op::Fiemap { file } | Op::Fsync { file } => Some(file),
            _ => self.changed_file(),
        }
    }

    /// The file whose content (size, bytes, existence) or mapping the op may change: every op
    /// naming a file but `Read`, `Fiemap` and `Fsync`. A migration changes the mapping only.
    pub fn changed_file(&self) -> Option<u8> {
        match *self {
            Op::Create { file }
            | Op::Write { file, .. }
            | Op::MmapWrite { file, .. }
            | Op::Truncate { file, .. }
            | Op::Punch { file, .. }
            | Op::Fallocate { file, .. }
            | Op::Unlink { file }
            | Op::Migrate { file, .. } => Some(file),
            Op::Read { .. }
            | Op::Fiemap { .. }
            | Op::Fsync { .. }
            | Op::Sync
            | Op::Writeback
            | Op::Commit
            | Op::Checkpoint => None,
        }
    }

    /// The file whose content the op may change ([`Op::changed_file`] without migrations,
    /// which change no byte).
    pub fn content_file(&self) -> Option<u8> {
        match self {
            Op::Migrate { .. } => None,
            _ => self.changed_file(),
        }
    }
}

/// When the machine loses power, and what the disk keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashPlan {
    /// Crash at this device write (0-based, counted from the start of the workload): it and
    /// every later write never reach the media. `None`: crash after the last operation.
    pub at_write: Option<u64>,
    /// Seed for the fates of the writes not yet durable at the crash (kept, lost, torn).
    pub fates_seed: u64,
    /// Per-mille chance a pending write survives.
    pub keep_per_mille: u16,
    /// Per-mille chance a surviving write is torn at 512-byte sectors.
    pub tear_per_mille: u16,
}

impl Default for CrashPlan {
    fn default() -> CrashPlan {
        CrashPlan {
            at_write: None,
            fates_seed: 0,
            keep_per_mille: 500,
            tear_per_mille: 100,
        }
    }
}

/// One execution's full description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Template geometry.
    pub geometry: Geometry,
    /// Profile name (see `crate::profile::PROFILES`).
    pub profile: String,
    /// Seeded bugs on top of the profile.
    pub bugs: BugSet,
    /// Files that exist before the workload.
    pub setup: Vec<FileSetup>,
    /// The threads' operations (1 to [`MAX_THREADS`] threads).
    pub threads: Vec<Vec<Op>>,
    /// Scheduling decisions (see `crate::sched::Schedule`).
    pub schedule: Vec<u8>,
    /// The crash.
    pub crash: CrashPlan,
    /// Injected I/O errors (device-level; counted from the start of the workload).
    pub faults: FaultPlan,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario {
            geometry: Geometry::default(),
            profile: "fixed".into(),
            bugs: BugSet::NONE,
            setup: Vec::new(),
            threads: vec![Vec::new()],
            schedule: Vec::new(),
            crash: CrashPlan::default(),
            faults: FaultPlan::default(),
        }
    }
}

/// The zones a fault may target, in a stable order (for encodings): every zone but `Unknown`.
pub const FAULT_ZONES: [Zone; 8] = {
    let all = Zone::ALL;
    [
        all[0], all[1], all[2], all[3], all[4], all[5], all[6], all[7],
    ]
};
const _: () = assert!(
    matches!(Zone::ALL[8], Zone::Unknown),
    "Unknown must be the last zone"
);

impl Scenario {
    /// Decode fuzzer bytes into a valid scenario (total: every input gives one).
    pub fn from_fuzz_bytes(data: &[u8]) -> Scenario {
        gen::generate(data)
    }

    /// The `.repro` text of this scenario.
    pub fn to_repro(&self) -> String {
        repro::encode(self)
    }

    /// Parse a `.repro` text.
    pub fn parse_repro(text: &str) -> crate::Result<Scenario> {
        repro::decode(text)
    }

    /// Accept either a `.repro` text or raw fuzzer bytes (a raw artifact).
    pub fn from_any(data: &[u8]) -> crate::Result<Scenario> {
        if data.starts_with(repro::MAGIC.as_bytes()) {
            let text = std::str::from_utf8(data)
                .map_err(|_| crate::Error::Invalid("a .repro file must be UTF-8".into()))?;
            Scenario::parse_repro(text)
        } else {
            Ok(Scenario::from_fuzz_bytes(data))
        }
    }
}

pub mod gen;
pub mod repro;
