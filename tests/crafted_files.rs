//! Crafted files against every loader of the engine: seeded property tests, then the command
//! line on the files of the bug reports.
//!
//! Each loader (GPT-2 and Llama safetensors directories and their `config.json`, llama2.c `.bin`
//! legacy and version 1, `tokenizer.bin`, `tokenizer.json`) starts from a valid small input made
//! here, which must load; then the input is truncated at every boundary of its format (and at
//! seeded other offsets), has header fields set to zero, negative, huge and overflowing values,
//! and has seeded bytes flipped. The property, per variant: no panic (caught, so a failure names
//! its case); a refused file gives a typed [`smallmind::Error`] whose message is one line, after
//! allocating at most [`ALLOC_FACTOR`] times the input's bytes plus a constant ([`ALLOC_SLACK`],
//! or [`TOKENIZERS_SLACK`] for the `tokenizers` crate); no file is written. Truncations and field
//! edits must be refused, a NaN or infinite weight by name; a flipped byte may leave a valid file.
//!
//! The allocation counters are process-wide, so every test here holds [`SERIAL`].

mod common;
mod crafted;

use common::{assert_usage_error, smallmind};
use crafted::*;
use smallmind::bench::alloc::CountingAlloc;
use smallmind::models::llama::config::{LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA};
use smallmind::models::llama::llama2c::LlamaWeights;
use smallmind::models::presets::{random_llama, random_model};
use smallmind::models::{gpt2, llama, model_dir, safetensors_io};
use smallmind::tokenizer::Tokenizer;
use smallmind::tokenizer::llama2c::Llama2cTokenizer;
use smallmind::{Gpt2Config, LlamaConfig};
use std::path::Path;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Held by every test of this binary: the allocation counters are shared by its threads.
static SERIAL: Mutex<()> = Mutex::new(());

/// The files of a directory written by `export`, by name.
fn exported(write: impl FnOnce(&Path)) -> Vec<(&'static str, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let mut files = Vec::new();
    for name in [model_dir::CONFIG_FILE, safetensors_io::WEIGHTS_FILE] {
        files.push((name, std::fs::read(dir.path().join(name)).unwrap()));
    }
    assert_eq!(listing(dir.path()).len(), 2, "export writes config.json and model.safetensors");
    files
}

/// A GPT-2 shape small enough to truncate everywhere: 1 layer, untied head.
fn gpt2_config() -> Gpt2Config {
    Gpt2Config {
        vocab_size: 10,
        n_ctx: 4,
        n_embd: 4,
        n_head: 2,
        n_layer: 1,
        n_inner: 12,
        layer_norm_epsilon: 1e-5,
        tie_word_embeddings: false,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
    }
}

/// A Llama shape with grouped-query attention and a separate classifier, as small.
fn llama_config(shared_classifier: bool) -> LlamaConfig {
    LlamaConfig {
        dim: 8,
        hidden_dim: 12,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        vocab_size: 12,
        seq_len: 6,
        shared_classifier,
        norm_eps: LLAMA2C_NORM_EPS,
        rope_theta: LLAMA2C_ROPE_THETA,
    }
}

/// The safetensors file's boundaries: the length prefix, the header's end, every tensor's
/// start and end; and its header as JSON.
fn safetensors_layout(bytes: &[u8]) -> (Vec<usize>, serde_json::Value) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut boundaries = vec![0, 4, 8, 8 + n - 1, 8 + n];
    for (name, info) in header.as_object().unwrap() {
        if name != "__metadata__" {
            let offsets = info["data_offsets"].as_array().unwrap();
            boundaries.extend(offsets.iter().map(|o| 8 + n + o.as_u64().unwrap() as usize));
        }
    }
    (boundaries, header)
}

