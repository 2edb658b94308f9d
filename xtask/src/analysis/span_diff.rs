//! Which phases changed: each engine span's time per op, from every measured run's phase pass,
//! paired by round between a candidate and the reference (the same paired bootstrap as every
//! timed metric), and per generated token. Span timing costs time, so the absolute figures are
//! indicative; the ratios compare like with like.

use crate::results::{PointResults, VariantResults};
use crate::stats::{Speedup, Verdict, median, paired_speedup};

/// One phase, candidate against reference.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanChange {
    pub name: String,
    /// Median milliseconds per generated token: reference, candidate.
    pub ms_per_token: [f64; 2],
    /// How many times faster the candidate's phase is (above 1 better), paired over rounds.
    pub speedup: Speedup,
    pub verdict: Verdict,
}

/// A run's time in phase `name`, milliseconds per op.
fn phase_ms(v: &VariantResults, round: usize, name: &str) -> Option<f64> {
    let run = v.runs.iter().find(|r| r.round == round)?;
    run.phases.as_ref()?.phases.iter().find(|p| p.name == name).map(|p| p.ms_per_op)
}

/// Every phase both variants timed, in the reference's order, judged against the noise floor
/// `nf`; empty when either has no phase pass.
pub fn span_changes(p: &PointResults, candidate: &VariantResults, nf: f64) -> Vec<SpanChange> {
    let reference = p.reference();
    let Some(names) = reference.runs.iter().find_map(|r| r.phases.as_ref()) else { return Vec::new() };
    let tokens = p.correctness.generated_tokens.max(1) as f64;
    names
        .phases
        .iter()
        .filter_map(|phase| {
            let pairs: Vec<(f64, f64)> = reference
                .runs
                .iter()
                .filter_map(|r| {
                    Some((
                        phase_ms(reference, r.round, &phase.name)?,
                        phase_ms(candidate, r.round, &phase.name)?,
                    ))
                })
                .filter(|&(a, b)| a > 0.0 && b > 0.0)
                .collect();
            let speedup = paired_speedup(&pairs, false)?;
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            Some(SpanChange {
                name: phase.name.clone(),
                ms_per_token: [median(&a) / tokens, median(&b) / tokens],
                speedup,
                verdict: speedup.verdict(nf),
            })
        })
        .collect()
}
