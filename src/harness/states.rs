//! One crash state, checked: the pipeline every crash image goes through.
//!
//! ```text
//! crash image ─ recover ─┬─ recover again: must rewrite nothing (idempotence)   fsck
//!                        └─ mount (orphan cleanup) ─ unmount ─┬─ recover: nothing to do  fsck
//!                                                             ├─ consistency checker     fsck/checksum (e2fsck)
//!                                                             └─ files vs model          data-loss/durability/stale-data/checksum
//! ```
//!
//! A step that fails (recovery error, mount error) ends the pipeline with a finding: `checksum`
//! for a checksum error, else `fsck`. Each state runs under its own panic guard. Findings of
//! `fsck`, `leak` and `checksum` about an image are kept only if e2fsck also complains about
//! that image ([`super::consistency::confirmed`]); idempotence failures need no confirmation.

use super::consistency::{self, Check};
use super::exec::{finding, guarded};
use super::workload::OpRecord;
use super::{ExecOpts, Verdict};
use crate::crc::crc32c_raw;
use crate::dev::{Disk, LogEntry, LogOp, Zone};
use crate::fs::{Fs, MountOpts};
use crate::oracle::crash::{self, oracle_of, Problem};
use crate::oracle::fsck::FsckMemo;
use crate::oracle::model::Model;
use crate::profile::BugSet;
use crate::units::Pblk;
use std::collections::BTreeMap;

/// What the states of one execution share.
pub struct StateCtx<'a> {
    /// The reference model after the workload.
    pub model: &'a Model,
    /// The ops as they ran (to name the last op before a crash point).
    pub records: &'a [OpRecord],
    /// The engine's bugs (for the recovery-side mount too).
    pub bugs: BugSet,
    /// The execution's options.
    pub opts: &'a ExecOpts,
    /// Log index ranges `(start, end]` in which a crash may leave leaks: from the start of a
    /// migration to the commit of its last transaction (see [`leak_windows`]).
    pub leak_windows: &'a [(usize, usize)],
    /// The isolated migrations the `migrate-atomicity` oracle judges.
    pub atomic_windows: &'a [crate::oracle::atomicity::AtomicWindow],
}

/// The crash points that may leave leaks: for each migration (start log index, end log
/// index), from its start to the first commit block written at or after its end (`log_len`
/// if none: it never committed).
pub fn leak_windows(migrations: &[(usize, usize)], log: &[LogEntry]) -> Vec<(usize, usize)> {
    migrations
        .iter()
        .map(|&(start, end)| {
            let commit = log.iter().enumerate().skip(end).find(|(_, e)| {
                matches!(
                    e.op,
                    LogOp::Write {
                        fua: true,
                        zone: Zone::Journal,
                        ..
                    }
                )
            });
            (start, commit.map_or(log.len(), |(i, _)| i))
        })
        .collect()
}

/// What one state gave, besides findings.
#[derive(Default)]
pub struct StateOutcome {
    /// One line for the trace.
    pub summary: String,
    /// The last image the pipeline reached (recovered, or unmounted).
    pub image: Option<Disk>,
}

/// A problem and whether e2fsck must confirm it.
#[derive(Clone)]
struct Pending {
    problem: Problem,
    confirm: bool,
}

/// Which of the slow checks run on a state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// The consistency checker.
    pub fsck: bool,
    /// The external e2fsck as a second opinion (`--e2fsck-sample`): not clean while the
    /// checker is clean is an `e2fsck` finding.
    pub e2fsck: bool,
}

/// What the image half of the pipeline (everything but the file checks, which depend on the
/// crash point) gave for one crash image. A deterministic function of the image's content, the
/// checks run and the leak allowance, so an execution reuses it for equal images
/// ([`StateCache`]).
#[derive(Clone, Default)]
pub struct Stage {
    problems: Vec<Pending>,
    /// The last image reached (recovered, or unmounted).
    image: Option<Disk>,
    /// Whether the pipeline reached the unmounted image (the file checks need it).
    unmounted: bool,
    summary: String,
}

