//! The real kernel reads what the engine wrote (issue 3): files written through the engine —
//! sparse, reaching IND/DIND/TIND with 1 KiB blocks, punched, truncated — on both mapping
//! formats; after a clean unmount `e2fsck -fn` must pass (never mount an image that fails it);
//! then a read-only loop mount must show every file with the model's bytes. Skips with a
//! message where loop mounts are unavailable; the mount guard unmounts and detaches always.

use crate::migrate::kernel::{loop_mounts_work, Mounted};
use crate::util::*;
use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
use e4fuzz::fs::{Fs, MountOpts};

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) | 1)
        .collect()
}

#[test]
fn kernel_reads_engine_files() {
    let t = TempDir::new("kread");
    if !loop_mounts_work("kernel_reads_engine_files", &t.0) {
        return;
    }
    for (name, extents, bs) in [
        ("ext", true, 1024),
        ("ind", false, 1024),
        ("ext4k", true, 4096),
    ] {
        let opts = MkfsOpts {
            size_bytes: 32 << 20,
            block_size: bs,
            extents,
            ..MkfsOpts::default()
        };
        let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
        // (path, offset of the written range, its bytes after punch/truncate, file size)
        let mut model: Vec<(String, u64, Vec<u8>, u64)> = Vec::new();
        let offsets = [
            0u64,
            11 * 1024,
            13 * 1024,
            300 * 1024,
            70_000 * 1024,
            16_843_000 * 1024,
        ];
        for (i, off) in offsets.iter().enumerate() {
            let path = format!("/f{i}");
            let ino = fs.create(&path, 0o644).unwrap();
            let mut data = bytes(i as u8, 5000 + i * 1000);
            fs.write_file(ino, *off, &data).unwrap();
            if i % 2 == 1 {
                fs.punch_hole(ino, off + 100, 2500).unwrap();
                data[100..2600].fill(0);
            }
            if i == 2 {
                fs.truncate_file(ino, off + 3000).unwrap();
                data.truncate(3000);
            }
            let size = off + data.len() as u64;
            model.push((path, *off, data, size));
        }
        fs.mkdir("/dir").unwrap();
        let img = t.path(&format!("{name}.img"));
        fs.unmount().unwrap().save(&img).unwrap();
        let m = Mounted::new(&img, &t.path(&format!("mnt-{name}"))).expect("loop mount");
        for (path, off, want, size) in &model {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(m.path(path)).unwrap();
            assert_eq!(f.metadata().unwrap().len(), *size, "{name}: size of {path}");
            let mut got = vec![0u8; want.len()];
            f.seek(SeekFrom::Start(*off)).unwrap();
            f.read_exact(&mut got).unwrap();
            assert!(got == *want, "{name}: the kernel reads {path} differently");
            if *off >= 4096 {
                let mut hole = vec![1u8; 4096];
                f.seek(SeekFrom::Start(off - 4096)).unwrap();
                f.read_exact(&mut hole).unwrap();
                assert!(
                    hole.iter().all(|&b| b == 0),
                    "{name}: the hole before {path}'s data"
                );
            }
        }
        assert!(m.path("/dir").is_dir() && m.path("/lost+found").is_dir());
        m.umount();
    }
}
