//! Tests of the checker's block-map walk (`super`).

use super::*;
use crate::bytes::{write_u16le, write_u32le};
use crate::dev::Disk;
use crate::format::group_desc::testutil::mkfs;
use crate::units::Pblk;

/// A raw extent node of `size` bytes: `(lblk, raw len, pblk)` entries.
fn node(size: usize, depth: u16, entries: &[(u32, u16, u64)]) -> Vec<u8> {
    let mut b = vec![0u8; size];
    write_u16le(&mut b, 0, EXT4_EXT_MAGIC);
    write_u16le(&mut b, 2, entries.len() as u16);
    write_u16le(&mut b, 4, ((size - 12) / 12) as u16);
    write_u16le(&mut b, 6, depth);
    for (i, &(lblk, len, pblk)) in entries.iter().enumerate() {
        let off = 12 + 12 * i;
        write_u32le(&mut b, off, lblk);
        if depth == 0 {
            write_u16le(&mut b, off + 4, len);
            write_u16le(&mut b, off + 6, (pblk >> 32) as u16);
            write_u32le(&mut b, off + 8, pblk as u32);
        } else {
            write_u32le(&mut b, off + 4, pblk as u32);
            write_u16le(&mut b, off + 8, (pblk >> 32) as u16);
        }
    }
    b
}

fn root(depth: u16, entries: &[(u32, u16, u64)]) -> [u8; 60] {
    node(60, depth, entries).try_into().unwrap()
}

fn pointers(p: &[(usize, u32)]) -> [u8; 60] {
    let mut b = [0u8; 60];
    p.iter().for_each(|&(i, v)| write_u32le(&mut b, 4 * i, v));
    b
}

fn input(i_block: [u8; 60], extents: bool, is_dir: bool, size: u64) -> WalkIn {
    WalkIn {
        ino: 12,
        i_block,
        extents,
        is_dir,
        is_reg: !is_dir,
        size,
        size_high: false,
        verity: false,
        csum_seed: None,
        inode_csum_bad: false,
    }
}

/// A 4 MiB 1 KiB-block ext4 disk (4096 blocks) with `blocks` written over it.
fn disk(blocks: &[(u64, Vec<u8>)]) -> Option<Disk> {
    let img = mkfs("-t ext4 -b 1024", 4 << 20)?;
    let mut dev = Disk::load(&img.path, 1024).unwrap();
    for (b, data) in blocks {
        dev.write(Pblk(*b), data).unwrap();
    }
    Some(dev)
}

/// Walk `w` on `dev`: the output and the codes reported.
fn walk(dev: &Disk, w: &WalkIn) -> (WalkOut, Vec<P>) {
    let mut f = Fsck::open(dev).unwrap();
    f.mark_table_blocks();
    f.problems.clear();
    let out = f.walk_blocks(w);
    (out, f.problems.iter().map(|p| p.code).collect())
}

#[test]
fn header_rules_and_depth_limit() {
    let good = root(0, &[(0, 1, 100)]);
    assert!(header_verify(&good));
    let mut slack = good;
    slack[4] = 2; // eh_max 2 of 4: allowed
    assert!(header_verify(&slack));
    slack[4] = 1;
    assert!(!header_verify(&slack), "eh_entries > eh_max");
    let mut bad = good;
    bad[0] = 0;
    assert!(!header_verify(&bad));
    assert_eq!((max_extent_depth(1024), max_extent_depth(4096)), (5, 4));
}

#[test]
fn a_sound_tree_counts_every_block() {
    let leaf = node(
        1024,
        0,
        &[(0, 5, 3100), (10, 2, 3110), (20, 32768 + 4, 3120)],
    );
    let Some(dev) = disk(&[(3000, leaf)]) else {
        return;
    };
    let (out, codes) = walk(
        &dev,
        &input(root(1, &[(0, 0, 3000)]), true, false, 30 * 1024),
    );
    assert_eq!(codes, []);
    assert_eq!(out.num_blocks, 12);
    assert_eq!((out.last_block, out.last_init_lblock), (23, 11));
    let claims = [
        (3100, 5, true),
        (3110, 2, true),
        (3120, 4, true),
        (3000, 1, true),
    ];
    assert_eq!(out.claims, claims);
}

#[test]
fn bad_leaf_entries_are_reported_and_skipped() {
    let entries = [
        (10, 5, 3100),
        (5, 2, 3200),
        (14, 1, 3300),
        (20, 0, 3400),
        (30, 2, 5000),
        (40, 2, 4095),
    ];
    let Some(dev) = disk(&[(3000, node(1024, 0, &entries))]) else {
        return;
    };
    let (out, codes) = walk(
        &dev,
        &input(root(1, &[(10, 0, 3000)]), true, false, 50 << 10),
    );
    let want = [
        P::PR_1_OUT_OF_ORDER_EXTENTS,
        P::PR_1_EXTENT_COLLISION,
        P::PR_1_EXTENT_LENGTH_ZERO,
        P::PR_1_EXTENT_BAD_START_BLK,
        P::PR_1_EXTENT_ENDS_BEYOND,
    ];
    assert_eq!(codes, want);
    assert_eq!(out.num_blocks, 6, "five data blocks and the leaf");
}

