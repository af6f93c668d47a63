//! File operations on inodes: models of the buffered write path (ext4_write_begin() /
//! ext4_write_end() with `nodelalloc`), read, ext4_setattr() truncation, ext4_punch_hole(),
//! ext4_fallocate() mode 0, ext4_sync_file(), and ext4_evict_inode().
//!
//! Every block written takes its own handle, as the kernel's per-page write_begin/write_end
//! pairs do.

use crate::error::{Error, Result};
use crate::format::inode as fi;
use crate::fs::map::{MapFlags, EXT4_MAP_UNWRITTEN};
use crate::fs::{Fs, Handle};
use crate::profile::Bug;
use crate::units::{Ino, Lblk};

/// Credits for writing one block (model of ext4_writepage_trans_blocks() for one page): the
/// bitmap, the descriptor, the superblock, the inode and up to 4 tree levels.
pub const WRITE_CREDITS: u32 = 8;

/// The largest file size the engine accepts (the 32-bit logical block limit).
pub fn max_file_size(block_size: u32, extents: bool) -> u64 {
    let bs = u64::from(block_size);
    if extents {
        (u64::from(u32::MAX)) * bs
    } else {
        let n = bs / 4;
        (12 + n + n * n + n * n * n).min(u64::from(u32::MAX)) * bs
    }
}

