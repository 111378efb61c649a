//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use embedkit::{Device, EmbedPurpose, Provider, TextEmbedding, TextEmbeddingBuilder};
use indicatif::{ProgressBar, ProgressStyle};

use crate::input;
use crate::output::Sink;
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

/// A builder from the shared model options.
pub fn builder(m: &ModelArgs) -> anyhow::Result<TextEmbeddingBuilder> {
    let mut b = TextEmbedding::builder(&m.model).local_files_only(m.local_files_only);
    if let Some(dir) = &m.model_path {
        b = b.specific_model_path(dir);
    }
    if let Some(dir) = &m.cache_dir {
        b = b.cache_dir(dir);
    }
    if let Some(n) = m.threads {
        b = b.threads(n);
    }
    b = b.device(m.device.parse::<Device>()?);
    if !m.providers.is_empty() {
        let providers = m
            .providers
            .iter()
            .map(|p| p.parse::<Provider>())
            .collect::<Result<Vec<_>, _>>()?;
        b = b.providers(providers);
    }
    Ok(b)
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        anyhow::bail!("--batch-size must be at least 1");
    }
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
    let model = builder(&args.model)?
        .batch_size(args.batch_size)
        .max_batch_tokens(args.max_batch_tokens)
        .add_prefixes(args.add_prefix)
        .build()
        .with_context(|| format!("loading model {}", args.model.model))?;

    let progress = progress_bar(from_stream);
    let mut sink = Sink::open(args.output.as_deref())?;
    let result = write_all(&model, docs, args.batch_size, purpose, &mut sink, &progress);
    progress.finish_and_clear();
    match result {
        Ok(()) => sink.commit(),
        Err(e) => {
            sink.abandon();
            Err(e)
        }
    }
}

fn write_all(
    model: &TextEmbedding,
    docs: Box<dyn Iterator<Item = embedkit::Result<String>>>,
    batch_size: usize,
    purpose: EmbedPurpose,
    sink: &mut Sink,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let out = sink.writer();
    let mut line = String::new();
    for vector in model.try_embed_iter(docs, Some(batch_size), purpose) {
        let vector = vector?;
        line.clear();
        line.push_str("{\"embedding\":");
        line.push_str(&serde_json::to_string(&vector)?);
        line.push_str("}\n");
        out.write_all(line.as_bytes())?;
        progress.inc(1);
    }
    Ok(())
}

/// A document counter on stderr, only when stderr is a terminal and input is streamed.
fn progress_bar(streamed: bool) -> ProgressBar {
    if !streamed || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} documents embedded in {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
