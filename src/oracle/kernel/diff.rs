//! Block-by-block comparison of the kernel's replayed image with ours.
//!
//! Both images come from the same crash image, and both replays write the same journal blocks
//! home, so every block must be byte-identical except what a mount legitimately stamps:
//!
//! | where | not compared | why |
//! |---|---|---|
//! | primary superblock | `s_free_blocks_count` (0x0C, 0x158), `s_free_inodes_count` (0x10) | hints the kernel does not journal and recomputes from the descriptors at will; e2fsck fixes them silently (the descriptors and bitmaps ARE compared) |
//! | primary superblock | `s_mtime`, `s_wtime` (+ `_hi`), `s_mnt_count`, `s_last_mounted`, `s_kbytes_written`, `s_checksum` | stamps of a mount (wall clock, lifetime writes) |
//! | journal superblock | `s_head` (0x58), `s_checksum` (0xFC) | newer kernels record the log head on a clean unmount; e2fsck and our recovery leave 0 |
//! | journal log blocks | everything | the log is what was replayed; the kernel's orphan cleanup commits new transactions into it |
//! | primary superblock, only when a kernel read failed | `s_state`, the error fields (0x194..0x200, 0x278, 0x27C) | the kernel records the error it hit; the failed read is reported on its own |
//! | inode records | `i_atime`, `i_ctime`, `i_mtime`, `i_dtime` (+ `_extra`), `i_checksum_lo/hi` | orphan cleanup stamps the wall clock; ours a fixed clock |
//!
//! Everything else (descriptors, bitmaps, the rest of every inode, directory, tree and data
//! blocks, the backup superblocks) is compared byte for byte.

use crate::dev::{Zone, ZoneMap};
use crate::format::blockmap;
use crate::fs::{Fs, MountOpts};
use crate::units::{Ino, Pblk};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Byte ranges `(offset, length)` of the primary superblock that are not compared.
const SB_MASK: &[(usize, usize)] = &[
    (0x0C, 4),  // s_free_blocks_count_lo
    (0x10, 4),  // s_free_inodes_count
    (0x2C, 4),  // s_mtime
    (0x30, 4),  // s_wtime
    (0x34, 2),  // s_mnt_count
    (0x88, 64), // s_last_mounted
    (0x158, 4), // s_free_blocks_count_hi
    (0x178, 8), // s_kbytes_written
    (0x274, 2), // s_wtime_hi, s_mtime_hi
    (0x3FC, 4), // s_checksum
];

/// Byte ranges of the primary superblock where the kernel records an error it hit (not
/// compared when a kernel read failed: that failure is reported on its own).
const SB_ERROR_MASK: &[(usize, usize)] = &[
    (0x3A, 2),     // s_state (EXT4_ERROR_FS)
    (0x194, 0x6C), // s_error_count .. s_last_error_func
    (0x278, 2),    // s_first_error_time_hi, s_last_error_time_hi
    (0x27C, 2),    // s_first_error_errcode, s_last_error_errcode
];

/// Byte ranges of the journal superblock that are not compared.
const JSB_MASK: &[(usize, usize)] = &[(0x58, 4), (0xFC, 4)]; // s_head, s_checksum

/// Byte ranges of an inode record that are not compared.
const INODE_MASK: &[(usize, usize)] = &[
    (0x08, 16), // i_atime, i_ctime, i_mtime, i_dtime
    (0x7C, 2),  // i_checksum_lo
    (0x82, 2),  // i_checksum_hi
    (0x84, 12), // i_ctime_extra, i_mtime_extra, i_atime_extra
];

/// Names of superblock fields worth naming in causes: `(offset, length, name)`.
const SB_FIELDS: &[(usize, usize, &str)] = &[
    (0x00, 4, "s_inodes_count"),
    (0x04, 4, "s_blocks_count_lo"),
    (0x3A, 2, "s_state"),
    (0x3C, 2, "s_errors"),
    (0x5C, 4, "s_feature_compat"),
    (0x60, 4, "s_feature_incompat"),
    (0x64, 4, "s_feature_ro_compat"),
    (0xE0, 4, "s_journal_inum"),
    (0xE8, 4, "s_last_orphan"),
    (0x194, 4, "s_error_count"),
];

/// Names of inode fields, for causes: `(offset, length, name)`.
const INODE_FIELDS: &[(usize, usize, &str)] = &[
    (0x00, 2, "i_mode"),
    (0x02, 2, "i_uid"),
    (0x04, 4, "i_size_lo"),
    (0x18, 2, "i_gid"),
    (0x1A, 2, "i_links_count"),
    (0x1C, 4, "i_blocks_lo"),
    (0x20, 4, "i_flags"),
    (0x24, 4, "i_version"),
    (0x28, 60, "i_block"),
    (0x64, 4, "i_generation"),
    (0x68, 4, "i_file_acl_lo"),
    (0x6C, 4, "i_size_high"),
    (0x74, 2, "i_blocks_high"),
    (0x76, 2, "i_file_acl_high"),
    (0x80, 2, "i_extra_isize"),
    (0x90, 8, "i_crtime"),
];

