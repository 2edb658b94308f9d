//! A model's tokenizer, end of turn and chat, as a user meets them (issue 29, items 2-4): a
//! `tokenizer.json` whose post-processor adds `<s>`, `--tokenizer` of either kind, `generate`
//! stopping at the `eos_token_id` of `config.json` or `generation_config.json`, and
//! `generate --chat` through the model's own template.

mod common;

use common::*;
use serde_json::{Value, json};
use smallmind::Tokenizer;
use smallmind::models::{gpt2, llama};
use std::path::Path;

fn llama_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    llama::hf::export_dir(&llama_preset("llama-tiny"), None, dir.path(), safetensors::Dtype::F32).unwrap();
    dir
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `generate ... --json` with `args` after the model; the parsed output.
fn generate_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["generate", "--model", dir.to_str().unwrap(), "--json", "--threads", "1"];
    all.extend_from_slice(args);
    let out = smallmind(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(v: &Value, key: &str) -> Vec<u32> {
    v[key].as_array().unwrap().iter().map(|id| id.as_u64().unwrap() as u32).collect()
}

/// Llama-2's kind of `tokenizer.json`: words `<unk>`, `<s>`, `</s>`, `w3`..`w511` (the
/// model's 512), split at
/// whitespace, `<s>` added by a `TemplateProcessing` post-processor (`"<s> $A"`).
fn llama2_style_tokenizer_json() -> Value {
    let mut vocab = serde_json::Map::new();
    for (id, word) in ["<unk>", "<s>", "</s>"].iter().enumerate() {
        vocab.insert(word.to_string(), json!(id));
    }
    for id in 3..512 {
        vocab.insert(format!("w{id}"), json!(id));
    }
    let special = |id: u32, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
               "normalized": false, "special": true})
    };
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
}

/// Issue 29's bug: prompt ids `[290, 295]` where `tokenizers` gives `[1, 290, 295]`. The
/// post-processor's `<s>` is added, and only once when the prompt already starts with it.
#[test]
fn a_tokenizer_json_post_processor_adds_bos_once() {
    let dir = llama_dir();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, llama2_style_tokenizer_json().to_string()).unwrap();
    let theirs = tokenizers::Tokenizer::from_file(&path).unwrap();
    assert_eq!(theirs.encode("w290 w295", true).unwrap().get_ids(), [1, 290, 295]);
    let ours = Tokenizer::from_hf_file(&path).unwrap();
    assert_eq!(ours.encode("w290 w295").unwrap(), [1, 290, 295]);
    assert_eq!(ours.encode("<s> w290 w295").unwrap(), [1, 290, 295], "one BOS, never two");
    assert_eq!(ours.encode("").unwrap(), [1]);
    let out = generate_json(dir.path(), &["--prompt", "w290 w295", "--max-new-tokens", "1"]);
    assert_eq!(ids(&out, "prompt_ids"), [1, 290, 295]);
}

