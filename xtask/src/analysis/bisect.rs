//! `cargo xtask bisect NAME`: attributes the experiment's figures to each optimization by
//! running the lattice of toggle sets (all off, all on, each alone on, each alone off; `--full`:
//! every set), interleaved and checked for identical output like any experiment. Writes
//! `reports/NAME/bisect.md` with a chart; with a stored bisect baseline, ranks the toggles whose
//! contribution fell (the suspects of a regression) and links their profiles before and after.
//!
//! A bisect baseline must fit: the toggle sets the ranking reads (all on, and all on but one)
//! with the same workload. One that does not stops `bisect` before it measures (exit 2) unless
//! `--save-baseline` replaces it, and the page then names what does not fit instead of ranking.

use super::baseline::{self, Misfit, MisfitKind};
use super::machine::{self, Comparability};
use crate::metrics::Metric;
use crate::plan::Measured;
use crate::results::{ExperimentResults, PointResults, pairs_between};
use crate::stats::{Speedup, Verdict, paired_speedup};
use rand::{Rng, SeedableRng};
use smallmind::{Optimization, Optimizations};

/// The metrics each optimization is credited with.
const METRICS: [Metric; 3] = [Metric::DecodeTokS, Metric::TtftMs, Metric::AllocCountPerOp];

/// The canonical name of a toggle set: `all-off`, `all-on`, or the toggles on joined by `+`.
pub fn config_name(opts: Optimizations) -> String {
    let on: Vec<&str> = Optimization::ALL.iter().filter(|&&o| opts.get(o)).map(|o| o.name()).collect();
    match on.len() {
        0 => "all-off".into(),
        n if n == Optimization::ALL.len() => "all-on".into(),
        _ => on.join("+"),
    }
}

/// The toggle sets to run: the lattice, or the whole factorial with `full`.
pub fn configs(full: bool) -> Vec<Optimizations> {
    if full {
        return Optimizations::every_combination().collect();
    }
    let mut configs = vec![Optimizations::none(), Optimizations::all()];
    for &t in &Optimization::ALL {
        configs.push(only(t));
        configs.push(without(t));
    }
    configs
}

fn only(t: Optimization) -> Optimizations {
    let mut o = Optimizations::none();
    o.set(t, true);
    o
}

pub fn without(t: Optimization) -> Optimizations {
    let mut o = Optimizations::all();
    o.set(t, false);
    o
}

/// One optimization's effect on one metric, both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub toggle: Optimization,
    pub metric: Metric,
    /// Only this toggle on, against all off.
    pub added_alone: Option<Speedup>,
    /// All on, against all on but this toggle: what it contributes to the optimized engine.
    pub removed_alone: Option<Speedup>,
}

/// Every toggle's effects in a lattice run.
pub fn effects(p: &PointResults) -> Vec<Effect> {
    let speedup = |from: Optimizations, to: Optimizations, metric: Metric| {
        let (a, b) = (p.variant(&config_name(from))?, p.variant(&config_name(to))?);
        paired_speedup(&pairs_between(a, b, metric), metric.higher_is_better())
    };
    let mut out = Vec::new();
    for &toggle in &Optimization::ALL {
        for metric in METRICS {
            out.push(Effect {
                toggle,
                metric,
                added_alone: speedup(Optimizations::none(), only(toggle), metric),
                removed_alone: speedup(without(toggle), Optimizations::all(), metric),
            });
        }
    }
    out
}

/// A two-toggle interaction on decode throughput, from the full factorial: how many times larger
/// `a`'s speedup is with `b` on than with `b` off (averaged over the other toggles, in log space).
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub a: Optimization,
    pub b: Optimization,
    pub factor: Speedup,
}

