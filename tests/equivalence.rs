//! Correctness before speed: every combination of the four toggles generates the same greedy
//! tokens as the all-off path, with every step's logits within `LOGIT_TOLERANCE` of it.
//!
//! Differences come only from floating-point summation order (GEMM vs dot products, one-row
//! vs many-row products): rounding differences of ~1e-7 relative, amplified by four layers of
//! sharp attention to at most 8.5e-5 (`tiny`) and 1.2e-4 (`llama-tiny`) at logits of order
//! 1-10, the worst seen over every combination below (printing `max_logit_diff` in
//! `assert_all_combinations_agree`, at commit f63bb7d). 2e-4 leaves room for that and nothing
//! else: a skipped block moves logits by more than 0.1 (the non-degenerate tests check it).

mod common;

use common::*;
use smallmind::models::presets::random_llama;
use smallmind::tokenizer::{SMALLMIND_VOCAB, Tokenizer};
use smallmind::{LlamaConfig, ModelRef, Optimizations};

const LOGIT_TOLERANCE: f32 = 2e-4;
/// Thread counts run with every optimization on, besides one: two, and three, more threads
/// than this 2-core machine has cores (the worker pool's workers are then descheduled mid-step).
const THREADED: [usize; 2] = [2, 3];
/// The first values of `smallmind-bench`'s `wte` and `lm_head` (seed 42).
const PINNED_WTE: [f32; 2] = [0.119_495_31, 0.333_517_64];
const PINNED_LM_HEAD: [f32; 2] = [-0.072_387_65, -0.014_267_646];

/// The one test body: all 16 combinations against the all-off reference, for each prompt, for
/// GPT-2 and Llama alike.
fn assert_all_combinations_agree<'m>(
    name: &str,
    model: impl Into<ModelRef<'m>>,
    prompts: &[Vec<u32>],
    max_new: usize,
) {
    let model = model.into();
    for prompt in prompts {
        let reference = greedy_run(model, Optimizations::none(), 1, prompt, max_new);
        assert_eq!(reference.ids.len(), max_new);
        for (opts, threads) in Optimizations::every_combination()
            .map(|o| (o, 1))
            .chain(THREADED.map(|t| (Optimizations::all(), t)))
        {
            let run = greedy_run(model, opts, threads, prompt, max_new);
            if let Some(pos) = run.ids.iter().zip(&reference.ids).position(|(a, b)| a != b) {
                panic!(
                    "{name}, prompt of {} tokens, {opts} on {threads} thread(s): token {pos} is {} but the all-off path gave {}",
                    prompt.len(),
                    run.ids[pos],
                    reference.ids[pos]
                );
            }
            let (diff, step) = max_logit_diff(&run, &reference);
            assert!(
                diff <= LOGIT_TOLERANCE,
                "{name}, prompt of {} tokens, {opts} on {threads} thread(s): logits differ by {diff} at step {step}",
                prompt.len()
            );
        }
    }
}

#[test]
fn smallmind_bench_all_combinations_agree_including_the_sliding_window() {
    let model = preset("smallmind-bench");
    let t = Tokenizer::chars(SMALLMIND_VOCAB);
    let seed_paragraph = "The quick brown fox jumps over the lazy dog. This is a sample text used for benchmarking purposes. It contains common English words and punctuation. ";
    let seed_prompt: String = seed_paragraph.repeat(2).chars().take(160).collect();
    let prompts = vec![
        t.encode("Once upon a time").unwrap(), // 13 tokens: 13 + 24 new tokens cross the 32 context
        t.encode(&seed_prompt).unwrap(),       // SmallMind's 130-token prompt: sliding from the start
        vec![7],
    ];
    assert_eq!(prompts[1].len(), 130, "SmallMind's benchmark prompt is 130 tokens");
    assert_all_combinations_agree("smallmind-bench", &model, &prompts, 24);
}

