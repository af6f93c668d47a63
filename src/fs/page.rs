//! The page cache, reduced to block granularity: file data written by `write()` or an mmap
//! store sits here, dirty, until writeback sends it to the block it is mapped to (model of
//! the buffer-head path of fs/ext4/inode.c with `nodelalloc`: blocks are allocated at write
//! time, data reaches the disk at writeback).

use crate::dev::Zone;
use crate::error::Result;
use crate::fs::Fs;
use crate::units::{Ino, Lblk, Pblk};
use std::collections::BTreeMap;

/// One cached file block.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub(crate) data: Vec<u8>,
    pub(crate) dirty: bool,
    /// Which page this is (`struct page` identity): a page dropped by truncation and
    /// created again at the same index is another page. Writeback that looked up a mapping
    /// for one page must not write another page there (it holds the page lock in the kernel).
    pub(crate) id: u64,
}

impl Page {
    /// What writeback sends of this page, the block at byte `start` of a file of `size` bytes
    /// (model of ext4_bio_write_folio()): the part past `i_size` of a page that straddles it is
    /// zeroed, in the page itself ("it may be mmapped": a store there is not the file's, and a
    /// truncate whose read of that block failed left old bytes there); a page wholly past
    /// `i_size` is not written (`None`).
    pub(crate) fn for_writeback(&mut self, start: u64, size: u64) -> Option<Vec<u8>> {
        let keep = usize::try_from(size.checked_sub(start)?).unwrap_or(usize::MAX);
        if keep == 0 {
            return None;
        }
        if let Some(tail) = self.data.get_mut(keep..) {
            tail.fill(0);
        }
        Some(self.data.clone())
    }
}

/// Cached file blocks by (inode, logical block).
#[derive(Clone, Debug, Default)]
pub(crate) struct PageCache {
    pub(crate) map: BTreeMap<(Ino, Lblk), Page>,
    /// The next [`Page::id`].
    next_id: u64,
}

impl PageCache {
    /// The page at `(ino, lblk)`, created with `data()` (clean) if there is none.
    pub(crate) fn get_or_create(
        &mut self,
        ino: Ino,
        lblk: Lblk,
        data: impl FnOnce() -> Vec<u8>,
    ) -> &mut Page {
        let id = &mut self.next_id;
        self.map.entry((ino, lblk)).or_insert_with(|| {
            *id += 1;
            Page {
                data: data(),
                dirty: false,
                id: *id,
            }
        })
    }

    /// Dirty blocks of `ino` with their page ids, in logical order.
    pub(crate) fn dirty_pages_of(&self, ino: Ino) -> Vec<(Lblk, u64)> {
        self.map
            .range((ino, Lblk(0))..=(ino, Lblk(u32::MAX)))
            .filter(|(_, p)| p.dirty)
            .map(|((_, l), p)| (*l, p.id))
            .collect()
    }

    /// Drop every cached block of `ino` at or after `from` (truncate_inode_pages_range()).
    pub(crate) fn truncate(&mut self, ino: Ino, from: Lblk, to: Lblk) {
        let keys: Vec<_> = self
            .map
            .range((ino, from)..(ino, to))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.map.remove(&k);
        }
    }

    /// Dirty blocks of `ino`, in logical order.
    pub(crate) fn dirty_of(&self, ino: Ino) -> Vec<Lblk> {
        self.map
            .range((ino, Lblk(0))..=(ino, Lblk(u32::MAX)))
            .filter(|(_, p)| p.dirty)
            .map(|((_, l), _)| *l)
            .collect()
    }
}

impl Fs {
    /// Model of ext4_writepages() for one inode (nodelalloc: every dirty block is already
    /// mapped): write each dirty cached block to its physical block.
    pub fn writeback_inode(&mut self, ino: Ino) -> Result<()> {
        let dirty = self.pages.dirty_of(ino);
        if dirty.is_empty() {
            return Ok(()); // an inode on an ordered list may have been evicted since
        }
        let (size, bs) = (self.iget(ino)?.raw.i_size, u64::from(self.block_size()));
        for lblk in dirty {
            let pblk = self.lookup_block(ino, lblk)?;
            let page = self.pages.map.get_mut(&(ino, lblk)).expect("dirty page");
            page.dirty = false;
            let data = page.for_writeback(u64::from(lblk.0) * bs, size);
            if let (Some(pblk), Some(data)) = (pblk, data) {
                self.dev.write_as(pblk, &data, Zone::Data)?;
            }
        }
        Ok(())
    }

    /// Write back every inode's dirty blocks.
    pub fn writeback_all(&mut self) -> Result<()> {
        let inos: std::collections::BTreeSet<Ino> = self
            .pages
            .map
            .iter()
            .filter(|(_, p)| p.dirty)
            .map(|((i, _), _)| *i)
            .collect();
        for ino in inos {
            self.writeback_inode(ino)?;
        }
        Ok(())
    }

    /// The physical block behind a logical block, or None for a hole or an unwritten extent.
    pub(crate) fn lookup_block(&mut self, ino: Ino, lblk: Lblk) -> Result<Option<Pblk>> {
        let m = self.map_blocks(None, ino, lblk, 1, crate::fs::map::MapFlags::LOOKUP)?;
        Ok(if m.is_mapped() { Some(m.pblk) } else { None })
    }
}
