//! Every input of the fuzz corpora runs within libFuzzer's memory limit: an input that makes
//! the engine allocate more than `-malloc_limit_mb` (by default `-rss_limit_mb`, 2048 MB) is
//! an out-of-memory crash under libFuzzer and OSS-Fuzz, even where a native run gets away with
//! it (an unused reservation costs no memory). The `image` target found one: a journal inode
//! whose corrupt `i_size` claimed 2^30 blocks reserved room for their numbers before the map
//! said there were a few (`corpus/image/regression-journal-isize-past-its-blocks`).
//!
//! What this checks: the bytes each corpus input allocates, in all, through every target's
//! entry point (a stricter bound than libFuzzer's, which looks at one allocation at a time).
//! What it does not: inputs outside the corpora, or memory the process keeps across inputs
//! (`tests/heap_balance.rs` checks that for `scenario`).
//!
//! This binary holds one test: the allocation counts are process-wide.

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// libFuzzer's default `-malloc_limit_mb` (its `-rss_limit_mb`), in bytes.
const LIMIT: usize = 2048 << 20;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

#[test]
fn corpus_inputs_stay_within_libfuzzers_malloc_limit() {
    let targets: [(&str, Target); 5] = [
        ("image", e4fuzz::targets::image),
        ("journal", e4fuzz::targets::journal),
        ("extent_tree", e4fuzz::targets::extent_tree),
        ("indirect_map", e4fuzz::targets::indirect_map),
        ("scenario", e4fuzz::targets::scenario),
    ];
    let mut checked = 0;
    for (target, run) in targets {
        let dir = format!("{}/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).expect("readable corpus file");
            let region = Region::new(GLOBAL);
            run(&data);
            let c = region.change();
            let bytes = c.bytes_allocated + c.bytes_reallocated.max(0) as usize;
            assert!(
                bytes < LIMIT,
                "{}: {bytes} bytes allocated (libFuzzer's limit is {LIMIT})",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} corpus inputs");
}
