//! Inode allocation: models of __ext4_new_inode() and ext4_free_inode() (fs/ext4/ialloc.c).
//!
//! Group choice (documented simplification of find_group_orlov()/find_group_other()): the
//! parent's group when it has a free inode, else the next groups in order.

use crate::dev::Zone;
use crate::error::{CorruptKind, Error, Result};
use crate::format::bitmap;
use crate::format::group_desc::EXT4_BG_INODE_UNINIT;
use crate::format::inode::{self as fi, Inode};
use crate::fs::inode::{InodeInfo, EXT4_STATE_NEW};
use crate::fs::{Fs, Handle};
use crate::units::{Group, Ino, Pblk};

impl Fs {
    /// Model of ext4_read_inode_bitmap(): the group's inode bitmap (zeroed with padding set if
    /// the group is still `INODE_UNINIT`).
    fn read_inode_bitmap(&mut self, g: Group) -> Result<Pblk> {
        let blk = Pblk(self.gds[g.0 as usize].bg_inode_bitmap);
        if self.inode_uninit(g) {
            self.cache_built_block(blk, Zone::Bitmap, |fs| {
                let bs = fs.block_size() as usize;
                let mut data = vec![0u8; bs];
                bitmap::mark_bitmap_end(fs.sb.s_inodes_per_group, (bs * 8) as u32, &mut data);
                data
            });
        } else {
            self.bread(blk, Zone::Bitmap)?;
        }
        Ok(blk)
    }

    /// Model of __ext4_new_inode(): allocate an inode near `dir`, initialise it in core
    /// (mode, generation, extent root on an extent filesystem) and write it out.
    pub fn new_inode(&mut self, h: &mut Handle, dir: Ino, mode: u16) -> Result<Ino> {
        self.new_inode_goal(h, dir, mode, None)
    }

    /// [`Fs::new_inode`] with the kernel's `goal` argument: when given, the search starts in
    /// the goal inode's group (as `ext4_ext_migrate()` asks for its temporary inode) instead
    /// of the directory's; flags are still inherited from `dir`.
    pub fn new_inode_goal(
        &mut self,
        h: &mut Handle,
        dir: Ino,
        mode: u16,
        goal: Option<Ino>,
    ) -> Result<Ino> {
        if self.sb.s_free_inodes_count == 0 {
            return Err(Error::NoSpace);
        }
        let ngroups = self.sb.groups_count();
        let g0 = self.inode_group(goal.unwrap_or(dir)).0;
        for i in 0..ngroups {
            let g = Group((g0 + i) % ngroups);
            if self.gds[g.0 as usize].bg_free_inodes_count == 0 {
                continue;
            }
            if let Some(ino) = self.take_inode_in_group(h, g, mode)? {
                self.init_new_inode(h, ino, dir, mode)?;
                return Ok(ino);
            }
        }
        Err(Error::NoSpace)
    }

    fn take_inode_in_group(&mut self, h: &mut Handle, g: Group, mode: u16) -> Result<Option<Ino>> {
        let blk = self.read_inode_bitmap(g)?;
        let ipg = self.sb.s_inodes_per_group;
        let first_ino = self.sb.first_ino();
        let base = g.0 * ipg;
        let from = if g.0 == 0 { first_ino - 1 } else { 0 };
        let Some(bit) = bitmap::find_next_zero_bit(&self.bufs.map[&blk.0].data, from, ipg) else {
            return Ok(None);
        };
        self.get_write_access(h, blk, Zone::Bitmap)?;
        bitmap::set_bit(self.buf_mut(blk), bit);
        let bits = self.bufs.map[&blk.0].data.clone();
        let is_dir = mode & fi::S_IFMT == fi::S_IFDIR;
        let csum_on = self.sb.metadata_csum() || self.sb.gdt_csum();
        let gd = &mut self.gds[g.0 as usize];
        gd.bg_flags &= !EXT4_BG_INODE_UNINIT;
        gd.bg_free_inodes_count -= 1;
        if is_dir {
            gd.bg_used_dirs_count += 1;
        }
        if csum_on {
            let used = ipg - gd.bg_itable_unused;
            if bit + 1 > used {
                gd.bg_itable_unused = ipg - (bit + 1);
            }
        }
        bitmap::inode_bitmap_csum_set(&self.sb, gd, &bits);
        self.sb.s_free_inodes_count -= 1;
        self.dirty_metadata(h, blk)?;
        self.write_group_desc(h, g)?;
        Ok(Some(Ino(base + bit + 1)))
    }

