//! Seeded bug U1 on the real kernel: `ext4_punch_hole()` drops the page cache of the range
//! before it starts its handle, without writing dirty pages back (mainline since the 6.14
//! punch-hole rework). With `nodelalloc` in `data=ordered` mode, a commit that lands in between
//! makes a block allocated in the running transaction durable while its data, in a page the
//! punch has just dropped, never reaches the disk: a crash before the punch commits shows
//! another file's old bytes. `e4fuzz run --bug U1` finds the same in the model
//! (`corpus/repros/U1-stale.repro`).
//!
//! The kernel's window is microseconds wide; the test holds it open deterministically. f1 gets
//! two dirty pages (blocks 0 and 5, allocated by the writes), page 5 goes under writeback and
//! the FUSE server holds that write back for a few seconds. The punch over both drops page 0
//! and waits for page 5's writeback, holding no handle; meanwhile `fsync` of another file
//! commits the transaction with f1's two blocks in it. Every prefix of the device's write log
//! is a crash state; the engine replays each one's journal and reads f1 back.
//!
//! Skips with a message without root, loop devices, /dev/fuse, python3 or fallocate(1).

use crate::fuse::{skipped, Served};
use e4fuzz::dev::Disk;
use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::harness::pattern::has_poison;
use e4fuzz::harness::template::template;
use e4fuzz::oracle::kernel::host;
use e4fuzz::scenario::{FileSetup, Geometry};
use std::path::Path;

/// The kernel side, as a python script (ctypes gives fallocate and sync_file_range): argv is
/// the mount point and the FUSE control file. Page 5's data starts with `V` (86), the byte the
/// server's delay waits for.
const OPS: &str = r#"
import ctypes, os, sys, threading, time
mnt, ctl = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL('libc.so.6', use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_long, ctypes.c_uint]
f1 = os.open(mnt + '/f1', os.O_RDWR)
f3 = os.open(mnt + '/f3', os.O_RDWR)
open(mnt + '/f4', 'w').write('4')
os.sync()                       # the journal is past its first commit (JBD2_FLUSHED clear)
os.fchmod(f3, 0o600)            # f3's inode joins the running transaction T
os.pwrite(f1, b'W' * 4096, 0)   # nodelalloc: blocks 0 and 5 allocated in T, pages dirty
os.pwrite(f1, b'V' * 4096, 5 * 4096)
open(ctl, 'w').write('delay-write 86 3')
assert libc.sync_file_range(f1, 5 * 4096, 4096, 2) == 0   # page 5 under writeback, held
tid = []
def punch():                    # drops page 0, waits on page 5's writeback, then its handle
    tid.append(threading.get_native_id())
    assert libc.fallocate(f1, 3, 0, 6 * 4096) == 0, os.strerror(ctypes.get_errno())
t = threading.Thread(target=punch)
t.start()
def waiting():                  # the punch sleeps uninterruptibly: on page 5's writeback
    if not tid:
        return False
    stat = open('/proc/self/task/%d/stat' % tid[0]).read()
    return stat.rsplit(')', 1)[1].split()[0] == 'D'
deadline = time.time() + 2.5    # the write is held for 3 s
while not waiting() and time.time() < deadline:
    time.sleep(0.01)
os.fsync(f3)                    # commits T while the punch is between its drop and its handle
t.join()
"#;

/// The fuzzing default geometry (16 MiB, extents, metadata_csum, 1024-block journal) on 4 KiB
/// blocks.
fn geometry() -> Geometry {
    Geometry {
        block_size: 4096,
        ..Geometry::default()
    }
}

/// f1 (indirect, empty) and f3 (indirect, one byte).
fn setup() -> Vec<FileSetup> {
    vec![
        FileSetup {
            file: 1,
            indirect: true,
            writes: vec![],
        },
        FileSetup {
            file: 3,
            indirect: true,
            writes: vec![(0, 1, 9)],
        },
    ]
}

