//! `embedkit hybrid`: documents in, each one's dense vector, sparse vector and token
//! vectors out from one pass of a model that computes them together (BGE-M3), as one
//! record: what a hybrid Qdrant collection stores (`embedding`, `indices`/`values`,
//! `embeddings`).

use clap::{Args, ValueEnum};
use embedkit::{CallOptions, Capability, Purpose};

use crate::vectors::{PruneArgs, Shape, Vector};
use crate::{job, JobArgs};

/// One output a record can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// `embedding`: the dense vector.
    Dense,
    /// `indices` and `values`: the sparse (lexical) vector.
    Sparse,
    /// `embeddings`: one vector per token (ColBERT).
    Multi,
}

impl Part {
    fn capability(self) -> Capability {
        match self {
            Part::Dense => Capability::DenseText,
            Part::Sparse => Capability::SparseText,
            Part::Multi => Capability::MultiVectorText,
        }
    }
}

#[derive(Args, Debug)]
pub struct HybridArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// The outputs each record holds.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "dense,sparse,multi"
    )]
    pub outputs: Vec<Part>,
    /// Embed as queries (`query_embed`; BGE-M3 embeds queries as documents).
    #[arg(long)]
    pub query: bool,
    /// Dense: shorter vectors, for models trained for it (Matryoshka).
    #[arg(long, value_name = "N")]
    pub dimensions: Option<usize>,
    #[command(flatten)]
    pub prune: PruneArgs,
    #[command(flatten)]
    pub cut: crate::CutArgs,
}

pub fn run(mut args: HybridArgs) -> anyhow::Result<()> {
    let mut wanted: Vec<Capability> = Vec::new();
    for c in args.outputs.iter().map(|p| p.capability()) {
        if !wanted.contains(&c) {
            wanted.push(c);
        }
    }
    let (job, docs) = job::start(&mut args.job.io, &args.job.corpus, Shape::Hybrid)?;
    let model = args
        .job
        .model
        .load_all("BAAI/bge-m3", serde_json::Value::Null, &wanted)?;
    let purpose = if args.query {
        Purpose::Query
    } else {
        Purpose::Document
    };
    let call = args.prune.apply(
        args.cut.apply(
            CallOptions::new()
                .purpose(purpose)
                .dimensions(args.dimensions),
        ),
    );
    // Checked before the first document is read.
    model.check_dimensions(args.dimensions)?;
    let results = model
        .embed_all_iter(docs, &wanted, &call)
        .map(|o| o.map(Vector::Hybrid));
    job.finish(results)
}
