//! The analysis stage: every speedup, interval and verdict a page shows, computed once from
//! results (and the stored baseline) before anything is rendered. [`Analysis`] is an experiment's
//! report; [`bisect::BisectAnalysis`] the bisect page; [`calibration`] the A/A page;
//! [`baseline`] decides what a stored baseline fits and what regressed; [`machine`] whether two
//! runs' machines may be compared.
//!
//! One rule per question: a variant against the reference is judged by [`compare_variants`]
//! (paired bootstrap for timings, exact equality for counts); a run against its baseline by
//! [`baseline::check`] (a change beyond the experiment's regression tolerance).

pub mod baseline;
pub mod bisect;
pub mod calibration;
pub mod changepoint;
pub mod compare;
pub mod fit;
pub mod heap_diff;
pub mod history;
pub mod machine;
pub mod noise;
pub mod profile_diff;
pub mod span_diff;
pub mod summary;

use crate::metrics::Metric;
use crate::plan::Hypothesis;
use crate::results::{ExperimentResults, PointResults, VariantResults};
use crate::stats::{Speedup, Verdict, detectable_change, median, paired_speedup};
use baseline::BaselineCheck;
use machine::MachineSummary;

/// What the report says about the stored baseline.
// One per analysis, never stored in bulk: boxing the check would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineState {
    Missing,
    /// The run is itself a comparison (`compare`: a head against its base): no stored baseline
    /// applies, and the report says nothing about one.
    NotApplicable,
    Checked(BaselineCheck),
}

/// Everything an experiment's report shows, computed once.
#[derive(Debug, Clone)]
pub struct Analysis<'a> {
    pub results: &'a ExperimentResults,
    pub baseline: BaselineState,
    /// The probes and the runs the machine's activity flagged (absent for runs without probes).
    pub machine: Option<MachineSummary>,
    /// Every candidate against the reference, point by point.
    pub points: Vec<PointAnalysis<'a>>,
    pub summary: summary::Summary,
    /// Each comparison's CPU profile diff at the profiled (last) point, where both sides have
    /// collapsed stacks ([`Analysis::with_profile_diffs`]).
    pub cpu_diffs: Vec<profile_diff::CpuDiff>,
    /// Each comparison's heap profile diff, where both sides have a heap profile.
    pub heap_diffs: Vec<heap_diff::HeapDiff>,
}

/// The comparisons at one sweep point.
#[derive(Debug, Clone)]
pub struct PointAnalysis<'a> {
    pub point: &'a PointResults,
    pub comparisons: Vec<Comparison<'a>>,
}

/// One candidate against the point's reference.
#[derive(Debug, Clone)]
pub struct Comparison<'a> {
    pub reference: &'a VariantResults,
    pub candidate: &'a VariantResults,
    /// One row per metric both measured, in [`Metric::ALL`]'s order.
    pub rows: Vec<MetricRow>,
    /// The hypothesis metric's paired speedup, when the hypothesis is about this candidate.
    pub hypothesis: Option<Option<Speedup>>,
    /// The tensor pool's median hit rate over runs, reference then candidate (`None`: no pool).
    pub pool_hit_rates: [Option<f64>; 2],
    /// Each phase's time, candidate against reference (empty without phase passes).
    pub spans: Vec<span_diff::SpanChange>,
}

/// One metric of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub metric: Metric,
    /// Medians over runs.
    pub reference: f64,
    pub candidate: f64,
    pub speedup: Option<Speedup>,
    pub verdict: Verdict,
    /// The smallest change the paired rounds detect (timed metrics with two rounds or more).
    pub detectable: Option<f64>,
    /// The same figure in the baseline.
    pub vs_baseline: BaselineCell,
}

/// A comparison's row against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineCell {
    NoBaseline,
    /// The speedup then and now, whether it regressed, and whether it was judged at all.
    Speedup {
        before: f64,
        now: f64,
        regressed: bool,
        judged: bool,
    },
    /// The baseline does not fit this variant (or its reference) on a compared metric.
    DoesNotFit,
    /// Not compared with the baseline.
    NotCompared,
}

