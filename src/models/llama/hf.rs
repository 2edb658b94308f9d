//! Hugging Face Llama directories (`config.json` with `"model_type": "llama"` +
//! `model.safetensors`), read and written.
//!
//! Names: `model.embed_tokens`, `model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
//! post_attention_layernorm, mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head`; every
//! projection is `(n_out, n_in)` as in llama2.c. The one difference is RoPE: Hugging Face
//! rotates element `i` with `i + head_size / 2` and stores the rows of `q_proj` and `k_proj`
//! permuted to suit; loading reorders them onto llama2.c's adjacent pairs
//! ([`rope::rotate_half_rows_to_adjacent_pairs`]), writing reorders them back.

use super::config::LlamaConfig;
use super::llama2c::LlamaWeights;
use super::{Llama, LlamaBlock};
use crate::error::{Error, Result};
use crate::kernels::rope;
use crate::models::config_keys;
use crate::models::model_dir::{CONFIG_FILE, write_model_dir};
use crate::models::safetensors_io::{self as st_io, TensorSpec, WEIGHTS_FILE};
use crate::tokenizer::Tokenizer;
use safetensors::{Dtype, SafeTensors};
use std::borrow::Cow;
use std::path::Path;

/// Whether the directory's `config.json` describes a Llama model (`model_type` "llama", or no
/// `model_type` and a `LlamaForCausalLM` architecture); `false` when there is no `config.json`.
pub fn is_llama_dir(dir: &Path) -> Result<bool> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(false);
    }
    let json: serde_json::Value = serde_json::from_slice(&st_io::read(&path)?)
        .map_err(|e| Error::BadConfigJson { path: path.clone(), reason: e.to_string() })?;
    // `model_type` decides when present (the GPT-2 reader refuses any other than gpt2, naming
    // it); without it, the architectures do.
    if let Some(model_type) = json.get("model_type").and_then(|t| t.as_str()) {
        return Ok(model_type == "llama");
    }
    let architecture = json
        .get("architectures")
        .and_then(|a| a.as_array())
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("LlamaForCausalLM")));
    Ok(architecture)
}

/// The fields of Hugging Face's `LlamaConfig` that we read, with its defaults; every other key
/// is audited against [`config_keys::LLAMA_KEYS`] (harmless, refused, or reported as unknown).
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
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    rope_parameters: Option<serde_json::Value>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    head_dim: Option<usize>,
}

fn default_eps() -> f32 {
    1e-6
}

/// transformers' default RoPE base for Llama.
const DEFAULT_ROPE_THETA: f64 = 10000.0;

