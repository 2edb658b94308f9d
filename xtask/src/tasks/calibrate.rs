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
use crate::runner::RunOptions;
use anyhow::Result;

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
    check_options(options)?;
    let experiment = load(name, paths)?;
    let opts = experiment.reference().optimizations.resolve();
    let aa = experiment.derived(&[("A".into(), opts), ("A-again".into(), opts)]);
    let options = RunOptions { no_profiles: true, ..options.clone() };
    let prepared = Prepared::new("calibrate", Plan::new(name, aa), options.clone(), &paths.store)?;
    let sessions_flag = format!("--sessions {sessions}");
    let mut extra: Vec<&str> = Vec::new();
    if sessions > 0 {
        extra.push(&sessions_flag);
    }
    if save {
        extra.push("--save-baseline");
    }
    let command =
        command_line("calibrate", name, &RunOptions { no_profiles: false, ..options.clone() }, &extra);
    let results = prepared.run(command, None)?;
    let calibrations: Vec<Calibration> = [Metric::DecodeTokS, Metric::TtftMs]
        .into_iter()
        .filter_map(|m| calibrate(&results, m, effect))
        .collect();
    let floors = if sessions >= MIN_SESSIONS {
        Some(measure_sessions(name, &experiment, options.clone(), sessions, &paths.store)?)
    } else {
        None
    };
    let tolerance = experiment.thresholds.regression;
    let page =
        crate::report::calibration::render(&results, &calibrations, floors.as_ref().map(|f| (f, tolerance)));
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
