//! A run against its stored baseline (`baselines/NAME.json`): speedups between variants and
//! allocation counts, and absolute figures when both ran on a comparable machine
//! ([`super::machine::compare`]). When the fingerprints and probes say the machine differs,
//! every difference may be the machine's (speedups and gemm's packing buffers depend on it too):
//! rows are shown, and none is judged. Decides what counts as a regression (exit 3).
//!
//! Only what fits is compared ([`super::fit`]); the rest is named as misfits.

pub use super::fit::{Misfit, MisfitKind, fit, misfit_line};
use super::noise::NoiseFloors;
use crate::metrics::Metric;
use crate::results::{ExperimentResults, PointResults, VariantResults};
use crate::stats::{Speedup, median, paired_speedup, unpaired_speedup};

/// Every comparison with the baseline, and whether any regressed.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineCheck {
    pub baseline_commit: String,
    pub baseline_date: String,
    /// Same machine and build settings: absolute figures are compared.
    pub comparable: bool,
    /// Why the machine is not the baseline's, one sentence each (empty when comparable).
    pub machine_reasons: Vec<String>,
    /// Whether rows are judged: always for runs recorded before fingerprints and probes (the
    /// old rule: speedups and allocations across machines), and otherwise only on a comparable
    /// machine.
    pub judged: bool,
    pub rows: Vec<BaselineRow>,
    /// What the baseline holds and this run does not (or the other way): never compared.
    pub misfits: Vec<Misfit>,
    /// The baseline is this very run (saved with it): every raw sample is the same. (Two quick
    /// runs can finish within the same second of the same commit: the date does not tell.)
    pub same_run: bool,
    /// Whether calibrated noise floors set the cuts.
    pub noise: NoiseUse,
}

/// Whether a check used calibrated noise floors ([`NoiseFloors`]).
#[derive(Debug, Clone, PartialEq)]
pub enum NoiseUse {
    /// None are stored: every timed figure is judged by the tolerance.
    Absent,
    /// Used for every figure they calibrated: `commit`, `finished`, sessions and rounds of the
    /// calibration; whether the file records its plan (older files do not, so it could not be
    /// checked), and how many timed figures it has no floor for (judged by the tolerance).
    Used {
        commit: String,
        finished: String,
        sessions: usize,
        rounds_per_session: usize,
        plan_unrecorded: bool,
        uncalibrated: usize,
    },
    /// Stored but not used, and why (another machine, another experiment).
    Ignored(String),
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
    /// Beyond its cut over a check's two runs together, but not in each run judged alone
    /// ([`BaselineCheck::confirm`]): not called a regression.
    pub unconfirmed: bool,
    /// The calibrated cut (a fraction) this figure was judged by, when noise floors were used;
    /// otherwise the tolerance rule applied.
    pub cut: Option<f64>,
}

impl BaselineCheck {
    /// The rows that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &BaselineRow> {
        self.rows.iter().filter(|r| r.regressed)
    }

    /// Keeps a regression only where the same figure also regressed in each of `runs`, the
    /// runs this check's results pool, each judged alone: a regression must be seen twice,
    /// not carried by one run's outlier. The others are marked [`BaselineRow::unconfirmed`].
    pub fn confirm(&mut self, runs: &[&BaselineCheck]) {
        for row in &mut self.rows {
            let seen = |c: &&BaselineCheck| c.regressions().any(|r| r.same_figure(row));
            if row.regressed && !runs.iter().all(seen) {
                row.regressed = false;
                row.unconfirmed = true;
            }
        }
    }
}

impl BaselineRow {
    /// Whether `other` is the same figure (point, subject, metric, speedup or absolute).
    pub fn same_figure(&self, other: &BaselineRow) -> bool {
        self.point == other.point
            && self.subject == other.subject
            && self.metric == other.metric
            && self.is_speedup == other.is_speedup
    }
}

/// Compares `now` with `baseline`; `tolerance` is the file's `thresholds.regression`. Only what
/// fits is compared; everything else is listed in [`BaselineCheck::misfits`]. A timed figure
/// regressed when its whole 95% interval is worse than the tolerance.
pub fn check(now: &ExperimentResults, baseline: &ExperimentResults, tolerance: f64) -> BaselineCheck {
    check_against(now, baseline, tolerance, None)
}

