//! The `scenario` fuzz target leaves the heap as it found it. libFuzzer runs an input again,
//! to look for a leak, whenever its execution ends with more allocations than frees, and counts
//! that re-run as an execution; caches that grow or churn across executions made it re-run half
//! of them (fuzz/README.md, "Throughput under ASan").
//!
//! What this checks: after two warm-up passes over the seed corpus and mutants of it (so every
//! template that will ever be cached is cached), a third pass where each execution allocates
//! exactly as many blocks as it frees. What it does not: the first executions of a setup or a
//! geometry, which build and keep a template or a base by design.
//!
//! This binary holds one test: the allocation counts are process-wide.

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The seed corpus and, for each input, `per` mutants with 1–3 bytes changed (libFuzzer's
/// small mutations), from a fixed xorshift sequence.
fn inputs(per: usize) -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/scenario");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("corpus/scenario")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("readable seed"))
        .collect();
    seeds.sort();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    for s in seeds.iter().filter(|s| !s.is_empty()) {
        out.push(s.clone());
        for _ in 0..per {
            let mut m = s.clone();
            for _ in 0..=next() % 3 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            out.push(m);
        }
    }
    out
}

#[test]
fn a_warm_scenario_execution_frees_all_it_allocates() {
    let inputs = inputs(6);
    for _ in 0..2 {
        inputs.iter().for_each(|d| e4fuzz::targets::scenario(d));
    }
    let mut unbalanced = Vec::new();
    for (i, d) in inputs.iter().enumerate() {
        let region = Region::new(GLOBAL);
        e4fuzz::targets::scenario(d);
        let c = region.change();
        if c.allocations != c.deallocations {
            unbalanced.push((i, c.allocations as i64 - c.deallocations as i64));
        }
    }
    assert!(
        unbalanced.is_empty(),
        "{} of {} warm executions ended with more (or fewer) allocations than frees \
         (input index, difference): {unbalanced:?}",
        unbalanced.len(),
        inputs.len()
    );
}
