//! Models: GPT-2 (`gpt2/`) and Llama (`llama/`), each reading like its paper and owning its
//! config and file formats; [`Model`], which lets the generation loop and the tools run either;
//! built-in presets; the loader of `--model` (`checkpoint.rs`); what both families' files share
//! (`safetensors_io.rs`, `model_dir.rs`, `config_keys.rs`, `footprint.rs`); the GGUF container
//! (`gguf/`), whose Llama keys and tensors are `llama/gguf.rs`.
//!
//! Siblings never import each other in a cycle (tests/tidy.rs): the family folders use the
//! shared modules, `presets` uses the families, and `checkpoint` uses them all.

pub mod checkpoint;
pub mod config_keys;
pub mod footprint;
pub mod gguf;
pub mod gpt2;
pub mod llama;
pub mod model_dir;
pub mod presets;
pub mod safetensors_io;

pub use gpt2::Gpt2;
pub use gpt2::config::Gpt2Config;
pub use llama::Llama;
pub use llama::config::LlamaConfig;

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

/// What one token costs a model, in f32 elements of weights (see [`ModelRef::token_cost`]).
#[derive(Debug, Clone, Copy)]
struct TokenCost {
    n_layer: f64,
    /// Weights of one layer's matrix products.
    layer_matmul: f64,
    /// Of those, what the last layer runs for the last row only.
    last_layer_row_only: f64,
    /// The LM head or classifier.
    head: f64,
    /// Width of one cached key (or value) row.
    kv_width: f64,
    /// Width of all query heads together.
    q_width: f64,
    /// Everything else read per token: norms, biases, embedding rows.
    other: f64,
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

    /// What one token costs this model, in f32 elements of weights.
    fn token_cost(&self) -> TokenCost {
        match self {
            ModelRef::Gpt2(m) => {
                let c = &m.config;
                let (d, inner, v) = (c.n_embd as f64, c.n_inner as f64, c.vocab_size as f64);
                TokenCost {
                    n_layer: c.n_layer as f64,
                    layer_matmul: d * 3.0 * d + d * d + 2.0 * d * inner,
                    // c_proj and the MLP: q, k and v are needed for every row.
                    last_layer_row_only: d * d + 2.0 * d * inner,
                    head: v * d,
                    kv_width: d,
                    q_width: d,
                    // Biases, both LayerNorms per layer, ln_f, one row each of wte and wpe.
                    other: c.n_layer as f64 * (3.0 * d + d + inner + d + 4.0 * d) + 2.0 * d + 2.0 * d,
                }
            }
            ModelRef::Llama(m) => {
                let c = &m.config;
                let (d, h, v, kv) =
                    (c.dim as f64, c.hidden_dim as f64, c.vocab_size as f64, c.kv_dim() as f64);
                TokenCost {
                    n_layer: c.n_layers as f64,
                    layer_matmul: 2.0 * d * d + 2.0 * kv * d + 3.0 * h * d,
                    // wq, wo and SwiGLU: k and v are needed for every row.
                    last_layer_row_only: 2.0 * d * d + 3.0 * h * d,
                    head: v * d,
                    kv_width: kv,
                    q_width: d,
                    // Both RMSNorms per layer, the final one, one embedding row.
                    other: c.n_layers as f64 * 2.0 * d + d + d,
                }
            }
        }
    }

    /// Bytes one decode step at `position` reads (f32): every weight of its matrix products, the
    /// norms and one embedding row, and the keys and values of positions `0..=position`.
    pub fn decode_bytes_per_token(&self, position: f64) -> f64 {
        let c = self.token_cost();
        4.0 * (c.n_layer * c.layer_matmul
            + c.head
            + c.other
            + 2.0 * c.n_layer * (position + 1.0) * c.kv_width)
    }

    /// Floating-point operations (2 per multiply-add) of a prefill of `prompt_tokens`, per
    /// prompt token, as this engine computes it: every row through every layer's matrix
    /// products but the last layer's, where only the last row goes past attention; the
    /// classifier once; attention's scores and weighted values over each row's keys.
    pub fn prefill_flop_per_token(&self, prompt_tokens: usize) -> f64 {
        let c = self.token_cost();
        let p = prompt_tokens.max(1) as f64;
        let matmul = p * c.n_layer * c.layer_matmul - (p - 1.0) * c.last_layer_row_only + c.head;
        // Row i attends over i + 1 keys: sum p (p + 1) / 2 per layer but the last (one row, p keys).
        let attention_keys = (c.n_layer - 1.0) * p * (p + 1.0) / 2.0 + p;
        (2.0 * matmul + 4.0 * c.q_width * attention_keys) / p
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
