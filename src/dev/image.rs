//! Image files: loading a host file into a [`Disk`] and saving a disk as a sparse file.
//!
//! Both sides skip all-zero blocks: a loaded image stores only its non-zero blocks (in the
//! shared base, so clones of a loaded disk are O(1)), and a saved image is `set_len` to the device
//! size with only the non-zero blocks written, leaving holes elsewhere.

use super::store::Store;
use super::{valid_block_size, Block, Disk};
use crate::bytes::is_zero;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

/// Blocks read per `read` call when loading.
const LOAD_CHUNK_BLOCKS: usize = 256;

impl Disk {
    /// Load the image file at `path` as a device of `block_size`-byte blocks, all durable.
    /// All-zero blocks are not stored; a tail shorter than a block is ignored.
    pub fn load(path: &Path, block_size: u32) -> Result<Disk> {
        check_block_size(block_size)?;
        let host = |e: std::io::Error| Error::host(format!("{}: {e}", path.display()));
        let mut file = File::open(path).map_err(host)?;
        let len = file.metadata().map_err(host)?.len();
        let bs = u64::from(block_size);
        let nr_blocks = len / bs;
        // Only the extents of the file that hold data: a sparse image of a terabyte reads in
        // the time its blocks take, not its size.
        let mut base = BTreeMap::new();
        for (start, end) in data_ranges(&file, nr_blocks * bs).map_err(host)? {
            let (first, last) = (start / bs, end.div_ceil(bs).min(nr_blocks));
            file.seek(SeekFrom::Start(first * bs)).map_err(host)?;
            read_blocks(&mut file, block_size as usize, first..last, &mut base).map_err(host)?;
        }
        let store = Store::with_base(block_size as usize, base);
        Ok(Disk::from_store(block_size, nr_blocks, store))
    }

    /// The image file's bytes `bytes` as a device of `block_size`-byte blocks, as [`Disk::load`]
    /// reads a file.
    pub fn from_bytes(bytes: &[u8], block_size: u32) -> Result<Disk> {
        check_block_size(block_size)?;
        let nr_blocks = bytes.len() as u64 / u64::from(block_size);
        let mut base = BTreeMap::new();
        read_blocks(
            &mut &bytes[..],
            block_size as usize,
            0..nr_blocks,
            &mut base,
        )
        .map_err(|e| Error::host(format!("image bytes: {e}")))?;
        let store = Store::with_base(block_size as usize, base);
        Ok(Disk::from_store(block_size, nr_blocks, store))
    }

    /// The current contents (pending writes included) as image-file bytes, as [`Disk::save`]
    /// writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let bs = self.block_size as usize;
        let mut out = vec![0u8; self.nr_blocks as usize * bs];
        for blk in self.store.stored_blocks() {
            if blk < self.nr_blocks {
                let at = blk as usize * bs;
                out[at..at + bs].copy_from_slice(self.store.get(blk));
            }
        }
        out
    }

    /// Save the current contents (pending writes included) to `path` as a sparse file of exactly
    /// `nr_blocks * block_size` bytes, replacing any existing file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let host = |e: std::io::Error| Error::host(format!("{}: {e}", path.display()));
        let bs = u64::from(self.block_size);
        let mut file = File::create(path).map_err(host)?;
        file.set_len(self.nr_blocks * bs).map_err(host)?;
        for blk in self.store.stored_blocks() {
            let data = self.store.get(blk);
            if blk >= self.nr_blocks || is_zero(data) {
                continue;
            }
            file.seek(SeekFrom::Start(blk * bs)).map_err(host)?;
            file.write_all(data).map_err(host)?;
        }
        file.sync_all().map_err(host)
    }
}

/// `Invalid` for a block size the simulated disk does not take.
fn check_block_size(block_size: u32) -> Result<()> {
    if !valid_block_size(block_size) {
        return Err(Error::Invalid(format!("bad block size {block_size}")));
    }
    Ok(())
}

/// Read blocks `blocks` from `file` (positioned at the first), keeping the non-zero ones in
/// `base`.
fn read_blocks(
    file: &mut impl Read,
    block_size: usize,
    blocks: std::ops::Range<u64>,
    base: &mut BTreeMap<u64, Block>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; block_size * LOAD_CHUNK_BLOCKS];
    let mut blk = blocks.start;
    while blk < blocks.end {
        let n = (blocks.end - blk).min(LOAD_CHUNK_BLOCKS as u64) as usize;
        let chunk = &mut buf[..n * block_size];
        file.read_exact(chunk)?;
        for data in chunk.chunks(block_size) {
            if !is_zero(data) {
                base.insert(blk, Arc::from(data));
            }
            blk += 1;
        }
    }
    Ok(())
}

