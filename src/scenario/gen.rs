//! The fuzz-bytes decoder: every byte string becomes a *valid* [`Scenario`], deterministically.
//!
//! It follows wasmtime's API-call generator: a per-input `Swarm` switches whole op
//! kinds and features off (swarm testing), a `Scope` tracks which of `f0`..`f7`
//! exist for each thread (and how they are mapped, and how big they are), and only ops whose
//! preconditions hold are offered. Hard caps keep one execution short (at most
//! [`MAX_TOTAL_OPS`] ops, [`MAX_GEN_OPS_PER_THREAD`] per thread).
//!
//! # Byte layout
//!
//! Fixed-size fields come first, so that mutating an op does not shift the crash plan:
//!
//! | bytes | field |
//! |---|---|
//! | 3 | swarm: 20 switches, a set bit switches a feature off |
//! | 1 | geometry: below 192 the default (1 KiB blocks, 16 MiB, extents, csum, 1024-block journal); else 4 KiB or 2 KiB blocks, no csum, rarely no `extent` |
//! | 11 | crash: mid-workload or not (1), write index (2), fates seed (4), keep and tear per-mille (2 + 2) |
//! | 5 | fault: present (1: half the inputs with the `Faults` switch), read/write/flush (1), n (1, skewed to small: `b²/64`), zone (1: none, one of the eight, or tree metadata), mode (1: once, sticky, or, half the time, the first op on each block) |
//! | 1 + ≤ 332 | setup: file count (0–4); per file its index, indirect or extents (with `Deep` on 1 KiB blocks, one in eight extent files fragmented: [`fragment_writes`]), write count (0–8), writes of ≤ 10 bytes |
//! | 1 + 4 + ≤ 768 | threads: count (1–4); per thread an op count (0–16), ops of ≤ 16 bytes (with the `Focus` switch a file operand takes one byte more, which three times in four names the file the thread's last op named) |
//! | 1 + ≤ 64 | schedule, with two threads or more: a form byte, then up to 32 decisions one byte each, or up to 32 segments of two bytes, a choice and its run length ([`draw_schedule`]) |
//!
//! Bytes past those are ignored; when the input runs out every draw is the start of its range,
//! so the empty input is [`Scenario::default()`] and a short input a small scenario.
//! [`size_hint`] gives the bounds. A typical input consumes 60–340 bytes (median ~190): two or
//! three threads, ~18 ops in all, two setup files.
//!
//! # Valid by construction
//!
//! See [`validate`], which replays a scenario through the same `Scope`
//! preconditions the generator draws from: ops only on files that exist for their thread under
//! every interleaving, `Create` only on a missing file, `Unlink` only of a file the thread
//! created, `Fallocate` only on extent files, mmap stores within one block and within `i_size`,
//! every range below the largest size an indirect map can address. Preferences are not
//! validity: `Migrate` goes to the other format (and only to extents with the `extent` feature;
//! to indirect only for files within the direct blocks), except one in 16 to any file and
//! direction, which tests the `EINVAL`/`EOPNOTSUPP` paths.
//!
//! The profile and seeded bugs are not drawn: the campaign sets them (`fixed`, none here).

mod draw;
mod ops;
mod scope;

use self::draw::{Draw, Feature, Swarm};
use self::ops::{draw_off, draw_op, OFF_BYTES_MAX, OP_BYTES_MAX, WRITE_BLOCKS_MAX};
use self::scope::{Limits, Scope};
use super::MAX_THREADS;
use super::{CrashPlan, FileSetup, Geometry, Op, Scenario, FAULT_ZONES, MAX_OPS_PER_THREAD};
use crate::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen, Zone};
use crate::profile::Profile;

