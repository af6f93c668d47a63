//! The generator's `Scope`: what is known about `f0`..`f7` while ops are drawn, and the
//! preconditions an op must meet to be *valid by construction*.
//!
//! Threads run concurrently, so "does the file exist" must hold under every interleaving. Three
//! ownership rules make it exact:
//!
//! * a file from [`Scenario::setup`](crate::scenario::Scenario::setup) is **shared**: every thread
//!   may use it, no thread unlinks it, and no thread truncates it below its size after setup
//!   (its *floor*) — so an mmap store below the floor is always inside `i_size`;
//!   With one thread there is no other order, and the setup files are owned by it
//!   ([`Scope::sole_thread`]);
//! * a file a thread creates is **owned** by that thread: only it uses, truncates, unlinks and
//!   re-creates it, so its size is known exactly in program order;
//! * a free index may be created by the first thread that draws it (threads are drawn in order),
//!   and is then owned.
//!
//! The mapping kind (indirect or extents) is the drawing thread's *view*: its own migrations
//! change it, another thread's do not. It steers preferences (`Fallocate` only where the view
//! says extents, `Migrate` towards the other format) but cannot be exact under concurrency:
//! those ops may then fail with `EOPNOTSUPP`/`EINVAL`, which tests error paths.
//!
//! [`Scope::check`] is the precondition table; [`Scope::apply`] the effect. The generator only
//! offers ops that pass `check`, and `validate` replays a scenario through both.

use crate::scenario::{FileSetup, Geometry, MigrateTo, Op, MAX_FILES};

/// Direct block slots in `i_block` (`EXT4_NDIR_BLOCKS`).
const NDIR_BLOCKS: u64 = 12;
/// Hot blocks remembered per file (targets for overwrites, mmap stores, punches).
const MAX_HOT: usize = 16;

/// Block-map geometry for one block size: where the direct, IND, DIND and TIND ranges start,
/// in logical blocks, and the largest byte offset ops may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Block size in bytes.
    pub bs: u64,
    /// Block numbers per indirect block (`EXT4_ADDR_PER_BLOCK`).
    pub per_block: u64,
    /// First logical block of IND, DIND, TIND, and the end of TIND (one past the last block
    /// an indirect map can address).
    pub bounds: [u64; 4],
}

impl Limits {
    /// The limits for `geo`'s block size.
    pub fn new(geo: &Geometry) -> Limits {
        let bs = u64::from(geo.block_size.max(1024));
        let a = bs / 4;
        let ind = NDIR_BLOCKS;
        let dind = ind + a;
        let tind = dind + a * a;
        Limits {
            bs,
            per_block: a,
            bounds: [ind, dind, tind, tind + a * a * a],
        }
    }

    /// One past the last byte an op may touch: the end of the TIND range (the same cap for
    /// extent files keeps every op valid after a migration to indirect).
    pub fn max_bytes(&self) -> u64 {
        self.bounds[3] * self.bs
    }

    /// Whether `[off, off + len)` lies below [`Limits::max_bytes`] (no overflow).
    pub fn range_ok(&self, off: u64, len: u64) -> bool {
        off.checked_add(len)
            .is_some_and(|end| end <= self.max_bytes())
    }
}

/// How a file maps its blocks, as the drawing thread sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// `i_block` holds an indirect map.
    Indirect,
    /// `EXT4_EXTENTS_FL`: `i_block` holds an extent tree root.
    Extents,
}

/// One file as the drawing thread sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileView {
    /// Mapping kind (a view, see the module doc).
    pub mapping: Mapping,
    /// `i_size` estimate: exact for owned files, this thread's own effects for shared ones.
    pub size: u64,
    /// Logical blocks written recently (at most `MAX_HOT`, newest last).
    pub hot: Vec<u64>,
}

impl FileView {
    fn touch(&mut self, off: u64, len: u64, bs: u64) {
        self.size = self.size.max(off + len);
        if self.hot.len() == MAX_HOT {
            self.hot.remove(0);
        }
        self.hot.push(off / bs);
    }
}

/// Who may use a file index (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// No file, not claimed.
    Free,
    /// Made at setup; used by every thread; never shrunk below `floor` bytes.
    Shared { floor: u64 },
    /// Claimed by one thread.
    Owned { owner: usize },
}

/// The generator's knowledge of the files (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    /// Geometry limits.
    pub limits: Limits,
    /// The `extent` feature: created files are extent-mapped.
    extents_fs: bool,
    slots: [Slot; MAX_FILES as usize],
    /// The state after setup (every thread starts from it).
    setup: [Option<FileView>; MAX_FILES as usize],
    /// The drawing thread's view.
    view: [Option<FileView>; MAX_FILES as usize],
    thread: usize,
    /// The `Focus` switch is on.
    focus_on: bool,
    /// The file the drawing thread's last op named.
    last: Option<u8>,
}

