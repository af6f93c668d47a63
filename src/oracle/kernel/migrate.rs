//! The migration half of the kernel oracle: `chattr +e` / `chattr -e` on a loop-mounted copy
//! of the image against our migrate of the same file on the same image.
//!
//! `chattr` sets the flags with `EXT4_IOC_SETFLAGS`; ext4_ioctl_setflags() calls
//! ext4_ext_migrate() when `EXTENTS_FL` is added and ext4_ind_migrate() when it is removed, and
//! does nothing when the flag does not change. Our side ([`migrate_alone`]) models the ioctls,
//! which refuse a file already in the target format with `EINVAL`: that one pair (ours
//! `EINVAL`, the kernel's no-op) counts as agreement when the file was already in the target
//! format before.

use super::debugfs::{self, FreeCounts, StatInode};
use super::host::{self, Mounted, Scratch};
use super::{available, bytes_problem, files, problem, read_problem, save, stat_problem, Report};
use crate::dev::Disk;
use crate::format::inode::EXT4_EXTENTS_FL;
use crate::fs::{Fs, MountOpts};
use crate::ops::{ind_migrate::ioctl_ind_migrate, migrate::ioctl_migrate, run_single};
use crate::profile::Profile;
use crate::scenario::MigrateTo;
use std::time::Instant;

/// `EINVAL`.
const EINVAL: i32 = 22;

/// strerror() texts `chattr` prints, and their errno values.
const ERRNOS: &[(&str, i32, &str)] = &[
    ("Operation not permitted", 1, "EPERM"),
    ("No such file or directory", 2, "ENOENT"),
    ("Input/output error", 5, "EIO"),
    ("Resource temporarily unavailable", 11, "EAGAIN"),
    ("Cannot allocate memory", 12, "ENOMEM"),
    ("Device or resource busy", 16, "EBUSY"),
    ("Invalid argument", 22, "EINVAL"),
    ("File too large", 27, "EFBIG"),
    ("No space left on device", 28, "ENOSPC"),
    ("Read-only file system", 30, "EROFS"),
    ("Bad message", 74, "EBADMSG"),
    ("Operation not supported", 95, "EOPNOTSUPP"),
    ("Structure needs cleaning", 117, "EUCLEAN"),
];

/// The errno of a `chattr` error line (`chattr: Operation not supported while setting flags on
/// /mnt/f`); `None` if the text is not a strerror() text we know.
pub fn chattr_errno(stderr: &str) -> Option<i32> {
    ERRNOS
        .iter()
        .find(|(text, ..)| stderr.contains(&format!("{text} while setting flags")))
        .map(|&(_, e, _)| e)
}

/// `0` for success, else the errno's name (`EOPNOTSUPP`) or number.
fn errno_name(e: Option<i32>) -> String {
    match e {
        None => "0".into(),
        Some(e) => ERRNOS
            .iter()
            .find(|t| t.1 == e)
            .map_or(format!("errno {e}"), |t| t.2.to_string()),
    }
}

/// Our side: mount a clone of `before` with `profile`'s bugs, migrate `path` alone (the async
/// op on a one-thread scheduler, as `e4fuzz migrate` does), unmount cleanly. Returns the image
/// and the errno of a failed migrate (`None`: success). `Err` if the mount, the lookup or the
/// unmount failed.
pub fn migrate_alone(
    before: &Disk,
    path: &str,
    to: MigrateTo,
    profile: &Profile,
) -> crate::Result<(Disk, Option<i32>)> {
    let mut fs = Fs::mount(before.clone(), MountOpts::default())?;
    fs.bugs = profile.bugs;
    let ino = fs.resolve(path)?;
    let retries = profile.eagain_retries;
    let (fs, r) = run_single(fs, "migrate", |cx| async move {
        match to {
            MigrateTo::Extents => ioctl_migrate(&cx, ino, retries).await,
            MigrateTo::Indirect => ioctl_ind_migrate(&cx, ino).await,
        }
    });
    Ok((fs.unmount()?, r.err().map(|e| e.errno())))
}

