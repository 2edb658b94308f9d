//! Causal softmax over rows of attention scores: the plan's "full then mask" and the fused one.
//!
//! Both take a `(n_rows, row_len)` block of scores whose row `i` belongs to the query at
//! absolute position `start_pos + i`: columns `0..=start_pos + i` are valid, the rest are masked
//! (they hold `-inf`). Both leave probabilities in the valid columns and exact zeros after them.

use super::activation::exp_approx;
use super::simd_dispatch;

const LANES: usize = 16;

/// The seed plan's "current code" (`docs/seed-plan.md`): max over the whole row, exp over the whole
/// row (masked entries included, which come out as 0), sum, normalise the whole row, then zero the
/// masked columns: five passes over `row_len` values however few of them are valid.
pub fn softmax_full_then_mask(scores: &mut [f32], n_rows: usize, row_len: usize, start_pos: usize) {
    assert!(scores.len() >= n_rows * row_len, "softmax: buffer size");
    assert!(start_pos + n_rows <= row_len, "softmax: rows beyond the key length");
    for (i, row) in scores[..n_rows * row_len].chunks_exact_mut(row_len).enumerate() {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in row.iter_mut() {
            *v = exp_approx(*v - max);
        }
        let sum: f32 = row.iter().sum();
        let inv_sum = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv_sum;
        }
        for v in &mut row[start_pos + i + 1..] {
            *v = 0.0;
        }
    }
}

/// The plan's fix done well: max, then exp-and-sum in one pass, then normalise, over the valid
/// columns `0..=start_pos + i` only, each pass vectorised (16 lanes); masked columns are zeroed.
pub fn softmax_causal_fused(scores: &mut [f32], n_rows: usize, row_len: usize, start_pos: usize) {
    assert!(scores.len() >= n_rows * row_len, "softmax: buffer size");
    assert!(start_pos + n_rows <= row_len, "softmax: rows beyond the key length");
    #[cfg(feature = "slow-fused-softmax")]
    deliberately_slow(&scores[..n_rows * row_len]);
    softmax_causal_fused_simd(&mut scores[..n_rows * row_len], row_len, start_pos);
}

/// Test-only (the `slow-fused-softmax` feature): a known regression in one toggle's fast path,
/// for the bisect test to find. Wastes time in proportion to the scores; changes no output.
#[cfg(feature = "slow-fused-softmax")]
fn deliberately_slow(scores: &[f32]) {
    for _ in 0..40 {
        let wasted: f32 = scores.iter().map(|x| std::hint::black_box(x.exp())).sum();
        std::hint::black_box(wasted);
    }
}

simd_dispatch!(fn softmax_causal_fused_simd(scores: &mut [f32], row_len: usize, start_pos: usize) => softmax_causal_fused_body);

#[inline(always)]
fn softmax_causal_fused_body(scores: &mut [f32], row_len: usize, start_pos: usize) {
    for (i, row) in scores.chunks_exact_mut(row_len).enumerate() {
        let (valid, masked) = row.split_at_mut(start_pos + i + 1);
        softmax_valid_body(valid);
        masked.fill(0.0);
    }
}

#[inline(always)]
fn softmax_valid_body(row: &mut [f32]) {
    // The tail is padded to a whole chunk with -inf (which exponentiates to 0), so that every
    // pass runs on full 16-lane chunks: rows are short in decoding and small models.
    let (chunks, tail) = row.as_chunks_mut::<LANES>();
    let mut padded = [f32::NEG_INFINITY; LANES];
    padded[..tail.len()].copy_from_slice(tail);
    let mut max_lanes = padded;
    for chunk in chunks.iter() {
        for l in 0..LANES {
            max_lanes[l] = max_lanes[l].max(chunk[l]);
        }
    }
    let max = max_lanes.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum_lanes = [0.0f32; LANES];
    for chunk in chunks.iter_mut().chain(std::iter::once(&mut padded)) {
        for l in 0..LANES {
            chunk[l] = exp_approx(chunk[l] - max);
            sum_lanes[l] += chunk[l];
        }
    }
    let inv_sum = 1.0 / sum_lanes.iter().sum::<f32>();
    for chunk in chunks.iter_mut().chain(std::iter::once(&mut padded)) {
        for l in 0..LANES {
            chunk[l] *= inv_sum;
        }
    }
    let n_tail = tail.len();
    tail.copy_from_slice(&padded[..n_tail]);
}

/// The naive twin of both: libm's `exp` in f64 over the valid columns only.
pub fn softmax_causal_naive(scores: &mut [f32], n_rows: usize, row_len: usize, start_pos: usize) {
    for i in 0..n_rows {
        let row = &mut scores[i * row_len..(i + 1) * row_len];
        let valid = start_pos + i + 1;
        let max = row[..valid].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let sum: f64 = row[..valid].iter().map(|&v| (v as f64 - max).exp()).sum();
        for j in 0..row_len {
            row[j] = if j < valid { ((row[j] as f64 - max).exp() / sum) as f32 } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{assert_close, test_data};

    fn masked_scores(n_rows: usize, row_len: usize, start_pos: usize, seed: u64) -> Vec<f32> {
        let mut s: Vec<f32> = test_data(n_rows * row_len, seed).iter().map(|v| v * 8.0).collect();
        for i in 0..n_rows {
            for j in start_pos + i + 1..row_len {
                s[i * row_len + j] = f32::NEG_INFINITY;
            }
        }
        s
    }

    #[test]
    fn both_variants_match_the_naive_twin() {
        for (n_rows, row_len, start_pos) in
            [(1, 1, 0), (1, 37, 36), (5, 5, 0), (7, 30, 23), (33, 33, 0), (3, 100, 50)]
        {
            let s = masked_scores(n_rows, row_len, start_pos, row_len as u64);
            let mut want = s.clone();
            softmax_causal_naive(&mut want, n_rows, row_len, start_pos);
            let mut full = s.clone();
            softmax_full_then_mask(&mut full, n_rows, row_len, start_pos);
            assert_close(&full, &want, 1e-6, "full then mask");
            let mut fused = s.clone();
            softmax_causal_fused(&mut fused, n_rows, row_len, start_pos);
            assert_close(&fused, &want, 1e-6, "fused");
        }
    }

    #[test]
    fn masked_columns_are_exact_zeros() {
        let mut s = masked_scores(4, 10, 2, 9);
        softmax_full_then_mask(&mut s, 4, 10, 2);
        assert!(s[3..10].iter().all(|&v| v == 0.0));
        assert!((s[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
