//! `smallmind bench`: the results file, its determinism, the profiles, and bad input.
//!
//! These run the binary of the test profile (optimised, with debug assertions): they check what
//! is measured and written, never how fast anything is.

mod common;

use common::{assert_usage_error, smallmind};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The engine's spans: the whole forward pass, then its phases in order, then sampling.
const SPANS: [&str; 11] = [
    "forward",
    "embedding",
    "layernorm",
    "qkv_projection",
    "attention_scores",
    "softmax",
    "attention_values",
    "output_projection",
    "mlp",
    "lm_head",
    "sampling",
];

/// A short workload: `tiny`, 16 prompt tokens, 24 new, 2 measured ops after 1 warm-up, on one
/// thread (named, as experiments name it: bench's default is all cores).
const WORKLOAD: &[&str] = &[
    "bench",
    "--threads",
    "1",
    "--model",
    "tiny",
    "--prompt-tokens",
    "16",
    "--max-new-tokens",
    "24",
    "--warmup",
    "1",
    "--iterations",
    "2",
];

/// [`WORKLOAD`] with `extra` flags added, each replacing the workload's flag of the same name.
fn workload_with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![WORKLOAD[0]];
    for pair in WORKLOAD[1..].chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    args.extend_from_slice(extra);
    args
}

fn bench(dir: &Path, name: &str, extra: &[&str]) -> Value {
    let out_path = dir.join(name);
    let mut args = workload_with(extra);
    args.extend_from_slice(&["--out", out_path.to_str().unwrap()]);
    let out = smallmind(&args);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&std::fs::read(&out_path).unwrap()).expect("the results file is JSON")
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("no integer at {pointer}"))
}

fn f64_at(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("no number at {pointer}"))
}

/// Every file left in `dir`, sorted (temporary files included).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A Llama's phases: RMSNorm and RoPE instead of LayerNorm, the rest as GPT-2's; and a decode
/// step with the pool and the cache allocates nothing, as for GPT-2.
#[test]
fn llama_results_have_its_own_phases_and_allocation_free_decode() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench(dir.path(), "llama.json", &["--model", "llama-tiny", "--phase-iterations", "1"]);
    let names: Vec<&str> =
        r["phases"]["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = SPANS[1..].iter().copied().filter(|&s| s != "layernorm").collect();
    expected.insert(1, "rmsnorm");
    expected.insert(3, "rope");
    assert_eq!(names, expected);
    assert_eq!(f64_at(&r, "/summary/decode_alloc_count_per_token"), 0.0);
    assert_eq!(r["workload"]["model"], "llama-tiny");
}

