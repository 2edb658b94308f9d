//! Every key of a Hugging Face `config.json` that smallmind knows, and what it does with each:
//! read and used, known and harmless (it changes nothing this engine computes), or refused
//! unless it holds a value the engine computes the same way as transformers. A key that changes
//! the math is never dropped silently: it is implemented or refused, and a key in no table is
//! reported as unknown (a new transformers release adds keys; the user must see that the engine
//! did not read them).
//!
//! The tables here are the one declaration: the readers (`gpt2/hf.rs` for GPT-2,
//! `llama/hf.rs` for Llama) audit a file against them, and docs/model-files.md's tables are
//! rendered from them by [`markdown_table`] (a test checks that it holds exactly that text).

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// One key of a `config.json`.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    pub name: &'static str,
    pub treatment: Treatment,
    /// What the key means and what smallmind does with it, as one sentence.
    pub note: &'static str,
    /// The values the engine accepts; any other value is refused with the key's name.
    pub accepts: Accepts,
}

/// Whether the engine reads a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Read: it sets the model's shape or its forward pass.
    Used,
    /// Not read, because it changes nothing the engine computes (training, dropout, generation
    /// defaults, bookkeeping).
    Harmless,
    /// Not implemented: accepted only at the value that means "off" (see [`Accepts`]); any
    /// other value is refused by name.
    Refused,
}