impl Scope {
    /// An empty scope for `geo` (no files).
    pub fn new(geo: &Geometry) -> Scope {
        Scope {
            limits: Limits::new(geo),
            extents_fs: geo.extents,
            slots: [Slot::Free; MAX_FILES as usize],
            setup: Default::default(),
            view: Default::default(),
            thread: 0,
            focus_on: false,
            last: None,
        }
    }

    /// Record a setup file, checking its index and ranges.
    pub fn add_setup(&mut self, f: &FileSetup) -> Result<(), String> {
        let i = usize::from(f.file);
        match self.slots.get(i) {
            None => return Err(format!("setup file f{} out of range", f.file)),
            Some(Slot::Free) => {}
            Some(_) => return Err(format!("setup file f{} listed twice", f.file)),
        }
        let mapping = if f.indirect || !self.extents_fs {
            Mapping::Indirect
        } else {
            Mapping::Extents
        };
        let mut view = FileView {
            mapping,
            size: 0,
            hot: Vec::new(),
        };
        for &(off, len, _) in &f.writes {
            if len == 0 || !self.limits.range_ok(off, u64::from(len)) {
                return Err(format!("setup f{} write {off}+{len} out of range", f.file));
            }
            view.touch(off, u64::from(len), self.limits.bs);
        }
        self.slots[i] = Slot::Shared { floor: view.size };
        self.setup[i] = Some(view);
        Ok(())
    }

    /// The scenario has one thread: program order is the only order, so the setup files are
    /// that thread's own (it may truncate them to any size, as U3 needs, or unlink them).
    pub fn sole_thread(&mut self) {
        for slot in &mut self.slots {
            if matches!(slot, Slot::Shared { .. }) {
                *slot = Slot::Owned { owner: 0 };
            }
        }
    }

    /// Start drawing (or replaying) thread `t`: its view is the state after setup.
    pub fn begin_thread(&mut self, t: usize) {
        self.thread = t;
        self.view = self.setup.clone();
        self.last = None;
    }

    /// Switch focus on or off (the swarm's `Focus`).
    pub fn set_focus(&mut self, on: bool) {
        self.focus_on = on;
    }

    /// With focus on, the file the drawing thread's last op named (if any op did).
    pub fn focus(&self) -> Option<u8> {
        self.last.filter(|_| self.focus_on)
    }

    /// Whether the filesystem has the `extent` feature (`chattr +e` can succeed).
    pub fn extents_fs(&self) -> bool {
        self.extents_fs
    }

    /// The drawing thread's view of `file`, if the file exists for it.
    pub fn view(&self, file: u8) -> Option<&FileView> {
        self.view.get(usize::from(file))?.as_ref()
    }

    /// Files that exist for the drawing thread and satisfy `pred`, in index order.
    pub fn files(&self, pred: impl Fn(u8, &FileView) -> bool) -> Vec<u8> {
        (0..MAX_FILES)
            .filter(|&f| self.view(f).is_some_and(|v| pred(f, v)))
            .collect()
    }

    /// Indices the drawing thread may `Create`.
    pub fn creatable(&self) -> Vec<u8> {
        (0..MAX_FILES).filter(|&f| self.may_create(f)).collect()
    }

    /// Whether the drawing thread owns `file`.
    pub fn owns(&self, file: u8) -> bool {
        self.slots.get(usize::from(file)) == Some(&Slot::Owned { owner: self.thread })
    }

    /// Bytes below which an mmap store is inside `i_size` under every interleaving.
    pub fn mmap_bound(&self, file: u8) -> u64 {
        match (self.slots.get(usize::from(file)), self.view(file)) {
            (Some(Slot::Shared { floor }), Some(_)) => *floor,
            (Some(Slot::Owned { .. }), Some(v)) => v.size,
            _ => 0,
        }
    }

    /// The smallest size the drawing thread may truncate `file` to.
    pub fn truncate_floor(&self, file: u8) -> u64 {
        match self.slots.get(usize::from(file)) {
            Some(Slot::Shared { floor }) => *floor,
            _ => 0,
        }
    }

    fn may_create(&self, file: u8) -> bool {
        match self.slots.get(usize::from(file)) {
            Some(Slot::Free) => true,
            Some(Slot::Owned { owner }) => *owner == self.thread && self.view(file).is_none(),
            _ => false,
        }
    }

    fn exists(&self, file: u8) -> Result<&FileView, String> {
        if file >= MAX_FILES {
            return Err(format!("file index {file} out of range"));
        }
        self.view(file)
            .ok_or_else(|| format!("f{file} does not exist for thread {}", self.thread))
    }