/// Where things are, read from the (e2fsck-clean) kernel image.
pub struct Layout {
    /// Block size in bytes.
    pub block_size: u64,
    /// Static zones (superblocks, descriptors, bitmaps, inode tables).
    zones: ZoneMap,
    /// The journal superblock.
    jsb: Option<u64>,
    /// The journal's blocks as runs `(first, len)`.
    journal: Vec<(u64, u64)>,
    /// Inode tables: `(first block, first inode)`.
    itables: Vec<(u64, u32)>,
    /// Blocks per inode table.
    itable_blocks: u64,
    /// Inode record size.
    inode_size: usize,
}

impl Layout {
    /// Read the layout of the image at `path` with a read-only mount of the engine.
    pub fn read(path: &Path) -> Result<Layout, String> {
        let dev = Fs::load_image(path).map_err(|e| format!("loading {}: {e}", path.display()))?;
        let mut fs = Fs::mount(dev, MountOpts { read_only: true })
            .map_err(|e| format!("reading the kernel's image: {e}"))?;
        let sb = fs.sb.clone();
        let ipg = sb.s_inodes_per_group;
        let itables = fs
            .gds
            .iter()
            .enumerate()
            .map(|(g, gd)| (gd.bg_inode_table, g as u32 * ipg + 1))
            .collect();
        let journal = journal_runs(&mut fs)?;
        Ok(Layout {
            block_size: u64::from(sb.block_size()),
            zones: fs.dev.zone_map().clone(),
            jsb: journal.first().map(|r| r.0),
            journal,
            itables,
            itable_blocks: u64::from(sb.itable_blocks()),
            inode_size: usize::from(sb.s_inode_size),
        })
    }

    fn in_journal(&self, blk: u64) -> bool {
        self.journal.iter().any(|&(s, n)| (s..s + n).contains(&blk))
    }

    /// The first inode number stored in inode-table block `blk`.
    fn first_ino(&self, blk: u64) -> Option<u32> {
        let per_block = (self.block_size as usize / self.inode_size) as u64;
        self.itables.iter().find_map(|&(start, ino)| {
            (start..start + self.itable_blocks)
                .contains(&blk)
                .then(|| ino + ((blk - start) * per_block) as u32)
        })
    }
}

/// The journal inode's data runs (in logical order, so the superblock comes first).
fn journal_runs(fs: &mut Fs) -> Result<Vec<(u64, u64)>, String> {
    let jino = fs.sb.s_journal_inum;
    if jino == 0 {
        return Ok(Vec::new());
    }
    let ino = Ino(jino);
    let raw = fs
        .iget(ino)
        .map_err(|e| format!("journal inode: {e}"))?
        .raw
        .clone();
    let seed = fs.sb.metadata_csum().then(|| fs.inode(ino).csum_seed);
    let dev = &fs.dev;
    let mut read = |b: Pblk| Ok(dev.peek_block(b));
    let map = blockmap::walk_inode(&fs.sb, ino, &raw, seed, &mut read)
        .map_err(|e| format!("journal map: {e}"))?;
    Ok(map
        .runs
        .iter()
        .map(|r| (r.pblk, u64::from(r.len)))
        .collect())
}

/// The outcome of a comparison.
#[derive(Debug, Default)]
pub struct Diff {
    /// Blocks compared (journal log blocks not counted).
    pub compared: u64,
    /// Each differing block: `(block, what differs)`, in block order.
    pub blocks: Vec<(u64, String)>,
}

/// The first offset in `a` vs `b` that differs outside `mask`.
fn first_diff(a: &[u8], b: &[u8], mask: &[(usize, usize)]) -> Option<usize> {
    (0..a.len().min(b.len()))
        .find(|&i| a[i] != b[i] && !mask.iter().any(|&(o, n)| (o..o + n).contains(&i)))
}

/// Compare the images at `kernel` and `ours` block by block (module doc table); with
/// `kernel_erred` (a kernel read failed) the error fields of the superblock are not compared.
pub fn compare(
    kernel: &Path,
    ours: &Path,
    layout: &Layout,
    kernel_erred: bool,
) -> Result<Diff, String> {
    let open = |p: &Path| File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut fk, mut fo) = (open(kernel)?, open(ours)?);
    let bs = layout.block_size as usize;
    let chunk = 256 * bs;
    let (mut bk, mut bo) = (vec![0u8; chunk], vec![0u8; chunk]);
    let mut diff = Diff::default();
    let mut base = 0u64;
    loop {
        let nk = read_full(&mut fk, &mut bk).map_err(|e| format!("{}: {e}", kernel.display()))?;
        let no = read_full(&mut fo, &mut bo).map_err(|e| format!("{}: {e}", ours.display()))?;
        if nk != no {
            return Err(format!(
                "the images differ in size ({nk} vs {no} bytes read)"
            ));
        }
        let n = nk / bs;
        for i in 0..n {
            let blk = base + i as u64;
            if layout.in_journal(blk) && layout.jsb != Some(blk) {
                continue;
            }
            diff.compared += 1;
            let (k, o) = (&bk[i * bs..(i + 1) * bs], &bo[i * bs..(i + 1) * bs]);
            if k != o {
                if let Some(what) = block_diff(layout, blk, k, o, kernel_erred) {
                    diff.blocks.push((blk, what));
                }
            }
        }
        if nk < chunk {
            return Ok(diff);
        }
        base += n as u64;
    }
}

