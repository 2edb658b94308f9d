//! The machine's fingerprint and the markdown table of a comparison.

use crate::CompareArgs;
use crate::engines::Run;
use crate::gguf::Header;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

/// One process pair: the decode run and, unless prefill is off, the prefill run.
type Pair = (Run, Option<Run>);

/// Each engine's runs at each thread count.
pub struct Results {
    names: Vec<String>,
    threads: Vec<usize>,
    runs: BTreeMap<(String, usize), Vec<Pair>>,
}

impl Results {
    pub fn new(names: &[String], threads: &[usize]) -> Results {
        Results { names: names.to_vec(), threads: threads.to_vec(), runs: BTreeMap::new() }
    }

    pub fn push(&mut self, engine: &str, threads: usize, decode: Run, prefill: Option<Run>) {
        self.runs.entry((engine.to_string(), threads)).or_default().push((decode, prefill));
    }

    fn get(&self, engine: &str, threads: usize) -> &[Pair] {
        self.runs.get(&(engine.to_string(), threads)).map_or(&[], Vec::as_slice)
    }
}

/// The median, min and max of some figures.
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (n > 0).then(|| {
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        (median, v[0], v[n - 1])
    })
}

/// smallmind's capability probe (one-core triad, GB/s), read from a short `smallmind bench`.
pub fn probe(smallmind: &Path, model: &Path, tokenizer: &Path) -> Result<f64> {
    let out = std::env::temp_dir().join(format!("peers-probe-{}.json", std::process::id()));
    let status = Command::new(smallmind)
        .arg("bench")
        .arg("--model")
        .arg(model)
        .arg("--tokenizer")
        .arg(tokenizer)
        .args(["--prompt-tokens", "1", "--max-new-tokens", "2", "--iterations", "1", "--warmup", "0"])
        .args(["--phase-iterations", "0", "--threads", "1", "--out"])
        .arg(&out)
        .output()
        .context("cannot run smallmind bench for the machine probe")?;
    if !status.status.success() {
        bail!(
            "smallmind bench (the machine probe) failed: {}",
            String::from_utf8_lossy(&status.stderr).trim()
        );
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let _ = std::fs::remove_file(&out);
    v["machine"]["probe"]["start"]["triad_gb_s"].as_f64().context("the bench results carry no probe triad")
}

/// `lscpu`'s model name, family, model, L3 and the SIMD the kernels can use, from /proc and /sys.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map_or("?".to_string(), |(_, v)| v.trim().to_string())
    };
    let flags = field("flags");
    let simd: Vec<&str> =
        ["avx2", "fma", "avx512f"].into_iter().filter(|f| flags.split(' ').any(|x| x == *f)).collect();
    let l3 = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{}, family {} model {}, L3 {}, {cores} logical cores, {}",
        field("model name"),
        field("cpu family"),
        field("model"),
        l3.trim(),
        simd.join(" ")
    )
}

/// The last-level cache's size in bytes (sysfs reads like `32768K`).
fn l3_bytes() -> Option<f64> {
    let size = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size").ok()?;
    let size = size.trim();
    let (digits, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len()));
    let scale = match unit {
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        _ => 1.0,
    };
    digits.parse::<f64>().ok().map(|d| d * scale)
}

/// The versions of the peers this tool was built with, from its lock file.
fn versions() -> String {
    let lock = include_str!("../Cargo.lock");
    let version = |name: &str| {
        let at = lock.find(&format!("name = \"{name}\"\nversion = \""));
        at.and_then(|i| lock[i..].lines().nth(1))
            .map_or("?".into(), |l| l.trim_start_matches("version = ").replace('"', ""))
    };
    format!(
        "candle-core {}; llama.cpp as vendored by llama-cpp-sys-2 {}",
        version("candle-core"),
        version("llama-cpp-sys-2")
    )
}

/// Bytes one decode step reads: every weight matrix, the norms, the classifier, and the KV cache
/// at the mean position of the decoded tokens.
fn decode_bytes_per_token(h: &Header, new_tokens: usize) -> f64 {
    let (d, f, l) = (h.dim as f64, h.hidden_dim as f64, h.n_layers as f64);
    let kv = (h.n_kv_heads * h.head_dim()) as f64;
    let weights = l * (2.0 * d * d + 2.0 * d * kv + 3.0 * d * f + 2.0 * d) + d + h.vocab_size as f64 * d;
    let kv_cache = 2.0 * l * kv * (new_tokens as f64 / 2.0);
    (weights + kv_cache) * 4.0
}

fn same_tokens(name: &str, runs: &[Pair], reference: &Run, prefill_ref: Option<u32>) -> String {
    let decode_ref = &reference.generated_ids;
    if name == "llama2.c" {
        // run.c prints text and stops at `<s>`: its text must be smallmind's, up to that token.
        // It skips the space after `<s>` and every piece that is one unprintable byte, so both
        // texts are compared as their printable ASCII (a difference in other bytes goes unseen).
        let printable = |t: &str| {
            t.chars().filter(|c| c.is_ascii_graphic() || *c == ' ' || *c == '\n').collect::<String>()
        };
        let stop = decode_ref.iter().position(|&id| id == 1);
        let expected = printable(reference.text.as_deref().unwrap_or_default());
        let expected = expected.trim_start();
        let differ = runs.iter().filter(|(d, _)| {
            let text = printable(d.text.as_deref().unwrap_or_default());
            let text = text.trim_start();
            if stop.is_some() { !expected.starts_with(text) } else { text != expected }
        });
        let stop = stop.map_or(String::new(), |k| format!("; it stops at `<s>`, smallmind's token {k}"));
        return match differ.count() {
            0 => format!("same printable text, {} of {}{stop}", runs.len(), runs.len()),
            n => format!("**no**: the text of {n} of {} runs differs{stop}", runs.len()),
        };
    }
    let mut differ = Vec::new();
    for (decode, prefill) in runs {
        let first = decode.generated_ids.iter().zip(decode_ref).position(|(a, b)| a != b);
        let first = first.or((decode.generated_ids.len() != decode_ref.len()).then_some(decode_ref.len()));
        let prefill_differs = prefill.as_ref().and_then(|p| p.generated_ids.first().copied()) != prefill_ref;
        if first.is_some() || prefill_differs {
            differ.push(first.map_or("prefill token".to_string(), |k| format!("token {k}")));
        }
    }
    match differ.first() {
        None => format!("yes, {} of {}", runs.len(), runs.len()),
        Some(at) => format!("**no**: {} of {} runs differ (first at {at})", differ.len(), runs.len()),
    }
}

