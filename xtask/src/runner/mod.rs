//! From a [`Plan`] to results: at each sweep point, first every variant must generate the
//! reference's tokens; then rounds of every variant, each its own `smallmind bench` process, in
//! alternating order, until the point is settled or its rounds or time budget are spent; then,
//! in processes of their own, the profiles.
//!
//! The harness never measures inside itself: it only spawns the release binary
//! ([`engine::build`]) through a [`bench::BenchCall`] and reads the results files it writes.

pub mod bench;
pub mod engine;
pub mod profiles;
pub mod revision;

use crate::error::PathContext;
use crate::metrics::Metric;
use crate::paths::scratch_file;
use crate::plan::{OutputGate, Plan, PlannedPoint, at};
use crate::results::*;
use anyhow::{Result, bail};
use bench::BenchCall;
use engine::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

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

/// How many rounds each point runs.
#[derive(Debug, Clone, Copy)]
struct Rounds {
    max: usize,
    min: usize,
    /// Whether a point may stop between `min` and `max` once settled.
    adaptive: bool,
}

impl Rounds {
    /// `--iterations N` and `--quick` run exactly that many rounds; otherwise rounds are adaptive.
    fn of(plan: &Plan, options: &RunOptions) -> Rounds {
        let m = &plan.experiment.measurement;
        match (options.iterations, options.quick) {
            (Some(n), _) => Rounds { max: n, min: n, adaptive: false },
            (None, true) => Rounds { max: m.quick_iterations, min: m.quick_iterations, adaptive: false },
            (None, false) => {
                Rounds { max: m.iterations, min: m.min_rounds(), adaptive: m.min_rounds() < m.iterations }
            }
        }
    }
}

/// Where a run's files go.
#[derive(Debug, Clone, Copy)]
pub struct Dirs<'a> {
    /// Raw results files of each process, deleted as they are read.
    pub scratch: &'a Path,
    /// Profiles.
    pub profiles: &'a Path,
}

/// Runs `plan` with `engine`; `command` reproduces the run (it is recorded in the results).
pub fn run(
    plan: &Plan,
    engine: &Engine,
    options: &RunOptions,
    dirs: Dirs,
    command: String,
) -> Result<ExperimentResults> {
    let started = now();
    let rounds = Rounds::of(plan, options);
    let e = &plan.experiment;
    let profiles_wanted = !options.no_profiles && (e.profiles.flamegraph || e.profiles.trace);
    let heap_wanted = !options.no_profiles && e.profiles.heap;
    let n_variants = e.variants.len();
    let total = plan.points.len() * n_variants * (1 + rounds.max)
        + e.profiles.cpu_profiles() * usize::from(profiles_wanted)
        + n_variants * usize::from(heap_wanted);
    let progress = Progress::new(&plan.name, total);
    std::fs::create_dir_all(dirs.scratch).at(dirs.scratch)?;
    let mut environment = None;
    let mut points = Vec::new();
    for (p, point) in plan.points.iter().enumerate() {
        let correctness =
            check_correctness(plan, point, p, engine, dirs.scratch, &progress, &mut environment)?;
        points.push(measure(plan, point, p, engine, rounds, dirs.scratch, &progress, correctness)?);
    }
    let profiles = if profiles_wanted || heap_wanted {
        let point = plan.points.last().expect("at least one point");
        progress.say(format!("profiling each variant{} (runs of their own, not measured)", at(&point.point)));
        profiles::capture(plan, engine, point, dirs.profiles, dirs.scratch, &progress.bar)?
    } else {
        Vec::new()
    };
    progress.bar.finish_and_clear();
    Ok(ExperimentResults {
        schema_version: SCHEMA_VERSION,
        experiment: plan.name.clone(),
        spec: e.clone(),
        command,
        started,
        finished: now(),
        rounds: points
            .iter()
            .map(|p| p.variants.iter().map(|v| v.runs.len()).max().unwrap_or(0))
            .max()
            .unwrap_or(rounds.max),
        environment: environment.expect("at least one run"),
        points,
        profiles,
        compare: None,
    })
}

/// The progress bar, and lines printed above it (or plainly when it is hidden).
struct Progress {
    bar: ProgressBar,
    name: String,
}

