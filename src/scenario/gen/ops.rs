//! Drawing one op: the offered kinds (swarm switch on *and* precondition met), then the
//! operands, chosen to hit the interesting block ranges.
//!
//! Offsets aim at the indirect map's structure (for 1 KiB blocks: direct blocks 0–11, IND
//! 12–267, DIND 268–65803, TIND up to 16,843,019, i.e. byte offsets up to ~17 GB, sparse),
//! at the boundaries between those ranges, and at blocks written before ("hot" blocks), so
//! that overwrites, mmap stores into holes next to data, and punches over data are common.

use super::draw::{Draw, Feature, Swarm};
use super::scope::{Limits, Mapping, Scope};
use crate::scenario::{MigrateTo, Op};

/// Weight of each op kind among the offered ones (data-path ops and migration dominate).
const WEIGHTS: [(Feature, u8); 16] = [
    (Feature::Create, 1),
    (Feature::Write, 3),
    (Feature::MmapWrite, 3),
    (Feature::Read, 1),
    (Feature::Fiemap, 1),
    (Feature::Truncate, 1),
    (Feature::Punch, 1),
    (Feature::Fallocate, 1),
    (Feature::Fsync, 1),
    (Feature::Sync, 1),
    (Feature::Unlink, 1),
    (Feature::Writeback, 1),
    (Feature::Commit, 1),
    (Feature::MigrateToExtents, 2),
    (Feature::MigrateToIndirect, 1),
    (Feature::Checkpoint, 1),
];
/// Largest write or read, in blocks.
pub(crate) const WRITE_BLOCKS_MAX: u64 = 4;
/// Largest `fallocate`, in blocks.
const FALLOCATE_BLOCKS_MAX: u64 = 16;
/// One migration in this many goes to any file and direction (EINVAL/EOPNOTSUPP paths).
const MIGRATE_ANY_ONE_IN: u8 = 16;
/// Most bytes one op consumes (kind, operands): bounds `size_hint`.
pub(crate) const OP_BYTES_MAX: usize = 16;
/// Most bytes [`draw_off`] consumes.
pub(crate) const OFF_BYTES_MAX: usize = 7;

/// Draw one op valid for the scope's thread, or `None` if nothing is offered.
pub(crate) fn draw_op(d: &mut Draw<'_>, swarm: Swarm, scope: &Scope) -> Option<Op> {
    let offered = offered(swarm, scope);
    let kind = d.pick(&offered)?;
    let deep = swarm.on(Feature::Deep);
    let any = scope.files(|_, _| true);
    match kind {
        Feature::Create => d.pick(&scope.creatable()).map(|file| Op::Create { file }),
        Feature::Write => draw_write(d, scope, deep, &any),
        Feature::MmapWrite => draw_mmap(d, scope),
        Feature::Read => draw_read(d, scope, deep, &any),
        Feature::Fiemap => pick_file(d, scope, &any).map(|file| Op::Fiemap { file }),
        Feature::Truncate => draw_truncate(d, scope, deep, &any),
        Feature::Punch => draw_punch(d, scope, deep, &any),
        Feature::Fallocate => draw_fallocate(d, scope, deep),
        Feature::Fsync => pick_file(d, scope, &any).map(|file| Op::Fsync { file }),
        Feature::Sync => Some(Op::Sync),
        Feature::Unlink => {
            pick_file(d, scope, &scope.files(|f, _| scope.owns(f))).map(|file| Op::Unlink { file })
        }
        Feature::Writeback => Some(Op::Writeback),
        Feature::Commit => Some(Op::Commit),
        Feature::Checkpoint => Some(Op::Checkpoint),
        Feature::MigrateToExtents | Feature::MigrateToIndirect => draw_migrate(d, scope, kind),
        Feature::Deep | Feature::CrashMid | Feature::Faults | Feature::Focus => None,
    }
}

/// The kinds whose switch is on and whose precondition holds, each repeated by its weight.
fn offered(swarm: Swarm, scope: &Scope) -> Vec<Feature> {
    let mut out = Vec::new();
    for (kind, weight) in WEIGHTS {
        if swarm.on(kind) && offerable(kind, scope) {
            out.extend(std::iter::repeat_n(kind, usize::from(weight)));
        }
    }
    out
}

