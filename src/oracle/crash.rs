//! The crash-state oracles `data-loss`, `durability` and `stale-data`: judge the files `f0`..`f7`
//! of a recovered image against the reference model ([`super::model`]) for a crash at device
//! log index `k`.
//!
//! The image is the one left after recovery, mount (orphan cleanup) and a clean unmount, so
//! everything is at its home location. It is read with the engine's read-only mount for names
//! and inodes (so a checksum failure while reading is seen as the kernel would see it), and with
//! the independent [`blockmap`] walker and raw block reads for the mapping and the data (so a
//! bug in the engine's mapping code cannot hide itself, and a sparse 16 GiB file costs only
//! its mapped blocks).
//!
//! # What it verifies, per file
//!
//! | check | oracle |
//! |---|---|
//! | exists only if some op the crash may show (or the template) made it exist; missing only if one removed it | `data-loss` |
//! | `i_size` is a size the file had | `data-loss` |
//! | every 512-byte sector of every visible block equals the same sector of a version of that block the crash may show, or zeroes where the block may be a hole (sectors, because a torn overwrite legitimately mixes two versions) | `data-loss` |
//! | a file made durable (fsync of it, or sync) by an op that ended before `k`, and changed by no op that started after that and before `k`, exists or not, with the size and every byte it had then | `durability` |
//! | no visible byte range holds the template's poison (a block the file never wrote) | `stale-data` (before the two above) |
//! | reading fails with a checksum error | `checksum`; other read errors: `fsck` |
//!
//! # What it does not verify
//!
//! Bytes past `i_size` (never visible), blocks mapped past `i_size` (fsck's business), files
//! other than `f0`..`f7`, and the content of tainted files ([`super::model`]) beyond the poison.

use super::atomicity::{self, AtomicWindow};
use super::model::{Expect, FileState, Model};
use crate::dev::{Block, Disk};
use crate::error::Error;
use crate::format::blockmap::{self, BlockMap};
use crate::format::inode::EXT4_ROOT_INO;
use crate::fs::{Fs, MountOpts};
use crate::harness::pattern;
use crate::scenario::MAX_FILES;
use crate::units::{Ino, Pblk};
use std::collections::BTreeSet;

/// Granularity of a torn write.
const SECTOR: usize = crate::dev::SECTOR_SIZE as usize;

/// One problem found in a crash state: the oracle's name and a one-line cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The oracle (`"data-loss"`, `"durability"`, `"stale-data"`, `"checksum"`, `"fsck"`).
    pub oracle: &'static str,
    /// One line.
    pub cause: String,
}

impl Problem {
    pub(crate) fn new(oracle: &'static str, cause: String) -> Problem {
        Problem { oracle, cause }
    }
}

/// The oracle an engine error found while reading a recovered image belongs to.
pub fn oracle_of(e: &Error) -> &'static str {
    match e {
        Error::Corrupt(k) if k.is_checksum() => "checksum",
        _ => "fsck",
    }
}

/// One file as found on the image.
struct Found {
    ino: Ino,
    size: u64,
    map: BlockMap,
}

/// Judge every scenario file of the unmounted, recovered image `dev` against `model` for a
/// crash at log index `k`. Returns the problems (at most one per file), in file order.
pub fn check_files(dev: Disk, model: &Model, k: usize, windows: &[AtomicWindow]) -> Vec<Problem> {
    let mut fs = match Fs::mount(dev, MountOpts { read_only: true }) {
        Ok(fs) => fs,
        Err(e) => {
            let cause = format!("read-only mount of the recovered image: {e}");
            return vec![Problem::new(oracle_of(&e), cause)];
        }
    };
    let entries = match fs.readdir(Ino(EXT4_ROOT_INO)) {
        Ok(v) => v,
        Err(e) => return vec![Problem::new(oracle_of(&e), format!("reading /: {e}"))],
    };
    let mut out = Vec::new();
    for file in 0..MAX_FILES {
        let name = format!("f{file}");
        let ino = entries
            .iter()
            .find(|e| e.name == name.as_bytes())
            .map(|e| Ino(e.inode));
        let found = match ino.map(|ino| find(&mut fs, ino)).transpose() {
            Ok(f) => f,
            Err(e) => {
                out.push(Problem::new(oracle_of(&e), format!("reading {name}: {e}")));
                continue;
            }
        };
        let problem = judge(&fs, model.expect(file, k), file, found.as_ref(), k)
            .or_else(|| atomicity::judge(windows, file, k, found.as_ref().map(|f| &f.map)));
        out.extend(problem);
    }
    out
}

