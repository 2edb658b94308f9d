//! Llama models in GGUF files (llama.cpp's `llama` architecture): the metadata keys that give
//! the shape ([`KEYS`]: every key read, known and harmless, or refused unless off, as
//! `config_keys.rs` does for `config.json`), the tensor names, and loading into [`Llama`],
//! every tensor dequantized to f32.
//!
//! # q and k rows
//! llama.cpp's converter (`convert_hf_to_gguf.py`, `LlamaModel.permute`) stores `attn_q` and
//! `attn_k` with Hugging Face's rotate-half row order undone: within each head, row `2i` is
//! Hugging Face's row `i` and row `2i + 1` its row `i + head_dim / 2`, the order of Meta's
//! original checkpoints, which llama.cpp's "normal" RoPE rotates as adjacent pairs. That is
//! llama2.c's order and the one our RoPE kernel uses ([`crate::kernels::rope`]), so the rows
//! are read as they are; `hf.rs` is where rows are reordered
//! ([`crate::kernels::rope::rotate_half_rows_to_adjacent_pairs`] is the same permutation).

use super::Llama;
use super::config::LlamaConfig;
use super::llama2c::LlamaWeights;
use crate::error::{Error, Result};
use crate::models::config_keys::Treatment;
use crate::models::gguf::{self, GgufFile, TensorInfo, Value};
use crate::tokenizer::spec::TokenizerSpec;
use std::path::Path;

/// One metadata key of a Llama GGUF file and what smallmind does with it.
#[derive(Debug, Clone, Copy)]
pub struct GgufKey {
    /// The key, or a prefix ending in `.` that covers a family of keys.
    pub name: &'static str,
    pub treatment: Treatment,
    /// What it means and what smallmind does with it.
    pub note: &'static str,
}

const fn key(name: &'static str, treatment: Treatment, note: &'static str) -> GgufKey {
    GgufKey { name, treatment, note }
}

use Treatment::{Harmless, Refused, Used};

