//! Benchmarks (not tests): `cargo run --release --example bench`. Prints one line per figure.
//!
//! - device clone: O(1) copy of a frozen template (what every fuzz execution starts with);
//! - mkfs: our in-process mkfs of a 64 MiB image;
//! - crash states: a journaled workload, then for each sampled crash point: rebuild the disk
//!   at that write (`replay_log`), choose the fates of the pending writes, recover, mount
//!   (orphan cleanup), unmount — what the campaign does per crash state, minus the oracles.

use e4fuzz::dev::CrashFates;
use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
use e4fuzz::fs::{Fs, MountOpts};
use std::time::Instant;

fn main() {
    let opts = MkfsOpts::default();
    let t = Instant::now();
    let n = 50;
    for _ in 0..n {
        std::hint::black_box(mkfs(&opts).unwrap());
    }
    println!(
        "mkfs 64 MiB (1 KiB blocks, in-process): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );

    let template = mkfs(&opts).unwrap();
    let t = Instant::now();
    let n = 200;
    for _ in 0..n {
        let mut dev = template.clone();
        std::hint::black_box(e4fuzz::oracle::fsck::check(&mut dev).unwrap());
    }
    println!(
        "fsck of a fresh 64 MiB image (in-process, no file load): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );
    let load = std::env::temp_dir().join(format!("e4fuzz-bench-{}.img", std::process::id()));
    template.save(&load).unwrap();
    let t = Instant::now();
    for _ in 0..10 {
        std::hint::black_box(Fs::load_image(&load).unwrap());
    }
    println!(
        "loading a 64 MiB image file into the simulated disk: {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / 10.0
    );
    let _ = std::fs::remove_file(&load);
    let t = Instant::now();
    let n = 1_000_000;
    for _ in 0..n {
        std::hint::black_box(template.clone());
    }
    println!(
        "device clone of a frozen template: {:.1} ns",
        t.elapsed().as_secs_f64() * 1e9 / n as f64
    );

    let small = MkfsOpts {
        size_bytes: 8 << 20,
        ..MkfsOpts::default()
    };
    let mut fs = Fs::mount(mkfs(&small).unwrap(), MountOpts::default()).unwrap();
    fs.dev.clear_log();
    let a = fs.create("/a", 0o644).unwrap();
    fs.write_file(a, 0, &[7u8; 20_000]).unwrap();
    fs.fsync(a).unwrap();
    let b = fs.create("/b", 0o644).unwrap();
    fs.write_file(b, 300 << 10, &[9u8; 5000]).unwrap();
    fs.truncate_file(a, 3000).unwrap();
    fs.sync().unwrap();
    fs.write_file(b, 0, &[3u8; 3000]).unwrap();
    let dev = fs.dev.clone();
    let writes = dev.log().len();
    let t = Instant::now();
    let mut states = 0u64;
    while t.elapsed().as_secs_f64() < 3.0 {
        for k in (0..=writes).step_by(3) {
            let at = dev.replay_log(k);
            let crash = at.crash_image(&CrashFates::Seeded {
                seed: k as u64,
                keep_per_mille: 500,
                tear_per_mille: 100,
            });
            let fs = Fs::mount(crash, MountOpts::default()).unwrap();
            std::hint::black_box(fs.unmount().unwrap());
            states += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "crash states (replay_log + fates + recover + mount + unmount, {writes}-write workload): {:.0} states/s",
        states as f64 / secs
    );
}