#[test]
fn index_ranges_bound_their_children() {
    let left = node(1024, 0, &[(0, 2, 3100), (99, 5, 3110)]);
    let right = node(1024, 0, &[(101, 1, 3120)]);
    let Some(dev) = disk(&[(3000, left), (3001, right)]) else {
        return;
    };
    let tree = root(1, &[(0, 0, 3000), (100, 0, 3001)]);
    let (out, codes) = walk(&dev, &input(tree, true, false, 102 << 10));
    assert_eq!(
        codes,
        [
            P::PR_1_EXTENT_END_OUT_OF_BOUNDS,
            P::PR_1_EXTENT_INDEX_START_INVALID
        ]
    );
    assert_eq!(out.num_blocks, 2 + 1 + 2);
    // Past the index's range (which ends at end of file, block 49), unwritten: allowed.
    let left = node(1024, 0, &[(0, 2, 3100), (99, 32768 + 5, 3110)]);
    let Some(dev) = disk(&[(3000, left)]) else {
        return;
    };
    let (out, codes) = walk(
        &dev,
        &input(root(1, &[(0, 0, 3000)]), true, false, 50 << 10),
    );
    assert_eq!(codes, []);
    assert_eq!(
        (out.num_blocks, out.last_init_lblock, out.last_block),
        (8, 1, 103)
    );
}

#[test]
fn bad_child_nodes_and_checksums() {
    let mut wrong_depth = node(1024, 1, &[(0, 0, 3100)]);
    wrong_depth[6] = 1;
    let Some(dev) = disk(&[(3000, vec![0; 1024]), (3001, wrong_depth)]) else {
        return;
    };
    let tree = root(1, &[(0, 0, 3000), (10, 0, 3001)]);
    let (out, codes) = walk(&dev, &input(tree, true, false, 20 << 10));
    assert_eq!(codes, [P::PR_1_EXTENT_HEADER_INVALID; 2]);
    assert_eq!(out.num_blocks, 0, "nodes with bad headers are not counted");
    let seed = 0x1234_5678;
    let mut good = node(1024, 0, &[(0, 1, 3100)]);
    extent::extent_block_csum_set(seed, &mut good);
    let bad = node(1024, 0, &[(1, 1, 3101)]);
    let Some(dev) = disk(&[(3000, good), (3001, bad)]) else {
        return;
    };
    let mut w = input(root(1, &[(0, 0, 3000), (1, 0, 3001)]), true, false, 2 << 10);
    w.csum_seed = Some(seed);
    let mut f = Fsck::open(&dev).unwrap();
    f.problems.clear();
    let out = f.walk_blocks(&w);
    assert_eq!(out.num_blocks, 4);
    let got: Vec<(P, u64)> = f
        .problems
        .iter()
        .map(|p| (p.code, p.blk.unwrap().0))
        .collect();
    assert_eq!(got, [(P::PR_1_EXTENT_ONLY_CSUM_INVALID, 3001)]);
}

#[test]
fn indirect_maps_skip_illegal_pointers() {
    let mut ind = vec![0u8; 1024];
    write_u32le(&mut ind, 0, 3101);
    write_u32le(&mut ind, 8, 7777);
    let Some(dev) = disk(&[(3000, ind)]) else {
        return;
    };
    let map = pointers(&[(0, 3100), (1, 9999), (12, 3000), (13, 8888)]);
    let (out, codes) = walk(&dev, &input(map, false, false, 20 << 10));
    assert_eq!(codes, [P::PR_1_ILLEGAL_BLOCK_NUM; 3]);
    assert_eq!((out.num_blocks, out.last_block), (3, 12));
    let all_bad: Vec<(usize, u32)> = (0..13).map(|i| (i, 50_000 + i as u32)).collect();
    let (_, codes) = walk(&dev, &input(pointers(&all_bad), false, false, 20 << 10));
    let mut want = vec![P::PR_1_ILLEGAL_BLOCK_NUM; 11];
    want.push(P::PR_1_TOO_MANY_BAD_BLOCKS);
    assert_eq!(codes, want);
}

#[test]
fn directory_holes_are_runs() {
    let Some(dev) = disk(&[]) else {
        return;
    };
    let tree = root(0, &[(2, 1, 3100), (5, 2, 3102)]);
    let (out, codes) = walk(&dev, &input(tree, true, true, 7 << 10));
    assert_eq!(codes, [P::PR_1_COLLAPSE_DBLOCK; 2]);
    let d = |lblk, pblk, count| DirBlock {
        ino: 12,
        lblk,
        pblk,
        count,
    };
    let want = [
        d(0, 0, 2),
        d(2, 3100, 1),
        d(3, 0, 2),
        d(5, 3102, 1),
        d(6, 3103, 1),
    ];
    assert_eq!(out.dir_blocks, want);
    let (out, codes) = walk(&dev, &input(pointers(&[(2, 3100)]), false, true, 3 << 10));
    assert_eq!(codes, []);
    assert_eq!(out.dir_blocks, [d(0, 0, 2), d(2, 3100, 1)]);
}
