//! `cargo xtask experiment NAME` (and `baseline NAME`): run an experiment, write its report and,
//! when asked, store the run as the baseline every later report is compared with.
//!
//! A stored baseline that does not fit the experiment stops the run before anything is built or
//! measured, unless this run is to replace it. The previous report stays as it was until the new
//! one is complete ([`Publish`]); the baseline is written atomically.

use super::{Prepared, check_options, command_line, load, read_baseline, require_fit};
use crate::analysis::Analysis;
use crate::analysis::baseline::misfit_line;
use crate::analysis::noise::NoiseFloors;
use crate::error::exit;
use crate::paths::{Paths, Publish, report, write_atomic};
use crate::plan::Plan;
use crate::results::{self, ExperimentResults};
use crate::runner::{RunOptions, profiles};
use anyhow::Result;
use std::path::PathBuf;

/// How a published report went, for the exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The report folder.
    pub report: PathBuf,
    /// Every figure that regressed against the baseline.
    pub regressions: Vec<String>,
    /// One line naming what the baseline does not fit (exit 2), if it does not.
    pub misfit: Option<String>,
    /// One line saying the baseline is stale (figures better beyond tolerance), if it is.
    pub stale: Option<String>,
}

impl Outcome {
    /// Says where the report went and what regressed; gives the exit code: 2 when the baseline
    /// does not fit the run, else 3 when something regressed against it.
    pub fn finish(&self) -> u8 {
        eprintln!("report: {}", self.report.join(report::README).display());
        if let Some(stale) = &self.stale {
            eprintln!("{stale}");
        }
        if !self.regressions.is_empty() {
            eprintln!("REGRESSION against the baseline: {}", self.regressions.join("; "));
        }
        if let Some(misfit) = &self.misfit {
            eprintln!("error: {misfit}");
            exit::USAGE
        } else if self.regressions.is_empty() {
            exit::OK
        } else {
            exit::REGRESSION
        }
    }
}

/// Runs experiment `name` and writes its report (and the baseline when `save_baseline`); gives
/// the exit code.
pub fn run(name: &str, options: &RunOptions, save_baseline: bool, paths: &Paths) -> Result<u8> {
    let _lock = crate::paths::RunLock::take(paths, name)?;
    check_options(options)?;
    let plan = Plan::new(name, load(name, paths)?);
    // The stored baseline must be readable and fit, or be about to be replaced.
    let baseline_path = paths.baseline(name);
    let remedy = format!("cargo xtask baseline {name}");
    let mut replacing_unreadable = false;
    if baseline_path.is_file() {
        match (read_baseline(&baseline_path, &remedy), save_baseline) {
            (Ok(stored), false) => require_fit(&plan, &stored)?,
            (Err(e), false) => return Err(e),
            (Ok(_), true) => {}
            (Err(e), true) => {
                eprintln!("{name}: {e:#}; this run replaces it");
                replacing_unreadable = true;
            }
        }
    }
    // Read before anything runs: a damaged file stops the run before it costs anything.
    let noise = super::read_noise(paths, name)?;
    // A baseline is judged on every figure a check compares, not only the hypothesis's metric
    // that settles adaptive rounds: it runs the file's full rounds (a 3-round baseline once
    // recorded a 1.35x TTFT "speedup" of the KV cache that 20 checks measured at 0.96x).
    let full = RunOptions { iterations: Some(plan.experiment.measurement.iterations), ..options.clone() };
    let options = if save_baseline && options.iterations.is_none() && !options.quick {
        eprintln!(
            "{name}: a baseline runs the file's {} rounds at every point, not adaptive ones: every figure a check \
             compares is judged against it",
            plan.experiment.measurement.iterations
        );
        &full
    } else {
        options
    };
    let prepared = Prepared::new("experiment", plan, options.clone(), &paths.store)?;
    let publish = Publish::begin(paths, name, "experiment", report::is_other_tasks)?;
    let profile_dir = publish.dir().join(report::PROFILES);
    let mut results = prepared.run(command_line("experiment", name, options, &[]), Some(&profile_dir))?;
    profiles::place(&mut results, &profile_dir, name)?;
    // A first baseline is this run, and the report says so; an existing one is replaced only
    // after the report has been compared with it.
    let first_baseline = save_baseline && (replacing_unreadable || !baseline_path.is_file());
    if first_baseline {
        write_baseline(name, &results, paths)?;
    }
    let mut outcome = publish_report(name, &results, paths, publish, noise.as_ref())?;
    if save_baseline && !first_baseline {
        write_baseline(name, &results, paths)?;
        // The report compares with the baseline it replaced; the new one fits.
        if outcome.misfit.take().is_some() {
            eprintln!("{name}: the previous baseline did not fit; the report names what");
        }
        // The stale baseline is the one just replaced.
        if outcome.stale.take().is_some() {
            eprintln!(
                "{name}: the previous baseline was stale (figures better beyond tolerance); this run replaces it"
            );
        }
        eprintln!(
            "{name}: the report compares with the baseline it replaced; `cargo xtask report {name}` \
             re-renders it against the new one (what a committed report must match)"
        );
    }
    Ok(outcome.finish())
}

