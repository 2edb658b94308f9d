//! The passes of one measurement ([`run`]), in this order, so that no pass perturbs an earlier
//! one: warm-up, measured ops (clock and counting allocator only), the phase pass, then the
//! profile passes (`profilers.rs`). Every pass must generate the ids of the first measured op.
//! The arithmetic on the records is `summary.rs`.

use super::alloc::{self, AllocSnapshot};
use super::phases::{self, PhaseTimer};
#[cfg(feature = "profilers")]
use super::profilers::profile_passes;
use super::results::*;
use super::spec::{BenchSpec, HEAP_PROFILING, ProfileOutputs};
use super::summary::{self, OpRecord};
use super::{env, machine, probe};
use crate::error::{Error, Result};
use crate::generate::{GenerateParams, Session, synthetic_prompt};
use crate::models::ModelRef;
use crate::tokenizer::Tokenizer;
use std::time::{Duration, Instant};

/// Runs every pass of `spec` on `model` and returns the results; profiles go to `outputs`.
/// `progress` hears one line as each pass starts.
pub fn run(
    model: ModelRef,
    tokenizer: Option<&Tokenizer>,
    spec: &BenchSpec,
    mut outputs: ProfileOutputs<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchResults> {
    spec.validate()?;
    require_heap_profiling(&outputs)?;
    let prompt = Prompt::resolve(&spec.prompt, tokenizer, model.vocab_size())?;
    // The last-level cache sizes the probe's buffers and decides the roofline's bandwidth.
    let l3_bytes = env::Hardware::capture().l3_bytes;
    let probe = match spec.probe {
        true => Some(probe::Probe::new(l3_bytes, spec.threads)?),
        false => None,
    };
    let load_at_start = machine::load_1m();
    let probe_start = probe.map(|p| {
        progress("probe: memory and LLC bandwidth, FMA peak");
        p.read()
    });
    // Beyond the context, a prefill computes only the last n_ctx tokens (`generate`'s window):
    // its figures would count tokens never computed.
    if prompt.ids.len() > model.n_ctx() {
        return Err(Error::Input(format!(
            "the prompt is {} tokens and the model's context {}: a prefill computes only the last {}, so its \
             figures would count tokens it never computed; give at most {} (--prompt-tokens)",
            prompt.ids.len(),
            model.n_ctx(),
            model.n_ctx(),
            model.n_ctx()
        )));
    }
    let mut session = Session::new(model, spec.opts, spec.threads)?;
    session.validate_prompt(&prompt.ids)?;
    let counting = alloc::is_counting();
    let subscriber_during_measurement = phases::installed();
    let op = |session: &mut Session<'_>| measure_op(session, tokenizer, &prompt, &spec.params);

    let (measured, counters, measured_ms) = measured_pass(spec, &mut || op(&mut session), progress)?;
    let probe_end = probe.map(|p| {
        progress("probe: again, after the measured ops");
        p.read()
    });
    let reference_ids = measured[0].ids.clone();
    for (i, record) in measured.iter().enumerate() {
        check_same_output(&reference_ids, &record.ids, &format!("measured iteration {}", i + 1))?;
    }
    let session_pool = session.pool_stats();
    let mut checked_op = |what: &str| {
        let record = op(&mut session)?;
        check_same_output(&reference_ids, &record.ids, what)?;
        Ok(record)
    };
    let phase_report = phase_pass(spec, &measured, &mut checked_op, progress)?;
    let profiles = profile_passes(&mut outputs, spec, &mut |what| checked_op(what).map(drop), progress)?;

    let summary = summary::summarise(&measured);
    let machine = probe.zip(probe_start.zip(probe_end)).map(|(p, (start, end))| {
        let report = p.report(start, end);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let contamination =
            machine::Contamination::measure(load_at_start, counters, measured_ms, report.drift(), cores);
        let roofline = roofline(model, prompt.ids.len(), spec, &summary, &report, l3_bytes);
        machine::MachineReport { probe: report, contamination, roofline }
    });
    // No figure may be beyond what the machine can do, nor non-finite: such a figure is a
    // measurement gone wrong (a clock, a count), and is refused rather than written.
    summary.check_possible()?;
    if let Some(m) = &machine {
        let l2_bytes = env::Hardware::capture().l2_bytes;
        m.roofline.check_possible(m.probe.drift(), spec.threads, l2_bytes).map_err(Error::Measurement)?;
    }
    let pool = summary::pool_report(&measured, session_pool);
    // Field by field, the results file's order.
    Ok(BenchResults {
        schema_version: SCHEMA_VERSION,
        workload: workload(model, spec, prompt.ids.len()),
        iterations: measured.into_iter().map(|r| r.iteration).collect(),
        summary,
        pool,
        phases: phase_report,
        output: Output {
            digest: summary::digest(&reference_ids),
            text: tokenizer.map(|t| t.decode(&reference_ids)),
            generated_ids: reference_ids,
        },
        profiles,
        instrumentation: Instrumentation {
            allocator: allocator_name(counting).into(),
            span_subscriber_during_measurement: subscriber_during_measurement,
        },
        environment: env::Environment::capture(),
        machine,
    })
}

/// Without the `profilers` feature: no profile pass, and a profile asked for is refused.
#[cfg(not(feature = "profilers"))]
fn profile_passes(
    outputs: &mut ProfileOutputs<'_>,
    _: &BenchSpec,
    _: &mut dyn FnMut(&str) -> Result<()>,
    _: &mut dyn FnMut(&str),
) -> Result<Profiles> {
    let asked = outputs.heap.is_some()
        || outputs.flamegraph.is_some()
        || outputs.pprof.is_some()
        || outputs.folded.is_some()
        || outputs.trace.is_some();
    match asked {
        true => {
            Err(Error::Input("profiles need a build with the profilers feature (a default feature)".into()))
        }
        false => Ok(Profiles::default()),
    }
}

/// An error when a heap profile is asked of a build without the `dhat-heap` feature.
fn require_heap_profiling(outputs: &ProfileOutputs<'_>) -> Result<()> {
    if outputs.heap.is_some() && !HEAP_PROFILING {
        return Err(Error::Input(
            "--heap-profile needs a build with the dhat-heap feature: \
             cargo run --release --features dhat-heap -- bench ..."
                .into(),
        ));
    }
    Ok(())
}

/// The allocator the results file names: what counted the allocations, and whether dhat did too.
fn allocator_name(counting: bool) -> &'static str {
    match (counting, HEAP_PROFILING) {
        (false, _) => "none",
        (true, false) => "counting",
        (true, true) => "counting+dhat",
    }
}

