use e4fuzz::harness::campaign::scenario_of;
use e4fuzz::harness::{execute_with, ExecOpts};
use rand::{Rng, SeedableRng};
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(5);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3_000_009);
    for i in 0..n {
        let len = rng.random_range(64..4096);
        let mut input = vec![0u8; len];
        rng.fill(&mut input[..]);
        let s = scenario_of(&input, "fixed", Default::default());
        let t = std::time::Instant::now();
        let mut s = s;
        if std::env::var("NOEXT").is_ok() {
            s.geometry.extents = false;
            for f in &mut s.setup {
                f.indirect = true;
            }
        }
        let v = execute_with(
            &s,
            &ExecOpts {
                fsck: if std::env::var("FSCK").is_ok() { e4fuzz::harness::FsckScope::Last } else { e4fuzz::harness::FsckScope::Off },
                ..ExecOpts::default()
            },
        );
        println!(
            "exec {i}: {:?} states {} writes {} findings {}",
            t.elapsed(),
            v.crash_states,
            v.device_writes,
            v.findings.len()
        );
        if !v.findings.is_empty() || std::env::var("TRACE").is_ok() {
            println!("{}\n{}", s.to_repro(), v.trace);
        }
    }
}
