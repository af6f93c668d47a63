//! Fuzz-target entry points: one `fn(&[u8])` per target, shared by cargo-fuzz (libFuzzer),
//! AFL++, `cargo test` corpus replay and the CLI. The glue in `fuzz/fuzz_targets/*.rs` only
//! calls these. A target reports a bug by panicking (wasmtime's convention): every error the
//! engine returns for bad input is expected; a panic is a finding.
//!
//! | target | input | oracle |
//! |---|---|---|
//! | [`image`] | patches applied to a valid image | mount, read every file, recover: typed errors only, never a panic |
//! | [`journal`] | the bytes of the journal area | recovery: no panic, idempotent (a second run writes nothing) |
//! | [`indirect_map`] | a sequence of file operations | an indirect-mapped file equals a byte model after every operation |
//! | [`extent_tree`] | a sequence of file operations | the same on an extent-mapped file (with fallocate) |
//! | [`scenario`] | a whole scenario (threads, schedule, crash, faults) | every oracle of the harness: a finding panics |

use crate::dev::{Disk, Zone};
use crate::fs::mkfs::{mkfs, MkfsOpts};
use crate::fs::{Fs, MountOpts};
use crate::units::{Ino, Pblk};
use std::sync::OnceLock;

/// The template images the targets start from (built once per process).
fn template(extents: bool) -> Disk {
    static EXT: OnceLock<Disk> = OnceLock::new();
    static IND: OnceLock<Disk> = OnceLock::new();
    let cell = if extents { &EXT } else { &IND };
    cell.get_or_init(|| {
        let opts = MkfsOpts {
            size_bytes: 4 << 20,
            extents,
            journal_blocks: Some(1024),
            ..MkfsOpts::default()
        };
        let mut fs = Fs::mount(mkfs(&opts).expect("template mkfs"), MountOpts::default())
            .expect("template mount");
        let f = fs.create("/f", 0o644).expect("template file");
        fs.write_file(f, 0, &[0x5A; 3000]).expect("template write");
        fs.write_file(f, 300 * 1024, &[0xA5; 1500])
            .expect("template write");
        fs.mkdir("/d").expect("template dir");
        let mut dev = fs.unmount().expect("template unmount");
        dev.freeze();
        dev
    })
    .clone()
}

/// A little-endian reader over the fuzz input that yields zeroes once the bytes run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// Target `image`: apply up to 64 patches `(block u16, offset u16, len u8, bytes)` to the
/// template image (the metadata area is where mutations matter), then mount read-only (which
/// replays the journal if the patched superblock asks for it), list and read every file of
/// the root and `/d`, and run recovery on a copy. Every outcome but a panic is accepted.
pub fn image(data: &[u8]) {
    let mut dev = template(data.first().is_some_and(|b| b & 1 == 0));
    let mut input = Bytes(data.get(1..).unwrap_or(&[]));
    let bs = dev.block_size() as usize;
    let nblocks = dev.nr_blocks();
    for _ in 0..64 {
        if input.is_empty() {
            break;
        }
        let blk = u64::from(input.u16()) % nblocks;
        let off = usize::from(input.u16()) % bs;
        let len = usize::from(input.u8());
        let patch = input.take(len).to_vec();
        let mut block = dev.peek_block(Pblk(blk)).to_vec();
        let end = (off + patch.len()).min(bs);
        block[off..end].copy_from_slice(&patch[..end - off]);
        dev.write_as(Pblk(blk), &block, Zone::Unknown)
            .expect("template write in range");
    }
    let mut copy = dev.clone();
    let _ = crate::jbd2::recover(&mut copy);
    if let Ok(mut fs) = Fs::mount(dev, MountOpts { read_only: true }) {
        read_tree(&mut fs);
    }
}

fn read_tree(fs: &mut Fs) {
    for dir in ["/", "/d"] {
        let Ok(ino) = fs.resolve(dir) else { continue };
        let Ok(entries) = fs.readdir(ino) else {
            continue;
        };
        for e in entries.into_iter().take(16) {
            let ino = Ino(e.inode);
            if let Ok(info) = fs.iget(ino) {
                let size = info.raw.i_size.min(1 << 20);
                let _ = fs.read_file(ino, 0, size);
            }
        }
    }
}

