//! Oracles: judges of what the engine did and wrote. Each oracle's module doc says what it
//! verifies and what it does not.
//!
//! | oracle | module |
//! |---|---|
//! | `e2fsck` | [`e2fsck`]: the real e2fsck 1.47 run on an image file |
//! | reference model | [`model`]: what each scenario file holds and what a crash may show |
//! | `data-loss`, `durability`, `stale-data` | [`crash`]: a recovered image's files against the model |
//! | `flag-on-disk` | [`flags`]: every inode record written, home or journal |
//! | `fsck` | [`fsck`]: our e2fsck-style checker with stable problem codes |
//! | `migrate-atomicity` | [`atomicity`]: a crash around an isolated migration keeps the file's mapping |
//! | `kernel` | [`kernel`]: the real kernel on a loop mount (journal replay, `chattr ±e`) |
//! | replay differential | [`replay_diff`]: mutated logs replayed by us, e2fsck and the kernel |

pub mod atomicity;
pub mod crash;
pub mod e2fsck;
pub mod flags;
pub mod fsck;
pub mod kernel;
pub mod model;
pub mod replay_diff;
