//! Text <-> token ids: bytes, characters over a fixed vocabulary, a Hugging Face `tokenizer.json`,
//! or llama2.c's `tokenizer.bin` ([`llama2c`], for the Llama family); a GGUF file's tokenizer
//! ([`spec`], which builds one of the last two) and chat templates ([`chat`]).
//!
//! Encoding adds what the tokenizer says a sequence starts or ends with (a `tokenizer.json`'s
//! post-processor, a GGUF file's `add_bos_token`), once: a text that already starts with it
//! (a chat template that writes `{{ bos_token }}`) gets no second one.

pub mod chat;
pub mod llama2c;
pub mod spec;

use crate::error::{Error, IoContext, Result};
use std::path::Path;

/// SmallMind's benchmark vocabulary: 50 characters (its tokenizer skips every other character).
pub const SMALLMIND_VOCAB: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX";

/// A tokenizer.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// One token per byte of UTF-8 (ids 0..256); ids of 256 and more decode to U+FFFD.
    Bytes,
    /// One token per character of `vocab`; characters outside it are skipped, as SmallMind did.
    Chars { vocab: Vec<char> },
    /// A Hugging Face `tokenizer.json`.
    HuggingFace(Box<tokenizers::Tokenizer>),
    /// llama2.c's `tokenizer.bin`: prompts start with `<s>`, as `run.c` encodes them.
    Llama2c(Box<llama2c::Llama2cTokenizer>),
}

impl Tokenizer {
    /// A character tokenizer over the characters of `vocab`, in order.
    pub fn chars(vocab: &str) -> Self {
        Tokenizer::Chars { vocab: vocab.chars().collect() }
    }

    /// Loads a Hugging Face `tokenizer.json`.
    ///
    /// The file is parsed as JSON first and handed to the `tokenizers` crate as a parsed value
    /// ([`Self::from_hf_json`]).
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Tokenizer`] with one line saying what is wrong.
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).reading(path)?;
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            reason: one_line(&format!("not valid JSON: {e}")),
        })?;
        Self::from_hf_json(json, path)
    }

    /// A Hugging Face tokenizer from the parsed JSON of a `tokenizer.json` (`path` names it in
    /// errors). The `tokenizers` crate's own reader panics on some malformed files (`tokenizers`
    /// 0.22 `decoders/mod.rs` calls `expect("Helper")` on a truncated decoder), which it cannot
    /// do on valid JSON; a panic from it all the same becomes an error here, never a crash.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] with one line saying what is wrong.
    pub fn from_hf_json(json: serde_json::Value, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Tokenizer { path: path.to_path_buf(), reason: one_line(&reason) };
        let parsed = std::panic::catch_unwind(|| serde_json::from_value::<tokenizers::Tokenizer>(json));
        match parsed {
            Ok(Ok(t)) => Ok(Tokenizer::HuggingFace(Box::new(t))),
            Ok(Err(e)) => Err(bad(e.to_string())),
            Err(_) => Err(bad("the tokenizers crate panicked reading this file: it is malformed".into())),
        }
    }

    /// Loads the tokenizer file given with `--tokenizer`, of either kind, told by its content
    /// first and its extension second: a Hugging Face `tokenizer.json` (JSON: it starts with
    /// `{`, or is named `.json`), or a llama2.c `tokenizer.bin` of `vocab_size` tokens (binary:
    /// it starts with its max token length, a little-endian `i32` whose high byte is 0), which
    /// only a Llama model takes: `llama2c_vocab` is its vocabulary size, `None` for GPT-2.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Tokenizer`] for a file of neither kind or a malformed one,
    /// [`Error::Input`] for a `tokenizer.bin` given to GPT-2.
    pub fn from_file(path: &Path, llama2c_vocab: Option<usize>) -> Result<Self> {
        let bytes = std::fs::read(path).reading(path)?;
        let is_json_named = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') || is_json_named {
            return Self::from_hf_file(path);
        }
        let max_token_length = bytes.get(..4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if max_token_length.is_some_and(|len| (0..1 << 24).contains(&len)) {
            let Some(vocab_size) = llama2c_vocab else {
                return Err(Error::Input(format!(
                    "--tokenizer {} is a llama2.c tokenizer.bin, for Llama models; this model is GPT-2",
                    path.display()
                )));
            };
            let t = llama2c::Llama2cTokenizer::parse(&bytes, vocab_size)
                .map_err(|reason| Error::Tokenizer { path: path.to_path_buf(), reason })?;
            return Ok(Tokenizer::Llama2c(Box::new(t)));
        }
        Err(Error::Tokenizer {
            path: path.to_path_buf(),
            reason:
                "neither a Hugging Face tokenizer.json (JSON) nor a llama2.c tokenizer.bin (binary, starting \
                     with its max token length)"
                    .into(),
        })
    }

