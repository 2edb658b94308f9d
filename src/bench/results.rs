//! The results file `smallmind bench --out` writes: schema-versioned, raw samples first, every
//! field name carrying its unit (`_ms`, `_tok_s`, `_bytes`, `_count`). The harness and the reports
//! use these same names. Bump [`SCHEMA_VERSION`] on any change a reader would notice.

use super::env::Environment;
use super::machine::MachineReport;
use super::stats::Stat;
use crate::optimizations::Optimizations;
use crate::pool::PoolStats;
use crate::sampler::SamplingParams;
use serde::{Deserialize, Serialize};

/// The version of this layout.
pub const SCHEMA_VERSION: u32 = 1;

/// One `smallmind bench` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    pub schema_version: u32,
    pub workload: Workload,
    /// One entry per measured iteration (warm-up excluded), in order.
    pub iterations: Vec<Iteration>,
    pub summary: Summary,
    pub pool: PoolReport,
    /// Absent when `--phase-iterations 0`.
    pub phases: Option<PhaseReport>,
    pub output: Output,
    pub profiles: Profiles,
    pub instrumentation: Instrumentation,
    pub environment: Environment,
    /// The capability probe, the machine's contamination and the roofline fractions; absent
    /// with `--no-probe` and in files written before they were recorded.
    #[serde(default)]
    pub machine: Option<MachineReport>,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The `--model` argument: a preset name or a directory.
    pub model: String,
    pub model_parameters: u64,
    pub prompt: PromptSpec,
    /// Prompt length after tokenization.
    pub prompt_tokens: usize,
    pub max_new_tokens: usize,
    pub sampling: SamplingParams,
    pub threads: usize,
    pub optimizations: Optimizations,
    pub warmup: usize,
    pub iterations: usize,
}

/// The prompt as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PromptSpec {
    /// Text, encoded by the model's tokenizer inside each timed operation.
    Text { text: String },
    /// `tokens` seeded pseudo-random ids (no encoding step).
    Synthetic { tokens: usize, seed: u64 },
}

/// One operation: one generate call, SmallMind's "op".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Iteration {
    /// Start of the operation (prompt encoding included) to the first sampled token.
    pub ttft_ms: f64,
    /// Prompt encoding (0 for a synthetic prompt).
    pub encode_ms: f64,
    /// The generate call to the first sampled token: the prompt's forward pass and one sampling.
    pub prefill_ms: f64,
    /// Prompt tokens / prefill time.
    pub prefill_tok_s: f64,
    /// SmallMind's "steady" figure: (n - 1) / (t_last - t_first); absent for one token.
    pub decode_tok_s: Option<f64>,
    /// Generated tokens / whole operation.
    pub end_to_end_tok_s: f64,
    /// The whole operation.
    pub total_ms: f64,
    pub generated_tokens: usize,
    /// Time between consecutive tokens; entry `i` ends at generated token `i + 1`.
    pub inter_token_ms: Vec<f64>,
    /// Heap allocations in the whole operation.
    pub alloc_count: u64,
    pub alloc_bytes: u64,
    /// Up to and including the first token.
    pub prefill_alloc_count: u64,
    pub prefill_alloc_bytes: u64,
    /// After the first token.
    pub decode_alloc_count: u64,
    pub decode_alloc_bytes: u64,
    /// Most bytes live at once during the operation (the model's weights included).
    pub peak_heap_bytes: u64,
    /// `peak_heap_bytes` minus the bytes live when the operation started.
    pub peak_heap_growth_bytes: u64,
    /// The tensor pool during this operation.
    pub pool_rents: u64,
    pub pool_hits: u64,
    pub pool_misses: u64,
}

/// Medians and spreads over the measured iterations, and the per-op figures in SmallMind's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub ttft_ms: Stat,
    pub prefill_ms: Stat,
    pub prefill_tok_s: Stat,
    pub decode_tok_s: Option<Stat>,
    pub end_to_end_tok_s: Stat,
    pub total_ms: Stat,
    /// Every inter-token latency of every iteration, pooled.
    pub inter_token_ms: Option<Stat>,
    /// Allocations of the measured iterations / iterations (SmallMind's Allocations/op).
    pub alloc_count_per_op: f64,
    pub alloc_bytes_per_op: f64,
    /// Per op / generated tokens per op.
    pub alloc_count_per_token: f64,
    pub alloc_bytes_per_token: f64,
    /// Allocations after the first token / (generated tokens - 1): the steady decode step.
    pub decode_alloc_count_per_token: f64,
    pub decode_alloc_bytes_per_token: f64,
    /// The highest of the iterations' peaks.
    pub peak_heap_bytes: u64,
    pub peak_heap_growth_bytes: u64,
    /// Whether every iteration made exactly the same allocations.
    pub allocations_identical_across_iterations: bool,
}