fn offerable(kind: Feature, scope: &Scope) -> bool {
    let exists = |pred: &dyn Fn(u8, &super::scope::FileView) -> bool| {
        !scope.files(|f, v| pred(f, v)).is_empty()
    };
    match kind {
        Feature::Create => !scope.creatable().is_empty(),
        Feature::MmapWrite => exists(&|f, _| scope.mmap_bound(f) > 0),
        Feature::Fallocate => exists(&|_, v| v.mapping == Mapping::Extents),
        Feature::Unlink => exists(&|f, _| scope.owns(f)),
        Feature::MigrateToExtents => {
            scope.extents_fs() && exists(&|_, v| v.mapping == Mapping::Indirect)
        }
        Feature::MigrateToIndirect => exists(&|_, v| small_extent_file(&scope.limits, v)),
        Feature::Sync | Feature::Writeback | Feature::Commit | Feature::Checkpoint => true,
        _ => exists(&|_, _| true),
    }
}

/// An extent file that `chattr -e` can convert: it fits in the direct blocks.
fn small_extent_file(l: &Limits, v: &super::scope::FileView) -> bool {
    v.mapping == Mapping::Extents && v.size <= l.bounds[0] * l.bs
}

/// The file of an op, one of `files`: with the `Focus` switch, three times in four the file
/// the thread's last op named ([`Scope::focus`]) when it is one of several `files`, so that one
/// thread's ops meet on one file (a write into a hole, a truncate below it, the file grown
/// again: U3's sequence); else any of `files`.
fn pick_file(d: &mut Draw<'_>, scope: &Scope, files: &[u8]) -> Option<u8> {
    if files.len() > 1 {
        if let Some(f) = scope.focus().filter(|f| files.contains(f)) {
            if d.int(0u8..=3) != 0 {
                return Some(f);
            }
        }
    }
    d.pick(files)
}

/// A logical block: direct, IND, DIND, TIND (DIND/TIND only when `deep`), a range boundary,
/// or next to a hot block. At most 5 bytes.
fn draw_block(d: &mut Draw<'_>, l: &Limits, deep: bool, hot: &[u64]) -> u64 {
    let [ind, dind, tind, end] = l.bounds;
    match d.int(0u8..=9) {
        3 | 4 => d.int(ind..=dind - 1),
        5 if deep => d.int(dind..=tind - 1),
        6 if deep => d.int(tind..=end - 1),
        7 => match d.int(0..=if deep { 3usize } else { 0 }) {
            3 => end - 1 - d.int(0..=2),
            k => l.bounds[k] - 2 + d.int(0..=3),
        },
        8 | 9 if !hot.is_empty() => {
            let h = hot[d.index(hot.len())];
            (h + d.int(0..=2)).saturating_sub(1)
        }
        _ => d.int(0..=ind - 1),
    }
}

/// A byte offset: a block from [`draw_block`], block-aligned half the time, else at a random
/// byte inside it; always below the maximum file size. At most [`OFF_BYTES_MAX`] bytes.
pub(crate) fn draw_off(d: &mut Draw<'_>, l: &Limits, deep: bool, hot: &[u64]) -> u64 {
    let blk = draw_block(d, l, deep, hot);
    let v = d.int(0..=2 * l.bs - 1);
    let intra = v.saturating_sub(l.bs);
    (blk * l.bs + intra).min(l.max_bytes() - 1)
}

/// A length in `1..=max`, clipped so that `off + len` stays below the maximum file size.
fn draw_len(d: &mut Draw<'_>, l: &Limits, off: u64, max: u64) -> u64 {
    d.int(1..=max).min(l.max_bytes() - off)
}

fn hot(scope: &Scope, file: u8) -> Vec<u64> {
    scope.view(file).map(|v| v.hot.clone()).unwrap_or_default()
}

fn draw_write(d: &mut Draw<'_>, scope: &Scope, deep: bool, any: &[u8]) -> Option<Op> {
    let l = scope.limits;
    let file = pick_file(d, scope, any)?;
    let off = draw_off(d, &l, deep, &hot(scope, file));
    let len = draw_len(d, &l, off, WRITE_BLOCKS_MAX * l.bs);
    let tag = d.int(0..=u8::MAX);
    let len = u32::try_from(len).ok()?;
    Some(Op::Write {
        file,
        off,
        len,
        tag,
    })
}

