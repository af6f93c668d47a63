//! Fuzz target `scenario`: thin glue over `e4fuzz::targets::scenario` (the full harness; the
//! engine profile comes from `E4FUZZ_PROFILE` / `E4FUZZ_BUG`, read once). The same source builds
//! for libFuzzer (`cargo fuzz run scenario`) and AFL++ (`--no-default-features --features afl`).
#![cfg_attr(feature = "libfuzzer", no_main)]

#[path = "../asan_defaults.rs"]
mod asan_defaults;

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| e4fuzz::targets::scenario(data));

#[cfg(feature = "afl")]
fn main() {
    afl::fuzz!(|data: &[u8]| e4fuzz::targets::scenario(data));
}

#[cfg(not(any(feature = "libfuzzer", feature = "afl")))]
fn main() {
    // Replay files given on the command line (no fuzzing engine compiled in).
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("readable input");
        e4fuzz::targets::scenario(&data);
    }
}
