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
}
