//! Experiment files, `experiments/NAME.toml`: parsed strictly into an [`Experiment`].
//!
//! An unknown key, a value of the wrong type or an unknown optimization name is an error naming
//! the file, the line and column, and the valid names (serde's `deny_unknown_fields` lists them;
//! the toml crate gives the span). `experiments/README.md` documents every key.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use smallmind::Optimizations;
use std::collections::BTreeMap;
use std::path::Path;

/// One experiment, as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The question the experiment answers, in a sentence.
    pub description: String,
    /// Markdown the report quotes as it is (published figures to compare with, caveats).
    pub notes: Option<String>,
    pub hypothesis: Option<Hypothesis>,
    pub workload: Workload,
    #[serde(default)]
    pub measurement: Measurement,
    /// Values to sweep workload fields over; several fields give their cartesian product.
    #[serde(default)]
    pub sweep: Sweep,
    #[serde(default)]
    pub profiles: ProfileSpec,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// In the order written; exactly one is the reference.
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
}

/// A claim the report checks: the candidate's speedup over the reference on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hypothesis {
    /// The claim in the plan's words, quoted in the report.
    pub claim: String,
    pub metric: Metric,
    /// The variant the claim is about (default: every variant but the reference).
    pub candidate: Option<String>,
    /// The expected speedup range `[low, high]` (how many times better the candidate is).
    pub speedup: [f64; 2],
}

/// The metrics a report compares. Speedups are oriented so that above 1 is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    DecodeTokS,
    TtftMs,
    EndToEndTokS,
    PrefillTokS,
    AllocCountPerOp,
    AllocBytesPerOp,
    PeakHeapBytes,
    /// Time in the softmax spans per op (phase pass).
    SoftmaxMs,
    /// Time in the attention spans per op: scores + softmax + attention·V (phase pass).
    AttentionMs,
}

impl Metric {
    /// Every metric, in the order reports list them.
    pub const ALL: [Metric; 9] = [
        Metric::TtftMs,
        Metric::DecodeTokS,
        Metric::EndToEndTokS,
        Metric::PrefillTokS,
        Metric::AllocCountPerOp,
        Metric::AllocBytesPerOp,
        Metric::PeakHeapBytes,
        Metric::AttentionMs,
        Metric::SoftmaxMs,
    ];

    /// The field name, as in the results files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::DecodeTokS => "decode_tok_s",
            Metric::TtftMs => "ttft_ms",
            Metric::EndToEndTokS => "end_to_end_tok_s",
            Metric::PrefillTokS => "prefill_tok_s",
            Metric::AllocCountPerOp => "alloc_count_per_op",
            Metric::AllocBytesPerOp => "alloc_bytes_per_op",
            Metric::PeakHeapBytes => "peak_heap_bytes",
            Metric::SoftmaxMs => "softmax_ms",
            Metric::AttentionMs => "attention_ms",
        }
    }

    /// Whether a larger value is better (throughput) or worse (time, allocations).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::DecodeTokS | Metric::EndToEndTokS | Metric::PrefillTokS)
    }

    /// Whether every run gives exactly the same value (allocations are counted, not timed).
    pub fn is_exact(self) -> bool {
        matches!(self, Metric::AllocCountPerOp | Metric::AllocBytesPerOp | Metric::PeakHeapBytes)
    }
}

/// What one generate call does, as `smallmind bench` flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// A preset name or a model directory.
    pub model: String,
    /// Prompt text (encoded inside each op), or ...
    pub prompt: Option<String>,
    /// ... a seeded synthetic prompt of this many tokens.
    pub prompt_tokens: Option<usize>,
    pub max_new_tokens: usize,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default)]
    pub top_k: usize,
    #[serde(default = "one_f32")]
    pub top_p: f32,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "one")]
    pub threads: usize,
}

/// A partial [`Workload`]: a variant's overrides, or one point of a sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadPatch {
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub prompt_tokens: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
}

/// Values to sweep each workload field over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub model: Option<Vec<String>>,
    pub prompt: Option<Vec<String>>,
    pub prompt_tokens: Option<Vec<usize>>,
    pub max_new_tokens: Option<Vec<usize>>,
    pub temperature: Option<Vec<f32>>,
    pub top_k: Option<Vec<usize>>,
    pub top_p: Option<Vec<f32>>,
    pub seed: Option<Vec<u64>>,
    pub threads: Option<Vec<usize>>,
}

