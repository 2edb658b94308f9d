//! Kernels: pure functions on `f32` slices with explicit dimensions.
//!
//! Kernels know nothing about models, layers or optimizations: a toggle never reaches this
//! module, it only chooses which kernel a layer calls. Every fast kernel has a naive twin
//! (`*_naive` or the "off" path of a toggle) and a unit test against it at the bottom of its file;
//! `panel`'s tests compare with the exact sum (in f64) within its rounding-error bound.
//!
//! Hot kernels are written as plain element-wise Rust that LLVM vectorises; [`simd_dispatch!`]
//! compiles each one a second time with AVX-512 (and a third with AVX2 + FMA) enabled and picks
//! the best at run time, so the default build runs everywhere and still uses the wide units here.

pub mod activation;
pub mod attention;
pub mod matmul;
pub mod norm;
pub mod panel;
pub mod parallel;
pub mod rope;
pub mod softmax;

/// Defines `$name` as a run-time dispatch over copies of the `#[inline(always)]` body `$body`
/// compiled for AVX-512, for AVX2 + FMA, and for the baseline target.
macro_rules! simd_dispatch {
    // `=> body with fma`: `body::<true>` where FMA is enabled (AVX-512 and AVX2), for bodies that
    // fuse their multiply-adds (`f32::mul_add`, one instruction there), `body::<false>` on the
    // baseline, where `mul_add` would be a library call (x86-64; other targets always take
    // `body::<false>`).
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident with fma) => {
        $crate::kernels::simd_dispatch!(@copies $(#[$meta])* $vis fn $name($($arg: $ty),*)
            fast: $body::<true>, baseline: $body::<false>);
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $crate::kernels::simd_dispatch!(@copies $(#[$meta])* $vis fn $name($($arg: $ty),*)
            fast: $body, baseline: $body);
    };
    (@copies $(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*)
        fast: $fast:path, baseline: $baseline:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $fast($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $fast($($arg),*)
                }
                let level = $crate::kernels::simd();
                if level == $crate::kernels::SimdLevel::Avx512 {
                    // Safety: the CPU has every feature `avx512` was compiled for (`simd` is
                    // never above `SimdLevel::detected`).
                    return unsafe { avx512($($arg),*) };
                }
                if level == $crate::kernels::SimdLevel::Avx2 {
                    // Safety: the CPU has every feature `avx2` was compiled for (as above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $baseline($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// The instruction sets the kernels use, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// The build's target (SSE2 on x86-64).
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 F, VL and DQ (and AVX2 and FMA).
    Avx512,
}

impl SimdLevel {
    /// Every level, best first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Baseline];

    /// The value of [`SIMD_ENV`] that asks for this level: `"avx512"`, `"avx2"` or `"baseline"`.
    pub fn env_value(self) -> &'static str {
        match self {
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Baseline => "baseline",
        }
    }

    /// `"avx512"`, `"avx2+fma"` or `"baseline"`.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Avx2 => "avx2+fma",
            SimdLevel::Baseline => "baseline",
        }
    }

    /// The best level this CPU has.
    pub fn detected() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512dq") {
                return SimdLevel::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Baseline
    }
}

/// `avx2` or `baseline` (or `avx512`) runs every kernel at that level at most, so that a
/// machine with AVX-512 can measure and test what an AVX2 machine runs. Read once per process;
/// the command line refuses a value it does not know, or one above the CPU
/// ([`requested_simd_level`]).
pub const SIMD_ENV: &str = "SMALLMIND_SIMD";

/// What `SMALLMIND_SIMD` asks for: `None` when unset.
///
/// # Errors
/// [`Error::Input`](crate::Error::Input) for a value other than `avx512`, `avx2` and
/// `baseline`, or a level this CPU does not have.
pub fn requested_simd_level() -> crate::error::Result<Option<SimdLevel>> {
    let Some(value) = std::env::var_os(SIMD_ENV).filter(|v| !v.is_empty()) else { return Ok(None) };
    let Some(level) = SimdLevel::ALL.into_iter().find(|l| value.to_str() == Some(l.env_value())) else {
        return Err(crate::Error::Input(format!(
            "{SIMD_ENV}={value:?}: expected avx512, avx2 or baseline (or unset it for the CPU's best)"
        )));
    };
    let detected = SimdLevel::detected();
    if level > detected {
        return Err(crate::Error::Input(format!(
            "{SIMD_ENV}={}: this CPU runs {} at most; ask for that or lower, or unset it",
            level.env_value(),
            detected.env_value()
        )));
    }
    Ok(Some(level))
}

