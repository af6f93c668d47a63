//! Allocation at group boundaries and when the filesystem is full (issue 3): runs continue
//! into the next group, a full filesystem gives the typed `NoSpace` error and stays
//! consistent, and an injected ENOSPC in the middle of a write leaves nothing allocated or
//! charged.

use crate::util::*;
use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::Error;

fn fresh(extents: bool) -> Fs {
    let opts = MkfsOpts {
        size_bytes: 16 << 20,
        extents,
        ..MkfsOpts::default()
    };
    Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap()
}

fn check_clean(fs: Fs, tag: &str) {
    let mut dev = fs.unmount().unwrap();
    let report = e4fuzz::oracle::fsck::check(&mut dev).unwrap();
    assert!(report.is_clean(), "{tag}: {:?}", report.problems);
    if have_e2fsprogs(tag) {
        let t = TempDir::new(tag);
        dev.save(&t.path("img")).unwrap();
        assert_e2fsck_clean(&t.path("img"));
    }
}

#[test]
fn files_grow_across_group_boundaries_and_fill_the_fs() {
    for extents in [true, false] {
        let mut fs = fresh(extents);
        assert!(fs.sb.groups_count() >= 2);
        let g1 = fs.sb.group_first_block(1);
        let ino = fs.create("/big", 0o644).unwrap();
        let chunk = vec![0xA7u8; 64 << 10];
        let mut off = 0u64;
        let err = loop {
            match fs.write_file(ino, off, &chunk) {
                Ok(()) => off += chunk.len() as u64,
                Err(e) => break e,
            }
            assert!(off < 32 << 20, "never ran out of space");
        };
        assert_eq!(err, Error::NoSpace, "extents={extents}");
        let map = fs
            .map_blocks(
                None,
                ino,
                e4fuzz::Lblk(0),
                1,
                e4fuzz::fs::map::MapFlags::LOOKUP,
            )
            .unwrap();
        assert!(map.is_mapped());
        // The file spans both groups: some block of it lies past the first group.
        let last = fs
            .map_blocks(
                None,
                ino,
                e4fuzz::Lblk((off / 1024) as u32 - 1),
                1,
                e4fuzz::fs::map::MapFlags::LOOKUP,
            )
            .unwrap();
        assert!(
            last.pblk.0 >= g1,
            "extents={extents}: the last block {} is in group 0",
            last.pblk
        );
        assert!(
            fs.sb.s_free_blocks_count < 64,
            "nearly full: {}",
            fs.sb.s_free_blocks_count
        );
        let size = fs.inode(ino).raw.i_size;
        assert_eq!(
            fs.read_file(ino, 0, size).unwrap(),
            vec![0xA7u8; size as usize]
        );
        // Freeing makes room again.
        fs.truncate_file(ino, 1 << 20).unwrap();
        fs.write_file(ino, 2 << 20, &chunk).unwrap();
        check_clean(fs, if extents { "full-ext" } else { "full-ind" });
    }
}

#[test]
fn injected_enospc_mid_write_leaves_nothing_behind() {
    for extents in [true, false] {
        for at in 0..6 {
            let mut fs = fresh(extents);
            let ino = fs.create("/f", 0o644).unwrap();
            fs.write_file(ino, 0, &[1u8; 3000]).unwrap();
            let free = fs.sb.s_free_blocks_count;
            let blocks = fs.inode(ino).raw.i_blocks;
            fs.inject_enospc(Some(at));
            // A write far away needs new tree/indirect blocks and data blocks.
            let r = fs.write_file(ino, 70_000 * 1024, &[2u8; 4096]);
            fs.inject_enospc(None);
            match r {
                Err(Error::NoSpace) => {}
                Ok(()) => continue, // fewer allocations than `at`: nothing injected
                Err(e) => panic!("extents={extents} at={at}: {e}"),
            }
            // Whatever blocks the failed write kept are mapped and accounted; the rest were
            // released (the kernel's failure paths free what they allocated).
            let size = fs.inode(ino).raw.i_size;
            assert_eq!(fs.read_file(ino, 0, 3000).unwrap(), vec![1u8; 3000]);
            assert!(fs.sb.s_free_blocks_count <= free && fs.inode(ino).raw.i_blocks >= blocks);
            assert!(size >= 3000);
            check_clean(fs, &format!("enospc-{extents}-{at}"));
        }
    }
}
