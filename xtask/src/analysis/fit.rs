//! Whether a stored baseline **fits** a run: the same variants at the same sweep points, each
//! with the same workload, toggles and role. Whatever does not fit is a [`Misfit`], named per
//! variant and never compared; a baseline that does not fit is never a pass. A
//! [`crate::plan::Plan`] gives what an experiment file will run, so that `check` and
//! `experiment` can refuse a baseline that does not fit before measuring anything.

use crate::metrics::Metric;
use crate::plan::{Measured, at_label};
use smallmind::Optimization;
use std::fmt;

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
        let fields = n.workload.changes_from(&b.workload);
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

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `renamed.toml` of the bug log's harness cases: `cached` against `recompute`.
    const RENAMED: &str = include_str!("../../test_data/two_variants.toml");

    fn plan(text: &str) -> Vec<Measured> {
        crate::plan::Plan::new("x", crate::plan::Experiment::parse(text, "x.toml").unwrap()).measured()
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
