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
    /// A speedup's two sides, when both variants' own figures were compared (a comparable
    /// machine): how each moved since the baseline. A ratio is judged through them.
    pub parts: Option<Parts>,
    /// Better than the baseline beyond the cut that judges a regression: the baseline no longer
    /// describes what is measured now (store it again).
    pub improved_beyond: bool,
}

/// How each side of a speedup moved since the baseline, each as "times better now" with its 95%
/// interval: a ratio `candidate / reference` falls when the candidate got slower or when the
/// reference got faster, and only the first is a regression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts {
    pub candidate: Speedup,
    pub reference: Speedup,
}

impl Parts {
    /// The reference got faster beyond doubt (its whole interval above 1).
    pub fn reference_improved(&self) -> bool {
        self.reference.low > 1.0
    }
}

impl BaselineCheck {
    /// The rows that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &BaselineRow> {
        self.rows.iter().filter(|r| r.regressed)
    }

    /// The rows better than the baseline beyond their cut: the baseline is stale.
    pub fn improved_beyond(&self) -> impl Iterator<Item = &BaselineRow> {
        self.rows.iter().filter(|r| r.improved_beyond)
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
    /// A speedup that fell because its reference got faster while the candidate did not
    /// regress: said, never judged a regression (`cargo xtask experiment kv-cache` once exited 3
    /// because `recompute` had got 1.44x faster and `cached` 1.08x).
    pub fn fell_by_its_reference(&self) -> bool {
        self.is_speedup && self.change.point < 1.0 && self.parts.is_some_and(|p| p.reference_improved())
    }

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
    attribute(&mut compare.rows, now);
    BaselineCheck {
        baseline_commit: baseline.environment.git_commit.clone(),
        baseline_date: baseline.finished.clone(),
        comparable,
        machine_reasons: machine.reasons,
        judged,
        rows: compare
            .rows
            .into_iter()
            .map(|row| BaselineRow {
                regressed: row.regressed && judged,
                improved_beyond: row.improved_beyond && judged,
                ..row
            })
            .collect(),
        misfits: structural.into_iter().chain(compare.figures).collect(),
        same_run: now == baseline,
        noise: noise_use,
    }
}

/// Gives every speedup row its two sides (the variants' own rows, when they were compared), and
/// clears the regression of a ratio that fell because its reference improved while the
/// candidate's own figure did not regress. The candidate's own row still judges the candidate.
fn attribute(rows: &mut [BaselineRow], now: &ExperimentResults) {
    let own = |rows: &[BaselineRow], point: &str, subject: &str, metric: Metric| {
        rows.iter()
            .find(|r| !r.is_speedup && r.point == point && r.subject == subject && r.metric == metric)
            .cloned()
    };
    for i in 0..rows.len() {
        if !rows[i].is_speedup {
            continue;
        }
        let (point, metric) = (rows[i].point.clone(), rows[i].metric);
        let Some(results) = now.points.iter().find(|p| p.point.label == point) else { continue };
        let reference = results.reference().name.clone();
        let Some(candidate) = rows[i].subject.strip_suffix(&format!(" vs {reference}")).map(str::to_string)
        else {
            continue;
        };
        let (Some(c), Some(r)) =
            (own(rows, &point, &candidate, metric), own(rows, &point, &reference, metric))
        else {
            continue;
        };
        let row = &mut rows[i];
        row.parts = Some(Parts { candidate: c.change, reference: r.change });
        if row.regressed && row.fell_by_its_reference() && !c.regressed {
            row.regressed = false;
        }
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

/// Whether a timed figure's change improved beyond `tolerance`, the mirror of
/// [`timed_regressed`]: its whole 95% interval lies above `1 / (1 - tolerance)`.
pub fn timed_improved(change: &Speedup, tolerance: f64) -> bool {
    change.low > 1.0 / (1.0 - tolerance)
}

/// Whether a count fell by more than `tolerance`, the mirror of [`count_regressed`].
pub fn count_improved(before: f64, now: f64, tolerance: f64) -> bool {
    now < before * (1.0 - tolerance)
}

/// Whether a count (allocations, bytes) regressed beyond `tolerance`: it grew by more than it.
/// Counts are exact: no interval.
pub fn count_regressed(before: f64, now: f64, tolerance: f64) -> bool {
    now > before * (1.0 + tolerance)
}

/// One timed figure's verdict against the baseline.
struct Judged {
    regressed: bool,
    improved: bool,
    cut: Option<f64>,
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
    /// Whether a timed figure's `change` is a regression, whether it improved as far beyond the
    /// same cut, and the calibrated cut that decided it.
    fn judge(
        &mut self,
        point: &str,
        subject: &str,
        metric: Metric,
        is_speedup: bool,
        change: &Speedup,
    ) -> Judged {
        match self.noise.map(|n| n.figure(point, subject, metric, is_speedup)) {
            Some(Some(f)) => {
                let cut = self.noise.map_or(0.0, |n| n.cut(f, self.tolerance));
                let improved = change.point > 1.0 / (1.0 - cut) && change.low > 1.0;
                Judged { regressed: cut_regressed(change, cut), improved, cut: Some(cut) }
            }
            found => {
                if found.is_some() {
                    self.uncalibrated += 1;
                }
                Judged {
                    regressed: timed_regressed(change, self.tolerance),
                    improved: timed_improved(change, self.tolerance),
                    cut: None,
                }
            }
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
                    let judged = self.judge(label, &subject, metric, true, &change);
                    self.rows.push(BaselineRow {
                        point: label.clone(),
                        subject,
                        metric,
                        is_speedup: true,
                        before: b.point,
                        now: n.point,
                        change,
                        regressed: judged.regressed,
                        unconfirmed: false,
                        cut: judged.cut,
                        parts: None,
                        improved_beyond: judged.improved,
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
            let (change, judged) = if metric.is_exact() {
                let x = if now == before { 1.0 } else { before / now };
                let judged = Judged {
                    regressed: count_regressed(before, now, self.tolerance),
                    improved: count_improved(before, now, self.tolerance),
                    cut: None,
                };
                (Speedup { point: x, low: x, high: x }, judged)
            } else {
                // A zero median on one side: no ratio (a real run never times zero).
                let Some(change) = unpaired_speedup(&b, &n, metric.higher_is_better()) else { continue };
                let judged = self.judge(label, &variant.name, metric, false, &change);
                (change, judged)
            };
            self.rows.push(BaselineRow {
                point: label.to_string(),
                subject: variant.name.clone(),
                metric,
                is_speedup: false,
                before,
                now,
                change,
                regressed: judged.regressed,
                unconfirmed: false,
                cut: judged.cut,
                parts: None,
                improved_beyond: judged.improved,
            });
        }
    }
}
