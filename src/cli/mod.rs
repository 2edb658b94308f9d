//! Command-line parsing (declared in one place) and dispatch to one module per subcommand.

mod export;
mod generate;
mod info;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use smallmind::Optimizations;

/// A GPT-2 inference engine whose four "quick win" optimizations are runtime toggles.
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
    /// Print a model's config, parameter count and size.
    Info(info::InfoArgs),
    /// Write a model as a Hugging Face GPT-2 directory (config.json + model.safetensors).
    Export(export::ExportArgs),
}

/// `--model NAME|DIR`, shared by every subcommand.
#[derive(Debug, Args)]
pub struct ModelArg {
    /// A preset (smallmind-bench, tiny, small, gpt2) or a Hugging Face GPT-2 directory.
    #[arg(long, default_value = "tiny")]
    pub model: String,
}

/// `--opt NAME=on|off` (repeatable) on top of `SMALLMIND_OPT`, on top of "all on".
#[derive(Debug, Args)]
pub struct OptArgs {
    /// Turn an optimization on or off: tensor-pool, batched-matmul, fused-softmax, kv-cache, or
    /// all (e.g. `--opt kv-cache=off`); repeatable, applied after SMALLMIND_OPT.
    #[arg(long = "opt", value_name = "NAME=on|off")]
    pub opt: Vec<String>,
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

/// Parses the command line and runs the subcommand.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Info(args) => info::run(args),
        Command::Export(args) => export::run(args),
    }
}