/// Read until `buf` is full or EOF; the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

/// What differs in block `blk` outside the masks (`None`: only masked bytes).
fn block_diff(layout: &Layout, blk: u64, k: &[u8], o: &[u8], erred: bool) -> Option<String> {
    let bs = layout.block_size;
    // The primary superblock: image bytes 1024..2048.
    if blk * bs <= 1024 && 1024 < (blk + 1) * bs {
        let at = (1024 - blk * bs) as usize;
        let mut mask = SB_MASK.to_vec();
        if erred {
            mask.extend_from_slice(SB_ERROR_MASK);
        }
        let sb = first_diff(&k[at..at + 1024], &o[at..at + 1024], &mask);
        let rest = first_diff(&k[..at], &o[..at], &[]);
        return match (sb, rest) {
            (Some(off), _) => Some(sb_field(&k[at..at + 1024], &o[at..at + 1024], off)),
            (None, Some(off)) => Some(format!("boot block byte 0x{off:X}")),
            (None, None) => None,
        };
    }
    if layout.jsb == Some(blk) {
        return first_diff(k, o, JSB_MASK).map(|off| format!("journal superblock byte 0x{off:X}"));
    }
    if let Some(first) = layout.first_ino(blk) {
        return inode_diff(layout.inode_size, first, k, o);
    }
    let zone = layout.zones.zone_of(Pblk(blk));
    let off = first_diff(k, o, &[])?;
    Some(match zone {
        Zone::Unknown => format!("byte {off}"),
        z => format!("{} byte {off}", z.name()),
    })
}

/// The superblock field at `off` with both values (little-endian), or the byte.
fn sb_field(k: &[u8], o: &[u8], off: usize) -> String {
    let Some(&(at, n, name)) = SB_FIELDS.iter().find(|f| (f.0..f.0 + f.1).contains(&off)) else {
        return format!("superblock byte 0x{off:X}");
    };
    let val = |b: &[u8]| {
        b[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |v, &x| v << 8 | u64::from(x))
    };
    format!(
        "superblock {name} 0x{:x} after the kernel's, 0x{:x} after ours",
        val(k),
        val(o)
    )
}

/// The inodes of an inode-table block whose records differ outside [`INODE_MASK`].
fn inode_diff(isize: usize, first: u32, k: &[u8], o: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    for (i, (rk, ro)) in k.chunks(isize).zip(o.chunks(isize)).enumerate() {
        let mut names: Vec<String> = Vec::new();
        let mut at = 0;
        while let Some(off) = first_diff(&rk[at..], &ro[at..], &[]).map(|d| d + at) {
            let field = INODE_FIELDS
                .iter()
                .find(|&&(s, n, _)| (s..s + n).contains(&off));
            let end = field.map_or(off + 1, |&(s, n, _)| s + n);
            let masked = INODE_MASK.iter().any(|&(s, n)| (s..s + n).contains(&off));
            if !masked {
                let name = field.map_or(format!("byte 0x{off:X}"), |f| f.2.to_string());
                names.push(name);
            }
            at = end;
            if at >= rk.len() {
                break;
            }
        }
        if !names.is_empty() {
            parts.push(format!("inode {} {}", first + i as u32, names.join(",")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_bytes_are_ignored_and_the_first_other_one_found() {
        let a = [0u8; 16];
        let mut b = a;
        b[3] = 1;
        assert_eq!(first_diff(&a, &b, &[(2, 2)]), None);
        b[9] = 7;
        assert_eq!(first_diff(&a, &b, &[(2, 2)]), Some(9));
    }

    #[test]
    fn superblock_diffs_name_the_field_and_values() {
        let k = vec![0u8; 1024];
        let mut o = k.clone();
        o[0x3A] = 1;
        assert_eq!(
            sb_field(&k, &o, 0x3A),
            "superblock s_state 0x0 after the kernel's, 0x1 after ours"
        );
        o[0x61] = 2;
        assert_eq!(
            sb_field(&o, &k, 0x61),
            "superblock s_feature_incompat 0x200 after the kernel's, 0x0 after ours"
        );
        assert_eq!(sb_field(&k, &o, 0x70), "superblock byte 0x70");
    }

    #[test]
    fn inode_diffs_name_fields_and_ignore_clocks_and_checksums() {
        let k = vec![0u8; 512];
        let mut o = k.clone();
        o[0x0C] = 1; // i_ctime of inode 12
        o[0x7C] = 1; // i_checksum_lo
        assert_eq!(inode_diff(256, 12, &k, &o), None);
        o[256 + 0x1C] = 8; // i_blocks_lo of inode 13
        o[256 + 0x22] = 8; // i_flags
        o[256 + 0xA0] = 1; // past the named fields
        assert_eq!(
            inode_diff(256, 12, &k, &o).unwrap(),
            "inode 13 i_blocks_lo,i_flags,byte 0xA0"
        );
    }
}
