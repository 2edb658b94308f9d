//! A tokenizer as GGUF metadata describes it ([`TokenizerSpec`], the `tokenizer.*` keys) and
//! [`TokenizerSpec::build`], the one function that turns it into ours: the tokenizer, the ids
//! that end a turn and the chat template. Reading the keys from a file is the GGUF reader's
//! business, not this module's.
//!
//! Two kinds (`tokenizer.ggml.model`):
//! - `gpt2`: byte-level BPE. The vocabulary and merges go to a `tokenizers::Tokenizer`, built
//!   as a `tokenizer.json` would declare it: the pre-tokenizer regexes that
//!   `tokenizer.ggml.pre` names (llama.cpp's table, [`PRE_TOKENIZERS`]) as `Split` steps, then
//!   `ByteLevel` without its own regex; control and user-defined tokens (token types 3 and 4)
//!   as added tokens, matched whole in text; `add_bos_token` / `add_eos_token` as a
//!   `TemplateProcessing` post-processor.
//! - `llama`: SentencePiece with scores and byte fallback, run by llama2.c's algorithm
//!   ([`super::llama2c`]): `▁` becomes a space, `<0xNN>` tokens are the bytes.
//!
//! Sources: the GGUF spec (ggml `docs/gguf.md`, "Tokenizer"); llama.cpp `src/llama-vocab.cpp`
//! (`llama_vocab::impl::load` for the defaults per kind and pre name, `llm_tokenizer_bpe` for
//! the regexes, `llm_tokenizer_spm_session` for SentencePiece).

use super::Tokenizer;
use super::chat::ChatTemplate;
use super::llama2c::Llama2cTokenizer;
use crate::error::{Error, Result};
use serde_json::{Value, json};
use std::path::Path;

/// The `tokenizer.*` keys of a GGUF file, as read (names from the GGUF spec).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenizerSpec {
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE) or `llama` (SentencePiece); others are refused.
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer of a `gpt2` tokenizer (`gpt-2`, `smollm`, `llama-bpe`, ...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: each token's text, by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores`: each token's SentencePiece score (needed by `llama`).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_type: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`: `"first second"` pairs by rank (needed by `gpt2`).
    pub merges: Option<Vec<String>>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`: ends a turn.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`: ends a turn too (Llama 3's `<|eot_id|>`).
    pub eot_token_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unknown_token_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id` (read, unused: nothing here pads).
    pub padding_token_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`; absent: true for `llama` and `llama-bpe`, else false (llama.cpp).
    pub add_bos_token: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`; absent: false.
    pub add_eos_token: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`; absent: true for `llama`. A `gpt2` tokenizer never adds one.
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.chat_template`: the Jinja template of a conversation.
    pub chat_template: Option<String>,
}

/// What [`TokenizerSpec::build`] makes: everything a loaded model takes from its tokenizer.
#[derive(Debug, Clone)]
pub struct TokenizerParts {
    pub tokenizer: Tokenizer,
    /// The ids that end a turn: `eos_token_id` and `eot_token_id`, when present.
    pub end_tokens: Vec<u32>,
    /// The chat template, with the BOS and EOS tokens' text.
    pub chat_template: Option<ChatTemplate>,
}

/// A `gpt2` pre-tokenizer: the names `tokenizer.ggml.pre` gives it and llama.cpp's regexes,
/// applied in order, each splitting the pieces the previous left (`Isolated`: matches and the
/// text between them both become pieces).
#[derive(Debug, Clone, Copy)]
pub struct PreTokenizer {
    pub names: &'static [&'static str],
    pub regexes: &'static [&'static str],
    /// A whole piece that is in the vocabulary is one token, whatever the merges say (Llama 3's
    /// `ignore_merges`).
    pub ignore_merges: bool,
    /// Whether a BOS is added when `add_bos_token` is absent.
    pub add_bos_default: bool,
}