/// How much to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Measurement {
    /// Ops each process runs and discards before measuring.
    pub warmup: usize,
    /// Rounds at most: each runs every variant once, as its own process, in alternating order.
    /// Rounds are adaptive: a point stops once its hypothesis metric (decode_tok_s without a
    /// hypothesis) is settled for every candidate, after `min_iterations` rounds.
    pub iterations: usize,
    /// Rounds every point runs before it may stop (absent: 3; equal to `iterations`: fixed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_iterations: Option<usize>,
    /// Seconds of measuring per point after which no new round starts (absent: 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_seconds: Option<f64>,
    /// Measured ops per process (the run's value is their median).
    pub ops_per_run: usize,
    /// Ops per process timed phase by phase after the measured ones (0: no phase chart).
    pub phase_iterations: usize,
    /// Rounds under `--quick`.
    pub quick_iterations: usize,
}

impl Default for Measurement {
    fn default() -> Self {
        Measurement {
            warmup: 1,
            iterations: 10,
            min_iterations: None,
            budget_seconds: None,
            ops_per_run: 1,
            phase_iterations: 1,
            quick_iterations: 3,
        }
    }
}

impl Measurement {
    /// Rounds a point runs before it may stop early.
    pub fn min_rounds(&self) -> usize {
        self.min_iterations.unwrap_or(3).min(self.iterations)
    }

    /// Seconds of measuring per point after which no new round starts.
    pub fn budget(&self) -> f64 {
        self.budget_seconds.unwrap_or(60.0)
    }
}

/// Profiles captured per variant, in runs of their own after the measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSpec {
    /// pprof flame graph SVG and protobuf.
    pub flamegraph: bool,
    /// Chrome trace of one op.
    pub trace: bool,
    /// dhat heap profile of one op (builds the `dhat-heap` engine).
    pub heap: bool,
    /// The CPU profile's minimum duration.
    pub seconds: f64,
}

impl Default for ProfileSpec {
    fn default() -> Self {
        ProfileSpec { flamegraph: true, trace: false, heap: false, seconds: 2.0 }
    }
}

/// When a difference counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// A speedup whose 95% interval stays within 1 ± this is "no significant change".
    pub noise_floor: f64,
    /// A drop against the baseline beyond this fraction (its whole interval beyond it) is a
    /// regression: exit code 3.
    pub regression: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { noise_floor: 0.02, regression: 0.10 }
    }
}

/// One configuration of the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub reference: bool,
    /// Toggles; those not named are on, unless `all = false` comes first.
    #[serde(default)]
    pub optimizations: OptTable,
    /// Workload fields this variant changes.
    #[serde(default)]
    pub workload: WorkloadPatch,
}

/// `{ all = false, kv-cache = true }`: the four toggles by their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptTable {
    pub all: Option<bool>,
    #[serde(rename = "tensor-pool")]
    pub tensor_pool: Option<bool>,
    #[serde(rename = "batched-matmul")]
    pub batched_matmul: Option<bool>,
    #[serde(rename = "fused-softmax")]
    pub fused_softmax: Option<bool>,
    #[serde(rename = "kv-cache")]
    pub kv_cache: Option<bool>,
}

impl OptTable {
    /// The table that selects exactly `opts`.
    pub fn exactly(opts: Optimizations) -> OptTable {
        OptTable {
            all: Some(false),
            tensor_pool: Some(opts.tensor_pool),
            batched_matmul: Some(opts.batched_matmul),
            fused_softmax: Some(opts.fused_softmax),
            kv_cache: Some(opts.kv_cache),
        }
    }

    /// The optimizations this table selects.
    pub fn resolve(&self) -> Optimizations {
        let mut opts = if self.all == Some(false) { Optimizations::none() } else { Optimizations::all() };
        let set = |on: &mut bool, value: Option<bool>| {
            if let Some(v) = value {
                *on = v;
            }
        };
        set(&mut opts.tensor_pool, self.tensor_pool);
        set(&mut opts.batched_matmul, self.batched_matmul);
        set(&mut opts.fused_softmax, self.fused_softmax);
        set(&mut opts.kv_cache, self.kv_cache);
        opts
    }
}

fn one() -> usize {
    1
}

fn one_f32() -> f32 {
    1.0
}

/// The most points a sweep may have: more would be days of measuring, or a crafted file.
pub const MAX_POINTS: usize = 1000;

