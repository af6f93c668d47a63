//! The simulated disk: sparse copy-on-write blocks, a volatile write cache with flush and FUA,
//! a write log, crash-state building and fault injection. It knows blocks, not ext4.
//!
//! # Durability
//!
//! The model is a drive with a volatile write cache (kernel.md §5, "Write-ordering contract"):
//!
//! * a [`Disk::write`] completes into the cache: reads see it at once, a crash may lose it;
//! * a [`Disk::write_fua`] is durable when it returns, and supersedes cached copies of its block;
//! * a [`Disk::flush`] makes every write completed before it durable, and nothing issued later.
//!
//! jbd2's commit block (`REQ_PREFLUSH | REQ_FUA`) is `flush()` followed by `write_fua()`.
//!
//! # Crash states
//!
//! A crash keeps the durable state plus any subset of the pending (not yet durable) writes, each
//! whole or torn at 512-byte sector granularity, applied in issue order: [`Disk::crash_image`]
//! with [`CrashFates`]. [`Disk::replay_log`] rewinds the device to any earlier point of its log
//! (dm-log-writes' `replay_log_range`), so one run yields the crash states of every point.
//!
//! # Faults
//!
//! A [`FaultPlan`] fails chosen reads, writes and flushes with an injected `-EIO`, by position,
//! block or zone ([`Zone`]), and can cut the power at a chosen write ([`Disk::is_dead`]).
//! An access beyond the last block fails before the plan is consulted and counts for nothing.
//! A failed operation does not reach the device: no change, no log entry.
//!
//! # Cost
//!
//! No benchmark lives here (speed is measured by the harness, never in timed tests); the model
//! is built so that a campaign's per-crash-state work is proportional to what the run wrote:
//!
//! * `clone()`: O(blocks written and log entries since the last [`Disk::freeze`]); O(1) on a
//!   frozen template ([`Disk::overlay_blocks`] is 0).
//! * `read`/`write`: O(log n) map lookups; a write allocates its block once, and the cache,
//!   log and pending list share that allocation.
//! * [`Disk::crash_image`]: O(durable overlay + pending writes), sharing the base.
//! * [`Disk::replay_log`]: O(overlay at the log's start + replayed entries).
//!
//! # Layout
//!
//! | file | holds |
//! |---|---|
//! | `dev/store.rs` | the three storage layers: shared base, durable overlay, volatile overlay |
//! | `dev/log.rs` | [`LogEntry`], [`LogOp`], the pending-write list |
//! | `dev/zone.rs` | [`Zone`], [`ZoneMap`] |
//! | `dev/fault.rs` | [`FaultPlan`] and its counters |
//! | `dev/crash.rs` | [`CrashFates`], [`WriteFate`], [`SplitMix64`], crash images, log replay |
//! | `dev/image.rs` | loading and saving sparse image files |

mod crash;
mod fault;
mod image;
mod log;
mod store;
mod zone;

pub use crash::{CrashFates, SplitMix64, WriteFate};
pub use fault::{FaultOp, FaultPlan, FaultRule, FaultWhen};
pub use log::{LogEntry, LogOp};
pub use zone::{Zone, ZoneMap};

use crate::error::{Error, IoError, IoOp, Result};
use crate::units::Pblk;
use fault::{FaultState, Verdict};
use log::WriteLog;
use std::fmt;
use std::sync::Arc;
use store::Store;

/// One block's content, shared between the device, its clones, the log and readers.
pub type Block = Arc<[u8]>;

/// The unit of atomicity of the media: a torn write keeps or loses whole sectors.
pub const SECTOR_SIZE: u32 = 512;

/// `IoError::detail` of an error injected by a fault rule.
pub const DETAIL_INJECTED: &str = "injected";
/// `IoError::detail` of every operation at or after a plan's crash point.
pub const DETAIL_CRASHED: &str = "device crashed";
/// `IoError::detail` of an access past the last block.
pub const DETAIL_BEYOND_END: &str = "beyond end of device";

