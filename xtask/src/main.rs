//! `cargo xtask`: the project's tasks. This file declares the command line and dispatches; each
//! task lives in the `xtask` library.
//!
//! Exit codes: 0 ok, 1 error, 2 usage (a bad flag, an unknown or invalid experiment, a damaged
//! results or baseline file, a baseline that does not fit the experiment), 3 a regression against
//! the stored baseline beyond the experiment's tolerance. `check` follows `git bisect run`: 0
//! good, 1 regressed, 125 this commit cannot be tested (and 2 as above).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use xtask::experiment::{self, Paths};
use xtask::runner::RunOptions;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "smallmind's tasks: experiments, reports, baselines, bisecting, CI")]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run experiments/NAME.toml and write reports/NAME/ (exit 3 on a regression).
    Experiment(RunArgs),
    /// Run experiments/NAME.toml and store the run as baselines/NAME.json (and its report).
    Baseline(RunArgs),
    /// Re-render reports/NAME/ (and its bisect page) from the results files, without running.
    Report(NameArgs),
    /// Quick run against the baseline: exit 0 within tolerance, 1 regressed, 2 the baseline does
    /// not fit, 125 cannot build.
    Check(RunArgs),
    /// Attribute every metric to every optimization (toggle lattice); writes reports/NAME/bisect.md.
    Bisect(BisectArgs),
    /// The reference variant against itself: the noise floor and the detectable effect.
    Calibrate(CalibrateArgs),
    /// List the experiments with their descriptions.
    List(DirArgs),
    /// Formatting check, clippy with warnings denied, and the whole test suite.
    Ci,
}

#[derive(Debug, Args)]
struct RunArgs {
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
    /// Build the engine with these cargo features (comma-separated), in a target dir of its own.
    #[arg(long, value_delimiter = ',', value_name = "FEATURES")]
    engine_features: Vec<String>,
    #[command(flatten)]
    dirs: DirArgs,
}

impl RunArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            quick: self.quick,
            iterations: self.iterations,
            no_profiles: self.no_profiles,
            engine_features: self.engine_features.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct BisectArgs {
    /// Run all 16 toggle sets (the full factorial) and report interactions.
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    /// The effect (a fraction) to size the rounds for.
    #[arg(long, default_value_t = 0.05)]
    effect: f64,
    #[command(flatten)]
    run: RunArgs,
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
    experiments_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    reports_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    baselines_dir: Option<PathBuf>,
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
    let result: anyhow::Result<u8> = match cli.task {
        None => {
            print_tasks();
            Ok(0)
        }
        Some(Task::Ci) => return xtask::ci::run(),
        Some(Task::List(dirs)) => list(&dirs.paths()),
        Some(Task::Report(args)) => {
            experiment::report(&args.name, &args.dirs.paths()).map(|(outcome, bisect)| {
                let code = finished(outcome.clone());
                let Some(misfits) = bisect else { return code };
                eprintln!("bisect: {}", outcome.report.join("bisect.md").display());
                if misfits.is_empty() {
                    return code;
                }
                let what = format!("the bisect baseline of `{}` does not fit its bisect.json", args.name);
                let remedy = format!("cargo xtask bisect {} --save-baseline", args.name);
                eprintln!("error: {}", xtask::baseline::misfit_line(&what, &misfits, &remedy));
                2
            })
        }
        Some(Task::Experiment(args)) => {
            experiment::run(&args.name, &args.options(), args.save_baseline, &args.dirs.paths()).map(finished)
        }
        Some(Task::Baseline(args)) => {
            experiment::run(&args.name, &args.options(), true, &args.dirs.paths()).map(finished)
        }
        Some(Task::Check(args)) => xtask::check::run(&args.name, &args.options(), &args.dirs.paths()),
        Some(Task::Bisect(args)) => {
            let r = &args.run;
            xtask::bisect::run(&r.name, &r.options(), &r.dirs.paths(), args.full, r.save_baseline).map(
                |page| {
                    eprintln!("bisect: {}", r.dirs.paths().reports.join(&r.name).join("bisect.md").display());
                    print!("{page}");
                    0
                },
            )
        }
        Some(Task::Calibrate(args)) => {
            let r = &args.run;
            if !(args.effect > 0.0 && args.effect < 10.0) {
                Err(xtask::UsageError("--effect must be a fraction above 0, e.g. 0.05".into()).into())
            } else {
                xtask::calibrate::run(&r.name, &r.options(), &r.dirs.paths(), args.effect).map(|page| {
                    print!("{page}");
                    0
                })
            }
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            let usage = err.chain().any(|e| e.downcast_ref::<xtask::UsageError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Reports where the report went; 2 when the baseline does not fit the run (the report names
/// what was not compared), else 3 when something regressed against the baseline.
fn finished(outcome: experiment::Outcome) -> u8 {
    eprintln!("report: {}", outcome.report.join("README.md").display());
    if !outcome.regressions.is_empty() {
        eprintln!("REGRESSION against the baseline: {}", outcome.regressions.join("; "));
    }
    if let Some(misfit) = &outcome.misfit {
        eprintln!("error: {misfit}");
        2
    } else if outcome.regressions.is_empty() {
        0
    } else {
        3
    }
}

fn list(paths: &Paths) -> anyhow::Result<u8> {
    for (name, description) in experiment::list(paths)? {
        match description {
            Ok(d) => println!("{name:<16} {d}"),
            Err(e) => println!("{name:<16} (invalid: {e})"),
        }
    }
    Ok(0)
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
        (
            "check NAME",
            "quick run against the baseline: exit 0 ok, 1 regressed, 2 baseline does not fit, 125 cannot build",
        ),
        (
            "bisect NAME",
            "what each optimization buys (toggle lattice; --full: all 16 sets); reports/NAME/bisect.md",
        ),
        ("calibrate NAME", "the reference against itself: noise floor, detectable effect, rounds needed"),
        ("list", "the experiments and their descriptions"),
        ("ci", "formatting check, clippy with warnings denied, and the whole test suite"),
    ];
    for (name, what) in tasks {
        println!("  {name:<18} {what}");
    }
    println!(
        "\nexit codes: 0 ok, 1 error, 2 usage (or a baseline that does not fit), 3 regression against the \
         baseline (check: 1, and 125 to skip)"
    );
}
