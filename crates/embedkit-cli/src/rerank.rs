//! `embedkit rerank`: a query and documents in, one record per document
//! `{"id", "index", "score"}` out — in input order, or the best `--top-k` first — in
//! any output format, with ids and `--resume` as `embed`.

use clap::Args;
use embedkit::rerank::top_k;
use embedkit::{CallOptions, Capability, Operations};

use crate::vectors::{Shape, Vector};
use crate::{job, JobArgs};

#[derive(Args, Debug)]
pub struct RerankArgs {
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub cut: crate::CutArgs,
    /// The query the documents are scored against.
    #[arg(long, short)]
    pub query: String,
    /// Write only the K best documents, best first (reads every document first).
    #[arg(long, value_name = "K", conflicts_with = "resume")]
    pub top_k: Option<usize>,
}

pub fn run(mut args: RerankArgs) -> anyhow::Result<()> {
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, Shape::Score)?;
    let model = args.job.model.load(
        "Xenova/ms-marco-MiniLM-L-6-v2",
        serde_json::Value::Null,
        Capability::PairScores,
    )?;
    let query = args.query;
    let pairs = docs.map(|d| d.map(|d| (query.clone(), d)));
    let scores = model.score_pairs_iter(pairs, &args.cut.apply(CallOptions::new()));
    let first = job.resumed();
    match args.top_k {
        None => job.finish(scores.enumerate().map(|(i, score)| {
            score.map(|score| Vector::Score {
                index: first + i as u64,
                score,
            })
        })),
        Some(k) => job.finish_arranged(scores, |all| {
            let values: Vec<f32> = all.iter().map(|(_, s)| *s).collect();
            let mut ids: Vec<Option<crate::corpus::Id>> =
                all.into_iter().map(|(id, _)| Some(id)).collect();
            top_k(&values, k)
                .into_iter()
                .filter_map(|r| {
                    let id = ids.get_mut(r.index)?.take()?;
                    Some((
                        id,
                        Vector::Score {
                            index: r.index as u64,
                            score: r.score,
                        },
                    ))
                })
                .collect()
        }),
    }
}
