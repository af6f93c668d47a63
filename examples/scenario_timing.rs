//! Timing of the `scenario` fuzz target's phases (not a test): `cargo run --release --example
//! scenario_timing [DIR]` (default `corpus/scenario`). Each input of DIR is decoded and run
//! with several [`ExecOpts`], warm (templates cached), and the mean time per input is printed
//! per configuration, plus the fuzz target itself (`e4fuzz::targets::scenario`, its budget).

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
    let quiet = ExecOpts {
        trace: false,
        confirm: false,
        ..ExecOpts::default()
    };
    let configs: Vec<(&str, ExecOpts)> = vec![
        (
            "default (16 states, fsck every, confirm, trace)",
            ExecOpts::default(),
        ),
        ("16 states, fsck every, no confirm/trace", quiet.clone()),
        (
            "16 states, fsck last",
            ExecOpts {
                fsck: FsckScope::Last,
                ..quiet.clone()
            },
        ),
        (
            "4 states, fsck last",
            ExecOpts {
                max_crash_states: 4,
                fsck: FsckScope::Last,
                ..quiet.clone()
            },
        ),
        (
            "1 state, fsck last",
            ExecOpts {
                max_crash_states: 1,
                fsck: FsckScope::Last,
                ..quiet.clone()
            },
        ),
        (
            "1 state, fsck off",
            ExecOpts {
                max_crash_states: 1,
                fsck: FsckScope::Off,
                ..quiet.clone()
            },
        ),
    ];
    // Warm the template caches.
    for s in &scenarios {
        execute_with(s, &configs[5].1);
    }
    println!("{} inputs from {dir}", inputs.len());
    if let Ok(i) = std::env::var("ONLY") {
        let i: usize = i.parse().expect("ONLY=index");
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < 4.0 {
            for s in &scenarios {
                execute_with(s, &configs[i].1);
            }
        }
        return;
    }
    for (name, opts) in &configs {
        let t = Instant::now();
        let mut states = 0;
        for s in &scenarios {
            states += execute_with(s, opts).crash_states;
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / scenarios.len() as f64;
        println!(
            "{name:<50} {ms:8.3} ms/input  {:5.1} states/input",
            states as f64 / scenarios.len() as f64
        );
    }
    let t = Instant::now();
    for d in &inputs {
        e4fuzz::targets::scenario(d);
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / inputs.len() as f64;
    println!(
        "{:<50} {ms:8.3} ms/input",
        "targets::scenario (the fuzz target)"
    );
}
