//! `cargo xtask summary reports/compare/BASE..HEAD`: the pull-request summary of a compare run,
//! re-rendered from the results files in its folder (the same page `compare --summary` writes).

use crate::analysis::compare::CompareAnalysis;
use crate::error::{PathContext, exit, usage};
use crate::paths::{report, write_atomic};
use crate::report::compare::{SummaryStyle, summary};
use anyhow::Result;
use std::path::Path;

/// Writes the summary of the compare run in `folder` to `output` (standard output without one).
pub fn run(folder: &Path, all: bool, output: Option<&Path>) -> Result<u8> {
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
        runs.push((r, charts));
    }
    if runs.is_empty() {
        return Err(usage(format!(
            "{} holds no compare results (NAME/results.json); run `cargo xtask compare BASE HEAD` first",
            folder.display()
        )));
    }
    let analyses: Vec<(CompareAnalysis, Vec<String>)> = runs
        .iter()
        .map(|(r, charts)| (CompareAnalysis::of(r).expect("checked above"), charts.clone()))
        .collect();
    let page = summary(&analyses, &folder.display().to_string(), SummaryStyle { all, links: false });
    match output {
        Some(file) => write_atomic(file, page.as_bytes())?,
        None => print!("{page}"),
    }
    Ok(exit::OK)
}