/// A safetensors file of `header` (JSON text) and the data of `bytes`.
fn with_header(bytes: &[u8], header: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Variants of a safetensors file: truncations, the length prefix and every tensor's shape,
/// offsets and dtype set to bad values, flips.
fn safetensors_variants(bytes: &[u8], rng: &mut Rng) -> Vec<Variant> {
    let (boundaries, header) = safetensors_layout(bytes);
    let mut out = truncations(bytes, &boundaries, 48, rng);
    let n = boundaries[3] + 1 - 8;
    for prefix in [0, 1, n as u64 - 1, n as u64 + 1, bytes.len() as u64, 1 << 40, u64::MAX] {
        let mut b = bytes.to_vec();
        b[..8].copy_from_slice(&prefix.to_le_bytes());
        out.push(refused(format!("header length = {prefix}"), b));
    }
    // The header re-serialised unchanged must load (checked in the test), then edited.
    for (name, info) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let rank = info["shape"].as_array().unwrap().len();
        let fields = (0..rank).map(|i| ("shape", i)).chain([("data_offsets", 0), ("data_offsets", 1)]);
        for (field, i) in fields {
            // An edit must change the file: the first tensor's offset is 0 already.
            for value in JSON_SIZES.iter().filter(|v| {
                info[field][i] != serde_json::from_str::<serde_json::Value>(v).ok().unwrap_or_default()
            }) {
                let i = i.to_string();
                let text = json_with(&header, &[name, field, &i], value);
                // A shape entry of 0 for a tensor at the end still disagrees with the config.
                out.push(refused(format!("{name}.{field}[{i}] = {value}"), with_header(bytes, &text)));
            }
        }
        for dtype in ["\"F64\"", "\"F16\"", "\"I8\"", "\"Q4\"", "7"] {
            let text = json_with(&header, &[name, "dtype"], dtype);
            out.push(refused(format!("{name}.dtype = {dtype}"), with_header(bytes, &text)));
        }
    }
    out.extend(flips(bytes, 48, rng));
    out
}

/// The safetensors file `bytes` with element `index` of `tensor` set to `value` (its
/// little-endian bytes in the file's dtype): refused, naming the tensor, the value and the index.
fn non_finite(bytes: &[u8], tensor: &str, index: usize, value: &[u8], shown: &str) -> Variant {
    let (boundaries, header) = safetensors_layout(bytes);
    let data_start = boundaries[4];
    let at = data_start + header[tensor]["data_offsets"][0].as_u64().unwrap() as usize + index * value.len();
    let mut b = bytes.to_vec();
    b[at..at + value.len()].copy_from_slice(value);
    let needle = format!("tensor `{tensor}` holds {shown} at index {index}");
    Variant {
        case: format!("{tensor}[{index}] = {shown}"),
        bytes: b,
        expect: Expect::Refused,
        needle: Some(needle),
    }
}

/// The boundaries of a llama2.c file: each header int from `header_start` (`ints` of them),
/// `extra` header offsets, then every tensor's end from `data_start`.
fn bin_boundaries(
    header_start: usize,
    ints: usize,
    extra: &[usize],
    data_start: usize,
    sizes: &[usize],
) -> Vec<usize> {
    let mut b: Vec<usize> = (0..=ints).map(|i| header_start + 4 * i).collect();
    b.push(0);
    b.extend_from_slice(extra);
    let mut at = data_start;
    b.push(at);
    for n in sizes {
        at += 4 * n;
        b.push(at);
        b.push(at - 1);
    }
    b
}

const HEADER_FIELDS: [&str; 7] =
    ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];

fn legacy_bin_variants(bytes: &[u8], config: &LlamaConfig, rng: &mut Rng) -> Vec<Variant> {
    let sizes: Vec<usize> = config.tensor_sizes().iter().map(|(_, n)| *n).collect();
    let mut out = truncations(bytes, &bin_boundaries(0, 7, &[], 28, &sizes), 32, rng);
    for (i, field) in HEADER_FIELDS.iter().enumerate() {
        let current = i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
        out.extend(i32_edits(bytes, 4 * i, field, &I32_VALUES));
        out.extend(i32_edits(bytes, 4 * i, field, &[current + 1, -current]));
    }
    out.extend(flips(bytes, 48, rng));
    out
}

