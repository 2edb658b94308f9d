//! Runs an experiment: builds the engine in release, checks that every variant generates the
//! reference's tokens, then measures every variant as its own `smallmind bench` process,
//! round after round in alternating order, and captures profiles in runs of their own.
//!
//! The harness never measures inside itself: it only spawns the release binary and reads the
//! results files it writes.

use crate::results::*;
use crate::spec::{Experiment, Metric, SweepPoint, Workload, at};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use smallmind::Optimizations;
use smallmind::bench::results::BenchResults;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to run an experiment, from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub quick: bool,
    /// Rounds, overriding the file (and `--quick`).
    pub iterations: Option<usize>,
    pub no_profiles: bool,
    /// Cargo features of the engine build (e.g. the test-only `slow-fused-softmax`).
    pub engine_features: Vec<String>,
}

/// The engine binaries a run uses.
#[derive(Debug, Clone)]
pub struct Engine {
    pub release: PathBuf,
    /// The `dhat-heap` build, when a heap profile is asked for.
    pub dhat: Option<PathBuf>,
}

/// The workspace's target directory (`CARGO_TARGET_DIR` if set).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::project_root().join("target"), PathBuf::from)
}

/// Builds the engine in release (and the `dhat-heap` build in a target directory of its own,
/// so that it never replaces the timing binary). A build with extra `features` also gets a
/// target directory of its own. Cargo's output goes to the terminal.
pub fn build_engine(with_dhat: bool, features: &[String]) -> Result<Engine> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = |features: &[String], dir: Option<&Path>| -> Result<PathBuf> {
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--release", "--bin", "smallmind"]).current_dir(crate::project_root());
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        if let Some(dir) = dir {
            cmd.arg("--target-dir").arg(dir);
        }
        let status = cmd.status().context("cannot run cargo")?;
        if !status.success() {
            return Err(Untestable(format!("the engine does not build (features: {features:?})")).into());
        }
        Ok(dir.map_or_else(target_dir, Path::to_path_buf).join("release").join("smallmind"))
    };
    let release = if features.is_empty() {
        build(&[], None)?
    } else {
        build(features, Some(&target_dir().join("engine-features").join(features.join("+"))))?
    };
    let dhat = if with_dhat {
        let mut with = features.to_vec();
        with.push("dhat-heap".into());
        Some(build(&with, Some(&target_dir().join("dhat-heap").join(features.join("+"))))?)
    } else {
        None
    };
    Ok(Engine { release, dhat })
}

/// This commit's engine cannot be tested: it does not build, or cannot run the workload (as
/// when it predates `smallmind bench`). `cargo xtask check` exits 125 on it, so `git bisect`
/// skips the commit.
#[derive(Debug)]
pub struct Untestable(pub String);

impl std::fmt::Display for Untestable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untestable {}