/// Every metadata key smallmind knows in a Llama GGUF file. A `Refused` key is accepted only at
/// the value that means "off" ([`refusal`] says which); a key in no row is named on a warning
/// line. Prefix rows (ending in `.`) come after the exact ones.
pub const KEYS: &[GgufKey] = &[
    key("general.architecture", Used, "must be `llama`"),
    key("general.alignment", Used, "alignment of the tensor data (default 32)"),
    key("llama.block_count", Used, "n_layers"),
    key("llama.context_length", Used, "seq_len: positions the KV cache holds"),
    key("llama.embedding_length", Used, "dim"),
    key("llama.feed_forward_length", Used, "hidden_dim of SwiGLU"),
    key("llama.attention.head_count", Used, "n_heads"),
    key("llama.attention.head_count_kv", Used, "n_kv_heads (default: n_heads)"),
    key("llama.rope.freq_base", Used, "RoPE base (default 10000)"),
    key("llama.attention.layer_norm_rms_epsilon", Used, "RMSNorm epsilon"),
    key("llama.vocab_size", Used, "vocab_size (default: the token list's length, else the embedding's)"),
    key(
        "llama.rope.dimension_count",
        Refused,
        "dimensions RoPE rotates: accepted when the whole head (head_size)",
    ),
    key("llama.attention.key_length", Refused, "key head size: accepted when dim / n_heads"),
    key("llama.attention.value_length", Refused, "value head size: accepted when dim / n_heads"),
    key("llama.rope.scaling.type", Refused, "RoPE scaling: accepted when `none`"),
    key("llama.rope.scaling.factor", Refused, "RoPE scaling factor: accepted when 0 or 1"),
    key("llama.rope.scaling.attn_factor", Refused, "attention scale of scaled RoPE: accepted when 1"),
    key(
        "llama.rope.scaling.original_context_length",
        Harmless,
        "used only by RoPE scaling, which is refused",
    ),
    key("llama.rope.scaling.finetuned", Harmless, "bookkeeping of RoPE scaling"),
    key("llama.expert_count", Refused, "mixture of experts: accepted when 0"),
    key("llama.expert_used_count", Refused, "mixture of experts: accepted when 0"),
    key("llama.attention.layer_norm_epsilon", Refused, "a LayerNorm epsilon: Llama normalises with RMSNorm"),
    key("llama.attention.clamp_kqv", Refused, "clamping of q, k and v: not implemented"),
    key("llama.attention.causal", Refused, "accepted when true"),
    key("llama.attention.sliding_window", Refused, "sliding-window attention: accepted when 0"),
    key("llama.logit_scale", Refused, "a scale on the logits: accepted when 1"),
    key("llama.embedding_scale", Refused, "a scale on the embeddings: accepted when 1"),
    key("llama.residual_scale", Refused, "a scale on the residuals: accepted when 1"),
    key(
        "llama.tensor_data_layout",
        Harmless,
        "how the converter laid out q and k; the `llama` rows are adjacent pairs",
    ),
    key(
        "split.count",
        Refused,
        "a model split over several files: accepted when 1 (merge with llama-gguf-split)",
    ),
    key("split.no", Harmless, "this file's place in a split model"),
    key("split.tensors.count", Harmless, "tensors of a split model"),
    key("general.", Harmless, "descriptive metadata: name, authors, license, sources, file type, tags"),
    key(
        "tokenizer.ggml.model",
        Used,
        "the tokenizer's kind: `gpt2` (byte-level BPE) or `llama` (SentencePiece)",
    ),
    key("tokenizer.ggml.pre", Used, "a `gpt2` tokenizer's pre-tokenizer (its split regexes)"),
    key("tokenizer.ggml.tokens", Used, "the vocabulary"),
    key("tokenizer.ggml.scores", Used, "a `llama` tokenizer's merge scores"),
    key("tokenizer.ggml.token_type", Used, "control and user-defined tokens are matched whole in text"),
    key("tokenizer.ggml.merges", Used, "a `gpt2` tokenizer's merges"),
    key("tokenizer.ggml.bos_token_id", Used, "the id added before a prompt (with `add_bos_token`)"),
    key("tokenizer.ggml.eos_token_id", Used, "ends a turn: `generate` stops there"),
    key("tokenizer.ggml.eot_token_id", Used, "ends a turn too: `generate` stops there"),
    key("tokenizer.ggml.unknown_token_id", Used, "a `llama` tokenizer's unknown token"),
    key("tokenizer.ggml.padding_token_id", Harmless, "nothing here pads"),
    key("tokenizer.ggml.add_bos_token", Used, "whether a prompt starts with BOS"),
    key("tokenizer.ggml.add_eos_token", Used, "whether a prompt ends with EOS"),
    key("tokenizer.ggml.add_space_prefix", Used, "whether a `llama` tokenizer prefixes a space"),
    key("tokenizer.chat_template", Used, "the chat template `generate --chat` renders"),
    key(
        "tokenizer.",
        Harmless,
        "other tokenizer metadata (a Hugging Face copy of the tokenizer, other special ids): not read",
    ),
];

/// The tokenizer a GGUF file describes (its `tokenizer.*` keys), when it has a vocabulary; built
/// by [`TokenizerSpec::build`](crate::tokenizer::spec::TokenizerSpec::build).
///
/// # Errors
/// [`Error::Gguf`] naming a key whose value has the wrong type, or an id beyond `u32`.
pub fn tokenizer_spec(file: &GgufFile) -> Result<Option<TokenizerSpec>> {
    let Some(tokens) = file.strings("tokenizer.ggml.tokens")? else { return Ok(None) };
    let id = |key: &str| -> Result<Option<u32>> {
        file.usize(key)?
            .map(|n| {
                u32::try_from(n).map_err(|_| Error::Gguf {
                    path: file.path.clone(),
                    reason: format!("metadata `{key}` is {n}, beyond any token id"),
                })
            })
            .transpose()
    };
    Ok(Some(TokenizerSpec {
        model: file.str("tokenizer.ggml.model")?.unwrap_or("llama").to_string(),
        pre: file.str("tokenizer.ggml.pre")?.map(str::to_string),
        tokens: tokens.to_vec(),
        scores: file.f32s("tokenizer.ggml.scores")?.map(<[f32]>::to_vec),
        token_type: file.i32s("tokenizer.ggml.token_type")?.map(<[i32]>::to_vec),
        merges: file.strings("tokenizer.ggml.merges")?.map(<[String]>::to_vec),
        bos_token_id: id("tokenizer.ggml.bos_token_id")?,
        eos_token_id: id("tokenizer.ggml.eos_token_id")?,
        eot_token_id: id("tokenizer.ggml.eot_token_id")?,
        unknown_token_id: id("tokenizer.ggml.unknown_token_id")?,
        padding_token_id: id("tokenizer.ggml.padding_token_id")?,
        add_bos_token: file.bool("tokenizer.ggml.add_bos_token")?,
        add_eos_token: file.bool("tokenizer.ggml.add_eos_token")?,
        add_space_prefix: file.bool("tokenizer.ggml.add_space_prefix")?,
        chat_template: file.str("tokenizer.chat_template")?.map(str::to_string),
    }))
}

