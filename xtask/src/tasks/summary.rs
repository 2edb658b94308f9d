//! `cargo xtask summary reports/compare/BASE..HEAD`: the pull-request summary of a compare run,
//! re-rendered from the results files in its folder (the same page `compare --summary` writes);
//! with `--index`, the folder itself re-rendered: each experiment's page and charts, and the
//! summary as its README.md, as `compare` wrote them.

use crate::analysis::compare::CompareAnalysis;
use crate::error::{PathContext, exit, usage};
use crate::paths::{Paths, Publish, report, write_atomic};
use crate::report::compare::{SummaryStyle, summary};
use crate::results::ExperimentResults;
use anyhow::{Context, Result};
use std::path::Path;

/// What `summary` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Every figure in the table, not only those beyond the noise.
    pub all: bool,
    /// Re-render the folder (its pages, charts and index) instead of printing the summary.
    pub index: bool,
}

/// Writes the summary of the compare run in `folder` to `output` (standard output without one),
/// or with `index`, re-renders the folder.
pub fn run(folder: &Path, options: SummaryOptions, output: Option<&Path>) -> Result<u8> {
    let runs = read(folder)?;
    let analyses: Vec<(CompareAnalysis, Vec<String>)> = runs
        .iter()
        .map(|(_, r, charts)| (CompareAnalysis::of(r).expect("read checks the record"), charts.clone()))
        .collect();
    let shown = folder.display().to_string();
    if !options.index {
        let page = summary(&analyses, &shown, SummaryStyle { all: options.all, links: false });
        match output {
            Some(file) => write_atomic(file, page.as_bytes())?,
            None => print!("{page}"),
        }
        return Ok(exit::OK);
    }
    let name = folder.file_name().context("a compare folder has a name")?.to_string_lossy().into_owned();
    let parent = folder.parent().context("a compare folder has a parent")?;
    let paths = Paths { reports: parent.to_path_buf(), ..Paths::default() };
    let publish = Publish::begin(&paths, &name, "summary", |_| false)?;
    let mut drawn = Vec::new();
    for ((experiment, r, _), (a, _)) in runs.iter().zip(analyses) {
        let dir = publish.dir().join(experiment);
        // The profiles stay as they are: the page and its diffs are rendered from them.
        let profiles = folder.join(experiment).join(report::PROFILES);
        if profiles.is_dir() {
            crate::paths::copy_dir(&profiles, &dir.join(report::PROFILES))?;
        }
        let charts = super::compare::write_page(&dir, &format!("{name}/{experiment}"), r)?;
        drawn.push((a, charts));
    }
    let index = summary(&drawn, &shown, SummaryStyle { all: options.all, links: true });
    publish.write(report::README, index.as_bytes())?;
    let dir = publish.commit()?;
    eprintln!("report: {}", dir.join(report::README).display());
    Ok(exit::OK)
}

/// Each experiment's folder name, compare results and chart files, by folder name.
fn read(folder: &Path) -> Result<Vec<(String, ExperimentResults, Vec<String>)>> {
    if !folder.is_dir() {
        return Err(usage(format!(
            "{} is not a folder; give a compare run's folder, reports/compare/BASE..HEAD",
            folder.display()
        )));
    }
    let mut entries: Vec<_> = std::fs::read_dir(folder).at(folder)?.collect::<Result<_, _>>().at(folder)?;
    entries.sort_by_key(|e| e.file_name());
    let mut runs = Vec::new();
    for entry in entries {
        let results = entry.path().join(report::RESULTS);
        if !results.is_file() {
            continue;
        }
        let r = crate::results::read(&results)?;
        if r.compare.is_none() {
            return Err(usage(format!(
                "{}: not the results of `cargo xtask compare` (no revisions recorded)",
                results.display()
            )));
        }
        let mut charts: Vec<String> = std::fs::read_dir(entry.path())
            .at(&entry.path())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.ends_with(".svg"))
            .collect();
        charts.sort();
        runs.push((entry.file_name().to_string_lossy().into_owned(), r, charts));
    }
    // In the order `compare` ran them (the order of its `--experiment` flags).
    runs.sort_by(|a, b| a.1.started.cmp(&b.1.started));
    if runs.is_empty() {
        return Err(usage(format!(
            "{} holds no compare results (NAME/results.json); run `cargo xtask compare BASE HEAD` first",
            folder.display()
        )));
    }
    Ok(runs)
}
