//! Test support for the mkfs tests: read a made filesystem back through the format layer
//! only (no engine code) and check everything e2fsck would: checksums, exact free counts,
//! bitmap padding, file sizes and block counts, block ownership, directory entries, the journal.

use super::files::lost_and_found_blocks;
use super::{geometry, mkfs, MkfsOpts, INODE_SIZE};
use crate::dev::Disk;
use crate::format::bitmap::{self, count_set};
use crate::format::blockmap::{self, BlockMap, WalkCtx};
use crate::format::dir::{self, parse_block};
use crate::format::group_desc::{self, GroupDesc, EXT4_BG_INODE_ZEROED};
use crate::format::inode::{self as fi, Inode};
use crate::format::jbd2::JournalSuperblock;
use crate::format::superblock::{self as sbf, Superblock};
use crate::fs::mount::EPOCH;
use crate::units::{Ino, Pblk};
use std::collections::BTreeSet;

pub(super) fn opts(size: u64, bs: u32, extents: bool, csum: bool) -> MkfsOpts {
    MkfsOpts {
        size_bytes: size,
        block_size: bs,
        extents,
        metadata_csum: csum,
        ..MkfsOpts::default()
    }
}

/// A made filesystem read back through the format layer only.
pub(super) struct Image {
    pub(super) disk: Disk,
    pub(super) sb: Superblock,
    pub(super) gds: Vec<GroupDesc>,
}

impl Image {
    pub(super) fn new(o: &MkfsOpts) -> Image {
        let disk = mkfs(o).unwrap();
        let bs = u64::from(o.block_size);
        let head = disk.peek_block(Pblk(sbf::SUPERBLOCK_OFFSET / bs));
        let off = (sbf::SUPERBLOCK_OFFSET % bs) as usize;
        let sb = Superblock::parse(&head[off..off + sbf::SUPERBLOCK_SIZE]).unwrap();
        let gdt: Vec<u8> = (0..u64::from(sb.gdt_blocks()))
            .flat_map(|i| disk.peek_block(Pblk(sb.gdt_block(0) + i)).to_vec())
            .collect();
        let gds = group_desc::parse_table(&sb, &gdt).unwrap();
        Image { disk, sb, gds }
    }

    pub(super) fn block(&self, b: u64) -> Vec<u8> {
        self.disk.peek_block(Pblk(b)).to_vec()
    }

    pub(super) fn inode(&self, ino: u32) -> (Inode, Vec<u8>) {
        let isz = INODE_SIZE as usize;
        let (g, i) = (
            (ino - 1) / self.sb.s_inodes_per_group,
            (ino - 1) % self.sb.s_inodes_per_group,
        );
        let byte = self.gds[g as usize].bg_inode_table * u64::from(self.sb.block_size())
            + u64::from(i) * u64::from(INODE_SIZE);
        let bs = u64::from(self.sb.block_size());
        let raw = self.block(byte / bs)[(byte % bs) as usize..][..isz].to_vec();
        (Inode::parse(&raw, isz, Ino(ino)).unwrap(), raw)
    }

    pub(super) fn map(&self, ino: u32) -> BlockMap {
        let (inode, _) = self.inode(ino);
        let seed = self
            .sb
            .metadata_csum()
            .then(|| fi::inode_csum_seed(self.sb.csum_seed(), Ino(ino), 0));
        let disk = self.disk.clone();
        let mut read = |b: Pblk| Ok(disk.peek_block(b));
        let mut ctx = WalkCtx {
            ino: Ino(ino),
            block_size: self.sb.block_size(),
            first_block: u64::from(self.sb.s_first_data_block),
            nr_blocks: self.sb.s_blocks_count,
            csum_seed: seed,
            read: &mut read,
        };
        blockmap::walk(
            &mut ctx,
            &inode.i_block_bytes(),
            inode.has_flag(fi::EXT4_EXTENTS_FL),
        )
        .unwrap()
    }

    pub(super) fn block_in_use(&self, b: u64) -> bool {
        let g = self.sb.group_of_block(b);
        let bits = self.block(self.gds[g as usize].bg_block_bitmap);
        bitmap::test_bit(&bits, (b - self.sb.group_first_block(g)) as u32)
    }
}

/// Superblock, descriptors, bitmaps: parse, checksums, exact free counts, padding.
pub(super) fn check_tables(img: &Image) {
    let sb = &img.sb;
    sb.verify_checksum().unwrap();
    sb.check_supported().unwrap();
    group_desc::check_descriptors(sb, &img.gds).unwrap();
    let bits = sb.block_size() * 8;
    let (mut free_b, mut free_i) = (0u64, 0u32);
    for (g, gd) in (0u32..).zip(&img.gds) {
        let bb = img.block(gd.bg_block_bitmap);
        let ib = img.block(gd.bg_inode_bitmap);
        let n = sb.blocks_in_group(g);
        assert_eq!(
            n - count_set(&bb, 0, n),
            gd.bg_free_blocks_count,
            "group {g}"
        );
        assert_eq!(count_set(&bb, n, bits), bits - n, "group {g} block padding");
        let ipg = sb.s_inodes_per_group;
        assert_eq!(
            ipg - count_set(&ib, 0, ipg),
            gd.bg_free_inodes_count,
            "group {g}"
        );
        assert_eq!(
            count_set(&ib, ipg, bits),
            bits - ipg,
            "group {g} inode padding"
        );
        bitmap::block_bitmap_csum_verify(sb, g, gd, &bb).unwrap();
        bitmap::inode_bitmap_csum_verify(sb, g, gd, &ib).unwrap();
        assert_eq!(gd.bg_flags, EXT4_BG_INODE_ZEROED);
        let unused = match (sb.metadata_csum(), g) {
            (false, _) => 0,
            (true, 0) => ipg - 11,
            (true, _) => ipg,
        };
        assert_eq!(gd.bg_itable_unused, unused, "group {g}");
        assert_eq!(gd.bg_used_dirs_count, if g == 0 { 2 } else { 0 });
        (free_b, free_i) = (
            free_b + u64::from(gd.bg_free_blocks_count),
            free_i + gd.bg_free_inodes_count,
        );
        if g > 0 && sb.bg_has_super(g) {
            let copy = Superblock::parse(&img.block(sb.group_first_block(g))[..1024]).unwrap();
            copy.verify_checksum().unwrap();
            assert_eq!((copy.s_block_group_nr, copy.s_state), (g as u16, 0));
        }
    }
    assert_eq!(
        (sb.s_free_blocks_count, sb.s_free_inodes_count),
        (free_b, free_i)
    );
    assert_eq!(free_i, sb.s_inodes_count - 11);
}

