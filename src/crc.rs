//! Checksums: the kernel's raw CRC-32C register update (`ext4_chksum()` / `jbd2_chksum()`) and
//! the crc16 of `gdt_csum` images (lib/crc16.c).
//!
//! The kernel's `crc32c(seed, buf, len)` does no pre- or post-inversion; callers pass `~0` as the
//! first seed. For the `crc32c` crate (standard CRC-32C, which inverts on entry and exit):
//! `raw(s, d) = !crc32c_append(!s, d)`.

/// Model of `ext4_chksum()`: the raw CRC-32C update of `seed` over `data`.
#[inline]
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

/// Model of `crc16()` (lib/crc16.c): CRC-16 with the reflected polynomial 0xA001, no final xor.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_crc32c_matches_kernel_self_test() {
        assert_eq!(crc32c_raw(!0, b"123456789"), 0x1CF9_6D7C);
        // Chaining is associative, as the kernel relies on.
        let whole = crc32c_raw(!0, b"123456789");
        let parts = crc32c_raw(crc32c_raw(!0, b"1234"), b"56789");
        assert_eq!(whole, parts);
    }

    #[test]
    fn crc16_modbus_check_value() {
        // CRC-16/MODBUS("123456789") = 0x4B37 (init 0xFFFF, reflected 0x8005).
        assert_eq!(crc16(0xFFFF, b"123456789"), 0x4B37);
    }
}
