//! `cargo xtask compare BASE [HEAD]`: a change against its base, both engines built from their
//! revisions ([`crate::runner::revision`]) and run interleaved on one machine in one session by
//! this side's harness, with this side's experiment file and workload for both. Every variant
//! of both revisions must generate the same tokens (a change of output is a behaviour change and
//! stops the run); the report goes to `reports/compare/BASE..HEAD/`, and the exit code is 3 when
//! the head is slower than the base beyond the experiment's tolerance.
//!
//! `--toggles lattice` runs the bisect lattice on both revisions and says in which
//! optimization's contribution the change lies.

use super::{check_options, load};
use crate::analysis::bisect::{Suspect, config_name, configs, suspects};
use crate::analysis::{Analysis, BaselineState, Comparison};
use crate::error::{exit, kind};
use crate::metrics::Metric;
use crate::paths::{Paths, Publish, report, scratch};
use crate::plan::Plan;
use crate::results::{ExperimentResults, PointResults, VariantResults};
use crate::runner::engine::{Engine, check_table};
use crate::runner::revision::{self, Revision};
use crate::runner::{self, Dirs, RunOptions};
use crate::stats::Speedup;
use anyhow::Result;
use smallmind::Optimizations;
use std::fmt::Write;

/// Which toggle sets both revisions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Toggles {
    /// Every optimization on: the engine as users run it.
    All,
    /// The bisect lattice: all on, all off, each alone on, each alone off.
    Lattice,
}

/// Runs the comparison and gives the exit code.
pub fn run(
    base: &str,
    head: Option<&str>,
    experiment: &str,
    toggles: Toggles,
    options: &RunOptions,
    paths: &Paths,
) -> Result<u8> {
    check_options(options)?;
    let base = Revision::resolve(base)?;
    let head = match head {
        Some(spec) => Revision::resolve(spec)?,
        None => Revision::working_tree()?,
    };
    let source = load(experiment, paths)?;
    let name = format!("{}..{}", base.short(), head.short());
    let named = variants(toggles);
    let mut e = source.derived(&named);
    e.description = format!(
        "{} against {}, on `{experiment}`'s reference workload ({})",
        head.describe(),
        base.describe(),
        source.description
    );
    // The phase pass feeds no figure a comparison reads.
    e.measurement.phase_iterations = 0;
    let plan = Plan::new(&name, e);
    let base_binary = revision::build(&base, &options.engine_features)?;
    let head_binary = revision::build(&head, &options.engine_features)?;
    check_table(&base_binary)?;
    check_table(&head_binary)?;
    let per_variant = named
        .iter()
        .map(|(n, _)| if n.starts_with("base") { &base_binary } else { &head_binary })
        .cloned()
        .collect();
    let engine = Engine { release: base_binary.clone(), dhat: None, per_variant };
    let options = RunOptions { no_profiles: true, ..options.clone() };
    let scratch = scratch("compare", &name);
    let dirs = Dirs { scratch: &scratch, profiles: &scratch.join(report::PROFILES) };
    let command = command_line(&base, &head, experiment, toggles, &options);
    let results = runner::run(&plan, &engine, &options, dirs, command).map_err(|e| {
        if kind(&e).is_none() && e.to_string().starts_with("WRONG OUTPUT") {
            e.context(format!(
                "outputs differ: {} and {} do not generate the same tokens; a change of output is a behaviour \
                 change, to be reviewed as one",
                head.describe(),
                base.describe()
            ))
        } else {
            e
        }
    })?;
    publish(&name, &results, toggles, paths)
}

/// The variants: each toggle set on the base, then on the head (the pair side by side, so that
/// the alternating order of the rounds balances each pair); the base's all-on set first, the
/// reference.
fn variants(toggles: Toggles) -> Vec<(String, Optimizations)> {
    let sets: Vec<(String, Optimizations)> = match toggles {
        Toggles::All => vec![(String::new(), Optimizations::all())],
        Toggles::Lattice => {
            let mut sets = configs(false);
            sets.sort_by_key(|&o| o != Optimizations::all());
            sets.into_iter().map(|o| (config_name(o), o)).collect()
        }
    };
    let side =
        |side: &str, set: &str| if set.is_empty() { side.to_string() } else { format!("{side}-{set}") };
    sets.iter().flat_map(|(n, o)| [(side("base", n), *o), (side("head", n), *o)]).collect()
}

