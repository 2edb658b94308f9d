//! A run against its stored baseline (`baselines/NAME.json`): speedups between variants and
//! allocation counts, and absolute figures when both ran on a comparable machine
//! ([`crate::machine::compare`]). When the fingerprints and probes say the machine differs,
//! every difference may be the machine's (speedups and gemm's packing buffers depend on it too):
//! rows are shown, and none is judged. Decides what counts as a regression (exit 3).
//!
//! First of all it decides whether the baseline **fits** the run: the same variants at the same
//! sweep points, each with the same workload, toggles and role. Whatever does not fit is a
//! [`Misfit`], named per variant and never compared; a baseline that does not fit is never a
//! pass. [`planned`] gives what an experiment file will run, so that `check` and `experiment`
//! can refuse a baseline that does not fit before measuring anything.

use crate::compare::{Speedup, paired_speedup, unpaired_speedup};
use crate::results::ExperimentResults;
use crate::spec::{Experiment, Metric, Workload, at_label};
use anyhow::Result;
use smallmind::{Optimization, Optimizations};
use std::fmt;

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

/// What one variant runs at one sweep point: what must match for two runs to be compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The sweep point's label (empty without a sweep).
    pub point: String,
    pub variant: String,
    pub reference: bool,
    pub workload: Workload,
    pub optimizations: Optimizations,
}

/// What experiment `e` will run, from its file alone.
pub fn planned(e: &Experiment) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for point in e.sweep_points() {
        for v in &e.variants {
            out.push(Measured {
                point: point.label.clone(),
                variant: v.name.clone(),
                reference: v.reference,
                workload: e.workload_for(v, &point)?,
                optimizations: v.optimizations.resolve(),
            });
        }
    }
    Ok(out)
}

/// What a results (or baseline) file ran.
pub fn measured(r: &ExperimentResults) -> Vec<Measured> {
    r.points.iter().flat_map(measured_at).collect()
}

/// What the variants of one point ran.
pub fn measured_at(p: &crate::results::PointResults) -> impl Iterator<Item = Measured> + '_ {
    p.variants.iter().map(|v| Measured {
        point: p.point.label.clone(),
        variant: v.name.clone(),
        reference: v.reference,
        workload: v.workload.clone(),
        optimizations: v.optimizations,
    })
}

/// One variant at one point that cannot be compared with the baseline, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Misfit {
    pub point: String,
    pub variant: String,
    pub kind: MisfitKind,
}