/// An mmap store inside one block and below the file's safe `i_size` (next to a hot block half
/// the time: a store into a hole allocates, one onto data does not).
fn draw_mmap(d: &mut Draw<'_>, scope: &Scope) -> Option<Op> {
    let bs = scope.limits.bs;
    let file = pick_file(d, scope, &scope.files(|f, _| scope.mmap_bound(f) > 0))?;
    let bound = scope.mmap_bound(file);
    let last = (bound - 1) / bs;
    let hot: Vec<u64> = hot(scope, file)
        .into_iter()
        .filter(|&b| b <= last)
        .collect();
    let blk = if !hot.is_empty() && d.int(0u8..=1) == 0 {
        let h = hot[d.index(hot.len())];
        (h + d.int(0..=2)).saturating_sub(1).min(last)
    } else {
        d.int(0..=last)
    };
    let end = ((blk + 1) * bs).min(bound);
    let off = d.int(blk * bs..=end - 1);
    let len = u32::try_from(d.int(1..=end - off)).ok()?;
    let tag = d.int(0..=u8::MAX);
    Some(Op::MmapWrite {
        file,
        off,
        len,
        tag,
    })
}

fn draw_read(d: &mut Draw<'_>, scope: &Scope, deep: bool, any: &[u8]) -> Option<Op> {
    let l = scope.limits;
    let file = pick_file(d, scope, any)?;
    let off = draw_off(d, &l, deep, &hot(scope, file));
    let len = u32::try_from(draw_len(d, &l, off, 2 * WRITE_BLOCKS_MAX * l.bs)).ok()?;
    Some(Op::Read { file, off, len })
}

/// A new size: 0, half, a drawn offset (often a sparse extension), or a little past the end;
/// never below the floor of a shared file.
fn draw_truncate(d: &mut Draw<'_>, scope: &Scope, deep: bool, any: &[u8]) -> Option<Op> {
    let l = scope.limits;
    let file = pick_file(d, scope, any)?;
    let size = scope.view(file)?.size;
    let new = match d.int(0u8..=4) {
        0 => 0,
        1 => size / 2,
        2 | 3 => draw_off(d, &l, deep, &hot(scope, file)),
        _ => size.saturating_add(d.int(0..=2 * l.bs)),
    };
    let size = new.clamp(scope.truncate_floor(file), l.max_bytes());
    Some(Op::Truncate { file, size })
}

/// A hole punch: a few blocks, or long enough to cross from IND into DIND (and, when `deep`,
/// through most of a DIND subtree): the ranges `ext4_ind_remove_space` gets wrong.
fn draw_punch(d: &mut Draw<'_>, scope: &Scope, deep: bool, any: &[u8]) -> Option<Op> {
    let l = scope.limits;
    let file = pick_file(d, scope, any)?;
    let off = draw_off(d, &l, deep, &hot(scope, file));
    let a = l.per_block;
    let max_blocks = match d.int(0u8..=3) {
        0 | 1 => WRITE_BLOCKS_MAX,
        3 if deep => a * a + a,
        _ => a + 16,
    };
    let len = draw_len(d, &l, off, max_blocks * l.bs);
    Some(Op::Punch { file, off, len })
}

fn draw_fallocate(d: &mut Draw<'_>, scope: &Scope, deep: bool) -> Option<Op> {
    let l = scope.limits;
    let file = pick_file(d, scope, &scope.files(|_, v| v.mapping == Mapping::Extents))?;
    let off = draw_off(d, &l, deep, &hot(scope, file));
    let len = draw_len(d, &l, off, FALLOCATE_BLOCKS_MAX * l.bs);
    Some(Op::Fallocate { file, off, len })
}

/// `chattr +e` on an indirect file, `chattr -e` on a small extent file; rarely any file, any
/// direction.
fn draw_migrate(d: &mut Draw<'_>, scope: &Scope, kind: Feature) -> Option<Op> {
    if d.one_in(MIGRATE_ANY_ONE_IN) {
        let file = pick_file(d, scope, &scope.files(|_, _| true))?;
        let to = if d.int(0u8..=1) == 0 {
            MigrateTo::Extents
        } else {
            MigrateTo::Indirect
        };
        return Some(Op::Migrate { file, to });
    }
    let l = scope.limits;
    let (files, to) = if kind == Feature::MigrateToExtents {
        let files = scope.files(|_, v| v.mapping == Mapping::Indirect);
        (files, MigrateTo::Extents)
    } else {
        let files = scope.files(|_, v| small_extent_file(&l, v));
        (files, MigrateTo::Indirect)
    };
    pick_file(d, scope, &files).map(|file| Op::Migrate { file, to })
}
