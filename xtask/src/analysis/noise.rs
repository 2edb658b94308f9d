//! Noise floors per figure, measured between sessions: `cargo xtask calibrate NAME --sessions K`
//! runs the experiment K times as `check` does (quick rounds, each session its own set of
//! processes) and, for every figure `check` compares with the baseline, estimates the spread of
//! its log value from session to session. Stored beside the baseline
//! (`baselines/NAME.noise.json`), they set how far a figure must fall before `check` calls it a
//! regression.
//!
//! The rule for a figure with spread σ (sd of ln value between sessions) and the experiment's
//! tolerance τ (`thresholds.regression`): a session against the baseline differs by a log change
//! of sd √2·σ when nothing changed, so the cut is `c = max(ln(1/(1-τ))/2, z·√2·σ)`: halfway to
//! the tolerance when the noise allows (a slowdown of τ is then caught as often as an unchanged
//! engine is spared), and never closer to zero than the noise's quantile z. A check judges every
//! calibrated figure at once, so z shares a 5% false-alarm rate among them (Bonferroni: 1.645
//! for one figure, 2.94 for thirty).
//!
//! σ from five sessions is itself uncertain (its 95% range is 0.35-1.67 times the true spread),
//! and sessions an hour apart vary more than sessions in a row: measured on one 2-core AMD EPYC
//! Zen 4 (family 25 model 17), thirty
//! unchanged checks spread 1.2-6.8 times (median 1.8) as much as the five calibrating sessions
//! said. So the σ a cut uses is never below the root mean square of the σs of its kind (same
//! metric, speedup or absolute) in the experiment ([`NoiseFloors::sigma`]): a figure that
//! happened to look quiet in five sessions borrows its siblings' spread. A cut alone still
//! judges a point estimate; `check` also asks that the figure's own interval lies wholly on the
//! slow side of no change, and that a regression is seen in each of two runs
//! (`tasks::check`). The rates a check reaches are measured, not promised
//! (`docs/baselines.md#a-gate-that-does-not-cry-wolf`).

use super::machine::Machine;
use crate::metrics::Metric;
use crate::results::ExperimentResults;
use crate::stats::median;
use serde::{Deserialize, Serialize};

/// The version of the noise file's layout.
pub const NOISE_SCHEMA_VERSION: u32 = 1;

/// The fewest sessions whose spread is worth storing: with fewer, σ is too uncertain for a cut
/// at the 95th percentile (at five, the t distribution's 95th percentile is 2.13, not 1.645).
pub const MIN_SESSIONS: usize = 5;

/// A check's false-alarm rate the cuts aim at, over all of its calibrated figures together.
pub const CHECK_FALSE_ALARM: f64 = 0.05;

/// The noise floors of an experiment on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseFloors {
    pub schema_version: u32,
    pub experiment: String,
    /// The commit and date of the calibration.
    pub commit: String,
    pub finished: String,
    /// The machine the sessions ran on: floors apply only to checks on the same one.
    pub machine: Machine,
    pub sessions: usize,
    /// Rounds per session (a check's quick rounds).
    pub rounds_per_session: usize,
    /// What the sessions ran ([`plan_key`]): floors apply only to runs of the same plan.
    /// (Absent in files written before it was recorded: then it cannot be checked, and that is
    /// said.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    pub figures: Vec<NoiseFigure>,
}

/// What a run ran, as one line: every variant's point, name, role, workload and toggles, and the
/// ops per process. Two runs with the same key measured the same thing; rounds may differ.
pub fn plan_key(r: &ExperimentResults) -> String {
    let m = &r.spec.measurement;
    let mut key = format!("warmup={} ops_per_run={}", m.warmup, m.ops_per_run);
    for v in r.measured() {
        let workload = serde_json::to_string(&v.workload).unwrap_or_default();
        key.push_str(&format!(
            "; {}|{}|{}|{}|{}",
            v.point, v.variant, v.reference, workload, v.optimizations
        ));
    }
    key
}

/// The between-session spread of one figure `check` compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseFigure {
    pub point: String,
    /// A variant (absolute figure) or `candidate vs reference` (a speedup), as in the baseline
    /// check.
    pub subject: String,
    pub metric: Metric,
    pub is_speedup: bool,
    /// Standard deviation of the figure's natural log across sessions.
    pub sigma: f64,
}

/// The figures `check` compares with a baseline in `r`, with their values: per point, each
/// candidate's speedups over the reference (decode, TTFT) and every variant's absolute timings.
pub fn figures_of(r: &ExperimentResults) -> Vec<(String, String, Metric, bool, f64)> {
    let timed = [Metric::DecodeTokS, Metric::TtftMs];
    let mut out = Vec::new();
    for p in &r.points {
        let label = &p.point.label;
        let reference = p.reference();
        for v in &p.variants {
            if !v.reference {
                for metric in timed {
                    let speedup =
                        crate::stats::paired_speedup(&p.pairs(v, metric), metric.higher_is_better());
                    if let Some(s) = speedup {
                        out.push((
                            label.clone(),
                            format!("{} vs {}", v.name, reference.name),
                            metric,
                            true,
                            s.point,
                        ));
                    }
                }
            }
            for metric in timed {
                let values = v.values(metric);
                if !values.is_empty() {
                    out.push((label.clone(), v.name.clone(), metric, false, median(&values)));
                }
            }
        }
    }
    out
}

