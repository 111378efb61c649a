//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use anyhow::Context;
use clap::Args;
use embedkit::{Purpose, TextEmbedding};

use crate::vectors::DenseArgs;
use crate::{corpus, job, IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub corpus: corpus::CorpusArgs,
    #[command(flatten)]
    pub dense: DenseArgs,
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

pub fn run(mut args: EmbedArgs) -> anyhow::Result<()> {
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
    let (job, docs) = job::start(&mut args.io, &args.corpus, args.dense.shape())?;
    let name = args.model.name("BAAI/bge-small-en-v1.5");
    let load = args.model.load_options()?;
    let model = TextEmbedding::builder(name)
        .load_options(load)
        .add_prefixes(args.add_prefix)
        .build()
        .with_context(|| format!("loading model {}", name))?;
    let dims = args
        .dense
        .check(name, model.embedding_size(), model.description().matryoshka)?;
    let dense = &args.dense;
    let results = model
        .try_embed_iter(docs, None, purpose)
        .map(|v| v.map(|v| dense.apply(v, dims)));
    job.finish(results)
}
