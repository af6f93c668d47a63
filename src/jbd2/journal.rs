//! Where the journal lives and how to read it: the e2fsck side of `journal_t`.
//!
//! * [`JournalLoc`]: the journal inode (`s_journal_inum`, normally 8) and its block map,
//!   journal block → filesystem block (`jbd2_journal_bmap()`). Found as
//!   `e2fsck_get_journal()` (e2fsck/journal.c) finds it: read the inode; if it is unusable
//!   (bad checksum, not a regular file in use, shorter than 1024 blocks, a hole or an
//!   out-of-range block in its map), rebuild it from the superblock's backup `s_jnl_blocks`
//!   and, if that works, write the rebuilt inode back, as e2fsck does.
//! * [`Journal`]: the loaded journal (`journal_t` after `e2fsck_journal_load()`): superblock,
//!   log bounds `j_first`/`j_last`, `j_total_len`, the sequence counters, `j_failed_commit` and
//!   the recovery revoke table. [`Journal::jread`] is `jread()` of fs/jbd2/recovery.c.
//! * [`LogWriter`]: lays transactions out in the log as `jbd2_journal_commit_transaction()`
//!   does (descriptor + escaped data blocks + tag checksums, revoke blocks, commit block),
//!   wrapping at `j_last`. Used by the recovery tests and for fuzz seeds.
//!
//! External journals (`s_journal_uuid` set) and fast commits are `Unsupported`.

use super::recovery::crc32_be;
use super::revoke::RevokeTable;
use crate::bytes::{read_u32be, write_u16le, write_u32be, write_u32le, write_u64be};
use crate::dev::{Block, Disk, Zone};
use crate::error::{CorruptKind, Error, Result};
use crate::format::blockmap::{self, BlockMap, WalkCtx};
use crate::format::group_desc::GroupDesc;
use crate::format::inode::{self, Inode, EXT4_ENCRYPT_FL, EXT4_EXTENTS_FL, S_IFREG};
use crate::format::jbd2::{
    block_tag_csum, build_commit, build_descriptor, build_revoke, descriptor_block_csum_set,
    descriptor_capacity, escape, BlockTag, JournalHeader, JournalSuperblock, JBD2_COMMIT_BLOCK,
    JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_FLAG_ESCAPE,
    JBD2_MAGIC_NUMBER, JBD2_MIN_JOURNAL_BLOCKS, JBD2_SUPERBLOCK_V1, JBD2_SUPERBLOCK_V2,
};
use crate::format::superblock::{
    Superblock, EXT3_JNL_BACKUP_BLOCKS, EXT4_FEATURE_INCOMPAT_META_BG, SUPERBLOCK_OFFSET,
};
use crate::units::{Ino, Pblk, Tid};

/// `sizeof(struct ext2_inode)`: the part of the inode e2fsck rebuilds from `s_jnl_blocks`.
const EXT2_INODE_SIZE: usize = 128;

fn bad_inode(why: &'static str) -> Error {
    Error::Corrupt(CorruptKind::JournalInode(why))
}

/// The journal inode's block map: journal block → filesystem block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLoc {
    /// `s_journal_inum`.
    pub ino: Ino,
    /// Journal length by the inode: `i_size / blocksize` (e2fsck's first `j_total_len`).
    pub inode_blocks: u32,
    /// The data runs of the journal inode.
    map: BlockMap,
    /// When the map came from `s_jnl_blocks`: the inode record e2fsck writes back
    /// (`ext2fs_write_inode()` of the rebuilt 128-byte inode over the on-disk record).
    pub rewrite: Option<InodeRewrite>,
}

/// An inode record to write back: `raw` at byte `offset` of block `block`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InodeRewrite {
    /// The inode-table block.
    pub block: Pblk,
    /// Byte offset of the record in the block.
    pub offset: usize,
    /// The whole record (`s_inode_size` bytes), checksum set.
    pub raw: Vec<u8>,
}

impl JournalLoc {
    /// A journal of `len` blocks stored contiguously from filesystem block `start` (for tests
    /// and for building images; no inode is read).
    pub fn contiguous(ino: Ino, start: Pblk, len: u32) -> JournalLoc {
        let run = blockmap::Run {
            lblk: 0,
            pblk: start.0,
            len,
            unwritten: false,
        };
        JournalLoc {
            ino,
            inode_blocks: len,
            map: BlockMap {
                runs: vec![run],
                meta: Vec::new(),
            },
            rewrite: None,
        }
    }

