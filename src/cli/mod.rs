//! Command-line parsing (declared in one place) and dispatch to one module per subcommand.

mod bench;
mod export;
mod generate;
mod info;
mod optimizations;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use smallmind::{Optimization, Optimizations, SamplingParams};

/// A GPT-2 and Llama inference engine whose "quick win" optimizations are runtime toggles.
#[derive(Debug, Parser)]
#[command(name = "smallmind", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate text from a prompt.
    Generate(generate::GenerateArgs),
    /// Measure one workload with one set of optimizations: timings, allocations, phases, profiles.
    Bench(Box<bench::BenchArgs>),
    /// Print a model's config, parameter count and size.
    Info(info::InfoArgs),
    /// Write a model as a Hugging Face directory, or a Llama as a llama2.c checkpoint.
    Export(export::ExportArgs),
    /// List the optimizations: name, where each is read, what it does (`--json` for tools).
    Optimizations(optimizations::OptimizationsArgs),
}

/// `--model NAME|DIR|FILE` and `--tokenizer FILE`, shared by every subcommand.
#[derive(Debug, Args)]
pub struct ModelArg {
    /// A preset (smallmind-bench, tiny, small, gpt2, llama-tiny, llama-tiny-gqa, stories15m,
    /// stories110m), a named trained model (smollm2-135m: `cargo xtask models fetch smollm2-135m`
    /// first), a Hugging Face GPT-2 or Llama directory, a Llama GGUF file, or a llama2.c `.bin`
    /// checkpoint.
    #[arg(long, default_value = "tiny")]
    pub model: String,
    /// llama2.c's `tokenizer.bin` for a Llama model (default: `tokenizer.bin` beside a `.bin`
    /// checkpoint or in a Llama directory without `tokenizer.json`).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<std::path::PathBuf>,
}

impl ModelArg {
    /// Loads the model and its tokenizer, printing one `warning:` line on stderr for each file
    /// holding config keys or tensors the engine did not read.
    pub fn load(&self) -> smallmind::Result<smallmind::models::checkpoint::LoadedModel> {
        let loaded = smallmind::models::checkpoint::load(&self.model, self.tokenizer.as_deref())?;
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(loaded)
    }
}

/// `--opt NAME=on|off` (repeatable) on top of `SMALLMIND_OPT`, on top of "all on".
#[derive(Debug, Args)]
pub struct OptArgs {
    // The help names every row of the optimizations table: see `opt_help`.
    #[arg(long = "opt", value_name = "NAME=on|off", help = opt_help())]
    pub opt: Vec<String>,
}

/// `--opt`'s help, naming every row of the optimizations table.
fn opt_help() -> String {
    format!(
        "Turn an optimization on or off: {}, or all (e.g. `--opt kv-cache=off`); repeatable, applied after SMALLMIND_OPT",
        Optimization::valid_names()
    )
}

impl OptArgs {
    /// The optimizations these flags and the environment select.
    pub fn resolve(&self) -> Result<Optimizations> {
        let mut opts = Optimizations::all();
        if let Ok(env) = std::env::var("SMALLMIND_OPT") {
            opts.apply_list(&env).map_err(|e| anyhow::anyhow!("SMALLMIND_OPT: {e}"))?;
        }
        for setting in &self.opt {
            opts.apply_list(setting).map_err(|e| anyhow::anyhow!("--opt: {e}"))?;
        }
        Ok(opts)
    }
}

/// `--temperature`, `--top-k`, `--top-p`, `--seed`: how tokens are chosen.
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this cumulative probability (1: all).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Seed of the sampling RNG (and of a synthetic prompt).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The sampling parameters, validated.
    pub fn resolve(&self) -> Result<SamplingParams> {
        let sampling = SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        };
        sampling.validate().map_err(anyhow::Error::msg)?;
        Ok(sampling)
    }
}

/// The thread count asked for, or every core when none was.
pub fn resolve_threads(threads: Option<usize>) -> Result<usize> {
    match threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => {
            smallmind::generate::check_threads(n).map_err(|e| anyhow::anyhow!("--threads {n}: {e}"))?;
            Ok(n)
        }
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Parses the command line and runs the subcommand. A command line clap cannot parse is one
/// line (clap's own message, without its usage block), like every other usage error.
pub fn run() -> Result<()> {
    use clap::error::ErrorKind;
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // clap's message is its first paragraph (possible values may follow on a line of their own).
            let rendered = e.render().to_string();
            let message: Vec<&str> =
                rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let message = message.join(" ");
            bail!("{} (see --help)", message.strip_prefix("error: ").unwrap_or(&message));
        }
    };
    // A bad SMALLMIND_SIMD is refused before anything runs, not silently ignored.
    smallmind::kernels::requested_simd_level()?;
    match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Bench(args) => bench::run(*args),
        Command::Info(args) => info::run(args),
        Command::Export(args) => export::run(args),
        Command::Optimizations(args) => optimizations::run(args),
    }
}
