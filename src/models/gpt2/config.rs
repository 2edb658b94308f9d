//! Hyperparameters of a GPT-2-architecture model, validated once at load (the checks both
//! families share are [`crate::models::footprint`]).

use crate::error::{Error, Result};
use crate::models::footprint::{product, require_footprint, require_positive, sum_of_products};

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
    /// Checks the invariants every kernel relies on, and that running this shape (its weights
    /// and KV cache, sizes computed in checked arithmetic) fits this machine's memory.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first dimension or size that is wrong.
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
        let (l, p, c) = (self.n_layer, self.n_ctx, self.n_embd);
        let kv_cache = format!("KV cache for {p} positions");
        require_footprint(&[
            ("weights", self.checked_parameter_count().and_then(|n| n.checked_mul(size_of::<f32>()))),
            (&kv_cache, product(&[l, p, c, 2, size_of::<f32>()])),
        ])
    }

    /// Columns of one attention head (0 when `n_head` is 0, a shape
    /// [`Gpt2Config::validate`] refuses).
    pub fn head_dim(&self) -> usize {
        self.n_embd.checked_div(self.n_head).unwrap_or(0)
    }

    /// What layer `layer_idx`'s scores `q·kᵀ` are multiplied by: `1 / sqrt(head_dim)` when
    /// `scale_attn_weights`, times `1 / (layer_idx + 1)` when `scale_attn_by_inverse_layer_idx`,
    /// as Hugging Face's `GPT2Attention` divides them.
    pub fn attention_scale(&self, layer_idx: usize) -> f32 {
        let by_head = if self.scale_attn_weights { (self.head_dim() as f64).sqrt() } else { 1.0 };
        let by_layer = if self.scale_attn_by_inverse_layer_idx { (layer_idx + 1) as f64 } else { 1.0 };
        (1.0 / (by_head * by_layer)) as f32
    }

    /// Parameters, counting a tied LM head once; `usize::MAX` for a shape whose count overflows
    /// (which [`Gpt2Config::validate`] refuses).
    pub fn parameter_count(&self) -> usize {
        self.checked_parameter_count().unwrap_or(usize::MAX)
    }

    /// Parameters, counting a tied LM head once, or `None` when the count overflows `usize`.
    pub fn checked_parameter_count(&self) -> Option<usize> {
        let (c, l, v, inner) = (self.n_embd, self.n_layer, self.vocab_size, self.n_inner);
        let per_block = sum_of_products(&[
            &[2, 2, c],  // ln_1, ln_2
            &[c, 3, c],  // attn.c_attn.weight
            &[3, c],     // attn.c_attn.bias
            &[c, c],     // attn.c_proj.weight
            &[c],        // attn.c_proj.bias
            &[c, inner], // mlp.c_fc.weight
            &[inner],    // mlp.c_fc.bias
            &[inner, c], // mlp.c_proj.weight
            &[c],        // mlp.c_proj.bias
        ])?;
        let head = if self.tie_word_embeddings { 0 } else { v };
        sum_of_products(&[&[v, c], &[self.n_ctx, c], &[l, per_block], &[2, c], &[head, c]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::footprint::require_footprint_within;

    fn config() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 10,
            n_ctx: 8,
            n_embd: 4,
            n_head: 2,
            n_layer: 2,
            n_inner: 16,
            layer_norm_epsilon: 1e-5,
            tie_word_embeddings: true,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
        }
    }

    #[test]
    fn parameter_counts_are_checked_and_saturate() {
        assert_eq!(
            config().checked_parameter_count(),
            Some(10 * 4 + 8 * 4 + 2 * (16 + 60 + 20 + 64 + 16 + 68) + 8)
        );
        let huge = Gpt2Config { n_embd: 1 << 32, n_head: 1, ..config() };
        assert_eq!(huge.checked_parameter_count(), None);
        assert_eq!(huge.parameter_count(), usize::MAX);
        let err = huge.validate().unwrap_err().to_string();
        assert!(err.contains("weights") && err.contains("overflow 64-bit"), "{err}");
    }

    #[test]
    fn shapes_beyond_the_memory_are_refused_with_what_they_need() {
        // A context of 2^40 positions: the KV cache alone is 2 * 2 * 2^40 * 4 * 4 bytes.
        let err = Gpt2Config { n_ctx: 1 << 40, ..config() }.validate().unwrap_err().to_string();
        assert!(
            err.contains("needs") && err.contains("KV cache for 1099511627776 positions: 64.0 TiB"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
        let parts = [("weights", Some(3 << 30)), ("KV cache", Some(1 << 30))];
        assert!(require_footprint_within(&parts, 4 << 30, "4 GiB").is_ok());
        let err = require_footprint_within(&parts, (4 << 30) - 1, "a budget").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid model config: this shape needs 4.0 GiB of memory to run (weights: 3.0 GiB, KV cache: 1.0 GiB), \
             more than a budget, 4.0 GiB"
        );
        let err =
            require_footprint_within(&[("a", Some(usize::MAX)), ("b", Some(2))], u64::MAX, "x").unwrap_err();
        assert!(err.to_string().contains("the b of this shape would overflow"), "{err}");
    }
}
