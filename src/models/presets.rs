//! Built-in models with deterministic seeded random weights, so that everything runs with
//! nothing downloaded.
//!
//! # Initialisation
//! One ChaCha8 stream seeded with the preset's seed fills the tensors in checkpoint order
//! ([`Gpt2::tensor_specs`]), each element drawn from `rand_distr`'s standard normal and scaled:
//!
//! | tensors | distribution |
//! |---|---|
//! | `wte`, `wpe` | N(0, 4/n_embd) |
//! | linear weights (`c_attn` v columns, `c_proj`, `c_fc`), `lm_head` | N(0, 1/n_in) |
//! | `c_attn` query and key columns | N(0, 9/n_in) |
//! | linear biases | N(0, 0.1²) |
//! | LayerNorm gains | 1 + N(0, 0.2²) |
//! | LayerNorm biases | N(0, 0.1²) |
//!
//! GPT-2's training initialisation (weights N(0, 0.02²), zero biases, unit gains) would make an
//! untrained model repeat the last prompt token, and an equivalence test would then pass even
//! with attention skipped. These scales keep every layer's output of the order of its input and
//! make attention sharp (attention scores of standard deviation ~3), so attention and the MLP both
//! change the logits and greedy continuations vary; the tests check both properties. (With
//! unsharpened attention, every position attends to the average of the context and the model
//! again repeats one token.) ChaCha8 and the standard normal's ziggurat are fully specified, so the same
//! seed gives the same weights on every run and every machine.

use super::config::Gpt2Config;
use super::gpt2::{Gpt2, TensorSpec};
use crate::tokenizer::{SMALLMIND_VOCAB, Tokenizer};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A built-in model: its shape, its weight seed and its tokenizer.
#[derive(Debug, Clone)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub config: Gpt2Config,
    pub seed: u64,
}

/// The names of every preset, for help and error messages.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name).collect()
}

/// Every preset.
pub fn all() -> Vec<Preset> {
    let gpt = |vocab_size, n_ctx, n_embd, n_head, n_layer, tied| Gpt2Config {
        vocab_size,
        n_ctx,
        n_embd,
        n_head,
        n_layer,
        n_inner: 4 * n_embd,
        layer_norm_epsilon: 1e-5,
        tie_word_embeddings: tied,
    };
    vec![
        Preset {
            name: "smallmind-bench",
            description: "the model SmallMind's benchmark ran: 50-char vocabulary, context 32, untied head",
            config: gpt(SMALLMIND_VOCAB.chars().count(), 32, 64, 4, 2, false),
            seed: 42,
        },
        Preset {
            name: "tiny",
            description: "our default for experiments: bytes, context 1024, 128 wide, 4 layers",
            config: gpt(256, 1024, 128, 4, 4, true),
            seed: 1,
        },
        Preset {
            name: "small",
            description: "nanoGPT's character model shape: bytes, context 1024, 384 wide, 6 layers",
            config: gpt(256, 1024, 384, 6, 6, true),
            seed: 2,
        },
        Preset {
            name: "gpt2",
            description: "the GPT-2 124M shape: 50257 tokens, context 1024, 768 wide, 12 layers",
            config: gpt(50257, 1024, 768, 12, 12, true),
            seed: 3,
        },
    ]
}

/// The preset called `name`, if any.
pub fn find(name: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.name == name)
}

impl Preset {
    /// The preset's weights (the same on every call).
    pub fn model(&self) -> Gpt2 {
        random_model(self.config.clone(), self.seed)
    }

    /// The preset's tokenizer.
    pub fn tokenizer(&self) -> Tokenizer {
        if self.name == "smallmind-bench" { Tokenizer::chars(SMALLMIND_VOCAB) } else { Tokenizer::Bytes }
    }
}

/// A model of any valid shape with weights drawn as the module documentation says.
pub fn random_model(config: Gpt2Config, seed: u64) -> Gpt2 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let result: Result<Gpt2, std::convert::Infallible> =
        Gpt2::from_tensors(config, |spec| Ok(random_tensor(spec, &mut rng)));
    match result {
        Ok(model) => model,
    }
}

/// Standard deviation of embedding elements, times sqrt(n_embd).
const EMBEDDING_SCALE: f32 = 2.0;
/// Extra scale of the query and key columns of `c_attn`: scaled attention scores of standard
/// deviation ~3 make each position attend to a few others, so the output depends on the
/// context rather than on its average.
const QK_SCALE: f32 = 3.0;
/// Standard deviation of linear biases and LayerNorm biases.
const BIAS_STD: f32 = 0.1;
/// Standard deviation of LayerNorm gains around 1.
const GAIN_STD: f32 = 0.2;

/// One tensor's values, by its checkpoint name.
fn random_tensor(spec: &TensorSpec, rng: &mut impl Rng) -> Vec<f32> {
    let name = spec.name.as_str();
    let is_norm = name.starts_with("ln_f.") || name.contains(".ln_");
    let (mean, std) = match name {
        "wte.weight" | "wpe.weight" => (0.0, EMBEDDING_SCALE / (spec.shape[1] as f32).sqrt()),
        _ if is_norm && name.ends_with(".weight") => (1.0, GAIN_STD),
        _ if name.ends_with(".bias") => (0.0, BIAS_STD),
        "lm_head.weight" => (0.0, 1.0 / (spec.shape[1] as f32).sqrt()),
        // Conv1D weights are (n_in, n_out).
        _ => (0.0, 1.0 / (spec.shape[0] as f32).sqrt()),
    };
    let n_out = *spec.shape.last().expect("tensors have a shape");
    let qk_cols = if name.ends_with("attn.c_attn.weight") { 2 * n_out / 3 } else { 0 };
    let len: usize = spec.shape.iter().product();
    (0..len)
        .map(|i| {
            let z: f32 = rng.sample(StandardNormal);
            let scale = if i % n_out < qk_cols { QK_SCALE } else { 1.0 };
            mean + std * scale * z
        })
        .collect()
}
