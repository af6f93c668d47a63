//! Model of `ext4_ind_migrate()` (fs/ext4/migrate.c, 996bb9fddd5b): the reverse conversion
//! that `chattr -e` asks for, for the simplest extent files only: a depth-0 tree with at most
//! one extent that ends below logical block 12, so the blocks fit the 12 direct pointers.
//!
//! Locks, as the kernel: (ioctl: `i_rwsem`) → `s_writepages_rwsem` (write) → handle (1 credit)
//! → `i_data_sem` (write). Delayed allocation is not modelled (the engine allocates at write
//! time, `nodelalloc`), so the kernel's `ext4_alloc_da_blocks()` has nothing to do.
//!
//! Seeded bugs: S9 (7444a072c387) fills `i_data[0..len]`, ignoring `ee_block`; S10
//! (d6f123a92974) checks only `len ≤ 12`, not `ee_block + len − 1 < 12`. The C loop then writes
//! past `i_data[14]` into the fields after it; the model stores only the 15 slots that exist.
//! U5 (mainline): `i_size` is not checked, so an empty extent file of a terabyte becomes an
//! indirect-mapped file no indirect map can reach the end of (`fixed` refuses, `EOPNOTSUPP`).

use crate::error::{Error, Result};
use crate::format::extent::{ExtentNode, NodeEntries};
use crate::format::indirect::{EXT4_NDIR_BLOCKS, EXT4_N_BLOCKS};
use crate::format::inode::EXT4_EXTENTS_FL;
use crate::format::superblock::EXT4_FEATURE_RO_COMPAT_BIGALLOC;
use crate::fs::map::indirect::EXT4_MAX_BLOCK_FILE_PHYS;
use crate::fs::{Fs, Handle};
use crate::ops::locks::{i_data_sem, i_rwsem, journal_start, journal_stop};
use crate::profile::Bug;
use crate::sched::{Cx, LockId, Mode};
use crate::units::Ino;

/// `chattr -e` through `EXT4_IOC_SETFLAGS` (fs/ext4/ioctl.c, `ext4_ioctl_setflags()` clearing
/// `EXT4_EXTENTS_FL`): `inode_lock()`, then ext4_ind_migrate().
pub async fn ioctl_ind_migrate(cx: &Cx<Fs>, ino: Ino) -> Result<i32> {
    let rw = cx.lock(i_rwsem(ino), Mode::Write).await;
    let r = ind_migrate(cx, ino).await;
    cx.unlock(rw).await;
    r
}

/// Model of ext4_ind_migrate(): the caller holds `i_rwsem` of `ino`.
pub async fn ind_migrate(cx: &Cx<Fs>, ino: Ino) -> Result<i32> {
    cx.with(|fs| check_ind_migrate(fs, ino))?;
    let wp = cx.lock(LockId::WritepagesRwsem, Mode::Write).await;
    let r = match journal_start(cx, 1).await {
        Ok(mut jh) => {
            let ds = cx.lock(i_data_sem(ino), Mode::Write).await;
            let r = cx.with(|fs| convert(fs, &mut jh.h, ino));
            let stop = journal_stop(cx, jh).await;
            cx.unlock(ds).await;
            r.and(stop).map(|()| 0)
        }
        Err(e) => Err(e),
    };
    cx.unlock(wp).await;
    r
}

/// The checks before any lock: `-EINVAL` without the extent feature or for an indirect
/// inode, `-EOPNOTSUPP` on bigalloc.
fn check_ind_migrate(fs: &mut Fs, ino: Ino) -> Result<()> {
    fs.iget(ino)?;
    if !fs.has_extents() {
        return Err(Error::Invalid("filesystem lacks the extent feature".into()));
    }
    if !fs.inode(ino).is_extents() {
        return Err(Error::Invalid("inode does not use extents".into()));
    }
    if fs.sb.has_ro_compat(EXT4_FEATURE_RO_COMPAT_BIGALLOC) {
        return Err(Error::NotSupported("bigalloc filesystem".into()));
    }
    Ok(())
}