/// The kernel's `chattr ±e` of `path` on a copy of `before` against ours: `ours_after` is our
/// image after migrating `path` alone on `before` ([`migrate_alone`]), `ours_errno` its failure
/// (`None`: success). `Err` is a skip reason (no loop mounts, `before` fails the e2fsck gate,
/// `path` missing on `before`, a tool failed), never a finding.
pub fn check_migrate(
    before: &Disk,
    path: &str,
    to: MigrateTo,
    ours_after: &Disk,
    ours_errno: Option<i32>,
) -> Result<Report, String> {
    available()?;
    let t0 = Instant::now();
    let s = Scratch::new("migrate")?;
    let kimg = save(before, &s, "kernel.img")?;
    let oimg = save(ours_after, &s, "ours.img")?;
    let vetted = host::vet(&kimg, &s)?;
    let paths = [path.to_string()];
    let (old, _) = debugfs::describe(&kimg, &paths, &s)?;
    let old = old[0]
        .clone()
        .ok_or_else(|| format!("{path} is not on the image before the migration"))?;
    let (ours, ofree) = debugfs::describe(&oimg, &paths, &s)?;
    let bs = u64::from(before.block_size());
    let ranges = files::ranges(old.size, ours[0].as_ref(), bs);
    let m = Mounted::new(&vetted, &s.path("mnt"), false)?;
    let flag = match to {
        MigrateTo::Extents => "+e",
        MigrateTo::Indirect => "-e",
    };
    let out = host::run("chattr", &[flag, &m.path(path).to_string_lossy()])?;
    let kerrno = (!out.status.success()).then(|| {
        let err = String::from_utf8_lossy(&out.stderr);
        chattr_errno(&err).unwrap_or(-1)
    });
    let kbytes = files::read_mount(&m.path(path), &ranges);
    m.umount()?;
    let (kernel, kfree) = debugfs::describe(&kimg, &paths, &s)?;
    let kernel = kernel[0]
        .clone()
        .ok_or_else(|| format!("{path} is gone after the kernel's chattr {flag}"))?;
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let target_ext = to == MigrateTo::Extents;
    let already = (old.flags & EXT4_EXTENTS_FL != 0) == target_ext;
    let agree = kerrno == ours_errno || (already && kerrno.is_none() && ours_errno == Some(EINVAL));
    if !agree {
        problems.push(problem(format!(
            "{path}: chattr {flag} returned {} in the kernel, our migrate {}",
            errno_name(kerrno),
            errno_name(ours_errno)
        )));
    }
    let kside = format!("the kernel's chattr {flag}");
    match &ours[0] {
        None => problems.push(problem(format!("{path} is gone after our migrate"))),
        Some(o) => {
            problems.extend(stat_problem(path, &kside, "ours", &kernel, o, false));
            notes.extend(placement_note(&kernel, o));
            match &kbytes {
                Ok(kb) => {
                    let ob = files::read_ours(ours_after, o, &ranges);
                    problems.extend(bytes_problem(path, &ranges, kb, &ob));
                }
                Err(e) => problems.push(read_problem(path, e)),
            }
        }
    }
    problems.extend(free_problem(&kside, kfree, ofree));
    Ok(Report {
        problems,
        compared: format!(
            "{path} {} → kernel {}, ours {}",
            format_name(&old),
            format_name(&kernel),
            ours[0].as_ref().map_or("missing", format_name)
        ),
        notes,
        elapsed: t0.elapsed(),
    })
}

/// Where the kernel put a mapping block our allocator put elsewhere (the first such block),
/// when the maps are otherwise equal: allocator policy (mballoc's goal and request
/// normalization), not a disagreement about the migration.
fn placement_note(k: &StatInode, o: &StatInode) -> Option<String> {
    let (a, b) = k
        .map
        .iter()
        .zip(&o.map)
        .find(|(a, b)| a != b && a.same_meta(b))?;
    Some(format!(
        "tree/indirect block placed by the kernel at {a}, by ours at {b}"
    ))
}

