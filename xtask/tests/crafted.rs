//! Crafted and damaged workbench files never panic: seeded property tests of the experiment TOML
//! loader and the results and baseline JSON readers (through `cargo xtask report`'s code path).
//!
//! Each file is truncated at every line and at a seeded sample of byte offsets, has bytes
//! flipped, and has numbers replaced by 0, negative, huge, overflowing and NaN-like values. The
//! property: the load either succeeds or fails with a usage error (exit 2) of one line naming the
//! file (for TOML parse errors, with the line and column); it never panics (each case runs under
//! `catch_unwind`, so a failure names the case), and a failed load writes no file.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use xtask::error::Error;
use xtask::paths::Paths;
use xtask::plan::{Experiment, Plan};
use xtask::results;

/// Seeded byte offsets, flips and numbers per file.
const SAMPLES: usize = 60;

/// Replacements for a number: zero, negative, huge, overflowing, and spellings of NaN and infinity.
const NUMBERS: [&str; 10] = [
    "0",
    "-1",
    "-0.5",
    "1e308",
    "1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "nan",
    "inf",
    "\"NaN\"",
];

/// `original` cut at the end of every line.
fn every_line(original: &[u8]) -> Vec<(String, Vec<u8>)> {
    let ends = original.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i);
    ends.map(|i| (format!("truncated after line ending at byte {i}"), original[..i].to_vec())).collect()
}

/// `samples` seeded variants of `original` each of three kinds (cut, a byte flipped, a number
/// replaced), each with a name for the failure message.
fn variants(original: &[u8], seed: u64, samples: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..samples {
        let at = rng.random_range(0..original.len());
        out.push((format!("truncated at byte {at}"), original[..at].to_vec()));
        let mut flipped = original.to_vec();
        let mask = rng.random_range(1..=255u8);
        flipped[at] ^= mask;
        out.push((format!("byte {at} xor {mask:#04x}"), flipped));
    }
    // Numbers: each maximal run of digits (with sign, point and exponent) at a seeded sample of places.
    let text = String::from_utf8_lossy(original).into_owned();
    let numbers = number_spans(&text);
    for _ in 0..samples {
        let (start, end) = numbers[rng.random_range(0..numbers.len())];
        let with = NUMBERS[rng.random_range(0..NUMBERS.len())];
        let mut changed = text[..start].to_string();
        changed.push_str(with);
        changed.push_str(&text[end..]);
        out.push((
            format!("number `{}` at byte {start} set to {with}", &text[start..end]),
            changed.into_bytes(),
        ));
    }
    out
}

/// Byte spans of the numbers in `text` (outside nothing in particular: strings too, which is fine).
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = if i > 0 && bytes[i - 1] == b'-' { i - 1 } else { i };
            let mut end = i;
            while end < bytes.len() && (bytes[end].is_ascii_digit() || b".eE+-".contains(&bytes[end])) {
                end += 1;
            }
            spans.push((start, end));
            i = end;
        } else {
            i += 1;
        }
    }
    spans
}