/// Runs `experiment` with `engine`; raw files go to `scratch`, profiles to `profile_dir`.
pub fn run(
    name: &str,
    experiment: &Experiment,
    engine: &Engine,
    options: &RunOptions,
    scratch: &Path,
    profile_dir: &Path,
    command: String,
) -> Result<ExperimentResults> {
    let started = now();
    let points = experiment.sweep_points();
    let m = &experiment.measurement;
    // `--iterations N` and `--quick` run exactly that many rounds; otherwise rounds are adaptive.
    let (rounds, min_rounds, adaptive) = match (options.iterations, options.quick) {
        (Some(n), _) => (n, n, false),
        (None, true) => (m.quick_iterations, m.quick_iterations, false),
        (None, false) => (m.iterations, m.min_rounds(), m.min_rounds() < m.iterations),
    };
    if rounds == 0 {
        bail!("--iterations must be at least 1");
    }
    let n_variants = experiment.variants.len();
    let profiles_wanted =
        !options.no_profiles && (experiment.profiles.flamegraph || experiment.profiles.trace);
    let heap_wanted = !options.no_profiles && experiment.profiles.heap;
    let total = points.len() * n_variants * (1 + rounds)
        + n_variants * (usize::from(profiles_wanted) + usize::from(heap_wanted));
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ~{eta} left: {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    progress.set_prefix(name.to_string());
    let say = |line: String| {
        if progress.is_hidden() {
            eprintln!("{name}: {line}");
        } else {
            progress.println(format!("{name}: {line}"));
        }
    };
    std::fs::create_dir_all(scratch)?;

    let mut environment = None;
    let mut point_results = Vec::new();
    for (p, point) in points.iter().enumerate() {
        let workloads: Vec<Workload> =
            experiment.variants.iter().map(|v| experiment.workload_for(v, point)).collect::<Result<_>>()?;
        let opts: Vec<Optimizations> =
            experiment.variants.iter().map(|v| v.optimizations.resolve()).collect();

        // Correctness first: every variant must generate the reference's ids.
        say(format!("checking that every variant generates the same tokens{}", at(point)));
        let mut checks = Vec::new();
        for (v, variant) in experiment.variants.iter().enumerate() {
            progress.set_message(format!("correctness: {}", variant.name));
            let out = scratch.join(format!("p{p}-{}-check.json", variant.name));
            // Only measured rounds read the machine's probe: a check run's timings count for nothing.
            let no_probe = ["--no-probe".to_string()];
            let r = bench(&engine.release, &workloads[v], opts[v], 0, 1, 0, &no_probe, &out)?;
            environment.get_or_insert_with(|| r.environment.clone());
            checks.push((variant.name.clone(), r.output.generated_ids, r.output.digest));
            progress.inc(1);
        }
        let reference_index = experiment.variants.iter().position(|v| v.reference).expect("validated");
        let (ref_name, ref_ids, ref_digest) = checks[reference_index].clone();
        for (name, ids, _) in &checks {
            if ids != &ref_ids {
                let first =
                    ref_ids.iter().zip(ids).position(|(a, b)| a != b).unwrap_or(ref_ids.len().min(ids.len()));
                bail!(
                    "WRONG OUTPUT{}: variant `{name}` generated different tokens from the reference `{ref_name}`, \
                     first at position {first} ({:?} instead of {:?}); its timings would mean nothing",
                    at(point),
                    ids.get(first),
                    ref_ids.get(first)
                );
            }
        }

        // Measurement: rounds of every variant, in alternating order.
        if adaptive {
            say(format!(
                "measuring {min_rounds}-{rounds} round(s) of {n_variants} variants{}, until settled",
                at(point)
            ));
        } else {
            say(format!("measuring {rounds} round(s) of {n_variants} variants{}", at(point)));
        }
        let mut runs: Vec<Vec<RunRecord>> = vec![Vec::new(); n_variants];
        let measuring = std::time::Instant::now();
        let mut stopped = None;
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..n_variants).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for (position, &v) in order.iter().enumerate() {
                let variant = &experiment.variants[v];
                progress.set_message(format!("{}{} round {}/{rounds}", variant.name, at(point), round + 1));
                let out = scratch.join(format!("p{p}-{}-r{round}.json", variant.name));
                let r = bench(
                    &engine.release,
                    &workloads[v],
                    opts[v],
                    m.warmup,
                    m.ops_per_run,
                    m.phase_iterations,
                    &[],
                    &out,
                )?;
                if r.output.digest != ref_digest {
                    bail!(
                        "WRONG OUTPUT{}: variant `{}` generated different tokens in round {} than in the correctness check",
                        at(point),
                        variant.name,
                        round + 1
                    );
                }
                runs[v].push(RunRecord {
                    round,
                    position,
                    iterations: r.iterations,
                    phases: r.phases,
                    pool: r.pool,
                    digest: r.output.digest,
                    machine: r.machine,
                });
                progress.inc(1);
            }
            if !adaptive || round + 1 < min_rounds {
                continue;
            }
            let reference = experiment.variants.iter().position(|v| v.reference).expect("validated");
            if let Some(why) = settled(experiment, &runs, reference) {
                stopped = Some(format!("{why} after {} rounds", round + 1));
            } else if round + 1 < rounds && measuring.elapsed().as_secs_f64() >= m.budget() {
                stopped = Some(format!(
                    "not settled: the time budget ({} s) was spent after {} rounds",
                    m.budget(),
                    round + 1
                ));
            }
            if stopped.is_some() {
                let skipped = (rounds - round - 1) * n_variants;
                progress.set_length(progress.length().unwrap_or(0).saturating_sub(skipped as u64));
                break;
            }
        }
        if adaptive && stopped.is_none() {
            stopped = Some(format!("not settled after the file's maximum of {rounds} rounds"));
        }
        if let Some(why) = &stopped {
            say(format!("rounds{}: {why}", at(point)));
        }
        let variants = experiment
            .variants
            .iter()
            .zip(runs)
            .enumerate()
            .map(|(v, (variant, runs))| VariantResults {
                name: variant.name.clone(),
                reference: variant.reference,
                optimizations: opts[v],
                workload: workloads[v].clone(),
                runs,
            })
            .collect();
        let correctness = Correctness {
            reference_digest: ref_digest,
            generated_tokens: ref_ids.len(),
            digests: checks.into_iter().map(|(n, _, d)| (n, d)).collect(),
        };
        point_results.push(PointResults { point: point.clone(), variants, correctness, stopped });
    }

    let profiles = if profiles_wanted || heap_wanted {
        let point = points.last().expect("at least one point");
        say(format!("profiling each variant{} (runs of their own, not measured)", at(point)));
        capture_profiles(experiment, engine, point, profile_dir, scratch, &progress)?
    } else {
        Vec::new()
    };
    progress.finish_and_clear();
    Ok(ExperimentResults {
        schema_version: SCHEMA_VERSION,
        experiment: name.to_string(),
        spec: experiment.clone(),
        command,
        started,
        finished: now(),
        rounds: point_results
            .iter()
            .map(|p| p.variants.iter().map(|v| v.runs.len()).max().unwrap_or(0))
            .max()
            .unwrap_or(rounds),
        environment: environment.expect("at least one run"),
        points: point_results,
        profiles,
    })
}

