//! `cargo xtask experiment NAME`, `baseline NAME`, `report NAME` and `list`: from an experiment
//! file to a report folder and, when asked, a baseline.
//!
//! Nothing the previous run left is touched until the new one has succeeded: the report is
//! assembled in a hidden staging folder beside `reports/NAME` and swapped in by renames, and a
//! baseline is written to a temporary file and renamed.

use crate::UsageError;
use crate::baseline;
use crate::charts;
use crate::report::{self, BaselineState, ChartRef};
use crate::results::{ExperimentResults, PointResults, SCHEMA_VERSION};
use crate::runner::{self, RunOptions};
use crate::spec::{Experiment, Metric};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Committed files stay under this size; larger profiles stay under `target/`.
pub const MAX_COMMITTED_BYTES: u64 = 1_000_000;

/// Where experiments, reports and baselines live (the repository's folders unless overridden).
#[derive(Debug, Clone)]
pub struct Paths {
    pub experiments: PathBuf,
    pub reports: PathBuf,
    pub baselines: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        let root = crate::project_root();
        Paths {
            experiments: root.join("experiments"),
            reports: root.join("reports"),
            baselines: root.join("baselines"),
        }
    }
}

/// How a finished experiment went, for the exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub report: PathBuf,
    pub regressions: Vec<String>,
    /// One line naming what the baseline does not fit (exit 2), if it does not.
    pub misfit: Option<String>,
}

/// Every experiment file: name and description, or the error that keeps it from parsing.
pub fn list(paths: &Paths) -> Result<Vec<(String, Result<String>)>> {
    let mut names: Vec<String> = std::fs::read_dir(&paths.experiments)
        .with_context(|| format!("cannot read {}", paths.experiments.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(str::to_string))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let description =
                Experiment::load(&paths.experiments.join(format!("{n}.toml"))).map(|e| e.description);
            (n, description)
        })
        .collect())
}

/// Loads `experiments/NAME.toml`, as a usage error when it is missing or invalid.
pub fn load(name: &str, paths: &Paths) -> Result<Experiment> {
    let path = paths.experiments.join(format!("{name}.toml"));
    if !path.is_file() {
        let known: Vec<String> =
            list(paths).map(|l| l.into_iter().map(|(n, _)| n).collect()).unwrap_or_default();
        return Err(UsageError(format!(
            "no experiment `{name}` ({} does not exist); experiments: {}",
            path.display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
        .into());
    }
    Experiment::load(&path).map_err(|e| UsageError(e.to_string()).into())
}

/// Runs experiment `name` and writes its report (and baseline when `save_baseline`). A stored
/// baseline that does not fit the experiment stops it before anything runs, unless this run is
/// to replace it.
pub fn run(name: &str, options: &RunOptions, save_baseline: bool, paths: &Paths) -> Result<Outcome> {
    let experiment = load(name, paths)?;
    if options.iterations == Some(0) {
        return Err(UsageError("--iterations must be at least 1".into()).into());
    }
    // The stored baseline must be readable and fit, or be about to be replaced.
    let baseline_path = paths.baselines.join(format!("{name}.json"));
    let mut unreadable_baseline = false;
    if baseline_path.is_file() {
        match (read_results(&baseline_path), save_baseline) {
            (Ok(stored), false) => require_fit(name, &experiment, &stored)?,
            (Err(e), false) => return Err(unreadable(name, &e)),
            (Ok(_), true) => {}
            (Err(e), true) => {
                eprintln!("{name}: {e:#}; this run replaces it");
                unreadable_baseline = true;
            }
        }
    }
    let engine =
        runner::build_engine(experiment.profiles.heap && !options.no_profiles, &options.engine_features)?;
    let staging = staging_dir(paths, name)?;
    let scratch = runner::target_dir().join("xtask").join(name);
    let mut command = format!("cargo xtask experiment {name}");
    if options.quick {
        command.push_str(" --quick");
    }
    if let Some(n) = options.iterations {
        command.push_str(&format!(" --iterations {n}"));
    }
    if options.no_profiles {
        command.push_str(" --no-profiles");
    }
    let profile_dir = staging.join("profiles");
    let outcome = runner::run(name, &experiment, &engine, options, &scratch, &profile_dir, command).and_then(
        |mut results| {
            place_profiles(&mut results, &profile_dir, name)?;
            // A first baseline is this run, and the report says so; an existing one is replaced
            // only after the report has been compared with it.
            let first_baseline = save_baseline && (unreadable_baseline || !baseline_path.is_file());
            if first_baseline {
                write_baseline(name, &results, paths)?;
            }
            let mut outcome = publish(name, &results, paths, &staging)?;
            if save_baseline && !first_baseline {
                write_baseline(name, &results, paths)?;
                // The report compares with the baseline it replaced; the new one fits.
                if outcome.misfit.take().is_some() {
                    eprintln!("{name}: the previous baseline did not fit; the report names what");
                }
            }
            Ok(outcome)
        },
    );
    // On failure the previous report stays as it was; only the staging folder goes.
    outcome.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&staging);
    })
}

