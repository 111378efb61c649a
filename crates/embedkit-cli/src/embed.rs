//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use anyhow::Context;
use clap::Args;
use embedkit::{Purpose, TextEmbedding};

use crate::input;
use crate::output;
use crate::{IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    /// Embed as queries (`query_embed`).
    #[arg(long, conflicts_with = "passage")]
    pub query: bool,
    /// Embed as passages (`passage_embed`).
    #[arg(long)]
    pub passage: bool,
    /// Apply the model's recommended query/passage prefix (with --query or --passage).
    #[arg(long)]
    pub add_prefix: bool,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    if args.add_prefix && !(args.query || args.passage) {
        anyhow::bail!("--add-prefix applies to --query or --passage");
    }
    let purpose = if args.query {
        Purpose::Query
    } else if args.passage {
        Purpose::Passage
    } else {
        Purpose::Document
    };
    let docs = input::documents(args.io.texts, args.io.input.as_deref())?;
    let progress = output::Progress::new(docs.total, args.io.quiet);
    let name = args.model.name("BAAI/bge-small-en-v1.5");
    let load = args.model.load_options()?;
    let model = TextEmbedding::builder(name)
        .load_options(load)
        .add_prefixes(args.add_prefix)
        .build()
        .with_context(|| format!("loading model {}", name))?;

    let vectors = model.try_embed_iter(docs, None, purpose);
    output::write_jsonl(args.io.output.as_deref(), progress, vectors, |v| {
        serde_json::to_string(&serde_json::json!({ "embedding": v }))
    })
}