    /// Model of the internal-journal part of `e2fsck_get_journal()` (e2fsck/journal.c): read
    /// inode `s_journal_inum` and check it; fall back to the backup in `s_jnl_blocks` once.
    ///
    /// Errors: `Unsupported` for an external journal; `JournalInode(..)` for a journal inode
    /// number out of range, or an inode (and backup) that does not describe a journal; device
    /// errors as they come.
    pub fn find(dev: &mut Disk, sb: &Superblock) -> Result<JournalLoc> {
        if sb.s_journal_uuid != [0; 16] {
            return Err(Error::Unsupported("external journal".into()));
        }
        let ino = Ino(sb.s_journal_inum);
        let max_ino = u64::from(sb.groups_count()) * u64::from(sb.s_inodes_per_group);
        if ino.0 == 0 || u64::from(ino.0) > max_ino {
            return Err(bad_inode("s_journal_inum out of range"));
        }
        let (block, offset) = inode_location(dev, sb, ino)?;
        let size = sb.inode_size() as usize;
        let disk = dev.read_block_as(block, Zone::InodeTable)?;
        let raw = disk
            .get(offset..offset + size)
            .ok_or(bad_inode("inode record past its block"))?
            .to_vec();
        let first = read_inode(sb, ino, &raw).and_then(|i| map_journal(dev, sb, ino, &i));
        let err = match first {
            Ok((map, inode_blocks)) => {
                return Ok(JournalLoc {
                    ino,
                    inode_blocks,
                    map,
                    rewrite: None,
                })
            }
            Err(e @ Error::Io(_)) => return Err(e),
            Err(e) => e,
        };
        if sb.s_jnl_backup_type != EXT3_JNL_BACKUP_BLOCKS {
            return Err(err);
        }
        let backup = backup_inode(sb);
        let parsed = Inode::parse(&backup, EXT2_INODE_SIZE, ino)?;
        let (map, inode_blocks) = map_journal(dev, sb, ino, &parsed)?;
        let mut rec = raw;
        rec[..EXT2_INODE_SIZE].copy_from_slice(&backup);
        if sb.metadata_csum() {
            inode::inode_csum_set(sb.csum_seed(), ino, &mut rec, size);
        }
        let rewrite = Some(InodeRewrite {
            block,
            offset,
            raw: rec,
        });
        Ok(JournalLoc {
            ino,
            inode_blocks,
            map,
            rewrite,
        })
    }

    /// Model of `jbd2_journal_bmap()` (`ext2fs_bmap2()` in e2fsck): the filesystem block
    /// holding journal block `block`.
    pub fn bmap(&self, block: u64) -> Result<Pblk> {
        let lblk = u32::try_from(block).map_err(|_| bad_inode("journal block past 2^32"))?;
        match self.map.lookup(lblk) {
            Some((pblk, _)) => Ok(Pblk(pblk)),
            None => Err(bad_inode("journal block not mapped")),
        }
    }

    /// The data runs of the journal inode.
    pub fn runs(&self) -> &[blockmap::Run] {
        &self.map.runs
    }
}

/// Model of `ext2fs_read_inode()` for the journal inode: parse the record and, with
/// metadata_csum, verify its checksum (e2fsck has not turned checksum errors off yet here).
fn read_inode(sb: &Superblock, ino: Ino, raw: &[u8]) -> Result<Inode> {
    let size = sb.inode_size() as usize;
    if sb.metadata_csum() && !inode::inode_csum_verify(sb.csum_seed(), ino, raw, size) {
        return Err(Error::Corrupt(CorruptKind::InodeChecksum(ino)));
    }
    Inode::parse(raw, size, ino)
}