/// Reads `baselines/NAME.json`; an unreadable one is a usage error saying how to replace it.
pub fn read_stored_baseline(name: &str, path: &Path) -> Result<ExperimentResults> {
    read_results(path).map_err(|e| unreadable(name, &e))
}

fn unreadable(name: &str, e: &anyhow::Error) -> anyhow::Error {
    UsageError(format!("{e:#}; run `cargo xtask baseline {name}` to replace it")).into()
}

/// A usage error naming every variant the stored baseline does not fit, from the experiment
/// file and the baseline alone (nothing is measured).
pub fn require_fit(name: &str, experiment: &Experiment, stored: &ExperimentResults) -> Result<()> {
    let misfits = baseline::fit(&baseline::planned(experiment)?, &baseline::measured(stored));
    if misfits.is_empty() {
        return Ok(());
    }
    Err(UsageError(baseline::misfit_line(
        &format!("the baseline of `{name}` does not fit the experiment"),
        &misfits,
        &format!("cargo xtask baseline {name}"),
    ))
    .into())
}

/// `cargo xtask report NAME`: re-renders the report and, if there is one, the bisect page, every
/// file read and checked before anything is written. Gives the report's outcome and what the
/// bisect page's baseline does not fit (`None`: no bisect page).
pub fn report(name: &str, paths: &Paths) -> Result<(Outcome, Option<Vec<baseline::Misfit>>)> {
    let bisect = crate::bisect::read_for_rerender(name, paths)?;
    let outcome = rerender(name, paths)?;
    let misfits = bisect.map(crate::bisect::Rerender::write).transpose()?;
    Ok((outcome, misfits))
}

/// Re-renders `reports/NAME` from its `results.json` and the current baseline. Both files are
/// read before anything is written; on failure the report stays as it was.
pub fn rerender(name: &str, paths: &Paths) -> Result<Outcome> {
    let results = read_results(&paths.reports.join(name).join("results.json"))?;
    let baseline_path = paths.baselines.join(format!("{name}.json"));
    if baseline_path.is_file() {
        read_results(&baseline_path)?;
    }
    let staging = staging_dir(paths, name)?;
    let old_profiles = paths.reports.join(name).join("profiles");
    let published =
        if old_profiles.is_dir() { copy_dir(&old_profiles, &staging.join("profiles")) } else { Ok(()) }
            .and_then(|()| publish(name, &results, paths, &staging));
    published.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&staging);
    })
}

/// Writes `results` as `baselines/NAME.json`, the run every later report is compared with.
pub fn write_baseline(name: &str, results: &ExperimentResults, paths: &Paths) -> Result<PathBuf> {
    std::fs::create_dir_all(&paths.baselines)?;
    let path = paths.baselines.join(format!("{name}.json"));
    write_atomic(&path, &serde_json::to_vec(results)?)?;
    eprintln!("{name}: saved the baseline {}", path.display());
    Ok(path)
}

/// Reads a results or baseline file, checking its schema version and everything the reports
/// rely on ([`ExperimentResults::validate`]). A file that is not readable as such is a usage
/// error (exit 2) naming the file, and where the JSON parser says, the line and column.
pub fn read_results(path: &Path) -> Result<ExperimentResults> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_results(&bytes, &path.display().to_string())
}

/// [`read_results`] on bytes already read; `origin` names them in errors.
pub fn parse_results(bytes: &[u8], origin: &str) -> Result<ExperimentResults> {
    let invalid = |what: String| UsageError(format!("{origin}: {what}"));
    let value = serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| invalid(format!("not an experiment results file: {e}")))?;
    let version = value.get("schema_version").and_then(|s| s.as_u64());
    if version != Some(u64::from(SCHEMA_VERSION)) {
        return Err(invalid(format!(
            "schema version {}, this harness reads {SCHEMA_VERSION}; re-run the experiment (and re-save the baseline)",
            version.map_or("missing".to_string(), |v| v.to_string())
        ))
        .into());
    }
    crate::results::no_negative_numbers(&value, "").map_err(invalid)?;
    let results: ExperimentResults =
        serde_json::from_value(value).map_err(|e| invalid(format!("not an experiment results file: {e}")))?;
    results.validate().map_err(invalid)?;
    Ok(results)
}

