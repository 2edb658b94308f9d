//! One greedy generation per process, timed the same way in every engine.
//!
//! Each engine gets the prompt's token ids, runs one forward pass over them (`ttft_ms`: from
//! before that pass to the first token's argmax), then one pass per token until `new_tokens`
//! tokens exist. `decode_tok_s` is `(n - 1) / (t_last - t_first)` over the times each token was
//! chosen: smallmind's `generate --json` figure. Greedy is a plain argmax (lowest id on ties).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// What one generation measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub ttft_ms: f64,
    pub decode_tok_s: Option<f64>,
    pub generated_ids: Vec<u32>,
    /// The decoded text, where the engine prints it (smallmind, llama2.c).
    pub text: Option<String>,
}

impl Run {
    pub fn from_json(v: &Value) -> Result<Run> {
        let ids = v["generated_ids"].as_array().context("no generated_ids")?;
        Ok(Run {
            ttft_ms: v["ttft_ms"].as_f64().context("no ttft_ms")?,
            decode_tok_s: v["decode_tok_s"].as_f64(),
            generated_ids: ids
                .iter()
                .map(|i| i.as_u64().map(|i| i as u32))
                .collect::<Option<_>>()
                .context("ids")?,
            text: v["text"].as_str().map(str::to_string),
        })
    }