/// Why a variant cannot be compared with the baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum MisfitKind {
    /// Run now at a point the baseline has, but the baseline has no variant of this name.
    NoBaseline,
    /// Run now at a sweep point the baseline does not have.
    NewPoint,
    /// In the baseline at a point still run, but no longer run (removed or renamed).
    Vanished,
    /// In the baseline at a sweep point no longer run.
    GonePoint,
    /// Same name, another workload: `field before -> now` per field that differs.
    Workload(Vec<String>),
    /// Same name, other toggles: `toggle on -> off` per toggle that differs.
    Toggles(Vec<String>),
    /// Same name, but the reference in one run and not in the other.
    Reference { now: bool },
    /// A figure one side measured and the other did not.
    Figure { metric: Metric, speedup: bool, in_baseline: bool },
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`{}: ", self.variant, at_label(&self.point))?;
        match &self.kind {
            MisfitKind::NoBaseline => f.write_str("not in the baseline (a new or renamed variant)"),
            MisfitKind::NewPoint => f.write_str("not in the baseline (a sweep point the baseline lacks)"),
            MisfitKind::Vanished => f.write_str("in the baseline, no longer run (removed or renamed)"),
            MisfitKind::GonePoint => f.write_str("in the baseline, at a sweep point no longer run"),
            MisfitKind::Workload(d) => write!(f, "workload differs from the baseline's ({})", d.join(", ")),
            MisfitKind::Toggles(d) => write!(f, "toggles differ from the baseline's ({})", d.join(", ")),
            MisfitKind::Reference { now: true } => f.write_str("the reference now, not in the baseline"),
            MisfitKind::Reference { now: false } => f.write_str("the reference in the baseline, not now"),
            MisfitKind::Figure { metric, speedup, in_baseline } => write!(
                f,
                "{}{} {}",
                metric.name(),
                if *speedup { " speedup" } else { "" },
                if *in_baseline {
                    "in the baseline, not measured now"
                } else {
                    "measured now, not in the baseline"
                }
            ),
        }
    }
}

/// Every way in which `before` (the baseline) does not fit `now`, in `now`'s order, then the
/// baseline's leftovers in its order. Empty when the two ran the same variants at the same points
/// with the same workloads, toggles and reference.
pub fn fit(now: &[Measured], before: &[Measured]) -> Vec<Misfit> {
    let mut out = Vec::new();
    let misfit = |m: &Measured, kind| Misfit { point: m.point.clone(), variant: m.variant.clone(), kind };
    for n in now {
        let Some(b) = before.iter().find(|b| b.point == n.point && b.variant == n.variant) else {
            let has_point = before.iter().any(|b| b.point == n.point);
            out.push(misfit(n, if has_point { MisfitKind::NoBaseline } else { MisfitKind::NewPoint }));
            continue;
        };
        if b.reference != n.reference {
            out.push(misfit(n, MisfitKind::Reference { now: n.reference }));
        }
        let fields = workload_changes(&b.workload, &n.workload);
        if !fields.is_empty() {
            out.push(misfit(n, MisfitKind::Workload(fields)));
        }
        let toggles: Vec<String> = Optimization::ALL
            .iter()
            .filter(|&&o| b.optimizations.get(o) != n.optimizations.get(o))
            .map(|&o| {
                format!(
                    "{} {} -> {}",
                    o.name(),
                    on_off(b.optimizations.get(o)),
                    on_off(n.optimizations.get(o))
                )
            })
            .collect();
        if !toggles.is_empty() {
            out.push(misfit(n, MisfitKind::Toggles(toggles)));
        }
    }
    for b in before.iter().filter(|b| !now.iter().any(|n| n.point == b.point && n.variant == b.variant)) {
        let has_point = now.iter().any(|n| n.point == b.point);
        out.push(misfit(b, if has_point { MisfitKind::Vanished } else { MisfitKind::GonePoint }));
    }
    out
}

/// One line for a baseline that does not fit: what does not, and the command that stores a new
/// one. `what` says which baseline fits what, e.g. "the baseline of `kv-cache` does not fit the
/// experiment".
pub fn misfit_line(what: &str, misfits: &[Misfit], remedy: &str) -> String {
    const SHOWN: usize = 6;
    let mut parts: Vec<String> = misfits.iter().take(SHOWN).map(ToString::to_string).collect();
    if misfits.len() > SHOWN {
        parts.push(format!("and {} more", misfits.len() - SHOWN));
    }
    format!("{what}: {}; run `{remedy}`", parts.join("; "))
}

/// Compares `now` with `baseline`; `tolerance` is the file's `thresholds.regression`. Only what
/// fits is compared; everything else is listed in [`BaselineCheck::misfits`].
pub fn check(now: &ExperimentResults, baseline: &ExperimentResults, tolerance: f64) -> BaselineCheck {
    let machine = crate::machine::compare(now, baseline);
    let comparable = machine.comparable;
    let judged = comparable || !machine.measured;
    let structural = fit(&measured(now), &measured(baseline));
    let fits =
        |point: &str, variant: &str| !structural.iter().any(|m| m.point == point && m.variant == variant);
    // Figures one side has and the other lacks, found while comparing.
    let mut figures = Vec::new();
    // (point, variant) pairs to compare: in both runs, alike in workload, toggles and role.
    let mut compared = Vec::new();
    for point in &now.points {
        let Some(before_point) = baseline.points.iter().find(|p| p.point.label == point.point.label) else {
            continue;
        };
        for variant in &point.variants {
            if let Some(before_variant) = before_point.variant(&variant.name)
                && fits(&point.point.label, &variant.name)
            {
                compared.push((point, before_point, variant, before_variant));
            }
        }
    }
    let mut rows = Vec::new();
    for (point, before_point, variant, before_variant) in compared {
        let label = &point.point.label;
        let reference = point.reference();
        let mut unmatched = |metric: Metric, speedup: bool, in_baseline: bool| {
            figures.push(Misfit {
                point: label.clone(),
                variant: variant.name.clone(),
                kind: MisfitKind::Figure { metric, speedup, in_baseline },
            })
        };
        // Speedups over the reference (comparable across machines), when the reference fits too.
        if !variant.reference && fits(label, &reference.name) {
            for metric in [Metric::DecodeTokS, Metric::TtftMs] {
                let now_speedup = paired_speedup(&point.pairs(variant, metric), metric.higher_is_better());
                let before_speedup =
                    paired_speedup(&before_point.pairs(before_variant, metric), metric.higher_is_better());
                match (now_speedup, before_speedup) {
                    (Some(n), Some(b)) => {
                        let change = Speedup {
                            point: n.point / b.point,
                            low: n.low / b.point,
                            high: n.high / b.point,
                        };
                        rows.push(BaselineRow {
                            point: label.clone(),
                            subject: format!("{} vs {}", variant.name, reference.name),
                            metric,
                            is_speedup: true,
                            before: b.point,
                            now: n.point,
                            change,
                            regressed: change.high < 1.0 - tolerance,
                        });
                    }
                    (None, None) => {}
                    (n, _) => unmatched(metric, true, n.is_none()),
                }
            }
        }
        // Absolute figures: timings on a comparable machine only, allocations always.
        for metric in [Metric::DecodeTokS, Metric::TtftMs, Metric::AllocCountPerOp, Metric::AllocBytesPerOp] {
            if !metric.is_exact() && !comparable {
                continue;
            }
            let (b, n) = (before_variant.values(metric), variant.values(metric));
            match (b.is_empty(), n.is_empty()) {
                (true, true) => continue,
                (false, true) | (true, false) => {
                    unmatched(metric, false, n.is_empty());
                    continue;
                }
                (false, false) => {}
            }
            let (before, now) = (crate::compare::median(&b), crate::compare::median(&n));
            let (change, regressed) = if metric.is_exact() {
                let x = if now == before { 1.0 } else { before / now };
                (Speedup { point: x, low: x, high: x }, now > before * (1.0 + tolerance))
            } else {
                // A zero median on one side: no ratio (a real run never times zero).
                let Some(change) = unpaired_speedup(&b, &n, metric.higher_is_better()) else { continue };
                (change, change.high < 1.0 - tolerance)
            };
            rows.push(BaselineRow {
                point: label.clone(),
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
    BaselineCheck {
        baseline_commit: baseline.environment.git_commit.clone(),
        baseline_date: baseline.finished.clone(),
        comparable,
        machine_reasons: machine.reasons,
        judged,
        rows: rows.into_iter().map(|row| BaselineRow { regressed: row.regressed && judged, ..row }).collect(),
        misfits: structural.into_iter().chain(figures).collect(),
        same_run: now == baseline,
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// `field before -> now` for every workload field that differs.
fn workload_changes(before: &Workload, now: &Workload) -> Vec<String> {
    let as_map = |w: &Workload| match serde_json::to_value(w) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (b, n) = (as_map(before), as_map(now));
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "none".to_string(),
        Some(v) => crate::spec::plain(v),
    };
    n.keys()
        .chain(b.keys().filter(|k| !n.contains_key(*k)))
        .filter(|k| b.get(*k) != n.get(*k))
        .map(|k| format!("{k} {} -> {}", show(b.get(k)), show(n.get(k))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `renamed.toml` of the bug log's harness cases: `cached` against `recompute`.
    const RENAMED: &str = include_str!("../test_data/two_variants.toml");

    fn plan(text: &str) -> Vec<Measured> {
        planned(&Experiment::parse(text, "x.toml").unwrap()).unwrap()
    }

    /// The misfits of the edited file against a baseline of [`RENAMED`], as `(variant, point, kind)`.
    fn misfits_after(edit: &str) -> Vec<(String, String, MisfitKind)> {
        fit(&plan(edit), &plan(RENAMED)).into_iter().map(|m| (m.variant, m.point, m.kind)).collect()
    }

    fn v(variant: &str, point: &str, kind: MisfitKind) -> (String, String, MisfitKind) {
        (variant.into(), point.into(), kind)
    }

    #[test]
    fn the_same_experiment_fits() {
        assert_eq!(misfits_after(RENAMED), []);
        // What a variant is called in the file does not matter, only what it runs.
        let spelled = RENAMED.replace("{ kv-cache = true }", "{ all = true }");
        assert_eq!(misfits_after(&spelled), []);
    }

    #[test]
    fn a_renamed_candidate_is_missing_and_its_old_name_vanished() {
        assert_eq!(
            misfits_after(&RENAMED.replace("\"cached\"", "\"kv-on\"")),
            [v("kv-on", "", MisfitKind::NoBaseline), v("cached", "", MisfitKind::Vanished)]
        );
        let line = misfit_line(
            "the baseline of `renamed` does not fit the experiment",
            &fit(&plan(&RENAMED.replace("\"cached\"", "\"kv-on\"")), &plan(RENAMED)),
            "cargo xtask baseline renamed",
        );
        assert_eq!(
            line,
            "the baseline of `renamed` does not fit the experiment: `kv-on`: not in the baseline (a new or renamed \
             variant); `cached`: in the baseline, no longer run (removed or renamed); run `cargo xtask baseline renamed`"
        );
    }

    #[test]
    fn an_added_variant_has_no_baseline_and_a_removed_one_vanished() {
        let added = format!("{RENAMED}[[variant]]\nname = \"pooled\"\noptimizations = {{ all = false }}\n");
        assert_eq!(misfits_after(&added), [v("pooled", "", MisfitKind::NoBaseline)]);
        assert_eq!(fit(&plan(RENAMED), &plan(&added)).len(), 1, "the other way round: vanished");
    }

    #[test]
    fn a_different_workload_names_the_field() {
        assert_eq!(
            misfits_after(&RENAMED.replace("max_new_tokens = 16", "max_new_tokens = 32")),
            [
                v("recompute", "", MisfitKind::Workload(vec!["max_new_tokens 16 -> 32".into()])),
                v("cached", "", MisfitKind::Workload(vec!["max_new_tokens 16 -> 32".into()])),
            ]
        );
        let prompt = RENAMED.replace(
            "optimizations = { kv-cache = true }",
            "optimizations = { kv-cache = true }\nworkload = { prompt = \"hi\" }",
        );
        assert_eq!(
            misfits_after(&prompt),
            [v(
                "cached",
                "",
                MisfitKind::Workload(vec!["prompt none -> hi".into(), "prompt_tokens 8 -> none".into()])
            )]
        );
    }

    #[test]
    fn different_toggles_name_the_toggle() {
        assert_eq!(
            misfits_after(
                &RENAMED.replace("{ kv-cache = true }", "{ kv-cache = true, tensor-pool = false }")
            ),
            [v("cached", "", MisfitKind::Toggles(vec!["tensor-pool on -> off".into()]))]
        );
    }

    #[test]
    fn a_different_sweep_point_is_named_for_every_variant() {
        let swept = |values: &str| {
            RENAMED.replacen("[[variant]]", &format!("[sweep]\nmax_new_tokens = {values}\n[[variant]]"), 1)
        };
        let before = plan(&swept("[8, 16]"));
        let now = plan(&swept("[8, 32]"));
        let got: Vec<(String, String, MisfitKind)> =
            fit(&now, &before).into_iter().map(|m| (m.variant, m.point, m.kind)).collect();
        assert_eq!(
            got,
            [
                v("recompute", "max_new_tokens=32", MisfitKind::NewPoint),
                v("cached", "max_new_tokens=32", MisfitKind::NewPoint),
                v("recompute", "max_new_tokens=16", MisfitKind::GonePoint),
                v("cached", "max_new_tokens=16", MisfitKind::GonePoint),
            ]
        );
        assert_eq!(fit(&now, &now), []);
    }

    #[test]
    fn another_reference_is_named() {
        let swapped = RENAMED
            .replace("reference = true\n", "")
            .replace("name = \"cached\"\n", "name = \"cached\"\nreference = true\n");
        assert_eq!(
            misfits_after(&swapped),
            [
                v("recompute", "", MisfitKind::Reference { now: false }),
                v("cached", "", MisfitKind::Reference { now: true }),
            ]
        );
    }
}