/// Inodes 2, 8, 11: checksums, sizes, block counts, maps inside the bitmaps, no block
/// owned twice; directory blocks and the journal superblock.
pub(super) fn check_files(img: &Image, o: &MkfsOpts) {
    let sb = &img.sb;
    let bs = sb.block_size();
    let jblocks = geometry(o).unwrap().journal_blocks;
    let lpf = lost_and_found_blocks(bs);
    let mut owned = BTreeSet::new();
    for (ino, mode, links, nblocks) in [
        (2, 0o40755, 3, 1),
        (11, 0o40700, 2, lpf),
        (8, 0o100600, 1, jblocks),
    ] {
        let (inode, raw) = img.inode(ino);
        if o.metadata_csum {
            assert!(
                fi::inode_csum_verify(sb.csum_seed(), Ino(ino), &raw, 256),
                "inode {ino}"
            );
        }
        assert_eq!(
            (inode.i_mode, inode.i_links_count, inode.i_extra_isize),
            (mode, links, 32)
        );
        assert_eq!(inode.has_flag(fi::EXT4_EXTENTS_FL), o.extents);
        assert_eq!(
            (inode.i_mtime, inode.i_crtime, inode.i_generation),
            (EPOCH, EPOCH, 0)
        );
        let map = img.map(ino);
        assert_eq!(map.runs[0].lblk, 0);
        assert_eq!(
            (map.data_blocks(), inode.i_size),
            (u64::from(nblocks), u64::from(nblocks) * u64::from(bs))
        );
        let total = map.data_blocks() + map.meta.len() as u64;
        assert_eq!(
            inode.i_blocks,
            total * u64::from(bs) / 512,
            "inode {ino} i_blocks"
        );
        let blocks = map
            .runs
            .iter()
            .flat_map(|r| (0..u64::from(r.len)).map(move |i| r.pblk + i));
        for b in blocks.chain(map.meta.iter().map(|m| m.pblk)) {
            assert!(
                img.block_in_use(b) && owned.insert(b),
                "inode {ino}: block {b}"
            );
        }
        if ino != 8 {
            for (i, b) in (0u64..).zip(
                map.runs
                    .iter()
                    .flat_map(|r| (0..u64::from(r.len)).map(move |i| r.pblk + i)),
            ) {
                check_dir_block(img, ino, &img.block(b), i);
            }
        } else {
            assert_eq!(sb.s_jnl_blocks[..15], inode.i_block);
            assert_eq!(sb.s_jnl_blocks[15..], [0, inode.i_size as u32]);
            let jsb = JournalSuperblock::parse(&img.block(map.runs[0].pblk)).unwrap();
            jsb.check_geometry(bs, u64::from(jblocks)).unwrap();
            assert_eq!(
                (jsb.s_maxlen, jsb.csum_v2or3(), jsb.s_uuid),
                (jblocks, o.metadata_csum, o.uuid)
            );
        }
    }
    let meta: u64 = (0..sb.groups_count())
        .map(|g| {
            let has = if sb.bg_has_super(g) {
                1 + u64::from(sb.gdt_blocks())
            } else {
                0
            };
            has + 2 + u64::from(sb.itable_blocks())
        })
        .sum();
    let used = sb.s_blocks_count - u64::from(sb.s_first_data_block) - sb.s_free_blocks_count;
    assert_eq!(used, meta + owned.len() as u64, "every used block is owned");
}

fn check_dir_block(img: &Image, ino: u32, buf: &[u8], lblk: u64) {
    let csum = img.sb.metadata_csum();
    if csum {
        let seed = fi::inode_csum_seed(img.sb.csum_seed(), Ino(ino), 0);
        dir::dirblock_csum_verify(seed, buf, Ino(ino)).unwrap();
    }
    let names: Vec<(u32, Vec<u8>)> = parse_block(buf, Ino(ino), csum)
        .unwrap()
        .into_iter()
        .filter(|e| e.inode != 0)
        .map(|e| (e.inode, e.name))
        .collect();
    let want: Vec<(u32, &[u8])> = match (ino, lblk) {
        (2, _) => vec![(2, b"."), (2, b".."), (11, b"lost+found")],
        (_, 0) => vec![(11, b"."), (2, b"..")],
        _ => vec![],
    };
    assert_eq!(
        names,
        want.into_iter()
            .map(|(i, n)| (i, n.to_vec()))
            .collect::<Vec<_>>()
    );
}
