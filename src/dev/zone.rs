//! Zones: what kind of content a device block holds, for fault rules and the write log.
//!
//! The device does not know ext4. Zones reach it two ways:
//!
//! * the **static zone map** ([`ZoneMap`]), built once by the filesystem layer from the geometry
//!   (superblock, group descriptors, bitmaps, inode tables, journal): these blocks never move;
//! * a **hint** passed with each I/O (`read_as`, `write_as`, ...), for blocks whose role is known
//!   only to the caller at the time of the I/O (extent/indirect tree blocks, directory blocks,
//!   file data).
//!
//! The effective zone of an I/O is the static zone if the map covers the block, else the hint
//! (see [`effective_zone`]): the geometry is exact, the hint is an opinion.

use crate::units::Pblk;
use std::collections::BTreeMap;

/// The role of a device block, as far as fault injection and the write log care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    /// The primary superblock (and its backups).
    Superblock,
    /// Group descriptor blocks (and reserved GDT blocks).
    GroupDesc,
    /// Block and inode bitmaps.
    Bitmap,
    /// Inode tables.
    InodeTable,
    /// The JBD2 journal (superblock, descriptor, data, revoke and commit blocks).
    Journal,
    /// Extent tree index/leaf blocks and indirect-map blocks.
    TreeMeta,
    /// Directory blocks.
    DirData,
    /// Regular file data.
    Data,
    /// Not known (no static zone and no hint).
    Unknown,
}

impl Zone {
    /// Every zone, in declaration order (the index a fuzz decoder can use).
    pub const ALL: [Zone; 9] = [
        Zone::Superblock,
        Zone::GroupDesc,
        Zone::Bitmap,
        Zone::InodeTable,
        Zone::Journal,
        Zone::TreeMeta,
        Zone::DirData,
        Zone::Data,
        Zone::Unknown,
    ];

    /// The stable lower-case name used in reports and `.repro` files.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Superblock => "superblock",
            Zone::GroupDesc => "group-desc",
            Zone::Bitmap => "bitmap",
            Zone::InodeTable => "inode-table",
            Zone::Journal => "journal",
            Zone::TreeMeta => "tree-meta",
            Zone::DirData => "dir-data",
            Zone::Data => "data",
            Zone::Unknown => "unknown",
        }
    }

    /// The zone named `name` (the inverse of [`Zone::name`]).
    pub fn from_name(name: &str) -> Option<Zone> {
        Zone::ALL.into_iter().find(|z| z.name() == name)
    }
}

/// The static zones of a device: disjoint block ranges, each with its zone. Blocks outside every
/// range are [`Zone::Unknown`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneMap {
    /// First block of a range → (number of blocks, zone). Ranges never overlap.
    ranges: BTreeMap<u64, (u64, Zone)>,
}

impl ZoneMap {
    /// An empty map: every block is [`Zone::Unknown`].
    pub fn new() -> ZoneMap {
        ZoneMap::default()
    }

    /// Mark the `len` blocks starting at `start` as `zone`. An empty range is ignored.
    ///
    /// # Panics
    /// If the range overlaps a range already in the map, or wraps past `u64::MAX` (a bug in the
    /// caller's geometry).
    #[track_caller]
    pub fn add(&mut self, start: Pblk, len: u64, zone: Zone) {
        if len == 0 {
            return;
        }
        let end = start.0.checked_add(len).expect("zone range wraps");
        if let Some((&s, &(l, z))) = self.ranges.range(..end).next_back() {
            assert!(
                s + l <= start.0,
                "zone range {}+{len} ({zone:?}) overlaps {s}+{l} ({z:?})",
                start.0
            );
        }
        self.ranges.insert(start.0, (len, zone));
    }

    /// Like [`ZoneMap::add`], but for ranges read from untrusted metadata: an overlapping or
    /// wrapping range is not added, and the call returns false.
    pub fn try_add(&mut self, start: Pblk, len: u64, zone: Zone) -> bool {
        let Some(end) = start.0.checked_add(len) else {
            return false;
        };
        if len == 0 {
            return true;
        }
        if let Some((&s, &(l, _))) = self.ranges.range(..end).next_back() {
            if s + l > start.0 {
                return false;
            }
        }
        self.ranges.insert(start.0, (len, zone));
        true
    }

    /// Builder form of [`ZoneMap::add`].
    #[track_caller]
    pub fn with(mut self, start: Pblk, len: u64, zone: Zone) -> ZoneMap {
        self.add(start, len, zone);
        self
    }

    /// The static zone of `blk`, or [`Zone::Unknown`].
    pub fn zone_of(&self, blk: Pblk) -> Zone {
        match self.ranges.range(..=blk.0).next_back() {
            Some((&s, &(l, z))) if blk.0 - s < l => z,
            _ => Zone::Unknown,
        }
    }

