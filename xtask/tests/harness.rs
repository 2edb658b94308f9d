//! The harness end to end: the report renderer against a golden file, baseline verdicts and exit
//! codes, an interrupted run, and `cargo xtask experiment smoke` into a temporary directory; a
//! baseline that does not fit (each kind on synthetic results, the renamed-variant case end to
//! end, a bisect baseline of another workload), and every committed baseline fitting its file.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite `test_data/report.md` after an intended change to the report.

use smallmind::bench::env::Environment;
use smallmind::bench::results::{Iteration, PoolReport};
use smallmind::{Optimizations, pool::PoolStats};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use xtask::analysis::baseline::{self, MisfitKind};
use xtask::analysis::{Analysis, BaselineState};
use xtask::metrics::Metric;
use xtask::plan::{Experiment, Plan};
use xtask::report::{self, ChartRef};
use xtask::results::*;

const SPEC: &str = r#"
description = "What does the fixture's cache buy?"
[hypothesis]
claim = "1.5-2x faster"
metric = "decode_tok_s"
speedup = [1.5, 2.0]
[workload]
model = "tiny"
prompt_tokens = 8
max_new_tokens = 4
[[variant]]
name = "plain"
reference = true
optimizations = { all = false }
[[variant]]
name = "fast"
"#;

fn environment(host: &str) -> Environment {
    Environment {
        cpu_model: "Test CPU".into(),
        hardware: Default::default(),
        logical_cores: 2,
        memory_total_bytes: Some(8 << 30),
        hostname: host.into(),
        os: "TestOS".into(),
        kernel: "1.0".into(),
        simd_level: "avx2+fma".into(),
        rustc: "rustc 1.95.0".into(),
        build_profile: "release".into(),
        opt_level: "3".into(),
        debug_assertions: false,
        features: vec![],
        target: "x86_64-unknown-linux-gnu".into(),
        target_cpu: "generic".into(),
        target_features: "sse2".into(),
        rustflags: String::new(),
        smallmind_version: "0.1.0".into(),
        git_commit: "0123456789abcdef".into(),
        git_dirty: "false".into(),
        timestamp: "2026-01-01T00:00:00Z".into(),
        command_line: "smallmind bench".into(),
    }
}

/// One op: `decode` tok/s, `allocs` allocations of 100 bytes, four tokens at even spacing.
fn iteration(decode: f64, ttft: f64, allocs: u64) -> Iteration {
    let gap = 1000.0 / decode;
    Iteration {
        ttft_ms: ttft,
        encode_ms: 0.0,
        prefill_ms: ttft,
        prefill_tok_s: 8.0 / ttft * 1000.0,
        decode_tok_s: Some(decode),
        end_to_end_tok_s: 4.0 / (ttft + 3.0 * gap) * 1000.0,
        total_ms: ttft + 3.0 * gap,
        generated_tokens: 4,
        inter_token_ms: vec![gap; 3],
        alloc_count: allocs,
        alloc_bytes: allocs * 100,
        prefill_alloc_count: allocs,
        prefill_alloc_bytes: allocs * 100,
        decode_alloc_count: 0,
        decode_alloc_bytes: 0,
        peak_heap_bytes: 1 << 20,
        peak_heap_growth_bytes: 4096,
        pool_rents: 0,
        pool_hits: 0,
        pool_misses: 0,
    }
}

