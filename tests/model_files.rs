//! Model files as other tools leave them: tokenizers in formats smallmind does not read, a
//! tokenizer carried through `export`, an export over another model's files, ambiguous tensor
//! names, a file given where a directory is expected. Each was found silently wrong (exit 0,
//! wrong ids) by a review of issue 16; each now gives the right output or one line.

mod common;

use common::*;
use smallmind::models::{checkpoint, gpt2};
use std::path::Path;

fn gpt2_dir(model: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = smallmind(&["export", "--model", model, "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A word-level `tokenizer.json` of 256 words `w0`..`w255`.
fn write_word_tokenizer(dir: &Path) {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let vocab = (0..256u32).map(|i| (format!("w{i}"), i)).collect();
    let model = WordLevel::builder().vocab(vocab).unk_token("w0".into()).build().unwrap();
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
}

/// GPT-2's slow-tokenizer files without `tokenizer.json`: not bytes. The model runs on ids and
/// a warning says which files were not read.
#[test]
fn vocab_json_and_merges_txt_are_not_taken_for_bytes() {
    let dir = gpt2_dir("tiny");
    std::fs::write(dir.path().join("vocab.json"), "{\"!\": 0}").unwrap();
    std::fs::write(dir.path().join("merges.txt"), "#version: 0.2\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let out = smallmind(&["generate", "--model", d, "--prompt", "hello"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("warning: ") && err.contains("not vocab.json or merges.txt"), "{err}");
    assert!(err.contains("has no tokenizer") && err.contains("--prompt-ids"), "{err}");
    let out =
        smallmind(&["generate", "--model", d, "--prompt-ids", "1,2", "--max-new-tokens", "3", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `export` writes the model's `tokenizer.json`, and refuses a directory that holds another
/// model's tokenizer files (they would be loaded with the new weights), writing nothing.
#[test]
fn export_carries_the_tokenizer_and_never_mixes_two_models() {
    let src = gpt2_dir("tiny");
    write_word_tokenizer(src.path());
    let out_dir = src.path().join("exported");
    let out =
        smallmind(&["export", "--model", src.path().to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let loaded = checkpoint::load(out_dir.to_str().unwrap(), None).unwrap();
    assert_eq!(loaded.tokenizer.unwrap().encode("w1 w3 w5").unwrap(), [1, 3, 5]);

    // smallmind-bench leaves its character vocabulary; tiny (bytes) over it is refused.
    let mixed = gpt2_dir("smallmind-bench");
    let config_before = std::fs::read(mixed.path().join("config.json")).unwrap();
    let out = smallmind(&["export", "--model", "tiny", "--out", mixed.path().to_str().unwrap()]);
    assert_usage_error(
        &out,
        &["already holds smallmind_chars.json of another model", "new or empty directory"],
    );
    assert_eq!(std::fs::read(mixed.path().join("config.json")).unwrap(), config_before, "nothing written");

    // llama2.c: a tokenizer.bin already beside the checkpoint, and this model has none to
    // replace it with; a --tokenizer-out in a missing directory. Both refused before writing.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("model.bin");
    let export = |args: &[&str]| {
        smallmind(&[&["export", "--format", "llama2c", "--out", bin.to_str().unwrap()], args].concat())
    };
    assert!(export(&["--model", "llama-tiny"]).status.success());
    let no_tokenizer = tempfile::tempdir().unwrap();
    let hf = no_tokenizer.path().join("hf");
    let out = smallmind(&["export", "--model", "llama-tiny-gqa", "--out", hf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(hf.join("tokenizer.bin")).unwrap();
    let before = std::fs::read(&bin).unwrap();
    assert_usage_error(
        &export(&["--model", hf.to_str().unwrap()]),
        &["holds a tokenizer.bin of another model"],
    );
    assert_eq!(std::fs::read(&bin).unwrap(), before);
    // A missing folder is made (as `mkdir -p`); a folder where the tokenizer's file should go is
    // refused before the checkpoint is written.
    let other = dir.path().join("other.bin");
    let export_to = |tokenizer_out: &Path| {
        smallmind(&[
            "export",
            "--model",
            "llama-tiny",
            "--format",
            "llama2c",
            "--out",
            other.to_str().unwrap(),
            "--tokenizer-out",
            tokenizer_out.to_str().unwrap(),
        ])
    };
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    assert_usage_error(&export_to(&taken), &["taken", "is a directory"]);
    assert!(!other.exists(), "the checkpoint was written before the tokenizer's destination was checked");
    let missing = dir.path().join("nodir/tok.bin");
    let out = export_to(&missing);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(missing.is_file() && other.is_file());
}

/// `wte.weight` and `transformer.wte.weight` both stored: which one a loader reads is a guess.
#[test]
fn a_tensor_stored_under_both_names_is_refused() {
    let model = preset("tiny");
    let dir = gpt2_dir("tiny");
    let mut tensors: Vec<_> = model.tensors().collect();
    let wte = tensors[0].clone();
    tensors.push((
        smallmind::models::safetensors_io::TensorSpec { name: "transformer.wte.weight".into(), ..wte.0 },
        wte.1,
    ));
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((s, _), b)| {
            (
                s.name.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.shape.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(dir.path().join("model.safetensors"), safetensors::serialize(views, None).unwrap())
        .unwrap();
    let out = smallmind(&["info", "--model", dir.path().to_str().unwrap()]);
    assert_usage_error(&out, &["both `wte.weight` and `transformer.wte.weight` are stored"]);
}

/// bf16 holds magnitudes up to ~3.39e38: beyond, a finite weight would become inf.
#[test]
fn export_refuses_a_weight_bf16_cannot_hold() {
    let mut model = preset("tiny");
    model.ln_f.bias[2] = 3.4e38;
    let dir = tempfile::tempdir().unwrap();
    let err =
        gpt2::hf::export_dir(&model, None, dir.path(), safetensors::Dtype::BF16).unwrap_err().to_string();
    assert!(
        err.contains("as bf16: tensor `ln_f.bias` holds")
            && err.contains("index 2")
            && err.contains("export as f32"),
        "{err}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
}

/// A file given where a model directory is expected, and a sharded directory, get a line that
/// says what they are.
#[test]
fn files_that_are_not_models_say_what_they_are() {
    let dir = gpt2_dir("tiny");
    for file in ["config.json", "model.safetensors"] {
        let path = dir.path().join(file);
        let out = smallmind(&["info", "--model", path.to_str().unwrap()]);
        assert_usage_error(&out, &["not a llama2.c checkpoint", "give the Hugging Face model's directory"]);
    }
    std::fs::rename(
        dir.path().join("model.safetensors"),
        dir.path().join("model-00001-of-00002.safetensors"),
    )
    .unwrap();
    std::fs::write(dir.path().join("model.safetensors.index.json"), "{}").unwrap();
    let out = smallmind(&["info", "--model", dir.path().to_str().unwrap()]);
    assert_usage_error(&out, &["a sharded checkpoint", "one model.safetensors"]);
}

/// clap's errors are one line too, and a negative temperature reaches the range check; an
/// unwritable --logits-out is refused before generating anything.
#[test]
fn command_line_mistakes_are_one_line() {
    assert_usage_error(
        &smallmind(&["generate", "--model", "tiny", "--top-k=-1"]),
        &["--top-k", "(see --help)"],
    );
    assert_usage_error(
        &smallmind(&["export", "--model", "tiny", "--format", "onnx", "--out", "x"]),
        &["possible values: hf, llama2c, gguf"],
    );
    assert_usage_error(
        &smallmind(&["generate", "--model", "tiny", "--prompt", "a", "--temperature", "-1"]),
        &["temperature must be a number >= 0"],
    );
    let out =
        smallmind(&["generate", "--model", "tiny", "--prompt", "a", "--logits-out", "/nonexistent/l.json"]);
    assert_usage_error(&out, &["--logits-out", "is not a directory"]);
    assert!(out.stdout.is_empty(), "nothing was generated");
}

/// A tokenizer.json smaller than the model's vocabulary: a warning at load, and generated ids
/// it lacks show as U+FFFD instead of vanishing from the text.
#[test]
fn a_tokenizer_of_another_size_is_said_and_its_unknown_ids_show() {
    use tokenizers::models::wordlevel::WordLevel;
    let dir = gpt2_dir("tiny");
    let vocab = (0..13u32).map(|i| (format!("w{i}"), i)).collect();
    let model = WordLevel::builder().vocab(vocab).unk_token("w0".into()).build().unwrap();
    tokenizers::Tokenizer::new(model).save(dir.path().join("tokenizer.json"), false).unwrap();
    let loaded = checkpoint::load(dir.path().to_str().unwrap(), None).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("tokenizer.json has 13 tokens and the model 256"),
        "{:?}",
        loaded.warnings
    );
    let text = loaded.tokenizer.unwrap().decode(&[1, 200, 2]);
    assert!(text.contains('\u{FFFD}') && text.contains("w1") && text.contains("w2"), "{text:?}");
}

/// A llama2.c checkpoint stops at `<s>` as llama2.c's `run` does, whether or not its
/// tokenizer.bin sits beside it (here `<s>` comes at the 61st token after prompt `1`).
#[test]
fn a_llama2c_checkpoint_stops_at_bos_with_or_without_its_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("model.bin");
    let out = smallmind(&[
        "export",
        "--model",
        "llama-tiny",
        "--format",
        "llama2c",
        "--out",
        bin.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = || {
        let out = smallmind(&[
            "generate",
            "--model",
            bin.to_str().unwrap(),
            "--prompt-ids",
            "1",
            "--max-new-tokens",
            "100",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["generated_ids"].as_array().unwrap().len()
    };
    assert_eq!(ids(), 61, "stops after generating <s>, with tokenizer.bin");
    std::fs::remove_file(dir.path().join("tokenizer.bin")).unwrap();
    assert_eq!(ids(), 61, "and without it");
}
