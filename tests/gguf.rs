//! GGUF files: the reader's metadata and layout (versions 2 and 3, `general.alignment`, every
//! value type), Llama models converted the way llama.cpp converts them (q and k permuted from
//! Hugging Face's order) loading as the model they came from, smallmind's own GGUF export
//! round-tripping, and the command line refusing bad files in one line with exit 2.
//! Dequantization of each block format is tested against the `gguf` package's fixtures in
//! `src/models/gguf/blocks.rs`; crafted-file properties are in `crafted_files.rs`.

mod common;

use common::{assert_usage_error, smallmind, smallmind_env};
use smallmind::models::checkpoint;
use smallmind::models::gguf::write::{GgufWriter, encode_f16, encode_f32};
use smallmind::models::gguf::{Array, GgmlType, GgufFile, Value};
use smallmind::models::llama::{self, gguf as llama_gguf};
use smallmind::models::presets::random_llama;
use smallmind::{LlamaConfig, Model};
use std::path::{Path, PathBuf};

fn config(shared_classifier: bool, n_kv_heads: usize) -> LlamaConfig {
    LlamaConfig {
        dim: 64,
        hidden_dim: 96,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads,
        vocab_size: 40,
        seq_len: 24,
        shared_classifier,
        norm_eps: 1e-5,
        rope_theta: 100000.0,
    }
}

/// llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py) on a `(n_head * head_dim, n_in)`
/// projection: viewed as `(n_head, 2, head_dim / 2, n_in)`, axes 1 and 2 swapped. Written
/// here from that definition, independently of the engine's own reordering.
fn llama_cpp_permute(w: &[f32], n_head: usize, n_in: usize) -> Vec<f32> {
    let rows = w.len() / n_in;
    let (hd, half) = (rows / n_head, rows / n_head / 2);
    let mut out = vec![0.0; w.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let (src, dst) = (h * hd + j * half + i, h * hd + 2 * i + j);
                out[dst * n_in..(dst + 1) * n_in].copy_from_slice(&w[src * n_in..(src + 1) * n_in]);
            }
        }
    }
    out
}

/// The metadata llama.cpp's converter writes for `c` (plus a key smallmind does not know).
fn llama_metadata(w: &mut GgufWriter, c: &LlamaConfig) {
    w.metadata("general.architecture", Value::String("llama".into()))
        .metadata("general.name", Value::String("test".into()))
        .metadata("llama.block_count", Value::U32(c.n_layers as u32))
        .metadata("llama.context_length", Value::U32(c.seq_len as u32))
        .metadata("llama.embedding_length", Value::U32(c.dim as u32))
        .metadata("llama.feed_forward_length", Value::U32(c.hidden_dim as u32))
        .metadata("llama.attention.head_count", Value::U32(c.n_heads as u32))
        .metadata("llama.attention.head_count_kv", Value::U32(c.n_kv_heads as u32))
        .metadata("llama.rope.freq_base", Value::F32(c.rope_theta))
        .metadata("llama.attention.layer_norm_rms_epsilon", Value::F32(c.norm_eps))
        .metadata("llama.rope.dimension_count", Value::U32(c.head_size() as u32))
        .metadata("tokenizer.ggml.model", Value::String("llama".into()))
        .metadata(
            "tokenizer.ggml.tokens",
            Value::Array(Array::String((0..c.vocab_size).map(|i| format!("t{i}")).collect())),
        )
        .metadata("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; c.vocab_size])))
        .metadata("test.unknown_key", Value::U8(1));
}

/// A Hugging Face directory's Llama converted to GGUF as llama.cpp converts it: names mapped,
/// q and k permuted, matrices in `ty` (F32 or F16), norms in F32.
fn convert_hf_dir(dir: &Path, c: &LlamaConfig, ty: GgmlType) -> Vec<u8> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensor = |name: &str| -> Vec<f32> {
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F32);
        view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    };
    let mut w = GgufWriter::new();
    llama_metadata(&mut w, c);
    let mut put = |name: &str, dims: &[usize], values: Vec<f32>| {
        let (t, data) = match (dims.len(), ty) {
            (2, GgmlType::F16) => (GgmlType::F16, encode_f16(&values).unwrap()),
            _ => (GgmlType::F32, encode_f32(&values)),
        };
        w.tensor(name, dims, t, data);
    };
    let (d, kv, h, v) = (c.dim, c.kv_dim(), c.hidden_dim, c.vocab_size);
    put("token_embd.weight", &[d, v], tensor("model.embed_tokens.weight"));
    for i in 0..c.n_layers {
        let hf = |n: &str| tensor(&format!("model.layers.{i}.{n}.weight"));
        let b = |n: &str| format!("blk.{i}.{n}.weight");
        put(&b("attn_norm"), &[d], hf("input_layernorm"));
        put(&b("attn_q"), &[d, d], llama_cpp_permute(&hf("self_attn.q_proj"), c.n_heads, d));
        put(&b("attn_k"), &[d, kv], llama_cpp_permute(&hf("self_attn.k_proj"), c.n_kv_heads, d));
        put(&b("attn_v"), &[d, kv], hf("self_attn.v_proj"));
        put(&b("attn_output"), &[d, d], hf("self_attn.o_proj"));
        put(&b("ffn_norm"), &[d], hf("post_attention_layernorm"));
        put(&b("ffn_gate"), &[d, h], hf("mlp.gate_proj"));
        put(&b("ffn_up"), &[d, h], hf("mlp.up_proj"));
        put(&b("ffn_down"), &[h, d], hf("mlp.down_proj"));
    }
    put("output_norm.weight", &[d], tensor("model.norm.weight"));
    if !c.shared_classifier {
        put("output.weight", &[d, v], tensor("lm_head.weight"));
    }
    w.to_bytes()
}