/// Fixed results: `fast` decodes `speedup` times faster than `plain` (with ±1% wiggle).
fn fixture(speedup: f64, host: &str) -> ExperimentResults {
    let spec = Experiment::parse(SPEC, "fixture.toml").unwrap();
    let point = spec.sweep_points().remove(0).point;
    let wiggle = [1.0, 1.01, 0.99, 1.005, 0.995];
    let variant = |name: &str, reference: bool, base: f64, allocs: u64| VariantResults {
        name: name.into(),
        reference,
        optimizations: if reference { Optimizations::none() } else { Optimizations::all() },
        workload: spec.workload.clone(),
        runs: wiggle
            .iter()
            .enumerate()
            .map(|(round, w)| RunRecord {
                round,
                position: usize::from(reference == (round % 2 == 0)),
                iterations: vec![iteration(base * w, 0.5 / w, allocs)],
                phases: None,
                pool: PoolReport {
                    rents_per_op: 0.0,
                    hits_per_op: 0.0,
                    misses_per_op: 0.0,
                    hit_rate: None,
                    session: PoolStats::default(),
                },
                digest: "sha256:00ff".into(),
                machine: None,
            })
            .collect(),
    };
    ExperimentResults {
        schema_version: SCHEMA_VERSION,
        experiment: "fixture".into(),
        command: "cargo xtask experiment fixture".into(),
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:01:00Z".into(),
        rounds: 5,
        environment: environment(host),
        points: vec![PointResults {
            point,
            variants: vec![variant("plain", true, 1000.0, 500), variant("fast", false, 1000.0 * speedup, 20)],
            correctness: Correctness {
                reference_digest: "sha256:00ff".into(),
                generated_tokens: 4,
                digests: vec![("plain".into(), "sha256:00ff".into()), ("fast".into(), "sha256:00ff".into())],
                divergences: vec![],
            },
            stopped: None,
            rerun: Vec::new(),
        }],
        profiles: vec![],
        spec,
        compare: None,
    }
}

/// The fixture as a baseline stored from an earlier run (a run that is its own baseline is
/// reported as such, not compared).
fn stored(speedup: f64, host: &str) -> ExperimentResults {
    let mut earlier = fixture(speedup, host);
    earlier.finished = "2025-12-01T00:00:00Z".into();
    earlier
}

fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name)
}

#[test]
fn the_report_matches_the_golden_file() {
    let now = fixture(3.0, "a");
    let check = baseline::check(&now, &stored(3.0, "a"), 0.1);
    let charts = [ChartRef { file: "throughput.svg".into(), caption: "Decode throughput".into() }];
    let markdown = report::render(&Analysis::new(&now, BaselineState::Checked(check)), &charts);
    let golden = test_data("report.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &markdown).unwrap();
    }
    let expected =
        std::fs::read_to_string(&golden).expect("test_data/report.md exists (UPDATE_GOLDEN=1 makes it)");
    assert_eq!(
        markdown, expected,
        "the report changed; if intended, re-run with UPDATE_GOLDEN=1 and review the diff"
    );
    assert!(markdown.contains("expected 1.5-2x, measured 3x"), "the hypothesis line");
    assert!(markdown.contains("exceeds the claim"));
}

/// The fixture as a `compare` run: `plain` is the base, `fast` (decoding `speedup` times as fast)
/// the head, whose tokens differ at position 2.
fn compare_fixture(speedup: f64) -> ExperimentResults {
    use xtask::runner::revision::Revision;
    let mut r = fixture(speedup, "a");
    let point = &mut r.points[0];
    for v in &mut point.variants {
        v.name = if v.reference { "base" } else { "head" }.into();
    }
    point.correctness.digests =
        vec![("base".into(), "sha256:00ff".into()), ("head".into(), "sha256:00ee".into())];
    point.correctness.divergences =
        vec![Divergence { variant: "head".into(), position: 2, expected: Some(7), got: Some(9) }];
    let revision = |spec: &str, hex: char, working_tree: bool| Revision {
        spec: spec.into(),
        commit: std::iter::repeat_n(hex, 40).collect(),
        working_tree,
        dirty: working_tree,
    };
    r.compare = Some(CompareRecord {
        experiment: "fixture".into(),
        base: revision("main", 'a', false),
        head: revision("working tree", 'b', true),
    });
    r
}

