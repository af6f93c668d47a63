//! The reference model of the scenario files `f0`..`f7`: what each file holds now (the *live*
//! state, redb's "live reference") and what a crash may legitimately leave of it (TigerBeetle's
//! checker split, and redb's "durable reference").
//!
//! The model replays the ops the engine ran, in the order they completed, with their outcome
//! (ops interleave at the scheduler's yield points; see "What it does not model"). For every
//! file it keeps:
//!
//! * the live state: existence, `i_size`, and the content of every non-hole block;
//! * the history a crash can show, each entry stamped with its [`Origin`] (the device log index
//!   at the start of the op that made it): every content each block ever had (*versions*),
//!   ranges of blocks that became holes, sizes (points and, for `fallocate`, intervals),
//!   existence changes;
//! * durability points: the live state at the *start* of each successful `fsync` of the file or
//!   `sync` ([`Model::begin`]), with the log index the op ended at;
//! * the ops that changed the file, with their completion number: one that completed after an
//!   fsync started and that the crash may show voids that fsync's point (the fsync may have
//!   missed part of it, or it changed the file since).
//!
//! An op writing several blocks is modelled block by block, as the engine does it (one handle
//! per block): a crash may show any prefix of it.
//!
//! A crash at log index `k` may show an entry iff its op started before `k` (no later op issued
//! a write the crash image holds), or it is part of the template. See `oracle::crash` for the
//! judgement.
//!
//! # What it does not model
//!
//! * Partial effects of a failed op that may have changed the file (an I/O error, `ENOSPC`,
//!   an abort in the middle): the file is *tainted* from that op on, and crash states that may
//!   show the op (and live reads after it) do not judge its content, size or existence. Only
//!   the poison check (`stale-data`) still applies. Errors the engine returns before changing
//!   anything (`EINVAL`, `EOPNOTSUPP`, `EFBIG`, `ENOENT`, `EEXIST`, `EISDIR`, or `EROFS` on an
//!   already aborted filesystem) are no-ops.
//! * The content of a device block whose write failed with an injected `-EIO` (the error was
//!   reported, as `fsync()` reports it): such blocks are *undefined* ([`Model::note_failed_write`])
//!   and a file block mapped to one is not judged. The kernel does the same: after a failed
//!   writeback the page is clean, and a later commit (`data_err=ignore`, or an fsync that already
//!   consumed the error) makes the mapping durable over whatever the block held.
//! * Concurrency inside ops: an op is applied whole when it completes. That is exact for ops on
//!   one file that the kernel serializes (`i_rwsem`); two changes of one file that overlap in
//!   time (`page_mkwrite` against anything) taint the file ([`Model::taint`], decided by the
//!   harness), since their blocks may have changed in either order.
//! * `migrate` changes no content, so it is only a touch (its own oracles judge the mapping).

use crate::dev::Block;
use crate::harness::pattern;
use crate::scenario::{FileSetup, Op, MAX_FILES};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// When a piece of history came into being.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The device log index at the start of the op; `None` for the template.
    pub start_log: Option<usize>,
    /// The op's place in the start order (0 for the template).
    pub seq: u32,
    /// How many ops had completed when it started.
    pub start_done: u32,
}

impl Origin {
    /// The template state (before the workload).
    pub const TEMPLATE: Origin = Origin {
        start_log: None,
        seq: 0,
        start_done: 0,
    };

    /// Whether a crash at log index `k` may show this.
    pub fn allowed_at(self, k: usize) -> bool {
        self.start_log.is_none_or(|s| s < k)
    }
}

/// How an op ended, as far as the model cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// Failed before changing anything.
    Rejected,
    /// Failed, possibly after changing something.
    Failed,
}

/// One file's state: its size and the content of its non-hole blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileState {
    /// `i_size`.
    pub size: u64,
    /// Block contents by logical block; absent blocks read as zeroes.
    pub blocks: BTreeMap<u32, Block>,
}

/// The live state of a file at the end of an fsync or sync.
#[derive(Clone, Debug)]
struct Durable {
    /// Ops completed when the fsync or sync started.
    start_done: u32,
    end_log: usize,
    state: Option<FileState>,
}