/// What the crash states of one execution reuse: the image halves, by (content fingerprint of
/// the crash image, fsck, e2fsck, leaks allowed), and the consistency checker's memo.
#[derive(Default)]
pub struct StateCache {
    stages: BTreeMap<(u64, bool, bool, bool), Stage>,
    /// The checker's reports by the blocks they read ([`FsckMemo`]).
    pub fsck: FsckMemo,
}

impl StateCache {
    /// An empty cache.
    pub fn new() -> StateCache {
        StateCache::default()
    }
}

/// A fingerprint of `crash`'s content at the blocks the workload wrote (`written`): the only
/// blocks where two crash images of one execution can differ.
///
/// Not a CRC over whole blocks: a block that ends with its own crc32c (superblock, extent and
/// directory blocks with `metadata_csum`) has the same CRC residue whatever it holds, so a CRC
/// of such blocks cannot tell two crash images apart. Each block contributes the crc32c of
/// all but its last 4 bytes and those 4 bytes themselves, folded in with a non-linear mix.
pub fn fingerprint(crash: &Disk, written: &[Pblk]) -> u64 {
    let mut acc = 0x9E37_79B9_7F4A_7C15u64;
    for &blk in written {
        let data = crash.peek_block(blk);
        let cut = data.len().saturating_sub(4);
        let body = u64::from(crc32c_raw(0, &data[..cut]));
        let tail = data[cut..]
            .iter()
            .fold(0u64, |t, &b| (t << 8) | u64::from(b));
        acc = mix64(acc ^ blk.0.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        acc = mix64(acc ^ (body << 32 | tail));
    }
    acc
}

/// The splitmix64 finalizer (a bijective, non-linear 64-bit mix).
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Check the crash image `crash` of log index `k` (module doc); findings go to `v`. `fp`: its
/// [`fingerprint`], to reuse the image half from `cache` (`None`: no reuse).
pub fn check_state(
    crash: &Disk,
    k: usize,
    checks: Checks,
    ctx: &StateCtx<'_>,
    v: &mut Verdict,
) -> StateOutcome {
    check_state_cached(crash, None, k, checks, ctx, v, &mut StateCache::new())
}

/// [`check_state`] with a cache of image halves.
pub fn check_state_cached(
    crash: &Disk,
    fp: Option<u64>,
    k: usize,
    checks: Checks,
    ctx: &StateCtx<'_>,
    v: &mut Verdict,
    cache: &mut StateCache,
) -> StateOutcome {
    let leaks_ok = ctx.leak_windows.iter().any(|&(s, e)| s < k && k <= e);
    let key = fp.map(|fp| (fp, checks.fsck, checks.e2fsck, leaks_ok));
    let stage = match key.and_then(|key| cache.stages.get(&key)) {
        Some(stage) => stage.clone(),
        None => {
            let mut stage = Stage::default();
            let memo = &mut cache.fsck;
            if let Err(msg) = guarded(|| image_half(crash, checks, leaks_ok, ctx, &mut stage, memo))
            {
                stage.problems.push(Pending {
                    problem: Problem {
                        oracle: "panic",
                        cause: msg,
                    },
                    confirm: false,
                });
            }
            if let Some(key) = key {
                cache.stages.insert(key, stage.clone());
            }
            stage
        }
    };
    let mut found = stage.problems;
    if let (true, Some(img)) = (stage.unmounted, &stage.image) {
        match guarded(|| crash::check_files(img.clone(), ctx.model, k, ctx.atomic_windows)) {
            Ok(problems) => found.extend(problems.into_iter().map(|problem| Pending {
                confirm: matches!(problem.oracle, "fsck" | "checksum"),
                problem,
            })),
            Err(msg) => found.push(Pending {
                problem: Problem {
                    oracle: "panic",
                    cause: msg,
                },
                confirm: false,
            }),
        }
    }
    let mut out = StateOutcome {
        summary: stage.summary,
        image: stage.image,
    };
    report(found, crash, k, ctx, v, &mut out);
    if out.summary.is_empty() {
        out.summary = "ok".into();
    }
    out
}

/// Confirm (where needed) and record the problems of one state.
fn report(
    found: Vec<Pending>,
    crash: &Disk,
    k: usize,
    ctx: &StateCtx<'_>,
    v: &mut Verdict,
    out: &mut StateOutcome,
) {
    let at = last_op_before(ctx.records, k);
    for p in found {
        let f = finding(
            p.problem.oracle,
            at,
            Some(k as u64),
            p.problem.cause.clone(),
        );
        if v.findings.iter().any(|g| g.key() == f.key()) {
            continue; // found (and confirmed) at an earlier state already
        }
        let image = out.image.as_ref().unwrap_or(crash);
        if p.confirm && ctx.opts.confirm && !consistency::confirmed(p.problem.oracle, image) {
            out.summary
                .push_str(&format!("; unconfirmed by e2fsck: {}", p.problem.cause));
            continue;
        }
        v.push(f);
    }
}

/// The (thread, index) of the last op that started before log index `k`.
fn last_op_before(records: &[OpRecord], k: usize) -> Option<(usize, usize)> {
    records
        .iter()
        .rev()
        .find(|r| r.origin.allowed_at(k))
        .map(|r| (r.thread, r.index))
}

/// Recover, recover again, mount, unmount, recover again, run the checkers.
fn image_half(
    crash: &Disk,
    checks: Checks,
    leaks_ok: bool,
    ctx: &StateCtx<'_>,
    st: &mut Stage,
    memo: &mut FsckMemo,
) {
    let mut push = |oracle: &'static str, cause: String, confirm: bool| {
        st.problems.push(Pending {
            problem: Problem { oracle, cause },
            confirm,
        })
    };
    let mut d = crash.clone();
    match crate::jbd2::recover(&mut d) {
        Err(e) => return push(oracle_of(&e), format!("recovery: {e}"), true),
        Ok(info) => {
            st.summary = if info.replayed {
                format!("replayed {} transaction(s)", info.transactions())
            } else {
                "journal clean".into()
            };
            if let Some(e) = info.error {
                return push(oracle_of(&e), format!("recovery: {e}"), true);
            }
        }
    }
    if let Some(why) = rewrites(&d) {
        push("fsck", format!("recovery is not idempotent: {why}"), false);
    }
    st.image = Some(d.clone());
    let mut fs = match Fs::mount(d, MountOpts::default()) {
        Ok(fs) => fs,
        Err(e) => return push(oracle_of(&e), format!("mount after recovery: {e}"), true),
    };
    fs.bugs = ctx.bugs;
    let img = match fs.unmount() {
        Ok(d) => d,
        Err(e) => return push(oracle_of(&e), format!("unmount after recovery: {e}"), true),
    };
    if let Some(why) = rewrites(&img) {
        push(
            "fsck",
            format!("after a clean unmount, recovery {why}"),
            false,
        );
    }
    // An I/O error recorded by ext4_error() (EXT4_ERROR_FS, kept across replay as the kernel
    // and e2fsck keep it): ext4 promises only that the next boot runs e2fsck, so the
    // consistency oracles do not apply to this state; the data oracles still do.
    let errors_recorded = [crash, &img]
        .into_iter()
        .chain(st.image.as_ref())
        .any(crash::errors_recorded);
    let (ours, spotless) = if checks.fsck && !errors_recorded {
        consistency::check(&img, leaks_ok, memo)
    } else {
        (Check::Unavailable("not run".into()), false)
    };
    if let Check::Problems { oracle, cause } = &ours {
        push(oracle, cause.clone(), true);
    }
    if checks.e2fsck && spotless {
        if let Check::Problems { cause, .. } = consistency::e2fsck_check(&img) {
            push("e2fsck", format!("our checker is clean but {cause}"), false);
        }
    }
    st.image = Some(img);
    st.unmounted = true;
}

