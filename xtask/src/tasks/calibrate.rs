//! `cargo xtask calibrate NAME`: the experiment's reference variant against itself (A/A) on this
//! machine; writes `reports/NAME/calibration.md` (and the run, `calibration.json`) and gives the
//! page. See [`crate::analysis::calibration`] for what it says.

use super::{Prepared, check_options, command_line, load};
use crate::analysis::calibration::{Calibration, calibrate};
use crate::analysis::noise::{MIN_SESSIONS, NoiseFloors};
use crate::error::usage;
use crate::metrics::Metric;
use crate::paths::{Paths, report, write_atomic};
use crate::plan::{Experiment, Plan};
use crate::results::ExperimentResults;
use crate::runner::RunOptions;
use anyhow::Result;

/// The effect `--effect` sizes the rounds for by default (a fraction).
pub const DEFAULT_EFFECT: f64 = 0.05;

/// Runs the A/A experiment sized for `effect` (a fraction) and, with `sessions` of 2 or more, the
/// experiment that many times as `check` runs it; writes the calibration page, and the noise
/// floors beside the baseline when `save` is set. Gives the page.
pub fn run(
    name: &str,
    options: &RunOptions,
    paths: &Paths,
    effect: f64,
    sessions: usize,
    save: bool,
) -> Result<String> {
    if sessions != 0 && sessions < MIN_SESSIONS {
        return Err(usage(format!("--sessions must be 0 (no noise floors) or at least {MIN_SESSIONS}")));
    }
    if save && sessions == 0 {
        return Err(usage(format!(
            "--save-baseline stores noise floors: give --sessions K (K >= {MIN_SESSIONS})"
        )));
    }
    if !(effect > 0.0 && effect < 10.0) {
        return Err(usage("--effect must be a fraction above 0, e.g. 0.05"));
    }
    let _lock = crate::paths::RunLock::take(paths, name)?;
    check_options(options)?;
    let experiment = load(name, paths)?;
    let opts = experiment.reference().optimizations.resolve();
    let aa = experiment.derived(&[("A".into(), opts), ("A-again".into(), opts)]);
    let options = RunOptions { no_profiles: true, ..options.clone() };
    let prepared = Prepared::new("calibrate", Plan::new(name, aa), options.clone(), &paths.store)?;
    let sessions_flag = format!("--sessions {sessions}");
    let effect_flag = format!("--effect {effect}");
    let mut extra: Vec<&str> = Vec::new();
    if effect != DEFAULT_EFFECT {
        extra.push(&effect_flag);
    }
    if sessions > 0 {
        extra.push(&sessions_flag);
    }
    if save {
        extra.push("--save-baseline");
    }
    let command =
        command_line("calibrate", name, &RunOptions { no_profiles: false, ..options.clone() }, &extra);
    let results = prepared.run(command, None)?;
    let floors = if sessions >= MIN_SESSIONS {
        Some(measure_sessions(name, &experiment, options.clone(), sessions, &paths.store)?)
    } else {
        None
    };
    let page = page(&results, floors.as_ref(), experiment.thresholds.regression, effect);
    let dir = paths.report(name);
    std::fs::create_dir_all(&dir)?;
    write_atomic(&dir.join(report::CALIBRATION_PAGE), page.as_bytes())?;
    write_atomic(&dir.join(report::CALIBRATION_RESULTS), &serde_json::to_vec(&results)?)?;
    if let (true, Some(floors)) = (save, &floors) {
        std::fs::create_dir_all(&paths.baselines)?;
        let path = paths.noise(name);
        write_atomic(&path, &serde_json::to_vec_pretty(floors)?)?;
        eprintln!("{name}: saved the noise floors {}", path.display());
    }
    Ok(page)
}

/// The calibration page of the A/A run `results`, sized for `effect`, with the noise floors, if
/// any, and the cuts they give at `tolerance`.
pub fn page(
    results: &ExperimentResults,
    floors: Option<&NoiseFloors>,
    tolerance: f64,
    effect: f64,
) -> String {
    let calibrations: Vec<Calibration> = [Metric::DecodeTokS, Metric::TtftMs]
        .into_iter()
        .filter_map(|m| calibrate(results, m, effect))
        .collect();
    crate::report::calibration::render(results, &calibrations, floors.map(|f| (f, tolerance)))
}

/// Re-renders `reports/NAME/calibration.md` into `dir` from the folder's `calibration.json` and
/// the saved noise floors, when they come from the same calibration (same commit); otherwise the
/// page is left as it was, and that is said. The effect it was sized for is read from the run's
/// command (`--effect`, else the default).
pub fn rerender(
    name: &str,
    paths: &Paths,
    floors: Option<&NoiseFloors>,
    dir: &std::path::Path,
) -> Result<()> {
    let path = paths.report(name).join(report::CALIBRATION_RESULTS);
    if !path.is_file() {
        return Ok(());
    }
    let results = crate::results::read(&path)?;
    let floors = match floors {
        Some(f) if f.commit == results.environment.git_commit => Some(f),
        Some(_) => {
            eprintln!(
                "{name}: {} left as it was: the saved noise floors come from another calibration",
                report::CALIBRATION_PAGE
            );
            return Ok(());
        }
        None => None,
    };
    let effect = results
        .command
        .split_whitespace()
        .skip_while(|w| *w != "--effect")
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(DEFAULT_EFFECT);
    let tolerance = load(name, paths)?.thresholds.regression;
    write_atomic(&dir.join(report::CALIBRATION_PAGE), page(&results, floors, tolerance, effect).as_bytes())
}

/// Runs the experiment `sessions` times as `check` does (quick rounds, no profiles) and gives
/// the spread of every figure `check` compares.
fn measure_sessions(
    name: &str,
    experiment: &Experiment,
    options: RunOptions,
    sessions: usize,
    store: &std::path::Path,
) -> Result<NoiseFloors> {
    let options = RunOptions { quick: options.iterations.is_none(), no_profiles: true, ..options };
    let plan = Plan::new(name, super::check::as_checked(experiment.clone()));
    let prepared = Prepared::new("calibrate", plan, options.clone(), store)?;
    let command =
        command_line("check", name, &RunOptions { quick: false, no_profiles: false, ..options }, &[]);
    let mut runs = Vec::new();
    for session in 0..sessions {
        eprintln!("{name}: session {} of {sessions} (as `cargo xtask check` runs it)", session + 1);
        runs.push(prepared.run(command.clone(), None)?);
    }
    Ok(NoiseFloors::from_sessions(&runs).expect("two sessions or more"))
}