/// One file's history (see the module doc).
#[derive(Clone, Debug, Default)]
struct History {
    versions: BTreeMap<u32, Vec<(Origin, Block)>>,
    /// Blocks `[from, to)` became holes.
    holes: Vec<(u64, u64, Origin)>,
    /// Sizes `[lo, hi]`.
    sizes: Vec<(u64, u64, Origin)>,
    exists: Vec<(bool, Origin)>,
    durable: Vec<Durable>,
    /// Ops that may have changed the file: (completion number, origin).
    touches: Vec<(u32, Origin)>,
    taint: Option<Origin>,
}

/// What a crash at log index `k` may show of one file (see [`Model::expect`]).
#[derive(Debug)]
pub struct Expect<'m> {
    /// The file may exist.
    pub may_exist: bool,
    /// The file may be absent.
    pub may_be_absent: bool,
    /// Exactly this state is required (durability), `None` for absent.
    pub durable: Option<&'m Option<FileState>>,
    /// Not judged at all (tainted by a failed op the crash may show).
    pub tainted: bool,
    model: &'m Model,
    file: u8,
    k: usize,
}

impl Expect<'_> {
    /// Whether `size` is a size the file may have.
    pub fn size_ok(&self, size: u64) -> bool {
        let h = self.model.hist(self.file);
        h.sizes
            .iter()
            .any(|&(lo, hi, o)| o.allowed_at(self.k) && (lo..=hi).contains(&size))
    }

    /// Whether block `lblk` may read as zeroes, and the other contents it may hold.
    pub fn block(&self, lblk: u32) -> (bool, Vec<&Block>) {
        let h = self.model.hist(self.file);
        let k = self.k;
        let versions = h.versions.get(&lblk).map_or(&[][..], Vec::as_slice);
        let template = versions.iter().any(|(o, _)| o.start_log.is_none());
        let hole = h
            .holes
            .iter()
            .any(|&(from, to, o)| o.allowed_at(k) && (from..to).contains(&u64::from(lblk)));
        let allowed = versions.iter().filter(|(o, _)| o.allowed_at(k));
        (!template || hole, allowed.map(|(_, b)| b).collect())
    }

    /// The model this expectation is of.
    pub fn model(&self) -> &Model {
        self.model
    }

    /// Logical blocks that ever held data (the rest can only be holes).
    pub fn known_blocks(&self) -> impl Iterator<Item = u32> + '_ {
        self.model.hist(self.file).versions.keys().copied()
    }
}

/// The reference model of one execution.
#[derive(Clone, Debug)]
pub struct Model {
    block_size: u32,
    live: Vec<Option<FileState>>,
    hist: Vec<History>,
    seq: u32,
    done: u32,
    undefined: BTreeSet<u64>,
    /// Live states taken when an fsync or sync started, by (op seq, file).
    snapshots: BTreeMap<(u32, u8), Option<FileState>>,
}

impl Model {
    /// The model of the template: the setup files with their writes applied, as the template
    /// holds them after its clean unmount.
    pub fn new(block_size: u32, setup: &[FileSetup]) -> Model {
        let n = usize::from(MAX_FILES);
        let mut m = Model {
            block_size,
            live: vec![None; n],
            hist: vec![History::default(); n],
            seq: 0,
            done: 0,
            undefined: BTreeSet::new(),
            snapshots: BTreeMap::new(),
        };
        for f in setup {
            m.live[usize::from(f.file)] = Some(FileState::default());
            for &(off, len, tag) in &f.writes {
                m.write_steps(f.file, off, len, tag, Origin::TEMPLATE, true);
            }
        }
        for file in 0..MAX_FILES {
            m.record_template(file);
        }
        m
    }

    fn record_template(&mut self, file: u8) {
        let t = Origin::TEMPLATE;
        let live = self.live[usize::from(file)].clone();
        let h = &mut self.hist[usize::from(file)];
        h.versions.clear();
        h.sizes.clear();
        h.exists = vec![(live.is_some(), t)];
        if let Some(s) = live {
            h.sizes.push((s.size, s.size, t));
            for (l, b) in s.blocks {
                h.versions.insert(l, vec![(t, b)]);
            }
        }
    }

    /// Record that a write of device block `pblk` failed with an injected error: its content
    /// is undefined from now on (see the module doc).
    pub fn note_failed_write(&mut self, pblk: u64) {
        self.undefined.insert(pblk);
    }

