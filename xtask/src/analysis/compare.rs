//! A `cargo xtask compare` run analysed: the head against the base with every optimization on,
//! figure by figure; with `--toggles lattice`, each optimization's contribution on both sides;
//! where the head's tokens differ from the base's (`--allow-output-change`); and the verdict the
//! exit code, the report and the pull-request summary all give.

use super::baseline::{count_regressed, timed_regressed};
use super::bisect::{Suspect, ranked};
use super::{Analysis, BaselineState};
use crate::metrics::Metric;
use crate::results::{CompareRecord, Divergence, ExperimentResults, PointResults, VariantResults};
use crate::stats::{Speedup, Verdict};

/// The variant of one side with every optimization on: `base`/`head`, or in a lattice run
/// `base-all-on`/`head-all-on`.
pub fn all_on(p: &PointResults, side: &str) -> Option<String> {
    let lattice = format!("{side}-all-on");
    [side.to_string(), lattice].into_iter().find(|n| p.variant(n).is_some())
}

/// One figure, head against base.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The sweep point's label (empty without a sweep).
    pub point: String,
    pub metric: Metric,
    /// Medians over rounds.
    pub base: f64,
    pub head: f64,
    /// The head over the base, above 1 better (paired bootstrap for timings, exact for counts).
    pub change: Speedup,
    /// Against the experiment's noise floor.
    pub verdict: Verdict,
    /// Beyond the experiment's regression tolerance (the rule of `check` against a baseline).
    pub regressed: bool,
}

impl Change {
    /// Whether the figure moved: beyond the noise floor, or a count that changed.
    pub fn changed(&self) -> bool {
        self.regressed || !matches!(self.verdict, Verdict::NoChange | Verdict::Same)
    }
}

/// Everything a compare report and summary say about one experiment, computed once.
#[derive(Debug, Clone)]
pub struct CompareAnalysis<'a> {
    /// The experiment's page: every variant against the base's all-on set.
    pub page: Analysis<'a>,
    pub record: &'a CompareRecord,
    pub tolerance: f64,
    pub noise_floor: f64,
    /// Every figure both sides measured, point by point, in [`Metric::ALL`]'s order.
    pub changes: Vec<Change>,
    /// `--toggles lattice`: each optimization's contribution to decode throughput in the head
    /// against the base, worst change first, each flagged when it fell beyond the tolerance.
    pub contributions: Option<Vec<(Suspect, bool)>>,
    /// Where the head's tokens differ from the base's, as `(point label, divergence)`.
    pub divergences: Vec<(String, Divergence)>,
}

impl<'a> CompareAnalysis<'a> {
    /// Analyses a compare run's results; `None` for results no `compare` wrote.
    pub fn of(results: &'a ExperimentResults) -> Option<CompareAnalysis<'a>> {
        let record = results.compare.as_ref()?;
        let page = Analysis::new(results, BaselineState::NotApplicable);
        let tolerance = results.spec.thresholds.regression;
        let mut changes = Vec::new();
        for point in &page.points {
            let Some(head) = all_on(point.point, "head") else { continue };
            let Some(c) = point.comparisons.iter().find(|c| c.candidate.name == head) else { continue };
            for row in &c.rows {
                let Some(change) = row.speedup else { continue };
                let regressed = if row.metric.is_exact() {
                    count_regressed(row.reference, row.candidate, tolerance)
                } else {
                    timed_regressed(&change, tolerance)
                };
                changes.push(Change {
                    point: point.point.point.label.clone(),
                    metric: row.metric,
                    base: row.reference,
                    head: row.candidate,
                    change,
                    verdict: row.verdict,
                    regressed,
                });
            }
        }
        let lattice = results.points[0].variant("head-all-on").is_some();
        let contributions = lattice.then(|| {
            let p = &results.points[0];
            ranked(&side(p, "head"), &side(p, "base"), tolerance, true)
        });
        let divergences = results
            .points
            .iter()
            .flat_map(|p| p.correctness.divergences.iter().map(|d| (p.point.label.clone(), d.clone())))
            .collect();
        Some(CompareAnalysis {
            page,
            record,
            tolerance,
            noise_floor: results.spec.thresholds.noise_floor,
            changes,
            contributions,
            divergences,
        })
    }

    /// The figures beyond the regression tolerance.
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.regressed)
    }

    /// The head's decode throughput against the base's at the last point.
    pub fn decode(&self) -> Option<&Change> {
        self.changes.iter().rev().find(|c| c.metric == Metric::DecodeTokS)
    }

    /// The optimization whose contribution fell, if one did (the worst).
    pub fn fallen(&self) -> Option<&Suspect> {
        self.contributions.as_ref()?.iter().find(|(_, fell)| *fell).map(|(s, _)| s)
    }
}

/// The point's variants of one revision, named by their toggle sets (`all-off` the reference).
fn side(p: &PointResults, side: &str) -> PointResults {
    let prefix = format!("{side}-");
    let variants = p
        .variants
        .iter()
        .filter_map(|v| {
            let set = v.name.strip_prefix(&prefix)?;
            Some(VariantResults { name: set.to_string(), reference: set == "all-off", ..v.clone() })
        })
        .collect();
    PointResults { variants, ..p.clone() }
}
