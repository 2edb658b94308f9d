//! Products against a `(k, n)` weight matrix packed into column panels: GPT-2's Conv1D
//! projections (`x · W + bias`, `W` stored `(n_in, n_out)` in its checkpoints) on CPUs with
//! AVX-512 (`layers::Linear` keeps the checkpoint's layout elsewhere, where the portable body
//! below lost to `gemm` and `vec_mat`: `docs/speed.md#gpt-2s-weights-in-panels`).
//!
//! A panel is [`PANEL`] consecutive columns of `W`, stored `(k, PANEL)` row-major; panels follow
//! each other, the last padded with zero columns. [`pack`] makes that layout from the
//! checkpoint's and [`unpack`] undoes it (for export).
//!
//! # Why panels
//! In the checkpoint's layout a one-row product (decode) updates every output per weight row,
//! and a thread's share of the columns is a short segment of every row: no stream for the
//! prefetcher to follow. Stored transposed, `(n, k)`, decode streams well (it is Llama's
//! layout) but prefill has to reduce dot products, 8 loads per 16 multiply-adds. In panels,
//! both products are outer products: a thread's columns are one contiguous stream, each step
//! loads a weight vector once and multiplies it into every row of `x` in registers, and no
//! horizontal sum is ever taken.
//!
//! # Invariant
//! Each output is `bias[j]` (or 0), then `x[i][kk] · W[kk][j]` added for `kk` in order: the
//! same operations for one row and for many, on one thread and on several (`tests` below hold
//! it bit for bit), so decode and prefill agree exactly. The AVX-512 body fuses each
//! multiply-add (one rounding per step), as the portable body does where the kernels run
//! AVX2 + FMA or AVX-512 (`kernels::simd()`); below that (and off x86-64) the portable body
//! rounds the product and the sum separately (two), so the bodies agree within rounding, and
//! bit for bit only within one SIMD level.

use super::matmul::PARALLEL_MIN_WEIGHTS;
use super::parallel::{SyncPtr, Threads};
use super::simd_dispatch;

/// Columns per panel: one 16-lane AVX-512 vector of `f32`.
pub const PANEL: usize = 16;

/// Panels a thread's block of columns starts on a multiple of (64 columns, 256 bytes per
/// weight row): the AVX-512 kernel's tiles are 4 panels wide.
const BLOCK_PANELS: usize = 4;

/// Floats in the packed form of a `(k, n)` matrix: `n` rounded up to whole panels, times `k`.
///
/// # Panics
/// If that overflows `usize`.
pub fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(PANEL).checked_mul(PANEL * k).expect("panel::packed_len: size overflows usize")
}

/// `w` `(k, n)` row-major, packed into panels: element `(kk, j)` at
/// `((j / PANEL) * k + kk) * PANEL + j % PANEL`, the padding columns 0.
///
/// # Panics
/// If `w.len() != k * n`.
pub fn pack(w: &[f32], k: usize, n: usize) -> Vec<f32> {
    let mut packed = vec![0.0; packed_len(k, n)];
    pack_into(w, k, n, &mut packed);
    packed
}

/// [`pack`] into `packed` (a buffer the caller aligned, say), which must be
/// `packed_len(k, n)` floats; its padding columns are set to 0.
///
/// # Panics
/// If `w.len() != k * n` or `packed.len() != packed_len(k, n)`.
pub fn pack_into(w: &[f32], k: usize, n: usize, packed: &mut [f32]) {
    assert_eq!(w.len(), k * n, "panel::pack: w is not (k, n)");
    assert_eq!(packed.len(), packed_len(k, n), "panel::pack: packed is not packed_len(k, n)");
    for (q, panel) in packed.chunks_exact_mut(PANEL * k.max(1)).enumerate().take(n.div_ceil(PANEL)) {
        let (c0, width) = (q * PANEL, PANEL.min(n - q * PANEL));
        for (kk, dst) in panel.chunks_exact_mut(PANEL).enumerate() {
            dst[..width].copy_from_slice(&w[kk * n + c0..kk * n + c0 + width]);
            dst[width..].fill(0.0);
        }
    }
}

