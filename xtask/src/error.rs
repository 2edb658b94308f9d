//! The harness's errors and the exit codes they end a task with.
//!
//! Tasks return `anyhow::Result`, whose chain carries context; the kind of failure, and so the
//! exit code, is the first [`Error`] in that chain. Anything else is a failure of the harness
//! itself (exit 1).

use std::path::{Path, PathBuf};

/// What went wrong, by who can act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What the user asked for is wrong: a flag, an experiment file, a results or baseline file
    /// that is damaged or does not fit the experiment. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// This commit's engine cannot be tested: it does not build, or cannot run the workload (as
    /// when it predates `smallmind bench`). `check` exits 125 on it, so `git bisect run` skips
    /// the commit; other tasks exit 1.
    #[error("{0}")]
    Untestable(String),
    /// A file could not be read or written (exit 1): the path, then what the OS said.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Exit codes, as documented in `cargo xtask --help` and `docs/experiments.md#exit-codes`.
pub mod exit {
    /// Success; for `check`, within tolerance.
    pub const OK: u8 = 0;
    /// A failure: a regression for `check`, wrong output, an I/O error.
    pub const FAILURE: u8 = 1;
    /// A usage error: see [`super::Error::Usage`].
    pub const USAGE: u8 = 2;
    /// A regression against the stored baseline beyond the experiment's tolerance
    /// (`experiment`, `baseline`, `report`; `check` says 1, as `git bisect run` expects).
    pub const REGRESSION: u8 = 3;
    /// `check`: this commit cannot be tested; `git bisect run` skips it.
    pub const SKIP: u8 = 125;
}

/// The first harness [`Error`] in `err`'s chain, if any.
pub fn kind(err: &anyhow::Error) -> Option<&Error> {
    err.chain().find_map(|e| e.downcast_ref::<Error>())
}

/// The exit code `err` ends a task with: 2 for a usage error, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match kind(err) {
        Some(Error::Usage(_)) => exit::USAGE,
        _ => exit::FAILURE,
    }
}

/// Whether `err` says the engine cannot be tested at this commit.
pub fn is_untestable(err: &anyhow::Error) -> bool {
    matches!(kind(err), Some(Error::Untestable(_)))
}

/// A usage error (exit 2) as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Error::Usage(message.into()).into()
}

/// Adds the path to an I/O error: `std::fs::read(p).at(p)?`.
pub trait PathContext<T> {
    fn at(self, path: &Path) -> Result<T, Error>;
}

impl<T> PathContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, Error> {
        self.map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }
}
