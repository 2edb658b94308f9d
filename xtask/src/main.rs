//! `cargo xtask`: the project's tasks. The command line is declared in `flags.rs`; each task
//! lives in `tasks/`. This file only dispatches and turns errors into exit codes (see
//! `cargo xtask --help`).

use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use xtask::flags::{Cli, Task};
use xtask::tasks;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<u8> = match cli.task {
        None => Cli::command().print_help().map(|()| 0).map_err(Into::into),
        Some(Task::Ci) => Ok(tasks::ci::run()),
        Some(Task::History(a)) => tasks::history::run(&a, &a.dirs.paths()),
        Some(Task::Store(a)) => tasks::store::run(&a.action, &a.dirs.paths()),
        Some(Task::List(dirs)) => tasks::list::run(&dirs.paths()),
        Some(Task::Models(a)) => tasks::models::run(&a.action),
        Some(Task::Report(args)) => tasks::report::run(&args.name, &args.dirs.paths()),
        Some(Task::Experiment(a)) => {
            tasks::experiment::run(&a.name, &a.options(), a.save_baseline, &a.dirs.paths())
        }
        Some(Task::Baseline(a)) => tasks::experiment::run(&a.name, &a.options(), true, &a.dirs.paths()),
        Some(Task::Check(a)) if a.save_baseline => {
            Err(xtask::error::usage("check stores nothing: `cargo xtask baseline NAME` stores a baseline"))
        }
        Some(Task::Check(a)) => tasks::check::run(&a.name, &a.options(), &a.dirs.paths()),
        Some(Task::Compare(a)) => tasks::compare::run(&a, &a.options(), &a.dirs.paths()),
        Some(Task::Summary(a)) => tasks::summary::run(
            &a.folder,
            tasks::summary::SummaryOptions { all: a.all, index: a.index },
            a.output.as_deref(),
        ),
        Some(Task::Bisect(a)) => {
            let r = &a.run;
            tasks::bisect::run(&r.name, &r.options(), &r.dirs.paths(), a.full, r.save_baseline).map(|page| {
                print!("{page}");
                0
            })
        }
        Some(Task::Calibrate(a)) => {
            let r = &a.run;
            tasks::calibrate::run(
                &r.name,
                &r.options(),
                &r.dirs.paths(),
                a.effect,
                a.sessions,
                r.save_baseline,
            )
            .map(|page| {
                print!("{page}");
                0
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(xtask::error::exit_code(&err))
        }
    }
}
