//! `embedkit models`: the registry, as a table or JSON, one section per family of
//! [`embedkit::registry::LISTINGS`] (a new family shows up here by itself).

use std::io::Write;

use clap::Args;
use embedkit::registry::LISTINGS;

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print the full descriptions as JSON, by family: {"dense": [...], "sparse": [...],
    /// "late_interaction": [...], "rerank": [...], "image": [...],
    /// "late_interaction_multimodal": [...], "bge_m3": [...]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut all = serde_json::Map::new();
        for listing in LISTINGS {
            all.insert(listing.key.into(), listing.to_json()?);
        }
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
        return Ok(());
    }
    let sections: Vec<_> = LISTINGS.iter().map(|l| (l.title, l.models())).collect();
    let width = sections
        .iter()
        .flat_map(|(title, models)| models.iter().map(|m| m.model.len()).chain([title.len()]))
        .max()
        .unwrap_or(5);
    let detail = sections
        .iter()
        .flat_map(|(_, models)| models.iter().map(|m| m.detail.len()))
        .max()
        .unwrap_or(0)
        .max("DETAILS".len());
    for (i, (title, models)) in sections.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{title:<width$}  {:>5}  {:>7}  {:<detail$}  LICENSE",
            "DIM", "SIZE GB", "DETAILS"
        )?;
        for m in models {
            let dim = m.dim.map_or_else(|| "-".to_string(), |d| d.to_string());
            writeln!(
                out,
                "{:<width$}  {dim:>5}  {:>7.3}  {:<detail$}  {}",
                m.model, m.size_in_gb, m.detail, m.license
            )?;
        }
    }
    Ok(())
}