impl<'a> Analysis<'a> {
    /// Analyses `results` against the stored baseline, if any.
    /// `noise`: the experiment's calibrated noise floors, if stored.
    pub fn of(
        results: &'a ExperimentResults,
        baseline: Option<&ExperimentResults>,
        noise: Option<&noise::NoiseFloors>,
    ) -> Analysis<'a> {
        let tolerance = results.spec.thresholds.regression;
        let baseline = match baseline {
            Some(stored) => {
                BaselineState::Checked(baseline::check_against(results, stored, tolerance, noise))
            }
            None => BaselineState::Missing,
        };
        Analysis::new(results, baseline)
    }

    /// Analyses `results` with the baseline already checked (`baseline`).
    pub fn new(results: &'a ExperimentResults, baseline: BaselineState) -> Analysis<'a> {
        let hypothesis = results.spec.hypothesis.as_ref();
        let points = results
            .points
            .iter()
            .map(|p| PointAnalysis {
                point: p,
                comparisons: p
                    .variants
                    .iter()
                    .filter(|v| !v.reference)
                    .map(|c| comparison(p, c, results.spec.thresholds.noise_floor, hypothesis, &baseline))
                    .collect(),
            })
            .collect();
        Analysis {
            results,
            machine: MachineSummary::of(results),
            points,
            summary: summary::Summary::of(results),
            baseline,
            cpu_diffs: Vec::new(),
            heap_diffs: Vec::new(),
        }
    }

    /// The analysis with each last-point comparison's CPU and heap profile diffs, from each
    /// variant's profiles (variants without any are left out).
    pub fn with_profile_diffs(mut self, profiles: &profile_diff::VariantProfiles) -> Self {
        let pairs: Vec<(String, String)> = self
            .points
            .last()
            .map(|p| {
                p.comparisons.iter().map(|c| (c.reference.name.clone(), c.candidate.name.clone())).collect()
            })
            .unwrap_or_default();
        self.cpu_diffs = pairs
            .iter()
            .filter_map(|(r, c)| {
                let (rp, cp) = (profiles.cpu.get(r)?, profiles.cpu.get(c)?);
                (!rp.is_empty() && !cp.is_empty()).then(|| profile_diff::diff((r, rp), (c, cp)))
            })
            .collect();
        self.heap_diffs = pairs
            .iter()
            .filter_map(|(r, c)| {
                Some(heap_diff::diff((r, profiles.heap.get(r)?), (c, profiles.heap.get(c)?)))
            })
            .collect();
        self
    }

    /// The heap profile diff of `candidate` against `reference`, if there is one.
    pub fn heap_diff(&self, reference: &str, candidate: &str) -> Option<&heap_diff::HeapDiff> {
        self.heap_diffs.iter().find(|d| d.reference == reference && d.candidate == candidate)
    }

    /// The CPU profile diff of `candidate` against `reference`, if there is one.
    pub fn cpu_diff(&self, reference: &str, candidate: &str) -> Option<&profile_diff::CpuDiff> {
        self.cpu_diffs.iter().find(|d| d.reference == reference && d.candidate == candidate)
    }

    /// The comparison the headline is about: at the last point, the hypothesis's candidate, or
    /// the first candidate.
    pub fn headline(&self) -> Option<&Comparison<'a>> {
        let wanted = self.results.spec.hypothesis.as_ref().and_then(|h| h.candidate.as_ref());
        let last = self.points.last()?;
        last.comparisons.iter().find(|c| wanted.is_none_or(|w| w == &c.candidate.name))
    }

    /// Every figure that regressed against the baseline, as `subject metric at point: change`.
    pub fn regressions(&self) -> Vec<String> {
        match &self.baseline {
            BaselineState::Checked(check) => check
                .regressions()
                .map(|r| {
                    format!(
                        "{} {}{}: {}",
                        r.subject,
                        r.metric.name(),
                        crate::plan::at_label(&r.point),
                        r.change.point
                    )
                })
                .collect(),
            BaselineState::Missing | BaselineState::NotApplicable => Vec::new(),
        }
    }
}

impl Comparison<'_> {
    /// The row of `metric`, if both variants measured it.
    pub fn row(&self, metric: Metric) -> Option<&MetricRow> {
        self.rows.iter().find(|r| r.metric == metric)
    }
}

