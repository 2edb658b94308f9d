//! `cargo xtask`: the project's tasks. This file declares the command line and dispatches; each
//! task lives in the `xtask` library.
//!
//! Exit codes: 0 ok, 1 error, 2 usage (a bad flag, an unknown or invalid experiment), 3 a
//! regression against the stored baseline beyond the experiment's tolerance.

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;
use xtask::experiment::{self, Paths};
use xtask::runner::RunOptions;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "smallmind's tasks: experiments, reports, baselines, CI")]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run experiments/NAME.toml and write reports/NAME/ (exit 3 on a regression).
    Experiment(ExperimentArgs),
    /// Run experiments/NAME.toml and store the run as baselines/NAME.json (and its report).
    Baseline(ExperimentArgs),
    /// Re-render reports/NAME/ from its results.json and the current baseline, without running.
    Report(NameArgs),
    /// List the experiments with their descriptions.
    List(DirArgs),
    /// Formatting check, clippy with warnings denied, and the whole test suite.
    Ci,
}

#[derive(Debug, Args)]
struct ExperimentArgs {
    /// The experiment: experiments/NAME.toml.
    name: String,
    /// Fewer rounds (the file's measurement.quick_iterations).
    #[arg(long)]
    quick: bool,
    /// Rounds per point, overriding the file.
    #[arg(long, value_name = "N")]
    iterations: Option<usize>,
    /// Skip the profile runs.
    #[arg(long)]
    no_profiles: bool,
    /// Also store this run as the baseline.
    #[arg(long)]
    save_baseline: bool,
    #[command(flatten)]
    dirs: DirArgs,
}

#[derive(Debug, Args)]
struct NameArgs {
    name: String,
    #[command(flatten)]
    dirs: DirArgs,
}

/// Where experiments, reports and baselines live (default: the repository's folders).
#[derive(Debug, Args)]
struct DirArgs {
    #[arg(long, value_name = "DIR")]
    experiments_dir: Option<std::path::PathBuf>,
    #[arg(long, value_name = "DIR")]
    reports_dir: Option<std::path::PathBuf>,
    #[arg(long, value_name = "DIR")]
    baselines_dir: Option<std::path::PathBuf>,
}

impl DirArgs {
    fn paths(&self) -> Paths {
        let default = Paths::default();
        Paths {
            experiments: self.experiments_dir.clone().unwrap_or(default.experiments),
            reports: self.reports_dir.clone().unwrap_or(default.reports),
            baselines: self.baselines_dir.clone().unwrap_or(default.baselines),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        None => {
            print_tasks();
            return ExitCode::SUCCESS;
        }
        Some(Task::Ci) => return xtask::ci::run(),
        Some(Task::List(dirs)) => list(&dirs.paths()),
        Some(Task::Report(args)) => experiment::rerender(&args.name, &args.dirs.paths()).map(Some),
        Some(Task::Experiment(args)) => run_experiment(&args, args.save_baseline),
        Some(Task::Baseline(args)) => run_experiment(&args, true),
    };
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(outcome)) => {
            eprintln!("report: {}", outcome.report.join("README.md").display());
            if outcome.regressions.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("REGRESSION against the baseline: {}", outcome.regressions.join("; "));
                ExitCode::from(3)
            }
        }
        Err(err) => {
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            let usage = err.chain().any(|e| e.downcast_ref::<xtask::UsageError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run_experiment(args: &ExperimentArgs, save_baseline: bool) -> anyhow::Result<Option<experiment::Outcome>> {
    let options =
        RunOptions { quick: args.quick, iterations: args.iterations, no_profiles: args.no_profiles };
    experiment::run(&args.name, &options, save_baseline, &args.dirs.paths()).map(Some)
}

fn list(paths: &Paths) -> anyhow::Result<Option<experiment::Outcome>> {
    for (name, description) in experiment::list(paths)? {
        match description {
            Ok(d) => println!("{name:<16} {d}"),
            Err(e) => println!("{name:<16} (invalid: {e})"),
        }
    }
    Ok(None)
}

fn print_tasks() {
    println!("usage: cargo xtask TASK [ARGS]\n\ntasks:");
    let tasks = [
        (
            "experiment NAME",
            "run experiments/NAME.toml; write reports/NAME/ (--quick, --iterations N, --no-profiles, --save-baseline)",
        ),
        ("baseline NAME", "run it and store the run as baselines/NAME.json"),
        ("report NAME", "re-render reports/NAME/ from its results.json"),
        ("list", "the experiments and their descriptions"),
        ("ci", "formatting check, clippy with warnings denied, and the whole test suite"),
    ];
    for (name, what) in tasks {
        println!("  {name:<18} {what}");
    }
    println!("\nexit codes: 0 ok, 1 error, 2 usage, 3 regression against the baseline");
}
