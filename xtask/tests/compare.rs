//! `cargo xtask compare` on commits made for the test from `HEAD`: one whose engine has the
//! test-only `slow-fused-softmax` feature on by default (the fused softmax made slow, output
//! unchanged), one whose `tiny` preset has other weights (other tokens). They are written with
//! `git commit-tree`, so no branch, index or working file changes; git collects them later.
//!
//! The slowed head is found (exit 3) and, with `--toggles lattice`, the fall is named as
//! `fused-softmax`'s contribution; `HEAD` against itself is within tolerance and reuses the
//! cached build (on two experiments, with the summary); the head with other tokens is stopped by
//! the gate, and with `--allow-output-change` measured under a page that leads with where.

mod common;

use common::{FIXED_PROBE, commit_with, git};
use std::path::Path;
use std::process::{Command, Output};

const EXPERIMENT: &str = include_str!("../test_data/all_off_all_on.toml");

/// `xtask compare ARGS` in `root` under [`FIXED_PROBE`]: this test is about finding a slowed
/// revision, so it holds the machine still.
fn compare(args: &[&str], root: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env(FIXED_PROBE.0, FIXED_PROBE.1);
    cmd.arg("compare").args(args);
    if !args.contains(&"--experiment") {
        cmd.args(["--experiment", "comparetest"]);
    }
    for dir in ["experiments", "reports", "baselines"] {
        cmd.arg(format!("--{dir}-dir")).arg(root.join(dir));
    }
    cmd.arg("--store").arg(root.join("store.sqlite"));
    cmd.output().expect("xtask runs")
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn compare_finds_a_slowed_head_names_the_toggle_and_stops_at_other_tokens() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    std::fs::write(root.join("experiments/comparetest.toml"), EXPERIMENT).unwrap();
    let head = git(&["rev-parse", "HEAD"], None);
    let slowed = commit_with("Cargo.toml", |t| {
        t.replace("default = [\"cli\"]", "default = [\"cli\", \"slow-fused-softmax\"]")
    });
    let retuned = commit_with("src/models/presets.rs", |t| {
        t.replacen(
            "shape: Shape::Gpt2(gpt(256, 1024, 128, 4, 4, true)),\n            seed: 1,",
            "shape: Shape::Gpt2(gpt(256, 1024, 128, 4, 4, true)),\n            seed: 4242,",
            1,
        )
    });

    let broken = commit_with("src/lib.rs", |t| {
        format!("{t}\ncompile_error!(\"compare test: this revision does not build\");\n")
    });

    // HEAD against itself on two experiments: within tolerance, and the second build comes from
    // the cache; a page per experiment, the summary as the folder's index and in --summary FILE.
    let second = EXPERIMENT.replace("max_new_tokens = 64", "max_new_tokens = 16");
    std::fs::write(root.join("experiments/comparetest2.toml"), second).unwrap();
    let summary_file = root.join("summary.md");
    let summary_arg = summary_file.to_str().unwrap();
    let args =
        ["--quick", "--experiment", "comparetest", "--experiment", "comparetest2", "--summary", summary_arg];
    let out = compare(&[&[head.as_str(), head.as_str()][..], &args[..]].concat(), root);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the engine built before"), "{}", text(&out));
    let short = &head[..10];
    let folder = root.join(format!("reports/compare/{short}..{short}"));
    for name in ["comparetest", "comparetest2"] {
        let page = std::fs::read_to_string(folder.join(name).join("README.md")).unwrap();
        assert!(page.contains("identical tokens") && page.contains("| commits | base `"), "{page}");
        assert!(folder.join(name).join("results.json").is_file());
    }
    let index = std::fs::read_to_string(folder.join("README.md")).unwrap();
    assert!(index.starts_with("<!-- smallmind-compare -->"), "{index}");
    assert!(index.contains("[The report](comparetest2/README.md)"), "{index}");
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(summary.contains("**Tokens.** `comparetest`: identical (2 variant(s)"), "{summary}");
    // `cargo xtask summary` re-renders it from the folder.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("summary").arg(&folder).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("`comparetest2`: identical"), "{}", text(&out));

    // The slowed head: a regression, in fused-softmax's contribution.
    let out = compare(&[&head, &slowed, "--toggles", "lattice", "--iterations", "3"], root);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the fall is in `fused-softmax`'s contribution") && stdout.contains("REGRESSED"),
        "{}",
        text(&out)
    );

    // With --profiles: the page says where the time went, a softmax function first.
    std::fs::write(root.join("experiments/profiled.toml"), include_str!("../test_data/profiled.toml"))
        .unwrap();
    let out = compare(&[&head, &slowed, "--experiment", "profiled", "--profiles", "--iterations", "3"], root);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let folder = root.join(format!("reports/compare/{short}..{}/profiled", &slowed[..10]));
    let page = std::fs::read_to_string(folder.join("README.md")).unwrap();
    let worse = page.lines().find(|l| l.starts_with("- ") && l.contains(" worse: ")).expect("a worse line");
    assert!(
        worse.split(" worse: `").nth(1).unwrap_or_default().starts_with("smallmind::kernels::softmax::"),
        "{page}"
    );
    assert!(folder.join("diffs/head-vs-base.cpu.diff.svg").is_file());

    // Other weights, other tokens: stopped before any timing counts...
    let out = compare(&[&head, &retuned, "--quick"], root);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outputs differ"), "{}", text(&out));
    // ...unless allowed: then measured, and the page leads with where they differ.
    let out = compare(&[&head, &retuned, "--quick", "--allow-output-change"], root);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OUTPUTS DIFFER"), "{}", text(&out));
    let page = std::fs::read_to_string(
        root.join(format!("reports/compare/{short}..{}/comparetest/README.md", &retuned[..10])),
    )
    .unwrap();
    let lead = page.lines().nth(2).unwrap_or_default();
    assert!(lead.starts_with("**Outputs differ.**") && lead.contains("first differs at position"), "{page}");

    // A revision that does not build: said, exit 125 (neither good nor bad), nothing written.
    let out = compare(&[&head, &broken, "--quick"], root);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot compare"), "{}", text(&out));
    assert!(!root.join(format!("reports/compare/{short}..{}", &broken[..10])).exists());
}