#[test]
fn the_compare_summary_matches() {
    use xtask::analysis::compare::CompareAnalysis;
    use xtask::report::compare::{MARKER, SummaryStyle, summary};
    let r = compare_fixture(0.8);
    let charts = vec!["throughput.svg".to_string()];
    let runs = [(CompareAnalysis::of(&r).unwrap(), charts)];
    let markdown = summary(&runs, "reports/compare/x..y", SummaryStyle { all: false, links: false });
    let golden = test_data("compare-summary.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &markdown).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("test_data/compare-summary.md exists (UPDATE_GOLDEN=1 makes it)");
    assert_eq!(
        markdown, expected,
        "the summary changed; if intended, re-run with UPDATE_GOLDEN=1 and review the diff"
    );
    assert!(markdown.starts_with(MARKER), "the marker a bot finds its comment by comes first");
    assert!(markdown.contains("**Outputs differ** in `fixture`"), "{markdown}");
    assert!(
        markdown.contains("**Regressed** beyond the 10% tolerance: `fixture` decode_tok_s -20.0%"),
        "{markdown}"
    );
    // Only what moved is listed above the fold: TTFT did not.
    let (above, details) = markdown.split_once("<details>").unwrap();
    assert!(!above.contains("ttft_ms") && details.contains("ttft_ms"), "{markdown}");
    // The same head, not slower: no regression, and a faster head says so.
    let faster = compare_fixture(1.3);
    let runs = [(CompareAnalysis::of(&faster).unwrap(), vec![])];
    let markdown = summary(&runs, "reports/compare/x..y", SummaryStyle { all: false, links: true });
    assert!(markdown.contains("**Faster**: `fixture` decode_tok_s +30.0%"), "{markdown}");
    assert!(markdown.contains("[The report](fixture/README.md)"), "{markdown}");
}

#[test]
fn baseline_verdicts() {
    // The same run: nothing regressed, absolute figures compared on the same machine.
    let same = baseline::check(&fixture(3.0, "a"), &stored(3.0, "a"), 0.1);
    assert!(same.comparable && same.regressions().next().is_none(), "{same:?}");
    assert!(same.rows.iter().any(|r| !r.is_speedup && r.metric == Metric::DecodeTokS));
    // The speedup fell from 3x to 2x: a regression, named by subject and metric.
    let fell = baseline::check(&fixture(2.0, "a"), &stored(3.0, "a"), 0.1);
    let regressed: Vec<String> =
        fell.regressions().map(|r| format!("{} {}", r.subject, r.metric.name())).collect();
    assert!(regressed.contains(&"fast vs plain decode_tok_s".to_string()), "{regressed:?}");
    // Another machine: absolute timings are not compared, speedups and allocations are.
    let elsewhere = baseline::check(&fixture(3.0, "b"), &stored(3.0, "a"), 0.1);
    assert!(!elsewhere.comparable);
    assert!(elsewhere.rows.iter().all(|r| r.is_speedup || r.metric.is_exact()), "{elsewhere:?}");
    let markdown = report::render(&Analysis::new(&fixture(3.0, "b"), BaselineState::Checked(elsewhere)), &[]);
    assert!(markdown.contains("Different machine: absolute figures not compared"));
    // No baseline: the report says how to make one.
    let markdown = report::render(&Analysis::new(&fixture(3.0, "a"), BaselineState::Missing), &[]);
    assert!(markdown.contains("cargo xtask baseline fixture"));
}

/// Multiplies `variant`'s decode speed in every round by `factor`.
fn scale_decode(r: &mut ExperimentResults, variant: &str, factor: f64) {
    for point in &mut r.points {
        for v in point.variants.iter_mut().filter(|v| v.name == variant) {
            for it in v.runs.iter_mut().flat_map(|run| run.iterations.iter_mut()) {
                it.decode_tok_s = it.decode_tok_s.map(|d| d * factor);
                it.inter_token_ms.iter_mut().for_each(|g| *g /= factor);
            }
        }
    }
}

/// The README's main job once exited 3 on an unchanged tree: `recompute` (the reference) had
/// got 1.44x faster since the baseline's engine and `cached` 1.08x, so their ratio fell to 0.75x
/// of the baseline's. A ratio is judged through its parts: the reference's improvement is said
/// (and makes the baseline stale), never called a regression; a candidate that got slower still is.
#[test]
fn a_ratio_that_fell_because_its_reference_improved_is_not_a_regression() {
    let mut now = fixture(3.0 * 1.08, "a");
    scale_decode(&mut now, "plain", 1.44);
    let check = baseline::check(&now, &stored(3.0, "a"), 0.1);
    let ratio = check.rows.iter().find(|r| r.is_speedup && r.metric == Metric::DecodeTokS).unwrap();
    assert!((ratio.change.point - 0.75).abs() < 0.01, "{ratio:?}");
    assert!(!ratio.regressed && ratio.fell_by_its_reference(), "{ratio:?}");
    let parts = ratio.parts.unwrap();
    assert!((parts.reference.point - 1.44).abs() < 0.01 && (parts.candidate.point - 1.08).abs() < 0.01);
    assert_eq!(check.regressions().count(), 0, "{check:?}");
    // The reference's own figure improved beyond tolerance: the baseline is stale, and says so.
    let stale: Vec<&str> = check.improved_beyond().map(|r| r.subject.as_str()).collect();
    assert_eq!(stale, ["plain"]);
    let markdown = report::render(&Analysis::new(&now, BaselineState::Checked(check)), &[]);
    assert!(markdown.contains("ok: the reference is 1.44x faster, the candidate 1.08x"), "{markdown}");
    assert!(markdown.contains("the baseline is stale (`cargo xtask baseline fixture`)"), "{markdown}");

    // The same fall with a candidate that got slower too is a regression, of both figures.
    let mut worse = fixture(3.0 * 0.8, "a");
    scale_decode(&mut worse, "plain", 1.44);
    let check = baseline::check(&worse, &stored(3.0, "a"), 0.1);
    let regressed: Vec<(String, bool)> =
        check.regressions().map(|r| (r.subject.clone(), r.is_speedup)).collect();
    assert_eq!(regressed, [("fast vs plain".to_string(), true), ("fast".to_string(), false)], "{check:?}");

    // Through the command: exit 0, and one line saying the baseline is stale.
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    let write = report_folders(root.path());
    write("reports/fixture/results.json", &now);
    write("baselines/fixture.json", &stored(3.0, "a"));
    let out = xtask(&with_dirs(&["report", "fixture"], &d));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("stale baseline: 1 figure(s) improved beyond tolerance (plain decode_tok_s"),
        "{stderr}"
    );
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().expect("xtask runs")
}

