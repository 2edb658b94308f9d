//! Profile runs: after the measurements, one process per variant and kind at the last sweep
//! point, never a measured one. Profiles under 1 MB go beside the report; larger ones stay under
//! `target/`.

use super::bench::BenchCall;
use super::engine::Engine;
use crate::error::PathContext;
use crate::paths::{MAX_COMMITTED_BYTES, large_profiles, report};
use crate::plan::{Plan, PlannedPoint};
use crate::results::{ExperimentResults, ProfileRecord};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

/// Profile runs of every variant at `point`; files go to `dir`, results files to `scratch`.
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
    let warmup = plan.experiment.measurement.warmup;
    let mut records = Vec::new();
    for variant in &point.variants {
        let file = |kind: &str, ext: &str| dir.join(format!("{}.{kind}.{ext}", variant.variant));
        let mut record = |kind: &str, path: PathBuf| {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            records.push(ProfileRecord {
                variant: variant.variant.clone(),
                point: point.point.label.clone(),
                kind: kind.to_string(),
                path: path.display().to_string(),
                bytes,
                beside_report: false,
            });
        };
        let call = |profile_flags: Vec<String>| BenchCall {
            warmup,
            profile_flags,
            ..BenchCall::check(&variant.workload, variant.optimizations)
        };
        if spec.flamegraph || spec.trace {
            progress.set_message(format!("CPU profile: {}", variant.variant));
            let (svg, pb, trace) = (file("flamegraph", "svg"), file("cpu", "pb"), file("trace", "json"));
            let mut flags: Vec<String> = vec!["--profile-seconds".into(), spec.seconds.to_string()];
            if spec.flamegraph {
                flags.extend(["--flamegraph".into(), svg.display().to_string()]);
                flags.extend(["--pprof".into(), pb.display().to_string()]);
            }
            if spec.trace {
                flags.extend(["--trace".into(), trace.display().to_string()]);
            }
            call(flags).run(&engine.release, &scratch.join(format!("profile-{}.json", variant.variant)))?;
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
            progress.set_message(format!("heap profile: {}", variant.variant));
            let heap = file("heap", "json");
            let flags = vec!["--heap-profile".into(), heap.display().to_string()];
            call(flags).run(dhat, &scratch.join(format!("heap-{}.json", variant.variant)))?;
            record("heap", heap);
            progress.inc(1);
        }
    }
    Ok(records)
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
