//! The files of both sides: the paths (regular files and directories) and the bytes a reader
//! sees — through the kernel's mount on its side, through the `debugfs` map and raw blocks of
//! our image on ours.
//!
//! A file is read whole up to [`READ_CAP`] bytes. A larger file (the scenarios make sparse files
//! of terabytes) is read only where our map has written blocks, up to the cap: elsewhere our side
//! reads zeroes, and any block the kernel maps there is a mapping difference the map comparison
//! reports.

use super::debugfs::StatInode;
use crate::dev::Disk;
use crate::format::inode::EXT4_ROOT_INO;
use crate::fs::{Fs, MountOpts};
use crate::units::{Ino, Pblk};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most bytes read of one file.
pub const READ_CAP: u64 = 4 << 20;

/// The most directory entries listed (a bound on broken directory loops).
const MAX_ENTRIES: usize = 100_000;

/// A path on a filesystem (`/f0`, `/lost+found`…) and whether it is a directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Absolute path inside the filesystem.
    pub path: String,
    /// A directory (else a regular file).
    pub dir: bool,
}

/// Regular files and directories of our image (read-only mount of the engine), sorted.
pub fn list_ours(dev: &Disk) -> Result<Vec<Entry>, String> {
    let mut fs = Fs::mount(dev.clone(), MountOpts { read_only: true })
        .map_err(|e| format!("our recovered image does not mount: {e}"))?;
    let mut out = Vec::new();
    let mut todo = vec![(Ino(EXT4_ROOT_INO), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        let entries = fs
            .readdir(dir)
            .map_err(|e| format!("reading directory {prefix}/: {e}"))?;
        for e in entries {
            if e.inode == 0 || e.name == b"." || e.name == b".." || out.len() >= MAX_ENTRIES {
                continue;
            }
            let path = format!("{prefix}/{}", String::from_utf8_lossy(&e.name));
            let raw = &fs
                .iget(Ino(e.inode))
                .map_err(|err| format!("reading {path}: {err}"))?
                .raw;
            if raw.is_dir() {
                todo.push((Ino(e.inode), path.clone()));
                out.push(Entry { path, dir: true });
            } else if raw.is_reg() {
                out.push(Entry { path, dir: false });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Regular files and directories under the kernel's mount point `root`, sorted.
pub fn list_mount(root: &Path) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut todo = vec![String::new()];
    while let Some(prefix) = todo.pop() {
        let dir = root.join(prefix.trim_start_matches('/'));
        let rd = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for e in rd {
            let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = format!("{prefix}/{}", e.file_name().to_string_lossy());
            let ft = e.file_type().map_err(|e| format!("{path}: {e}"))?;
            if out.len() >= MAX_ENTRIES {
                break;
            }
            if ft.is_dir() {
                todo.push(path.clone());
                out.push(Entry { path, dir: true });
            } else if ft.is_file() {
                out.push(Entry { path, dir: false });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The byte ranges `(offset, length)` of a file of `size` bytes to read (module doc).
pub fn ranges(size: u64, ours: Option<&StatInode>, block_size: u64) -> Vec<(u64, u64)> {
    if size <= READ_CAP {
        return if size == 0 { vec![] } else { vec![(0, size)] };
    }
    let mut out = Vec::new();
    let mut budget = READ_CAP;
    for (lblk, _, len, unwritten) in ours.into_iter().flat_map(StatInode::data) {
        let start = lblk.saturating_mul(block_size);
        let end = (lblk + len).saturating_mul(block_size).min(size);
        if unwritten || start >= end || budget == 0 {
            continue;
        }
        let n = (end - start).min(budget);
        budget -= n;
        out.push((start, n));
    }
    out
}

/// The bytes of `ranges` of the host file `path` (the kernel's read path), concatenated; a
/// range past the end reads short. `Err`: the error the kernel returned.
pub fn read_mount(path: &Path, ranges: &[(u64, u64)]) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| e.to_string();
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut out = Vec::new();
    for &(off, len) in ranges {
        f.seek(SeekFrom::Start(off)).map_err(err)?;
        let before = out.len();
        (&mut f).take(len).read_to_end(&mut out).map_err(err)?;
        out.resize(before + len as usize, 0xA5); // a short read shows as a difference
    }
    Ok(out)
}

/// The bytes of `ranges` of a file of our image, read through its `debugfs` map and raw blocks
/// (holes and unwritten blocks read as zeroes), concatenated.
pub fn read_ours(dev: &Disk, st: &StatInode, ranges: &[(u64, u64)]) -> Vec<u8> {
    let bs = u64::from(dev.block_size());
    let mut out = Vec::new();
    for &(off, len) in ranges {
        let mut pos = off;
        while pos < off + len {
            let lblk = pos / bs;
            let in_blk = (pos % bs) as usize;
            let n = (bs - pos % bs).min(off + len - pos) as usize;
            match st.lookup(lblk) {
                Some(p) => out.extend_from_slice(&dev.peek_block(Pblk(p))[in_blk..in_blk + n]),
                None => out.resize(out.len() + n, 0),
            }
            pos += n as u64;
        }
    }
    out
}

/// The first file offset where `a` and `b` (both read over `ranges`) differ, with both bytes.
pub fn first_byte_diff(ranges: &[(u64, u64)], a: &[u8], b: &[u8]) -> Option<(u64, u8, u8)> {
    let mut at = 0usize;
    for &(off, len) in ranges {
        let (ra, rb) = (&a[at..at + len as usize], &b[at..at + len as usize]);
        if let Some(i) = ra.iter().zip(rb).position(|(x, y)| x != y) {
            return Some((off + i as u64, ra[i], rb[i]));
        }
        at += len as usize;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::debugfs::MapEntry;
    use super::*;

    fn map(entries: &[(u64, u64, u64, bool)]) -> StatInode {
        StatInode {
            map: entries
                .iter()
                .map(|&(lblk, pblk, len, unwritten)| MapEntry::Data {
                    lblk,
                    pblk,
                    len,
                    unwritten,
                })
                .collect(),
            ..StatInode::default()
        }
    }

    #[test]
    fn small_files_are_read_whole_big_ones_where_we_map() {
        assert_eq!(ranges(0, None, 1024), vec![]);
        assert_eq!(ranges(5000, None, 1024), vec![(0, 5000)]);
        let big = 1u64 << 40;
        let st = map(&[
            (3, 100, 2, false),
            (9, 200, 1, true),
            (1 << 30, 300, 4, false),
        ]);
        // The unwritten run and the run at i_size are not read.
        assert_eq!(ranges(big, Some(&st), 1024), vec![(3072, 2048)]);
        let st = map(&[(3, 100, 2, false), (1000, 300, 4, false)]);
        assert_eq!(
            ranges(big, Some(&st), 1024),
            vec![(3072, 2048), (1_024_000, 4096)]
        );
    }

    #[test]
    fn our_bytes_come_from_the_map_and_holes_are_zero() {
        let mut dev = Disk::new(1024, 64);
        dev.write(Pblk(10), &[7u8; 1024]).unwrap();
        let st = map(&[(1, 10, 1, false), (2, 10, 1, true)]);
        let got = read_ours(&dev, &st, &[(1000, 1100)]);
        let mut want = vec![0u8; 24];
        want.extend([7u8; 1024]);
        want.extend([0u8; 52]);
        assert_eq!(got, want);
        let mut other = want.clone();
        other[30] = 1;
        assert_eq!(
            first_byte_diff(&[(1000, 1100)], &other, &want),
            Some((1030, 1, 7))
        );
        assert_eq!(first_byte_diff(&[(1000, 1100)], &want, &want), None);
    }
}