fn dirs(root: &Path) -> Vec<String> {
    ["experiments", "reports", "baselines"]
        .iter()
        .flat_map(|d| [format!("--{d}-dir"), root.join(d).display().to_string()])
        .chain(["--store".to_string(), root.join("store.sqlite").display().to_string()])
        .collect()
}

/// Makes the folders `report` reads under `root`; gives a writer of results files into them
/// (`reports/fixture/results.json`, `baselines/fixture.json`).
fn report_folders(root: &Path) -> impl Fn(&str, &ExperimentResults) + '_ {
    for dir in ["experiments", "reports/fixture", "baselines"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    move |path, r| std::fs::write(root.join(path), serde_json::to_vec(r).unwrap()).unwrap()
}

fn with_dirs<'a>(args: &[&'a str], dirs: &'a [String]) -> Vec<&'a str> {
    args.iter().copied().chain(dirs.iter().map(String::as_str)).collect()
}

#[test]
fn report_exits_3_on_a_regression_against_the_baseline() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    let write = report_folders(root.path());
    write("reports/fixture/results.json", &fixture(2.0, "a"));
    write("baselines/fixture.json", &stored(3.0, "a"));
    let out = xtask(&with_dirs(&["report", "fixture"], &d));
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REGRESSION"));
    let readme = std::fs::read_to_string(root.path().join("reports/fixture/README.md")).unwrap();
    assert!(readme.contains("**regressed**"));
    // Within tolerance: exit 0.
    write("baselines/fixture.json", &stored(2.05, "a"));
    assert_eq!(xtask(&with_dirs(&["report", "fixture"], &d)).status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_with_the_file_line_and_column() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    std::fs::create_dir_all(root.path().join("experiments")).unwrap();
    std::fs::write(
        root.path().join("experiments/bad.toml"),
        SPEC.replace("[[variant]]\nname = \"fast\"", "[[variant]]\nname = \"fast\"\nspeed = 3"),
    )
    .unwrap();
    let out = xtask(&with_dirs(&["experiment", "bad"], &d));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml:17:1: unknown field `speed`"), "{stderr}");
    let out = xtask(&with_dirs(&["experiment", "nope"], &d));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no experiment `nope`"));
    let listed = xtask(&with_dirs(&["list"], &d));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("bad"));
}