    fn range(&self, off: u64, len: u64) -> Result<(), String> {
        if len == 0 {
            return Err("empty range".into());
        }
        if !self.limits.range_ok(off, len) {
            return Err(format!("range {off}+{len} beyond the maximum file size"));
        }
        Ok(())
    }

    /// The precondition of `op` for the drawing thread (the table in the module doc).
    pub fn check(&self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Create { file } if self.may_create(file) => Ok(()),
            Op::Create { file } => Err(format!("f{file} cannot be created by this thread")),
            Op::Unlink { file } => {
                self.exists(file)?;
                if self.owns(file) {
                    Ok(())
                } else {
                    Err(format!("f{file} is not owned by thread {}", self.thread))
                }
            }
            Op::Write { file, off, len, .. } => {
                self.exists(file)?;
                self.range(off, u64::from(len))
            }
            Op::MmapWrite { file, off, len, .. } => self.check_mmap(file, off, len),
            Op::Read { file, off, len } => {
                self.exists(file)?;
                self.range(off, u64::from(len))
            }
            Op::Truncate { file, size } => self.check_truncate(file, size),
            Op::Punch { file, off, len } => {
                self.exists(file)?;
                self.range(off, len)
            }
            Op::Fallocate { file, off, len } => {
                if self.exists(file)?.mapping != Mapping::Extents {
                    return Err(format!("fallocate on f{file}, not extent-mapped"));
                }
                self.range(off, len)
            }
            Op::Fiemap { file } | Op::Fsync { file } | Op::Migrate { file, .. } => {
                self.exists(file).map(|_| ())
            }
            Op::Sync | Op::Writeback | Op::Commit | Op::Checkpoint => Ok(()),
        }
    }

    fn check_mmap(&self, file: u8, off: u64, len: u32) -> Result<(), String> {
        self.exists(file)?;
        self.range(off, u64::from(len))?;
        let end = off + u64::from(len);
        if off / self.limits.bs != (end - 1) / self.limits.bs {
            return Err(format!("mmap store {off}+{len} crosses a block boundary"));
        }
        let bound = self.mmap_bound(file);
        if end > bound {
            return Err(format!(
                "mmap store {off}+{len} beyond the safe i_size {bound}"
            ));
        }
        Ok(())
    }

    fn check_truncate(&self, file: u8, size: u64) -> Result<(), String> {
        self.exists(file)?;
        if size > self.limits.max_bytes() {
            return Err(format!("truncate to {size} beyond the maximum file size"));
        }
        let floor = self.truncate_floor(file);
        if size < floor {
            return Err(format!(
                "truncate of shared f{file} to {size} below {floor}"
            ));
        }
        Ok(())
    }

    /// Apply `op` (which passed [`Scope::check`]) to the drawing thread's view.
    pub fn apply(&mut self, op: &Op) {
        self.last = op.file().or(self.last);
        let bs = self.limits.bs;
        let small = NDIR_BLOCKS * bs;
        let extents_fs = self.extents_fs;
        let thread = self.thread;
        if let Op::Create { file } = *op {
            let mapping = if extents_fs {
                Mapping::Extents
            } else {
                Mapping::Indirect
            };
            self.slots[usize::from(file)] = Slot::Owned { owner: thread };
            self.view[usize::from(file)] = Some(FileView {
                mapping,
                size: 0,
                hot: Vec::new(),
            });
            return;
        }
        if let Op::Unlink { file } = *op {
            self.view[usize::from(file)] = None;
            return;
        }
        let Some(v) = op
            .file()
            .and_then(|f| self.view.get_mut(usize::from(f))?.as_mut())
        else {
            return;
        };
        match *op {
            Op::Write { off, len, .. } => v.touch(off, u64::from(len), bs),
            Op::MmapWrite { off, .. } => v.hot.push(off / bs),
            Op::Fallocate { off, len, .. } => v.touch(off, len, bs),
            Op::Truncate { size, .. } => {
                v.size = size;
                v.hot.retain(|&b| b * bs < size);
            }
            Op::Migrate { to, .. } => v.mapping = migrated(v, to, extents_fs, small),
            _ => {}
        }
        if v.hot.len() > MAX_HOT {
            v.hot.remove(0);
        }
    }
}