/// Most ops the generator puts in one thread.
pub const MAX_GEN_OPS_PER_THREAD: usize = 16;
/// Most ops the generator puts in one scenario (keeps an execution well under a millisecond of
/// engine time and far from libFuzzer's timeouts).
pub const MAX_TOTAL_OPS: usize = 48;
/// Most files set up before the workload.
pub const MAX_SETUP_FILES: usize = 4;
/// Most writes per setup file (drawn; a fragmented file has [`fragment_writes`] too).
pub const MAX_SETUP_WRITES: usize = 8;
/// How many more one-block extents than a tree block holds a fragmented setup file gets.
const FRAGMENT_EXTRA: u64 = 32;
/// Most bytes of a flat schedule.
pub const MAX_FLAT_SCHEDULE_BYTES: usize = 32;
/// Most schedule segments the generator draws (two input bytes each).
pub const MAX_SCHEDULE_SEGMENTS: usize = 32;
/// Most schedule bytes the generator takes from the input (the form byte, then the segments).
pub const MAX_SCHEDULE_BYTES: usize = 1 + 2 * MAX_SCHEDULE_SEGMENTS;
/// Longest schedule a generated scenario has (decisions, after expanding the runs).
pub const MAX_SCHEDULE_LEN: usize = 4096;

/// Bytes of the fixed-size header (swarm, geometry, crash, fault).
const HEADER_BYTES: usize = Swarm::BYTES + 1 + 11 + 5;
/// Most bytes of one setup write: offset, length, tag.
const SETUP_WRITE_BYTES_MAX: usize = OFF_BYTES_MAX + 2 + 1;
/// Most bytes of the setup section.
const SETUP_BYTES_MAX: usize = 1 + MAX_SETUP_FILES * (3 + MAX_SETUP_WRITES * SETUP_WRITE_BYTES_MAX);
/// Most bytes of the threads section.
const THREADS_BYTES_MAX: usize = 1 + MAX_THREADS + MAX_TOTAL_OPS * OP_BYTES_MAX;
/// Largest crash write index drawn.
const CRASH_WRITE_MAX: u64 = 511;
/// Largest `n` of an injected "n-th operation fails" rule.
const FAULT_NTH_MAX: u8 = 63;

/// Decode fuzzer bytes into a valid scenario (total and deterministic; see the module doc).
pub fn generate(data: &[u8]) -> Scenario {
    generate_counted(data).0
}

/// [`generate`], also returning how many bytes of `data` it consumed (`data[..n]` gives the same
/// scenario).
pub fn generate_counted(data: &[u8]) -> (Scenario, usize) {
    let mut d = Draw::new(data);
    let swarm = Swarm::draw(&mut d);
    let geometry = draw_geometry(&mut d);
    let crash = draw_crash(&mut d, swarm);
    let faults = draw_faults(&mut d, swarm);
    let mut scope = Scope::new(&geometry);
    let setup = draw_setup(&mut d, swarm, &mut scope);
    let threads = draw_threads(&mut d, swarm, &mut scope);
    let schedule = if threads.len() > 1 {
        draw_schedule(&mut d)
    } else {
        Vec::new()
    };
    let s = Scenario {
        geometry,
        setup,
        threads,
        schedule,
        crash,
        faults,
        ..Scenario::default()
    };
    (s, d.consumed())
}

/// The schedule section. Its first byte picks the form: below 128, up to
/// [`MAX_FLAT_SCHEDULE_BYTES`] bytes taken as they are, one decision each; else up to
/// [`MAX_SCHEDULE_SEGMENTS`] segments `(choice, run)`, each expanded to `run_len(run)` copies
/// of `choice`, capped at [`MAX_SCHEDULE_LEN`] decisions.
///
/// A schedule byte decides one decision, and a scenario takes hundreds of them. Flat bytes
/// switch threads often near the start of a run (a mmap store racing the first steps of a
/// walk, T2) and then let each thread run on. A race deep inside an op (a commit landing
/// between two extents of a migration's walk, S6) needs one thread to run for a long stretch
/// first; run lengths give that in two bytes, as PCT's change points do.
fn draw_schedule(d: &mut Draw) -> Vec<u8> {
    if d.int(0..=u8::MAX) < 128 {
        return d.rest(MAX_FLAT_SCHEDULE_BYTES);
    }
    let mut out = Vec::new();
    for _ in 0..MAX_SCHEDULE_SEGMENTS {
        if d.is_empty() || out.len() >= MAX_SCHEDULE_LEN {
            break;
        }
        let choice = d.int(0..=u8::MAX);
        let n = run_len(d.int(0..=u8::MAX)).min(MAX_SCHEDULE_LEN - out.len());
        out.extend(std::iter::repeat_n(choice, n));
    }
    out
}