/// The repository's smoke experiment, run for real (release build, spawned engine) into a
/// temporary directory; then a failing run must leave that report untouched.
#[test]
fn smoke_runs_end_to_end_and_a_failed_run_keeps_the_old_report() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    let experiments = root.path().join("experiments");
    std::fs::create_dir_all(&experiments).unwrap();
    let smoke = std::fs::read_to_string(xtask::project_root().join("experiments/smoke.toml")).unwrap();
    std::fs::write(experiments.join("smoke.toml"), &smoke).unwrap();

    let out = xtask(&with_dirs(&["experiment", "smoke", "--quick", "--save-baseline"], &d));
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = root.path().join("reports/smoke");
    let readme = std::fs::read_to_string(report.join("README.md")).unwrap();
    for needle in [
        "**Verdict.**",
        "## Correctness",
        "all 2 variants generated the same",
        "| decode_tok_s |",
        "## Method",
        "throughput.svg",
    ] {
        assert!(readme.contains(needle), "`{needle}` not in the report");
    }
    for chart in ["throughput.svg", "ttft.svg", "latency.svg", "phases.svg", "allocations.svg"] {
        let svg = std::fs::read_to_string(report.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("all-on"), "{chart}");
    }
    assert!(report.join("profiles/all-on.flamegraph.svg").is_file());
    let results = xtask::results::read(&report.join("results.json")).unwrap();
    assert_eq!(results.rounds, 2);
    assert!(results.points[0].variants.iter().all(|v| v.runs.len() == 2));
    assert!(root.path().join("baselines/smoke.json").is_file());

    // A second point that cannot run: the experiment fails and the report stays as it was.
    std::fs::write(
        experiments.join("smoke.toml"),
        format!("{smoke}\n[sweep]\nmodel = [\"tiny\", \"no-such-model\"]\n"),
    )
    .unwrap();
    // (`--save-baseline`: the new point does not fit the stored baseline, which would otherwise
    // refuse the run before it starts; a failed run must leave the baseline alone too.)
    let baseline_before = std::fs::read(root.path().join("baselines/smoke.json")).unwrap();
    let out = xtask(&with_dirs(&["experiment", "smoke", "--quick", "--no-profiles", "--save-baseline"], &d));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(root.path().join("baselines/smoke.json")).unwrap(), baseline_before);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-model"));
    assert_eq!(std::fs::read_to_string(report.join("README.md")).unwrap(), readme);
    let leftovers: Vec<_> =
        std::fs::read_dir(root.path().join("reports")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["smoke"], "no staging folder left behind");
}

/// `check` on synthetic results whose baseline does not fit: `(variant, point, kind)` per misfit.
fn misfits(now: &ExperimentResults, before: &ExperimentResults) -> Vec<(String, String, MisfitKind)> {
    baseline::check(now, before, 0.1).misfits.into_iter().map(|m| (m.variant, m.point, m.kind)).collect()
}

fn renamed(r: &mut ExperimentResults, from: &str, to: &str) {
    for p in &mut r.points {
        for v in p.variants.iter_mut().filter(|v| v.name == from) {
            v.name = to.into();
        }
    }
}

#[test]
fn a_matching_baseline_fits_and_compares_every_variant() {
    let check = baseline::check(&fixture(3.0, "a"), &stored(3.0, "a"), 0.1);
    assert_eq!(check.misfits, []);
    let subjects: Vec<&str> = check.rows.iter().map(|r| r.subject.as_str()).collect();
    for s in ["plain", "fast", "fast vs plain"] {
        assert!(subjects.contains(&s), "{s} not compared: {subjects:?}");
    }
}

#[test]
fn a_renamed_candidate_is_named_per_variant_and_never_a_pass() {
    let mut before = stored(3.0, "a");
    renamed(&mut before, "fast", "cached");
    let now = fixture(3.0, "a");
    assert_eq!(
        misfits(&now, &before),
        [
            ("fast".into(), String::new(), MisfitKind::NoBaseline),
            ("cached".into(), String::new(), MisfitKind::Vanished)
        ]
    );
    let check = baseline::check(&now, &before, 0.1);
    assert!(check.rows.iter().all(|r| r.subject == "plain"), "only the reference compared: {:?}", check.rows);
    let markdown = report::render(&Analysis::new(&now, BaselineState::Checked(check)), &[]);
    for needle in [
        "Baseline: **does not fit** (2 not compared).",
        "**The baseline does not fit this run**, so this comparison is not a pass.",
        "- `fast`: not in the baseline (a new or renamed variant)",
        "- `cached`: in the baseline, no longer run (removed or renamed)",
        "`cargo xtask baseline fixture`",
        "| does not fit |",
    ] {
        assert!(markdown.contains(needle), "`{needle}` not in the report:\n{markdown}");
    }
    assert!(!markdown.contains("no regression"));
}