/// The checks `e2fsck_get_journal()` applies to a journal inode, then its map: a regular
/// file in use, not encrypted, at least `JBD2_MIN_JOURNAL_BLOCKS` long, every block of
/// `i_size` mapped inside the filesystem (`process_journal_block()`). Returns the map and
/// `i_size / blocksize`.
fn map_journal(dev: &mut Disk, sb: &Superblock, ino: Ino, i: &Inode) -> Result<(BlockMap, u32)> {
    if i.i_links_count == 0 || !i.is_reg() || i.has_flag(EXT4_ENCRYPT_FL) {
        return Err(bad_inode("not a regular file in use"));
    }
    let bs = u64::from(sb.block_size());
    let blocks = i.i_size / bs;
    if blocks < u64::from(JBD2_MIN_JOURNAL_BLOCKS) {
        return Err(bad_inode("journal too small"));
    }
    let seed = sb
        .metadata_csum()
        .then(|| inode::inode_csum_seed(sb.csum_seed(), ino, i.i_generation));
    let mut read = |b: Pblk| dev.read_block_as(b, Zone::TreeMeta);
    let mut ctx = WalkCtx {
        ino,
        block_size: sb.block_size(),
        first_block: u64::from(sb.s_first_data_block).max(1),
        nr_blocks: sb.s_blocks_count,
        csum_seed: seed,
        read: &mut read,
    };
    let map = match blockmap::walk(&mut ctx, &i.i_block_bytes(), i.has_flag(EXT4_EXTENTS_FL)) {
        Ok(map) => map,
        Err(e @ Error::Io(_)) => return Err(e),
        Err(_) => return Err(bad_inode("bad block map")),
    };
    let mut expect = 0u64;
    for run in &map.runs {
        if u64::from(run.lblk) != expect {
            break;
        }
        expect += u64::from(run.len);
    }
    if expect < blocks {
        return Err(bad_inode("hole in the journal"));
    }
    Ok((map, u32::try_from(blocks).unwrap_or(u32::MAX)))
}

/// The 128-byte inode e2fsck builds from `s_jnl_blocks`: zeroes, `i_block` = words 0..15,
/// `i_size_high` = word 15, `i_size` = word 16, one link, mode `S_IFREG | 0600`, no flags
/// (so an extent-mapped backup is read as an indirect map, as e2fsck reads it).
fn backup_inode(sb: &Superblock) -> [u8; EXT2_INODE_SIZE] {
    let mut b = [0u8; EXT2_INODE_SIZE];
    write_u16le(&mut b, 0x00, S_IFREG | 0o600);
    write_u32le(&mut b, 0x04, sb.s_jnl_blocks[16]);
    write_u16le(&mut b, 0x1A, 1);
    for (k, w) in sb.s_jnl_blocks[..15].iter().enumerate() {
        write_u32le(&mut b, 0x28 + 4 * k, *w);
    }
    write_u32le(&mut b, 0x6C, sb.s_jnl_blocks[15]);
    b
}

/// Model of `descriptor_loc()` (fs/ext4/super.c): the filesystem block holding group
/// descriptor block `nr`, with or without meta_bg.
fn descriptor_block(sb: &Superblock, nr: u32) -> u64 {
    if !sb.has_incompat(EXT4_FEATURE_INCOMPAT_META_BG) || nr < sb.s_first_meta_bg {
        return sb.gdt_block(nr);
    }
    let group = nr.saturating_mul(sb.descs_per_block());
    sb.group_first_block(group) + u64::from(sb.bg_has_super(group))
}

/// Where inode `ino`'s record is: (inode-table block, byte offset in it).
fn inode_location(dev: &mut Disk, sb: &Superblock, ino: Ino) -> Result<(Pblk, usize)> {
    let index = ino.0 - 1;
    let group = index / sb.s_inodes_per_group;
    let dpb = sb.descs_per_block().max(1);
    let gd_block = descriptor_block(sb, group / dpb);
    let ds = sb.desc_size();
    let at = (group % dpb) as usize * ds;
    let buf = dev.read_block_as(Pblk(gd_block), Zone::GroupDesc)?;
    let gd = GroupDesc::parse(buf.get(at..).unwrap_or(&[]), ds)?;
    let in_group = u64::from(index % sb.s_inodes_per_group);
    let byte = in_group * u64::from(sb.inode_size());
    let bs = u64::from(sb.block_size());
    let bad = Error::Corrupt(CorruptKind::GroupDescriptor {
        group,
        field: "bg_inode_table",
    });
    match gd.bg_inode_table.checked_add(byte / bs) {
        Some(block)
            if gd.bg_inode_table >= u64::from(sb.s_first_data_block)
                && block < sb.s_blocks_count =>
        {
            Ok((Pblk(block), (byte % bs) as usize))
        }
        _ => Err(bad),
    }
}

