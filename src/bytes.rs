//! All byte-order conversion of the crate lives here. ext4 is little-endian everywhere; JBD2
//! (the journal) is big-endian everywhere. Callers check lengths before calling: these helpers
//! panic on an out-of-range offset, which would be a bug in our own parser.

macro_rules! rw {
    ($read:ident, $write:ident, $t:ty, $n:literal, $from:ident, $to:ident) => {
        /// Read a value at byte offset `off`.
        ///
        /// # Panics
        /// If `off + size` is past the end of `buf` (a bug in the caller's length check).
        #[track_caller]
        #[inline]
        pub fn $read(buf: &[u8], off: usize) -> $t {
            let mut a = [0u8; $n];
            a.copy_from_slice(&buf[off..off + $n]);
            <$t>::$from(a)
        }

        /// Write a value at byte offset `off`.
        ///
        /// # Panics
        /// If `off + size` is past the end of `buf`.
        #[track_caller]
        #[inline]
        pub fn $write(buf: &mut [u8], off: usize, v: $t) {
            buf[off..off + $n].copy_from_slice(&v.$to());
        }
    };
}

rw!(read_u16le, write_u16le, u16, 2, from_le_bytes, to_le_bytes);
rw!(read_u32le, write_u32le, u32, 4, from_le_bytes, to_le_bytes);
rw!(read_u64le, write_u64le, u64, 8, from_le_bytes, to_le_bytes);
rw!(read_u16be, write_u16be, u16, 2, from_be_bytes, to_be_bytes);
rw!(read_u32be, write_u32be, u32, 4, from_be_bytes, to_be_bytes);
rw!(read_u64be, write_u64be, u64, 8, from_be_bytes, to_be_bytes);

/// Combine a 32-bit low half and a high half into one 64-bit value.
#[inline]
pub fn u64_from_hilo(hi: u32, lo: u32) -> u64 {
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The little-endian bytes of a `u32` (for feeding checksums).
#[inline]
pub fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// The big-endian bytes of a `u32` (for feeding JBD2 checksums).
#[inline]
pub fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

// ---- Field tables (used by the format modules) -------------------------------------------

/// A value stored little-endian at a fixed byte offset of an on-disk structure.
pub(crate) trait LeField: Sized {
    /// Size on disk in bytes.
    const SIZE: usize;
    /// Read the value at `off` (the caller checked the length).
    fn get(b: &[u8], off: usize) -> Self;
    /// Write the value at `off`.
    fn put(&self, b: &mut [u8], off: usize);
}

macro_rules! le_int {
    ($t:ty, $n:literal, $read:ident, $write:ident) => {
        impl LeField for $t {
            const SIZE: usize = $n;
            fn get(b: &[u8], off: usize) -> Self {
                $read(b, off)
            }
            fn put(&self, b: &mut [u8], off: usize) {
                $write(b, off, *self)
            }
        }
    };
}
le_int!(u16, 2, read_u16le, write_u16le);
le_int!(u32, 4, read_u32le, write_u32le);
le_int!(u64, 8, read_u64le, write_u64le);

impl LeField for u8 {
    const SIZE: usize = 1;
    fn get(b: &[u8], off: usize) -> Self {
        b[off]
    }
    fn put(&self, b: &mut [u8], off: usize) {
        b[off] = *self;
    }
}

impl<const N: usize> LeField for [u8; N] {
    const SIZE: usize = N;
    fn get(b: &[u8], off: usize) -> Self {
        std::array::from_fn(|i| b[off + i])
    }
    fn put(&self, b: &mut [u8], off: usize) {
        b[off..off + N].copy_from_slice(self);
    }
}

impl<const N: usize> LeField for [u32; N] {
    const SIZE: usize = 4 * N;
    fn get(b: &[u8], off: usize) -> Self {
        std::array::from_fn(|i| read_u32le(b, off + 4 * i))
    }
    fn put(&self, b: &mut [u8], off: usize) {
        for (i, v) in self.iter().enumerate() {
            write_u32le(b, off + 4 * i, *v);
        }
    }
}

/// The on-disk size of a field, for the `le_fields!` fit checks.
pub(crate) fn field_size<T: LeField>(_: &T) -> usize {
    T::SIZE
}

/// Generates a reader and a writer from one table of `field @ offset` lines. Both take a
/// `limit`: a field is read or written only if it ends at or before `limit` (fields that do
/// not fit are left alone), which models `EXT4_FITS_IN_INODE()` and keeps the functions total.
macro_rules! le_fields {
    ($read:ident, $write:ident { $($field:ident @ $off:literal),* $(,)? }) => {
        /// Read this table's fields that end within `limit` bytes of `b`.
        fn $read(&mut self, b: &[u8], limit: usize) {
            $(
                if $off + $crate::bytes::field_size(&self.$field) <= limit {
                    self.$field = $crate::bytes::LeField::get(b, $off);
                }
            )*
        }
        /// Write this table's fields that end within `limit` bytes of `b`.
        fn $write(&self, b: &mut [u8], limit: usize) {
            $(
                if $off + $crate::bytes::field_size(&self.$field) <= limit {
                    $crate::bytes::LeField::put(&self.$field, b, $off);
                }
            )*
        }
    };
}
pub(crate) use le_fields;

/// Zeroes to compare against, one 4 KiB chunk at a time.
static ZEROES: [u8; 4096] = [0; 4096];

/// Whether every byte of `data` is zero: compared with [`ZEROES`] 4 KiB at a time (one
/// `memcmp` per chunk). Unwritten blocks, unused inode records and holes are checked this way
/// on every crash state. A vectorized fold in Rust did as well natively, but under ASan each of
/// its 64-byte loads was a region check of its own; `memcmp` checks the whole range once.
#[inline]
pub fn is_zero(data: &[u8]) -> bool {
    data.chunks(ZEROES.len()).all(|c| c == &ZEROES[..c.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_orders() {
        let mut b = [0u8; 16];
        write_u32le(&mut b, 0, 0x1234_5678);
        write_u32be(&mut b, 4, 0x1234_5678);
        assert_eq!(b[..8], [0x78, 0x56, 0x34, 0x12, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(read_u32le(&b, 0), 0x1234_5678);
        assert_eq!(read_u32be(&b, 4), 0x1234_5678);
        write_u64be(&mut b, 8, 0x0102_0304_0506_0708);
        assert_eq!(read_u64be(&b, 8), 0x0102_0304_0506_0708);
        write_u16le(&mut b, 0, 0xEF53);
        assert_eq!(read_u16le(&b, 0), 0xEF53);
        assert_eq!(u64_from_hilo(1, 2), (1 << 32) | 2);
    }

    #[test]
    fn is_zero_sees_a_set_byte_anywhere() {
        for len in [0usize, 1, 63, 64, 65, 1024, 1031, 4096, 4097, 65536] {
            let mut b = vec![0u8; len];
            assert!(is_zero(&b));
            for i in [0, len / 2, len.saturating_sub(1)] {
                if i < len {
                    b[i] = 0x80;
                    assert!(!is_zero(&b), "len {len} byte {i}");
                    b[i] = 0;
                }
            }
        }
    }
}
