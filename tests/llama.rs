//! The Llama family's formats: Hugging Face and llama2.c layouts of the same weights, export ->
//! load round trips through the command line, the synthetic tokenizer, and bad checkpoints.

mod common;

use common::*;
use smallmind::kernels::rope::{self, RopeTable};
use smallmind::models::llama;
use smallmind::models::llama::llama2c::LlamaWeights;
use smallmind::tokenizer::Tokenizer;
use smallmind::{Llama, Optimizations};
use std::path::Path;

fn greedy(model: &Llama, prompt: &[u32]) -> Run {
    greedy_run(model, Optimizations::all(), 1, prompt, 12)
}

/// The same weights written as a Hugging Face directory (q and k rows permuted for rotate-half
/// RoPE) and as a llama2.c checkpoint load to the same model and give the same logits, for the
/// grouped-query shape (k has fewer heads than q).
#[test]
fn hugging_face_and_llama2c_layouts_of_the_same_weights_give_the_same_logits() {
    let model = llama_preset("llama-tiny-gqa");
    let dir = tempfile::tempdir().unwrap();
    llama::hf::export_dir(&model, None, dir.path(), safetensors::Dtype::F32).unwrap();
    let from_hf = llama::hf::load_dir(dir.path()).unwrap().0;
    let from_bin =
        Llama::from_weights(LlamaWeights::parse(&model.to_weights().to_bytes().unwrap()).unwrap()).unwrap();
    assert_eq!(from_hf, from_bin);
    let prompt = synthetic_prompt(20, 512, 9);
    let (a, b) = (greedy(&from_hf, &prompt), greedy(&from_bin, &prompt));
    assert_eq!(a.ids, b.ids);
    assert_eq!(a.logits, b.logits);
    assert_eq!(a.ids, greedy(&model, &prompt).ids);

    // Independently of our loader: the file's own q_proj with Hugging Face's rotate-half RoPE
    // gives the rotated query our weights give with llama2.c's adjacent pairs.
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("model.layers.1.self_attn.k_proj.weight").unwrap();
    let k_hf: Vec<f32> =
        view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let c = &model.config;
    let (hs, d, kv_heads) = (c.head_size(), c.dim, c.n_kv_heads);
    assert_ne!(k_hf[..], model.layers[1].attn.wk.weight[..], "Hugging Face stores k permuted");
    let x: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
    let project = |w: &[f32]| -> Vec<f32> {
        w.chunks_exact(d).map(|r| r.iter().zip(&x).map(|(a, b)| a * b).sum()).collect()
    };
    let pos = 17;
    let mut theirs = project(&k_hf);
    rope::rope_rotate_half_naive(&mut theirs, 1, kv_heads * hs, kv_heads, hs, pos, 10000.0);
    let mut ours = project(&model.layers[1].attn.wk.weight);
    RopeTable::new(c.seq_len, hs, 10000.0).apply(&mut ours, 1, kv_heads * hs, kv_heads, pos);
    let theirs_in_our_order = rope::rotate_half_rows_to_adjacent_pairs(&theirs, kv_heads, hs, 1);
    for (a, b) in ours.iter().zip(&theirs_in_our_order) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

/// Hugging Face files in BF16 and F16 load as the weights rounded to those types.
#[test]
fn half_precision_hugging_face_files_load() {
    let model = llama_preset("llama-tiny");
    for (dtype, round) in [
        (safetensors::Dtype::BF16, (|v: f32| half::bf16::from_f32(v).to_f32()) as fn(f32) -> f32),
        (safetensors::Dtype::F16, |v: f32| half::f16::from_f32(v).to_f32()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        llama::hf::export_dir(&model, None, dir.path(), dtype).unwrap();
        let loaded = llama::hf::load_dir(dir.path()).unwrap().0;
        let rounded: Vec<f32> = model.layers[2].ffn.w2.weight.iter().map(|&v| round(v)).collect();
        assert_eq!(loaded.layers[2].ffn.w2.weight[..], rounded[..], "{dtype:?}");
        assert_eq!(loaded.config, model.config);
    }
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = smallmind(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn generate_json(model: &str, extra: &[&str]) -> serde_json::Value {
    let mut args =
        vec!["generate", "--model", model, "--prompt", "once upon a time", "--max-new-tokens", "10"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--json", "--threads", "1"]);
    run_json(&args)
}

/// The streamed llama2.c writer (export's, no copy of the weights) writes the bytes the
/// in-memory one does, with the classifier shared and apart.
#[test]
fn the_streamed_llama2c_checkpoint_is_the_in_memory_one() {
    for shared in [true, false] {
        let mut config = llama_preset("llama-tiny-gqa").config;
        config.shared_classifier = shared;
        let model = smallmind::models::presets::random_llama(config, 7);
        let mut streamed = Vec::new();
        model.write_llama2c(&mut streamed, Path::new("memory")).unwrap();
        assert_eq!(streamed, model.to_weights().to_bytes().unwrap(), "shared classifier: {shared}");
        assert_eq!(Llama::from_weights(LlamaWeights::parse(&streamed).unwrap()).unwrap(), model);
    }
}

/// `export --format llama2c` writes a checkpoint and a tokenizer.bin that generate exactly what
/// the preset generates, found beside the checkpoint or named with --tokenizer.
#[test]
fn llama2c_export_round_trips_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("model.bin");
    let bin_str = bin.to_str().unwrap();
    let out = smallmind(&["export", "--model", "llama-tiny", "--format", "llama2c", "--out", bin_str]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("tokenizer.bin").is_file(), "tokenizer.bin is written beside the checkpoint");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("--tokenizer"),
        "found where it is written: no note"
    );
    let want = generate_json("llama-tiny", &[]);
    let got = generate_json(bin_str, &[]);
    for field in ["prompt_ids", "generated_ids", "text"] {
        assert_eq!(got[field], want[field], "{field}");
    }
    // The prompt starts with <s> and merges into whole words.
    assert_eq!(want["prompt_ids"].as_array().unwrap().len(), 5);

    // --tokenizer-out elsewhere, and --tokenizer to find it.
    let other = tempfile::tempdir().unwrap();
    let (bin2, tok2) = (other.path().join("m.bin"), other.path().join("tok.bin"));
    let (bin2, tok2) = (bin2.to_str().unwrap(), tok2.to_str().unwrap());
    let out = smallmind(&[
        "export",
        "--model",
        "llama-tiny",
        "--format",
        "llama2c",
        "--out",
        bin2,
        "--tokenizer-out",
        tok2,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("pass `--tokenizer {tok2}`")), "export says how to find it: {stderr}");
    assert_eq!(generate_json(bin2, &["--tokenizer", tok2])["generated_ids"], want["generated_ids"]);
    assert_usage_error(
        &smallmind(&["generate", "--model", bin2, "--prompt", "a"]),
        &["no tokenizer", "--tokenizer"],
    );

    // A Hugging Face directory of the same model (tokenizer.bin inside) generates the same too.
    let hf = tempfile::tempdir().unwrap();
    let hf_dir = hf.path().to_str().unwrap();
    assert!(smallmind(&["export", "--model", "llama-tiny", "--out", hf_dir]).status.success());
    assert_eq!(generate_json(hf_dir, &[])["generated_ids"], want["generated_ids"]);
    let info = run_json(&["info", "--model", bin_str, "--json"]);
    assert_eq!(info["architecture"], "llama");
    assert_eq!(info["config"]["n_kv_heads"], 4);
}

/// Truncated or inconsistent checkpoints, a GPT-2 model in llama2.c's format, and a tokenizer
/// for the wrong model each give one clear line and exit code 2.
#[test]
fn bad_llama_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("model.bin");
    let bin_str = bin.to_str().unwrap();
    assert!(
        smallmind(&["export", "--model", "llama-tiny", "--format", "llama2c", "--out", bin_str])
            .status
            .success()
    );
    let bytes = std::fs::read(&bin).unwrap();

    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let tok = dir.path().join("tokenizer.bin");
    let tok = tok.to_str().unwrap();
    let truncated = write("truncated.bin", &bytes[..bytes.len() / 2]);
    assert_usage_error(
        &smallmind(&["generate", "--model", &truncated, "--tokenizer", tok, "--prompt", "a"]),
        &["truncated llama2.c checkpoint", "truncated.bin"],
    );
    let mut odd = bytes.clone();
    odd[12..16].copy_from_slice(&5i32.to_le_bytes()); // n_heads 5 does not divide dim 128
    let odd = write("odd.bin", &odd);
    assert_usage_error(&smallmind(&["info", "--model", &odd]), &["n_heads 5 does not divide dim 128"]);
    let tiny_header = write("header.bin", &bytes[..10]);
    assert_usage_error(&smallmind(&["info", "--model", &tiny_header]), &["not a llama2.c checkpoint"]);
    assert_usage_error(
        &smallmind(&["export", "--model", "tiny", "--format", "llama2c", "--out", "x.bin"]),
        &["llama2c", "GPT-2"],
    );
    // stories15m has 32000 tokens; llama-tiny's tokenizer.bin holds 512.
    assert_usage_error(
        &smallmind(&["generate", "--model", "stories15m", "--tokenizer", tok, "--prompt", "a"]),
        &["tokenizer.bin holds 512 tokens and the model has 32000"],
    );
    assert!(!Path::new("x.bin").exists());
}

/// The presets' synthetic tokenizer, checked against what llama2.c's encoding gives by hand:
/// `<s>`, then a space token, then characters merged by score into the longest word prefixes.
#[test]
fn synthetic_tokenizer_encodes_as_llama2c_would() {
    let preset = smallmind::models::presets::find("stories15m").unwrap();
    let Tokenizer::Llama2c(t) = preset.tokenizer() else { panic!("Llama presets use llama2.c's tokenizer") };
    assert_eq!(t.vocab.len(), 32000);
    let id = |s: &str| t.vocab.iter().position(|v| v == s.as_bytes()).unwrap() as u32;
    assert_eq!(t.encode("once upon a time", true), [1, id(" once"), id(" upon"), id(" a"), id(" time")]);
    // Two spaces: the first stays a lone space, the second starts " b" (no "  " token).
    assert_eq!(t.encode("a  b", false), [id(" a"), id(" "), id(" b")]);
    // A character outside the vocabulary falls back to its UTF-8 bytes, ids 3 + byte.
    assert_eq!(t.encode("é", true), [1, id(" "), 3 + 0xC3, 3 + 0xA9]);
    assert_eq!(t.decode(&t.encode("once upon a time é!", true)), "once upon a time é!");
}

/// `stop_tokens` end a generation right after one of them (the CLI sets llama2.c's `<s>`).
#[test]
fn generation_stops_after_the_stop_token() {
    use smallmind::{GenerateParams, SamplingParams, Session};
    let model = llama_preset("llama-tiny");
    let prompt = synthetic_prompt(4, 512, 3);
    let full = greedy(&model, &prompt).ids;
    let stop = full[5];
    let first = full.iter().position(|&id| id == stop).unwrap();
    let mut session = Session::new(&model, Optimizations::all(), 1).unwrap();
    let params =
        GenerateParams { max_new_tokens: 12, sampling: SamplingParams::greedy(), stop_tokens: vec![stop] };
    let out = session.generate(&prompt, &params, &mut |_, _| {}).unwrap();
    assert_eq!(out.generated_ids, full[..=first]);
}
