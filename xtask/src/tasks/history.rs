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

/// Runs the task; the exit code is 0, or with `--confirm` the worst of the compare runs'.
pub fn run(args: &HistoryArgs, paths: &Paths) -> Result<u8> {
    let metric = parse_metric(&args.metric)?;
    let experiment = load(&args.name, paths)?;
    let plan = Plan::new(&args.name, experiment);
    if let Some(range) = &args.backfill {
        backfill(&plan, range, args.every_commit, &args.options(), &paths.store)?;
    }
    let point = match &args.point {
        Some(label) => plan.points.iter().find(|p| p.point.label == *label).ok_or_else(|| {
            let labels: Vec<&str> = plan.points.iter().map(|p| p.point.label.as_str()).collect();
            usage(format!("`{label}` is not a point of `{}`; its points: {}", args.name, labels.join(", ")))
        })?,
        None => plan.points.last().expect("a plan has a point"),
    };
    let subjects: Vec<Subject> = point
        .variants
        .iter()
        .filter(|v| args.variant.is_empty() || args.variant.contains(&v.variant))
        .map(Subject::of)
        .collect();
    if let Some(unknown) = args.variant.iter().find(|n| !point.variants.iter().any(|v| v.variant == **n)) {
        let names: Vec<&str> = point.variants.iter().map(|v| v.variant.as_str()).collect();
        return Err(usage(format!(
            "`{unknown}` is not a variant of `{}`; its variants: {}",
            args.name,
            names.join(", ")
        )));
    }
    let store = Store::open(&paths.store)?;
    let rows = store.samples(&Filter {
        experiment: Some(args.name.clone()),
        metric: Some(metric.name().to_string()),
        ..Filter::default()
    })?;
    if rows.is_empty() {
        return Err(usage(format!(
            "no {} of `{}` in the results store {}: run `cargo xtask experiment {}` (or `cargo xtask history {} \
             --backfill A..B`) first",
            metric.name(),
            args.name,
            paths.store.display(),
            args.name,
            args.name
        )));
    }
    // The history ends at the backfilled range's end, else at HEAD.
    let head = args.backfill.as_deref().and_then(|r| r.split_once("..")).map_or("HEAD", |(_, b)| b);
    let order: Vec<String> = git(&["rev-list", "--topo-order", "--reverse", head, "--"])
        .unwrap_or_default()
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
    let fingerprint = args
        .fingerprint
        .clone()
        .unwrap_or_else(|| rows.iter().max_by_key(|r| r.session).expect("rows").fingerprint.clone());
    let noise = |s: &Subject| {
        let f = floors.as_ref()?;
        if store::fingerprint(&f.machine.environment) != fingerprint {
            return None;
        }
        let figure = f
            .figures
            .iter()
            .find(|n| n.point == s.point && n.subject == s.variant && n.metric == metric && !n.is_speedup)?;
        Some(Noise {
            sigma: figure.sigma,
            source: format!(
                "baselines/{}.noise.json ({} sessions at `{}`, {}σ)",
                args.name,
                f.sessions,
                crate::report::format::short(&f.commit),
                history::NOISE_SIGMAS
            ),
        })
    };
    let info = |c: &str| store.commit_info(c).ok().flatten().unwrap_or((0, String::new()));
    let h = history::build(inputs, noise, info);
    let publish = Publish::begin(paths, &args.name, "history", |f| !f.starts_with("history"))?;
    for s in &h.series {
        crate::report::history::chart(&publish.dir().join(crate::report::history::chart_file(&h, s)), &h, s)?;
    }
    let command = format!("cargo xtask history {} --metric {}", args.name, metric.name());
    let page = crate::report::history::page(&h, &command, &shown(&paths.store));
    publish.write(report::HISTORY_PAGE, page.as_bytes())?;
    let dir = publish.commit()?;
    let mut code = exit::OK;
    for s in &h.series {
        for c in &s.detection.changes {
            let (a, b) = (&s.commits[c.index - 1].commit, &s.commits[c.index].commit);
            println!(
                "{} `{}`: {:+.1}% between {} and {} (p = {:.3})",
                args.name,
                s.subject.variant,
                c.relative * 100.0,
                &a[..10.min(a.len())],
                &b[..10.min(b.len())],
                c.p_value
            );
            if args.confirm {
                code = code.max(confirm(&args.name, a, b, paths)?);
            }
        }
    }
    eprintln!("history: {}", dir.join(report::HISTORY_PAGE).display());
    Ok(code)
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
/// the store; unless `every_commit`, only the first commit of each distinct engine (see
/// [`revision::engine_inputs`]). A commit that cannot be tested (it does not build, or its
/// engine cannot run the workload) is skipped, said on one line.
fn backfill(plan: &Plan, range: &str, every_commit: bool, options: &RunOptions, store: &Path) -> Result<()> {
    check_options(options)?;
    if !range.contains("..") {
        return Err(usage(format!(
            "--backfill takes a range `A..B` (commits after A up to B), not `{range}`"
        )));
    }
    let listed = git(&["rev-list", "--first-parent", "--reverse", range, "--"]).ok_or_else(|| {
        usage(format!("`{range}` is not a range of this repository (git rev-list found none)"))
    })?;
    let mut commits: Vec<&str> = listed.lines().collect();
    if commits.is_empty() {
        return Err(usage(format!("`{range}` holds no commit")));
    }
    if !every_commit {
        let all = commits.len();
        let mut engines = std::collections::HashSet::new();
        commits.retain(|c| engines.insert(revision::engine_inputs(c)));
        if commits.len() < all {
            eprintln!(
                "backfill: {} of {all} commits build the engine of an earlier commit of the range and are not \
                 measured again (`--every-commit` measures them)",
                all - commits.len()
            );
        }
    }
    let checked = Plan::new(&plan.name, super::check::as_checked(plan.experiment.clone()));
    for (i, commit) in commits.iter().enumerate() {
        eprintln!("backfill {} of {}: {}", i + 1, commits.len(), &commit[..10]);
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
                store::record(store, "backfill", &results)
            }
            Err(e) if is_untestable(&e) => {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                eprintln!("skipped {}: cannot be tested: {}", &commit[..10], chain.join(": "));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