#[test]
fn tiny_all_combinations_agree() {
    let model = preset("tiny");
    let prompts = vec![Tokenizer::Bytes.encode("Once upon a time").unwrap(), synthetic_prompt(70, 256, 1)];
    assert_all_combinations_agree("tiny", &model, &prompts, 20);
}

#[test]
fn odd_shape_all_combinations_agree_including_the_sliding_window() {
    let model = odd_model();
    // Context 23: 10 + 30 tokens slide for the last 17 steps; 30 tokens slide from the start.
    let prompts = vec![synthetic_prompt(10, 97, 2), synthetic_prompt(30, 97, 3), vec![96]];
    assert_all_combinations_agree("odd shape", &model, &prompts, 30);
}

#[test]
fn gpt2_attention_scale_keys_hold_under_every_combination() {
    // scale_attn_by_inverse_layer_idx and scale_attn_weights change one factor of the scores,
    // which every toggle's kernels must apply alike.
    let plain = odd_model();
    let prompts = vec![synthetic_prompt(10, 97, 2), synthetic_prompt(30, 97, 3)];
    for (by_layer, by_head) in [(true, true), (false, false), (true, false)] {
        let mut config = plain.config.clone();
        config.scale_attn_by_inverse_layer_idx = by_layer;
        config.scale_attn_weights = by_head;
        let model = smallmind::models::presets::random_model(config, 7);
        let name = format!("odd shape, inverse layer scale {by_layer}, head scale {by_head}");
        assert_all_combinations_agree(&name, &model, &prompts, 16);
        let scaled = greedy_run(&model, Optimizations::all(), 1, &prompts[0], 4);
        let unscaled = greedy_run(&plain, Optimizations::all(), 1, &prompts[0], 4);
        assert!(max_logit_diff(&scaled, &unscaled).0 > 1e-3, "{name}: the scale changed nothing");
    }
}

#[test]
fn llama_tiny_all_combinations_agree() {
    let model = llama_preset("llama-tiny");
    let prompts = vec![synthetic_prompt(1, 512, 1), synthetic_prompt(40, 512, 2)];
    assert_all_combinations_agree("llama-tiny", &model, &prompts, 20);
}

#[test]
fn llama_grouped_query_shape_all_combinations_agree() {
    let model = llama_preset("llama-tiny-gqa");
    assert_eq!((model.config.n_heads, model.config.n_kv_heads), (8, 2));
    let prompts = vec![synthetic_prompt(3, 512, 3), synthetic_prompt(33, 512, 4)];
    assert_all_combinations_agree("llama-tiny-gqa", &model, &prompts, 20);
}

/// A Llama of odd sizes (3 heads of 20 sharing one key/value head, context 23, a separate
/// classifier): rotated cached keys must stay right while the window slides.
#[test]
fn odd_llama_all_combinations_agree_including_the_sliding_window() {
    let config = LlamaConfig {
        dim: 60,
        hidden_dim: 150,
        n_layers: 2,
        n_heads: 3,
        n_kv_heads: 1,
        vocab_size: 97,
        seq_len: 23,
        shared_classifier: false,
        norm_eps: 1e-5,
        rope_theta: 10000.0,
    };
    let model = random_llama(config, 5);
    let prompts = vec![synthetic_prompt(10, 97, 2), synthetic_prompt(30, 97, 3), vec![96]];
    assert_all_combinations_agree("odd llama", &model, &prompts, 30);
}

/// The KV-cache path equals a from-scratch forward over the whole sequence at every step.
#[test]
fn kv_cache_decode_equals_full_recompute_at_every_step() {
    use smallmind::kernels::parallel::Threads;
    use smallmind::layers::Ctx;
    use smallmind::models::gpt2::KvSource;
    use smallmind::pool::TensorPool;

    let model = preset("tiny");
    let prompt = synthetic_prompt(9, 256, 5);
    let cached = greedy_run(&model, Optimizations::all(), 1, &prompt, 40);
    let pool = TensorPool::new();
    let ctx = Ctx { opts: Optimizations::none(), pool: &pool, threads: Threads::One };
    let mut tokens = prompt.clone();
    for (step, (&id, logits)) in cached.ids.iter().zip(&cached.logits).enumerate() {
        let mut full = vec![0.0; 256];
        model.forward(&ctx, &tokens, 0, KvSource::Recompute, &mut full);
        let diff = full.iter().zip(logits).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff <= LOGIT_TOLERANCE, "step {step}: cached logits differ from a full recompute by {diff}");
        tokens.push(id);
    }
}

