//! `embedkit sparse`: documents in, JSON Lines of sparse vectors out, in input order
//! (SPLADE, BM25 with its parameters, BM42, MiniCOIL).

use clap::Args;
use embedkit::{CallOptions, Capability, Purpose};

use crate::vectors::{Shape, Vector};
use crate::{job, JobArgs};

#[derive(Args, Debug)]
pub struct SparseArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Embed as queries (`query_embed`).
    #[arg(long)]
    pub query: bool,
    /// BM25: the language of the stemmer and stopwords.
    #[arg(long, default_value = "english")]
    pub language: String,
    /// BM25 and MiniCOIL: term-frequency saturation k [default: 1.2].
    #[arg(long)]
    pub k: Option<f64>,
    /// BM25 and MiniCOIL: length normalization b [default: 0.75].
    #[arg(long)]
    pub b: Option<f64>,
    /// BM25 and MiniCOIL: average document length in words [default: 256 for BM25, 150
    /// for MiniCOIL].
    #[arg(long)]
    pub avg_len: Option<f64>,
    /// BM42: weights are ln(1 + attention)^alpha.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// BM25: no stemming and no default stopwords.
    #[arg(long)]
    pub disable_stemmer: bool,
    /// Keep only each vector's K largest weights (pruning for smaller indexes).
    #[arg(long, value_name = "K")]
    pub top_terms: Option<usize>,
    /// Drop weights below W.
    #[arg(long, value_name = "W")]
    pub min_weight: Option<f32>,
}

pub fn run(mut args: SparseArgs) -> anyhow::Result<()> {
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, Shape::Sparse)?;
    // The family's settings, as fastembed's keyword arguments: BM25's and MiniCOIL's
    // parameters where given, BM42's alpha.
    let mut shared = serde_json::Map::new();
    for (key, value) in [("k", args.k), ("b", args.b), ("avg_len", args.avg_len)] {
        if let Some(v) = value {
            shared.insert(key.into(), v.into());
        }
    }
    let mut bm25 = shared.clone();
    bm25.insert("language".into(), args.language.clone().into());
    bm25.insert("disable_stemmer".into(), args.disable_stemmer.into());
    let settings = serde_json::json!({
        "alpha": args.alpha,
        "bm25": bm25,
        "minicoil": shared,
    });
    let model = args.job.model.load(
        "prithivida/Splade_PP_en_v1",
        settings,
        Capability::SparseText,
    )?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    let call = CallOptions::new()
        .purpose(purpose)
        .sparse_top_k(args.top_terms)
        .sparse_min_weight(args.min_weight);
    let results = model.embed_sparse_iter(docs, &call).map(|v| {
        let (indices, values) = v?.into_parts();
        Ok(Vector::Sparse { indices, values })
    });
    job.finish(results)
}
