//! Hugging Face GPT-2 directories: `config.json` + `model.safetensors` (+ a tokenizer file),
//! read and written. Tensor names are GPT-2's, with or without the `transformer.` prefix; Conv1D
//! weights are `(n_in, n_out)`; F32, F16 and BF16 are converted to f32 at load. Every shape is
//! checked here, once, so that the forward pass can trust it.

use super::Gpt2;
use super::config::Gpt2Config;
use crate::error::{Error, Result};
use crate::models::config_keys;
use crate::models::model_dir::{CONFIG_FILE, write_model_dir};
use crate::models::safetensors_io::{
    WEIGHTS_FILE, encode_safetensors, read, read_tensor, require_room_for, same_values,
    unread_tensors_warning, weights_path,
};
use crate::tokenizer::Tokenizer;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Reads `config.json` and `model.safetensors` from `dir`, with warning lines for the config
/// keys and the tensors smallmind did not read (none for a file it fully understands).
///
/// Tensors older transformers versions saved beside the weights are read as harmless: the
/// causal-mask buffers `h.N.attn.bias` and `h.N.attn.masked_bias`, and `lm_head.weight` equal to
/// `wte` under a tied head. A stored `lm_head.weight` that differs from `wte` while the config
/// ties them is reported: transformers and smallmind both use `wte`.
pub fn load_dir(dir: &Path) -> Result<(Gpt2, Vec<String>)> {
    let (config, mut warnings) = read_config(&dir.join(CONFIG_FILE))?;
    let path = weights_path(dir)?;
    let bytes = read(&path)?;
    require_room_for(&path, bytes.len(), config.checked_parameter_count())?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Safetensors { path: path.clone(), reason: e.to_string() })?;
    let model = Gpt2::from_tensors(config, |spec| read_tensor(&st, &path, spec))?;
    let specs = Gpt2::tensor_specs(&model.config);
    let unread = st.names().into_iter().filter(|name| {
        let bare = name.strip_prefix("transformer.").unwrap_or(name);
        let buffer =
            bare.starts_with("h.") && (bare.ends_with(".attn.bias") || bare.ends_with(".attn.masked_bias"));
        let tied_copy = bare == "lm_head.weight"
            && model.lm_head.is_none()
            && st.tensor(name).is_ok_and(|view| same_values(&view, &model.wte));
        !(buffer || tied_copy || specs.iter().any(|s| s.name == bare))
    });
    warnings.extend(unread_tensors_warning(&path, unread.map(str::to_string).collect()));
    Ok((model, warnings))
}

/// Writes `model` as a Hugging Face GPT-2 directory (created if needed); `dtype` is F32, F16 or
/// BF16. Each file is written to a temporary name and renamed, so a failure leaves no partial file.
///
/// # Errors
/// [`Error::Input`] when a weight does not fit `dtype` (F16 holds magnitudes up to 65504), before
/// anything is written.
pub fn export_dir(model: &Gpt2, tokenizer: Option<&Tokenizer>, dir: &Path, dtype: Dtype) -> Result<()> {
    let weights = encode_safetensors(model.tensors(), dtype, &dir.join(WEIGHTS_FILE))?;
    write_model_dir(dir, weights, config_json(&model.config), tokenizer)
}

/// The fields of Hugging Face's `GPT2Config` that we read; every other key is audited against
/// [`config_keys::GPT2_KEYS`] (harmless, refused, or reported as unknown).
#[derive(serde::Deserialize)]
struct HfGpt2Config {
    n_embd: usize,
    n_head: usize,
    n_layer: usize,
    #[serde(default)]
    n_positions: Option<usize>,
    /// Older configs name the context `n_ctx` (GPT-2's own has both, equal).
    #[serde(default)]
    n_ctx: Option<usize>,
    vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_epsilon: f32,
    #[serde(default)]
    n_inner: Option<usize>,
    #[serde(default = "yes")]
    tie_word_embeddings: bool,
    #[serde(default = "yes")]
    scale_attn_weights: bool,
    #[serde(default)]
    scale_attn_by_inverse_layer_idx: bool,
}

fn default_eps() -> f32 {
    1e-5
}
fn yes() -> bool {
    true
}

/// Reads and validates a Hugging Face GPT-2 `config.json`, with a warning line naming the keys
/// smallmind does not know, if any (see [`config_keys`] for every key it does).
///
/// # Errors
/// [`Error::BadConfigJson`] for invalid JSON, a missing or mistyped field, a key whose value
/// changes the forward pass in a way smallmind does not implement (named), or an invalid shape.
pub fn read_config(path: &Path) -> Result<(Gpt2Config, Vec<String>)> {
    let bytes = read(path)?;
    let bad = |reason: String| Error::BadConfigJson { path: path.to_path_buf(), reason };
    let keys: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let unknown = config_keys::audit(path, &keys, &[config_keys::COMMON_KEYS, config_keys::GPT2_KEYS])?;
    let hf: HfGpt2Config = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let n_ctx = hf.n_positions.or(hf.n_ctx).ok_or_else(|| bad("missing field `n_positions`".into()))?;
    let config = Gpt2Config {
        vocab_size: hf.vocab_size,
        n_ctx,
        n_embd: hf.n_embd,
        n_head: hf.n_head,
        n_layer: hf.n_layer,
        n_inner: hf.n_inner.unwrap_or(hf.n_embd.saturating_mul(4)),
        layer_norm_epsilon: hf.layer_norm_epsilon,
        tie_word_embeddings: hf.tie_word_embeddings,
        scale_attn_weights: hf.scale_attn_weights,
        scale_attn_by_inverse_layer_idx: hf.scale_attn_by_inverse_layer_idx,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok((config, config_keys::unknown_keys_warning(path, &unknown).into_iter().collect()))
}

/// The `config.json` of a model, in Hugging Face's GPT-2 format.
pub fn config_json(config: &Gpt2Config) -> String {
    let json = serde_json::json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size,
        "n_positions": config.n_ctx,
        "n_ctx": config.n_ctx,
        "n_embd": config.n_embd,
        "n_head": config.n_head,
        "n_layer": config.n_layer,
        "n_inner": config.n_inner,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "activation_function": "gelu_new",
        "tie_word_embeddings": config.tie_word_embeddings,
        "scale_attn_weights": config.scale_attn_weights,
        "scale_attn_by_inverse_layer_idx": config.scale_attn_by_inverse_layer_idx,
        "torch_dtype": "float32",
    });
    serde_json::to_string_pretty(&json).expect("JSON values serialise")
}
