//! Matrix products for the linear layers: our own kernels for one row, `gemm` or ours for
//! several.
//!
//! Two weight layouts occur: GPT-2's Conv1D weights are stored `(n_in, n_out)` ("x·W") on CPUs
//! without AVX-512 (with it, they are packed into panels at load and multiplied by
//! [`super::panel`]), while every Llama projection and the LM head are `(n_out, n_in)`
//! ("x·Wᵀ"). Both have a one-row path written here, because decoding multiplies a single row
//! and `gemm` is at its weakest on matrix-vector shapes (`cargo bench --bench kernels`
//! compares the one-row kernel with the several-row path at two rows). Several rows of "x·W"
//! go to `gemm` (it takes arbitrary strides, so no transpose is ever copied); several rows of
//! "x·Wᵀ" go to our tiled kernel on AVX-512 (it needs no packing, see
//! `avx512::mat_mat_transposed`) and to `gemm` elsewhere.

use super::parallel::Threads;
use super::simd_dispatch;

/// Below this many weights a one-row product stays on one thread: splitting costs more than it
/// saves. A dispatch to the worker pool costs ~0.16 us; a 128x128 product (16384 weights) took
/// 0.63 us on one thread and 0.60 us on two, a 128x512 one 2.61 and 1.68 us (back to back, the
/// weights in L2; on a 2-core AMD EPYC Zen 4, family 25 model 17).
pub(super) const PARALLEL_MIN_WEIGHTS: usize = 1 << 14;

/// `out (m, n) = x (m, k) · w (k, n) + bias`, all row-major; `bias` is `(n,)` or absent.
pub fn matmul(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
    threads: Threads<'_>,
) {
    assert!(x.len() >= m * k && w.len() == k * n && out.len() >= m * n, "matmul: buffer sizes");
    assert!(bias.is_none_or(|b| b.len() == n), "matmul: bias length");
    if m == 0 || n == 0 {
        return;
    }
    if m == 1 {
        return vec_mat(&x[..k], w, n, bias, &mut out[..n], threads);
    }
    // The bias is written first and the product accumulated onto it: one pass over `out`.
    if let Some(bias) = bias {
        out[..m * n].chunks_exact_mut(n).for_each(|row| row.copy_from_slice(bias));
    }
    if k == 0 {
        // An empty sum is 0: out is the bias (written above) or zeros.
        if bias.is_none() {
            out[..m * n].fill(0.0);
        }
        return;
    }
    // x is (m, k) row-major, w is (k, n) row-major: rhs element (kk, j) is w[kk * n + j].
    gemm_split(Product { m, k, n, x, w, rhs_strides: (n, 1), accumulate: bias.is_some() }, out, threads);
}

/// `out (m, n) = x (m, k) · wᵀ` where `w` is `(n, k)` row-major (every Llama projection's
/// layout, and the LM head's).
pub fn matmul_transposed(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    out: &mut [f32],
    threads: Threads<'_>,
) {
    assert!(x.len() >= m * k && w.len() == n * k && out.len() >= m * n, "matmul_transposed: sizes");
    if m == 0 || n == 0 || k == 0 {
        // An empty sum is 0; no kernel is asked about an empty shape.
        return out[..m * n].fill(0.0);
    }
    if m == 1 {
        return vec_mat_transposed(&x[..k], w, n, &mut out[..n], threads);
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd() == super::SimdLevel::Avx512 {
        let out_ptr = super::parallel::SyncPtr(out.as_mut_ptr());
        // Blocks of whole tiles (4 weight rows) and whole cache lines of `out` (16 columns).
        return threads.for_each_column_block(n, 16, |cols| {
            // Safety: the CPU has AVX-512F (checked above); x holds m rows of k, this block's
            // weight rows are within w (n rows of k), and its columns of out's m rows of n are
            // written by this block alone (`out` is borrowed mutably for the whole call).
            unsafe {
                let w_block = &w[cols.start * k..cols.end * k];
                avx512::mat_mat_transposed(
                    &x[..m * k],
                    m,
                    w_block,
                    out_ptr.get().add(cols.start),
                    /* out_stride = */ n,
                )
            }
        });
    }
    // rhs element (kk, j) is w[j * k + kk], within w's n * k elements.
    gemm_split(Product { m, k, n, x, w, rhs_strides: (1, k), accumulate: false }, out, threads);
}

/// A product `out (m, n) = [out +] x (m, k) · rhs (k, n)`, rhs element `(kk, j)` at
/// `w[kk * rhs_strides.0 + j * rhs_strides.1]`; every index within `x`, `w` and `out`.
struct Product<'a> {
    m: usize,
    k: usize,
    n: usize,
    x: &'a [f32],
    w: &'a [f32],
    rhs_strides: (usize, usize),
    /// Whether `out` holds values the product is added onto (the bias).
    accumulate: bool,
}