/// The level every kernel runs at: the CPU's best, or what `SMALLMIND_SIMD` asks for when it
/// is lower (a value [`requested_simd_level`] refuses is ignored here: the command line has
/// already refused it).
pub fn simd() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = SimdLevel::detected();
        requested_simd_level().ok().flatten().map_or(detected, |asked| asked.min(detected))
    })
}

/// Which copy [`simd_dispatch!`] picks: `"avx512"`, `"avx2+fma"` or `"baseline"`, followed by
/// ` (SMALLMIND_SIMD)` when that variable lowered it.
pub fn simd_level() -> String {
    let level = simd();
    match level < SimdLevel::detected() {
        true => format!("{} ({SIMD_ENV})", level.name()),
        false => level.name().to_string(),
    }
}

/// `dst[i] += src[i]`: the residual connection.
pub fn add_inplace(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add_inplace: length mismatch");
    add_inplace_simd(dst, src);
}

simd_dispatch!(fn add_inplace_simd(dst: &mut [f32], src: &[f32]) => add_inplace_body);

#[inline(always)]
fn add_inplace_body(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `out[pos_idx] = wte[tokens[pos_idx]] + wpe[start_pos + pos_idx]`, rows of `n_embd`.
///
/// Token ids must be below `wte.len() / n_embd` and positions below `wpe.len() / n_embd`;
/// callers validate user input before it gets here.
pub fn embed(wte: &[f32], wpe: &[f32], n_embd: usize, tokens: &[u32], start_pos: usize, out: &mut [f32]) {
    assert_eq!(out.len(), tokens.len() * n_embd, "embed: output length");
    assert!((start_pos + tokens.len()) * n_embd <= wpe.len(), "embed: positions beyond the context");
    for (pos_idx, (&token, row)) in tokens.iter().zip(out.chunks_exact_mut(n_embd)).enumerate() {
        let t = token as usize * n_embd;
        let p = (start_pos + pos_idx) * n_embd;
        for ((o, a), b) in row.iter_mut().zip(&wte[t..t + n_embd]).zip(&wpe[p..p + n_embd]) {
            *o = a + b;
        }
    }
}

/// `out[pos_idx] = embedding[tokens[pos_idx]]`, rows of `dim`: Llama's embedding (its positions
/// enter through RoPE instead). Token ids must be below `embedding.len() / dim`.
pub fn embed_tokens(embedding: &[f32], dim: usize, tokens: &[u32], out: &mut [f32]) {
    assert_eq!(out.len(), tokens.len() * dim, "embed_tokens: output length");
    for (&token, row) in tokens.iter().zip(out.chunks_exact_mut(dim)) {
        let t = token as usize * dim;
        row.copy_from_slice(&embedding[t..t + dim]);
    }
}

/// `(m, k, n)` product shapes the matrix kernels' unit tests share: one row and several, sizes
/// that are and are not multiples of the vector widths and tiles, and 1 everywhere.
#[cfg(test)]
pub(crate) const ODD_PRODUCT_SHAPES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (1, 3, 5),
    (1, 64, 192),
    (1, 77, 131),
    (2, 16, 16),
    (5, 33, 17),
    (17, 64, 256),
    (32, 130, 50),
];

/// Deterministic pseudo-random test data, shared by the kernels' unit tests.
#[cfg(test)]
pub(crate) fn test_data(len: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Asserts `|a - b| <= tol * max(1, |b|)` element-wise, naming the first index that fails.
#[cfg(test)]
pub(crate) fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let ok = (x - y).abs() <= tol * y.abs().max(1.0) || (x == y);
        assert!(ok, "{what}: index {i}: {x} vs {y} (tolerance {tol})");
    }
}