/// The run length a segment's second byte encodes: 1 for half the values (interleaving one
/// decision at a time), 2 to 17 for a quarter (a short stretch), and `18 + k²/8` for the last
/// quarter, `k = byte − 192` (18 to 514 decisions, dense at the short end: deep into an op).
pub(crate) fn run_len(byte: u8) -> usize {
    let b = usize::from(byte);
    match b {
        0..128 => 1,
        128..192 => 2 + (b - 128) / 4,
        _ => 18 + (b - 192) * (b - 192) / 8,
    }
}

/// Bounds on the bytes [`generate`] consumes, as `Arbitrary::size_hint`: none are needed (the
/// empty input is the default scenario), and bytes past the upper bound are never read.
pub const fn size_hint() -> (usize, Option<usize>) {
    (
        0,
        Some(HEADER_BYTES + SETUP_BYTES_MAX + THREADS_BYTES_MAX + MAX_SCHEDULE_BYTES),
    )
}

/// One byte: mostly the fuzzing default; a quarter of the time 4 KiB or 2 KiB blocks (or 1 KiB
/// again), half of those without `metadata_csum`, one in eight of those without `extent`.
fn draw_geometry(d: &mut Draw<'_>) -> Geometry {
    let v = d.int(0u8..=255);
    let default = Geometry::default();
    let Some(r) = v.checked_sub(192) else {
        return default;
    };
    Geometry {
        block_size: [1024, 4096, 2048, 4096][usize::from(r & 3)],
        metadata_csum: r & 4 == 0,
        extents: (r >> 3) & 7 != 7,
        ..default
    }
}

/// Eleven bytes, all drawn whatever the switches say (a fixed layout). Zero bytes give
/// [`CrashPlan::default()`]: keep and tear are offsets from its 500 and 100 per mille.
fn draw_crash(d: &mut Draw<'_>, swarm: Swarm) -> CrashPlan {
    let mid = d.int(0u8..=3) != 0;
    let w = d.int(0u16..=1023);
    let fates_seed = u64::from(d.int(0..=u32::MAX));
    let keep_per_mille = (d.int(0u16..=1000) + 500) % 1001;
    let tear_per_mille = (d.int(0u16..=1000) + 100) % 1001;
    // Half the crash points among the first 64 writes, half among the first 512.
    let index = if w & 1 == 0 {
        u64::from(w >> 1) % 64
    } else {
        u64::from(w >> 1).min(CRASH_WRITE_MAX)
    };
    CrashPlan {
        at_write: (mid && swarm.on(Feature::CrashMid)).then_some(index),
        fates_seed,
        keep_per_mille,
        tear_per_mille,
    }
}

/// Five bytes: a fault in half the inputs with the `Faults` switch on (a quarter of all):
/// `-EIO` on the n-th read, write or flush, once or sticky, in any zone or in one zone (never
/// for a flush, which has none); or, for half the read and write rules, on the first operation
/// on each block (`first-each`, a flaky device whose retries succeed: whichever op first reads
/// an indirect block fails and the next one reads it, U2's trigger), on the tree metadata for
/// more than half of those. Campaign side by side (`time_to_find`), this mix finds U2 about
/// three times as often as one fault in eight inputs with `first-each` a quarter of the time.
fn draw_faults(d: &mut Draw<'_>, swarm: Swarm) -> FaultPlan {
    let present = d.int(0u8..=3) >= 2;
    let op = [FaultOp::Read, FaultOp::Write, FaultOp::Flush][usize::from(d.int(0u8..=2))];
    // Skewed to the first few matching ops: those are the first reads of a file's indirect
    // blocks after mount, which a later op's fault then meets (U2).
    let raw = u16::from(d.int(0..=FAULT_NTH_MAX));
    let n = raw * raw / (u16::from(FAULT_NTH_MAX) + 1);
    let z = usize::from(d.int(0u8..=23));
    let mode = d.int(0u8..=3);
    if !(present && swarm.on(Feature::Faults)) {
        return FaultPlan::none();
    }
    // A third of the rules count every op; the rest one zone, the tree metadata (indirect
    // and extent blocks, what the mapping code reads and writes) for half of those. A
    // first-each rule on every zone fails the first read of each directory, inode table and
    // bitmap block too: half of those go to the tree metadata instead.
    let first_each = mode >= 2 && op != FaultOp::Flush;
    let zone = match z {
        _ if op == FaultOp::Flush => None,
        4..=7 if first_each => Some(Zone::TreeMeta),
        0..=7 => None,
        8..=15 => Some(FAULT_ZONES[z - 8]),
        _ => Some(Zone::TreeMeta),
    };
    let when = if first_each {
        FaultWhen::FirstEach
    } else {
        FaultWhen::Nth(u64::from(n))
    };
    FaultPlan::none().with_rule(FaultRule {
        op,
        when,
        zone,
        sticky: mode == 1,
    })
}