/// Whether `err` was injected by a fault plan (a rule or the crash point), as opposed to a real
/// problem such as an access beyond the end of the device.
pub fn is_simulated_io_error(err: &Error) -> bool {
    matches!(err, Error::Io(e) if e.detail == DETAIL_INJECTED || e.detail == DETAIL_CRASHED)
}

/// Operation counters of one device (successful operations only, plus injected faults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevStats {
    /// Completed block reads.
    pub reads: u64,
    /// Completed block writes, FUA included.
    pub writes: u64,
    /// Completed FUA writes.
    pub fua_writes: u64,
    /// Completed flushes.
    pub flushes: u64,
    /// Operations failed by a fault rule.
    pub faults: u64,
}

/// One operation that a fault rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// The kind of operation.
    pub op: FaultOp,
    /// Its block (`None`: a flush).
    pub blk: Option<Pblk>,
    /// The length of the device's log when it failed (the positions of the `repro` trace).
    pub log: usize,
}

/// Most [`FaultEvent`]s a device keeps (the first ones since its plan was installed).
pub const MAX_FAULT_EVENTS: usize = 64;

/// A simulated block device. `Clone` copies only what was written since the last
/// [`Disk::freeze`]; the frozen base is shared.
#[derive(Clone)]
pub struct Disk {
    block_size: u32,
    nr_blocks: u64,
    store: Store,
    log: WriteLog,
    /// The durable-only contents at the start of the log: replaying the log from here gives
    /// the current contents (see [`Disk::replay_log`]).
    origin: Store,
    stats: DevStats,
    zones: Arc<ZoneMap>,
    faults: FaultState,
    /// The operations the fault plan failed, the first [`MAX_FAULT_EVENTS`].
    fault_events: Vec<FaultEvent>,
    dead: bool,
}

impl Disk {
    /// An all-zero device of `nr_blocks` blocks of `block_size` bytes; nothing is stored.
    ///
    /// # Panics
    /// If `block_size` is not a power of two in 512..=32768 (a torn-write mask has one bit per
    /// sector), or the device size in bytes overflows `u64`.
    #[track_caller]
    pub fn new(block_size: u32, nr_blocks: u64) -> Disk {
        assert!(valid_block_size(block_size), "bad block size {block_size}");
        assert!(
            nr_blocks.checked_mul(u64::from(block_size)).is_some(),
            "device too large"
        );
        Disk::from_store(block_size, nr_blocks, Store::new(block_size as usize))
    }

    fn from_store(block_size: u32, nr_blocks: u64, store: Store) -> Disk {
        Disk {
            block_size,
            nr_blocks,
            origin: store.clone(),
            store,
            log: WriteLog::default(),
            stats: DevStats::default(),
            zones: Arc::new(ZoneMap::new()),
            faults: FaultState::default(),
            fault_events: Vec::new(),
            dead: false,
        }
    }

    /// Bytes per block.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Number of blocks.
    pub fn nr_blocks(&self) -> u64 {
        self.nr_blocks
    }

    /// 512-byte sectors per block (the bits of a [`WriteFate::Torn`] mask that matter).
    pub fn sectors_per_block(&self) -> u32 {
        self.block_size / SECTOR_SIZE
    }

    /// Read block `blk` into `buf` (`buf.len() == block_size`).
    pub fn read(&mut self, blk: Pblk, buf: &mut [u8]) -> Result<()> {
        self.read_as(blk, buf, Zone::Unknown)
    }

    /// [`Disk::read`] with a zone hint.
    pub fn read_as(&mut self, blk: Pblk, buf: &mut [u8], zone: Zone) -> Result<()> {
        self.check_len(buf.len());
        let data = self.read_block_as(blk, zone)?;
        buf.copy_from_slice(&data);
        Ok(())
    }

    /// Read block `blk` without copying it.
    pub fn read_block(&mut self, blk: Pblk) -> Result<Block> {
        self.read_block_as(blk, Zone::Unknown)
    }

