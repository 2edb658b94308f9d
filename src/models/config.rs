//! Hyperparameters of a GPT-2-architecture model, validated once at load.

use crate::error::{Error, Result};

/// The shape of a GPT-2 model (names follow Hugging Face's `GPT2Config`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gpt2Config {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Context length: positions in the learned position embedding.
    pub n_ctx: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Attention heads; divides `n_embd`.
    pub n_head: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the MLP's hidden layer (GPT-2: `4 * n_embd`).
    pub n_inner: usize,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f32,
    /// Whether the LM head is the token embedding (`true`) or a separate `lm_head` without bias.
    pub tie_word_embeddings: bool,
    /// Whether attention scores are divided by `sqrt(head_dim)` (Hugging Face's
    /// `scale_attn_weights`; GPT-2: `true`).
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    /// Whether layer `layer_idx`'s attention scores are also divided by `layer_idx + 1`
    /// (Hugging Face's `scale_attn_by_inverse_layer_idx`, from Mistral's stable GPT-2 training;
    /// GPT-2: `false`).
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
}

fn yes() -> bool {
    true
}

impl Gpt2Config {
    /// Checks the invariants every kernel relies on.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("vocab_size", self.vocab_size),
            ("n_ctx", self.n_ctx),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("n_layer", self.n_layer),
            ("n_inner", self.n_inner),
        ];
        require_positive(&fields)?;
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Error::Config(format!(
                "n_embd ({}) is not divisible by n_head ({}); heads must split the embedding evenly",
                self.n_embd, self.n_head
            )));
        }
        if self.vocab_size > u32::MAX as usize {
            return Err(Error::Config("vocab_size does not fit in 32-bit token ids".into()));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return Err(Error::Config("layer_norm_epsilon must be a positive number".into()));
        }
        Ok(())
    }

    /// Columns of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// What layer `layer_idx`'s scores `q·kᵀ` are multiplied by: `1 / sqrt(head_dim)` when
    /// `scale_attn_weights`, times `1 / (layer_idx + 1)` when `scale_attn_by_inverse_layer_idx`,
    /// as Hugging Face's `GPT2Attention` divides them.
    pub fn attention_scale(&self, layer_idx: usize) -> f32 {
        let by_head = if self.scale_attn_weights { (self.head_dim() as f64).sqrt() } else { 1.0 };
        let by_layer = if self.scale_attn_by_inverse_layer_idx { (layer_idx + 1) as f64 } else { 1.0 };
        (1.0 / (by_head * by_layer)) as f32
    }

    /// Parameters, counting a tied LM head once.
    pub fn parameter_count(&self) -> usize {
        let (c, l) = (self.n_embd, self.n_layer);
        let per_block = 2 * 2 * c // ln_1, ln_2
            + c * 3 * c + 3 * c // c_attn
            + c * c + c // attn.c_proj
            + c * self.n_inner + self.n_inner // mlp.c_fc
            + self.n_inner * c + c; // mlp.c_proj
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * c };
        self.vocab_size * c + self.n_ctx * c + l * per_block + 2 * c + head
    }
}

/// An error naming the first of `fields` (name, value) that is zero.
pub(crate) fn require_positive(fields: &[(&str, usize)]) -> Result<()> {
    match fields.iter().find(|(_, value)| *value == 0) {
        Some((name, _)) => Err(Error::Config(format!("{name} must be positive"))),
        None => Ok(()),
    }
}