/// The `(k, n)` row-major matrix that [`pack`] packed into `packed`.
///
/// # Panics
/// If `packed.len() != packed_len(k, n)`.
pub fn unpack(packed: &[f32], k: usize, n: usize) -> Vec<f32> {
    assert_eq!(packed.len(), packed_len(k, n), "panel::unpack: not a packed (k, n)");
    let mut w = vec![0.0; k * n];
    for (q, panel) in packed.chunks_exact(PANEL * k.max(1)).enumerate().take(n.div_ceil(PANEL)) {
        let (c0, width) = (q * PANEL, PANEL.min(n - q * PANEL));
        for (kk, src) in panel.chunks_exact(PANEL).enumerate() {
            w[kk * n + c0..kk * n + c0 + width].copy_from_slice(&src[..width]);
        }
    }
    w
}

/// `out (m, n) = x (m, k) · W + bias`, `W` `(k, n)` given packed ([`pack`]), `bias` `(n,)` or
/// absent; `x` and `out` row-major.
///
/// Columns are split between `threads` in blocks of whole 4-panel groups, each column computed
/// as on one thread; a one-row product under 16384 weights stays on this thread.
///
/// # Panics
/// If `x` holds fewer than `m * k` floats, `packed` is not `packed_len(k, n)`, `out` holds
/// fewer than `m * n`, or `bias` is not `n` long (sizes that overflow `usize` included).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    x: &[f32],
    m: usize,
    k: usize,
    packed: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    threads: Threads<'_>,
) {
    product(x, [m, k, n], packed, bias, out, threads, Body::Best)
}

/// Which body a [`Block`] runs: the CPU's best, or the portable one (for its tests on CPUs
/// with AVX-512).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Body {
    Best,
    #[cfg_attr(not(test), allow(dead_code))]
    Portable,
}

/// [`matmul`] on the given body; `mkn` is `[m, k, n]`.
fn product(
    x: &[f32],
    [m, k, n]: [usize; 3],
    packed: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    threads: Threads<'_>,
    body: Body,
) {
    let fits = |len: usize, rows: usize, cols: usize| rows.checked_mul(cols).is_some_and(|size| len >= size);
    assert!(fits(x.len(), m, k) && fits(out.len(), m, n), "panel::matmul: x or out too short");
    assert_eq!(packed.len(), packed_len(k, n), "panel::matmul: weights not a packed (k, n)");
    assert!(bias.is_none_or(|b| b.len() == n), "panel::matmul: bias length");
    if m == 0 || n == 0 {
        return;
    }
    let threads = if m == 1 && k * n < PARALLEL_MIN_WEIGHTS { Threads::One } else { threads };
    let out_ptr = SyncPtr(out.as_mut_ptr());
    threads.for_each_column_block(n, BLOCK_PANELS * PANEL, |cols| {
        let block = Block {
            x: &x[..m * k],
            m,
            k,
            panels: &packed[cols.start * k..cols.end.div_ceil(PANEL) * PANEL * k],
            width: cols.len(),
            bias: bias.map(|b| &b[cols.clone()]),
            body,
        };
        // Safety: blocks are disjoint column ranges of `out`'s m rows of n (borrowed mutably
        // for the whole call), and `block` writes only its own columns of those rows.
        unsafe { block.run(out_ptr.get().add(cols.start), n) }
    });
}

/// One thread's share of a [`matmul`]: columns `width` wide, starting on a panel.
struct Block<'a> {
    /// `(m, k)`.
    x: &'a [f32],
    m: usize,
    k: usize,
    /// The block's panels, `width.div_ceil(PANEL)` of them.
    panels: &'a [f32],
    width: usize,
    /// The block's `width` biases.
    bias: Option<&'a [f32]>,
    body: Body,
}

