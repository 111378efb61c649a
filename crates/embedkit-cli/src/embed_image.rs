//! `embedkit embed-image FILES...`: one `{"embedding": [...]}` line per image file, in
//! the order given.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use embedkit::ImageEmbedding;

use crate::{output, ModelArgs};

#[derive(Args, Debug)]
pub struct EmbedImageArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write JSON Lines to FILE (default: stdout); the file appears only when complete.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress display and no summary line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Image files (PNG, JPEG, WebP, GIF).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: EmbedImageArgs) -> anyhow::Result<()> {
    let name = args.model.name("Qdrant/clip-ViT-B-32-vision");
    let load = args.model.load_options()?;
    let model = ImageEmbedding::builder(name)
        .load_options(load)
        .build()
        .with_context(|| format!("loading model {name}"))?;
    let progress = output::Progress {
        noun: "images",
        ..output::Progress::new(Some(args.files.len() as u64), args.quiet)
    };
    let vectors = model.embed_iter(args.files, None);
    output::write_jsonl(args.output.as_deref(), progress, vectors, |v| {
        serde_json::to_string(&serde_json::json!({ "embedding": v }))
    })
}