/// Why a point's rounds may stop now, if they may: for every candidate, the interval of each
/// metric the hypothesis names (decode_tok_s without one) is clear of `1 ± noise_floor` (a 64x
/// speedup is clear after 3 rounds) or narrower than the noise floor's band (nothing larger
/// will show with more rounds).
fn settled(experiment: &Experiment, runs: &[Vec<RunRecord>], reference: usize) -> Option<String> {
    let nf = experiment.thresholds.noise_floor;
    let metric = experiment.hypothesis.as_ref().map_or(Metric::DecodeTokS, |h| h.metric);
    if metric.is_exact() {
        return Some(format!("{} is counted exactly", metric.name()));
    }
    let (mut clear, mut narrow) = (0, 0);
    for candidate in runs.iter().enumerate().filter(|&(v, _)| v != reference).map(|(_, c)| c) {
        let pairs: Vec<(f64, f64)> = candidate
            .iter()
            .filter_map(|c| {
                let r = runs[reference].iter().find(|r| r.round == c.round)?;
                Some((r.value(metric)?, c.value(metric)?))
            })
            .collect();
        let s = crate::compare::paired_speedup(&pairs, metric.higher_is_better())?;
        if s.low > 1.0 + nf || s.high < 1.0 - nf {
            clear += 1;
        } else if s.high / s.low - 1.0 <= 2.0 * nf {
            narrow += 1;
        } else {
            return None;
        }
    }
    Some(match (clear, narrow) {
        (_, 0) => format!("settled: every {} interval clear of ±{:.0}%", metric.name(), nf * 100.0),
        (0, _) => format!("settled: every {} interval within a ±{:.0}% band", metric.name(), nf * 100.0),
        _ => format!("settled: every {} interval clear of or within ±{:.0}%", metric.name(), nf * 100.0),
    })
}