impl Block<'_> {
    /// Writes the block's `m` rows of `width` outputs, row `i` at `out + i * out_stride`.
    ///
    /// # Safety
    /// `out` must be valid for writes at `i * out_stride + j` for `i < m`, `j < width`, and no
    /// other thread may access those floats during the call.
    unsafe fn run(&self, out: *mut f32, out_stride: usize) {
        if self.width == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.body == Body::Best && super::simd() == super::SimdLevel::Avx512 {
            // Safety: the CPU has AVX-512F (checked above); the caller vouches for `out`.
            return unsafe { avx512::block(self, out, out_stride) };
        }
        // Safety: as the caller vouches, row i's `width` floats are ours alone.
        let row = |i: usize| unsafe { std::slice::from_raw_parts_mut(out.add(i * out_stride), self.width) };
        if self.m == 1 {
            return portable_row(self.x, self.panels, self.bias, row(0));
        }
        let k = self.k;
        for q in 0..self.width.div_ceil(PANEL) {
            let panel = &self.panels[q * PANEL * k..(q + 1) * PANEL * k];
            let cols = q * PANEL..self.width.min((q + 1) * PANEL);
            let mut bias = [0.0; PANEL];
            if let Some(b) = self.bias {
                bias[..cols.len()].copy_from_slice(&b[cols.clone()]);
            }
            // The panel stays in cache while every tile of rows reads it.
            for i0 in (0..self.m).step_by(PORTABLE_ROWS) {
                let rows = PORTABLE_ROWS.min(self.m - i0);
                // Missing rows of the last tile repeat its first; their sums are dropped.
                let x: [&[f32]; PORTABLE_ROWS] = std::array::from_fn(|a| {
                    let i = i0 + if a < rows { a } else { 0 };
                    &self.x[i * k..(i + 1) * k]
                });
                let mut sums = [bias; PORTABLE_ROWS];
                portable_tile(&x, panel, &mut sums);
                for (a, sums) in sums.iter().enumerate().take(rows) {
                    row(i0 + a)[cols.clone()].copy_from_slice(&sums[..cols.len()]);
                }
            }
        }
    }
}

/// `a · w + s`: fused, one rounding, with `FMA` (the CPU has the instruction); else the
/// product and the sum rounded each.
#[inline(always)]
fn mul_add<const FMA: bool>(a: f32, w: f32, s: f32) -> f32 {
    if FMA { a.mul_add(w, s) } else { s + a * w }
}

/// Rows of `x` per tile of the portable several-row body: 4 rows of 16 sums are 8 AVX2
/// registers (or 4 AVX-512 ones), all kept in registers. 5 and 6 rows spilled to the stack and
/// ran a 64-token `gpt2` prefill under `SMALLMIND_SIMD=avx2` slower (285-315 and 348-380 ms
/// against 4 rows' 206-281, on a 2-core Intel Xeon, family 6 model 207).
const PORTABLE_ROWS: usize = 4;

simd_dispatch!(
    fn portable_tile(
        x: &[&[f32]; PORTABLE_ROWS],
        panel: &[f32],
        sums: &mut [[f32; PANEL]; PORTABLE_ROWS]
    ) => portable_tile_body with fma
);

/// [`PORTABLE_ROWS`] rows of `x` (each `k` long) times one panel (`(k, PANEL)`), added onto
/// `sums`: `sums[a][j] += Σ x[a][kk] · panel[kk][j]`, the products and sums rounded as
/// [`portable_row_body`] rounds them, in the same order (so bit for bit its result).
#[inline(always)]
fn portable_tile_body<const FMA: bool>(
    x: &[&[f32]; PORTABLE_ROWS],
    panel: &[f32],
    sums: &mut [[f32; PANEL]; PORTABLE_ROWS],
) {
    let k = panel.len() / PANEL;
    assert!(x.iter().all(|row| row.len() == k), "portable_tile: rows of x are not k long");
    let mut acc = *sums;
    for (kk, w) in panel.chunks_exact(PANEL).enumerate() {
        for (acc, row) in acc.iter_mut().zip(x) {
            let a = row[kk];
            for (s, &w) in acc.iter_mut().zip(w) {
                *s = mul_add::<FMA>(a, w, *s);
            }
        }
    }
    *sums = acc;
}

simd_dispatch!(
    fn portable_row(
        x: &[f32],
        panels: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32]
    ) => portable_row_body with fma
);

