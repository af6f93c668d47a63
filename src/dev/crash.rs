//! Crash states: which pending writes reach the media when the power goes, and the images
//! that result.
//!
//! A crash image is the durable state plus a chosen subset of the pending writes, each whole or
//! torn at sector granularity, applied in issue order (so of two surviving writes to one block
//! the later wins, sector by sector). [`CrashFates`] chooses, and [`CrashFates::resolve`] turns
//! any choice into one canonical [`WriteFate`] per pending write, so the harness can record the
//! exact state it checked.
//!
//! [`Disk::replay_log`] rewinds a device to any earlier point of its log, which with
//! [`Disk::crash_image`] gives the crash states of every point of one run without re-running it.

use super::log::{LogEntry, LogOp};
use super::{Block, Disk, SECTOR_SIZE};
use std::sync::Arc;

/// What became of one pending write at the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteFate {
    /// Nothing of it reached the media.
    Lost,
    /// All of it reached the media.
    Whole,
    /// Bit `i` set: 512-byte sector `i` of the block reached the media.
    Torn(u64),
}

/// How a crash treats the pending writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashFates {
    /// Every pending write is lost: only the durable state survives.
    AllLost,
    /// Every pending write reaches the media whole.
    AllKept,
    /// One fate per pending write, in issue order; missing ones are lost, extra ones ignored.
    Explicit(Vec<WriteFate>),
    /// Fates drawn from a [`SplitMix64`] seeded with `seed`: per pending write, three draws
    /// `k`, `t`, `m`; the write is kept if `k % 1000 < keep_per_mille`, and a kept write is torn
    /// with sector mask `m` if `t % 1000 < tear_per_mille`.
    Seeded {
        /// The PRNG seed.
        seed: u64,
        /// Chance, out of 1000, that a write is kept (whole or torn).
        keep_per_mille: u16,
        /// Chance, out of 1000, that a kept write is torn.
        tear_per_mille: u16,
    },
}

impl CrashFates {
    /// One canonical fate per pending write: torn masks are cut to `sectors_per_block` bits, an
    /// empty mask becomes [`WriteFate::Lost`] and a full one [`WriteFate::Whole`].
    pub fn resolve(&self, n_pending: usize, sectors_per_block: u32) -> Vec<WriteFate> {
        let raw: Vec<WriteFate> = match self {
            CrashFates::AllLost => vec![WriteFate::Lost; n_pending],
            CrashFates::AllKept => vec![WriteFate::Whole; n_pending],
            CrashFates::Explicit(fates) => (0..n_pending)
                .map(|i| fates.get(i).copied().unwrap_or(WriteFate::Lost))
                .collect(),
            CrashFates::Seeded {
                seed,
                keep_per_mille,
                tear_per_mille,
            } => {
                let mut rng = SplitMix64::new(*seed);
                (0..n_pending)
                    .map(|_| rng.fate(*keep_per_mille, *tear_per_mille))
                    .collect()
            }
        };
        let full = sector_mask(sectors_per_block);
        raw.into_iter().map(|f| canonical(f, full)).collect()
    }

    /// The crash that keeps (whole) exactly the pending writes whose bit is set in `keep`; bit
    /// `i` is pending write `i`, writes from the 64th on are lost. Enumerating `keep` over
    /// `0..1 << n` visits every untorn crash state of `n` pending writes.
    pub fn from_subset(n_pending: usize, keep: u64) -> CrashFates {
        CrashFates::Explicit(
            (0..n_pending)
                .map(
                    |i| match u32::try_from(i).ok().and_then(|s| keep.checked_shr(s)) {
                        Some(bits) if bits & 1 == 1 => WriteFate::Whole,
                        _ => WriteFate::Lost,
                    },
                )
                .collect(),
        )
    }

    /// Number of distinct canonical fate vectors for `n_pending` writes (each write has
    /// `2^sectors_per_block` fates), or `None` above `u128`. Distinct vectors can still give
    /// equal images (a write identical to the old content, say).
    pub fn count_states(n_pending: usize, sectors_per_block: u32) -> Option<u128> {
        let bits = u32::try_from(n_pending)
            .ok()?
            .checked_mul(sectors_per_block)?;
        1u128.checked_shl(bits)
    }
}

/// The mask of a block's sectors.
fn sector_mask(sectors_per_block: u32) -> u64 {
    match sectors_per_block {
        64.. => u64::MAX,
        s => (1u64 << s) - 1,
    }
}

fn canonical(fate: WriteFate, full: u64) -> WriteFate {
    match fate {
        WriteFate::Torn(m) if m & full == 0 => WriteFate::Lost,
        WriteFate::Torn(m) if m & full == full => WriteFate::Whole,
        WriteFate::Torn(m) => WriteFate::Torn(m & full),
        f => f,
    }
}