impl NoiseFloors {
    /// What is wrong with a file's figures, if anything: too few sessions, a spread that is not
    /// a finite number at least 0.
    pub fn validate(&self) -> Result<(), String> {
        if self.sessions < MIN_SESSIONS {
            return Err(format!("{} sessions; noise floors need at least {MIN_SESSIONS}", self.sessions));
        }
        if self.rounds_per_session == 0 {
            return Err("0 rounds per session".into());
        }
        match self.figures.iter().find(|f| !(f.sigma.is_finite() && f.sigma >= 0.0)) {
            Some(f) => Err(format!("`{}` {}: σ {} is not a spread", f.subject, f.metric.name(), f.sigma)),
            None => Ok(()),
        }
    }

    /// Why these floors do not apply to `now`, if they do not: another experiment, fewer rounds
    /// than the sessions had (cuts would be too tight), another plan, or another machine.
    pub fn misfit(&self, now: &ExperimentResults) -> Option<String> {
        if self.experiment != now.experiment {
            return Some(format!("they were calibrated for experiment `{}`", self.experiment));
        }
        if now.rounds < self.rounds_per_session {
            return Some(format!(
                "this run has {} rounds, fewer than the {} of each calibrated session",
                now.rounds, self.rounds_per_session
            ));
        }
        if self.plan.as_ref().is_some_and(|p| *p != plan_key(now)) {
            return Some(
                "they were measured on another plan (workload, variants, toggles or ops per process changed); \
                 re-run the calibration"
                    .into(),
            );
        }
        let same = super::machine::compare_machines(&Machine::of(now), &self.machine);
        (!same.comparable)
            .then(|| format!("they were measured on another machine ({})", same.reasons.join("; ")))
    }

    /// The floors from `sessions` of one experiment (at least two).
    pub fn from_sessions(sessions: &[ExperimentResults]) -> Option<NoiseFloors> {
        let first = sessions.first()?;
        if sessions.len() < 2 {
            return None;
        }
        let per_session: Vec<_> = sessions.iter().map(figures_of).collect();
        let figures = per_session[0]
            .iter()
            .filter_map(|(point, subject, metric, is_speedup, _)| {
                let logs: Vec<f64> = per_session
                    .iter()
                    .filter_map(|fs| {
                        fs.iter()
                            .find(|f| {
                                &f.0 == point && &f.1 == subject && f.2 == *metric && f.3 == *is_speedup
                            })
                            .map(|f| f.4.ln())
                    })
                    .filter(|x| x.is_finite())
                    .collect();
                (logs.len() == sessions.len()).then(|| NoiseFigure {
                    point: point.clone(),
                    subject: subject.clone(),
                    metric: *metric,
                    is_speedup: *is_speedup,
                    sigma: sample_sd(&logs),
                })
            })
            .collect();
        Some(NoiseFloors {
            schema_version: NOISE_SCHEMA_VERSION,
            experiment: first.experiment.clone(),
            commit: first.environment.git_commit.clone(),
            finished: sessions.last()?.finished.clone(),
            machine: Machine::of(first),
            sessions: sessions.len(),
            rounds_per_session: first.rounds,
            plan: Some(plan_key(first)),
            figures,
        })
    }

    /// The one-sided normal quantile each figure's cut uses: [`CHECK_FALSE_ALARM`] shared among
    /// the calibrated figures (Bonferroni), so that a check judging all of them is flagged, when
    /// nothing changed, at most that often. (1.645 for one figure, 2.94 for thirty.)
    pub fn z(&self) -> f64 {
        inverse_normal_cdf(1.0 - CHECK_FALSE_ALARM / self.figures.len().max(1) as f64)
    }

    /// The figure's spread, if it was calibrated.
    pub fn figure(
        &self,
        point: &str,
        subject: &str,
        metric: Metric,
        is_speedup: bool,
    ) -> Option<&NoiseFigure> {
        self.figures.iter().find(|f| {
            f.point == point && f.subject == subject && f.metric == metric && f.is_speedup == is_speedup
        })
    }

    /// The spread a cut uses for `figure`: its own σ, or the root mean square of the σs of its
    /// kind (same metric, speedup or absolute) when that is larger (see the module's
    /// documentation).
    pub fn sigma(&self, figure: &NoiseFigure) -> f64 {
        sigma_among(&self.figures, figure)
    }

    /// The fall (a fraction) beyond which `check` calls `figure` a regression, for the
    /// tolerance `tolerance` (see the module's documentation).
    pub fn cut(&self, figure: &NoiseFigure, tolerance: f64) -> f64 {
        cut(self.sigma(figure), tolerance, self.z())
    }

