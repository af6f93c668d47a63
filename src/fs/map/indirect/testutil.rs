//! Test helpers for the indirect-map tests: a mounted `^extent` image made by mke2fs, files
//! built from a list of logical blocks, the independent walk of their maps
//! ([`crate::format::blockmap::walk`]), and the accounting checks (exact `i_blocks`, no block
//! leaked or lost in the bitmaps).

use crate::format::bitmap;
use crate::format::blockmap::{self, BlockMap, WalkCtx};
use crate::fs::{Fs, MountOpts};
use crate::units::{Group, Ino, Pblk};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A file's mapping as the independent walker reads it from the device.
pub(crate) struct Layout {
    /// Data runs and mapping blocks.
    pub(crate) map: BlockMap,
    /// The mapping blocks' numbers, in walk order.
    pub(crate) meta: Vec<u64>,
}

impl Layout {
    /// Every mapped logical block, in order.
    pub(crate) fn lblks(&self) -> Vec<u32> {
        let runs = self.map.runs.iter();
        runs.flat_map(|r| r.lblk..r.lblk + r.len).collect()
    }

    /// The physical block behind `lblk`.
    pub(crate) fn pblk(&self, lblk: u32) -> Option<u64> {
        self.map.lookup(lblk).map(|(p, _)| p)
    }

    /// Data plus mapping blocks.
    pub(crate) fn total(&self) -> u64 {
        self.map.data_blocks() + self.meta.len() as u64
    }
}

/// A mounted throw-away image (deleted on drop) and the accounting baseline of the file
/// under test.
pub(crate) struct TestFs {
    pub(crate) fs: Fs,
    path: TempFile,
    serial: u32,
    /// Blocks in use (bitmap bits) right after the current file was created.
    base_used: u64,
    /// `s_free_blocks_count` at the same moment.
    base_free: u64,
}

impl TestFs {
    /// `mke2fs -t ext4 -O ^extent,^64bit,^has_journal -b <bs>` (no journal: metadata writes go through at `dirty_metadata`, which the failure-path tests rely on; the journaled path is covered by the integration model fuzz) on a fresh sparse file, mounted; `None` (with
    /// a message) if e2fsprogs is missing.
    pub(crate) fn new(tag: &str, bs: u32) -> Option<TestFs> {
        if Command::new("mke2fs").arg("-V").output().is_err() {
            eprintln!("skipping: mke2fs is not installed");
            return None;
        }
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let name = format!("e4fuzz-ind-{tag}-{}-{n}.img", std::process::id());
        let path = std::env::temp_dir().join(name);
        let size: u64 = if bs == 1024 { 16 << 20 } else { 64 << 20 };
        std::fs::File::create(&path).unwrap().set_len(size).unwrap();
        let bs_arg = bs.to_string();
        let args = [
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            &bs_arg,
            "-O",
            "^extent,^64bit,^has_journal",
        ];
        let st = Command::new("mke2fs")
            .args(args)
            .arg(&path)
            .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
            .status()
            .unwrap();
        assert!(st.success(), "mke2fs failed");
        let fs = Fs::open(&path, MountOpts::default()).unwrap();
        Some(TestFs {
            fs,
            path: TempFile(path),
            serial: 0,
            base_used: 0,
            base_free: 0,
        })
    }

    /// A new empty regular file; the accounting baseline is taken after its creation.
    pub(crate) fn empty_file(&mut self) -> Ino {
        self.serial += 1;
        let ino = self
            .fs
            .create(&format!("/f{}", self.serial), 0o644)
            .unwrap();
        self.base_used = self.bitmap_used();
        self.base_free = self.fs.sb.s_free_blocks_count;
        ino
    }

    /// A new file with one written block (filled with [`fill_byte`]) at each of `lblks`.
    pub(crate) fn file_with(&mut self, lblks: &[u32]) -> Ino {
        let ino = self.empty_file();
        let bs = u64::from(self.fs.block_size());
        for &l in lblks {
            let data = vec![fill_byte(l); bs as usize];
            self.fs.write_file(ino, u64::from(l) * bs, &data).unwrap();
        }
        ino
    }

