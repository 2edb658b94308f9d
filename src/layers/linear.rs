//! The parameterised row-wise layers: linear maps (GPT-2's Conv1D with bias; Llama's
//! `nn.Linear` layout without), LayerNorm (GPT-2) and RMSNorm (Llama).

use super::Ctx;
use crate::kernels::{matmul, norm, panel};

/// `y = x · W + bias`, GPT-2's Conv1D. Checkpoints store `W` as `(n_in, n_out)`; it is held
/// here packed into column panels (`kernels::panel`), cache-line aligned.
///
/// # Performance
/// In panels, a thread's columns are one contiguous stream at decode and prefill multiplies
/// each loaded weight vector into six rows of `x` in registers (see `kernels::panel`). On a
/// 2-core Intel Xeon (lscpu family 6 model 207) the `gpt2` preset decoded 1.06x faster at one
/// thread (already near the memory bandwidth) and 1.23x at two than in the checkpoint's layout,
/// and prefilled as fast as `gemm` did (README, Speed: "GPT-2's weights in panels").
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `W` packed, `kernels::panel::packed_len(n_in, n_out)` floats.
    weight: Weights,
    /// `(n_out,)`.
    pub bias: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

impl Linear {
    /// A Conv1D layer from its checkpoint tensors: `weight` `(n_in, n_out)` (packed here) and
    /// `bias` `(n_out,)`.
    ///
    /// # Panics
    /// If the lengths are not `n_in * n_out` and `n_out` (loaders check shapes first).
    pub fn from_conv1d(weight: &[f32], bias: Vec<f32>, n_in: usize, n_out: usize) -> Linear {
        assert!(weight.len() == n_in * n_out && bias.len() == n_out, "Linear::from_conv1d: shapes");
        let mut packed = Weights::from_iter(64, std::iter::repeat_n(0.0, panel::packed_len(n_in, n_out)));
        panel::pack_into(weight, n_in, n_out, &mut packed);
        Linear { weight: packed, bias, n_in, n_out }
    }

    /// Floats the packed weight holds: `n_in * n_out` and the zero columns padding its last
    /// panel.
    pub fn stored_weight_len(&self) -> usize {
        self.weight.len()
    }

    /// The weight as checkpoints store it, `(n_in, n_out)` (for export).
    pub fn conv1d_weight(&self) -> Vec<f32> {
        panel::unpack(&self.weight, self.n_in, self.n_out)
    }

    /// `out (n_rows, n_out) = x (n_rows, n_in) · W + bias`.
    pub fn forward(&self, ctx: &Ctx, x: &[f32], n_rows: usize, out: &mut [f32]) {
        let (k, n) = (self.n_in, self.n_out);
        panel::matmul(x, n_rows, k, &self.weight, n, Some(&self.bias), out, ctx.threads);
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
