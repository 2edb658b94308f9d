//! Rotary position embedding (RoPE) for Llama, as llama2.c applies it: within each head, the
//! adjacent pairs `(2i, 2i + 1)` of a query or key row at position `pos` are rotated by the
//! angle `pos * theta^(-2i / head_dim)`. Hugging Face rotates `(i, i + head_dim / 2)` instead
//! and stores q and k permuted to match; [`rotate_half_rows_to_adjacent_pairs`] undoes that at
//! load, so one kernel serves both formats.
//!
//! # Performance
//! The angles depend only on the position and the pair, so [`RopeTable`] computes their cosines
//! and sines once per model (`n_ctx * head_dim / 2` of each); applying RoPE is then four
//! multiplies and two adds per pair, with no transcendental function in the loop.

/// The angle pair `i` of a head turns by at position `pos`: `pos * theta^(-2i / head_dim)`,
/// in f64 (the table is then exact to f32 rounding).
pub fn angle(pos: usize, i: usize, head_dim: usize, theta: f32) -> f64 {
    pos as f64 * (theta as f64).powf(-2.0 * i as f64 / head_dim as f64)
}

/// Cosines and sines of every (position, pair) angle, row-major by position.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable {
    /// `(n_ctx, head_dim / 2)`.
    cos: Vec<f32>,
    /// `(n_ctx, head_dim / 2)`.
    sin: Vec<f32>,
    head_dim: usize,
    n_ctx: usize,
}

