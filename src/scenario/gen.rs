//! The fuzz-bytes decoder (placeholder: being written).
use super::Scenario;

/// Decode fuzzer bytes (placeholder).
pub fn generate(_data: &[u8]) -> Scenario {
    Scenario::default()
}
