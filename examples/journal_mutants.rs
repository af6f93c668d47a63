//! The replay differential at scale (not a test; `tests/integration/replay_mutants.rs` runs a
//! few dozen cases): mutate one block of a journal that needs recovery, replay it with ours,
//! with `e2fsck -y -E journal_only` and, with `KERNEL=1` (root, loop mounts), with the
//! kernel's mount, and compare (`e4fuzz::oracle::replay_diff`).
//!
//! ```text
//! cargo run --release --example journal_mutants [CASES] [SEED]          # default 300, 1
//! KERNEL=1 cargo run --release --example journal_mutants 300 3          # also the kernel
//! MUTATIONS=3 cargo run --release --example journal_mutants             # 3 mutations a case
//! ```
//!
//! Prints each disagreement (and keeps its image in the scratch directory), then a count per
//! kind of agreement. Exit status 1 if anything disagreed.

use e4fuzz::oracle::replay_diff::{self, Outcome};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let cases: u32 = args.next().map_or(300, |a| a.parse().expect("CASES"));
    let seed: u64 = args.next().map_or(1, |a| a.parse().expect("SEED"));
    let kernel = std::env::var_os("KERNEL").is_some();
    // MUTATIONS=k: k mutations per case (each of its own block, maybe the same one).
    let per_case: u32 = std::env::var("MUTATIONS").map_or(1, |v| v.parse().expect("MUTATIONS"));
    let dir = std::env::temp_dir().join(format!("e4fuzz-mutants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let bases: Vec<Vec<u8>> = replay_diff::bases(&dir)
        .expect("bases (needs mke2fs and debugfs)")
        .iter()
        .map(|p| std::fs::read(p).expect("base image"))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    let mut differ = 0;
    for n in 0..cases {
        let b = rng.random_range(0..bases.len());
        let mut image = bases[b].clone();
        let case = (0..per_case)
            .map(|_| {
                replay_diff::mutate(&mut image, &mut rng)
                    .expect("mutation")
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut judge = |side: &str, outcome: Outcome| match outcome {
            Outcome::Differ(why) => {
                differ += 1;
                let keep = dir.join(format!("case{n}.img"));
                std::fs::write(&keep, &image).expect("keeping the image");
                println!(
                    "case {n} (base {b}, {case}): {side} differs: {why} [{}]",
                    keep.display()
                );
            }
            Outcome::Agree(how) => *tally.entry(format!("{side}: {how}")).or_default() += 1,
            Outcome::Skipped(_) => *tally.entry(format!("{side}: skipped")).or_default() += 1,
            Outcome::Known(why) => *tally.entry(format!("{side}: known: {why}")).or_default() += 1,
        };
        judge(
            "e2fsck",
            replay_diff::against_e2fsck(&image, &dir).expect("e2fsck side"),
        );
        if kernel {
            judge(
                "kernel",
                replay_diff::against_kernel(&image).expect("kernel side"),
            );
        }
    }
    for (k, v) in &tally {
        println!("{v:6}  {k}");
    }
    println!("{cases} cases (seed {seed}): {differ} disagreements");
    if differ == 0 {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::process::exit(i32::from(differ > 0));
}