/// Writes `results` as `baselines/NAME.json`.
pub fn write_baseline(name: &str, results: &ExperimentResults, paths: &Paths) -> Result<PathBuf> {
    std::fs::create_dir_all(&paths.baselines)?;
    let path = paths.baseline(name);
    write_atomic(&path, &serde_json::to_vec(results)?)?;
    eprintln!("{name}: saved the baseline {}", path.display());
    Ok(path)
}

/// Analyses `results` against the stored baseline, writes the results, charts and README into
/// the staging folder and swaps it in as `reports/NAME`.
pub fn publish_report(
    name: &str,
    results: &ExperimentResults,
    paths: &Paths,
    publish: Publish,
    noise: Option<&NoiseFloors>,
) -> Result<Outcome> {
    let baseline_path = paths.baseline(name);
    let stored = if baseline_path.is_file() { Some(results::read(&baseline_path)?) } else { None };
    // Profiles beside the report are in the staging folder after a run, in the current one when
    // a report is re-rendered.
    let profiles = super::load_profiles(results, &[publish.dir(), &paths.report(name)])?;
    let mut analysis = Analysis::of(results, stored.as_ref(), noise).with_profile_diffs(&profiles);
    let (dir, large) = (
        publish.dir().join(crate::report::profile_diff::DIFFS),
        crate::paths::target_dir().join("diffs").join(name),
    );
    for diff in &mut analysis.cpu_diffs {
        crate::report::profile_diff::draw(diff, &profiles, &dir, &large)?;
    }
    publish.write(report::RESULTS, &serde_json::to_vec(results)?)?;
    let charts = crate::report::figures::draw(results, publish.dir())?;
    publish.write(report::README, crate::report::render(&analysis, &charts).as_bytes())?;
    let regressions = analysis.regressions();
    let misfit = match &analysis.baseline {
        crate::analysis::BaselineState::Checked(check) if !check.misfits.is_empty() => Some(misfit_line(
            &format!(
                "the baseline of `{name}` does not fit {}",
                paths.report(name).join(report::RESULTS).display()
            ),
            &check.misfits,
            &format!("cargo xtask baseline {name}"),
        )),
        _ => None,
    };
    let stale = match &analysis.baseline {
        crate::analysis::BaselineState::Checked(check) if check.improved_beyond().next().is_some() => {
            let figures: Vec<String> = check
                .improved_beyond()
                .map(|r| format!("{} {}{}", r.subject, r.metric.name(), crate::plan::at_label(&r.point)))
                .collect();
            let more = figures.len().saturating_sub(3);
            Some(format!(
                "stale baseline: {} figure(s) improved beyond tolerance ({}{}): the baseline no longer describes \
                 this engine; `cargo xtask baseline {name}` stores it again",
                figures.len(),
                figures[..figures.len().min(3)].join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ))
        }
        _ => None,
    };
    Ok(Outcome { report: publish.commit()?, regressions, misfit, stale })
}
