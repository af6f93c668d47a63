//! Template images: the disk an execution starts from.
//!
//! A *base* is `mkfs` of the scenario's geometry with every free data block poisoned
//! ([`pattern::poison_block`]), frozen so that clones are O(1). Bases are cached per geometry
//! (and per whether `mkfs` had the extent feature) for the life of the process.
//!
//! The *template* of a scenario is a clone of the base with the setup files made by the fixed
//! engine and cleanly unmounted, its log cleared:
//!
//! * files marked `indirect` are created first; if the geometry has the `extent` feature, they
//!   are created on a `--no-extent` base and the feature is then switched on in the superblock,
//!   as `tune2fs -O extent` does, so that the later files are extent-mapped;
//! * the other files are created next, in setup order.
//!
//! Templates are cached too (keyed by geometry and setup; kept from a setup's second build on;
//! at most [`SETUP_CACHE`] of them and [`SETUP_CACHE_BYTES`] of private blocks, the least
//! recently used dropped first): fuzzing (libFuzzer mutates one corpus input at a time, mostly
//! outside its setup bytes), minimization and repro runs reuse them. A cached template equals a
//! rebuilt one, so the cache never changes a verdict.

use super::pattern;
use crate::dev::Disk;
use crate::error::Result;
use crate::format::superblock::EXT4_FEATURE_INCOMPAT_EXTENTS;
use crate::fs::mkfs::{mkfs, MkfsOpts};
use crate::fs::{Fs, MountOpts};
use crate::scenario::{FileSetup, Geometry};
use crate::units::Pblk;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Most templates with setup files kept.
pub const SETUP_CACHE: usize = 1024;
/// Most bytes of private (non-base) blocks the kept templates hold together.
pub const SETUP_CACHE_BYTES: usize = 64 << 20;
/// Slots of the cache's admission filter (the hashes of setups built once).
const SEEN_SLOTS: usize = 4096;

/// The key of a base: (block size, size, mkfs extents, metadata_csum, journal blocks).
type BaseKey = (u32, u64, bool, bool, u32);

fn bases() -> &'static Mutex<BTreeMap<BaseKey, Disk>> {
    static BASES: OnceLock<Mutex<BTreeMap<BaseKey, Disk>>> = OnceLock::new();
    BASES.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// The setup cache (least recently used first out).
///
/// A hit allocates and frees nothing (it only stamps the entry's last use), so an execution
/// that reuses a template leaves the heap as it found it: libFuzzer re-runs every input that
/// ends with more allocations than frees to look for a leak, and a use index kept in a second
/// map (whose nodes split and merge as stamps move) made that one execution in ten.
/// The least recently used entry is found by a scan, on insert only.
///
/// A template is kept only when its setup is built a second time: the first build leaves its
/// key's hash in a fixed table of [`SEEN_SLOTS`] (allocated once). A fuzzer's mutation that
/// changes a setup byte mostly makes a setup it never makes again; keeping that template was
/// one more execution that ended with more allocations than frees (so re-run by libFuzzer),
/// and an entry that evicted a useful one.
struct SetupCache {
    /// Most entries.
    max: usize,
    /// Most private bytes.
    max_bytes: usize,
    /// Key text → (template, last use).
    map: BTreeMap<String, (Disk, u64)>,
    /// Use counter.
    clock: u64,
    /// Private bytes held (see [`private_bytes`]).
    bytes: usize,
    /// The admission filter: slot `h % SEEN_SLOTS` holds the last hash `h` built there.
    seen: Vec<u64>,
}

impl SetupCache {
    fn new(max: usize, max_bytes: usize) -> SetupCache {
        SetupCache {
            max,
            max_bytes,
            map: BTreeMap::new(),
            clock: 0,
            bytes: 0,
            seen: Vec::new(),
        }
    }

    /// Whether a template just built for `key` is worth keeping: `key` was built before (as
    /// far as the filter remembers). Records `key` either way.
    fn admit(&mut self, key: &str) -> bool {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new(); // fixed keys: the same answer in every process
        key.hash(&mut h);
        let h = h.finish();
        if self.seen.is_empty() {
            self.seen = vec![0; SEEN_SLOTS];
        }
        let slot = &mut self.seen[(h % SEEN_SLOTS as u64) as usize];
        std::mem::replace(slot, h) == h
    }

