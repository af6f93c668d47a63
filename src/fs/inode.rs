//! In-core inodes: models of ext4_iget(), ext4_mark_inode_dirty() and ext4_do_update_inode()
//! (fs/ext4/inode.c).
//!
//! The in-memory state bits (`EXT4_STATE_*`, among them `EXT4_STATE_EXT_MIGRATE`, the migrate
//! marker) live in [`InodeInfo::state`], apart from the on-disk `i_flags`: in the kernel they sit
//! in bits ≥ 32 of `ei->i_flags`, and `ext4_do_update_inode()` stores only the low 32 bits, so they
//! can never reach the disk.

use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::inode::{self as fi, Inode};
use crate::format::superblock as sbf;
use crate::fs::{Fs, Handle};
use crate::units::{Group, Ino, Pblk};

/// `EXT4_STATE_NEW`: the inode was just allocated; its raw record is zeroed before write-out.
pub const EXT4_STATE_NEW: u64 = 1 << 0;
/// `EXT4_STATE_EXT_MIGRATE`: a migration is walking this inode's block map (in-memory only).
pub const EXT4_STATE_EXT_MIGRATE: u64 = 1 << 4;

/// `EXT4_EXT_MIGRATE` (2008, include/linux/ext4_fs.h): the marker's old on-disk bit, now
/// `EXT4_VERITY_FL`.
pub const EXT4_EXT_MIGRATE_FL: u32 = 0x0010_0000;

/// An in-core inode (`struct ext4_inode_info`).
#[derive(Clone, Debug)]
pub struct InodeInfo {
    /// The inode number.
    pub ino: Ino,
    /// The inode fields (what `ext4_do_update_inode()` writes).
    pub raw: Inode,
    /// In-memory state bits (`EXT4_STATE_*`); never written to disk.
    pub state: u64,
    /// `ei->i_csum_seed`: crc32c(fs seed, ino, generation); migrate borrows it (S7/S8).
    pub csum_seed: u32,
    /// `ei->i_sync_tid`: the transaction that last dirtied the inode
    /// (ext4_update_inode_fsync_trans() in ext4_do_update_inode()); `None` before any.
    pub sync_tid: Option<crate::units::Tid>,
}

impl InodeInfo {
    /// Test an in-memory state bit.
    pub fn test_state(&self, bit: u64) -> bool {
        self.state & bit != 0
    }

    /// Whether the inode maps its blocks with an extent tree.
    pub fn is_extents(&self) -> bool {
        self.raw.i_flags & fi::EXT4_EXTENTS_FL != 0
    }
}

impl Fs {
    /// Where inode `ino` lives: (inode table block, byte offset in it).
    pub fn inode_location(&self, ino: Ino) -> Result<(Pblk, usize)> {
        if ino.0 == 0 || ino.0 > self.sb.s_inodes_count {
            return Err(CorruptKind::InodeNumber(ino).into());
        }
        let ipg = self.sb.s_inodes_per_group;
        let g = (ino.0 - 1) / ipg;
        let index = u64::from((ino.0 - 1) % ipg);
        let isz = u64::from(self.sb.inode_size());
        let bs = u64::from(self.block_size());
        let table = self.gds[g as usize].bg_inode_table;
        Ok((Pblk(table + index * isz / bs), (index * isz % bs) as usize))
    }

    /// The block group an inode belongs to.
    pub fn inode_group(&self, ino: Ino) -> Group {
        Group((ino.0 - 1) / self.sb.s_inodes_per_group)
    }

    /// Model of ext4_iget(): load an inode into the inode cache (once) and check it.
    pub fn iget(&mut self, ino: Ino) -> Result<&mut InodeInfo> {
        if !self.inodes.contains_key(&ino) {
            let info = self.read_inode(ino)?;
            self.inodes.insert(ino, info);
        }
        Ok(self.inodes.get_mut(&ino).expect("just inserted"))
    }

    /// The cached inode.
    ///
    /// # Panics
    /// If the inode was not loaded with [`Fs::iget`] first (a bug in our code).
    pub fn inode(&self, ino: Ino) -> &InodeInfo {
        self.inodes.get(&ino).expect("inode not loaded")
    }

    /// The cached inode, mutably (see [`Fs::inode`]).
    pub fn inode_mut(&mut self, ino: Ino) -> &mut InodeInfo {
        self.inodes.get_mut(&ino).expect("inode not loaded")
    }

    fn read_inode(&mut self, ino: Ino) -> Result<InodeInfo> {
        let (blk, off) = self.inode_location(ino)?;
        let isz = self.sb.inode_size() as usize;
        let seed = self.sb.csum_seed();
        let csum = self.sb.metadata_csum();
        let buf = self.bread(blk, Zone::InodeTable)?;
        let rec = &buf[off..off + isz];
        if csum && !fi::inode_csum_verify(seed, ino, rec, isz) {
            return Err(CorruptKind::InodeChecksum(ino).into());
        }
        let raw = Inode::parse(rec, isz, ino)?;
        if raw.i_flags & fi::EXT4_EXTENTS_FL != 0 && !self.has_extents() {
            return Err(CorruptKind::InodeField {
                ino,
                field: "i_flags (EXTENTS_FL)",
            }
            .into());
        }
        if raw.i_flags & fi::EXT4_INLINE_DATA_FL != 0 {
            return Err(Error::Unsupported("inline data inode".into()));
        }
        let csum_seed = fi::inode_csum_seed(seed, ino, raw.i_generation);
        Ok(InodeInfo {
            ino,
            raw,
            state: 0,
            csum_seed,
            sync_tid: None,
        })
    }

