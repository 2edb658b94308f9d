//! The feed-forward blocks: GPT-2's MLP `c_proj(gelu(c_fc(x)))` and Llama's SwiGLU
//! `w2(silu(w1·x) * (w3·x))`.

use super::{Ctx, Linear, TransposedLinear};
use crate::kernels::activation;

/// The feed-forward block of a transformer layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Expansion, `(n_embd, n_inner)` with bias.
    pub c_fc: Linear,
    /// Projection back, `(n_inner, n_embd)` with bias.
    pub c_proj: Linear,
}

impl Mlp {
    /// `out (n_rows, n_embd) = c_proj(gelu_tanh(c_fc(x)))`.
    pub fn forward(&self, ctx: &Ctx, x: &[f32], n_rows: usize, out: &mut [f32]) {
        let _span = tracing::trace_span!("mlp").entered();
        let mut hidden = ctx.buf(n_rows * self.c_fc.n_out);
        self.c_fc.forward(ctx, x, n_rows, &mut hidden);
        activation::gelu_tanh_inplace(&mut hidden);
        self.c_proj.forward(ctx, &hidden, n_rows, out);
    }
}

/// Llama's feed-forward block, SwiGLU: `w2(silu(w1·x) * (w3·x))`.
#[derive(Debug, Clone, PartialEq)]
pub struct SwiGlu {
    /// Gate projection, `(hidden_dim, dim)`.
    pub w1: TransposedLinear,
    /// Down projection, `(dim, hidden_dim)`.
    pub w2: TransposedLinear,
    /// Up projection, `(hidden_dim, dim)`.
    pub w3: TransposedLinear,
}

impl SwiGlu {
    /// `out (n_rows, dim) = w2(silu(w1·x) * (w3·x))`.
    pub fn forward(&self, ctx: &Ctx, x: &[f32], n_rows: usize, out: &mut [f32]) {
        let _span = tracing::trace_span!("mlp").entered();
        let hidden = self.w1.n_out;
        let (mut gate, mut up) = (ctx.buf(n_rows * hidden), ctx.buf(n_rows * hidden));
        self.w1.forward(ctx, x, n_rows, &mut gate);
        self.w3.forward(ctx, x, n_rows, &mut up);
        activation::swiglu_inplace(&mut gate, &up);
        self.w2.forward(ctx, &gate, n_rows, out);
    }
}