    /// Unlink file `ino` (its blocks are freed by eviction).
    pub(crate) fn remove(&mut self, ino: Ino) {
        let name = format!("/f{}", self.find_serial(ino));
        self.fs.unlink(&name).unwrap();
    }

    fn find_serial(&mut self, ino: Ino) -> u32 {
        (1..=self.serial)
            .find(|s| self.fs.resolve(&format!("/f{s}")).ok() == Some(ino))
            .expect("file of this test")
    }

    /// The walker's view of `ino`'s map (in-core `i_block`, blocks read through the buffer
    /// cache, which holds the journaled, not yet checkpointed versions).
    pub(crate) fn layout(&mut self, ino: Ino) -> Layout {
        let i_block = self.fs.inode(ino).raw.i_block_bytes();
        let (bs, first, nr) = (
            self.fs.block_size(),
            u64::from(self.fs.sb.s_first_data_block),
            self.fs.sb.s_blocks_count,
        );
        let fs = &mut self.fs;
        let mut read = |b: Pblk| {
            fs.bread(b, crate::dev::Zone::Unknown)
                .map(std::sync::Arc::from)
        };
        let mut ctx = WalkCtx {
            ino,
            block_size: bs,
            first_block: first,
            nr_blocks: nr,
            csum_seed: None,
            read: &mut read,
        };
        let map = blockmap::walk(&mut ctx, &i_block, false).unwrap();
        let meta = map.meta.iter().map(|m| m.pblk).collect();
        Layout { map, meta }
    }

    /// Blocks marked in use in the block bitmaps.
    pub(crate) fn bitmap_used(&mut self) -> u64 {
        let mut used = 0;
        for g in 0..self.fs.sb.groups_count() {
            let blk = self.fs.read_block_bitmap(Group(g)).unwrap();
            let n = self.fs.sb.blocks_in_group(g);
            used += u64::from(bitmap::count_set(&self.fs.bufs.map[&blk.0].data, 0, n));
        }
        used
    }

    /// `i_blocks` is exactly the data and mapping blocks of `lay`, every one of them is in use
    /// in the bitmap, and the bitmaps and the free count moved by exactly that many blocks
    /// since the file was created (nothing leaked, nothing lost).
    #[track_caller]
    pub(crate) fn check_accounting(&mut self, ino: Ino, lay: &Layout) {
        let per = u64::from(self.fs.block_size() / 512);
        assert_eq!(self.fs.inode_blocks(ino), lay.total() * per, "i_blocks");
        for r in &lay.map.runs {
            for p in r.pblk..r.pblk + u64::from(r.len) {
                assert!(
                    !self.fs.block_is_free(Pblk(p)).unwrap(),
                    "data block {p} free"
                );
            }
        }
        for &m in &lay.meta {
            assert!(
                !self.fs.block_is_free(Pblk(m)).unwrap(),
                "map block {m} free"
            );
        }
        assert_eq!(self.bitmap_used(), self.base_used + lay.total(), "bitmap");
        assert_eq!(
            self.fs.sb.s_free_blocks_count,
            self.base_free - lay.total(),
            "s_free_blocks_count"
        );
    }

    /// Unmount, save the image, run `e2fsck -fn`: its exit status and output.
    pub(crate) fn save_and_fsck(self) -> (i32, String) {
        let TestFs { fs, path, .. } = self;
        let dev = fs.unmount().unwrap();
        dev.save(&path.0).unwrap();
        let r = crate::oracle::e2fsck::check(&path.0).unwrap();
        (r.status, r.output)
    }
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The byte a test block at `lblk` is filled with (never 0, so holes are told apart).
pub(crate) fn fill_byte(lblk: u32) -> u8 {
    (lblk % 251) as u8 + 1
}
