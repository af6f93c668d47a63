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

    /// OR `bits` into word `w`, never past `len` (a word past the set is ignored).
    fn or_word(&mut self, w: usize, bits: u64) {
        let inside = self.tail_mask(w);
        if let Some(word) = self.words.get_mut(w) {
            *word |= bits & inside;
        }
    }

    /// Set bit `at + i` for every set bit `i < nbits` of the on-disk bitmap `buf` (bit `i` is
    /// bit `i % 8` of byte `i / 8`). Whole little-endian words at a time, shifted into place
    /// when `at` is not a multiple of 64 (every group of a 1 KiB-block filesystem starts at
    /// block `1 + g * 8192`).
    pub(crate) fn set_from_bitmap(&mut self, at: u64, buf: &[u8], nbits: u64) {
        let nbits = nbits.min(buf.len() as u64 * 8);
        let (base, sh) = ((at / 64) as usize, at % 64);
        for (k, chunk) in buf.chunks(8).enumerate().take(nbits.div_ceil(64) as usize) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            let keep = (nbits - k as u64 * 64).min(64);
            let bits = u64::from_le_bytes(bytes) & (u64::MAX >> (64 - keep));
            if bits == 0 {
                continue;
            }
            self.or_word(base + k, bits << sh);
            if sh > 0 {
                self.or_word(base + k + 1, bits >> (64 - sh));
            }
        }
    }

    /// The 64 bits from bit `i` on (bit `i` lowest; zero past the set).
    fn bits_at(&self, i: u64) -> u64 {
        let (w, sh) = ((i / 64) as usize, i % 64);
        let lo = self.words.get(w).map_or(0, |x| x >> sh);
        let hi = match sh {
            0 => 0,
            _ => self.words.get(w + 1).map_or(0, |x| x << (64 - sh)),
        };
        lo | hi
    }

    /// Set bit `i` of the on-disk bitmap `buf` for every set bit `at + i`, `i < nbits` (the
    /// inverse of [`set_from_bitmap`](Bits::set_from_bitmap); bits already set in `buf` stay).
    pub(crate) fn or_into_bitmap(&self, at: u64, nbits: u64, buf: &mut [u8]) {
        let nbits = nbits.min(buf.len() as u64 * 8);
        for (k, chunk) in buf
            .chunks_mut(8)
            .enumerate()
            .take(nbits.div_ceil(64) as usize)
        {
            let keep = (nbits - k as u64 * 64).min(64);
            let bits = self.bits_at(at + k as u64 * 64) & (u64::MAX >> (64 - keep));
            if bits == 0 {
                continue;
            }
            let bytes = bits.to_le_bytes();
            for (b, new) in chunk.iter_mut().zip(bytes) {
                *b |= new;
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
        ones(start, end, move |w| self.words[w] ^ other.words[w])
    }

    /// The set bits in `[start, end)`, in order.
    pub(crate) fn iter_set(&self, start: u64, end: u64) -> impl Iterator<Item = u64> + '_ {
        let end = end.min(self.len);
        ones(start, end, move |w| self.words[w])
    }
}

/// The set bits in `[start, end)` of the words `word(0)`, `word(1)`, … (bit `i` is bit `i % 64`
/// of word `i / 64`), in order: a word at a time, jumping to each set bit.
fn ones(start: u64, end: u64, word: impl Fn(usize) -> u64) -> impl Iterator<Item = u64> {
    let mut i = start;
    std::iter::from_fn(move || {
        while i < end {
            let w = (i / 64) as usize;
            // The bits of word `w` from `i` on.
            let bits = word(w) & (u64::MAX << (i % 64));
            if bits == 0 {
                i = (w as u64 + 1) * 64;
                continue;
            }
            let b = w as u64 * 64 + u64::from(bits.trailing_zeros());
            i = b + 1;
            return (b < end).then_some(b);
        }
        None
    })
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

            let mut fast_buf = buf.clone();
            fast.or_into_bitmap(at, nbits, &mut fast_buf);
            let mut slow_buf = buf.clone();
            for i in 0..nbits.min(buf.len() as u64 * 8) {
                if fast.test(at + i) {
                    slow_buf[(i / 8) as usize] |= 1 << (i % 8);
                }
            }
            assert_eq!(fast_buf, slow_buf, "at {at}, {nbits} bits out of {len}");

            let (from, to) = (next() % (len + 70), next() % (len + 70));
            let set: Vec<u64> = (from..to).filter(|&i| fast.test(i)).collect();
            assert_eq!(fast.iter_set(from, to).collect::<Vec<_>>(), set);
            let diff: Vec<u64> = (from..to.min(len))
                .filter(|&i| fast.test(i) != found.test(i))
                .collect();
            assert_eq!(fast.differences(&found, from, to).collect::<Vec<_>>(), diff);
        }
    }
}
