//! A plain growable-free bit set over `0..len`, the in-memory maps of fsck (e2fsck's
//! `block_found_map`, `block_dup_map`, `inode_used_map`, …). Out-of-range bits read as clear and
//! are never set, so a corrupt block number can never make the checker panic.

/// A fixed-size set of bits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: u64,
}

impl Bits {
    /// `len` clear bits.
    pub(crate) fn new(len: u64) -> Bits {
        let words = usize::try_from(len.div_ceil(64)).unwrap_or(usize::MAX);
        Bits {
            words: vec![0; words],
            len,
        }
    }

    /// Number of bits.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    fn locate(&self, i: u64) -> Option<(usize, u64)> {
        (i < self.len).then(|| ((i / 64) as usize, 1u64 << (i % 64)))
    }

    /// Whether bit `i` is set (false past the end).
    pub(crate) fn test(&self, i: u64) -> bool {
        self.locate(i).is_some_and(|(w, m)| self.words[w] & m != 0)
    }

    /// Set bit `i`, returning its old value (past the end: nothing, false).
    pub(crate) fn set(&mut self, i: u64) -> bool {
        let Some((w, m)) = self.locate(i) else {
            return false;
        };
        let old = self.words[w] & m != 0;
        self.words[w] |= m;
        old
    }

    /// Whether any bit is set.
    pub(crate) fn any(&self) -> bool {
        self.words.iter().any(|&w| w != 0)
    }

    /// Number of set bits in `[start, end)` (clamped to the set).
    pub(crate) fn count(&self, start: u64, end: u64) -> u64 {
        let end = end.min(self.len);
        let mut n = 0;
        let mut i = start;
        while i < end {
            if i % 64 == 0 && end - i >= 64 {
                n += u64::from(self.words[(i / 64) as usize].count_ones());
                i += 64;
            } else {
                n += u64::from(self.test(i));
                i += 1;
            }
        }
        n
    }

    /// Set bit `at + i` for every set bit `i < nbits` of the on-disk bitmap `buf` (bit `i` is
    /// bit `i % 8` of byte `i / 8`).
    pub(crate) fn set_from_bitmap(&mut self, at: u64, buf: &[u8], nbits: u64) {
        let nbits = nbits.min(buf.len() as u64 * 8);
        for (byte_no, &byte) in buf.iter().enumerate().take(nbits.div_ceil(8) as usize) {
            if byte == 0 {
                continue;
            }
            for bit in 0..8u64 {
                let i = byte_no as u64 * 8 + bit;
                if byte & (1 << bit) != 0 && i < nbits {
                    self.set(at + i);
                }
            }
        }
    }

    /// The bits in `[start, end)` where `self` and `other` (of the same length) differ.
    pub(crate) fn differences<'a>(
        &'a self,
        other: &'a Bits,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = u64> + 'a {
        let end = end.min(self.len).min(other.len);
        let mut i = start;
        std::iter::from_fn(move || {
            while i < end {
                let w = (i / 64) as usize;
                if i % 64 == 0 && self.words[w] == other.words[w] {
                    i += 64;
                    continue;
                }
                let cur = i;
                i += 1;
                if self.test(cur) != other.test(cur) {
                    return Some(cur);
                }
            }
            None
        })
    }

    /// The set bits in `[start, end)`, in order.
    pub(crate) fn iter_set(&self, start: u64, end: u64) -> impl Iterator<Item = u64> + '_ {
        let end = end.min(self.len);
        let mut i = start;
        std::iter::from_fn(move || {
            while i < end {
                if i % 64 == 0 && self.words[(i / 64) as usize] == 0 {
                    i += 64;
                    continue;
                }
                let cur = i;
                i += 1;
                if self.test(cur) {
                    return Some(cur);
                }
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_test_count_and_iterate() {
        let mut b = Bits::new(200);
        assert!(!b.any());
        assert!(!b.set(3));
        assert!(b.set(3));
        assert!(!b.set(64));
        assert!(!b.set(199));
        assert!(!b.set(200), "past the end is ignored");
        assert!(!b.test(200));
        assert!(b.test(3) && b.test(64) && b.test(199) && !b.test(4));
        assert_eq!(b.count(0, 1000), 3);
        assert_eq!(b.count(4, 199), 1);
        assert_eq!(b.iter_set(0, 200).collect::<Vec<_>>(), vec![3, 64, 199]);
        assert_eq!(b.iter_set(65, 199).count(), 0);
        assert_eq!(b.len(), 200);
        let mut full = Bits::new(128);
        (0..128).for_each(|i| {
            full.set(i);
        });
        assert_eq!(full.count(0, 128), 128);
        assert_eq!(full.count(1, 127), 126);
        let mut from_disk = Bits::new(100);
        from_disk.set_from_bitmap(10, &[0b1000_0001, 0xFF, 0x01], 17);
        let set: Vec<u64> = from_disk.iter_set(0, 100).collect();
        assert_eq!(set, [10, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
        let mut other = from_disk.clone();
        other.set(70);
        let mut diff: Vec<u64> = other.differences(&from_disk, 0, 100).collect();
        assert_eq!(diff, [70]);
        diff = other.differences(&from_disk, 0, 70).collect();
        assert!(diff.is_empty());
    }
}
