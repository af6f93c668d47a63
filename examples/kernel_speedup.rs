//! Side-by-side cost of one crash state: ours against the real-kernel path (design.md,
//! "Performance targets": per crash state, ≥ 1,000× faster than loop mount + journal replay +
//! umount + e2fsck). Not a test; needs root and loop devices (else it says why and exits 0):
//!
//! ```text
//! cargo run --release --example kernel_speedup [SCENARIOS]      # default 40
//! ```
//!
//! The scenarios are generated as `e4fuzz run` generates them (profile `fixed`, the campaign's
//! input lengths, a fixed seed). **Ours** is the time of `execute_with` (workload, up to 16
//! crash states with every in-process oracle, fsck on each) divided by the crash states it
//! checked: the campaign's own per-state figure, workload included; it is also given without
//! the workload (the same scenarios' `run_workload` timed alone and subtracted), which is what
//! the kernel path does for a state that exists already. **Kernel** is, for the
//! last crash image of each scenario (the end of the log, with the scenario's fates), saved as
//! a file: `losetup` + `mount -t ext4` (the kernel replays the journal) + `umount` +
//! `losetup -d` + `e2fsck -fn`. Each image first passes the safety gate of the kernel oracle
//! (a copy replayed by `debugfs journal_run` must be `e2fsck -fn` clean), which is timed apart
//! and not counted: it is our precaution, not part of the kernel path.

use e4fuzz::harness::campaign::scenario_of;
use e4fuzz::harness::exec::execute_images;
use e4fuzz::harness::{execute_with, ExecOpts, FsckScope};
use e4fuzz::oracle::kernel::{self, host};
use e4fuzz::profile::BugSet;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(40, |a| a.parse().expect("SCENARIOS is a number"));
    if let Err(why) = kernel::available() {
        println!("kernel_speedup skipped: {why}");
        return;
    }
    let opts = ExecOpts {
        trace: false,
        confirm: false,
        fsck: FsckScope::Every,
        ..ExecOpts::default()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let scenarios: Vec<_> = (0..n)
        .map(|_| {
            let mut input = vec![0u8; rng.random_range(64..4096)];
            rng.fill(&mut input[..]);
            scenario_of(&input, "fixed", BugSet::NONE)
        })
        .collect();
    scenarios.iter().for_each(|s| drop(execute_with(s, &opts))); // warm the template caches

    let t = Instant::now();
    let states: u64 = scenarios
        .iter()
        .map(|s| execute_with(s, &opts).crash_states)
        .sum();
    let ours = t.elapsed();
    // The workload alone (template, ops, live oracles), to tell the crash states' own share.
    let t = Instant::now();
    for s in &scenarios {
        let mut v = e4fuzz::harness::Verdict::default();
        drop(e4fuzz::harness::workload::run_workload(s, &mut v));
    }
    let workload = t.elapsed();

    let scratch = host::Scratch::new("speedup").expect("scratch directory");
    let (mut kernel_time, mut gate_time, mut images, mut refused) =
        (Duration::ZERO, Duration::ZERO, 0u32, 0u32);
    let keep = ExecOpts {
        keep_images: true,
        ..opts.clone()
    };
    for (i, s) in scenarios.iter().enumerate() {
        let Some(img) = execute_images(s, &keep).1 else {
            continue;
        };
        let path = scratch.path(&format!("crash-{i}.img"));
        img.crash.save(&path).expect("saving the crash image");
        let g = Instant::now();
        let vetted = host::vet(&path, &scratch);
        gate_time += g.elapsed();
        let Ok(vetted) = vetted else {
            refused += 1;
            continue;
        };
        let k = Instant::now();
        let m = host::Mounted::new(&vetted, &scratch.path("mnt"), false).expect("mount");
        m.umount().expect("umount");
        let fsck = host::run("e2fsck", &["-fn", &path.to_string_lossy()]).expect("e2fsck");
        kernel_time += k.elapsed();
        images += 1;
        if !fsck.status.success() {
            println!("note: e2fsck -fn after the kernel's replay of scenario {i} is not clean");
        }
        let _ = std::fs::remove_file(&path);
    }
    let ours_per = ours.as_secs_f64() / states as f64;
    let kernel_per = kernel_time.as_secs_f64() / f64::from(images.max(1));
    println!("{n} scenarios, {states} crash states checked by us, {images} crash images through the kernel ({refused} refused by the gate)");
    let states_only = ours.saturating_sub(workload).as_secs_f64() / states as f64;
    println!(
        "ours:   {:>10.1} µs per crash state ({:.0} states/s, workload included); {:.1} µs without the workload",
        ours_per * 1e6,
        1.0 / ours_per,
        states_only * 1e6
    );
    println!(
        "kernel: {:>10.1} µs per crash state (loop mount + replay + umount + e2fsck -fn); the gate adds {:.1} ms",
        kernel_per * 1e6,
        gate_time.as_secs_f64() * 1e3 / f64::from(images + refused).max(1.0)
    );
    println!(
        "speedup: {:.0}x per crash state, workload included; {:.0}x for the crash states alone",
        kernel_per / ours_per,
        kernel_per / states_only
    );
}
