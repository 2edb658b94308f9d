//! `smallmind info`: a model's config, parameter count and bytes.

use super::ModelArg;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let loaded = smallmind::models::checkpoint::load(&args.model.model)?;
    let c = &loaded.model.config;
    let params = c.parameter_count();
    let bytes = loaded.model.weight_bytes();
    if args.json {
        let json = serde_json::json!({
            "source": loaded.source,
            "config": c,
            "parameters": params,
            "weight_bytes": bytes,
            "tokenizer": loaded.tokenizer.kind(),
        });
        println!("{json}");
        return Ok(());
    }
    println!("model       {}", loaded.source);
    println!("vocab_size  {}", c.vocab_size);
    println!("n_ctx       {}", c.n_ctx);
    println!("n_embd      {}", c.n_embd);
    println!("n_head      {} (head_dim {})", c.n_head, c.head_dim());
    println!("n_layer     {}", c.n_layer);
    println!("n_inner     {}", c.n_inner);
    println!("ln eps      {:e}", c.layer_norm_epsilon);
    println!("lm head     {}", if c.tie_word_embeddings { "tied to wte" } else { "separate, no bias" });
    println!("tokenizer   {}", loaded.tokenizer.kind());
    println!("parameters  {params}");
    println!("f32 bytes   {bytes} ({:.1} MiB)", bytes as f64 / (1024.0 * 1024.0));
    Ok(())
}