/// The mapping a successful-looking migration leaves: `chattr +e` needs the `extent` feature,
/// `chattr -e` only converts files that fit in the direct blocks.
fn migrated(v: &FileView, to: MigrateTo, extents_fs: bool, small: u64) -> Mapping {
    match to {
        MigrateTo::Extents if extents_fs => Mapping::Extents,
        MigrateTo::Indirect if v.size <= small => Mapping::Indirect,
        _ => v.mapping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(block_size: u32) -> Geometry {
        Geometry {
            block_size,
            ..Geometry::default()
        }
    }

    #[test]
    fn limits_match_the_indirect_map_ranges() {
        let l = Limits::new(&geo(1024));
        assert_eq!(l.per_block, 256);
        assert_eq!(l.bounds, [12, 268, 65_804, 16_843_020]);
        assert_eq!(l.max_bytes(), 17_247_252_480);
        let l = Limits::new(&geo(4096));
        assert_eq!(l.bounds, [12, 1036, 1_049_612, 1_074_791_436]);
        assert!(l.range_ok(0, l.max_bytes()));
        assert!(!l.range_ok(1, l.max_bytes()));
        assert!(!l.range_ok(u64::MAX, 2));
    }

    fn shared_f0() -> Scope {
        let mut s = Scope::new(&Geometry::default());
        let f0 = FileSetup {
            file: 0,
            indirect: true,
            writes: vec![(0, 3000, 7), (20_480, 100, 2)],
        };
        s.add_setup(&f0).unwrap();
        assert_eq!(
            s.add_setup(&f0),
            Err("setup file f0 listed twice".to_string())
        );
        s
    }

    #[test]
    fn shared_files_keep_their_floor() {
        let mut s = shared_f0();
        s.begin_thread(1);
        assert_eq!(s.mmap_bound(0), 20_580);
        assert_eq!(s.truncate_floor(0), 20_580);
        assert_eq!(s.view(0).unwrap().hot, vec![0, 20]);
        assert_eq!(
            s.check(&Op::Truncate { file: 0, size: 100 }),
            Err("truncate of shared f0 to 100 below 20580".to_string())
        );
        let store = |off, len| Op::MmapWrite {
            file: 0,
            off,
            len,
            tag: 1,
        };
        assert_eq!(s.check(&store(20_480, 100)), Ok(()));
        assert_eq!(
            s.check(&store(20_480, 101)),
            Err("mmap store 20480+101 beyond the safe i_size 20580".to_string())
        );
        assert_eq!(
            s.check(&store(1000, 30)),
            Err("mmap store 1000+30 crosses a block boundary".to_string())
        );
        assert_eq!(
            s.check(&Op::Unlink { file: 0 }),
            Err("f0 is not owned by thread 1".to_string())
        );
        assert_eq!(
            s.check(&Op::Fallocate {
                file: 0,
                off: 0,
                len: 1
            }),
            Err("fallocate on f0, not extent-mapped".to_string())
        );
        s.apply(&Op::Migrate {
            file: 0,
            to: MigrateTo::Extents,
        });
        assert_eq!(s.view(0).unwrap().mapping, Mapping::Extents);
    }

    #[test]
    fn created_files_belong_to_their_thread() {
        let mut s = shared_f0();
        s.begin_thread(0);
        assert_eq!(s.creatable(), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            s.check(&Op::Write {
                file: 3,
                off: 0,
                len: 1,
                tag: 0
            }),
            Err("f3 does not exist for thread 0".to_string())
        );
        s.apply(&Op::Create { file: 3 });
        assert_eq!(s.view(3).unwrap().mapping, Mapping::Extents);
        assert_eq!(s.check(&Op::Unlink { file: 3 }), Ok(()));
        s.apply(&Op::Unlink { file: 3 });
        assert_eq!(s.check(&Op::Create { file: 3 }), Ok(()));
        s.begin_thread(1);
        assert!(s.view(3).is_none());
        assert_eq!(
            s.check(&Op::Create { file: 3 }),
            Err("f3 cannot be created by this thread".to_string())
        );
        assert_eq!(s.creatable(), vec![1, 2, 4, 5, 6, 7]);
        assert_eq!(
            s.check(&Op::Fsync { file: 8 }),
            Err("file index 8 out of range".to_string())
        );
    }

    #[test]
    fn migrate_to_indirect_only_changes_small_files() {
        let mut s = Scope::new(&Geometry::default());
        s.begin_thread(0);
        s.apply(&Op::Create { file: 1 });
        let write = |off| Op::Write {
            file: 1,
            off,
            len: 10,
            tag: 0,
        };
        let back = Op::Migrate {
            file: 1,
            to: MigrateTo::Indirect,
        };
        s.apply(&write(13 * 1024));
        s.apply(&back);
        assert_eq!(s.view(1).unwrap().mapping, Mapping::Extents);
        s.apply(&Op::Truncate { file: 1, size: 5 });
        assert!(s.view(1).unwrap().hot.is_empty());
        s.apply(&write(3 * 1024));
        s.apply(&back);
        assert_eq!(s.view(1).unwrap().mapping, Mapping::Indirect);
        assert_eq!(s.view(1).unwrap().size, 3 * 1024 + 10);
    }
}
