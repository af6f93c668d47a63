//! The orphan list: models of ext4_orphan_add(), ext4_orphan_del() and ext4_orphan_cleanup()
//! (fs/ext4/orphan.c, the classic on-disk list, not the orphan_file feature).
//!
//! An inode whose blocks are being released across several transactions (a shrinking
//! truncate, the last unlink) is put on a singly linked list first: `s_last_orphan` in the
//! superblock is the head and each inode's `i_dtime` holds the next inode number
//! (`NEXT_ORPHAN()`). Both changes are journaled with the operation that starts the release, so
//! after a crash the mount finishes the job: `ext4_orphan_cleanup()` truncates every listed
//! inode that still has links and deletes the others.

use crate::dev::Zone;
use crate::error::Result;
use crate::format::superblock::{self as sbf};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

impl Fs {
    /// Where the primary superblock lives: (block, byte offset in it).
    pub fn sb_location(&self) -> (Pblk, usize) {
        let bs = u64::from(self.block_size());
        let off = sbf::SUPERBLOCK_OFFSET;
        (Pblk(off / bs), (off % bs) as usize)
    }

    /// Journal the in-memory superblock (model of ext4_handle_dirty_super()).
    pub fn dirty_super(&mut self, h: &mut Handle) -> Result<()> {
        let (blk, off) = self.sb_location();
        self.get_write_access(h, blk, Zone::Superblock)?;
        let bytes = self.sb.to_bytes();
        self.buf_mut(blk)[off..off + bytes.len()].copy_from_slice(&bytes);
        self.dirty_metadata(h, blk)
    }

    /// Model of ext4_orphan_add(): put `ino` at the head of the orphan list.
    pub fn orphan_add(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        if self.orphans.contains(&ino) {
            return Ok(());
        }
        let next = self.sb.s_last_orphan;
        self.sb.s_last_orphan = ino.0;
        self.dirty_super(h)?;
        self.inode_mut(ino).raw.i_dtime = next;
        self.mark_inode_dirty(h, ino)?;
        self.orphans.insert(0, ino);
        Ok(())
    }

    /// Model of ext4_orphan_del(): unlink `ino` from the orphan list.
    pub fn orphan_del(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        let Some(pos) = self.orphans.iter().position(|&i| i == ino) else {
            return Ok(());
        };
        self.orphans.remove(pos);
        let next = self.inode(ino).raw.i_dtime;
        if pos == 0 {
            self.sb.s_last_orphan = next;
            self.dirty_super(h)?;
        } else {
            let prev = self.orphans[pos - 1];
            self.inode_mut(prev).raw.i_dtime = next;
            self.mark_inode_dirty(h, prev)?;
        }
        self.inode_mut(ino).raw.i_dtime = 0;
        self.mark_inode_dirty(h, ino)
    }

    /// Model of ext4_orphan_cleanup() at mount: walk the on-disk list from `s_last_orphan`;
    /// truncate each inode that still has links to its size, delete the others. A list that
    /// loops or points at a bad inode is cut (the kernel stops at the first bad inode too).
    pub fn orphan_cleanup(&mut self) -> Result<()> {
        if self.sb.s_last_orphan == 0 {
            return Ok(());
        }
        if self.sb.s_state & sbf::EXT4_ERROR_FS != 0 {
            // "Errors on filesystem, clearing orphan list."
            self.sb.s_last_orphan = 0;
            return self.commit_super();
        }
        let mut chain = Vec::new();
        let mut cur = self.sb.s_last_orphan;
        while cur != 0 && !chain.contains(&Ino(cur)) && chain.len() < 1 << 16 {
            // ext4_orphan_get() failing (bad number, unreadable or bad-checksum inode): the
            // kernel clears the list there and stops ("bad orphan inode").
            if cur < self.sb.first_ino() || cur > self.sb.s_inodes_count {
                break;
            }
            match self.iget(Ino(cur)) {
                Ok(info) => {
                    let next = info.raw.i_dtime;
                    chain.push(Ino(cur));
                    cur = next;
                }
                Err(crate::Error::Corrupt(_)) => break,
                Err(e) => return Err(e),
            }
        }
        self.orphans = chain.clone();
        for ino in chain {
            if self.inode(ino).raw.i_links_count > 0 {
                self.orphan_truncate(ino)?;
            } else {
                self.evict_inode(ino)?;
            }
        }
        self.orphans.clear();
        if self.sb.s_last_orphan != 0 {
            let mut h = self.journal_start(4)?;
            self.sb.s_last_orphan = 0;
            let r = self.dirty_super(&mut h);
            self.journal_stop(h)?;
            r?;
        }
        Ok(())
    }

    /// ext4_truncate() of an orphan that still has links: free every block past `i_size`.
    fn orphan_truncate(&mut self, ino: Ino) -> Result<()> {
        let bs = u64::from(self.block_size());
        let first_gone = Lblk(
            self.inode(ino)
                .raw
                .i_size
                .div_ceil(bs)
                .min(u64::from(u32::MAX)) as u32,
        );
        let mut h = self.journal_start(crate::fs::file::WRITE_CREDITS * 4)?;
        let r = (|| {
            self.truncate_blocks(&mut h, ino, first_gone)?;
            self.orphan_del(&mut h, ino)?;
            self.mark_inode_dirty(&mut h, ino)
        })();
        self.journal_stop(h)?;
        r
    }
}
