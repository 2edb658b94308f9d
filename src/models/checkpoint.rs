//! Hugging Face GPT-2 directories: `config.json` + `model.safetensors` (+ `tokenizer.json`),
//! read and written; and [`load`], which turns `--model NAME|DIR|FILE.bin` into a model of
//! either architecture and its tokenizer (Llama's formats are `hf_llama.rs` and `llama2c.rs`).
//!
//! Tensor names are GPT-2's, with or without the `transformer.` prefix; Conv1D weights are
//! `(n_in, n_out)`; F32, F16 and BF16 are converted to f32 at load. Every shape is checked here,
//! once, so that the forward pass can trust it.

use super::config::Gpt2Config;
use super::gpt2::{Gpt2, TensorSpec};
use super::llama::Llama;
use super::llama2c::LlamaWeights;
use super::{Model, config_keys, hf_llama, presets};
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use crate::tokenizer::llama2c::Llama2cTokenizer;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The weights file in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The config file in a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// A Hugging Face tokenizer, used when present.
pub const HF_TOKENIZER_FILE: &str = "tokenizer.json";
/// Our character vocabulary (`{"chars": "..."}`), written by `export` for character presets.
pub const CHARS_TOKENIZER_FILE: &str = "smallmind_chars.json";

/// A model ready to run, with its tokenizer and where it came from.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: Model,
    /// `None` for a Llama directory without `tokenizer.json` or `tokenizer.bin` when none was
    /// given: the model runs on token ids (`--prompt-ids`) and its output is ids only.
    pub tokenizer: Option<Tokenizer>,
    /// `preset tiny`, or the directory's or file's path.
    pub source: String,
    /// One line for each file that holds config keys or tensors smallmind did not read; the
    /// command line prints them (a new transformers release adds keys, and the user must see
    /// that the engine did not read them).
    pub warnings: Vec<String>,
}

/// llama2.c's tokenizer file, looked for beside a `.bin` checkpoint or in a Llama directory.
pub const LLAMA2C_TOKENIZER_FILE: &str = "tokenizer.bin";