    /// How often an unchanged engine falls beyond `figure`'s cut, and how often a slowdown of
    /// `tolerance` does, for this figure alone (normal approximation of the log change between
    /// two sessions, with the σ of [`NoiseFloors::sigma`]).
    pub fn rates(&self, figure: &NoiseFigure, tolerance: f64) -> (f64, f64) {
        rates(self.sigma(figure), tolerance, self.z())
    }
}

/// [`NoiseFloors::sigma`] of `figure` among `figures`.
fn sigma_among(figures: &[NoiseFigure], figure: &NoiseFigure) -> f64 {
    let kind: Vec<f64> = figures
        .iter()
        .filter(|f| f.metric == figure.metric && f.is_speedup == figure.is_speedup)
        .map(|f| f.sigma * f.sigma)
        .collect();
    let kind_sigma =
        if kind.is_empty() { 0.0 } else { (kind.iter().sum::<f64>() / kind.len() as f64).sqrt() };
    figure.sigma.max(kind_sigma)
}

/// The cut (a fraction) for a figure of spread `sigma`, tolerance `tolerance` and one-sided
/// quantile `z`: `1 - exp(-max(ln(1/(1-τ))/2, z·√2·σ))`.
fn cut(sigma: f64, tolerance: f64, z: f64) -> f64 {
    let half_tolerance = -(1.0 - tolerance).ln() / 2.0;
    1.0 - (-half_tolerance.max(z * std::f64::consts::SQRT_2 * sigma)).exp()
}

/// (false alarms, catches of a `tolerance` fall) for a figure of spread `sigma` judged by its
/// [`cut`].
fn rates(sigma: f64, tolerance: f64, z: f64) -> (f64, f64) {
    let sd = std::f64::consts::SQRT_2 * sigma;
    let c = -(1.0 - cut(sigma, tolerance, z)).ln();
    let t = -(1.0 - tolerance).ln();
    if sd == 0.0 {
        return (0.0, if t > c { 1.0 } else { 0.0 });
    }
    (normal_cdf(-c / sd), normal_cdf((t - c) / sd))
}

/// x with Φ(x) = p, for p in (0.5, 1), by bisection on [`normal_cdf`] (to 1e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    let (mut low, mut high) = (0.0, 10.0);
    while high - low > 1e-9 {
        let mid = (low + high) / 2.0;
        if normal_cdf(mid) < p { low = mid } else { high = mid }
    }
    (low + high) / 2.0
}

/// The sample standard deviation.
fn sample_sd(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// Φ(x), from the complementary error function (Abramowitz and Stegun 7.1.26, error < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 { 1.0 - erfc / 2.0 } else { erfc / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One figure judged alone: its false alarms at 5%.
    const Z: f64 = 1.644_854;

    fn figure(subject: &str, sigma: f64) -> NoiseFigure {
        NoiseFigure {
            point: String::new(),
            subject: subject.into(),
            metric: Metric::DecodeTokS,
            is_speedup: false,
            sigma,
        }
    }

    #[test]
    fn the_normal_cdf_matches_its_table() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.644_854) - 0.95).abs() < 1e-6);
        assert!((normal_cdf(-1.959_964) - 0.025).abs() < 1e-6);
        assert!((inverse_normal_cdf(0.95) - 1.644_854).abs() < 1e-5);
        assert!((inverse_normal_cdf(1.0 - 0.05 / 30.0) - 2.935).abs() < 1e-3);
    }

    #[test]
    fn a_quiet_figure_is_cut_halfway_to_the_tolerance() {
        // sigma 1%: the noise's 95th percentile is 2.3%, below half of 10% (5.1% in log terms).
        assert!((cut(0.01, 0.10, Z) - 0.0513).abs() < 0.001, "{}", cut(0.01, 0.10, Z));
        let (false_alarms, caught) = rates(0.01, 0.10, Z);
        assert!(false_alarms < 0.001 && caught > 0.999, "{false_alarms} {caught}");
    }

    #[test]
    fn a_noisy_figure_is_cut_beyond_its_noise_and_says_it_misses() {
        // sigma 24% (TTFT of one 0.3 ms op): the cut keeps false alarms at 5%, and a 10%
        // slowdown is then rarely caught.
        let (false_alarms, caught) = rates(0.24, 0.10, Z);
        assert!((false_alarms - 0.05).abs() < 0.001, "{false_alarms}");
        assert!(caught < 0.2, "{caught}");
        assert!(cut(0.24, 0.10, Z) > 0.4, "{}", cut(0.24, 0.10, Z));
    }

    #[test]
    fn a_figure_quieter_than_its_kind_borrows_the_kinds_spread() {
        // Two decode figures at 1% and 7%: root mean square 5%. A TTFT figure is its own kind.
        let mut ttft = figure("c", 0.002);
        ttft.metric = Metric::TtftMs;
        let figures = [figure("a", 0.01), figure("b", 0.07), ttft.clone()];
        assert!((sigma_among(&figures, &figures[0]) - 0.05).abs() < 1e-12);
        assert!((sigma_among(&figures, &figures[1]) - 0.07).abs() < 1e-12);
        assert!((sigma_among(&figures, &ttft) - 0.002).abs() < 1e-12);
    }
}
