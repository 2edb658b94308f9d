//! `cargo xtask calibrate NAME`: the experiment's reference variant against itself (A/A) on this
//! machine; writes `reports/NAME/calibration.md` (and the run, `calibration.json`) and gives the
//! page. See [`crate::analysis::calibration`] for what it says.

use super::{Prepared, check_options, command_line, load};
use crate::analysis::calibration::{Calibration, calibrate};
use crate::error::usage;
use crate::metrics::Metric;
use crate::paths::{Paths, report, write_atomic};
use crate::plan::Plan;
use crate::runner::RunOptions;
use anyhow::Result;

/// Runs the A/A experiment sized for `effect` (a fraction) and writes the calibration page.
pub fn run(name: &str, options: &RunOptions, paths: &Paths, effect: f64) -> Result<String> {
    if !(effect > 0.0 && effect < 10.0) {
        return Err(usage("--effect must be a fraction above 0, e.g. 0.05"));
    }
    check_options(options)?;
    let experiment = load(name, paths)?;
    let opts = experiment.reference().optimizations.resolve();
    let aa = experiment.derived(&[("A".into(), opts), ("A-again".into(), opts)]);
    let options = RunOptions { no_profiles: true, ..options.clone() };
    let prepared = Prepared::new("calibrate", Plan::new(name, aa), options.clone())?;
    let command = command_line("calibrate", name, &RunOptions { no_profiles: false, ..options }, &[]);
    let results = prepared.run(command, None)?;
    let calibrations: Vec<Calibration> = [Metric::DecodeTokS, Metric::TtftMs]
        .into_iter()
        .filter_map(|m| calibrate(&results, m, effect))
        .collect();
    let page = crate::report::calibration::render(&results, &calibrations);
    let dir = paths.report(name);
    std::fs::create_dir_all(&dir)?;
    write_atomic(&dir.join(report::CALIBRATION_PAGE), page.as_bytes())?;
    write_atomic(&dir.join(report::CALIBRATION_RESULTS), &serde_json::to_vec(&results)?)?;
    Ok(page)
}
