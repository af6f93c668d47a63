#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build: libFuzzer + ASan, one binary per target, with its seed
# corpus zip, dictionary and options.
cd "$SRC/e4fuzz"
cargo fuzz build -O --debug-assertions
OUT_DIR=fuzz/target/x86_64-unknown-linux-gnu/release
for f in fuzz/fuzz_targets/*.rs; do
  t=$(basename "${f%.*}")
  cp "$OUT_DIR/$t" "$OUT/"
  if [ -d "corpus/$t" ]; then
    (cd "corpus/$t" && zip -q -j -r "$OUT/${t}_seed_corpus.zip" .)
  fi
  cp fuzz/e4fuzz.dict "$OUT/$t.dict"
  printf '[libfuzzer]\ndict = %s.dict\nmax_len = 8192\n' "$t" > "$OUT/$t.options"
done