/// The byte ranges below `len` of `file` that may hold data (`lseek(SEEK_DATA)` and
/// `SEEK_HOLE`, in order); a host filesystem that cannot tell gives the whole file.
fn data_ranges(file: &File, len: u64) -> std::io::Result<Vec<(u64, u64)>> {
    use rustix::fs::{seek, SeekFrom};
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        let start = match seek(file, SeekFrom::Data(pos)) {
            Ok(start) if start < len => start,
            Ok(_) | Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = seek(file, SeekFrom::Hole(start))?.min(len);
        out.push((start, end));
        pos = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::read_u16le;
    use crate::error::IoOp;
    use crate::units::Pblk;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A unique path under the temp dir, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let file = format!("e4fuzz-dev-{}-{n}-{name}", std::process::id());
            TempPath(std::env::temp_dir().join(file))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn filled(bs: usize, b: u8) -> Vec<u8> {
        vec![b; bs]
    }

    #[test]
    fn save_load_round_trip() {
        let mut d = Disk::new(1024, 64);
        d.write_fua(Pblk(0), &filled(1024, 1)).unwrap();
        d.write(Pblk(5), &filled(1024, 5)).unwrap();
        d.freeze();
        d.write(Pblk(5), &filled(1024, 0)).unwrap(); // zero over a base block
        d.write(Pblk(63), &filled(1024, 63)).unwrap(); // still volatile: saved too
        let path = TempPath::new("rt.img");
        d.save(&path.0).unwrap();
        assert_eq!(std::fs::metadata(&path.0).unwrap().len(), 64 * 1024);
        let l = Disk::load(&path.0, 1024).unwrap();
        assert_eq!((l.block_size(), l.nr_blocks()), (1024, 64));
        assert_eq!((l.base_blocks(), l.overlay_blocks()), (2, 0));
        assert!(l.log().is_empty() && l.pending_writes().is_empty());
        for b in 0..64 {
            assert_eq!(l.peek_block(Pblk(b)), d.peek_block(Pblk(b)), "block {b}");
        }
        assert_eq!(l.peek_block(Pblk(63))[0], 63);
        assert_eq!(l.peek_block(Pblk(5))[0], 0);
    }

    #[test]
    fn load_ignores_a_partial_tail() {
        let path = TempPath::new("tail.img");
        let mut bytes = vec![0u8; 3 * 1024 + 100];
        bytes[1024] = 7;
        bytes[3 * 1024 + 5] = 9; // in the tail: dropped
        std::fs::write(&path.0, &bytes).unwrap();
        let d = Disk::load(&path.0, 1024).unwrap();
        assert_eq!(d.nr_blocks(), 3);
        assert_eq!(d.base_blocks(), 1);
        assert_eq!(d.peek_block(Pblk(1))[0], 7);
    }

    #[test]
    fn load_reads_every_data_extent_of_a_sparse_file() {
        // 64 GiB, mostly holes: the load reads the data extents only (SEEK_DATA/SEEK_HOLE),
        // and must still find every non-zero byte, also where an extent starts or ends inside
        // a block.
        use std::io::{Seek, SeekFrom, Write};
        let path = TempPath::new("sparse.img");
        let bs = 4096u64;
        let len = 64u64 << 30;
        let mut f = File::create(&path.0).unwrap();
        f.set_len(len + 100).unwrap(); // and a partial tail, dropped
        let marks = [
            (0u64, 1u8),
            (bs + 4095, 2),
            (5 << 30, 3),
            (len - bs, 4),
            (len - 1, 5),
        ];
        for (at, b) in marks {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&[b]).unwrap();
        }
        drop(f);
        let d = Disk::load(&path.0, 4096).unwrap();
        assert_eq!(d.nr_blocks(), len / bs);
        assert_eq!(d.base_blocks(), 4);
        for (at, b) in marks {
            let block = d.peek_block(Pblk(at / bs));
            assert_eq!(block[(at % bs) as usize], b, "byte {at}");
            let nonzero = block.iter().filter(|&&x| x != 0).count();
            assert!(nonzero <= 2, "block of byte {at}: {nonzero} non-zero bytes");
        }
    }

    #[test]
    fn load_errors() {
        let path = TempPath::new("missing.img");
        match Disk::load(&path.0, 1024) {
            Err(Error::Io(e)) => {
                assert_eq!(e.op, IoOp::Host);
                assert!(e.detail.contains("missing.img"), "{}", e.detail);
            }
            other => panic!("expected a host I/O error, got {other:?}"),
        }
        assert_eq!(
            Disk::load(&path.0, 1000).unwrap_err(),
            Error::Invalid("bad block size 1000".into())
        );
    }

    #[test]
    fn save_is_sparse() {
        let mut d = Disk::new(4096, 16384); // 64 MiB
        for (i, b) in [0u64, 8191, 16383].into_iter().enumerate() {
            d.write(Pblk(b), &filled(4096, i as u8 + 1)).unwrap();
        }
        let path = TempPath::new("sparse.img");
        d.save(&path.0).unwrap();
        let meta = std::fs::metadata(&path.0).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Three 4 KiB blocks written; allow generous filesystem overhead.
            assert!(meta.blocks() * 512 < 1 << 20, "{} sectors", meta.blocks());
        }
        let l = Disk::load(&path.0, 4096).unwrap();
        assert_eq!(l.base_blocks(), 3);
        assert_eq!(l.peek_block(Pblk(16383))[4095], 3);
    }

    /// Ground truth from mke2fs: the superblock magic is where ext4 puts it, and saving a loaded
    /// image gives the same bytes back.
    #[test]
    fn mke2fs_image_round_trips_byte_for_byte() {
        if Command::new("mke2fs").arg("-V").output().is_err() {
            eprintln!("skipping: mke2fs not found");
            return;
        }
        let img = TempPath::new("mke2fs.img");
        let out = Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "1024"])
            .arg(&img.0)
            .arg("4096")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mut d = Disk::load(&img.0, 1024).unwrap();
        assert_eq!(d.nr_blocks(), 4096);
        assert!(d.base_blocks() > 0 && d.base_blocks() < 4096);
        let magic = d.read_bytes(1024 + 0x38, 2).unwrap();
        assert_eq!(read_u16le(&magic, 0), 0xEF53);
        let out = TempPath::new("mke2fs-out.img");
        d.save(&out.0).unwrap();
        let a = std::fs::read(&img.0).unwrap();
        let b = std::fs::read(&out.0).unwrap();
        assert!(a == b, "saved image differs from the mke2fs image");
    }
}
