//! The paths that run concurrently with a migration, each taking the kernel's locks in the
//! kernel's order (kernel.md §1.5) around the synchronous engine code:
//!
//! | op | locks | kernel |
//! |---|---|---|
//! | [`page_mkwrite`] | `mmap_lock`(r) → [T4: `i_rwsem`] → `invalidate_lock`(r) → handle → page → `i_data_sem`(w) | ext4_page_mkwrite() (nodelalloc: allocates a hole) |
//! | [`write`](fn@write) | `i_rwsem` → per block: `mmap_lock`(r) fault-in, handle, page, `i_data_sem`(w) | generic_perform_write() + ext4_write_begin/end() |
//! | [`read`], [`fiemap`] | `i_data_sem`(r) around each lookup | ext4_map_blocks() without CREATE |
//! | [`truncate`] | `i_rwsem` → handle → `i_data_sem`(w) | ext4_setattr() |
//! | [`punch`] | `i_rwsem` → `invalidate_lock`(w) → [writeback] → page-cache drop → handle → `i_data_sem`(w) | ext4_punch_hole() |
//! | [`writeback`] | `s_writepages_rwsem`(r) → per dirty page `i_data_sem`(r) | ext4_writepages() |
//! | [`fsync`] | writeback, then the commit (`jbd2_handle` for write) | ext4_sync_file() |
//! | [`mmap`] | `mmap_lock`(w) | mmap(2) / munmap(2) |
//!
//! Every mapping lookup goes through [`map_lookup`]: `ext4_map_blocks()` tests the format
//! (`EXTENTS_FL`) under `i_data_sem` (c278bfecebfb). With S4 the format is tested first, the
//! thread yields, and only then takes `i_data_sem` and calls the per-format lookup it chose,
//! so a migration that swaps in between makes it read an extent header as block pointers.
//! The result then goes through `check_block_validity()`: a block outside the filesystem or
//! on its static metadata is `-EFSCORRUPTED`, as the kernel reports "mapped to illegal
//! pblock".

use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::inode::{S_IFDIR, S_IFMT, S_IFREG};
use crate::fs::file::{max_file_size, WRITE_CREDITS};
use crate::fs::map::{MapFlags, MapResult};
use crate::fs::Fs;
use crate::ops::locks::{
    i_data_sem, i_rwsem, invalidate_lock, journal_commit_inode, journal_start, journal_stop,
};
use crate::profile::Bug;
use crate::sched::{Cx, LockGuard, LockId, Mode};
use crate::units::{Ino, Lblk};

/// Release `guards` in reverse order (each a yield point).
async fn release_all(cx: &Cx<Fs>, guards: Vec<LockGuard>) {
    for g in guards.into_iter().rev() {
        cx.unlock(g).await;
    }
}

/// Model of ext4_page_mkwrite() for one store through a shared mapping of `ino` (nodelalloc,
/// so a hole is allocated here, without `i_rwsem`): `data` lands at byte `off`, within one
/// block and within `i_size` (a store past EOF is SIGBUS).
pub async fn page_mkwrite(cx: &Cx<Fs>, ino: Ino, off: u64, data: &[u8]) -> Result<()> {
    let mut held = vec![cx.lock(LockId::MmapLock, Mode::Read).await];
    // T4: the thread-v1 FIXME done: i_rwsem under mmap_lock, against write(2)'s order.
    if cx.with(|fs| fs.bugs.has(Bug::T4)) {
        held.push(cx.lock(i_rwsem(ino), Mode::Write).await);
    }
    held.push(cx.lock(invalidate_lock(ino), Mode::Read).await);
    let r = mkwrite_locked(cx, ino, off, data).await;
    release_all(cx, held).await;
    r
}

async fn mkwrite_locked(cx: &Cx<Fs>, ino: Ino, off: u64, data: &[u8]) -> Result<()> {
    let (lblk, at) = cx.with(|fs| {
        fs.iget(ino)?;
        let bs = u64::from(fs.block_size());
        let end = off + data.len() as u64;
        if data.is_empty() || off / bs != (end - 1) / bs {
            return Err(Error::Invalid(
                "mmap store must stay within one block".into(),
            ));
        }
        if end > fs.inode(ino).raw.i_size {
            return Err(Error::Invalid(
                "mmap store past end of file (SIGBUS)".into(),
            ));
        }
        Ok((Lblk((off / bs) as u32), (off % bs) as usize))
    })?;
    store_block(cx, ino, lblk, at, data, false).await
}