#[test]
fn results_file_has_the_documented_fields_with_units() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench(dir.path(), "r.json", &["--phase-iterations", "2"]);
    assert_eq!(u64_at(&r, "/schema_version"), 1);
    assert_eq!(r["workload"]["model"], "tiny");
    assert_eq!(r["workload"]["prompt"], serde_json::json!({"kind": "synthetic", "tokens": 16, "seed": 0}));
    assert_eq!(u64_at(&r, "/workload/prompt_tokens"), 16);
    assert_eq!(r["workload"]["optimizations"]["kv-cache"], true);
    let iterations = r["iterations"].as_array().unwrap();
    assert_eq!(iterations.len(), 2, "warm-up is not reported");
    for it in iterations {
        assert_eq!(u64_at(it, "/generated_tokens"), 24);
        assert_eq!(it["inter_token_ms"].as_array().unwrap().len(), 23);
        for field in
            ["ttft_ms", "prefill_ms", "prefill_tok_s", "decode_tok_s", "end_to_end_tok_s", "total_ms"]
        {
            assert!(f64_at(it, &format!("/{field}")) > 0.0, "{field}");
        }
        assert!(f64_at(it, "/ttft_ms") < f64_at(it, "/total_ms"));
    }
    for field in
        ["alloc_count_per_op", "alloc_bytes_per_op", "alloc_count_per_token", "decode_alloc_count_per_token"]
    {
        assert!(r["summary"][field].is_number(), "summary.{field}");
    }
    assert!(f64_at(&r, "/summary/alloc_count_per_op") > 0.0, "an op allocates its output at least");
    assert!(u64_at(&r, "/summary/peak_heap_bytes") > u64_at(&r, "/summary/peak_heap_growth_bytes"));
    let median = f64_at(&r, "/summary/decode_tok_s/median");
    assert!(
        f64_at(&r, "/summary/decode_tok_s/p10") <= median
            && median <= f64_at(&r, "/summary/decode_tok_s/p90")
    );
    assert_eq!(r["instrumentation"]["allocator"], "counting");
    assert_eq!(r["instrumentation"]["span_subscriber_during_measurement"], false);

    // Phases: every engine phase, from spans, in a pass of its own.
    let phases = &r["phases"];
    assert_eq!(u64_at(phases, "/iterations"), 2);
    let names: Vec<&str> =
        phases["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, SPANS[1..]);
    let forward = f64_at(phases, "/forward_ms_per_op");
    let in_forward: f64 = phases["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "sampling")
        .map(|p| p["ms_per_op"].as_f64().unwrap())
        .sum();
    assert!(
        in_forward > 0.0 && in_forward <= forward * 1.0001,
        "phases {in_forward} ms within forward {forward} ms"
    );
    let attention = f64_at(phases, "/attention_share_of_forward");
    assert!(attention > 0.0 && attention < 1.0, "attention share {attention}");

    // Output and provenance.
    let ids = r["output"]["generated_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 24);
    assert!(r["output"]["digest"].as_str().unwrap().starts_with("sha256:"));
    let env = &r["environment"];
    for field in
        ["cpu_model", "os", "kernel", "rustc", "build_profile", "git_commit", "git_dirty", "timestamp"]
    {
        assert!(env[field].as_str().is_some_and(|s| !s.is_empty()), "environment.{field}");
    }
    assert_eq!(env["debug_assertions"], true, "the tests run the test profile's binary");
    assert!(env["command_line"].as_str().unwrap().contains("--prompt-tokens 16"));
}

#[test]
fn the_same_configuration_twice_allocates_and_generates_identically() {
    let dir = tempfile::tempdir().unwrap();
    let no_pool = ["--opt", "tensor-pool=off", "--phase-iterations", "0"];
    let a = bench(dir.path(), "a.json", &no_pool);
    let b = bench(dir.path(), "b.json", &no_pool);
    for field in
        ["alloc_count", "alloc_bytes", "prefill_alloc_count", "decode_alloc_count", "decode_alloc_bytes"]
    {
        let values: Vec<u64> = [&a, &b]
            .iter()
            .flat_map(|r| {
                r["iterations"].as_array().unwrap().iter().map(|it| u64_at(it, &format!("/{field}")))
            })
            .collect();
        assert!(values.windows(2).all(|w| w[0] == w[1]), "{field} differs: {values:?}");
    }
    assert!(u64_at(&a, "/iterations/0/decode_alloc_count") > 0, "without the pool, decode steps allocate");
    assert_eq!(a["summary"]["allocations_identical_across_iterations"], true);
    assert_eq!(a["output"], b["output"]);
    // Another variant generates the same tokens: the digest is what the harness compares.
    let all_on = bench(dir.path(), "c.json", &["--phase-iterations", "0"]);
    assert_eq!(a["output"]["digest"], all_on["output"]["digest"]);
}

#[test]
fn pool_and_kv_cache_make_decode_allocation_free() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench(dir.path(), "r.json", &["--opt", "all=on", "--phase-iterations", "0"]);
    assert_eq!(f64_at(&r, "/summary/decode_alloc_count_per_token"), 0.0);
    assert_eq!(f64_at(&r, "/summary/decode_alloc_bytes_per_token"), 0.0);
    for it in r["iterations"].as_array().unwrap() {
        assert_eq!(u64_at(it, "/decode_alloc_count"), 0);
        assert_eq!(u64_at(it, "/pool_misses"), 0, "the warm-up filled the pool");
    }
    assert_eq!(f64_at(&r, "/pool/hit_rate"), 1.0);
    // Either one off, and decode allocates again: the counter sees it. Without the pool every
    // intermediate is a fresh vector; without the cache every step recomputes the window with
    // multi-row products, and `gemm` allocates its packing buffers on every call.
    for off in ["tensor-pool=off", "kv-cache=off"] {
        let r = bench(dir.path(), "off.json", &["--opt", off, "--phase-iterations", "0"]);
        assert!(f64_at(&r, "/summary/decode_alloc_count_per_token") > 0.0, "{off}");
    }
}

#[test]
fn flamegraph_and_pprof_show_the_engine_at_work() {
    let dir = tempfile::tempdir().unwrap();
    let (svg, pb) = (dir.path().join("cpu.svg"), dir.path().join("cpu.pb"));
    let r = bench(
        dir.path(),
        "r.json",
        &[
            "--opt",
            "batched-matmul=off",
            "--phase-iterations",
            "0",
            "--flamegraph",
            svg.to_str().unwrap(),
            "--pprof",
            pb.to_str().unwrap(),
            "--profile-seconds",
            "1",
        ],
    );
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<?xml") && svg_text.trim_end().ends_with("</svg>"));
    assert!(svg_text.contains("smallmind::models::gpt2::Gpt2::forward"), "the forward pass is named");
    assert!(svg_text.contains("scores_per_pair_dot"), "batched-matmul off: the per-(i, j) scores loop shows");
    assert!(u64_at(&r, "/profiles/cpu/samples") > 50, "about 250 samples a second for 1 s");
    assert_eq!(r["profiles"]["cpu"]["flamegraph_path"], svg.to_str().unwrap());

    use pprof::protos::Message;
    let profile =
        pprof::protos::Profile::decode(&std::fs::read(&pb).unwrap()[..]).expect("valid pprof protobuf");
    assert!(!profile.sample.is_empty());
    let names: Vec<&String> =
        profile.function.iter().map(|f| &profile.string_table[f.name as usize]).collect();
    assert!(
        names.iter().any(|n| n.contains("smallmind::kernels::attention")),
        "engine functions in the pprof"
    );
}

#[test]
fn chrome_trace_holds_every_phase_span() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.json");
    let r = bench(dir.path(), "r.json", &["--phase-iterations", "1", "--trace", trace.to_str().unwrap()]);
    assert_eq!(r["profiles"]["trace"]["iterations"], 1);
    let events: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("the trace is a JSON array");
    for phase in SPANS {
        let begins = events.iter().filter(|e| e["name"] == phase && e["ph"] == "B").count();
        let ends = events.iter().filter(|e| e["name"] == phase && e["ph"] == "E").count();
        assert!(begins > 0 && begins == ends, "{phase}: {begins} begins, {ends} ends");
    }
    let forwards = events.iter().filter(|e| e["name"] == "forward" && e["ph"] == "B").count();
    assert_eq!(forwards, 24, "one traced op: one forward per generated token");
}

