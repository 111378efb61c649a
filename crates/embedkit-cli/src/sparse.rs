//! `embedkit sparse`: documents in, JSON Lines of sparse vectors out, in input order
//! (SPLADE, BM25 with its parameters, BM42, MiniCOIL).

use clap::Args;
use embedkit::{CallOptions, Capability, Operations, Purpose};

use crate::vectors::{PruneArgs, Shape, Vector};
use crate::{job, JobArgs};

#[derive(Args, Debug)]
pub struct SparseArgs {
    #[command(flatten)]
    pub job: JobArgs,
    #[command(flatten)]
    pub cut: crate::TextCutArgs,
    /// Embed as queries (`query_embed`).
    #[arg(long)]
    pub query: bool,
    /// BM25: the language of the stemmer and stopwords [default: english].
    #[arg(long)]
    pub language: Option<String>,
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
    /// BM42: weights are ln(1 + attention)^alpha [default: 0.5].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// BM25: no stemming and no default stopwords.
    #[arg(long)]
    pub disable_stemmer: bool,
    #[command(flatten)]
    pub prune: PruneArgs,
}

pub fn run(mut args: SparseArgs) -> anyhow::Result<()> {
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, Shape::Sparse)?;
    let model = args.job.model.load(
        "prithivida/Splade_PP_en_v1",
        settings(&args),
        Capability::SparseText,
    )?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    let call = args
        .prune
        .apply(args.cut.apply(CallOptions::new().purpose(purpose)));
    let results = model.embed_sparse_iter(docs, &call).map(|v| {
        let (indices, values) = v?.into_parts();
        Ok(Vector::Sparse { indices, values })
    });
    job.finish(results)
}

/// The family's settings, as fastembed's keyword arguments: only those given, so that a
/// model whose kind does not read one (SPLADE and `--language`, BM25 and `--alpha`)
/// refuses it instead of ignoring it.
fn settings(args: &SparseArgs) -> serde_json::Value {
    let mut settings = serde_json::Map::new();
    for (key, value) in [
        ("k", args.k),
        ("b", args.b),
        ("avg_len", args.avg_len),
        ("alpha", args.alpha),
    ] {
        if let Some(v) = value {
            settings.insert(key.into(), v.into());
        }
    }
    if let Some(language) = &args.language {
        settings.insert("language".into(), language.clone().into());
    }
    if args.disable_stemmer {
        settings.insert("disable_stemmer".into(), true.into());
    }
    if settings.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Object(settings)
    }
}