fn v1_bin_variants(bytes: &[u8], config: &LlamaConfig, rng: &mut Rng) -> Vec<Variant> {
    let sizes = config.tensor_sizes();
    let size = |name: &str| sizes.iter().find(|(n, _)| *n == name).unwrap().1;
    let order =
        ["rms_att", "rms_ffn", "rms_final", "token_embedding", "wq", "wk", "wv", "wo", "w1", "w2", "w3"];
    let mut in_file: Vec<usize> = order.iter().map(|n| size(n)).collect();
    if !config.shared_classifier {
        in_file.push(size("classifier"));
    }
    let mut out = truncations(bytes, &bin_boundaries(0, 9, &[37, 255], 256, &in_file), 32, rng);
    out.extend(i32_edits(bytes, 0, "magic", &[0, 0x616b_3433, -1]));
    out.extend(i32_edits(bytes, 4, "version", &[0, -1, 2, 3, i32::MAX, i32::MIN]));
    for (i, field) in HEADER_FIELDS.iter().enumerate() {
        let mut edits = i32_edits(bytes, 8 + 4 * i, field, &I32_VALUES);
        if *field == "seq_len" {
            // Version 1 stores no RoPE tables, so no tensor backs seq_len: a positive one
            // is refused only when the machine could not hold its KV cache, which depends on
            // the machine.
            edits.retain(|v| !v.case.ends_with(" = 1073741824") && !v.case.ends_with(" = 65536"));
            edits.retain(|v| !v.case.ends_with(&format!(" = {}", i32::MAX)));
        }
        out.extend(edits);
    }
    for flag in [u8::from(!config.shared_classifier), 2, 255] {
        let mut b = bytes.to_vec();
        b[36] = flag;
        out.push(refused(format!("shared flag = {flag}"), b));
    }
    out.extend(flips(bytes, 48, rng));
    out
}

/// A llama2.c vocabulary of 12 tokens, `<unk>`, `<s>`, `</s>` first.
fn small_tokenizer() -> Llama2cTokenizer {
    let tokens = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "ab", " a", "ba", "aba", "é", "bb"];
    let vocab: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
    let scores = (0..vocab.len()).map(|i| -(i as f32)).collect();
    Llama2cTokenizer::new(vocab, scores)
}