    /// A short name for reports: `bytes`, `chars(50)`, `tokenizer.json` or llama2.c's.
    pub fn kind(&self) -> String {
        match self {
            Tokenizer::Bytes => "bytes".into(),
            Tokenizer::Chars { vocab } => format!("chars({})", vocab.len()),
            Tokenizer::HuggingFace(_) => "tokenizer.json".into(),
            Tokenizer::Llama2c(t) => format!("llama2.c tokenizer.bin ({} tokens)", t.vocab.len()),
        }
    }

    /// The token ids of `text`, special tokens in it matched whole, with what the tokenizer adds
    /// to a sequence (BOS, EOS) unless `text` already starts with it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Tokenizer::Chars { vocab } => Ok(text
                .chars()
                .filter_map(|ch| vocab.iter().position(|&v| v == ch).map(|i| i as u32))
                .collect()),
            Tokenizer::HuggingFace(t) => {
                let failed = |e| Error::Input(format!("tokenizer could not encode the prompt: {e}"));
                let plain = t.encode(text, false).map_err(failed)?;
                let ids = plain.get_ids().to_vec();
                // The post-processor adds BOS (Llama's `TemplateProcessing` `"<s> $A"`) and EOS.
                let full = t.post_process(plain, None, true).map_err(failed)?;
                Ok(without_repeated_prefix(full.get_ids(), &ids).to_vec())
            }
            Tokenizer::Llama2c(t) => Ok(t.encode_text(text, true)),
        }
    }

    /// The text of `ids` (lossy: invalid UTF-8 and unknown ids become U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Bytes => {
                // Runs of byte ids decode together (multi-byte characters); an id above 255
                // ends the run and stands for U+FFFD.
                let mut text = String::new();
                for run in ids.split(|&id| id > 255) {
                    let bytes: Vec<u8> = run.iter().map(|&id| id as u8).collect();
                    text.push_str(&String::from_utf8_lossy(&bytes));
                    text.push(char::REPLACEMENT_CHARACTER);
                }
                text.pop(); // `split` yields one run more than there are separators.
                text
            }
            Tokenizer::Chars { vocab } => ids
                .iter()
                .map(|&id| vocab.get(id as usize).copied().unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
            Tokenizer::HuggingFace(t) => {
                // Ids the tokenizer does not have would vanish from its text: each shows as U+FFFD.
                let mut text = String::new();
                for (i, run) in ids.split(|&id| t.id_to_token(id).is_none()).enumerate() {
                    if i > 0 {
                        text.push(char::REPLACEMENT_CHARACTER);
                    }
                    match t.decode(run, false) {
                        Ok(piece) => text.push_str(&piece),
                        Err(_) => text.extend(run.iter().map(|_| char::REPLACEMENT_CHARACTER)),
                    }
                }
                text
            }
            Tokenizer::Llama2c(t) => t.decode(ids),
        }
    }
}

/// `full` (`plain` with what a post-processor added around it) without the added prefix when
/// `plain` already starts with it: one BOS, never two.
fn without_repeated_prefix<'a>(full: &'a [u32], plain: &[u32]) -> &'a [u32] {
    let at = (0..=full.len().saturating_sub(plain.len())).find(|&k| full[k..].starts_with(plain));
    match at {
        Some(k) if k > 0 && plain.starts_with(&full[..k]) => &full[k..],
        _ => full,
    }
}

/// `text` on one line: line breaks (which an error from another crate may hold) become spaces.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Turns a growing list of ids into text pieces for streaming, holding back a trailing partial
/// UTF-8 sequence until it completes.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    printed: usize,
}

impl StreamDecoder {
    /// Adds `id` and returns the text that became final.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids);
        let end = text.trim_end_matches(char::REPLACEMENT_CHARACTER).len();
        let piece = text.get(self.printed..end).unwrap_or_default().to_string();
        self.printed = self.printed.max(end);
        piece
    }

    /// The rest of the text, at the end of generation.
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> String {
        let text = tokenizer.decode(&self.ids);
        let piece = text.get(self.printed..).unwrap_or_default().to_string();
        self.printed = text.len();
        piece
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_skip_unknown_characters_as_smallmind_did() {
        let t = Tokenizer::chars(SMALLMIND_VOCAB);
        let ids = t.encode("The quick b.").unwrap();
        assert_eq!(t.decode(&ids), "Thequickb");
        assert_eq!(ids[0], 45); // 'T' is 26 + 19
    }

    #[test]
    fn bytes_round_trip_and_stream_whole_characters() {
        let t = Tokenizer::Bytes;
        let ids = t.encode("héllo").unwrap();
        assert_eq!(ids.len(), 6);
        assert_eq!(t.decode(&ids), "héllo");
        let mut stream = StreamDecoder::default();
        let pieces: Vec<String> = ids.iter().map(|&id| stream.push(&t, id)).collect();
        assert_eq!(pieces, ["h", "", "é", "l", "l", "o"]);
        assert_eq!(t.decode(&[104, 300]), "h\u{FFFD}");
        assert_eq!(t.decode(&[300, 0xC3, 0xA9, 301]), "\u{FFFD}é\u{FFFD}");
    }
}
