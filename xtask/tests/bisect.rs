//! Toggling optimizations to find a regression, proved on a real one: the engine built with the
//! test-only `slow-fused-softmax` feature (the `fused-softmax` fast path made slower, its output
//! unchanged) must make `check` exit 1 and `bisect` rank `fused-softmax` first; unchanged, `check`
//! exits 0, and the reference against itself (`calibrate`) shows no significant change; and the
//! report's CPU profile diff of fused softmax on against off names a softmax function first.

mod common;

use common::FIXED_PROBE;
use std::path::Path;
use std::process::Output;

const EXPERIMENT: &str = include_str!("../test_data/all_off_all_on.toml");

/// Runs xtask in `root` under [`FIXED_PROBE`]: this test is about finding a slowed toggle, so it
/// holds the machine still (a measured probe that moved would make `check` judge nothing).
fn xtask(args: &[&str], root: &Path) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env(FIXED_PROBE.0, FIXED_PROBE.1);
    cmd.args(args);
    for dir in ["experiments", "reports", "baselines"] {
        cmd.arg(format!("--{dir}-dir")).arg(root.join(dir));
    }
    cmd.arg("--store").arg(root.join("store.sqlite"));
    cmd.output().expect("xtask runs")
}

fn code(out: &Output) -> Option<i32> {
    if !matches!(out.status.code(), Some(0 | 1)) {
        eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.code()
}

#[test]
fn check_and_bisect_find_a_deliberately_slowed_toggle() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    std::fs::write(root.join("experiments/slowtest.toml"), EXPERIMENT).unwrap();

    // The good state: a baseline of the experiment and of its bisect lattice.
    assert_eq!(code(&xtask(&["baseline", "slowtest", "--quick", "--no-profiles"], root)), Some(0));
    assert_eq!(
        code(&xtask(&["bisect", "slowtest", "--iterations", "4", "--no-profiles", "--save-baseline"], root)),
        Some(0)
    );
    let page = std::fs::read_to_string(root.join("reports/slowtest/bisect.md")).unwrap();
    assert!(
        page.contains("| `kv-cache` | decode_tok_s |")
            && page.contains("This run is the stored bisect baseline")
    );

    // Unchanged engine: within tolerance.
    let out = xtask(&["check", "slowtest"], root);
    assert_eq!(code(&out), Some(0), "stdout: {}", String::from_utf8_lossy(&out.stdout));

    // The slowed fast path: check fails, bisect names the toggle first.
    let slow = ["--engine-features", "slow-fused-softmax"];
    let out = xtask(&[&["check", "slowtest"][..], &slow].concat(), root);
    assert_eq!(code(&out), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("REGRESSED"));
    let out = xtask(&[&["bisect", "slowtest", "--iterations", "4"][..], &slow].concat(), root);
    assert_eq!(code(&out), Some(0));
    let page = std::fs::read_to_string(root.join("reports/slowtest/bisect.md")).unwrap();
    let first = page.lines().find(|l| l.starts_with("| 1 |")).expect("a ranked suspect list");
    assert!(first.contains("`fused-softmax`"), "first suspect: {first}\n{page}");
    // Its on/off pair's profile diff: a softmax function takes more time with it.
    assert!(page.contains("**Where `fused-softmax` acts now**"), "{page}");
    let more =
        page.lines().find(|l| l.starts_with("- more time with it: ")).expect("a line of slower functions");
    assert!(more.starts_with("- more time with it: `smallmind::kernels::softmax::"), "{page}");

    // A/A on the reference: no significant change.
    let out = xtask(&["calibrate", "slowtest", "--iterations", "6"], root);
    assert_eq!(code(&out), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    let decode = page.lines().find(|l| l.starts_with("| decode_tok_s |")).expect("a decode row");
    assert!(decode.contains("no significant change"), "{page}");

    // Where the time went: with the slowed fused softmax on against off, the report's CPU profile
    // diff names a softmax function as the engine function whose own time grew most.
    std::fs::write(root.join("experiments/profiled.toml"), include_str!("../test_data/profiled.toml"))
        .unwrap();
    let out = xtask(&[&["experiment", "profiled", "--iterations", "3"][..], &slow].concat(), root);
    assert_eq!(code(&out), Some(0));
    let report = std::fs::read_to_string(root.join("reports/profiled/README.md")).unwrap();
    let worse = report.lines().find(|l| l.starts_with("- ") && l.contains(" worse: ")).expect("a worse line");
    let first = worse.split(" worse: `").nth(1).unwrap_or_default();
    assert!(first.starts_with("smallmind::kernels::softmax::"), "{worse}\n{report}");
    for file in [
        "fused-vs-unfused.cpu.diff.svg",
        "fused-vs-unfused.cpu.reverse.diff.svg",
        "fused-vs-unfused.cpu.diff.folded",
    ] {
        assert!(root.join("reports/profiled/diffs").join(file).is_file(), "{file}");
    }
}