impl Progress {
    fn new(name: &str, total: usize) -> Progress {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ~{eta} left: {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        Progress { bar, name: name.to_string() }
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{}: {line}", self.name);
        } else {
            self.bar.println(format!("{}: {line}", self.name));
        }
    }
}

/// Correctness first: every variant must generate the reference's ids at this point. Gives the
/// check's record; the first run's environment goes to `environment`.
fn check_correctness(
    plan: &Plan,
    point: &PlannedPoint,
    p: usize,
    engine: &Engine,
    scratch: &Path,
    progress: &Progress,
    environment: &mut Option<smallmind::bench::env::Environment>,
) -> Result<Correctness> {
    progress.say(format!("checking that every variant generates the same tokens{}", at(&point.point)));
    let mut checks = Vec::new();
    for (i, v) in point.variants.iter().enumerate() {
        progress.bar.set_message(format!("correctness: {}", v.variant));
        let out = scratch_file(scratch, p, &v.variant, "check");
        // Only measured rounds read the machine's probe: a check run's timings count for nothing.
        let r = BenchCall::check(&v.workload, v.optimizations).run(engine.release_for(i), &out)?;
        environment.get_or_insert_with(|| r.environment.clone());
        checks.push((v.variant.clone(), r.output.generated_ids, r.output.digest));
        progress.bar.inc(1);
    }
    let reference = plan.reference();
    let group_of = |i: usize| match &plan.outputs {
        OutputGate::Identical => reference,
        OutputGate::WithinGroups(groups) => {
            if groups[i] == groups[reference] {
                reference
            } else {
                groups.iter().position(|&g| g == groups[i]).unwrap_or(i)
            }
        }
    };
    let mut divergences = Vec::new();
    for (i, (name, ids, _)) in checks.iter().enumerate() {
        let (expected_name, expected, _) = &checks[group_of(i)];
        if let Some(d) = Divergence::between(name, expected, ids) {
            bail!(
                "WRONG OUTPUT{}: variant `{name}` generated different tokens from `{expected_name}`{}, first at position \
                 {} ({:?} instead of {:?}); its timings would mean nothing",
                at(&point.point),
                if group_of(i) == reference { " (the reference)" } else { "" },
                d.position,
                d.got,
                d.expected
            );
        }
        // Only a group's first variant is compared with the reference: the rest are its copies.
        if group_of(i) == i && i != reference {
            divergences.extend(Divergence::between(name, &checks[reference].1, ids));
        }
    }
    let (_, ref_ids, ref_digest) = checks[reference].clone();
    let correctness = Correctness {
        reference_digest: ref_digest,
        generated_tokens: ref_ids.len(),
        digests: checks.into_iter().map(|(n, _, d)| (n, d)).collect(),
        divergences,
    };
    Ok(correctness)
}

