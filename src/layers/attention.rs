//! Causal self-attention: GPT-2's (a fused qkv projection) and Llama's (grouped-query, with
//! rotary position embedding), both over one attention core, [`attend`], where
//! `batched-matmul` and `fused-softmax` are decided.

use super::{Ctx, Linear, TransposedLinear};
use crate::kernels::attention::{self as kernels, HeadRows};
use crate::kernels::parallel::{SyncPtr, Threads};
use crate::kernels::rope::RopeTable;
use crate::kernels::softmax;
use crate::optimizations::Optimizations;

/// GPT-2's attention: `c_proj(softmax(scale · q·kᵀ + mask) · v)` per head.
#[derive(Debug, Clone, PartialEq)]
pub struct CausalSelfAttention {
    /// Fused q/k/v projection, `(n_embd, 3 * n_embd)` with bias; output columns are q | k | v.
    pub c_attn: Linear,
    /// Output projection, `(n_embd, n_embd)` with bias.
    pub c_proj: Linear,
    pub n_head: usize,
    /// What `q·kᵀ` is multiplied by: `1 / sqrt(head_dim)` in GPT-2; see
    /// [`crate::models::Gpt2Config::attention_scale`] for the config keys that change it.
    pub scale: f32,
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
        let heads = Heads { n_head: self.n_head, n_kv_head: self.n_head, head_dim, scale: self.scale };
        attend(ctx, heads, (q_rows, 3 * n_embd), (k_rows, v_rows, n_embd), n_out, q_start, (&mut y, n_embd));

        let _span = tracing::trace_span!("output_projection").entered();
        self.c_proj.forward(ctx, &y, n_out, out);
    }
}

/// Llama's attention: `wo(softmax(rope(q)·rope(k)ᵀ / sqrt(head_size) + mask) · v)`, with
/// `n_heads` query heads sharing `n_kv_heads` key/value heads.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedQueryAttention {
    /// Query projection, `(n_heads * head_size, dim)`.
    pub wq: TransposedLinear,
    /// Key projection, `(n_kv_heads * head_size, dim)`.
    pub wk: TransposedLinear,
    /// Value projection, `(n_kv_heads * head_size, dim)`.
    pub wv: TransposedLinear,
    /// Output projection, `(dim, n_heads * head_size)`.
    pub wo: TransposedLinear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
}

impl GroupedQueryAttention {
    /// Attention of the `n_rows` rows of `x` (positions `start_pos..start_pos + n_rows`) into
    /// `out` (`(n_out, dim)`, the last `n_out` rows only), as [`CausalSelfAttention::forward`].
    ///
    /// `k_rows` and `v_rows` are `(>= start_pos + n_rows, n_kv_heads * head_size)`: this call
    /// writes its positions' keys, already rotated, and values into them, and reads every
    /// position up to its own, so earlier rows must hold the earlier positions (the KV cache).
    pub fn forward(
        &self,
        ctx: &Ctx,
        rope: &RopeTable,
        x: &[f32],
        n_rows: usize,
        start_pos: usize,
        k_rows: &mut [f32],
        v_rows: &mut [f32],
        out: &mut [f32],
        n_out: usize,
    ) {
        let (q_dim, kv_dim, dim) = (self.wq.n_out, self.wk.n_out, self.wq.n_in);
        let head_size = q_dim / self.n_heads;
        let n_keys = start_pos + n_rows;
        assert!((1..=n_rows).contains(&n_out), "attention: n_out out of range");
        assert!(k_rows.len() >= n_keys * kv_dim && v_rows.len() >= n_keys * kv_dim, "attention: kv rows");
        // The queries: the last n_out rows, at positions q_start..q_start + n_out.
        let q_start = n_keys - n_out;
        let mut q = ctx.buf(n_out * q_dim);
        let (new_k, new_v) = (
            &mut k_rows[start_pos * kv_dim..n_keys * kv_dim],
            &mut v_rows[start_pos * kv_dim..n_keys * kv_dim],
        );
        {
            let _span = tracing::trace_span!("qkv_projection").entered();
            self.wq.forward(ctx, &x[(n_rows - n_out) * dim..], n_out, &mut q);
            self.wk.forward(ctx, x, n_rows, new_k);
            self.wv.forward(ctx, x, n_rows, new_v);
        }
        {
            let _span = tracing::trace_span!("rope").entered();
            rope.apply(&mut q, n_out, q_dim, self.n_heads, q_start);
            rope.apply(new_k, n_rows, kv_dim, self.n_kv_heads, start_pos);
        }
        let mut y = ctx.buf(n_out * q_dim);
        let scale = 1.0 / (head_size as f32).sqrt();
        let heads = Heads { n_head: self.n_heads, n_kv_head: self.n_kv_heads, head_dim: head_size, scale };
        attend(ctx, heads, (&q, q_dim), (k_rows, v_rows, kv_dim), n_out, q_start, (&mut y, q_dim));

        let _span = tracing::trace_span!("output_projection").entered();
        self.wo.forward(ctx, &y, n_out, out);
    }
}

