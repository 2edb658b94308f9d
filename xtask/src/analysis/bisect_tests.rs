//! The bisect analysis on synthetic lattices whose effects are known.
use super::*;
use crate::plan::{SweepPoint, Workload};
use crate::results::{Correctness, RunRecord, VariantResults};
use smallmind::bench::results::{Iteration, PoolReport};

/// A point where decode tok/s is 1000 x the product of each toggle's factor, with
/// `fused-softmax` worth 1.5x only while `kv-cache` is off, and 1% wiggle per round.
fn synthetic(sets: &[Optimizations]) -> PointResults {
    let factor = |o: Optimizations| {
        let mut f = 1.0;
        if o.get(Optimization::TensorPool) {
            f *= 1.1
        }
        if o.get(Optimization::BatchedMatmul) {
            f *= 1.3
        }
        if o.get(Optimization::KvCache) {
            f *= 20.0
        }
        if o.get(Optimization::FusedSoftmax) && !o.get(Optimization::KvCache) {
            f *= 1.5
        }
        f
    };
    let workload = Workload {
        model: "tiny".into(),
        prompt: None,
        prompt_tokens: Some(8),
        max_new_tokens: 8,
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        seed: 0,
        threads: 1,
    };
    let variants = sets
        .iter()
        .enumerate()
        .map(|(v, &o)| VariantResults {
            name: config_name(o),
            reference: v == 0,
            optimizations: o,
            workload: workload.clone(),
            runs: (0..6)
                .map(|round| {
                    let wiggle = 1.0 + 0.01 * (((round * 7 + v * 3) % 5) as f64 - 2.0) / 2.0;
                    let mut it: Iteration = serde_json::from_value(serde_json::json!({
                        "ttft_ms": 1.0, "encode_ms": 0.0, "prefill_ms": 1.0, "prefill_tok_s": 1.0,
                        "decode_tok_s": 1000.0 * factor(o) * wiggle, "end_to_end_tok_s": 1.0, "total_ms": 1.0,
                        "generated_tokens": 8, "inter_token_ms": [], "alloc_count": 10, "alloc_bytes": 10,
                        "prefill_alloc_count": 10, "prefill_alloc_bytes": 10, "decode_alloc_count": 0,
                        "decode_alloc_bytes": 0, "peak_heap_bytes": 1, "peak_heap_growth_bytes": 1,
                        "pool_rents": 0, "pool_hits": 0, "pool_misses": 0
                    }))
                    .unwrap();
                    it.decode_tok_s = Some(1000.0 * factor(o) * wiggle);
                    RunRecord {
                        round,
                        position: 0,
                        iterations: vec![it],
                        phases: None,
                        pool: PoolReport {
                            rents_per_op: 0.0,
                            hits_per_op: 0.0,
                            misses_per_op: 0.0,
                            hit_rate: None,
                            session: Default::default(),
                        },
                        digest: String::new(),
                        machine: None,
                    }
                })
                .collect(),
        })
        .collect();
    PointResults {
        point: SweepPoint::default(),
        variants,
        correctness: Correctness {
            reference_digest: String::new(),
            generated_tokens: 8,
            digests: vec![],
            divergences: vec![],
        },
        stopped: None,
        rerun: Vec::new(),
    }
}

#[test]
fn the_lattice_credits_each_toggle_with_its_factor() {
    let p = synthetic(&configs(false));
    let e = effects(&p);
    let get = |t: Optimization| e.iter().find(|x| x.toggle == t && x.metric == Metric::DecodeTokS).unwrap();
    let near = |s: Option<Speedup>, x: f64| (s.unwrap().point - x).abs() < 0.03 * x;
    assert!(near(get(Optimization::BatchedMatmul).added_alone, 1.3));
    assert!(near(get(Optimization::BatchedMatmul).removed_alone, 1.3));
    assert!(near(get(Optimization::KvCache).added_alone, 20.0));
    // The fused softmax helps the plain engine, and buys nothing once the cache is on.
    assert!(near(get(Optimization::FusedSoftmax).added_alone, 1.5));
    assert!(near(get(Optimization::FusedSoftmax).removed_alone, 1.0));
}

#[test]
fn the_factorial_finds_the_one_interaction() {
    let p = synthetic(&configs(true));
    let found: Vec<(Optimization, Optimization)> = interactions(&p)
        .into_iter()
        .filter(|i| i.factor.low > 1.02 || i.factor.high < 0.98)
        .map(|i| (i.a, i.b))
        .collect();
    assert_eq!(found, [(Optimization::FusedSoftmax, Optimization::KvCache)]);
    let i = interactions(&p)
        .into_iter()
        .find(|i| i.a == Optimization::FusedSoftmax && i.b == Optimization::KvCache)
        .unwrap();
    assert!((i.factor.point - 1.0 / 1.5).abs() < 0.03, "{i:?}");
}

#[test]
fn suspects_rank_the_toggle_whose_contribution_fell() {
    let before = synthetic(&configs(false));
    let mut now = before.clone();
    // The fused softmax got slow: every set with it on is 30% slower.
    for v in &mut now.variants {
        if v.optimizations.get(Optimization::FusedSoftmax) {
            for r in &mut v.runs {
                r.iterations[0].decode_tok_s = r.iterations[0].decode_tok_s.map(|x| x * 0.7);
            }
        }
    }
    let ranked = suspects(&now, &before);
    assert_eq!(ranked.len(), 4);
    assert_eq!(ranked[0].toggle, Optimization::FusedSoftmax, "{ranked:?}");
    assert!((ranked[0].change.point - 0.7).abs() < 0.03, "{ranked:?}");
    assert!(ranked[1..].iter().all(|s| (s.change.point - 1.0).abs() < 0.03), "{ranked:?}");
}

fn measured(p: &PointResults) -> Vec<Measured> {
    p.measured().collect()
}

#[test]
fn a_bisect_baseline_fits_when_the_ranked_sets_match() {
    let lattice = measured(&synthetic(&configs(false)));
    let full = measured(&synthetic(&configs(true)));
    assert_eq!(baseline_misfits(&lattice, &lattice), []);
    // A --full run against a lattice baseline (or the other way): the ranked sets are in both.
    assert_eq!(baseline_misfits(&full, &lattice), []);
    assert_eq!(baseline_misfits(&lattice, &full), []);
}

#[test]
fn a_bisect_baseline_of_another_workload_or_without_a_ranked_set_does_not_fit() {
    let now = synthetic(&configs(false));
    let mut other = now.clone();
    for v in &mut other.variants {
        v.workload.max_new_tokens = 64;
    }
    let misfits = baseline_misfits(&measured(&now), &measured(&other));
    assert_eq!(misfits.len(), now.variants.len(), "{misfits:?}");
    assert!(
        misfits
            .iter()
            .all(|m| matches!(&m.kind, MisfitKind::Workload(d) if d == &["max_new_tokens 64 -> 8"]))
    );
    let mut fewer = now.clone();
    fewer.variants.retain(|v| v.name != config_name(without(Optimization::KvCache)));
    let misfits = baseline_misfits(&measured(&now), &measured(&fewer));
    assert_eq!(misfits.len(), 1, "{misfits:?}");
    assert_eq!(
        misfits[0].to_string(),
        "`tensor-pool+batched-matmul+fused-softmax`: not in the baseline (a new or renamed variant)"
    );
}
