//! `reports/NAME/results.json` and `baselines/NAME.json`: every raw sample of an experiment, with
//! the experiment as run, the environment and the command. Reports are derived from this file
//! alone; nothing in a report is typed by hand.

use crate::error::{Error, PathContext};
use crate::metrics::Metric;
use crate::plan::{Experiment, Measured, SweepPoint, Workload, at_label, is_valid_name};
use crate::runner::revision::Revision;
use serde::{Deserialize, Serialize};
use smallmind::Optimizations;
use smallmind::bench::env::Environment;
use smallmind::bench::machine::MachineReport;
use smallmind::bench::results::{Iteration, PhaseReport, PoolReport};

/// The version of this layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Reads a results or baseline file, checking its schema version and everything the reports
/// rely on ([`ExperimentResults::validate`]). A file that is not readable as such is a usage
/// error (exit 2) naming the file, and where the JSON parser says, the line and column.
pub fn read(path: &std::path::Path) -> anyhow::Result<ExperimentResults> {
    let bytes = std::fs::read(path).at(path)?;
    parse(&bytes, &path.display().to_string())
}

/// [`read`] on bytes already read; `origin` names them in errors.
pub fn parse(bytes: &[u8], origin: &str) -> anyhow::Result<ExperimentResults> {
    let invalid = |what: String| Error::Usage(format!("{origin}: {what}"));
    let value = serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| invalid(format!("not an experiment results file: {e}")))?;
    let version = value.get("schema_version").and_then(|s| s.as_u64());
    if version != Some(u64::from(SCHEMA_VERSION)) {
        return Err(invalid(format!(
            "schema version {}, this harness reads {SCHEMA_VERSION}; re-run the experiment (and re-save the baseline)",
            version.map_or("missing".to_string(), |v| v.to_string())
        ))
        .into());
    }
    no_negative_numbers(&value, "").map_err(invalid)?;
    let results: ExperimentResults =
        serde_json::from_value(value).map_err(|e| invalid(format!("not an experiment results file: {e}")))?;
    results.validate().map_err(invalid)?;
    Ok(results)
}

/// One run of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    pub schema_version: u32,
    pub experiment: String,
    pub spec: Experiment,
    /// The command that reproduces this run.
    pub command: String,
    /// UTC, RFC 3339.
    pub started: String,
    pub finished: String,
    /// Rounds actually run per point (fewer under `--quick`).
    pub rounds: usize,
    /// The engine's environment, from the first run.
    pub environment: Environment,
    pub points: Vec<PointResults>,
    pub profiles: Vec<ProfileRecord>,
    /// What a `cargo xtask compare` run compared; absent for every other run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<CompareRecord>,
}

/// The two revisions of a `compare` run, and the experiment whose workload both ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRecord {
    /// The experiment file's name (`smoke`).
    pub experiment: String,
    pub base: Revision,
    pub head: Revision,
}

/// Every variant at one sweep point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResults {
    pub point: SweepPoint,
    pub variants: Vec<VariantResults>,
    pub correctness: Correctness,
    /// Why this point's rounds stopped when they were adaptive ("settled: ... after 3 rounds",
    /// or the budget or the maximum); absent for a fixed number of rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Rounds measured a second time because another process (or the hypervisor) took CPU time
    /// from one of their runs; the second attempt is what `variants` holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rerun: Vec<usize>,
}

/// The runs of one variant at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResults {
    pub name: String,
    pub reference: bool,
    pub optimizations: Optimizations,
    pub workload: Workload,
    pub runs: Vec<RunRecord>,
}

/// One process: the measured ops it ran, and what it reported besides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The round, from 0; each round ran every variant once.
    pub round: usize,
    /// This run's place in its round's order (the order alternates between rounds).
    pub position: usize,
    pub iterations: Vec<Iteration>,
    pub phases: Option<PhaseReport>,
    pub pool: PoolReport,
    pub digest: String,
    /// The probe, contamination and roofline of this process (absent in files written before
    /// they were recorded, and for `smallmind bench --no-probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineReport>,
}

