//! Hugging Face Llama directories (`config.json` with `"model_type": "llama"` +
//! `model.safetensors`), read and written.
//!
//! Names: `model.embed_tokens`, `model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
//! post_attention_layernorm, mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head`; every
//! projection is `(n_out, n_in)` as in llama2.c. The one difference is RoPE: Hugging Face
//! rotates element `i` with `i + head_size / 2` and stores the rows of `q_proj` and `k_proj`
//! permuted to suit; loading reorders them onto llama2.c's adjacent pairs
//! ([`rope::rotate_half_rows_to_adjacent_pairs`]), writing reorders them back.

use super::checkpoint::{self, CONFIG_FILE, WEIGHTS_FILE, write_atomic};
use super::gpt2::TensorSpec;
use super::llama::Llama;
use super::llama2c::{LlamaConfig, LlamaWeights};
use crate::error::{Error, Result};
use crate::kernels::rope;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Whether the directory's `config.json` describes a Llama model (`model_type` "llama" or a
/// `LlamaForCausalLM` architecture); `false` when there is no `config.json`.
pub fn is_llama_dir(dir: &Path) -> Result<bool> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(false);
    }
    let json: serde_json::Value = serde_json::from_slice(&checkpoint::read(&path)?)
        .map_err(|e| Error::BadConfigJson { path: path.clone(), reason: e.to_string() })?;
    let model_type = json.get("model_type").and_then(|t| t.as_str()) == Some("llama");
    let architecture = json
        .get("architectures")
        .and_then(|a| a.as_array())
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("LlamaForCausalLM")));
    Ok(model_type || architecture)
}

/// The fields of Hugging Face's `LlamaConfig` that we use, with its defaults.
#[derive(serde::Deserialize)]
struct HfLlamaConfig {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    vocab_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f32,
    #[serde(default = "default_theta")]
    rope_theta: f32,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
}

fn default_eps() -> f32 {
    1e-6
}
fn default_theta() -> f32 {
    10000.0
}
fn default_act() -> String {
    "silu".into()
}

/// Reads and validates a Hugging Face Llama `config.json`.
pub fn read_config(path: &Path) -> Result<LlamaConfig> {
    let bad = |reason: String| Error::BadConfigJson { path: path.to_path_buf(), reason };
    let hf: HfLlamaConfig =
        serde_json::from_slice(&checkpoint::read(path)?).map_err(|e| bad(e.to_string()))?;
    if hf.hidden_act != "silu" {
        return Err(bad(format!("hidden_act `{}` is not supported; Llama uses silu", hf.hidden_act)));
    }
    if hf.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(bad("rope_scaling is not supported: only plain RoPE (Llama 1 and 2 style)".into()));
    }
    if hf.attention_bias || hf.mlp_bias {
        return Err(bad(
            "attention_bias and mlp_bias are not supported: Llama's projections have no bias".into()
        ));
    }
    if hf.num_attention_heads > 0
        && let Some(head_dim) = hf.head_dim
        && head_dim * hf.num_attention_heads != hf.hidden_size
    {
        return Err(bad(format!(
            "head_dim {head_dim} times num_attention_heads {} is not hidden_size {}: not supported",
            hf.num_attention_heads, hf.hidden_size
        )));
    }
    let config = LlamaConfig {
        dim: hf.hidden_size,
        hidden_dim: hf.intermediate_size,
        n_layers: hf.num_hidden_layers,
        n_heads: hf.num_attention_heads,
        n_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
        vocab_size: hf.vocab_size,
        seq_len: hf.max_position_embeddings,
        shared_classifier: hf.tie_word_embeddings,
        norm_eps: hf.rms_norm_eps,
        rope_theta: hf.rope_theta,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
}

/// The `config.json` of a model, in Hugging Face's Llama format.
pub fn config_json(c: &LlamaConfig) -> String {
    let json = serde_json::json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": c.dim,
        "intermediate_size": c.hidden_dim,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.seq_len,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "tie_word_embeddings": c.shared_classifier,
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    });
    serde_json::to_string_pretty(&json).expect("JSON values serialise")
}

