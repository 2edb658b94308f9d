//! `cargo xtask store list|show|export`: what the results store holds, one session or every
//! sample, and the exports (CSV, JSON, Bencher's BMF).

use crate::error::usage;
use crate::flags::{ExportFormat, StoreAction};
use crate::paths::{Paths, write_atomic};
use crate::report::format::format_value;
use crate::store::query::Filter;
use crate::store::{Store, export};
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Runs one store action; its output goes to standard output (or `--output FILE`).
pub fn run(action: &StoreAction, paths: &Paths) -> Result<u8> {
    if !paths.store.is_file() {
        return Err(usage(format!(
            "no results store at {}: every `cargo xtask experiment` (check, compare, ...) run creates it",
            paths.store.display()
        )));
    }
    let store = Store::open(&paths.store)?;
    match action {
        StoreAction::List { experiment } => emit(&list(&store, experiment.as_deref())?)?,
        StoreAction::Show { session } => emit(&show(&store, *session)?)?,
        StoreAction::Export { format, experiment, session, output } => {
            let session = match (format, session) {
                // BMF is one report: one session, the latest unless named.
                (ExportFormat::Bmf, None) => Some(
                    store
                        .sessions(experiment.as_deref())?
                        .last()
                        .ok_or_else(|| usage("the store holds no session to export".to_string()))?
                        .id,
                ),
                (_, s) => *s,
            };
            let rows = store.samples(&Filter { experiment: experiment.clone(), session, metric: None })?;
            if rows.is_empty() {
                return Err(usage("no sample matches: see `cargo xtask store list`".to_string()));
            }
            let text = match format {
                ExportFormat::Csv => export::csv(&rows),
                ExportFormat::Json => export::json(&rows),
                ExportFormat::Bmf => export::bmf(&rows),
            };
            match output {
                Some(path) => {
                    write_atomic(path, text.as_bytes())?;
                    eprintln!(
                        "{} samples of {} session(s) written to {}",
                        rows.len(),
                        count_sessions(&rows),
                        path.display()
                    );
                }
                None => emit(&text)?,
            }
        }
    }
    Ok(0)
}

/// Writes `text` to standard output; a reader that stopped early (`| head`) is no failure.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}

fn count_sessions(rows: &[crate::store::query::SampleRow]) -> usize {
    rows.iter().map(|r| r.session).collect::<std::collections::BTreeSet<_>>().len()
}

/// One line per session, oldest first.
fn list(store: &Store, experiment: Option<&str>) -> Result<String> {
    let mut out = format!("store: {} (schema {})\n", store.path().display(), crate::store::schema_version());
    let _ = writeln!(
        out,
        "{:>5}  {:<20}  {:<10}  {:<16}  {:<16}  {:>5}  commits",
        "id", "finished", "task", "experiment", "fingerprint", "runs"
    );
    for s in store.sessions(experiment)? {
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:<10}  {:<16}  {:<16}  {:>5}  {}",
            s.id,
            s.finished.chars().take(19).collect::<String>(),
            s.task,
            s.experiment,
            s.fingerprint,
            s.processes,
            s.commits.join(" ")
        );
    }
    Ok(out)
}

/// A session: its machine and command, and each variant's median per metric and point.
fn show(store: &Store, id: i64) -> Result<String> {
    let session =
        store.sessions(None)?.into_iter().find(|s| s.id == id).ok_or_else(|| {
            usage(format!("no session {id} in the store: `cargo xtask store list` lists them"))
        })?;
    let rows = store.samples(&Filter { session: Some(id), ..Filter::default() })?;
    let mut out = format!(
        "session {id}: {} of `{}`, finished {}\nmachine: {} (fingerprint {})\ncommits: {}\n\n",
        session.task,
        session.experiment,
        session.finished,
        session.machine,
        session.fingerprint,
        session.commits.join(" ")
    );
    let mut groups: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for r in &rows {
        groups.entry((r.point.clone(), r.variant.clone(), r.metric.clone())).or_default().push(r.value);
    }
    let _ = writeln!(out, "| point | variant | metric | runs | median |\n|---|---|---|---|---|");
    for ((point, variant, metric), values) in groups {
        let m = super::history::parse_metric(&metric)?;
        let _ = writeln!(
            out,
            "| {point} | {variant} | {metric} | {} | {} |",
            values.len(),
            format_value(m, crate::stats::median(&values))
        );
    }
    Ok(out)
}
