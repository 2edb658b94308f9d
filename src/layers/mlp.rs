//! GPT-2's MLP: `c_proj(gelu(c_fc(x)))`.

use super::{Ctx, Linear};
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