/// The part under `i_data_sem`: ext4_ext_check_inode(), the shape checks, then the new
/// `i_data` and the inode marked dirty.
fn convert(fs: &mut Fs, h: &mut Handle, ino: Ino) -> Result<()> {
    let root = ExtentNode::parse(&fs.inode(ino).raw.i_block_bytes(), ino)?;
    if fs.sb.s_blocks_count > EXT4_MAX_BLOCK_FILE_PHYS {
        return Err(Error::NotSupported(
            "filesystem has blocks beyond 2^32".into(),
        ));
    }
    if root.header.eh_depth != 0 {
        return Err(Error::NotSupported(
            "extent tree deeper than the inode".into(),
        ));
    }
    let ext = match &root.entries {
        NodeEntries::Leaf(v) if v.len() > 1 => {
            return Err(Error::NotSupported("more than one extent".into()))
        }
        NodeEntries::Leaf(v) => v.first().copied(),
        NodeEntries::Index(_) => None,
    };
    // eh_entries == 0: blk = len = start = end = 0.
    let (start, len, blk) =
        ext.map_or((0, 0, 0), |e| (e.ee_block, u32::from(e.ee_len), e.ee_start));
    // `end = start + len - 1` in ext4_lblk_t arithmetic; 0 for an empty tree.
    let end = if ext.is_some() {
        start.wrapping_add(len).wrapping_sub(1)
    } else {
        0
    };
    // S10 (before d6f123a92974): only the length was checked.
    if fs.bugs.has(Bug::S10) {
        if len > EXT4_NDIR_BLOCKS as u32 {
            return Err(Error::NotSupported("extent longer than 12 blocks".into()));
        }
    } else if end >= EXT4_NDIR_BLOCKS as u32 {
        return Err(Error::NotSupported("extent beyond block 11".into()));
    }
    // U5 (mainline): i_size is not looked at. An indirect-mapped file ends at
    // s_bitmap_maxbytes (ext4_max_bitmap_size()); past it e2fsck resets i_size and
    // ext4_block_to_path() has no path for the blocks. Without U5 such a file stays as it is.
    let (size, max) = (
        fs.inode(ino).raw.i_size,
        fs.ind_max_block() * u64::from(fs.block_size()),
    );
    if !fs.bugs.has(Bug::U5) && size > max {
        return Err(Error::NotSupported(format!(
            "i_size {size} past the largest indirect-mapped file ({max})"
        )));
    }
    // S9 (before 7444a072c387): the blocks were put at i_data[0..len], whatever ee_block said.
    let first = if fs.bugs.has(Bug::S9) {
        0
    } else {
        u64::from(start)
    };
    let mut i_block = [0u32; EXT4_N_BLOCKS];
    for k in 0..u64::from(len) {
        if let Some(slot) = i_block.get_mut((first + k) as usize) {
            *slot = (blk + k) as u32;
        }
    }
    let info = fs.inode_mut(ino);
    info.raw.i_flags &= !EXT4_EXTENTS_FL;
    info.raw.i_block = i_block;
    fs.mark_inode_dirty(h, ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blockmap::Run;
    use crate::ops::run_single;
    use crate::ops::testutil::{engine_map, fill, mk_ind_fs, remount};
    use crate::profile::BugSet;

    /// An extent filesystem with file `/f` of `n` blocks from `lblk`; its first physical block.
    fn ext_file(lblk: u32, n: u32) -> (Fs, Ino, u64) {
        let mut fs = mk_ind_fs(1024);
        crate::ops::testutil::enable_extents(&mut fs);
        let ino = fs.create("/f", 0o644).unwrap();
        assert!(fs.inode(ino).is_extents());
        for b in lblk..lblk + n {
            fs.write_file(ino, u64::from(b) * 1024, &fill(b, 1024))
                .unwrap();
        }
        fs.sync().unwrap();
        let p = engine_map(&mut fs, ino).runs.first().map_or(0, |r| r.pblk);
        (fs, ino, p)
    }

    fn chattr_e(fs: Fs, ino: Ino, bugs: BugSet) -> (Fs, Result<i32>) {
        let mut fs = fs;
        fs.bugs = bugs;
        run_single(fs, "ind_migrate", |cx| async move {
            ioctl_ind_migrate(&cx, ino).await
        })
    }

    fn run(lblk: u32, pblk: u64, len: u32) -> Run {
        Run {
            lblk,
            pblk,
            len,
            unwritten: false,
        }
    }

    #[test]
    fn one_extent_at_an_offset_keeps_its_place() {
        let (fs, ino, p) = ext_file(3, 4);
        let (fs, r) = chattr_e(fs, ino, BugSet::NONE);
        assert_eq!(r, Ok(0));
        let mut fs = remount(fs);
        assert!(!fs.iget(ino).unwrap().is_extents());
        assert_eq!(engine_map(&mut fs, ino).runs, vec![run(3, p, 4)]);
        assert_eq!(fs.read_file(ino, 3 * 1024, 1024).unwrap(), fill(3, 1024));
    }

    #[test]
    fn s9_shifts_the_blocks_to_the_start() {
        let (fs, ino, p) = ext_file(3, 4);
        let (fs, r) = chattr_e(fs, ino, BugSet::of(&[Bug::S9]));
        assert_eq!(r, Ok(0));
        let mut fs = remount(fs);
        assert_eq!(engine_map(&mut fs, ino).runs, vec![run(0, p, 4)]);
        assert_eq!(fs.read_file(ino, 3 * 1024, 1024).unwrap(), fill(6, 1024));
    }

    #[test]
    fn extent_past_block_11_is_refused_unless_s10() {
        let (fs, ino, p) = ext_file(10, 4);
        let (fs, r) = chattr_e(fs, ino, BugSet::NONE);
        assert!(matches!(&r, Err(Error::NotSupported(m)) if m == "extent beyond block 11"));
        let (fs, r) = chattr_e(fs, ino, BugSet::of(&[Bug::S10]));
        assert_eq!(r, Ok(0));
        let mut fs = remount(fs);
        fs.iget(ino).unwrap();
        // Blocks 12 and 13 landed in the IND and DIND pointers: a wrong map.
        let i_block = fs.inode(ino).raw.i_block;
        assert_eq!(
            &i_block[10..14],
            &[p as u32, p as u32 + 1, p as u32 + 2, p as u32 + 3]
        );
        // Reading block 12 now walks "IND" block p+2 (file data): an error or wrong bytes.
        let got = fs.read_file(ino, 12 * 1024, 1024);
        assert!(!matches!(&got, Ok(d) if *d == fill(12, 1024)), "{got:?}");
    }

    #[test]
    fn two_extents_and_long_extents_are_refused() {
        let mut fs = mk_ind_fs(1024);
        crate::ops::testutil::enable_extents(&mut fs);
        let ino = fs.create("/f", 0o644).unwrap();
        for b in [0, 2] {
            fs.write_file(ino, b * 1024, &fill(b as u32, 1024)).unwrap();
        }
        let (_, r) = chattr_e(fs, ino, BugSet::NONE);
        assert!(matches!(&r, Err(Error::NotSupported(m)) if m == "more than one extent"));
        let (fs, ino, _) = ext_file(0, 13);
        let (_, r) = chattr_e(fs, ino, BugSet::of(&[Bug::S10]));
        assert!(matches!(&r, Err(Error::NotSupported(m)) if m == "extent longer than 12 blocks"));
    }

    #[test]
    fn a_size_past_the_indirect_maximum_is_refused_unless_u5() {
        // One block in the direct range and i_size at the indirect maximum plus one byte.
        let (mut fs, ino, p) = ext_file(2, 1);
        let max = fs.ind_max_block() * 1024;
        fs.truncate_file(ino, max).unwrap();
        let (mut fs, r) = chattr_e(fs, ino, BugSet::NONE);
        assert_eq!(r, Ok(0), "at the maximum it converts");
        fs.iget(ino).unwrap();
        assert!(!fs.inode(ino).is_extents());
        let (mut fs, ino, _) = ext_file(2, 1);
        fs.truncate_file(ino, max + 1).unwrap();
        let (fs, r) = chattr_e(fs, ino, BugSet::NONE);
        assert!(
            matches!(&r, Err(Error::NotSupported(m)) if m.starts_with("i_size")),
            "{r:?}"
        );
        let (fs, r) = chattr_e(fs, ino, BugSet::of(&[Bug::U5]));
        assert_eq!(r, Ok(0));
        let mut fs = remount(fs);
        assert_eq!(engine_map(&mut fs, ino).runs, vec![run(2, p, 1)]);
        assert_eq!(fs.inode(ino).raw.i_size, max + 1);
        // Our checker sees what e2fsck sees (PR_1_BAD_I_SIZE); tests/integration/migrate
        // checks the kernel and e2fsck.
        let mut dev = fs.unmount().unwrap();
        let report = crate::oracle::fsck::check(&mut dev).unwrap();
        let codes: Vec<_> = report.problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, [crate::oracle::fsck::ProblemCode::PR_1_BAD_I_SIZE]);
    }

    #[test]
    fn empty_file_and_indirect_file() {
        let (fs, ino, _) = ext_file(0, 0);
        let (mut fs, r) = chattr_e(fs, ino, BugSet::NONE);
        assert_eq!(r, Ok(0));
        assert_eq!(fs.inode(ino).raw.i_block, [0; 15]);
        assert!(engine_map(&mut fs, ino).runs.is_empty());
        let (_, r) = chattr_e(fs, ino, BugSet::NONE);
        assert!(matches!(&r, Err(Error::Invalid(m)) if m == "inode does not use extents"));
    }
}