/// One block of a store: handle → page lock → `i_data_sem`(w) → ext4_write_begin/end.
async fn store_block(
    cx: &Cx<Fs>,
    ino: Ino,
    lblk: Lblk,
    at: usize,
    data: &[u8],
    extend: bool,
) -> Result<()> {
    let mut jh = journal_start(cx, WRITE_CREDITS).await?;
    let pg = cx.lock(LockId::Page(ino.0, lblk.0), Mode::Write).await;
    let ds = cx.lock(i_data_sem(ino), Mode::Write).await;
    let r = cx.with(|fs| fs.write_begin_end(&mut jh.h, ino, lblk, at, data, extend));
    cx.unlock(ds).await;
    cx.unlock(pg).await;
    let stop = journal_stop(cx, jh).await;
    r.and(stop)
}

/// Buffered write(2) of `data` at byte `off` of regular file `ino` (model of
/// generic_perform_write(): under `i_rwsem`, per block a fault-in of the user buffer
/// (`mmap_lock` for read) and one handle).
pub async fn write(cx: &Cx<Fs>, ino: Ino, off: u64, data: &[u8]) -> Result<()> {
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    let r = write_locked(cx, ino, off, data).await;
    cx.unlock(rw).await;
    r
}

async fn write_locked(cx: &Cx<Fs>, ino: Ino, off: u64, data: &[u8]) -> Result<()> {
    let bs = cx.with(|fs| -> Result<u64> {
        fs.check_writable()?;
        check_regular(fs, ino)?;
        let end = off.checked_add(data.len() as u64).ok_or(Error::TooBig)?;
        if end > max_file_size(fs.block_size(), fs.inode(ino).is_extents()) {
            return Err(Error::TooBig);
        }
        Ok(u64::from(fs.block_size()))
    })?;
    let end = off + data.len() as u64;
    let mut pos = off;
    while pos < end {
        let n = (bs - pos % bs).min(end - pos);
        let src = &data[(pos - off) as usize..(pos - off + n) as usize];
        let mm = cx.lock(LockId::MmapLock, Mode::Read).await;
        cx.unlock(mm).await;
        let lblk = Lblk((pos / bs) as u32);
        store_block(cx, ino, lblk, (pos % bs) as usize, src, true).await?;
        pos += n;
    }
    Ok(())
}

fn check_regular(fs: &mut Fs, ino: Ino) -> Result<()> {
    fs.iget(ino)?;
    match fs.inode(ino).raw.i_mode & S_IFMT {
        S_IFREG => Ok(()),
        S_IFDIR => Err(Error::IsDir(format!("inode {ino}"))),
        _ => Err(Error::Invalid(format!("inode {ino} is not a regular file"))),
    }
}

/// Model of ext4_map_blocks() without CREATE as readers call it: `i_data_sem` (read) around
/// the lookup, then check_block_validity(). With S4 the format is tested before the lock
/// (with a yield point in between) and the chosen per-format lookup is called directly.
pub async fn map_lookup(cx: &Cx<Fs>, ino: Ino, lblk: Lblk, len: u32) -> Result<MapResult> {
    crate::fs::map::check_lblk(ino, lblk)?;
    let early = match cx.with(|fs| fs.bugs.has(Bug::S4)) {
        true => {
            let ext = cx.with(|fs| fs.inode(ino).is_extents());
            cx.yield_point("ext4_map_blocks").await;
            Some(ext)
        }
        false => None,
    };
    let g = cx.lock(i_data_sem(ino), Mode::Read).await;
    let r = cx.with(|fs| {
        let m = match early {
            Some(true) => fs.ext_map_blocks(None, ino, lblk, len, MapFlags::LOOKUP)?,
            Some(false) => fs.ind_map_blocks(None, ino, lblk, len, MapFlags::LOOKUP)?,
            None => fs.map_blocks(None, ino, lblk, len, MapFlags::LOOKUP)?,
        };
        check_block_validity(fs, &m).map(|()| m)
    });
    cx.unlock(g).await;
    r
}

