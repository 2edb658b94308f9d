//! Helpers shared by the integration tests: small seeded models and a greedy run that records
//! every step's logits.

#![allow(dead_code)] // Each test binary uses a different subset.

use smallmind::models::presets::{self, random_model};
use smallmind::{
    GenerateParams, Gpt2, Gpt2Config, Llama, Model, ModelRef, Optimizations, SamplingParams, Session,
};
use std::process::{Command, Output};

/// A shape with nothing a power of two: n_embd 60 (3 heads of 20), context 23, MLP 150, vocab 97.
pub fn odd_model() -> Gpt2 {
    let config = Gpt2Config {
        vocab_size: 97,
        n_ctx: 23,
        n_embd: 60,
        n_head: 3,
        n_layer: 2,
        n_inner: 150,
        layer_norm_epsilon: 1e-5,
        tie_word_embeddings: false,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
    };
    random_model(config, 7)
}

/// A GPT-2 preset's model.
pub fn preset(name: &str) -> Gpt2 {
    match presets::find(name).expect("preset exists").model() {
        Model::Gpt2(m) => m,
        Model::Llama(_) => panic!("{name} is a Llama preset"),
    }
}

/// A Llama preset's model.
pub fn llama_preset(name: &str) -> Llama {
    match presets::find(name).expect("preset exists").model() {
        Model::Llama(m) => m,
        Model::Gpt2(_) => panic!("{name} is a GPT-2 preset"),
    }
}

/// Generated ids and the logits of every step.
#[derive(Debug, Clone)]
pub struct Run {
    pub ids: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
}

/// Greedy generation of `max_new` tokens after `prompt`, run twice in one session (the second
/// run reuses the pool and the KV cache); both runs must agree exactly, and the second is returned.
pub fn greedy_run<'m>(
    model: impl Into<ModelRef<'m>>,
    opts: Optimizations,
    threads: usize,
    prompt: &[u32],
    max_new: usize,
) -> Run {
    let mut session = Session::new(model, opts, threads).unwrap();
    let params = GenerateParams {
        max_new_tokens: max_new,
        sampling: SamplingParams::greedy(),
        stop_tokens: Vec::new(),
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut logits = Vec::new();
        let out = session.generate(prompt, &params, &mut |_, l| logits.push(l.to_vec())).unwrap();
        runs.push(Run { ids: out.generated_ids, logits });
    }
    assert_eq!(runs[0].ids, runs[1].ids, "{opts}: a reused session generated different tokens");
    assert_eq!(runs[0].logits, runs[1].logits, "{opts}: a reused session gave different logits");
    runs.pop().unwrap()
}

/// The largest absolute difference between two runs' logits, with its step.
pub fn max_logit_diff(a: &Run, b: &Run) -> (f32, usize) {
    let mut worst = (0.0f32, 0);
    for (step, (x, y)) in a.logits.iter().zip(&b.logits).enumerate() {
        for (p, q) in x.iter().zip(y) {
            let d = (p - q).abs();
            if d > worst.0 || d.is_nan() {
                worst = (d, step);
            }
        }
    }
    worst
}

/// `len` deterministic token ids below `vocab`.
pub fn synthetic_prompt(len: usize, vocab: usize, seed: u32) -> Vec<u32> {
    smallmind::generate::synthetic_prompt(len, vocab, seed.into())
}

/// Runs the `smallmind` binary with `args` (and without any `SMALLMIND_OPT` from outside).
pub fn smallmind(args: &[&str]) -> Output {
    smallmind_env(args, &[])
}

/// [`smallmind`] with extra environment variables.
pub fn smallmind_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smallmind"));
    cmd.args(args).env_remove("SMALLMIND_OPT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// Asserts exit code 2 and a single stderr line containing every one of `needles`.
pub fn assert_usage_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "expected one line, got: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}
