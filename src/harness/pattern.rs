//! The bytes an execution writes, and the poison its template holds, both recognisable in any
//! 512-byte sector found after a crash.
//!
//! # File data
//!
//! A scenario's write of `tag` at byte `off` of file `fN` stores, at every byte offset `o`, byte
//! `o % 8` of the 8-byte *word* of `(N, tag, o / 8)`:
//!
//! ```text
//! 0x00 0xD7 (DATA_MAGIC)   0x01 file   0x02 tag   0x03..0x06 le32 word index (o / 8)
//! 0x07 check = 0x5A ^ file ^ tag ^ the four index bytes
//! ```
//!
//! The content of a byte depends on its absolute file offset, not on where the write started,
//! so two writes of the same tag over one range agree, and [`describe`] can name the file, tag
//! and offset of any 8-byte-aligned word it finds.
//!
//! # Poison
//!
//! Before a template is frozen every block free in its block bitmaps is filled with
//! `b"E4STALE!"` followed by the le64 block number, repeated every 16 bytes ([`poison_block`]).
//! No write of a scenario produces that magic ([`DATA_MAGIC`] differs in the first byte), so a
//! file byte range holding it exposes blocks the file never wrote: the `stale-data` oracle.

use crate::bytes::{read_u32le, read_u64le, write_u32le, write_u64le};

/// First byte of every 8-byte word of scenario data.
pub const DATA_MAGIC: u8 = 0xD7;
/// The poison's magic, at every 16-byte boundary of a poisoned block.
pub const POISON_MAGIC: &[u8; 8] = b"E4STALE!";
/// Bytes per poison record (magic + le64 block number).
const POISON_RECORD: usize = 16;
/// Bytes per data word.
const WORD: usize = 8;

/// The 8-byte data word of `file`, `tag` at word index `index`.
fn word(file: u8, tag: u8, index: u32) -> [u8; WORD] {
    let mut w = [DATA_MAGIC, file, tag, 0, 0, 0, 0, 0];
    write_u32le(&mut w, 3, index);
    w[7] = w[1..7].iter().fold(0x5A, |x, b| x ^ b);
    w
}

/// The `(file, tag, word index)` of `w` if it is a data word (its check byte right).
fn decode_word(w: &[u8; WORD]) -> Option<(u8, u8, u32)> {
    let index = read_u32le(w, 3);
    (w[0] == DATA_MAGIC && *w == word(w[1], w[2], index)).then_some((w[1], w[2], index))
}

/// The whole data words of `bytes`, a slice at offset `at` of its block: the first one starts
/// at the returned skip.
fn words(bytes: &[u8], at: usize) -> (usize, impl Iterator<Item = &[u8; WORD]>) {
    let skip = (WORD - at % WORD) % WORD;
    let words = bytes.get(skip..).unwrap_or(&[]).chunks_exact(WORD);
    (
        skip,
        words.map(|w| w.try_into().expect("chunks_exact gives whole words")),
    )
}

/// Fill `out` with the data of `file`, `tag` at byte offset `off` onwards (see the module doc).
/// Whole words are stored 8 bytes at a time: only a partial first and last word are copied
/// byte-range by byte-range (this runs for every byte a scenario writes, and its model).
pub fn fill(out: &mut [u8], file: u8, tag: u8, off: u64) {
    let start = (off % WORD as u64) as usize;
    let head = ((WORD - start) % WORD).min(out.len());
    let index = |pos: u64| (pos / WORD as u64) as u32; // truncation intended: offsets wrap at 32 GiB
    let (first, rest) = out.split_at_mut(head);
    if head > 0 {
        first.copy_from_slice(&word(file, tag, index(off))[start..start + head]);
    }
    let mut next = index(off + head as u64);
    let mut words = rest.chunks_exact_mut(WORD);
    for w in &mut words {
        w.copy_from_slice(&word(file, tag, next));
        next = next.wrapping_add(1);
    }
    let tail = words.into_remainder();
    let n = tail.len();
    tail.copy_from_slice(&word(file, tag, next)[..n]);
}

/// `len` bytes of `file`, `tag` data starting at byte `off`.
pub fn data(file: u8, tag: u8, off: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill(&mut v, file, tag, off);
    v
}

/// A whole poisoned block: [`POISON_MAGIC`] + le64 `blk`, repeated.
pub fn poison_block(blk: u64, block_size: usize) -> Vec<u8> {
    let mut rec = [0u8; POISON_RECORD];
    rec[..8].copy_from_slice(POISON_MAGIC);
    write_u64le(&mut rec, 8, blk);
    let mut b = vec![0u8; block_size];
    for r in b.chunks_exact_mut(POISON_RECORD) {
        r.copy_from_slice(&rec);
    }
    b
}

/// Whether `bytes` (any slice of a block) holds a poison record at a 16-byte boundary of the
/// block, given the slice's offset `at` within its block.
pub fn has_poison(bytes: &[u8], at: usize) -> bool {
    let skip = (POISON_RECORD - at % POISON_RECORD) % POISON_RECORD;
    // Whole 8-byte arrays compare as one integer; `starts_with` on slices called memcmp once
    // per record, which libFuzzer intercepts (a third of this oracle's time under `cargo fuzz`).
    let magic = *POISON_MAGIC;
    bytes.get(skip..).is_some_and(|b| {
        b.chunks(POISON_RECORD)
            .any(|r| r.first_chunk::<8>().is_some_and(|m| *m == magic))
    })
}

