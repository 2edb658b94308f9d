//! `smallmind optimizations`: the engine's table of optimizations, for people (`--json` off) and
//! for the workbench, which asks the binary it measures for its table (`--json`).

use anyhow::Result;
use clap::Args;
use smallmind::optimizations::TABLE;

#[derive(Debug, Args)]
pub struct OptimizationsArgs {
    /// Print the table as one JSON array, in table order:
    /// `[{"name":...,"description":...,"read_in":...}, ...]`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: OptimizationsArgs) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(TABLE)?);
        return Ok(());
    }
    let name_width = TABLE.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let read_width = TABLE.iter().map(|e| e.read_in.len()).max().unwrap_or(0);
    println!("{:name_width$}  {:read_width$}  description", "name", "read in");
    for entry in TABLE {
        println!("{:name_width$}  {:read_width$}  {}", entry.name, entry.read_in, entry.description);
    }
    Ok(())
}