fn fmt_spread(s: Option<(f64, f64, f64)>, digits: usize) -> String {
    s.map_or("-".into(), |(m, lo, hi)| format!("{m:.digits$} ({lo:.digits$}-{hi:.digits$})"))
}

/// The markdown table, with what was measured, where and how.
pub fn render(a: &CompareArgs, h: &Header, r: &Results, triad_start: f64, triad_end: f64) -> String {
    let mut s = String::new();
    let name = a.model.file_name().unwrap_or_default().to_string_lossy();
    let _ = writeln!(s, "### smallmind and its peers on `{name}`\n");
    let _ = writeln!(
        s,
        "- model: dim {}, {} layers, {} heads ({} KV), hidden {}, vocab {}; F32 weights in every engine",
        h.dim, h.n_layers, h.n_heads, h.n_kv_heads, h.hidden_dim, h.vocab_size
    );
    let _ = writeln!(
        s,
        "- machine: {}; one-core triad {triad_start:.1} GB/s at the start, {triad_end:.1} at the end (smallmind's probe)",
        cpu()
    );
    let run_c =
        if r.names.iter().any(|n| n == "llama2.c") { "; llama2.c's `run` as built by the user" } else { "" };
    let _ = writeln!(
        s,
        "- peers: {}{run_c} (built for this CPU). `llama.cpp` runs with its defaults (flash attention as it decides, \
         an F16 KV cache); `llama.cpp-exact` with an F32 KV cache and no flash attention, as smallmind computes",
        versions()
    );
    let _ = writeln!(
        s,
        "- method: {} rounds; each runs every engine once per thread count, each generation its own process, the \
         engines' order rotating. Decode: {} tokens greedily from `<s>`, `(n - 1) / (t_last - t_first)`. Prefill: \
         one forward pass over a {}-token prompt, to its first token",
        a.rounds, a.new_tokens, a.prompt_tokens
    );
    let _ = writeln!(
        s,
        "- ratios: smallmind ÷ engine for decode, engine ÷ smallmind for prefill time: above 1, smallmind is faster\n"
    );
    let _ = writeln!(
        s,
        "| threads | engine | decode tok/s, median (min-max) | ratio | of 1-core roofline | prefill {} tokens, ms | ratio | same tokens as smallmind |",
        a.prompt_tokens
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---|");
    let triad = (triad_start + triad_end) / 2.0 * 1e9;
    let bytes = decode_bytes_per_token(h, a.new_tokens);
    let in_cache = l3_bytes().is_some_and(|l3| bytes < l3);
    let Some((reference, prefill_ref)) = r.get("smallmind", r.threads[0]).first() else {
        return s;
    };
    let prefill_ref = prefill_ref.as_ref().and_then(|p| p.generated_ids.first().copied());
    for &t in &r.threads {
        let ours = r.get("smallmind", t);
        let ours_decode = spread(ours.iter().filter_map(|(d, _)| d.decode_tok_s).collect());
        let ours_prefill = spread(ours.iter().filter_map(|(_, p)| p.as_ref().map(|p| p.ttft_ms)).collect());
        for name in &r.names {
            let runs = r.get(name, t);
            let decode = spread(runs.iter().filter_map(|(d, _)| d.decode_tok_s).collect());
            let prefill = spread(runs.iter().filter_map(|(_, p)| p.as_ref().map(|p| p.ttft_ms)).collect());
            let ratio = |a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>| match (a, b) {
                _ if name == "smallmind" => String::new(),
                (Some(a), Some(b)) => format!("{:.2}", a.0 / b.0),
                _ => "-".into(),
            };
            let roofline = match decode {
                // Weights that fit in the last-level cache are not streamed from memory.
                Some(_) if t == 1 && in_cache => "in cache".into(),
                Some((m, _, _)) if t == 1 => format!("{:.0}%", m * bytes / triad * 100.0),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {t} | {name} | {} | {} | {roofline} | {} | {} | {} |",
                fmt_spread(decode, 1),
                ratio(ours_decode, decode),
                fmt_spread(prefill, 1),
                ratio(prefill, ours_prefill),
                same_tokens(name, runs, reference, prefill_ref)
            );
        }
    }
    if r.threads.len() > 1 {
        let base = r.threads[0];
        let scaling: Vec<String> = r
            .names
            .iter()
            .map(|n| {
                let m =
                    |t| spread(r.get(n, t).iter().filter_map(|(d, _)| d.decode_tok_s).collect()).map(|s| s.0);
                let steps: Vec<String> = r.threads[1..]
                    .iter()
                    .map(|&t| m(t).zip(m(base)).map_or("-".into(), |(a, b)| format!("{:.2}x at {t}", a / b)))
                    .collect();
                format!("{n} {}", steps.join(", "))
            })
            .collect();
        let _ = writeln!(s, "\nDecode scaling from {base} thread(s): {}.", scaling.join("; "));
    }
    s
}