fn tokenizer_bin_variants(t: &Llama2cTokenizer, bytes: &[u8], rng: &mut Rng) -> Vec<Variant> {
    let mut boundaries = vec![0, 2, 4];
    let mut at = 4;
    let mut length_fields = Vec::new();
    for token in &t.vocab {
        length_fields.push((at + 4, at));
        boundaries.extend([at + 4, at + 8, at + 8 + token.len()]);
        at += 8 + token.len();
    }
    let mut out = truncations(bytes, &boundaries, 16, rng);
    out.extend(i32_edits(bytes, 0, "max_token_length", &[0, -1, i32::MIN, i32::MAX, 1 << 30]));
    let max = t.max_token_length as i32;
    for id in [0, 1, 5, t.vocab.len() - 1] {
        let (len_at, score_at) = length_fields[id];
        out.extend(i32_edits(
            bytes,
            len_at,
            &format!("token {id}'s length"),
            &[-1, i32::MIN, i32::MAX, max + 1],
        ));
        let mut b = bytes.to_vec();
        b[score_at..score_at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        out.push(refused(format!("token {id}'s score = NaN"), b));
    }
    out.extend(flips(bytes, 32, rng));
    out
}

/// A byte-pair tokenizer.json as the `tokenizers` crate writes one, without a regex
/// pre-tokenizer (so a load costs little).
const TOKENIZER_JSON: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,"model":{"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{"<unk>":0,"a":1,"b":2,"ab":3,"ba":4,"aba":5},"merges":[["a","b"],["b","a"],["ab","a"]]}}"#;

fn tokenizer_json_variants(rng: &mut Rng) -> Vec<Variant> {
    let bytes = TOKENIZER_JSON.as_bytes();
    let json: serde_json::Value = serde_json::from_str(TOKENIZER_JSON).unwrap();
    // Every offset is a boundary of some JSON token.
    let all: Vec<usize> = (0..bytes.len()).collect();
    let mut out = truncations(bytes, &all, 0, rng);
    for value in ["-1", "1099511627776", "18446744073709551616", "\"x\"", "null"] {
        out.push(refused(
            format!("vocab id = {value}"),
            json_with(&json, &["model", "vocab", "ab"], value).into_bytes(),
        ));
    }
    for (path, value) in [
        (&["model", "merges", "0", "0"][..], "\"zz\""),
        (&["model", "merges", "2"][..], "[\"ab\"]"),
        (&["model", "type"][..], "\"Nope\""),
        (&["model", "dropout"][..], "-1"),
        (&["model"][..], "null"),
        (&["added_tokens"][..], "[{\"id\":-1}]"),
    ] {
        out.push(refused(
            format!("{} = {value}", path.join(".")),
            json_with(&json, path, value).into_bytes(),
        ));
    }
    out.extend(flips(bytes, 64, rng));
    out
}

/// Every loader against its crafted variants, in one test function (the allocation counters
/// are shared; see the file's documentation). Long (~180 lines) for that reason: one test
/// function, one block per loader.
#[test]
fn every_loader_refuses_crafted_files_in_one_line_without_panicking_or_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut report = Report::default();

    // GPT-2 directory: model.safetensors, then config.json.
    let gpt2 = random_model(gpt2_config(), 3);
    let files = exported(|dir| {
        gpt2::hf::export_dir(&gpt2, Some(&Tokenizer::Bytes), dir, safetensors::Dtype::F32).unwrap()
    });
    let load_gpt2 = |dir: &Path| gpt2::hf::load_dir(dir).map(drop);
    let subject =
        Subject::new("gpt2 model.safetensors", files.clone(), safetensors_io::WEIGHTS_FILE, load_gpt2);
    let (_, header) = safetensors_layout(subject.original());
    let unchanged = with_header(subject.original(), &serde_json::to_string(&header).unwrap());
    let mut variants = vec![Variant {
        case: "header re-serialised".into(),
        bytes: unchanged,
        expect: Expect::Loads,
        needle: None,
    }];
    variants.extend(safetensors_variants(subject.original(), &mut rng));
    check(&subject, variants, &mut report);
    // The nan-weight case of gpt2_cases.py (one NaN in ln_f.weight), and an infinity.
    let nan_variants = vec![
        non_finite(subject.original(), "ln_f.weight", 0, &f32::NAN.to_le_bytes(), "NaN"),
        non_finite(subject.original(), "h.0.mlp.c_fc.weight", 7, &f32::INFINITY.to_le_bytes(), "inf"),
    ];
    check(&subject, nan_variants, &mut report);

    // The same in F16 and BF16 files: their infinities and NaNs become f32 ones.
    for (dtype, inf, nan) in
        [(safetensors::Dtype::F16, 0x7c00u16, 0x7e00u16), (safetensors::Dtype::BF16, 0x7f80, 0x7fc0)]
    {
        let half_files =
            exported(|dir| gpt2::hf::export_dir(&gpt2, Some(&Tokenizer::Bytes), dir, dtype).unwrap());
        let subject = Subject::new(
            format!("gpt2 {dtype:?} model.safetensors"),
            half_files,
            safetensors_io::WEIGHTS_FILE,
            load_gpt2,
        );
        let variants = vec![
            non_finite(subject.original(), "ln_f.bias", 2, &inf.to_le_bytes(), "inf"),
            non_finite(subject.original(), "wte.weight", 0, &nan.to_le_bytes(), "NaN"),
        ];
        check(&subject, variants, &mut report);
    }

    let subject = Subject::new("gpt2 config.json", files, model_dir::CONFIG_FILE, load_gpt2);
    let keys = ["n_embd", "n_head", "n_layer", "n_positions", "vocab_size", "n_inner"];
    let mut variants =
        truncations(subject.original(), &(0..subject.original().len()).collect::<Vec<_>>(), 0, &mut rng);
    variants.extend(json_field_edits(subject.original(), &keys, &JSON_SIZES));
    variants.extend(json_field_edits(subject.original(), &["layer_norm_epsilon"], &JSON_FLOATS));
    // Sizes a machine could run but this small file cannot hold (a context, a depth, a
    // vocabulary): refused before the tensor list of the config's shape is built.
    let moderate = ["n_layer", "n_positions", "vocab_size", "n_inner"];
    variants.extend(
        json_field_edits(subject.original(), &moderate, &["100000"])
            .into_iter()
            .map(|v| Variant { needle: Some("the config does not describe these weights".into()), ..v }),
    );
    variants.extend(flips(subject.original(), 32, &mut rng));
    check(&subject, variants, &mut report);

    // Llama directory: model.safetensors, then config.json.
    let llama = random_llama(llama_config(false), 5);
    let files = exported(|dir| llama::hf::export_dir(&llama, None, dir, safetensors::Dtype::F32).unwrap());
    let load_llama = |dir: &Path| llama::hf::load_dir(dir).map(drop);
    let subject =
        Subject::new("llama model.safetensors", files.clone(), safetensors_io::WEIGHTS_FILE, load_llama);
    let mut variants = safetensors_variants(subject.original(), &mut rng);
    variants.push(non_finite(
        subject.original(),
        "model.norm.weight",
        1,
        &f32::NEG_INFINITY.to_le_bytes(),
        "-inf",
    ));
    let name = "model.layers.1.mlp.down_proj.weight";
    variants.push(non_finite(subject.original(), name, 5, &f32::NAN.to_le_bytes(), "NaN"));
    check(&subject, variants, &mut report);
    let subject = Subject::new("llama config.json", files, model_dir::CONFIG_FILE, load_llama);
    let keys = [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "max_position_embeddings",
        "head_dim", // absent from the file: added
    ];
    let mut variants =
        truncations(subject.original(), &(0..subject.original().len()).collect::<Vec<_>>(), 0, &mut rng);
    variants.extend(json_field_edits(subject.original(), &keys, &JSON_SIZES));
    variants.extend(json_field_edits(subject.original(), &["rms_norm_eps", "rope_theta"], &JSON_FLOATS));
    // As for GPT-2; not max_position_embeddings, which no tensor backs (a machine that can hold
    // the KV cache of 100000 positions runs this model with them).
    let moderate = ["intermediate_size", "num_hidden_layers", "vocab_size"];
    variants.extend(
        json_field_edits(subject.original(), &moderate, &["100000"])
            .into_iter()
            .map(|v| Variant { needle: Some("the config does not describe these weights".into()), ..v }),
    );
    variants.extend(flips(subject.original(), 32, &mut rng));
    check(&subject, variants, &mut report);

    // llama2.c .bin, legacy and version 1, shared and separate classifiers.
    let load_bin = |dir: &Path| LlamaWeights::read(&dir.join("model.bin")).map(drop);
    for shared in [true, false] {
        let weights = random_llama(llama_config(shared), 9).to_weights();
        let legacy = weights.to_bytes().unwrap();
        let subject = Subject::new(
            format!("llama2.c legacy .bin (shared {shared})"),
            vec![("model.bin", legacy)],
            "model.bin",
            load_bin,
        );
        let variants = legacy_bin_variants(subject.original(), &weights.config, &mut rng);
        check(&subject, variants, &mut report);
        let v1 = weights.to_v1_bytes().unwrap();
        let subject = Subject::new(
            format!("llama2.c v1 .bin (shared {shared})"),
            vec![("model.bin", v1)],
            "model.bin",
            load_bin,
        );
        let variants = v1_bin_variants(subject.original(), &weights.config, &mut rng);
        check(&subject, variants, &mut report);
    }

    // tokenizer.bin, for the model's vocabulary and for vocabularies it cannot hold.
    let t = small_tokenizer();
    let vocab = t.vocab.len();
    let bytes = t.to_bytes();
    let files = vec![("tokenizer.bin", bytes.clone())];
    let subject = Subject::new("tokenizer.bin", files.clone(), "tokenizer.bin", move |dir| {
        Llama2cTokenizer::read(&dir.join("tokenizer.bin"), vocab).map(drop)
    });
    let variants = tokenizer_bin_variants(&t, &bytes, &mut rng);
    check(&subject, variants, &mut report);
    for wanted in [vocab + 1, 1 << 20, i32::MAX as usize, usize::MAX] {
        let subject = Subject {
            valid_input_loads: false,
            ..Subject::new(
                format!("tokenizer.bin asked for {wanted} tokens"),
                files.clone(),
                "tokenizer.bin",
                move |dir| Llama2cTokenizer::read(&dir.join("tokenizer.bin"), wanted).map(drop),
            )
        };
        check(&subject, vec![refused("the whole file", bytes.clone())], &mut report);
    }

    // tokenizer.json through the engine's loader, with the `tokenizers` crate's own constant.
    let file = vec![("tokenizer.json", TOKENIZER_JSON.as_bytes().to_vec())];
    let subject = Subject {
        alloc_slack: TOKENIZERS_SLACK,
        ..Subject::new("tokenizer.json", file, "tokenizer.json", |dir| {
            Tokenizer::from_hf_file(&dir.join("tokenizer.json")).map(drop)
        })
    };
    let variants = tokenizer_json_variants(&mut rng);
    check(&subject, variants, &mut report);

    eprintln!(
        "{} crafted variants; the largest allocation of a refused load was {:.0}% of its bound",
        report.variants,
        100.0 * report.worst_of_bound
    );
    let shown: Vec<&String> = report.failures.iter().take(40).collect();
    assert!(
        report.failures.is_empty(),
        "{} failures:\n{}",
        report.failures.len(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

/// The 64-byte legacy file of the bug report (`llama2c_overflow_header.py`): dim 2^30, hidden 2,
/// 2^28 layers, 2^29 heads and kv heads, vocab 2^31 - 1, seq_len 1; the tensor sizes overflow
/// 64-bit arithmetic and their wrapped sum is 2 floats.
fn overflow_header() -> Vec<u8> {
    let fields: [i32; 7] = [1 << 30, 2, 1 << 28, 1 << 29, 1 << 29, i32::MAX, 1];
    let mut bytes: Vec<u8> = fields.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes.resize(64, 0);
    bytes
}

/// `info` and `generate` on `model` (with a tokenizer.bin beside it): exit 2 and one line
/// holding every one of `needles`, never a panic.
fn assert_cli_refuses(model: &Path, needles: &[&str]) {
    let model = model.to_str().unwrap();
    assert_usage_error(&smallmind(&["info", "--model", model]), needles);
    let generate = ["generate", "--model", model, "--prompt", "ab", "--max-new-tokens", "2"];
    assert_usage_error(&smallmind(&generate), needles);
}

#[test]
fn the_command_line_refuses_the_overflow_header_and_version_2_in_one_line() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokenizer.bin"), small_tokenizer().to_bytes()).unwrap();
    let big = dir.path().join("big_header.bin");
    std::fs::write(&big, overflow_header()).unwrap();
    assert_cli_refuses(&big, &["big_header.bin", "wq", "64-bit"]);

    let mut v2 = random_llama(llama_config(true), 1).to_weights().to_v1_bytes().unwrap();
    v2[4..8].copy_from_slice(&2i32.to_le_bytes());
    let path = dir.path().join("model_v2.bin");
    std::fs::write(&path, &v2).unwrap();
    assert_cli_refuses(&path, &["model_v2.bin", "version 2", "Q8_0"]);
    v2[4..8].copy_from_slice(&3i32.to_le_bytes());
    std::fs::write(&path, &v2).unwrap();
    assert_cli_refuses(&path, &["unknown llama2.c checkpoint version 3"]);
}

#[test]
fn the_command_line_runs_a_version_1_file_as_its_legacy_twin() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokenizer.bin"), small_tokenizer().to_bytes()).unwrap();
    let weights = random_llama(llama_config(false), 2).to_weights();
    let mut outputs = Vec::new();
    for (name, bytes) in
        [("legacy.bin", weights.to_bytes().unwrap()), ("v1.bin", weights.to_v1_bytes().unwrap())]
    {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let args = [
            "generate",
            "--model",
            path.to_str().unwrap(),
            "--prompt-ids",
            "1,4,5",
            "--max-new-tokens",
            "3",
            "--json",
        ];
        let out = smallmind(&args);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        outputs.push(json["generated_ids"].clone());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0].as_array().unwrap().len(), 3);
}

#[test]
fn the_command_line_names_a_non_finite_weight() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The nan-weight case of gpt2_cases.py: one NaN in ln_f.weight.
    let dir = tempfile::tempdir().unwrap();
    let mut model = random_model(gpt2_config(), 4);
    model.ln_f.weight[2] = f32::NAN;
    gpt2::hf::export_dir(&model, Some(&Tokenizer::Bytes), dir.path(), safetensors::Dtype::F32).unwrap();
    let out = smallmind(&["info", "--model", dir.path().to_str().unwrap()]);
    assert_usage_error(&out, &["model.safetensors", "tensor `ln_f.weight` holds NaN at index 2"]);

    let mut weights = random_llama(llama_config(true), 3).to_weights();
    weights.w2[7] = f32::INFINITY;
    let path = dir.path().join("model.bin");
    std::fs::write(&path, weights.to_bytes().unwrap()).unwrap();
    let out = smallmind(&["info", "--model", path.to_str().unwrap()]);
    assert_usage_error(&out, &["model.bin", "tensor `w2` holds inf at index 7"]);
}