#[test]
fn a_different_workload_toggle_set_or_sweep_point_is_named() {
    let now = fixture(3.0, "a");
    let mut before = stored(3.0, "a");
    before.points[0].variants[1].workload.max_new_tokens = 8;
    assert_eq!(
        misfits(&now, &before),
        [("fast".into(), String::new(), MisfitKind::Workload(vec!["max_new_tokens 8 -> 4".into()]))]
    );
    let check = baseline::check(&now, &before, 0.1);
    assert!(check.rows.iter().all(|r| r.subject == "plain"), "{:?}", check.rows);

    let mut before = stored(3.0, "a");
    before.points[0].variants[1].optimizations.set(smallmind::Optimization::KvCache, false);
    assert_eq!(
        misfits(&now, &before),
        [("fast".into(), String::new(), MisfitKind::Toggles(vec!["kv-cache off -> on".into()]))]
    );

    // The baseline ran at another sweep point: every variant is named at both points.
    let mut before = stored(3.0, "a");
    before.points[0].point.label = "max_new_tokens=4".into();
    let got = misfits(&now, &before);
    assert_eq!(
        got,
        [
            ("plain".into(), String::new(), MisfitKind::NewPoint),
            ("fast".into(), String::new(), MisfitKind::NewPoint),
            ("plain".into(), "max_new_tokens=4".into(), MisfitKind::GonePoint),
            ("fast".into(), "max_new_tokens=4".into(), MisfitKind::GonePoint),
        ]
    );
    assert!(baseline::check(&now, &before, 0.1).rows.is_empty());
}

#[test]
fn a_figure_only_the_baseline_holds_is_named() {
    let now = {
        let mut r = fixture(3.0, "a");
        for run in &mut r.points[0].variants[1].runs {
            run.iterations[0].decode_tok_s = None;
        }
        r
    };
    let got = misfits(&now, &stored(3.0, "a"));
    assert_eq!(
        got,
        [
            (
                "fast".into(),
                String::new(),
                MisfitKind::Figure { metric: Metric::DecodeTokS, speedup: true, in_baseline: true }
            ),
            (
                "fast".into(),
                String::new(),
                MisfitKind::Figure { metric: Metric::DecodeTokS, speedup: false, in_baseline: true }
            ),
        ]
    );
}

#[test]
fn report_exits_2_when_the_baseline_does_not_fit_and_names_it() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    for dir in ["experiments", "reports/fixture", "baselines"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let mut before = stored(3.0, "a");
    renamed(&mut before, "fast", "cached");
    std::fs::write(root.path().join("baselines/fixture.json"), serde_json::to_vec(&before).unwrap()).unwrap();
    std::fs::write(
        root.path().join("reports/fixture/results.json"),
        serde_json::to_vec(&fixture(3.0, "a")).unwrap(),
    )
    .unwrap();
    let out = xtask(&with_dirs(&["report", "fixture"], &d));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: the baseline of `fixture` does not fit")
            && stderr.contains("`fast`: not in the baseline")
            && stderr.contains("`cached`: in the baseline, no longer run")
            && stderr.contains("run `cargo xtask baseline fixture`"),
        "{stderr}"
    );
    let readme = std::fs::read_to_string(root.path().join("reports/fixture/README.md")).unwrap();
    assert!(readme.contains("**The baseline does not fit this run**"));
}

