//! `smallmind export`: write a model as a Hugging Face directory (GPT-2 or Llama), or a Llama
//! model as a llama2.c checkpoint and `tokenizer.bin` or as a GGUF file (llama.cpp's `llama`
//! architecture, F32 or F16), to hand the same weights to other engines.

use super::ModelArg;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use smallmind::Model;
use smallmind::models::model_dir::LLAMA2C_TOKENIZER_FILE;
use smallmind::models::{gpt2, llama, safetensors_io};
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

/// Says which `--tokenizer` to pass later when `tokenizer` is not where `--model CHECKPOINT`
/// looks for one (`tokenizer.bin` beside the checkpoint).
fn say_where_the_tokenizer_is(checkpoint: &Path, tokenizer: &Path) {
    let dir =
        |p: &Path| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let found = tokenizer.file_name().is_some_and(|n| n == LLAMA2C_TOKENIZER_FILE)
        && std::fs::canonicalize(dir(tokenizer)).ok() == std::fs::canonicalize(dir(checkpoint)).ok();
    if !found {
        eprintln!(
            "note: `--model {}` looks for {LLAMA2C_TOKENIZER_FILE} beside it, not {}: pass `--tokenizer {}` with it",
            checkpoint.display(),
            tokenizer.display(),
            tokenizer.display()
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A Hugging Face directory: config.json + model.safetensors.
    Hf,
    /// llama2.c's `model.bin` (Llama models only), with its `tokenizer.bin`.
    Llama2c,
    /// A GGUF file of llama.cpp's `llama` architecture (Llama models only; `--dtype` f32 or
    /// f16, norms always f32; no tokenizer yet).
    Gguf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

// ~85 lines: one match over (model, format), each arm checking every destination before it
// writes anything; the arms are kept side by side so that their checks can be compared.
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
            gpt2::hf::export_dir(model, loaded.tokenizer.as_ref(), out, dtype)
                .with_context(|| format!("cannot export to {}", out.display()))?
        }
        (Model::Gpt2(_), Format::Llama2c | Format::Gguf) => {
            let format = if args.format == Format::Gguf { "gguf" } else { "llama2c" };
            bail!("--format {format} holds Llama models here; {} is GPT-2: use --format hf", loaded.source)
        }
        (Model::Llama(model), Format::Gguf) => {
            use smallmind::models::gguf::GgmlType;
            let ty = match args.dtype {
                Dtype::F32 => GgmlType::F32,
                Dtype::F16 => GgmlType::F16,
                Dtype::Bf16 => bail!("--format gguf writes f32 or f16"),
            };
            if out.is_dir() {
                bail!(
                    "--out {} is a directory; --format gguf writes one file, e.g. --out model.gguf",
                    out.display()
                );
            }
            let bytes = llama::gguf::to_gguf_bytes(model, ty)?;
            safetensors_io::write_atomic(out, &bytes)?;
        }
        (Model::Llama(model), Format::Hf) => {
            llama::hf::export_dir(model, loaded.tokenizer.as_ref(), out, dtype)
                .with_context(|| format!("cannot export to {}", out.display()))?
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
            let tokenizer_out = match &args.tokenizer_out {
                Some(path) => path.clone(),
                None => out
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .join(LLAMA2C_TOKENIZER_FILE),
            };
            // The header is checked first; the weights are streamed to the file at the end.
            llama::llama2c::legacy_header(&model.config)?;
            // Every destination is checked before anything is written.
            let tokenizer_bytes = match loaded.tokenizer.as_ref() {
                Some(Tokenizer::Llama2c(t)) => Some(t.to_bytes()),
                other => {
                    if tokenizer_out.exists() {
                        bail!(
                            "{} holds a tokenizer.bin of another model, which would be read with these weights, \
                             and this model has {}: remove it or write the checkpoint elsewhere",
                            tokenizer_out.display(),
                            other.map_or("no tokenizer".to_string(), |t| format!(
                                "a {} tokenizer with no llama2.c form",
                                t.kind()
                            ))
                        );
                    }
                    eprintln!(
                        "note: no {} written: this model's tokenizer ({}) has no llama2.c form; give the other \
                         engine the model's own tokenizer",
                        tokenizer_out.display(),
                        other.map_or("none".to_string(), |t| t.kind())
                    );
                    None
                }
            };
            // Missing folders are made (as `mkdir -p`); a folder where a file should go is refused.
            for path in [out.as_path(), tokenizer_out.as_path()] {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if path.is_dir() {
                    bail!("cannot write {}: it is a directory; give a file name", path.display());
                }
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("cannot write {}: cannot make the folder {}", path.display(), parent.display())
                })?;
            }
            safetensors_io::write_atomic_with(out, |w| model.write_llama2c(w, out))?;
            if let Some(t) = tokenizer_bytes {
                safetensors_io::write_atomic(&tokenizer_out, &t)?;
                say_where_the_tokenizer_is(out, &tokenizer_out);
            }
        }
    }
    println!("wrote {} ({}, {:?}, {:?})", out.display(), loaded.source, args.format, args.dtype);
    Ok(())
}