/// Read inode `ino` and walk its block map.
fn find(fs: &mut Fs, ino: Ino) -> crate::Result<Found> {
    let raw = fs.iget(ino)?.raw.clone();
    let seed = fs.sb.metadata_csum().then(|| fs.inode(ino).csum_seed);
    let dev = &fs.dev;
    let mut read = |b: Pblk| Ok(dev.peek_block(b));
    let map = blockmap::walk_inode(&fs.sb, ino, &raw, seed, &mut read)?;
    Ok(Found {
        ino,
        size: raw.i_size,
        map,
    })
}

/// The judgement of one file (module doc table), first problem only.
fn judge(fs: &Fs, e: Expect<'_>, file: u8, found: Option<&Found>, k: usize) -> Option<Problem> {
    let name = format!("f{file}");
    if let Some(f) = found {
        if let Some(p) = stale(fs, e.model(), &name, f) {
            return Some(p);
        }
    }
    if e.tainted {
        return None;
    }
    if let Some(want) = e.durable {
        return durable(fs, e.model(), &name, want.as_ref(), found, k);
    }
    let Some(f) = found else {
        return (!e.may_be_absent).then(|| {
            Problem::new(
                "data-loss",
                format!("{name} is missing after a crash at {k}"),
            )
        });
    };
    if !e.may_exist {
        let cause = format!(
            "{name} (inode {}) exists after a crash at {k} but was never created",
            f.ino
        );
        return Some(Problem::new("data-loss", cause));
    }
    if !e.size_ok(f.size) {
        let cause = format!(
            "{name} has size {} after a crash at {k}: never its size",
            f.size
        );
        return Some(Problem::new("data-loss", cause));
    }
    versions(fs, &e, file, f, k)
}

/// The visible logical blocks of `f` worth looking at: the mapped ones and `extra`.
fn visible_blocks(fs: &Fs, f: &Found, extra: impl Iterator<Item = u32>) -> BTreeSet<u32> {
    let nvis = f.size.div_ceil(u64::from(fs.block_size()));
    let mut set: BTreeSet<u32> = extra.filter(|&l| u64::from(l) < nvis).collect();
    for r in &f.map.runs {
        let end = (u64::from(r.lblk) + u64::from(r.len)).min(nvis);
        for l in u64::from(r.lblk)..end {
            set.insert(l as u32);
        }
    }
    set
}

/// The content of logical block `lblk` on the image (zeroes for holes and unwritten blocks)
/// and how many of its bytes are visible; `None` if it is mapped to a block whose content is
/// undefined (its last write failed, see `oracle::model`).
fn content(fs: &Fs, model: &Model, f: &Found, lblk: u32) -> Option<(Block, usize)> {
    let bs = u64::from(fs.block_size());
    let vis = (f.size - u64::from(lblk) * bs).min(bs) as usize;
    let data = match f.map.lookup(lblk) {
        Some((pblk, _)) if model.is_undefined(pblk) => return None,
        Some((pblk, false)) => fs.dev.peek_block(Pblk(pblk)),
        // Past the end of the device: the shared zero block.
        _ => fs.dev.peek_block(Pblk(u64::MAX)),
    };
    Some((data, vis))
}

/// `stale-data`: poison in any visible mapped byte.
fn stale(fs: &Fs, model: &Model, name: &str, f: &Found) -> Option<Problem> {
    for lblk in visible_blocks(fs, f, std::iter::empty()) {
        let Some((data, vis)) = content(fs, model, f, lblk) else {
            continue;
        };
        for s in (0..vis).step_by(SECTOR) {
            let sector = &data[s..(s + SECTOR).min(vis)];
            if pattern::has_poison(sector, s) {
                let cause = format!(
                    "{name} block {lblk} bytes {s}..{}: {} (bytes the file never wrote)",
                    s + sector.len(),
                    pattern::describe(sector, s)
                );
                return Some(Problem::new("stale-data", cause));
            }
        }
    }
    None
}

