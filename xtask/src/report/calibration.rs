//! The calibration page, `reports/NAME/calibration.md`: what the A/A run says about the noise.

use super::format::{interval, percent, provenance};
use crate::analysis::calibration::Calibration;
use crate::analysis::noise::NoiseFloors;
use crate::results::ExperimentResults;
use crate::stats::Verdict;
use std::fmt::Write;

/// The calibration page: the A/A run, and the noise floors between sessions when they were
/// measured (`tolerance`: the experiment's `thresholds.regression`).
pub fn render(
    r: &ExperimentResults,
    calibrations: &[Calibration],
    sessions: Option<(&NoiseFloors, f64)>,
) -> String {
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
    if let Some((floors, tolerance)) = sessions {
        noise_floors(&mut md, floors, tolerance);
    }
    md
}

/// The figures `check` compares, their spread between sessions and the cut each gets.
fn noise_floors(md: &mut String, floors: &NoiseFloors, tolerance: f64) {
    let _ = writeln!(md, "\n## Noise floors between sessions\n");
    let _ = writeln!(
        md,
        "The experiment run {} times as `cargo xtask check` runs it ({} rounds each, every session its own \
         processes). σ is the standard deviation of a figure's log across sessions; a check against the baseline \
         differs by √2·σ when nothing changed. A cut uses σ or, when larger, the root mean square of the σs of its \
         kind (same metric, speedup or absolute): five sessions can make a noisy figure look quiet. The cut is \
         max(half the tolerance, z·√2·σ used) in log terms (tolerance {}), z = {:.2} sharing a 5% false-alarm rate among the {} calibrated figures a check judges at once. The \
         rates are per figure, under the normal approximation.\n",
        floors.sessions,
        floors.rounds_per_session,
        percent(tolerance),
        floors.z(),
        floors.figures.len()
    );
    let _ = writeln!(
        md,
        "| point | figure | metric | σ between sessions | σ used | cut | unchanged flagged | a {} fall caught |",
        percent(tolerance)
    );
    let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|---:|");
    for f in &floors.figures {
        let (false_alarms, caught) = floors.rates(f, tolerance);
        let _ = writeln!(
            md,
            "| {} | {} | {}{} | {} | {} | {} | {} | {} |",
            if f.point.is_empty() { "-" } else { &f.point },
            f.subject,
            f.metric.name(),
            if f.is_speedup { " speedup" } else { "" },
            percent(f.sigma),
            percent(floors.sigma(f)),
            percent(floors.cut(f, tolerance)),
            percent(false_alarms),
            percent(caught)
        );
    }
    md.push('\n');
}
