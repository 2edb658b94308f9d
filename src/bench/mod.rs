//! Measurement of one variant: one workload, one set of optimizations, one results file.
//!
//! [`run`] takes the figures in passes, in this order, so that no pass perturbs an earlier one:
//! 1. **warm-up** iterations, discarded (they fill the tensor pool and allocate the KV cache);
//! 2. **measured** iterations: wall-clock times per token and the counting allocator's figures.
//!    No tracing subscriber exists yet, so spans cost one relaxed load each, and no profiler runs;
//! 3. a **phase** pass: the same operation with the engine's spans timed ([`phases`]);
//! 4. each **profile** asked for, in its own pass: dhat heap profile, pprof CPU profile, chrome
//!    trace (the trace last: it leaves a subscriber installed).
//!
//! One operation ("op", as SmallMind's Allocations/op) is one generate call, prompt encoding
//! included. One [`Session`] serves every pass, as one engine served SmallMind's iterations.
//! This module owns the passes and the arithmetic; the CLI owns files and flags.

pub mod alloc;
pub mod env;
pub mod machine;
pub mod phases;
pub mod probe;
pub mod results;
pub mod stats;

use crate::error::{Error, Result};
use crate::generate::{GenerateParams, Session, synthetic_prompt};
use crate::models::ModelRef;
use crate::optimizations::Optimizations;
use crate::pool::PoolStats;
use crate::tokenizer::Tokenizer;
use alloc::AllocSnapshot;
use phases::{ATTENTION, PHASES, PhaseTimer, Trace};
use results::*;
use sha2::{Digest, Sha256};
use stats::Stat;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Everything that defines a measurement except where its profiles go.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSpec {
    /// The model as named on the command line (recorded, not loaded here).
    pub model_name: String,
    pub prompt: PromptSpec,
    pub params: GenerateParams,
    pub threads: usize,
    pub opts: Optimizations,
    pub warmup: usize,
    pub iterations: usize,
    /// Operations in the phase pass (0: no phase pass).
    pub phase_iterations: usize,
    /// Read the capability probe at the start and the end ([`probe`]), and the machine's
    /// contamination counters around the measured ops ([`machine`]).
    pub probe: bool,
    pub profile: ProfileSettings,
}

/// How long profile passes run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileSettings {
    /// Operations in each profile pass (the CPU pass may run more, see `cpu_seconds`).
    pub iterations: usize,
    /// The CPU profile repeats operations until this much time has passed: at ~250 samples a
    /// second, a short operation would otherwise leave the flame graph nearly empty.
    pub cpu_seconds: f64,
    /// Sampling rate asked of the CPU profiler (it tops out near 250 Hz on Linux).
    pub frequency_hz: i32,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        ProfileSettings { iterations: 1, cpu_seconds: 3.0, frequency_hz: 250 }
    }
}

/// A profile's destination and the name the results file records for it.
#[derive(Debug)]
pub struct Dest<W> {
    pub shown_as: String,
    pub sink: W,
}

/// Where the profiles asked for go; `None` skips that pass.
#[derive(Default)]
pub struct ProfileOutputs<'a> {
    /// dhat writes its JSON to this path (needs the `dhat-heap` feature).
    pub heap: Option<Dest<&'a Path>>,
    pub flamegraph: Option<Dest<&'a mut dyn Write>>,
    pub pprof: Option<Dest<&'a mut dyn Write>>,
    pub trace: Option<Dest<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for ProfileOutputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |d: Option<&String>| d.cloned();
        f.debug_struct("ProfileOutputs")
            .field("heap", &name(self.heap.as_ref().map(|d| &d.shown_as)))
            .field("flamegraph", &name(self.flamegraph.as_ref().map(|d| &d.shown_as)))
            .field("pprof", &name(self.pprof.as_ref().map(|d| &d.shown_as)))
            .field("trace", &name(self.trace.as_ref().map(|d| &d.shown_as)))
            .finish()
    }
}

/// Whether this build can write heap profiles (the `dhat-heap` feature).
pub const HEAP_PROFILING: bool = cfg!(feature = "dhat-heap");

