//! Attention kernels for one head: scores `scale · q·kᵀ` with the causal mask (`scale` is the
//! model's: `1 / sqrt(head_dim)` usually), and the probability-weighted sum of values.
//!
//! Queries are `n_rows` rows at absolute positions `start_pos..start_pos + n_rows`; keys and
//! values are `n_keys = start_pos + n_rows` rows. Rows are strided so that q, k and v can be
//! read in place from the fused qkv buffer and the KV cache (head columns of wider rows).

use super::simd_dispatch;

/// Where one head's rows live in a wider buffer: row `r` is `data[r * row_stride..][..head_dim]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadRows<'a> {
    /// The buffer, starting at this head's first column.
    pub data: &'a [f32],
    /// Distance between consecutive rows, in elements.
    pub row_stride: usize,
    /// Columns of this head.
    pub head_dim: usize,
}

impl HeadRows<'_> {
    /// Row `r` of this head.
    #[inline(always)]
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.row_stride..r * self.row_stride + self.head_dim]
    }
}

/// The seed plan's "current code" (`docs/seed-plan.md`): one scalar dot product per (i, j) with
/// `j <= start_pos + i`, as the plan's triple loop, each multiplied by `scale`; masked scores are
/// written as `-inf`. `scores` is `(n_rows, n_keys)`.
pub fn scores_per_pair_dot(
    q: HeadRows,
    k: HeadRows,
    n_rows: usize,
    start_pos: usize,
    scale: f32,
    scores: &mut [f32],
) {
    let n_keys = start_pos + n_rows;
    assert!(scores.len() >= n_rows * n_keys, "scores: buffer size");
    for i in 0..n_rows {
        let qi = q.row(i);
        let row = &mut scores[i * n_keys..(i + 1) * n_keys];
        for j in 0..=start_pos + i {
            let kj = k.row(j);
            let mut score = 0.0f32;
            for d in 0..q.head_dim {
                score += qi[d] * kj[d];
            }
            row[j] = score * scale;
        }
        row[start_pos + i + 1..].fill(f32::NEG_INFINITY);
    }
}

/// The plan's fix done well: all scores of the head as one GEMM `Q · Kᵀ`, reading K through
/// strides (no transposed copy), multiplied by `scale` inside the GEMM, then the causal mask
/// applied after.
pub fn scores_batched_gemm(
    q: HeadRows,
    k: HeadRows,
    n_rows: usize,
    start_pos: usize,
    scale: f32,
    scores: &mut [f32],
) {
    let n_keys = start_pos + n_rows;
    let hd = q.head_dim;
    assert!(scores.len() >= n_rows * n_keys, "scores: buffer size");
    assert!(q.data.len() >= (n_rows - 1) * q.row_stride + hd, "scores: q rows");
    assert!(k.data.len() >= (n_keys - 1) * k.row_stride + hd, "scores: k rows");
    // Safety: the assertions above bound every element read or written:
    // lhs (n_rows, hd) at q.data[i * q.row_stride + d]; rhs (hd, n_keys) at k.data[j * k.row_stride + d];
    // dst (n_rows, n_keys) row-major in scores.
    unsafe {
        gemm::gemm(
            n_rows,
            n_keys,
            hd,
            scores.as_mut_ptr(),
            /* dst_cs = */ 1,
            /* dst_rs = */ n_keys as isize,
            /* read_dst = */ false,
            q.data.as_ptr(),
            /* lhs_cs = */ 1,
            /* lhs_rs = */ q.row_stride as isize,
            k.data.as_ptr(),
            /* rhs_cs = */ k.row_stride as isize,
            /* rhs_rs = */ 1,
            /* alpha = */ 0.0,
            /* beta = */ scale,
            false,
            false,
            false,
            // One head on one thread: the attention layer splits heads between threads.
            gemm::Parallelism::None,
        );
    }
    for i in 0..n_rows {
        scores[i * n_keys + start_pos + i + 1..(i + 1) * n_keys].fill(f32::NEG_INFINITY);
    }
}

/// `out[i] = sum over j <= start_pos + i of probs[i, j] * v[j]`, into head columns of `out`
/// (row stride `out_row_stride`). Masked probabilities are never read.
pub fn weighted_values(
    probs: &[f32],
    v: HeadRows,
    n_rows: usize,
    start_pos: usize,
    out: &mut [f32],
    out_row_stride: usize,
) {
    let n_keys = start_pos + n_rows;
    let hd = v.head_dim;
    assert!(probs.len() >= n_rows * n_keys, "weighted_values: probs size");
    assert!(out.len() >= (n_rows - 1) * out_row_stride + hd, "weighted_values: out size");
    weighted_values_simd(probs, v, n_rows, start_pos, out, out_row_stride);
}

simd_dispatch!(fn weighted_values_simd(probs: &[f32], v: HeadRows, n_rows: usize, start_pos: usize, out: &mut [f32], out_row_stride: usize) => weighted_values_body);

/// Output columns accumulated in registers at once by [`weighted_values_body`].
const VALUE_LANES: usize = 16;

