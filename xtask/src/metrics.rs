//! The metrics an experiment measures and a report compares, by their names in results files.
//! Speedups are oriented so that above 1 is better.

use serde::{Deserialize, Serialize};

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
