//! Every `config.json` key is read and used, known to change nothing, or refused by name; an
//! unknown key is reported on one warning line; RoPE settings are read in both of transformers'
//! layouts; GPT-2's attention-scale keys give transformers' logits; a Llama directory without a
//! tokenizer runs on ids. (Issue 16, part 1.)

mod common;

use common::*;
use serde_json::{Value, json};
use smallmind::models::config_keys::{self, Accepts, COMMON_KEYS, GPT2_KEYS, LLAMA_KEYS, Treatment};
use smallmind::models::model_dir::CONFIG_FILE;
use smallmind::models::{checkpoint, gpt2, llama};
use smallmind::{Gpt2, Llama, Model, Optimizations};
use std::path::Path;

/// The tolerance of an f32 forward pass against the f64 reference below, on logits of order 1.
const REFERENCE_TOLERANCE: f32 = 1e-4;

fn read_json(path: &Path) -> serde_json::Map<String, Value> {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Rewrites `dir/config.json` through `edit`.
fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join(CONFIG_FILE);
    let mut config = read_json(&path);
    edit(&mut config);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

fn gpt2_dir(model: &Gpt2) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    gpt2::hf::export_dir(model, None, dir.path(), safetensors::Dtype::F32).unwrap();
    dir
}

fn llama_dir(model: &Llama) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    llama::hf::export_dir(model, None, dir.path(), safetensors::Dtype::F32).unwrap();
    dir
}