/// # Performance
/// Sixteen output columns at a time are accumulated in a local array (one AVX-512 register)
/// over every key, instead of loading and storing the output row once per key: the key loop
/// then carries no memory dependency. The sum over keys runs in the same order either way.
#[inline(always)]
fn weighted_values_body(
    probs: &[f32],
    v: HeadRows,
    n_rows: usize,
    start_pos: usize,
    out: &mut [f32],
    out_row_stride: usize,
) {
    let n_keys = start_pos + n_rows;
    let hd = v.head_dim;
    for i in 0..n_rows {
        let p = &probs[i * n_keys..i * n_keys + start_pos + i + 1];
        let o = &mut out[i * out_row_stride..i * out_row_stride + hd];
        let mut d0 = 0;
        while d0 + VALUE_LANES <= hd {
            let mut acc = [0.0f32; VALUE_LANES];
            for (j, &pj) in p.iter().enumerate() {
                let vj: &[f32; VALUE_LANES] =
                    v.data[j * v.row_stride + d0..][..VALUE_LANES].try_into().expect("16 columns");
                for l in 0..VALUE_LANES {
                    acc[l] += pj * vj[l];
                }
            }
            o[d0..d0 + VALUE_LANES].copy_from_slice(&acc);
            d0 += VALUE_LANES;
        }
        // The last head_dim % 16 columns.
        let tail = &mut o[d0..];
        tail.fill(0.0);
        for (j, &pj) in p.iter().enumerate() {
            let vj = &v.data[j * v.row_stride + d0..j * v.row_stride + hd];
            for (t, &x) in tail.iter_mut().zip(vj) {
                *t += pj * x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{assert_close, test_data};

    /// Naive twin of the scores kernels: f64 dot products, -inf above the diagonal.
    fn scores_naive(q: HeadRows, k: HeadRows, n_rows: usize, start_pos: usize, scale: f32) -> Vec<f32> {
        let n_keys = start_pos + n_rows;
        let mut s = vec![f32::NEG_INFINITY; n_rows * n_keys];
        for i in 0..n_rows {
            for j in 0..=start_pos + i {
                let dot: f64 = q.row(i).iter().zip(k.row(j)).map(|(&a, &b)| a as f64 * b as f64).sum();
                s[i * n_keys + j] = (dot * scale as f64) as f32;
            }
        }
        s
    }

    #[test]
    fn scores_kernels_match_naive_twin() {
        for (n_rows, start_pos, hd, stride) in
            [(1, 0, 1, 1), (1, 40, 16, 48), (5, 0, 16, 64), (7, 9, 20, 60), (32, 0, 64, 192)]
        {
            let q_buf = test_data((n_rows - 1) * stride + hd, 1);
            let k_buf = test_data((start_pos + n_rows - 1) * stride + hd, 2);
            let q = HeadRows { data: &q_buf, row_stride: stride, head_dim: hd };
            let k = HeadRows { data: &k_buf, row_stride: stride, head_dim: hd };
            // The usual scale, and GPT-2's scale_attn_by_inverse_layer_idx at layer 3.
            for scale in [1.0 / (hd as f32).sqrt(), 1.0 / (hd as f32).sqrt() / 4.0] {
                let want = scores_naive(q, k, n_rows, start_pos, scale);
                let mut dot = vec![f32::NAN; want.len()];
                scores_per_pair_dot(q, k, n_rows, start_pos, scale, &mut dot);
                assert_close(&dot, &want, 1e-5, "per-pair dot");
                let mut gemm = vec![f32::NAN; want.len()];
                scores_batched_gemm(q, k, n_rows, start_pos, scale, &mut gemm);
                assert_close(&gemm, &want, 1e-5, "batched gemm");
            }
        }
    }

    #[test]
    fn weighted_values_matches_naive_sum() {
        // Head sizes below, at and above the 16 columns accumulated at once, with a tail.
        for hd in [12, 16, 20, 48] {
            weighted_values_case(hd);
        }
    }

    fn weighted_values_case(hd: usize) {
        let (n_rows, start_pos, stride) = (6, 3, 3 * hd);
        let n_keys = start_pos + n_rows;
        let mut probs = test_data(n_rows * n_keys, 7);
        // Masked probabilities are garbage on purpose: they must not be read.
        for i in 0..n_rows {
            probs[i * n_keys + start_pos + i + 1..(i + 1) * n_keys].fill(f32::NAN);
        }
        let v_buf = test_data((n_keys - 1) * stride + hd, 8);
        let v = HeadRows { data: &v_buf, row_stride: stride, head_dim: hd };
        let mut out = vec![0.0; (n_rows - 1) * stride + hd];
        weighted_values(&probs, v, n_rows, start_pos, &mut out, stride);
        for i in 0..n_rows {
            for d in 0..hd {
                let want: f64 =
                    (0..=start_pos + i).map(|j| probs[i * n_keys + j] as f64 * v.row(j)[d] as f64).sum();
                assert!((out[i * stride + d] as f64 - want).abs() < 1e-5);
            }
        }
    }
}