/// How a layer's heads are laid out: `n_head` query heads of `head_dim`, sharing `n_kv_head`
/// key/value heads (grouped-query attention; `n_kv_head == n_head` is plain multi-head), and
/// the factor their scores `q·kᵀ` are multiplied by (usually `1 / sqrt(head_dim)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heads {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub scale: f32,
}

/// The attention core every model shares: for each query head `h`, reading key/value head
/// `h / (n_head / n_kv_head)`, `softmax(scale · q·kᵀ + causal mask) · v` into `y`.
///
/// `q` is `(rows, stride)`: `n_out` query rows at positions `q_start..q_start + n_out`, heads
/// side by side from column 0. `kv` is `(k, v, stride)`: the keys and values of positions
/// `0..q_start + n_out`. `y` is `(rows, stride)`: `n_out` rows written from column 0.
pub fn attend(
    ctx: &Ctx,
    heads: Heads,
    q: (&[f32], usize),
    kv: (&[f32], &[f32], usize),
    n_out: usize,
    q_start: usize,
    y: (&mut [f32], usize),
) {
    let Heads { n_head, n_kv_head, head_dim, scale } = heads;
    assert!(n_out > 0 && n_head > 0 && head_dim > 0, "attention: empty rows or heads");
    assert!(n_kv_head > 0 && n_head.is_multiple_of(n_kv_head), "attention: n_kv_head must divide n_head");
    let (q_rows, q_stride) = q;
    let (k_rows, v_rows, kv_stride) = kv;
    let (y, y_stride) = y;
    // Each head writes its own columns of each row: rows must not overlap, or two threads
    // would write the same floats.
    assert!(y_stride >= n_head * head_dim, "attention: output rows overlap");
    let n_keys = q_start + n_out;
    assert!(k_rows.len() >= (n_keys - 1) * kv_stride + n_kv_head * head_dim, "attention: key rows");
    assert!(v_rows.len() >= (n_keys - 1) * kv_stride + n_kv_head * head_dim, "attention: value rows");
    assert!(y.len() >= (n_out - 1) * y_stride + n_head * head_dim, "attention: output rows");
    let group = n_head / n_kv_head;
    // Heads are split statically between the threads, each chunk with its own scores and
    // output rows; a small attention (a short decode context) stays on this thread.
    let threads =
        if n_out * n_keys * n_head * head_dim < PARALLEL_MIN_WORK { Threads::One } else { ctx.threads };
    let per_chunk = n_head.div_ceil(threads.count());
    // Per chunk: scores (n_out, n_keys), then one head's output rows (n_out, head_dim).
    let scratch_len = n_out * n_keys + n_out * head_dim;
    let mut scratch = ctx.buf(n_head.div_ceil(per_chunk) * scratch_len);
    let (opts, y_ptr) = (ctx.opts, SyncPtr(y.as_mut_ptr()));
    threads.for_each_chunk_mut(&mut scratch, scratch_len, |chunk, scratch| {
        let (scores, head_out) = scratch.split_at_mut(n_out * n_keys);
        for h in chunk * per_chunk..n_head.min((chunk + 1) * per_chunk) {
            let (q_col, kv_col) = (h * head_dim, (h / group) * head_dim);
            let q = HeadRows { data: &q_rows[q_col..], row_stride: q_stride, head_dim };
            let k = HeadRows { data: &k_rows[kv_col..], row_stride: kv_stride, head_dim };
            let v = HeadRows { data: &v_rows[kv_col..], row_stride: kv_stride, head_dim };
            scores_of(opts, q, k, n_out, q_start, scale, scores);
            softmax_of(opts, scores, n_out, q_start);
            let _span = tracing::trace_span!("attention_values").entered();
            kernels::weighted_values(scores, v, n_out, q_start, head_out, head_dim);
            for (r, row) in head_out.chunks_exact(head_dim).enumerate() {
                // Safety: row r's columns q_col..q_col + head_dim lie within `y` (asserted
                // above), and only head h writes them; `y` is borrowed mutably for the call.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        row.as_ptr(),
                        y_ptr.get().add(r * y_stride + q_col),
                        head_dim,
                    )
                };
            }
        }
    });
}