    /// Model of ext4_mark_inode_dirty() → ext4_do_update_inode(): write the in-core inode into
    /// its inode-table buffer under the handle. Only the low 32 bits of the flags exist in
    /// `raw.i_flags`; the state bits stay in memory.
    pub fn mark_inode_dirty(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        let (blk, off) = self.inode_location(ino)?;
        let isz = self.sb.inode_size() as usize;
        let csum = self.sb.metadata_csum();
        self.get_write_access(h, blk, Zone::InodeTable)?;
        let info = self
            .inodes
            .get_mut(&ino)
            .expect("mark_inode_dirty on an unloaded inode");
        // ext4_inode_csum() seeds with ei->i_csum_seed, which migrate lends to its temporary
        // inode (S8 is the seed not given back before the final write).
        let seed = info.csum_seed;
        let new = info.test_state(EXT4_STATE_NEW);
        info.state &= !EXT4_STATE_NEW;
        let mut raw = info.raw.clone();
        // S3: the migrate marker kept in the on-disk flag word (the 2008 EXT4_EXT_MIGRATE bit,
        // EXT4_VERITY_FL today) instead of being masked out by ext4_do_update_inode().
        if self.bugs.has(crate::profile::Bug::S3) && info.test_state(EXT4_STATE_EXT_MIGRATE) {
            raw.i_flags |= EXT4_EXT_MIGRATE_FL;
        }
        let buf = self.buf_mut(blk);
        let rec = &mut buf[off..off + isz];
        if new {
            rec.fill(0);
        }
        raw.write(rec);
        if csum {
            fi::inode_csum_set_seeded(seed, rec, isz);
        }
        self.dirty_metadata(h, blk)?;
        let tid = self
            .journal
            .as_ref()
            .and_then(|j| j.running.as_ref().map(|t| t.tid));
        if let Some(info) = self.inodes.get_mut(&ino) {
            info.sync_tid = tid;
        }
        Ok(())
    }

    /// Set `i_blocks` from a count of 512-byte sectors (model of ext4_inode_blocks_set()).
    pub fn set_inode_blocks(&mut self, ino: Ino, sectors: u64) -> Result<()> {
        let huge = self.sb.has_ro_compat(sbf::EXT4_FEATURE_RO_COMPAT_HUGE_FILE);
        let bs = self.block_size();
        self.inode_mut(ino).raw.set_blocks_512(sectors, huge, bs)
    }

    /// `i_blocks` in 512-byte sectors (model of ext4_inode_blocks()).
    pub fn inode_blocks(&self, ino: Ino) -> u64 {
        let huge = self.sb.has_ro_compat(sbf::EXT4_FEATURE_RO_COMPAT_HUGE_FILE);
        self.inode(ino).raw.blocks_512(huge, self.block_size())
    }

    /// Add (or with a negative count, remove) `nblocks` filesystem blocks to `i_blocks`
    /// (model of dquot_alloc_block()/dquot_free_block() bookkeeping).
    ///
    /// Freeing more than the inode holds happens only when the inode does not own what it
    /// frees (migrate's temporary inode truncated by orphan cleanup, seeded bug S6): the
    /// kernel's `__inode_sub_bytes()` wraps silently there; the model stops at 0.
    pub fn inode_add_blocks(&mut self, ino: Ino, nblocks: i64) -> Result<()> {
        let per = i64::from(self.block_size() / 512);
        let cur = self.inode_blocks(ino) as i64;
        let new = (cur + nblocks * per).max(0);
        self.set_inode_blocks(ino, new as u64)
    }

    /// Drop an inode from the inode cache (after eviction).
    pub(crate) fn forget_inode(&mut self, ino: Ino) {
        self.inodes.remove(&ino);
    }

    /// The in-core data mapping of a cached inode as `(lblk, pblk, len)` runs (unwritten
    /// extents included), read without side effects: `i_block` from the in-core inode,
    /// mapping blocks from the buffer cache or else peeked from the device (no read is logged
    /// or faulted, no lock or marker is touched). `None` if the inode is not cached or its
    /// map does not walk. The harness's view of the live mapping (the `migrate-atomicity`
    /// oracle); not a kernel function.
    pub fn peek_map(&self, ino: Ino) -> Option<Vec<(u32, u64, u32)>> {
        let raw = &self.inodes.get(&ino)?.raw;
        let bufs = &self.bufs;
        let dev = &self.dev;
        let mut read = |b: Pblk| -> Result<crate::dev::Block> {
            Ok(match bufs.map.get(&b.0) {
                Some(buf) => buf.data.as_slice().into(),
                None => dev.peek_block(b),
            })
        };
        let map = crate::format::blockmap::walk_inode(&self.sb, ino, raw, None, &mut read).ok()?;
        Some(map.runs.iter().map(|r| (r.lblk, r.pblk, r.len)).collect())
    }
}
