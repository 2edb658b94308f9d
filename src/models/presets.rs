//! Built-in models with deterministic seeded random weights, so that everything runs with
//! nothing downloaded: GPT-2 shapes and Llama shapes (llama2.c's TinyStories models among them),
//! with a synthetic llama2.c tokenizer for the latter.
//!
//! # Initialisation
//! For GPT-2, one ChaCha8 stream seeded with the preset's seed fills the tensors in checkpoint order
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
//!
//! Llama presets follow the same reasoning in llama2.c's tensor order ([`LlamaConfig::tensor_sizes`]):
//! token embedding N(0, 4/dim); RMSNorm gains 1 + N(0, 0.2²); `wq` and `wk` N(0, 9/dim);
//! `wv`, `wo`, `w1`, `w3` N(0, 1/n_in); `w2` N(0, 1/hidden_dim); a separate classifier N(0, 1/dim).

use super::Model;
use super::gpt2::Gpt2;
use super::gpt2::config::Gpt2Config;
use super::llama::Llama;
use super::llama::config::{LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, LlamaConfig};
use super::llama::llama2c::LlamaWeights;
use super::safetensors_io::TensorSpec;
use crate::tokenizer::llama2c::Llama2cTokenizer;
use crate::tokenizer::{SMALLMIND_VOCAB, Tokenizer};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A built-in model: its shape, its weight seed and its tokenizer.
#[derive(Debug, Clone)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub shape: Shape,
    pub seed: u64,
}

/// A preset's architecture and shape.
#[derive(Debug, Clone)]
pub enum Shape {
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
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
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
    };
    let llama = |dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len| {
        Shape::Llama(LlamaConfig {
            dim,
            hidden_dim,
            n_layers,
            n_heads,
            n_kv_heads,
            vocab_size,
            seq_len,
            shared_classifier: true,
            norm_eps: LLAMA2C_NORM_EPS,
            rope_theta: LLAMA2C_ROPE_THETA,
        })
    };
    vec![
        Preset {
            name: "smallmind-bench",
            description: "the model SmallMind's benchmark ran: 50-char vocabulary, context 32, untied head",
            shape: Shape::Gpt2(gpt(SMALLMIND_VOCAB.chars().count(), 32, 64, 4, 2, false)),
            seed: 42,
        },
        Preset {
            name: "tiny",
            description: "our default for experiments: bytes, context 1024, 128 wide, 4 layers",
            shape: Shape::Gpt2(gpt(256, 1024, 128, 4, 4, true)),
            seed: 1,
        },
        Preset {
            name: "small",
            description: "nanoGPT's character model shape: bytes, context 1024, 384 wide, 6 layers",
            shape: Shape::Gpt2(gpt(256, 1024, 384, 6, 6, true)),
            seed: 2,
        },
        Preset {
            name: "gpt2",
            description: "the GPT-2 124M shape: 50257 tokens, context 1024, 768 wide, 12 layers",
            shape: Shape::Gpt2(gpt(50257, 1024, 768, 12, 12, true)),
            seed: 3,
        },
        Preset {
            name: "llama-tiny",
            description: "a small Llama: 512 tokens, context 512, 128 wide, 4 layers, 4 heads",
            shape: llama(128, 512, 4, 4, 4, 512, 512),
            seed: 11,
        },
        Preset {
            name: "llama-tiny-gqa",
            description: "llama-tiny with grouped-query attention: 8 query heads share 2 key/value heads",
            shape: llama(128, 384, 4, 8, 2, 512, 512),
            seed: 12,
        },
        Preset {
            name: "stories15m",
            description: "llama2.c's stories15M shape: 32000 tokens, context 256, 288 wide, 6 layers",
            shape: llama(288, 768, 6, 6, 6, 32000, 256),
            seed: 13,
        },
        Preset {
            name: "stories110m",
            description: "llama2.c's stories110M shape: 32000 tokens, context 1024, 768 wide, 12 layers",
            shape: llama(768, 2048, 12, 12, 12, 32000, 1024),
            seed: 14,
        },
    ]
}

/// The preset called `name`, if any.
pub fn find(name: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.name == name)
}

impl Preset {
    /// The preset's weights (the same on every call).
    pub fn model(&self) -> Model {
        match &self.shape {
            Shape::Gpt2(config) => Model::Gpt2(random_model(config.clone(), self.seed)),
            Shape::Llama(config) => Model::Llama(random_llama(config.clone(), self.seed)),
        }
    }

