//! Generation: prefill, then decode token by token; where `kv-cache` is decided.
//!
//! A [`Session`] owns what persists between generations of one model with one set of
//! optimizations: the tensor pool, the KV cache (allocated once, for the whole context) and the
//! worker pool that splits every pass's products and attention heads between threads.
//! Reusing a session is what makes a steady-state decode step allocation-free.
//!
//! When prompt + generated tokens exceed the context, the last `n_ctx` tokens are kept, as
//! SmallMind did. Every token's position changes at each step once the window slides (GPT-2's
//! learned position embeddings and Llama's rotated keys are both absolute), so the KV cache is
//! then invalid and the window is recomputed in full every step, whatever the toggle says.
//! Output is always that of the reference computation; only its cost differs.
//!
//! Logits that hold NaN or infinity end the generation with [`Error::NonFiniteLogits`], naming
//! the step: they never become tokens.

use crate::error::{Error, Result};
use crate::kernels::parallel::{Threads, WorkerPool};
use crate::layers::{Ctx, KvCache, KvSource};
use crate::models::ModelRef;
use crate::optimizations::Optimizations;
use crate::pool::{PoolStats, TensorPool};
use crate::sampler::{Sampler, SamplingParams};
use std::time::{Duration, Instant};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Tokens to generate.
    pub max_new_tokens: usize,
    /// How to pick them.
    pub sampling: SamplingParams,
    /// Stop early after generating any of these tokens: the model's end of turn
    /// (`LoadedModel::end_tokens`; llama2.c's `run` stops at `<s>`). Empty always generates
    /// `max_new_tokens`, which measurements need.
    pub stop_tokens: Vec<u32>,
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The generated tokens, in order.
    pub generated_ids: Vec<u32>,
    /// When each generated token was chosen, from the start of the call.
    pub token_times: Vec<Duration>,
    /// The pool's statistics after the call (cumulative over the session).
    pub pool: PoolStats,
}

impl Generated {
    /// Time to first token: from the call to the first sampled token (prefill included).
    pub fn ttft(&self) -> Option<Duration> {
        self.token_times.first().copied()
    }

    /// Decode throughput as SmallMind's "steady" figure: `(n - 1) / (t_last - t_first)`.
    pub fn decode_tok_s(&self) -> Option<f64> {
        let (first, last) = (self.token_times.first()?, self.token_times.last()?);
        let span = (*last - *first).as_secs_f64();
        (self.token_times.len() > 1 && span > 0.0).then(|| (self.token_times.len() - 1) as f64 / span)
    }
}

/// One model with one set of optimizations, ready to generate repeatedly.
#[derive(Debug)]
pub struct Session<'m> {
    model: ModelRef<'m>,
    opts: Optimizations,
    pool: TensorPool,
    cache: Option<KvCache>,
    /// `threads - 1` workers of our own when threads > 1: every product and attention's heads
    /// are split between them and the calling thread, at prefill and decode alike.
    workers: Option<WorkerPool>,
}

/// Refuses a thread count above [`MAX_THREADS`](crate::kernels::parallel::MAX_THREADS), naming
/// this machine's cores.
pub fn check_threads(threads: usize) -> Result<()> {
    use crate::kernels::parallel::MAX_THREADS;
    if threads > MAX_THREADS {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        return Err(Error::Input(format!(
            "{threads} threads is more than the {MAX_THREADS} a run may use (this machine has {cores} cores; \
             threads beyond the cores only wait for each other): give at most {MAX_THREADS}"
        )));
    }
    Ok(())
}

impl<'m> Session<'m> {
    /// A session of `model` (a [`crate::models::Model`], a `Gpt2` or a `Llama`) on `threads`
    /// threads (1: no thread pool is made at all; more: a [`WorkerPool`], started here).
    pub fn new(model: impl Into<ModelRef<'m>>, opts: Optimizations, threads: usize) -> Result<Self> {
        let model = model.into();
        if threads == 0 {
            return Err(Error::Input("threads must be at least 1".into()));
        }
        check_threads(threads)?;
        let workers = if threads > 1 {
            let workers = WorkerPool::new(threads)
                .map_err(|e| Error::Input(format!("cannot start {threads} threads: {e}")))?;
            Some(workers)
        } else {
            None
        };
        Ok(Session { model, opts, pool: TensorPool::new(), cache: None, workers })
    }