/// Target `journal`: write the input over the journal's log blocks (from block 1), mark the
/// journal as needing recovery from its first block, and recover. Recovery must not panic,
/// and recovering a second time must write nothing (idempotence).
pub fn journal(data: &[u8]) {
    use crate::format::jbd2::JournalSuperblock;
    use crate::format::superblock::{Superblock, EXT4_FEATURE_INCOMPAT_RECOVER, SUPERBLOCK_OFFSET};
    let mut dev = template(true);
    let sb0 = read_sb(&mut dev);
    let Ok(loc) = crate::jbd2::JournalLoc::find(&mut dev, &sb0) else {
        panic!("the template's journal must be found");
    };
    let bs = dev.block_size() as usize;
    for (i, chunk) in data.chunks(bs).take(64).enumerate() {
        let pblk = loc.bmap(i as u64 + 1).expect("template journal block");
        let mut block = vec![0u8; bs];
        block[..chunk.len()].copy_from_slice(chunk);
        dev.write_as(pblk, &block, Zone::Journal).expect("in range");
    }
    let jsb_blk = loc.bmap(0).expect("journal superblock");
    let mut raw = dev.peek_block(jsb_blk).to_vec();
    let mut jsb = JournalSuperblock::parse(&raw[..1024]).expect("template journal superblock");
    jsb.s_start = 1;
    raw[..1024].copy_from_slice(&jsb.to_bytes());
    dev.write_as(jsb_blk, &raw, Zone::Journal)
        .expect("in range");
    let mut sb: Superblock = read_sb(&mut dev);
    sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_RECOVER;
    dev.write_bytes(SUPERBLOCK_OFFSET, &sb.to_bytes())
        .expect("in range");
    dev.freeze();
    if crate::jbd2::recover(&mut dev).is_ok() {
        dev.freeze();
        let again = crate::jbd2::recover(&mut dev);
        assert!(again.is_ok(), "second recovery failed: {again:?}");
        assert_eq!(
            dev.written_blocks().count(),
            0,
            "recovery is not idempotent"
        );
    }
}

fn read_sb(dev: &mut Disk) -> crate::format::superblock::Superblock {
    crate::jbd2::read_fs_superblock(dev).expect("template superblock")
}

/// Target `indirect_map`: file operations on an indirect-mapped file, checked against a byte
/// model after every operation (see [`model_ops`]).
pub fn indirect_map(data: &[u8]) {
    model_ops(false, data);
}

/// Target `extent_tree`: file operations on an extent-mapped file, checked against a byte
/// model after every operation (see [`model_ops`]).
pub fn extent_tree(data: &[u8]) {
    model_ops(true, data);
}

/// A sparse byte model of one file: 4 KiB chunks that were ever written, and the size.
#[derive(Default)]
struct Model {
    size: u64,
    chunks: std::collections::BTreeMap<u64, Vec<u8>>,
}

const CHUNK: u64 = 4096;

impl Model {
    fn write(&mut self, off: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            let at = off + i as u64;
            self.chunks
                .entry(at / CHUNK)
                .or_insert_with(|| vec![0; CHUNK as usize])[(at % CHUNK) as usize] = *b;
        }
        self.size = self.size.max(off + data.len() as u64);
    }

    fn zero(&mut self, from: u64, to: u64) {
        if from >= to {
            return;
        }
        let keys: Vec<u64> = self
            .chunks
            .range(from / CHUNK..=to.saturating_sub(1) / CHUNK)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let c = self.chunks.get_mut(&k).expect("key from range");
            let (s, e) = (
                from.max(k * CHUNK) - k * CHUNK,
                to.min((k + 1) * CHUNK) - k * CHUNK,
            );
            c[s as usize..e as usize].fill(0);
        }
    }

    fn truncate(&mut self, size: u64) {
        if size < self.size {
            self.zero(size, self.size);
        }
        self.chunks.retain(|k, _| k * CHUNK < size);
        self.size = size;
    }

    fn punch(&mut self, off: u64, len: u64) {
        self.zero(off.min(self.size), off.saturating_add(len).min(self.size));
    }

    fn read(&self, off: u64, len: u64) -> Vec<u8> {
        let end = off.saturating_add(len).min(self.size);
        (off..end.max(off))
            .map(|at| {
                self.chunks
                    .get(&(at / CHUNK))
                    .map_or(0, |c| c[(at % CHUNK) as usize])
            })
            .collect()
    }
}

