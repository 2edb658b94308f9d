//! llama2.c's tokenizer: the `tokenizer.bin` format and its encoding, as `run.c` does it.
//!
//! The file: an `i32` max token length, then per token an `f32` merge score, an `i32` byte
//! length and the bytes (little-endian). Ids 0, 1, 2 are `<unk>`, `<s>`, `</s>`; ids 3..=258 are
//! the byte-fallback tokens `<0x00>`..`<0xFF>`. Encoding: a leading space token, then one token
//! per UTF-8 character (or its bytes' fallback tokens when the character is not in the
//! vocabulary), then, repeatedly, the adjacent pair whose concatenation is in the vocabulary with
//! the highest score is merged, until no pair is.
//!
//! This module owns the format and the algorithm; which model uses it is the loader's business.

use crate::error::{Error, IoContext, Result};
use std::collections::HashMap;
use std::path::Path;

/// The beginning-of-sequence token.
pub const BOS: u32 = 1;
/// The end-of-sequence token.
pub const EOS: u32 = 2;
/// The first byte-fallback token, `<0x00>`.
const BYTE_FALLBACK_START: u32 = 3;

/// A llama2.c vocabulary with merge scores, and how text is wrapped before it is merged
/// (`new` sets llama2.c's: `<s>` first, a leading space, no special tokens; a GGUF `llama`
/// tokenizer sets its own, `super::spec`).
#[derive(Debug, Clone, PartialEq)]
pub struct Llama2cTokenizer {
    /// Each token's bytes, by id.
    pub vocab: Vec<Vec<u8>>,
    /// Each token's merge score, by id.
    pub scores: Vec<f32>,
    pub max_token_length: u32,
    /// The beginning-of-sequence token: added first by [`Self::encode_text`] when `add_bos`,
    /// dropped by [`Self::decode`].
    pub bos: u32,
    /// The end-of-sequence token: added last when `add_eos`, dropped by [`Self::decode`].
    pub eos: u32,
    /// The token of a byte that has no `<0xNN>` token.
    pub unk: u32,
    pub add_bos: bool,
    pub add_eos: bool,
    /// Whether text (and text after a special token) starts with a space, as SentencePiece's
    /// `add_dummy_prefix`.
    pub add_space_prefix: bool,
    /// Tokens matched whole in text before the rest is merged (GGUF control and user-defined
    /// tokens: `<|im_start|>`), with their ids.
    pub special: Vec<(String, u32)>,
    lookup: HashMap<Vec<u8>, u32>,
    /// The id of each byte's `<0xNN>` token.
    byte_ids: Vec<u32>,
}

impl Llama2cTokenizer {
    /// A tokenizer from its tokens and scores (the first occurrence of a string wins a lookup),
    /// with llama2.c's settings.
    pub fn new(vocab: Vec<Vec<u8>>, scores: Vec<f32>) -> Llama2cTokenizer {
        assert_eq!(vocab.len(), scores.len(), "one score per token");
        let mut lookup = HashMap::with_capacity(vocab.len());
        for (id, token) in vocab.iter().enumerate() {
            lookup.entry(token.clone()).or_insert(id as u32);
        }
        let max_token_length = vocab.iter().map(Vec::len).max().unwrap_or(0) as u32;
        let unk = 0;
        // llama2.c's byte tokens are ids 3..=258; a GGUF vocabulary's may be anywhere.
        let byte_ids = (0..=255u8)
            .map(|b| {
                let fallback = u32::from(b) + BYTE_FALLBACK_START;
                let fallback = if (fallback as usize) < vocab.len() { fallback } else { unk };
                lookup.get(format!("<0x{b:02X}>").as_bytes()).copied().unwrap_or(fallback)
            })
            .collect();
        Llama2cTokenizer {
            vocab,
            scores,
            max_token_length,
            bos: BOS,
            eos: EOS,
            unk,
            add_bos: true,
            add_eos: false,
            add_space_prefix: true,
            special: Vec::new(),
            lookup,
            byte_ids,
        }
    }

    /// Reads `vocab_size` tokens from a `tokenizer.bin` at `path`.
    pub fn read(path: &Path, vocab_size: usize) -> Result<Llama2cTokenizer> {
        let bytes = std::fs::read(path).reading(path)?;
        Self::parse(&bytes, vocab_size)
            .map_err(|reason| Error::Tokenizer { path: path.to_path_buf(), reason })
    }

