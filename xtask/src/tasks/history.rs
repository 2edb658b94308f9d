//! `cargo xtask history NAME`: the experiment's metric over commits from the results store, as
//! `reports/NAME/history.md` with a chart, and its change points with the command that confirms
//! each (`--confirm` runs them). `--backfill A..B` first measures each commit of the range (the
//! quick check, on engines built from the commits as `compare` builds them) into the store.

use super::{check_options, load};
use crate::analysis::history::{self, Inputs, Noise, Subject};
use crate::error::{exit, is_untestable, usage};
use crate::flags::HistoryArgs;
use crate::metrics::Metric;
use crate::paths::{Paths, Publish, report, scratch};
use crate::plan::Plan;
use crate::runner::engine::{Engine, check_table};
use crate::runner::revision::{self, Revision, git};
use crate::runner::{self, Dirs, RunOptions};
use crate::store::query::Filter;
use crate::store::{self, Store};
use anyhow::Result;
use std::path::Path;

/// Runs the task. The exit code is 0; with `--confirm`, the most telling of the compare runs':
/// 1 (a failure or other outputs) before 3 (a regression) before 125 (cannot compare).
pub fn run(args: &HistoryArgs, paths: &Paths) -> Result<u8> {
    let metric = parse_metric(&args.metric)?;
    let plan = Plan::new(&args.name, load(&args.name, paths)?);
    // Everything a user typed is checked before anything is measured.
    let subjects = subjects(&plan, args)?;
    let head = match &args.backfill {
        Some(range) => {
            Store::open(&paths.store)?;
            backfill(&plan, range, args.every_commit, &args.options(), &paths.store)?
        }
        None => "HEAD".to_string(),
    };
    let store = Store::open_existing(&paths.store)?;
    let rows = store.samples(&Filter {
        experiment: Some(args.name.clone()),
        metric: Some(metric.name().to_string()),
        ..Filter::default()
    })?;
    if rows.is_empty() {
        return Err(usage(format!(
            "no {} of `{}` in the results store {}: run `cargo xtask experiment {}` (or `cargo xtask history {} \
             --backfill A..B`) first{}",
            metric.name(),
            args.name,
            paths.store.display(),
            args.name,
            args.name,
            if matches!(metric, Metric::SoftmaxMs | Metric::AttentionMs) {
                "; this figure comes from the phase pass, which check and backfill skip"
            } else {
                ""
            }
        )));
    }
    if let Some(f) = &args.fingerprint
        && !rows.iter().any(|r| r.fingerprint == *f)
    {
        let known: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.fingerprint.as_str()).collect();
        return Err(usage(format!(
            "no run of `{}` on machine `{f}`; the store's machines for it: {}",
            args.name,
            known.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let order: Vec<String> = git(&["rev-list", "--first-parent", "--reverse", &head, "--"])
        .ok_or_else(|| usage(format!("git cannot list the commits of `{head}`")))?
        .lines()
        .map(str::to_string)
        .collect();
    let floors = super::read_noise(paths, &args.name)?;
    let inputs = Inputs {
        experiment: &args.name,
        metric,
        rows: &rows,
        subjects: &subjects,
        order: &order,
        fingerprint: args.fingerprint.as_deref(),
    };
    let noise =
        |s: &Subject, fingerprint: &str| calibrated(floors.as_ref()?, s, metric, fingerprint, &args.name);
    let info = |c: &str| store.commit_info(c).ok().flatten().unwrap_or((0, String::new()));
    let h = history::build(inputs, noise, info);
    for note in &h.notes {
        eprintln!("note: {note}");
    }
    if h.series.iter().all(|s| s.commits.is_empty()) {
        return Err(usage(format!(
            "no committed run of `{}` on machine `{}` matches these variants (see the notes above); the page is \
             left as it was",
            args.name, h.fingerprint
        )));
    }
    publish(&h, args, paths)?;
    let mut code = exit::OK;
    let mut confirmed = std::collections::BTreeSet::new();
    for s in &h.series {
        for c in &s.detection.changes {
            let (a, b) = (&s.commits[c.index - 1].commit, &s.commits[c.index].commit);
            println!(
                "{} `{}`: {:+.1}% between {} and {} (p = {:.3})",
                args.name,
                s.subject.variant,
                c.relative * 100.0,
                crate::report::format::short(a),
                crate::report::format::short(b),
                c.p_value
            );
            if args.confirm && confirmed.insert((a.clone(), b.clone())) {
                code = worst(code, confirm(&args.name, a, b, paths)?);
            }
        }
    }
    Ok(code)
}

/// Of two exit codes, the one that says more: a failure, then a regression, then a commit that
/// cannot be compared, then success.
fn worst(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::OK => 0,
        exit::SKIP => 1,
        exit::REGRESSION => 2,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The variants of the chosen point (`--point`, default the last) the history follows
/// (`--variant`, default all); a usage error naming an unknown point or variant.
fn subjects(plan: &Plan, args: &HistoryArgs) -> Result<Vec<Subject>> {
    let point = match &args.point {
        Some(label) => plan.points.iter().find(|p| p.point.label == *label).ok_or_else(|| {
            let labels: Vec<&str> = plan.points.iter().map(|p| p.point.label.as_str()).collect();
            usage(format!("`{label}` is not a point of `{}`; its points: {}", args.name, labels.join(", ")))
        })?,
        None => plan.points.last().expect("a plan has a point"),
    };
    if let Some(unknown) = args.variant.iter().find(|n| !point.variants.iter().any(|v| v.variant == **n)) {
        let names: Vec<&str> = point.variants.iter().map(|v| v.variant.as_str()).collect();
        return Err(usage(format!(
            "`{unknown}` is not a variant of `{}`; its variants: {}",
            args.name,
            names.join(", ")
        )));
    }
    Ok(point
        .variants
        .iter()
        .filter(|v| args.variant.is_empty() || args.variant.contains(&v.variant))
        .map(Subject::of)
        .collect())
}

/// The calibrated A/A noise of `subject`'s figure, when `floors` were measured on `fingerprint`.
fn calibrated(
    floors: &crate::analysis::noise::NoiseFloors,
    subject: &Subject,
    metric: Metric,
    fingerprint: &str,
    name: &str,
) -> Option<Noise> {
    if store::fingerprint(&floors.machine.environment) != fingerprint {
        return None;
    }
    let figure = floors.figures.iter().find(|n| {
        n.point == subject.point && n.subject == subject.variant && n.metric == metric && !n.is_speedup
    })?;
    Some(Noise {
        sigma: floors.sigma(figure),
        source: format!(
            "baselines/{name}.noise.json ({} sessions at `{}`, {}σ)",
            floors.sessions,
            crate::report::format::short(&floors.commit),
            history::NOISE_SIGMAS
        ),
    })
}

/// Writes the page and its charts into `reports/NAME/` (replacing the previous history page).
fn publish(h: &history::History, args: &HistoryArgs, paths: &Paths) -> Result<()> {
    let publish = Publish::begin(paths, &args.name, "history", |f| !f.starts_with("history"))?;
    for s in &h.series {
        crate::report::history::chart(&publish.dir().join(crate::report::history::chart_file(h, s)), h, s)?;
    }
    let mut command = format!("cargo xtask history {} --metric {}", args.name, h.metric.name());
    for (flag, value) in [("--point", &args.point), ("--fingerprint", &args.fingerprint)] {
        if let Some(v) = value {
            command.push_str(&format!(" {flag} {v}"));
        }
    }
    for v in &args.variant {
        command.push_str(&format!(" --variant {v}"));
    }
    if args.dirs.store.is_some() {
        command.push_str(&format!(" --store {}", shown(&paths.store)));
    }
    let page = crate::report::history::page(h, &command, &shown(&paths.store));
    publish.write(report::HISTORY_PAGE, page.as_bytes())?;
    let dir = publish.commit()?;
    eprintln!("history: {}", dir.join(report::HISTORY_PAGE).display());
    Ok(())
}

/// `decode_tok_s` as a metric, or a usage error listing them.
pub fn parse_metric(name: &str) -> Result<Metric> {
    Metric::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        usage(format!("`{name}` is not a metric; the metrics: {}", names.join(", ")))
    })
}

/// The store's path as the page shows it: relative to the project when it is inside it.
fn shown(store: &Path) -> String {
    store.strip_prefix(crate::project_root()).unwrap_or(store).display().to_string()
}

/// `cargo xtask compare A B --experiment NAME --toggles lattice`, its exit code.
fn confirm(name: &str, a: &str, b: &str, paths: &Paths) -> Result<u8> {
    let args = confirm_args(name, a, b);
    eprintln!("confirming: cargo xtask compare {a} {b} --experiment {name} --toggles lattice");
    super::compare::run(&args, &args.options(), paths)
}

/// The arguments of [`confirm`]'s compare, parsed as the command line would be.
fn confirm_args(name: &str, a: &str, b: &str) -> crate::flags::CompareArgs {
    use clap::Parser;
    let argv = ["xtask", "compare", a, b, "--experiment", name, "--toggles", "lattice"];
    match crate::flags::Cli::try_parse_from(argv).map(|cli| cli.task) {
        Ok(Some(crate::flags::Task::Compare(args))) => args,
        other => unreachable!("a compare command line parses as one: {other:?}"),
    }
}

/// Measures each commit of `range` (`A..B`, oldest first, along first parents: a merge is one
/// step) with the experiment's quick check on the engine built from it, appending each run to
/// the store; unless `every_commit`, a commit that builds the same engine as the commit before
/// it (see [`revision::engine_inputs`]) is not measured again. A commit that cannot be tested
/// (it does not build, or its engine cannot run the workload) is skipped, said on one line.
/// Returns the range's last commit, where the history ends.
fn backfill(
    plan: &Plan,
    range: &str,
    every_commit: bool,
    options: &RunOptions,
    store: &Path,
) -> Result<String> {
    check_options(options)?;
    let Some((from, to)) =
        range.split_once("..").filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.starts_with('.'))
    else {
        return Err(usage(format!(
            "--backfill takes a range `A..B` (the commits after A up to B), not `{range}`"
        )));
    };
    let listed = git(&["rev-list", "--first-parent", "--reverse", &format!("{from}..{to}"), "--"])
        .ok_or_else(|| {
            usage(format!("`{range}` is not a range of this repository (git rev-list found none)"))
        })?;
    let all: Vec<&str> = listed.lines().collect();
    let Some(&last) = all.last() else {
        return Err(usage(format!("`{range}` holds no commit")));
    };
    let mut commits = Vec::new();
    let mut previous = None;
    for &c in &all {
        let engine = revision::engine_inputs(c);
        if every_commit || previous.as_ref() != Some(&engine) {
            commits.push(c);
        }
        previous = Some(engine);
    }
    if commits.len() < all.len() {
        eprintln!(
            "backfill: {} of {} commits build the same engine as the commit before them and are not measured \
             again (`--every-commit` measures them)",
            all.len() - commits.len(),
            all.len()
        );
    }
    let checked = Plan::new(&plan.name, super::check::as_checked(plan.experiment.clone()));
    for (i, commit) in commits.iter().enumerate() {
        let short = crate::report::format::short(commit);
        eprintln!("backfill {} of {}: {short}", i + 1, commits.len());
        let revision = Revision::resolve(commit)?;
        let measured = revision::build(&revision, &options.engine_features).and_then(|binary| {
            check_table(&binary)?;
            let engine = Engine { release: binary, dhat: None, per_variant: Vec::new() };
            let scratch = scratch("backfill", &plan.name);
            let dirs = Dirs { scratch: &scratch, profiles: &scratch.join("profiles") };
            let command = format!("cargo xtask history {} --backfill {range}", plan.name);
            runner::run(&checked, &engine, options, dirs, command)
        });
        match measured {
            Ok(mut results) => {
                // The binary may have been built from another commit with the same engine inputs
                // (see `runner::revision`): the code measured is this commit's.
                results.environment.git_commit = revision.commit.clone();
                results.environment.git_dirty = "false".into();
                store::record(store, "backfill", &results, &options.engine_features)
            }
            Err(e) if is_untestable(&e) => {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                eprintln!("skipped {short}: cannot be tested: {}", chain.join(": "));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(last.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_confirming_compare_is_a_lattice_of_the_two_commits() {
        let args = super::confirm_args("kv-cache", "abc", "def");
        assert_eq!((args.base.as_str(), args.head.as_deref()), ("abc", Some("def")));
        assert_eq!(args.experiments, ["kv-cache"]);
        assert_eq!(args.toggles, crate::tasks::compare::Toggles::Lattice);
    }
}
