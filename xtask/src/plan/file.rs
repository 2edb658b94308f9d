//! Experiment files, `experiments/NAME.toml`: parsed strictly into an [`Experiment`], the file as
//! written (stored in every results file as `spec`). [`super::Plan`] resolves it into what runs.
//!
//! An unknown key, a value of the wrong type or an unknown optimization name is an error naming
//! the file, the line and column, and the valid names (serde's `deny_unknown_fields` lists them;
//! the toml crate gives the span). `experiments/README.md` documents every key.

use super::toggles::OptTable;
use super::workload::{Sweep, Workload, WorkloadPatch};
use crate::metrics::Metric;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use smallmind::Optimizations;
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
    /// CPU profile runs per variant, interleaved between the variants (default
    /// [`DEFAULT_CPU_PROFILES`]): the profile diffs judge a frame's change across them, and need
    /// two or more a side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
}

/// CPU profile runs per variant when the file does not say.
pub const DEFAULT_CPU_PROFILES: usize = 4;

impl ProfileSpec {
    /// CPU profile runs per variant.
    pub fn cpu_profiles(&self) -> usize {
        self.repeats.unwrap_or(DEFAULT_CPU_PROFILES)
    }
}

impl Default for ProfileSpec {
    fn default() -> Self {
        ProfileSpec { flamegraph: true, trace: false, heap: false, seconds: 2.0, repeats: None }
    }
}

/// When a difference counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// A speedup whose 95% interval stays within 1 ± this is "no significant change".
    pub noise_floor: f64,
    /// A drop against the baseline beyond this fraction (its whole interval beyond it) is a
    /// regression: exit code 3. A timed figure with a calibrated noise floor is judged by its
    /// cut instead (`analysis::noise`), which may lie below this.
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

/// The most points a sweep may have: more would be days of measuring, or a crafted file.
pub const MAX_POINTS: usize = 1000;

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
        self.validate_variants()?;
        self.validate_numbers()?;
        let points = self.sweep.axes().iter().try_fold(1usize, |n, values| n.checked_mul(values.len()));
        if points.is_none_or(|n| n > MAX_POINTS) {
            bail!("the sweep has more than {MAX_POINTS} points (the product of its value lists); split it");
        }
        for point in self.sweep_points() {
            for variant in &self.variants {
                let w = self.workload_for(variant, &point);
                if w.prompt.is_some() == w.prompt_tokens.is_some() {
                    bail!(
                        "variant `{}`{}: give exactly one of workload.prompt and workload.prompt_tokens",
                        variant.name,
                        super::at(&point.point)
                    );
                }
                if w.max_new_tokens == 0 || w.threads == 0 {
                    bail!(
                        "variant `{}`{}: max_new_tokens and threads must be at least 1",
                        variant.name,
                        super::at(&point.point)
                    );
                }
            }
        }
        Ok(())
    }

    /// One reference, names used once each and fit for file names, a hypothesis about a variant.
    fn validate_variants(&self) -> Result<()> {
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
        Ok(())
    }

    /// Rounds, seconds, sampling settings and thresholds a run can use.
    fn validate_numbers(&self) -> Result<()> {
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
        if self.profiles.repeats.is_some_and(|n| !(1..=50).contains(&n)) {
            bail!("profiles.repeats must be between 1 and 50 CPU profile runs per variant");
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
        Ok(())
    }

    /// This experiment's workload, fixed at the reference variant's workload at the last sweep
    /// point, with `variants` (name, optimizations) instead of its own; no hypothesis, no
    /// profiles. The first variant is the reference. (`calibrate` and `bisect` run these.)
    pub fn derived(&self, variants: &[(String, Optimizations)]) -> Experiment {
        let point = self.sweep_points().pop().expect("at least one point");
        let workload = self.workload_for(self.reference(), &point);
        Experiment {
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
        }
    }

    /// The reference variant.
    pub fn reference(&self) -> &Variant {
        self.variants.iter().find(|v| v.reference).expect("validated: one reference")
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
