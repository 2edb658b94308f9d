//! Models: GPT-2 and Llama, each reading like its paper; [`Model`], which lets the generation
//! loop and the tools run either; built-in presets; checkpoint loading and writing.

pub mod checkpoint;
pub mod config;
pub mod config_keys;
pub mod gpt2;
pub mod hf_llama;
pub mod llama;
pub mod llama2c;
pub mod presets;

pub use config::Gpt2Config;
pub use gpt2::Gpt2;
pub use llama::Llama;
pub use llama2c::LlamaConfig;

use crate::layers::{Ctx, KvCache, KvSource};

/// A model of either architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Gpt2(Gpt2),
    Llama(Llama),
}

/// A borrowed model of either architecture: what a session runs.
#[derive(Debug, Clone, Copy)]
pub enum ModelRef<'m> {
    Gpt2(&'m Gpt2),
    Llama(&'m Llama),
}

impl Model {
    /// A borrowed view of this model.
    pub fn as_ref(&self) -> ModelRef<'_> {
        match self {
            Model::Gpt2(m) => ModelRef::Gpt2(m),
            Model::Llama(m) => ModelRef::Llama(m),
        }
    }
}

impl From<Gpt2> for Model {
    fn from(m: Gpt2) -> Self {
        Model::Gpt2(m)
    }
}

impl From<Llama> for Model {
    fn from(m: Llama) -> Self {
        Model::Llama(m)
    }
}

impl<'m> From<&'m Model> for ModelRef<'m> {
    fn from(m: &'m Model) -> Self {
        m.as_ref()
    }
}

impl<'m> From<&'m Gpt2> for ModelRef<'m> {
    fn from(m: &'m Gpt2) -> Self {
        ModelRef::Gpt2(m)
    }
}

impl<'m> From<&'m Llama> for ModelRef<'m> {
    fn from(m: &'m Llama) -> Self {
        ModelRef::Llama(m)
    }
}

impl ModelRef<'_> {
    /// `gpt2` or `llama`.
    pub fn architecture(&self) -> &'static str {
        match self {
            ModelRef::Gpt2(_) => "gpt2",
            ModelRef::Llama(_) => "llama",
        }
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        match self {
            ModelRef::Gpt2(m) => m.config.vocab_size,
            ModelRef::Llama(m) => m.config.vocab_size,
        }
    }

    /// Positions the model can attend over.
    pub fn n_ctx(&self) -> usize {
        match self {
            ModelRef::Gpt2(m) => m.config.n_ctx,
            ModelRef::Llama(m) => m.config.seq_len,
        }
    }

    /// Parameters, counting a shared head once.
    pub fn parameter_count(&self) -> usize {
        match self {
            ModelRef::Gpt2(m) => m.config.parameter_count(),
            ModelRef::Llama(m) => m.parameter_count(),
        }
    }

    /// Bytes of the weights in memory (f32).
    pub fn weight_bytes(&self) -> usize {
        match self {
            ModelRef::Gpt2(m) => m.weight_bytes(),
            ModelRef::Llama(m) => m.weight_bytes(),
        }
    }

    /// The model's forward pass: the logits after `tokens` at positions `start_pos..`.
    pub fn forward(&self, ctx: &Ctx, tokens: &[u32], start_pos: usize, kv: KvSource, logits: &mut [f32]) {
        match self {
            ModelRef::Gpt2(m) => m.forward(ctx, tokens, start_pos, kv, logits),
            ModelRef::Llama(m) => m.forward(ctx, tokens, start_pos, kv, logits),
        }
    }

    /// An empty KV cache for the whole context.
    pub fn new_kv_cache(&self) -> KvCache {
        match self {
            ModelRef::Gpt2(m) => m.new_kv_cache(),
            ModelRef::Llama(m) => m.new_kv_cache(),
        }
    }
}