/// Model of check_block_validity() (fs/ext4/inode.c): a mapped range must lie inside the
/// filesystem's data area and off its static metadata (the system zone).
fn check_block_validity(fs: &Fs, m: &MapResult) -> Result<()> {
    if m.flags & crate::fs::map::EXT4_MAP_MAPPED == 0 {
        return Ok(());
    }
    let first = u64::from(fs.sb.s_first_data_block);
    let end = m.pblk.0.checked_add(u64::from(m.len));
    let inside = m.pblk.0 >= first && end.is_some_and(|e| e <= fs.sb.s_blocks_count);
    let system = |z: Zone| {
        matches!(
            z,
            Zone::Superblock | Zone::GroupDesc | Zone::Bitmap | Zone::InodeTable
        )
    };
    if !inside
        || fs
            .dev
            .zone_map()
            .zones_in(m.pblk, u64::from(m.len))
            .any(system)
    {
        return Err(CorruptKind::BlockOutOfRange(m.pblk).into());
    }
    Ok(())
}

/// read(2) of `len` bytes at `off` of `ino`, clamped at `i_size`: cached pages, else the
/// mapped blocks through [`map_lookup`], zeros for holes.
pub async fn read(cx: &Cx<Fs>, ino: Ino, off: u64, len: u64) -> Result<Vec<u8>> {
    let (size, bs) = cx.with(|fs| -> Result<(u64, u64)> {
        fs.iget(ino)?;
        Ok((fs.inode(ino).raw.i_size, u64::from(fs.block_size())))
    })?;
    let end = off.saturating_add(len).min(size);
    let mut out = Vec::with_capacity(end.saturating_sub(off).min(1 << 20) as usize);
    let mut pos = off;
    while pos < end {
        let lblk = Lblk((pos / bs) as u32);
        let n = (bs - pos % bs).min(end - pos);
        let part = (pos % bs) as usize..(pos % bs + n) as usize;
        // The bytes go straight from the page or the block into `out` (no copy of the block).
        let cached = cx.with(|fs| {
            let page = fs.pages.map.get(&(ino, lblk));
            page.map(|p| out.extend_from_slice(&p.data[part.clone()]))
        });
        if cached.is_none() {
            let m = map_lookup(cx, ino, lblk, 1).await?;
            if m.is_mapped() {
                cx.with(|fs| -> Result<()> {
                    let block = fs.dev.read_block_as(m.pblk, Zone::Data)?;
                    out.extend_from_slice(&block[part]);
                    Ok(())
                })?;
            } else {
                out.resize(out.len() + n as usize, 0);
            }
        }
        pos += n;
    }
    Ok(out)
}

/// FIEMAP of `ino` up to `i_size`: the mapped ranges `(lblk, pblk, len)`, each looked up
/// under `i_data_sem` (read).
pub async fn fiemap(cx: &Cx<Fs>, ino: Ino) -> Result<Vec<(u32, u64, u32)>> {
    let nblocks = cx.with(|fs| -> Result<u64> {
        fs.iget(ino)?;
        let bs = u64::from(fs.block_size());
        Ok(fs
            .inode(ino)
            .raw
            .i_size
            .div_ceil(bs)
            .min(u64::from(u32::MAX)))
    })?;
    let mut out = Vec::new();
    let mut lblk = 0u64;
    while lblk < nblocks {
        let want = (nblocks - lblk) as u32;
        let m = map_lookup(cx, ino, Lblk(lblk as u32), want).await?;
        if m.is_mapped() {
            out.push((m.lblk.0, m.pblk.0, m.len));
        }
        lblk += u64::from(m.len);
    }
    Ok(out)
}

/// Model of ext4_setattr(ATTR_SIZE): `i_rwsem` → handle → `i_data_sem`(w) around the
/// engine's truncate.
pub async fn truncate(cx: &Cx<Fs>, ino: Ino, size: u64) -> Result<()> {
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    let r = with_data_sem_w(cx, ino, move |fs| fs.truncate_file(ino, size)).await;
    cx.unlock(rw).await;
    r
}

