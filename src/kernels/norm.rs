//! Normalisation over rows: GPT-2's LayerNorm, `(x - mean) / sqrt(var + eps) * gamma + beta`,
//! and Llama's RMSNorm, `x / sqrt(mean(x^2) + eps) * weight`.

use super::simd_dispatch;

/// Lanes of the partial sums: wide enough for one AVX-512 register, and a fixed summation
/// order whatever the CPU, so every build computes the same statistics.
const LANES: usize = 16;

/// LayerNorm of each of `n_rows` rows of `dim` in `x` into `out`.
pub fn layer_norm(
    x: &[f32],
    n_rows: usize,
    dim: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    assert!(x.len() >= n_rows * dim && out.len() >= n_rows * dim, "layer_norm: buffer sizes");
    assert!(gamma.len() == dim && beta.len() == dim, "layer_norm: parameter sizes");
    layer_norm_simd(&x[..n_rows * dim], dim, gamma, beta, eps, &mut out[..n_rows * dim]);
}

simd_dispatch!(fn layer_norm_simd(x: &[f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) => layer_norm_body);

#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            acc[l] += f(chunk[l]);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&v| f(v)).sum::<f32>()
}

#[inline(always)]
fn layer_norm_body(x: &[f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    for (row, out_row) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean = lane_sum(row, |v| v) / dim as f32;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / dim as f32;
        let rstd = 1.0 / (var + eps).sqrt();
        for (((o, &v), &g), &b) in out_row.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (v - mean) * rstd * g + b;
        }
    }
}

/// The naive twin of [`layer_norm`]: sequential sums in f64.
pub fn layer_norm_naive(
    x: &[f32],
    n_rows: usize,
    dim: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    for r in 0..n_rows {
        let row = &x[r * dim..(r + 1) * dim];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        for i in 0..dim {
            out[r * dim + i] = ((row[i] as f64 - mean) * rstd) as f32 * gamma[i] + beta[i];
        }
    }
}

/// RMSNorm of each of `n_rows` rows of `dim` in `x` into `out`.
pub fn rms_norm(x: &[f32], n_rows: usize, dim: usize, weight: &[f32], eps: f32, out: &mut [f32]) {
    assert!(x.len() >= n_rows * dim && out.len() >= n_rows * dim, "rms_norm: buffer sizes");
    assert!(weight.len() == dim, "rms_norm: weight size");
    rms_norm_simd(&x[..n_rows * dim], dim, weight, eps, &mut out[..n_rows * dim]);
}

simd_dispatch!(fn rms_norm_simd(x: &[f32], dim: usize, weight: &[f32], eps: f32, out: &mut [f32]) => rms_norm_body);

#[inline(always)]
fn rms_norm_body(x: &[f32], dim: usize, weight: &[f32], eps: f32, out: &mut [f32]) {
    for (row, out_row) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean_square = lane_sum(row, |v| v * v) / dim as f32;
        let rstd = 1.0 / (mean_square + eps).sqrt();
        for ((o, &v), &w) in out_row.iter_mut().zip(row).zip(weight) {
            *o = v * rstd * w;
        }
    }
}

/// The naive twin of [`rms_norm`]: sequential sums in f64.
pub fn rms_norm_naive(x: &[f32], n_rows: usize, dim: usize, weight: &[f32], eps: f32, out: &mut [f32]) {
    for r in 0..n_rows {
        let row = &x[r * dim..(r + 1) * dim];
        let mean_square = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64;
        let rstd = 1.0 / (mean_square + eps as f64).sqrt();
        for i in 0..dim {
            out[r * dim + i] = (row[i] as f64 * rstd) as f32 * weight[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{assert_close, test_data};

    #[test]
    fn rms_norm_matches_naive_twin() {
        for (n_rows, dim) in [(1, 1), (1, 15), (3, 16), (5, 64), (2, 77), (4, 288)] {
            let x: Vec<f32> = test_data(n_rows * dim, 4).iter().map(|v| v * 3.0 + 0.5).collect();
            let weight = test_data(dim, 5);
            let (mut got, mut want) = (vec![0.0; n_rows * dim], vec![0.0; n_rows * dim]);
            rms_norm(&x, n_rows, dim, &weight, 1e-5, &mut got);
            rms_norm_naive(&x, n_rows, dim, &weight, 1e-5, &mut want);
            assert_close(&got, &want, 2e-5, &format!("rms_norm {n_rows}x{dim}"));
        }
    }

    #[test]
    fn layer_norm_matches_naive_twin() {
        for (n_rows, dim) in [(1, 1), (1, 15), (3, 16), (5, 64), (2, 77), (4, 768)] {
            let x: Vec<f32> = test_data(n_rows * dim, 1).iter().map(|v| v * 3.0 + 0.5).collect();
            let gamma = test_data(dim, 2);
            let beta = test_data(dim, 3);
            let (mut got, mut want) = (vec![0.0; n_rows * dim], vec![0.0; n_rows * dim]);
            layer_norm(&x, n_rows, dim, &gamma, &beta, 1e-5, &mut got);
            layer_norm_naive(&x, n_rows, dim, &gamma, &beta, 1e-5, &mut want);
            assert_close(&got, &want, 2e-5, &format!("layer_norm {n_rows}x{dim}"));
        }
    }
}
