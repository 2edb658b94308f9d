//! Causal multi-head self-attention with a fused qkv projection: where `batched-matmul` and
//! `fused-softmax` are decided.

use super::{Ctx, Linear};
use crate::kernels::attention::{self as kernels, HeadRows};
use crate::kernels::softmax;

/// GPT-2's attention: `c_proj(softmax(q·kᵀ / sqrt(head_dim) + mask) · v)` per head.
#[derive(Debug, Clone, PartialEq)]
pub struct CausalSelfAttention {
    /// Fused q/k/v projection, `(n_embd, 3 * n_embd)` with bias; output columns are q | k | v.
    pub c_attn: Linear,
    /// Output projection, `(n_embd, n_embd)` with bias.
    pub c_proj: Linear,
    pub n_head: usize,
}

impl CausalSelfAttention {
    /// Attention of the `n_rows` rows of `x` (positions `start_pos..start_pos + n_rows`) into `out`.
    ///
    /// `k_rows` and `v_rows` are `(>= start_pos + n_rows, n_embd)`: this call writes the keys and
    /// values of its own positions into them and reads positions `0..start_pos + n_rows`, so
    /// earlier rows must already hold the keys and values of the earlier positions (the KV cache).
    ///
    /// Only the last `n_out` rows' outputs are computed (`out` is `(n_out, n_embd)`): every row
    /// still contributes its key and value, but the last layer needs the last query only.
    pub fn forward(
        &self,
        ctx: &Ctx,
        x: &[f32],
        n_rows: usize,
        start_pos: usize,
        k_rows: &mut [f32],
        v_rows: &mut [f32],
        out: &mut [f32],
        n_out: usize,
    ) {
        let n_embd = self.c_proj.n_out;
        let head_dim = n_embd / self.n_head;
        let n_keys = start_pos + n_rows;
        assert!(k_rows.len() >= n_keys * n_embd && v_rows.len() >= n_keys * n_embd, "attention: kv rows");

        let mut qkv = ctx.buf(n_rows * 3 * n_embd);
        {
            let _span = tracing::trace_span!("qkv_projection").entered();
            self.c_attn.forward(ctx, x, n_rows, &mut qkv);
            for (i, row) in qkv.chunks_exact(3 * n_embd).enumerate() {
                let pos = start_pos + i;
                k_rows[pos * n_embd..(pos + 1) * n_embd].copy_from_slice(&row[n_embd..2 * n_embd]);
                v_rows[pos * n_embd..(pos + 1) * n_embd].copy_from_slice(&row[2 * n_embd..]);
            }
        }

        // The queries: the last n_out rows, at positions q_start..q_start + n_out.
        assert!((1..=n_rows).contains(&n_out), "attention: n_out out of range");
        let q_start = start_pos + n_rows - n_out;
        let q_rows = &qkv[(n_rows - n_out) * 3 * n_embd..];
        let mut y = ctx.buf(n_out * n_embd);
        let mut scores = ctx.buf(n_out * n_keys);
        for h in 0..self.n_head {
            let col = h * head_dim;
            let q = HeadRows { data: &q_rows[col..], row_stride: 3 * n_embd, head_dim };
            let k = HeadRows { data: &k_rows[col..], row_stride: n_embd, head_dim };
            let v = HeadRows { data: &v_rows[col..], row_stride: n_embd, head_dim };
            self.scores(ctx, q, k, n_out, q_start, &mut scores);
            self.softmax(ctx, &mut scores, n_out, q_start);
            let _span = tracing::trace_span!("attention_values").entered();
            kernels::weighted_values(&scores, v, n_out, q_start, &mut y[col..], n_embd);
        }
        drop(scores);

        let _span = tracing::trace_span!("output_projection").entered();
        self.c_proj.forward(ctx, &y, n_out, out);
    }

    /// Scaled, masked scores of one head. **The one place `batched-matmul` is read.**
    fn scores(
        &self,
        ctx: &Ctx,
        q: HeadRows,
        k: HeadRows,
        n_rows: usize,
        start_pos: usize,
        scores: &mut [f32],
    ) {
        let _span = tracing::trace_span!("attention_scores").entered();
        if ctx.opts.batched_matmul {
            kernels::scores_batched_gemm(q, k, n_rows, start_pos, scores, ctx.threads);
        } else {
            kernels::scores_per_pair_dot(q, k, n_rows, start_pos, scores);
        }
    }

    /// Causal softmax of one head's scores, in place. **The one place `fused-softmax` is read.**
    fn softmax(&self, ctx: &Ctx, scores: &mut [f32], n_rows: usize, start_pos: usize) {
        let _span = tracing::trace_span!("softmax").entered();
        let n_keys = start_pos + n_rows;
        if ctx.opts.fused_softmax {
            softmax::softmax_causal_fused(scores, n_rows, n_keys, start_pos);
        } else {
            softmax::softmax_full_then_mask(scores, n_rows, n_keys, start_pos);
        }
    }
}
