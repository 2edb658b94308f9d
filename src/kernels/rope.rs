//! Rotary position embedding (RoPE) for Llama, as llama2.c applies it: within each head, the
//! adjacent pairs `(2i, 2i + 1)` of a query or key row at position `pos` are rotated by the
//! angle `pos * theta^(-2i / head_dim)`.
//!
//! # Performance
//! The angles depend only on the position and the pair, so [`RopeTable`] computes their cosines
//! and sines once per model (`n_ctx * head_dim / 2` of each); applying RoPE is then four
//! multiplies and two adds per pair, with no transcendental function in the loop.

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
                // In f64, as the naive twin: the table is exact to f32 rounding.
                let angle = pos as f64 * (theta as f64).powf(-2.0 * i as f64 / head_dim as f64);
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
        let pos = (start_pos + r) as f64;
        for h in 0..n_heads {
            for i in 0..head_dim / 2 {
                let angle = pos * (theta as f64).powf(-2.0 * i as f64 / head_dim as f64);
                let at = r * row_stride + h * head_dim + 2 * i;
                let (a, b) = (x[at] as f64, x[at + 1] as f64);
                x[at] = (a * angle.cos() - b * angle.sin()) as f32;
                x[at + 1] = (a * angle.sin() + b * angle.cos()) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
