//! `embedkit sparse`: documents in, JSON Lines of sparse vectors out, in input order
//! (SPLADE models, or BM25 with its parameters).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use embedkit::sparse::Bm25Options;
use embedkit::SparseTextEmbedding;

use crate::embed::load_options;
use crate::{input, output, ModelArgs};

#[derive(Args, Debug)]
pub struct SparseArgs {
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
    /// Cap on texts × padded tokens per batch.
    #[arg(long, default_value_t = embedkit::batching::DEFAULT_MAX_BATCH_TOKENS)]
    pub max_batch_tokens: usize,
    /// Embed as queries (`query_embed`).
    #[arg(long)]
    pub query: bool,
    /// BM25: the language of the stemmer and stopwords.
    #[arg(long, default_value = "english")]
    pub language: String,
    /// BM25: term-frequency saturation k.
    #[arg(long, default_value_t = 1.2)]
    pub k: f64,
    /// BM25: length normalization b.
    #[arg(long, default_value_t = 0.75)]
    pub b: f64,
    /// BM25: average document length in words.
    #[arg(long, default_value_t = 256.0)]
    pub avg_len: f64,
    /// BM25: no stemming and no default stopwords.
    #[arg(long)]
    pub disable_stemmer: bool,
    /// Documents to embed; when given, stdin and --input are not read.
    pub texts: Vec<String>,
}

pub fn run(args: SparseArgs) -> anyhow::Result<()> {
    let from_stream = args.texts.is_empty();
    let docs = input::documents(args.texts, args.input.as_deref())?;
    let name = args
        .model
        .model
        .as_deref()
        .unwrap_or("prithivida/Splade_PP_en_v1");
    let load = load_options(&args.model, args.batch_size, args.max_batch_tokens)?;
    let model = SparseTextEmbedding::builder(name)
        .load_options(load)
        .bm25(Bm25Options {
            language: args.language.clone(),
            k: args.k,
            b: args.b,
            avg_len: args.avg_len,
            disable_stemmer: args.disable_stemmer,
            ..Default::default()
        })
        .build()
        .with_context(|| format!("loading model {}", name))?;
    let vectors = model.try_embed_iter(docs, Some(args.batch_size), args.query);
    output::write_jsonl(args.output.as_deref(), from_stream, vectors, |v| {
        serde_json::to_string(&v)
    })
}
