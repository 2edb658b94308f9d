//! `cargo xtask compare BASE [HEAD]`: a change against its base, both engines built from their
//! revisions ([`crate::runner::revision`]) and run interleaved on one machine in one session by
//! this side's harness, with this side's experiment files and workloads for both. Every variant
//! of both revisions must generate the same tokens (a change of output is a behaviour change and
//! stops the run, unless `--allow-output-change`); each experiment's page goes to
//! `reports/compare/BASE..HEAD/NAME/`, the summary a pull request shows to the folder's
//! README.md (and `--summary FILE`), and the exit code is 3 when a figure of the head is worse
//! than the base's beyond the experiment's tolerance.
//!
//! `--toggles lattice` runs the bisect lattice on both revisions and says in which
//! optimization's contribution the change lies.

use super::{check_options, load};
use crate::analysis::bisect::{config_name, configs};
use crate::analysis::compare::CompareAnalysis;
use crate::error::{exit, is_untestable, kind};
use crate::flags::CompareArgs;
use crate::paths::{Paths, Publish, report, scratch, write_atomic};
use crate::plan::{Experiment, OutputGate, Plan, ProfileSpec};
use crate::report::compare::{SummaryStyle, page, summary};
use crate::results::{CompareRecord, ExperimentResults};
use crate::runner::engine::{Engine, check_table};
use crate::runner::revision::{self, Revision};
use crate::runner::{self, Dirs, RunOptions};
use anyhow::{Context, Result};
use smallmind::Optimizations;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Which toggle sets both revisions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Toggles {
    /// Every optimization on: the engine as users run it.
    All,
    /// The bisect lattice: all on, all off, each alone on, each alone off.
    Lattice,
}

/// Runs the comparison and gives the exit code: 0, 3 (a figure regressed), or 125 when a
/// revision does not build or its engine cannot run the workload (said on one line).
pub fn run(args: &CompareArgs, options: &RunOptions, paths: &Paths) -> Result<u8> {
    match compare(args, options, paths) {
        Err(e) if is_untestable(&e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("cannot compare: {}", chain.join(": "));
            Ok(exit::SKIP)
        }
        result => result,
    }
}

fn compare(args: &CompareArgs, options: &RunOptions, paths: &Paths) -> Result<u8> {
    check_options(options)?;
    let base = Revision::resolve(&args.base)?;
    let head = match &args.head {
        Some(spec) => Revision::resolve(spec)?,
        None => Revision::working_tree()?,
    };
    let mut names: Vec<String> = Vec::new();
    for n in &args.experiments {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    // Every experiment file is read before anything is built: a bad one costs nothing.
    let sources: Vec<(String, Experiment)> =
        names.iter().map(|n| Ok((n.clone(), load(n, paths)?))).collect::<Result<_>>()?;
    let binaries = [
        revision::build(&base, &options.engine_features)?,
        revision::build(&head, &options.engine_features)?,
    ];
    for binary in &binaries {
        check_table(binary)?;
    }
    let folder = format!("{}..{}", base.short(), head.short());
    let compare_paths = Paths { reports: paths.reports.join("compare"), ..paths.clone() };
    let publish = Publish::begin(&compare_paths, &folder, "compare", |_| false)?;
    let options = RunOptions { no_profiles: !args.profiles, ..options.clone() };
    let mut runs = Vec::new();
    for (name, source) in &sources {
        let record = CompareRecord { experiment: name.clone(), base: base.clone(), head: head.clone() };
        let dir = publish.dir().join(name);
        let profiles = dir.join(report::PROFILES);
        let mut results = run_one(&record, source, args, &binaries, &options, &profiles)?;
        crate::store::record(&paths.store, "compare", &results, &options.engine_features);
        crate::runner::profiles::place(&mut results, &profiles, &format!("compare/{folder}/{name}"))?;
        let files = write_page(&dir, &format!("{folder}/{name}"), &results)?;
        runs.push((results, files));
    }
    let analyses: Vec<(CompareAnalysis, Vec<String>)> = runs
        .iter()
        .map(|(r, charts)| (CompareAnalysis::of(r).expect("recorded above"), charts.clone()))
        .collect();
    let shown = format!("reports/compare/{folder}");
    let index = summary(&analyses, &shown, SummaryStyle { all: false, links: true });
    publish.write(report::README, index.as_bytes())?;
    let dir = publish.commit()?;
    eprintln!("report: {}", dir.join(report::README).display());
    if let Some(file) = &args.summary {
        write_atomic(file, summary(&analyses, &shown, SummaryStyle { all: false, links: false }).as_bytes())?;
        eprintln!("summary: {}", file.display());
    }
    Ok(verdict(&folder, &analyses))
}

/// Runs one experiment's workload on both engines; the results record the revisions.
fn run_one(
    record: &CompareRecord,
    source: &Experiment,
    args: &CompareArgs,
    binaries: &[PathBuf; 2],
    options: &RunOptions,
    profiles: &Path,
) -> Result<ExperimentResults> {
    let (base, head) = (&record.base, &record.head);
    let named = variants(args.toggles);
    let mut e = source.derived(&named);
    e.description = format!(
        "{} against {}, on the experiment's reference workload ({})",
        head.describe(),
        base.describe(),
        source.description
    );
    if args.profiles {
        // The experiment's CPU profiles and phase passes, for the profile diffs; no heap profile
        // (that would need a dhat build of both revisions).
        if source.profiles.heap {
            eprintln!("note: compare takes no heap profiles (it builds no dhat engine of either revision)");
        }
        e.profiles = ProfileSpec { heap: false, trace: false, ..source.profiles.clone() };
    } else {
        // Without profiles, the phase pass feeds no figure a comparison reads.
        e.measurement.phase_iterations = 0;
    }
    let mut plan = Plan::new(&record.experiment, e);
    let on_head = |n: &str| usize::from(n.starts_with("head"));
    if args.allow_output_change {
        plan.outputs = OutputGate::WithinGroups(named.iter().map(|(n, _)| on_head(n)).collect());
    }
    let per_variant = named.iter().map(|(n, _)| binaries[on_head(n)].clone()).collect();
    let engine = Engine { release: binaries[0].clone(), dhat: None, per_variant };
    let scratch = scratch("compare", &format!("{}..{}", base.short(), head.short()));
    let dirs = Dirs { scratch: &scratch, profiles };
    let command = command_line(record, args, options);
    let results = runner::run(&plan, &engine, options, dirs, command).map_err(|e| {
        if kind(&e).is_none() && e.to_string().starts_with("WRONG OUTPUT") {
            e.context(format!(
                "outputs differ: {} and {} do not generate the same tokens on `{}`; a change of output is a \
                 behaviour change, to be reviewed as one (`--allow-output-change` measures it anyway)",
                head.describe(),
                base.describe(),
                record.experiment
            ))
        } else {
            e
        }
    })?;
    Ok(ExperimentResults { compare: Some(record.clone()), ..results })
}

/// Writes one experiment's page into `dir` (its results, charts, profile diffs and README), the
/// profiles it records already in `dir/profiles/`; gives the charts' file names.
/// `run` (`BASE..HEAD/NAME`) names where diff files too large to commit go under `target/`.
pub fn write_page(dir: &Path, run: &str, results: &ExperimentResults) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let charts = crate::report::figures::draw(results, dir)?;
    let profiles = super::load_profiles(results, &[dir])?;
    let mut analysis = CompareAnalysis::of(results).context("a compare run records its revisions")?;
    analysis.page = analysis.page.with_profile_diffs(&profiles);
    let large = crate::paths::target_dir().join("diffs").join("compare").join(run);
    for diff in &mut analysis.page.cpu_diffs {
        crate::report::profile_diff::draw(
            diff,
            &profiles,
            &dir.join(crate::report::profile_diff::DIFFS),
            &large,
        )?;
    }
    crate::paths::write_atomic(&dir.join(report::RESULTS), &serde_json::to_vec(results)?)?;
    crate::paths::write_atomic(&dir.join(report::README), page(&analysis, &charts).as_bytes())?;
    Ok(charts.into_iter().map(|c| c.file).collect())
}

