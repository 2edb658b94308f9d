//! `smallmind export`: write a model as a Hugging Face GPT-2 directory.

use super::ModelArg;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The directory to write (created if needed): config.json, model.safetensors, and the
    /// character vocabulary for character-level presets.
    #[arg(long)]
    out: PathBuf,
    /// The tensors' dtype in the file.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    dtype: Dtype,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let loaded = smallmind::models::checkpoint::load(&args.model.model)?;
    let dtype = match args.dtype {
        Dtype::F32 => safetensors::Dtype::F32,
        Dtype::F16 => safetensors::Dtype::F16,
        Dtype::Bf16 => safetensors::Dtype::BF16,
    };
    smallmind::models::checkpoint::export_dir(&loaded.model, &loaded.tokenizer, &args.out, dtype)
        .with_context(|| format!("cannot export to {}", args.out.display()))?;
    println!("wrote {} ({}, {:?})", args.out.display(), loaded.source, args.dtype);
    Ok(())
}
