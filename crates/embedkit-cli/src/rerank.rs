//! `embedkit rerank`: a query and documents (one per line) in, JSON Lines
//! `{"index": i, "score": s}` out — in input order, or the best `--top-k` first.

use anyhow::Context;
use clap::Args;
use embedkit::rerank::top_k;
use embedkit::{RankedDocument, TextCrossEncoder};

use crate::{input, output, IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct RerankArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    /// The query the documents are scored against.
    #[arg(long, short)]
    pub query: String,
    /// Write only the K best documents, best first (reads every document first).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
}

pub fn run(args: RerankArgs) -> anyhow::Result<()> {
    let docs = input::documents(args.io.texts, args.io.input.as_deref())?;
    let progress = output::Progress::new(docs.total, args.io.quiet);
    let name = args.model.name("Xenova/ms-marco-MiniLM-L-6-v2");
    let load = args.model.load_options()?;
    let model = TextCrossEncoder::builder(name)
        .load_options(load)
        .build()
        .with_context(|| format!("loading model {name}"))?;
    let query = args.query;
    let pairs = docs.map(|d| d.map(|d| (query.as_str(), d)));
    let flat = model
        .rerank_pairs_iter(pairs, None)
        .enumerate()
        .map(|(index, score)| score.map(|score| RankedDocument { index, score }));
    match args.top_k {
        None => output::write_jsonl(args.io.output.as_deref(), progress, flat, |r| {
            serde_json::to_string(&r)
        }),
        Some(k) => {
            let all: Vec<RankedDocument> = flat.collect::<embedkit::Result<_>>()?;
            let scores: Vec<f32> = all.iter().map(|r| r.score).collect();
            let best = top_k(&scores, k).into_iter().map(Ok);
            output::write_jsonl(
                args.io.output.as_deref(),
                output::Progress {
                    total: None,
                    ..progress
                },
                best,
                |r| serde_json::to_string(&r),
            )
        }
    }
}