#[test]
fn bad_input_exits_2_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let out_arg = out.to_str().unwrap();
    let run = |extra: &[&str]| smallmind(&workload_with(extra));
    assert_usage_error(
        &run(&["--opt", "kv-cash=on", "--out", out_arg]),
        &["kv-cash", "kv-cache", "tensor-pool"],
    );
    assert_usage_error(&run(&["--iterations", "0", "--out", out_arg]), &["--iterations must be at least 1"]);
    assert_usage_error(&run(&["--max-new-tokens", "0", "--out", out_arg]), &["--max-new-tokens"]);
    assert_usage_error(&run(&["--profile-hz", "0", "--out", out_arg]), &["--profile-hz"]);
    let missing_dir = dir.path().join("no/such/dir/r.json");
    assert_usage_error(&run(&["--out", missing_dir.to_str().unwrap()]), &["--out", "does not exist"]);
    let under_a_file = dir.path().join("plain-file");
    std::fs::write(&under_a_file, "x").unwrap();
    assert_usage_error(&run(&["--out", under_a_file.join("r.json").to_str().unwrap()]), &["--out"]);
    assert_usage_error(&run(&["--out", dir.path().to_str().unwrap()]), &["not a directory"]);
    assert_usage_error(&run(&["--out", out_arg, "--trace", out_arg]), &["same file"]);
    assert_usage_error(&run(&["--model", "no-such-model", "--out", out_arg]), &["no-such-model"]);
    if !smallmind::bench::HEAP_PROFILING {
        let heap = dir.path().join("heap.json");
        assert_usage_error(
            &run(&["--out", out_arg, "--heap-profile", heap.to_str().unwrap()]),
            &["dhat-heap"],
        );
    }
    // A prompt with no character in the vocabulary of `smallmind-bench`.
    let mut args = vec!["bench", "--model", "smallmind-bench", "--prompt", "123 ...", "--out", out_arg];
    args.extend_from_slice(&["--max-new-tokens", "4"]);
    assert_usage_error(&smallmind(&args), &["no token"]);
    assert_eq!(files_in(dir.path()), ["plain-file"], "no results and no temporary file left behind");
}

