//! smallmind against candle on the same llama2.c checkpoint: greedy decoding from `<s>` over the
//! whole context (or `--steps` positions), one thread, each engine in its own process, in
//! alternating order for `--rounds` rounds. Prints each engine's decode tok/s per round (the
//! same figure: `(n - 1) / (t_last - t_first)`), their medians, and whether every run generated
//! the same token ids.
//!
//! ```text
//! candle-compare --smallmind target/release/smallmind --model stories15m.bin --tokenizer tokenizer.bin
//! ```

use anyhow::{Context, Result, bail};
use candle_core::{Device, IndexOp, Tensor};
use candle_transformers::models::llama2_c::{Cache, Config, Llama};
use candle_transformers::models::llama2_c_weights::TransformerWeights;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let model = flag("--model").context("--model FILE.bin is required")?;
    let steps: usize = flag("--steps").map_or(Ok(256), |s| s.parse())?;
    if args.iter().any(|a| a == "--candle-once") {
        println!("{}", candle_once(&model, steps)?);
        return Ok(());
    }
    let smallmind = flag("--smallmind").context("--smallmind PATH is required")?;
    let tokenizer = flag("--tokenizer").context("--tokenizer tokenizer.bin is required")?;
    let rounds: usize = flag("--rounds").map_or(Ok(5), |s| s.parse())?;
    let me = std::env::current_exe()?;
    let new_tokens = (steps - 1).to_string();
    let (mut candle, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for engine in if round % 2 == 0 { ["candle", "smallmind"] } else { ["smallmind", "candle"] } {
            let mut cmd = if engine == "candle" {
                let mut c = Command::new(&me);
                c.args(["--candle-once", "--model", &model, "--steps", &steps.to_string()]);
                c
            } else {
                let mut c = Command::new(&smallmind);
                c.args(["generate", "--model", &model, "--tokenizer", &tokenizer, "--prompt-ids", "1"]);
                c.args(["--max-new-tokens", &new_tokens, "--threads", "1", "--json", "--no-stop"]);
                c
            };
            let out = cmd.env("RAYON_NUM_THREADS", "1").output()?;
            if !out.status.success() {
                bail!("{engine} failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let v: Value = serde_json::from_slice(&out.stdout)?;
            let run = (v["decode_tok_s"].as_f64().context("decode_tok_s")?, v["generated_ids"].clone());
            if engine == "candle" { candle.push(run) } else { ours.push(run) }
        }
    }
    let median = |runs: &[(f64, Value)]| {
        let mut v: Vec<f64> = runs.iter().map(|r| r.0).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let identical = candle.iter().chain(&ours).all(|r| r.1 == candle[0].1);
    let round = |runs: &[(f64, Value)]| runs.iter().map(|r| r.0.round()).collect::<Vec<_>>();
    println!("candle    decode tok/s by round {:?}, median {:.0}", round(&candle), median(&candle));
    println!("smallmind decode tok/s by round {:?}, median {:.0}", round(&ours), median(&ours));
    println!(
        "ratio of medians {:.2}; every run generated the same {} ids: {identical}",
        median(&ours) / median(&candle),
        steps - 1
    );
    Ok(())
}

/// One greedy generation with candle's llama2.c model: `<s>` then `steps - 1` tokens.
fn candle_once(path: &str, steps: usize) -> Result<Value> {
    let device = Device::Cpu;
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
    let config = Config::from_reader(&mut file)?;
    let weights = TransformerWeights::from_reader(&mut file, &config, &device)?;
    let vb = weights.var_builder(&config, &device)?;
    let mut cache = Cache::new(true, &config, vb.pp("rot"))?;
    let model = Llama::load(vb, config.clone())?;
    let mut tokens: Vec<u32> = vec![1];
    let mut times = Vec::new();
    let start = Instant::now();
    while tokens.len() < steps.min(config.seq_len) {
        let pos = tokens.len() - 1;
        let input = Tensor::new(&tokens[pos..], &device)?.unsqueeze(0)?;
        let logits = model.forward(&input, pos, &mut cache)?;
        let next = logits.i((0, logits.dim(1)? - 1))?.argmax(0)?.to_scalar::<u32>()?;
        tokens.push(next);
        times.push(start.elapsed().as_secs_f64());
    }
    let n = times.len();
    Ok(json!({ "decode_tok_s": (n - 1) as f64 / (times[n - 1] - times[0]), "generated_ids": &tokens[1..] }))
}