/// [`check`], with the noise floors calibrated for this experiment, if any: a timed figure they
/// calibrated regressed when it fell beyond its cut ([`cut_regressed`]). They
/// are used only on the machine they were measured on.
pub fn check_against(
    now: &ExperimentResults,
    baseline: &ExperimentResults,
    tolerance: f64,
    noise: Option<&NoiseFloors>,
) -> BaselineCheck {
    let (noise, mut noise_use) = noise_use(noise, now);
    let machine = super::machine::compare(now, baseline);
    let comparable = machine.comparable;
    let judged = comparable || !machine.measured;
    let structural = fit(&now.measured(), &baseline.measured());
    let fits =
        |point: &str, variant: &str| !structural.iter().any(|m| m.point == point && m.variant == variant);
    let mut compare =
        Compare { tolerance, comparable, noise, uncalibrated: 0, rows: Vec::new(), figures: Vec::new() };
    for point in &now.points {
        let Some(before_point) = baseline.points.iter().find(|p| p.point.label == point.point.label) else {
            continue;
        };
        // Variants in both runs, alike in workload, toggles and role.
        for variant in &point.variants {
            let label = &point.point.label;
            let Some(before_variant) = before_point.variant(&variant.name) else { continue };
            if !fits(label, &variant.name) {
                continue;
            }
            // Speedups over the reference (comparable across machines), when the reference fits too.
            if !variant.reference && fits(label, &point.reference().name) {
                compare.speedups(point, before_point, variant, before_variant);
            }
            compare.absolutes(label, variant, before_variant);
        }
    }
    if let NoiseUse::Used { uncalibrated, .. } = &mut noise_use {
        *uncalibrated = compare.uncalibrated;
    }
    BaselineCheck {
        baseline_commit: baseline.environment.git_commit.clone(),
        baseline_date: baseline.finished.clone(),
        comparable,
        machine_reasons: machine.reasons,
        judged,
        rows: compare
            .rows
            .into_iter()
            .map(|row| BaselineRow { regressed: row.regressed && judged, ..row })
            .collect(),
        misfits: structural.into_iter().chain(compare.figures).collect(),
        same_run: now == baseline,
        noise: noise_use,
    }
}

/// The floors to judge `now` by, if they fit it, and what the check says about them.
fn noise_use<'a>(
    noise: Option<&'a NoiseFloors>,
    now: &ExperimentResults,
) -> (Option<&'a NoiseFloors>, NoiseUse) {
    let Some(n) = noise else { return (None, NoiseUse::Absent) };
    if let Some(reason) = n.misfit(now) {
        return (None, NoiseUse::Ignored(reason));
    }
    let used = NoiseUse::Used {
        commit: n.commit.clone(),
        finished: n.finished.clone(),
        sessions: n.sessions,
        rounds_per_session: n.rounds_per_session,
        plan_unrecorded: n.plan.is_none(),
        uncalibrated: 0,
    };
    (Some(n), used)
}

/// Whether a timed figure's change (above 1 better) regressed beyond `tolerance`: its whole
/// 95% interval lies below `1 - tolerance`.
pub fn timed_regressed(change: &Speedup, tolerance: f64) -> bool {
    change.high < 1.0 - tolerance
}

/// Whether a timed figure's change (above 1 better) regressed beyond a calibrated `cut`
/// ([`NoiseFloors::cut`]): the change fell beyond the cut, and its whole 95% interval lies on the
/// slow side of no change (a point estimate alone, of three rounds, is too easily an outlier).
pub fn cut_regressed(change: &Speedup, cut: f64) -> bool {
    change.point < 1.0 - cut && change.high < 1.0
}

/// Whether a count (allocations, bytes) regressed beyond `tolerance`: it grew by more than it.
/// Counts are exact: no interval.
pub fn count_regressed(before: f64, now: f64, tolerance: f64) -> bool {
    now > before * (1.0 + tolerance)
}

