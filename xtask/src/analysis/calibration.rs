//! `cargo xtask calibrate NAME`: the experiment's reference variant against itself (A/A) on this
//! machine. Whatever difference it shows is noise: its 95% interval is the noise floor, and the
//! spread of the per-round ratios says how small an effect the configured rounds can detect and
//! how many rounds a given effect needs. Written to `reports/NAME/calibration.md`.

use crate::metrics::Metric;
use crate::results::ExperimentResults;
use crate::stats::{Speedup, Verdict, paired_speedup};

/// z for a two-sided 5% test plus z for 80% power: the usual sample-size constant.
const Z: f64 = 1.96 + 0.84;

/// What the A/A run says about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub metric: Metric,
    pub speedup: Speedup,
    pub verdict: Verdict,
    /// How far the A/A interval strays from 1: the smallest noise floor this machine supports.
    pub noise_floor: f64,
    /// Standard deviation of the per-round log ratios.
    pub sigma: f64,
    pub rounds: usize,
    /// The smallest effect (fraction) the rounds detect 80% of the time at 5% significance.
    pub detectable: f64,
    /// Rounds needed to detect `effect`.
    pub rounds_for_effect: usize,
    pub effect: f64,
}

/// The A/A figures for `metric`, from results whose first variant is A and second A again.
pub fn calibrate(results: &ExperimentResults, metric: Metric, effect: f64) -> Option<Calibration> {
    let point = results.points.first()?;
    let again = point.variants.get(1)?;
    let pairs = point.pairs(again, metric);
    let speedup = paired_speedup(&pairs, metric.higher_is_better())?;
    let logs: Vec<f64> = pairs.iter().map(|(a, b)| (b / a).ln()).filter(|x| x.is_finite()).collect();
    let n = logs.len();
    if n < 2 {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let sigma = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    Some(Calibration {
        metric,
        speedup,
        verdict: speedup.verdict(results.spec.thresholds.noise_floor),
        noise_floor: (speedup.high - 1.0).max(1.0 - speedup.low),
        sigma,
        rounds: n,
        detectable: (Z * sigma / (n as f64).sqrt()).exp() - 1.0,
        rounds_for_effect: ((Z * sigma / (1.0 + effect).ln()).powi(2)).ceil().max(2.0) as usize,
        effect,
    })
}