/// The warm-up ops (discarded) and the measured ops, with the machine's counters before them
/// and the milliseconds they took together.
fn measured_pass(
    spec: &BenchSpec,
    op: &mut dyn FnMut() -> Result<OpRecord>,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<OpRecord>, (machine::Counters, machine::Counters), f64)> {
    progress(&format!("warm-up: {} op(s)", spec.warmup));
    for _ in 0..spec.warmup {
        op()?;
    }
    progress(&format!("measuring: {} op(s)", spec.iterations));
    let mut measured = Vec::with_capacity(spec.iterations);
    let (before, measuring) = (machine::Counters::read(), Instant::now());
    for _ in 0..spec.iterations {
        measured.push(op()?);
    }
    let measured_ms = measuring.elapsed().as_secs_f64() * 1e3;
    Ok((measured, (before, machine::Counters::read()), measured_ms))
}

/// The phase pass: `spec.phase_iterations` ops with the engine's spans timed (none: no pass).
fn phase_pass(
    spec: &BenchSpec,
    measured: &[OpRecord],
    checked_op: &mut dyn FnMut(&str) -> Result<OpRecord>,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<PhaseReport>> {
    if spec.phase_iterations == 0 {
        return Ok(None);
    }
    progress(&format!("timing phases: {} op(s)", spec.phase_iterations));
    phases::install().map_err(Error::Measurement)?;
    let mut runs = Vec::with_capacity(spec.phase_iterations);
    for i in 0..spec.phase_iterations {
        let timer = PhaseTimer::start();
        let record = checked_op(&format!("phase iteration {}", i + 1))?;
        let totals = timer.finish();
        runs.push((totals, record.iteration.decode_tok_s));
    }
    Ok(Some(summary::phase_report(&runs, measured)))
}

/// The roofline of this run: the model's bytes per decode token and FLOP per prefill token at
/// the workload's positions, against the probe's figures.
fn roofline(
    model: ModelRef,
    prompt_tokens: usize,
    spec: &BenchSpec,
    summary: &Summary,
    report: &probe::ProbeReport,
    l3_bytes: Option<u64>,
) -> machine::Roofline {
    // Decode steps feed positions prompt_tokens..prompt_tokens + new_tokens - 1 (the first
    // token comes from the prefill): their mean position.
    let decode_steps = spec.params.max_new_tokens.saturating_sub(1).max(1);
    let mean_pos = prompt_tokens as f64 + (decode_steps as f64 - 1.0) / 2.0;
    machine::Roofline::of(
        model.decode_bytes_per_token(mean_pos),
        model.prefill_flop_per_token(prompt_tokens),
        summary.decode_tok_s.as_ref().map(|s| s.median),
        summary.prefill_tok_s.median,
        spec.threads,
        report,
        l3_bytes,
    )
}

/// The results file's record of what ran.
fn workload(model: ModelRef, spec: &BenchSpec, prompt_tokens: usize) -> Workload {
    Workload {
        model: spec.model_name.clone(),
        model_parameters: model.parameter_count() as u64,
        prompt: spec.prompt.clone(),
        prompt_tokens,
        max_new_tokens: spec.params.max_new_tokens,
        sampling: spec.params.sampling,
        threads: spec.threads,
        optimizations: spec.opts,
        warmup: spec.warmup,
        iterations: spec.iterations,
    }
}

/// The prompt as token ids, and its text when it must be encoded inside each operation.
struct Prompt {
    text: Option<String>,
    ids: Vec<u32>,
}

impl Prompt {
    fn resolve(spec: &PromptSpec, tokenizer: Option<&Tokenizer>, vocab: usize) -> Result<Prompt> {
        match spec {
            PromptSpec::Text { text } => {
                let tokenizer = tokenizer.ok_or_else(|| {
                    Error::Input(
                        "this model has no tokenizer: give --prompt-tokens N instead of --prompt".into(),
                    )
                })?;
                let ids = tokenizer.encode(text)?;
                if ids.is_empty() {
                    return Err(Error::Input(format!(
                        "the prompt {text:?} has no token in this model's vocabulary ({}); \
                         give other text or --prompt-tokens N",
                        tokenizer.kind()
                    )));
                }
                Ok(Prompt { text: Some(text.clone()), ids })
            }
            &PromptSpec::Synthetic { tokens, seed } => {
                Ok(Prompt { text: None, ids: synthetic_prompt(tokens, vocab, seed) })
            }
        }
    }
}

fn measure_op(
    session: &mut Session<'_>,
    tokenizer: Option<&Tokenizer>,
    prompt: &Prompt,
    params: &GenerateParams,
) -> Result<OpRecord> {
    let pool_before = session.pool_stats();
    alloc::reset_peak();
    let start_alloc = alloc::snapshot();
    let start = Instant::now();
    let encoded;
    let ids = match &prompt.text {
        Some(text) => {
            // A text prompt was resolved with a tokenizer (`Prompt::resolve`).
            encoded = tokenizer.expect("a text prompt has a tokenizer").encode(text)?;
            &encoded[..]
        }
        None => &prompt.ids[..],
    };
    let encode = start.elapsed();
    // Snapshots at the first and the latest token: reading four atomics allocates nothing.
    let (mut at_first, mut at_last): (Option<AllocSnapshot>, AllocSnapshot) = (None, start_alloc);
    let generated = session.generate(ids, params, &mut |_, _| {
        let now = alloc::snapshot();
        at_first.get_or_insert(now);
        at_last = now;
    })?;
    let total = start.elapsed();
    let end_alloc = alloc::snapshot();
    let at_first = at_first.unwrap_or(end_alloc);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let times = &generated.token_times;
    let first = times.first().copied().unwrap_or_default();
    let n = generated.generated_ids.len();
    let iteration = Iteration {
        ttft_ms: ms(encode + first),
        encode_ms: ms(encode),
        prefill_ms: ms(first),
        prefill_tok_s: ids.len() as f64 / first.as_secs_f64(),
        decode_tok_s: generated.decode_tok_s(),
        end_to_end_tok_s: n as f64 / total.as_secs_f64(),
        total_ms: ms(total),
        generated_tokens: n,
        inter_token_ms: times.windows(2).map(|w| ms(w[1] - w[0])).collect(),
        alloc_count: end_alloc.count_since(&start_alloc),
        alloc_bytes: end_alloc.bytes_since(&start_alloc),
        prefill_alloc_count: at_first.count_since(&start_alloc),
        prefill_alloc_bytes: at_first.bytes_since(&start_alloc),
        decode_alloc_count: at_last.count_since(&at_first),
        decode_alloc_bytes: at_last.bytes_since(&at_first),
        peak_heap_bytes: end_alloc.peak_live_bytes,
        peak_heap_growth_bytes: end_alloc.peak_live_bytes.saturating_sub(start_alloc.live_bytes),
        pool_rents: generated.pool.rents - pool_before.rents,
        pool_hits: generated.pool.hits - pool_before.hits,
        pool_misses: generated.pool.misses - pool_before.misses,
    };
    Ok(OpRecord { iteration, ids: generated.generated_ids, pool: generated.pool, pool_before })
}

/// Every pass must generate what the first measured iteration did; anything else is a bug.
fn check_same_output(reference: &[u32], ids: &[u32], what: &str) -> Result<()> {
    if reference == ids {
        return Ok(());
    }
    let position =
        reference.iter().zip(ids).position(|(a, b)| a != b).unwrap_or(reference.len().min(ids.len()));
    Err(Error::Measurement(format!(
        "{what} generated different tokens from measured iteration 1 at position {position} \
         ({:?} vs {:?}): the engine is not deterministic for this workload",
        reference.get(position),
        ids.get(position)
    )))
}