/// Interactions, when every toggle set ran (the full factorial).
pub fn interactions(p: &PointResults) -> Vec<Interaction> {
    let metric = Metric::DecodeTokS;
    let rounds: Vec<usize> =
        p.variants.first().map(|v| v.runs.iter().map(|r| r.round).collect()).unwrap_or_default();
    let value = |opts: Optimizations, round: usize| -> Option<f64> {
        let v = p.variant(&config_name(opts))?;
        v.runs.iter().find(|r| r.round == round)?.value(metric).map(f64::ln)
    };
    let mut out = Vec::new();
    for (i, &a) in Optimization::ALL.iter().enumerate() {
        for &b in &Optimization::ALL[i + 1..] {
            // Per round: the interaction contrast averaged over every setting of the other toggles.
            let others: Vec<Optimization> =
                Optimization::ALL.iter().copied().filter(|&t| t != a && t != b).collect();
            let settings = 1usize << others.len();
            let per_round: Option<Vec<f64>> = rounds
                .iter()
                .map(|&round| {
                    let mut sum = 0.0;
                    for bits in 0..settings {
                        let mut base = Optimizations::none();
                        for (k, &t) in others.iter().enumerate() {
                            base.set(t, bits & (1 << k) != 0);
                        }
                        let at = |on_a: bool, on_b: bool| {
                            let mut o = base;
                            o.set(a, on_a);
                            o.set(b, on_b);
                            value(o, round)
                        };
                        sum += at(true, true)? - at(false, true)? - at(true, false)? + at(false, false)?;
                    }
                    Some(sum / settings as f64)
                })
                .collect();
            let Some(per_round) = per_round.filter(|v| !v.is_empty()) else { return Vec::new() };
            out.push(Interaction { a, b, factor: mean_interval(&per_round) });
        }
    }
    out
}

/// exp of the mean of log contrasts, with a seeded bootstrap 95% interval.
fn mean_interval(xs: &[f64]) -> Speedup {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1a7);
    let mut means: Vec<f64> = (0..crate::stats::RESAMPLES)
        .map(|_| mean(&(0..xs.len()).map(|_| xs[rng.random_range(0..xs.len())]).collect::<Vec<_>>()))
        .collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| smallmind::bench::stats::quantile_sorted(&means, p).exp();
    Speedup { point: mean(xs).exp(), low: q(0.025), high: q(0.975) }
}

/// A toggle whose contribution fell against the bisect baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub toggle: Optimization,
    pub before: f64,
    pub now: Speedup,
    /// now / before: below 1, the toggle buys less than it did.
    pub change: Speedup,
}

impl Suspect {
    /// Whether the contribution fell beyond `tolerance`: the whole interval of the change lies
    /// below `1 - tolerance`.
    pub fn fell(&self, tolerance: f64) -> bool {
        super::baseline::timed_regressed(&self.change, tolerance)
    }
}

/// The suspects of `now` against `before`, worst first, each flagged when it fell beyond
/// `tolerance`; never flagged unless `judged` (not the same machine: shown, not judged).
pub fn ranked(
    now: &PointResults,
    before: &PointResults,
    tolerance: f64,
    judged: bool,
) -> Vec<(Suspect, bool)> {
    suspects(now, before)
        .into_iter()
        .map(|s| {
            let fell = judged && s.fell(tolerance);
            (s, fell)
        })
        .collect()
}

/// Toggles ranked by how much their decode contribution (`removed_alone`) fell, worst first.
pub fn suspects(now: &PointResults, before: &PointResults) -> Vec<Suspect> {
    let (now_effects, before_effects) = (effects(now), effects(before));
    let mut out: Vec<Suspect> = Optimization::ALL
        .iter()
        .filter_map(|&toggle| {
            let find = |e: &[Effect]| {
                e.iter()
                    .find(|x| x.toggle == toggle && x.metric == Metric::DecodeTokS)
                    .and_then(|x| x.removed_alone)
            };
            let (n, b) = (find(&now_effects)?, find(&before_effects)?);
            let change = Speedup { point: n.point / b.point, low: n.low / b.point, high: n.high / b.point };
            Some(Suspect { toggle, before: b.point, now: n, change })
        })
        .collect();
    out.sort_by(|x, y| x.change.point.total_cmp(&y.change.point));
    out
}

