//! Hugging Face GPT-2 directories: export -> load round trips, and clear errors for broken files.

mod common;

use common::*;
use safetensors::Dtype;
use smallmind::models::checkpoint;
use smallmind::models::gpt2;
use smallmind::models::model_dir::CONFIG_FILE;
use smallmind::models::presets::random_model;
use smallmind::models::safetensors_io::WEIGHTS_FILE;
use smallmind::tokenizer::Tokenizer;
use smallmind::{Error, Gpt2, Optimizations};
use std::path::Path;

fn logits_of(model: &Gpt2, prompt: &[u32]) -> Vec<Vec<f32>> {
    greedy_run(model, Optimizations::all(), 1, prompt, 6).logits
}

#[test]
fn f32_export_then_load_gives_identical_logits() {
    for model in [preset("smallmind-bench"), odd_model()] {
        let dir = tempfile::tempdir().unwrap();
        gpt2::hf::export_dir(&model, Some(&Tokenizer::Bytes), dir.path(), Dtype::F32).unwrap();
        let loaded = gpt2::hf::load_dir(dir.path()).unwrap().0;
        assert_eq!(loaded, model);
        let prompt = synthetic_prompt(5, model.config.vocab_size, 1);
        assert_eq!(logits_of(&loaded, &prompt), logits_of(&model, &prompt));
    }
}

#[test]
fn f16_and_bf16_exports_load_as_the_rounded_weights() {
    let model = preset("tiny");
    for (dtype, round) in [
        (Dtype::F16, (|v: f32| half::f16::from_f32(v).to_f32()) as fn(f32) -> f32),
        (Dtype::BF16, |v: f32| half::bf16::from_f32(v).to_f32()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        gpt2::hf::export_dir(&model, Some(&Tokenizer::Bytes), dir.path(), dtype).unwrap();
        let loaded = gpt2::hf::load_dir(dir.path()).unwrap().0;
        let tensors: Vec<_> = model.tensors().collect();
        let rounded = Gpt2::from_tensors(model.config.clone(), |spec| {
            let (_, data) = tensors.iter().find(|(s, _)| s == spec).unwrap();
            Ok::<_, ()>(data.iter().map(|&v| round(v)).collect())
        })
        .unwrap();
        assert_eq!(loaded, rounded, "{dtype:?}");
        let prompt = synthetic_prompt(5, 256, 2);
        assert_eq!(logits_of(&loaded, &prompt), logits_of(&rounded, &prompt), "{dtype:?}");
    }
}

#[test]
fn presets_round_trip_through_the_cli_loader_with_their_tokenizer() {
    let chars_preset = smallmind::models::presets::find("smallmind-bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    gpt2::hf::export_dir(&preset("smallmind-bench"), Some(&chars_preset.tokenizer()), dir.path(), Dtype::F32)
        .unwrap();
    let loaded = checkpoint::load(dir.path().to_str().unwrap(), None).unwrap();
    assert_eq!(loaded.tokenizer.as_ref().unwrap().kind(), "chars(50)");
    assert_eq!(
        loaded.tokenizer.as_ref().unwrap().encode("Hello").unwrap(),
        chars_preset.tokenizer().encode("Hello").unwrap()
    );
}

/// Writes a checkpoint whose tensors carry Hugging Face's `transformer.` prefix and an extra
/// tensor we do not use (GPT2LMHeadModel's layout).
#[test]
fn transformer_prefixed_names_load_too() {
    let model = odd_model();
    let tensors: Vec<_> = model.tensors().collect();
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((spec, _), b)| {
            let name = if spec.name == "lm_head.weight" {
                spec.name.clone()
            } else {
                format!("transformer.{}", spec.name)
            };
            (name, safetensors::tensor::TensorView::new(Dtype::F32, spec.shape.clone(), b).unwrap())
        })
        .collect();
    let unused = vec![0u8; 4 * 4];
    views.push((
        "transformer.h.0.attn.bias".into(),
        safetensors::tensor::TensorView::new(Dtype::F32, vec![2, 2], &unused).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(WEIGHTS_FILE), safetensors::serialize(views, None).unwrap()).unwrap();
    std::fs::write(dir.path().join(CONFIG_FILE), gpt2::hf::config_json(&model.config)).unwrap();
    assert_eq!(gpt2::hf::load_dir(dir.path()).unwrap().0, model);
}

fn exported(model: &Gpt2) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    gpt2::hf::export_dir(model, Some(&Tokenizer::Bytes), dir.path(), Dtype::F32).unwrap();
    dir
}

/// Rewrites the weights file of `dir` with `edit` applied to its tensor list.
fn rewrite(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = exported(&odd_model());
    rewrite(dir.path(), |t| t.retain(|(n, _, _)| n != "h.1.mlp.c_fc.bias"));
    let err = gpt2::hf::load_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::MissingTensor { name, .. } if name == "h.1.mlp.c_fc.bias"), "{err}");
    assert!(err.to_string().contains("tensor `h.1.mlp.c_fc.bias` is missing"), "{err}");
}

#[test]
fn a_wrong_shape_names_the_tensor_and_both_shapes() {
    let dir = exported(&odd_model());
    rewrite(dir.path(), |t| {
        let c_attn = t.iter_mut().find(|(n, _, _)| n == "h.0.attn.c_attn.weight").unwrap();
        c_attn.1 = vec![180, 60]; // transposed: PyTorch Linear layout instead of Conv1D
    });
    let err = gpt2::hf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("`h.0.attn.c_attn.weight` has shape [180, 60], expected [60, 180]"), "{err}");
}

#[test]
fn a_truncated_file_is_reported_as_such() {
    let dir = exported(&odd_model());
    let path = dir.path().join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = gpt2::hf::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("not a valid safetensors file (truncated or corrupt?)"), "{err}");
}

#[test]
fn a_config_with_indivisible_heads_is_rejected() {
    let dir = exported(&odd_model());
    let path = dir.path().join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).unwrap().replace("\"n_head\": 3", "\"n_head\": 7");
    std::fs::write(&path, text).unwrap();
    let err = gpt2::hf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("n_embd (60) is not divisible by n_head (7)"), "{err}");
}

#[test]
fn random_models_of_any_valid_shape_export() {
    let mut config = odd_model().config;
    config.tie_word_embeddings = true;
    let model = random_model(config, 3);
    let dir = exported(&model);
    assert_eq!(gpt2::hf::load_dir(dir.path()).unwrap().0, model);
}

/// A directory with a `tokenizer.json` uses it (here a word-level one made in the test).
#[test]
fn a_tokenizer_json_in_the_directory_is_used() {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let model = odd_model();
    let dir = exported(&model);
    let vocab = [("<unk>", 0), ("once", 5), ("upon", 9), ("a", 1), ("time", 96)]
        .into_iter()
        .map(|(w, id)| (w.to_string(), id))
        .collect();
    let word_level = WordLevel::builder().vocab(vocab).unk_token("<unk>".into()).build().unwrap();
    let mut tokenizer = tokenizers::Tokenizer::new(word_level);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    tokenizer.save(dir.path().join("tokenizer.json"), false).unwrap();

    let loaded = checkpoint::load(dir.path().to_str().unwrap(), None).unwrap();
    assert_eq!(loaded.tokenizer.as_ref().unwrap().kind(), "tokenizer.json");
    assert_eq!(loaded.tokenizer.as_ref().unwrap().encode("once upon a time").unwrap(), [5, 9, 1, 96]);
    assert_eq!(loaded.tokenizer.as_ref().unwrap().decode(&[5, 96]), "once time");
}