/// The correctness check at one point: every variant generated the reference's ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correctness {
    pub reference_digest: String,
    pub generated_tokens: usize,
    /// Variant -> its digest (all equal to the reference's, but for the variants of
    /// `divergences`).
    pub digests: Vec<(String, String)>,
    /// Variants allowed to generate other tokens than the reference (`compare
    /// --allow-output-change`: the head's against the base's), where they first differ. Empty
    /// everywhere else: a variant with other tokens stops the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divergences: Vec<Divergence>,
}

/// Where a variant's generated tokens first differ from the reference's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub variant: String,
    /// Index into the generated tokens.
    pub position: usize,
    /// The reference's token there (`None`: the reference stopped before).
    pub expected: Option<u32>,
    /// The variant's token there (`None`: the variant stopped before).
    pub got: Option<u32>,
}

impl Divergence {
    /// Where `ids` first differ from the reference's `expected`, if they do.
    pub fn between(variant: &str, expected: &[u32], ids: &[u32]) -> Option<Divergence> {
        if ids == expected {
            return None;
        }
        let position =
            expected.iter().zip(ids).position(|(a, b)| a != b).unwrap_or(expected.len().min(ids.len()));
        Some(Divergence {
            variant: variant.to_string(),
            position,
            expected: expected.get(position).copied(),
            got: ids.get(position).copied(),
        })
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = |t: Option<u32>| t.map_or("the end".to_string(), |t| format!("token {t}"));
        write!(
            f,
            "`{}` first differs at position {}: {} instead of {}",
            self.variant,
            self.position,
            token(self.got),
            token(self.expected)
        )
    }
}

/// A profile captured for a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub variant: String,
    pub point: String,
    /// `flamegraph`, `pprof`, `folded` (collapsed stacks, one file per profile run), `trace` or
    /// `heap`.
    pub kind: String,
    /// Relative to the report's folder when committed, else relative to the workspace root.
    pub path: String,
    pub bytes: u64,
    /// Whether the file sits beside the report (under 1 MB) or stayed under `target/`.
    pub beside_report: bool,
    /// The profile run's wall time per op, in milliseconds (collapsed stacks: what their samples
    /// cover, to turn shares into time per op).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_per_op: Option<f64>,
    /// The ops a heap profile's pass ran (to give its counts per op; absent in results written
    /// before the heap diffs, which then have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<usize>,
}

impl ExperimentResults {
    /// These results with `more`'s rounds added after their own (a second run of the same
    /// experiment, numbered on), so that comparisons use the samples of both.
    pub fn with_rounds_of(mut self, more: ExperimentResults) -> ExperimentResults {
        let offset = self.rounds;
        for (point, extra) in self.points.iter_mut().zip(more.points) {
            for (variant, extra) in point.variants.iter_mut().zip(extra.variants) {
                variant
                    .runs
                    .extend(extra.runs.into_iter().map(|run| RunRecord { round: run.round + offset, ..run }));
            }
        }
        self.rounds += more.rounds;
        self.finished = more.finished;
        self
    }

    /// What every variant ran at every point.
    pub fn measured(&self) -> Vec<Measured> {
        self.points.iter().flat_map(PointResults::measured).collect()
    }

