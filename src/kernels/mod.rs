//! Kernels: pure functions on `f32` slices with explicit dimensions.
//!
//! Kernels know nothing about models, layers or optimizations: a toggle never reaches this
//! module, it only chooses which kernel a layer calls. Every fast kernel has a naive twin
//! (`*_naive` or the "off" path of a toggle) and a unit test against it at the bottom of its file.
//!
//! Hot kernels are written as plain element-wise Rust that LLVM vectorises; [`simd_dispatch!`]
//! compiles each one a second time with AVX-512 (and a third with AVX2 + FMA) enabled and picks
//! the best at run time, so the default build runs everywhere and still uses the wide units here.

pub mod activation;
pub mod attention;
pub mod matmul;
pub mod norm;
pub mod parallel;
pub mod rope;
pub mod softmax;

/// Defines `$name` as a run-time dispatch over copies of the `#[inline(always)]` body `$body`
/// compiled for AVX-512, for AVX2 + FMA, and for the baseline target.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // Safety: the CPU has every feature `avx512` was compiled for (checked above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // Safety: the CPU has every feature `avx2` was compiled for (checked above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// Which copy [`simd_dispatch!`] picks on this CPU: `"avx512"`, `"avx2+fma"` or `"baseline"`.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512vl") && has!("avx512dq") {
            return "avx512";
        }
        if has!("avx2") && has!("fma") {
            return "avx2+fma";
        }
    }
    "baseline"
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