/// Model of ext4_punch_hole(): under `i_rwsem` and `invalidate_lock` (write), drop the pages
/// of the whole blocks in the range (ext4_truncate_page_cache_block_range()), then start the
/// handle (a yield point: a commit another thread is waiting for lands here) and free the
/// blocks under `i_data_sem`(w).
///
/// Mainline (U1) drops the pages, dirty or not, without writing them back: a commit between
/// the drop and the handle makes blocks that nodelalloc allocated in the running transaction
/// durable without their data, and a crash before the punch commits shows their old bytes.
/// Without U1 the range is first written back (filemap_write_and_wait_range(), as
/// ext4_punch_hole() did before 6.14), here under both locks, so no store can dirty a page of
/// the range again before the drop.
pub async fn punch(cx: &Cx<Fs>, ino: Ino, off: u64, len: u64) -> Result<()> {
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    let inv = cx.lock(invalidate_lock(ino), Mode::Write).await;
    let r = punch_locked(cx, ino, off, len).await;
    cx.unlock(inv).await;
    cx.unlock(rw).await;
    r
}

async fn punch_locked(cx: &Cx<Fs>, ino: Ino, off: u64, len: u64) -> Result<()> {
    let (s, e) = cx.with(|fs| fs.punch_full_blocks(ino, off, len))?;
    if s < e && !cx.with(|fs| fs.bugs.has(Bug::U1)) {
        let wp = cx.lock(LockId::WritepagesRwsem, Mode::Read).await;
        let r = writeback_pages(cx, ino, s..e).await;
        cx.unlock(wp).await;
        r?;
    }
    // truncate_pagecache_range() of the whole blocks, dirty pages or not.
    cx.with(|fs| fs.pages.truncate(ino, s, e));
    with_data_sem_w(cx, ino, move |fs| fs.punch_hole(ino, off, len)).await
}

/// A handle (the engine call starts its own) with `i_data_sem` (write) inside it.
async fn with_data_sem_w(
    cx: &Cx<Fs>,
    ino: Ino,
    f: impl FnOnce(&mut Fs) -> Result<()>,
) -> Result<()> {
    cx.yield_point("journal_start").await;
    let jc = cx.lock(LockId::JournalCommit, Mode::Read).await;
    let ds = cx.lock(i_data_sem(ino), Mode::Write).await;
    let r = cx.with(f);
    cx.unlock(ds).await;
    cx.unlock(jc).await;
    r
}

/// Model of ext4_writepages() for `ino` (nodelalloc: every dirty page is mapped already):
/// under `s_writepages_rwsem` (read), each dirty page is looked up and written to its block.
pub async fn writeback(cx: &Cx<Fs>, ino: Ino) -> Result<()> {
    let wp = cx.lock(LockId::WritepagesRwsem, Mode::Read).await;
    let r = writeback_locked(cx, ino).await;
    cx.unlock(wp).await;
    r
}

async fn writeback_locked(cx: &Cx<Fs>, ino: Ino) -> Result<()> {
    writeback_pages(cx, ino, ..).await
}

/// Write back the dirty pages of `ino` in `range`, each looked up and written to its block.
async fn writeback_pages(
    cx: &Cx<Fs>,
    ino: Ino,
    range: impl std::ops::RangeBounds<Lblk>,
) -> Result<()> {
    let mut dirty = cx.with(|fs| fs.pages.dirty_pages_of(ino));
    dirty.retain(|(l, _)| range.contains(l));
    for (lblk, id) in dirty {
        let m = map_lookup(cx, ino, lblk, 1).await?;
        cx.with(|fs| {
            let (size, bs) = (fs.iget(ino)?.raw.i_size, u64::from(fs.block_size()));
            // The page lock: a page truncated meanwhile (and maybe created again, mapped
            // elsewhere) is not the page the lookup was for; the new one stays dirty.
            let Some(page) = fs.pages.map.get_mut(&(ino, lblk)).filter(|p| p.id == id) else {
                return Ok(());
            };
            page.dirty = false;
            match page.for_writeback(u64::from(lblk.0) * bs, size) {
                Some(data) if m.is_mapped() => fs.dev.write_as(m.pblk, &data, Zone::Data),
                _ => Ok(()),
            }
        })?;
    }
    Ok(())
}

/// Model of ext4_sync_file(): write back the file's pages, then commit the inode's
/// transaction if it still runs (waiting for every open handle), else flush.
pub async fn fsync(cx: &Cx<Fs>, ino: Ino) -> Result<()> {
    cx.with(|fs| fs.check_writable())?;
    writeback(cx, ino).await?;
    journal_commit_inode(cx, ino).await
}

/// mmap(2) / munmap(2): `mmap_lock` for write, briefly.
pub async fn mmap(cx: &Cx<Fs>) {
    let g = cx.lock(LockId::MmapLock, Mode::Write).await;
    cx.unlock(g).await;
}