/// Runs `p` with `gemm`, its columns split statically between `threads` (one block each, a
/// multiple of 16 columns but the last), each block a single-threaded `gemm` call.
///
/// # Performance
/// `gemm`'s own threading (rayon) gained prefill little from a second core: a 64-token
/// stories110m prefill (then all on `gemm`; now on `avx512::mat_mat_transposed` where the CPU
/// has it) took 204 ms at one thread and 160 ms at two (1.27x; llama.cpp's own threads gave
/// it 1.77x), split this way 109 ms (1.88x), on a 2-core AMD EPYC Zen 4, family 25 model 17
/// (`docs/speed.md#prefill-the-worker-pool-and-an-unpacked-kernel`; `smallmind bench --model
/// stories110m --prompt-tokens 64 --max-new-tokens 1 --threads T --iterations 5`, medians, the
/// two builds run alternately, three rounds). Each thread reads only its own columns' weights, on the
/// pool decode already keeps warm. A block's sums may be ordered differently from one thread's
/// (within rounding; `tests/equivalence.rs` holds the tokens identical at 2 and 3 threads).
fn gemm_split(p: Product, out: &mut [f32], threads: Threads<'_>) {
    let Product { m, k, n, x, w, rhs_strides: (rs, cs), accumulate } = p;
    assert!(x.len() >= m * k && out.len() >= m * n, "gemm_split: sizes");
    assert!(m == 0 || n == 0 || k == 0 || (k - 1) * rs + (n - 1) * cs < w.len(), "gemm_split: rhs");
    let out_ptr = super::parallel::SyncPtr(out.as_mut_ptr());
    threads.for_each_column_block(n, 16, |cols| {
        // Safety: the assertions above bound every element of x, w and out that this block
        // reads (rows 0..m, columns `cols`), and blocks are disjoint column ranges of `out`,
        // which is borrowed mutably for the whole call.
        unsafe {
            gemm::gemm(
                m,
                cols.len(),
                k,
                out_ptr.get().add(cols.start),
                /* dst_cs = */ 1,
                /* dst_rs = */ n as isize,
                /* read_dst = */ accumulate,
                x.as_ptr(),
                /* lhs_cs = */ 1,
                /* lhs_rs = */ k as isize,
                w.as_ptr().add(cols.start * cs),
                /* rhs_cs = */ cs as isize,
                /* rhs_rs = */ rs as isize,
                /* alpha = */ if accumulate { 1.0 } else { 0.0 },
                /* beta = */ 1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
}

/// One row times a `(k, n)` matrix: `out = x · w + bias`.
///
/// # Performance
/// Streams `w` row by row, four rows per pass: each pass reads four contiguous weight rows and
/// updates `out` (which stays in L1 for n up to several thousand) with four multiply-adds per
/// load and store of `out`. Contiguous streams keep the hardware prefetcher ahead, which is what
/// matters once the weights no longer fit in cache (the `gpt2` shape is memory-bound).
/// With several threads, columns are split between them (on the worker pool), each column
/// computed as on one thread: the result does not depend on the thread count.
pub fn vec_mat(x: &[f32], w: &[f32], n: usize, bias: Option<&[f32]>, out: &mut [f32], threads: Threads<'_>) {
    let k = x.len();
    assert!(w.len() == k * n && out.len() == n, "vec_mat: buffer sizes");
    if threads.count() <= 1 || k * n < PARALLEL_MIN_WEIGHTS {
        return vec_mat_cols(x, w, n, 0, bias, out);
    }
    let chunk = n.div_ceil(threads.count()).next_multiple_of(16);
    threads.for_each_chunk_mut(out, chunk, |i, out_chunk| {
        let col0 = i * chunk;
        let bias = bias.map(|b| &b[col0..col0 + out_chunk.len()]);
        vec_mat_cols(x, w, n, col0, bias, out_chunk);
    });
}

/// Columns `col0 .. col0 + out.len()` of `x · w + bias`.
fn vec_mat_cols(x: &[f32], w: &[f32], n: usize, col0: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    match bias {
        Some(b) => out.copy_from_slice(b),
        None => out.fill(0.0),
    }
    vec_mat_simd(x, w, n, col0, out);
}

simd_dispatch!(fn vec_mat_simd(x: &[f32], w: &[f32], n: usize, col0: usize, out: &mut [f32]) => vec_mat_body);

#[inline(always)]
fn vec_mat_body(x: &[f32], w: &[f32], n: usize, col0: usize, out: &mut [f32]) {
    let width = out.len();
    let row = |i: usize| &w[i * n + col0..i * n + col0 + width];
    let k = x.len();
    let mut i = 0;
    while i + 4 <= k {
        let (a0, a1, a2, a3) = (x[i], x[i + 1], x[i + 2], x[i + 3]);
        let (w0, w1, w2, w3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
        for j in 0..width {
            out[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j];
        }
        i += 4;
    }
    for i in i..k {
        let (a, wi) = (x[i], row(i));
        for j in 0..width {
            out[j] += a * wi[j];
        }
    }
}

/// One row times the transpose of an `(n, k)` matrix: `out[j] = dot(x, w[j])`.
///
/// # Performance
/// This is Llama's every decode-time product and both models' LM head, and it is memory-bound
/// (stories15m's classifier alone is 37 MB per token), so on AVX-512 it is written with
/// intrinsics ([`avx512::vec_mat_transposed`]): fused multiply-adds into one 16-lane register
/// per row, reduced once per row. It reads the weights **one row at a time**, so that a
/// thread's rows are one sequential stream, and asks for them 4 KiB ahead of its loads
/// (`avx512::PREFETCH_FLOATS`: +20-35% on stories110m's decode on a 2-core Intel Xeon, family
/// 6 model 207). On a 2-core AMD EPYC Zen 4 (family 25 model 17), one row per pass decoded
/// stories15m about 1.8x as fast as eight rows per pass sharing each load of `x`
/// (`docs/decisions.md#2026-12-01-decode-reads-one-weight-row-at-a-time`). With several
/// threads, rows are split. The other bodies (AVX2, baseline) take four rows per pass: held to
/// AVX2 (`SMALLMIND_SIMD=avx2`) on a 2-core Intel Xeon (family 6 model 207), four rows decoded
/// stories15m at 346-370 tok/s against one row's 324-333, and stories110m at 25-28 against
/// 23-25 (the same command, two or three rounds; that is not an AVX2 CPU's memory system,
/// but the only comparison we have). Weights should be cache-line aligned (`layers::Weights`).
pub fn vec_mat_transposed(x: &[f32], w: &[f32], n: usize, out: &mut [f32], threads: Threads<'_>) {
    let k = x.len();
    assert!(w.len() == k * n && out.len() == n, "vec_mat_transposed: buffer sizes");
    if threads.count() <= 1 || k * n < PARALLEL_MIN_WEIGHTS {
        return vec_mat_transposed_rows(x, w, out);
    }
    let chunk = n.div_ceil(threads.count());
    threads.for_each_chunk_mut(out, chunk, |i, out_chunk| {
        let rows = &w[i * chunk * k..(i * chunk + out_chunk.len()) * k];
        vec_mat_transposed_rows(x, rows, out_chunk);
    });
}

/// `out[j] = dot(x, w[j])` on this thread: the AVX-512 kernel where the CPU has it.
fn vec_mat_transposed_rows(x: &[f32], w: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd() == super::SimdLevel::Avx512 {
        // Safety: the CPU has AVX-512F (checked above); sizes are checked inside.
        return unsafe { avx512::vec_mat_transposed(x, w, out) };
    }
    vec_mat_transposed_simd(x, w, out)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// `out[j] = dot(x, w[j])` for `w` of `(out.len(), x.len())`, one row at a time.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn vec_mat_transposed(x: &[f32], w: &[f32], out: &mut [f32]) {
        let k = x.len();
        assert_eq!(w.len(), k * out.len(), "vec_mat_transposed: buffer sizes");
        for (o, row) in out.iter_mut().zip(w.chunks_exact(k)) {
            // Safety: `row` holds `k` floats, as `x` does.
            *o = unsafe { dot(x, row) };
        }
    }

    /// How far ahead of its loads [`dot`] asks for weights (into L2, `prefetcht1`, one cache line
    /// per 16 floats): 1024 floats, 4 KiB, so past the page the hardware's streamer stops at.
    /// Measured on a 2-core Intel Xeon (family 6 model 207), `smallmind bench --model M
    /// --prompt-tokens 1 --max-new-tokens 128 --iterations 3 --warmup 1 --no-probe
    /// --phase-iterations 0`, medians of alternating processes (3-4 rounds), decode tok/s
    /// without -> with: stories110m 21.7 -> 29.2 and 24.5 -> 29.0 at one thread, 39.5 -> 49.8 at
    /// two; stories15m 161 -> 250 at one thread, 475 -> 531 at two; llama-tiny, whose weights
    /// stay in cache, unchanged within noise (3874 -> 3793 at one thread, 5765 -> 5728 at two,
    /// eight rounds each). 256 floats ahead gave stories110m 26.2; 2048 and 4096 as 1024.
    const PREFETCH_FLOATS: usize = 1024;

    /// Rows of `x` and of `w` per tile of [`mat_mat_transposed`].
    const TX: usize = 4;
    const TW: usize = 4;

    /// `out[i * out_stride + j] = dot(x[i], w[j])` for the `m` rows of `x` (`(m, k)`) and the
    /// rows of `w` (`(w.len() / k, k)`): several rows times a transposed matrix, no packing.
    ///
    /// # Performance
    /// Both operands are rows along `k`, as the one-row kernel reads them, so a tile needs no
    /// packed copy: 4 rows of `x` by 4 rows of `w`, each 16-float step loading 8 vectors for
    /// 16 fused multiply-adds into 16 accumulator registers. `gemm` spent about half of a
    /// 64-token stories110m prefill packing the weights it then used 64 times (53% of the
    /// profile in its `pack_generic_inner_loop`, 45% in its multiply-adds). `x` is taken 64
    /// rows at a time (192 KiB at stories110m's k = 768: L2), and for each 4 weight rows
    /// (12 KiB: L1) every 4 of those rows in turn. On a 2-core AMD EPYC Zen 4 (family 25 model
    /// 17) that prefill took 126-133 ms at one
    /// thread against gemm's 203-211 (`smallmind bench --model stories110m --prompt-tokens 64
    /// --max-new-tokens 1 --threads 1 --iterations 4`, medians, two rounds). Wider tiles ran
    /// out of registers and spilled accumulators to the stack: 4x6 165-171 ms, 3x8 159-169,
    /// 2x12 175-186, 6x4 165-168, 4x5 155-171, 5x4 195-254; 8x2 did not spill but loads 10
    /// vectors per 16 multiply-adds: 162-164. Each output is the dot product the one-row
    /// kernel [`dot`] computes, in the same order: bit for bit the same.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `x.len()` must be `m * k` with `k > 0` and `w.len()` a
    /// multiple of `k`; `out` must be valid for writes at `i * out_stride + j` for every row `i`
    /// of `x` and row `j` of `w`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn mat_mat_transposed(x: &[f32], m: usize, w: &[f32], out: *mut f32, out_stride: usize) {
        assert!(m > 0 && x.len().is_multiple_of(m), "mat_mat_transposed: x rows");
        let k = x.len() / m;
        assert!(k > 0 && w.len().is_multiple_of(k), "mat_mat_transposed: w rows");
        let n_w = w.len() / k;
        for i0 in (0..m).step_by(64) {
            let i_end = m.min(i0 + 64);
            for j in (0..n_w).step_by(TW) {
                let c = (n_w - j).min(TW);
                for i in (i0..i_end).step_by(TX) {
                    let r = (i_end - i).min(TX);
                    // Safety: rows i..i + r of x and j..j + c of w are in bounds (the steps
                    // above), and the caller vouches for out at those rows and columns.
                    unsafe {
                        let (xp, wp, op) =
                            (x.as_ptr().add(i * k), w.as_ptr().add(j * k), out.add(i * out_stride + j));
                        match (r, c) {
                            (TX, TW) => tile::<TX, TW>(xp, wp, k, op, out_stride),
                            (TX, _) => (0..c)
                                .for_each(|b| tile::<TX, 1>(xp, wp.add(b * k), k, op.add(b), out_stride)),
                            (_, TW) => (0..r).for_each(|a| {
                                tile::<1, TW>(xp.add(a * k), wp, k, op.add(a * out_stride), out_stride)
                            }),
                            _ => (0..r).for_each(|a| {
                                (0..c).for_each(|b| {
                                    tile::<1, 1>(
                                        xp.add(a * k),
                                        wp.add(b * k),
                                        k,
                                        op.add(a * out_stride + b),
                                        out_stride,
                                    )
                                })
                            }),
                        }
                    }
                }
            }
        }
    }

    /// One `X` by `R` tile: `out[a * out_stride + b] = dot(x[a], w[b])`, rows of `k` floats.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `x` must hold `X` rows of `k` floats and `w` `R` rows;
    /// `out` must be valid for writes at `a * out_stride + b` for `a < X`, `b < R`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const X: usize, const R: usize>(
        x: *const f32,
        w: *const f32,
        k: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        let full = k / 16 * 16;
        let mut acc = [[_mm512_setzero_ps(); R]; X];
        // The same steps as `dot`: full vectors, then one masked vector for the tail.
        let mut i = 0;
        while i < full {
            // Safety: i + 16 <= k, within each of the caller's rows.
            unsafe {
                let xv: [__m512; X] = std::array::from_fn(|a| _mm512_loadu_ps(x.add(a * k + i)));
                for b in 0..R {
                    let wv = _mm512_loadu_ps(w.add(b * k + i));
                    for a in 0..X {
                        acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
                    }
                }
            }
            i += 16;
        }
        if full < k {
            let mask = ((1u32 << (k - full)) - 1) as __mmask16;
            // Safety: only the k - full lanes within each row are loaded.
            unsafe {
                let xv: [__m512; X] =
                    std::array::from_fn(|a| _mm512_maskz_loadu_ps(mask, x.add(a * k + full)));
                for b in 0..R {
                    let wv = _mm512_maskz_loadu_ps(mask, w.add(b * k + full));
                    for a in 0..X {
                        acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
                    }
                }
            }
        }
        if X == 4 && R == 4 {
            // A full tile: its 16 sums reduced together (see `reduce_16`).
            let v: [__m512; 16] = std::array::from_fn(|i| acc[i % 4][i / 4]);
            // Safety: 4 rows of 4 outputs, as the caller vouched for.
            unsafe { reduce_16(&v, out, out_stride) };
            return;
        }
        for (a, row) in acc.iter().enumerate() {
            for (b, &v) in row.iter().enumerate() {
                // Safety: a < X and b < R, within what the caller vouched for.
                unsafe { *out.add(a * out_stride + b) = _mm512_reduce_add_ps(v) };
            }
        }
    }

    /// The 16 sums of a 4x4 tile's accumulators at once, `v[b * 4 + a]` the accumulator of
    /// row `a` and column `b`: `out[a * out_stride + b]` = the sum of its 16 lanes, paired as
    /// `_mm512_reduce_add_ps` pairs them (lane `i` with `i + 8`, then `i + 4`, `i + 2`, `i + 1`),
    /// so each sum is bit for bit the one `dot` gives.
    ///
    /// # Performance
    /// Four levels of two shuffles and an add over all 16 accumulators (15 adds, 30 shuffles)
    /// instead of 16 separate reductions of 4 adds and 4 shuffles or extracts each. A 64-token
    /// prefill took 87-88 ms against 90-91 on stories110m at one thread, 44-45 against 45-47 at
    /// two, and 6.7 against 7.35 ms on stories15m (whose k = 288 makes the reductions a larger
    /// share), on a 2-core Intel Xeon (lscpu family 6 model 207, AVX-512, 2 MiB L2; probe: a
    /// one-core triad of 15.3 GB/s, 248 GFLOP/s FMA) (`smallmind bench --model M
    /// --prompt-tokens 64 --max-new-tokens 1 --threads T --iterations 5`, medians, the two
    /// builds alternating, two or three rounds).
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `out` must be valid for writes at `a * out_stride + b` for
    /// `a, b < 4`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn reduce_16(v: &[__m512; 16], out: *mut f32, out_stride: usize) {
        // Each vector: lanes 0-7 the pairs (i, i + 8) of one accumulator, 8-15 of the next.
        let l1: [__m512; 8] = std::array::from_fn(|p| {
            let (a, b) = (v[2 * p], v[2 * p + 1]);
            _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b))
        });
        // Each 128-bit quarter t: the pairs (i, i + 4) of accumulator 4p + t.
        let l2: [__m512; 4] = std::array::from_fn(|p| {
            let (a, b) = (l1[2 * p], l1[2 * p + 1]);
            _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(a, b), _mm512_shuffle_f32x4::<0xDD>(a, b))
        });
        // Quarter t: (i, i + 2) of accumulators 8p + t (lanes 0, 1) and 8p + 4 + t (2, 3).
        let l3: [__m512; 2] = std::array::from_fn(|p| {
            let (a, b) = (l2[2 * p], l2[2 * p + 1]);
            _mm512_add_ps(_mm512_shuffle_ps::<0x44>(a, b), _mm512_shuffle_ps::<0xEE>(a, b))
        });
        // Lane 4t + u: the sum of accumulator 4u + t, that is row t, column u.
        let sums =
            _mm512_add_ps(_mm512_shuffle_ps::<0x88>(l3[0], l3[1]), _mm512_shuffle_ps::<0xDD>(l3[0], l3[1]));
        // Safety: rows 0..4 of 4 floats each, as the caller vouched for.
        unsafe {
            _mm_storeu_ps(out, _mm512_extractf32x4_ps::<0>(sums));
            _mm_storeu_ps(out.add(out_stride), _mm512_extractf32x4_ps::<1>(sums));
            _mm_storeu_ps(out.add(2 * out_stride), _mm512_extractf32x4_ps::<2>(sums));
            _mm_storeu_ps(out.add(3 * out_stride), _mm512_extractf32x4_ps::<3>(sums));
        }
    }

    /// `dot(x, row)`: 16-float steps into one accumulator, then one masked step for the tail,
    /// reduced once.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and `row.len()` must be `x.len()`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn dot(x: &[f32], row: &[f32]) -> f32 {
        let k = x.len();
        debug_assert_eq!(row.len(), k);
        let (xp, wp) = (x.as_ptr(), row.as_ptr());
        let full = k / 16 * 16;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // A hint, not an access: it may point past the weights (and then does nothing).
            _mm_prefetch::<_MM_HINT_T1>(wp.wrapping_add(i + PREFETCH_FLOATS) as *const i8);
            // Safety: i + 16 <= full <= k, so x[i..i + 16] and row[i..i + 16] are in bounds.
            unsafe { acc = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(i)), _mm512_loadu_ps(wp.add(i)), acc) };
            i += 16;
        }
        if full < k {
            let mask: __mmask16 = ((1u32 << (k - full)) - 1) as __mmask16;
            // Safety: masked loads touch only the k - full lanes enabled, all within bounds.
            unsafe {
                let xv = _mm512_maskz_loadu_ps(mask, xp.add(full));
                acc = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, wp.add(full)), acc);
            }
        }
        _mm512_reduce_add_ps(acc)
    }
}

