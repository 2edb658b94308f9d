//! Comparisons between variants and against a baseline: speedups with bootstrap 95% intervals,
//! and verdicts that must clear the noise floor. Pure arithmetic on samples; no I/O.
//!
//! A **speedup** says how many times better the candidate is, whatever the metric's direction:
//! `candidate / reference` for throughputs, `reference / candidate` for times and allocations.
//! The interval comes from resampling the paired rounds (a round ran every variant once, back
//! to back) with replacement 2,000 times, and taking the 2.5th and 97.5th percentiles of the
//! ratio of medians; the generator is seeded, so a report is reproducible from its results file.

use rand::Rng;
use rand::SeedableRng;
use smallmind::bench::stats::quantile_sorted;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2000;

/// A speedup with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speedup {
    pub point: f64,
    pub low: f64,
    pub high: f64,
}

/// What a speedup means, given the noise floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    NoChange,
    /// Exact metrics (allocations): different values, compared without intervals.
    Same,
}

impl Speedup {
    /// Better or worse only when the whole interval lies beyond `1 ± noise_floor`.
    pub fn verdict(&self, noise_floor: f64) -> Verdict {
        if self.low > 1.0 + noise_floor {
            Verdict::Better
        } else if self.high < 1.0 - noise_floor {
            Verdict::Worse
        } else {
            Verdict::NoChange
        }
    }
}

/// The smallest relative change these paired rounds detect at 80% power with a two-sided 5%
/// test: `(z_0.975 + z_0.80) × s / sqrt(n)`, where `s` is the spread of `ln(candidate_i /
/// reference_i)`: from six rounds on, estimated robustly as 1.4826 × its median absolute
/// deviation (one slow round should not inflate it, as the medians the speedups are taken from
/// ignore it too); below six, where a median deviation is one lucky difference, the sample
/// standard deviation. A fraction (0.03: ±3%); `None` with fewer than two pairs or a value that
/// is not positive.
pub fn detectable_change(pairs: &[(f64, f64)]) -> Option<f64> {
    const Z: f64 = 1.959_964 + 0.841_621;
    if pairs.len() < 2 || pairs.iter().any(|&(r, c)| !(r > 0.0 && c > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = pairs.iter().map(|&(r, c)| (c / r).ln()).collect();
    let n = logs.len() as f64;
    let spread = if logs.len() >= 6 {
        let center = median(&logs);
        let deviations: Vec<f64> = logs.iter().map(|x| (x - center).abs()).collect();
        1.4826 * median(&deviations)
    } else {
        let mean = logs.iter().sum::<f64>() / n;
        (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    Some((Z * spread / n.sqrt()).exp() - 1.0)
}

/// The median of `samples` (which must not be empty).
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, 0.5)
}

/// How many times better `candidate` is than `reference`, from paired samples (`pairs[i]` =
/// (reference, candidate) of round i). `None` when there are no pairs or a median is zero.
pub fn paired_speedup(pairs: &[(f64, f64)], higher_is_better: bool) -> Option<Speedup> {
    if pairs.is_empty() {
        return None;
    }
    let ratio = |refs: &[f64], cands: &[f64]| {
        let (r, c) = (median(refs), median(cands));
        let x = if higher_is_better { c / r } else { r / c };
        x.is_finite().then_some(x)
    };
    let (refs, cands): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let point = ratio(&refs, &cands)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let (mut r, mut c) = (vec![0.0; pairs.len()], vec![0.0; pairs.len()]);
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        for i in 0..pairs.len() {
            let pick = rng.random_range(0..pairs.len());
            (r[i], c[i]) = pairs[pick];
        }
        if let Some(x) = ratio(&r, &c) {
            ratios.push(x);
        }
    }
    ratios.sort_by(f64::total_cmp);
    Some(Speedup { point, low: quantile_sorted(&ratios, 0.025), high: quantile_sorted(&ratios, 0.975) })
}

/// Like [`paired_speedup`] for two independent sets of samples (a run against its baseline,
/// measured in different sessions): each side is resampled on its own.
pub fn unpaired_speedup(before: &[f64], after: &[f64], higher_is_better: bool) -> Option<Speedup> {
    if before.is_empty() || after.is_empty() {
        return None;
    }
    let ratio = |b: f64, a: f64| {
        let x = if higher_is_better { a / b } else { b / a };
        x.is_finite().then_some(x)
    };
    let point = ratio(median(before), median(after))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xba5e);
    let resample = |rng: &mut rand_chacha::ChaCha8Rng, xs: &[f64]| {
        median(&(0..xs.len()).map(|_| xs[rng.random_range(0..xs.len())]).collect::<Vec<_>>())
    };
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            let b = resample(&mut rng, before);
            let a = resample(&mut rng, after);
            ratio(b, a)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    Some(Speedup { point, low: quantile_sorted(&ratios, 0.025), high: quantile_sorted(&ratios, 0.975) })
}