/// Profile runs at `point`, one process per variant and kind; files go to `dir`.
fn capture_profiles(
    experiment: &Experiment,
    engine: &Engine,
    point: &SweepPoint,
    dir: &Path,
    scratch: &Path,
    progress: &ProgressBar,
) -> Result<Vec<ProfileRecord>> {
    std::fs::create_dir_all(dir)?;
    let spec = &experiment.profiles;
    let seconds = spec.seconds.to_string();
    let mut records = Vec::new();
    for variant in &experiment.variants {
        let workload = experiment.workload_for(variant, point)?;
        let opts = variant.optimizations.resolve();
        let file = |kind: &str, ext: &str| dir.join(format!("{}.{kind}.{ext}", variant.name));
        let mut record = |kind: &str, path: PathBuf| {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            records.push(ProfileRecord {
                variant: variant.name.clone(),
                point: point.label.clone(),
                kind: kind.to_string(),
                path: path.display().to_string(),
                bytes,
                beside_report: false,
            });
        };
        if spec.flamegraph || spec.trace {
            progress.set_message(format!("CPU profile: {}", variant.name));
            let (svg, pb, trace) = (file("flamegraph", "svg"), file("cpu", "pb"), file("trace", "json"));
            let mut extra: Vec<String> = vec!["--profile-seconds".into(), seconds.clone()];
            if spec.flamegraph {
                extra.extend([
                    "--flamegraph".into(),
                    svg.display().to_string(),
                    "--pprof".into(),
                    pb.display().to_string(),
                ]);
            }
            if spec.trace {
                extra.extend(["--trace".into(), trace.display().to_string()]);
            }
            extra.push("--no-probe".into());
            let out = scratch.join(format!("profile-{}.json", variant.name));
            let m = &experiment.measurement;
            bench(&engine.release, &workload, opts, m.warmup, 1, 0, &extra, &out)?;
            if spec.flamegraph {
                record("flamegraph", svg);
                record("pprof", pb);
            }
            if spec.trace {
                record("trace", trace);
            }
            progress.inc(1);
        }
        if let (true, Some(dhat)) = (spec.heap, &engine.dhat) {
            progress.set_message(format!("heap profile: {}", variant.name));
            let heap = file("heap", "json");
            let extra = vec!["--heap-profile".into(), heap.display().to_string(), "--no-probe".into()];
            let out = scratch.join(format!("heap-{}.json", variant.name));
            bench(dhat, &workload, opts, experiment.measurement.warmup, 1, 0, &extra, &out)?;
            record("heap", heap);
            progress.inc(1);
        }
    }
    Ok(records)
}

/// Runs `smallmind bench` once and reads its results file.
fn bench(
    binary: &Path,
    w: &Workload,
    opts: Optimizations,
    warmup: usize,
    iterations: usize,
    phase_iterations: usize,
    extra: &[String],
    out: &Path,
) -> Result<BenchResults> {
    let mut cmd = Command::new(binary);
    cmd.arg("bench").args(["--model", &w.model]);
    match (&w.prompt, w.prompt_tokens) {
        (Some(text), _) => cmd.args(["--prompt", text]),
        (None, Some(n)) => cmd.args(["--prompt-tokens", &n.to_string()]),
        (None, None) => bail!("no prompt"),
    };
    cmd.args(["--max-new-tokens", &w.max_new_tokens.to_string()])
        .args(["--temperature", &w.temperature.to_string()])
        .args(["--top-k", &w.top_k.to_string()])
        .args(["--top-p", &w.top_p.to_string()])
        .args(["--seed", &w.seed.to_string()])
        .args(["--threads", &w.threads.to_string()])
        .args(["--opt", &opts.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .args(["--phase-iterations", &phase_iterations.to_string()])
        .args(extra)
        .arg("--out")
        .arg(out)
        .env_remove("SMALLMIND_OPT");
    let output = cmd.output().map_err(|e| Untestable(format!("cannot run {}: {e}", binary.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| l.starts_with("error")).unwrap_or(stderr.trim());
        // NaN or infinite logits are this engine's wrong output, not a commit that cannot be
        // tested: `check` exits 1 for it, as for tokens that differ.
        if last.contains(smallmind::Error::NON_FINITE_LOGITS) {
            anyhow::bail!("WRONG OUTPUT: smallmind bench failed ({}): {last}", output.status);
        }
        return Err(Untestable(format!("smallmind bench failed ({}): {last}", output.status)).into());
    }
    let text = std::fs::read(out).with_context(|| format!("cannot read {}", out.display()))?;
    let results: BenchResults = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a bench results file", out.display()))?;
    let _ = std::fs::remove_file(out);
    Ok(results)
}

/// Now, UTC, RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
