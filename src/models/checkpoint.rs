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
use super::{Model, hf_llama, presets};
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
    pub tokenizer: Tokenizer,
    /// `preset tiny`, or the directory's or file's path.
    pub source: String,
}

/// llama2.c's tokenizer file, looked for beside a `.bin` checkpoint or in a Llama directory.
pub const LLAMA2C_TOKENIZER_FILE: &str = "tokenizer.bin";

/// Loads `--model NAME|DIR|FILE.bin` (a preset's name, a Hugging Face GPT-2 or Llama
/// directory, or a llama2.c checkpoint), with `--tokenizer FILE` (a llama2.c `tokenizer.bin`,
/// for Llama models) when given.
pub fn load(spec: &str, tokenizer: Option<&Path>) -> Result<LoadedModel> {
    let path = Path::new(spec);
    let (model, found_tokenizer, source) = if let Some(preset) = presets::find(spec) {
        (preset.model(), Some(preset.tokenizer()), format!("preset {spec}"))
    } else if path.is_dir() {
        if hf_llama::is_llama_dir(path)? {
            let model = Model::Llama(hf_llama::load_dir(path)?);
            let tokenizer = match path.join(HF_TOKENIZER_FILE) {
                hf if hf.is_file() => Some(Tokenizer::from_hf_file(&hf)?),
                _ => None,
            };
            (model, tokenizer, path.display().to_string())
        } else {
            (Model::Gpt2(load_dir(path)?), Some(load_tokenizer(path)?), path.display().to_string())
        }
    } else if path.is_file() {
        let model = Llama::from_weights(LlamaWeights::read(path)?).map_err(|e| match e {
            Error::Config(reason) => Error::Config(format!("{}: {reason}", path.display())),
            other => other,
        })?;
        (Model::Llama(model), None, path.display().to_string())
    } else {
        return Err(Error::UnknownModel(spec.to_string()));
    };
    let tokenizer = match (&model, tokenizer) {
        (Model::Llama(llama), Some(file)) => llama2c_tokenizer(file, llama.config.vocab_size)?,
        (Model::Gpt2(_), Some(file)) => {
            return Err(Error::Input(format!(
                "--tokenizer {} is for Llama models (a llama2.c tokenizer.bin); {spec} is a GPT-2 model",
                file.display()
            )));
        }
        (_, None) => match found_tokenizer {
            Some(t) => t,
            None => {
                // A llama2.c checkpoint or a Llama directory without tokenizer.json: look for
                // tokenizer.bin beside it, as llama2.c's `run` looks in its working directory.
                let Model::Llama(llama) = &model else { unreachable!("GPT-2 always has a tokenizer") };
                let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
                let beside = dir.join(LLAMA2C_TOKENIZER_FILE);
                if !beside.is_file() {
                    return Err(Error::Input(format!(
                        "no tokenizer for {spec}: give --tokenizer FILE (llama2.c's tokenizer.bin, {} tokens) \
                         or put {LLAMA2C_TOKENIZER_FILE} beside the model",
                        llama.config.vocab_size
                    )));
                }
                llama2c_tokenizer(&beside, llama.config.vocab_size)?
            }
        },
    };
    Ok(LoadedModel { model, tokenizer, source })
}

fn llama2c_tokenizer(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    Ok(Tokenizer::Llama2c(Box::new(Llama2cTokenizer::read(path, vocab_size)?)))
}

/// The tokenizer of a model directory: `tokenizer.json`, else our character vocabulary, else bytes.
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let hf = dir.join(HF_TOKENIZER_FILE);
    if hf.is_file() {
        return Tokenizer::from_hf_file(&hf);
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
        return Ok(Tokenizer::chars(&parsed.chars));
    }
    Ok(Tokenizer::Bytes)
}

/// Reads `config.json` and `model.safetensors` from `dir`.
pub fn load_dir(dir: &Path) -> Result<Gpt2> {
    let config = read_config(&dir.join(CONFIG_FILE))?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read(&path)?;
    require_room_for(&path, bytes.len(), config.checked_parameter_count())?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::Safetensors { path: path.clone(), reason: e.to_string() })?;
    Gpt2::from_tensors(config, |spec| read_tensor(&st, &path, spec))
}

/// Writes `model` as a Hugging Face GPT-2 directory (created if needed); `dtype` is F32, F16 or
/// BF16. Each file is written to a temporary name and renamed, so a failure leaves no partial file.
pub fn export_dir(model: &Gpt2, tokenizer: &Tokenizer, dir: &Path, dtype: Dtype) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    write_safetensors(&dir.join(WEIGHTS_FILE), &model.tensors(), dtype)?;
    write_atomic(&dir.join(CONFIG_FILE), config_json(&model.config).as_bytes())?;
    if let Tokenizer::Chars { vocab } = tokenizer {
        let chars: String = vocab.iter().collect();
        let json = serde_json::json!({ "chars": chars }).to_string();
        write_atomic(&dir.join(CHARS_TOKENIZER_FILE), json.as_bytes())?;
    }
    Ok(())
}

/// Writes `tensors` to a safetensors file at `path` in `dtype` (F16, BF16, else F32).
pub(crate) fn write_safetensors(path: &Path, tensors: &[(TensorSpec, &[f32])], dtype: Dtype) -> Result<()> {
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
    let weights = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Safetensors { path: path.to_path_buf(), reason: e.to_string() })?;
    write_atomic(path, &weights)
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

/// The fields of Hugging Face's `GPT2Config` that we use (others are ignored).
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
    #[serde(default = "default_activation")]
    activation_function: String,
    #[serde(default)]
    n_inner: Option<usize>,
    #[serde(default = "default_tied")]
    tie_word_embeddings: bool,
}

fn default_eps() -> f32 {
    1e-5
}
fn default_activation() -> String {
    "gelu_new".into()
}
fn default_tied() -> bool {
    true
}

/// Reads and validates a Hugging Face GPT-2 `config.json`.
pub fn read_config(path: &Path) -> Result<Gpt2Config> {
    let bytes = read(path)?;
    let bad = |reason: String| Error::BadConfigJson { path: path.to_path_buf(), reason };
    let hf: HfGpt2Config = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    // GPT-2's "gelu_new" and its aliases are the tanh approximation we implement.
    if !matches!(hf.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast") {
        return Err(bad(format!(
            "activation_function `{}` is not supported; GPT-2 uses gelu_new (the tanh approximation)",
            hf.activation_function
        )));
    }
    let n_ctx = hf.n_positions.or(hf.n_ctx).ok_or_else(|| bad("missing field `n_positions`".into()))?;
    let config = Gpt2Config {
        vocab_size: hf.vocab_size,
        n_ctx,
        n_embd: hf.n_embd,
        n_head: hf.n_head,
        n_layer: hf.n_layer,
        n_inner: hf.n_inner.unwrap_or(4 * hf.n_embd),
        layer_norm_epsilon: hf.layer_norm_epsilon,
        tie_word_embeddings: hf.tie_word_embeddings,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
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
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => {
            data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        other => {
            return Err(Error::UnsupportedDtype {
                path: path.to_path_buf(),
                name: spec.name.clone(),
                found: format!("{other:?}"),
            });
        }
    };
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
