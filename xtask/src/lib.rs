//! The harness behind `cargo xtask`: experiment files, runs of the release engine, statistics,
//! reports and baselines. `main.rs` only parses the command line and dispatches here.
//!
//! The harness never measures inside itself: it builds the `smallmind` binary in release, spawns
//! it per run and reads the results files it writes.

pub mod baseline;
pub mod bisect;
pub mod calibrate;
pub mod charts;
pub mod check;
pub mod ci;
pub mod compare;
pub mod experiment;
pub mod machine;
pub mod report;
pub mod results;
pub mod runner;
pub mod spec;

use std::path::{Path, PathBuf};

/// The workspace root: every path a task uses is anchored here.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the workspace root").to_path_buf()
}

/// An error in what the user asked for (exit code 2), as opposed to a failure (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
