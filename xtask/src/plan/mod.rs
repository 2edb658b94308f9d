//! From an experiment file to what runs: [`file`] parses `experiments/NAME.toml` strictly into an
//! [`Experiment`] (the file as written, stored in every results file), and [`Plan`] resolves it
//! once into the concrete workload and toggles of every variant at every sweep point, which the
//! runner runs and a baseline must fit.

pub mod file;
pub mod toggles;
pub mod workload;

pub use file::{
    Experiment, Hypothesis, MAX_POINTS, Measurement, ProfileSpec, Thresholds, Variant, is_valid_name,
};
pub use toggles::OptTable;
pub use workload::{Sweep, Workload, WorkloadPatch};

use serde::{Deserialize, Serialize};
use smallmind::Optimizations;
use std::collections::BTreeMap;

/// One point of the sweep as results files record it: the swept fields' values, and a label such
/// as `max_new_tokens=64` (empty without a sweep).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub label: String,
    /// Field name -> value, as JSON.
    pub values: BTreeMap<String, serde_json::Value>,
}

/// A sweep point as planned: the point, and the workload fields it sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointPlan {
    pub point: SweepPoint,
    pub patch: WorkloadPatch,
}

impl Experiment {
    /// The sweep's points in order: fields by name, the last varying fastest; one empty point
    /// without a sweep.
    pub fn sweep_points(&self) -> Vec<PointPlan> {
        let mut axes = self.sweep.axes();
        // By field name, as the labels list them.
        axes.sort_by(|a, b| a[0].1.cmp(&b[0].1));
        let mut points = vec![PointPlan::default()];
        for values in axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |(patch, field, json)| {
                        let mut next = p.clone();
                        next.point.values.insert(field.clone(), json.clone());
                        next.patch = next.patch.then(patch);
                        next
                    })
                })
                .collect();
        }
        for p in &mut points {
            p.point.label = p
                .point
                .values
                .iter()
                .map(|(k, v)| format!("{k}={}", plain(v)))
                .collect::<Vec<_>>()
                .join(", ");
        }
        points
    }

    /// The workload of `variant` at `point`: the base, the sweep's values, then the variant's
    /// overrides.
    pub fn workload_for(&self, variant: &Variant, point: &PointPlan) -> Workload {
        self.workload.patched(&point.patch).patched(&variant.workload.as_override())
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

/// An experiment resolved for running: every point, and at each every variant's concrete
/// workload and toggles, in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The experiment's name (its file's stem).
    pub name: String,
    pub experiment: Experiment,
    pub points: Vec<PlannedPoint>,
    pub outputs: OutputGate,
}

/// Which variants must generate the same tokens before any timing counts.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputGate {
    /// Every variant the reference's tokens.
    Identical,
    /// Each variant the tokens of the first variant of its group (`groups[i]` is variant `i`'s
    /// group); the groups may differ from the reference's, and where they do is recorded
    /// (`compare --allow-output-change`: the base's variants one group, the head's another).
    WithinGroups(Vec<usize>),
}

/// Every variant at one sweep point.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPoint {
    pub point: SweepPoint,
    pub variants: Vec<Measured>,
}

impl Plan {
    /// Resolves `experiment` (already validated).
    pub fn new(name: &str, experiment: Experiment) -> Plan {
        let points = experiment
            .sweep_points()
            .into_iter()
            .map(|p| PlannedPoint {
                variants: experiment
                    .variants
                    .iter()
                    .map(|v| Measured {
                        point: p.point.label.clone(),
                        variant: v.name.clone(),
                        reference: v.reference,
                        workload: experiment.workload_for(v, &p),
                        optimizations: v.optimizations.resolve(),
                    })
                    .collect(),
                point: p.point,
            })
            .collect();
        Plan { name: name.to_string(), experiment, points, outputs: OutputGate::Identical }
    }

    /// Every variant at every point, in order.
    pub fn measured(&self) -> Vec<Measured> {
        self.points.iter().flat_map(|p| p.variants.iter().cloned()).collect()
    }

    /// The index of the reference variant (the same at every point).
    pub fn reference(&self) -> usize {
        self.experiment.variants.iter().position(|v| v.reference).expect("validated: one reference")
    }
}

/// `" at max_new_tokens=64"`, or nothing without a sweep.
pub fn at(point: &SweepPoint) -> String {
    at_label(&point.label)
}

/// `" at LABEL"`, or nothing for an empty label.
pub fn at_label(label: &str) -> String {
    if label.is_empty() { String::new() } else { format!(" at {label}") }
}

