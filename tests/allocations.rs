//! The tensor pool's promises, checked with the counting global allocator `smallmind bench` uses: rents equal returns
//! after every generation, and with `tensor-pool` and `kv-cache` on a steady-state decode step
//! performs zero heap allocations.

mod common;

use common::*;
use smallmind::bench::alloc::{self, CountingAlloc};
use smallmind::{GenerateParams, Optimization, Optimizations, SamplingParams, Session};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

fn allocations() -> u64 {
    alloc::snapshot().count
}

/// Heap allocations between consecutive tokens of the second generation in one session
/// (the first warms the pool and allocates the KV cache).
fn allocations_per_decode_step(
    opts: Optimizations,
    threads: usize,
    model: &smallmind::Gpt2,
    prompt: &[u32],
    n: usize,
) -> Vec<u64> {
    let mut session = Session::new(model, opts, threads).unwrap();
    let params =
        GenerateParams { max_new_tokens: n, sampling: SamplingParams::greedy(), stop_tokens: Vec::new() };
    session.generate(prompt, &params, &mut |_, _| {}).unwrap();
    let mut marks = Vec::with_capacity(n);
    session.generate(prompt, &params, &mut |_, _| marks.push(allocations())).unwrap();
    marks.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn pool_and_kv_cache_decode_without_allocating() {
    // Tests run in parallel threads of one process and share the counter, so this binary holds
    // one test function that runs its cases in sequence.
    let model = preset("tiny");
    let prompt = synthetic_prompt(20, 256, 3);

    let steps = allocations_per_decode_step(Optimizations::all(), 1, &model, &prompt, 48);
    assert!(steps.iter().all(|&a| a == 0), "all on: allocations per decode step {steps:?}");

    // Nor on several threads: a dispatch to the worker pool allocates nothing.
    for threads in [2, 3] {
        let steps = allocations_per_decode_step(Optimizations::all(), threads, &model, &prompt, 48);
        assert!(
            steps.iter().all(|&a| a == 0),
            "all on, {threads} threads: allocations per decode step {steps:?}"
        );
    }

    // Sampling (top-k, top-p) allocates nothing per token either.
    let mut session = Session::new(&model, Optimizations::all(), 1).unwrap();
    let sampling = SamplingParams { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 1 };
    let params = GenerateParams { max_new_tokens: 32, sampling, stop_tokens: Vec::new() };
    session.generate(&prompt, &params, &mut |_, _| {}).unwrap();
    let mut marks = Vec::with_capacity(32);
    session.generate(&prompt, &params, &mut |_, _| marks.push(allocations())).unwrap();
    assert!(marks.windows(2).all(|w| w[0] == w[1]), "sampling allocates: {marks:?}");

    // The counter does see allocations: without the pool, every step allocates its buffers.
    let mut no_pool = Optimizations::all();
    no_pool.set(Optimization::TensorPool, false);
    let steps = allocations_per_decode_step(no_pool, 1, &model, &prompt, 8);
    assert!(steps.iter().all(|&a| a > 0), "pool off: allocations per decode step {steps:?}");

    // Rents equal returns after every generation, in every combination.
    for opts in Optimizations::every_combination().filter(|o| o.tensor_pool) {
        let mut session = Session::new(&model, opts, 1).unwrap();
        let params =
            GenerateParams { max_new_tokens: 5, sampling: SamplingParams::greedy(), stop_tokens: Vec::new() };
        for _ in 0..2 {
            let out = session.generate(&prompt, &params, &mut |_, _| {}).unwrap();
            assert_eq!(out.pool.rents, out.pool.returns, "{opts}: {:?}", out.pool);
            assert!(out.pool.rents > 0 && out.pool.hits > 0, "{opts}: {:?}", out.pool);
        }
    }
}