    /// The zones of the ranges that overlap the `len` blocks from `start` (blocks of no range
    /// are [`Zone::Unknown`] and not listed), from the last range back: one range lookup, not
    /// one per block.
    pub fn zones_in(&self, start: Pblk, len: u64) -> impl Iterator<Item = Zone> + '_ {
        let end = start.0.saturating_add(len);
        let ranges = self.ranges.range(..end).rev();
        ranges
            .take_while(move |(&s, &(l, _))| len > 0 && s.saturating_add(l) > start.0)
            .map(|(_, &(_, z))| z)
    }

    /// The ranges of the map, in block order: (start, len, zone).
    pub fn ranges(&self) -> impl Iterator<Item = (Pblk, u64, Zone)> + '_ {
        self.ranges.iter().map(|(&s, &(l, z))| (Pblk(s), l, z))
    }
}

/// The zone an I/O on `blk` counts as: the static zone if the map covers the block, else `hint`.
pub fn effective_zone(map: &ZoneMap, blk: Pblk, hint: Zone) -> Zone {
    match map.zone_of(blk) {
        Zone::Unknown => hint,
        z => z,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ZoneMap {
        ZoneMap::new()
            .with(Pblk(0), 1, Zone::Superblock)
            .with(Pblk(1), 2, Zone::GroupDesc)
            .with(Pblk(10), 4, Zone::InodeTable)
    }

    #[test]
    fn zone_of_covers_ranges_exactly() {
        let m = map();
        assert_eq!(m.zone_of(Pblk(0)), Zone::Superblock);
        assert_eq!(m.zone_of(Pblk(1)), Zone::GroupDesc);
        assert_eq!(m.zone_of(Pblk(2)), Zone::GroupDesc);
        assert_eq!(m.zone_of(Pblk(3)), Zone::Unknown);
        assert_eq!(m.zone_of(Pblk(9)), Zone::Unknown);
        assert_eq!(m.zone_of(Pblk(10)), Zone::InodeTable);
        assert_eq!(m.zone_of(Pblk(13)), Zone::InodeTable);
        assert_eq!(m.zone_of(Pblk(14)), Zone::Unknown);
        assert_eq!(m.zone_of(Pblk(u64::MAX)), Zone::Unknown);
        assert_eq!(m.ranges().count(), 3);
    }

    #[test]
    fn zones_in_lists_every_overlapping_range() {
        let m = map();
        let zones = |s, l| m.zones_in(Pblk(s), l).collect::<Vec<_>>();
        assert_eq!(zones(0, 1), [Zone::Superblock]);
        assert_eq!(zones(0, 3), [Zone::GroupDesc, Zone::Superblock]);
        assert_eq!(zones(2, 12), [Zone::InodeTable, Zone::GroupDesc]);
        assert_eq!(zones(3, 7), []);
        assert_eq!(zones(13, 100), [Zone::InodeTable]);
        assert_eq!(zones(14, u64::MAX), []);
        assert_eq!(zones(5, 0), []);
        for s in 0..16 {
            for l in 0..16 {
                let slow: Vec<Zone> = (s..s + l)
                    .map(|b| m.zone_of(Pblk(b)))
                    .filter(|&z| z != Zone::Unknown)
                    .collect();
                let fast = zones(s, l);
                assert_eq!(slow.is_empty(), fast.is_empty(), "{s}+{l}");
                assert!(slow.iter().all(|z| fast.contains(z)), "{s}+{l}");
            }
        }
    }

    #[test]
    fn static_zone_beats_hint() {
        let m = map();
        assert_eq!(effective_zone(&m, Pblk(11), Zone::Data), Zone::InodeTable);
        assert_eq!(effective_zone(&m, Pblk(20), Zone::TreeMeta), Zone::TreeMeta);
        assert_eq!(effective_zone(&m, Pblk(20), Zone::Unknown), Zone::Unknown);
    }

    #[test]
    #[should_panic(expected = "overlaps")]
    fn overlapping_ranges_panic() {
        let _ = map().with(Pblk(12), 5, Zone::Journal);
    }

    #[test]
    #[should_panic(expected = "overlaps")]
    fn overlapping_from_below_panics() {
        let _ = map().with(Pblk(5), 6, Zone::Journal);
    }

    #[test]
    fn adjacent_and_empty_ranges_are_fine() {
        let m = map()
            .with(Pblk(3), 7, Zone::Bitmap)
            .with(Pblk(5), 0, Zone::Data);
        assert_eq!(m.zone_of(Pblk(9)), Zone::Bitmap);
        assert_eq!(m.zone_of(Pblk(3)), Zone::Bitmap);
        assert_eq!(m.ranges().count(), 4);
    }

    #[test]
    fn names_round_trip() {
        for z in Zone::ALL {
            assert_eq!(Zone::from_name(z.name()), Some(z));
        }
        assert_eq!(Zone::from_name("inode-table"), Some(Zone::InodeTable));
        assert_eq!(Zone::from_name("itable"), None);
    }
}