impl Sweep {
    /// The swept fields with their values, in declaration order; fields without values are left out.
    fn axes(&self) -> Vec<(String, Vec<serde_json::Value>)> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::Array(values) if !values.is_empty() => Some((k, values)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One point of the sweep: the swept fields' values, and a label such as `max_new_tokens=64`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub label: String,
    /// Field name -> value, as JSON.
    pub values: BTreeMap<String, serde_json::Value>,
}

impl Experiment {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Experiment> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Experiment::parse(&text, &path.display().to_string())
    }

    /// Parses and validates an experiment's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Experiment> {
        let experiment: Experiment = toml::from_str(text).map_err(|e| {
            let position = e.span().map(|span| line_col(text, span.start)).map(|(l, c)| format!(":{l}:{c}"));
            anyhow::anyhow!(
                "{origin}{}: {}",
                position.unwrap_or_default(),
                e.message().trim().replace('\n', " ")
            )
        })?;
        experiment.validate().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(experiment)
    }

    /// Checks what the types cannot: one reference, distinct names, sensible numbers, and a
    /// sweep of at most [`MAX_POINTS`] points.
    pub fn validate(&self) -> Result<()> {
        let references: Vec<&str> =
            self.variants.iter().filter(|v| v.reference).map(|v| v.name.as_str()).collect();
        if self.variants.len() < 2 {
            bail!("an experiment compares at least two [[variant]]s");
        }
        if references.len() != 1 {
            bail!(
                "exactly one [[variant]] has `reference = true` (found {}: {:?})",
                references.len(),
                references
            );
        }
        let mut names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!("two variants are named `{}`", w[0]);
        }
        if let Some(v) = self.variants.iter().find(|v| !is_valid_name(&v.name)) {
            bail!("variant name `{}`: use letters, digits, `-`, `_` and `+` only (it names files)", v.name);
        }
        if let Some(h) = &self.hypothesis {
            if let Some(c) = &h.candidate
                && !self.variants.iter().any(|v| &v.name == c && !v.reference)
            {
                bail!("hypothesis.candidate `{c}` is not a non-reference variant ({})", names.join(", "));
            }
            if !(h.speedup[0] > 0.0 && h.speedup[0] <= h.speedup[1]) {
                bail!("hypothesis.speedup must be [low, high] with 0 < low <= high");
            }
        }
        let m = &self.measurement;
        if m.iterations == 0 || m.ops_per_run == 0 || m.quick_iterations == 0 || m.min_iterations == Some(0) {
            bail!(
                "measurement.iterations, min_iterations, ops_per_run and quick_iterations must be at least 1"
            );
        }
        if m.budget_seconds.is_some_and(|b| !(b.is_finite() && b > 0.0)) {
            bail!("measurement.budget_seconds must be a number of seconds above 0");
        }
        if !(self.profiles.seconds.is_finite() && self.profiles.seconds > 0.0) {
            bail!("profiles.seconds must be a positive number of seconds");
        }
        let points = self.sweep.axes().iter().try_fold(1usize, |n, (_, values)| n.checked_mul(values.len()));
        if points.is_none_or(|n| n > MAX_POINTS) {
            bail!("the sweep has more than {MAX_POINTS} points (the product of its value lists); split it");
        }
        // Checked where they are written: a NaN would not survive the workload's assembly.
        let written = |base: f32, swept: &Option<Vec<f32>>, patch: fn(&WorkloadPatch) -> Option<f32>| {
            std::iter::once(base)
                .chain(swept.iter().flatten().copied())
                .chain(self.variants.iter().filter_map(move |v| patch(&v.workload)))
                .collect::<Vec<f32>>()
        };
        if !written(self.workload.temperature, &self.sweep.temperature, |p| p.temperature)
            .iter()
            .all(|t| t.is_finite() && *t >= 0.0)
        {
            bail!("temperature must be a number >= 0 (0: greedy)");
        }
        if !written(self.workload.top_p, &self.sweep.top_p, |p| p.top_p).iter().all(|p| *p > 0.0 && *p <= 1.0)
        {
            bail!("top_p must be in (0, 1]");
        }
        let t = &self.thresholds;
        if !(0.0..1.0).contains(&t.noise_floor) || !(0.0..1.0).contains(&t.regression) {
            bail!("thresholds.noise_floor and thresholds.regression are fractions in [0, 1)");
        }
        for point in self.sweep_points() {
            for variant in &self.variants {
                let w = self.workload_for(variant, &point)?;
                if w.prompt.is_some() == w.prompt_tokens.is_some() {
                    bail!(
                        "variant `{}`{}: give exactly one of workload.prompt and workload.prompt_tokens",
                        variant.name,
                        at(&point)
                    );
                }
                if w.max_new_tokens == 0 || w.threads == 0 {
                    bail!(
                        "variant `{}`{}: max_new_tokens and threads must be at least 1",
                        variant.name,
                        at(&point)
                    );
                }
            }
        }
        Ok(())
    }

    /// This experiment's workload, fixed at the reference variant's workload at the last sweep
    /// point, with `variants` (name, optimizations) instead of its own; no hypothesis, no
    /// profiles. The first variant is the reference. (`calibrate` and `bisect` run these.)
    pub fn derived(&self, variants: &[(String, Optimizations)]) -> Result<Experiment> {
        let point = self.sweep_points().pop().expect("at least one point");
        let workload = self.workload_for(self.reference(), &point)?;
        Ok(Experiment {
            hypothesis: None,
            notes: None,
            workload,
            sweep: Sweep::default(),
            profiles: ProfileSpec { flamegraph: false, trace: false, heap: false, ..ProfileSpec::default() },
            variants: variants
                .iter()
                .enumerate()
                .map(|(i, (name, opts))| Variant {
                    name: name.clone(),
                    reference: i == 0,
                    optimizations: OptTable::exactly(*opts),
                    workload: WorkloadPatch::default(),
                })
                .collect(),
            ..self.clone()
        })
    }

    /// The reference variant.
    pub fn reference(&self) -> &Variant {
        self.variants.iter().find(|v| v.reference).expect("validated: one reference")
    }

    /// The sweep's points in order (the last field varies fastest); one empty point without a sweep.
    pub fn sweep_points(&self) -> Vec<SweepPoint> {
        let mut points = vec![SweepPoint::default()];
        for (field, values) in self.sweep.axes() {
            points = points
                .into_iter()
                .flat_map(|p| {
                    let field = field.clone();
                    values.iter().map(move |v| {
                        let mut next = p.clone();
                        next.values.insert(field.clone(), v.clone());
                        next
                    })
                })
                .collect();
        }
        for p in &mut points {
            p.label =
                p.values.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect::<Vec<_>>().join(", ");
        }
        points
    }

    /// The workload of `variant` at `point`: the base, the sweep's values, then the variant's overrides.
    pub fn workload_for(&self, variant: &Variant, point: &SweepPoint) -> Result<Workload> {
        let mut value = serde_json::to_value(&self.workload)?;
        let object = value.as_object_mut().expect("a struct serialises to an object");
        for (k, v) in &point.values {
            object.insert(k.clone(), v.clone());
        }
        if let serde_json::Value::Object(patch) = serde_json::to_value(&variant.workload)? {
            for (k, v) in patch.into_iter().filter(|(_, v)| !v.is_null()) {
                // A prompt given one way replaces the other way.
                match k.as_str() {
                    "prompt" => object.insert("prompt_tokens".into(), serde_json::Value::Null),
                    "prompt_tokens" => object.insert("prompt".into(), serde_json::Value::Null),
                    _ => None,
                };
                object.insert(k, v);
            }
        }
        Ok(serde_json::from_value(value)?)
    }
}

/// `" at max_new_tokens=64"`, or nothing without a sweep.
pub fn at(point: &SweepPoint) -> String {
    if point.label.is_empty() { String::new() } else { format!(" at {}", point.label) }
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

/// Whether `name` may name a variant: letters, digits, `-`, `_` and `+` (it names files; `bisect`
/// names its toggle sets like `tensor-pool+kv-cache`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c))
}

/// 1-based line and column of byte `offset` in `text` (an offset inside a character counts as
/// that character).
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
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
        assert!(on.kv_cache && !on.tensor_pool && !on.batched_matmul && !on.fused_softmax);
        let points = e.sweep_points();
        let labels: Vec<&str> = points.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "max_new_tokens=8, threads=1",
                "max_new_tokens=8, threads=2",
                "max_new_tokens=16, threads=1",
                "max_new_tokens=16, threads=2"
            ]
        );
        let w = e.workload_for(&e.variants[1], &points[3]).unwrap();
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
