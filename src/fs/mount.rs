//! Model of ext4_fill_super() / ext4_put_super() (fs/ext4/super.c): mount an image from a
//! [`Disk`], keep the superblock and group descriptors in memory, write them back at sync and
//! unmount.

use crate::dev::{Disk, Zone};
use crate::error::{CorruptKind, Error, Result};
use crate::format::group_desc::{self, GroupDesc};
use crate::format::jbd2::JournalSuperblock;
use crate::format::superblock::{self as sbf, Superblock};
use crate::fs::ext4_jbd2::BufferCache;
use crate::fs::inode::InodeInfo;
use crate::fs::page::PageCache;
use crate::jbd2::transaction::Journal;
use crate::units::{Group, Ino, Pblk};
use std::collections::BTreeMap;
use std::path::Path;

/// Mount options that change the engine's behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOpts {
    /// Mount read-only: every modifying call fails with `Error::Invalid("read-only")`.
    pub read_only: bool,
}

/// Deterministic clock base (no wall clock reaches the disk): 2023-11-14T22:13:20Z.
pub const EPOCH: u32 = 1_700_000_000;

/// One mounted filesystem.
pub struct Fs {
    /// The device the filesystem lives on.
    pub dev: Disk,
    /// The in-memory superblock (`sbi->s_es`); written back by [`Fs::commit_super`].
    pub sb: Superblock,
    /// The in-memory group descriptors (`sbi->s_group_desc`).
    pub gds: Vec<GroupDesc>,
    /// Mount options.
    pub opts: MountOpts,
    /// Metadata buffers (the buffer-head cache).
    pub(crate) bufs: BufferCache,
    /// In-core inodes (`ext4_inode_info`), by number.
    pub(crate) inodes: BTreeMap<Ino, InodeInfo>,
    /// File data not yet written back.
    pub(crate) pages: PageCache,
    /// `sbi->s_next_generation`: the next `i_generation` handed out.
    pub(crate) next_generation: u32,
    /// Logical clock for timestamps.
    pub(crate) clock: u32,
    /// The journal, when the filesystem has one and is mounted read-write.
    pub journal: Option<Journal>,
    /// Set once the journal aborted: the filesystem is read-only from then on.
    pub aborted: bool,
    /// How many times ext4_error() was called since mount (the kernel counts them in
    /// `s_error_count`): an op that calls it reports part of its failure there only.
    pub error_count: u64,
    /// The seeded bugs switched on (see [`crate::profile`]); empty for the real kernel behaviour.
    pub bugs: crate::profile::BugSet,
    /// ENOSPC injection: the block allocation request with this index (counted from the
    /// mount) fails with `Error::NoSpace`, as if the filesystem were full. Set it with
    /// [`Fs::inject_enospc`].
    pub(crate) enospc_at: Option<u64>,
    /// Block allocation requests so far (for `enospc_at`).
    pub(crate) alloc_requests: u64,
    /// The in-memory orphan list (`sbi->s_orphan`), head first, in on-disk chain order.
    pub(crate) orphans: Vec<Ino>,
}

/// The journal features ext4 sets at every mount, read-only ones included, as
/// set_journal_csum_feature_set() does without the `journal_checksum` and
/// `journal_async_commit` options (which the model does not have): the checksum features are
/// cleared, then v3 (crc32c) is set on a metadata_csum filesystem, and ASYNC_COMMIT is
/// cleared; on a 64bit filesystem, 64BIT is set. The kernel writes them with the journal
/// superblock when it releases the journal.
pub fn journal_features(sb: &Superblock, jsb: &mut JournalSuperblock) {
    use crate::format::jbd2 as fj;
    jsb.s_feature_compat &= !fj::JBD2_FEATURE_COMPAT_CHECKSUM;
    jsb.s_feature_incompat &= !(fj::JBD2_FEATURE_INCOMPAT_CSUM_V2
        | fj::JBD2_FEATURE_INCOMPAT_CSUM_V3
        | fj::JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT);
    if sb.metadata_csum() {
        jsb.s_feature_incompat |= fj::JBD2_FEATURE_INCOMPAT_CSUM_V3;
        jsb.s_checksum_type = fj::JBD2_CRC32C_CHKSUM;
    }
    if sb.has_incompat(sbf::EXT4_FEATURE_INCOMPAT_64BIT) {
        jsb.s_feature_incompat |= fj::JBD2_FEATURE_INCOMPAT_64BIT;
    }
}