    /// [`Disk::read_block`] with a zone hint.
    pub fn read_block_as(&mut self, blk: Pblk, zone: Zone) -> Result<Block> {
        self.begin(FaultOp::Read, blk, zone)?;
        self.stats.reads += 1;
        Ok(Arc::clone(self.store.get(blk.0)))
    }

    /// Write block `blk` (`data.len() == block_size`). Volatile until a later flush completes.
    pub fn write(&mut self, blk: Pblk, data: &[u8]) -> Result<()> {
        self.write_as(blk, data, Zone::Unknown)
    }

    /// [`Disk::write`] with a zone hint.
    pub fn write_as(&mut self, blk: Pblk, data: &[u8], zone: Zone) -> Result<()> {
        self.write_inner(blk, data, false, zone)
    }

    /// Write block `blk` with FUA: durable when it returns.
    pub fn write_fua(&mut self, blk: Pblk, data: &[u8]) -> Result<()> {
        self.write_fua_as(blk, data, Zone::Unknown)
    }

    /// [`Disk::write_fua`] with a zone hint.
    pub fn write_fua_as(&mut self, blk: Pblk, data: &[u8], zone: Zone) -> Result<()> {
        self.write_inner(blk, data, true, zone)
    }

    fn write_inner(&mut self, blk: Pblk, data: &[u8], fua: bool, hint: Zone) -> Result<()> {
        self.check_len(data.len());
        let zone = self.begin(FaultOp::Write, blk, hint)?;
        let data: Block = Arc::from(data);
        if fua {
            self.store.put_durable(blk.0, Arc::clone(&data));
            self.stats.fua_writes += 1;
        } else {
            self.store.put_volatile(blk.0, Arc::clone(&data));
        }
        self.log.record_write(blk, data, fua, zone);
        self.stats.writes += 1;
        Ok(())
    }

    /// Model of a cache flush (`blkdev_issue_flush()`): every completed write becomes durable.
    pub fn flush(&mut self) -> Result<()> {
        if self.dead {
            return Err(io_error(IoOp::Flush, Pblk(0), DETAIL_CRASHED));
        }
        self.apply_verdict(FaultOp::Flush, None, None, Pblk(0))?;
        self.store.flush();
        self.log.record_flush();
        self.stats.flushes += 1;
        Ok(())
    }

    /// Check that the device is alive and `blk` exists, then consult the fault plan. Returns the
    /// effective zone of the operation.
    fn begin(&mut self, op: FaultOp, blk: Pblk, hint: Zone) -> Result<Zone> {
        let io_op = io_op(op);
        if self.dead {
            return Err(io_error(io_op, blk, DETAIL_CRASHED));
        }
        if blk.0 >= self.nr_blocks {
            return Err(io_error(io_op, blk, DETAIL_BEYOND_END));
        }
        let zone = zone::effective_zone(&self.zones, blk, hint);
        self.apply_verdict(op, Some(blk), Some(zone), blk)?;
        Ok(zone)
    }

    fn apply_verdict(
        &mut self,
        op: FaultOp,
        blk: Option<Pblk>,
        zone: Option<Zone>,
        at: Pblk,
    ) -> Result<()> {
        match self.faults.check(op, blk, zone) {
            Verdict::Pass => Ok(()),
            Verdict::Fail => {
                self.stats.faults += 1;
                if self.fault_events.len() < MAX_FAULT_EVENTS {
                    let log = self.log.entries().len();
                    self.fault_events.push(FaultEvent { op, blk, log });
                }
                Err(io_error(io_op(op), at, DETAIL_INJECTED))
            }
            Verdict::Crash => {
                self.dead = true;
                Err(io_error(io_op(op), at, DETAIL_CRASHED))
            }
        }
    }

    #[track_caller]
    fn check_len(&self, len: usize) {
        assert_eq!(
            len, self.block_size as usize,
            "buffer length is not the block size"
        );
    }