/// The presets are not degenerate: continuations vary, and attention carries information
/// from early tokens (changing only the first prompt token changes the continuation).
#[test]
fn preset_weights_are_not_degenerate() {
    for (name, vocab) in [("smallmind-bench", 50), ("tiny", 256)] {
        let model = preset(name);
        let prompt = synthetic_prompt(12, vocab, 11);
        let run = greedy_run(&model, Optimizations::all(), 1, &prompt, 32);
        let mut distinct = run.ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() >= 8,
            "{name}: greedy output uses only {} distinct tokens: {:?}",
            distinct.len(),
            run.ids
        );

        let mut changed = prompt.clone();
        changed[0] = (changed[0] + 1) % vocab as u32;
        let other = greedy_run(&model, Optimizations::all(), 1, &changed, 32);
        let first_logits_diff =
            run.logits[0].iter().zip(&other.logits[0]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(
            first_logits_diff > 1e-2,
            "{name}: the first prompt token barely matters ({first_logits_diff})"
        );
        assert_ne!(
            run.ids, other.ids,
            "{name}: changing the first prompt token did not change the continuation"
        );
    }
}

/// Llama presets are not degenerate either: continuations vary, an early token matters, and
/// both the attention and the feed-forward blocks change the logits.
#[test]
fn llama_preset_weights_are_not_degenerate() {
    use smallmind::kernels::parallel::Threads;
    use smallmind::layers::{Ctx, KvSource};
    use smallmind::pool::TensorPool;
    let model = llama_preset("llama-tiny");
    let prompt = synthetic_prompt(12, 512, 11);
    let run = greedy_run(&model, Optimizations::all(), 1, &prompt, 32);
    let mut distinct = run.ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 8, "greedy output uses only {} distinct tokens: {:?}", distinct.len(), run.ids);
    let mut changed = prompt.clone();
    changed[0] = (changed[0] + 1) % 512;
    assert_ne!(run.ids, greedy_run(&model, Optimizations::all(), 1, &changed, 32).ids);

    let pool = TensorPool::new();
    let ctx = Ctx { opts: Optimizations::none(), pool: &pool, threads: Threads::One };
    let logits = |m: &smallmind::Llama| {
        let mut out = vec![0.0; 512];
        m.forward(&ctx, &prompt, 0, KvSource::Recompute, &mut out);
        out
    };
    let base = logits(&model);
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let mut no_attention = model.clone();
    no_attention.layers.iter_mut().for_each(|l| l.attn.wo.weight.fill(0.0));
    let mut no_ffn = model.clone();
    no_ffn.layers.iter_mut().for_each(|l| l.ffn.w2.weight.fill(0.0));
    assert!(max_diff(&base, &logits(&no_attention)) > 0.1, "attention barely matters");
    assert!(max_diff(&base, &logits(&no_ffn)) > 0.1, "the feed-forward blocks barely matter");
}

/// The same seed gives the same weights; a different seed does not.
#[test]
fn preset_weights_are_deterministic() {
    assert_eq!(preset("smallmind-bench"), preset("smallmind-bench"));
    let a = smallmind::models::presets::random_model(odd_model().config, 1);
    let b = smallmind::models::presets::random_model(odd_model().config, 2);
    assert_ne!(a.wte, b.wte);
    // Fixed values pin the initialisation across runs, machines and dependency updates.
    let m = preset("smallmind-bench");
    assert_eq!((&m.wte[..2], &m.lm_head.as_ref().unwrap()[..2]), (&PINNED_WTE[..], &PINNED_LM_HEAD[..]));
}