/// 0–4 files at distinct indices, three in four indirect-mapped (all of them without the
/// `extent` feature), each with 0–8 writes at drawn offsets.
fn draw_setup(d: &mut Draw<'_>, swarm: Swarm, scope: &mut Scope) -> Vec<FileSetup> {
    let count = d.int(0..=MAX_SETUP_FILES);
    let mut setup = Vec::new();
    for _ in 0..count {
        let Some(file) = d.pick(&scope.creatable()) else {
            break;
        };
        // On an extent filesystem one byte: a quarter extent files, one in eight of those
        // fragmented on 1 KiB blocks with the `Deep` switch (the byte's value modulo 4
        // decides indirect, as it did before there were fragmented files).
        let (indirect, fragmented) = if scope.extents_fs() {
            let k = d.int(0u8..=31);
            (
                k % 4 != 0,
                k == 12 && scope.limits.bs == 1024 && swarm.on(Feature::Deep),
            )
        } else {
            (true, false)
        };
        let mut writes = draw_setup_writes(d, swarm, &scope.limits);
        if fragmented {
            writes.splice(0..0, fragment_writes(&scope.limits));
        }
        let f = FileSetup {
            file,
            indirect,
            writes,
        };
        // The offsets and lengths are clipped to the limits, so the scope takes the file.
        if scope.add_setup(&f).is_ok() {
            setup.push(f);
        }
    }
    setup
}

/// The writes that fragment an extent file before its drawn writes: one byte at the start of
/// every other block from lblk 0, [`FRAGMENT_EXTRA`] more extents than a tree block holds, so
/// that the tree has depth 1 and two leaves. Ops then walk index entries, empty and remove
/// leaves, and a truncate's walk can meet a leaf that no earlier op read (U3's trigger).
fn fragment_writes(l: &Limits) -> Vec<(u64, u32, u8)> {
    let leaf = crate::format::extent::block_max(u32::try_from(l.bs).expect("block size"));
    (0..u64::from(leaf) + FRAGMENT_EXTRA)
        .map(|k| (2 * k * l.bs, 1, (k % 251) as u8 + 1))
        .collect()
}

fn draw_setup_writes(d: &mut Draw<'_>, swarm: Swarm, l: &Limits) -> Vec<(u64, u32, u8)> {
    let count = d.int(0..=MAX_SETUP_WRITES);
    let mut hot = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..count {
        let off = draw_off(d, l, swarm.on(Feature::Deep), &hot);
        let len = d.int(1..=WRITE_BLOCKS_MAX * l.bs).min(l.max_bytes() - off);
        let tag = d.int(0..=u8::MAX);
        hot.push(off / l.bs);
        writes.push((off, u32::try_from(len).unwrap_or(1), tag));
    }
    writes
}