impl Fs {
    /// Load an image file as a disk whose blocks are the filesystem's, reading only its
    /// superblock first (block sizes the simulated disk does not take load in 4 KiB units, and
    /// mounting them then fails with a clear error).
    pub fn load_image(path: &Path) -> Result<Disk> {
        let head = read_head(path)?;
        let sb = Superblock::parse(&head[1024..2048])?;
        let bs = sb.block_size();
        Disk::load(path, if bs <= 32768 { bs } else { 4096 })
    }

    /// Open and mount an image file.
    pub fn open(path: &Path, opts: MountOpts) -> Result<Fs> {
        Fs::mount(Fs::load_image(path)?, opts)
    }

    /// Model of ext4_fill_super(): read and check the superblock, replay the journal if it
    /// needs recovery (ext4_load_journal() → jbd2_journal_load() → jbd2_journal_recover(); on a
    /// read-only mount too, as the kernel does unless `noload`), read the descriptors, load the
    /// journal, and process the orphan list. The replay is the kernel's
    /// ([`crate::jbd2::Replayer::Kernel`]), and as in jbd2_journal_load() a recovery error or a
    /// corrupt transaction (`j_failed_commit`) fails the mount.
    pub fn mount(mut dev: Disk, opts: MountOpts) -> Result<Fs> {
        let raw = dev.read_bytes(sbf::SUPERBLOCK_OFFSET, sbf::SUPERBLOCK_SIZE)?;
        let mut sb = Superblock::parse(&raw)?;
        if sb.has_incompat(sbf::EXT4_FEATURE_INCOMPAT_RECOVER) {
            let info = crate::jbd2::recover_as(&mut dev, crate::jbd2::Replayer::Kernel)?;
            if let Some(e) = info.error {
                return Err(e);
            }
            // jbd2_journal_load(): "journal transaction %u is corrupt", -EFSCORRUPTED.
            if info.failed_commit.is_some() {
                return Err(
                    CorruptKind::JournalRecovery("a journal transaction is corrupt").into(),
                );
            }
            let raw = dev.read_bytes(sbf::SUPERBLOCK_OFFSET, sbf::SUPERBLOCK_SIZE)?;
            sb = Superblock::parse(&raw)?;
        }
        sb.verify_checksum()?;
        sb.check_supported()?;
        if sb.block_size() != dev.block_size() {
            return Err(Error::Invalid(format!(
                "device block size {} but the superblock says {}",
                dev.block_size(),
                sb.block_size()
            )));
        }
        if sb.s_blocks_count > dev.nr_blocks() {
            return Err(
                CorruptKind::SuperblockGeometry("s_blocks_count (past end of image)").into(),
            );
        }
        let gds = read_group_descs(&mut dev, &sb)?;
        let mut fs = Fs {
            dev,
            gds,
            opts,
            bufs: BufferCache::default(),
            inodes: BTreeMap::new(),
            pages: PageCache::default(),
            next_generation: sb.s_inodes_count.wrapping_sub(sb.s_free_inodes_count),
            clock: EPOCH,
            journal: None,
            aborted: false,
            error_count: 0,
            orphans: Vec::new(),
            enospc_at: None,
            alloc_requests: 0,
            bugs: crate::profile::BugSet::NONE,
            sb,
        };
        fs.dev
            .set_zone_map(crate::fs::mount::zone_map(&fs.sb, &fs.gds));
        fs.pin_super_and_descs();
        if fs.sb.has_compat(sbf::EXT4_FEATURE_COMPAT_HAS_JOURNAL) {
            // A read-only mount loads the journal too (unless `noload`): the same checks.
            if fs.opts.read_only {
                fs.check_journal()?;
            } else {
                fs.load_journal()?;
            }
        }
        if !fs.opts.read_only {
            fs.orphan_cleanup()?;
        }
        Ok(fs)
    }