/// `durability`: exactly the durable state.
fn durable(
    fs: &Fs,
    model: &Model,
    name: &str,
    want: Option<&FileState>,
    found: Option<&Found>,
    k: usize,
) -> Option<Problem> {
    let bad = |what: String| Some(Problem::new("durability", format!("{name} {what}")));
    let (want, f) = match (want, found) {
        (None, None) => return None,
        (None, Some(f)) => {
            return bad(format!(
                "(inode {}) exists after a crash at {k}, but its unlink was made durable",
                f.ino
            ))
        }
        (Some(_), None) => {
            return bad(format!(
                "was made durable but is missing after a crash at {k}"
            ))
        }
        (Some(w), Some(f)) => (w, f),
    };
    if want.size != f.size {
        return bad(format!(
            "has size {} after a crash at {k}, {} was made durable",
            f.size, want.size
        ));
    }
    for lblk in visible_blocks(fs, f, want.blocks.keys().copied()) {
        let Some((data, vis)) = content(fs, model, f, lblk) else {
            continue;
        };
        let zero = fs.dev.peek_block(Pblk(u64::MAX));
        let expect = want.blocks.get(&lblk).unwrap_or(&zero);
        if data[..vis] == expect[..vis] {
            continue; // memcmp first: the byte search only runs on a mismatch
        }
        if let Some(at) = (0..vis).find(|&i| data[i] != expect[i]) {
            let s = at / 8 * 8;
            let end = (s + 8).min(vis);
            return bad(format!(
                "block {lblk} byte {at} after a crash at {k}: {}, durable was {}",
                pattern::describe(&data[s..end], s),
                pattern::describe(&expect[s..end], s)
            ));
        }
    }
    None
}

/// `data-loss`: every visible sector is a sector of an allowed version (or allowed zeroes).
fn versions(fs: &Fs, e: &Expect<'_>, file: u8, f: &Found, k: usize) -> Option<Problem> {
    let name = format!("f{file}");
    for lblk in visible_blocks(fs, f, e.known_blocks()) {
        let Some((data, vis)) = content(fs, e.model(), f, lblk) else {
            continue;
        };
        let (zero_ok, allowed) = e.block(lblk);
        for s in (0..vis).step_by(SECTOR) {
            let end = (s + SECTOR).min(vis);
            let got = &data[s..end];
            let ok = (zero_ok && crate::bytes::is_zero(got))
                || allowed.iter().any(|v| &v[s..end] == got);
            if !ok {
                let cause = format!(
                    "{name} block {lblk} bytes {s}..{end} after a crash at {k}: {}, none of \
                     {} allowed versions{}",
                    pattern::describe(got, s),
                    allowed.len(),
                    if zero_ok { " or a hole" } else { "" }
                );
                // Bytes of another file (or another offset) were never written here.
                let at = u64::from(lblk) * u64::from(fs.block_size()) + s as u64;
                let oracle = if pattern::foreign(got, s, file, at) {
                    "stale-data"
                } else {
                    "data-loss"
                };
                return Some(Problem::new(oracle, cause));
            }
        }
    }
    None
}

