//! `cargo xtask store list|show|export`: what the results store holds, one session or every
//! sample, and the exports (CSV, JSON, Bencher's BMF).

use crate::error::usage;
use crate::flags::{ExportFormat, StoreAction};
use crate::paths::{Paths, write_atomic};
use crate::report::format::format_value;
use crate::store::query::Filter;
use crate::store::{Store, export};
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

/// Runs one store action; its output goes to standard output (or `--output FILE`).
pub fn run(action: &StoreAction, paths: &Paths) -> Result<u8> {
    let store = Store::open_existing(&paths.store)?;
    match action {
        StoreAction::List { experiment } => emit(&list(&store, experiment.as_deref())?)?,
        StoreAction::Show { session } => emit(&show(&store, *session)?)?,
        StoreAction::Export { format, experiment, session, output } => {
            export(&store, *format, experiment.as_deref(), *session, output.as_deref())?
        }
    }
    Ok(0)
}

fn export(
    store: &Store,
    format: ExportFormat,
    experiment: Option<&str>,
    session: Option<i64>,
    output: Option<&Path>,
) -> Result<()> {
    let sessions = store.sessions(experiment)?;
    if let Some(name) = experiment.filter(|_| sessions.is_empty()) {
        return Err(usage(format!(
            "no session of `{name}` in the store: `cargo xtask store list` lists them"
        )));
    }
    if let Some(id) = session.filter(|id| !sessions.iter().any(|s| s.id == *id)) {
        return Err(usage(format!("no session {id} in the store: `cargo xtask store list` lists them")));
    }
    let session = match format {
        // BMF is one report of one build of one commit: a session of the default build that ran
        // one committed tree (not a compare of two).
        ExportFormat::Bmf => {
            let one = |s: &&crate::store::query::SessionRow| {
                s.task != "compare"
                    && s.features.is_empty()
                    && s.commits.len() == 1
                    && !s.commits[0].ends_with("+dirty")
            };
            let chosen = match session {
                Some(id) => sessions.iter().find(|s| s.id == id).filter(one).ok_or_else(|| {
                    usage(format!(
                        "session {id} is a compare run, ran an uncommitted tree or a build with features: BMF \
                         reports one committed default build"
                    ))
                })?,
                None => sessions.iter().rev().find(one).ok_or_else(|| {
                    usage("no session of one committed default build to export".to_string())
                })?,
            };
            eprintln!(
                "exporting session {} ({} of `{}` at {}, finished {})",
                chosen.id, chosen.task, chosen.experiment, chosen.commits[0], chosen.finished
            );
            Some(chosen.id)
        }
        _ => session,
    };
    let rows =
        store.samples(&Filter { experiment: experiment.map(str::to_string), session, metric: None })?;
    if rows.is_empty() {
        return Err(usage("no sample matches: see `cargo xtask store list`".to_string()));
    }
    let text = match format {
        ExportFormat::Csv => export::csv(&rows),
        ExportFormat::Json => export::json(&rows),
        ExportFormat::Bmf => export::bmf(&rows),
    };
    match output {
        Some(path) if path.as_os_str() != "-" => {
            writable(path, store.path())?;
            write_atomic(path, text.as_bytes())?;
            eprintln!(
                "{} samples of {} session(s) written to {}",
                rows.len(),
                count_sessions(&rows),
                path.display()
            );
            Ok(())
        }
        _ => emit(&text),
    }
}

/// Refuses an output that would destroy something: the store itself, a folder or a special
/// file, or a path whose folder does not exist.
fn writable(path: &Path, store: &Path) -> Result<()> {
    let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same(path, store) {
        return Err(usage(format!(
            "{} is the results store itself: write the export elsewhere",
            path.display()
        )));
    }
    if path.exists() && !path.is_file() {
        return Err(usage(format!(
            "{} exists and is not a regular file: give a file path (or `-` for standard output)",
            path.display()
        )));
    }
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => {
            Err(usage(format!("{}: the folder {} does not exist", path.display(), dir.display())))
        }
        _ => Ok(()),
    }
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
    let sessions = store.sessions(experiment)?;
    if let Some(name) = experiment.filter(|_| sessions.is_empty()) {
        let _ = writeln!(out, "(no session of `{name}`)");
    }
    for s in sessions {
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

/// A session: its machine and commits, and each variant's median per metric and point.
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
    // In the order the store holds them (points and variants as the run ran them).
    let mut groups: Vec<((String, String, String), Vec<f64>)> = Vec::new();
    for r in &rows {
        let key = (r.point.clone(), r.variant.clone(), r.metric.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(r.value),
            None => groups.push((key, vec![r.value])),
        }
    }
    let _ = writeln!(out, "| point | variant | metric | runs | median |\n|---|---|---|---|---|");
    for ((point, variant, metric), values) in groups {
        let median = crate::stats::median(&values);
        // A metric this harness does not know (a newer harness wrote it) is shown as stored.
        let shown = super::history::parse_metric(&metric)
            .map_or_else(|_| median.to_string(), |m| format_value(m, median));
        let _ = writeln!(out, "| {point} | {variant} | {metric} | {} | {shown} |", values.len());
    }
    Ok(out)
}
