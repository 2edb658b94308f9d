//! `smallmind bench`: measure one workload with one set of optimizations and write the results
//! JSON and any profiles asked for. The passes and the arithmetic live in `smallmind::bench`;
//! this module owns the flags, the files and the summary printed at the end.
//!
//! Every output is first written to a temporary file beside its destination and renamed into
//! place only when the whole run succeeded: a failed or interrupted run leaves nothing behind.

use super::{ModelArg, OptArgs, SamplingArgs};
use anyhow::{Context, Result, bail};
use clap::Args;
use smallmind::bench::results::{BenchResults, PromptSpec};
use smallmind::bench::{self, BenchSpec, Dest, ProfileOutputs, ProfileSettings};
use smallmind::{GenerateParams, IoContext};
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("prompt_source").required(true).args(["prompt", "prompt_tokens"]))]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The prompt text (encoded inside each timed operation, as SmallMind did). At most the
    /// model's context: a longer prompt is refused (exit 2), since its prefill would compute only
    /// the last n_ctx tokens and its figures would count the others.
    #[arg(long)]
    prompt: Option<String>,
    /// A synthetic prompt of N token ids, seeded by --seed; at most the model's context, as
    /// --prompt.
    #[arg(long, value_name = "N")]
    prompt_tokens: Option<usize>,
    /// Tokens to generate per operation: always this many, past the model's end of turn (unlike
    /// `generate`), so that every run does the same work.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Threads (default: all cores, as `generate`; 1 runs without any thread pool). Part of the
    /// workload: the results record it, and experiments always name it.
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    opts: OptArgs,
    /// Operations run and discarded before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Measured operations (one operation is one generate call).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Operations timed per phase from the engine's spans, after the measured ones (0: skip).
    #[arg(long, default_value_t = 3)]
    phase_iterations: usize,
    /// Write the results JSON here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write a dhat heap profile (open with DHAT's dh_view.html); needs `--features dhat-heap`.
    #[arg(long, value_name = "FILE.json")]
    heap_profile: Option<PathBuf>,
    /// Write a CPU flame graph (pprof-rs sampling).
    #[arg(long, value_name = "FILE.svg")]
    flamegraph: Option<PathBuf>,
    /// Write the CPU profile in pprof's protobuf format (`go tool pprof`, `pprof -http`).
    #[arg(long, value_name = "FILE.pb")]
    pprof: Option<PathBuf>,
    /// Write the CPU profile's stacks collapsed (`thread;root;...;leaf COUNT` per line, for
    /// inferno, flamegraph.pl or a diff of two profiles).
    #[arg(long, value_name = "FILE.folded")]
    folded: Option<PathBuf>,
    /// Write a chrome trace of the engine's spans (Perfetto, chrome://tracing).
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Skip the capability probe (memory bandwidth, LLC bandwidth and FMA peak, ~0.3 s each at
    /// the start and the end): the results then carry no roofline fractions.
    #[arg(long)]
    no_probe: bool,
    /// Operations in each profile pass.
    #[arg(long, default_value_t = 1)]
    profile_iterations: usize,
    /// The CPU profile repeats operations for at least this long.
    #[arg(long, default_value_t = 3.0)]
    profile_seconds: f64,
    /// CPU profile sampling rate (Linux delivers at most ~250 Hz).
    #[arg(long, default_value_t = 250)]
    profile_hz: i32,
}