/// `--tokenizer` reads a `tokenizer.json` as JSON whatever its name, a llama2.c
/// `tokenizer.bin` as before, and says in one line that any other file is neither.
#[test]
fn the_tokenizer_flag_tells_the_kind_from_the_content() {
    let dir = llama_dir();
    let model = dir.path().to_str().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let json_file = elsewhere.path().join("tokenizer.json");
    std::fs::write(&json_file, llama2_style_tokenizer_json().to_string()).unwrap();
    let renamed = elsewhere.path().join("tok.bin");
    std::fs::copy(&json_file, &renamed).unwrap();
    for file in [&json_file, &renamed] {
        let out = generate_json(
            dir.path(),
            &["--tokenizer", file.to_str().unwrap(), "--prompt", "w290 w295", "--max-new-tokens", "1"],
        );
        assert_eq!(ids(&out, "prompt_ids"), [1, 290, 295], "{}", file.display());
    }
    // llama2.c's tokenizer.bin, as `export` writes it beside a preset.
    let exported = tempfile::tempdir().unwrap();
    let out = smallmind(&["export", "--model", "llama-tiny", "--out", exported.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bin = exported.path().join("tokenizer.bin");
    let out = generate_json(
        dir.path(),
        &["--tokenizer", bin.to_str().unwrap(), "--prompt", "a", "--max-new-tokens", "1"],
    );
    assert_eq!(ids(&out, "prompt_ids")[0], 1, "llama2.c's encoder starts with <s>");
    // Neither kind: text that is not JSON.
    let text = elsewhere.path().join("notes.txt");
    std::fs::write(&text, "hello, I am not a tokenizer\n").unwrap();
    let out =
        smallmind(&["generate", "--model", model, "--tokenizer", text.to_str().unwrap(), "--prompt", "a"]);
    assert_usage_error(
        &out,
        &["notes.txt", "neither a Hugging Face tokenizer.json", "nor a llama2.c tokenizer.bin"],
    );
    // A `.json` that is not JSON says so, and a tokenizer.bin is not for GPT-2.
    let bad_json = elsewhere.path().join("broken.json");
    std::fs::write(&bad_json, "[1, 2").unwrap();
    let out = smallmind(&[
        "generate",
        "--model",
        model,
        "--tokenizer",
        bad_json.to_str().unwrap(),
        "--prompt",
        "a",
    ]);
    assert_usage_error(&out, &["broken.json", "not valid JSON"]);
    let out =
        smallmind(&["generate", "--model", "tiny", "--tokenizer", bin.to_str().unwrap(), "--prompt", "a"]);
    assert_usage_error(&out, &["is a llama2.c tokenizer.bin, for Llama models; this model is GPT-2"]);
}

/// Rewrites the JSON file `path` (an empty object when absent) through `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut map = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => serde_json::Map::new(),
    };
    edit(&mut map);
    std::fs::write(path, serde_json::to_vec_pretty(&map).unwrap()).unwrap();
}

/// `generate` stops right after an id that `eos_token_id` names (a number or a list, in
/// config.json or generation_config.json); `--no-stop` generates the full length, as does a
/// model whose files name none. The stop id is the one the seeded model writes third.
#[test]
fn generate_stops_at_the_model_s_end_of_turn() {
    let dir = tempfile::tempdir().unwrap();
    gpt2::hf::export_dir(&preset("tiny"), Some(&Tokenizer::Bytes), dir.path(), safetensors::Dtype::F32)
        .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["--prompt-ids", "1,2,3", "--max-new-tokens", "8"];
        args.extend_from_slice(extra);
        ids(&generate_json(dir.path(), &args), "generated_ids")
    };
    let full = run(&[]);
    assert_eq!(full.len(), 8, "no eos_token_id: the whole length");
    let stop = full[2];
    let first = full.iter().position(|&id| id == stop).unwrap();
    let config = dir.path().join("config.json");
    let generation_config = dir.path().join("generation_config.json");
    for (file, value) in
        [(&config, json!(stop)), (&config, json!([300, stop])), (&generation_config, json!([stop]))]
    {
        edit_json(file, |c| {
            c.insert("eos_token_id".into(), value.clone());
        });
        assert_eq!(run(&[]), full[..=first], "{} = {value}", file.display());
        assert_eq!(run(&["--no-stop"]), full, "--no-stop");
        edit_json(file, |c| {
            c.remove("eos_token_id");
        });
    }
    // The stop token ends the streamed text: it is not printed.
    edit_json(&config, |c| {
        c.insert("eos_token_id".into(), json!(stop));
    });
    let d = dir.path().to_str().unwrap();
    let text = smallmind(&["generate", "--model", d, "--prompt-ids", "1,2,3", "--max-new-tokens", "8"]);
    let streamed = String::from_utf8_lossy(&text.stdout).into_owned();
    let want = Tokenizer::Bytes.decode(&[&[1, 2, 3][..], &full[..first]].concat());
    assert_eq!(streamed.trim_end_matches('\n'), want);
    // `bench` generates its fixed length whatever the model says.
    let results = dir.path().join("bench.json");
    let out = smallmind(&[
        "bench",
        "--model",
        d,
        "--prompt-tokens",
        "3",
        "--max-new-tokens",
        "8",
        "--iterations",
        "1",
        "--warmup",
        "0",
        "--phase-iterations",
        "0",
        "--no-probe",
        "--threads",
        "1",
        "--out",
        results.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(results["output"]["generated_ids"].as_array().unwrap().len(), 8);
    edit_json(&generation_config, |c| {
        c.insert("eos_token_id".into(), json!("<|im_end|>"));
    });
    let out = smallmind(&["generate", "--model", d, "--prompt-ids", "1"]);
    assert_usage_error(
        &out,
        &["generation_config.json", "`eos_token_id` holds \"<|im_end|>\", not a token id"],
    );
}

/// SmolLM2-Instruct's chat template (ChatML, its `tokenizer_config.json`).
const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A byte-level `tokenizer.json` without merges: the 256 bytes (ids 0..=255, in GPT-2's
/// printable alphabet), ChatML's special tokens (256..=258), and tokens no text reaches up to
/// the model's 512.
fn chatml_tokenizer_json() -> Value {
    let bytes = (0u8..=255).map(gpt2_byte_char);
    let mut vocab: serde_json::Map<String, Value> =
        bytes.enumerate().map(|(id, c)| (c.to_string(), json!(id))).collect();
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let mut added = Vec::new();
    for (i, s) in specials.iter().enumerate() {
        vocab.insert(s.to_string(), json!(256 + i));
        added.push(
            json!({"id": 256 + i, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": true}),
        );
    }
    for id in 259..512 {
        vocab.insert(format!("<unused{id}>"), json!(id));
    }
    let byte_level =
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
        "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": []}
    })
}

/// GPT-2's printable stand-in for byte `b` (`bytes_to_unicode` in its `encoder.py`).
fn gpt2_byte_char(b: u8) -> char {
    let printable =
        |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b) {
        return char::from(b);
    }
    let shifted = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + shifted).unwrap()
}