/// The row of `name` in [`KEYS`]: an exact row, else the first prefix row it starts with.
pub fn find_key(name: &str) -> Option<&'static GgufKey> {
    KEYS.iter()
        .find(|k| k.name == name)
        .or_else(|| KEYS.iter().find(|k| k.name.ends_with('.') && name.starts_with(k.name)))
}

/// Why the value of a `Refused` key (or of `general.architecture`) is refused for a model of
/// `head_size`, or `None` when it holds the value that means "off".
pub fn refusal(name: &str, value: &Value, head_size: usize) -> Option<String> {
    let is = |n: f64| value.as_f64().or_else(|| value.as_u64().map(|v| v as f64)) == Some(n);
    let ok = match name {
        "general.architecture" => value.as_str() == Some("llama"),
        "llama.rope.dimension_count" | "llama.attention.key_length" | "llama.attention.value_length" => {
            value.as_u64() == Some(head_size as u64)
        }
        "llama.rope.scaling.type" => value.as_str() == Some("none"),
        "llama.rope.scaling.factor" => is(0.0) || is(1.0),
        "llama.expert_count" | "llama.expert_used_count" | "llama.attention.sliding_window" => is(0.0),
        "llama.attention.causal" => *value == Value::Bool(true),
        "llama.rope.scaling.attn_factor"
        | "llama.logit_scale"
        | "llama.embedding_scale"
        | "llama.residual_scale"
        | "split.count" => is(1.0),
        _ => false,
    };
    (!ok).then(|| {
        let note = find_key(name).map_or("", |k| k.note);
        format!("metadata `{name}` = {} is not supported ({note})", value.summary())
    })
}

/// The tensors of a Llama GGUF file of this shape: name, ggml dimensions (innermost first),
/// in the order llama.cpp's converter writes them (`output.weight` only when the classifier
/// is separate).
pub fn tensor_dims(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let (v, d, kv, h) = (c.vocab_size, c.dim, c.kv_dim(), c.hidden_dim);
    let mut out = vec![("token_embd.weight".to_string(), vec![d, v])];
    for i in 0..c.n_layers {
        let layer = [
            ("attn_norm", vec![d]),
            ("attn_q", vec![d, d]),
            ("attn_k", vec![d, kv]),
            ("attn_v", vec![d, kv]),
            ("attn_output", vec![d, d]),
            ("ffn_norm", vec![d]),
            ("ffn_gate", vec![d, h]),
            ("ffn_up", vec![d, h]),
            ("ffn_down", vec![h, d]),
        ];
        out.extend(layer.into_iter().map(|(name, dims)| (format!("blk.{i}.{name}.weight"), dims)));
    }
    out.push(("output_norm.weight".into(), vec![d]));
    if !c.shared_classifier {
        out.push(("output.weight".into(), vec![d, v]));
    }
    out
}