/// Loads `--model NAME|DIR|FILE.bin` (a preset's name, a Hugging Face GPT-2 or Llama
/// directory, or a llama2.c checkpoint), with `--tokenizer FILE` (a llama2.c `tokenizer.bin`,
/// for Llama models) when given.
///
/// A Llama model's tokenizer is `--tokenizer`, else a directory's `tokenizer.json`, else
/// `tokenizer.bin` beside the checkpoint or in the directory (where llama2.c's `run` looks),
/// else none: the model then runs on token ids only.
pub fn load(spec: &str, tokenizer: Option<&Path>) -> Result<LoadedModel> {
    let path = Path::new(spec);
    let mut warnings = Vec::new();
    let (model, found_tokenizer, source) = if let Some(preset) = presets::find(spec) {
        (preset.model(), Some(preset.tokenizer()), format!("preset {spec}"))
    } else if path.is_dir() {
        if hf_llama::is_llama_dir(path)? {
            let (model, unread) = hf_llama::load_dir(path)?;
            warnings = unread;
            let tokenizer = match path.join(HF_TOKENIZER_FILE) {
                hf if hf.is_file() => Some(Tokenizer::from_hf_file(&hf)?),
                _ => None,
            };
            (Model::Llama(model), tokenizer, path.display().to_string())
        } else {
            let (model, unread) = load_dir(path)?;
            warnings = unread;
            (Model::Gpt2(model), load_tokenizer(path)?, path.display().to_string())
        }
    } else if path.is_file() {
        if let Some(ext @ ("json" | "safetensors")) = path.extension().and_then(|e| e.to_str()) {
            return Err(Error::Input(format!(
                "{spec} is a .{ext} file, not a llama2.c checkpoint: give the Hugging Face model's directory"
            )));
        }
        let model = Llama::from_weights(LlamaWeights::read(path)?).map_err(|e| match e {
            Error::Config(reason) => Error::Config(format!("{}: {reason}", path.display())),
            other => other,
        })?;
        (Model::Llama(model), None, path.display().to_string())
    } else {
        return Err(Error::UnknownModel(spec.to_string()));
    };
    let tokenizer = match (&model, tokenizer) {
        (Model::Llama(llama), Some(file)) => Some(llama2c_tokenizer(file, llama.config.vocab_size)?),
        (Model::Gpt2(_), Some(file)) => {
            return Err(Error::Input(format!(
                "--tokenizer {} is for Llama models (a llama2.c tokenizer.bin); {spec} is a GPT-2 model",
                file.display()
            )));
        }
        (_, None) => match (found_tokenizer, &model) {
            (Some(t), _) => Some(t),
            // A llama2.c checkpoint or a Llama directory without tokenizer.json: look for
            // tokenizer.bin beside it, as llama2.c's `run` looks in its working directory.
            (None, Model::Llama(llama)) => {
                let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
                let beside = dir.join(LLAMA2C_TOKENIZER_FILE);
                match beside.is_file() {
                    true => Some(llama2c_tokenizer(&beside, llama.config.vocab_size)?),
                    false => None,
                }
            }
            (None, Model::Gpt2(_)) => None,
        },
    };
    if let Some(Tokenizer::HuggingFace(t)) = &tokenizer {
        // Ids may be sparse: the vocabulary the tokenizer spans is its highest id + 1.
        let theirs = t.get_vocab(true).into_values().max().map_or(0, |id| id as usize + 1);
        let ours = model.as_ref().vocab_size();
        if theirs != ours {
            warnings.push(format!(
                "{}: tokenizer.json has {theirs} tokens and the model {ours}: {}",
                path.display(),
                if theirs > ours {
                    "a prompt may encode to ids the model refuses"
                } else {
                    "generated ids the tokenizer lacks show as \u{FFFD}"
                }
            ));
        }
    }
    let unread: Vec<&str> =
        UNREAD_TOKENIZER_FILES.iter().copied().filter(|f| path.join(f).is_file()).collect();
    if tokenizer.is_none() && path.is_dir() && !unread.is_empty() {
        warnings.push(format!(
            "{}: smallmind reads tokenizer.json (or llama2.c's tokenizer.bin), not {}: this model runs on token \
             ids (--prompt-ids); transformers' tokenizer.save_pretrained writes tokenizer.json",
            path.display(),
            unread.join(" or ")
        ));
    }
    Ok(LoadedModel { model, tokenizer, source, warnings })
}

impl LoadedModel {
    /// The tokenizer, or an error saying how to run without one (`what` is what needed it).
    ///
    /// # Errors
    /// [`Error::Input`] when the model has no tokenizer.
    pub fn require_tokenizer(&self, what: &str) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::Input(format!(
                "{} has no tokenizer, which {what} needs: give the prompt as ids (--prompt-ids 1,2,3), \
                 or a tokenizer (--tokenizer FILE: llama2.c's tokenizer.bin, {} tokens; or tokenizer.json or \
                 {LLAMA2C_TOKENIZER_FILE} in the model's directory)",
                self.source,
                self.model.as_ref().vocab_size()
            ))
        })
    }
}

fn llama2c_tokenizer(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    Ok(Tokenizer::Llama2c(Box::new(Llama2cTokenizer::read(path, vocab_size)?)))
}

/// Tokenizer files of other formats that smallmind does not read (transformers' slow GPT-2
/// tokenizer, SentencePiece): a directory holding one has a tokenizer that is not bytes.
pub const UNREAD_TOKENIZER_FILES: [&str; 4] = ["vocab.json", "merges.txt", "tokenizer.model", "vocab.txt"];

