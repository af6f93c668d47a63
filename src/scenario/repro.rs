//! The `.repro` text codec (placeholder: being written).
use super::Scenario;

/// First line of every `.repro` file.
pub const MAGIC: &str = "e4fuzz-repro";

/// Encode (placeholder).
pub fn encode(_s: &Scenario) -> String {
    format!("{MAGIC} v1\n")
}

/// Decode (placeholder).
pub fn decode(_text: &str) -> crate::Result<Scenario> {
    Err(crate::Error::Invalid("the .repro parser is not written yet".into()))
}
