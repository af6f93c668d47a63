//! Model of fs/ext4/ext4_jbd2.c: the one path every metadata change takes.
//!
//! A caller starts a [`Handle`] with a credit estimate, declares its intent on each metadata
//! block (`get_write_access` for an existing block, `get_create_access` for a new one), edits the
//! cached buffer through [`Fs::buf_mut`], and hands it back with `dirty_metadata`. Without a
//! journal the buffer is written through to the device at `dirty_metadata` (ext4 in
//! `no_journal` mode marks the buffer dirty for writeback; writing through is the strictest
//! equivalent). The JBD2 layer hooks in here so the mapping code never changes.

use crate::dev::Zone;
use crate::error::Result;
use crate::fs::Fs;
use crate::units::Pblk;
use std::collections::BTreeMap;

/// A cached metadata block (`struct buffer_head`).
#[derive(Clone, Debug)]
pub(crate) struct Buffer {
    pub(crate) data: Vec<u8>,
    pub(crate) zone: Zone,
    /// Modified in memory and not yet written home.
    pub(crate) dirty: bool,
}

/// The metadata buffer cache.
#[derive(Clone, Debug, Default)]
pub(crate) struct BufferCache {
    pub(crate) map: BTreeMap<u64, Buffer>,
}

/// A journal handle (`handle_t`): a bounded unit of metadata change inside one transaction.
#[derive(Debug)]
pub struct Handle {
    /// Credits (blocks) the caller reserved.
    pub credits: u32,
    /// Distinct blocks dirtied so far.
    pub used: u32,
    dirtied: std::collections::BTreeSet<u64>,
}

impl Handle {
    /// Whether `n` more credits are available.
    pub fn has_credits(&self, n: u32) -> bool {
        self.used + n <= self.credits
    }
}

impl Fs {
    /// Model of ext4_journal_start(): begin a handle with `credits` blocks reserved.
    pub fn journal_start(&mut self, credits: u32) -> Result<Handle> {
        self.check_writable()?;
        Ok(Handle {
            credits,
            used: 0,
            dirtied: Default::default(),
        })
    }

    /// Model of ext4_journal_stop().
    pub fn journal_stop(&mut self, h: Handle) -> Result<()> {
        drop(h);
        Ok(())
    }

    /// Model of ext4_journal_ensure_credits(): make sure `n` more credits are available,
    /// extending (or, in the journal, restarting) the handle. Returns true if it restarted.
    pub fn journal_ensure_credits(&mut self, h: &mut Handle, n: u32) -> Result<bool> {
        if !h.has_credits(n) {
            h.credits = h.used + n;
        }
        Ok(false)
    }

    /// Model of sb_bread(): read a metadata block through the buffer cache.
    pub fn bread(&mut self, blk: Pblk, zone: Zone) -> Result<&[u8]> {
        self.cache_block(blk, zone)?;
        Ok(&self.bufs.map[&blk.0].data)
    }

    fn cache_block(&mut self, blk: Pblk, zone: Zone) -> Result<()> {
        if !self.bufs.map.contains_key(&blk.0) {
            if blk.0 >= self.sb.s_blocks_count {
                return Err(crate::error::CorruptKind::BlockOutOfRange(blk).into());
            }
            let data = self.dev.read_block_as(blk, zone)?.to_vec();
            self.bufs.map.insert(
                blk.0,
                Buffer {
                    data,
                    zone,
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    /// Model of ext4_journal_get_write_access(): declare intent to modify an existing block.
    pub fn get_write_access(&mut self, h: &mut Handle, blk: Pblk, zone: Zone) -> Result<()> {
        self.check_writable()?;
        self.cache_block(blk, zone)?;
        self.note_dirtied(h, blk);
        Ok(())
    }

    /// Model of ext4_journal_get_create_access(): a newly allocated metadata block, zeroed
    /// without reading it.
    pub fn get_create_access(&mut self, h: &mut Handle, blk: Pblk, zone: Zone) -> Result<()> {
        self.check_writable()?;
        let data = vec![0u8; self.block_size() as usize];
        self.bufs.map.insert(
            blk.0,
            Buffer {
                data,
                zone,
                dirty: false,
            },
        );
        self.note_dirtied(h, blk);
        Ok(())
    }

    fn note_dirtied(&mut self, h: &mut Handle, blk: Pblk) {
        if h.dirtied.insert(blk.0) {
            h.used += 1;
        }
    }

    /// The cached contents of a block the caller holds write access to.
    ///
    /// # Panics
    /// If the block is not cached: a caller that skipped `get_write_access` is a bug in our code.
    pub fn buf_mut(&mut self, blk: Pblk) -> &mut [u8] {
        let b = self
            .bufs
            .map
            .get_mut(&blk.0)
            .expect("buf_mut without get_write_access");
        &mut b.data
    }

    /// Model of ext4_handle_dirty_metadata(): the buffer was modified under this handle.
    pub fn dirty_metadata(&mut self, h: &mut Handle, blk: Pblk) -> Result<()> {
        assert!(
            h.dirtied.contains(&blk.0),
            "dirty_metadata without write access"
        );
        let b = self
            .bufs
            .map
            .get_mut(&blk.0)
            .expect("dirty buffer not cached");
        b.dirty = true;
        // No journal: write through.
        let (data, zone) = (b.data.clone(), b.zone);
        self.dev.write_as(blk, &data, zone)?;
        self.bufs.map.get_mut(&blk.0).expect("cached").dirty = false;
        Ok(())
    }

    /// Model of ext4_forget(): the metadata block is being freed; drop it from the cache
    /// (the journal will also revoke it).
    pub fn forget(&mut self, _h: &mut Handle, blk: Pblk) -> Result<()> {
        self.bufs.map.remove(&blk.0);
        Ok(())
    }

    /// Write every dirty metadata buffer home.
    pub(crate) fn flush_metadata(&mut self) -> Result<()> {
        let dirty: Vec<u64> = self
            .bufs
            .map
            .iter()
            .filter(|(_, b)| b.dirty)
            .map(|(k, _)| *k)
            .collect();
        for blk in dirty {
            let b = &self.bufs.map[&blk];
            let (data, zone) = (b.data.clone(), b.zone);
            self.dev.write_as(Pblk(blk), &data, zone)?;
            self.bufs.map.get_mut(&blk).expect("cached").dirty = false;
        }
        Ok(())
    }
}