/// The bug log's case (`harness_cases.sh`): a baseline saved with variants `recompute` and
/// `cached`, then `cached` renamed to `kv-on`. `check` and `experiment` must refuse it before
/// building or measuring anything; re-saving the baseline makes the two fit again.
#[test]
fn a_renamed_variant_fails_check_before_measuring() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    let experiments = root.path().join("experiments");
    std::fs::create_dir_all(&experiments).unwrap();
    let file = include_str!("../test_data/two_variants.toml");
    std::fs::write(experiments.join("renamed.toml"), file).unwrap();
    let out = xtask(&with_dirs(&["baseline", "renamed", "--quick", "--no-profiles"], &d));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report_before = std::fs::read_to_string(root.path().join("reports/renamed/README.md")).unwrap();

    std::fs::write(experiments.join("renamed.toml"), file.replace("\"cached\"", "\"kv-on\"")).unwrap();
    let expected = "error: the baseline of `renamed` does not fit the experiment: `kv-on`: not in the baseline \
                    (a new or renamed variant); `cached`: in the baseline, no longer run (removed or renamed); run \
                    `cargo xtask baseline renamed`\n";
    for task in ["check", "experiment"] {
        let out = xtask(&with_dirs(&[task, "renamed", "--quick", "--no-profiles"], &d));
        // One line and nothing else: no build, no measurement, no report.
        assert_eq!(out.status.code(), Some(2), "{task}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{task}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{task}");
    }
    let report_now = std::fs::read_to_string(root.path().join("reports/renamed/README.md")).unwrap();
    assert_eq!(report_now, report_before, "the refused runs left the report alone");

    // Replacing the baseline: the report names what the old one did not fit, and the run is not
    // refused (exit 0, or 3 should the fitting reference's timings have moved on a busy machine).
    let out =
        xtask(&with_dirs(&["experiment", "renamed", "--quick", "--no-profiles", "--save-baseline"], &d));
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&out.stderr));
    let readme = std::fs::read_to_string(root.path().join("reports/renamed/README.md")).unwrap();
    assert!(
        readme.contains("- `kv-on`: not in the baseline") && readme.contains("- `cached`: in the baseline")
    );
    // Now it fits: check compares the renamed variant (its timing verdict is not this test's business).
    let out = xtask(&with_dirs(&["check", "renamed"], &d));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("kv-on vs recompute decode_tok_s speedup"), "{stdout}");
    assert!(!stdout.contains("NOT COMPARED"), "{stdout}");

    // A damaged baseline: refused with one line saying how to replace it, which then works.
    let baseline = root.path().join("baselines/renamed.json");
    let bytes = std::fs::read(&baseline).unwrap();
    std::fs::write(&baseline, &bytes[..bytes.len() / 2]).unwrap();
    for task in ["check", "experiment"] {
        let out = xtask(&with_dirs(&[task, "renamed", "--quick", "--no-profiles"], &d));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{task}: {stderr}");
        assert!(
            stderr.lines().count() == 1
                && stderr.contains("renamed.json: not an experiment results file: EOF while parsing")
                && stderr.trim_end().ends_with("run `cargo xtask baseline renamed` to replace it"),
            "{task}: {stderr}"
        );
    }
    let out = xtask(&with_dirs(&["baseline", "renamed", "--quick", "--no-profiles"], &d));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(xtask::results::read(&baseline).is_ok());
}

/// A bisect baseline of another workload stops `bisect` before it builds or measures anything.
#[test]
fn bisect_refuses_a_bisect_baseline_that_does_not_fit() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    for dir in ["experiments", "baselines"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let repo = xtask::project_root();
    // The committed lattice ran the reference workload at the sweep's last point, 512 tokens.
    std::fs::copy(
        repo.join("reports/kv-cache/bisect.json"),
        root.path().join("baselines/kv-cache.bisect.json"),
    )
    .unwrap();
    let file = std::fs::read_to_string(repo.join("experiments/kv-cache.toml")).unwrap();
    let shorter =
        file.replace("max_new_tokens = [32, 64, 128, 256, 512]", "max_new_tokens = [32, 64, 128, 256]");
    assert_ne!(shorter, file, "the sweep line of experiments/kv-cache.toml changed; update this test");
    std::fs::write(root.path().join("experiments/kv-cache.toml"), shorter).unwrap();
    let out = xtask(&with_dirs(&["bisect", "kv-cache", "--full"], &d));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, nothing built: {stderr}");
    assert!(
        stderr.starts_with("error: the bisect baseline of `kv-cache` does not fit the experiment: `all-off`: workload differs from the baseline's (max_new_tokens 512 -> 256)")
            && stderr.trim_end().ends_with("run `cargo xtask bisect kv-cache --save-baseline --full`"),
        "{stderr}"
    );
    assert!(!root.path().join("reports").exists(), "nothing written");
}