/// What a bisect baseline does not fit in a lattice run: any set both ran with another workload
/// or toggles, and any set the suspects are ranked from (all on, all on but one) missing on
/// either side. The other sets may differ (a `--full` run against a lattice baseline).
pub fn baseline_misfits(now: &[Measured], before: &[Measured]) -> Vec<Misfit> {
    let ranked: Vec<String> = std::iter::once(Optimizations::all())
        .chain(Optimization::ALL.iter().map(|&t| without(t)))
        .map(config_name)
        .collect();
    baseline::fit(now, before)
        .into_iter()
        .filter(|m| {
            let absent = matches!(
                m.kind,
                MisfitKind::NoBaseline | MisfitKind::Vanished | MisfitKind::NewPoint | MisfitKind::GonePoint
            );
            !absent || ranked.contains(&m.variant)
        })
        .collect()
}

/// Everything the bisect page shows, computed once from a lattice run and the bisect baseline.
#[derive(Debug, Clone)]
pub struct BisectAnalysis<'a> {
    pub results: &'a ExperimentResults,
    /// Whether every toggle set ran (the full factorial).
    pub full: bool,
    /// Each effect, with whether its added-alone and removed-alone intervals are clear of
    /// `1 ± noise_floor`.
    pub effects: Vec<(Effect, [bool; 2])>,
    /// The interactions clear of the noise floor (the full factorial only).
    pub interactions: Vec<Interaction>,
    pub against: Against<'a>,
    /// The CPU profile diff of the first-ranked suspect's on/off pair in this run (all on against
    /// all on but it), when both have profiles ([`BisectAnalysis::with_pair_diff`]).
    pub pair_diff: Option<super::profile_diff::CpuDiff>,
}

impl BisectAnalysis<'_> {
    /// The analysis with the profile diff of the first-ranked suspect's on/off pair.
    pub fn with_pair_diff(mut self, profiles: &super::profile_diff::VariantProfiles) -> Self {
        let Against::Ranked { suspects, .. } = &self.against else { return self };
        let Some((first, _)) = suspects.first() else { return self };
        let (off, on) = (config_name(without(first.toggle)), config_name(Optimizations::all()));
        self.pair_diff = match (profiles.cpu.get(&off), profiles.cpu.get(&on)) {
            (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                Some(super::profile_diff::diff((&off, a), (&on, b)))
            }
            _ => None,
        };
        self
    }
}

/// What the run is compared with.
#[derive(Debug, Clone)]
pub enum Against<'a> {
    /// No bisect baseline is stored.
    Nothing,
    /// This run is the stored bisect baseline.
    ThisRun,
    /// The baseline does not fit: nothing is ranked.
    Misfits { before: &'a ExperimentResults, misfits: Vec<Misfit> },
    /// Suspects ranked worst first, each flagged when its fall is beyond the tolerance on the
    /// baseline's machine.
    Ranked { before: &'a ExperimentResults, machine: Comparability, suspects: Vec<(Suspect, bool)> },
}

/// Analyses the lattice run `r` against the bisect baseline `before`, if one is stored.
pub fn analyse<'a>(r: &'a ExperimentResults, before: Option<&'a ExperimentResults>) -> BisectAnalysis<'a> {
    let p = &r.points[0];
    let nf = r.spec.thresholds.noise_floor;
    let clear = |s: Option<Speedup>| s.is_some_and(|s| s.verdict(nf) != Verdict::NoChange);
    let full = p.variants.len() == 1 << Optimization::ALL.len();
    let against = match before {
        None => Against::Nothing,
        Some(b) if b.finished == r.finished && b.environment.git_commit == r.environment.git_commit => {
            Against::ThisRun
        }
        Some(b) => {
            let misfits = baseline_misfits(&r.measured(), &b.measured());
            if misfits.is_empty() {
                let machine = machine::compare(r, b);
                let judged = machine.comparable || !machine.measured;
                let suspects = ranked(p, &b.points[0], r.spec.thresholds.regression, judged);
                Against::Ranked { before: b, machine, suspects }
            } else {
                Against::Misfits { before: b, misfits }
            }
        }
    };
    BisectAnalysis {
        results: r,
        full,
        effects: effects(p)
            .into_iter()
            .map(|e| (e.clone(), [clear(e.added_alone), clear(e.removed_alone)]))
            .collect(),
        interactions: if full {
            interactions(p).into_iter().filter(|i| i.factor.verdict(nf) != Verdict::NoChange).collect()
        } else {
            Vec::new()
        },
        against,
        pair_diff: None,
    }
}

#[cfg(test)]
#[path = "bisect_tests.rs"]
mod tests;
