//! smallmind: a GPT-2 and Llama inference engine whose optimizations are runtime toggles.
//!
//! The tree is the architecture: [`kernels`] (pure functions on slices) -> [`layers`] (which
//! hold the optimization dispatch) -> [`models`] (GPT-2 and Llama, reading like the papers) ->
//! [`generate`] (prefill and decode). One [`Optimizations`] value is passed explicitly
//! everywhere; see ARCHITECTURE.md for the one place each toggle is read.

//!
//! Without the default `engine` feature the crate is only what a results file holds (the
//! `bench` results format, [`optimizations`], [`error`]): what the workbench reads.

pub mod bench;
pub mod error;
#[cfg(feature = "engine")]
pub mod generate;
#[cfg(feature = "engine")]
pub mod kernels;
#[cfg(feature = "engine")]
pub mod layers;
#[cfg(feature = "engine")]
pub mod models;
#[cfg(feature = "fetch")]
pub mod named_models;
pub mod optimizations;
pub mod pool;
pub mod sampler;
#[cfg(feature = "engine")]
pub mod tokenizer;

pub use error::{Error, ErrorKind, IoContext, Result};
#[cfg(feature = "engine")]
pub use generate::{GenerateParams, Generated, Session};
#[cfg(feature = "engine")]
pub use models::{Gpt2, Gpt2Config, Llama, LlamaConfig, Model, ModelRef};
pub use optimizations::{Optimization, Optimizations};
pub use sampler::SamplingParams;
#[cfg(feature = "engine")]
pub use tokenizer::Tokenizer;
