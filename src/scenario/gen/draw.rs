//! Total draws over fuzzer bytes, and the per-input `Swarm` of feature switches.
//!
//! [`Draw`] wraps `arbitrary::Unstructured` so that no draw can fail: when the bytes run out,
//! every integer is the start of its range (`Unstructured::int_in_range`'s own behaviour, made
//! explicit here for empty ranges too). Defaults are therefore chosen so that "start of range"
//! means "the small, default thing".

use arbitrary::unstructured::Int;
use arbitrary::Unstructured;
use std::ops::RangeInclusive;

/// Infallible draws from fuzzer bytes (see the module doc).
pub(crate) struct Draw<'a> {
    u: Unstructured<'a>,
    total: usize,
}

impl<'a> Draw<'a> {
    /// Draws over `data`.
    pub fn new(data: &'a [u8]) -> Draw<'a> {
        Draw {
            u: Unstructured::new(data),
            total: data.len(),
        }
    }

    /// An integer in `range` (its start when the bytes have run out or the range is empty).
    pub fn int<T: Int>(&mut self, range: RangeInclusive<T>) -> T {
        let start = *range.start();
        if start >= *range.end() {
            return start;
        }
        self.u.int_in_range(range).unwrap_or(start)
    }

    /// An index below `len` (0 if `len` is 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.int(0..=len.saturating_sub(1))
    }

    /// One of `items` (the first when the bytes have run out), or `None` if there are none.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        let i = self.index(items.len());
        items.get(i).copied()
    }

    /// True with probability 1/n (false when the bytes have run out).
    pub fn one_in(&mut self, n: u8) -> bool {
        n > 0 && self.int(0..=n - 1) == n - 1
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.u.is_empty()
    }

    /// Up to `max` of the remaining bytes.
    pub fn rest(&mut self, max: usize) -> Vec<u8> {
        let n = self.u.len().min(max);
        self.u.bytes(n).map(<[u8]>::to_vec).unwrap_or_default()
    }

    /// How many bytes the draws so far have consumed.
    pub fn consumed(&self) -> usize {
        self.total - self.u.len()
    }
}

/// A switch of the swarm: an op kind, or a feature of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Feature {
    Create,
    Write,
    MmapWrite,
    Read,
    Fiemap,
    Truncate,
    Punch,
    Fallocate,
    Fsync,
    Sync,
    Unlink,
    Writeback,
    Commit,
    MigrateToExtents,
    MigrateToIndirect,
    /// Offsets in the DIND and TIND ranges.
    Deep,
    /// A crash at a device write in the middle of the workload.
    CrashMid,
    /// An injected I/O error.
    Faults,
    /// A thread's ops return to the file its last op touched (three times in four).
    Focus,
    /// `EXT4_IOC_CHECKPOINT`.
    Checkpoint,
}

impl Feature {
    /// Number of switches.
    pub const COUNT: u32 = 20;
}

/// Swarm testing (Groce, Regehr et al.): each input switches whole op kinds and features off,
/// so that some executions hammer a few kinds instead of spreading thin over all of them. A set
/// bit switches its [`Feature`] *off*: zero bytes (or none) leave everything on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Swarm(u32);

impl Swarm {
    /// Bytes a swarm consumes.
    pub const BYTES: usize = 3;

    /// Draw the switches (3 bytes).
    pub fn draw(d: &mut Draw<'_>) -> Swarm {
        Swarm(d.int(0..=(1u32 << Feature::COUNT) - 1))
    }

    /// Whether `f` is switched on.
    pub fn on(self, f: Feature) -> bool {
        self.0 & (1 << f as u32) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_default_to_range_starts_when_empty() {
        let mut d = Draw::new(&[]);
        assert_eq!(d.int(3u64..=9), 3);
        let (hi, lo) = (5u8, 2u8);
        assert_eq!(d.int(hi..=lo), 5, "an empty range gives its start");
        assert_eq!(d.pick(&[7u8, 8]), Some(7));
        assert_eq!(d.pick::<u8>(&[]), None);
        assert!(!d.one_in(4));
        assert!(d.rest(8).is_empty());
        assert_eq!(d.consumed(), 0);
        assert!(Swarm::draw(&mut d).on(Feature::Faults));
    }

    #[test]
    fn draws_consume_only_what_the_range_needs() {
        let data = [0x01, 0x02, 0x01, 0xFF, 0x00, 0x05, 0x09, 0x0A];
        let mut d = Draw::new(&data);
        // 0..=0xFFFFF needs three bytes, read big-endian: 0x010201 sets bits 0, 9 and 16.
        let s = Swarm::draw(&mut d);
        assert_eq!(s, Swarm(0x010201));
        assert!(!s.on(Feature::Create));
        assert!(s.on(Feature::Write));
        assert!(!s.on(Feature::Sync));
        assert!(!s.on(Feature::CrashMid));
        assert_eq!(d.consumed(), 3);
        assert_eq!(d.int(0u16..=999), 0xFF00 % 1000);
        assert!(d.one_in(1));
        assert_eq!(d.index(3), 2);
        assert_eq!(d.rest(1), vec![9]);
        assert_eq!(d.consumed(), 7);
        assert_eq!(d.rest(10), vec![10]);
        assert_eq!(d.consumed(), 8);
    }
}
