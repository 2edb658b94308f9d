//! The arithmetic of a measurement: from the measured ops' records to the results file's
//! summary, pool and phase figures, and the output digest. Pure functions: no clock, no
//! allocator, no session (the passes are `passes.rs`).

use super::phases::{self, ATTENTION, PHASES};
use super::results::{Iteration, Phase, PhaseReport, PoolReport, Summary};
use super::stats::Stat;
use crate::pool::PoolStats;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// `sha256:` and the hex SHA-256 of `ids` as little-endian u32s.
pub fn digest(ids: &[u32]) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.to_le_bytes());
    }
    let hash = hasher.finalize();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// One measured operation: its figures, its output and the pool after it.
pub(super) struct OpRecord {
    pub(super) iteration: Iteration,
    pub(super) ids: Vec<u32>,
    pub(super) pool: PoolStats,
    pub(super) pool_before: PoolStats,
}

fn stat(samples: impl Iterator<Item = f64>) -> Stat {
    let samples: Vec<f64> = samples.collect();
    Stat::of(&samples).expect("at least one measured iteration")
}

/// The summary of the measured ops: medians and spreads, allocations per op and per token.
pub(super) fn summarise(measured: &[OpRecord]) -> Summary {
    let its: Vec<&Iteration> = measured.iter().map(|r| &r.iteration).collect();
    let n_ops = its.len() as f64;
    let sum = |f: fn(&Iteration) -> u64| its.iter().map(|i| f(i)).sum::<u64>() as f64;
    let tokens = sum(|i| i.generated_tokens as u64);
    let decode_tokens = its.iter().map(|i| i.generated_tokens.saturating_sub(1) as u64).sum::<u64>() as f64;
    let per = |total: f64, n: f64| if n > 0.0 { total / n } else { 0.0 };
    let decode: Vec<f64> = its.iter().filter_map(|i| i.decode_tok_s).collect();
    let gaps: Vec<f64> = its.iter().flat_map(|i| i.inter_token_ms.iter().copied()).collect();
    let alloc_key =
        |i: &Iteration| (i.alloc_count, i.alloc_bytes, i.decode_alloc_count, i.decode_alloc_bytes);
    Summary {
        ttft_ms: stat(its.iter().map(|i| i.ttft_ms)),
        prefill_ms: stat(its.iter().map(|i| i.prefill_ms)),
        prefill_tok_s: stat(its.iter().map(|i| i.prefill_tok_s)),
        decode_tok_s: Stat::of(&decode),
        end_to_end_tok_s: stat(its.iter().map(|i| i.end_to_end_tok_s)),
        total_ms: stat(its.iter().map(|i| i.total_ms)),
        inter_token_ms: Stat::of(&gaps),
        alloc_count_per_op: sum(|i| i.alloc_count) / n_ops,
        alloc_bytes_per_op: sum(|i| i.alloc_bytes) / n_ops,
        alloc_count_per_token: per(sum(|i| i.alloc_count), tokens),
        alloc_bytes_per_token: per(sum(|i| i.alloc_bytes), tokens),
        decode_alloc_count_per_token: per(sum(|i| i.decode_alloc_count), decode_tokens),
        decode_alloc_bytes_per_token: per(sum(|i| i.decode_alloc_bytes), decode_tokens),
        peak_heap_bytes: its.iter().map(|i| i.peak_heap_bytes).max().unwrap_or(0),
        peak_heap_growth_bytes: its.iter().map(|i| i.peak_heap_growth_bytes).max().unwrap_or(0),
        allocations_identical_across_iterations: its.windows(2).all(|w| alloc_key(w[0]) == alloc_key(w[1])),
    }
}

/// The tensor pool over the measured ops, per op.
pub(super) fn pool_report(measured: &[OpRecord], session: PoolStats) -> PoolReport {
    let n_ops = measured.len() as f64;
    let first = measured.first().map(|r| r.pool_before).unwrap_or_default();
    let last = measured.last().map(|r| r.pool).unwrap_or_default();
    let (rents, hits, misses) =
        (last.rents - first.rents, last.hits - first.hits, last.misses - first.misses);
    PoolReport {
        rents_per_op: rents as f64 / n_ops,
        hits_per_op: hits as f64 / n_ops,
        misses_per_op: misses as f64 / n_ops,
        hit_rate: (rents > 0).then(|| hits as f64 / rents as f64),
        session,
    }
}

/// The phase pass's timings per phase, their shares of the forward pass, and its overhead.
pub(super) fn phase_report(
    runs: &[(phases::PhaseTotals, Option<f64>)],
    measured: &[OpRecord],
) -> PhaseReport {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = |v: &[f64]| Stat::of(v).map_or(0.0, |s| s.median);
    let forward_ms: Vec<f64> = runs.iter().map(|(t, _)| ms(t.forward)).collect();
    let forward = median(&forward_ms);
    let share = |x: f64| if forward > 0.0 { x / forward } else { 0.0 };
    let phases: Vec<Phase> = PHASES
        .iter()
        .enumerate()
        .map(|(p, name)| {
            let samples: Vec<f64> = runs.iter().map(|(t, _)| ms(t.phases[p])).collect();
            let ms_per_op = median(&samples);
            Phase { name: name.to_string(), ms_per_op, share_of_forward: share(ms_per_op), ms: samples }
        })
        // A phase the model does not have (GPT-2 has no RoPE, Llama no LayerNorm) never ran.
        .filter(|phase| phase.ms.iter().any(|&t| t > 0.0))
        .collect();
    let in_forward: f64 = phases.iter().filter(|p| p.name != "sampling").map(|p| p.ms_per_op).sum();
    let attention: f64 =
        phases.iter().filter(|p| ATTENTION.contains(&p.name.as_str())).map(|p| p.ms_per_op).sum();
    let decode: Vec<f64> = runs.iter().filter_map(|(_, d)| *d).collect();
    let measured_decode: Vec<f64> = measured.iter().filter_map(|r| r.iteration.decode_tok_s).collect();
    let decode_tok_s = Stat::of(&decode).map(|s| s.median);
    PhaseReport {
        iterations: runs.len(),
        forward_ms_per_op: forward,
        forward_ms,
        phases,
        other_forward_ms_per_op: (forward - in_forward).max(0.0),
        attention_share_of_forward: share(attention),
        decode_tok_s,
        overhead_ratio: Stat::of(&measured_decode).zip(decode_tok_s).map(|(m, p)| m.median / p),
    }
}
