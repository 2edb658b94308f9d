//! `cargo xtask check NAME`: a quick run of an experiment against its stored baseline, with exit
//! codes `git bisect run` understands: 0 within tolerance, 1 regressed (or wrong output), 125
//! when this commit cannot be tested (the engine does not build, or cannot run the workload).
//!
//! Before it declares a regression, it measures again (as many rounds once more): a figure
//! regressed only when it regressed in the rounds of both runs together and in each run judged
//! alone ([`BaselineCheck::confirm`]), so one run's outlier is not a verdict. Runs the machine
//! flagged as busy (load, steal, other processes' CPU time, probe drift) are said, with their
//! count; a round in which another process competed was measured again by the runner.
//!
//! A baseline that does not fit the experiment (a variant renamed, added or removed, a workload,
//! sweep point or toggle set changed) is a usage error, exit 2, found before anything is built or
//! measured: comparing less than the baseline holds is never "within tolerance".

use super::{Prepared, check_options, command_line, load, read_baseline, refuse_misfits, require_fit};
use crate::analysis::baseline::{self, BaselineCheck, NoiseUse};
use crate::analysis::machine::MachineSummary;
use crate::error::{exit, is_untestable, usage};
use crate::paths::Paths;
use crate::plan::{Experiment, Plan, at_label};
use crate::report::format::{percent, short, two};
use crate::results::ExperimentResults;
use crate::runner::RunOptions;
use anyhow::Result;

/// Runs the check and returns the exit code.
pub fn run(name: &str, options: &RunOptions, paths: &Paths) -> Result<u8> {
    let _lock = crate::paths::RunLock::take(paths, name)?;
    check_options(options)?;
    let plan = Plan::new(name, as_checked(load(name, paths)?));
    let baseline_path = paths.baseline(name);
    if !baseline_path.is_file() {
        return Err(usage(format!(
            "no baseline for `{name}` ({}); run `cargo xtask baseline {name}` first",
            baseline_path.display()
        )));
    }
    let stored = read_baseline(&baseline_path, &format!("cargo xtask baseline {name}"))?;
    require_fit(&plan, &stored)?;
    let noise = super::read_noise(paths, name)?;
    let tolerance = plan.experiment.thresholds.regression;
    let options = RunOptions { quick: options.iterations.is_none(), no_profiles: true, ..options.clone() };
    let command =
        command_line("check", name, &RunOptions { quick: false, no_profiles: false, ..options.clone() }, &[]);
    let judge = |r: &ExperimentResults| baseline::check_against(r, &stored, tolerance, noise.as_ref());
    // The results, and each run's check when there were two.
    let measure = || -> Result<(ExperimentResults, Vec<BaselineCheck>)> {
        let prepared = Prepared::new("check", plan.clone(), options.clone(), &paths.store)?;
        let first = prepared.run(command.clone(), None)?;
        let first_check = judge(&first);
        let regressed = first_check.regressions().count();
        if regressed == 0 {
            return Ok((first, Vec::new()));
        }
        eprintln!("{name}: {regressed} figure(s) beyond tolerance; measuring again before deciding");
        let again = prepared.run(command.clone(), None)?;
        let again_check = judge(&again);
        Ok((first.with_rounds_of(again), vec![first_check, again_check]))
    };
    let (results, runs) = match measure() {
        Ok(results) => results,
        Err(e) if is_untestable(&e) => {
            eprintln!("check: {e}: cannot test this commit (exit {})", exit::SKIP);
            return Ok(exit::SKIP);
        }
        Err(e) => return Err(e),
    };
    let mut check = judge(&results);
    if !runs.is_empty() {
        check.confirm(&runs.iter().collect::<Vec<_>>());
    }
    print_check(&results, &check);
    refuse_misfits(
        &format!("the baseline of `{name}` does not fit this run"),
        &check.misfits,
        &format!("cargo xtask baseline {name}"),
    )?;
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
        short(&check.baseline_commit),
        tolerance * 100.0,
        results.rounds
    );
    Ok(if regressed > 0 { exit::FAILURE } else { exit::OK })
}

/// What a row's verdict needs said beside it: an unconfirmed regression, or a ratio that fell
/// because its reference got faster.
fn row_note(row: &baseline::BaselineRow) -> String {
    match row.parts {
        _ if row.unconfirmed => "; beyond it over both runs, not in each alone: not a regression".to_string(),
        Some(p) if row.fell_by_its_reference() => format!(
            "; the reference is {}x faster than in the baseline and the candidate {}x: not a regression",
            two(p.reference.point),
            two(p.candidate.point)
        ),
        _ => String::new(),
    }
}

/// The experiment as `check` runs it: without the phase pass (it feeds no figure a check
/// compares, and costs an op per process). Quick rounds and no profiles come from the options.
pub fn as_checked(mut experiment: Experiment) -> Experiment {
    experiment.measurement.phase_iterations = 0;
    experiment
}

/// One line per busy machine, machine difference, compared figure and misfit.
fn print_check(results: &ExperimentResults, check: &BaselineCheck) {
    if let Some(machine) = MachineSummary::of(results)
        && let Some((_, variant, round, flags)) = machine.contaminated.first()
    {
        println!(
            "busy: {} of {} runs ran while the machine was busy (first: `{variant}` round {}: {})",
            machine.contaminated.len(),
            machine.runs,
            round + 1,
            flags.join(", ")
        );
    }
    match &check.noise {
        NoiseUse::Absent => {}
        NoiseUse::Used { commit, sessions, rounds_per_session, plan_unrecorded, uncalibrated, .. } => {
            println!(
                "noise: timed figures judged by the cuts calibrated here ({sessions} sessions of {rounds_per_session} \
                 rounds at commit {}){}{}",
                short(commit),
                if *uncalibrated > 0 {
                    format!("; {uncalibrated} without a floor: the tolerance rule")
                } else {
                    String::new()
                },
                if *plan_unrecorded {
                    "; the file does not record its plan: re-run the calibration to check it"
                } else {
                    ""
                }
            )
        }
        NoiseUse::Ignored(reason) => println!("noise: the calibrated noise floors are not used: {reason}"),
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
            "{:<9} {}{} {}{}: {} -> {} ({}x [{}, {}]{}){}",
            if row.regressed {
                "REGRESSED"
            } else if row.unconfirmed {
                "unconfirmed"
            } else if !check.judged {
                "NOT JUDGED"
            } else if row.improved_beyond {
                "IMPROVED"
            } else {
                "ok"
            },
            row.subject,
            at_label(&row.point),
            row.metric.name(),
            if row.is_speedup { " speedup" } else { "" },
            two(row.before),
            two(row.now),
            two(row.change.point),
            two(row.change.low),
            two(row.change.high),
            row.cut.map_or(String::new(), |cut| format!(", cut {}", percent(cut))),
            row_note(row)
        );
    }
    if check.improved_beyond().next().is_some() {
        println!(
            "stale: {} figure(s) improved beyond tolerance: the baseline no longer describes this engine; \
             `cargo xtask baseline {}` stores it again",
            check.improved_beyond().count(),
            results.experiment
        );
    }
    for misfit in &check.misfits {
        println!("{:<9} {misfit}", "NOT COMPARED");
    }
}
