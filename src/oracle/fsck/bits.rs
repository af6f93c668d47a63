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

    /// The bits of word `w` that lie inside the set.
    fn tail_mask(&self, w: usize) -> u64 {
        let first = w as u64 * 64;
        let n = self.len.saturating_sub(first).min(64);
        if n == 0 {
            0
        } else {
            u64::MAX >> (64 - n)
        }
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

    /// Set every bit of `[start, end)` (clamped to the set); the ones that were already set are
    /// also set in `dup` (e2fsck's `block_found_map` / `block_dup_map` pair). Word at a time.
    pub(crate) fn set_range_dup(&mut self, dup: &mut Bits, start: u64, end: u64) {
        let end = end.min(self.len);
        let mut i = start;
        while i < end {
            let (w, lo) = ((i / 64) as usize, i % 64);
            let hi = (end - (i - lo)).min(64);
            let mask = (u64::MAX >> (64 - (hi - lo))) << lo;
            let already = self.words[w] & mask;
            if already != 0 {
                if let Some(d) = dup.words.get_mut(w) {
                    *d |= already;
                }
            }
            self.words[w] |= mask;
            i += hi - lo;
        }
    }

    /// Set bit `at + i` for every set bit `i < nbits` of the on-disk bitmap `buf` (bit `i` is
    /// bit `i % 8` of byte `i / 8`).
    pub(crate) fn set_from_bitmap(&mut self, at: u64, buf: &[u8], nbits: u64) {
        let nbits = nbits.min(buf.len() as u64 * 8);
        if at % 64 == 0 {
            // Groups start on a 64-bit boundary: OR whole little-endian words in.
            for (k, chunk) in buf.chunks(8).enumerate().take(nbits.div_ceil(64) as usize) {
                let mut bytes = [0u8; 8];
                bytes[..chunk.len()].copy_from_slice(chunk);
                let first = k as u64 * 64;
                let keep = (nbits - first).min(64);
                let bits = u64::from_le_bytes(bytes) & (u64::MAX >> (64 - keep));
                let w = (at / 64) as usize + k;
                // The last word of the set may hold bits past `len`: never set those.
                let inside = self.tail_mask(w);
                match self.words.get_mut(w) {
                    Some(word) => *word |= bits & inside,
                    None => break,
                }
            }
            return;
        }
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

    /// The bit-by-bit definitions the word-at-a-time versions must agree with.
    #[test]
    fn word_operations_match_bit_by_bit() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..500 {
            let len = 1 + next() % 300;
            let mut found = Bits::new(len);
            for _ in 0..next() % 40 {
                found.set(next() % len);
            }
            let (start, span) = (next() % (len + 70), next() % 200);
            let (mut fast, mut fast_dup) = (found.clone(), Bits::new(len));
            fast.set_range_dup(&mut fast_dup, start, start + span);
            let (mut slow, mut slow_dup) = (found.clone(), Bits::new(len));
            for b in start..start + span {
                if slow.set(b) {
                    slow_dup.set(b);
                }
            }
            assert_eq!(
                (&fast, &fast_dup),
                (&slow, &slow_dup),
                "{start}+{span} of {len}"
            );

            let buf: Vec<u8> = (0..next() % 48).map(|_| next() as u8).collect();
            let nbits = next() % 400;
            let at = if next() % 2 == 0 {
                64 * (next() % 5)
            } else {
                next() % 300
            };
            let mut fast = found.clone();
            fast.set_from_bitmap(at, &buf, nbits);
            let mut slow = found.clone();
            for i in 0..nbits.min(buf.len() as u64 * 8) {
                if buf[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                    slow.set(at + i);
                }
            }
            assert_eq!(fast, slow, "at {at}, {nbits} bits of {buf:?} into {len}");
        }
    }
}