/// A JSON value as plain text (strings without quotes).
pub fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
description = "d"
[workload]
model = "tiny"
prompt_tokens = 8
max_new_tokens = 16
[sweep]
max_new_tokens = [8, 16]
threads = [1, 2]
[[variant]]
name = "off"
reference = true
optimizations = { all = false }
[[variant]]
name = "on"
optimizations = { all = false, kv-cache = true }
workload = { prompt = "hello" }
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let e = Experiment::parse(GOOD, "good.toml").unwrap();
        assert_eq!(e.reference().name, "off");
        assert_eq!(e.measurement, Measurement::default());
        assert_eq!(e.variants[0].optimizations.resolve(), Optimizations::none());
        let on = e.variants[1].optimizations.resolve();
        let mut only_the_cache = Optimizations::none();
        only_the_cache.set(smallmind::Optimization::KvCache, true);
        assert_eq!(on, only_the_cache);
        let points = e.sweep_points();
        let labels: Vec<&str> = points.iter().map(|p| p.point.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "max_new_tokens=8, threads=1",
                "max_new_tokens=8, threads=2",
                "max_new_tokens=16, threads=1",
                "max_new_tokens=16, threads=2"
            ]
        );
        let w = e.workload_for(&e.variants[1], &points[3]);
        assert_eq!(
            (w.max_new_tokens, w.threads, w.prompt.as_deref(), w.prompt_tokens),
            (16, 2, Some("hello"), None)
        );
        assert_eq!(w.top_p, 1.0);
    }

    fn error_of(text: &str) -> String {
        Experiment::parse(text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_the_line_column_and_valid_keys() {
        let err = error_of(
            &GOOD.replace("max_new_tokens = 16\n[sweep]", "max_new_tokens = 16\nmax_new_token = 3\n[sweep]"),
        );
        assert!(err.starts_with("x.toml:7:1: unknown field `max_new_token`"), "{err}");
        assert!(err.contains("expected one of") && err.contains("`max_new_tokens`"), "{err}");
    }

    #[test]
    fn unknown_optimizations_list_the_valid_names() {
        let err = error_of(&GOOD.replace("kv-cache = true", "kv-cash = true"));
        assert!(err.starts_with("x.toml:16:32:"), "{err}");
        assert!(
            err.contains("unknown field `kv-cash`")
                && err.contains("`kv-cache`")
                && err.contains("`tensor-pool`"),
            "{err}"
        );
    }

    #[test]
    fn bad_types_name_the_line_and_column() {
        let err = error_of(&GOOD.replace("max_new_tokens = 16\n", "max_new_tokens = \"many\"\n"));
        assert!(err.starts_with("x.toml:6:18:") && err.contains("invalid type"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_file() {
        assert!(
            error_of(&GOOD.replace("reference = true\n", ""))
                .contains("exactly one [[variant]] has `reference = true`")
        );
        assert!(
            error_of(&GOOD.replace("name = \"on\"", "name = \"off\""))
                .contains("two variants are named `off`")
        );
        let both = GOOD
            .replace("prompt_tokens = 8\n", "prompt_tokens = 8\nprompt = \"x\"\n")
            .replace("workload = { prompt = \"hello\" }\n", "");
        assert!(error_of(&both).contains("exactly one of workload.prompt and workload.prompt_tokens"));
    }

    #[test]
    fn numbers_a_run_cannot_use_are_refused() {
        let with = |table: &str| GOOD.replace("[sweep]", &format!("{table}\n[sweep]"));
        assert!(error_of(&with("temperature = nan")).contains("temperature must be a number >= 0"));
        assert!(error_of(&with("temperature = -1.0")).contains("temperature must be a number >= 0"));
        assert!(error_of(&with("top_p = 0.0")).contains("top_p must be in (0, 1]"));
        assert!(error_of(&with("top_p = inf")).contains("top_p must be in (0, 1]"));
        let seconds = format!("{GOOD}[profiles]\nseconds = -inf\n");
        assert!(error_of(&seconds).contains("profiles.seconds must be a positive number"));
        // A sweep whose product explodes is refused before a point is made.
        let values = format!("[{}]", (1..=40).map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
        let huge = GOOD.replace(
            "threads = [1, 2]",
            &format!("threads = {values}\ntop_k = {values}\nseed = {values}\nprompt_tokens = {values}"),
        );
        assert!(error_of(&huge).contains("the sweep has more than 1000 points"), "{}", error_of(&huge));
    }
}
