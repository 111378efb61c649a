//! `embedkit sparse`: documents in, JSON Lines of sparse vectors out, in input order
//! (SPLADE, BM25 with its parameters, BM42, MiniCOIL).

use anyhow::Context;
use clap::Args;
use embedkit::sparse::{Bm25Options, MinicoilOptions};
use embedkit::{Purpose, SparseTextEmbedding};

use crate::vectors::{Shape, Vector};
use crate::{corpus, job, IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct SparseArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub corpus: corpus::CorpusArgs,
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
    let (job, docs) = job::start(&mut args.io, &args.corpus, Shape::Sparse)?;
    let name = args.model.name("prithivida/Splade_PP_en_v1");
    let load = args.model.load_options()?;
    let bm25 = Bm25Options::default();
    let minicoil = MinicoilOptions::default();
    let model = SparseTextEmbedding::builder(name)
        .load_options(load)
        .alpha(args.alpha)
        .bm25(Bm25Options {
            language: args.language.clone(),
            k: args.k.unwrap_or(bm25.k),
            b: args.b.unwrap_or(bm25.b),
            avg_len: args.avg_len.unwrap_or(bm25.avg_len),
            disable_stemmer: args.disable_stemmer,
            ..bm25
        })
        .minicoil(MinicoilOptions {
            k: args.k.unwrap_or(minicoil.k),
            b: args.b.unwrap_or(minicoil.b),
            avg_len: args.avg_len.unwrap_or(minicoil.avg_len),
        })
        .build()
        .with_context(|| format!("loading model {}", name))?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    let (top_terms, min_weight) = (args.top_terms, args.min_weight);
    let results = model.try_embed_iter(docs, None, purpose).map(move |v| {
        let mut v = v?;
        embedkit::postprocess::prune_sparse(&mut v, top_terms, min_weight);
        let (indices, values) = v.into_parts();
        Ok(Vector::Sparse { indices, values })
    });
    job.finish(results)
}
