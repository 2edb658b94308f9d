//! `cargo xtask check NAME`: a quick run of an experiment against its stored baseline, with exit
//! codes `git bisect run` understands: 0 within tolerance, 1 regressed (or wrong output), 125
//! when this commit cannot be tested (the engine does not build, or cannot run the workload).
//!
//! Before it declares a regression, it measures again (as many rounds once more) and judges the
//! rounds of both runs together: a regression must survive twice the samples. Runs the machine
//! flagged as busy (load, steal, preemptions, probe drift) are said, with their count.
//!
//! A baseline that does not fit the experiment (a variant renamed, added or removed, a workload,
//! sweep point or toggle set changed) is a usage error, exit 2, found before anything is built or
//! measured: comparing less than the baseline holds is never "within tolerance".

use crate::experiment::{self, Paths};
use crate::runner::{self, RunOptions, Untestable};
use crate::{UsageError, baseline, report};
use anyhow::Result;

/// Exit code for "this commit cannot be tested": `git bisect run` skips it.
pub const SKIP: u8 = 125;

/// Runs the check and returns the exit code.
pub fn run(name: &str, options: &RunOptions, paths: &Paths) -> Result<u8> {
    let experiment = experiment::load(name, paths)?;
    let baseline_path = paths.baselines.join(format!("{name}.json"));
    if !baseline_path.is_file() {
        return Err(UsageError(format!(
            "no baseline for `{name}` ({}); run `cargo xtask baseline {name}` first",
            baseline_path.display()
        ))
        .into());
    }
    let stored = experiment::read_stored_baseline(name, &baseline_path)?;
    experiment::require_fit(name, &experiment, &stored)?;
    let options = RunOptions { quick: options.iterations.is_none(), no_profiles: true, ..options.clone() };
    let scratch = runner::target_dir().join("xtask").join("check").join(name);
    let command = format!("cargo xtask check {name}");
    let build_and_run = || -> Result<crate::results::ExperimentResults> {
        let engine = runner::build_engine(false, &options.engine_features)?;
        let first = runner::run(
            name,
            &experiment,
            &engine,
            &options,
            &scratch,
            &scratch.join("profiles"),
            command.clone(),
        )?;
        let tolerance = experiment.thresholds.regression;
        let regressed = baseline::check(&first, &stored, tolerance).regressions().count();
        if regressed == 0 {
            return Ok(first);
        }
        eprintln!("{name}: {regressed} figure(s) beyond tolerance; measuring again before deciding");
        let again =
            runner::run(name, &experiment, &engine, &options, &scratch, &scratch.join("profiles"), command)?;
        Ok(first.with_rounds_of(again))
    };
    let results = match build_and_run() {
        Ok(results) => results,
        Err(e) if e.chain().any(|c| c.downcast_ref::<Untestable>().is_some()) => {
            eprintln!("check: {e}: cannot test this commit (exit {SKIP})");
            return Ok(SKIP);
        }
        Err(e) => return Err(e),
    };
    let tolerance = experiment.thresholds.regression;
    let check = baseline::check(&results, &stored, tolerance);
    if let Some(machine) = crate::machine::MachineSummary::of(&results)
        && !machine.contaminated.is_empty()
    {
        println!(
            "busy: {} of {} runs ran while the machine was busy (first: `{}` round {}: {})",
            machine.contaminated.len(),
            machine.runs,
            machine.contaminated[0].1,
            machine.contaminated[0].2 + 1,
            machine.contaminated[0].3.join(", ")
        );
    }
    if !check.comparable && check.judged {
        println!(
            "different machine from the baseline: absolute figures not compared (speedups and allocations are)"
        );
    }
    for reason in &check.machine_reasons {
        if !check.judged {
            println!("machine: {reason}: absolute figures not compared");
        }
    }
    for row in &check.rows {
        println!(
            "{:<9} {}{} {}{}: {} -> {} ({}x [{}, {}])",
            if row.regressed {
                "REGRESSED"
            } else if !check.judged {
                "NOT JUDGED"
            } else {
                "ok"
            },
            row.subject,
            crate::spec::at_label(&row.point),
            row.metric.name(),
            if row.is_speedup { " speedup" } else { "" },
            report::two(row.before),
            report::two(row.now),
            report::two(row.change.point),
            report::two(row.change.low),
            report::two(row.change.high)
        );
    }
    if !check.misfits.is_empty() {
        for misfit in &check.misfits {
            println!("{:<9} {misfit}", "NOT COMPARED");
        }
        return Err(UsageError(baseline::misfit_line(
            &format!("the baseline of `{name}` does not fit this run"),
            &check.misfits,
            &format!("cargo xtask baseline {name}"),
        ))
        .into());
    }
    let regressed = check.regressions().count();
    println!(
        "{name}: {} against the baseline of commit {} (tolerance {:.0}%, {} rounds)",
        if !check.judged {
            format!(
                "nothing judged: this is not the baseline's machine, and every difference may be the machine's \
                 (store one here: `cargo xtask baseline {name}`)"
            )
        } else if regressed == 0 {
            "within tolerance".to_string()
        } else {
            format!("{regressed} figure(s) regressed")
        },
        report::short(&check.baseline_commit),
        tolerance * 100.0,
        results.rounds
    );
    Ok(u8::from(regressed > 0))
}
