//! `embedkit models`: the registry, as a table or JSON.

use std::io::Write;

use clap::Args;
use embedkit::{
    BgeM3Embedding, ImageEmbedding, LateInteractionMultimodalEmbedding,
    LateInteractionTextEmbedding, ModelCore, SparseTextEmbedding, TextCrossEncoder, TextEmbedding,
};

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print the full descriptions as JSON: {"dense": [...], "sparse": [...],
    /// "late_interaction": [...], "rerank": [...], "image": [...],
    /// "late_interaction_multimodal": [...], "bge_m3": [...]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let dense = TextEmbedding::list_supported_models();
    let sparse = SparseTextEmbedding::list_supported_models();
    let late = LateInteractionTextEmbedding::list_supported_models();
    let rerank = TextCrossEncoder::list_supported_models();
    let image = ImageEmbedding::list_supported_models();
    let multimodal = LateInteractionMultimodalEmbedding::list_supported_models();
    let m3 = BgeM3Embedding::list_supported_models();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "dense": dense, "sparse": sparse, "late_interaction": late, "rerank": rerank, "image": image, "late_interaction_multimodal": multimodal, "bge_m3": m3 }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let width = dense
        .iter()
        .map(|m| m.core.model.len())
        .chain(sparse.iter().map(|m| m.core.model.len()))
        .chain(late.iter().map(|m| m.core.model.len()))
        .chain(rerank.iter().map(|m| m.core.model.len()))
        .chain(image.iter().map(|m| m.core.model.len()))
        .chain(multimodal.iter().map(|m| m.core.model.len()))
        .chain(m3.iter().map(|m| m.core.model.len()))
        .max()
        .unwrap_or(5);
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>7}  {:<10}  {:<4}  LICENSE",
        "DENSE MODEL", "DIM", "SIZE GB", "POOLING", "NORM"
    )?;
    for m in &dense {
        let pooling = format!("{:?}", m.pipeline.pooling).to_lowercase();
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>7.3}  {:<10}  {:<4}  {}",
            m.core.model,
            m.dim,
            m.core.size_in_gb,
            pooling,
            if m.pipeline.normalize { "yes" } else { "no" },
            m.core.license,
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>7}  {:<10}  LICENSE",
        "SPARSE MODEL", "VOCAB", "SIZE GB", "KIND"
    )?;
    for m in &sparse {
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>7.3}  {:<10}  {}",
            m.core.model,
            m.vocab_size.unwrap_or(0),
            m.core.size_in_gb,
            format!("{:?}", m.kind).to_lowercase(),
            m.core.license,
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>7}  {:<10}  LICENSE",
        "LATE-INTERACTION MODEL", "DIM", "SIZE GB", "STYLE"
    )?;
    for m in &late {
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>7.3}  {:<10}  {}",
            m.core.model,
            m.dim,
            m.core.size_in_gb,
            format!("{:?}", m.colbert.style).to_lowercase(),
            m.core.license,
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{:<width$}  {:>7}  LICENSE", "RERANKER", "SIZE GB")?;
    for m in &rerank {
        writeln!(
            out,
            "{:<width$}  {:>7.3}  {}",
            m.core.model, m.core.size_in_gb, m.core.license,
        )?;
    }
    let dims = |core: &ModelCore, dim: usize| {
        (
            core.model.clone(),
            dim,
            core.size_in_gb,
            core.license.clone(),
        )
    };
    let image: Vec<_> = image.iter().map(|m| dims(&m.core, m.dim)).collect();
    sized(&mut out, width, "IMAGE MODEL", &image)?;
    let multimodal: Vec<_> = multimodal.iter().map(|m| dims(&m.core, m.dim)).collect();
    sized(
        &mut out,
        width,
        "MULTIMODAL LATE-INTERACTION MODEL",
        &multimodal,
    )?;
    let m3: Vec<_> = m3.iter().map(|m| dims(&m.core, m.dim)).collect();
    sized(&mut out, width, "DENSE + SPARSE + MULTI-VECTOR MODEL", &m3)?;
    Ok(())
}

/// A section of (name, dim, size, licence) rows after a blank line.
fn sized(
    out: &mut impl Write,
    width: usize,
    title: &str,
    rows: &[(String, usize, f64, String)],
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{title:<width$}  {:>5}  {:>7}  LICENSE",
        "DIM", "SIZE GB"
    )?;
    for (name, dim, size, license) in rows {
        writeln!(out, "{name:<width$}  {dim:>5}  {size:>7.3}  {license}")?;
    }
    Ok(())
}
