//! `smallmind generate`: stream a continuation, or print one JSON object.

use super::{ModelArg, OptArgs, SamplingArgs};
use anyhow::{Context, Result, bail};
use clap::Args;
use smallmind::models::safetensors_io;
use smallmind::tokenizer::llama2c;
use smallmind::tokenizer::{StreamDecoder, Tokenizer};
use smallmind::{GenerateParams, Session};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The prompt text.
    #[arg(long, conflicts_with = "prompt_ids", required_unless_present = "prompt_ids")]
    prompt: Option<String>,
    /// The prompt as comma-separated token ids, e.g. `1,2,3`.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Threads (default: all cores; 1 runs without any thread pool).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    opts: OptArgs,
    /// With a llama2.c tokenizer, keep generating past `<s>` (where llama2.c's `run` stops).
    #[arg(long)]
    no_stop: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Write the logits of every generated step to this JSON file (one array per step).
    #[arg(long, value_name = "FILE")]
    logits_out: Option<PathBuf>,
}

// ~95 lines, on purpose: flag checks before anything is loaded, the streaming loop and the
// summary read top to bottom as the command runs.
pub fn run(args: GenerateArgs) -> Result<()> {
    let opts = args.opts.resolve()?;
    if let Some(path) = &args.logits_out {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() || path.is_dir() {
            bail!(
                "--logits-out {}: {} is not a directory, or the path is one",
                path.display(),
                parent.display()
            );
        }
    }
    let threads = super::resolve_threads(args.threads)?;
    let sampling = args.sampling.resolve()?;
    let loaded = args.model.load()?;
    // Without a tokenizer (a Llama directory with none) the model runs on ids, and ids are the output.
    let tokenizer = loaded.tokenizer.as_ref();

    let start = Instant::now();
    let prompt_ids = match (&args.prompt, &args.prompt_ids) {
        (Some(text), _) => loaded.require_tokenizer("--prompt")?.encode(text)?,
        (None, Some(ids)) => ids.clone(),
        (None, None) => bail!("give --prompt TEXT or --prompt-ids 1,2,3"),
    };
    let encode_time = start.elapsed();
    let mut session = Session::new(&loaded.model, opts, threads)?;
    session.validate_prompt(&prompt_ids)?;

    // llama2.c's `run` ends a story at `<s>`, the token that delimits sequences in its training
    // data: with its tokenizer, or on a llama2.c checkpoint run on ids (the same model, so the
    // same output with or without tokenizer.bin beside it).
    let llama2c_checkpoint =
        matches!(loaded.model, smallmind::Model::Llama(_)) && std::path::Path::new(&loaded.source).is_file();
    let stop_token = match tokenizer {
        Some(Tokenizer::Llama2c(_)) if !args.no_stop => Some(llama2c::BOS),
        None if llama2c_checkpoint && !args.no_stop => Some(llama2c::BOS),
        _ => None,
    };
    let params = GenerateParams { max_new_tokens: args.max_new_tokens, sampling, stop_token };
    let mut all_logits: Vec<Vec<f32>> = Vec::new();
    let keep_logits = args.logits_out.is_some();
    let mut stream = StreamDecoder::default();
    let stream_text = !args.json;
    if stream_text {
        match tokenizer {
            Some(t) => print!("{}", t.decode(&prompt_ids)),
            None => print!("{}", ids_text(&prompt_ids)),
        }
    }
    let mut stdout = std::io::stdout();
    let generated = session.generate(&prompt_ids, &params, &mut |id, logits| {
        if keep_logits {
            all_logits.push(logits.to_vec());
        }
        if stream_text {
            let _ = match tokenizer {
                Some(t) => write!(stdout, "{}", stream.push(t, id)),
                None => write!(stdout, " {id}"),
            };
            let _ = stdout.flush();
        }
    })?;
    let ttft_ms = generated.ttft().map(|t| (t + encode_time).as_secs_f64() * 1e3);
    let decode_tok_s = generated.decode_tok_s();

    if let Some(path) = &args.logits_out {
        let json = serde_json::to_vec(&all_logits)?;
        safetensors_io::write_atomic(path, &json).context("--logits-out")?;
    }
    let fmt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.2} {unit}"));
    if args.json {
        let json = serde_json::json!({
            "model": loaded.source,
            "prompt_ids": prompt_ids,
            "generated_ids": generated.generated_ids,
            "text": tokenizer.map(|t| t.decode(&generated.generated_ids)),
            "ttft_ms": ttft_ms,
            "decode_tok_s": decode_tok_s,
            "optimizations": opts,
            "threads": threads,
            "sampling": sampling,
        });
        println!("{json}");
    } else {
        println!("{}", tokenizer.map_or_else(String::new, |t| stream.finish(t)));
        eprintln!(
            "[{} new tokens{} | TTFT {} | decode {} | {} | {} thread(s)]",
            generated.generated_ids.len(),
            if tokenizer.is_none() { " (no tokenizer: token ids shown)" } else { "" },
            fmt(ttft_ms, "ms"),
            fmt(decode_tok_s, "tok/s"),
            opts,
            threads
        );
    }
    Ok(())
}

/// Token ids as the output of a model without a tokenizer: separated by spaces.
fn ids_text(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}
