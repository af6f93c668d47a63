//! The `e4fuzz` command: see `e4fuzz --help` and the library's `cli` module.
fn main() {
    std::process::exit(e4fuzz::cli::main());
}
