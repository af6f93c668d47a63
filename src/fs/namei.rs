//! Directories: models of the linear-directory half of fs/ext4/namei.c (ext4_lookup(),
//! ext4_add_entry(), ext4_append(), ext4_mkdir(), ext4_unlink(), ext4_rmdir()) and readdir.
//!
//! Directory blocks are metadata: they go through the buffer cache and the handle API, with
//! the `metadata_csum` tail checksummed by the directory's inode seed. Hashed (htree)
//! directories are read linearly, as `ext4_readdir()` does without the index; modifying one is
//! refused with `Unsupported`.

use crate::dev::Zone;
use crate::error::{Error, Result};
use crate::format::dir::{self, DirEntry};
use crate::format::inode as fi;
use crate::fs::map::MapFlags;
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

/// The root directory's inode number.
pub const ROOT_INO: Ino = Ino(2);

/// Credits for a directory change (model of EXT4_DATA_TRANS_BLOCKS + index blocks).
const DIR_CREDITS: u32 = 16;

impl Fs {
    fn dir_blocks(&mut self, dir: Ino) -> Result<Vec<(Lblk, Pblk)>> {
        let bs = u64::from(self.block_size());
        let n = self.inode(dir).raw.i_size.div_ceil(bs);
        let mut out = Vec::new();
        let mut l = 0u64;
        while l < n {
            let m = self.map_blocks(
                None,
                dir,
                Lblk(l as u32),
                (n - l).min(1 << 20) as u32,
                MapFlags::LOOKUP,
            )?;
            if m.is_mapped() {
                (0..m.len).for_each(|i| out.push((Lblk(l as u32 + i), m.pblk + u64::from(i))));
            }
            l += u64::from(m.len);
        }
        Ok(out)
    }

    fn dir_block(&mut self, dir: Ino, pblk: Pblk) -> Result<Vec<DirEntry>> {
        self.with_dir_block(dir, pblk, |buf, tail| dir::parse_block(buf, dir, tail))
    }

    /// Read directory block `pblk` of `dir`, verify its checksum, and give `f` the bytes and
    /// whether the block has a checksum tail.
    fn with_dir_block<T>(
        &mut self,
        dir: Ino,
        pblk: Pblk,
        f: impl FnOnce(&[u8], bool) -> Result<T>,
    ) -> Result<T> {
        let csum = self.sb.metadata_csum();
        let seed = self.inode(dir).csum_seed;
        let buf = self.bread(pblk, Zone::DirData)?;
        if csum && dir::has_tail(buf) {
            dir::dirblock_csum_verify(seed, buf, dir)?;
        }
        let tail = csum && dir::has_tail(buf);
        f(buf, tail)
    }

    /// Every live entry of directory `dir`, in on-disk order.
    pub fn readdir(&mut self, dir: Ino) -> Result<Vec<DirEntry>> {
        self.iget(dir)?;
        self.check_dir(dir)?;
        let mut out = Vec::new();
        for (_, pblk) in self.dir_blocks(dir)? {
            out.extend(
                self.dir_block(dir, pblk)?
                    .into_iter()
                    .filter(|e| e.inode != 0),
            );
        }
        Ok(out)
    }

    /// Model of ext4_lookup(): the inode a name refers to in `dir`.
    ///
    /// Every block is read and checked (as [`readdir`](Fs::readdir) does) before the first
    /// match is returned, without building the entries.
    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Option<Ino>> {
        self.iget(dir)?;
        self.check_dir(dir)?;
        let mut found = None;
        for (_, pblk) in self.dir_blocks(dir)? {
            let hit =
                self.with_dir_block(dir, pblk, |buf, tail| dir::find_entry(buf, dir, tail, name))?;
            found = found.or(hit.map(|e| e.inode));
        }
        Ok(found.map(Ino))
    }

    fn check_dir(&self, ino: Ino) -> Result<()> {
        if self.inode(ino).raw.i_mode & fi::S_IFMT != fi::S_IFDIR {
            return Err(Error::NotDir(format!("inode {ino}")));
        }
        Ok(())
    }