/// Every file under `dir`, with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.map(Result::unwrap) {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let meta = e.metadata().unwrap();
                out.insert(path.display().to_string(), (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out
}

/// What is wrong with a load's outcome, if anything: it panicked, or failed other than with a
/// usage error of one line naming `file_name`.
fn problem(outcome: std::thread::Result<anyhow::Result<()>>, file_name: &str) -> Option<String> {
    let e = match outcome {
        Err(_) => return Some("panicked".to_string()),
        Ok(Ok(())) => return None,
        Ok(Err(e)) => e,
    };
    let line = e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
    if !e.chain().any(|c| matches!(c.downcast_ref::<Error>(), Some(Error::Usage(_)))) {
        Some(format!("not a usage error (exit 1, not 2): {line}"))
    } else if line.contains('\n') {
        Some(format!("more than one line: {line}"))
    } else if !line.contains(file_name) {
        Some(format!("does not name {file_name}: {line}"))
    } else {
        None
    }
}

/// The cases of one file, each first checked in memory by `parse` (the reader on bytes); those
/// it accepts, and every `FULL_EVERY`th it refuses, then run the whole task in one temporary
/// folder that `setup` prepares per case, where a failure must leave every file as it was.
/// Gives the failures of the property, each naming its case.
fn check_cases(
    what: &str,
    cases: Vec<(String, Vec<u8>)>,
    parse: impl Fn(&[u8]) -> anyhow::Result<()>,
    setup: impl Fn(&Path, &[u8]),
    task: impl Fn(&Paths) -> anyhow::Result<()>,
    file_name: &str,
) -> Vec<String> {
    const FULL_EVERY: usize = 25;
    let root = tempfile::tempdir().unwrap();
    let paths = Paths {
        experiments: root.path().join("experiments"),
        reports: root.path().join("reports"),
        baselines: root.path().join("baselines"),
        store: root.path().join("store.sqlite"),
    };
    let mut failures = Vec::new();
    for (i, (case, bytes)) in cases.into_iter().enumerate() {
        let parsed = catch_unwind(AssertUnwindSafe(|| parse(&bytes)));
        let refused = matches!(parsed, Ok(Err(_)));
        let mut found = problem(parsed, file_name);
        if found.is_none() && (!refused || i % FULL_EVERY == 0) {
            setup(root.path(), &bytes);
            let before = snapshot(root.path());
            let outcome = catch_unwind(AssertUnwindSafe(|| task(&paths)));
            let failed = !matches!(outcome, Ok(Ok(())));
            found = problem(outcome, file_name);
            if found.is_none() && failed && snapshot(root.path()) != before {
                found = Some("wrote files although it failed".into());
            }
        }
        if let Some(p) = found {
            failures.push(format!("{what}, {case}: {p}"));
        }
    }
    failures
}

#[test]
fn crafted_experiment_files_give_one_line_and_never_panic() {
    let dir = xtask::project_root().join("experiments");
    let mut failures = Vec::new();
    let with_position = std::cell::Cell::new(0);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    for (seed, path) in names.iter().enumerate() {
        let original = std::fs::read(path).unwrap();
        let mut cases = every_line(&original);
        cases.extend(variants(&original, seed as u64, SAMPLES));
        // The loader reads text: bytes that are not UTF-8 go through the file (an error naming it).
        let parse = |bytes: &[u8]| {
            let Ok(text) = std::str::from_utf8(bytes) else { return Ok(()) };
            let parsed = Experiment::parse(text, "crafted.toml").map_err(|e| Error::Usage(e.to_string()));
            if let Err(e) = &parsed
                && e.to_string().split(": ").next().is_some_and(|head| head.matches(':').count() == 2)
            {
                with_position.set(with_position.get() + 1);
            }
            // What the harness does with a loaded file before any run, too.
            parsed.map_err(anyhow::Error::from).map(|e| Plan::new("crafted", e).measured()).map(|_| ())
        };
        let setup = |root: &Path, bytes: &[u8]| {
            std::fs::create_dir_all(root.join("experiments")).unwrap();
            std::fs::write(root.join("experiments/crafted.toml"), bytes).unwrap();
        };
        let task = |paths: &Paths| {
            xtask::tasks::load("crafted", paths).map(|e| Plan::new("crafted", e).measured()).map(|_| ())
        };
        failures.extend(check_cases(&path.display().to_string(), cases, parse, setup, task, "crafted.toml"));
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
    assert!(with_position.get() > 100, "TOML parse errors give line and column ({})", with_position.get());
}

/// Mutates a committed results file in each of its roles: the report's `results.json`, the
/// stored baseline, and the bisect page's `bisect.json`; `cargo xtask report` reads all three.
#[test]
fn crafted_results_and_baseline_files_give_one_line_and_never_panic() {
    let repo = xtask::project_root();
    let original = std::fs::read(repo.join("reports/smoke/results.json")).unwrap();
    // A lattice (toggle sets named like `tensor-pool+kv-cache`) for the bisect page's role.
    let lattice = std::fs::read(repo.join("reports/kv-cache/bisect.json")).unwrap();
    // The same run as pretty JSON too, so that truncating at every line means something.
    let value: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let mut failures = Vec::new();
    // One reader serves the three roles: the first gets the most cases.
    for (role, file, source, seed, samples) in [
        ("results.json", "reports/smoke/results.json", &original, 100, SAMPLES),
        ("baseline", "baselines/smoke.json", &original, 200, SAMPLES / 3),
        ("bisect.json", "reports/smoke/bisect.json", &lattice, 300, SAMPLES / 3),
    ] {
        let name = Path::new(file).file_name().unwrap().to_string_lossy().into_owned();
        results::parse(source, &name).expect("the unchanged file is read");
        let mut cases = variants(source, seed, samples);
        if samples == SAMPLES {
            cases.extend(every_line(&pretty).into_iter().map(|(c, b)| (format!("pretty, {c}"), b)));
        }
        let parse = |bytes: &[u8]| results::parse(bytes, &name).map(|_| ());
        let setup = |root: &Path, bytes: &[u8]| {
            for dir in ["reports/smoke", "baselines"] {
                std::fs::create_dir_all(root.join(dir)).unwrap();
            }
            std::fs::write(root.join("reports/smoke/results.json"), &original).unwrap();
            std::fs::write(root.join("baselines/smoke.json"), &original).unwrap();
            std::fs::write(root.join(file), bytes).unwrap();
        };
        let task = |paths: &Paths| xtask::tasks::report::run("smoke", paths).map(|_| ());
        failures.extend(check_cases(role, cases, parse, setup, task, &name));
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// The checks beyond the JSON's types, one by one, each naming where the file is wrong.
#[test]
fn results_files_that_reports_cannot_rely_on_are_refused_naming_the_place() {
    let original = std::fs::read(xtask::project_root().join("reports/smoke/results.json")).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = value.clone();
        edit(&mut v);
        let err = results::parse(&serde_json::to_vec(&v).unwrap(), "r.json").unwrap_err();
        assert!(matches!(err.downcast_ref::<Error>(), Some(Error::Usage(_))), "{err}");
        err.to_string()
    };
    assert!(results::parse(&original, "r.json").is_ok());
    assert_eq!(
        refused(&|v| v["points"] = serde_json::json!([])),
        "r.json: no points: a results file holds at least one"
    );
    assert_eq!(
        refused(&|v| v["points"][0]["variants"][1]["reference"] = true.into()),
        "r.json: 2 reference variants; a point has exactly one"
    );
    let name = value["points"][0]["variants"][0]["name"].clone();
    assert!(
        refused(&|v| v["points"][0]["variants"][1]["name"] = name.clone()).contains("two variants are named")
    );
    assert_eq!(
        refused(&|v| v["points"][0]["variants"][0]["runs"][1]["iterations"][0]["ttft_ms"] = (-2.5).into()),
        "r.json: points[0].variants[0].runs[1].iterations[0].ttft_ms is negative (-2.5); a results file holds no \
         negative number"
    );
    assert_eq!(
        refused(&|v| v["schema_version"] = 99.into()),
        "r.json: schema version 99, this harness reads 1; re-run the experiment (and re-save the baseline)"
    );
    assert!(
        refused(&|v| v["spec"]["variant"][0]["name"] = "a b".into())
            .starts_with("r.json: spec: variant name")
    );
    // Counts up to u64::MAX, in a run of two ops, are averaged without overflow.
    let mut v = value.clone();
    let ops = v["points"][0]["variants"][0]["runs"][0]["iterations"].as_array_mut().unwrap();
    ops[0]["alloc_count"] = u64::MAX.into();
    ops.push(ops[0].clone());
    assert!(results::parse(&serde_json::to_vec(&v).unwrap(), "r.json").is_ok());
}

/// The checks refuse nothing the harness itself wrote: every committed results, baseline and
/// bisect file reads without complaint.
#[test]
fn every_committed_results_file_passes_the_reader() {
    let repo = xtask::project_root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(repo.join("reports")).unwrap() {
        let dir = entry.unwrap().path();
        for name in ["results.json", "bisect.json", "bisect-before.json", "calibration.json"] {
            files.push(dir.join(name));
        }
    }
    let paths = Paths::default();
    for entry in std::fs::read_dir(repo.join("baselines")).unwrap() {
        let path = entry.unwrap().path();
        // Noise floors are read by their own reader (and checked by it).
        match path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".noise.json")) {
            Some(name) => {
                assert!(xtask::tasks::read_noise(&paths, name).unwrap().is_some(), "{}", path.display())
            }
            None => files.push(path),
        }
    }
    let files: Vec<_> =
        files.into_iter().filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "json")).collect();
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        if let Err(e) = results::read(&f) {
            panic!("{e}");
        }
    }
}
