//! smallmind: a GPT-2 and Llama inference engine whose optimizations are runtime toggles.
//!
//! The tree is the architecture: [`kernels`] (pure functions on slices) -> [`layers`] (which
//! hold the optimization dispatch) -> [`models`] (GPT-2 and Llama, reading like the papers) ->
//! [`generate`] (prefill and decode). One [`Optimizations`] value is passed explicitly
//! everywhere; see ARCHITECTURE.md for the one place each toggle is read.

pub mod bench;
pub mod error;
pub mod generate;
pub mod kernels;
pub mod layers;
pub mod models;
pub mod optimizations;
pub mod pool;
pub mod sampler;
pub mod tokenizer;

pub use error::{Error, Result};
pub use generate::{GenerateParams, Generated, Session};
pub use models::{Gpt2, Gpt2Config, Llama, LlamaConfig, Model, ModelRef};
pub use optimizations::{Optimization, Optimizations};
pub use sampler::SamplingParams;
pub use tokenizer::Tokenizer;