/// Builds the binary with the `dhat-heap` feature once per test run, as the workbench builds its
/// heap-profiling engine: release, in `target/engine-features/` under that folder's lock, copied
/// to `smallmind+dhat-heap` (`xtask/src/runner/engine.rs`). The binary the other tests run is
/// not replaced, and the workbench's tests reuse this build instead of compiling the dependencies
/// once more in a folder of their own.
fn dhat_binary() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR is target/tmp");
    let dir = target.join("engine-features");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(".xtask.lock")).unwrap();
    lock.lock().unwrap();
    let out: Output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--locked",
            "--features",
            "dhat-heap",
            "--bin",
            "smallmind",
            "--target-dir",
        ])
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "building with dhat-heap failed: {}", String::from_utf8_lossy(&out.stderr));
    let named = dir.join("release").join("smallmind+dhat-heap");
    let temp = named.with_extension("tmp");
    std::fs::copy(dir.join("release").join("smallmind"), &temp).unwrap();
    std::fs::rename(&temp, &named).unwrap();
    named
}

#[test]
fn heap_profile_shows_the_forward_pass_allocation_sites() {
    let binary = dhat_binary();
    let dir = tempfile::tempdir().unwrap();
    let (heap, results) = (dir.path().join("heap.json"), dir.path().join("r.json"));
    let out = Command::new(&binary)
        .args(workload_with(&["--opt", "tensor-pool=off", "--phase-iterations", "0"]))
        .arg("--heap-profile")
        .arg(&heap)
        .arg("--out")
        .arg(&results)
        .env_remove("SMALLMIND_OPT")
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let profile: Value = serde_json::from_slice(&std::fs::read(&heap).unwrap()).expect("dhat JSON");
    assert_eq!(profile["dhatFileVersion"], 2);
    let frames: Vec<&str> = profile["ftbl"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(frames.iter().any(|f| f.contains("Gpt2::forward")), "the forward pass allocates (pool off)");
    assert!(frames.iter().any(|f| f.contains("layers::Ctx::buf")), "through the one pool decision");
    let r: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(r["instrumentation"]["allocator"], "counting+dhat");
    assert_eq!(r["environment"]["features"], serde_json::json!(["dhat-heap"]));
    // dhat's count covers the profile pass's op plus the bench's own bookkeeping.
    let ours = u64_at(&r, "/iterations/0/alloc_count");
    let dhat = u64_at(&r, "/profiles/heap/total_blocks");
    assert!(dhat >= ours && dhat < ours + 16, "dhat {dhat} blocks, counting allocator {ours}");
}

/// No figure beyond what the machine can do is written. A prompt longer than the context once
/// gave `prefill_tok_s` 79,054 on `tiny` (context 1024, 4096 prompt tokens, the time of the
/// last 1024): 2.97x the machine's FMA peak, exit 0. It is refused (exit 2); and a fraction
/// beyond the probe's limits (here: probes fixed absurdly low) is refused with exit 1, naming
/// the figure, and no results file is written.
#[test]
fn impossible_figures_are_refused_not_written() {
    let out = smallmind(&[
        "bench",
        "--model",
        "tiny",
        "--prompt-tokens",
        "4096",
        "--max-new-tokens",
        "2",
        "--no-probe",
    ]);
    assert_usage_error(
        &out,
        &["the prompt is 4096 tokens and the model's context 1024", "give at most 1024"],
    );

    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.json");
    let args = [
        "bench",
        "--threads",
        "1",
        "--model",
        "tiny",
        "--prompt-tokens",
        "64",
        "--max-new-tokens",
        "8",
        "--warmup",
        "0",
        "--iterations",
        "1",
        "--phase-iterations",
        "0",
        "--out",
        results.to_str().unwrap(),
    ];
    // A decode is checked against memory only when its bytes do not stay in the LLC: stories110m
    // (440 MB) streams from memory on every machine here (the largest L3 seen is 300 MiB).
    let mut memory_bound = args;
    memory_bound[4] = "stories110m";
    memory_bound[6] = "2";
    memory_bound[8] = "3";
    for (probe, figure, args) in [
        ("fixed=20,100,0.001", "prefill_fraction_of_fma_peak", &args),
        ("fixed=0.0001,0.0001,1000", "decode_fraction_of_bandwidth", &memory_bound),
    ] {
        let out = common::smallmind_env(args, &[("SMALLMIND_PROBE", probe)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{probe}: {stderr}");
        assert!(stderr.contains(&format!("impossible figure: {figure}")), "{stderr}");
        assert_eq!(stderr.trim_end().lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
        assert!(!results.exists(), "{probe}: a results file was written");
    }
    // The same run with plausible probes writes its results.
    let out = common::smallmind_env(&args, &[("SMALLMIND_PROBE", "fixed=20,100,100")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(results.is_file());
}