impl Summary {
    /// Refuses a timed figure that is not finite and positive (a clock that stood still or
    /// jumped, an empty count): such a figure is a measurement gone wrong, never written.
    ///
    /// # Errors
    /// [`crate::Error::Measurement`] naming the figure.
    pub fn check_possible(&self) -> crate::error::Result<()> {
        let figures = [
            ("ttft_ms", Some(&self.ttft_ms)),
            ("prefill_ms", Some(&self.prefill_ms)),
            ("prefill_tok_s", Some(&self.prefill_tok_s)),
            ("decode_tok_s", self.decode_tok_s.as_ref()),
            ("end_to_end_tok_s", Some(&self.end_to_end_tok_s)),
            ("total_ms", Some(&self.total_ms)),
        ];
        for (name, stat) in figures {
            let Some(stat) = stat else { continue };
            for (what, value) in [("median", stat.median), ("p10", stat.p10), ("p90", stat.p90)] {
                if !(value.is_finite() && value > 0.0) {
                    return Err(crate::Error::Measurement(format!(
                        "impossible figure: {name} {what} is {value}: a timed figure must be finite and above 0 \
                         (a clock that stood still or jumped); no results are written"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The tensor pool over the measured iterations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    pub rents_per_op: f64,
    pub hits_per_op: f64,
    pub misses_per_op: f64,
    /// hits / rents over the measured iterations (absent without rents).
    pub hit_rate: Option<f64>,
    /// The pool's statistics at the end of the measured iterations, warm-up included.
    pub session: PoolStats,
}

/// Time per phase, from the engine's spans, in a pass of its own after the measured iterations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub iterations: usize,
    /// Inside `forward` spans, per op: median, then raw samples.
    pub forward_ms_per_op: f64,
    pub forward_ms: Vec<f64>,
    pub phases: Vec<Phase>,
    /// Forward time outside every forward phase (residual adds, KV bookkeeping), per op.
    pub other_forward_ms_per_op: f64,
    /// (attention_scores + softmax + attention_values) / forward: the plan's "attention share".
    pub attention_share_of_forward: f64,
    /// Median decode tok/s of this pass: spans cost time here, not in the measured iterations.
    pub decode_tok_s: Option<f64>,
    /// Measured decode tok/s / this pass's: the span timing's overhead as a ratio (>= 1 is slower).
    pub overhead_ratio: Option<f64>,
}

/// One phase's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// Median per op.
    pub ms_per_op: f64,
    /// Median time / median forward time (sampling is outside the forward pass).
    pub share_of_forward: f64,
    /// Per phase iteration.
    pub ms: Vec<f64>,
}

/// What was generated; every iteration must produce exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub generated_ids: Vec<u32>,
    /// `sha256:` + hex of the ids as little-endian u32s.
    pub digest: String,
    /// The ids as text; `None` for a model without a tokenizer.
    pub text: Option<String>,
}

/// Profiles captured, each in its own pass after the measured iterations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profiles {
    pub heap: Option<HeapProfile>,
    pub cpu: Option<CpuProfile>,
    pub trace: Option<TraceProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeapProfile {
    pub path: String,
    pub iterations: usize,
    /// dhat's own totals over the pass.
    pub total_blocks: u64,
    pub total_bytes: u64,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuProfile {
    pub flamegraph_path: Option<String>,
    pub pprof_path: Option<String>,
    /// The collapsed stacks (`--folded`); absent in results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded_path: Option<String>,
    pub iterations: usize,
    pub seconds: f64,
    pub frequency_hz: i32,
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceProfile {
    pub path: String,
    pub iterations: usize,
}

/// How the figures were taken, so a reader knows what they include.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instrumentation {
    /// `counting` (over the system allocator), `counting+dhat`, or `none` (no allocation figures).
    pub allocator: String,
    /// Whether a tracing subscriber existed during the measured iterations (then every span
    /// paid a filter check; the CLI never does this).
    pub span_subscriber_during_measurement: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Stat;

    /// A clock that stood still or jumped gives a timed figure of 0 or infinity: refused.
    #[test]
    fn a_timed_figure_that_is_not_finite_and_positive_is_refused() {
        let stat = |median: f64| Stat {
            n: 3,
            median,
            p10: median,
            p90: median,
            mad: 0.0,
            min: median,
            max: median,
            mean: median,
        };
        let summary = |decode: f64| Summary {
            ttft_ms: stat(1.0),
            prefill_ms: stat(1.0),
            prefill_tok_s: stat(1000.0),
            decode_tok_s: Some(stat(decode)),
            end_to_end_tok_s: stat(100.0),
            total_ms: stat(10.0),
            inter_token_ms: None,
            alloc_count_per_op: 0.0,
            alloc_bytes_per_op: 0.0,
            alloc_count_per_token: 0.0,
            alloc_bytes_per_token: 0.0,
            decode_alloc_count_per_token: 0.0,
            decode_alloc_bytes_per_token: 0.0,
            peak_heap_bytes: 0,
            peak_heap_growth_bytes: 0,
            allocations_identical_across_iterations: true,
        };
        assert!(summary(100.0).check_possible().is_ok());
        for bad in [f64::INFINITY, 0.0, f64::NAN] {
            let err = summary(bad).check_possible().unwrap_err().to_string();
            assert!(err.contains("impossible figure: decode_tok_s median"), "{err}");
        }
    }
}