/// The shape a Llama GGUF file's metadata gives, checked against [`KEYS`], with a warning line
/// naming the keys smallmind does not know, if any.
///
/// # Errors
/// [`Error::Gguf`] for a missing or mistyped key, a refused key at a value other than "off"
/// (named), another architecture, or a shape [`LlamaConfig::validate`] refuses.
pub fn read_config(file: &GgufFile) -> Result<(LlamaConfig, Vec<String>)> {
    let bad = |reason: String| Error::Gguf { path: file.path.clone(), reason };
    let required = |key: &str| file.usize(key)?.ok_or_else(|| bad(format!("metadata `{key}` is missing")));
    match file.str("general.architecture")? {
        Some("llama") => {}
        Some(other) => {
            return Err(bad(format!(
                "architecture `{other}` is not supported: smallmind runs `llama` GGUF files"
            )));
        }
        None => return Err(bad("metadata `general.architecture` is missing".into())),
    }
    let (dim, n_heads) = (required("llama.embedding_length")?, required("llama.attention.head_count")?);
    let head_size = dim.checked_div(n_heads).unwrap_or(0);
    let mut unknown = Vec::new();
    for (name, value) in &file.metadata {
        match find_key(name) {
            None => unknown.push(name.clone()),
            Some(k) if k.treatment == Refused => {
                if let Some(reason) = refusal(name, value, head_size) {
                    return Err(bad(reason));
                }
            }
            Some(_) => {}
        }
    }
    let vocab_size = match file.usize("llama.vocab_size")? {
        Some(v) => v,
        None => match file.strings("tokenizer.ggml.tokens")? {
            Some(tokens) => tokens.len(),
            None => {
                file.tensor("token_embd.weight").and_then(|t| t.dims.get(1).copied()).ok_or_else(|| {
                    bad("no `llama.vocab_size`, token list or `token_embd.weight` gives the vocabulary"
                        .into())
                })?
            }
        },
    };
    let f32_key = |key: &str, default: Option<f64>| -> Result<f32> {
        let v = file.f64(key)?.or(default).ok_or_else(|| bad(format!("metadata `{key}` is missing")))?;
        Ok(v as f32)
    };
    let config = LlamaConfig {
        dim,
        hidden_dim: required("llama.feed_forward_length")?,
        n_layers: required("llama.block_count")?,
        n_heads,
        n_kv_heads: file.usize("llama.attention.head_count_kv")?.unwrap_or(n_heads),
        vocab_size,
        seq_len: required("llama.context_length")?,
        shared_classifier: file.tensor("output.weight").is_none(),
        norm_eps: f32_key("llama.attention.layer_norm_rms_epsilon", None)?,
        rope_theta: f32_key("llama.rope.freq_base", Some(10000.0))?,
    };
    config.validate().map_err(|e| bad(e.to_string()))?;
    let warning = (!unknown.is_empty()).then(|| {
        format!(
            "{}: smallmind does not know {} and did not read {}: {}",
            file.path.display(),
            if unknown.len() == 1 { "this metadata key" } else { "these metadata keys" },
            if unknown.len() == 1 { "it" } else { "them" },
            unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )
    });
    Ok((config, warning.into_iter().collect()))
}