/// `extents` or `indirect`.
fn format_name(st: &StatInode) -> &'static str {
    if st.flags & EXT4_EXTENTS_FL != 0 {
        "extents"
    } else {
        "indirect"
    }
}

/// Free block and inode counts after the kernel's migrate vs ours.
fn free_problem(kside: &str, k: FreeCounts, o: FreeCounts) -> Option<super::Problem> {
    (k != o).then(|| {
        problem(format!(
            "free blocks/inodes {}/{} after {kside}, {}/{} after ours",
            k.blocks, k.inodes, o.blocks, o.inodes
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mkfs::{mkfs, MkfsOpts};

    #[test]
    fn chattr_errors_map_to_errnos() {
        let e = "chattr: Operation not supported while setting flags on /tmp/m/big\n";
        assert_eq!(chattr_errno(e), Some(95));
        assert_eq!(errno_name(chattr_errno(e)), "EOPNOTSUPP");
        assert_eq!(
            chattr_errno("chattr: Weird error while setting flags on x"),
            None
        );
        assert_eq!(errno_name(None), "0");
        assert_eq!(errno_name(Some(-1)), "errno -1");
    }

    #[test]
    fn free_counts_disagree_in_one_line() {
        let (k, o) = (
            FreeCounts {
                blocks: 10,
                inodes: 3,
            },
            FreeCounts {
                blocks: 11,
                inodes: 3,
            },
        );
        assert_eq!(free_problem("K", k, k), None);
        assert_eq!(
            free_problem("K", k, o).unwrap().cause,
            "free blocks/inodes 10/3 after K, 11/3 after ours"
        );
    }

    #[test]
    fn tree_block_placement_is_a_note() {
        use super::super::debugfs::MapEntry;
        let st = |etb: u64| StatInode {
            map: vec![
                MapEntry::Meta {
                    label: "ETB0".into(),
                    pblk: etb,
                },
                MapEntry::Data {
                    lblk: 0,
                    pblk: 50,
                    len: 1,
                    unwritten: false,
                },
            ],
            ..StatInode::default()
        };
        assert_eq!(placement_note(&st(9), &st(9)), None);
        assert_eq!(
            placement_note(&st(9), &st(7)).unwrap(),
            "tree/indirect block placed by the kernel at (ETB0)->9, by ours at (ETB0)->7"
        );
        assert_eq!(stat_problem("/f", "K", "O", &st(9), &st(7), false), None);
        assert!(stat_problem("/f", "K", "O", &st(9), &st(7), true).is_some());
    }

    /// Our side alone: an extent file of 3 blocks goes indirect; a missing path is an error.
    #[test]
    fn migrate_alone_runs_our_engine_on_a_clone() {
        let opts = MkfsOpts {
            size_bytes: 4 << 20,
            ..MkfsOpts::default()
        };
        let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
        let ino = fs.create("/f", 0o644).unwrap();
        fs.write_file(ino, 0, &[9u8; 3000]).unwrap();
        let before = fs.unmount().unwrap();
        let fixed = Profile::by_name("fixed").unwrap();
        let (after, errno) = migrate_alone(&before, "/f", MigrateTo::Indirect, &fixed).unwrap();
        assert_eq!(errno, None);
        let mut fs = Fs::mount(after, MountOpts { read_only: true }).unwrap();
        let ino = fs.resolve("/f").unwrap();
        assert!(!fs.inode(ino).is_extents());
        let (_, errno) = migrate_alone(&before, "/f", MigrateTo::Extents, &fixed).unwrap();
        assert_eq!(errno, Some(EINVAL), "already extents: the ioctl refuses");
        assert!(migrate_alone(&before, "/g", MigrateTo::Extents, &fixed).is_err());
        let mut fs = Fs::mount(before, MountOpts { read_only: true }).unwrap();
        let ino = fs.resolve("/f").unwrap();
        assert!(fs.inode(ino).is_extents(), "before is untouched");
    }
}