/// 1–4 threads of 0–16 ops each, at most [`MAX_TOTAL_OPS`] in all.
fn draw_threads(d: &mut Draw<'_>, swarm: Swarm, scope: &mut Scope) -> Vec<Vec<Op>> {
    let count = d.int(1..=MAX_THREADS);
    if count == 1 {
        scope.sole_thread();
    }
    scope.set_focus(swarm.on(Feature::Focus));
    let mut budget = MAX_TOTAL_OPS;
    let mut threads = Vec::with_capacity(count);
    for t in 0..count {
        scope.begin_thread(t);
        let n = d.int(0..=MAX_GEN_OPS_PER_THREAD).min(budget);
        budget -= n;
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(op) = draw_op(d, swarm, scope) else {
                break;
            };
            scope.apply(&op);
            ops.push(op);
        }
        threads.push(ops);
    }
    threads
}

/// Largest image a scenario may have: its template holds every block in memory (the free
/// ones poisoned), and every execution clones it.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Why `g` is not a geometry the engine supports, if it is not: block size 1024, 2048 or 4096,
/// at most [`MAX_IMAGE_BYTES`], a journal of at least 1024 blocks that fits in the image.
pub fn geometry_problem(g: &Geometry) -> Option<String> {
    if ![1024, 2048, 4096].contains(&g.block_size) {
        return Some(format!("block size {} (1024, 2048 or 4096)", g.block_size));
    }
    if g.size_bytes > MAX_IMAGE_BYTES {
        return Some(format!(
            "image of {} bytes (at most {MAX_IMAGE_BYTES}: a scenario's image is held in memory)",
            g.size_bytes
        ));
    }
    if g.journal_blocks < 1024 {
        return Some(format!(
            "journal of {} blocks (at least 1024)",
            g.journal_blocks
        ));
    }
    if g.size_bytes / u64::from(g.block_size) <= u64::from(g.journal_blocks) {
        return Some(format!(
            "image of {} bytes too small for the journal",
            g.size_bytes
        ));
    }
    None
}