/// A loaded journal (the recovery-relevant part of `journal_t`).
#[derive(Clone, Debug)]
pub struct Journal {
    /// Where the journal is.
    pub loc: JournalLoc,
    /// `j_superblock`, as read (and as it will be written back).
    pub jsb: JournalSuperblock,
    /// `j_blocksize`.
    pub block_size: u32,
    /// `j_total_len`: blocks that may be read (`min(inode length, s_maxlen)`).
    pub total_len: u32,
    /// `j_first`: first log block.
    pub first: u32,
    /// `j_last`: one past the last log block (`s_maxlen`).
    pub last: u32,
    /// `j_tail_sequence`.
    pub tail_sequence: Tid,
    /// `j_transaction_sequence`: the next transaction id.
    pub transaction_sequence: Tid,
    /// `j_failed_commit`: the transaction whose commit block failed its checksum.
    pub failed_commit: Option<Tid>,
    /// `j_revoke`: the revoke table recovery fills.
    pub revoke: RevokeTable,
    /// `j_sb_buffer`: journal block 0 as read at load. The superblock is written back from
    /// it, so a replay that overwrote that block (a log naming it as a home block) does not
    /// leak into the rest of the block, as in e2fsck and the kernel.
    sb_buffer: Vec<u8>,
    /// Whose copy of recovery.c replays the log.
    pub replayer: Replayer,
}

/// Whose recovery a replay models. The two copies of fs/jbd2/recovery.c differ in one
/// place the mutation differential (`examples/journal_mutants.rs`) found: since 6.4 the
/// kernel accepts a commit block whose checksum matches over its header alone
/// ([`commit_block_csum_verify_partial`]), where e2fsprogs 1.47.0 ends the log there, reports
/// "transaction was corrupt" and marks the filesystem with errors.
///
/// [`commit_block_csum_verify_partial`]: crate::format::jbd2::commit_block_csum_verify_partial
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Replayer {
    /// `e2fsck -E journal_only` (e2fsprogs 1.47.0): what `e4fuzz recover` and the crash
    /// states do, compared byte for byte with e2fsck.
    #[default]
    E2fsck,
    /// The kernel's mount (6.18): what the kernel oracle compares with.
    Kernel,
}

/// `V1_SB_SIZE`: the fields of a version 1 journal superblock (up to `s_errno`).
const V1_SB_SIZE: usize = 0x24;

/// Model of the first step of `e2fsck_journal_load()` with `clear_v2_journal_fields()`
/// (e2fsck/journal.c): a version 1 superblock with any version 2 field set, or a version 2
/// one claiming several users of an internal journal (`s_journal_uuid` null), is taken for a
/// version 1 journal's leftovers, and e2fsck ("Found invalid V2 journal superblock fields
/// (from V1 journal). Clear?") zeroes everything past the version 1 fields, features and
/// checksum included, before any other check. Returns whether it did. The kernel has no such
/// repair: its mount refuses such a superblock (a bad checksum) or ignores the fields.
pub fn clear_v2_journal_fields(dev: &mut Disk, loc: &JournalLoc, sb: &Superblock) -> Result<bool> {
    let blk = loc.bmap(0)?;
    let mut buf = dev.read_block_as(blk, Zone::Journal)?.to_vec();
    if read_u32be(&buf, 0) != JBD2_MAGIC_NUMBER {
        return Ok(false);
    }
    let any_v2 = [0x24, 0x28, 0x2C, 0x40]
        .iter()
        .any(|&o| read_u32be(&buf, o) != 0);
    let internal = sb.s_journal_uuid == [0; 16];
    let clear = match read_u32be(&buf, 4) {
        JBD2_SUPERBLOCK_V1 => any_v2,
        JBD2_SUPERBLOCK_V2 => read_u32be(&buf, 0x40) > 1 && internal,
        _ => false,
    };
    if clear {
        buf[V1_SB_SIZE..].fill(0);
        dev.write_as(blk, &buf, Zone::Journal)?;
    }
    Ok(clear)
}