    /// What every report relies on, beyond the JSON's types: the experiment as run is valid, at
    /// least one point, exactly one reference per point, variants named once each, and every
    /// figure finite. A file that fails is a crafted or damaged one; the error says where.
    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate().map_err(|e| format!("spec: {e}"))?;
        if self.points.is_empty() {
            return Err("no points: a results file holds at least one".into());
        }
        for p in &self.points {
            let at = at_label(&p.point.label);
            let references = p.variants.iter().filter(|v| v.reference).count();
            if references != 1 {
                return Err(format!("{references} reference variants{at}; a point has exactly one"));
            }
            for (i, v) in p.variants.iter().enumerate() {
                if !is_valid_name(&v.name) {
                    return Err(format!(
                        "variant name `{}`{at}: letters, digits, `-`, `_` and `+` only",
                        v.name
                    ));
                }
                if p.variants[..i].iter().any(|w| w.name == v.name) {
                    return Err(format!("two variants are named `{}`{at}", v.name));
                }
                for run in &v.runs {
                    if let Some(metric) =
                        Metric::ALL.into_iter().find(|&m| run.value(m).is_some_and(|x| !x.is_finite()))
                    {
                        return Err(format!(
                            "`{}`{at} round {}: {} is not finite",
                            v.name,
                            run.round,
                            metric.name()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// An error naming the first negative number in `value` (a results file holds none: times,
/// rates, counts and settings are all at least 0), by its path such as `points[0].rounds`.
pub fn no_negative_numbers(value: &serde_json::Value, path: &str) -> Result<(), String> {
    match value {
        serde_json::Value::Number(n) if n.as_f64().is_some_and(|x| x < 0.0) => {
            Err(format!("{path} is negative ({n}); a results file holds no negative number"))
        }
        serde_json::Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, v)| no_negative_numbers(v, &format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            no_negative_numbers(v, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") })
        }),
        _ => Ok(()),
    }
}

impl RunRecord {
    /// This run's value of `metric`: the median of its ops for times and throughputs, the mean
    /// for allocations (SmallMind's per-op figure), the highest peak for the heap.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let its = &self.iterations;
        let median_of = |f: fn(&Iteration) -> Option<f64>| {
            let xs: Vec<f64> = its.iter().filter_map(f).collect();
            (!xs.is_empty()).then(|| crate::stats::median(&xs))
        };
        // Summed as floats: counts read from a file may be anything up to u64::MAX.
        let mean_of = |f: fn(&Iteration) -> u64| {
            (!its.is_empty()).then(|| its.iter().map(|i| f(i) as f64).sum::<f64>() / its.len() as f64)
        };
        match metric {
            Metric::DecodeTokS => median_of(|i| i.decode_tok_s),
            Metric::TtftMs => median_of(|i| Some(i.ttft_ms)),
            Metric::EndToEndTokS => median_of(|i| Some(i.end_to_end_tok_s)),
            Metric::PrefillTokS => median_of(|i| Some(i.prefill_tok_s)),
            Metric::AllocCountPerOp => mean_of(|i| i.alloc_count),
            Metric::AllocBytesPerOp => mean_of(|i| i.alloc_bytes),
            Metric::PeakHeapBytes => its.iter().map(|i| i.peak_heap_bytes as f64).reduce(f64::max),
            Metric::SoftmaxMs => self.phase_ms(&["softmax"]),
            Metric::AttentionMs => self.phase_ms(&smallmind::bench::phases::ATTENTION),
        }
    }

    /// Milliseconds per op in the named phases, from this run's phase pass.
    fn phase_ms(&self, names: &[&str]) -> Option<f64> {
        let phases = self.phases.as_ref()?;
        Some(phases.phases.iter().filter(|p| names.contains(&p.name.as_str())).map(|p| p.ms_per_op).sum())
    }
}

impl VariantResults {
    /// The value of `metric` in every run, in round order.
    pub fn values(&self, metric: Metric) -> Vec<f64> {
        self.runs.iter().filter_map(|r| r.value(metric)).collect()
    }

    /// `(round, value)` for every run that has the metric.
    pub fn by_round(&self, metric: Metric) -> Vec<(usize, f64)> {
        self.runs.iter().filter_map(|r| r.value(metric).map(|v| (r.round, v))).collect()
    }
}

impl PointResults {
    /// What the variants of this point ran.
    pub fn measured(&self) -> impl Iterator<Item = Measured> + '_ {
        self.variants.iter().map(|v| Measured {
            point: self.point.label.clone(),
            variant: v.name.clone(),
            reference: v.reference,
            workload: v.workload.clone(),
            optimizations: v.optimizations,
        })
    }

    /// The reference variant's results.
    pub fn reference(&self) -> &VariantResults {
        self.variants.iter().find(|v| v.reference).expect("one reference per point")
    }

    /// `(reference, candidate)` values of `metric` from the rounds both ran.
    pub fn pairs(&self, candidate: &VariantResults, metric: Metric) -> Vec<(f64, f64)> {
        pairs_between(self.reference(), candidate, metric)
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&VariantResults> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// `(a, b)` values of `metric` from the rounds both ran.
pub fn pairs_between(a: &VariantResults, b: &VariantResults, metric: Metric) -> Vec<(f64, f64)> {
    let a = a.by_round(metric);
    b.by_round(metric)
        .into_iter()
        .filter_map(|(round, y)| a.iter().find(|(r, _)| *r == round).map(|&(_, x)| (x, y)))
        .collect()
}
