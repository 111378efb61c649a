//! `embedkit models`: the registry, as a table or JSON.

use std::io::Write;

use clap::Args;
use embedkit::TextEmbedding;

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print the full descriptions as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let models = TextEmbedding::list_supported_models();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &models)?;
        writeln!(out)?;
        return Ok(());
    }
    let width = models
        .iter()
        .map(|m| m.model.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>7}  {:<10}  {:<4}  LICENSE",
        "MODEL", "DIM", "SIZE GB", "POOLING", "NORM"
    )?;
    for m in &models {
        let pooling = format!("{:?}", m.pipeline.pooling).to_lowercase();
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>7.3}  {:<10}  {:<4}  {}",
            m.model,
            m.dim,
            m.size_in_gb,
            pooling,
            if m.pipeline.normalize { "yes" } else { "no" },
            m.license
        )?;
    }
    Ok(())
}
