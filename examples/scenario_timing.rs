//! Timing of the `scenario` fuzz target's phases (not a test):
//!
//! ```text
//! cargo run --release --example scenario_timing [DIR]        # default DIR: corpus/scenario
//! TOP=1 cargo run --release --example scenario_timing DIR    # the slowest inputs on the budget
//! LOOP=i cargo run --release --example scenario_timing DIR   # configuration i for 4 s (for perf)
//! LOOP=i PASSES=n …                                           # … n passes over DIR (for heaptrack)
//! ```
//!
//! Each input of DIR is decoded and run warm (templates cached) with several [`ExecOpts`]; the
//! mean time per input is printed per configuration, then the fuzz target itself
//! (`e4fuzz::targets::scenario`: its budget, then `execute` on a finding). Under ASan and
//! libFuzzer's coverage the same code is roughly 12 times slower (fuzz/README.md, "Throughput
//! under ASan").

use e4fuzz::harness::{execute_with, ExecOpts, FsckScope};
use e4fuzz::scenario::Scenario;
use std::time::Instant;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus/scenario".into());
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    inputs.sort();
    let scenarios: Vec<Scenario> = inputs
        .iter()
        .map(|d| Scenario::from_fuzz_bytes(d))
        .collect();
    let configs = configs();
    for s in &scenarios {
        execute_with(s, &configs[0].1); // warm the template caches
    }
    println!("{} inputs from {dir}", inputs.len());
    if std::env::var("TOP").is_ok() {
        return slowest(&scenarios);
    }
    if let Ok(i) = std::env::var("LOOP") {
        let opts = &configs[i.parse::<usize>().expect("LOOP=index")].1;
        let passes: Option<u32> = std::env::var("PASSES").ok().and_then(|p| p.parse().ok());
        let t = Instant::now();
        let mut done = 0;
        while passes.map_or(t.elapsed().as_secs_f64() < 4.0, |p| done < p) {
            scenarios.iter().for_each(|s| drop(execute_with(s, opts)));
            done += 1;
        }
        return;
    }
    for (name, opts) in &configs {
        let t = Instant::now();
        let states: u64 = scenarios
            .iter()
            .map(|s| execute_with(s, opts).crash_states)
            .sum();
        let ms = t.elapsed().as_secs_f64() * 1e3 / scenarios.len() as f64;
        let per = states as f64 / scenarios.len() as f64;
        println!("{name:<50} {ms:8.3} ms/input  {per:5.1} states/input");
    }
    let t = Instant::now();
    inputs.iter().for_each(|d| e4fuzz::targets::scenario(d));
    let ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    let name = "targets::scenario (the fuzz target)";
    println!("{name:<50} {ms:8.3} ms/input");
}

/// The configurations timed, cheapest-first after the target's budget.
fn configs() -> Vec<(&'static str, ExecOpts)> {
    let quiet = ExecOpts {
        trace: false,
        confirm: false,
        ..ExecOpts::default()
    };
    let with = |max_crash_states, fsck| ExecOpts {
        max_crash_states,
        fsck,
        ..quiet.clone()
    };
    vec![
        ("the target's budget", e4fuzz::targets::scenario_budget()),
        ("1 state, fsck off", with(1, FsckScope::Off)),
        ("1 state, fsck on it", with(1, FsckScope::Every)),
        ("4 states, fsck every", with(4, FsckScope::Every)),
        ("16 states, fsck last", with(16, FsckScope::Last)),
        (
            "16 states, fsck every (no confirm, no trace)",
            quiet.clone(),
        ),
        (
            "execute() as repro (16 states, confirm, trace)",
            ExecOpts::default(),
        ),
    ]
}

/// The 15 slowest inputs on the target's budget, with their op and write counts.
fn slowest(scenarios: &[Scenario]) {
    let opts = e4fuzz::targets::scenario_budget();
    let mut times: Vec<(f64, usize, usize, u64)> = scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = Instant::now();
            let writes = (0..5).fold(0, |_, _| execute_with(s, &opts).device_writes);
            let ops = s.threads.iter().map(Vec::len).sum();
            (t.elapsed().as_secs_f64() * 200.0, i, ops, writes)
        })
        .collect();
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = times.iter().map(|t| t.0).sum();
    println!("total {total:.1} ms over {} inputs", times.len());
    for (ms, i, ops, w) in times.iter().take(15) {
        println!("{ms:7.3} ms  input {i:3}  {ops:2} ops  {w:4} writes");
    }
}