    /// The superblock's buffer (`sbi->s_sbh`) and the descriptor blocks (`s_group_desc[]`)
    /// that ext4_fill_super() reads and keeps until unmount: cached from the blocks mount just
    /// read, so the kernel's never-failing accesses to them (ext4_orphan_add()'s write access
    /// to `s_sbh`, a descriptor's update) never go to the device either.
    fn pin_super_and_descs(&mut self) {
        let (sb_blk, _) = self.sb_location();
        let first_gdt = self.sb.gdt_block(0);
        let gdt = (first_gdt..first_gdt + u64::from(self.sb.gdt_blocks()))
            .map(|b| (Pblk(b), Zone::GroupDesc));
        for (blk, zone) in std::iter::once((sb_blk, Zone::Superblock)).chain(gdt) {
            self.cache_built_block(blk, zone, |fs| fs.dev.peek_block(blk).to_vec());
        }
    }

    /// The journal checks of ext4_load_journal() and jbd2_journal_load() that fail a mount
    /// (read-only ones included): map inode 8, parse the JBD2 superblock against the
    /// geometry; a version 1 superblock cannot take the features a 64bit or metadata_csum
    /// filesystem sets (jbd2_journal_set_features(), EINVAL); and journal_reset()'s "Journal
    /// too short" when fewer than `JBD2_MIN_JOURNAL_BLOCKS` remain from `s_first` (both found
    /// by the replay differential against the kernel). Returns the superblock, the map and
    /// journal block 0 as read.
    fn check_journal(&mut self) -> Result<(JournalSuperblock, Vec<Pblk>, Vec<u8>)> {
        use crate::format::jbd2::JBD2_MIN_JOURNAL_BLOCKS;
        let jino = Ino(self.sb.s_journal_inum);
        if jino.0 == 0 {
            return Err(Error::Unsupported("external journal".into()));
        }
        let map = self.journal_blocks(jino)?;
        let bs = self.block_size() as usize;
        let first = *map.first().ok_or(CorruptKind::JournalInode("no blocks"))?;
        let raw = self.dev.read_block_as(first, Zone::Journal)?.to_vec();
        let jsb = JournalSuperblock::parse(&raw[..1024.min(bs)])?;
        jsb.check_geometry(self.block_size(), map.len() as u64)?;
        let needs =
            self.sb.metadata_csum() || self.sb.has_incompat(sbf::EXT4_FEATURE_INCOMPAT_64BIT);
        if !jsb.is_v2() && needs {
            return Err(Error::Invalid(
                "a version 1 journal superblock cannot take the journal features this \
                 filesystem needs"
                    .into(),
            ));
        }
        if u64::from(jsb.s_first) + u64::from(JBD2_MIN_JOURNAL_BLOCKS)
            > u64::from(jsb.log_last()) + 1
        {
            return Err(CorruptKind::JournalSuperblock("journal too short").into());
        }
        Ok((jsb, map, raw))
    }

    /// Model of ext4_load_journal() + ext4_fill_super()'s journal setup: the checks of
    /// [`Fs::check_journal`], the mount's journal features ([`journal_features`]), reset the
    /// log, and mark the filesystem as needing recovery until a clean unmount.
    fn load_journal(&mut self) -> Result<()> {
        let (mut jsb, map, raw) = self.check_journal()?;
        journal_features(&self.sb, &mut jsb);
        let mut j = Journal::load(jsb, map, raw)?;
        j.reset(&mut self.dev)?;
        self.journal = Some(j);
        self.sb.s_feature_incompat |= sbf::EXT4_FEATURE_INCOMPAT_RECOVER;
        self.commit_super()?;
        self.dev.flush()
    }

