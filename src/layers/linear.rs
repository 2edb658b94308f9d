//! The parameterised row-wise layers: linear maps (GPT-2's Conv1D with bias; Llama's
//! `nn.Linear` layout without), LayerNorm (GPT-2) and RMSNorm (Llama).

use super::Ctx;
use crate::kernels::{matmul, norm};

/// `y = x · weight + bias`, GPT-2's Conv1D: the weight is stored `(n_in, n_out)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `(n_in, n_out)`.
    pub weight: Vec<f32>,
    /// `(n_out,)`.
    pub bias: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

impl Linear {
    /// `out (n_rows, n_out) = x (n_rows, n_in) · weight + bias`.
    pub fn forward(&self, ctx: &Ctx, x: &[f32], n_rows: usize, out: &mut [f32]) {
        matmul::matmul(x, n_rows, self.n_in, &self.weight, self.n_out, Some(&self.bias), out, ctx.threads);
    }
}

/// A weight matrix in memory aligned to cache lines (64 bytes).
///
/// # Performance
/// A plain `Vec<f32>` of megabytes comes from `mmap` 16 bytes past a page boundary, so every
/// 64-byte vector load of a row straddles two cache lines. Aligned, stories15m decoded 1.24x
/// faster here (626 -> 778 tok/s, `smallmind bench --model stories15m --prompt-tokens 1
/// --max-new-tokens 255 --threads 1`, the two builds run alternately; README, Speed).
pub type Weights = aligned_vec::AVec<f32, aligned_vec::ConstAlign<64>>;

/// `values` copied into cache-line-aligned [`Weights`].
pub fn aligned(values: &[f32]) -> Weights {
    Weights::from_slice(64, values)
}

/// `y = x · weightᵀ`, no bias: the `(n_out, n_in)` layout of PyTorch's `nn.Linear`, in which
/// llama2.c and Hugging Face store every Llama projection (llama2.c's `matmul` is `W @ x`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransposedLinear {
    /// `(n_out, n_in)`, cache-line aligned.
    pub weight: Weights,
    pub n_in: usize,
    pub n_out: usize,
}

impl TransposedLinear {
    /// `out (n_rows, n_out) = x (n_rows, n_in) · weightᵀ`.
    pub fn forward(&self, ctx: &Ctx, x: &[f32], n_rows: usize, out: &mut [f32]) {
        matmul::matmul_transposed(x, n_rows, self.n_in, &self.weight, self.n_out, out, ctx.threads);
    }
}

/// RMSNorm: each row divided by its root mean square, times a learned gain (no bias, no mean).
#[derive(Debug, Clone, PartialEq)]
pub struct RmsNorm {
    /// Gain, `(dim,)`.
    pub weight: Vec<f32>,
    pub eps: f32,
}

impl RmsNorm {
    /// Normalises each of `n_rows` rows of `x` into `out`.
    pub fn forward(&self, x: &[f32], n_rows: usize, out: &mut [f32]) {
        let _span = tracing::trace_span!("rmsnorm").entered();
        norm::rms_norm(x, n_rows, self.weight.len(), &self.weight, self.eps, out);
    }
}

/// LayerNorm with a learned gain and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// Gain, `(n_embd,)`.
    pub weight: Vec<f32>,
    /// Bias, `(n_embd,)`.
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    /// Normalises each of `n_rows` rows of `x` into `out`.
    pub fn forward(&self, x: &[f32], n_rows: usize, out: &mut [f32]) {
        let _span = tracing::trace_span!("layernorm").entered();
        norm::layer_norm(x, n_rows, self.weight.len(), &self.weight, &self.bias, self.eps, out);
    }
}