/// Check that `s` is valid: what the executor may rely on, and what [`generate`] guarantees
/// (the module doc's list). Replays the threads through the generator's `Scope`. The error
/// names the first problem.
pub fn validate(s: &Scenario) -> Result<(), String> {
    if let Some(p) = geometry_problem(&s.geometry) {
        return Err(format!("geometry: {p}"));
    }
    if Profile::by_name(&s.profile).is_none() {
        return Err(format!("unknown profile {:?}", s.profile));
    }
    let mut scope = Scope::new(&s.geometry);
    for f in &s.setup {
        scope.add_setup(f)?;
    }
    if s.threads.is_empty() || s.threads.len() > MAX_THREADS {
        return Err(format!("{} threads (1 to {MAX_THREADS})", s.threads.len()));
    }
    if s.threads.len() == 1 {
        scope.sole_thread();
    }
    for (t, ops) in s.threads.iter().enumerate() {
        if ops.len() > MAX_OPS_PER_THREAD {
            return Err(format!(
                "thread {t}: {} ops (at most {MAX_OPS_PER_THREAD})",
                ops.len()
            ));
        }
        scope.begin_thread(t);
        for (i, op) in ops.iter().enumerate() {
            scope
                .check(op)
                .map_err(|e| format!("thread {t} op {i}: {e}"))?;
            scope.apply(op);
        }
    }
    let c = &s.crash;
    if c.keep_per_mille > 1000 || c.tear_per_mille > 1000 {
        return Err("crash per-mille above 1000".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dev::Zone;
    use crate::scenario::MigrateTo;
    use std::collections::BTreeMap;

    /// xorshift64: fixed-seed test inputs.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next().to_le_bytes()[0]).collect()
        }
    }

    /// 2,000 fixed-seed buffers of 0 to 1,200 bytes.
    pub(crate) fn buffers() -> Vec<Vec<u8>> {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        (0..2000)
            .map(|_| {
                let n = usize::try_from(rng.next() % 1201).unwrap();
                rng.bytes(n)
            })
            .collect()
    }

    /// The generator's own caps (stricter than validity).
    fn within_caps(s: &Scenario) -> Result<(), String> {
        let total: usize = s.threads.iter().map(Vec::len).sum();
        let checks = [
            (total <= MAX_TOTAL_OPS, "total ops"),
            (
                s.threads.iter().all(|t| t.len() <= MAX_GEN_OPS_PER_THREAD),
                "ops per thread",
            ),
            (s.schedule.len() <= MAX_SCHEDULE_LEN, "schedule length"),
            (
                s.threads.len() > 1 || s.schedule.is_empty(),
                "schedule of one thread",
            ),
            (s.setup.len() <= MAX_SETUP_FILES, "setup files"),
            (
                s.setup.iter().all(|f| {
                    let fragment = fragment_writes(&Limits::new(&s.geometry)).len();
                    f.writes.len() <= MAX_SETUP_WRITES + fragment
                }),
                "setup writes",
            ),
            (
                s.faults.rules.len() <= 1 && s.faults.crash_at_write.is_none(),
                "faults",
            ),
            (
                s.crash.at_write.is_none_or(|w| w <= CRASH_WRITE_MAX),
                "crash write",
            ),
            (
                s.profile == "fixed" && s.bugs.is_empty(),
                "profile and bugs",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(format!("cap exceeded: {what}")),
            None => Ok(()),
        }
    }

    #[test]
    fn random_inputs_give_valid_deterministic_scenarios() {
        let max = size_hint().1.unwrap();
        for (i, buf) in buffers().iter().enumerate() {
            let (s, used) = generate_counted(buf);
            let problem = validate(&s).and_then(|()| within_caps(&s));
            assert_eq!(problem, Ok(()), "input {i}: {s:?}");
            assert_eq!(generate(buf), s, "input {i} not deterministic");
            assert!(used <= max, "input {i} consumed {used} > {max}");
            assert_eq!(generate(&buf[..used]), s, "input {i}: prefix differs");
        }
    }

    #[test]
    fn empty_input_is_the_default_scenario() {
        assert_eq!(generate(&[]), Scenario::default());
        assert_eq!(generate_counted(&[]).1, 0);
        assert_eq!(validate(&Scenario::default()), Ok(()));
        // A one-byte input only decides part of the swarm: still the default.
        assert_eq!(generate(&[0xFF]), Scenario::default());
        assert_eq!(size_hint(), (0, Some(20 + 333 + 773 + 65)));
    }

    /// With the `Focus` switch (bit 18 of the swarm clear), a thread's consecutive file ops
    /// name the same file far more often than without it.
    #[test]
    fn focus_keeps_a_threads_ops_on_one_file() {
        let same_file_rate = |focus: bool| {
            let (mut same, mut pairs) = (0u32, 0u32);
            for mut buf in buffers().into_iter().filter(|b| b.len() >= 3) {
                buf[0] = if focus { buf[0] & !0x04 } else { buf[0] | 0x04 };
                for t in &generate(&buf).threads {
                    let files: Vec<u8> = t.iter().filter_map(Op::file).collect();
                    for w in files.windows(2) {
                        pairs += 1;
                        same += u32::from(w[0] == w[1]);
                    }
                }
            }
            f64::from(same) / f64::from(pairs)
        };
        let (on, off) = (same_file_rate(true), same_file_rate(false));
        assert!(
            on > off + 0.15,
            "same-file rate {on:.2} with focus, {off:.2} without"
        );
    }

    fn kind(op: &Op) -> &'static str {
        match op {
            Op::Create { .. } => "create",
            Op::Write { .. } => "write",
            Op::MmapWrite { .. } => "mmap-write",
            Op::Read { .. } => "read",
            Op::Fiemap { .. } => "fiemap",
            Op::Truncate { .. } => "truncate",
            Op::Punch { .. } => "punch",
            Op::Fallocate { .. } => "fallocate",
            Op::Fsync { .. } => "fsync",
            Op::Sync => "sync",
            Op::Unlink { .. } => "unlink",
            Op::Writeback => "writeback",
            Op::Commit => "commit",
            Op::Checkpoint => "checkpoint",
            Op::Migrate {
                to: MigrateTo::Extents,
                ..
            } => "migrate-to-extents",
            Op::Migrate {
                to: MigrateTo::Indirect,
                ..
            } => "migrate-to-indirect",
        }
    }

    #[test]
    fn every_op_kind_and_feature_is_generated() {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for buf in buffers() {
            let s = generate(&buf);
            for op in s.threads.iter().flatten() {
                *seen.entry(kind(op)).or_default() += 1;
            }
            let g = &s.geometry;
            let features = [
                (s.threads.len() == 4, "4 threads"),
                (g.block_size == 4096, "4 KiB blocks"),
                (g.block_size == 2048, "2 KiB blocks"),
                (!g.metadata_csum, "no csum"),
                (!g.extents, "no extents"),
                (s.crash.at_write.is_some(), "mid-workload crash"),
                (!s.faults.is_empty(), "fault"),
                (s.setup.iter().any(|f| !f.indirect), "extent setup file"),
                (
                    s.setup
                        .iter()
                        .any(|f| f.writes.iter().any(|w| w.0 >= 65_804 * 1024)),
                    "TIND",
                ),
            ];
            for (present, name) in features {
                if present {
                    *seen.entry(name).or_default() += 1;
                }
            }
        }
        let expected = [
            "create",
            "write",
            "mmap-write",
            "read",
            "fiemap",
            "truncate",
            "punch",
            "fallocate",
            "fsync",
            "sync",
            "unlink",
            "writeback",
            "commit",
            "checkpoint",
            "migrate-to-extents",
            "migrate-to-indirect",
            "4 threads",
            "4 KiB blocks",
            "2 KiB blocks",
            "no csum",
            "no extents",
            "mid-workload crash",
            "fault",
            "extent setup file",
            "TIND",
        ];
        for name in expected {
            assert!(
                seen.get(name).copied().unwrap_or(0) > 0,
                "never generated: {name}"
            );
        }
        // Data-path ops and migrations dominate.
        assert!(seen["write"] > seen["fiemap"] && seen["migrate-to-extents"] > seen["unlink"]);
    }

    #[test]
    fn swarm_switches_remove_op_kinds() {
        let mut rng = XorShift(7);
        for _ in 0..200 {
            let mut buf = vec![0x0F, 0xFF, 0xFF];
            buf.extend(rng.bytes(400));
            let s = generate(&buf);
            assert!(
                s.threads.iter().all(Vec::is_empty),
                "all switched off: {s:?}"
            );
            assert!(s.faults.is_empty() && s.crash.at_write.is_none());
            // Only writes (bit 1 clear).
            buf[2] = 0xFD;
            let s = generate(&buf);
            assert!(s.threads.iter().flatten().all(|op| kind(op) == "write"));
        }
    }

    #[test]
    fn golden_input_decodes_to_the_expected_scenario() {
        let data = [
            0, 0, 0, // swarm: all on
            0, // default geometry
            1, 0, 10, 0, 0, 0, 7, 0, 0, 0, 0, // crash at write 5, seed 7, 500/100
            3, 1, 12, 13, 1, // EIO on the 2nd tree-meta write (12²/64), sticky
            1, 2, 1, 1, 3, 0, 0, 0, 0x0B, 0xB7, 7, // f2 indirect, 3000 bytes at block 12
            1, // two threads
            2, 15, 0, 4, 0, 1, 0, 100, 0, 9, 3, // T0: migrate f2, mmap store at 12388
            1, 1, 8, 2, 4, 10, 0, 99, 9, // T1: write next to the hot block
            200, 0, 0, 1, 0, 1, 220, 0, 0, // schedule in segments: 0, 1, 1*(18 + 28²/8), 0
        ];
        let expected = Scenario {
            setup: vec![FileSetup {
                file: 2,
                indirect: true,
                writes: vec![(12_288, 3000, 7)],
            }],
            threads: vec![
                vec![
                    Op::Migrate {
                        file: 2,
                        to: MigrateTo::Extents,
                    },
                    Op::MmapWrite {
                        file: 2,
                        off: 12_388,
                        len: 10,
                        tag: 3,
                    },
                ],
                vec![Op::Write {
                    file: 2,
                    off: 13_322,
                    len: 100,
                    tag: 9,
                }],
            ],
            schedule: [vec![0], vec![1; 117], vec![0]].concat(),
            crash: CrashPlan {
                at_write: Some(5),
                fates_seed: 7,
                ..CrashPlan::default()
            },
            faults: FaultPlan::none().with_rule(
                FaultRule::new(FaultOp::Write, FaultWhen::Nth(2))
                    .in_zone(Zone::TreeMeta)
                    .sticky(),
            ),
            ..Scenario::default()
        };
        assert_eq!(generate_counted(&data), (expected, data.len()));
    }

    #[test]
    fn geometry_byte_variants() {
        let geo = |b: u8| draw_geometry(&mut Draw::new(&[b]));
        assert_eq!(geo(191), Geometry::default());
        let g = geo(192 + 1 + 4);
        assert_eq!(
            (g.block_size, g.metadata_csum, g.extents),
            (4096, false, true)
        );
        let g = geo(192 + 2 + 56);
        assert_eq!(
            (g.block_size, g.metadata_csum, g.extents),
            (2048, true, false)
        );
        assert_eq!((g.size_bytes, g.journal_blocks), (16 << 20, 1024));
    }

    #[test]
    fn validate_names_the_first_problem() {
        let base = generate(&[]);
        let with_ops = |threads: Vec<Vec<Op>>| Scenario {
            setup: vec![FileSetup {
                file: 0,
                indirect: true,
                writes: vec![(0, 3000, 1)],
            }],
            threads,
            ..base.clone()
        };
        let w = |file| Op::Write {
            file,
            off: 0,
            len: 1,
            tag: 0,
        };
        let cases: Vec<(Scenario, &str)> = vec![
            (
                with_ops(vec![vec![w(5)]]),
                "thread 0 op 0: f5 does not exist for thread 0",
            ),
            (with_ops(vec![vec![]; 5]), "5 threads (1 to 4)"),
            (with_ops(vec![]), "0 threads (1 to 4)"),
            (
                with_ops(vec![vec![w(0); 65]]),
                "thread 0: 65 ops (at most 64)",
            ),
            (
                with_ops(vec![vec![Op::Create { file: 3 }], vec![w(3)]]),
                "thread 1 op 0: f3 does not exist for thread 1",
            ),
            (
                with_ops(vec![vec![Op::Unlink { file: 0 }], vec![]]),
                "thread 0 op 0: f0 is not owned by thread 0",
            ),
            (
                with_ops(vec![vec![], vec![Op::Truncate { file: 0, size: 0 }]]),
                "thread 1 op 0: truncate of shared f0 to 0 below 3000",
            ),
            (
                with_ops(vec![vec![Op::Punch {
                    file: 0,
                    off: u64::MAX,
                    len: 1,
                }]]),
                "thread 0 op 0: range 18446744073709551615+1 beyond the maximum file size",
            ),
            (
                Scenario {
                    geometry: Geometry {
                        block_size: 512,
                        ..Geometry::default()
                    },
                    ..base.clone()
                },
                "geometry: block size 512 (1024, 2048 or 4096)",
            ),
            (
                Scenario {
                    profile: "nope".into(),
                    ..base.clone()
                },
                "unknown profile \"nope\"",
            ),
            (
                Scenario {
                    crash: CrashPlan {
                        keep_per_mille: 1001,
                        ..CrashPlan::default()
                    },
                    ..base.clone()
                },
                "crash per-mille above 1000",
            ),
        ];
        for (s, err) in cases {
            assert_eq!(validate(&s), Err(err.to_string()));
        }
        assert_eq!(validate(&with_ops(vec![vec![w(0)], vec![w(0)]])), Ok(()));
        // One thread owns the setup files: it may truncate them to nothing and unlink them.
        let own = vec![Op::Truncate { file: 0, size: 0 }, Op::Unlink { file: 0 }];
        assert_eq!(validate(&with_ops(vec![own])), Ok(()));
        let tiny = Geometry {
            size_bytes: 1 << 20,
            ..Geometry::default()
        };
        assert_eq!(
            geometry_problem(&tiny),
            Some("image of 1048576 bytes too small for the journal".into())
        );
    }
}