/// The median of `samples` with its bootstrap 95% interval (seeded, as above): `(median, low,
/// high)`; `None` for no samples.
pub fn median_interval(samples: &[f64]) -> Option<(f64, f64, f64)> {
    if samples.is_empty() {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x3ed1a);
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            median(
                &(0..samples.len()).map(|_| samples[rng.random_range(0..samples.len())]).collect::<Vec<_>>(),
            )
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Some((median(samples), quantile_sorted(&medians, 0.025), quantile_sorted(&medians, 0.975)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detectable_change_shrinks_with_rounds_and_noise() {
        // Ratios of 1.02, 0.98, ...: logs of ±0.02; at n = 4 the sample sd, 0.0231:
        // 2.8 * 0.0231 / 2 = 3.3%.
        let pairs = [(100.0, 102.0), (100.0, 98.0), (100.0, 102.0), (100.0, 98.0)];
        let d = detectable_change(&pairs).unwrap();
        assert!((d - 0.0329).abs() < 0.001, "{d}");
        // One wild round in sixteen barely moves it (a standard deviation would triple it).
        let mut wild: Vec<(f64, f64)> = pairs.iter().cycle().take(16).copied().collect();
        let calm = detectable_change(&wild).unwrap();
        wild[5] = (100.0, 300.0);
        assert!(detectable_change(&wild).unwrap() < 1.2 * calm, "{calm}");
        let sixteen: Vec<(f64, f64)> = pairs.iter().cycle().take(16).copied().collect();
        // At 16 rounds, the robust spread 1.4826 * 0.02: 2.8 * 0.0297 / 4 = 2.1%.
        assert!((detectable_change(&sixteen).unwrap() - 0.021).abs() < 0.001, "four times the rounds");
        assert_eq!(detectable_change(&[(1.0, 1.0)]), None);
        assert_eq!(detectable_change(&[(1.0, 0.0), (1.0, 1.0)]), None);
    }

    /// Deterministic noise of about ±1%.
    fn noisy(base: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| base * (1.0 + rng.random_range(-0.01..0.01))).collect()
    }

    #[test]
    fn identical_samples_are_no_change() {
        let pairs: Vec<(f64, f64)> = noisy(100.0, 10, 1).into_iter().map(|x| (x, x)).collect();
        let s = paired_speedup(&pairs, true).unwrap();
        assert_eq!((s.point, s.low, s.high), (1.0, 1.0, 1.0));
        assert_eq!(s.verdict(0.02), Verdict::NoChange);
    }

    #[test]
    fn a_twenty_percent_shift_is_detected_in_both_directions() {
        let refs = noisy(100.0, 10, 2);
        let faster: Vec<(f64, f64)> = refs.iter().zip(noisy(120.0, 10, 3)).map(|(&r, c)| (r, c)).collect();
        let s = paired_speedup(&faster, true).unwrap();
        assert!((s.point - 1.2).abs() < 0.02 && s.low > 1.15 && s.high < 1.25, "{s:?}");
        assert_eq!(s.verdict(0.02), Verdict::Better);
        // The same numbers as times (lower is better) are 1.2x worse.
        let s = paired_speedup(&faster, false).unwrap();
        assert!((1.0 / s.point - 1.2).abs() < 0.02, "{s:?}");
        assert_eq!(s.verdict(0.02), Verdict::Worse);
    }

    #[test]
    fn noise_within_the_floor_is_no_change() {
        let pairs: Vec<(f64, f64)> = noisy(100.0, 8, 4).into_iter().zip(noisy(100.5, 8, 5)).collect();
        assert_eq!(paired_speedup(&pairs, true).unwrap().verdict(0.02), Verdict::NoChange);
    }

    #[test]
    fn unpaired_intervals_cover_the_true_ratio() {
        let s = unpaired_speedup(&noisy(50.0, 12, 6), &noisy(40.0, 12, 7), true).unwrap();
        assert!(s.low < 0.8 && 0.8 < s.high && s.high < 0.85, "{s:?}");
        assert_eq!(s.verdict(0.05), Verdict::Worse);
        assert_eq!(unpaired_speedup(&[], &[1.0], true), None);
    }
}