/// Up to 32 operations, each 1 + 9 bytes: write / truncate / punch / fallocate (extents only)
/// / sync, at offsets spread over the direct, IND, DIND and TIND ranges of 1 KiB blocks. After
/// each, the file's size and the bytes around the touched range equal a sparse byte model's; at
/// the end every chunk the model holds is compared and the unmounted image must mount again.
pub fn model_ops(extents: bool, data: &[u8]) {
    let mut fs = Fs::mount(template(extents), MountOpts::default()).expect("template mounts");
    let ino = fs.create("/m", 0o644).expect("create");
    let mut model = Model::default();
    let mut input = Bytes(data);
    const SPAN: [u64; 4] = [12 << 10, 268 << 10, 65_804 << 10, 256 << 20];
    for _ in 0..32 {
        if input.is_empty() {
            break;
        }
        let kind = input.u8();
        let off = u64::from(input.u32()) % SPAN[usize::from(kind >> 6)];
        let len = u64::from(input.u16() % 4096) + 1;
        let tag = input.u8();
        let res = match kind % 5 {
            0 => {
                let bytes: Vec<u8> = (0..len).map(|i| tag.wrapping_add(i as u8) | 1).collect();
                fs.write_file(ino, off, &bytes)
                    .inspect(|()| model.write(off, &bytes))
            }
            1 => fs.truncate_file(ino, off).inspect(|()| model.truncate(off)),
            2 => fs
                .punch_hole(ino, off, len)
                .inspect(|()| model.punch(off, len)),
            3 if extents => fs.fallocate(ino, off, len).inspect(|()| {
                model.size = model.size.max(off + len);
            }),
            _ => fs.sync(),
        };
        match res {
            Ok(()) | Err(crate::Error::NoSpace) | Err(crate::Error::TooBig) => {}
            Err(e) => panic!("operation {kind} failed: {e}"),
        }
        let size = fs.inode(ino).raw.i_size;
        assert_eq!(size, model.size, "i_size after op {kind}");
        let from = off.saturating_sub(len);
        let got = fs.read_file(ino, from, 3 * len).expect("read");
        assert!(
            got == model.read(from, 3 * len),
            "bytes around {off} after op {kind}"
        );
    }
    let keys: Vec<u64> = model.chunks.keys().copied().collect();
    for k in keys {
        let got = fs.read_file(ino, k * CHUNK, CHUNK).expect("read chunk");
        assert!(
            got == model.read(k * CHUNK, CHUNK),
            "chunk at {}",
            k * CHUNK
        );
    }
    let dev = fs.unmount().expect("unmount");
    Fs::mount(dev, MountOpts { read_only: true }).expect("remount");
}

/// The profile and seeded bugs the `scenario` target runs with, read once from
/// `E4FUZZ_PROFILE` (default `fixed`) and `E4FUZZ_BUG` (comma-separated ids).
///
/// # Panics
/// On an unknown profile or bug id: a misconfigured fuzzing job should stop at once.
pub fn env_profile() -> crate::profile::Profile {
    use crate::profile::{Bug, BugSet, Profile};
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    *PROFILE.get_or_init(|| {
        let name = std::env::var("E4FUZZ_PROFILE").unwrap_or_else(|_| "fixed".into());
        let p = Profile::by_name(&name)
            .unwrap_or_else(|| panic!("E4FUZZ_PROFILE: unknown profile {name:?}"));
        let bugs = std::env::var("E4FUZZ_BUG").unwrap_or_default();
        let set = bugs
            .split(',')
            .filter(|b| !b.trim().is_empty())
            .fold(BugSet::NONE, |s, b| {
                s.with(Bug::parse(b).unwrap_or_else(|| panic!("E4FUZZ_BUG: unknown bug {b:?}")))
            });
        p.with_bugs(set)
    })
}

/// The crash states the [`scenario`] target checks per input (its fuzzing budget): the
/// first [`SCENARIO_CRASH_STATES`] of the [`crash_points`](crate::harness::exec::crash_points)
/// draw, which always include the end of the log. `harness::execute` draws the same sequence
/// up to its limit of 16, so these states are among the ones `e4fuzz repro` checks.
pub const SCENARIO_CRASH_STATES: usize = 2;

/// The options of the [`scenario`] target's first, budgeted run: [`SCENARIO_CRASH_STATES`]
/// crash states, every oracle on each of them, no trace, no e2fsck confirmation (it spawns a
/// process; the target confirms by replaying, see [`scenario`]).
pub fn scenario_budget() -> crate::harness::ExecOpts {
    crate::harness::ExecOpts {
        trace: false,
        max_crash_states: SCENARIO_CRASH_STATES,
        confirm: false,
        ..crate::harness::ExecOpts::default()
    }
}

/// Target `scenario`: the full harness, on a budget. The bytes decode to a valid scenario
/// (`Scenario::from_fuzz_bytes`), which runs with the profile of [`env_profile`].
///
/// **Fuzzing budget.** The scenario first runs with [`scenario_budget`]: the whole workload
/// and its live oracles, the flag scan, and every crash-state oracle (fsck included) on
/// [`SCENARIO_CRASH_STATES`] crash states instead of up to 16, without e2fsck. That is a
/// subset of what `e4fuzz repro` and `harness::execute` check for the same bytes. Only if it
/// finds something does the input run again exactly as `e4fuzz repro ARTIFACT --bug ID` runs
/// it (`harness::execute`: 16 states, `fsck`/`leak`/`checksum` findings confirmed by e2fsck),
/// and a finding of that run panics with the finding, so the fuzzer saves the input and every
/// saved artifact replays with the same first finding. A finding of the budgeted run that
/// e2fsck does not confirm is not a finding.
///
/// **Heap balance.** The per-thread walk memo (`format::blockmap`) is dropped before and after
/// each input, so that a warm execution frees all it allocates (`tests/heap_balance.rs`):
/// libFuzzer re-runs every input that ends with more allocations than frees, to look for a
/// leak, and across inputs the memo saved less than it cost under ASan.
pub fn scenario(data: &[u8]) {
    crate::format::blockmap::forget_walks();
    let mut s = crate::scenario::Scenario::from_fuzz_bytes(data);
    let p = env_profile();
    s.profile = p.name.to_string();
    s.bugs = p.bugs;
    let finding = scenario_finding(&s);
    crate::format::blockmap::forget_walks();
    if let Some(f) = finding {
        panic!("finding: {} — {}", f.oracle, f.cause);
    }
}