/// Rounds of every variant at one point, in alternating order, until settled or spent.
fn measure(
    plan: &Plan,
    point: &PlannedPoint,
    p: usize,
    engine: &Engine,
    rounds: Rounds,
    scratch: &Path,
    progress: &Progress,
    correctness: Correctness,
) -> Result<PointResults> {
    let m = &plan.experiment.measurement;
    let n_variants = point.variants.len();
    let (min, max) = (rounds.min, rounds.max);
    progress.say(if rounds.adaptive {
        format!("measuring {min}-{max} round(s) of {n_variants} variants{}, until settled", at(&point.point))
    } else {
        format!("measuring {max} round(s) of {n_variants} variants{}", at(&point.point))
    });
    let mut runs: Vec<Vec<RunRecord>> = vec![Vec::new(); n_variants];
    let measuring = std::time::Instant::now();
    let (mut stopped, mut rerun) = (None, Vec::new());
    for round in 0..max {
        let mut order: Vec<usize> = (0..n_variants).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for attempt in 0..2 {
            for (position, &v) in order.iter().enumerate() {
                let variant = &point.variants[v];
                progress.bar.set_message(format!(
                    "{}{} round {}/{max}",
                    variant.variant,
                    at(&point.point),
                    round + 1
                ));
                let out = scratch_file(scratch, p, &variant.variant, &format!("r{round}"));
                let binary = engine.release_for(v);
                let record =
                    measure_once(plan, point, variant, binary, &out, &correctness, (round, position))?;
                runs[v].push(record);
                progress.bar.inc(u64::from(attempt == 0));
            }
            // A round in which another process competed with a run is measured once more, whole
            // (its variants stay paired); the second attempt is kept whatever it shows.
            let competed =
                runs.iter().filter_map(|r| r.last()?.machine.as_ref()).find(|m| m.contamination.competed());
            match competed {
                Some(m) if attempt == 0 => {
                    progress.say(format!(
                        "round {}{}: {}; measuring the round again",
                        round + 1,
                        at(&point.point),
                        m.contamination.flags.join(", ")
                    ));
                    runs.iter_mut().for_each(|r| {
                        r.pop();
                    });
                    rerun.push(round);
                }
                _ => break,
            }
        }
        if !rounds.adaptive || round + 1 < min {
            continue;
        }
        if let Some(why) = settled(plan, &runs) {
            stopped = Some(format!("{why} after {} rounds", round + 1));
        } else if round + 1 < max && measuring.elapsed().as_secs_f64() >= m.budget() {
            stopped = Some(format!(
                "not settled: the time budget ({} s) was spent after {} rounds",
                m.budget(),
                round + 1
            ));
        }
        if stopped.is_some() {
            let skipped = (max - round - 1) * n_variants;
            progress.bar.set_length(progress.bar.length().unwrap_or(0).saturating_sub(skipped as u64));
            break;
        }
    }
    if rounds.adaptive && stopped.is_none() {
        stopped = Some(format!("not settled after the file's maximum of {max} rounds"));
    }
    if let Some(why) = &stopped {
        progress.say(format!("rounds{}: {why}", at(&point.point)));
    }
    let variants = point
        .variants
        .iter()
        .zip(runs)
        .map(|(v, runs)| VariantResults {
            name: v.variant.clone(),
            reference: v.reference,
            optimizations: v.optimizations,
            workload: v.workload.clone(),
            runs,
        })
        .collect();
    Ok(PointResults { point: point.point.clone(), variants, correctness, stopped, rerun })
}

/// One measured process of `variant`: its record, once its tokens are the correctness check's.
fn measure_once(
    plan: &Plan,
    point: &PlannedPoint,
    variant: &crate::plan::Measured,
    binary: &Path,
    out: &Path,
    correctness: &Correctness,
    (round, position): (usize, usize),
) -> Result<RunRecord> {
    let m = &plan.experiment.measurement;
    let call = BenchCall {
        warmup: m.warmup,
        iterations: m.ops_per_run,
        phase_iterations: m.phase_iterations,
        probe: true,
        ..BenchCall::check(&variant.workload, variant.optimizations)
    };
    let r = call.run(binary, out)?;
    let checked = correctness.digests.iter().find(|(n, _)| n == &variant.variant).map(|(_, d)| d);
    if checked != Some(&r.output.digest) {
        bail!(
            "WRONG OUTPUT{}: variant `{}` generated different tokens in round {} than in the correctness check",
            at(&point.point),
            variant.variant,
            round + 1
        );
    }
    Ok(RunRecord {
        round,
        position,
        iterations: r.iterations,
        phases: r.phases,
        pool: r.pool,
        digest: r.output.digest,
        machine: r.machine,
    })
}

/// Why a point's rounds may stop now, if they may: for every candidate, the interval of each
/// metric the hypothesis names (decode_tok_s without one) is clear of `1 ± noise_floor` (a 64x
/// speedup is clear after 3 rounds) or narrower than the noise floor's band (nothing larger
/// will show with more rounds).
fn settled(plan: &Plan, runs: &[Vec<RunRecord>]) -> Option<String> {
    let e = &plan.experiment;
    let reference = plan.reference();
    let nf = e.thresholds.noise_floor;
    let metric = e.hypothesis.as_ref().map_or(Metric::DecodeTokS, |h| h.metric);
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
        let s = crate::stats::paired_speedup(&pairs, metric.higher_is_better())?;
        if s.verdict(nf) != crate::stats::Verdict::NoChange {
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

/// Now, UTC, RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
