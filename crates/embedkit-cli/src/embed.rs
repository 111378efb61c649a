//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use embedkit::options::LoadOptions;
use embedkit::{Device, EmbedPurpose, Provider, TextEmbedding};

use crate::input;
use crate::output;
use crate::ModelArgs;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Read documents from FILE, one per line (default: stdin).
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write JSON Lines to FILE (default: stdout); the file appears only when complete.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Texts per batch (batches are also capped by tokens).
    #[arg(long, default_value_t = embedkit::text::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Cap on texts × padded tokens per batch (bounds memory; small batches are fastest
    /// on CPUs).
    #[arg(long, default_value_t = embedkit::batching::DEFAULT_MAX_BATCH_TOKENS)]
    pub max_batch_tokens: usize,
    /// Embed as queries (`query_embed`).
    #[arg(long, conflicts_with = "passage")]
    pub query: bool,
    /// Embed as passages (`passage_embed`).
    #[arg(long)]
    pub passage: bool,
    /// Apply the model's recommended query/passage prefix (with --query or --passage).
    #[arg(long)]
    pub add_prefix: bool,
    /// Documents to embed; when given, stdin and --input are not read.
    pub texts: Vec<String>,
}

/// The library's loading options from the shared command-line options.
pub fn load_options(
    m: &ModelArgs,
    batch_size: usize,
    max_batch_tokens: usize,
) -> anyhow::Result<LoadOptions> {
    let mut load = LoadOptions::default();
    load.cache.specific_model_path = m.model_path.clone();
    load.cache.cache_dir = m.cache_dir.clone();
    load.cache.local_files_only = m.local_files_only;
    load.runtime.threads = m.threads;
    load.runtime.device = m.device.parse::<Device>()?;
    if !m.providers.is_empty() {
        load.runtime.providers = Some(
            m.providers
                .iter()
                .map(|p| p.parse::<Provider>())
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    if batch_size == 0 {
        anyhow::bail!("--batch-size must be at least 1");
    }
    load.batch_size = batch_size;
    load.max_batch_tokens = max_batch_tokens.max(1);
    Ok(load)
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    if args.add_prefix && !(args.query || args.passage) {
        anyhow::bail!("--add-prefix applies to --query or --passage");
    }
    let purpose = if args.query {
        EmbedPurpose::Query
    } else if args.passage {
        EmbedPurpose::Passage
    } else {
        EmbedPurpose::Document
    };
    let from_stream = args.texts.is_empty();
    let docs = input::documents(args.texts, args.input.as_deref())?;
    let name = args
        .model
        .model
        .as_deref()
        .unwrap_or("BAAI/bge-small-en-v1.5");
    let load = load_options(&args.model, args.batch_size, args.max_batch_tokens)?;
    let model = TextEmbedding::builder(name)
        .load_options(load)
        .add_prefixes(args.add_prefix)
        .build()
        .with_context(|| format!("loading model {}", name))?;

    let vectors = model.try_embed_iter(docs, Some(args.batch_size), purpose);
    output::write_jsonl(args.output.as_deref(), from_stream, vectors, |v| {
        serde_json::to_string(&serde_json::json!({ "embedding": v }))
    })
}
