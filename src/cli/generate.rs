//! `smallmind generate`: stream a continuation, or print one JSON object.

use super::{ModelArg, OptArgs, SamplingArgs};
use anyhow::{Context, Result, bail};
use clap::Args;
use smallmind::models::checkpoint::LoadedModel;
use smallmind::models::safetensors_io;
use smallmind::tokenizer::StreamDecoder;
use smallmind::tokenizer::chat::Message;
use smallmind::{GenerateParams, Session};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The prompt text.
    #[arg(long, conflicts_with_all = ["prompt_ids", "chat"], required_unless_present_any = ["prompt_ids", "chat"])]
    prompt: Option<String>,
    /// The prompt as comma-separated token ids, e.g. `1,2,3`.
    #[arg(long, value_delimiter = ',', conflicts_with = "chat")]
    prompt_ids: Option<Vec<u32>>,
    /// A user message, sent through the model's own chat template (docs/chat.md); the reply
    /// ends at the model's end of turn.
    #[arg(long, value_name = "MESSAGE")]
    chat: Option<String>,
    /// A system message before `--chat`'s.
    #[arg(long, value_name = "MESSAGE")]
    system: Option<String>,
    /// Tokens to generate at most (fewer when the model ends its turn; see --no-stop).
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Threads (default: all cores; 1 runs without any thread pool).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    opts: OptArgs,
    /// Keep generating past the model's end of turn (`eos_token_id` in config.json or
    /// generation_config.json; `<s>` for llama2.c, where its `run` stops), to --max-new-tokens.
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
    if args.system.is_some() && args.chat.is_none() {
        bail!("--system is the system message of a chat: give --chat MESSAGE too");
    }
    let threads = super::resolve_threads(args.threads)?;
    let sampling = args.sampling.resolve()?;
    let loaded = args.model.load()?;
    // Without a tokenizer (a Llama directory with none) the model runs on ids, and ids are the output.
    let tokenizer = loaded.tokenizer.as_ref();

    let start = Instant::now();
    let prompt_ids = match (&args.prompt, &args.prompt_ids, &args.chat) {
        (Some(text), _, _) => loaded.require_tokenizer("--prompt")?.encode(text)?,
        (None, Some(ids), _) => ids.clone(),
        (None, None, Some(message)) => chat_prompt(&loaded, args.system.as_deref(), message)?,
        (None, None, None) => bail!("give --prompt TEXT, --prompt-ids 1,2,3 or --chat MESSAGE"),
    };
    let encode_time = start.elapsed();
    let mut session = Session::new(&loaded.model, opts, threads)?;
    session.validate_prompt(&prompt_ids)?;

    let stop_tokens = if args.no_stop { Vec::new() } else { loaded.end_tokens.clone() };
    let params = GenerateParams { max_new_tokens: args.max_new_tokens, sampling, stop_tokens };
    let mut all_logits: Vec<Vec<f32>> = Vec::new();
    let keep_logits = args.logits_out.is_some();
    let mut stream = StreamDecoder::default();
    let stream_text = !args.json;
    // A chat shows the reply only; a prompt is shown with its continuation.
    if stream_text && args.chat.is_none() {
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
        // The end of turn ends the text; it is not part of it.
        if stream_text && !params.stop_tokens.contains(&id) {
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

/// The ids of a conversation of one user `message` (after a `system` one) as the model's chat
/// template writes it, the assistant's turn opened.
fn chat_prompt(loaded: &LoadedModel, system: Option<&str>, message: &str) -> Result<Vec<u32>> {
    let tokenizer = loaded.require_tokenizer("--chat")?;
    let Some(template) = &loaded.chat_template else {
        bail!(
            "{} has no chat template (tokenizer_config.json's `chat_template`, chat_template.jinja, or a GGUF \
             file's tokenizer.chat_template): give the text with --prompt",
            loaded.source
        );
    };
    let mut messages: Vec<Message> = system.map(|s| Message::new("system", s)).into_iter().collect();
    messages.push(Message::new("user", message));
    Ok(tokenizer.encode(&template.render(&messages, true)?)?)
}

/// Token ids as the output of a model without a tokenizer: separated by spaces.
fn ids_text(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}
