//! `embedkit rerank`: a query and documents (one per line) in, JSON Lines
//! `{"index": i, "score": s}` out — in input order, or the best `--top-k` first.

use anyhow::Context;
use clap::Args;
use embedkit::rerank::top_k;
use embedkit::{RankedDocument, TextCrossEncoder};

use crate::{input, output, IoArgs, ModelArgs};

/// Documents scored per call, bounding the texts held at once.
const WINDOW: usize = 1024;

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
    let from_stream = args.io.texts.is_empty();
    let mut docs = input::documents(args.io.texts, args.io.input.as_deref())?;
    let name = args
        .model
        .model
        .as_deref()
        .unwrap_or("Xenova/ms-marco-MiniLM-L-6-v2");
    let load = args.model.load_options()?;
    let model = TextCrossEncoder::builder(name)
        .load_options(load)
        .build()
        .with_context(|| format!("loading model {name}"))?;
    let query = args.query;
    // Scores window by window, in input order; an input error ends the stream after the
    // scores of the documents before it.
    let mut next_index = 0usize;
    let mut pending_error: Option<embedkit::Error> = None;
    let mut done = false;
    let scored = std::iter::from_fn(move || -> Option<embedkit::Result<Vec<RankedDocument>>> {
        if let Some(e) = pending_error.take() {
            return Some(Err(e));
        }
        if done {
            return None;
        }
        let mut window = Vec::with_capacity(WINDOW);
        while window.len() < WINDOW {
            match docs.next() {
                Some(Ok(d)) => window.push(d),
                Some(Err(e)) => {
                    pending_error = Some(e);
                    done = true;
                    break;
                }
                None => {
                    done = true;
                    break;
                }
            }
        }
        if window.is_empty() {
            return pending_error.take().map(Err);
        }
        let first = next_index;
        next_index += window.len();
        Some(model.rerank(&query, &window, None).map(|scores| {
            scores
                .into_iter()
                .enumerate()
                .map(|(i, score)| RankedDocument {
                    index: first + i,
                    score,
                })
                .collect()
        }))
    });
    let flat = scored.flat_map(|batch| -> Vec<embedkit::Result<RankedDocument>> {
        match batch {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        }
    });
    match args.top_k {
        None => output::write_jsonl(args.io.output.as_deref(), from_stream, flat, |r| {
            serde_json::to_string(&r)
        }),
        Some(k) => {
            let all: Vec<RankedDocument> = flat.collect::<embedkit::Result<_>>()?;
            let scores: Vec<f32> = all.iter().map(|r| r.score).collect();
            let best = top_k(&scores, k).into_iter().map(Ok);
            output::write_jsonl(args.io.output.as_deref(), false, best, |r| {
                serde_json::to_string(&r)
            })
        }
    }
}