    /// The journal inode's blocks in log order (`jbd2_journal_bmap()` for every block).
    fn journal_blocks(&mut self, jino: Ino) -> Result<Vec<Pblk>> {
        use crate::format::blockmap;
        let raw = self.iget(jino)?.raw.clone();
        let seed = self.sb.metadata_csum().then(|| self.inode(jino).csum_seed);
        let bs = self.block_size();
        let dev = &mut self.dev;
        let mut read = |b: Pblk| dev.read_block_as(b, Zone::Journal);
        let map = blockmap::walk_inode(&self.sb, jino, &raw, seed, &mut read)?;
        let nblocks = raw.i_size / u64::from(bs);
        u32::try_from(nblocks).map_err(|_| CorruptKind::JournalInode("too large"))?;
        // A corrupt i_size may claim billions of blocks: reserve no more than the map holds
        // (found by the `image` fuzz target: an 8 GiB allocation).
        let mapped: u64 = map.runs.iter().map(|r| u64::from(r.len)).sum();
        let mut out = Vec::with_capacity(nblocks.min(mapped) as usize);
        for run in &map.runs {
            if out.len() as u64 >= nblocks {
                break;
            }
            if u64::from(run.lblk) != out.len() as u64 || run.unwritten {
                break;
            }
            let take = u64::from(run.len).min(nblocks - out.len() as u64);
            out.extend((0..take).map(|k| Pblk(run.pblk + k)));
        }
        if (out.len() as u64) < nblocks {
            return Err(CorruptKind::JournalInode("hole in the journal").into());
        }
        Ok(out)
    }

    /// Make the `after`-th block allocation request from now (0 = the next one) fail with
    /// `Error::NoSpace`; `None` clears the injection.
    pub fn inject_enospc(&mut self, after: Option<u64>) {
        self.enospc_at = after.map(|n| self.alloc_requests + n);
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.sb.block_size()
    }

    /// Whether the filesystem has the extent feature.
    pub fn has_extents(&self) -> bool {
        self.sb.has_incompat(sbf::EXT4_FEATURE_INCOMPAT_EXTENTS)
    }

    /// The current logical time (seconds), advanced by every modifying operation.
    pub fn now(&mut self) -> u32 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }

    /// Fail with `-EROFS`-style error when mounted read-only, or `Aborted` after a journal abort.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.aborted {
            return Err(Error::Aborted);
        }
        if self.opts.read_only {
            return Err(Error::Invalid("filesystem is mounted read-only".into()));
        }
        Ok(())
    }

    /// Model of ext4_commit_super(): write the superblock (and the dirty group descriptors) home.
    pub fn commit_super(&mut self) -> Result<()> {
        self.sb.s_wtime = self.clock;
        let bytes = self.sb.to_bytes();
        let (blk, off) = self.sb_location();
        if let Some(b) = self.bufs.map.get_mut(&blk.0) {
            b.data[off..off + bytes.len()].copy_from_slice(&bytes);
        }
        // __ext4_commit_super(): REQ_SYNC | REQ_FUA.
        let mut block = self.dev.peek_block(blk).to_vec();
        block[off..off + bytes.len()].copy_from_slice(&bytes);
        self.dev.write_fua_as(blk, &block, Zone::Superblock)
    }

    /// Model of ext4_put_super(): write back everything, commit and checkpoint the journal,
    /// mark it empty, clear RECOVER, mark the superblock clean, flush. After a journal abort
    /// the device is returned as it is (the kernel cannot clean up either).
    pub fn unmount(mut self) -> Result<Disk> {
        if !self.opts.read_only && !self.aborted {
            self.sync()?;
            if let Some(mut j) = self.journal.take() {
                j.checkpoint_all(&mut self.dev)?;
                j.mark_empty(&mut self.dev)?;
                self.sb.s_feature_incompat &= !sbf::EXT4_FEATURE_INCOMPAT_RECOVER;
            }
            self.sb.s_state |= sbf::EXT4_VALID_FS;
            self.commit_super()?;
            self.dev.flush()?;
        }
        Ok(self.dev)
    }

    /// Model of ext4_sync_fs(): write back every dirty page, commit the running transaction
    /// (or, without a journal, write every dirty buffer), write the superblock, flush.
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.writeback_all()?;
        self.journal_commit()?;
        self.commit_super()?;
        self.dev.flush()
    }

    /// Location of a group descriptor in the descriptor table: (block, byte offset).
    pub(crate) fn group_desc_location(&self, g: Group) -> (Pblk, usize) {
        let per_block = self.block_size() as usize / self.sb.desc_size();
        let first = self.sb.gdt_block(0);
        let blk = first + (g.0 as usize / per_block) as u64;
        (Pblk(blk), (g.0 as usize % per_block) * self.sb.desc_size())
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::host(format!("{}: {e}", path.display())))?;
    let mut head = vec![0u8; 2048];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(Error::host(format!("{}: {e}", path.display()))),
        }
    }
    if got < 2048 {
        return Err(CorruptKind::Truncated { what: "superblock" }.into());
    }
    Ok(head)
}