impl Journal {
    /// Model of `e2fsck_journal_load()` (e2fsck/journal.c): read and check the journal
    /// superblock ([`JournalSuperblock::parse`]), compare `s_blocksize` with the filesystem
    /// and `s_maxlen` with the inode, and set up the log bounds.
    ///
    /// `JournalSuperblock(..)` / `JournalSuperblockChecksum` for a bad superblock,
    /// `Unsupported` for unknown features, fast commits or a journal shared by several
    /// filesystems.
    pub fn load(dev: &mut Disk, loc: JournalLoc, fs_block_size: u32) -> Result<Journal> {
        let sb_block = loc.bmap(0)?;
        let buf = dev.read_block_as(sb_block, Zone::Journal)?;
        let jsb = JournalSuperblock::parse(&buf)?;
        if jsb.has_incompat(JBD2_FEATURE_INCOMPAT_FAST_COMMIT) {
            return Err(Error::Unsupported("journal fast commits".into()));
        }
        jsb.check_geometry(fs_block_size, u64::from(loc.inode_blocks))?;
        Ok(Journal {
            block_size: fs_block_size,
            total_len: jsb.s_maxlen.min(loc.inode_blocks),
            first: jsb.s_first,
            last: jsb.s_maxlen,
            tail_sequence: jsb.s_sequence,
            transaction_sequence: jsb.s_sequence,
            failed_commit: None,
            revoke: RevokeTable::new(),
            sb_buffer: buf.to_vec(),
            replayer: Replayer::E2fsck,
            loc,
            jsb,
        })
    }

    /// e2fsck's refusal of a journal shared by several filesystems
    /// (`PR_0_JOURNAL_UNSUPP_MULTIFS`, after [`clear_v2_journal_fields`] has had its say);
    /// the kernel's mount does not look at `s_nr_users`.
    pub fn check_users(&self) -> Result<()> {
        if self.jsb.is_v2() && self.jsb.s_nr_users > 1 {
            return Err(Error::Unsupported(format!(
                "journal shared by {} filesystems",
                self.jsb.s_nr_users
            )));
        }
        Ok(())
    }

    /// Model of `jread()` (fs/jbd2/recovery.c): read log block `offset`.
    /// `JournalRecovery(..)` (the kernel's `-EFSCORRUPTED`) past `j_total_len`.
    pub fn jread(&self, dev: &mut Disk, offset: u64) -> Result<Block> {
        if offset >= u64::from(self.total_len) {
            return Err(Error::Corrupt(CorruptKind::JournalRecovery(
                "log block past the end of the journal",
            )));
        }
        let blk = self.loc.bmap(offset)?;
        dev.read_block_as(blk, Zone::Journal)
    }

    /// The `wrap()` macro of recovery.c: a log position at or past `j_last` continues at
    /// `j_first`.
    pub fn wrap(&self, var: u64) -> u64 {
        if var >= u64::from(self.last) {
            var - u64::from(self.last - self.first)
        } else {
            var
        }
    }

    /// Write [`Journal::jsb`] (checksum recomputed with csum v2/v3) over the first 1024
    /// bytes of the superblock buffer read at load, and that block to journal block 0.
    pub fn write_superblock(&mut self, dev: &mut Disk) -> Result<()> {
        let blk = self.loc.bmap(0)?;
        self.sb_buffer[..1024].copy_from_slice(&self.jsb.to_bytes());
        dev.write_as(blk, &self.sb_buffer, Zone::Journal)
    }
}

/// Read and parse the primary filesystem superblock through `dev`.
pub fn read_fs_superblock(dev: &mut Disk) -> Result<Superblock> {
    let (blk, off) = fs_superblock_location(dev.block_size());
    if blk >= dev.nr_blocks() {
        return Err(Error::Corrupt(CorruptKind::Truncated {
            what: "superblock",
        }));
    }
    let buf = dev.read_block_as(Pblk(blk), Zone::Superblock)?;
    Superblock::parse(&buf[off..])
}

/// Write `sb` as the primary superblock (checksum recomputed with metadata_csum).
pub fn write_fs_superblock(dev: &mut Disk, sb: &Superblock) -> Result<()> {
    let (blk, off) = fs_superblock_location(dev.block_size());
    let mut buf = dev.read_block_as(Pblk(blk), Zone::Superblock)?.to_vec();
    buf[off..off + 1024].copy_from_slice(&sb.to_bytes());
    dev.write_as(Pblk(blk), &buf, Zone::Superblock)
}

/// (block, offset) of byte 1024 on a device of `bs`-byte blocks.
fn fs_superblock_location(bs: u32) -> (u64, usize) {
    let bs = u64::from(bs);
    (SUPERBLOCK_OFFSET / bs, (SUPERBLOCK_OFFSET % bs) as usize)
}