fn load_llama(path: &Path) -> (smallmind::Llama, Vec<String>) {
    let loaded = checkpoint::load(path.to_str().unwrap(), None).unwrap();
    match loaded.model {
        Model::Llama(m) => (m, loaded.warnings),
        Model::Gpt2(_) => panic!("a GGUF file loaded as GPT-2"),
    }
}

#[test]
fn a_model_converted_the_llama_cpp_way_loads_as_the_model_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    for (shared, n_kv_heads) in [(true, 4), (false, 2), (true, 1)] {
        let c = config(shared, n_kv_heads);
        let model = random_llama(c.clone(), 7 + n_kv_heads as u64);
        let hf = dir.path().join(format!("hf-{shared}-{n_kv_heads}"));
        llama::hf::export_dir(&model, None, &hf, safetensors::Dtype::F32).unwrap();
        let path = dir.path().join(format!("model-{shared}-{n_kv_heads}.gguf"));
        std::fs::write(&path, convert_hf_dir(&hf, &c, GgmlType::F32)).unwrap();
        let (loaded, warnings) = load_llama(&path);
        assert!(
            loaded == model,
            "shared {shared}, {n_kv_heads} kv heads: the GGUF's model differs from the original"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`test.unknown_key`"), "{warnings:?}");
    }
}

#[test]
fn f16_tensors_load_as_the_same_weights_in_an_f16_hugging_face_directory() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(false, 2);
    let model = random_llama(c.clone(), 3);
    let (f32_dir, f16_dir) = (dir.path().join("f32"), dir.path().join("f16"));
    llama::hf::export_dir(&model, None, &f32_dir, safetensors::Dtype::F32).unwrap();
    llama::hf::export_dir(&model, None, &f16_dir, safetensors::Dtype::F16).unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, convert_hf_dir(&f32_dir, &c, GgmlType::F16)).unwrap();
    let (from_gguf, _) = load_llama(&path);
    let (mut from_hf, _) = llama::hf::load_dir(&f16_dir).unwrap();
    // Hugging Face's F16 file rounds the norms too; llama.cpp keeps them in F32.
    for (a, b) in from_hf.layers.iter_mut().zip(&model.layers) {
        a.rms_att.weight.clone_from(&b.rms_att.weight);
        a.rms_ffn.weight.clone_from(&b.rms_ffn.weight);
    }
    from_hf.rms_final.weight.clone_from(&model.rms_final.weight);
    assert!(from_gguf == from_hf, "F16 GGUF and F16 safetensors give different weights");
}

