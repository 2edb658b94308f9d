//! Profile runs: after the measurements, one process per variant and kind at the last sweep
//! point, never a measured one. Profiles under 1 MB go beside the report; larger ones stay under
//! `target/`.

use super::bench::BenchCall;
use super::engine::Engine;
use crate::error::PathContext;
use crate::paths::{MAX_COMMITTED_BYTES, large_profiles, report};
use crate::plan::{Measured, Plan, PlannedPoint};
use crate::results::{ExperimentResults, ProfileRecord};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

/// Profile runs of every variant at `point`; files go to `dir`, results files to `scratch`.
///
/// CPU profiles: [`crate::plan::ProfileSpec::cpu_profiles`] runs per variant, interleaved (round
/// by round, the variants in alternating order, as the measured rounds), each writing its
/// collapsed stacks (`VARIANT.cpu.R.folded`, for the profile diffs); the first run of each
/// variant also writes the flame graph, the pprof protobuf and the trace.
pub fn capture(
    plan: &Plan,
    engine: &Engine,
    point: &PlannedPoint,
    dir: &Path,
    scratch: &Path,
    progress: &ProgressBar,
) -> Result<Vec<ProfileRecord>> {
    std::fs::create_dir_all(dir).at(dir)?;
    let spec = &plan.experiment.profiles;
    let mut records = Vec::new();
    if spec.flamegraph || spec.trace {
        let n = point.variants.len();
        for round in 0..spec.cpu_profiles() {
            for k in 0..n {
                let i = if round % 2 == 0 { k } else { n - 1 - k };
                progress.set_message(format!("CPU profile {}: {}", round + 1, point.variants[i].variant));
                records.extend(cpu_run(plan, engine, point, i, round, dir, scratch)?);
            }
            progress.inc(1);
        }
    }
    for variant in &point.variants {
        if let (true, Some(dhat)) = (spec.heap, &engine.dhat) {
            progress.set_message(format!("heap profile: {}", variant.variant));
            let heap = dir.join(format!("{}.heap.json", variant.variant));
            let flags = vec!["--heap-profile".into(), heap.display().to_string()];
            let out = scratch.join(format!("heap-{}.json", variant.variant));
            let results = call(plan, variant, flags).run(dhat, &out)?;
            let ops =
                results.profiles.heap.as_ref().context("a heap profile run reports its profile")?.iterations;
            records.push(ProfileRecord { ops: Some(ops), ..record(point, variant, "heap", heap, None) });
            progress.inc(1);
        }
    }
    Ok(records)
}

/// One CPU profile run of variant `i` (`round` numbers it): its records.
fn cpu_run(
    plan: &Plan,
    engine: &Engine,
    point: &PlannedPoint,
    i: usize,
    round: usize,
    dir: &Path,
    scratch: &Path,
) -> Result<Vec<ProfileRecord>> {
    let spec = &plan.experiment.profiles;
    let variant = &point.variants[i];
    let file = |kind: &str, ext: &str| dir.join(format!("{}.{kind}.{ext}", variant.variant));
    let folded = dir.join(format!("{}.cpu.{}.folded", variant.variant, round + 1));
    let mut flags: Vec<String> = vec!["--profile-seconds".into(), spec.seconds.to_string()];
    let mut wanted = Vec::new();
    if spec.flamegraph {
        flags.extend(["--folded".into(), folded.display().to_string()]);
        if round == 0 {
            let (svg, pb) = (file("flamegraph", "svg"), file("cpu", "pb"));
            flags.extend(["--flamegraph".into(), svg.display().to_string()]);
            flags.extend(["--pprof".into(), pb.display().to_string()]);
            wanted.extend([("flamegraph", svg), ("pprof", pb)]);
        }
    }
    if spec.trace && round == 0 {
        let trace = file("trace", "json");
        flags.extend(["--trace".into(), trace.display().to_string()]);
        wanted.push(("trace", trace));
    }
    let out = scratch.join(format!("profile-{}-{}.json", variant.variant, round + 1));
    let results = call(plan, variant, flags).run(engine.release_for(i), &out)?;
    let mut records: Vec<ProfileRecord> =
        wanted.into_iter().map(|(kind, path)| record(point, variant, kind, path, None)).collect();
    if spec.flamegraph {
        let cpu = results.profiles.cpu.as_ref().context("a CPU profile run reports its profile")?;
        let ms_per_op = cpu.seconds * 1e3 / cpu.iterations.max(1) as f64;
        records.push(record(point, variant, "folded", folded, Some(ms_per_op)));
    }
    Ok(records)
}

/// The bench call of a profile run of `variant` with the profile `flags`.
fn call<'a>(plan: &Plan, variant: &'a Measured, profile_flags: Vec<String>) -> BenchCall<'a> {
    BenchCall {
        warmup: plan.experiment.measurement.warmup,
        profile_flags,
        ..BenchCall::check(&variant.workload, variant.optimizations)
    }
}

fn record(
    point: &PlannedPoint,
    variant: &Measured,
    kind: &str,
    path: PathBuf,
    ms_per_op: Option<f64>,
) -> ProfileRecord {
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    ProfileRecord {
        variant: variant.variant.clone(),
        point: point.point.label.clone(),
        kind: kind.to_string(),
        path: path.display().to_string(),
        bytes,
        beside_report: false,
        ms_per_op,
        ops: None,
    }
}

/// Profiles under 1 MB stay in `profile_dir` (the report's `profiles/`); larger ones move to
/// `target/experiments/NAME/profiles/`. Each record's path says where, relative to the report or
/// to the workspace root.
pub fn place(results: &mut ExperimentResults, profile_dir: &Path, name: &str) -> Result<()> {
    let keep = large_profiles(name);
    for record in &mut results.profiles {
        let path = PathBuf::from(&record.path);
        let file = path.file_name().context("a profile has a file name")?.to_string_lossy().into_owned();
        if record.bytes > 0 && record.bytes < MAX_COMMITTED_BYTES {
            record.path = format!("{}/{file}", report::PROFILES);
            record.beside_report = true;
        } else {
            std::fs::create_dir_all(&keep).at(&keep)?;
            let target = keep.join(&file);
            std::fs::rename(&path, &target)
                .or_else(|_| std::fs::copy(&path, &target).map(|_| ()))
                .at(&target)?;
            let _ = std::fs::remove_file(&path);
            record.path = target.strip_prefix(crate::project_root()).unwrap_or(&target).display().to_string();
        }
    }
    if profile_dir.is_dir() && std::fs::read_dir(profile_dir).at(profile_dir)?.next().is_none() {
        std::fs::remove_dir(profile_dir).at(profile_dir)?;
    }
    Ok(())
}