/// The splitmix64 generator (Steele, Lea, Flood 2014; Vigna's reference constants). Its output
/// is part of the `.repro` contract: it must never change (pinned in the tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `per_mille / 1000` (always from 1000 on).
    pub fn chance_per_mille(&mut self, per_mille: u16) -> bool {
        self.next_u64() % 1000 < u64::from(per_mille)
    }

    /// One [`CrashFates::Seeded`] fate: always exactly three draws.
    fn fate(&mut self, keep_per_mille: u16, tear_per_mille: u16) -> WriteFate {
        let kept = self.chance_per_mille(keep_per_mille);
        let torn = self.chance_per_mille(tear_per_mille);
        let mask = self.next_u64();
        match (kept, torn) {
            (false, _) => WriteFate::Lost,
            (true, false) => WriteFate::Whole,
            (true, true) => WriteFate::Torn(mask),
        }
    }
}

/// `old` with the sectors of `new` selected by `mask`.
fn tear(old: &[u8], new: &[u8], mask: u64) -> Block {
    let sector = SECTOR_SIZE as usize;
    let mut out = old.to_vec();
    for (i, (o, n)) in out.chunks_mut(sector).zip(new.chunks(sector)).enumerate() {
        if (mask >> i) & 1 == 1 {
            o.copy_from_slice(n);
        }
    }
    Arc::from(out)
}

impl Disk {
    /// The image left by a crash now: the durable state plus the pending writes `fates` keeps,
    /// applied in issue order. The result is a fresh device (all durable, empty log, no fault
    /// plan, zeroed statistics, same zone map) sharing this one's base. Works on a dead device:
    /// the write that hit the crash point was never issued.
    pub fn crash_image(&self, fates: &CrashFates) -> Disk {
        let pending = self.log.pending();
        let fates = fates.resolve(pending.len(), self.sectors_per_block());
        let mut store = self.store.durable_only();
        for (p, fate) in pending.iter().zip(fates) {
            match fate {
                WriteFate::Lost => {}
                WriteFate::Whole => store.put_durable(p.blk, Arc::clone(&p.data)),
                WriteFate::Torn(mask) => {
                    let merged = tear(store.get_durable(p.blk), &p.data, mask);
                    store.put_durable(p.blk, merged);
                }
            }
        }
        let mut disk = Disk::from_store(self.block_size, self.nr_blocks, store);
        disk.zones = Arc::clone(&self.zones);
        disk
    }

    /// The device as it was just before log entry `upto` was issued (`upto == log().len()`:
    /// as it is now): contents, cache, log and pending writes, with no fault plan, zeroed
    /// statistics and the same zone map. xfstests' `_log_writes_replay_log_range`.
    ///
    /// # Panics
    /// If `upto > log().len()`.
    #[track_caller]
    pub fn replay_log(&self, upto: usize) -> Disk {
        let entries = self.log.entries();
        assert!(upto <= entries.len(), "replay past the end of the log");
        let mut disk = Disk::from_store(self.block_size, self.nr_blocks, self.origin.clone());
        disk.zones = Arc::clone(&self.zones);
        disk.log = self.log.at_origin();
        for entry in &entries[..upto] {
            disk.apply_logged(entry);
        }
        disk
    }

    /// Advance `self`, a [`replay_log`](Disk::replay_log) of `src` (to any earlier point), to
    /// log entry `upto` of `src`: the same device `src.replay_log(upto)` gives, for the cost of
    /// the entries in between (crash points are visited in order).
    ///
    /// # Panics
    /// If `self` is past `upto` or `upto > src.log().len()`.
    #[track_caller]
    pub fn replay_log_to(&mut self, src: &Disk, upto: usize) {
        let entries = src.log.entries();
        let from = self.log.entries().len();
        assert!(from <= upto && upto <= entries.len(), "replay out of order");
        for entry in &entries[from..upto] {
            self.apply_logged(entry);
        }
    }