/// Lays transactions out in a journal's log the way `jbd2_journal_commit_transaction()`
/// does, from log block `next` on, wrapping from `j_last` to `j_first`. The journal
/// superblock is not touched: set `s_start`/`s_sequence` yourself.
pub struct LogWriter<'a> {
    dev: &'a mut Disk,
    journal: &'a Journal,
    /// The next log block to write.
    pub next: u64,
    /// Running v1 checksum (`crc32_be`) of the current transaction's descriptor and data
    /// blocks, for a `COMPAT_CHECKSUM` journal's commit block.
    crc32_sum: u32,
}

impl<'a> LogWriter<'a> {
    /// A writer starting at log block `start`.
    pub fn new(dev: &'a mut Disk, journal: &'a Journal, start: u64) -> LogWriter<'a> {
        LogWriter {
            dev,
            journal,
            next: start,
            crc32_sum: !0,
        }
    }

    /// The journal being written.
    pub fn journal(&self) -> &Journal {
        self.journal
    }

    /// Write `data` (one block) at the next log block; returns the log block used.
    pub fn block(&mut self, data: &[u8]) -> Result<u64> {
        let at = self.next;
        let blk = self.journal.loc.bmap(at)?;
        self.dev.write_as(blk, data, Zone::Journal)?;
        self.next = self.journal.wrap(at + 1);
        Ok(at)
    }

    /// Log `blocks` (home block, content) for transaction `tid`: descriptor blocks of at most
    /// [`descriptor_capacity`] tags, each followed by its data blocks, escaped where needed,
    /// with tag checksums over the logged copies.
    ///
    /// # Panics
    /// If a home block needs more than 32 bits without `64BIT` ([`build_descriptor`]).
    pub fn descriptor(&mut self, tid: Tid, blocks: &[(u64, Vec<u8>)]) -> Result<()> {
        let jsb = &self.journal.jsb;
        let bs = self.journal.block_size as usize;
        for chunk in blocks.chunks(descriptor_capacity(jsb, bs).max(1)) {
            let mut logged = Vec::with_capacity(chunk.len());
            let mut tags = Vec::with_capacity(chunk.len());
            for (home, data) in chunk {
                let mut copy = data.clone();
                let flags = if escape(&mut copy) {
                    JBD2_FLAG_ESCAPE
                } else {
                    0
                };
                let checksum = block_tag_csum(jsb, tid, &copy);
                tags.push(BlockTag {
                    blocknr: *home,
                    flags,
                    checksum,
                });
                logged.push(copy);
            }
            let desc = build_descriptor(tid, &tags, jsb, bs);
            self.checksummed(&desc)?;
            for copy in &logged {
                self.checksummed(copy)?;
            }
        }
        Ok(())
    }

    fn checksummed(&mut self, data: &[u8]) -> Result<u64> {
        self.crc32_sum = crc32_be(self.crc32_sum, data);
        self.block(data)
    }

    /// Log revoke records for `blocks` in transaction `tid` (one or more revoke blocks).
    pub fn revoke(&mut self, tid: Tid, blocks: &[u64]) -> Result<()> {
        let bs = self.journal.block_size as usize;
        for buf in build_revoke(tid, blocks, &self.journal.jsb, bs) {
            self.block(&buf)?;
        }
        Ok(())
    }

    /// Log the commit block of `tid` with commit time `sec`; returns its log block. A v1
    /// (`COMPAT_CHECKSUM`) journal gets the crc32_be of the transaction's blocks.
    pub fn commit(&mut self, tid: Tid, sec: u64) -> Result<u64> {
        let jsb = &self.journal.jsb;
        let bs = self.journal.block_size as usize;
        let buf = if jsb.csum_v1() {
            let mut b = vec![0u8; bs];
            JournalHeader::new(JBD2_COMMIT_BLOCK, tid).write(&mut b);
            b[0xC] = JBD2_CRC32_CHKSUM;
            b[0xD] = JBD2_CRC32_CHKSUM_SIZE;
            write_u32be(&mut b, 0x10, self.crc32_sum);
            write_u64be(&mut b, 0x30, sec);
            b
        } else {
            build_commit(tid, sec, 0, jsb, bs)
        };
        self.crc32_sum = !0;
        self.block(&buf)
    }

    /// Write a descriptor-shaped block whose checksum tail is wrong (for tests of
    /// `need_check_commit_time`): `tags` as given, then the tail flipped.
    pub fn bad_descriptor(&mut self, tid: Tid, tags: &[BlockTag]) -> Result<u64> {
        let jsb = &self.journal.jsb;
        let mut desc = build_descriptor(tid, tags, jsb, self.journal.block_size as usize);
        descriptor_block_csum_set(jsb, &mut desc);
        let last = desc.len() - 1;
        desc[last] ^= 0xFF;
        self.block(&desc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testimg::Img;

    fn load(img: &Img) -> (Disk, Superblock) {
        let mut dev = Disk::load(&img.0, 1024).unwrap();
        let sb = read_fs_superblock(&mut dev).unwrap();
        (dev, sb)
    }

    #[test]
    fn finds_mke2fs_journal_extent_and_indirect() {
        for features in ["64bit", "^extent,^64bit"] {
            let Some(img) = Img::mkfs("jloc", Some(features)) else {
                return;
            };
            let (mut dev, sb) = load(&img);
            let loc = JournalLoc::find(&mut dev, &sb).unwrap();
            assert_eq!((loc.ino, loc.inode_blocks), (Ino(8), 1024), "{features}");
            assert_eq!(loc.rewrite, None);
            for lblk in [0u64, 1, 11, 12, 500, 1023] {
                assert_eq!(
                    loc.bmap(lblk).unwrap().0,
                    img.bmap("<8>", lblk),
                    "{features}"
                );
            }
            let unmapped = Err(bad_inode("journal block not mapped"));
            assert_eq!(loc.bmap(1024), unmapped);
            let j = Journal::load(&mut dev, loc, 1024).unwrap();
            assert_eq!((j.first, j.last, j.total_len), (1, 1024, 1024));
            assert_eq!((j.tail_sequence, j.jsb.s_start), (Tid(1), 0));
            assert_eq!(j.wrap(1024), 1);
            assert_eq!(j.wrap(1023), 1023);
            let past = Err(Error::Corrupt(CorruptKind::JournalRecovery(
                "log block past the end of the journal",
            )));
            assert_eq!(j.jread(&mut dev, 1024).map(|_| ()), past);
        }
    }

    #[test]
    fn bad_inode_falls_back_to_s_jnl_blocks() {
        let Some(img) = Img::mkfs("jloc-backup", Some("^extent,^64bit")) else {
            return;
        };
        img.debugfs("sif <8> links_count 0");
        let (mut dev, sb) = load(&img);
        let loc = JournalLoc::find(&mut dev, &sb).unwrap();
        let rewrite = loc.rewrite.clone().expect("backup used");
        assert_eq!(loc.bmap(700).unwrap().0, img.bmap("<8>", 700));
        let rec = Inode::parse(&rewrite.raw, 256, Ino(8)).unwrap();
        assert_eq!(
            (rec.i_links_count, rec.i_mode, rec.i_size),
            (1, 0o100600, 1 << 20)
        );
        assert_eq!((rec.i_atime, rec.i_blocks, rec.i_flags), (0, 0, 0));
        let seed = sb.csum_seed();
        assert!(inode::inode_csum_verify(seed, Ino(8), &rewrite.raw, 256));

        // Extent-mapped: the backup is read as an indirect map, so it fails as in e2fsck.
        let Some(img) = Img::mkfs("jloc-backup-ext", None) else {
            return;
        };
        img.debugfs("sif <8> mode 040755");
        let (mut dev, sb) = load(&img);
        assert_eq!(
            JournalLoc::find(&mut dev, &sb),
            Err(bad_inode("bad block map"))
        );
    }

    #[test]
    fn journal_inode_number_and_external_journal() {
        let Some(img) = Img::mkfs("jloc-ino", None) else {
            return;
        };
        let (mut dev, mut sb) = load(&img);
        sb.s_journal_inum = 0;
        let range = Err(bad_inode("s_journal_inum out of range"));
        assert_eq!(JournalLoc::find(&mut dev, &sb), range);
        sb.s_journal_inum = 2; // the root directory
        sb.s_jnl_backup_type = 0;
        let not_file = Err(bad_inode("not a regular file in use"));
        assert_eq!(JournalLoc::find(&mut dev, &sb), not_file);
        sb.s_journal_uuid[3] = 1;
        assert!(matches!(
            JournalLoc::find(&mut dev, &sb),
            Err(Error::Unsupported(_))
        ));
    }
}
