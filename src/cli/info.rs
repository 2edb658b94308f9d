//! `smallmind info`: a model's config, parameter count and bytes; for a GGUF file, also its
//! version and the count and bytes of its tensors of each type.

use super::ModelArg;
use anyhow::Result;
use clap::Args;
use smallmind::Model;
use smallmind::models::gguf::GgufFile;
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let loaded = args.model.load()?;
    let model = loaded.model.as_ref();
    let params = model.parameter_count();
    let bytes = model.weight_bytes();
    let gguf = loaded.gguf.as_deref().map(GgufFile::open).transpose()?;
    // Tensors and bytes per type, in the file's order of first appearance.
    let mut types: Vec<(&str, usize, usize)> = Vec::new();
    for t in gguf.iter().flat_map(|f| &f.tensors) {
        match types.iter_mut().find(|(name, ..)| *name == t.ty.name()) {
            Some((_, count, total)) => (*count, *total) = (*count + 1, *total + t.n_bytes),
            None => types.push((t.ty.name(), 1, t.n_bytes)),
        }
    }
    if args.json {
        let config = match &loaded.model {
            Model::Gpt2(m) => serde_json::to_value(&m.config)?,
            Model::Llama(m) => serde_json::to_value(&m.config)?,
        };
        let json = serde_json::json!({
            "source": loaded.source,
            "architecture": model.architecture(),
            "config": config,
            "parameters": params,
            "weight_bytes": bytes,
            "tokenizer": loaded.tokenizer.as_ref().map(|t| t.kind()),
            "gguf": gguf.as_ref().map(|f| serde_json::json!({
                "version": f.version,
                "alignment": f.alignment,
                "metadata_keys": f.metadata.len(),
                "tensors": f.tensors.len(),
                "tensor_types": types.iter().map(|(name, count, total)| {
                    (name.to_string(), serde_json::json!({ "count": count, "bytes": total }))
                }).collect::<BTreeMap<_, _>>(),
            })),
        });
        println!("{json}");
        return Ok(());
    }
    println!("model       {} ({})", loaded.source, model.architecture());
    match &loaded.model {
        Model::Gpt2(m) => {
            let c = &m.config;
            println!("vocab_size  {}", c.vocab_size);
            println!("n_ctx       {}", c.n_ctx);
            println!("n_embd      {}", c.n_embd);
            println!("n_head      {} (head_dim {})", c.n_head, c.head_dim());
            println!("n_layer     {}", c.n_layer);
            println!("n_inner     {}", c.n_inner);
            println!("ln eps      {:e}", c.layer_norm_epsilon);
            println!(
                "lm head     {}",
                if c.tie_word_embeddings { "tied to wte" } else { "separate, no bias" }
            );
            println!(
                "attn scale  {}{}",
                if c.scale_attn_weights { "1/sqrt(head_dim)" } else { "1 (scale_attn_weights false)" },
                if c.scale_attn_by_inverse_layer_idx { " / (layer_idx + 1)" } else { "" }
            );
        }
        Model::Llama(m) => {
            let c = &m.config;
            println!("vocab_size  {}", c.vocab_size);
            println!("seq_len     {}", c.seq_len);
            println!("dim         {}", c.dim);
            println!("hidden_dim  {}", c.hidden_dim);
            println!("n_layers    {}", c.n_layers);
            println!("n_heads     {} (head_size {})", c.n_heads, c.head_size());
            println!("n_kv_heads  {} (kv_dim {})", c.n_kv_heads, c.kv_dim());
            println!("norm eps    {:e}", c.norm_eps);
            println!("rope theta  {}", c.rope_theta);
            println!(
                "classifier  {}",
                if c.shared_classifier { "shared with the embedding" } else { "separate" }
            );
        }
    }
    let tokenizer =
        loaded.tokenizer.as_ref().map_or_else(|| "none (token ids only)".to_string(), |t| t.kind());
    println!("tokenizer   {tokenizer}");
    println!("parameters  {params}");
    println!("f32 bytes   {bytes} ({:.1} MiB)", bytes as f64 / (1024.0 * 1024.0));
    if let Some(f) = &gguf {
        let file_bytes = std::fs::metadata(&f.path).map_or(0, |m| m.len());
        println!(
            "gguf        version {}, {} tensors, {} metadata keys, alignment {}, {file_bytes} bytes ({:.1} MiB)",
            f.version,
            f.tensors.len(),
            f.metadata.len(),
            f.alignment,
            file_bytes as f64 / (1024.0 * 1024.0)
        );
        if let Ok(Some(name)) = f.str("general.name") {
            println!("gguf name   {name}");
        }
        for (name, count, total) in &types {
            println!(
                "  {name:<6}    {count:>4} tensors, {total} bytes ({:.1} MiB)",
                *total as f64 / (1024.0 * 1024.0)
            );
        }
        println!("  (dequantized to f32 at load)");
    }
    Ok(())
}
