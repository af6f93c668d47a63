//! The `e4fuzz` command.
fn main() {
    std::process::exit(0);
}