    fn from_times(times: &[f64], ids: Vec<u32>) -> Value {
        let n = times.len();
        let decode = (n > 1).then(|| (n - 1) as f64 / (times[n - 1] - times[0]));
        json!({ "ttft_ms": times[0] * 1e3, "decode_tok_s": decode, "generated_ids": ids })
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// candle 0.11's `llama2_c` model on the checkpoint (threads: `RAYON_NUM_THREADS`, set by the
/// caller).
pub fn candle(model: &Path, prompt: &[u32], new_tokens: usize) -> Result<Value> {
    use candle_core::{Device, IndexOp, Tensor};
    use candle_transformers::models::llama2_c::{Cache, Config, Llama};
    use candle_transformers::models::llama2_c_weights::TransformerWeights;
    let device = Device::Cpu;
    let mut file = std::fs::File::open(model).with_context(|| format!("cannot open {}", model.display()))?;
    let config = Config::from_reader(&mut file)?;
    let weights = TransformerWeights::from_reader(&mut file, &config, &device)?;
    let vb = weights.var_builder(&config, &device)?;
    let mut cache = Cache::new(true, &config, vb.pp("rot"))?;
    let llama = Llama::load(vb, config.clone())?;
    let (mut ids, mut times) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut input: Vec<u32> = prompt.to_vec();
    let mut pos = 0;
    while ids.len() < new_tokens {
        let x = Tensor::new(input.as_slice(), &device)?.unsqueeze(0)?;
        let logits = llama.forward(&x, pos, &mut cache)?;
        let last = logits.i((0, logits.dim(1)? - 1))?.to_vec1::<f32>()?;
        let next = argmax(&last);
        times.push(start.elapsed().as_secs_f64());
        ids.push(next);
        pos += input.len();
        input = vec![next];
    }
    Ok(Run::from_times(&times, ids))
}

/// llama.cpp (vendored by `llama-cpp-sys-2`) on the GGUF conversion of the checkpoint, with
/// llama.cpp's default context settings (flash attention where it decides, an F16 KV cache) apart
/// from the thread counts and the batch size; `exact` computes attention as smallmind does
/// instead (F32 KV cache, no flash attention), which makes its tokens comparable.
pub fn llama_cpp(
    gguf: &Path,
    prompt: &[u32],
    new_tokens: usize,
    threads: usize,
    exact: bool,
) -> Result<Value> {
    use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
    use llama_cpp_2::llama_backend::LlamaBackend;
    use llama_cpp_2::llama_batch::LlamaBatch;
    use llama_cpp_2::model::LlamaModel;
    use llama_cpp_2::model::params::LlamaModelParams;
    use llama_cpp_2::token::LlamaToken;
    use std::num::NonZeroU32;
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
    let backend = LlamaBackend::init()?;
    let model = LlamaModel::load_from_file(&backend, gguf, &LlamaModelParams::default())
        .with_context(|| format!("llama.cpp cannot load {}", gguf.display()))?;
    let n_ctx = (prompt.len() + new_tokens) as u32;
    let batch_len = prompt.len().max(1) as u32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(batch_len.max(512))
        .with_n_ubatch(batch_len.max(512))
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32);
    // 0 is LLAMA_FLASH_ATTN_TYPE_DISABLED.
    let params = if exact {
        params.with_type_k(KvCacheType::F32).with_type_v(KvCacheType::F32).with_flash_attention_policy(0)
    } else {
        params
    };
    let mut ctx = model.new_context(&backend, params)?;
    let mut batch = LlamaBatch::new(prompt.len().max(1), 1);
    for (i, &id) in prompt.iter().enumerate() {
        batch.add(LlamaToken(id as i32), i as i32, &[0], i + 1 == prompt.len())?;
    }
    let (mut ids, mut times) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut pos = prompt.len();
    while ids.len() < new_tokens {
        ctx.decode(&mut batch)?;
        let next = argmax(ctx.get_logits_ith(batch.n_tokens() - 1));
        times.push(start.elapsed().as_secs_f64());
        ids.push(next);
        batch.clear();
        batch.add(LlamaToken(next as i32), pos as i32, &[0], true)?;
        pos += 1;
    }
    Ok(Run::from_times(&times, ids))
}

/// `smallmind generate` on the checkpoint, in its own process.
pub fn smallmind_command(
    smallmind: &Path,
    model: &Path,
    tokenizer: &Path,
    prompt: &[u32],
    new_tokens: usize,
    threads: usize,
) -> Command {
    let ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
    let mut c = Command::new(smallmind);
    c.arg("generate").arg("--model").arg(model).arg("--tokenizer").arg(tokenizer);
    c.args(["--prompt-ids", &ids.join(","), "--max-new-tokens", &new_tokens.to_string()]);
    c.args(["--threads", &threads.to_string(), "--json", "--no-stop"]);
    c
}

/// llama2.c's `run` (built by the user from `run.c`, e.g. `gcc -Ofast -fopenmp -march=native`):
/// greedy (`-t 0`) from `<s>`, `-n new_tokens` (run.c's steps: tokens it generates), threads through
/// `OMP_NUM_THREADS`. It prints text, not ids, and times its own loop from after the first
/// forward pass (`achieved tok/s`, the same figure as ours), so the run carries its text but no
/// ids and no TTFT.
pub fn run_c(run: &Path, model: &Path, tokenizer: &Path, new_tokens: usize, threads: usize) -> Result<Run> {
    let out = Command::new(run)
        .arg(model)
        .args(["-t", "0", "-n", &new_tokens.to_string(), "-z"])
        .arg(tokenizer)
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .with_context(|| format!("cannot start {}", run.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rate =
        stderr.lines().find_map(|l| l.strip_prefix("achieved tok/s: ")).and_then(|v| v.trim().parse().ok());
    match rate {
        Some(rate) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let text = Some(text.strip_suffix('\n').unwrap_or(&text).to_string());
            Ok(Run { ttft_ms: f64::NAN, decode_tok_s: Some(rate), generated_ids: Vec::new(), text })
        }
        _ => bail!("{} printed no `achieved tok/s` ({}): {}", run.display(), out.status, stderr.trim()),
    }
}

/// Runs a command that prints one generation's JSON and reads it.
pub fn run_process(mut cmd: Command, what: &str) -> Result<Run> {
    let out = cmd.output().with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: Value = serde_json::from_slice(&out.stdout).with_context(|| format!("{what} printed no JSON"))?;
    Run::from_json(&v).with_context(|| format!("{what}'s JSON"))
}
