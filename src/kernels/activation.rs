//! Element-wise maths: a vectorisable `exp`, the tanh-approximated GELU (GPT-2) and SwiGLU's
//! `silu(gate) * up` (Llama).
//!
//! `f32::exp` is a libm call LLVM cannot vectorise; [`exp_approx`] is a Cephes-style polynomial
//! (range reduction by ln 2, degree-6 polynomial, exponent built from bits) whose relative error
//! stays below ~2e-7 on the range used here, and which returns exactly 0 below -87 (so masked
//! scores of -inf become exact zeros). Both softmax variants use it, so they agree bit for bit
//! on the values they both compute.

use super::simd_dispatch;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that `n * LN2_HI` is exact for |n| < 2^9.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, exp underflows to (near) subnormal values: return 0.
const EXP_MIN_INPUT: f32 = -87.0;
const EXP_MAX_INPUT: f32 = 88.37;
/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// 2^23 + 127: see `exp_approx`.
const EXPONENT_MAGIC: f32 = 8_388_735.0;

/// `e^x` to ~2e-7 relative error; exactly 0 for `x < -87` (including `-inf`).
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    let xc = x.clamp(EXP_MIN_INPUT, EXP_MAX_INPUT);
    let n = (xc * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from bits without a float-to-int conversion (which would not vectorise): the low
    // mantissa bits of 2^23 + (n + 127) are the integer n + 127; shift them into the exponent.
    let scale = f32::from_bits((n + EXPONENT_MAGIC).to_bits() << 23);
    if x < EXP_MIN_INPUT { 0.0 } else { y * scale }
}

/// GELU with GPT-2's tanh approximation ("gelu_new"), in place.
pub fn gelu_tanh_inplace(x: &mut [f32]) {
    gelu_simd(x);
}

simd_dispatch!(fn gelu_simd(x: &mut [f32]) => gelu_body);

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for v in x.iter_mut() {
        let u = SQRT_2_OVER_PI * (*v + 0.044_715 * *v * *v * *v);
        // tanh(u) = 1 - 2 / (e^(2u) + 1), exact at both tails with exp_approx's clamping.
        let tanh = 1.0 - 2.0 / (exp_approx(2.0 * u) + 1.0);
        *v = 0.5 * *v * (1.0 + tanh);
    }
}

/// The naive twin of [`gelu_tanh_inplace`], with libm's `tanh`.
pub fn gelu_tanh_naive(x: &mut [f32]) {
    for v in x.iter_mut() {
        let u = (2.0f32 / std::f32::consts::PI).sqrt() * (*v + 0.044_715 * v.powi(3));
        *v = 0.5 * *v * (1.0 + u.tanh());
    }
}

/// SwiGLU's gating, in place: `gate[i] = silu(gate[i]) * up[i]`, with `silu(x) = x / (1 + e^-x)`.
pub fn swiglu_inplace(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "swiglu: length mismatch");
    swiglu_simd(gate, up);
}

simd_dispatch!(fn swiglu_simd(gate: &mut [f32], up: &[f32]) => swiglu_body);

#[inline(always)]
fn swiglu_body(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp_approx(-*g)) * u;
    }
}

/// The naive twin of [`swiglu_inplace`], with libm's `exp`.
pub fn swiglu_naive(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{assert_close, test_data};

    #[test]
    fn exp_matches_libm() {
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let (got, want) = (exp_approx(x), x.exp());
            assert!(((got - want) / want).abs() < 5e-7, "exp({x}): {got} vs {want}");
        }
        assert_eq!(exp_approx(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_approx(-100.0), 0.0);
        assert_eq!(exp_approx(0.0), 1.0);
    }

    #[test]
    fn swiglu_matches_naive_twin() {
        for len in [1, 7, 16, 33, 1000] {
            let mut gate: Vec<f32> = test_data(len, len as u64).iter().map(|v| v * 12.0).collect();
            let up = test_data(len, 9);
            let mut want = gate.clone();
            swiglu_inplace(&mut gate, &up);
            swiglu_naive(&mut want, &up);
            assert_close(&gate, &want, 1e-6, "swiglu");
        }
        // silu saturates to x for large x and to 0 for very negative x.
        let mut tails = vec![-200.0, 0.0, 200.0];
        swiglu_inplace(&mut tails, &[1.0, 1.0, 1.0]);
        assert_close(&tails, &[0.0, 0.0, 200.0], 1e-30, "swiglu tails");
    }

    #[test]
    fn gelu_matches_naive_twin() {
        for len in [1, 7, 16, 33, 1000] {
            let mut x: Vec<f32> = test_data(len, len as u64).iter().map(|v| v * 12.0).collect();
            let mut want = x.clone();
            gelu_tanh_inplace(&mut x);
            gelu_tanh_naive(&mut want);
            for (g, w) in x.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
        let mut tails = vec![-1e4, -30.0, 0.0, 30.0, 1e4];
        gelu_tanh_inplace(&mut tails);
        assert_close(&tails, &[0.0, 0.0, 0.0, 30.0, 1e4], 0.0, "gelu tails");
    }
}