/// Loads a Llama GGUF file: the shape from its metadata ([`read_config`]), then every tensor
/// checked (present, of the shape the metadata implies, of a type smallmind reads, no tensor
/// left over) before any is dequantized to f32.
///
/// Returns the warning lines for metadata keys smallmind does not know.
///
/// # Errors
/// [`Error::Io`] or [`Error::Gguf`] for an unreadable file or header (see [`GgufFile::open`]);
/// [`Error::Gguf`] from [`read_config`]; [`Error::GgufTensor`] for a missing tensor, a shape
/// other than expected, an unsupported type (named) or a tensor smallmind would not read (a
/// bias, RoPE frequency factors: they would change the forward pass);
/// [`Error::NonFiniteWeight`] for a NaN or infinite weight.
pub fn load_file(path: &Path) -> Result<(Llama, Vec<String>, Option<TokenizerSpec>)> {
    let file = GgufFile::open(path)?;
    let (c, warnings) = read_config(&file)?;
    let tokenizer = tokenizer_spec(&file)?;
    // Before the tensor list of the metadata's shape is built: a crafted count must not make
    // that list (or anything else) large.
    let held = file.tensors.iter().try_fold(0usize, |n, t| n.checked_add(t.n_elements));
    let needed = c.checked_parameter_count();
    if needed.is_none() || held.is_none() || needed > held {
        return Err(Error::Gguf {
            path: path.to_path_buf(),
            reason: format!(
                "the metadata's shape has {} parameters and the file's tensors hold {}: the metadata does not \
                 describe these tensors",
                needed.map_or("more than 2^64".into(), |n| n.to_string()),
                held.map_or("more than 2^64".into(), |n| n.to_string())
            ),
        });
    }
    let expected = tensor_dims(&c);
    let tensor_error = |name: &str, reason: String| Error::GgufTensor {
        path: path.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    let mut infos: Vec<&TensorInfo> = Vec::with_capacity(expected.len());
    for (name, dims) in &expected {
        let info = file.tensor(name).ok_or_else(|| tensor_error(name, "missing".into()))?;
        if info.dims != *dims {
            return Err(tensor_error(
                name,
                format!(
                    "has dimensions {:?}, the metadata's shape needs {dims:?} (innermost first)",
                    info.dims
                ),
            ));
        }
        gguf::require_supported(path, info)?;
        infos.push(info);
    }
    if let Some(extra) = file.tensors.iter().find(|t| !expected.iter().any(|(name, _)| *name == t.name)) {
        return Err(tensor_error(
            &extra.name,
            "is not a tensor of the Llama that smallmind runs (it would change the forward pass: a bias, RoPE \
             frequency factors, another architecture's weight), so the model is refused"
                .into(),
        ));
    }
    let mut tensors = infos.into_iter().map(|info| file.read_f32(info));
    let mut next = || tensors.next().expect("a tensor per name");
    // Stored as llama.cpp's converter left them: q and k rows already adjacent pairs.
    let w = LlamaWeights::gather(&c, &mut next, &|rows, _| rows)?;
    Ok((Llama::from_weights(w)?, warnings, tokenizer))
}

/// `model` as a GGUF file of llama.cpp's `llama` architecture: the shape's metadata keys, the
/// 1-D norms in F32 and every matrix in `ty` (F32 or F16), q and k rows as they are (adjacent
/// pairs, llama.cpp's order: see the module's documentation). No tokenizer is written.
///
/// # Errors
/// [`Error::Input`] for a `ty` other than F32 and F16, or naming the first tensor, index and
/// value that F16 cannot hold (its largest finite value is 65504), before anything is written.
pub fn to_gguf_bytes(model: &Llama, ty: gguf::GgmlType) -> Result<Vec<u8>> {
    use gguf::GgmlType;
    use gguf::write::{GgufWriter, encode_f16, encode_f32};
    let c = &model.config;
    let file_type = match ty {
        GgmlType::F32 => 0u32,
        GgmlType::F16 => 1,
        other => return Err(Error::Input(format!("GGUF export writes F32 or F16, not {other}"))),
    };
    let mut w = GgufWriter::new();
    let u32_of = |n: usize| Value::U32(u32::try_from(n).unwrap_or(u32::MAX));
    w.metadata("general.architecture", Value::String("llama".into()))
        .metadata("general.name", Value::String("smallmind export".into()))
        .metadata("general.file_type", Value::U32(file_type))
        .metadata("llama.block_count", u32_of(c.n_layers))
        .metadata("llama.context_length", u32_of(c.seq_len))
        .metadata("llama.embedding_length", u32_of(c.dim))
        .metadata("llama.feed_forward_length", u32_of(c.hidden_dim))
        .metadata("llama.attention.head_count", u32_of(c.n_heads))
        .metadata("llama.attention.head_count_kv", u32_of(c.n_kv_heads))
        .metadata("llama.rope.freq_base", Value::F32(c.rope_theta))
        .metadata("llama.rope.dimension_count", u32_of(c.head_size()))
        .metadata("llama.attention.layer_norm_rms_epsilon", Value::F32(c.norm_eps))
        .metadata("llama.vocab_size", u32_of(c.vocab_size));
    let layers = model.layers.iter().flat_map(|l| {
        [
            &l.rms_att.weight[..],
            &l.attn.wq.weight[..],
            &l.attn.wk.weight[..],
            &l.attn.wv.weight[..],
            &l.attn.wo.weight[..],
            &l.rms_ffn.weight[..],
            &l.ffn.w1.weight[..],
            &l.ffn.w3.weight[..],
            &l.ffn.w2.weight[..],
        ]
    });
    let data = std::iter::once(&model.token_embedding[..])
        .chain(layers)
        .chain([&model.rms_final.weight[..]])
        .chain(model.classifier.as_deref());
    for ((name, dims), values) in tensor_dims(c).into_iter().zip(data) {
        let (tensor_ty, bytes) = match ty {
            GgmlType::F16 if dims.len() > 1 => (
                GgmlType::F16,
                encode_f16(values).map_err(|i| {
                    Error::Input(format!(
                        "tensor `{name}` holds {} at index {i}, beyond F16's largest value 65504: export as F32",
                        values[i]
                    ))
                })?,
            ),
            _ => (GgmlType::F32, encode_f32(values)),
        };
        w.tensor(&name, &dims, tensor_ty, bytes);
    }
    Ok(w.to_bytes())
}
