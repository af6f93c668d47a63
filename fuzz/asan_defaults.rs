//! ASan's default options for every e4fuzz fuzz target. The ASan runtime reads them at start-up
//! through `__asan_default_options`; `ASAN_OPTIONS` in the environment (and OSS-Fuzz's `[asan]`
//! section of `<target>.options`) overrides any of them. Without ASan nothing calls this.
//!
//! The crate is safe Rust (`#![forbid(unsafe_code)]`), so the reports these options give up are
//! ones safe code cannot produce; a finding in a dependency's `unsafe` still stops the run with
//! the faulting access's stack. Together they make `scenario` ~1.7× faster under ASan
//! (fuzz/README.md, "Throughput under ASan"):
//! - `quarantine_size_mb=0`: no quarantine of freed memory (use-after-free), 25% of the time;
//! - `detect_stack_use_after_return=0`: no fake stack frames (a dangling stack reference does
//!   not borrow-check), 30% of the time;
//! - `malloc_context_size=0`: no stack unwound and stored at each allocation (reports lose the
//!   allocation's stack; rerun with `ASAN_OPTIONS=malloc_context_size=30` to get it), 10%.

/// The options, `:`-separated as in `ASAN_OPTIONS`.
const DEFAULTS: &std::ffi::CStr =
    c"quarantine_size_mb=0:detect_stack_use_after_return=0:malloc_context_size=0";

/// Called by the ASan runtime before `main` (a weak symbol there; this definition wins).
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    DEFAULTS.as_ptr()
}