simd_dispatch!(fn vec_mat_transposed_simd(x: &[f32], w: &[f32], out: &mut [f32]) => vec_mat_transposed_body);

const LANES: usize = 16;

#[inline(always)]
fn vec_mat_transposed_body(x: &[f32], w: &[f32], out: &mut [f32]) {
    let k = x.len();
    let (x_chunks, x_tail) = x.as_chunks::<LANES>();
    let dot_tail =
        |row: &[f32]| -> f32 { x_tail.iter().zip(&row[k - x_tail.len()..]).map(|(a, b)| a * b).sum() };
    let mut out4 = out.chunks_exact_mut(4);
    let mut rows4 = w.chunks_exact(4 * k);
    for (o, rows) in (&mut out4).zip(&mut rows4) {
        let (r0, rest) = rows.split_at(k);
        let (r1, rest) = rest.split_at(k);
        let (r2, r3) = rest.split_at(k);
        let (mut a0, mut a1, mut a2, mut a3) =
            ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        let chunks = x_chunks
            .iter()
            .zip(r0.as_chunks::<LANES>().0)
            .zip(r1.as_chunks::<LANES>().0)
            .zip(r2.as_chunks::<LANES>().0)
            .zip(r3.as_chunks::<LANES>().0);
        for ((((xc, w0), w1), w2), w3) in chunks {
            for l in 0..LANES {
                a0[l] += xc[l] * w0[l];
                a1[l] += xc[l] * w1[l];
                a2[l] += xc[l] * w2[l];
                a3[l] += xc[l] * w3[l];
            }
        }
        o[0] = lane_tree_sum(a0) + dot_tail(r0);
        o[1] = lane_tree_sum(a1) + dot_tail(r1);
        o[2] = lane_tree_sum(a2) + dot_tail(r2);
        o[3] = lane_tree_sum(a3) + dot_tail(r3);
    }
    for (o, row) in out4.into_remainder().iter_mut().zip(rows4.remainder().chunks_exact(k)) {
        let mut acc = [0.0f32; LANES];
        for (xc, wc) in x_chunks.iter().zip(row.as_chunks::<LANES>().0) {
            for l in 0..LANES {
                acc[l] += xc[l] * wc[l];
            }
        }
        *o = lane_tree_sum(acc) + dot_tail(row);
    }
}