    /// Whether device block `pblk` has undefined content.
    pub fn is_undefined(&self, pblk: u64) -> bool {
        self.undefined.contains(&pblk)
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    fn hist(&self, file: u8) -> &History {
        &self.hist[usize::from(file)]
    }

    /// The live state of `file` (`None`: it does not exist).
    pub fn live(&self, file: u8) -> Option<&FileState> {
        self.live[usize::from(file)].as_ref()
    }

    /// Whether `file` is tainted (see the module doc) by an op that ran so far.
    pub fn is_tainted(&self, file: u8) -> bool {
        self.hist(file).taint.is_some()
    }

    /// The origin stamp of an op that starts now, at device log index `start_log`.
    pub fn next_origin(&mut self, start_log: usize) -> Origin {
        self.seq += 1;
        Origin {
            start_log: Some(start_log),
            seq: self.seq,
            start_done: self.done,
        }
    }

    /// [`Model::next_origin`] for `op`: an fsync or sync also takes the snapshot its
    /// durability point will hold, the live state *now* (an op that completes while it runs may
    /// or may not be made durable by it, and voids the point instead).
    pub fn begin(&mut self, op: &Op, start_log: usize) -> Origin {
        let at = self.next_origin(start_log);
        let files: Vec<u8> = match *op {
            Op::Fsync { file } => vec![file],
            Op::Sync => (0..MAX_FILES).collect(),
            _ => Vec::new(),
        };
        for file in files {
            let state = self.live[usize::from(file)].clone();
            self.snapshots.insert((at.seq, file), state);
        }
        at
    }

    /// Taint `file` from the op of `at` on (see the module doc): ops that changed it may have
    /// interleaved, or failed half-way.
    pub fn taint(&mut self, file: u8, at: Origin) {
        let t = &mut self.hist[usize::from(file)].taint;
        if t.is_none_or(|o| o.seq > at.seq) {
            *t = Some(at);
        }
    }

    /// Apply one op that completed with `outcome`; `end_log` is the log index at its end. Ops
    /// are applied in the order they complete.
    pub fn apply(&mut self, op: &Op, at: Origin, end_log: usize, outcome: Outcome) {
        self.done += 1;
        if outcome != Outcome::Ok {
            self.snapshots.retain(|(seq, _), _| *seq != at.seq);
        }
        if let Some(file) = op.changed_file() {
            if outcome != Outcome::Rejected {
                let done = self.done;
                self.hist[usize::from(file)].touches.push((done, at));
            }
            // A failed migration changed no content (its oracles judge the mapping).
            if outcome == Outcome::Failed && !matches!(op, Op::Migrate { .. }) {
                self.taint(file, at);
                return;
            }
        }
        if outcome != Outcome::Ok {
            return;
        }
        self.apply_ok(op, at, end_log);
    }

    fn apply_ok(&mut self, op: &Op, at: Origin, end_log: usize) {
        match *op {
            Op::Create { file } => self.create(file, at),
            Op::Unlink { file } => self.unlink(file, at),
            Op::Write {
                file,
                off,
                len,
                tag,
            } => self.write_steps(file, off, len, tag, at, true),
            Op::MmapWrite {
                file,
                off,
                len,
                tag,
            } => self.write_steps(file, off, len, tag, at, false),
            Op::Truncate { file, size } => self.truncate(file, size, at),
            Op::Punch { file, off, len } => self.punch(file, off, len, at),
            Op::Fallocate { file, off, len } => self.fallocate(file, off, len, at),
            Op::Fsync { file } => self.durable_point(file, at, end_log),
            Op::Sync => {
                for file in 0..MAX_FILES {
                    self.durable_point(file, at, end_log);
                }
            }
            Op::Read { .. } | Op::Fiemap { .. } | Op::Writeback | Op::Commit | Op::Checkpoint => {}
            Op::Migrate { .. } => {}
        }
    }

    fn create(&mut self, file: u8, at: Origin) {
        self.live[usize::from(file)] = Some(FileState::default());
        let h = &mut self.hist[usize::from(file)];
        h.exists.push((true, at));
        h.sizes.push((0, 0, at));
        h.holes.push((0, u64::MAX, at));
    }

    fn unlink(&mut self, file: u8, at: Origin) {
        self.live[usize::from(file)] = None;
        let h = &mut self.hist[usize::from(file)];
        h.exists.push((false, at));
    }

    /// A buffered write (`extend`: may grow `i_size`) or an mmap store, one block at a time.
    fn write_steps(&mut self, file: u8, off: u64, len: u32, tag: u8, at: Origin, extend: bool) {
        let bs = u64::from(self.block_size);
        let end = off + u64::from(len);
        let mut pos = off;
        while pos < end {
            let lblk = (pos / bs) as u32;
            let n = (bs - pos % bs).min(end - pos);
            let at_blk = (pos % bs) as usize;
            self.update_block(file, lblk, at, |b| {
                pattern::fill(&mut b[at_blk..at_blk + n as usize], file, tag, pos);
            });
            pos += n;
            if extend {
                self.grow(file, pos, at);
            }
        }
    }

    /// Change one block of the live state with `f` (a hole starts as zeroes) and record the
    /// result as a version.
    fn update_block(&mut self, file: u8, lblk: u32, at: Origin, f: impl FnOnce(&mut [u8])) {
        let bs = self.block_size as usize;
        let Some(live) = self.live[usize::from(file)].as_mut() else {
            return;
        };
        // Copy-on-write: the live block is shared with its recorded versions, so this makes
        // the one copy the new version needs (no intermediate Vec).
        let mut block = live
            .blocks
            .get(&lblk)
            .map_or_else(|| Arc::from(vec![0u8; bs]), Arc::clone);
        f(Arc::make_mut(&mut block));
        live.blocks.insert(lblk, Arc::clone(&block));
        let h = &mut self.hist[usize::from(file)];
        h.versions.entry(lblk).or_default().push((at, block));
    }

    fn grow(&mut self, file: u8, size: u64, at: Origin) {
        let Some(live) = self.live[usize::from(file)].as_mut() else {
            return;
        };
        if size > live.size {
            live.size = size;
            self.hist[usize::from(file)].sizes.push((size, size, at));
        }
    }

    fn set_size(&mut self, file: u8, size: u64, at: Origin) {
        if let Some(live) = self.live[usize::from(file)].as_mut() {
            live.size = size;
            self.hist[usize::from(file)].sizes.push((size, size, at));
        }
    }

    /// Zero `[from, to)` of block `lblk` if it holds data (a hole stays a hole).
    fn zero_in_block(&mut self, file: u8, lblk: u32, from: usize, to: usize, at: Origin) {
        let has = self
            .live(file)
            .is_some_and(|l| l.blocks.contains_key(&lblk));
        if has && from < to {
            self.update_block(file, lblk, at, |b| b[from..to].fill(0));
        }
    }

    /// Blocks `[from, to)` become holes.
    fn make_holes(&mut self, file: u8, from: u64, to: u64, at: Origin) {
        if let Some(live) = self.live[usize::from(file)].as_mut() {
            let doomed: Vec<u32> = live
                .blocks
                .keys()
                .copied()
                .filter(|&l| (from..to).contains(&u64::from(l)))
                .collect();
            for l in doomed {
                live.blocks.remove(&l);
            }
            self.hist[usize::from(file)].holes.push((from, to, at));
        }
    }

    fn truncate(&mut self, file: u8, size: u64, at: Origin) {
        let Some(old) = self.live(file).map(|l| l.size) else {
            return;
        };
        let bs = u64::from(self.block_size);
        self.set_size(file, size, at);
        if size < old {
            if size % bs != 0 {
                let lblk = (size / bs) as u32;
                self.zero_in_block(file, lblk, (size % bs) as usize, bs as usize, at);
            }
            self.make_holes(file, size.div_ceil(bs), u64::MAX, at);
        }
    }

    fn punch(&mut self, file: u8, off: u64, len: u64, at: Origin) {
        let Some(size) = self.live(file).map(|l| l.size) else {
            return;
        };
        let bs = u64::from(self.block_size);
        // ext4_punch_hole() never reaches the last block an indirect map can address.
        let max_length = crate::fs::file::max_file_size(self.block_size, false) - bs;
        let end = off.saturating_add(len).min(size).min(max_length);
        if off >= end {
            return;
        }
        let (first, last) = (off / bs, end / bs);
        if off % bs != 0 {
            let stop = if last == first { end % bs } else { bs };
            self.zero_in_block(file, first as u32, (off % bs) as usize, stop as usize, at);
        }
        if end % bs != 0 && (last != first || off % bs == 0) {
            self.zero_in_block(file, last as u32, 0, (end % bs) as usize, at);
        }
        self.make_holes(file, off.div_ceil(bs), last, at);
    }

    fn fallocate(&mut self, file: u8, off: u64, len: u64, at: Origin) {
        let Some(old) = self.live(file).map(|l| l.size) else {
            return;
        };
        let end = off + len;
        if end > old {
            // The engine grows i_size chunk by chunk: any size in between may be committed.
            self.hist[usize::from(file)].sizes.push((old, end, at));
            if let Some(live) = self.live[usize::from(file)].as_mut() {
                live.size = end;
            }
        }
    }

    /// The durability point of an fsync or sync that completed: the snapshot taken at its start
    /// ([`Model::begin`]; the state at its end if it had none).
    fn durable_point(&mut self, file: u8, at: Origin, end_log: usize) {
        let state = match self.snapshots.remove(&(at.seq, file)) {
            Some(s) => s,
            None => self.live[usize::from(file)].clone(),
        };
        let h = &mut self.hist[usize::from(file)];
        if h.taint.is_none() {
            h.durable.push(Durable {
                start_done: at.start_done,
                end_log,
                state,
            });
        }
    }

    /// The bytes a `read()` of `len` bytes at `off` returns now, or `None` when the model
    /// cannot say (the file does not exist or is tainted).
    pub fn expect_read(&self, file: u8, off: u64, len: u64) -> Option<Vec<u8>> {
        if self.is_tainted(file) {
            return None;
        }
        let live = self.live(file)?;
        let bs = u64::from(self.block_size);
        let end = off.saturating_add(len).min(live.size);
        let mut out = Vec::with_capacity(end.saturating_sub(off) as usize);
        let mut pos = off;
        while pos < end {
            let n = (bs - pos % bs).min(end - pos);
            let at = (pos % bs) as usize;
            match live.blocks.get(&((pos / bs) as u32)) {
                Some(b) => out.extend_from_slice(&b[at..at + n as usize]),
                None => out.resize(out.len() + n as usize, 0),
            }
            pos += n;
        }
        Some(out)
    }

    /// What a crash at log index `k` may show of `file`.
    pub fn expect(&self, file: u8, k: usize) -> Expect<'_> {
        let h = self.hist(file);
        let tainted = h.taint.is_some_and(|o| o.allowed_at(k));
        let exists = h.exists.iter().filter(|(_, o)| o.allowed_at(k));
        let (mut may_exist, mut may_be_absent) = (false, false);
        for (e, _) in exists {
            may_exist |= *e;
            may_be_absent |= !*e;
        }
        Expect {
            may_exist,
            may_be_absent,
            durable: self.durable_at(file, k),
            tainted,
            model: self,
            file,
            k,
        }
    }