impl BenchSpec {
    /// Rejects a spec that cannot be measured, saying which value to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::Input(msg.to_string()));
        if self.iterations == 0 {
            return bad("--iterations must be at least 1");
        }
        if self.params.max_new_tokens == 0 {
            return bad("--max-new-tokens must be at least 1");
        }
        if self.threads == 0 {
            return bad("--threads must be at least 1");
        }
        if let PromptSpec::Synthetic { tokens: 0, .. } = self.prompt {
            return bad("--prompt-tokens must be at least 1");
        }
        if self.profile.iterations == 0 {
            return bad("--profile-iterations must be at least 1");
        }
        if !(self.profile.cpu_seconds >= 0.0 && self.profile.cpu_seconds.is_finite()) {
            return bad("--profile-seconds must be a finite number of seconds, at least 0");
        }
        if !(1..=1000).contains(&self.profile.frequency_hz) {
            return bad("--profile-hz must be between 1 and 1000 (Linux delivers at most ~250)");
        }
        self.params.sampling.validate().map_err(Error::Input)
    }
}

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
    if outputs.heap.is_some() && !HEAP_PROFILING {
        return Err(Error::Input(
            "--heap-profile needs a build with the dhat-heap feature: \
             cargo run --release --features dhat-heap -- bench ..."
                .into(),
        ));
    }
    let prompt = Prompt::resolve(&spec.prompt, tokenizer, model.vocab_size())?;
    // The last-level cache sizes the probe's buffers and decides the roofline's bandwidth.
    let l3_bytes = env::Hardware::capture().l3_bytes;
    let probe = match spec.probe {
        true => Some(probe::Probe::new(l3_bytes)?),
        false => None,
    };
    let load_at_start = machine::load_1m();
    let probe_start = probe.map(|p| {
        progress("probe: memory and LLC bandwidth, FMA peak");
        p.read()
    });
    let mut session = Session::new(model, spec.opts, spec.threads)?;
    session.validate_prompt(&prompt.ids)?;
    let counting = alloc::is_counting();
    let subscriber_during_measurement = phases::installed();
    let op = |session: &mut Session<'_>| measure_op(session, tokenizer, &prompt, &spec.params);

    progress(&format!("warm-up: {} op(s)", spec.warmup));
    for _ in 0..spec.warmup {
        op(&mut session)?;
    }
    progress(&format!("measuring: {} op(s)", spec.iterations));
    let mut measured = Vec::with_capacity(spec.iterations);
    let (counters, measuring) = (machine::Counters::read(), Instant::now());
    for _ in 0..spec.iterations {
        measured.push(op(&mut session)?);
    }
    let measured_ms = measuring.elapsed().as_secs_f64() * 1e3;
    let probe_end = probe.map(|p| {
        progress("probe: again, after the measured ops");
        p.read()
    });
    let reference_ids = measured[0].ids.clone();
    for (i, record) in measured.iter().enumerate() {
        check_same_output(&reference_ids, &record.ids, &format!("measured iteration {}", i + 1))?;
    }
    let session_pool = session.pool_stats();

    let phase_report = if spec.phase_iterations > 0 {
        progress(&format!("timing phases: {} op(s)", spec.phase_iterations));
        phases::install().map_err(Error::Measurement)?;
        let mut runs = Vec::with_capacity(spec.phase_iterations);
        for i in 0..spec.phase_iterations {
            let timer = PhaseTimer::start();
            let record = op(&mut session)?;
            let totals = timer.finish();
            check_same_output(&reference_ids, &record.ids, &format!("phase iteration {}", i + 1))?;
            runs.push((totals, record.iteration.decode_tok_s));
        }
        Some(phase_report(&runs, &measured))
    } else {
        None
    };

    let mut profiles = Profiles::default();
    if let Some(dest) = outputs.heap.take() {
        progress(&format!("heap profile: {} op(s)", spec.profile.iterations));
        profiles.heap = Some(heap_profile(dest, spec.profile.iterations, &mut || {
            let record = op(&mut session)?;
            check_same_output(&reference_ids, &record.ids, "heap profile pass")
        })?);
    }
    if outputs.flamegraph.is_some() || outputs.pprof.is_some() {
        progress(&format!(
            "CPU profile: at least {} op(s) and {} s",
            spec.profile.iterations, spec.profile.cpu_seconds
        ));
        let title = format!(
            "smallmind bench --model {} | {} | {} thread(s)",
            spec.model_name, spec.opts, spec.threads
        );
        profiles.cpu = Some(cpu_profile(
            outputs.flamegraph.take(),
            outputs.pprof.take(),
            &spec.profile,
            &title,
            &mut || {
                let record = op(&mut session)?;
                check_same_output(&reference_ids, &record.ids, "CPU profile pass")
            },
        )?);
    }
    if let Some(dest) = outputs.trace.take() {
        progress(&format!("chrome trace: {} op(s)", spec.profile.iterations));
        phases::install().map_err(Error::Measurement)?;
        let trace = Trace::start(dest.sink);
        let mut traced = Ok(());
        for _ in 0..spec.profile.iterations {
            traced = op(&mut session).and_then(|r| check_same_output(&reference_ids, &r.ids, "trace pass"));
            if traced.is_err() {
                break;
            }
        }
        trace.finish().map_err(Error::Measurement)?;
        traced?;
        profiles.trace = Some(TraceProfile { path: dest.shown_as, iterations: spec.profile.iterations });
    }

    let summary = summarise(&measured);
    let machine = probe.zip(probe_start.zip(probe_end)).map(|(p, (start, end))| {
        let report = p.report(start, end);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let contamination =
            machine::Contamination::measure(load_at_start, counters, measured_ms, report.drift(), cores);
        let roofline = machine::Roofline::of(
            model,
            prompt.ids.len(),
            spec.params.max_new_tokens,
            summary.decode_tok_s.as_ref().map(|s| s.median),
            summary.prefill_tok_s.median,
            spec.threads,
            &report,
            l3_bytes,
        );
        machine::MachineReport { probe: report, contamination, roofline }
    });
    let pool = pool_report(&measured, session_pool);
    let iterations: Vec<Iteration> = measured.into_iter().map(|r| r.iteration).collect();
    let allocator = match (counting, HEAP_PROFILING) {
        (false, _) => "none",
        (true, false) => "counting",
        (true, true) => "counting+dhat",
    };
    Ok(BenchResults {
        schema_version: SCHEMA_VERSION,
        workload: Workload {
            model: spec.model_name.clone(),
            model_parameters: model.parameter_count() as u64,
            prompt: spec.prompt.clone(),
            prompt_tokens: prompt.ids.len(),
            max_new_tokens: spec.params.max_new_tokens,
            sampling: spec.params.sampling,
            threads: spec.threads,
            optimizations: spec.opts,
            warmup: spec.warmup,
            iterations: spec.iterations,
        },
        iterations,
        summary,
        pool,
        phases: phase_report,
        output: Output {
            digest: digest(&reference_ids),
            text: tokenizer.map(|t| t.decode(&reference_ids)),
            generated_ids: reference_ids,
        },
        profiles,
        instrumentation: Instrumentation {
            allocator: allocator.into(),
            span_subscriber_during_measurement: subscriber_during_measurement,
        },
        environment: env::Environment::capture(),
        machine,
    })
}

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

