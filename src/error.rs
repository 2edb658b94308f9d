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
    /// `--model` names no preset (`presets`: the valid names), directory or file.
    #[error("unknown model `{spec}`: not a preset ({presets}), a directory or a llama2.c .bin file", presets = .presets.join(", "))]
    UnknownModel { spec: String, presets: Vec<&'static str> },
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

    /// The process exit code this error ends the command line with: 1 when the engine's own
    /// output cannot be trusted (a measurement, non-finite logits), 2 for everything the user
    /// can fix in their input.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Measurement(_) | Error::NonFiniteLogits { .. } => 1,
            _ => 2,
        }
    }
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
