#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build: libFuzzer + ASan, one binary per target, with its seed
# corpus zip, dictionary and options.
cd "$SRC/e4fuzz"
# Under ASan, emit its checks as calls: inline, each check is a compare that cargo fuzz's
# sancov pass (run after ASan) traces and counts as coverage, which makes `scenario` 25% slower
# and adds thousands of edges that are ASan's, not ours (fuzz/README.md).
if [ "${SANITIZER:-address}" = address ]; then
  export RUSTFLAGS="${RUSTFLAGS:-} -Cllvm-args=-asan-instrumentation-with-call-threshold=0"
fi
# `--debug-assertions` keeps our assertions and overflow checks; `-Zub-checks=no` drops the
# precondition checks it would also switch on inside core's unsafe code (every
# `copy_from_slice` tests its ranges for overlap), 12% of `scenario`'s time. ASan still checks
# every access.
export RUSTFLAGS="${RUSTFLAGS:-} -Zub-checks=no"
cargo fuzz build -O --debug-assertions
OUT_DIR=fuzz/target/x86_64-unknown-linux-gnu/release
for f in fuzz/fuzz_targets/*.rs; do
  t=$(basename "${f%.*}")
  cp "$OUT_DIR/$t" "$OUT/"
  if [ -d "corpus/$t" ]; then
    (cd "corpus/$t" && zip -q -j -r "$OUT/${t}_seed_corpus.zip" .)
  fi
  cp fuzz/e4fuzz.dict "$OUT/$t.dict"
  # fuzz/<target>.options overrides the default max_len (scenario: the decoder's bound) and
  # adds libFuzzer flags of its own (scenario: entropic = 0, see fuzz/README.md).
  max_len=8192
  extra=""
  if [ -f "fuzz/$t.options" ]; then
    max_len=$(sed -n 's/^max_len *= *\([0-9]*\).*/\1/p' "fuzz/$t.options")
    extra=$(sed -n '/^\[libfuzzer\]/,/^\[/{/^max_len/d;/^dict/d;s/^\([a-z_]*\) *= *\(.*\)/\1 = \2/p}' "fuzz/$t.options")
  fi
  printf '[libfuzzer]\ndict = %s.dict\nmax_len = %s\n' "$t" "$max_len" > "$OUT/$t.options"
  if [ -n "$extra" ]; then printf '%s\n' "$extra" >> "$OUT/$t.options"; fi
  # The targets' own ASan defaults (fuzz/asan_defaults.rs), restated here because ClusterFuzz
  # sets ASAN_OPTIONS, which overrides them: the crate is safe Rust (#![forbid(unsafe_code)]),
  # so there is no use-after-free or use-after-return for the quarantine and the fake stack to
  # catch, and with allocation stacks they cost ~40% of the `scenario` target's time.
  printf '[asan]\nquarantine_size_mb = 0\ndetect_stack_use_after_return = 0\nmalloc_context_size = 0\n' >> "$OUT/$t.options"
done