/// Writes results, charts and README into `staging`, then swaps it in as `reports/NAME`.
fn publish(name: &str, results: &ExperimentResults, paths: &Paths, staging: &Path) -> Result<Outcome> {
    let baseline_path = paths.baselines.join(format!("{name}.json"));
    let state = if baseline_path.is_file() {
        let stored = read_results(&baseline_path)?;
        BaselineState::Checked(baseline::check(results, &stored, results.spec.thresholds.regression))
    } else {
        BaselineState::Missing
    };
    std::fs::write(staging.join("results.json"), serde_json::to_vec(results)?)?;
    let charts = draw_charts(results, staging)?;
    let markdown = report::render(results, &state, &charts);
    std::fs::write(staging.join("README.md"), markdown)?;
    for entry in std::fs::read_dir(staging)? {
        let entry = entry?;
        let size = entry.metadata()?.len();
        if entry.file_type()?.is_file() && size > MAX_COMMITTED_BYTES {
            bail!("{} is {size} bytes, over the 1 MB a committed file may have", entry.path().display());
        }
    }
    let report = paths.reports.join(name);
    // The bisect and calibration pages come from other tasks: they stay with the folder.
    if report.is_dir() {
        for entry in std::fs::read_dir(&report)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with("bisect") || file.starts_with("calibration") {
                let to = staging.join(&file);
                if entry.file_type()?.is_dir() {
                    copy_dir(&entry.path(), &to)?
                } else {
                    std::fs::copy(entry.path(), to).map(|_| ())?
                }
            }
        }
    }
    swap_in(staging, &report)?;
    let regressions = match &state {
        BaselineState::Checked(check) => check
            .regressions()
            .map(|r| {
                format!(
                    "{} {}{}: {}",
                    r.subject,
                    r.metric.name(),
                    crate::spec::at_label(&r.point),
                    r.change.point
                )
            })
            .collect(),
        BaselineState::Missing => Vec::new(),
    };
    let misfit = match &state {
        BaselineState::Checked(check) if !check.misfits.is_empty() => Some(baseline::misfit_line(
            &format!(
                "the baseline of `{name}` does not fit {}",
                paths.reports.join(name).join("results.json").display()
            ),
            &check.misfits,
            &format!("cargo xtask baseline {name}"),
        )),
        _ => None,
    };
    Ok(Outcome { report, regressions, misfit })
}

/// Profiles under 1 MB move beside the report; larger ones to `target/experiments/NAME/`.
fn place_profiles(results: &mut ExperimentResults, profile_dir: &Path, name: &str) -> Result<()> {
    let keep = runner::target_dir().join("experiments").join(name).join("profiles");
    for record in &mut results.profiles {
        let path = PathBuf::from(&record.path);
        let file = path.file_name().context("a profile has a file name")?.to_string_lossy().into_owned();
        if record.bytes > 0 && record.bytes < MAX_COMMITTED_BYTES {
            record.path = format!("profiles/{file}");
            record.beside_report = true;
        } else {
            std::fs::create_dir_all(&keep)?;
            let target = keep.join(&file);
            std::fs::rename(&path, &target).or_else(|_| std::fs::copy(&path, &target).map(|_| ()))?;
            let _ = std::fs::remove_file(&path);
            record.path = target.strip_prefix(crate::project_root()).unwrap_or(&target).display().to_string();
        }
    }
    if profile_dir.is_dir() && std::fs::read_dir(profile_dir)?.next().is_none() {
        std::fs::remove_dir(profile_dir)?;
    }
    Ok(())
}

