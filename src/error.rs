//! The library's typed errors: what went wrong with a model, a checkpoint or an input, and what
//! to do about it. Binaries wrap them with `anyhow` context; kernels never return errors.

use std::path::PathBuf;

/// A library error. Every message names the offending thing and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid model config: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
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
    #[error("unknown model `{0}`: not a preset ({presets}), a directory or a llama2.c .bin file", presets = crate::models::presets::names().join(", "))]
    UnknownModel(String),
    #[error("invalid input: {0}")]
    Input(String),
    /// A measurement could not be taken or is not trustworthy (not the user's input).
    #[error("{0}")]
    Measurement(String),
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