/// Whether `bytes` — a slice of a block at offset `at` within it, holding file bytes from file
/// offset `file_off` of `fN` — hold something `fN` can never have written there: poison, or a
/// data word of another file or of another offset.
///
/// Bytes with no data word at all that are neither zeroes nor poison (another structure's
/// bytes, such as a freed metadata block's) are foreign too.
pub fn foreign(bytes: &[u8], at: usize, file: u8, file_off: u64) -> bool {
    if has_poison(bytes, at) {
        return true;
    }
    let (skip, words) = words(bytes, at);
    let mut seen = false;
    for (i, w) in words.enumerate() {
        if let Some((f, _, index)) = decode_word(w) {
            let here = (file_off + (skip + i * WORD) as u64) / WORD as u64;
            if f != file || index != here as u32 {
                return true;
            }
            seen = true;
        }
    }
    !seen && bytes.len() >= 2 * WORD && bytes.iter().any(|&b| b != 0)
}

/// One short phrase naming what `bytes` (a slice of a block at offset `at` within it, `at`
/// a multiple of 8) look like: zeroes, poison of block N, data of fN tag T at byte O, or
/// unrecognised bytes. For one-line causes.
pub fn describe(bytes: &[u8], at: usize) -> String {
    if crate::bytes::is_zero(bytes) {
        return "zeroes".into();
    }
    let skip = (POISON_RECORD - at % POISON_RECORD) % POISON_RECORD;
    if let Some(rec) = bytes.get(skip..).filter(|r| r.starts_with(POISON_MAGIC)) {
        return match rec.get(8..16) {
            Some(n) => format!("poison of block {}", read_u64le(n, 0)),
            None => "poison".into(),
        };
    }
    if let Some((file, tag, index)) = words(bytes, at).1.find_map(decode_word) {
        let byte = u64::from(index) * WORD as u64;
        return format!("data of f{file} tag {tag} at byte {byte}");
    }
    "unrecognised bytes".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_pinned_and_depend_on_the_absolute_offset() {
        let d = data(2, 7, 0, 16);
        assert_eq!(&d[..8], &[0xD7, 2, 7, 0, 0, 0, 0, 0x5A ^ 2 ^ 7]);
        assert_eq!(&d[8..], &[0xD7, 2, 7, 1, 0, 0, 0, 0x5A ^ 2 ^ 7 ^ 1]);
        // A write starting mid-word produces the same bytes at the same offsets.
        let whole = data(3, 9, 1000, 300);
        let part = data(3, 9, 1013, 50);
        assert_eq!(&whole[13..63], &part[..]);
        assert_ne!(data(3, 9, 1000, 8), data(3, 8, 1000, 8));
        assert_ne!(data(3, 9, 1000, 8), data(4, 9, 1000, 8));
    }

    #[test]
    fn fill_stores_the_word_of_every_byte_offset() {
        // Byte `o` is byte `o % 8` of word `o / 8` (truncated to 32 bits), whatever the start.
        let byte = |o: u64| word(4, 9, (o / 8) as u32)[(o % 8) as usize];
        let wrap = (u64::from(u32::MAX) + 1) * 8;
        for base in [0, 4096, wrap - 24] {
            for off in base..base + 17 {
                for len in [0, 1, 5, 7, 8, 9, 15, 16, 17, 40] {
                    let want: Vec<u8> = (off..off + len).map(byte).collect();
                    assert_eq!(data(4, 9, off, len as usize), want, "off {off} len {len}");
                }
            }
        }
    }

    #[test]
    fn poison_is_found_and_data_never_looks_like_it() {
        let p = poison_block(0x1234, 1024);
        assert_eq!(&p[..8], b"E4STALE!");
        assert_eq!(read_u64le(&p, 1016), 0x1234);
        assert!(has_poison(&p, 0));
        assert!(has_poison(&p[512..], 512));
        // A slice starting mid-record finds the next record.
        assert!(has_poison(&p[3..40], 3));
        assert!(!has_poison(&p[3..16], 3));
        assert!(!has_poison(&data(1, 2, 0, 1024), 0));
        assert!(!has_poison(&[0u8; 512], 0));
    }

    #[test]
    fn foreign_bytes_are_poison_other_files_or_other_offsets() {
        let d = data(2, 7, 1024, 512);
        assert!(!foreign(&d, 0, 2, 1024));
        assert!(foreign(&d, 0, 3, 1024));
        assert!(foreign(&d, 0, 2, 2048));
        assert!(foreign(&poison_block(9, 1024)[..512], 0, 2, 0));
        assert!(!foreign(&[0u8; 512], 0, 2, 0));
        assert!(foreign(&[0x11u8; 512], 0, 2, 0));
        assert_eq!(describe(&poison_block(9, 1024)[..9], 0), "poison");
        // Mid-word slices compare from the next word boundary.
        assert!(!foreign(&data(2, 7, 1027, 20), 3, 2, 1027));
    }

    #[test]
    fn describe_names_the_origin() {
        assert_eq!(describe(&[0u8; 512], 0), "zeroes");
        assert_eq!(
            describe(&poison_block(77, 1024)[512..], 512),
            "poison of block 77"
        );
        let d = data(5, 200, 4096, 1024);
        assert_eq!(describe(&d[512..], 512), "data of f5 tag 200 at byte 4608");
        let mut junk = vec![0xFFu8; 512];
        junk[0] = DATA_MAGIC;
        assert_eq!(describe(&junk, 0), "unrecognised bytes");
    }
}
