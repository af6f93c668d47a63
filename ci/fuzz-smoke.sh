#!/usr/bin/env bash
# Build every fuzz target with cargo fuzz and run each briefly on a copy of its seed corpus,
# then build the AFL++ variants and run each for a few seconds. Installs cargo-fuzz and
# cargo-afl when missing. Without a nightly toolchain it builds with `-s none` on stable
# (no sanitizer) and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SMOKE_SECS:-30}
AFL_SECS=${AFL_SMOKE_SECS:-10}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if cargo +nightly --version >/dev/null 2>&1; then
  TC=(+nightly); SAN=()
  # ASan checks as calls, so that sancov does not trace ASan's own shadow compares (see
  # fuzz/README.md, "Throughput under ASan").
  # No precondition checks in core's unsafe code under --debug-assertions (ci/oss-fuzz/build.sh).
  # A nightly-only flag: cargo afl below builds with the caller's RUSTFLAGS.
  AFL_RUSTFLAGS="${RUSTFLAGS:-}"
  export RUSTFLAGS="${RUSTFLAGS:-} -Cllvm-args=-asan-instrumentation-with-call-threshold=0 -Zub-checks=no"
else
  TC=(); SAN=(-s none)
  echo "fuzz-smoke: no nightly toolchain; building with 'cargo fuzz build -s none' on stable (no ASan)"
fi
TARGETS=$(cargo fuzz list)
for t in $TARGETS; do
  echo "== cargo fuzz: $t (${SECS}s)"
  cargo "${TC[@]}" fuzz build "${SAN[@]}" -O --debug-assertions "$t"
  mkdir -p "$WORK/$t"
  cp -r corpus/"$t"/. "$WORK/$t"/ 2>/dev/null || true
  # The target's own libFuzzer flags from fuzz/<target>.options (scenario: max_len, entropic).
  flags=()
  if [ -f "fuzz/$t.options" ]; then
    read -r -a flags <<<"$(sed -n '/^\[libfuzzer\]/,/^\[/{s/^\([a-z_]*\) *= *\(.*\)/-\1=\2/p}' "fuzz/$t.options" | paste -sd' ')"
  fi
  cargo "${TC[@]}" fuzz run "${SAN[@]}" -O --debug-assertions "$t" "$WORK/$t" -- \
    "${flags[@]}" -max_total_time="$SECS" -dict=fuzz/e4fuzz.dict -print_final_stats=1 2>&1 | tail -n 12
done

echo "== AFL++"
if [ -n "${AFL_RUSTFLAGS+set}" ]; then export RUSTFLAGS="$AFL_RUSTFLAGS"; fi
command -v cargo-afl >/dev/null || cargo install cargo-afl --locked
cargo afl config --build >/dev/null 2>&1 || true
(cd fuzz && cargo afl build --release --no-default-features --features afl)
for t in $TARGETS; do
  echo "== afl: $t (${AFL_SECS}s)"
  out="$WORK/afl-$t"
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
    cargo afl fuzz -V "$AFL_SECS" -i corpus/"$t" -o "$out" fuzz/target/release/"$t" >/dev/null 2>&1 || true
  if [ -f "$out/default/fuzzer_stats" ]; then
    grep -E '^(execs_done|execs_per_sec|saved_crashes)' "$out/default/fuzzer_stats"
    crashes=$(awk -F: '/^saved_crashes/ {gsub(/ /,"",$2); print $2}' "$out/default/fuzzer_stats")
    if [ "${crashes:-0}" != "0" ]; then echo "afl found crashes in $t"; exit 1; fi
  else
    echo "afl: no stats for $t"; exit 1
  fi
done
echo "fuzz-smoke: ok"
