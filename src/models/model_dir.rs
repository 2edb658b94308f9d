//! A Hugging Face model directory's files, shared by both families: their names, the tokenizer
//! files read and written beside the weights, and writing a whole directory safely. The weights
//! format is [`super::safetensors_io`]; each family's `config.json` is its own `hf.rs`.

use super::safetensors_io::{WEIGHTS_FILE, read, write_atomic};
use crate::error::{Error, IoContext, Result};
use crate::tokenizer::Tokenizer;
use std::path::Path;

/// The config file in a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// Generation defaults beside `config.json`; smallmind reads its `eos_token_id`.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";
/// A Hugging Face tokenizer, used when present.
pub const HF_TOKENIZER_FILE: &str = "tokenizer.json";
/// Our character vocabulary (`{"chars": "..."}`), written by `export` for character presets.
pub const CHARS_TOKENIZER_FILE: &str = "smallmind_chars.json";

/// llama2.c's tokenizer file, looked for beside a `.bin` checkpoint or in a Llama directory.
pub const LLAMA2C_TOKENIZER_FILE: &str = "tokenizer.bin";

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

/// The ids that end a turn in the model directory `dir`: `eos_token_id` (a number or a list)
/// of `config.json`, then of `generation_config.json` (transformers' `generate` takes the
/// latter's, which often lists more: Llama 3's `<|eot_id|>`), each id once; empty when neither
/// file has one.
///
/// # Errors
/// [`Error::BadConfigJson`] for a file that is not a JSON object, or an `eos_token_id` that is
/// neither an id nor a list of ids.
pub fn end_tokens(dir: &Path) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for file in [CONFIG_FILE, GENERATION_CONFIG_FILE] {
        let path = dir.join(file);
        if !path.is_file() {
            continue;
        }
        let bad = |reason: String| Error::BadConfigJson { path: path.clone(), reason };
        let config: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&read(&path)?).map_err(|e| bad(format!("not a JSON object: {e}")))?;
        let listed = match config.get("eos_token_id") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(list)) => list.iter().collect(),
            Some(one) => vec![one],
        };
        for value in listed {
            let id = value.as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| {
                bad(format!("`eos_token_id` holds {value}, not a token id (a number, or a list of numbers)"))
            })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
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
    std::fs::create_dir_all(dir).writing(dir)?;
    for (name, bytes) in files {
        write_atomic(&dir.join(name), &bytes)?;
    }
    Ok(())
}