// ~100 lines, on purpose: the command's steps in the order they must happen (flags to a spec,
// every output file created before anything runs, the run, the files persisted only after it
// succeeded); split, that order would be spread over several functions.
pub fn run(args: BenchArgs) -> Result<()> {
    let opts = args.opts.resolve()?;
    let sampling = args.sampling.resolve()?;
    let prompt = match (&args.prompt, args.prompt_tokens) {
        (Some(text), _) => PromptSpec::Text { text: text.clone() },
        (None, Some(tokens)) => PromptSpec::Synthetic { tokens, seed: args.sampling.seed },
        (None, None) => bail!("give --prompt TEXT or --prompt-tokens N"),
    };
    let spec = BenchSpec {
        model_name: args.model.model.clone(),
        prompt,
        params: GenerateParams { max_new_tokens: args.max_new_tokens, sampling, stop_tokens: Vec::new() },
        threads: super::resolve_threads(args.threads)?,
        opts,
        warmup: args.warmup,
        iterations: args.iterations,
        phase_iterations: args.phase_iterations,
        probe: !args.no_probe,
        profile: ProfileSettings {
            iterations: args.profile_iterations,
            cpu_seconds: args.profile_seconds,
            frequency_hz: args.profile_hz,
        },
    };
    spec.validate()?;
    if args.heap_profile.is_some() && !bench::HEAP_PROFILING {
        bail!(
            "--heap-profile needs a build with the dhat-heap feature: \
             cargo run --release --features dhat-heap -- bench ... --heap-profile FILE"
        );
    }

    // Every destination is checked, and its temporary file made, before any work.
    let flags = [
        ("--out", &args.out),
        ("--heap-profile", &args.heap_profile),
        ("--flamegraph", &args.flamegraph),
        ("--pprof", &args.pprof),
        ("--folded", &args.folded),
        ("--trace", &args.trace),
    ];
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    for (flag, path) in flags {
        if let Some(path) = path {
            let canonical = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            if let Some((other, _)) = seen.iter().find(|(_, p)| *p == canonical) {
                bail!(
                    "{flag} and {other} name the same file {}: give each output its own path",
                    path.display()
                );
            }
            seen.push((flag, canonical));
        }
    }
    let mut out = args.out.as_deref().map(|p| OutFile::create("--out", p)).transpose()?;
    let heap = args.heap_profile.as_deref().map(|p| OutFile::create("--heap-profile", p)).transpose()?;
    let mut flame = args.flamegraph.as_deref().map(|p| OutFile::create("--flamegraph", p)).transpose()?;
    let mut pprof = args.pprof.as_deref().map(|p| OutFile::create("--pprof", p)).transpose()?;
    let mut folded = args.folded.as_deref().map(|p| OutFile::create("--folded", p)).transpose()?;
    let trace = args.trace.as_deref().map(|p| OutFile::create("--trace", p)).transpose()?;

    let loaded = args.model.load()?;
    let trace_writer = match &trace {
        Some(file) => Some(Dest {
            shown_as: file.shown_as(),
            sink: Box::new(
                file.temp.reopen().writing(&file.path).context("cannot reopen the trace's temporary file")?,
            ) as Box<dyn Write + Send>,
        }),
        None => None,
    };
    let heap_path = heap.as_ref().map(|f| f.temp.path().to_path_buf());
    let outputs = ProfileOutputs {
        heap: heap
            .as_ref()
            .zip(heap_path.as_deref())
            .map(|(f, path)| Dest { shown_as: f.shown_as(), sink: path }),
        flamegraph: flame.as_mut().map(OutFile::dest),
        pprof: pprof.as_mut().map(OutFile::dest),
        folded: folded.as_mut().map(OutFile::dest),
        trace: trace_writer,
    };
    let results =
        bench::run(loaded.model.as_ref(), loaded.tokenizer.as_ref(), &spec, outputs, &mut |line| {
            eprintln!("bench: {line}")
        })?;

    if let Some(file) = &mut out {
        serde_json::to_writer_pretty(&mut file.temp, &results)
            .map_err(std::io::Error::from)
            .writing(&file.path)?;
        file.temp.write_all(b"\n").writing(&file.path)?;
    }
    if let Some(file) = &heap {
        let written = std::fs::metadata(file.temp.path()).map(|m| m.len()).unwrap_or(0);
        if written == 0 {
            bail!("dhat wrote no heap profile to {}", file.path.display());
        }
    }
    for file in [out, heap, flame, pprof, folded, trace].into_iter().flatten() {
        file.persist()?;
    }
    print_summary(&results);
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; its timings say nothing about release speed");
    }
    Ok(())
}