/// The rows of a check as they are found, and the figures one side has and the other lacks.
struct Compare<'a> {
    tolerance: f64,
    comparable: bool,
    noise: Option<&'a NoiseFloors>,
    /// Timed figures judged while noise floors were used that had none of their own.
    uncalibrated: usize,
    rows: Vec<BaselineRow>,
    figures: Vec<Misfit>,
}

impl Compare<'_> {
    /// Whether a timed figure's `change` is a regression, and the calibrated cut that decided it.
    fn judge(
        &mut self,
        point: &str,
        subject: &str,
        metric: Metric,
        is_speedup: bool,
        change: &Speedup,
    ) -> (bool, Option<f64>) {
        match self.noise.map(|n| n.figure(point, subject, metric, is_speedup)) {
            Some(Some(f)) => {
                let cut = self.noise.map_or(0.0, |n| n.cut(f, self.tolerance));
                (cut_regressed(change, cut), Some(cut))
            }
            Some(None) => {
                self.uncalibrated += 1;
                (timed_regressed(change, self.tolerance), None)
            }
            None => (timed_regressed(change, self.tolerance), None),
        }
    }

    fn unmatched(&mut self, point: &str, variant: &str, metric: Metric, speedup: bool, in_baseline: bool) {
        self.figures.push(Misfit {
            point: point.to_string(),
            variant: variant.to_string(),
            kind: MisfitKind::Figure { metric, speedup, in_baseline },
        });
    }

    /// The variant's speedups over the reference, then and now.
    fn speedups(
        &mut self,
        point: &PointResults,
        before_point: &PointResults,
        variant: &VariantResults,
        before_variant: &VariantResults,
    ) {
        let label = &point.point.label;
        for metric in [Metric::DecodeTokS, Metric::TtftMs] {
            let now_speedup = paired_speedup(&point.pairs(variant, metric), metric.higher_is_better());
            let before_speedup =
                paired_speedup(&before_point.pairs(before_variant, metric), metric.higher_is_better());
            match (now_speedup, before_speedup) {
                (Some(n), Some(b)) => {
                    let change =
                        Speedup { point: n.point / b.point, low: n.low / b.point, high: n.high / b.point };
                    let subject = format!("{} vs {}", variant.name, point.reference().name);
                    let (regressed, cut) = self.judge(label, &subject, metric, true, &change);
                    self.rows.push(BaselineRow {
                        point: label.clone(),
                        subject,
                        metric,
                        is_speedup: true,
                        before: b.point,
                        now: n.point,
                        change,
                        regressed,
                        unconfirmed: false,
                        cut,
                    });
                }
                (None, None) => {}
                (n, _) => self.unmatched(label, &variant.name, metric, true, n.is_none()),
            }
        }
    }

    /// The variant's absolute figures: timings on a comparable machine only, allocations always.
    fn absolutes(&mut self, label: &str, variant: &VariantResults, before_variant: &VariantResults) {
        for metric in [Metric::DecodeTokS, Metric::TtftMs, Metric::AllocCountPerOp, Metric::AllocBytesPerOp] {
            if !metric.is_exact() && !self.comparable {
                continue;
            }
            let (b, n) = (before_variant.values(metric), variant.values(metric));
            match (b.is_empty(), n.is_empty()) {
                (true, true) => continue,
                (false, true) | (true, false) => {
                    self.unmatched(label, &variant.name, metric, false, n.is_empty());
                    continue;
                }
                (false, false) => {}
            }
            let (before, now) = (median(&b), median(&n));
            let (change, (regressed, cut)) = if metric.is_exact() {
                let x = if now == before { 1.0 } else { before / now };
                (Speedup { point: x, low: x, high: x }, (count_regressed(before, now, self.tolerance), None))
            } else {
                // A zero median on one side: no ratio (a real run never times zero).
                let Some(change) = unpaired_speedup(&b, &n, metric.higher_is_better()) else { continue };
                (change, self.judge(label, &variant.name, metric, false, &change))
            };
            self.rows.push(BaselineRow {
                point: label.to_string(),
                subject: variant.name.clone(),
                metric,
                is_speedup: false,
                before,
                now,
                change,
                regressed,
                unconfirmed: false,
                cut,
            });
        }
    }
}
