//! A fifth optimization needs no edit in the harness: with the engine's test-only
//! `test-fifth-optimization` table entry (`test-noop`), experiment files name it, bisect's
//! lattice runs it, and the reports show it, through the engine's one table.
//!
//! The harness must be compiled with the entry too (it reads results with the engine's types), so
//! in a plain `cargo test` the test here runs this file again with the feature on, in a target
//! directory of its own (`target/fifth-optimization/`: built there, the harness with the entry
//! would replace the `xtask` binary the other tests run). The engine it measures is built with
//! the feature by `--engine-features`, in the workspace's `target/engine-features/`.

#[cfg(not(feature = "test-fifth-optimization"))]
#[test]
fn a_fifth_optimization_is_picked_up_with_no_edit_in_the_harness() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .env("CARGO_TARGET_DIR", xtask::paths::target_dir().join("fifth-optimization"))
        .env("XTASK_ENGINE_TARGET_DIR", xtask::paths::target_dir())
        .args(["test", "--package", "xtask", "--features", "test-fifth-optimization"])
        .args(["--test", "fifth_optimization", "--", "--exact", "with_the_fifth_optimization"])
        .current_dir(xtask::project_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the test with the feature failed (see its output above)");
}

#[cfg(feature = "test-fifth-optimization")]
#[test]
fn with_the_fifth_optimization() {
    use smallmind::Optimization;
    use std::path::Path;
    use xtask::analysis::bisect::{config_name, configs};
    use xtask::plan::{Experiment, Plan};

    const EXPERIMENT: &str = r#"
description = "tiny: everything on, against everything on but the test-only fifth optimization"
[workload]
model = "tiny"
prompt_tokens = 8
max_new_tokens = 8
[measurement]
quick_iterations = 2
[profiles]
flamegraph = false
[[variant]]
name = "all-on"
reference = true
[[variant]]
name = "noop-off"
optimizations = { test-noop = false }
"#;

    // The table: five entries, the test-only one last.
    let names: Vec<&str> = Optimization::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["tensor-pool", "batched-matmul", "fused-softmax", "kv-cache", "test-noop"]);

    // Experiment files name it, and an unknown name lists it among the valid ones.
    let e = Experiment::parse(EXPERIMENT, "fifth.toml").unwrap();
    let plan = Plan::new("fifth", e);
    let noop_off = &plan.points[0].variants[1];
    assert!(
        !noop_off.optimizations.get(Optimization::ALL[4]) && noop_off.optimizations.get(Optimization::ALL[3])
    );
    let err = Experiment::parse(&EXPERIMENT.replace("test-noop = false", "test-nop = false"), "fifth.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `test-nop`") && err.contains("`test-noop`"), "{err}");

    // Bisect's lattice: all off, all on, and each of the five alone on and alone off.
    let lattice: Vec<String> = configs(false).into_iter().map(config_name).collect();
    assert_eq!(lattice.len(), 12, "{lattice:?}");
    assert!(lattice.contains(&"test-noop".to_string()));
    assert!(lattice.contains(&"tensor-pool+batched-matmul+fused-softmax+kv-cache".to_string()));
    assert_eq!(configs(true).len(), 32);

    // End to end, on the engine built with the entry: the report and the bisect page show it.
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    std::fs::write(root.join("experiments/fifth.toml"), EXPERIMENT).unwrap();
    let xtask = |args: &[&str], root: &Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args).args(["--engine-features", "test-fifth-optimization"]);
        if let Some(dir) = std::env::var_os("XTASK_ENGINE_TARGET_DIR") {
            cmd.env("CARGO_TARGET_DIR", dir);
        }
        for dir in ["experiments", "reports", "baselines"] {
            cmd.arg(format!("--{dir}-dir")).arg(root.join(dir));
        }
        cmd.arg("--store").arg(root.join("store.sqlite"));
        cmd.output().expect("xtask runs")
    };
    let out = xtask(&["experiment", "fifth", "--quick", "--no-profiles"], root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(root.join("reports/fifth/README.md")).unwrap();
    assert!(report.contains("kv-cache=on,test-noop=off"), "{report}");
    let out = xtask(&["bisect", "fifth", "--iterations", "2", "--no-profiles"], root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(root.join("reports/fifth/bisect.md")).unwrap();
    assert!(page.starts_with("# `fifth`: what each optimization buys\n\n12 toggle sets"), "{page}");
    assert!(page.contains("| `test-noop` | decode_tok_s |"), "{page}");

    // The engine without the entry is refused: its table is not the harness's.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["experiment", "fifth", "--quick", "--no-profiles"]);
    if let Some(dir) = std::env::var_os("XTASK_ENGINE_TARGET_DIR") {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    for dir in ["experiments", "reports", "baselines"] {
        cmd.arg(format!("--{dir}-dir")).arg(root.join(dir));
    }
    cmd.arg("--store").arg(root.join("store.sqlite"));
    let out = cmd.output().expect("xtask runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the engine's optimizations (tensor-pool, batched-matmul, fused-softmax, kv-cache) are not this harness's"),
        "{stderr}"
    );
}