/// The values of a key that the engine accepts.
#[derive(Debug, Clone, Copy)]
pub enum Accepts {
    Any,
    /// Only values for which the predicate holds, described for the user (`false or absent`).
    Only(&'static str, fn(&Value) -> bool),
}

/// `null` or `false`.
fn falsy(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
}

/// `null`, `false`, or an empty object, list or string.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

const fn used(name: &'static str, note: &'static str) -> ConfigKey {
    ConfigKey { name, treatment: Treatment::Used, note, accepts: Accepts::Any }
}

const fn harmless(name: &'static str, note: &'static str) -> ConfigKey {
    ConfigKey { name, treatment: Treatment::Harmless, note, accepts: Accepts::Any }
}

const fn refused(
    name: &'static str,
    note: &'static str,
    values: &'static str,
    accepts: fn(&Value) -> bool,
) -> ConfigKey {
    ConfigKey { name, treatment: Treatment::Refused, note, accepts: Accepts::Only(values, accepts) }
}

const fn only(
    name: &'static str,
    treatment: Treatment,
    note: &'static str,
    values: &'static str,
    accepts: fn(&Value) -> bool,
) -> ConfigKey {
    ConfigKey { name, treatment, note, accepts: Accepts::Only(values, accepts) }
}

/// Keys of transformers' `PretrainedConfig` that every model's `config.json` may carry.
pub const COMMON_KEYS: &[ConfigKey] = &[
    harmless("_name_or_path", "where the model was loaded from"),
    harmless("architectures", "the transformers class names; the head is read from the weights"),
    harmless("transformers_version", "the version that wrote the file"),
    harmless("torch_dtype", "the dtype of the stored weights; every weight is converted to f32 at load"),
    harmless("dtype", "transformers 5's name for torch_dtype"),
    harmless("bos_token_id", "the tokenizer's special ids; generation is given ids"),
    used(
        "eos_token_id",
        "the end of turn, a number or a list (with generation_config.json's): `generate` stops there unless `--no-stop`",
    ),
    harmless("pad_token_id", "the tokenizer's special ids; generation is given ids"),
    harmless("sep_token_id", "the tokenizer's special ids; generation is given ids"),
    harmless("decoder_start_token_id", "encoder-decoder generation only"),
    harmless("use_cache", "whether transformers keeps a KV cache; here that is the `kv-cache` toggle"),
    harmless("initializer_range", "the standard deviation of training's initial weights"),
    harmless("return_dict", "the shape of transformers' Python return values"),
    harmless("output_hidden_states", "the shape of transformers' Python return values"),
    harmless("output_attentions", "the shape of transformers' Python return values"),
    harmless("torchscript", "a transformers export setting"),
    harmless("use_bfloat16", "a transformers training setting"),
    harmless("tf_legacy_loss", "a TensorFlow training setting"),
    harmless("chunk_size_feed_forward", "computes the MLP in chunks, with the same result"),
    harmless("gradient_checkpointing", "a training setting"),
    harmless("id2label", "labels of a classification head"),
    harmless("label2id", "labels of a classification head"),
    harmless("num_labels", "labels of a classification head"),
    harmless("problem_type", "a classification head's loss"),
    harmless("finetuning_task", "bookkeeping"),
    harmless("tokenizer_class", "bookkeeping"),
    harmless("prefix", "a prompt prefix for pipelines"),
    harmless("task_specific_params", "pipeline defaults"),
    harmless("max_length", "a generation default (pass --max-new-tokens)"),
    harmless("min_length", "a generation default"),
    harmless("do_sample", "a generation default (pass --temperature)"),
    harmless("temperature", "a generation default (pass --temperature)"),
    harmless("top_k", "a generation default (pass --top-k)"),
    harmless("top_p", "a generation default (pass --top-p)"),
    harmless("typical_p", "a generation default"),
    harmless("repetition_penalty", "a generation default"),
    harmless("length_penalty", "a generation default"),
    harmless("no_repeat_ngram_size", "a generation default"),
    harmless("encoder_no_repeat_ngram_size", "a generation default"),
    harmless("bad_words_ids", "a generation default"),
    harmless("num_return_sequences", "a generation default"),
    harmless("num_beams", "a generation default"),
    harmless("num_beam_groups", "a generation default"),
    harmless("diversity_penalty", "a generation default"),
    harmless("early_stopping", "a generation default"),
    harmless("output_scores", "a generation default"),
    harmless("return_dict_in_generate", "a generation default"),
    harmless("forced_bos_token_id", "a generation default"),
    harmless("forced_eos_token_id", "a generation default"),
    harmless("remove_invalid_values", "a generation default"),
    harmless("exponential_decay_length_penalty", "a generation default"),
    harmless("suppress_tokens", "a generation default"),
    harmless("begin_suppress_tokens", "a generation default"),
    harmless("_attn_implementation", "which attention kernel transformers runs; all compute the same"),
    harmless("attn_implementation", "which attention kernel transformers runs; all compute the same"),
    refused("is_encoder_decoder", "an encoder-decoder model", "false or absent", falsy),
    harmless("is_decoder", "a decoder-only model is one"),
    refused(
        "add_cross_attention",
        "cross-attention blocks over an encoder's output",
        "false or absent",
        falsy,
    ),
    refused("cross_attention_hidden_size", "cross-attention's width", "null or absent", |v| v.is_null()),
    refused("tie_encoder_decoder", "encoder-decoder weight sharing", "false or absent", falsy),
    refused(
        "pruned_heads",
        "attention heads removed from some layers (different shapes per layer)",
        "empty or absent",
        empty,
    ),
    refused(
        "quantization_config",
        "quantized weights (GPTQ, AWQ, bitsandbytes...)",
        "absent: only F32, F16 and BF16 weights are read",
        |v| v.is_null(),
    ),
];

fn is_gelu_tanh(v: &Value) -> bool {
    matches!(v.as_str(), Some("gelu_new" | "gelu_pytorch_tanh" | "gelu_fast"))
}

/// GPT-2's keys (transformers' `GPT2Config`).
pub const GPT2_KEYS: &[ConfigKey] = &[
    only(
        "model_type",
        Treatment::Used,
        "the architecture",
        "`gpt2`, or `llama` (read as a Llama directory)",
        |v| v.as_str() == Some("gpt2"),
    ),
    used("vocab_size", "tokens in the vocabulary"),
    used("n_positions", "the context length (rows of `wpe`)"),
    used("n_ctx", "the context length in older files, read when `n_positions` is absent"),
    used("n_embd", "the width of the residual stream"),
    used("n_layer", "the number of blocks"),
    used("n_head", "attention heads; divides `n_embd`"),
    used("n_inner", "the MLP's hidden width (`null`: 4 × n_embd)"),
    only(
        "activation_function",
        Treatment::Used,
        "the MLP's activation",
        "`gelu_new`, `gelu_pytorch_tanh` or `gelu_fast` (the tanh approximation)",
        is_gelu_tanh,
    ),
    used("layer_norm_epsilon", "LayerNorm's epsilon (default 1e-5)"),
    used("tie_word_embeddings", "whether the LM head is `wte` (default true) or a separate `lm_head.weight`"),
    used("scale_attn_weights", "whether scores are divided by sqrt(head_dim) (default true)"),
    used(
        "scale_attn_by_inverse_layer_idx",
        "whether layer i's scores are also divided by i + 1 (default false)",
    ),
    harmless(
        "reorder_and_upcast_attn",
        "computes the scores in f32 under f16 training; smallmind computes in f32 always",
    ),
    harmless("attn_pdrop", "dropout, off at inference"),
    harmless("embd_pdrop", "dropout, off at inference"),
    harmless("resid_pdrop", "dropout, off at inference"),
    harmless("summary_type", "the sequence-summary head of GPT2DoubleHeadsModel, not the LM"),
    harmless("summary_use_proj", "the sequence-summary head of GPT2DoubleHeadsModel, not the LM"),
    harmless("summary_activation", "the sequence-summary head of GPT2DoubleHeadsModel, not the LM"),
    harmless("summary_proj_to_labels", "the sequence-summary head of GPT2DoubleHeadsModel, not the LM"),
    harmless("summary_first_dropout", "the sequence-summary head of GPT2DoubleHeadsModel, not the LM"),
    harmless("n_special", "special tokens of the original OpenAI GPT; not in GPT-2's weights"),
    harmless("predict_special_tokens", "special tokens of the original OpenAI GPT"),
];

/// Llama's keys (transformers' `LlamaConfig`, versions 4 and 5).
pub const LLAMA_KEYS: &[ConfigKey] = &[
    only("model_type", Treatment::Used, "the architecture", "`llama`", |v| v.as_str() == Some("llama")),
    used("vocab_size", "tokens in the vocabulary"),
    used("hidden_size", "the width of the residual stream (`dim`)"),
    used("intermediate_size", "SwiGLU's hidden width"),
    used("num_hidden_layers", "the number of layers"),
    used("num_attention_heads", "query heads"),
    used("num_key_value_heads", "key/value heads (grouped-query attention; `null`: num_attention_heads)"),
    used("max_position_embeddings", "the context length"),
    used("rms_norm_eps", "RMSNorm's epsilon (default 1e-6)"),
    used("tie_word_embeddings", "whether the classifier is the token embedding (default false)"),
    used("rope_theta", "RoPE's base (default 10000), when `rope_parameters` has none"),
    used(
        "rope_parameters",
        "transformers 5's RoPE settings: `rope_theta` is read, `rope_type` must be `default`",
    ),
    used(
        "rope_scaling",
        "transformers 4's RoPE scaling; when set it replaces `rope_parameters`, as in transformers; \
         `rope_type` (or `type`) must be `default`",
    ),
    used(
        "head_dim",
        "the width of one head: null, or hidden_size / num_attention_heads (others are refused)",
    ),
    only("hidden_act", Treatment::Used, "SwiGLU's activation", "`silu`", |v| v.as_str() == Some("silu")),
    refused("attention_bias", "biases on the q, k, v and o projections", "false or absent", falsy),
    refused("mlp_bias", "biases on the MLP's projections", "false or absent", falsy),
    harmless("attention_dropout", "dropout, off at inference"),
    refused(
        "partial_rotary_factor",
        "RoPE on a part of each head only (transformers 5 moves it into rope_parameters)",
        "1 or absent",
        |v| v.is_null() || v.as_f64() == Some(1.0),
    ),
    harmless("pretraining_tp", "splits the projections into slices during training; the same products"),
];

/// Checks the keys of a `config.json` object against `tables`: an error naming the first key
/// (in name order) whose value the engine does not accept, else the keys no table knows, in
/// name order, for one warning line.
///
/// # Errors
/// [`Error::BadConfigJson`] naming the key, its value and the values accepted.
pub fn audit(path: &Path, json: &Map<String, Value>, tables: &[&[ConfigKey]]) -> Result<Vec<String>> {
    let mut unknown = Vec::new();
    for (name, value) in json {
        let Some(key) = tables.iter().flat_map(|t| t.iter()).find(|k| k.name == name) else {
            unknown.push(name.clone());
            continue;
        };
        if let Accepts::Only(values, accepts) = key.accepts
            && !accepts(value)
        {
            return Err(Error::BadConfigJson {
                path: path.to_path_buf(),
                reason: format!(
                    "`{name}`: {value} is not supported ({}); smallmind accepts {values}",
                    key.note
                ),
            });
        }
    }
    Ok(unknown)
}

/// The warning line for the keys of `path` that no table knows, if any.
pub fn unknown_keys_warning(path: &Path, unknown: &[String]) -> Option<String> {
    (!unknown.is_empty()).then(|| {
        format!(
            "{}: smallmind does not know {} and did not read {}: {}",
            path.display(),
            if unknown.len() == 1 { "this key" } else { "these keys" },
            if unknown.len() == 1 { "it" } else { "them" },
            unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )
    })
}

/// `tables` as one markdown table (key, what smallmind does, values accepted), as
/// docs/model-files.md shows it.
pub fn markdown_table(tables: &[&[ConfigKey]]) -> String {
    let mut out = String::from("| key | smallmind | meaning | values accepted |\n|---|---|---|---|\n");
    for key in tables.iter().flat_map(|t| t.iter()) {
        let treatment = match key.treatment {
            Treatment::Used => "read and used",
            Treatment::Harmless => "known, changes nothing here",
            Treatment::Refused => "refused unless off",
        };
        let values = match key.accepts {
            Accepts::Any => "any",
            Accepts::Only(values, _) => values,
        };
        out.push_str(&format!("| `{}` | {treatment} | {} | {values} |\n", key.name, key.note));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn every_key_is_declared_once() {
        for table in [GPT2_KEYS, LLAMA_KEYS] {
            let mut names: Vec<&str> = COMMON_KEYS.iter().chain(table).map(|k| k.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "a key is declared twice");
        }
    }

    #[test]
    fn a_refused_value_names_the_key_and_an_unknown_key_is_reported() {
        let path = Path::new("config.json");
        let tables = [COMMON_KEYS, GPT2_KEYS];
        let err = audit(path, &object(r#"{"n_embd": 8, "add_cross_attention": true}"#), &tables).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`add_cross_attention`: true is not supported") && msg.contains("false or absent"),
            "{msg}"
        );
        let unknown = audit(path, &object(r#"{"n_embd": 8, "zeta": 1, "alpha": 2}"#), &tables).unwrap();
        assert_eq!(unknown, ["alpha", "zeta"]);
        let line = unknown_keys_warning(path, &unknown).unwrap();
        assert_eq!(
            line,
            "config.json: smallmind does not know these keys and did not read them: `alpha`, `zeta`"
        );
        assert!(
            audit(path, &object(r#"{"pruned_heads": {}, "n_inner": null}"#), &tables).unwrap().is_empty()
        );
    }
}
