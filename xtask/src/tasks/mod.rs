//! The tasks of `cargo xtask`, one file each, every one a composition of the same stages:
//! [`prepare`] (load and resolve the experiment, check the options and the stored baseline,
//! build the engine), [`crate::runner::run`], [`crate::analysis`], [`crate::report`], and a
//! publish through [`crate::paths::Publish`] or [`crate::paths::write_atomic`]. Each task gives
//! its exit code; errors map to theirs in `main` ([`crate::error::exit_code`]).

pub mod bisect;
pub mod calibrate;
pub mod check;
pub mod ci;
pub mod compare;
pub mod experiment;
pub mod history;
pub mod list;
pub mod models;
pub mod report;
pub mod store;
pub mod summary;

use crate::analysis::baseline::{self, Misfit};
use crate::analysis::noise::{NOISE_SCHEMA_VERSION, NoiseFloors};
use crate::error::PathContext;
use crate::error::usage;
use crate::paths::{Paths, scratch};
use crate::plan::{Experiment, Plan};
use crate::results::{self, ExperimentResults};
use crate::runner::{self, Dirs, RunOptions, engine::Engine};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Loads `experiments/NAME.toml`, as a usage error when it is missing or invalid.
pub fn load(name: &str, paths: &Paths) -> Result<Experiment> {
    let path = paths.experiment(name);
    if !path.is_file() {
        let known: Vec<String> =
            list::experiments(paths).map(|l| l.into_iter().map(|(n, _)| n).collect()).unwrap_or_default();
        return Err(usage(format!(
            "no experiment `{name}` ({} does not exist); experiments: {}",
            path.display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    }
    Experiment::load(&path).map_err(|e| usage(e.to_string()))
}

/// Checks the options every task takes: at least one round.
pub fn check_options(options: &RunOptions) -> Result<()> {
    if options.iterations == Some(0) {
        return Err(usage("--iterations must be at least 1"));
    }
    Ok(())
}

/// The command line that reproduces a run: `cargo xtask TASK NAME` and the options that change
/// what it measures.
pub fn command_line(task: &str, name: &str, options: &RunOptions, extra: &[&str]) -> String {
    let mut command = format!("cargo xtask {task} {name}");
    for flag in extra {
        command.push(' ');
        command.push_str(flag);
    }
    if options.quick {
        command.push_str(" --quick");
    }
    if let Some(n) = options.iterations {
        command.push_str(&format!(" --iterations {n}"));
    }
    if options.no_profiles {
        command.push_str(" --no-profiles");
    }
    if !options.engine_features.is_empty() {
        command.push_str(&format!(" --engine-features {}", options.engine_features.join(",")));
    }
    command
}

/// Reads a stored baseline; an unreadable one is a usage error saying how to replace it
/// (`remedy`, e.g. `cargo xtask baseline NAME`).
pub fn read_baseline(path: &Path, remedy: &str) -> Result<ExperimentResults> {
    results::read(path).map_err(|e| unreadable(&e, remedy))
}

fn unreadable(e: &anyhow::Error, remedy: &str) -> anyhow::Error {
    usage(format!("{e:#}; run `{remedy}` to replace it"))
}

/// The noise floors stored for experiment `name`, if any; a damaged file is a usage error saying
/// how to measure them again.
pub fn read_noise(paths: &Paths, name: &str) -> Result<Option<NoiseFloors>> {
    let path = paths.noise(name);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).at(&path)?;
    let floors: NoiseFloors = serde_json::from_slice(&bytes).map_err(|e| {
        usage(format!(
            "{}: not a noise-floor file ({e}); run `cargo xtask calibrate {name} --sessions 5 --save-baseline` to \
             measure them again",
            path.display()
        ))
    })?;
    if floors.schema_version != NOISE_SCHEMA_VERSION {
        return Err(usage(format!(
            "{}: schema version {}, this harness reads {NOISE_SCHEMA_VERSION}; run `cargo xtask calibrate {name} \
             --sessions 5 --save-baseline`",
            path.display(),
            floors.schema_version
        )));
    }
    floors.validate().map_err(|e| {
        usage(format!(
            "{}: {e}; run `cargo xtask calibrate {name} --sessions 5 --save-baseline` to measure them again",
            path.display()
        ))
    })?;
    Ok(Some(floors))
}

/// A usage error naming every variant the stored baseline does not fit, from the plan and the
/// baseline alone (nothing is measured).
pub fn require_fit(plan: &Plan, stored: &ExperimentResults) -> Result<()> {
    let misfits = baseline::fit(&plan.measured(), &stored.measured());
    refuse_misfits(
        &format!("the baseline of `{}` does not fit the experiment", plan.name),
        &misfits,
        &format!("cargo xtask baseline {}", plan.name),
    )
}

/// A usage error naming `misfits`, if there are any.
pub fn refuse_misfits(what: &str, misfits: &[Misfit], remedy: &str) -> Result<()> {
    if misfits.is_empty() {
        return Ok(());
    }
    Err(usage(baseline::misfit_line(what, misfits, remedy)))
}

/// A plan's run: the engine built for it, and where its raw files go.
#[derive(Debug)]
pub struct Prepared {
    pub plan: Plan,
    pub options: RunOptions,
    pub engine: Engine,
    pub scratch: PathBuf,
    /// The task's name, and the results store its runs are appended to.
    pub task: String,
    pub store: PathBuf,
}

impl Prepared {
    /// Builds the engine `plan` needs (the `dhat-heap` build too when it wants heap profiles).
    pub fn new(task: &str, plan: Plan, options: RunOptions, store: &Path) -> Result<Prepared> {
        check_options(&options)?;
        let heap = plan.experiment.profiles.heap && !options.no_profiles;
        let engine = runner::engine::build(heap, &options.engine_features)?;
        let scratch = scratch(task, &plan.name);
        Ok(Prepared { plan, options, engine, scratch, task: task.to_string(), store: store.to_path_buf() })
    }

    /// Runs the plan and appends the run to the results store; profiles go to `profiles`
    /// (default: the scratch folder's).
    pub fn run(&self, command: String, profiles: Option<&Path>) -> Result<ExperimentResults> {
        let default = self.scratch.join("profiles");
        let dirs = Dirs { scratch: &self.scratch, profiles: profiles.unwrap_or(&default) };
        let results = runner::run(&self.plan, &self.engine, &self.options, dirs, command)?;
        crate::store::record(&self.store, &self.task, &results, &self.options.engine_features);
        Ok(results)
    }
}

/// Each variant's profiles at the profiled point (collapsed CPU stacks, and heap profiles that
/// record their ops), read from the files the results record: beside the report (found in the
/// first of `report_dirs` that has them) or under `target/`. A variant whose files are gone is
/// left out, said on one line; a damaged file is a usage error naming it.
pub fn load_profiles(
    results: &ExperimentResults,
    report_dirs: &[&Path],
) -> Result<crate::analysis::profile_diff::VariantProfiles> {
    use crate::analysis::heap_diff::HeapProfile;
    use crate::analysis::profile_diff::Folded;
    let mut out = crate::analysis::profile_diff::VariantProfiles::default();
    let mut missing: Vec<(String, &str)> = Vec::new();
    for record in &results.profiles {
        let ops = match (record.kind.as_str(), record.ops) {
            ("folded", _) => None,
            ("heap", Some(ops)) => Some(ops),
            _ => continue,
        };
        let candidates: Vec<PathBuf> = if record.beside_report {
            report_dirs.iter().map(|d| d.join(&record.path)).collect()
        } else {
            vec![crate::project_root().join(&record.path)]
        };
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            missing.push((record.variant.clone(), if ops.is_some() { "heap" } else { "CPU" }));
            continue;
        };
        let text = std::fs::read_to_string(path).at(path)?;
        let damaged = |e: String| usage(format!("{}: {e}", path.display()));
        match ops {
            Some(ops) => {
                out.heap.insert(record.variant.clone(), HeapProfile::parse(&text, ops).map_err(damaged)?);
            }
            None => {
                let ms = record
                    .ms_per_op
                    .ok_or_else(|| damaged("its record has no ms_per_op (time per op)".into()))?;
                out.cpu
                    .entry(record.variant.clone())
                    .or_default()
                    .push(Folded::parse(&text, ms).map_err(damaged)?);
            }
        }
    }
    missing.sort();
    missing.dedup();
    for (variant, kind) in &missing {
        eprintln!(
            "note: the {kind} profiles of `{variant}` are gone (under target/, cleaned?): its profile diff is left out"
        );
        if *kind == "heap" {
            out.heap.remove(variant);
        } else {
            out.cpu.remove(variant);
        }
    }
    Ok(out)
}
