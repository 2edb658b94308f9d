//! The heap profile diff end to end: `tensor-pool` off against on, heap-profiled with the
//! `dhat-heap` engine; the report names, under the allocation counts that fell, the forward
//! pass's buffer allocations as the sites whose blocks per op fell most.

use std::process::Command;

const EXPERIMENT: &str = r#"
description = "tiny: fresh buffers against pooled ones, heap-profiled (test fixture)"
[workload]
model = "tiny"
prompt_tokens = 16
max_new_tokens = 16
[measurement]
warmup = 1
iterations = 2
phase_iterations = 0
[profiles]
flamegraph = false
heap = true
[[variant]]
name = "fresh"
reference = true
optimizations = { tensor-pool = false }
[[variant]]
name = "pooled"
"#;

#[test]
fn the_heap_diff_names_the_forward_pass_buffers() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    std::fs::write(root.join("experiments/heaptest.toml"), EXPERIMENT).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["experiment", "heaptest"]);
    for dir in ["experiments", "reports", "baselines"] {
        cmd.arg(format!("--{dir}-dir")).arg(root.join(dir));
    }
    cmd.arg("--store").arg(root.join("store.sqlite"));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(root.join("reports/heaptest/README.md")).unwrap();
    let fewer = report
        .lines()
        .find(|l| l.starts_with("- ") && l.contains("alloc_count_per_op") && l.contains(" fewer: "))
        .unwrap_or_else(|| panic!("a line naming the sites of the fewer allocations\n{report}"));
    let first = fewer.split(" fewer: `").nth(1).unwrap_or_default();
    // `Ctx::buf`: a layer's intermediate buffer, fresh without the pool.
    assert!(first.starts_with("smallmind::layers::"), "{fewer}");
}