/// One measured operation: its figures, its output and the pool after it.
struct OpRecord {
    iteration: Iteration,
    ids: Vec<u32>,
    pool: PoolStats,
    pool_before: PoolStats,
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

fn stat(samples: impl Iterator<Item = f64>) -> Stat {
    let samples: Vec<f64> = samples.collect();
    Stat::of(&samples).expect("at least one measured iteration")
}

fn summarise(measured: &[OpRecord]) -> Summary {
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

fn pool_report(measured: &[OpRecord], session: PoolStats) -> PoolReport {
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

fn phase_report(runs: &[(phases::PhaseTotals, Option<f64>)], measured: &[OpRecord]) -> PhaseReport {
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

#[cfg(feature = "dhat-heap")]
fn heap_profile(
    dest: Dest<&Path>,
    iterations: usize,
    op: &mut dyn FnMut() -> Result<()>,
) -> Result<HeapProfile> {
    let profiler = dhat::Profiler::builder().file_name(dest.sink).trim_backtraces(Some(32)).build();
    let mut result = Ok(());
    for _ in 0..iterations {
        result = op();
        if result.is_err() {
            break;
        }
    }
    let stats = dhat::HeapStats::get();
    drop(profiler);
    result?;
    Ok(HeapProfile {
        path: dest.shown_as,
        iterations,
        total_blocks: stats.total_blocks,
        total_bytes: stats.total_bytes,
        max_bytes: stats.max_bytes as u64,
    })
}

#[cfg(not(feature = "dhat-heap"))]
fn heap_profile(_: Dest<&Path>, _: usize, _: &mut dyn FnMut() -> Result<()>) -> Result<HeapProfile> {
    Err(Error::Input("--heap-profile needs a build with the dhat-heap feature".into()))
}

fn cpu_profile(
    flamegraph: Option<Dest<&mut dyn Write>>,
    pprof_out: Option<Dest<&mut dyn Write>>,
    settings: &ProfileSettings,
    title: &str,
    op: &mut dyn FnMut() -> Result<()>,
) -> Result<CpuProfile> {
    let failed = |what: &str, e: pprof::Error| Error::Measurement(format!("CPU profiler: {what}: {e}"));
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(settings.frequency_hz)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| failed("cannot start", e))?;
    let start = Instant::now();
    let mut iterations = 0;
    while iterations < settings.iterations || start.elapsed().as_secs_f64() < settings.cpu_seconds {
        op()?;
        iterations += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = guard.report().build().map_err(|e| failed("cannot build the report", e))?;
    drop(guard);
    let samples = report.data.values().map(|&n| n.max(0) as u64).sum();
    let io = |e: std::io::Error| Error::Measurement(format!("cannot write the CPU profile: {e}"));
    let mut profile = CpuProfile {
        flamegraph_path: None,
        pprof_path: None,
        iterations,
        seconds,
        frequency_hz: settings.frequency_hz,
        samples,
    };
    if let Some(dest) = flamegraph {
        let mut options = pprof::flamegraph::Options::default();
        options.title = title.to_string();
        options.subtitle =
            Some(format!("{samples} samples at {} Hz over {seconds:.1} s", settings.frequency_hz));
        let mut svg = Vec::new();
        report.flamegraph_with_options(&mut svg, &mut options).map_err(|e| failed("flame graph", e))?;
        dest.sink.write_all(&svg).map_err(io)?;
        profile.flamegraph_path = Some(dest.shown_as);
    }
    if let Some(dest) = pprof_out {
        use pprof::protos::Message;
        let encoded = report.pprof().map_err(|e| failed("pprof", e))?.encode_to_vec();
        dest.sink.write_all(&encoded).map_err(io)?;
        profile.pprof_path = Some(dest.shown_as);
    }
    Ok(profile)
}