impl RopeTable {
    /// The table for positions `0..n_ctx` of heads of `head_dim` (even), base `theta`.
    pub fn new(n_ctx: usize, head_dim: usize, theta: f32) -> RopeTable {
        assert!(head_dim.is_multiple_of(2), "rope: head_dim must be even");
        let half = head_dim / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(n_ctx * half), Vec::with_capacity(n_ctx * half));
        for pos in 0..n_ctx {
            for i in 0..half {
                let angle = angle(pos, i, head_dim, theta);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        RopeTable { cos, sin, head_dim, n_ctx }
    }

    /// Rotates, in place, `n_rows` rows at positions `start_pos..start_pos + n_rows`; each row
    /// holds `n_heads` heads of `head_dim` starting at offset 0 and rows are `row_stride` apart.
    pub fn apply(&self, x: &mut [f32], n_rows: usize, row_stride: usize, n_heads: usize, start_pos: usize) {
        let (head_dim, half) = (self.head_dim, self.head_dim / 2);
        assert!(start_pos + n_rows <= self.n_ctx, "rope: positions beyond the table");
        assert!(n_heads * head_dim <= row_stride || n_rows <= 1, "rope: heads overflow the row stride");
        assert!(
            n_rows == 0 || x.len() >= (n_rows - 1) * row_stride + n_heads * head_dim,
            "rope: buffer size"
        );
        for r in 0..n_rows {
            let pos = start_pos + r;
            let (cos, sin) =
                (&self.cos[pos * half..(pos + 1) * half], &self.sin[pos * half..(pos + 1) * half]);
            let row = &mut x[r * row_stride..r * row_stride + n_heads * head_dim];
            for head in row.chunks_exact_mut(head_dim) {
                for (pair, (&c, &s)) in head.chunks_exact_mut(2).zip(cos.iter().zip(sin)) {
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = a * c - b * s;
                    pair[1] = a * s + b * c;
                }
            }
        }
    }
}

/// The naive twin of [`RopeTable::apply`]: each angle computed on the spot, in f64.
pub fn rope_naive(
    x: &mut [f32],
    n_rows: usize,
    row_stride: usize,
    n_heads: usize,
    head_dim: usize,
    start_pos: usize,
    theta: f32,
) {
    for r in 0..n_rows {
        let pos = start_pos + r;
        for h in 0..n_heads {
            for i in 0..head_dim / 2 {
                let angle = angle(pos, i, head_dim, theta);
                let at = r * row_stride + h * head_dim + 2 * i;
                let (a, b) = (x[at] as f64, x[at + 1] as f64);
                x[at] = (a * angle.cos() - b * angle.sin()) as f32;
                x[at + 1] = (a * angle.sin() + b * angle.cos()) as f32;
            }
        }
    }
}

/// Hugging Face's RoPE ("rotate half"), naively: within each head, element `i` pairs with
/// `i + head_dim / 2` instead of `2i` with `2i + 1`. The reference for loading Hugging Face
/// Llama weights, whose q and k projections are stored permuted to suit it.
pub fn rope_rotate_half_naive(
    x: &mut [f32],
    n_rows: usize,
    row_stride: usize,
    n_heads: usize,
    head_dim: usize,
    start_pos: usize,
    theta: f32,
) {
    let half = head_dim / 2;
    for r in 0..n_rows {
        let pos = start_pos + r;
        for h in 0..n_heads {
            for i in 0..half {
                let angle = angle(pos, i, head_dim, theta);
                let (lo, hi) = (r * row_stride + h * head_dim + i, r * row_stride + h * head_dim + i + half);
                let (a, b) = (x[lo] as f64, x[hi] as f64);
                x[lo] = (a * angle.cos() - b * angle.sin()) as f32;
                x[hi] = (a * angle.sin() + b * angle.cos()) as f32;
            }
        }
    }
}

/// Reorders the output rows of a q or k projection `(n_heads * head_dim, n_in)` from Hugging
/// Face's rotate-half order to llama2.c's adjacent pairs: within each head, row `2i` takes
/// Hugging Face's row `i` and row `2i + 1` its row `i + head_dim / 2`. With the rows so
/// reordered, [`RopeTable::apply`] computes what rotate-half RoPE computes on the original.
pub fn rotate_half_rows_to_adjacent_pairs(
    w: &[f32],
    n_heads: usize,
    head_dim: usize,
    n_in: usize,
) -> Vec<f32> {
    move_pair_rows(w, n_heads, head_dim, n_in, PairOrder::ToAdjacent)
}

/// The inverse of [`rotate_half_rows_to_adjacent_pairs`]: llama2.c's row order to Hugging
/// Face's (for writing Hugging Face checkpoints).
pub fn adjacent_pairs_to_rotate_half_rows(
    w: &[f32],
    n_heads: usize,
    head_dim: usize,
    n_in: usize,
) -> Vec<f32> {
    move_pair_rows(w, n_heads, head_dim, n_in, PairOrder::ToRotateHalf)
}

/// Which way [`move_pair_rows`] moves rows.
#[derive(Clone, Copy, PartialEq)]
enum PairOrder {
    ToAdjacent,
    ToRotateHalf,
}

/// Moves, within each head, the rows of pair `i` between rotate-half positions `(i, i + half)`
/// and adjacent positions `(2i, 2i + 1)`, in the direction `order` says.
fn move_pair_rows(w: &[f32], n_heads: usize, head_dim: usize, n_in: usize, order: PairOrder) -> Vec<f32> {
    assert_eq!(w.len(), n_heads * head_dim * n_in, "rope: projection size");
    let half = head_dim / 2;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_heads {
        for i in 0..half {
            for (adjacent, rotate_half) in [(2 * i, i), (2 * i + 1, i + half)] {
                let (to, from) = match order {
                    PairOrder::ToAdjacent => (adjacent, rotate_half),
                    PairOrder::ToRotateHalf => (rotate_half, adjacent),
                };
                let (dst, src) = ((h * head_dim + to) * n_in, (h * head_dim + from) * n_in);
                out[dst..dst + n_in].copy_from_slice(&w[src..src + n_in]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordered_rows_make_adjacent_pair_rope_equal_rotate_half_rope() {
        let (n_heads, head_dim, n_in, pos) = (3, 8, 5, 11);
        let w_hf = test_data(n_heads * head_dim * n_in, 21);
        let x = test_data(n_in, 22);
        let project = |w: &[f32]| -> Vec<f32> {
            w.chunks_exact(n_in).map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum()).collect()
        };
        // Hugging Face: its weights, rotate-half RoPE.
        let mut q_hf = project(&w_hf);
        rope_rotate_half_naive(&mut q_hf, 1, n_heads * head_dim, n_heads, head_dim, pos, 10000.0);
        // llama2.c: reordered weights, adjacent-pair RoPE.
        let mut q = project(&rotate_half_rows_to_adjacent_pairs(&w_hf, n_heads, head_dim, n_in));
        RopeTable::new(32, head_dim, 10000.0).apply(&mut q, 1, n_heads * head_dim, n_heads, pos);
        // The same rotated vector, in the two element orders.
        let expected = rotate_half_rows_to_adjacent_pairs(&q_hf, n_heads, head_dim, 1);
        assert_close(&q, &expected, 1e-5, "rope layouts");
        // And the reordering has an exact inverse (for writing Hugging Face files).
        let there = rotate_half_rows_to_adjacent_pairs(&w_hf, n_heads, head_dim, n_in);
        assert_eq!(adjacent_pairs_to_rotate_half_rows(&there, n_heads, head_dim, n_in), w_hf);
    }
    use crate::kernels::{assert_close, test_data};

    #[test]
    fn rope_matches_naive_twin() {
        // Rows of q (n_heads heads) inside a wider fused row, at several starting positions.
        for (n_rows, n_heads, head_dim, start_pos) in
            [(1, 1, 2, 0), (3, 2, 8, 5), (4, 6, 48, 100), (1, 4, 32, 255)]
        {
            let row_stride = n_heads * head_dim + 10;
            let x = test_data(n_rows * row_stride, 7);
            let (mut got, mut want) = (x.clone(), x.clone());
            RopeTable::new(256, head_dim, 10000.0).apply(&mut got, n_rows, row_stride, n_heads, start_pos);
            rope_naive(&mut want, n_rows, row_stride, n_heads, head_dim, start_pos, 10000.0);
            assert_close(&got, &want, 1e-5, &format!("rope {n_rows}x{n_heads}x{head_dim} at {start_pos}"));
            // Columns past the heads are untouched.
            for r in 0..n_rows {
                let tail = r * row_stride + n_heads * head_dim..(r + 1) * row_stride;
                assert_eq!(got[tail.clone()], x[tail]);
            }
        }
    }

    #[test]
    fn rope_keeps_norms_and_does_nothing_at_position_zero() {
        let x = test_data(64, 3);
        let mut y = x.clone();
        RopeTable::new(8, 64, 10000.0).apply(&mut y, 1, 64, 1, 0);
        assert_eq!(x, y, "position 0 is the identity");
        RopeTable::new(8, 64, 10000.0).apply(&mut y, 1, 64, 1, 7);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
        assert!((norm(&x) - norm(&y)).abs() < 1e-4, "a rotation keeps the norm");
        // The first pair turns by exactly `pos` radians (theta^0 = 1).
        let (a, b) = (x[0], x[1]);
        assert!((y[0] - (a * 7f32.cos() - b * 7f32.sin())).abs() < 1e-5);
    }
}