#[test]
fn the_command_line_refuses_a_context_no_machine_holds_saying_what_it_needs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // max_position_embeddings is backed by no tensor: tiny weights can ask for 2^40 positions.
    let dir = tempfile::tempdir().unwrap();
    llama::hf::export_dir(&random_llama(llama_config(false), 6), None, dir.path(), safetensors::Dtype::F32)
        .unwrap();
    let path = dir.path().join(model_dir::CONFIG_FILE);
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["max_position_embeddings"] = (1u64 << 40).into();
    std::fs::write(&path, config.to_string()).unwrap();
    let model = dir.path().to_str().unwrap();
    let needles = ["config.json", "needs", "KV cache for 1099511627776 positions: 64.0 TiB"];
    assert_usage_error(&smallmind(&["info", "--model", model]), &needles);
    let generate = ["generate", "--model", model, "--prompt-ids", "1,2", "--max-new-tokens", "2"];
    assert_usage_error(&smallmind(&generate), &needles);
}

/// The offset of the value of the metadata entry `key` in a GGUF file (after its type id).
fn gguf_value_at(bytes: &[u8], key: &str) -> usize {
    let mut pattern = (key.len() as u64).to_le_bytes().to_vec();
    pattern.extend_from_slice(key.as_bytes());
    bytes.windows(pattern.len()).position(|w| w == pattern).expect("the key is in the file")
        + pattern.len()
        + 4
}