    /// Read `len` bytes at byte offset `off` (may span blocks; each block is one read).
    pub fn read_bytes(&mut self, off: u64, len: usize) -> Result<Vec<u8>> {
        self.check_byte_range(IoOp::Read, off, len)?;
        let bs = u64::from(self.block_size);
        let mut out = Vec::with_capacity(len);
        let mut pos = off;
        while out.len() < len {
            let in_blk = (pos % bs) as usize;
            let n = (bs as usize - in_blk).min(len - out.len());
            let data = self.read_block(Pblk(pos / bs))?;
            out.extend_from_slice(&data[in_blk..in_blk + n]);
            pos += n as u64;
        }
        Ok(out)
    }

    /// Write `data` at byte offset `off` (volatile, like [`Disk::write`]). A partly covered
    /// block is read, modified and written back.
    pub fn write_bytes(&mut self, off: u64, data: &[u8]) -> Result<()> {
        self.check_byte_range(IoOp::Write, off, data.len())?;
        let bs = u64::from(self.block_size);
        let mut pos = off;
        let mut rest = data;
        while !rest.is_empty() {
            let blk = Pblk(pos / bs);
            let in_blk = (pos % bs) as usize;
            let n = (bs as usize - in_blk).min(rest.len());
            if n == bs as usize {
                self.write(blk, &rest[..n])?;
            } else {
                let mut buf = self.read_block(blk)?.to_vec();
                buf[in_blk..in_blk + n].copy_from_slice(&rest[..n]);
                self.write(blk, &buf)?;
            }
            pos += n as u64;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn check_byte_range(&self, op: IoOp, off: u64, len: usize) -> Result<()> {
        let size = self.nr_blocks * u64::from(self.block_size);
        match off.checked_add(len as u64) {
            Some(end) if end <= size => Ok(()),
            _ => Err(io_error(op, Pblk(self.nr_blocks), DETAIL_BEYOND_END)),
        }
    }

    /// Fold everything (pending writes included, as if flushed) into a new shared base and clear
    /// the log, so that clones of this disk are O(1). Call once per template.
    pub fn freeze(&mut self) {
        self.store.fold();
        self.log.reset();
        self.origin = self.store.clone();
    }

    /// The write log since the last [`Disk::freeze`] or [`Disk::clear_log`].
    pub fn log(&self) -> &[LogEntry] {
        self.log.entries()
    }

    /// Forget the log. Entries of writes that are still pending stay (a crash may still keep
    /// them, and [`Disk::pending_writes`] refers to them); they remain pending.
    pub fn clear_log(&mut self) {
        self.log.clear();
        self.origin = self.store.durable_only();
    }

    /// Operation counters.
    pub fn stats(&self) -> DevStats {
        self.stats
    }

    /// Log indices of the writes not yet durable, in issue order (what a crash chooses from).
    pub fn pending_writes(&self) -> Vec<usize> {
        self.log.pending_indices()
    }

    /// Whether the current content of `blk` is durable (no pending write to it). For tests and
    /// oracles: no fault, no statistics.
    pub fn is_durable(&self, blk: Pblk) -> bool {
        !self.store.is_volatile(blk.0)
    }

    /// The durable content of `blk`: what a crash losing every pending write leaves there.
    pub fn durable_block(&self, blk: Pblk) -> Block {
        Arc::clone(self.store.get_durable(blk.0))
    }

    /// The current content of `blk` without an I/O: no fault, no statistics, works on a dead
    /// device. For oracles and tests. Blocks past the end read as zeroes.
    pub fn peek_block(&self, blk: Pblk) -> Block {
        Arc::clone(self.store.get(blk.0))
    }

    /// Install a fault plan (replacing the previous one); its counters start from zero. A dead
    /// device stays dead.
    pub fn set_fault_plan(&mut self, plan: FaultPlan) {
        self.faults = FaultState::new(plan);
        self.fault_events.clear();
    }

    /// The operations the installed plan has failed so far, in order (the first
    /// [`MAX_FAULT_EVENTS`]; [`DevStats::faults`] counts them all).
    pub fn fault_events(&self) -> &[FaultEvent] {
        &self.fault_events
    }

    /// The installed fault plan.
    pub fn fault_plan(&self) -> &FaultPlan {
        self.faults.plan()
    }

    /// Per rule of the installed plan: the blocks it failed, in order; only the first one
    /// unless the rule is [`FaultWhen::FirstEach`](fault::FaultWhen::FirstEach) (empty: it
    /// has not fired, or it first failed a flush).
    pub fn fault_failed_blocks(&self) -> &[Vec<Pblk>] {
        self.faults.failed_blocks()
    }

    /// Whether the device lost power at its plan's crash point. Permanent.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Install the static zones (provided by the filesystem layer).
    pub fn set_zone_map(&mut self, map: ZoneMap) {
        self.zones = Arc::new(map);
    }

    /// The static zones.
    pub fn zone_map(&self) -> &ZoneMap {
        &self.zones
    }

    /// The static zone of `blk` ([`Zone::Unknown`] if the map does not cover it).
    pub fn zone_of(&self, blk: Pblk) -> Zone {
        self.zones.zone_of(blk)
    }

    /// Every block content written since the last freeze/clear_log, in issue order, from the
    /// log (journal blocks included): what the flag-on-disk oracle scans.
    pub fn written_blocks(&self) -> impl Iterator<Item = (Pblk, Block)> + '_ {
        self.log.entries().iter().filter_map(|e| match &e.op {
            LogOp::Write { blk, data, .. } => Some((*blk, Arc::clone(data))),
            LogOp::Flush => None,
        })
    }

    /// Number of blocks in the private overlays (what [`Clone`] copies). 0 right after a freeze.
    pub fn overlay_blocks(&self) -> usize {
        self.store.overlay_len()
    }

    /// Number of (non-zero) blocks in the shared base.
    pub fn base_blocks(&self) -> usize {
        self.store.base_len()
    }

    /// Whether `self` and `other` share their base (one is a clone of the other, or both are
    /// clones or crash images of one frozen template).
    pub fn shares_base_with(&self, other: &Disk) -> bool {
        self.store.shares_base_with(&other.store)
    }
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disk")
            .field("block_size", &self.block_size)
            .field("nr_blocks", &self.nr_blocks)
            .field("base_blocks", &self.store.base_len())
            .field("overlay_blocks", &self.store.overlay_len())
            .field("log_len", &self.log.entries().len())
            .field("pending", &self.log.pending().len())
            .field("stats", &self.stats)
            .field("fault_plan", self.faults.plan())
            .field("dead", &self.dead)
            .finish()
    }
}