/// Read and verify the group descriptor table.
fn read_group_descs(dev: &mut Disk, sb: &Superblock) -> Result<Vec<GroupDesc>> {
    let bs = sb.block_size() as usize;
    let first = sb.gdt_block(0);
    let nblocks = u64::from(sb.gdt_blocks());
    let mut bytes = Vec::with_capacity(nblocks as usize * bs);
    for b in 0..nblocks {
        bytes.extend_from_slice(&dev.read_block_as(Pblk(first + b), Zone::GroupDesc)?);
    }
    let gds = group_desc::parse_table(sb, &bytes)?;
    let ds = sb.desc_size();
    for (g, gd) in gds.iter().enumerate() {
        let raw = &bytes[g * ds..(g + 1) * ds];
        let want = group_desc::group_desc_csum(sb, g as u32, raw);
        if (sb.metadata_csum() || sb.gdt_csum()) && want != gd.bg_checksum {
            return Err(CorruptKind::GroupDescriptorChecksum(g as u32).into());
        }
        check_gd_ranges(sb, g as u32, gd)?;
    }
    Ok(gds)
}

fn check_gd_ranges(sb: &Superblock, g: u32, gd: &GroupDesc) -> Result<()> {
    let n = sb.s_blocks_count;
    let itb = u64::from(sb.itable_blocks());
    let bad = |field| Err(CorruptKind::GroupDescriptor { group: g, field }.into());
    if gd.bg_block_bitmap >= n || gd.bg_block_bitmap < u64::from(sb.s_first_data_block) {
        return bad("bg_block_bitmap");
    }
    if gd.bg_inode_bitmap >= n || gd.bg_inode_bitmap < u64::from(sb.s_first_data_block) {
        return bad("bg_inode_bitmap");
    }
    if gd.bg_inode_table.checked_add(itb).is_none_or(|end| end > n) {
        return bad("bg_inode_table");
    }
    Ok(())
}

/// The static zones of the device (for fault plans and the write log).
pub(crate) fn zone_map(sb: &Superblock, gds: &[GroupDesc]) -> crate::dev::ZoneMap {
    let mut map = crate::dev::ZoneMap::new();
    let first = u64::from(sb.s_first_data_block);
    for g in 0..sb.groups_count() {
        if sb.bg_has_super(g) {
            let start = sb.group_first_block(g);
            map.try_add(Pblk(start), 1, Zone::Superblock);
            let gdt = u64::from(sb.gdt_blocks()) + u64::from(sb.s_reserved_gdt_blocks);
            map.try_add(Pblk(start + 1), gdt, Zone::GroupDesc);
        }
    }
    if first == 1 {
        map.try_add(Pblk(0), 1, Zone::Superblock);
    }
    for gd in gds {
        map.try_add(Pblk(gd.bg_block_bitmap), 1, Zone::Bitmap);
        map.try_add(Pblk(gd.bg_inode_bitmap), 1, Zone::Bitmap);
        map.try_add(
            Pblk(gd.bg_inode_table),
            u64::from(sb.itable_blocks()),
            Zone::InodeTable,
        );
    }
    map
}
