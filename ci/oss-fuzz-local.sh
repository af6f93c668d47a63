#!/usr/bin/env bash
# Run ci/oss-fuzz/build.sh without docker (SRC/OUT/WORK set as OSS-Fuzz does), then run each
# built target briefly on its seed corpus, as run_fuzzer would.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/src" "$TMP/out" "$TMP/work"
ln -s "$ROOT" "$TMP/src/e4fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
command -v zip >/dev/null || { apt-get update -qq && apt-get install -y -qq zip unzip; }
env SRC="$TMP/src" OUT="$TMP/out" WORK="$TMP/work" SANITIZER=address FUZZING_ENGINE=libfuzzer \
  ARCHITECTURE=x86_64 RUSTUP_TOOLCHAIN=nightly \
  RUSTFLAGS="--cfg fuzzing -Cdebuginfo=1 -Cforce-frame-pointers" bash -eu "$ROOT/ci/oss-fuzz/build.sh"
ls "$TMP/out"
for f in "$ROOT"/fuzz/fuzz_targets/*.rs; do
  t=$(basename "${f%.*}")
  mkdir -p "$TMP/run/$t"
  if [ -f "$TMP/out/${t}_seed_corpus.zip" ]; then unzip -q -o "$TMP/out/${t}_seed_corpus.zip" -d "$TMP/run/$t"; fi
  echo "== $t"
  # Every [libfuzzer] key but dict as a flag (max_len, and scenario's entropic), as run_fuzzer.
  flags=$(sed -n '/^\[libfuzzer\]/,/^\[/{/^dict/d;s/^\([a-z_]*\) = \(.*\)/-\1=\2/p}' "$TMP/out/$t.options")
  asan=$(sed -n '/^\[asan\]/,/^\[/{s/^\([a-z_]*\) = \(.*\)/\1=\2/p}' "$TMP/out/$t.options" | paste -sd: -)
  ASAN_OPTIONS="$asan" "$TMP/out/$t" -dict="$TMP/out/$t.dict" $flags -max_total_time="${OSS_FUZZ_SMOKE_SECS:-5}" "$TMP/run/$t" 2>&1 | tail -n 3
done
echo "oss-fuzz-local: ok"
