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

    /// Journal the in-memory superblock (model of ext4_handle_dirty_super()). As in the kernel,
    /// the caller has taken write access to the superblock's buffer before changing it.
    pub fn dirty_super(&mut self, h: &mut Handle) -> Result<()> {
        let (blk, off) = self.sb_location();
        let bytes = self.sb.to_bytes();
        self.buf_mut(blk)[off..off + bytes.len()].copy_from_slice(&bytes);
        self.dirty_metadata(h, blk)
    }

    /// Model of ext4_orphan_add(): put `ino` at the head of the orphan list. Write access to
    /// the superblock and the inode's table block comes first, as in the kernel: if either is
    /// refused, neither the in-memory superblock nor the inode has changed (a later
    /// ext4_error() commit of the superblock must not carry a half-made list head).
    pub fn orphan_add(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        if self.orphans.contains(&ino) {
            return Ok(());
        }
        let (sb_blk, _) = self.sb_location();
        self.get_write_access(h, sb_blk, Zone::Superblock)?;
        let (itable_blk, _) = self.inode_location(ino)?; // ext4_reserve_inode_write()
        self.get_write_access(h, itable_blk, Zone::InodeTable)?;
        let next = self.sb.s_last_orphan;
        self.sb.s_last_orphan = ino.0;
        self.dirty_super(h)?;
        self.inode_mut(ino).raw.i_dtime = next;
        self.mark_inode_dirty(h, ino)?;
        self.orphans.insert(0, ino);
        Ok(())
    }

    /// Model of ext4_orphan_del(): unlink `ino` from the orphan list. The in-memory list
    /// loses it first; the on-disk link that names it (the superblock's head or the previous
    /// inode's `i_dtime`) changes only once write access to its block is granted.
    pub fn orphan_del(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        let Some(pos) = self.orphans.iter().position(|&i| i == ino) else {
            return Ok(());
        };
        let (itable_blk, _) = self.inode_location(ino)?; // ext4_reserve_inode_write()
        let reserved = self.get_write_access(h, itable_blk, Zone::InodeTable);
        self.orphans.remove(pos);
        reserved?;
        let next = self.inode(ino).raw.i_dtime;
        if pos == 0 {
            let (sb_blk, _) = self.sb_location();
            self.get_write_access(h, sb_blk, Zone::Superblock)?;
            self.sb.s_last_orphan = next;
            self.dirty_super(h)?;
        } else {
            let prev = self.orphans[pos - 1];
            let (prev_blk, _) = self.inode_location(prev)?;
            self.get_write_access(h, prev_blk, Zone::InodeTable)?;
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
            let (sb_blk, _) = self.sb_location();
            let r = self
                .get_write_access(&mut h, sb_blk, Zone::Superblock)
                .and_then(|()| {
                    self.sb.s_last_orphan = 0;
                    self.dirty_super(&mut h)
                });
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

#[cfg(test)]
mod tests {
    use crate::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen, Zone};
    use crate::fs::mkfs::small_fs as fs;
    use crate::fs::Fs;
    use crate::units::Pblk;

    /// Reads of `blk` fail from now on.
    fn fail_reads_of(fs: &mut Fs, blk: Pblk) {
        fs.dev.set_fault_plan(FaultPlan {
            rules: vec![FaultRule {
                sticky: true,
                ..FaultRule::new(FaultOp::Read, FaultWhen::Block(blk))
            }],
            crash_at_write: None,
        });
    }

    /// ext4_orphan_add() takes write access to the superblock and to the inode's table block
    /// before it changes either: when the inode-table read fails, the in-memory superblock
    /// (which ext4_error() then commits) still has no list head.
    #[test]
    fn orphan_add_changes_nothing_when_write_access_fails() {
        let mut fs = fs();
        let ino = fs.create("/f", 0o644).unwrap();
        fs.sync().unwrap();
        let (itable, _) = fs.inode_location(ino).unwrap();
        fs.bufs.map.remove(&itable.0); // not cached: write access must read it
        fail_reads_of(&mut fs, itable);
        let mut h = fs.journal_start(8).unwrap();
        assert!(fs.orphan_add(&mut h, ino).is_err());
        assert_eq!(fs.sb.s_last_orphan, 0);
        assert!(fs.orphans.is_empty());
        assert_eq!(fs.inode(ino).raw.i_dtime, 0);
    }

    /// The superblock and descriptor blocks stay cached from mount (`s_sbh`, `s_group_desc`):
    /// a later failing read of them never reaches an orphan update or a descriptor change.
    #[test]
    fn superblock_and_descriptors_are_never_read_after_mount() {
        let mut fs = fs();
        let (sb, _) = fs.sb_location();
        let gdt = Pblk(fs.sb.gdt_block(0));
        for blk in [sb, gdt] {
            assert_eq!(
                fs.bufs.map.get(&blk.0).map(|b| b.zone),
                Some(if blk == sb {
                    Zone::Superblock
                } else {
                    Zone::GroupDesc
                })
            );
        }
        let ino = fs.create("/f", 0o644).unwrap();
        fs.write_file(ino, 0, &[7; 3000]).unwrap();
        fs.sync().unwrap();
        fail_reads_of(&mut fs, sb);
        let mut h = fs.journal_start(8).unwrap();
        fs.orphan_add(&mut h, ino).unwrap();
        assert_eq!(fs.sb.s_last_orphan, ino.0);
        fs.orphan_del(&mut h, ino).unwrap();
        assert_eq!(fs.sb.s_last_orphan, 0);
        fs.journal_stop(h).unwrap();
        fail_reads_of(&mut fs, gdt);
        fs.truncate_file(ino, 0).unwrap(); // frees blocks: descriptor and counts change
        fs.sync().unwrap();
    }
}