/// The write log `faultyfuse.py` kept: `(offset, data)` per write, `None` per flush.
fn write_log(path: &Path) -> Vec<Option<(usize, Vec<u8>)>> {
    let raw = std::fs::read(path).expect("the write log");
    let (mut out, mut i) = (Vec::new(), 0);
    while i < raw.len() {
        let off = u64::from_le_bytes(raw[i..i + 8].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(raw[i + 8..i + 12].try_into().unwrap());
        i += 12;
        if len == u32::MAX {
            out.push(None);
            continue;
        }
        out.push(Some((off, raw[i..i + len as usize].to_vec())));
        i += len as usize;
    }
    out
}

/// After the journal replay of the crash state `image`: f1's size and, per block of f1 that
/// is mapped, whether it holds poison (bytes of a block that was free in the template).
fn f1_after_recovery(image: &[u8], scratch: &host::Scratch) -> (u64, Vec<(u32, bool)>) {
    let path = scratch.path("crash.img");
    std::fs::write(&path, image).unwrap();
    let mut fs = Fs::mount(Disk::load(&path, 4096).unwrap(), MountOpts::default())
        .expect("the crash state mounts");
    let ino = fs.resolve("/f1").expect("f1");
    let size = fs.inode(ino).raw.i_size;
    let map = fs.peek_map(ino).expect("f1's map");
    let blocks = map
        .iter()
        .flat_map(|&(l, _, n)| l..l + n)
        .map(|l| {
            let data = fs.read_file(ino, u64::from(l) * 4096, 4096).unwrap();
            (l, has_poison(&data, 0))
        })
        .collect();
    (size, blocks)
}

#[test]
fn kernel_punch_hole_exposes_stale_data_after_a_commit_between_drop_and_handle() {
    if skipped("kernel_punch_hole_exposes_stale_data_after_a_commit_between_drop_and_handle") {
        return;
    }
    // The race needs the fsync's commit to land while the punch waits between its drop and its
    // handle; on a loaded machine (the other kernel tests run beside this one) the timing can
    // miss, so up to three attempts, each a whole new mount, must show it once.
    let mut tries = Vec::new();
    for _ in 0..3 {
        let (last, stale, entries) = punch_once();
        assert_eq!(
            last,
            Some((6 * 4096, vec![])),
            "after the unmount f1 is all hole"
        );
        if let Some((_, size, blocks)) = stale.first() {
            assert_eq!(*size, 6 * 4096, "{stale:?}");
            assert!(
                blocks.contains(&(0, true)),
                "block 0, whose page the punch dropped, shows poison: {stale:?}"
            );
            return;
        }
        tries.push(entries);
    }
    panic!(
        "no crash state shows f1 with another file's old bytes in three attempts (the kernel no \
         longer has U1? then mark it fixed): {tries:?} log entries"
    );
}

/// One run of the kernel side: the state after the unmount, the crash states (log index, size,
/// blocks) whose f1 shows poison, and the number of log entries.
#[allow(clippy::type_complexity)]
fn punch_once() -> (
    Option<(u64, Vec<(u32, bool)>)>,
    Vec<(usize, u64, Vec<(u32, bool)>)>,
    usize,
) {
    let scratch = host::Scratch::new("punch").unwrap();
    let before = template(&geometry(), &setup()).expect("template");
    let image = scratch.path("kernel.img");
    before.save(&image).unwrap();
    let base = std::fs::read(&image).unwrap();
    let vetted = host::vet(&image, &scratch).expect("the template passes e2fsck");
    let ctl = scratch.path("ctl");
    let served = Served::start(vetted.path(), &scratch.path("fuse"), &ctl).expect("FUSE");
    {
        let at = vetted.served_at(&scratch.path("fuse").join("img"));
        let m = host::Mounted::with_options(
            &at,
            &scratch.path("mnt"),
            "nodelalloc,data=ordered,commit=600",
        )
        .expect("mount");
        let mnt = m.path("/").to_string_lossy().into_owned();
        let ops = host::run("python3", &["-c", OPS, &mnt, &ctl.to_string_lossy()]).unwrap();
        assert!(ops.status.success(), "the kernel ops: {}", host::text(&ops));
        m.umount().expect("umount");
    }
    served.stop();
    let log = write_log(&scratch.path("kernel.img.wlog"));
    let mut img = base;
    let mut stale = Vec::new();
    let mut last = None;
    for (k, entry) in log.iter().enumerate() {
        let Some((off, data)) = entry else { continue };
        img[*off..off + data.len()].copy_from_slice(data);
        let (size, blocks) = f1_after_recovery(&img, &scratch);
        if blocks.iter().any(|&(_, poison)| poison) {
            stale.push((k, size, blocks.clone()));
        }
        last = Some((size, blocks));
    }
    (last, stale, log.len())
}