/// The variants: each toggle set on the base, then on the head (the pair side by side, so that
/// the alternating order of the rounds balances each pair); the base's all-on set first, the
/// reference.
fn variants(toggles: Toggles) -> Vec<(String, Optimizations)> {
    let sets: Vec<(String, Optimizations)> = match toggles {
        Toggles::All => vec![(String::new(), Optimizations::all())],
        Toggles::Lattice => {
            let mut sets = configs(false);
            sets.sort_by_key(|&o| o != Optimizations::all());
            sets.into_iter().map(|o| (config_name(o), o)).collect()
        }
    };
    let side =
        |side: &str, set: &str| if set.is_empty() { side.to_string() } else { format!("{side}-{set}") };
    sets.iter().flat_map(|(n, o)| [(side("base", n), *o), (side("head", n), *o)]).collect()
}

/// `cargo xtask compare BASE [HEAD] --experiment NAME ...` for one experiment, with the revisions
/// as written.
fn command_line(record: &CompareRecord, args: &CompareArgs, options: &RunOptions) -> String {
    let head = if record.head.working_tree { String::new() } else { format!(" {}", record.head.spec) };
    let mut extra = vec![format!("--experiment {}", record.experiment)];
    if args.toggles == Toggles::Lattice {
        extra.push("--toggles lattice".into());
    }
    if args.allow_output_change {
        extra.push("--allow-output-change".into());
    }
    if args.profiles {
        extra.push("--profiles".into());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    super::command_line(
        "compare",
        &format!("{}{head}", record.base.spec),
        &RunOptions { no_profiles: false, ..options.clone() },
        &extra,
    )
}

/// Says each experiment's verdict on one line; gives the exit code (3 when any figure regressed).
fn verdict(folder: &str, analyses: &[(CompareAnalysis, Vec<String>)]) -> u8 {
    let mut regressed = false;
    for (a, _) in analyses {
        let mut line = format!("{folder} `{}`: ", a.record.experiment);
        match a.decode() {
            Some(d) => {
                let _ = write!(
                    line,
                    "decode {} [{}, {}]",
                    crate::report::format::percent_change(d.change.point),
                    crate::report::format::percent_change(d.change.low),
                    crate::report::format::percent_change(d.change.high)
                );
            }
            None => line.push_str("decode throughput not measured on both sides"),
        }
        if let Some(fallen) = a.fallen() {
            let _ = write!(line, "; the fall is in `{}`'s contribution", fallen.toggle.name());
        }
        if !a.divergences.is_empty() {
            line.push_str("; OUTPUTS DIFFER");
        }
        let worse: Vec<&str> = a.regressions().map(|c| c.metric.name()).collect();
        if worse.is_empty() {
            let _ = write!(line, "; within tolerance ({:.0}%)", a.tolerance * 100.0);
        } else {
            regressed = true;
            let _ = write!(line, "; REGRESSED: {} (tolerance {:.0}%)", worse.join(", "), a.tolerance * 100.0);
        }
        println!("{line}");
    }
    if regressed { exit::REGRESSION } else { exit::OK }
}