impl Fs {
    /// Write `data` at byte `off` of regular file `ino` (model of generic_perform_write()
    /// with ext4_write_begin()/ext4_write_end()).
    pub fn write_file(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.iget(ino)?;
        self.check_regular(ino)?;
        let bs = u64::from(self.block_size());
        let end = off.checked_add(data.len() as u64).ok_or(Error::TooBig)?;
        if end > max_file_size(self.block_size(), self.inode(ino).is_extents()) {
            return Err(Error::TooBig);
        }
        let mut pos = off;
        while pos < end {
            let lblk = Lblk((pos / bs) as u32);
            let in_blk = (pos % bs) as usize;
            let n = ((bs - pos % bs).min(end - pos)) as usize;
            let src = &data[(pos - off) as usize..(pos - off) as usize + n];
            self.write_one_block(ino, lblk, in_blk, src)?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Model of ext4_page_mkwrite() + a store through a shared mapping, for one block: the
    /// block is allocated if it is a hole (no `i_rwsem` in the kernel) and the bytes land in
    /// the page cache. It never changes `i_size` (a store past EOF faults).
    pub fn mmap_write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<()> {
        self.iget(ino)?;
        let bs = u64::from(self.block_size());
        if off / bs != (off + data.len() as u64).saturating_sub(1) / bs {
            return Err(Error::Invalid(
                "mmap store must stay within one block".into(),
            ));
        }
        if off + data.len() as u64 > self.inode(ino).raw.i_size {
            return Err(Error::Invalid(
                "mmap store past end of file (SIGBUS)".into(),
            ));
        }
        self.write_one_block_inner(
            ino,
            Lblk((off / bs) as u32),
            (off % bs) as usize,
            data,
            false,
        )
    }

    fn write_one_block(&mut self, ino: Ino, lblk: Lblk, at: usize, src: &[u8]) -> Result<()> {
        self.write_one_block_inner(ino, lblk, at, src, true)
    }

    fn write_one_block_inner(
        &mut self,
        ino: Ino,
        lblk: Lblk,
        at: usize,
        src: &[u8],
        extend: bool,
    ) -> Result<()> {
        let mut retries = 0;
        loop {
            let mut h = self.journal_start(WRITE_CREDITS)?;
            let res = self.write_begin_end(&mut h, ino, lblk, at, src, extend);
            self.journal_stop(h)?;
            match res {
                Err(Error::NoSpace) if self.should_retry_alloc(&mut retries)? => continue,
                r => return r,
            }
        }
    }

    /// Model of ext4_should_retry_alloc(): after an ENOSPC, if the running transaction holds
    /// freed blocks that cannot be reused before it commits, commit it and let the caller retry
    /// (at most 3 times, as the kernel does).
    pub(crate) fn should_retry_alloc(&mut self, retries: &mut u32) -> Result<bool> {
        *retries += 1;
        let pending = self.journal.as_ref().is_some_and(|j| {
            j.running
                .as_ref()
                .is_some_and(|t| !t.freed.is_empty() && t.updates == 0)
        });
        if *retries > 3 || !pending {
            return Ok(false);
        }
        self.journal_commit()?;
        Ok(true)
    }

    /// One block of ext4_write_begin() + copy + ext4_write_end() under an open handle: map
    /// (allocating a hole), store `src` at byte `at` of the cached block, extend `i_size` when
    /// `extend`, mark the inode dirty. The scheduler-level paths (`ops::paths`) call it with
    /// their locks held.
    pub(crate) fn write_begin_end(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        lblk: Lblk,
        at: usize,
        src: &[u8],
        extend: bool,
    ) -> Result<()> {
        let bs = self.block_size() as usize;
        let cached = self.pages.map.contains_key(&(ino, lblk));
        let old = if cached || (at == 0 && src.len() == bs) {
            None
        } else {
            Some(self.read_block_of(ino, lblk)?)
        };
        let m = self.map_blocks(Some(h), ino, lblk, 1, MapFlags::CREATE)?;
        if m.is_new() {
            self.jbd2_inode_add_write(h, ino);
        }
        let page = self.pages.get_or_create(ino, lblk, || match m.is_new() {
            true => vec![0u8; bs],
            false => old.unwrap_or_else(|| vec![0u8; bs]),
        });
        page.data[at..at + src.len()].copy_from_slice(src);
        page.dirty = true;
        let now = self.now();
        let end = u64::from(lblk.0) * bs as u64 + (at + src.len()) as u64;
        let info = self.inode_mut(ino);
        if extend && end > info.raw.i_size {
            info.raw.i_size = end;
        }
        info.raw.i_mtime = now;
        info.raw.i_ctime = now;
        self.mark_inode_dirty(h, ino)
    }

    /// Record that `ino` has newly allocated blocks whose data must reach the disk before the
    /// transaction commits (model of ext4_jbd2_inode_add_write(); data=ordered).
    pub(crate) fn jbd2_inode_add_write(&mut self, _h: &mut Handle, ino: Ino) {
        // S16 (CVE-2017-7495): the new blocks' inode was not put on the ordered list.
        if self.bugs.has(crate::profile::Bug::S16) {
            return;
        }
        if let Some(j) = self.journal.as_mut() {
            j.running_mut().ordered.insert(ino);
        }
    }

    /// The current contents of one file block: page cache, else the disk, else zeroes.
    fn read_block_of(&mut self, ino: Ino, lblk: Lblk) -> Result<Vec<u8>> {
        if let Some(p) = self.pages.map.get(&(ino, lblk)) {
            return Ok(p.data.clone());
        }
        let m = self.map_blocks(None, ino, lblk, 1, MapFlags::LOOKUP)?;
        if m.is_mapped() {
            Ok(self
                .dev
                .read_block_as(m.pblk, crate::dev::Zone::Data)?
                .to_vec())
        } else {
            Ok(vec![0u8; self.block_size() as usize])
        }
    }

    /// Read `len` bytes from byte `off` of file `ino`, clamped at `i_size`.
    pub fn read_file(&mut self, ino: Ino, off: u64, len: u64) -> Result<Vec<u8>> {
        self.iget(ino)?;
        let size = self.inode(ino).raw.i_size;
        let end = off.saturating_add(len).min(size);
        let bs = u64::from(self.block_size());
        let mut out = Vec::with_capacity(end.saturating_sub(off) as usize);
        let mut pos = off;
        while pos < end {
            let lblk = Lblk((pos / bs) as u32);
            let n = (bs - pos % bs).min(end - pos);
            if let Some(p) = self.pages.map.get(&(ino, lblk)) {
                out.extend_from_slice(&p.data[(pos % bs) as usize..(pos % bs + n) as usize]);
                pos += n;
                continue;
            }
            let m = self.map_blocks(
                None,
                ino,
                lblk,
                ((end - pos).div_ceil(bs)).min(u64::from(u32::MAX)) as u32,
                MapFlags::LOOKUP,
            )?;
            let run = (u64::from(m.len) * bs - pos % bs).min(end - pos);
            if m.is_mapped() {
                let mut left = run;
                let mut p = pos;
                while left > 0 {
                    let l = (p / bs) as u32 - lblk.0;
                    // A block of the run may have a newer (dirty) copy in the page cache.
                    let blk = match self.pages.map.get(&(ino, Lblk((p / bs) as u32))) {
                        Some(page) => page.data.clone(),
                        None => self
                            .dev
                            .read_block_as(m.pblk + u64::from(l), crate::dev::Zone::Data)?
                            .to_vec(),
                    };
                    let k = (bs - p % bs).min(left);
                    out.extend_from_slice(&blk[(p % bs) as usize..(p % bs + k) as usize]);
                    p += k;
                    left -= k;
                }
            } else {
                out.resize(out.len() + run as usize, 0);
            }
            pos += run;
        }
        Ok(out)
    }

    fn check_regular(&self, ino: Ino) -> Result<()> {
        let mode = self.inode(ino).raw.i_mode & fi::S_IFMT;
        if mode == fi::S_IFDIR {
            return Err(Error::IsDir(format!("inode {ino}")));
        }
        if mode != fi::S_IFREG {
            return Err(Error::Invalid(format!("inode {ino} is not a regular file")));
        }
        Ok(())
    }

    /// Model of ext4_setattr(ATTR_SIZE) → ext4_truncate(): change `i_size`; when shrinking,
    /// zero the tail of the last block and free every block past it.
    pub fn truncate_file(&mut self, ino: Ino, size: u64) -> Result<()> {
        self.check_writable()?;
        self.iget(ino)?;
        self.check_regular(ino)?;
        if size > max_file_size(self.block_size(), self.inode(ino).is_extents()) {
            return Err(Error::TooBig);
        }
        let bs = u64::from(self.block_size());
        let old = self.inode(ino).raw.i_size;
        if size < old {
            // Fixed U2/U3: no truncate error after the pages are gone (the probes read the
            // blocks the walk reads first).
            let from = Lblk(size.div_ceil(bs) as u32);
            match self.inode(ino).is_extents() {
                true if !self.bugs.has(Bug::U3) => self.ext_truncate_probe(ino, from)?,
                false if !self.bugs.has(Bug::U2) => self.ind_truncate_probe(ino, from)?,
                _ => {}
            }
        }
        let mut h = self.journal_start(WRITE_CREDITS * 4)?;
        let res = (|| {
            let now = self.now();
            let info = self.inode_mut(ino);
            info.raw.i_size = size;
            info.raw.i_mtime = now;
            info.raw.i_ctime = now;
            if size < old {
                self.orphan_add(&mut h, ino)?;
                if size % bs != 0 {
                    // ext4_truncate() ignores ext4_block_truncate_page()'s error (6.18): a
                    // last block that cannot be read keeps its tail, and the truncate goes on
                    // (tests/integration/kernel_eio.rs shows it on the kernel).
                    let lblk = Lblk((size / bs) as u32);
                    let tail = (size % bs) as usize;
                    let _ = self.zero_in_block(&mut h, ino, lblk, tail, bs as usize);
                }
                let first_gone = Lblk(size.div_ceil(bs) as u32);
                self.pages.truncate(ino, first_gone, Lblk(u32::MAX));
                self.truncate_blocks(&mut h, ino, first_gone)?;
                self.orphan_del(&mut h, ino)?;
            }
            self.mark_inode_dirty(&mut h, ino)
        })();
        let stop = self.journal_stop(h);
        // ext4_setattr()'s `err_out: ext4_std_error(inode->i_sb, error)`: an error once the
        // handle started is recorded in the superblock.
        res.and(stop).map_err(|e| self.ext4_error(e))
    }

    /// Zero bytes `[from, to)` of one block if it is mapped (model of ext4_block_zero_page_range()).
    fn zero_in_block(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        lblk: Lblk,
        from: usize,
        to: usize,
    ) -> Result<()> {
        let m = self.map_blocks(Some(h), ino, lblk, 1, MapFlags::LOOKUP)?;
        if !m.is_mapped() && !self.pages.map.contains_key(&(ino, lblk)) {
            return Ok(());
        }
        let data = self.read_block_of(ino, lblk)?;
        let page = self.pages.get_or_create(ino, lblk, || data);
        page.data[from..to].fill(0);
        page.dirty = true;
        Ok(())
    }

    /// The byte range `[off, end)` ext4_punch_hole() works on, or `None` when there is
    /// nothing to punch. The range ends at `i_size`, and at the latest one block before the
    /// last block a block map can address (max_length = s_bitmap_maxbytes - blocksize), so the
    /// page cache and ext4_ind_remove_space() agree on the last block (kept, data and all).
    fn punch_span(&mut self, ino: Ino, off: u64, len: u64) -> Result<Option<(u64, u64)>> {
        self.check_writable()?;
        self.iget(ino)?;
        self.check_regular(ino)?;
        let size = self.inode(ino).raw.i_size;
        let max_length = max_file_size(self.block_size(), false) - u64::from(self.block_size());
        let end = off.saturating_add(len).min(size).min(max_length);
        Ok((off < end).then_some((off, end)))
    }

    /// The blocks wholly inside the punch range of `[off, off+len)` (empty if none).
    pub fn punch_full_blocks(&mut self, ino: Ino, off: u64, len: u64) -> Result<(Lblk, Lblk)> {
        let bs = u64::from(self.block_size());
        Ok(match self.punch_span(ino, off, len)? {
            Some((off, end)) if off.div_ceil(bs) < end / bs => {
                (Lblk(off.div_ceil(bs) as u32), Lblk((end / bs) as u32))
            }
            _ => (Lblk(0), Lblk(0)),
        })
    }

    /// Model of ext4_punch_hole()'s handle: zero the partial blocks at both ends and free the
    /// whole blocks in between (their pages are dropped here too, if the caller has not
    /// already: `ops::paths::punch`). `i_size` does not change.
    pub fn punch_hole(&mut self, ino: Ino, off: u64, len: u64) -> Result<()> {
        let Some((off, end)) = self.punch_span(ino, off, len)? else {
            return Ok(());
        };
        let bs = u64::from(self.block_size());
        let mut h = self.journal_start(WRITE_CREDITS * 4)?;
        let res = (|| {
            let first_full = off.div_ceil(bs);
            let last_full = end / bs; // exclusive
            if off % bs != 0 {
                let stop = if end / bs == off / bs { end % bs } else { bs };
                self.zero_in_block(
                    &mut h,
                    ino,
                    Lblk((off / bs) as u32),
                    (off % bs) as usize,
                    stop as usize,
                )?;
            }
            if end % bs != 0 && (end / bs != off / bs || off % bs == 0) {
                self.zero_in_block(&mut h, ino, Lblk((end / bs) as u32), 0, (end % bs) as usize)?;
            }
            if first_full < last_full {
                let (s, e) = (Lblk(first_full as u32), Lblk(last_full as u32));
                self.pages.truncate(ino, s, e);
                self.remove_space(&mut h, ino, s, e)?;
            }
            let now = self.now();
            let info = self.inode_mut(ino);
            info.raw.i_mtime = now;
            info.raw.i_ctime = now;
            self.mark_inode_dirty(&mut h, ino)
        })();
        let stop = self.journal_stop(h);
        res.and(stop)
    }

    /// Model of ext4_update_inode_size() (fs/ext4/ext4.h): raise `i_size` to `newsize`, never
    /// lower it (the model keeps no separate `i_disksize`). True if it changed.
    pub(crate) fn update_inode_size(&mut self, ino: Ino, newsize: u64) -> bool {
        let info = self.inode_mut(ino);
        if newsize > info.raw.i_size {
            info.raw.i_size = newsize;
            return true;
        }
        false
    }

    /// Model of ext4_fallocate() mode 0 (extent files only) → ext4_alloc_file_blocks(): allocate
    /// unwritten extents for every hole in `[off, off+len)`, one handle per mapped run. When
    /// the range ends past EOF (`new_size`), each handle raises `i_size` to the end of what is
    /// allocated so far (capped at `new_size`) through ext4_update_inode_size(), which never
    /// lowers it: a commit between two handles must not expose a size below the old one. Each
    /// handle sets `i_ctime` to now, and `i_mtime` too when it raised the size.
    pub fn fallocate(&mut self, ino: Ino, off: u64, len: u64) -> Result<()> {
        self.check_writable()?;
        self.iget(ino)?;
        self.check_regular(ino)?;
        if !self.inode(ino).is_extents() {
            return Err(Error::NotSupported(
                "fallocate needs an extent-mapped file".into(),
            ));
        }
        let bs = u64::from(self.block_size());
        let end = off.checked_add(len).ok_or(Error::TooBig)?;
        if len == 0 || end > max_file_size(self.block_size(), true) {
            return Err(if len == 0 {
                Error::Invalid("zero length".into())
            } else {
                Error::TooBig
            });
        }
        // ext4_fallocate(): without FALLOC_FL_KEEP_SIZE, new_size is set only past EOF.
        let new_size = (end > self.inode(ino).raw.i_size).then_some(end);
        let mut lblk = off / bs;
        let last = end.div_ceil(bs);
        let mut retries = 0;
        while lblk < last {
            let mut h = self.journal_start(WRITE_CREDITS)?;
            let want =
                (last - lblk).min(u64::from(crate::format::extent::EXT_UNWRITTEN_MAX_LEN)) as u32;
            let res = self.map_blocks(
                Some(&mut h),
                ino,
                Lblk(lblk as u32),
                want,
                MapFlags::CREATE_UNWRIT_EXT,
            );
            let res = res.and_then(|m| {
                debug_assert!(m.flags & EXT4_MAP_UNWRITTEN != 0 || m.is_mapped());
                // Each handle: ctime is now; mtime too when the size grew.
                let now = self.now();
                self.inode_mut(ino).raw.i_ctime = now;
                if let Some(new_size) = new_size {
                    let epos = ((lblk + u64::from(m.len)) * bs).min(new_size);
                    if self.update_inode_size(ino, epos) {
                        self.inode_mut(ino).raw.i_mtime = now;
                    }
                }
                self.mark_inode_dirty(&mut h, ino).map(|()| m.len)
            });
            let stop = self.journal_stop(h);
            if matches!(res, Err(Error::NoSpace)) && self.should_retry_alloc(&mut retries)? {
                continue;
            }
            lblk += u64::from(res?);
            stop?;
        }
        Ok(())
    }

    /// Model of ext4_sync_file(): write back the file's data, then commit the inode's
    /// transaction (`i_sync_tid`, jbd2_complete_transaction()) if it still runs, whose commit
    /// block carries the barrier; if it has committed already, only flush the device
    /// (`needs_barrier`). Other files' changes in the running transaction are not committed
    /// by an fsync whose inode is not in it.
    pub fn fsync(&mut self, ino: Ino) -> Result<()> {
        self.check_writable()?;
        self.writeback_inode(ino)?;
        self.commit_with_barrier(Some(ino))
    }

    /// Model of ext4_evict_inode() for an inode whose last link is gone: free its blocks,
    /// stamp `i_dtime`, write it out and release the inode number.
    pub fn evict_inode(&mut self, ino: Ino) -> Result<()> {
        self.iget(ino)?;
        let mut h = self.journal_start(WRITE_CREDITS * 4)?;
        let res = (|| {
            self.pages.truncate(ino, Lblk(0), Lblk(u32::MAX));
            // ext4_evict_inode() truncates only an inode that owns blocks (a fast symlink's
            // i_block holds its target, not a map).
            if self.inode_blocks(ino) != 0 {
                self.truncate_blocks(&mut h, ino, Lblk(0))?;
            }
            self.orphan_del(&mut h, ino)?;
            let now = self.now();
            let info = self.inode_mut(ino);
            info.raw.i_size = 0;
            info.raw.i_dtime = now;
            self.mark_inode_dirty(&mut h, ino)?;
            self.free_inode(&mut h, ino)
        })();
        let stop = self.journal_stop(h);
        res.and(stop)
    }
}

#[cfg(test)]
mod tests {
    use super::WRITE_CREDITS;
    use crate::dev::CrashFates;
    use crate::format::testimg::Img;
    use crate::fs::{Fs, MountOpts};

    /// The fixed campaign's finding (PR_1_EXTENT_END_OUT_OF_BOUNDS / PR_1_BAD_I_SIZE): a
    /// fallocate that starts below EOF and ends past it, over [written, hole, written, hole],
    /// with a commit between every two of its handles (the transaction limit lowered to one
    /// handle, as a full transaction does in a long workload). Every crash state must keep
    /// `i_size` at least the old size, the written tail readable, and pass `e2fsck -fn`; the
    /// committed sizes only grow: 14221 (old), 14336 (blocks 12-13), 18128 (the new EOF).
    /// The old model set `i_size` to each handle's end, lowering it to 5120 and 12288.
    #[test]
    fn fallocate_across_eof_never_lowers_i_size_between_commits() {
        let Some(img) = Img::mkfs("falloc-size", None) else {
            return;
        };
        let mut fs = Fs::open(&img.0, MountOpts::default()).unwrap();
        let ino = fs.create("/f", 0o644).unwrap();
        fs.write_file(ino, 4096, &[1u8; 1024]).unwrap();
        let tail = vec![2u8; 1933];
        fs.write_file(ino, 12288, &tail).unwrap();
        assert_eq!(fs.inode(ino).raw.i_size, 14221);
        fs.sync().unwrap();
        fs.dev.clear_log();
        fs.journal.as_mut().unwrap().max_txn_buffers = WRITE_CREDITS;
        fs.fallocate(ino, 4243, 13885).unwrap();
        assert_eq!(fs.inode(ino).raw.i_size, 18128);
        fs.sync().unwrap();
        let dev = fs.dev.clone();
        let n = dev.log().len();
        let mut sizes = Vec::new();
        for k in 0..=n {
            let crash = dev.replay_log(k).crash_image(&CrashFates::AllKept);
            let mut fs = Fs::mount(crash, MountOpts::default()).unwrap();
            fs.iget(ino).unwrap();
            let size = fs.inode(ino).raw.i_size;
            let got = fs.read_file(ino, 12288, 1933).unwrap();
            assert!(
                got == tail,
                "crash at write {k}/{n}: i_size {size} cut the tail"
            );
            let dev = fs.unmount().unwrap();
            dev.save(&img.0).unwrap();
            let r = crate::oracle::e2fsck::check(&img.0).unwrap();
            assert_eq!(r.status, 0, "crash at write {k}/{n}:\n{}", r.output);
            sizes.push(size);
        }
        sizes.dedup();
        assert_eq!(sizes, [14221, 14336, 18128]);
    }

    /// ext4_alloc_file_blocks(): every handle sets `i_ctime`; `i_mtime` moves only with a handle
    /// that raised `i_size` (so not for a fallocate inside EOF).
    #[test]
    fn fallocate_sets_ctime_always_and_mtime_when_the_size_grows() {
        let Some(img) = Img::mkfs("falloc-times", None) else {
            return;
        };
        let mut fs = Fs::open(&img.0, MountOpts::default()).unwrap();
        let ino = fs.create("/f", 0o644).unwrap();
        fs.write_file(ino, 0, &[1u8; 8192]).unwrap();
        let times = |fs: &Fs| (fs.inode(ino).raw.i_ctime, fs.inode(ino).raw.i_mtime);
        let (c0, m0) = times(&fs);
        fs.fallocate(ino, 0, 4096).unwrap(); // inside EOF: already mapped
        let (c1, m1) = times(&fs);
        assert!(c1 > c0 && m1 == m0, "inside EOF: {c0},{m0} -> {c1},{m1}");
        fs.fallocate(ino, 8192, 4096).unwrap(); // past EOF: the size grows
        let (c2, m2) = times(&fs);
        assert!(c2 > c1 && m2 == c2, "past EOF: {c1},{m1} -> {c2},{m2}");
    }

    /// ext4_sync_file(): an fsync commits the inode's transaction if it still runs (its
    /// commit block is the barrier: no flush after it); an fsync of an inode whose last
    /// transaction has committed commits nothing, not even other files' changes, and
    /// flushes once.
    #[test]
    fn fsync_commits_only_its_inodes_transaction_and_flushes_only_without_one() {
        let Some(img) = Img::mkfs("fsync-barrier", None) else {
            return;
        };
        let mut fs = Fs::open(&img.0, MountOpts::default()).unwrap();
        let a = fs.create("/a", 0o644).unwrap();
        let b = fs.create("/b", 0o644).unwrap();
        fs.write_file(a, 0, &[1u8; 4096]).unwrap();
        fs.fsync(a).unwrap(); // a and b's creation commit together
        let running = |fs: &Fs| fs.journal.as_ref().unwrap().running.as_ref().map(|t| t.tid);
        let flushes0 = fs.dev.stats().flushes;
        fs.write_file(b, 0, &[2u8; 4096]).unwrap();
        let b_tid = running(&fs).expect("b's write runs in a transaction");
        fs.fsync(a).unwrap(); // a unchanged since: a flush, and b's write stays uncommitted
        assert_eq!(running(&fs), Some(b_tid), "no commit for a clean inode");
        assert_eq!(fs.dev.stats().flushes, flushes0 + 1);
        fs.fsync(b).unwrap(); // b's transaction runs: commit it, no extra flush
        assert_ne!(running(&fs), Some(b_tid), "b's transaction committed");
        let commit_flushes = fs.dev.stats().flushes - flushes0 - 1;
        fs.write_file(b, 4096, &[3u8; 4096]).unwrap();
        let before = fs.dev.stats().flushes;
        fs.fsync(b).unwrap();
        assert_eq!(
            fs.dev.stats().flushes - before,
            commit_flushes,
            "an fsync that commits issues only the commit's own flushes"
        );
    }
}