/// The tokenizer of a GPT-2 directory: `tokenizer.json`, else our character vocabulary, else
/// none when the directory holds a tokenizer in a format smallmind does not read (see
/// [`UNREAD_TOKENIZER_FILES`]; the model then runs on ids), else bytes (what `export` of a byte
/// preset leaves).
pub fn load_tokenizer(dir: &Path) -> Result<Option<Tokenizer>> {
    let hf = dir.join(HF_TOKENIZER_FILE);
    if hf.is_file() {
        return Tokenizer::from_hf_file(&hf).map(Some);
    }
    let chars = dir.join(CHARS_TOKENIZER_FILE);
    if chars.is_file() {
        #[derive(serde::Deserialize)]
        struct Chars {
            chars: String,
        }
        let text = read(&chars)?;
        let parsed: Chars = serde_json::from_slice(&text)
            .map_err(|e| Error::Tokenizer { path: chars.clone(), reason: e.to_string() })?;
        return Ok(Some(Tokenizer::chars(&parsed.chars)));
    }
    if UNREAD_TOKENIZER_FILES.iter().any(|f| dir.join(f).is_file()) {
        return Ok(None);
    }
    Ok(Some(Tokenizer::Bytes))
}

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

/// `dir/model.safetensors`, or an error saying why a directory has none (a sharded checkpoint).
pub(crate) fn weights_path(dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.exists() && dir.join("model.safetensors.index.json").is_file() {
        return Err(Error::Input(format!(
            "{}: a sharded checkpoint (model.safetensors.index.json) is not supported: save it as one \
             model.safetensors (transformers: save_pretrained(..., max_shard_size=\"100GB\"))",
            dir.display()
        )));
    }
    Ok(path)
}

/// Whether a stored tensor holds exactly `values` (as f32).
pub(crate) fn same_values(view: &TensorView, values: &[f32]) -> bool {
    decode_f32(view.dtype(), view.data()).is_some_and(|v| v == values)
}

/// Little-endian F32, F16 or BF16 bytes as f32 values; `None` for another dtype.
pub(crate) fn decode_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => {
            data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        _ => return None,
    })
}

/// The warning line for the tensors of `path` that were not read, if any.
pub(crate) fn unread_tensors_warning(path: &Path, mut names: Vec<String>) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    names.sort();
    let shown = names.iter().take(6).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let more = if names.len() > 6 { format!(" and {} more", names.len() - 6) } else { String::new() };
    Some(format!(
        "{}: smallmind did not read {} tensor(s) of this file: {shown}{more}",
        path.display(),
        names.len()
    ))
}

/// Writes `model` as a Hugging Face GPT-2 directory (created if needed); `dtype` is F32, F16 or
/// BF16. Each file is written to a temporary name and renamed, so a failure leaves no partial file.
///
/// # Errors
/// [`Error::Input`] when a weight does not fit `dtype` (F16 holds magnitudes up to 65504), before
/// anything is written.
pub fn export_dir(model: &Gpt2, tokenizer: Option<&Tokenizer>, dir: &Path, dtype: Dtype) -> Result<()> {
    let weights = encode_safetensors(&model.tensors(), dtype, &dir.join(WEIGHTS_FILE))?;
    write_model_dir(dir, weights, config_json(&model.config), tokenizer)
}

/// Every tokenizer file a model directory may hold; `load` reads the first three, and the
/// others make it run on ids.
pub const TOKENIZER_FILES: [&str; 7] = [
    HF_TOKENIZER_FILE,
    CHARS_TOKENIZER_FILE,
    LLAMA2C_TOKENIZER_FILE,
    UNREAD_TOKENIZER_FILES[0],
    UNREAD_TOKENIZER_FILES[1],
    UNREAD_TOKENIZER_FILES[2],
    UNREAD_TOKENIZER_FILES[3],
];