/// Every tensor of a Hugging Face Llama checkpoint of this shape, in order (`lm_head.weight`
/// only when the classifier is separate).
pub fn tensor_specs(c: &LlamaConfig) -> Vec<TensorSpec> {
    let (v, d, kv, h) = (c.vocab_size, c.dim, c.kv_dim(), c.hidden_dim);
    let spec = |name: String, shape: &[usize]| TensorSpec { name, shape: shape.to_vec() };
    let mut specs = vec![spec("model.embed_tokens.weight".into(), &[v, d])];
    for i in 0..c.n_layers {
        let layer = [
            ("input_layernorm.weight", vec![d]),
            ("self_attn.q_proj.weight", vec![d, d]),
            ("self_attn.k_proj.weight", vec![kv, d]),
            ("self_attn.v_proj.weight", vec![kv, d]),
            ("self_attn.o_proj.weight", vec![d, d]),
            ("post_attention_layernorm.weight", vec![d]),
            ("mlp.gate_proj.weight", vec![h, d]),
            ("mlp.up_proj.weight", vec![h, d]),
            ("mlp.down_proj.weight", vec![d, h]),
        ];
        specs.extend(layer.into_iter().map(|(name, shape)| spec(format!("model.layers.{i}.{name}"), &shape)));
    }
    specs.push(spec("model.norm.weight".into(), &[d]));
    if !c.shared_classifier {
        specs.push(spec("lm_head.weight".into(), &[v, d]));
    }
    specs
}

/// Reads a Hugging Face Llama directory, checking every tensor's name and shape.
pub fn load_dir(dir: &Path) -> Result<Llama> {
    let c = read_config(&dir.join(CONFIG_FILE))?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = checkpoint::read(&path)?;
    checkpoint::require_room_for(&path, bytes.len(), c.checked_parameter_count())?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Safetensors { path: path.clone(), reason: e.to_string() })?;
    let specs = tensor_specs(&c);
    let mut tensors = specs.iter().map(|spec| checkpoint::read_tensor(&st, &path, spec));
    let mut next = || tensors.next().expect("a spec per tensor");
    let (hs, d) = (c.head_size(), c.dim);
    let mut w = LlamaWeights {
        token_embedding: next()?,
        rms_att: Vec::new(),
        wq: Vec::new(),
        wk: Vec::new(),
        wv: Vec::new(),
        wo: Vec::new(),
        rms_ffn: Vec::new(),
        w1: Vec::new(),
        w2: Vec::new(),
        w3: Vec::new(),
        rms_final: Vec::new(),
        classifier: None,
        config: c.clone(),
    };
    for _ in 0..c.n_layers {
        w.rms_att.extend(next()?);
        w.wq.extend(rope::rotate_half_rows_to_adjacent_pairs(&next()?, c.n_heads, hs, d));
        w.wk.extend(rope::rotate_half_rows_to_adjacent_pairs(&next()?, c.n_kv_heads, hs, d));
        w.wv.extend(next()?);
        w.wo.extend(next()?);
        w.rms_ffn.extend(next()?);
        w.w1.extend(next()?);
        w.w3.extend(next()?);
        w.w2.extend(next()?);
    }
    w.rms_final = next()?;
    if !c.shared_classifier {
        w.classifier = Some(next()?);
    }
    Llama::from_weights(w)
}

/// Writes `model` as a Hugging Face Llama directory (created if needed); each file goes to a
/// temporary name first and is renamed.
pub fn export_dir(model: &Llama, dir: &Path, dtype: Dtype) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let c = &model.config;
    let (hs, d) = (c.head_size(), c.dim);
    let mut data: Vec<Vec<f32>> = vec![model.token_embedding.to_vec()];
    for l in &model.layers {
        data.extend([
            l.rms_att.weight.clone(),
            rope::adjacent_pairs_to_rotate_half_rows(&l.attn.wq.weight, c.n_heads, hs, d),
            rope::adjacent_pairs_to_rotate_half_rows(&l.attn.wk.weight, c.n_kv_heads, hs, d),
            l.attn.wv.weight.to_vec(),
            l.attn.wo.weight.to_vec(),
            l.rms_ffn.weight.clone(),
            l.ffn.w1.weight.to_vec(),
            l.ffn.w3.weight.to_vec(),
            l.ffn.w2.weight.to_vec(),
        ]);
    }
    data.push(model.rms_final.weight.clone());
    data.extend(model.classifier.as_deref().map(<[f32]>::to_vec));
    let tensors: Vec<(TensorSpec, &[f32])> =
        tensor_specs(c).into_iter().zip(data.iter().map(Vec::as_slice)).collect();
    checkpoint::write_safetensors(&dir.join(WEIGHTS_FILE), &tensors, dtype)?;
    write_atomic(&dir.join(CONFIG_FILE), config_json(c).as_bytes())
}
