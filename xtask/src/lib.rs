//! The harness behind `cargo xtask`, as a pipeline whose stages are its modules:
//!
//! experiment file ([`plan`]) -> runs of the release engine ([`runner`]) -> results
//! ([`results`]) -> analysis ([`analysis`], with [`stats`]) -> pages and charts ([`report`]) ->
//! published through [`paths`], and appended to the results [`store`]. Each task in [`tasks`] composes these stages; `main.rs` only
//! dispatches the command line declared in [`flags`].
//!
//! The harness never measures inside itself: it builds the `smallmind` binary in release, spawns
//! it per run and reads the results files it writes.

pub mod analysis;
pub mod error;
pub mod flags;
pub mod metrics;
pub mod paths;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod stats;
pub mod store;
pub mod tasks;

use std::path::{Path, PathBuf};

/// A short hash of `text` that is the same on every machine and toolchain (FNV-1a, 64 bits, as
/// 16 hex digits; std's hasher is not promised to be stable): store fingerprints and build-cache
/// keys.
pub fn stable_hash(text: &str) -> String {
    let hash =
        text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// The workspace root: every path a task uses is anchored here.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the workspace root").to_path_buf()
}
