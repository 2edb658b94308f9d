//! smallmind against its peers (candle 0.11 and llama.cpp) on the same llama2.c checkpoint, at
//! each thread count, each generation in its own process, in rotating order, with identical
//! tokens checked and a markdown table that names the machine.
//!
//! ```text
//! peers compare --smallmind target/release/smallmind --model stories15m.bin --threads 1,2
//! ```
//!
//! llama.cpp runs a GGUF F32 conversion of the checkpoint (written beside it by [`gguf`]); its
//! source comes vendored in the `llama-cpp-sys-2` crate and is compiled by cmake with this
//! crate's target CPU, so build with `RUSTFLAGS="-C target-cpu=native"` (the tool refuses a build
//! without AVX2 on a machine that has it: a llama.cpp without its SIMD kernels is not a peer).

mod engines;
mod gguf;
mod table;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use engines::Run;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(about = "smallmind against candle and llama.cpp on the same llama2.c checkpoint")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure every engine at every thread count and print (or write) the table.
    Compare(CompareArgs),
    /// One generation by one peer, printed as JSON (what `compare` runs in each process).
    #[command(hide = true)]
    Once(OnceArgs),
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The smallmind binary (a release build).
    #[arg(long, default_value = "target/release/smallmind")]
    smallmind: PathBuf,
    /// A llama2.c checkpoint, e.g. from `smallmind export --format llama2c`.
    #[arg(long)]
    model: PathBuf,
    /// Its `tokenizer.bin` (default: beside the checkpoint).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Rounds: each runs every engine once per thread count, in an order that rotates.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Tokens generated greedily from `<s>` for the decode figure.
    #[arg(long, default_value_t = 255)]
    new_tokens: usize,
    /// The prompt length of the prefill figure (0: no prefill runs).
    #[arg(long, default_value_t = 64)]
    prompt_tokens: usize,
    /// Peers, comma-separated: candle, llama.cpp (its defaults: flash attention as it decides, F16
    /// KV cache), llama.cpp-exact (F32 KV cache, no flash attention: smallmind's arithmetic, so
    /// its tokens are comparable).
    #[arg(long, value_delimiter = ',', default_value = "candle,llama.cpp,llama.cpp-exact")]
    peers: Vec<String>,
    /// llama2.c's `run`, built from its `run.c` (not on a registry: fetch and build it yourself),
    /// as a third peer: decode only, and it prints text, so its tokens are not compared.
    #[arg(long)]
    run_c: Option<PathBuf>,
    /// Also write the table to this markdown file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct OnceArgs {
    #[arg(long)]
    engine: String,
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    gguf: PathBuf,
    #[arg(long)]
    threads: usize,
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Vec<u32>,
    #[arg(long)]
    new_tokens: usize,
    #[arg(long)]
    exact: bool,
}

fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Compare(args) => compare(&args),
        Cmd::Once(args) => once(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

fn once(a: &OnceArgs) -> Result<()> {
    let v = match a.engine.as_str() {
        "candle" => engines::candle(&a.model, &a.prompt_ids, a.new_tokens)?,
        "llama.cpp" => engines::llama_cpp(&a.gguf, &a.prompt_ids, a.new_tokens, a.threads, a.exact)?,
        other => bail!("unknown engine {other}"),
    };
    println!("{v}");
    Ok(())
}

const PEERS: [&str; 3] = ["candle", "llama.cpp", "llama.cpp-exact"];

/// The engines' names, smallmind first.
fn engines(a: &CompareArgs) -> Result<Vec<String>> {
    let mut out = vec!["smallmind".to_string()];
    for p in &a.peers {
        if !PEERS.contains(&p.as_str()) {
            bail!("--peers: unknown peer `{p}`; the peers are {}", PEERS.join(", "));
        }
        out.push(p.clone());
    }
    if let Some(run) = &a.run_c {
        if !run.is_file() {
            bail!("--run-c {}: no such file (build llama2.c's run.c first)", run.display());
        }
        out.push("llama2.c".to_string());
    }
    Ok(out)
}

/// Refuses a build whose llama.cpp would lack the machine's SIMD (see the module docs).
fn check_target_cpu() -> Result<()> {
    if std::arch::is_x86_feature_detected!("avx2") && !cfg!(target_feature = "avx2") {
        bail!(
            "this build of peers targets a CPU without AVX2, so its llama.cpp would run without \
             its SIMD kernels; rebuild with RUSTFLAGS=\"-C target-cpu=native\""
        );
    }
    Ok(())
}

/// The prefill prompt: `<s>` and then ids spread over the vocabulary (fixed, so every engine and
/// every run sees the same one).
fn prefill_prompt(len: usize, vocab: usize) -> Vec<u32> {
    let spread = (vocab - 3).max(1);
    std::iter::once(1).chain((1..len).map(|i| (3 + (i * 7919) % spread) as u32)).collect()
}

/// One measurement: `engine` at `threads` on `prompt`, in its own process.
fn measure(
    a: &CompareArgs,
    files: &Files,
    engine: &str,
    threads: usize,
    prompt: &[u32],
    new: usize,
) -> Result<Run> {
    let what = format!("{engine} at {threads} thread(s)");
    if let (Some(run), "llama2.c") = (&a.run_c, engine) {
        return engines::run_c(run, &a.model, &files.tokenizer, new, threads);
    }
    let cmd = if engine == "smallmind" {
        engines::smallmind_command(&a.smallmind, &a.model, &files.tokenizer, prompt, new, threads)
    } else {
        let ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
        let mut c = Command::new(std::env::current_exe()?);
        c.args(["once", "--engine", engine.trim_end_matches("-exact")])
            .arg("--model")
            .arg(&a.model)
            .arg("--gguf")
            .arg(&files.gguf);
        c.args(["--threads", &threads.to_string(), "--prompt-ids", &ids.join(",")]);
        c.args(["--new-tokens", &new.to_string()]);
        if engine == "llama.cpp-exact" {
            c.arg("--exact");
        }
        c.env("RAYON_NUM_THREADS", threads.to_string());
        c
    };
    engines::run_process(cmd, &what)
}

struct Files {
    tokenizer: PathBuf,
    gguf: PathBuf,
}

fn compare(a: &CompareArgs) -> Result<()> {
    let names = engines(a)?;
    check_target_cpu()?;
    if a.rounds == 0 || a.new_tokens < 2 || a.threads.contains(&0) {
        bail!("--rounds must be at least 1, --new-tokens at least 2 and every --threads at least 1");
    }
    if !a.smallmind.is_file() {
        bail!(
            "{} is not a file: build it with `cargo build --release` or pass --smallmind",
            a.smallmind.display()
        );
    }
    if !a.model.is_file() {
        bail!(
            "--model {}: no such file (write one with `smallmind export --format llama2c`)",
            a.model.display()
        );
    }
    let tokenizer = a.tokenizer.clone().unwrap_or_else(|| a.model.with_file_name("tokenizer.bin"));
    let gguf = a.model.with_extension("f32.gguf");
    let header = if names.iter().any(|n| n.starts_with("llama.cpp")) && !fresh(&gguf, &[&a.model, &tokenizer])
    {
        eprintln!("writing {} (GGUF F32) for llama.cpp", gguf.display());
        gguf::convert(&a.model, &tokenizer, &gguf)?
    } else {
        // The header alone: 28 bytes, not the whole checkpoint.
        let mut head = [0u8; 28];
        let mut file =
            std::fs::File::open(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
        std::io::Read::read_exact(&mut file, &mut head)
            .with_context(|| format!("{}: no llama2.c header", a.model.display()))?;
        gguf::Header::parse(&head)?
    };
    // Decode runs `<s>` and `--new-tokens` tokens; prefill runs the prompt and one token.
    if 1 + a.new_tokens > header.seq_len || a.prompt_tokens + 1 > header.seq_len {
        bail!(
            "--new-tokens {} (after `<s>`) or --prompt-tokens {} (and one token) exceed the checkpoint's context of {} tokens",
            a.new_tokens,
            a.prompt_tokens,
            header.seq_len
        );
    }
    let files = Files { tokenizer, gguf };
    let machine_start = table::probe(&a.smallmind, &a.model, &files.tokenizer)?;
    let decode_prompt = [1u32];
    let prefill = prefill_prompt(a.prompt_tokens, header.vocab_size);
    let mut results = table::Results::new(&names, &a.threads);
    for round in 0..a.rounds {
        for &threads in &a.threads {
            for i in 0..names.len() {
                let engine = &names[(i + round) % names.len()];
                eprint!("\rround {}/{}: {engine} at {threads} thread(s)          ", round + 1, a.rounds);
                let run = measure(a, &files, engine, threads, &decode_prompt, a.new_tokens)?;
                let pre = (a.prompt_tokens > 0 && engine != "llama2.c")
                    .then(|| measure(a, &files, engine, threads, &prefill, 1))
                    .transpose()?;
                results.push(engine, threads, run, pre);
            }
        }
    }
    eprintln!();
    let machine_end = table::probe(&a.smallmind, &a.model, &files.tokenizer)?;
    let text = table::render(a, &header, &results, machine_start, machine_end);
    println!("{text}");
    if let Some(out) = &a.out {
        let tmp = out.with_extension("md.tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

/// Whether `path` exists and is newer than every source.
fn fresh(path: &Path, sources: &[&Path]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match modified(path) {
        Some(t) => sources.iter().all(|s| modified(s).is_some_and(|s| s <= t)),
        None => false,
    }
}