/// The logits after `prompt`, as Hugging Face's `GPT2LMHeadModel` computes them (eager
/// attention, gelu_new), in f64: scores divided by sqrt(head_dim) when `scale_attn_weights`,
/// and by `layer_idx + 1` when `scale_attn_by_inverse_layer_idx`. Independent of the engine's
/// kernels: it reads only the model's weights.
fn gpt2_reference_logits(m: &Gpt2, prompt: &[u32]) -> Vec<f32> {
    let c = &m.config;
    let (d, t, hd) = (c.n_embd, prompt.len(), c.head_dim());
    let ln = |x: &[f64], w: &[f32], b: &[f32]| -> Vec<f64> {
        let mean = x.iter().sum::<f64>() / d as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + c.layer_norm_epsilon as f64).sqrt();
        (0..d).map(|i| (x[i] - mean) * inv * w[i] as f64 + b[i] as f64).collect()
    };
    let conv1d = |x: &[f64], w: &[f32], b: &[f32], n_out: usize| -> Vec<f64> {
        (0..n_out)
            .map(|j| {
                b[j] as f64 + x.iter().enumerate().map(|(i, v)| v * w[i * n_out + j] as f64).sum::<f64>()
            })
            .collect()
    };
    let gelu =
        |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
    let mut xs: Vec<Vec<f64>> = prompt
        .iter()
        .enumerate()
        .map(|(pos, &id)| (0..d).map(|i| (m.wte[id as usize * d + i] + m.wpe[pos * d + i]) as f64).collect())
        .collect();
    for (layer_idx, b) in m.h.iter().enumerate() {
        let qkv: Vec<Vec<f64>> = xs
            .iter()
            .map(|x| {
                conv1d(
                    &ln(x, &b.ln_1.weight, &b.ln_1.bias),
                    &b.attn.c_attn.conv1d_weight(),
                    &b.attn.c_attn.bias,
                    3 * d,
                )
            })
            .collect();
        for i in 0..t {
            let mut y = vec![0.0; d];
            for h in 0..c.n_head {
                let cols = h * hd..(h + 1) * hd;
                let mut scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        let mut s: f64 = cols.clone().map(|k| qkv[i][k] * qkv[j][d + k]).sum();
                        if c.scale_attn_weights {
                            s /= (hd as f64).sqrt();
                        }
                        if c.scale_attn_by_inverse_layer_idx {
                            s /= (layer_idx + 1) as f64;
                        }
                        s
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                scores.iter_mut().for_each(|s| *s = (*s - max).exp());
                let total: f64 = scores.iter().sum();
                for (j, p) in scores.iter().enumerate() {
                    for k in cols.clone() {
                        y[k] += p / total * qkv[j][2 * d + k];
                    }
                }
            }
            let attn = conv1d(&y, &b.attn.c_proj.conv1d_weight(), &b.attn.c_proj.bias, d);
            xs[i].iter_mut().zip(attn).for_each(|(x, a)| *x += a);
        }
        for x in xs.iter_mut() {
            let hidden: Vec<f64> = conv1d(
                &ln(x, &b.ln_2.weight, &b.ln_2.bias),
                &b.mlp.c_fc.conv1d_weight(),
                &b.mlp.c_fc.bias,
                c.n_inner,
            )
            .into_iter()
            .map(gelu)
            .collect();
            let out = conv1d(&hidden, &b.mlp.c_proj.conv1d_weight(), &b.mlp.c_proj.bias, d);
            x.iter_mut().zip(out).for_each(|(x, o)| *x += o);
        }
    }
    let last = ln(&xs[t - 1], &m.ln_f.weight, &m.ln_f.bias);
    let head = m.lm_head.as_deref().unwrap_or(&m.wte);
    head.chunks_exact(d)
        .map(|row| row.iter().zip(&last).map(|(w, x)| *w as f64 * x).sum::<f64>() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The first step's logits of a greedy run of the model loaded from `dir`.
fn first_logits(dir: &Path, prompt: &[u32]) -> (Model, Vec<f32>) {
    let loaded = checkpoint::load(dir.to_str().unwrap(), None).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let run = greedy_run(&loaded.model, Optimizations::all(), 1, prompt, 1);
    (loaded.model, run.logits[0].clone())
}

#[test]
fn gpt2_attention_scale_keys_give_transformers_logits() {
    let plain = odd_model();
    let prompt = [5, 17, 42, 3, 9, 33];
    let dir = gpt2_dir(&plain);
    let (_, unscaled) = first_logits(dir.path(), &prompt);
    // The reference itself agrees with the engine where nothing is new.
    assert!(max_diff(&unscaled, &gpt2_reference_logits(&plain, &prompt)) < REFERENCE_TOLERANCE);
    for (key, value) in [("scale_attn_by_inverse_layer_idx", true), ("scale_attn_weights", false)] {
        edit_config(dir.path(), |c| {
            c.insert("scale_attn_by_inverse_layer_idx".into(), json!(false));
            c.insert("scale_attn_weights".into(), json!(true));
            c.insert(key.into(), json!(value));
        });
        let (model, logits) = first_logits(dir.path(), &prompt);
        let Model::Gpt2(model) = model else { panic!("a GPT-2 directory") };
        let want = gpt2_reference_logits(&model, &prompt);
        let diff = max_diff(&logits, &want);
        assert!(diff < REFERENCE_TOLERANCE, "{key} = {value}: logits differ from transformers' by {diff}");
        // Ignoring the key would have been visible: the old output was this far off.
        assert!(max_diff(&unscaled, &want) > 1e-2, "{key} = {value} changes nothing on this model");
    }
}

/// RoPE's base in both of transformers' layouts, with its precedence: a non-empty
/// `rope_scaling` replaces `rope_parameters`; the object's `rope_theta` wins over the top-level
/// one; 10000 when neither says.
#[test]
fn rope_settings_are_read_in_both_layouts_with_transformers_precedence() {
    let model = llama_preset("llama-tiny");
    let dir = llama_dir(&model);
    let cases = [
        (json!({"rope_parameters": {"rope_type": "default", "rope_theta": 50000.0}}), 50000.0),
        (json!({"rope_theta": 50000.0}), 50000.0),
        (json!({}), 10000.0),
        (
            json!({"rope_theta": 50000.0, "rope_parameters": {"rope_type": "default", "rope_theta": 20000.0}}),
            20000.0,
        ),
        (json!({"rope_theta": 50000.0, "rope_parameters": {"rope_type": "default"}}), 50000.0),
        (
            json!({"rope_scaling": {"type": "default", "rope_theta": 30000.0}, "rope_parameters": {"rope_theta": 20000.0}}),
            30000.0,
        ),
        (json!({"rope_scaling": null, "rope_parameters": {"rope_theta": 20000.0}}), 20000.0),
        (json!({"rope_scaling": {}, "rope_parameters": {"rope_theta": 20000.0}}), 20000.0),
        (
            json!({"rope_parameters": {"rope_type": "default", "rope_theta": 40000, "partial_rotary_factor": 1.0}}),
            40000.0,
        ),
    ];
    for (keys, theta) in cases {
        edit_config(dir.path(), |c| {
            c.remove("rope_theta");
            c.extend(keys.as_object().unwrap().clone());
        });
        let (config, warnings) = llama::hf::read_config(&dir.path().join(CONFIG_FILE)).unwrap();
        assert_eq!(config.rope_theta, theta, "{keys}");
        assert!(warnings.is_empty(), "{keys}: {warnings:?}");
        edit_config(dir.path(), |c| {
            for key in ["rope_theta", "rope_parameters", "rope_scaling"] {
                c.remove(key);
            }
        });
    }
}

/// The transformers-5 case: a Llama directory saved with `rope_parameters.rope_theta` 50000 gives
/// the logits of the same weights run with base 50000, not 10000.
#[test]
fn a_transformers_5_llama_runs_with_its_rope_base() {
    let model = llama_preset("llama-tiny");
    let dir = llama_dir(&model);
    edit_config(dir.path(), |c| {
        c.remove("rope_theta");
        c.insert("rope_parameters".into(), json!({"rope_type": "default", "rope_theta": 50000.0}));
        c.insert("dtype".into(), json!("float32"));
        c.insert("transformers_version".into(), json!("5.0.0"));
    });
    let mut weights = model.to_weights();
    weights.config.rope_theta = 50000.0;
    let want = Llama::from_weights(weights).unwrap();
    let prompt = synthetic_prompt(12, 512, 4);
    let (loaded, logits) = first_logits(dir.path(), &prompt);
    let Model::Llama(loaded) = loaded else { panic!("a Llama directory") };
    assert_eq!(loaded.config.rope_theta, 50000.0);
    let want_logits = greedy_run(&want, Optimizations::all(), 1, &prompt, 1).logits[0].clone();
    assert_eq!(logits, want_logits);
    let at_10k = greedy_run(&model, Optimizations::all(), 1, &prompt, 1).logits[0].clone();
    assert!(max_diff(&logits, &at_10k) > 1e-2, "the base changes nothing on this model");
}

/// A value the key's predicate rejects, for a refusal test.
fn rejected_value(accepts: fn(&Value) -> bool) -> Value {
    [json!(true), json!({"bits": 4}), json!("relu"), json!(7)]
        .into_iter()
        .find(|v| !accepts(v))
        .expect("some value is refused")
}

/// Every key a table refuses (or restricts) gives exit 2 and one line naming it.
#[test]
fn every_refused_value_is_named_with_exit_2() {
    let gpt2 = gpt2_dir(&preset("tiny"));
    let llama = llama_dir(&llama_preset("llama-tiny"));
    for (dir, table) in
        [(&gpt2, GPT2_KEYS), (&llama, LLAMA_KEYS), (&gpt2, COMMON_KEYS), (&llama, COMMON_KEYS)]
    {
        let original = std::fs::read(dir.path().join(CONFIG_FILE)).unwrap();
        for key in table {
            let Accepts::Only(_, accepts) = key.accepts else { continue };
            if key.name == "model_type" {
                continue; // decides which reader runs: below.
            }
            let value = rejected_value(accepts);
            edit_config(dir.path(), |c| {
                c.insert(key.name.into(), value.clone());
            });
            let out = smallmind(&["info", "--model", dir.path().to_str().unwrap()]);
            assert_usage_error(&out, &[&format!("`{}`", key.name), "not supported"]);
            std::fs::write(dir.path().join(CONFIG_FILE), &original).unwrap();
        }
    }
    edit_config(gpt2.path(), |c| {
        c.insert("model_type".into(), json!("gpt_neox"));
    });
    assert_usage_error(
        &smallmind(&["info", "--model", gpt2.path().to_str().unwrap()]),
        &["`model_type`", "gpt_neox"],
    );
    // RoPE variants are refused by name, in either layout, and so is a head_dim that is not
    // hidden_size / num_attention_heads.
    let refused = [
        (json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}), "llama3"),
        (json!({"rope_scaling": {"type": "linear", "factor": 2.0}}), "linear"),
        (json!({"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0}}), "yarn"),
        (json!({"rope_parameters": {"rope_type": "dynamic"}}), "dynamic"),
        (json!({"rope_parameters": {"rope_type": "longrope"}}), "longrope"),
        (
            json!({"rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}}),
            "partial_rotary_factor",
        ),
        (json!({"rope_parameters": "default"}), "must be an object"),
        (json!({"head_dim": 3}), "head_dim"),
    ];
    let original = std::fs::read(llama.path().join(CONFIG_FILE)).unwrap();
    for (keys, needle) in refused {
        edit_config(llama.path(), |c| c.extend(keys.as_object().unwrap().clone()));
        assert_usage_error(&smallmind(&["info", "--model", llama.path().to_str().unwrap()]), &[needle]);
        std::fs::write(llama.path().join(CONFIG_FILE), &original).unwrap();
    }
}

/// Keys no table knows are named on one warning line, and the run goes on; the key sets of
/// real Hugging Face files (gpt2, TinyLlama, a transformers 5 Llama) give no warning at all.
#[test]
fn unknown_keys_are_named_on_one_warning_line_and_real_files_give_none() {
    let gpt2 = gpt2_dir(&preset("tiny"));
    let gpt2_hub = json!({
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "resid_pdrop": 0.1,
        "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
        "summary_type": "cls_index", "summary_use_proj": true,
        "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
        "n_inner": null, "reorder_and_upcast_attn": false, "scale_attn_by_inverse_layer_idx": false,
        "scale_attn_weights": true, "use_cache": true, "transformers_version": "4.46.0", "torch_dtype": "float32"
    });
    edit_config(gpt2.path(), |c| c.extend(gpt2_hub.as_object().unwrap().clone()));
    let quiet = smallmind(&["info", "--model", gpt2.path().to_str().unwrap()]);
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));

    let llama = llama_dir(&llama_preset("llama-tiny"));
    let tinyllama = json!({
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "initializer_range": 0.02,
        "model_type": "llama", "pretraining_tp": 1, "rope_scaling": null, "mlp_bias": false,
        "head_dim": null, "torch_dtype": "bfloat16", "transformers_version": "4.35.0", "use_cache": true,
        "dtype": "float32", "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}
    });
    edit_config(llama.path(), |c| c.extend(tinyllama.as_object().unwrap().clone()));
    let quiet = smallmind(&["info", "--model", llama.path().to_str().unwrap()]);
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));

    for dir in [&gpt2, &llama] {
        edit_config(dir.path(), |c| {
            c.insert("sliding_window".into(), json!(4096));
            c.insert("new_in_transformers_6".into(), json!(true));
        });
        let out = smallmind(&["info", "--model", dir.path().to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("warning: ") && stderr.contains("`new_in_transformers_6`, `sliding_window`"),
            "{stderr}"
        );
    }
    // A key inside the RoPE object is named with its object.
    edit_config(llama.path(), |c| {
        c.insert(
            "rope_parameters".into(),
            json!({"rope_type": "default", "rope_theta": 10000.0, "mscale": 1.0}),
        );
    });
    let (_, warnings) = llama::hf::read_config(&llama.path().join(CONFIG_FILE)).unwrap();
    assert!(warnings[0].contains("`rope_parameters.mscale`"), "{warnings:?}");
}

/// The tensors older transformers versions saved beside GPT-2's weights (`transformer.`
/// prefix, causal-mask buffers, a tied `lm_head.weight`) load silently to the same model; a
/// tensor nobody reads is named; a tied `lm_head.weight` that differs from `wte` is named.
#[test]
fn tensors_smallmind_does_not_read_are_named() {
    let model = preset("tiny");
    let dir = gpt2_dir(&model);
    let c = &model.config;
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = model
        .tensors()
        .map(|(spec, data)| (format!("transformer.{}", spec.name), spec.shape, data.to_vec()))
        .collect();
    let mask: Vec<f32> = (0..c.n_ctx * c.n_ctx).map(|i| f32::from(i % c.n_ctx <= i / c.n_ctx)).collect();
    for i in 0..c.n_layer {
        tensors.push((format!("transformer.h.{i}.attn.bias"), vec![1, 1, c.n_ctx, c.n_ctx], mask.clone()));
        tensors.push((format!("transformer.h.{i}.attn.masked_bias"), vec![], vec![-1e4]));
    }
    tensors.push(("lm_head.weight".into(), vec![c.vocab_size, c.n_embd], model.wte.clone()));
    let write = |tensors: &[(String, Vec<usize>, Vec<f32>)]| {
        let bytes: Vec<Vec<u8>> =
            tensors.iter().map(|(_, _, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .zip(&bytes)
            .map(|((name, shape, _), b)| {
                (
                    name.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b).unwrap(),
                )
            })
            .collect();
        std::fs::write(dir.path().join("model.safetensors"), safetensors::serialize(views, None).unwrap())
            .unwrap();
    };
    write(&tensors);
    let loaded = checkpoint::load(dir.path().to_str().unwrap(), None).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.model, Model::Gpt2(model.clone()));

    let last = tensors.len() - 1;
    tensors[last].2[0] += 1.0; // lm_head.weight no longer equals wte
    tensors.push(("transformer.h.0.attn.rotary".into(), vec![2], vec![1.0, 2.0]));
    write(&tensors);
    let loaded = checkpoint::load(dir.path().to_str().unwrap(), None).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("did not read 2 tensor(s)")
            && loaded.warnings[0].contains("`lm_head.weight`, `transformer.h.0.attn.rotary`"),
        "{:?}",
        loaded.warnings
    );
}

