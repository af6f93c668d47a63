//! Oracles: judges of what the engine did and wrote. Each oracle's module doc says what it
//! verifies and what it does not.
//!
//! | oracle | module |
//! |---|---|
//! | `e2fsck` | [`e2fsck`]: the real e2fsck 1.47 run on an image file |
//! | `fsck` | [`fsck`]: our e2fsck-style checker with stable problem codes |

pub mod e2fsck;
pub mod fsck;