fn comparison<'a>(
    p: &'a PointResults,
    candidate: &'a VariantResults,
    nf: f64,
    hypothesis: Option<&Hypothesis>,
    baseline: &BaselineState,
) -> Comparison<'a> {
    let reference = p.reference();
    let rows = Metric::ALL
        .into_iter()
        .filter_map(|metric| {
            let (rv, cv) = (reference.values(metric), candidate.values(metric));
            if rv.is_empty() || cv.is_empty() {
                return None;
            }
            let (speedup, verdict) = compare_variants(p, candidate, metric, nf);
            Some(MetricRow {
                metric,
                reference: median(&rv),
                candidate: median(&cv),
                speedup,
                verdict,
                detectable: detectable(p, candidate, metric),
                vs_baseline: baseline_cell(baseline, &p.point.label, candidate, reference, metric),
            })
        })
        .collect();
    let hypothesis = hypothesis
        .filter(|h| h.candidate.as_ref().is_none_or(|c| c == &candidate.name))
        .map(|h| paired_speedup(&p.pairs(candidate, h.metric), h.metric.higher_is_better()));
    Comparison {
        reference,
        candidate,
        rows,
        hypothesis,
        pool_hit_rates: [hit_rate(reference), hit_rate(candidate)],
        spans: span_diff::span_changes(p, candidate, nf),
    }
}

fn hit_rate(v: &VariantResults) -> Option<f64> {
    let rates: Vec<f64> = v.runs.iter().filter_map(|r| r.pool.hit_rate).collect();
    (!rates.is_empty()).then(|| median(&rates))
}

/// Speedup and verdict of `candidate` over the point's reference on `metric`: the paired
/// bootstrap for timings; counts compared exactly (the peak heap within 1%: it also holds
/// buffers the bench sizes from its arguments, a few hundred bytes).
pub fn compare_variants(
    p: &PointResults,
    candidate: &VariantResults,
    metric: Metric,
    nf: f64,
) -> (Option<Speedup>, Verdict) {
    if metric.is_exact() {
        let (rv, cv) = (p.reference().values(metric), candidate.values(metric));
        if rv.is_empty() || cv.is_empty() {
            return (None, Verdict::NoChange);
        }
        let (r, c) = (median(&rv), median(&cv));
        let x = if r == c { 1.0 } else { r / c };
        let same = r == c || (metric == Metric::PeakHeapBytes && (x - 1.0).abs() < 0.01);
        let verdict = if same {
            Verdict::Same
        } else if c < r {
            Verdict::Better
        } else {
            Verdict::Worse
        };
        return (Some(Speedup { point: x, low: x, high: x }), verdict);
    }
    match paired_speedup(&p.pairs(candidate, metric), metric.higher_is_better()) {
        Some(s) => (Some(s), s.verdict(nf)),
        None => (None, Verdict::NoChange),
    }
}

/// The smallest change of `metric` between `candidate` and the reference that the paired rounds
/// at `p` detect at 80% power (see [`detectable_change`]); `None` for exact metrics and fewer
/// than two rounds.
fn detectable(p: &PointResults, candidate: &VariantResults, metric: Metric) -> Option<f64> {
    (!metric.is_exact()).then(|| detectable_change(&p.pairs(candidate, metric))).flatten()
}

fn baseline_cell(
    baseline: &BaselineState,
    point: &str,
    candidate: &VariantResults,
    reference: &VariantResults,
    metric: Metric,
) -> BaselineCell {
    let check = match baseline {
        BaselineState::Missing => return BaselineCell::NoBaseline,
        BaselineState::NotApplicable => return BaselineCell::NotCompared,
        BaselineState::Checked(check) => check,
    };
    let subject = format!("{} vs {}", candidate.name, reference.name);
    let row = check
        .rows
        .iter()
        .find(|row| row.point == point && row.subject == subject && row.metric == metric && row.is_speedup);
    match row {
        Some(row) => BaselineCell::Speedup {
            before: row.before,
            now: row.now,
            regressed: row.regressed,
            judged: check.judged,
        },
        None => {
            let unfit = check
                .misfits
                .iter()
                .any(|m| m.point == point && (m.variant == candidate.name || m.variant == reference.name));
            let compared = [Metric::DecodeTokS, Metric::TtftMs].contains(&metric);
            if unfit && compared { BaselineCell::DoesNotFit } else { BaselineCell::NotCompared }
        }
    }
}