/// GPT-2's regex (`tokenizers`' `ByteLevel` regex, which llama.cpp's omits the last `\s+` of).
const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The pre-tokenizers smallmind knows, from llama.cpp `src/llama-vocab.cpp` (`llm_tokenizer_bpe`,
/// and `load` for the names). Llama 3's regex is the one of its `tokenizer.json`; llama.cpp
/// spells its case-insensitive group out as `'[sS]|...`, which matches the same.
pub const PRE_TOKENIZERS: &[PreTokenizer] = &[
    PreTokenizer {
        names: &["gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "roberta-bpe"],
        regexes: &[GPT2_REGEX],
        ignore_merges: false,
        add_bos_default: false,
    },
    PreTokenizer {
        // Digits one by one, then GPT-2's regex (SmolLM's `Digits(individual_digits)` + `ByteLevel`).
        names: &["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"],
        regexes: &[r"\p{N}", GPT2_REGEX],
        ignore_merges: false,
        add_bos_default: false,
    },
    PreTokenizer {
        names: &["llama-bpe", "llama3", "llama-v3", "falcon3", "dbrx", "smaug-bpe"],
        regexes: &[
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ],
        ignore_merges: true,
        add_bos_default: true,
    },
];

/// Token types of `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

impl TokenizerSpec {
    /// **The seam for GGUF.** Our tokenizer, the end-of-turn ids and the chat template from
    /// the `tokenizer.*` keys of the file at `path` (named in errors).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] naming the key that is missing, malformed or not supported (an
    /// unknown `tokenizer.ggml.model` or `tokenizer.ggml.pre`, by name).
    pub fn build(&self, path: &Path) -> Result<TokenizerParts> {
        let bad = |reason: String| Error::Tokenizer { path: path.to_path_buf(), reason };
        let n = self.tokens.len();
        if n == 0 {
            return Err(bad("tokenizer.ggml.tokens is empty".into()));
        }
        for (key, len) in [
            ("tokenizer.ggml.scores", self.scores.as_ref().map(Vec::len)),
            ("tokenizer.ggml.token_type", self.token_type.as_ref().map(Vec::len)),
        ] {
            if let Some(len) = len.filter(|&len| len != n) {
                return Err(bad(format!("{key} has {len} entries and tokenizer.ggml.tokens {n}")));
            }
        }
        let ids = [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
            ("eot_token_id", self.eot_token_id),
            ("unknown_token_id", self.unknown_token_id),
        ];
        if let Some((key, id)) =
            ids.iter().find_map(|&(k, id)| id.filter(|&id| id as usize >= n).map(|id| (k, id)))
        {
            return Err(bad(format!("tokenizer.ggml.{key} is {id}, outside the {n} tokens")));
        }
        let tokenizer = match self.model.as_str() {
            "gpt2" => Tokenizer::from_hf_json(self.bpe_json().map_err(bad)?, path)?,
            "llama" => Tokenizer::Llama2c(Box::new(self.sentencepiece().map_err(bad)?)),
            other => {
                return Err(bad(format!(
                    "tokenizer.ggml.model `{other}` is not supported (smallmind reads `gpt2` and `llama`)"
                )));
            }
        };
        let mut end_tokens: Vec<u32> = Vec::new();
        for id in [self.eos_token_id, self.eot_token_id].into_iter().flatten() {
            if !end_tokens.contains(&id) {
                end_tokens.push(id);
            }
        }
        let text = |id: Option<u32>| id.map(|id| self.tokens[id as usize].clone()).unwrap_or_default();
        let chat_template = self.chat_template.as_ref().map(|source| ChatTemplate {
            source: source.clone(),
            bos_token: text(self.bos_token_id),
            eos_token: text(self.eos_token_id),
            origin: path.to_path_buf(),
        });
        Ok(TokenizerParts { tokenizer, end_tokens, chat_template })
    }

    /// The ids of the tokens matched whole in text (control and user-defined), with whether
    /// each is special (control).
    fn added_tokens(&self) -> Vec<(u32, bool)> {
        let Some(types) = &self.token_type else { return Vec::new() };
        let types = types.iter().enumerate();
        types
            .filter(|&(_, &t)| t == CONTROL || t == USER_DEFINED)
            .map(|(id, &t)| (id as u32, t == CONTROL))
            .collect()
    }

    /// The `tokenizer.json` of a `gpt2` tokenizer (the format `tokenizers` reads, so that the
    /// same code as for a Hugging Face directory runs it).
    fn bpe_json(&self) -> std::result::Result<Value, String> {
        let pre_name = self.pre.as_deref().ok_or(
            "tokenizer.ggml.pre is missing: a gpt2 tokenizer needs its pre-tokenizer named \
             (llama.cpp guesses `default` and warns that quality degrades; smallmind refuses)",
        )?;
        let known =
            || PRE_TOKENIZERS.iter().flat_map(|p| p.names.iter().copied()).collect::<Vec<_>>().join(", ");
        let pre = PRE_TOKENIZERS.iter().find(|p| p.names.contains(&pre_name)).ok_or_else(|| {
            format!("tokenizer.ggml.pre `{pre_name}` is not supported (known: {})", known())
        })?;
        let merges =
            self.merges.as_ref().ok_or("tokenizer.ggml.merges is missing: a gpt2 tokenizer needs them")?;
        // llama.cpp splits a merge at its first space after the first byte (a piece may be a space).
        let merges = merges
            .iter()
            .enumerate()
            .map(|(rank, m)| match m.bytes().skip(1).position(|b| b == b' ') {
                Some(at) => Ok(json!([&m[..at + 1], &m[at + 2..]])),
                None => {
                    Err(format!("tokenizer.ggml.merges[{rank}] `{m}` is not two pieces separated by a space"))
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // Duplicate texts: the last id wins, as in llama.cpp's `token_to_id`.
        let vocab: serde_json::Map<String, Value> =
            self.tokens.iter().enumerate().map(|(id, t)| (t.clone(), json!(id))).collect();
        let added: Vec<Value> = self
            .added_tokens()
            .into_iter()
            .map(|(id, special)| {
                json!({"id": id, "content": self.tokens[id as usize], "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": special})
            })
            .collect();
        let mut steps: Vec<Value> = pre
            .regexes
            .iter()
            .map(|r| json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false}))
            .collect();
        steps.push(
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}),
        );
        let add_bos = self.add_bos_token.unwrap_or(pre.add_bos_default);
        let post_processor = self.template_processing(add_bos)?;
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": steps},
            "post_processor": post_processor,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": pre.ignore_merges, "vocab": vocab, "merges": merges,
            },
        }))
    }

    /// The post-processor adding BOS and EOS (`null` when neither is added), as a
    /// `tokenizer.json` holds Llama's: `TemplateProcessing` with `"<s> $A"`.
    fn template_processing(&self, add_bos: bool) -> std::result::Result<Value, String> {
        let mut single = Vec::new();
        let mut special = serde_json::Map::new();
        let mut add = |key: &str, id: Option<u32>, single: &mut Vec<Value>| {
            let id = id.ok_or_else(|| {
                format!("tokenizer.ggml.add_{key}_token is true and {key}_token_id is missing")
            })?;
            let text = &self.tokens[id as usize];
            single.push(json!({"SpecialToken": {"id": text, "type_id": 0}}));
            special.insert(text.clone(), json!({"id": text, "ids": [id], "tokens": [text]}));
            Ok::<_, String>(())
        };
        if add_bos {
            add("bos", self.bos_token_id, &mut single)?;
        }
        single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
        if self.add_eos_token.unwrap_or(false) {
            add("eos", self.eos_token_id, &mut single)?;
        }
        if single.len() == 1 {
            return Ok(Value::Null);
        }
        let mut pair = single.clone();
        pair.extend(single.iter().map(|p| match p.get("Sequence") {
            Some(_) => json!({"Sequence": {"id": "B", "type_id": 1}}),
            None => p.clone(),
        }));
        Ok(json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special}))
    }

    /// A `llama` tokenizer: SentencePiece's `▁` is a space in llama2.c's vocabulary.
    fn sentencepiece(&self) -> std::result::Result<Llama2cTokenizer, String> {
        let scores =
            self.scores.clone().ok_or("tokenizer.ggml.scores is missing: a llama tokenizer needs them")?;
        if let Some(id) = scores.iter().position(|s| s.is_nan()) {
            return Err(format!("tokenizer.ggml.scores[{id}] is NaN"));
        }
        let vocab = self.tokens.iter().map(|t| t.replace('\u{2581}', " ").into_bytes()).collect();
        let mut t = Llama2cTokenizer::new(vocab, scores);
        t.bos = self.bos_token_id.unwrap_or(1);
        t.eos = self.eos_token_id.unwrap_or(2);
        t.add_bos = self.add_bos_token.unwrap_or(true);
        t.add_eos = self.add_eos_token.unwrap_or(false);
        t.add_space_prefix = self.add_space_prefix.unwrap_or(true);
        if let Some(unk) = self.unknown_token_id {
            t.unk = unk;
        }
        t.special =
            self.added_tokens().into_iter().map(|(id, _)| (self.tokens[id as usize].clone(), id)).collect();
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::bpe::{BPE, BpeTrainer};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
    use tokenizers::{
        AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, SplitDelimiterBehavior,
        TokenizerBuilder,
    };

    /// Accents, CJK, emoji (with a skin tone), digits, runs of spaces, tabs, newlines,
    /// contractions in both cases, and special tokens inside words.
    const TEXT: &str = "Héllo wörld! Ça va? 日本語のテキスト 🙂👍🏽 12345 and 6789.\n\n  indented\tand   runs     of spaces\r\n\
        It's we'll I'D THEY'RE <|im_start|>user\nhi<|im_end|>\n naïve café 2024-12-08   \n";

    /// What the small vocabularies are trained on: the text's alphabet, and words to merge.
    fn corpus() -> Vec<String> {
        let words = "the quick brown fox jumps over the lazy dog, it's the dog's day; we'll see 123 456 7890";
        vec![words.repeat(5), TEXT.repeat(3), "héllo wörld ça va café naïve 日本語 テキスト".into()]
    }

    const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    /// A byte-level BPE of ~400 tokens trained by `tokenizers` on [`corpus`], as the spec of a
    /// GGUF file would list it (`pre` names the pre-tokenizer), and its `vocab.json` and
    /// `merges.txt` in `dir`.
    fn trained_spec(pre: &str, dir: &Path) -> TokenizerSpec {
        let mut trainer = BpeTrainer::builder()
            .vocab_size(400)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect())
            .show_progress(false)
            .build();
        let mut tokenizer =
            TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, PostProcessorWrapper, DecoderWrapper>::new(
            )
            .with_model(BPE::default())
            .with_pre_tokenizer(Some(ByteLevel::default()))
            .build()
            .unwrap();
        tokenizer.train(&mut trainer, corpus().into_iter()).unwrap();
        let files = tokenizers::Model::save(tokenizer.get_model(), dir, None).unwrap();
        assert_eq!(files.len(), 2);
        let vocab: std::collections::HashMap<String, u32> =
            serde_json::from_slice(&std::fs::read(dir.join("vocab.json")).unwrap()).unwrap();
        let mut tokens = vec![String::new(); vocab.len()];
        for (token, id) in vocab {
            tokens[id as usize] = token;
        }
        let merges = std::fs::read_to_string(dir.join("merges.txt")).unwrap();
        let merges: Vec<String> =
            merges.lines().filter(|l| !l.starts_with("#version")).map(str::to_string).collect();
        assert!(merges.len() > 50, "{} merges", merges.len());
        let token_type =
            tokens.iter().map(|t| if SPECIALS.contains(&t.as_str()) { CONTROL } else { 1 }).collect();
        TokenizerSpec {
            model: "gpt2".into(),
            pre: Some(pre.into()),
            tokens,
            token_type: Some(token_type),
            merges: Some(merges),
            bos_token_id: Some(0),
            eos_token_id: Some(2),
            ..TokenizerSpec::default()
        }
    }

    /// The same vocabulary built the Hugging Face way, through the crate's API: BPE from
    /// `vocab.json` and `merges.txt`, the pre-tokenizer's regexes as `Split` steps before
    /// `ByteLevel`, the special tokens added.
    fn hugging_face_way(pre: &PreTokenizer, dir: &Path) -> tokenizers::Tokenizer {
        let vocab = dir.join("vocab.json");
        let merges = dir.join("merges.txt");
        let bpe = BPE::from_file(vocab.to_str().unwrap(), merges.to_str().unwrap())
            .ignore_merges(pre.ignore_merges)
            .build()
            .unwrap();
        let mut steps: Vec<tokenizers::PreTokenizerWrapper> = pre
            .regexes
            .iter()
            .map(|r| {
                Split::new(SplitPattern::Regex(r.to_string()), SplitDelimiterBehavior::Isolated, false)
                    .unwrap()
                    .into()
            })
            .collect();
        steps.push(ByteLevel::new(false, true, false).into());
        let mut t = tokenizers::Tokenizer::new(bpe);
        t.with_pre_tokenizer(Some(Sequence::new(steps)));
        t.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
        t.add_special_tokens(&SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect::<Vec<_>>());
        t
    }

    #[test]
    fn gpt2_ids_equal_the_tokenizers_crate_for_every_pre_tokenizer() {
        for pre in PRE_TOKENIZERS {
            let dir = tempfile::tempdir().unwrap();
            let mut spec = trained_spec(pre.names[0], dir.path());
            spec.add_bos_token = Some(false);
            let ours = spec.build(Path::new("t.gguf")).unwrap().tokenizer;
            let theirs = hugging_face_way(pre, dir.path());
            let want = theirs.encode(TEXT, false).unwrap().get_ids().to_vec();
            let got = ours.encode(TEXT).unwrap();
            assert_eq!(got, want, "pre {}", pre.names[0]);
            assert_eq!(ours.decode(&got), TEXT, "pre {}", pre.names[0]);
            // Special tokens are single ids, matched inside words too.
            let (start, end) = (spec.tokens.iter().position(|t| t == SPECIALS[1]).unwrap() as u32, 2);
            assert!(got.contains(&start) && got.contains(&end), "{got:?}");
        }
    }

    #[test]
    fn gpt2_pre_tokenizers_split_digits_and_contractions_as_llama_cpp_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let pieces = |pre: &str, text: &str| {
            let spec = trained_spec(pre, dir.path());
            let t = spec.build(Path::new("t.gguf")).unwrap().tokenizer;
            let ids = t.encode(text).unwrap();
            ids.iter().map(|&id| t.decode(&[id])).collect::<Vec<_>>()
        };
        // SmolLM: one digit per token; GPT-2: digits merge as the vocabulary allows.
        assert!(pieces("smollm", "12345").iter().all(|p| p.chars().count() == 1));
        assert!(pieces("gpt-2", "123 456").iter().any(|p| p.trim().chars().count() > 1));
        // Llama 3: contractions in any case are pieces of their own; digits in runs of 3 at most.
        let p = pieces("llama-bpe", "I'D 1234567");
        assert!(p[0] == SPECIALS[0] && p[1..].iter().all(|p| p.trim_start().len() <= 3), "{p:?}");
    }

    #[test]
    fn bos_and_eos_are_added_once_as_the_spec_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = trained_spec("smollm", dir.path());
        let plain = spec.build(Path::new("t.gguf")).unwrap().tokenizer.encode("hi there").unwrap();
        assert_ne!(plain[0], 0, "smollm adds no BOS by default");
        spec.add_bos_token = Some(true);
        spec.add_eos_token = Some(true);
        let t = spec.build(Path::new("t.gguf")).unwrap().tokenizer;
        let ids = t.encode("hi there").unwrap();
        assert_eq!(ids, [&[0][..], &plain, &[2]].concat());
        // A text that starts with BOS (a chat template's `{{ bos_token }}`) gets no second one.
        assert_eq!(t.encode("<|endoftext|>hi there").unwrap(), ids);
        // Llama 3 adds BOS unless told not to.
        let spec = trained_spec("llama-bpe", dir.path());
        assert_eq!(spec.build(Path::new("t.gguf")).unwrap().tokenizer.encode("hi").unwrap()[0], 0);
    }

    #[test]
    fn end_tokens_and_chat_template_come_from_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = trained_spec("smollm", dir.path());
        spec.eot_token_id = Some(1);
        spec.chat_template = Some("{{ bos_token }}|{{ eos_token }}".into());
        let parts = spec.build(Path::new("t.gguf")).unwrap();
        assert_eq!(parts.end_tokens, [2, 1]);
        let template = parts.chat_template.unwrap();
        assert_eq!(template.render(&[], true).unwrap(), "<|endoftext|>|<|im_end|>");
    }

    #[test]
    fn unsupported_and_malformed_specs_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let spec = trained_spec("smollm", dir.path());
        let refused = |edit: &dyn Fn(&mut TokenizerSpec), needle: &str| {
            let mut s = spec.clone();
            edit(&mut s);
            let err = s.build(Path::new("m.gguf")).unwrap_err().to_string();
            assert!(err.contains(needle) && err.starts_with("m.gguf: ") && !err.contains('\n'), "{err}");
        };
        refused(
            &|s| s.pre = Some("qwen2".into()),
            "tokenizer.ggml.pre `qwen2` is not supported (known: gpt-2,",
        );
        refused(&|s| s.pre = None, "tokenizer.ggml.pre is missing");
        refused(&|s| s.model = "bert".into(), "tokenizer.ggml.model `bert` is not supported");
        refused(&|s| s.merges = None, "tokenizer.ggml.merges is missing");
        refused(&|s| s.merges.as_mut().unwrap()[3] = "nospace".into(), "tokenizer.ggml.merges[3] `nospace`");
        refused(&|s| s.eos_token_id = Some(100_000), "tokenizer.ggml.eos_token_id is 100000, outside the");
        refused(&|s| s.token_type = Some(vec![1]), "tokenizer.ggml.token_type has 1 entries");
        refused(&|s| s.tokens.clear(), "tokenizer.ggml.tokens is empty");
        refused(
            &|s| {
                s.add_bos_token = Some(true);
                s.bos_token_id = None
            },
            "add_bos_token is true and bos_token_id is missing",
        );
    }

    /// A SentencePiece vocabulary whose byte tokens are not at llama2.c's ids 3..=258.
    fn sentencepiece_spec() -> TokenizerSpec {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<|user|>"].map(String::from).to_vec();
        let pieces = ["▁", "a", "b", "c", "▁a", "ab", "▁ab", "bc", "é"];
        tokens.extend(pieces.map(String::from));
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        let mut scores = vec![0.0; 4];
        scores.extend([-1.0, -2.0, -3.0, -4.0, -0.5, -5.0, -7.0, -6.0, -8.0]);
        scores.resize(tokens.len(), 0.0);
        let mut token_type = vec![2, 3, 3, 4];
        token_type.resize(4 + pieces.len(), 1);
        token_type.resize(tokens.len(), 6);
        TokenizerSpec {
            model: "llama".into(),
            tokens,
            scores: Some(scores),
            token_type: Some(token_type),
            bos_token_id: Some(1),
            eos_token_id: Some(2),
            ..TokenizerSpec::default()
        }
    }

    #[test]
    fn llama_kind_is_llama2c_s_algorithm_over_the_spec_s_vocabulary() {
        let spec = sentencepiece_spec();
        let t = spec.build(Path::new("t.gguf")).unwrap().tokenizer;
        let Tokenizer::Llama2c(inner) = &t else { panic!("a llama spec builds llama2.c's tokenizer") };
        // The same ids as llama2.c's encoder on the same vocabulary (`▁` is a space), BOS first.
        for text in ["ab", "abc", " b", "aé c"] {
            let want = [vec![1], inner.encode(text, false)].concat();
            assert_eq!(t.encode(text).unwrap(), want, "{text:?}");
        }
        // By hand: " " a b -> "▁a" b -> "▁ab"; "ü" falls back to its bytes, wherever they are.
        assert_eq!(t.encode("ab").unwrap(), [1, 10]);
        let byte = |b: u8| 13 + u32::from(b);
        assert_eq!(t.encode("ü").unwrap(), [1, 4, byte(0xC3), byte(0xBC)]);
        // Control and user-defined tokens are matched whole; the text after one starts with a space.
        assert_eq!(t.encode("<|user|>ab</s>").unwrap(), [1, 3, 10, 2]);
        assert_eq!(t.encode("<s>ab").unwrap(), [1, 10], "no second BOS");
        assert_eq!(t.decode(&t.encode("aé c ü").unwrap()), "aé c ü");
        // add_bos_token false, add_space_prefix false.
        let mut spec = sentencepiece_spec();
        spec.add_bos_token = Some(false);
        spec.add_space_prefix = Some(false);
        assert_eq!(spec.build(Path::new("t.gguf")).unwrap().tokenizer.encode("ab").unwrap(), [9]);
        let mut spec = sentencepiece_spec();
        spec.scores = None;
        assert!(
            spec.build(Path::new("t.gguf"))
                .unwrap_err()
                .to_string()
                .contains("tokenizer.ggml.scores is missing")
        );
    }
}