/// `bytes` with the little-endian `u32` at `offset` set to each of `values` (all refused).
fn u32_edits(bytes: &[u8], offset: usize, field: &str, values: &[u32]) -> Vec<Variant> {
    values
        .iter()
        .map(|v| {
            let mut b = bytes.to_vec();
            b[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
            refused(format!("{field} = {v}"), b)
        })
        .collect()
}

/// `bytes` with the little-endian `u64` at `offset` set to each of `values` (all refused).
fn u64_edits(bytes: &[u8], offset: usize, field: &str, values: &[u64]) -> Vec<Variant> {
    values
        .iter()
        .map(|v| {
            let mut b = bytes.to_vec();
            b[offset..offset + 8].copy_from_slice(&v.to_le_bytes());
            refused(format!("{field} = {v}"), b)
        })
        .collect()
}

/// The GGUF loader (`--model FILE.gguf`) on a small F32 Llama with a token list in its
/// metadata: truncated at every byte of the header and at sampled places in the data, every
/// shape key, count and length set to zero, huge and overflowing values, an unknown tensor
/// type, a NaN weight, and flipped bytes.
#[test]
fn the_gguf_loader_refuses_crafted_files_in_one_line_without_panicking_or_allocating() {
    use smallmind::models::gguf::write::GgufWriter;
    use smallmind::models::gguf::{Array, GgmlType, GgufFile, Value};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(0x5eed_1234_abcd_0006);
    let mut report = Report::default();

    // smallmind's export, rewritten with a token list: string arrays are in the crafted header.
    let llama = random_llama(llama_config(true), 6);
    let dir = scratch_dir();
    let exported = dir.path().join("export.gguf");
    std::fs::write(&exported, llama::gguf::to_gguf_bytes(&llama, GgmlType::F32).unwrap()).unwrap();
    let file = GgufFile::open(&exported).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &file.metadata {
        w.metadata(k, v.clone());
    }
    let tokens = (0..12).map(|i| format!("tok{i}")).collect();
    w.metadata("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    for t in &file.tensors {
        w.tensor(&t.name, &t.dims, t.ty, file.tensor_bytes(t).to_vec());
    }
    let bytes = w.to_bytes();
    let data_offset = {
        std::fs::write(&exported, &bytes).unwrap();
        GgufFile::open(&exported).unwrap().data_offset
    };
    let load = |dir: &Path| {
        smallmind::models::checkpoint::load(dir.join("model.gguf").to_str().unwrap(), None).map(drop)
    };
    let subject = Subject::new("llama model.gguf", vec![("model.gguf", bytes.clone())], "model.gguf", load);

    let mut variants = truncations(&bytes, &(0..data_offset).collect::<Vec<_>>(), 16, &mut rng);
    variants.extend(u64_edits(&bytes, 8, "tensor count", &[u64::MAX, 1 << 40, 1000]));
    variants.extend(u64_edits(&bytes, 16, "metadata count", &[u64::MAX, 1 << 40, 1000]));
    for key in [
        "llama.block_count",
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.vocab_size",
    ] {
        let at = gguf_value_at(&bytes, key);
        variants.extend(u32_edits(&bytes, at, key, &[0, 3, 1 << 20, u32::MAX]));
    }
    let at = gguf_value_at(&bytes, "llama.context_length");
    variants.extend(u32_edits(&bytes, at, "llama.context_length", &[0, u32::MAX]));
    let at = gguf_value_at(&bytes, "general.architecture");
    variants.extend(u64_edits(&bytes, at, "general.architecture's length", &[u64::MAX, bytes.len() as u64]));
    variants.extend(u32_edits(&bytes, at - 4, "general.architecture's type", &[13, 9, u32::MAX]));
    let at = gguf_value_at(&bytes, "tokenizer.ggml.tokens");
    variants.extend(u64_edits(&bytes, at + 4, "the token list's length", &[u64::MAX, 1 << 40, 1 << 20]));
    // The first tensor info's type, after its name and dimensions.
    let name = "token_embd.weight";
    let info = gguf_value_at(&bytes, name) - 4;
    let type_at = info + 4 + 8 * 2;
    variants.extend(u32_edits(&bytes, type_at, "token_embd's type", &[99, 16, 2, u32::MAX]));
    variants.extend(u64_edits(&bytes, type_at + 4, "token_embd's offset", &[1, u64::MAX, 1 << 40]));
    variants.extend(u64_edits(&bytes, info + 4, "token_embd's first dimension", &[0, u64::MAX, 1 << 33]));
    let norm = file.tensor("output_norm.weight").unwrap();
    let mut nan = bytes.clone();
    let nan_at = data_offset + (norm.offset - file.data_offset) + 4;
    nan[nan_at..nan_at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    variants.push(Variant {
        case: "NaN in output_norm.weight".into(),
        bytes: nan,
        expect: Expect::Refused,
        needle: Some("`output_norm.weight` holds NaN at index 1".into()),
    });
    variants.extend(flips(&bytes, 64, &mut rng));
    check(&subject, variants, &mut report);

    eprintln!(
        "{} crafted GGUF variants; the largest allocation of a refused load was {:.0}% of its bound",
        report.variants,
        100.0 * report.worst_of_bound
    );
    assert!(
        report.failures.is_empty(),
        "{} failures:\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
}