    fn get(&mut self, key: &str) -> Option<Disk> {
        self.clock += 1;
        let (disk, used) = self.map.get_mut(key)?;
        *used = self.clock;
        Some(disk.clone())
    }

    fn insert(&mut self, key: String, disk: Disk) {
        self.clock += 1;
        self.bytes += private_bytes(&disk);
        if let Some((old, _)) = self.map.insert(key, (disk, self.clock)) {
            self.bytes -= private_bytes(&old);
        }
        while self.map.len() > self.max || self.bytes > self.max_bytes {
            let Some(lru) = self.least_recently_used() else {
                break;
            };
            if let Some((old, _)) = self.map.remove(&lru) {
                self.bytes -= private_bytes(&old);
            }
        }
    }

    /// The key of the entry used longest ago.
    fn least_recently_used(&self) -> Option<String> {
        let (key, _) = self.map.iter().min_by_key(|(_, (_, used))| *used)?;
        Some(key.clone())
    }
}

/// The bytes of the blocks a template does not share with its base.
fn private_bytes(d: &Disk) -> usize {
    d.overlay_blocks() * d.block_size() as usize
}

fn setups() -> &'static Mutex<SetupCache> {
    static SETUPS: OnceLock<Mutex<SetupCache>> = OnceLock::new();
    SETUPS.get_or_init(|| Mutex::new(SetupCache::new(SETUP_CACHE, SETUP_CACHE_BYTES)))
}