/// Whether `bs` is a block size the device supports.
fn valid_block_size(bs: u32) -> bool {
    bs.is_power_of_two() && (SECTOR_SIZE..=64 * SECTOR_SIZE).contains(&bs)
}

/// The [`IoOp`] of a device operation.
fn io_op(op: FaultOp) -> IoOp {
    match op {
        FaultOp::Read => IoOp::Read,
        FaultOp::Write => IoOp::Write,
        FaultOp::Flush => IoOp::Flush,
    }
}

/// A device I/O error.
fn io_error(op: IoOp, block: Pblk, detail: &str) -> Error {
    Error::Io(IoError {
        op,
        block,
        detail: detail.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(b: u8) -> Vec<u8> {
        vec![b; 1024]
    }

    fn first(d: &Disk, blk: u64) -> u8 {
        d.peek_block(Pblk(blk))[0]
    }

    fn detail(r: Result<impl fmt::Debug>) -> (IoOp, Pblk, String) {
        match r {
            Err(Error::Io(e)) => (e.op, e.block, e.detail),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn read_after_write_and_zeroes() {
        let mut d = Disk::new(1024, 16);
        let mut buf = filled(0xFF);
        d.read(Pblk(3), &mut buf).unwrap();
        assert_eq!(buf, filled(0));
        d.write(Pblk(3), &filled(7)).unwrap();
        d.read(Pblk(3), &mut buf).unwrap();
        assert_eq!(buf, filled(7));
        assert_eq!(&d.read_block(Pblk(3)).unwrap()[..], &filled(7)[..]);
        assert_eq!(&d.read_block(Pblk(4)).unwrap()[..], &filled(0)[..]);
        let s = d.stats();
        assert_eq!((s.reads, s.writes, s.fua_writes, s.flushes), (4, 1, 0, 0));
    }

    #[test]
    fn durability_of_write_fua_and_flush() {
        let mut d = Disk::new(1024, 16);
        d.write(Pblk(1), &filled(1)).unwrap();
        d.write_fua(Pblk(2), &filled(2)).unwrap();
        assert!(!d.is_durable(Pblk(1)) && d.is_durable(Pblk(2)));
        assert_eq!(d.durable_block(Pblk(1))[0], 0);
        assert_eq!(d.durable_block(Pblk(2))[0], 2);
        d.flush().unwrap();
        d.write(Pblk(3), &filled(3)).unwrap();
        // The flush made write 1 durable, not write 3 issued after it.
        assert_eq!(d.durable_block(Pblk(1))[0], 1);
        assert_eq!(d.durable_block(Pblk(3))[0], 0);
        assert_eq!(d.pending_writes(), vec![3]);
        let img = d.crash_image(&CrashFates::AllLost);
        assert_eq!((first(&img, 1), first(&img, 2), first(&img, 3)), (1, 2, 0));
        let s = d.stats();
        assert_eq!((s.writes, s.fua_writes, s.flushes), (3, 1, 1));
    }

    #[test]
    fn fua_supersedes_a_pending_copy() {
        let mut d = Disk::new(1024, 16);
        d.write(Pblk(5), &filled(1)).unwrap();
        d.write_fua(Pblk(5), &filled(2)).unwrap();
        assert!(d.is_durable(Pblk(5)));
        assert!(d.pending_writes().is_empty());
        assert_eq!(first(&d.crash_image(&CrashFates::AllKept), 5), 2);
        d.write(Pblk(5), &filled(3)).unwrap();
        assert_eq!(first(&d.crash_image(&CrashFates::AllLost), 5), 2);
    }

    #[test]
    fn log_records_epochs_and_zones() {
        let mut d = Disk::new(1024, 16);
        d.set_zone_map(ZoneMap::new().with(Pblk(8), 8, Zone::Journal));
        d.write_as(Pblk(1), &filled(1), Zone::Data).unwrap();
        d.flush().unwrap();
        d.write_fua_as(Pblk(9), &filled(9), Zone::Data).unwrap();
        let log = d.log();
        assert_eq!(log.len(), 3);
        assert_eq!((log[0].seq, log[0].epoch), (0, 0));
        assert_eq!((log[1].op.clone(), log[1].epoch), (LogOp::Flush, 0));
        match &log[2].op {
            LogOp::Write { blk, fua, zone, .. } => {
                assert_eq!((*blk, *fua, *zone), (Pblk(9), true, Zone::Journal));
            }
            LogOp::Flush => panic!("expected a write"),
        }
        assert_eq!(log[2].epoch, 1);
        let written: Vec<(Pblk, u8)> = d.written_blocks().map(|(b, x)| (b, x[0])).collect();
        assert_eq!(written, vec![(Pblk(1), 1), (Pblk(9), 9)]);
        assert_eq!(d.zone_of(Pblk(15)), Zone::Journal);
        assert_eq!(d.zone_of(Pblk(16)), Zone::Unknown);
        d.clear_log();
        assert!(d.log().is_empty() && d.written_blocks().next().is_none());
    }

    #[test]
    fn beyond_end_is_an_io_error() {
        let mut d = Disk::new(1024, 4);
        let mut buf = filled(0);
        let beyond = DETAIL_BEYOND_END.to_string();
        assert_eq!(
            detail(d.read(Pblk(4), &mut buf)),
            (IoOp::Read, Pblk(4), beyond.clone())
        );
        assert_eq!(
            detail(d.write(Pblk(9), &buf)),
            (IoOp::Write, Pblk(9), beyond.clone())
        );
        assert_eq!(
            detail(d.read_bytes(4095, 2)),
            (IoOp::Read, Pblk(4), beyond.clone())
        );
        assert_eq!(
            detail(d.write_bytes(u64::MAX, &[1])),
            (IoOp::Write, Pblk(4), beyond)
        );
        assert!(d.log().is_empty());
        assert_eq!(d.stats(), DevStats::default());
        assert!(!is_simulated_io_error(
            &d.read(Pblk(4), &mut buf).unwrap_err()
        ));
    }

    #[test]
    #[should_panic(expected = "block size")]
    fn short_buffer_panics() {
        let _ = Disk::new(1024, 4).write(Pblk(0), &[0; 512]);
    }

    #[test]
    fn byte_helpers_span_blocks() {
        let mut d = Disk::new(1024, 8);
        d.write_bytes(1020, &[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(d.read_bytes(1019, 8).unwrap(), vec![0, 1, 2, 3, 4, 5, 6, 0]);
        let b0 = d.peek_block(Pblk(0));
        assert_eq!((&b0[1020..], b0[0]), (&[1, 2, 3, 4][..], 0));
        assert_eq!(&d.peek_block(Pblk(1))[..3], &[5, 6, 0]);
        // A whole block in the middle is written without being read first.
        let before = d.stats().reads;
        d.write_bytes(2048, &filled(9)).unwrap();
        assert_eq!(d.stats().reads, before);
        assert_eq!(first(&d, 2), 9);
        assert!(d.read_bytes(8192, 0).unwrap().is_empty());
    }

    #[test]
    fn clones_are_independent_and_cheap_after_freeze() {
        let mut d = Disk::new(1024, 64);
        for b in 0..10 {
            d.write(Pblk(b), &filled(b as u8 + 1)).unwrap();
        }
        assert_eq!(d.overlay_blocks(), 10);
        d.freeze();
        assert_eq!((d.overlay_blocks(), d.base_blocks()), (0, 10));
        assert!(d.log().is_empty() && d.pending_writes().is_empty());
        let mut c = d.clone();
        assert_eq!(c.overlay_blocks(), 0);
        assert!(c.shares_base_with(&d));
        c.write(Pblk(3), &filled(0xCC)).unwrap();
        assert_eq!((first(&c, 3), first(&d, 3)), (0xCC, 4));
        assert!(d.log().is_empty());
        d.write(Pblk(4), &filled(0xDD)).unwrap();
        assert_eq!((first(&c, 4), first(&d, 4)), (5, 0xDD));
        assert_eq!(c.overlay_blocks(), 1);
    }

    #[test]
    fn nth_write_fails_once_without_touching_the_device() {
        let mut d = Disk::new(1024, 8);
        d.set_fault_plan(
            FaultPlan::none().with_rule(FaultRule::new(FaultOp::Write, FaultWhen::Nth(1))),
        );
        d.write(Pblk(0), &filled(1)).unwrap();
        let err = d.write(Pblk(1), &filled(2)).unwrap_err();
        assert!(is_simulated_io_error(&err));
        assert_eq!(
            detail(Err::<(), _>(err)),
            (IoOp::Write, Pblk(1), "injected".into())
        );
        d.write(Pblk(1), &filled(3)).unwrap();
        assert_eq!(first(&d, 1), 3);
        assert_eq!(d.log().len(), 2);
        assert_eq!((d.stats().writes, d.stats().faults), (2, 1));
        let event = FaultEvent {
            op: FaultOp::Write,
            blk: Some(Pblk(1)),
            log: 1,
        };
        assert_eq!(d.fault_events(), [event]);
        d.set_fault_plan(FaultPlan::none());
        assert!(d.fault_events().is_empty());
    }

    #[test]
    fn sticky_zone_and_block_rules() {
        let mut d = Disk::new(1024, 32);
        d.set_zone_map(ZoneMap::new().with(Pblk(16), 16, Zone::Journal));
        d.set_fault_plan(
            FaultPlan::none()
                .with_rule(FaultRule::new(FaultOp::Write, FaultWhen::Always).in_zone(Zone::Journal))
                .with_rule(FaultRule::new(FaultOp::Read, FaultWhen::Block(Pblk(2))).sticky())
                .with_rule(FaultRule::new(FaultOp::Read, FaultWhen::Nth(0)).in_zone(Zone::Data)),
        );
        let mut buf = filled(0);
        d.write_as(Pblk(3), &buf, Zone::Data).unwrap();
        assert!(d.write(Pblk(17), &buf).is_err()); // journal zone, once
        d.write_as(Pblk(18), &buf, Zone::Data).unwrap(); // static zone beats the hint
        assert!(d.read(Pblk(2), &mut buf).is_err());
        assert!(d.read(Pblk(2), &mut buf).is_err()); // sticky
        d.read(Pblk(3), &mut buf).unwrap(); // no hint: Unknown, not Data
        assert!(d.read_as(Pblk(3), &mut buf, Zone::Data).is_err());
        d.read_as(Pblk(3), &mut buf, Zone::Data).unwrap();
        assert_eq!(d.stats().faults, 4);
        d.set_fault_plan(
            FaultPlan::none().with_rule(FaultRule::new(FaultOp::Flush, FaultWhen::Nth(0))),
        );
        d.write(Pblk(4), &buf).unwrap();
        assert_eq!(detail(d.flush()), (IoOp::Flush, Pblk(0), "injected".into()));
        assert!(!d.is_durable(Pblk(4))); // the failed flush made nothing durable
        d.flush().unwrap();
        assert!(d.is_durable(Pblk(4)));
    }

    #[test]
    fn crash_at_write_kills_the_device() {
        let mut d = Disk::new(1024, 8);
        d.write(Pblk(0), &filled(9)).unwrap(); // before the plan: not counted
        d.set_fault_plan(FaultPlan::crash_at_write(2));
        d.write(Pblk(1), &filled(1)).unwrap();
        d.flush().unwrap();
        d.write(Pblk(2), &filled(2)).unwrap();
        let crashed = "device crashed".to_string();
        assert_eq!(
            detail(d.write_fua(Pblk(3), &filled(3))),
            (IoOp::Write, Pblk(3), crashed.clone())
        );
        assert!(d.is_dead());
        let mut buf = filled(0);
        assert_eq!(
            detail(d.read(Pblk(1), &mut buf)),
            (IoOp::Read, Pblk(1), crashed.clone())
        );
        assert_eq!(detail(d.flush()), (IoOp::Flush, Pblk(0), crashed));
        assert!(is_simulated_io_error(&d.write(Pblk(4), &buf).unwrap_err()));
        assert_eq!(d.log().len(), 4);
        assert_eq!(d.pending_writes(), vec![3]);
        // The crash image holds only what was issued before the crash point.
        let all = d.crash_image(&CrashFates::AllKept);
        let got: Vec<u8> = (0..5).map(|b| first(&all, b)).collect();
        assert_eq!(got, vec![9, 1, 2, 0, 0]);
        assert_eq!(first(&d.crash_image(&CrashFates::AllLost), 2), 0);
        assert!(!all.is_dead() && all.fault_plan().is_empty());
        // Installing a new plan does not revive a dead device.
        d.set_fault_plan(FaultPlan::none());
        assert!(d.is_dead() && d.write(Pblk(1), &buf).is_err());
    }
}
