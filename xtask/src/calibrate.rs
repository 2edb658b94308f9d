//! `cargo xtask calibrate NAME`: the experiment's reference variant against itself (A/A) on this
//! machine. Whatever difference it shows is noise: its 95% interval is the noise floor, and the
//! spread of the per-round ratios says how small an effect the configured rounds can detect and
//! how many rounds a given effect needs. Written to `reports/NAME/calibration.md`.

use crate::compare::{Speedup, Verdict, paired_speedup};
use crate::experiment::{self, Paths};
use crate::results::ExperimentResults;
use crate::runner::{self, RunOptions};
use crate::spec::Metric;
use anyhow::Result;
use std::fmt::Write;

/// z for a two-sided 5% test plus z for 80% power: the usual sample-size constant.
const Z: f64 = 1.96 + 0.84;

/// What the A/A run says about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub metric: Metric,
    pub speedup: Speedup,
    pub verdict: Verdict,
    /// Standard deviation of the per-round log ratios.
    pub sigma: f64,
    pub rounds: usize,
    /// The smallest effect (fraction) the rounds detect 80% of the time at 5% significance.
    pub detectable: f64,
    /// Rounds needed to detect `effect`.
    pub rounds_for_effect: usize,
    pub effect: f64,
}

/// Runs the A/A experiment and writes the calibration page; returns the page.
pub fn run(name: &str, options: &RunOptions, paths: &Paths, effect: f64) -> Result<String> {
    let experiment = experiment::load(name, paths)?;
    let opts = experiment.reference().optimizations.resolve();
    let aa = experiment.derived(&[("A".into(), opts), ("A-again".into(), opts)])?;
    let engine = runner::build_engine(false, &options.engine_features)?;
    let scratch = runner::target_dir().join("xtask").join("calibrate").join(name);
    let mut command = format!("cargo xtask calibrate {name}");
    if let Some(n) = options.iterations {
        let _ = write!(command, " --iterations {n}");
    }
    let options = RunOptions { no_profiles: true, ..options.clone() };
    let results = runner::run(name, &aa, &engine, &options, &scratch, &scratch.join("profiles"), command)?;
    let calibrations: Vec<Calibration> = [Metric::DecodeTokS, Metric::TtftMs]
        .into_iter()
        .filter_map(|m| calibrate(&results, m, effect))
        .collect();
    let page = render(&results, &calibrations);
    let dir = paths.reports.join(name);
    std::fs::create_dir_all(&dir)?;
    experiment::write_atomic(&dir.join("calibration.md"), page.as_bytes())?;
    experiment::write_atomic(&dir.join("calibration.json"), &serde_json::to_vec(&results)?)?;
    Ok(page)
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
        sigma,
        rounds: n,
        detectable: (Z * sigma / (n as f64).sqrt()).exp() - 1.0,
        rounds_for_effect: ((Z * sigma / (1.0 + effect).ln()).powi(2)).ceil().max(2.0) as usize,
        effect,
    })
}

fn render(r: &ExperimentResults, calibrations: &[Calibration]) -> String {
    let mut md = String::new();
    let env = &r.environment;
    let _ = writeln!(md, "# `{}`: calibration (A/A)\n", r.experiment);
    let _ = writeln!(
        md,
        "The reference variant (`{}`) run against itself, {} rounds, each round both runs as their own \
         process in alternating order, on {}\n",
        r.points[0].variants[0].optimizations,
        r.rounds,
        crate::report::provenance(env, &r.finished, &r.command)
    );
    let _ = writeln!(
        md,
        "| metric | A/A speedup [95% CI] | verdict | noise floor | per-round spread (σ of log ratio) | smallest effect {} rounds detect | rounds to detect {:.0}% |",
        r.rounds,
        calibrations.first().map_or(5.0, |c| c.effect * 100.0)
    );
    let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|");
    for c in calibrations {
        let floor = (c.speedup.high - 1.0).max(1.0 - c.speedup.low);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}% | {:.2}% | {:.1}% | {} |",
            c.metric.name(),
            crate::report::interval(&c.speedup),
            match c.verdict {
                Verdict::NoChange => "no significant change",
                _ => "**significant: the machine is too noisy for this floor**",
            },
            floor * 100.0,
            c.sigma * 100.0,
            c.detectable * 100.0,
            c.rounds_for_effect
        );
    }
    let _ = writeln!(
        md,
        "\nThe noise floor is how far the A/A interval strays from 1: an experiment on this machine should set \
         `thresholds.noise_floor` at least that high. The smallest detectable effect and the rounds needed use \
         the per-round spread σ of log(A-again / A): an effect e is detected 80% of the time at 5% significance \
         when ln(1 + e) >= 2.8 σ / √rounds."
    );
    md
}