/// The poisoned, frozen base for `geo` made with or without the extent feature.
pub fn base(geo: &Geometry, extents: bool) -> Result<Disk> {
    let key = (
        geo.block_size,
        geo.size_bytes,
        extents,
        geo.metadata_csum,
        geo.journal_blocks,
    );
    if let Some(d) = lock(bases()).get(&key) {
        return Ok(d.clone());
    }
    let disk = build_base(geo, extents)?;
    lock(bases()).insert(key, disk.clone());
    Ok(disk)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-inserted entry: recover the guard.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// mkfs, then poison every block free in the block bitmaps, then freeze.
fn build_base(geo: &Geometry, extents: bool) -> Result<Disk> {
    let opts = MkfsOpts {
        size_bytes: geo.size_bytes,
        block_size: geo.block_size,
        extents,
        metadata_csum: geo.metadata_csum,
        journal_blocks: Some(geo.journal_blocks),
        ..MkfsOpts::default()
    };
    let mut fs = Fs::mount(mkfs(&opts)?, MountOpts { read_only: true })?;
    let first = u64::from(fs.sb.s_first_data_block);
    let mut free = Vec::new();
    for b in first..fs.sb.s_blocks_count {
        if fs.block_is_free(Pblk(b))? {
            free.push(b);
        }
    }
    let mut dev = fs.unmount()?;
    let bs = geo.block_size as usize;
    for b in free {
        dev.write(Pblk(b), &pattern::poison_block(b, bs))?;
    }
    dev.freeze();
    Ok(dev)
}

/// The template of a scenario with `setup` on `geo` (module doc): unmounted, log cleared.
pub fn template(geo: &Geometry, setup: &[FileSetup]) -> Result<Disk> {
    let key = format!("{geo:?}{setup:?}");
    if let Some(d) = lock(setups()).get(&key) {
        return Ok(d);
    }
    let disk = build_template(geo, setup)?;
    let mut cache = lock(setups());
    if cache.admit(&key) {
        cache.insert(key, disk.clone());
    }
    Ok(disk)
}

fn build_template(geo: &Geometry, setup: &[FileSetup]) -> Result<Disk> {
    if setup.is_empty() {
        return base(geo, geo.extents);
    }
    let switch = geo.extents && setup.iter().any(|f| f.indirect);
    let mut fs = Fs::mount(base(geo, geo.extents && !switch)?, MountOpts::default())?;
    let (first, second): (Vec<&FileSetup>, Vec<&FileSetup>) =
        setup.iter().partition(|f| f.indirect || !geo.extents);
    make_files(&mut fs, &first)?;
    if switch {
        // tune2fs -O extent: only the feature bit changes; existing files stay indirect.
        fs.sb.s_feature_incompat |= EXT4_FEATURE_INCOMPAT_EXTENTS;
        fs = Fs::mount(fs.unmount()?, MountOpts::default())?;
    }
    make_files(&mut fs, &second)?;
    let mut dev = fs.unmount()?;
    dev.clear_log();
    Ok(dev)
}

fn make_files(fs: &mut Fs, files: &[&FileSetup]) -> Result<()> {
    for f in files {
        let ino = fs.create(&format!("/f{}", f.file), 0o644)?;
        for &(off, len, tag) in &f.writes {
            fs.write_file(ino, off, &pattern::data(f.file, tag, off, len as usize))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::inode::EXT4_EXTENTS_FL;

    fn geo(extents: bool) -> Geometry {
        Geometry {
            size_bytes: 4 << 20,
            extents,
            ..Geometry::default()
        }
    }

    #[test]
    fn free_blocks_are_poisoned_and_bases_are_shared() {
        let a = base(&geo(false), false).unwrap();
        let b = base(&geo(false), false).unwrap();
        assert!(a.shares_base_with(&b));
        assert_eq!(a.overlay_blocks(), 0);
        let mut fs = Fs::mount(a, MountOpts { read_only: true }).unwrap();
        let last = fs.sb.s_blocks_count - 1;
        assert!(fs.block_is_free(Pblk(last)).unwrap());
        let blk = fs.dev.peek_block(Pblk(last));
        assert_eq!(&blk[..], &pattern::poison_block(last, 1024)[..]);
        // Metadata (the superblock) is not poisoned.
        assert!(!pattern::has_poison(&fs.dev.peek_block(Pblk(1)), 0));
    }

    #[test]
    fn the_setup_cache_drops_the_least_recently_used() {
        let disk = |blocks: u64| {
            let mut d = Disk::new(1024, 16);
            for b in 0..blocks {
                d.write(Pblk(b), &[1; 1024]).unwrap();
            }
            d
        };
        let mut c = SetupCache::new(2, 3 << 10);
        c.insert("a".into(), disk(1));
        c.insert("b".into(), disk(1));
        assert!(c.get("a").is_some()); // a is now more recent than b
        c.insert("c".into(), disk(1));
        assert!(c.get("b").is_none());
        assert_eq!(c.get("a").map(|d| d.overlay_blocks()), Some(1));
        assert!(c.get("c").is_some());
        assert_eq!(c.bytes, 2 << 10);
        // The byte bound: a 3-block template leaves room for nothing else.
        c.insert("d".into(), disk(3));
        assert_eq!(c.map.keys().collect::<Vec<_>>(), vec!["d"]);
        assert_eq!(c.bytes, 3 << 10);
        // Replacing an entry keeps the byte count exact.
        c.insert("d".into(), disk(2));
        assert_eq!((c.bytes, c.map.len()), (2 << 10, 1));
    }

    #[test]
    fn the_setup_cache_admits_a_setup_on_its_second_build() {
        let mut c = SetupCache::new(2, 3 << 10);
        assert!(!c.admit("a"));
        assert!(!c.admit("b"));
        assert!(c.admit("a"));
        assert!(c.admit("a"));
        assert!(c.admit("b"));
        // The filter's table is allocated once, on first use.
        assert_eq!(c.seen.len(), SEEN_SLOTS);
    }

    #[test]
    fn setup_files_indirect_then_extents() {
        let setup = vec![
            FileSetup {
                file: 3,
                indirect: false,
                writes: vec![(0, 10, 1)],
            },
            FileSetup {
                file: 1,
                indirect: true,
                writes: vec![(5000, 2000, 2)],
            },
        ];
        let t = template(&geo(true), &setup).unwrap();
        assert!(t.log().is_empty());
        let mut fs = Fs::mount(t, MountOpts { read_only: true }).unwrap();
        assert!(fs.has_extents());
        let f1 = fs.resolve("/f1").unwrap();
        let f3 = fs.resolve("/f3").unwrap();
        assert!(f1 < f3, "indirect files are made first");
        assert_eq!(fs.inode(f1).raw.i_flags & EXT4_EXTENTS_FL, 0);
        assert_ne!(fs.inode(f3).raw.i_flags & EXT4_EXTENTS_FL, 0);
        assert_eq!(
            fs.read_file(f1, 5000, 2000).unwrap(),
            pattern::data(1, 2, 5000, 2000)
        );
        // The cache gives an equal template.
        let again = template(&geo(true), &setup).unwrap();
        let mut fs2 = Fs::mount(again, MountOpts { read_only: true }).unwrap();
        assert_eq!(fs2.resolve("/f1").unwrap(), f1);
    }
}