    /// The optimizations this session runs with.
    pub fn optimizations(&self) -> Optimizations {
        self.opts
    }

    /// The tensor pool's statistics so far.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Checks that `prompt` can be run by this model.
    pub fn validate_prompt(&self, prompt: &[u32]) -> Result<()> {
        let vocab = self.model.vocab_size();
        if prompt.is_empty() {
            return Err(Error::Input(
                "the prompt is empty (after tokenization); give at least one token".into(),
            ));
        }
        if let Some((i, &id)) = prompt.iter().enumerate().find(|&(_, &id)| id as usize >= vocab) {
            return Err(Error::Input(format!(
                "prompt id {id} at index {i} is out of range: the vocabulary has {vocab} tokens (ids 0..{})",
                vocab - 1
            )));
        }
        Ok(())
    }

    /// Generates `params.max_new_tokens` tokens after `prompt`, calling `on_token(id, logits)`
    /// as each is chosen (the logits it was chosen from).
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        on_token: &mut (dyn FnMut(u32, &[f32]) + Send),
    ) -> Result<Generated> {
        self.validate_prompt(prompt)?;
        params.sampling.validate().map_err(Error::Input)?;
        self.generate_here(prompt, params, on_token)
    }

    fn generate_here(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        on_token: &mut (dyn FnMut(u32, &[f32]) + Send),
    ) -> Result<Generated> {
        let start = Instant::now();
        let max_new = params.max_new_tokens;
        let mut tokens = Vec::with_capacity(prompt.len() + max_new);
        tokens.extend_from_slice(prompt);
        let mut logits = vec![0.0f32; self.model.vocab_size()];
        let mut sampler = Sampler::new(params.sampling, logits.len());
        let mut token_times = Vec::with_capacity(max_new);
        if let Some(cache) = &mut self.cache {
            cache.len = 0;
        }
        for step in 0..max_new {
            #[cfg(feature = "test-slow-decode")]
            let step_start = Instant::now();
            self.next_logits(&tokens, &mut logits);
            #[cfg(feature = "test-slow-decode")]
            if step > 0 {
                slow_down(step_start.elapsed());
            }
            finite_check(self.opts)(&logits, step, tokens.len() - 1)?;
            let id = {
                let _span = tracing::trace_span!("sampling").entered();
                sampler.sample(&logits)
            };
            token_times.push(start.elapsed());
            on_token(id, &logits);
            tokens.push(id);
            if params.stop_tokens.contains(&id) {
                break;
            }
        }
        Ok(Generated { generated_ids: tokens.split_off(prompt.len()), token_times, pool: self.pool.stats() })
    }

    /// The logits after `tokens`. **The one place `kv-cache` is read.**
    ///
    /// With the cache on and the sequence within the context, only the tokens the cache does
    /// not hold yet are run (the whole prompt at prefill, one token per decode step). Otherwise
    /// the last `n_ctx` tokens are recomputed from position 0.
    ///
    /// # Performance
    /// With several threads, every pass runs on the calling thread and the [`WorkerPool`]: a
    /// prefill's products as column blocks (of our tiled kernel, or of `gemm`,
    /// `kernels::matmul`; of the panel kernel for GPT-2 on AVX-512, `kernels::panel`), a decode step's as
    /// blocks of our one-row kernels. No rayon pool runs beside it: in one, where `gemm` split
    /// its products, a 64-token stories110m prefill took 160 ms at two threads against 109 ms
    /// as column blocks on this pool, on a 2-core AMD EPYC Zen 4 (family 25 model 17;
    /// `docs/speed.md#prefill-the-worker-pool-and-an-unpacked-kernel`, and for the history
    /// `docs/decisions.md#2026-12-01-prefill-and-decode-leave-rayon`).
    fn next_logits(&mut self, tokens: &[u32], logits: &mut [f32]) {
        let _span = tracing::trace_span!("forward").entered();
        let Session { model, opts, pool, cache, workers } = self;
        let (model, opts) = (*model, *opts);
        let threads = workers.as_ref().map_or(Threads::One, Threads::Pool);
        let n_ctx = model.n_ctx();
        let (rows, source) = if opts.kv_cache && tokens.len() <= n_ctx {
            let cache = cache.get_or_insert_with(|| model.new_kv_cache());
            let start_pos = cache.len;
            (&tokens[start_pos..], KvSource::Cached(cache))
        } else {
            (&tokens[tokens.len().saturating_sub(n_ctx)..], KvSource::Recompute)
        };
        let start_pos = match &source {
            KvSource::Cached(cache) => cache.len,
            KvSource::Recompute => 0,
        };
        let ctx = Ctx { opts, pool, threads };
        model.forward(&ctx, rows, start_pos, source, logits);
    }
}