/// An output being written: a temporary file in the destination's directory, renamed on success
/// and deleted if dropped first.
struct OutFile {
    path: PathBuf,
    temp: NamedTempFile,
}

impl OutFile {
    fn create(flag: &str, path: &Path) -> Result<OutFile> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.is_empty() || path.is_dir() {
            bail!("{flag} {}: give a file name, not a directory", path.display());
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "{flag} {}: the directory {} does not exist; create it first",
                path.display(),
                dir.display()
            );
        }
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // A results file is for sharing: the usual mode (less the umask), not tempfile's 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let temp =
            builder.tempfile_in(dir).writing(dir).with_context(|| format!("{flag} {}", path.display()))?;
        Ok(OutFile { path: path.to_path_buf(), temp })
    }

    fn shown_as(&self) -> String {
        self.path.display().to_string()
    }

    fn dest(&mut self) -> Dest<&mut dyn Write> {
        Dest { shown_as: self.shown_as(), sink: self.temp.as_file_mut() }
    }

    fn persist(self) -> Result<()> {
        let path = self.path;
        self.temp.persist(&path).map_err(|e| e.error).writing(&path)?;
        Ok(())
    }
}

fn print_summary(r: &BenchResults) {
    let s = &r.summary;
    let w = &r.workload;
    println!(
        "{} | {} | {} thread(s) | prompt {} tokens | {} new | {} op(s) after {} warm-up",
        w.model, w.optimizations, w.threads, w.prompt_tokens, w.max_new_tokens, w.iterations, w.warmup
    );
    let spread = |st: &smallmind::bench::stats::Stat, digits: usize| {
        format!(
            "{:.*} median  (p10 {:.*}, p90 {:.*}, MAD {:.*})",
            digits, st.median, digits, st.p10, digits, st.p90, digits, st.mad
        )
    };
    println!("  ttft_ms                {}", spread(&s.ttft_ms, 3));
    match &s.decode_tok_s {
        Some(st) => println!("  decode_tok_s           {}", spread(st, 0)),
        None => println!("  decode_tok_s           n/a (one token per op)"),
    }
    println!("  end_to_end_tok_s       {}", spread(&s.end_to_end_tok_s, 0));
    if r.instrumentation.allocator == "none" {
        println!("  allocations            not counted (no counting allocator in this process)");
    } else {
        println!(
            "  alloc_count_per_op     {:.1}  ({:.0} bytes); per token {:.2}; decode per token {:.2}",
            s.alloc_count_per_op,
            s.alloc_bytes_per_op,
            s.alloc_count_per_token,
            s.decode_alloc_count_per_token
        );
        println!(
            "  peak_heap_bytes        {}  (+{} during an op)",
            s.peak_heap_bytes, s.peak_heap_growth_bytes
        );
    }
    let hit_rate = r.pool.hit_rate.map_or("no rents".to_string(), |h| format!("{:.1}% hits", h * 100.0));
    println!(
        "  pool                   {:.0} rents/op, {hit_rate}, high water {} bytes",
        r.pool.rents_per_op, r.pool.session.high_water_bytes
    );
    if let Some(p) = &r.phases {
        let mut top: Vec<_> = p.phases.iter().filter(|ph| ph.name != "sampling").collect();
        top.sort_by(|a, b| b.ms_per_op.total_cmp(&a.ms_per_op));
        let listed: Vec<String> =
            top.iter().take(4).map(|ph| format!("{} {:.1}%", ph.name, ph.share_of_forward * 100.0)).collect();
        // The overhead compares decode speeds: a run of one-token operations has none to compare.
        let overhead = p.overhead_ratio.map_or("no decode to compare".to_string(), |r| format!("x{r:.2}"));
        println!(
            "  phases                 attention {:.1}% of forward; {} (span overhead {overhead})",
            p.attention_share_of_forward * 100.0,
            listed.join(", "),
        );
    }
    println!("  output                 {} tokens, {}", r.output.generated_ids.len(), r.output.digest);
}
