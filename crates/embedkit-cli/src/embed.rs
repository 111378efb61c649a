//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use clap::Args;
use embedkit::{Capability, Purpose};

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
    let settings = if args.add_prefix {
        serde_json::json!({ "add_prefixes": true })
    } else {
        serde_json::Value::Null
    };
    let model = args
        .model
        .load("BAAI/bge-small-en-v1.5", settings, Capability::DenseText)?;
    let call = args.dense.call(&model)?.purpose(purpose);
    let dense = &args.dense;
    let results = model
        .embed_dense_iter(docs, &call)
        .map(|v| v.map(|v| dense.convert(v)));
    job.finish(results)
}
