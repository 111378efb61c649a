//! `embedkit embed`: documents in, JSON Lines of vectors out, in input order.

use anyhow::Context;
use clap::Args;
use embedkit::{Purpose, TextEmbedding};

use crate::vectors::Vector;
use crate::{corpus, job, output, IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub corpus: corpus::CorpusArgs,
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
    let texts = std::mem::take(&mut args.io.texts);
    let mut out = job::Output::open(
        args.io.output.as_deref(),
        args.io.output_format(),
        args.corpus.resume,
    )?;
    let done = std::mem::take(&mut out.done);
    let rows = corpus::open(texts, args.io.input.as_deref(), &args.corpus)?.after(done);
    job::catch_interrupt();
    let progress = output::Progress::new(rows.total, args.io.quiet);
    let skipped = rows.skipped.clone();
    let (docs, ids) = rows.split();
    let name = args.model.name("BAAI/bge-small-en-v1.5");
    let load = args.model.load_options()?;
    let model = TextEmbedding::builder(name)
        .load_options(load)
        .add_prefixes(args.add_prefix)
        .build()
        .with_context(|| format!("loading model {}", name))?;

    let results = model.try_embed_iter(docs, None, purpose).map(|v| {
        let v = v?;
        Ok((ids.next_id()?, Vector::Dense(v)))
    });
    let done = out.write(progress, results);
    corpus::report_skipped(&skipped);
    done
}