/// Below this many multiply-adds per score pass (`n_out * n_keys * n_head * head_dim`), the
/// heads stay on one thread. The one-row products' threshold (`kernels::matmul`, measured
/// there), taken over unmeasured for attention: a dispatch costs about the same either way.
const PARALLEL_MIN_WORK: usize = 1 << 14;

/// Scaled, masked scores of one head. **The one place `batched-matmul` is read.**
fn scores_of(
    opts: Optimizations,
    q: HeadRows,
    k: HeadRows,
    n_rows: usize,
    start_pos: usize,
    scale: f32,
    scores: &mut [f32],
) {
    let _span = tracing::trace_span!("attention_scores").entered();
    if opts.batched_matmul {
        kernels::scores_batched_gemm(q, k, n_rows, start_pos, scale, scores);
    } else {
        kernels::scores_per_pair_dot(q, k, n_rows, start_pos, scale, scores);
    }
}

/// Causal softmax of one head's scores, in place. **The one place `fused-softmax` is read.**
fn softmax_of(opts: Optimizations, scores: &mut [f32], n_rows: usize, start_pos: usize) {
    let _span = tracing::trace_span!("softmax").entered();
    let n_keys = start_pos + n_rows;
    if opts.fused_softmax {
        softmax::softmax_causal_fused(scores, n_rows, n_keys, start_pos);
    } else {
        softmax::softmax_full_then_mask(scores, n_rows, n_keys, start_pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::parallel::WorkerPool;
    use crate::pool::TensorPool;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Grouped-query attention equals multi-head attention over key/value heads repeated
    /// `n_head / n_kv_head` times, under every combination of the toggles; and the heads split
    /// between threads give the very bits of one thread (each head is computed as on one).
    #[test]
    fn grouped_query_attention_equals_repeated_kv_heads_on_any_thread_count() {
        // Big enough to be split: 24 * 64 * 6 * 16 multiply-adds >= PARALLEL_MIN_WORK.
        let (n_head, n_kv_head, head_dim, n_out, q_start) = (6, 3, 16, 24, 40);
        let (n_keys, group) = (q_start + n_out, n_head / n_kv_head);
        assert!(n_out * n_keys * n_head * head_dim >= PARALLEL_MIN_WORK);
        let (q_stride, kv_stride) = (n_head * head_dim, n_kv_head * head_dim);
        let q = data(n_out * q_stride, 1);
        let (k, v) = (data(n_keys * kv_stride, 2), data(n_keys * kv_stride, 3));
        // Each row's kv heads repeated: head h of the wide layout is kv head h / group.
        let repeat = |x: &[f32]| -> Vec<f32> {
            x.chunks_exact(kv_stride)
                .flat_map(|row| {
                    (0..n_head)
                        .flat_map(move |h| row[(h / group) * head_dim..(h / group + 1) * head_dim].to_vec())
                })
                .collect()
        };
        let (k_wide, v_wide) = (repeat(&k), repeat(&v));
        let pool = TensorPool::new();
        let workers = [WorkerPool::new(2).unwrap(), WorkerPool::new(4).unwrap()];
        let mut reference = None;
        for opts in Optimizations::every_combination() {
            let mut one_thread = None;
            for threads in [Threads::One, Threads::Pool(&workers[0]), Threads::Pool(&workers[1])] {
                let ctx = Ctx { opts, pool: &pool, threads };
                let (mut gqa, mut mha) = (vec![f32::NAN; n_out * q_stride], vec![f32::NAN; n_out * q_stride]);
                let heads = Heads { n_head, n_kv_head, head_dim, scale: 1.0 / (head_dim as f32).sqrt() };
                attend(
                    &ctx,
                    heads,
                    (&q, q_stride),
                    (&k, &v, kv_stride),
                    n_out,
                    q_start,
                    (&mut gqa, q_stride),
                );
                let wide = Heads { n_kv_head: n_head, ..heads };
                let kv_wide = (k_wide.as_slice(), v_wide.as_slice(), q_stride);
                attend(&ctx, wide, (&q, q_stride), kv_wide, n_out, q_start, (&mut mha, q_stride));
                for (a, b) in gqa.iter().zip(&mha) {
                    assert!((a - b).abs() < 1e-6, "{opts}: {a} vs {b}");
                }
                let one_thread = one_thread.get_or_insert_with(|| gqa.clone());
                assert_eq!(&gqa, one_thread, "{opts} on {} threads differs from one thread", threads.count());
                let reference = reference.get_or_insert_with(|| gqa.clone());
                for (a, b) in gqa.iter().zip(reference.iter()) {
                    assert!((a - b).abs() < 1e-5, "{opts} differs from the first combination: {a} vs {b}");
                }
            }
        }
    }
}