#[test]
fn smallmind_gguf_export_round_trips_in_f32_and_rounds_to_f16() {
    let c = config(false, 2);
    let model = random_llama(c.clone(), 11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.gguf");
    std::fs::write(&path, llama_gguf::to_gguf_bytes(&model, GgmlType::F32).unwrap()).unwrap();
    let (loaded, warnings) = load_llama(&path);
    assert!(loaded == model, "F32 export -> load changed the model");
    assert!(warnings.is_empty(), "{warnings:?}");

    std::fs::write(&path, llama_gguf::to_gguf_bytes(&model, GgmlType::F16).unwrap()).unwrap();
    let (loaded, _) = load_llama(&path);
    let round = |w: &[f32]| -> Vec<f32> { w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect() };
    assert_eq!(loaded.layers[1].attn.wk.weight.to_vec(), round(&model.layers[1].attn.wk.weight));
    assert_eq!(loaded.layers[0].rms_ffn.weight, model.layers[0].rms_ffn.weight, "norms stay F32");

    let mut big = model.clone();
    big.layers[0].ffn.w2.weight[3] = 70000.0;
    let err = llama_gguf::to_gguf_bytes(&big, GgmlType::F16).unwrap_err().to_string();
    assert!(err.contains("blk.0.ffn_down.weight") && err.contains("70000"), "{err}");
}

#[test]
fn the_reader_gives_every_value_type_honours_the_alignment_and_reads_version_2() {
    let mut w = GgufWriter::new();
    let values = [
        ("u8", Value::U8(200)),
        ("i8", Value::I8(-3)),
        ("u16", Value::U16(60000)),
        ("i16", Value::I16(-30000)),
        ("u32", Value::U32(4_000_000_000)),
        ("i32", Value::I32(-2)),
        ("u64", Value::U64(1 << 40)),
        ("i64", Value::I64(-(1 << 40))),
        ("f32", Value::F32(1.5)),
        ("f64", Value::F64(-2.25)),
        ("bool", Value::Bool(true)),
        ("string", Value::String("héllo ✓".into())),
        ("strings", Value::Array(Array::String(vec!["a".into(), String::new(), "ü".into()]))),
        ("i32s", Value::Array(Array::I32(vec![1, -1, 3]))),
        ("f32s", Value::Array(Array::F32(vec![0.5, -0.25]))),
        ("nested", Value::Array(Array::Array(vec![Array::U8(vec![1, 2]), Array::Bool(vec![false])]))),
        ("general.alignment", Value::U32(64)),
    ];
    for (k, v) in &values {
        w.metadata(k, v.clone());
    }
    w.tensor("a", &[3], GgmlType::F32, encode_f32(&[1.0, 2.0, 3.0]));
    w.tensor("b", &[32, 2], GgmlType::Q8_0, vec![0u8; 68]);
    let mut bytes = w.to_bytes();
    let dir = tempfile::tempdir().unwrap();
    for version in [3u32, 2] {
        bytes[4..8].copy_from_slice(&version.to_le_bytes());
        let path = dir.path().join("v.gguf");
        std::fs::write(&path, &bytes).unwrap();
        let f = GgufFile::open(&path).unwrap();
        assert_eq!((f.version, f.alignment), (version, 64));
        for (k, v) in &values {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
        assert_eq!(f.usize("u32").unwrap(), Some(4_000_000_000));
        assert_eq!(f.f64("f32").unwrap(), Some(1.5));
        assert_eq!(f.str("string").unwrap(), Some("héllo ✓"));
        assert_eq!(f.bool("bool").unwrap(), Some(true));
        assert_eq!(f.strings("strings").unwrap().unwrap().len(), 3);
        assert_eq!(f.i32s("i32s").unwrap(), Some(&[1, -1, 3][..]));
        assert_eq!(f.f32s("f32s").unwrap(), Some(&[0.5, -0.25][..]));
        assert_eq!(f.usize("missing").unwrap(), None);
        let err = f.usize("i32").unwrap_err().to_string();
        assert!(err.contains("`i32` is int32 -2, expected a non-negative integer"), "{err}");
        let err = f.strings("i32s").unwrap_err().to_string();
        assert!(err.contains("`i32s` is array of int32"), "{err}");
        assert!(
            f.data_offset.is_multiple_of(64)
                && f.tensors.iter().all(|t| (t.offset - f.data_offset).is_multiple_of(64))
        );
        let b = f.tensor("b").unwrap();
        assert_eq!((b.dims.clone(), b.ty, b.n_elements, b.n_bytes), (vec![32, 2], GgmlType::Q8_0, 64, 68));
        assert_eq!(f.read_f32(f.tensor("a").unwrap()).unwrap(), vec![1.0, 2.0, 3.0]);
    }
}

/// A small valid Llama GGUF (F32) and its writer's parts, for the refusals below.
fn valid_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let model = random_llama(config(true, 2), 5);
    let bytes = llama_gguf::to_gguf_bytes(&model, GgmlType::F32).unwrap();
    let path = dir.join("ok.gguf");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// `bytes` with the first occurrence of `from` replaced by `to` (of the same length).
fn patched(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the pattern is in the file");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// The tensor info of `name`: the byte offset of its type field.
fn type_field(bytes: &[u8], name: &str) -> usize {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    at + 4 + 8 * n_dims
}

#[test]
fn the_command_line_refuses_bad_gguf_files_in_one_line_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, bytes) = valid_file(dir.path());
    let out = smallmind(&["info", "--model", ok.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gguf        version 3, 20 tensors") && stdout.contains("F32"), "{stdout}");

    let string_key = b"general.architecture";
    let mut long_string = (string_key.len() as u64).to_le_bytes().to_vec();
    long_string.extend_from_slice(string_key);
    long_string.extend_from_slice(&8u32.to_le_bytes());
    let value_len_at =
        bytes.windows(long_string.len()).position(|w| w == long_string).unwrap() + long_string.len();
    let mut string_past_end = bytes.clone();
    string_past_end[value_len_at..value_len_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());

    let mut unknown_type = bytes.clone();
    let at = type_field(&bytes, "blk.0.attn_q.weight");
    unknown_type[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    let mut iq2 = bytes.clone();
    iq2[at..at + 4].copy_from_slice(&20u32.to_le_bytes());
    let mut past_end = bytes.clone();
    let offset_at = type_field(&bytes, "output_norm.weight") + 4;
    past_end[offset_at..offset_at + 8]
        .copy_from_slice(&(bytes.len() as u64).next_multiple_of(32).to_le_bytes());

    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("truncated", bytes[..bytes.len() - 5].to_vec(), vec!["ends past the end of the data", "truncated"]),
        ("header.gguf", bytes[..10].to_vec(), vec!["too short for a GGUF header"]),
        ("magic", patched(&bytes, b"GGUF", b"GGUG"), vec!["starts with \"GGUG\", expected \"GGUF\""]),
        ("version", patched(&bytes, &[b'F', 3, 0, 0, 0], &[b'F', 1, 0, 0, 0]), vec!["version 1"]),
        (
            "string",
            string_past_end,
            vec!["the string value of `general.architecture`", "1099511627776 bytes long"],
        ),
        ("unknown_type", unknown_type, vec!["blk.0.attn_q.weight", "type id 99"]),
        ("iq4_nl", iq2, vec!["blk.0.attn_q.weight", "type IQ4_NL is not supported", "Q4_K"]),
        ("past_end", past_end, vec!["output_norm.weight", "ends past the end of the data"]),
        (
            "arch",
            patched(
                &bytes,
                b"\x05\x00\x00\x00\x00\x00\x00\x00llama",
                b"\x05\x00\x00\x00\x00\x00\x00\x00gemma",
            ),
            vec!["architecture `gemma` is not supported"],
        ),
    ];
    for (name, bad, needles) in cases {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, bad).unwrap();
        let model = path.to_str().unwrap();
        assert_usage_error(&smallmind(&["info", "--model", model]), &needles);
        let generate = ["generate", "--model", model, "--prompt-ids", "1,2", "--max-new-tokens", "2"];
        assert_usage_error(&smallmind(&generate), &needles);
    }
}

#[test]
fn refused_metadata_is_named_and_a_missing_named_model_names_the_fetch_command() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(true, 2);
    let mut w = GgufWriter::new();
    llama_metadata(&mut w, &c);
    w.metadata("llama.rope.scaling.type", Value::String("linear".into()));
    let model = random_llama(c.clone(), 1);
    let exported = llama_gguf::to_gguf_bytes(&model, GgmlType::F32).unwrap();
    let file = dir.path().join("e.gguf");
    std::fs::write(&file, &exported).unwrap();
    let f = GgufFile::open(&file).unwrap();
    for t in &f.tensors {
        w.tensor(&t.name, &t.dims, t.ty, f.tensor_bytes(t).to_vec());
    }
    let path = dir.path().join("scaled.gguf");
    std::fs::write(&path, w.to_bytes()).unwrap();
    let out = smallmind(&["info", "--model", path.to_str().unwrap()]);
    assert_usage_error(&out, &["`llama.rope.scaling.type` = \"linear\" is not supported"]);

    let empty = dir.path().join("no-models");
    let out =
        smallmind_env(&["info", "--model", "smollm2-135m"], &[("SMALLMIND_MODELS", empty.to_str().unwrap())]);
    assert_usage_error(&out, &["smollm2-135m", "cargo xtask models fetch smollm2-135m"]);
}

#[test]
fn export_format_gguf_runs_as_the_preset_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for preset in ["llama-tiny", "llama-tiny-gqa"] {
        for dtype in ["f32", "f16"] {
            let path = dir.path().join(format!("{preset}-{dtype}.gguf"));
            let out = path.to_str().unwrap();
            let export =
                smallmind(&["export", "--model", preset, "--format", "gguf", "--dtype", dtype, "--out", out]);
            assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
            let ids = |model: &str| -> serde_json::Value {
                let args = [
                    "generate",
                    "--model",
                    model,
                    "--prompt-ids",
                    "1,5,9",
                    "--max-new-tokens",
                    "12",
                    "--json",
                ];
                let run = smallmind(&args);
                assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
                let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
                json["generated_ids"].clone()
            };
            // F16 rounds the weights: the same greedy tokens are expected of these small models,
            // not guaranteed; F32 is the same model.
            if dtype == "f32" {
                assert_eq!(ids(out), ids(preset), "{preset}: the exported GGUF generates other tokens");
            } else {
                assert!(ids(out).as_array().is_some_and(|a| a.len() == 12), "{preset} f16");
            }
        }
    }
    let gpt2 = smallmind(&["export", "--model", "tiny", "--format", "gguf", "--out", "/tmp/never.gguf"]);
    assert_usage_error(&gpt2, &["holds Llama models"]);
}