/// The files that hold `tokenizer` in a model directory: `tokenizer.json`, our character
/// vocabulary or llama2.c's `tokenizer.bin`; none for bytes (what `load` assumes without one)
/// or for no tokenizer.
pub fn tokenizer_files(tokenizer: Option<&Tokenizer>) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(match tokenizer {
        Some(Tokenizer::HuggingFace(t)) => {
            let json =
                t.to_string(false).map_err(|e| Error::Input(format!("cannot write tokenizer.json: {e}")))?;
            vec![(HF_TOKENIZER_FILE, json.into_bytes())]
        }
        Some(Tokenizer::Chars { vocab }) => {
            let chars: String = vocab.iter().collect();
            vec![(CHARS_TOKENIZER_FILE, serde_json::json!({ "chars": chars }).to_string().into_bytes())]
        }
        Some(Tokenizer::Llama2c(t)) => vec![(LLAMA2C_TOKENIZER_FILE, t.to_bytes())],
        Some(Tokenizer::Bytes) | None => Vec::new(),
    })
}

/// Refuses a destination where writing `files` would leave a model that loads differently: a
/// file to write whose path is a directory, or a tokenizer file of another model that this
/// export would not replace (it would be loaded with the new weights).
///
/// # Errors
/// [`Error::Input`] naming the paths, before anything is written.
pub fn check_destination(dir: &Path, files: &[&str]) -> Result<()> {
    if let Some(f) = files.iter().find(|f| dir.join(f).is_dir()) {
        return Err(Error::Input(format!(
            "{} is a directory: cannot write the model's {f} there",
            dir.join(f).display()
        )));
    }
    let stale: Vec<&str> =
        TOKENIZER_FILES.iter().copied().filter(|f| !files.contains(f) && dir.join(f).exists()).collect();
    if !stale.is_empty() {
        return Err(Error::Input(format!(
            "{} already holds {} of another model, which would be loaded with these weights; export into a new \
             or empty directory, or remove {}",
            dir.display(),
            stale.join(" and "),
            if stale.len() == 1 { "it" } else { "them" }
        )));
    }
    Ok(())
}

/// Writes a Hugging Face model directory: the weights, the config and the tokenizer's files,
/// after checking every destination ([`check_destination`]) so that a refusal writes nothing.
pub(crate) fn write_model_dir(
    dir: &Path,
    weights: Vec<u8>,
    config: String,
    tokenizer: Option<&Tokenizer>,
) -> Result<()> {
    let mut files = vec![(WEIGHTS_FILE, weights), (CONFIG_FILE, config.into_bytes())];
    files.extend(tokenizer_files(tokenizer)?);
    check_destination(dir, &files.iter().map(|(name, _)| *name).collect::<Vec<_>>())?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    for (name, bytes) in files {
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// The bytes of a safetensors file holding `tensors` in `dtype` (F16, BF16, else F32), to be
/// written at `path` (named in errors).
///
/// # Errors
/// [`Error::Input`] naming the first tensor, index and value that `dtype` cannot hold: F16's
/// largest finite value is 65504, and a larger one would silently become infinity (and the
/// exported model's logits NaN).
pub(crate) fn encode_safetensors(
    tensors: &[(TensorSpec, &[f32])],
    dtype: Dtype,
    path: &Path,
) -> Result<Vec<u8>> {
    // A finite weight must stay finite: f16 tops out at 65504, bf16 just below f32's maximum.
    // (the test, the dtype's name, its largest value, what to use instead)
    type Limit = (fn(f32) -> bool, &'static str, String, &'static str);
    let overflows: Option<Limit> = match dtype {
        Dtype::F16 => {
            Some((|v| half::f16::from_f32(v).is_infinite(), "f16", half::f16::MAX.to_string(), "bf16 or f32"))
        }
        Dtype::BF16 => Some((
            |v| half::bf16::from_f32(v).is_infinite(),
            "bf16",
            format!("{:e}", f32::from(half::bf16::MAX)),
            "f32",
        )),
        _ => None,
    };
    if let Some((overflows, name, max, instead)) = overflows {
        for (spec, data) in tensors {
            if let Some((index, value)) =
                data.iter().enumerate().find(|(_, v)| v.is_finite() && overflows(**v))
            {
                return Err(Error::Input(format!(
                    "cannot export {} as {name}: tensor `{}` holds {value} at index {index}, beyond {name}'s largest \
                     finite value ({max}); export as {instead}",
                    path.display(),
                    spec.name,
                )));
            }
        }
    }
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, data)| match dtype {
            Dtype::F16 => data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            Dtype::BF16 => data.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            _ => data.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        })
        .collect();
    let dtype = if matches!(dtype, Dtype::F16 | Dtype::BF16) { dtype } else { Dtype::F32 };
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((spec, _), b)| {
            let view = TensorView::new(dtype, spec.shape.clone(), b).expect("sizes match by construction");
            (spec.name.clone(), view)
        })
        .collect::<Vec<_>>();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Safetensors { path: path.to_path_buf(), reason: e.to_string() })
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
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

