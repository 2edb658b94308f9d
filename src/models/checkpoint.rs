//! [`load`]: `--model NAME|DIR|FILE` to a model of either architecture and its tokenizer,
//! dispatching to the presets, the named trained models ([`crate::named_models`], from their
//! cache), the Hugging Face GPT-2 and Llama directories ([`super::gpt2::hf`],
//! [`super::llama::hf`]), GGUF files ([`super::llama::gguf`]) and llama2.c checkpoints
//! ([`super::llama::llama2c`]). The formats themselves live with their models.

use super::Model;
use super::gguf::MAGIC as GGUF_MAGIC;
use super::gpt2::hf as gpt2_hf;
use super::llama::Llama;
use super::llama::gguf as llama_gguf;
use super::llama::hf as llama_hf;
use super::llama::llama2c::LlamaWeights;
use super::model_dir::{
    HF_TOKENIZER_FILE, LLAMA2C_TOKENIZER_FILE, UNREAD_TOKENIZER_FILES, end_tokens, load_tokenizer,
};
use super::presets;
use crate::error::{Error, IoContext, Result};
use crate::named_models;
use crate::tokenizer::Tokenizer;
use crate::tokenizer::chat::ChatTemplate;
use crate::tokenizer::llama2c::{self, Llama2cTokenizer};
use std::path::Path;

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
    /// The ids that end a turn, where `generate` stops (unless `--no-stop`): a directory's
    /// `eos_token_id` ([`end_tokens`]), and llama2.c's `<s>` with its tokenizer or checkpoint
    /// (its `run` stops there); a GGUF file's `eos_token_id` and `eot_token_id`
    /// (`tokenizer::spec::TokenizerSpec::build`). Empty: generation runs to its length.
    pub end_tokens: Vec<u32>,
    /// The model's chat template (`generate --chat`), when it ships one.
    pub chat_template: Option<ChatTemplate>,
    /// The GGUF file the model was read from, if it was (for `info`'s tensor types).
    pub gguf: Option<std::path::PathBuf>,
}

/// Loads `--model NAME|DIR|FILE` (a preset's name, a named trained model's, a Hugging Face
/// GPT-2 or Llama directory, a GGUF file or a llama2.c checkpoint), with `--tokenizer FILE` (a
/// Hugging Face `tokenizer.json`, or a llama2.c `tokenizer.bin` for Llama models;
/// [`Tokenizer::from_file`] tells which) when given. A named model must be in the cache
/// ([`named_models::NamedModel::cached`]); a file is GGUF when it starts with `GGUF`, and its
/// tokenizer, end tokens and chat template come from its metadata.
///
/// A Llama model's tokenizer is `--tokenizer`, else a directory's `tokenizer.json`, else
/// `tokenizer.bin` beside the checkpoint or in the directory (where llama2.c's `run` looks),
/// else none: the model then runs on token ids only.
// ~100 lines: the three kinds of `--model`, then the tokenizer rules in their order of
// precedence, in one place so that the precedence reads as documented above.
pub fn load(spec: &str, tokenizer: Option<&Path>) -> Result<LoadedModel> {
    let named = match named_models::find(spec) {
        Some(named) => Some(named.cached()?),
        None => None,
    };
    let path = named.as_deref().unwrap_or(Path::new(spec));
    let mut warnings = Vec::new();
    // A GGUF file's end tokens and chat template, from its metadata.
    let mut gguf_parts: Option<(Vec<u32>, Option<ChatTemplate>)> = None;
    let (model, found_tokenizer, source) = if let Some(preset) = presets::find(spec) {
        (preset.model(), Some(preset.tokenizer()), format!("preset {spec}"))
    } else if path.is_file() && (path.extension().is_some_and(|e| e == "gguf") || is_gguf(path)?) {
        let (model, unknown, tokenizer_spec) = llama_gguf::load_file(path)?;
        warnings = unknown;
        // A tokenizer the metadata describes incompletely leaves a model that runs on ids: said.
        let parts = match tokenizer_spec.map(|t| t.build(path)).transpose() {
            Ok(parts) => parts,
            Err(e) => {
                warnings.push(format!("{e}: the model runs on token ids (--prompt-ids)"));
                None
            }
        };
        let tokenizer = parts.as_ref().map(|p| p.tokenizer.clone());
        gguf_parts = Some(parts.map_or((Vec::new(), None), |p| (p.end_tokens, p.chat_template)));
        let source = match named {
            Some(_) => format!("{spec} ({})", path.display()),
            None => path.display().to_string(),
        };
        (Model::Llama(model), tokenizer, source)
    } else if path.is_dir() {
        if llama_hf::is_llama_dir(path)? {
            let (model, unread) = llama_hf::load_dir(path)?;
            warnings = unread;
            let tokenizer = match path.join(HF_TOKENIZER_FILE) {
                hf if hf.is_file() => Some(Tokenizer::from_hf_file(&hf)?),
                _ => None,
            };
            (Model::Llama(model), tokenizer, path.display().to_string())
        } else {
            let (model, unread) = gpt2_hf::load_dir(path)?;
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
        let mut names = presets::names();
        names.extend(named_models::names());
        return Err(Error::UnknownModel { spec: spec.to_string(), presets: names });
    };
    let gguf_file = gguf_parts.is_some();
    let (mut end_ids, chat_template) = match (gguf_parts, path.is_dir()) {
        (Some(parts), _) => parts,
        (None, true) => (end_tokens(path)?, ChatTemplate::from_hf_dir(path)?),
        (None, false) => (Vec::new(), None),
    };
    let vocab_size = model.as_ref().vocab_size();
    let tokenizer = match (&model, tokenizer) {
        (model, Some(file)) => {
            let llama2c_vocab = matches!(model, Model::Llama(_)).then_some(vocab_size);
            Some(Tokenizer::from_file(file, llama2c_vocab)?)
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
    // llama2.c's `run` ends a story at `<s>`, the token that delimits sequences in its training
    // data: with its tokenizer, or on a llama2.c checkpoint run on ids (the same model, so the
    // same output with or without tokenizer.bin beside it).
    // A GGUF file names its own end tokens (a `llama` tokenizer from it is no llama2.c one).
    let llama2c_checkpoint = matches!(model, Model::Llama(_)) && path.is_file();
    if !gguf_file
        && (matches!(tokenizer, Some(Tokenizer::Llama2c(_))) || llama2c_checkpoint)
        && !end_ids.contains(&llama2c::BOS)
    {
        end_ids.push(llama2c::BOS);
    }
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
    let gguf = gguf_file.then(|| path.to_path_buf());
    Ok(LoadedModel { model, tokenizer, source, warnings, end_tokens: end_ids, chat_template, gguf })
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

/// Whether the file at `path` starts with GGUF's magic.
fn is_gguf(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).reading(path)?;
    Ok(std::io::Read::read_exact(&mut file, &mut magic).is_ok() && magic == GGUF_MAGIC)
}

fn llama2c_tokenizer(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    Ok(Tokenizer::Llama2c(Box::new(Llama2cTokenizer::read(path, vocab_size)?)))
}
