//! `cargo xtask report NAME`: re-render `reports/NAME/` (and its bisect and calibration pages, if
//! it has them) from the results files, without running anything. Every file is read and checked
//! before anything is written; the folder is swapped in whole.

use super::bisect;
use super::experiment::{Outcome, publish_report};
use crate::analysis::baseline::misfit_line;
use crate::analysis::bisect::baseline_misfits;
use crate::error::exit;
use crate::paths::{Paths, Publish, report};
use crate::results;
use anyhow::Result;

/// Re-renders the report and the bisect page; gives the exit code: the report's (see
/// [`Outcome::finish`]), or 2 when the bisect page's baseline does not fit its run.
pub fn run(name: &str, paths: &Paths) -> Result<u8> {
    let _lock = crate::paths::RunLock::take(paths, name)?;
    let bisect = bisect::read_for_rerender(name, paths)?;
    let results = results::read(&paths.report(name).join(report::RESULTS))?;
    let baseline_path = paths.baseline(name);
    if baseline_path.is_file() {
        results::read(&baseline_path)?;
    }
    let noise = super::read_noise(paths, name)?;
    let publish =
        Publish::begin(paths, name, "report", |f| f == report::PROFILES || report::is_other_tasks(f))?;
    if let Some((bisect_results, before)) = &bisect {
        bisect::write_page(name, bisect_results, before.as_ref(), publish.dir(), &paths.report(name))?;
    }
    super::calibrate::rerender(name, paths, noise.as_ref(), publish.dir())?;
    let outcome: Outcome = publish_report(name, &results, paths, publish, noise.as_ref())?;
    let code = outcome.finish();
    let Some((bisect_results, before)) = bisect else { return Ok(code) };
    eprintln!("bisect: {}", outcome.report.join(report::BISECT_PAGE).display());
    let misfits =
        before.map(|b| baseline_misfits(&bisect_results.measured(), &b.measured())).unwrap_or_default();
    if misfits.is_empty() {
        return Ok(code);
    }
    let what = format!("the bisect baseline of `{name}` does not fit its bisect.json");
    let remedy = format!("cargo xtask bisect {name} --save-baseline");
    eprintln!("error: {}", misfit_line(&what, &misfits, &remedy));
    Ok(exit::USAGE)
}
