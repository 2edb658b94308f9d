//! The two parameterised row-wise layers: a linear map with bias (GPT-2's Conv1D) and LayerNorm.

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