/// Test-only (the `test-slow-decode` feature): a known 10% slowdown of decode, output unchanged,
/// for measuring how often `cargo xtask check` catches one. Spins for a ninth of the step's
/// forward time, so decode tok/s falls to 0.9 of the engine's.
#[cfg(feature = "test-slow-decode")]
fn slow_down(forward: std::time::Duration) {
    let until = Instant::now() + forward / 9;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The check every step's logits go through: [`check_finite`], whatever the optimizations.
#[cfg(not(feature = "test-fifth-optimization"))]
fn finite_check(_opts: Optimizations) -> fn(&[f32], usize, usize) -> Result<()> {
    check_finite
}

/// The check every step's logits go through. **The one place `test-noop` is read**, in the
/// test-only `test-fifth-optimization` build: it picks between two checks that give the same
/// result, so the toggle changes nothing but shows that a table entry and this read are all
/// a new optimization needs.
#[cfg(feature = "test-fifth-optimization")]
fn finite_check(opts: Optimizations) -> fn(&[f32], usize, usize) -> Result<()> {
    if opts.test_noop { check_finite } else { check_finite_naive }
}

/// [`check_finite`]'s naive twin: the same error, found by one loop over the logits.
#[cfg(feature = "test-fifth-optimization")]
fn check_finite_naive(logits: &[f32], step: usize, position: usize) -> Result<()> {
    let mut first = None;
    let mut count = 0;
    for (id, &v) in logits.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first = first.or(Some((id, v)));
        }
    }
    let Some((first_id, first_value)) = first else { return Ok(()) };
    Err(Error::NonFiniteLogits { step, position, count, vocab: logits.len(), first_id, first_value })
}

/// An error when any of `logits` (those of `position`, for generation step `step`) is NaN or
/// infinite: a sampler would turn them into an arbitrary token (argmax never picks NaN, so a
/// NaN row gives id 0), and the run would look fine.
///
/// # Performance
/// One pass over `vocab_size` floats per token, next to the LM head's `vocab_size * n_embd`
/// multiply-adds; nothing is allocated unless the check fails.
fn check_finite(logits: &[f32], step: usize, position: usize) -> Result<()> {
    let Some(first_id) = logits.iter().position(|v| !v.is_finite()) else { return Ok(()) };
    Err(Error::NonFiniteLogits {
        step,
        position,
        count: logits.iter().filter(|v| !v.is_finite()).count(),
        vocab: logits.len(),
        first_id,
        first_value: logits[first_id],
    })
}

/// `len` pseudo-random token ids below `vocab`, the same for the same `seed`: the prompt of
/// `smallmind bench --prompt-tokens N` and of the tests (a multiplicative hash, no RNG state).
pub fn synthetic_prompt(len: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let seed = seed as u32;
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(97)) >> 7) % vocab as u32)
        .collect()
}