/// A Hugging Face Llama directory with no tokenizer runs on ids: the ids are the output, and
/// text is asked for only when there is a tokenizer to give it.
#[test]
fn a_llama_directory_without_a_tokenizer_runs_on_prompt_ids() {
    let model = llama_preset("llama-tiny");
    let dir = llama_dir(&model);
    let tokenizer_bin = dir.path().join("tokenizer.bin");
    if tokenizer_bin.exists() {
        std::fs::remove_file(tokenizer_bin).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let want = greedy_run(&model, Optimizations::all(), 1, &[1, 2, 3], 5).ids;
    let args = ["generate", "--model", d, "--prompt-ids", "1,2,3", "--max-new-tokens", "5", "--threads", "1"];
    let out = smallmind(&[&args[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["generated_ids"], json!(want));
    assert_eq!(v["text"], Value::Null);
    let out = smallmind(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<String> = want.iter().map(u32::to_string).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("1 2 3 {}", ids.join(" ")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tokenizer: token ids shown"));
    let info = smallmind(&["info", "--model", d]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("tokenizer   none (token ids only)"));
    assert_usage_error(
        &smallmind(&["generate", "--model", d, "--prompt", "Once"]),
        &["no tokenizer", "--prompt-ids"],
    );
    assert_usage_error(
        &smallmind(&[
            "bench",
            "--model",
            d,
            "--prompt",
            "Once",
            "--out",
            dir.path().join("r.json").to_str().unwrap(),
        ]),
        &["no tokenizer", "--prompt-tokens"],
    );
}

/// docs/model-files.md holds the tables of every key, rendered from the code's tables; with
/// `SMALLMIND_BLESS=1` this test writes them.
#[test]
fn docs_list_every_config_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/model-files.md");
    let mut doc = std::fs::read_to_string(&path).unwrap();
    for (name, table) in [("common", COMMON_KEYS), ("gpt2", GPT2_KEYS), ("llama", LLAMA_KEYS)] {
        let (open, close) =
            (format!("<!-- config-keys:{name} -->\n"), format!("<!-- /config-keys:{name} -->"));
        let start =
            doc.find(&open).unwrap_or_else(|| panic!("docs/model-files.md has no {open}")) + open.len();
        let end =
            doc[start..].find(&close).unwrap_or_else(|| panic!("docs/model-files.md has no {close}")) + start;
        let want = config_keys::markdown_table(&[table]);
        if doc[start..end] != want {
            assert!(
                std::env::var_os("SMALLMIND_BLESS").is_some(),
                "docs/model-files.md's {name} table is stale: run this test with SMALLMIND_BLESS=1"
            );
            doc.replace_range(start..end, &want);
            std::fs::write(&path, &doc).unwrap();
        }
    }
    // Every key that refuses values says which it accepts, and every used key is documented.
    for key in COMMON_KEYS.iter().chain(GPT2_KEYS).chain(LLAMA_KEYS) {
        assert!(!key.note.is_empty(), "{}", key.name);
        if key.treatment == Treatment::Refused {
            assert!(matches!(key.accepts, Accepts::Only(..)), "{} is refused but accepts anything", key.name);
        }
    }
}
