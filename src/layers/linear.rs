//! The parameterised row-wise layers: linear maps (GPT-2's Conv1D with bias; Llama's
//! `nn.Linear` layout without), LayerNorm (GPT-2) and RMSNorm (Llama).

use super::Ctx;
use crate::kernels::{self, matmul, norm, panel};
use std::borrow::Cow;

/// `y = x · W + bias`, GPT-2's Conv1D. Checkpoints store `W` as `(n_in, n_out)`; it is held
/// packed into column panels (`kernels::panel`, cache-line aligned) where the kernels run on
/// AVX-512, and as stored elsewhere ([`Conv1dWeight`]).
///
/// # Performance
/// In panels, a thread's columns are one contiguous stream at decode and prefill multiplies
/// each loaded weight vector into six rows of `x` in registers (see `kernels::panel`). On a
/// 2-core Intel Xeon (lscpu family 6 model 207) the `gpt2` preset decoded 1.06x faster at one
/// thread (already near the memory bandwidth) and 1.23x at two than in the checkpoint's layout,
/// and prefilled as fast as `gemm` did. Held to AVX2 (`SMALLMIND_SIMD=avx2`) on the same
/// machine, panels prefilled a 64-token `gpt2` prompt in 206-281 ms against `gemm`'s 128-176 on
/// the checkpoint's layout and decoded 18.8-19.9 tok/s against 21.2-21.3 at one thread, so
/// below AVX-512 the layout stays the checkpoint's (`docs/speed.md#gpt-2s-weights-in-panels`).
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    weight: Conv1dWeight,
    /// `(n_out,)`.
    pub bias: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

/// How a [`Linear`] holds its weight, chosen at load by the kernels' SIMD level.
#[derive(Debug, Clone, PartialEq)]
enum Conv1dWeight {
    /// `kernels::panel::packed_len(n_in, n_out)` floats (AVX-512).
    Panels(Weights),
    /// `(n_in, n_out)`, as checkpoints store it (`kernels::matmul::matmul`).
    Rows(Vec<f32>),
}

impl Linear {
    /// A Conv1D layer from its checkpoint tensors: `weight` `(n_in, n_out)` and `bias`
    /// `(n_out,)`; the weight is packed into panels where the CPU runs AVX-512 kernels.
    ///
    /// # Panics
    /// If the lengths are not `n_in * n_out` and `n_out` (loaders check shapes first).
    pub fn from_conv1d(weight: Vec<f32>, bias: Vec<f32>, n_in: usize, n_out: usize) -> Linear {
        let panels = kernels::simd() == kernels::SimdLevel::Avx512;
        Linear::with_layout(weight, bias, n_in, n_out, panels)
    }

    /// [`Linear::from_conv1d`] with the layout given: in panels, or as stored.
    fn with_layout(weight: Vec<f32>, bias: Vec<f32>, n_in: usize, n_out: usize, panels: bool) -> Linear {
        assert!(weight.len() == n_in * n_out && bias.len() == n_out, "Linear::from_conv1d: shapes");
        let weight = if panels {
            let mut packed = Weights::from_iter(64, std::iter::repeat_n(0.0, panel::packed_len(n_in, n_out)));
            panel::pack_into(&weight, n_in, n_out, &mut packed);
            Conv1dWeight::Panels(packed)
        } else {
            Conv1dWeight::Rows(weight)
        };
        Linear { weight, bias, n_in, n_out }
    }

    /// Floats the weight holds: `n_in * n_out`, and in panels the zero columns padding the last.
    pub fn stored_weight_len(&self) -> usize {
        match &self.weight {
            Conv1dWeight::Panels(packed) => packed.len(),
            Conv1dWeight::Rows(w) => w.len(),
        }
    }

    /// The weight as checkpoints store it, `(n_in, n_out)` (for export).
    pub fn conv1d_weight(&self) -> Cow<'_, [f32]> {
        match &self.weight {
            Conv1dWeight::Panels(packed) => Cow::from(panel::unpack(packed, self.n_in, self.n_out)),
            Conv1dWeight::Rows(w) => Cow::from(&w[..]),
        }
    }

    /// `out (n_rows, n_out) = x (n_rows, n_in) · W + bias`.
    pub fn forward(&self, ctx: &Ctx, x: &[f32], n_rows: usize, out: &mut [f32]) {
        let (k, n, bias) = (self.n_in, self.n_out, Some(&self.bias[..]));
        match &self.weight {
            Conv1dWeight::Panels(packed) => panel::matmul(x, n_rows, k, packed, n, bias, out, ctx.threads),
            Conv1dWeight::Rows(w) => matmul::matmul(x, n_rows, k, w, n, bias, out, ctx.threads),
        }
    }
}

/// A weight matrix in memory aligned to cache lines (64 bytes).
///
/// # Performance
/// A plain `Vec<f32>` of megabytes comes from `mmap` 16 bytes past a page boundary, so every
/// 64-byte vector load of a row straddles two cache lines. Aligned, stories15m decoded 1.24x
/// faster here (626 -> 778 tok/s, `smallmind bench --model stories15m --prompt-tokens 1
/// --max-new-tokens 255 --threads 1`, the two builds run alternately, on a 2-core AMD EPYC
/// Zen 5, family 26: `docs/speed.md#llama-against-candle-on-the-same-checkpoint`).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Either layout gives the checkpoint's weight back, and holds what `weight_bytes` counts:
    /// 150 columns are 10 panels, 160 columns with the padding.
    #[test]
    fn both_layouts_give_the_weight_back_and_count_their_padding() {
        let (n_in, n_out) = (60, 150);
        let w: Vec<f32> = (0..n_in * n_out).map(|i| i as f32 * 0.25 - 7.0).collect();
        for (panels, stored) in [(true, n_in * 160), (false, n_in * n_out)] {
            let l = Linear::with_layout(w.clone(), vec![0.5; n_out], n_in, n_out, panels);
            assert_eq!(l.conv1d_weight()[..], w[..], "panels: {panels}");
            assert_eq!(l.stored_weight_len(), stored, "panels: {panels}");
        }
    }
}