/// Recover a copy of `d`: `None` if that changes nothing, else what it changed.
fn rewrites(d: &Disk) -> Option<String> {
    let mut again = d.clone();
    again.clear_log();
    if let Err(e) = crate::jbd2::recover(&mut again) {
        return Some(format!("fails: {e}"));
    }
    let changed: Option<Pblk> = again
        .written_blocks()
        .find(|(b, data)| d.peek_block(*b)[..] != data[..])
        .map(|(b, _)| b);
    changed.map(|b| format!("rewrote block {b}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mkfs::{mkfs, MkfsOpts};
    use crate::oracle::model::Origin;
    use std::collections::BTreeSet;

    #[test]
    fn fingerprints_tell_self_checksummed_blocks_apart() {
        // Blocks ending with their own crc32c (any seed) have one CRC residue; the
        // fingerprint must still see every byte.
        let block = |fill: u8, seed: u32| {
            let mut b = vec![fill; 1024];
            let c = crc32c_raw(seed, &b[..1020]);
            crate::bytes::write_u32le(&mut b, 1020, c);
            b
        };
        let mut seen = BTreeSet::new();
        for (fill, seed) in [(1, 7), (2, 7), (1, 8), (3, 0xFFFF_FFFF)] {
            let mut d = Disk::new(1024, 16);
            d.write(Pblk(3), &block(fill, seed)).unwrap();
            assert!(
                seen.insert(fingerprint(&d, &[Pblk(3)])),
                "fill {fill} seed {seed}"
            );
        }
        // The block number counts too, and the same content gives the same fingerprint.
        let mut d = Disk::new(1024, 16);
        d.write(Pblk(3), &block(1, 7)).unwrap();
        d.write(Pblk(4), &block(2, 7)).unwrap();
        let mut e = Disk::new(1024, 16);
        e.write(Pblk(3), &block(2, 7)).unwrap();
        e.write(Pblk(4), &block(1, 7)).unwrap();
        let w = [Pblk(3), Pblk(4)];
        assert_ne!(fingerprint(&d, &w), fingerprint(&e, &w));
        assert_eq!(fingerprint(&d, &w), fingerprint(&d.clone(), &w));
    }

    #[test]
    fn a_recovered_image_needs_no_more_recovery() {
        let mut fs = Fs::mount(
            mkfs(&MkfsOpts {
                size_bytes: 4 << 20,
                journal_blocks: Some(1024),
                extents: false,
                ..MkfsOpts::default()
            })
            .unwrap(),
            MountOpts::default(),
        )
        .unwrap();
        let ino = fs.create("/a", 0o644).unwrap();
        fs.write_file(ino, 0, &[7; 3000]).unwrap();
        fs.fsync(ino).unwrap();
        let mut crash = fs.dev.crash_image(&crate::dev::CrashFates::AllLost);
        // The crash image needs recovery: recovering it writes.
        assert!(rewrites(&crash).is_some());
        crate::jbd2::recover(&mut crash).unwrap();
        assert_eq!(rewrites(&crash), None);
    }

    #[test]
    fn leak_windows_end_at_the_next_commit_block() {
        let mut d = crate::dev::Disk::new(1024, 64);
        d.set_zone_map(crate::dev::ZoneMap::new().with(Pblk(32), 32, Zone::Journal));
        let b = vec![1u8; 1024];
        for blk in [1, 33, 2] {
            d.write(Pblk(blk), &b).unwrap(); // 0, 1, 2
        }
        d.flush().unwrap(); // 3
        d.write_fua(Pblk(34), &b).unwrap(); // 4: a commit block
        d.write(Pblk(3), &b).unwrap(); // 5
        let log = d.log();
        assert_eq!(leak_windows(&[(0, 2)], log), vec![(0, 4)]);
        assert_eq!(leak_windows(&[(1, 5)], log), vec![(1, 6)]);
        assert_eq!(leak_windows(&[], log), vec![]);
    }

    #[test]
    fn the_last_op_before_a_crash_point() {
        let rec = |t, i, s| OpRecord {
            thread: t,
            index: i,
            op: crate::scenario::Op::Sync,
            origin: Origin {
                start_log: Some(s),
                seq: 1,
                start_done: 0,
            },
            end_log: s,
            result: String::new(),
            migrate_map: None,
        };
        let records = [rec(0, 0, 0), rec(1, 0, 5), rec(0, 1, 9)];
        assert_eq!(last_op_before(&records, 0), None);
        assert_eq!(last_op_before(&records, 6), Some((1, 0)));
        assert_eq!(last_op_before(&records, 10), Some((0, 1)));
    }
}
