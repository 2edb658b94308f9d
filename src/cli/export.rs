//! `smallmind export`: write a model as a Hugging Face directory (GPT-2 or Llama), or a Llama
//! model as a llama2.c checkpoint and `tokenizer.bin`, to hand the same weights to other engines.

use super::ModelArg;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use smallmind::Model;
use smallmind::models::checkpoint::{self, LLAMA2C_TOKENIZER_FILE};
use smallmind::models::hf_llama;
use smallmind::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The format to write.
    #[arg(long, value_enum, default_value_t = Format::Hf)]
    format: Format,
    /// Where to write: a directory for `hf` (created if needed: config.json, model.safetensors,
    /// and the tokenizer), the checkpoint file for `llama2c`.
    #[arg(long)]
    out: PathBuf,
    /// For `llama2c`: where to write `tokenizer.bin` (default: beside `--out`, where `--model`
    /// looks for it).
    #[arg(long, value_name = "FILE")]
    tokenizer_out: Option<PathBuf>,
    /// The tensors' dtype in a Hugging Face file (llama2.c checkpoints are always f32).
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    dtype: Dtype,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A Hugging Face directory: config.json + model.safetensors.
    Hf,
    /// llama2.c's `model.bin` (Llama models only), with its `tokenizer.bin`.
    Llama2c,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

pub fn run(args: ExportArgs) -> Result<()> {
    if args.format == Format::Hf && args.tokenizer_out.is_some() {
        bail!("--tokenizer-out is for --format llama2c; a Hugging Face directory holds its tokenizer");
    }
    let loaded = args.model.load()?;
    let dtype = match args.dtype {
        Dtype::F32 => safetensors::Dtype::F32,
        Dtype::F16 => safetensors::Dtype::F16,
        Dtype::Bf16 => safetensors::Dtype::BF16,
    };
    let out = &args.out;
    match (&loaded.model, args.format) {
        (Model::Gpt2(model), Format::Hf) => {
            checkpoint::export_dir(model, loaded.tokenizer.as_ref(), out, dtype)
                .with_context(|| format!("cannot export to {}", out.display()))?
        }
        (Model::Gpt2(_), Format::Llama2c) => {
            bail!("--format llama2c holds Llama models; {} is GPT-2: use --format hf", loaded.source)
        }
        (Model::Llama(model), Format::Hf) => {
            hf_llama::export_dir(model, out, dtype)
                .with_context(|| format!("cannot export to {}", out.display()))?;
            write_llama2c_tokenizer(loaded.tokenizer.as_ref(), &out.join(LLAMA2C_TOKENIZER_FILE))?;
        }
        (Model::Llama(model), Format::Llama2c) => {
            if !matches!(args.dtype, Dtype::F32) {
                bail!("llama2.c checkpoints hold f32 only; drop --dtype or use --format hf");
            }
            if out.is_dir() {
                bail!(
                    "--out {} is a directory; --format llama2c writes one file, e.g. --out model.bin",
                    out.display()
                );
            }
            let bytes = model.to_weights().to_bytes()?;
            checkpoint::write_atomic(out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let tokenizer_out = match &args.tokenizer_out {
                Some(path) => path.clone(),
                None => out.parent().unwrap_or(Path::new(".")).join(LLAMA2C_TOKENIZER_FILE),
            };
            write_llama2c_tokenizer(loaded.tokenizer.as_ref(), &tokenizer_out)?;
        }
    }
    println!("wrote {} ({}, {:?}, {:?})", out.display(), loaded.source, args.format, args.dtype);
    Ok(())
}

/// Writes a Llama model's tokenizer as llama2.c's `tokenizer.bin`, when it is one.
fn write_llama2c_tokenizer(tokenizer: Option<&Tokenizer>, path: &Path) -> Result<()> {
    match tokenizer {
        Some(Tokenizer::Llama2c(t)) => checkpoint::write_atomic(path, &t.to_bytes())
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            eprintln!("note: no {} written: this model has no tokenizer", path.display());
            Ok(())
        }
        // A Hugging Face tokenizer.json has no llama2.c form; say so rather than leave it out silently.
        Some(other) => {
            eprintln!(
                "note: no {} written: this model's tokenizer is {}, which has no llama2.c form; \
                 give the other engine the model's own tokenizer",
                path.display(),
                other.kind()
            );
            Ok(())
        }
    }
}