    /// Resolve an absolute path (`/a/b`) to an inode number.
    pub fn resolve(&mut self, path: &str) -> Result<Ino> {
        let mut cur = ROOT_INO;
        for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            self.iget(cur)?;
            if self.inode(cur).raw.i_mode & fi::S_IFMT != fi::S_IFDIR {
                return Err(Error::NotDir(path.to_string()));
            }
            cur = self
                .lookup(cur, comp.as_bytes())?
                .ok_or_else(|| Error::NotFound(path.to_string()))?;
        }
        self.iget(cur)?;
        Ok(cur)
    }

    /// Split a path into (parent directory inode, last name).
    pub fn resolve_parent(&mut self, path: &str) -> Result<(Ino, String)> {
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(Error::Invalid(format!("{path}: not a valid file name")));
        }
        if name.len() > dir::EXT4_NAME_LEN {
            return Err(Error::Invalid(format!("{path}: file name too long")));
        }
        Ok((self.resolve(parent)?, name.to_string()))
    }

    fn check_modifiable_dir(&self, dir: Ino) -> Result<()> {
        if self.inode(dir).raw.i_flags & fi::EXT4_INDEX_FL != 0 {
            return Err(Error::Unsupported(
                "modifying a hashed (htree) directory".into(),
            ));
        }
        Ok(())
    }

    /// Model of ext4_add_entry(): add `name → ino` to `dir`, appending a block if no block
    /// has room (ext4_append()).
    pub fn add_link(
        &mut self,
        h: &mut Handle,
        dir: Ino,
        name: &[u8],
        ino: Ino,
        ft: u8,
    ) -> Result<()> {
        self.check_modifiable_dir(dir)?;
        let tail = self.sb.metadata_csum();
        for (_, pblk) in self.dir_blocks(dir)? {
            self.dir_block(dir, pblk)?;
            let mut copy = self.bufs.map[&pblk.0].data.clone();
            if dir::add_entry(&mut copy, dir, tail, ino, name, ft)? {
                self.get_write_access(h, pblk, Zone::DirData)?;
                self.buf_mut(pblk).copy_from_slice(&copy);
                return self.dirty_dir_block(h, dir, pblk);
            }
        }
        let pblk = self.append_dir_block(h, dir)?;
        let ok = dir::add_entry(self.buf_mut(pblk), dir, tail, ino, name, ft)?;
        assert!(ok, "a name must fit in an empty directory block");
        self.dirty_dir_block(h, dir, pblk)
    }

    fn dirty_dir_block(&mut self, h: &mut Handle, dir: Ino, pblk: Pblk) -> Result<()> {
        if self.sb.metadata_csum() {
            let seed = self.inode(dir).csum_seed;
            dir::dirblock_csum_set(seed, self.buf_mut(pblk));
        }
        let now = self.now();
        let info = self.inode_mut(dir);
        info.raw.i_mtime = now;
        info.raw.i_ctime = now;
        self.dirty_metadata(h, pblk)?;
        self.mark_inode_dirty(h, dir)
    }

    /// Model of ext4_append(): map one more block at the end of the directory, initialised as
    /// one empty entry (plus the checksum tail). The caller fills and dirties it.
    fn append_dir_block(&mut self, h: &mut Handle, dir: Ino) -> Result<Pblk> {
        let bs = u64::from(self.block_size());
        let size = self.inode(dir).raw.i_size;
        let lblk = Lblk((size / bs) as u32);
        let m = self.map_blocks(Some(h), dir, lblk, 1, MapFlags::CREATE)?;
        self.get_create_access(h, m.pblk, Zone::DirData)?;
        let tail = self.sb.metadata_csum();
        dir::init_block(self.buf_mut(m.pblk), tail);
        self.inode_mut(dir).raw.i_size = size + bs;
        Ok(m.pblk)
    }

    /// Model of ext4_create(): a new empty regular file at `path`.
    pub fn create(&mut self, path: &str, mode: u16) -> Result<Ino> {
        self.check_writable()?;
        let (dir, name) = self.resolve_parent(path)?;
        self.check_dir(dir)?;
        if self.lookup(dir, name.as_bytes())?.is_some() {
            return Err(Error::Exists(path.to_string()));
        }
        let mut h = self.journal_start(DIR_CREDITS)?;
        let res = (|| -> Result<Ino> {
            let ino = self.new_inode(&mut h, dir, fi::S_IFREG | (mode & 0o7777))?;
            self.add_link(&mut h, dir, name.as_bytes(), ino, dir::EXT4_FT_REG_FILE)?;
            Ok(ino)
        })();
        let stop = self.journal_stop(h);
        let ino = res?;
        stop?;
        Ok(ino)
    }

    /// Model of ext4_mkdir(): a new directory with `.` and `..`.
    pub fn mkdir(&mut self, path: &str) -> Result<Ino> {
        self.check_writable()?;
        let (parent, name) = self.resolve_parent(path)?;
        self.check_dir(parent)?;
        if self.lookup(parent, name.as_bytes())?.is_some() {
            return Err(Error::Exists(path.to_string()));
        }
        let mut h = self.journal_start(DIR_CREDITS)?;
        let res = (|| -> Result<Ino> {
            let ino = self.new_inode(&mut h, parent, fi::S_IFDIR | 0o755)?;
            self.inode_mut(ino).raw.i_links_count = 2;
            let pblk = self.append_dir_block(&mut h, ino)?;
            let tail = self.sb.metadata_csum();
            dir::make_dot_block(self.buf_mut(pblk), ino, parent, tail);
            self.dirty_dir_block(&mut h, ino, pblk)?;
            self.add_link(&mut h, parent, name.as_bytes(), ino, dir::EXT4_FT_DIR)?;
            self.inode_mut(parent).raw.i_links_count += 1;
            self.mark_inode_dirty(&mut h, parent)?;
            Ok(ino)
        })();
        let stop = self.journal_stop(h);
        let ino = res?;
        stop?;
        Ok(ino)
    }

    fn remove_link(&mut self, h: &mut Handle, dir: Ino, name: &[u8]) -> Result<()> {
        self.check_modifiable_dir(dir)?;
        let tail = self.sb.metadata_csum();
        for (_, pblk) in self.dir_blocks(dir)? {
            self.dir_block(dir, pblk)?;
            let mut copy = self.bufs.map[&pblk.0].data.clone();
            if dir::delete_entry(&mut copy, dir, tail, name)? {
                self.get_write_access(h, pblk, Zone::DirData)?;
                self.buf_mut(pblk).copy_from_slice(&copy);
                return self.dirty_dir_block(h, dir, pblk);
            }
        }
        Err(Error::NotFound(String::from_utf8_lossy(name).into_owned()))
    }

    /// Model of ext4_unlink(): remove a name; the inode is evicted when its last link goes.
    pub fn unlink(&mut self, path: &str) -> Result<()> {
        self.check_writable()?;
        let (dir, name) = self.resolve_parent(path)?;
        let ino = self
            .lookup(dir, name.as_bytes())?
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        self.iget(ino)?;
        if self.inode(ino).raw.i_mode & fi::S_IFMT == fi::S_IFDIR {
            return Err(Error::IsDir(path.to_string()));
        }
        self.drop_link(dir, name.as_bytes(), ino, false)
    }

    /// Model of ext4_rmdir(): remove an empty directory.
    pub fn rmdir(&mut self, path: &str) -> Result<()> {
        self.check_writable()?;
        let (dir, name) = self.resolve_parent(path)?;
        let ino = self
            .lookup(dir, name.as_bytes())?
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        self.iget(ino)?;
        self.check_dir(ino)?;
        if self
            .readdir(ino)?
            .iter()
            .any(|e| e.name != b"." && e.name != b"..")
        {
            return Err(Error::NotEmpty(path.to_string()));
        }
        self.drop_link(dir, name.as_bytes(), ino, true)
    }

    fn drop_link(&mut self, dir: Ino, name: &[u8], ino: Ino, is_dir: bool) -> Result<()> {
        let mut h = self.journal_start(DIR_CREDITS)?;
        let res = (|| {
            self.remove_link(&mut h, dir, name)?;
            let now = self.now();
            let info = self.inode_mut(ino);
            info.raw.i_links_count = if is_dir {
                0
            } else {
                info.raw.i_links_count - 1
            };
            info.raw.i_ctime = now;
            if is_dir {
                self.inode_mut(dir).raw.i_links_count -= 1;
                self.mark_inode_dirty(&mut h, dir)?;
            }
            if self.inode(ino).raw.i_links_count == 0 {
                self.orphan_add(&mut h, ino)?;
            }
            self.mark_inode_dirty(&mut h, ino)
        })();
        let stop = self.journal_stop(h);
        res?;
        stop?;
        if self.inode(ino).raw.i_links_count == 0 {
            self.evict_inode(ino)?;
        }
        Ok(())
    }
}