    /// Parses the bytes of a `tokenizer.bin` holding exactly `vocab_size` tokens (llama2.c's
    /// `run` reads that many and ignores the rest; bytes left over mean another vocabulary,
    /// so they are refused, as fewer tokens are). Every
    /// length is checked against the bytes left before it is used: the lists are sized for at
    /// most the tokens the file can hold (8 bytes each at least), the max token length must be
    /// between 0 and the file's length, and each token's length between 0 and the max.
    ///
    /// # Errors
    /// One line saying which field of which token is wrong, and where.
    pub fn parse(bytes: &[u8], vocab_size: usize) -> std::result::Result<Llama2cTokenizer, String> {
        const HEADER: usize = 4;
        const PER_TOKEN: usize = 8; // score and length, before the bytes
        if bytes.len() < HEADER {
            return Err(format!(
                "truncated tokenizer.bin: {} bytes, the max token length alone is 4",
                bytes.len()
            ));
        }
        // The file holds at most this many tokens: the lists never grow beyond it.
        let room = (bytes.len() - HEADER) / PER_TOKEN;
        // The next `n` bytes from `at`, moving `at` past them; `None` past the end.
        fn take<'b>(bytes: &'b [u8], at: &mut usize, n: usize) -> Option<&'b [u8]> {
            let slice = bytes.get(*at..at.checked_add(n)?)?;
            *at += n;
            Some(slice)
        }
        let truncated = |what: String, at: usize, n: usize| {
            format!(
                "truncated tokenizer.bin: {what} at byte {at} needs {n} bytes, the file has {}",
                bytes.len()
            )
        };
        let word = |b: &[u8]| [b[0], b[1], b[2], b[3]];
        let max_token_length = i32::from_le_bytes(word(&bytes[..HEADER]));
        let mut at = HEADER;
        if max_token_length < 0 || max_token_length as usize > bytes.len() {
            return Err(format!(
                "the max token length is {max_token_length}, outside 0..={} (the file's length)",
                bytes.len()
            ));
        }
        let capacity = vocab_size.min(room);
        let (mut vocab, mut scores) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
        for id in 0..vocab_size {
            let start = at;
            if start == bytes.len() {
                return Err(format!(
                    "tokenizer.bin holds {id} tokens and the model has {vocab_size}: a tokenizer of another vocabulary"
                ));
            }
            let score =
                take(bytes, &mut at, 4).ok_or_else(|| truncated(format!("token {id}'s score"), start, 4))?;
            let score = f32::from_le_bytes(word(score));
            if score.is_nan() {
                return Err(format!("token {id}'s merge score is NaN"));
            }
            let len = take(bytes, &mut at, 4)
                .ok_or_else(|| truncated(format!("token {id}'s length"), start + 4, 4))?;
            let len = i32::from_le_bytes(word(len));
            if len < 0 || len > max_token_length {
                return Err(format!("token {id} has length {len}, outside 0..={max_token_length}"));
            }
            let token = take(bytes, &mut at, len as usize)
                .ok_or_else(|| truncated(format!("token {id}'s bytes"), start + 8, len as usize))?;
            vocab.push(token.to_vec());
            scores.push(score);
        }
        if at != bytes.len() {
            return Err(format!(
                "tokenizer.bin holds more than the model's {vocab_size} tokens ({} bytes follow token {}): \
                 a tokenizer of another vocabulary",
                bytes.len() - at,
                vocab_size.saturating_sub(1)
            ));
        }
        Ok(Llama2cTokenizer::new(vocab, scores))
    }

    /// The bytes of a `tokenizer.bin` holding this vocabulary.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.max_token_length as i32).to_le_bytes());
        for (token, score) in self.vocab.iter().zip(&self.scores) {
            out.extend_from_slice(&score.to_le_bytes());
            out.extend_from_slice(&(token.len() as i32).to_le_bytes());
            out.extend_from_slice(token);
        }
        out
    }

    /// The ids of `text`, with `<s>` first when `bos`, as llama2.c's `encode` (special tokens
    /// are not looked for).
    pub fn encode(&self, text: &str, bos: bool) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(text.len() + 2);
        if bos {
            tokens.push(self.bos);
        }
        self.encode_piece(text, self.add_space_prefix, &mut tokens);
        tokens
    }

    /// The ids of `text` with its special tokens matched whole (the longest first, leftmost),
    /// and, when `add_special`, BOS and EOS as `add_bos` and `add_eos` say, as llama.cpp's
    /// `llama_tokenize_impl` for SentencePiece: the text after a special token starts with a
    /// space again. A text that starts with BOS itself gets no second one.
    pub fn encode_text(&self, text: &str, add_special: bool) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(text.len() + 2);
        let mut rest = text;
        while !rest.is_empty() {
            // The earliest special token in `rest`, the longest at that place.
            let next = self
                .special
                .iter()
                .filter(|(s, _)| !s.is_empty())
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, usize::MAX - len));
            let (plain, special) = match next {
                Some((at, len, id)) => (&rest[..at], Some((id, at + len))),
                None => (rest, None),
            };
            // Text always follows a special token or the start, so each piece gets the prefix.
            self.encode_piece(plain, self.add_space_prefix, &mut tokens);
            let Some((id, end)) = special else { break };
            tokens.push(id);
            rest = &rest[end..];
        }
        if add_special && self.add_bos && tokens.first() != Some(&self.bos) {
            tokens.insert(0, self.bos);
        }
        if add_special && self.add_eos {
            tokens.push(self.eos);
        }
        tokens
    }

    /// Appends the ids of `text` (no special tokens in it), after a space when `space_prefix`:
    /// one token per character (or its bytes' `<0xNN>` tokens), then the best-scoring adjacent
    /// pair merged until no pair is in the vocabulary.
    fn encode_piece(&self, text: &str, space_prefix: bool, out: &mut Vec<u32>) {
        let mut tokens = Vec::with_capacity(text.len() + 1);
        if space_prefix
            && !text.is_empty()
            && let Some(&space) = self.lookup.get(b" ".as_slice())
        {
            tokens.push(space);
        }
        let mut utf8 = [0u8; 4];
        for ch in text.chars() {
            let encoded = ch.encode_utf8(&mut utf8).as_bytes();
            match self.lookup.get(encoded) {
                Some(&id) => tokens.push(id),
                None => tokens.extend(encoded.iter().map(|&b| self.byte_ids[b as usize])),
            }
        }
        // Merge the best-scoring adjacent pair until none is in the vocabulary.
        let mut merged = Vec::with_capacity(self.max_token_length as usize * 2);
        loop {
            let mut best: Option<(f32, usize, u32)> = None;
            for i in 0..tokens.len().saturating_sub(1) {
                merged.clear();
                merged.extend_from_slice(&self.vocab[tokens[i] as usize]);
                merged.extend_from_slice(&self.vocab[tokens[i + 1] as usize]);
                if let Some(&id) = self.lookup.get(&merged)
                    && best.is_none_or(|(score, _, _)| self.scores[id as usize] > score)
                {
                    best = Some((self.scores[id as usize], i, id));
                }
            }
            let Some((_, i, id)) = best else { break };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
        out.extend(tokens);
    }

    /// The text of token `id` following token `previous`, as llama2.c's `decode`: a leading
    /// space is dropped right after BOS (`<s>`), and `<0xNN>` tokens are the raw byte NN.
    pub fn piece(&self, previous: u32, id: u32) -> Vec<u8> {
        let Some(token) = self.vocab.get(id as usize) else { return "\u{FFFD}".into() };
        let token =
            if previous == self.bos && token.first() == Some(&b' ') { &token[1..] } else { &token[..] };
        match token {
            [b'<', b'0', b'x', hi, lo, b'>'] => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(*hi), hex(*lo)) {
                    (Some(h), Some(l)) => vec![(h * 16 + l) as u8],
                    _ => token.to_vec(),
                }
            }
            _ => token.to_vec(),
        }
    }

    /// The text of `ids`, without BOS and EOS (`<s>` and `</s>`) (invalid UTF-8 becomes U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        let mut previous = u32::MAX;
        for &id in ids {
            if id != self.bos && id != self.eos {
                bytes.extend(self.piece(previous, id));
            }
            previous = id;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The llama2.c layout: `<unk>`, `<s>`, `</s>`, 256 byte tokens, then `extra` with scores.
    fn tokenizer(extra: &[(&str, f32)]) -> Llama2cTokenizer {
        let mut vocab: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
        vocab.extend((0..=255u8).map(|b| format!("<0x{b:02X}>").into_bytes()));
        let mut scores = vec![0.0; vocab.len()];
        for (token, score) in extra {
            vocab.push(token.as_bytes().to_vec());
            scores.push(*score);
        }
        Llama2cTokenizer::new(vocab, scores)
    }

    const EXTRA: &[(&str, f32)] = &[
        (" ", -1.0),   // 259
        ("a", -2.0),   // 260
        ("b", -3.0),   // 261
        ("c", -4.0),   // 262
        ("ab", -5.0),  // 263
        (" a", -0.5),  // 264
        ("bc", -6.0),  // 265
        (" ab", -7.0), // 266
        ("é", -8.0),   // 267
    ];

    #[test]
    fn encoding_by_hand() {
        let t = tokenizer(EXTRA);
        // " " + a b -> " a" (score -0.5) beats "ab" (-5) -> " a" b -> " ab" (-7).
        assert_eq!(t.encode("ab", false), [266]);
        // " " a b c -> " a" b c -> " ab" (-7) vs "bc" (-6): "bc" wins -> " a" "bc"; " abc" unknown.
        assert_eq!(t.encode("abc", false), [264, 265]);
        // With <s> first; spaces are tokens too: " " " " b -> no "  " and no " b".
        assert_eq!(t.encode(" b", true), [1, 259, 259, 261]);
        // A character in the vocabulary, and one that is not (byte fallback: ids 3 + byte).
        assert_eq!(t.encode("é", false), [259, 267]);
        assert_eq!(t.encode("ü", false), [259, 3 + 0xC3, 3 + 0xBC]);
        assert_eq!(t.encode("", true), [1]);
    }

    #[test]
    fn decoding_drops_the_space_after_bos_and_maps_byte_tokens() {
        let t = tokenizer(EXTRA);
        assert_eq!(t.decode(&[1, 266, 265]), "abbc");
        assert_eq!(t.decode(&[266, 265]), " abbc");
        assert_eq!(t.decode(&[1, 259, 3 + 0xC3, 3 + 0xBC]), "ü");
        for text in ["abc", "a b c", "é ü !"] {
            let ids = t.encode(text, true);
            assert_eq!(t.decode(&ids), text, "{ids:?}");
        }
    }

    #[test]
    fn the_file_format_round_trips_and_rejects_truncation() {
        let t = tokenizer(EXTRA);
        let bytes = t.to_bytes();
        let back = Llama2cTokenizer::parse(&bytes, t.vocab.len()).unwrap();
        assert_eq!(back, t);
        let err = Llama2cTokenizer::parse(&bytes[..bytes.len() - 1], t.vocab.len()).unwrap_err();
        assert!(err.contains("truncated tokenizer.bin") && err.contains("token 267"), "{err}");
        // A model of one token more, or one fewer: another vocabulary, refused with both counts.
        let err = Llama2cTokenizer::parse(&bytes, t.vocab.len() + 1).unwrap_err();
        assert!(err.contains("holds 268 tokens and the model has 269"), "{err}");
        let err = Llama2cTokenizer::parse(&bytes, t.vocab.len() - 1).unwrap_err();
        assert!(
            err.contains("holds more than the model's 267 tokens") && err.contains("follow token 266"),
            "{err}"
        );
    }

    #[test]
    fn lengths_from_the_file_are_checked_before_they_are_used() {
        let t = tokenizer(EXTRA);
        let bytes = t.to_bytes();
        // A model of 2^31 - 1 tokens cannot take its vocabulary from a small file.
        let err = Llama2cTokenizer::parse(&bytes, i32::MAX as usize).unwrap_err();
        // (The lists are sized for the file's 463 possible tokens, not for the model's.)
        assert!(err.contains("holds 268 tokens and the model has 2147483647"), "{err}");
        assert!(Llama2cTokenizer::parse(&bytes[..3], 1).unwrap_err().contains("3 bytes"));
        let with_max = |max: i32| {
            let mut b = bytes.clone();
            b[..4].copy_from_slice(&max.to_le_bytes());
            Llama2cTokenizer::parse(&b, t.vocab.len())
        };
        assert!(with_max(-1).unwrap_err().contains("max token length is -1"));
        assert!(with_max(i32::MAX).unwrap_err().contains("max token length is 2147483647"));
        assert!(with_max(0).unwrap_err().contains("token 0 has length 5, outside 0..=0"));
        // A token length beyond the file.
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&(bytes.len() as i32).to_le_bytes());
        b[..4].copy_from_slice(&(bytes.len() as i32).to_le_bytes());
        let err = Llama2cTokenizer::parse(&b, t.vocab.len()).unwrap_err();
        assert!(err.contains("token 0's bytes at byte 12"), "{err}");
        let mut b = bytes;
        b[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(
            Llama2cTokenizer::parse(&b, t.vocab.len()).unwrap_err().contains("token 0's merge score is NaN")
        );
    }
}
