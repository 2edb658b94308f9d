//! A run against its stored baseline (`baselines/NAME.json`): speedups between variants always,
//! absolute figures only when both ran in a comparable environment, allocation counts always
//! (they depend on the code, not the machine). Decides what counts as a regression (exit 3).

use crate::compare::{Speedup, paired_speedup, unpaired_speedup};
use crate::results::ExperimentResults;
use crate::spec::Metric;

/// Every comparison with the baseline, and whether any regressed.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineCheck {
    pub baseline_commit: String,
    pub baseline_date: String,
    /// Same machine and build settings: absolute figures are compared.
    pub comparable: bool,
    pub rows: Vec<BaselineRow>,
}

/// One figure, then and now.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRow {
    pub point: String,
    /// A variant (absolute figure) or `candidate vs reference` (a speedup).
    pub subject: String,
    pub metric: Metric,
    pub is_speedup: bool,
    pub before: f64,
    pub now: f64,
    /// How many times better now is than before, with its interval (exact metrics: a point).
    pub change: Speedup,
    pub regressed: bool,
}

impl BaselineCheck {
    /// The rows that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &BaselineRow> {
        self.rows.iter().filter(|r| r.regressed)
    }
}

/// Compares `now` with `baseline`; `tolerance` is the file's `thresholds.regression`.
pub fn check(now: &ExperimentResults, baseline: &ExperimentResults, tolerance: f64) -> BaselineCheck {
    let comparable = now.environment.comparable_with(&baseline.environment);
    let mut rows = Vec::new();
    for point in &now.points {
        let Some(before_point) = baseline.points.iter().find(|p| p.point.label == point.point.label) else {
            continue;
        };
        let reference = point.reference();
        for variant in &point.variants {
            let Some(before_variant) = before_point.variants.iter().find(|v| v.name == variant.name) else {
                continue;
            };
            // Speedups over the reference: comparable across machines.
            if !variant.reference && before_point.reference().name == reference.name {
                for metric in [Metric::DecodeTokS, Metric::TtftMs] {
                    let now_speedup =
                        paired_speedup(&point.pairs(variant, metric), metric.higher_is_better());
                    let before_speedup = paired_speedup(
                        &before_point.pairs(before_variant, metric),
                        metric.higher_is_better(),
                    );
                    if let (Some(n), Some(b)) = (now_speedup, before_speedup) {
                        let change = Speedup {
                            point: n.point / b.point,
                            low: n.low / b.point,
                            high: n.high / b.point,
                        };
                        rows.push(BaselineRow {
                            point: point.point.label.clone(),
                            subject: format!("{} vs {}", variant.name, reference.name),
                            metric,
                            is_speedup: true,
                            before: b.point,
                            now: n.point,
                            change,
                            regressed: change.high < 1.0 - tolerance,
                        });
                    }
                }
            }
            // Absolute figures: timings on a comparable machine only, allocations always.
            for metric in
                [Metric::DecodeTokS, Metric::TtftMs, Metric::AllocCountPerOp, Metric::AllocBytesPerOp]
            {
                if !metric.is_exact() && !comparable {
                    continue;
                }
                let (b, n) = (before_variant.values(metric), variant.values(metric));
                if b.is_empty() || n.is_empty() {
                    continue;
                }
                let (before, now) = (crate::compare::median(&b), crate::compare::median(&n));
                let (change, regressed) = if metric.is_exact() {
                    let x = if now == before { 1.0 } else { before / now };
                    (Speedup { point: x, low: x, high: x }, now > before * (1.0 + tolerance))
                } else {
                    let Some(change) = unpaired_speedup(&b, &n, metric.higher_is_better()) else { continue };
                    (change, change.high < 1.0 - tolerance)
                };
                rows.push(BaselineRow {
                    point: point.point.label.clone(),
                    subject: variant.name.clone(),
                    metric,
                    is_speedup: false,
                    before,
                    now,
                    change,
                    regressed,
                });
            }
        }
    }
    BaselineCheck {
        baseline_commit: baseline.environment.git_commit.clone(),
        baseline_date: baseline.finished.clone(),
        comparable,
        rows,
    }
}