/// `cargo xtask compare BASE [HEAD] --experiment NAME ...`, with the revisions as written.
fn command_line(
    base: &Revision,
    head: &Revision,
    experiment: &str,
    toggles: Toggles,
    options: &RunOptions,
) -> String {
    let head = if head.working_tree { String::new() } else { format!(" {}", head.spec) };
    let mut extra = vec![format!("--experiment {experiment}")];
    if toggles == Toggles::Lattice {
        extra.push("--toggles lattice".into());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    super::command_line(
        "compare",
        &format!("{}{head}", base.spec),
        &RunOptions { no_profiles: false, ..options.clone() },
        &extra,
    )
}

/// Writes `reports/compare/NAME/` and says the verdict; gives the exit code.
fn publish(name: &str, results: &ExperimentResults, toggles: Toggles, paths: &Paths) -> Result<u8> {
    let compare_paths = Paths { reports: paths.reports.join("compare"), ..paths.clone() };
    let publish = Publish::begin(&compare_paths, name, "compare", |_| false)?;
    let analysis = Analysis::new(results, BaselineState::NotApplicable);
    publish.write(report::RESULTS, &serde_json::to_vec(results)?)?;
    let charts = crate::report::figures::draw(results, publish.dir())?;
    let mut page = crate::report::render(&analysis, &charts);
    let tolerance = results.spec.thresholds.regression;
    let ranked = (toggles == Toggles::Lattice).then(|| contributions(&results.points[0]));
    if let Some(ranked) = &ranked {
        crate::report::compare::contributions(&mut page, ranked, tolerance);
    }
    publish.write(report::README, page.as_bytes())?;
    let dir = publish.commit()?;
    eprintln!("report: {}", dir.join(report::README).display());
    let head = analysis.headline().and_then(|c| decode(c));
    let Some(change) = head else {
        println!("{name}: decode throughput not measured on both sides");
        return Ok(exit::FAILURE);
    };
    let regressed = change.high < 1.0 - tolerance;
    let mut line = format!(
        "{name}: decode {} [{}, {}]",
        crate::report::format::percent_change(change.point),
        crate::report::format::percent_change(change.low),
        crate::report::format::percent_change(change.high)
    );
    if let Some(fallen) = ranked.as_ref().and_then(|r| r.first()).filter(|s| s.change.high < 1.0 - tolerance)
    {
        let _ = write!(line, "; the fall is in `{}`'s contribution", fallen.toggle.name());
    }
    let _ = write!(
        line,
        "; {} (tolerance {:.0}%)",
        if regressed { "REGRESSED" } else { "within tolerance" },
        tolerance * 100.0
    );
    println!("{line}");
    Ok(if regressed { exit::REGRESSION } else { exit::OK })
}

/// The head's decode speedup over the base.
fn decode(c: &Comparison) -> Option<Speedup> {
    c.row(Metric::DecodeTokS).and_then(|r| r.speedup)
}

/// Each optimization's contribution to decode throughput (all on against all on but it) in the
/// head against the base, worst change first.
fn contributions(p: &PointResults) -> Vec<Suspect> {
    suspects(&side(p, "head"), &side(p, "base"))
}

/// The point's variants of one revision, named by their toggle sets (`all-off` the reference).
fn side(p: &PointResults, side: &str) -> PointResults {
    let prefix = format!("{side}-");
    let variants = p
        .variants
        .iter()
        .filter_map(|v| {
            let set = v.name.strip_prefix(&prefix)?;
            Some(VariantResults { name: set.to_string(), reference: set == "all-off", ..v.clone() })
        })
        .collect();
    PointResults { variants, ..p.clone() }
}
