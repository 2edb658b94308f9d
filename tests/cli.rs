//! The `smallmind` binary: what users type, what they get, and one clear line with exit code 2
//! for every bad input.

mod common;

use common::{assert_usage_error, smallmind, smallmind_env};
use std::path::Path;
use std::process::Output;

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn export(model: &str, dir: &Path) {
    let out = smallmind(&["export", "--model", model, "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn generate_streams_text_then_a_summary_line() {
    let out = smallmind(&[
        "generate",
        "--model",
        "tiny",
        "--prompt",
        "Once upon a time",
        "--max-new-tokens",
        "8",
        "--threads",
        "1",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Once upon a time"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("8 new tokens") && stderr.contains("TTFT") && stderr.contains("tok/s"),
        "{stderr}"
    );
}

#[test]
fn generate_json_has_the_documented_fields_and_honours_smallmind_opt() {
    let args =
        ["generate", "--model", "smallmind-bench", "--prompt", "Hello", "--max-new-tokens", "5", "--json"];
    let v = json(&smallmind_env(&args, &[("SMALLMIND_OPT", "kv-cache=off,fused-softmax=off")]));
    for field in ["prompt_ids", "generated_ids", "text", "ttft_ms", "decode_tok_s", "optimizations"] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    assert_eq!(v["prompt_ids"].as_array().unwrap().len(), 5);
    assert_eq!(v["generated_ids"].as_array().unwrap().len(), 5);
    assert_eq!(v["optimizations"]["kv-cache"], false);
    assert_eq!(v["optimizations"]["fused-softmax"], false);
    assert_eq!(v["optimizations"]["tensor-pool"], true);
    // --opt applies after the environment.
    let mut with_flag = args.to_vec();
    with_flag.extend(["--opt", "kv-cache=on"]);
    let w = json(&smallmind_env(&with_flag, &[("SMALLMIND_OPT", "all=off")]));
    assert_eq!(w["optimizations"]["kv-cache"], true);
    assert_eq!(w["optimizations"]["tensor-pool"], false);
    assert_eq!(w["generated_ids"], v["generated_ids"], "toggles changed the output");
}

#[test]
fn logits_out_writes_one_array_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logits.json");
    let out = smallmind(&[
        "generate",
        "--model",
        "smallmind-bench",
        "--prompt-ids",
        "1,2,3",
        "--max-new-tokens",
        "4",
        "--json",
        "--logits-out",
        path.to_str().unwrap(),
    ]);
    let v = json(&out);
    let logits: Vec<Vec<f32>> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(logits.len(), 4);
    assert!(logits.iter().all(|step| step.len() == 50));
    // Greedy: each generated id is its step's argmax.
    for (step, id) in logits.iter().zip(v["generated_ids"].as_array().unwrap()) {
        assert_eq!(smallmind::sampler::argmax(step) as u64, id.as_u64().unwrap());
    }
}

#[test]
fn an_exported_preset_generates_the_same_tokens_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    export("smallmind-bench", dir.path());
    let args = |model: &str| {
        json(&smallmind(&[
            "generate",
            "--model",
            model,
            "--prompt",
            "The quick brown fox",
            "--max-new-tokens",
            "12",
            "--json",
        ]))
    };
    let from_dir = args(dir.path().to_str().unwrap());
    let from_preset = args("smallmind-bench");
    assert_eq!(from_dir["prompt_ids"], from_preset["prompt_ids"]);
    assert_eq!(from_dir["generated_ids"], from_preset["generated_ids"]);
}

#[test]
fn info_prints_config_parameters_and_bytes() {
    let v = json(&smallmind(&["info", "--model", "smallmind-bench", "--json"]));
    // SmallMind's benchmark model has 108,544 parameters; GPT-2 124M has 124,439,808.
    assert_eq!(v["parameters"], 108_544);
    assert_eq!(v["weight_bytes"], 108_544 * 4);
    assert_eq!(v["config"]["n_ctx"], 32);
    let text = smallmind(&["info", "--model", "gpt2"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("parameters  124439808"));
}

#[test]
fn unknown_optimization_names_the_valid_ones() {
    let out = smallmind(&["generate", "--prompt", "a", "--opt", "kv-cash=on"]);
    assert_usage_error(
        &out,
        &["unknown optimization `kv-cash`", "tensor-pool, batched-matmul, fused-softmax, kv-cache"],
    );
    let out = smallmind_env(&["generate", "--prompt", "a"], &[("SMALLMIND_OPT", "fused=off")]);
    assert_usage_error(&out, &["SMALLMIND_OPT", "unknown optimization `fused`"]);
    let out = smallmind(&["generate", "--prompt", "a", "--opt", "kv-cache"]);
    assert_usage_error(&out, &["write NAME=on or NAME=off"]);
}

#[test]
fn prompt_problems_are_explained() {
    let out = smallmind(&["generate", "--model", "smallmind-bench", "--prompt-ids", "1,50"]);
    assert_usage_error(&out, &["prompt id 50 at index 1 is out of range", "50 tokens"]);
    let out = smallmind(&["generate", "--model", "tiny", "--prompt", ""]);
    assert_usage_error(&out, &["the prompt is empty"]);
    // Every character outside SmallMind's vocabulary is skipped, leaving nothing.
    let out = smallmind(&["generate", "--model", "smallmind-bench", "--prompt", "... !"]);
    assert_usage_error(&out, &["the prompt is empty"]);
    let out = smallmind(&["generate", "--model", "tiny", "--prompt", "a", "--top-p", "0"]);
    assert_usage_error(&out, &["top-p must be in (0, 1]"]);
    let out = smallmind(&["generate", "--model", "tiny", "--prompt", "a", "--threads", "0"]);
    assert_usage_error(&out, &["--threads must be at least 1"]);
}

#[test]
fn model_problems_are_explained() {
    let out = smallmind(&["generate", "--model", "gpt5", "--prompt", "a"]);
    assert_usage_error(&out, &["unknown model `gpt5`", "smallmind-bench, tiny, small, gpt2"]);

    let dir = tempfile::tempdir().unwrap();
    export("smallmind-bench", dir.path());
    let model = dir.path().to_str().unwrap();
    let config = dir.path().join("config.json");
    let weights = dir.path().join("model.safetensors");
    let good_config = std::fs::read_to_string(&config).unwrap();
    let good_weights = std::fs::read(&weights).unwrap();

    std::fs::write(&config, good_config.replace("\"n_head\": 4", "\"n_head\": 5")).unwrap();
    assert_usage_error(
        &smallmind(&["info", "--model", model]),
        &["n_embd (64) is not divisible by n_head (5)"],
    );
    std::fs::write(&config, &good_config).unwrap();

    std::fs::write(&weights, &good_weights[..good_weights.len() - 100]).unwrap();
    assert_usage_error(
        &smallmind(&["info", "--model", model]),
        &["model.safetensors", "truncated or corrupt"],
    );

    std::fs::write(&config, good_config.replace("\"n_inner\": 256", "\"n_inner\": 128")).unwrap();
    std::fs::write(&weights, &good_weights).unwrap();
    assert_usage_error(
        &smallmind(&["info", "--model", model]),
        &["`h.0.mlp.c_fc.weight` has shape [64, 256], expected [64, 128]"],
    );
    std::fs::write(&config, &good_config).unwrap();

    std::fs::remove_file(&weights).unwrap();
    assert_usage_error(&smallmind(&["info", "--model", model]), &["model.safetensors", "No such file"]);
}

#[test]
fn an_unwritable_logits_file_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let missing_parent = dir.path().join("no/such/dir/logits.json");
    let out = smallmind(&[
        "generate",
        "--model",
        "smallmind-bench",
        "--prompt",
        "abc",
        "--max-new-tokens",
        "2",
        "--json",
        "--logits-out",
        missing_parent.to_str().unwrap(),
    ]);
    assert_usage_error(&out, &["--logits-out", "logits.json", "is not a directory"]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn optimizations_json_is_the_table_in_order() {
    let out = smallmind(&["optimizations", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let names: Vec<&str> = table.iter().map(|e| e["name"].as_str().unwrap()).collect();
    let expected: Vec<&str> = smallmind::Optimization::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(names, expected);
    assert_eq!(names[..4], ["tensor-pool", "batched-matmul", "fused-softmax", "kv-cache"]);
    for entry in &table {
        let keys: Vec<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["description", "name", "read_in"], "{entry}"); // serde_json's Value sorts keys
    }
    // In the text itself each object's keys come in the documented order.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(r#"[{"name":"tensor-pool","description":""#), "{text}");
    assert_eq!(text.matches(r#"{"name":""#).count(), table.len(), "{text}");
    assert_eq!(text.matches(r#"","read_in":""#).count(), table.len(), "{text}");
    assert_eq!(table[3]["read_in"], "generate::Session::next_logits");
    let human = smallmind(&["optimizations"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success() && names.iter().all(|n| text.contains(n)), "{text}");
}

/// An output that cannot be written is not the input's fault: exit 1 and one line naming it.
/// (Linux's /proc takes no new files, even from root, so this fails wherever the tests run.)
#[test]
fn an_output_that_cannot_be_written_exits_1() {
    let cases: [&[&str]; 3] = [
        &["export", "--model", "tiny", "--out", "/proc/smallmind-export"],
        &["export", "--model", "llama-tiny", "--format", "llama2c", "--out", "/proc/smallmind.bin"],
        &[
            "generate",
            "--model",
            "tiny",
            "--prompt",
            "a",
            "--max-new-tokens",
            "1",
            "--logits-out",
            "/proc/l.json",
        ],
    ];
    for args in cases {
        let out = smallmind(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{stderr}");
        assert!(error_lines[0].contains("cannot write /proc/"), "{stderr}");
    }
}

/// `SMALLMIND_SIMD` lowers every kernel to AVX2 or the baseline build, so that this machine
/// runs (and tests) what a machine without AVX-512 runs: each level the CPU has generates the
/// same tokens, with every step's logits within 2e-4 of the CPU's best level (the toggles'
/// tolerance, `tests/equivalence.rs`), for a GPT-2 and a Llama, with a prompt (prefill) and
/// at one and two threads.
#[test]
fn every_simd_level_this_cpu_has_generates_the_same_tokens() {
    use smallmind::kernels::SimdLevel;
    let dir = tempfile::tempdir().unwrap();
    let levels: Vec<SimdLevel> = SimdLevel::ALL.into_iter().filter(|&l| l <= SimdLevel::detected()).collect();
    for model in ["small", "llama-tiny-gqa"] {
        for threads in ["1", "2"] {
            let run = |level: SimdLevel| {
                let path = dir.path().join(format!("{model}-{threads}-{}.json", level.name()));
                let args = [
                    "generate",
                    "--model",
                    model,
                    "--prompt-ids",
                    "1,2,3,4,5,6,7,8,9",
                    "--max-new-tokens",
                    "12",
                    "--threads",
                    threads,
                    "--json",
                    "--logits-out",
                    path.to_str().unwrap(),
                ];
                let v = json(&smallmind_env(&args, &[("SMALLMIND_SIMD", level.env_value())]));
                let logits: Vec<Vec<f32>> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                (v["generated_ids"].clone(), logits)
            };
            let (best_ids, best_logits) = run(levels[0]);
            for &level in &levels[1..] {
                let what =
                    format!("{model} at {threads} thread(s), {} against {}", level.name(), levels[0].name());
                let (ids, logits) = run(level);
                assert_eq!(ids, best_ids, "{what}: tokens");
                let diff =
                    logits.iter().flatten().zip(best_logits.iter().flatten()).map(|(a, b)| (a - b).abs());
                let diff = diff.fold(0.0f32, f32::max);
                assert!(diff <= 2e-4, "{what}: logits differ by {diff}");
            }
        }
    }
}

#[test]
fn a_bad_or_unavailable_simd_level_is_refused() {
    let args = ["generate", "--model", "tiny", "--prompt", "a", "--max-new-tokens", "1"];
    let out = smallmind_env(&args, &[("SMALLMIND_SIMD", "avx9")]);
    assert_usage_error(&out, &["SMALLMIND_SIMD=\"avx9\"", "expected avx512, avx2 or baseline"]);
    if smallmind::kernels::SimdLevel::detected() < smallmind::kernels::SimdLevel::Avx512 {
        let out = smallmind_env(&args, &[("SMALLMIND_SIMD", "avx512")]);
        assert_usage_error(&out, &["SMALLMIND_SIMD=avx512: this CPU runs"]);
    }
}

/// `--threads 40000` once aborted in half the runs (exit 134, a backtrace: a thread could not
/// map its signal stack); every run is now one line and exit 2, before any thread starts.
#[test]
fn thread_counts_the_system_cannot_give_are_refused_in_one_line() {
    for _ in 0..3 {
        let out =
            smallmind(&["generate", "--model", "smallmind-bench", "--prompt", "abc", "--threads", "40000"]);
        assert_usage_error(&out, &["--threads 40000", "at most 256"]);
    }
    let out = smallmind(&[
        "bench",
        "--model",
        "smallmind-bench",
        "--prompt-tokens",
        "4",
        "--threads",
        "257",
        "--no-probe",
    ]);
    assert_usage_error(&out, &["--threads 257"]);
}

/// `export --out DIR/FILE` once failed when `DIR` did not exist (the peers guide exports into
/// such a path): missing folders are made, as `mkdir -p` would.
#[test]
fn export_makes_the_folders_of_its_out_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("peers-m/llama-tiny/llama-tiny.bin");
    let run = smallmind(&[
        "export",
        "--model",
        "llama-tiny",
        "--format",
        "llama2c",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(out.is_file());
    // A folder where the file should go is still refused, in one line.
    let run = smallmind(&[
        "export",
        "--model",
        "llama-tiny",
        "--format",
        "llama2c",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_usage_error(&run, &["is a directory"]);
}