/// Reads and validates a Hugging Face Llama `config.json` (transformers 4 or 5), with a warning
/// line naming the keys smallmind does not know, if any (see [`config_keys`]).
///
/// RoPE settings are resolved as transformers 5 resolves them: a non-empty `rope_scaling`
/// (transformers 4's key) replaces `rope_parameters`; the base is that object's `rope_theta`,
/// else the top-level `rope_theta`, else 10000; its `rope_type` (or legacy `type`) must be
/// `default`: scaled variants (`linear`, `dynamic`, `yarn`, `longrope`, `llama3`) are refused
/// by name.
///
/// # Errors
/// [`Error::BadConfigJson`] for invalid JSON, a missing or mistyped field, a key whose value
/// changes the forward pass in a way smallmind does not implement (named), or an invalid shape.
pub fn read_config(path: &Path) -> Result<(LlamaConfig, Vec<String>)> {
    let bad = |reason: String| Error::BadConfigJson { path: path.to_path_buf(), reason };
    let bytes = st_io::read(path)?;
    let keys: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut unknown = config_keys::audit(path, &keys, &[config_keys::COMMON_KEYS, config_keys::LLAMA_KEYS])?;
    let hf: HfLlamaConfig = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let (rope_theta, unknown_rope_keys) = rope_theta(&hf).map_err(bad)?;
    unknown.extend(unknown_rope_keys);
    if hf.num_attention_heads > 0
        && let Some(head_dim) = hf.head_dim
        && head_dim.checked_mul(hf.num_attention_heads) != Some(hf.hidden_size)
    {
        return Err(bad(format!(
            "`head_dim` {head_dim} times num_attention_heads {} is not hidden_size {}: not supported",
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
        rope_theta: rope_theta as f32,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok((config, config_keys::unknown_keys_warning(path, &unknown).into_iter().collect()))
}

/// RoPE's base from `rope_scaling` / `rope_parameters` / `rope_theta` (see [`read_config`]),
/// and the keys of the RoPE object smallmind does not know (as `rope_parameters.KEY`).
fn rope_theta(hf: &HfLlamaConfig) -> std::result::Result<(f64, Vec<String>), String> {
    let non_empty = |v: &Option<serde_json::Value>| {
        v.as_ref().filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty())).cloned()
    };
    let (key, params) = match (non_empty(&hf.rope_scaling), non_empty(&hf.rope_parameters)) {
        (Some(scaling), _) => ("rope_scaling", scaling),
        (None, Some(params)) => ("rope_parameters", params),
        (None, None) => return Ok((hf.rope_theta.unwrap_or(DEFAULT_ROPE_THETA), Vec::new())),
    };
    let serde_json::Value::Object(params) = params else {
        return Err(format!("`{key}` must be an object, got {params}"));
    };
    let rope_type = params.get("rope_type").or_else(|| params.get("type"));
    match rope_type {
        None => {}
        Some(serde_json::Value::String(t)) if t == "default" => {}
        Some(other) => {
            return Err(format!(
                "`{key}` has rope_type {other}: only the default RoPE is implemented \
                 (linear, dynamic, yarn, longrope and llama3 scaling change the frequencies)"
            ));
        }
    }
    let mut unknown = Vec::new();
    for (name, value) in &params {
        match name.as_str() {
            "rope_type" | "type" | "rope_theta" => {}
            "partial_rotary_factor" if value.as_f64() == Some(1.0) => {}
            "partial_rotary_factor" => {
                return Err(format!(
                    "`{key}.partial_rotary_factor` {value} is not supported: RoPE rotates whole heads"
                ));
            }
            _ if value.is_object() => {
                return Err(format!("`{key}.{name}`: per-layer RoPE parameters are not supported"));
            }
            _ => unknown.push(format!("{key}.{name}")),
        }
    }
    let theta = match params.get("rope_theta") {
        None => hf.rope_theta.unwrap_or(DEFAULT_ROPE_THETA),
        Some(v) => v.as_f64().ok_or_else(|| format!("`{key}.rope_theta` must be a number, got {v}"))?,
    };
    Ok((theta, unknown))
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
///
/// Returns warning lines for the config keys and tensors smallmind did not read. Tensors older
/// transformers versions saved are read as harmless when they agree with the model:
/// `rotary_emb.inv_freq` equal to the frequencies of the config's RoPE base, `lm_head.weight`
/// equal to the embedding under a tied classifier.
pub fn load_dir(dir: &Path) -> Result<(Llama, Vec<String>)> {
    let (c, mut warnings) = read_config(&dir.join(CONFIG_FILE))?;
    let path = st_io::weights_path(dir)?;
    let bytes = st_io::read(&path)?;
    st_io::require_room_for(&path, bytes.len(), c.checked_parameter_count())?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Safetensors { path: path.clone(), reason: e.to_string() })?;
    let specs = tensor_specs(&c);
    let mut tensors = specs.iter().map(|spec| st_io::read_tensor(&st, &path, spec));
    let mut next = || tensors.next().expect("a spec per tensor");
    let (hs, d) = (c.head_size(), c.dim);
    let w = LlamaWeights::gather(&c, &mut next, &|rows, heads| {
        rope::rotate_half_rows_to_adjacent_pairs(&rows, heads, hs, d)
    })?;
    let inv_freq: Vec<f32> = (0..hs / 2)
        .map(|i| (1.0 / f64::from(c.rope_theta).powf((2 * i) as f64 / hs as f64)) as f32)
        .collect();
    let unread = st.names().into_iter().filter(|name| {
        let agrees = |values: &[f32]| st.tensor(name).is_ok_and(|view| st_io::same_values(&view, values));
        // Stored in the checkpoint's dtype: agreement within its precision.
        let close = |values: &[f32]| {
            st.tensor(name).ok().is_some_and(|view| {
                let tolerance = match view.dtype() {
                    Dtype::F16 => 1e-3,
                    Dtype::BF16 => 8e-3,
                    _ => 1e-5,
                };
                st_io::decode_f32(view.dtype(), view.data()).is_some_and(|stored| {
                    stored.len() == values.len()
                        && stored
                            .iter()
                            .zip(values)
                            .all(|(a, b)| (a - b).abs() <= tolerance * b.abs().max(1e-30))
                })
            })
        };
        let harmless = (name.ends_with(".self_attn.rotary_emb.inv_freq") && close(&inv_freq))
            || (*name == "lm_head.weight" && c.shared_classifier && agrees(&w.token_embedding));
        !(harmless || specs.iter().any(|s| s.name == *name))
    });
    warnings.extend(st_io::unread_tensors_warning(&path, unread.map(str::to_string).collect()));
    Ok((Llama::from_weights(w)?, warnings))
}

/// Writes `model` and its tokenizer (`tokenizer.json`, or llama2.c's `tokenizer.bin`) as a
/// Hugging Face Llama directory (created if needed); each file goes to a temporary name first
/// and is renamed, after every destination was checked
/// ([`crate::models::model_dir::check_destination`]). A weight that `dtype` cannot hold is
/// refused before anything is written (see [`st_io::encode_safetensors`]).
pub fn export_dir(model: &Llama, tokenizer: Option<&Tokenizer>, dir: &Path, dtype: Dtype) -> Result<()> {
    let c = &model.config;
    // Borrowed where the layout is the checkpoint's; the q and k rows reordered for Hugging
    // Face's rotate-half RoPE one layer at a time, as the encoder reaches them.
    fn per_layer<'l>(l: &'l LlamaBlock, c: &LlamaConfig) -> [Cow<'l, [f32]>; 9] {
        let (hs, d) = (c.head_size(), c.dim);
        [
            Cow::from(&l.rms_att.weight[..]),
            Cow::from(rope::adjacent_pairs_to_rotate_half_rows(&l.attn.wq.weight, c.n_heads, hs, d)),
            Cow::from(rope::adjacent_pairs_to_rotate_half_rows(&l.attn.wk.weight, c.n_kv_heads, hs, d)),
            Cow::from(&l.attn.wv.weight[..]),
            Cow::from(&l.attn.wo.weight[..]),
            Cow::from(&l.rms_ffn.weight[..]),
            Cow::from(&l.ffn.w1.weight[..]),
            Cow::from(&l.ffn.w3.weight[..]),
            Cow::from(&l.ffn.w2.weight[..]),
        ]
    }
    let data = std::iter::once(Cow::from(&model.token_embedding[..]))
        .chain(model.layers.iter().flat_map(|l| per_layer(l, c)))
        .chain([Cow::from(&model.rms_final.weight[..])])
        .chain(model.classifier.as_deref().map(Cow::from));
    let tensors = tensor_specs(c).into_iter().zip(data);
    let weights = st_io::encode_safetensors(tensors, dtype, &dir.join(WEIGHTS_FILE))?;
    write_model_dir(dir, weights, config_json(c), tokenizer)
}