/// The sum of 16 lanes by halving (8 + 4 + 2 + 1 vector adds, not 15 dependent scalar ones).
#[inline(always)]
fn lane_tree_sum(mut a: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            a[l] += a[l + width];
        }
        width /= 2;
    }
    a[0]
}

/// The naive twin of [`matmul`]: a triple loop in f64.
pub fn matmul_naive(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|kk| x[i * k + kk] as f64 * w[kk * n + j] as f64).sum();
            out[i * n + j] = (dot + bias.map_or(0.0, |b| b[j] as f64)) as f32;
        }
    }
}

/// The naive twin of [`matmul_transposed`]: a triple loop in f64.
pub fn matmul_transposed_naive(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, out: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|kk| x[i * k + kk] as f64 * w[j * k + kk] as f64).sum();
            out[i * n + j] = dot as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::parallel::WorkerPool;
    use crate::kernels::{ODD_PRODUCT_SHAPES as SHAPES, assert_close, test_data};

    /// Prefill's column blocks: a product split between threads agrees with one thread's, on a
    /// shape of stories110m's (its 64-token prompt through w1) and an odd one. Within rounding,
    /// not bit for bit: `gemm` may order a narrower block's sums differently (7x33x131 split in
    /// three differed by up to 5e-7 in a few columns of the last block).
    #[test]
    fn several_row_products_split_across_threads_agree() {
        let pools = [WorkerPool::new(2).unwrap(), WorkerPool::new(3).unwrap()];
        for (m, k, n) in [(64, 768, 2048), (7, 33, 131)] {
            let (x, w) = (test_data(m * k, 1), test_data(k * n, 2));
            let run = |threads, transposed: bool| {
                let mut out = vec![f32::NAN; m * n];
                if transposed {
                    matmul_transposed(&x, m, k, &w, n, &mut out, threads);
                } else {
                    matmul(&x, m, k, &w, n, None, &mut out, threads);
                }
                out
            };
            for transposed in [false, true] {
                let one = run(Threads::One, transposed);
                for pool in &pools {
                    let what = format!("{m}x{k}x{n} transposed={transposed} on {} threads", pool.threads());
                    assert_close(&run(Threads::Pool(pool), transposed), &one, 1e-5, &what);
                }
            }
        }
    }

    /// Several rows times a transposed matrix give, row by row, what the one-row kernel gives:
    /// bit for bit where both are ours (AVX-512), within rounding where `gemm` runs. Shapes
    /// with partial tiles of rows and columns, a k that is no multiple of 16, more than one
    /// 64-row block of x, and one thread or two.
    #[test]
    fn several_rows_transposed_equal_the_one_row_kernel_row_by_row() {
        let pool = WorkerPool::new(2).unwrap();
        #[cfg(target_arch = "x86_64")]
        let ours = crate::kernels::simd() == crate::kernels::SimdLevel::Avx512;
        #[cfg(not(target_arch = "x86_64"))]
        let ours = false;
        for (m, k, n) in [(2, 16, 4), (5, 33, 7), (67, 20, 130), (9, 768, 50)] {
            let (x, w) = (test_data(m * k, 1), test_data(k * n, 2));
            for threads in [Threads::One, Threads::Pool(&pool)] {
                let mut got = vec![f32::NAN; m * n];
                matmul_transposed(&x, m, k, &w, n, &mut got, threads);
                for i in 0..m {
                    let mut row = vec![f32::NAN; n];
                    vec_mat_transposed(&x[i * k..(i + 1) * k], &w, n, &mut row, Threads::One);
                    let what = format!("{m}x{k}x{n} row {i} on {} threads", threads.count());
                    if ours {
                        assert!(got[i * n..(i + 1) * n] == row[..], "{what}: not bit for bit");
                    } else {
                        assert_close(&got[i * n..(i + 1) * n], &row, 1e-5, &what);
                    }
                }
            }
        }
    }

    /// The `gemm` path of several rows times a transposed matrix, which AVX-512 CPUs never
    /// take through `matmul_transposed`: it still matches the naive twin, split or not.
    #[test]
    fn gemm_path_of_transposed_products_matches_naive_twin() {
        let pool = WorkerPool::new(2).unwrap();
        for threads in [Threads::One, Threads::Pool(&pool)] {
            for (m, k, n) in [(2, 3, 5), (7, 33, 131), (64, 64, 100)] {
                let (x, w) = (test_data(m * k, 1), test_data(k * n, 2));
                let (mut got, mut want) = (vec![f32::NAN; m * n], vec![0.0; m * n]);
                let p = Product { m, k, n, x: &x, w: &w, rhs_strides: (1, k), accumulate: false };
                gemm_split(p, &mut got, threads);
                matmul_transposed_naive(&x, m, k, &w, n, &mut want);
                assert_close(&got, &want, 1e-5, &format!("gemm_split transposed {m}x{k}x{n}"));
            }
        }
    }

    /// Empty shapes: no rows or columns leave `out` alone; an empty sum (k = 0) gives zeros, or
    /// the bias, on every CPU.
    #[test]
    fn empty_shapes_give_empty_sums() {
        let pool = WorkerPool::new(2).unwrap();
        for threads in [Threads::One, Threads::Pool(&pool)] {
            for m in [1, 3] {
                let mut out = vec![f32::NAN; m * 100];
                matmul_transposed(&[], m, 0, &[], 100, &mut out, threads);
                assert!(out.iter().all(|&v| v == 0.0), "transposed, k = 0, m = {m}");
                let bias = test_data(100, 3);
                matmul(&[], m, 0, &[], 100, Some(&bias), &mut out, threads);
                assert!(out.chunks(100).all(|row| row == bias), "bias, k = 0, m = {m}");
            }
            let mut out: Vec<f32> = Vec::new();
            matmul_transposed(&[], 0, 8, &[0.0; 8 * 100], 100, &mut out, threads);
            matmul(&[], 0, 8, &[0.0; 8 * 100], 100, None, &mut out, threads);
        }
    }

    #[test]
    fn matmul_matches_naive_twin_on_odd_shapes() {
        let pool = WorkerPool::new(2).unwrap();
        for threads in [Threads::One, Threads::Pool(&pool)] {
            for (m, k, n) in SHAPES {
                let x = test_data(m * k, 1);
                let w = test_data(k * n, 2);
                let b = test_data(n, 3);
                for bias in [None, Some(b.as_slice())] {
                    let (mut got, mut want) = (vec![f32::NAN; m * n], vec![0.0; m * n]);
                    matmul(&x, m, k, &w, n, bias, &mut got, threads);
                    matmul_naive(&x, m, k, &w, n, bias, &mut want);
                    assert_close(&got, &want, 1e-5, &format!("matmul {m}x{k}x{n} bias={}", bias.is_some()));
                }
                let (mut got, mut want) = (vec![f32::NAN; m * n], vec![0.0; m * n]);
                matmul_transposed(&x, m, k, &w, n, &mut got, threads);
                matmul_transposed_naive(&x, m, k, &w, n, &mut want);
                assert_close(&got, &want, 1e-5, &format!("matmul_transposed {m}x{k}x{n}"));
            }
        }
    }

    /// The one-row transposed product has two bodies (AVX-512 intrinsics where the CPU has
    /// them, portable elsewhere): both against the naive twin, whichever this CPU would pick.
    #[test]
    fn both_one_row_transposed_bodies_match_naive_twin() {
        for (_, k, n) in SHAPES.iter().copied().chain([(1, 288, 37), (1, 15, 9), (1, 1, 5)]) {
            let x = test_data(k, 7);
            let w = test_data(k * n, 8);
            let mut want = vec![0.0; n];
            matmul_transposed_naive(&x, 1, k, &w, n, &mut want);
            let mut portable = vec![f32::NAN; n];
            vec_mat_transposed_simd(&x, &w, &mut portable);
            assert_close(&portable, &want, 1e-5, &format!("portable {k}x{n}"));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut intrinsics = vec![f32::NAN; n];
                // Safety: the CPU has AVX-512F (checked above).
                unsafe { avx512::vec_mat_transposed(&x, &w, &mut intrinsics) };
                assert_close(&intrinsics, &want, 1e-5, &format!("avx512 {k}x{n}"));
            }
        }
    }

    /// Bit-identical at every thread count, the oversubscribed 3 included, and on shapes whose
    /// last chunk is short.
    #[test]
    fn one_row_kernels_split_across_threads_agree() {
        let pools: Vec<_> = [2, 3, 4].map(|t| WorkerPool::new(t).unwrap()).into();
        // Large enough to take the multi-threaded path.
        for (k, n) in [(512, 1029), (288, 32000 / 8), (PARALLEL_MIN_WEIGHTS / 97 + 1, 97)] {
            let x = test_data(k, 4);
            let w = test_data(k * n, 5);
            let b = test_data(n, 6);
            let (mut one, mut one_t) = (vec![0.0; n], vec![0.0; n]);
            vec_mat(&x, &w, n, Some(&b), &mut one, Threads::One);
            vec_mat_transposed(&x, &w, n, &mut one_t, Threads::One);
            for pool in &pools {
                let (mut many, mut many_t) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                vec_mat(&x, &w, n, Some(&b), &mut many, Threads::Pool(pool));
                assert_eq!(one, many, "vec_mat {k}x{n} on {} threads", pool.threads());
                vec_mat_transposed(&x, &w, n, &mut many_t, Threads::Pool(pool));
                assert_eq!(one_t, many_t, "vec_mat_transposed {k}x{n} on {} threads", pool.threads());
            }
        }
    }
}
