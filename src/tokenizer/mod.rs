//! Text <-> token ids: bytes, characters over a fixed vocabulary, a Hugging Face `tokenizer.json`,
//! or llama2.c's `tokenizer.bin` ([`llama2c`], for the Llama family).

pub mod llama2c;

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
    /// The file is parsed as JSON first and handed to the `tokenizers` crate as a parsed value:
    /// its own reader panics on some malformed files (`tokenizers` 0.22 `decoders/mod.rs`
    /// calls `expect("Helper")` on a truncated decoder), which it cannot do on valid JSON; a
    /// panic from it all the same becomes an error here, never a crash.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Tokenizer`] with one line saying what is wrong.
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Tokenizer { path: path.to_path_buf(), reason: one_line(&reason) };
        let bytes = std::fs::read(path).reading(path)?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let parsed = std::panic::catch_unwind(|| serde_json::from_value::<tokenizers::Tokenizer>(json));
        match parsed {
            Ok(Ok(t)) => Ok(Tokenizer::HuggingFace(Box::new(t))),
            Ok(Err(e)) => Err(bad(e.to_string())),
            Err(_) => Err(bad("the tokenizers crate panicked reading this file: it is malformed".into())),
        }
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

    /// The token ids of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Tokenizer::Chars { vocab } => Ok(text
                .chars()
                .filter_map(|ch| vocab.iter().position(|&v| v == ch).map(|i| i as u32))
                .collect()),
            Tokenizer::HuggingFace(t) => t
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| Error::Input(format!("tokenizer could not encode the prompt: {e}"))),
            Tokenizer::Llama2c(t) => Ok(t.encode(text, true)),
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