    /// Redo one logged operation exactly (same sequence number and epoch), without faults.
    fn apply_logged(&mut self, entry: &LogEntry) {
        self.log.set_position(entry.seq, entry.epoch);
        match &entry.op {
            LogOp::Write {
                blk,
                data,
                fua,
                zone,
            } => {
                if *fua {
                    self.store.put_durable(blk.0, Arc::clone(data));
                } else {
                    self.store.put_volatile(blk.0, Arc::clone(data));
                }
                self.log.record_write(*blk, Arc::clone(data), *fua, *zone);
            }
            LogOp::Flush => {
                self.store.flush();
                self.log.record_flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Pblk;

    fn filled(bs: usize, b: u8) -> Vec<u8> {
        vec![b; bs]
    }

    fn first(d: &Disk, blk: u64) -> u8 {
        d.peek_block(Pblk(blk))[0]
    }

    #[test]
    fn splitmix64_outputs_are_pinned() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
        let mut r = SplitMix64::new(0x1234_5678);
        let v: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut again = SplitMix64::new(0x1234_5678);
        assert_eq!(v, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn seeded_fates_are_pinned() {
        let fates = CrashFates::Seeded {
            seed: 42,
            keep_per_mille: 500,
            tear_per_mille: 300,
        };
        let got = fates.resolve(8, 2);
        assert_eq!(got, fates.resolve(8, 2));
        assert_eq!(got, PINNED_SEED_42);
        // Keeping nothing / everything untorn ignores the draws.
        let none = CrashFates::Seeded {
            seed: 42,
            keep_per_mille: 0,
            tear_per_mille: 1000,
        };
        assert_eq!(none.resolve(4, 8), vec![WriteFate::Lost; 4]);
        let all = CrashFates::Seeded {
            seed: 7,
            keep_per_mille: 1000,
            tear_per_mille: 0,
        };
        assert_eq!(all.resolve(4, 8), vec![WriteFate::Whole; 4]);
    }

    /// `Seeded { seed: 42, keep 500, tear 300 }` for 8 writes of 2 sectors.
    const PINNED_SEED_42: [WriteFate; 8] = [
        WriteFate::Torn(0b10),
        WriteFate::Lost,
        WriteFate::Lost,
        WriteFate::Lost,
        WriteFate::Whole,
        WriteFate::Whole,
        WriteFate::Lost,
        WriteFate::Lost,
    ];

    #[test]
    fn resolve_canonicalises_and_pads() {
        let f = CrashFates::Explicit(vec![
            WriteFate::Torn(0b100),
            WriteFate::Torn(0b111),
            WriteFate::Torn(0b101),
            WriteFate::Whole,
        ]);
        assert_eq!(
            f.resolve(5, 2),
            vec![
                WriteFate::Lost,
                WriteFate::Whole,
                WriteFate::Torn(0b01),
                WriteFate::Whole,
                WriteFate::Lost
            ]
        );
        assert_eq!(f.resolve(1, 8), vec![WriteFate::Torn(0b100)]);
        assert_eq!(
            CrashFates::Explicit(vec![WriteFate::Torn(u64::MAX)]).resolve(1, 64),
            vec![WriteFate::Whole]
        );
    }

    #[test]
    fn subsets_and_counts() {
        assert_eq!(
            CrashFates::from_subset(3, 0b101),
            CrashFates::Explicit(vec![WriteFate::Whole, WriteFate::Lost, WriteFate::Whole])
        );
        assert_eq!(
            CrashFates::from_subset(66, u64::MAX).resolve(66, 2)[64..],
            [WriteFate::Lost, WriteFate::Lost]
        );
        assert_eq!(CrashFates::count_states(0, 8), Some(1));
        assert_eq!(CrashFates::count_states(3, 2), Some(64));
        assert_eq!(CrashFates::count_states(15, 8), Some(1 << 120));
        assert_eq!(CrashFates::count_states(16, 8), None);
    }

    #[test]
    fn all_lost_gives_old_data_all_kept_new() {
        let mut d = Disk::new(1024, 16);
        d.write(Pblk(3), &filled(1024, 1)).unwrap();
        d.flush().unwrap();
        d.write(Pblk(3), &filled(1024, 2)).unwrap();
        d.write(Pblk(4), &filled(1024, 3)).unwrap();
        let lost = d.crash_image(&CrashFates::AllLost);
        assert_eq!((first(&lost, 3), first(&lost, 4)), (1, 0));
        let kept = d.crash_image(&CrashFates::AllKept);
        assert_eq!((first(&kept, 3), first(&kept, 4)), (2, 3));
        // The crash image is a fresh, fully durable device.
        assert!(kept.log().is_empty() && kept.pending_writes().is_empty());
        assert!(kept.is_durable(Pblk(3)) && !kept.is_dead());
        assert_eq!(kept.stats(), super::super::DevStats::default());
        // The original is untouched.
        assert_eq!(d.pending_writes(), vec![2, 3]);
        assert_eq!(first(&d, 4), 3);
    }

    #[test]
    fn torn_masks_apply_exactly_the_chosen_sectors() {
        let mut d = Disk::new(4096, 8);
        d.write_fua(Pblk(1), &filled(4096, 0xAA)).unwrap();
        d.write(Pblk(1), &filled(4096, 0xBB)).unwrap();
        let img = d.crash_image(&CrashFates::Explicit(vec![WriteFate::Torn(0b1000_0101)]));
        let b = img.peek_block(Pblk(1));
        let sectors: Vec<u8> = b.chunks(512).map(|s| s[0]).collect();
        assert_eq!(
            sectors,
            vec![0xBB, 0xAA, 0xBB, 0xAA, 0xAA, 0xAA, 0xAA, 0xBB]
        );
        for s in b.chunks(512) {
            assert!(s.iter().all(|&x| x == s[0]), "a sector is all-or-nothing");
        }
    }

    #[test]
    fn two_pending_writes_to_one_block_apply_in_order() {
        let mut d = Disk::new(1024, 8);
        d.write(Pblk(2), &filled(1024, 1)).unwrap();
        d.write(Pblk(2), &filled(1024, 2)).unwrap();
        assert_eq!(d.pending_writes(), vec![0, 1]);
        let f = |a, b| d.crash_image(&CrashFates::Explicit(vec![a, b]));
        use WriteFate::{Lost, Torn, Whole};
        assert_eq!(first(&f(Lost, Lost), 2), 0);
        assert_eq!(first(&f(Whole, Lost), 2), 1);
        assert_eq!(first(&f(Lost, Whole), 2), 2);
        assert_eq!(first(&f(Whole, Whole), 2), 2);
        // The later write torn over the earlier one: sector 0 from write 1, sector 1 from 2.
        let b = f(Whole, Torn(0b10)).peek_block(Pblk(2));
        assert_eq!((b[0], b[511], b[512], b[1023]), (1, 1, 2, 2));
    }

    #[test]
    fn crash_image_shares_the_base() {
        let mut d = Disk::new(1024, 8);
        d.write(Pblk(0), &filled(1024, 9)).unwrap();
        d.freeze();
        d.write(Pblk(1), &filled(1024, 1)).unwrap();
        let img = d.crash_image(&CrashFates::AllKept);
        assert!(img.shares_base_with(&d));
        assert_eq!(img.overlay_blocks(), 1);
        assert_eq!((first(&img, 0), first(&img, 1)), (9, 1));
    }

    /// Run a deterministic mix of operations, snapshotting the device before each logged one;
    /// replaying the log to each point must give the snapshot back exactly.
    #[test]
    fn replay_log_reproduces_every_point() {
        let mut d = Disk::new(1024, 8);
        d.write_fua(Pblk(7), &filled(1024, 77)).unwrap();
        d.freeze();
        let mut rng = SplitMix64::new(5);
        let mut snaps = Vec::new();
        let mut cleared = false;
        for i in 0..60u8 {
            snaps.push(Some(d.clone()));
            let blk = Pblk(rng.next_u64() % 8);
            match rng.next_u64() % 5 {
                0 => d.flush().unwrap(),
                1 => d.write_fua(blk, &filled(1024, i)).unwrap(),
                _ => d.write(blk, &filled(1024, i)).unwrap(),
            }
            if i >= 30 && !cleared && !d.pending_writes().is_empty() {
                // The entries a clear keeps (pending writes) replay onto the durable state at
                // the clear, so only the points from the clear on are real past states.
                cleared = true;
                d.clear_log();
                snaps = vec![None; d.log().len()];
            }
        }
        snaps.push(Some(d.clone()));
        assert!(cleared);
        assert_eq!(snaps.len(), d.log().len() + 1);
        let mut cursor = d.replay_log(0);
        for (k, snap) in snaps.iter().enumerate() {
            cursor.replay_log_to(&d, k);
            let Some(snap) = snap else { continue };
            // From the origin, and step by step from the previous point: the same device.
            for r in [d.replay_log(k), cursor.clone()] {
                assert_eq!(r.log(), snap.log(), "log at {k}");
                assert_eq!(r.pending_writes(), snap.pending_writes(), "pending at {k}");
                for b in 0..8 {
                    assert_eq!(r.peek_block(Pblk(b)), snap.peek_block(Pblk(b)), "{k}/{b}");
                    assert_eq!(r.durable_block(Pblk(b)), snap.durable_block(Pblk(b)));
                }
            }
        }
    }

    #[test]
    fn replay_of_a_crash_image_starts_from_it() {
        let mut d = Disk::new(1024, 4);
        d.write(Pblk(1), &filled(1024, 1)).unwrap();
        let mut img = d.crash_image(&CrashFates::AllKept);
        img.write(Pblk(2), &filled(1024, 2)).unwrap();
        let r = img.replay_log(0);
        assert_eq!((first(&r, 1), first(&r, 2)), (1, 0));
        assert_eq!(first(&img.replay_log(1), 2), 2);
    }
}
