//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use clap::Args;
use embedkit::{Capability, Operations, Purpose};

use crate::vectors::DenseArgs;
use crate::{job, JobArgs};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub dense: DenseArgs,
    #[command(flatten)]
    pub cut: crate::TextCutArgs,
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
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, args.dense.shape())?;
    let settings = crate::prefix_settings(args.add_prefix);
    let model = args
        .job
        .model
        .load("BAAI/bge-small-en-v1.5", settings, Capability::DenseText)?;
    let call = args.cut.apply(args.dense.call(&model)?.purpose(purpose));
    let dense = &args.dense;
    let results = model
        .embed_dense_iter(docs, &call)
        .map(|v| v.map(|v| dense.convert(v)));
    job.finish(results)
}