/// One tensor as f32, found under its name or `transformer.` + its name, with its shape checked
/// and every value finite.
///
/// # Errors
/// [`Error::MissingTensor`], [`Error::ShapeMismatch`], [`Error::UnsupportedDtype`], or
/// [`Error::NonFiniteWeight`] naming the tensor as the file does, the first bad value and its
/// index.
pub(crate) fn read_tensor(st: &SafeTensors, path: &Path, spec: &TensorSpec) -> Result<Vec<f32>> {
    let prefixed = format!("transformer.{}", spec.name);
    if st.tensor(&spec.name).is_ok() && st.tensor(&prefixed).is_ok() {
        // transformers reads `transformer.X` into GPT2LMHeadModel; another tool may read `X`.
        return Err(Error::Input(format!(
            "{}: both `{}` and `{prefixed}` are stored, with no rule for which one a loader reads; keep one",
            path.display(),
            spec.name
        )));
    }
    let (name, view) = match st.tensor(&spec.name) {
        Ok(view) => (&spec.name, view),
        Err(_) => match st.tensor(&prefixed) {
            Ok(view) => (&prefixed, view),
            Err(_) => return Err(Error::MissingTensor { path: path.to_path_buf(), name: spec.name.clone() }),
        },
    };
    if view.shape() != spec.shape.as_slice() {
        return Err(Error::ShapeMismatch {
            path: path.to_path_buf(),
            name: spec.name.clone(),
            expected: spec.shape.clone(),
            found: view.shape().to_vec(),
        });
    }
    let values = decode_f32(view.dtype(), view.data()).ok_or_else(|| Error::UnsupportedDtype {
        path: path.to_path_buf(),
        name: spec.name.clone(),
        found: format!("{:?}", view.dtype()),
    })?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        let value = values[index];
        return Err(Error::NonFiniteWeight { path: path.to_path_buf(), name: name.clone(), index, value });
    }
    Ok(values)
}

/// The fewest bytes a safetensors file holding `parameters` values can have: two per value
/// (F16 and BF16, the smallest dtypes we read).
const MIN_BYTES_PER_PARAMETER: usize = 2;

/// An error when a weights file of `file_len` bytes at `path` is too small to hold the
/// `parameters` values its config asks for (`None`: a count that overflows), checked before the
/// tensor list of the config's shape is built, so a small file with a huge config allocates
/// nothing in proportion to the config.
pub(crate) fn require_room_for(path: &Path, file_len: usize, parameters: Option<usize>) -> Result<()> {
    let needed = parameters.and_then(|n| n.checked_mul(MIN_BYTES_PER_PARAMETER));
    match needed {
        Some(needed) if needed <= file_len => Ok(()),
        _ => Err(Error::Safetensors {
            path: path.to_path_buf(),
            reason: format!(
                "config.json's shape has {} parameters, at least {} bytes in F16, and the file has {file_len} bytes: \
                 the config does not describe these weights",
                parameters.map_or("more than 2^64".to_string(), |n| n.to_string()),
                needed.map_or("more than 2^64".to_string(), |n| n.to_string()),
            ),
        }),
    }
}