/// Whether the superblock of `d` records errors (`EXT4_ERROR_FS`).
pub fn errors_recorded(d: &Disk) -> bool {
    use crate::format::superblock::{Superblock, EXT4_ERROR_FS, SUPERBLOCK_OFFSET};
    let bs = u64::from(d.block_size());
    let (blk, off) = (SUPERBLOCK_OFFSET / bs, (SUPERBLOCK_OFFSET % bs) as usize);
    let data = d.peek_block(Pblk(blk));
    Superblock::parse(&data[off..off + 1024]).is_ok_and(|sb| sb.s_state & EXT4_ERROR_FS != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mkfs::{mkfs, MkfsOpts};
    use crate::oracle::model::{Origin, Outcome};
    use crate::scenario::{FileSetup, Op};

    fn origin(seq: u32, start_log: usize) -> Origin {
        Origin {
            start_log: Some(start_log),
            seq,
            start_done: seq - 1,
        }
    }

    /// An image with f1 (setup: 1500 bytes of tag 4) and the model of it.
    fn image() -> (Disk, Model) {
        let opts = MkfsOpts {
            size_bytes: 4 << 20,
            extents: false,
            journal_blocks: Some(1024),
            ..MkfsOpts::default()
        };
        let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
        let ino = fs.create("/f1", 0o644).unwrap();
        fs.write_file(ino, 0, &pattern::data(1, 4, 0, 1500))
            .unwrap();
        let setup = vec![FileSetup {
            file: 1,
            indirect: true,
            writes: vec![(0, 1500, 4)],
        }];
        (fs.unmount().unwrap(), Model::new(1024, &setup))
    }

    /// The physical block of f1's logical block `lblk`.
    fn pblk_of(dev: &Disk, lblk: u32) -> Pblk {
        let mut fs = Fs::mount(dev.clone(), MountOpts { read_only: true }).unwrap();
        let ino = fs.resolve("/f1").unwrap();
        Pblk(find(&mut fs, ino).unwrap().map.lookup(lblk).unwrap().0)
    }

    #[test]
    fn a_faithful_image_passes() {
        let (dev, model) = image();
        assert_eq!(check_files(dev, &model, 0, &[]), vec![]);
    }

    #[test]
    fn a_corrupted_data_block_is_data_loss() {
        let (mut dev, model) = image();
        let b = pblk_of(&dev, 1);
        let mut data = dev.peek_block(b).to_vec();
        data[300] ^= 1;
        dev.write(b, &data).unwrap();
        let p = check_files(dev, &model, 0, &[]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].oracle, "data-loss");
        assert!(
            p[0].cause
                .starts_with("f1 block 1 bytes 0..476 after a crash at 0: data of f1"),
            "{}",
            p[0].cause
        );
    }

    #[test]
    fn poison_in_a_file_block_is_stale_data() {
        let (mut dev, model) = image();
        let b = pblk_of(&dev, 0);
        let mut data = dev.peek_block(b).to_vec();
        data[512..1024].copy_from_slice(&pattern::poison_block(b.0, 1024)[512..]);
        dev.write(b, &data).unwrap();
        let p = check_files(dev, &model, 0, &[]);
        assert_eq!(
            p,
            vec![Problem::new(
                "stale-data",
                format!(
                    "f1 block 0 bytes 512..1024: poison of block {} (bytes the file never wrote)",
                    b.0
                )
            )]
        );
    }

    #[test]
    fn a_torn_overwrite_is_allowed_but_a_lost_fsync_is_not() {
        let (mut dev, mut model) = image();
        let w = Op::Write {
            file: 1,
            off: 0,
            len: 1024,
            tag: 9,
        };
        model.apply(&w, origin(1, 0), 3, Outcome::Ok);
        // Sector 0 of the new version, sector 1 of the old one: a torn write.
        let b = pblk_of(&dev, 0);
        let mut data = dev.peek_block(b).to_vec();
        data[..512].copy_from_slice(&pattern::data(1, 9, 0, 512));
        dev.write(b, &data).unwrap();
        assert_eq!(check_files(dev.clone(), &model, 3, &[]), vec![]);
        // Before the write started, the new sector is not allowed.
        assert_eq!(
            check_files(dev.clone(), &model, 0, &[])[0].oracle,
            "data-loss"
        );
        // An fsync that ended at 5 makes the new version required.
        model.apply(&Op::Fsync { file: 1 }, origin(2, 3), 5, Outcome::Ok);
        let p = check_files(dev, &model, 5, &[]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].oracle, "durability");
        assert!(
            p[0].cause
                .starts_with("f1 block 0 byte 514 after a crash at 5: data of f1 tag 4"),
            "{}",
            p[0].cause
        );
    }

    #[test]
    fn existence_and_size_are_judged() {
        let (dev, mut model) = image();
        model.apply(&Op::Unlink { file: 1 }, origin(1, 0), 4, Outcome::Ok);
        model.apply(&Op::Sync, origin(2, 4), 9, Outcome::Ok);
        let p = check_files(dev.clone(), &model, 9, &[]);
        assert_eq!(p[0].oracle, "durability");
        assert!(p[0].cause.contains("its unlink was made durable"));
        let (dev2, model2) = image();
        let mut fs = Fs::mount(dev2, MountOpts::default()).unwrap();
        let ino = fs.resolve("/f1").unwrap();
        fs.truncate_file(ino, 1200).unwrap();
        let dev2 = fs.unmount().unwrap();
        let p = check_files(dev2, &model2, 0, &[]);
        assert_eq!(
            p,
            vec![Problem::new(
                "data-loss",
                "f1 has size 1200 after a crash at 0: never its size".into()
            )]
        );
    }
}
