//! Corpus replay: every seed under `corpus/<target>/` runs through the same library entry
//! point the fuzzers use (`e4fuzz::targets`), so a crash found by any engine and saved there
//! is a regression test of plain `cargo test`.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: {name} panicked");
    }
}

#[test]
fn image_corpus() {
    replay("image", e4fuzz::targets::image);
}

#[test]
fn journal_corpus() {
    replay("journal", e4fuzz::targets::journal);
}

#[test]
fn indirect_map_corpus() {
    replay("indirect_map", e4fuzz::targets::indirect_map);
}

#[test]
fn extent_tree_corpus() {
    replay("extent_tree", e4fuzz::targets::extent_tree);
}

#[test]
fn scenario_corpus() {
    replay("scenario", e4fuzz::targets::scenario);
}