/// Every committed baseline fits its committed experiment (and the bisect baseline its lattice),
/// so that `cargo xtask check NAME` compares everything: editing an experiment file means storing
/// its baseline again.
#[test]
fn every_committed_baseline_fits_its_experiment() {
    let paths = xtask::paths::Paths::default();
    let mut checked = 0;
    for (name, _) in xtask::tasks::list::experiments(&paths).unwrap() {
        let e = xtask::tasks::load(&name, &paths).unwrap();
        let stored = paths.baseline(&name);
        if stored.is_file() {
            let stored = xtask::results::read(&stored).unwrap();
            if let Err(err) = xtask::tasks::require_fit(&Plan::new(&name, e.clone()), &stored) {
                panic!("{err}");
            }
            checked += 1;
        }
        let bisect = paths.bisect_baseline(&name);
        if bisect.is_file() {
            let stored = xtask::results::read(&bisect).unwrap();
            let named: Vec<_> = xtask::analysis::bisect::configs(false)
                .into_iter()
                .map(|o| (xtask::analysis::bisect::config_name(o), o))
                .collect();
            let lattice = Plan::new(&name, e.derived(&named));
            let misfits = xtask::analysis::bisect::baseline_misfits(&lattice.measured(), &stored.measured());
            assert!(misfits.is_empty(), "{name} bisect: {misfits:?}");
        }
    }
    assert!(checked >= 5, "{checked} baselines checked");
}

/// A misspelt `--engine-features` once gave exit 125 ("cannot test this commit"), so `git bisect
/// run` would have skipped every commit on the user's typo: it is a usage error naming the
/// feature, found before anything is built.
#[test]
fn a_misspelt_engine_feature_is_a_usage_error_not_an_untestable_commit() {
    let root = tempfile::tempdir().unwrap();
    let d = dirs(root.path());
    for dir in ["experiments", "baselines"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for file in ["experiments/kv-cache.toml", "baselines/kv-cache.json"] {
        std::fs::copy(repo.join(file), root.path().join(file)).unwrap();
    }
    for task in ["check", "experiment"] {
        let out = xtask(&with_dirs(&[task, "kv-cache", "--engine-features", "slow-fused-softmx"], &d));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{task}: {stderr}");
        assert!(
            stderr.contains("no feature `slow-fused-softmx`") && stderr.contains("slow-fused-softmax"),
            "{stderr}"
        );
        assert!(!stderr.contains("building the engine"), "{stderr}");
    }
}

/// Two runs of one experiment at once would share its scratch and staging folders and measure
/// each other (the second once failed after minutes with "cannot write ... No such file or
/// directory"): the second is refused at its start, naming the first.
#[test]
fn a_second_run_of_the_same_experiment_is_refused_at_its_start() {
    let root = tempfile::tempdir().unwrap();
    let paths = xtask::paths::Paths {
        experiments: root.path().join("experiments"),
        reports: root.path().join("reports"),
        baselines: root.path().join("baselines"),
        store: root.path().join("store.sqlite"),
    };
    let held = xtask::paths::RunLock::take(&paths, "kv-cache").unwrap();
    let err = xtask::paths::RunLock::take(&paths, "kv-cache").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("`kv-cache` is being run by another process (pid "), "{message}");
    assert_eq!(xtask::error::exit_code(&err), 2);
    // Another experiment is not held up; the lock goes with its holder.
    drop(xtask::paths::RunLock::take(&paths, "tensor-pool").unwrap());
    drop(held);
    drop(xtask::paths::RunLock::take(&paths, "kv-cache").unwrap());
}

/// The README's main job, `cargo xtask experiment kv-cache`, must end in exit 0 on an unchanged
/// tree (it once exited 3 on a fresh clone: its baseline was measured on an older engine). Its
/// committed baseline describes the committed engine: measured on a clean tree whose engine
/// inputs (`src/`, `build.rs`, the manifests, the lock file, `.cargo/`) are `HEAD`'s. A change
/// to the engine stores it again: `cargo xtask baseline kv-cache`, on a quiet machine.
#[test]
fn the_main_job_s_baseline_describes_the_committed_engine() {
    use xtask::runner::revision::engine_inputs;
    let stored = xtask::results::read(&xtask::project_root().join("baselines/kv-cache.json")).unwrap();
    let env = &stored.environment;
    assert_eq!(
        env.git_dirty, "false",
        "baselines/kv-cache.json was measured on a tree with uncommitted changes"
    );
    assert_eq!(
        engine_inputs(&env.git_commit),
        engine_inputs("HEAD"),
        "baselines/kv-cache.json was measured on the engine of {}, and the engine changed since: run \
         `cargo xtask baseline kv-cache` on a quiet machine and commit it",
        env.git_commit
    );
}