/// `--chat` renders the model's template (with `--system`, without it the template's own
/// system turn), tokenizes it with the special tokens whole, and stops at the end of turn; a
/// model without a template says so in one line.
#[test]
fn chat_renders_the_model_s_template_and_ends_at_its_end_of_turn() {
    let dir = llama_dir();
    let tokenizer_json = dir.path().join("tokenizer.json");
    std::fs::write(&tokenizer_json, chatml_tokenizer_json().to_string()).unwrap();
    let d = dir.path().to_str().unwrap();
    let out = smallmind(&["generate", "--model", d, "--chat", "Hi!"]);
    assert_usage_error(&out, &["has no chat template", "--prompt"]);

    edit_json(&dir.path().join("tokenizer_config.json"), |c| {
        c.insert("chat_template".into(), json!(CHATML));
        c.insert("eos_token".into(), json!("<|im_end|>"));
    });
    let theirs = tokenizers::Tokenizer::from_file(&tokenizer_json).unwrap();
    let want = |text: &str| theirs.encode(text, true).unwrap().get_ids().to_vec();
    let out = generate_json(dir.path(), &["--chat", "Hi!", "--max-new-tokens", "4", "--no-stop"]);
    let default_system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";
    let prompt = ids(&out, "prompt_ids");
    assert_eq!(
        prompt,
        want(&format!("{default_system}<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"))
    );
    assert_eq!(prompt[0], 257, "<|im_start|> is one token");
    let out = generate_json(
        dir.path(),
        &["--chat", "Hi!", "--system", "Be brief.", "--max-new-tokens", "4", "--no-stop"],
    );
    let with_system =
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(ids(&out, "prompt_ids"), want(with_system));

    // The end of turn: the id the seeded model writes first stands in for `<|im_end|>`.
    let first = ids(&out, "generated_ids")[0];
    edit_json(&dir.path().join("config.json"), |c| {
        c.insert("eos_token_id".into(), json!(first));
    });
    let out = generate_json(dir.path(), &["--chat", "Hi!", "--system", "Be brief.", "--max-new-tokens", "4"]);
    assert_eq!(ids(&out, "generated_ids"), [first]);

    let out = smallmind(&["generate", "--model", d, "--system", "x", "--prompt", "a"]);
    assert_usage_error(&out, &["--chat"]);
    edit_json(&dir.path().join("tokenizer_config.json"), |c| {
        c.insert("chat_template".into(), json!("{{ raise_exception('no system role') }}"));
    });
    let out = smallmind(&["generate", "--model", d, "--chat", "Hi!"]);
    assert_usage_error(&out, &["tokenizer_config.json", "chat template", "no system role"]);
}
