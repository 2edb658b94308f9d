//! The shape of a Llama model ([`LlamaConfig`]), as llama2.c's header gives it and Hugging
//! Face's `config.json` maps onto it, validated once at load; the two file formats are
//! `llama2c.rs` and `hf.rs`.

use crate::error::{Error, Result};
use crate::models::footprint::{product, require_footprint, require_positive};

/// The shape of a Llama model, as llama2.c's header gives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaConfig {
    /// Width of the residual stream.
    pub dim: usize,
    /// Width of the SwiGLU hidden layer.
    pub hidden_dim: usize,
    pub n_layers: usize,
    /// Query heads; divides `dim`.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); divides `n_heads`.
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    /// Context length.
    pub seq_len: usize,
    /// Whether the classifier is the token embedding.
    pub shared_classifier: bool,
    /// RMSNorm epsilon (llama2.c: 1e-5).
    pub norm_eps: f32,
    /// RoPE base (llama2.c: 10000).
    pub rope_theta: f32,
}

/// The RMSNorm epsilon llama2.c's format implies.
pub const LLAMA2C_NORM_EPS: f32 = 1e-5;
/// The RoPE base llama2.c's format implies.
pub const LLAMA2C_ROPE_THETA: f32 = 10000.0;

impl LlamaConfig {
    /// Checks the invariants the forward pass relies on, and that running this shape (weights,
    /// KV cache and RoPE table, sizes computed in checked arithmetic) fits this machine's memory.
    /// `seq_len` is backed by no tensor, so this is what stops a small file from asking for an
    /// absurd context.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first dimension or size that is wrong.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("dim", self.dim),
            ("hidden_dim", self.hidden_dim),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("vocab_size", self.vocab_size),
            ("seq_len", self.seq_len),
        ];
        require_positive(&fields)?;
        if !self.dim.is_multiple_of(self.n_heads) {
            return Err(Error::Config(format!("n_heads {} does not divide dim {}", self.n_heads, self.dim)));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::Config(format!(
                "n_kv_heads {} does not divide n_heads {}",
                self.n_kv_heads, self.n_heads
            )));
        }
        if !self.head_size().is_multiple_of(2) {
            return Err(Error::Config(format!("head size {} must be even for RoPE", self.head_size())));
        }
        if self.vocab_size > i32::MAX as usize {
            return Err(Error::Config("vocab_size does not fit in 32-bit token ids".into()));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(Error::Config("the RMSNorm epsilon must be a positive number".into()));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(Error::Config("rope_theta must be a number above 1".into()));
        }
        if let Some((name, _)) = self.checked_tensor_sizes().into_iter().find(|(_, n)| n.is_none()) {
            return Err(Error::Config(format!(
                "tensor {name} of this shape has more elements than 64-bit sizes can count: the dimensions are corrupt"
            )));
        }
        let f32_bytes = size_of::<f32>();
        let (kv_cache, rope_table) =
            (format!("KV cache for {} positions", self.seq_len), format!("RoPE table for {}", self.seq_len));
        require_footprint(&[
            ("weights", self.checked_parameter_count().and_then(|n| n.checked_mul(f32_bytes))),
            (&kv_cache, product(&[self.n_layers, self.seq_len, self.kv_dim(), 2, f32_bytes])),
            (&rope_table, product(&[self.seq_len, self.head_size(), f32_bytes])),
        ])
    }

    /// `dim / n_heads` (0 when `n_heads` is 0, a shape [`LlamaConfig::validate`] refuses).
    pub fn head_size(&self) -> usize {
        self.dim.checked_div(self.n_heads).unwrap_or(0)
    }

    /// `n_kv_heads * head_size`: the width of a key or value row (saturating at `usize::MAX`
    /// for a shape [`LlamaConfig::validate`] refuses).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads.saturating_mul(self.head_size())
    }

    /// The tensors in file order: name and number of floats (the RoPE tables included). A size
    /// that overflows `usize` is `usize::MAX` here; [`LlamaConfig::validate`] refuses such shapes.
    pub fn tensor_sizes(&self) -> Vec<(&'static str, usize)> {
        self.checked_tensor_sizes().into_iter().map(|(name, n)| (name, n.unwrap_or(usize::MAX))).collect()
    }

    /// [`LlamaConfig::tensor_sizes`] in checked arithmetic: `None` for a size that overflows.
    pub fn checked_tensor_sizes(&self) -> Vec<(&'static str, Option<usize>)> {
        let (d, h, l, v, kv) = (self.dim, self.hidden_dim, self.n_layers, self.vocab_size, self.kv_dim());
        let rope = product(&[self.seq_len, self.head_size() / 2]);
        let mut sizes = vec![
            ("token_embedding", product(&[v, d])),
            ("rms_att", product(&[l, d])),
            ("wq", product(&[l, d, d])),
            ("wk", product(&[l, d, kv])),
            ("wv", product(&[l, d, kv])),
            ("wo", product(&[l, d, d])),
            ("rms_ffn", product(&[l, d])),
            ("w1", product(&[l, h, d])),
            ("w2", product(&[l, d, h])),
            ("w3", product(&[l, h, d])),
            ("rms_final", Some(d)),
            ("freq_cis_real", rope),
            ("freq_cis_imag", rope),
        ];
        if !self.shared_classifier {
            sizes.push(("classifier", product(&[v, d])));
        }
        sizes
    }

    /// Parameters: every tensor but the legacy RoPE tables, a shared classifier counted once;
    /// `None` when the count overflows `usize`.
    pub fn checked_parameter_count(&self) -> Option<usize> {
        let sizes = self.checked_tensor_sizes();
        let mut weights = sizes.iter().filter(|(name, _)| !is_legacy_rope_table(name));
        weights.try_fold(0usize, |total, (_, n)| total.checked_add((*n)?))
    }
}

/// Whether `name` is one of the legacy format's RoPE tables (read past, never used).
pub(crate) fn is_legacy_rope_table(name: &str) -> bool {
    name.starts_with("freq_cis")
}
