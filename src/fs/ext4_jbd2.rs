//! Model of fs/ext4/ext4_jbd2.c: the one path every metadata change takes.
//!
//! A caller starts a [`Handle`] with a credit estimate, declares its intent on each metadata
//! block (`get_write_access` for an existing block, `get_create_access` for a new one), edits the
//! cached buffer through [`Fs::buf_mut`], and hands it back with `dirty_metadata`. Without a
//! journal the buffer is written through to the device at `dirty_metadata` (ext4 in
//! `no_journal` mode marks the buffer dirty for writeback; writing through is the strictest
//! equivalent). The JBD2 layer hooks in here so the mapping code never changes.

use crate::dev::Zone;
use crate::error::{Error, Result};
use crate::fs::Fs;
use crate::profile::Bug;
use crate::units::{Ino, Pblk};
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// Credits charged so far (blocks new to the transaction; see `note_dirtied`).
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
    /// Model of ext4_journal_start() → jbd2__journal_start(): begin a handle with `credits`
    /// blocks reserved. When the running transaction cannot take them it is committed first
    /// (start_this_handle() waits for that commit), and when the log is short of space the
    /// journal is checkpointed (__jbd2_log_wait_for_space()).
    pub fn journal_start(&mut self, credits: u32) -> Result<Handle> {
        self.check_writable()?;
        if let Some(j) = self.journal.as_ref() {
            j.check_alive()?;
            let idle = j.running.as_ref().is_none_or(|t| t.updates == 0);
            if !j.fits(credits) && idle {
                self.journal_commit()?;
            }
            let j = self.journal.as_ref().expect("journal");
            if j.space_left() < j.max_txn_buffers + credits && j.running.is_none() {
                self.checkpoint_journal(true)?;
            }
            self.journal
                .as_mut()
                .expect("journal")
                .start_handle(credits);
        }
        Ok(Handle {
            credits,
            used: 0,
            dirtied: Default::default(),
        })
    }

    /// Model of ext4_journal_stop() → jbd2_journal_stop().
    pub fn journal_stop(&mut self, h: Handle) -> Result<()> {
        if let Some(j) = self.journal.as_mut() {
            j.check_alive()?;
            j.stop_handle(h.credits.saturating_sub(h.used));
        }
        Ok(())
    }

    /// Model of ext4_journal_ensure_credits(): make sure `n` more credits are available,
    /// extending the handle (jbd2_journal_extend()) or, when the transaction is full,
    /// restarting it in a new transaction (jbd2__journal_restart(): the old transaction is
    /// committed). Returns true if it restarted.
    pub fn journal_ensure_credits(&mut self, h: &mut Handle, n: u32) -> Result<bool> {
        if h.has_credits(n) {
            return Ok(false);
        }
        let Some(j) = self.journal.as_mut() else {
            h.credits = h.used + n;
            return Ok(false);
        };
        j.check_alive()?;
        if j.extend(n) {
            h.credits += n;
            return Ok(false);
        }
        j.stop_handle(h.credits.saturating_sub(h.used));
        if j.running.as_ref().is_none_or(|t| t.updates == 0) {
            self.journal_commit()?;
        }
        self.journal.as_mut().expect("journal").start_handle(n);
        *h = Handle {
            credits: n,
            used: 0,
            dirtied: Default::default(),
        };
        Ok(true)
    }

    /// Model of jbd2_journal_flush() (fs/jbd2/journal.c) as ext4_ioctl_checkpoint() calls it,
    /// the caller holding the updates lock: commit the running transaction, then write every
    /// committed block home and move the tail past them (jbd2_log_do_checkpoint(),
    /// jbd2_cleanup_journal_tail()). Errors: `Invalid` (ENODEV) without a journal.
    ///
    /// Simplification: the kernel then also marks the journal empty (`s_start = 0`) and, at
    /// the next commit, writes the tail again (JBD2_FLUSHED); here the tail stays at the head,
    /// which recovery reads the same way (nothing to replay before the next commit).
    pub fn journal_checkpoint(&mut self) -> Result<()> {
        self.check_writable()?;
        if self.journal.is_none() {
            return Err(Error::Invalid("no journal (ENODEV)".into()));
        }
        self.journal_commit()?;
        self.checkpoint_journal(true)
    }

    /// Write every committed block home and move the tail (`Journal::checkpoint_all`), the
    /// tail's flush as S18 says. `idle`: no transaction is running, so the blocks go home as
    /// the buffer cache holds them (`Journal::refresh_checkpoint`), as the kernel writes its
    /// live buffers. An error aborts the journal.
    fn checkpoint_journal(&mut self, idle: bool) -> Result<()> {
        let j = self.journal.as_mut().expect("journal");
        j.tail_flush = !self.bugs.has(Bug::S18);
        j.tail_flush_error_ignored = self.bugs.has(Bug::U4);
        if idle {
            let bufs = &self.bufs.map;
            j.refresh_checkpoint(|b| {
                bufs.get(&b)
                    .map(|buf| Arc::<[u8]>::from(buf.data.as_slice()))
            });
        }
        match j.checkpoint_all(&mut self.dev) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.journal_abort(e)),
        }
    }

    /// What ext4_sync_file() (`ino`: the transaction that last dirtied it, `i_sync_tid`) and
    /// ext4_sync_fs() (`None`: the running transaction) do once the data is written: if that
    /// transaction still runs, commit it, and its commit block (PREFLUSH + FUA) is the
    /// barrier; if it has committed already, jbd2_trans_will_send_data_barrier() says no
    /// barrier will come, so flush the cache instead (`needs_barrier`), committing nothing.
    /// Without a journal: write the metadata, then flush (ext4_fsync_nojournal()).
    pub fn commit_with_barrier(&mut self, ino: Option<Ino>) -> Result<()> {
        let Some(j) = self.journal.as_ref() else {
            self.journal_commit()?;
            return self.dev.flush();
        };
        // jbd2_log_wait_commit() / ext4_emergency_state(): an aborted journal is -EIO.
        j.check_alive()?;
        let running = j.running.as_ref().filter(|t| !t.is_empty()).map(|t| t.tid);
        let target = match ino {
            Some(ino) => self.inodes.get(&ino).and_then(|i| i.sync_tid),
            None => running,
        };
        match target {
            Some(tid) if Some(tid) == running => self.journal_commit(),
            _ => self.dev.flush(),
        }
    }

    /// Model of jbd2_journal_commit_transaction() as ext4 drives it: write back the ordered
    /// data of the running transaction's inodes (T_FLUSH), freeze a copy of every metadata
    /// block it modified, and write them to the log with the commit block. Without a journal:
    /// write every dirty buffer home.
    pub fn journal_commit(&mut self) -> Result<()> {
        let Some(j) = self.journal.as_ref() else {
            return self.flush_metadata();
        };
        j.check_alive()?;
        let Some(t) = j.running.as_ref() else {
            return Ok(());
        };
        let ordered: Vec<Ino> = t.ordered.iter().copied().collect();
        let buffers = t.buffers.clone();
        for ino in ordered {
            if let Err(e) = self.writeback_inode(ino) {
                return Err(self.journal_abort(e));
            }
        }
        let copies: Vec<_> = buffers
            .iter()
            .map(|b| {
                let buf = &self.bufs.map[b];
                (
                    *b,
                    std::sync::Arc::<[u8]>::from(buf.data.as_slice()),
                    buf.zone,
                )
            })
            .collect();
        let clock = u64::from(self.clock);
        let j = self.journal.as_ref().expect("journal");
        let nrevoked = j.running.as_ref().map_or(0, |t| t.revoked.len());
        if j.commit_size(copies.len(), nrevoked) > j.space_left() {
            self.checkpoint_journal(false)?;
        }
        let j = self.journal.as_mut().expect("journal");
        j.commit_time = clock;
        if let Err(e) = j.commit(&mut self.dev, copies) {
            return Err(self.journal_abort(e));
        }
        for b in buffers {
            if let Some(buf) = self.bufs.map.get_mut(&b) {
                buf.dirty = false;
            }
        }
        Ok(())
    }

    /// Model of ext4_error() with `errors=continue` (the mkfs default): a metadata I/O error
    /// is recorded in the superblock (`EXT4_ERROR_FS`, written at once with FUA by
    /// ext4_commit_super()) so that the next boot runs e2fsck; the operation fails with the
    /// error, and the filesystem keeps going with no promise of consistency.
    pub(crate) fn ext4_error(&mut self, e: Error) -> Error {
        self.error_count += 1;
        if !self.opts.read_only && self.sb.s_state & crate::format::superblock::EXT4_ERROR_FS == 0 {
            self.sb.s_state |= crate::format::superblock::EXT4_ERROR_FS;
            let _ = self.commit_super();
        }
        e
    }

    /// Model of ext4_abort()/ext4_handle_error() after a journal abort: the filesystem turns
    /// read-only and records the error in the superblock (written directly, best effort).
    pub(crate) fn journal_abort(&mut self, e: Error) -> Error {
        if let Some(j) = self.journal.as_mut() {
            j.abort(&mut self.dev, e.errno());
        }
        self.aborted = true;
        self.sb.s_state |= crate::format::superblock::EXT4_ERROR_FS;
        let _ = self.commit_super();
        e
    }

    /// Cache a block whose contents are built in memory rather than read (an uninitialised
    /// group's bitmap: ext4_init_block_bitmap() / the zeroed inode bitmap), unless cached.
    pub(crate) fn cache_built_block(
        &mut self,
        blk: Pblk,
        zone: Zone,
        build: impl FnOnce(&Fs) -> Vec<u8>,
    ) {
        if !self.bufs.map.contains_key(&blk.0) {
            let data = build(self);
            self.bufs.map.insert(
                blk.0,
                Buffer {
                    data,
                    zone,
                    dirty: false,
                },
            );
        }
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
            let data = match self.dev.read_block_as(blk, zone) {
                Ok(d) => d.to_vec(),
                Err(e) if read_failure_is_reported(zone) => return Err(self.ext4_error(e)),
                Err(e) => return Err(e),
            };
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

    /// Model of the credit charge in jbd2_journal_dirty_metadata(): a handle pays one credit
    /// for a buffer the running transaction has not modified yet (`b_modified` clear); a
    /// buffer an earlier handle of the same transaction already dirtied costs nothing again.
    /// Without a journal, one credit per distinct block of the handle.
    fn note_dirtied(&mut self, h: &mut Handle, blk: Pblk) {
        let first_in_handle = h.dirtied.insert(blk.0);
        let charged = match self.journal.as_mut() {
            Some(j) => j.add_buffer(blk.0),
            None => first_in_handle,
        };
        if charged {
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
        if self.journal.is_some() {
            return Ok(());
        }
        // No journal: write through.
        let (data, zone) = (b.data.clone(), b.zone);
        self.dev.write_as(blk, &data, zone)?;
        self.bufs.map.get_mut(&blk.0).expect("cached").dirty = false;
        Ok(())
    }

    /// Model of ext4_forget() → jbd2_journal_revoke(): the metadata block is being freed; drop
    /// it from the cache and revoke it so no logged copy is replayed over its next contents.
    pub fn forget(&mut self, _h: &mut Handle, blk: Pblk) -> Result<()> {
        self.bufs.map.remove(&blk.0);
        if let Some(j) = self.journal.as_mut() {
            j.revoke(blk.0);
        }
        Ok(())
    }

    /// Write every dirty metadata buffer home (no-journal mode only: with a journal, buffers
    /// reach home through commit and checkpoint).
    pub(crate) fn flush_metadata(&mut self) -> Result<()> {
        assert!(
            self.journal.is_none(),
            "flush_metadata bypasses the journal"
        );
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

/// Whether the kernel reports a failed read of a block of `zone` with ext4_error() (so the
/// superblock records errors): the bitmaps ("Cannot read block bitmap", "Cannot read inode
/// bitmap") and the inode table ("unable to read itable block") do; the readers of indirect
/// and extent blocks (ext4_get_branch(), __read_extent_tree_block()) and of directory blocks
/// (a warning) return `-EIO` and record nothing — checked on the real kernel for an indirect
/// block (`tests/integration/kernel_eio.rs`). ext4_free_branches() reports its own.
fn read_failure_is_reported(zone: Zone) -> bool {
    matches!(zone, Zone::Bitmap | Zone::InodeTable | Zone::GroupDesc)
}
