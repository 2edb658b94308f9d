//! The calibration page, `reports/NAME/calibration.md`: what the A/A run says about the noise.

use super::format::{interval, provenance};
use crate::analysis::calibration::Calibration;
use crate::results::ExperimentResults;
use crate::stats::Verdict;
use std::fmt::Write;

/// The calibration page.
pub fn render(r: &ExperimentResults, calibrations: &[Calibration]) -> String {
    let mut md = String::new();
    let env = &r.environment;
    let _ = writeln!(md, "# `{}`: calibration (A/A)\n", r.experiment);
    let _ = writeln!(
        md,
        "The reference variant (`{}`) run against itself, {} rounds, each round both runs as their own \
         process in alternating order, on {}\n",
        r.points[0].variants[0].optimizations,
        r.rounds,
        provenance(env, &r.finished, &r.command)
    );
    let _ = writeln!(
        md,
        "| metric | A/A speedup [95% CI] | verdict | noise floor | per-round spread (σ of log ratio) | smallest effect {} rounds detect | rounds to detect {:.0}% |",
        r.rounds,
        calibrations.first().map_or(5.0, |c| c.effect * 100.0)
    );
    let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|");
    for c in calibrations {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1}% | {:.2}% | {:.1}% | {} |",
            c.metric.name(),
            interval(&c.speedup),
            match c.verdict {
                Verdict::NoChange => "no significant change",
                _ => "**significant: the machine is too noisy for this floor**",
            },
            c.noise_floor * 100.0,
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