/// One row of a block on any CPU: `out[j] = bias[j] + Σ x[kk] · W[kk][j]`, one panel at a time,
/// the panel's 16 sums in a local array that LLVM keeps in vector registers.
#[inline(always)]
fn portable_row_body<const FMA: bool>(x: &[f32], panels: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let k = x.len();
    for (q, out) in out.chunks_mut(PANEL).enumerate() {
        let mut acc = [0.0f32; PANEL];
        if let Some(bias) = bias {
            acc[..out.len()].copy_from_slice(&bias[q * PANEL..q * PANEL + out.len()]);
        }
        let panel = &panels[q * PANEL * k..(q + 1) * PANEL * k];
        for (&a, w) in x.iter().zip(panel.chunks_exact(PANEL)) {
            for (s, &w) in acc.iter_mut().zip(w) {
                *s = mul_add::<FMA>(a, w, *s);
            }
        }
        out.copy_from_slice(&acc[..out.len()]);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BLOCK_PANELS, Block, PANEL};
    use std::arch::x86_64::*;

    /// Rows of `x` per prefill tile: 6 rows by 4 panels is 24 accumulators, 4 weight vectors
    /// and a broadcast, 29 of the 32 vector registers.
    const MR: usize = 6;

    /// How far ahead of its loads a one-row product asks for weights (into L2, `prefetcht1`):
    /// 64 weight rows of a panel, 4 KiB, past the page where the hardware streamer stops (as
    /// `matmul::avx512::PREFETCH_FLOATS` for the transposed layout).
    const PREFETCH_ROWS: usize = 64;

    /// The AVX-512 body of [`Block::run`]: for each group of up to 4 panels, the rows of `x`
    /// in tiles of [`MR`] (the rest one by one), each tile's accumulators in registers for the
    /// whole of `k`.
    ///
    /// # Performance
    /// A step of a 6x4 tile loads 4 weight vectors and broadcasts 6 values of `x` for 24
    /// fused multiply-adds. A group's panels (4 x 64 B per weight row) are read from memory by
    /// its first tile and from L2 by the rest; while the first tile of a group runs, it asks
    /// for the next group's panels, so that they arrive before they are needed. One row
    /// (decode) is a 1x4 tile that asks for its own panels 4 KiB ahead instead.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `out` as [`Block::run`] requires.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block(b: &Block<'_>, out: *mut f32, out_stride: usize) {
        let (k, n_panels) = (b.k, b.width.div_ceil(PANEL));
        assert!(b.panels.len() == n_panels * PANEL * k && b.x.len() == b.m * k, "panel: block sizes");
        let group_len = BLOCK_PANELS * PANEL * k;
        for (g, q0) in (0..n_panels).step_by(BLOCK_PANELS).enumerate() {
            let panels = (n_panels - q0).min(BLOCK_PANELS);
            let cols = (b.width - q0 * PANEL).min(panels * PANEL);
            let w = b.panels[q0 * PANEL * k..].as_ptr();
            let bias = b.bias.map(|bias| &bias[q0 * PANEL..q0 * PANEL + cols]);
            // Safety (every call below): the group's `panels` panels of k rows start at `w`;
            // rows i0.. of x are within x; out's rows i0.. at columns q0 * PANEL + 0..cols are
            // the caller's.
            unsafe {
                let out = out.add(q0 * PANEL);
                if b.m == 1 {
                    let ahead = (w.wrapping_add(PREFETCH_ROWS * PANEL), panels);
                    tile_n::<1>(b.x.as_ptr(), k, w, panels, cols, bias, out, out_stride, Some(ahead));
                    continue;
                }
                // The next group's panels, streamed into L2 by this group's first tile.
                let next = b.panels.as_ptr().wrapping_add((g + 1) * group_len);
                let next_panels = n_panels.saturating_sub(q0 + BLOCK_PANELS).min(BLOCK_PANELS);
                let mut i0 = 0;
                while i0 + MR <= b.m {
                    let ahead = (i0 == 0 && next_panels > 0).then_some((next, next_panels));
                    let x = b.x.as_ptr().add(i0 * k);
                    tile_n::<MR>(x, k, w, panels, cols, bias, out.add(i0 * out_stride), out_stride, ahead);
                    i0 += MR;
                }
                for i in i0..b.m {
                    let x = b.x.as_ptr().add(i * k);
                    tile_n::<1>(x, k, w, panels, cols, bias, out.add(i * out_stride), out_stride, None);
                }
            }
        }
    }

    /// [`tile`] for a group of `panels` (1 to 4) panels.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_n<const X: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        panels: usize,
        cols: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
        out_stride: usize,
        ahead: Option<(*const f32, usize)>,
    ) {
        // Safety: passed on from the caller.
        unsafe {
            match panels {
                4 => tile::<X, 4>(x, k, w, cols, bias, out, out_stride, ahead),
                3 => tile::<X, 3>(x, k, w, cols, bias, out, out_stride, ahead),
                2 => tile::<X, 2>(x, k, w, cols, bias, out, out_stride, ahead),
                _ => tile::<X, 1>(x, k, w, cols, bias, out, out_stride, ahead),
            }
        }
    }

    /// `X` rows of `x` times `R` panels: `out[a * out_stride + j] = bias[j] + Σ_kk x[a][kk] ·
    /// W[kk][j]` for the group's `cols` columns (`R` panels, the last possibly partial), each
    /// sum fused multiply-adds in `kk` order. With `ahead` `(from, panels)`, also asks for
    /// `panels` (at most `R`) panels' worth of weights from `from` on, one cache line per weight
    /// row and panel (a hint: the addresses need not be within anything).
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `x` must hold `X` rows of `k` floats (`k` apart) and `w`
    /// `R` panels of `k` rows of [`PANEL`]; `bias`, if any, must be `cols` long; `out` must be
    /// valid for writes at `a * out_stride + j` for `a < X`, `j < cols`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const X: usize, const R: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        cols: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
        out_stride: usize,
        ahead: Option<(*const f32, usize)>,
    ) {
        let panel_len = PANEL * k;
        // Lanes of panel r that are real columns: all 16 but in the last panel.
        let mask = |r: usize| -> __mmask16 {
            let lanes = cols.saturating_sub(r * PANEL).min(PANEL);
            ((1u32 << lanes) - 1) as __mmask16
        };
        // Safety: bias holds `cols` floats; masked lanes are not read.
        let init: [__m512; R] = std::array::from_fn(|r| match bias {
            Some(bias) => unsafe { _mm512_maskz_loadu_ps(mask(r), bias.as_ptr().add(r * PANEL)) },
            None => _mm512_setzero_ps(),
        });
        let mut acc = [init; X];
        for kk in 0..k {
            // Safety: kk < k, within each panel and each row of x.
            unsafe {
                if let Some((from, panels)) = ahead {
                    for r in 0..R.min(panels) {
                        let line = from.wrapping_add(r * panel_len + kk * PANEL);
                        _mm_prefetch::<_MM_HINT_T1>(line as *const i8);
                    }
                }
                let wv: [__m512; R] =
                    std::array::from_fn(|r| _mm512_loadu_ps(w.add(r * panel_len + kk * PANEL)));
                for (a, acc) in acc.iter_mut().enumerate() {
                    let xa = _mm512_set1_ps(*x.add(a * k + kk));
                    for r in 0..R {
                        acc[r] = _mm512_fmadd_ps(xa, wv[r], acc[r]);
                    }
                }
            }
        }
        for (a, acc) in acc.iter().enumerate() {
            for (r, &v) in acc.iter().enumerate() {
                // Safety: only the real columns of row a are written, as the caller vouched.
                unsafe { _mm512_mask_storeu_ps(out.add(a * out_stride + r * PANEL), mask(r), v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::parallel::WorkerPool;
    use crate::kernels::{ODD_PRODUCT_SHAPES, test_data};

    /// Asserts each of `got` (`(m, n)`) within the rounding bound of a sum of `k + 1` terms
    /// added one by one: `(k + 1) · u · (|bias[j]| + Σ |x[i][kk] · W[kk][j]|)`, `u` the unit
    /// roundoff (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4.2), of
    /// the exact sum (in f64). A fixed tolerance would be too tight for k = 768 or too loose
    /// for k = 3.
    fn assert_within_summation_bound(
        got: &[f32],
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        mnk: [usize; 3],
    ) {
        let [m, n, k] = mnk;
        let u = f32::EPSILON as f64 / 2.0;
        for i in 0..m {
            for j in 0..n {
                let b = bias.map_or(0.0, |b| b[j] as f64);
                let terms = (0..k).map(|kk| x[i * k + kk] as f64 * w[kk * n + j] as f64);
                let (exact, magnitude) = terms.fold((b, b.abs()), |(s, a), t| (s + t, a + t.abs()));
                let bound = (k + 1) as f64 * u * magnitude;
                let g = got[i * n + j] as f64;
                assert!((g - exact).abs() <= bound, "{m}x{k}x{n} [{i}, {j}]: {g} vs {exact}, bound {bound}");
            }
        }
    }

    /// The shared odd shapes (partial panels, partial 4-panel groups, rows left over from 6-row
    /// tiles), k = 0, and a 64-token prompt through a GPT-2-wide (k = 768) layer.
    fn shapes() -> impl Iterator<Item = (usize, usize, usize)> {
        ODD_PRODUCT_SHAPES.into_iter().chain([(7, 0, 40), (64, 768, 200)])
    }

    /// `product` into an `out` with a canary after its `m * n` floats, which must survive.
    fn run(
        x: &[f32],
        mkn: [usize; 3],
        packed: &[f32],
        bias: Option<&[f32]>,
        threads: Threads,
        body: Body,
    ) -> Vec<f32> {
        let [m, _, n] = mkn;
        let mut out = vec![f32::NAN; m * n + PANEL];
        out[m * n..].fill(7.0);
        product(x, mkn, packed, bias, &mut out, threads, body);
        assert!(out[m * n..].iter().all(|&v| v == 7.0), "{mkn:?}: written past (m, n)");
        out.truncate(m * n);
        out
    }

    #[test]
    fn pack_then_unpack_gives_the_matrix_back() {
        for (_, k, n) in shapes() {
            let w = test_data(k * n, 2);
            let packed = pack(&w, k, n);
            assert_eq!(packed.len(), packed_len(k, n));
            assert_eq!(unpack(&packed, k, n), w, "{k}x{n}");
        }
        // Element (kk, j) of a 2x20 matrix: panel 1 holds columns 16..20, then 12 zeros.
        let w: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let packed = pack(&w, 2, 20);
        assert_eq!(&packed[2 * PANEL..2 * PANEL + 4], &w[16..20]);
        assert_eq!(&packed[3 * PANEL..3 * PANEL + 4], &w[36..40]);
        assert!(packed[2 * PANEL + 4..3 * PANEL].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn matmul_is_within_the_summation_bound_of_the_exact_product() {
        let pool = WorkerPool::new(2).unwrap();
        for threads in [Threads::One, Threads::Pool(&pool)] {
            for (m, k, n) in shapes() {
                let (x, w, b) = (test_data(m * k, 1), test_data(k * n, 2), test_data(n, 3));
                let packed = pack(&w, k, n);
                for bias in [None, Some(b.as_slice())] {
                    for body in [Body::Best, Body::Portable] {
                        let got = run(&x, [m, k, n], &packed, bias, threads, body);
                        assert_within_summation_bound(&got, &x, &w, bias, [m, n, k]);
                    }
                }
            }
        }
    }

    /// The invariant: each row of a several-row product is, bit for bit, the one-row product of
    /// that row, on one thread or several (so decode and prefill agree exactly), for either
    /// body.
    #[test]
    fn several_rows_equal_one_row_bit_for_bit_on_any_thread_count() {
        let pools = [WorkerPool::new(2).unwrap(), WorkerPool::new(3).unwrap()];
        for (m, k, n) in [(13, 64, 256), (64, 768, 200), (7, 33, 131), (8, 288, 1152)] {
            let (x, w, b) = (test_data(m * k, 1), test_data(k * n, 2), test_data(n, 3));
            let packed = pack(&w, k, n);
            for body in [Body::Best, Body::Portable] {
                let all = run(&x, [m, k, n], &packed, Some(&b), Threads::One, body);
                for threads in [Threads::One, Threads::Pool(&pools[0]), Threads::Pool(&pools[1])] {
                    let what = format!("{m}x{k}x{n} on {} threads, {body:?} body", threads.count());
                    let split = run(&x, [m, k, n], &packed, Some(&b), threads, body);
                    assert!(split == all, "{what}: differs from one thread");
                    for i in 0..m {
                        let row = run(&x[i * k..(i + 1) * k], [1, k, n], &packed, Some(&b), threads, body);
                        assert!(row[..] == all[i * n..(i + 1) * n], "{what}: row {i} not bit for bit");
                    }
                }
            }
        }
    }

    /// The bodies without FMA (the baseline build's), called directly since this CPU's dispatch
    /// would fuse: within the bound, and the tile bit for bit the one-row body.
    #[test]
    fn unfused_bodies_are_within_the_bound_and_agree_bit_for_bit() {
        for (_, k, n) in shapes().filter(|&(_, k, _)| k > 0) {
            let (x, w, b) = (test_data(PORTABLE_ROWS * k, 1), test_data(k * n, 2), test_data(n, 3));
            let packed = pack(&w, k, n);
            for q in 0..n.div_ceil(PANEL) {
                let (panel, cols) =
                    (&packed[q * PANEL * k..(q + 1) * PANEL * k], q * PANEL..n.min((q + 1) * PANEL));
                let rows: [&[f32]; PORTABLE_ROWS] = std::array::from_fn(|a| &x[a * k..(a + 1) * k]);
                let mut init = [0.0; PANEL];
                init[..cols.len()].copy_from_slice(&b[cols.clone()]);
                let mut tile = [init; PORTABLE_ROWS];
                portable_tile_body::<false>(&rows, panel, &mut tile);
                for (a, row) in rows.iter().enumerate() {
                    let mut one = vec![f32::NAN; cols.len()];
                    portable_row_body::<false>(row, panel, Some(&b[cols.clone()]), &mut one);
                    assert!(one[..] == tile[a][..cols.len()], "{k}x{n} panel {q} row {a}: not bit for bit");
                }
            }
            let mut got = vec![f32::NAN; PORTABLE_ROWS * n];
            for (a, out) in got.chunks_exact_mut(n).enumerate() {
                portable_row_body::<false>(&x[a * k..(a + 1) * k], &packed, Some(&b), out);
            }
            assert_within_summation_bound(&got, &x, &w, Some(&b), [PORTABLE_ROWS, n, k]);
        }
    }

    /// The two layouts `layers::Linear` chooses between give the same products within the
    /// bound: panels here, the checkpoint's `(k, n)` through `matmul::matmul` (gemm, `vec_mat`).
    #[test]
    fn panels_and_the_checkpoint_layout_agree() {
        let pool = WorkerPool::new(2).unwrap();
        for threads in [Threads::One, Threads::Pool(&pool)] {
            for (m, k, n) in shapes().chain([(3, 60, 150), (1, 60, 150)]) {
                let (x, w, b) = (test_data(m * k, 1), test_data(k * n, 2), test_data(n, 3));
                let panels = run(&x, [m, k, n], &pack(&w, k, n), Some(&b), threads, Body::Best);
                let mut rows = vec![f32::NAN; m * n];
                super::super::matmul::matmul(&x, m, k, &w, n, Some(&b), &mut rows, threads);
                assert_within_summation_bound(&panels, &x, &w, Some(&b), [m, n, k]);
                assert_within_summation_bound(&rows, &x, &w, Some(&b), [m, n, k]);
            }
        }
    }

    #[test]
    fn no_rows_or_columns_leave_out_alone() {
        let mut out = vec![7.0; 4];
        matmul(&[], 0, 8, &pack(&[0.0; 8 * 3], 8, 3), 3, None, &mut out, Threads::One);
        matmul(&[1.0; 8], 1, 8, &[], 0, None, &mut out, Threads::One);
        assert_eq!(out, [7.0; 4]);
    }
}