/// What the [`scenario`] target reports for `s`: nothing if the budgeted run
/// ([`scenario_budget`]) is clean, else the first finding of `harness::execute` (what
/// `e4fuzz repro` reports), if any.
pub fn scenario_finding(s: &crate::scenario::Scenario) -> Option<crate::harness::Finding> {
    if crate::harness::execute_with(s, &scenario_budget()).is_clean() {
        return None;
    }
    crate::harness::execute(s).findings.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift_inputs(n: usize, len: usize) -> Vec<Vec<u8>> {
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        (0..n)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn scenario_target_is_quiet_on_the_default_engine() {
        for input in xorshift_inputs(30, 400) {
            scenario(&input);
        }
    }

    #[test]
    fn the_budget_checks_a_subset_of_the_crash_points() {
        use crate::harness::exec::crash_points;
        let full = crate::harness::ExecOpts::default().max_crash_states;
        assert_eq!(full, 16);
        for n in [0, 1, 2, 5, 15, 16, 17, 40, 1000] {
            for seed in 0..20 {
                let all = crash_points(n, seed, full);
                let budget = crash_points(n, seed, SCENARIO_CRASH_STATES);
                assert_eq!(budget.len(), SCENARIO_CRASH_STATES.min(n + 1), "n {n}");
                assert_eq!(budget.last(), Some(&n), "the end is always checked");
                assert!(budget.iter().all(|k| all.contains(k)), "n {n} seed {seed}");
            }
        }
    }

    #[test]
    fn the_scenario_max_len_is_the_decoders_bound() {
        let path = format!("{}/fuzz/scenario.options", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("fuzz/scenario.options");
        let max_len: Option<usize> = text
            .lines()
            .find_map(|l| l.strip_prefix("max_len = "))
            .and_then(|v| v.trim().parse().ok());
        assert_eq!(max_len, crate::scenario::gen::size_hint().1);
    }

    fn repro(name: &str) -> crate::scenario::Scenario {
        let path = format!("{}/corpus/repros/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("repro file");
        crate::scenario::Scenario::parse_repro(&text).expect("parses")
    }

    #[test]
    fn budget_findings_are_findings_of_the_full_run() {
        let quiet = crate::harness::ExecOpts {
            confirm: false,
            ..scenario_budget()
        };
        let full = crate::harness::ExecOpts {
            max_crash_states: 16,
            ..quiet.clone()
        };
        let mut found = 0;
        for name in [
            "S1-fsck.repro",
            "S6-fsck.repro",
            "S9-stale.repro",
            "S14-data.repro",
        ] {
            let s = repro(name);
            let keys = |o| -> Vec<String> {
                let v = crate::harness::execute_with(&s, o);
                v.findings
                    .iter()
                    .map(crate::harness::Finding::key)
                    .collect()
            };
            let (budget, all) = (keys(&quiet), keys(&full));
            found += budget.len();
            assert!(
                budget.iter().all(|k| all.contains(k)),
                "{name}: {budget:?} vs {all:?}"
            );
        }
        assert!(found > 0, "the budget finds something in these repros");
    }

    #[test]
    fn the_scenario_target_reports_what_repro_reports() {
        let s = repro("S1-fsck.repro");
        let f = scenario_finding(&s).expect("S1 is found on the budget");
        assert_eq!(Some(&f), crate::harness::execute(&s).findings.first());
        assert_eq!(f.oracle, "fsck");
        let mut fixed = s.clone();
        fixed.bugs = crate::profile::BugSet::NONE;
        assert_eq!(scenario_finding(&fixed), None);
    }

    #[test]
    fn image_target_survives_random_patches() {
        for input in xorshift_inputs(40, 300) {
            image(&input);
        }
    }

    #[test]
    fn journal_target_survives_random_logs() {
        for input in xorshift_inputs(20, 4096) {
            journal(&input);
        }
    }

    #[test]
    fn indirect_map_target_holds_on_random_ops() {
        for input in xorshift_inputs(8, 200) {
            indirect_map(&input);
        }
    }
}