    /// The state a crash at `k` must show exactly: that of the last durability point that
    /// ended by `k`, unless an op that may have changed the file completed after the fsync
    /// started (so the fsync may have missed part of it, or it changed the file since) and
    /// started before `k`.
    fn durable_at(&self, file: u8, k: usize) -> Option<&Option<FileState>> {
        let h = self.hist(file);
        let d = h.durable.iter().rev().find(|d| d.end_log <= k)?;
        let touched = h
            .touches
            .iter()
            .any(|(done, o)| *done > d.start_done && o.allowed_at(k));
        (!touched).then_some(&d.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(seq: u32, start_log: usize) -> Origin {
        Origin {
            start_log: Some(start_log),
            seq,
            start_done: seq - 1,
        }
    }

    fn setup() -> Vec<FileSetup> {
        vec![FileSetup {
            file: 1,
            indirect: true,
            writes: vec![(0, 1500, 4)],
        }]
    }

    #[test]
    fn template_and_writes_block_by_block() {
        let mut m = Model::new(1024, &setup());
        let live = m.live(1).unwrap();
        assert_eq!((live.size, live.blocks.len()), (1500, 2));
        assert_eq!(&live.blocks[&1][..476], &pattern::data(1, 4, 1024, 476)[..]);
        assert!(live.blocks[&1][476..].iter().all(|&b| b == 0));
        assert!(m.live(0).is_none());
        // A write of 3000 bytes at 1000: blocks 0..=3, sizes grow per block.
        let w = Op::Write {
            file: 1,
            off: 1000,
            len: 3000,
            tag: 9,
        };
        m.apply(&w, origin(1, 10), 20, Outcome::Ok);
        assert_eq!(m.live(1).unwrap().size, 4000);
        let e = m.expect(1, 11);
        assert!(e.size_ok(1500) && e.size_ok(2048) && e.size_ok(4000));
        assert!(!e.size_ok(1999) && !e.size_ok(0));
        let (zero, v) = e.block(0);
        assert_eq!((zero, v.len()), (false, 2));
        let (zero, v) = e.block(3);
        assert_eq!((zero, v.len()), (true, 1));
        // Before the op started, only the template.
        let e = m.expect(1, 10);
        assert!(!e.size_ok(4000));
        assert_eq!(e.block(3).1.len(), 0);
        assert_eq!(e.block(0).1.len(), 1);
    }

    #[test]
    fn truncate_punch_and_holes() {
        let mut m = Model::new(1024, &setup());
        m.apply(
            &Op::Truncate { file: 1, size: 100 },
            origin(1, 5),
            9,
            Outcome::Ok,
        );
        let live = m.live(1).unwrap();
        assert_eq!((live.size, live.blocks.len()), (100, 1));
        assert!(live.blocks[&0][100..].iter().all(|&b| b == 0));
        assert!(m.expect(1, 6).block(1).0);
        assert!(!m.expect(1, 5).block(1).0);
        m.apply(
            &Op::Write {
                file: 1,
                off: 0,
                len: 3072,
                tag: 1,
            },
            origin(2, 9),
            9,
            Outcome::Ok,
        );
        m.apply(
            &Op::Punch {
                file: 1,
                off: 500,
                len: 1600,
            },
            origin(3, 9),
            12,
            Outcome::Ok,
        );
        let live = m.live(1).unwrap();
        assert_eq!(live.blocks.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        assert!(live.blocks[&0][500..].iter().all(|&b| b == 0));
        assert!(live.blocks[&2][..52].iter().all(|&b| b == 0));
        assert_eq!(live.blocks[&2][52], pattern::data(1, 1, 2048 + 52, 1)[0]);
        let read = m.expect_read(1, 400, 200).unwrap();
        assert_eq!(&read[..100], &pattern::data(1, 1, 400, 100)[..]);
        assert!(read[100..].iter().all(|&b| b == 0));
    }

    #[test]
    fn durability_points_and_touches() {
        let mut m = Model::new(1024, &setup());
        m.apply(&Op::Fsync { file: 1 }, origin(1, 0), 8, Outcome::Ok);
        assert!(m.expect(1, 7).durable.is_none());
        assert_eq!(m.expect(1, 8).durable.unwrap().as_ref().unwrap().size, 1500);
        let w = Op::Write {
            file: 1,
            off: 0,
            len: 10,
            tag: 2,
        };
        m.apply(&w, origin(2, 8), 8, Outcome::Ok);
        // The write started at 8: a crash at 8 cannot show it, one at 9 can.
        assert!(m.expect(1, 8).durable.is_some());
        assert!(m.expect(1, 9).durable.is_none());
        m.apply(&Op::Sync, origin(3, 8), 15, Outcome::Ok);
        assert_eq!(
            m.expect(1, 15).durable.unwrap().as_ref().unwrap().size,
            1500
        );
        assert!(m.expect(0, 15).durable.unwrap().is_none());
        // A failed write taints the file: no durability point, no judgement after it.
        m.apply(&w, origin(4, 15), 16, Outcome::Failed);
        m.apply(&Op::Sync, origin(5, 16), 20, Outcome::Ok);
        assert!(m.expect(1, 20).tainted && !m.expect(1, 15).tainted);
        assert!(m.expect_read(1, 0, 10).is_none());
        // A rejected op is not a touch.
        m.apply(
            &Op::Fallocate {
                file: 0,
                off: 0,
                len: 1,
            },
            origin(6, 20),
            20,
            Outcome::Rejected,
        );
        assert!(m.expect(0, 21).durable.unwrap().is_none());
    }

    #[test]
    fn existence_follows_create_and_unlink() {
        let mut m = Model::new(1024, &[]);
        let e = m.expect(3, 100);
        assert_eq!((e.may_exist, e.may_be_absent), (false, true));
        m.apply(&Op::Create { file: 3 }, origin(1, 2), 6, Outcome::Ok);
        m.apply(&Op::Unlink { file: 3 }, origin(2, 6), 9, Outcome::Ok);
        let e = m.expect(3, 5);
        assert_eq!(
            (e.may_exist, e.may_be_absent, e.size_ok(0)),
            (true, true, true)
        );
        assert!(!m.expect(3, 2).may_exist);
        assert!(m.live(3).is_none());
    }
}
