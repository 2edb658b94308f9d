//! `cargo xtask bisect NAME`: attribute the experiment's figures to each optimization by running
//! the lattice of toggle sets (all off, all on, each alone on, each alone off; `--full`: every
//! set), interleaved and checked for identical output like any experiment. Writes
//! `reports/NAME/bisect.md` with a chart; with a stored bisect baseline, ranks the toggles whose
//! contribution fell (the suspects of a regression) and links their profiles before and after.
//!
//! A bisect baseline must fit: the toggle sets the ranking reads (all on, and all on but one)
//! with the same workload. One that does not stops `bisect` before it measures (exit 2) unless
//! `--save-baseline` replaces it, and the page then names what does not fit instead of ranking.

use super::{Prepared, check_options, command_line, load, refuse_misfits};
use crate::analysis::bisect::{analyse, baseline_misfits, config_name, configs, effects};
use crate::paths::{Paths, Publish, copy_dir, report, write_atomic};
use crate::plan::Plan;
use crate::results::{self, ExperimentResults};
use crate::runner::RunOptions;
use anyhow::{Context, Result};
use smallmind::Optimizations;
use std::path::Path;

/// Runs the lattice for experiment `name`, publishes the bisect page, and gives the page.
pub fn run(
    name: &str,
    options: &RunOptions,
    paths: &Paths,
    full: bool,
    save_baseline: bool,
) -> Result<String> {
    check_options(options)?;
    let experiment = load(name, paths)?;
    let _lock = crate::paths::RunLock::take(paths, name)?;

    let named: Vec<(String, Optimizations)> =
        configs(full).into_iter().map(|o| (config_name(o), o)).collect();
    let mut lattice = experiment.derived(&named);
    lattice.profiles.flamegraph = !options.no_profiles;
    lattice.profiles.heap = experiment.profiles.heap && !options.no_profiles;
    lattice.profiles.seconds = 1.0;
    lattice.profiles.repeats = experiment.profiles.repeats;
    // The phase pass feeds no figure here; skipping it keeps the lattice affordable.
    lattice.measurement.phase_iterations = 0;
    let plan = Plan::new(name, lattice);
    let baseline_path = paths.bisect_baseline(name);
    let remedy = format!("cargo xtask bisect {name} --save-baseline{}", if full { " --full" } else { "" });
    if baseline_path.is_file() && !save_baseline {
        let stored = super::read_baseline(&baseline_path, &remedy)?;
        let misfits = baseline_misfits(&plan.measured(), &stored.measured());
        refuse_misfits(
            &format!("the bisect baseline of `{name}` does not fit the experiment"),
            &misfits,
            &remedy,
        )?;
    }
    let prepared = Prepared::new("bisect", plan, options.clone(), &paths.store)?;
    let publish = Publish::begin(paths, name, "bisect", |f| !f.starts_with("bisect"))?;
    let profile_dir = publish.dir().join(report::BISECT_PROFILES);
    let extra: &[&str] = if full { &["--full"] } else { &[] };
    let mut results = prepared.run(command_line("bisect", name, options, extra), Some(&profile_dir))?;
    // Profiles go beside the page (they are small: one flame graph per set).
    for record in &mut results.profiles {
        let file =
            Path::new(&record.path).file_name().context("profile file name")?.to_string_lossy().into_owned();
        record.path = format!("{}/{file}", report::BISECT_PROFILES);
        record.beside_report = true;
    }
    let before = match baseline_path.is_file().then(|| results::read(&baseline_path)) {
        None => None,
        Some(Ok(b)) => Some(b),
        // Only with --save-baseline: without, an unreadable one stopped the run before it began.
        Some(Err(e)) => {
            eprintln!("{name}: {e:#}; this run replaces it");
            None
        }
    };
    let kept = paths.bisect_baseline_profiles(name);
    if let Some(b) = &before {
        // The baseline and its flame graphs are kept beside the page, so that its "before" links
        // keep working after `--save-baseline` replaces it and `cargo xtask report` re-renders
        // the same comparison later.
        if kept.is_dir() {
            copy_dir(&kept, &publish.dir().join(report::BISECT_PROFILES_BEFORE))?;
        }
        publish.write(report::BISECT_BEFORE, &serde_json::to_vec(b)?)?;
    }
    publish.write(report::BISECT_RESULTS, &serde_json::to_vec(&results)?)?;
    // Suspects come from the previous baseline; a first baseline is this run itself.
    let before = before.or_else(|| save_baseline.then(|| results.clone()));
    let page = write_page(name, &results, before.as_ref(), publish.dir(), &paths.report(name))?;
    // The page first: the baseline it compared with is replaced only once the page is in place.
    let dir = publish.commit()?;
    eprintln!("bisect: {}", dir.join(report::BISECT_PAGE).display());
    if save_baseline {
        save(name, &results, &dir.join(report::BISECT_PROFILES), paths)?;
    }
    Ok(page)
}

/// Stores `results` as the bisect baseline, with the flame graphs in `profiles`.
fn save(name: &str, results: &ExperimentResults, profiles: &Path, paths: &Paths) -> Result<()> {
    let baseline_path = paths.bisect_baseline(name);
    let kept = paths.bisect_baseline_profiles(name);
    std::fs::create_dir_all(&paths.baselines)?;
    write_atomic(&baseline_path, &serde_json::to_vec(results)?)?;
    if kept.exists() {
        std::fs::remove_dir_all(&kept)?;
    }
    if profiles.is_dir() {
        copy_dir(profiles, &kept)?;
    }
    eprintln!("{name}: saved the bisect baseline {}", baseline_path.display());
    Ok(())
}

/// The bisect results of `reports/NAME` and the baseline they were compared with: the kept
/// `bisect-before.json`, else the stored bisect baseline. `None` when there is no bisect page.
pub fn read_for_rerender(
    name: &str,
    paths: &Paths,
) -> Result<Option<(ExperimentResults, Option<ExperimentResults>)>> {
    let dir = paths.report(name);
    let path = dir.join(report::BISECT_RESULTS);
    if !path.is_file() {
        return Ok(None);
    }
    let results = results::read(&path)?;
    let compared = dir.join(report::BISECT_BEFORE);
    let baseline_path = paths.bisect_baseline(name);
    let before = if compared.is_file() {
        Some(results::read(&compared)?)
    } else if baseline_path.is_file() {
        Some(results::read(&baseline_path)?)
    } else {
        None
    };
    Ok(Some((results, before)))
}

/// Analyses and writes the bisect page and its chart into `dir`; gives the page.
pub fn write_page(
    name: &str,
    results: &ExperimentResults,
    before: Option<&ExperimentResults>,
    dir: &Path,
    current: &Path,
) -> Result<String> {
    // The profiles are in `dir` after a run, in the current report folder when re-rendered.
    let profiles = super::load_profiles(results, &[dir, current])?;
    let mut analysis = analyse(results, before).with_pair_diff(&profiles);
    if let Some(diff) = &mut analysis.pair_diff {
        let large = crate::paths::target_dir().join("diffs").join(name);
        crate::report::profile_diff::draw(diff, &profiles, &dir.join(report::BISECT_DIFFS), &large)?;
    }
    let page = crate::report::bisect::render(&analysis);
    let title = format!("What each optimization buys: {name}");
    crate::report::charts::effects(&dir.join(report::BISECT_CHART), &title, &effects(&results.points[0]))?;
    std::fs::write(dir.join(report::BISECT_PAGE), page.as_bytes())?;
    Ok(page)
}