    fn init_new_inode(&mut self, h: &mut Handle, ino: Ino, dir: Ino, mode: u16) -> Result<()> {
        let isz = self.sb.inode_size() as usize;
        let now = self.now();
        let mut raw = Inode::new(isz);
        raw.i_mode = mode;
        raw.i_links_count = 1;
        raw.i_atime = now;
        raw.i_ctime = now;
        raw.i_mtime = now;
        raw.i_crtime = now;
        raw.i_generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        if isz > fi::EXT4_GOOD_OLD_INODE_SIZE {
            raw.i_extra_isize = self.sb.s_want_extra_isize.max(32);
        }
        let parent_flags = self.inodes.get(&dir).map_or(0, |d| d.raw.i_flags);
        raw.i_flags = ext4_mask_flags(mode, parent_flags & EXT4_FL_INHERITED);
        let csum_seed = fi::inode_csum_seed(self.sb.csum_seed(), ino, raw.i_generation);
        let info = InodeInfo {
            ino,
            raw,
            state: EXT4_STATE_NEW,
            csum_seed,
            sync_tid: None,
        };
        self.inodes.insert(ino, info);
        let kind = mode & fi::S_IFMT;
        if self.has_extents() && (kind == fi::S_IFDIR || kind == fi::S_IFREG || kind == fi::S_IFLNK)
        {
            self.inode_mut(ino).raw.i_flags |= fi::EXT4_EXTENTS_FL;
            self.ext_tree_init(ino);
        }
        self.mark_inode_dirty(h, ino)
    }

    /// Model of ext4_ext_tree_init(): an empty in-inode extent root (depth 0, eh_max 4).
    pub fn ext_tree_init(&mut self, ino: Ino) {
        use crate::format::extent::{ExtentHeader, ExtentNode, NodeEntries, EXT4_EXT_MAGIC};
        let node = ExtentNode {
            header: ExtentHeader {
                eh_magic: EXT4_EXT_MAGIC,
                eh_entries: 0,
                eh_max: 4,
                eh_depth: 0,
                eh_generation: 0,
            },
            entries: NodeEntries::Leaf(Vec::new()),
        };
        let mut root = [0u8; 60];
        node.write(&mut root);
        self.inode_mut(ino).raw.set_i_block_bytes(&root);
    }

    /// Model of ext4_free_inode(): clear the inode's bit and fix the counts. The caller has
    /// already released the blocks and written the inode with `i_dtime` set.
    pub fn free_inode(&mut self, h: &mut Handle, ino: Ino) -> Result<()> {
        let is_dir = self.inode(ino).raw.i_mode & fi::S_IFMT == fi::S_IFDIR;
        let g = self.inode_group(ino);
        let bit = (ino.0 - 1) % self.sb.s_inodes_per_group;
        let blk = self.read_inode_bitmap(g)?;
        if !bitmap::test_bit(&self.bufs.map[&blk.0].data, bit) {
            // ext4_free_inode(): "bit already cleared for inode" is ext4_error(), not a BUG.
            return Err(self.ext4_error(CorruptKind::FreeingFreeInode(ino).into()));
        }
        self.get_write_access(h, blk, Zone::Bitmap)?;
        bitmap::clear_bit(self.buf_mut(blk), bit);
        let bits = self.bufs.map[&blk.0].data.clone();
        let gd = &mut self.gds[g.0 as usize];
        gd.bg_free_inodes_count += 1;
        if is_dir {
            gd.bg_used_dirs_count -= 1;
        }
        bitmap::inode_bitmap_csum_set(&self.sb, gd, &bits);
        self.sb.s_free_inodes_count += 1;
        self.dirty_metadata(h, blk)?;
        self.write_group_desc(h, g)?;
        self.forget_inode(ino);
        Ok(())
    }
}

/// `EXT4_FL_INHERITED` (ext4.h): the flags a new inode inherits from its directory (SECRM,
/// UNRM, COMPR, SYNC, NODUMP, NOATIME, NOCOMPR, JOURNAL_DATA, NOTAIL, DIRSYNC, DAX,
/// PROJINHERIT, CASEFOLD).
pub const EXT4_FL_INHERITED: u32 = 0x1
    | 0x2
    | 0x4
    | 0x8
    | 0x40
    | 0x80
    | 0x400
    | 0x4000
    | 0x8000
    | 0x1_0000
    | 0x200_0000
    | 0x2000_0000
    | 0x4000_0000;

/// Model of ext4_mask_flags(): directories keep every inherited flag, regular files drop the
/// directory-only ones, other files keep only NODUMP/NOATIME.
fn ext4_mask_flags(mode: u16, flags: u32) -> u32 {
    const REG_FLMASK: u32 = !(fi::EXT4_DIRSYNC_FL
        | fi::EXT4_TOPDIR_FL
        | fi::EXT4_CASEFOLD_FL
        | fi::EXT4_PROJINHERIT_FL);
    const OTHER_FLMASK: u32 = fi::EXT4_NODUMP_FL | fi::EXT4_NOATIME_FL;
    match mode & fi::S_IFMT {
        fi::S_IFDIR => flags,
        fi::S_IFREG => flags & REG_FLMASK,
        _ => flags & OTHER_FLMASK,
    }
}