fn draw_charts(r: &ExperimentResults, dir: &Path) -> Result<Vec<ChartRef>> {
    let mut charts = Vec::new();
    let last = r.points.last().expect("at least one point");
    let where_ = crate::spec::at(&last.point);
    let spread = |metric: Metric| -> Vec<(String, Vec<f64>)> {
        last.variants.iter().map(|v| (v.name.clone(), v.values(metric))).collect()
    };
    let mut add = |file: &str, caption: String| charts.push(ChartRef { file: file.into(), caption });
    charts::spread(
        &dir.join("throughput.svg"),
        &format!("Decode throughput{where_}"),
        "tok/s",
        &spread(Metric::DecodeTokS),
    )?;
    add(
        "throughput.svg",
        format!("Decode throughput per variant{where_}: median bar, p10-p90 whisker, one dot per run"),
    );
    charts::spread(
        &dir.join("ttft.svg"),
        &format!("Time to first token{where_}"),
        "ms",
        &spread(Metric::TtftMs),
    )?;
    add("ttft.svg", format!("Time to first token per variant{where_}"));
    let latency: Vec<(String, Vec<f64>)> =
        last.variants.iter().map(|v| (v.name.clone(), latency_by_position(v))).collect();
    charts::latency_by_position(&dir.join("latency.svg"), &format!("Latency per token{where_}"), &latency)?;
    add(
        "latency.svg",
        format!("Latency of each generated token against its position{where_} (median over runs)"),
    );
    if let Some((names, items)) = phase_items(last) {
        charts::phases_stacked(&dir.join("phases.svg"), &format!("Time per phase{where_}"), &names, &items)?;
        add("phases.svg", format!("Time per phase per op{where_}, from the spans (median over runs)"));
    }
    charts::spread(
        &dir.join("allocations.svg"),
        &format!("Heap allocations per op{where_}"),
        "allocations",
        &spread(Metric::AllocCountPerOp),
    )?;
    add(
        "allocations.svg",
        format!("Heap allocations per op{where_} (counted: every run gives the same number)"),
    );
    if r.points.len() > 1 {
        let labels: Vec<String> = r.points.iter().map(|p| p.point.label.clone()).collect();
        for (metric, unit) in [(Metric::DecodeTokS, "tok/s"), (Metric::TtftMs, "ms")] {
            let items: Vec<(String, Vec<Vec<f64>>)> = r.points[0]
                .variants
                .iter()
                .map(|v| {
                    let per_point = r
                        .points
                        .iter()
                        .map(|p| {
                            p.variants
                                .iter()
                                .find(|x| x.name == v.name)
                                .map(|x| x.values(metric))
                                .unwrap_or_default()
                        })
                        .collect();
                    (v.name.clone(), per_point)
                })
                .collect();
            let file = format!("sweep-{}.svg", metric.name());
            charts::sweep(
                &dir.join(&file),
                &format!("{} across the sweep", metric.name()),
                unit,
                &labels,
                &items,
            )?;
            add(
                &file,
                format!(
                    "`{}` at each point of the sweep, one line per variant (median, p10-p90)",
                    metric.name()
                ),
            );
        }
    }
    Ok(charts)
}

/// Median inter-token latency at each position, over every measured op of every run.
fn latency_by_position(v: &crate::results::VariantResults) -> Vec<f64> {
    let ops: Vec<&Vec<f64>> =
        v.runs.iter().flat_map(|r| r.iterations.iter().map(|i| &i.inter_token_ms)).collect();
    let longest = ops.iter().map(|o| o.len()).max().unwrap_or(0);
    (0..longest)
        .map(|k| crate::compare::median(&ops.iter().filter_map(|o| o.get(k).copied()).collect::<Vec<_>>()))
        .collect()
}

/// A variant's name and one value per category.
type Series = (String, Vec<f64>);

/// Phase names (sampling excluded: it is outside the forward pass) and each variant's medians.
fn phase_items(p: &PointResults) -> Option<(Vec<String>, Vec<Series>)> {
    let first = p.variants.iter().flat_map(|v| &v.runs).find_map(|r| r.phases.as_ref())?;
    let names: Vec<String> =
        first.phases.iter().map(|ph| ph.name.clone()).filter(|n| n != "sampling").collect();
    let items = p
        .variants
        .iter()
        .map(|v| {
            let medians = names
                .iter()
                .map(|name| {
                    let xs: Vec<f64> = v
                        .runs
                        .iter()
                        .filter_map(|r| r.phases.as_ref())
                        .filter_map(|ph| ph.phases.iter().find(|x| &x.name == name).map(|x| x.ms_per_op))
                        .collect();
                    if xs.is_empty() { 0.0 } else { crate::compare::median(&xs) }
                })
                .collect();
            (v.name.clone(), medians)
        })
        .collect();
    Some((names, items))
}

/// A fresh hidden staging folder beside the report (same file system, so renames work).
pub fn staging_dir(paths: &Paths, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(&paths.reports)?;
    let staging = paths.reports.join(format!(".{name}.staging"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    Ok(staging)
}

/// Replaces `report` by `staging` with two renames; the old report is deleted only after.
fn swap_in(staging: &Path, report: &Path) -> Result<()> {
    let old = report.with_file_name(format!(".{}.old", report.file_name().unwrap().to_string_lossy()));
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if report.exists() {
        std::fs::rename(report, &old).with_context(|| format!("cannot move {} aside", report.display()))?;
    }
    std::fs::rename(staging, report)
        .with_context(|| format!("cannot move the new report into {}", report.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Copies the files of `from` (not its subfolders) into `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("a file path has a parent")?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".xtask.").suffix(".tmp");
    // Committed files get the usual mode (less the umask), not tempfile's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