    /// The preset's tokenizer.
    pub fn tokenizer(&self) -> Tokenizer {
        match &self.shape {
            Shape::Llama(config) => {
                Tokenizer::Llama2c(Box::new(synthetic_llama_tokenizer(config.vocab_size)))
            }
            Shape::Gpt2(_) if self.name == "smallmind-bench" => Tokenizer::chars(SMALLMIND_VOCAB),
            Shape::Gpt2(_) => Tokenizer::Bytes,
        }
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

/// A Llama model of any valid shape with weights drawn as the module documentation says.
pub fn random_llama(config: LlamaConfig, seed: u64) -> Llama {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (d, h) = (config.dim as f32, config.hidden_dim as f32);
    let result: Result<LlamaWeights, std::convert::Infallible> =
        LlamaWeights::from_tensors(config, |name, len| {
            let (mean, std) = match name {
                "token_embedding" => (0.0, EMBEDDING_SCALE / d.sqrt()),
                "rms_att" | "rms_ffn" | "rms_final" => (1.0, GAIN_STD),
                "wq" | "wk" => (0.0, QK_SCALE / d.sqrt()),
                "w2" => (0.0, 1.0 / h.sqrt()),
                // The legacy RoPE tables are dropped: draw nothing for them.
                "freq_cis_real" | "freq_cis_imag" => return Ok(Vec::new()),
                _ => (0.0, 1.0 / d.sqrt()),
            };
            Ok((0..len).map(|_| mean + std * rng.sample::<f32, _>(StandardNormal)).collect())
        });
    let Ok(weights) = result;
    Llama::from_weights(weights).expect("a valid shape gives valid weights")
}

/// Words whose prefixes make the synthetic tokenizer's merges (TinyStories' commonest words).
const WORDS: &str = "once upon a time there was little girl named lily she liked to play with her toys \
    in the park one day saw big dog and it he his they were happy said mom tom ben sun tree ball \
    friends went home very wanted help what is this look can we you not be so had fun cat bird \
    red blue box cake run jump smile sad good boy all of at on for but then said";

/// A llama2.c vocabulary of `vocab_size` (at least 259) tokens for the presets: `<unk>`, `<s>`,
/// `</s>`, the 256 byte-fallback tokens, printable ASCII, every prefix of [`WORDS`] with and
/// without a leading space (so greedy merging reaches whole words), then letter pairs and
/// triples, with and without a space, until the vocabulary is full. Earlier tokens score higher.
pub fn synthetic_llama_tokenizer(vocab_size: usize) -> Llama2cTokenizer {
    assert!(vocab_size >= 259, "a llama2.c vocabulary holds at least the 3 special and 256 byte tokens");
    let mut vocab: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"\n<s>\n".to_vec(), b"\n</s>\n".to_vec()];
    vocab.extend((0..=255u8).map(|b| format!("<0x{b:02X}>").into_bytes()));
    let mut seen: std::collections::HashSet<Vec<u8>> = vocab.iter().cloned().collect();
    let letters = || (b'a'..=b'z').map(|c| (c as char).to_string());
    let pairs = || letters().flat_map(move |a| letters().map(move |b| format!("{a}{b}")));
    let triples = || pairs().flat_map(move |ab| letters().map(move |c| format!("{ab}{c}")));
    let prefixes = WORDS.split_whitespace().flat_map(|w| {
        let spaced = format!(" {w}");
        let all: Vec<String> = (2..=w.len()).map(|n| w[..n].to_string()).collect();
        all.into_iter().chain((2..=spaced.len()).map(move |n| spaced[..n].to_string()))
    });
    let candidates = (b' '..=b'~')
        .map(|c| (c as char).to_string())
        .chain(prefixes)
        .chain(pairs())
        .chain(pairs().map(|p| format!(" {p}")))
        .chain(triples())
        .chain(triples().map(|t| format!(" {t}")));
    for token in candidates {
        if vocab.len() == vocab_size {
            break;
        }
        if seen.insert(token.clone().into_bytes()) {
            vocab.push(token.into_bytes());
        }
    }
    assert_eq!(vocab.len(), vocab_size, "the candidate tokens fill any preset's vocabulary");
    let scores = (0..vocab_size).map(|id| if id < 259 { 0.0 } else { -(id as f32) }).collect();
    Llama2cTokenizer::new(vocab, scores)
}
